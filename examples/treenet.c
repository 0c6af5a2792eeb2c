/* treenet - sentiment over parse trees: a recursive network reads the Stanford
 * Sentiment Treebank bottom-up and classifies every phrase.
 *
 *   treenet --model treelstm --save sst.safetensors     (data in ../shared/data/sst)
 *   treenet --load sst.safetensors --eval dev.txt
 *
 * Every node of a binarised tree gets a state from its children's states with the
 * same weights everywhere (nn/ur_tree.h):
 *     rnn       h = tanh(W [h_l; h_r] + b)                 (Socher et al. 2011)
 *     treelstm  binary Tree-LSTM: gates from [h_l; h_r], one forget gate per child
 *     childsum  Child-Sum Tree-LSTM: gates from h_l + h_r  (Tai et al. 2015)
 * and a softmax classifier reads every node's state. The loss is the cross-entropy
 * over every labelled node (or only the roots, --root-only).
 *
 * Tasks: --task binary drops neutral (2) sentences and ignores neutral phrases,
 * classes negative (0-1) / positive (3-4); --task fine keeps the 5 classes. A fine
 * model is also scored on the binary task: positive when p(3) + p(4) > p(0) + p(1).
 *
 * Dynamic batching (--batch-trees N): the N trees of a step run level by level, all
 * nodes of one height across all trees in one batched op per step of the cell.
 * --no-batching builds each tree node by node instead: the same numbers, slower
 * (with --dropout 0; with dropout each tree then draws its own masks).
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dist_cli.h"
#include "flag_names_internal.h"
#include "unroll.h"

enum { MAX_WORD = 64 };

/* What --model, --task and --optim take. */
static const char *const MODELS[] = {"rnn", "treelstm", "childsum", NULL}, *const TASKS[] = {"binary", "fine", NULL};
static const char *const OPTIMS[] = {"adagrad", "adam", NULL};

typedef struct config {
    const char *data_dir, *train, *dev, *eval, *model, *task, *optim;
    int dim, emb, batch, epochs, root_only, no_batching, lower, min_count;
    double lr, lr_final, dropout, wd, clip;
} config;

/* The flags that define the model and the run: kept in checkpoints. */
static const char *const STORED[] = {"--model", "--task", "--dim", "--emb", "--dropout", "--lower", "--min-count",
                                     "--root-only", "--optim", "--lr", "--lr-final", "--wd", "--batch-trees",
                                     "--epochs", "--seed", NULL};
enum { N_STORED = 15 };
_Static_assert(sizeof STORED / sizeof STORED[0] == N_STORED + 1, "N_STORED counts the stored flags");

/* ---- data ---- */

static void normalise(const char *w, int lower, char *out) {
    int n = 0;
    for (; w[n] && n < MAX_WORD; n++) out[n] = lower ? (char)tolower((unsigned char)w[n]) : w[n];
    out[n] = '\0';
}

/* The training words seen >= min_count times, after <unk>. */
static ur_vocab *build_vocab(const ur_treebank *tb, int lower, int min_count) {
    ur_vocab *counts = ur_vocab_new(0), *v = NULL;
    char w[MAX_WORD + 1];
    for (int k = 0; counts && k < tb->n_trees; k++)
        for (int i = 0; i < tb->trees[k].n_words; i++) {
            normalise(tb->trees[k].words[i], lower, w);
            ur_vocab_add(counts, w);
        }
    if (counts) ur_vocab_build(counts, min_count, UR_VOCAB_UNK, &v);
    ur_vocab_free(counts);
    return v;
}

static void set_word_ids(ur_treebank *tb, const ur_vocab *v, int lower) {
    char w[MAX_WORD + 1];
    for (int k = 0; k < tb->n_trees; k++)
        for (int i = 0; i < tb->trees[k].n_words; i++) {
            normalise(tb->trees[k].words[i], lower, w);
            tb->trees[k].word_ids[i] = ur_vocab_id(v, w);
        }
}

static ur_treebank *read_trees(const char *path) {
    ur_treebank *tb = NULL;
    if (ur_treebank_read_file(path, 4, UR_TREE_BINARY, &tb) != UR_OK) fprintf(stderr, "treenet: %s\n", ur_last_error());
    return tb;
}

/* Trees used for training: all (fine) or those with a non-neutral root (binary). */
static const ur_tree **pick_trees(const ur_treebank *tb, int binary, int *n) {
    const ur_tree **p = malloc((size_t)(tb->n_trees ? tb->n_trees : 1) * sizeof *p);
    *n = 0;
    for (int k = 0; p && k < tb->n_trees; k++)
        if (!binary || ur_sst_binary_label(tb->trees[k].label) >= 0) p[(*n)++] = &tb->trees[k];
    return p;
}

/* ---- evaluation ---- */

typedef struct score {
    double loss;
    double fine_root, binary_root, all_nodes; /* accuracies (NaN when not defined) */
    int n_fine, n_binary;
    long n_nodes;
} score;

static int argmax(const ur_real *p, int n) {
    int best = 0;
    for (int c = 1; c < n; c++)
        if (p[c] > p[best]) best = c;
    return best;
}

/* The nodes ur_treenet_loss counts (averages over) in trees[0..n): how much this
 * rank's share weighs in the mean over the ranks. */
static double counted_nodes(const ur_tree *const *trees, int n, const int *label_map, int root_only) {
    long c = 0;
    for (int i = 0; i < n; i++)
        for (int j = root_only ? trees[i]->n_nodes - 1 : 0; j < trees[i]->n_nodes; j++) {
            int l = trees[i]->nodes[j].label;
            c += l >= 0 && l < 5 && label_map[l] >= 0;
        }
    return (double)c;
}

/* Root accuracies (fine and binary) and all-node accuracy of the model's task. */
static score evaluate(ur_treenet *net, ur_tape *t, const ur_treebank *tb, int binary, const int *label_map) {
    score s = {NAN, NAN, NAN, NAN, 0, 0, 0};
    long fine_ok = 0, bin_ok = 0, node_ok = 0, failed = 0;
    double loss = 0;
    long counted = 0;
    const ur_tree *batch[64];
    int root_only = ur_treenet_config_of(net)->root_only;
    int was = ur_tape_set_grad_enabled(t, 0);
    for (int k0 = 0; k0 < tb->n_trees; k0 += 64) {
        int n = tb->n_trees - k0 < 64 ? tb->n_trees - k0 : 64;
        for (int i = 0; i < n; i++) batch[i] = &tb->trees[k0 + i];
        ur_tape_reset(t);
        ur_node *logits = ur_treenet_forward_batch(net, t, batch, n, 0, 0, NULL);
        ur_node *l = ur_treenet_loss(net, t, logits, batch, n, label_map, 5);
        ur_node *p = ur_softmax(t, logits);
        if (!p || !l) {
            fprintf(stderr, "treenet: evaluate: %s\n", ur_tape_errmsg(t));
            failed = 1;
            break;
        }
        const ur_real *pr = ur_node_cdata(p);
        int C = ur_node_dim(p, 1);
        long row = 0;
        for (int i = 0; i < n; i++) {
            const ur_tree *tr = batch[i];
            for (int j = 0; j < tr->n_nodes; j++, row++) {
                const ur_real *q = pr + row * C;
                int gold = label_map[tr->nodes[j].label], pred = argmax(q, C);
                if (gold >= 0) {
                    node_ok += pred == gold;
                    s.n_nodes++;
                }
                if (j != tr->n_nodes - 1) continue; /* the root */
                int gold_bin = ur_sst_binary_label(tr->label);
                if (!binary) {
                    fine_ok += pred == tr->label;
                    s.n_fine++;
                }
                if (gold_bin >= 0) {
                    int pred_bin = binary ? pred : q[3] + q[4] > q[0] + q[1];
                    bin_ok += pred_bin == gold_bin;
                    s.n_binary++;
                }
            }
        }
        /* the loss is a mean over the nodes it counts in this batch (the roots only with root_only) */
        long c = 0;
        for (int i = 0; i < n; i++)
            for (int j = root_only ? batch[i]->n_nodes - 1 : 0; j < batch[i]->n_nodes; j++)
                c += label_map[batch[i]->nodes[j].label] >= 0;
        loss += ur_node_item(l) * (double)c;
        counted += c;
    }
    ur_tape_set_grad_enabled(t, was);
    if (failed) return s;
    if (counted) s.loss = loss / (double)counted;
    if (s.n_fine) s.fine_root = (double)fine_ok / s.n_fine;
    if (s.n_binary) s.binary_root = (double)bin_ok / s.n_binary;
    if (s.n_nodes) s.all_nodes = (double)node_ok / (double)s.n_nodes;
    return s;
}

static void print_score(const char *name, const score *s, int binary) {
    if (!binary) printf("%s: fine-grained root accuracy %.2f%% (%d trees), ", name, 100 * s->fine_root, s->n_fine);
    else printf("%s: ", name);
    printf("binary root accuracy %.2f%% (%d trees), all-node %s accuracy %.2f%% (%ld nodes), loss %.4f\n",
           100 * s->binary_root, s->n_binary, binary ? "binary" : "fine", 100 * s->all_nodes, s->n_nodes, s->loss);
}

/* ---- looking inside one step: one tree built node by node, subtrees as clusters ---- */

static void inspect_step(ur_treenet *net, ur_paramset *ps, ur_tape *t, const ur_tree *tree, const int *label_map,
                         const cli_common *c) {
    ur_node **node_h = malloc((size_t)tree->n_nodes * sizeof *node_h);
    int *depth = malloc((size_t)tree->n_nodes * sizeof *depth);
    if (!node_h || !depth) goto out;
    ur_tape_reset(t);
    ur_node *logits = ur_treenet_forward(net, t, tree, 1, 1, NULL, node_h);
    ur_node *loss = ur_treenet_loss(net, t, logits, &tree, 1, label_map, 5);
    ur_paramset_zero_grad(ps);
    if (ur_backward(t, loss) != UR_OK) {
        fprintf(stderr, "treenet: %s\n", ur_tape_errmsg(t));
        goto out;
    }
    if (c->print_tape) ur_tape_print(t, stdout);
    if (c->dot && cli_write_dot(t, c->dot) == 0)
        printf("wrote the tape of one training step (one tree of %d words, node by node) to %s\n", tree->n_words,
               c->dot);
    if (c->grad_report) {
        cli_grad_report_params(ps, stdout);
        /* the whole gradient reaching each node's state, by distance from the root:
         * does it fade on its way down the tree? */
        int deepest = 0, H = ur_node_dim(node_h[0], 1);
        for (int i = tree->n_nodes - 1; i >= 0; i--) { /* parents come after their children */
            depth[i] = tree->nodes[i].parent < 0 ? 0 : depth[tree->nodes[i].parent] + 1;
            if (depth[i] > deepest) deepest = depth[i];
        }
        printf("  %-8s %6s %14s\n", "depth", "nodes", "mean ||dL/dh||");
        for (int d = 0; d <= deepest; d++) {
            double sum = 0;
            int n = 0;
            for (int i = 0; i < tree->n_nodes; i++) {
                const ur_real *g = ur_node_grad(node_h[i]);
                if (depth[i] != d) continue;
                double s2 = 0;
                for (int j = 0; g && j < H; j++) s2 += (double)g[j] * g[j];
                sum += sqrt(s2);
                n++;
            }
            printf("  %-8d %6d %14.4e\n", d, n, sum / n);
        }
    }
out:
    ur_paramset_zero_grad(ps);
    free(node_h);
    free(depth);
}

/* ---- settings ---- */

enum { MAX_FLAGS = 40 };
static const char ABOUT[] =
    "treenet: recursive networks (RNN, Tree-LSTM, Child-Sum) on the Stanford Sentiment Treebank";

/* Sets the defaults and lists the flags (at most MAX_FLAGS): returns their count. */
static int flag_table(config *cfg, cli_common *c, cli_opt *opts) {
    *cfg = (config){.data_dir = "../shared/data/sst", .model = "treelstm", .task = "binary", .optim = "adagrad",
                    .dim = 0, .emb = 0, .batch = 25, .epochs = 5, .lower = 1, .min_count = 1, .lr = 0.05,
                    .lr_final = 0.1, .dropout = 0.5, .wd = 1e-4, .clip = 5};
    const cli_opt table[] = {
        CLI_COMMON_OPTS(*c),
        CLI_TEXT("--data-dir", &cfg->data_dir, "folder with train.txt and dev.txt (default ../shared/data/sst)"),
        CLI_TEXT("--train", &cfg->train, "training trees (default DATA_DIR/train.txt)"),
        CLI_TEXT("--dev", &cfg->dev, "development trees (default DATA_DIR/dev.txt)"),
        CLI_TEXT("--eval", &cfg->eval, "score the --load model on this tree file (no training)"),
        CLI_CHOICE("--model", &cfg->model, MODELS, "tree cell (default treelstm)"),
        CLI_CHOICE("--task", &cfg->task, TASKS, "neutral dropped, or 5 classes (default binary)"),
        CLI_INT("--dim", &cfg->dim, 0, 4096, "state size H (default 150; rnn 30)"),
        CLI_INT("--emb", &cfg->emb, 0, 4096, "word embedding size (default: H; rnn needs H)"),
        CLI_REAL_BELOW("--dropout", &cfg->dropout, 0, 1, "dropout on embeddings and states before the classifier "
                                                        "(default 0.5)"),
        CLI_INT("--lower", &cfg->lower, 0, 1, "1: lowercase words (default 1)"),
        CLI_INT("--min-count", &cfg->min_count, 0, 1000000000, "words seen fewer times are <unk> (default 1)"),
        CLI_BOOL("--root-only", &cfg->root_only, "train the classifier on the roots only"),
        CLI_CHOICE("--optim", &cfg->optim, OPTIMS, "optimizer (default adagrad)"),
        CLI_REAL("--lr", &cfg->lr, 0, 10, "learning rate (default 0.05)"),
        CLI_REAL("--lr-final", &cfg->lr_final, 0, 1, "cosine-decay the rate to lr * F over the run (default 0.1)"),
        CLI_REAL("--wd", &cfg->wd, 0, 1, "L2 weight decay (default 1e-4)"),
        CLI_REAL("--clip", &cfg->clip, 0, 1e6, "clip the global gradient norm (default 5, 0: off)"),
        CLI_INT("--batch-trees", &cfg->batch, 1, 4096, "trees per step, dynamically batched (default 25)"),
        CLI_BOOL("--no-batching", &cfg->no_batching, "build every tree node by node (same result, slower)"),
        CLI_INT("--epochs", &cfg->epochs, 0, 1000000, "passes over the training trees (default 5)"),
    };
    _Static_assert(sizeof table / sizeof table[0] <= MAX_FLAGS, "MAX_FLAGS holds the table");
    memcpy(opts, table, sizeof table);
    return (int)(sizeof table / sizeof table[0]);
}

/* What the flags leave open: the cell, its default state size, and --eval needs a
 * model. 0, or 2 (a usage error). */
static int settle(config *cfg, const ur_ckpt *ck, ur_tree_cell *cell) {
    ur_tree_cell_parse(cfg->model, cell); /* the flag table admits only the names it knows */
    /* the plain recursive net overfits with wide states: 30 units do best on SST dev */
    if (cfg->dim == 0) cfg->dim = *cell == UR_TREE_RNN ? 30 : 150;
    if (cfg->eval && !ck) {
        fprintf(stderr, "treenet: --eval needs a model (--load)\n");
        return 2;
    }
    return 0;
}

/* ---- data: the tree files, the vocabulary, the training trees of the task ---- */
typedef struct data {
    ur_treebank *train_tb, *dev_tb; /* train_tb: NULL with --eval */
    ur_vocab *vocab;
    const ur_tree **train; /* the n_train trees of train_tb the task uses */
    int n_train;
} data;

static void data_free(data *d) {
    free(d->train);
    ur_vocab_free(d->vocab);
    ur_treebank_free(d->train_tb);
    ur_treebank_free(d->dev_tb);
}

/* Reads the files (the development file is --eval's with --eval); the vocabulary
 * comes from the checkpoint ck, or from the training trees. 1, or 0 after an error. */
static int load_data(data *d, const config *cfg, const ur_ckpt *ck, const char *ck_path, int binary) {
    char train_path[1024], dev_path[1024];
    snprintf(train_path, sizeof train_path, "%s/train.txt", cfg->data_dir);
    snprintf(dev_path, sizeof dev_path, "%s/dev.txt", cfg->data_dir);
    const char *train_file = cfg->train ? cfg->train : train_path;
    const char *dev_file = cfg->eval ? cfg->eval : cfg->dev ? cfg->dev : dev_path;
    d->train_tb = cfg->eval ? NULL : read_trees(train_file);
    d->dev_tb = cfg->eval || d->train_tb ? read_trees(dev_file) : NULL;
    if (!d->dev_tb || (!cfg->eval && !d->train_tb)) return 0;
    if (ck) {
        const char *text = ur_ckpt_meta(ck, "vocab");
        d->vocab = text ? cli_vocab_from_text(text, UR_VOCAB_UNK) : NULL;
        if (!d->vocab) fprintf(stderr, "treenet: --load %s: no usable 'vocab' in the metadata\n", ck_path);
    } else {
        d->vocab = build_vocab(d->train_tb, cfg->lower, cfg->min_count);
    }
    if (!d->vocab) return 0;
    if (d->train_tb) set_word_ids(d->train_tb, d->vocab, cfg->lower);
    set_word_ids(d->dev_tb, d->vocab, cfg->lower);
    if (d->train_tb) {
        d->train = pick_trees(d->train_tb, binary, &d->n_train);
        printf("treenet: %s: %d trees (%d used for the %s task), %d words in the vocabulary\n", train_file,
               d->train_tb->n_trees, d->n_train, cfg->task, ur_vocab_size(d->vocab));
    }
    return 1;
}

/* ---- training steps ---- */

/* The order of the training trees in an epoch: a shuffle drawn from the seed and the epoch only. */
static void epoch_order(int *order, int n, long seed, long epoch) {
    ur_rng er;
    ur_rng_seed(&er, (uint64_t)seed * 7919u + (uint64_t)epoch);
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)ur_rng_below(&er, (uint32_t)i + 1), x = order[i];
        order[i] = order[j];
        order[j] = x;
    }
}

/* Class scores of every node of the B trees (training mode). Dynamic batching runs
 * the nodes of one height across all trees as one op; --no-batching builds the same
 * graph node by node, tree after tree (parts: B scratch pointers). */
static ur_node *batch_logits(ur_treenet *net, ur_tape *tape, const ur_tree **batch, int B, uint64_t seed,
                             int no_batching, ur_node **parts) {
    if (!no_batching) return ur_treenet_forward_batch(net, tape, batch, B, 1, seed, NULL);
    for (int i = 0; i < B; i++) parts[i] = ur_treenet_forward(net, tape, batch[i], 1, seed + (uint64_t)i, NULL, NULL);
    return ur_concat(tape, B, parts, 0);
}

/* The training trees in batches of up to `size`, in a new order every epoch. */
typedef struct tree_batches {
    const ur_tree **train; /* n trees */
    int n, size;
    long per_epoch, seed;
    int *order;            /* this epoch's order of the n trees */
    const ur_tree **batch; /* the current batch */
    ur_node **parts;       /* size scratch pointers (batch_logits) */
} tree_batches;

static int batches_init(tree_batches *b, const ur_tree **train, int n, int size, long seed) {
    *b = (tree_batches){train, n, size, (n + size - 1) / size, seed, NULL, NULL, NULL};
    b->order = malloc((size_t)n * sizeof *b->order);
    b->batch = malloc((size_t)size * sizeof *b->batch);
    b->parts = malloc((size_t)size * sizeof *b->parts);
    return b->order && b->batch && b->parts;
}

static void batches_free(tree_batches *b) {
    free(b->order);
    free(b->batch);
    free(b->parts);
}

/* The trees of training step `step` into b->batch, a new order at each epoch's start
 * and at the first step of a run (first, also a resumed one); returns their count
 * and adds their nodes to *nodes. */
static int batches_next(tree_batches *b, long step, long first, long *nodes) {
    long k = step % b->per_epoch;
    if (k == 0 || step == first) epoch_order(b->order, b->n, b->seed, step / b->per_epoch);
    int B = (int)(b->n - k * b->size < b->size ? b->n - k * b->size : b->size);
    for (int i = 0; i < B; i++) {
        b->batch[i] = b->train[b->order[k * b->size + i]];
        *nodes += b->batch[i]->n_nodes;
    }
    return B;
}

/* ---- saving and reporting ---- */

/* The checkpoint: parameters, optimizer, the stored flags and the vocabulary. 1, or 0 after an error. */
static int save(const char *path, const ur_paramset *ps, const ur_optim *opt, const ur_vocab *vocab,
                const cli_opt *opts, int n_opts) {
    char store[N_STORED][CLI_META_LEN];
    ur_ckpt_kv meta[N_STORED + 3];
    char *vt = cli_vocab_to_text(vocab, 1); /* after <unk> */
    int k = cli_meta_put(opts, n_opts, STORED, store, meta);
    meta[k++] = (ur_ckpt_kv){"example", "treenet"};
    meta[k++] = (ur_ckpt_kv){"vocab", vt ? vt : ""};
    meta[k] = (ur_ckpt_kv){NULL, NULL};
    int ok = vt && ur_ckpt_save_training(path, ps, opt, meta) == UR_OK;
    if (ok) printf("saved %s (step %ld)\n", path, (long)ur_optim_step_count(opt));
    else fprintf(stderr, "treenet: --save %s: %s\n", path, ur_last_error());
    free(vt);
    return ok;
}

/* --eval: the scores of a saved model on one file, printed (and as JSON). 1, or 0 after an error. */
static int eval_only(ur_treenet *net, ur_tape *tape, const ur_treebank *tb, int binary, const int *label_map,
                     const char *file, int json) {
    score s = evaluate(net, tape, tb, binary, label_map);
    print_score(file, &s, binary);
    if (json) {
        cli_json j;
        cli_json_begin(&j);
        cli_json_str(&j, "example", "treenet");
        cli_json_str(&j, "file", file);
        cli_json_num(&j, "fine_root_accuracy", s.fine_root);
        cli_json_num(&j, "binary_root_accuracy", s.binary_root);
        cli_json_num(&j, "all_node_accuracy", s.all_nodes);
        cli_json_num(&j, "loss", s.loss);
        cli_json_end(&j);
    }
    return isfinite(s.binary_root);
}

/* What a training run did, for the JSON line. */
typedef struct run_stats {
    long first, last, nodes; /* this run trained steps first .. last-1, over `nodes` tree nodes */
    double first_loss, last_loss, best_dev, seconds, graph_s;
    double *losses; /* last - first */
} run_stats;

static void print_json(const config *cfg, ur_tree_cell cell, const run_stats *r, const score *dev,
                       const ur_optim *opt, const ur_paramset *ps) {
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "example", "treenet");
    cli_json_str(&j, "model", ur_tree_cell_name(cell));
    cli_json_str(&j, "task", cfg->task);
    cli_json_int(&j, "step", (long)ur_optim_step_count(opt));
    cli_json_int(&j, "first_step", r->first + 1);
    cli_json_num(&j, "first_loss", r->first_loss);
    cli_json_num(&j, "last_loss", r->last_loss);
    cli_json_num(&j, "dev_fine_root_accuracy", dev->fine_root);
    cli_json_num(&j, "dev_binary_root_accuracy", dev->binary_root);
    cli_json_num(&j, "dev_all_node_accuracy", dev->all_nodes);
    cli_json_num(&j, "dev_loss", dev->loss);
    cli_json_num(&j, "best_dev_binary_root_accuracy", r->best_dev);
    cli_json_num(&j, "seconds", r->seconds);
    cli_json_num(&j, "nodes_per_s", r->seconds > 0 ? (double)r->nodes / r->seconds : 0);
    cli_json_num(&j, "graph_seconds", r->graph_s);
    cli_json_num(&j, "graph_nodes_per_s", r->graph_s > 0 ? (double)r->nodes / r->graph_s : 0);
    cli_json_int(&j, "params", (long)ur_paramset_numel(ps));
    cli_json_array(&j, "losses", r->losses, (int)(r->last > r->first ? r->last - r->first : 0));
    cli_json_end(&j);
}

/* The development scores, the best binary root accuracy kept in the run. */
static score dev_pass(ur_treenet *net, ur_tape *tape, const ur_treebank *tb, int binary, const int *label_map,
                      run_stats *run) {
    score s = evaluate(net, tape, tb, binary, label_map);
    if (s.binary_root > run->best_dev) run->best_dev = s.binary_root;
    return s;
}

/* The development scores at the end of an epoch, printed. */
static score epoch_report(ur_treenet *net, ur_tape *tape, const ur_treebank *tb, int binary, const int *label_map,
                          run_stats *run, long epoch) {
    score s = dev_pass(net, tape, tb, binary, label_map, run);
    cli_progress_end();
    char name[32];
    snprintf(name, sizeof name, "epoch %ld dev", epoch);
    print_score(name, &s, binary);
    return s;
}

/* The time the run took, and the part of it the graph took (forward and backward). */
static void print_speed(const run_stats *r) {
    printf("trained %ld steps in %.1f s (%.0f nodes/s; forward + backward %.1f s, %.0f nodes/s)\n", r->last - r->first,
           r->seconds, (double)r->nodes / r->seconds, r->graph_s, (double)r->nodes / r->graph_s);
}

/* ---- the start of a run ---- */

/* The tree network and its optimizer (AdaGrad or Adam, with weight decay); with
 * --load the checkpoint's weights, and its optimizer state unless --eval; every rank
 * starts from rank 0's weights. Prints the model's size. 1, or 0 after an error. */
static int model_setup(ur_treenet **net, ur_optim **opt, ur_paramset *ps, const ur_tape *tape, const config *cfg,
                       ur_tree_cell cell, int binary, int n_words, const cli_common *c, ur_ckpt *ck) {
    ur_rng rng;
    ur_rng_seed(&rng, (uint64_t)c->seed);
    ur_treenet_config tc = {cell, n_words, cfg->emb > 0 ? cfg->emb : cfg->dim, cfg->dim,
                            binary ? 2 : 5, cfg->root_only, cfg->dropout};
    *net = ur_treenet_new(ps, "tree", &tc, &rng);
    ur_optim_config oc = ur_optim_defaults(strcmp(cfg->optim, "adam") ? UR_OPTIM_ADAGRAD : UR_OPTIM_ADAM, cfg->lr);
    oc.weight_decay = cfg->wd;
    *opt = *net ? ur_optim_new(ps, &oc) : NULL;
    if (!*net || !*opt || !tape) {
        fprintf(stderr, "treenet: setup failed: %s\n", ur_last_error());
        return 0;
    }
    if (ck && !cli_load_training(ck, c->load, "treenet", ps, cfg->eval ? NULL : *opt, NULL)) /* --eval: weights */
        return 0;
    if (dist_cli_sync("treenet", ps) != 0) return 0;
    printf("model: %s, H %d, embeddings %d, %s task, %zu parameters\n", ur_tree_cell_name(cell), cfg->dim,
           tc.emb_dim, cfg->task, ur_paramset_numel(ps));
    return 1;
}

/* ---- the program ---- */

int main(int argc, char **argv) {
    cli_common c;
    cli_common_defaults(&c);
    config cfg;
    cli_opt opts[MAX_FLAGS];
    int n_opts = flag_table(&cfg, &c, opts);
    ur_ckpt *ck = NULL;
    int r = cli_start(argc, argv, "treenet", ABOUT, &c, opts, n_opts, STORED, &ck);
    if (r >= 0) return r;
    if (dist_cli_start("treenet") != 0) return 1; /* under mpirun: one process per rank */
    ur_tree_cell cell;
    if (settle(&cfg, ck, &cell) != 0) return 2;
    int binary = !strcmp(cfg.task, "binary"), label_map[5]; /* label -> class */
    for (int l = 0; l < 5; l++) label_map[l] = binary ? ur_sst_binary_label(l) : l; /* binary: 0-1 -> 0, 3-4 -> 1 */

    /* ---- data ---- */
    data d = {0};
    int ok = load_data(&d, &cfg, ck, c.load, binary);

    /* ---- the model and its optimizer (a checkpoint's weights with --load) ---- */
    ur_paramset *ps = ur_paramset_new();
    ur_tape *tape = cli_tape_new(&c);
    ur_treenet *net = NULL;
    ur_optim *opt = NULL;
    ok = ok && model_setup(&net, &opt, ps, tape, &cfg, cell, binary, ur_vocab_size(d.vocab), &c, ck);
    if (ok && cfg.eval) { /* score a saved model, no training */
        ok = eval_only(net, tape, d.dev_tb, binary, label_map, cfg.eval, c.json);
        goto done;
    }

    /* ---- training: shuffled batches of trees, cosine learning rate ---- */
    if (ok && (c.dot || c.print_tape || c.grad_report)) inspect_step(net, ps, tape, d.train[0], label_map, &c);
    tree_batches batches = {0};
    ok = ok && batches_init(&batches, d.train, d.n_train, cfg.batch, c.seed);
    long per_epoch = ok ? batches.per_epoch : 1, total = per_epoch * cfg.epochs;
    run_stats run = {.first = ok ? (long)ur_optim_step_count(opt) : 0, .first_loss = NAN, .last_loss = NAN};
    run.last = c.steps > 0 && c.steps < total ? c.steps : total;
    run.losses = ok ? calloc((size_t)(run.last > run.first ? run.last - run.first : 1), sizeof *run.losses) : NULL;
    ok = ok && run.losses;
    ur_lr_schedule sched = ur_lr_cosine(cfg.lr, cfg.lr * cfg.lr_final, total);
    double started = cli_now();
    cli_meter meter = {0, 0};
    score dev = {NAN, NAN, NAN, NAN, 0, 0, 0};
    if (ok) cli_progress_start(run.first);
    for (long step = run.first; ok && step < run.last; step++) {
        int B = batches_next(&batches, step, run.first, &run.nodes);
        /* this rank's trees; a rank without any (a short last batch) runs one tree
         * with weight 0, so that every rank takes part in the mean */
        int lo, Bn = dist_cli_share(B, &lo);
        double weight = counted_nodes(batches.batch + lo, Bn, label_map, cfg.root_only);
        const ur_tree **mine = Bn ? batches.batch + lo : batches.batch;
        int n_mine = Bn ? Bn : 1;
        ur_optim_zero_grad(opt);
        double t0 = cli_now(); /* the graph's time: forward and backward, no optimizer */
        ur_tape_reset(tape);
        ur_node *logits = batch_logits(net, tape, mine, n_mine, (uint64_t)c.seed * 1000003u + (uint64_t)step,
                                       cfg.no_batching, batches.parts);
        ur_node *loss = ur_treenet_loss(net, tape, logits, mine, n_mine, label_map, 5);
        if (ur_backward(tape, loss) != UR_OK) {
            fprintf(stderr, "treenet: %s\n", ur_tape_error(tape) ? ur_tape_errmsg(tape) : ur_last_error());
            ok = 0;
            break;
        }
        run.graph_s += cli_now() - t0;
        double l = ur_node_item(loss); /* then the mean over the ranks, weighted by their counted nodes */
        if (dist_cli_reduce("treenet", ps, weight, &l, NULL) != 0) {
            ok = 0;
            break;
        }
        ur_optim_set_lr(opt, ur_lr_at(&sched, step));
        if ((cfg.clip > 0 && ur_clip_grad_norm(ps, cfg.clip, NULL) != UR_OK) || ur_optim_step(opt) != UR_OK) {
            fprintf(stderr, "treenet: step %ld: %s\n", step + 1, ur_last_error());
            ok = 0;
            break;
        }
        run.losses[step - run.first] = l;
        if (step == run.first) run.first_loss = l;
        cli_meter_add(&meter, l);
        if ((step + 1) % 20 == 0 || step + 1 == run.last) { /* the progress line: mean loss since the last one */
            run.last_loss = cli_meter_take(&meter);
            cli_progress(step + 1, run.last, run.last_loss, (double)run.nodes / (cli_now() - started), started);
        }
        if ((step + 1) % per_epoch == 0 && step + 1 < run.last && dist_cli_rank0()) /* end of an epoch: dev scores */
            dev = epoch_report(net, tape, d.dev_tb, binary, label_map, &run, (step + 1) / per_epoch);
    }
    cli_progress_end();
    run.seconds = cli_now() - started;

    /* ---- save, evaluate ---- */
    if (ok && c.save && dist_cli_rank0()) ok = save(c.save, ps, opt, d.vocab, opts, n_opts);
    if (ok && dist_cli_rank0()) {
        dev = dev_pass(net, tape, d.dev_tb, binary, label_map, &run);
        print_score("dev", &dev, binary);
        print_speed(&run);
    }
    if (ok && c.json && dist_cli_rank0()) print_json(&cfg, cell, &run, &dev, opt, ps);
    free(run.losses);
    batches_free(&batches);
done:
    ur_tape_free(tape);
    ur_optim_free(opt);
    ur_treenet_free(net);
    ur_paramset_free(ps);
    data_free(&d);
    ur_ckpt_close(ck);
    ur_kernel_free_buffers();
    return dist_cli_end(ok ? 0 : 1);
}
