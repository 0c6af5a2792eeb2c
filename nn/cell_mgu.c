/* cell_mgu.c - the minimal gated unit (Zhou et al. 2016), written only against
 * the public cell interface (ur_cell.h), as a user would write it.
 *
 *   f  = sigmoid(x W_f + b_f + h U_f)
 *   h~ = tanh(x W_h + b_h + (f * h) U_h)
 *   h' = (1 - f) * h + f * h~
 *
 * Parameters: weight_ih (in, 2H) = [W_f W_h], bias (2H) = [b_f b_h], weight_hf
 * U_f (H, H), weight_hh U_h (H, H). The input part of both gates is one projection. */
#include "unroll.h"

enum { W_IH, BIAS, U_F, U_H };

static ur_node *mgu_project(ur_tape *t, const ur_cell_bound *b, ur_node *x) {
    return ur_linear(t, x, b->p[W_IH], b->p[BIAS]); /* (N, 2H) */
}

static void mgu_step(ur_tape *t, const ur_cell_bound *b, ur_node *gx, ur_node *const *prev, ur_node *hdrop,
                     ur_node **next) {
    int H = b->H;
    ur_node *h = prev[0], *hin = hdrop ? ur_mul(t, h, hdrop) : h;
    ur_node *f = ur_sigmoid(t, ur_add(t, ur_slice(t, gx, 1, 0, H), ur_matmul(t, hin, b->p[U_F], 0, 0)));
    ur_node *cand = ur_tanh(t, ur_add(t, ur_slice(t, gx, 1, H, H), ur_matmul(t, ur_mul(t, f, hin), b->p[U_H], 0, 0)));
    next[0] = ur_add(t, ur_mul(t, ur_one_minus(t, f), h), ur_mul(t, f, cand));
}

const ur_cell_def ur__cell_mgu = {
    .name = "mgu",
    .n_states = 1,
    .state_names = {"h"},
    .n_params = 4,
    .params = {{"weight_ih", 2, {{1, 0}, {0, 2}}, UR_CELL_INPUT_WEIGHT},
               {"bias", 1, {{0, 2}}, UR_CELL_BIAS},
               {"weight_hf", 2, {{0, 1}, {0, 1}}, UR_CELL_RECURRENT_WEIGHT},
               {"weight_hh", 2, {{0, 1}, {0, 1}}, UR_CELL_RECURRENT_WEIGHT}},
    .proj = {0, 2},
    .project = mgu_project,
    .step = mgu_step,
};
