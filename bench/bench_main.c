/* bench_main.c - unroll-bench: runs the workloads and prints one JSON object in
 * the schema of shared/bench/torch_ref.py, so the two compare key by key.
 *
 *   unroll-bench [--threads N] [--seconds S | --steps N] [--only name,name,...]
 *                [--precision f32|bf16]
 *   unroll-bench --determinism [--precision f32|bf16]
 *
 * --threads: kernel threads (default: all cores). --seconds: length of each of
 * the 3 timed windows (default 2). --steps: each window runs exactly N steps
 * instead: the same work on every run, for timing the whole process from outside
 * (CPU seconds), which a busy machine disturbs less than the rates measured
 * inside. --only: workloads by name (see WORKLOADS). The "isa" key of the output
 * is the kernel path that ran (ur_kernel_isa; UR_KERNELS chooses it).
 * --precision: the matrix products of the training workloads' tapes (bf16:
 * operands rounded to bf16, sums in f32; AVX512-BF16 where the CPU has it, else a
 * slow portable path); the "precision" key says which ran.
 * --determinism: no timing; trains the recurrent configs 3 steps on 1 and on 2
 * threads and checks that the results are bit-identical (exit status 1 if not).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"
#include "ur_kernels.h"
#include "ur_tape.h"

/* Every workload, in the order torch_ref.py prints them. A new group of
 * workloads adds its rows here and its functions to bench.h. */
static const bench_workload WORKLOADS[] = {
    {"charlm-rnn", 1, bench_charlm_rnn},
    {"charlm-gru", 1, bench_charlm_gru},
    {"charlm-lstm", 1, bench_charlm_lstm},
    {"charlm-b1-rnn", 1, bench_charlm_b1_rnn},
    {"charlm-b1-gru", 1, bench_charlm_b1_gru},
    {"charlm-b1-lstm", 1, bench_charlm_b1_lstm},
    {"medium-rnn", 1, bench_medium_rnn},
    {"medium-gru", 1, bench_medium_gru},
    {"medium-lstm", 1, bench_medium_lstm},
    {"large-rnn", 1, bench_large_rnn},
    {"large-gru", 1, bench_large_gru},
    {"large-lstm", 1, bench_large_lstm},
    {"bilstm-tagger-lstm", 1, bench_bilstm_tagger},
    {"charlm-lstm-primitives", 1, bench_charlm_lstm_primitives},
    {"charlm-peephole", 1, bench_charlm_peephole},
    {"charlm-mgu", 1, bench_charlm_mgu},
    {"tree-rnn", 1, bench_tree_rnn},
    {"tree-batching", 1, bench_tree_batching},
    {"matmul-64", 1, bench_matmul_64},
    {"matmul-256", 1, bench_matmul_256},
    {"matmul-1024", 1, bench_matmul_1024},
    {"matmul-rnn", 0, bench_matmul_rnn},
    {"matmul-bf16-256", 0, bench_matmul_bf16_256},
    {"matmul-bf16-1024", 0, bench_matmul_bf16_1024},
    {"expr-lstm-gates", 0, bench_expr_lstm_gates},
};
enum { N_WORKLOADS = sizeof WORKLOADS / sizeof WORKLOADS[0] };

/* ---- the report: key/value pairs per section, printed at the end ---- */

enum { MAX_ENTRIES = 128 };

typedef struct bench_entry {
    bench_section section;
    char key[96];
    char json[256];
} bench_entry;

struct bench_report {
    bench_entry entries[MAX_ENTRIES];
    int n;
};

void bench_report_json(bench_report *r, bench_section s, const char *key, const char *json) {
    if (r->n == MAX_ENTRIES) return;
    bench_entry *e = &r->entries[r->n++];
    e->section = s;
    snprintf(e->key, sizeof e->key, "%s", key);
    snprintf(e->json, sizeof e->json, "%s", json);
}

void bench_report_number(bench_report *r, bench_section s, const char *key, double value) {
    char num[64];
    snprintf(num, sizeof num, "%.2f", value);
    bench_report_json(r, s, key, num);
}

static void print_section(const bench_report *r, bench_section s) {
    const char *sep = "";
    printf("{");
    for (int i = 0; i < r->n; i++) {
        if (r->entries[i].section != s) continue;
        printf("%s\n  \"%s\": %s", sep, r->entries[i].key, r->entries[i].json);
        sep = ",";
    }
    printf("%s}", *sep ? "\n " : "");
}

/* ---- timing ---- */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static long fixed_steps; /* --steps: steps per window (0: run for `seconds`) */

double bench_timed(double (*step)(void *ctx), void *ctx, double seconds) {
    for (int i = 0; i < 3; i++) step(ctx); /* warm-up */
    double rates[3];
    for (int w = 0; w < 3; w++) {
        double done = 0, t0 = now(), dt;
        long steps = 0;
        do {
            done += step(ctx);
            dt = now() - t0;
        } while (fixed_steps ? ++steps < fixed_steps : dt < seconds);
        rates[w] = done / dt;
    }
    qsort(rates, 3, sizeof rates[0], cmp_double);
    return rates[1];
}

static ur_precision precision = UR_PRECISION_F32; /* --precision */

ur_tape *bench_tape_new(void) {
    ur_tape *t = ur_tape_new();
    if (!t || ur_tape_set_precision(t, precision) != UR_OK) {
        fprintf(stderr, "unroll-bench: cannot make a tape: %s\n", ur_last_error());
        exit(1);
    }
    return t;
}

/* ---- main ---- */

static int listed(const char *only, const char *name) {
    size_t len = strlen(name);
    for (const char *p = only; p && *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && strncmp(p, name, n) == 0) return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: unroll-bench [--threads N] [--seconds S | --steps N] [--only NAME,...]\n"
               "                    [--precision f32|bf16]\n"
               "       unroll-bench --determinism [--precision f32|bf16]\n"
               "--precision bf16: matrix products of bf16 operands summed in f32 (AVX512-BF16\n"
               "if the CPU has it, else a slow portable path)\nworkloads:");
    for (int i = 0; i < N_WORKLOADS; i++)
        fprintf(f, " %s%s", WORKLOADS[i].name, WORKLOADS[i].by_default ? "" : " (only on request)");
    fprintf(f, "\n");
}

int main(int argc, char **argv) {
    int threads = 0;
    double seconds = 2.0;
    const char *only = NULL;
    int determinism = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--determinism")) {
            determinism = 1;
        } else if (!strcmp(a, "--threads") && v) {
            threads = atoi(v), i++;
        } else if (!strcmp(a, "--seconds") && v) {
            seconds = atof(v), i++;
        } else if (!strcmp(a, "--steps") && v) {
            fixed_steps = atol(v), i++;
            if (fixed_steps <= 0) {
                fprintf(stderr, "unroll-bench: --steps must be > 0, got '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--precision") && v) {
            if (strcmp(v, "f32") && strcmp(v, "bf16")) {
                fprintf(stderr, "unroll-bench: --precision must be f32 or bf16, got '%s'\n", v);
                return 2;
            }
            precision = strcmp(v, "bf16") ? UR_PRECISION_F32 : UR_PRECISION_BF16, i++;
        } else if (!strcmp(a, "--only") && v) {
            only = v, i++;
        } else {
            fprintf(stderr, "unroll-bench: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (determinism) {
        /* really run 2 threads, even when the machine is busy (see ur_set_num_threads) */
        setenv("UR_GEMM_STALL_GUARD", "0", 1);
        const char *smoke = getenv("UR_SMOKE_STEPS"); /* the testing aid below */
        int bad = bench_determinism(smoke && atoi(smoke) > 0 && atoi(smoke) < 3 ? atoi(smoke) : 3);
        ur_kernel_free_buffers();
        return bad ? 1 : 0;
    }
    if (seconds <= 0) {
        fprintf(stderr, "unroll-bench: --seconds must be > 0\n");
        return 2;
    }
    if (only) { /* every listed name must exist */
        char *copy = strdup(only);
        for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
            int found = 0;
            for (int i = 0; i < N_WORKLOADS; i++) found |= !strcmp(tok, WORKLOADS[i].name);
            if (!found) {
                fprintf(stderr, "unroll-bench: no workload named '%s'\n", tok);
                usage(stderr);
                free(copy);
                return 2;
            }
        }
        free(copy);
    }
    /* UR_SMOKE_STEPS=N, the testing aid of the example programs: windows of at most N
     * steps (and --determinism trains at most N steps) */
    const char *smoke = getenv("UR_SMOKE_STEPS");
    long smoke_n = smoke ? atol(smoke) : 0;
    if (smoke_n > 0 && (fixed_steps == 0 || fixed_steps > smoke_n)) fixed_steps = smoke_n;
    ur_set_num_threads(threads);
    if (ur_kernel_select(NULL) != UR_OK) /* a refused UR_KERNELS: say so, run the best path */
        fprintf(stderr, "unroll-bench: %s\n", ur_last_error());

    static bench_report report;
    for (int i = 0; i < N_WORKLOADS; i++) {
        const bench_workload *w = &WORKLOADS[i];
        if (only ? listed(only, w->name) : w->by_default) w->run(&report, seconds);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    bench_report_number(&report, BENCH_OTHER, "peak_rss_mb", (double)ru.ru_maxrss / 1024.0);

    printf("{\"unroll\": \"%s\", \"threads\": %d, \"isa\": \"%s\", \"precision\": \"%s\",\n"
           " \"tokens_per_s\": ",
           UR_BENCH_VERSION, ur_get_num_threads(), ur_kernel_isa(),
           precision == UR_PRECISION_BF16 ? "bf16" : "f32");
    print_section(&report, BENCH_TOKENS_PER_S);
    printf(",\n \"other\": ");
    print_section(&report, BENCH_OTHER);
    printf("}\n");
    ur_kernel_free_buffers();
    return 0;
}
