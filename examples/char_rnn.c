/* char_rnn - a character-level language model: read text, predict the next byte.
 *
 *   char_rnn                         train on generated play text (no download), 1-2 minutes
 *   char_rnn --data input.txt        train on a file: first 90% train, last 10% validation
 *   char_rnn --cell gru --layers 2 --hidden 512 --embed 0 ...   (see --help)
 *
 * The model, for B parallel streams of text cut into segments of T = --bptt bytes:
 *     x_t = E[c_t]                    (B, E) embedding rows, or one-hot rows (B, V) with --embed 0
 *     h_t = RNN, GRU or LSTM stack    (B, H) ur_rnn_forward over the whole segment
 *     y_t = h_t W_out + b_out         (B, V) scores of the next byte
 *     with --tie: y_t = h_t P E^T + b_out, the embedding read backwards (Press & Wolf
 *     2017; Inan et al. 2017): no (H, V) matrix, and P (H, E) only when H != E
 *     L   = mean over t, b of cross_entropy(y_t, c_{t+1})
 *
 * Truncated backpropagation through time: stream b reads its own slice of the
 * training text from start to end, one segment per step. The final states of a
 * segment are copied out of the tape (ur_rnn_state_save) and fed into the next one
 * as constants (ur_rnn_state_feed): the model's memory runs on across segments, but
 * gradients stop at the cut, so one step costs T time steps whatever the text length.
 *
 * BPTT(k1, k2) (Williams & Peng 1990), --bptt K1 --bptt-window K2: the streams still
 * advance K1 bytes per step, but each step runs the last K2 bytes, from the state
 * carried K2 - K1 bytes before the new ones, and puts the loss on the last K1
 * positions only: every loss backpropagates at least K2 - K1 steps, where plain
 * truncation (K2 = K1) gives the first byte of a segment no gradient history at all.
 * The state carried on is the one after the first K1 bytes of the window.
 *
 * Validation loss is reported in bits per character, L / ln 2, and as perplexity
 * exp(L): the model is as unsure as a uniform choice among exp(L) characters.
 *
 * --save writes the parameters, Adam's state, the carried states, the RNG and the
 * settings; --load rebuilds the same model from it and continues the run exactly
 * (--steps N stops at step N counted from the start of training, also after --load).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_hooks_internal.h"
#include "cli.h"
#include "dist_cli.h"
#include "rnn_flags.h"
#include "unroll.h"
#include "ur_checkpoint.h"
#include "ur_init.h"
#include "ur_optim.h"
#include "ur_rnn.h"

/* ---- settings (flags) ---- */
typedef struct config {
    const char *data;  /* text file; NULL or "": generated text */
    long gen_bytes;    /* size of the generated text */
    long gen_seed;     /* its seed (independent of --seed) */
    const char *cell;  /* rnn | gru | lstm | a registered cell name */
    int layers, hidden, embed;
    double dropout;    /* between layers and before the output layer */
    int bptt, batch;
    int tie;           /* output layer = embedding transposed */
    int window;        /* BPTT(k1, k2): steps each loss backpropagates (0: --bptt) */
    int residual;      /* layers 1.. add their input to their output */
    double lr, clip;
    long iters;        /* planned training steps (the learning-rate schedule spans them) */
    long eval_every;   /* validation every N steps (0: only at the end) */
    long val_chars;    /* score only the first N validation characters (0: all) */
    long log_every;
    int sample;        /* characters to sample at the end */
    double temperature;
    const char *prime;
    rnn_flags rf;      /* --init, --forget-bias, --variational, --clip-value */
} config;

/* The flags that define the model and the run: kept in checkpoints. */
static const char *const STORED[] = {"--data", "--gen-bytes", "--gen-seed", "--cell", "--layers", "--hidden",
                                     "--embed", "--dropout", "--bptt", "--batch", "--lr", "--clip",
                                     "--iters", "--seed", CLI_ADDED_LATER, RNN_FLAG_NAMES, "--tie", "--bptt-window", "--residual",
                                     NULL};

/* ---- the model ---- */
typedef struct model {
    ur_paramset *ps;
    ur_rnn *rnn;
    ur_param *embed;         /* (V, E), or NULL: one-hot inputs */
    ur_tensor *identity;     /* (V, V): one-hot rows, when there is no embedding */
    ur_param *W_out, *b_out; /* (H, V), (V); W_out NULL when tied */
    ur_param *proj;          /* tied, H != E: (H, E) from the hidden state to the embedding space */
    int V, H, tie;
    double dropout;
} model;

/* The cells --cell takes: "rnn" (the tanh Elman cell) and every registered cell,
 * built-in or a user's (nn/ur_cell.h); filled once by flag_table. */
static const char *CELLS[UR_CELL_MAX + 2];
static const ur_cell_def *cell_def(const char *name) {
    return ur_cell_find(!strcmp(name, "rnn") ? "rnn_tanh" : name);
}

static int model_build(model *m, const config *cfg, int V, ur_rng *rng, uint64_t seed) {
    m->V = V;
    m->H = cfg->hidden;
    m->dropout = cfg->dropout;
    m->ps = ur_paramset_new();
    if (!m->ps) return 0;
    int in = V;
    if (cfg->embed > 0) {
        in = cfg->embed;
        m->embed = ur_paramset_add(m->ps, "embed.weight", 2, (int[]){V, in});
        if (!m->embed || ur_init_normal(&m->embed->value, rng, 0.0, 1.0) != UR_OK) return 0;
    } else {
        m->identity = ur_tensor_new_2d(V, V);
        if (!m->identity || ur_init_identity(m->identity, 1.0) != UR_OK) return 0;
    }
    ur_rnn_config rc = ur_rnn_defaults_cell(cell_def(cfg->cell), in, cfg->hidden);
    rc.num_layers = cfg->layers;
    rc.dropout = cfg->dropout;
    rc.residual = cfg->residual;
    rc.seed = seed;
    rnn_flags_apply(&cfg->rf, &rc);
    m->rnn = ur_rnn_new(m->ps, "rnn", &rc);
    m->b_out = ur_paramset_add(m->ps, "out.bias", 1, (int[]){V});
    if (!m->rnn || !m->b_out) return 0;
    m->tie = cfg->tie;
    if (m->tie && cfg->hidden == in) return 1; /* logits = h E^T + b */
    ur_param **w = m->tie ? &m->proj : &m->W_out;
    *w = m->tie ? ur_paramset_add(m->ps, "out.proj", 2, (int[]){cfg->hidden, in})
                : ur_paramset_add(m->ps, "out.weight", 2, (int[]){cfg->hidden, V});
    return *w && ur_init_xavier_uniform(&(*w)->value, rng, 1.0) == UR_OK;
}

static void model_free(model *m) {
    ur_rnn_free(m->rnn);
    ur_paramset_free(m->ps);
    ur_tensor_free(m->identity);
}

/* The RNN over x (T, B, E) in two runs, steps [0, n) and [n, T), the second from the
 * first's final states (on the tape: the gradient flows through): *final gets the
 * states after step n, where the next window of BPTT(k1, k2) starts. Returns (T*B, H). */
static ur_node *rnn_split(ur_tape *t, model *m, ur_node *x, int n, const ur_rnn_args *args, ur_rnn_final *final) {
    int T = ur_node_dim(x, 0), B = ur_node_dim(x, 1), E = ur_node_dim(x, 2);
    ur_node *rows = ur_reshape(t, x, 2, (int[]){T * B, E});
    ur_node *xa = ur_reshape(t, ur_slice(t, rows, 0, 0, n * B), 3, (int[]){n, B, E});
    ur_node *xb = ur_reshape(t, ur_slice(t, rows, 0, n * B, (T - n) * B), 3, (int[]){T - n, B, E});
    ur_node *h[2];
    h[0] = ur_rnn_forward(m->rnn, t, xa, args, final); /* (n, B, H) */
    if (!h[0]) return NULL;                             /* the error is on the tape */
    ur_rnn_args rest = *args;
    rest.seed = args->seed ^ 0xb0b0ULL; /* other dropout masks for the second part */
    for (int j = 0; j < UR_CELL_MAX_STATES; j++)
        for (int k = 0; k < UR_RNN_MAX_STATES; k++) rest.s0[j][k] = final->s[j][k];
    h[1] = ur_rnn_forward(m->rnn, t, xb, &rest, NULL); /* (T - n, B, H) */
    if (!h[1]) return NULL;
    for (int i = 0; i < 2; i++) h[i] = ur_reshape(t, h[i], 2, (int[]){ur_node_dim(h[i], 0) * B, m->H});
    return ur_reshape(t, ur_concat(t, 2, h, 0), 3, (int[]){T, B, m->H});
}

/* Scores of the next byte after each of the T*B bytes ids (time-major: ids[t*B + b]),
 * for the last `keep` steps only. Returns logits (keep*B, V); *h gets the top layer's
 * outputs (T, B, H). *final gets the states after step T, or, when 0 < split < T,
 * after step split (rnn_split). */
static ur_node *model_forward(ur_tape *t, model *m, const int *ids, int T, int B, const ur_rnn_args *args,
                              ur_rnn_final *final, ur_node **h, int split, int keep) {
    ur_node *table = m->embed ? ur_param_node(t, m->embed) : ur_input(t, m->identity);
    ur_node *x = ur_gather(t, table, ids, T * B);                        /* (T*B, E) */
    x = ur_reshape(t, x, 3, (int[]){T, B, ur_node_dim(x, 1)});           /* (T, B, E) */
    ur_node_set_label(t, x, "x");
    *h = split > 0 && split < T ? rnn_split(t, m, x, split, args, final)
                                : ur_rnn_forward(m->rnn, t, x, args, final); /* (T, B, H) */
    ur_node_set_label(t, *h, "h");
    ur_node *y = *h;
    if (args->training && m->dropout > 0) y = ur_dropout(t, y, (ur_real)m->dropout, args->seed ^ 0x5eedULL);
    y = ur_reshape(t, y, 2, (int[]){T * B, m->H});                       /* (T*B, H) */
    if (keep < T) y = ur_slice(t, y, 0, (T - keep) * B, keep * B);       /* (keep*B, H) */
    if (m->tie) { /* E has two uses now; its gradient is the sum of both */
        if (m->proj) y = ur_matmul(t, y, ur_param_node(t, m->proj), 0, 0); /* (keep*B, E) */
        y = ur_add(t, ur_matmul(t, y, table, 0, 1), ur_param_node(t, m->b_out)); /* (keep*B, E) x (E, V) */
    } else {
        y = ur_linear(t, y, ur_param_node(t, m->W_out), ur_param_node(t, m->b_out)); /* (keep*B, V) */
    }
    ur_node_set_label(t, y, "logits");
    return y;
}

/* ---- batches of the training text ----
 * Stream b reads ids[b*L .. (b+1)*L], L = (n - 1) / B; a window of an epoch is its
 * bytes from .. from + T - 1 (inputs) and the bytes one further on (targets). This
 * rank reads streams lo .. lo + n - 1: x and y get (T, n), time-major. */
static void read_window(const int *ids, size_t L, int T, long from, int lo, int n, int *x, int *y) {
    for (int t = 0; t < T; t++)
        for (int b = 0; b < n; b++) {
            size_t at = (size_t)(lo + b) * L + (size_t)from + (size_t)t;
            x[t * n + b] = ids[at];
            y[t * n + b] = ids[at + 1];
        }
}

/* Mean cross-entropy (nats per byte) of the model on ids[0..n): B streams read
 * the text in segments of at most T, states carried, no gradients, no dropout. */
static double evaluate(model *m, ur_tape *t, const int *ids, size_t n, int B, int T, int *x, int *y) {
    if (n < 2) return NAN;
    if ((size_t)B > n - 1) B = (int)(n - 1);
    size_t L = (n - 1) / (size_t)B;
    ur_rnn_state *st = ur_rnn_state_new(m->rnn, B);
    if (!st) return NAN;
    double sum = 0;
    size_t count = 0;
    int was = ur_tape_set_grad_enabled(t, 0);
    for (size_t pos = 0; pos < L; pos += (size_t)T) {
        int Ts = (int)(L - pos < (size_t)T ? L - pos : (size_t)T);
        for (int s = 0; s < Ts; s++)
            for (int b = 0; b < B; b++) {
                size_t at = (size_t)b * L + pos + (size_t)s;
                x[s * B + b] = ids[at];
                y[s * B + b] = ids[at + 1];
            }
        ur_tape_reset(t);
        ur_rnn_args args = {0};
        ur_rnn_final fin;
        ur_node *h;
        ur_rnn_state_feed(st, t, &args);
        ur_node *loss = ur_cross_entropy(t, model_forward(t, m, x, Ts, B, &args, &fin, &h, Ts, Ts), y, NULL);
        if (ur_tape_error(t)) {
            sum = NAN;
            break;
        }
        ur_rnn_state_save(st, &fin);
        sum += ur_node_item(loss) * Ts * B;
        count += (size_t)Ts * (size_t)B;
    }
    ur_tape_set_grad_enabled(t, was);
    ur_rnn_state_free(st);
    return count ? sum / (double)count : NAN;
}

/* ---- sampling ---- */

/* Runs T bytes of one stream from the carried state st (updated); returns the
 * scores (T, V) of the byte after each, NULL on error (message on stderr). */
static ur_node *sample_forward(model *m, ur_tape *t, ur_rnn_state *st, const int *ids, int T) {
    ur_tape_reset(t);
    ur_rnn_args args = {0};
    ur_rnn_final fin;
    ur_node *h;
    ur_rnn_state_feed(st, t, &args);
    ur_node *logits = model_forward(t, m, ids, T, 1, &args, &fin, &h, T, T);
    if (ur_tape_error(t)) {
        fprintf(stderr, "char_rnn: sampling: %s\n", ur_tape_errmsg(t));
        return NULL;
    }
    ur_rnn_state_save(st, &fin);
    return logits;
}

/* One byte id drawn from softmax(scores / temp); temp <= 0: the most likely. p: V scratch. */
static int draw(const ur_real *scores, int V, double temp, ur_rng *rng, double *p) {
    int best = 0;
    for (int k = 1; k < V; k++)
        if (scores[k] > scores[best]) best = k;
    if (temp <= 0) return best;
    double z = 0, acc = 0, u = ur_rng_uniform(rng);
    for (int k = 0; k < V; k++) z += p[k] = exp((scores[k] - scores[best]) / temp);
    int k = 0;
    while (k < V - 1 && (acc += p[k] / z) <= u) k++;
    return k;
}

/* Feeds the prime through the model, then draws n bytes one at a time. Writes
 * prime + sample, NUL-terminated, into out. Returns 0 or -1 (error on stderr). */
static int sample_text(model *m, ur_tape *t, const ur_charset *cs, const char *prime, int n, double temp,
                       ur_rng *rng, char *out) {
    size_t np = strlen(prime);
    int *ids = malloc((np + 1) * sizeof *ids);
    double *p = malloc((size_t)m->V * sizeof *p);
    ur_rnn_state *st = ur_rnn_state_new(m->rnn, 1);
    int ok = ids && p && st && np > 0;
    if (ok && ur_charset_encode(cs, prime, np, ids) != UR_OK) {
        fprintf(stderr, "char_rnn: --prime: %s (the text has no such character)\n", ur_last_error());
        ok = 0;
    }
    int was = ur_tape_set_grad_enabled(t, 0);
    memcpy(out, prime, np);
    size_t len = np;
    ur_node *scores = ok ? sample_forward(m, t, st, ids, (int)np) : NULL; /* (np, V) */
    for (int i = 0; scores && i < n; i++) {
        const ur_real *last = ur_node_cdata(scores) + (size_t)(ur_node_dim(scores, 0) - 1) * (size_t)m->V;
        int next = draw(last, m->V, temp, rng, p);
        out[len++] = (char)cs->chars[next];
        if (i + 1 < n) scores = sample_forward(m, t, st, &next, 1);
    }
    out[len] = '\0';
    ur_tape_set_grad_enabled(t, was);
    ur_rnn_state_free(st);
    free(ids);
    free(p);
    return ok && scores ? 0 : -1;
}

/* ---- checkpoints ----
 * Parameters, the optimizer's state (Adam's moments, step count), the carried
 * states of the B training streams, the RNG, and the settings as metadata. */
static int save_checkpoint(const char *path, const model *m, const ur_optim *opt, const ur_rnn_state *st,
                           const ur_rng *rng, const ur_charset *cs, const cli_opt *opts, int n_opts) {
    /* extras: the optimizer's state tensors, then h (and c) of every carried state */
    int n = 0, n_opt = ur_optim_state_count(opt);
    ur_named_tensor *ex = malloc(((size_t)n_opt + 2 * UR_RNN_MAX_STATES) * sizeof *ex);
    char names[2 * UR_RNN_MAX_STATES][32];
    if (!ex) {
        fprintf(stderr, "char_rnn: --save %s: out of memory\n", path);
        return -1;
    }
    for (; n < n_opt; n++) ex[n].tensor = ur_optim_state_at(opt, n, &ex[n].name);
    for (int i = 0; i < st->n; i++) {
        snprintf(names[2 * i], 32, "state.h%d", i);
        ex[n++] = (ur_named_tensor){names[2 * i], st->h[i]};
        if (st->c[i]) {
            snprintf(names[2 * i + 1], 32, "state.c%d", i);
            ex[n++] = (ur_named_tensor){names[2 * i + 1], st->c[i]};
        }
    }
    char store[32][CLI_META_LEN], rng_hex[UR_CKPT_RNG_HEX], step[24], chars[2 * 256 + 1];
    ur_ckpt_kv meta[40];
    int k = cli_meta_put(opts, n_opts, STORED, store, meta);
    ur_ckpt_rng_encode(rng, rng_hex);
    snprintf(step, sizeof step, "%llu", (unsigned long long)ur_optim_step_count(opt));
    for (int i = 0; i < cs->size; i++) snprintf(chars + 2 * i, 3, "%02x", cs->chars[i]);
    meta[k++] = (ur_ckpt_kv){"example", "char_rnn"};
    meta[k++] = (ur_ckpt_kv){"charset", chars};
    meta[k++] = (ur_ckpt_kv){"rng", rng_hex};
    meta[k++] = (ur_ckpt_kv){"optim.kind", ur_optim_kind_name(ur_optim_config_of(opt)->kind)};
    meta[k++] = (ur_ckpt_kv){"optim.step", step};
    meta[k] = (ur_ckpt_kv){NULL, NULL};
    ur_status s = ur_ckpt_save(path, m->ps, ex, n, meta);
    free(ex);
    if (s != UR_OK) {
        fprintf(stderr, "char_rnn: --save %s: %s\n", path, ur_last_error());
        return -1;
    }
    return 0;
}

static int load_checkpoint(ur_ckpt *ck, const char *path, model *m, ur_optim *opt, ur_rnn_state *st, ur_rng *rng,
                           const ur_charset *cs) {
    char chars[2 * 256 + 1];
    for (int i = 0; i < cs->size; i++) snprintf(chars + 2 * i, 3, "%02x", cs->chars[i]);
    const char *saved = ur_ckpt_meta(ck, "charset"), *rng_hex = ur_ckpt_meta(ck, "rng");
    if (!saved || strcmp(saved, chars) != 0) {
        fprintf(stderr, "char_rnn: --load %s: the checkpoint was trained on text with other characters\n", path);
        return -1;
    }
    ur_status s = ur_ckpt_read_params(ck, m->ps, 0);
    if (s == UR_OK) s = ur_ckpt_read_optim(ck, opt);
    for (int i = 0; s == UR_OK && i < st->n; i++) {
        char name[32];
        snprintf(name, sizeof name, "state.h%d", i);
        s = ur_ckpt_get(ck, name, st->h[i]);
        snprintf(name, sizeof name, "state.c%d", i);
        if (s == UR_OK && st->c[i]) s = ur_ckpt_get(ck, name, st->c[i]);
    }
    if (s == UR_OK) s = rng_hex ? ur_ckpt_rng_decode(rng_hex, rng) : ur_set_error(UR_ERR_FORMAT, "no 'rng'");
    if (s != UR_OK) {
        fprintf(stderr, "char_rnn: --load %s: %s\n", path, ur_last_error());
        return -1;
    }
    return 0;
}

/* --save: every rank's streams go into the file (all), rank 0 writes it. 1, or 0
 * after printing an error. */
static int save(const char *path, const model *m, const ur_optim *opt, const ur_rnn_state *mine, ur_rnn_state *all,
                const ur_rng *rng, const ur_charset *cs, const cli_opt *opts, int n_opts) {
    if (dist_cli_state_gather("char_rnn", mine, all) != 0) return 0;
    if (dist_cli_rank0() && save_checkpoint(path, m, opt, all, rng, cs, opts, n_opts) != 0) return 0;
    printf("saved %s (step %ld)\n", path, (long)ur_optim_step_count(opt));
    return 1;
}

/* ---- settings ---- */

enum { MAX_FLAGS = 40 };
static const char ABOUT[] = "char_rnn: a character-level RNN/GRU/LSTM language model (truncated BPTT)";

/* Sets the defaults and lists the flags (at most MAX_FLAGS): returns their count. */
static int flag_table(config *cfg, cli_common *c, cli_opt *opts) {
    int n_cells = 0;
    CELLS[n_cells++] = "rnn";
    for (int i = 0; i < ur_cell_count() && n_cells < UR_CELL_MAX + 1; i++) CELLS[n_cells++] = ur_cell_at(i)->name;
    CELLS[n_cells] = NULL;
    *cfg = (config){.data = NULL, .gen_bytes = 262144, .gen_seed = 7, .cell = "lstm", .layers = 1, .hidden = 256,
                    .embed = 64, .dropout = 0, .bptt = 64, .batch = 64, .lr = 3e-3, .clip = 5, .iters = 0,
                    .eval_every = 0, .val_chars = 0, .log_every = 10, .sample = 300, .temperature = 0.8,
                    .prime = NULL, .rf = RNN_FLAGS_DEFAULT};
    const cli_opt table[] = {
        CLI_COMMON_OPTS(*c),
        CLI_TEXT("--data", &cfg->data, "text file (default: generated play text, no download)"),
        CLI_LONG("--gen-bytes", &cfg->gen_bytes, 1, 1000000000, "size of the generated text (default 262144)"),
        CLI_ANY_LONG("--gen-seed", &cfg->gen_seed, "seed of the generated text (default 7)"),
        CLI_CHOICE("--cell", &cfg->cell, (const char *const *)CELLS, "recurrent cell (default lstm)"),
        CLI_INT("--layers", &cfg->layers, 1, UR_RNN_MAX_LAYERS, "stacked layers (default 1)"),
        CLI_BOOL("--residual", &cfg->residual, "layers 2.. add their input to their output (residual connections)"),
        CLI_INT("--hidden", &cfg->hidden, 1, 4096, "hidden units per layer (default 256)"),
        CLI_INT("--embed", &cfg->embed, 0, 4096, "embedding size, 0 for one-hot inputs (default 64)"),
        CLI_REAL_BELOW("--dropout", &cfg->dropout, 0, 1, "dropout between layers and before the output (default 0)"),
        CLI_INT("--bptt", &cfg->bptt, 1, 4096, "segment length of truncated BPTT: bytes per step (default 64)"),
        CLI_INT("--bptt-window", &cfg->window, 0, 4096,
                "BPTT(k1, k2): each step runs the last N >= --bptt bytes, loss on the newest --bptt (default: --bptt)"),
        CLI_INT("--batch", &cfg->batch, 1, 4096, "parallel streams (default 64)"),
        CLI_BOOL("--tie", &cfg->tie, "output layer = the embedding transposed (+ an (H, E) projection if H != E)"),
        CLI_REAL("--lr", &cfg->lr, 0, 10, "Adam learning rate, cosine-decayed to lr/10 (default 3e-3)"),
        CLI_REAL("--clip", &cfg->clip, 0, 1e6, "clip the global gradient norm (default 5, 0: off)"),
        CLI_LONG("--iters", &cfg->iters, 0, 1000000000, "planned training steps (default 600, or 2500 with --data)"),
        CLI_LONG("--eval-every", &cfg->eval_every, -1, 1000000000,
                 "validate every N steps (default: 4 times per run, -1: only at the end)"),
        CLI_LONG("--val-chars", &cfg->val_chars, 0, 1000000000,
                 "validate on the first N validation characters (default all)"),
        CLI_LONG("--log-every", &cfg->log_every, 1, 1000000000, "progress line every N steps (default 10)"),
        CLI_INT("--sample", &cfg->sample, 0, 1000000, "characters to sample at the end (default 300)"),
        CLI_REAL("--temperature", &cfg->temperature, 0, 100, "sampling temperature (default 0.8; 0: greedy)"),
        CLI_TEXT("--prime", &cfg->prime, "text to start the sample with (default: the first character)"),
        RNN_FLAG_OPTS(cfg->rf),
    };
    _Static_assert(sizeof table / sizeof table[0] <= MAX_FLAGS, "MAX_FLAGS holds the table");
    memcpy(opts, table, sizeof table);
    return (int)(sizeof table / sizeof table[0]);
}

/* What the flags leave open: --bptt-window defaults to --bptt, --iters to 600 (2500
 * with --data), --eval-every to 4 times per run. 0, or 2 after printing a usage error. */
static int settle(config *cfg) {
    if (cfg->tie && cfg->embed == 0) {
        fprintf(stderr, "char_rnn: --tie needs an embedding to tie to (--embed > 0), got --embed 0\n");
        return 2;
    }
    if (cfg->window == 0) cfg->window = cfg->bptt;
    if (cfg->window < cfg->bptt) {
        fprintf(stderr, "char_rnn: --bptt-window must be at least --bptt (%d), got %d\n", cfg->bptt, cfg->window);
        return 2;
    }
    if (cfg->iters <= 0) cfg->iters = cfg->data && cfg->data[0] ? 2500 : 600;
    if (cfg->eval_every == 0) cfg->eval_every = cfg->iters / 4;
    return 0;
}

/* ---- data: a text, its characters, 90% / 10% ---- */

/* The text and its corpus, and how they are read: the training part as --batch
 * streams of L bytes (this rank reads streams lo .. lo + Bn - 1), segs_per_epoch
 * segments of --bptt bytes each; then the validation characters val[0 .. n_val). */
typedef struct text_data {
    ur_text *text;
    ur_char_corpus *corpus;
    int lo, Bn;
    size_t L;
    long segs_per_epoch;
    const int *val;
    size_t n_val;
} text_data;

static void data_free(text_data *d) {
    ur_char_corpus_free(d->corpus);
    ur_text_free(d->text);
}

/* The text (--data, or generated play text), its corpus and their layout. 0, or the
 * status to exit with after printing an error: 1 when there is no text or it is too
 * short for the batch and a validation part, 2 when --batch leaves this rank no stream. */
static int data_load(text_data *d, const config *cfg) {
    int use_file = cfg->data && cfg->data[0];
    ur_status st = use_file ? ur_text_read_file(cfg->data, 0, &d->text)
                            : ur_text_generate((uint64_t)cfg->gen_seed, (size_t)cfg->gen_bytes, &d->text);
    if (st == UR_OK) st = ur_char_corpus_make(d->text, 0.9, &d->corpus);
    if (st != UR_OK) {
        fprintf(stderr, "char_rnn: %s\n", ur_last_error());
        return 1;
    }
    const ur_char_corpus *cc = d->corpus;
    d->n_val = cc->n - cc->n_train;
    if (cfg->val_chars > 0 && (size_t)cfg->val_chars < d->n_val) d->n_val = (size_t)cfg->val_chars;
    d->n_val = (size_t)cli_smoke_limit((long)d->n_val, (long)cfg->batch * cfg->bptt); /* UR_SMOKE_STEPS: a few batches */
    if ((cc->n_train - 1) / (size_t)cfg->batch < (size_t)cfg->bptt || d->n_val < 2) { /* not one segment per stream */
        fprintf(stderr, "char_rnn: %s: %zu bytes are too few for --batch %d x --bptt %d (and a validation part)\n",
                use_file ? cfg->data : "generated text", d->text->len, cfg->batch, cfg->bptt);
        return 1;
    }
    printf("char_rnn: %s, %zu bytes, %d distinct: %zu train, %zu validation\n",
           use_file ? cfg->data : "generated play text", cc->n, cc->cs.size, cc->n_train, cc->n - cc->n_train);
    d->Bn = dist_cli_share(cfg->batch, &d->lo);
    if (d->Bn < 1) {
        fprintf(stderr, "char_rnn: --batch %d gives this rank no stream\n", cfg->batch);
        return 2;
    }
    d->L = (cc->n_train - 1) / (size_t)cfg->batch;
    d->segs_per_epoch = (long)(d->L / (size_t)cfg->bptt);
    d->val = cc->ids + cc->n_train;
    return 0;
}

/* ---- a training update, the sample ---- */

/* After backward: the learning rate of step `step` (cosine from lr to lr/10 over
 * --iters), elementwise then norm clipping, Adam's step. 1, or 0 after printing an error. */
static int update(ur_optim *opt, const model *m, const config *cfg, const ur_lr_schedule *sched, long step) {
    ur_optim_set_lr(opt, ur_lr_at(sched, step - 1));
    if (rnn_flags_clip(&cfg->rf, m->ps) != UR_OK ||
        (cfg->clip > 0 && ur_clip_grad_norm(m->ps, cfg->clip, NULL) != UR_OK) || ur_optim_step(opt) != UR_OK) {
        fprintf(stderr, "char_rnn: step %ld: %s\n", step, ur_last_error());
        return 0;
    }
    return 1;
}

/* --sample characters drawn after --prime (default: the text's first character),
 * printed; out gets the text. 1, or 0 after printing an error. */
static int print_sample(model *m, ur_tape *t, const text_data *d, const config *cfg, ur_rng *rng, char *out) {
    char prime[2] = {d->text->data[0], '\0'};
    if (sample_text(m, t, &d->corpus->cs, cfg->prime ? cfg->prime : prime, cfg->sample, cfg->temperature, rng,
                    out) != 0)
        return 0;
    printf("sample (temperature %g):\n%s\n", cfg->temperature, out);
    return 1;
}

/* ---- the start of a run ---- */

/* The model, Adam and the carried states of this rank's streams; with --load the
 * checkpoint's weights, optimizer state, RNG and the states of all --batch streams
 * (*all); every rank starts from rank 0's weights. Prints the model's size. buffers:
 * 0 when the tape or the batch buffers could not be made (the setup fails). 1, or 0
 * after printing an error. */
static int model_setup(model *m, ur_optim **opt, ur_rnn_state **state, ur_rnn_state **all, int buffers,
                       const config *cfg, const text_data *d, const cli_common *c, ur_ckpt *ck, ur_rng *rng) {
    ur_optim_config oc = ur_optim_defaults(UR_OPTIM_ADAM, cfg->lr);
    if (!buffers || !model_build(m, cfg, d->corpus->cs.size, rng, (uint64_t)c->seed) ||
        !(*opt = ur_optim_new(m->ps, &oc)) || !(*state = ur_rnn_state_new(m->rnn, d->Bn))) {
        fprintf(stderr, "char_rnn: setup failed: %s\n", ur_last_error());
        return 0;
    }
    /* a checkpoint holds the states of all B streams, whatever the number of ranks */
    *all = dist_cli_state_all("char_rnn", m->rnn, *state, cfg->batch);
    if (ck && (!*all || load_checkpoint(ck, c->load, m, *opt, *all, rng, &d->corpus->cs) != 0)) return 0;
    if (ck) dist_cli_state_take(*all, *state, d->lo);
    if (dist_cli_sync("char_rnn", m->ps) != 0) return 0; /* every rank starts from rank 0's weights */
    printf("model: %s, %d layer(s) x %d hidden, %s, %zu parameters; batch %d x bptt %d, Adam lr %g, "
           "clip %g, %ld steps%s\n",
           cfg->cell, cfg->layers, cfg->hidden,
           cfg->embed ? (cfg->tie ? "tied embedding" : "embedding") : "one-hot inputs",
           ur_paramset_numel(m->ps), cfg->batch, cfg->bptt, cfg->lr, cfg->clip, cfg->iters,
           ur_optim_step_count(*opt) ? " (resumed)" : "");
    return 1;
}

/* ---- the final report ---- */

/* The run's figures as one JSON line: it trained steps first + 1 .. last. */
static void print_json(const config *cfg, const ur_optim *opt, const ur_paramset *ps, long first, long last,
                       const double *losses, double val_loss, double seconds, const char *sample) {
    long done = last > first ? last - first : 0;
    double tail = 0;
    long n_tail = done < 10 ? done : 10; /* last_loss: the mean of the last 10 */
    for (long i = done - n_tail; i < done; i++) tail += losses[i];
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "example", "char_rnn");
    cli_json_str(&j, "cell", cfg->cell);
    cli_json_int(&j, "step", ur_optim_step_count(opt));
    cli_json_int(&j, "first_step", first + 1);
    cli_json_num(&j, "first_loss", done ? losses[0] : NAN);
    cli_json_num(&j, "last_loss", n_tail ? tail / (double)n_tail : NAN);
    cli_json_num(&j, "val_loss", val_loss);
    cli_json_num(&j, "val_bpc", val_loss / log(2.0));
    cli_json_num(&j, "val_ppl", exp(val_loss));
    cli_json_num(&j, "seconds", seconds);
    cli_json_num(&j, "tokens_per_s", done ? (double)done * cfg->bptt * cfg->batch / seconds : 0);
    cli_json_int(&j, "params", (long)ur_paramset_numel(ps));
    cli_json_str(&j, "sample", cfg->sample > 0 ? sample : "");
    cli_json_array(&j, "losses", losses, (int)done);
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
    int r = cli_start(argc, argv, "char_rnn", ABOUT, &c, opts, n_opts, STORED, &ck);
    if (r >= 0) return r;
    if (settle(&cfg) != 0) {
        ur_ckpt_close(ck);
        return 2;
    }
    if (dist_cli_start("char_rnn") != 0) return 1; /* under mpirun: one process per rank */

    /* ---- data: B streams of the training text, this rank's Bn of them ---- */
    text_data d = {0};
    int status = data_load(&d, &cfg);
    if (status != 0) {
        data_free(&d);
        ur_ckpt_close(ck);
        return dist_cli_end(status);
    }
    const int B = cfg.batch, T = cfg.bptt, W = cfg.window, Bn = d.Bn;

    /* ---- the model, the optimizer, the carried states ---- */
    ur_rng rng;
    ur_rng_seed(&rng, (uint64_t)c.seed);
    model m = {0};
    ur_optim *opt = NULL;
    ur_rnn_state *state = NULL, *all = NULL;
    ur_tape *tape = cli_tape_new(&c);
    int *x = malloc((size_t)W * (size_t)B * sizeof *x), *y = malloc((size_t)W * (size_t)B * sizeof *y);
    char *sample = malloc(strlen(cfg.prime ? cfg.prime : "") + (size_t)cfg.sample + 2);
    int ok = model_setup(&m, &opt, &state, &all, tape && x && y && sample, &cfg, &d, &c, ck, &rng);
    long first = ok ? (long)ur_optim_step_count(opt) : 0; /* steps done before this run */
    long last = c.steps > 0 && c.steps < cfg.iters ? c.steps : cfg.iters;
    ur_lr_schedule sched = ur_lr_cosine(cfg.lr, cfg.lr / 10, cfg.iters);

    /* ---- training ---- */
    double *losses = calloc((size_t)(last > first ? last - first : 1), sizeof *losses);
    double started = cli_now(), val_loss = NAN;
    cli_meter meter = {0, 0};
    ok = ok && losses;
    cli_progress_start(first);
    for (long step = first + 1; ok && step <= last; step++) {
        long s = (step - 1) % d.segs_per_epoch; /* segment within the epoch */
        if (s == 0) ur_rnn_state_zero(state); /* every stream starts over */
        /* the window [from, end) ends with the T new bytes; the state is carried from
         * `from`, and the next window starts at `next` (= end when W = T) */
        long end = (s + 1) * T, from = end - W > 0 ? end - W : 0, next = end + T - W > 0 ? end + T - W : 0;
        int Tw = (int)(end - from), split = (int)(next - from);
        read_window(d.corpus->ids, d.L, Tw, from, d.lo, Bn, x, y); /* this rank's streams */

        ur_tape_reset(tape);
        ur_rnn_args args = {.training = 1, .seed = (uint64_t)c.seed * 1000003u + (uint64_t)step}; /* new masks */
        ur_rnn_state_feed(state, tape, &args);
        ur_rnn_final fin;
        ur_node *h, *logits = model_forward(tape, &m, x, Tw, Bn, &args, &fin, &h, split, T); /* the newest T */
        ur_node *loss = ur_cross_entropy(tape, logits, y + (size_t)(Tw - T) * (size_t)Bn, NULL);
        ur_optim_zero_grad(opt);
        if (ur_tape_error(tape) || ur_backward(tape, loss) != UR_OK) {
            fprintf(stderr, "char_rnn: %s\n", ur_tape_error(tape) ? ur_tape_errmsg(tape) : ur_last_error());
            ok = 0;
            break;
        }
        if (split > 0) ur_rnn_state_save(state, &fin); /* values go on, the gradient stops here */
        double lv = ur_node_item(loss); /* then the mean over the ranks, each weighted by its tokens */
        if (dist_cli_reduce("char_rnn", m.ps, (double)T * Bn, &lv, NULL) != 0) {
            ok = 0;
            break;
        }
        if (step == first + 1) cli_show_step(&c, tape, m.ps, h); /* --print-tape, --dot, --grad-report */
        if (!update(opt, &m, &cfg, &sched, step)) { /* learning rate, clipping, Adam */
            ok = 0;
            break;
        }
        cli_meter_add(&meter, losses[step - first - 1] = lv);
        if (step % cfg.log_every == 0 || step == last) /* mean loss since the last line */
            cli_progress(step, last, cli_meter_take(&meter), (double)(step - first) * T * B / (cli_now() - started),
                         started);
        if (cfg.eval_every > 0 && step % cfg.eval_every == 0 && step < last && dist_cli_rank0()) {
            double vl = evaluate(&m, tape, d.val, d.n_val, B, T, x, y);
            cli_progress_end();
            printf("step %ld: validation %.4f bits/char, perplexity %.2f\n", step, vl / log(2.0), exp(vl));
        }
    }
    cli_progress_end();
    double seconds = cli_now() - started;

    /* ---- save, evaluate, sample ---- */
    if (ok && c.save) ok = save(c.save, &m, opt, state, all, &rng, &d.corpus->cs, opts, n_opts);
    if (ok && dist_cli_rank0()) {
        val_loss = evaluate(&m, tape, d.val, d.n_val, B, T, x, y);
        printf("validation (%zu chars): %.4f nats = %.4f bits/char, perplexity %.3f\n", d.n_val, val_loss,
               val_loss / log(2.0), exp(val_loss));
    }
    if (ok && cfg.sample > 0 && dist_cli_rank0()) ok = print_sample(&m, tape, &d, &cfg, &rng, sample);
    if (ok && c.json && dist_cli_rank0()) print_json(&cfg, opt, m.ps, first, last, losses, val_loss, seconds, sample);

    free(losses);
    free(sample);
    free(x);
    free(y);
    dist_cli_state_done(all, state);
    ur_rnn_state_free(state);
    ur_optim_free(opt);
    model_free(&m);
    ur_tape_free(tape);
    data_free(&d);
    ur_ckpt_close(ck);
    ur_kernel_free_buffers();
    return dist_cli_end(ok ? 0 : 1);
}
