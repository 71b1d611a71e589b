/* The matrix product A (m x k) times B (k x n), with both operands and the
 * result stored column-major, so element (i, j) of the result is element
 * j * m + i. The call's index is m, and k and n follow from the lengths.
 *
 * The evaluator stores a chunk point-fastest: element e of point b is at
 * e * stride + b, and each tangent direction is a block of len x stride.
 * When one operand is the same for every point (data), the product over a
 * whole chunk is then a few dgemm calls over (elements x points) blocks,
 * for the value and for each direction of the tangent. When both operands
 * vary per point, a plain loop computes the product point by point. */
#include "ops_internal.h"

#include <assert.h>
#include <limits.h>

#include <cblas.h>

typedef struct {
    size_t m, k, n;
} product_shape;

/* The shape of a call with a non-empty result. */
static product_shape shape_of(const af_op_call *c)
{
    product_shape s = {c->index, c->args[0].len / c->index, c->len / c->index};
    assert(s.m * s.k == c->args[0].len);
    assert(s.k * s.n == c->args[1].len);
    assert(s.m * s.n == c->len);
    return s;
}

static void zero_rows(double *block, size_t rows, size_t stride, size_t count)
{
    for (size_t r = 0; r < rows; r++)
        memset(block + r * stride, 0, count * sizeof(double));
}

static int is_zero_row(const double *row, size_t count)
{
    for (size_t b = 0; b < count; b++)
        if (row[b] != 0.0)
            return 0;
    return 1;
}

/* The shared operand seen as an R x K matrix M with M[r][t] at
 * coef[t * t_step + r * r_step], where one of the steps is 1. M is A
 * itself when A is shared, and B^T when B is. */
typedef struct {
    const double *coef;
    size_t t_step, r_step;
    size_t rows, inner;
} shared_matrix;

/* One block of a shared product: OUT (R rows of COUNT points, row r at
 * out + r * out_step) = M times X (K rows, row t at x + t * x_step). */
typedef struct {
    const double *x;
    size_t x_step;
    double *out;
    size_t out_step;
    size_t count;
} product_block;

static void multiply_dense(const shared_matrix *m, const product_block *p)
{
    /* Row-major, M is either M^T stored K x R (r_step 1) or M stored R x K.
     * A leading dimension only matters when there is more than one row. */
    int transposed = m->r_step == 1;
    size_t lda = transposed ? m->t_step : m->r_step;
    size_t least = transposed ? m->rows : m->inner;
    cblas_dgemm(CblasRowMajor, transposed ? CblasTrans : CblasNoTrans, CblasNoTrans,
                (int)m->rows, (int)p->count, (int)m->inner, 1.0, m->coef,
                (int)(lda > least ? lda : least), p->x, (int)p->x_step, 0.0, p->out,
                (int)p->out_step);
}

/* The same product when only the rows of X listed as non-zero contribute:
 * a sum of outer products, column t of M times row t of X. */
static void multiply_sparse(const shared_matrix *m, const product_block *p)
{
    int first = 1;
    for (size_t t = 0; t < m->inner; t++) {
        const double *row = p->x + t * p->x_step;
        if (is_zero_row(row, p->count))
            continue;
        const double *col = m->coef + t * m->t_step;
        if (first) {
            for (size_t r = 0; r < m->rows; r++)
                for (size_t b = 0; b < p->count; b++)
                    p->out[r * p->out_step + b] = col[r * m->r_step] * row[b];
            first = 0;
        } else {
            cblas_dger(CblasRowMajor, (int)m->rows, (int)p->count, 1.0, col, (int)m->r_step,
                       row, 1, p->out, (int)p->out_step);
        }
    }
    if (first)
        zero_rows(p->out, m->rows, p->out_step, p->count);
}

/* A tangent block: a direction seeded by a few parameters reaches only a
 * few rows of X (one for a parameter vector times data), so the rows that
 * are zero for every point are skipped. */
static void multiply_tangent(const shared_matrix *m, const product_block *p)
{
    size_t nonzero = 0;
    for (size_t t = 0; t < m->inner; t++)
        nonzero += !is_zero_row(p->x + t * p->x_step, p->count);
    /* NOTE: the cut between outer products and dgemm is an estimate, not a
     * measured optimum. Each outer product streams the whole output block. */
    if (4 * nonzero <= m->inner)
        multiply_sparse(m, p);
    else
        multiply_dense(m, p);
}

/* The blocks of one shared product: column j of X and of the result when
 * A is shared, row i of both when B is. */
static product_block block_of(product_shape s, int left, size_t index, const double *x,
                              size_t x_stride, double *out, size_t stride, size_t count)
{
    if (left)
        return (product_block){x + index * s.k * x_stride, x_stride, out + index * s.m * stride,
                               stride, count};
    return (product_block){x + index * x_stride, s.m * x_stride, out + index * stride,
                           s.m * stride, count};
}

/* One operand shared by all points (SHARED) and the other per point (X).
 * LEFT is non-zero when the shared operand is A. The shared operand has no
 * tangent, so direction j of the result is the shared operand times
 * direction j of X. */
static void product_with_shared(const af_op_call *c, product_shape s, const double *shared,
                                const af_operand *x, int left)
{
    shared_matrix m = left ? (shared_matrix){shared, s.m, 1, s.m, s.k}
                           : (shared_matrix){shared, 1, s.k, s.n, s.k};
    size_t blocks = left ? s.n : s.m, stride = c->stride;
    for (size_t q = 0; q < blocks; q++) {
        product_block p = block_of(s, left, q, x->value, x->estride, c->value, stride, c->count);
        multiply_dense(&m, &p);
    }
    if (c->tangent == NULL)
        return;

    for (size_t j = 0; j < c->dim; j++) {
        double *out = c->tangent + j * c->len * stride;
        if (x->tangent == NULL) {
            zero_rows(out, c->len, stride, c->count);
            continue;
        }
        const double *dx = x->tangent + j * x->len * stride;
        for (size_t q = 0; q < blocks; q++) {
            product_block p = block_of(s, left, q, dx, stride, out, stride, c->count);
            multiply_tangent(&m, &p);
        }
    }
}

/* Tangent element of operand X, or 0 when X has none. */
static double tangent_of(const af_operand *x, size_t j, size_t e, size_t b, size_t stride)
{
    return x->tangent == NULL ? 0.0 : x->tangent[(j * x->len + e) * stride + b];
}

/* Both operands vary per point: the product of each point by the
 * definition, with the product rule for the tangent. */
static void product_per_point(const af_op_call *c, product_shape s)
{
    const af_operand *a = &c->args[0], *bm = &c->args[1];
    size_t stride = c->stride;
    for (size_t j = 0; j < s.n; j++) {
        for (size_t i = 0; i < s.m; i++) {
            size_t e = j * s.m + i;
            for (size_t b = 0; b < c->count; b++) {
                double sum = 0.0;
                for (size_t t = 0; t < s.k; t++)
                    sum += operand_value(a, t * s.m + i, b) * operand_value(bm, j * s.k + t, b);
                c->value[e * stride + b] = sum;
            }
            for (size_t d = 0; c->tangent != NULL && d < c->dim; d++) {
                for (size_t b = 0; b < c->count; b++) {
                    double sum = 0.0;
                    for (size_t t = 0; t < s.k; t++) {
                        size_t ea = t * s.m + i, eb = j * s.k + t;
                        sum += tangent_of(a, d, ea, b, stride) * operand_value(bm, eb, b) +
                               operand_value(a, ea, b) * tangent_of(bm, d, eb, b, stride);
                    }
                    c->tangent[(d * c->len + e) * stride + b] = sum;
                }
            }
        }
    }
}

/* NOTE: a skipped row of a tangent gives an exact 0 where the column
 * products would give NaN for data holding Inf or NaN. The log-density is
 * then not finite anyway, and the evaluator reports a zero score. */
void af_kernel_MATMUL(const af_op_call *c)
{
    const af_operand *a = &c->args[0], *b = &c->args[1];
    if (c->len == 0 || c->count == 0)
        return;
    product_shape s = shape_of(c);
    if (s.k == 0) { /* an empty sum */
        zero_rows(c->value, c->len, c->stride, c->count);
        if (c->tangent != NULL)
            zero_rows(c->tangent, c->dim * c->len, c->stride, c->count);
        return;
    }
    /* BLAS needs a leading dimension of at least the point count, so an
     * operand that is the same for every point (bstride 0) must be the
     * shared one unless there is a single point. The shared operand must be
     * stored densely, and every size passed to BLAS must fit in an int. */
    size_t widest = c->len > a->len ? c->len : a->len;
    widest = widest > b->len ? widest : b->len;
    int fits = widest <= INT_MAX / (c->stride > 0 ? c->stride : 1);
    if (fits && a->bstride == 0 && a->estride == 1 && a->tangent == NULL &&
        (b->bstride == 1 || c->count == 1))
        product_with_shared(c, s, a->value, b, 1);
    else if (fits && b->bstride == 0 && b->estride == 1 && b->tangent == NULL &&
             a->bstride == 1)
        product_with_shared(c, s, b->value, a, 0);
    else
        product_per_point(c, s);
}
