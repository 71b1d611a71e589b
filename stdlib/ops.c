/* Kernels of the built-in ops. Every MAP and FOLD op is one pointwise rule
 * that returns the value and writes the partial derivatives beside it; the
 * shared loops below turn those partials into forward-mode tangents. This
 * file holds arithmetic, comparisons, the first elementary functions,
 * indexing, concatenation and the dispatch table; see README.md for the
 * other families. */
#include "ops_internal.h"

#include <assert.h>

/* Workspace of a SPECIAL kernel for one point, in units of the longest
 * argument: a K x K Cholesky factor and three K-vectors fit in 4 K^2. */
#define SCRATCH_PER_POINT 4

/* ---- pointwise rules: value and partials side by side ---- */

static double rule_NEG(const double *a, double *p)
{
    p[0] = -1.0;
    return -a[0];
}

static double rule_ADD(const double *a, double *p)
{
    p[0] = 1.0;
    p[1] = 1.0;
    return a[0] + a[1];
}

static double rule_SUB(const double *a, double *p)
{
    p[0] = 1.0;
    p[1] = -1.0;
    return a[0] - a[1];
}

static double rule_MUL(const double *a, double *p)
{
    p[0] = a[1];
    p[1] = a[0];
    return a[0] * a[1];
}

static double rule_DIV(const double *a, double *p)
{
    double y = a[0] / a[1];
    p[0] = 1.0 / a[1];
    p[1] = -y / a[1];
    return y;
}

/* Integer division truncates toward zero, as in Stan. The caller rejects a
 * zero divisor that it can see; one computed at run time gives +-Inf or NaN. */
static double rule_IDIV(const double *a, double *p)
{
    p[0] = 0.0;
    p[1] = 0.0;
    return trunc(a[0] / a[1]);
}

#define COMPARISON_RULE(id, expr)                                                        \
    static double rule_##id(const double *a, double *p)                                  \
    {                                                                                    \
        p[0] = 0.0;                                                                      \
        p[1] = 0.0;                                                                      \
        return (expr) ? 1.0 : 0.0;                                                       \
    }
COMPARISON_RULE(LT, a[0] < a[1])
COMPARISON_RULE(LE, a[0] <= a[1])
COMPARISON_RULE(GT, a[0] > a[1])
COMPARISON_RULE(GE, a[0] >= a[1])
COMPARISON_RULE(EQ, a[0] == a[1])
COMPARISON_RULE(NE, a[0] != a[1])

static double rule_EXP(const double *a, double *p)
{
    double y = exp(a[0]);
    p[0] = y;
    return y;
}

static double rule_LOG(const double *a, double *p)
{
    p[0] = 1.0 / a[0];
    return log(a[0]);
}

static double rule_LOG1P(const double *a, double *p)
{
    p[0] = 1.0 / (1.0 + a[0]);
    return log1p(a[0]);
}

static double rule_EXPM1(const double *a, double *p)
{
    double y = expm1(a[0]);
    p[0] = y + 1.0;
    return y;
}

static double rule_SQRT(const double *a, double *p)
{
    double y = sqrt(a[0]);
    p[0] = 0.5 / y;
    return y;
}

static double rule_SIN(const double *a, double *p)
{
    p[0] = cos(a[0]);
    return sin(a[0]);
}

static double rule_COS(const double *a, double *p)
{
    p[0] = -sin(a[0]);
    return cos(a[0]);
}

/* The derivative of log(1 + exp(x)) is the logistic function. */
static double rule_LOG1P_EXP(const double *a, double *p)
{
    p[0] = inv_logit(a[0]);
    return log1p_exp(a[0]);
}

/* log(exp(a) + exp(b)) shifted by the larger argument. Infinite arguments
 * are handled apart because a - b would be NaN for two equal infinities. */
static double rule_LOG_SUM_EXP2(const double *a, double *p)
{
    double m = a[0] > a[1] ? a[0] : a[1];
    if (isinf(m)) {
        p[0] = (m > 0.0 && a[0] == m) ? 1.0 : 0.0;
        p[1] = (m > 0.0 && a[1] == m && a[0] != m) ? 1.0 : 0.0;
        return m;
    }
    double y = m + log1p(exp(-fabs(a[0] - a[1])));
    p[0] = exp(a[0] - y);
    p[1] = exp(a[1] - y);
    return y;
}

static double rule_SUM(const double *a, double *p)
{
    p[0] = 1.0;
    return a[0];
}

static double rule_DOT_SELF(const double *a, double *p)
{
    p[0] = 2.0 * a[0];
    return a[0] * a[0];
}

/* dot_product(a, b) is the sum of a * b. */
#define rule_DOT_PRODUCT rule_MUL

static double rule_SQUARED_DISTANCE(const double *a, double *p)
{
    double d = a[0] - a[1];
    p[0] = 2.0 * d;
    p[1] = -2.0 * d;
    return d * d;
}

/* ---- shared loops ---- */

void af_combine_tangents(const af_op_call *c, size_t n, int fold)
{
    size_t stride = c->stride;
    size_t out_len = fold ? 1 : n;

    for (size_t j = 0; j < c->dim; j++) {
        double *out = c->tangent + j * out_len * stride;
        for (size_t i = 0; i < out_len; i++)
            memset(out + i * stride, 0, c->count * sizeof(double));

        for (size_t k = 0; k < c->nargs; k++) {
            const af_operand *x = &c->args[k];
            if (x->tangent == NULL)
                continue;
            const double *dx = x->tangent + j * x->len * stride;
            for (size_t e = 0; e < n; e++) {
                const double *pk = c->scratch + (k * n + e) * stride;
                const double *dxe = dx + broadcast_index(x, e) * stride;
                double *o = fold ? out : out + e * stride;
                for (size_t b = 0; b < c->count; b++)
                    o[b] += pk[b] * dxe[b];
            }
        }
    }
}

size_t af_broadcast_len(const af_op_call *c)
{
    size_t n = 1;
    for (size_t k = 0; k < c->nargs; k++) {
        if (c->args[k].len == 0)
            return 0;
        if (c->args[k].len > n)
            n = c->args[k].len;
    }
    return n;
}

/* ---- special kernels ---- */

void af_kernel_INDEX(const af_op_call *c)
{
    const af_operand *x = &c->args[0];
    size_t stride = c->stride;

    assert(c->index < x->len);
    for (size_t b = 0; b < c->count; b++)
        c->value[b] = operand_value(x, c->index, b);
    if (c->tangent == NULL)
        return;
    for (size_t j = 0; j < c->dim; j++) {
        double *out = c->tangent + j * stride;
        if (x->tangent == NULL)
            memset(out, 0, c->count * sizeof(double));
        else
            memcpy(out, x->tangent + (j * x->len + c->index) * stride,
                   c->count * sizeof(double));
    }
}

/* Copies the arguments one after another into a vector of length c->len. */
void af_kernel_CONCAT(const af_op_call *c)
{
    size_t stride = c->stride;
    size_t offset = 0;

    for (size_t k = 0; k < c->nargs; k++) {
        const af_operand *x = &c->args[k];
        for (size_t e = 0; e < x->len; e++) {
            for (size_t b = 0; b < c->count; b++)
                c->value[(offset + e) * stride + b] = operand_value(x, e, b);
            for (size_t j = 0; c->tangent != NULL && j < c->dim; j++) {
                double *out = c->tangent + (j * c->len + offset + e) * stride;
                if (x->tangent == NULL)
                    memset(out, 0, c->count * sizeof(double));
                else
                    memcpy(out, x->tangent + (j * x->len + e) * stride,
                           c->count * sizeof(double));
            }
        }
        offset += x->len;
    }
    assert(offset == c->len);
}

/* ---- instantiations and dispatch ---- */

AF_MAP_KERNEL(NEG)
AF_MAP_KERNEL(ADD)
AF_MAP_KERNEL(SUB)
AF_MAP_KERNEL(MUL)
AF_MAP_KERNEL(DIV)
AF_MAP_KERNEL(IDIV)
AF_MAP_KERNEL(LT)
AF_MAP_KERNEL(LE)
AF_MAP_KERNEL(GT)
AF_MAP_KERNEL(GE)
AF_MAP_KERNEL(EQ)
AF_MAP_KERNEL(NE)
AF_MAP_KERNEL(EXP)
AF_MAP_KERNEL(LOG)
AF_MAP_KERNEL(LOG1P)
AF_MAP_KERNEL(EXPM1)
AF_MAP_KERNEL(SQRT)
AF_MAP_KERNEL(SIN)
AF_MAP_KERNEL(COS)
AF_MAP_KERNEL(LOG1P_EXP)
AF_MAP_KERNEL(LOG_SUM_EXP2)
AF_FOLD_KERNEL(SUM)
AF_FOLD_KERNEL(DOT_SELF)
AF_FOLD_KERNEL(DOT_PRODUCT)
AF_FOLD_KERNEL(SQUARED_DISTANCE)

/* Leaf ops are filled by the caller and have no kernel. */
void af_kernel_CONST(const af_op_call *c)
{
    (void)c;
    assert(!"leaf ops have no kernel");
}

void af_kernel_PARAM(const af_op_call *c)
{
    (void)c;
    assert(!"leaf ops have no kernel");
}

typedef struct {
    const char *name;
    af_op_kind kind;
    int arity;
    af_result_type result;
    int callable;
    void (*run)(const af_op_call *c);
} op_info;

#define OP_INFO(id, name, kind, arity, result, callable)                                 \
    {name, kind, arity, result, callable, af_kernel_##id},
static const op_info op_table[AF_OP_COUNT] = {AF_OP_LIST(OP_INFO)};
#undef OP_INFO

const char *af_op_name(af_op op)
{
    return op_table[op].name;
}

af_op_kind af_op_kind_of(af_op op)
{
    return op_table[op].kind;
}

int af_op_arity(af_op op)
{
    return op_table[op].arity;
}

af_result_type af_op_result(af_op op)
{
    return op_table[op].result;
}

/* Other names of callable ops: laplace is the name the Laplace
 * distribution has outside Stan, which calls it double_exponential. */
static const char *const op_aliases[][2] = {
    {"laplace_lpdf", "double_exponential_lpdf"},
};

int af_op_find(const char *name, size_t nargs, af_op *op, int *arity)
{
    int found_name = 0;

    for (size_t a = 0; a < sizeof op_aliases / sizeof op_aliases[0]; a++)
        if (strcmp(name, op_aliases[a][0]) == 0)
            name = op_aliases[a][1];

    for (int i = 0; i < AF_OP_COUNT; i++) {
        if (!op_table[i].callable || strcmp(op_table[i].name, name) != 0)
            continue;
        if (op_table[i].arity < 0 || (size_t)op_table[i].arity == nargs) {
            *op = (af_op)i;
            return 0;
        }
        found_name = 1;
        *arity = op_table[i].arity;
    }
    return found_name ? 1 : 2;
}

const char *af_op_callable_name(size_t i)
{
    for (size_t k = 0; k < AF_OP_COUNT; k++) {
        if (!op_table[k].callable)
            continue;
        if (i == 0)
            return op_table[k].name;
        i--;
    }
    return NULL;
}

size_t af_op_scratch_len(size_t max_len, size_t stride)
{
    size_t n = max_len > 0 ? max_len : 1;
    return AF_OP_MAX_ARITY * n * stride + SCRATCH_PER_POINT * n;
}

void af_op_eval(const af_op_call *call)
{
    op_table[call->op].run(call);
}
