/* test_f64_dispatch.c - the tests of test_dispatch.c in double precision (this
 * binary links unroll_f64, where ur_real is double). */
#include "test_dispatch.c"
