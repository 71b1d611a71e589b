/* The velocity MLP of one flow block: batched forward pass with its exact
 * divergence, and the hand-written backward pass of both. Matrix products
 * go to CBLAS; the softplus is fused with the bias add. */
#include <math.h>
#include <string.h>

#include <cblas.h>

#include "flow_internal.h"

void net_shape_init(net_shape *shape, size_t d, size_t h1, size_t h2, double sharpness)
{
    shape->d = d;
    shape->h1 = h1;
    shape->h2 = h2;
    shape->sharpness = sharpness;

    shape->w1 = 0;
    shape->b1 = shape->w1 + h1 * d;
    shape->w2 = shape->b1 + h1;
    shape->b2 = shape->w2 + h2 * h1;
    shape->w3 = shape->b2 + h2;
    shape->b3 = shape->w3 + d * h2;
    shape->n_params = shape->b3 + d;
}

void net_prepare(const net_shape *shape, const double *theta, double *m, double *c)
{
    const size_t d = shape->d, h1 = shape->h1, h2 = shape->h2;
    const double *w1 = theta + shape->w1, *w2 = theta + shape->w2, *w3 = theta + shape->w3;

    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)h1, (int)h2, (int)d, 1.0, w1,
                (int)d, w3, (int)h2, 0.0, m, (int)h2);

    for (size_t i = 0; i < h2; i++)
        for (size_t j = 0; j < h1; j++)
            c[i * h1 + j] = w2[i * h1 + j] * m[j * h2 + i];
}

/* Largest weight matrix that multiply_by_transpose copies to the stack:
 * 32 KiB, enough for 64 x 64. */
enum { TRANSPOSE_MAX = 64 * 64 };

/* C (B x N) = A (B x K) W' + BETA C for row-major W (N x K). OpenBLAS 0.3.21
 * runs this shape through its general path, which packs both operands and
 * clears a buffer. At 250 x 32 x 32 that took twice as long as the same
 * product with W' stored, so W' is copied first when it is small. */
static void multiply_by_transpose(size_t b, size_t n, size_t k, const double *a,
                                  const double *w, double beta, double *c)
{
    if (n * k > TRANSPOSE_MAX) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)b, (int)n, (int)k, 1.0, a,
                    (int)k, w, (int)k, beta, c, (int)n);
        return;
    }

    double wt[TRANSPOSE_MAX];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < k; j++)
            wt[j * n + i] = w[i * k + j];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)b, (int)n, (int)k, 1.0, a,
                (int)k, wt, (int)n, beta, c, (int)n);
}

void net_forward(const net_shape *shape, const double *theta, const double *c,
                 const double *y, size_t b, net_cache *cache, double *v, double *div)
{
    const size_t d = shape->d, h1 = shape->h1, h2 = shape->h2;

    multiply_by_transpose(b, h1, d, y, theta + shape->w1, 0.0, cache->h1);
    softplus_rows(cache->h1, cache->s1, theta + shape->b1, b, h1, shape->sharpness);

    multiply_by_transpose(b, h2, h1, cache->h1, theta + shape->w2, 0.0, cache->h2);
    softplus_rows(cache->h2, cache->s2, theta + shape->b2, b, h2, shape->sharpness);

    const double *b3 = theta + shape->b3;
    for (size_t p = 0; p < b; p++)
        memcpy(v + p * d, b3, d * sizeof *v);
    multiply_by_transpose(b, d, h2, cache->h2, theta + shape->w3, 1.0, v);

    if (!div)
        return;

    /* div v = sum_i s2_i (C s1)_i, with T = S1 C' holding C s1 per point. */
    multiply_by_transpose(b, h2, h1, cache->s1, c, 0.0, cache->t);
    for (size_t p = 0; p < b; p++) {
        const double *s2 = cache->s2 + p * shape->h2, *t = cache->t + p * shape->h2;
        double sum = 0.0;
        for (size_t i = 0; i < shape->h2; i++)
            sum += s2[i] * t[i];
        div[p] = sum;
    }
}

static void add_column_sums(const double *g, size_t b, size_t h, double *out)
{
    for (size_t p = 0; p < b; p++)
        for (size_t i = 0; i < h; i++)
            out[i] += g[p * h + i];
}

/* Back-propagates through the second hidden layer: fills GA2 from the
 * gradient of h2 (SCRATCH->gh) and of s2 (GDIV * T), adds its column sums to
 * the gradient of b2 and adds the gradient of C; leaves GDIV * S2 C, the
 * gradient of s1, in SCRATCH->ga1. */
static void backward_layer2(const net_shape *shape, const double *c, size_t b,
                            const net_cache *cache, const double *gdiv, double *grad,
                            double *gc, net_scratch *scratch)
{
    const size_t h1 = shape->h1, h2 = shape->h2;

    softplus_backward_rows(scratch->ga2, scratch->gh, gdiv ? cache->t : NULL, gdiv, cache->s2,
                           b, h2, shape->sharpness, grad + shape->b2);
    if (!gdiv) {
        memset(scratch->ga1, 0, b * h1 * sizeof *scratch->ga1);
        return;
    }

    /* Reuse GH as GDIV .* S2 (B x h2): gs1 = (gdiv s2) C, gC += (gdiv s2)' S1. */
    for (size_t p = 0; p < b; p++)
        for (size_t i = 0; i < h2; i++)
            scratch->gh[p * h2 + i] = gdiv[p] * cache->s2[p * h2 + i];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)b, (int)h1, (int)h2, 1.0,
                scratch->gh, (int)h2, c, (int)h1, 0.0, scratch->ga1, (int)h1);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)h2, (int)h1, (int)b, 1.0,
                scratch->gh, (int)h2, cache->s1, (int)h1, 1.0, gc, (int)h1);
}

void net_backward(const net_shape *shape, const double *theta, const double *c,
                  const double *y, size_t b, const net_cache *cache, const double *gv,
                  const double *gdiv, double *grad, double *gc, double *gy,
                  net_scratch *scratch)
{
    const int d = (int)shape->d, h1 = (int)shape->h1, h2 = (int)shape->h2, nb = (int)b;

    /* Output layer. */
    add_column_sums(gv, b, shape->d, grad + shape->b3);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, h2, nb, 1.0, gv, d, cache->h2, h2,
                1.0, grad + shape->w3, h2);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, h2, d, 1.0, gv, d,
                theta + shape->w3, h2, 0.0, scratch->gh, h2);

    /* Second hidden layer, which leaves the gradient of s1 in ga1. */
    backward_layer2(shape, c, b, cache, gdiv, grad, gc, scratch);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, h2, h1, nb, 1.0, scratch->ga2, h2,
                cache->h1, h1, 1.0, grad + shape->w2, h1);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, h1, h2, 1.0, scratch->ga2, h2,
                theta + shape->w2, h1, 0.0, scratch->gh, h1);

    /* First hidden layer: ga1 = gh1 .* s1 + gs1 .* sigmoid', in place of gs1. */
    softplus_backward_rows(scratch->ga1, scratch->gh, scratch->ga1, NULL, cache->s1, b,
                           shape->h1, shape->sharpness, grad + shape->b1);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, h1, d, nb, 1.0, scratch->ga1, h1, y, d,
                1.0, grad + shape->w1, d);
    if (gy)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, d, h1, 1.0, scratch->ga1, h1,
                    theta + shape->w1, d, 0.0, gy, d);
}

void net_finish_gradient(const net_shape *shape, const double *theta, const double *m,
                         const double *gc, double *grad, double *scratch_h1h2)
{
    const size_t d = shape->d, h1 = shape->h1, h2 = shape->h2;
    const double *w1 = theta + shape->w1, *w2 = theta + shape->w2, *w3 = theta + shape->w3;
    double *gm = scratch_h1h2;

    /* C = W2 .* M', M = W1 W3. */
    for (size_t i = 0; i < h2; i++)
        for (size_t j = 0; j < h1; j++) {
            grad[shape->w2 + i * h1 + j] += gc[i * h1 + j] * m[j * h2 + i];
            gm[j * h2 + i] = gc[i * h1 + j] * w2[i * h1 + j];
        }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)h1, (int)d, (int)h2, 1.0, gm,
                (int)h2, w3, (int)h2, 1.0, grad + shape->w1, (int)d);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)h2, (int)h1, 1.0, w1,
                (int)d, gm, (int)h2, 1.0, grad + shape->w3, (int)h2);
}

void net_init(const net_shape *shape, double *theta, rng_state *rng)
{
    /* Glorot-style scales for the hidden layers keep the softplus in its
     * curved region at the start. */
    double s1 = 1.0 / sqrt((double)shape->d), s2 = 1.0 / sqrt((double)shape->h1);

    memset(theta, 0, shape->n_params * sizeof *theta);
    for (size_t k = 0; k < shape->h1 * shape->d; k++)
        theta[shape->w1 + k] = s1 * rng_normal(rng);
    for (size_t k = 0; k < shape->h2 * shape->h1; k++)
        theta[shape->w2 + k] = s2 * rng_normal(rng);
}
