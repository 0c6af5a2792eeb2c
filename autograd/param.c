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

void ur_paramset_zero_grad(ur_paramset *ps) {
    for (int i = 0; ps && i < ps->n; i++)
        memset(ps->items[i]->grad.data, 0, ps->items[i]->grad.size * sizeof(ur_real));
}
