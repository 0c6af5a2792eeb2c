/* Encoder-decoder: beam search never scores below greedy, decoders agree with the
 * model's own scores, and a short training on reversing digit strings learns. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "unroll.h"

enum { PAD = 0, BOS = 1, EOS = 2, DIGIT0 = 3, V = 13, MAXLEN = 16 };

typedef struct data {
    int n;
    int src[512][8], tgt[512][8], len[512];
    const int *sp[512], *tp[512];
} data;

/* Random digit strings of length 1..maxl; the target is the string reversed. */
static void make_reverse(data *d, int n, int maxl, uint64_t seed) {
    ur_rng rng;
    ur_rng_seed(&rng, seed);
    d->n = n;
    for (int i = 0; i < n; i++) {
        d->len[i] = 1 + (int)ur_rng_below(&rng, (uint32_t)maxl);
        for (int j = 0; j < d->len[i]; j++) d->src[i][j] = DIGIT0 + (int)ur_rng_below(&rng, 10);
        for (int j = 0; j < d->len[i]; j++) d->tgt[i][j] = d->src[i][d->len[i] - 1 - j];
        d->sp[i] = d->src[i];
        d->tp[i] = d->tgt[i];
    }
}

static ur_seq2seq *small_model(ur_paramset *ps, ur_rnn_kind cell, ur_attn_score score, ur_s2s_attn_mode mode, int bi,
                               int H, uint64_t seed) {
    ur_seq2seq_config c = ur_seq2seq_defaults(V, V, BOS, EOS);
    c.cell = cell;
    c.score = score;
    c.attn_mode = mode;
    c.bidirectional = bi;
    c.emb_dim = 16;
    c.hidden = H;
    c.attn_size = H;
    c.seed = seed;
    ur_seq2seq *m = ur_seq2seq_new(ps, "s2s", &c);
    cr_assert_not_null(m, "%s", ur_last_error());
    return m;
}

Test(seq2seq, beam_never_below_greedy_and_scores_agree) {
    static data d;
    make_reverse(&d, 24, 7, 5);
    ur_paramset *ps = ur_paramset_new();
    /* a random model: its distributions are flat enough for search to matter */
    ur_seq2seq *m = small_model(ps, UR_RNN_GRU, UR_ATTN_ADDITIVE, UR_S2S_ATTN_FEED, 1, 16, 3);
    for (int i = 0; i < ur_paramset_count(ps); i++) { /* sharpen it a little */
        ur_param *p = ur_paramset_get(ps, i);
        if (strstr(p->name, "out.W"))
            for (size_t k = 0; k < p->value.size; k++) p->value.data[k] *= 4;
    }
    ur_tape *t = ur_tape_new();
    int out[MAXLEN], len, bout[MAXLEN], blen, better = 0;
    double g_lp, b_lp, check;
    for (int i = 0; i < d.n; i++) {
        cr_assert_eq(ur_seq2seq_greedy(m, t, &d.sp[i], &d.len[i], 1, 10, out, &len, &g_lp, NULL), UR_OK, "%s",
                     ur_last_error());
        /* greedy's log-probability is the model's score of what it emitted */
        if (len < 10) {
            cr_assert_eq(ur_seq2seq_score(m, t, d.sp[i], d.len[i], out, len, &check), UR_OK);
            cr_expect(fabs(check - g_lp) < 1e-3, "greedy logp %g, score %g", g_lp, check);
        }
        ur_beam_config one = {1, 0, 0};
        cr_assert_eq(ur_seq2seq_beam(m, t, d.sp[i], d.len[i], 10, &one, bout, &blen, &b_lp), UR_OK, "%s",
                     ur_last_error());
        cr_expect_eq(blen, len, "beam 1 and greedy differ in length");
        cr_expect(blen == len && !memcmp(bout, out, (size_t)len * sizeof(int)), "beam 1 differs from greedy");
        cr_expect(fabs(b_lp - g_lp) < 1e-4);
        for (int keep = 0; keep < 2; keep++) {
            ur_beam_config bc = {5, 0, keep};
            cr_assert_eq(ur_seq2seq_beam(m, t, d.sp[i], d.len[i], 10, &bc, bout, &blen, &b_lp), UR_OK);
            cr_expect(b_lp >= g_lp - 1e-4, "beam %g below greedy %g (keep_greedy %d)", b_lp, g_lp, keep);
            if (blen < 10) {
                cr_assert_eq(ur_seq2seq_score(m, t, d.sp[i], d.len[i], bout, blen, &check), UR_OK);
                cr_expect(fabs(check - b_lp) < 1e-3, "beam logp %g, score %g", b_lp, check);
            }
            if (keep) better += b_lp > g_lp + 1e-4;
        }
    }
    cr_expect(better > 0, "beam search never found anything better than greedy");
    cr_expect_eq(ur_tape_grad_enabled(t), 1, "decoding must restore the gradient mode");
    ur_tape_free(t);
    ur_seq2seq_free(m);
    ur_paramset_free(ps);
}

Test(seq2seq, sampling_is_seeded_and_cold_sampling_is_greedy) {
    static data d;
    make_reverse(&d, 8, 6, 9);
    ur_paramset *ps = ur_paramset_new();
    ur_seq2seq *m = small_model(ps, UR_RNN_LSTM, UR_ATTN_GENERAL, UR_S2S_ATTN_OUTPUT, 0, 16, 4);
    ur_tape *t = ur_tape_new();
    int g[8 * 12], gl[8], s1[8 * 12], l1[8], s2[8 * 12], l2[8];
    double lp[8];
    cr_assert_eq(ur_seq2seq_greedy(m, t, d.sp, d.len, 8, 12, g, gl, NULL, NULL), UR_OK, "%s", ur_last_error());
    ur_rng r1, r2;
    ur_rng_seed(&r1, 1);
    cr_assert_eq(ur_seq2seq_sample(m, t, d.sp, d.len, 8, 12, 1e-7, &r1, s1, l1, lp), UR_OK);
    for (int b = 0; b < 8; b++) {
        cr_expect_eq(l1[b], gl[b]);
        cr_expect(!memcmp(g + b * 12, s1 + b * 12, (size_t)gl[b] * sizeof(int)));
    }
    ur_rng_seed(&r1, 7);
    ur_rng_seed(&r2, 7);
    cr_assert_eq(ur_seq2seq_sample(m, t, d.sp, d.len, 8, 12, 1.5, &r1, s1, l1, NULL), UR_OK);
    cr_assert_eq(ur_seq2seq_sample(m, t, d.sp, d.len, 8, 12, 1.5, &r2, s2, l2, NULL), UR_OK);
    for (int b = 0; b < 8; b++) {
        cr_expect_eq(l1[b], l2[b]);
        cr_expect(!memcmp(s1 + b * 12, s2 + b * 12, (size_t)l1[b] * sizeof(int)));
    }
    cr_expect_eq(ur_seq2seq_sample(m, t, d.sp, d.len, 8, 12, 0, &r1, s1, l1, NULL), UR_ERR_ARG);
    ur_tape_free(t);
    ur_seq2seq_free(m);
    ur_paramset_free(ps);
}

/* A few hundred steps on reversing digit strings: the loss must fall well below its
 * start and greedy decoding must get many strings right. teacher_prob < 1 trains
 * with scheduled sampling at that probability. */
static void check_learns(ur_seq2seq *m, ur_paramset *ps, double teacher_prob, int min_right, double max_ppl) {
    static data train, dev;
    make_reverse(&train, 512, 5, 1);
    make_reverse(&dev, 64, 5, 2);
    ur_optim_config oc = ur_optim_defaults(UR_OPTIM_ADAM, 0.01);
    ur_optim *opt = ur_optim_new(ps, &oc);
    cr_assert_not_null(opt, "%s", ur_last_error());
    ur_tape *t = ur_tape_new();
    double first = 0, last = 0;
    const int B = 32, steps = 300;
    for (int s = 0; s < steps; s++) {
        int i0 = (s * B) % train.n;
        ur_tape_reset(t);
        ur_node *loss = teacher_prob >= 1 ? ur_seq2seq_loss(m, t, train.sp + i0, train.len + i0, train.tp + i0,
                                                            train.len + i0, B, 1, (uint64_t)s, NULL)
                                          : ur_seq2seq_loss_sampled(m, t, train.sp + i0, train.len + i0,
                                                                    train.tp + i0, train.len + i0, B, 1, (uint64_t)s,
                                                                    teacher_prob, NULL);
        ur_optim_zero_grad(opt);
        cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
        ur_clip_grad_norm(ps, 5.0, NULL);
        cr_assert_eq(ur_optim_step(opt), UR_OK);
        if (s < 10) first += ur_node_item(loss) / 10;
        if (s >= steps - 10) last += ur_node_item(loss) / 10;
    }
    cr_expect(last < 0.3 * first, "loss %g -> %g", first, last);
    int out[64 * 8], len[64], right = 0;
    cr_assert_eq(ur_seq2seq_greedy(m, t, dev.sp, dev.len, 64, 8, out, len, NULL, NULL), UR_OK);
    for (int b = 0; b < 64; b++)
        right += len[b] == dev.len[b] && !memcmp(out + b * 8, dev.tgt[b], (size_t)len[b] * sizeof(int));
    cr_expect(right >= min_right, "only %d of 64 reversed exactly", right);
    double ppl;
    cr_assert_eq(ur_seq2seq_perplexity(m, t, dev.sp, dev.len, dev.tp, dev.len, 64, 16, &ppl, NULL), UR_OK);
    cr_expect(ppl < max_ppl, "perplexity %g", ppl);
    ur_tape_free(t);
    ur_optim_free(opt);
}

Test(seq2seq, short_training_on_reverse_learns, .timeout = 60) {
    ur_paramset *ps = ur_paramset_new();
    ur_seq2seq *m = small_model(ps, UR_RNN_GRU, UR_ATTN_DOT, UR_S2S_ATTN_FEED, 0, 32, 1);
    check_learns(m, ps, 1, 32, 2.0);
    ur_seq2seq_free(m);
    ur_paramset_free(ps);
}

/* The tied output layer (H 32 != E 16: with its projection) trains as well, with
 * fewer parameters than the untied one. */
Test(seq2seq, tied_output_layer_learns, .timeout = 60) {
    ur_paramset *ps = ur_paramset_new(), *untied = ur_paramset_new();
    ur_seq2seq_config c = ur_seq2seq_defaults(V, V, BOS, EOS);
    c.score = UR_ATTN_DOT;
    c.bidirectional = 0;
    c.emb_dim = 16;
    c.hidden = c.attn_size = 32;
    ur_seq2seq *u = ur_seq2seq_new(untied, "s2s", &c);
    c.tie_output = 1;
    ur_seq2seq *m = ur_seq2seq_new(ps, "s2s", &c);
    cr_assert(m && u, "%s", ur_last_error());
    cr_expect_null(ur_paramset_find(ps, "s2s.out.W"));
    cr_expect_not_null(ur_paramset_find(ps, "s2s.out.proj"));
    cr_expect_eq(ur_paramset_numel(untied) - ur_paramset_numel(ps), (size_t)(32 * V - 32 * 16));
    check_learns(m, ps, 1, 32, 2.0);
    ur_seq2seq_free(u);
    ur_seq2seq_free(m);
    ur_paramset_free(untied);
    ur_paramset_free(ps);
}

/* Scheduled sampling at teacher-forcing probability 0.5 still learns the task. */
Test(seq2seq, scheduled_sampling_learns, .timeout = 60) {
    ur_paramset *ps = ur_paramset_new();
    ur_seq2seq *m = small_model(ps, UR_RNN_GRU, UR_ATTN_DOT, UR_S2S_ATTN_FEED, 0, 32, 1);
    check_learns(m, ps, 0.5, 32, 2.0);
    ur_seq2seq_free(m);
    ur_paramset_free(ps);
}

/* Loss and every gradient of one training step; *grads gets them all (ps order). */
static double one_step(ur_seq2seq *m, ur_paramset *ps, const data *d, int sampled, double p, float *grads) {
    ur_tape *t = ur_tape_new();
    ur_paramset_zero_grad(ps);
    ur_node *loss = sampled ? ur_seq2seq_loss_sampled(m, t, d->sp, d->len, d->tp, d->len, 6, 1, 11, p, NULL)
                            : ur_seq2seq_loss(m, t, d->sp, d->len, d->tp, d->len, 6, 1, 11, NULL);
    cr_assert_not_null(loss, "%s", ur_tape_errmsg(t));
    cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
    double l = ur_node_item(loss);
    size_t k = 0;
    for (int i = 0; i < ur_paramset_count(ps); i++) {
        ur_param *q = ur_paramset_get(ps, i);
        for (size_t j = 0; j < q->grad.size; j++) grads[k++] = (float)q->grad.data[j];
    }
    ur_tape_free(t);
    return l;
}

/* Teacher-forcing probability 1 is teacher forcing, bit for bit (loss and
 * gradients); probability 0 feeds the model's own predictions and changes the loss;
 * a probability outside [0, 1] is an error on the tape. */
Test(seq2seq, scheduled_sampling_at_probability_one_is_teacher_forcing) {
    static data d;
    make_reverse(&d, 6, 6, 4);
    ur_paramset *ps = ur_paramset_new();
    ur_seq2seq *m = small_model(ps, UR_RNN_LSTM, UR_ATTN_ADDITIVE, UR_S2S_ATTN_FEED, 1, 16, 2);
    ur_seq2seq_config c = *ur_seq2seq_config_of(m);
    cr_assert_eq(c.dropout, 0);
    size_t n = ur_paramset_numel(ps);
    float *g1 = malloc(n * sizeof *g1), *g2 = malloc(n * sizeof *g2);
    cr_assert(g1 && g2);
    double l1 = one_step(m, ps, &d, 0, 1, g1), l2 = one_step(m, ps, &d, 1, 1, g2);
    cr_expect(l1 == l2, "loss %.17g vs %.17g", l1, l2);
    cr_expect(!memcmp(g1, g2, n * sizeof *g1), "gradients differ");
    double l0 = one_step(m, ps, &d, 1, 0, g2);
    cr_expect(isfinite(l0) && l0 != l1, "own predictions: loss %g vs teacher-forced %g", l0, l1);
    ur_tape *t = ur_tape_new();
    cr_expect_null(ur_seq2seq_loss_sampled(m, t, d.sp, d.len, d.tp, d.len, 6, 1, 1, 1.5, NULL));
    cr_expect(strstr(ur_tape_errmsg(t), "outside [0, 1]"), "%s", ur_tape_errmsg(t));
    ur_tape_free(t);
    free(g1);
    free(g2);
    ur_seq2seq_free(m);
    ur_paramset_free(ps);
}

Test(seq2seq, every_configuration_builds) {
    static data d;
    make_reverse(&d, 4, 6, 3);
    ur_rnn_kind cells[3] = {UR_RNN_GRU, UR_RNN_LSTM, UR_RNN_GRU_RESET_BEFORE};
    for (int c = 0; c < 3; c++)
        for (int sc = UR_ATTN_DOT; sc <= UR_ATTN_ADDITIVE; sc++)
            for (int mode = UR_S2S_ATTN_OUTPUT; mode <= UR_S2S_ATTN_NONE; mode++)
                for (int bi = 0; bi < 2; bi++) {
                    if (sc == UR_ATTN_DOT && bi) continue; /* dot needs equal widths */
                    ur_paramset *ps = ur_paramset_new();
                    ur_seq2seq *m = small_model(ps, cells[c], (ur_attn_score)sc, (ur_s2s_attn_mode)mode, bi, 8, 1);
                    ur_tape *t = ur_tape_new();
                    int n = 0;
                    ur_node *loss = ur_seq2seq_loss(m, t, d.sp, d.len, d.tp, d.len, 4, 1, 1, &n);
                    cr_assert_not_null(loss, "%s", ur_tape_errmsg(t));
                    cr_expect(isfinite(ur_node_item(loss)) && ur_node_item(loss) > 0);
                    cr_expect_eq(ur_backward(t, loss), UR_OK);
                    int tokens = 0;
                    for (int b = 0; b < 4; b++) tokens += d.len[b] + 1;
                    cr_expect_eq(n, tokens);
                    ur_tape_free(t);
                    ur_seq2seq_free(m);
                    ur_paramset_free(ps);
                }
    /* dot attention over a bidirectional encoder: a config error */
    ur_paramset *ps = ur_paramset_new();
    ur_seq2seq_config c = ur_seq2seq_defaults(V, V, BOS, EOS);
    c.score = UR_ATTN_DOT;
    cr_expect_null(ur_seq2seq_new(ps, "s2s", &c));
    ur_paramset_free(ps);
}

/* ---- the recurrent-network settings: init scheme, forget bias, variational dropout ---- */

/* Value (i, j) of a 2-d parameter. */
static double at(const ur_paramset *ps, const char *name, int i, int j) {
    ur_param *p = ur_paramset_find(ps, name);
    cr_assert_not_null(p, "no parameter %s", name);
    return p->value.data[(size_t)i * (size_t)p->value.shape.dims[1] + (size_t)j];
}

/* Identity init makes every (H, H) block of the recurrent weights the identity in
 * the encoder (both directions) and in the decoder cell; the forget bias fills the
 * f slice (gates i, f, g, o) of each LSTM's first bias and leaves the second at 0. */
Test(seq2seq, init_scheme_and_forget_bias_reach_encoder_and_decoder) {
    enum { H = 6 };
    ur_paramset *ps = ur_paramset_new();
    ur_seq2seq_config c = ur_seq2seq_defaults(V, V, BOS, EOS);
    c.cell = UR_RNN_LSTM;
    c.emb_dim = 5;
    c.hidden = c.attn_size = H;
    c.init = UR_RNN_INIT_IDENTITY;
    c.forget_bias = 1.5;
    ur_seq2seq *m = ur_seq2seq_new(ps, "s2s", &c);
    cr_assert_not_null(m, "%s", ur_last_error());
    static const char *const hh[] = {"s2s.dec.weight_hh", "s2s.enc.weight_hh_l0", "s2s.enc.weight_hh_l0_reverse"};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < 4 * H; j++)
                cr_expect_eq(at(ps, hh[k], i, j), j % H == i, "%s (%d, %d)", hh[k], i, j);
    static const char *const first[] = {"s2s.dec.bias_ih", "s2s.enc.bias_ih_l0", "s2s.enc.bias_ih_l0_reverse"};
    static const char *const second[] = {"s2s.dec.bias_hh", "s2s.enc.bias_hh_l0", "s2s.enc.bias_hh_l0_reverse"};
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < 4 * H; j++) {
            cr_expect_eq(ur_paramset_find(ps, first[k])->value.data[j], j / H == 1 ? 1.5 : 0, "%s[%d]", first[k], j);
            cr_expect_eq(ur_paramset_find(ps, second[k])->value.data[j], 0, "%s[%d]", second[k], j);
        }
    ur_seq2seq_free(m);
    ur_paramset_free(ps);

    /* orthogonal: each (H, H) block of the decoder's GRU W_hh has orthonormal columns */
    ps = ur_paramset_new();
    c.cell = UR_RNN_GRU_RESET_BEFORE;
    c.init = UR_RNN_INIT_ORTHOGONAL;
    m = ur_seq2seq_new(ps, "s2s", &c);
    cr_assert_not_null(m, "%s", ur_last_error());
    double worst = 0;
    for (int g = 0; g < 3; g++)
        for (int a = 0; a < H; a++)
            for (int b = 0; b < H; b++) {
                double dot = 0;
                for (int i = 0; i < H; i++)
                    dot += at(ps, "s2s.dec.weight_hh", i, g * H + a) * at(ps, "s2s.dec.weight_hh", i, g * H + b);
                worst = fmax(worst, fabs(dot - (a == b)));
            }
    cr_expect_lt(worst, 1e-5, "W_hh^T W_hh differs from I by %g", worst);
    ur_seq2seq_free(m);
    ur_paramset_free(ps);

    /* out of range: an error naming the function */
    ps = ur_paramset_new();
    c.init = (ur_rnn_init)7;
    cr_expect_null(ur_seq2seq_new(ps, "s2s", &c));
    cr_expect(strstr(ur_last_error(), "ur_seq2seq_new") && strstr(ur_last_error(), "init"), "%s", ur_last_error());
    c.init = UR_RNN_INIT_UNIFORM;
    c.variational = 2;
    cr_expect_null(ur_seq2seq_new(ps, "s2s", &c));
    cr_expect(strstr(ur_last_error(), "variational"), "%s", ur_last_error());
    ur_paramset_free(ps);
}

/* Columns j of a parameter's gradient that are zero in every row. */
static int zero_columns(const ur_paramset *ps, const char *name) {
    ur_param *p = ur_paramset_find(ps, name);
    cr_assert_not_null(p, "no parameter %s", name);
    int rows = p->grad.shape.dims[0], cols = p->grad.shape.dims[1], n = 0;
    for (int j = 0; j < cols; j++) {
        int zero = 1;
        for (int i = 0; i < rows && zero; i++) zero = p->grad.data[(size_t)i * cols + j] == 0;
        n += zero;
    }
    return n;
}

/* Rows i of a parameter's gradient that are zero throughout. */
static int zero_rows(const ur_paramset *ps, const char *name) {
    ur_param *p = ur_paramset_find(ps, name);
    cr_assert_not_null(p, "no parameter %s", name);
    int rows = p->grad.shape.dims[0], cols = p->grad.shape.dims[1], n = 0;
    for (int i = 0; i < rows; i++) {
        int zero = 1;
        for (int j = 0; j < cols && zero; j++) zero = p->grad.data[(size_t)i * cols + j] == 0;
        n += zero;
    }
    return n;
}

/* Variational dropout: one sequence (B = 1) of 7 words, one mask for all its steps.
 * Every embedding row the sequence reads is multiplied by the same (1, E) mask, so
 * the embedding gradients are zero in whole columns (the dropped features, about
 * half), and o_t's mask zeroes whole rows of the output layer's gradient. With a
 * mask per step a feature survives somewhere and almost no column is zero. Both
 * hold for teacher forcing and for scheduled sampling. */
Test(seq2seq, variational_dropout_shares_one_mask_over_the_steps) {
    enum { E = 40 };
    static const int src[7] = {3, 4, 5, 6, 7, 8, 9}, tgt[7] = {9, 8, 7, 6, 5, 4, 3};
    const int *sp[1] = {src}, *tp[1] = {tgt}, len[1] = {7};
    for (int var = 0; var < 2; var++)
        for (int sampled = 0; sampled < 2; sampled++) {
            ur_paramset *ps = ur_paramset_new();
            ur_seq2seq_config c = ur_seq2seq_defaults(V, V, BOS, EOS);
            c.emb_dim = c.hidden = E;
            c.attn_size = 8;
            c.dropout = 0.5;
            c.variational = var;
            ur_seq2seq *m = ur_seq2seq_new(ps, "s2s", &c);
            cr_assert_not_null(m, "%s", ur_last_error());
            ur_tape *t = ur_tape_new();
            ur_node *loss = sampled ? ur_seq2seq_loss_sampled(m, t, sp, len, tp, len, 1, 1, 99, 0.5, NULL)
                                    : ur_seq2seq_loss(m, t, sp, len, tp, len, 1, 1, 99, NULL);
            cr_assert_not_null(loss, "%s", ur_tape_errmsg(t));
            ur_paramset_zero_grad(ps);
            cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
            int zs = zero_columns(ps, "s2s.src_emb"), zt = zero_columns(ps, "s2s.tgt_emb");
            int zo = zero_rows(ps, "s2s.out.W");
            if (var) {
                cr_expect(zs > E / 4 && zs < 3 * E / 4, "sampled %d: %d of %d source features dropped", sampled, zs, E);
                cr_expect(zt > E / 4 && zt < 3 * E / 4, "sampled %d: %d of %d target features dropped", sampled, zt, E);
                cr_expect(zo > E / 4 && zo < 3 * E / 4, "sampled %d: %d of %d outputs dropped", sampled, zo, E);
            } else {
                cr_expect(zs <= 2 && zt <= 2 && zo <= 2, "sampled %d: masks per step, yet %d, %d, %d always dropped",
                          sampled, zs, zt, zo);
            }
            ur_tape_free(t);
            ur_seq2seq_free(m);
            ur_paramset_free(ps);
        }
}
