/* Linear-chain CRF: log Z and Viterbi against brute-force enumeration of every tag
 * path on tiny cases, the path score against a plain sum, gradient checks with
 * padding and B-I-O constraints, and padding that gets exactly zero gradient. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "unroll.h"

enum { MAX_T = 4, MAX_B = 3, MAX_K = 3 };

typedef struct setup {
    int T, B, K;
    ur_paramset *ps;
    ur_crf crf;
    ur_param *em;                  /* emissions (T, B, K) as a parameter */
    ur_real mask[MAX_T * MAX_B];
    int tags[MAX_T * MAX_B];
    int use_mask;
} setup;

/* Random parameters; lengths T, T-1, ... (at least 1); random gold tags. */
static void setup_make(setup *s, int T, int B, int K, uint64_t seed) {
    memset(s, 0, sizeof *s);
    s->T = T, s->B = B, s->K = K;
    s->ps = ur_paramset_new();
    cr_assert_eq(ur_crf_make(&s->crf, s->ps, "crf", K), UR_OK, "%s", ur_last_error());
    int de[3] = {T, B, K};
    s->em = ur_paramset_add(s->ps, "em", 3, de);
    ur_rng rng;
    ur_rng_seed(&rng, seed);
    for (int i = 0; i < ur_paramset_count(s->ps); i++)
        ur_tensor_uniform(&ur_paramset_get(s->ps, i)->value, &rng, -1.5, 1.5);
    for (int b = 0; b < B; b++) {
        int len = T - b > 1 ? T - b : 1;
        for (int t = 0; t < T; t++) {
            s->mask[t * B + b] = t < len;
            s->tags[t * B + b] = t < len ? (int)(ur_rng_next(&rng) % (uint64_t)K) : -7;
        }
    }
    s->use_mask = 1;
}

static void setup_free(setup *s) {
    ur_crf_release(&s->crf);
    ur_paramset_free(s->ps);
}

static int seq_len(const setup *s, int b) {
    int n = 0;
    while (n < s->T && s->mask[n * s->B + b] != 0) n++;
    return n;
}

/* score of path y (length n) of sequence b with plain loops, penalties included */
static double path_score(const setup *s, int b, const int *y, int n) {
    const ur_real *A = s->crf.transitions->value.data, *S = s->crf.start->value.data;
    const ur_real *F = s->crf.end->value.data, *e = s->em->value.data;
    int K = s->K;
    double v = S[y[0]] + (ur_crf_allowed(&s->crf, -1, y[0]) ? 0 : UR_CRF_FORBIDDEN) + F[y[n - 1]];
    for (int t = 0; t < n; t++) {
        v += e[((size_t)t * s->B + b) * K + y[t]];
        if (t > 0) v += A[y[t - 1] * K + y[t]] + (ur_crf_allowed(&s->crf, y[t - 1], y[t]) ? 0 : UR_CRF_FORBIDDEN);
    }
    return v;
}

/* Every path of sequence b: log Z (log-sum-exp over all of them) and the best path. */
static double brute_force(const setup *s, int b, int *best) {
    int n = seq_len(s, b), y[MAX_T] = {0};
    long total = 1;
    for (int t = 0; t < n; t++) total *= s->K;
    double mx = -INFINITY, sum = 0, scores[81];
    for (long p = 0; p < total; p++) {
        long r = p;
        for (int t = 0; t < n; t++, r /= s->K) y[t] = (int)(r % s->K);
        scores[p] = path_score(s, b, y, n);
        if (scores[p] > mx) {
            mx = scores[p];
            memcpy(best, y, sizeof y);
        }
    }
    for (long p = 0; p < total; p++) sum += exp(scores[p] - mx);
    return mx + log(sum);
}

static void check_against_brute_force(setup *s) {
    ur_tape *t = ur_tape_new();
    ur_node *z = ur_crf_log_partition(t, &s->crf, ur_param_node(t, s->em), s->use_mask ? s->mask : NULL);
    cr_assert_not_null(z, "%s", ur_tape_errmsg(t));
    cr_assert_eq(ur_node_size(z), (size_t)s->B);
    int path[MAX_T * MAX_B];
    cr_assert_eq(ur_crf_viterbi(&s->crf, s->em->value.data, s->T, s->B, s->mask, path), UR_OK);
    for (int b = 0; b < s->B; b++) {
        int best[MAX_T];
        double ref = brute_force(s, b, best);
        cr_assert(fabs(ur_node_cdata(z)[b] - ref) < 1e-12 * fmax(1, fabs(ref)), "T=%d K=%d b=%d: log Z %.15g, brute force %.15g",
                  s->T, s->K, b, ur_node_cdata(z)[b], ref);
        int n = seq_len(s, b);
        for (int k = 0; k < s->T; k++)
            cr_assert_eq(path[k * s->B + b], k < n ? best[k] : -1, "T=%d K=%d b=%d step %d", s->T, s->K, b, k);
    }
    ur_tape_free(t);
}

Test(crf, log_partition_and_viterbi_equal_brute_force) {
    for (int T = 1; T <= MAX_T; T++)
        for (int K = 1; K <= MAX_K; K++) {
            setup s;
            setup_make(&s, T, MAX_B, K, (uint64_t)(100 * T + K));
            check_against_brute_force(&s);
            setup_free(&s);
        }
}

/* O, B-X, I-X: I-X may not start a sequence nor follow O. */
static const char *const BIO[3] = {"O", "B-X", "I-X"};

Test(crf, bio_constraints_equal_brute_force_and_decode_only_valid_paths) {
    for (int T = 1; T <= MAX_T; T++) {
        setup s;
        setup_make(&s, T, MAX_B, 3, (uint64_t)(7 + T));
        cr_assert_eq(ur_crf_forbid_bio(&s.crf, BIO), 2); /* start -> I-X, O -> I-X */
        cr_assert(!ur_crf_allowed(&s.crf, -1, 2) && !ur_crf_allowed(&s.crf, 0, 2));
        cr_assert(ur_crf_allowed(&s.crf, 1, 2) && ur_crf_allowed(&s.crf, 2, 2) && ur_crf_allowed(&s.crf, 2, 0));
        /* push the unconstrained model towards I-X everywhere */
        for (int i = 0; i < T * MAX_B; i++) s.em->value.data[i * 3 + 2] += 3;
        check_against_brute_force(&s);
        int path[MAX_T * MAX_B];
        ur_crf_viterbi(&s.crf, s.em->value.data, T, MAX_B, s.mask, path);
        for (int b = 0; b < MAX_B; b++)
            for (int k = 0; k < seq_len(&s, b); k++)
                cr_assert(ur_crf_allowed(&s.crf, k ? path[(k - 1) * MAX_B + b] : -1, path[k * MAX_B + b]));
        setup_free(&s);
    }
}

Test(crf, score_is_the_plain_sum_and_nll_is_the_mean_gap) {
    setup s;
    setup_make(&s, 4, 3, 3, 5);
    ur_tape *t = ur_tape_new();
    ur_node *e = ur_param_node(t, s.em);
    ur_node *sc = ur_crf_score(t, &s.crf, e, s.tags, s.mask);
    ur_node *z = ur_crf_log_partition(t, &s.crf, e, s.mask);
    ur_node *nll = ur_crf_nll(t, &s.crf, e, s.tags, s.mask);
    cr_assert(sc && z && nll, "%s", ur_tape_errmsg(t));
    double mean = 0;
    for (int b = 0; b < 3; b++) {
        int y[MAX_T];
        for (int k = 0; k < seq_len(&s, b); k++) y[k] = s.tags[k * 3 + b];
        double ref = path_score(&s, b, y, seq_len(&s, b));
        cr_assert(fabs(ur_node_cdata(sc)[b] - ref) < 1e-12, "b=%d: %.15g vs %.15g", b, ur_node_cdata(sc)[b], ref);
        mean += (ur_node_cdata(z)[b] - ref) / 3;
        cr_assert(ur_node_cdata(z)[b] >= ref, "log Z bounds every path's score");
    }
    cr_assert(fabs(ur_node_item(nll) - mean) < 1e-12);
    ur_tape_free(t);
    setup_free(&s);
}

static ur_node *nll_loss(ur_tape *t, void *ctx) {
    setup *s = ctx;
    return ur_crf_nll(t, &s->crf, ur_param_node(t, s->em), s->tags, s->use_mask ? s->mask : NULL);
}

static void gradcheck(setup *s) {
    ur_param *p[4] = {s->em, s->crf.transitions, s->crf.start, s->crf.end};
    ur_tape *t = ur_tape_new();
    ur_gradcheck_result r;
    cr_assert_eq(ur_gradcheck(t, nll_loss, s, p, 4, 1e-6, &r), UR_OK, "%s", ur_last_error());
    cr_assert(r.max_rel_err < 1e-8, "max relative error %g at %s", r.max_rel_err, r.worst);
    cr_assert(r.n_checked > 0);
    ur_tape_free(t);
}

Test(crf, gradient_check_with_padding) {
    setup s;
    setup_make(&s, 4, 3, 3, 21);
    gradcheck(&s);
    setup_free(&s);
}

Test(crf, gradient_check_with_bio_constraints) {
    setup s;
    setup_make(&s, 4, 3, 3, 22);
    ur_crf_forbid_bio(&s.crf, BIO);
    /* gold paths must be valid: turn every I-X without B-X/I-X before it into B-X */
    for (int b = 0; b < 3; b++)
        for (int k = 0; k < seq_len(&s, b); k++)
            if (s.tags[k * 3 + b] == 2 && (k == 0 || s.tags[(k - 1) * 3 + b] == 0)) s.tags[k * 3 + b] = 1;
    gradcheck(&s);
    setup_free(&s);
}

Test(crf, padding_gets_zero_gradient_and_garbage_changes_nothing) {
    setup s;
    setup_make(&s, 4, 3, 3, 9);
    double loss[2];
    for (int round = 0; round < 2; round++) {
        if (round) /* garbage in every padded emission */
            for (int i = 0; i < 4 * 3; i++)
                if (s.mask[i] == 0)
                    for (int k = 0; k < 3; k++) s.em->value.data[i * 3 + k] = 1e3 * (k + 1);
        ur_paramset_zero_grad(s.ps);
        ur_tape *t = ur_tape_new();
        ur_node *l = nll_loss(t, &s);
        cr_assert_eq(ur_backward(t, l), UR_OK, "%s", ur_tape_errmsg(t));
        loss[round] = ur_node_item(l);
        for (int i = 0; i < 4 * 3; i++)
            for (int k = 0; k < 3 && s.mask[i] == 0; k++) cr_assert_eq(s.em->grad.data[i * 3 + k], 0);
        ur_tape_free(t);
    }
    cr_assert_eq(loss[0], loss[1]);
    setup_free(&s);
}

Test(crf, errors_name_what_was_expected_and_given) {
    setup s;
    setup_make(&s, 2, 2, 3, 1);
    ur_tape *t = ur_tape_new();
    int d[3] = {2, 2, 4};
    cr_assert_null(ur_crf_nll(t, &s.crf, ur_zeros(t, 3, d), s.tags, s.mask));
    cr_assert(strstr(ur_tape_errmsg(t), "emissions must be (T, B, K=3), got (2, 2, 4)"), "%s", ur_tape_errmsg(t));
    ur_tape_reset(t);
    ur_real bad_mask[4] = {1, 0, 1, 0};
    cr_assert_null(ur_crf_log_partition(t, &s.crf, ur_param_node(t, s.em), bad_mask));
    cr_assert(strstr(ur_tape_errmsg(t), "sequence 1 has no first step"), "%s", ur_tape_errmsg(t));
    ur_tape_reset(t);
    int bad_tags[4] = {0, 5, 1, 1};
    cr_assert_null(ur_crf_score(t, &s.crf, ur_param_node(t, s.em), bad_tags, NULL));
    cr_assert(strstr(ur_tape_errmsg(t), "is 5, expected 0..2"), "%s", ur_tape_errmsg(t));
    cr_assert_neq(ur_crf_forbid(&s.crf, 3, 0), UR_OK);
    cr_assert(strstr(ur_last_error(), "outside"), "%s", ur_last_error());
    ur_tape_free(t);
    setup_free(&s);
}
