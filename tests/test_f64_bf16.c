/* test_f64_bf16.c - test_bf16.c against the double-precision build: the
 * conversions, and the refusal of ur_gemm_bf16. */
#include "test_bf16.c"
