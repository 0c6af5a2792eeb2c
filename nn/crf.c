/* crf.c - linear-chain CRF: the forward algorithm and path scores from public ops,
 * Viterbi decoding on plain arrays. See ur_crf.h for the equations. */
#include "ur_crf.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

ur_status ur_crf_make(ur_crf *crf, ur_paramset *ps, const char *prefix, int n_tags) {
    if (!crf || !ps) return ur_set_error(UR_ERR_ARG, "ur_crf_make: crf or paramset is NULL");
    memset(crf, 0, sizeof *crf);
    if (n_tags < 1 || n_tags > 4096)
        return ur_set_error(UR_ERR_ARG, "ur_crf_make: n_tags must be in 1..4096, got %d", n_tags);
    if (!prefix || !*prefix) prefix = "crf";
    char name[96];
    int kk[2] = {n_tags, n_tags};
    snprintf(name, sizeof name, "%s.transitions", prefix);
    crf->transitions = ur_paramset_add(ps, name, 2, kk);
    snprintf(name, sizeof name, "%s.start", prefix);
    crf->start = crf->transitions ? ur_paramset_add(ps, name, 1, kk) : NULL;
    snprintf(name, sizeof name, "%s.end", prefix);
    crf->end = crf->start ? ur_paramset_add(ps, name, 1, kk) : NULL;
    if (!crf->end) {
        char why[256];
        snprintf(why, sizeof why, "%s", ur_last_error());
        return ur_set_error(UR_ERR_ARG, "ur_crf_make: %s", why);
    }
    crf->forbid_ = ur_calloc((size_t)n_tags * n_tags + n_tags, sizeof *crf->forbid_);
    if (!crf->forbid_) return ur_set_error(UR_ERR_NOMEM, "ur_crf_make: out of memory");
    crf->n_tags = n_tags;
    return UR_OK;
}

void ur_crf_release(ur_crf *crf) {
    if (!crf) return;
    ur_free(crf->forbid_);
    crf->forbid_ = NULL;
}

/* Penalty of a move: transitions [from][to], starts after them (from = -1). */
static ur_real *penalty(const ur_crf *crf, int from, int to) {
    int K = crf->n_tags;
    return from < 0 ? &crf->forbid_[(size_t)K * K + to] : &crf->forbid_[(size_t)from * K + to];
}

ur_status ur_crf_forbid(ur_crf *crf, int from, int to) {
    if (!crf || !crf->forbid_) return ur_set_error(UR_ERR_ARG, "ur_crf_forbid: crf is not made");
    if (from < -1 || from >= crf->n_tags || to < 0 || to >= crf->n_tags)
        return ur_set_error(UR_ERR_ARG, "ur_crf_forbid: move %d -> %d is outside -1..%d -> 0..%d", from, to,
                            crf->n_tags - 1, crf->n_tags - 1);
    *penalty(crf, from, to) = UR_CRF_FORBIDDEN;
    return UR_OK;
}

int ur_crf_allowed(const ur_crf *crf, int from, int to) {
    if (!crf || !crf->forbid_ || from < -1 || from >= crf->n_tags || to < 0 || to >= crf->n_tags) return 0;
    return *penalty(crf, from, to) == 0;
}

int ur_crf_forbid_bio(ur_crf *crf, const char *const *names) {
    if (!crf || !crf->forbid_ || !names) return 0;
    int n = 0;
    for (int to = 0; to < crf->n_tags; to++) {
        if (strncmp(names[to], "I-", 2) != 0) continue;
        const char *type = names[to] + 2;
        for (int from = -1; from < crf->n_tags; from++) {
            int ok = from >= 0 && (names[from][0] == 'B' || names[from][0] == 'I') && names[from][1] == '-' &&
                     strcmp(names[from] + 2, type) == 0;
            if (!ok && ur_crf_forbid(crf, from, to) == UR_OK) n++;
        }
    }
    return n;
}

/* ---- the forward algorithm ---- */

/* Checks emissions (T, B, K) and the mask; records the error on the tape. */
static int check_emissions(ur_tape *t, const ur_crf *crf, ur_node *e, const ur_real *mask, const char *fn) {
    if (ur_tape_error(t)) return 0;
    if (!crf || !crf->forbid_) {
        ur_tape_fail(t, UR_ERR_ARG, "%s: crf is not made (ur_crf_make)", fn);
        return 0;
    }
    if (!e) {
        ur_tape_fail(t, UR_ERR_ARG, "%s: emissions are NULL", fn);
        return 0;
    }
    if (ur_node_ndim(e) != 3 || ur_node_dim(e, 2) != crf->n_tags) {
        char buf[64];
        ur_tape_fail(t, UR_ERR_SHAPE, "%s: emissions must be (T, B, K=%d), got %s", fn, crf->n_tags,
                     ur_shape_str(ur_node_shape(e), buf, sizeof buf));
        return 0;
    }
    int B = ur_node_dim(e, 1);
    for (int b = 0; mask && b < B; b++)
        if (mask[b] != 1) {
            ur_tape_fail(t, UR_ERR_ARG, "%s: sequence %d has no first step (mask[0*B + %d] = %g, expected 1)", fn,
                         b, b, (double)mask[b]);
            return 0;
        }
    return 1;
}

/* logsumexp of x along axis, the axis removed: m + log(sum(exp(x - m))). */
static ur_node *logsumexp(ur_tape *t, ur_node *x, int axis) {
    ur_node *m = ur_detach(t, ur_max_axis(t, x, axis, 1));
    ur_node *s = ur_log(t, ur_sum_axis(t, ur_exp(t, ur_sub(t, x, m)), axis, 0));
    return ur_add(t, s, ur_sum_axis(t, m, axis, 0));
}

/* A parameter's node plus a constant penalty table (none when all are 0). */
static ur_node *with_penalty(ur_tape *t, ur_param *p, const ur_real *pen, size_t n) {
    ur_node *x = ur_param_node(t, p);
    for (size_t i = 0; i < n; i++)
        if (pen[i] != 0) return ur_add(t, x, ur_input_data(t, ur_node_ndim(x), ur_node_shape(x)->dims, pen));
    return x;
}

/* Emission scores of step ti: (B, K). */
static ur_node *step_scores(ur_tape *t, ur_node *e, int ti) {
    int dims[2] = {ur_node_dim(e, 1), ur_node_dim(e, 2)};
    return ur_reshape(t, ur_slice(t, e, 0, ti, 1), 2, dims);
}

/* (B, 1) mask column of step ti, or NULL when every sequence is real there. */
static ur_node *step_mask(ur_tape *t, const ur_real *mask, int ti, int B) {
    if (!mask) return NULL;
    int all = 1;
    for (int b = 0; b < B; b++) all &= mask[(size_t)ti * B + b] == 1;
    int dims[2] = {B, 1};
    return all ? NULL : ur_input_data(t, 2, dims, mask + (size_t)ti * B);
}

ur_node *ur_crf_log_partition(ur_tape *t, const ur_crf *crf, ur_node *e, const ur_real *mask) {
    if (!check_emissions(t, crf, e, mask, "crf_log_partition")) return NULL;
    int T = ur_node_dim(e, 0), B = ur_node_dim(e, 1), K = crf->n_tags;
    size_t kk = (size_t)K * K;
    ur_node *A = with_penalty(t, crf->transitions, crf->forbid_, kk);
    ur_node *start = with_penalty(t, crf->start, crf->forbid_ + kk, (size_t)K);
    ur_node *alpha = ur_add(t, step_scores(t, e, 0), start); /* (B, K) */
    int col[3] = {B, K, 1};
    for (int ti = 1; ti < T; ti++) {
        /* (B, K, 1) + (K, K) -> (B, K, K): [b][i][j] = alpha[b][i] + A[i][j] */
        ur_node *paths = ur_add(t, ur_reshape(t, alpha, 3, col), A);
        ur_node *next = ur_add(t, logsumexp(t, paths, 1), step_scores(t, e, ti));
        ur_node *m = step_mask(t, mask, ti, B);
        alpha = m ? ur_add(t, alpha, ur_mul(t, m, ur_sub(t, next, alpha))) : next;
    }
    return logsumexp(t, ur_add(t, alpha, ur_param_node(t, crf->end)), 1);
}

/* ---- the score of given paths ---- */

ur_node *ur_crf_score(ur_tape *t, const ur_crf *crf, ur_node *e, const int *tags, const ur_real *mask) {
    if (!check_emissions(t, crf, e, mask, "crf_score")) return NULL;
    int T = ur_node_dim(e, 0), B = ur_node_dim(e, 1), K = crf->n_tags;
    size_t kk = (size_t)K * K, n_e = (size_t)T * B * K;
    if (!tags) {
        ur_tape_fail(t, UR_ERR_ARG, "crf_score: tags are NULL");
        return NULL;
    }
    for (size_t i = 0; i < (size_t)T * B; i++)
        if ((!mask || mask[i] != 0) && (tags[i] < 0 || tags[i] >= K)) {
            ur_tape_fail(t, UR_ERR_ARG, "crf_score: tag at step %zu of sequence %zu is %d, expected 0..%d",
                         i / (size_t)B, i % (size_t)B, tags[i], K - 1);
            return NULL;
        }
    /* Counts of each emission, transition, first and last tag per sequence: the
     * path score is then sum(counts * scores), one product per part. */
    ur_real *c = ur_calloc(n_e + (size_t)B * kk + 2 * (size_t)B * K, sizeof *c);
    if (!c) {
        ur_tape_fail(t, UR_ERR_NOMEM, "crf_score: out of memory");
        return NULL;
    }
    ur_real *ce = c, *ct = ce + n_e, *cs = ct + (size_t)B * kk, *cf = cs + (size_t)B * K;
    for (int b = 0; b < B; b++) {
        int prev = -1;
        for (int ti = 0; ti < T; ti++) {
            size_t i = (size_t)ti * B + b;
            if (mask && mask[i] == 0) break;
            ce[i * K + tags[i]] = 1;
            if (prev < 0) cs[(size_t)b * K + tags[i]] = 1;
            else ct[(size_t)b * kk + (size_t)prev * K + tags[i]] += 1;
            prev = tags[i];
        }
        cf[(size_t)b * K + prev] = 1;
    }
    int d_e[3] = {T, B, K}, d_t[3] = {B, K, K}, d_s[2] = {B, K};
    ur_node *A = with_penalty(t, crf->transitions, crf->forbid_, kk);
    ur_node *start = with_penalty(t, crf->start, crf->forbid_ + kk, (size_t)K);
    ur_node *emit = ur_sum_axis(t, ur_sum_axis(t, ur_mul(t, e, ur_input_data(t, 3, d_e, ce)), 2, 0), 0, 0);
    ur_node *trans = ur_sum_axis(t, ur_sum_axis(t, ur_mul(t, ur_input_data(t, 3, d_t, ct), A), 2, 0), 1, 0);
    ur_node *first = ur_sum_axis(t, ur_mul(t, ur_input_data(t, 2, d_s, cs), start), 1, 0);
    ur_node *last = ur_sum_axis(t, ur_mul(t, ur_input_data(t, 2, d_s, cf), ur_param_node(t, crf->end)), 1, 0);
    ur_free(c);
    return ur_add(t, ur_add(t, emit, trans), ur_add(t, first, last));
}

ur_node *ur_crf_nll(ur_tape *t, const ur_crf *crf, ur_node *e, const int *tags, const ur_real *mask) {
    ur_node *z = ur_crf_log_partition(t, crf, e, mask);
    ur_node *s = ur_crf_score(t, crf, e, tags, mask);
    if (!z || !s) return NULL;
    return ur_scale(t, ur_sum(t, ur_sub(t, z, s)), (ur_real)1 / (ur_real)ur_node_dim(e, 1));
}

/* ---- Viterbi ---- */

ur_status ur_crf_viterbi(const ur_crf *crf, const ur_real *e, int T, int B, const ur_real *mask, int *out) {
    if (!crf || !crf->forbid_ || !e || !out || T < 1 || B < 1)
        return ur_set_error(UR_ERR_ARG, "ur_crf_viterbi: crf, emissions or output missing, or T=%d B=%d < 1", T, B);
    int K = crf->n_tags;
    size_t kk = (size_t)K * K;
    const ur_real *A = crf->transitions->value.data, *S = crf->start->value.data, *F = crf->end->value.data;
    double *score = ur_malloc(2 * (size_t)K * sizeof *score);
    int *back = ur_malloc((size_t)T * K * sizeof *back);
    if (!score || !back) {
        ur_free(score);
        ur_free(back);
        return ur_set_error(UR_ERR_NOMEM, "ur_crf_viterbi: out of memory for T=%d K=%d", T, K);
    }
    for (int b = 0; b < B; b++) {
        double *cur = score, *nxt = score + K;
        const ur_real *e0 = e + (size_t)b * K;
        for (int j = 0; j < K; j++) cur[j] = (double)S[j] + crf->forbid_[kk + j] + e0[j];
        int n = 1;
        while (n < T && (!mask || mask[(size_t)n * B + b] != 0)) {
            const ur_real *et = e + ((size_t)n * B + b) * K;
            for (int j = 0; j < K; j++) {
                int arg = 0;
                double best = -INFINITY;
                for (int i = 0; i < K; i++) {
                    double v = cur[i] + A[(size_t)i * K + j] + crf->forbid_[(size_t)i * K + j];
                    if (v > best) best = v, arg = i; /* the first maximum on ties */
                }
                nxt[j] = best + et[j];
                back[(size_t)n * K + j] = arg;
            }
            double *tmp = cur;
            cur = nxt;
            nxt = tmp;
            n++;
        }
        int arg = 0;
        for (int j = 1; j < K; j++)
            if (cur[j] + F[j] > cur[arg] + F[arg]) arg = j;
        for (int ti = T - 1; ti >= n; ti--) out[(size_t)ti * B + b] = -1;
        for (int ti = n - 1; ti >= 0; ti--) {
            out[(size_t)ti * B + b] = arg;
            if (ti > 0) arg = back[(size_t)ti * K + arg];
        }
    }
    ur_free(score);
    ur_free(back);
    return UR_OK;
}
