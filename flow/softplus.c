/* The softplus layer activation, fused with the bias add: a portable loop,
 * a SLEEF AVX2 version and an AVX-512 version, chosen at run time by what
 * the processor has. The activations cost more than the matrix products of
 * a 32-wide network, so this is the trainer's hottest loop. */
#include <math.h>

#include "flow_internal.h"

/* Defined in softplus_avx512.c, which is compiled for AVX-512F. */
void softplus_rows_avx512(double *a, double *deriv, const double *bias, size_t b, size_t h,
                          double sharpness);
void softplus_backward_rows_avx512(double *ga, const double *gh, const double *gs,
                                   const double *scale, const double *s, size_t b, size_t h,
                                   double sharpness, double *gbias);

void softplus_rows_scalar(double *a, double *deriv, const double *bias, size_t b, size_t h,
                          double sharpness)
{
    const double inv = 1.0 / sharpness;

    for (size_t p = 0; p < b; p++) {
        double *row = a + p * h;
        double *drow = deriv + p * h;
        for (size_t i = 0; i < h; i++) {
            double t = sharpness * (row[i] + bias[i]);
            double e = exp(-fabs(t));
            double sp = (t > 0 ? t : 0.0) + log1p(e);
            row[i] = sp * inv;
            drow[i] = t >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
        }
    }
}

void softplus_rows(double *a, double *deriv, const double *bias, size_t b, size_t h,
                   double sharpness)
{
#if defined(AF_HAVE_AVX512_SOFTPLUS)
    if (__builtin_cpu_supports("avx512f")) {
        softplus_rows_avx512(a, deriv, bias, b, h, sharpness);
        return;
    }
#endif
#if defined(AF_HAVE_SLEEF_AVX2)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        softplus_rows_avx2(a, deriv, bias, b, h, sharpness);
        return;
    }
#endif
    softplus_rows_scalar(a, deriv, bias, b, h, sharpness);
}

/* Column by column, so that each bias sum runs over the rows in order, as
 * the AVX-512 path sums its lanes. */
static void softplus_backward_scalar(double *ga, const double *gh, const double *gs,
                                     const double *scale, const double *s, size_t b, size_t h,
                                     double sharpness, double *gbias)
{
    for (size_t i = 0; i < h; i++) {
        double sum = 0.0;
        for (size_t p = 0; p < b; p++) {
            size_t k = p * h + i;
            double g = gh[k] * s[k];
            if (gs) {
                double row_gs = scale ? scale[p] * gs[k] : gs[k];
                g += row_gs * (sharpness * s[k] * (1.0 - s[k]));
            }
            ga[k] = g;
            sum += g;
        }
        gbias[i] += sum;
    }
}

void softplus_backward_rows(double *ga, const double *gh, const double *gs,
                            const double *scale, const double *s, size_t b, size_t h,
                            double sharpness, double *gbias)
{
#if defined(AF_HAVE_AVX512_SOFTPLUS)
    if (__builtin_cpu_supports("avx512f")) {
        softplus_backward_rows_avx512(ga, gh, gs, scale, s, b, h, sharpness, gbias);
        return;
    }
#endif
    softplus_backward_scalar(ga, gh, gs, scale, s, b, h, sharpness, gbias);
}
