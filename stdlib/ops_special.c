/* Special functions and log-scale helpers: gamma family (lgamma, digamma,
 * trigamma, lbeta, lchoose), error function family (erf, Phi, inv_Phi) and
 * the logit family. Digamma and its derivatives are computed here by
 * recurrence, reflection and asymptotic series; lgamma comes from libm. */
#define _DEFAULT_SOURCE /* lgamma_r in glibc */
#include "ops_internal.h"

#define SQRT_2PI 2.50662827463100050242
#define SQRT1_2 0.70710678118654752440
#define TWO_OVER_SQRT_PI 1.12837916709551257390

/* lgamma_r leaves the sign in a local instead of the global signgam, so
 * that kernels may run on several threads. */
double af_lgamma(double x)
{
#if defined(__GLIBC__)
    int sign;
    return lgamma_r(x, &sign);
#else
    /* NOTE: plain lgamma writes signgam, a data race under threads. */
    return lgamma(x);
#endif
}

/* ---- polygamma of order 0 (digamma), 1 (trigamma), 2 (tetragamma) ---- */

/* Series in 1/x for x >= RECURRENCE_FLOOR, from the Bernoulli numbers
 * B2..B14; the first omitted term is below 1e-16 relative there. */
#define RECURRENCE_FLOOR 10.0

static double polygamma_asymptotic(int order, double x)
{
    double r = 1.0 / (x * x);
    switch (order) {
    case 0:
        return log(x) - 0.5 / x -
               r * (1.0 / 12 -
                    r * (1.0 / 120 -
                         r * (1.0 / 252 -
                              r * (1.0 / 240 -
                                   r * (1.0 / 132 - r * (691.0 / 32760 - r / 12))))));
    case 1:
        return 1.0 / x + 0.5 * r +
               r / x *
                   (1.0 / 6 -
                    r * (1.0 / 30 -
                         r * (1.0 / 42 -
                              r * (1.0 / 30 - r * (5.0 / 66 - r * (691.0 / 2730 - r * 7 / 6))))));
    default:
        return -r - r / x -
               r * r *
                   (0.5 -
                    r * (1.0 / 6 -
                         r * (1.0 / 6 -
                              r * (3.0 / 10 - r * (5.0 / 6 - r * (691.0 / 210 - r * 35 / 2))))));
    }
}

/* psi_n(x) - psi_n(x + 1): -1/x, 1/x^2, -2/x^3. */
static double polygamma_step(int order, double x)
{
    double inv = 1.0 / x;
    if (order == 0)
        return -inv;
    return order == 1 ? inv * inv : -2.0 * inv * inv * inv;
}

/* psi_n(x) - (-1)^n psi_n(1 - x), from psi(1 - x) - psi(x) = pi cot(pi x)
 * and its derivatives. F is x reduced to [0, 1): every term has period 1,
 * and the reduction keeps pi x exact for large |x|. */
static double polygamma_reflection(int order, double f)
{
    double s = sin(PI * f), c = cos(PI * f);
    if (order == 0)
        return -PI * c / s;
    if (order == 1)
        return PI * PI / (s * s);
    return -2.0 * PI * PI * PI * c / (s * s * s);
}

/* NaN at the poles 0, -1, -2, ... where the sign of the infinity depends
 * on the side of approach. */
static double polygamma(int order, double x)
{
    if (isnan(x) || x == -INFINITY || (x <= 0.0 && x == floor(x)))
        return NAN;
    if (x < 0.0) {
        double mirror = polygamma(order, 1.0 - x);
        return (order == 1 ? -mirror : mirror) + polygamma_reflection(order, x - floor(x));
    }
    double shift = 0.0;
    for (; x < RECURRENCE_FLOOR; x += 1.0)
        shift += polygamma_step(order, x);
    return shift + polygamma_asymptotic(order, x);
}

double af_digamma(double x)
{
    return polygamma(0, x);
}

double af_trigamma(double x)
{
    return polygamma(1, x);
}

/* ---- inverse of the standard normal distribution function ---- */

/* Peter J. Acklam's rational approximations (relative error below 1.2e-9),
 * central region |p - 0.5| <= 0.475 and lower tail. */
static const double acklam_a[6] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                   -2.759285104469687e+02, 1.383577518672690e+02,
                                   -3.066479806614716e+01, 2.506628277459239e+00};
static const double acklam_b[5] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                   -1.556989798598866e+02, 6.680131188771972e+01,
                                   -1.328068155288572e+01};
static const double acklam_c[6] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                   -2.400758277161838e+00, -2.549732539343734e+00,
                                   4.374664141464968e+00,  2.938163982698783e+00};
static const double acklam_d[4] = {7.784695709041462e-03, 3.224671290700398e-01,
                                   2.445134137142996e+00, 3.754408661907416e+00};

static double polynomial(const double *coef, int n, double x)
{
    double y = coef[0];
    for (int i = 1; i < n; i++)
        y = y * x + coef[i];
    return y;
}

/* Lower-tail quantile for TAIL = min(p, 1 - p) < 0.02425. */
static double acklam_tail(double tail)
{
    double q = sqrt(-2.0 * log(tail));
    return polynomial(acklam_c, 6, q) / (polynomial(acklam_d, 4, q) * q + 1.0);
}

/* The approximation, then one Halley step on Phi(x) = p, which brings the
 * error to rounding level. The step uses the tail nearer to x, computed
 * with erfc, so that p close to 1 keeps its relative accuracy in 1 - p. */
double af_inv_phi(double p)
{
    if (!(p >= 0.0 && p <= 1.0))
        return NAN;
    if (p == 0.0 || p == 1.0)
        return p == 0.0 ? -INFINITY : INFINITY;

    double x;
    double q = p - 0.5;
    if (fabs(q) <= 0.475) {
        double r = q * q;
        x = q * polynomial(acklam_a, 6, r) / (polynomial(acklam_b, 5, r) * r + 1.0);
    } else {
        x = q < 0.0 ? acklam_tail(p) : -acklam_tail(1.0 - p);
    }

    /* e = Phi(x) - p, from the upper tail when p > 0.5 (1 - p is exact). */
    double e = p <= 0.5 ? 0.5 * erfc(-x * SQRT1_2) - p : (1.0 - p) - 0.5 * erfc(x * SQRT1_2);
    double u = e * SQRT_2PI * exp(0.5 * x * x);
    return x - u / (1.0 + 0.5 * x * u);
}

/* ---- pointwise rules ---- */

static double rule_LGAMMA(const double *a, double *p)
{
    p[0] = af_digamma(a[0]);
    return af_lgamma(a[0]);
}

static double rule_DIGAMMA(const double *a, double *p)
{
    p[0] = af_trigamma(a[0]);
    return af_digamma(a[0]);
}

static double rule_TRIGAMMA(const double *a, double *p)
{
    p[0] = polygamma(2, a[0]);
    return af_trigamma(a[0]);
}

static double rule_ERF(const double *a, double *p)
{
    p[0] = TWO_OVER_SQRT_PI * exp(-a[0] * a[0]);
    return erf(a[0]);
}

static double rule_ERFC(const double *a, double *p)
{
    p[0] = -TWO_OVER_SQRT_PI * exp(-a[0] * a[0]);
    return erfc(a[0]);
}

/* Standard normal distribution function, from erfc so that the lower tail
 * keeps its relative accuracy down to about -37. */
static double rule_PHI(const double *a, double *p)
{
    p[0] = exp(-0.5 * a[0] * a[0]) / SQRT_2PI;
    return 0.5 * erfc(-a[0] * SQRT1_2);
}

/* Stan's logistic approximation inv_logit(0.07056 x^3 + 1.5976 x). */
static double rule_PHI_APPROX(const double *a, double *p)
{
    double x = a[0];
    double y = inv_logit(x * (0.07056 * x * x + 1.5976));
    p[0] = y * (1.0 - y) * (3.0 * 0.07056 * x * x + 1.5976);
    return y;
}

static double rule_INV_PHI(const double *a, double *p)
{
    double x = af_inv_phi(a[0]);
    p[0] = SQRT_2PI * exp(0.5 * x * x);
    return x;
}

/* NOTE: the difference of lgammas loses absolute accuracy when a + b is
 * large (about 1e-16 * lgamma(a + b)); Stan's lbeta is more careful. */
static double rule_LBETA(const double *a, double *p)
{
    double psi_sum = af_digamma(a[0] + a[1]);
    p[0] = af_digamma(a[0]) - psi_sum;
    p[1] = af_digamma(a[1]) - psi_sum;
    return af_lgamma(a[0]) + af_lgamma(a[1]) - af_lgamma(a[0] + a[1]);
}

/* log of the binomial coefficient n choose k for real n and k, through
 * the gamma function. */
static double rule_LCHOOSE(const double *a, double *p)
{
    double n = a[0], k = a[1];
    double psi_rest = af_digamma(n - k + 1.0);
    p[0] = af_digamma(n + 1.0) - psi_rest;
    p[1] = psi_rest - af_digamma(k + 1.0);
    return af_lgamma(n + 1.0) - af_lgamma(k + 1.0) - af_lgamma(n - k + 1.0);
}

#define rule_BINOMIAL_COEFFICIENT_LOG rule_LCHOOSE

static double rule_INV_LOGIT(const double *a, double *p)
{
    double y = inv_logit(a[0]);
    p[0] = y * (1.0 - y);
    return y;
}

/* log(u / (1 - u)) as two logs, so that u near 0 or 1 keeps precision. */
static double rule_LOGIT(const double *a, double *p)
{
    double u = a[0];
    p[0] = 1.0 / (u * (1.0 - u));
    return log(u) - log1p(-u);
}

static double rule_LOG_INV_LOGIT(const double *a, double *p)
{
    p[0] = inv_logit(-a[0]);
    return -log1p_exp(-a[0]);
}

static double rule_LOG1M_INV_LOGIT(const double *a, double *p)
{
    p[0] = -inv_logit(a[0]);
    return -log1p_exp(a[0]);
}

static double rule_LOG1M(const double *a, double *p)
{
    p[0] = -1.0 / (1.0 - a[0]);
    return log1p(-a[0]);
}

/* The derivative -exp(x) / (1 - exp(x)) is 1 / expm1(-x) negated. */
static double rule_LOG1M_EXP(const double *a, double *p)
{
    p[0] = -1.0 / expm1(-a[0]);
    return log1m_exp(a[0]);
}

/* log(exp(a) - exp(b)) for a >= b: -Inf when they are equal, a when b is
 * -Inf, NaN when a < b. */
static double rule_LOG_DIFF_EXP(const double *a, double *p)
{
    double x = a[0], y = a[1];
    if (y == -INFINITY) {
        p[0] = 1.0;
        p[1] = 0.0;
        return x;
    }
    p[0] = -1.0 / expm1(y - x);
    p[1] = -1.0 / expm1(x - y);
    return x + log1m_exp(y - x);
}

AF_MAP_KERNEL(LGAMMA)
AF_MAP_KERNEL(DIGAMMA)
AF_MAP_KERNEL(TRIGAMMA)
AF_MAP_KERNEL(ERF)
AF_MAP_KERNEL(ERFC)
AF_MAP_KERNEL(PHI)
AF_MAP_KERNEL(PHI_APPROX)
AF_MAP_KERNEL(INV_PHI)
AF_MAP_KERNEL(LBETA)
AF_MAP_KERNEL(LCHOOSE)
AF_MAP_KERNEL(BINOMIAL_COEFFICIENT_LOG)
AF_MAP_KERNEL(INV_LOGIT)
AF_MAP_KERNEL(LOGIT)
AF_MAP_KERNEL(LOG_INV_LOGIT)
AF_MAP_KERNEL(LOG1M_INV_LOGIT)
AF_MAP_KERNEL(LOG1M)
AF_MAP_KERNEL(LOG1M_EXP)
AF_MAP_KERNEL(LOG_DIFF_EXP)
