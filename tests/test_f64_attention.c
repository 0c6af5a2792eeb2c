/* Attention: values against plain loops, gradient checks with padding masks, and
 * padding that gets exactly zero weight and zero gradient. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "flag_names_internal.h"
#include "unroll.h"

enum { B = 3, S = 4, HK = 5, HQ = 4, A = 3 };
/* lengths 4, 2, 3 (batch-major mask) */
static const ur_real MASK[B * S] = {1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0};

typedef struct setup {
    ur_paramset *ps;
    ur_attention att;
    ur_param *enc, *q, *q2;
    ur_real r_ctx[B * HK], r_w[B * S]; /* fixed random weights of the loss */
    const ur_real *mask;
    int two_steps;
    /* layouts: LAYOUT_TIME_MAJOR reads enc_tm (S, B, HK), the same values as enc,
     * with mask_tm[t*B + b]; LAYOUT_LEARNED_QUERY asks with q1 (1, hq) at step 0 */
    int layout;
    ur_param *enc_tm, *q1;
    ur_real mask_tm[B * S];
} setup;

enum { LAYOUT_BATCH_MAJOR = 0, LAYOUT_TIME_MAJOR, LAYOUT_LEARNED_QUERY };

static void setup_make(setup *s, ur_attn_score score, const ur_real *mask) {
    memset(s, 0, sizeof *s);
    s->ps = ur_paramset_new();
    ur_rng rng;
    ur_rng_seed(&rng, 11 + score);
    int hq = score == UR_ATTN_DOT ? HK : HQ;
    cr_assert_eq(ur_attention_make(&s->att, s->ps, "att", score, hq, HK, A, &rng), UR_OK, "%s", ur_last_error());
    int de[3] = {B, S, HK}, dq[2] = {B, hq};
    s->enc = ur_paramset_add(s->ps, "enc", 3, de);
    s->q = ur_paramset_add(s->ps, "q", 2, dq);
    s->q2 = ur_paramset_add(s->ps, "q2", 2, dq);
    ur_tensor_uniform(&s->enc->value, &rng, -1, 1);
    ur_tensor_uniform(&s->q->value, &rng, -1, 1);
    ur_tensor_uniform(&s->q2->value, &rng, -1, 1);
    if (s->att.b) ur_tensor_uniform(&s->att.b->value, &rng, -0.5, 0.5);
    for (int i = 0; i < B * HK; i++) s->r_ctx[i] = (ur_real)ur_rng_uniform(&rng) - 0.5;
    for (int i = 0; i < B * S; i++) s->r_w[i] = (ur_real)ur_rng_uniform(&rng) - 0.5;
    s->mask = mask;
}

/* Adds enc_tm (enc with its first two axes swapped), mask_tm and q1 (one query). */
static void setup_layouts(setup *s, int layout) {
    s->layout = layout;
    int dt[3] = {S, B, HK}, d1[2] = {1, s->att.query_size};
    s->enc_tm = ur_paramset_add(s->ps, "enc_tm", 3, dt);
    s->q1 = ur_paramset_add(s->ps, "q1", 2, d1);
    cr_assert_eq(ur_paramset_error(s->ps), UR_OK, "%s", ur_paramset_errmsg(s->ps));
    for (int b = 0; b < B; b++)
        for (int j = 0; j < S; j++) {
            memcpy(s->enc_tm->value.data + ((size_t)j * B + b) * HK, s->enc->value.data + ((size_t)b * S + j) * HK,
                   HK * sizeof(ur_real));
            s->mask_tm[j * B + b] = s->mask ? s->mask[b * S + j] : 1;
        }
    for (int k = 0; k < s->att.query_size; k++) s->q1->value.data[k] = (ur_real)(0.3 * k - 0.4);
}

static ur_status make_memory(ur_tape *t, setup *s, ur_attn_memory *mem) {
    if (s->layout == LAYOUT_TIME_MAJOR)
        return ur_attention_memory_time_major(t, &s->att, ur_param_node(t, s->enc_tm), s->mask ? s->mask_tm : NULL,
                                              mem);
    return ur_attention_memory(t, &s->att, ur_param_node(t, s->enc), s->mask, mem);
}

/* sum(ctx * r_ctx) + sum(w * r_w) over one or two decoder steps sharing a memory */
static ur_node *loss_fn(ur_tape *t, void *ctx) {
    setup *s = ctx;
    ur_attn_memory mem;
    if (make_memory(t, s, &mem) != UR_OK) return NULL;
    int dc[2] = {B, HK}, dw[2] = {B, S};
    ur_node *rc = ur_input_data(t, 2, dc, s->r_ctx), *rw = ur_input_data(t, 2, dw, s->r_w);
    ur_node *loss = NULL;
    for (int step = 0; step < 1 + s->two_steps; step++) {
        ur_node *w;
        ur_param *q = step ? s->q2 : s->layout == LAYOUT_LEARNED_QUERY ? s->q1 : s->q;
        ur_node *c = ur_attention_step(t, &s->att, &mem, ur_param_node(t, q), &w);
        ur_node *l = ur_add(t, ur_sum(t, ur_mul(t, c, rc)), ur_sum(t, ur_mul(t, w, rw)));
        loss = loss ? ur_add(t, loss, l) : l;
    }
    return loss;
}

/* Reference scores with plain loops. */
static double score_ref(const setup *s, int b, int j) {
    const ur_real *h = s->enc->value.data + ((size_t)b * S + j) * HK;
    const ur_real *q = s->q->value.data + (size_t)b * s->att.query_size;
    double sc = 0;
    if (s->att.score == UR_ATTN_DOT) {
        for (int k = 0; k < HK; k++) sc += h[k] * q[k];
    } else if (s->att.score == UR_ATTN_GENERAL) { /* h^T W^T ... as x W: (q W) . h */
        for (int k = 0; k < HK; k++) {
            double qw = 0;
            for (int i = 0; i < HQ; i++) qw += q[i] * UR_AT2(&s->att.W->value, i, k);
            sc += qw * h[k];
        }
    } else {
        for (int a = 0; a < A; a++) {
            double e = s->att.b->value.data[a];
            for (int k = 0; k < HK; k++) e += h[k] * UR_AT2(&s->att.W1->value, k, a);
            for (int i = 0; i < HQ; i++) e += q[i] * UR_AT2(&s->att.W->value, i, a);
            sc += s->att.v->value.data[a] * tanh(e);
        }
    }
    return sc;
}

static void check_values(ur_attn_score score) {
    setup s;
    setup_make(&s, score, MASK);
    ur_tape *t = ur_tape_new();
    ur_node *w;
    ur_node *ctx = ur_attention_apply(t, &s.att, ur_param_node(t, s.q), ur_param_node(t, s.enc), MASK, &w);
    cr_assert_not_null(ctx, "%s", ur_tape_errmsg(t));
    cr_assert_eq(ur_node_dim(ctx, 0), B);
    cr_assert_eq(ur_node_dim(ctx, 1), HK);
    for (int b = 0; b < B; b++) {
        double sc[S], mx = -INFINITY, z = 0;
        for (int j = 0; j < S; j++)
            if (MASK[b * S + j]) mx = fmax(mx, sc[j] = score_ref(&s, b, j));
        for (int j = 0; j < S; j++)
            if (MASK[b * S + j]) z += exp(sc[j] - mx);
        for (int j = 0; j < S; j++) {
            double ref = MASK[b * S + j] ? exp(sc[j] - mx) / z : 0;
            double got = ur_node_cdata(w)[b * S + j];
            if (!MASK[b * S + j]) cr_expect_eq(got, 0.0, "padding weight %g", got);
            cr_expect(fabs(got - ref) < 1e-12, "%s weight (%d,%d): %g vs %g", ur_attn_score_name(score), b, j, got,
                      ref);
        }
        for (int k = 0; k < HK; k++) {
            double ref = 0;
            for (int j = 0; j < S; j++) {
                double wj = MASK[b * S + j] ? exp(sc[j] - mx) / z : 0;
                ref += wj * s.enc->value.data[((size_t)b * S + j) * HK + k];
            }
            cr_expect(fabs(ur_node_cdata(ctx)[b * HK + k] - ref) < 1e-12);
        }
    }
    ur_tape_free(t);
    ur_paramset_free(s.ps);
}

Test(attention, values_match_loops) {
    check_values(UR_ATTN_DOT);
    check_values(UR_ATTN_GENERAL);
    check_values(UR_ATTN_ADDITIVE);
}

static void check_grads(ur_attn_score score, const ur_real *mask, int two_steps) {
    setup s;
    setup_make(&s, score, mask);
    s.two_steps = two_steps;
    ur_param *params[8];
    int np = ur_paramset_count(s.ps);
    for (int i = 0; i < np; i++) params[i] = ur_paramset_get(s.ps, i);
    ur_tape *t = ur_tape_new();
    ur_gradcheck_result r;
    cr_assert_eq(ur_gradcheck(t, loss_fn, &s, params, np, 1e-6, &r), UR_OK, "%s", ur_last_error());
    cr_expect(r.max_rel_err < 1e-7, "%s: max rel err %g at %s", ur_attn_score_name(score), r.max_rel_err, r.worst);
    /* padding: exactly zero gradient into the padded encoder states */
    if (mask) {
        ur_paramset_zero_grad(s.ps);
        ur_tape_reset(t);
        cr_assert_eq(ur_backward(t, loss_fn(t, &s)), UR_OK);
        for (int b = 0; b < B; b++)
            for (int j = 0; j < S; j++)
                for (int k = 0; k < HK; k++) {
                    ur_real g = s.enc->grad.data[((size_t)b * S + j) * HK + k];
                    if (!mask[b * S + j]) cr_expect_eq(g, 0.0, "padded state (%d,%d) got gradient %g", b, j, g);
                    else cr_expect_neq(g, 0.0);
                }
    }
    ur_tape_free(t);
    ur_paramset_free(s.ps);
}

Test(attention, gradcheck_dot) {
    check_grads(UR_ATTN_DOT, MASK, 0);
    check_grads(UR_ATTN_DOT, NULL, 0);
}

Test(attention, gradcheck_general) {
    check_grads(UR_ATTN_GENERAL, MASK, 0);
    check_grads(UR_ATTN_GENERAL, MASK, 1);
}

Test(attention, gradcheck_additive) {
    check_grads(UR_ATTN_ADDITIVE, MASK, 0);
    check_grads(UR_ATTN_ADDITIVE, MASK, 1);
    check_grads(UR_ATTN_ADDITIVE, NULL, 0);
}

Test(attention, fully_padded_row_gets_zero) {
    static const ur_real mask[B * S] = {1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0};
    setup s;
    setup_make(&s, UR_ATTN_GENERAL, mask);
    ur_tape *t = ur_tape_new();
    ur_node *w;
    ur_node *ctx = ur_attention_apply(t, &s.att, ur_param_node(t, s.q), ur_param_node(t, s.enc), mask, &w);
    cr_assert_not_null(ctx);
    for (int j = 0; j < S; j++) cr_expect_eq(ur_node_cdata(w)[S + j], 0.0);
    for (int k = 0; k < HK; k++) cr_expect_eq(ur_node_cdata(ctx)[HK + k], 0.0);
    cr_expect_eq(ur_node_cdata(w)[2 * S], 1.0);
    ur_tape_free(t);
    ur_paramset_free(s.ps);
}

Test(attention, shape_errors) {
    setup s;
    setup_make(&s, UR_ATTN_ADDITIVE, NULL);
    ur_tape *t = ur_tape_new();
    int bad[2] = {B, HQ + 1};
    ur_node *ctx = ur_attention_apply(t, &s.att, ur_zeros(t, 2, bad), ur_param_node(t, s.enc), NULL, NULL);
    cr_expect_null(ctx);
    cr_expect_eq(ur_tape_error(t), UR_ERR_SHAPE);
    ur_attention dot;
    ur_rng rng;
    ur_rng_seed(&rng, 1);
    cr_expect_eq(ur_attention_make(&dot, s.ps, "d", UR_ATTN_DOT, 3, 4, 0, &rng), UR_ERR_ARG);
    ur_attn_score sc;
    cr_expect_eq(ur_attn_score_parse("additive", &sc), UR_OK);
    cr_expect_eq(sc, UR_ATTN_ADDITIVE);
    ur_tape_free(t);
    ur_paramset_free(s.ps);
}

/* The whole encoder-decoder over a padded batch (sources of lengths 3, 1, 2): every
 * parameter's gradient against central differences. */
typedef struct s2s_case {
    ur_seq2seq *m;
} s2s_case;

static const int SRC0[3] = {3, 4, 5}, SRC1[1] = {5}, SRC2[2] = {4, 3};
static const int TGT0[2] = {5, 3}, TGT1[3] = {4, 4, 3}, TGT2[1] = {5};
static const int *const SRCS[3] = {SRC0, SRC1, SRC2}, *const TGTS[3] = {TGT0, TGT1, TGT2};
static const int SRC_LEN[3] = {3, 1, 2}, TGT_LEN[3] = {2, 3, 1};

static ur_node *s2s_loss(ur_tape *t, void *ctx) {
    s2s_case *c = ctx;
    return ur_seq2seq_loss(c->m, t, SRCS, SRC_LEN, TGTS, TGT_LEN, 3, 1, 5, NULL);
}

/* The small test config; tie 2: H != E, the tied output layer has a projection. */
static ur_seq2seq_config small_config(ur_rnn_kind cell, ur_attn_score score, ur_s2s_attn_mode mode, int bi,
                                      double dropout, int tie) {
    ur_seq2seq_config cfg = ur_seq2seq_defaults(6, 6, 1, 2);
    cfg.cell = cell;
    cfg.score = score;
    cfg.attn_mode = mode;
    cfg.bidirectional = bi;
    cfg.emb_dim = 3;
    cfg.attn_size = 3;
    cfg.dropout = dropout;
    cfg.hidden = tie == 2 ? 4 : 3;
    cfg.tie_output = tie != 0;
    return cfg;
}

static void check_config(const ur_seq2seq_config *cfg) {
    ur_rnn_kind cell = cfg->cell;
    ur_attn_score score = cfg->score;
    ur_s2s_attn_mode mode = cfg->attn_mode;
    ur_paramset *ps = ur_paramset_new();
    s2s_case c = {ur_seq2seq_new(ps, "s2s", cfg)};
    cr_assert_not_null(c.m, "%s", ur_last_error());
    ur_param *params[64];
    int np = ur_paramset_count(ps);
    cr_assert(np <= 64);
    for (int i = 0; i < np; i++) params[i] = ur_paramset_get(ps, i);
    ur_tape *t = ur_tape_new();
    ur_gradcheck_result r;
    cr_assert_eq(ur_gradcheck(t, s2s_loss, &c, params, np, 1e-6, &r), UR_OK, "%s", ur_last_error());
    cr_expect(r.max_rel_err < 1e-6, "seq2seq %s/%s/%s: max rel err %g at %s", ur_rnn_kind_name(cell),
              ur_attn_score_name(score), ur_s2s_attn_mode_name(mode), r.max_rel_err, r.worst);
    ur_tape_free(t);
    ur_seq2seq_free(c.m);
    ur_paramset_free(ps);
}

static void check_seq2seq(ur_rnn_kind cell, ur_attn_score score, ur_s2s_attn_mode mode, int bi, double dropout,
                          int tie) {
    ur_seq2seq_config cfg = small_config(cell, score, mode, bi, dropout, tie);
    check_config(&cfg);
}

Test(attention, gradcheck_seq2seq_with_padding) {
    check_seq2seq(UR_RNN_GRU, UR_ATTN_ADDITIVE, UR_S2S_ATTN_FEED, 1, 0, 0);
    check_seq2seq(UR_RNN_LSTM, UR_ATTN_GENERAL, UR_S2S_ATTN_OUTPUT, 1, 0.2, 0);
    check_seq2seq(UR_RNN_GRU, UR_ATTN_DOT, UR_S2S_ATTN_INPUT, 0, 0, 0);
}

/* Without attention (the decoder sees the source only through its initial state),
 * and with the output layer tied to the target embedding (with and without the
 * projection): the same check. */
Test(attention, gradcheck_seq2seq_without_attention_and_tied) {
    check_seq2seq(UR_RNN_GRU, UR_ATTN_ADDITIVE, UR_S2S_ATTN_NONE, 1, 0, 0);
    check_seq2seq(UR_RNN_LSTM, UR_ATTN_ADDITIVE, UR_S2S_ATTN_NONE, 0, 0.2, 1);
    check_seq2seq(UR_RNN_GRU, UR_ATTN_ADDITIVE, UR_S2S_ATTN_FEED, 1, 0, 2);
}

/* The reset-before GRU in encoder and decoder; variational dropout (one mask per
 * sequence) with two encoder layers; orthogonal and identity init with a forget
 * bias: the same check. */
Test(attention, gradcheck_seq2seq_rnn_settings) {
    ur_seq2seq_config cfg = small_config(UR_RNN_GRU_RESET_BEFORE, UR_ATTN_ADDITIVE, UR_S2S_ATTN_FEED, 1, 0, 0);
    cfg.init = UR_RNN_INIT_ORTHOGONAL;
    check_config(&cfg);
    cfg = small_config(UR_RNN_LSTM, UR_ATTN_GENERAL, UR_S2S_ATTN_INPUT, 1, 0.3, 0);
    cfg.variational = 1;
    cfg.enc_layers = 2;
    cfg.init = UR_RNN_INIT_IDENTITY;
    cfg.forget_bias = 1;
    check_config(&cfg);
}

/* ---- layouts: time-major encoder states, one learned query ---- */

/* Time-major states with the RNN's mask give exactly the batch-major results. */
Test(attention, time_major_matches_batch_major) {
    for (int score = UR_ATTN_DOT; score <= UR_ATTN_ADDITIVE; score++) {
        setup s;
        setup_make(&s, (ur_attn_score)score, MASK);
        setup_layouts(&s, LAYOUT_TIME_MAJOR);
        ur_tape *t = ur_tape_new();
        ur_attn_memory bm, tm;
        cr_assert_eq(ur_attention_memory(t, &s.att, ur_param_node(t, s.enc), MASK, &bm), UR_OK);
        cr_assert_eq(ur_attention_memory_time_major(t, &s.att, ur_param_node(t, s.enc_tm), s.mask_tm, &tm), UR_OK,
                     "%s", ur_tape_errmsg(t));
        cr_expect(tm.B == B && tm.S == S);
        ur_node *wb, *wt;
        ur_node *cb = ur_attention_step(t, &s.att, &bm, ur_param_node(t, s.q), &wb);
        ur_node *ct = ur_attention_step(t, &s.att, &tm, ur_param_node(t, s.q), &wt);
        cr_assert(cb && ct, "%s", ur_tape_errmsg(t));
        cr_expect_eq(memcmp(ur_node_cdata(cb), ur_node_cdata(ct), B * HK * sizeof(ur_real)), 0, "%s context",
                     ur_attn_score_name(score));
        cr_expect_eq(memcmp(ur_node_cdata(wb), ur_node_cdata(wt), B * S * sizeof(ur_real)), 0, "%s weights",
                     ur_attn_score_name(score));
        ur_tape_free(t);
        ur_paramset_free(s.ps);
    }
}

/* Gradient check through ur_swap01 and the transposed mask; padded states get none. */
static void check_layout_grads(ur_attn_score score, int layout, const ur_real *mask) {
    setup s;
    setup_make(&s, score, mask);
    setup_layouts(&s, layout);
    s.two_steps = 1;
    ur_tape *t = ur_tape_new();
    ur_gradcheck_result r;
    cr_assert_eq(ur_gradcheck_paramset(t, loss_fn, &s, s.ps, 1e-6, 0, &r), UR_OK, "%s", ur_last_error());
    cr_expect(r.max_rel_err < 1e-7, "%s, layout %d: max rel err %g at %s", ur_attn_score_name(score), layout,
              r.max_rel_err, r.worst);
    ur_paramset_zero_grad(s.ps);
    ur_tape_reset(t);
    cr_assert_eq(ur_backward(t, loss_fn(t, &s)), UR_OK);
    const ur_param *enc = layout == LAYOUT_TIME_MAJOR ? s.enc_tm : s.enc;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < S; j++) {
            size_t at = layout == LAYOUT_TIME_MAJOR ? (size_t)j * B + b : (size_t)b * S + j;
            for (int k = 0; k < HK; k++) {
                ur_real g = enc->grad.data[at * HK + k];
                if (mask && !mask[b * S + j]) cr_expect_eq(g, 0.0, "padded state (%d,%d) got gradient %g", b, j, g);
                else cr_expect_neq(g, 0.0);
            }
        }
    if (layout == LAYOUT_LEARNED_QUERY)
        for (int k = 0; k < s.att.query_size; k++) cr_expect_neq(s.q1->grad.data[k], 0.0, "q1 receives a gradient");
    ur_tape_free(t);
    ur_paramset_free(s.ps);
}

Test(attention, gradcheck_time_major) {
    check_layout_grads(UR_ATTN_DOT, LAYOUT_TIME_MAJOR, MASK);
    check_layout_grads(UR_ATTN_GENERAL, LAYOUT_TIME_MAJOR, NULL);
    check_layout_grads(UR_ATTN_ADDITIVE, LAYOUT_TIME_MAJOR, MASK);
}

/* A (1, Hq) query gives every sequence what the same query repeated B times gives. */
Test(attention, learned_query_broadcasts) {
    setup s;
    setup_make(&s, UR_ATTN_ADDITIVE, MASK);
    setup_layouts(&s, LAYOUT_LEARNED_QUERY);
    for (int b = 0; b < B; b++)
        memcpy(s.q->value.data + (size_t)b * HQ, s.q1->value.data, HQ * sizeof(ur_real));
    ur_tape *t = ur_tape_new();
    ur_node *w1, *wb;
    ur_node *c1 = ur_attention_apply(t, &s.att, ur_param_node(t, s.q1), ur_param_node(t, s.enc), MASK, &w1);
    ur_node *cb = ur_attention_apply(t, &s.att, ur_param_node(t, s.q), ur_param_node(t, s.enc), MASK, &wb);
    cr_assert(c1 && cb, "%s", ur_tape_errmsg(t));
    cr_expect_eq(ur_node_dim(c1, 0), B);
    for (int i = 0; i < B * HK; i++) cr_expect_eq(ur_node_cdata(c1)[i], ur_node_cdata(cb)[i]);
    for (int i = 0; i < B * S; i++) cr_expect_eq(ur_node_cdata(w1)[i], ur_node_cdata(wb)[i]);
    ur_tape_free(t);
    ur_paramset_free(s.ps);
}

Test(attention, gradcheck_learned_query) {
    check_layout_grads(UR_ATTN_DOT, LAYOUT_LEARNED_QUERY, MASK);
    check_layout_grads(UR_ATTN_GENERAL, LAYOUT_LEARNED_QUERY, MASK);
    check_layout_grads(UR_ATTN_ADDITIVE, LAYOUT_LEARNED_QUERY, NULL);
}

Test(attention, swap01_values_and_errors) {
    ur_tape *t = ur_tape_new();
    ur_real v[2 * 3 * 2];
    for (int i = 0; i < 12; i++) v[i] = i;
    ur_node *y = ur_swap01(t, ur_input_data(t, 3, (int[]){2, 3, 2}, v));
    cr_assert_not_null(y, "%s", ur_tape_errmsg(t));
    cr_expect(ur_node_dim(y, 0) == 3 && ur_node_dim(y, 1) == 2 && ur_node_dim(y, 2) == 2);
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 2; c++) cr_expect_eq(ur_node_cdata(y)[(b * 2 + a) * 2 + c], v[(a * 3 + b) * 2 + c]);
    cr_expect_str_eq(ur_node_op_name(y), "swap01");
    cr_expect_null(ur_swap01(t, ur_input_data(t, 2, (int[]){3, 4}, v)));
    cr_expect_str_eq(ur_tape_errmsg(t), "swap01: needs a 3-d input (A, B, C), got 2-d (inputs (3, 4))");
    ur_tape_free(t);
}
