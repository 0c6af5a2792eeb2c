/* tree_forward.c - one tree, node by node: the graph as a reader pictures it.
 * Each subtree's ops sit in a tape group named after its words, so ur_tape_dot
 * draws the tree as nested clusters. */
#include "tree_internal.h"

#include <stdio.h>
#include <string.h>

typedef struct walk {
    ur_treenet *m;
    ur_tape *t;
    const ur_tree *tree;
    ur_node *x;       /* (n_words, E): embeddings of the tree's words */
    ur_node **h, **c; /* state of each node once computed */
    ur_node **kids;   /* 2 * max_children: children's h then c of one node */
} walk;

/* "subtree 'It 's lovely'": the words under node i, cut short if long. */
static void subtree_label(const ur_tree *tr, int i, char *buf, size_t n) {
    int lo = i, hi = i;
    while (tr->nodes[lo].n_children) lo = tr->children[tr->nodes[lo].first_child];
    while (tr->nodes[hi].n_children) hi = tr->children[tr->nodes[hi].first_child + tr->nodes[hi].n_children - 1];
    char words[48] = "";
    size_t used = 0;
    int cut = 0;
    for (int w = tr->nodes[lo].word; w <= tr->nodes[hi].word && !cut; w++) {
        const char *s = tr->words[w];
        size_t len = strlen(s) + (used > 0);
        if (used + len >= sizeof words) cut = 1;
        else used += (size_t)snprintf(words + used, sizeof words - used, "%s%s", used ? " " : "", s);
    }
    snprintf(buf, n, "%s '%s%s'", tr->nodes[i].n_children ? "subtree" : "leaf", words, cut ? " ..." : "");
}

static void node_forward(walk *w, int i, int depth) {
    ur_tape *t = w->t;
    const ur_tree_node *nd = &w->tree->nodes[i];
    int grouped = depth < UR_TREE_MAX_GROUP_DEPTH;
    if (grouped) {
        char label[72];
        subtree_label(w->tree, i, label, sizeof label);
        ur_tape_begin_group(t, label);
    }
    const int *ch = w->tree->children + nd->first_child;
    for (int k = 0; k < nd->n_children; k++) node_forward(w, ch[k], depth + 1);

    ur__tree_state s;
    if (nd->n_children == 0) {
        s = ur__tree_leaf(w->m, t, ur_slice(t, w->x, 0, nd->word, 1));
    } else if (w->m->cfg.cell != UR_TREE_CHILDSUM) {
        ur_node *hlr[2] = {w->h[ch[0]], w->h[ch[1]]};
        s = ur__tree_binary(w->m, t, ur_concat(t, 2, hlr, 1), w->c[ch[0]], w->c[ch[1]]);
    } else {
        int k = nd->n_children;
        for (int j = 0; j < k; j++) {
            w->kids[j] = w->h[ch[j]];
            w->kids[k + j] = w->c[ch[j]];
        }
        s = ur__tree_childsum(w->m, t, ur_concat(t, k, w->kids, 0), ur_concat(t, k, w->kids + k, 0), 1, k);
    }
    w->h[i] = s.h;
    w->c[i] = s.c;
    if (grouped) ur_tape_end_group(t);
}

ur_node *ur_treenet_forward(ur_treenet *m, ur_tape *t, const ur_tree *tree, int train, uint64_t seed,
                            ur_node **states, ur_node **node_states) {
    if (states) *states = NULL;
    if (!ur__tree_check(m, t, "treenet_forward", &tree, 1)) return NULL;
    int n = tree->n_nodes, kmax = tree->max_children > 2 ? tree->max_children : 2;
    ur_node **mem = ur__tree_scratch(m, t, (2 * (size_t)n + 2 * (size_t)kmax) * sizeof(ur_node *));
    if (!mem) return NULL;
    walk w = {m, t, tree, NULL, mem, mem + n, mem + 2 * n};
    w.x = ur__tree_embed(m, t, tree->word_ids, tree->n_words, train, seed);
    node_forward(&w, n - 1, 0);
    if (ur_tape_error(t)) return NULL;
    ur_node *h = n == 1 ? w.h[0] : ur_concat(t, n, w.h, 0); /* (n_nodes, H), post-order */
    if (states) *states = h;
    if (node_states) memcpy(node_states, w.h, (size_t)n * sizeof *node_states);
    return ur__tree_classify(m, t, h, train, seed);
}
