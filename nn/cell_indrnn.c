/* cell_indrnn.c - the independently recurrent network (IndRNN, Li et al. 2018),
 * written only against the public cell interface (ur_cell.h).
 *
 *   h' = relu(x W + b + u * h)
 * Each unit sees only its own previous value, through one weight u_j: the
 * recurrence is elementwise, with no (H, H) matmul. Parameters: weight_ih W
 * (in, H), bias b (H), weight_hh u (H). */
#include "unroll.h"

enum { W_IH, BIAS, U };

static ur_node *ind_project(ur_tape *t, const ur_cell_bound *b, ur_node *x) {
    return ur_linear(t, x, b->p[W_IH], b->p[BIAS]); /* (N, H) */
}

static void ind_step(ur_tape *t, const ur_cell_bound *b, ur_node *gx, ur_node *const *prev, ur_node *hdrop,
                     ur_node **next) {
    ur_node *hin = hdrop ? ur_mul(t, prev[0], hdrop) : prev[0];
    next[0] = ur_relu(t, ur_add(t, gx, ur_mul(t, hin, b->p[U]))); /* (B, H) * (H) broadcasts */
}

const ur_cell_def ur__cell_indrnn = {
    .name = "indrnn",
    .n_states = 1,
    .state_names = {"h"},
    .n_params = 3,
    .params = {{"weight_ih", 2, {{1, 0}, {0, 1}}, UR_CELL_INPUT_WEIGHT},
               {"bias", 1, {{0, 1}}, UR_CELL_BIAS},
               {"weight_hh", 1, {{0, 1}}, UR_CELL_VECTOR}},
    .proj = {0, 1},
    .project = ind_project,
    .step = ind_step,
};
