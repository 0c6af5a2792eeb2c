/* fuzz_tree.c - the bracketed-tree reader.
 *
 * The first byte picks the options (bit 0: UR_TREE_BINARY; bits 1-3: the label
 * limit), the rest is the text. An accepted treebank must be consistent: nodes in
 * post-order with the root last, parent and child links that agree, leaves that
 * hold the words left to right, heights, labels within the limit, and word ids
 * from a vocabulary of its own words.
 */
#include "fuzz_common.h"

#include <limits.h>

#include "ur_data.h"

static const char *const LABEL = "fuzz-trees";

static void check_tree(const ur_tree *t, int max_label, int flags) {
    FUZZ_CHECK(t->n_nodes >= 1 && t->n_words >= 1);
    int root = ur_tree_root(t), leaves = 0, widest = 0;
    FUZZ_CHECK(root == t->n_nodes - 1 && t->nodes[root].parent == -1);
    FUZZ_CHECK(t->label == t->nodes[root].label);
    for (int i = 0; i < t->n_nodes; i++) {
        const ur_tree_node *n = &t->nodes[i];
        FUZZ_CHECK(n->label >= 0 && (max_label < 0 || n->label <= max_label));
        FUZZ_CHECK(i == root || (n->parent > i && n->parent < t->n_nodes));
        if (n->n_children == 0) {
            FUZZ_CHECK(n->word == leaves && n->height == 0); /* words left to right */
            leaves++;
            continue;
        }
        FUZZ_CHECK(n->word == -1 && n->first_child >= 0);
        FUZZ_CHECK(!(flags & UR_TREE_BINARY) || n->n_children == 2);
        int height = 0;
        for (int k = 0; k < n->n_children; k++) {
            int c = t->children[n->first_child + k];
            FUZZ_CHECK(c >= 0 && c < i && t->nodes[c].parent == i);
            if (t->nodes[c].height + 1 > height) height = t->nodes[c].height + 1;
        }
        FUZZ_CHECK(n->height == height);
        if (n->n_children > widest) widest = n->n_children;
    }
    FUZZ_CHECK(leaves == t->n_words && widest == t->max_children);
    for (int w = 0; w < t->n_words; w++) FUZZ_CHECK(t->words[w] != NULL && t->word_ids[w] == -1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const int limits[8] = {-1, 0, 1, 2, 4, 9, 255, INT_MAX};
    int flags = data[0] & 1, max_label = limits[(data[0] >> 1) & 7];
    ur_treebank *tb = NULL;
    ur_status st = ur_treebank_parse((const char *)data + 1, size - 1, LABEL, max_label, flags, &tb);
    if (st != UR_OK) {
        FUZZ_CHECK(tb == NULL && (st == UR_ERR_FORMAT || st == UR_ERR_NOMEM));
        if (st == UR_ERR_FORMAT) fuzz_check_error_names(LABEL);
        return 0;
    }
    ur_vocab *v = ur_vocab_new(UR_VOCAB_UNK);
    FUZZ_CHECK(v != NULL);
    for (int k = 0; k < tb->n_trees; k++) {
        const ur_tree *t = &tb->trees[k];
        check_tree(t, max_label, flags);
        for (int w = 0; w < t->n_words; w += 2) FUZZ_CHECK(ur_vocab_add(v, t->words[w]) >= 0);
    }
    ur_treebank_set_word_ids(tb, v);
    for (int k = 0; k < tb->n_trees; k++) {
        const ur_tree *t = &tb->trees[k];
        for (int w = 0; w < t->n_words; w++) {
            int id = t->word_ids[w];
            FUZZ_CHECK(id >= 0 && id < ur_vocab_size(v));
            int unk = ur_vocab_special_id(v, UR_VOCAB_UNK);
            FUZZ_CHECK(id == unk || strcmp(ur_vocab_string(v, id), t->words[w]) == 0);
        }
    }
    ur_vocab_free(v);
    ur_treebank_free(tb);
    return 0;
}
