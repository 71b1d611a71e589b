/* AVX-512 softplus layer with its own exp and log1p, 8 lanes at a time.
 * Compiled with -mavx512f -mfma and called only after a run-time processor
 * check. Against long double libm on 2 million points of [-700, 700],
 * softplus and its derivative were within 4.2e-16 relative error, and
 * test_flow checks 1e-15 on a grid. Results under 2.2e-308 (t < -708) come
 * out as subnormals or 0. */
#include <immintrin.h>

#include "flow_internal.h"

/* exp(r) = 1 + r + r^2 Q(r) on |r| <= ln(2) / 2: Q is the Chebyshev fit of
 * degree 9 to (exp(r) - 1 - r) / r^2 (mpmath's chebyfit at 50 digits,
 * maximum error 1.1e-16, so under 0.1 ULP of exp). */
static const double EXP_Q[10] = {
    0.50000000000000011,     0.16666666666666669,    0.041666666666624129,
    0.0083333333333300615,   0.0013888888917213717,  0.00019841269863053618,
    2.4801521295954376e-05,  2.7557268459997064e-06, 2.7620088445409746e-07,
    2.510038549551032e-08,
};

/* atanh(z) = z + z w R(w) with w = z^2 on 0 <= w <= 1/9: R is the
 * Chebyshev fit of degree 9 to (atanh(z) / z - 1) / w (maximum error
 * 4.5e-17, damped by w in log1p). */
static const double ATANH_R[10] = {
    0.33333333333333331,  0.20000000000007292,  0.14285714283554379,
    0.11111111358713932,  0.090908947180664293, 0.076927850324793115,
    0.066570721048274675, 0.060005364047953563, 0.044003692430723371,
    0.080820228059717655,
};

static const double LN2_HI = 0.6931471805599453;     /* ln 2 rounded to double */
static const double LN2_LO = 2.3190468138462996e-17; /* ln 2 - LN2_HI */
static const double LOG2E = 1.4426950408889634;

/* Beyond this argument exp(-x) is below half the smallest subnormal, so
 * the scaling step returns 0. */
static const double EXP_ARG_MAX = 750.0;

/* Degree-9 polynomial with coefficients C at X by Horner's rule, written
 * out because GCC at -O2 keeps a loop here. */
static __m512d poly9(__m512d x, const double *c)
{
    __m512d p = _mm512_fmadd_pd(_mm512_set1_pd(c[9]), x, _mm512_set1_pd(c[8]));
    p = _mm512_fmadd_pd(p, x, _mm512_set1_pd(c[7]));
    p = _mm512_fmadd_pd(p, x, _mm512_set1_pd(c[6]));
    p = _mm512_fmadd_pd(p, x, _mm512_set1_pd(c[5]));
    p = _mm512_fmadd_pd(p, x, _mm512_set1_pd(c[4]));
    p = _mm512_fmadd_pd(p, x, _mm512_set1_pd(c[3]));
    p = _mm512_fmadd_pd(p, x, _mm512_set1_pd(c[2]));
    p = _mm512_fmadd_pd(p, x, _mm512_set1_pd(c[1]));
    return _mm512_fmadd_pd(p, x, _mm512_set1_pd(c[0]));
}

/* exp(-x) for x >= 0 or NaN: x = k ln 2 - r with integer k, then
 * 2^-k exp(r). A NaN stays NaN and +inf gives 0. */
static __m512d exp_minus(__m512d x)
{
    x = _mm512_min_pd(_mm512_set1_pd(EXP_ARG_MAX), x); /* a NaN x passes through */
    __m512d k = _mm512_roundscale_pd(_mm512_mul_pd(x, _mm512_set1_pd(LOG2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    /* k LN2_HI - x is exact: both are multiples of 2^-53 and the difference
     * is under 1/2. */
    __m512d r = _mm512_fmsub_pd(k, _mm512_set1_pd(LN2_HI), x);
    r = _mm512_fmadd_pd(k, _mm512_set1_pd(LN2_LO), r);

    __m512d q = poly9(r, EXP_Q);
    __m512d p = _mm512_add_pd(_mm512_set1_pd(1.0),
                              _mm512_fmadd_pd(_mm512_mul_pd(r, r), q, r));
    return _mm512_scalef_pd(p, _mm512_sub_pd(_mm512_setzero_pd(), k));
}

/* log1p(e) for 0 <= e <= 1 as 2 atanh(z), z = e / (2 + e) <= 1/3. The
 * rounding of 2 + e is left uncorrected: correcting it did not lower the
 * maximum error over the test grid (0.41e-15 either way). */
static __m512d log1p_unit(__m512d e)
{
    __m512d z = _mm512_div_pd(e, _mm512_add_pd(_mm512_set1_pd(2.0), e));
    __m512d w = _mm512_mul_pd(z, z);
    __m512d z2 = _mm512_add_pd(z, z);
    return _mm512_fmadd_pd(_mm512_mul_pd(z2, w), poly9(w, ATANH_R), z2);
}

/* softplus(t) / s (with INV = 1 / s) to OUT and sigmoid(t) to SIGMOID. */
static inline void softplus8(__m512d t, __m512d inv, __m512d *out, __m512d *sigmoid)
{
    const __m512d one = _mm512_set1_pd(1.0), zero = _mm512_setzero_pd();
    __m512d e = exp_minus(_mm512_abs_pd(t));

    /* sigmoid(|t|) = 1 / (1 + e), sigmoid(-|t|) = e / (1 + e). */
    __m512d r = _mm512_div_pd(one, _mm512_add_pd(one, e));
    __mmask8 positive = _mm512_cmp_pd_mask(t, zero, _CMP_GE_OQ);
    *sigmoid = _mm512_mask_blend_pd(positive, _mm512_mul_pd(e, r), r);

    /* max(t, 0) gives 0 for a NaN t, whose log1p term is NaN. */
    __m512d sp = _mm512_add_pd(_mm512_max_pd(t, zero), log1p_unit(e));
    *out = _mm512_mul_pd(sp, inv);
}

static __m512d scaled_sum(__m512d s, const double *row, const double *bias)
{
    return _mm512_mul_pd(s, _mm512_add_pd(_mm512_loadu_pd(row), _mm512_loadu_pd(bias)));
}

void softplus_rows_avx512(double *a, double *deriv, const double *bias, size_t b, size_t h,
                          double sharpness)
{
    const __m512d s = _mm512_set1_pd(sharpness), inv = _mm512_set1_pd(1.0 / sharpness);

    for (size_t p = 0; p < b; p++) {
        double *row = a + p * h;
        double *drow = deriv + p * h;
        size_t i = 0;

        /* Two vectors at a time: the chains of one fill the waits of the other. */
        for (; i + 16 <= h; i += 16) {
            __m512d out0, out1, sigmoid0, sigmoid1;
            softplus8(scaled_sum(s, row + i, bias + i), inv, &out0, &sigmoid0);
            softplus8(scaled_sum(s, row + i + 8, bias + i + 8), inv, &out1, &sigmoid1);
            _mm512_storeu_pd(row + i, out0);
            _mm512_storeu_pd(row + i + 8, out1);
            _mm512_storeu_pd(drow + i, sigmoid0);
            _mm512_storeu_pd(drow + i + 8, sigmoid1);
        }

        /* The rest of the row, with the lanes past its end masked off. */
        for (; i < h; i += 8) {
            __mmask8 lanes = (__mmask8)(h - i >= 8 ? 0xffu : (1u << (h - i)) - 1);
            __m512d t = _mm512_mul_pd(s, _mm512_add_pd(_mm512_maskz_loadu_pd(lanes, row + i),
                                                       _mm512_maskz_loadu_pd(lanes, bias + i)));
            __m512d out, sigmoid;
            softplus8(t, inv, &out, &sigmoid);
            _mm512_mask_storeu_pd(row + i, lanes, out);
            _mm512_mask_storeu_pd(drow + i, lanes, sigmoid);
        }
    }
}

/* Eight columns at a time, each down all the rows, with the bias sums in
 * the same order as softplus_backward_scalar and no fused multiply-adds, so
 * that both give the same bits. */
void softplus_backward_rows_avx512(double *ga, const double *gh, const double *gs,
                                   const double *scale, const double *s, size_t b, size_t h,
                                   double sharpness, double *gbias)
{
    const __m512d sharp = _mm512_set1_pd(sharpness), one = _mm512_set1_pd(1.0);

    for (size_t i = 0; i < h; i += 8) {
        __mmask8 lanes = (__mmask8)(h - i >= 8 ? 0xffu : (1u << (h - i)) - 1);
        __m512d sum = _mm512_setzero_pd();
        for (size_t p = 0; p < b; p++) {
            size_t k = p * h + i;
            __m512d sk = _mm512_maskz_loadu_pd(lanes, s + k);
            __m512d g = _mm512_mul_pd(_mm512_maskz_loadu_pd(lanes, gh + k), sk);
            if (gs) {
                __m512d row_gs = _mm512_maskz_loadu_pd(lanes, gs + k);
                if (scale)
                    row_gs = _mm512_mul_pd(_mm512_set1_pd(scale[p]), row_gs);
                __m512d curve = _mm512_mul_pd(_mm512_mul_pd(sharp, sk), _mm512_sub_pd(one, sk));
                g = _mm512_add_pd(g, _mm512_mul_pd(row_gs, curve));
            }
            _mm512_mask_storeu_pd(ga + k, lanes, g);
            sum = _mm512_add_pd(sum, g);
        }
        __m512d old = _mm512_maskz_loadu_pd(lanes, gbias + i);
        _mm512_mask_storeu_pd(gbias + i, lanes, _mm512_add_pd(old, sum));
    }
}
