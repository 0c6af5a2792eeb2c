/* The PyTorch comparison of test_f64_torch_compat.c in the float build (the
 * library's default precision), to a tolerance of 1e-5. */
#include "test_f64_torch_compat.c"
