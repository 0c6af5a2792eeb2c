/* gemm_internal.h - the pieces of ur_gemm shared by gemm.c, gemm_pack.c and
 * gemm_kernel.c. Not part of the public API.
 *
 * Layout of the packed operands (the Goto/BLIS scheme):
 *   A block (mc x kc) -> panels of UR_GEMM_MR rows; panel q holds, for each p in
 *       0..kc-1, the MR values op(A)[q*MR + r][p] at a[q*MR*kc + p*MR + r].
 *   B block (kc x nc) -> panels of UR_GEMM_NR columns; panel q holds, for each p,
 *       the NR values op(B)[p][q*NR + c] at b[q*NR*kc + p*NR + c].
 * The last panel of a block may be partial; its missing rows/columns are never read.
 */
#ifndef UR_GEMM_INTERNAL_H
#define UR_GEMM_INTERNAL_H

#include <stddef.h>

#include "gemm_simd.h"
#include "kernels_internal.h" /* ur_gemm_transpose, ur__par_threads: autograd/ uses them too */

/* Block sizes. kc: depth of one pass (a B micro-panel, kc x NR, stays in L1);
 * mc: rows of A packed at once (mc x kc stays in L2); nc: columns of B packed at
 * once (kc x nc in L3). kc alone affects rounding (it splits the sums), so it
 * depends only on k, never on the thread count. */
#ifndef UR_GEMM_KC
#define UR_GEMM_KC 256
#endif
#ifndef UR_GEMM_MC
#define UR_GEMM_MC (UR_GEMM_MR * 20)
#endif
#ifndef UR_GEMM_NC
#define UR_GEMM_NC (UR_GEMM_NR * 64)
#endif

/* c[0..mr)[0..nr) = alpha * (a-panel x b-panel) + beta * c, with c's rows ldc apart.
 * a: packed A panel (kc x MR as above). b: kc rows of at least nr values, rsb apart
 * (UR_GEMM_NR for a packed panel, ldb when B is read in place). beta == 0 does not
 * read c. 1 <= mr <= UR_GEMM_MR, 1 <= nr <= UR_GEMM_NR. */
void ur_gemm_micro(int mr, int nr, int kc, const ur_real *a, const ur_real *b, ptrdiff_t rsb,
                   ur_real alpha, ur_real beta, ur_real *c, ptrdiff_t ldc);

/* Row panels shorter than UR_WIDE_ROWS (gemm_simd.h) use the wide tile: mr rows x
 * nr columns, nr <= ur_gemm_wide_panels(mr) * NR, spanning NR-panels of B (panel q
 * at b + q * psb). */
int ur_gemm_wide_panels(int mr);
void ur_gemm_micro_wide(int mr, int nr, int kc, const ur_real *a, const ur_real *b,
                        ptrdiff_t rsb, ptrdiff_t psb, ur_real alpha, ur_real beta, ur_real *c,
                        ptrdiff_t ldc);

/* C = alpha * A * B^T + beta * C for few rows (m around UR_DOT_ROWS), reading A
 * (m x k) and the stored B (n x k) in place: one dot product per element. */
#ifndef UR_DOT_ROWS
#define UR_DOT_ROWS 16
#endif
void ur_gemm_dot_nt(int m, int n, int k, ur_real alpha, const ur_real *A, ptrdiff_t lda,
                    const ur_real *B, ptrdiff_t ldb, ur_real beta, ur_real *C, ptrdiff_t ldc);


/* Packs rows i0..i0+mc-1, depth p0..p0+kc-1 of op(A) into dst (mc rounded up to
 * whole panels). */
void ur_gemm_pack_a(int trans_a, const ur_real *A, int lda, int i0, int mc, int p0, int kc,
                    ur_real *dst);
/* Packs depth p0..p0+kc-1, columns j0..j0+nc-1 of op(B) into dst. */
void ur_gemm_pack_b(int trans_b, const ur_real *B, int ldb, int p0, int kc, int j0, int nc,
                    ur_real *dst);

#endif
