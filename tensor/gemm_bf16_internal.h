/* gemm_bf16_internal.h - the pieces of ur_gemm_bf16 (tensor/gemm_bf16.c) shared
 * with its tile kernels (tensor/kernels/gemm_bf16_avx512.c for AVX512-BF16,
 * tensor/kernels/gemm_bf16_amx.c for AMX) and the tests. Not part of the public API.
 *
 * Packed operands: k is taken in pairs (k2 = ceil(k/2) pairs; an odd k gets a zero
 * partner), each pair of bf16 values held in one 32-bit word, the value of the
 * even k in the low half (the order vdpbf16ps and tdpbf16ps multiply them in). A
 * kernel packs `depth` pairs (ur__bf16_depth: k2 rounded up to its pair_block), the
 * pairs past k2 zero.
 *   B -> panels of nr columns: panel q holds, for each pair p, the nr words of
 *        columns q*nr + c at pb[q*nr*depth + p*nr + c] (columns past n are zero).
 *        Both kernels (nr = 32).
 *   A -> panels of mr rows, rows past m zero. AVX512-BF16 (mr = 12): panel q holds,
 *        for each pair p, the mr words of rows q*mr + r at pa[q*mr*depth + p*mr + r].
 *        AMX (mr = 32): row by row, pa[q*mr*depth + r*depth + p], so that 16 rows
 *        of 16 pairs are one tile.
 */
#ifndef UR_GEMM_BF16_INTERNAL_H
#define UR_GEMM_BF16_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "ur_kernels.h"

/* The AVX512-BF16 micro-tile, 12 x 32: 24 accumulators of 16 floats, two B vectors
 * and a broadcast of A fit the 32 vector registers. */
#define UR_BF16_MR 12
#define UR_BF16_NR 32
/* Pairs of k per depth block: a B micro-panel block (128 x 32 words, 16 KiB) stays in
 * L1. It depends on k alone, never on the threads, so the sums are grouped the
 * same way for any thread count. */
#define UR_BF16_KC2 128

/* x rounded to the nearest bf16, ties to even; NaN stays NaN (quiet, same sign),
 * +-Inf stays +-Inf, finite values too large for bf16 become +-Inf. */
static inline uint16_t ur__bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* The float a bf16 value stands for (exact). */
static inline float ur__bf16_value(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* One call of a tile kernel, after packing: C (m x n, rows ldc apart) =
 * alpha * A B + beta * C with A and B packed as above, depth pairs deep. */
typedef struct ur_bf16_job {
    int m, n, depth;
    float alpha, beta;
    const uint32_t *pa, *pb;
    float *C;
    int ldc;
} ur_bf16_job;

/* A tile kernel: its name (ur_gemm_bf16_isa), panel sizes and depth rounding, and
 * its packing and tiles, all on the calling thread.
 * pack_a: rows i0..i0+m-1 of op(A) (k deep) into ceil(m / mr) panels at pa.
 * pack_b: columns j0..j0+n-1 of op(B) into ceil(n / nr) panels at pb.
 * tiles: row panels ip0..ip1-1 x column panels jp0..jp1-1 of C, all depth blocks;
 * every element is computed by the same operations whatever the panels a call gets. */
typedef struct ur_bf16_kernel {
    const char *name;
    int mr, nr, pair_block;
    void (*pack_a)(int trans_a, const float *A, int lda, int i0, int m, int k, uint32_t *pa);
    void (*pack_b)(int trans_b, const float *B, int ldb, int j0, int n, int k, uint32_t *pb);
    void (*tiles)(const ur_bf16_job *g, int ip0, int ip1, int jp0, int jp1);
} ur_bf16_kernel;
extern const ur_bf16_kernel ur__gemm_bf16_avx512bf16, ur__gemm_bf16_amx;
/* The AMX kernel with the tile instructions carried out in C (tests only: a test
 * object of gemm_bf16_amx.c built with UR_AMX_EMULATE, cmake/kernels.cmake). */
extern const ur_bf16_kernel ur__gemm_bf16_amx_emulated;
/* The pairs of bf16 products the emulated tiles of the calling thread have
 * multiplied so far (rows x pairs x columns per tdpbf16ps). */
size_t ur__amx_emulated_pair_products(void);

/* Pairs a kernel packs for depth k: ceil(k / 2) rounded up to its pair_block. */
static inline int ur__bf16_depth(const ur_bf16_kernel *kern, int k) {
    int k2 = (k + 1) / 2, b = kern->pair_block;
    return (k2 + b - 1) / b * b;
}

/* The kernel ur_gemm_bf16 uses (tensor/dispatch.c) when the kernel path in use is
 * avx512 and this build has the bf16 kernels: the AMX one where the CPU has AMX-TILE
 * and AMX-BF16 and Linux grants the tile state (arch_prctl, asked once), else the
 * AVX512-BF16 one where the CPU runs vdpbf16ps; NULL for the portable route. */
const ur_bf16_kernel *ur__gemm_bf16_kernel(void);
/* Tests: use `kern` (NULL: the portable route) instead of the CPU's choice while
 * `on`; ur__gemm_bf16_use(NULL, 0) goes back to the CPU's choice. */
void ur__gemm_bf16_use(const ur_bf16_kernel *kern, int on);
/* 1 when `kern` computes one small product (33 x 33 x 35, integers: exact whatever
 * the order of the sums) as a plain loop does, bit for bit; else 0 (gemm_bf16.c). */
int ur__bf16_kernel_check(const ur_bf16_kernel *kern);
/* The AMX kernel here: 1 ready (CPU, build, the tile state granted, and
 * ur__bf16_kernel_check passed on first use); -1 not available; -2 available but
 * the check failed, so it is not used. */
int ur__amx_status(void);

/* Notes a parallel call held up by a busy machine (tensor/gemm.c: ur_gemm's guard,
 * see ur_set_num_threads): it started at t0 (omp_get_wtime) and its thread 0
 * worked `busy` seconds. */
void ur__par_stalled(double t0, double busy);

/* op(B) (k x n) of ur_gemm_bf16 rounded and laid out once, for many products with
 * it as the right operand (a weight read at every time step): the words of the
 * path in use when it was packed -- all column panels of its kernel's layout
 * above, or on the portable path the stored B rounded to bf16 (as floats). A
 * product with it gives the same bits as ur_gemm_bf16 on the unpacked B. Float
 * build only. */
typedef struct ur_bf16_packed {
    const ur_bf16_kernel *kern; /* the path it was packed for; NULL: portable */
    int tb, n, k;
    uint32_t *words;
} ur_bf16_packed;
/* The 32-bit words ur__bf16_pack needs for op(B) (k x n) on the path in use now. */
size_t ur__bf16_packed_words(int n, int k);
/* Packs op(B) into words (ur__bf16_packed_words of them) and describes it in *p. */
void ur__bf16_pack(ur_bf16_packed *p, int trans_b, const float *B, int ldb, int n, int k,
                   uint32_t *words);
/* C = op(A) B + beta C, op(A) m x k, with B packed (alpha 1): ur_gemm_bf16 without
 * the packing of B. UR_ERR_NOMEM when A's packing buffer cannot be allocated. */
ur_status ur__gemm_bf16_packed(int trans_a, int m, const float *A, int lda, const ur_bf16_packed *pb,
                               float beta, float *C, int ldc);

/* The reference (tests): round both operands to bf16, multiply in float (exact:
 * two 8-bit significands), add the products in float for p = 0..k-1 in order,
 * then C = alpha * sum + beta * C (beta == 0 ignores C). Same contract as
 * ur_gemm_bf16, float build only. */
void ur_gemm_bf16_ref(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *A,
                      int lda, const float *B, int ldb, float beta, float *C, int ldc);

#endif
