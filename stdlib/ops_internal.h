/* Private to stdlib/: the pieces every kernel file shares. A kernel file
 * writes pointwise rules and instantiates them with AF_MAP_KERNEL or
 * AF_FOLD_KERNEL, or writes a SPECIAL kernel af_kernel_ID by hand; ops.c
 * builds the dispatch table from the declarations generated below. */
#ifndef AF_OPS_INTERNAL_H
#define AF_OPS_INTERNAL_H

#include "af_stdlib.h"

#include <math.h>
#include <string.h>

#if defined(__GNUC__)
#define FORCE_INLINE static inline __attribute__((always_inline))
#else
#define FORCE_INLINE static inline
#endif

#define LOG_SQRT_2PI 0.91893853320467274178
#define LOG_PI 1.14472988584940017414
#define PI 3.14159265358979323846

/* A pointwise rule: returns f(a) and writes p[k] = df/da[k]. P arrives
 * zeroed, so a rule that returns -Inf outside the support writes nothing. */
typedef double (*rule_fn)(const double *a, double *p);

/* One kernel per op of the list; a missing one is a link error. */
#define AF_DECLARE_KERNEL(id, name, kind, arity, result, callable)                       \
    void af_kernel_##id(const af_op_call *c);
AF_OP_LIST(AF_DECLARE_KERNEL)
#undef AF_DECLARE_KERNEL

static inline size_t broadcast_index(const af_operand *x, size_t e)
{
    return x->len == 1 ? 0 : e;
}

static inline double operand_value(const af_operand *x, size_t e, size_t b)
{
    return x->value[broadcast_index(x, e) * x->estride + b * x->bstride];
}

/* Writes the tangents of a MAP (FOLD = 0) or FOLD (FOLD = 1) op over N
 * broadcast elements, given the partials in scratch as [k][e][b]. */
void af_combine_tangents(const af_op_call *c, size_t n, int fold);

/* Number of elements a FOLD runs over: the longest argument, with scalars
 * repeating; 0 when any argument is empty (an empty sum is 0). */
size_t af_broadcast_len(const af_op_call *c);

/* Applies RULE elementwise (FOLD = 0) or sums it over the elements (1).
 * Inlined into each kernel so that the rule is inlined too. */
FORCE_INLINE void pointwise_kernel(const af_op_call *c, rule_fn rule, int fold)
{
    size_t n = fold ? af_broadcast_len(c) : c->len;
    size_t stride = c->stride;
    int want_tangent = c->tangent != NULL && c->dim > 0;

    if (fold)
        memset(c->value, 0, c->count * sizeof(double));
    for (size_t e = 0; e < n; e++) {
        for (size_t b = 0; b < c->count; b++) {
            double a[AF_OP_MAX_ARITY] = {0.0};
            double p[AF_OP_MAX_ARITY] = {0.0};
            for (size_t k = 0; k < c->nargs; k++)
                a[k] = operand_value(&c->args[k], e, b);
            double y = rule(a, p);
            if (fold)
                c->value[b] += y;
            else
                c->value[e * stride + b] = y;
            if (want_tangent)
                for (size_t k = 0; k < c->nargs; k++)
                    c->scratch[(k * n + e) * stride + b] = p[k];
        }
    }
    if (want_tangent)
        af_combine_tangents(c, n, fold);
}

#define AF_MAP_KERNEL(id)                                                                \
    void af_kernel_##id(const af_op_call *c)                                             \
    {                                                                                    \
        pointwise_kernel(c, rule_##id, 0);                                               \
    }
#define AF_FOLD_KERNEL(id)                                                               \
    void af_kernel_##id(const af_op_call *c)                                             \
    {                                                                                    \
        pointwise_kernel(c, rule_##id, 1);                                               \
    }

/* The logistic function 1 / (1 + exp(-x)), from exp of a non-positive
 * number so that it neither overflows nor loses the tail. */
static inline double inv_logit(double x)
{
    if (x >= 0.0)
        return 1.0 / (1.0 + exp(-x));
    double t = exp(x);
    return t / (1.0 + t);
}

/* log(1 + exp(x)) without overflow: for x > 0 it is x + log1p(exp(-x)). */
static inline double log1p_exp(double x)
{
    if (x > 0.0)
        return x + log1p(exp(-x));
    return log1p(exp(x));
}

/* log(1 - exp(x)) for x <= 0, switching at -log 2 between the two forms
 * that keep precision (Maechler's log1mexp); NaN for x > 0. */
static inline double log1m_exp(double x)
{
    if (x > 0.0)
        return NAN;
    return x > -0.69314718055994530942 ? log(-expm1(x)) : log1p(-exp(x));
}

/* Special functions shared by several kernels (ops_special.c). */
double af_lgamma(double x);
double af_digamma(double x);
double af_trigamma(double x);
double af_inv_phi(double p);

#endif
