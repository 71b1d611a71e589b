/* af_weights: importance weights w = q / rho of flow samples. Their
 * effective sample size, the log normalising constant with its standard
 * error, the Pareto k diagnostic of their tail, and resampling to
 * unweighted draws. Works on log weights, so no weight overflows. */
#ifndef AF_WEIGHTS_H
#define AF_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

typedef struct af_weights_summary {
    double ess;       /* (sum w)^2 / sum w^2 */
    double log_z;     /* log of the mean weight: estimate of log Z */
    double log_z_se;  /* its delta-method standard error */
    double pareto_k;  /* shape of a generalized Pareto fit to the largest weights; NAN
                         when there are too few draws */
    double max_ratio; /* the largest weight over the mean weight; 0 without weights */
    size_t zero_weights; /* draws with log weight -inf or NaN: outside the support */
} af_weights_summary;

/* Pareto k above which the weighted estimates are not reliable (the
 * threshold of Vehtari et al., Pareto smoothed importance sampling, 2024). */
#define AF_WEIGHTS_K_UNRELIABLE 0.7

/* Below this ratio of the largest weight to the mean the weights are
 * nearly constant: the estimates are sound whatever the fitted k, which
 * then describes noise. */
#define AF_WEIGHTS_FLAT_RATIO 2.0

/* Summarises the N log weights LOG_WEIGHT. A NaN log weight counts as
 * weight 0, as -inf does. */
void af_weights_summarise(const double *log_weight, size_t n, af_weights_summary *out);

/* Estimates the shape k of a generalized Pareto distribution fitted to the
 * N exceedances X (all >= 0) by the method of Zhang and Stephens (2009),
 * with the weakly informative prior of PSIS. X is sorted in place. */
double af_weights_pareto_k(double *x, size_t n);

/* Draws N indices INDEX[N] in proportion to the weights, by systematic
 * resampling with one uniform from SEED. Returns 0, or -1 when every
 * weight is zero. */
int af_weights_resample(const double *log_weight, size_t n, uint64_t seed, size_t *index);

#endif
