/* param.c - parameter sets: named tensors with gradient buffers, outside any tape.
 *
 * Errors of ur_paramset_add are sticky, like a tape's: the first one is kept on the
 * set, and every later add returns NULL at once (repeating that message in
 * ur_last_error), so a model can add all its parameters and check once. */
#include "tape_internal.h"

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

struct ur_paramset {
    ur_param **items;
    int n, cap;
    ur_status err;      /* the first failed add, UR_OK if none */
    char errmsg[256];
};

/* Records a failed add: ur_last_error, and the set's error if it has none yet. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static ur_param *add_failed(ur_paramset *ps, ur_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ur_set_error(s, "%s", msg);
    if (ps && !ps->err) {
        ps->err = s;
        memcpy(ps->errmsg, msg, sizeof msg);
    }
    return NULL;
}

ur_status ur_paramset_error(const ur_paramset *ps) { return ps ? ps->err : UR_ERR_ARG; }

const char *ur_paramset_errmsg(const ur_paramset *ps) { return ps ? ps->errmsg : "parameter set is NULL"; }

ur_paramset *ur_paramset_new(void) {
    ur_paramset *ps = ur_calloc(1, sizeof *ps);
    if (!ps) ur_set_error(UR_ERR_NOMEM, "ur_paramset_new: out of memory");
    return ps;
}

/* Values and gradients start on a cache line (PARAM_ALIGN bytes): a product that
 * reads a weight row by row (a tree node's 1 x 128 by 128 x 64 layer) then loads
 * whole vectors, not ones split across two lines. ur_malloc's alignment is the
 * allocator's, so the block is over-allocated and the byte before the data keeps
 * the offset to the block's start. */
enum { PARAM_ALIGN = 64 };

static ur_real *aligned_zeros(size_t n) {
    if (n > (SIZE_MAX - PARAM_ALIGN) / sizeof(ur_real)) return NULL;
    unsigned char *block = ur_calloc(n * sizeof(ur_real) + PARAM_ALIGN, 1);
    if (!block) return NULL;
    size_t off = PARAM_ALIGN - (size_t)((uintptr_t)block % PARAM_ALIGN); /* 1..PARAM_ALIGN */
    block[off - 1] = (unsigned char)off;
    return (ur_real *)(void *)(block + off);
}

static void aligned_free(ur_real *data) {
    if (!data) return;
    unsigned char *at = (unsigned char *)data;
    ur_free(at - at[-1]);
}

static void param_free(ur_param *p) {
    if (!p) return;
    ur_free(p->rows_);
    ur_free(p->row_mark_);
    aligned_free(p->value.data);
    aligned_free(p->grad.data);
    ur_free(p);
}

void ur_paramset_free(ur_paramset *ps) {
    if (!ps) return;
    for (int i = 0; i < ps->n; i++) param_free(ps->items[i]);
    ur_free(ps->items);
    ur_free(ps);
}

ur_param *ur_paramset_add(ur_paramset *ps, const char *name, int ndim, const int *dims) {
    if (!ps) return add_failed(NULL, UR_ERR_ARG, "ur_paramset_add: parameter set is NULL");
    if (ps->err) { /* sticky: the set keeps its first error */
        ur_set_error(ps->err, "%s", ps->errmsg);
        return NULL;
    }
    if (!name) return add_failed(ps, UR_ERR_ARG, "ur_paramset_add: name is NULL");
    size_t len = strlen(name);
    if (len == 0 || len >= sizeof ((ur_param *)0)->name)
        return add_failed(ps, UR_ERR_ARG, "ur_paramset_add: name '%.40s' must have 1..95 bytes (it has %zu)",
                          name, len);
    if (ur_paramset_find(ps, name))
        return add_failed(ps, UR_ERR_ARG, "ur_paramset_add: a parameter named '%s' exists already", name);
    ur_shape s;
    ur_status st = ur_shape_make(&s, ndim, dims, "ur_paramset_add");
    if (st != UR_OK) return add_failed(ps, st, "%s (parameter '%s')", ur_last_error(), name);
    if (ps->n == ps->cap) {
        int cap = ps->cap ? 2 * ps->cap : 16;
        ur_param **v = ur_realloc(ps->items, (size_t)ps->cap * sizeof *v, (size_t)cap * sizeof *v);
        if (!v) return add_failed(ps, UR_ERR_NOMEM, "ur_paramset_add: out of memory for '%s'", name);
        ps->items = v;
        ps->cap = cap;
    }
    ur_param *p = ur_calloc(1, sizeof *p);
    size_t size = ur_shape_size(&s);
    if (p) {
        p->value.data = aligned_zeros(size);
        p->grad.data = aligned_zeros(size);
    }
    if (!p || !p->value.data || !p->grad.data) {
        param_free(p);
        return add_failed(ps, UR_ERR_NOMEM, "ur_paramset_add: out of memory for '%s' (%zu elements)", name, size);
    }
    memcpy(p->name, name, len + 1);
    p->value.shape = p->grad.shape = s;
    p->value.size = p->grad.size = size;
    ps->items[ps->n++] = p;
    return p;
}

int ur_paramset_count(const ur_paramset *ps) { return ps ? ps->n : 0; }

ur_param *ur_paramset_get(const ur_paramset *ps, int i) {
    return ps && i >= 0 && i < ps->n ? ps->items[i] : NULL;
}

ur_param *ur_paramset_find(const ur_paramset *ps, const char *name) {
    if (!ps || !name) return NULL;
    for (int i = 0; i < ps->n; i++)
        if (strcmp(ps->items[i]->name, name) == 0) return ps->items[i];
    return NULL;
}

size_t ur_paramset_numel(const ur_paramset *ps) {
    size_t n = 0;
    for (int i = 0; ps && i < ps->n; i++) n += ps->items[i]->value.size;
    return n;
}

/* Sets a parameter's gradient to zero: only its listed rows when it has row-sparse
 * gradients and nothing else wrote it. */
static void zero_grad(ur_param *p) {
    if (!p->sparse_rows_ || p->all_rows_) {
        memset(p->grad.data, 0, p->grad.size * sizeof(ur_real));
        if (p->sparse_rows_) memset(p->row_mark_, 0, (size_t)p->value.shape.dims[0]);
    } else {
        size_t D = (size_t)p->value.shape.dims[1];
        for (int i = 0; i < p->n_rows_; i++) {
            memset(p->grad.data + (size_t)p->rows_[i] * D, 0, D * sizeof(ur_real));
            p->row_mark_[p->rows_[i]] = 0;
        }
    }
    p->n_rows_ = 0;
    p->all_rows_ = 0;
}

void ur_paramset_zero_grad(ur_paramset *ps) {
    for (int i = 0; ps && i < ps->n; i++) zero_grad(ps->items[i]);
}

/* ---- row-sparse gradients ---- */

ur_status ur_param_set_sparse_rows(ur_param *p, int enabled) {
    if (!p) return ur_set_error(UR_ERR_ARG, "ur_param_set_sparse_rows: parameter is NULL");
    if (!enabled) {
        ur_free(p->rows_);
        ur_free(p->row_mark_);
        p->rows_ = NULL, p->row_mark_ = NULL, p->sparse_rows_ = 0, p->n_rows_ = 0, p->all_rows_ = 0;
        return UR_OK;
    }
    if (p->value.shape.ndim != 2) {
        char buf[64];
        return ur_set_error(UR_ERR_SHAPE, "ur_param_set_sparse_rows: '%s' must be 2-d (rows, D), got %s", p->name,
                            ur_shape_str(&p->value.shape, buf, sizeof buf));
    }
    if (p->sparse_rows_) return UR_OK;
    size_t V = (size_t)p->value.shape.dims[0];
    p->rows_ = ur_malloc(V * sizeof *p->rows_);
    p->row_mark_ = ur_calloc(V, 1);
    if (!p->rows_ || !p->row_mark_) {
        ur_free(p->rows_), ur_free(p->row_mark_);
        p->rows_ = NULL, p->row_mark_ = NULL;
        return ur_set_error(UR_ERR_NOMEM, "ur_param_set_sparse_rows: out of memory for '%s' (%zu rows)", p->name, V);
    }
    p->sparse_rows_ = 1;
    /* rows written before now are not listed: every row counts until zero_grad */
    p->all_rows_ = 1;
    p->n_rows_ = 0;
    return UR_OK;
}

int ur_param_grad_rows(const ur_param *p, const int **rows) {
    if (rows) *rows = p && p->sparse_rows_ && !p->all_rows_ ? p->rows_ : NULL;
    return p && p->sparse_rows_ && !p->all_rows_ ? p->n_rows_ : -1;
}

ur_real *ur__param_rows(ur_param *p, const int *ids, int n) {
    for (int i = 0; i < n && !p->all_rows_; i++)
        if (!p->row_mark_[ids[i]]) {
            p->row_mark_[ids[i]] = 1;
            p->rows_[p->n_rows_++] = ids[i];
        }
    return p->grad.data;
}

void ur__param_dense(ur_param *p) { p->all_rows_ = 1; }
