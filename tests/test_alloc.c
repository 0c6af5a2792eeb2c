/* Steady-state training makes no heap allocation, and the shortcuts backward takes
 * to get there (shared gradient buffers, first writes that assign, deferred weight
 * gradients, gate activations recomputed for large states) give the gradients the
 * plain rules give.
 *
 * Allocations are counted with ur_alloc_count over steps 3..6 of a training loop:
 * the first step sizes the tape's arena and the optimizer's state, the second
 * replaces the arena's chunks by one. Kernels run on one thread here: the GEMM's
 * own buffers per thread are the business of test_kernels.c. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "unroll.h"

enum { WARM_STEPS = 2, COUNTED_STEPS = 4 };

/* ---- a recurrent language-model step: forward, cross-entropy, backward, clip, Adam ---- */

typedef struct seq_model {
    ur_paramset *ps;
    ur_rnn *rnn;
    ur_param *Wy, *by;
    ur_optim *opt;
    ur_tape *tape;
    ur_tensor *x;
    int T, B, C, *y;
} seq_model;

static void seq_model_init(seq_model *m, ur_rnn_kind kind, int layers, int bidirectional) {
    m->T = 7, m->B = 3, m->C = 5;
    int in = 4, H = 6;
    m->ps = ur_paramset_new();
    ur_rnn_config cfg = ur_rnn_defaults(kind, in, H);
    cfg.num_layers = layers;
    cfg.bidirectional = bidirectional;
    m->rnn = ur_rnn_new(m->ps, "rnn", &cfg);
    cr_assert_not_null(m->rnn, "%s", ur_last_error());
    int out = ur_rnn_output_size(m->rnn), wd[2] = {out, m->C};
    m->Wy = ur_paramset_add(m->ps, "head.W", 2, wd);
    m->by = ur_paramset_add(m->ps, "head.b", 1, &m->C);
    ur_rng rng;
    ur_rng_seed(&rng, 5);
    ur_tensor_uniform(&m->Wy->value, &rng, -0.3, 0.3);
    ur_optim_config oc = ur_optim_defaults(UR_OPTIM_ADAM, 1e-3);
    m->opt = ur_optim_new(m->ps, &oc);
    m->tape = ur_tape_new();
    int xd[3] = {m->T, m->B, in};
    m->x = ur_tensor_new(3, xd);
    ur_tensor_normal(m->x, &rng, 0, 1);
    m->y = malloc(sizeof(int) * (size_t)m->T * m->B);
    for (int i = 0; i < m->T * m->B; i++) m->y[i] = (int)ur_rng_below(&rng, (uint32_t)m->C);
    cr_assert(m->Wy && m->by && m->opt && m->tape && m->x && m->y);
}

static void seq_model_step(seq_model *m) {
    ur_tape *t = m->tape;
    ur_tape_reset(t);
    ur_optim_zero_grad(m->opt);
    ur_node *out = ur_rnn_forward(m->rnn, t, ur_input(t, m->x), NULL, NULL);
    int d2[2] = {m->T * m->B, ur_rnn_output_size(m->rnn)};
    ur_node *logits = ur_linear(t, ur_reshape(t, out, 2, d2), ur_param_node(t, m->Wy), ur_param_node(t, m->by));
    ur_node *loss = ur_cross_entropy(t, logits, m->y, NULL);
    cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
    cr_assert_eq(ur_clip_grad_norm(m->ps, 1.0, NULL), UR_OK);
    cr_assert_eq(ur_optim_step(m->opt), UR_OK, "%s", ur_last_error());
}

static void seq_model_free(seq_model *m) {
    ur_tape_free(m->tape);
    ur_optim_free(m->opt);
    ur_rnn_free(m->rnn);
    ur_paramset_free(m->ps);
    ur_tensor_free(m->x);
    free(m->y);
}

static void expect_no_allocation(ur_rnn_kind kind, int layers, int bidirectional, const char *what) {
    ur_set_num_threads(1);
    seq_model m;
    seq_model_init(&m, kind, layers, bidirectional);
    for (int i = 0; i < WARM_STEPS; i++) seq_model_step(&m);
    uint64_t before = ur_alloc_count();
    for (int i = 0; i < COUNTED_STEPS; i++) seq_model_step(&m);
    uint64_t n = ur_alloc_count() - before;
    cr_expect_eq(n, 0, "%s: %llu allocations in %d steady-state training steps", what, (unsigned long long)n,
                 COUNTED_STEPS);
    seq_model_free(&m);
    ur_set_num_threads(0);
}

Test(alloc, lstm_training_step) { expect_no_allocation(UR_RNN_LSTM, 1, 0, "lstm"); }
Test(alloc, gru_training_step) { expect_no_allocation(UR_RNN_GRU, 1, 0, "gru"); }
Test(alloc, stacked_bidirectional_lstm_training_step) { expect_no_allocation(UR_RNN_LSTM, 2, 1, "2-layer bilstm"); }

/* ---- a tree-net step (one tree per step, trees of different shapes in turn) ---- */

static const char *TREES =
    "(1 (0 a) (2 (1 b) (2 c)))\n"
    "(2 (2 (0 c) (1 a)) (0 (2 d) (1 (0 b) (2 e))))\n"
    "(1 (2 a) (0 d))\n";

Test(alloc, tree_training_step) {
    ur_set_num_threads(1);
    ur_treebank *tb;
    cr_assert_eq(ur_treebank_parse(TREES, strlen(TREES), "test", 4, UR_TREE_BINARY, &tb), UR_OK, "%s",
                 ur_last_error());
    ur_vocab *voc = ur_vocab_new(UR_VOCAB_UNK);
    for (int k = 0; k < tb->n_trees; k++)
        for (int i = 0; i < tb->trees[k].n_words; i++) ur_vocab_add(voc, tb->trees[k].words[i]);
    ur_treebank_set_word_ids(tb, voc);
    ur_paramset *ps = ur_paramset_new();
    ur_rng rng;
    ur_rng_seed(&rng, 3);
    ur_treenet_config cfg = {UR_TREE_RNN, ur_vocab_size(voc), 8, 8, 5, 0, 0.0};
    ur_treenet *net = ur_treenet_new(ps, "tree", &cfg, &rng);
    cr_assert_not_null(net, "%s", ur_last_error());
    ur_optim_config oc = ur_optim_defaults(UR_OPTIM_ADAM, 1e-3);
    ur_optim *opt = ur_optim_new(ps, &oc);
    ur_tape *t = ur_tape_new();
    uint64_t before = 0;
    /* every tree shape twice before counting: each sizes the arena once */
    int warm = 2 * tb->n_trees, total = warm + 2 * tb->n_trees;
    for (int step = 0; step < total; step++) {
        if (step == warm) before = ur_alloc_count();
        const ur_tree *tree = &tb->trees[step % tb->n_trees];
        ur_tape_reset(t);
        ur_optim_zero_grad(opt);
        ur_node *logits = ur_treenet_forward(net, t, tree, 1, (uint64_t)step, NULL, NULL);
        ur_node *loss = ur_treenet_loss(net, t, logits, &tree, 1, NULL, 0);
        cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
        cr_assert_eq(ur_clip_grad_norm(ps, 1.0, NULL), UR_OK);
        cr_assert_eq(ur_optim_step(opt), UR_OK);
    }
    uint64_t n = ur_alloc_count() - before;
    cr_expect_eq(n, 0, "tree net: %llu allocations in steady-state training steps", (unsigned long long)n);
    ur_tape_free(t);
    ur_optim_free(opt);
    ur_treenet_free(net);
    ur_paramset_free(ps);
    ur_vocab_free(voc);
    ur_treebank_free(tb);
    ur_set_num_threads(0);
}

/* ---- the backward shortcuts give the plain rules' gradients ---- */

static void expect_close(const ur_real *a, const ur_real *b, size_t n, double tol, const char *what) {
    cr_assert(a && b, "%s: a gradient is missing", what);
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / fmax(1.0, fabs((double)b[i]));
        if (d > worst) worst = d, at = i;
    }
    cr_expect(worst <= tol, "%s: element %zu differs: %g vs %g", what, at, (double)a[at], (double)b[at]);
}

/* The fused LSTM gate expression on a state too large to keep the activations
 * (they are recomputed in backward) against the same cell composed from
 * elementwise ops. */
Test(backward_shortcuts, large_lstm_gates_equal_their_composition) {
    enum { B = 5, H = 4000 }; /* B*H above the size whose activations are kept */
    ur_rng rng;
    ur_rng_seed(&rng, 11);
    int gd[2] = {B, 4 * H}, cd[2] = {B, H};
    ur_tensor *gv = ur_tensor_new(2, gd), *cv = ur_tensor_new(2, cd), *wv = ur_tensor_new(2, cd);
    ur_tensor_normal(gv, &rng, 0, 1.5);
    ur_tensor_normal(cv, &rng, 0, 1);
    ur_tensor_normal(wv, &rng, 0, 1);
    ur_real *grad[2][2];
    ur_tape *tapes[2];
    for (int k = 0; k < 2; k++) {
        ur_tape *t = tapes[k] = ur_tape_new();
        ur_node *g = ur_variable(t, gv), *cp = ur_variable(t, cv), *c, *h;
        if (k == 0) {
            ur_expr *e = ur_expr_lstm();
            ur_node *hc[2];
            cr_assert(e);
            cr_assert_eq(ur_expr_apply(t, e, 2, (ur_node *[]){g, cp}, hc), UR_OK, "%s", ur_tape_errmsg(t));
            ur_expr_free(e);
            h = hc[0], c = hc[1];
        } else {
            ur_node *i = ur_sigmoid(t, ur_slice(t, g, 1, 0, H)), *f = ur_sigmoid(t, ur_slice(t, g, 1, H, H));
            ur_node *u = ur_tanh(t, ur_slice(t, g, 1, 2 * H, H)), *o = ur_sigmoid(t, ur_slice(t, g, 1, 3 * H, H));
            c = ur_add(t, ur_mul(t, f, cp), ur_mul(t, i, u));
            h = ur_mul(t, o, ur_tanh(t, c));
        }
        /* loss = sum(w * h) + sum(c): both outputs carry gradient */
        ur_node *loss = ur_add(t, ur_sum(t, ur_mul(t, h, ur_input(t, wv))), ur_sum(t, c));
        cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
        grad[k][0] = (ur_real *)ur_node_grad(g);
        grad[k][1] = (ur_real *)ur_node_grad(cp);
    }
    expect_close(grad[0][0], grad[1][0], (size_t)B * 4 * H, 1e-5, "d gates");
    expect_close(grad[0][1], grad[1][1], (size_t)B * H, 1e-5, "d c_prev");
    ur_tape_free(tapes[0]);
    ur_tape_free(tapes[1]);
    ur_tensor_free(gv);
    ur_tensor_free(cv);
    ur_tensor_free(wv);
}

/* A projected sequence read step by step through slices: the slices' gradients live
 * in the projection's buffer and each step's sum shares its input's. Every node's
 * gradient must still be dL/d(node): compared with the same graph where an extra
 * reader of the projection (weighted 0) turns the sharing off. */
Test(backward_shortcuts, shared_buffers_keep_every_node_gradient_exact) {
    enum { T = 5, B = 3, N = 4 };
    ur_rng rng;
    ur_rng_seed(&rng, 12);
    int pd[2] = {T * B, N}, sd[2] = {B, N};
    ur_tensor *pv = ur_tensor_new(2, pd), *wv = ur_tensor_new(2, sd);
    ur_tensor_normal(pv, &rng, 0, 1);
    ur_tensor_normal(wv, &rng, 0, 1);
    const ur_real *gs[2][T], *gsum[2][T], *gp[2];
    ur_tape *tapes[2];
    for (int k = 0; k < 2; k++) {
        ur_tape *t = tapes[k] = ur_tape_new();
        ur_node *p = ur_tanh(t, ur_variable(t, pv)), *h = ur_input(t, wv), *loss = NULL;
        ur_node *sl[T], *sum[T];
        for (int s = T - 1; s >= 0; s--) { /* descending, as a reverse direction reads */
            sl[s] = ur_slice(t, p, 0, s * B, B);
            sum[s] = ur_add(t, sl[s], ur_mul(t, h, h)); /* shares sl's buffer */
            h = ur_tanh(t, sum[s]);
            loss = loss ? ur_add(t, loss, ur_sum(t, h)) : ur_sum(t, h);
        }
        if (k == 1) loss = ur_add(t, loss, ur_scale(t, ur_sum(t, p), 0)); /* an extra reader */
        cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
        for (int s = 0; s < T; s++) {
            gs[k][s] = ur_node_grad(sl[s]);
            gsum[k][s] = ur_node_grad(sum[s]);
        }
        gp[k] = ur_node_grad(p);
        if (k == 0) /* the shortcut was taken: each slice's gradient is part of p's */
            for (int s = 0; s < T; s++) cr_expect_eq(gs[0][s], gp[0] + (size_t)s * B * N, "slice %d not shared", s);
    }
    for (int s = 0; s < T; s++) {
        expect_close(gs[0][s], gs[1][s], (size_t)B * N, 1e-6, "slice");
        expect_close(gsum[0][s], gsum[1][s], (size_t)B * N, 1e-6, "sum");
    }
    expect_close(gp[0], gp[1], (size_t)T * B * N, 1e-6, "projection");
    ur_tape_free(tapes[0]);
    ur_tape_free(tapes[1]);
    ur_tensor_free(pv);
    ur_tensor_free(wv);
}

/* A weight read by many one-row products gets its gradient in one deferred product:
 * equal to the sum of x_i^T dy_i over the products, from the nodes' own gradients. */
Test(backward_shortcuts, deferred_weight_gradient_is_the_sum_over_uses) {
    enum { K = 6, M = 5, STEPS = 9 };
    ur_rng rng;
    ur_rng_seed(&rng, 13);
    ur_paramset *ps = ur_paramset_new();
    int wd[2] = {K, M}, vd[2] = {1, K};
    ur_param *W = ur_paramset_add(ps, "W", 2, wd);
    ur_tensor_normal(&W->value, &rng, 0, 0.5);
    ur_tensor *v = ur_tensor_new(2, vd);
    ur_tape *t = ur_tape_new();
    ur_node *Wn = ur_param_node(t, W), *Wt = ur_param_node(t, W), *x[STEPS], *y[STEPS], *loss = NULL;
    cr_assert_eq(Wn, Wt);
    for (int s = 0; s < STEPS; s++) {
        ur_tensor_normal(v, &rng, 0, 1);
        x[s] = ur_input(t, v);
        y[s] = s % 2 ? ur_linear(t, x[s], Wn, NULL) : ur_matmul(t, x[s], Wn, 0, 0); /* (1, M) */
        ur_node *l = ur_sum(t, ur_tanh(t, y[s]));
        loss = loss ? ur_add(t, loss, l) : l;
    }
    cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
    ur_real expect[K * M];
    memset(expect, 0, sizeof expect);
    for (int s = 0; s < STEPS; s++) {
        const ur_real *xs = ur_node_cdata(x[s]), *gy = ur_node_grad(y[s]);
        for (int i = 0; i < K; i++)
            for (int j = 0; j < M; j++) expect[i * M + j] += xs[i] * gy[j];
    }
    expect_close(W->grad.data, expect, (size_t)K * M, 1e-5, "dW");
    ur_tape_free(t);
    ur_tensor_free(v);
    ur_paramset_free(ps);
}

/* An LSTM layer without a mask and with an all-ones mask: the graphs differ (the
 * masked steps blend their states, and the backward plan shares buffers
 * differently), the arithmetic of the gradients does not. The gradients must be
 * equal, also when the loss reads only some steps' outputs or only the final c. */
static size_t lstm_layer_grads(int layers, int bidir, int which, int use_mask, ur_real *out) {
    enum { T = 5, B = 64, IN = 4, H = 300 }; /* B*H above the size whose activations are kept */
    ur_paramset *ps = ur_paramset_new();
    ur_rnn_config cfg = ur_rnn_defaults(UR_RNN_LSTM, IN, H);
    cfg.num_layers = layers;
    cfg.bidirectional = bidir;
    cfg.seed = 3;
    ur_rnn *r = ur_rnn_new(ps, "rnn", &cfg);
    int dims[3] = {T, B, IN}, D = bidir ? 2 : 1, d2[2] = {T * B, D * H};
    ur_tensor *x = ur_tensor_new(3, dims);
    ur_rng rng;
    ur_rng_seed(&rng, 1);
    ur_tensor_normal(x, &rng, 0, 1);
    ur_real mask[T * B];
    for (int i = 0; i < T * B; i++) mask[i] = 1;
    ur_rnn_args a;
    memset(&a, 0, sizeof a);
    a.mask = use_mask ? mask : NULL;
    ur_tape *t = ur_tape_new();
    ur_rnn_final fin;
    ur_node *xin = ur_variable(t, x);
    ur_node *o = ur_reshape(t, ur_rnn_forward(r, t, xin, &a, &fin), 2, d2), *loss;
    switch (which) {
    case 0: loss = ur_sum(t, ur_tanh(t, o)); break;                                 /* every output */
    case 1: loss = ur_sum(t, ur_tanh(t, fin.c[fin.n - 1])); break;                  /* final c only */
    case 2: loss = ur_sum(t, ur_tanh(t, ur_slice(t, o, 0, 0, B))); break;           /* step 0 only */
    default: loss = ur_sum(t, ur_tanh(t, ur_slice(t, o, 0, 2 * B, B))); break;      /* step 2 only */
    }
    cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
    size_t k = 0;
    for (int i = 0; i < ur_paramset_count(ps); i++) {
        const ur_param *p = ur_paramset_get(ps, i);
        memcpy(out + k, p->grad.data, p->grad.size * sizeof(ur_real));
        k += p->grad.size;
    }
    memcpy(out + k, ur_node_grad(xin), x->size * sizeof(ur_real));
    k += x->size;
    ur_tape_free(t);
    ur_rnn_free(r);
    ur_paramset_free(ps);
    ur_tensor_free(x);
    return k;
}

Test(backward_shortcuts, lstm_layer_gradients_in_the_projection_memory) {
    enum { CAP = 3000000 };
    ur_real *g[2] = {malloc(CAP * sizeof(ur_real)), malloc(CAP * sizeof(ur_real))};
    cr_assert(g[0] && g[1]);
    for (int layers = 1; layers <= 2; layers++)
        for (int bidir = 0; bidir <= 1; bidir++)
            for (int which = 0; which < 4; which++) {
                size_t n = lstm_layer_grads(layers, bidir, which, 0, g[0]);
                cr_assert(n <= CAP && n == lstm_layer_grads(layers, bidir, which, 1, g[1]));
                size_t differ = 0;
                for (size_t i = 0; i < n; i++) differ += g[0][i] != g[1][i];
                cr_expect_eq(differ, 0, "%d layer(s), bidirectional %d, loss %d: %zu of %zu gradients differ",
                             layers, bidir, which, differ, n);
            }
    free(g[0]);
    free(g[1]);
}
