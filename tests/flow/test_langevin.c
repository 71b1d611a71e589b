/* Tests of the Metropolis-adjusted Langevin moves: they keep a known
 * Gaussian invariant even with a step far too large for unadjusted
 * Langevin, reach the right level of the geometric path from a wrong start,
 * adapt the step to the target acceptance, leave points outside the support
 * alone, and, inside training, keep resumed and multi-threaded runs equal
 * to a plain run. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "af_flow.h"
#include "flow_internal.h"

/* N(mean, diag(sd^2)) in 2-D, unnormalised; -inf where x1 < floor. */
typedef struct {
    double mean[2], sd[2];
    double floor;  /* -INFINITY for no bound */
    int fail;      /* non-zero: every evaluation fails */
} gauss_target;

static int gauss_eval(void *ctx, double level, const double *x, size_t n, double *logq,
                      double *score, char *msg, size_t len)
{
    const gauss_target *g = ctx;
    (void)level;
    if (g->fail) {
        snprintf(msg, len, "evaluation failed on purpose");
        return -1;
    }
    for (size_t p = 0; p < n; p++) {
        double sum = 0.0;
        for (size_t j = 0; j < 2; j++) {
            double z = (x[2 * p + j] - g->mean[j]) / g->sd[j];
            sum += z * z;
            if (score)
                score[2 * p + j] = -z / g->sd[j];
        }
        logq[p] = x[2 * p] < g->floor ? -INFINITY : -0.5 * sum;
    }
    return 0;
}

/* The target has no state, so a clone is the context itself. */
static void *share_context(void *ctx)
{
    return ctx;
}

static void keep_context(void *ctx)
{
    (void)ctx;
}

enum { N = 20000 };

/* Draws N points of N(mean, diag(sd^2)) in 2-D. */
static double *draw_gaussian(const double mean[2], const double sd[2], uint64_t seed)
{
    double *x = malloc(N * 2 * sizeof *x);
    rng_state rng;
    rng_seed(&rng, seed, 0);
    for (size_t i = 0; i < N * 2; i++)
        x[i] = mean[i % 2] + sd[i % 2] * rng_normal(&rng);
    return x;
}

/* Asserts that coordinate J of the N points X has the given mean and sd,
 * within 5 Monte Carlo standard errors (of the mean, and of the variance
 * of a Gaussian, sqrt(2 / N) relative). Each point is its own chain, so
 * the correlation between steps does not enter. */
static void assert_moments(const double *x, size_t j, double mean, double sd)
{
    double s = 0.0, s2 = 0.0;
    for (size_t p = 0; p < N; p++) {
        s += x[2 * p + j];
        s2 += x[2 * p + j] * x[2 * p + j];
    }
    double m = s / N, var = s2 / N - m * m;
    assert_true(fabs(m - mean) < 5.0 * sd / sqrt(N));
    assert_true(fabs(var / (sd * sd) - 1.0) < 5.0 * sqrt(2.0 / N));
}

/* Points drawn from the target stay distributed as the target, although
 * the first step is of size 3 for an sd of 0.5: unadjusted Langevin would
 * multiply each point's offset from the mean by about -17. */
static void mala_keeps_gaussian_invariant(void **state)
{
    (void)state;
    gauss_target g = {{1.0, -2.0}, {0.5, 1.5}, -INFINITY, 0};
    af_target t = {2, 0, gauss_eval, &g, NULL, NULL, NULL};
    langevin_work *w = langevin_work_new(&t, N, 1);
    double *x = draw_gaussian(g.mean, g.sd, 3);
    double step = 3.0, acceptance;
    char msg[256];

    assert_non_null(w);
    assert_int_equal(langevin_run(w, 1.0, x, N, 1, 7, 0, &step, &acceptance, msg, sizeof msg), 0);
    assert_moments(x, 0, g.mean[0], g.sd[0]);
    assert_moments(x, 1, g.mean[1], g.sd[1]);
    /* Most of those large moves were rejected, and the step shrank. */
    assert_true(acceptance < 0.2);
    assert_true(step < 3.0);

    assert_int_equal(langevin_run(w, 1.0, x, N, 40, 7, 1000, &step, &acceptance, msg, sizeof msg),
                     0);
    assert_moments(x, 0, g.mean[0], g.sd[0]);
    assert_moments(x, 1, g.mean[1], g.sd[1]);
    free(x);
    langevin_work_free(w);
}

/* From N(0, I), the moves reach level beta = 0.5 of the geometric path
 * N(0, I)^(1/2) N(m, s^2)^(1/2): precision 1/2 + 1/(2 s^2), mean
 * m / (2 s^2) over that precision. The step adapts to the target
 * acceptance of 0.574. */
static void mala_reaches_geometric_level(void **state)
{
    (void)state;
    gauss_target g = {{3.0, -1.0}, {0.5, 2.0}, -INFINITY, 0};
    af_target t = {2, 0, gauss_eval, &g, NULL, NULL, NULL};
    langevin_work *w = langevin_work_new(&t, N, 1);
    const double zero[2] = {0.0, 0.0}, one[2] = {1.0, 1.0};
    double *x = draw_gaussian(zero, one, 4);
    double step = 1.0, acceptance;
    char msg[256];

    assert_int_equal(langevin_run(w, 0.5, x, N, 300, 9, 0, &step, &acceptance, msg, sizeof msg),
                     0);
    for (size_t j = 0; j < 2; j++) {
        double s2 = g.sd[j] * g.sd[j], precision = 0.5 + 0.5 / s2;
        assert_moments(x, j, 0.5 * g.mean[j] / s2 / precision, 1.0 / sqrt(precision));
    }

    /* Once adapted, the step keeps the acceptance near its target. */
    assert_int_equal(langevin_run(w, 0.5, x, N, 20, 9, 1000, &step, &acceptance, msg, sizeof msg),
                     0);
    assert_true(fabs(acceptance - 0.574) < 0.05);
    free(x);
    langevin_work_free(w);
}

/* Points where the target is -inf stay where they are and do not count;
 * no move enters that region. */
static void mala_keeps_points_outside_support(void **state)
{
    (void)state;
    gauss_target g = {{0.0, 0.0}, {1.0, 1.0}, 0.0, 0};
    af_target t = {2, 0, gauss_eval, &g, NULL, NULL, NULL};
    langevin_work *w = langevin_work_new(&t, N, 1);
    const double zero[2] = {0.0, 0.0}, one[2] = {1.0, 1.0};
    double *x = draw_gaussian(zero, one, 5), *before = malloc(N * 2 * sizeof *before);
    double step = 1.0, acceptance;
    char msg[256];

    memcpy(before, x, N * 2 * sizeof *x);
    assert_int_equal(langevin_run(w, 1.0, x, N, 10, 2, 0, &step, &acceptance, msg, sizeof msg),
                     0);
    size_t moved = 0;
    for (size_t p = 0; p < N; p++) {
        if (before[2 * p] < 0.0) {
            assert_memory_equal(x + 2 * p, before + 2 * p, 2 * sizeof *x);
        } else {
            assert_true(x[2 * p] >= 0.0);
            moved += x[2 * p] != before[2 * p];
        }
    }
    assert_true(moved > N / 4);
    assert_true(acceptance > 0.2);
    free(x);
    free(before);
    langevin_work_free(w);
}

/* A failing target stops the moves with its message. */
static void mala_reports_target_error(void **state)
{
    (void)state;
    gauss_target g = {{0.0, 0.0}, {1.0, 1.0}, -INFINITY, 1};
    af_target t = {2, 0, gauss_eval, &g, NULL, NULL, NULL};
    langevin_work *w = langevin_work_new(&t, 10, 1);
    double x[20] = {0}, step = 1.0, acceptance;
    char msg[256] = "";

    assert_int_not_equal(langevin_run(w, 1.0, x, 10, 2, 1, 0, &step, &acceptance, msg, sizeof msg),
                         0);
    assert_non_null(strstr(msg, "failed on purpose"));
    step = 0.0;
    g.fail = 0;
    assert_int_not_equal(langevin_run(w, 1.0, x, 10, 2, 1, 0, &step, &acceptance, msg, sizeof msg),
                         0);
    assert_non_null(strstr(msg, "positive step"));
    langevin_work_free(w);
}

/* Small, fast training settings with Langevin moves after each block. */
static void langevin_options(af_flow_options *o)
{
    af_flow_options_default(o);
    o->adaptive = 0;
    o->blocks = 3;
    o->final_blocks = 0;
    o->max_final_blocks = 0;
    o->train_size = 3000;
    o->batch_size = 600;
    o->iterations = 30;
    o->seed = 6;
    o->langevin_steps = 4;
}

static void count_langevin_line(void *ctx, const char *line)
{
    if (strstr(line, "Langevin steps accepted"))
        ++*(size_t *)ctx;
}

static void assert_same_flow(const af_flow *a, const af_flow *b)
{
    size_t n = flow_shape(a)->n_params;
    assert_int_equal(af_flow_block_count(a), af_flow_block_count(b));
    for (size_t k = 0; k < af_flow_block_count(a); k++)
        assert_memory_equal(flow_block_weights(a, k), flow_block_weights(b, k),
                            n * sizeof(double));
}

static int count_block(void *ctx, const af_flow *flow, char *msg, size_t len)
{
    (void)flow;
    (void)msg;
    (void)len;
    ++*(size_t *)ctx;
    return 0;
}

static int stop_after_one(void *ctx)
{
    return *(const size_t *)ctx >= 1;
}

/* Langevin moves change what training produces and its settings hash, log
 * one line per block, and keep a run on two threads and a run resumed
 * after its first block equal, to the bit, to a plain run. */
static void training_with_langevin_is_reproducible(void **state)
{
    (void)state;
    gauss_target g = {{1.0, -1.0}, {0.7, 1.4}, -INFINITY, 0};
    af_target t = {2, 0, gauss_eval, &g, share_context, keep_context, NULL};
    af_flow_options o;
    af_flow *plain, *moved, *threaded, *part, *resumed;
    size_t lines = 0, finished = 0;
    char msg[256];

    langevin_options(&o);
    o.langevin_steps = 0;
    uint64_t hash_without = af_flow_options_hash(&o);
    assert_int_equal(af_flow_train(&t, &o, NULL, &plain, msg, sizeof msg), 0);

    langevin_options(&o);
    assert_int_not_equal(af_flow_options_hash(&o), hash_without);
    o.log = count_langevin_line;
    o.log_context = &lines;
    assert_int_equal(af_flow_train(&t, &o, NULL, &moved, msg, sizeof msg), 0);
    assert_int_equal(lines, 3);
    assert_memory_not_equal(flow_block_weights(plain, 1), flow_block_weights(moved, 1),
                            flow_shape(plain)->n_params * sizeof(double));

    o.threads = 2;
    assert_int_equal(af_flow_train(&t, &o, NULL, &threaded, msg, sizeof msg), 0);
    assert_same_flow(moved, threaded);

    o.threads = 1;
    o.block_done = count_block;
    o.block_context = &finished;
    o.stop = stop_after_one;
    o.stop_context = &finished;
    assert_int_equal(af_flow_train(&t, &o, NULL, &part, msg, sizeof msg), AF_FLOW_INTERRUPTED);
    o.stop = NULL;
    assert_int_equal(af_flow_train(&t, &o, part, &resumed, msg, sizeof msg), 0);
    assert_same_flow(moved, resumed);

    af_flow_free(plain);
    af_flow_free(moved);
    af_flow_free(threaded);
    af_flow_free(part);
    af_flow_free(resumed);
}

/* More points than one chunk on one and three threads: the same moves. */
static void mala_threads_give_same_points(void **state)
{
    (void)state;
    gauss_target g = {{0.5, 0.5}, {1.0, 2.0}, -INFINITY, 0};
    af_target t = {2, 0, gauss_eval, &g, share_context, keep_context, NULL};
    langevin_work *one = langevin_work_new(&t, N, 1), *three = langevin_work_new(&t, N, 3);
    double *x1 = draw_gaussian(g.mean, g.sd, 8), *x3 = malloc(N * 2 * sizeof *x3);
    double step1 = 1.0, step3 = 1.0, a1, a3;
    char msg[256];

    memcpy(x3, x1, N * 2 * sizeof *x1);
    assert_int_equal(langevin_run(one, 1.0, x1, N, 5, 3, 0, &step1, &a1, msg, sizeof msg), 0);
    assert_int_equal(langevin_run(three, 1.0, x3, N, 5, 3, 0, &step3, &a3, msg, sizeof msg), 0);
    assert_memory_equal(x1, x3, N * 2 * sizeof *x1);
    assert_true(step1 == step3);
    assert_true(a1 == a3);
    free(x1);
    free(x3);
    langevin_work_free(one);
    langevin_work_free(three);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mala_keeps_gaussian_invariant),
        cmocka_unit_test(mala_reaches_geometric_level),
        cmocka_unit_test(mala_keeps_points_outside_support),
        cmocka_unit_test(mala_reports_target_error),
        cmocka_unit_test(mala_threads_give_same_points),
        cmocka_unit_test(training_with_langevin_is_reproducible),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
