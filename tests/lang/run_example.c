/* Example model test: compiles one examples/NAME.afm, with NAME.data.json
 * as data when given. At a few random unconstrained points it checks that
 * the log-density and every output column are finite and that the score
 * matches central finite differences of the log-density. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "af_eval.h"
#include "score_check.h"

enum { POINTS = 4 };

static const char *model_path;
static const char *data_path;

/* Uniform on (-1, 1) from a 64-bit LCG, so the points do not depend on the
 * C library's rand(). */
static double uniform_pm1(unsigned long long *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return 2.0 * (double)(*state >> 11) / 9007199254740992.0 - 1.0;
}

static void score_matches_finite_differences(void **state)
{
    (void)state;
    af_model *m = NULL;
    char *message = NULL;
    if (af_model_compile(model_path, data_path, &m, &message) != 0)
        fail_msg("%s", message);
    af_eval *ev = af_eval_new(m);
    assert_non_null(ev);
    /* A model with its own path may be -inf at level 1 where these points
     * fall (inside a truncation wall), so it is checked on its path, which
     * training evaluates too. */
    if (af_model_uses_level(m))
        af_eval_set_level(ev, 0.5);

    size_t d = af_model_dim(m);
    size_t columns = af_model_column_count(m);
    double *z = malloc(d * sizeof *z);
    double *score = malloc(d * sizeof *score);
    double *values = malloc(columns * sizeof *values);
    assert_true(z != NULL && score != NULL && values != NULL);

    unsigned long long seed = 12345;
    for (int p = 0; p < POINTS; p++) {
        for (size_t j = 0; j < d; j++)
            z[j] = uniform_pm1(&seed);
        double lp;
        char eval_message[256];
        if (af_eval_logp(ev, z, 1, &lp, score, eval_message, sizeof eval_message) != 0)
            fail_msg("%s: evaluation failed: %s", model_path, eval_message);
        if (!isfinite(lp))
            fail_msg("%s: log-density %g at point %d", model_path, lp, p);

        /* Rounding in up - down grows with |lp|, so the bound does too. */
        score_check_point(model_path, p, ev, z, d, score, lp, 1e-5, 1e-12);

        char constrain_message[256];
        if (af_model_constrain(m, z, values, constrain_message, sizeof constrain_message) != 0)
            fail_msg("%s: point %d: %s", model_path, p, constrain_message);
        for (size_t c = 0; c < columns; c++)
            if (!isfinite(values[c]))
                fail_msg("%s: point %d: column %s is %g", model_path, p,
                         af_model_column_name(m, c), values[c]);
    }
    free(values);
    free(score);
    free(z);
    af_eval_free(ev);
    af_model_free(m);
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: run_example MODEL.afm [DATA.json]\n");
        return 2;
    }
    model_path = argv[1];
    data_path = argc == 3 ? argv[2] : NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(score_matches_finite_differences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
