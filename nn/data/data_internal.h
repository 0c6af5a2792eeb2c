/* data_internal.h - helpers shared by the data readers (not part of the public API).
 * Names start with ur_data_ so the static library exports nothing outside ur_. */
#ifndef UR_DATA_INTERNAL_H
#define UR_DATA_INTERNAL_H

#include "ur_data.h"
#include "ur_bio.h"

/* A growable array of elements of one size. Memory from ur_malloc. */
typedef struct ur_data_vec {
    void *p;
    size_t n, cap, elem;
} ur_data_vec;

/* An empty vector of elements of `elem` bytes. */
ur_data_vec ur_data_vec_make(size_t elem);
/* Makes room for `extra` more elements; UR_ERR_NOMEM names `fn`. */
ur_status ur_data_vec_reserve(ur_data_vec *v, size_t extra, const char *fn);
/* Appends `count` elements copied from src. */
ur_status ur_data_vec_push(ur_data_vec *v, const void *src, size_t count, const char *fn);
/* Frees the storage; the vector is empty again. */
void ur_data_vec_free(ur_data_vec *v);
/* Hands the storage over to the caller (ur_free it), leaving v empty. */
void *ur_data_vec_take(ur_data_vec *v);

/* Walks the lines of a buffer; the line excludes "\n" and a trailing "\r". */
typedef struct ur_data_lines {
    const char *p, *end;
    size_t lineno; /* of the line last returned, from 1 */
} ur_data_lines;

ur_data_lines ur_data_lines_make(const char *buf, size_t len);
/* Stores the next line and its length; returns 0 at the end of the buffer. */
int ur_data_lines_next(ur_data_lines *it, const char **line, size_t *len);

/* Reads a whole file into a NUL-terminated ur_malloc buffer (errors name fn and path). */
ur_status ur_data_read_all(const char *path, size_t max_bytes, const char *fn, char **buf, size_t *len);
/* A NOMEM error naming fn. */
ur_status ur_data_nomem(const char *fn);
/* name_for_errors, or "<memory>" when NULL. */
const char *ur_data_name(const char *name);

#endif
