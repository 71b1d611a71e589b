/* Checks the matrix product op (MATMUL) over a chunk of points: values
 * against the definition, and forward-mode tangents against central finite
 * differences. The cases put data on the left, data on the right, or let
 * both operands vary per point. Their tangent directions reach no row, one
 * row, two rows or every row of the varying operand. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "af_stdlib.h"

/* The chunk contains COUNT points in buffers with room for STRIDE, as in
 * the evaluator. */
enum { STRIDE = 7, COUNT = 5, MAX_LEN = 24 };

/* Which operand is data, the same for every point. */
typedef enum { SHARED_NONE, SHARED_LEFT, SHARED_RIGHT } shared_side;

typedef struct {
    size_t m, k, n;
    shared_side shared;
    /* Operand values: A is m x k and B is k x n, column-major, point-fastest
     * for a varying operand and one copy for a shared one. */
    double a[MAX_LEN * STRIDE];
    double b[MAX_LEN * STRIDE];
    /* Tangent directions of the varying operands, [direction][element][point]. */
    size_t dim;
    double da[4 * MAX_LEN * STRIDE];
    double db[4 * MAX_LEN * STRIDE];
} product_case;

static double uniform(double lo, double hi)
{
    return lo + (hi - lo) * (double)rand() / RAND_MAX;
}

static int varies(const product_case *c, int left)
{
    return c->shared != (left ? SHARED_LEFT : SHARED_RIGHT);
}

static af_operand operand(const product_case *c, int left, int with_tangent)
{
    size_t len = left ? c->m * c->k : c->k * c->n;
    const double *value = left ? c->a : c->b;
    const double *tangent = left ? c->da : c->db;
    if (!varies(c, left))
        return (af_operand){value, NULL, len, 1, 0};
    return (af_operand){value, with_tangent ? tangent : NULL, len, STRIDE, 1};
}

static void run(const product_case *c, double *value, double *tangent)
{
    af_operand args[2] = {operand(c, 1, tangent != NULL), operand(c, 0, tangent != NULL)};
    double scratch[8 * MAX_LEN * STRIDE];
    assert_true(af_op_scratch_len(MAX_LEN, STRIDE) <= sizeof scratch / sizeof *scratch);
    af_op_call call = {AF_OP_MATMUL, 2, args, value, tangent, c->m * c->n, STRIDE, COUNT,
                       tangent != NULL ? c->dim : 0, c->m, scratch};
    af_op_eval(&call);
}

/* Element E of point P of operand LEFT (A) or not (B). */
static double *element(product_case *c, int left, size_t e, size_t p)
{
    double *v = left ? c->a : c->b;
    return varies(c, left) ? &v[e * STRIDE + p] : &v[e];
}

/* Tangents: direction 0 seeds element 0 of every varying operand (one
 * row), and direction 1 moves every element (a dense direction). Direction
 * 2 seeds nothing. Direction 3 seeds elements 0 and 1, which are two rows
 * of a column of B, or of a row vector A. */
static void set_inputs(product_case *c)
{
    c->dim = 4;
    memset(c->da, 0, sizeof c->da);
    memset(c->db, 0, sizeof c->db);
    for (int left = 0; left <= 1; left++) {
        size_t len = left ? c->m * c->k : c->k * c->n;
        double *dv = left ? c->da : c->db;
        for (size_t e = 0; e < len; e++) {
            for (size_t p = 0; p < COUNT; p++) {
                *element(c, left, e, p) = uniform(-2.0, 2.0);
                if (!varies(c, left))
                    continue;
                dv[(0 * len + e) * STRIDE + p] = e == 0 ? 1.0 : 0.0;
                dv[(1 * len + e) * STRIDE + p] = uniform(-1.0, 1.0);
                dv[(3 * len + e) * STRIDE + p] = e < 2 ? 1.0 : 0.0;
            }
        }
    }
}

static void check_values(product_case *c, const double *value)
{
    for (size_t j = 0; j < c->n; j++)
        for (size_t i = 0; i < c->m; i++)
            for (size_t p = 0; p < COUNT; p++) {
                double expected = 0.0;
                for (size_t t = 0; t < c->k; t++)
                    expected += *element(c, 1, t * c->m + i, p) * *element(c, 0, j * c->k + t, p);
                double found = value[(j * c->m + i) * STRIDE + p];
                if (fabs(found - expected) > 1e-12 * (1.0 + fabs(expected)))
                    fail_msg("%zu x %zu x %zu: value (%zu, %zu) at point %zu is %.17g, "
                             "expected %.17g",
                             c->m, c->k, c->n, i, j, p, found, expected);
            }
}

/* Moves every varying element by H times its tangent in direction J. */
static void step(product_case *c, size_t j, double h)
{
    for (int left = 0; left <= 1; left++) {
        if (!varies(c, left))
            continue;
        size_t len = left ? c->m * c->k : c->k * c->n;
        double *v = left ? c->a : c->b;
        const double *dv = left ? c->da : c->db;
        for (size_t e = 0; e < len; e++)
            for (size_t p = 0; p < COUNT; p++)
                v[e * STRIDE + p] += h * dv[(j * len + e) * STRIDE + p];
    }
}

static void check_tangents(product_case *c, const double *tangent)
{
    const double h = 1e-6;
    size_t len = c->m * c->n;
    double plus[MAX_LEN * STRIDE], minus[MAX_LEN * STRIDE];
    for (size_t j = 0; j < c->dim; j++) {
        step(c, j, h);
        run(c, plus, NULL);
        step(c, j, -2.0 * h);
        run(c, minus, NULL);
        step(c, j, h);
        for (size_t e = 0; e < len; e++)
            for (size_t p = 0; p < COUNT; p++) {
                double fd = (plus[e * STRIDE + p] - minus[e * STRIDE + p]) / (2.0 * h);
                double t = tangent[(j * len + e) * STRIDE + p];
                if (fabs(t - fd) > 1e-6 * (1.0 + fabs(fd)))
                    fail_msg("%zu x %zu x %zu, shared %d: direction %zu of element %zu at "
                             "point %zu: tangent %.10g, finite difference %.10g",
                             c->m, c->k, c->n, (int)c->shared, j, e, p, t, fd);
            }
    }
}

static void check_case(size_t m, size_t k, size_t n, shared_side shared)
{
    product_case *c = calloc(1, sizeof *c);
    assert_non_null(c);
    *c = (product_case){.m = m, .k = k, .n = n, .shared = shared};
    set_inputs(c);
    double value[MAX_LEN * STRIDE], tangent[4 * MAX_LEN * STRIDE];
    run(c, value, tangent);
    check_values(c, value);
    check_tangents(c, tangent);
    free(c);
}

/* Matrix times vector, row vector times matrix, matrix times matrix, an
 * inner size of 1 (an outer product), and inner sizes of 8, where a
 * direction that reaches one or two rows takes the outer-product path. */
static const size_t SHAPES[][3] = {{4, 3, 1}, {1, 4, 3}, {4, 3, 2}, {2, 5, 4},
                                   {3, 1, 4}, {1, 6, 1}, {3, 8, 2}, {1, 8, 3}};

static void check_every_shape(shared_side shared)
{
    srand(7 + (unsigned)shared);
    for (size_t s = 0; s < sizeof SHAPES / sizeof *SHAPES; s++)
        check_case(SHAPES[s][0], SHAPES[s][1], SHAPES[s][2], shared);
}

static void product_data_left(void **state)
{
    (void)state;
    check_every_shape(SHARED_LEFT);
}

static void product_data_right(void **state)
{
    (void)state;
    check_every_shape(SHARED_RIGHT);
}

static void product_both_varying(void **state)
{
    (void)state;
    check_every_shape(SHARED_NONE);
}

/* A direction that reaches no row of the varying operand leaves an exact
 * zero tangent, even over stale values in the output buffer. */
static void product_zero_direction(void **state)
{
    (void)state;
    srand(10);
    product_case *c = calloc(1, sizeof *c);
    assert_non_null(c);
    *c = (product_case){.m = 4, .k = 3, .n = 2, .shared = SHARED_LEFT};
    set_inputs(c);
    double value[MAX_LEN * STRIDE], tangent[4 * MAX_LEN * STRIDE];
    for (size_t i = 0; i < sizeof tangent / sizeof *tangent; i++)
        tangent[i] = NAN;
    run(c, value, tangent);
    size_t len = c->m * c->n;
    for (size_t e = 0; e < len; e++)
        for (size_t p = 0; p < COUNT; p++)
            assert_true(tangent[(2 * len + e) * STRIDE + p] == 0.0);
    free(c);
}

/* Constant folding calls the kernel on one point with both operands
 * shared (stride 1, count 1). */
static void product_of_constants(void **state)
{
    (void)state;
    const double a[6] = {1, 2, 3, 4, 5, 6}; /* 2 x 3: rows (1 3 5), (2 4 6) */
    const double b[3] = {1, -1, 2};
    af_operand args[2] = {{a, NULL, 6, 1, 0}, {b, NULL, 3, 1, 0}};
    double value[2], scratch[64];
    assert_true(af_op_scratch_len(6, 1) <= sizeof scratch / sizeof *scratch);
    af_op_call call = {AF_OP_MATMUL, 2, args, value, NULL, 2, 1, 1, 0, 2, scratch};
    af_op_eval(&call);
    assert_true(value[0] == 1.0 - 3.0 + 10.0);
    assert_true(value[1] == 2.0 - 4.0 + 12.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(product_data_left),      cmocka_unit_test(product_data_right),
        cmocka_unit_test(product_both_varying),   cmocka_unit_test(product_zero_direction),
        cmocka_unit_test(product_of_constants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
