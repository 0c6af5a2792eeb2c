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
} config;

static const char *const STORED[] = {"--train", "--dev", "--task", "--cell", "--pool", "--bidir", "--embed",
                                     "--hidden", "--layers", "--dropout", "--word-dropout", "--phrases",
                                     "--min-count", "--batch", "--epochs", "--limit", "--lr", "--clip",
                                     "--seed", NULL};

typedef enum pool_kind { POOL_LAST, POOL_BILAST, POOL_MEAN, POOL_MAX } pool_kind;

static int pool_of(const char *s) {
    static const char *const names[] = {"last", "bilast", "mean", "max"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

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
    m->pool = (pool_kind)pool_of(cfg->pool);
    m->dropout = cfg->dropout;
    m->ps = ur_paramset_new();
    if (!m->ps) return 0;
    m->emb = ur_paramset_add(m->ps, "embed.weight", 2, (int[]){n_words, cfg->embed});
    if (!m->emb || ur_init_normal(&m->emb->value, rng, 0.0, 0.1) != UR_OK) return 0;
    ur_rnn_config rc = ur_rnn_defaults(strcmp(cfg->cell, "gru") ? UR_RNN_LSTM : UR_RNN_GRU, cfg->embed, cfg->hidden);
    rc.num_layers = cfg->layers;
    rc.bidirectional = cfg->bidir;
    rc.dropout = rc.dropout_input = cfg->dropout;
    rc.seed = seed;
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

/* What a training step needs (cli_task.ctx). */
typedef struct trainer {
    classifier *m;
    const examples *train, *dev;
    const ur_vocab *vocab;
    const config *cfg;
    ur_tape *tape;
    ur_real *scratch; /* max_len * max_batch */
    int max_batch;
    ur_padded *p;     /* the current batch: the tape reads its mask */
    int *ids, *labels; /* its word ids after word dropout, its classes */
} trainer;

static ur_node *train_loss(void *ctx, ur_tape *t, const int *pick, int B, uint64_t seed, ur_node **h, long *tokens) {
    trainer *tr = ctx;
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

static long dev_score(void *ctx, double *acc, double *loss) {
    trainer *tr = ctx;
    score sc = evaluate(tr->m, tr->tape, tr->dev, tr->scratch, tr->max_batch);
    *acc = sc.acc;
    *loss = sc.loss;
    return sc.n;
}

static ur_treebank *read_trees(const char *path) {
    ur_treebank *tb = NULL;
    if (ur_treebank_read_file(path, 4, 0, &tb) != UR_OK) fprintf(stderr, "classify: %s\n", ur_last_error());
    return tb;
}

int main(int argc, char **argv) {
    cli_common c;
    cli_common_defaults(&c);
    config cfg = {.task = "binary", .cell = "lstm", .pool = "max", .bidir = 1, .embed = 128, .hidden = 128,
                  .layers = 1, .phrases = 0, .min_count = 1, .batch = 32, .epochs = 6, .dropout = 0.5,
                  .word_dropout = 0.25, .lr = 2e-3, .clip = 5, .log_every = 20};
    cli_opt opts[] = {
        CLI_COMMON_OPTS(c),
        {"--train", 's', &cfg.train, "training trees (SST train.txt)"},
        {"--dev", 's', &cfg.dev, "development trees (accuracy after each epoch)"},
        {"--eval", 's', &cfg.eval, "score the --load model on this tree file (no training)"},
        {"--task", 's', &cfg.task, "binary (drop label 2) | fine (5 classes) (default binary)"},
        {"--cell", 's', &cfg.cell, "lstm | gru (default lstm)"},
        {"--bidir", 'i', &cfg.bidir, "1: bidirectional encoder, 0: forward only (default 1)"},
        {"--pool", 's', &cfg.pool, "last | bilast | mean | max over time (default max)"},
        {"--embed", 'i', &cfg.embed, "word embedding size (default 128)"},
        {"--hidden", 'i', &cfg.hidden, "units per direction (default 128)"},
        {"--layers", 'i', &cfg.layers, "stacked layers (default 1)"},
        {"--dropout", 'f', &cfg.dropout, "dropout on embeddings, between layers and on the pooled vector (0.5)"},
        {"--word-dropout", 'f', &cfg.word_dropout, "a: a word seen n times becomes <unk> w.p. a/(a+n) (0.25)"},
        {"--phrases", 'b', &cfg.phrases, "also train on every labelled phrase (subtree)"},
        {"--min-count", 'i', &cfg.min_count, "words seen fewer times are <unk> (default 1)"},
        {"--batch", 'i', &cfg.batch, "examples per batch (default 32)"},
        {"--epochs", 'i', &cfg.epochs, "passes over the training data (default 6)"},
        {"--limit", 'i', &cfg.limit, "use only the first N training trees"},
        {"--lr", 'f', &cfg.lr, "Adam learning rate, cosine-decayed to lr/10 (default 2e-3)"},
        {"--clip", 'f', &cfg.clip, "clip the global gradient norm (default 5, 0: off)"},
        {"--log-every", 'l', &cfg.log_every, "progress line every N steps (default 20)"},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    const char *about = "classify: sentence sentiment (SST) with a BiLSTM/BiGRU encoder and pooling";
    ur_ckpt *ck = NULL;
    int r = cli_start(argc, argv, "classify", about, &c, opts, n_opts, STORED, &ck);
    if (r >= 0) return r;
    if (dist_cli_start("classify") != 0) return 1;
    int binary = !strcmp(cfg.task, "binary"), n_classes = binary ? 2 : 5;
    const char *problem = NULL;
    if (!binary && strcmp(cfg.task, "fine")) problem = "--task must be binary or fine";
    else if (strcmp(cfg.cell, "lstm") && strcmp(cfg.cell, "gru")) problem = "--cell must be lstm or gru";
    else if (pool_of(cfg.pool) < 0) problem = "--pool must be last, bilast, mean or max";
    else if (!strcmp(cfg.pool, "bilast") && !cfg.bidir) problem = "--pool bilast needs --bidir 1";
    else if (cfg.eval && !ck) problem = "--eval needs a model (--load)";
    else if (!cfg.eval && !cfg.train) problem = "give --train FILE (and --dev FILE), or --load MODEL --eval FILE";
    else if (cfg.batch < 1 || cfg.embed < 1 || cfg.hidden < 1 || cfg.log_every < 1 || cfg.epochs < 0)
        problem = "--batch, --embed, --hidden and --log-every must be >= 1";
    else if (!(cfg.dropout >= 0 && cfg.dropout < 1)) problem = "--dropout must be in [0, 1)";
    if (problem) {
        fprintf(stderr, "classify: %s (see --help)\n", problem);
        ur_ckpt_close(ck);
        return 2;
    }

    /* ---- data ---- */
    const char *dev_path = cfg.eval ? cfg.eval : cfg.dev;
    ur_treebank *train_tb = cfg.eval ? NULL : read_trees(cfg.train);
    ur_treebank *dev_tb = dev_path && dev_path[0] ? read_trees(dev_path) : NULL;
    int ok = (cfg.eval || train_tb) && (!dev_path || !dev_path[0] || dev_tb);
    int n_train = train_tb ? (cfg.limit > 0 && cfg.limit < train_tb->n_trees ? cfg.limit : train_tb->n_trees) : 0;
    ur_vocab *vocab = NULL;
    if (ok && ck) {
        vocab = cli_load_vocab(ck, c.load, "classify");
    } else if (ok) { /* lowercased words of the training sentences */
        ur_vocab *counts = ur_vocab_new(0);
        for (int i = 0; counts && i < n_train; i++)
            for (int k = 0; k < train_tb->trees[i].n_words; k++) {
                char w[MAX_WORD + 1];
                normalize(train_tb->trees[i].words[k], w);
                ur_vocab_add(counts, w);
            }
        if (counts) ur_vocab_build(counts, cfg.min_count, UR_VOCAB_PAD | UR_VOCAB_UNK, &vocab);
        ur_vocab_free(counts);
    }
    ok = ok && vocab;
    examples train = {0}, dev = {0};
    if (ok && train_tb) {
        set_word_ids(train_tb, vocab);
        ok = examples_make(&train, train_tb, n_train, binary, cfg.phrases);
    }
    if (ok && dev_tb) {
        set_word_ids(dev_tb, vocab);
        ok = examples_make(&dev, dev_tb, dev_tb->n_trees, binary, 0);
    }
    if (ok && train_tb && train.n == 0) {
        fprintf(stderr, "classify: %s: no training examples for the %s task\n", cfg.train, cfg.task);
        ok = 0;
    }
    if (ok && train_tb)
        printf("classify: %s, task %s: %d training examples%s, %d words in the vocabulary\n", cfg.train, cfg.task,
               train.n, cfg.phrases ? " (sentences and phrases)" : "", ur_vocab_size(vocab));

    /* ---- the model and optimizer ---- */
    ur_rng rng;
    ur_rng_seed(&rng, (uint64_t)c.seed);
    classifier m = {0};
    ur_optim_config oc = ur_optim_defaults(UR_OPTIM_ADAM, cfg.lr);
    ur_optim *opt = NULL;
    ur_tape *tape = ur_tape_new();
    int max_len = 1, max_batch = cfg.batch > 64 ? cfg.batch : 64;
    for (int i = 0; i < train.n; i++) max_len = train.lens[i] > max_len ? train.lens[i] : max_len;
    for (int i = 0; i < dev.n; i++) max_len = dev.lens[i] > max_len ? dev.lens[i] : max_len;
    ur_real *scratch = malloc((size_t)max_len * (size_t)max_batch * sizeof *scratch);
    if (ok) {
        ok = tape && scratch && classifier_build(&m, &cfg, ur_vocab_size(vocab), n_classes, &rng, (uint64_t)c.seed) &&
             (opt = ur_optim_new(m.ps, &oc)) != NULL;
        if (!ok) fprintf(stderr, "classify: setup failed: %s\n", ur_last_error());
    }
    if (ok && ck) ok = cli_load_with_vocab(ck, c.load, "classify", m.ps, opt, &rng);
    ok = ok && dist_cli_sync("classify", m.ps) == 0;
    if (ok)
        printf("model: embed %d, %s%s %d x %d, pool %s, %zu parameters\n", cfg.embed, cfg.bidir ? "bi" : "",
               cfg.cell, cfg.layers, cfg.hidden, cfg.pool, ur_paramset_numel(m.ps));

    /* ---- --eval: score a saved model ---- */
    if (ok && cfg.eval) {
        score sc = evaluate(&m, tape, &dev, scratch, max_batch);
        printf("%s: %ld sentences, accuracy %.2f%%, loss %.4f\n", cfg.eval, sc.n, 100 * sc.acc, sc.loss);
        if (c.json) {
            cli_json j;
            cli_json_begin(&j);
            cli_json_str(&j, "example", "classify");
            cli_json_str(&j, "file", cfg.eval);
            cli_json_num(&j, "accuracy", sc.acc);
            cli_json_num(&j, "loss", sc.loss);
            cli_json_int(&j, "examples", sc.n);
            cli_json_end(&j);
        }
        ok = isfinite(sc.acc);
        if (!ok) fprintf(stderr, "classify: %s: no sentences to score for the %s task\n", cfg.eval, cfg.task);
        goto done;
    }

    /* ---- training: bucketed batches, a new order every epoch ---- */
    trainer tr = {&m, &train, &dev, vocab, &cfg, tape, scratch, max_batch, NULL,
                  malloc((size_t)max_len * (size_t)max_batch * sizeof(int)), malloc((size_t)max_batch * sizeof(int))};
    cli_task task = {&tr, train_loss, dev_score};
    cli_epochs e = {.prog = "classify", .c = &c, .lens = train.lens, .n = train.n, .batch = cfg.batch,
                    .epochs = cfg.epochs, .has_dev = dev.n > 0, .log_every = cfg.log_every, .lr = cfg.lr,
                    .clip = cfg.clip, .tape = tape, .ps = m.ps, .opt = opt, .rng = &rng, .per_example = 1};
    if (ok && (!tr.ids || !tr.labels)) {
        fprintf(stderr, "classify: out of memory\n");
        ok = 0;
    }
    ok = ok && cli_epochs_run(&e, &task);
    ur_padded_free(tr.p);
    free(tr.ids);
    free(tr.labels);

    /* ---- save, evaluate ---- */
    if (ok && c.save) {
        ok = cli_save_with_vocab(c.save, "classify", m.ps, opt, vocab, cli_epochs_rng_to_save(&e), opts, n_opts,
                                 STORED);
        if (ok) printf("saved %s (step %ld)\n", c.save, (long)ur_optim_step_count(opt));
    }
    if (ok && dev.n) cli_epochs_final_dev(&e, &task, cfg.dev, "sentences");
    if (ok && c.json) {
        cli_json j;
        cli_json_begin(&j);
        cli_json_str(&j, "example", "classify");
        cli_json_str(&j, "task", cfg.task);
        cli_json_str(&j, "pool", cfg.pool);
        cli_epochs_json(&j, &e);
        cli_json_end(&j);
    }
    cli_epochs_free(&e);
done:
    free(scratch);
    ur_optim_free(opt);
    classifier_free(&m);
    ur_tape_free(tape);
    examples_free(&train);
    examples_free(&dev);
    ur_vocab_free(vocab);
    ur_treebank_free(train_tb);
    ur_treebank_free(dev_tb);
    ur_ckpt_close(ck);
    ur_kernel_free_buffers();
    return dist_cli_end(ok ? 0 : 1);
}
