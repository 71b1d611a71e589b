/* Checks every op of the op list: forward-mode tangents against central
 * finite differences at random points, over a chunk with a scalar argument
 * broadcast against vectors. A new op is covered without editing this file
 * unless its domain excludes negative numbers (see positive_argument). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "af_stdlib.h"

enum { STRIDE = 5, COUNT = 4, VECTOR_LEN = 3, MAX_ARGS = 3 };

/* Arguments that must be positive for the op to be defined there. */
static int positive_argument(af_op op, size_t k)
{
    switch (op) {
    case AF_OP_LOG:
    case AF_OP_SQRT:
    case AF_OP_LOG1P:
        return 1;
    case AF_OP_NORMAL_LPDF:
        return k == 2;
    default:
        return 0;
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

static double uniform(double lo, double hi)
{
    return lo + (hi - lo) * (double)rand() / RAND_MAX;
}

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
                double v = uniform(-2.0, 2.0);
                if (positive_argument(c->op, k))
                    v = fabs(v) + 0.3;
                c->value[k][e * STRIDE + b] = v;
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
            for (size_t e = 0; e < c.arg_len[k]; e++)
                check_direction(&c, tangent, k, e, j++);
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
        cmocka_unit_test(find_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
