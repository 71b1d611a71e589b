/* Tests of the importance-weight diagnostics: ESS and log Z on weights
 * with known values, the Pareto k fit on exact generalized Pareto draws,
 * and systematic resampling counts. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "af_weights.h"

/* Uniform in (0, 1) from a 64-bit linear congruential stream. */
static double uniform(uint64_t *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((double)(*state >> 11) + 0.5) * 0x1.0p-53;
}

static void equal_weights_give_full_ess(void **state)
{
    (void)state;
    enum { N = 500 };
    double lw[N];
    for (size_t i = 0; i < N; i++)
        lw[i] = -3.25;

    af_weights_summary s;
    af_weights_summarise(lw, N, &s);
    assert_true(fabs(s.ess - N) < 1e-9);
    assert_true(fabs(s.log_z + 3.25) < 1e-12);
    assert_true(fabs(s.log_z_se) < 1e-9);
}

/* Half the weights 1, half 3: ESS = (2 n)^2 / (5 n) = 0.8 n, Z = 2. */
static void two_level_weights(void **state)
{
    (void)state;
    enum { N = 1000 };
    double lw[N];
    for (size_t i = 0; i < N; i++)
        lw[i] = i % 2 ? log(3.0) : 0.0;

    af_weights_summary s;
    af_weights_summarise(lw, N, &s);
    assert_true(fabs(s.ess - 0.8 * N) < 1e-6);
    assert_true(fabs(s.log_z - log(2.0)) < 1e-12);
}

/* Exact draws of a GPD with shape K and scale 1 by inversion:
 * x = (u^-k - 1) / k. */
static void pareto_k_recovers_shape(void **state)
{
    (void)state;
    enum { N = 4000 };
    const double shapes[] = {0.2, 0.5, 0.9};
    double *x = malloc(N * sizeof *x);
    uint64_t rng = 12345;

    for (size_t c = 0; c < 3; c++) {
        for (size_t i = 0; i < N; i++)
            x[i] = (pow(uniform(&rng), -shapes[c]) - 1.0) / shapes[c];
        double k = af_weights_pareto_k(x, N);
        assert_true(fabs(k - shapes[c]) < 0.08);
    }
    free(x);
}

/* Weights with a Pareto tail of index 1 / 0.8 are flagged; light-tailed
 * weights are not. */
static void heavy_tail_is_flagged(void **state)
{
    (void)state;
    enum { N = 4000 };
    double *lw = malloc(N * sizeof *lw);
    uint64_t rng = 7;
    af_weights_summary s;

    for (size_t i = 0; i < N; i++)
        lw[i] = -0.8 * log(uniform(&rng));
    af_weights_summarise(lw, N, &s);
    assert_true(s.pareto_k > AF_WEIGHTS_K_UNRELIABLE);

    for (size_t i = 0; i < N; i++)
        lw[i] = 0.1 * uniform(&rng);
    af_weights_summarise(lw, N, &s);
    assert_true(s.pareto_k < 0.5);
    free(lw);
}

/* Systematic resampling: counts within one of N w_i / sum w, and a
 * zero weight is never drawn. */
static void resampling_follows_weights(void **state)
{
    (void)state;
    enum { N = 1000 };
    double lw[N];
    size_t index[N], count[3] = {0, 0, 0};
    for (size_t i = 0; i < N; i++) {
        lw[i] = 0.0;
        if (i < 500)
            lw[i] = log(3.0);
        if (i == N - 1)
            lw[i] = -INFINITY;
    }

    assert_int_equal(af_weights_resample(lw, N, 99, index), 0);
    for (size_t p = 0; p < N; p++) {
        size_t group = 1;
        if (index[p] < 500)
            group = 0;
        if (index[p] == N - 1)
            group = 2;
        count[group]++;
    }
    double total = 500 * 3.0 + 499;
    assert_true(fabs((double)count[0] - N * 1500 / total) <= 1.0);
    assert_true(fabs((double)count[1] - N * 499 / total) <= 1.0);
    assert_int_equal(count[2], 0);

    for (size_t i = 0; i < N; i++)
        lw[i] = -INFINITY;
    assert_int_equal(af_weights_resample(lw, N, 99, index), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(equal_weights_give_full_ess),
        cmocka_unit_test(two_level_weights),
        cmocka_unit_test(pareto_k_recovers_shape),
        cmocka_unit_test(heavy_tail_is_flagged),
        cmocka_unit_test(resampling_follows_weights),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
