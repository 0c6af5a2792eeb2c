/* Row-sparse embedding gradients: the same parameters, bit for bit, as the dense
 * update wherever the sparse one is exact (SGD, Adagrad); every row counted when
 * another op writes the gradient; lazy Adam leaves untouched rows alone. */
#include <criterion/criterion.h>
#include <string.h>

#include "unroll.h"

enum { V = 40, D = 6, C = 5, N = 7, STEPS = 12 };

typedef struct model {
    ur_paramset *ps;
    ur_param *E, *W;
    ur_optim *opt;
} model;

static void model_make(model *m, int sparse, ur_optim_config cfg) {
    m->ps = ur_paramset_new();
    m->E = ur_paramset_add(m->ps, "E", 2, (int[]){V, D});
    m->W = ur_paramset_add(m->ps, "W", 2, (int[]){D, C});
    ur_rng rng;
    ur_rng_seed(&rng, 1);
    ur_tensor_normal(&m->E->value, &rng, 0, 1);
    ur_tensor_normal(&m->W->value, &rng, 0, 1);
    if (sparse) cr_assert_eq(ur_param_set_sparse_rows(m->E, 1), UR_OK, "%s", ur_last_error());
    m->opt = ur_optim_new(m->ps, &cfg);
    cr_assert_not_null(m->opt);
}

static void model_free(model *m) {
    ur_optim_free(m->opt);
    ur_paramset_free(m->ps);
}

/* The ids of step s: a few rows out of V, repeated ones included. With `tied`, the
 * output layer also reads E (logits = h E^T, only the first C rows). */
static void step(model *m, int s, int tied) {
    int ids[N], targets[N];
    for (int i = 0; i < N; i++) ids[i] = (s * 7 + i * i * 3) % (V / 2), targets[i] = (s + i) % C;
    ids[N - 1] = ids[0];
    ur_optim_zero_grad(m->opt);
    ur_tape *t = ur_tape_new();
    ur_node *h = ur_tanh(t, ur_gather(t, ur_param_node(t, m->E), ids, N));
    ur_node *out = tied ? ur_matmul(t, h, ur_slice(t, ur_param_node(t, m->E), 0, 0, C), 0, 1)
                        : ur_matmul(t, h, ur_param_node(t, m->W), 0, 0);
    cr_assert_eq(ur_backward(t, ur_cross_entropy(t, out, targets, NULL)), UR_OK, "%s", ur_tape_errmsg(t));
    ur_tape_free(t);
    cr_assert_eq(ur_optim_step(m->opt), UR_OK, "%s", ur_last_error());
}

static void same_as_dense(ur_optim_config cfg, int tied) {
    model a, b;
    model_make(&a, 1, cfg);
    model_make(&b, 0, cfg);
    for (int s = 0; s < STEPS; s++) {
        step(&a, s, tied);
        step(&b, s, tied);
    }
    cr_assert(!memcmp(a.E->value.data, b.E->value.data, sizeof(ur_real) * V * D), "E differs from the dense update");
    cr_assert(!memcmp(a.W->value.data, b.W->value.data, sizeof(ur_real) * D * C));
    model_free(&a);
    model_free(&b);
}

Test(sparse_rows, sgd_and_adagrad_equal_the_dense_update_bit_for_bit) {
    same_as_dense(ur_optim_defaults(UR_OPTIM_SGD, 0.3), 0);
    same_as_dense(ur_optim_defaults(UR_OPTIM_ADAGRAD, 0.3), 0);
    /* where the row-wise update would not be exact, the update is dense */
    ur_optim_config mom = ur_optim_defaults(UR_OPTIM_SGD, 0.3);
    mom.momentum = 0.9;
    same_as_dense(mom, 0);
    same_as_dense(ur_optim_defaults(UR_OPTIM_ADAM, 0.01), 0);
}

Test(sparse_rows, backward_lists_the_rows_and_zero_grad_clears_them) {
    model m;
    model_make(&m, 1, ur_optim_defaults(UR_OPTIM_SGD, 0.1));
    step(&m, 1, 0);
    const int *rows;
    int n = ur_param_grad_rows(m.E, &rows);
    int ids[N];
    for (int i = 0; i < N; i++) ids[i] = (7 + i * i * 3) % (V / 2);
    cr_assert_eq(n, 6, "7 ids, one repeated: 6 rows (got %d)", n);
    for (int i = 0; i < n; i++) cr_assert_eq(rows[i], ids[i], "row %d in order of first use", i);
    ur_optim_zero_grad(m.opt);
    cr_assert_eq(ur_param_grad_rows(m.E, &rows), 0);
    for (int i = 0; i < V * D; i++) cr_assert_eq(m.E->grad.data[i], 0);
    cr_assert_eq(ur_param_grad_rows(m.W, &rows), -1, "W is dense");
    cr_assert_null(rows);
    model_free(&m);
}

Test(sparse_rows, another_writer_makes_every_row_count) {
    same_as_dense(ur_optim_defaults(UR_OPTIM_SGD, 0.3), 1);
    same_as_dense(ur_optim_defaults(UR_OPTIM_ADAGRAD, 0.3), 1);
    model m;
    model_make(&m, 1, ur_optim_defaults(UR_OPTIM_SGD, 0.1));
    ur_tape *t = ur_tape_new();
    int id = 3;
    ur_node *e = ur_param_node(t, m.E);
    ur_node *l = ur_add(t, ur_sum(t, ur_gather(t, e, &id, 1)), ur_sum(t, ur_mul(t, e, e)));
    cr_assert_eq(ur_backward(t, l), UR_OK);
    cr_assert_eq(ur_param_grad_rows(m.E, NULL), -1);
    ur_tape_free(t);
    model_free(&m);
}

Test(sparse_rows, lazy_adam_leaves_untouched_rows_and_their_moments_alone) {
    ur_optim_config cfg = ur_optim_defaults(UR_OPTIM_ADAM, 0.05);
    cfg.lazy = 1;
    model lazy, dense;
    model_make(&lazy, 1, cfg);
    model_make(&dense, 1, ur_optim_defaults(UR_OPTIM_ADAM, 0.05));
    step(&lazy, 0, 0);
    step(&dense, 0, 0);
    cr_assert(!memcmp(lazy.E->value.data, dense.E->value.data, sizeof(ur_real) * V * D), "one step: the same");
    ur_real before_lazy[V * D], before_dense[V * D];
    memcpy(before_lazy, lazy.E->value.data, sizeof before_lazy);
    memcpy(before_dense, dense.E->value.data, sizeof before_dense);
    step(&lazy, 1, 0);
    step(&dense, 1, 0);
    int r0 = 0; /* row 0 is read at step 0 (id 0), not at step 1 (ids 7, 10, ...) */
    for (int j = 0; j < D; j++) {
        cr_assert_eq(lazy.E->value.data[r0 * D + j], before_lazy[r0 * D + j], "lazy: row 0 untouched at step 1");
        cr_assert_neq(dense.E->value.data[r0 * D + j], before_dense[r0 * D + j], "dense Adam moves it (momentum)");
    }
    model_free(&lazy);
    model_free(&dense);
}

Test(sparse_rows, only_for_2d_parameters) {
    ur_paramset *ps = ur_paramset_new();
    ur_param *b = ur_paramset_add(ps, "bias", 1, (int[]){4});
    cr_assert_eq(ur_param_set_sparse_rows(b, 1), UR_ERR_SHAPE);
    cr_assert_str_eq(ur_last_error(), "ur_param_set_sparse_rows: 'bias' must be 2-d (rows, D), got (4)");
    cr_assert_eq(ur_param_set_sparse_rows(NULL, 1), UR_ERR_ARG);
    ur_paramset_free(ps);
}
