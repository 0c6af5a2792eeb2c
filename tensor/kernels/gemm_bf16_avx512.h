/* gemm_bf16_avx512.h - what the two bf16 tile kernels of ur_gemm_bf16 share: the
 * AVX512-BF16 tiles (gemm_bf16_avx512.c) and the AMX tiles (gemm_bf16_amx.c).
 * Static inline functions for files compiled with AVX-512 F and BW:
 *   tile_store     a finished tile of float sums into C, with alpha and beta;
 *   pack_panels    lines of an operand rounded to bf16 into panels of k-pairs
 *                  (gemm_bf16_internal.h), `depth` pairs deep (zeros past k);
 *   pairs_across, pairs_along   the two ways a line of pairs is read from X.
 *
 * Packing rounds 16 floats at a time with integer arithmetic (the same rounding as
 * ur_bf16_from_f32: vcvtne2ps2bf16 would flush denormals, which would change which
 * operands count as zero).
 */
#ifndef UR_GEMM_BF16_AVX512_H
#define UR_GEMM_BF16_AVX512_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "gemm_bf16_internal.h"

/* c (mr x nr of C, ldc apart) = alpha * tile + (first ? beta * c : c), tile's rows
 * ldt floats apart; beta == 0 on the first block does not read c. */
static inline void tile_store(const float *tile, int ldt, int mr, int nr, float alpha, float beta,
                              int first, float *c, ptrdiff_t ldc) {
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int r = 0; r < mr; r++)
        for (int h = 0; h * 16 < nr; h++) {
            int cols = nr - h * 16;
            __mmask16 mask = cols >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << cols) - 1);
            float *cp = c + r * ldc + h * 16;
            __m512 v = _mm512_mul_ps(va, _mm512_loadu_ps(tile + r * ldt + h * 16));
            if (!first)
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, cp));
            else if (beta != 0)
                v = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask, cp), v);
            _mm512_mask_storeu_ps(cp, mask, v);
        }
}

/* The 16 floats of x rounded to bf16 (ur__bf16_round), each in the low half of
 * its 32-bit lane. */
static inline __m512i round16(__m512 x) {
    __m512i u = _mm512_castps_si512(x), hi = _mm512_srli_epi32(u, 16);
    __m512i bias = _mm512_add_epi32(_mm512_and_si512(hi, _mm512_set1_epi32(1)),
                                    _mm512_set1_epi32(0x7fff));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, bias), 16);
    __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    return _mm512_mask_or_epi32(r, nan, hi, _mm512_set1_epi32(0x0040));
}

static inline __mmask16 first(int n) {
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

/* dst[c] = pair (lo[c], hi[c]) for c < len (hi NULL: zeros), 0 for len <= c < width. */
static inline void pairs_across(const float *lo, const float *hi, int len, int width, uint32_t *dst) {
    for (int c = 0; c < width; c += 16) {
        __mmask16 m = first(len - c);
        __m512i w = round16(_mm512_maskz_loadu_ps(m, lo + c));
        if (hi) {
            __m512i h = round16(_mm512_maskz_loadu_ps(m, hi + c));
            w = _mm512_or_si512(w, _mm512_slli_epi32(h, 16));
        }
        _mm512_mask_storeu_epi32(dst + c, first(width - c), _mm512_maskz_mov_epi32(m, w));
    }
}

/* dst[p * stride] = pair (x[2p], x[2p+1]) for the k2 pairs of x (k values; an odd
 * k gets a zero partner), then 0 for k2 <= p < depth. */
static inline void pairs_along(const float *x, int k, int k2, int depth, uint32_t *dst, int stride) {
    uint32_t w[16];
    for (int p0 = 0; p0 < k2; p0 += 16) {
        int at = 2 * p0;
        __m512i a = round16(_mm512_maskz_loadu_ps(first(k - at), x + at));
        __m512i b = round16(_mm512_maskz_loadu_ps(first(k - at - 16), x + at + 16));
        /* the low halves of 32 lanes, in order: 16 words of pairs */
        _mm256_storeu_si256((__m256i *)w, _mm512_cvtepi32_epi16(a));
        _mm256_storeu_si256((__m256i *)(w + 8), _mm512_cvtepi32_epi16(b));
        int n = k2 - p0 < 16 ? k2 - p0 : 16;
        for (int p = 0; p < n; p++) dst[(size_t)(p0 + p) * stride] = w[p];
    }
    for (int p = k2; p < depth; p++) dst[(size_t)p * stride] = 0;
}

/* Lines i0..i0+m-1 of an operand (k deep) into W-wide panels of `depth` k-pairs
 * (depth >= ceil(k / 2); the pairs past k are zero): the rows of op(A) or the
 * columns of op(B). Panel q holds, for each pair p, the W words of lines q*W + r
 * at out[q*W*depth + p*W + r]. `across`: each line runs across X's rows (pairs of
 * X's rows side by side); otherwise each line is a row of X. */
static inline void pack_panels(int across, const float *X, int ld, int i0, int m, int k, int depth,
                               int W, uint32_t *out) {
    int k2 = (k + 1) / 2;
    for (int q = 0; q * W < m; q++) {
        uint32_t *dst = out + (size_t)q * W * depth;
        int lines = m - q * W < W ? m - q * W : W;
        if (across) {
            for (int p = 0; p < k2; p++) {
                const float *lo = X + (size_t)(2 * p) * ld + i0 + q * W;
                pairs_across(lo, 2 * p + 1 < k ? lo + ld : NULL, lines, W, dst + (size_t)p * W);
            }
            memset(dst + (size_t)k2 * W, 0, (size_t)(depth - k2) * W * sizeof *dst);
            continue;
        }
        for (int r = 0; r < W; r++) {
            if (r < lines)
                pairs_along(X + (size_t)(i0 + q * W + r) * ld, k, k2, depth, dst + r, W);
            else
                for (int p = 0; p < depth; p++) dst[(size_t)p * W + r] = 0;
        }
    }
}

#endif
