/* test_f64_kernels.c - the kernel tests of test_kernels.c in double precision
 * (this binary links unroll_f64, where ur_real is double). */
#include "test_kernels.c"
