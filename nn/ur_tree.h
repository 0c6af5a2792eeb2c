/* ur_tree.h - recursive networks over trees: the same weights at every node.
 *
 * Three cells, each composed from public ops (no backward code of its own):
 *   UR_TREE_RNN       recursive neural network (Socher et al. 2011), binary trees:
 *                       leaf  h = x
 *                       node  h = tanh(W [h_l; h_r] + b)
 *   UR_TREE_LSTM      binary (N-ary, N = 2) Tree-LSTM (Tai et al. 2015):
 *                       node  [i, f_l, u, o, f_r] = U [h_l; h_r] + b
 *                             c = s(i) tanh(u) + s(f_l) c_l + s(f_r) c_r,  h = s(o) tanh(c)
 *   UR_TREE_CHILDSUM  Child-Sum Tree-LSTM (Tai et al. 2015), any number of children:
 *                       node  [i, o, u] = U_iou sum_k h_k + b_iou,  f_k = s(U_f h_k + b_f)
 *                             c = s(i) tanh(u) + sum_k f_k c_k,     h = s(o) tanh(c)
 *   (s = sigmoid). The two Tree-LSTMs read words at the leaves only (constituency
 *   trees): leaf [i, o, u] = W_x x + b_x, c = s(i) tanh(u), h = s(o) tanh(c).
 * x is the leaf word's embedding (a row of the table, looked up with ur_gather).
 * A softmax classifier y = softmax(W_y h + b_y) reads every node's state; the loss
 * counts every labelled node or the root only (ur_treenet_config.root_only).
 *
 * Two ways to build the same graph:
 *   ur_treenet_forward        one tree, node by node in post-order; each subtree's
 *                             ops sit in a tape group (clusters in ur_tape_dot).
 *   ur_treenet_forward_batch  dynamic batching: for a mini-batch of trees, every node
 *                             of the same height, across all trees, is computed by
 *                             one batched op per step of the cell (children gathered
 *                             from the lower levels with ur_gather). Same values.
 * Rows of the results: the trees in the order given, each tree's nodes in its own
 * (post-)order, so row r of tree k is node r - (node count of trees 0..k-1).
 *
 * Parameters are added to a caller's paramset under "<prefix>.emb" etc. and live as
 * long as it; the ur_treenet only refers to them (plus scratch buffers).
 */
#ifndef UR_TREE_H
#define UR_TREE_H

#include "../autograd/ur_ops.h"
#include "data/ur_data.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ur_tree_cell { UR_TREE_RNN = 0, UR_TREE_LSTM, UR_TREE_CHILDSUM } ur_tree_cell;

/* Deepest subtree nesting drawn as tape groups by ur_treenet_forward (the tape allows
 * 8 levels; 2 are left to the caller). Deeper subtrees stay in their ancestor's group. */
enum { UR_TREE_MAX_GROUP_DEPTH = 6 };

typedef struct ur_treenet_config {
    ur_tree_cell cell;
    int vocab;      /* V: rows of the embedding table */
    int emb_dim;    /* E: embedding width (UR_TREE_RNN: must equal hidden) */
    int hidden;     /* H: state width */
    int n_classes;  /* C: classes of the node classifier */
    int root_only;  /* 1: the loss counts the root of each tree only; 0: every node */
    double dropout; /* drop probability on the embeddings and before the classifier (training only) */
} ur_treenet_config;

typedef struct ur_treenet ur_treenet;

/* "rnn", "treelstm", "childsum" ("?" when out of range). */
const char *ur_tree_cell_name(ur_tree_cell cell);

/* Adds the parameters to ps under prefix (e.g. "tree") and initialises them from rng:
 * embeddings U(-0.1, 0.1), matrices Xavier-uniform, biases 0 (Tree-LSTM forget gates
 * 1). NULL on a bad config, a name clash or out of memory (ur_last_error). */
ur_treenet *ur_treenet_new(ur_paramset *ps, const char *prefix, const ur_treenet_config *cfg, ur_rng *rng);
void ur_treenet_free(ur_treenet *m); /* the parameters stay in their paramset; NULL is a no-op */
const ur_treenet_config *ur_treenet_config_of(const ur_treenet *m);

/* One tree, node by node: returns the logits (n_nodes, C); *states (if not NULL) gets
 * the hidden states (n_nodes, H). node_states (if not NULL, n_nodes entries) gets each
 * node's own state (1, H), the one its parent reads: after ur_backward its gradient is
 * the whole dL/dh of that node (from its classifier and from every ancestor).
 * train enables dropout, drawn from seed. Every leaf word id must be in [0, V) (run
 * ur_treebank_set_word_ids with a vocabulary that has UNK). NULL with the error on
 * the tape on failure. */
ur_node *ur_treenet_forward(ur_treenet *m, ur_tape *t, const ur_tree *tree, int train, uint64_t seed,
                            ur_node **states, ur_node **node_states);
/* n_trees trees by dynamic batching (one op per level and cell step): logits (N, C),
 * N = sum of the node counts; *states (N, H). Equal to ur_treenet_forward applied to
 * each tree and the results concatenated (with dropout: for n_trees == 1). */
ur_node *ur_treenet_forward_batch(ur_treenet *m, ur_tape *t, const ur_tree *const *trees, int n_trees,
                                  int train, uint64_t seed, ur_node **states);

/* Cross-entropy (mean over the counted nodes) of logits (N, C) from either forward
 * for the same trees. A node's class is label_map[label] when label_map is given
 * (n_map entries; a label outside them or mapped to -1 is not counted), else its
 * label. Counted nodes: all labelled nodes, or the roots only when cfg.root_only. */
ur_node *ur_treenet_loss(ur_treenet *m, ur_tape *t, ur_node *logits, const ur_tree *const *trees, int n_trees,
                         const int *label_map, int n_map);

#ifdef __cplusplus
}
#endif
#endif
