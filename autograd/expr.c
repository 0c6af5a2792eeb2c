/* expr.c - building fused pointwise expressions (ur_expr.h): the node list, its
 * sticky errors, and the gate math of the library's cells written as expressions.
 * Evaluation, the derived backward and the tape node are in expr_eval.c. */
#include "expr_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

ur_expr *ur_expr_new(const char *name) {
    ur_expr *e = ur_calloc(1, sizeof *e);
    if (!e) {
        ur_set_error(UR_ERR_NOMEM, "ur_expr_new: out of memory");
        return NULL;
    }
    snprintf(e->name, sizeof e->name, "%s", name ? name : "expr");
    return e;
}

void ur_expr_free(ur_expr *e) {
    if (!e) return;
    ur_free(e->nodes);
    ur_free(e->out);
    ur_free(e);
}

ur_status ur_expr_error(const ur_expr *e) { return e ? e->err : UR_ERR_ARG; }
const char *ur_expr_errmsg(const ur_expr *e) { return e ? e->errmsg : "expression is NULL"; }
int ur_expr_input_count(const ur_expr *e) { return e ? e->n_slots : 0; }
int ur_expr_output_count(const ur_expr *e) { return e ? e->n_out : 0; }
int ur_expr_node_count(const ur_expr *e) { return e ? e->n_nodes : 0; }

/* Records the first error of e (and in ur_last_error); returns -1. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int fail(ur_expr *e, ur_status s, const char *fmt, ...) {
    if (e->err == UR_OK) {
        char msg[200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(e->errmsg, sizeof e->errmsg, "expr '%s': %s", e->name, msg);
        e->err = s;
        ur_set_error(s, "%s", e->errmsg);
    }
    return -1;
}

/* Appends a node; its id, or -1 (out of memory). */
static int push(ur_expr *e, ur__ex_node n, const char *what) {
    if (e->n_nodes == e->cap_nodes) {
        int cap = e->cap_nodes ? 2 * e->cap_nodes : 16;
        ur__ex_node *v = ur_realloc(e->nodes, (size_t)e->cap_nodes * sizeof *v, (size_t)cap * sizeof *v);
        if (!v) return fail(e, UR_ERR_NOMEM, "%s: out of memory", what);
        e->nodes = v;
        e->cap_nodes = cap;
    }
    e->nodes[e->n_nodes] = n;
    return e->n_nodes++;
}

static const char *slot_use(const ur__ex_node *n, char *buf, size_t size) {
    switch (n->kind) {
    case EX_INPUT: return "a full (B, N) input";
    case EX_BLOCK: snprintf(buf, size, "blocks of %d", n->nb); return buf;
    case EX_ROW: return "a row (N)";
    default: return "a column (B, 1)";
    }
}

/* A leaf reading `slot`: each slot is read one way (full, blocks of one count, row,
 * column) so that it has one expected shape. */
static int leaf(ur_expr *e, ur__ex_kind kind, int slot, int k, int nb, const char *what) {
    if (!e) return ur_set_error(UR_ERR_ARG, "%s: expression is NULL", what), -1;
    if (e->err) return -1;
    if (slot < 0 || slot >= 64) return fail(e, UR_ERR_ARG, "%s: slot %d is outside 0..63", what, slot);
    if (kind == EX_BLOCK && (nb < 1 || k < 0 || k >= nb))
        return fail(e, UR_ERR_ARG, "%s: block %d of %d does not exist (0 <= k < n_blocks)", what, k, nb);
    for (int i = 0; i < e->n_nodes; i++) {
        const ur__ex_node *o = &e->nodes[i];
        if (o->kind > EX_COL || o->slot != slot) continue;
        if (o->kind != kind || (kind == EX_BLOCK && o->nb != nb)) {
            char b1[32], b2[32];
            ur__ex_node n = {kind, -1, -1, slot, k, nb, 0};
            return fail(e, UR_ERR_ARG, "%s: slot %d is already read as %s, here as %s", what, slot,
                        slot_use(o, b1, sizeof b1), slot_use(&n, b2, sizeof b2));
        }
    }
    int id = push(e, (ur__ex_node){kind, -1, -1, slot, k, nb, 0}, what);
    if (id >= 0 && slot >= e->n_slots) e->n_slots = slot + 1;
    return id;
}

int ur_expr_input(ur_expr *e, int slot) { return leaf(e, EX_INPUT, slot, 0, 1, "ur_expr_input"); }
int ur_expr_input_block(ur_expr *e, int slot, int k, int n_blocks) {
    return leaf(e, EX_BLOCK, slot, k, n_blocks, "ur_expr_input_block");
}
int ur_expr_input_row(ur_expr *e, int slot) { return leaf(e, EX_ROW, slot, 0, 1, "ur_expr_input_row"); }
int ur_expr_input_col(ur_expr *e, int slot) { return leaf(e, EX_COL, slot, 0, 1, "ur_expr_input_col"); }

int ur_expr_const(ur_expr *e, ur_real v) {
    if (!e) return ur_set_error(UR_ERR_ARG, "ur_expr_const: expression is NULL"), -1;
    if (e->err) return -1;
    return push(e, (ur__ex_node){EX_CONST, -1, -1, -1, 0, 0, v}, "ur_expr_const");
}

static int node(ur_expr *e, ur__ex_kind kind, int a, int b, const char *what) {
    if (!e) return ur_set_error(UR_ERR_ARG, "%s: expression is NULL", what), -1;
    if (e->err) return -1;
    int ops[2] = {a, b};
    for (int i = 0; i < ur__ex_arity(kind); i++)
        if (ops[i] < 0 || ops[i] >= e->n_nodes)
            return fail(e, UR_ERR_ARG, "%s: operand %d is node %d, the expression has nodes 0..%d", what, i,
                        ops[i], e->n_nodes - 1);
    return push(e, (ur__ex_node){kind, a, ur__ex_arity(kind) == 2 ? b : -1, -1, 0, 0, 0}, what);
}

int ur_expr_add(ur_expr *e, int a, int b) { return node(e, EX_ADD, a, b, "ur_expr_add"); }
int ur_expr_sub(ur_expr *e, int a, int b) { return node(e, EX_SUB, a, b, "ur_expr_sub"); }
int ur_expr_mul(ur_expr *e, int a, int b) { return node(e, EX_MUL, a, b, "ur_expr_mul"); }
int ur_expr_div(ur_expr *e, int a, int b) { return node(e, EX_DIV, a, b, "ur_expr_div"); }
int ur_expr_sigmoid(ur_expr *e, int a) { return node(e, EX_SIGMOID, a, -1, "ur_expr_sigmoid"); }
int ur_expr_tanh(ur_expr *e, int a) { return node(e, EX_TANH, a, -1, "ur_expr_tanh"); }
int ur_expr_relu(ur_expr *e, int a) { return node(e, EX_RELU, a, -1, "ur_expr_relu"); }
int ur_expr_exp(ur_expr *e, int a) { return node(e, EX_EXP, a, -1, "ur_expr_exp"); }
int ur_expr_log(ur_expr *e, int a) { return node(e, EX_LOG, a, -1, "ur_expr_log"); }
int ur_expr_one_minus(ur_expr *e, int a) { return node(e, EX_ONE_MINUS, a, -1, "ur_expr_one_minus"); }
int ur_expr_neg(ur_expr *e, int a) { return node(e, EX_NEG, a, -1, "ur_expr_neg"); }

int ur_expr_output(ur_expr *e, int id) {
    if (!e) return ur_set_error(UR_ERR_ARG, "ur_expr_output: expression is NULL"), -1;
    if (e->err) return -1;
    if (id < 0 || id >= e->n_nodes)
        return fail(e, UR_ERR_ARG, "ur_expr_output: node %d does not exist (nodes 0..%d)", id, e->n_nodes - 1);
    if (e->n_out == e->cap_out) {
        int cap = e->cap_out ? 2 * e->cap_out : 4;
        int *v = ur_realloc(e->out, (size_t)e->cap_out * sizeof *v, (size_t)cap * sizeof *v);
        if (!v) return fail(e, UR_ERR_NOMEM, "ur_expr_output: out of memory");
        e->out = v;
        e->cap_out = cap;
    }
    e->out[e->n_out] = id;
    return e->n_out++;
}

/* ---- the gate math of the library's cells ---- */

/* Returns e, or NULL (and frees it) when building failed: out of memory. */
static ur_expr *finish(ur_expr *e) {
    if (e && e->err) {
        ur_expr_free(e);
        return NULL;
    }
    return e;
}

/* c = sigmoid(f) c_prev + sigmoid(i) tanh(g), h = sigmoid(o) tanh(c) */
ur_expr *ur_expr_lstm(void) {
    ur_expr *e = ur_expr_new("lstm");
    if (!e) return NULL;
    int i = ur_expr_sigmoid(e, ur_expr_input_block(e, 0, 0, 4));
    int f = ur_expr_sigmoid(e, ur_expr_input_block(e, 0, 1, 4));
    int g = ur_expr_tanh(e, ur_expr_input_block(e, 0, 2, 4));
    int o = ur_expr_sigmoid(e, ur_expr_input_block(e, 0, 3, 4));
    int c = ur_expr_add(e, ur_expr_mul(e, f, ur_expr_input(e, 1)), ur_expr_mul(e, i, g));
    ur_expr_output(e, ur_expr_mul(e, o, ur_expr_tanh(e, c)));
    ur_expr_output(e, c);
    return finish(e);
}

/* r = sigmoid(gx_r + gh_r), z = sigmoid(gx_z + gh_z), n = tanh(gx_n + r gh_n),
 * h = (1 - z) n + z h_prev, computed as n + z (h_prev - n) (as PyTorch does): three
 * nodes instead of four, and no one-minus to make again in backward */
ur_expr *ur_expr_gru(void) {
    ur_expr *e = ur_expr_new("gru");
    if (!e) return NULL;
    int r = ur_expr_sigmoid(e, ur_expr_add(e, ur_expr_input_block(e, 0, 0, 3), ur_expr_input_block(e, 1, 0, 3)));
    int z = ur_expr_sigmoid(e, ur_expr_add(e, ur_expr_input_block(e, 0, 1, 3), ur_expr_input_block(e, 1, 1, 3)));
    int hn = ur_expr_mul(e, r, ur_expr_input_block(e, 1, 2, 3));
    int n = ur_expr_tanh(e, ur_expr_add(e, ur_expr_input_block(e, 0, 2, 3), hn));
    int h = ur_expr_add(e, n, ur_expr_mul(e, z, ur_expr_sub(e, ur_expr_input(e, 2), n)));
    ur_expr_output(e, h);
    return finish(e);
}

/* i and f see c_prev, o sees the new c, each through a peephole weight vector. */
ur_expr *ur_expr_peephole_lstm(void) {
    ur_expr *e = ur_expr_new("peephole_lstm");
    if (!e) return NULL;
    int cp = ur_expr_input(e, 1);
    int i = ur_expr_sigmoid(e, ur_expr_add(e, ur_expr_input_block(e, 0, 0, 4), ur_expr_mul(e, cp, ur_expr_input_row(e, 2))));
    int f = ur_expr_sigmoid(e, ur_expr_add(e, ur_expr_input_block(e, 0, 1, 4), ur_expr_mul(e, cp, ur_expr_input_row(e, 3))));
    int g = ur_expr_tanh(e, ur_expr_input_block(e, 0, 2, 4));
    int c = ur_expr_add(e, ur_expr_mul(e, f, cp), ur_expr_mul(e, i, g));
    int o = ur_expr_sigmoid(e, ur_expr_add(e, ur_expr_input_block(e, 0, 3, 4), ur_expr_mul(e, c, ur_expr_input_row(e, 4))));
    ur_expr_output(e, ur_expr_mul(e, o, ur_expr_tanh(e, c)));
    ur_expr_output(e, c);
    return finish(e);
}
