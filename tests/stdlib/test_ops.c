/* Checks every op of the op list: forward-mode tangents against central
 * finite differences at random points, over a chunk with a scalar argument
 * broadcast against vectors. A new op is covered without editing this file
 * unless its domain is not all of (-2, 2) (see domain_table). Values are
 * checked against closed forms further down. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "af_stdlib.h"

enum { STRIDE = 5, COUNT = 4, VECTOR_LEN = 3, MAX_ARGS = 4 };

/* Domain of each argument of the ops that are not defined on all of
 * (-2, 2), one letter per argument:
 *   p positive (0.3, 2.3)      n negative (-2.3, -0.3)    u in (0.05, 0.95)
 *   s in (-0.9, 0.9)           g in (1.2, 3.2)            m in (-0.2, 0.2)
 *   N in (2.5, 4.5)
 * and int arguments, which get no finite-difference check:
 *   b 0 or 1                   c 0, 1 or 2                C 3 to 6 */
static const struct {
    af_op op;
    const char *domains;
} domain_table[] = {
    {AF_OP_LOG, "p"},
    {AF_OP_SELECT, "brr"},
    {AF_OP_SQRT, "p"},
    {AF_OP_LOG1P, "p"},
    {AF_OP_NORMAL_LPDF, "rrp"},
    {AF_OP_POW, "pr"},
    {AF_OP_POW_OP, "pr"},
    {AF_OP_ASIN, "s"},
    {AF_OP_ACOS, "s"},
    {AF_OP_ATANH, "s"},
    {AF_OP_ACOSH, "g"},
    {AF_OP_INV, "p"},
    {AF_OP_INV_SQRT, "p"},
    {AF_OP_INV_SQUARE, "p"},
    {AF_OP_LOG2, "p"},
    {AF_OP_LOG10, "p"},
    {AF_OP_LGAMMA, "p"},
    {AF_OP_DIGAMMA, "p"},
    {AF_OP_TRIGAMMA, "p"},
    {AF_OP_INV_PHI, "u"},
    {AF_OP_LBETA, "pp"},
    {AF_OP_LCHOOSE, "Np"},
    {AF_OP_BINOMIAL_COEFFICIENT_LOG, "Np"},
    {AF_OP_LOGIT, "u"},
    {AF_OP_LOG1M, "n"},
    {AF_OP_LOG1M_EXP, "n"},
    {AF_OP_LOG_DIFF_EXP, "pn"},
    {AF_OP_STUDENT_T_LPDF, "rprp"},
    {AF_OP_CAUCHY_LPDF, "rrp"},
    {AF_OP_DOUBLE_EXPONENTIAL_LPDF, "rrp"},
    {AF_OP_LOGISTIC_LPDF, "rrp"},
    {AF_OP_EXPONENTIAL_LPDF, "pp"},
    {AF_OP_GAMMA_LPDF, "ppp"},
    {AF_OP_INV_GAMMA_LPDF, "ppp"},
    {AF_OP_BETA_LPDF, "upp"},
    {AF_OP_LOGNORMAL_LPDF, "prp"},
    {AF_OP_UNIFORM_LPDF, "mnp"},
    {AF_OP_NORMAL_LCDF, "rrp"},
    {AF_OP_NORMAL_LCCDF, "rrp"},
    {AF_OP_EXPONENTIAL_LCDF, "pp"},
    {AF_OP_EXPONENTIAL_LCCDF, "pp"},
    {AF_OP_BERNOULLI_LPMF, "bu"},
    {AF_OP_BERNOULLI_LOGIT_LPMF, "br"},
    {AF_OP_BINOMIAL_LPMF, "cCu"},
    {AF_OP_BINOMIAL_LOGIT_LPMF, "cCr"},
    {AF_OP_POISSON_LPMF, "cp"},
    {AF_OP_POISSON_LOG_LPMF, "cr"},
};

static char domain_of(af_op op, size_t k)
{
    for (size_t i = 0; i < sizeof domain_table / sizeof *domain_table; i++)
        if (domain_table[i].op == op)
            return domain_table[i].domains[k];
    return 'r';
}

static int is_int_domain(char domain)
{
    return domain == 'b' || domain == 'c' || domain == 'C';
}

static double uniform(double lo, double hi)
{
    return lo + (hi - lo) * (double)rand() / RAND_MAX;
}

static double draw(char domain)
{
    switch (domain) {
    case 'p':
        return uniform(0.3, 2.3);
    case 'n':
        return uniform(-2.3, -0.3);
    case 'u':
        return uniform(0.05, 0.95);
    case 's':
        return uniform(-0.9, 0.9);
    case 'g':
        return uniform(1.2, 3.2);
    case 'm':
        return uniform(-0.2, 0.2);
    case 'N':
        return uniform(2.5, 4.5);
    case 'b':
        return (double)(rand() % 2);
    case 'c':
        return (double)(rand() % 3);
    case 'C':
        return (double)(3 + rand() % 4);
    default:
        return uniform(-2.0, 2.0);
    }
}

typedef struct {
    af_op op;
    size_t nargs;
    size_t arg_len[MAX_ARGS];
    size_t len;   /* result length */
    size_t dim;   /* one direction per input element */
    size_t index; /* INDEX element */
    double value[MAX_ARGS][VECTOR_LEN * STRIDE];
    double tangent[MAX_ARGS][VECTOR_LEN * VECTOR_LEN * MAX_ARGS * STRIDE];
} op_case;

/* Lengths: MAP and FOLD ops get a scalar first argument broadcast against
 * vectors; CONCAT joins lengths 1, 2, 1; the rest take one vector. */
static void set_shape(op_case *c)
{
    int arity = af_op_arity(c->op);
    af_op_kind kind = af_op_kind_of(c->op);
    c->nargs = arity < 0 ? 3 : (size_t)arity;
    for (size_t k = 0; k < c->nargs; k++)
        c->arg_len[k] = (kind == AF_KIND_SPECIAL || k > 0 || c->nargs == 1) ? VECTOR_LEN : 1;
    if (c->op == AF_OP_CONCAT) {
        c->arg_len[0] = 1;
        c->arg_len[1] = 2;
        c->arg_len[2] = 1;
    }
    c->len = kind == AF_KIND_MAP ? VECTOR_LEN : 1;
    if (c->op == AF_OP_CONCAT)
        c->len = 4;
    c->index = 1;
    c->dim = 0;
    for (size_t k = 0; k < c->nargs; k++)
        c->dim += c->arg_len[k];
}

/* Random values, and tangents seeded so that element e of argument k is
 * direction (offset of k) + e. */
static void set_inputs(op_case *c)
{
    memset(c->tangent, 0, sizeof c->tangent);
    size_t offset = 0;
    for (size_t k = 0; k < c->nargs; k++) {
        for (size_t e = 0; e < c->arg_len[k]; e++) {
            for (size_t b = 0; b < COUNT; b++) {
                c->value[k][e * STRIDE + b] = draw(domain_of(c->op, k));
                c->tangent[k][((offset + e) * c->arg_len[k] + e) * STRIDE + b] = 1.0;
            }
        }
        offset += c->arg_len[k];
    }
}

static void run(const op_case *c, double *value, double *tangent, size_t dim)
{
    af_operand args[MAX_ARGS];
    for (size_t k = 0; k < c->nargs; k++)
        args[k] = (af_operand){c->value[k], tangent ? c->tangent[k] : NULL, c->arg_len[k],
                               STRIDE, 1};
    double scratch[MAX_ARGS * VECTOR_LEN * STRIDE * 2];
    assert_true(af_op_scratch_len(VECTOR_LEN, STRIDE) <= sizeof scratch / sizeof *scratch);
    af_op_call call = {c->op, c->nargs, args, value, tangent, c->len, STRIDE, COUNT, dim,
                       c->index, scratch};
    af_op_eval(&call);
}

/* Compares direction j of every output element with a central difference
 * in the input element that direction seeds. */
static void check_direction(op_case *c, const double *tangent, size_t k, size_t e, size_t j)
{
    const double h = 1e-6;
    double plus[4 * STRIDE], minus[4 * STRIDE];
    for (size_t b = 0; b < COUNT; b++) {
        double *x = &c->value[k][e * STRIDE + b];
        double saved = *x;
        *x = saved + h;
        run(c, plus, NULL, 0);
        *x = saved - h;
        run(c, minus, NULL, 0);
        *x = saved;
        for (size_t out = 0; out < c->len; out++) {
            double fd = (plus[out * STRIDE + b] - minus[out * STRIDE + b]) / (2 * h);
            double t = tangent[(j * c->len + out) * STRIDE + b];
            if (fabs(t - fd) > 1e-5 * (1.0 + fabs(t)))
                fail_msg("%s: d out[%zu] / d arg%zu[%zu] at point %zu: tangent %.10g, "
                         "finite difference %.10g",
                         af_op_name(c->op), out, k, e, b, t, fd);
        }
    }
}

/* An int argument has no tangent: direction j, which seeds only it, must
 * leave every output unchanged. */
static void check_zero_direction(const op_case *c, const double *tangent, size_t j)
{
    for (size_t out = 0; out < c->len; out++)
        for (size_t b = 0; b < COUNT; b++)
            if (tangent[(j * c->len + out) * STRIDE + b] != 0.0)
                fail_msg("%s: direction %zu seeds an int argument but moves out[%zu]",
                         af_op_name(c->op), j, out);
}

static void check_op(af_op op)
{
    op_case c = {0};
    c.op = op;
    set_shape(&c);
    for (int trial = 0; trial < 20; trial++) {
        set_inputs(&c);
        double value[4 * STRIDE];
        double tangent[4 * 12 * STRIDE];
        run(&c, value, tangent, c.dim);
        if (af_op_result(op) == AF_RESULT_INT) {
            /* Piecewise constant: the tangent is 0, and a finite difference
             * would only measure the jumps. */
            for (size_t i = 0; i < c.dim * c.len; i++)
                for (size_t b = 0; b < COUNT; b++)
                    assert_true(tangent[i * STRIDE + b] == 0.0);
            continue;
        }
        size_t j = 0;
        for (size_t k = 0; k < c.nargs; k++)
            for (size_t e = 0; e < c.arg_len[k]; e++, j++)
                if (is_int_domain(domain_of(op, k)))
                    check_zero_direction(&c, tangent, j);
                else
                    check_direction(&c, tangent, k, e, j);
    }
}

static void every_op_tangent(void **state)
{
    (void)state;
    srand(12345);
    for (int op = 0; op < AF_OP_COUNT; op++)
        if (af_op_kind_of((af_op)op) != AF_KIND_LEAF)
            check_op((af_op)op);
}

static void assert_close(double found, double expected, double tolerance)
{
    if (!(fabs(found - expected) <= tolerance))
        fail_msg("found %.17g, expected %.17g", found, expected);
}

/* Values of a few ops against closed forms, at points where a naive
 * formula would overflow or divide by zero. */
static void stable_values(void **state)
{
    (void)state;
    double x[2] = {800.0, -800.0};
    double y[1];
    af_operand a = {x, NULL, 1, 1, 0};
    double scratch[16];
    af_op_call call = {AF_OP_LOG1P_EXP, 1, &a, y, NULL, 1, 1, 1, 0, 0, scratch};
    af_op_eval(&call);
    assert_close(y[0], 800.0, 1e-12);

    af_operand pair[2] = {{&x[0], NULL, 1, 1, 0}, {&x[0], NULL, 1, 1, 0}};
    af_op_call lse = {AF_OP_LOG_SUM_EXP2, 2, pair, y, NULL, 1, 1, 1, 0, 0, scratch};
    af_op_eval(&lse);
    assert_close(y[0], 800.0 + log(2.0), 1e-12);

    af_operand vec = {x, NULL, 2, 1, 0};
    af_op_call lse_vec = {AF_OP_LOG_SUM_EXP, 1, &vec, y, NULL, 1, 1, 1, 0, 0, scratch};
    af_op_eval(&lse_vec);
    assert_close(y[0], 800.0, 1e-12);
}

/* norm2 at the origin: value 0 and a zero tangent, not NaN. */
static void norm2_at_zero(void **state)
{
    (void)state;
    double x[2] = {0.0, 0.0};
    double seed[4] = {1.0, 0.0, 0.0, 1.0}; /* direction j of element e: [j * 2 + e] */
    double y[1], dy[2], scratch[16];
    af_operand a = {x, seed, 2, 1, 1};
    af_op_call call = {AF_OP_NORM2, 1, &a, y, dy, 1, 1, 1, 2, 0, scratch};
    af_op_eval(&call);
    assert_true(y[0] == 0.0);
    assert_true(dy[0] == 0.0);
    assert_true(dy[1] == 0.0);
}

static void fabs_at_zero(void **state)
{
    (void)state;
    double x[1] = {0.0}, seed[1] = {1.0};
    double y[1], dy[1], scratch[16];
    af_operand a = {x, seed, 1, 1, 1};
    af_op_call call = {AF_OP_FABS, 1, &a, y, dy, 1, 1, 1, 1, 0, scratch};
    af_op_eval(&call);
    assert_true(dy[0] == 0.0);
}

/* Value of OP at scalar arguments X[0..NARGS). */
static double value_at(af_op op, size_t nargs, const double *x)
{
    af_operand args[MAX_ARGS];
    for (size_t k = 0; k < nargs; k++)
        args[k] = (af_operand){&x[k], NULL, 1, 1, 0};
    double y, scratch[64];
    af_op_call call = {op, nargs, args, &y, NULL, 1, 1, 1, 0, 0, scratch};
    af_op_eval(&call);
    return y;
}

static double f1(af_op op, double x)
{
    return value_at(op, 1, &x);
}

static double f2(af_op op, double x, double y)
{
    double a[2] = {x, y};
    return value_at(op, 2, a);
}

#define EULER_GAMMA 0.57721566490153286061
#define PI_VALUE 3.14159265358979323846

/* Digamma and trigamma at points with closed forms, on both sides of the
 * recurrence switch and through the reflection; NaN at the poles. */
static void gamma_family_values(void **state)
{
    (void)state;
    assert_close(f1(AF_OP_DIGAMMA, 1.0), -EULER_GAMMA, 1e-15);
    assert_close(f1(AF_OP_DIGAMMA, 0.5), -EULER_GAMMA - 2.0 * log(2.0), 1e-15);
    assert_close(f1(AF_OP_DIGAMMA, -0.5), -EULER_GAMMA - 2.0 * log(2.0) + 2.0, 1e-14);
    /* psi(n) = -gamma + 1 + 1/2 + ... + 1/(n-1) */
    double harmonic = 0.0;
    for (int k = 1; k < 30; k++)
        harmonic += 1.0 / k;
    assert_close(f1(AF_OP_DIGAMMA, 30.0), harmonic - EULER_GAMMA, 1e-14);
    assert_close(f1(AF_OP_DIGAMMA, 1e-8), -1e8 - EULER_GAMMA, 1e-6);
    assert_true(isnan(f1(AF_OP_DIGAMMA, 0.0)));
    assert_true(isnan(f1(AF_OP_DIGAMMA, -3.0)));
    assert_true(isnan(f1(AF_OP_DIGAMMA, NAN)));

    assert_close(f1(AF_OP_TRIGAMMA, 1.0), PI_VALUE * PI_VALUE / 6.0, 1e-15);
    assert_close(f1(AF_OP_TRIGAMMA, 0.5), PI_VALUE * PI_VALUE / 2.0, 1e-14);
    assert_close(f1(AF_OP_TRIGAMMA, -0.5), PI_VALUE * PI_VALUE / 2.0 + 4.0, 1e-13);
    assert_close(f1(AF_OP_TRIGAMMA, 1e6), 1e-6 + 0.5e-12 + 1e-18 / 6.0, 1e-21);
    assert_true(isnan(f1(AF_OP_TRIGAMMA, -1.0)));

    assert_close(f1(AF_OP_LGAMMA, 0.5), 0.5 * log(PI_VALUE), 1e-15);
    assert_close(f2(AF_OP_LBETA, 2.0, 3.0), log(1.0 / 12.0), 1e-15);
    assert_close(f2(AF_OP_LCHOOSE, 10.0, 3.0), log(120.0), 1e-13);
    assert_close(f2(AF_OP_BINOMIAL_COEFFICIENT_LOG, 10.0, 3.0), log(120.0), 1e-13);
}

/* inv_Phi against known quantiles and as the inverse of Phi, in both
 * tails and in the centre, to rounding level. */
static void inv_phi_values(void **state)
{
    (void)state;
    assert_close(f1(AF_OP_INV_PHI, 0.975), 1.959963984540054, 1e-15);
    assert_close(f1(AF_OP_INV_PHI, 0.025), -1.959963984540054, 1e-15);
    assert_close(f1(AF_OP_INV_PHI, 0.5), 0.0, 1e-300);
    assert_close(f1(AF_OP_INV_PHI, 1e-10), -6.361340902404056, 1e-14);
    const double p[] = {1e-300, 1e-20, 1e-5, 0.02, 0.02425, 0.1, 0.3, 0.6, 0.9, 0.999};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++) {
        /* A rounding error of a few ulp in x moves log Phi(x) by about
         * x * dx, so the relative tolerance grows like x^2 in the tail. */
        double x = f1(AF_OP_INV_PHI, p[i]);
        assert_close(f1(AF_OP_PHI, x), p[i], 4e-16 * p[i] * (1.0 + x * x));
    }
    /* Upper tail: 1 - p is exact, so the check uses Phi(-x). */
    double x = f1(AF_OP_INV_PHI, 1.0 - 1e-12);
    assert_close(f1(AF_OP_PHI, -x), 1.0 - (1.0 - 1e-12), 1e-12 * 1e-14);
    assert_true(f1(AF_OP_INV_PHI, 0.0) == -INFINITY);
    assert_true(f1(AF_OP_INV_PHI, 1.0) == INFINITY);
    assert_true(isnan(f1(AF_OP_INV_PHI, 1.5)));
    assert_true(isnan(f1(AF_OP_INV_PHI, NAN)));
    assert_true(f1(AF_OP_PHI, -37.0) > 0.0);
    assert_close(f1(AF_OP_PHI_APPROX, 0.0), 0.5, 1e-16);
    assert_close(f1(AF_OP_PHI_APPROX, 1.0), 0.8413, 1e-3);
}

/* The logit family and log1m_exp where naive formulas overflow, cancel or
 * divide by zero. */
static void log_scale_values(void **state)
{
    (void)state;
    assert_close(f1(AF_OP_LOG_INV_LOGIT, -800.0), -800.0, 1e-12);
    assert_close(f1(AF_OP_LOG_INV_LOGIT, 800.0), 0.0, 1e-300);
    assert_close(f1(AF_OP_LOG1M_INV_LOGIT, 800.0), -800.0, 1e-12);
    assert_close(f1(AF_OP_INV_LOGIT, -800.0), 0.0, 1e-300);
    assert_close(f1(AF_OP_INV_LOGIT, -30.0), exp(-30.0) / (1.0 + exp(-30.0)), 1e-28);
    assert_close(f1(AF_OP_LOGIT, 1e-300), log(1e-300), 1e-12);
    assert_close(f1(AF_OP_LOGIT, 0.5), 0.0, 1e-300);
    assert_close(f1(AF_OP_LOG1M, 1e-20), -1e-20, 1e-35);
    assert_close(f1(AF_OP_LOG1M_EXP, -1e-20), log(1e-20), 1e-12);
    assert_close(f1(AF_OP_LOG1M_EXP, -50.0), -exp(-50.0), 1e-35);
    assert_true(f1(AF_OP_LOG1M_EXP, 0.0) == -INFINITY);
    assert_true(isnan(f1(AF_OP_LOG1M_EXP, 1.0)));
    assert_close(f2(AF_OP_LOG_DIFF_EXP, 800.0, 799.0), 800.0 + log1p(-exp(-1.0)), 1e-12);
    assert_close(f2(AF_OP_LOG_DIFF_EXP, 3.0, -INFINITY), 3.0, 1e-300);
    assert_true(f2(AF_OP_LOG_DIFF_EXP, 3.0, 3.0) == -INFINITY);
    assert_true(isnan(f2(AF_OP_LOG_DIFF_EXP, 2.0, 3.0)));
}

static void elementary_values(void **state)
{
    (void)state;
    assert_close(f2(AF_OP_POW, 2.0, 10.0), 1024.0, 1e-12);
    assert_close(f2(AF_OP_POW_OP, 9.0, 0.5), 3.0, 1e-15);
    assert_close(f2(AF_OP_HYPOT, 3.0, 4.0), 5.0, 1e-15);
    assert_close(f2(AF_OP_FDIM, 3.0, 4.0), 0.0, 1e-300);
    assert_close(f2(AF_OP_FMIN, 3.0, NAN), 3.0, 1e-300);
    assert_close(f2(AF_OP_MOD, -7.0, 3.0), -1.0, 1e-300);
    assert_true(isnan(f2(AF_OP_MOD, 7.0, 0.0)));
    assert_close(f1(AF_OP_STEP, 0.0), 1.0, 0.0);
    assert_close(f1(AF_OP_INT_STEP, 0.0), 0.0, 0.0);
    assert_close(f1(AF_OP_NOT, 0.0), 1.0, 0.0);
    assert_close(f1(AF_OP_NOT, NAN), 0.0, 0.0);
    assert_close(f2(AF_OP_AND, 1.0, 0.0), 0.0, 0.0);
    assert_close(f2(AF_OP_OR, 0.0, -2.0), 1.0, 0.0);
    assert_close(f1(AF_OP_ROUND, 2.5), 3.0, 0.0);
    assert_close(f1(AF_OP_ABS, -4.0), 4.0, 0.0);
    assert_close(f1(AF_OP_CBRT, -27.0), -3.0, 1e-15);
    assert_close(f1(AF_OP_ACOSH, 1.0), 0.0, 0.0);
}

/* Value of the one-argument reduction OP over X[0..N) at one point. */
static double reduce(af_op op, const double *x, size_t n)
{
    af_operand a = {x, NULL, n, 1, 0};
    double y, scratch[64];
    af_op_call call = {op, 1, &a, &y, NULL, 1, 1, 1, 0, 0, scratch};
    af_op_eval(&call);
    return y;
}

/* Reductions over short and empty vectors; prod keeps its partials exact
 * at a zero element. */
static void reduction_values(void **state)
{
    (void)state;
    double x[4] = {2.0, -1.0, 4.0, 3.0};
    assert_close(reduce(AF_OP_PROD, x, 4), -24.0, 1e-14);
    assert_close(reduce(AF_OP_MEAN, x, 4), 2.0, 1e-15);
    assert_close(reduce(AF_OP_VARIANCE, x, 4), 14.0 / 3.0, 1e-14);
    assert_close(reduce(AF_OP_SD, x, 4), sqrt(14.0 / 3.0), 1e-14);
    assert_close(reduce(AF_OP_MIN, x, 4), -1.0, 0.0);
    assert_close(reduce(AF_OP_MAX, x, 4), 4.0, 0.0);
    assert_close(reduce(AF_OP_VARIANCE, x, 1), 0.0, 0.0);
    assert_close(reduce(AF_OP_SD, x, 1), 0.0, 0.0);

    assert_close(reduce(AF_OP_PROD, x, 0), 1.0, 0.0);
    assert_true(reduce(AF_OP_MIN, x, 0) == INFINITY);
    assert_true(reduce(AF_OP_MAX, x, 0) == -INFINITY);
    assert_true(isnan(reduce(AF_OP_MEAN, x, 0)));
    assert_true(isnan(reduce(AF_OP_VARIANCE, x, 0)));
    assert_true(reduce(AF_OP_LOG_SUM_EXP, x, 0) == -INFINITY);
    assert_close(reduce(AF_OP_SUM, x, 0), 0.0, 0.0);
    double with_nan[3] = {1.0, NAN, -5.0};
    assert_true(isnan(reduce(AF_OP_MIN, with_nan, 3)));

    double zero[3] = {2.0, 0.0, 5.0};
    double seed[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1}; /* direction j of element e: [j * 3 + e] */
    double y, dy[3], scratch[64];
    af_operand a = {zero, seed, 3, 1, 1};
    af_op_call call = {AF_OP_PROD, 1, &a, &y, dy, 1, 1, 1, 3, 0, scratch};
    af_op_eval(&call);
    assert_close(dy[0], 0.0, 0.0);
    assert_close(dy[1], 10.0, 0.0);
    assert_close(dy[2], 0.0, 0.0);
}

static void find_by_name(void **state)
{
    (void)state;
    af_op op;
    int arity = 0;
    assert_int_equal(af_op_find("log_sum_exp", 1, &op, &arity), 0);
    assert_int_equal(op, AF_OP_LOG_SUM_EXP);
    assert_int_equal(af_op_find("log_sum_exp", 2, &op, &arity), 0);
    assert_int_equal(op, AF_OP_LOG_SUM_EXP2);
    assert_int_equal(af_op_find("exp", 2, &op, &arity), 1);
    assert_int_equal(arity, 1);
    assert_int_equal(af_op_find("nosuch", 1, &op, &arity), 2);
    assert_int_equal(af_op_find("+", 2, &op, &arity), 2); /* operators are not callable */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_op_tangent), cmocka_unit_test(stable_values),
        cmocka_unit_test(norm2_at_zero),    cmocka_unit_test(fabs_at_zero),
        cmocka_unit_test(find_by_name),    cmocka_unit_test(gamma_family_values),
        cmocka_unit_test(inv_phi_values),  cmocka_unit_test(log_scale_values),
        cmocka_unit_test(elementary_values), cmocka_unit_test(reduction_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
