/* The teaching examples, run as programs: hello_rnn learns "ello", worked_example
 * reproduces the lecture's hand computation (checked here against an independent
 * plain-double forward and backward pass), vanishing shows the 0.9 I RNN forgetting.
 * Each binary runs with --json; the last line of its stdout is parsed. A nonzero exit
 * (a failed run, or a leak under the sanitizer build) fails the test. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#define BIN UR_BINARY_DIR "/bin/"

/* Runs `BIN prog args` (a flag error): it must exit with 2 and print exactly `message`
 * and a newline, nothing else. */
static void expect_flag_error(const char *prog, const char *args, const char *message) {
    char cmd[1024], want[512];
    snprintf(cmd, sizeof cmd, BIN "%s %s", prog, args);
    snprintf(want, sizeof want, "%s\n", message);
    ur_test_result r = ur_test_run(cmd, 1);
    cr_expect_eq(r.code, 2, "'%s' exited with %d", cmd, r.code);
    cr_expect_str_eq(r.out, want, "'%s'", cmd);
    free(r.out);
}

/* Runs cmd (stderr discarded), which must exit with 0; returns its stdout. */
static char *run_ok(const char *cmd) {
    ur_test_result r = ur_test_run(cmd, 0);
    cr_assert_eq(r.code, 0, "'%s' exited with %d", cmd, r.code);
    return r.out;
}

/* ---- hello_rnn ---- */

Test(hello_rnn, learns_ello_and_reports_40_parameters) {
    char dot[512];
    ur_test_tmp_path("hello.dot", dot, sizeof dot);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, BIN "hello_rnn --threads 1 --json --dot %s", dot);
    char *out = run_ok(cmd);
    cr_expect(strstr(out, "33 weights") && strstr(out, "7 biases") && strstr(out, "40 in all"));
    cr_expect(strstr(out, "tanh") != NULL, "the tape is printed");
    char *line = ur_test_last_line(out), pred[16];
    ur_test_json_string(line, "predicted", pred, sizeof pred);
    cr_expect_str_eq(pred, "ello");
    cr_expect_eq(ur_test_json_number(line, "params"), 40);
    double loss = ur_test_json_number(line, "loss"), steps = ur_test_json_number(line, "steps_to_converge");
    cr_expect(loss < 0.05, "loss %g", loss);
    cr_expect(steps >= 1 && steps <= ur_test_json_number(line, "steps"), "steps_to_converge %g", steps);
    double sl[8];
    cr_expect_eq(ur_test_json_array(line, "step_losses", sl, 8), 4);
    cr_expect_float_eq((sl[0] + sl[1] + sl[2] + sl[3]) / 4, loss, 1e-4);
    free(out);

    char *d = ur_test_read_file(dot, NULL);
    cr_assert_not_null(d, "--dot wrote nothing");
    cr_expect(!strncmp(d, "digraph", 7));
    cr_expect(strstr(d, "label=\"t=1\"") && strstr(d, "label=\"t=4\""), "one cluster per time step");
    free(d);
    remove(dot);
}

Test(hello_rnn, save_then_load_predicts_at_once) {
    char ck[512], cmd[1200];
    ur_test_tmp_path("hello.safetensors", ck, sizeof ck);
    snprintf(cmd, sizeof cmd, BIN "hello_rnn --threads 1 --save %s >/dev/null", ck);
    free(run_ok(cmd));
    snprintf(cmd, sizeof cmd, BIN "hello_rnn --threads 1 --json --load %s", ck);
    char *out = run_ok(cmd);
    char *line = ur_test_last_line(out), pred[16];
    ur_test_json_string(line, "predicted", pred, sizeof pred);
    cr_expect_str_eq(pred, "ello");
    cr_expect_eq(ur_test_json_number(line, "steps_to_converge"), 1);
    free(out);
    remove(ck);
}

/* ---- worked_example: the lecture's numbers, computed here independently ---- */

enum { D = 3, H = 2, K = 4, T = 3 };
static const double X[T][D] = {{1, 0, 0}, {1, 1, 2}, {1, -1, 1}};
static const int TAG[T] = {0, 1, 3};
static const double U[D][H] = {{1, 1}, {2, 0}, {0.5, 1}};
static const double W[H][H] = {{0, 1}, {1, 0}};
static const double V[H][K] = {{0, 1, 0, 0}, {1, 0, 1.0 / 3, 1}};

typedef struct hand {
    double a[T][H], h[T + 1][H], p[T][K], step_loss[T], loss;
    double dU[D][H], dW[H][H], dV[H][K];
} hand;

/* Forward and backward through time by hand, in double. */
static void hand_compute(hand *r) {
    memset(r, 0, sizeof *r);
    for (int t = 0; t < T; t++) {
        for (int j = 0; j < H; j++) {
            double a = 0;
            for (int i = 0; i < D; i++) a += X[t][i] * U[i][j];
            for (int i = 0; i < H; i++) a += r->h[t][i] * W[i][j];
            r->a[t][j] = a;
            r->h[t + 1][j] = a > 0 ? a : 0;
        }
        double z[K], sum = 0;
        for (int k = 0; k < K; k++) {
            z[k] = r->h[t + 1][0] * V[0][k] + r->h[t + 1][1] * V[1][k];
            sum += exp(z[k]);
        }
        for (int k = 0; k < K; k++) r->p[t][k] = exp(z[k]) / sum;
        r->step_loss[t] = -log(r->p[t][TAG[t]]);
        r->loss += r->step_loss[t] / T;
    }
    double da_next[H] = {0};
    for (int t = T - 1; t >= 0; t--) {
        double dz[K], dh[H], da[H];
        for (int k = 0; k < K; k++) dz[k] = (r->p[t][k] - (k == TAG[t])) / T;
        for (int j = 0; j < H; j++) {
            dh[j] = 0;
            for (int k = 0; k < K; k++) {
                dh[j] += dz[k] * V[j][k];
                r->dV[j][k] += r->h[t + 1][j] * dz[k];
            }
            for (int i = 0; i < H; i++) dh[j] += da_next[i] * W[j][i]; /* from a_{t+1} = ... + h_t W */
        }
        for (int j = 0; j < H; j++) da[j] = r->a[t][j] > 0 ? dh[j] : 0;
        for (int j = 0; j < H; j++) {
            for (int i = 0; i < D; i++) r->dU[i][j] += X[t][i] * da[j];
            for (int i = 0; i < H; i++) r->dW[i][j] += r->h[t][i] * da[j];
        }
        memcpy(da_next, da, sizeof da);
    }
}

static void expect_close(const double *got, const double *want, int n, double tol, const char *what) {
    for (int i = 0; i < n; i++)
        cr_expect(fabs(got[i] - want[i]) <= tol, "%s[%d]: got %.9g, expected %.9g", what, i, got[i], want[i]);
}

Test(worked_example, matches_the_hand_computation) {
    hand r;
    hand_compute(&r);
    /* the lecture's hidden states, by hand */
    const double h_lecture[T][H] = {{1, 1}, {5, 4}, {3.5, 7}};
    expect_close(&r.h[1][0], &h_lecture[0][0], T * H, 1e-12, "hand h");

    char *out = run_ok(BIN "worked_example --threads 1 --json");
    const char *line = ur_test_last_line(out);
    double v[64];
    cr_assert_eq(ur_test_json_array(line, "h", v, 64), T * H);
    expect_close(v, &h_lecture[0][0], T * H, 1e-5, "h");
    cr_assert_eq(ur_test_json_array(line, "yhat", v, 64), T * K);
    expect_close(v, &r.p[0][0], T * K, 1e-5, "yhat");
    cr_assert_eq(ur_test_json_array(line, "step_losses", v, 64), T);
    expect_close(v, r.step_loss, T, 1e-5, "step_losses");
    cr_expect(fabs(ur_test_json_number(line, "loss") - r.loss) <= 1e-5, "loss %g vs %g", ur_test_json_number(line, "loss"), r.loss);

    struct {
        const char *tape, *fd;
        const double *want;
        int n;
    } g[3] = {{"grad_U", "fd_U", &r.dU[0][0], D * H}, {"grad_W", "fd_W", &r.dW[0][0], H * H},
              {"grad_V", "fd_V", &r.dV[0][0], H * K}};
    for (int i = 0; i < 3; i++) {
        double tape[16], fd[16];
        cr_assert_eq(ur_test_json_array(line, g[i].tape, tape, 16), g[i].n);
        cr_assert_eq(ur_test_json_array(line, g[i].fd, fd, 16), g[i].n);
        expect_close(tape, g[i].want, g[i].n, 1e-5, g[i].tape); /* backward = hand BPTT */
        expect_close(tape, fd, g[i].n, 1e-4, g[i].fd);         /* backward = finite differences */
    }
    /* the gradients are not trivially zero: W gets some, through h1 and h2 */
    cr_expect(fabs(r.dW[0][0]) + fabs(r.dW[1][1]) > 1e-3);
    free(out);
}

/* ---- vanishing ---- */

Test(vanishing, rnn_0_9_forgets_and_files_are_written) {
    char csv[512], svg[512], cmd[1400];
    ur_test_tmp_path("vanishing.csv", csv, sizeof csv);
    ur_test_tmp_path("vanishing.svg", svg, sizeof svg);
    snprintf(cmd, sizeof cmd, BIN "vanishing --threads 1 --json --csv %s --svg %s", csv, svg);
    char *out = run_ok(cmd);
    const char *line = ur_test_last_line(out);
    cr_expect_eq(ur_test_json_number(line, "T"), 50);
    double r09 = ur_test_json_number(line, "ratio_rnn_0.9"), r11 = ur_test_json_number(line, "ratio_rnn_1.1");
    cr_expect(r09 < 1.0 / 100, "0.9 I: ||dL/dh_1|| / ||dL/dh_50|| = %g, expected < 0.01", r09);
    cr_expect(r09 > 0, "0.9 I: the gradient must still reach h_1");
    cr_expect(r11 > 0.1, "1.1 I: ratio %g should be far from vanishing", r11);
    cr_expect(r11 > 100 * r09, "1.1 I (%g) vs 0.9 I (%g)", r11, r09);
    double norms[64];
    cr_expect_eq(ur_test_json_array(line, "norms_rnn_0.9", norms, 64), 50);
    for (int t = 1; t < 50; t++) cr_expect(norms[t - 1] < norms[t], "0.9 I: norm must shrink going back (t=%d)", t);
    const double r_gru = ur_test_json_number(line, "ratio_gru"), r_lstm = ur_test_json_number(line, "ratio_lstm");
    cr_expect(isfinite(r_gru) && r_gru > 0, "gru ratio %g", r_gru);
    cr_expect(isfinite(r_lstm) && r_lstm > 0, "lstm ratio %g", r_lstm);
    /* IRNN: W_hh = I, so going back a step only zeroes the units relu switched off;
     * the norm never grows, and it does not shrink by a constant factor either */
    cr_expect_eq(ur_test_json_array(line, "norms_irnn", norms, 64), 50);
    for (int t = 1; t < 50; t++)
        cr_expect(norms[t - 1] <= norms[t] * (1 + 1e-6), "irnn: the norm grew going back (t=%d)", t);
    const double r_irnn = ur_test_json_number(line, "ratio_irnn");
    cr_expect(r_irnn > 10 * r09 && r_irnn <= 1, "irnn ratio %g (0.9 I: %g)", r_irnn, r09);
    free(out);

    /* CSV: header, then 50 rows t,v1..v6 with t = 1..50 and positive values */
    char *s = ur_test_read_file(csv, NULL);
    cr_assert_not_null(s, "--csv wrote nothing");
    cr_expect(!strncmp(s, "t,rnn_0.9,rnn_1.1,gru,lstm", 26), "header: %.40s", s);
    char *p = strchr(s, '\n');
    cr_assert_not_null(p);
    int rows = 0;
    for (p++; *p; rows++) {
        char *end;
        long t = strtol(p, &end, 10);
        cr_expect_eq(t, rows + 1);
        p = end;
        int fields = 0;
        while (*p == ',') {
            double v = strtod(p + 1, &end);
            cr_expect(end != p + 1 && v > 0 && isfinite(v), "row %d field %d", rows + 1, fields + 1);
            p = end;
            fields++;
        }
        cr_expect_eq(fields, 6, "row %d has %d values", rows + 1, fields);
        cr_assert_eq(*p, '\n', "row %d: junk", rows + 1);
        p++;
    }
    cr_expect_eq(rows, 50);
    free(s);

    /* SVG: one document with six curves, axis labels and a legend */
    s = ur_test_read_file(svg, NULL);
    cr_assert_not_null(s, "--svg wrote nothing");
    cr_expect(!strncmp(s, "<svg", 4));
    size_t n = strlen(s);
    cr_expect(n > 7 && !strcmp(s + n - 7, "</svg>\n"));
    int lines = 0;
    for (const char *q = s; (q = strstr(q, "<polyline")); q++) lines++;
    cr_expect_eq(lines, 6);
    cr_expect(strstr(s, "time step t") && strstr(s, "||dL/dh_t||") && strstr(s, ">rnn_0.9<") && strstr(s, ">lstm<"));
    int open = 0, close = 0;
    for (const char *q = s; *q; q++) open += *q == '<', close += *q == '>';
    cr_expect_eq(open, close, "unbalanced tags");
    free(s);
    remove(csv);
    remove(svg);
}

/* ---- flags ---- */

Test(teaching, flag_errors_name_the_flag) {
    expect_flag_error("hello_rnn", "--lr -1", "hello_rnn: --lr must be a number in [0, 10], got \"-1\"");
    expect_flag_error("hello_rnn", "--steps -3", "hello_rnn: --steps must be an integer in 0..1000000000, got \"-3\"");
    expect_flag_error("hello_rnn", "--threads -2", "hello_rnn: --threads must be an integer in 0..1024, got \"-2\"");
    expect_flag_error("vanishing", "--T 1", "vanishing: --T must be an integer in 2..1000, got \"1\"");
    expect_flag_error("vanishing", "--lr", "vanishing: --lr needs a value (a number in [0, 10])");
    expect_flag_error("vanishing", "--model rnn", "vanishing: --model must be one of rnn_0.9, rnn_1.1, gru, lstm, "
                                                  "rnn_orth, irnn, got \"rnn\"");
    expect_flag_error("worked_example", "--steps 1.5",
                      "worked_example: --steps must be an integer in 0..1000000000, got \"1.5\"");
    expect_flag_error("worked_example", "--eps 0", "worked_example: --eps must be a number in [1e-12, 1], got \"0\"");
    expect_flag_error("worked_example", "--threads x",
                      "worked_example: --threads must be an integer in 0..1024, got \"x\"");
    expect_flag_error("unroll-gradcheck", "--tol 2", "unroll-gradcheck: --tol must be a number in [0, 1], got \"2\"");
    expect_flag_error("unroll-gradcheck", "--only", "unroll-gradcheck: --only needs a value (a text)");
    expect_flag_error("unroll-gradcheck", "--verbose", "unroll-gradcheck: unknown flag '--verbose' (see --help)");
}
