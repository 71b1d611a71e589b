/* Continuous distributions as FOLD ops: log densities with every
 * normalising constant kept, their partials in every argument, and the log
 * distribution functions of the normal and exponential. Outside the
 * support, or for an invalid parameter, a term is -Inf with zero partials. */
#include "ops_internal.h"

#define LOG_2 0.69314718055994530942
#define SQRT1_2 0.70710678118654752440

/* Scales, shapes and rates must be positive and finite, as in Stan. NaN
 * fails this test too. */
static int positive_finite(double x)
{
    return x > 0.0 && x < INFINITY;
}

/* a log(y), with 0 log(0) = 0 so that a boundary of the support with a zero
 * exponent (gamma with shape 1, beta with a = 1) has a finite density. */
static double xlogy(double a, double y)
{
    return a == 0.0 ? 0.0 : a * log(y);
}

/* a / y, with 0 / 0 = 0 for the same boundary. */
static double xdivy(double a, double y)
{
    return a == 0.0 ? 0.0 : a / y;
}

/* normal_lpdf(y | mu, sigma) with its normalising constant. A scale that is
 * not positive is outside the support: the term is -Inf with zero partials. */
static double rule_NORMAL_LPDF(const double *a, double *p)
{
    double sigma = a[2];
    if (!(sigma > 0.0)) {
        p[0] = p[1] = p[2] = 0.0;
        return -INFINITY;
    }
    double z = (a[0] - a[1]) / sigma;
    p[0] = -z / sigma;
    p[1] = z / sigma;
    p[2] = (z * z - 1.0) / sigma;
    return -0.5 * z * z - log(sigma) - LOG_SQRT_2PI;
}

static double rule_STD_NORMAL_LPDF(const double *a, double *p)
{
    p[0] = -a[0];
    return -0.5 * a[0] * a[0] - LOG_SQRT_2PI;
}


/* student_t_lpdf(y | nu, mu, sigma). W = (nu + 1) / (nu + z^2) is the
 * weight that turns z into each partial. */
static double rule_STUDENT_T_LPDF(const double *a, double *p)
{
    double nu = a[1], sigma = a[3];
    if (!positive_finite(nu) || !positive_finite(sigma))
        return -INFINITY;
    double z = (a[0] - a[2]) / sigma;
    double w = (nu + 1.0) / (nu + z * z);
    double log_kernel = log1p(z * z / nu);

    p[0] = -w * z / sigma;
    p[1] = 0.5 * (af_digamma(0.5 * (nu + 1.0)) - af_digamma(0.5 * nu) - 1.0 / nu -
                  log_kernel + w * z * z / nu);
    p[2] = w * z / sigma;
    p[3] = (w * z * z - 1.0) / sigma;
    return af_lgamma(0.5 * (nu + 1.0)) - af_lgamma(0.5 * nu) - 0.5 * (log(nu) + LOG_PI) -
           log(sigma) - 0.5 * (nu + 1.0) * log_kernel;
}

static double rule_CAUCHY_LPDF(const double *a, double *p)
{
    double sigma = a[2];
    if (!positive_finite(sigma))
        return -INFINITY;
    double z = (a[0] - a[1]) / sigma;
    double q = 1.0 + z * z;

    p[0] = -2.0 * z / (sigma * q);
    p[1] = -p[0];
    p[2] = (z * z - 1.0) / (sigma * q);
    return -LOG_PI - log(sigma) - log1p(z * z);
}

/* The partial in y at y = mu is taken as 0, the midpoint of the kink. */
static double rule_DOUBLE_EXPONENTIAL_LPDF(const double *a, double *p)
{
    double sigma = a[2];
    if (!positive_finite(sigma))
        return -INFINITY;
    double d = a[0] - a[1];
    double sign = d > 0.0 ? 1.0 : (d < 0.0 ? -1.0 : 0.0);

    p[0] = -sign / sigma;
    p[1] = sign / sigma;
    p[2] = (fabs(d) / sigma - 1.0) / sigma;
    return -LOG_2 - log(sigma) - fabs(d) / sigma;
}

/* Written in |z| so that exp never overflows; d/dz is -tanh(z / 2). */
static double rule_LOGISTIC_LPDF(const double *a, double *p)
{
    double sigma = a[2];
    if (!positive_finite(sigma))
        return -INFINITY;
    double z = (a[0] - a[1]) / sigma;
    double slope = -tanh(0.5 * z);

    p[0] = slope / sigma;
    p[1] = -slope / sigma;
    p[2] = -(1.0 + slope * z) / sigma;
    return -fabs(z) - 2.0 * log1p(exp(-fabs(z))) - log(sigma);
}

/* exponential_lpdf(y | beta) with rate beta, support y >= 0. */
static double rule_EXPONENTIAL_LPDF(const double *a, double *p)
{
    double y = a[0], beta = a[1];
    if (!positive_finite(beta) || !(y >= 0.0))
        return -INFINITY;
    p[0] = -beta;
    p[1] = 1.0 / beta - y;
    return log(beta) - beta * y;
}

/* gamma_lpdf(y | alpha, beta) with rate beta, support y >= 0. */
static double rule_GAMMA_LPDF(const double *a, double *p)
{
    double y = a[0], alpha = a[1], beta = a[2];
    if (!positive_finite(alpha) || !positive_finite(beta) || !(y >= 0.0))
        return -INFINITY;
    p[0] = xdivy(alpha - 1.0, y) - beta;
    p[1] = log(beta) - af_digamma(alpha) + log(y);
    p[2] = alpha / beta - y;
    return alpha * log(beta) - af_lgamma(alpha) + xlogy(alpha - 1.0, y) - beta * y;
}

/* inv_gamma_lpdf(y | alpha, beta) with scale beta, support y > 0. */
static double rule_INV_GAMMA_LPDF(const double *a, double *p)
{
    double y = a[0], alpha = a[1], beta = a[2];
    if (!positive_finite(alpha) || !positive_finite(beta) || !(y > 0.0))
        return -INFINITY;
    p[0] = (beta / y - alpha - 1.0) / y;
    p[1] = log(beta) - af_digamma(alpha) - log(y);
    p[2] = alpha / beta - 1.0 / y;
    return alpha * log(beta) - af_lgamma(alpha) - (alpha + 1.0) * log(y) - beta / y;
}

/* beta_lpdf(theta | a, b), support 0 <= theta <= 1. */
static double rule_BETA_LPDF(const double *a, double *p)
{
    double theta = a[0], alpha = a[1], beta = a[2];
    if (!positive_finite(alpha) || !positive_finite(beta) || !(theta >= 0.0 && theta <= 1.0))
        return -INFINITY;
    double psi_sum = af_digamma(alpha + beta);
    double log_rest = log1p(-theta);

    p[0] = xdivy(alpha - 1.0, theta) - xdivy(beta - 1.0, 1.0 - theta);
    p[1] = log(theta) - af_digamma(alpha) + psi_sum;
    p[2] = log_rest - af_digamma(beta) + psi_sum;
    return xlogy(alpha - 1.0, theta) + (beta == 1.0 ? 0.0 : (beta - 1.0) * log_rest) -
           (af_lgamma(alpha) + af_lgamma(beta) - af_lgamma(alpha + beta));
}

/* lognormal_lpdf(y | mu, sigma), support y > 0. */
static double rule_LOGNORMAL_LPDF(const double *a, double *p)
{
    double y = a[0], sigma = a[2];
    if (!positive_finite(sigma) || !(y > 0.0))
        return -INFINITY;
    double log_y = log(y);
    double z = (log_y - a[1]) / sigma;

    p[0] = -(1.0 + z / sigma) / y;
    p[1] = z / sigma;
    p[2] = (z * z - 1.0) / sigma;
    return -0.5 * z * z - log(sigma) - LOG_SQRT_2PI - log_y;
}

/* uniform_lpdf(y | alpha, beta), support alpha <= y <= beta; the bounds
 * must be finite with alpha < beta. */
static double rule_UNIFORM_LPDF(const double *a, double *p)
{
    double y = a[0], lower = a[1], upper = a[2];
    double width = upper - lower;
    if (!positive_finite(width) || !(y >= lower && y <= upper))
        return -INFINITY;
    p[1] = 1.0 / width;
    p[2] = -1.0 / width;
    return -log(width);
}

/* log Phi(z) and the ratio phi(z) / Phi(z), its derivative. Below z = -37
 * Phi underflows soon, so both come from the asymptotic series
 * Phi(z) = phi(z) / -z * (1 - 1/z^2 + 3/z^4 - 15/z^6 + 105/z^8 ...),
 * whose first omitted term there is below 1e-12. */
static double log_phi(double z, double *ratio)
{
    if (z < -37.0) {
        double r = 1.0 / (z * z);
        double series = 1.0 - r * (1.0 - r * (3.0 - r * (15.0 - r * 105.0)));
        *ratio = -z / series;
        return -0.5 * z * z - LOG_SQRT_2PI - log(-z) + log(series);
    }
    double upper = 0.5 * erfc(z * SQRT1_2);
    double lower = 0.5 * erfc(-z * SQRT1_2);
    *ratio = exp(-0.5 * z * z - LOG_SQRT_2PI) / lower;
    return z > 0.0 ? log1p(-upper) : log(lower);
}

/* normal_lcdf (SIGN = 1) or normal_lccdf (SIGN = -1): log(1 - Phi(z)) is
 * log Phi(-z). */
static double normal_log_tail(const double *a, double *p, double sign)
{
    double sigma = a[2];
    if (!positive_finite(sigma))
        return -INFINITY;
    double ratio;
    double z = sign * (a[0] - a[1]) / sigma;
    double y = log_phi(z, &ratio);

    p[0] = sign * ratio / sigma;
    p[1] = -sign * ratio / sigma;
    p[2] = -ratio * z / sigma;
    return y;
}

static double rule_NORMAL_LCDF(const double *a, double *p)
{
    return normal_log_tail(a, p, 1.0);
}

static double rule_NORMAL_LCCDF(const double *a, double *p)
{
    return normal_log_tail(a, p, -1.0);
}

/* log(1 - exp(-beta y)); -Inf for y <= 0, where the CDF is 0. */
static double rule_EXPONENTIAL_LCDF(const double *a, double *p)
{
    double y = a[0], beta = a[1];
    if (!positive_finite(beta) || !(y > 0.0))
        return -INFINITY;
    double ratio = 1.0 / expm1(beta * y);
    p[0] = beta * ratio;
    p[1] = y * ratio;
    return log1m_exp(-beta * y);
}

/* -beta y for y >= 0, and 0 below the support, where the CCDF is 1. */
static double rule_EXPONENTIAL_LCCDF(const double *a, double *p)
{
    double y = a[0], beta = a[1];
    if (!positive_finite(beta) || isnan(y))
        return -INFINITY;
    if (y < 0.0)
        return 0.0;
    p[0] = -beta;
    p[1] = -y;
    return -beta * y;
}

AF_FOLD_KERNEL(NORMAL_LPDF)
AF_FOLD_KERNEL(STD_NORMAL_LPDF)
AF_FOLD_KERNEL(STUDENT_T_LPDF)
AF_FOLD_KERNEL(CAUCHY_LPDF)
AF_FOLD_KERNEL(DOUBLE_EXPONENTIAL_LPDF)
AF_FOLD_KERNEL(LOGISTIC_LPDF)
AF_FOLD_KERNEL(EXPONENTIAL_LPDF)
AF_FOLD_KERNEL(GAMMA_LPDF)
AF_FOLD_KERNEL(INV_GAMMA_LPDF)
AF_FOLD_KERNEL(BETA_LPDF)
AF_FOLD_KERNEL(LOGNORMAL_LPDF)
AF_FOLD_KERNEL(UNIFORM_LPDF)
AF_FOLD_KERNEL(NORMAL_LCDF)
AF_FOLD_KERNEL(NORMAL_LCCDF)
AF_FOLD_KERNEL(EXPONENTIAL_LCDF)
AF_FOLD_KERNEL(EXPONENTIAL_LCCDF)
