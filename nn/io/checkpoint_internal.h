/* checkpoint_internal.h - what the checkpoint files share (not part of the public API).
 *
 *   checkpoint.c        opening files and images, validating the records, reading
 *                       tensors, parameters, optimizer and RNG state
 *   checkpoint_json.c   the strict JSON parser of the header
 *   checkpoint_write.c  building the header and the atomic save
 */
#ifndef UR_CHECKPOINT_INTERNAL_H
#define UR_CHECKPOINT_INTERNAL_H

#include <stdio.h>

#include "ur_checkpoint.h"

/* Every safetensors dtype is known (for sizes); only F32 and F64 are read. */
typedef struct ur__ckpt_dtype {
    const char *name;
    unsigned size; /* bytes per element */
} ur__ckpt_dtype;

enum { UR__DT_F64 = 0, UR__DT_F32 = 1, UR__N_DTYPES = 15 };
extern const ur__ckpt_dtype ur__ckpt_dtypes[UR__N_DTYPES];
/* Index into ur__ckpt_dtypes, -1 for an unknown name. */
int ur__ckpt_dtype_find(const char *name);

/* One tensor record of the header. */
typedef struct ur__ckpt_entry {
    const char *name; /* in the reader's arena */
    int dtype;        /* index into ur__ckpt_dtypes */
    int ndim;
    uint64_t dims[UR_CKPT_MAX_DIMS];
    uint64_t begin, end; /* within the data area */
    uint64_t pos;        /* file offset of the record's name, for messages */
} ur__ckpt_entry;

struct ur_ckpt {
    char *label;         /* the path, for messages */
    FILE *f;             /* file mode */
    const uint8_t *mem;  /* memory mode: the whole image */
    uint64_t data_start; /* file offset of the data area */
    uint64_t data_size;
    char *arena; /* every decoded string; never longer than the header */
    size_t arena_used;
    ur__ckpt_entry *ent; /* header order */
    int n_ent, cap_ent;
    const ur__ckpt_entry **by_name; /* sorted by name */
    ur_ckpt_kv *meta;               /* sorted by key */
    int n_meta, cap_meta;
};

/* Parses the n-byte JSON header hdr (which starts at file offset 8) into ck->ent
 * and ck->meta, decoding strings into ck->arena (n + 1 bytes, allocated by the
 * caller). Errors: UR_ERR_FORMAT "LABEL: offset N: problem", or UR_ERR_NOMEM. */
ur_status ur__ckpt_parse_json(ur_ckpt *ck, const uint8_t *hdr, size_t n);

/* Length of the well-formed UTF-8 sequence at s (at most avail bytes), 0 if invalid. */
size_t ur__ckpt_utf8_len(const uint8_t *s, size_t avail);
/* Reads the 4 hex digits at s into *out: 1, or 0 if one is not a hex digit. */
int ur__ckpt_hex4(const uint8_t *s, uint32_t *out);

#endif
