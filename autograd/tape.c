/* tape.c - the tape: arena, nodes, leaves, sticky errors and the backward walk. */
#define _DEFAULT_SOURCE /* madvise */
#include "backward_plan.h"

#include <math.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <string.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

enum { ARENA_ALIGN = 64, ARENA_MIN_CHUNK = 1 << 20, HUGE_PAGE = 1 << 21, ARENA_HUGE_MIN = 4 << 20 };

/* ---- arena ---- */

/* A chunk of ARENA_HUGE_MIN bytes or more starts on a 2 MiB boundary and is offered
 * to the kernel for transparent huge pages (Linux, where THP is "madvise" or
 * "always"). A recurrent layer's tape of tens of MB spans thousands of 4 KiB pages,
 * more than the TLB maps, and backward reads it all again. This is advice only: the
 * memory holds the same values either way, and a refusal is ignored. */
static void advise_huge_pages(void *p, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    (void)madvise(p, bytes, MADV_HUGEPAGE);
#else
    (void)p, (void)bytes;
#endif
}

static ur_arena_chunk *chunk_new(size_t cap) {
    size_t align = cap >= ARENA_HUGE_MIN ? HUGE_PAGE : ARENA_ALIGN;
    ur_arena_chunk *c = ur_malloc(sizeof *c + cap + align);
    if (!c) return NULL;
    uintptr_t p = (uintptr_t)(c + 1);
    p = (p + align - 1) & ~(uintptr_t)(align - 1);
    c->data = (unsigned char *)p;
    if (align == HUGE_PAGE) advise_huge_pages(c->data, cap);
    c->cap = cap;
    c->used = 0;
    c->next = NULL;
    return c;
}

void *ur__alloc(ur_tape *t, size_t bytes) {
    bytes = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    ur_arena_chunk *c = t->chunks;
    if (!c || c->cap - c->used < bytes) {
        size_t cap = t->arena_total > ARENA_MIN_CHUNK ? t->arena_total : ARENA_MIN_CHUNK;
        if (cap < bytes) cap = bytes;
        ur_arena_chunk *n = chunk_new(cap);
        if (!n) {
            ur_tape_fail(t, UR_ERR_NOMEM, "tape: out of memory allocating %zu bytes for the arena", cap);
            return NULL;
        }
        n->next = c;
        t->chunks = n;
        t->arena_total += cap;
        c = n;
    }
    void *p = c->data + c->used;
    c->used += bytes;
    return p;
}

ur_real *ur__alloc_real(ur_tape *t, size_t n) { return ur__alloc(t, n * sizeof(ur_real)); }

/* ---- tape ---- */

/* Each tape's epochs start at a new multiple of 2^32: a parameter's cached node
 * (ur_param_node) is never taken for a node of a later tape that happens to get
 * the freed tape's address. */
static _Atomic uint64_t tape_serial;

ur_tape *ur_tape_new(void) {
    ur_tape *t = ur_calloc(1, sizeof *t);
    if (!t) {
        ur_set_error(UR_ERR_NOMEM, "ur_tape_new: out of memory");
        return NULL;
    }
    t->grad_enabled = 1;
    t->plan_enabled = 1;
    t->epoch = (atomic_fetch_add(&tape_serial, 1) + 1) << 32;
    return t;
}

static void free_chunks(ur_arena_chunk *c) {
    while (c) {
        ur_arena_chunk *next = c->next;
        ur_free(c);
        c = next;
    }
}

void ur_tape_free(ur_tape *t) {
    if (!t) return;
    free_chunks(t->chunks);
    ur__node_pool_free(t);
    ur_free(t->nodes);
    ur_free(t->groups);
    ur_free(t);
}

void ur_tape_reset(ur_tape *t) {
    if (!t) return;
    /* More than one chunk: replace them by one chunk of the total size, so the
     * next step of the same size fits without allocating. */
    if (t->chunks && t->chunks->next) {
        size_t total = t->arena_total;
        free_chunks(t->chunks);
        t->chunks = chunk_new(total);
        t->arena_total = t->chunks ? total : 0;
    }
    if (t->chunks) t->chunks->used = 0;
    t->n_nodes = 0;
    t->n_groups = 0;
    t->group_depth = 0;
    t->err = UR_OK;
    t->errmsg[0] = '\0';
    t->backward_done = 0;
    t->epoch++;
    t->bf16_weights = NULL; /* they lived in the arena */
    ur__node_pool_rewind(t);
}

ur_status ur_tape_error(const ur_tape *t) { return t ? t->err : UR_ERR_ARG; }

const char *ur_tape_errmsg(const ur_tape *t) { return t ? t->errmsg : "tape is NULL"; }

ur_status ur_tape_fail(ur_tape *t, ur_status s, const char *fmt, ...) {
    if (!t) return s;
    if (t->err == UR_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->errmsg, sizeof t->errmsg, fmt, ap);
        va_end(ap);
        t->err = s;
        ur_set_error(s, "%s", t->errmsg);
    }
    return s;
}

int ur_tape_set_grad_enabled(ur_tape *t, int enabled) {
    if (!t) return 0;
    int old = t->grad_enabled;
    t->grad_enabled = enabled != 0;
    return old;
}

int ur_tape_grad_enabled(const ur_tape *t) { return t ? t->grad_enabled : 0; }

int ur_tape_set_backward_plan(ur_tape *t, int enabled) {
    if (!t) return 0;
    int old = t->plan_enabled;
    t->plan_enabled = enabled != 0;
    return old;
}

ur_status ur_tape_set_precision(ur_tape *t, ur_precision p) {
    if (!t) return ur_set_error(UR_ERR_ARG, "ur_tape_set_precision: tape is NULL");
    if (p != UR_PRECISION_F32 && p != UR_PRECISION_BF16)
        return ur_tape_fail(t, UR_ERR_ARG, "ur_tape_set_precision: precision %d, expected "
                                           "UR_PRECISION_F32 (0) or UR_PRECISION_BF16 (1)", (int)p);
#ifdef UR_DOUBLE
    /* the double build keeps its exact products for the gradient checks */
    if (p == UR_PRECISION_BF16)
        return ur_tape_fail(t, UR_ERR_ARG, "ur_tape_set_precision: UR_PRECISION_BF16 needs the float "
                                           "library (unroll); the double build has no bf16 GEMM");
#endif
    t->precision = p;
    return UR_OK;
}

ur_precision ur_tape_precision(const ur_tape *t) { return t ? t->precision : UR_PRECISION_F32; }

void ur_tape_set_anomaly(ur_tape *t, int enabled) {
    if (t) t->anomaly = enabled != 0;
}

int ur_tape_size(const ur_tape *t) { return t ? t->n_nodes : 0; }

ur_node *ur_tape_node(const ur_tape *t, int id) {
    return t && id >= 0 && id < t->n_nodes ? t->nodes[id] : NULL;
}

size_t ur_tape_arena_bytes(const ur_tape *t) { return t ? t->arena_total : 0; }

static char *arena_strdup(ur_tape *t, const char *s) {
    size_t n = strlen(s) + 1;
    char *p = ur__alloc(t, n);
    if (p) memcpy(p, s, n);
    return p;
}

void ur_tape_begin_group(ur_tape *t, const char *label) {
    if (!t || t->err) return;
    if (t->group_depth >= 8) {
        ur_tape_fail(t, UR_ERR_STATE, "tape_begin_group: groups nest deeper than 8");
        return;
    }
    if (t->n_groups == t->cap_groups) {
        int cap = t->cap_groups ? 2 * t->cap_groups : 64;
        ur_group *g = ur_realloc(t->groups, (size_t)t->cap_groups * sizeof *g, (size_t)cap * sizeof *g);
        if (!g) {
            ur_tape_fail(t, UR_ERR_NOMEM, "tape_begin_group: out of memory");
            return;
        }
        t->groups = g;
        t->cap_groups = cap;
    }
    ur_group *g = &t->groups[t->n_groups];
    g->label = arena_strdup(t, label ? label : "");
    g->parent = t->group_depth ? t->group_stack[t->group_depth - 1] : -1;
    t->group_stack[t->group_depth++] = t->n_groups++;
}

void ur_tape_end_group(ur_tape *t) {
    if (t && t->group_depth > 0) t->group_depth--;
}

void ur_node_set_label(ur_tape *t, ur_node *n, const char *label) {
    if (!t || !n || !label || t->err) return;
    if (!ur__check(t, "ur_node_set_label", 1, &n)) return; /* a stale or foreign node */
    n->label = arena_strdup(t, label);
}

/* ---- nodes ---- */

void ur__op_error(ur_tape *t, ur_status s, const char *op, int n, ur_node *const *in, const char *fmt, ...) {
    if (!t || t->err) return;
    char msg[384], shapes[128] = "", buf[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t at = 0;
    for (int i = 0; i < n && in && at < sizeof shapes; i++) {
        if (!in[i]) continue;
        at += (size_t)snprintf(shapes + at, sizeof shapes - at, "%s%s", at ? ", " : "",
                               ur_shape_str(&in[i]->shape, buf, sizeof buf));
    }
    if (at) ur_tape_fail(t, s, "%s: %s (inputs %s)", op, msg, shapes);
    else ur_tape_fail(t, s, "%s: %s", op, msg);
}

int ur__check(ur_tape *t, const char *op, int n, ur_node *const *in) {
    if (!t) {
        ur_set_error(UR_ERR_ARG, "%s: tape is NULL", op);
        return 0;
    }
    if (t->err) return 0;
    for (int i = 0; i < n; i++) {
        if (!in[i]) {
            ur_tape_fail(t, UR_ERR_ARG, "%s: input %d is NULL", op, i);
            return 0;
        }
        if (in[i]->tape != t || in[i]->epoch != t->epoch) {
            ur_tape_fail(t, UR_ERR_STATE, "%s: input %d belongs to another tape or to a recording "
                         "erased by ur_tape_reset", op, i);
            return 0;
        }
    }
    return 1;
}

static int push_node(ur_tape *t, ur_node *n) {
    if (t->n_nodes == t->cap_nodes) {
        int cap = t->cap_nodes ? 2 * t->cap_nodes : 1024;
        ur_node **v = ur_realloc(t->nodes, (size_t)t->cap_nodes * sizeof *v, (size_t)cap * sizeof *v);
        if (!v) {
            ur_tape_fail(t, UR_ERR_NOMEM, "tape: out of memory growing the node list to %d", cap);
            return 0;
        }
        t->nodes = v;
        t->cap_nodes = cap;
    }
    n->id = t->n_nodes;
    t->nodes[t->n_nodes++] = n;
    return 1;
}

ur_node *ur__node_new(ur_tape *t, ur_op op, const ur_shape *shape, int n_in, ur_node *const *in) {
    ur_node *y = ur__node_alloc(t);
    if (!y) return NULL;
    y->op = op;
    y->shape = *shape;
    y->size = ur_shape_size(shape);
    y->tape = t;
    y->epoch = t->epoch;
    y->group = t->group_depth ? t->group_stack[t->group_depth - 1] : -1;
    y->value = ur__alloc_real(t, y->size);
    if (!y->value) return NULL;
    int rg = 0;
    for (int i = 0; i < n_in; i++) rg |= in[i]->requires_grad;
    y->requires_grad = rg && t->grad_enabled;
    if (n_in > 0 && t->grad_enabled) {
        y->in = ur__alloc(t, (size_t)n_in * sizeof *y->in);
        if (!y->in) return NULL;
        memcpy(y->in, in, (size_t)n_in * sizeof *y->in);
        y->n_in = n_in;
    }
    if (!push_node(t, y)) return NULL;
    return y;
}

static int all_finite(const ur_real *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

ur_node *ur__node_done(ur_tape *t, ur_node *y) {
    if (!y || t->err) return NULL;
    if (t->anomaly && !all_finite(y->value, y->size)) {
        char buf[64];
        ur_tape_fail(t, UR_ERR_NUMERIC, "anomaly: op '%s' (node %d, shape %s) produced NaN or Inf",
                     ur_op_name(y->op), y->id, ur_shape_str(&y->shape, buf, sizeof buf));
        return NULL;
    }
    return y;
}

/* ---- gradient buffers ---- */

ur_real *ur__grad_plain(ur_tape *t, ur_node *x) {
    if (!x->grad && (x->grad = ur__alloc_real(t, x->size))) ur__vec_zero(x->size, x->grad);
    return x->grad;
}

ur_real *ur__grad(ur_tape *t, ur_node *x) {
    if (!x->requires_grad) return NULL;
    if (x->param && x->param->sparse_rows_) ur__param_dense(x->param); /* not only ur_gather writes it */
    return t->plan ? ur__plan_grad(t, x) : ur__grad_plain(t, x);
}

ur_real *ur__grad_unfilled(ur_tape *t, ur_node *x, int *unfilled) {
    *unfilled = 0;
    if (!x->requires_grad || x->grad || x->param) return ur__grad(t, x);
    if (t->plan) return ur__plan_grad_unfilled(t, x, unfilled);
    if ((x->grad = ur__alloc_real(t, x->size))) *unfilled = 1;
    return x->grad;
}

int ur__axis(int axis, int ndim) {
    if (axis < 0) axis += ndim;
    return axis >= 0 && axis < ndim ? axis : -1;
}

ur_node *ur__reduce_node(ur_tape *t, ur_op op, const char *name, ur_node *a, int axis, int keepdim) {
    if (!ur__check(t, name, 1, &a)) return NULL;
    int ax = ur__axis(axis, a->shape.ndim);
    if (ax < 0) {
        ur__op_error(t, UR_ERR_ARG, name, 1, &a, "axis %d is out of range", axis);
        return NULL;
    }
    ur_shape s = a->shape;
    if (keepdim) s.dims[ax] = 1;
    else {
        for (int i = ax; i < s.ndim - 1; i++) s.dims[i] = s.dims[i + 1];
        s.dims[--s.ndim] = 1;
    }
    ur_node *y = ur__node_new(t, op, &s, 1, &a);
    if (y) y->iattr[0] = ax;
    return y;
}

void ur__split_axis(const ur_shape *s, int axis, size_t *outer, size_t *len, size_t *inner) {
    *outer = 1;
    *inner = 1;
    for (int i = 0; i < axis; i++) *outer *= (size_t)s->dims[i];
    for (int i = axis + 1; i < s->ndim; i++) *inner *= (size_t)s->dims[i];
    *len = (size_t)s->dims[axis];
}

/* ---- leaves ---- */

static ur_node *leaf(ur_tape *t, const char *what, int ndim, const int *dims, const ur_real *data) {
    if (!t) {
        ur_set_error(UR_ERR_ARG, "%s: tape is NULL", what);
        return NULL;
    }
    if (t->err) return NULL;
    ur_shape s;
    if (ur_shape_make(&s, ndim, dims, what) != UR_OK) {
        ur_tape_fail(t, UR_ERR_SHAPE, "%s", ur_last_error());
        return NULL;
    }
    ur_node *y = ur__node_new(t, UR_OP_LEAF, &s, 0, NULL);
    if (!y) return NULL;
    if (data) ur__vec_copy(y->size, data, y->value);
    else ur__vec_zero(y->size, y->value);
    return ur__node_done(t, y);
}

ur_node *ur_input(ur_tape *t, const ur_tensor *value) {
    if (t && !t->err && !value) {
        ur_tape_fail(t, UR_ERR_ARG, "input: tensor is NULL");
        return NULL;
    }
    return leaf(t, "input", value ? value->shape.ndim : 0, value ? value->shape.dims : NULL,
                value ? value->data : NULL);
}

ur_node *ur_input_data(ur_tape *t, int ndim, const int *dims, const ur_real *data) {
    if (t && !t->err && !data) {
        ur_tape_fail(t, UR_ERR_ARG, "input: data is NULL");
        return NULL;
    }
    return leaf(t, "input", ndim, dims, data);
}

ur_node *ur_zeros(ur_tape *t, int ndim, const int *dims) { return leaf(t, "zeros", ndim, dims, NULL); }

ur_node *ur_scalar(ur_tape *t, ur_real v) { return leaf(t, "scalar", 0, NULL, &v); }

ur_node *ur_variable(ur_tape *t, const ur_tensor *value) {
    ur_node *y = ur_input(t, value);
    if (y) y->requires_grad = t->grad_enabled;
    return y;
}

ur_node *ur_param_node(ur_tape *t, ur_param *p) {
    if (!t) {
        ur_set_error(UR_ERR_ARG, "param: tape is NULL");
        return NULL;
    }
    if (t->err) return NULL;
    if (!p) {
        ur_tape_fail(t, UR_ERR_ARG, "param: parameter is NULL");
        return NULL;
    }
    if (p->tape_ == t && p->epoch_ == t->epoch && p->node_) return p->node_;
    ur_node *y = ur__node_alloc(t);
    if (!y) return NULL;
    y->op = UR_OP_LEAF;
    y->shape = p->value.shape;
    y->size = p->value.size;
    y->value = p->value.data; /* shared: parameters are read, never written, by ops */
    y->grad = p->grad.data;   /* backward adds straight into the parameter's gradient */
    y->param = p;
    y->label = p->name;
    y->requires_grad = 1;
    y->tape = t;
    y->epoch = t->epoch;
    y->group = -1;
    if (!push_node(t, y)) return NULL;
    p->node_ = y;
    p->tape_ = t;
    p->epoch_ = t->epoch;
    return y;
}

ur_node *ur_detach(ur_tape *t, ur_node *x) {
    if (!ur__check(t, "detach", 1, &x)) return NULL;
    ur_node *y = leaf(t, "detach", x->shape.ndim, x->shape.dims, x->value);
    if (y) y->label = "detached";
    return y;
}

/* ---- reading nodes ----
 * A node is readable while its tape is on the recording that made it. A handle
 * erased by ur_tape_reset is refused: the reader sets ur_last_error (UR_ERR_STATE)
 * and returns its "no value" (NaN, 0, NULL, -1). Readers leave the tape alone: they
 * take const nodes and may run after backward; graph-building calls stay the ones
 * with sticky tape errors. NULL stays a silent "no value", so reading the NULL
 * result of a failed op keeps that op's message. */

/* 1 when n can be read; 0 for NULL (silently) and for a stale node (with error). */
static int node_readable(const ur_node *n, const char *fn) {
    if (!n) return 0;
    if (n->tape && n->epoch == n->tape->epoch) return 1;
    char buf[64];
    ur_set_error(UR_ERR_STATE, "%s: node %d (op '%s', shape %s) was erased by ur_tape_reset; "
                 "read or copy it before resetting the tape", fn, n->id, ur_op_name(n->op),
                 ur_shape_str(&n->shape, buf, sizeof buf));
    return 0;
}

#define READABLE(n) node_readable((n), __func__)

int ur_node_id(const ur_node *n) { return READABLE(n) ? n->id : -1; }
int ur_node_ndim(const ur_node *n) { return READABLE(n) ? n->shape.ndim : 0; }
int ur_node_dim(const ur_node *n, int axis) {
    if (!READABLE(n)) return 0;
    int a = ur__axis(axis, n->shape.ndim);
    return a < 0 ? 0 : n->shape.dims[a];
}
const ur_shape *ur_node_shape(const ur_node *n) { return READABLE(n) ? &n->shape : NULL; }
size_t ur_node_size(const ur_node *n) { return READABLE(n) ? n->size : 0; }
ur_real *ur_node_data(ur_node *n) { return READABLE(n) ? n->value : NULL; }
const ur_real *ur_node_cdata(const ur_node *n) { return READABLE(n) ? n->value : NULL; }
const ur_real *ur_node_grad(const ur_node *n) { return READABLE(n) ? n->grad : NULL; }
ur_real ur_node_item(const ur_node *n) { return READABLE(n) && n->size ? n->value[0] : (ur_real)NAN; }
const char *ur_node_op_name(const ur_node *n) { return READABLE(n) ? ur_op_name(n->op) : "?"; }
int ur_node_requires_grad(const ur_node *n) { return READABLE(n) ? n->requires_grad : 0; }

ur_status ur_node_copy_to(const ur_node *n, ur_tensor *dst) {
    if (!n || !dst) return ur_set_error(UR_ERR_ARG, "ur_node_copy_to: node or tensor is NULL");
    if (!READABLE(n)) return UR_ERR_STATE;
    if (dst->size != n->size) {
        char a[64], b[64];
        return ur_set_error(UR_ERR_SHAPE, "ur_node_copy_to: node %s and tensor %s differ in size",
                            ur_shape_str(&n->shape, a, sizeof a), ur_shape_str(&dst->shape, b, sizeof b));
    }
    memcpy(dst->data, n->value, n->size * sizeof(ur_real));
    return UR_OK;
}

#undef READABLE

const char *ur_op_name(ur_op op) {
    return (int)op >= 0 && op < UR_OP_COUNT ? ur__op_table[op].name : "?";
}

/* ---- backward ---- */

/* Leaves have no inputs: the walk never calls this. */
void ur__backward_leaf(ur_tape *t, ur_node *y) { (void)t, (void)y; }
/* ... and there is nothing to check: no gradient-check case. */
const ur_op_cases ur__cases_LEAF = {NULL, 0};

static int check_input_grads(ur_tape *t, ur_node *y) {
    for (int i = 0; i < y->n_in; i++) {
        ur_node *x = y->in[i];
        if (x->grad && !all_finite(x->grad, x->size)) {
            char buf[64];
            ur_tape_fail(t, UR_ERR_NUMERIC,
                         "anomaly: backward of op '%s' (node %d, shape %s) gave a NaN or Inf gradient "
                         "to input %d (node %d)", ur_op_name(y->op), y->id,
                         ur_shape_str(&y->shape, buf, sizeof buf), i, x->id);
            return 0;
        }
    }
    return 1;
}

/* The reverse walk: from y down, every node that has a gradient and inputs hands
 * its gradient on to them through its op's backward rule. y's own gradient starts
 * as dy, or as 1 for a loss (dy NULL). */
static ur_status walk_back(ur_tape *t, ur_node *y, const ur_real *dy) {
    const char *op = dy ? "backward_from" : "backward";
    if (!t) return ur_set_error(UR_ERR_ARG, "%s: tape is NULL", op);
    if (t->err) return t->err;
    if (!ur__check(t, op, 1, &y)) return t->err;
    char buf[64];
    if (!dy && y->size != 1)
        return ur_tape_fail(t, UR_ERR_SHAPE, "backward: the loss must have one element, it has shape %s",
                            ur_shape_str(&y->shape, buf, sizeof buf));
    if (t->backward_done)
        return ur_tape_fail(t, UR_ERR_STATE, "%s: this recording was already walked; "
                            "reset the tape and record the step again", op);
    if (dy && !ur__vec_all_finite(y->size, dy)) {
        size_t i = 0;
        while (isfinite(dy[i])) i++;
        return ur_tape_fail(t, UR_ERR_NUMERIC, "backward_from: dy[%zu] is %g; the gradient given for node %d "
                            "(shape %s) must be finite", i, (double)dy[i], y->id,
                            ur_shape_str(&y->shape, buf, sizeof buf));
    }
    t->backward_done = 1;
    if (!y->requires_grad) return UR_OK; /* nothing to differentiate */
    t->plan = ur__plan_begin(t, y->id); /* NULL: switched off, the walk runs plain */
    int unfilled;
    ur_real *g = dy ? ur__grad_unfilled(t, y, &unfilled) : ur__grad(t, y);
    if (g && !dy) g[0] += 1;
    else if (g && unfilled) memcpy(g, dy, y->size * sizeof *g);
    else if (g) for (size_t i = 0; i < y->size; i++) g[i] += dy[i];
    for (int id = y->id; g && id >= 0 && !t->err; id--) {
        ur_node *n = t->nodes[id];
        if (t->plan) ur__plan_visit(t, n); /* finishes n's deferred weight gradient */
        if (!n->grad || n->n_in == 0 || !n->requires_grad) continue;
        ur__op_table[n->op].backward(t, n);
        if (t->anomaly && !t->err) check_input_grads(t, n);
    }
    if (t->plan) ur__plan_end(t);
    t->plan = NULL;
    t->bf16_weights = NULL; /* an optimizer step may follow: later products pack afresh */
    return t->err;
}

ur_status ur_backward(ur_tape *t, ur_node *loss) { return walk_back(t, loss, NULL); }

ur_status ur_backward_from(ur_tape *t, ur_node *y, const ur_real *dy) {
    if (!dy && t) return ur_tape_fail(t, UR_ERR_ARG, "backward_from: dy is NULL");
    if (!dy) return ur_set_error(UR_ERR_ARG, "backward_from: dy is NULL");
    return walk_back(t, y, dy);
}
