/* param.c - parameter sets: named tensors with gradient buffers, outside any tape.
 *
 * Errors of ur_paramset_add are sticky, like a tape's: the first one is kept on the
 * set, and every later add returns NULL at once (repeating that message in
 * ur_last_error), so a model can add all its parameters and check once. */
#include "tape_internal.h"

#include <stdarg.h>
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
        p->value.data = ur_calloc(size, sizeof(ur_real));
        p->grad.data = ur_calloc(size, sizeof(ur_real));
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

void ur_paramset_zero_grad(ur_paramset *ps) {
    for (int i = 0; ps && i < ps->n; i++)
        memset(ps->items[i]->grad.data, 0, ps->items[i]->grad.size * sizeof(ur_real));
}
