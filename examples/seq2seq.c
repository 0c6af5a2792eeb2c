/* seq2seq - an encoder-decoder with attention (nn/ur_seq2seq.h) on two tasks:
 *
 *   seq2seq --task reverse                 digit strings, reversed: a known answer
 *   seq2seq --task eng-fra --beam 5        English -> French sentence pairs (TSV)
 *   seq2seq --load m.safetensors --eval --attention-svg attn.svg
 *
 * The model: a bidirectional GRU (or LSTM) reads the source; a decoder of the same
 * cell reads the previous target word and attends over the source states at every step
 * (dot, general or additive scores; the context joins the decoder's output, and
 * with --attn-mode feed also its next input). Training is teacher-forced: the
 * loss is the mean negative log-likelihood per target word (EOS included).
 * Decoding is greedy, or beam search with --beam K (length-normalised with
 * --len-alpha); --temperature T prints a few samples drawn at that temperature.
 *
 * Held-out data: reverse draws 1000 strings from another seed, none of them in the
 * training set; eng-fra groups the pairs by English sentence and holds out 10% of the
 * sentences (a fixed split), with all their translations as references. Reported:
 * exact match (against any reference), corpus BLEU-4 (multi-reference) and perplexity.
 * --attention-svg draws the attention weights of one held-out example as a heat map.
 *
 * --attention none drops attention (the decoder starts from the bridge of the encoder's
 * final states and sees nothing else of the source); --tie makes the output layer
 * the target embedding transposed; --sampling linear|exp|sigmoid trains with
 * scheduled sampling: at training step i the decoder reads the true previous word
 * with probability p(i), else its own greedy prediction (no gradient through it):
 *   linear   p = max(0, 1 - i/k)         (default k: the number of training steps)
 *   exp      p = k^i, 0 < k <= 1         (default k: p reaches 0.01 at the last step)
 *   sigmoid  p = k / (k + exp(i/k)), k >= 1  (default k: a tenth of the steps, at least 1)
 * The recurrent-network flags of every trainer (rnn_flags.h) reach encoder and decoder:
 * --init uniform|orthogonal|identity, --forget-bias X (LSTM), --variational (one
 * dropout mask per sequence for the embeddings, o_t and between encoder layers) and
 * --clip-value X; --cell also takes gru_reset_before (Cho et al. 2014).
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bleu.h"
#include "cli.h"
#include "pairs.h"
#include "s2s_by_length.h"
#include "svg.h"
#include "flag_names_internal.h"
#include "rnn_flags.h"
#include "unroll.h"

/* What --task, --cell, --score and --attn-mode take. */
static const char *const TASKS[] = {"reverse", "eng-fra", NULL}, *const CELLS[] = {"gru", "lstm", "gru_reset_before", NULL};
static const char *const SCORES[] = {"dot", "general", "additive", NULL};
static const char *const MODES[] = {"output", "feed", "input", NULL};
static const char *const ATTENTION[] = {"on", "none", NULL};
static const char *const SAMPLING[] = {"none", "linear", "exp", "sigmoid", NULL};

typedef struct config {
    const char *task, *data, *cell, *score, *attn_mode, *svg, *attention, *sampling;
    const char *by_length, *compare_with, *plot_by_length;
    int emb, hidden, layers, bi, attn_size, batch, epochs, beam, max_digits, n_train, eval, show, max_len, svg_index;
    int tie;
    double dropout, lr, clip, len_alpha, temperature, sampling_k;
    rnn_flags rf; /* --init, --forget-bias, --variational, --clip-value */
} config;

static const char *const STORED[] = {"--task", "--cell", "--score", "--attn-mode", "--emb", "--hidden", "--layers",
                                     "--bi", "--attn-size", "--dropout", "--lr", "--clip", "--batch", "--epochs",
                                     "--max-digits", "--n-train", "--seed", CLI_ADDED_LATER, "--attention", "--tie",
                                     "--sampling", "--sampling-k", RNN_FLAG_NAMES, NULL};
enum { N_STORED = 25 }; /* the flags, without the marker */
_Static_assert(sizeof STORED / sizeof STORED[0] == N_STORED + 2, "N_STORED counts the stored flags");

/* ---- evaluation ---- */

typedef struct score {
    double exact, bleu, ppl, beam_not_worse;
    int n;
} score;

/* Greedy (and with beam > 1, beam) decoding of the held-out set: one decoding per
 * distinct source (group), scored against every reference of the group. */
static score evaluate(ur_seq2seq *m, ur_tape *t, const s2s_dataset *d, const config *cfg, int use_beam,
                      by_length *bl) {
    score s = {0, 0, NAN, NAN, 0};
    bleu_stats bs;
    memset(&bs, 0, sizeof bs);
    int max_len = cfg->max_len, *out = malloc((size_t)max_len * sizeof *out), len = 0, not_worse = 0;
    long right = 0;
    if (!out) return s;
    int n = (int)cli_smoke_limit(d->n, 8); /* UR_SMOKE_STEPS: a few sources */
    for (int i = 0; i < n;) {
        int j = i;
        while (j < d->n && d->ex[j].group == d->ex[i].group) j++; /* references i .. j-1 */
        double lp = 0, g_lp = 0;
        ur_status st;
        if (use_beam) {
            ur_beam_config bc = {cfg->beam, cfg->len_alpha, 0};
            st = ur_seq2seq_beam(m, t, d->src[i], d->src_len[i], max_len, &bc, out, &len, &lp);
            int g_len;
            int *g = malloc((size_t)max_len * sizeof *g);
            if (st == UR_OK && g)
                st = ur_seq2seq_greedy(m, t, &d->src[i], &d->src_len[i], 1, max_len, g, &g_len, &g_lp, NULL);
            not_worse += lp >= g_lp - 1e-4;
            free(g);
        } else {
            st = ur_seq2seq_greedy(m, t, &d->src[i], &d->src_len[i], 1, max_len, out, &len, &lp, NULL);
        }
        if (st != UR_OK) {
            fprintf(stderr, "seq2seq: decoding: %s\n", ur_last_error());
            s.n = 0;
            break;
        }
        int exact = 0;
        for (int r = i; r < j; r++)
            exact |= len == d->ex[r].tgt_len && !memcmp(out, d->ex[r].tgt, (size_t)len * sizeof(int));
        right += exact;
        bleu_add(&bs, out, len, d->tgt + i, d->tgt_len + i, j - i);
        if (bl) by_length_add(bl, d->src_len[i], exact, out, len, d->tgt + i, d->tgt_len + i, j - i);
        s.n++;
        i = j;
    }
    free(out);
    if (s.n) {
        s.exact = (double)right / s.n;
        s.bleu = bleu_value(&bs);
        if (use_beam) s.beam_not_worse = (double)not_worse / s.n;
    }
    double ppl;
    if (ur_seq2seq_perplexity(m, t, d->src, d->src_len, d->tgt, d->tgt_len, n, 64, &ppl, NULL) == UR_OK) s.ppl = ppl;
    return s;
}

/* ---- printing sequences and the attention heat map ---- */

static void print_ids(FILE *f, const ur_vocab *v, const int *ids, int n, int chars) {
    for (int i = 0; i < n; i++) fprintf(f, "%s%s", i && !chars ? " " : "", ur_vocab_string(v, ids[i]));
}

enum { MAX_BATCH = 4096 }; /* the largest --batch */

/* One training step's loss on the pairs idx[0..B), B <= MAX_BATCH. */
static ur_node *batch_loss(ur_seq2seq *m, ur_tape *t, const s2s_dataset *d, const int *idx, int B, uint64_t seed,
                           double teacher_prob, int *n_tokens) {
    static const int *src[MAX_BATCH], *tgt[MAX_BATCH];
    static int sl[MAX_BATCH], tl[MAX_BATCH];
    for (int b = 0; b < B; b++) {
        src[b] = d->src[idx[b]];
        tgt[b] = d->tgt[idx[b]];
        sl[b] = d->src_len[idx[b]];
        tl[b] = d->tgt_len[idx[b]];
    }
    return ur_seq2seq_loss_sampled(m, t, src, sl, tgt, tl, B, 1, seed, teacher_prob, n_tokens);
}

static void print_score(const char *name, const score *s, int beam) {
    printf("%s (%d sources): exact match %.2f%%, BLEU-4 %.2f, perplexity %.3f", name, s->n, 100 * s->exact,
           100 * s->bleu, s->ppl);
    if (beam) printf(", beam log-prob >= greedy on %.1f%%", 100 * s->beam_not_worse);
    printf("\n");
}

/* Greedy (and with --beam K, beam) scores of the held-out set, printed; 0 if decoding failed. */
static int score_held_out(ur_seq2seq *m, ur_tape *tape, const s2s_dataset *held, const config *cfg, score *greedy,
                          score *beam, by_length *bl) {
    *greedy = evaluate(m, tape, held, cfg, 0, bl);
    print_score("held-out, greedy", greedy, 0);
    if (cfg->beam > 1) {
        *beam = evaluate(m, tape, held, cfg, 1, NULL);
        char name[48];
        snprintf(name, sizeof name, "held-out, beam %d", cfg->beam);
        print_score(name, beam, 1);
    }
    return greedy->n > 0;
}

/* ---- settings ---- */

enum { MAX_FLAGS = 56 };
static const char ABOUT[] = "seq2seq: an encoder-decoder with attention (reverse digit strings, or English -> French)";

/* Sets the defaults and lists the flags (at most MAX_FLAGS): returns their count. */
static int flag_table(config *cfg, cli_common *c, cli_opt *opts) {
    *cfg = (config){.task = "reverse", .data = "../shared/data/eng-fra/eng-fra.txt", .cell = "gru",
                    .score = "additive", .attn_mode = "feed", .emb = 0, .hidden = 0, .layers = 1, .bi = 1,
                    .attn_size = 128, .batch = 64, .epochs = 0, .beam = 1, .max_digits = 10, .n_train = 20000,
                    .show = 5, .dropout = -1, .lr = 2e-3, .clip = 5, .len_alpha = 0, .temperature = 0,
                    .attention = "on", .sampling = "none", .sampling_k = 0, .rf = RNN_FLAGS_DEFAULT};
    const cli_opt table[] = {
        CLI_COMMON_OPTS(*c),
        CLI_CHOICE("--task", &cfg->task, TASKS, "digit strings, or English -> French pairs (default reverse)"),
        CLI_TEXT("--data", &cfg->data, "eng-fra TSV file (default ../shared/data/eng-fra/eng-fra.txt)"),
        CLI_BOOL("--eval", &cfg->eval, "only score the --load model on the held-out data"),
        CLI_CHOICE("--cell", &cfg->cell, CELLS, "recurrent cell (default gru)"),
        CLI_CHOICE("--score", &cfg->score, SCORES, "attention score (default additive)"),
        CLI_CHOICE("--attn-mode", &cfg->attn_mode, MODES, "context joins the output, feed (and input), or input "
                                                          "(default feed)"),
        CLI_CHOICE("--attention", &cfg->attention, ATTENTION, "none: no attention, the decoder sees the source "
                   "only through its initial state (default on)"),
        CLI_BOOL("--tie", &cfg->tie, "the output layer is the target embedding transposed (a projection first "
                 "when --hidden differs from --emb)"),
        CLI_CHOICE("--sampling", &cfg->sampling, SAMPLING, "scheduled sampling: how the teacher-forcing probability "
                   "decays over the training steps (default none: always the true word)"),
        CLI_REAL("--sampling-k", &cfg->sampling_k, 0, 1e9, "at step i, linear p = max(0, 1 - i/k), exp p = k^i, "
                 "sigmoid p = k/(k + exp(i/k)) (default 0: linear k = the steps, exp p = 0.01 at the end, sigmoid "
                 "k = the steps / 10)"),
        CLI_INT("--emb", &cfg->emb, 0, 4096, "embedding size (default: reverse 64, eng-fra 256)"),
        CLI_INT("--hidden", &cfg->hidden, 0, 4096, "state size per direction (default: reverse 128, eng-fra 512)"),
        CLI_INT("--layers", &cfg->layers, 1, UR_RNN_MAX_LAYERS, "encoder layers (default 1)"),
        CLI_INT("--bi", &cfg->bi, 0, 1, "1: bidirectional encoder (default 1)"),
        CLI_INT("--attn-size", &cfg->attn_size, 1, 4096, "additive attention size (default 128)"),
        CLI_REAL_BELOW("--dropout", &cfg->dropout, 0, 1, "dropout (default: reverse 0.1, eng-fra 0.4)"),
        CLI_REAL("--lr", &cfg->lr, 0, 10, "Adam learning rate, cosine-decayed (default 2e-3)"),
        CLI_REAL("--clip", &cfg->clip, 0, 1e6, "clip the global gradient norm (default 5)"),
        RNN_FLAG_OPTS(cfg->rf),
        CLI_INT("--batch", &cfg->batch, 1, MAX_BATCH, "pairs per step (default 64)"),
        CLI_INT("--epochs", &cfg->epochs, 0, 1000000,
                "passes over the training pairs (default: reverse 4, eng-fra 30)"),
        CLI_INT("--n-train", &cfg->n_train, 1, 10000000, "reverse: training strings (default 20000)"),
        CLI_INT("--max-digits", &cfg->max_digits, 1, 1000, "reverse: longest string (default 10)"),
        CLI_INT("--max-len", &cfg->max_len, 0, 4096, "longest decoded output (default: longest reference + 5)"),
        CLI_INT("--beam", &cfg->beam, 1, 64, "beam width for the held-out decoding (default 1: greedy only)"),
        CLI_REAL("--len-alpha", &cfg->len_alpha, 0, 10, "beam: normalise log-probs by length^alpha (default 0)"),
        CLI_REAL("--temperature", &cfg->temperature, 0, 100, "print samples drawn at this temperature"),
        CLI_INT("--show", &cfg->show, 0, 1000000, "held-out examples to print (default 5)"),
        CLI_TEXT("--attention-svg", &cfg->svg, "write the attention of one held-out example as SVG"),
        CLI_INT("--attention-example", &cfg->svg_index, 0, 1000000000, "which held-out source --attention-svg "
                "draws, counted from 0 in the order the examples print (default 0)"),
        CLI_TEXT("--by-length", &cfg->by_length, "write the held-out greedy scores by source length (TSV)"),
        CLI_TEXT("--compare-with", &cfg->compare_with, "--plot-by-length also draws this --by-length file of "
                 "another run"),
        CLI_TEXT("--plot-by-length", &cfg->plot_by_length, "draw exact match (reverse) or BLEU-4 (eng-fra) by "
                 "source length as SVG"),
    };
    _Static_assert(sizeof table / sizeof table[0] <= MAX_FLAGS, "MAX_FLAGS holds the table");
    memcpy(opts, table, sizeof table);
    return (int)(sizeof table / sizeof table[0]);
}

/* What the flags leave open: --eval needs a model, and the defaults of each task
 * (4,500 sentence pairs need a wider, more regularised model). 0, or 2 (a usage error). */
static int settle(config *cfg, const ur_ckpt *ck) {
    if (cfg->eval && !ck) {
        fprintf(stderr, "seq2seq: --eval needs a model (--load)\n");
        return 2;
    }
    int reverse = !strcmp(cfg->task, "reverse");
    if (cfg->epochs <= 0) cfg->epochs = reverse ? 4 : 30;
    if (cfg->emb <= 0) cfg->emb = reverse ? 64 : 256;
    if (cfg->hidden <= 0) cfg->hidden = reverse ? 128 : 512;
    if (cfg->dropout < 0) cfg->dropout = reverse ? 0.1 : 0.4;
    if (cfg->svg && !strcmp(cfg->attention, "none")) {
        fprintf(stderr, "seq2seq: --attention-svg draws attention weights: not with --attention none\n");
        return 2;
    }
    if (!strcmp(cfg->sampling, "exp") && cfg->sampling_k > 1) {
        fprintf(stderr, "seq2seq: --sampling exp needs 0 < --sampling-k <= 1, got %g\n", cfg->sampling_k);
        return 2;
    }
    if (!strcmp(cfg->sampling, "sigmoid") && cfg->sampling_k > 0 && cfg->sampling_k < 1) {
        fprintf(stderr, "seq2seq: --sampling sigmoid needs --sampling-k >= 1, got %g\n", cfg->sampling_k);
        return 2;
    }
    return 0;
}

/* The vocabularies a checkpoint carries; 0 after printing an error. */
static int load_vocabs(const ur_ckpt *ck, const char *path, ur_vocab **sv, ur_vocab **tv) {
    const char *st = ur_ckpt_meta(ck, "src_vocab"), *tt = ur_ckpt_meta(ck, "tgt_vocab");
    *sv = st ? cli_vocab_from_text(st, S2S_SRC_SPECIALS) : NULL;
    *tv = tt ? cli_vocab_from_text(tt, S2S_TGT_SPECIALS) : NULL;
    if (!*sv || !*tv) fprintf(stderr, "seq2seq: --load %s: no usable vocabularies in the metadata\n", path);
    return *sv && *tv;
}

/* The model of the settings over the two vocabularies. */
static ur_seq2seq *model_new(ur_paramset *ps, const config *cfg, const ur_vocab *sv, const ur_vocab *tv,
                             uint64_t seed) {
    ur_seq2seq_config mc = ur_seq2seq_defaults(1, 1, 0, 0);
    ur_attn_score_parse(cfg->score, &mc.score); /* the flag table admits only names these know */
    ur_s2s_attn_mode_parse(strcmp(cfg->attention, "none") ? cfg->attn_mode : "none", &mc.attn_mode);
    mc.tie_output = cfg->tie;
    mc.cell = !strcmp(cfg->cell, "lstm") ? UR_RNN_LSTM : strcmp(cfg->cell, "gru") ? UR_RNN_GRU_RESET_BEFORE : UR_RNN_GRU;
    ur_rnn_config rc = ur_rnn_defaults(mc.cell, 1, 1); /* --init, --forget-bias, --variational */
    rnn_flags_apply(&cfg->rf, &rc);
    mc.init = rc.init;
    mc.forget_bias = rc.forget_bias;
    mc.variational = rc.variational;
    mc.src_vocab = ur_vocab_size(sv);
    mc.tgt_vocab = ur_vocab_size(tv);
    mc.bos_id = ur_vocab_special_id(tv, UR_VOCAB_BOS);
    mc.eos_id = ur_vocab_special_id(tv, UR_VOCAB_EOS);
    mc.emb_dim = cfg->emb;
    mc.hidden = cfg->hidden;
    mc.enc_layers = cfg->layers;
    mc.bidirectional = cfg->bi;
    mc.attn_size = cfg->attn_size;
    mc.dropout = cfg->dropout;
    mc.seed = seed;
    return ur_seq2seq_new(ps, "s2s", &mc);
}

/* ---- looking inside, saving, showing ---- */

/* --print-tape, --dot, --grad-report: one training step on the first two pairs. */
static void look_inside(const cli_common *c, const config *cfg, ur_seq2seq *m, ur_paramset *ps, ur_tape *tape,
                        const s2s_dataset *train) {
    int idx[2] = {0, train->n > 1 ? 1 : 0}, B = cfg->batch < 2 ? 1 : 2;
    ur_tape_reset(tape);
    ur_node *loss = batch_loss(m, tape, train, idx, B, 1, 1, NULL);
    ur_paramset_zero_grad(ps);
    if (ur_backward(tape, loss) == UR_OK) {
        if (c->print_tape) ur_tape_print(tape, stdout);
        if (c->dot && cli_write_dot(tape, c->dot) == 0)
            printf("wrote the tape of one training step (%d pairs) to %s\n", B, c->dot);
        if (c->grad_report) cli_grad_report_params(ps, stdout);
    }
    ur_paramset_zero_grad(ps);
}

/* The checkpoint: parameters, optimizer, the stored flags and both vocabularies. 1, or 0 after an error. */
static int save(const char *path, const ur_paramset *ps, const ur_optim *opt, const ur_vocab *sv,
                const ur_vocab *tv, const cli_opt *opts, int n_opts) {
    char store[N_STORED][CLI_META_LEN];
    ur_ckpt_kv meta[N_STORED + 4];
    char *st = cli_vocab_to_text(sv, 2), *tt = cli_vocab_to_text(tv, 4); /* after the specials */
    int k = cli_meta_put(opts, n_opts, STORED, store, meta);
    meta[k++] = (ur_ckpt_kv){"example", "seq2seq"};
    meta[k++] = (ur_ckpt_kv){"src_vocab", st ? st : ""};
    meta[k++] = (ur_ckpt_kv){"tgt_vocab", tt ? tt : ""};
    meta[k] = (ur_ckpt_kv){NULL, NULL};
    int ok = st && tt && ur_ckpt_save_training(path, ps, opt, meta) == UR_OK;
    if (ok) printf("saved %s (step %ld)\n", path, (long)ur_optim_step_count(opt));
    else fprintf(stderr, "seq2seq: --save %s: %s\n", path, ur_last_error());
    free(st);
    free(tt);
    return ok;
}

/* The first --show held-out sources: reference, greedy and beam outputs, samples. */
static void show_examples(ur_seq2seq *m, ur_tape *tape, const s2s_dataset *held, const config *cfg, const ur_vocab *sv,
                          const ur_vocab *tv, uint64_t seed, int *out) {
    int chars = !strcmp(cfg->task, "reverse"), len;
    ur_rng sample_rng;
    ur_rng_seed(&sample_rng, seed + 17);
    for (int i = 0, shown = 0; i < held->n && shown < cfg->show; i++) {
        if (i && held->ex[i].group == held->ex[i - 1].group) continue;
        shown++;
        printf("  source    ");
        print_ids(stdout, sv, held->src[i], held->src_len[i], chars);
        printf("\n  reference ");
        print_ids(stdout, tv, held->tgt[i], held->tgt_len[i], chars);
        double lp;
        if (ur_seq2seq_greedy(m, tape, &held->src[i], &held->src_len[i], 1, cfg->max_len, out, &len, &lp, NULL) ==
            UR_OK) {
            printf("\n  greedy    ");
            print_ids(stdout, tv, out, len, chars);
            printf("   (log p %.3f)", lp);
        }
        ur_beam_config bc = {cfg->beam, cfg->len_alpha, 0};
        if (cfg->beam > 1 &&
            ur_seq2seq_beam(m, tape, held->src[i], held->src_len[i], cfg->max_len, &bc, out, &len, &lp) == UR_OK) {
            printf("\n  beam %-4d ", cfg->beam);
            print_ids(stdout, tv, out, len, chars);
            printf("   (log p %.3f)", lp);
        }
        for (int s = 0; cfg->temperature > 0 && s < 3; s++)
            if (ur_seq2seq_sample(m, tape, &held->src[i], &held->src_len[i], 1, cfg->max_len, cfg->temperature,
                                  &sample_rng, out, &len, &lp) == UR_OK) {
                printf("\n  T=%-7.2f ", cfg->temperature);
                print_ids(stdout, tv, out, len, chars);
                printf("   (log p %.3f)", lp);
            }
        printf("\n");
    }
}

/* The first pair of held-out source number k (its references follow it), or -1. */
static int held_out_source(const s2s_dataset *held, int k) {
    for (int i = 0, n = -1; i < held->n; i++) {
        n += i == 0 || held->ex[i].group != held->ex[i - 1].group;
        if (n == k) return i;
    }
    return -1;
}

/* What the held-out set decides: the default --max-len (room beyond the longest
 * reference) and the pair --attention-example names. 1, or 0 after an error. */
static int held_out_settings(config *cfg, const s2s_dataset *held, int *svg_pair) {
    if (cfg->max_len <= 0) {
        for (int i = 0; i < held->n; i++)
            if (held->tgt_len[i] > cfg->max_len) cfg->max_len = held->tgt_len[i];
        cfg->max_len += 5;
    }
    *svg_pair = cfg->svg ? held_out_source(held, cfg->svg_index) : -1;
    if (cfg->svg && *svg_pair < 0) {
        fprintf(stderr, "seq2seq: --attention-example %d: there are fewer held-out sources\n", cfg->svg_index);
        return 0;
    }
    return 1;
}

/* --attention-svg: greedy decoding of held-out pair i, its attention as a picture. 1, or 0 after an error. */
static int write_attention(ur_seq2seq *m, ur_tape *tape, const s2s_dataset *held, int i, const config *cfg,
                           const ur_vocab *sv, const ur_vocab *tv, int *out) {
    int S = held->src_len[i], len, ok = 0, eos = ur_vocab_special_id(tv, UR_VOCAB_EOS);
    ur_real *attn = malloc((size_t)cfg->max_len * (size_t)S * sizeof *attn);
    double lp;
    if (!attn)
        fprintf(stderr, "seq2seq: --attention-svg: out of memory\n");
    else if (ur_seq2seq_greedy(m, tape, &held->src[i], &held->src_len[i], 1, cfg->max_len, out, &len, &lp, attn) !=
             UR_OK)
        fprintf(stderr, "seq2seq: --attention-svg: %s\n", ur_last_error());
    else if (!svg_attention(cfg->svg, sv, tv, held->src[i], S, out, len, len < cfg->max_len, eos, attn))
        fprintf(stderr, "seq2seq: --attention-svg: cannot write %s\n", cfg->svg);
    else
        ok = 1;
    if (ok) printf("wrote the attention of held-out example %d to %s\n", cfg->svg_index, cfg->svg);
    free(attn);
    return ok;
}

/* What a training run did, for the progress lines and the JSON line. */
typedef struct run_stats {
    long first, last, tokens; /* this run trained steps first .. last-1 */
    double first_loss, last_loss, seconds, started;
    double *losses; /* last - first */
    double last_p;  /* the teacher-forcing probability of the last step */
    double window;  /* the losses since the last progress line, and their number */
    long n_window;
} run_stats;

static void print_json(const config *cfg, const run_stats *r, const ur_optim *opt, const ur_paramset *ps,
                       const score *greedy, const score *beam) {
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "example", "seq2seq");
    cli_json_str(&j, "task", cfg->task);
    if (!cfg->eval) { /* --eval does not read the optimizer: no step count */
        cli_json_int(&j, "step", (long)ur_optim_step_count(opt));
        cli_json_int(&j, "first_step", r->first + 1);
        cli_json_num(&j, "first_loss", r->first_loss);
        cli_json_num(&j, "last_loss", r->last_loss);
        if (strcmp(cfg->sampling, "none")) cli_json_num(&j, "teacher_prob_last", r->last_p);
    }
    cli_json_num(&j, "exact_match", greedy->exact);
    cli_json_num(&j, "bleu4", greedy->bleu);
    cli_json_num(&j, "perplexity", greedy->ppl);
    if (cfg->beam > 1) {
        cli_json_int(&j, "beam", cfg->beam);
        cli_json_num(&j, "beam_exact_match", beam->exact);
        cli_json_num(&j, "beam_bleu4", beam->bleu);
        cli_json_num(&j, "beam_not_below_greedy", beam->beam_not_worse);
    }
    cli_json_int(&j, "params", (long)ur_paramset_numel(ps));
    if (!cfg->eval) {
        cli_json_num(&j, "seconds", r->seconds);
        cli_json_num(&j, "tokens_per_s", r->seconds > 0 ? (double)r->tokens / r->seconds : 0);
        cli_json_array(&j, "losses", r->losses, (int)(r->last > r->first ? r->last - r->first : 0));
    }
    cli_json_end(&j);
}

/* ---- scheduled sampling ---- */

static long total_steps(const config *cfg, int n_train) {
    return (n_train + cfg->batch - 1) / cfg->batch * (long)cfg->epochs;
}

/* --sampling-k, or the schedule's default for a run of `total` steps. */
static double sampling_k(const config *cfg, long total) {
    if (cfg->sampling_k > 0) return cfg->sampling_k;
    double n = total > 1 ? (double)total : 1;
    if (!strcmp(cfg->sampling, "linear")) return n;
    if (!strcmp(cfg->sampling, "exp")) return pow(0.01, 1 / n);
    return n / 10 > 1 ? n / 10 : 1; /* sigmoid */
}

/* The teacher-forcing probability at training step i (counted from 0). */
static double teacher_prob(const config *cfg, long i, long total) {
    if (!strcmp(cfg->sampling, "none")) return 1;
    double k = sampling_k(cfg, total), x = (double)i;
    if (!strcmp(cfg->sampling, "linear")) return x / k < 1 ? 1 - x / k : 0;
    if (!strcmp(cfg->sampling, "exp")) return pow(k, x);
    return k / (k + exp(x / k)); /* inverse sigmoid */
}

/* --by-length, --plot-by-length: the scores by source length of this run (and of
 * --compare-with). 1, or 0 after an error. */
static int write_by_length(const config *cfg, by_length *bl) {
    if (strcmp(cfg->attention, "none")) snprintf(bl->label, sizeof bl->label, "attention (%s)", cfg->attn_mode);
    else snprintf(bl->label, sizeof bl->label, "no attention");
    if (strcmp(cfg->sampling, "none"))
        snprintf(bl->label + strlen(bl->label), sizeof bl->label - strlen(bl->label), ", sampling %s", cfg->sampling);
    if (cfg->by_length && !by_length_write(bl, cfg->by_length)) return 0;
    if (cfg->by_length) printf("wrote the held-out scores by source length to %s\n", cfg->by_length);
    if (!cfg->plot_by_length) return 1;
    static by_length other;
    const by_length *runs[2] = {bl, &other};
    if (cfg->compare_with && !by_length_read(&other, cfg->compare_with)) return 0;
    int reverse = !strcmp(cfg->task, "reverse");
    const char *title = reverse ? "reversing digit strings: held-out exact match (greedy)"
                                : "English -> French: held-out BLEU-4 (greedy)";
    if (!by_length_plot(cfg->plot_by_length, title, runs, cfg->compare_with ? 2 : 1, !reverse)) {
        fprintf(stderr, "seq2seq: --plot-by-length: cannot write %s\n", cfg->plot_by_length);
        return 0;
    }
    printf("drew the held-out scores by source length in %s\n", cfg->plot_by_length);
    return 1;
}

/* ---- the program's parts ---- */

/* The pairs and their vocabularies. */
typedef struct corpus {
    ur_vocab *sv, *tv;
    s2s_dataset train, held;
} corpus;

/* The task's pairs (a loaded model brings its vocabularies), what the held-out set
 * decides, and a line saying what was read. 1, or 0 after an error. */
static int load_corpus(config *cfg, const cli_common *c, const ur_ckpt *ck, corpus *d, int *svg_pair) {
    s2s_task task = {cfg->task, cfg->data, cfg->n_train, cfg->max_digits};
    int n_seen = 0;
    if ((ck && !load_vocabs(ck, c->load, &d->sv, &d->tv)) ||
        !s2s_load_data(&task, (uint64_t)c->seed, &d->sv, &d->tv, &d->train, &d->held, &n_seen) ||
        !held_out_settings(cfg, &d->held, svg_pair))
        return 0;
    if (!strcmp(cfg->task, "reverse"))
        printf("seq2seq: reverse: %d training strings, %d held-out strings (%d of them also in training)\n",
               d->train.n, d->held.n, n_seen);
    else
        printf("seq2seq: eng-fra: %d training pairs, %d held-out pairs; vocabularies %d -> %d words\n", d->train.n,
               d->held.n, ur_vocab_size(d->sv), ur_vocab_size(d->tv));
    return 1;
}

static void corpus_free(corpus *d) {
    s2s_dataset_free(&d->train);
    s2s_dataset_free(&d->held);
    ur_vocab_free(d->sv);
    ur_vocab_free(d->tv);
}

/* The model line (and the sampling schedule's). */
static void print_model(const config *cfg, const ur_paramset *ps, int n_train) {
    printf("model: %s encoder %s%d x %d, ", cfg->cell, cfg->bi ? "bi-" : "", cfg->layers, cfg->hidden);
    if (strcmp(cfg->attention, "none")) printf("%s attention (%s)", cfg->score, cfg->attn_mode);
    else printf("no attention");
    printf("%s, %zu parameters\n", cfg->tie ? ", tied output" : "", ur_paramset_numel(ps));
    if (strcmp(cfg->sampling, "none"))
        printf("scheduled sampling: %s, k = %g\n", cfg->sampling, sampling_k(cfg, total_steps(cfg, n_train)));
}

/* The batches of an epoch: length-bucketed, in an order that depends on the seed
 * and the epoch only (a resumed run sees the same). Frees old; NULL after an error. */
static ur_batches *epoch_order(ur_batches *old, const s2s_dataset *train, int batch, uint64_t seed, long epoch) {
    ur_batches_free(old);
    ur_batches *order = NULL;
    ur_rng er;
    ur_rng_seed(&er, seed * 7919u + (uint64_t)epoch);
    if (ur_bucket_batches(train->src_len, train->n, batch, &er, &order) != UR_OK) {
        fprintf(stderr, "seq2seq: %s\n", ur_last_error());
        return NULL;
    }
    return order;
}

/* After training step `step` (loss l): every 20 steps the progress line with the
 * mean loss since the last one; on eng-fra every 5 epochs the held-out perplexity. */
static void progress(run_stats *r, long step, double l, long per_epoch, ur_seq2seq *m, ur_tape *tape,
                     const config *cfg, const s2s_dataset *held) {
    r->window += l;
    r->n_window++;
    if ((step + 1) % 20 == 0 || step + 1 == r->last) {
        r->last_loss = r->window / (double)r->n_window;
        cli_progress(step + 1, r->last, r->last_loss, (double)r->tokens / (cli_now() - r->started), r->started);
        r->window = 0;
        r->n_window = 0;
    }
    double ppl;
    if ((step + 1) % per_epoch == 0 && step + 1 < r->last && strcmp(cfg->task, "reverse") &&
        (step + 1) / per_epoch % 5 == 0 &&
        ur_seq2seq_perplexity(m, tape, held->src, held->src_len, held->tgt, held->tgt_len, held->n, 64, &ppl, NULL) ==
            UR_OK) {
        cli_progress_end();
        printf("epoch %ld: held-out perplexity %.3f\n", (step + 1) / per_epoch, ppl);
    }
}

/* Held-out scores (greedy, and beam), by length, examples, attention, timing and
 * the JSON line. 1, or 0 after an error. */
static int held_out_report(ur_seq2seq *m, ur_tape *tape, const corpus *d, const config *cfg, const cli_common *c,
                           const run_stats *run, const ur_optim *opt, const ur_paramset *ps, int svg_pair) {
    score greedy = {NAN, NAN, NAN, NAN, 0}, beam = greedy;
    double t0 = cli_now();
    static by_length bl;
    int ok = score_held_out(m, tape, &d->held, cfg, &greedy, &beam, &bl);
    if (ok && (cfg->by_length || cfg->plot_by_length)) ok = write_by_length(cfg, &bl);
    double eval_s = cli_now() - t0;
    int *out = malloc((size_t)cfg->max_len * sizeof *out);
    if (ok && out) show_examples(m, tape, &d->held, cfg, d->sv, d->tv, (uint64_t)c->seed, out);
    if (ok && out && cfg->svg) ok = write_attention(m, tape, &d->held, svg_pair, cfg, d->sv, d->tv, out);
    free(out);
    if (ok && !cfg->eval) printf("trained %ld steps in %.1f s; ", run->last - run->first, run->seconds);
    if (ok) printf("held-out decoding %.1f s\n", eval_s);
    if (ok && c->json) print_json(cfg, run, opt, ps, &greedy, &beam);
    return ok;
}

/* ---- the program ---- */

int main(int argc, char **argv) {
    cli_common c;
    cli_common_defaults(&c);
    config cfg;
    cli_opt opts[MAX_FLAGS];
    int n_opts = flag_table(&cfg, &c, opts);
    ur_ckpt *ck = NULL;
    int r = cli_start(argc, argv, "seq2seq", ABOUT, &c, opts, n_opts, STORED, &ck);
    if (r >= 0) return r;
    if (settle(&cfg, ck) != 0) return 2;

    /* ---- data: training pairs, held-out pairs (a loaded model brings its vocabularies) ---- */
    corpus d = {0};
    int svg_pair = -1, ok = load_corpus(&cfg, &c, ck, &d, &svg_pair);

    /* ---- the model and Adam ---- */
    ur_paramset *ps = ur_paramset_new();
    ur_seq2seq *m = ok ? model_new(ps, &cfg, d.sv, d.tv, (uint64_t)c.seed) : NULL;
    ur_optim_config oc = ur_optim_defaults(UR_OPTIM_ADAM, cfg.lr);
    ur_optim *opt = m ? ur_optim_new(ps, &oc) : NULL;
    ur_tape *tape = cli_tape_new(&c);
    if (ok && (!m || !opt || !tape)) {
        fprintf(stderr, "seq2seq: setup failed: %s\n", ur_last_error());
        ok = 0;
    }
    if (ok && ck) ok = cli_load_training(ck, c.load, "seq2seq", ps, cfg.eval ? NULL : opt, NULL); /* --eval: weights */
    if (ok) print_model(&cfg, ps, d.train.n);

    /* ---- training: length-bucketed batches, a new order every epoch, cosine learning rate ---- */
    long per_epoch = ok ? (d.train.n + cfg.batch - 1) / cfg.batch : 1, total = total_steps(&cfg, d.train.n);
    run_stats run = {.first = ok ? (long)ur_optim_step_count(opt) : 0, .first_loss = NAN, .last_loss = NAN};
    run.last = cfg.eval ? run.first : c.steps > 0 && c.steps < total ? c.steps : total;
    ur_lr_schedule sched = ur_lr_cosine(cfg.lr, cfg.lr / 20, total);
    run.losses = calloc((size_t)(run.last > run.first ? run.last - run.first : 1), sizeof *run.losses);
    ok = ok && run.losses;
    if (ok && !cfg.eval && (c.dot || c.print_tape || c.grad_report)) look_inside(&c, &cfg, m, ps, tape, &d.train);
    ur_batches *order = NULL;
    run.started = cli_now();
    if (ok && run.last > run.first) cli_progress_start(run.first);
    for (long step = run.first; ok && step < run.last; step++) {
        long k = step % per_epoch;
        if (!order || k == 0) order = epoch_order(order, &d.train, cfg.batch, (uint64_t)c.seed, step / per_epoch);
        if (!order) {
            ok = 0;
            break;
        }
        int B = order->offset[k + 1] - order->offset[k], n_tok = 0;
        ur_tape_reset(tape);
        double p = run.last_p = teacher_prob(&cfg, step, total);
        ur_node *loss = batch_loss(m, tape, &d.train, order->index + order->offset[k], B,
                                   (uint64_t)c.seed * 1000003u + (uint64_t)step, p, &n_tok);
        ur_optim_zero_grad(opt);
        if (ur_backward(tape, loss) != UR_OK) {
            fprintf(stderr, "seq2seq: %s\n", ur_tape_error(tape) ? ur_tape_errmsg(tape) : ur_last_error());
            ok = 0;
            break;
        }
        ur_optim_set_lr(opt, ur_lr_at(&sched, step));
        if (rnn_flags_clip(&cfg.rf, ps) != UR_OK || ur_clip_grad_norm(ps, cfg.clip, NULL) != UR_OK ||
            ur_optim_step(opt) != UR_OK) {
            fprintf(stderr, "seq2seq: step %ld: %s\n", step + 1, ur_last_error());
            ok = 0;
            break;
        }
        double l = run.losses[step - run.first] = ur_node_item(loss);
        if (step == run.first) run.first_loss = l;
        run.tokens += n_tok;
        progress(&run, step, l, per_epoch, m, tape, &cfg, &d.held);
    }
    cli_progress_end();
    run.seconds = cli_now() - run.started;
    if (ok && c.save) ok = save(c.save, ps, opt, d.sv, d.tv, opts, n_opts);

    /* ---- held-out scores, examples, attention ---- */
    ok = ok && held_out_report(m, tape, &d, &cfg, &c, &run, opt, ps, svg_pair);

    free(run.losses);
    ur_batches_free(order);
    ur_tape_free(tape);
    ur_optim_free(opt);
    ur_seq2seq_free(m);
    ur_paramset_free(ps);
    corpus_free(&d);
    ur_ckpt_close(ck);
    ur_kernel_free_buffers();
    return ok ? 0 : 1;
}
