/* Discrete distributions as FOLD ops: log mass functions with their
 * normalising constants and partials in the real parameters. The outcome n
 * (and the trial count N) are ints and get a zero partial. An outcome
 * outside the support or an invalid parameter gives -Inf. */
#include "ops_internal.h"

/* A whole number >= 0, as the outcome of a count distribution must be. */
static int is_count(double n)
{
    return n >= 0.0 && n < INFINITY && n == floor(n);
}

static int is_probability(double theta)
{
    return theta >= 0.0 && theta <= 1.0;
}

/* log(theta^n (1 - theta)^(N - n)), with 0 log 0 = 0 at theta = 0 or 1.
 * Writes the partial in theta to *P. */
static double bernoulli_terms(double n, double trials, double theta, double *p)
{
    double failures = trials - n;
    double y = 0.0;
    *p = 0.0;
    if (n > 0.0) {
        y += n * log(theta);
        *p += n / theta;
    }
    if (failures > 0.0) {
        y += failures * log1p(-theta);
        *p -= failures / (1.0 - theta);
    }
    return y;
}

/* The same in the log-odds alpha, from log_inv_logit and log1m_inv_logit
 * so that a large |alpha| neither overflows nor loses the tail. */
static double bernoulli_logit_terms(double n, double trials, double alpha, double *p)
{
    double failures = trials - n;
    double y = 0.0;
    if (n > 0.0)
        y -= n * log1p_exp(-alpha);
    if (failures > 0.0)
        y -= failures * log1p_exp(alpha);
    *p = n * inv_logit(-alpha) - failures * inv_logit(alpha);
    return y;
}

static double log_choose(double trials, double n)
{
    return af_lgamma(trials + 1.0) - af_lgamma(n + 1.0) - af_lgamma(trials - n + 1.0);
}

static double rule_BERNOULLI_LPMF(const double *a, double *p)
{
    double n = a[0], theta = a[1];
    if (!(n == 0.0 || n == 1.0) || !is_probability(theta))
        return -INFINITY;
    return bernoulli_terms(n, 1.0, theta, &p[1]);
}

static double rule_BERNOULLI_LOGIT_LPMF(const double *a, double *p)
{
    double n = a[0], alpha = a[1];
    if (!(n == 0.0 || n == 1.0) || isnan(alpha))
        return -INFINITY;
    return bernoulli_logit_terms(n, 1.0, alpha, &p[1]);
}

/* binomial_lpmf(n | N, theta) for ints 0 <= n <= N. */
static double rule_BINOMIAL_LPMF(const double *a, double *p)
{
    double n = a[0], trials = a[1], theta = a[2];
    if (!is_count(n) || !is_count(trials) || n > trials || !is_probability(theta))
        return -INFINITY;
    return log_choose(trials, n) + bernoulli_terms(n, trials, theta, &p[2]);
}

static double rule_BINOMIAL_LOGIT_LPMF(const double *a, double *p)
{
    double n = a[0], trials = a[1], alpha = a[2];
    if (!is_count(n) || !is_count(trials) || n > trials || isnan(alpha))
        return -INFINITY;
    return log_choose(trials, n) + bernoulli_logit_terms(n, trials, alpha, &p[2]);
}

/* poisson_lpmf(n | lambda) for lambda >= 0; lambda = 0 puts all mass on 0. */
static double rule_POISSON_LPMF(const double *a, double *p)
{
    double n = a[0], lambda = a[1];
    if (!is_count(n) || !(lambda >= 0.0 && lambda < INFINITY))
        return -INFINITY;
    if (lambda == 0.0)
        return n == 0.0 ? 0.0 : -INFINITY;
    p[1] = n / lambda - 1.0;
    return n * log(lambda) - lambda - af_lgamma(n + 1.0);
}

/* poisson_log_lpmf(n | alpha) with log rate alpha; alpha = -Inf is rate 0. */
static double rule_POISSON_LOG_LPMF(const double *a, double *p)
{
    double n = a[0], alpha = a[1];
    if (!is_count(n) || !(alpha < INFINITY))
        return -INFINITY;
    if (alpha == -INFINITY)
        return n == 0.0 ? 0.0 : -INFINITY;
    double rate = exp(alpha);
    p[1] = n - rate;
    return n * alpha - rate - af_lgamma(n + 1.0);
}

AF_FOLD_KERNEL(BERNOULLI_LPMF)
AF_FOLD_KERNEL(BERNOULLI_LOGIT_LPMF)
AF_FOLD_KERNEL(BINOMIAL_LPMF)
AF_FOLD_KERNEL(BINOMIAL_LOGIT_LPMF)
AF_FOLD_KERNEL(POISSON_LPMF)
AF_FOLD_KERNEL(POISSON_LOG_LPMF)
