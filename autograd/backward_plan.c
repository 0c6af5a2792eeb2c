/* backward_plan.c - the shortcuts of the backward walk (see backward_plan.h).
 *
 * Shared buffers. A node whose gradient equals one of its inputs' gradients -- an
 * identity edge (add, sub's left side, linear's full-size bias, reshape) to an
 * input read by this node only -- shares that input's buffer: the node's consumers
 * then add into the input's gradient directly, and the node's own rule gets NULL
 * for that input from ur__grad (its contribution is already there). A contiguous
 * slice (a view of its parent's values) whose parent is read only by such slices,
 * in order and without overlap (the time steps of a projected sequence), gets the
 * matching part of the parent's buffer. Such a parent's buffer, when large
 * (LAZY_MIN), is not zero-filled as a whole: each slice's part is zeroed when the
 * slice's gradient is first asked for -- or left to a fused expression that zeroes
 * it row by row just before adding into it (ur__plan_grad_unfilled) -- and what no
 * slice received is zeroed when the walk reaches the parent. In every case
 * ur_node_grad of a node is exactly dL/d(node).
 *
 * Deferred weight gradients. A weight read by many products of a few rows each (a
 * recurrent weight: one product per time step; a tree's composition matrix: one
 * per node) would get dW += x^T G as many thin updates, each reading and writing
 * all of dW for a product of depth N (the batch). Instead each product leaves its
 * (x, G) here, and when the walk reaches W -- after all its consumers -- the parts
 * are joined into products of depth about DEFER_ROWS, their rows read where they
 * are. x and G are a node's value and gradient, which stay unchanged until then.
 * The grouping depends on the parts' sizes only: results do not depend on the
 * number of threads.
 *
 * Transposed weights. dx += G W^T for such a weight is, as a product with B
 * transposed, either a row of dot products (few rows) or a packing of all of W at
 * every use. With W^T stored once per walk, each use reads it like any B. */
#include "backward_plan.h"

#include <string.h>

#include "../tensor/kernels_internal.h"

/* LAZY_MIN: a sliced node's gradient of fewer values is zero-filled whole on first
 * use, as any other (it is cheap, and stays in cache for the parts that follow). */
enum { DEFER_ROWS = 256, TRANSPOSED_MAX_ROWS = 128, LAZY_MIN = 1 << 16 };

typedef struct wgrad_part {
    const ur_real *x, *G; /* (N, K) and (N, M) */
    int N;
    struct wgrad_part *next;
} wgrad_part;

struct ur_plan {
    int last;              /* id of the loss */
    int cur;               /* id of the node whose rule runs, -1 before the first */
    int *uses;             /* consumers among the nodes up to the loss */
    int *into;             /* the input whose buffer holds this node's gradient, or -1 */
    unsigned char *sliced; /* 1: read only by ordered, disjoint contiguous slices */
    signed char *dir;      /* order of those slices: 1 ascending, -1 descending */
    const ur_real **lo, **hi; /* range of the last such slice */
    unsigned char *lazy;   /* a sliced node whose buffer is zeroed part by part (see above);
                            * a slice of it has a gradient once its part is handed out */
    wgrad_part **pending;  /* per weight: deferred dW products */
    ur_real **wt;          /* per weight, on first use: its values transposed */
};

static int is_view_slice(const ur_node *y) { return y->op == UR_OP_SLICE && y->iattr[2]; }

/* Notes that y, a view slice of a, covers [lo, hi) of a's values: a stays "sliced"
 * while its slices follow each other in one direction without overlap. */
static void note_slice(ur_plan *p, int a, const ur_real *lo, const ur_real *hi) {
    if (p->lo[a]) {
        signed char d = lo >= p->hi[a] ? 1 : hi <= p->lo[a] ? -1 : 0;
        if (!d || (p->dir[a] && p->dir[a] != d)) p->sliced[a] = 0;
        p->dir[a] = d;
    }
    p->lo[a] = lo;
    p->hi[a] = hi;
}

ur_plan *ur__plan_begin(ur_tape *t, int last) {
    if (!t->plan_enabled) return NULL;
    size_t n = (size_t)last + 1;
    ur_plan *p = ur__alloc(t, sizeof *p);
    if (!p) return NULL;
    memset(p, 0, sizeof *p);
    p->last = last;
    p->cur = -1;
    p->uses = ur__alloc(t, n * sizeof *p->uses);
    p->into = ur__alloc(t, n * sizeof *p->into);
    p->sliced = ur__alloc(t, n);
    p->dir = ur__alloc(t, n);
    p->lo = ur__alloc(t, n * sizeof *p->lo);
    p->hi = ur__alloc(t, n * sizeof *p->hi);
    p->pending = ur__alloc(t, n * sizeof *p->pending);
    p->wt = ur__alloc(t, n * sizeof *p->wt);
    p->lazy = ur__alloc(t, n);
    if (!p->uses || !p->into || !p->sliced || !p->dir || !p->lo || !p->hi || !p->pending || !p->wt || !p->lazy)
        return NULL;
    memset(p->uses, 0, n * sizeof *p->uses);
    memset(p->sliced, 1, n);
    memset(p->lazy, 0, n);
    memset(p->dir, 0, n);
    for (size_t i = 0; i < n; i++) {
        p->into[i] = -1;
        p->lo[i] = p->hi[i] = NULL;
        p->pending[i] = NULL;
        p->wt[i] = NULL;
    }
    for (size_t id = 0; id < n; id++) {
        const ur_node *y = t->nodes[id];
        for (int k = 0; k < y->n_in; k++) {
            int a = y->in[k]->id;
            p->uses[a]++;
            if (is_view_slice(y)) note_slice(p, a, y->value, y->value + y->size);
            else p->sliced[a] = 0;
        }
    }
    return p;
}

/* The input whose gradient equals x's (see above) and x's offset in its buffer;
 * NULL if there is none. */
static ur_node *share_source(const ur_plan *p, const ur_node *x, size_t *off) {
    *off = 0;
    ur_node *a = NULL;
    switch (x->op) {
    case UR_OP_ADD:
        if (x->in[0] == x->in[1]) return NULL;
        for (int k = 0; k < 2 && !a; k++)
            if (x->in[k]->size == x->size && p->uses[x->in[k]->id] == 1) a = x->in[k];
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
        if (!x->iattr[2] || !p->sliced[a->id] || a->param || !a->requires_grad) return NULL;
        *off = (size_t)(x->value - a->value);
        return a;
    default: return NULL;
    }
    return a && p->uses[a->id] == 1 && !a->param && a->requires_grad ? a : NULL;
}

/* x's gradient (see ur__plan_grad_unfilled; unfilled NULL: zero-filled). */
static ur_real *plan_grad(ur_tape *t, ur_node *x, int *unfilled) {
    ur_plan *p = t->plan;
    if (p->cur >= 0 && p->into[p->cur] == x->id) return NULL; /* already holds the contribution */
    if (x->grad || x->id > p->last || t->nodes[x->id] != x) return ur__grad_plain(t, x);
    /* follow the chain of shared buffers to the first node that has one (or none) */
    size_t total = 0, off;
    int slices = 0;
    ur_node *e = x, *last = NULL, *a;
    while (!e->grad && (a = share_source(p, e, &off))) {
        total += off;
        slices += is_view_slice(e);
        last = e;
        e = a;
    }
    /* last, the node that shares into e, a slice: its part of e's buffer is handed out
     * now (not in anomaly mode, which reads whole buffers) */
    int part = last && is_view_slice(last) && (p->lazy[e->id] || (!e->grad && e->size >= LAZY_MIN)) && !t->anomaly;
    if (part && !e->grad) {
        if (!(e->grad = ur__alloc_real(t, e->size))) return NULL;
        p->lazy[e->id] = 1;
    } else if (!last && unfilled) {
        if ((x->grad = ur__alloc_real(t, x->size))) *unfilled = 1; /* a buffer of x's own */
        return x->grad;
    } else if (!ur__grad_plain(t, e)) {
        return NULL;
    }
    for (ur_node *n = x; n != e; n = a) {
        a = share_source(p, n, &off);
        n->grad = e->grad + total;
        p->into[n->id] = a->id;
        total -= off;
    }
    if (part) { /* zeroed, or filled by x's caller when x covers that part exactly */
        if (unfilled && slices == 1 && x->size == last->size) *unfilled = 1;
        else ur__vec_zero(last->size, last->grad);
    }
    return x->grad;
}

ur_real *ur__plan_grad(ur_tape *t, ur_node *x) { return plan_grad(t, x, NULL); }

ur_real *ur__plan_grad_unfilled(ur_tape *t, ur_node *x, int *unfilled) { return plan_grad(t, x, unfilled); }

/* Zeroes the parts of lazily filled y's buffer that no slice of y was handed. y is
 * read by its slices only (p->uses[y] of them), which follow each other in one
 * direction (p->dir): in the order of the tape their parts ascend or descend, so
 * one pass from y on, until the last of them, finds the gaps. */
static void fill_unclaimed(ur_tape *t, ur_plan *p, ur_node *y) {
    p->lazy[y->id] = 0;
    int up = p->dir[y->id] >= 0, left = p->uses[y->id];
    size_t at = up ? 0 : y->size; /* ascending: zeroed below at; descending: above */
    for (int id = y->id + 1; id <= p->last && left > 0; id++) {
        const ur_node *s = t->nodes[id];
        if (s->n_in < 1 || s->in[0] != y) continue;
        left--;
        if (!s->grad) continue; /* not handed out */
        size_t lo = (size_t)(s->value - y->value), hi = lo + s->size;
        if (up && lo > at) ur__vec_zero(lo - at, y->grad + at);
        if (!up && hi < at) ur__vec_zero(at - hi, y->grad + hi);
        at = up ? hi : lo;
    }
    if (up && y->size > at) ur__vec_zero(y->size - at, y->grad + at);
    if (!up && at > 0) ur__vec_zero(at, y->grad);
}

void ur__plan_end(ur_tape *t) {
    ur_plan *p = t->plan;
    for (int id = 0; id <= p->last; id++)
        if (p->lazy[id]) fill_unclaimed(t, p, t->nodes[id]);
}

/* ---- deferred weight gradients ---- */

/* The rows of parts[0..n) (x when use_G is 0, else G), each cols long: where they
 * follow each other in memory, the first; else NULL. */
static const ur_real *contiguous_rows(wgrad_part *const *parts, int n, int use_G, size_t cols) {
    const ur_real *first = use_G ? parts[0]->G : parts[0]->x, *at = first;
    for (int i = 0; i < n; i++) {
        if ((use_G ? parts[i]->G : parts[i]->x) != at) return NULL;
        at += (size_t)parts[i]->N * cols;
    }
    return first;
}

/* Those rows by address, into *rows (cap pointers, taken from the arena on first
 * use). NULL when out of memory. */
static const ur_real *const *row_table(ur_tape *t, wgrad_part *const *parts, int n, int use_G, size_t cols,
                                       const ur_real ***rows, size_t cap) {
    if (!*rows && !(*rows = ur__alloc(t, cap * sizeof **rows))) return NULL;
    size_t r = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < parts[i]->N; j++)
            (*rows)[r++] = (use_G ? parts[i]->G : parts[i]->x) + (size_t)j * cols;
    return *rows;
}

/* Those rows copied into one matrix, *buf (cap rows, from the arena on first use).
 * NULL when out of memory. */
static const ur_real *joined_rows(ur_tape *t, wgrad_part *const *parts, int n, int use_G, size_t cols,
                                  ur_real **buf, size_t cap) {
    if (!*buf && !(*buf = ur__alloc_real(t, cap * cols))) return NULL;
    ur_real *o = *buf;
    for (int i = 0; i < n; i++) {
        size_t len = (size_t)parts[i]->N * cols;
        memcpy(o, use_G ? parts[i]->G : parts[i]->x, len * sizeof(ur_real));
        o += len;
    }
    return *buf;
}

/* dW += x^T G for all parts of W, in groups of consecutive parts of up to
 * DEFER_ROWS rows (or one larger part): (K x R) (R x M) each. Rows of x or G that
 * are not one block in memory are read where they are (ur__gemm_rows_tn), or in
 * bf16 copied into one block first; the sums are the same either way. */
static void flush_wgrad(ur_tape *t, ur_plan *p, ur_node *W) {
    int n = 0;
    for (wgrad_part *q = p->pending[W->id]; q; q = q->next) n++;
    wgrad_part **parts = ur__alloc(t, (size_t)n * sizeof *parts);
    if (!parts) return;
    int i = 0;
    for (wgrad_part *q = p->pending[W->id]; q; q = q->next) parts[i++] = q;
    p->pending[W->id] = NULL;
    int K = W->shape.dims[0], M = W->shape.dims[1];
    /* parts are in reverse order of recording: put them back when that makes G one block */
    if (n > 1 && parts[1]->G + (size_t)parts[1]->N * M == parts[0]->G)
        for (int a = 0, b = n - 1; a < b; a++, b--) {
            wgrad_part *tmp = parts[a];
            parts[a] = parts[b];
            parts[b] = tmp;
        }
    ur_real *gW = ur__grad(t, W);
    if (!gW) return;
    ur_real *xbuf = NULL, *gbuf = NULL;
    const ur_real **xrows = NULL, **grows = NULL;
    for (int lo = 0, hi; lo < n; lo = hi) {
        int R = parts[lo]->N;
        for (hi = lo + 1; hi < n && R + parts[hi]->N <= DEFER_ROWS; hi++) R += parts[hi]->N;
        const ur_real *X = contiguous_rows(parts + lo, hi - lo, 0, (size_t)K);
        const ur_real *G = contiguous_rows(parts + lo, hi - lo, 1, (size_t)M);
        if ((!X || !G) && t->precision == UR_PRECISION_F32) {
            const ur_real *const *xr = X ? NULL : row_table(t, parts + lo, hi - lo, 0, (size_t)K, &xrows, DEFER_ROWS);
            const ur_real *const *gr = G ? NULL : row_table(t, parts + lo, hi - lo, 1, (size_t)M, &grows, DEFER_ROWS);
            if ((!X && !xr) || (!G && !gr)) return;
            ur__gemm_rows_tn(K, M, R, X, K, xr, G, M, gr, gW, M);
            continue;
        }
        if (!X) X = joined_rows(t, parts + lo, hi - lo, 0, (size_t)K, &xbuf, DEFER_ROWS);
        if (!G) G = joined_rows(t, parts + lo, hi - lo, 1, (size_t)M, &gbuf, DEFER_ROWS);
        if (!X || !G) return;
        ur__gemm(t, "backward (dW)", 1, 0, K, M, R, X, K, G, M, 1, gW, M);
    }
}

void ur__plan_visit(ur_tape *t, ur_node *y) {
    ur_plan *p = t->plan;
    p->cur = y->id;
    if (p->lazy[y->id]) fill_unclaimed(t, p, y);
    if (p->pending[y->id]) flush_wgrad(t, p, y);
}

/* 1 when W is a 2-d node of this walk read by several ops and by the running
 * rule through one input only (so nothing else of the rule touches W's gradient). */
static int shared_weight(const ur_tape *t, const ur_plan *p, const ur_node *W) {
    if (W->shape.ndim != 2 || W->id > p->last || t->nodes[W->id] != W || p->uses[W->id] < 2 || p->cur < 0)
        return 0;
    const ur_node *y = t->nodes[p->cur];
    int n = 0;
    for (int k = 0; k < y->n_in; k++) n += y->in[k] == W;
    return n == 1;
}

/* ---- the helpers ops call ---- */

void ur__add_xT_G(ur_tape *t, ur_node *W, const ur_real *x, const ur_real *G, int N) {
    if (!W->requires_grad) return;
    int K = W->shape.dims[0], M = W->shape.dims[1];
    ur_plan *p = t->plan;
    if (p && shared_weight(t, p, W) && p->into[p->cur] != W->id) {
        wgrad_part *q = ur__alloc(t, sizeof *q);
        if (q) {
            q->x = x;
            q->G = G;
            q->N = N;
            q->next = p->pending[W->id];
            p->pending[W->id] = q;
            return;
        }
    }
    ur_real *gW = ur__grad(t, W);
    if (gW) ur__gemm(t, "backward (dW)", 1, 0, K, M, N, x, K, G, M, 1, gW, M);
}

/* W's values transposed, stored on first use; NULL when the plan does not keep it. */
static const ur_real *transposed(ur_tape *t, ur_plan *p, ur_node *W, int rows) {
    if (rows > TRANSPOSED_MAX_ROWS || !shared_weight(t, p, W)) return NULL;
    if (!p->wt[W->id]) {
        int K = W->shape.dims[0], M = W->shape.dims[1];
        ur_real *d = ur__alloc_real(t, (size_t)K * M);
        if (!d) return NULL;
        ur_gemm_transpose(K, M, W->value, M, d, K);
        p->wt[W->id] = d;
    }
    return p->wt[W->id];
}

void ur__add_G_WT(ur_tape *t, ur_real *dx, const ur_real *G, ur_node *W, int N) {
    int K = W->shape.dims[0], M = W->shape.dims[1];
    if (t->precision == UR_PRECISION_BF16) { /* W^T packed in bf16 once per recording instead */
        ur__gemm_w(t, "backward (dx)", 0, N, G, M, W, 1, 1, dx, K);
        return;
    }
    const ur_real *WT = t->plan ? transposed(t, t->plan, W, N) : NULL;
    if (WT) ur__gemm(t, "backward (dx)", 0, 0, N, K, M, G, M, WT, K, 1, dx, K); /* (N x M) (M x K) */
    else ur__gemm(t, "backward (dx)", 0, 1, N, K, M, G, M, W->value, M, 1, dx, K);
}
