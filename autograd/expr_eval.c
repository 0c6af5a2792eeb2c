/* expr_eval.c - a fused pointwise expression as one tape node (UR_OP_EXPR): its
 * forward pass, its backward pass derived from the node list, and the plan that
 * says which values are kept, made again or never needed.
 *
 * Both passes go over each batch row in chunks of `chunk` columns. A chunk runs the
 * node list in order, one short loop per node over buffers on the stack, so each
 * loop vectorises (sigmoid, tanh and exp use the vector kernels of tensor/vec.c).
 * Backward runs the list in reverse over the same chunk with one adjoint buffer
 * per node, each node applying its derivative rule from the table below: nothing
 * is written per expression.
 *
 * Saved or recomputed: backward makes only the values its rules read (p->need).
 * Outputs are read back from the recorded node. The transcendental nodes (sigmoid,
 * tanh, exp, log) are saved by forward when the output is small (B N <= UR_EX_SAVE_MAX:
 * there the saved copy costs less than the vector kernels again); everything else, and everything for large outputs, is recomputed
 * per chunk from the inputs, which backward still holds.
 * Either way backward sees exactly the forward's values. */
#include "expr_internal.h"

#include "../tensor/kernels_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { CHUNK = UR_EX_CHUNK, SCRATCH = UR_EX_SCRATCH, MAX_NODES = UR_EX_MAX_NODES, MAX_SLOTS = UR_EX_MAX_SLOTS };
#define PAR_MIN 2048.0

#define LOOP for (int j = 0; j < n; j++)

/* GCC on x86-64 Linux compiles the rules three times, for AVX-512, AVX2 and the
 * baseline, and the loader picks the CPU's copy. Each element is computed by the
 * same operations in each copy (ISO C mode: a * b + c is never fused), so the
 * results are the same bits on every CPU. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && !defined(__AVX512F__)
#define RULE static __attribute__((target_clones("avx512f", "avx2", "default"))) void
#else
#define RULE static void
#endif

/* ---- the rules: y = f(a, b) and its derivative, once per kind ----
 * bwd adds g dy/da to ga and g dy/db to gb (gb NULL for one operand). set_a
 * (set_b): this is the first contribution to that adjoint in the reverse walk,
 * which then assigns instead of adding to a zeroed buffer (the plan decides, see
 * analyse). ga and gb may be the same buffer (x * x): each gets a loop of its own.
 * ga or gb NULL: that operand's adjoint is g itself (plan_alias), nothing to write. */
typedef void (*ex_fwd)(int n, const ur_real *restrict a, const ur_real *restrict b, ur_real *restrict y);
typedef void (*ex_bwd)(int n, const ur_real *restrict g, const ur_real *restrict a, const ur_real *restrict b,
                       const ur_real *restrict y, ur_real *ga, ur_real *gb, int set_a, int set_b);

RULE f_add(int n, const ur_real *restrict a, const ur_real *restrict b, ur_real *restrict y) { LOOP y[j] = a[j] + b[j]; }
RULE f_sub(int n, const ur_real *restrict a, const ur_real *restrict b, ur_real *restrict y) { LOOP y[j] = a[j] - b[j]; }
RULE f_mul(int n, const ur_real *restrict a, const ur_real *restrict b, ur_real *restrict y) { LOOP y[j] = a[j] * b[j]; }
RULE f_div(int n, const ur_real *restrict a, const ur_real *restrict b, ur_real *restrict y) { LOOP y[j] = a[j] / b[j]; }
RULE f_sigmoid(int n, const ur_real *restrict a, const ur_real *restrict b, ur_real *restrict y) { ur__vec_sigmoid_here((size_t)n, a, y); }
RULE f_tanh(int n, const ur_real *restrict a, const ur_real *restrict b, ur_real *restrict y) { ur__vec_tanh_here((size_t)n, a, y); }
RULE f_relu(int n, const ur_real *restrict a, const ur_real *restrict b, ur_real *restrict y) { LOOP y[j] = a[j] > 0 ? a[j] : 0; }
RULE f_exp(int n, const ur_real *restrict a, const ur_real *restrict b, ur_real *restrict y) { ur__vec_exp_here((size_t)n, a, y); }
RULE f_log(int n, const ur_real *restrict a, const ur_real *restrict b, ur_real *restrict y) { LOOP y[j] = (ur_real)log(a[j]); }
RULE f_one_minus(int n, const ur_real *restrict a, const ur_real *restrict b, ur_real *restrict y) { LOOP y[j] = 1 - a[j]; }
RULE f_neg(int n, const ur_real *restrict a, const ur_real *restrict b, ur_real *restrict y) { LOOP y[j] = -a[j]; }

/* d = e or d += e, over the chunk; nothing when d is NULL (an aliased adjoint) */
#define PUT(d, set, e) \
    do { \
        if (!d) break; \
        if (set) LOOP d[j] = (e); \
        else LOOP d[j] += (e); \
    } while (0)
#define BWD(name) \
    RULE name(int n, const ur_real *restrict g, const ur_real *restrict a, const ur_real *restrict b, \
                     const ur_real *restrict y, ur_real *ga, ur_real *gb, int set_a, int set_b)
BWD(b_add) { PUT(ga, set_a, g[j]); PUT(gb, set_b, g[j]); }
BWD(b_sub) { PUT(ga, set_a, g[j]); PUT(gb, set_b, -g[j]); }
BWD(b_mul) { PUT(ga, set_a, g[j] * b[j]); PUT(gb, set_b, g[j] * a[j]); }
BWD(b_div) { PUT(ga, set_a, g[j] / b[j]); PUT(gb, set_b, -g[j] * y[j] / b[j]); } /* d(a/b)/db = -y/b */
BWD(b_sigmoid) { PUT(ga, set_a, g[j] * y[j] * (1 - y[j])); }
BWD(b_tanh) { PUT(ga, set_a, g[j] * (1 - y[j] * y[j])); }
BWD(b_relu) { PUT(ga, set_a, a[j] > 0 ? g[j] : 0); }
BWD(b_exp) { PUT(ga, set_a, g[j] * y[j]); }
BWD(b_log) { PUT(ga, set_a, g[j] / a[j]); }
BWD(b_one_minus) { PUT(ga, set_a, -g[j]); }
BWD(b_neg) { PUT(ga, set_a, -g[j]); }

/* uses: which values the derivative reads (USE_A, USE_B, USE_Y); saved: a
 * transcendental, worth keeping for backward. */

typedef struct ex_rule {
    int arity; /* 0: a leaf */
    int uses;
    int saved;
    ex_fwd fwd;
    ex_bwd bwd;
} ex_rule;

static const ex_rule rules[EX_KINDS] = {
    [EX_ADD] = {2, 0, 0, f_add, b_add},
    [EX_SUB] = {2, 0, 0, f_sub, b_sub},
    [EX_MUL] = {2, USE_A | USE_B, 0, f_mul, b_mul},
    [EX_DIV] = {2, USE_B | USE_Y, 0, f_div, b_div},
    [EX_SIGMOID] = {1, USE_Y, 1, f_sigmoid, b_sigmoid},
    [EX_TANH] = {1, USE_Y, 1, f_tanh, b_tanh},
    [EX_RELU] = {1, USE_A, 0, f_relu, b_relu},
    [EX_EXP] = {1, USE_Y, 1, f_exp, b_exp},
    [EX_LOG] = {1, USE_A, 1, f_log, b_log},
    [EX_ONE_MINUS] = {1, 0, 0, f_one_minus, b_one_minus},
    [EX_NEG] = {1, 0, 0, f_neg, b_neg},
};

int ur__ex_arity(ur__ex_kind k) { return k >= 0 && k < EX_KINDS ? rules[k].arity : 0; }
int ur__ex_uses(ur__ex_kind k) { return k >= 0 && k < EX_KINDS ? rules[k].uses : 0; }
int ur__ex_worth_saving(ur__ex_kind k) { return k >= 0 && k < EX_KINDS ? rules[k].saved : 0; }

/* Where node i's values for columns j0.. of row b live when they are kept: an
 * output in the packed output y, a saved node in p->saved; else NULL. */
static ur_real *kept(const ur__ex_plan *p, ur_real *y, int i, int b, int j0) {
    size_t N = (size_t)p->N;
    if (p->first_out[i] >= 0) return y + ((size_t)p->first_out[i] * p->B + b) * N + j0;
    if (p->saved && p->save_at[i] >= 0) return p->saved + ((size_t)b * p->n_saved + p->save_at[i]) * N + j0;
    return NULL;
}

/* Values for columns j0 .. j0+n of row b into v[] (vals: a stack buffer of
 * p->chunk per node). Forward computes every live node, writing outputs and saved
 * nodes where they are kept; backward takes the kept ones as they are and
 * recomputes only the others its rules read (p->need). */
static void eval_chunk(const ur__ex_plan *p, const ur_real *const *x, ur_real *y, int b, int j0, int n,
                       const ur_real **v, ur_real *vals, int backward) {
    size_t N = (size_t)p->N;
    for (int i = 0; i < p->n_nodes; i++) {
        v[i] = NULL;
        if (!p->live[i] || (backward && !p->need[i])) continue;
        const ur__ex_node *e = &p->nodes[i];
        ur_real *own = vals + (size_t)i * p->chunk;
        switch (e->kind) {
        case EX_INPUT: v[i] = x[e->slot] + b * N + j0; break;
        case EX_BLOCK: v[i] = x[e->slot] + ((size_t)b * e->nb + e->k) * N + j0; break;
        case EX_ROW: v[i] = x[e->slot] + j0; break;
        case EX_COL:
        case EX_CONST: {
            ur_real c = e->kind == EX_COL ? x[e->slot][b] : e->v;
            LOOP own[j] = c;
            v[i] = own;
            break;
        }
        default: {
            ur_real *dst = kept(p, y, i, b, j0);
            if (dst && backward) {
                v[i] = dst;
                break;
            }
            if (!dst) dst = own;
            rules[e->kind].fwd(n, v[e->a], e->b >= 0 ? v[e->b] : NULL, dst);
            v[i] = dst;
        }
        }
    }
}

/* Rows b0 .. b1 of the packed output y (n_out blocks of (B, N)). */
static void forward_rows(const ur__ex_plan *p, const ur_real *const *x, ur_real *y, int b0, int b1) {
    ur_real vals[SCRATCH];
    const ur_real *v[MAX_NODES];
    size_t N = (size_t)p->N;
    for (int b = b0; b < b1; b++)
        for (int j0 = 0; j0 < p->N; j0 += p->chunk) {
            int n = p->N - j0 < p->chunk ? p->N - j0 : p->chunk;
            eval_chunk(p, x, y, b, j0, n, v, vals, 0);
            for (int k = 0; k < p->n_out; k++) { /* outputs that are leaves or repeated */
                int i = p->out[k];
                ur_real *o = y + ((size_t)k * p->B + b) * N + j0;
                if (v[i] != o) memcpy(o, v[i], (size_t)n * sizeof(ur_real));
            }
        }
}

/* Rows are independent: split into nt contiguous parts, one per thread (each row is
 * computed the same way whatever the split, so results do not depend on nt). One
 * thread runs outside any parallel region: entering one, even with a false `if`,
 * costs more than a small step's gates. */
void ur__expr_forward(const ur__ex_plan *p, const ur_real *const *x, ur_real *y) {
    int B = p->B, nt = ur__par_threads((double)B * p->N, PAR_MIN);
    if (nt <= 1) {
        forward_rows(p, x, y, 0, B);
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int w = 0; w < nt; w++) forward_rows(p, x, y, B * w / nt, B * (w + 1) / nt);
}

/* ---- backward ----
 * The adjoint of a full or block leaf is its input's gradient itself (rules add
 * into it), of a row leaf its row of the per-row buffer (summed over the batch at
 * the end, in row order, so the sum does not depend on the threads); columns and
 * constants get a buffer of their own, a column's is summed into its gradient. */

/* Adjoint buffers of the live nodes for columns j0.. of row b, zeroed where they are
 * buffers of their own; the outputs' adjoints start as their gradient (gy). */
static void adjoints(const ur__ex_plan *p, ur_real *const *gx, ur_real *const *rowpart, const ur_real *gy,
                     int b, int j0, int n, ur_real **adj, ur_real *buf) {
    size_t N = (size_t)p->N;
    for (int i = 0; i < p->n_nodes; i++) {
        adj[i] = NULL;
        if (!p->live[i]) continue;
        const ur__ex_node *e = &p->nodes[i];
        ur_real *g = NULL;
        if (e->kind == EX_INPUT && gx[e->slot]) g = gx[e->slot] + b * N + j0;
        if (e->kind == EX_BLOCK && gx[e->slot]) g = gx[e->slot] + ((size_t)b * e->nb + e->k) * N + j0;
        if (e->kind == EX_ROW && rowpart[e->slot]) g = rowpart[e->slot] + b * N + j0;
        adj[i] = g ? g : buf + (size_t)i * p->chunk;
        if (g) continue;
        const ur_real *gk = gy + ((size_t)(p->first_out[i] >= 0 ? p->first_out[i] : 0) * p->B + b) * N + j0;
        switch (p->init[i]) {
        case ADJ_SET: break;
        case ADJ_COPY: memcpy(adj[i], gk, (size_t)n * sizeof(ur_real)); break;
        case ADJ_GY: adj[i] = (ur_real *)gk; break; /* only read: by the node's own rule */
        default: memset(adj[i], 0, (size_t)n * sizeof(ur_real));
        }
    }
    for (int k = 0; k < p->n_out; k++) { /* outputs that are leaves or repeated */
        int i = p->out[k];
        if (p->nodes[i].kind > EX_CONST && p->first_out[i] == k) continue;
        ur_real *restrict d = adj[i];
        const ur_real *restrict g = gy + ((size_t)k * p->B + b) * N + j0;
        LOOP d[j] += g[j];
    }
}

/* What a backward pass works on: the inputs' values and gradients. */
typedef struct bw_pass {
    const ur__ex_plan *p;
    const ur_real *x[MAX_SLOTS];
    ur_real *gx[MAX_SLOTS], *rowpart[MAX_SLOTS];
    size_t fill_row[MAX_SLOTS]; /* > 0: gx made unfilled, zeroed row by row (values per row) */
    ur_real *y;
    const ur_real *gy;
} bw_pass;

/* Reverse mode over rows b0 .. b1. */
static void backward_rows(const bw_pass *w, int b0, int b1) {
    const ur__ex_plan *p = w->p;
    ur_real vals[SCRATCH];
    const ur_real *v[MAX_NODES];
    ur_real *adj[MAX_NODES];
    for (int s = 0; s < p->n_slots; s++) /* this part's rows of gradients made unfilled */
        if (w->fill_row[s])
            memset(w->gx[s] + (size_t)b0 * w->fill_row[s], 0, (size_t)(b1 - b0) * w->fill_row[s] * sizeof(ur_real));
    for (int b = b0; b < b1; b++)
        for (int j0 = 0; j0 < p->N; j0 += p->chunk) {
            int n = p->N - j0 < p->chunk ? p->N - j0 : p->chunk;
            eval_chunk(p, w->x, w->y, b, j0, n, v, vals, 1);
            adjoints(p, w->gx, w->rowpart, w->gy, b, j0, n, adj, vals + (size_t)p->n_nodes * p->chunk);
            for (int i = p->n_nodes - 1; i >= 0; i--) {
                const ur__ex_node *e = &p->nodes[i];
                if (!p->live[i] || e->kind <= EX_CONST) continue;
                ur_real *ga = adj[e->a], *gb = e->b >= 0 ? adj[e->b] : NULL;
                if (p->alias[i] & 1) adj[e->a] = adj[i], ga = NULL; /* passed on as it is */
                if (p->alias[i] & 2) adj[e->b] = adj[i], gb = NULL;
                rules[e->kind].bwd(n, adj[i], v[e->a], e->b >= 0 ? v[e->b] : NULL, v[i], ga, gb, p->set[i] & 1,
                                   p->set[i] & 2);
            }
            for (int i = 0; i < p->n_nodes; i++) /* columns: the sum over the chunk */
                if (p->live[i] && p->nodes[i].kind == EX_COL && w->gx[p->nodes[i].slot]) {
                    const ur_real *d = adj[i];
                    ur_real s = 0;
                    LOOP s += d[j];
                    w->gx[p->nodes[i].slot][b] += s;
                }
        }
}

/* Whether slot s is read only as whole rows of (B, ...) (input and block leaves), so
 * that each part of the rows can zero its own rows of the slot's gradient. */
static int read_by_rows(const ur__ex_plan *p, const ur_node *in, int s) {
    if (in->size % (size_t)p->B) return 0;
    for (int i = 0; i < p->n_nodes; i++) {
        const ur__ex_node *e = &p->nodes[i];
        if (e->kind <= EX_CONST && e->kind != EX_INPUT && e->kind != EX_BLOCK && e->slot == s) return 0;
    }
    return 1;
}

/* The gradient buffers of the inputs (zero-filled to add into, NULL for an input that
 * needs none), and for each row input a (B, N) buffer of per-row parts, summed in row
 * order at the end. A buffer made here for its input alone is zero-filled by the
 * parts of backward_rows, each its own rows, just before they add into them (on
 * the threads, and while in cache). 0 (and the tape's error) when out of memory. */
static int input_grads(ur_tape *t, ur_node *y, bw_pass *w) {
    const ur__ex_plan *p = w->p;
    for (int s = 0; s < p->n_slots; s++) {
        int unfilled;
        w->x[s] = y->in[s]->value;
        w->gx[s] = ur__grad_unfilled(t, y->in[s], &unfilled);
        w->rowpart[s] = NULL;
        w->fill_row[s] = 0;
        if (!unfilled) continue;
        if (read_by_rows(p, y->in[s], s)) w->fill_row[s] = y->in[s]->size / (size_t)p->B;
        else ur__vec_zero(y->in[s]->size, w->gx[s]);
    }
    size_t BN = (size_t)p->B * p->N;
    for (int i = 0; i < p->n_nodes; i++) {
        const ur__ex_node *e = &p->nodes[i];
        if (e->kind != EX_ROW || !p->live[i] || !w->gx[e->slot] || w->rowpart[e->slot]) continue;
        if (!(w->rowpart[e->slot] = ur__alloc_real(t, BN))) return 0;
        memset(w->rowpart[e->slot], 0, BN * sizeof(ur_real));
    }
    return 1;
}

void ur__ex_backward(ur_tape *t, ur_node *y) {
    bw_pass w;
    w.p = y->aux;
    w.y = y->value;
    w.gy = y->grad;
    if (!input_grads(t, y, &w)) return;
    const ur__ex_plan *p = w.p;
    int B = p->B, nt = ur__par_threads((double)B * p->N, PAR_MIN);
    if (nt <= 1) {
        backward_rows(&w, 0, B);
    } else {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int k = 0; k < nt; k++) backward_rows(&w, B * k / nt, B * (k + 1) / nt);
    }
    for (int s = 0; s < p->n_slots; s++) /* row inputs: the sum over the batch, in row order */
        if (w.rowpart[s])
            for (int b = 0; b < B; b++)
                for (int n = p->N, j = 0; j < n; j++) w.gx[s][j] += w.rowpart[s][(size_t)b * n + j];
}

