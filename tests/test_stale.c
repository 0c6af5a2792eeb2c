/* Stale nodes: every ur_node_* reader refuses a node erased by ur_tape_reset, even
 * after the next recording has built the same graph again. Each reader returns its
 * documented "no value" and leaves UR_ERR_STATE with a message in ur_last_error. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "unroll.h"

/* The same small graph every step: x (2, 3) -> tanh -> sum. */
typedef struct step {
    ur_node *x, *h, *loss, *w;
} step;

static step record(ur_tape *t, ur_param *p, ur_real start) {
    ur_real v[6];
    for (int i = 0; i < 6; i++) v[i] = start + (ur_real)i / 10;
    int d[2] = {2, 3};
    step s;
    s.x = ur_input_data(t, 2, d, v);
    s.w = ur_param_node(t, p);
    s.h = ur_tanh(t, ur_mul(t, s.x, s.w));
    s.loss = ur_sum(t, s.h);
    cr_assert_not_null(s.loss, "%s", ur_tape_errmsg(t));
    return s;
}

typedef struct fixture {
    ur_tape *t;
    ur_paramset *ps;
    ur_param *p;
    step old; /* recorded, backward run, then erased by a reset */
    step cur; /* the same graph recorded again after the reset */
} fixture;

static fixture fx;

static void setup(void) {
    fx.t = ur_tape_new();
    fx.ps = ur_paramset_new();
    int d[2] = {2, 3};
    fx.p = ur_paramset_add(fx.ps, "w", 2, d);
    cr_assert_not_null(fx.p);
    ur_tensor_fill(&fx.p->value, 1);
    fx.old = record(fx.t, fx.p, 0);
    cr_assert_eq(ur_backward(fx.t, fx.old.loss), UR_OK);
    ur_tape_reset(fx.t);
    fx.cur = record(fx.t, fx.p, 5); /* other values, same graph */
    ur_clear_error();
}

static void teardown(void) {
    ur_tape_free(fx.t);
    ur_paramset_free(fx.ps);
}

/* The last error names the reader and says the node was erased by a reset. */
static void expect_stale_error(const char *reader) {
    const char *msg = ur_last_error();
    cr_expect(strstr(msg, reader) == msg, "message '%s' should start with %s", msg, reader);
    cr_expect(strstr(msg, "erased by ur_tape_reset") != NULL, "message: %s", msg);
    ur_clear_error();
}

/* The current recording reads fine and leaves no error (the check is not too eager). */
static void expect_no_error(void) { cr_expect_str_eq(ur_last_error(), ""); }

TestSuite(stale, .init = setup, .fini = teardown);

Test(stale, id) {
    cr_expect_eq(ur_node_id(fx.old.h), -1);
    expect_stale_error("ur_node_id");
    cr_expect_eq(ur_node_id(fx.cur.h), 3);
    expect_no_error();
}

Test(stale, ndim) {
    cr_expect_eq(ur_node_ndim(fx.old.h), 0);
    expect_stale_error("ur_node_ndim");
    cr_expect_eq(ur_node_ndim(fx.cur.h), 2);
    expect_no_error();
}

Test(stale, dim) {
    cr_expect_eq(ur_node_dim(fx.old.h, -1), 0);
    expect_stale_error("ur_node_dim");
    cr_expect_eq(ur_node_dim(fx.cur.h, -1), 3);
    expect_no_error();
}

Test(stale, shape) {
    cr_expect_null(ur_node_shape(fx.old.h));
    expect_stale_error("ur_node_shape");
    cr_expect_eq(ur_node_shape(fx.cur.h)->dims[0], 2);
    expect_no_error();
}

Test(stale, size) {
    cr_expect_eq(ur_node_size(fx.old.h), 0);
    expect_stale_error("ur_node_size");
    cr_expect_eq(ur_node_size(fx.cur.h), 6);
    expect_no_error();
}

Test(stale, data) {
    cr_expect_null(ur_node_data(fx.old.h));
    expect_stale_error("ur_node_data");
    cr_expect_float_eq(ur_node_data(fx.cur.h)[0], tanh(5.0), 1e-6);
    expect_no_error();
}

Test(stale, cdata) {
    cr_expect_null(ur_node_cdata(fx.old.x));
    expect_stale_error("ur_node_cdata");
    cr_expect_float_eq(ur_node_cdata(fx.cur.x)[1], 5.1, 1e-6);
    expect_no_error();
}

Test(stale, grad) {
    cr_expect_null(ur_node_grad(fx.old.h));
    expect_stale_error("ur_node_grad");
    cr_expect_eq(ur_backward(fx.t, fx.cur.loss), UR_OK);
    cr_expect_float_eq(ur_node_grad(fx.cur.h)[0], 1.0, 1e-6);
    expect_no_error();
}

Test(stale, item) {
    cr_expect(isnan(ur_node_item(fx.old.h)));
    /* the text docs/api.md quotes */
    cr_expect_str_eq(ur_last_error(), "ur_node_item: node 3 (op 'tanh', shape (2, 3)) was erased by ur_tape_reset; "
                                      "read or copy it before resetting the tape");
    cr_expect(isnan(ur_node_item(fx.old.loss)));
    expect_stale_error("ur_node_item");
    double want = 0;
    for (int i = 0; i < 6; i++) want += tanh(5 + i / 10.0);
    cr_expect_float_eq(ur_node_item(fx.cur.loss), want, 1e-5);
    expect_no_error();
}

Test(stale, op_name) {
    cr_expect_str_eq(ur_node_op_name(fx.old.h), "?");
    expect_stale_error("ur_node_op_name");
    cr_expect_str_eq(ur_node_op_name(fx.cur.h), "tanh");
    expect_no_error();
}

Test(stale, requires_grad) {
    cr_expect_eq(ur_node_requires_grad(fx.old.h), 0);
    expect_stale_error("ur_node_requires_grad");
    cr_expect_eq(ur_node_requires_grad(fx.cur.h), 1);
    expect_no_error();
}

/* A parameter's node of the old recording is stale too; the new one is a new node. */
Test(stale, parameter_node) {
    cr_expect_neq(fx.old.w, fx.cur.w);
    cr_expect_null(ur_node_grad(fx.old.w));
    expect_stale_error("ur_node_grad");
    cr_expect_eq(ur_node_cdata(fx.cur.w), fx.p->value.data);
    expect_no_error();
}

/* copy_to returns UR_ERR_STATE and leaves the destination as it was. */
Test(stale, copy_to_copies_nothing) {
    ur_tensor *dst = ur_tensor_new_2d(2, 3);
    ur_tensor_fill(dst, -7);
    cr_expect_eq(ur_node_copy_to(fx.old.h, dst), UR_ERR_STATE);
    expect_stale_error("ur_node_copy_to");
    for (int i = 0; i < 6; i++) cr_expect_eq(dst->data[i], (ur_real)-7);
    cr_expect_eq(ur_node_copy_to(fx.cur.h, dst), UR_OK);
    cr_expect_float_eq(dst->data[0], tanh(5.0), 1e-6);
    ur_tensor_free(dst);
}

/* Labels are graph building: a stale node is an error of the tape. */
Test(stale, set_label_fails_on_the_tape) {
    ur_node_set_label(fx.t, fx.old.h, "h");
    cr_expect_eq(ur_tape_error(fx.t), UR_ERR_STATE);
    cr_expect(strstr(ur_tape_errmsg(fx.t), "ur_node_set_label: input 0 belongs to another tape or to a "
                                           "recording erased by ur_tape_reset") != NULL,
              "%s", ur_tape_errmsg(fx.t));
}

/* NULL stays a silent "no value": the message of the op that failed is kept. */
Test(stale, null_keeps_the_last_message) {
    ur_set_error(UR_ERR_SHAPE, "some op: bad shape");
    cr_expect(isnan(ur_node_item(NULL)));
    cr_expect_null(ur_node_cdata(NULL));
    cr_expect_eq(ur_node_id(NULL), -1);
    cr_expect_str_eq(ur_last_error(), "some op: bad shape");
}

/* Ops refuse the old node as before, even where its memory would have been reused. */
Test(stale, ops_refuse_the_old_node) {
    cr_expect_null(ur_tanh(fx.t, fx.old.h));
    cr_expect_eq(ur_tape_error(fx.t), UR_ERR_STATE);
}

/* Truncated BPTT: the carried state must be copied before the reset. Copying it
 * after the reset (and after the next segment was recorded) is refused. */
Test(stale_bptt, copy_state_after_reset_is_an_error) {
    ur_paramset *ps = ur_paramset_new();
    ur_rnn_config c = ur_rnn_defaults(UR_RNN_LSTM, 3, 4);
    ur_rnn *r = ur_rnn_new(ps, "rnn", &c);
    cr_assert_not_null(r, "%s", ur_last_error());
    ur_rnn_state *state = ur_rnn_state_new(r, 2);
    ur_tape *t = ur_tape_new();
    ur_real xv[4 * 2 * 3];
    for (int i = 0; i < 24; i++) xv[i] = (ur_real)((i % 7) - 3) / 4;
    int d[3] = {4, 2, 3};
    ur_rnn_final f = {0};
    for (int seg = 0; seg < 2; seg++) {
        ur_tape_reset(t);
        ur_rnn_args a = {0};
        cr_assert_eq(ur_rnn_state_feed(state, t, &a), UR_OK);
        ur_node *y = ur_rnn_forward(r, t, ur_input_data(t, 3, d, xv), &a, seg ? NULL : &f);
        cr_assert_not_null(y, "%s", ur_tape_errmsg(t));
        /* the right place: ur_rnn_state_save(state, &f) here, before the reset */
    }
    /* segment 0's final states were erased by the reset of segment 1 */
    cr_expect_eq(ur_rnn_state_save(state, &f), UR_ERR_STATE);
    cr_expect(strstr(ur_last_error(), "ur_node_copy_to: node") != NULL, "%s", ur_last_error());
    cr_expect(strstr(ur_last_error(), "erased by ur_tape_reset") != NULL, "%s", ur_last_error());
    for (int i = 0; i < 8; i++) cr_expect_eq(state->h[0]->data[i], (ur_real)0, "nothing copied");
    ur_tape_free(t);
    ur_rnn_state_free(state);
    ur_rnn_free(r);
    ur_paramset_free(ps);
}
