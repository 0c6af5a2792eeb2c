/* ops_shape.c - concat, slice, reshape, gather (embedding lookup), dropout.
 * Each op: forward here, backward rule right below it, its gradient-check cases
 * (UR_CASES) right below the rule. */
#include "tape_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- concat along an axis: inputs seen as (outer, len_i, inner) ---- */

/* A concat of this many values or more is copied on several threads, input by
 * input. A smaller one runs outside any parallel region: entering one, even with a
 * false `if`, costs more than copying a tree node's two children. */
#define CONCAT_PAR_MIN ((double)(1 << 17))

/* Where each of the n inputs xs starts within each of the `outer` output blocks, on
 * the arena; NULL when out of memory (the tape then has the error). */
static size_t *concat_offsets(ur_tape *t, int n, ur_node *const *xs, size_t outer) {
    size_t *off = ur__alloc(t, (size_t)n * sizeof *off), at = 0;
    for (int i = 0; off && i < n; i++) {
        off[i] = at;
        at += xs[i]->size / outer;
    }
    return off;
}

/* Input x's values into its blocks of y (starting at off in each of the `outer`
 * blocks of `block` values). */
static void concat_in(ur_node *y, const ur_node *x, size_t off, size_t outer, size_t block) {
    size_t li = x->size / outer;
    for (size_t o = 0; o < outer; o++) memcpy(y->value + o * block + off, x->value + o * li, li * sizeof(ur_real));
}

/* The same blocks of y's gradient added into gx, x's gradient (nothing if NULL). */
static void concat_back(const ur_node *y, const ur_node *x, ur_real *gx, size_t off, size_t outer, size_t block) {
    size_t li = x->size / outer;
    for (size_t o = 0; gx && o < outer; o++) {
        const ur_real *restrict g = y->grad + o * block + off;
        ur_real *restrict d = gx + o * li;
        for (size_t j = 0; j < li; j++) d[j] += g[j];
    }
}

static int by_id(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* 1 when no node is an input of y twice; 0 when one is, or out of memory. */
static int distinct_inputs(ur_tape *t, const ur_node *y) {
    int *ids = ur__alloc(t, (size_t)y->n_in * sizeof *ids);
    if (!ids) return 0;
    for (int i = 0; i < y->n_in; i++) ids[i] = y->in[i]->id;
    qsort(ids, (size_t)y->n_in, sizeof *ids, by_id);
    for (int i = 1; i < y->n_in; i++)
        if (ids[i] == ids[i - 1]) return 0;
    return 1;
}

ur_node *ur_concat(ur_tape *t, int n, ur_node *const *xs, int axis) {
    if (!t) return (void)ur_set_error(UR_ERR_ARG, "concat: tape is NULL"), NULL;
    if (t->err) return NULL;
    if (n < 1 || !xs) {
        ur_tape_fail(t, UR_ERR_ARG, "concat: needs at least one input (got %d)", n);
        return NULL;
    }
    if (!ur__check(t, "concat", n, xs)) return NULL;
    int ax = ur__axis(axis, xs[0]->shape.ndim);
    if (ax < 0) {
        ur__op_error(t, UR_ERR_ARG, "concat", n, xs, "axis %d is out of range", axis);
        return NULL;
    }
    ur_shape s = xs[0]->shape;
    long total = 0;
    for (int i = 0; i < n; i++) {
        const ur_shape *si = &xs[i]->shape;
        int ok = si->ndim == s.ndim;
        for (int d = 0; ok && d < s.ndim; d++) ok = d == ax || si->dims[d] == s.dims[d];
        if (!ok) {
            ur__op_error(t, UR_ERR_SHAPE, "concat", n, xs, "input %d differs outside axis %d", i, ax);
            return NULL;
        }
        total += si->dims[ax];
    }
    if (total > 0x7fffffff) {
        ur__op_error(t, UR_ERR_SHAPE, "concat", n, xs, "result too large along axis %d", ax);
        return NULL;
    }
    s.dims[ax] = (int)total;
    ur_node *y = ur__node_new(t, UR_OP_CONCAT, &s, n, xs);
    if (!y) return NULL;
    y->iattr[0] = ax;
    size_t outer, len, inner;
    ur__split_axis(&s, ax, &outer, &len, &inner);
    size_t *off = concat_offsets(t, n, xs, outer);
    if (!off) return NULL;
    int nt = ur__par_threads((double)y->size, CONCAT_PAR_MIN);
    if (nt > 1) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int i = 0; i < n; i++) concat_in(y, xs[i], off[i], outer, len * inner);
    } else {
        for (int i = 0; i < n; i++) concat_in(y, xs[i], off[i], outer, len * inner);
    }
    return ur__node_done(t, y);
}

/* Each input gets its block of the output gradient back; on several threads when
 * large and no input is there twice (each block then has a gradient of its own).
 * The gradients are allocated first, on this thread. */
void ur__backward_concat(ur_tape *t, ur_node *y) {
    int n = y->n_in;
    size_t outer, len, inner;
    ur__split_axis(&y->shape, y->iattr[0], &outer, &len, &inner);
    size_t *off = concat_offsets(t, n, y->in, outer);
    ur_real **gx = ur__alloc(t, (size_t)n * sizeof *gx);
    if (!off || !gx) return;
    for (int i = 0; i < n; i++) gx[i] = ur__grad(t, y->in[i]);
    int nt = ur__par_threads((double)y->size, CONCAT_PAR_MIN);
    if (nt > 1 && distinct_inputs(t, y)) { /* a repeated input: its blocks add up in order */
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int i = 0; i < n; i++) concat_back(y, y->in[i], gx[i], off[i], outer, len * inner);
    } else {
        for (int i = 0; i < n; i++) concat_back(y, y->in[i], gx[i], off[i], outer, len * inner);
    }
}

static ur_node *c_concat0(ur_tape *t, ur_node **p) { return ur_concat(t, 3, p, 0); }
static ur_node *c_concat1(ur_tape *t, ur_node **p) { return ur_concat(t, 2, p, 1); }
UR_CASES(CONCAT,
         {"concat/axis0", 1043, 3, {2, 2, 2}, {{1, 3}, {2, 3}, {1, 3}}, 0, c_concat0},
         {"concat/axis1", 1044, 2, {2, 2}, {{2, 3}, {2, 2}}, 0, c_concat1});

/* ---- slice: elements start..start+len-1 along axis ---- */

/* A slice whose elements are contiguous in the input (nothing outside the range
 * along the leading axes) is a view: it shares the input's values (iattr[2] = 1),
 * and during backward usually the matching part of its gradient buffer too. */
ur_node *ur_slice(ur_tape *t, ur_node *a, int axis, int start, int len) {
    if (!ur__check(t, "slice", 1, &a)) return NULL;
    int ax = ur__axis(axis, a->shape.ndim);
    if (ax < 0) {
        ur__op_error(t, UR_ERR_ARG, "slice", 1, &a, "axis %d is out of range", axis);
        return NULL;
    }
    if (start < 0 || len < 1 || start > a->shape.dims[ax] - len) {
        ur__op_error(t, UR_ERR_ARG, "slice", 1, &a, "range [%d, %d+%d) is outside 0..%d of axis %d", start,
                     start, len, a->shape.dims[ax], ax);
        return NULL;
    }
    ur_shape s = a->shape;
    s.dims[ax] = len;
    size_t outer, full, inner;
    ur__split_axis(&a->shape, ax, &outer, &full, &inner);
    size_t li = (size_t)len * inner;
    ur_node *y;
    if (outer == 1) { /* a view: allocate the node without a value of its own */
        ur_shape one;
        ur_shape_make(&one, 0, NULL, "slice");
        if (!(y = ur__node_new(t, UR_OP_SLICE, &one, 1, &a))) return NULL;
        y->shape = s;
        y->size = li;
        y->value = a->value + (size_t)start * inner;
        y->iattr[2] = 1;
    } else {
        if (!(y = ur__node_new(t, UR_OP_SLICE, &s, 1, &a))) return NULL;
        for (size_t o = 0; o < outer; o++)
            memcpy(y->value + o * li, a->value + (o * full + (size_t)start) * inner, li * sizeof(ur_real));
    }
    y->iattr[0] = ax;
    y->iattr[1] = start;
    return ur__node_done(t, y);
}

void ur__backward_slice(ur_tape *t, ur_node *y) {
    ur_node *a = y->in[0];
    size_t outer, full, inner;
    ur__split_axis(&a->shape, y->iattr[0], &outer, &full, &inner);
    size_t at = (size_t)y->iattr[1] * inner, li = (size_t)y->shape.dims[y->iattr[0]] * inner;
    ur_real *ga = ur__grad(t, a);
    if (!ga) return;
    for (size_t o = 0; o < outer; o++) {
        ur_real *restrict d = ga + o * full * inner + at;
        const ur_real *restrict g = y->grad + o * li;
        for (size_t j = 0; j < li; j++) d[j] += g[j];
    }
}

static ur_node *c_slice(ur_tape *t, ur_node **p) { return ur_slice(t, p[0], 1, 1, 2); }
static ur_node *c_slice0(ur_tape *t, ur_node **p) { return ur_slice(t, p[0], 0, 2, 1); }
UR_CASES(SLICE,
         {"slice/axis1", 1045, 1, {3}, {{2, 4, 3}}, 0, c_slice},
         {"slice/axis0", 1046, 1, {2}, {{4, 3}}, 0, c_slice0});

/* ---- reshape: same elements, new shape; the value is shared, not copied ---- */

/* The requested target "(2, -1, 4)" as given, for error messages. */
static const char *target_str(int ndim, const int *dims, char *buf, size_t size) {
    if (ndim < 0 || ndim > UR_MAX_DIMS || (ndim > 0 && !dims)) {
        snprintf(buf, size, "of rank %d", ndim);
        return buf;
    }
    size_t at = (size_t)snprintf(buf, size, "(");
    for (int i = 0; i < ndim && at < size; i++)
        at += (size_t)snprintf(buf + at, size - at, "%s%d", i ? ", " : "", dims[i]);
    if (at < size) snprintf(buf + at, size - at, ")");
    return buf;
}

ur_node *ur_reshape(ur_tape *t, ur_node *a, int ndim, const int *dims) {
    if (!ur__check(t, "reshape", 1, &a)) return NULL;
    char tb[80];
    if (ndim < 0 || ndim > UR_MAX_DIMS || (ndim > 0 && !dims)) {
        ur__op_error(t, UR_ERR_SHAPE, "reshape", 1, &a, "bad target rank %d (must be 0..%d with dims given)", ndim,
                     UR_MAX_DIMS);
        return NULL;
    }
    int d[UR_MAX_DIMS], infer = -1;
    size_t known = 1;
    for (int i = 0; i < ndim; i++) {
        d[i] = dims[i];
        if (d[i] == -1 && infer < 0) infer = i;
        else if (d[i] < 1) {
            ur__op_error(t, UR_ERR_SHAPE, "reshape", 1, &a, "target %s: dimension %d is %d (must be >= 1, or -1 once)",
                         target_str(ndim, dims, tb, sizeof tb), i, d[i]);
            return NULL;
        } else known *= (size_t)d[i];
    }
    if (infer >= 0) {
        if (known == 0 || a->size % known || a->size / known > 0x7fffffff) {
            ur__op_error(t, UR_ERR_SHAPE, "reshape", 1, &a, "target %s: cannot infer dimension %d from %zu elements",
                         target_str(ndim, dims, tb, sizeof tb), infer, a->size);
            return NULL;
        }
        d[infer] = (int)(a->size / known);
        known *= (size_t)d[infer];
    }
    ur_shape s;
    if (known != a->size || ur_shape_make(&s, ndim, d, "reshape") != UR_OK) {
        ur__op_error(t, UR_ERR_SHAPE, "reshape", 1, &a, "%zu elements cannot take the target shape %s", a->size,
                     target_str(ndim, dims, tb, sizeof tb));
        return NULL;
    }
    /* Allocate the node without a value of its own: share the input's. */
    ur_shape one;
    ur_shape_make(&one, 0, NULL, "reshape");
    ur_node *y = ur__node_new(t, UR_OP_RESHAPE, &one, 1, &a);
    if (!y) return NULL;
    y->shape = s;
    y->size = a->size;
    y->value = a->value;
    return ur__node_done(t, y);
}

void ur__backward_reshape(ur_tape *t, ur_node *y) {
    ur_real *ga = ur__grad(t, y->in[0]);
    if (!ga) return;
    for (size_t i = 0; i < y->size; i++) ga[i] += y->grad[i];
}

static ur_node *c_reshape(ur_tape *t, ur_node **p) {
    int d[2] = {-1, 4};
    return ur_reshape(t, p[0], 2, d);
}
UR_CASES(RESHAPE, {"reshape", 1047, 1, {3}, {{2, 3, 4}}, 0, c_reshape});

/* ---- gather rows: y[i] = table[ids[i]] ---- */

ur_node *ur_gather(ur_tape *t, ur_node *table, const int *ids, int n) {
    if (!ur__check(t, "gather", 1, &table)) return NULL;
    if (table->shape.ndim != 2) {
        ur__op_error(t, UR_ERR_SHAPE, "gather", 1, &table, "table must be 2-d (V, D)");
        return NULL;
    }
    if (n < 1 || !ids) {
        ur__op_error(t, UR_ERR_ARG, "gather", 1, &table, "needs n >= 1 ids (got %d%s)", n, ids ? "" : ", NULL");
        return NULL;
    }
    int V = table->shape.dims[0], D = table->shape.dims[1];
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V) {
            ur__op_error(t, UR_ERR_ARG, "gather", 1, &table, "id %d at position %d is outside [0, %d)", ids[i], i, V);
            return NULL;
        }
    ur_shape s;
    int dims[2] = {n, D};
    ur_shape_make(&s, 2, dims, "gather");
    ur_node *y = ur__node_new(t, UR_OP_GATHER, &s, 1, &table);
    int *copy = y ? ur__alloc(t, (size_t)n * sizeof(int)) : NULL;
    if (!copy) return NULL;
    memcpy(copy, ids, (size_t)n * sizeof(int));
    y->aux = copy;
    for (int i = 0; i < n; i++)
        memcpy(y->value + (size_t)i * D, table->value + (size_t)ids[i] * D, (size_t)D * sizeof(ur_real));
    return ur__node_done(t, y);
}

/* scatter-add: repeated ids sum their gradients */
void ur__backward_gather(ur_tape *t, ur_node *y) {
    ur_node *table = y->in[0];
    const int *ids = y->aux;
    int n = y->shape.dims[0], D = y->shape.dims[1];
    /* a row-sparse parameter lists the rows written here */
    ur_real *gt = table->param && table->param->sparse_rows_ ? ur__param_rows(table->param, ids, n)
                                                             : ur__grad(t, table);
    if (!gt) return;
    for (int i = 0; i < n; i++) {
        ur_real *d = gt + (size_t)ids[i] * D;
        const ur_real *g = y->grad + (size_t)i * D;
        for (int j = 0; j < D; j++) d[j] += g[j];
    }
}

static const int gather_ids[5] = {2, 0, 2, 3, 1};
static ur_node *c_gather(ur_tape *t, ur_node **p) { return ur_gather(t, p[0], gather_ids, 5); }
UR_CASES(GATHER, {"gather/repeated-ids", 1048, 1, {2}, {{4, 3}}, 0, c_gather});

/* ---- dropout ---- */

static ur_real keep_scale(uint64_t seed, size_t i, ur_real p) {
    return ur_hash_uniform(seed, i) < p ? 0 : 1 / (1 - p);
}

ur_node *ur_dropout(ur_tape *t, ur_node *a, ur_real p, uint64_t seed) {
    if (!ur__check(t, "dropout", 1, &a)) return NULL;
    if (!(p >= 0 && p < 1)) {
        ur__op_error(t, UR_ERR_ARG, "dropout", 1, &a, "probability %g is outside [0, 1)", (double)p);
        return NULL;
    }
    ur_node *y = ur__node_new(t, UR_OP_DROPOUT, &a->shape, 1, &a);
    if (!y) return NULL;
    y->fattr[0] = p;
    y->seed = seed;
    for (size_t i = 0; i < a->size; i++) y->value[i] = a->value[i] * keep_scale(seed, i, p);
    return ur__node_done(t, y);
}

/* The mask is drawn again from (seed, index): nothing is stored. */
void ur__backward_dropout(ur_tape *t, ur_node *y) {
    ur_real *ga = ur__grad(t, y->in[0]);
    if (!ga) return;
    for (size_t i = 0; i < y->size; i++) ga[i] += y->grad[i] * keep_scale(y->seed, i, y->fattr[0]);
}

static ur_node *c_dropout(ur_tape *t, ur_node **p) { return ur_dropout(t, p[0], (ur_real)0.4, 1234); }
UR_CASES(DROPOUT, {"dropout", 1049, 1, {2}, {{5, 6}}, 0, c_dropout});

ur_node *ur_dropout_mask(ur_tape *t, ur_node *a, ur_node *mask) { return ur_mul(t, a, mask); }

ur_node *ur_dropout_make_mask(ur_tape *t, int ndim, const int *dims, ur_real p, uint64_t seed) {
    if (!t) return (void)ur_set_error(UR_ERR_ARG, "dropout_make_mask: tape is NULL"), NULL;
    if (t->err) return NULL;
    if (!(p >= 0 && p < 1)) {
        ur_tape_fail(t, UR_ERR_ARG, "dropout_make_mask: probability %g is outside [0, 1)", (double)p);
        return NULL;
    }
    ur_node *m = ur_zeros(t, ndim, dims);
    if (!m) return NULL;
    for (size_t i = 0; i < m->size; i++) m->value[i] = keep_scale(seed, i, p);
    m->label = "dropout mask";
    return m;
}
