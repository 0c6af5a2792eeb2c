/* seq2seq_internal.h - what training and decoding share: the model, the encoder
 * and one decoder step. Not installed; users see ur_seq2seq.h. */
#ifndef UR_SEQ2SEQ_INTERNAL_H
#define UR_SEQ2SEQ_INTERNAL_H

#include "ur_seq2seq.h"

struct ur_seq2seq {
    ur_seq2seq_config cfg;
    int He;                     /* encoder output width: H or 2H */
    ur_param *src_emb, *tgt_emb; /* (Vs, E), (Vt, E) */
    ur_rnn *enc;
    ur_rnn_cell dec;
    ur_attention att;
    ur_param *Wb, *bb;          /* bridge (He, H), (H) */
    ur_param *Wc, *bc;          /* attentional output (H + He, H), (H); not in INPUT mode */
    ur_param *Wo, *bo;          /* output layer (H, Vt), (Vt); no Wo when tied */
    ur_param *Wp;               /* tied, H != E: the projection (H, E) before E_t^T */
    void *enc_scratch;          /* encoder ids and masks */
    size_t enc_scratch_bytes;
    void *scratch;              /* loss targets and step outputs */
    size_t scratch_bytes;
};

/* The decoder's recurrent state: the cell's (h, c) and the previous output o (FEED). */
typedef struct ur__s2s_state {
    ur_rnn_hc s;
    ur_node *o;
} ur__s2s_state;

/* An encoded batch: the attention memory and the decoder's initial state. */
typedef struct ur__s2s_encoded {
    int B, S;
    ur_attn_memory mem;
    ur__s2s_state init;
} ur__s2s_encoded;

/* Encodes B sources (time-major padding inside); 0 with the error on the tape.
 * Without attention there is no memory (e->mem stays zero). */
int ur__s2s_encode(ur_seq2seq *m, ur_tape *t, const int *const *src, const int *src_len, int B, int train,
                   uint64_t seed, ur__s2s_encoded *e);
/* One decoder step from the previous words' embeddings emb (B, E): updates *st and
 * returns o_t (B, H); *w (may be NULL) gets the attention weights (B, S), NULL
 * without attention. */
ur_node *ur__s2s_step(ur_seq2seq *m, ur_tape *t, const ur__s2s_encoded *e, ur_node *emb, ur__s2s_state *st,
                      ur_node **w);
/* Output layer: o (N, H) -> logits (N, Vt) (the loss applies dropout to o before). */
ur_node *ur__s2s_logits(ur_seq2seq *m, ur_tape *t, ur_node *o);
/* Grows one of the model's scratch buffers; NULL with a tape error. */
void *ur__s2s_grow(ur_tape *t, void **buf, size_t *cap, size_t bytes);

#endif
