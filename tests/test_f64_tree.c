/* Recursive tree networks: gradient checks of the three cells on small trees, node
 * by node and dynamically batched; the batched graph equals the node-by-node one. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flag_names_internal.h"
#include "support.h"
#include "unroll.h"

static const char *BINARY_TREES =
    "(1 (0 a) (2 (1 b) (2 c)))\n"
    "(2 (2 (0 c) (1 a)) (0 (2 d) (1 (0 b) (2 e))))\n"
    "(0 e)\n"
    "(1 (2 a) (0 d))\n";
/* unary and ternary nodes, for Child-Sum */
static const char *NARY_TREES =
    "(1 (0 a) (2 b) (1 c))\n"
    "(2 (1 (0 d)) (2 (1 a) (0 (2 b) (1 e) (2 c) (0 d))))\n"
    "(0 (1 e) (2 c))\n";

typedef struct fixture {
    ur_treebank *tb;
    ur_vocab *voc;
    const ur_tree *trees[64];
    int n;
} fixture;

static void fixture_load(fixture *f, const char *text, int flags) {
    cr_assert_eq(ur_treebank_parse(text, strlen(text), "test", 4, flags, &f->tb), UR_OK, "%s", ur_last_error());
    f->voc = ur_vocab_new(UR_VOCAB_UNK);
    for (int k = 0; k < f->tb->n_trees; k++)
        for (int i = 0; i < f->tb->trees[k].n_words; i++) ur_vocab_add(f->voc, f->tb->trees[k].words[i]);
    ur_treebank_set_word_ids(f->tb, f->voc);
    f->n = f->tb->n_trees < 64 ? f->tb->n_trees : 64;
    for (int k = 0; k < f->n; k++) f->trees[k] = &f->tb->trees[k];
}

static void fixture_free(fixture *f) {
    ur_treebank_free(f->tb);
    ur_vocab_free(f->voc);
}

typedef struct model {
    ur_paramset *ps;
    ur_treenet *net;
    fixture *f;
    int batched;
    int train;
} model;

static void model_make(model *m, fixture *f, ur_tree_cell cell, int H, int root_only, double dropout) {
    ur_treenet_config cfg = {cell, ur_vocab_size(f->voc), H, H, 5, root_only, dropout};
    ur_rng rng;
    ur_rng_seed(&rng, 7);
    m->ps = ur_paramset_new();
    m->net = ur_treenet_new(m->ps, "tree", &cfg, &rng);
    cr_assert(m->net, "%s", ur_last_error());
    /* random biases too, so that no gradient is trivially zero */
    for (int i = 0; i < ur_paramset_count(m->ps); i++) {
        ur_param *p = ur_paramset_get(m->ps, i);
        if (p->value.shape.ndim == 1) ur_tensor_uniform(&p->value, &rng, -0.5, 0.5);
    }
    m->f = f;
    m->batched = 0;
    m->train = 0;
}

static void model_free(model *m) {
    ur_treenet_free(m->net);
    ur_paramset_free(m->ps);
}

/* Logits of all the fixture's trees: one batched forward, or one forward per tree. */
static ur_node *logits_of(model *m, ur_tape *t) {
    if (m->batched) return ur_treenet_forward_batch(m->net, t, m->f->trees, m->f->n, m->train, 99, NULL);
    ur_node *parts[64];
    for (int k = 0; k < m->f->n; k++)
        parts[k] = ur_treenet_forward(m->net, t, m->f->trees[k], m->train, 99, NULL, NULL);
    return ur_concat(t, m->f->n, parts, 0);
}

static ur_node *loss_fn(ur_tape *t, void *ctx) {
    model *m = ctx;
    return ur_treenet_loss(m->net, t, logits_of(m, t), m->f->trees, m->f->n, NULL, 0);
}

static void check_grads(ur_tree_cell cell, const char *trees, int flags, int batched, int root_only, double dropout,
                        int single_tree) {
    fixture f;
    fixture_load(&f, trees, flags);
    if (single_tree) f.n = 1;
    model m;
    model_make(&m, &f, cell, 3, root_only, dropout);
    m.batched = batched;
    m.train = dropout > 0;
    ur_param *params[16];
    int np = ur_paramset_count(m.ps);
    for (int i = 0; i < np; i++) params[i] = ur_paramset_get(m.ps, i);
    ur_tape *t = ur_tape_new();
    ur_gradcheck_result r;
    cr_assert_eq(ur_gradcheck(t, loss_fn, &m, params, np, 1e-6, &r), UR_OK, "%s", ur_last_error());
    cr_expect(r.n_checked > 50);
    cr_expect(r.max_rel_err < 1e-6, "%s %s: max rel err %g at %s", ur_tree_cell_name(cell),
              batched ? "batched" : "node by node", r.max_rel_err, r.worst);
    ur_tape_free(t);
    model_free(&m);
    fixture_free(&f);
}

Test(tree, gradcheck_rnn) {
    check_grads(UR_TREE_RNN, BINARY_TREES, UR_TREE_BINARY, 0, 0, 0, 0);
    check_grads(UR_TREE_RNN, BINARY_TREES, UR_TREE_BINARY, 1, 0, 0, 0);
}

Test(tree, gradcheck_treelstm) {
    check_grads(UR_TREE_LSTM, BINARY_TREES, UR_TREE_BINARY, 0, 0, 0, 0);
    check_grads(UR_TREE_LSTM, BINARY_TREES, UR_TREE_BINARY, 1, 0, 0, 0);
}

Test(tree, gradcheck_childsum) {
    check_grads(UR_TREE_CHILDSUM, NARY_TREES, 0, 0, 0, 0, 0);
    check_grads(UR_TREE_CHILDSUM, NARY_TREES, 0, 1, 0, 0, 0);
    check_grads(UR_TREE_CHILDSUM, BINARY_TREES, UR_TREE_BINARY, 1, 0, 0, 0);
}

Test(tree, gradcheck_root_only_and_dropout) {
    check_grads(UR_TREE_LSTM, BINARY_TREES, UR_TREE_BINARY, 1, 1, 0, 0);
    check_grads(UR_TREE_LSTM, BINARY_TREES, UR_TREE_BINARY, 1, 0, 0.3, 0);
    check_grads(UR_TREE_RNN, BINARY_TREES, UR_TREE_BINARY, 0, 0, 0.3, 0);
}

/* Forward values and every parameter gradient of the two paths, compared. */
static void compare_paths(fixture *f, ur_tree_cell cell, int H, double dropout, double tol) {
    model m;
    model_make(&m, f, cell, H, 0, dropout);
    m.train = dropout > 0;
    ur_tape *t = ur_tape_new();
    int np = ur_paramset_count(m.ps);
    ur_tensor *grads[16];
    ur_node *ref = NULL;
    ur_tensor *ref_logits = NULL;
    for (int pass = 0; pass < 2; pass++) {
        m.batched = pass;
        ur_tape_reset(t);
        ur_paramset_zero_grad(m.ps);
        ur_node *logits = logits_of(&m, t);
        ur_node *loss = ur_treenet_loss(m.net, t, logits, f->trees, f->n, NULL, 0);
        cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
        if (pass == 0) {
            ref = logits;
            ref_logits = ur_tensor_new(2, (int[]){ur_node_dim(ref, 0), ur_node_dim(ref, 1)});
            ur_node_copy_to(ref, ref_logits);
            for (int i = 0; i < np; i++) grads[i] = ur_tensor_clone(&ur_paramset_get(m.ps, i)->grad);
            continue;
        }
        cr_assert_eq(ur_node_size(logits), ref_logits->size);
        double worst = 0;
        for (size_t i = 0; i < ref_logits->size; i++)
            worst = fmax(worst, fabs(ur_node_cdata(logits)[i] - ref_logits->data[i]));
        cr_expect(worst <= tol, "%s: logits differ by %g", ur_tree_cell_name(cell), worst);
        for (int i = 0; i < np; i++) {
            ur_param *p = ur_paramset_get(m.ps, i);
            double gw = 0;
            for (size_t k = 0; k < p->grad.size; k++) gw = fmax(gw, fabs(p->grad.data[k] - grads[i]->data[k]));
            cr_expect(gw <= tol, "%s: gradient of %s differs by %g", ur_tree_cell_name(cell), p->name, gw);
        }
    }
    for (int i = 0; i < np; i++) ur_tensor_free(grads[i]);
    ur_tensor_free(ref_logits);
    ur_tape_free(t);
    model_free(&m);
}

Test(tree, batched_equals_node_by_node) {
    fixture f;
    fixture_load(&f, BINARY_TREES, UR_TREE_BINARY);
    compare_paths(&f, UR_TREE_RNN, 4, 0, 1e-12);
    compare_paths(&f, UR_TREE_LSTM, 4, 0, 1e-12);
    compare_paths(&f, UR_TREE_CHILDSUM, 4, 0, 1e-12);
    f.n = 1; /* with dropout: the masks agree for one tree */
    compare_paths(&f, UR_TREE_LSTM, 4, 0.5, 1e-12);
    fixture_free(&f);
    fixture_load(&f, NARY_TREES, 0);
    compare_paths(&f, UR_TREE_CHILDSUM, 5, 0, 1e-12);
    fixture_free(&f);
}

/* On 64 real sentiment trees (skipped when the data is absent). */
Test(tree, batched_equals_node_by_node_on_sst) {
    char buf[1024];
    const char *path = ur_test_data_path("sst/dev.txt", buf, sizeof buf);
    if (!path) cr_skip_test("sst/dev.txt not found");
    fixture f;
    ur_text *text;
    cr_assert_eq(ur_text_read_file(path, 0, &text), UR_OK);
    /* the first 64 lines only */
    size_t end = 0;
    for (int lines = 0; end < text->len && lines < 64; end++)
        if (text->data[end] == '\n') lines++;
    char *head = malloc(end + 1);
    memcpy(head, text->data, end);
    head[end] = 0;
    ur_text_free(text);
    fixture_load(&f, head, UR_TREE_BINARY);
    free(head);
    cr_assert_eq(f.n, 64);
    compare_paths(&f, UR_TREE_RNN, 16, 0, 1e-5);
    compare_paths(&f, UR_TREE_LSTM, 16, 0, 1e-5);
    compare_paths(&f, UR_TREE_CHILDSUM, 16, 0, 1e-5);
    fixture_free(&f);
}

Test(tree, errors_are_recorded_on_the_tape) {
    fixture f;
    fixture_load(&f, NARY_TREES, 0);
    model m;
    model_make(&m, &f, UR_TREE_LSTM, 3, 0, 0);
    ur_tape *t = ur_tape_new();
    cr_expect_null(ur_treenet_forward(m.net, t, f.trees[0], 0, 0, NULL, NULL));
    cr_expect_eq(ur_tape_error(t), UR_ERR_ARG);
    cr_expect(strstr(ur_tape_errmsg(t), "3 children"), "%s", ur_tape_errmsg(t));
    ur_tape_reset(t);
    cr_expect_null(ur_treenet_forward_batch(m.net, t, f.trees, 0, 0, 0, NULL));
    cr_expect_eq(ur_tape_error(t), UR_ERR_ARG);
    model_free(&m);
    ur_treenet_config bad = {UR_TREE_RNN, 10, 3, 4, 2, 0, 0};
    ur_paramset *ps = ur_paramset_new();
    ur_rng rng;
    ur_rng_seed(&rng, 1);
    cr_expect_null(ur_treenet_new(ps, "x", &bad, &rng));
    cr_expect(strstr(ur_last_error(), "emb_dim == hidden"), "%s", ur_last_error());
    ur_tree_cell c;
    cr_expect_eq(ur_tree_cell_parse("childsum", &c), UR_OK);
    cr_expect_eq(c, UR_TREE_CHILDSUM);
    cr_expect_eq(ur_tree_cell_parse("lstm", &c), UR_ERR_ARG);
    ur_paramset_free(ps);
    ur_tape_free(t);
    fixture_free(&f);
}

Test(tree, subtrees_are_dot_clusters) {
    fixture f;
    fixture_load(&f, BINARY_TREES, UR_TREE_BINARY);
    model m;
    model_make(&m, &f, UR_TREE_LSTM, 3, 0, 0);
    ur_tape *t = ur_tape_new();
    ur_node *states, *node_h[16];
    const ur_tree *tree = f.trees[1];
    ur_node *logits = ur_treenet_forward(m.net, t, tree, 0, 0, &states, node_h);
    cr_assert_not_null(logits, "%s", ur_tape_errmsg(t));
    /* each node's own state is its row of the states, and backward reaches all of them */
    cr_assert_eq(ur_backward(t, ur_treenet_loss(m.net, t, logits, &tree, 1, NULL, 0)), UR_OK);
    for (int i = 0; i < tree->n_nodes; i++) {
        cr_expect(!memcmp(ur_node_cdata(node_h[i]), ur_node_cdata(states) + 3 * i, 3 * sizeof(ur_real)));
        cr_expect_not_null(ur_node_grad(node_h[i]), "no gradient reached node %d", i);
    }
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    cr_assert_eq(ur_tape_dot(t, out), UR_OK);
    fclose(out);
    cr_expect(strstr(text, "subtree 'c a d b e'"), "no cluster of the whole tree");
    cr_expect(strstr(text, "subtree 'd b e'"));
    cr_expect(strstr(text, "leaf 'e'"));
    free(text);
    ur_tape_free(t);
    model_free(&m);
    fixture_free(&f);
}
