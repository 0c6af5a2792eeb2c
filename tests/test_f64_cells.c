/* The cell interface of nn/ur_cell.h in double precision: every registered cell
 * (built-in and the MGU, peephole LSTM, IndRNN and Jordan cells) run through
 * ur_rnn with two bidirectional layers, a padded batch, every dropout, carried
 * states and a checkpoint round trip; the new cells against their equations;
 * the registry and its errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "unroll.h"

enum { T = 5, B = 3, IN = 3, H = 4 };

/* lengths 5, 3 and 1: sequence b is real at step t when t < len[b] */
static const int len[B] = {5, 3, 1};

static void fill(ur_tensor *t, ur_rng *r, double a) { ur_tensor_uniform(t, r, (ur_real)-a, (ur_real)a); }

/* ---- a network of one cell, its inputs as parameters, a weighted-sum loss ---- */

typedef struct cellnet {
    ur_paramset *ps;     /* the network's parameters only (checkpointed) */
    ur_paramset *inputs; /* x and the initial states */
    ur_rnn *rnn;
    int S, n;            /* states per cell, layers * directions */
    ur_param *x;         /* (T, B, IN) */
    ur_param *s0[UR_CELL_MAX_STATES][UR_RNN_MAX_STATES];
    ur_tensor *wy, *ws;  /* fixed random weights of the outputs and final states */
    ur_tape *t;          /* one tape, reset between runs (a parameter's node is cached per tape) */
    ur_real mask[T * B];
    int training;
} cellnet;

static ur_rnn_config config_of(const ur_cell_def *def, int bidirectional, int variational) {
    ur_rnn_config c = ur_rnn_defaults_cell(def, IN, H);
    c.num_layers = 2;
    c.bidirectional = bidirectional;
    c.dropout = 0.3;
    c.dropout_input = 0.2;
    c.dropout_hidden = 0.25;
    c.variational = variational;
    c.seed = 5;
    return c;
}

static void cellnet_init(cellnet *n, const ur_rnn_config *cfg) {
    memset(n, 0, sizeof *n);
    n->ps = ur_paramset_new();
    n->inputs = ur_paramset_new();
    n->rnn = ur_rnn_new(n->ps, "rnn", cfg);
    cr_assert(n->rnn, "%s", ur_last_error());
    n->S = ur_rnn_config_cell(cfg)->n_states;
    n->n = cfg->num_layers * ur_rnn_directions(n->rnn);
    ur_rng rng;
    ur_rng_seed(&rng, 17);
    n->x = ur_paramset_add(n->inputs, "x", 3, (int[]){T, B, IN});
    fill(&n->x->value, &rng, 1);
    for (int j = 0; j < n->S; j++)
        for (int k = 0; k < n->n; k++) {
            char name[32];
            snprintf(name, sizeof name, "s0.%d.%d", j, k);
            n->s0[j][k] = ur_paramset_add(n->inputs, name, 2, (int[]){B, H});
            fill(&n->s0[j][k]->value, &rng, 0.5);
        }
    n->wy = ur_tensor_new(3, (int[]){T, B, ur_rnn_output_size(n->rnn)});
    n->ws = ur_tensor_new_1d(UR_CELL_MAX_STATES * UR_RNN_MAX_STATES * B * H);
    fill(n->wy, &rng, 1);
    fill(n->ws, &rng, 1);
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) n->mask[t * B + b] = t < len[b];
    n->training = 1;
    n->t = ur_tape_new();
}

static void cellnet_free(cellnet *n) {
    ur_rnn_free(n->rnn);
    ur_paramset_free(n->ps);
    ur_paramset_free(n->inputs);
    ur_tensor_free(n->wy);
    ur_tensor_free(n->ws);
    ur_tape_free(n->t);
}

/* loss = sum(y * wy) + sum over every final state s[j][k] of sum(s * ws_jk); *out = y */
static ur_node *forward_loss(cellnet *n, ur_tape *t, ur_node **out) {
    ur_rnn_args a;
    memset(&a, 0, sizeof a);
    a.mask = n->mask;
    a.training = n->training;
    a.seed = 99;
    for (int j = 0; j < n->S; j++)
        for (int k = 0; k < n->n; k++) a.s0[j][k] = ur_param_node(t, n->s0[j][k]);
    ur_rnn_final f;
    ur_node *y = ur_rnn_forward(n->rnn, t, ur_param_node(t, n->x), &a, &f);
    if (out) *out = y;
    ur_node *loss = ur_sum(t, ur_mul(t, y, ur_input(t, n->wy)));
    for (int j = 0; j < UR_CELL_MAX_STATES; j++)
        for (int k = 0; k < f.n; k++) {
            if (!f.s[j][k]) continue;
            const ur_real *w = n->ws->data + (size_t)(j * UR_RNN_MAX_STATES + k) * B * H;
            loss = ur_add(t, loss, ur_sum(t, ur_mul(t, f.s[j][k], ur_input_data(t, 2, (int[]){B, H}, w))));
        }
    return loss;
}

static ur_node *loss_fn(ur_tape *t, void *ctx) { return forward_loss(ctx, t, NULL); }

/* One run with backward: the outputs copied to y, every parameter and input gradient
 * concatenated into grads; returns the number of gradient values. */
static size_t run_and_collect(cellnet *n, ur_real *y, ur_real *grads, size_t cap) {
    ur_tape *t = n->t;
    ur_tape_reset(t);
    ur_paramset_zero_grad(n->ps);
    ur_paramset_zero_grad(n->inputs);
    ur_node *out;
    ur_node *loss = forward_loss(n, t, &out);
    cr_assert(loss, "%s", ur_tape_errmsg(t));
    cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
    memcpy(y, ur_node_cdata(out), ur_node_size(out) * sizeof *y);
    size_t used = 0;
    ur_paramset *sets[2] = {n->ps, n->inputs};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < ur_paramset_count(sets[s]); i++) {
            const ur_tensor *g = &ur_paramset_get(sets[s], i)->grad;
            cr_assert(used + g->size <= cap);
            memcpy(grads + used, g->data, g->size * sizeof *g->data);
            used += g->size;
        }
    return used;
}

/* Padding garbage changes nothing: outputs, final states' effect on the loss and
 * every gradient are identical, and padded inputs get exactly zero gradient. */
static void expect_padding_ignored(cellnet *n, const char *name) {
    enum { CAP = 20000 };
    static ur_real y1[T * B * 2 * H], y2[T * B * 2 * H], g1[CAP], g2[CAP];
    size_t ng = run_and_collect(n, y1, g1, CAP);
    ur_rng rng;
    ur_rng_seed(&rng, 1234);
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++)
            for (int i = 0; i < IN && t >= len[b]; i++)
                n->x->value.data[(t * B + b) * IN + i] = (ur_real)(5 * (ur_rng_uniform(&rng) - 0.5));
    cr_assert_eq(run_and_collect(n, y2, g2, CAP), ng);
    size_t ny = (size_t)T * B * ur_rnn_output_size(n->rnn);
    for (size_t i = 0; i < ny; i++) cr_expect(y1[i] == y2[i], "%s: output %zu changed with the padding", name, i);
    for (size_t i = 0; i < ng; i++) cr_expect(g1[i] == g2[i], "%s: gradient %zu changed with the padding", name, i);
    int out = ur_rnn_output_size(n->rnn), nonzero = 0, real = 0;
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++)
            for (int i = 0; i < out; i++) {
                if (t >= len[b]) cr_expect(y1[(t * B + b) * out + i] == 0, "%s: padded output not zero", name);
                else nonzero += y1[(t * B + b) * out + i] != 0, real++;
            }
    cr_expect(nonzero > real / 8, "%s: %d of %d outputs are zero", name, real - nonzero, real); /* relu: many */
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++)
            for (int i = 0; i < IN && t >= len[b]; i++)
                cr_expect(n->x->grad.data[(t * B + b) * IN + i] == 0, "%s: padded input has a gradient", name);
}

static void expect_gradcheck(cellnet *n, const char *name) {
    ur_param *ps[96];
    int np = 0;
    ur_paramset *sets[2] = {n->ps, n->inputs};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < ur_paramset_count(sets[s]); i++) {
            cr_assert(np < 96);
            ps[np++] = ur_paramset_get(sets[s], i);
        }
    ur_tape *t = n->t;
    ur_tape_reset(t);
    ur_gradcheck_result r;
    cr_expect_eq(ur_gradcheck(t, loss_fn, n, ps, np, 1e-6, &r), UR_OK, "%s: %s", name, ur_last_error());
    cr_expect(r.max_rel_err < 1e-6, "%s: relative error %.3e at %s", name, r.max_rel_err, r.worst);
    cr_expect(r.n_checked > 200, "%s: only %zu elements checked", name, r.n_checked);
}

/* Two segments with carried states give the whole run's outputs; no gradient
 * flows into the first segment. Unidirectional: a reverse direction sees the future. */
static void expect_tbptt(const ur_cell_def *def) {
    ur_rnn_config c = config_of(def, 0, 0);
    cellnet n;
    cellnet_init(&n, &c);
    ur_tape *t = n.t;
    ur_tape_reset(t);
    ur_real whole[T * B * H];
    ur_node *y = ur_rnn_forward(n.rnn, t, ur_param_node(t, n.x), NULL, NULL);
    cr_assert(y, "%s", ur_tape_errmsg(t));
    memcpy(whole, ur_node_cdata(y), sizeof whole);
    ur_rnn_state *s = ur_rnn_state_new(n.rnn, B);
    cr_assert(s, "%s", ur_last_error());
    cr_expect_eq(s->n_states, n.S);
    const int cut[3] = {0, 2, T};
    for (int seg = 0; seg < 2; seg++) {
        ur_tape_reset(t);
        ur_rnn_args a = {0};
        cr_assert_eq(ur_rnn_state_feed(s, t, &a), UR_OK);
        for (int j = 0; j < UR_CELL_MAX_STATES; j++)
            for (int k = 0; k < n.n; k++) {
                cr_expect((a.s0[j][k] != NULL) == (j < n.S), "%s: state %d fed wrongly", def->name, j);
                if (a.s0[j][k]) cr_expect(!ur_node_requires_grad(a.s0[j][k]));
            }
        int len_seg = cut[seg + 1] - cut[seg];
        ur_node *x = ur_input_data(t, 3, (int[]){len_seg, B, IN}, n.x->value.data + cut[seg] * B * IN);
        ur_rnn_final f;
        ur_node *ys = ur_rnn_forward(n.rnn, t, x, &a, &f);
        cr_assert(ys, "%s: %s", def->name, ur_tape_errmsg(t));
        for (int i = 0; i < len_seg * B * H; i++)
            cr_expect(fabs(ur_node_cdata(ys)[i] - whole[cut[seg] * B * H + i]) < 1e-12, "%s: segment %d, %d",
                      def->name, seg, i);
        cr_assert_eq(ur_rnn_state_save(s, &f), UR_OK, "%s", ur_last_error());
        cr_assert_eq(ur_backward(t, ur_sum(t, ys)), UR_OK);
    }
    ur_rnn_state_free(s);
    cellnet_free(&n);
}

/* Saved, loaded into a network initialized differently: identical outputs. */
static void expect_checkpoint_round_trip(cellnet *n, const char *name) {
    char path[512];
    ur_test_tmp_path("cells.safetensors", path, sizeof path);
    cr_assert_eq(ur_ckpt_save(path, n->ps, NULL, 0, NULL), UR_OK, "%s", ur_last_error());
    n->training = 0;
    ur_tape *t = n->t;
    ur_tape_reset(t);
    ur_node *y;
    cr_assert(forward_loss(n, t, &y));
    size_t ny = ur_node_size(y);
    static ur_real want[T * B * 2 * H];
    memcpy(want, ur_node_cdata(y), ny * sizeof *want);
    /* another network of the same cell and shape, other initial values */
    ur_rnn_config c = *ur_rnn_config_of(n->rnn);
    c.seed = 4321;
    ur_paramset *ps2 = ur_paramset_new();
    ur_rnn *r2 = ur_rnn_new(ps2, "rnn", &c);
    cr_assert(r2);
    cr_assert_eq(ur_ckpt_load_params(path, ps2, 0), UR_OK, "%s: %s", name, ur_last_error());
    ur_rnn *r1 = n->rnn;
    n->rnn = r2;
    ur_tape_reset(t);
    cr_assert(forward_loss(n, t, &y));
    for (size_t i = 0; i < ny; i++) cr_expect(ur_node_cdata(y)[i] == want[i], "%s: output %zu after load", name, i);
    n->rnn = r1;
    n->training = 1;
    ur_rnn_free(r2);
    ur_paramset_free(ps2);
    ur_tape_reset(t);
    remove(path);
}

/* Every step of every layer and direction is a tape group, drawn as a cluster by --dot. */
static void expect_dot_groups(cellnet *n, const char *name) {
    ur_tape *t = n->t;
    ur_tape_reset(t);
    cr_assert(forward_loss(n, t, NULL));
    char path[512];
    ur_test_tmp_path("cells.dot", path, sizeof path);
    FILE *f = fopen(path, "w+");
    cr_assert(f);
    cr_assert_eq(ur_tape_dot(t, f), UR_OK);
    rewind(f);
    static char buf[1 << 21];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    buf[len] = 0;
    fclose(f);
    remove(path);
    const char *labels[4] = {"l0 t=0", "l0 rev t=4", "l1 t=4", "l1 rev t=0"};
    for (int i = 0; i < 4; i++)
        cr_expect(strstr(buf, labels[i]), "%s: no cluster '%s' in the DOT output", name, labels[i]);
    ur_tape_reset(t);
}

/* The test the interface is for: every registered cell, built-in or not, gets all
 * of ur_rnn -- two layers, both directions, a padded batch with garbage in the
 * padding, every dropout (per step and variational), carried states, checkpoints,
 * step groups. */
Test(cells, every_registered_cell_through_ur_rnn) {
    cr_assert_geq(ur_cell_count(), 9);
    for (int i = 0; i < ur_cell_count(); i++) {
        const ur_cell_def *def = ur_cell_at(i);
        for (int variational = 0; variational < 2; variational++) {
            ur_rnn_config c = config_of(def, 1, variational);
            cellnet n;
            cellnet_init(&n, &c);
            char what[64];
            snprintf(what, sizeof what, "%s%s", def->name, variational ? " (variational)" : "");
            expect_gradcheck(&n, what);
            expect_padding_ignored(&n, what);
            expect_checkpoint_round_trip(&n, what);
            expect_dot_groups(&n, what);
            cellnet_free(&n);
        }
        expect_tbptt(def);
    }
}

/* ---- the new cells against their equations, one step written out with loops ---- */

static double sigm(double a) { return 1 / (1 + exp(-a)); }

/* out[k] (+)= sum_i v[i] W[i, col0 + k], k < n, W with `cols` columns */
static void vecmat(double *out, const double *v, int nv, const ur_real *W, int cols, int col0, int n) {
    for (int k = 0; k < n; k++)
        for (int i = 0; i < nv; i++) out[k] += v[i] * W[i * cols + col0 + k];
}

typedef struct one_step {
    ur_paramset *ps;
    ur_rnn_cell cell;
    double x[IN], s[2][H]; /* input and previous states */
    const ur_real *w[UR_CELL_MAX_PARAMS];
} one_step;

static void one_step_init(one_step *o, const char *name) {
    o->ps = ur_paramset_new();
    const ur_cell_def *def = ur_cell_find(name);
    cr_assert(def, "%s", ur_last_error());
    cr_assert_eq(ur_cell_make(&o->cell, o->ps, "c", "", def, IN, H), UR_OK, "%s", ur_last_error());
    ur_rng rng;
    ur_rng_seed(&rng, 3);
    cr_assert_eq(ur_rnn_cell_init_uniform(&o->cell, &rng), UR_OK);
    for (int i = 0; i < def->n_params; i++) o->w[i] = o->cell.p[i]->value.data;
    for (int i = 0; i < IN; i++) o->x[i] = ur_rng_uniform(&rng) - 0.5;
    for (int j = 0; j < 2; j++)
        for (int k = 0; k < H; k++) o->s[j][k] = ur_rng_uniform(&rng) - 0.5;
}

/* Runs ur_rnn_cell_step and compares state j with want[j] for every state. */
static void expect_step(one_step *o, double want[][H]) {
    ur_tape *t = ur_tape_new();
    ur_real x[IN], s[2][H];
    for (int i = 0; i < IN; i++) x[i] = (ur_real)o->x[i];
    ur_rnn_hc prev;
    memset(&prev, 0, sizeof prev);
    for (int j = 0; j < o->cell.def->n_states; j++) {
        for (int k = 0; k < H; k++) s[j][k] = (ur_real)o->s[j][k];
        prev.s[j] = ur_input_data(t, 2, (int[]){1, H}, s[j]);
    }
    ur_rnn_hc got = ur_rnn_cell_step(t, &o->cell, ur_input_data(t, 2, (int[]){1, IN}, x), prev);
    for (int j = 0; j < o->cell.def->n_states; j++) {
        cr_assert(got.s[j], "%s: %s", o->cell.def->name, ur_tape_errmsg(t));
        for (int k = 0; k < H; k++)
            cr_expect(fabs(ur_node_cdata(got.s[j])[k] - want[j][k]) < 1e-14, "%s: state %d, unit %d: %g, want %g",
                      o->cell.def->name, j, k, ur_node_cdata(got.s[j])[k], want[j][k]);
    }
    ur_tape_free(t);
    ur_paramset_free(o->ps);
}

/* f = s(x W_f + b_f + h U_f), h~ = tanh(x W_h + b_h + (f h) U_h), h' = (1 - f) h + f h~ */
Test(cells, mgu_follows_its_equations) {
    one_step o;
    one_step_init(&o, "mgu");
    const ur_real *Wi = o.w[0], *b = o.w[1], *Uf = o.w[2], *Uh = o.w[3];
    double a[2 * H] = {0}, f[H], fh[H], c[H] = {0}, want[1][H];
    vecmat(a, o.x, IN, Wi, 2 * H, 0, 2 * H);
    vecmat(c, o.s[0], H, Uf, H, 0, H); /* h U_f */
    for (int k = 0; k < H; k++) f[k] = sigm(a[k] + b[k] + c[k]), fh[k] = f[k] * o.s[0][k];
    double u[H] = {0};
    vecmat(u, fh, H, Uh, H, 0, H);
    for (int k = 0; k < H; k++)
        want[0][k] = (1 - f[k]) * o.s[0][k] + f[k] * tanh(a[H + k] + b[H + k] + u[k]);
    expect_step(&o, want);
}

/* i, f see c_{t-1}, o sees c_t through the peephole vectors */
Test(cells, peephole_lstm_follows_its_equations) {
    one_step o;
    one_step_init(&o, "peephole_lstm");
    const ur_real *Wi = o.w[0], *Wh = o.w[1], *b = o.w[2], *p = o.w[3];
    double a[4 * H] = {0}, want[2][H];
    vecmat(a, o.x, IN, Wi, 4 * H, 0, 4 * H);
    vecmat(a, o.s[0], H, Wh, 4 * H, 0, 4 * H);
    for (int k = 0; k < H; k++) {
        double c = o.s[1][k];
        double i = sigm(a[k] + b[k] + p[k] * c), f = sigm(a[H + k] + b[H + k] + p[H + k] * c);
        double g = tanh(a[2 * H + k] + b[2 * H + k]);
        double c2 = f * c + i * g, og = sigm(a[3 * H + k] + b[3 * H + k] + p[2 * H + k] * c2);
        want[1][k] = c2;
        want[0][k] = og * tanh(c2);
    }
    expect_step(&o, want);
}

/* h' = relu(x W + b + u h) */
Test(cells, indrnn_follows_its_equations) {
    one_step o;
    one_step_init(&o, "indrnn");
    double a[H] = {0}, want[1][H];
    vecmat(a, o.x, IN, o.w[0], H, 0, H);
    for (int k = 0; k < H; k++) want[0][k] = fmax(0, a[k] + o.w[1][k] + o.w[2][k] * o.s[0][k]);
    expect_step(&o, want);
}

/* a = tanh(x W_ih + b_ih + y W_yh), y' = tanh(a W_hy + b_hy) */
Test(cells, jordan_follows_its_equations) {
    one_step o;
    one_step_init(&o, "jordan");
    double a[H] = {0}, z[H] = {0}, want[1][H];
    vecmat(a, o.x, IN, o.w[0], H, 0, H);
    vecmat(a, o.s[0], H, o.w[2], H, 0, H);
    for (int k = 0; k < H; k++) a[k] = tanh(a[k] + o.w[1][k]);
    vecmat(z, a, H, o.w[3], H, 0, H);
    for (int k = 0; k < H; k++) want[0][k] = tanh(z[k] + o.w[4][k]);
    expect_step(&o, want);
}

/* ---- the registry ---- */

/* A cell defined in this file, as a user would: h' = tanh(x W + h U) / 2 (no bias). */
static ur_node *half_project(ur_tape *t, const ur_cell_bound *b, ur_node *x) { return ur_matmul(t, x, b->p[0], 0, 0); }
static void half_step(ur_tape *t, const ur_cell_bound *b, ur_node *gx, ur_node *const *prev, ur_node *hdrop,
                      ur_node **next) {
    ur_node *h = hdrop ? ur_mul(t, prev[0], hdrop) : prev[0];
    next[0] = ur_scale(t, ur_tanh(t, ur_add(t, gx, ur_matmul(t, h, b->p[1], 0, 0))), 0.5);
}
static const ur_cell_def half_tanh = {
    .name = "half_tanh",
    .n_states = 1,
    .state_names = {"h"},
    .n_params = 2,
    .params = {{"w", 2, {{1, 0}, {0, 1}}, UR_CELL_INPUT_WEIGHT}, {"u", 2, {{0, 1}, {0, 1}}, UR_CELL_RECURRENT_WEIGHT}},
    .proj = {0, 1},
    .project = half_project,
    .step = half_step,
};

static void lazy_step(ur_tape *t, const ur_cell_bound *b, ur_node *gx, ur_node *const *prev, ur_node *hdrop,
                      ur_node **next) {
    (void)t, (void)b, (void)gx, (void)prev, (void)hdrop, (void)next;
}

Test(cells, registry_finds_registers_and_refuses) {
    const char *builtin[9] = {"rnn_tanh", "rnn_relu", "gru", "gru_reset_before", "lstm",
                              "mgu",      "peephole_lstm", "indrnn", "jordan"};
    for (int i = 0; i < 9; i++) {
        cr_assert(ur_cell_find(builtin[i]), "%s", builtin[i]);
        cr_expect_eq(ur_cell_find(builtin[i]), ur_cell_at(i));
    }
    for (int k = UR_RNN_TANH; k <= UR_RNN_LSTM; k++)
        cr_expect_eq(ur_rnn_kind_cell((ur_rnn_kind)k), ur_cell_find(ur_rnn_kind_name((ur_rnn_kind)k)));
    cr_expect_eq(ur_rnn_gates(UR_RNN_LSTM), 4);
    cr_expect_null(ur_cell_find("elman"));
    cr_expect(strstr(ur_last_error(), "no cell named 'elman' (known: rnn_tanh, rnn_relu, gru"), "%s",
              ur_last_error());
    cr_expect_null(ur_cell_at(-1));
    /* a user's cell: registered once, found by name, run by ur_rnn with a checkpoint name */
    int n = ur_cell_count();
    cr_assert_eq(ur_cell_register(&half_tanh), UR_OK, "%s", ur_last_error());
    cr_expect_eq(ur_cell_count(), n + 1);
    cr_expect_eq(ur_cell_find("half_tanh"), &half_tanh);
    cr_expect_eq(ur_cell_register(&half_tanh), UR_ERR_ARG);
    cr_expect(strstr(ur_last_error(), "a cell named 'half_tanh' is already registered"), "%s", ur_last_error());
    ur_paramset *ps = ur_paramset_new();
    ur_rnn_config c = ur_rnn_defaults_cell(ur_cell_find("half_tanh"), IN, H);
    c.bidirectional = 1;
    ur_rnn *r = ur_rnn_new(ps, "enc", &c);
    cr_assert(r, "%s", ur_last_error());
    cr_expect(ur_paramset_find(ps, "enc.u_l0_reverse"));
    ur_tape *t = ur_tape_new();
    ur_node *y = ur_rnn_forward(r, t, ur_zeros(t, 3, (int[]){2, 1, IN}), NULL, NULL);
    cr_assert(y, "%s", ur_tape_errmsg(t));
    cr_expect_eq(ur_node_dim(y, 2), 2 * H);
    /* not one of PyTorch's cells */
    cr_expect_eq(ur_rnn_load_torch(r, NULL, NULL), UR_ERR_ARG);
    ur_rnn_free(r);
    /* forget_bias goes to the cell's forget block: the peephole LSTM's f of i, f, g, o */
    ur_rnn_config pc = ur_rnn_defaults_cell(ur_cell_find("peephole_lstm"), IN, H);
    pc.init = UR_RNN_INIT_ORTHOGONAL;
    pc.forget_bias = 1.5;
    r = ur_rnn_new(ps, "p", &pc);
    cr_assert(r, "%s", ur_last_error());
    const ur_real *pb = ur_rnn_cell_param(ur_rnn_cell_at(r, 0, 0), "bias")->value.data;
    for (int k = 0; k < 4 * H; k++) cr_expect(pb[k] == (k >= H && k < 2 * H ? 1.5 : 0), "bias[%d] = %g", k, pb[k]);
    cr_expect_null(ur_rnn_cell_param(ur_rnn_cell_at(r, 0, 0), "bias_ih"));
    ur_rnn_free(r);
    ur_rnn_config m = ur_rnn_defaults_cell(ur_cell_find("mgu"), IN, H);
    r = ur_rnn_new(ps, "m", &m);
    cr_assert(r);
    char path[512];
    ur_test_tmp_path("mgu.safetensors", path, sizeof path);
    cr_assert_eq(ur_ckpt_save(path, ps, NULL, 0, NULL), UR_OK);
    cr_expect_eq(ur_rnn_load_torch_file(r, path, "m"), UR_ERR_ARG);
    cr_expect(strstr(ur_last_error(), "cell 'mgu' is not one of PyTorch's"), "%s", ur_last_error());
    remove(path);
    ur_rnn_free(r);
    /* malformed definitions */
    ur_cell_def bad = half_tanh;
    bad.name = "bad";
    bad.step = NULL;
    cr_expect_eq(ur_cell_register(&bad), UR_ERR_ARG);
    cr_expect(strstr(ur_last_error(), "cell 'bad' has no step function"), "%s", ur_last_error());
    bad.step = half_step;
    bad.n_states = 0;
    cr_expect_eq(ur_cell_register(&bad), UR_ERR_ARG);
    cr_expect(strstr(ur_last_error(), "has 0 states"), "%s", ur_last_error());
    bad.n_states = 1;
    bad.params[1].name = "w";
    cr_expect_eq(ur_cell_register(&bad), UR_ERR_ARG);
    cr_expect(strstr(ur_last_error(), "names two parameters 'w'"), "%s", ur_last_error());
    cr_expect_eq(ur_cell_register(NULL), UR_ERR_ARG);
    ur_rnn_config cb = ur_rnn_defaults_cell(&bad, IN, H);
    cr_expect_null(ur_rnn_new(ps, "b", &cb));
    cr_expect(strstr(ur_last_error(), "ur_rnn_new: cell 'bad' names two parameters"), "%s", ur_last_error());
    /* a step that forgets a state is an error on the tape, not a crash */
    ur_cell_def lazy = half_tanh;
    lazy.name = "lazy";
    lazy.step = lazy_step;
    ur_rnn_config cl = ur_rnn_defaults_cell(&lazy, IN, H);
    r = ur_rnn_new(ps, "l", &cl);
    cr_assert(r, "%s", ur_last_error());
    ur_tape_reset(t);
    cr_expect_null(ur_rnn_forward(r, t, ur_zeros(t, 3, (int[]){2, 1, IN}), NULL, NULL));
    cr_expect(strstr(ur_tape_errmsg(t), "the step of cell 'lazy' gave no state 0"), "%s", ur_tape_errmsg(t));
    ur_rnn_free(r);
    ur_tape_free(t);
    ur_paramset_free(ps);
}

/* ---- training: char_rnn --cell NAME takes any registered cell ---- */

Test(cells, new_cells_train_in_char_rnn, .timeout = 120) {
    const char *cells[4] = {"mgu", "peephole_lstm", "indrnn", "jordan"};
    for (int i = 0; i < 4; i++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd,
                 UR_BINARY_DIR "/bin/char_rnn --threads 1 --cell %s --hidden 64 --embed 16 --batch 16 --bptt 32 "
                               "--steps 40 --val-chars 2000 --sample 0 --json",
                 cells[i]);
        char *j = ur_test_run_json(cmd);
        char got[32];
        ur_test_json_string(j, "cell", got, sizeof got);
        cr_expect_str_eq(got, cells[i]);
        double first = ur_test_json_number(j, "first_loss"), last = ur_test_json_number(j, "last_loss");
        cr_expect(isfinite(first) && isfinite(last), "%s: losses %g, %g", cells[i], first, last);
        cr_expect_lt(last, first - 0.5, "%s: the loss did not fall: %g -> %g", cells[i], first, last);
        free(j);
    }
    ur_test_expect_failure(UR_BINARY_DIR "/bin/char_rnn --cell elman --steps 1",
                           (const char *const[]){"char_rnn: --cell must be one of rnn, rnn_tanh", "jordan, lnlstm, got \"elman\"", NULL});
}
