/* kernels_internal.h - the pieces of tensor/ that autograd/ uses beyond the public
 * kernels of ur_kernels.h. Not installed. */
#ifndef UR_KERNELS_INTERNAL_H
#define UR_KERNELS_INTERNAL_H

#include "ur_tensor.h"

/* gemm.c: the number of threads for a loop of `work` units split over independent
 * outputs (rows): 1 below min_work, inside a parallel region, or while ur_gemm's
 * stall guard holds the kernels on one thread; else all of them. */
int ur__par_threads(double work, double min_work);

/* vec.c: f(ctx, at, len) over [0, n): in chunks of UR_PAR_CHUNK (at a multiple of
 * it) on the threads when n is UR_PAR_MIN or more (see ur__par_threads), else once
 * over all of it. For work whose every element (or every chunk-aligned block) is
 * computed the same way whatever the split. */
#define UR_PAR_MIN ((size_t)1 << 17)
#define UR_PAR_CHUNK ((size_t)1 << 14)
void ur__par_chunks(size_t n, void (*f)(void *ctx, size_t at, size_t len), void *ctx);

/* vec.c: ur_vec_exp, ur_vec_tanh and ur_vec_sigmoid on the calling thread, never
 * split: the same kernels, for short runs (a fused expression's chunk of a row). */
void ur__vec_exp_here(size_t n, const ur_real *x, ur_real *y);
void ur__vec_tanh_here(size_t n, const ur_real *x, ur_real *y);
void ur__vec_sigmoid_here(size_t n, const ur_real *x, ur_real *y);

/* gemm.c: C = op(A) op(B) + C0 (m x n; C0's rows ldc0 apart, 0 for one row added
 * to every row; C0 does not overlap C): the bits of ur_gemm with alpha = beta = 1
 * on C holding C0, without copying C0 into C: the micro-kernels read C0 where they
 * would have read C's old values (products that take the dot-product route copy
 * their rectangle of C0 first). */
void ur__gemm_plus(int trans_a, int trans_b, int m, int n, int k, const ur_real *A, int lda,
                   const ur_real *B, int ldb, const ur_real *C0, int ldc0, ur_real *C, int ldc);

/* gemm.c: C += A^T B, A (k x m) and B (k x n) given row by row: row p of A is
 * arows[p] (m values) and of B brows[p] (n values), or, for a NULL table, A + p *
 * lda and B + p * ldb. The bits of ur_gemm(1, 0, m, n, k, 1, A, lda, B, ldb, 1, C,
 * ldc) on the rows copied into one matrix each, without the copies (a weight's
 * gradient summed over many small products, autograd/backward_plan.c). */
void ur__gemm_rows_tn(int m, int n, int k, const ur_real *A, int lda, const ur_real *const *arows,
                      const ur_real *B, int ldb, const ur_real *const *brows, ur_real *C, int ldc);

/* gemm_pack.c: dst[p*ldd + r] = src[r*lds + p], r < rows, p < cols. */
void ur_gemm_transpose(int rows, int cols, const ur_real *src, int lds, ur_real *dst, int ldd);

/* vec.c: 1 when none of x[0..n) is NaN or Inf (the kernel of this CPU; the
 * reference is ur__vec_all_finite_ref). */
int ur__vec_all_finite(size_t n, const ur_real *x);

/* vec.c: y[0..n) = 0, split over threads when n is large (a gradient buffer of a
 * whole sequence is zeroed before it is added into). */
void ur__vec_zero(size_t n, ur_real *y);
/* vec.c: y[0..n) = x[0..n) (not overlapping), split over threads when n is large
 * (an input of a whole sequence copied onto the tape). */
void ur__vec_copy(size_t n, const ur_real *x, ur_real *y);

/* vec.c: one plain SGD step, w[i] = w[i] * shrink - lr * (g[i] + l2 * w[i]) in
 * double, rounded once to ur_real (nn/optim.c's rule without momentum): the kernel
 * of this CPU, split over threads when n is large; the same bits on every path as
 * ur__vec_sgd_ref (kernels_ref_internal.h). */
void ur__vec_sgd(size_t n, double lr, double l2, double shrink, const ur_real *g, ur_real *w);

#endif
