/* AVX2 softplus layer with SLEEF's vector exp (1.0 ULP) and log (3.5 ULP). Compiled
 * with -mavx2 -mfma and called only after a run-time processor check. */
#include <immintrin.h>
#include <math.h>

#include <sleef.h>

#include "flow_internal.h"

void softplus_rows_avx2(double *a, double *deriv, const double *bias, size_t b, size_t h,
                        double sharpness)
{
    const __m256d s = _mm256_set1_pd(sharpness), inv = _mm256_set1_pd(1.0 / sharpness);
    const __m256d one = _mm256_set1_pd(1.0), zero = _mm256_setzero_pd();
    const __m256d sign = _mm256_set1_pd(-0.0);
    const size_t h4 = h - h % 4;

    for (size_t p = 0; p < b; p++) {
        double *row = a + p * h;
        double *drow = deriv + p * h;
        for (size_t i = 0; i < h4; i += 4) {
            __m256d t = _mm256_mul_pd(s, _mm256_add_pd(_mm256_loadu_pd(row + i),
                                                       _mm256_loadu_pd(bias + i)));
            __m256d e = Sleef_expd4_u10avx2(_mm256_or_pd(t, sign)); /* exp(-|t|) */
            /* log1p(e) as log(u) - ((u - 1) - e) / u with u = 1 + e: the
             * correction restores the bits lost in rounding u, and SLEEF's
             * log is much faster than its log1p. */
            __m256d u = _mm256_add_pd(one, e);
            __m256d r = _mm256_div_pd(one, u);
            __m256d lost = _mm256_sub_pd(_mm256_sub_pd(u, one), e);
            __m256d log1p_e = _mm256_sub_pd(Sleef_logd4_u35avx2(u), _mm256_mul_pd(lost, r));
            __m256d sp = _mm256_add_pd(_mm256_max_pd(t, zero), log1p_e);
            __m256d positive = _mm256_cmp_pd(t, zero, _CMP_GE_OQ);
            _mm256_storeu_pd(row + i, _mm256_mul_pd(sp, inv));
            _mm256_storeu_pd(drow + i, _mm256_blendv_pd(_mm256_mul_pd(e, r), r, positive));
        }
        if (h4 < h)
            softplus_rows_scalar(row + h4, drow + h4, bias + h4, 1, h - h4, sharpness);
    }
}
