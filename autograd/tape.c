/* tape.c - the tape: arena, nodes, leaves, sticky errors and the backward walk. */
#include "tape_internal.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

enum { ARENA_ALIGN = 64, ARENA_MIN_CHUNK = 1 << 20 };

/* ---- arena ---- */

static ur_arena_chunk *chunk_new(size_t cap) {
    ur_arena_chunk *c = ur_malloc(sizeof *c + cap + ARENA_ALIGN);
    if (!c) return NULL;
    uintptr_t p = (uintptr_t)(c + 1);
    p = (p + ARENA_ALIGN - 1) & ~(uintptr_t)(ARENA_ALIGN - 1);
    c->data = (unsigned char *)p;
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

/* ---- tape ----
 * Recordings are numbered from one counter shared by every tape of the process:
 * a node or a parameter's cached node is valid only while its tape still has its
 * number, so a handle from a freed tape cannot pass for one of a new tape that
 * happens to get the same address. */
static _Atomic uint64_t next_epoch = 1;

static uint64_t new_epoch(void) { return next_epoch++; }

ur_tape *ur_tape_new(void) {
    ur_tape *t = ur_calloc(1, sizeof *t);
    if (!t) {
        ur_set_error(UR_ERR_NOMEM, "ur_tape_new: out of memory");
        return NULL;
    }
    t->grad_enabled = 1;
    t->epoch = new_epoch();
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
    t->epoch = new_epoch();
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
    ur_node *y = ur__alloc(t, sizeof *y);
    if (!y) return NULL;
    memset(y, 0, sizeof *y);
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

/* ---- gradient buffers during backward ----
 * ur_backward first counts, for every node, its consumers. With that:
 * - A new gradient buffer is not zero-filled. It is "fresh" until written: an op
 *   that writes every element of an input's gradient asks ur__grad_w, which says
 *   whether to assign (fresh) or add; ur__grad zero-fills a fresh buffer for ops
 *   that write only part of it (scatter, broadcasting).
 * - A node whose gradient equals one of its inputs' gradients -- an identity edge
 *   (add, sub's left side, linear's full-size bias, reshape) to an input read by
 *   this node only -- shares that input's buffer: the node's consumers then write
 *   the input's gradient directly and the edge costs nothing. The op's backward
 *   sees that the input's buffer is its own and skips it.
 * - A contiguous slice (a view of its parent's values) whose parent is read only by
 *   such slices, in order and without overlap (the time steps of a projected
 *   sequence), gets the matching part of the parent's gradient buffer.
 * In every case ur_node_grad of a node is exactly dL/d(node). */
typedef struct wgrad_part wgrad_part;

typedef struct bw_state {
    const ur_tape *t;
    int last;             /* id of the loss */
    wgrad_part **pending; /* per node: deferred weight-gradient products (ur__defer_wgrad) */
    ur_real **wt;         /* per node, allocated on first use: transposed values (ur__transposed) */
    int *uses;            /* consumers among the nodes up to the loss */
    int *owner;           /* node whose buffer this node's gradient lives in */
    unsigned char *fresh; /* per owner: allocated, nothing written yet */
    unsigned char *sliced; /* 1: read only by ordered, disjoint contiguous slices */
    signed char *dir;     /* order of those slices: 1 ascending, -1 descending */
    const ur_real **lo, **hi; /* range of the last such slice */
} bw_state;

static _Thread_local bw_state *bw_cur;

static int is_view_slice(const ur_node *y) { return y->op == UR_OP_SLICE && y->iattr[2]; }

/* Counts consumers and checks the slice pattern; NULL (and the tape's error) when
 * out of memory. */
static bw_state *bw_begin(ur_tape *t, int last) {
    size_t n = (size_t)last + 1;
    bw_state *s = ur__alloc(t, sizeof *s);
    if (!s) return NULL;
    s->t = t;
    s->last = last;
    s->uses = ur__alloc(t, n * sizeof *s->uses);
    s->owner = ur__alloc(t, n * sizeof *s->owner);
    s->fresh = ur__alloc(t, n);
    s->sliced = ur__alloc(t, n);
    s->dir = ur__alloc(t, n);
    s->lo = ur__alloc(t, n * sizeof *s->lo);
    s->hi = ur__alloc(t, n * sizeof *s->hi);
    s->pending = ur__alloc(t, n * sizeof *s->pending);
    if (!s->uses || !s->owner || !s->fresh || !s->sliced || !s->dir || !s->lo || !s->hi || !s->pending) return NULL;
    memset(s->pending, 0, n * sizeof *s->pending);
    s->wt = NULL;
    memset(s->uses, 0, n * sizeof *s->uses);
    memset(s->fresh, 0, n);
    memset(s->sliced, 1, n);
    memset(s->dir, 0, n);
    for (size_t i = 0; i < n; i++) {
        s->owner[i] = (int)i;
        s->lo[i] = s->hi[i] = NULL;
    }
    for (size_t id = 0; id < n; id++) {
        ur_node *y = t->nodes[id];
        for (int k = 0; k < y->n_in; k++) {
            int a = y->in[k]->id;
            s->uses[a]++;
            if (!is_view_slice(y)) {
                s->sliced[a] = 0;
                continue;
            }
            const ur_real *lo = y->value, *hi = y->value + y->size;
            if (s->lo[a]) {
                signed char d = lo >= s->hi[a] ? 1 : hi <= s->lo[a] ? -1 : 0;
                if (!d || (s->dir[a] && s->dir[a] != d)) s->sliced[a] = 0;
                s->dir[a] = d;
            }
            s->lo[a] = lo;
            s->hi[a] = hi;
        }
    }
    return s;
}

/* The input whose gradient equals x's (see above) and x's offset in its buffer;
 * NULL if there is none. */
static ur_node *share_source(const bw_state *s, const ur_node *x, size_t *off) {
    *off = 0;
    ur_node *a = NULL;
    switch (x->op) {
    case UR_OP_ADD:
        if (x->in[0] == x->in[1]) return NULL;
        for (int k = 0; k < 2 && !a; k++)
            if (x->in[k]->size == x->size && s->uses[x->in[k]->id] == 1) a = x->in[k];
        break;
    case UR_OP_SUB:
        if (x->in[0]->size == x->size && x->in[0] != x->in[1]) a = x->in[0];
        break;
    case UR_OP_LINEAR:
        if (x->n_in == 3 && x->in[2]->size == x->size) a = x->in[2];
        break;
    case UR_OP_RESHAPE: a = x->in[0]; break;
    case UR_OP_SLICE:
        a = x->in[0];
        if (!x->iattr[2] || !s->sliced[a->id] || a->param || !a->requires_grad) return NULL;
        *off = (size_t)(x->value - a->value);
        return a;
    default: return NULL;
    }
    return a && s->uses[a->id] == 1 && !a->param && a->requires_grad ? a : NULL;
}

/* x's gradient buffer: shared along the chain of share_source, else new (fresh). */
static ur_real *grad_buffer(ur_tape *t, bw_state *s, ur_node *x) {
    if (x->grad) return x->grad;
    if (!s) {
        x->grad = ur__alloc_real(t, x->size);
        if (x->grad) memset(x->grad, 0, x->size * sizeof(ur_real));
        return x->grad;
    }
    size_t total = 0, off;
    int sliced = 0;
    ur_node *e = x, *a;
    while (!e->grad && (a = share_source(s, e, &off))) {
        sliced |= e->op == UR_OP_SLICE;
        total += off;
        e = a;
    }
    if (e->grad_in_value && e != x) { /* see ur_grad_in_value */
        if (!e->grad) e->grad = e->value;
        for (ur_node *n = x; n != e; n = a) { /* x's part is a buffer of its own */
            a = share_source(s, n, &off);
            n->grad = e->grad + total;
            s->owner[n->id] = x->id;
            total -= off;
        }
        s->fresh[x->id] = 1;
        return x->grad;
    }
    if (!e->grad) {
        if (!(e->grad = ur__alloc_real(t, e->size))) return NULL;
        s->fresh[e->id] = 1;
    }
    int o = s->owner[e->id];
    if (sliced && s->fresh[o]) { /* slices write parts of the buffer */
        memset(t->nodes[o]->grad, 0, t->nodes[o]->size * sizeof(ur_real));
        s->fresh[o] = 0;
    }
    for (ur_node *n = x; n != e; n = a) {
        a = share_source(s, n, &off);
        n->grad = e->grad + total;
        s->owner[n->id] = o;
        total -= off;
    }
    return x->grad;
}

static bw_state *bw_of(const ur_tape *t, const ur_node *x) {
    bw_state *s = bw_cur;
    return s && s->t == t && x->id <= s->last && t->nodes[x->id] == x ? s : NULL;
}

ur_real *ur__grad_w(ur_tape *t, ur_node *x, int *assign) {
    *assign = 0;
    if (!x->requires_grad) return NULL;
    if (x->param && x->param->sparse_rows_) ur__param_dense(x->param);
    bw_state *s = bw_of(t, x);
    ur_real *g = grad_buffer(t, s, x);
    if (g && s && s->fresh[s->owner[x->id]]) { /* x's gradient is the whole buffer */
        *assign = 1;
        s->fresh[s->owner[x->id]] = 0;
    }
    return g;
}

/* ---- transposed weights ----
 * dx = G W^T for a weight read by many thin products (a recurrent step, a tree
 * node): as a product with B transposed it either goes through dot products
 * (few rows) or packs all of W again at every use. With W^T stored once per
 * backward walk, each use reads it in place like any untransposed B. */
enum { TRANSPOSED_MAX_ROWS = 128 };

/* tensor/gemm_pack.c: dst[p*ldd + r] = src[r*lds + p], r < rows, p < cols. */
void ur_gemm_transpose(int rows, int cols, const ur_real *src, int lds, ur_real *dst, int ldd);

const ur_real *ur__transposed(ur_tape *t, ur_node *W, int rows) {
    bw_state *s = bw_cur;
    if (!s || s->t != t || rows > TRANSPOSED_MAX_ROWS || W->shape.ndim != 2 || W->id > s->last ||
        t->nodes[W->id] != W || s->uses[W->id] < 2)
        return NULL;
    if (!s->wt) {
        size_t n = (size_t)s->last + 1;
        if (!(s->wt = ur__alloc(t, n * sizeof *s->wt))) return NULL;
        memset(s->wt, 0, n * sizeof *s->wt);
    }
    if (!s->wt[W->id]) {
        int K = W->shape.dims[0], M = W->shape.dims[1];
        ur_real *d = ur__alloc_real(t, (size_t)K * M);
        if (!d) return NULL;
        ur_gemm_transpose(K, M, W->value, M, d, K);
        s->wt[W->id] = d;
    }
    return s->wt[W->id];
}

/* ---- gradients in the values' memory ----
 * A recurrent layer's projected inputs gx (T*B rows) are read during backward by
 * nothing but the steps that own their rows, each of which reads its rows' values
 * and then writes their gradient. ur_grad_in_value(gx) lets the gradient take
 * the values' memory instead of a buffer of its own (a large LSTM's biggest
 * buffer). The rows are handed out through gx's view slices; each slice's chain
 * (the step's pre-activation node, the slice) is then a buffer of its own for
 * freshness, so that its first writer assigns (the ops that write only part of it
 * detect the shared memory and keep to the protocol in ops_rnn.c). Rows that no
 * step claimed still hold values when the walk reaches gx: they are zeroed then. */
void ur_grad_in_value(ur_node *x) {
    if (x) x->grad_in_value = 1;
}

/* Before gx's own backward: zero the rows of view slices that never got a gradient. */
static void zero_unclaimed(const ur_tape *t, const bw_state *s, ur_node *y) {
    for (int id = y->id + 1; id <= s->last; id++) {
        const ur_node *n = t->nodes[id];
        if (n->op == UR_OP_SLICE && n->iattr[2] && n->n_in == 1 && n->in[0] == y && !n->grad)
            memset(y->grad + (n->value - y->value), 0, n->size * sizeof(ur_real));
    }
}

/* ---- deferred weight gradients ----
 * A weight read by many products of a few rows each (a recurrent weight: one
 * product per time step; a tree's composition matrix: one per node) would get
 * dW += x^T G as many thin updates, each reading and writing all of dW for a
 * product of depth N (the batch). Instead each product leaves its (x, G) here, and
 * when the walk reaches W -- after all its consumers -- the parts are joined into
 * products of depth about DEFER_ROWS: (K x R) * (R x M), R = the rows of several
 * parts. x and G are a node's value and gradient, which stay unchanged until then.
 * The grouping depends on the parts' sizes only: results do not depend on the
 * number of threads. */
enum { DEFER_ROWS = 256 };

struct wgrad_part {
    const ur_real *x, *G; /* (N, K) and (N, M) */
    int N;
    wgrad_part *next;
};

int ur__defer_wgrad(ur_tape *t, ur_node *W, const ur_real *x, const ur_real *G, int N) {
    bw_state *s = bw_cur;
    if (!s || s->t != t || W->id > s->last || s->uses[W->id] < 2 || !W->requires_grad) return 0;
    wgrad_part *p = ur__alloc(t, sizeof *p);
    if (!p) return 0;
    p->x = x;
    p->G = G;
    p->N = N;
    p->next = s->pending[W->id];
    s->pending[W->id] = p;
    return 1;
}

/* The rows of parts[0..n) (x when use_G is 0, else G) as one matrix: in place when
 * they follow each other in memory, else copied into *buf (cap rows, taken from
 * the arena on first use). NULL when out of memory. */
static const ur_real *join_rows(ur_tape *t, wgrad_part *const *parts, int n, int use_G, size_t cols,
                                ur_real **buf, size_t cap) {
    const ur_real *first = use_G ? parts[0]->G : parts[0]->x, *at = first;
    int contiguous = 1;
    for (int i = 0; i < n && contiguous; i++) {
        contiguous = (use_G ? parts[i]->G : parts[i]->x) == at;
        at += (size_t)parts[i]->N * cols;
    }
    if (contiguous) return first;
    if (!*buf && !(*buf = ur__alloc_real(t, cap * cols))) return NULL;
    ur_real *o = *buf;
    for (int i = 0; i < n; i++) {
        size_t len = (size_t)parts[i]->N * cols;
        memcpy(o, use_G ? parts[i]->G : parts[i]->x, len * sizeof(ur_real));
        o += len;
    }
    return *buf;
}

static void flush_wgrad(ur_tape *t, bw_state *s, ur_node *W) {
    int n = 0;
    for (wgrad_part *p = s->pending[W->id]; p; p = p->next) n++;
    wgrad_part **parts = ur__alloc(t, (size_t)n * sizeof *parts);
    if (!parts) return;
    int i = 0;
    for (wgrad_part *p = s->pending[W->id]; p; p = p->next) parts[i++] = p;
    s->pending[W->id] = NULL;
    int K = W->shape.dims[0], M = W->shape.dims[1];
    /* parts are in reverse order of recording: put them back when that makes G one block */
    if (n > 1 && parts[1]->G + (size_t)parts[1]->N * M == parts[0]->G)
        for (int a = 0, b = n - 1; a < b; a++, b--) {
            wgrad_part *tmp = parts[a];
            parts[a] = parts[b];
            parts[b] = tmp;
        }
    int fresh;
    ur_real *gW = ur__grad_w(t, W, &fresh);
    if (!gW) return;
    /* groups of consecutive parts of up to DEFER_ROWS rows (or one larger part) */
    size_t cap = DEFER_ROWS;
    ur_real *xbuf = NULL, *gbuf = NULL;
    for (int lo = 0, hi; lo < n; lo = hi) {
        int R = parts[lo]->N;
        for (hi = lo + 1; hi < n && R + parts[hi]->N <= DEFER_ROWS; hi++) R += parts[hi]->N;
        const ur_real *X = join_rows(t, parts + lo, hi - lo, 0, (size_t)K, &xbuf, cap);
        const ur_real *G = join_rows(t, parts + lo, hi - lo, 1, (size_t)M, &gbuf, cap);
        if (!X || !G) return;
        ur_gemm(1, 0, K, M, R, 1, X, K, G, M, fresh && lo == 0 ? 0 : 1, gW, M);
    }
}

ur_real *ur__grad(ur_tape *t, ur_node *x) {
    int assign;
    ur_real *g = ur__grad_w(t, x, &assign);
    if (g && assign) memset(g, 0, x->size * sizeof(ur_real));
    return g;
}

int ur__axis(int axis, int ndim) {
    if (axis < 0) axis += ndim;
    return axis >= 0 && axis < ndim ? axis : -1;
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
    if (data) memcpy(y->value, data, y->size * sizeof(ur_real));
    else memset(y->value, 0, y->size * sizeof(ur_real));
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
    ur_node *y = ur__alloc(t, sizeof *y);
    if (!y) return NULL;
    memset(y, 0, sizeof *y);
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

/* ---- reading nodes ---- */

int ur_node_id(const ur_node *n) { return n ? n->id : -1; }
int ur_node_ndim(const ur_node *n) { return n ? n->shape.ndim : 0; }
int ur_node_dim(const ur_node *n, int axis) {
    if (!n) return 0;
    int a = ur__axis(axis, n->shape.ndim);
    return a < 0 ? 0 : n->shape.dims[a];
}
const ur_shape *ur_node_shape(const ur_node *n) { return n ? &n->shape : NULL; }
size_t ur_node_size(const ur_node *n) { return n ? n->size : 0; }
ur_real *ur_node_data(ur_node *n) { return n ? n->value : NULL; }
const ur_real *ur_node_cdata(const ur_node *n) { return n ? n->value : NULL; }
const ur_real *ur_node_grad(const ur_node *n) { return n ? n->grad : NULL; }
ur_real ur_node_item(const ur_node *n) { return n && n->size ? n->value[0] : (ur_real)NAN; }
const char *ur_node_op_name(const ur_node *n) { return n ? ur_op_name(n->op) : "?"; }
int ur_node_requires_grad(const ur_node *n) { return n ? n->requires_grad : 0; }

ur_status ur_node_copy_to(const ur_node *n, ur_tensor *dst) {
    if (!n || !dst) return ur_set_error(UR_ERR_ARG, "ur_node_copy_to: node or tensor is NULL");
    if (dst->size != n->size) {
        char a[64], b[64];
        return ur_set_error(UR_ERR_SHAPE, "ur_node_copy_to: node %s and tensor %s differ in size",
                            ur_shape_str(&n->shape, a, sizeof a), ur_shape_str(&dst->shape, b, sizeof b));
    }
    memcpy(dst->data, n->value, n->size * sizeof(ur_real));
    return UR_OK;
}

const char *ur_op_name(ur_op op) {
    return (int)op >= 0 && op < UR_OP_COUNT ? ur__op_table[op].name : "?";
}

/* ---- backward ---- */

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

ur_status ur_backward(ur_tape *t, ur_node *loss) {
    if (!t) return ur_set_error(UR_ERR_ARG, "backward: tape is NULL");
    if (t->err) return t->err;
    if (!ur__check(t, "backward", 1, &loss)) return t->err;
    if (loss->size != 1) {
        char buf[64];
        return ur_tape_fail(t, UR_ERR_SHAPE, "backward: the loss must have one element, it has shape %s",
                            ur_shape_str(&loss->shape, buf, sizeof buf));
    }
    if (t->backward_done)
        return ur_tape_fail(t, UR_ERR_STATE, "backward: this recording was already walked; "
                            "reset the tape and record the step again");
    t->backward_done = 1;
    if (!loss->requires_grad) return UR_OK; /* nothing to differentiate */
    bw_state *outer = bw_cur;
    bw_cur = bw_begin(t, loss->id);
    ur_real *g = ur__grad(t, loss);
    if (g) g[0] += 1;
    for (int id = loss->id; g && id >= 0 && !t->err; id--) {
        ur_node *y = t->nodes[id];
        if (bw_cur && bw_cur->pending[id]) flush_wgrad(t, bw_cur, y); /* y's gradient is now complete */
        if (bw_cur && y->grad_in_value && y->grad == y->value) zero_unclaimed(t, bw_cur, y);
        if (!y->grad || y->n_in == 0 || !y->requires_grad) continue;
        ur__op_table[y->op].backward(t, y);
        if (t->anomaly && !t->err) check_input_grads(t, y);
    }
    bw_cur = outer;
    return t->err;
}
