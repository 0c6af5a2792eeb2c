/* table.c - the kernel table of one instruction set (UR_ISA, see gemm_internal.h):
 * what tensor/dispatch.c chooses from. */
#include "gemm_internal.h"

const ur_kernel_table UR_ISA_NAMED(ur__kernels) = {
    .name = UR_ISA_NAME,
    .mr = UR_GEMM_MR,
    .nr = UR_GEMM_NR,
    .gemm_rect = ur_gemm_run_rect,
    .transpose = ur_gemm_transpose,
    .exp = ur_kvec_exp,
    .tanh = ur_kvec_tanh,
    .sigmoid = ur_kvec_sigmoid,
    .axpy = ur_kvec_axpy,
    .dot = ur_kvec_dot,
    .sgd = ur_kvec_sgd,
    .all_finite = ur_kvec_all_finite,
    .softmax_rows = ur_ksoftmax_rows,
    .log_softmax_rows = ur_klog_softmax_rows,
};
