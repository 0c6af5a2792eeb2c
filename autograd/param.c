/* param.c - parameter sets: named tensors with gradient buffers, outside any tape. */
#include "tape_internal.h"

#include <string.h>

struct ur_paramset {
    ur_param **items;
    int n, cap;
};

ur_paramset *ur_paramset_new(void) {
    ur_paramset *ps = ur_calloc(1, sizeof *ps);
    if (!ps) ur_set_error(UR_ERR_NOMEM, "ur_paramset_new: out of memory");
    return ps;
}

static void param_free(ur_param *p) {
    if (!p) return;
    ur_free(p->rows_);
    ur_free(p->row_mark_);
    ur_free(p->value.data);
    ur_free(p->grad.data);
    ur_free(p);
}

void ur_paramset_free(ur_paramset *ps) {
    if (!ps) return;
    for (int i = 0; i < ps->n; i++) param_free(ps->items[i]);
    ur_free(ps->items);
    ur_free(ps);
}

ur_param *ur_paramset_add(ur_paramset *ps, const char *name, int ndim, const int *dims) {
    if (!ps || !name) {
        ur_set_error(UR_ERR_ARG, "ur_paramset_add: %s is NULL", ps ? "name" : "parameter set");
        return NULL;
    }
    size_t len = strlen(name);
    if (len == 0 || len >= sizeof ((ur_param *)0)->name) {
        ur_set_error(UR_ERR_ARG, "ur_paramset_add: name '%.40s' must have 1..95 bytes", name);
        return NULL;
    }
    if (ur_paramset_find(ps, name)) {
        ur_set_error(UR_ERR_ARG, "ur_paramset_add: a parameter named '%s' exists already", name);
        return NULL;
    }
    ur_shape s;
    if (ur_shape_make(&s, ndim, dims, "ur_paramset_add") != UR_OK) return NULL;
    if (ps->n == ps->cap) {
        int cap = ps->cap ? 2 * ps->cap : 16;
        ur_param **v = ur_realloc(ps->items, (size_t)ps->cap * sizeof *v, (size_t)cap * sizeof *v);
        if (!v) {
            ur_set_error(UR_ERR_NOMEM, "ur_paramset_add: out of memory");
            return NULL;
        }
        ps->items = v;
        ps->cap = cap;
    }
    ur_param *p = ur_calloc(1, sizeof *p);
    size_t size = ur_shape_size(&s);
    if (p) {
        p->value.data = ur_calloc(size, sizeof(ur_real));
        p->grad.data = ur_calloc(size, sizeof(ur_real));
    }
    if (!p || !p->value.data || !p->grad.data) {
        param_free(p);
        ur_set_error(UR_ERR_NOMEM, "ur_paramset_add: out of memory for '%s' (%zu elements)", name, size);
        return NULL;
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
