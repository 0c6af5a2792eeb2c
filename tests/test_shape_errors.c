/* Shape errors name what was expected and what was given: reshape's target, the
 * attention, RNN and tree-network inputs. */
#include <criterion/criterion.h>
#include <string.h>

#include "unroll.h"

static ur_node *zeros(ur_tape *t, int ndim, int d0, int d1, int d2) {
    int d[3] = {d0, d1, d2};
    return ur_zeros(t, ndim, d);
}

static void expect_tape_error(ur_tape *t, const char *text) {
    cr_expect_eq(ur_tape_error(t), UR_ERR_SHAPE, "%s", ur_tape_errmsg(t));
    cr_expect_str_eq(ur_tape_errmsg(t), text);
}

Test(shape_errors, reshape_names_the_target) {
    ur_tape *t = ur_tape_new();
    cr_expect_null(ur_reshape(t, zeros(t, 2, 2, 3, 0), 3, (int[]){4, -1, 2}));
    expect_tape_error(t, "reshape: target (4, -1, 2): cannot infer dimension 1 from 6 elements (inputs (2, 3))");
    ur_tape_reset(t);
    cr_expect_null(ur_reshape(t, zeros(t, 2, 2, 3, 0), 2, (int[]){0, 6}));
    expect_tape_error(t, "reshape: target (0, 6): dimension 0 is 0 (must be >= 1, or -1 once) (inputs (2, 3))");
    ur_tape_reset(t);
    cr_expect_null(ur_reshape(t, zeros(t, 2, 2, 3, 0), 5, (int[]){1, 1, 1, 1, 6}));
    expect_tape_error(t, "reshape: bad target rank 5 (must be 0..4 with dims given) (inputs (2, 3))");
    ur_tape_free(t);
}

static ur_attention make_attention(ur_paramset *ps, ur_attn_score score, int q, int k) {
    ur_attention a;
    ur_rng r;
    ur_rng_seed(&r, 1);
    cr_assert_eq(ur_attention_make(&a, ps, "attn", score, q, k, 5, &r), UR_OK, "%s", ur_last_error());
    return a;
}

Test(shape_errors, attention_keys_and_query) {
    ur_paramset *ps = ur_paramset_new();
    ur_attention a = make_attention(ps, UR_ATTN_GENERAL, 6, 4);
    ur_tape *t = ur_tape_new();
    cr_expect_null(ur_attention_apply(t, &a, zeros(t, 2, 2, 6, 0), zeros(t, 2, 3, 4, 0), NULL, NULL));
    expect_tape_error(t, "attention_memory: encoder states must be (B, S, 4), got (3, 4)");
    ur_tape_reset(t);
    cr_expect_null(ur_attention_apply(t, &a, zeros(t, 2, 2, 5, 0), zeros(t, 3, 2, 7, 4), NULL, NULL));
    expect_tape_error(t, "attention: query must be (2, 6) or (1, 6), got (2, 5)");
    ur_tape_free(t);
    ur_paramset_free(ps);
}

Test(shape_errors, rnn_input) {
    ur_paramset *ps = ur_paramset_new();
    ur_rnn_config c = ur_rnn_defaults(UR_RNN_GRU, 3, 4);
    ur_rnn *r = ur_rnn_new(ps, "rnn", &c);
    ur_tape *t = ur_tape_new();
    cr_expect_null(ur_rnn_forward(r, t, zeros(t, 3, 5, 2, 7), NULL, NULL));
    cr_expect(strstr(ur_tape_errmsg(t), "x must be (T, B, 3), got (5, 2, 7)") != NULL, "%s", ur_tape_errmsg(t));
    ur_tape_free(t);
    ur_rnn_free(r);
    ur_paramset_free(ps);
}
