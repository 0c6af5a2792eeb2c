/* test_f64_bf16_tape.c - test_bf16_tape.c against the double-precision build:
 * ur_tape_set_precision refuses UR_PRECISION_BF16 there. */
#include "test_bf16_tape.c"
