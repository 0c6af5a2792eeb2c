/* tree.c - the tree model: parameters, the three cells, embedding, classifier, loss.
 * The cells work on n rows at once, so the node-by-node forward (n = 1) and the
 * batched one (n = all nodes of one height) run the very same ops. */
#include "flag_names_internal.h"
#include "rnn_internal.h"
#include "tree_internal.h"
#include "ur_init.h"

#include <stdio.h>
#include <string.h>

const char *ur_tree_cell_name(ur_tree_cell cell) {
    switch (cell) {
    case UR_TREE_RNN: return "rnn";
    case UR_TREE_LSTM: return "treelstm";
    case UR_TREE_CHILDSUM: return "childsum";
    }
    return "?";
}

ur_status ur_tree_cell_parse(const char *name, ur_tree_cell *out) {
    for (int c = UR_TREE_RNN; c <= UR_TREE_CHILDSUM; c++)
        if (name && out && !strcmp(name, ur_tree_cell_name((ur_tree_cell)c))) {
            *out = (ur_tree_cell)c;
            return UR_OK;
        }
    return ur_set_error(UR_ERR_ARG, "ur_tree_cell_parse: unknown cell '%s' (rnn, treelstm, childsum)",
                        name ? name : "(null)");
}

/* ---- parameters ---- */

static ur_param *add(ur_paramset *ps, const char *prefix, const char *name, int rows, int cols) {
    char full[96];
    if (snprintf(full, sizeof full, "%s.%s", prefix, name) >= (int)sizeof full) {
        ur_set_error(UR_ERR_ARG, "ur_treenet_new: prefix '%s' is too long", prefix);
        return NULL;
    }
    int dims[2] = {rows, cols};
    return ur_paramset_add(ps, full, cols ? 2 : 1, dims);
}

ur_treenet *ur_treenet_new(ur_paramset *ps, const char *prefix, const ur_treenet_config *cfg, ur_rng *rng) {
    if (!ps || !prefix || !cfg || !rng) {
        ur_set_error(UR_ERR_ARG, "ur_treenet_new: NULL argument");
        return NULL;
    }
    int V = cfg->vocab, E = cfg->emb_dim, H = cfg->hidden, C = cfg->n_classes;
    if (V < 1 || E < 1 || H < 1 || C < 1 || cfg->cell < UR_TREE_RNN || cfg->cell > UR_TREE_CHILDSUM ||
        !(cfg->dropout >= 0 && cfg->dropout < 1)) {
        ur_set_error(UR_ERR_ARG, "ur_treenet_new: bad config (vocab %d, emb %d, hidden %d, classes %d, dropout %g)",
                     V, E, H, C, cfg->dropout);
        return NULL;
    }
    if (cfg->cell == UR_TREE_RNN && E != H) {
        ur_set_error(UR_ERR_ARG, "ur_treenet_new: the rnn cell needs emb_dim == hidden (%d vs %d)", E, H);
        return NULL;
    }
    ur_treenet *m = ur_calloc(1, sizeof *m);
    if (!m) {
        ur_set_error(UR_ERR_NOMEM, "ur_treenet_new: out of memory");
        return NULL;
    }
    m->cfg = *cfg;
    int ok = (m->emb = add(ps, prefix, "emb", V, E)) != NULL;
    switch (cfg->cell) {
    case UR_TREE_RNN:
        ok = ok && (m->W = add(ps, prefix, "W", 2 * H, H)) && (m->b = add(ps, prefix, "b", H, 0));
        break;
    case UR_TREE_LSTM:
        ok = ok && (m->W = add(ps, prefix, "U", 2 * H, 5 * H)) && (m->b = add(ps, prefix, "b", 5 * H, 0));
        break;
    case UR_TREE_CHILDSUM:
        ok = ok && (m->W = add(ps, prefix, "U_iou", H, 3 * H)) && (m->b = add(ps, prefix, "b_iou", 3 * H, 0)) &&
             (m->Wf = add(ps, prefix, "U_f", H, H)) && (m->bf = add(ps, prefix, "b_f", H, 0));
        break;
    }
    if (cfg->cell != UR_TREE_RNN)
        ok = ok && (m->Wx = add(ps, prefix, "leaf.W", E, 3 * H)) && (m->bx = add(ps, prefix, "leaf.b", 3 * H, 0));
    ok = ok && (m->Wy = add(ps, prefix, "out.W", H, C)) && (m->by = add(ps, prefix, "out.b", C, 0));
    if (!ok) {
        ur_free(m);
        return NULL;
    }
    ur_init_uniform(&m->emb->value, rng, 0.1);
    ur_init_xavier_uniform(&m->W->value, rng, 1.0);
    if (m->Wf) ur_init_xavier_uniform(&m->Wf->value, rng, 1.0);
    if (m->Wx) ur_init_xavier_uniform(&m->Wx->value, rng, 1.0);
    ur_init_xavier_uniform(&m->Wy->value, rng, 1.0);
    /* forget gates start open: f_l and f_r blocks of the binary Tree-LSTM, b_f of Child-Sum */
    for (int j = 0; j < H && cfg->cell == UR_TREE_LSTM; j++)
        m->b->value.data[H + j] = m->b->value.data[4 * H + j] = 1;
    if (m->bf) ur_init_constant(&m->bf->value, 1.0);
    return m;
}

void ur_treenet_free(ur_treenet *m) {
    if (!m) return;
    ur_free(m->scratch);
    ur_free(m);
}

const ur_treenet_config *ur_treenet_config_of(const ur_treenet *m) { return m ? &m->cfg : NULL; }

void *ur__tree_scratch(ur_treenet *m, ur_tape *t, size_t bytes) {
    if (bytes > m->scratch_bytes) {
        void *p = ur_realloc(m->scratch, 0, bytes); /* old contents are not needed */
        if (!p) {
            ur_tape_fail(t, UR_ERR_NOMEM, "treenet: out of memory for %zu bytes of scratch", bytes);
            return NULL;
        }
        m->scratch = p;
        m->scratch_bytes = bytes;
    }
    return m->scratch;
}

int ur__tree_check(ur_treenet *m, ur_tape *t, const char *fn, const ur_tree *const *trees, int n_trees) {
    if (!t) return 0;
    if (ur_tape_error(t)) return 0;
    if (!m || !trees || n_trees < 1) {
        ur_tape_fail(t, UR_ERR_ARG, "%s: needs a model and at least one tree", fn);
        return 0;
    }
    for (int k = 0; k < n_trees; k++) {
        const ur_tree *tr = trees[k];
        if (!tr || tr->n_nodes < 1) {
            ur_tape_fail(t, UR_ERR_ARG, "%s: tree %d is NULL or empty", fn, k);
            return 0;
        }
        for (int i = 0; i < tr->n_nodes; i++) {
            const ur_tree_node *nd = &tr->nodes[i];
            if (nd->n_children == 0) {
                int id = nd->word >= 0 && nd->word < tr->n_words ? tr->word_ids[nd->word] : -1;
                if (id < 0 || id >= m->cfg.vocab) {
                    ur_tape_fail(t, UR_ERR_ARG, "%s: tree %d, leaf %d: word id %d is outside [0, %d)", fn, k, i, id,
                                 m->cfg.vocab);
                    return 0;
                }
            } else if (m->cfg.cell != UR_TREE_CHILDSUM && nd->n_children != 2) {
                ur_tape_fail(t, UR_ERR_ARG, "%s: tree %d, node %d has %d children; the %s cell needs 2", fn, k, i,
                             nd->n_children, ur_tree_cell_name(m->cfg.cell));
                return 0;
            }
        }
    }
    return 1;
}

/* ---- the cells ---- */

/* [i, o, u] (n, 3H) -> c = s(i) tanh(u) + c_extra, h = s(o) tanh(c) */
static ur__tree_state iou_cell(ur_tape *t, int H, ur_node *iou, ur_node *c_extra) {
    ur_node *i = ur_sigmoid(t, ur_slice(t, iou, 1, 0, H));
    ur_node *o = ur_sigmoid(t, ur_slice(t, iou, 1, H, H));
    ur_node *u = ur_tanh(t, ur_slice(t, iou, 1, 2 * H, H));
    ur_node *c = ur_mul(t, i, u);
    if (c_extra) c = ur_add(t, c, c_extra);
    ur__tree_state s = {ur_mul(t, o, ur_tanh(t, c)), c};
    return s;
}

ur__tree_state ur__tree_leaf(ur_treenet *m, ur_tape *t, ur_node *x) {
    if (m->cfg.cell == UR_TREE_RNN) {
        ur__tree_state s = {x, NULL};
        return s;
    }
    ur_node *iou = ur_linear(t, x, ur_param_node(t, m->Wx), ur_param_node(t, m->bx));
    return iou_cell(t, m->cfg.hidden, iou, NULL);
}

/* The binary LSTM's gates as one fused expression: slot 0 pre (B, 5H) = [i f_l u o f_r],
 * slot 1 c_l, slot 2 c_r (B, H); outputs h, c.
 *   c = sigmoid(f_l) c_l + sigmoid(i) tanh(u) + sigmoid(f_r) c_r,  h = sigmoid(o) tanh(c) */
static ur_expr *binary_expr;

static ur_expr *build_binary(void) {
    ur_expr *e = ur_expr_new("tree_lstm");
    if (!e) return NULL;
    int g[5];
    for (int k = 0; k < 5; k++) g[k] = ur_expr_input_block(e, 0, k, 5);
    int cl = ur_expr_mul(e, ur_expr_sigmoid(e, g[1]), ur_expr_input(e, 1));
    int iu = ur_expr_mul(e, ur_expr_sigmoid(e, g[0]), ur_expr_tanh(e, g[2]));
    int cr = ur_expr_mul(e, ur_expr_sigmoid(e, g[4]), ur_expr_input(e, 2));
    int c = ur_expr_add(e, ur_expr_add(e, cl, iu), cr);
    ur_expr_output(e, ur_expr_mul(e, ur_expr_sigmoid(e, g[3]), ur_expr_tanh(e, c)));
    ur_expr_output(e, c);
    if (ur_expr_error(e)) ur_expr_free(e), e = NULL;
    return e;
}

ur__tree_state ur__tree_binary(ur_treenet *m, ur_tape *t, ur_node *hlr, ur_node *c_l, ur_node *c_r) {
    ur_node *pre = ur_linear(t, hlr, ur_param_node(t, m->W), ur_param_node(t, m->b));
    if (m->cfg.cell == UR_TREE_RNN) {
        ur__tree_state s = {ur_tanh(t, pre), NULL};
        return s;
    }
    /* pre = [i, f_l, u, o | f_r]: the LSTM's gates (order i, f, g, o) with c_prev = c_l,
     * plus the right child's forget gate */
    ur__tree_state s = {NULL, NULL};
    const ur_expr *e = ur__expr_once(&binary_expr, build_binary);
    ur_node *out[2] = {NULL, NULL};
    if (!e) {
        if (!ur_tape_error(t)) ur_tape_fail(t, UR_ERR_NOMEM, "tree binary: out of memory building its expression");
    } else if (ur_expr_apply(t, e, 3, (ur_node *[]){pre, c_l, c_r}, out) == UR_OK) {
        s.h = out[0], s.c = out[1];
    }
    return s;
}

ur__tree_state ur__tree_childsum(ur_treenet *m, ur_tape *t, ur_node *hk, ur_node *ck, int n, int k) {
    int H = m->cfg.hidden, d3[3] = {n, k, H};
    ur_node *h_sum = ur_sum_axis(t, ur_reshape(t, hk, 3, d3), 1, 0);                      /* (n, H) */
    ur_node *f = ur_sigmoid(t, ur_linear(t, hk, ur_param_node(t, m->Wf), ur_param_node(t, m->bf))); /* (n*k, H) */
    ur_node *fc = ur_sum_axis(t, ur_reshape(t, ur_mul(t, f, ck), 3, d3), 1, 0);         /* (n, H) */
    ur_node *iou = ur_linear(t, h_sum, ur_param_node(t, m->W), ur_param_node(t, m->b));
    return iou_cell(t, H, iou, fc);
}

/* ---- embedding, classifier, loss ---- */

ur_node *ur__tree_embed(ur_treenet *m, ur_tape *t, const int *ids, int n, int train, uint64_t seed) {
    ur_node *x = ur_gather(t, ur_param_node(t, m->emb), ids, n);
    if (train && m->cfg.dropout > 0) x = ur_dropout(t, x, (ur_real)m->cfg.dropout, seed);
    return x;
}

ur_node *ur__tree_classify(ur_treenet *m, ur_tape *t, ur_node *h, int train, uint64_t seed) {
    if (train && m->cfg.dropout > 0) h = ur_dropout(t, h, (ur_real)m->cfg.dropout, seed ^ 0x9e3779b97f4a7c15ull);
    ur_node *y = ur_linear(t, h, ur_param_node(t, m->Wy), ur_param_node(t, m->by));
    if (y) ur_node_set_label(t, y, "node logits");
    return y;
}

ur_node *ur_treenet_loss(ur_treenet *m, ur_tape *t, ur_node *logits, const ur_tree *const *trees, int n_trees,
                         const int *label_map, int n_map) {
    if (!ur__tree_check(m, t, "treenet_loss", trees, n_trees)) return NULL;
    size_t N = 0;
    for (int k = 0; k < n_trees; k++) N += (size_t)trees[k]->n_nodes;
    if (ur_node_ndim(logits) != 2 || (size_t)ur_node_dim(logits, 0) != N) {
        char buf[64];
        const ur_shape *s = ur_node_shape(logits);
        ur_tape_fail(t, UR_ERR_SHAPE, "treenet_loss: logits must be (%zu, C), one row per tree node, got %s", N,
                     s ? ur_shape_str(s, buf, sizeof buf) : "NULL or an erased node");
        return NULL;
    }
    ur_real *mask = ur__tree_scratch(m, t, N * (sizeof(ur_real) + sizeof(int)));
    if (!mask) return NULL;
    int *target = (int *)(mask + N);
    size_t r = 0;
    for (int k = 0; k < n_trees; k++)
        for (int i = 0; i < trees[k]->n_nodes; i++, r++) {
            int label = trees[k]->nodes[i].label, cls = label;
            if (label_map) cls = label >= 0 && label < n_map ? label_map[label] : -1;
            int counted = cls >= 0 && (!m->cfg.root_only || i == trees[k]->n_nodes - 1);
            mask[r] = counted ? 1 : 0;
            target[r] = counted ? cls : 0;
        }
    return ur_cross_entropy(t, logits, target, mask);
}
