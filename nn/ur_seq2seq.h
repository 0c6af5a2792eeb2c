/* ur_seq2seq.h - an encoder-decoder with attention, composed from public ops.
 *
 * Encoder: word embeddings (Vs, E) -> a (bi)GRU/LSTM (or other built-in cell) stack
 * (ur_rnn.h) over the padded source batch -> states h_j (B, S, He), He = H or 2H.
 * Bridge: the decoder starts from s_0 = tanh(W_b [final states of the top encoder
 * layer, both directions] + b_b) (B, H); an LSTM decoder's cell starts at zero.
 * Decoder: one GRU/LSTM cell of H units, step t reads the previous target word
 * y_{t-1} (BOS at t = 0). Attention (ur_attention.h, query s, keys h_j) joins in as
 * chosen by ur_s2s_attn_mode:
 *   UR_S2S_ATTN_OUTPUT  (Luong et al. 2015)    s_t = cell([e(y_{t-1})], s_{t-1})
 *                                              c_t = attend(s_t),  o_t = tanh(W_c [s_t; c_t] + b_c)
 *   UR_S2S_ATTN_FEED    (Luong, input feeding) s_t = cell([e(y_{t-1}); o_{t-1}], s_{t-1})  (o_{-1} = 0)
 *                                              c_t = attend(s_t),  o_t = tanh(W_c [s_t; c_t] + b_c)
 *   UR_S2S_ATTN_INPUT   (Bahdanau et al. 2015) c_t = attend(s_{t-1})
 *                                              s_t = cell([e(y_{t-1}); c_t], s_{t-1}),  o_t = s_t
 *   UR_S2S_ATTN_NONE    (Sutskever et al. 2014, Cho et al. 2014: no attention)
 *                                              s_t = cell([e(y_{t-1})], s_{t-1}),  o_t = s_t
 * Without attention everything the decoder knows of the source passes through s_0,
 * the bridge of the final states (a bidirectional encoder's two directions are
 * joined, [forward; backward], before the bridge): the fixed-vector bottleneck.
 * and p(y_t | y_<t, x) = softmax(W_o o_t + b_o) over the Vt target words. With
 * tie_output (Press & Wolf 2017) the output layer reuses the target embedding:
 * W_o = E_t^T (Vt, E) when H == E, else W_o = P E_t^T with a projection P (H, E).
 *
 * Training is teacher-forced: the decoder reads the true previous word; the loss is
 * the mean negative log-likelihood per target token (EOS included), masked over
 * padding, with one output matmul over all steps. Scheduled sampling (Bengio et al.
 * 2015, ur_seq2seq_loss_sampled) replaces the true previous word by the model's own
 * greedy prediction with probability 1 - p, drawn per word; no gradient flows
 * through that choice. Decoding (greedy, sampling, beam
 * search) runs with the tape's gradients disabled and resets the tape it is given.
 *
 * Sequences are plain arrays of word ids without BOS/EOS (the model adds them).
 * Log-probabilities of a decoded sequence are sums of log p over its tokens, EOS
 * included when it was produced.
 */
#ifndef UR_SEQ2SEQ_H
#define UR_SEQ2SEQ_H

#include "ur_attention.h"
#include "ur_rnn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ur_s2s_attn_mode {
    UR_S2S_ATTN_OUTPUT = 0, /* context joins the output (Luong) */
    UR_S2S_ATTN_FEED,       /* and the previous output joins the input (Luong input feeding) */
    UR_S2S_ATTN_INPUT,      /* context of the previous state joins the input (Bahdanau) */
    UR_S2S_ATTN_NONE        /* no attention: the fixed-vector bottleneck (Sutskever, Cho) */
} ur_s2s_attn_mode;

/* "output", "feed", "input", "none" ("?" when out of range). */
const char *ur_s2s_attn_mode_name(ur_s2s_attn_mode m);

typedef struct ur_seq2seq_config {
    ur_rnn_kind cell;          /* a built-in cell for encoder and decoder: gru, gru_reset_before, lstm, ... */
    int src_vocab, tgt_vocab;  /* Vs, Vt */
    int emb_dim;               /* E, both sides */
    int hidden;                /* H: decoder state, and encoder state per direction */
    int enc_layers;            /* 1 .. UR_RNN_MAX_LAYERS */
    int bidirectional;         /* 1: the encoder reads both ways (He = 2H) */
    ur_attn_score score;       /* dot needs He == H (unidirectional encoder) */
    int attn_size;             /* A of additive scores */
    ur_s2s_attn_mode attn_mode;
    double dropout;            /* on embeddings and on o_t before the output layer (training) */
    int tie_output;            /* 1: the output layer is the target embedding transposed */
    int bos_id, eos_id;        /* target ids of the start and end symbols */
    uint64_t seed;             /* of the initial values */
    /* The recurrent-network settings of ur_rnn_config, for the encoder and the decoder cell: */
    ur_rnn_init init;          /* their weights and biases (the rest of the model is initialised as always) */
    double forget_bias;        /* if != 0 and the cell has a forget gate (LSTM): that slice of the first
                                  bias at the start, 0 in the other biases */
    int variational;           /* 1: each dropout (source and target embeddings, o_t, between encoder
                                  layers) draws one mask per sequence, shared by all its steps */
} ur_seq2seq_config;

/* A small GRU model with additive attention and input feeding; set the vocabulary
 * sizes and special ids. */
ur_seq2seq_config ur_seq2seq_defaults(int src_vocab, int tgt_vocab, int bos_id, int eos_id);

typedef struct ur_seq2seq ur_seq2seq;

/* Adds the parameters to ps under prefix ("s2s.src_emb", "s2s.enc.weight_ih_l0",
 * "s2s.att.W", ...) and initialises them. NULL on a bad config or a name clash
 * (ur_last_error). */
ur_seq2seq *ur_seq2seq_new(ur_paramset *ps, const char *prefix, const ur_seq2seq_config *cfg);
void ur_seq2seq_free(ur_seq2seq *m); /* the parameters stay in their paramset; NULL is a no-op */
const ur_seq2seq_config *ur_seq2seq_config_of(const ur_seq2seq *m);

/* Teacher-forced loss of B pairs: mean NLL per target token (B sources src[b] of
 * src_len[b] >= 1 ids, targets tgt[b] of tgt_len[b] >= 0 ids; EOS is appended).
 * *n_tokens (if not NULL) gets the number of target tokens counted. train enables
 * dropout drawn from seed. NULL with the error on the tape on failure. */
ur_node *ur_seq2seq_loss(ur_seq2seq *m, ur_tape *t, const int *const *src, const int *src_len,
                         const int *const *tgt, const int *tgt_len, int B, int train, uint64_t seed,
                         int *n_tokens);

/* Scheduled sampling: like ur_seq2seq_loss, but at each decoder step t >= 1 each
 * pair reads its true previous word with probability teacher_prob (in [0, 1]) and
 * otherwise the argmax of the model's own logits of step t - 1 (computed without
 * dropout and without gradient). The draws come from seed. teacher_prob 1 is
 * ur_seq2seq_loss exactly, bit for bit. */
ur_node *ur_seq2seq_loss_sampled(ur_seq2seq *m, ur_tape *t, const int *const *src, const int *src_len,
                                 const int *const *tgt, const int *tgt_len, int B, int train, uint64_t seed,
                                 double teacher_prob, int *n_tokens);

/* Greedy decoding of B sources, at most max_len tokens each: out[b*max_len + i] the
 * tokens (EOS not stored), out_len[b] their number, logp[b] (may be NULL) the model's
 * log-probability of them (and of EOS if it came). attn (may be NULL) receives the
 * attention weights, attn[(b*max_len + i)*S + j] for output step i and source word j,
 * S = the longest src_len (zero past the end; all zero without attention). */
ur_status ur_seq2seq_greedy(ur_seq2seq *m, ur_tape *t, const int *const *src, const int *src_len, int B,
                            int max_len, int *out, int *out_len, double *logp, ur_real *attn);
/* Like greedy, but each token is drawn from softmax(logits / temperature)
 * (temperature > 0; near 0 approaches greedy). logp is under the model (temperature 1). */
ur_status ur_seq2seq_sample(ur_seq2seq *m, ur_tape *t, const int *const *src, const int *src_len, int B,
                            int max_len, double temperature, ur_rng *rng, int *out, int *out_len, double *logp);

typedef struct ur_beam_config {
    int width;          /* k >= 1 hypotheses kept per step */
    double len_alpha;   /* finished hypotheses compete by logp / len^alpha (len counts EOS); 0: raw logp */
    int keep_greedy;    /* 1: the greedy decoding competes too, so with alpha 0 the result never
                           has a lower log-probability than greedy's */
} ur_beam_config;

/* Beam search for one source: the best finished hypothesis (EOS reached, or max_len
 * tokens) by the normalised score. out gets up to max_len tokens, *out_len their
 * number, *logp (may be NULL) the model's log-probability. */
ur_status ur_seq2seq_beam(ur_seq2seq *m, ur_tape *t, const int *src, int src_len, int max_len,
                          const ur_beam_config *bc, int *out, int *out_len, double *logp);

/* log p(tgt, EOS | src) under the model. */
ur_status ur_seq2seq_score(ur_seq2seq *m, ur_tape *t, const int *src, int src_len, const int *tgt, int tgt_len,
                           double *logp);
/* Perplexity exp(total NLL / total tokens) of n pairs, in batches of `batch`;
 * *n_tokens (may be NULL) gets the token count (EOS included). */
ur_status ur_seq2seq_perplexity(ur_seq2seq *m, ur_tape *t, const int *const *src, const int *src_len,
                                const int *const *tgt, const int *tgt_len, int n, int batch, double *ppl,
                                long *n_tokens);

#ifdef __cplusplus
}
#endif
#endif
