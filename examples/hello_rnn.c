/* hello_rnn - the lecture's first recurrent net: it learns to continue "hell" as "ello".
 *
 * Vocabulary {h, e, l, o}. Each input character is a one-hot row x_t (1, 4). An Elman
 * RNN with hidden size 3 reads "hell" and, at every step, scores the next character:
 *
 *     h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h)    x_t (1,4)  W_xh (4,3)  W_hh (3,3)  h_0 = 0
 *     y_t = h_t W_hy + b_y                         W_hy (3,4)  y_t (1,4): scores of h,e,l,o
 *     L   = (1/4) sum_t cross_entropy(y_t, target_t)       targets "ello"
 *
 * 33 weights and 7 biases. The two l's of "hell" need different answers (l, then o),
 * so the net cannot map characters to characters: it must remember what came before,
 * and that memory is h. The program builds the four time steps from primitive ops on
 * a tape (each step a cluster "t=1".."t=4" in --dot), and backward through the tape
 * is backpropagation through time: W_hh is one node with four consumers, and its
 * gradient is the sum of the four contributions.
 *
 *   hello_rnn                  train, print the tape, the step losses, the prediction
 *   hello_rnn --dot hello.dot  also write the unrolled graph (dot -Tsvg hello.dot)
 *   hello_rnn --grad-report    gradient norms of every parameter and of each h_t
 *   hello_rnn --bptt-sum       at the starting weights: dL/dW_hh as the sum of one
 *                              contribution per time step (see bptt_sum), then exit
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "unroll.h"
#include "ur_checkpoint.h"
#include "ur_init.h"
#include "ur_optim.h"

enum { V = 4, H = 3, T = 4 };
static const char VOCAB[] = "helo";

static int char_id(char c) { return (int)(strchr(VOCAB, c) - VOCAB); }

/* The parameters: one paramset, named pointers into it. */
typedef struct model {
    ur_paramset *ps;
    ur_param *W_xh, *W_hh, *b_h, *W_hy, *b_y;
    /* The recurrent weight used at step t+1: W_hh at every step (tied), unless
     * bptt_sum gives each step its own copy. */
    ur_param *W_hh_at[T];
} model;

static ur_status model_init(model *m, ur_rng *rng) {
    m->ps = ur_paramset_new();
    if (!m->ps) return UR_ERR_NOMEM;
    m->W_xh = ur_paramset_add(m->ps, "W_xh", 2, (int[]){V, H});
    m->W_hh = ur_paramset_add(m->ps, "W_hh", 2, (int[]){H, H});
    m->b_h = ur_paramset_add(m->ps, "b_h", 1, (int[]){H});
    m->W_hy = ur_paramset_add(m->ps, "W_hy", 2, (int[]){H, V});
    m->b_y = ur_paramset_add(m->ps, "b_y", 1, (int[]){V});
    if (!m->W_xh || !m->W_hh || !m->b_h || !m->W_hy || !m->b_y) return UR_ERR_NOMEM;
    for (int s = 0; s < T; s++) m->W_hh_at[s] = m->W_hh;
    /* Biases start at zero (ur_paramset_add zero-fills). */
    ur_init_xavier_uniform(&m->W_xh->value, rng, 1.0);
    ur_init_xavier_uniform(&m->W_hh->value, rng, 1.0);
    return ur_init_xavier_uniform(&m->W_hy->value, rng, 1.0);
}

/* The nodes of one unrolled pass, kept so we can read values and gradients. */
typedef struct unrolled {
    ur_node *h[T + 1];     /* h[0] = 0, h[t] (1,H) */
    ur_node *y[T];         /* scores (1,V) of step t+1 */
    ur_node *step_loss[T]; /* cross-entropy of step t+1 */
    ur_node *loss;         /* mean over the steps */
} unrolled;

/* Builds the four time steps on the tape; returns the loss node (NULL on error). */
static ur_node *forward(ur_tape *t, model *m, const char *input, const char *target, unrolled *u) {
    /* Each parameter is one node, made once, outside the time-step clusters: the four
     * W_hh[s] are one and the same node, unless the steps were given copies. */
    ur_node *W_xh = ur_param_node(t, m->W_xh), *W_hh[T];
    for (int s = 0; s < T; s++) W_hh[s] = ur_param_node(t, m->W_hh_at[s]);
    ur_node *b_h = ur_param_node(t, m->b_h), *W_hy = ur_param_node(t, m->W_hy);
    ur_node *b_y = ur_param_node(t, m->b_y);
    u->h[0] = ur_zeros(t, 2, (int[]){1, H});
    ur_node_set_label(t, u->h[0], "h0");
    ur_node *sum = NULL;
    char label[32];
    for (int s = 0; s < T; s++) {
        snprintf(label, sizeof label, "t=%d", s + 1);
        ur_tape_begin_group(t, label);
        ur_real onehot[V] = {0};
        onehot[char_id(input[s])] = 1;
        ur_node *x = ur_input_data(t, 2, (int[]){1, V}, onehot);
        snprintf(label, sizeof label, "x%d '%c'", s + 1, input[s]);
        ur_node_set_label(t, x, label);

        /* h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h) */
        ur_node *a = ur_add(t, ur_add(t, ur_matmul(t, x, W_xh, 0, 0), ur_matmul(t, u->h[s], W_hh[s], 0, 0)), b_h);
        u->h[s + 1] = ur_tanh(t, a);
        snprintf(label, sizeof label, "h%d", s + 1);
        ur_node_set_label(t, u->h[s + 1], label);

        /* y_t = h_t W_hy + b_y, and its loss against the next character */
        u->y[s] = ur_add(t, ur_matmul(t, u->h[s + 1], W_hy, 0, 0), b_y);
        int target_id = char_id(target[s]);
        u->step_loss[s] = ur_cross_entropy(t, u->y[s], &target_id, NULL);
        snprintf(label, sizeof label, "L%d '%c'", s + 1, target[s]);
        ur_node_set_label(t, u->step_loss[s], label);
        sum = sum ? ur_add(t, sum, u->step_loss[s]) : u->step_loss[s];
        ur_tape_end_group(t);
    }
    u->loss = ur_scale(t, sum, (ur_real)1.0 / T);
    ur_node_set_label(t, u->loss, "L");
    return u->loss;
}

/* The most likely next character at every step. */
static void predict(const unrolled *u, char out[T + 1]) {
    for (int s = 0; s < T; s++) {
        const ur_real *y = ur_node_cdata(u->y[s]);
        int best = 0;
        for (int k = 1; k < V; k++)
            if (y[k] > y[best]) best = k;
        out[s] = VOCAB[best];
    }
    out[T] = '\0';
}

static double norm2(const ur_real *v, size_t n) {
    double s = 0;
    for (size_t i = 0; v && i < n; i++) s += (double)v[i] * v[i];
    return sqrt(s);
}

/* After backward: how large is the gradient of each parameter, and of each h_t? */
static void grad_report(const model *m, const unrolled *u) {
    cli_grad_report_params(m->ps, stdout);
    printf("  %-6s %12s\n", "t", "||dL/dh_t||");
    for (int s = 1; s <= T; s++) printf("  %-6d %12.4e\n", s, norm2(ur_node_grad(u->h[s]), H));
}

/* One forward and backward pass; 1 on success (message on stderr otherwise). */
static int forward_backward(ur_tape *t, model *m, const char *input, const char *target, unrolled *u) {
    ur_tape_reset(t);
    ur_paramset_zero_grad(m->ps);
    forward(t, m, input, target, u);
    if (ur_tape_error(t) || ur_backward(t, u->loss) != UR_OK) {
        fprintf(stderr, "hello_rnn: %s\n", ur_tape_error(t) ? ur_tape_errmsg(t) : ur_last_error());
        return 0;
    }
    return 1;
}

static void print_matrix_row(const char *label, const ur_real *w, int row) {
    printf("  %-14s [%10.6f %10.6f %10.6f ]\n", label, w[row * H], w[row * H + 1], w[row * H + 2]);
}

/* --bptt-sum: why the gradient of a tied weight is the sum over its unrolled copies.
 * First the usual pass, W_hh tied: one node, four consumers, one gradient. Then the
 * same pass with W_hh untied: step t multiplies h_{t-1} by its own parameter W_hh@t,
 * a copy with the same values. The loss is the same number; each copy's gradient is
 * the contribution of step t alone, and the four add up to the tied gradient. Step 1
 * contributes exactly zero: it multiplies h_0 = 0. */
static int bptt_sum(ur_tape *t, model *m, const char *input, const char *target) {
    unrolled u;
    ur_real tied[H * H], sum[H * H] = {0};
    if (!forward_backward(t, m, input, target, &u)) return 0;
    double tied_loss = ur_node_item(u.loss);
    memcpy(tied, m->W_hh->grad.data, sizeof tied);

    ur_paramset *copies = ur_paramset_new();
    int ok = copies != NULL;
    for (int s = 0; ok && s < T; s++) {
        char name[16];
        snprintf(name, sizeof name, "W_hh@t%d", s + 1);
        m->W_hh_at[s] = ur_paramset_add(copies, name, 2, (int[]){H, H});
        ok = m->W_hh_at[s] && ur_tensor_copy(&m->W_hh_at[s]->value, &m->W_hh->value) == UR_OK;
    }
    if (!ok) fprintf(stderr, "hello_rnn: %s\n", ur_last_error());
    ok = ok && forward_backward(t, m, input, target, &u);
    if (ok) {
        printf("dL/dW_hh at the starting weights; step t's own copy W_hh@t gives its contribution\n");
        printf("loss with W_hh tied %.6f, with one copy per step %.6f\n", tied_loss, ur_node_item(u.loss));
        for (int s = 0; s < T; s++) { /* the contribution of step s+1: h_s^T (dL/da_{s+1}) */
            const ur_real *g = m->W_hh_at[s]->grad.data;
            char label[32];
            for (int r = 0; r < H; r++) {
                snprintf(label, sizeof label, r == 0 ? "step %d" : "", s + 1);
                print_matrix_row(label, g, r);
            }
        }
        /* added in the order backward visits the steps, 4 to 1, as the tape does */
        for (int s = T - 1; s >= 0; s--)
            for (int e = 0; e < H * H; e++) sum[e] += m->W_hh_at[s]->grad.data[e];
        for (int r = 0; r < H; r++) print_matrix_row(r == 0 ? "sum of steps" : "", sum, r);
        for (int r = 0; r < H; r++) print_matrix_row(r == 0 ? "tape, tied" : "", tied, r);
        double diff = 0;
        for (int e = 0; e < H * H; e++) diff = fmax(diff, fabs((double)sum[e] - tied[e]));
        printf("largest |sum of steps - tape| = %.1e\n", diff);
    }
    for (int s = 0; s < T; s++) m->W_hh_at[s] = m->W_hh;
    ur_paramset_free(copies);
    return ok;
}

static int load_checkpoint(const char *path, model *m, ur_optim *opt) {
    ur_ckpt *ck = ur_ckpt_open(path);
    ur_status st = ck ? ur_ckpt_read_params(ck, m->ps, 0) : UR_ERR_IO;
    if (st == UR_OK && ur_ckpt_meta(ck, "optim.kind")) st = ur_ckpt_read_optim(ck, opt);
    ur_ckpt_close(ck);
    if (st != UR_OK) fprintf(stderr, "hello_rnn: --load %s: %s\n", path, ur_last_error());
    return st == UR_OK;
}

int main(int argc, char **argv) {
    cli_common c;
    cli_common_defaults(&c);
    double lr = 0.1, target_loss = 0.05;
    int bptt_sum_only = 0;
    const char *input = "hell", *target = "ello";
    cli_opt opts[] = {
        CLI_COMMON_OPTS(c),
        CLI_REAL("--lr", &lr, 0, 10, "Adagrad learning rate (default 0.1)"),
        CLI_REAL("--target-loss", &target_loss, 0, 100,
                 "stop once it predicts \"ello\" with a loss below this (default 0.05)"),
        CLI_BOOL("--bptt-sum", &bptt_sum_only, "print dL/dW_hh step by step and summed (starting weights), then exit"),
    };
    int r = cli_parse(argc, argv, "hello_rnn: a 3-unit RNN learns \"hell\" -> \"ello\" (the lecture's example)", opts,
                      (int)(sizeof opts / sizeof opts[0]));
    if (r) return r > 0 ? 0 : 2;
    cli_apply_common(&c);
    long max_steps = c.steps > 0 ? c.steps : cli_smoke_limit(2000, 1);

    /* ---- the model and its optimizer ---- */
    ur_rng rng;
    ur_rng_seed(&rng, (uint64_t)c.seed);
    model m = {0};
    ur_optim_config cfg = ur_optim_defaults(UR_OPTIM_ADAGRAD, lr);
    ur_optim *opt = NULL;
    ur_tape *tape = cli_tape_new(&c);
    int ok = tape && model_init(&m, &rng) == UR_OK && (opt = ur_optim_new(m.ps, &cfg)) != NULL;
    if (!ok) fprintf(stderr, "hello_rnn: setup failed: %s\n", ur_last_error());
    if (ok && c.load) ok = load_checkpoint(c.load, &m, opt);
    if (ok && bptt_sum_only) {
        ok = bptt_sum(tape, &m, input, target);
        ur_optim_free(opt);
        ur_paramset_free(m.ps);
        ur_tape_free(tape);
        ur_kernel_free_buffers();
        return ok ? 0 : 1;
    }
    size_t n_params = ur_paramset_numel(m.ps);
    if (ok)
        printf("hello_rnn: vocabulary {h,e,l,o}, hidden size %d\n"
               "parameters: W_xh %dx%d + W_hh %dx%d + W_hy %dx%d = %d weights, b_h %d + b_y %d = %d biases, "
               "%zu in all\n",
               H, V, H, H, H, H, V, V * H + H * H + H * V, H, V, H + V, n_params);

    /* ---- training: one sequence, full BPTT every step ---- */
    unrolled u;
    char predicted[T + 1] = "????";
    long step = 0, converged_at = 0;
    double loss = NAN, started = cli_now();
    for (step = 1; ok && step <= max_steps; step++) {
        ur_tape_reset(tape);
        forward(tape, &m, input, target, &u);
        ur_optim_zero_grad(opt);
        if (ur_tape_error(tape) || ur_backward(tape, u.loss) != UR_OK) {
            fprintf(stderr, "hello_rnn: %s\n", ur_tape_error(tape) ? ur_tape_errmsg(tape) : ur_last_error());
            ok = 0;
            break;
        }
        if (step == 1 && c.grad_report) grad_report(&m, &u);
        loss = ur_node_item(u.loss);
        predict(&u, predicted);
        if (!converged_at && strcmp(predicted, target) == 0) converged_at = step;
        if (step % 10 == 0 || step == max_steps)
            cli_progress(step, max_steps, loss, T * step / (cli_now() - started + 1e-9), started);
        if (converged_at && loss < target_loss) break; /* the tape keeps this last step */
        if (ur_optim_step(opt) != UR_OK) {
            fprintf(stderr, "hello_rnn: %s\n", ur_last_error());
            ok = 0;
        }
    }
    cli_progress_end();
    if (step > max_steps) step = max_steps;

    /* ---- what the last step computed ---- */
    if (ok) {
        printf("\nthe tape of one training step (%d nodes):\n", ur_tape_size(tape));
        ur_tape_print(tape, stdout);
        printf("\nlosses of the last step (%ld):\n", step);
        for (int s = 0; s < T; s++) {
            const ur_real *y = ur_node_cdata(u.y[s]);
            printf("  t=%d  input '%c'  target '%c'  scores [%6.2f %6.2f %6.2f %6.2f]  loss %.4f\n", s + 1, input[s],
                   target[s], y[0], y[1], y[2], y[3], ur_node_item(u.step_loss[s]));
        }
        printf("mean loss %.4f\n", loss);
        printf("input \"%s\" -> predicted \"%s\" (target \"%s\")", input, predicted, target);
        if (converged_at) printf(", first correct at step %ld\n", converged_at);
        else printf(", not yet correct after %ld steps\n", step);
    }
    if (ok && c.dot) {
        ok = cli_write_dot(tape, c.dot) == 0;
        if (ok) printf("wrote the unrolled graph to %s (render: dot -Tsvg %s -o hello.svg)\n", c.dot, c.dot);
    }
    if (ok && c.save) {
        ur_ckpt_kv meta[] = {{"example", "hello_rnn"}, {NULL, NULL}};
        if (ur_ckpt_save_training(c.save, m.ps, opt, meta) != UR_OK) {
            fprintf(stderr, "hello_rnn: --save %s: %s\n", c.save, ur_last_error());
            ok = 0;
        } else printf("saved %s\n", c.save);
    }
    if (ok && c.json) {
        double step_losses[T];
        for (int s = 0; s < T; s++) step_losses[s] = ur_node_item(u.step_loss[s]);
        cli_json j;
        cli_json_begin(&j);
        cli_json_num(&j, "loss", loss);
        cli_json_str(&j, "predicted", predicted);
        cli_json_int(&j, "steps_to_converge", converged_at);
        cli_json_int(&j, "steps", step);
        cli_json_int(&j, "params", (long)n_params);
        cli_json_array(&j, "step_losses", step_losses, T);
        cli_json_end(&j);
    }

    ur_optim_free(opt);
    ur_paramset_free(m.ps);
    ur_tape_free(tape);
    ur_kernel_free_buffers();
    return ok ? 0 : 1;
}
