/* ur_ngram.h - a count-based n-gram language model with interpolated Kneser-Ney
 * smoothing (Kneser & Ney 1995; the interpolated form of Chen & Goodman 1998): the
 * classic baseline a neural language model is measured against.
 *
 * Symbols are small integer ids (characters: 0 .. V-1, V <= 254). For order N the
 * model interpolates every order k = N, N-1, ..., 1 down to the uniform 1/V:
 *     P_k(w | h) = max(c_k(h w) - D_k, 0) / c_k(h .)
 *                + D_k * n_k(h .) / c_k(h .) * P_{k-1}(w | h')
 * where h' drops the oldest symbol of h, c_k(h .) = sum over w of c_k(h w), n_k(h .)
 * the number of distinct w with c_k(h w) > 0, and P_k = P_{k-1} when c_k(h .) = 0.
 * The highest order counts occurrences; every lower order counts continuations:
 * c_k(g) = the number of distinct symbols v seen before g (v g occurred). One
 * discount per order, D_k = n1 / (n1 + 2 n2), from the number of k-grams counted
 * once (n1) and twice (n2), or 0.5 when that is not in (0, 1) (no k-gram counted once).
 */
#ifndef UR_NGRAM_H
#define UR_NGRAM_H

#include <stddef.h>
#include "../tensor/ur_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { UR_NGRAM_MAX_ORDER = 8, UR_NGRAM_MAX_VOCAB = 254 };

typedef struct ur_ngram ur_ngram;

/* Counts every k-gram (k <= order) of ids[0..n) (each id in 0..vocab-1) and
 * computes the discounts. NULL on bad arguments or out of memory (ur_last_error). */
ur_ngram *ur_ngram_train(int order, int vocab, const int *ids, size_t n);
void ur_ngram_free(ur_ngram *m); /* NULL is a no-op */

int ur_ngram_order(const ur_ngram *m);
/* The discount D_k of order k (1..order); NaN when out of range. */
double ur_ngram_discount(const ur_ngram *m, int k);
/* Number of distinct k-grams counted for order k; 0 when out of range. */
size_t ur_ngram_size(const ur_ngram *m, int k);

/* P(next | the n_ctx symbols before it), ctx oldest first (only the last order-1
 * are used); NaN for bad ids. */
double ur_ngram_prob(const ur_ngram *m, const int *ctx, int n_ctx, int next);
/* Mean bits per symbol of ids[from..to), each symbol predicted from the symbols
 * before it in ids (the context may reach back before `from`). NaN on bad arguments.
 * The lower orders of a model hold continuation counts, made to be interpolated,
 * not used alone: to compare orders, train one model per order. */
double ur_ngram_bits(const ur_ngram *m, const int *ids, size_t from, size_t to);

#ifdef __cplusplus
}
#endif
#endif
