/* kernels_ref_internal.h - the reference kernels (not part of the public API).
 *
 * Each is the plain-loop version of the fast kernel of the same name without the
 * _ref suffix (ur_kernels.h), with the same signature and contract. The tests use
 * them as oracles for the SIMD and multi-threaded versions.
 */
#ifndef UR_KERNELS_REF_INTERNAL_H
#define UR_KERNELS_REF_INTERNAL_H

#include "ur_kernels.h"

void ur_gemm_ref(int trans_a, int trans_b, int m, int n, int k, ur_real alpha,
                 const ur_real *A, int lda, const ur_real *B, int ldb, ur_real beta,
                 ur_real *C, int ldc);
void ur_vec_tanh_ref(size_t n, const ur_real *x, ur_real *y);
void ur_vec_sigmoid_ref(size_t n, const ur_real *x, ur_real *y);
void ur_vec_exp_ref(size_t n, const ur_real *x, ur_real *y);
void ur_softmax_rows_ref(int rows, int cols, const ur_real *x, ur_real *y);
void ur_log_softmax_rows_ref(int rows, int cols, const ur_real *x, ur_real *y);
/* The reference of ur__vec_all_finite (kernels_internal.h). */
int ur__vec_all_finite_ref(size_t n, const ur_real *x);
/* The reference of ur__vec_sgd (kernels_internal.h), equal to it bit for bit. */
void ur__vec_sgd_ref(size_t n, double lr, double l2, double shrink, const ur_real *g, ur_real *w);

#endif
