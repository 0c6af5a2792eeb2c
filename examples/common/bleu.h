/* bleu.h - corpus BLEU-4 over token-id sequences, with several references per
 * hypothesis. Not part of the library (examples only).
 *
 * For each hypothesis, bleu_add counts its clipped n-gram matches (each distinct
 * n-gram counts at most as often as in the reference that has it most) and its
 * n-gram totals, for n = 1..4, and the length of the reference closest to it (the
 * shorter one on a tie). bleu_value combines the whole corpus:
 *     BLEU = BP * exp(sum_n log(match_n / total_n) / 4),  BP = min(1, exp(1 - ref_len / hyp_len))
 * and is 0 when some n has no match. */
#ifndef UR_EXAMPLES_BLEU_H
#define UR_EXAMPLES_BLEU_H

typedef struct bleu_stats {
    double match[4], total[4], hyp_len, ref_len;
} bleu_stats;

/* Adds hypothesis hyp (hlen ids) scored against refs[0..n_refs) (lengths ref_lens). */
void bleu_add(bleu_stats *b, const int *hyp, int hlen, const int *const *refs, const int *ref_lens, int n_refs);
double bleu_value(const bleu_stats *b);

#endif
