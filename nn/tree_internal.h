/* tree_internal.h - what the two tree forwards share: the model, its cells and
 * scratch memory. Not installed; users see ur_tree.h. */
#ifndef UR_TREE_INTERNAL_H
#define UR_TREE_INTERNAL_H

#include "ur_tree.h"

struct ur_treenet {
    ur_treenet_config cfg;
    ur_param *emb;     /* (V, E) word embeddings */
    ur_param *W, *b;   /* rnn (2H, H), (H); treelstm (2H, 5H), (5H); childsum U_iou (H, 3H), (3H) */
    ur_param *Wf, *bf; /* childsum forget gate (H, H), (H) */
    ur_param *Wx, *bx; /* Tree-LSTM leaves (E, 3H), (3H) */
    ur_param *Wy, *by; /* classifier (H, C), (C) */
    void *scratch;     /* grown on demand, reused between calls */
    size_t scratch_bytes;
};

/* The state of a set of nodes: h (n, H), and c (n, H) for the LSTMs (NULL for rnn). */
typedef struct ur__tree_state {
    ur_node *h, *c;
} ur__tree_state;

/* Leaf cell: word embeddings x (n, E) -> states (n, H). */
ur__tree_state ur__tree_leaf(ur_treenet *m, ur_tape *t, ur_node *x);
/* Binary cells (rnn, treelstm): hlr (n, 2H) = [h_l, h_r] per row, c_l and c_r (n, H)
 * (ignored by rnn). */
ur__tree_state ur__tree_binary(ur_treenet *m, ur_tape *t, ur_node *hlr, ur_node *c_l, ur_node *c_r);
/* Child-Sum cell for n nodes of k children each: hk, ck (n*k, H), node j's children in
 * rows j*k .. j*k+k-1 (missing children are zero rows, which add nothing). */
ur__tree_state ur__tree_childsum(ur_treenet *m, ur_tape *t, ur_node *hk, ur_node *ck, int n, int k);

/* Embeddings of n word ids (n, E), with dropout when training. */
ur_node *ur__tree_embed(ur_treenet *m, ur_tape *t, const int *ids, int n, int train, uint64_t seed);
/* Classifier: states (N, H) -> logits (N, C), with dropout on the states when training. */
ur_node *ur__tree_classify(ur_treenet *m, ur_tape *t, ur_node *h, int train, uint64_t seed);

/* Checks that the trees fit the model (word ids in range, two children per internal
 * node for the binary cells); records the error on the tape and returns 0 if not. */
int ur__tree_check(ur_treenet *m, ur_tape *t, const char *fn, const ur_tree *const *trees, int n_trees);
/* Scratch memory of at least `bytes` (aligned for pointers and reals), valid until the
 * next call; NULL with a tape error when out of memory. */
void *ur__tree_scratch(ur_treenet *m, ur_tape *t, size_t bytes);

#endif
