/* Elementary pointwise ops: powers, trigonometric and hyperbolic functions,
 * rounding, minimum and maximum, and the logical and modulo operators. Each
 * rule returns the value and writes its partials; where a function has no
 * derivative (a kink, a jump) the rule picks one of the one-sided values. */
#include "ops_internal.h"

#define LN2 0.69314718055994530942
#define LN10 2.30258509299404568402

/* The partial in the exponent is y log(a); for a <= 0 it is taken as 0,
 * its limit at a = 0 for b > 0, because log(a) is not real there. */
static double rule_POW(const double *a, double *p)
{
    double y = pow(a[0], a[1]);
    p[0] = a[1] == 0.0 ? 0.0 : a[1] * pow(a[0], a[1] - 1.0);
    p[1] = a[0] > 0.0 ? y * log(a[0]) : 0.0;
    return y;
}

#define rule_POW_OP rule_POW

static double rule_TAN(const double *a, double *p)
{
    double y = tan(a[0]);
    p[0] = 1.0 + y * y;
    return y;
}

static double rule_ASIN(const double *a, double *p)
{
    p[0] = 1.0 / sqrt(1.0 - a[0] * a[0]);
    return asin(a[0]);
}

static double rule_ACOS(const double *a, double *p)
{
    p[0] = -1.0 / sqrt(1.0 - a[0] * a[0]);
    return acos(a[0]);
}

static double rule_ATAN(const double *a, double *p)
{
    p[0] = 1.0 / (1.0 + a[0] * a[0]);
    return atan(a[0]);
}

/* atan2(y, x); at the origin both partials are taken as 0. */
static double rule_ATAN2(const double *a, double *p)
{
    double r2 = a[0] * a[0] + a[1] * a[1];
    p[0] = r2 > 0.0 ? a[1] / r2 : 0.0;
    p[1] = r2 > 0.0 ? -a[0] / r2 : 0.0;
    return atan2(a[0], a[1]);
}

static double rule_SINH(const double *a, double *p)
{
    p[0] = cosh(a[0]);
    return sinh(a[0]);
}

static double rule_COSH(const double *a, double *p)
{
    p[0] = sinh(a[0]);
    return cosh(a[0]);
}

static double rule_TANH(const double *a, double *p)
{
    double y = tanh(a[0]);
    p[0] = 1.0 - y * y;
    return y;
}

static double rule_ASINH(const double *a, double *p)
{
    p[0] = 1.0 / sqrt(a[0] * a[0] + 1.0);
    return asinh(a[0]);
}

/* Defined for x >= 1; (x - 1)(x + 1) keeps precision near 1. */
static double rule_ACOSH(const double *a, double *p)
{
    p[0] = 1.0 / sqrt((a[0] - 1.0) * (a[0] + 1.0));
    return acosh(a[0]);
}

static double rule_ATANH(const double *a, double *p)
{
    p[0] = 1.0 / ((1.0 - a[0]) * (1.0 + a[0]));
    return atanh(a[0]);
}

static double rule_SQUARE(const double *a, double *p)
{
    p[0] = 2.0 * a[0];
    return a[0] * a[0];
}

static double rule_INV(const double *a, double *p)
{
    double y = 1.0 / a[0];
    p[0] = -y * y;
    return y;
}

static double rule_INV_SQRT(const double *a, double *p)
{
    double y = 1.0 / sqrt(a[0]);
    p[0] = -0.5 * y / a[0];
    return y;
}

static double rule_INV_SQUARE(const double *a, double *p)
{
    double y = 1.0 / (a[0] * a[0]);
    p[0] = -2.0 * y / a[0];
    return y;
}

/* The derivative at 0 is +Inf, as the function is vertical there. */
static double rule_CBRT(const double *a, double *p)
{
    double y = cbrt(a[0]);
    p[0] = 1.0 / (3.0 * y * y);
    return y;
}

static double rule_EXP2(const double *a, double *p)
{
    double y = exp2(a[0]);
    p[0] = LN2 * y;
    return y;
}

static double rule_LOG2(const double *a, double *p)
{
    p[0] = 1.0 / (LN2 * a[0]);
    return log2(a[0]);
}

static double rule_LOG10(const double *a, double *p)
{
    p[0] = 1.0 / (LN10 * a[0]);
    return log10(a[0]);
}

/* The partial goes to the argument that fmin returns: the first on a tie,
 * the other one when an argument is NaN (fmin ignores a NaN). */
static double rule_FMIN(const double *a, double *p)
{
    int first = a[0] <= a[1] || isnan(a[1]);
    p[0] = first ? 1.0 : 0.0;
    p[1] = first ? 0.0 : 1.0;
    return first ? a[0] : a[1];
}

static double rule_FMAX(const double *a, double *p)
{
    int first = a[0] >= a[1] || isnan(a[1]);
    p[0] = first ? 1.0 : 0.0;
    p[1] = first ? 0.0 : 1.0;
    return first ? a[0] : a[1];
}

/* min and max of two numbers are fmin and fmax; only their result type
 * differs (int for two ints). */
#define rule_MIN2 rule_FMIN
#define rule_MAX2 rule_FMAX

static double rule_FDIM(const double *a, double *p)
{
    int positive = a[0] > a[1];
    p[0] = positive ? 1.0 : 0.0;
    p[1] = positive ? -1.0 : 0.0;
    return fdim(a[0], a[1]);
}

/* At the origin both partials are taken as 0, as for norm2. */
static double rule_HYPOT(const double *a, double *p)
{
    double y = hypot(a[0], a[1]);
    p[0] = y > 0.0 ? a[0] / y : 0.0;
    p[1] = y > 0.0 ? a[1] / y : 0.0;
    return y;
}

/* The derivative at 0 is taken as 0, the midpoint of the one-sided ones. */
static double rule_FABS(const double *a, double *p)
{
    p[0] = a[0] > 0.0 ? 1.0 : (a[0] < 0.0 ? -1.0 : 0.0);
    return fabs(a[0]);
}

/* abs of a real is fabs; of an int it stays an int. */
#define rule_ABS rule_FABS

/* Rounding is piecewise constant: the partial is 0 away from the jumps and
 * taken as 0 on them. */
#define ROUNDING_RULE(id, fn)                                                            \
    static double rule_##id(const double *a, double *p)                                  \
    {                                                                                    \
        p[0] = 0.0;                                                                      \
        return fn(a[0]);                                                                 \
    }
ROUNDING_RULE(FLOOR, floor)
ROUNDING_RULE(CEIL, ceil)
ROUNDING_RULE(ROUND, round)
ROUNDING_RULE(TRUNC, trunc)

/* step(x) is 0 for x < 0 and 1 otherwise, int_step(x) is 1 for x > 0 and 0
 * otherwise, as in Stan; a NaN argument gives 0 for both. */
static double rule_STEP(const double *a, double *p)
{
    p[0] = 0.0;
    return a[0] >= 0.0 ? 1.0 : 0.0;
}

static double rule_INT_STEP(const double *a, double *p)
{
    p[0] = 0.0;
    return a[0] > 0.0 ? 1.0 : 0.0;
}

/* Logical operators take any nonzero value (NaN included) as true. */
static double rule_NOT(const double *a, double *p)
{
    p[0] = 0.0;
    return a[0] == 0.0 ? 1.0 : 0.0;
}

static double rule_AND(const double *a, double *p)
{
    p[0] = p[1] = 0.0;
    return (a[0] != 0.0 && a[1] != 0.0) ? 1.0 : 0.0;
}

static double rule_OR(const double *a, double *p)
{
    p[0] = p[1] = 0.0;
    return (a[0] != 0.0 || a[1] != 0.0) ? 1.0 : 0.0;
}

/* Int modulo with the sign of the dividend, as C and Stan's %. The caller
 * rejects a zero divisor it can see; one computed at run time gives NaN. */
static double rule_MOD(const double *a, double *p)
{
    p[0] = p[1] = 0.0;
    return fmod(a[0], a[1]);
}

AF_MAP_KERNEL(POW)
AF_MAP_KERNEL(POW_OP)
AF_MAP_KERNEL(TAN)
AF_MAP_KERNEL(ASIN)
AF_MAP_KERNEL(ACOS)
AF_MAP_KERNEL(ATAN)
AF_MAP_KERNEL(ATAN2)
AF_MAP_KERNEL(SINH)
AF_MAP_KERNEL(COSH)
AF_MAP_KERNEL(TANH)
AF_MAP_KERNEL(ASINH)
AF_MAP_KERNEL(ACOSH)
AF_MAP_KERNEL(ATANH)
AF_MAP_KERNEL(SQUARE)
AF_MAP_KERNEL(INV)
AF_MAP_KERNEL(INV_SQRT)
AF_MAP_KERNEL(INV_SQUARE)
AF_MAP_KERNEL(CBRT)
AF_MAP_KERNEL(EXP2)
AF_MAP_KERNEL(LOG2)
AF_MAP_KERNEL(LOG10)
AF_MAP_KERNEL(FMIN)
AF_MAP_KERNEL(FMAX)
AF_MAP_KERNEL(FDIM)
AF_MAP_KERNEL(HYPOT)
AF_MAP_KERNEL(MIN2)
AF_MAP_KERNEL(MAX2)
AF_MAP_KERNEL(FABS)
AF_MAP_KERNEL(ABS)
AF_MAP_KERNEL(FLOOR)
AF_MAP_KERNEL(CEIL)
AF_MAP_KERNEL(ROUND)
AF_MAP_KERNEL(TRUNC)
AF_MAP_KERNEL(STEP)
AF_MAP_KERNEL(INT_STEP)
AF_MAP_KERNEL(NOT)
AF_MAP_KERNEL(AND)
AF_MAP_KERNEL(OR)
AF_MAP_KERNEL(MOD)
