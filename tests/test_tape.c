/* The tape: sticky errors with exact texts, tied weights, no-grad, detach, reset
 * without allocations, printing and DOT output, anomaly mode. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unroll.h"

static ur_node *mat(ur_tape *t, int r, int c, ur_real start) {
    ur_real buf[64];
    for (int i = 0; i < r * c; i++) buf[i] = start + (ur_real)i;
    int d[2] = {r, c};
    return ur_input_data(t, 2, d, buf);
}

static void expect_error(ur_tape *t, ur_status st, const char *text) {
    cr_expect_eq(ur_tape_error(t), st, "status %s, message: %s", ur_status_name(ur_tape_error(t)), ur_tape_errmsg(t));
    cr_expect_str_eq(ur_tape_errmsg(t), text);
}

Test(tape_errors, elementwise_shapes) {
    ur_tape *t = ur_tape_new();
    ur_node *y = ur_add(t, mat(t, 2, 3, 0), mat(t, 4, 1, 0));
    cr_expect_null(y);
    expect_error(t, UR_ERR_SHAPE, "add: shapes do not broadcast (inputs (2, 3), (4, 1))");
    /* sticky: later ops do nothing and keep the first error */
    cr_expect_null(ur_tanh(t, mat(t, 2, 2, 0)));
    expect_error(t, UR_ERR_SHAPE, "add: shapes do not broadcast (inputs (2, 3), (4, 1))");
    ur_tape_reset(t);
    cr_expect_eq(ur_tape_error(t), UR_OK);
    ur_tape_free(t);
}

Test(tape_errors, one_input_family) {
    ur_tape *t = ur_tape_new();
    ur_real v[2] = {1, -1};
    int d[1] = {2};
    cr_expect_null(ur_log(t, ur_input_data(t, 1, d, v)));
    expect_error(t, UR_ERR_NUMERIC, "log: element 1 is -1 (must be > 0) (inputs (2))");
    ur_tape_free(t);
}

Test(tape_errors, matmul_inner_dimensions) {
    ur_tape *t = ur_tape_new();
    cr_expect_null(ur_matmul(t, mat(t, 2, 3, 0), mat(t, 2, 3, 0), 0, 0));
    expect_error(t, UR_ERR_SHAPE, "matmul: inner dimensions differ (3 vs 2) (inputs (2, 3), (2, 3))");
    ur_tape_reset(t);
    cr_expect_not_null(ur_matmul(t, mat(t, 2, 3, 0), mat(t, 2, 3, 0), 0, 1));
    cr_expect_null(ur_linear(t, mat(t, 2, 3, 0), mat(t, 3, 4, 0), mat(t, 1, 3, 0)));
    expect_error(t, UR_ERR_SHAPE, "linear: bias must have shape (4) (inputs (2, 3), (3, 4), (1, 3))");
    ur_tape_free(t);
}

Test(tape_errors, losses_and_reductions) {
    ur_tape *t = ur_tape_new();
    int targets[2] = {0, 5};
    cr_expect_null(ur_cross_entropy(t, mat(t, 2, 3, 0), targets, NULL));
    expect_error(t, UR_ERR_ARG, "cross_entropy: target 5 of row 1 is outside [0, 3) (inputs (2, 3))");
    ur_tape_reset(t);
    cr_expect_null(ur_sum_axis(t, mat(t, 2, 3, 0), 2, 0));
    expect_error(t, UR_ERR_ARG, "sum_axis: axis 2 is out of range (inputs (2, 3))");
    ur_tape_reset(t);
    cr_expect_null(ur_mse(t, mat(t, 2, 3, 0), mat(t, 3, 2, 0)));
    expect_error(t, UR_ERR_SHAPE, "mse: shapes differ (inputs (2, 3), (3, 2))");
    ur_tape_free(t);
}

Test(tape_errors, shape_family) {
    ur_tape *t = ur_tape_new();
    cr_expect_null(ur_slice(t, mat(t, 2, 3, 0), 1, 2, 2));
    expect_error(t, UR_ERR_ARG, "slice: range [2, 2+2) is outside 0..3 of axis 1 (inputs (2, 3))");
    ur_tape_reset(t);
    ur_node *xs[2] = {mat(t, 2, 3, 0), mat(t, 3, 3, 0)};
    cr_expect_null(ur_concat(t, 2, xs, 1));
    expect_error(t, UR_ERR_SHAPE, "concat: input 1 differs outside axis 1 (inputs (2, 3), (3, 3))");
    ur_tape_reset(t);
    int ids[2] = {1, 4};
    cr_expect_null(ur_gather(t, mat(t, 4, 2, 0), ids, 2));
    expect_error(t, UR_ERR_ARG, "gather: id 4 at position 1 is outside [0, 4) (inputs (4, 2))");
    ur_tape_reset(t);
    int d[2] = {4, 4};
    cr_expect_null(ur_reshape(t, mat(t, 2, 3, 0), 2, d));
    expect_error(t, UR_ERR_SHAPE, "reshape: 6 elements cannot take the target shape (4, 4) (inputs (2, 3))");
    ur_tape_reset(t);
    cr_expect_null(ur_dropout(t, mat(t, 2, 3, 0), 1, 7));
    expect_error(t, UR_ERR_ARG, "dropout: probability 1 is outside [0, 1) (inputs (2, 3))");
    ur_tape_free(t);
}

Test(tape_errors, fused_gates) {
    ur_tape *t = ur_tape_new();
    ur_expr *e = ur_expr_lstm();
    ur_node *out[2];
    cr_expect_eq(ur_expr_apply(t, e, 2, (ur_node *[]){mat(t, 2, 7, 0), mat(t, 2, 2, 0)}, out), UR_ERR_SHAPE);
    cr_expect_null(out[0]);
    expect_error(t, UR_ERR_SHAPE, "expr 'lstm': input 0 is read as 4 blocks of width N = 2: expected (2, 8), "
                                  "given (2, 7) (inputs (2, 7), (2, 2))");
    ur_expr_free(e);
    ur_tape_free(t);
}

Test(tape_errors, null_handles_and_bad_shapes) {
    ur_tape *t = ur_tape_new();
    cr_expect_null(ur_add(t, mat(t, 1, 1, 0), NULL));
    expect_error(t, UR_ERR_ARG, "add: input 1 is NULL");
    ur_tape_reset(t);
    int d[2] = {3, 0};
    cr_expect_null(ur_zeros(t, 2, d));
    expect_error(t, UR_ERR_SHAPE, "zeros: dimension 1 is 0 (must be >= 1)");
    cr_expect_null(ur_tanh(NULL, NULL));
    cr_expect_str_eq(ur_last_error(), "tanh: tape is NULL");
    cr_expect_eq(ur_backward(t, NULL), UR_ERR_SHAPE); /* the sticky error is returned */
    ur_tape_free(t);
    cr_expect_null(ur_tensor_new(2, d));
    cr_expect_str_eq(ur_last_error(), "ur_tensor_new: dimension 1 is 0 (must be >= 1)");
    int big[4] = {1 << 30, 1 << 30, 1 << 30, 1 << 30};
    cr_expect_null(ur_tensor_new(4, big));
    cr_expect_str_eq(ur_last_error(), "ur_tensor_new: the element count overflows");
}

Test(tape_errors, stale_node_after_reset) {
    ur_tape *t = ur_tape_new();
    ur_node *a = mat(t, 2, 2, 0);
    ur_tape_reset(t);
    cr_expect_null(ur_tanh(t, a));
    expect_error(t, UR_ERR_STATE, "tanh: input 0 belongs to another tape or to a recording erased by ur_tape_reset");
    ur_tape_free(t);
}

Test(tape_errors, backward_needs_scalar_and_once) {
    ur_tape *t = ur_tape_new();
    ur_paramset *ps = ur_paramset_new();
    int d[1] = {3};
    ur_param *p = ur_paramset_add(ps, "w", 1, d);
    ur_node *w = ur_param_node(t, p);
    cr_expect_eq(ur_backward(t, w), UR_ERR_SHAPE);
    expect_error(t, UR_ERR_SHAPE, "backward: the loss must have one element, it has shape (3)");
    ur_tape_reset(t);
    ur_node *l = ur_sum(t, ur_param_node(t, p));
    cr_expect_eq(ur_backward(t, l), UR_OK);
    cr_expect_eq(ur_backward(t, l), UR_ERR_STATE);
    ur_tape_free(t);
    ur_paramset_free(ps);
}

/* A weight used at three steps receives the sum of the three contributions. */
Test(tape, tied_weight_gradients_sum) {
    ur_tape *t = ur_tape_new();
    ur_paramset *ps = ur_paramset_new();
    int d[2] = {1, 1};
    ur_param *p = ur_paramset_add(ps, "w", 2, d);
    p->value.data[0] = 2;
    ur_node *h = ur_scalar(t, 1);
    int one[2] = {1, 1};
    h = ur_reshape(t, h, 2, one);
    for (int s = 0; s < 3; s++) h = ur_matmul(t, h, ur_param_node(t, p), 0, 0); /* h = w^3 */
    cr_expect_eq(ur_backward(t, ur_sum(t, h)), UR_OK);
    cr_expect_float_eq(p->grad.data[0], 12.0f, 1e-6); /* d(w^3)/dw = 3 w^2 */
    /* one parameter node on the tape, used three times */
    int uses = 0, param_nodes = 0;
    for (int i = 0; i < ur_tape_size(t); i++) {
        if (!strcmp(ur_node_op_name(ur_tape_node(t, i)), "leaf") && ur_node_requires_grad(ur_tape_node(t, i)))
            param_nodes++;
        if (!strcmp(ur_node_op_name(ur_tape_node(t, i)), "matmul")) uses++;
    }
    cr_expect_eq(param_nodes, 1);
    cr_expect_eq(uses, 3);
    ur_tape_free(t);
    ur_paramset_free(ps);
}

Test(tape, no_grad_and_detach) {
    ur_tape *t = ur_tape_new();
    ur_paramset *ps = ur_paramset_new();
    int d[1] = {2};
    ur_param *p = ur_paramset_add(ps, "w", 1, d);
    p->value.data[0] = 1, p->value.data[1] = 2;
    ur_tape_set_grad_enabled(t, 0);
    ur_node *y = ur_sum(t, ur_mul(t, ur_param_node(t, p), ur_param_node(t, p)));
    cr_expect_float_eq(ur_node_item(y), 5.0f, 1e-6);
    cr_expect_eq(ur_node_requires_grad(y), 0);
    cr_expect_eq(ur_backward(t, y), UR_OK);
    cr_expect_float_eq(p->grad.data[0], 0.0f, 0);
    ur_tape_reset(t);
    ur_tape_set_grad_enabled(t, 1);
    ur_node *w = ur_param_node(t, p);
    ur_node *l = ur_sum(t, ur_mul(t, w, ur_detach(t, w))); /* gradient w, not 2w */
    cr_expect_eq(ur_backward(t, l), UR_OK);
    cr_expect_float_eq(p->grad.data[0], 1.0f, 1e-6);
    cr_expect_float_eq(p->grad.data[1], 2.0f, 1e-6);
    ur_tape_free(t);
    ur_paramset_free(ps);
}

static ur_node *step(ur_tape *t, ur_param *W, ur_param *b) {
    ur_node *h = mat(t, 4, 3, -5);
    for (int s = 0; s < 5; s++) h = ur_tanh(t, ur_linear(t, h, ur_param_node(t, W), ur_param_node(t, b)));
    int targets[4] = {0, 1, 2, 1};
    return ur_cross_entropy(t, h, targets, NULL);
}

Test(tape, reset_reuses_memory_without_allocating) {
    ur_tape *t = ur_tape_new();
    ur_paramset *ps = ur_paramset_new();
    int dw[2] = {3, 3}, db[1] = {3};
    ur_param *W = ur_paramset_add(ps, "W", 2, dw), *b = ur_paramset_add(ps, "b", 1, db);
    for (int s = 0; s < 2; s++) {
        ur_tape_reset(t);
        cr_assert_eq(ur_backward(t, step(t, W, b)), UR_OK);
    }
    uint64_t before = ur_alloc_count();
    for (int s = 0; s < 10; s++) {
        ur_tape_reset(t);
        cr_assert_eq(ur_backward(t, step(t, W, b)), UR_OK);
    }
    cr_expect_eq(ur_alloc_count(), before, "%llu allocations in 10 steps",
                 (unsigned long long)(ur_alloc_count() - before));
    ur_tape_free(t);
    ur_paramset_free(ps);
}

/* An arena chunk of 4 MiB or more starts on a 2 MiB boundary, where the kernel can
 * back it with huge pages: a large value that opens a chunk starts on one, before
 * and after the reset that joins the tape's chunks into one. */
Test(tape, large_arena_chunks_start_on_2_mib_boundaries) {
    const uintptr_t huge = (uintptr_t)1 << 21;
    int small[2] = {4, 4}, large[2] = {1024, 1280}; /* 5 MiB of float, 10 of double */
    ur_tape *t = ur_tape_new();
    cr_assert_not_null(ur_zeros(t, 2, small)); /* opens the first chunk, of 1 MiB */
    ur_node *x = ur_zeros(t, 2, large);        /* needs a chunk of its own */
    cr_assert_not_null(x);
    uintptr_t at = (uintptr_t)ur_node_cdata(x);
    cr_expect_eq(at % huge, 0, "value at %#jx", (uintmax_t)at);
    ur_tape_reset(t);
    x = ur_zeros(t, 2, large);
    cr_assert_not_null(x);
    at = (uintptr_t)ur_node_cdata(x);
    cr_expect_eq(at % huge, 0, "after reset: value at %#jx", (uintmax_t)at);
    ur_tape_free(t);
}

Test(tape, print_and_dot) {
    ur_tape *t = ur_tape_new();
    ur_paramset *ps = ur_paramset_new();
    int d[2] = {2, 2};
    ur_param *W = ur_paramset_add(ps, "W_hh", 2, d);
    ur_node *h = mat(t, 1, 2, 0);
    ur_node_set_label(t, h, "h0");
    for (int s = 1; s <= 2; s++) {
        char g[16];
        snprintf(g, sizeof g, "t=%d", s);
        ur_tape_begin_group(t, g);
        h = ur_tanh(t, ur_matmul(t, h, ur_param_node(t, W), 0, 0));
        ur_tape_end_group(t);
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ur_tape_print(t, f);
    fclose(f);
    cr_expect_str_eq(buf, "   0  input         (1, 2)            [h0]\n"
                          "   1  param         (2, 2)            [W_hh]\n"
                          "   2  matmul        (1, 2)           <- 0 1  {t=1}\n"
                          "   3  tanh          (1, 2)           <- 2  {t=1}\n"
                          "   4  matmul        (1, 2)           <- 3 1  {t=2}\n"
                          "   5  tanh          (1, 2)           <- 4  {t=2}\n");
    free(buf);
    f = open_memstream(&buf, &len);
    ur_tape_dot(t, f);
    fclose(f);
    cr_expect(strstr(buf, "n1 [label=\"W_hh\\n(2, 2)\", shape=box") != NULL, "%s", buf);
    cr_expect(strstr(buf, "subgraph cluster_0") && strstr(buf, "label=\"t=2\""), "%s", buf);
    cr_expect(strstr(buf, "n1 -> n2;") && strstr(buf, "n1 -> n4;"), "tied W_hh has two out-edges: %s", buf);
    free(buf);
    ur_tape_free(t);
    ur_paramset_free(ps);
}

Test(tape, anomaly_mode_names_the_op) {
    ur_tape *t = ur_tape_new();
    ur_tape_set_anomaly(t, 1);
    ur_real v[2] = {1000, 1};
    int d[1] = {2};
    ur_node *x = ur_input_data(t, 1, d, v);
    cr_expect_null(ur_exp(t, ur_exp(t, x)));
    cr_expect_eq(ur_tape_error(t), UR_ERR_NUMERIC);
    cr_expect(strstr(ur_tape_errmsg(t), "op 'exp' (node 1, shape (2)) produced NaN or Inf") != NULL, "%s",
              ur_tape_errmsg(t));
    ur_tape_free(t);
}

Test(tape, cross_entropy_mask_gives_zero_gradient) {
    ur_tape *t = ur_tape_new();
    ur_paramset *ps = ur_paramset_new();
    int d[2] = {3, 4};
    ur_param *p = ur_paramset_add(ps, "logits", 2, d);
    for (int i = 0; i < 12; i++) p->value.data[i] = (ur_real)sin(i);
    int targets[3] = {1, 2, 3};
    ur_real mask[3] = {1, 0, 1};
    ur_node *l = ur_cross_entropy(t, ur_param_node(t, p), targets, mask);
    cr_assert_eq(ur_backward(t, l), UR_OK);
    for (int j = 0; j < 4; j++) cr_expect_eq(p->grad.data[4 + j], 0, "padding row got gradient");
    ur_tape_free(t);
    ur_paramset_free(ps);
}

/* ur_backward_from(y, dy) gives every gradient bit for bit as ur_backward of the
 * recorded loss sum(y * dy) (whose derivative hands y exactly dy), with the backward
 * plan on and off, for a layer whose output y is read only by that loss. */
static void layer_grads(ur_rnn_kind kind, int plan, int seeded, ur_real *out, size_t *n_out) {
    enum { T = 5, B = 3, I = 4, H = 6 };
    ur_paramset *ps = ur_paramset_new();
    ur_rnn_config cfg = ur_rnn_defaults(kind, I, H);
    ur_rnn *rnn = ur_rnn_new(ps, "rnn", &cfg);
    ur_tape *t = ur_tape_new();
    ur_tape_set_backward_plan(t, plan);
    ur_tensor *x = ur_tensor_new(3, (int[]){T, B, I});
    ur_real dy[T * B * H];
    for (size_t i = 0; i < x->size; i++) x->data[i] = (ur_real)((i * 37) % 19) / 19 - (ur_real)0.5;
    for (int i = 0; i < T * B * H; i++) dy[i] = (ur_real)((i * 53) % 23) / 23 - (ur_real)0.4;
    ur_node *xv = ur_variable(t, x);
    ur_node *y = ur_rnn_forward(rnn, t, xv, NULL, NULL);
    cr_assert_not_null(y, "%s", ur_tape_errmsg(t));
    if (seeded) {
        cr_assert_eq(ur_backward_from(t, y, dy), UR_OK, "%s", ur_tape_errmsg(t));
    } else {
        ur_node *R = ur_input_data(t, 3, (int[]){T, B, H}, dy);
        cr_assert_eq(ur_backward(t, ur_sum(t, ur_mul(t, y, R))), UR_OK, "%s", ur_tape_errmsg(t));
    }
    size_t n = 0;
    memcpy(out, ur_node_grad(xv), x->size * sizeof *out);
    n += x->size;
    for (int i = 0; i < ur_paramset_count(ps); i++) {
        const ur_param *p = ur_paramset_get(ps, i);
        memcpy(out + n, p->grad.data, p->grad.size * sizeof *out);
        n += p->grad.size;
    }
    *n_out = n;
    ur_tensor_free(x);
    ur_tape_free(t);
    ur_rnn_free(rnn);
    ur_paramset_free(ps);
}

Test(tape, backward_from_equals_backward_of_the_dot_loss) {
    static ur_real a[4096], b[4096];
    const ur_rnn_kind kinds[] = {UR_RNN_LSTM, UR_RNN_GRU, UR_RNN_TANH};
    for (int k = 0; k < 3; k++)
        for (int plan = 0; plan < 2; plan++) {
            size_t na, nb;
            layer_grads(kinds[k], plan, 0, a, &na);
            layer_grads(kinds[k], plan, 1, b, &nb);
            cr_assert_eq(na, nb);
            cr_assert_gt(na, 100);
            size_t nonzero = 0;
            for (size_t i = 0; i < na; i++) {
                cr_assert(memcmp(&a[i], &b[i], sizeof a[i]) == 0,
                          "kind %d plan %d: value %zu is %.9g from the loss, %.9g seeded", k, plan, i, (double)a[i],
                          (double)b[i]);
                nonzero += a[i] != 0;
            }
            cr_expect_gt(nonzero, na / 2, "kind %d: most gradients are nonzero", k);
        }
}

/* y may be any node: nodes recorded after it are not walked; dy is checked. */
Test(tape_errors, backward_from_checks_dy_and_walks_from_y) {
    ur_tape *t = ur_tape_new();
    ur_paramset *ps = ur_paramset_new();
    ur_param *p = ur_paramset_add(ps, "w", 1, (int[]){3});
    for (int i = 0; i < 3; i++) p->value.data[i] = (ur_real)(i + 1);
    ur_node *w = ur_param_node(t, p);
    ur_node *y = ur_mul(t, w, w);             /* y = w^2 */
    ur_node *later = ur_sum(t, ur_exp(t, y)); /* recorded after y: not walked */
    cr_assert_not_null(later);
    cr_expect_eq(ur_backward_from(t, y, NULL), UR_ERR_ARG);
    expect_error(t, UR_ERR_ARG, "backward_from: dy is NULL");
    ur_tape_reset(t);
    w = ur_param_node(t, p);
    y = ur_mul(t, w, w);
    ur_sum(t, ur_exp(t, y));
    const ur_real bad[3] = {1, (ur_real)NAN, 2};
    cr_expect_eq(ur_backward_from(t, y, bad), UR_ERR_NUMERIC);
    expect_error(t, UR_ERR_NUMERIC,
                 "backward_from: dy[1] is nan; the gradient given for node 1 (shape (3)) must be finite");
    cr_expect_float_eq(p->grad.data[1], 0, 0); /* nothing was walked */
    ur_tape_reset(t);
    w = ur_param_node(t, p);
    y = ur_mul(t, w, w);
    ur_sum(t, ur_exp(t, y));
    const ur_real dy[3] = {1, -2, (ur_real)0.5};
    cr_assert_eq(ur_backward_from(t, y, dy), UR_OK, "%s", ur_tape_errmsg(t));
    for (int i = 0; i < 3; i++) /* d(w^2 . dy)/dw = 2 w dy */
        cr_expect_float_eq(p->grad.data[i], 2 * p->value.data[i] * dy[i], 1e-6, "w[%d]", i);
    cr_expect_eq(ur_backward_from(t, y, dy), UR_ERR_STATE);
    expect_error(t, UR_ERR_STATE,
                 "backward_from: this recording was already walked; reset the tape and record the step again");
    cr_expect_eq(ur_backward_from(NULL, y, dy), UR_ERR_ARG);
    ur_tape_free(t);
    ur_paramset_free(ps);
}
