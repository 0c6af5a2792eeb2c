/* seq2seq.c - the encoder-decoder: parameters, encoder, one decoder step, and the
 * teacher-forced loss. Decoding is in seq2seq_decode.c. */
#include "flag_names_internal.h"
#include "rnn_internal.h"
#include "seq2seq_internal.h"
#include "ur_init.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *ur_s2s_attn_mode_name(ur_s2s_attn_mode m) {
    switch (m) {
    case UR_S2S_ATTN_OUTPUT: return "output";
    case UR_S2S_ATTN_FEED: return "feed";
    case UR_S2S_ATTN_INPUT: return "input";
    case UR_S2S_ATTN_NONE: return "none";
    }
    return "?";
}

ur_status ur_s2s_attn_mode_parse(const char *name, ur_s2s_attn_mode *out) {
    for (int i = UR_S2S_ATTN_OUTPUT; i <= UR_S2S_ATTN_NONE; i++)
        if (name && out && !strcmp(name, ur_s2s_attn_mode_name((ur_s2s_attn_mode)i))) {
            *out = (ur_s2s_attn_mode)i;
            return UR_OK;
        }
    return ur_set_error(UR_ERR_ARG, "ur_s2s_attn_mode_parse: unknown mode '%s' (output, feed, input, none)",
                        name ? name : "(null)");
}

ur_seq2seq_config ur_seq2seq_defaults(int src_vocab, int tgt_vocab, int bos_id, int eos_id) {
    ur_seq2seq_config c;
    memset(&c, 0, sizeof c);
    c.cell = UR_RNN_GRU;
    c.src_vocab = src_vocab;
    c.tgt_vocab = tgt_vocab;
    c.emb_dim = 64;
    c.hidden = 128;
    c.enc_layers = 1;
    c.bidirectional = 1;
    c.score = UR_ATTN_ADDITIVE;
    c.attn_size = 128;
    c.attn_mode = UR_S2S_ATTN_FEED;
    c.bos_id = bos_id;
    c.eos_id = eos_id;
    c.seed = 1;
    return c;
}

/* ---- parameters ---- */

static ur_param *add(ur_paramset *ps, const char *prefix, const char *name, int rows, int cols) {
    char full[96];
    if (snprintf(full, sizeof full, "%s.%s", prefix, name) >= (int)sizeof full) {
        ur_set_error(UR_ERR_ARG, "ur_seq2seq_new: prefix '%s' is too long", prefix);
        return NULL;
    }
    int dims[2] = {rows, cols};
    return ur_paramset_add(ps, full, cols ? 2 : 1, dims);
}

static ur_status check_config(const ur_seq2seq_config *c) {
    const char *fn = "ur_seq2seq_new";
    if (!ur_rnn_kind_cell(c->cell))
        return ur_set_error(UR_ERR_ARG, "%s: cell %d is not a built-in cell (gru, gru_reset_before, lstm, ...)", fn,
                            (int)c->cell);
    if (c->init < UR_RNN_INIT_UNIFORM || c->init > UR_RNN_INIT_IDENTITY)
        return ur_set_error(UR_ERR_ARG, "%s: unknown init scheme %d (uniform, orthogonal, identity)", fn, (int)c->init);
    if (!isfinite(c->forget_bias)) return ur_set_error(UR_ERR_ARG, "%s: forget_bias is not finite", fn);
    if (c->variational != 0 && c->variational != 1)
        return ur_set_error(UR_ERR_ARG, "%s: variational must be 0 or 1 (got %d)", fn, c->variational);
    if (c->src_vocab < 1 || c->tgt_vocab < 1 || c->emb_dim < 1 || c->hidden < 1 || c->enc_layers < 1 ||
        c->enc_layers > UR_RNN_MAX_LAYERS || (c->bidirectional != 0 && c->bidirectional != 1))
        return ur_set_error(UR_ERR_ARG, "%s: bad sizes (vocab %d/%d, emb %d, hidden %d, layers %d)", fn, c->src_vocab,
                            c->tgt_vocab, c->emb_dim, c->hidden, c->enc_layers);
    if (c->bos_id < 0 || c->bos_id >= c->tgt_vocab || c->eos_id < 0 || c->eos_id >= c->tgt_vocab)
        return ur_set_error(UR_ERR_ARG, "%s: bos %d or eos %d outside the target vocabulary of %d", fn, c->bos_id,
                            c->eos_id, c->tgt_vocab);
    if (c->attn_mode < UR_S2S_ATTN_OUTPUT || c->attn_mode > UR_S2S_ATTN_NONE)
        return ur_set_error(UR_ERR_ARG, "%s: unknown attention mode %d", fn, (int)c->attn_mode);
    if (c->tie_output != 0 && c->tie_output != 1)
        return ur_set_error(UR_ERR_ARG, "%s: tie_output must be 0 or 1 (got %d)", fn, c->tie_output);
    if (!(c->dropout >= 0 && c->dropout < 1))
        return ur_set_error(UR_ERR_ARG, "%s: dropout %g is outside [0, 1)", fn, c->dropout);
    return UR_OK;
}

ur_seq2seq *ur_seq2seq_new(ur_paramset *ps, const char *prefix, const ur_seq2seq_config *cfg) {
    if (!ps || !prefix || !cfg) return (void)ur_set_error(UR_ERR_ARG, "ur_seq2seq_new: NULL argument"), NULL;
    if (check_config(cfg) != UR_OK) return NULL;
    ur_seq2seq *m = ur_calloc(1, sizeof *m);
    if (!m) return (void)ur_set_error(UR_ERR_NOMEM, "ur_seq2seq_new: out of memory"), NULL;
    m->cfg = *cfg;
    int E = cfg->emb_dim, H = cfg->hidden;
    m->He = cfg->bidirectional ? 2 * H : H;
    ur_rng rng;
    ur_rng_seed(&rng, cfg->seed);
    char name[96];
    ur_rnn_config rc = ur_rnn_defaults(cfg->cell, E, H); /* the encoder's; the decoder cell's init */
    rc.num_layers = cfg->enc_layers;
    rc.bidirectional = cfg->bidirectional;
    rc.dropout = cfg->dropout;
    rc.variational = cfg->variational;
    rc.init = cfg->init;
    rc.forget_bias = cfg->forget_bias;
    rc.seed = cfg->seed + 1;
    ur_s2s_attn_mode mode = cfg->attn_mode;
    int din = mode == UR_S2S_ATTN_FEED ? E + H : mode == UR_S2S_ATTN_INPUT ? E + m->He : E;
    int ok = (m->src_emb = add(ps, prefix, "src_emb", cfg->src_vocab, E)) &&
             (m->tgt_emb = add(ps, prefix, "tgt_emb", cfg->tgt_vocab, E));
    snprintf(name, sizeof name, "%s.enc", prefix);
    ok = ok && (m->enc = ur_rnn_new(ps, name, &rc));
    snprintf(name, sizeof name, "%s.dec", prefix);
    ok = ok && ur_rnn_cell_make(&m->dec, ps, name, "", cfg->cell, din, H) == UR_OK &&
         ur__rnn_cell_init(&m->dec, &rc, &rng) == UR_OK;
    snprintf(name, sizeof name, "%s.att", prefix);
    if (mode != UR_S2S_ATTN_NONE)
        ok = ok && ur_attention_make(&m->att, ps, name, cfg->score, H, m->He, cfg->attn_size, &rng) == UR_OK;
    ok = ok && (m->Wb = add(ps, prefix, "bridge.W", m->He, H)) && (m->bb = add(ps, prefix, "bridge.b", H, 0));
    if (mode == UR_S2S_ATTN_OUTPUT || mode == UR_S2S_ATTN_FEED)
        ok = ok && (m->Wc = add(ps, prefix, "comb.W", H + m->He, H)) && (m->bc = add(ps, prefix, "comb.b", H, 0));
    if (!cfg->tie_output)
        ok = ok && (m->Wo = add(ps, prefix, "out.W", H, cfg->tgt_vocab));
    else if (H != E)
        ok = ok && (m->Wp = add(ps, prefix, "out.proj", H, E));
    ok = ok && (m->bo = add(ps, prefix, "out.b", cfg->tgt_vocab, 0));
    if (!ok) {
        ur_seq2seq_free(m);
        return NULL;
    }
    ur_init_uniform(&m->src_emb->value, &rng, 0.1);
    ur_init_uniform(&m->tgt_emb->value, &rng, 0.1);
    ur_init_xavier_uniform(&m->Wb->value, &rng, 1.0);
    if (m->Wc) ur_init_xavier_uniform(&m->Wc->value, &rng, 1.0);
    if (m->Wo) ur_init_xavier_uniform(&m->Wo->value, &rng, 1.0);
    if (m->Wp) ur_init_xavier_uniform(&m->Wp->value, &rng, 1.0);
    return m;
}

void ur_seq2seq_free(ur_seq2seq *m) {
    if (!m) return;
    ur_rnn_free(m->enc);
    ur_free(m->enc_scratch);
    ur_free(m->scratch);
    ur_free(m);
}

const ur_seq2seq_config *ur_seq2seq_config_of(const ur_seq2seq *m) { return m ? &m->cfg : NULL; }

void *ur__s2s_grow(ur_tape *t, void **buf, size_t *cap, size_t bytes) {
    if (bytes > *cap) {
        void *p = ur_realloc(*buf, 0, bytes);
        if (!p) {
            ur_tape_fail(t, UR_ERR_NOMEM, "seq2seq: out of memory for %zu bytes of scratch", bytes);
            return NULL;
        }
        *buf = p;
        *cap = bytes;
    }
    return *buf;
}

/* Dropout on x (T*B, n), the rows of T steps of B sequences: a mask of its own for
 * every row, or (variational) one (B, n) mask shared by all T steps. */
static ur_node *seq_dropout(const ur_seq2seq *m, ur_tape *t, ur_node *x, int T, int B, uint64_t seed) {
    ur_real p = (ur_real)m->cfg.dropout;
    if (!m->cfg.variational) return ur_dropout(t, x, p, seed);
    int n = ur_node_dim(x, 1), md[2] = {B, n}, d3[3] = {T, B, n}, d2[2] = {T * B, n};
    ur_node *mask = ur_dropout_make_mask(t, 2, md, p, seed);
    return ur_reshape(t, ur_mul(t, ur_reshape(t, x, 3, d3), mask), 2, d2); /* (T, B, n) * (B, n) */
}

/* ---- encoder ---- */

/* The attention memory: the encoder states out (S, B, He) in batch-major order
 * (B, S, He), with the padding mask (B, S) or NULL. 0 with the error on the tape. */
static int attention_memory(ur_seq2seq *m, ur_tape *t, ur_node *out, const int *perm, const ur_real *mask, int B,
                            int S, ur__s2s_encoded *e) {
    int d2[2] = {S * B, m->He}, d3[3] = {B, S, m->He};
    ur_node *values = ur_reshape(t, ur_gather(t, ur_reshape(t, out, 2, d2), perm, S * B), 3, d3);
    return ur_attention_memory(t, &m->att, values, mask, &e->mem) == UR_OK;
}

int ur__s2s_encode(ur_seq2seq *m, ur_tape *t, const int *const *src, const int *src_len, int B, int train,
                   uint64_t seed, ur__s2s_encoded *e) {
    memset(e, 0, sizeof *e);
    if (ur_tape_error(t)) return 0;
    int S = 0, padded = 0;
    for (int b = 0; b < B; b++) {
        if (!src || !src_len || !src[b] || src_len[b] < 1) {
            ur_tape_fail(t, UR_ERR_ARG, "seq2seq: source %d is missing or empty", b);
            return 0;
        }
        if (src_len[b] > S) S = src_len[b];
    }
    int H = m->cfg.hidden, E = m->cfg.emb_dim;
    size_t n = (size_t)S * B;
    int *ids = ur__s2s_grow(t, &m->enc_scratch, &m->enc_scratch_bytes, n * (2 * sizeof(int) + 2 * sizeof(ur_real)));
    if (!ids) return 0;
    int *perm = ids + n;
    ur_real *mask_tm = (ur_real *)(perm + n), *mask_bm = mask_tm + n;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < S; j++) {
            int real = j < src_len[b];
            int id = real ? src[b][j] : 0;
            if (id < 0 || id >= m->cfg.src_vocab) {
                ur_tape_fail(t, UR_ERR_ARG, "seq2seq: source %d word %d has id %d outside [0, %d)", b, j, id,
                             m->cfg.src_vocab);
                return 0;
            }
            ids[(size_t)j * B + b] = id; /* time-major, as the encoder reads it */
            mask_tm[(size_t)j * B + b] = mask_bm[(size_t)b * S + j] = real;
            perm[(size_t)b * S + j] = j * B + b; /* batch-major row (b, j) <- time-major row */
            padded |= !real;
        }
    ur_node *x = ur_gather(t, ur_param_node(t, m->src_emb), ids, (int)n);
    if (train && m->cfg.dropout > 0) x = seq_dropout(m, t, x, S, B, seed);
    int dx[3] = {S, B, E};
    ur_rnn_args args;
    memset(&args, 0, sizeof args);
    args.mask = padded ? mask_tm : NULL;
    args.training = train;
    args.seed = seed ^ 0x5851f42d4c957f2dull;
    ur_rnn_final fin;
    ur_node *out = ur_rnn_forward(m->enc, t, ur_reshape(t, x, 3, dx), &args, &fin); /* (S, B, He) */
    if (!out) return 0;
    if (m->cfg.attn_mode != UR_S2S_ATTN_NONE && !attention_memory(m, t, out, perm, padded ? mask_bm : NULL, B, S, e))
        return 0;
    /* bridge from the top layer's final states (both directions) */
    int D = m->cfg.bidirectional ? 2 : 1, top = (m->cfg.enc_layers - 1) * D;
    ur_node *fh = D == 2 ? ur_concat(t, 2, fin.h + top, 1) : fin.h[top];
    int bh[2] = {B, H};
    e->B = B;
    e->S = S;
    e->init.s.h = ur_tanh(t, ur_linear(t, fh, ur_param_node(t, m->Wb), ur_param_node(t, m->bb)));
    e->init.s.c = m->dec.def->n_states > 1 ? ur_zeros(t, 2, bh) : NULL; /* an LSTM's c */
    e->init.o = m->cfg.attn_mode == UR_S2S_ATTN_FEED ? ur_zeros(t, 2, bh) : NULL;
    return ur_tape_error(t) == UR_OK;
}

/* ---- one decoder step ---- */

ur_node *ur__s2s_step(ur_seq2seq *m, ur_tape *t, const ur__s2s_encoded *e, ur_node *emb, ur__s2s_state *st,
                      ur_node **w) {
    ur_node *in[2] = {emb, NULL}, *ctx = NULL;
    switch (m->cfg.attn_mode) {
    case UR_S2S_ATTN_INPUT: /* Bahdanau: attend with the previous state, feed the context in */
        in[1] = ctx = ur_attention_step(t, &m->att, &e->mem, st->s.h, w);
        st->s = ur_rnn_cell_step(t, &m->dec, ur_concat(t, 2, in, 1), st->s);
        st->o = st->s.h;
        return st->o;
    case UR_S2S_ATTN_FEED: /* Luong input feeding: the previous output joins the input */
        in[1] = st->o;
        st->s = ur_rnn_cell_step(t, &m->dec, ur_concat(t, 2, in, 1), st->s);
        break;
    case UR_S2S_ATTN_OUTPUT:
        st->s = ur_rnn_cell_step(t, &m->dec, emb, st->s);
        break;
    case UR_S2S_ATTN_NONE: /* the source reaches the decoder only through s_0 */
        if (w) *w = NULL;
        st->s = ur_rnn_cell_step(t, &m->dec, emb, st->s);
        st->o = st->s.h;
        return st->o;
    }
    ctx = ur_attention_step(t, &m->att, &e->mem, st->s.h, w);
    ur_node *hc[2] = {st->s.h, ctx};
    st->o = ur_tanh(t, ur_linear(t, ur_concat(t, 2, hc, 1), ur_param_node(t, m->Wc), ur_param_node(t, m->bc)));
    return st->o;
}

ur_node *ur__s2s_logits(ur_seq2seq *m, ur_tape *t, ur_node *o) {
    if (m->Wo) return ur_linear(t, o, ur_param_node(t, m->Wo), ur_param_node(t, m->bo));
    /* tied: o (N, H) [-> o P (N, E)] -> (N, E) E_t^T (E, Vt) */
    if (m->Wp) o = ur_matmul(t, o, ur_param_node(t, m->Wp), 0, 0);
    return ur_linear(t, o, ur_transpose(t, ur_param_node(t, m->tgt_emb)), ur_param_node(t, m->bo));
}

/* ---- the loss: teacher-forced, or with scheduled sampling ---- */

/* The decoder outputs outs[0..T) of T steps over B pairs when pair b reads
 * in_ids[s*B + b] at step s (all known in advance): one gather for every step. */
static int forced_steps(ur_seq2seq *m, ur_tape *t, const ur__s2s_encoded *e, const int *in_ids, int T, int B,
                        int train, uint64_t seed, ur_node **outs) {
    ur_node *emb = ur_gather(t, ur_param_node(t, m->tgt_emb), in_ids, T * B); /* (T*B, E) */
    if (train && m->cfg.dropout > 0) emb = seq_dropout(m, t, emb, T, B, seed + 1);
    ur__s2s_state st = e->init;
    char label[32];
    for (int s = 0; s < T; s++) {
        snprintf(label, sizeof label, "dec t=%d", s);
        ur_tape_begin_group(t, label);
        outs[s] = ur__s2s_step(m, t, e, ur_slice(t, emb, 0, s * B, B), &st, NULL);
        ur_tape_end_group(t);
    }
    return ur_tape_error(t) == UR_OK;
}

/* Scheduled sampling: step s >= 1 reads the true word (already in in_ids) with
 * probability p, else the argmax of step s-1's logits, found without dropout and
 * without gradient (the choice is not differentiated). Rewrites in_ids. */
static int sampled_steps(ur_seq2seq *m, ur_tape *t, const ur__s2s_encoded *e, int *in_ids, int T, int B,
                         int train, uint64_t seed, double p, ur_node **outs) {
    ur_rng rng;
    ur_rng_seed(&rng, seed ^ 0x9e3779b97f4a7c15ull);
    ur__s2s_state st = e->init;
    int V = m->cfg.tgt_vocab, drop = train && m->cfg.dropout > 0, be[2] = {B, m->cfg.emb_dim};
    ur_node *shared = drop && m->cfg.variational /* the mask forced_steps would draw */
                          ? ur_dropout_make_mask(t, 2, be, (ur_real)m->cfg.dropout, seed + 1)
                          : NULL;
    char label[32];
    for (int s = 0; s < T && !ur_tape_error(t); s++) {
        snprintf(label, sizeof label, "dec t=%d", s);
        ur_tape_begin_group(t, label);
        ur_node *emb = ur_gather(t, ur_param_node(t, m->tgt_emb), in_ids + (size_t)s * B, B); /* (B, E) */
        if (shared) emb = ur_mul(t, emb, shared);
        else if (drop)
            emb = ur_dropout(t, emb, (ur_real)m->cfg.dropout, seed + 1 + 0x632be59bd9b4e019ull * (uint64_t)(s + 1));
        outs[s] = ur__s2s_step(m, t, e, emb, &st, NULL);
        ur_tape_end_group(t);
        if (s + 1 == T) break;
        int old = ur_tape_set_grad_enabled(t, 0);
        const ur_real *z = ur_node_cdata(ur__s2s_logits(m, t, outs[s])); /* (B, Vt) */
        ur_tape_set_grad_enabled(t, old);
        if (!z) break;
        for (int b = 0; b < B; b++) {
            if (ur_rng_uniform(&rng) < p) continue; /* the true word stays */
            const ur_real *zb = z + (size_t)b * V;
            int best = 0;
            for (int v = 1; v < V; v++)
                if (zb[v] > zb[best]) best = v;
            in_ids[(size_t)(s + 1) * B + b] = best;
        }
    }
    return ur_tape_error(t) == UR_OK;
}

static ur_node *loss(ur_seq2seq *m, ur_tape *t, const int *const *src, const int *src_len, const int *const *tgt,
                     const int *tgt_len, int B, int train, uint64_t seed, double p, int *n_tokens, const char *fn) {
    if (n_tokens) *n_tokens = 0;
    if (!t || ur_tape_error(t)) return NULL;
    if (!m || B < 1 || !tgt || !tgt_len) {
        ur_tape_fail(t, UR_ERR_ARG, "%s: needs a model and B >= 1 targets (B = %d)", fn, B);
        return NULL;
    }
    if (!(p >= 0 && p <= 1)) {
        ur_tape_fail(t, UR_ERR_ARG, "%s: teacher-forcing probability %g is outside [0, 1]", fn, p);
        return NULL;
    }
    int T = 0, V = m->cfg.tgt_vocab, eos = m->cfg.eos_id;
    for (int b = 0; b < B; b++) {
        if (tgt_len[b] < 0 || (tgt_len[b] > 0 && !tgt[b])) {
            ur_tape_fail(t, UR_ERR_ARG, "%s: target %d is missing", fn, b);
            return NULL;
        }
        if (tgt_len[b] + 1 > T) T = tgt_len[b] + 1; /* + EOS */
    }
    ur__s2s_encoded e;
    if (!ur__s2s_encode(m, t, src, src_len, B, train, seed, &e)) return NULL;
    size_t n = (size_t)T * B;
    ur_node **outs = ur__s2s_grow(t, &m->scratch, &m->scratch_bytes,
                                  (size_t)T * sizeof(ur_node *) + n * (2 * sizeof(int) + sizeof(ur_real)));
    if (!outs) return NULL;
    int *in_ids = (int *)(outs + T), *out_ids = in_ids + n;
    ur_real *mask = (ur_real *)(out_ids + n);
    int count = 0;
    /* time-major: the decoder reads in_ids[t*B + b] and must predict out_ids[t*B + b] */
    for (int b = 0; b < B; b++)
        for (int s = 0; s < T; s++) {
            int len = tgt_len[b];
            int y_prev = s == 0 ? m->cfg.bos_id : s - 1 < len ? tgt[b][s - 1] : eos;
            int y = s < len ? tgt[b][s] : eos;
            if (y < 0 || y >= V || y_prev < 0 || y_prev >= V) {
                ur_tape_fail(t, UR_ERR_ARG, "%s: target %d has an id outside [0, %d)", fn, b, V);
                return NULL;
            }
            in_ids[(size_t)s * B + b] = y_prev;
            out_ids[(size_t)s * B + b] = y;
            mask[(size_t)s * B + b] = s <= len;
            count += s <= len;
        }
    int ok = p >= 1 ? forced_steps(m, t, &e, in_ids, T, B, train, seed, outs)
                    : sampled_steps(m, t, &e, in_ids, T, B, train, seed, p, outs);
    if (!ok) return NULL;
    ur_node *o = T == 1 ? outs[0] : ur_concat(t, T, outs, 0); /* (T*B, H) */
    if (train && m->cfg.dropout > 0) o = seq_dropout(m, t, o, T, B, seed ^ 0x2545f4914f6cdd1dull);
    ur_node *l = ur_cross_entropy(t, ur__s2s_logits(m, t, o), out_ids, mask);
    if (l && n_tokens) *n_tokens = count;
    return l;
}

ur_node *ur_seq2seq_loss(ur_seq2seq *m, ur_tape *t, const int *const *src, const int *src_len,
                         const int *const *tgt, const int *tgt_len, int B, int train, uint64_t seed,
                         int *n_tokens) {
    return loss(m, t, src, src_len, tgt, tgt_len, B, train, seed, 1, n_tokens, "seq2seq_loss");
}

ur_node *ur_seq2seq_loss_sampled(ur_seq2seq *m, ur_tape *t, const int *const *src, const int *src_len,
                                 const int *const *tgt, const int *tgt_len, int B, int train, uint64_t seed,
                                 double teacher_prob, int *n_tokens) {
    return loss(m, t, src, src_len, tgt, tgt_len, B, train, seed, teacher_prob, n_tokens, "seq2seq_loss_sampled");
}
