/* cell_lnlstm.c - the layer-normalised LSTM (Ba et al. 2016), written only against
 * the public cell interface (ur_cell.h) and the public ops, as a user would write it.
 *
 * The input and recurrent products are normalised separately, and so is the cell
 * state before the output tanh (LN over the last axis, ur_layer_norm):
 *   [a_i a_f a_g a_o] = LN(x W_ih; g_ih) + LN(h W_hh; g_hh) + b     (B, 4H)
 *   i, f, o = sigmoid(a_i, a_f, a_o),  g = tanh(a_g)
 *   c' = f * c + i * g
 *   h' = o * tanh(LN(c'; g_c, b_c))
 * Parameters: weight_ih (in, 4H), weight_hh (H, 4H), bias b (4H), gate order
 * i, f, g, o as in the LSTM; ln_gain_ih (4H), ln_gain_hh (4H), ln_gain_c (H),
 * ln_bias_c (H). The LN of the two products has no bias of its own: b is theirs.
 * Each gain is stored as its offset from 1 (g = 1 + ln_gain_*), so that every init
 * scheme, which draws vectors near 0, starts the gains near 1. */
#include "unroll.h"

enum { W_IH, W_HH, BIAS, G_IH, G_HH, G_C, B_C };
enum { X_G_IH, X_G_HH, X_G_C }; /* extra: the three gains 1 + offset, made once per sequence */

#define LN_EPS ((ur_real)1e-5)

static int lnlstm_bind(ur_tape *t, ur_cell_bound *b) {
    for (int k = 0; k < 3; k++) b->extra[X_G_IH + k] = ur_add_scalar(t, b->p[G_IH + k], 1);
    return ur_tape_error(t) == UR_OK;
}

/* Row-wise, so the whole sequence is normalised at once: x (N, in) -> (N, 4H). */
static ur_node *lnlstm_project(ur_tape *t, const ur_cell_bound *b, ur_node *x) {
    return ur_layer_norm(t, ur_matmul(t, x, b->p[W_IH], 0, 0), b->extra[X_G_IH], b->p[BIAS], LN_EPS);
}

static void lnlstm_step(ur_tape *t, const ur_cell_bound *b, ur_node *gx, ur_node *const *prev, ur_node *hdrop,
                        ur_node **next) {
    int H = b->H;
    ur_node *c = prev[1], *hin = hdrop ? ur_mul(t, prev[0], hdrop) : prev[0];
    ur_node *rec = ur_layer_norm(t, ur_matmul(t, hin, b->p[W_HH], 0, 0), b->extra[X_G_HH], NULL, LN_EPS);
    ur_node *a = ur_add(t, gx, rec); /* (B, 4H) */
    ur_node *i = ur_sigmoid(t, ur_slice(t, a, 1, 0, H));
    ur_node *f = ur_sigmoid(t, ur_slice(t, a, 1, H, H));
    ur_node *g = ur_tanh(t, ur_slice(t, a, 1, 2 * H, H));
    ur_node *o = ur_sigmoid(t, ur_slice(t, a, 1, 3 * H, H));
    ur_node *c2 = ur_add(t, ur_mul(t, f, c), ur_mul(t, i, g));
    next[1] = c2;
    next[0] = ur_mul(t, o, ur_tanh(t, ur_layer_norm(t, c2, b->extra[X_G_C], b->p[B_C], LN_EPS)));
}

const ur_cell_def ur__cell_lnlstm = {
    .name = "lnlstm",
    .n_states = 2,
    .state_names = {"h", "c"},
    .n_params = 7,
    .params = {{"weight_ih", 2, {{1, 0}, {0, 4}}, UR_CELL_INPUT_WEIGHT},
               {"weight_hh", 2, {{0, 1}, {0, 4}}, UR_CELL_RECURRENT_WEIGHT},
               {"bias", 1, {{0, 4}}, UR_CELL_BIAS},
               {"ln_gain_ih", 1, {{0, 4}}, UR_CELL_VECTOR},
               {"ln_gain_hh", 1, {{0, 4}}, UR_CELL_VECTOR},
               {"ln_gain_c", 1, {{0, 1}}, UR_CELL_VECTOR},
               {"ln_bias_c", 1, {{0, 1}}, UR_CELL_VECTOR}},
    .proj = {0, 4},
    .forget_block = 2, /* f of i, f, g, o */
    .bind = lnlstm_bind,
    .project = lnlstm_project,
    .step = lnlstm_step,
};
