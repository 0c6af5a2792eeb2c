/* cell_jordan.c - a Jordan network (Jordan 1986): the previous OUTPUT, not the
 * hidden layer, feeds the next step. Written only against the public cell
 * interface (ur_cell.h).
 *
 *   a_t = tanh(x_t W_ih + b_ih + y_{t-1} W_yh)     the hidden layer (not carried)
 *   y_t = tanh(a_t W_hy + b_hy)                     the output, fed back
 * The cell's one state is y (B, H), which is also what the layer outputs; a
 * language model puts its own (H, V) readout on top, so this is the lectures'
 * y^_{t-1} -> h_t with the fed-back output taken before that readout.
 * Parameters: weight_ih (in, H), bias_ih (H), weight_yh (H, H), weight_hy
 * (H, H), bias_hy (H). */
#include "unroll.h"

enum { W_IH, B_IH, W_YH, W_HY, B_HY };

static ur_node *jordan_project(ur_tape *t, const ur_cell_bound *b, ur_node *x) {
    return ur_linear(t, x, b->p[W_IH], b->p[B_IH]); /* (N, H) */
}

static void jordan_step(ur_tape *t, const ur_cell_bound *b, ur_node *gx, ur_node *const *prev, ur_node *hdrop,
                        ur_node **next) {
    ur_node *yin = hdrop ? ur_mul(t, prev[0], hdrop) : prev[0];
    ur_node *a = ur_tanh(t, ur_add(t, gx, ur_matmul(t, yin, b->p[W_YH], 0, 0)));
    next[0] = ur_tanh(t, ur_linear(t, a, b->p[W_HY], b->p[B_HY]));
}

const ur_cell_def ur__cell_jordan = {
    .name = "jordan",
    .n_states = 1,
    .state_names = {"y"},
    .n_params = 5,
    .params = {{"weight_ih", 2, {{1, 0}, {0, 1}}, UR_CELL_INPUT_WEIGHT},
               {"bias_ih", 1, {{0, 1}}, UR_CELL_BIAS},
               {"weight_yh", 2, {{0, 1}, {0, 1}}, UR_CELL_RECURRENT_WEIGHT},
               {"weight_hy", 2, {{0, 1}, {0, 1}}, UR_CELL_INPUT_WEIGHT},
               {"bias_hy", 1, {{0, 1}}, UR_CELL_BIAS}},
    .proj = {0, 1},
    .project = jordan_project,
    .step = jordan_step,
};
