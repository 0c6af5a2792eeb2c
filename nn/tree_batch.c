/* tree_batch.c - dynamic batching: all nodes of one height, across every tree of a
 * mini-batch, go through the cell together.
 *
 * Layout: the states of all nodes live in a table of rows, level after level
 * (height 0 = the leaves, then height 1, ...), after one zero row at row 0:
 *     row 0 | leaves of all trees | height-1 nodes | height-2 nodes | ...
 * A node's children all have smaller heights, so when level l is computed the table
 * of levels 0..l-1 is complete: the children's states are gathered from it by row
 * (missing children of a Child-Sum node point at the zero row). The level's states
 * then join the table. At the end one gather puts the rows back in tree order.
 * Each level costs a fixed number of ops, whatever the number of trees.
 */
#include "tree_internal.h"

#include <stdio.h>
#include <string.h>

typedef struct plan {
    int N, W, L, kmax; /* nodes, words, levels (max height + 1), most children */
    int *row;          /* N: table row of every node, trees in order, nodes in post-order */
    int *start;        /* L + 1: first table row of each level (start[L]: end of the table) */
    int *words;        /* W: word ids of the leaves, trees in order */
    int *ids;          /* gather ids of one level */
    ur_node **lev_h, **lev_c; /* L: states of each level */
    ur_node **tab;     /* L + 1: inputs of a table concat */
} plan;

/* Sizes the plan and carves its arrays out of the model's scratch memory. */
static int plan_make(ur_treenet *m, ur_tape *t, const ur_tree *const *trees, int n_trees, plan *p) {
    memset(p, 0, sizeof *p);
    p->kmax = 2;
    for (int k = 0; k < n_trees; k++) {
        const ur_tree *tr = trees[k];
        p->N += tr->n_nodes;
        p->W += tr->n_words;
        if (tr->nodes[tr->n_nodes - 1].height + 1 > p->L) p->L = tr->nodes[tr->n_nodes - 1].height + 1;
        if (tr->max_children > p->kmax) p->kmax = tr->max_children;
    }
    size_t n_ids = (size_t)p->N * (size_t)(p->kmax > 4 ? p->kmax : 4);
    size_t n_ptr = 3 * (size_t)p->L + 1;
    size_t n_int = (size_t)p->N + (size_t)p->L + 1 + (size_t)p->W + n_ids;
    void *mem = ur__tree_scratch(m, t, n_ptr * sizeof(ur_node *) + n_int * sizeof(int));
    if (!mem) return 0;
    p->lev_h = mem;
    p->lev_c = p->lev_h + p->L;
    p->tab = p->lev_c + p->L;
    p->row = (int *)(p->tab + p->L + 1);
    p->start = p->row + p->N;
    p->words = p->start + p->L + 1;
    p->ids = p->words + p->W;

    /* rows: count the nodes of each height, then number them level by level */
    memset(p->start, 0, ((size_t)p->L + 1) * sizeof(int));
    for (int k = 0; k < n_trees; k++)
        for (int i = 0; i < trees[k]->n_nodes; i++) p->start[trees[k]->nodes[i].height + 1]++;
    p->start[0] = 1; /* after the zero row */
    for (int l = 1; l <= p->L; l++) p->start[l] += p->start[l - 1];
    int g = 0, w = 0;
    for (int k = 0; k < n_trees; k++) {
        const ur_tree *tr = trees[k];
        for (int i = 0; i < tr->n_nodes; i++, g++) p->row[g] = p->start[tr->nodes[i].height]++;
        for (int j = 0; j < tr->n_words; j++) p->words[w++] = tr->word_ids[j];
    }
    /* the loop above advanced start[l] to the end of level l: shift back by one level */
    for (int l = p->L; l > 0; l--) p->start[l] = p->start[l - 1];
    p->start[0] = 1;
    return 1;
}

/* The table of levels 0..l-1 (with the zero row first) of the given states. */
static ur_node *table(ur_tape *t, plan *p, ur_node *zero, ur_node **lev, int l) {
    p->tab[0] = zero;
    for (int j = 0; j < l; j++) p->tab[j + 1] = lev[j];
    return ur_concat(t, l + 1, p->tab, 0);
}

/* Level l (>= 1): gathers the children of its nodes and runs the cell once. */
static ur__tree_state level_forward(ur_treenet *m, ur_tape *t, const ur_tree *const *trees, int n_trees, plan *p,
                                    ur_node *zero, int l) {
    int H = m->cfg.hidden, n = p->start[l + 1] - p->start[l], lstm = m->cfg.cell != UR_TREE_RNN;
    int k = 0; /* children per node in this level (Child-Sum pads to the most) */
    for (int tr = 0; tr < n_trees; tr++)
        for (int i = 0; i < trees[tr]->n_nodes; i++)
            if (trees[tr]->nodes[i].height == l && trees[tr]->nodes[i].n_children > k)
                k = trees[tr]->nodes[i].n_children;
    if (m->cfg.cell != UR_TREE_CHILDSUM) k = 2;
    /* ids[j*k + q]: row of child q of the level's node j, 0 (the zero row) if none */
    for (int tr = 0, g = 0; tr < n_trees; g += trees[tr]->n_nodes, tr++) {
        const ur_tree *tree = trees[tr];
        for (int i = 0; i < tree->n_nodes; i++) {
            const ur_tree_node *nd = &tree->nodes[i];
            if (nd->height != l) continue;
            int j = p->row[g + i] - p->start[l];
            for (int q = 0; q < k; q++)
                p->ids[j * k + q] = q < nd->n_children ? p->row[g + tree->children[nd->first_child + q]] : 0;
        }
    }
    ur_node *h_tab = table(t, p, zero, p->lev_h, l);
    ur_node *c_tab = lstm ? table(t, p, zero, p->lev_c, l) : NULL;
    ur_node *hk = ur_gather(t, h_tab, p->ids, n * k);  /* (n*k, H) */
    ur_node *ck = lstm ? ur_gather(t, c_tab, p->ids, n * k) : NULL;
    if (m->cfg.cell == UR_TREE_CHILDSUM) return ur__tree_childsum(m, t, hk, ck, n, k);
    int d2[2] = {n, 2 * H};
    ur_node *c_l = NULL, *c_r = NULL;
    if (lstm) { /* rows 2j and 2j+1 of ck, as two (n, H) halves of its (n, 2H) view */
        ur_node *c2 = ur_reshape(t, ck, 2, d2);
        c_l = ur_slice(t, c2, 1, 0, H);
        c_r = ur_slice(t, c2, 1, H, H);
    }
    return ur__tree_binary(m, t, ur_reshape(t, hk, 2, d2), c_l, c_r);
}

ur_node *ur_treenet_forward_batch(ur_treenet *m, ur_tape *t, const ur_tree *const *trees, int n_trees,
                                  int train, uint64_t seed, ur_node **states) {
    if (states) *states = NULL;
    if (!ur__tree_check(m, t, "treenet_forward_batch", trees, n_trees)) return NULL;
    plan p;
    if (!plan_make(m, t, trees, n_trees, &p)) return NULL;
    int zd[2] = {1, m->cfg.hidden};
    ur_node *zero = ur_zeros(t, 2, zd);
    char label[32];
    ur_tape_begin_group(t, "level 0 (leaves)");
    ur__tree_state s = ur__tree_leaf(m, t, ur__tree_embed(m, t, p.words, p.W, train, seed));
    ur_tape_end_group(t);
    p.lev_h[0] = s.h;
    p.lev_c[0] = s.c;
    for (int l = 1; l < p.L; l++) {
        snprintf(label, sizeof label, "level %d", l);
        ur_tape_begin_group(t, label);
        s = level_forward(m, t, trees, n_trees, &p, zero, l);
        ur_tape_end_group(t);
        p.lev_h[l] = s.h;
        p.lev_c[l] = s.c;
    }
    /* back to tree order: row g of the result is the table row of node g */
    ur_node *h = ur_gather(t, table(t, &p, zero, p.lev_h, p.L), p.row, p.N);
    if (ur_tape_error(t)) return NULL;
    if (states) *states = h;
    return ur__tree_classify(m, t, h, train, seed);
}
