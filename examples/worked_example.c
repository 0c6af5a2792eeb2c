/* worked_example - the lecture's hand-worked RNN tagger, computed by the library.
 *
 * Three words, three tags to predict out of four (DET, ADJ, VERB, NOUN = 0..3):
 *
 *     x1 = [1, 0, 0] -> DET    x2 = [1, 1, 2] -> ADJ    x3 = [1, -1, 1] -> NOUN
 *
 *     h_t  = ReLU(x_t U + h_{t-1} W)      x_t (1,3)  U (3,2)  W (2,2)  h_0 = 0
 *     yh_t = softmax(h_t V)               V (2,4): one probability per tag
 *     L    = (1/3) sum_t -log yh_t[tag_t]
 *
 *     U = [[1, 1], [2, 0], [0.5, 1]]   W = [[0, 1], [1, 0]]   V = [[0, 1, 0, 0], [1, 0, 1/3, 1]]
 *
 * no biases. By hand: h1 = ReLU([1, 1]) = [1, 1]; h2 = ReLU([1,1,2] U + h1 W) =
 * ReLU([4, 3] + [1, 1]) = [5, 4]; h3 = ReLU([-0.5, 2] + [4, 5]) = [3.5, 7].
 *
 * The program prints every h_t, yh_t and the loss, runs backward through the tape and
 * prints dL/dU, dL/dW, dL/dV beside central differences (f(w+e) - f(w-e)) / 2e of a
 * second, plain-double forward pass: if backpropagation through time were wrong,
 * the two columns would disagree. --steps N then takes N SGD steps on the sentence.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "unroll.h"
#include "ur_checkpoint.h"

enum { D = 3, H = 2, K = 4, T = 3 };
enum { N_U = D * H, N_W = H * H, N_V = H * K, N_THETA = N_U + N_W + N_V };
static const char *const TAGS[K] = {"DET", "ADJ", "VERB", "NOUN"};
static const double X[T][D] = {{1, 0, 0}, {1, 1, 2}, {1, -1, 1}};
static const int TAG[T] = {0, 1, 3};
static const double U0[N_U] = {1, 1, 2, 0, 0.5, 1};
static const double W0[N_W] = {0, 1, 1, 0};
static const double V0[N_V] = {0, 1, 0, 0, 1, 0, 1.0 / 3.0, 1};

typedef struct model {
    ur_paramset *ps;
    ur_param *U, *W, *V;
} model;

typedef struct unrolled {
    ur_node *h[T + 1], *yhat[T], *step_loss[T], *loss;
} unrolled;

/* ---- the forward pass on the tape ---- */
static ur_node *forward(ur_tape *t, model *m, unrolled *u) {
    ur_node *U = ur_param_node(t, m->U), *W = ur_param_node(t, m->W), *V = ur_param_node(t, m->V);
    u->h[0] = ur_zeros(t, 2, (int[]){1, H});
    ur_node_set_label(t, u->h[0], "h0");
    ur_node *sum = NULL;
    char label[32];
    for (int s = 0; s < T; s++) {
        snprintf(label, sizeof label, "t=%d", s + 1);
        ur_tape_begin_group(t, label);
        ur_real x[D];
        for (int i = 0; i < D; i++) x[i] = (ur_real)X[s][i];
        ur_node *xn = ur_input_data(t, 2, (int[]){1, D}, x);
        snprintf(label, sizeof label, "x%d", s + 1);
        ur_node_set_label(t, xn, label);

        /* h_t = ReLU(x_t U + h_{t-1} W) */
        u->h[s + 1] = ur_relu(t, ur_add(t, ur_matmul(t, xn, U, 0, 0), ur_matmul(t, u->h[s], W, 0, 0)));
        snprintf(label, sizeof label, "h%d", s + 1);
        ur_node_set_label(t, u->h[s + 1], label);

        /* z_t = h_t V; yh_t = softmax(z_t) is shown; the loss uses z_t directly, since
         * cross_entropy(z, tag) = -log softmax(z)[tag] computed without overflow. */
        ur_node *z = ur_matmul(t, u->h[s + 1], V, 0, 0);
        u->yhat[s] = ur_softmax(t, z);
        snprintf(label, sizeof label, "yh%d", s + 1);
        ur_node_set_label(t, u->yhat[s], label);
        u->step_loss[s] = ur_cross_entropy(t, z, &TAG[s], NULL);
        snprintf(label, sizeof label, "L%d %s", s + 1, TAGS[TAG[s]]);
        ur_node_set_label(t, u->step_loss[s], label);
        sum = sum ? ur_add(t, sum, u->step_loss[s]) : u->step_loss[s];
        ur_tape_end_group(t);
    }
    u->loss = ur_scale(t, sum, (ur_real)1.0 / T);
    ur_node_set_label(t, u->loss, "L");
    return u->loss;
}

/* ---- the same forward pass in plain double arithmetic ----
 * theta holds U, W, V one after another (row-major). Used only for finite differences. */
static double loss_double(const double *theta) {
    const double *U = theta, *W = theta + N_U, *V = theta + N_U + N_W;
    double h[H] = {0}, total = 0;
    for (int s = 0; s < T; s++) {
        double hn[H], z[K], zmax = -INFINITY, lse = 0;
        for (int j = 0; j < H; j++) {
            double a = 0;
            for (int i = 0; i < D; i++) a += X[s][i] * U[i * H + j];
            for (int i = 0; i < H; i++) a += h[i] * W[i * H + j];
            hn[j] = a > 0 ? a : 0;
        }
        for (int k = 0; k < K; k++) {
            z[k] = 0;
            for (int j = 0; j < H; j++) z[k] += hn[j] * V[j * K + k];
            if (z[k] > zmax) zmax = z[k];
        }
        for (int k = 0; k < K; k++) lse += exp(z[k] - zmax);
        total += zmax + log(lse) - z[TAG[s]];
        memcpy(h, hn, sizeof h);
    }
    return total / T;
}

/* Central differences of loss_double at theta, every element. */
static void finite_differences(double *theta, double eps, double *out) {
    for (int i = 0; i < N_THETA; i++) {
        double keep = theta[i];
        theta[i] = keep + eps;
        double up = loss_double(theta);
        theta[i] = keep - eps;
        double down = loss_double(theta);
        theta[i] = keep;
        out[i] = (up - down) / (2 * eps);
    }
}

static void print_row(const char *name, const ur_real *v, int n) {
    printf("%s[", name);
    for (int i = 0; i < n; i++) printf("%s%.6g", i ? ", " : "", v[i]);
    printf("]\n");
}

/* Prints a tape gradient (rows x cols) beside its finite differences. */
static void print_grad_pair(const char *name, const double *tape, const double *fd, int rows, int cols) {
    printf("%s  %-*s   %s\n", name, 12 * cols + 2, "backward (tape)", "central differences");
    for (int r = 0; r < rows; r++) {
        printf("%*s  [", (int)strlen(name), "");
        for (int c = 0; c < cols; c++) printf("%12.8f", tape[r * cols + c]);
        printf(" ]  [");
        for (int c = 0; c < cols; c++) printf("%12.8f", fd[r * cols + c]);
        printf(" ]\n");
    }
}

static double norm2(const ur_real *v, size_t n) {
    double s = 0;
    for (size_t i = 0; v && i < n; i++) s += (double)v[i] * v[i];
    return sqrt(s);
}

/* ---- what the program reports ---- */
typedef struct results {
    double h[T * H], yhat[T * K], step_losses[T], loss; /* the forward pass */
    double grad[N_THETA], fd[N_THETA], max_diff;         /* backward beside central differences */
} results;

/* The lecture's weights, or a checkpoint's (load non-NULL). 1, or 0 on error. */
static int model_init(model *m, const char *load) {
    m->ps = ur_paramset_new();
    m->U = ur_paramset_add(m->ps, "U", 2, (int[]){D, H});
    m->W = ur_paramset_add(m->ps, "W", 2, (int[]){H, H});
    m->V = ur_paramset_add(m->ps, "V", 2, (int[]){H, K});
    if (!m->U || !m->W || !m->V) return 0;
    for (int i = 0; i < N_U; i++) m->U->value.data[i] = (ur_real)U0[i];
    for (int i = 0; i < N_W; i++) m->W->value.data[i] = (ur_real)W0[i];
    for (int i = 0; i < N_V; i++) m->V->value.data[i] = (ur_real)V0[i];
    return !load || ur_ckpt_load_params(load, m->ps, 0) == UR_OK;
}

/* Prints every h_t, yh_t and L_t of the unrolled pass and the loss; keeps them in r. */
static void print_forward(const unrolled *u, results *r) {
    printf("worked example: h_t = ReLU(x_t U + h_{t-1} W), yh_t = softmax(h_t V), tags DET ADJ VERB NOUN\n\n");
    for (int s = 0; s < T; s++) {
        const ur_real *hv = ur_node_cdata(u->h[s + 1]), *yv = ur_node_cdata(u->yhat[s]);
        for (int j = 0; j < H; j++) r->h[s * H + j] = hv[j];
        for (int k = 0; k < K; k++) r->yhat[s * K + k] = yv[k];
        r->step_losses[s] = ur_node_item(u->step_loss[s]);
        printf("t=%d  x%d = [%g, %g, %g]  target %s\n", s + 1, s + 1, X[s][0], X[s][1], X[s][2], TAGS[TAG[s]]);
        char name[32];
        snprintf(name, sizeof name, "  h%d  = ", s + 1);
        print_row(name, hv, H);
        snprintf(name, sizeof name, "  yh%d = ", s + 1);
        print_row(name, yv, K);
        printf("  L%d  = -log yh%d[%s] = %.6f\n", s + 1, s + 1, TAGS[TAG[s]], r->step_losses[s]);
    }
    r->loss = ur_node_item(u->loss);
    printf("\nloss L = (L1 + L2 + L3) / 3 = %.6f\n\n", r->loss);
}

/* Prints backward's dL/dU, dL/dW, dL/dV beside central differences of step eps and
 * the largest difference; keeps them in r. */
static void check_gradients(const model *m, double eps, results *r) {
    double theta[N_THETA]; /* (U, W, V) in double; grad is backward's gradient in the same order */
    const ur_param *ps[3] = {m->U, m->W, m->V};
    for (int p = 0, i = 0; p < 3; p++)
        for (size_t e = 0; e < ps[p]->value.size; e++, i++) {
            theta[i] = ps[p]->value.data[e];
            r->grad[i] = ps[p]->grad.data[e];
        }
    finite_differences(theta, eps, r->fd);
    r->max_diff = 0;
    for (int i = 0; i < N_THETA; i++) r->max_diff = fmax(r->max_diff, fabs(r->grad[i] - r->fd[i]));
    print_grad_pair("dL/dU", r->grad, r->fd, D, H);
    print_grad_pair("dL/dW", r->grad + N_U, r->fd + N_U, H, H);
    print_grad_pair("dL/dV", r->grad + N_U + N_W, r->fd + N_U + N_W, H, K);
    printf("largest |backward - central difference| = %.3g (eps %g)\n", r->max_diff, eps);
}

/* --grad-report, --print-tape, --dot. 1, or 0 if the DOT file failed. */
static int show_step(const cli_common *c, const model *m, const unrolled *u, const ur_tape *tape) {
    if (c->grad_report) {
        printf("\n");
        cli_grad_report_params(m->ps, stdout);
        printf("  %-6s %12s\n", "t", "||dL/dh_t||");
        for (int s = 1; s <= T; s++) printf("  %-6d %12.4e\n", s, norm2(ur_node_grad(u->h[s]), H));
    }
    if (c->print_tape) {
        printf("\nthe tape (%d nodes):\n", ur_tape_size(tape));
        ur_tape_print(tape, stdout);
    }
    return !c->dot || cli_write_dot(tape, c->dot) == 0;
}

static void print_json(const results *r, long steps, double final_loss) {
    cli_json j;
    cli_json_begin(&j);
    cli_json_matrix(&j, "h", r->h, T, H);
    cli_json_matrix(&j, "yhat", r->yhat, T, K);
    cli_json_array(&j, "step_losses", r->step_losses, T);
    cli_json_num(&j, "loss", r->loss);
    cli_json_matrix(&j, "grad_U", r->grad, D, H);
    cli_json_matrix(&j, "grad_W", r->grad + N_U, H, H);
    cli_json_matrix(&j, "grad_V", r->grad + N_U + N_W, H, K);
    cli_json_matrix(&j, "fd_U", r->fd, D, H);
    cli_json_matrix(&j, "fd_W", r->fd + N_U, H, H);
    cli_json_matrix(&j, "fd_V", r->fd + N_U + N_W, H, K);
    cli_json_num(&j, "max_abs_diff", r->max_diff);
    cli_json_int(&j, "steps", steps);
    cli_json_num(&j, "final_loss", final_loss);
    cli_json_end(&j);
}

/* ---- the program ---- */
int main(int argc, char **argv) {
    cli_common c;
    cli_common_defaults(&c);
    double lr = 0.1, eps = 1e-6;
    cli_opt opts[] = {
        CLI_COMMON_OPTS(c),
        CLI_REAL("--lr", &lr, 0, 10, "SGD learning rate of --steps (default 0.1)"),
        CLI_REAL("--eps", &eps, 1e-12, 1, "finite-difference step (default 1e-6)"),
    };
    int r = cli_parse(argc, argv, "worked_example: the lecture's hand-worked ReLU RNN tagger, checked by finite differences",
                      opts, (int)(sizeof opts / sizeof opts[0]));
    if (r) return r > 0 ? 0 : 2;
    cli_apply_common(&c);

    /* ---- the lecture's weights (or a checkpoint's) ---- */
    model m = {0};
    ur_tape *tape = cli_tape_new(&c);
    int ok = tape && model_init(&m, c.load);
    if (!ok) fprintf(stderr, "worked_example: setup failed: %s\n", ur_last_error());

    /* ---- forward and backward once, checked against finite differences ---- */
    unrolled u;
    results res = {.loss = NAN};
    if (ok) {
        forward(tape, &m, &u);
        if (ur_tape_error(tape) || ur_backward(tape, u.loss) != UR_OK) {
            fprintf(stderr, "worked_example: %s\n", ur_tape_error(tape) ? ur_tape_errmsg(tape) : ur_last_error());
            ok = 0;
        }
    }
    if (ok) {
        print_forward(&u, &res);
        check_gradients(&m, eps, &res);
        ok = show_step(&c, &m, &u, tape);
    }

    /* ---- optional: a few steps of plain SGD on this one sentence ---- */
    double final_loss = res.loss, started = cli_now();
    for (long step = 1; ok && step <= c.steps; step++) {
        for (int p = 0; p < ur_paramset_count(m.ps); p++) { /* w -= lr * dL/dw */
            ur_param *q = ur_paramset_get(m.ps, p);
            for (size_t e = 0; e < q->value.size; e++) q->value.data[e] -= (ur_real)lr * q->grad.data[e];
        }
        ur_paramset_zero_grad(m.ps);
        ur_tape_reset(tape);
        forward(tape, &m, &u);
        if (ur_tape_error(tape) || ur_backward(tape, u.loss) != UR_OK) {
            fprintf(stderr, "worked_example: %s\n", ur_tape_error(tape) ? ur_tape_errmsg(tape) : ur_last_error());
            ok = 0;
        }
        final_loss = ur_node_item(u.loss);
        cli_progress(step, c.steps, final_loss, T * step / (cli_now() - started + 1e-9), started);
    }
    cli_progress_end();
    if (ok && c.steps > 0) printf("\nloss after %ld SGD steps (lr %g): %.6f\n", c.steps, lr, final_loss);

    if (ok && c.save && ur_ckpt_save(c.save, m.ps, NULL, 0, NULL) != UR_OK) {
        fprintf(stderr, "worked_example: --save %s: %s\n", c.save, ur_last_error());
        ok = 0;
    }
    if (ok && c.json) print_json(&res, c.steps, final_loss);

    ur_paramset_free(m.ps);
    ur_tape_free(tape);
    ur_kernel_free_buffers();
    return ok ? 0 : 1;
}
