/* tagger - a BiLSTM tagger: part-of-speech tags on CoNLL-U files (17 universal
 * tags, --scheme upos, the default) or named entities in B-I-O files (7 tags,
 * --scheme bio), with a softmax per word or a linear-chain CRF on top (--crf).
 *
 *   tagger --train en_ewt-ud-train.conllu --dev en_ewt-ud-dev.conllu --save pos.safetensors
 *   tagger --load pos.safetensors --eval any.conllu
 *   tagger --scheme bio --crf --train en_ewt-ud-dev.iob2 --dev en_ewt-ud-test.iob2
 *
 * For a batch of B sentences padded to T words (time-major, position t*B + b):
 *     w_i = E_word[word_i]                          (Dw) lowercased form, rare words -> <unk>
 *     c_i = max_j relu([e_j-1; e_j; e_j+1] W_c + b_c)   (F) a width-3 convolution over the
 *           word's bytes e_j = E_char[byte_j] between begin/end markers, max-pooled (--char)
 *     h_i = BiLSTM([w_i; c_i])                      (2H) both directions concatenated
 *     y_i = h_i W_out + b_out                       (K) tag scores (K = 17 or 7)
 *     L   = sum over real words of cross_entropy(y_i, tag_i) / number of real words
 * or, with --crf, the y_i of a sentence are the CRF's emissions and
 *     L   = mean over sentences of log Z - score(tags)       (ur_crf_nll)
 * where B-I-O constraints (no O -> I-X, no start at I-X) are on unless
 * --no-constraints. Decoding: the best tag per word, or the CRF's Viterbi path.
 * With --scheme bio the scores are entity-level precision/recall/F1 (exact span
 * and type, as conlleval counts them), token accuracy, and the number of predicted
 * tags that break the B-I-O scheme.
 * Padded positions carry mask 0: the BiLSTM keeps its state there, their outputs are
 * zero, and the loss gives them no weight, so padding changes nothing.
 *
 * Word dropout: in training, a word seen n times in the training data is replaced
 * by <unk> with probability a / (a + n) (--word-dropout a), so <unk> is trained on
 * words like the rare ones it will stand for at test time.
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
#include "ur_bio.h"
#include "ur_checkpoint.h"
#include "ur_crf.h"
#include "ur_init.h"
#include "ur_optim.h"
#include "ur_rnn.h"

enum {
    MAX_WORD = 32,        /* longest normalized word form kept */
    MAX_CHARS = 20,       /* bytes of a word seen by the character features */
    CHAR_PAD = 0,         /* character ids: padding, begin and end of word, then 3 + byte */
    CHAR_BOW = 1,
    CHAR_EOW = 2,
    N_CHARS = 3 + 256
};

typedef struct config {
    const char *train, *dev, *eval;
    int word_dim, use_char, char_dim, char_filters, hidden, layers;
    double dropout, word_dropout;
    int min_count, batch, epochs, limit;
    double lr, clip;
    long log_every;
    const char *scheme; /* "upos" or "bio" */
    int crf, no_constraints;
    rnn_flags rf; /* --init, --forget-bias, --variational, --clip-value */
} config;

static const char *const SCHEMES[] = {"upos", "bio", NULL};

static int is_bio(const config *cfg) { return strcmp(cfg->scheme, "bio") == 0; }
static int n_tags(const config *cfg) { return is_bio(cfg) ? UR_BIO_COUNT : UR_UPOS_COUNT; }

/* The flags that define the model and the run: kept in checkpoints. */
static const char *const STORED[] = {"--train", "--dev", "--word-dim", "--char", "--char-dim", "--char-filters",
                                     "--hidden", "--layers", "--dropout", "--word-dropout", "--min-count",
                                     "--batch", "--epochs", "--limit", "--lr", "--clip", "--seed",
                                     /* older checkpoints are UPOS taggers without these */
                                     CLI_ADDED_LATER, "--scheme", "--crf", "--no-constraints", RNN_FLAG_NAMES, NULL};

/* ---- words ---- */

/* The form used for the word embedding: ASCII lowercased, digits as 0, at most MAX_WORD bytes. */
static void normalize(const char *w, char *out) {
    int n = 0;
    for (; w[n] && n < MAX_WORD; n++) {
        unsigned char ch = (unsigned char)w[n];
        out[n] = isdigit(ch) ? '0' : (char)tolower(ch);
    }
    out[n] = '\0';
}

/* Word ids and tags of every sentence, ready for ur_batch_pad. */
typedef struct dataset {
    const ur_conllu *src;
    int n;
    int *lens;
    int **words, **tags;
    int *store_;
} dataset;

static void dataset_free(dataset *d) {
    free(d->lens);
    free(d->words);
    free(d->tags);
    free(d->store_);
}

static int dataset_make(dataset *d, const ur_conllu *src, int limit, const ur_vocab *v) {
    memset(d, 0, sizeof *d);
    d->src = src;
    d->n = limit > 0 && limit < src->n_sentences ? limit : src->n_sentences;
    size_t total = 0;
    for (int i = 0; i < d->n; i++) total += (size_t)src->sents[i].len;
    d->lens = malloc((size_t)d->n * sizeof *d->lens);
    d->words = malloc((size_t)d->n * sizeof *d->words);
    d->tags = malloc((size_t)d->n * sizeof *d->tags);
    d->store_ = malloc(2 * (total + 1) * sizeof *d->store_);
    if (!d->lens || !d->words || !d->tags || !d->store_) return 0;
    int *p = d->store_;
    for (int i = 0; i < d->n; i++) {
        const ur_tagged_sentence *s = &src->sents[i];
        d->lens[i] = s->len;
        d->words[i] = p;
        d->tags[i] = p + s->len;
        for (int k = 0; k < s->len; k++) {
            char w[MAX_WORD + 1];
            normalize(s->words[k], w);
            d->words[i][k] = ur_vocab_id(v, w);
            d->tags[i][k] = s->tags[k];
        }
        p += 2 * s->len;
    }
    return 1;
}

/* ---- batches ---- */
typedef struct batch {
    ur_padded *words, *tags; /* (T, B) word ids and tags, mask */
    int K;                   /* character positions per word */
    int *char_ids;           /* T*B*K*3: the ids of each position's window */
    ur_real *char_mask;      /* T*B*K: 1 at a position inside the word (markers included) */
} batch;

static void batch_free(batch *bt) {
    ur_padded_free(bt->words);
    ur_padded_free(bt->tags);
    free(bt->char_ids);
    free(bt->char_mask);
    memset(bt, 0, sizeof *bt);
}

/* The bytes of token (t, b) between markers: seq[0..n). */
static int char_seq(const dataset *d, const ur_padded *p, const int *pick, int t, int b, int *seq) {
    int n = 0;
    seq[n++] = CHAR_BOW;
    if (t < p->lens[b]) {
        const char *w = d->src->sents[pick[b]].words[t];
        for (int k = 0; w[k] && k < MAX_CHARS; k++) seq[n++] = 3 + (unsigned char)w[k];
    }
    seq[n++] = CHAR_EOW;
    return n;
}

static int batch_make(batch *bt, const dataset *d, const int *pick, int B, int with_chars) {
    memset(bt, 0, sizeof *bt);
    if (ur_batch_pad((const int *const *)d->words, d->lens, pick, B, 0, 0, &bt->words) != UR_OK ||
        ur_batch_pad((const int *const *)d->tags, d->lens, pick, B, 0, 0, &bt->tags) != UR_OK)
        return 0;
    if (!with_chars) return 1;
    int T = bt->words->T, N = T * B, seq[MAX_CHARS + 2];
    bt->K = 2;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < bt->words->lens[b]; t++) {
            int n = char_seq(d, bt->words, pick, t, b, seq);
            if (n > bt->K) bt->K = n;
        }
    size_t NK = (size_t)N * (size_t)bt->K;
    bt->char_ids = malloc(NK * 3 * sizeof *bt->char_ids);
    bt->char_mask = malloc(NK * sizeof *bt->char_mask);
    if (!bt->char_ids || !bt->char_mask) return 0;
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            int n = char_seq(d, bt->words, pick, t, b, seq);
            size_t row = ((size_t)t * B + (size_t)b) * (size_t)bt->K;
            for (int j = 0; j < bt->K; j++) {
                for (int k = -1; k <= 1; k++) /* the window around position j */
                    bt->char_ids[(row + (size_t)j) * 3 + (size_t)(k + 1)] =
                        j + k >= 0 && j + k < n ? seq[j + k] : CHAR_PAD;
                bt->char_mask[row + (size_t)j] = j < n;
            }
        }
    return 1;
}

/* ---- the model ---- */
typedef struct tagger {
    ur_paramset *ps;
    ur_param *word_emb;         /* (Vw, Dw) */
    ur_param *char_emb;         /* (N_CHARS, Dc), NULL without --char */
    ur_param *char_W, *char_b;  /* (3 Dc, F), (F) */
    ur_rnn *rnn;                /* bidirectional LSTM */
    ur_param *W_out, *b_out;    /* (2H, K), (K) */
    int n_tags;                 /* K */
    int use_crf;                /* crf holds the transition scores (--crf) */
    ur_crf crf;
    double dropout;
} tagger;

/* The CRF with its parameters in m->ps (named crf.*, so checkpoints keep them) and,
 * unless cfg->no_constraints, the B-I-O constraints. 1, or 0 on an error. */
static int crf_build(tagger *m, const config *cfg) {
    if (ur_crf_make(&m->crf, m->ps, "crf", m->n_tags) != UR_OK) return 0;
    m->use_crf = 1;
    if (cfg->no_constraints) return 1;
    const char *names[UR_BIO_COUNT];
    for (int i = 0; i < UR_BIO_COUNT; i++) names[i] = ur_bio_name(i);
    return ur_crf_forbid_bio(&m->crf, names) > 0;
}

static int tagger_build(tagger *m, const config *cfg, int n_words, ur_rng *rng, uint64_t seed) {
    m->dropout = cfg->dropout;
    m->n_tags = n_tags(cfg);
    m->ps = ur_paramset_new();
    if (!m->ps) return 0;
    m->word_emb = ur_paramset_add(m->ps, "word_emb", 2, (int[]){n_words, cfg->word_dim});
    if (!m->word_emb || ur_init_normal(&m->word_emb->value, rng, 0.0, 0.1) != UR_OK) return 0;
    int in = cfg->word_dim;
    if (cfg->use_char) {
        m->char_emb = ur_paramset_add(m->ps, "char_emb", 2, (int[]){N_CHARS, cfg->char_dim});
        m->char_W = ur_paramset_add(m->ps, "char_conv.weight", 2, (int[]){3 * cfg->char_dim, cfg->char_filters});
        m->char_b = ur_paramset_add(m->ps, "char_conv.bias", 1, (int[]){cfg->char_filters});
        if (!m->char_emb || !m->char_W || !m->char_b ||
            ur_init_normal(&m->char_emb->value, rng, 0.0, 0.1) != UR_OK ||
            ur_init_xavier_uniform(&m->char_W->value, rng, 1.0) != UR_OK)
            return 0;
        in += cfg->char_filters;
    }
    ur_rnn_config rc = ur_rnn_defaults(UR_RNN_LSTM, in, cfg->hidden);
    rc.num_layers = cfg->layers;
    rc.bidirectional = 1;
    rc.dropout = rc.dropout_input = cfg->dropout;
    rc.seed = seed;
    rnn_flags_apply(&cfg->rf, &rc);
    m->rnn = ur_rnn_new(m->ps, "bilstm", &rc);
    m->W_out = ur_paramset_add(m->ps, "out.weight", 2, (int[]){2 * cfg->hidden, m->n_tags});
    m->b_out = ur_paramset_add(m->ps, "out.bias", 1, (int[]){m->n_tags});
    if (!m->rnn || !m->W_out || !m->b_out || ur_init_xavier_uniform(&m->W_out->value, rng, 1.0) != UR_OK) return 0;
    return !cfg->crf || crf_build(m, cfg);
}

static void tagger_free(tagger *m) {
    if (m->use_crf) ur_crf_release(&m->crf);
    ur_rnn_free(m->rnn);
    ur_paramset_free(m->ps);
}

/* Character features of the batch's T*B words: (T*B, F). */
static ur_node *char_features(ur_tape *t, tagger *m, const batch *bt) {
    int N = bt->words->T * bt->words->B, K = bt->K, Dc = m->char_emb->value.shape.dims[1];
    ur_node *e = ur_gather(t, ur_param_node(t, m->char_emb), bt->char_ids, N * K * 3); /* (N*K*3, Dc) */
    e = ur_reshape(t, e, 2, (int[]){N * K, 3 * Dc});                  /* one window per row */
    ur_node *f = ur_relu(t, ur_linear(t, e, ur_param_node(t, m->char_W), ur_param_node(t, m->char_b)));
    f = ur_reshape(t, f, 3, (int[]){N, K, ur_node_dim(f, 1)});         /* (N, K, F) */
    f = ur_mul(t, f, ur_input_data(t, 3, (int[]){N, K, 1}, bt->char_mask)); /* 0 past the word (f >= 0) */
    return ur_max_axis(t, f, 1, 0);                                    /* (N, F) */
}

/* Tag scores (T*B, K) of a batch; word_ids are the batch's (possibly dropped) ids.
 * *h gets the BiLSTM outputs (T, B, 2H). */
static ur_node *tagger_forward(ur_tape *t, tagger *m, const batch *bt, const int *word_ids, int training,
                               uint64_t seed, ur_node **h) {
    int T = bt->words->T, B = bt->words->B, N = T * B;
    ur_node *x = ur_gather(t, ur_param_node(t, m->word_emb), word_ids, N); /* (N, Dw) */
    if (m->char_emb) x = ur_concat(t, 2, (ur_node *[]){x, char_features(t, m, bt)}, 1);
    x = ur_reshape(t, x, 3, (int[]){T, B, ur_node_dim(x, 1)});
    ur_rnn_args args = {.mask = bt->words->mask, .training = training, .seed = seed};
    *h = ur_rnn_forward(m->rnn, t, x, &args, NULL); /* (T, B, 2H) */
    ur_node *y = *h;
    if (training && m->dropout > 0) y = ur_dropout(t, y, (ur_real)m->dropout, seed ^ 0xd0d0ULL);
    y = ur_reshape(t, y, 2, (int[]){N, ur_node_dim(y, 2)});
    return ur_linear(t, y, ur_param_node(t, m->W_out), ur_param_node(t, m->b_out)); /* (N, K) */
}

/* The loss of a batch's tag scores (T*B, K): the mean cross-entropy per real word,
 * or the CRF's mean negative log-likelihood per sentence. */
static ur_node *tag_loss(ur_tape *t, tagger *m, ur_node *logits, const batch *bt) {
    const ur_padded *tags = bt->tags, *words = bt->words;
    if (!m->use_crf) return ur_cross_entropy(t, logits, tags ? tags->ids : NULL, words ? words->mask : NULL);
    if (!logits) return NULL; /* the tape holds the error */
    ur_node *em = ur_reshape(t, logits, 3, (int[]){words->T, words->B, m->n_tags}); /* (T, B, K) */
    return ur_crf_nll(t, &m->crf, em, tags->ids, words->mask);
}

/* The predicted tags pred[t*B + b] of a batch from its scores y (T*B*K): the best
 * tag of each word, or the CRF's best path (-1 at padding). 1, or 0 on an error. */
static int predict(const tagger *m, const ur_real *y, const ur_padded *words, int *pred) {
    int N = words->T * words->B, K = m->n_tags;
    if (m->use_crf) return ur_crf_viterbi(&m->crf, y, words->T, words->B, words->mask, pred) == UR_OK;
    for (int i = 0; i < N; i++) {
        int best = 0;
        for (int c = 1; c < K; c++)
            if (y[i * K + c] > y[i * K + best]) best = c;
        pred[i] = best;
    }
    return 1;
}

/* Adds each sentence b of a batch (its column of the time-major tags) to the
 * entity counts; g and p hold T tags each. */
static void bio_add(ur_bio_score *s, const ur_padded *words, const int *gold, const int *pred, int *g, int *p) {
    int B = words->B;
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < words->lens[b]; t++) {
            g[t] = gold[t * B + b];
            p[t] = pred[t * B + b];
        }
        ur_bio_score_add(s, g, p, words->lens[b]);
    }
}

/* ---- evaluation: token accuracy over the real words, entity scores with B-I-O ---- */
typedef struct score {
    double loss, acc; /* loss per word (softmax) or per sentence (CRF) */
    long tokens;
    ur_bio_score bio; /* entity counts (--scheme bio) */
} score;

/* Scores one batch's predictions into sc (correct words into *correct); its loss
 * into *loss_sum weighted by words or sentences. 1, or 0 on an error. */
static int score_batch(const tagger *m, const batch *bt, ur_node *logits, ur_node *loss, int bio, score *sc,
                       long *correct, double *loss_sum, long *weight) {
    const ur_padded *w = bt->words;
    int N = w->T * w->B;
    int *pred = malloc(((size_t)N + 2 * (size_t)w->T) * sizeof *pred);
    if (!pred || !predict(m, ur_node_cdata(logits), w, pred)) {
        fprintf(stderr, "tagger: %s\n", pred ? ur_last_error() : "out of memory");
        free(pred);
        return 0;
    }
    long n = 0;
    for (int i = 0; i < N; i++) {
        if (!w->mask[i]) continue;
        *correct += pred[i] == bt->tags->ids[i];
        n++;
    }
    if (bio) bio_add(&sc->bio, w, bt->tags->ids, pred, pred + N, pred + N + w->T);
    free(pred);
    long wt = m->use_crf ? w->B : n;
    *loss_sum += ur_node_item(loss) * (double)wt;
    *weight += wt;
    sc->tokens += n;
    return 1;
}

static score evaluate(tagger *m, ur_tape *t, const dataset *d, int use_char, int bio) {
    score sc = {0, 0, 0, {0}};
    ur_rng order;
    ur_rng_seed(&order, 0); /* the batch order does not matter here */
    ur_batches *bs = NULL;
    if (ur_bucket_batches(d->lens, d->n, 64, &order, &bs) != UR_OK) return (score){NAN, NAN, 0, {0}};
    int was = ur_tape_set_grad_enabled(t, 0);
    long correct = 0, weight = 0;
    double loss_sum = 0;
    for (int k = 0; k < bs->n_batches; k++) {
        batch bt;
        int B = bs->offset[k + 1] - bs->offset[k];
        ur_node *h;
        ur_tape_reset(t);
        ur_node *logits = batch_make(&bt, d, bs->index + bs->offset[k], B, use_char)
                              ? tagger_forward(t, m, &bt, bt.words->ids, 0, 0, &h)
                              : NULL;
        ur_node *loss = tag_loss(t, m, logits, &bt);
        if (!loss || !score_batch(m, &bt, logits, loss, bio, &sc, &correct, &loss_sum, &weight)) {
            batch_free(&bt);
            sc.loss = sc.acc = NAN;
            break;
        }
        batch_free(&bt);
    }
    ur_tape_set_grad_enabled(t, was);
    ur_batches_free(bs);
    if (sc.tokens && isfinite(sc.loss)) {
        sc.loss = loss_sum / (double)weight;
        sc.acc = (double)correct / (double)sc.tokens;
    } else sc.loss = sc.acc = NAN; /* an error, or nothing to score */
    return sc;
}

/* The entity scores as text: "entities 1088 gold, 950 predicted, 700 correct:
 * precision 73.68%, recall 64.34%, F1 68.69%, 0 invalid transitions". */
static void print_bio(const ur_bio_score *s) {
    printf("  entities %ld gold, %ld predicted, %ld correct: precision %.2f%%, recall %.2f%%, F1 %.2f%%, "
           "%ld invalid transitions\n",
           s->gold, s->predicted, s->correct, ur_bio_precision(s), ur_bio_recall(s), ur_bio_f1(s), s->invalid);
}

/* The entity scores into a JSON object, keys prefixed (e.g. "dev_f1"). */
static void json_bio(cli_json *j, const char *prefix, const ur_bio_score *s) {
    char key[64];
    static const char *const names[] = {"precision", "recall", "f1"};
    double v[] = {ur_bio_precision(s), ur_bio_recall(s), ur_bio_f1(s)};
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof key, "%s%s", prefix, names[i]);
        cli_json_num(j, key, v[i]);
    }
    snprintf(key, sizeof key, "%sinvalid_transitions", prefix);
    cli_json_int(j, key, s->invalid);
    snprintf(key, sizeof key, "%sgold_entities", prefix);
    cli_json_int(j, key, s->gold);
    snprintf(key, sizeof key, "%spredicted_entities", prefix);
    cli_json_int(j, key, s->predicted);
}

/* ---- training ---- */

/* What a training batch needs: the model, the data, and the buffers the tape reads. */
typedef struct trainer {
    tagger *m;
    const dataset *train;
    const ur_vocab *vocab;
    const config *cfg;
    batch bt;      /* the current batch: the tape reads its tags and mask */
    int *word_ids; /* its word ids after word dropout */
} trainer;

/* Records the loss of the training sentences pick[0..B) on t (training mode, `seed`
 * for dropout); *h: the BiLSTM outputs, for --grad-report; counts the real words
 * into *tokens. NULL after printing an error. */
static ur_node *batch_loss(trainer *tr, ur_tape *t, const int *pick, int B, uint64_t seed, ur_node **h,
                           long *tokens) {
    batch_free(&tr->bt);
    int ok = batch_make(&tr->bt, tr->train, pick, B, tr->cfg->use_char);
    int *w = ok ? realloc(tr->word_ids, (size_t)tr->bt.words->T * (size_t)B * sizeof *w) : NULL;
    if (!w) {
        fprintf(stderr, "tagger: out of memory\n");
        return NULL;
    }
    tr->word_ids = w;
    cli_drop_words(tr->bt.words, tr->vocab, tr->cfg->word_dropout, seed ^ 0x77ULL, w);
    for (int i = 0; i < tr->bt.words->T * B; i++) *tokens += tr->bt.words->mask[i] != 0;
    ur_node *logits = tagger_forward(t, tr->m, &tr->bt, w, 1, seed, h);
    return tag_loss(t, tr->m, logits, &tr->bt);
}

/* The development scores, kept in the run (latest and best accuracy). */
static score dev_pass(tagger *m, ur_tape *tape, const dataset *dev, const config *cfg, cli_run *run) {
    score sc = evaluate(m, tape, dev, cfg->use_char, is_bio(cfg));
    run->dev_acc = sc.acc;
    run->dev_loss = sc.loss;
    if (sc.acc > run->best_dev) run->best_dev = sc.acc;
    return sc;
}

/* A CoNLL-U file, or with --scheme bio a B-I-O file (and what its reader changed). */
static ur_conllu *read_tagged(const char *path, const config *cfg) {
    ur_conllu *c = NULL;
    ur_iob_stats st = {0, 0};
    ur_status s = is_bio(cfg) ? ur_iob_read_file(path, &c, &st) : ur_conllu_read_file(path, &c);
    if (s != UR_OK) fprintf(stderr, "tagger: %s\n", ur_last_error());
    else if (is_bio(cfg))
        printf("tagger: %s: %d sentences; %zu irregular tags read as O, %zu I- tags repaired to B-\n", path,
               c->n_sentences, st.n_irregular, st.n_repaired);
    return c;
}

/* ---- settings ---- */

enum { MAX_FLAGS = 40 };
static const char ABOUT[] = "tagger: a BiLSTM tagger, part of speech (UPOS) on CoNLL-U files or named entities "
                            "(B-I-O) with a softmax or a CRF";

/* Sets the defaults and lists the flags (at most MAX_FLAGS): returns their count. */
static int flag_table(config *cfg, cli_common *c, cli_opt *opts) {
    *cfg = (config){.train = NULL, .dev = NULL, .eval = NULL, .word_dim = 100, .use_char = 0, .char_dim = 32,
                    .char_filters = 64, .hidden = 128, .layers = 1, .dropout = 0.33, .word_dropout = 0.25,
                    .min_count = 1, .batch = 32, .epochs = 6, .limit = 0, .lr = 2e-3, .clip = 5, .log_every = 20,
                    .scheme = "upos", .crf = 0, .no_constraints = 0, .rf = RNN_FLAGS_DEFAULT};
    const cli_opt table[] = {
        CLI_COMMON_OPTS(*c),
        CLI_TEXT("--train", &cfg->train, "training CoNLL-U file"),
        CLI_TEXT("--dev", &cfg->dev, "development CoNLL-U file (accuracy after each epoch)"),
        CLI_TEXT("--eval", &cfg->eval, "score the --load model on this CoNLL-U file (no training)"),
        CLI_INT("--word-dim", &cfg->word_dim, 1, 4096, "word embedding size (default 100)"),
        CLI_BOOL("--char", &cfg->use_char, "add character features (width-3 convolution, max-pooled)"),
        CLI_INT("--char-dim", &cfg->char_dim, 1, 4096, "character embedding size (default 32)"),
        CLI_INT("--char-filters", &cfg->char_filters, 1, 4096, "character features per word (default 64)"),
        CLI_INT("--hidden", &cfg->hidden, 1, 4096, "LSTM units per direction (default 128)"),
        CLI_INT("--layers", &cfg->layers, 1, UR_RNN_MAX_LAYERS, "stacked BiLSTM layers (default 1)"),
        CLI_REAL_BELOW("--dropout", &cfg->dropout, 0, 1, "dropout on inputs, between layers and on outputs "
                                                        "(default 0.33)"),
        CLI_REAL("--word-dropout", &cfg->word_dropout, 0, 1000, "a: a word seen n times becomes <unk> w.p. "
                                                               "a/(a+n) (0.25)"),
        CLI_INT("--min-count", &cfg->min_count, 0, 1000000000, "words seen fewer times are <unk> (default 1)"),
        CLI_INT("--batch", &cfg->batch, 1, 4096, "sentences per batch (default 32)"),
        CLI_INT("--epochs", &cfg->epochs, 0, 1000000, "passes over the training data (default 6)"),
        CLI_INT("--limit", &cfg->limit, 0, 1000000000, "use only the first N training sentences"),
        CLI_REAL("--lr", &cfg->lr, 0, 10, "Adam learning rate, cosine-decayed to lr/10 (default 2e-3)"),
        CLI_REAL("--clip", &cfg->clip, 0, 1e6, "clip the global gradient norm (default 5, 0: off)"),
        CLI_LONG("--log-every", &cfg->log_every, 1, 1000000000, "progress line every N steps (default 20)"),
        RNN_FLAG_OPTS(cfg->rf),
        /* named entities */
        CLI_CHOICE("--scheme", &cfg->scheme, SCHEMES, "upos: CoNLL-U files, 17 tags (default); bio: B-I-O files "
                                                       "(ID FORM TAG), 7 tags, entity F1"),
        CLI_BOOL("--crf", &cfg->crf, "a linear-chain CRF on the tag scores (loss and Viterbi decoding; "
                                     "--scheme bio)"),
        CLI_BOOL("--no-constraints", &cfg->no_constraints, "with --crf: allow every B-I-O transition "
                                                           "(default: no O -> I-X)"),
    };
    _Static_assert(sizeof table / sizeof table[0] <= MAX_FLAGS, "MAX_FLAGS holds the table");
    memcpy(opts, table, sizeof table);
    return (int)(sizeof table / sizeof table[0]);
}

/* The rules between flags; 0, or 2 after printing the usage error. */
static int check_flags(const config *cfg, const ur_ckpt *ck) {
    if (cfg->eval && !ck) {
        fprintf(stderr, "tagger: --eval needs a model (--load)\n");
        return 2;
    }
    if (cfg->crf && !is_bio(cfg)) {
        fprintf(stderr, "tagger: --crf needs --scheme bio\n");
        return 2;
    }
    if (cfg->no_constraints && !cfg->crf) {
        fprintf(stderr, "tagger: --no-constraints needs --crf\n");
        return 2;
    }
    if (!cfg->eval && !cfg->train) {
        fprintf(stderr, "tagger: give --train FILE (and --dev FILE), or --load MODEL --eval FILE (see --help)\n");
        return 2;
    }
    return 0;
}

/* ---- data: the CoNLL-U files, the vocabulary, the sentences as ids ---- */
typedef struct data {
    ur_conllu *train_c, *dev_c; /* train_c: NULL with --eval; dev_c: --eval's file then */
    ur_vocab *vocab;
    dataset train, dev;
} data;

static void data_free(data *d) {
    dataset_free(&d->train);
    dataset_free(&d->dev);
    ur_vocab_free(d->vocab);
    ur_conllu_free(d->train_c);
    ur_conllu_free(d->dev_c);
}

/* Reads the files; the vocabulary comes from the checkpoint ck, or from the
 * normalized training words seen >= --min-count times. 1, or 0 after printing an error. */
static int load_data(data *d, const config *cfg, const ur_ckpt *ck, const char *ck_path) {
    const char *dev_path = cfg->eval ? cfg->eval : cfg->dev;
    d->train_c = cfg->eval ? NULL : read_tagged(cfg->train, cfg);
    d->dev_c = dev_path && dev_path[0] ? read_tagged(dev_path, cfg) : NULL;
    if ((!cfg->eval && !d->train_c) || (dev_path && dev_path[0] && !d->dev_c)) return 0;
    if (ck) { /* the vocabulary the model was trained with */
        d->vocab = cli_load_vocab(ck, ck_path, "tagger");
    } else {
        ur_vocab *counts = ur_vocab_new(0);
        const ur_conllu *tc = d->train_c;
        int n = cfg->limit > 0 && cfg->limit < tc->n_sentences ? cfg->limit : tc->n_sentences;
        for (int i = 0; counts && i < n; i++)
            for (int k = 0; k < tc->sents[i].len; k++) {
                char w[MAX_WORD + 1];
                normalize(tc->sents[i].words[k], w);
                ur_vocab_add(counts, w);
            }
        if (counts) ur_vocab_build(counts, cfg->min_count, UR_VOCAB_PAD | UR_VOCAB_UNK, &d->vocab);
        ur_vocab_free(counts);
    }
    if (!d->vocab) return 0;
    if (d->train_c && !dataset_make(&d->train, d->train_c, cfg->limit, d->vocab)) return 0;
    if (d->dev_c && !dataset_make(&d->dev, d->dev_c, 0, d->vocab)) return 0;
    if (d->train_c && d->train.n == 0) {
        fprintf(stderr, "tagger: %s: no sentences\n", cfg->train);
        return 0;
    }
    if (d->train_c)
        printf("tagger: %s: %d sentences, %d words in the vocabulary (count >= %d)\n", cfg->train, d->train.n,
               ur_vocab_size(d->vocab), cfg->min_count);
    return 1;
}

/* --eval: the scores of a saved model on one file, printed (and as JSON). 1, or 0 when there was nothing to score. */
static int eval_only(tagger *m, ur_tape *tape, const dataset *dev, const config *cfg, int json) {
    score sc = evaluate(m, tape, dev, cfg->use_char, is_bio(cfg));
    printf("%s: %ld tokens, accuracy %.2f%%, loss %.4f\n", cfg->eval, sc.tokens, 100 * sc.acc, sc.loss);
    if (is_bio(cfg)) print_bio(&sc.bio);
    if (json) {
        cli_json j;
        cli_json_begin(&j);
        cli_json_str(&j, "example", "tagger");
        cli_json_str(&j, "file", cfg->eval);
        cli_json_num(&j, "accuracy", sc.acc);
        cli_json_num(&j, "loss", sc.loss);
        cli_json_int(&j, "tokens", sc.tokens);
        if (is_bio(cfg)) json_bio(&j, "", &sc.bio);
        cli_json_end(&j);
    }
    if (!isfinite(sc.acc)) fprintf(stderr, "tagger: %s: no tokens to score\n", cfg->eval);
    return isfinite(sc.acc);
}

/* ---- the start and the end of a run ---- */

/* The tagger and Adam, with --load the checkpoint's weights, optimizer state and RNG;
 * every rank starts from rank 0's weights. Prints the model's size. 1, or 0 after
 * printing an error. */
static int model_setup(tagger *m, ur_optim **opt, const config *cfg, const ur_tape *tape, int n_words,
                       const cli_common *c, ur_ckpt *ck, ur_rng *rng) {
    ur_optim_config oc = ur_optim_defaults(UR_OPTIM_ADAM, cfg->lr);
    if (!tape || !tagger_build(m, cfg, n_words, rng, (uint64_t)c->seed) || !(*opt = ur_optim_new(m->ps, &oc))) {
        fprintf(stderr, "tagger: setup failed: %s\n", ur_last_error());
        return 0;
    }
    if (ck && !cli_load_training(ck, c->load, "tagger", m->ps, *opt, rng)) return 0;
    if (dist_cli_sync("tagger", m->ps) != 0) return 0;
    printf("model: words %d%s, BiLSTM %d x %d per direction%s, %zu parameters\n", cfg->word_dim,
           cfg->use_char ? " + character features" : "", cfg->layers, cfg->hidden,
           !cfg->crf ? "" : cfg->no_constraints ? ", CRF" : ", CRF with B-I-O constraints", ur_paramset_numel(m->ps));
    return 1;
}

/* The development scores at the end of an epoch, printed. */
static void epoch_report(tagger *m, ur_tape *tape, const dataset *dev, const config *cfg, cli_run *run, long epoch) {
    score sc = dev_pass(m, tape, dev, cfg, run);
    cli_progress_end();
    printf("epoch %ld: dev accuracy %.2f%%, loss %.4f", epoch, 100 * sc.acc, sc.loss);
    if (is_bio(cfg)) printf(", entity F1 %.2f%%, %ld invalid transitions", ur_bio_f1(&sc.bio), sc.bio.invalid);
    printf("\n");
}

static void print_json(const cli_run *run, const ur_optim *opt, const tagger *m, const config *cfg,
                       const score *dev) {
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "example", "tagger");
    cli_run_json(&j, run, opt, m->ps);
    if (is_bio(cfg)) json_bio(&j, "dev_", &dev->bio);
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
    int r = cli_start(argc, argv, "tagger", ABOUT, &c, opts, n_opts, STORED, &ck);
    if (r >= 0) return r;
    if (dist_cli_start("tagger") != 0) return 1; /* under mpirun: one process per rank */
    if (check_flags(&cfg, ck) != 0) {
        ur_ckpt_close(ck);
        return 2;
    }

    /* ---- data ---- */
    data d = {0};
    int ok = load_data(&d, &cfg, ck, c.load);

    /* ---- the model and Adam (a checkpoint's weights, optimizer and RNG with --load) ---- */
    ur_rng rng;
    ur_rng_seed(&rng, (uint64_t)c.seed);
    tagger m = {0};
    ur_optim *opt = NULL;
    ur_tape *tape = cli_tape_new(&c);
    ok = ok && model_setup(&m, &opt, &cfg, tape, ur_vocab_size(d.vocab), &c, ck, &rng);
    if (ok && cfg.eval) { /* score a saved model, no training */
        ok = eval_only(&m, tape, &d.dev, &cfg, c.json);
        goto done;
    }

    /* ---- training: bucketed batches, a new order every epoch, cosine learning rate ---- */
    trainer tr = {&m, &d.train, d.vocab, &cfg, {0}, NULL};
    cli_batcher batches;
    cli_batcher_init(&batches, d.train.lens, d.train.n, cfg.batch, &rng);
    long total = batches.per_epoch * cfg.epochs;
    cli_run run;
    if (!cli_run_start(&run, ok ? (long)ur_optim_step_count(opt) : 0, c.steps, total) && ok) {
        fprintf(stderr, "tagger: out of memory\n");
        ok = 0;
    }
    ur_lr_schedule sched = ur_lr_cosine(cfg.lr, cfg.lr / 10, total);
    cli_updater up = {"tagger", &c, tape, m.ps, opt, &sched, &cfg.rf, cfg.clip};
    double started = cli_now();
    cli_meter meter = {0, 0};
    if (ok) cli_progress_start(run.first);
    for (long step = run.first; ok && step < run.last; step++) {
        const int *pick;
        int B = cli_batcher_next(&batches, step, &pick, "tagger");
        if (B < 0) {
            ok = 0;
            break;
        }
        uint64_t seed = (uint64_t)c.seed * 1000003u + (uint64_t)step; /* new dropout masks each step */
        ur_tape_reset(tape);
        int lo, Bn = dist_cli_share(B, &lo); /* this rank's sentences pick[lo .. lo + Bn) */
        long before = run.tokens;
        ur_node *h = NULL, *loss = Bn ? batch_loss(&tr, tape, pick + lo, Bn, seed, &h, &run.tokens) : NULL;
        /* the mean over the ranks, each weighted by its tokens (sentences for the CRF) */
        double lv, tokens = (double)(run.tokens - before);
        double weight = m.use_crf ? (double)Bn : tokens; /* the CRF loss is a mean over sentences */
        if (!cli_update(&up, step, Bn > 0, step == run.first, loss, h, weight, &lv, &tokens)) {
            ok = 0;
            break;
        }
        run.tokens = before + (long)tokens;
        cli_meter_add(&meter, run.losses[step - run.first] = lv);
        if ((step + 1) % cfg.log_every == 0 || step + 1 == run.last) /* mean loss since the last line */
            cli_progress(step + 1, run.last, cli_meter_take(&meter), (double)run.tokens / (cli_now() - started),
                         started);
        if ((step + 1) % batches.per_epoch == 0 && d.dev.n > 0 && step + 1 < run.last && dist_cli_rank0())
            epoch_report(&m, tape, &d.dev, &cfg, &run, (step + 1) / batches.per_epoch); /* rank 0 scores dev */
    }
    cli_progress_end();
    run.seconds = cli_now() - started;
    batch_free(&tr.bt);
    free(tr.word_ids);

    /* ---- save, evaluate ---- */
    if (ok && c.save) {
        ok = cli_save_with_vocab(c.save, "tagger", m.ps, opt, d.vocab, cli_batcher_rng_to_save(&batches, run.last),
                                 opts, n_opts, STORED);
        if (ok) printf("saved %s (step %ld)\n", c.save, (long)ur_optim_step_count(opt));
    }
    score last = {NAN, NAN, 0, {0}};
    if (ok && d.dev.n && dist_cli_rank0()) {
        last = dev_pass(&m, tape, &d.dev, &cfg, &run);
        printf("dev (%s): %ld tokens, accuracy %.2f%%, loss %.4f\n", cfg.dev, last.tokens, 100 * last.acc, last.loss);
        if (is_bio(&cfg)) print_bio(&last.bio);
    }
    if (ok && c.json && dist_cli_rank0()) print_json(&run, opt, &m, &cfg, &last);
    free(run.losses);
    cli_batcher_free(&batches);
done:
    ur_optim_free(opt);
    tagger_free(&m);
    ur_tape_free(tape);
    data_free(&d);
    ur_ckpt_close(ck);
    ur_kernel_free_buffers();
    return dist_cli_end(ok ? 0 : 1);
}
