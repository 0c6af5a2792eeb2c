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
 * i, f, g, o as in the LSTM; weight_peep (3H) = [p_i p_f p_o]. */
#include "unroll.h"

enum { W_IH, W_HH, BIAS, PEEP };
enum { P_I, P_F, P_O }; /* extra: the three peephole vectors, sliced once per sequence */

static int peep_bind(ur_tape *t, ur_cell_bound *b) {
    for (int k = 0; k < 3; k++) b->extra[k] = ur_slice(t, b->p[PEEP], 0, k * b->H, b->H); /* (H) */
    return ur_tape_error(t) == UR_OK;
}

static ur_node *peep_project(ur_tape *t, const ur_cell_bound *b, ur_node *x) {
    return ur_linear(t, x, b->p[W_IH], b->p[BIAS]); /* (N, 4H) */
}

static void peep_step(ur_tape *t, const ur_cell_bound *b, ur_node *gx, ur_node *const *prev, ur_node *hdrop,
                      ur_node **next) {
    int H = b->H;
    ur_node *c = prev[1], *hin = hdrop ? ur_mul(t, prev[0], hdrop) : prev[0];
    /* inside a layer gx is this step's rows of the projection, a full-size bias */
    ur_node *a = b->layer ? ur_linear(t, hin, b->p[W_HH], gx) : ur_add(t, gx, ur_matmul(t, hin, b->p[W_HH], 0, 0));
    ur_node *i = ur_sigmoid(t, ur_add(t, ur_slice(t, a, 1, 0, H), ur_mul(t, c, b->extra[P_I])));
    ur_node *f = ur_sigmoid(t, ur_add(t, ur_slice(t, a, 1, H, H), ur_mul(t, c, b->extra[P_F])));
    ur_node *g = ur_tanh(t, ur_slice(t, a, 1, 2 * H, H));
    ur_node *c2 = ur_add(t, ur_mul(t, f, c), ur_mul(t, i, g));
    ur_node *o = ur_sigmoid(t, ur_add(t, ur_slice(t, a, 1, 3 * H, H), ur_mul(t, c2, b->extra[P_O])));
    next[1] = c2;
    next[0] = ur_mul(t, o, ur_tanh(t, c2));
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
