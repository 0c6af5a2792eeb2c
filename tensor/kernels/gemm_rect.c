/* gemm_rect.c - the blocked product on one thread's rectangle of C (the loop nest
 * of tensor/gemm.c's comment), for one instruction set.
 *
 * Compiled once per instruction set with the block sizes of gemm_simd.h: the loop
 * nest, the packing and the micro-kernels of one set call each other directly, so
 * a call of ur_gemm goes through the kernel table once per thread, not per tile.
 */
#include <stdint.h>
#include <string.h>

#include "gemm_internal.h"

enum { MR = UR_GEMM_MR, NR = UR_GEMM_NR, KC = UR_GEMM_KC, MC = UR_GEMM_MC, NC = UR_GEMM_NC };

/* Tiles of at most UR_GEMM_DIRECT_B_ROWS rows read an untransposed B in place
 * instead of packing it. Above UR_GEMM_DIRECT_B_FEW rows only while the part of B
 * they read (k x their columns) has at most UR_GEMM_DIRECT_B_VALUES values, about
 * one L2: a larger B comes from memory, where a panel read row by row (rows often
 * 4 KiB apart) is slower than a packed one (128 rows, k = 2048, 1024 columns: 80
 * against 92 GFLOP/s). Packing or not, every sum is the same. */
#ifndef UR_GEMM_DIRECT_B_ROWS
#define UR_GEMM_DIRECT_B_ROWS 128
#endif
#ifndef UR_GEMM_DIRECT_B_FEW
#define UR_GEMM_DIRECT_B_FEW 64
#endif
#ifndef UR_GEMM_DIRECT_B_VALUES
#define UR_GEMM_DIRECT_B_VALUES (1 << 18)
#endif
static int read_b_in_place(const ur_gemm_job *g, int rows, int cols) {
    if (g->trans_b || g->brow || rows > UR_GEMM_DIRECT_B_ROWS) return 0;
    return rows <= UR_GEMM_DIRECT_B_FEW || (double)g->k * cols <= UR_GEMM_DIRECT_B_VALUES;
}

/* A * B^T by dot products (gemm_kernel.c) for few rows: up to UR_DOT_ROWS, or up
 * to twice that when k is short enough for the rows of A to stay in L1. */
static int use_dot(int m, int k) { return m <= UR_DOT_ROWS || (m <= 2 * UR_DOT_ROWS && k <= 1024); }

static int imin(int a, int b) { return a < b ? a : b; }
static int ceil_div(int a, int b) { return (a + b - 1) / b; }
static int round_up(int a, int b) { return ceil_div(a, b) * b; }

/* The micro-kernel loop over one packed A block (mc x kc) and B block (kc x nc):
 * A panel outside, so it stays in L1 while the B panels pass over it from L2. (With
 * the B panel outside, kc x NR values of B -- 32 KiB, all of a 32 KiB L1 when kc is
 * 256 on AVX-512 -- could not stay there beside an A panel: the products of 1024
 * and of an RNN layer of 512 ran 2-4% slower.) The tiles, and so every value, are
 * the same either way. A last A panel of fewer than UR_WIDE_ROWS rows goes through
 * the wide tile. rsa: MR for a packed A; 1 for one row of A read in place (mc == 1).
 * ci, ldci: where the block's old values are read (c, ldc; or C0 on the first depth
 * block). */
static void gemm_block(const ur_gemm_job *g, int mc, int nc, int kc, const ur_real *a, ptrdiff_t rsa,
                       int direct, const ur_real *b, ptrdiff_t rsb, ptrdiff_t psb, ur_real beta,
                       ur_real *c, const ur_real *ci, ptrdiff_t ldci) {
/* offset in b of column j: any column when B is read in place, else panel starts */
#define bcol(j) (direct ? (ptrdiff_t)(j) : (j) / NR * psb)
    int ldc = g->ldc, tail = mc % MR;
    int m_tiles = tail && tail < UR_WIDE_ROWS ? mc - tail : mc;
    for (int ir = 0; ir < m_tiles; ir += MR)
        for (int jr = 0; jr < nc; jr += NR)
            ur_gemm_micro(imin(MR, mc - ir), imin(NR, nc - jr), kc, a + (size_t)ir * kc,
                          b + bcol(jr), rsb, g->alpha, beta, c + (size_t)ir * ldc + jr, ldc,
                          ci + ir * ldci + jr, ldci);
    if (m_tiles == mc) return;
    a += (size_t)m_tiles * kc;
    c += (size_t)m_tiles * ldc;
    ci += m_tiles * ldci;
    int step = ur_gemm_wide_panels(tail) * NR, jr = 0;
    if (direct && rsb % UR_VL == 0 && nc > step && rsa == MR) {
        /* The wide tiles load more B per flop: start them where B's rows are
         * vector-aligned (a split load costs twice), after one narrow tile. Not
         * when one wide tile covers all columns: the narrow tile would be a second
         * full-depth chain of FMAs, which costs more than the split loads (a tree
         * node's 1 x 128 by 128 x 64 product). Not for a row of A read in place
         * either: the narrow kernel reads only packed panels. */
        int head = (int)((uintptr_t)b / sizeof(ur_real) % UR_VL);
        if (head) {
            jr = imin(nc, UR_VL - head);
            ur_gemm_micro(tail, jr, kc, a, b, rsb, g->alpha, beta, c, ldc, ci, ldci);
        }
    }
    for (; jr < nc; jr += step)
        ur_gemm_micro_wide(tail, imin(step, nc - jr), kc, a, rsa, b + bcol(jr), rsb, psb, g->alpha,
                           beta, c + jr, ldc, ci + jr, ldci);
#undef bcol
}

/* Rows i0..i1-1, columns j0..j1-1 of C. abuf holds mc x kc, bbuf kc x nc (unused
 * when direct_b). */
static void gemm_rect(const ur_gemm_job *g, int i0, int i1, int j0, int j1, int mc_max, int nc_max,
                      int direct_b, ur_real *abuf, ur_real *bbuf) {
    int nkb = ceil_div(g->k, KC); /* depth blocks: a function of k alone */
    for (int jc = j0; jc < j1; jc += nc_max) {
        int nc = imin(nc_max, j1 - jc);
        int p0 = 0;
        for (int kb = 0; kb < nkb; kb++) {
            int kc = g->k / nkb + (kb < g->k % nkb);
            ur_real beta = kb == 0 ? g->beta : (ur_real)1;
            const ur_real *bp = bbuf;
            ptrdiff_t rsb = NR, psb = (ptrdiff_t)NR * kc; /* row and panel strides */
            if (direct_b) {
                bp = g->B + (size_t)p0 * g->ldb + jc;
                rsb = g->ldb;
                psb = NR;
            } else {
                ur_gemm_pack_b(g->trans_b, g->B, g->ldb, g->brow, p0, kc, jc, nc, bbuf);
            }
            for (int ic = i0; ic < i1; ic += mc_max) {
                int mc = imin(mc_max, i1 - ic);
                ur_real *cp = g->C + (size_t)ic * g->ldc + jc;
                const ur_real *ci = cp; /* the old values: C, or C0 before the first block */
                ptrdiff_t ldci = g->ldc;
                if (kb == 0 && g->C0) {
                    ci = g->C0 + (ptrdiff_t)ic * g->ldc0 + jc;
                    ldci = g->ldc0;
                }
                if (mc == 1 && !g->trans_a) { /* one row (a tree node's layer): read in place */
                    gemm_block(g, 1, nc, kc, g->A + (size_t)ic * g->lda + p0, 1, direct_b, bp, rsb, psb,
                               beta, cp, ci, ldci);
                    continue;
                }
                ur_gemm_pack_a(g->trans_a, g->A, g->lda, g->arow, ic, mc, p0, kc, abuf);
                gemm_block(g, mc, nc, kc, abuf, MR, direct_b, bp, rsb, psb, beta, cp, ci, ldci);
            }
            p0 += kc;
        }
    }
}

/* Block size for `len` rows (or columns) in blocks of at most `max`: balanced, and
 * a multiple of the panel size `unit`. */
static int block_size(int len, int max, int unit) {
    int nb = ceil_div(len, max);
    return round_up(ceil_div(len, nb), unit);
}

/* Without pool buffers: panels packed one at a time on the stack. Slower, same
 * results (the blocking of k is the same). */
static __attribute__((noinline)) void gemm_rect_unbuffered(const ur_gemm_job *g, int i0, int i1,
                                                           int j0, int j1, int direct_b) {
    ur_real a_small[MR * KC], b_small[KC * NR];
    gemm_rect(g, i0, i1, j0, j1, MR, NR, direct_b, a_small, b_small);
}

void ur_gemm_run_rect(const ur_gemm_job *g, int i0, int i1, int j0, int j1, int rows_max,
                      int cols_max) {
    if (i0 >= i1 || j0 >= j1) return;
    if (!g->trans_a && g->trans_b && use_dot(g->m, g->k)) { /* the same for every thread */
        for (int i = i0; g->C0 && i < i1; i++) /* C = op(A) op(B) + C0: this part of C0 first */
            memcpy(g->C + (size_t)i * g->ldc + j0, g->C0 + (size_t)i * g->ldc0 + j0,
                   (size_t)(j1 - j0) * sizeof(ur_real));
        ur_gemm_dot_nt(i1 - i0, j1 - j0, g->k, g->alpha, g->A + (size_t)i0 * g->lda, g->lda,
                       g->B + (size_t)j0 * g->ldb, g->ldb, g->beta, g->C + (size_t)i0 * g->ldc + j0,
                       g->ldc);
        return;
    }
    int kc = imin(g->k, KC);
    int direct_b = read_b_in_place(g, i1 - i0, j1 - j0);
    int mc = block_size(i1 - i0, MC, MR), nc = block_size(j1 - j0, NC, NR);
    size_t a_cap = (size_t)imin(round_up(rows_max, MR), round_up(MC, MR)) * kc;
    size_t b_cap = (size_t)imin(round_up(cols_max, NR), round_up(NC, NR)) * kc;
    ur_gemm_slot *s = ur__gemm_slot_acquire();
    ur_real *abuf = s ? ur__gemm_slot_buffer(s, 0, a_cap) : NULL;
    ur_real *bbuf = s && !direct_b ? ur__gemm_slot_buffer(s, 1, b_cap) : NULL;
    if (abuf && (bbuf || direct_b))
        gemm_rect(g, i0, i1, j0, j1, mc, nc, direct_b, abuf, bbuf);
    else
        gemm_rect_unbuffered(g, i0, i1, j0, j1, direct_b);
    ur__gemm_slot_release(s);
}
