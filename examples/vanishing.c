/* vanishing - how far back does the gradient reach? ||dL/dh_t|| against t.
 *
 * Six recurrent nets read the same T = 50 random inputs; the loss is a
 * cross-entropy on h_T only, so every gradient that reaches h_t for t < T has
 * travelled T - t steps back through the recurrence:
 *
 *   rnn_0.9   h_t = tanh(x_t W_xh + h_{t-1} W_hh + b)  with W_hh = 0.9 I
 *   rnn_1.1   the same with W_hh = 1.1 I
 *   rnn_orth  the same with W_hh a random orthogonal matrix (gain 1)
 *   gru       GRU cell (gate math ur_expr_gru), update-gate bias --gate-bias
 *   lstm      LSTM cell (gate math ur_expr_lstm), forget-gate bias --gate-bias
 *   irnn      h_t = relu(x_t W_xh + h_{t-1} W_hh + b)  with W_hh = I, b = 0 (IRNN, Le et al. 2015)
 *
 * For the tanh nets dL/dh_{t-1} = (dL/dh_t * tanh'(.)) W_hh^T: with small inputs
 * (tanh' close to 1) the gradient is multiplied by about 0.9 or 1.1 per step, so over
 * 49 steps it shrinks by 0.9^49 ~ 1/175 or grows by 1.1^49 ~ 107. An orthogonal
 * W_hh keeps its norm. The gated cells add the old state in (c_t = f c_{t-1} + ...),
 * so with the gates open for memory (bias 3: sigmoid(3) = 0.95) the gradient decays
 * slowly; try --gate-bias 0 to see them forget fast too. The IRNN passes the gradient
 * back unchanged through every unit whose pre-activation is positive (relu' = 1,
 * W_hh^T = I) and stops it at the others: its curve does not shrink geometrically
 * but steps down where units switch off.
 *
 * Writes a CSV (--csv) and a log-scale SVG plot (--svg) of the six curves.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "unroll.h"
#include "ur_checkpoint.h"
#include "ur_init.h"

enum { D = 8, H = 16, C = 4, N_MODELS = 6, MAX_T = 1000 };
/* The models' names, in the order of main's table (--model picks one). */
static const char *const MODEL_NAMES[N_MODELS + 1] = {"rnn_0.9", "rnn_1.1", "gru", "lstm", "rnn_orth", "irnn",
                                                               NULL};

typedef enum cell { CELL_TANH, CELL_RELU, CELL_GRU, CELL_LSTM } cell;

typedef struct model {
    const char *name; /* also the CSV column */
    cell kind;
    ur_param *W_x, *W_h, *b, *b_h, *W_y; /* b_h: GRU only */
    ur_expr *gates;                      /* the gated cells' gate math, built once */
    double *norms;                       /* ||dL/dh_t||, t = 1..T at [t-1] */
} model;

/* A parameter named "<model>.<what>": (rows, cols), or (rows) when cols is 0. */
static ur_param *add_param(ur_paramset *ps, const char *model, const char *what, int rows, int cols) {
    char name[96];
    snprintf(name, sizeof name, "%s.%s", model, what);
    return cols ? ur_paramset_add(ps, name, 2, (int[]){rows, cols}) : ur_paramset_add(ps, name, 1, (int[]){rows});
}

/* Adds one model's parameters to ps and initializes them. */
static int model_add(ur_paramset *ps, model *m, ur_rng *rng, double w_hh_scale, double input_std,
                     double gate_bias) {
    int G = m->kind == CELL_TANH || m->kind == CELL_RELU ? 1 : m->kind == CELL_GRU ? 3 : 4; /* gate blocks */
    m->W_x = add_param(ps, m->name, "W_x", D, G * H);
    m->W_h = add_param(ps, m->name, "W_h", H, G * H);
    m->b = add_param(ps, m->name, "b", G * H, 0);
    m->b_h = m->kind == CELL_GRU ? add_param(ps, m->name, "b_h", G * H, 0) : NULL;
    m->W_y = add_param(ps, m->name, "W_y", H, C);
    if (!m->W_x || !m->W_h || !m->b || (m->kind == CELL_GRU && !m->b_h) || !m->W_y) return 0;
    ur_init_xavier_uniform(&m->W_y->value, rng, 1.0);
    if (m->kind == CELL_TANH || m->kind == CELL_RELU) { /* the IRNN's b stays 0 like the others' */
        /* small inputs keep tanh near its linear regime: W_hh alone sets the decay */
        ur_init_normal(&m->W_x->value, rng, 0.0, input_std);
        if (w_hh_scale > 0) ur_init_identity(&m->W_h->value, w_hh_scale);
        else ur_init_orthogonal(&m->W_h->value, rng, 1.0, 1);
        return 1;
    }
    m->gates = m->kind == CELL_GRU ? ur_expr_gru() : ur_expr_lstm();
    if (!m->gates) return 0;
    ur_init_xavier_uniform(&m->W_x->value, rng, 1.0);
    ur_init_orthogonal(&m->W_h->value, rng, 1.0, G);
    /* the gate that keeps the old state: GRU z (block 1 of r, z, n), LSTM f (block 1 of i, f, g, o) */
    for (int j = H; j < 2 * H; j++) m->b->value.data[j] = (ur_real)gate_bias;
    return 1;
}

/* Unrolls the model over the T inputs X (T, D); loss = cross_entropy(h_T W_y, class 0).
 * h[0..T] receives the hidden-state nodes. */
static ur_node *forward(ur_tape *t, const model *m, const ur_real *X, int T, ur_node **h) {
    ur_node *W_x = ur_param_node(t, m->W_x), *W_h = ur_param_node(t, m->W_h), *b = ur_param_node(t, m->b);
    ur_node *b_h = m->b_h ? ur_param_node(t, m->b_h) : NULL, *W_y = ur_param_node(t, m->W_y);
    h[0] = ur_zeros(t, 2, (int[]){1, H});
    ur_node *c = m->kind == CELL_LSTM ? ur_zeros(t, 2, (int[]){1, H}) : NULL;
    char label[32];
    for (int s = 0; s < T; s++) {
        snprintf(label, sizeof label, "t=%d", s + 1);
        ur_tape_begin_group(t, label);
        ur_node *x = ur_input_data(t, 2, (int[]){1, D}, X + (size_t)s * D);
        ur_node *xw = ur_matmul(t, x, W_x, 0, 0), *hw = ur_matmul(t, h[s], W_h, 0, 0);
        switch (m->kind) {
        case CELL_TANH: /* h_t = tanh(x_t W_x + h_{t-1} W_h + b) */
            h[s + 1] = ur_tanh(t, ur_add(t, ur_add(t, xw, hw), b));
            break;
        case CELL_RELU: /* h_t = relu(x_t W_x + h_{t-1} W_h + b) */
            h[s + 1] = ur_relu(t, ur_add(t, ur_add(t, xw, hw), b));
            break;
        case CELL_GRU: /* gates r, z, n from both sides; h_t = (1 - z) n + z h_{t-1} */
            ur_expr_apply(t, m->gates, 3, (ur_node *[]){ur_add(t, xw, b), ur_add(t, hw, b_h), h[s]}, &h[s + 1]);
            break;
        case CELL_LSTM: { /* c_t = f c_{t-1} + i g;  h_t = o tanh(c_t) */
            ur_node *gates = ur_add(t, ur_add(t, xw, hw), b);
            ur_node *hc[2];
            ur_expr_apply(t, m->gates, 2, (ur_node *[]){gates, c}, hc);
            h[s + 1] = hc[0], c = hc[1];
            break;
        }
        }
        snprintf(label, sizeof label, "h%d", s + 1);
        ur_node_set_label(t, h[s + 1], label);
        ur_tape_end_group(t);
    }
    static const int target = 0;
    ur_node *loss = ur_cross_entropy(t, ur_matmul(t, h[T], W_y, 0, 0), &target, NULL);
    ur_node_set_label(t, loss, "L");
    return loss;
}

static double norm2(const ur_real *v, size_t n) {
    double s = 0;
    for (size_t i = 0; v && i < n; i++) s += (double)v[i] * v[i];
    return sqrt(s);
}

/* One forward + backward of model m; returns the loss (NaN on error, message on stderr). */
static double run_once(ur_tape *t, ur_paramset *ps, const model *m, const ur_real *X, int T, ur_node **h) {
    ur_tape_reset(t);
    ur_paramset_zero_grad(ps);
    ur_node *loss = forward(t, m, X, T, h);
    if (ur_tape_error(t) || ur_backward(t, loss) != UR_OK) {
        fprintf(stderr, "vanishing: %s: %s\n", m->name, ur_tape_error(t) ? ur_tape_errmsg(t) : ur_last_error());
        return NAN;
    }
    return ur_node_item(loss);
}

static int write_csv(const char *path, const model *ms, int T) {
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    fprintf(f, "t");
    for (int k = 0; k < N_MODELS; k++) fprintf(f, ",%s", ms[k].name);
    fputc('\n', f);
    for (int s = 0; s < T; s++) {
        fprintf(f, "%d", s + 1);
        for (int k = 0; k < N_MODELS; k++) fprintf(f, ",%.6e", ms[k].norms[s]);
        fputc('\n', f);
    }
    return fclose(f) == 0;
}

/* A line plot with a log-scale y axis, written by hand: axes, decade grid lines and
 * labels, one polyline per model, a legend. */
static int write_svg(const char *path, const model *ms, int T) {
    static const char *const colors[N_MODELS] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                                 "#8c564b"};
    const double W = 760, Hgt = 460, left = 80, right = 170, top = 40, bottom = 60;
    const double pw = W - left - right, ph = Hgt - top - bottom;
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < N_MODELS; k++)
        for (int s = 0; s < T; s++)
            if (ms[k].norms[s] > 0 && isfinite(ms[k].norms[s])) {
                lo = fmin(lo, ms[k].norms[s]);
                hi = fmax(hi, ms[k].norms[s]);
            }
    if (!(lo <= hi)) lo = hi = 1;
    int dlo = (int)floor(log10(lo)), dhi = (int)ceil(log10(hi));
    if (dhi <= dlo) dhi = dlo + 1;
    FILE *f = fopen(path, "w");
    if (!f) return 0;
#define X_OF(t) (left + pw * ((T) > 1 ? ((t) - 1.0) / ((T) - 1.0) : 0.5))
#define Y_OF(v) (top + ph * (1.0 - (log10(v) - dlo) / (double)(dhi - dlo)))
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
               "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n", W, Hgt, W, Hgt);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%.1f\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">Gradient norm at step t, loss at "
               "step T = %d</text>\n", left + pw / 2, T);
    for (int d = dlo; d <= dhi; d++) { /* decade grid lines and their labels */
        double y = Y_OF(pow(10.0, d));
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#dddddd\"/>\n", left, y, left + pw, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">1e%d</text>\n", left - 6, y + 4, d);
    }
    int tick = T > 10 ? (T + 9) / 10 : 1;
    for (int s = 1; s <= T; s += (s == 1 && tick > 1) ? tick - 1 : tick) { /* x ticks: 1, tick, 2 tick, ... */
        double x = X_OF(s);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", x, top + ph, x,
                top + ph + 5);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d</text>\n", x, top + ph + 18, s);
    }
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"black\"/>\n", left,
            top, pw, ph);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">time step t</text>\n", left + pw / 2, Hgt - 15);
    fprintf(f, "<text x=\"18\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 18 %.1f)\">"
               "||dL/dh_t|| (log scale)</text>\n", top + ph / 2, top + ph / 2);
    for (int k = 0; k < N_MODELS; k++) {
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", colors[k]);
        for (int s = 0; s < T; s++) {
            double v = ms[k].norms[s] > 0 && isfinite(ms[k].norms[s]) ? ms[k].norms[s] : lo;
            fprintf(f, "%s%.1f,%.1f", s ? " " : "", X_OF(s + 1), Y_OF(v));
        }
        fprintf(f, "\"/>\n");
        double ly = top + 20 + 20 * k, lx = left + pw + 15;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>\n", lx,
                ly, lx + 25, ly, colors[k]);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", lx + 32, ly + 4, ms[k].name);
    }
#undef X_OF
#undef Y_OF
    fprintf(f, "</svg>\n");
    return fclose(f) == 0;
}

/* ---- the six models ---- */

/* The models of the table, their parameters in ps (initialized from --seed), and the
 * input sequence X (T, D) drawn after them. 1, or 0 on error. */
static int models_init(model *ms, ur_paramset *ps, ur_tensor *X, int T, long seed, double input_std, double gate_bias) {
    const model table[N_MODELS] = {{.name = "rnn_0.9", .kind = CELL_TANH}, {.name = "rnn_1.1", .kind = CELL_TANH},
                                   {.name = "gru", .kind = CELL_GRU},          {.name = "lstm", .kind = CELL_LSTM},
                                   {.name = "rnn_orth", .kind = CELL_TANH},    {.name = "irnn", .kind = CELL_RELU}};
    const double w_hh_scale[N_MODELS] = {0.9, 1.1, 0, 0, 0, 1.0}; /* 0: orthogonal */
    ur_rng rng;
    ur_rng_seed(&rng, (uint64_t)seed);
    ur_rng irnn_rng; /* its own stream: the other models and X keep the values they had before it came */
    ur_rng_seed(&irnn_rng, (uint64_t)seed ^ 0x1ee5ULL);
    for (int k = 0; k < N_MODELS; k++) ms[k] = table[k];
    for (int k = 0; k < N_MODELS; k++) {
        ms[k].norms = calloc((size_t)T, sizeof(double));
        if (!ms[k].norms || !model_add(ps, &ms[k], ms[k].kind == CELL_RELU ? &irnn_rng : &rng, w_hh_scale[k],
                                       input_std, gate_bias))
            return 0;
    }
    ur_tensor_normal(X, &rng, 0, 1);
    return 1;
}

/* The parameters' own (the model's) gradient norms, one line: --grad-report. */
static void print_grad_norms(const model *m) {
    printf("%s: parameter gradient norms:", m->name);
    const ur_param *own[5] = {m->W_x, m->W_h, m->b, m->b_h, m->W_y};
    for (int p = 0; p < 5; p++)
        if (own[p]) printf("  %s %.3e", own[p]->name, norm2(own[p]->grad.data, own[p]->grad.size));
    printf("\n");
}

/* ---- the results ---- */

/* ||dL/dh_t|| of every model at about ten steps t, then the ratio first/last. */
static void print_table(const model *ms, int T, int trained) {
    printf("||dL/dh_t||, loss at t = %d only%s\n%6s", T, trained ? " (after training)" : "", "t");
    for (int k = 0; k < N_MODELS; k++) printf(" %11s", ms[k].name);
    printf("\n");
    int every = T > 10 ? T / 10 : 1;
    for (int s = 1; s <= T; s++) {
        if (s != 1 && s != T && s % every) continue;
        printf("%6d", s);
        for (int k = 0; k < N_MODELS; k++) printf(" %11.3e", ms[k].norms[s - 1]);
        printf("\n");
    }
    printf("%6s", "h1/hT");
    for (int k = 0; k < N_MODELS; k++) printf(" %11.3e", ms[k].norms[0] / ms[k].norms[T - 1]);
    printf("\n");
}

static void print_json(const model *ms, int T) {
    cli_json j;
    cli_json_begin(&j);
    cli_json_int(&j, "T", T);
    char key[64];
    for (int k = 0; k < N_MODELS; k++) {
        snprintf(key, sizeof key, "ratio_%s", ms[k].name);
        cli_json_num(&j, key, ms[k].norms[0] / ms[k].norms[T - 1]);
    }
    for (int k = 0; k < N_MODELS; k++) {
        snprintf(key, sizeof key, "norms_%s", ms[k].name);
        cli_json_array(&j, key, ms[k].norms, T);
    }
    cli_json_end(&j);
}

/* ---- the program ---- */
int main(int argc, char **argv) {
    cli_common c;
    cli_common_defaults(&c);
    int T = 50;
    double input_std = 1e-3, gate_bias = 3.0, lr = 0.05;
    const char *csv = NULL, *svg = NULL, *tape_model = "lstm";
    cli_opt opts[] = {
        CLI_COMMON_OPTS(c),
        CLI_INT("--T", &T, 2, MAX_T, "sequence length (default 50)"),
        CLI_TEXT("--csv", &csv, "write t and ||dL/dh_t|| of every model as CSV"),
        CLI_TEXT("--svg", &svg, "write the curves as an SVG line plot (log scale)"),
        CLI_REAL("--input-std", &input_std, 0, 100, "std of the tanh nets' W_xh entries (default 1e-3)"),
        CLI_REAL("--gate-bias", &gate_bias, -100, 100, "GRU update / LSTM forget gate bias (default 3)"),
        CLI_REAL("--lr", &lr, 0, 10, "SGD learning rate of --steps (default 0.05)"),
        CLI_CHOICE("--model", &tape_model, MODEL_NAMES, "model whose tape --dot/--print-tape show (default lstm)"),
    };
    int r = cli_parse(argc, argv, "vanishing: ||dL/dh_t|| against t for tanh RNNs, an IRNN, a GRU and an LSTM", opts,
                      (int)(sizeof opts / sizeof opts[0]));
    if (r) return r > 0 ? 0 : 2;
    cli_apply_common(&c);

    /* ---- six models in one parameter set, and one input sequence ---- */
    model ms[N_MODELS] = {{0}};
    ur_paramset *ps = ur_paramset_new();
    ur_tape *tape = cli_tape_new(&c);
    ur_tensor *X = ur_tensor_new_2d(T, D);
    ur_node **h = calloc((size_t)T + 1, sizeof *h);
    int ok = ps && tape && X && h && models_init(ms, ps, X, T, c.seed, input_std, gate_bias);
    if (ok && c.load && ur_ckpt_load_params(c.load, ps, 0) != UR_OK) ok = 0;
    if (!ok) fprintf(stderr, "vanishing: setup failed: %s\n", ur_last_error());
    int shown = cli_choice_index(MODEL_NAMES, tape_model);

    /* ---- optional training (plain SGD on each model), then one measured backward ---- */
    double started = cli_now();
    for (int k = 0; ok && k < N_MODELS; k++) {
        for (long step = 1; ok && step <= c.steps; step++) {
            double loss = run_once(tape, ps, &ms[k], X->data, T, h);
            ok = isfinite(loss);
            ur_param *own[5] = {ms[k].W_x, ms[k].W_h, ms[k].b, ms[k].b_h, ms[k].W_y};
            for (int p = 0; ok && p < 5; p++) /* w -= lr * dL/dw */
                for (size_t e = 0; own[p] && e < own[p]->value.size; e++)
                    own[p]->value.data[e] -= (ur_real)lr * own[p]->grad.data[e];
            long done = k * c.steps + step;
            cli_progress(done, N_MODELS * c.steps, loss, T * done / (cli_now() - started + 1e-9), started);
        }
        if (ok) ok = isfinite(run_once(tape, ps, &ms[k], X->data, T, h));
        for (int s = 1; ok && s <= T; s++) ms[k].norms[s - 1] = norm2(ur_node_grad(h[s]), H);
        if (ok && c.grad_report) print_grad_norms(&ms[k]);
        if (ok && k == shown && c.print_tape) {
            printf("the tape of %s (%d nodes):\n", ms[k].name, ur_tape_size(tape));
            ur_tape_print(tape, stdout);
        }
        if (ok && k == shown && c.dot) ok = cli_write_dot(tape, c.dot) == 0;
    }
    if (c.steps > 0) cli_progress_end();

    /* ---- the table, the files ---- */
    if (ok) print_table(ms, T, c.steps > 0);
    if (ok && csv && !write_csv(csv, ms, T)) {
        fprintf(stderr, "vanishing: cannot write %s\n", csv);
        ok = 0;
    }
    if (ok && svg && !write_svg(svg, ms, T)) {
        fprintf(stderr, "vanishing: cannot write %s\n", svg);
        ok = 0;
    }
    if (ok && c.save && ur_ckpt_save(c.save, ps, NULL, 0, NULL) != UR_OK) {
        fprintf(stderr, "vanishing: --save %s: %s\n", c.save, ur_last_error());
        ok = 0;
    }
    if (ok && c.json) print_json(ms, T);

    for (int k = 0; k < N_MODELS; k++) free(ms[k].norms), ur_expr_free(ms[k].gates);
    free(h);
    ur_tensor_free(X);
    ur_tape_free(tape);
    ur_paramset_free(ps);
    ur_kernel_free_buffers();
    return ok ? 0 : 1;
}
