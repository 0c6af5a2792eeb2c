/* op_table.c - the table of every op kind: its name and backward rule, plus the
 * list of gradient-check cases gathered from the op files. */
#include "tape_internal.h"

extern const ur_backward_fn ur__backward_binary, ur__backward_unary, ur__backward_matmul,
    ur__backward_linear, ur__backward_transpose, ur__backward_softmax, ur__backward_cross_entropy,
    ur__backward_mse, ur__backward_reduce_all, ur__backward_reduce_axis, ur__backward_concat,
    ur__backward_slice, ur__backward_reshape, ur__backward_gather, ur__backward_dropout,
    ur__backward_lstm_cell, ur__backward_lstm_hidden, ur__backward_gru_hidden, ur__backward_expr;

static void leaf_backward(ur_tape *t, ur_node *y) { (void)t, (void)y; }

/* Backward rules are reached through thin wrappers so the table can be a constant. */
#define WRAP(fn) \
    static void call_##fn(ur_tape *t, ur_node *y) { ur__backward_##fn(t, y); }
WRAP(binary) WRAP(unary) WRAP(matmul) WRAP(linear) WRAP(transpose) WRAP(softmax) WRAP(cross_entropy)
WRAP(mse) WRAP(reduce_all) WRAP(reduce_axis) WRAP(concat) WRAP(slice) WRAP(reshape) WRAP(gather)
WRAP(dropout) WRAP(lstm_cell) WRAP(lstm_hidden) WRAP(gru_hidden) WRAP(expr)

const ur_op_info ur__op_table[UR_OP_COUNT] = {
    [UR_OP_LEAF] = {"leaf", leaf_backward},
    [UR_OP_ADD] = {"add", call_binary},
    [UR_OP_SUB] = {"sub", call_binary},
    [UR_OP_MUL] = {"mul", call_binary},
    [UR_OP_DIV] = {"div", call_binary},
    [UR_OP_SCALE] = {"scale", call_unary},
    [UR_OP_NEG] = {"neg", call_unary},
    [UR_OP_ONE_MINUS] = {"one_minus", call_unary},
    [UR_OP_ADD_SCALAR] = {"add_scalar", call_unary},
    [UR_OP_MATMUL] = {"matmul", call_matmul},
    [UR_OP_LINEAR] = {"linear", call_linear},
    [UR_OP_TANH] = {"tanh", call_unary},
    [UR_OP_SIGMOID] = {"sigmoid", call_unary},
    [UR_OP_RELU] = {"relu", call_unary},
    [UR_OP_EXP] = {"exp", call_unary},
    [UR_OP_LOG] = {"log", call_unary},
    [UR_OP_SOFTMAX] = {"softmax", call_softmax},
    [UR_OP_LOG_SOFTMAX] = {"log_softmax", call_softmax},
    [UR_OP_CROSS_ENTROPY] = {"cross_entropy", call_cross_entropy},
    [UR_OP_MSE] = {"mse", call_mse},
    [UR_OP_SUM] = {"sum", call_reduce_all},
    [UR_OP_MEAN] = {"mean", call_reduce_all},
    [UR_OP_SUM_AXIS] = {"sum_axis", call_reduce_axis},
    [UR_OP_MEAN_AXIS] = {"mean_axis", call_reduce_axis},
    [UR_OP_MAX_AXIS] = {"max_axis", call_reduce_axis},
    [UR_OP_CONCAT] = {"concat", call_concat},
    [UR_OP_SLICE] = {"slice", call_slice},
    [UR_OP_RESHAPE] = {"reshape", call_reshape},
    [UR_OP_TRANSPOSE] = {"transpose", call_transpose},
    [UR_OP_GATHER] = {"gather", call_gather},
    [UR_OP_DROPOUT] = {"dropout", call_dropout},
    [UR_OP_LSTM_CELL] = {"lstm_cell", call_lstm_cell},
    [UR_OP_LSTM_HIDDEN] = {"lstm_hidden", call_lstm_hidden},
    [UR_OP_GRU_HIDDEN] = {"gru_hidden", call_gru_hidden},
    [UR_OP_EXPR] = {"expr", call_expr},
};
_Static_assert(UR_OP_EXPR + 1 == UR_OP_COUNT, "every op kind needs a row in ur__op_table");

/* ---- the gradient-check cases of all op families, in one list ---- */

typedef struct family {
    const ur_op_case *cases;
    const int *n;
} family;

static const family families[] = {
    {ur__cases_elementwise, &ur__n_cases_elementwise}, {ur__cases_linalg, &ur__n_cases_linalg},
    {ur__cases_reduce, &ur__n_cases_reduce},           {ur__cases_shape, &ur__n_cases_shape},
    {ur__cases_rnn, &ur__n_cases_rnn},                 {ur__cases_expr, &ur__n_cases_expr},
};

static const ur_op_case *case_at(int i) {
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        if (i < *families[f].n) return &families[f].cases[i];
        i -= *families[f].n;
    }
    return NULL;
}

int ur_op_case_count(void) {
    int n = 0;
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) n += *families[f].n;
    return n;
}

const char *ur_op_case_name(int i) {
    const ur_op_case *c = case_at(i);
    return c ? c->name : NULL;
}

ur_op ur_op_case_op(int i) {
    const ur_op_case *c = case_at(i);
    return c ? c->op : UR_OP_COUNT;
}

/* ---- running one case ---- */

typedef struct case_ctx {
    const ur_op_case *c;
    ur_param *p[4];
    ur_tensor *weights; /* fixed random weights that turn the output into a scalar */
} case_ctx;

static ur_node *case_loss(ur_tape *t, void *ctx) {
    case_ctx *cc = ctx;
    ur_node *p[4];
    for (int i = 0; i < cc->c->n_params; i++) p[i] = ur_param_node(t, cc->p[i]);
    ur_node *y = cc->c->build(t, p);
    if (!y) return NULL;
    if (ur_node_size(y) == 1) return y;
    ur_node *w = ur_input_data(t, ur_node_ndim(y), ur_node_shape(y)->dims, cc->weights->data);
    return ur_sum(t, ur_mul(t, y, w));
}

ur_status ur_op_case_run(int i, double eps, ur_gradcheck_result *out) {
    const ur_op_case *c = case_at(i);
    if (!c) return ur_set_error(UR_ERR_ARG, "ur_op_case_run: no case %d", i);
    ur_rng rng;
    ur_rng_seed(&rng, 1000 + (uint64_t)i);
    ur_paramset *ps = ur_paramset_new();
    ur_tape *t = ur_tape_new();
    case_ctx cc = {c, {0}, NULL};
    ur_status st = ps && t ? UR_OK : UR_ERR_NOMEM;
    char name[16];
    for (int k = 0; st == UR_OK && k < c->n_params; k++) {
        snprintf(name, sizeof name, "x%d", k);
        cc.p[k] = ur_paramset_add(ps, name, c->ndim[k], c->dims[k]);
        if (!cc.p[k]) st = UR_ERR_NOMEM;
        else if (c->positive) ur_tensor_uniform(&cc.p[k]->value, &rng, (ur_real)0.5, (ur_real)2.0);
        else ur_tensor_normal(&cc.p[k]->value, &rng, 0, 1);
    }
    if (st == UR_OK) {
        /* Find the output size with one forward pass, then draw the weights. */
        ur_node *y = c->build(t, (ur_node *[4]){ur_param_node(t, cc.p[0]), c->n_params > 1 ? ur_param_node(t, cc.p[1]) : NULL,
                                                c->n_params > 2 ? ur_param_node(t, cc.p[2]) : NULL,
                                                c->n_params > 3 ? ur_param_node(t, cc.p[3]) : NULL});
        if (!y) st = ur_set_error(ur_tape_error(t), "%s", ur_tape_errmsg(t));
        else {
            cc.weights = ur_tensor_new(ur_node_ndim(y), ur_node_shape(y)->dims);
            if (!cc.weights) st = UR_ERR_NOMEM;
            else ur_tensor_normal(cc.weights, &rng, 0, 1);
        }
    }
    if (st == UR_OK) st = ur_gradcheck(t, case_loss, &cc, cc.p, c->n_params, eps, out);
    ur_tensor_free(cc.weights);
    ur_tape_free(t);
    ur_paramset_free(ps);
    return st;
}
