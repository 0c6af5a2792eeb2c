/* tensor.c - errors, the allocation hook, shapes and tensors. */
#include "ur_tensor.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors ---- */

static _Thread_local char last_error[512];

const char *ur_status_name(ur_status s) {
    switch (s) {
    case UR_OK: return "UR_OK";
    case UR_ERR_ARG: return "UR_ERR_ARG";
    case UR_ERR_SHAPE: return "UR_ERR_SHAPE";
    case UR_ERR_NOMEM: return "UR_ERR_NOMEM";
    case UR_ERR_IO: return "UR_ERR_IO";
    case UR_ERR_FORMAT: return "UR_ERR_FORMAT";
    case UR_ERR_NUMERIC: return "UR_ERR_NUMERIC";
    case UR_ERR_STATE: return "UR_ERR_STATE";
    }
    return "UR_ERR_?";
}

const char *ur_last_error(void) { return last_error; }

void ur_clear_error(void) { last_error[0] = '\0'; }

ur_status ur_set_error(ur_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}

/* ---- allocation ---- */

static ur_malloc_fn user_malloc;
static ur_free_fn user_free;
static void *user_ctx;
static uint64_t alloc_count;

void ur_set_allocator(ur_malloc_fn m, ur_free_fn f, void *user) {
    user_malloc = m;
    user_free = f;
    user_ctx = user;
}

uint64_t ur_alloc_count(void) { return alloc_count; }

void *ur_malloc(size_t size) {
    if (size == 0) size = 1;
    void *p = user_malloc ? user_malloc(size, user_ctx) : malloc(size);
    if (p) alloc_count++;
    return p;
}

void *ur_calloc(size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return NULL;
    void *p = ur_malloc(n * size);
    if (p && n * size > 0) memset(p, 0, n * size);
    return p;
}

void *ur_realloc(void *ptr, size_t old_size, size_t new_size) {
    void *p = ur_malloc(new_size);
    if (!p) return NULL;
    if (ptr) {
        memcpy(p, ptr, old_size < new_size ? old_size : new_size);
        ur_free(ptr);
    }
    return p;
}

void ur_free(void *ptr) {
    if (!ptr) return;
    if (user_free) user_free(ptr, user_ctx);
    else free(ptr);
}

/* ---- shapes ---- */

ur_status ur_shape_make(ur_shape *out, int ndim, const int *dims, const char *what) {
    if (!out) return ur_set_error(UR_ERR_ARG, "%s: shape output is NULL", what);
    if (ndim < 0 || ndim > UR_MAX_DIMS)
        return ur_set_error(UR_ERR_SHAPE, "%s: %d dimensions (allowed 0..%d)", what, ndim, UR_MAX_DIMS);
    if (ndim > 0 && !dims) return ur_set_error(UR_ERR_ARG, "%s: dims is NULL", what);
    size_t size = 1;
    out->ndim = ndim;
    for (int i = 0; i < UR_MAX_DIMS; i++) out->dims[i] = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 1)
            return ur_set_error(UR_ERR_SHAPE, "%s: dimension %d is %d (must be >= 1)", what, i, dims[i]);
        if (size > (SIZE_MAX / sizeof(ur_real)) / (size_t)dims[i])
            return ur_set_error(UR_ERR_SHAPE, "%s: the element count overflows", what);
        size *= (size_t)dims[i];
        out->dims[i] = dims[i];
    }
    return UR_OK;
}

size_t ur_shape_size(const ur_shape *s) {
    size_t n = 1;
    for (int i = 0; i < s->ndim; i++) n *= (size_t)s->dims[i];
    return n;
}

int ur_shape_equal(const ur_shape *a, const ur_shape *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i]) return 0;
    return 1;
}

char *ur_shape_str(const ur_shape *s, char *buf, size_t n) {
    size_t at = 0;
    at += (size_t)snprintf(buf + at, n - at, "(");
    for (int i = 0; i < s->ndim && at < n; i++)
        at += (size_t)snprintf(buf + at, n - at, i ? ", %d" : "%d", s->dims[i]);
    if (at < n) snprintf(buf + at, n - at, ")");
    return buf;
}

/* ---- tensors ---- */

ur_tensor *ur_tensor_new(int ndim, const int *dims) {
    ur_shape s;
    if (ur_shape_make(&s, ndim, dims, "ur_tensor_new") != UR_OK) return NULL;
    ur_tensor *t = ur_malloc(sizeof *t);
    size_t size = ur_shape_size(&s);
    ur_real *data = ur_calloc(size, sizeof(ur_real));
    if (!t || !data) {
        ur_free(t);
        ur_free(data);
        ur_set_error(UR_ERR_NOMEM, "ur_tensor_new: out of memory for %zu elements", size);
        return NULL;
    }
    t->shape = s;
    t->size = size;
    t->data = data;
    t->owns_data = 1;
    return t;
}

ur_tensor *ur_tensor_new_1d(int n) { return ur_tensor_new(1, &n); }

ur_tensor *ur_tensor_new_2d(int rows, int cols) {
    int d[2] = {rows, cols};
    return ur_tensor_new(2, d);
}

ur_tensor *ur_tensor_clone(const ur_tensor *t) {
    if (!t) {
        ur_set_error(UR_ERR_ARG, "ur_tensor_clone: tensor is NULL");
        return NULL;
    }
    ur_tensor *c = ur_tensor_new(t->shape.ndim, t->shape.dims);
    if (c) memcpy(c->data, t->data, t->size * sizeof(ur_real));
    return c;
}

void ur_tensor_free(ur_tensor *t) {
    if (!t) return;
    if (t->owns_data) ur_free(t->data);
    ur_free(t);
}

ur_status ur_tensor_fill(ur_tensor *t, ur_real v) {
    if (!t) return ur_set_error(UR_ERR_ARG, "ur_tensor_fill: tensor is NULL");
    for (size_t i = 0; i < t->size; i++) t->data[i] = v;
    return UR_OK;
}

ur_status ur_tensor_copy(ur_tensor *dst, const ur_tensor *src) {
    if (!dst || !src) return ur_set_error(UR_ERR_ARG, "ur_tensor_copy: tensor is NULL");
    if (dst->size != src->size) {
        char a[64], b[64];
        return ur_set_error(UR_ERR_SHAPE, "ur_tensor_copy: destination %s and source %s differ in size",
                            ur_shape_str(&dst->shape, a, sizeof a), ur_shape_str(&src->shape, b, sizeof b));
    }
    memmove(dst->data, src->data, src->size * sizeof(ur_real));
    return UR_OK;
}

ur_status ur_tensor_reshape(ur_tensor *t, int ndim, const int *dims) {
    if (!t) return ur_set_error(UR_ERR_ARG, "ur_tensor_reshape: tensor is NULL");
    ur_shape s;
    ur_status st = ur_shape_make(&s, ndim, dims, "ur_tensor_reshape");
    if (st != UR_OK) return st;
    if (ur_shape_size(&s) != t->size) {
        char a[64], b[64];
        return ur_set_error(UR_ERR_SHAPE, "ur_tensor_reshape: cannot view %s as %s",
                            ur_shape_str(&t->shape, a, sizeof a), ur_shape_str(&s, b, sizeof b));
    }
    t->shape = s;
    return UR_OK;
}
