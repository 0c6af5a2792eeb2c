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
 * The packing and the stores are shared with the AMX tiles (gemm_bf16_avx512.h).
 *
 * Loop order per task: depth block (UR_BF16_KC2 pairs) > column panel > row panel.
 * The first depth block applies beta, the later ones add: how the sums are
 * grouped depends on k alone.
 */
#include "gemm_bf16_avx512.h"

enum { MR = UR_BF16_MR, NR = UR_BF16_NR, HALF = NR / 2 };

/* The first `rows` rows of tile (MR x NR floats, row-major) = sum over kp pairs of
 * the A panel x B panel. rows is a constant at each call: the loops unroll and the
 * rows past the panel's last (zeros) are not computed. */
static inline __attribute__((always_inline)) void tile_rows(const int rows, int kp, const uint32_t *a,
                                                             const uint32_t *b, float *tile) {
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int r = 0; r < rows; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int p = 0; p < kp; p++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + (size_t)p * NR);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + (size_t)p * NR + HALF);
        const int *ap = (const int *)(a + (size_t)p * MR);
#pragma GCC unroll 12
        for (int r = 0; r < rows; r++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32(ap[r]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < rows; r++) {
        _mm512_storeu_ps(tile + r * NR, acc[r][0]);
        _mm512_storeu_ps(tile + r * NR + HALF, acc[r][1]);
    }
}

#define UR_ROWS_CASE(R) \
    case R: tile_rows(R, kp, a, b, tile); break;

/* The tile's first mr rows (a panel of mr < MR rows is the last of A: one row per
 * step at batch 1 computes one row, not twelve). */
static void tile_sums(int mr, int kp, const uint32_t *a, const uint32_t *b, float *tile) {
    _Static_assert(MR == 12, "one case per row count");
    switch (mr) {
        UR_ROWS_CASE(1) UR_ROWS_CASE(2) UR_ROWS_CASE(3) UR_ROWS_CASE(4) UR_ROWS_CASE(5) UR_ROWS_CASE(6)
        UR_ROWS_CASE(7) UR_ROWS_CASE(8) UR_ROWS_CASE(9) UR_ROWS_CASE(10) UR_ROWS_CASE(11)
    default: tile_rows(MR, kp, a, b, tile); break;
    }
}

static void tiles(const ur_bf16_job *g, int ip0, int ip1, int jp0, int jp1) {
    _Alignas(64) float tile[MR * NR];
    for (int p0 = 0; p0 < g->depth; p0 += UR_BF16_KC2) {
        int kp = g->depth - p0 < UR_BF16_KC2 ? g->depth - p0 : UR_BF16_KC2;
        for (int jp = jp0; jp < jp1; jp++) {
            const uint32_t *b = g->pb + ((size_t)jp * g->depth + p0) * NR;
            int nr = g->n - jp * NR < NR ? g->n - jp * NR : NR;
            for (int ip = ip0; ip < ip1; ip++) {
                const uint32_t *a = g->pa + ((size_t)ip * g->depth + p0) * MR;
                int mr = g->m - ip * MR < MR ? g->m - ip * MR : MR;
                tile_sums(mr, kp, a, b, tile);
                tile_store(tile, NR, mr, nr, g->alpha, g->beta, p0 == 0,
                           g->C + (size_t)ip * MR * g->ldc + (size_t)jp * NR, g->ldc);
            }
        }
    }
}

/* Rows i0..i0+m-1 of op(A) into MR-row panels: op(A)'s rows are A's columns when ta. */
static void pack_a(int ta, const float *A, int lda, int i0, int m, int k, uint32_t *pa) {
    pack_panels(ta, A, lda, i0, m, k, (k + 1) / 2, MR, pa);
}

/* Columns j0..j0+n-1 of op(B) into NR-column panels: op(B)'s columns are B's rows when tb. */
static void pack_b(int tb, const float *B, int ldb, int j0, int n, int k, uint32_t *pb) {
    pack_panels(!tb, B, ldb, j0, n, k, (k + 1) / 2, NR, pb);
}

const ur_bf16_kernel ur__gemm_bf16_avx512bf16 = {"avx512bf16", MR, NR, 1, pack_a, pack_b, tiles};
