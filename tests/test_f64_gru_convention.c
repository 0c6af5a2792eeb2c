/* The two ways of writing the GRU's update are one model. unroll (like PyTorch and
 * Cho et al. 2014) keeps the old state where z = 1:
 *     h_t = (1 - z_t) * n_t + z_t * h_{t-1}
 * and much lecture material writes the same cell with the roles swapped,
 *     h_t = (1 - u_t) * h_{t-1} + u_t * n_t        (u = 1 copies the candidate)
 * With u_t = 1 - z_t = sigmoid(-a_t) the two agree, so a model converts by negating
 * the update gate's block of W_ih, W_hh, b_ih and b_hh. This test runs ur_rnn's GRU
 * against the lecture's form, written from primitive ops with the negated block,
 * and compares the outputs. */
#include <criterion/criterion.h>
#include <math.h>

#include "unroll.h"

enum { T = 5, B = 2, IN = 3, H = 4 };

/* (rows, 3H) parameter -> its gate block k as a (rows, H) or (H) node */
static ur_node *block(ur_tape *t, ur_node *p, int k) { return ur_slice(t, p, ur_node_ndim(p) - 1, k * H, H); }

Test(gru_convention, negated_update_gate_gives_the_lecture_form) {
    ur_paramset *ps = ur_paramset_new();
    ur_rnn_config cfg = ur_rnn_defaults(UR_RNN_GRU, IN, H);
    cfg.seed = 5;
    ur_rnn *r = ur_rnn_new(ps, "rnn", &cfg);
    cr_assert_not_null(r, "%s", ur_last_error());
    ur_rng rng;
    ur_rng_seed(&rng, 9);
    ur_real x[T * B * IN];
    for (int i = 0; i < T * B * IN; i++) x[i] = (ur_real)(2 * ur_rng_uniform(&rng) - 1);

    ur_tape *t = ur_tape_new();
    ur_node *xn = ur_input_data(t, 3, (int[]){T, B, IN}, x);
    ur_node *out = ur_rnn_forward(r, t, xn, NULL, NULL); /* (T, B, H) */
    cr_assert_not_null(out, "%s", ur_tape_errmsg(t));

    /* the lecture's form, u = sigmoid(-(gate pre-activation)): Wih etc. are (in, 3H) */
    const char *names[4] = {"rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0"};
    ur_node *P[4];
    for (int i = 0; i < 4; i++) {
        ur_param *p = ur_paramset_find(ps, names[i]);
        cr_assert_not_null(p, "%s", names[i]);
        P[i] = ur_param_node(t, p);
    }
    ur_node *h = ur_zeros(t, 2, (int[]){B, H});
    for (int s = 0; s < T; s++) {
        ur_node *xs = ur_reshape(t, ur_slice(t, xn, 0, s, 1), 2, (int[]){B, IN});
        ur_node *gx[3], *gh[3];
        for (int k = 0; k < 3; k++) {
            gx[k] = ur_linear(t, xs, block(t, P[0], k), block(t, P[2], k));
            gh[k] = ur_linear(t, h, block(t, P[1], k), block(t, P[3], k));
        }
        ur_node *rg = ur_sigmoid(t, ur_add(t, gx[0], gh[0]));
        ur_node *u = ur_sigmoid(t, ur_neg(t, ur_add(t, gx[1], gh[1]))); /* the negated block */
        ur_node *n = ur_tanh(t, ur_add(t, gx[2], ur_mul(t, rg, gh[2])));
        h = ur_add(t, ur_mul(t, ur_one_minus(t, u), h), ur_mul(t, u, n));
        const ur_real *want = ur_node_cdata(out) + (size_t)s * B * H;
        for (int i = 0; i < B * H; i++)
            cr_assert(fabs(ur_node_cdata(h)[i] - want[i]) < 1e-14, "t=%d i=%d: %.17g vs %.17g", s, i,
                      ur_node_cdata(h)[i], want[i]);
    }
    cr_assert_eq(ur_tape_error(t), UR_OK, "%s", ur_tape_errmsg(t));
    ur_tape_free(t);
    ur_rnn_free(r);
    ur_paramset_free(ps);
}
