/* rnn_cells.c - the built-in cells (Elman tanh/relu, GRU in both forms, LSTM),
 * defined through the cell interface of ur_cell.h like any user's cell.
 *
 * All four keep PyTorch's parameters: weight_ih (in, G*H), weight_hh (H, G*H),
 * bias_ih and bias_hh (G*H), G gate blocks of width H. Each cell's step math is
 * one small function; the LSTM's and the GRU's gate math is one fused expression
 * (ur_expr_lstm, ur_expr_gru), recorded as one node per step. */
#include "rnn_internal.h"

#include <stdlib.h>

enum { W_IH, W_HH, B_IH, B_HH };        /* parameter indices */
enum { X_BIAS, X_BHH, X_WRZ, X_BRZ, X_WN, X_BN }; /* extra nodes */

#define TORCH_PARAMS(G)                                                                                         \
    {{"weight_ih", 2, {{1, 0}, {0, G}}, UR_CELL_INPUT_WEIGHT},                                                  \
     {"weight_hh", 2, {{0, 1}, {0, G}}, UR_CELL_RECURRENT_WEIGHT},                                              \
     {"bias_ih", 1, {{0, G}, {0, 0}}, UR_CELL_BIAS},                                                            \
     {"bias_hh", 1, {{0, G}, {0, 0}}, UR_CELL_BIAS}}

/* ---- expressions built once per process ----
 * An expression does not depend on sizes (the width comes from the inputs when it
 * is applied), so one copy serves every cell. It is built on first use under a
 * lock (cells may be stepped on several threads) and freed at exit. */

enum { ONCE_MAX = 8 };
static ur_expr **once_slots[ONCE_MAX];
static int once_n;

static void free_once(void) {
    for (int i = 0; i < once_n; i++) {
        ur_expr_free(*once_slots[i]);
        *once_slots[i] = NULL;
    }
    once_n = 0;
}

const ur_expr *ur__expr_once(ur_expr **slot, ur_expr *(*build)(void)) {
    ur_expr *e;
#pragma omp critical(ur__expr_once)
    {
        if (!*slot && once_n < ONCE_MAX && (*slot = build())) {
            if (once_n == 0) atexit(free_once);
            once_slots[once_n++] = slot;
        }
        e = *slot;
    }
    return e;
}

static ur_expr *lstm_expr, *gru_expr;

/* Applies the expression that `build` makes (once) to in[0..n_in); NULL outputs when
 * it cannot be built (out of memory), with the tape's error naming the cell. */
static void apply_once(ur_tape *t, ur_expr **slot, ur_expr *(*build)(void), const char *cell, int n_in,
                       ur_node *const *in, int n_out, ur_node **out) {
    const ur_expr *e = ur__expr_once(slot, build);
    if (!e) {
        for (int k = 0; k < n_out; k++) out[k] = NULL;
        if (!ur_tape_error(t)) ur_tape_fail(t, UR_ERR_NOMEM, "%s step: out of memory building its expression", cell);
        return;
    }
    ur_expr_apply(t, e, n_in, in, out);
}

static ur_node *h_in(ur_tape *t, ur_node *h, ur_node *hdrop) { return hdrop ? ur_mul(t, h, hdrop) : h; }

/* ---- Elman and LSTM: gates = x W_ih + h W_hh + b_ih + b_hh ----
 * In a layer both biases are added to the projection once (extra[X_BIAS] =
 * b_ih + b_hh), so a step is one linear op with its projected rows as a
 * full-size bias, written over them. On its own, a step adds b_hh itself. */

static int bind_summed_bias(ur_tape *t, ur_cell_bound *b) {
    b->extra[X_BIAS] = b->layer ? ur_add(t, b->p[B_IH], b->p[B_HH]) : b->p[B_IH];
    b->extra[X_BHH] = b->layer ? NULL : b->p[B_HH];
    return ur_tape_error(t) == UR_OK;
}

static ur_node *project_summed_bias(ur_tape *t, const ur_cell_bound *b, ur_node *x) {
    return ur_linear(t, x, b->p[W_IH], b->extra[X_BIAS]); /* (N, G*H) */
}

/* gx + h W_hh (+ b_hh when on its own) -> (B, G*H) */
static ur_node *pre_activation(ur_tape *t, const ur_cell_bound *b, ur_node *gx, ur_node *hin) {
    if (b->layer) return ur_linear(t, hin, b->p[W_HH], gx); /* gx holds both biases: a full-size bias */
    return ur_add(t, gx, ur_linear(t, hin, b->p[W_HH], b->extra[X_BHH]));
}

/* h' = tanh(gx + h W_hh) */
static void step_tanh(ur_tape *t, const ur_cell_bound *b, ur_node *gx, ur_node *const *prev, ur_node *hdrop,
                      ur_node **next) {
    next[0] = ur_tanh(t, pre_activation(t, b, gx, h_in(t, prev[0], hdrop)));
}

/* h' = relu(gx + h W_hh) */
static void step_relu(ur_tape *t, const ur_cell_bound *b, ur_node *gx, ur_node *const *prev, ur_node *hdrop,
                      ur_node **next) {
    next[0] = ur_relu(t, pre_activation(t, b, gx, h_in(t, prev[0], hdrop)));
}

/* [i f g o] = gx + h W_hh (one matmul for the four gates);
 * c' = sigmoid(f) c + sigmoid(i) tanh(g), h' = sigmoid(o) tanh(c') */
static void step_lstm(ur_tape *t, const ur_cell_bound *b, ur_node *gx, ur_node *const *prev, ur_node *hdrop,
                      ur_node **next) {
    ur_node *gates = pre_activation(t, b, gx, h_in(t, prev[0], hdrop));
    apply_once(t, &lstm_expr, ur_expr_lstm, "lstm", 2, (ur_node *[]){gates, prev[1]}, 2, next); /* h, c */
}

/* ---- GRU ---- */

static ur_node *project_ih(ur_tape *t, const ur_cell_bound *b, ur_node *x) {
    return ur_linear(t, x, b->p[W_IH], b->p[B_IH]); /* (N, 3H) */
}

/* reset after: gh = h W_hh + b_hh; r, z = sigmoid(gx + gh); n = tanh(gx_n + r gh_n);
 * h' = (1 - z) n + z h, all in one fused expression */
static void step_gru(ur_tape *t, const ur_cell_bound *b, ur_node *gx, ur_node *const *prev, ur_node *hdrop,
                     ur_node **next) {
    ur_node *gh = ur_linear(t, h_in(t, prev[0], hdrop), b->p[W_HH], b->p[B_HH]);
    apply_once(t, &gru_expr, ur_expr_gru, "gru", 3, (ur_node *[]){gx, gh, prev[0]}, 1, next);
}

/* reset before: W_hh and b_hh split once per sequence into their r,z and n columns */
static int bind_reset_before(ur_tape *t, ur_cell_bound *b) {
    int H = b->H;
    b->extra[X_WRZ] = ur_slice(t, b->p[W_HH], 1, 0, 2 * H);
    b->extra[X_BRZ] = ur_slice(t, b->p[B_HH], 0, 0, 2 * H);
    b->extra[X_WN] = ur_slice(t, b->p[W_HH], 1, 2 * H, H);
    b->extra[X_BN] = ur_slice(t, b->p[B_HH], 0, 2 * H, H);
    return ur_tape_error(t) == UR_OK;
}

/* [r z] = sigmoid(gx_rz + h W_hrz + b_hrz); n = tanh(gx_n + (r h) W_hn + b_hn);
 * h' = (1 - z) n + z h */
static void step_gru_reset_before(ur_tape *t, const ur_cell_bound *b, ur_node *gx, ur_node *const *prev,
                                  ur_node *hdrop, ur_node **next) {
    int H = b->H;
    ur_node *h = prev[0], *hin = h_in(t, h, hdrop);
    ur_node *rz = ur_sigmoid(t, ur_add(t, ur_slice(t, gx, 1, 0, 2 * H), ur_linear(t, hin, b->extra[X_WRZ],
                                                                                   b->extra[X_BRZ])));
    ur_node *r = ur_slice(t, rz, 1, 0, H), *z = ur_slice(t, rz, 1, H, H);
    ur_node *rh = ur_mul(t, r, hin); /* the reset gate acts before the matmul */
    ur_node *n = ur_tanh(t, ur_add(t, ur_slice(t, gx, 1, 2 * H, H), ur_linear(t, rh, b->extra[X_WN],
                                                                               b->extra[X_BN])));
    next[0] = ur_add(t, ur_mul(t, ur_one_minus(t, z), n), ur_mul(t, z, h));
}

/* ---- the definitions ---- */

#define BUILTIN(NAME, G, STATES, FORGET, TORCH, BIND, PROJECT, STEP)                             \
    {.name = NAME, .n_states = STATES, .state_names = {"h", "c"}, .n_params = 4, .params = TORCH_PARAMS(G),     \
     .proj = {0, G}, .forget_block = FORGET, .torch = TORCH, .bind = BIND,                                \
     .project = PROJECT, .step = STEP}

/* BUILTIN(name, G, states, forget block, torch, bind, project, step) */
const ur_cell_def ur__cell_tanh = BUILTIN("rnn_tanh", 1, 1, 0, 1, bind_summed_bias, project_summed_bias, step_tanh);
const ur_cell_def ur__cell_relu = BUILTIN("rnn_relu", 1, 1, 0, 1, bind_summed_bias, project_summed_bias, step_relu);
const ur_cell_def ur__cell_gru = BUILTIN("gru", 3, 1, 0, 1, NULL, project_ih, step_gru);
const ur_cell_def ur__cell_gru_reset_before =
    BUILTIN("gru_reset_before", 3, 1, 0, 0, bind_reset_before, project_ih, step_gru_reset_before);
/* the LSTM's forget gate is block 2 (f of i, f, g, o) */
const ur_cell_def ur__cell_lstm = BUILTIN("lstm", 4, 2, 2, 1, bind_summed_bias, project_summed_bias, step_lstm);
