/* ur_kernels.h - the numeric kernels under every op.
 *
 * The fast kernels use SIMD (AVX-512 or AVX2 when the build enables them) and
 * OpenMP. Each has a portable reference version with the same signature, in plain
 * loops a reader can check by eye, that the tests compare it with; those are not
 * part of the public API (kernels_ref_internal.h).
 *
 * Kernel paths: on x86 the library holds the fast kernels three times, for
 * AVX-512, for AVX2 with FMA and for the baseline (the portable C code), and
 * uses the best one this CPU runs, chosen at the first call (a UR_NATIVE build,
 * compiled for the building machine, and builds for other processors have one
 * path). The environment variable UR_KERNELS=avx512|avx2|portable asks for a
 * path; a path the CPU lacks is refused (ur_kernel_select says why) and the best
 * one runs instead. Each path gives its own rounding: results are reproducible
 * for a given path, whatever the number of threads, not across paths.
 *
 * Determinism: results do not depend on the number of threads. Work is split
 * over output blocks only, never over the summed dimension, so every output
 * element is computed by the same sequence of operations whatever the split.
 */
#ifndef UR_KERNELS_H
#define UR_KERNELS_H

#include <stdint.h>

#include "ur_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* C = alpha * op(A) * op(B) + beta * C, all row-major.
 * op(A) is m x k: A is m x k (lda >= k) when trans_a == 0, k x m (lda >= m) when 1.
 * op(B) is k x n: B is k x n (ldb >= n) when trans_b == 0, n x k (ldb >= k) when 1.
 * C is m x n (ldc >= n). beta == 0 ignores the old contents of C (NaNs included).
 * No operand is copied by the caller: transposes are handled while packing. */
void ur_gemm(int trans_a, int trans_b, int m, int n, int k, ur_real alpha,
             const ur_real *A, int lda, const ur_real *B, int ldb, ur_real beta,
             ur_real *C, int ldc);

/* Threads used by the kernels (OpenMP); n < 1 means "all cores". ur_gemm uses one
 * thread for small products, and for 5 to 100 ms after a parallel call was held up by
 * an oversubscribed machine (UR_GEMM_STALL_GUARD=0 in the environment turns that
 * guard off). Neither changes any result. */
void ur_set_num_threads(int n);
int ur_get_num_threads(void);
/* The environment variable that asks for a kernel path (see above). */
#define UR_KERNELS "UR_KERNELS"
/* The kernel path in use: "avx512", "avx2" or "portable". The first call of any
 * kernel (this one included) chooses it, see above. */
const char *ur_kernel_isa(void);
/* Chooses the kernel path: "avx512", "avx2" or "portable"; NULL or "" means the
 * one UR_KERNELS names, or the best this CPU runs when it is unset or empty.
 * UR_ERR_ARG for a name that is unknown, not in this build or needs instructions
 * this CPU lacks: the message (ur_last_error) says which, and the best path is
 * used instead. Call it while no kernel runs (calls already running finish on
 * their path). */
ur_status ur_kernel_select(const char *path);
/* Frees the packing buffers ur_gemm keeps between calls (they are reused, and
 * grown on demand, so steady-state calls allocate nothing). Call when no ur_gemm is
 * running, e.g. at exit; later calls allocate them again. */
void ur_kernel_free_buffers(void);

/* ---- bf16: products of operands rounded to bf16, summed in float ----
 * bf16 values are the upper 16 bits of a float (8-bit significand, float's
 * exponent range), held in uint16_t. */

/* y[i] = x[i] rounded to bf16, to nearest with ties to even. NaN stays NaN (quiet,
 * same sign), +-Inf stays +-Inf, finite values beyond the bf16 range become +-Inf. */
void ur_bf16_from_f32(size_t n, const float *x, uint16_t *y);
/* y[i] = the float value of x[i] (exact). */
void ur_f32_from_bf16(size_t n, const uint16_t *x, float *y);
/* ur_gemm with both operands rounded to bf16 (as ur_bf16_from_f32) and the exact
 * products summed in float, same arguments and layout. On the avx512 kernel path
 * of a CPU with AVX512-BF16 it runs vdpbf16ps (which treats operands below
 * FLT_MIN in magnitude as zero); else ur_gemm on copies rounded to bf16. Each
 * path gives the same bits for any number of threads; paths differ by the order
 * of the float sums. UR_ERR_ARG for negative sizes, leading dimensions too small
 * or NULL operands, and always in the double build (which has no bf16 GEMM);
 * UR_ERR_NOMEM when the packed operands cannot be allocated. */
ur_status ur_gemm_bf16(int trans_a, int trans_b, int m, int n, int k, ur_real alpha,
                       const ur_real *A, int lda, const ur_real *B, int ldb, ur_real beta,
                       ur_real *C, int ldc);
/* The path ur_gemm_bf16 takes now: "avx512bf16" or "portable" ("none" in the
 * double build). Follows ur_kernel_select / UR_KERNELS. */
const char *ur_gemm_bf16_isa(void);

/* Elementwise activations, y may equal x. */
void ur_vec_tanh(size_t n, const ur_real *x, ur_real *y);
void ur_vec_sigmoid(size_t n, const ur_real *x, ur_real *y);
void ur_vec_exp(size_t n, const ur_real *x, ur_real *y);

/* y += a * x */
void ur_vec_axpy(size_t n, ur_real a, const ur_real *x, ur_real *y);
/* dot product (fixed summation order) */
ur_real ur_vec_dot(size_t n, const ur_real *x, const ur_real *y);

/* Row-wise softmax / log-softmax of a rows x cols matrix (numerically stable). */
void ur_softmax_rows(int rows, int cols, const ur_real *x, ur_real *y);
void ur_log_softmax_rows(int rows, int cols, const ur_real *x, ur_real *y);

#ifdef __cplusplus
}
#endif
#endif
