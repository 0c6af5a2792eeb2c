/* bench_tree.c - the recursive net of torch_ref.py (Socher et al. 2011), one tree
 * per training step, written as a user writes it: a recursive function over the
 * tree that joins the children's vectors and applies the shared layer.
 *
 *   leaf:  h = E[word]                     E (1000, 64)
 *   node:  h = tanh([h_l, h_r] W + b)      W (128, 64), b (64)
 *   root:  loss = cross_entropy(h Wy + by, label)   Wy (64, 5), by (5)
 *
 * 64 random binary trees of 20 leaves (drawn as torch_ref.py draws them: merge two
 * neighbours at random until one is left), random words and labels; step i trains
 * on tree i mod 64 with plain SGD (lr 0.01). Reports trees/s and microseconds per
 * internal node (19 per tree). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "ur_ops.h"
#include "ur_optim.h"
#include "ur_data.h"
#include "ur_tree.h"

enum { N_TREES = 64, N_LEAVES = 20, DIM = 64, VOCAB = 1000, CLASSES = 5 };

/* Node ids: 0..N_LEAVES-1 are the leaves (word positions); N_LEAVES + j is internal
 * node j, whose children are kid[j][0] and kid[j][1]. The root is the last one. */
typedef struct bench_tree {
    int kid[N_LEAVES - 1][2];
    int words[N_LEAVES];
    int label;
} bench_tree;

static void random_tree(bench_tree *tr, ur_rng *rng) {
    int nodes[N_LEAVES], n = N_LEAVES;
    for (int i = 0; i < n; i++) nodes[i] = i;
    for (int j = 0; n > 1; j++) {
        int k = (int)ur_rng_below(rng, (uint32_t)(n - 1));
        tr->kid[j][0] = nodes[k];
        tr->kid[j][1] = nodes[k + 1];
        nodes[k] = N_LEAVES + j;
        for (int i = k + 1; i < n - 1; i++) nodes[i] = nodes[i + 1];
        n--;
    }
    for (int i = 0; i < N_LEAVES; i++) tr->words[i] = (int)ur_rng_below(rng, VOCAB);
    tr->label = (int)ur_rng_below(rng, CLASSES);
}

typedef struct tree_bench {
    bench_tree trees[N_TREES];
    ur_paramset *ps;
    ur_param *E, *W, *b, *Wy, *by;
    ur_optim *opt;
    ur_tape *tape;
    long step;
    /* nodes of the current recording */
    ur_node *emb, *Wn, *bn;
} tree_bench;

static ur_node *encode(tree_bench *s, const bench_tree *tr, int id) {
    ur_tape *t = s->tape;
    if (id < N_LEAVES) return ur_slice(t, s->emb, 0, id, 1); /* (1, DIM) */
    const int *kid = tr->kid[id - N_LEAVES];
    ur_node *lr[2] = {encode(s, tr, kid[0]), encode(s, tr, kid[1])};
    return ur_tanh(t, ur_linear(t, ur_concat(t, 2, lr, 1), s->Wn, s->bn));
}

static double tree_step(void *ctx) {
    tree_bench *s = ctx;
    const bench_tree *tr = &s->trees[s->step++ % N_TREES];
    ur_tape *t = s->tape;
    ur_tape_reset(t);
    ur_optim_zero_grad(s->opt);
    s->emb = ur_gather(t, ur_param_node(t, s->E), tr->words, N_LEAVES); /* (20, DIM) */
    s->Wn = ur_param_node(t, s->W);
    s->bn = ur_param_node(t, s->b);
    ur_node *root = encode(s, tr, 2 * N_LEAVES - 2);
    ur_node *logits = ur_linear(t, root, ur_param_node(t, s->Wy), ur_param_node(t, s->by));
    ur_node *loss = ur_cross_entropy(t, logits, &tr->label, NULL);
    if (ur_backward(t, loss) != UR_OK || ur_optim_step(s->opt) != UR_OK) {
        fprintf(stderr, "unroll-bench: tree-rnn: %s\n", ur_tape_errmsg(t));
        exit(1);
    }
    return 1;
}

static ur_param *param(ur_paramset *ps, const char *name, int rows, int cols) {
    int dims[2] = {rows, cols};
    ur_param *p = ur_paramset_add(ps, name, cols ? 2 : 1, dims);
    if (!p) {
        fprintf(stderr, "unroll-bench: tree-rnn: %s\n", ur_last_error());
        exit(1);
    }
    return p;
}

void bench_tree_rnn(bench_report *r, double seconds) {
    static tree_bench s;
    ur_rng rng;
    ur_rng_seed(&rng, 0);
    for (int i = 0; i < N_TREES; i++) random_tree(&s.trees[i], &rng);
    s.ps = ur_paramset_new();
    if (!s.ps) exit(1);
    s.E = param(s.ps, "emb", VOCAB, DIM);
    s.W = param(s.ps, "W", 2 * DIM, DIM);
    s.b = param(s.ps, "b", DIM, 0);
    s.Wy = param(s.ps, "out.W", DIM, CLASSES);
    s.by = param(s.ps, "out.b", CLASSES, 0);
    /* PyTorch's defaults: embeddings N(0, 1), linear layers U(+-1/sqrt(fan_in)) */
    ur_tensor_normal(&s.E->value, &rng, 0, 1);
    ur_real a = (ur_real)(1 / sqrt(2.0 * DIM)), ay = (ur_real)(1 / sqrt((double)DIM));
    ur_tensor_uniform(&s.W->value, &rng, -a, a);
    ur_tensor_uniform(&s.b->value, &rng, -a, a);
    ur_tensor_uniform(&s.Wy->value, &rng, -ay, ay);
    ur_tensor_uniform(&s.by->value, &rng, -ay, ay);
    /* the embedding's gradient is row-sparse: each step updates only the rows its
     * tree read (exactly the dense SGD result) */
    ur_param_set_sparse_rows(s.E, 1);
    ur_optim_config oc = ur_optim_defaults(UR_OPTIM_SGD, 0.01);
    s.opt = ur_optim_new(s.ps, &oc);
    s.tape = bench_tape_new();
    if (!s.opt || !s.tape) exit(1);

    double rate = bench_timed(tree_step, &s, seconds);
    char json[128];
    snprintf(json, sizeof json, "{\"trees_per_s\": %.2f, \"us_per_internal_node\": %.2f}", rate,
             1e6 / rate / (N_LEAVES - 1));
    bench_report_json(r, BENCH_OTHER, "tree-rnn", json);
    /* matrix products per tree: each node's layer and the root's head, forward, dW, dx */
    double flops = 3 * 2.0 * ((N_LEAVES - 1) * 2 * DIM * DIM + DIM * CLASSES);
    bench_report_number(r, BENCH_OTHER, "tree-rnn-gflops", rate * flops / 1e9);

    ur_tape_free(s.tape);
    ur_optim_free(s.opt);
    ur_paramset_free(s.ps);
}

/* ---- dynamic batching: ur_treenet on 25 trees per step, batched or node by node ----
 * The same 64 random trees (20 leaves, a random label 0-4 on every node), as SST
 * bracket text read by ur_treebank_parse; the loss counts every node; SGD, lr 0.01.
 * Batched: ur_treenet_forward_batch (one op per level and cell step across the 25
 * trees). Node by node: ur_treenet_forward per tree, the logits concatenated (the
 * graph `treenet --no-batching` builds). Both give the same loss. */
enum { BATCH_TREES = 25 };

typedef struct batching_bench {
    ur_treebank *tb;
    ur_treenet *net;
    ur_paramset *ps;
    ur_optim *opt;
    ur_tape *tape;
    int batched;
    long step;
} batching_bench;

/* Appends the bracketed text of node id of tr at *p (at most end - *p bytes). */
static void tree_text(const bench_tree *tr, int id, ur_rng *rng, char **p, const char *end) {
    int label = (int)ur_rng_below(rng, CLASSES);
    if (id < N_LEAVES) {
        *p += snprintf(*p, (size_t)(end - *p), "(%d w%d)", label, tr->words[id]);
        return;
    }
    *p += snprintf(*p, (size_t)(end - *p), "(%d ", label);
    tree_text(tr, tr->kid[id - N_LEAVES][0], rng, p, end);
    *p += snprintf(*p, (size_t)(end - *p), " ");
    tree_text(tr, tr->kid[id - N_LEAVES][1], rng, p, end);
    *p += snprintf(*p, (size_t)(end - *p), ")");
}

static double batching_step(void *ctx) {
    batching_bench *s = ctx;
    const ur_tree *batch[BATCH_TREES];
    for (int i = 0; i < BATCH_TREES; i++) batch[i] = &s->tb->trees[(s->step * BATCH_TREES + i) % N_TREES];
    s->step++;
    ur_tape *t = s->tape;
    ur_tape_reset(t);
    ur_optim_zero_grad(s->opt);
    ur_node *logits;
    if (s->batched) {
        logits = ur_treenet_forward_batch(s->net, t, batch, BATCH_TREES, 1, 0, NULL);
    } else {
        ur_node *parts[BATCH_TREES];
        for (int i = 0; i < BATCH_TREES; i++) parts[i] = ur_treenet_forward(s->net, t, batch[i], 1, 0, NULL, NULL);
        logits = ur_concat(t, BATCH_TREES, parts, 0);
    }
    ur_node *loss = ur_treenet_loss(s->net, t, logits, batch, BATCH_TREES, NULL, 0);
    if (ur_backward(t, loss) != UR_OK || ur_optim_step(s->opt) != UR_OK) {
        fprintf(stderr, "unroll-bench: tree-batching: %s\n", ur_tape_error(t) ? ur_tape_errmsg(t) : ur_last_error());
        exit(1);
    }
    return BATCH_TREES;
}

void bench_tree_batching(bench_report *r, double seconds) {
    static bench_tree trees[N_TREES];
    static char text[1 << 17];
    ur_rng rng;
    ur_rng_seed(&rng, 1);
    char *p = text;
    for (int i = 0; i < N_TREES; i++) {
        random_tree(&trees[i], &rng);
        tree_text(&trees[i], 2 * N_LEAVES - 2, &rng, &p, text + sizeof text);
        p += snprintf(p, (size_t)(text + sizeof text - p), "\n");
    }
    batching_bench s = {0};
    ur_vocab *voc = ur_vocab_new(UR_VOCAB_UNK);
    if (!voc || ur_treebank_parse(text, (size_t)(p - text), "tree-batching", CLASSES - 1, UR_TREE_BINARY, &s.tb) != UR_OK) {
        fprintf(stderr, "unroll-bench: tree-batching: %s\n", ur_last_error());
        exit(1);
    }
    for (int k = 0; k < s.tb->n_trees; k++)
        for (int i = 0; i < s.tb->trees[k].n_words; i++) ur_vocab_add(voc, s.tb->trees[k].words[i]);
    ur_treebank_set_word_ids(s.tb, voc);
    static const struct { ur_tree_cell cell; const char *key; } CELLS[] = {
        {UR_TREE_RNN, "tree-batching-rnn"}, {UR_TREE_LSTM, "tree-batching-treelstm"}};
    for (int c = 0; c < 2; c++) {
        double rate[2];
        for (int batched = 0; batched < 2; batched++) { /* fresh weights for each: the same work */
            ur_rng init;
            ur_rng_seed(&init, 2);
            s.ps = ur_paramset_new();
            ur_treenet_config cfg = {CELLS[c].cell, ur_vocab_size(voc), DIM, DIM, CLASSES, 0, 0.0};
            s.net = s.ps ? ur_treenet_new(s.ps, "tree", &cfg, &init) : NULL;
            ur_optim_config oc = ur_optim_defaults(UR_OPTIM_SGD, 0.01);
            s.opt = s.net ? ur_optim_new(s.ps, &oc) : NULL;
            s.tape = bench_tape_new();
            if (!s.opt || !s.tape) {
                fprintf(stderr, "unroll-bench: tree-batching: %s\n", ur_last_error());
                exit(1);
            }
            s.batched = batched;
            s.step = 0;
            rate[batched] = bench_timed(batching_step, &s, seconds);
            ur_tape_free(s.tape);
            ur_optim_free(s.opt);
            ur_treenet_free(s.net);
            ur_paramset_free(s.ps);
        }
        char json[160];
        snprintf(json, sizeof json, "{\"trees_per_s_batched\": %.2f, \"trees_per_s_node_by_node\": %.2f, \"speedup\": %.2f}",
                 rate[1], rate[0], rate[1] / rate[0]);
        bench_report_json(r, BENCH_OTHER, CELLS[c].key, json);
    }
    ur_treebank_free(s.tb);
    ur_vocab_free(voc);
}
