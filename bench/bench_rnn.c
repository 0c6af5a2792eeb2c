/* bench_rnn.c - recurrent training throughput: the sequence workloads of
 * torch_ref.py (charlm, charlm-b1, medium, large, bilstm-tagger for each cell),
 * the charlm LSTM written by hand from primitive ops, and charlm with cells
 * defined through the cell interface (peephole LSTM, MGU).
 *
 * One training step, as in torch_ref.py: x (T, B, in) random normal and the
 * targets (T, B) are drawn once; every step resets the tape, zeroes the
 * gradients, runs the network and a linear head over all T*B outputs, takes the
 * mean cross-entropy, walks backward and applies plain SGD (lr 0.01).
 * Unit: tokens = T*B per step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "ur_optim.h"
#include "ur_kernels.h"
#include "ur_rnn.h"

typedef struct seq_config {
    const char *name;
    int in, hidden, layers, batch, seq, classes, bidirectional;
} seq_config;

/* The same table as SEQ_CONFIGS in torch_ref.py. */
static const seq_config CHARLM = {"charlm", 65, 128, 1, 32, 64, 65, 0};
static const seq_config CHARLM_B1 = {"charlm-b1", 65, 128, 1, 1, 64, 65, 0};
static const seq_config MEDIUM = {"medium", 128, 256, 1, 32, 64, 128, 0};
static const seq_config LARGE = {"large", 512, 512, 2, 64, 64, 128, 0};
static const seq_config TAGGER = {"bilstm-tagger", 100, 128, 1, 32, 40, 17, 1};

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "unroll-bench: %s: %s\n", what, ur_last_error());
        exit(1);
    }
}

/* The data every step trains on: x (T, B, in) ~ N(0, 1) and targets in [0, C). */
typedef struct seq_data {
    ur_tensor *x;
    int *y;
} seq_data;

static seq_data seq_data_new(const seq_config *c) {
    ur_rng rng;
    ur_rng_seed(&rng, 1);
    int dims[3] = {c->seq, c->batch, c->in};
    seq_data d = {ur_tensor_new(3, dims), malloc(sizeof(int) * (size_t)c->seq * c->batch)};
    check(d.x && d.y, "data");
    ur_tensor_normal(d.x, &rng, 0, 1);
    for (int i = 0; i < c->seq * c->batch; i++) d.y[i] = (int)ur_rng_below(&rng, (uint32_t)c->classes);
    return d;
}

static void seq_data_free(seq_data *d) {
    ur_tensor_free(d->x);
    free(d->y);
}

/* Floating-point operations of one training step in its matrix products (2mnk
 * each; the elementwise work is a few percent and not counted). Per layer and
 * direction: the input projection (forward and dW, plus dx above layer 0), the T
 * recurrent products (forward, dW_hh, dh); then the head (forward, dW, dx). */
static double seq_flops(const seq_config *c, int gates) {
    double TB = (double)c->seq * c->batch, H = c->hidden, GH = gates * H, D = c->bidirectional ? 2 : 1;
    double f = 0;
    for (int l = 0; l < c->layers; l++) {
        double in = l == 0 ? c->in : H * D;
        f += D * (2 * TB * in * GH * (l == 0 ? 2 : 3) + 3 * 2 * TB * H * GH);
    }
    return f + 3 * 2 * TB * H * D * c->classes;
}

/* Records "<key>": tokens/s and "<key>-gflops": the rate of its matrix products. */
static void report_seq(bench_report *r, const char *key, double tokens_per_s, const seq_config *c, int gates) {
    char gkey[96];
    bench_report_number(r, BENCH_TOKENS_PER_S, key, tokens_per_s);
    snprintf(gkey, sizeof gkey, "%s-gflops", key);
    bench_report_number(r, BENCH_OTHER, gkey, tokens_per_s / ((double)c->seq * c->batch) * seq_flops(c, gates) / 1e9);
}

/* ---- ur_rnn + linear head ---- */

typedef struct seq_bench {
    const seq_config *c;
    ur_paramset *ps;
    ur_rnn *rnn;
    ur_param *Wy, *by; /* head (out, C), (C) */
    ur_optim *opt;
    ur_tape *tape;
    seq_data data;
} seq_bench;

static double seq_step(void *ctx) {
    seq_bench *s = ctx;
    const seq_config *c = s->c;
    ur_tape *t = s->tape;
    ur_tape_reset(t);
    ur_optim_zero_grad(s->opt);
    ur_node *out = ur_rnn_forward(s->rnn, t, ur_input(t, s->data.x), NULL, NULL); /* (T, B, out) */
    int d2[2] = {c->seq * c->batch, ur_rnn_output_size(s->rnn)};
    ur_node *logits = ur_linear(t, ur_reshape(t, out, 2, d2), ur_param_node(t, s->Wy), ur_param_node(t, s->by));
    ur_node *loss = ur_cross_entropy(t, logits, s->data.y, NULL);
    if (ur_backward(t, loss) != UR_OK || ur_optim_step(s->opt) != UR_OK) {
        fprintf(stderr, "unroll-bench: %s: %s\n", c->name, ur_tape_errmsg(t));
        exit(1);
    }
    return (double)c->seq * c->batch;
}

/* The model of a workload: ur_rnn, then a linear head initialised as torch's
 * nn.Linear; SGD with lr 0.01. */
static seq_bench seq_bench_new(const seq_config *c, const ur_cell_def *cell) {
    seq_bench s = {c, ur_paramset_new(), NULL, NULL, NULL, NULL, NULL, seq_data_new(c)};
    check(s.ps != NULL && cell != NULL, "paramset or cell");
    ur_rnn_config cfg = ur_rnn_defaults_cell(cell, c->in, c->hidden);
    cfg.num_layers = c->layers;
    cfg.bidirectional = c->bidirectional;
    check((s.rnn = ur_rnn_new(s.ps, "rnn", &cfg)) != NULL, "ur_rnn_new");
    int out = ur_rnn_output_size(s.rnn), wd[2] = {out, c->classes};
    s.Wy = ur_paramset_add(s.ps, "head.weight", 2, wd);
    s.by = ur_paramset_add(s.ps, "head.bias", 1, &c->classes);
    check(s.Wy && s.by, "head");
    ur_rng rng;
    ur_rng_seed(&rng, 2);
    ur_real a = (ur_real)(1.0 / sqrt((double)out));
    ur_tensor_uniform(&s.Wy->value, &rng, -a, a);
    ur_tensor_uniform(&s.by->value, &rng, -a, a);
    ur_optim_config oc = ur_optim_defaults(UR_OPTIM_SGD, 0.01);
    check((s.opt = ur_optim_new(s.ps, &oc)) != NULL, "optimizer");
    check((s.tape = bench_tape_new()) != NULL, "tape");
    return s;
}

static void seq_bench_free(seq_bench *s) {
    ur_tape_free(s->tape);
    ur_optim_free(s->opt);
    ur_rnn_free(s->rnn);
    ur_paramset_free(s->ps);
    seq_data_free(&s->data);
}

/* Runs the registered cell `cell` on c; key "<config>-<name>". The matmul rate
 * counts the projection's width P as G*H (MGU: 2H, also its two recurrent products). */
static void seq_run_cell(bench_report *r, double seconds, const seq_config *c, const char *cell, const char *name) {
    const ur_cell_def *def = ur_cell_find(cell);
    seq_bench s = seq_bench_new(c, def);
    char key[64];
    snprintf(key, sizeof key, "%s-%s", c->name, name);
    report_seq(r, key, bench_timed(seq_step, &s, seconds), c, def->project ? def->proj.hidden : 1);
    seq_bench_free(&s);
}

static void seq_run(bench_report *r, double seconds, const seq_config *c, ur_rnn_kind kind, const char *name) {
    seq_run_cell(r, seconds, c, ur_rnn_kind_name(kind), name);
}

/* ---- determinism: the same training steps on 1 and on 2 threads ---- */

/* Every parameter after `steps` training steps with the given thread count, one
 * array (malloc); *n values, *loss the last step's loss. */
static ur_real *train_params(const seq_config *c, ur_rnn_kind kind, int threads, int steps, size_t *n,
                             double *loss) {
    ur_set_num_threads(threads);
    seq_bench s = seq_bench_new(c, ur_rnn_kind_cell(kind));
    for (int i = 0; i < steps; i++) seq_step(&s);
    *loss = ur_node_item(ur_tape_node(s.tape, ur_tape_size(s.tape) - 1));
    size_t total = 0;
    for (int i = 0; i < ur_paramset_count(s.ps); i++) total += ur_paramset_get(s.ps, i)->value.size;
    ur_real *v = malloc(total * sizeof *v);
    check(v != NULL, "out of memory");
    total = 0;
    for (int i = 0; i < ur_paramset_count(s.ps); i++) {
        const ur_param *p = ur_paramset_get(s.ps, i);
        memcpy(v + total, p->value.data, p->value.size * sizeof *v);
        total += p->value.size;
    }
    *n = total;
    seq_bench_free(&s);
    return v;
}

int bench_determinism(int steps) {
    static const struct {
        const seq_config *c;
        ur_rnn_kind kind;
        const char *cell;
    } RUNS[] = {
        {&CHARLM, UR_RNN_LSTM, "lstm"}, {&CHARLM_B1, UR_RNN_LSTM, "lstm"}, {&MEDIUM, UR_RNN_LSTM, "lstm"},
        {&LARGE, UR_RNN_LSTM, "lstm"},  {&TAGGER, UR_RNN_LSTM, "lstm"},    {&MEDIUM, UR_RNN_GRU, "gru"},
        {&MEDIUM, UR_RNN_TANH, "rnn"},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof RUNS / sizeof RUNS[0]; i++) {
        size_t n1, n2;
        double l1, l2;
        ur_real *a = train_params(RUNS[i].c, RUNS[i].kind, 1, steps, &n1, &l1);
        ur_real *b = train_params(RUNS[i].c, RUNS[i].kind, 2, steps, &n2, &l2);
        int same = n1 == n2 && memcmp(a, b, n1 * sizeof *a) == 0 && memcmp(&l1, &l2, sizeof l1) == 0;
        char key[64];
        snprintf(key, sizeof key, "%s-%s", RUNS[i].c->name, RUNS[i].cell);
        printf("%-20s %d SGD steps, %8zu parameters, loss %.9g / %.9g: 1 vs 2 threads %s\n", key, steps, n1, l1, l2,
               same ? "bit-identical" : "DIFFERENT");
        bad |= !same;
        free(a);
        free(b);
    }
    return bad;
}

void bench_charlm_rnn(bench_report *r, double s) { seq_run(r, s, &CHARLM, UR_RNN_TANH, "rnn"); }
void bench_charlm_gru(bench_report *r, double s) { seq_run(r, s, &CHARLM, UR_RNN_GRU, "gru"); }
void bench_charlm_lstm(bench_report *r, double s) { seq_run(r, s, &CHARLM, UR_RNN_LSTM, "lstm"); }
void bench_charlm_b1_rnn(bench_report *r, double s) { seq_run(r, s, &CHARLM_B1, UR_RNN_TANH, "rnn"); }
void bench_charlm_b1_gru(bench_report *r, double s) { seq_run(r, s, &CHARLM_B1, UR_RNN_GRU, "gru"); }
void bench_charlm_b1_lstm(bench_report *r, double s) { seq_run(r, s, &CHARLM_B1, UR_RNN_LSTM, "lstm"); }
void bench_medium_rnn(bench_report *r, double s) { seq_run(r, s, &MEDIUM, UR_RNN_TANH, "rnn"); }
void bench_medium_gru(bench_report *r, double s) { seq_run(r, s, &MEDIUM, UR_RNN_GRU, "gru"); }
void bench_medium_lstm(bench_report *r, double s) { seq_run(r, s, &MEDIUM, UR_RNN_LSTM, "lstm"); }
void bench_large_rnn(bench_report *r, double s) { seq_run(r, s, &LARGE, UR_RNN_TANH, "rnn"); }
void bench_large_gru(bench_report *r, double s) { seq_run(r, s, &LARGE, UR_RNN_GRU, "gru"); }
void bench_large_lstm(bench_report *r, double s) { seq_run(r, s, &LARGE, UR_RNN_LSTM, "lstm"); }
void bench_bilstm_tagger(bench_report *r, double s) { seq_run(r, s, &TAGGER, UR_RNN_LSTM, "lstm"); }
/* cells written against the cell interface (nn/cell_*.c), through ur_rnn like the built-ins */
void bench_charlm_peephole(bench_report *r, double s) { seq_run_cell(r, s, &CHARLM, "peephole_lstm", "peephole"); }
void bench_charlm_mgu(bench_report *r, double s) { seq_run_cell(r, s, &CHARLM, "mgu", "mgu"); }

/* ---- the charlm LSTM from primitives, as torch_ref.py's lstm_from_primitives ----
 * Per step: g = x_t Wx + h Wh + b; i, f, g, o = four column slices of g;
 * c = sigmoid(f) c + sigmoid(i) tanh(g); h = sigmoid(o) tanh(c);
 * loss += cross_entropy(h Wy + by, y_t). The step's loss is the sum / T. */

typedef struct prim_bench {
    const seq_config *c;
    ur_paramset *ps;
    ur_param *Wx, *Wh, *b, *Wy, *by;
    ur_optim *opt;
    ur_tape *tape;
    seq_data data;
} prim_bench;

static double prim_step(void *ctx) {
    prim_bench *p = ctx;
    const seq_config *c = p->c;
    int T = c->seq, B = c->batch, H = c->hidden, bh[2] = {B, H}, d2[2] = {T * B, c->in};
    ur_tape *t = p->tape;
    ur_tape_reset(t);
    ur_optim_zero_grad(p->opt);
    ur_node *Wx = ur_param_node(t, p->Wx), *Wh = ur_param_node(t, p->Wh), *b = ur_param_node(t, p->b);
    ur_node *Wy = ur_param_node(t, p->Wy), *by = ur_param_node(t, p->by);
    ur_node *x = ur_reshape(t, ur_input(t, p->data.x), 2, d2); /* (T*B, in) */
    ur_node *h = ur_zeros(t, 2, bh), *cs = ur_zeros(t, 2, bh), *loss = NULL;
    for (int s = 0; s < T; s++) {
        ur_node *xt = ur_slice(t, x, 0, s * B, B); /* x[t] */
        ur_node *g = ur_add(t, ur_add(t, ur_matmul(t, xt, Wx, 0, 0), ur_matmul(t, h, Wh, 0, 0)), b);
        ur_node *i = ur_slice(t, g, 1, 0, H), *f = ur_slice(t, g, 1, H, H);
        ur_node *gg = ur_slice(t, g, 1, 2 * H, H), *o = ur_slice(t, g, 1, 3 * H, H);
        cs = ur_add(t, ur_mul(t, ur_sigmoid(t, f), cs), ur_mul(t, ur_sigmoid(t, i), ur_tanh(t, gg)));
        h = ur_mul(t, ur_sigmoid(t, o), ur_tanh(t, cs));
        ur_node *l = ur_cross_entropy(t, ur_add(t, ur_matmul(t, h, Wy, 0, 0), by), p->data.y + (size_t)s * B, NULL);
        loss = loss ? ur_add(t, loss, l) : l;
    }
    loss = ur_scale(t, loss, (ur_real)(1.0 / T));
    if (ur_backward(t, loss) != UR_OK || ur_optim_step(p->opt) != UR_OK) {
        fprintf(stderr, "unroll-bench: charlm-lstm-primitives: %s\n", ur_tape_errmsg(t));
        exit(1);
    }
    return (double)T * B;
}

void bench_charlm_lstm_primitives(bench_report *r, double seconds) {
    const seq_config *c = &CHARLM;
    prim_bench p = {c, ur_paramset_new(), NULL, NULL, NULL, NULL, NULL, NULL, NULL, seq_data_new(c)};
    check(p.ps != NULL, "paramset");
    int H = c->hidden, dx[2] = {c->in, 4 * H}, dh[2] = {H, 4 * H}, db = 4 * H, dy[2] = {H, c->classes};
    p.Wx = ur_paramset_add(p.ps, "Wx", 2, dx);
    p.Wh = ur_paramset_add(p.ps, "Wh", 2, dh);
    p.b = ur_paramset_add(p.ps, "b", 1, &db);
    p.Wy = ur_paramset_add(p.ps, "Wy", 2, dy);
    p.by = ur_paramset_add(p.ps, "by", 1, &c->classes);
    check(p.Wx && p.Wh && p.b && p.Wy && p.by, "parameters");
    ur_rng rng;
    ur_rng_seed(&rng, 0);
    ur_tensor_normal(&p.Wx->value, &rng, 0, (ur_real)0.1); /* randn * 0.1; biases stay 0 */
    ur_tensor_normal(&p.Wh->value, &rng, 0, (ur_real)0.1);
    ur_tensor_normal(&p.Wy->value, &rng, 0, (ur_real)0.1);
    ur_optim_config oc = ur_optim_defaults(UR_OPTIM_SGD, 0.01);
    check((p.opt = ur_optim_new(p.ps, &oc)) != NULL, "optimizer");
    check((p.tape = bench_tape_new()) != NULL, "tape");
    report_seq(r, "charlm-lstm-primitives", bench_timed(prim_step, &p, seconds), c, 4);
    ur_tape_free(p.tape);
    ur_optim_free(p.opt);
    ur_paramset_free(p.ps);
    seq_data_free(&p.data);
}
