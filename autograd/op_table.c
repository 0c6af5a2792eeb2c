/* op_table.c - the table of every op kind (name, backward rule, gradient-check
 * cases and defining file, from ur_ops.def), and running the cases. */
#include "tape_internal.h"

#include <stdio.h>
#include <string.h>

const ur_op_info ur__op_table[UR_OP_COUNT] = {
#define UR_OP(kind, name, backward, file) [UR_OP_##kind] = {name, backward, &ur__cases_##kind, #file},
#include "ur_ops.def"
#undef UR_OP
};

/* ---- the cases of all kinds, in one numbering ----
 * Family by family (files in the order they first appear in ur_ops.def), and in
 * each family kind by kind in list order, so a family's cases print together. */

/* 1 when op kind k is the first of its file in the list. */
static int first_of_file(int k) {
    for (int j = 0; j < k; j++)
        if (strcmp(ur__op_table[j].file, ur__op_table[k].file) == 0) return 0;
    return 1;
}

/* Case i in that order and the kind it is registered under; NULL past the end. */
static const ur_op_case *case_at(int i, ur_op *kind) {
    for (int f = 0; f < UR_OP_COUNT; f++) {
        if (!first_of_file(f)) continue;
        for (int k = f; k < UR_OP_COUNT; k++) {
            const ur_op_cases *c = ur__op_table[k].cases;
            if (strcmp(ur__op_table[k].file, ur__op_table[f].file) != 0) continue;
            if (i >= 0 && i < c->n) {
                *kind = (ur_op)k;
                return &c->cases[i];
            }
            i -= c->n;
        }
    }
    return NULL;
}

int ur_op_case_count(void) {
    int n = 0;
    for (int k = 0; k < UR_OP_COUNT; k++) n += ur__op_table[k].cases->n;
    return n;
}

const char *ur_op_case_name(int i) {
    ur_op kind;
    const ur_op_case *c = case_at(i, &kind);
    return c ? c->name : NULL;
}

ur_op ur_op_case_op(int i) {
    ur_op kind = UR_OP_COUNT;
    case_at(i, &kind);
    return kind;
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

/* 1 when the tape holds a node of op kind `kind`. */
static int records_kind(const ur_tape *t, ur_op kind) {
    for (int i = 0; i < t->n_nodes; i++)
        if (t->nodes[i]->op == kind) return 1;
    return 0;
}

/* One forward pass finds the output's shape; the weights are drawn for it. */
static ur_status first_forward(ur_tape *t, ur_op kind, case_ctx *cc, ur_rng *rng) {
    const ur_op_case *c = cc->c;
    ur_node *p[4] = {NULL};
    for (int k = 0; k < c->n_params; k++) p[k] = ur_param_node(t, cc->p[k]);
    ur_node *y = c->build(t, p);
    if (!y) return ur_set_error(ur_tape_error(t), "%s", ur_tape_errmsg(t));
    if (!records_kind(t, kind))
        return ur_set_error(UR_ERR_ARG, "gradient-check case '%s' is registered under op kind '%s' but records no "
                            "'%s' node", c->name, ur_op_name(kind), ur_op_name(kind));
    cc->weights = ur_tensor_new(ur_node_ndim(y), ur_node_shape(y)->dims);
    if (!cc->weights) return ur_set_error(UR_ERR_NOMEM, "gradient-check case '%s': out of memory", c->name);
    ur_tensor_normal(cc->weights, rng, 0, 1);
    return UR_OK;
}

ur_status ur__op_case_check(ur_op kind, const ur_op_case *c, double eps, ur_gradcheck_result *out) {
    ur_rng rng;
    ur_rng_seed(&rng, c->seed);
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
    if (st == UR_OK) st = first_forward(t, kind, &cc, &rng);
    if (st == UR_OK) st = ur_gradcheck(t, case_loss, &cc, cc.p, c->n_params, eps, out);
    ur_tensor_free(cc.weights);
    ur_tape_free(t);
    ur_paramset_free(ps);
    return st;
}

ur_status ur_op_case_run(int i, double eps, ur_gradcheck_result *out) {
    ur_op kind;
    const ur_op_case *c = case_at(i, &kind);
    if (!c) return ur_set_error(UR_ERR_ARG, "ur_op_case_run: no case %d (there are %d)", i, ur_op_case_count());
    return ur__op_case_check(kind, c, eps, out);
}
