/* expr_apply.c - recording a fused pointwise expression on the tape: binding the
 * input slots to tape nodes (shapes checked against the way each slot is read),
 * copying the expression into the recording, the forward pass, and the outputs
 * as views of the one node. Then the backward rule, and below it the op's
 * gradient-check cases. */
#include "expr_internal.h"

#include <stdio.h>
#include <string.h>

enum { MAX_SLOTS = UR_EX_MAX_SLOTS };

/* The batch B and width N given by the first leaf that tells them; -1 if none. */
static void infer_bn(const ur_expr *e, ur_node *const *in, int *B, int *N) {
    *B = *N = -1;
    for (int i = 0; i < e->n_nodes; i++) {
        const ur__ex_node *n = &e->nodes[i];
        if (n->kind > EX_COL) continue;
        const ur_shape *s = &in[n->slot]->shape;
        int two = s->ndim == 2;
        if (n->kind == EX_INPUT && two) {
            if (*B < 0) *B = s->dims[0];
            if (*N < 0) *N = s->dims[1];
        } else if (n->kind == EX_BLOCK && two && s->dims[1] % n->nb == 0) {
            if (*B < 0) *B = s->dims[0];
            if (*N < 0) *N = s->dims[1] / n->nb;
        } else if (n->kind == EX_ROW && *N < 0 && (s->ndim == 1 || (two && s->dims[0] == 1))) {
            *N = s->dims[s->ndim - 1];
        } else if (n->kind == EX_COL && two && *B < 0) {
            *B = s->dims[0];
        }
    }
}

/* Checks every slot's shape against the way it is read; 0 (and the tape's error) if
 * one does not fit. */
static int check_shapes(ur_tape *t, const char *op, const ur_expr *e, int n_in, ur_node *const *in, int B, int N) {
    for (int i = 0; i < e->n_nodes; i++) {
        const ur__ex_node *n = &e->nodes[i];
        if (n->kind > EX_COL) continue;
        const ur_shape *s = &in[n->slot]->shape;
        int ok, d0 = B, d1 = N;
        char what[48], given[64];
        switch (n->kind) {
        case EX_INPUT: snprintf(what, sizeof what, "a full input"); break;
        case EX_BLOCK: snprintf(what, sizeof what, "%d blocks of width N = %d", n->nb, N), d1 = n->nb * N; break;
        case EX_ROW: snprintf(what, sizeof what, "a row"), d0 = 1; break;
        default: snprintf(what, sizeof what, "a column"), d1 = 1; break;
        }
        if (n->kind == EX_ROW) ok = (s->ndim == 1 && s->dims[0] == N) || (s->ndim == 2 && s->dims[0] == 1 && s->dims[1] == N);
        else ok = s->ndim == 2 && s->dims[0] == d0 && s->dims[1] == d1;
        if (!ok) {
            ur_shape_str(s, given, sizeof given);
            if (n->kind == EX_ROW)
                ur__op_error(t, UR_ERR_SHAPE, op, n_in, in, "input %d is read as a row: expected (%d) or (1, %d), given %s",
                             n->slot, N, N, given);
            else
                ur__op_error(t, UR_ERR_SHAPE, op, n_in, in, "input %d is read as %s: expected (%d, %d), given %s",
                             n->slot, what, d0, d1, given);
            return 0;
        }
    }
    return 1;
}

/* The checks common to every application; 0 (and the tape's error) on failure. */
static int check_apply(ur_tape *t, const char *op, const ur_expr *e, int n_in, ur_node *const *in) {
    if (!e) return ur_tape_fail(t, UR_ERR_ARG, "expr: the expression is NULL"), 0;
    if (e->err) return ur_tape_fail(t, e->err, "%s (applying an expression in error)", e->errmsg), 0;
    if (e->n_out == 0) return ur_tape_fail(t, UR_ERR_ARG, "%s: the expression has no output", op), 0;
    if (!in) return ur_tape_fail(t, UR_ERR_ARG, "%s: the input array is NULL", op), 0;
    if (n_in != e->n_slots)
        return ur_tape_fail(t, UR_ERR_ARG, "%s: expects %d inputs (its slots), given %d", op, e->n_slots, n_in), 0;
    if (!ur__check(t, op, n_in, in)) return 0;
    unsigned char used[MAX_SLOTS] = {0};
    for (int i = 0; i < e->n_nodes; i++)
        if (e->nodes[i].kind <= EX_COL) used[e->nodes[i].slot] = 1;
    for (int s = 0; s < n_in; s++)
        if (!used[s]) return ur_tape_fail(t, UR_ERR_ARG, "%s: input %d is bound, but no node reads slot %d", op, s, s), 0;
    return 1;
}

/* The expression's one node: (n_out B, N), output k in rows k B .. (k+1) B. */
ur_node *ur__expr_record(ur_tape *t, const ur_expr *e, int n_in, ur_node *const *in) {
    if (!t) return ur_set_error(UR_ERR_ARG, "expr: tape is NULL"), NULL;
    if (t->err) return NULL;
    char op[64];
    snprintf(op, sizeof op, "expr '%s'", e ? e->name : "?");
    if (!check_apply(t, op, e, n_in, in)) return NULL;
    int B, N;
    infer_bn(e, in, &B, &N);
    if (N < 0) {
        ur__op_error(t, UR_ERR_SHAPE, op, n_in, in, "no input tells the width N (a full input must be (B, N), "
                     "a block input (B, n_blocks N), a row (N))");
        return NULL;
    }
    if (B < 0) B = 1; /* only rows: one row out */
    if (!check_shapes(t, op, e, n_in, in, B, N)) return NULL;
    ur_shape s = {2, {e->n_out * B, N}};
    ur_node *y = ur__node_new(t, UR_OP_EXPR, &s, n_in, in);
    if (!y) return NULL;
    ur__ex_plan *p = ur__expr_plan(t, op, e, B, N, y->requires_grad);
    if (!p) return NULL;
    y->aux = p;
    y->label = p->name;
    const ur_real *x[MAX_SLOTS];
    for (int i = 0; i < n_in; i++) x[i] = in[i]->value;
    ur__expr_forward(p, x, y->value);
    return ur__node_done(t, y);
}

ur_status ur_expr_apply(ur_tape *t, const ur_expr *e, int n_in, ur_node *const *in, ur_node **out) {
    int n_out = e ? e->n_out : 0;
    for (int k = 0; out && k < n_out; k++) out[k] = NULL;
    if (t && !t->err && !out) return ur_tape_fail(t, UR_ERR_ARG, "expr: the output array is NULL");
    ur_node *y = ur__expr_record(t, e, n_in, in);
    if (!y) return t ? (t->err ? t->err : UR_ERR_ARG) : UR_ERR_ARG;
    int B = y->shape.dims[0] / n_out;
    for (int k = 0; k < n_out; k++) {
        out[k] = n_out == 1 ? y : ur_slice(t, y, 0, k * B, B);
        if (!out[k]) {
            for (int i = 0; i < n_out; i++) out[i] = NULL;
            return t->err;
        }
    }
    return UR_OK;
}

/* The op's backward rule: derived from the expression (expr_eval.c). */
void ur__backward_expr(ur_tape *t, ur_node *y) { ur__ex_backward(t, y); }

/* ---- gradient-check cases: the library's expressions and one of every leaf ---- */

static ur_node *run(ur_tape *t, ur_expr *e, int n_in, ur_node **p) {
    ur_node *y = ur__expr_record(t, e, n_in, p);
    ur_expr_free(e);
    return y;
}

static ur_node *c_lstm(ur_tape *t, ur_node **p) { return run(t, ur_expr_lstm(), 2, p); }
static ur_node *c_gru(ur_tape *t, ur_node **p) { return run(t, ur_expr_gru(), 3, p); }
static ur_node *c_peephole(ur_tape *t, ur_node **p) {
    /* one peephole vector for all three gates: the case has at most 4 parameters */
    return run(t, ur_expr_peephole_lstm(), 5, (ur_node *[5]){p[0], p[1], p[2], p[2], p[2]});
}

/* Every leaf and rule: softplus(block) / (1 + exp(col)) * row - relu(full) ... */
static ur_node *c_leaves(ur_tape *t, ur_node **p) {
    ur_expr *e = ur_expr_new("leaves");
    int blk = ur_expr_input_block(e, 0, 1, 2), full = ur_expr_input(e, 1);
    int row = ur_expr_input_row(e, 2), col = ur_expr_input_col(e, 3), one = ur_expr_const(e, 1);
    int sp = ur_expr_log(e, ur_expr_add(e, one, ur_expr_exp(e, blk)));
    int q = ur_expr_div(e, sp, ur_expr_add(e, one, ur_expr_exp(e, col)));
    int r = ur_expr_sub(e, ur_expr_mul(e, q, row), ur_expr_relu(e, full));
    int u = ur_expr_mul(e, ur_expr_neg(e, ur_expr_tanh(e, r)), ur_expr_one_minus(e, ur_expr_sigmoid(e, blk)));
    ur_expr_output(e, u);
    ur_expr_output(e, ur_expr_mul(e, full, full));
    return run(t, e, 4, p);
}

UR_CASES(EXPR,
         {"expr/lstm", 1052, 2, {2, 2}, {{3, 8}, {3, 2}}, 0, c_lstm},
         {"expr/gru", 1053, 3, {2, 2, 2}, {{3, 6}, {3, 6}, {3, 2}}, 0, c_gru},
         {"expr/peephole_lstm", 1054, 3, {2, 2, 1}, {{3, 8}, {3, 2}, {2}}, 0, c_peephole},
         {"expr/leaves", 1055, 4, {2, 2, 2, 2}, {{3, 6}, {3, 3}, {1, 3}, {3, 1}}, 0, c_leaves});
