/* Evaluator tests: a batch gives the same numbers as point-by-point calls,
 * also when it spans several chunks and ends in a partial one, points
 * outside the support get -Inf with a zero score, and points where the
 * log-density is NaN keep NaN with a zero score. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "af_eval.h"

#define MODELS AF_TEST_DIR "/lang/models/"

enum { POINTS = 203 };

static af_model *compile(const char *file)
{
    af_model *m = NULL;
    char *message = NULL;
    if (af_model_compile(file, NULL, &m, &message) != 0)
        fail_msg("%s", message);
    return m;
}

/* Compares a batch through EV with single points through a fresh default
 * workspace; results must be bitwise equal, since the same kernels run on
 * the same values. */
static void compare_batch(af_model *m, af_eval *ev)
{
    size_t d = af_model_dim(m);
    double *z = malloc(POINTS * d * sizeof *z);
    double *score = malloc(POINTS * d * sizeof *score);
    double *logp = malloc(POINTS * sizeof *logp);
    double *logp_only = malloc(POINTS * sizeof *logp_only);
    assert_non_null(z);
    for (size_t i = 0; i < POINTS * d; i++)
        z[i] = 6.0 * rand() / RAND_MAX - 3.0;
    assert_int_equal(af_eval_logp(ev, z, POINTS, logp, score, NULL, 0), 0);
    assert_int_equal(af_eval_logp(ev, z, POINTS, logp_only, NULL, NULL, 0), 0);

    af_eval *single = af_eval_new(m);
    double one_score[64], one_logp;
    for (size_t p = 0; p < POINTS; p++) {
        assert_int_equal(af_eval_logp(single, z + p * d, 1, &one_logp, one_score, NULL, 0), 0);
        assert_true(one_logp == logp[p]);
        assert_true(logp_only[p] == logp[p]);
        for (size_t j = 0; j < d; j++)
            assert_true(one_score[j] == score[p * d + j]);
    }
    af_eval_free(single);
    free(z);
    free(score);
    free(logp);
    free(logp_only);
}

static void batch_equals_points(void **state)
{
    (void)state;
    af_model *m = compile(MODELS "gmm_circle.afm");
    af_eval *ev = af_eval_new(m);
    compare_batch(m, ev);
    af_eval_free(ev);
    af_model_free(m);
}

/* A small budget forces chunks of a few points, so 203 points take many
 * chunks and the last one is partial. */
static void batch_larger_than_chunk(void **state)
{
    (void)state;
    af_model *m = compile(MODELS "funnel.afm");
    af_eval *ev = af_eval_new_with_budget(m, 4096);
    assert_non_null(ev);
    size_t chunk = af_eval_chunk_size(ev);
    assert_true(chunk > 1);
    assert_true(chunk < POINTS);
    assert_true(POINTS % chunk != 0);
    compare_batch(m, ev);
    af_eval_free(ev);
    af_model_free(m);
}

/* The chunk follows the budget, not the batch: a model with more nodes per
 * point gets fewer points per chunk from the same budget. */
static void chunk_from_budget(void **state)
{
    (void)state;
    af_model *small = compile(MODELS "gmm_circle.afm");
    af_model *large = compile(MODELS "exp_gauss.afm");
    af_eval *a = af_eval_new_with_budget(small, 1 << 20);
    af_eval *b = af_eval_new_with_budget(large, 1 << 20);
    assert_true(af_eval_chunk_size(b) < af_eval_chunk_size(a));
    af_eval_free(a);
    af_eval_free(b);
    af_model_free(small);
    af_model_free(large);
}

static void outside_support(void **state)
{
    (void)state;
    af_model *m = compile(MODELS "scale_param.afm");
    af_eval *ev = af_eval_new(m);
    double z[4] = {0.0, -1.0, 0.0, 2.0};
    double logp[2], score[4];
    assert_int_equal(af_eval_logp(ev, z, 2, logp, score, NULL, 0), 0);
    assert_true(logp[0] == -INFINITY);
    assert_true(score[0] == 0.0 && score[1] == 0.0);
    assert_true(isfinite(logp[1]));
    assert_true(score[2] != 0.0);
    af_eval_free(ev);
    af_model_free(m);
}

static void nan_kept_apart_from_outside(void **state)
{
    (void)state;
    af_model *m = compile(MODELS "sqrt_negative.afm");
    af_eval *ev = af_eval_new(m);
    double z[2] = {-1.0, 4.0};
    double logp[2], score[2];
    assert_int_equal(af_eval_logp(ev, z, 2, logp, score, NULL, 0), 0);
    assert_true(isnan(logp[0]));
    assert_false(signbit(logp[0]));
    assert_true(score[0] == 0.0);
    assert_true(fabs(logp[1] - 2.0) < 1e-12);
    assert_true(fabs(score[1] - 0.25) < 1e-12);
    af_eval_free(ev);
    af_model_free(m);
}

static void null_input_rejected(void **state)
{
    (void)state;
    af_model *m = compile(MODELS "funnel.afm");
    af_eval *ev = af_eval_new(m);
    char message[128] = "";
    assert_int_not_equal(af_eval_logp(ev, NULL, 3, NULL, NULL, message, sizeof message), 0);
    assert_true(message[0] != '\0');
    assert_int_equal(af_eval_logp(ev, NULL, 0, NULL, NULL, message, sizeof message), 0);
    af_eval_free(ev);
    af_model_free(m);
}

int main(void)
{
    srand(99);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(batch_equals_points), cmocka_unit_test(batch_larger_than_chunk),
        cmocka_unit_test(chunk_from_budget),   cmocka_unit_test(outside_support),
        cmocka_unit_test(nan_kept_apart_from_outside), cmocka_unit_test(null_input_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
