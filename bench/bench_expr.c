/* bench_expr.c - the LSTM step's gate math two ways, forward + backward:
 *   expr         ur_expr_lstm applied with ur_expr_apply (derived backward), as the
 *                built-in LSTM runs it
 *   primitives   the same formula from 13 primitive ops (4 slices, 5 activations, ...)
 * Each timed step records T steps of the recurrence c_t = f(gates_t, c_{t-1}) on a
 * tape, loss = sum over t of sum(h_t), and runs backward. The variants are timed in
 * interleaved windows (expr, primitives, expr, ...); the report gives the median
 * rate of each, in million gate elements (B H per step) per second, and their
 * ratio. Workload "expr-lstm-gates" (on request only). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench.h"
#include "unroll.h"

enum { T = 8, WINDOWS = 7, VARIANTS = 2 };

typedef struct gate_bench {
    int B, H, variant;
    ur_paramset *ps;
    ur_param *gates[T], *c0;
    ur_expr *lstm;
    ur_tape *tape;
} gate_bench;

static void die(const char *what) {
    fprintf(stderr, "unroll-bench: expr-lstm-gates: %s: %s\n", what, ur_last_error());
    exit(1);
}

/* one step of the recurrence: h and the new c */
static void lstm_step(gate_bench *g, ur_node *gates, ur_node *c, ur_node **h, ur_node **c_out) {
    ur_tape *t = g->tape;
    int H = g->H;
    if (g->variant == 0) {
        ur_node *out[2];
        ur_expr_apply(t, g->lstm, 2, (ur_node *[]){gates, c}, out);
        *h = out[0], *c_out = out[1];
    } else {
        ur_node *i = ur_sigmoid(t, ur_slice(t, gates, 1, 0, H)), *f = ur_sigmoid(t, ur_slice(t, gates, 1, H, H));
        ur_node *gg = ur_tanh(t, ur_slice(t, gates, 1, 2 * H, H)), *o = ur_sigmoid(t, ur_slice(t, gates, 1, 3 * H, H));
        *c_out = ur_add(t, ur_mul(t, f, c), ur_mul(t, i, gg));
        *h = ur_mul(t, o, ur_tanh(t, *c_out));
    }
}

static void run_once(gate_bench *g) {
    ur_tape_reset(g->tape);
    ur_node *c = ur_param_node(g->tape, g->c0), *loss = NULL, *h;
    for (int s = 0; s < T; s++) {
        lstm_step(g, ur_param_node(g->tape, g->gates[s]), c, &h, &c);
        ur_node *term = ur_sum(g->tape, h);
        loss = loss ? ur_add(g->tape, loss, term) : term;
    }
    if (ur_backward(g->tape, loss) != UR_OK) die(ur_tape_errmsg(g->tape));
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* gate elements per second over one window of at least `seconds` */
static double window(gate_bench *g, double seconds) {
    double t0 = now(), dt;
    long n = 0;
    do {
        run_once(g);
        n++;
        dt = now() - t0;
    } while (dt < seconds);
    return (double)n * T * g->B * g->H / dt;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void one_size(bench_report *r, int B, int H, double seconds) {
    gate_bench g = {B, H, 0, ur_paramset_new(), {0}, NULL, ur_expr_lstm(), ur_tape_new()};
    if (!g.ps || !g.lstm || !g.tape) die("setup");
    ur_rng rng;
    ur_rng_seed(&rng, 3);
    char name[16];
    for (int s = 0; s < T; s++) {
        snprintf(name, sizeof name, "gates%d", s);
        if (!(g.gates[s] = ur_paramset_add(g.ps, name, 2, (int[]){B, 4 * H}))) die("parameters");
        ur_tensor_normal(&g.gates[s]->value, &rng, 0, 1);
    }
    if (!(g.c0 = ur_paramset_add(g.ps, "c0", 2, (int[]){B, H}))) die("parameters");
    ur_tensor_normal(&g.c0->value, &rng, 0, 1);
    double rates[VARIANTS][WINDOWS];
    for (int v = 0; v < VARIANTS; v++) { /* warm-up: the arena reaches its size */
        g.variant = v;
        for (int i = 0; i < 3; i++) run_once(&g);
    }
    for (int w = 0; w < WINDOWS; w++)
        for (int v = 0; v < VARIANTS; v++) {
            g.variant = v;
            rates[v][w] = window(&g, seconds / WINDOWS);
        }
    double med[VARIANTS];
    for (int v = 0; v < VARIANTS; v++) {
        qsort(rates[v], WINDOWS, sizeof rates[v][0], cmp_double);
        med[v] = rates[v][WINDOWS / 2] / 1e6;
    }
    char key[64], json[256];
    snprintf(key, sizeof key, "expr-lstm-gates-B%d-H%d", B, H);
    snprintf(json, sizeof json,
             "{\"expr_melem_per_s\": %.1f, \"primitives_melem_per_s\": %.1f, \"expr_vs_primitives\": %.3f}",
             med[0], med[1], med[0] / med[1]);
    bench_report_json(r, BENCH_OTHER, key, json);
    ur_tape_free(g.tape);
    ur_expr_free(g.lstm);
    ur_paramset_free(g.ps);
}

void bench_expr_lstm_gates(bench_report *r, double seconds) {
    static const int sizes[][2] = {{32, 256}, {64, 256}, {32, 512}, {64, 512}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) one_size(r, sizes[i][0], sizes[i][1], seconds);
}
