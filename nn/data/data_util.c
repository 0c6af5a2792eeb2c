/* data_util.c - growable arrays, a line walker and whole-file reading for the readers. */
#include "data_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

ur_status ur_data_nomem(const char *fn) { return ur_set_error(UR_ERR_NOMEM, "%s: out of memory", fn); }

const char *ur_data_name(const char *name) { return name ? name : "<memory>"; }

/* ---- growable arrays ---- */

ur_data_vec ur_data_vec_make(size_t elem) {
    ur_data_vec v = {NULL, 0, 0, elem};
    return v;
}

ur_status ur_data_vec_reserve(ur_data_vec *v, size_t extra, const char *fn) {
    if (v->cap - v->n >= extra) return UR_OK;
    size_t cap = v->cap ? v->cap : 16;
    while (cap - v->n < extra) {
        if (cap > SIZE_MAX / 2 / v->elem) return ur_data_nomem(fn);
        cap *= 2;
    }
    void *p = ur_realloc(v->p, v->n * v->elem, cap * v->elem);
    if (!p) return ur_data_nomem(fn); /* the old block is still v->p */
    v->p = p;
    v->cap = cap;
    return UR_OK;
}

ur_status ur_data_vec_push(ur_data_vec *v, const void *src, size_t count, const char *fn) {
    ur_status s = ur_data_vec_reserve(v, count, fn);
    if (s != UR_OK) return s;
    if (count) memcpy((char *)v->p + v->n * v->elem, src, count * v->elem);
    v->n += count;
    return UR_OK;
}

void ur_data_vec_free(ur_data_vec *v) {
    ur_free(v->p);
    v->p = NULL;
    v->n = v->cap = 0;
}

void *ur_data_vec_take(ur_data_vec *v) {
    void *p = v->p;
    v->p = NULL;
    v->n = v->cap = 0;
    return p;
}

/* ---- lines ---- */

ur_data_lines ur_data_lines_make(const char *buf, size_t len) {
    ur_data_lines it = {buf, buf + len, 0};
    return it;
}

int ur_data_lines_next(ur_data_lines *it, const char **line, size_t *len) {
    if (it->p >= it->end) return 0;
    const char *s = it->p;
    const char *nl = memchr(s, '\n', (size_t)(it->end - s));
    const char *e = nl ? nl : it->end;
    it->p = nl ? nl + 1 : it->end;
    if (e > s && e[-1] == '\r') e--;
    *line = s;
    *len = (size_t)(e - s);
    it->lineno++;
    return 1;
}

/* ---- whole files ---- */

/* Size of f from its end position, or 0 when unknown; f is rewound to its start. */
static size_t size_hint(FILE *f) {
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    rewind(f);
    return n > 0 ? (size_t)n : 0;
}

/* Reads until EOF or until more than max bytes were read. */
static ur_status read_stream(FILE *f, const char *path, size_t max, const char *fn, ur_data_vec *v) {
    size_t hint = size_hint(f);
    if (hint > max) { /* refuse before reading; n > max tells the caller */
        v->n = hint;
        return UR_OK;
    }
    ur_status s = ur_data_vec_reserve(v, (hint ? hint : 65535) + 2, fn);
    while (s == UR_OK) {
        size_t room = v->cap - v->n - 1;
        if (room > max + 1 - v->n) room = max + 1 - v->n;
        size_t got = fread((char *)v->p + v->n, 1, room, f);
        int err = errno;
        v->n += got;
        if (v->n > max) return UR_OK;
        if (got < room) {
            if (!ferror(f)) return UR_OK;
            return ur_set_error(UR_ERR_IO, "%s: cannot read '%s': %s", fn, path, strerror(err));
        }
        s = ur_data_vec_reserve(v, v->cap, fn);
    }
    return s;
}

ur_status ur_data_read_all(const char *path, size_t max_bytes, const char *fn, char **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    if (!path) return ur_set_error(UR_ERR_ARG, "%s: path is NULL", fn);
    if (max_bytes == 0 || max_bytes > UR_TEXT_MAX_BYTES) max_bytes = UR_TEXT_MAX_BYTES;
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return ur_set_error(UR_ERR_IO, "%s: cannot open '%s': %s", fn, path, strerror(errno));
    ur_data_vec v = ur_data_vec_make(1);
    ur_status s = UR_OK;
    if (getc(f) == EOF && ferror(f)) /* a directory opens but cannot be read */
        s = ur_set_error(UR_ERR_IO, "%s: cannot read '%s': %s", fn, path, strerror(errno));
    if (s == UR_OK) s = read_stream(f, path, max_bytes, fn, &v);
    fclose(f);
    if (s == UR_OK && v.n > max_bytes)
        s = ur_set_error(UR_ERR_FORMAT, "%s: '%s' is larger than the limit of %zu bytes", fn, path, max_bytes);
    if (s == UR_OK && v.n == 0) s = ur_set_error(UR_ERR_FORMAT, "%s: '%s' is empty", fn, path);
    if (s != UR_OK) {
        ur_data_vec_free(&v);
        return s;
    }
    ((char *)v.p)[v.n] = '\0';
    *len = v.n;
    *buf = ur_data_vec_take(&v);
    return UR_OK;
}
