/* checkpoint_hooks_internal.h - checkpoint functions for the example programs, the
 * tests and the fuzzer (not part of the public API).
 *
 * The examples keep the generator's state in a checkpoint's metadata, so a resumed
 * run draws the same numbers as an uninterrupted one; the fuzzer validates whole
 * file images.
 */
#ifndef UR_CHECKPOINT_HOOKS_INTERNAL_H
#define UR_CHECKPOINT_HOOKS_INTERNAL_H

#include "ur_checkpoint.h"

enum { UR_CKPT_RNG_HEX = 82 /* buffer size for ur_ckpt_rng_encode */ };

/* Writes the generator's full state as 81 hex digits (out: UR_CKPT_RNG_HEX bytes). */
void ur_ckpt_rng_encode(const ur_rng *r, char *out);
/* Restores a state written by ur_ckpt_rng_encode; UR_ERR_FORMAT if malformed. */
ur_status ur_ckpt_rng_decode(const char *hex, ur_rng *r);

/* Validates a whole file image (length prefix, header, offsets) and frees
 * everything again: the entry point for fuzzing. */
ur_status ur_ckpt_parse_header(const uint8_t *data, size_t size, const char *label);

#endif
