/* op_table.c - the table of every op kind (name and backward rule, from
 * ur_ops.def), plus the list of gradient-check cases gathered from the op files. */
#include "tape_internal.h"

const ur_op_info ur__op_table[UR_OP_COUNT] = {
#define UR_OP(kind, name, backward, file) [UR_OP_##kind] = {name, backward},
#include "ur_ops.def"
#undef UR_OP
};

/* ---- the gradient-check cases of all op families, in one list ---- */

typedef struct family {
    const ur_op_case *cases;
    const int *n;
} family;

static const family families[] = {
    {ur__cases_elementwise, &ur__n_cases_elementwise}, {ur__cases_linalg, &ur__n_cases_linalg},
    {ur__cases_reduce, &ur__n_cases_reduce},           {ur__cases_shape, &ur__n_cases_shape},
    {ur__cases_permute, &ur__n_cases_permute},
    {ur__cases_expr, &ur__n_cases_expr},
    {ur__cases_pointwise, &ur__n_cases_pointwise},     {ur__cases_norm, &ur__n_cases_norm},
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
