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
} setup;

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

/* sum(ctx * r_ctx) + sum(w * r_w) over one or two decoder steps sharing a memory */
static ur_node *loss_fn(ur_tape *t, void *ctx) {
    setup *s = ctx;
    ur_attn_memory mem;
    if (ur_attention_memory(t, &s->att, ur_param_node(t, s->enc), s->mask, &mem) != UR_OK) return NULL;
    int dc[2] = {B, HK}, dw[2] = {B, S};
    ur_node *rc = ur_input_data(t, 2, dc, s->r_ctx), *rw = ur_input_data(t, 2, dw, s->r_w);
    ur_node *loss = NULL;
    for (int step = 0; step < 1 + s->two_steps; step++) {
        ur_node *w;
        ur_node *c = ur_attention_step(t, &s->att, &mem, ur_param_node(t, step ? s->q2 : s->q), &w);
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

static void check_seq2seq(ur_rnn_kind cell, ur_attn_score score, ur_s2s_attn_mode mode, int bi, double dropout) {
    ur_paramset *ps = ur_paramset_new();
    ur_seq2seq_config cfg = ur_seq2seq_defaults(6, 6, 1, 2);
    cfg.cell = cell;
    cfg.score = score;
    cfg.attn_mode = mode;
    cfg.bidirectional = bi;
    cfg.emb_dim = 3;
    cfg.hidden = 3;
    cfg.attn_size = 3;
    cfg.dropout = dropout;
    s2s_case c = {ur_seq2seq_new(ps, "s2s", &cfg)};
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

Test(attention, gradcheck_seq2seq_with_padding) {
    check_seq2seq(UR_RNN_GRU, UR_ATTN_ADDITIVE, UR_S2S_ATTN_FEED, 1, 0);
    check_seq2seq(UR_RNN_LSTM, UR_ATTN_GENERAL, UR_S2S_ATTN_OUTPUT, 1, 0.2);
    check_seq2seq(UR_RNN_GRU, UR_ATTN_DOT, UR_S2S_ATTN_INPUT, 0, 0);
}
