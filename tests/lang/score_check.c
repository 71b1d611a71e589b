/* Finite-difference checks of model scores for the tests in tests/lang. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "score_check.h"

double score_check_logp(af_eval *eval, const double *z)
{
    double lp;
    assert_int_equal(af_eval_logp(eval, z, 1, &lp, NULL, NULL, 0), 0);
    return lp;
}

double score_check_model_logp(const af_model *model, const double *z)
{
    af_eval *eval = af_eval_new(model);
    assert_non_null(eval);
    double lp = score_check_logp(eval, z);
    af_eval_free(eval);
    return lp;
}

void score_check_point(const char *label, int point, af_eval *eval, double *z, size_t d,
                       const double *score, double lp, double h, double lp_rounding)
{
    for (size_t j = 0; j < d; j++) {
        double saved = z[j];
        z[j] = saved + h;
        double up = score_check_logp(eval, z);
        z[j] = saved - h;
        double down = score_check_logp(eval, z);
        z[j] = saved;

        double fd = (up - down) / (2 * h);
        double tolerance = 1e-5 * (1 + fabs(fd)) + lp_rounding * (1 + fabs(lp)) / h;
        if (fabs(score[j] - fd) > tolerance)
            fail_msg("%s: point %d: score[%zu] %.10g, finite difference %.10g", label, point, j,
                     score[j], fd);
    }
}
