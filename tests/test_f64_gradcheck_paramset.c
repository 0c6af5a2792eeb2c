/* ur_gradcheck_paramset: a whole model's parameters checked in one call (double
 * build), every element or a deterministic sample of each; and it can fail. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "unroll.h"

/* An LSTM over 3 steps (input 3, hidden 4), a linear output and cross-entropy. */
typedef struct model {
    ur_paramset *ps;
    ur_rnn *rnn;
    ur_param *W, *b;
    int twice_without_grad; /* 1: the loss differs with gradients off: a broken model */
} model;

static model make_model(void) {
    model m = {0};
    m.ps = ur_paramset_new();
    ur_rnn_config c = ur_rnn_defaults(UR_RNN_LSTM, 3, 4);
    c.seed = 7;
    m.rnn = ur_rnn_new(m.ps, "rnn", &c);
    m.W = ur_paramset_add(m.ps, "out.W", 2, (int[]){4, 5});
    m.b = ur_paramset_add(m.ps, "out.b", 1, (int[]){5});
    cr_assert_eq(ur_paramset_error(m.ps), UR_OK, "%s", ur_paramset_errmsg(m.ps));
    cr_assert_not_null(m.rnn, "%s", ur_last_error());
    ur_rng r;
    ur_rng_seed(&r, 3);
    ur_tensor_uniform(&m.W->value, &r, -0.5, 0.5);
    ur_tensor_uniform(&m.b->value, &r, -0.5, 0.5);
    return m;
}

static ur_node *loss_fn(ur_tape *t, void *ctx) {
    model *m = ctx;
    ur_real x[3 * 2 * 3];
    for (int i = 0; i < 18; i++) x[i] = (ur_real)sin(0.7 * i);
    int targets[2] = {1, 4};
    ur_rnn_final f = {0};
    ur_rnn_forward(m->rnn, t, ur_input_data(t, 3, (int[]){3, 2, 3}, x), NULL, &f);
    ur_node *logits = ur_linear(t, f.h[0], ur_param_node(t, m->W), ur_param_node(t, m->b));
    if (m->twice_without_grad && !ur_tape_grad_enabled(t)) logits = ur_scale(t, logits, 2);
    return ur_cross_entropy(t, logits, targets, NULL);
}

static void free_model(model *m) {
    ur_rnn_free(m->rnn);
    ur_paramset_free(m->ps);
}

Test(gradcheck_paramset, every_element_of_a_small_model) {
    model m = make_model();
    ur_tape *t = ur_tape_new();
    ur_gradcheck_result r;
    cr_assert_eq(ur_gradcheck_paramset(t, loss_fn, &m, m.ps, 1e-6, 0, &r), UR_OK, "%s", ur_last_error());
    cr_expect_eq(r.n_checked, ur_paramset_numel(m.ps));
    cr_expect_lt(r.max_rel_err, 1e-7, "worst %s: %g", r.worst, r.max_rel_err);
    cr_expect_gt(r.max_rel_err, 0, "the comparison ran");
    ur_tape_free(t);
    free_model(&m);
}

/* At most 3 elements of each parameter: the counts add up and repeat exactly. */
Test(gradcheck_paramset, sampled_elements) {
    model m = make_model();
    ur_tape *t = ur_tape_new();
    ur_gradcheck_result a, b;
    cr_assert_eq(ur_gradcheck_paramset(t, loss_fn, &m, m.ps, 1e-6, 3, &a), UR_OK, "%s", ur_last_error());
    cr_assert_eq(ur_gradcheck_paramset(t, loss_fn, &m, m.ps, 1e-6, 3, &b), UR_OK, "%s", ur_last_error());
    size_t want = 0;
    for (int i = 0; i < ur_paramset_count(m.ps); i++) {
        size_t n = ur_paramset_get(m.ps, i)->value.size;
        want += n < 3 ? n : 3;
    }
    cr_expect_eq(a.n_checked, want);
    cr_expect_eq(memcmp(&a, &b, sizeof a), 0, "the same elements every call");
    cr_expect_lt(a.max_rel_err, 1e-7, "worst %s: %g", a.worst, a.max_rel_err);
    ur_tape_free(t);
    free_model(&m);
}

/* A loss whose value is not the one backward differentiates is caught. */
Test(gradcheck_paramset, a_wrong_gradient_fails) {
    model m = make_model();
    m.twice_without_grad = 1;
    ur_tape *t = ur_tape_new();
    ur_gradcheck_result r;
    cr_assert_eq(ur_gradcheck_paramset(t, loss_fn, &m, m.ps, 1e-6, 2, &r), UR_OK, "%s", ur_last_error());
    cr_expect_gt(r.max_rel_err, 1e-2, "worst %s: %g", r.worst, r.max_rel_err);
    cr_expect_neq(r.worst[0], '\0');
    ur_tape_free(t);
    free_model(&m);
}

Test(gradcheck_paramset, bad_arguments) {
    model m = make_model();
    ur_tape *t = ur_tape_new();
    ur_gradcheck_result r;
    cr_expect_eq(ur_gradcheck_paramset(t, loss_fn, &m, NULL, 1e-6, 0, &r), UR_ERR_ARG);
    cr_expect_eq(ur_gradcheck_paramset(t, loss_fn, &m, m.ps, 0, 0, &r), UR_ERR_ARG);
    cr_expect_str_eq(ur_last_error(), "ur_gradcheck: eps must be > 0 (got 0)");
    cr_expect_null(ur_paramset_add(m.ps, "out.W", 1, (int[]){2}));
    cr_expect_eq(ur_gradcheck_paramset(t, loss_fn, &m, m.ps, 1e-6, 0, &r), UR_ERR_ARG);
    cr_expect_str_eq(ur_last_error(), "ur_gradcheck_paramset: the set has an error: "
                                      "ur_paramset_add: a parameter named 'out.W' exists already");
    ur_tape_free(t);
    free_model(&m);
}
