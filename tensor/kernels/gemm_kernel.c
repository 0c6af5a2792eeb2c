/* gemm_kernel.c - the GEMM micro-kernel: one MR x NR tile of C from packed panels.
 *
 * Written once against the vector macros of gemm_simd.h. The tile's MR x NV
 * accumulators live in registers for the whole depth loop; each step loads NV
 * vectors of B and broadcasts MR values of A (one FMA per accumulator).
 *
 * Every element of C is computed by the same operations whatever the tile shape,
 * the edge case or the thread that runs it: acc = 0; acc = a[p] * b[p] + acc for
 * p = 0..kc-1 in order; then c = alpha * acc + beta * c. This is what makes the
 * results independent of blocking and of the number of threads. The old c may come
 * from elsewhere (ci, ldci apart: the C0 of ur__gemm_plus on the first depth block),
 * so that C0 is never copied into C first; it is read exactly where C's copy of it
 * would have been, so the result is the same.
 */
#include <stdint.h>

#include "gemm_internal.h"

#define UR_ALWAYS_INLINE static inline __attribute__((always_inline))

/* Asks for the rows of a tile of C (mr rows of nr values) before the depth loop,
 * so that its lines arrive while the FMAs run instead of when the results are
 * stored: on products of thousands of rows the stores otherwise wait for memory.
 * Only a hint: no value changes. */
UR_ALWAYS_INLINE void prefetch_rows(const int mr, int nr, const ur_real *c, ptrdiff_t ldc) {
    enum { LINE = 64 };
    int bytes = nr * (int)sizeof(ur_real);
    UR_UNROLL
    for (int r = 0; r < mr; r++) {
        const char *row = (const char *)(c + r * ldc);
        for (int off = 0; off < bytes; off += LINE) __builtin_prefetch(row + off);
        __builtin_prefetch(row + bytes - 1); /* a row that starts mid-line ends in one more */
    }
}

/* B read in place (rows rsb apart, not a packed panel): each step of the depth loop
 * asks for the row B_AHEAD steps ahead, both ends of a panel's width. On products whose
 * B comes from memory (a sequence's gate gradients, weights pushed out of cache) the
 * rows otherwise arrive one miss at a time: with the hint such products ran 11-63%
 * faster (docs/performance.md); with B in cache, no slower. The address is formed as
 * an integer, since the last rows' hints point past B. Only a hint: no value changes. */
enum { B_AHEAD = 16 };
UR_ALWAYS_INLINE void prefetch_b_row(const ur_real *b, ptrdiff_t rsb) {
    uintptr_t row = (uintptr_t)b + (uintptr_t)(B_AHEAD * rsb) * sizeof(ur_real);
    __builtin_prefetch((const void *)row);
    __builtin_prefetch((const void *)(row + (UR_GEMM_NR - 1) * sizeof(ur_real)));
}

/* The tile's old values (read when beta != 0) and, when they come from elsewhere,
 * the tile itself. */
UR_ALWAYS_INLINE void prefetch_tile(const int mr, int nr, ur_real beta, const ur_real *c, ptrdiff_t ldc,
                                    const ur_real *ci, ptrdiff_t ldci) {
    if (beta != 0) prefetch_rows(mr, nr, ci, ldci);
    if (beta == 0 || ci != c) prefetch_rows(mr, nr, c, ldc);
}

/* The tile body. mr and full are compile-time constants at every call site, so
 * the loops over r and v unroll and acc[][] stays in registers. full means
 * nr == NR: B and C are then accessed without masks. */
UR_ALWAYS_INLINE void micro_tile(const int mr, const int full, int nr, int kc, const ur_real *a,
                                 const ur_real *b, ptrdiff_t rsb, ur_real alpha, ur_real beta,
                                 ur_real *c, ptrdiff_t ldc, const ur_real *ci, ptrdiff_t ldci) {
    UR_V acc[UR_GEMM_MR][UR_NV];
    UR_UNROLL
    for (int r = 0; r < mr; r++) {
        UR_UNROLL
        for (int v = 0; v < UR_NV; v++) acc[r][v] = UR_V_ZERO();
    }
    prefetch_tile(mr, nr, beta, c, ldc, ci, ldci);
    const int in_place = rsb != UR_GEMM_NR;

    for (int p = 0; p < kc; p++) {
        UR_V bv[UR_NV];
        if (in_place) prefetch_b_row(b, rsb);
        UR_UNROLL
        for (int v = 0; v < UR_NV; v++)
            bv[v] = full ? UR_V_LOAD(b + v * UR_VL) : UR_V_LOADN(b + v * UR_VL, nr - v * UR_VL);
        UR_UNROLL
        for (int r = 0; r < mr; r++) {
            UR_V av = UR_V_SET1(a[r]);
            UR_UNROLL
            for (int v = 0; v < UR_NV; v++) acc[r][v] = UR_V_FMA(av, bv[v], acc[r][v]);
        }
        a += UR_GEMM_MR;
        b += rsb;
    }

    UR_V va = UR_V_SET1(alpha), vb = UR_V_SET1(beta);
    UR_UNROLL
    for (int r = 0; r < mr; r++) {
        ur_real *cr = c + r * ldc;
        const ur_real *cir = ci + r * ldci;
        UR_UNROLL
        for (int v = 0; v < UR_NV; v++) {
            int n = full ? UR_VL : nr - v * UR_VL;
            UR_V t;
            if (beta == 0) {
                t = UR_V_MUL(va, acc[r][v]); /* C's old contents are not read */
            } else {
                UR_V old = full ? UR_V_LOAD(cir + v * UR_VL) : UR_V_LOADN(cir + v * UR_VL, n);
                if (beta != 1) old = UR_V_MUL(vb, old);
                t = UR_V_FMA(va, acc[r][v], old);
            }
            if (full)
                UR_V_STORE(cr + v * UR_VL, t);
            else
                UR_V_STOREN(cr + v * UR_VL, t, n);
        }
    }
}

/* Tiles of fewer than UR_WIDE_ROWS rows have too few accumulators to hide the FMA
 * latency in an MR x NR tile, so they span np NR-panels of B at once (panel q at
 * b + q * psb), (np - 1) * NR < nr <= np * NR columns in all. Same arithmetic per
 * element as micro_tile. */
UR_ALWAYS_INLINE void micro_wide(const int mr, const int np, const int full, int nr, int kc,
                                 const ur_real *a, ptrdiff_t rsa, const ur_real *b, ptrdiff_t rsb, ptrdiff_t psb,
                                 ur_real alpha, ur_real beta, ur_real *c, ptrdiff_t ldc, const ur_real *ci,
                                 ptrdiff_t ldci) {
    enum { W = (UR_WIDE_NP1 > UR_WIDE_NP ? UR_WIDE_NP1 : UR_WIDE_NP) * UR_NV };
    UR_V acc[UR_WIDE_ROWS - 1][W];
    const int nv = np * UR_NV;
    UR_UNROLL
    for (int r = 0; r < mr; r++) {
        UR_UNROLL
        for (int v = 0; v < nv; v++) acc[r][v] = UR_V_ZERO();
    }
    prefetch_tile(mr, nr, beta, c, ldc, ci, ldci);

    for (int p = 0; p < kc; p++) {
        UR_V bv[W];
        UR_UNROLL
        for (int v = 0; v < nv; v++) {
            /* callers pass np = ceil(nr / NR): only the last panel can be partial */
            const ur_real *bp = b + (v / UR_NV) * psb + (v % UR_NV) * UR_VL;
            bv[v] = full || v < nv - UR_NV ? UR_V_LOAD(bp) : UR_V_LOADN(bp, nr - v * UR_VL);
        }
        UR_UNROLL
        for (int r = 0; r < mr; r++) {
            UR_V av = UR_V_SET1(a[r]);
            UR_UNROLL
            for (int v = 0; v < nv; v++) acc[r][v] = UR_V_FMA(av, bv[v], acc[r][v]);
        }
        a += rsa;
        b += rsb;
    }

    UR_V va = UR_V_SET1(alpha), vb = UR_V_SET1(beta);
    UR_UNROLL
    for (int r = 0; r < mr; r++) {
        UR_UNROLL
        for (int v = 0; v < nv; v++) {
            ur_real *cp = c + r * ldc + v * UR_VL;
            const ur_real *cip = ci + r * ldci + v * UR_VL;
            int n = full ? UR_VL : nr - v * UR_VL;
            UR_V t;
            if (beta == 0) {
                t = UR_V_MUL(va, acc[r][v]);
            } else {
                UR_V old = full ? UR_V_LOAD(cip) : UR_V_LOADN(cip, n);
                if (beta != 1) old = UR_V_MUL(vb, old);
                t = UR_V_FMA(va, acc[r][v], old);
            }
            if (full)
                UR_V_STORE(cp, t);
            else
                UR_V_STOREN(cp, t, n);
        }
    }
}

int ur_gemm_wide_panels(int mr) { return mr == 1 ? UR_WIDE_NP1 : UR_WIDE_NP; }

/* The tile spans only the panels that nr needs: a tile of 1 row x 64 columns (a
 * tree node's layer) would otherwise run 8 panels of FMAs on zeros. */
#define UR_WIDE_NP_CASE(R, NP)                                                                     \
    case NP:                                                                                       \
        if (nr == NP * UR_GEMM_NR)                                                                 \
            micro_wide(R, NP, 1, nr, kc, a, rsa, b, rsb, psb, alpha, beta, c, ldc, ci, ldci);      \
        else                                                                                       \
            micro_wide(R, NP, 0, nr, kc, a, rsa, b, rsb, psb, alpha, beta, c, ldc, ci, ldci);      \
        break;

#define UR_WIDE_CASE(R, NP)                                                                        \
    case R:                                                                                        \
        if (nr == NP * UR_GEMM_NR)                                                                 \
            micro_wide(R, NP, 1, nr, kc, a, rsa, b, rsb, psb, alpha, beta, c, ldc, ci, ldci);      \
        else                                                                                       \
            micro_wide(R, NP, 0, nr, kc, a, rsa, b, rsb, psb, alpha, beta, c, ldc, ci, ldci);      \
        break;

/* One row: 1..UR_WIDE_NP1 panels (2, 4 or 8 by ISA). */
static void micro_wide_row(int nr, int kc, const ur_real *a, ptrdiff_t rsa, const ur_real *b, ptrdiff_t rsb,
                           ptrdiff_t psb, ur_real alpha, ur_real beta, ur_real *c, ptrdiff_t ldc,
                           const ur_real *ci, ptrdiff_t ldci) {
    switch ((nr + UR_GEMM_NR - 1) / UR_GEMM_NR) {
        UR_WIDE_NP_CASE(1, 1)
        UR_WIDE_NP_CASE(1, 2)
#if UR_WIDE_NP1 > 2
        UR_WIDE_NP_CASE(1, 3)
        UR_WIDE_NP_CASE(1, 4)
#endif
#if UR_WIDE_NP1 > 4
        UR_WIDE_NP_CASE(1, 5)
        UR_WIDE_NP_CASE(1, 6)
        UR_WIDE_NP_CASE(1, 7)
        UR_WIDE_NP_CASE(1, 8)
#endif
    default:
        break;
    }
}

void ur_gemm_micro_wide(int mr, int nr, int kc, const ur_real *a, ptrdiff_t rsa, const ur_real *b,
                        ptrdiff_t rsb, ptrdiff_t psb, ur_real alpha, ur_real beta, ur_real *c, ptrdiff_t ldc,
                        const ur_real *ci, ptrdiff_t ldci) {
    if (mr == 1) {
        micro_wide_row(nr, kc, a, rsa, b, rsb, psb, alpha, beta, c, ldc, ci, ldci);
        return;
    }
    if (nr <= UR_GEMM_NR) { /* one panel is enough */
        ur_gemm_micro(mr, nr, kc, a, b, rsb, alpha, beta, c, ldc, ci, ldci);
        return;
    }
    switch (mr) {
#if UR_WIDE_ROWS > 2
        UR_WIDE_CASE(2, UR_WIDE_NP)
#endif
#if UR_WIDE_ROWS > 3
        UR_WIDE_CASE(3, UR_WIDE_NP)
#endif
#if UR_WIDE_ROWS > 4
        UR_WIDE_CASE(4, UR_WIDE_NP)
#endif
#if UR_WIDE_ROWS > 5
        UR_WIDE_CASE(5, UR_WIDE_NP)
#endif
    default:
        break;
    }
}

#define UR_TILE_CASE(R)                                                                            \
    case R:                                                                                        \
        if (nr == UR_GEMM_NR)                                                                      \
            micro_tile(R, 1, nr, kc, a, b, rsb, alpha, beta, c, ldc, ci, ldci);                    \
        else                                                                                       \
            micro_tile(R, 0, nr, kc, a, b, rsb, alpha, beta, c, ldc, ci, ldci);                    \
        break;

void ur_gemm_micro(int mr, int nr, int kc, const ur_real *a, const ur_real *b, ptrdiff_t rsb,
                   ur_real alpha, ur_real beta, ur_real *c, ptrdiff_t ldc, const ur_real *ci,
                   ptrdiff_t ldci) {
    switch (mr) {
        UR_TILE_CASE(1)
        UR_TILE_CASE(2)
        UR_TILE_CASE(3)
        UR_TILE_CASE(4)
#if UR_GEMM_MR >= 6
        UR_TILE_CASE(5)
        UR_TILE_CASE(6)
#endif
#if UR_GEMM_MR >= 12
        UR_TILE_CASE(7)
        UR_TILE_CASE(8)
        UR_TILE_CASE(9)
        UR_TILE_CASE(10)
        UR_TILE_CASE(11)
        UR_TILE_CASE(12)
#endif
    default:
        break;
    }
}

/* ---- A * B^T with few rows: dot products ----
 * Both operands are read in place along their rows (no packing, which would cost
 * more than the product itself). Each element is one dot product over all of k:
 * UR_VL partial sums, in order of p, then UR_V_SUM. */
UR_ALWAYS_INLINE void dot_tile(const int mr, const int jb, int k, const ur_real *a, ptrdiff_t lda,
                               const ur_real *b, ptrdiff_t ldb, ur_real alpha, ur_real beta,
                               ur_real *c, ptrdiff_t ldc) {
    UR_V acc[8][8];
    UR_UNROLL
    for (int r = 0; r < mr; r++) {
        UR_UNROLL
        for (int j = 0; j < jb; j++) acc[r][j] = UR_V_ZERO();
    }
    for (int p = 0; p < k; p += UR_VL) {
        int full = k - p >= UR_VL;
        UR_V bv[8];
        UR_UNROLL
        for (int j = 0; j < jb; j++)
            bv[j] = full ? UR_V_LOAD(b + j * ldb + p) : UR_V_LOADN(b + j * ldb + p, k - p);
        UR_UNROLL
        for (int r = 0; r < mr; r++) {
            UR_V av = full ? UR_V_LOAD(a + r * lda + p) : UR_V_LOADN(a + r * lda + p, k - p);
            UR_UNROLL
            for (int j = 0; j < jb; j++) acc[r][j] = UR_V_FMA(av, bv[j], acc[r][j]);
        }
    }
    UR_UNROLL
    for (int r = 0; r < mr; r++) {
        UR_UNROLL
        for (int j = 0; j < jb; j++) {
            ur_real s = alpha * UR_V_SUM(acc[r][j]);
            ur_real *cp = c + r * ldc + j;
            *cp = beta == 0 ? s : s + beta * *cp;
        }
    }
}

/* JB rows of the stored B per tile: enough accumulators to hide the FMA latency. */
#define UR_DOT_CASE(R, JB)                                                                         \
    case R:                                                                                        \
        for (j = 0; j + JB <= n; j += JB)                                                          \
            dot_tile(R, JB, k, A, lda, B + j * ldb, ldb, alpha, beta, C + j, ldc);                 \
        for (; j < n; j++) dot_tile(R, 1, k, A, lda, B + j * ldb, ldb, alpha, beta, C + j, ldc);   \
        break;

void ur_gemm_dot_nt(int m, int n, int k, ur_real alpha, const ur_real *A, ptrdiff_t lda,
                    const ur_real *B, ptrdiff_t ldb, ur_real beta, ur_real *C, ptrdiff_t ldc) {
    for (int i = 0; i < m; i += 8, A += 8 * lda, C += 8 * ldc) {
        ptrdiff_t j;
        switch (m - i < 8 ? m - i : 8) {
            UR_DOT_CASE(1, 8)
            UR_DOT_CASE(2, 4)
            UR_DOT_CASE(3, 4)
            UR_DOT_CASE(4, 4)
            UR_DOT_CASE(5, 3)
            UR_DOT_CASE(6, 3)
            UR_DOT_CASE(7, 3)
            UR_DOT_CASE(8, 3)
        default:
            break;
        }
    }
}
