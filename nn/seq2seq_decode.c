/* seq2seq_decode.c - greedy decoding, sampling with temperature, beam search,
 * scoring and perplexity. All of it runs with the tape's gradients disabled: every
 * op computes its value and records nothing to differentiate. */
#include "seq2seq_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Turns a tape error into this function's status and restores the gradient mode. */
static ur_status finish(ur_tape *t, int old_grad, const char *fn) {
    ur_tape_set_grad_enabled(t, old_grad);
    ur_status st = ur_tape_error(t);
    return st ? ur_set_error(st, "%s: %s", fn, ur_tape_errmsg(t)) : UR_OK;
}

/* log p of every word after one decoder step: (B, Vt), values only. */
static const ur_real *step_logp(ur_seq2seq *m, ur_tape *t, const ur__s2s_encoded *e, const int *prev, int B,
                                ur__s2s_state *st, ur_node **w, ur_node **logits) {
    ur_node *emb = ur_gather(t, ur_param_node(t, m->tgt_emb), prev, B);
    ur_node *z = ur__s2s_logits(m, t, ur__s2s_step(m, t, e, emb, st, w));
    if (logits) *logits = z;
    return ur_node_cdata(ur_log_softmax(t, z));
}

/* ---- greedy and sampling: B sources at once ---- */

/* temperature 0: argmax; else a draw from softmax(logits / temperature). */
static int pick(const ur_real *logits, int V, double temperature, ur_rng *rng) {
    int best = 0;
    for (int v = 1; v < V; v++)
        if (logits[v] > logits[best]) best = v;
    if (temperature <= 0) return best;
    double z = 0;
    for (int v = 0; v < V; v++) z += exp((logits[v] - logits[best]) / temperature);
    double u = ur_rng_uniform(rng) * z;
    for (int v = 0; v < V; v++) {
        u -= exp((logits[v] - logits[best]) / temperature);
        if (u <= 0) return v;
    }
    return best;
}

static ur_status decode(ur_seq2seq *m, ur_tape *t, const int *const *src, const int *src_len, int B, int max_len,
                        double temperature, ur_rng *rng, int *out, int *out_len, double *logp, ur_real *attn,
                        const char *fn) {
    if (!m || !t || B < 1 || max_len < 1 || !out || !out_len || (temperature > 0 && !rng))
        return ur_set_error(UR_ERR_ARG, "%s: bad arguments (B %d, max_len %d)", fn, B, max_len);
    int *prev = ur_malloc((size_t)B * 2 * sizeof(int));
    if (!prev) return ur_set_error(UR_ERR_NOMEM, "%s: out of memory", fn);
    int *done = prev + B, V = m->cfg.tgt_vocab, eos = m->cfg.eos_id;
    ur_tape_reset(t);
    int old = ur_tape_set_grad_enabled(t, 0);
    ur__s2s_encoded e;
    if (ur__s2s_encode(m, t, src, src_len, B, 0, 0, &e)) {
        if (attn) memset(attn, 0, (size_t)B * max_len * e.S * sizeof(ur_real));
        ur__s2s_state st = e.init;
        for (int b = 0; b < B; b++) {
            prev[b] = m->cfg.bos_id;
            done[b] = 0;
            out_len[b] = 0;
            if (logp) logp[b] = 0;
        }
        int alive = B;
        for (int i = 0; i < max_len && alive > 0; i++) {
            ur_node *w = NULL, *z;
            const ur_real *lp = step_logp(m, t, &e, prev, B, &st, &w, &z);
            if (!lp) break;
            for (int b = 0; b < B; b++) {
                if (done[b]) continue;
                int y = pick(ur_node_cdata(z) + (size_t)b * V, V, temperature, rng);
                if (logp) logp[b] += lp[(size_t)b * V + y];
                if (attn && w) memcpy(attn + ((size_t)b * max_len + i) * e.S, ur_node_cdata(w) + (size_t)b * e.S,
                                 (size_t)e.S * sizeof(ur_real));
                if (y == eos) {
                    done[b] = 1;
                    alive--;
                } else {
                    out[(size_t)b * max_len + out_len[b]++] = y;
                }
                prev[b] = y;
            }
        }
    }
    ur_free(prev);
    return finish(t, old, fn);
}

ur_status ur_seq2seq_greedy(ur_seq2seq *m, ur_tape *t, const int *const *src, const int *src_len, int B,
                            int max_len, int *out, int *out_len, double *logp, ur_real *attn) {
    return decode(m, t, src, src_len, B, max_len, 0, NULL, out, out_len, logp, attn, "ur_seq2seq_greedy");
}

ur_status ur_seq2seq_sample(ur_seq2seq *m, ur_tape *t, const int *const *src, const int *src_len, int B,
                            int max_len, double temperature, ur_rng *rng, int *out, int *out_len, double *logp) {
    if (!(temperature > 0))
        return ur_set_error(UR_ERR_ARG, "ur_seq2seq_sample: temperature %g must be > 0", temperature);
    return decode(m, t, src, src_len, B, max_len, temperature, rng, out, out_len, logp, NULL, "ur_seq2seq_sample");
}

/* ---- beam search ----
 * The k live hypotheses are the k rows of one decoder batch; they all have `step`
 * words. Each step extends every row by every word, keeps the k best extensions
 * that do not end the sentence, and moves the rows' states to follow their parents
 * (one gather per state). An extension by EOS among the k best ends a hypothesis. */

typedef struct cand {
    double score; /* log-probability of the extended prefix */
    int parent;   /* the row it extends */
    int word;
} cand;

static int cand_desc(const void *a, const void *b) {
    double x = ((const cand *)a)->score, y = ((const cand *)b)->score;
    return x < y ? 1 : x > y ? -1 : 0;
}

typedef struct beam {
    int k, max_len, step;
    int *words, *next;          /* k x max_len: each row's words */
    double *score, *next_score; /* k: log-probability of each row; -inf for an empty row */
    int *parent, *word;         /* k: where each new row came from, and its last word */
    cand *cands;                /* k x 2k */
    int *best, best_len;        /* the best finished hypothesis (best_len -1: none yet) */
    double best_logp, best_norm;
    double alpha;
} beam;

static void beam_free(beam *bm) {
    ur_free(bm->words);
    ur_free(bm->next);
    ur_free(bm->score);
    ur_free(bm->next_score);
    ur_free(bm->parent);
    ur_free(bm->word);
    ur_free(bm->cands);
    ur_free(bm->best);
}

static int beam_make(beam *bm, int k, int max_len, double alpha) {
    memset(bm, 0, sizeof *bm);
    bm->k = k;
    bm->max_len = max_len;
    bm->alpha = alpha;
    bm->best_len = -1;
    size_t km = (size_t)k * max_len;
    bm->words = ur_malloc(km * sizeof(int));
    bm->next = ur_malloc(km * sizeof(int));
    bm->score = ur_malloc((size_t)k * sizeof(double));
    bm->next_score = ur_malloc((size_t)k * sizeof(double));
    bm->parent = ur_calloc((size_t)k, sizeof(int));
    bm->word = ur_calloc((size_t)k, sizeof(int));
    bm->cands = ur_malloc(2 * (size_t)k * k * sizeof(cand));
    bm->best = ur_malloc((size_t)max_len * sizeof(int));
    if (!bm->words || !bm->next || !bm->score || !bm->next_score || !bm->parent || !bm->word || !bm->cands ||
        !bm->best) {
        beam_free(bm);
        return 0;
    }
    bm->score[0] = 0;
    for (int r = 1; r < k; r++) bm->score[r] = -INFINITY; /* one live row: the empty prefix */
    return 1;
}

/* len words (EOS counted in the normalisation when it ended the hypothesis). */
static void beam_finish(beam *bm, const int *words, int len, double logp, int eos) {
    int n = len + eos;
    double norm = bm->alpha == 0 ? logp : logp / pow(n > 0 ? n : 1, bm->alpha);
    if (bm->best_len >= 0 && norm <= bm->best_norm) return;
    memcpy(bm->best, words, (size_t)len * sizeof(int));
    bm->best_len = len;
    bm->best_logp = logp;
    bm->best_norm = norm;
}

/* One step from the rows' log-probabilities lp (k, V); returns the live row count. */
static int beam_advance(beam *bm, const ur_real *lp, int V, int eos) {
    int k = bm->k, n = 0, top = 2 * k < V ? 2 * k : V;
    for (int r = 0; r < k; r++) {
        if (bm->score[r] == -INFINITY) continue;
        cand *c = bm->cands + n; /* this row's best `top` words, kept sorted by insertion */
        int have = 0;
        for (int v = 0; v < V; v++) {
            double s = bm->score[r] + lp[(size_t)r * V + v];
            if (have == top && s <= c[top - 1].score) continue;
            int j = have < top ? have++ : top - 1;
            for (; j > 0 && c[j - 1].score < s; j--) c[j] = c[j - 1];
            c[j] = (cand){s, r, v};
        }
        n += have;
    }
    qsort(bm->cands, (size_t)n, sizeof(cand), cand_desc);
    int alive = 0, step = bm->step;
    for (int i = 0; i < n && alive < k; i++) {
        const cand *c = &bm->cands[i];
        const int *prefix = bm->words + (size_t)c->parent * bm->max_len;
        if (c->word == eos) {
            if (i < k) beam_finish(bm, prefix, step, c->score, 1);
            continue;
        }
        int *w = bm->next + (size_t)alive * bm->max_len;
        memcpy(w, prefix, (size_t)step * sizeof(int));
        w[step] = c->word;
        bm->parent[alive] = c->parent;
        bm->word[alive] = c->word;
        bm->next_score[alive++] = c->score;
    }
    for (int r = alive; r < k; r++) { /* empty rows: computed, never extended */
        bm->next_score[r] = -INFINITY;
        bm->parent[r] = 0;
        bm->word[r] = eos;
    }
    int *tw = bm->words;
    bm->words = bm->next;
    bm->next = tw;
    double *ts = bm->score;
    bm->score = bm->next_score;
    bm->next_score = ts;
    bm->step++;
    return alive;
}

/* A live row of log-probability s < 0 can only fall further, and its length can grow
 * to max_len at most, so its final score is at most s / max_len^alpha (s itself for
 * alpha 0). Once the best finished hypothesis beats that bound for every live row,
 * nothing can overtake it. */
static int beam_settled(const beam *bm, int alive) {
    if (bm->best_len < 0) return 0;
    double reach = bm->alpha == 0 ? 1 : pow(bm->max_len, bm->alpha);
    for (int r = 0; r < alive; r++)
        if (bm->score[r] / reach > bm->best_norm) return 0;
    return 1;
}

static ur_status beam_search(ur_seq2seq *m, ur_tape *t, const int *src, int src_len, int max_len, beam *bm) {
    int k = bm->k, V = m->cfg.tgt_vocab, eos = m->cfg.eos_id;
    const int **srcs = ur_malloc((size_t)k * (sizeof(int *) + sizeof(int)));
    if (!srcs) return ur_set_error(UR_ERR_NOMEM, "ur_seq2seq_beam: out of memory");
    int *lens = (int *)(srcs + k);
    for (int r = 0; r < k; r++) { /* the source once per row: every row attends over it */
        srcs[r] = src;
        lens[r] = src_len;
    }
    ur_tape_reset(t);
    int old = ur_tape_set_grad_enabled(t, 0);
    ur__s2s_encoded e;
    if (ur__s2s_encode(m, t, (const int *const *)srcs, lens, k, 0, 0, &e)) {
        ur__s2s_state st = e.init;
        for (int r = 0; r < k; r++) bm->word[r] = m->cfg.bos_id;
        for (int i = 0; i < max_len; i++) {
            const ur_real *lp = step_logp(m, t, &e, bm->word, k, &st, NULL, NULL);
            if (!lp) break;
            int alive = beam_advance(bm, lp, V, eos);
            if (i == max_len - 1) /* out of room: the live rows end here, without EOS */
                for (int r = 0; r < alive; r++)
                    beam_finish(bm, bm->words + (size_t)r * max_len, bm->step, bm->score[r], 0);
            if (alive == 0 || beam_settled(bm, alive)) break;
            st.s.h = ur_gather(t, st.s.h, bm->parent, k); /* each row's state follows its parent */
            if (st.s.c) st.s.c = ur_gather(t, st.s.c, bm->parent, k);
            if (st.o) st.o = ur_gather(t, st.o, bm->parent, k);
        }
    }
    ur_free(srcs);
    return finish(t, old, "ur_seq2seq_beam");
}

ur_status ur_seq2seq_beam(ur_seq2seq *m, ur_tape *t, const int *src, int src_len, int max_len,
                          const ur_beam_config *bc, int *out, int *out_len, double *logp) {
    if (!m || !t || !src || src_len < 1 || max_len < 1 || !bc || bc->width < 1 || !out || !out_len ||
        !(bc->len_alpha >= 0))
        return ur_set_error(UR_ERR_ARG, "ur_seq2seq_beam: bad arguments");
    beam bm;
    if (!beam_make(&bm, bc->width, max_len, bc->len_alpha))
        return ur_set_error(UR_ERR_NOMEM, "ur_seq2seq_beam: out of memory");
    ur_status st = beam_search(m, t, src, src_len, max_len, &bm);
    if (st == UR_OK && bc->keep_greedy) { /* greedy's answer competes on the same score */
        int *g = ur_malloc((size_t)max_len * sizeof(int)), g_len = 0;
        double g_logp = 0;
        if (!g) st = ur_set_error(UR_ERR_NOMEM, "ur_seq2seq_beam: out of memory");
        if (st == UR_OK) st = ur_seq2seq_greedy(m, t, &src, &src_len, 1, max_len, g, &g_len, &g_logp, NULL);
        if (st == UR_OK) beam_finish(&bm, g, g_len, g_logp, g_len < max_len);
        ur_free(g);
    }
    if (st == UR_OK) {
        memcpy(out, bm.best, (size_t)bm.best_len * sizeof(int));
        *out_len = bm.best_len;
        if (logp) *logp = bm.best_logp;
    }
    beam_free(&bm);
    return st;
}

/* ---- scoring ---- */

ur_status ur_seq2seq_score(ur_seq2seq *m, ur_tape *t, const int *src, int src_len, const int *tgt, int tgt_len,
                           double *logp) {
    if (!m || !t || !logp) return ur_set_error(UR_ERR_ARG, "ur_seq2seq_score: NULL argument");
    ur_tape_reset(t);
    int old = ur_tape_set_grad_enabled(t, 0), n = 0;
    ur_node *loss = ur_seq2seq_loss(m, t, &src, &src_len, &tgt, &tgt_len, 1, 0, 0, &n);
    if (loss) *logp = -(double)ur_node_item(loss) * n;
    return finish(t, old, "ur_seq2seq_score");
}

ur_status ur_seq2seq_perplexity(ur_seq2seq *m, ur_tape *t, const int *const *src, const int *src_len,
                                const int *const *tgt, const int *tgt_len, int n, int batch, double *ppl,
                                long *n_tokens) {
    if (!m || !t || !ppl || n < 1 || batch < 1) return ur_set_error(UR_ERR_ARG, "ur_seq2seq_perplexity: bad arguments");
    double nll = 0;
    long count = 0;
    int old = ur_tape_set_grad_enabled(t, 0);
    for (int i = 0; i < n && !ur_tape_error(t); i += batch) {
        int B = n - i < batch ? n - i : batch, c = 0;
        ur_tape_reset(t);
        ur_node *loss = ur_seq2seq_loss(m, t, src + i, src_len + i, tgt + i, tgt_len + i, B, 0, 0, &c);
        if (loss) {
            nll += (double)ur_node_item(loss) * c;
            count += c;
        }
    }
    ur_status st = finish(t, old, "ur_seq2seq_perplexity");
    if (st == UR_OK) {
        *ppl = exp(nll / (double)count);
        if (n_tokens) *n_tokens = count;
    }
    return st;
}
