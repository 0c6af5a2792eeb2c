/* ur_attention.h - attention over a batch of encoder states, composed from public ops.
 *
 * A query s (B, Hq) (a decoder state) attends over the encoder states h (B, S, Hk) of
 * B padded source sequences of S positions:
 *   score_j = h_j . s                          UR_ATTN_DOT       (Hq == Hk; Luong et al. 2015)
 *   score_j = h_j^T W s                        UR_ATTN_GENERAL   (bilinear; W (Hq, Hk))
 *   score_j = v^T tanh(W1 h_j + b + W2 s)      UR_ATTN_ADDITIVE  (Bahdanau et al. 2015)
 *   a = masked softmax(score)                  weights (B, S)
 *   context = sum_j a_j h_j                    (B, Hk)
 * The batch runs as 3-d matmuls: scores = h (B,S,Hk) x s (B,Hk,1), context =
 * a (B,1,S) x h (B,S,Hk).
 *
 * Masking: mask[b*S + j] is 1 for a real source position and 0 for padding (batch-
 * major; any nonzero value counts as 1). The weights are ur_masked_softmax of the
 * scores, so padding receives exactly zero weight, and nothing that feeds a padded
 * position receives any gradient through the attention. A row with no real position
 * gets all-zero weights and a zero context.
 *
 * The encoder side (the additive keys W1 h + b, the mask) is prepared once per batch
 * (ur_attention_memory) and reused at every decoder step (ur_attention_step).
 *
 * Layouts: ur_rnn_forward's outputs are time-major, (S, B, H) with mask[t*B + b];
 * ur_attention_memory_time_major takes them as they are (it swaps the first two
 * axes with ur_swap01 and transposes the mask). A query of shape (1, Hq), e.g. one
 * learned parameter, is broadcast over the batch; its gradient is the sum over B.
 */
#ifndef UR_ATTENTION_H
#define UR_ATTENTION_H

#include "../autograd/ur_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ur_attn_score { UR_ATTN_DOT = 0, UR_ATTN_GENERAL, UR_ATTN_ADDITIVE } ur_attn_score;

/* "dot", "general", "additive" ("?" when out of range). */
const char *ur_attn_score_name(ur_attn_score s);

/* The parameters of one attention (fields public, like ur_rnn_cell). */
typedef struct ur_attention {
    ur_attn_score score;
    int query_size, key_size, attn_size; /* Hq, Hk, A (A: additive only) */
    ur_param *W;  /* general: (Hq, Hk); additive: W2 (Hq, A); dot: NULL */
    ur_param *W1; /* additive: (Hk, A) */
    ur_param *b;  /* additive: (A) */
    ur_param *v;  /* additive: (A, 1) */
} ur_attention;

/* Adds the parameters to ps under prefix ("PREFIX.W", "PREFIX.W1", "PREFIX.b",
 * "PREFIX.v") and initialises them (Xavier-uniform, bias 0). attn_size is ignored
 * unless additive; dot needs query_size == key_size. */
ur_status ur_attention_make(ur_attention *a, ur_paramset *ps, const char *prefix, ur_attn_score score,
                            int query_size, int key_size, int attn_size, ur_rng *rng);

/* The encoder side of one batch, built once and read at every step. */
typedef struct ur_attn_memory {
    int B, S;
    ur_node *values; /* (B, S, Hk): the encoder states */
    ur_node *keys;   /* additive: (B, S, A) = values W1 + b; otherwise values */
    ur_node *bias;   /* (B, S): 0 at real positions, -1e9 at padding (for scores a caller
                      * masks by hand; the weights use mask); NULL without a mask */
    ur_node *mask;   /* (B, S): 1 / 0, the mask of ur_masked_softmax; NULL without a mask */
} ur_attn_memory;

/* Prepares enc (B, S, Hk) and mask (B*S values, batch-major, or NULL: no padding).
 * Returns UR_OK, or the tape's error (also recorded there). */
ur_status ur_attention_memory(ur_tape *t, const ur_attention *a, ur_node *enc, const ur_real *mask,
                              ur_attn_memory *mem);
/* The same from time-major encoder states enc (S, B, Hk) and mask (S*B values,
 * mask[t*B + b], the layout of ur_rnn_args.mask, or NULL). */
ur_status ur_attention_memory_time_major(ur_tape *t, const ur_attention *a, ur_node *enc, const ur_real *mask,
                                         ur_attn_memory *mem);
/* One query (B, Hq), or (1, Hq) for all B sequences, -> context (B, Hk); *weights (B, S) if weights is not NULL.
 * NULL with the error on the tape on failure. */
ur_node *ur_attention_step(ur_tape *t, const ur_attention *a, const ur_attn_memory *mem, ur_node *query,
                           ur_node **weights);
/* Scores only: (B, S) before masking and softmax. */
ur_node *ur_attention_scores(ur_tape *t, const ur_attention *a, const ur_attn_memory *mem, ur_node *query);
/* ur_attention_memory + ur_attention_step in one call. */
ur_node *ur_attention_apply(ur_tape *t, const ur_attention *a, ur_node *query, ur_node *enc, const ur_real *mask,
                            ur_node **weights);

#ifdef __cplusplus
}
#endif
#endif
