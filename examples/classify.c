/* classify - sentence sentiment with a recurrent encoder and a pooling layer (SST).
 *
 *   classify --train sst/train.txt --dev sst/dev.txt                 binary: negative / positive
 *   classify --task fine --pool mean ...                             five classes, 0 .. 4
 *   classify --load model.safetensors --eval sst/dev.txt             score a saved model
 *
 * The words of a tree's leaves, left to right, are the sentence; the root's label is
 * its class (binary task: 0-1 negative, 3-4 positive, 2 dropped). For a batch of B
 * sentences padded to T words (mask m_t,b = 1 for a real word):
 *     x_t = E[word_t]                         (D) embedding, lowercased words
 *     h_t = BiLSTM or BiGRU(x)                (2H) (one direction with --bidir 0)
 *     s   = pool(h)                           one vector per sentence:
 *           last    forward direction's state after the last real word     (H)
 *           bilast  [forward's state after the last word; backward's after the first]  (2H)
 *           mean    sum_t m_t h_t / length                                  (2H)
 *           max     max_t (h_t + (m_t - 1) * 1e4), per unit: padding never wins  (2H)
 *     y   = s W_out + b_out                   class scores, L = cross_entropy(y, label)
 * With --phrases every labelled subtree (a phrase) is a training example too: SST
 * labels every node, and these extra examples teach the encoder the sentiment of parts.
 *
 * --save keeps the settings and the vocabulary with the weights, so --load alone
 * rebuilds the model (--eval), or continues training exactly where it stopped
 * (--steps N stops at step N counted from the start of training).
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dist_cli.h"
#include "epochs.h"
#include "rnn_flags.h"
#include "unroll.h"
#include "ur_checkpoint.h"
#include "ur_init.h"
#include "ur_optim.h"
#include "ur_rnn.h"

enum { MAX_WORD = 48 };

typedef struct config {
    const char *train, *dev, *eval, *task, *cell, *pool;
    int bidir, embed, hidden, layers, phrases, min_count, batch, epochs, limit;
    double dropout, word_dropout, lr, clip;
    long log_every;
    rnn_flags rf; /* --init, --forget-bias, --variational, --clip-value */
} config;

static const char *const STORED[] = {"--train", "--dev", "--task", "--cell", "--pool", "--bidir", "--embed",
                                     "--hidden", "--layers", "--dropout", "--word-dropout", "--phrases",
                                     "--min-count", "--batch", "--epochs", "--limit", "--lr", "--clip",
                                     "--seed", CLI_ADDED_LATER, RNN_FLAG_NAMES, NULL};

typedef enum pool_kind { POOL_LAST, POOL_BILAST, POOL_MEAN, POOL_MAX } pool_kind;

/* What --task, --cell and --pool take (POOLS in the order of pool_kind). */
static const char *const TASKS[] = {"binary", "fine", NULL}, *const CELLS[] = {"lstm", "gru", "gru_reset_before", NULL};
static const char *const POOLS[] = {"last", "bilast", "mean", "max", NULL};

/* ---- examples: word sequences with a class ---- */

/* The class of an SST label for the task; -1 drops the example. */
static int class_of(int label, int binary) { return binary ? ur_sst_binary_label(label) : label; }

typedef struct examples {
    int n, cap;
    const int **words; /* n: pointers into a tree's word_ids */
    int *lens, *labels;
} examples;

static void examples_free(examples *e) {
    free(e->words);
    free(e->lens);
    free(e->labels);
}

static int examples_add(examples *e, const int *words, int len, int label) {
    if (e->n == e->cap) {
        int cap = e->cap ? 2 * e->cap : 1024;
        const int **w = realloc(e->words, (size_t)cap * sizeof *w);
        if (w) e->words = w;
        int *l = realloc(e->lens, (size_t)cap * sizeof *l);
        if (l) e->lens = l;
        int *y = realloc(e->labels, (size_t)cap * sizeof *y);
        if (y) e->labels = y;
        if (!w || !l || !y) return 0;
        e->cap = cap;
    }
    e->words[e->n] = words;
    e->lens[e->n] = len;
    e->labels[e->n++] = label;
    return 1;
}

/* The lowercased form of a word. */
static void normalize(const char *w, char *out) {
    int n = 0;
    for (; w[n] && n < MAX_WORD; n++) out[n] = (char)tolower((unsigned char)w[n]);
    out[n] = '\0';
}

/* Sets every tree's word_ids from the vocabulary (unknown words: <unk>). */
static void set_word_ids(ur_treebank *tb, const ur_vocab *v) {
    for (int i = 0; i < tb->n_trees; i++)
        for (int k = 0; k < tb->trees[i].n_words; k++) {
            char w[MAX_WORD + 1];
            normalize(tb->trees[i].words[k], w);
            tb->trees[i].word_ids[k] = ur_vocab_id(v, w);
        }
}

/* The root of each of the first n trees (and with phrases, every labelled node: its
 * leaves are a contiguous span of the sentence) as examples. */
static int examples_make(examples *e, const ur_treebank *tb, int n, int binary, int phrases) {
    memset(e, 0, sizeof *e);
    int *lo = NULL, *hi = NULL, cap = 0, ok = 1;
    for (int i = 0; ok && i < n; i++) {
        const ur_tree *t = &tb->trees[i];
        if (!phrases) {
            int y = class_of(t->label, binary);
            if (y >= 0) ok = examples_add(e, t->word_ids, t->n_words, y);
            continue;
        }
        if (t->n_nodes > cap) {
            cap = t->n_nodes;
            free(lo);
            free(hi);
            lo = malloc((size_t)cap * sizeof *lo);
            hi = malloc((size_t)cap * sizeof *hi);
            if (!lo || !hi) {
                ok = 0;
                break;
            }
        }
        for (int k = 0; ok && k < t->n_nodes; k++) { /* post-order: children come first */
            const ur_tree_node *nd = &t->nodes[k];
            if (nd->n_children == 0) { /* a leaf: its own word */
                lo[k] = nd->word;
                hi[k] = nd->word + 1;
            } else { /* from its first child's first word to its last child's last */
                lo[k] = lo[t->children[nd->first_child]];
                hi[k] = hi[t->children[nd->first_child + nd->n_children - 1]];
            }
            int y = class_of(nd->label, binary);
            if (y >= 0) ok = examples_add(e, t->word_ids + lo[k], hi[k] - lo[k], y);
        }
    }
    free(lo);
    free(hi);
    return ok;
}

/* ---- the model ---- */
typedef struct classifier {
    ur_paramset *ps;
    ur_param *emb;           /* (V, D) */
    ur_rnn *rnn;             /* LSTM or GRU, one or two directions */
    ur_param *W_out, *b_out; /* (P, C), (C) */
    pool_kind pool;
    double dropout;
} classifier;

static int classifier_build(classifier *m, const config *cfg, int n_words, int n_classes, ur_rng *rng,
                            uint64_t seed) {
    m->pool = (pool_kind)cli_choice_index(POOLS, cfg->pool);
    m->dropout = cfg->dropout;
    m->ps = ur_paramset_new();
    if (!m->ps) return 0;
    m->emb = ur_paramset_add(m->ps, "embed.weight", 2, (int[]){n_words, cfg->embed});
    if (!m->emb || ur_init_normal(&m->emb->value, rng, 0.0, 0.1) != UR_OK) return 0;
    static const ur_rnn_kind KINDS[] = {UR_RNN_LSTM, UR_RNN_GRU, UR_RNN_GRU_RESET_BEFORE}; /* CELLS' order */
    ur_rnn_config rc = ur_rnn_defaults(KINDS[cli_choice_index(CELLS, cfg->cell)], cfg->embed, cfg->hidden);
    rc.num_layers = cfg->layers;
    rc.bidirectional = cfg->bidir;
    rc.dropout = rc.dropout_input = cfg->dropout;
    rc.seed = seed;
    rnn_flags_apply(&cfg->rf, &rc);
    m->rnn = ur_rnn_new(m->ps, "encoder", &rc);
    int P = m->pool == POOL_LAST ? cfg->hidden : (cfg->bidir ? 2 : 1) * cfg->hidden;
    m->W_out = ur_paramset_add(m->ps, "out.weight", 2, (int[]){P, n_classes});
    m->b_out = ur_paramset_add(m->ps, "out.bias", 1, (int[]){n_classes});
    return m->rnn && m->W_out && m->b_out && ur_init_xavier_uniform(&m->W_out->value, rng, 1.0) == UR_OK;
}

static void classifier_free(classifier *m) {
    ur_rnn_free(m->rnn);
    ur_paramset_free(m->ps);
}

/* Pools the encoder's outputs h (T, B, P) into one row per sentence (B, P'). */
static ur_node *pool(ur_tape *t, const classifier *m, ur_node *h, const ur_rnn_final *fin, const ur_padded *p,
                     ur_real *scratch) {
    int T = p->T, B = p->B, D = ur_rnn_directions(m->rnn), top = fin->n - D; /* top layer's forward state */
    switch (m->pool) {
    case POOL_LAST: return fin->h[top];
    case POOL_BILAST: return ur_concat(t, 2, (ur_node *[]){fin->h[top], fin->h[top + 1]}, 1);
    case POOL_MEAN: /* outputs are zero at padding: sum over time, divide by the length */
        for (int b = 0; b < B; b++) scratch[b] = (ur_real)1 / (ur_real)p->lens[b];
        return ur_mul(t, ur_sum_axis(t, h, 0, 0), ur_input_data(t, 2, (int[]){B, 1}, scratch));
    case POOL_MAX: /* -1e4 at padding, so a real step always wins the max */
        for (int i = 0; i < T * B; i++) scratch[i] = (p->mask[i] - 1) * (ur_real)1e4;
        return ur_max_axis(t, ur_add(t, h, ur_input_data(t, 3, (int[]){T, B, 1}, scratch)), 0, 0);
    }
    return NULL;
}

/* Class scores (B, C) of a padded batch of word ids. *h gets the encoder outputs. */
static ur_node *classifier_forward(ur_tape *t, classifier *m, const ur_padded *p, const int *ids, int training,
                                   uint64_t seed, ur_real *scratch, ur_node **h) {
    int T = p->T, B = p->B;
    ur_node *x = ur_gather(t, ur_param_node(t, m->emb), ids, T * B); /* (T*B, D) */
    x = ur_reshape(t, x, 3, (int[]){T, B, ur_node_dim(x, 1)});
    ur_rnn_args args = {.mask = p->mask, .training = training, .seed = seed};
    ur_rnn_final fin;
    *h = ur_rnn_forward(m->rnn, t, x, &args, &fin); /* (T, B, P) */
    ur_node *s = *h ? pool(t, m, *h, &fin, p, scratch) : NULL;
    if (training && m->dropout > 0) s = ur_dropout(t, s, (ur_real)m->dropout, seed ^ 0xc1a55ULL);
    return ur_linear(t, s, ur_param_node(t, m->W_out), ur_param_node(t, m->b_out));
}

/* ---- evaluation ---- */
typedef struct score {
    double loss, acc;
    long n;
} score;

static score evaluate(classifier *m, ur_tape *t, const examples *e, ur_real *scratch, int max_batch) {
    score sc = {0, 0, 0};
    int C = m->W_out->value.shape.dims[1], was = ur_tape_set_grad_enabled(t, 0);
    long correct = 0;
    for (int k = 0; k < e->n; k += max_batch) {
        int B = e->n - k < max_batch ? e->n - k : max_batch;
        ur_padded *p = NULL;
        ur_node *h, *loss = NULL, *y = NULL;
        ur_tape_reset(t);
        if (ur_batch_pad((const int *const *)e->words + k, e->lens + k, NULL, B, 0, 0, &p) == UR_OK) {
            y = classifier_forward(t, m, p, p->ids, 0, 0, scratch, &h);
            loss = ur_cross_entropy(t, y, e->labels + k, NULL);
        }
        ur_padded_free(p);
        if (!loss) {
            fprintf(stderr, "classify: %s\n", ur_tape_error(t) ? ur_tape_errmsg(t) : ur_last_error());
            sc.acc = sc.loss = NAN;
            break;
        }
        const ur_real *v = ur_node_cdata(y);
        for (int b = 0; b < B; b++) {
            int best = 0;
            for (int c = 1; c < C; c++)
                if (v[b * C + c] > v[b * C + best]) best = c;
            correct += best == e->labels[k + b];
        }
        sc.loss += ur_node_item(loss) * B;
        sc.n += B;
    }
    ur_tape_set_grad_enabled(t, was);
    if (sc.n && isfinite(sc.loss)) {
        sc.loss /= (double)sc.n;
        sc.acc = (double)correct / (double)sc.n;
    } else sc.loss = sc.acc = NAN; /* an error, or nothing to score */
    return sc;
}

/* ---- training ---- */

/* What a training batch needs: the model, the data, and the buffers the tape reads. */
typedef struct trainer {
    classifier *m;
    const examples *train;
    const ur_vocab *vocab;
    const config *cfg;
    ur_real *scratch; /* max_len * max_batch */
    ur_padded *p;     /* the current batch: the tape reads its mask */
    int *ids, *labels; /* its word ids after word dropout, its classes */
} trainer;

/* Records the loss of the training examples pick[0..B) on t (training mode, `seed`
 * for dropout); *h: the encoder outputs, for --grad-report; counts the real words
 * into *tokens. NULL after printing an error. */
static ur_node *batch_loss(trainer *tr, ur_tape *t, const int *pick, int B, uint64_t seed, ur_node **h,
                           long *tokens) {
    ur_padded_free(tr->p);
    tr->p = NULL;
    for (int b = 0; b < B; b++) tr->labels[b] = tr->train->labels[pick[b]];
    if (ur_batch_pad((const int *const *)tr->train->words, tr->train->lens, pick, B, 0, 0, &tr->p) != UR_OK) {
        fprintf(stderr, "classify: %s\n", ur_last_error());
        return NULL;
    }
    cli_drop_words(tr->p, tr->vocab, tr->cfg->word_dropout, seed ^ 0x77ULL, tr->ids);
    for (int i = 0; i < tr->p->T * B; i++) *tokens += tr->p->mask[i] != 0;
    return ur_cross_entropy(t, classifier_forward(t, tr->m, tr->p, tr->ids, 1, seed, tr->scratch, h), tr->labels,
                            NULL);
}

static ur_treebank *read_trees(const char *path) {
    ur_treebank *tb = NULL;
    if (ur_treebank_read_file(path, 4, 0, &tb) != UR_OK) fprintf(stderr, "classify: %s\n", ur_last_error());
    return tb;
}

/* ---- settings ---- */

enum { MAX_FLAGS = 40 };
static const char ABOUT[] = "classify: sentence sentiment (SST) with a BiLSTM/BiGRU encoder and pooling";

/* Sets the defaults and lists the flags (at most MAX_FLAGS): returns their count. */
static int flag_table(config *cfg, cli_common *c, cli_opt *opts) {
    *cfg = (config){.task = "binary", .cell = "lstm", .pool = "max", .bidir = 1, .embed = 128, .hidden = 128,
                    .layers = 1, .phrases = 0, .min_count = 1, .batch = 32, .epochs = 6, .dropout = 0.5,
                    .word_dropout = 0.25, .lr = 2e-3, .clip = 5, .log_every = 20,
                    .rf = RNN_FLAGS_DEFAULT};
    const cli_opt table[] = {
        CLI_COMMON_OPTS(*c),
        CLI_TEXT("--train", &cfg->train, "training trees (SST train.txt)"),
        CLI_TEXT("--dev", &cfg->dev, "development trees (accuracy after each epoch)"),
        CLI_TEXT("--eval", &cfg->eval, "score the --load model on this tree file (no training)"),
        CLI_CHOICE("--task", &cfg->task, TASKS, "drop label 2, or 5 classes (default binary)"),
        CLI_CHOICE("--cell", &cfg->cell, CELLS, "recurrent cell (default lstm)"),
        CLI_INT("--bidir", &cfg->bidir, 0, 1, "1: bidirectional encoder, 0: forward only (default 1)"),
        CLI_CHOICE("--pool", &cfg->pool, POOLS, "pooling over time (default max)"),
        CLI_INT("--embed", &cfg->embed, 1, 4096, "word embedding size (default 128)"),
        CLI_INT("--hidden", &cfg->hidden, 1, 4096, "units per direction (default 128)"),
        CLI_INT("--layers", &cfg->layers, 1, UR_RNN_MAX_LAYERS, "stacked layers (default 1)"),
        CLI_REAL_BELOW("--dropout", &cfg->dropout, 0, 1, "dropout on embeddings, between layers and on the pooled "
                                                        "vector (0.5)"),
        CLI_REAL("--word-dropout", &cfg->word_dropout, 0, 1000, "a: a word seen n times becomes <unk> w.p. "
                                                               "a/(a+n) (0.25)"),
        CLI_BOOL("--phrases", &cfg->phrases, "also train on every labelled phrase (subtree)"),
        CLI_INT("--min-count", &cfg->min_count, 0, 1000000000, "words seen fewer times are <unk> (default 1)"),
        CLI_INT("--batch", &cfg->batch, 1, 4096, "examples per batch (default 32)"),
        CLI_INT("--epochs", &cfg->epochs, 0, 1000000, "passes over the training data (default 6)"),
        CLI_INT("--limit", &cfg->limit, 0, 1000000000, "use only the first N training trees"),
        CLI_REAL("--lr", &cfg->lr, 0, 10, "Adam learning rate, cosine-decayed to lr/10 (default 2e-3)"),
        CLI_REAL("--clip", &cfg->clip, 0, 1e6, "clip the global gradient norm (default 5, 0: off)"),
        CLI_LONG("--log-every", &cfg->log_every, 1, 1000000000, "progress line every N steps (default 20)"),
        RNN_FLAG_OPTS(cfg->rf),
    };
    _Static_assert(sizeof table / sizeof table[0] <= MAX_FLAGS, "MAX_FLAGS holds the table");
    memcpy(opts, table, sizeof table);
    return (int)(sizeof table / sizeof table[0]);
}

/* The rules between flags; 0, or 2 after printing the usage error. */
static int check_flags(const config *cfg, const ur_ckpt *ck) {
    const char *problem = NULL;
    if (!strcmp(cfg->pool, "bilast") && !cfg->bidir) problem = "--pool bilast needs --bidir 1";
    else if (cfg->eval && !ck) problem = "--eval needs a model (--load)";
    else if (!cfg->eval && !cfg->train) problem = "give --train FILE (and --dev FILE), or --load MODEL --eval FILE";
    if (problem) fprintf(stderr, "classify: %s (see --help)\n", problem);
    return problem ? 2 : 0;
}

/* ---- data: the tree files, the vocabulary, the examples of the task ---- */
typedef struct data {
    ur_treebank *train_tb, *dev_tb; /* train_tb: NULL with --eval; dev_tb: --eval's file then */
    ur_vocab *vocab;
    examples train, dev;
} data;

static void data_free(data *d) {
    examples_free(&d->train);
    examples_free(&d->dev);
    ur_vocab_free(d->vocab);
    ur_treebank_free(d->train_tb);
    ur_treebank_free(d->dev_tb);
}

/* Reads the files; the vocabulary comes from the checkpoint ck, or from the lowercased
 * words of the training sentences. 1, or 0 after printing an error. */
static int load_data(data *d, const config *cfg, const ur_ckpt *ck, const char *ck_path, int binary) {
    const char *dev_path = cfg->eval ? cfg->eval : cfg->dev;
    d->train_tb = cfg->eval ? NULL : read_trees(cfg->train);
    d->dev_tb = dev_path && dev_path[0] ? read_trees(dev_path) : NULL;
    if ((!cfg->eval && !d->train_tb) || (dev_path && dev_path[0] && !d->dev_tb)) return 0;
    int n_train = d->train_tb ? (cfg->limit > 0 && cfg->limit < d->train_tb->n_trees ? cfg->limit
                                                                                    : d->train_tb->n_trees) : 0;
    if (ck) {
        d->vocab = cli_load_vocab(ck, ck_path, "classify");
    } else {
        ur_vocab *counts = ur_vocab_new(0);
        for (int i = 0; counts && i < n_train; i++)
            for (int k = 0; k < d->train_tb->trees[i].n_words; k++) {
                char w[MAX_WORD + 1];
                normalize(d->train_tb->trees[i].words[k], w);
                ur_vocab_add(counts, w);
            }
        if (counts) ur_vocab_build(counts, cfg->min_count, UR_VOCAB_PAD | UR_VOCAB_UNK, &d->vocab);
        ur_vocab_free(counts);
    }
    if (!d->vocab) return 0;
    if (d->train_tb) {
        set_word_ids(d->train_tb, d->vocab);
        if (!examples_make(&d->train, d->train_tb, n_train, binary, cfg->phrases)) return 0;
    }
    if (d->dev_tb) {
        set_word_ids(d->dev_tb, d->vocab);
        if (!examples_make(&d->dev, d->dev_tb, d->dev_tb->n_trees, binary, 0)) return 0;
    }
    if (d->train_tb && d->train.n == 0) {
        fprintf(stderr, "classify: %s: no training examples for the %s task\n", cfg->train, cfg->task);
        return 0;
    }
    if (d->train_tb)
        printf("classify: %s, task %s: %d training examples%s, %d words in the vocabulary\n", cfg->train, cfg->task,
               d->train.n, cfg->phrases ? " (sentences and phrases)" : "", ur_vocab_size(d->vocab));
    return 1;
}

/* ---- scores ---- */

/* The development scores, kept in the run (latest and best accuracy). */
static score dev_pass(classifier *m, ur_tape *tape, const examples *dev, ur_real *scratch, int max_batch,
                      cli_run *run) {
    score sc = evaluate(m, tape, dev, scratch, max_batch);
    run->dev_acc = sc.acc;
    run->dev_loss = sc.loss;
    if (sc.acc > run->best_dev) run->best_dev = sc.acc;
    return sc;
}


/* The scores of a saved model on one file, printed (and as JSON). 1, or 0 when there was nothing to score. */
static int eval_only(classifier *m, ur_tape *tape, const examples *e, ur_real *scratch, int max_batch,
                     const config *cfg, int json) {
    score sc = evaluate(m, tape, e, scratch, max_batch);
    printf("%s: %ld sentences, accuracy %.2f%%, loss %.4f\n", cfg->eval, sc.n, 100 * sc.acc, sc.loss);
    if (json) {
        cli_json j;
        cli_json_begin(&j);
        cli_json_str(&j, "example", "classify");
        cli_json_str(&j, "file", cfg->eval);
        cli_json_num(&j, "accuracy", sc.acc);
        cli_json_num(&j, "loss", sc.loss);
        cli_json_int(&j, "examples", sc.n);
        cli_json_end(&j);
    }
    if (!isfinite(sc.acc))
        fprintf(stderr, "classify: %s: no sentences to score for the %s task\n", cfg->eval, cfg->task);
    return isfinite(sc.acc);
}

/* ---- the start and the end of a run ---- */

/* The longest sentence of the training and development examples (at least 1). */
static int max_length(const data *d) {
    int max_len = 1;
    for (int i = 0; i < d->train.n; i++) max_len = d->train.lens[i] > max_len ? d->train.lens[i] : max_len;
    for (int i = 0; i < d->dev.n; i++) max_len = d->dev.lens[i] > max_len ? d->dev.lens[i] : max_len;
    return max_len;
}

/* The classifier and Adam, with --load the checkpoint's weights, optimizer state and
 * RNG; every rank starts from rank 0's weights. Prints the model's size. buffers: 0
 * when the tape or the scratch rows could not be made (the setup fails). 1, or 0
 * after printing an error. */
static int model_setup(classifier *m, ur_optim **opt, const config *cfg, int buffers, int n_words, int n_classes,
                       const cli_common *c, ur_ckpt *ck, ur_rng *rng) {
    ur_optim_config oc = ur_optim_defaults(UR_OPTIM_ADAM, cfg->lr);
    if (!buffers || !classifier_build(m, cfg, n_words, n_classes, rng, (uint64_t)c->seed) ||
        !(*opt = ur_optim_new(m->ps, &oc))) {
        fprintf(stderr, "classify: setup failed: %s\n", ur_last_error());
        return 0;
    }
    if (ck && !cli_load_training(ck, c->load, "classify", m->ps, *opt, rng)) return 0;
    if (dist_cli_sync("classify", m->ps) != 0) return 0;
    printf("model: embed %d, %s%s %d x %d, pool %s, %zu parameters\n", cfg->embed, cfg->bidir ? "bi" : "", cfg->cell,
           cfg->layers, cfg->hidden, cfg->pool, ur_paramset_numel(m->ps));
    return 1;
}

/* The development scores at the end of an epoch, printed. */
static void epoch_report(classifier *m, ur_tape *tape, const examples *dev, ur_real *scratch, int max_batch,
                         cli_run *run, long epoch) {
    score sc = dev_pass(m, tape, dev, scratch, max_batch, run);
    cli_progress_end();
    printf("epoch %ld: dev accuracy %.2f%%, loss %.4f\n", epoch, 100 * sc.acc, sc.loss);
}

static void print_json(const cli_run *run, const ur_optim *opt, const classifier *m, const config *cfg) {
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "example", "classify");
    cli_json_str(&j, "task", cfg->task);
    cli_json_str(&j, "pool", cfg->pool);
    cli_run_json(&j, run, opt, m->ps);
    cli_json_end(&j);
}

/* ---- the program ---- */
int main(int argc, char **argv) {
    cli_common c;
    cli_common_defaults(&c);
    config cfg;
    cli_opt opts[MAX_FLAGS];
    int n_opts = flag_table(&cfg, &c, opts);
    ur_ckpt *ck = NULL;
    int r = cli_start(argc, argv, "classify", ABOUT, &c, opts, n_opts, STORED, &ck);
    if (r >= 0) return r;
    if (dist_cli_start("classify") != 0) return 1; /* under mpirun: one process per rank */
    if (check_flags(&cfg, ck) != 0) {
        ur_ckpt_close(ck);
        return 2;
    }
    int binary = !strcmp(cfg.task, "binary"), n_classes = binary ? 2 : 5;

    /* ---- data ---- */
    data d = {0};
    int ok = load_data(&d, &cfg, ck, c.load, binary);

    /* ---- the model and Adam (a checkpoint's weights, optimizer and RNG with --load) ---- */
    ur_rng rng;
    ur_rng_seed(&rng, (uint64_t)c.seed);
    classifier m = {0};
    ur_optim *opt = NULL;
    ur_tape *tape = cli_tape_new(&c);
    int max_len = max_length(&d), max_batch = cfg.batch > 64 ? cfg.batch : 64; /* the scratch rows the pooling needs */
    ur_real *scratch = malloc((size_t)max_len * (size_t)max_batch * sizeof *scratch);
    ok = ok && model_setup(&m, &opt, &cfg, tape && scratch, ur_vocab_size(d.vocab), n_classes, &c, ck, &rng);
    if (ok && cfg.eval) { /* score a saved model, no training */
        ok = eval_only(&m, tape, &d.dev, scratch, max_batch, &cfg, c.json);
        goto done;
    }

    /* ---- training: bucketed batches, a new order every epoch, cosine learning rate ---- */
    trainer tr = {&m, &d.train, d.vocab, &cfg, scratch, NULL,
                  malloc((size_t)max_len * (size_t)max_batch * sizeof(int)), malloc((size_t)max_batch * sizeof(int))};
    cli_batcher batches;
    cli_batcher_init(&batches, d.train.lens, d.train.n, cfg.batch, &rng);
    long total = batches.per_epoch * cfg.epochs;
    cli_run run;
    int have_run = cli_run_start(&run, ok ? (long)ur_optim_step_count(opt) : 0, c.steps, total);
    if (ok && (!tr.ids || !tr.labels || !have_run)) {
        fprintf(stderr, "classify: out of memory\n");
        ok = 0;
    }
    ur_lr_schedule sched = ur_lr_cosine(cfg.lr, cfg.lr / 10, total);
    cli_updater up = {"classify", &c, tape, m.ps, opt, &sched, &cfg.rf, cfg.clip};
    double started = cli_now();
    cli_meter meter = {0, 0};
    if (ok) cli_progress_start(run.first);
    for (long step = run.first; ok && step < run.last; step++) {
        const int *pick;
        int B = cli_batcher_next(&batches, step, &pick, "classify");
        if (B < 0) {
            ok = 0;
            break;
        }
        uint64_t seed = (uint64_t)c.seed * 1000003u + (uint64_t)step; /* new dropout masks each step */
        ur_tape_reset(tape);
        int lo, Bn = dist_cli_share(B, &lo); /* this rank's sentences pick[lo .. lo + Bn) */
        long before = run.tokens;
        ur_node *h = NULL, *loss = Bn ? batch_loss(&tr, tape, pick + lo, Bn, seed, &h, &run.tokens) : NULL;
        /* the mean over the ranks: the loss is a mean over sentences, so each rank weighs its sentences */
        double lv, tokens = (double)(run.tokens - before);
        if (!cli_update(&up, step, Bn > 0, step == run.first, loss, h, Bn, &lv, &tokens)) {
            ok = 0;
            break;
        }
        run.tokens = before + (long)tokens;
        cli_meter_add(&meter, run.losses[step - run.first] = lv);
        if ((step + 1) % cfg.log_every == 0 || step + 1 == run.last) /* mean loss since the last line */
            cli_progress(step + 1, run.last, cli_meter_take(&meter), (double)run.tokens / (cli_now() - started),
                         started);
        if ((step + 1) % batches.per_epoch == 0 && d.dev.n > 0 && step + 1 < run.last && dist_cli_rank0())
            epoch_report(&m, tape, &d.dev, scratch, max_batch, &run, (step + 1) / batches.per_epoch); /* rank 0 */
    }
    cli_progress_end();
    run.seconds = cli_now() - started;
    ur_padded_free(tr.p);
    free(tr.ids);
    free(tr.labels);

    /* ---- save, evaluate ---- */
    if (ok && c.save) {
        ok = cli_save_with_vocab(c.save, "classify", m.ps, opt, d.vocab, cli_batcher_rng_to_save(&batches, run.last),
                                 opts, n_opts, STORED);
        if (ok) printf("saved %s (step %ld)\n", c.save, (long)ur_optim_step_count(opt));
    }
    if (ok && d.dev.n && dist_cli_rank0()) {
        score sc = dev_pass(&m, tape, &d.dev, scratch, max_batch, &run);
        printf("dev (%s): %ld sentences, accuracy %.2f%%, loss %.4f\n", cfg.dev, sc.n, 100 * sc.acc, sc.loss);
    }
    if (ok && c.json && dist_cli_rank0()) print_json(&run, opt, &m, &cfg);
    free(run.losses);
    cli_batcher_free(&batches);
done:
    free(scratch);
    ur_optim_free(opt);
    classifier_free(&m);
    ur_tape_free(tape);
    data_free(&d);
    ur_ckpt_close(ck);
    ur_kernel_free_buffers();
    return dist_cli_end(ok ? 0 : 1);
}
