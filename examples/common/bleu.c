/* bleu.c - corpus BLEU-4 with multiple references. */
#include "bleu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* How often the n-gram g occurs in s (len ids). */
static int ngram_count(const int *s, int len, const int *g, int n) {
    int c = 0;
    for (int i = 0; i + n <= len; i++) c += !memcmp(s + i, g, (size_t)n * sizeof(int));
    return c;
}

void bleu_add(bleu_stats *b, const int *hyp, int hlen, const int *const *refs, const int *ref_lens, int n_refs) {
    b->hyp_len += hlen;
    int best = -1;
    for (int r = 0; r < n_refs; r++) {
        int d = abs(ref_lens[r] - hlen), db = best < 0 ? 0 : abs(ref_lens[best] - hlen);
        if (best < 0 || d < db || (d == db && ref_lens[r] < ref_lens[best])) best = r;
    }
    b->ref_len += ref_lens[best];
    for (int n = 1; n <= 4; n++) {
        for (int i = 0; i + n <= hlen; i++) {
            if (ngram_count(hyp, i + n - 1, hyp + i, n)) continue; /* each distinct n-gram once */
            int in_hyp = ngram_count(hyp, hlen, hyp + i, n), in_ref = 0;
            for (int r = 0; r < n_refs; r++) {
                int c = ngram_count(refs[r], ref_lens[r], hyp + i, n);
                if (c > in_ref) in_ref = c;
            }
            b->match[n - 1] += in_hyp < in_ref ? in_hyp : in_ref;
        }
        b->total[n - 1] += hlen - n + 1 > 0 ? hlen - n + 1 : 0;
    }
}

double bleu_value(const bleu_stats *b) {
    double logp = 0;
    for (int n = 0; n < 4; n++) {
        if (b->match[n] == 0 || b->total[n] == 0) return 0;
        logp += log(b->match[n] / b->total[n]) / 4;
    }
    double bp = b->hyp_len < b->ref_len ? exp(1 - b->ref_len / (b->hyp_len > 0 ? b->hyp_len : 1)) : 1;
    return bp * exp(logp);
}
