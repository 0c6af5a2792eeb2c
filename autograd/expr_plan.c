/* expr_plan.c - what backward needs from an expression applied at (B, N), decided
 * once per application: the nodes that matter (live), the values backward reads
 * (need), the ones forward keeps for it (outputs, saved transcendentals), how each
 * adjoint starts, and the chunk width. The plan is a copy in the tape's arena. */
#include "expr_internal.h"

#include <string.h>

static void *copy(ur_tape *t, const void *src, size_t bytes) {
    void *d = ur__alloc(t, bytes ? bytes : 1);
    if (d && bytes) memcpy(d, src, bytes);
    return d;
}

/* live: some output depends on the node. first_out: the first output naming it.
 * need: backward reads its value (a rule uses it, or a recomputed node is made
 * from it). save_at: a needed transcendental that is not an output, when saving. */
static void analyse(const ur_expr *e, int may_save, unsigned char *live, unsigned char *need, int *first_out,
                    int *save_at, int *n_saved) {
    int n = e->n_nodes;
    memset(live, 0, (size_t)n);
    memset(need, 0, (size_t)n);
    for (int i = 0; i < n; i++) first_out[i] = -1;
    for (int k = e->n_out - 1; k >= 0; k--) live[e->out[k]] = 1, first_out[e->out[k]] = k;
    for (int i = n - 1; i >= 0; i--) { /* operands come before their nodes */
        const ur__ex_node *d = &e->nodes[i];
        if (!live[i] || d->kind <= EX_CONST) continue;
        live[d->a] = 1;
        if (d->b >= 0) live[d->b] = 1;
        int u = ur__ex_uses(d->kind);
        if (u & USE_Y) need[i] = 1;
        if (u & USE_A) need[d->a] = 1;
        if (u & USE_B) need[d->b] = 1;
    }
    *n_saved = 0;
    for (int i = n - 1; i >= 0; i--) {
        const ur__ex_node *d = &e->nodes[i];
        save_at[i] = -1;
        if (!need[i] || d->kind <= EX_CONST || first_out[i] >= 0) continue;
        if (may_save && ur__ex_worth_saving(d->kind)) {
            save_at[i] = (*n_saved)++;
            continue;
        }
        need[d->a] = 1; /* recomputed: its operands are needed */
        if (d->b >= 0) need[d->b] = 1;
    }
}

/* How each adjoint starts (init) and which contributions assign (set): walking
 * the nodes in reverse as backward does, the first contribution to a buffer of the
 * node's own (an op that is not an output, a column, a constant) assigns, so the
 * buffer needs no zeroing. An output starts as its gradient: a copy, or the
 * gradient itself when nothing else adds to it. Inputs' gradients only get adds. */
static void plan_adjoints(const ur_expr *e, const unsigned char *live, const int *first_out, unsigned char *init,
                          unsigned char *set, unsigned char *seen) {
    int n = e->n_nodes;
    memset(init, ADJ_ZERO, (size_t)n);
    memset(set, 0, (size_t)n);
    memset(seen, 0, (size_t)n);
    for (int k = 0; k < e->n_out; k++) {
        int i = e->out[k];
        if (e->nodes[i].kind > EX_CONST) init[i] = seen[i] ? ADJ_COPY : ADJ_GY; /* listed twice: the second adds */
        seen[i] = 1; /* a leaf output is added to its adjoint before the walk */
    }
    for (int i = 0; i < n; i++) /* read by another node too: a copy to add into */
        for (int o = 0; live[i] && e->nodes[i].kind > EX_CONST && o < 2; o++) {
            int k = o ? e->nodes[i].b : e->nodes[i].a;
            if (k >= 0 && first_out[k] >= 0 && e->nodes[k].kind > EX_CONST) init[k] = ADJ_COPY;
        }
    for (int i = n - 1; i >= 0; i--) {
        const ur__ex_node *d = &e->nodes[i];
        if (!live[i] || d->kind <= EX_CONST) continue;
        for (int o = 0; o < 2; o++) {
            int k = o ? d->b : d->a;
            if (k < 0 || seen[k]) continue;
            seen[k] = 1;
            ur__ex_kind kk = e->nodes[k].kind;
            if (kk > EX_CONST || kk == EX_COL || kk == EX_CONST) set[i] |= (unsigned char)(1 << o), init[k] = ADJ_SET;
        }
    }
}

/* An add passes its adjoint on unchanged to both operands, a sub to its first: when
 * such an operand is an op node read by nothing else and no output, its adjoint
 * can be this node's buffer itself (only read from then on), which saves a copy
 * loop per operand and chunk. */
static void plan_alias(const ur_expr *e, const unsigned char *live, const int *first_out, unsigned char *alias,
                       unsigned char *uses) {
    int n = e->n_nodes;
    memset(alias, 0, (size_t)n);
    memset(uses, 0, (size_t)n);
    for (int i = 0; i < n; i++) {
        const ur__ex_node *d = &e->nodes[i];
        if (!live[i] || d->kind <= EX_CONST) continue;
        if (uses[d->a] < 255) uses[d->a]++;
        if (d->b >= 0 && uses[d->b] < 255) uses[d->b]++;
    }
    for (int i = 0; i < n; i++) {
        const ur__ex_node *d = &e->nodes[i];
        if (!live[i] || (d->kind != EX_ADD && d->kind != EX_SUB)) continue;
        for (int o = 0; o < (d->kind == EX_ADD ? 2 : 1); o++) {
            int k = o ? d->b : d->a;
            if (e->nodes[k].kind > EX_CONST && uses[k] == 1 && first_out[k] < 0) alias[i] |= (unsigned char)(1 << o);
        }
    }
}

ur__ex_plan *ur__expr_plan(ur_tape *t, const char *op, const ur_expr *e, int B, int N, int save) {
    if (e->n_nodes > UR_EX_MAX_NODES) {
        ur_tape_fail(t, UR_ERR_ARG, "%s: %d nodes, at most %d can be fused", op, e->n_nodes, UR_EX_MAX_NODES);
        return NULL;
    }
    ur__ex_plan *p = ur__alloc(t, sizeof *p);
    size_t n = (size_t)e->n_nodes;
    unsigned char *live = ur__alloc(t, n), *need = ur__alloc(t, n), *init = ur__alloc(t, n), *set = ur__alloc(t, n);
    unsigned char *seen = ur__alloc(t, n), *alias = ur__alloc(t, n);
    int *save_at = ur__alloc(t, n * sizeof *save_at), *first_out = ur__alloc(t, n * sizeof *first_out);
    if (!p || !live || !need || !init || !set || !seen || !alias || !save_at || !first_out) return NULL;
    p->name = copy(t, e->name, strlen(e->name) + 1);
    p->nodes = copy(t, e->nodes, n * sizeof *e->nodes);
    p->out = copy(t, e->out, (size_t)e->n_out * sizeof *e->out);
    if (!p->name || !p->nodes || !p->out) return NULL;
    p->n_nodes = e->n_nodes, p->n_out = e->n_out, p->n_slots = e->n_slots;
    p->B = B, p->N = N;
    /* a chunk's values and adjoints of every node fit the stack buffer */
    p->chunk = UR_EX_SCRATCH / (2 * e->n_nodes) / 8 * 8;
    if (p->chunk > UR_EX_CHUNK) p->chunk = UR_EX_CHUNK;
    /* saved only for small outputs (see the top of the file); else recomputed */
    analyse(e, save && (size_t)B * N <= UR_EX_SAVE_MAX, live, need, first_out, save_at, &p->n_saved);
    plan_adjoints(e, live, first_out, init, set, seen);
    plan_alias(e, live, first_out, alias, seen); /* seen: reused for the use counts */
    p->live = live, p->need = need, p->first_out = first_out, p->save_at = save_at;
    p->init = init, p->set = set, p->alias = alias;
    p->saved = NULL;
    if (p->n_saved && !(p->saved = ur__alloc_real(t, (size_t)B * N * p->n_saved))) return NULL;
    return p;
}
