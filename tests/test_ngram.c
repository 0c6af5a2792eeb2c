/* The Kneser-Ney n-gram model: a case worked by hand, probabilities that sum to 1
 * for every context, scores on real text, and errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "support.h"
#include "unroll.h"

/* "a b a b a" (a=0, b=1) with a vocabulary of 3 and order 2. Bigram counts ab 2,
 * ba 2. Unigram continuation counts: a 2 (after b, and first in the text), b 1
 * (after a). D_1 = n1/(n1 + 2 n2) = 1/3; order 2 has no count of 1: D_2 = 0.5.
 *   P_1(a) = (2 - 1/3)/3 + (1/3)(2/3)(1/3) = 17/27, P_1(b) = 8/27, P_1(c) = 2/27
 *   P_2(b|a) = (2 - 1/2)/2 + (1/2)(1/2) P_1(b) = 3/4 + 2/27                        */
Test(ngram, a_case_worked_by_hand) {
    int ids[5] = {0, 1, 0, 1, 0};
    ur_ngram *m = ur_ngram_train(2, 3, ids, 5);
    cr_assert_not_null(m, "%s", ur_last_error());
    cr_assert_float_eq(ur_ngram_discount(m, 1), 1.0 / 3, 1e-15);
    cr_assert_float_eq(ur_ngram_discount(m, 2), 0.5, 1e-15);
    cr_assert_eq(ur_ngram_size(m, 2), 2);
    int a = 0;
    cr_assert_float_eq(ur_ngram_prob(m, &a, 1, 1), 0.75 + 2.0 / 27, 1e-15);
    cr_assert_float_eq(ur_ngram_prob(m, &a, 1, 0), 0.25 * 17.0 / 27, 1e-15);
    cr_assert_float_eq(ur_ngram_prob(m, &a, 1, 2), 0.25 * 2.0 / 27, 1e-15);
    cr_assert_float_eq(ur_ngram_prob(m, NULL, 0, 0), 17.0 / 27, 1e-15, "no context: order 1");
    int c = 2; /* an unseen context falls back to order 1 */
    cr_assert_float_eq(ur_ngram_prob(m, &c, 1, 1), 8.0 / 27, 1e-15);
    /* bits of "b a" after "a": -log2 P(b|a) - log2 P(a|b) */
    int b = 1;
    double want = -(log2(ur_ngram_prob(m, &a, 1, 1)) + log2(ur_ngram_prob(m, &b, 1, 0))) / 2;
    cr_assert_float_eq(ur_ngram_bits(m, ids, 1, 3), want, 1e-15);
    ur_ngram_free(m);
}

Test(ngram, every_context_gives_a_distribution) {
    enum { N = 20000, V = 7 };
    int *ids = malloc(N * sizeof *ids);
    ur_rng rng;
    ur_rng_seed(&rng, 3);
    for (int i = 0; i < N; i++) /* a skewed Markov chain, so that counts vary */
        ids[i] = i && ur_rng_uniform(&rng) < 0.6 ? (ids[i - 1] * 3 + 1) % V : (int)(ur_rng_next(&rng) % (V - 1));
    for (int order = 1; order <= 5; order++) {
        ur_ngram *m = ur_ngram_train(order, V, ids, N);
        cr_assert_not_null(m);
        for (int trial = 0; trial < 50; trial++) {
            int ctx[4];
            for (int i = 0; i < 4; i++) ctx[i] = (int)(ur_rng_next(&rng) % V);
            double sum = 0;
            for (int w = 0; w < V; w++) {
                double p = ur_ngram_prob(m, ctx, 4, w);
                cr_assert(p > 0, "order %d: every symbol keeps some probability", order);
                sum += p;
            }
            cr_assert_float_eq(sum, 1.0, 1e-12, "order %d trial %d", order, trial);
        }
        ur_ngram_free(m);
    }
    free(ids);
}

Test(ngram, higher_orders_score_real_text_better_up_to_a_point) {
    char buf[512];
    const char *path = ur_test_data_path("tinyshakespeare/input.txt", buf, sizeof buf);
    if (!path) cr_skip_test("tinyshakespeare/input.txt is absent: skipped");
    ur_text *text;
    ur_char_corpus *c;
    cr_assert_eq(ur_text_read_file(path, 0, &text), UR_OK);
    cr_assert_eq(ur_char_corpus_make(text, 0.9, &c), UR_OK);
    double bits[6];
    for (int k = 1; k <= 5; k++) {
        ur_ngram *m = ur_ngram_train(k, c->cs.size, c->ids, c->n_train);
        bits[k] = ur_ngram_bits(m, c->ids, c->n_train, c->n);
        ur_ngram_free(m);
        if (k > 1) cr_assert_lt(bits[k], bits[k - 1], "order %d", k);
    }
    cr_assert(fabs(bits[5] - 2.2779) < 5e-5, "order 5: %.4f bits/char (docs/results.md quotes 2.2779)", bits[5]);
    ur_char_corpus_free(c);
    ur_text_free(text);
}

Test(ngram, errors_say_what_was_expected_and_given) {
    int ids[3] = {0, 5, 1};
    cr_assert_null(ur_ngram_train(2, 3, ids, 3));
    cr_assert_str_eq(ur_last_error(), "ur_ngram_train: ids[1] = 5 is outside 0..2");
    cr_assert_null(ur_ngram_train(9, 3, ids, 1));
    cr_assert_str_eq(ur_last_error(), "ur_ngram_train: order must be in 1..8 and vocab in 1..254, got order 9, vocab 3");
    ur_ngram *m = ur_ngram_train(2, 3, ids, 1);
    cr_assert(isnan(ur_ngram_prob(m, ids, 1, 3)));
    cr_assert(isnan(ur_ngram_bits(m, ids, 1, 1)));
    ur_ngram_free(m);
}
