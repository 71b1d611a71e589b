/* Tests of training towards a target with its own path that ends in a hard
 * wall: N(0, I) in 2-D restricted to |x| > RADIUS, reached through a
 * penalty inside the wall that steepens with the level. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "af_flow.h"

/* Small enough that the tiny flow below reaches the ring in a second. */
#define RADIUS 2.0
#define SAMPLES 4000

/* Which path the target follows below level 1. */
typedef struct {
    int hard_below_one;  /* non-zero: the wall is -inf at every level */
} wall_target;

/* log q_l(x) = log N(x; 0, I) - lambda(l) (RADIUS^2 - |x|^2) / 2 inside the
 * wall, with lambda(l) = 20 (l / (1 - l))^2, and -inf inside at l = 1. So
 * Z at l = 1 is P(|X| > RADIUS) = exp(-RADIUS^2 / 2). */
static int wall_eval(void *ctx, double level, const double *x, size_t n, double *logq,
                     double *score, char *msg, size_t len)
{
    const wall_target *t = ctx;
    const double ratio = level / fmax(1.0 - level, 1e-9);
    const double lambda = 20.0 * ratio * ratio;
    (void)msg;
    (void)len;

    for (size_t p = 0; p < n; p++) {
        const double *xp = x + 2 * p;
        double r2 = xp[0] * xp[0] + xp[1] * xp[1];
        int inside = r2 < RADIUS * RADIUS;
        int hard = inside && (level >= 1.0 || t->hard_below_one);
        double pull = inside && !hard ? lambda : 0.0;

        logq[p] = hard ? -INFINITY
                       : -0.5 * r2 - log(2.0 * 3.14159265358979323846) - 0.5 * pull * (RADIUS * RADIUS - r2);
        for (size_t j = 0; score && j < 2; j++)
            score[2 * p + j] = hard ? 0.0 : (pull - 1.0) * xp[j];
    }
    return 0;
}

/* Trains a tiny flow for the target T. Returns af_flow_train's status. */
static int train_wall(wall_target *t, af_flow **flow, char *msg, size_t len)
{
    af_target target = {2, 1, wall_eval, t, NULL, NULL, NULL};
    af_flow_options o;

    af_flow_options_default(&o);
    o.adaptive = 0;  /* levels 0.3, 0.45, 0.67, 1 whatever the default schedule */
    o.blocks = 4;
    o.beta_first = 0.3;
    o.final_blocks = 1;
    o.max_final_blocks = 1;
    o.train_size = 2000;
    o.batch_size = 250;
    o.iterations = 120;
    o.seed = 3;
    return af_flow_train(&target, &o, NULL, flow, msg, len);
}

/* Training reaches level 1 although the target is -inf inside the wall
 * there, keeps most samples outside (N(0, I) has 86% inside), and the
 * importance weights estimate Z = P(|X| > 2) = exp(-2). */
static void flow_trains_through_hard_wall(void **state)
{
    (void)state;
    wall_target t = {0};
    af_flow *flow = NULL;
    char msg[512] = "";

    if (train_wall(&t, &flow, msg, sizeof msg))
        fail_msg("training failed: %s", msg);

    double *x = malloc(SAMPLES * 2 * sizeof *x), *log_rho = malloc(SAMPLES * sizeof *log_rho);
    double *logq = malloc(SAMPLES * sizeof *logq);
    assert_non_null(x);
    assert_non_null(log_rho);
    assert_non_null(logq);
    assert_int_equal(af_flow_sample(flow, SAMPLES, 9, 1, x, log_rho, msg, sizeof msg), 0);
    assert_int_equal(wall_eval(&t, 1.0, x, SAMPLES, logq, NULL, msg, sizeof msg), 0);

    size_t inside = 0;
    double max = -INFINITY, sum = 0.0;
    for (size_t p = 0; p < SAMPLES; p++) {
        inside += logq[p] == -INFINITY;
        max = fmax(max, logq[p] - log_rho[p]);
    }
    for (size_t p = 0; p < SAMPLES; p++)
        sum += exp(logq[p] - log_rho[p] - max);
    double log_z = max + log(sum / SAMPLES);

    const double exact = -0.5 * RADIUS * RADIUS;
    if (!((double)inside / SAMPLES < 0.05))
        fail_msg("fraction inside the wall %g, expected below 0.05", (double)inside / SAMPLES);
    if (!(fabs(log_z - exact) < 0.1))
        fail_msg("log Z %g, expected %g +- 0.1", log_z, exact);
    free(x);
    free(log_rho);
    free(logq);
    af_flow_free(flow);
}

/* A path that is -inf inside the wall below level 1 cannot move the mass
 * out, so training stops in the first block and its message states why. */
static void hard_wall_below_level_one_fails_clearly(void **state)
{
    (void)state;
    wall_target t = {1};
    af_flow *flow = NULL;
    char msg[512] = "";

    assert_int_equal(train_wall(&t, &flow, msg, sizeof msg), AF_FLOW_FAILED);
    assert_null(flow);
    assert_non_null(strstr(msg, "block 1 "));
    assert_non_null(strstr(msg, "must stay finite below level 1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(flow_trains_through_hard_wall),
        cmocka_unit_test(hard_wall_below_level_one_fails_clearly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
