/* Tests of the adaptive Dormand-Prince sampler on a trained flow. It agrees
 * with RK4 at many steps, its log-density matches the Jacobian of its own
 * map, and its samples do not depend on the thread count. Bad tolerances
 * and a diverging field give errors instead of samples. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "af_flow.h"
#include "flow_internal.h"

/* A correlated 2-D Gaussian, unnormalised, so the trained blocks rotate
 * and stretch: x1 ~ N(1, 0.6^2), x2 | x1 ~ N(-0.5 + 0.8 x1, 1). */
static int tilted_eval(void *ctx, double level, const double *x, size_t n, double *logq,
                       double *score, char *msg, size_t len)
{
    (void)ctx;
    (void)level;
    (void)msg;
    (void)len;
    for (size_t p = 0; p < n; p++) {
        double a = (x[2 * p] - 1.0) / 0.6, r = x[2 * p + 1] + 0.5 - 0.8 * x[2 * p];
        logq[p] = -0.5 * (a * a + r * r);
        if (score) {
            score[2 * p] = -a / 0.6 + 0.8 * r;
            score[2 * p + 1] = -r;
        }
    }
    return 0;
}

/* Trains one small flow for every test of this file. */
static int train_flow(void **state)
{
    af_target t = {2, 0, tilted_eval, NULL, NULL, NULL, NULL};
    af_flow_options o;
    char msg[256];

    af_flow_options_default(&o);
    o.adaptive = 0;
    o.blocks = 2;
    o.final_blocks = 0;
    o.max_final_blocks = 0;
    o.standardise = 0;
    o.train_size = 2000;
    o.batch_size = 250;
    o.iterations = 150;
    o.seed = 8;
    af_flow *flow = NULL;
    if (af_flow_train(&t, &o, NULL, &flow, msg, sizeof msg))
        return -1;
    *state = flow;
    return 0;
}

static int free_flow(void **state)
{
    af_flow_free(*state);
    return 0;
}

/* The flow's blocks again, integrated with SUBSTEPS RK4 steps. */
static af_flow *with_substeps(const af_flow *flow, size_t substeps)
{
    af_flow *copy = flow_new(flow_shape(flow), substeps, af_flow_block_count(flow));
    assert_non_null(copy);
    for (size_t k = 0; k < af_flow_block_count(flow); k++)
        assert_int_equal(flow_append(copy, af_flow_block_beta(flow, k),
                                     flow_block_weights(flow, k)), 0);
    return copy;
}

static void dopri_options(af_flow_options *o, uint64_t seed, double tolerance)
{
    af_flow_options_default(o);
    o->seed = seed;
    o->sampler = AF_SAMPLER_DOPRI;
    o->ode_tolerance = tolerance;
}

static double max_abs_difference(const double *a, const double *b, size_t n)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(a[i] - b[i]));
    return worst;
}

/* At a tight tolerance, Dormand-Prince and RK4 with 400 steps per block
 * give the same samples and log-densities. The training's 3 RK4 steps are
 * measurably further off, so the comparison can tell them apart. */
static void dopri_agrees_with_fine_rk4(void **state)
{
    const af_flow *flow = *state;
    enum { N = 300 };
    double x[N * 2], lr[N], x_fine[N * 2], lr_fine[N], x_coarse[N * 2], lr_coarse[N];
    af_flow_options o;
    af_sample_stats stats;
    char msg[256];

    dopri_options(&o, 21, 1e-10);
    assert_int_equal(af_flow_sample_with(flow, &o, N, x, lr, &stats, msg, sizeof msg), 0);
    af_flow *fine = with_substeps(flow, 400);
    assert_int_equal(af_flow_sample(fine, N, 21, 1, x_fine, lr_fine, msg, sizeof msg), 0);
    assert_int_equal(af_flow_sample(flow, N, 21, 1, x_coarse, lr_coarse, msg, sizeof msg), 0);
    af_flow_free(fine);

    assert_true(max_abs_difference(x, x_fine, N * 2) < 1e-7);
    assert_true(max_abs_difference(lr, lr_fine, N) < 1e-7);
    assert_true(max_abs_difference(lr_coarse, lr_fine, N) > 1e-6);
    assert_true(stats.accepted >= N * af_flow_block_count(flow));
}

/* A looser tolerance takes fewer steps and lands further from the
 * tight-tolerance samples and log-densities. */
static void looser_tolerance_costs_fewer_steps(void **state)
{
    const af_flow *flow = *state;
    enum { N = 300 };
    double x[N * 2], lr[N], x_mid[N * 2], lr_mid[N], x_tight[N * 2], lr_tight[N];
    af_flow_options o;
    af_sample_stats loose, mid, tight;
    char msg[256];

    dopri_options(&o, 5, 1e-10);
    assert_int_equal(af_flow_sample_with(flow, &o, N, x_tight, lr_tight, &tight, msg, sizeof msg),
                     0);
    o.ode_tolerance = 1e-6;
    assert_int_equal(af_flow_sample_with(flow, &o, N, x_mid, lr_mid, &mid, msg, sizeof msg), 0);
    o.ode_tolerance = 1e-3;
    assert_int_equal(af_flow_sample_with(flow, &o, N, x, lr, &loose, msg, sizeof msg), 0);

    assert_true(loose.accepted + loose.rejected < mid.accepted + mid.rejected);
    assert_true(mid.accepted + mid.rejected < tight.accepted + tight.rejected);
    assert_true(max_abs_difference(x_mid, x_tight, N * 2) < max_abs_difference(x, x_tight, N * 2));
    assert_true(max_abs_difference(lr_mid, lr_tight, N) < max_abs_difference(lr, lr_tight, N));
}

/* log rho(x) from the divergence integrated by Dormand-Prince equals
 * log N(x0) minus the log |det| of the Jacobian of the Dormand-Prince map
 * x0 -> x itself, taken by central differences. */
static void dopri_log_density_matches_map_jacobian(void **state)
{
    const af_flow *flow = *state;
    const net_shape *sh = flow_shape(flow);
    const size_t blocks = af_flow_block_count(flow), hh = sh->h1 * sh->h2;
    double *m = malloc(hh * sizeof *m), *c = malloc(blocks * hh * sizeof *c);
    af_sample_stats stats;
    char msg[256];

    for (size_t k = 0; k < blocks; k++)
        net_prepare(sh, flow_block_weights(flow, k), m, c + k * hh);

    /* Each point of a batch takes its own steps, so one call pushes the
     * base point and its four perturbed copies. */
    const double x0[2] = {0.7, -1.1}, h = 1e-5;
    double pts[5][2], logdet[5] = {0};
    for (int i = 0; i < 5; i++) {
        pts[i][0] = x0[0];
        pts[i][1] = x0[1];
    }
    pts[1][0] += h;
    pts[2][0] -= h;
    pts[3][1] += h;
    pts[4][1] -= h;
    assert_int_equal(dopri_push_parallel(sh, blocks, flow_block_weights(flow, 0), c, &pts[0][0],
                                         5, logdet, 1e-11, 1, &stats, msg, sizeof msg),
                     0);

    double jac[2][2];
    for (int i = 0; i < 2; i++) {
        jac[i][0] = (pts[1][i] - pts[2][i]) / (2 * h);
        jac[i][1] = (pts[3][i] - pts[4][i]) / (2 * h);
    }
    double log_det_jac = log(fabs(jac[0][0] * jac[1][1] - jac[0][1] * jac[1][0]));
    assert_true(fabs(log_det_jac - logdet[0]) < 1e-5);
    /* The map is far from the identity, so the check has something to see. */
    assert_true(fabs(logdet[0]) > 0.1);
    free(m);
    free(c);
}

/* More points than one chunk, on one and on three threads: the same bits. */
static void dopri_threads_give_same_samples(void **state)
{
    const af_flow *flow = *state;
    enum { N = 2500 };
    double *x1 = malloc(N * 2 * sizeof *x1), *x3 = malloc(N * 2 * sizeof *x3);
    double *lr1 = malloc(N * sizeof *lr1), *lr3 = malloc(N * sizeof *lr3);
    af_flow_options o;
    af_sample_stats s1, s3;
    char msg[256];

    dopri_options(&o, 13, 1e-6);
    assert_int_equal(af_flow_sample_with(flow, &o, N, x1, lr1, &s1, msg, sizeof msg), 0);
    o.threads = 3;
    assert_int_equal(af_flow_sample_with(flow, &o, N, x3, lr3, &s3, msg, sizeof msg), 0);
    assert_memory_equal(x1, x3, N * 2 * sizeof *x1);
    assert_memory_equal(lr1, lr3, N * sizeof *lr1);
    assert_int_equal(s1.accepted, s3.accepted);
    assert_int_equal(s1.rejected, s3.rejected);
    free(x1);
    free(x3);
    free(lr1);
    free(lr3);
}

/* A tolerance that is not positive is rejected with its value. */
static void dopri_rejects_bad_tolerance(void **state)
{
    const af_flow *flow = *state;
    const double bad[] = {0.0, -1e-6, NAN};
    double x[4], lr[2];
    af_flow_options o;
    char msg[256];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dopri_options(&o, 1, bad[i]);
        msg[0] = '\0';
        assert_int_not_equal(af_flow_sample_with(flow, &o, 2, x, lr, NULL, msg, sizeof msg), 0);
        assert_non_null(strstr(msg, "invalid ODE tolerance"));
    }
}

/* A block whose velocity overflows makes every step fail its error test;
 * sampling stops with a message instead of writing non-finite samples. */
static void dopri_reports_collapsed_step(void **state)
{
    const af_flow *flow = *state;
    const net_shape *sh = flow_shape(flow);
    double *theta = malloc(sh->n_params * sizeof *theta);
    double x[4], lr[2];
    af_flow_options o;
    char msg[256] = "";

    for (size_t i = 0; i < sh->n_params; i++)
        theta[i] = 1e200;
    af_flow *broken = flow_new(sh, 3, 1);
    assert_int_equal(flow_append(broken, 1.0, theta), 0);
    dopri_options(&o, 1, 1e-6);
    assert_int_not_equal(af_flow_sample_with(broken, &o, 2, x, lr, NULL, msg, sizeof msg), 0);
    assert_non_null(strstr(msg, "block 1"));
    assert_non_null(strstr(msg, "step fell below"));
    af_flow_free(broken);
    free(theta);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dopri_agrees_with_fine_rk4),
        cmocka_unit_test(looser_tolerance_costs_fewer_steps),
        cmocka_unit_test(dopri_log_density_matches_map_jacobian),
        cmocka_unit_test(dopri_threads_give_same_samples),
        cmocka_unit_test(dopri_rejects_bad_tolerance),
        cmocka_unit_test(dopri_reports_collapsed_step),
    };
    return cmocka_run_group_tests(tests, train_flow, free_flow);
}
