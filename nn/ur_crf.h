/* ur_crf.h - a linear-chain conditional random field for sequence labelling,
 * composed from public ops (no backward code of its own).
 *
 * K tags, sequences of T steps in a batch of B, time-major like ur_rnn: the
 * emission scores e (T, B, K) come from any network (e.g. a BiLSTM and a linear
 * layer); the CRF adds a transition score A[i][j] for tag i followed by tag j, a
 * start score s[j] and an end score f[j]. The score of a tag path y_0 .. y_{n-1}
 * of a sequence of length n is
 *     score(y) = s[y_0] + sum_t e_t[y_t] + sum_{t>0} A[y_{t-1}][y_t] + f[y_{n-1}]
 * and p(y | x) = exp(score(y)) / Z with Z the sum over all K^n paths. The forward
 * algorithm computes log Z in O(n K^2):
 *     alpha_0[j] = s[j] + e_0[j]
 *     alpha_t[j] = logsumexp_i(alpha_{t-1}[i] + A[i][j]) + e_t[j]
 *     log Z      = logsumexp_j(alpha_{n-1}[j] + f[j])
 * each logsumexp written as m + log(sum(exp(x - m))) with m = the detached maximum
 * (no gradient is lost: the shift cancels). Viterbi decoding replaces logsumexp by
 * max and follows back-pointers.
 *
 * Constraints: a transition (or a start) can be forbidden, e.g. O -> I-PER in a
 * B-I-O scheme. Forbidden moves get UR_CRF_FORBIDDEN added to their score in the
 * loss and in decoding, so no path with one gets any probability mass in float or
 * double (exp(-1e4) is 0) and Viterbi never picks one when any allowed path exists.
 *
 * Masks: mask[t*B + b] is 1 for a real step, 0 for padding at the end; the mask of
 * step 0 must be 1 (every sequence has at least one token). Padded steps carry
 * alpha unchanged and receive exactly zero gradient.
 */
#ifndef UR_CRF_H
#define UR_CRF_H

#include "../autograd/ur_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

#define UR_CRF_FORBIDDEN ((ur_real)-10000)

typedef struct ur_crf {
    int n_tags;             /* K */
    ur_param *transitions;  /* (K, K): [from][to] */
    ur_param *start;        /* (K) */
    ur_param *end;          /* (K) */
    ur_real *forbid_;       /* K*K + K penalties (0 or UR_CRF_FORBIDDEN): transitions, then starts */
} ur_crf;

/* Adds PREFIX.transitions (K,K), PREFIX.start (K), PREFIX.end (K) to ps, all zero
 * (prefix NULL or "" gives "crf"), with no constraints. */
ur_status ur_crf_make(ur_crf *crf, ur_paramset *ps, const char *prefix, int n_tags);
void ur_crf_release(ur_crf *crf); /* frees the constraint table; the parameters stay in ps */

/* Forbids from -> to (from = -1: forbids starting with `to`). */
ur_status ur_crf_forbid(ur_crf *crf, int from, int to);
/* B-I-O constraints from tag names ("O", "B-PER", "I-PER", ...): I-X may only follow
 * B-X or I-X, and no sequence starts with I-X. Returns the number of moves forbidden. */
int ur_crf_forbid_bio(ur_crf *crf, const char *const *tag_names);
/* 1 when the move is allowed (from = -1: as the first tag). */
int ur_crf_allowed(const ur_crf *crf, int from, int to);

/* log Z of each sequence: emissions (T, B, K) -> (B). mask NULL: all lengths T. */
ur_node *ur_crf_log_partition(ur_tape *t, const ur_crf *crf, ur_node *emissions, const ur_real *mask);
/* score(y) of the given paths, tags[t*B + b] (ignored where masked): -> (B). */
ur_node *ur_crf_score(ur_tape *t, const ur_crf *crf, ur_node *emissions, const int *tags, const ur_real *mask);
/* The loss: mean over the B sequences of log Z - score(y), a scalar >= 0. */
ur_node *ur_crf_nll(ur_tape *t, const ur_crf *crf, ur_node *emissions, const int *tags, const ur_real *mask);

/* Best path of each sequence under the current parameters: emissions (T*B*K
 * values, time-major like the node's data), tags_out[t*B + b] (-1 at padding).
 * Returns UR_ERR_NOMEM or UR_ERR_ARG (message in ur_last_error). */
ur_status ur_crf_viterbi(const ur_crf *crf, const ur_real *emissions, int T, int B, const ur_real *mask,
                         int *tags_out);

#ifdef __cplusplus
}
#endif
#endif
