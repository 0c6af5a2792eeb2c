/* Fused pointwise expressions in the default build: what they record on the tape,
 * a recurrence through them, and their errors (sticky on the expression, clear on
 * the tape). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "unroll.h"

static ur_node *var(ur_tape *t, ur_rng *rng, int ndim, const int *dims) {
    ur_tensor *x = ur_tensor_new(ndim, dims);
    cr_assert(x);
    ur_tensor_uniform(x, rng, -1, 1);
    ur_node *n = ur_variable(t, x);
    ur_tensor_free(x);
    return n;
}

Test(expr, an_lstm_step_is_one_node_and_two_views) {
    ur_expr *e = ur_expr_lstm();
    cr_assert(e);
    cr_expect_eq(ur_expr_input_count(e), 2);
    cr_expect_eq(ur_expr_output_count(e), 2);
    ur_tape *t = ur_tape_new();
    ur_rng rng;
    ur_rng_seed(&rng, 1);
    ur_node *in[2] = {var(t, &rng, 2, (int[]){3, 20}), var(t, &rng, 2, (int[]){3, 5})}, *out[2];
    int before = ur_tape_size(t);
    cr_assert_eq(ur_expr_apply(t, e, 2, in, out), UR_OK, "%s", ur_tape_errmsg(t));
    cr_expect_eq(ur_tape_size(t) - before, 3, "one expression node and one view per output");
    cr_expect_str_eq(ur_node_op_name(ur_tape_node(t, before)), "expr");
    for (int k = 0; k < 2; k++) {
        cr_expect_eq(ur_node_dim(out[k], 0), 3);
        cr_expect_eq(ur_node_dim(out[k], 1), 5);
    }
    ur_tape_free(t);
    ur_expr_free(e);
}

/* Three steps through the expression, freed right after recording, against the
 * same math from primitive ops: the same loss and gradients (float precision). */
static double run_steps(int primitives, double *grad, int n_grad) {
    ur_tape *t = ur_tape_new();
    ur_rng rng;
    ur_rng_seed(&rng, 7);
    int B = 4, H = 6;
    ur_node *gates[3], *c = var(t, &rng, 2, (int[]){B, H}), *h = NULL, *loss = NULL;
    for (int s = 0; s < 3; s++) gates[s] = var(t, &rng, 2, (int[]){B, 4 * H});
    for (int s = 0; s < 3; s++) {
        if (primitives) {
            ur_node *g = gates[s];
            ur_node *i = ur_sigmoid(t, ur_slice(t, g, 1, 0, H)), *f = ur_sigmoid(t, ur_slice(t, g, 1, H, H));
            c = ur_add(t, ur_mul(t, f, c), ur_mul(t, i, ur_tanh(t, ur_slice(t, g, 1, 2 * H, H))));
            h = ur_mul(t, ur_sigmoid(t, ur_slice(t, g, 1, 3 * H, H)), ur_tanh(t, c));
        } else {
            ur_expr *e = ur_expr_lstm();
            ur_node *out[2];
            cr_assert_eq(ur_expr_apply(t, e, 2, (ur_node *[]){gates[s], c}, out), UR_OK, "%s", ur_tape_errmsg(t));
            ur_expr_free(e);
            h = out[0], c = out[1];
        }
        ur_node *term = ur_sum(t, ur_mul(t, h, h));
        loss = loss ? ur_add(t, loss, term) : term;
    }
    cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
    for (int i = 0; i < n_grad; i++) grad[i] = ur_node_grad(gates[0])[i];
    double v = ur_node_item(loss);
    ur_tape_free(t);
    return v;
}

Test(expr, a_recurrence_matches_primitive_ops) {
    double ga[96], gb[96];
    double la = run_steps(0, ga, 96), lb = run_steps(1, gb, 96);
    cr_expect(fabs(la - lb) <= 1e-5 * fabs(lb), "loss %g vs %g", la, lb);
    for (int i = 0; i < 96; i++) cr_expect(fabs(ga[i] - gb[i]) <= 1e-5, "gradient %d: %g vs %g", i, ga[i], gb[i]);
}

Test(expr, rows_only_give_one_row) {
    ur_expr *e = ur_expr_new("rows");
    int a = ur_expr_input_row(e, 0), b = ur_expr_input_row(e, 1);
    ur_expr_output(e, ur_expr_mul(e, a, ur_expr_one_minus(e, b)));
    ur_tape *t = ur_tape_new();
    ur_real x[3] = {1, 2, 3}, y[3] = {0.5f, 0.25f, 2};
    ur_node *in[2] = {ur_input_data(t, 1, (int[]){3}, x), ur_input_data(t, 2, (int[]){1, 3}, y)}, *out;
    cr_assert_eq(ur_expr_apply(t, e, 2, in, &out), UR_OK, "%s", ur_tape_errmsg(t));
    cr_expect_eq(ur_node_dim(out, 0), 1);
    const ur_real *v = ur_node_cdata(out);
    cr_expect(v[0] == 0.5f && v[1] == 1.5f && v[2] == -3, "%g %g %g", v[0], v[1], v[2]);
    ur_tape_free(t);
    ur_expr_free(e);
}

/* ---- errors ---- */

Test(expr, builder_errors_are_sticky) {
    ur_expr *e = ur_expr_new("bad");
    int a = ur_expr_input(e, 0);
    cr_expect_eq(a, 0);
    cr_expect_eq(ur_expr_output(e, a), 0);
    cr_expect_eq(ur_expr_add(e, a, 7), -1);
    cr_expect_eq(ur_expr_error(e), UR_ERR_ARG);
    cr_expect(strstr(ur_expr_errmsg(e), "expr 'bad': ur_expr_add: operand 1 is node 7"), "%s", ur_expr_errmsg(e));
    cr_expect_eq(ur_expr_tanh(e, a), -1, "later calls fail too");
    cr_expect(strstr(ur_expr_errmsg(e), "ur_expr_add"), "the first error is kept");
    ur_tape *t = ur_tape_new();
    ur_node *x = ur_zeros(t, 2, (int[]){2, 3}), *out = x;
    cr_expect_eq(ur_expr_apply(t, e, 1, &x, &out), UR_ERR_ARG);
    cr_expect_null(out);
    cr_expect(strstr(ur_tape_errmsg(t), "operand 1 is node 7"), "%s", ur_tape_errmsg(t));
    ur_tape_free(t);
    ur_expr_free(e);
}

Test(expr, a_slot_is_read_one_way) {
    ur_expr *e = ur_expr_new("twice");
    ur_expr_input_block(e, 0, 0, 4);
    cr_expect_geq(ur_expr_input_block(e, 0, 3, 4), 0);
    cr_expect_eq(ur_expr_input_block(e, 0, 0, 3), -1);
    cr_expect(strstr(ur_expr_errmsg(e), "slot 0 is already read as blocks of 4, here as blocks of 3"), "%s",
              ur_expr_errmsg(e));
    ur_expr_free(e);
    e = ur_expr_new("k");
    cr_expect_eq(ur_expr_input_block(e, 0, 4, 4), -1);
    cr_expect(strstr(ur_expr_errmsg(e), "block 4 of 4 does not exist"), "%s", ur_expr_errmsg(e));
    ur_expr_free(e);
    cr_expect_eq(ur_expr_input(NULL, 0), -1);
    cr_expect(strstr(ur_last_error(), "ur_expr_input: expression is NULL"), "%s", ur_last_error());
}

/* a bad shape names the input, how it is read, the expected and the given shape */
Test(expr, shape_errors_name_the_input) {
    ur_expr *e = ur_expr_lstm();
    ur_tape *t = ur_tape_new();
    ur_node *in[2] = {ur_zeros(t, 2, (int[]){3, 8}), ur_zeros(t, 2, (int[]){3, 3})}, *out[2];
    cr_expect_eq(ur_expr_apply(t, e, 2, in, out), UR_ERR_SHAPE);
    cr_expect(out[0] == NULL && out[1] == NULL);
    cr_expect(strstr(ur_tape_errmsg(t), "expr 'lstm': input 1 is read as a full input: expected (3, 2), given (3, 3)"),
              "%s", ur_tape_errmsg(t));
    ur_tape_free(t);

    t = ur_tape_new();
    in[0] = ur_zeros(t, 2, (int[]){3, 8}), in[1] = ur_zeros(t, 2, (int[]){3, 2});
    cr_expect_eq(ur_expr_apply(t, e, 1, in, out), UR_ERR_ARG);
    cr_expect(strstr(ur_tape_errmsg(t), "expects 2 inputs (its slots), given 1"), "%s", ur_tape_errmsg(t));
    ur_tape_free(t);
    ur_expr_free(e);

    e = ur_expr_peephole_lstm();
    t = ur_tape_new();
    ur_node *p[5] = {ur_zeros(t, 2, (int[]){3, 8}), ur_zeros(t, 2, (int[]){3, 2}), ur_zeros(t, 1, (int[]){2}),
                     ur_zeros(t, 2, (int[]){3, 2}), ur_zeros(t, 1, (int[]){2})};
    cr_expect_eq(ur_expr_apply(t, e, 5, p, out), UR_ERR_SHAPE);
    cr_expect(strstr(ur_tape_errmsg(t), "input 3 is read as a row: expected (2) or (1, 2), given (3, 2)"), "%s",
              ur_tape_errmsg(t));
    ur_tape_free(t);
    ur_expr_free(e);
}

Test(expr, unread_slots_and_missing_outputs_are_errors) {
    ur_expr *e = ur_expr_new("gap");
    int a = ur_expr_input(e, 0), b = ur_expr_input(e, 2);
    ur_tape *t = ur_tape_new();
    ur_node *in[3] = {ur_zeros(t, 2, (int[]){2, 2}), ur_zeros(t, 2, (int[]){2, 2}), ur_zeros(t, 2, (int[]){2, 2})};
    ur_node *out[1];
    cr_expect_eq(ur_expr_apply(t, e, 3, in, out), UR_ERR_ARG);
    cr_expect(strstr(ur_tape_errmsg(t), "expr 'gap': the expression has no output"), "%s", ur_tape_errmsg(t));
    ur_tape_reset(t);
    ur_expr_output(e, ur_expr_add(e, a, b));
    in[0] = ur_zeros(t, 2, (int[]){2, 2}), in[1] = in[0], in[2] = in[0];
    cr_expect_eq(ur_expr_apply(t, e, 3, in, out), UR_ERR_ARG);
    cr_expect(strstr(ur_tape_errmsg(t), "input 1 is bound, but no node reads slot 1"), "%s", ur_tape_errmsg(t));
    ur_tape_free(t);
    ur_expr_free(e);
}

Test(expr, a_tape_in_error_records_nothing) {
    ur_expr *e = ur_expr_gru();
    ur_tape *t = ur_tape_new();
    ur_node *x = ur_zeros(t, 2, (int[]){2, 3});
    ur_add(t, x, ur_zeros(t, 2, (int[]){4, 5})); /* a shape error */
    int n = ur_tape_size(t);
    ur_node *in[3] = {x, x, x}, *out[1] = {x};
    cr_expect_eq(ur_expr_apply(t, e, 3, in, out), UR_ERR_SHAPE);
    cr_expect_null(out[0]);
    cr_expect_eq(ur_tape_size(t), n);
    ur_tape_reset(t);
    cr_expect_eq(ur_expr_apply(t, e, 3, NULL, out), UR_ERR_ARG);
    cr_expect(strstr(ur_tape_errmsg(t), "expr 'gru': the input array is NULL"), "%s", ur_tape_errmsg(t));
    cr_expect_eq(ur_expr_apply(NULL, e, 3, in, out), UR_ERR_ARG);
    cr_expect(strstr(ur_last_error(), "expr: tape is NULL"), "%s", ur_last_error());
    ur_tape_free(t);
    ur_expr_free(e);
}
