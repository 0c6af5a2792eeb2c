/* gemm_internal.h - the pieces of the kernels shared by tensor/ and
 * tensor/kernels/. Not part of the public API.
 *
 * tensor/kernels/ is compiled once per instruction set (cmake/kernels.cmake), each
 * time with UR_ISA set to its name (portable, avx2, avx512; native for UR_NATIVE
 * builds) and the matching -m flags. The functions below that those files define
 * get the name as a suffix (ur_gemm_micro_avx2, ...), so the copies link side by
 * side; each copy is reached through its ur_kernel_table, chosen once at run time
 * (tensor/dispatch.c). Code outside tensor/kernels/ sees the unsuffixed names
 * and calls through the table.
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
#ifdef UR_ISA
#define UR_ISA_CAT_(a, b) a##_##b
#define UR_ISA_CAT(a, b) UR_ISA_CAT_(a, b)
#define UR_ISA_NAMED(f) UR_ISA_CAT(f, UR_ISA)
#define ur_gemm_micro UR_ISA_NAMED(ur_gemm_micro)
#define ur_gemm_wide_panels UR_ISA_NAMED(ur_gemm_wide_panels)
#define ur_gemm_micro_wide UR_ISA_NAMED(ur_gemm_micro_wide)
#define ur_gemm_dot_nt UR_ISA_NAMED(ur_gemm_dot_nt)
#define ur_gemm_transpose UR_ISA_NAMED(ur_gemm_transpose)
#define ur_gemm_pack_a UR_ISA_NAMED(ur_gemm_pack_a)
#define ur_gemm_pack_b UR_ISA_NAMED(ur_gemm_pack_b)
#define ur_gemm_run_rect UR_ISA_NAMED(ur_gemm_run_rect)
#define ur_kvec_exp UR_ISA_NAMED(ur_kvec_exp)
#define ur_kvec_tanh UR_ISA_NAMED(ur_kvec_tanh)
#define ur_kvec_sigmoid UR_ISA_NAMED(ur_kvec_sigmoid)
#define ur_kvec_axpy UR_ISA_NAMED(ur_kvec_axpy)
#define ur_kvec_sgd UR_ISA_NAMED(ur_kvec_sgd)
#define ur_kvec_all_finite UR_ISA_NAMED(ur_kvec_all_finite)
#define ur_kvec_dot UR_ISA_NAMED(ur_kvec_dot)
#define ur_ksoftmax_rows UR_ISA_NAMED(ur_ksoftmax_rows)
#define ur_klog_softmax_rows UR_ISA_NAMED(ur_klog_softmax_rows)
#endif
/* after the renaming: inside a kernel file ur_gemm_transpose is that path's copy */
#include "kernels_internal.h" /* ur_gemm_transpose, ur__par_threads: autograd/ uses them too */

/* Block sizes. kc: depth of one pass (an A micro-panel, MR x kc, stays in L1);
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

/* c[0..mr)[0..nr) = alpha * (a-panel x b-panel) + beta * ci, with c's rows ldc apart
 * and ci's (the old values: c itself, or C0 of ur__gemm_plus) ldci apart.
 * a: packed A panel (kc x MR as above). b: kc rows of at least nr values, rsb apart
 * (UR_GEMM_NR for a packed panel, ldb when B is read in place). beta == 0 does not
 * read ci. 1 <= mr <= UR_GEMM_MR, 1 <= nr <= UR_GEMM_NR. */
void ur_gemm_micro(int mr, int nr, int kc, const ur_real *a, const ur_real *b, ptrdiff_t rsb,
                   ur_real alpha, ur_real beta, ur_real *c, ptrdiff_t ldc, const ur_real *ci,
                   ptrdiff_t ldci);

/* Row panels shorter than UR_WIDE_ROWS (gemm_simd.h) use the wide tile: mr rows x
 * nr columns, nr <= ur_gemm_wide_panels(mr) * NR, spanning NR-panels of B (panel q
 * at b + q * psb). a: the packed panel (rsa == UR_GEMM_MR), or for one row (mr == 1)
 * also that row of A in place (rsa == 1). */
int ur_gemm_wide_panels(int mr);
void ur_gemm_micro_wide(int mr, int nr, int kc, const ur_real *a, ptrdiff_t rsa, const ur_real *b,
                        ptrdiff_t rsb, ptrdiff_t psb, ur_real alpha, ur_real beta, ur_real *c,
                        ptrdiff_t ldc, const ur_real *ci, ptrdiff_t ldci);

/* C = alpha * A * B^T + beta * C for few rows (m around UR_DOT_ROWS), reading A
 * (m x k) and the stored B (n x k) in place: one dot product per element. */
#ifndef UR_DOT_ROWS
#define UR_DOT_ROWS 16
#endif
void ur_gemm_dot_nt(int m, int n, int k, ur_real alpha, const ur_real *A, ptrdiff_t lda,
                    const ur_real *B, ptrdiff_t ldb, ur_real beta, ur_real *C, ptrdiff_t ldc);


/* Packs rows i0..i0+mc-1, depth p0..p0+kc-1 of op(A) into dst (mc rounded up to
 * whole panels). rows (trans_a only; else NULL): A's stored row p is rows[p],
 * wherever it is, instead of A + p * lda. */
void ur_gemm_pack_a(int trans_a, const ur_real *A, int lda, const ur_real *const *rows, int i0, int mc,
                    int p0, int kc, ur_real *dst);
/* Packs depth p0..p0+kc-1, columns j0..j0+nc-1 of op(B) into dst. rows (!trans_b
 * only; else NULL): B's stored row p is rows[p] instead of B + p * ldb. */
void ur_gemm_pack_b(int trans_b, const ur_real *B, int ldb, const ur_real *const *rows, int p0, int kc,
                    int j0, int nc, ur_real *dst);

/* ---- the driver (tensor/kernels/gemm_rect.c) and the threads (tensor/gemm.c) ---- */

/* One call of ur_gemm: C = alpha * op(A) * op(B) + beta * C. With C0 (beta 1):
 * C = alpha * op(A) * op(B) + C0 (ur__gemm_plus), each tile reading its part of
 * C0 in place of C's old values on the first depth block. With arow (trans_a) or
 * brow (not trans_b): the stored rows of A or B, one per depth p, by address
 * (ur__gemm_rows_tn). */
typedef struct ur_gemm_job {
    int trans_a, trans_b, m, n, k;
    ur_real alpha, beta;
    const ur_real *A, *B;
    ur_real *C;
    int lda, ldb, ldc;
    const ur_real *C0;
    int ldc0;
    const ur_real *const *arow, *const *brow;
} ur_gemm_job;

/* Rows i0..i1-1, columns j0..j1-1 of C on the calling thread. rows_max x cols_max
 * is the largest share of any thread of this call (the packing buffers are sized
 * for it, so that threads can swap buffers between calls without growing them). */
void ur_gemm_run_rect(const ur_gemm_job *g, int i0, int i1, int j0, int j1, int rows_max,
                      int cols_max);

/* The pool of packing buffers (tensor/gemm.c), shared by every instruction set: a
 * slot holds an A and a B buffer (which = 0, 1) kept between calls. acquire gives
 * NULL when all slots are taken, buffer NULL when the allocation fails; the
 * caller then packs on the stack. */
typedef struct ur_gemm_slot ur_gemm_slot;
ur_gemm_slot *ur__gemm_slot_acquire(void);
ur_real *ur__gemm_slot_buffer(ur_gemm_slot *s, int which, size_t n);
void ur__gemm_slot_release(ur_gemm_slot *s);

/* ---- one instruction set's kernels ---- */

typedef void (*ur_vec_fn)(size_t n, const ur_real *x, ur_real *y);
typedef void (*ur_rows_fn)(int rows, int cols, const ur_real *x, ur_real *y);

typedef struct ur_kernel_table {
    const char *name; /* "avx512", "avx2" or "portable" (ur_kernel_isa) */
    int mr, nr;       /* micro-tile: threads split C along these */
    void (*gemm_rect)(const ur_gemm_job *g, int i0, int i1, int j0, int j1, int rows_max,
                      int cols_max);
    void (*transpose)(int rows, int cols, const ur_real *src, int lds, ur_real *dst, int ldd);
    ur_vec_fn exp, tanh, sigmoid; /* one thread; ur_vec_* split large n over threads */
    void (*axpy)(size_t n, ur_real a, const ur_real *x, ur_real *y);
    ur_real (*dot)(size_t n, const ur_real *x, const ur_real *y);
    void (*sgd)(size_t n, double lr, double l2, double shrink, const ur_real *g, ur_real *w);
    int (*all_finite)(size_t n, const ur_real *x);
    ur_rows_fn softmax_rows, log_softmax_rows;
} ur_kernel_table;

/* The table of this build's instruction set UR_ISA (tensor/kernels/table.c). */
#ifdef UR_ISA
extern const ur_kernel_table UR_ISA_NAMED(ur__kernels);
#endif

/* The vector kernels (tensor/kernels/vec_simd.c), one thread each: the fields
 * exp .. log_softmax_rows of the table. */
void ur_kvec_exp(size_t n, const ur_real *x, ur_real *y);
void ur_kvec_tanh(size_t n, const ur_real *x, ur_real *y);
void ur_kvec_sigmoid(size_t n, const ur_real *x, ur_real *y);
void ur_kvec_axpy(size_t n, ur_real a, const ur_real *x, ur_real *y);
ur_real ur_kvec_dot(size_t n, const ur_real *x, const ur_real *y);
void ur_kvec_sgd(size_t n, double lr, double l2, double shrink, const ur_real *restrict g,
                 ur_real *restrict w);
int ur_kvec_all_finite(size_t n, const ur_real *x);
void ur_ksoftmax_rows(int rows, int cols, const ur_real *x, ur_real *y);
void ur_klog_softmax_rows(int rows, int cols, const ur_real *x, ur_real *y);

/* The table in use (tensor/dispatch.c): chosen on the first call from the CPU and
 * the environment (UR_KERNELS), or by ur_kernel_select. */
const ur_kernel_table *ur__kernels(void);

#endif
