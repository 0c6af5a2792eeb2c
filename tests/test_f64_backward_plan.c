/* The backward plan (shared gradient buffers, deferred weight gradients, stored
 * transposes) changes where sums land and when, never what they are: one training
 * step of every example model, recorded on a tape with the plan and on one
 * without, gives the same gradient for every parameter (double precision; per
 * parameter, the largest difference is at most 1e-12 of the largest element).
 * Each step is recorded twice on the same tape and the second is compared: its
 * buffers reuse the first recording's memory, which still holds that recording's
 * values and gradients, so a gradient buffer that the plan leaves unfilled where
 * nothing adds into it shows up as a difference. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "support.h"
#include "unroll.h"

typedef ur_node *(*step_fn)(ur_tape *t, void *model);

/* Gradients of every parameter after one backward on a tape with the plan `on`. */
static double *step_grads(ur_paramset *ps, step_fn f, void *model, int on) {
    ur_tape *t = ur_tape_new();
    cr_assert(t);
    cr_assert_eq(ur_tape_set_backward_plan(t, on), 1, "the plan is on by default");
    for (int rec = 0; rec < 2; rec++) { /* the second reuses the first's memory */
        ur_tape_reset(t);
        ur_paramset_zero_grad(ps);
        ur_node *loss = f(t, model);
        cr_assert(loss, "%s", ur_tape_errmsg(t));
        cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
    }
    double *g = malloc(ur_paramset_numel(ps) * sizeof *g);
    cr_assert(g);
    size_t at = 0;
    for (int i = 0; i < ur_paramset_count(ps); i++) {
        const ur_param *p = ur_paramset_get(ps, i);
        for (size_t k = 0; k < p->grad.size; k++) g[at++] = p->grad.data[k];
    }
    ur_tape_free(t);
    return g;
}

static void expect_same_grads(ur_paramset *ps, step_fn f, void *model, const char *what) {
    double *on = step_grads(ps, f, model, 1), *off = step_grads(ps, f, model, 0);
    size_t at = 0;
    int nonzero = 0;
    for (int i = 0; i < ur_paramset_count(ps); i++) {
        const ur_param *p = ur_paramset_get(ps, i);
        double big = 0, diff = 0;
        for (size_t k = 0; k < p->grad.size; k++, at++) {
            big = fmax(big, fabs(off[at]));
            diff = fmax(diff, fabs(on[at] - off[at]));
        }
        nonzero += big > 0;
        cr_expect(diff <= 1e-12 * big, "%s: %s differs by %g (largest element %g)", what, p->name, diff, big);
    }
    cr_expect_gt(nonzero, ur_paramset_count(ps) / 2, "%s: most parameters get a gradient", what);
    free(on);
    free(off);
}

static void fill_ids(int *ids, int n, int V, uint64_t seed) {
    ur_rng r;
    ur_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) ids[i] = (int)(ur_rng_next(&r) % (uint64_t)V);
}

/* ---- char-RNN: embedding, recurrent stack, output layer, cross-entropy ---- */

enum { LM_T = 6, LM_B = 4, LM_V = 11, LM_E = 5 };

typedef struct charlm {
    ur_param *emb, *W, *b;
    ur_rnn *rnn;
    int ids[LM_T * LM_B], next[LM_T * LM_B];
    ur_real mask[LM_T * LM_B];
    int use_mask;
} charlm;

static ur_node *charlm_step(ur_tape *t, void *model) {
    charlm *m = model;
    ur_node *x = ur_gather(t, ur_param_node(t, m->emb), m->ids, LM_T * LM_B);
    int dims[3] = {LM_T, LM_B, LM_E};
    ur_rnn_args args = {.mask = m->use_mask ? m->mask : NULL, .training = 1, .seed = 7};
    ur_node *h = ur_rnn_forward(m->rnn, t, ur_reshape(t, x, 3, dims), &args, NULL);
    int H = ur_rnn_output_size(m->rnn), d2[2] = {LM_T * LM_B, H};
    ur_node *logits = ur_linear(t, ur_reshape(t, h, 2, d2), ur_param_node(t, m->W), ur_param_node(t, m->b));
    return ur_cross_entropy(t, logits, m->next, m->use_mask ? m->mask : NULL);
}

static void charlm_check(ur_rnn_kind kind, int H, int layers, int bidir, int use_mask, double dropout) {
    ur_paramset *ps = ur_paramset_new();
    charlm m = {0};
    ur_rnn_config cfg = ur_rnn_defaults(kind, LM_E, H);
    cfg.num_layers = layers;
    cfg.bidirectional = bidir;
    cfg.dropout = dropout;
    cfg.dropout_hidden = dropout;
    cfg.seed = 5;
    m.rnn = ur_rnn_new(ps, "rnn", &cfg);
    cr_assert(m.rnn, "%s", ur_last_error());
    int de[2] = {LM_V, LM_E}, dw[2] = {ur_rnn_output_size(m.rnn), LM_V}, db[1] = {LM_V};
    m.emb = ur_paramset_add(ps, "emb", 2, de);
    m.W = ur_paramset_add(ps, "out.W", 2, dw);
    m.b = ur_paramset_add(ps, "out.b", 1, db);
    ur_rng r;
    ur_rng_seed(&r, 9);
    ur_tensor_normal(&m.emb->value, &r, 0, 0.5);
    ur_tensor_normal(&m.W->value, &r, 0, 0.5);
    ur_tensor_normal(&m.b->value, &r, 0, 0.1);
    fill_ids(m.ids, LM_T * LM_B, LM_V, 1);
    fill_ids(m.next, LM_T * LM_B, LM_V, 2);
    for (int s = 0; s < LM_T; s++) /* sequence b has length T - b */
        for (int b = 0; b < LM_B; b++) m.mask[s * LM_B + b] = s < LM_T - b;
    m.use_mask = use_mask;
    char what[64];
    snprintf(what, sizeof what, "charlm kind %d H %d L %d bidir %d mask %d", (int)kind, H, layers, bidir, use_mask);
    expect_same_grads(ps, charlm_step, &m, what);
    ur_rnn_free(m.rnn);
    ur_paramset_free(ps);
}

Test(backward_plan, char_rnn_lstm) {
    charlm_check(UR_RNN_LSTM, 8, 1, 0, 0, 0);
    charlm_check(UR_RNN_LSTM, 8, 2, 0, 1, 0.2);
    charlm_check(UR_RNN_LSTM, 130, 1, 0, 0, 0); /* above the size whose gate activations are kept */
}

Test(backward_plan, char_rnn_gru) {
    charlm_check(UR_RNN_GRU, 8, 2, 0, 0, 0.2);
    charlm_check(UR_RNN_GRU, 7, 1, 0, 1, 0);
}

Test(backward_plan, char_rnn_elman) {
    charlm_check(UR_RNN_TANH, 9, 2, 0, 0, 0);
    charlm_check(UR_RNN_RELU, 6, 1, 0, 1, 0);
}

/* ---- BiLSTM tagger with char features: a char BiLSTM's final states per word,
 * joined with the word embedding, into a word BiLSTM and a tag layer ---- */

enum { TG_T = 5, TG_B = 2, TG_C = 4, TG_CV = 9, TG_WV = 13, TG_TAGS = 6 };

typedef struct tagger {
    ur_param *wemb, *cemb, *W, *b;
    ur_rnn *chars, *words;
    int wids[TG_T * TG_B], cids[TG_C * TG_T * TG_B], tags[TG_T * TG_B];
    ur_real mask[TG_T * TG_B];
} tagger;

static ur_node *tagger_step(ur_tape *t, void *model) {
    tagger *m = model;
    int N = TG_T * TG_B, E = m->cemb->value.shape.dims[1];
    int dc[3] = {TG_C, N, E};
    ur_node *c = ur_reshape(t, ur_gather(t, ur_param_node(t, m->cemb), m->cids, TG_C * N), 3, dc);
    ur_rnn_final fin;
    ur_rnn_forward(m->chars, t, c, NULL, &fin);
    ur_node *cf = ur_concat(t, 2, (ur_node *[]){fin.h[0], fin.h[1]}, 1); /* (N, 2Hc) */
    ur_node *w = ur_gather(t, ur_param_node(t, m->wemb), m->wids, N);
    ur_node *in = ur_concat(t, 2, (ur_node *[]){w, cf}, 1);
    int dx[3] = {TG_T, TG_B, ur_node_dim(in, 1)};
    ur_rnn_args args = {.mask = m->mask};
    ur_node *h = ur_rnn_forward(m->words, t, ur_reshape(t, in, 3, dx), &args, NULL);
    int dh[2] = {N, ur_rnn_output_size(m->words)};
    ur_node *logits = ur_linear(t, ur_reshape(t, h, 2, dh), ur_param_node(t, m->W), ur_param_node(t, m->b));
    return ur_cross_entropy(t, logits, m->tags, m->mask);
}

Test(backward_plan, bilstm_tagger_with_char_features) {
    ur_paramset *ps = ur_paramset_new();
    tagger m = {0};
    ur_rnn_config cc = ur_rnn_defaults(UR_RNN_LSTM, 3, 4);
    cc.bidirectional = 1;
    m.chars = ur_rnn_new(ps, "chars", &cc);
    ur_rnn_config wc = ur_rnn_defaults(UR_RNN_LSTM, 5 + 8, 6);
    wc.bidirectional = 1;
    m.words = ur_rnn_new(ps, "words", &wc);
    cr_assert(m.chars && m.words, "%s", ur_last_error());
    int dce[2] = {TG_CV, 3}, dwe[2] = {TG_WV, 5}, dw[2] = {12, TG_TAGS}, db[1] = {TG_TAGS};
    m.cemb = ur_paramset_add(ps, "cemb", 2, dce);
    m.wemb = ur_paramset_add(ps, "wemb", 2, dwe);
    m.W = ur_paramset_add(ps, "tag.W", 2, dw);
    m.b = ur_paramset_add(ps, "tag.b", 1, db);
    ur_rng r;
    ur_rng_seed(&r, 4);
    ur_tensor_normal(&m.cemb->value, &r, 0, 0.5);
    ur_tensor_normal(&m.wemb->value, &r, 0, 0.5);
    ur_tensor_normal(&m.W->value, &r, 0, 0.5);
    fill_ids(m.wids, TG_T * TG_B, TG_WV, 3);
    fill_ids(m.cids, TG_C * TG_T * TG_B, TG_CV, 4);
    fill_ids(m.tags, TG_T * TG_B, TG_TAGS, 5);
    for (int s = 0; s < TG_T; s++)
        for (int b = 0; b < TG_B; b++) m.mask[s * TG_B + b] = s < TG_T - 2 * b;
    expect_same_grads(ps, tagger_step, &m, "tagger");
    ur_rnn_free(m.chars);
    ur_rnn_free(m.words);
    ur_paramset_free(ps);
}

/* ---- sentence classifier: BiGRU, max and mean pooling over time ---- */

typedef struct classifier {
    charlm lm; /* embedding, recurrent stack and ids */
    ur_param *W;
    int labels[LM_B];
} classifier;

static ur_node *classifier_step(ur_tape *t, void *model) {
    classifier *m = model;
    ur_node *x = ur_gather(t, ur_param_node(t, m->lm.emb), m->lm.ids, LM_T * LM_B);
    int dims[3] = {LM_T, LM_B, LM_E};
    ur_node *h = ur_rnn_forward(m->lm.rnn, t, ur_reshape(t, x, 3, dims), NULL, NULL); /* (T, B, 2H) */
    ur_node *pool = ur_concat(t, 2, (ur_node *[]){ur_max_axis(t, h, 0, 0), ur_mean_axis(t, h, 0, 0)}, 1);
    ur_node *logits = ur_linear(t, ur_tanh(t, pool), ur_param_node(t, m->W), ur_param_node(t, m->lm.b));
    return ur_cross_entropy(t, logits, m->labels, NULL);
}

Test(backward_plan, classifier_pooling) {
    ur_paramset *ps = ur_paramset_new();
    classifier m = {0};
    ur_rnn_config cfg = ur_rnn_defaults(UR_RNN_GRU, LM_E, 6);
    cfg.bidirectional = 1;
    m.lm.rnn = ur_rnn_new(ps, "rnn", &cfg);
    cr_assert(m.lm.rnn, "%s", ur_last_error());
    int de[2] = {LM_V, LM_E}, dw[2] = {4 * 6, 3}, db[1] = {3};
    m.lm.emb = ur_paramset_add(ps, "emb", 2, de);
    m.W = ur_paramset_add(ps, "cls.W", 2, dw);
    m.lm.b = ur_paramset_add(ps, "cls.b", 1, db);
    ur_rng r;
    ur_rng_seed(&r, 8);
    ur_tensor_normal(&m.lm.emb->value, &r, 0, 0.5);
    ur_tensor_normal(&m.W->value, &r, 0, 0.5);
    fill_ids(m.lm.ids, LM_T * LM_B, LM_V, 6);
    fill_ids(m.labels, LM_B, 3, 7);
    expect_same_grads(ps, classifier_step, &m, "classifier");
    ur_rnn_free(m.lm.rnn);
    ur_paramset_free(ps);
}

/* ---- tree nets: every cell, one tree at a time and batched ---- */

static const char *TREES = "(1 (2 (0 a) (1 b)) (3 (4 c) (0 (1 d) (2 e))))\n"
                           "(0 (1 (2 a) (3 c)) (4 e))\n"
                           "(2 (1 b) (3 (0 d) (2 a)))\n";

typedef struct treemodel {
    ur_treenet *net;
    const ur_tree *trees[8];
    int n, batched;
} treemodel;

static ur_node *tree_step(ur_tape *t, void *model) {
    treemodel *m = model;
    if (m->batched) {
        ur_node *logits = ur_treenet_forward_batch(m->net, t, m->trees, m->n, 1, 3, NULL);
        return ur_treenet_loss(m->net, t, logits, m->trees, m->n, NULL, 0);
    }
    ur_node *loss = NULL;
    for (int k = 0; k < m->n; k++) {
        ur_node *logits = ur_treenet_forward(m->net, t, m->trees[k], 0, 0, NULL, NULL);
        ur_node *l = ur_treenet_loss(m->net, t, logits, &m->trees[k], 1, NULL, 0);
        loss = loss ? ur_add(t, loss, l) : l;
    }
    return loss;
}

Test(backward_plan, tree_nets) {
    ur_treebank *tb = NULL;
    cr_assert_eq(ur_treebank_parse(TREES, strlen(TREES), "test", 4, UR_TREE_BINARY, &tb), UR_OK, "%s",
                 ur_last_error());
    ur_vocab *voc = ur_vocab_new(UR_VOCAB_UNK);
    for (int k = 0; k < tb->n_trees; k++)
        for (int i = 0; i < tb->trees[k].n_words; i++) ur_vocab_add(voc, tb->trees[k].words[i]);
    ur_treebank_set_word_ids(tb, voc);
    ur_tree_cell cells[3] = {UR_TREE_RNN, UR_TREE_LSTM, UR_TREE_CHILDSUM};
    for (int c = 0; c < 3; c++)
        for (int batched = 0; batched < 2; batched++) {
            ur_paramset *ps = ur_paramset_new();
            ur_treenet_config cfg = {cells[c], ur_vocab_size(voc), 6, 6, 5, 0, batched ? 0.2 : 0};
            ur_rng r;
            ur_rng_seed(&r, 11);
            treemodel m = {ur_treenet_new(ps, "tree", &cfg, &r), {0}, tb->n_trees, batched};
            cr_assert(m.net, "%s", ur_last_error());
            for (int k = 0; k < m.n; k++) m.trees[k] = &tb->trees[k];
            char what[48];
            snprintf(what, sizeof what, "tree %s batched %d", ur_tree_cell_name(cells[c]), batched);
            expect_same_grads(ps, tree_step, &m, what);
            ur_treenet_free(m.net);
            ur_paramset_free(ps);
        }
    ur_vocab_free(voc);
    ur_treebank_free(tb);
}

/* ---- seq2seq with attention: every score and attention mode ---- */

typedef struct s2s {
    ur_seq2seq *m;
    const int *src[3], *tgt[3];
    int src_len[3], tgt_len[3];
} s2s;

static ur_node *s2s_step(ur_tape *t, void *model) {
    s2s *m = model;
    return ur_seq2seq_loss(m->m, t, m->src, m->src_len, m->tgt, m->tgt_len, 3, 1, 17, NULL);
}

Test(backward_plan, seq2seq_attention) {
    static const int s0[] = {3, 4, 5, 6}, s1[] = {7, 3}, s2[] = {5, 5, 8};
    static const int t0[] = {4, 6, 3}, t1[] = {5}, t2[] = {7, 8, 3, 4};
    for (int mode = 0; mode < 3; mode++) {
        ur_paramset *ps = ur_paramset_new();
        ur_seq2seq_config cfg = ur_seq2seq_defaults(9, 9, 1, 2);
        cfg.emb_dim = 5;
        cfg.hidden = 6;
        cfg.attn_size = 4;
        cfg.dropout = 0.1;
        cfg.bidirectional = mode != 1;
        cfg.enc_layers = mode == 2 ? 2 : 1;
        if (mode == 1) cfg.score = UR_ATTN_DOT;
        s2s m = {ur_seq2seq_new(ps, "s2s", &cfg), {s0, s1, s2}, {t0, t1, t2}, {4, 2, 3}, {3, 1, 4}};
        cr_assert(m.m, "%s", ur_last_error());
        char what[32];
        snprintf(what, sizeof what, "seq2seq config %d", mode);
        expect_same_grads(ps, s2s_step, &m, what);
        ur_seq2seq_free(m.m);
        ur_paramset_free(ps);
    }
}

/* A projected sequence whose steps are read by slices that leave gaps, in either
 * order, some twice, by plain ops or by a fused expression (whose backward fills
 * the slice's part of the buffer row by row itself): its gradient (ur_node_grad) is
 * zero in the gaps and the same with the plan and without, and so is the weight's
 * gradient made from it. The tape's memory first holds other values (a recording
 * of sevens, then one with other gaps), so a part left unwritten shows. The
 * sequence is large enough (SP_T x SP_B x SP_N values, at least the plan's 2^16)
 * for its buffer to be zeroed part by part. */
enum { SP_T = 7, SP_B = 1200, SP_I = 3, SP_N = 8, SP_SIZE = SP_T * SP_B * SP_N + SP_I * SP_N };

static void sliced_parent_grad(int on, int descending, int fused, double *out) {
    enum { T = SP_T, B = SP_B, I = SP_I, N = SP_N, MEM = 1 << 19 };
    static const int used[2][T] = {{0, 1, 1, 0, 1, 1, 0}, {1, 0, 1, 1, 0, 0, 1}}; /* steps read, recordings 1 and 2 */
    ur_tensor *xv = ur_tensor_new(2, (int[]){T * B, I});
    ur_tensor *wv = ur_tensor_new(2, (int[]){I, N});
    cr_assert(xv && wv);
    ur_rng r;
    ur_rng_seed(&r, 3);
    ur_tensor_normal(xv, &r, 0, 1);
    ur_tensor_normal(wv, &r, 0, 1);
    ur_tape *t = ur_tape_new();
    cr_assert(t);
    ur_tape_set_backward_plan(t, on);
    ur_expr *e = ur_expr_new("gate"); /* tanh(first half) * second half, (B, N / 2) */
    cr_assert(e);
    ur_expr_output(e, ur_expr_mul(e, ur_expr_tanh(e, ur_expr_input_block(e, 0, 0, 2)), ur_expr_input_block(e, 0, 1, 2)));
    cr_assert_eq(ur_expr_error(e), UR_OK, "%s", ur_expr_errmsg(e));
    ur_test_fill_tape_memory(t, MEM);
    for (int rec = 1; rec < 3; rec++) {
        ur_tape_reset(t);
        ur_node *W = ur_variable(t, wv), *P = ur_linear(t, ur_input(t, xv), W, NULL); /* (T B, N) */
        ur_node *loss = NULL;
        for (int k = 0; k < T; k++) {
            int s = descending ? T - 1 - k : k;
            if (!used[rec - 1][s]) continue;
            ur_node *step = ur_slice(t, P, 0, s * B, B), *term, *gate;
            if (fused) {
                ur_node *first = s == 2 ? ur_sum(t, ur_mul(t, step, step)) : NULL; /* read twice, the expression last */
                cr_assert_eq(ur_expr_apply(t, e, 1, &step, &gate), UR_OK, "%s", ur_tape_errmsg(t));
                term = ur_sum(t, ur_scale(t, gate, (ur_real)(s + 1 + rec)));
                if (first) term = ur_add(t, term, first);
            } else {
                term = ur_sum(t, ur_tanh(t, ur_scale(t, step, (ur_real)(s + 1 + rec))));
            }
            if (s == 3) term = ur_add(t, term, ur_sum(t, ur_mul(t, step, step))); /* read twice */
            loss = loss ? ur_add(t, loss, term) : term;
        }
        cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
        const ur_real *g = ur_node_grad(P);
        cr_assert(g);
        for (int i = 0; i < T * B * N; i++) out[i] = g[i];
        const ur_real *gw = ur_node_grad(W); /* made from P's gradient, gaps included */
        cr_assert(gw);
        for (int i = 0; i < I * N; i++) out[T * B * N + i] = gw[i];
    }
    int nonzero = 0, first = -1;
    for (int s = 0; s < T; s++)
        for (int i = 0; i < B * N && !used[1][s]; i++)
            if (out[s * B * N + i] != 0 && nonzero++ == 0) first = s;
    cr_expect_eq(nonzero, 0, "plan %d: %d gradient values of steps read by nothing are not 0 (the first in step %d)", on,
                 nonzero, first);
    ur_expr_free(e);
    ur_tape_free(t);
    ur_tensor_free(xv);
    ur_tensor_free(wv);
}

Test(backward_plan, sliced_parent_filled_where_not_read) {
    double *on = malloc(SP_SIZE * sizeof *on), *off = malloc(SP_SIZE * sizeof *off); /* P's gradient, then W's */
    cr_assert(on && off);
    for (int fused = 0; fused < 2; fused++)
        for (int descending = 0; descending < 2; descending++) {
            sliced_parent_grad(1, descending, fused, on);
            sliced_parent_grad(0, descending, fused, off);
            int nonzero = 0, differ = 0, first = -1;
            for (int i = 0; i < SP_SIZE; i++) {
                nonzero += i < SP_T * SP_B * SP_N && on[i] != 0;
                if (!(fabs(on[i] - off[i]) <= 1e-12 * fmax(1, fabs(off[i]))) && differ++ == 0) first = i;
            }
            cr_expect_eq(differ, 0, "fused %d, descending %d: %d values differ; the first, element %d: %g with the "
                         "plan, %g without", fused, descending, differ, first, first < 0 ? 0 : on[first],
                         first < 0 ? 0 : off[first]);
            cr_expect_gt(nonzero, 4 * SP_B * SP_N / 2, "fused %d: the steps that are read get gradients", fused);
        }
    free(on);
    free(off);
}

/* Switching the plan is per tape and reported back. */
Test(backward_plan, switch) {
    ur_tape *t = ur_tape_new();
    cr_assert_eq(ur_tape_set_backward_plan(t, 0), 1);
    cr_assert_eq(ur_tape_set_backward_plan(t, 5), 0);
    cr_assert_eq(ur_tape_set_backward_plan(t, 1), 1);
    cr_assert_eq(ur_tape_set_backward_plan(NULL, 1), 0);
    ur_tape_free(t);
}
