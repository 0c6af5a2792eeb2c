/* fuzz_common.h - what the libFuzzer harnesses share.
 *
 * A harness feeds its input to one reader and, when the reader accepts it, checks
 * the invariants the reader promises (counts add up, indices are in range, strings
 * are where they claim to be). A broken invariant aborts, which libFuzzer reports as
 * a crash; so do ASan/UBSan findings and leaks.
 */
#ifndef UR_FUZZ_COMMON_H
#define UR_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ur_tensor.h"

#define FUZZ_CHECK(cond)                                                                        \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "%s:%d: invariant failed: %s (last error: %s)\n", __FILE__, __LINE__, \
                    #cond, ur_last_error());                                                    \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

/* A failed call must leave a message that names the input (its label). */
static inline void fuzz_check_error_names(const char *label) {
    FUZZ_CHECK(strstr(ur_last_error(), label) != NULL);
}

#endif
