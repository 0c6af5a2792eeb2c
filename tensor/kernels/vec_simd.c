/* vec_simd.c - the vector kernels of one instruction set: exp, tanh, sigmoid,
 * axpy, dot and row-wise softmax, each on the calling thread (tensor/vec.c splits
 * large inputs over threads and holds the references).
 *
 * The fast versions of exp, tanh and sigmoid have an AVX-512 float path (16 lanes
 * at a time, exp by a polynomial and a power-of-two scaling); the other sets
 * (double, AVX2, portable) use libm, like the references.
 *
 * exp(x): x = n*ln2 + r with n = round(x/ln2), |r| <= ln2/2; exp(r) by its Taylor
 * polynomial of degree 7 (truncation error < 6e-9 relative), then scaled by 2^n
 * with vscalefps, which overflows to inf and underflows gradually to 0 exactly as
 * the true result would. Within 2 ulp of expf over the whole float range.
 * tanh(x): for |x| < 0.625 the odd polynomial x + x^3 P(x^2) (a least-squares fit,
 * relative error 5e-9 before rounding); above, 1 - 2/(exp(2|x|) + 1) with x's
 * sign, which goes to exactly +-1 for large |x|.
 * sigmoid(x) = 1 / (1 + exp(-x)): 0 for x <= -104, 1 for large x, never NaN.
 * NaN inputs give NaN outputs.
 */
#include <float.h>
#include <math.h>

#include "gemm_internal.h"
#include "kernels_ref_internal.h"

#if defined(__AVX512F__) && !defined(UR_DOUBLE) && !defined(UR_FORCE_PORTABLE)
#define UR_VEC_AVX512 1
#include <immintrin.h>
#endif

/* ---- AVX-512 float ---- */
#ifdef UR_VEC_AVX512

static inline __m512 exp16(__m512 x) {
    /* Clamp (NaN passes: max/min return their second operand when it is NaN):
     * exp(-104) is 0 in float, exp(89) is inf. */
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    /* r = x - n*ln2 in two steps: n * 0.693359375 is exact for |n| <= 2^15 */
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

static inline __m512 tanh16(__m512 x) {
    __m512 ax = _mm512_abs_ps(x);
    /* small |x|: x + x * z * P(z), z = x^2 */
    __m512 z = _mm512_mul_ps(x, x);
    __m512 p = _mm512_set1_ps(-5.706570885e-3f);
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(2.064010916e-2f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-5.373982563e-2f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(1.333143920e-1f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-3.333328152e-1f));
    __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(x, z), p, x);
    /* large |x|: 1 - 2 / (exp(2|x|) + 1), then x's sign */
    __m512 e = exp16(_mm512_add_ps(ax, ax));
    __m512 large =
        _mm512_sub_ps(_mm512_set1_ps(1.0f),
                      _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
    __m512i sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u));
    large = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(large), sign));
    __mmask16 is_small = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.625f), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(is_small, large, small);
}

static inline __m512 sigmoid16(__m512 x) {
    __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), x));
    return _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f)));
}

static inline __mmask16 tail_mask(size_t left) {
    return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
}

/* Applies F to x[0..n) into y, 16 at a time, the last vector masked. */
#define UR_VEC_APPLY(F, n, x, y)                                                                   \
    do {                                                                                           \
        for (size_t i_ = 0; i_ < (n); i_ += 16) {                                                  \
            __mmask16 m_ = tail_mask((n)-i_);                                                      \
            __m512 v_ = F(_mm512_maskz_loadu_ps(m_, (x) + i_));                                    \
            _mm512_mask_storeu_ps((y) + i_, m_, v_);                                               \
        }                                                                                          \
    } while (0)

void ur_kvec_exp(size_t n, const float *x, float *y) { UR_VEC_APPLY(exp16, n, x, y); }
void ur_kvec_tanh(size_t n, const float *x, float *y) { UR_VEC_APPLY(tanh16, n, x, y); }
void ur_kvec_sigmoid(size_t n, const float *x, float *y) { UR_VEC_APPLY(sigmoid16, n, x, y); }

#else
void ur_kvec_exp(size_t n, const ur_real *x, ur_real *y) { ur_vec_exp_ref(n, x, y); }
void ur_kvec_tanh(size_t n, const ur_real *x, ur_real *y) { ur_vec_tanh_ref(n, x, y); }
void ur_kvec_sigmoid(size_t n, const ur_real *x, ur_real *y) { ur_vec_sigmoid_ref(n, x, y); }
#endif

/* ---- axpy and dot ---- */

void ur_kvec_axpy(size_t n, ur_real a, const ur_real *x, ur_real *y) {
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

/* The plain SGD step of nn/optim.c, w = w * shrink - lr * (g + l2 * w), each element
 * in double in that order. A plain loop that the compiler vectorizes for this set;
 * ISO C mode does not contract it into FMAs, so every set gives the same bits as
 * ur__vec_sgd_ref. */
void ur_kvec_sgd(size_t n, double lr, double l2, double shrink, const ur_real *restrict g,
                 ur_real *restrict w) {
    for (size_t i = 0; i < n; i++) {
        double x = (double)w[i] * shrink;
        double gi = (double)g[i] + l2 * (double)w[i];
        x -= lr * gi;
        w[i] = (ur_real)x;
    }
}

/* 1 when no element is NaN or Inf: a scan without early exit that the compiler
 * vectorizes (|x| <= max is false for NaN and Inf). */
int ur_kvec_all_finite(size_t n, const ur_real *x) {
    int ok = 1;
#ifdef UR_DOUBLE
    for (size_t i = 0; i < n; i++) ok &= fabs(x[i]) <= DBL_MAX;
#else
    for (size_t i = 0; i < n; i++) ok &= fabsf(x[i]) <= FLT_MAX;
#endif
    return ok;
}

/* 16 running sums (element i goes to sum i % 16), then added pairwise: the same
 * order on every machine and every call, and the compiler can keep the sums in
 * vector registers. */
ur_real ur_kvec_dot(size_t n, const ur_real *x, const ur_real *y) {
    ur_real s[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) s[j] += x[i + j] * y[i + j];
    for (int j = 0; i < n; i++, j++) s[j] += x[i] * y[i];
    for (int w = 8; w > 0; w /= 2)
        for (int j = 0; j < w; j++) s[j] += s[j + w];
    return s[0];
}

/* ---- softmax along rows ---- */

#ifdef UR_VEC_AVX512
/* The maximum of a row, 16 lanes at a time. */
static float row_max(int cols, const float *x) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < cols; j += 16) {
        __mmask16 k = tail_mask((size_t)(cols - j));
        m = _mm512_mask_max_ps(m, k, m, _mm512_maskz_loadu_ps(k, x + j));
    }
    return _mm512_reduce_max_ps(m);
}

/* The sum of exp(x - shift) over a row (16 running sums, then a fixed tree); the
 * exponentials are also stored in out unless it is NULL. */
static float row_exp_sum(int cols, const float *x, float shift, float *out) {
    __m512 s = _mm512_setzero_ps(), vs = _mm512_set1_ps(shift);
    for (int j = 0; j < cols; j += 16) {
        __mmask16 k = tail_mask((size_t)(cols - j));
        __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), vs));
        e = _mm512_maskz_mov_ps(k, e);
        if (out) _mm512_mask_storeu_ps(out + j, k, e);
        s = _mm512_add_ps(s, e);
    }
    return _mm512_reduce_add_ps(s);
}

void ur_ksoftmax_rows(int rows, int cols, const ur_real *x, ur_real *y) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * cols;
        float *yr = y + (size_t)r * cols;
        float inv = 1.0f / row_exp_sum(cols, xr, row_max(cols, xr), yr);
        for (int j = 0; j < cols; j++) yr[j] *= inv;
    }
}

void ur_klog_softmax_rows(int rows, int cols, const ur_real *x, ur_real *y) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * cols;
        float *yr = y + (size_t)r * cols, mx = row_max(cols, xr);
        float shift = mx + logf(row_exp_sum(cols, xr, mx, NULL));
        for (int j = 0; j < cols; j++) yr[j] = xr[j] - shift;
    }
}
#else
void ur_ksoftmax_rows(int rows, int cols, const ur_real *x, ur_real *y) {
    ur_softmax_rows_ref(rows, cols, x, y);
}

void ur_klog_softmax_rows(int rows, int cols, const ur_real *x, ur_real *y) {
    ur_log_softmax_rows_ref(rows, cols, x, y);
}
#endif
