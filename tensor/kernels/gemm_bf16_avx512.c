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

void ur__gemm_bf16_tiles_avx512bf16(const ur_bf16_job *g, int ip0, int ip1, int jp0, int jp1) {
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
