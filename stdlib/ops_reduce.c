/* Reductions of a vector to one number: log_sum_exp, norm2, distance,
 * prod, mean, variance, sd, min and max. Each kernel writes the value and
 * the partials of every element, per point, and the shared loop of
 * af_combine_tangents turns them into tangents. */
#include "ops_internal.h"

static void finish_tangents(const af_op_call *c, size_t n)
{
    if (c->tangent != NULL && c->dim > 0)
        af_combine_tangents(c, n, 1);
}

/* log(sum(exp(x))) shifted by the maximum; the partials are softmax(x). */
void af_kernel_LOG_SUM_EXP(const af_op_call *c)
{
    const af_operand *x = &c->args[0];
    size_t n = x->len;
    size_t stride = c->stride;

    for (size_t b = 0; b < c->count; b++) {
        double m = -INFINITY;
        for (size_t e = 0; e < n; e++)
            m = fmax(m, operand_value(x, e, b));
        double y = m;
        if (isfinite(m)) {
            double s = 0.0;
            for (size_t e = 0; e < n; e++)
                s += exp(operand_value(x, e, b) - m);
            y = m + log(s);
        }
        c->value[b] = y;
        for (size_t e = 0; e < n; e++)
            c->scratch[e * stride + b] = isfinite(y) ? exp(operand_value(x, e, b) - y) : 0.0;
    }
    finish_tangents(c, n);
}

/* Euclidean norm of x - y (y = NULL: of x), with scalars broadcast. Its
 * gradient (x - y) / norm is taken as 0 where the norm is 0 and has no
 * derivative, so that a point at the origin keeps a finite score. */
static void euclidean_kernel(const af_op_call *c, const af_operand *y)
{
    const af_operand *x = &c->args[0];
    size_t n = af_broadcast_len(c);
    size_t stride = c->stride;

    for (size_t b = 0; b < c->count; b++) {
        double s = 0.0;
        for (size_t e = 0; e < n; e++) {
            double d = operand_value(x, e, b) - (y ? operand_value(y, e, b) : 0.0);
            s += d * d;
        }
        double norm = sqrt(s);
        c->value[b] = norm;
        for (size_t e = 0; e < n; e++) {
            double d = operand_value(x, e, b) - (y ? operand_value(y, e, b) : 0.0);
            double partial = norm > 0.0 ? d / norm : 0.0;
            c->scratch[e * stride + b] = partial;
            if (y)
                c->scratch[(n + e) * stride + b] = -partial;
        }
    }
    finish_tangents(c, n);
}

void af_kernel_NORM2(const af_op_call *c)
{
    euclidean_kernel(c, NULL);
}

void af_kernel_DISTANCE(const af_op_call *c)
{
    euclidean_kernel(c, &c->args[1]);
}

/* The partial of element e is the product of the others: prefix products
 * first, then a backward sweep multiplies in the suffix, with no division
 * (so a zero element is exact). The product of no elements is 1. */
void af_kernel_PROD(const af_op_call *c)
{
    const af_operand *x = &c->args[0];
    size_t n = x->len;
    size_t stride = c->stride;

    for (size_t b = 0; b < c->count; b++) {
        double prefix = 1.0;
        for (size_t e = 0; e < n; e++) {
            c->scratch[e * stride + b] = prefix;
            prefix *= operand_value(x, e, b);
        }
        c->value[b] = prefix;
        double suffix = 1.0;
        for (size_t e = n; e-- > 0;) {
            c->scratch[e * stride + b] *= suffix;
            suffix *= operand_value(x, e, b);
        }
    }
    finish_tangents(c, n);
}

/* The mean of no elements is NaN (0 / 0). */
void af_kernel_MEAN(const af_op_call *c)
{
    const af_operand *x = &c->args[0];
    size_t n = x->len;
    size_t stride = c->stride;

    for (size_t b = 0; b < c->count; b++) {
        double s = 0.0;
        for (size_t e = 0; e < n; e++) {
            s += operand_value(x, e, b);
            c->scratch[e * stride + b] = 1.0 / (double)n;
        }
        c->value[b] = s / (double)n;
    }
    finish_tangents(c, n);
}

/* Sample variance with divisor n - 1, as Stan: 0 for one element, NaN for
 * none. Writes the partials 2 (x_e - mean) / (n - 1) and returns the
 * variance of point B. */
static double variance_of_point(const af_op_call *c, size_t b)
{
    const af_operand *x = &c->args[0];
    size_t n = x->len;
    if (n == 0)
        return NAN;

    double mean = 0.0;
    for (size_t e = 0; e < n; e++)
        mean += operand_value(x, e, b);
    mean /= (double)n;
    double divisor = n > 1 ? (double)(n - 1) : 1.0;
    double s = 0.0;
    for (size_t e = 0; e < n; e++) {
        double d = operand_value(x, e, b) - mean;
        s += d * d;
        c->scratch[e * c->stride + b] = 2.0 * d / divisor;
    }
    return s / divisor;
}

void af_kernel_VARIANCE(const af_op_call *c)
{
    for (size_t b = 0; b < c->count; b++)
        c->value[b] = variance_of_point(c, b);
    finish_tangents(c, c->args[0].len);
}

/* sd = sqrt(variance); where it is 0 the partials are taken as 0. */
void af_kernel_SD(const af_op_call *c)
{
    size_t n = c->args[0].len;
    for (size_t b = 0; b < c->count; b++) {
        double sd = sqrt(variance_of_point(c, b));
        c->value[b] = sd;
        for (size_t e = 0; e < n; e++) {
            double *partial = &c->scratch[e * c->stride + b];
            *partial = sd > 0.0 ? *partial / (2.0 * sd) : 0.0;
        }
    }
    finish_tangents(c, n);
}

/* Minimum (SIGN = 1) or maximum (SIGN = -1). The partial is 1 at the first
 * element that attains it; the minimum of no elements is +Inf and the
 * maximum -Inf, as in Stan. A NaN element makes the result NaN. */
static void extreme_kernel(const af_op_call *c, double sign)
{
    const af_operand *x = &c->args[0];
    size_t n = x->len;
    size_t stride = c->stride;

    for (size_t b = 0; b < c->count; b++) {
        double best = INFINITY;
        size_t at = 0;
        for (size_t e = 0; e < n; e++) {
            double v = sign * operand_value(x, e, b);
            if (v < best || isnan(v)) {
                best = v;
                at = e;
            }
            if (isnan(v))
                break;
        }
        c->value[b] = sign * best;
        for (size_t e = 0; e < n; e++)
            c->scratch[e * stride + b] = e == at ? 1.0 : 0.0;
    }
    finish_tangents(c, n);
}

void af_kernel_MIN(const af_op_call *c)
{
    extreme_kernel(c, 1.0);
}

void af_kernel_MAX(const af_op_call *c)
{
    extreme_kernel(c, -1.0);
}
