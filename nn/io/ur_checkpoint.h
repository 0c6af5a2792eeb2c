/* ur_checkpoint.h - saving and loading tensors in the safetensors format.
 *
 * File layout (little-endian):
 *   bytes 0..7      N, the header length (u64)
 *   bytes 8..8+N-1  JSON header, padded with spaces to a multiple of 8:
 *                   {"__metadata__":{"key":"value",...},
 *                    "name":{"dtype":"F32","shape":[3,4],"data_offsets":[begin,end]},...}
 *   then            the data area; a tensor's bytes are [begin, end) within it.
 * Tensors are written in ur_real's dtype (UR_REAL_DTYPE: F32, or F64 in the double
 * build); F32 and F64 tensors are read into either build.
 *
 * Saving is atomic: the file is written under a temporary name in the target's
 * directory, flushed to disk (fsync) and renamed over the target, so a failed or
 * interrupted save leaves the previous checkpoint intact.
 *
 * Reading is meant to survive hostile files: the header is parsed by a strict JSON
 * parser, the header length is capped (UR_CKPT_MAX_HEADER), every size computation
 * is checked for overflow, and every tensor must lie inside the data area without
 * overlapping another. Header errors read "FILE: offset N: problem" (N counts bytes
 * from the start of the file); other errors "checkpoint FILE: tensor 'w' ...".
 */
#ifndef UR_CHECKPOINT_H
#define UR_CHECKPOINT_H

#include "../../autograd/ur_tape.h"
#include "../ur_optim.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    UR_CKPT_MAX_HEADER = 100000000, /* bytes of JSON header accepted */
    UR_CKPT_MAX_DIMS = 8            /* dimensions per tensor accepted in a header */
};

/* Flags of ur_ckpt_read_params / ur_ckpt_load_params. By default every parameter
 * must be in the file and tensors of the file that match no parameter are ignored. */
enum {
    UR_CKPT_ALLOW_MISSING = 1u, /* parameters absent from the file keep their values */
    UR_CKPT_REJECT_UNKNOWN = 2u /* a tensor matching no parameter is an error
                                   (names starting with "optim." are exempt) */
};

/* An extra tensor to save (e.g. optimizer state). */
typedef struct ur_named_tensor {
    const char *name;
    const ur_tensor *tensor;
} ur_named_tensor;

/* One metadata entry; arrays of them end with an entry whose key is NULL. */
typedef struct ur_ckpt_kv {
    const char *key;
    const char *value;
} ur_ckpt_kv;

/* ---- saving ---- */
/* Writes every parameter of ps (may be NULL) under its name, then the n_extras
 * extras, and the metadata (NULL-key-terminated array, or NULL). Names must be
 * unique and non-empty; "__metadata__" is reserved. */
ur_status ur_ckpt_save(const char *path, const ur_paramset *ps, const ur_named_tensor *extras, int n_extras,
                       const ur_ckpt_kv *metadata);
/* ur_ckpt_save with the optimizer's state tensors as extras and its kind and step
 * count as metadata ("optim.kind", "optim.step") added to the user's metadata. */
ur_status ur_ckpt_save_training(const char *path, const ur_paramset *ps, const ur_optim *opt,
                                const ur_ckpt_kv *metadata);

/* ---- reading ---- */
typedef struct ur_ckpt ur_ckpt;

/* Opens a checkpoint and validates its header; NULL with ur_last_error on failure. */
ur_ckpt *ur_ckpt_open(const char *path);
/* The same over a whole file image in memory (not copied: it must outlive the
 * reader); label names it in messages. */
ur_ckpt *ur_ckpt_open_memory(const uint8_t *data, size_t size, const char *label);
void ur_ckpt_close(ur_ckpt *ck); /* NULL is a no-op */

int ur_ckpt_count(const ur_ckpt *ck); /* number of tensors */
const char *ur_ckpt_name(const ur_ckpt *ck,
                         int i); /* i-th tensor name in header order; NULL if out of range */
int ur_ckpt_has(const ur_ckpt *ck, const char *name);
const char *ur_ckpt_dtype(const ur_ckpt *ck, const char *name); /* "F32", ...; NULL if absent */
/* The tensor's shape; UR_ERR_SHAPE if it does not fit a ur_shape (over 4 dims, a 0 dim). */
ur_status ur_ckpt_shape(const ur_ckpt *ck, const char *name, ur_shape *out);
/* Reads the tensor into dst, which must have the same shape. */
ur_status ur_ckpt_get(ur_ckpt *ck, const char *name, ur_tensor *dst);
/* Reads the tensor into a new tensor of its shape; NULL on failure. */
ur_tensor *ur_ckpt_get_new(ur_ckpt *ck, const char *name);

int ur_ckpt_meta_count(const ur_ckpt *ck);
const char *ur_ckpt_meta_key(const ur_ckpt *ck, int i);       /* NULL if out of range */
const char *ur_ckpt_meta(const ur_ckpt *ck, const char *key); /* the value, NULL if absent */

/* Copies the file's tensors into the parameters of the same names (see the flags).
 * Every name, dtype and shape is checked before any parameter changes. */
ur_status ur_ckpt_read_params(ur_ckpt *ck, ur_paramset *ps, unsigned flags);
/* ur_ckpt_open + ur_ckpt_read_params + ur_ckpt_close. */
ur_status ur_ckpt_load_params(const char *path, ur_paramset *ps, unsigned flags);
/* Restores an optimizer saved by ur_ckpt_save_training: step count and state
 * tensors. The optimizer must be of the same kind over a paramset of the same names. */
ur_status ur_ckpt_read_optim(ur_ckpt *ck, ur_optim *opt);

#ifdef __cplusplus
}
#endif
#endif
