/* Recurrent networks of nn/ur_rnn.h in double precision: gradient checks of whole
 * cells and layers (every parameter, the input and the initial states), padding
 * that contributes exactly nothing, carried states, variational dropout masks,
 * BPTT as a sum of per-step contributions, truncated BPTT, initialization, errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "support.h"
#include "unroll.h"

/* ---- a network, its inputs as parameters, and a weighted-sum loss ---- */

typedef struct net {
    ur_paramset *ps;
    ur_rnn *rnn;
    int T, B, n;            /* n = layers * directions */
    ur_param *x;            /* (T, B, in) */
    ur_param *h0[UR_RNN_MAX_STATES], *c0[UR_RNN_MAX_STATES];
    ur_tensor *wy;          /* (T, B, out): fixed random weights of the outputs */
    ur_tensor *wh, *wc;     /* (n*B*H): weights of the final states */
    const ur_real *mask;
    int training, with_states;
    uint64_t seed;
} net;

static void fill(ur_tensor *t, ur_rng *r, double a) { ur_tensor_uniform(t, r, (ur_real)-a, (ur_real)a); }

static net *net_new(const ur_rnn_config *cfg, int T, int B, int with_states, uint64_t seed) {
    static net n;
    memset(&n, 0, sizeof n);
    n.ps = ur_paramset_new();
    n.rnn = ur_rnn_new(n.ps, "rnn", cfg);
    cr_assert(n.rnn, "%s", ur_last_error());
    n.T = T, n.B = B, n.with_states = with_states;
    n.n = cfg->num_layers * (cfg->bidirectional ? 2 : 1);
    ur_rng rng;
    ur_rng_seed(&rng, seed);
    int H = cfg->hidden_size, dx[3] = {T, B, cfg->input_size}, dh[2] = {B, H};
    n.x = ur_paramset_add(n.ps, "x", 3, dx);
    fill(&n.x->value, &rng, 1);
    for (int k = 0; with_states && k < n.n; k++) {
        char name[32];
        snprintf(name, sizeof name, "h0.%d", k);
        fill(&(n.h0[k] = ur_paramset_add(n.ps, name, 2, dh))->value, &rng, 0.8);
        if (ur_rnn_config_cell(cfg)->n_states > 1) {
            snprintf(name, sizeof name, "c0.%d", k);
            fill(&(n.c0[k] = ur_paramset_add(n.ps, name, 2, dh))->value, &rng, 0.8);
        }
    }
    int dy[3] = {T, B, ur_rnn_output_size(n.rnn)};
    n.wy = ur_tensor_new(3, dy);
    n.wh = ur_tensor_new_1d(n.n * B * H);
    n.wc = ur_tensor_new_1d(n.n * B * H);
    fill(n.wy, &rng, 1);
    fill(n.wh, &rng, 1);
    fill(n.wc, &rng, 1);
    return &n;
}

static void net_free(net *n) {
    ur_rnn_free(n->rnn);
    ur_paramset_free(n->ps);
    ur_tensor_free(n->wy);
    ur_tensor_free(n->wh);
    ur_tensor_free(n->wc);
}

/* loss = sum(y * wy) + sum_k sum(h_n[k] * wh_k) + sum_k sum(c_n[k] * wc_k) */
static ur_node *net_loss(ur_tape *t, void *ctx) {
    net *n = ctx;
    ur_rnn_args a;
    memset(&a, 0, sizeof a);
    a.mask = n->mask;
    a.training = n->training;
    a.seed = n->seed;
    for (int k = 0; n->with_states && k < n->n; k++) {
        a.h0[k] = ur_param_node(t, n->h0[k]);
        a.c0[k] = n->c0[k] ? ur_param_node(t, n->c0[k]) : NULL;
    }
    ur_rnn_final f;
    ur_node *y = ur_rnn_forward(n->rnn, t, ur_param_node(t, n->x), &a, &f);
    ur_node *loss = ur_sum(t, ur_mul(t, y, ur_input(t, n->wy)));
    int bh[2] = {n->B, ur_rnn_config_of(n->rnn)->hidden_size};
    size_t per = (size_t)bh[0] * bh[1];
    for (int k = 0; k < f.n; k++) {
        loss = ur_add(t, loss, ur_sum(t, ur_mul(t, f.h[k], ur_input_data(t, 2, bh, n->wh->data + k * per))));
        if (f.c[k])
            loss = ur_add(t, loss, ur_sum(t, ur_mul(t, f.c[k], ur_input_data(t, 2, bh, n->wc->data + k * per))));
    }
    return loss;
}

static void expect_gradcheck(net *n, const char *what) {
    ur_param *ps[64];
    int np = ur_paramset_count(n->ps);
    cr_assert(np <= 64);
    for (int i = 0; i < np; i++) ps[i] = ur_paramset_get(n->ps, i);
    ur_tape *t = ur_tape_new();
    ur_gradcheck_result r;
    ur_status st = ur_gradcheck(t, net_loss, n, ps, np, 1e-6, &r);
    cr_expect_eq(st, UR_OK, "%s: %s", what, ur_last_error());
    cr_expect(r.max_rel_err < 1e-6, "%s: relative error %.3e at %s", what, r.max_rel_err, r.worst);
    cr_expect(r.n_checked > 40, "%s: only %zu elements checked", what, r.n_checked);
    ur_tape_free(t);
}

static ur_rnn_config cfg_of(ur_rnn_kind kind, int in, int H, int layers, int bidir, ur_rnn_merge merge) {
    ur_rnn_config c = ur_rnn_defaults(kind, in, H);
    c.num_layers = layers;
    c.bidirectional = bidir;
    c.merge = merge;
    c.seed = 7;
    return c;
}

static void check_config(ur_rnn_config c, const ur_real *mask, int T, int B, int training, const char *what) {
    net *n = net_new(&c, T, B, 1, 11);
    n->mask = mask;
    n->training = training;
    n->seed = 99;
    expect_gradcheck(n, what);
    net_free(n);
}

/* ---- gradient checks ---- */

Test(rnn_grad, every_cell_kind_one_layer) {
    const ur_rnn_kind kinds[5] = {UR_RNN_TANH, UR_RNN_RELU, UR_RNN_GRU, UR_RNN_GRU_RESET_BEFORE, UR_RNN_LSTM};
    for (int i = 0; i < 5; i++)
        check_config(cfg_of(kinds[i], 3, 4, 1, 0, 0), NULL, 4, 2, 0, ur_rnn_kind_name(kinds[i]));
}

Test(rnn_grad, two_layers) {
    check_config(cfg_of(UR_RNN_LSTM, 3, 3, 2, 0, 0), NULL, 3, 2, 0, "lstm 2 layers");
    check_config(cfg_of(UR_RNN_GRU_RESET_BEFORE, 3, 3, 2, 0, 0), NULL, 3, 2, 0, "gru reset-before 2 layers");
}

Test(rnn_grad, bidirectional_concat_and_sum) {
    check_config(cfg_of(UR_RNN_LSTM, 2, 3, 2, 1, UR_RNN_MERGE_CONCAT), NULL, 3, 2, 0, "lstm bi concat");
    check_config(cfg_of(UR_RNN_GRU, 2, 3, 2, 1, UR_RNN_MERGE_SUM), NULL, 3, 2, 0, "gru bi sum");
    check_config(cfg_of(UR_RNN_TANH, 3, 3, 1, 1, UR_RNN_MERGE_SUM), NULL, 4, 2, 0, "tanh bi sum");
}

/* lengths 4, 2, 3 in a batch of T = 4 */
static const ur_real mask_423[12] = {1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0};

Test(rnn_grad, masked_variable_lengths) {
    check_config(cfg_of(UR_RNN_LSTM, 2, 3, 2, 1, 0), mask_423, 4, 3, 0, "lstm bi masked");
    check_config(cfg_of(UR_RNN_GRU_RESET_BEFORE, 2, 3, 1, 1, UR_RNN_MERGE_SUM), mask_423, 4, 3, 0,
                 "gru reset-before bi masked");
    check_config(cfg_of(UR_RNN_RELU, 2, 3, 1, 0, 0), mask_423, 4, 3, 0, "relu masked");
}

/* Residual stacks: the gradient check, and the skip itself: with every weight of
 * layer 1 at zero, the cell outputs h = 0 there (tanh(0) = 0), so the output of the
 * stack is layer 0's output unchanged. */
Test(rnn_grad, residual_layers) {
    ur_rnn_config c = cfg_of(UR_RNN_LSTM, 3, 3, 3, 0, 0);
    c.residual = 1;
    check_config(c, NULL, 3, 2, 0, "lstm 3 layers, residual");
    c = cfg_of(UR_RNN_GRU, 2, 3, 2, 1, UR_RNN_MERGE_CONCAT);
    c.residual = 1;
    c.dropout = 0.3;
    check_config(c, mask_423, 4, 3, 1, "gru bi concat, residual, masked, dropout");

    c = cfg_of(UR_RNN_TANH, 3, 4, 2, 0, 0);
    c.residual = 1;
    ur_paramset *ps = ur_paramset_new();
    ur_rnn *deep = ur_rnn_new(ps, "deep", &c);
    c.num_layers = 1;
    ur_rnn *one = ur_rnn_new(ps, "one", &c); /* seed 7 as well: layer 0 has the same weights */
    cr_assert(deep && one, "%s", ur_last_error());
    ur_rnn_cell *l1 = ur_rnn_cell_at(deep, 1, 0);
    for (int i = 0; i < l1->def->n_params; i++) ur_tensor_fill(&l1->p[i]->value, 0);
    ur_tape *t = ur_tape_new();
    ur_rng rng;
    ur_rng_seed(&rng, 3);
    ur_tensor *x = ur_tensor_new(3, (int[]){3, 2, 3});
    fill(x, &rng, 1);
    ur_node *a = ur_rnn_forward(deep, t, ur_input(t, x), NULL, NULL);
    ur_node *b = ur_rnn_forward(one, t, ur_input(t, x), NULL, NULL);
    cr_assert(a && b, "%s", ur_tape_errmsg(t));
    for (int i = 0; i < 3 * 2 * 4; i++)
        cr_expect_float_eq(ur_node_cdata(a)[i], ur_node_cdata(b)[i], 1e-12, "element %d", i);
    c.residual = 2;
    cr_expect_null(ur_rnn_new(ps, "bad", &c));
    cr_expect(strstr(ur_last_error(), "residual is 2"), "%s", ur_last_error());
    ur_tensor_free(x);
    ur_tape_free(t);
    ur_rnn_free(deep);
    ur_rnn_free(one);
    ur_paramset_free(ps);
}

Test(rnn_grad, with_every_dropout) {
    ur_rnn_config c = cfg_of(UR_RNN_LSTM, 3, 3, 2, 1, 0);
    c.dropout = 0.3, c.dropout_input = 0.2, c.dropout_hidden = 0.25;
    check_config(c, NULL, 3, 2, 1, "lstm, per-step dropout");
    c.variational = 1;
    check_config(c, mask_423, 4, 3, 1, "lstm, variational dropout, masked");
    c.kind = UR_RNN_GRU_RESET_BEFORE;
    check_config(c, NULL, 3, 2, 1, "gru reset-before, variational dropout");
}

/* ---- padding ---- */

/* Forward + backward of a masked bidirectional LSTM; returns the parameter gradients
 * (concatenated) and the input gradient. */
static void masked_grads(const ur_real *x, ur_real *pgrad, size_t np, ur_real *xgrad, ur_real *y) {
    ur_rnn_config c = cfg_of(UR_RNN_LSTM, 2, 3, 2, 1, 0);
    net *n = net_new(&c, 4, 3, 1, 5);
    memcpy(n->x->value.data, x, n->x->value.size * sizeof(ur_real));
    n->mask = mask_423;
    ur_tape *t = ur_tape_new();
    ur_paramset_zero_grad(n->ps);
    ur_node *loss = net_loss(t, n);
    cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
    size_t k = 0;
    for (int i = 0; i < ur_paramset_count(n->ps); i++) {
        ur_param *p = ur_paramset_get(n->ps, i);
        if (p == n->x) continue;
        for (size_t j = 0; j < p->grad.size && k < np; j++) pgrad[k++] = p->grad.data[j];
    }
    memcpy(xgrad, n->x->grad.data, n->x->grad.size * sizeof(ur_real));
    /* the top-layer outputs: rerun to read them */
    ur_tape_reset(t);
    ur_rnn_args a = {0};
    a.mask = mask_423;
    for (int q = 0; q < n->n; q++) a.h0[q] = ur_param_node(t, n->h0[q]), a.c0[q] = ur_param_node(t, n->c0[q]);
    ur_node *out = ur_rnn_forward(n->rnn, t, ur_param_node(t, n->x), &a, NULL);
    memcpy(y, ur_node_cdata(out), ur_node_size(out) * sizeof(ur_real));
    ur_tape_free(t);
    net_free(n);
}

Test(rnn_padding, garbage_in_padded_steps_changes_nothing) {
    enum { T = 4, B = 3, IN = 2, NP = 4096 };
    ur_real x0[T * B * IN], x1[T * B * IN];
    ur_rng rng;
    ur_rng_seed(&rng, 3);
    for (int i = 0; i < T * B * IN; i++) {
        int step_b = i / IN;
        int real = mask_423[step_b] != 0;
        x0[i] = real ? (ur_real)(ur_rng_uniform(&rng) - 0.5) : 0;
        x1[i] = real ? x0[i] : (ur_real)(1e3 * (ur_rng_uniform(&rng) - 0.5)); /* garbage */
    }
    static ur_real g0[NP], g1[NP], xg0[T * B * IN], xg1[T * B * IN], y0[T * B * 6], y1[T * B * 6];
    masked_grads(x0, g0, NP, xg0, y0);
    masked_grads(x1, g1, NP, xg1, y1);
    for (int i = 0; i < NP; i++) cr_expect(g0[i] == g1[i], "parameter gradient %d: %.17g vs %.17g", i, g0[i], g1[i]);
    for (int i = 0; i < T * B * IN; i++) {
        cr_expect(xg0[i] == xg1[i], "input gradient %d differs", i);
        if (mask_423[i / IN] == 0) cr_expect(xg1[i] == 0, "padded input %d got gradient %g", i, xg1[i]);
    }
    for (int i = 0; i < T * B * 6; i++) {
        cr_expect(y0[i] == y1[i], "output %d differs", i);
        if (mask_423[i / 6] == 0) cr_expect(y1[i] == 0, "padded output %d is %g", i, y1[i]);
    }
}

Test(rnn_padding, finished_sequence_carries_its_state) {
    enum { T = 5, B = 3, IN = 3, H = 4 };
    const int lens[B] = {5, 2, 4};
    ur_real mask[T * B];
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) mask[t * B + b] = t < lens[b];
    ur_paramset *ps = ur_paramset_new();
    ur_rnn_config c = cfg_of(UR_RNN_LSTM, IN, H, 1, 0, 0);
    ur_rnn *r = ur_rnn_new(ps, "lstm", &c);
    ur_rng rng;
    ur_rng_seed(&rng, 8);
    ur_tensor *x = ur_tensor_new(3, (int[]){T, B, IN});
    fill(x, &rng, 1);
    ur_tape *t = ur_tape_new();
    ur_rnn_args a = {0};
    a.mask = mask;
    ur_rnn_final f;
    const ur_real *y = ur_node_cdata(ur_rnn_forward(r, t, ur_input(t, x), &a, &f));
    cr_assert(y, "%s", ur_tape_errmsg(t));
    const ur_real *h = ur_node_cdata(f.h[0]);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < H; j++) {
            /* the final state is the output of the last real step ... */
            cr_expect(h[b * H + j] == y[((lens[b] - 1) * B + b) * H + j], "b=%d j=%d", b, j);
            /* ... and every later output is zero */
            for (int s = lens[b]; s < T; s++) cr_expect(y[(s * B + b) * H + j] == 0);
        }
    /* sequence 1 alone, T = 2, gives the same final state */
    ur_real hb[H], cb[H];
    memcpy(hb, h + 1 * H, sizeof hb);
    memcpy(cb, ur_node_cdata(f.c[0]) + 1 * H, sizeof cb);
    ur_tape_reset(t);
    ur_real x1[2 * IN];
    for (int s = 0; s < 2; s++) memcpy(x1 + s * IN, x->data + (s * B + 1) * IN, IN * sizeof(ur_real));
    ur_node *y1 = ur_rnn_forward(r, t, ur_input_data(t, 3, (int[]){2, 1, IN}, x1), NULL, &f);
    cr_assert(y1, "%s", ur_tape_errmsg(t));
    for (int j = 0; j < H; j++) {
        cr_expect(fabs(ur_node_cdata(f.h[0])[j] - hb[j]) < 1e-13);
        cr_expect(fabs(ur_node_cdata(f.c[0])[j] - cb[j]) < 1e-13);
    }
    ur_tensor_free(x);
    ur_tape_free(t);
    ur_rnn_free(r);
    ur_paramset_free(ps);
}

/* ---- variational dropout: one mask for every step ---- */

/* ReLU cell with W_hh = identity, W_ih = 0, h0 = 1: h_t = relu(h_{t-1} * m), so
 * h_t = m^t elementwise, m in {0, 2}. A mask drawn again per step would zero more
 * units at every step. */
Test(rnn_dropout, hidden_mask_is_the_same_at_every_step) {
    enum { T = 5, B = 4, H = 8 };
    ur_paramset *ps = ur_paramset_new();
    ur_rnn_config c = ur_rnn_defaults(UR_RNN_RELU, 2, H);
    c.init = UR_RNN_INIT_IDENTITY;
    c.dropout_hidden = 0.5;
    ur_rnn *r = ur_rnn_new(ps, "irnn", &c);
    ur_init_constant(&ur_rnn_cell_at(r, 0, 0)->W_ih->value, 0);
    ur_tape *t = ur_tape_new();
    ur_tensor *ones = ur_tensor_new_2d(B, H);
    ur_tensor_fill(ones, 1);
    ur_rnn_args a = {0};
    a.training = 1;
    a.seed = 42;
    a.h0[0] = ur_input(t, ones);
    const ur_real *y = ur_node_cdata(ur_rnn_forward(r, t, ur_zeros(t, 3, (int[]){T, B, 2}), &a, NULL));
    cr_assert(y, "%s", ur_tape_errmsg(t));
    int zeros = 0;
    for (int i = 0; i < B * H; i++) {
        int kept = y[i] != 0;
        zeros += !kept;
        for (int s = 0; s < T; s++)
            cr_expect(y[s * B * H + i] == (kept ? ldexp(1, s + 1) : 0), "step %d unit %d: %g", s, i, y[s * B * H + i]);
    }
    cr_expect(zeros > 0 && zeros < B * H, "%d of %d units dropped", zeros, B * H);
    ur_tensor_free(ones);
    ur_tape_free(t);
    ur_rnn_free(r);
    ur_paramset_free(ps);
}

/* ReLU cell with W_hh = 0, W_ih = identity, x_t = 1 at every step: h_t is the
 * input mask itself, so all steps agree exactly when the mask is shared. */
static void input_dropout_outputs(int variational, ur_real *y, int T, int B, int H) {
    ur_paramset *ps = ur_paramset_new();
    ur_rnn_config c = ur_rnn_defaults(UR_RNN_RELU, H, H);
    c.init = UR_RNN_INIT_IDENTITY;
    c.dropout_input = 0.5;
    c.variational = variational;
    ur_rnn *r = ur_rnn_new(ps, "x", &c);
    ur_rnn_cell *cell = ur_rnn_cell_at(r, 0, 0);
    ur_init_identity(&cell->W_ih->value, 1);
    ur_init_constant(&cell->W_hh->value, 0);
    ur_tape *t = ur_tape_new();
    ur_tensor *x = ur_tensor_new(3, (int[]){T, B, H});
    ur_tensor_fill(x, 1);
    ur_rnn_args a = {0};
    a.training = 1;
    a.seed = 17;
    ur_node *out = ur_rnn_forward(r, t, ur_input(t, x), &a, NULL);
    cr_assert(out, "%s", ur_tape_errmsg(t));
    memcpy(y, ur_node_cdata(out), (size_t)T * B * H * sizeof(ur_real));
    ur_tensor_free(x);
    ur_tape_free(t);
    ur_rnn_free(r);
    ur_paramset_free(ps);
}

Test(rnn_dropout, variational_input_mask_is_the_same_at_every_step) {
    enum { T = 6, B = 3, H = 8 };
    ur_real y[T * B * H], z[T * B * H];
    input_dropout_outputs(1, y, T, B, H);
    int zeros = 0, differ = 0;
    for (int i = 0; i < B * H; i++) {
        zeros += y[i] == 0;
        for (int s = 1; s < T; s++) cr_expect(y[s * B * H + i] == y[i], "step %d unit %d", s, i);
    }
    cr_expect(zeros > 0 && zeros < B * H);
    /* the ordinary dropout draws per step: the test can tell them apart */
    input_dropout_outputs(0, z, T, B, H);
    for (int i = 0; i < B * H; i++)
        for (int s = 1; s < T; s++) differ += z[s * B * H + i] != z[i];
    cr_expect(differ > 0);
}

/* ---- BPTT: the gradient of W_hh is the sum of its per-step contributions ---- */

Test(rnn_bptt, weight_gradient_is_sum_over_steps) {
    enum { T = 4, B = 2, IN = 3, H = 3 };
    const ur_rnn_kind kinds[3] = {UR_RNN_LSTM, UR_RNN_GRU_RESET_BEFORE, UR_RNN_TANH};
    for (int kk = 0; kk < 3; kk++) {
        ur_rnn_config c = cfg_of(kinds[kk], IN, H, 1, 0, 0);
        net *n = net_new(&c, T, B, 1, 21);
        ur_tape *t = ur_tape_new();
        ur_paramset_zero_grad(n->ps);
        cr_assert_eq(ur_backward(t, net_loss(t, n)), UR_OK, "%s", ur_tape_errmsg(t));
        ur_rnn_cell cell = *ur_rnn_cell_at(n->rnn, 0, 0);
        const ur_tensor *g = &cell.W_hh->grad;

        /* unrolled by hand: step s uses its own copy of W_hh, everything else shared */
        ur_paramset *copies = ur_paramset_new();
        ur_param *W[T];
        for (int s = 0; s < T; s++) {
            char name[16];
            snprintf(name, sizeof name, "W_hh@%d", s);
            W[s] = ur_paramset_add(copies, name, 2, cell.W_hh->value.shape.dims);
            ur_tensor_copy(&W[s]->value, &cell.W_hh->value);
        }
        ur_tape_reset(t);
        ur_rnn_hc st = {{ur_param_node(t, n->h0[0]), n->c0[0] ? ur_param_node(t, n->c0[0]) : NULL}};
        ur_node *loss = NULL, *ys[T];
        for (int s = 0; s < T; s++) {
            ur_rnn_cell cs = cell;
            cs.W_hh = W[s];
            ur_node *x_t = ur_input_data(t, 2, (int[]){B, IN}, n->x->value.data + s * B * IN);
            st = ur_rnn_cell_step(t, &cs, x_t, st);
            ys[s] = st.h;
        }
        ur_node *y = ur_concat(t, T, ys, 0);
        loss = ur_sum(t, ur_mul(t, y, ur_input_data(t, 2, (int[]){T * B, H}, n->wy->data)));
        loss = ur_add(t, loss, ur_sum(t, ur_mul(t, st.h, ur_input_data(t, 2, (int[]){B, H}, n->wh->data))));
        if (st.c) loss = ur_add(t, loss, ur_sum(t, ur_mul(t, st.c, ur_input_data(t, 2, (int[]){B, H}, n->wc->data))));
        ur_paramset_zero_grad(copies);
        cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
        double worst = 0, nonzero = 0;
        for (size_t i = 0; i < g->size; i++) {
            double sum = 0;
            for (int s = 0; s < T; s++) sum += W[s]->grad.data[i];
            worst = fmax(worst, fabs(sum - g->data[i]));
            for (int s = 0; s < T; s++) nonzero += W[s]->grad.data[i] != 0;
        }
        cr_expect(worst < 1e-12, "%s: sum of per-step gradients differs by %g", ur_rnn_kind_name(kinds[kk]), worst);
        cr_expect(nonzero > T, "%s: per-step contributions are zero", ur_rnn_kind_name(kinds[kk]));
        ur_paramset_free(copies);
        ur_tape_free(t);
        net_free(n);
    }
}

/* The single-step API and the layer compute the same thing. */
Test(rnn_cell, step_loop_equals_layer) {
    enum { T = 3, B = 2, IN = 3, H = 4 };
    const ur_rnn_kind kinds[5] = {UR_RNN_TANH, UR_RNN_RELU, UR_RNN_GRU, UR_RNN_GRU_RESET_BEFORE, UR_RNN_LSTM};
    for (int kk = 0; kk < 5; kk++) {
        ur_rnn_config c = cfg_of(kinds[kk], IN, H, 1, 0, 0);
        net *n = net_new(&c, T, B, 0, 4);
        ur_tape *t = ur_tape_new();
        const ur_real *y = ur_node_cdata(ur_rnn_forward(n->rnn, t, ur_param_node(t, n->x), NULL, NULL));
        cr_assert(y, "%s", ur_tape_errmsg(t));
        ur_rnn_hc st = {{NULL, NULL}};
        for (int s = 0; s < T; s++) {
            ur_node *x_t = ur_input_data(t, 2, (int[]){B, IN}, n->x->value.data + s * B * IN);
            st = ur_rnn_cell_step(t, ur_rnn_cell_at(n->rnn, 0, 0), x_t, st);
            cr_assert(st.h, "%s", ur_tape_errmsg(t));
            for (int i = 0; i < B * H; i++) cr_expect(fabs(ur_node_cdata(st.h)[i] - y[s * B * H + i]) < 1e-14);
        }
        ur_tape_free(t);
        net_free(n);
    }
}

static double sigm(double v) { return 1 / (1 + exp(-v)); }

/* The reset-before GRU against its equations written out with loops, one step:
 * r = s(x Wir + bir + h Whr + bhr), z likewise, n = tanh(x Win + bin + (r h) Whn + bhn),
 * h' = (1 - z) n + z h. */
Test(rnn_cell, gru_reset_before_follows_its_equations) {
    enum { IN = 3, H = 4, G = 3 * H };
    ur_paramset *ps = ur_paramset_new();
    ur_rnn_cell c;
    cr_assert_eq(ur_rnn_cell_make(&c, ps, "cell", "", UR_RNN_GRU_RESET_BEFORE, IN, H), UR_OK);
    cr_assert(ur_paramset_find(ps, "cell.weight_hh"));
    ur_rng rng;
    ur_rng_seed(&rng, 2);
    cr_assert_eq(ur_rnn_cell_init_uniform(&c, &rng), UR_OK);
    ur_real x[IN], h[H];
    for (int i = 0; i < IN; i++) x[i] = (ur_real)(ur_rng_uniform(&rng) - 0.5);
    for (int j = 0; j < H; j++) h[j] = (ur_real)(ur_rng_uniform(&rng) - 0.5);
    const ur_real *Wi = c.W_ih->value.data, *Wh = c.W_hh->value.data, *bi = c.b_ih->value.data,
                  *bh = c.b_hh->value.data;
    double gx[G], rz[2 * H], want[H];
    for (int k = 0; k < G; k++) {
        gx[k] = bi[k];
        for (int i = 0; i < IN; i++) gx[k] += x[i] * Wi[i * G + k];
    }
    for (int k = 0; k < 2 * H; k++) {
        double a = gx[k] + bh[k];
        for (int j = 0; j < H; j++) a += h[j] * Wh[j * G + k];
        rz[k] = sigm(a);
    }
    for (int k = 0; k < H; k++) {
        double a = gx[2 * H + k] + bh[2 * H + k];
        for (int j = 0; j < H; j++) a += rz[j] * h[j] * Wh[j * G + 2 * H + k];
        double n = tanh(a), z = rz[H + k];
        want[k] = (1 - z) * n + z * h[k];
    }
    ur_tape *t = ur_tape_new();
    ur_rnn_hc prev = {{ur_input_data(t, 2, (int[]){1, H}, h), NULL}};
    ur_rnn_hc s = ur_rnn_cell_step(t, &c, ur_input_data(t, 2, (int[]){1, IN}, x), prev);
    cr_assert(s.h, "%s", ur_tape_errmsg(t));
    for (int k = 0; k < H; k++) cr_expect(fabs(ur_node_cdata(s.h)[k] - want[k]) < 1e-14, "unit %d", k);
    /* the reset-after form (PyTorch's) gives a different value from the same weights */
    c.def = ur_rnn_kind_cell(UR_RNN_GRU);
    ur_rnn_hc a = ur_rnn_cell_step(t, &c, ur_input_data(t, 2, (int[]){1, IN}, x), prev);
    cr_assert(a.h);
    cr_expect(fabs(ur_node_cdata(a.h)[0] - want[0]) > 1e-6);
    ur_tape_free(t);
    ur_paramset_free(ps);
}

/* ---- truncated BPTT ---- */

Test(rnn_state, two_segments_equal_one_run) {
    enum { T = 6, B = 2, IN = 3, H = 3 };
    ur_rnn_config c = cfg_of(UR_RNN_LSTM, IN, H, 2, 0, 0);
    net *n = net_new(&c, T, B, 0, 6);
    ur_rnn *r = n->rnn;
    ur_tape *t = ur_tape_new();
    ur_real whole[T * B * H];
    memcpy(whole, ur_node_cdata(ur_rnn_forward(r, t, ur_param_node(t, n->x), NULL, NULL)), sizeof whole);
    ur_rnn_state *s = ur_rnn_state_new(r, B);
    cr_assert(s, "%s", ur_last_error());
    for (int seg = 0; seg < 2; seg++) {
        ur_tape_reset(t);
        ur_rnn_args a = {0};
        cr_assert_eq(ur_rnn_state_feed(s, t, &a), UR_OK);
        cr_expect(!ur_node_requires_grad(a.h0[0]) && !ur_node_requires_grad(a.c0[1]));
        ur_node *x = ur_input_data(t, 3, (int[]){T / 2, B, IN}, n->x->value.data + seg * (T / 2) * B * IN);
        ur_rnn_final f;
        ur_node *y = ur_rnn_forward(r, t, x, &a, &f);
        cr_assert(y, "%s", ur_tape_errmsg(t));
        for (int i = 0; i < (T / 2) * B * H; i++)
            cr_expect(fabs(ur_node_cdata(y)[i] - whole[seg * (T / 2) * B * H + i]) < 1e-14, "segment %d, %d", seg, i);
        cr_assert_eq(ur_rnn_state_save(s, &f), UR_OK, "%s", ur_last_error());
        /* the gradient stops at the cut: backward reaches the parameters only */
        cr_assert_eq(ur_backward(t, ur_sum(t, y)), UR_OK);
    }
    ur_rnn_state_zero_row(s, 1);
    for (int j = 0; j < H; j++) cr_expect(s->h[0]->data[H + j] == 0 && s->c[1]->data[H + j] == 0);
    cr_expect(ur_rnn_state_zero_row(s, 2) == UR_ERR_ARG);
    ur_rnn_state_free(s);
    ur_tape_free(t);
    net_free(n);
}

/* ---- structure: names, layouts, initialization, groups ---- */

Test(rnn_layer, names_shapes_and_init) {
    ur_paramset *ps = ur_paramset_new();
    ur_rnn_config c = cfg_of(UR_RNN_LSTM, 5, 4, 2, 1, 0);
    c.init = UR_RNN_INIT_ORTHOGONAL;
    c.forget_bias = 1.0;
    ur_rnn *r = ur_rnn_new(ps, "enc", &c);
    cr_assert(r, "%s", ur_last_error());
    cr_expect_eq(ur_paramset_count(ps), 16);
    cr_expect_eq(ur_rnn_output_size(r), 8);
    ur_param *w = ur_paramset_find(ps, "enc.weight_ih_l1_reverse");
    cr_assert(w);
    cr_expect(w->value.shape.dims[0] == 8 && w->value.shape.dims[1] == 16);
    ur_param *whh = ur_paramset_find(ps, "enc.weight_hh_l0");
    cr_assert(whh && whh->value.shape.dims[0] == 4 && whh->value.shape.dims[1] == 16);
    for (int g = 0; g < 4; g++) /* each gate block is orthogonal: B^T B = I */
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                double d = 0;
                for (int k = 0; k < 4; k++) d += UR_AT2(&whh->value, k, g * 4 + i) * UR_AT2(&whh->value, k, g * 4 + j);
                cr_expect(fabs(d - (i == j)) < 1e-12, "gate %d (%d,%d): %g", g, i, j, d);
            }
    ur_param *bih = ur_paramset_find(ps, "enc.bias_ih_l0"), *bhh = ur_paramset_find(ps, "enc.bias_hh_l0");
    for (int i = 0; i < 16; i++) {
        cr_expect(bih->value.data[i] == (i >= 4 && i < 8 ? 1.0 : 0.0));
        cr_expect(bhh->value.data[i] == 0);
    }
    ur_rnn_free(r);
    /* PyTorch's default: uniform within 1/sqrt(H); deterministic in the seed */
    ur_rnn_config d = ur_rnn_defaults(UR_RNN_GRU, 3, 16);
    ur_rnn *a = ur_rnn_new(ps, "a", &d), *b = ur_rnn_new(ps, "b", &d);
    ur_rnn_cell *ca = ur_rnn_cell_at(a, 0, 0), *cb = ur_rnn_cell_at(b, 0, 0);
    for (size_t i = 0; i < ca->W_hh->value.size; i++) {
        cr_expect(fabs(ca->W_hh->value.data[i]) <= 0.25);
        cr_expect(ca->W_hh->value.data[i] == cb->W_hh->value.data[i]);
    }
    cr_expect_null(ur_rnn_cell_at(a, 0, 1));
    cr_expect_null(ur_rnn_new(ps, "a", &d), "duplicate names are refused");
    ur_rnn_free(a);
    ur_rnn_free(b);
    ur_paramset_free(ps);
}

Test(rnn_layer, steps_are_grouped_for_dot) {
    ur_rnn_config c = cfg_of(UR_RNN_GRU, 2, 3, 1, 0, 0);
    net *n = net_new(&c, 4, 1, 0, 1);
    ur_tape *t = ur_tape_new();
    cr_assert(ur_rnn_forward(n->rnn, t, ur_param_node(t, n->x), NULL, NULL));
    char path[512];
    ur_test_tmp_path("rnn.dot", path, sizeof path);
    FILE *f = fopen(path, "w+");
    cr_assert(f);
    cr_assert_eq(ur_tape_dot(t, f), UR_OK);
    rewind(f);
    char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    buf[len] = 0;
    fclose(f);
    remove(path);
    cr_expect(strstr(buf, "t=0") && strstr(buf, "t=3"), "no step clusters in the DOT output");
    ur_tape_free(t);
    net_free(n);
}

/* ---- errors ---- */

Test(rnn_errors, bad_inputs_are_sticky_tape_errors) {
    ur_rnn_config c = cfg_of(UR_RNN_LSTM, 3, 4, 1, 0, 0);
    net *n = net_new(&c, 2, 2, 0, 1);
    ur_tape *t = ur_tape_new();
    cr_expect_null(ur_rnn_forward(n->rnn, t, ur_zeros(t, 3, (int[]){2, 2, 5}), NULL, NULL));
    cr_expect_eq(ur_tape_error(t), UR_ERR_SHAPE);
    cr_expect(strstr(ur_tape_errmsg(t), "rnn_forward: x must be (T, B, 3)"), "%s", ur_tape_errmsg(t));
    ur_tape_reset(t);
    ur_rnn_args a = {0};
    a.h0[0] = ur_zeros(t, 2, (int[]){3, 4});
    cr_expect_null(ur_rnn_forward(n->rnn, t, ur_zeros(t, 3, (int[]){2, 2, 3}), &a, NULL));
    cr_expect(strstr(ur_tape_errmsg(t), "h0[0] must be (2, 4)"), "%s", ur_tape_errmsg(t));
    ur_tape_reset(t);
    const ur_real half[4] = {1, 0.5, 1, 1};
    a.h0[0] = NULL;
    a.mask = half;
    ur_rnn_final f;
    cr_expect_null(ur_rnn_forward(n->rnn, t, ur_zeros(t, 3, (int[]){2, 2, 3}), &a, &f));
    cr_expect(strstr(ur_tape_errmsg(t), "mask[1] is 0.5"), "%s", ur_tape_errmsg(t));
    cr_expect(f.n == 0 && f.h[0] == NULL);
    ur_tape_reset(t);
    ur_rnn_hc s = ur_rnn_cell_step(t, ur_rnn_cell_at(n->rnn, 0, 0), ur_zeros(t, 2, (int[]){2, 3}),
                                   (ur_rnn_hc){{ur_zeros(t, 2, (int[]){2, 5}), NULL}});
    cr_expect(s.h == NULL && strstr(ur_tape_errmsg(t), "rnn_cell_step: state h must be (2, 4)"), "%s",
              ur_tape_errmsg(t));
    ur_tape_free(t);
    net_free(n);

    ur_paramset *ps = ur_paramset_new();
    ur_rnn_config bad = ur_rnn_defaults(UR_RNN_GRU, 3, 4);
    bad.num_layers = 9;
    cr_expect_null(ur_rnn_new(ps, "r", &bad));
    cr_expect(strstr(ur_last_error(), "num_layers 9"), "%s", ur_last_error());
    bad.num_layers = 1;
    bad.dropout_hidden = 1;
    cr_expect_null(ur_rnn_new(ps, "r", &bad));
    cr_expect_eq(ur_paramset_count(ps), 0);
    ur_paramset_free(ps);
}
