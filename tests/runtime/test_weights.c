/* Tests of the importance-weight diagnostics: ESS and log Z on weights
 * with known values, the Pareto k fit on exact generalized Pareto draws,
 * systematic resampling counts, the weighted summary table, and draws of
 * weight 0. */
#define _POSIX_C_SOURCE 200809L  /* fmemopen */

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "af_output.h"
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
    assert_true(fabs(s.max_ratio - 1.0) < 1e-12);
}

/* Half the weights 1, half 3: ESS = (2 n)^2 / (5 n) = 0.8 n, Z = 2, and
 * the largest weight is 1.5 times the mean. */
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
    assert_true(fabs(s.max_ratio - 1.5) < 1e-12);
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

/* Reads the mean and sd of the first summary row of TEXT. */
static void first_row(const char *text, double *mean, double *sd)
{
    const char *row = strstr(text, "\nx ");
    assert_non_null(row);
    assert_int_equal(sscanf(row, " x %lf %lf", mean, sd), 2);
}

/* Prints the summary of DRAWS into TEXT (SIZE bytes). */
static void print_summary_text(const af_output_draws *draws, const af_weights_summary *w,
                               int weighted, char *text, size_t size)
{
    FILE *out = fmemopen(text, size, "w");
    assert_non_null(out);
    assert_int_equal(af_output_print_summary(out, draws, w, weighted), 0);
    fclose(out);
}

/* The summary weights the draws by their importance weights, and uses
 * equal weights for resampled draws. */
static void summary_uses_weights(void **state)
{
    (void)state;
    const double values[] = {0.0, 0.0, 10.0, 10.0}, zero[] = {0, 0, 0, 0};
    const double log_weight[] = {0.0, 0.0, log(3.0), log(3.0)};
    const char *names[] = {"x"};
    af_output_draws draws = {4, 1, names, values, zero, zero, log_weight};
    af_weights_summary w;
    char text[2048];
    double mean, sd;

    af_weights_summarise(log_weight, 4, &w);
    for (int weighted = 1; weighted >= 0; weighted--) {
        print_summary_text(&draws, &w, weighted, text, sizeof text);
        first_row(text, &mean, &sd);

        /* Weights 1/8, 1/8, 3/8, 3/8: mean 7.5, variance 18.75 / (1 - 20/64). */
        double want_mean = weighted ? 7.5 : 5.0;
        double want_sd = weighted ? sqrt(18.75 / (1.0 - 20.0 / 64.0)) : sqrt(100.0 / 3.0);
        assert_true(fabs(mean - want_mean) < 1e-4);
        assert_true(fabs(sd - want_sd) < 1e-4);
        /* The largest weight is 1.5 times the mean: k is not shown. */
        assert_non_null(strstr(text, "Pareto k not needed (largest weight 1.50 times the mean)"));
    }
}

/* A posterior with a small sd around a large mean prints enough digits
 * to show the spread: at 5 digits 1000 +- 0.001 would print as 1000. */
static void summary_resolves_small_sd(void **state)
{
    (void)state;
    enum { N = 101 };
    double values[N], zero[N];
    for (size_t p = 0; p < N; p++) {
        values[p] = 1000.0 + 0.001 * ((double)p - 50.0) / 50.0;
        zero[p] = 0.0;
    }
    const char *names[] = {"x"};
    af_output_draws draws = {N, 1, names, values, zero, zero, zero};
    af_weights_summary w;
    char text[4096];
    double mean, sd, q5, q50, q95;

    af_weights_summarise(zero, N, &w);
    print_summary_text(&draws, &w, 0, text, sizeof text);
    const char *row = strstr(text, "\nx ");
    assert_non_null(row);
    assert_int_equal(sscanf(row, " x %lf %lf %lf %lf %lf", &mean, &sd, &q5, &q50, &q95), 5);
    assert_true(fabs(mean - 1000.0) < 1e-6);
    assert_true(sd > 5e-4 && sd < 7e-4);
    assert_true(fabs(q5 - (1000.0 - 0.0009)) < 1e-5);
    assert_true(fabs(q95 - (1000.0 + 0.0009)) < 1e-5);
    assert_true(q95 - q5 > 1e-3);
}

/* The CSV keeps the spread of a column whose values are close together
 * next to their size: 1000 + 1e-7 k for k = 0..99 reads back within 1e-12,
 * which 10 significant digits would round to a few values. A column of
 * unit scale keeps 10 digits. */
static void csv_keeps_small_spread(void **state)
{
    (void)state;
    enum { N = 100 };
    double values[2 * N], zero[N];
    for (size_t p = 0; p < N; p++) {
        values[2 * p] = 1000.0 + 1e-7 * (double)p;
        values[2 * p + 1] = 1.0 / 3.0 + (double)p;
        zero[p] = 0.0;
    }
    const char *names[] = {"x", "y"};
    af_output_draws draws = {N, 2, names, values, zero, zero, zero};
    char path[] = "/tmp/afm_test_csv_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char msg[256];
    assert_int_equal(af_output_write_csv(path, NULL, 0, &draws, msg, sizeof msg), 0);

    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512];
    size_t row = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == 'l')
            continue;
        double lp, approx, weight, x, y;
        assert_int_equal(sscanf(line, "%lf,%lf,%lf,%lf,%lf", &lp, &approx, &weight, &x, &y),
                         5);
        assert_true(row < N);
        assert_true(fabs(x - values[2 * row]) < 1e-12);
        assert_true(fabs(y - values[2 * row + 1]) < 1e-8);
        assert_null(strstr(line, "0.33333333333"));
        row++;
    }
    fclose(f);
    unlink(path);
    assert_int_equal(row, N);
}

/* Draws with log weight -inf or NaN weigh 0: the ESS, the weighted mean
 * and resampling leave them out, and the summary counts them. */
static void summary_counts_zero_weights(void **state)
{
    (void)state;
    const double values[] = {1.0, 2.0, 3.0, 4.0, 5.0}, zero[] = {0, 0, 0, 0, 0};
    const double log_weight[] = {0.0, -INFINITY, NAN, 0.0, log(2.0)};
    const char *names[] = {"x"};
    af_output_draws draws = {5, 1, names, values, zero, zero, log_weight};
    af_weights_summary w;
    char text[2048];
    double mean, sd;

    af_weights_summarise(log_weight, 5, &w);
    assert_int_equal(w.zero_weights, 2);
    /* Weights 1, 0, 0, 1, 2. */
    assert_true(fabs(w.ess - 16.0 / 6.0) < 1e-12);
    assert_true(fabs(w.log_z - log(4.0 / 5.0)) < 1e-12);

    print_summary_text(&draws, &w, 1, text, sizeof text);
    first_row(text, &mean, &sd);
    assert_true(fabs(mean - 15.0 / 4.0) < 1e-4);
    assert_non_null(strstr(text, "; 2 draws outside the support (weight 0)\n"));

    size_t index[5];
    assert_int_equal(af_weights_resample(log_weight, 5, 7, index), 0);
    for (size_t p = 0; p < 5; p++) {
        assert_int_not_equal(index[p], 1);
        assert_int_not_equal(index[p], 2);
    }

    const double finite[] = {0.0, 0.0, 0.0, 0.0, 0.0};
    af_weights_summarise(finite, 5, &w);
    assert_int_equal(w.zero_weights, 0);
    print_summary_text(&draws, &w, 0, text, sizeof text);
    assert_null(strstr(text, "outside the support"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(equal_weights_give_full_ess),
        cmocka_unit_test(two_level_weights),
        cmocka_unit_test(pareto_k_recovers_shape),
        cmocka_unit_test(heavy_tail_is_flagged),
        cmocka_unit_test(resampling_follows_weights),
        cmocka_unit_test(summary_uses_weights),
        cmocka_unit_test(summary_counts_zero_weights),
        cmocka_unit_test(summary_resolves_small_sd),
        cmocka_unit_test(csv_keeps_small_spread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
