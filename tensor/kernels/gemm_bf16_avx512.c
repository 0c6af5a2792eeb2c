/* gemm_bf16_avx512.c - the AVX512-BF16 tiles of ur_gemm_bf16 (tensor/gemm_bf16.c).
 *
 * Compiled once, with -mavx512bf16 (cmake/kernels.cmake), into the float library
 * only; reached through ur__gemm_bf16_kernel (tensor/dispatch.c) when the CPU has
 * AVX512-BF16. vdpbf16ps multiplies 16 pairs of bf16 values and adds each pair of
 * products to one float lane: a packed pair of k (gemm_bf16_internal.h) is one
 * 32-bit lane, so a 12 x 32 tile of C takes, per pair, two B vectors, twelve
 * broadcasts of A and 24 vdpbf16ps.
 *
 * Like other bf16 instructions, vdpbf16ps ignores MXCSR: it rounds to nearest even,
 * treats denormal inputs as zero and flushes denormal results to zero. Operands
 * whose bf16 value is below FLT_MIN in magnitude count as zero on this path (the
 * portable path keeps them).
 *
 * Packing rounds 16 floats at a time with integer arithmetic (the same rounding as
 * ur_bf16_from_f32: vcvtne2ps2bf16 would flush denormals, which would change which
 * operands count as zero).
 *
 * Loop order per task: depth block (UR_BF16_KC2 pairs) > column panel > row panel.
 * The first depth block applies beta, the later ones add: how the sums are
 * grouped depends on k alone.
 */
#include <immintrin.h>
#include <stddef.h>

#include "gemm_bf16_internal.h"

enum { MR = UR_BF16_MR, NR = UR_BF16_NR, HALF = NR / 2 };

/* tile (MR x NR floats, row-major) = sum over kp pairs of the A panel x B panel. */
static void tile_sums(int kp, const uint32_t *a, const uint32_t *b, float *tile) {
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int p = 0; p < kp; p++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + (size_t)p * NR);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + (size_t)p * NR + HALF);
        const int *ap = (const int *)(a + (size_t)p * MR);
#pragma GCC unroll 12
        for (int r = 0; r < MR; r++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32(ap[r]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
        _mm512_storeu_ps(tile + r * NR, acc[r][0]);
        _mm512_storeu_ps(tile + r * NR + HALF, acc[r][1]);
    }
}

/* c (mr x nr of C, ldc apart) = alpha * tile + (first ? beta * c : c); beta == 0 on
 * the first block does not read c. */
static void tile_store(const float *tile, int mr, int nr, float alpha, float beta, int first,
                       float *c, ptrdiff_t ldc) {
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int r = 0; r < mr; r++)
        for (int h = 0; h * HALF < nr; h++) {
            int cols = nr - h * HALF;
            __mmask16 mask = cols >= HALF ? (__mmask16)0xffff : (__mmask16)((1u << cols) - 1);
            float *cp = c + r * ldc + h * HALF;
            __m512 v = _mm512_mul_ps(va, _mm512_loadu_ps(tile + r * NR + h * HALF));
            if (!first)
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, cp));
            else if (beta != 0)
                v = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask, cp), v);
            _mm512_mask_storeu_ps(cp, mask, v);
        }
}

static void tiles(const ur_bf16_job *g, int ip0, int ip1, int jp0, int jp1) {
    _Alignas(64) float tile[MR * NR];
    for (int p0 = 0; p0 < g->k2; p0 += UR_BF16_KC2) {
        int kp = g->k2 - p0 < UR_BF16_KC2 ? g->k2 - p0 : UR_BF16_KC2;
        for (int jp = jp0; jp < jp1; jp++) {
            const uint32_t *b = g->pb + ((size_t)jp * g->k2 + p0) * NR;
            int nr = g->n - jp * NR < NR ? g->n - jp * NR : NR;
            for (int ip = ip0; ip < ip1; ip++) {
                const uint32_t *a = g->pa + ((size_t)ip * g->k2 + p0) * MR;
                int mr = g->m - ip * MR < MR ? g->m - ip * MR : MR;
                tile_sums(kp, a, b, tile);
                tile_store(tile, mr, nr, g->alpha, g->beta, p0 == 0,
                           g->C + (size_t)ip * MR * g->ldc + (size_t)jp * NR, g->ldc);
            }
        }
    }
}

/* ---- packing (layouts in gemm_bf16_internal.h) ---- */

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
static void pairs_across(const float *lo, const float *hi, int len, int width, uint32_t *dst) {
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
 * k gets a zero partner). */
static void pairs_along(const float *x, int k, int k2, uint32_t *dst, int stride) {
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
}

/* Lines i0..i0+m-1 of an operand (k deep) into W-wide panels of k-pairs: the rows
 * of op(A) (W = MR) or the columns of op(B) (W = NR). `across`: each line runs across
 * X's rows (pairs of X's rows side by side); otherwise each line is a row of X. */
static void pack_panels(int across, const float *X, int ld, int i0, int m, int k, int W, uint32_t *out) {
    int k2 = (k + 1) / 2;
    for (int q = 0; q * W < m; q++) {
        uint32_t *dst = out + (size_t)q * W * k2;
        int lines = m - q * W < W ? m - q * W : W;
        if (across) {
            for (int p = 0; p < k2; p++) {
                const float *lo = X + (size_t)(2 * p) * ld + i0 + q * W;
                pairs_across(lo, 2 * p + 1 < k ? lo + ld : NULL, lines, W, dst + (size_t)p * W);
            }
            continue;
        }
        for (int r = 0; r < W; r++) {
            if (r < lines)
                pairs_along(X + (size_t)(i0 + q * W + r) * ld, k, k2, dst + r, W);
            else
                for (int p = 0; p < k2; p++) dst[(size_t)p * W + r] = 0;
        }
    }
}

/* Rows i0..i0+m-1 of op(A) into MR-row panels: op(A)'s rows are A's columns when ta. */
static void pack_a(int ta, const float *A, int lda, int i0, int m, int k, uint32_t *pa) {
    pack_panels(ta, A, lda, i0, m, k, MR, pa);
}

/* Columns j0..j0+n-1 of op(B) into NR-column panels: op(B)'s columns are B's rows when tb. */
static void pack_b(int tb, const float *B, int ldb, int j0, int n, int k, uint32_t *pb) {
    pack_panels(!tb, B, ldb, j0, n, k, NR, pb);
}

const ur_bf16_kernel ur__gemm_bf16_avx512bf16 = {pack_a, pack_b, tiles};
