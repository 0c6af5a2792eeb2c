/* cell_peephole.c - the LSTM with peephole connections (Gers & Schmidhuber 2002),
 * written only against the public cell interface (ur_cell.h).
 *
 * The gates also see the cell state through diagonal weights (vectors p_i, p_f,
 * p_o): the input and forget gates see c_{t-1}, the output gate sees c_t.
 *   [a_i a_f a_g a_o] = x W_ih + b + h U                 (B, 4H), one matmul
 *   i = sigmoid(a_i + p_i * c),  f = sigmoid(a_f + p_f * c),  g = tanh(a_g)
 *   c' = f * c + i * g
 *   o = sigmoid(a_o + p_o * c'),  h' = o * tanh(c')
 * Parameters: weight_ih (in, 4H), weight_hh U (H, 4H), bias (4H), gate order
 * i, f, g, o as in the LSTM; weight_peep (3H) = [p_i p_f p_o].
 * The gate math after the matmul is one fused expression (ur_expr_peephole_lstm):
 * one node per step, its backward derived by the library. */
#include "unroll.h"

#include <stdlib.h>

enum { W_IH, W_HH, BIAS, PEEP };
enum { P_I, P_F, P_O }; /* extra: the three peephole vectors, sliced once per sequence */

static int peep_bind(ur_tape *t, ur_cell_bound *b) {
    for (int k = 0; k < 3; k++) b->extra[k] = ur_slice(t, b->p[PEEP], 0, k * b->H, b->H); /* (H) */
    return ur_tape_error(t) == UR_OK;
}

/* The expression does not depend on sizes: one copy, built on first use (under a
 * lock: cells may be stepped on several threads) and freed at exit. */
static ur_expr *peep_expr;

static void peep_expr_free(void) {
    ur_expr_free(peep_expr);
    peep_expr = NULL;
}

static const ur_expr *peep_expr_get(void) {
    ur_expr *e;
#pragma omp critical(peephole_expr)
    {
        if (!peep_expr && (peep_expr = ur_expr_peephole_lstm())) atexit(peep_expr_free);
        e = peep_expr;
    }
    return e;
}

static ur_node *peep_project(ur_tape *t, const ur_cell_bound *b, ur_node *x) {
    return ur_linear(t, x, b->p[W_IH], b->p[BIAS]); /* (N, 4H) */
}

static void peep_step(ur_tape *t, const ur_cell_bound *b, ur_node *gx, ur_node *const *prev, ur_node *hdrop,
                      ur_node **next) {
    ur_node *hin = hdrop ? ur_mul(t, prev[0], hdrop) : prev[0];
    /* inside a layer gx is this step's rows of the projection, a full-size bias */
    ur_node *a = b->layer ? ur_linear(t, hin, b->p[W_HH], gx) : ur_add(t, gx, ur_matmul(t, hin, b->p[W_HH], 0, 0));
    const ur_expr *e = peep_expr_get();
    if (!e) {
        next[0] = next[1] = NULL;
        if (!ur_tape_error(t)) ur_tape_fail(t, UR_ERR_NOMEM, "peephole_lstm step: out of memory building its expression");
        return;
    }
    /* slots: a (B, 4H), c (B, H), p_i, p_f, p_o (H); outputs h, c' */
    ur_expr_apply(t, e, 5, (ur_node *[]){a, prev[1], b->extra[P_I], b->extra[P_F], b->extra[P_O]}, next);
}

const ur_cell_def ur__cell_peephole_lstm = {
    .name = "peephole_lstm",
    .n_states = 2,
    .state_names = {"h", "c"},
    .n_params = 4,
    .params = {{"weight_ih", 2, {{1, 0}, {0, 4}}, UR_CELL_INPUT_WEIGHT},
               {"weight_hh", 2, {{0, 1}, {0, 4}}, UR_CELL_RECURRENT_WEIGHT},
               {"bias", 1, {{0, 4}}, UR_CELL_BIAS},
               {"weight_peep", 1, {{0, 3}}, UR_CELL_VECTOR}},
    .proj = {0, 4},
    .forget_block = 2, /* f of i, f, g, o */
    .bind = peep_bind,
    .project = peep_project,
    .step = peep_step,
};
