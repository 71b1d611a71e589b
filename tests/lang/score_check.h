/* Finite-difference checks shared by the model tests: one-point
 * log-density evaluation, and the score against central differences. Use
 * after including cmocka.h. */
#ifndef AF_TEST_SCORE_CHECK_H
#define AF_TEST_SCORE_CHECK_H

#include <stddef.h>

#include "af_eval.h"

/* log q at the single point Z; fails the test when evaluation fails. */
double score_check_logp(af_eval *eval, const double *z);
/* The same with a workspace of its own for MODEL. */
double score_check_model_logp(const af_model *model, const double *z);

/* Compares SCORE (d values at Z, where the log-density is LP) with central
 * differences of step H. The tolerance is 1e-5 (1 + |fd|) plus
 * LP_ROUNDING (1 + |LP|) / H for the rounding in the difference of two
 * large log-densities. Fails the test naming LABEL and the point index. */
void score_check_point(const char *label, int point, af_eval *eval, double *z, size_t d,
                       const double *score, double lp, double h, double lp_rounding);

#endif
