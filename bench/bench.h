/* bench.h - what a workload of unroll-bench sees: the timing loop and the report.
 *
 * A workload is a function that runs one training (or kernel) loop through
 * bench_timed and records its figures with bench_report_*; bench_main.c lists
 * every workload in one table, by the name torch_ref.py gives it (--only uses
 * those names). Workloads live in files of their own (bench_matmul.c, ...).
 */
#ifndef UR_BENCH_H
#define UR_BENCH_H

#include <stddef.h>

/* The two sections of the JSON object, as in torch_ref.py. */
typedef enum bench_section { BENCH_TOKENS_PER_S, BENCH_OTHER } bench_section;

typedef struct bench_report bench_report;

/* Records "key": value (a number) or "key": json (an object or any JSON value). */
void bench_report_number(bench_report *r, bench_section s, const char *key, double value);
void bench_report_json(bench_report *r, bench_section s, const char *key, const char *json);

/* Units per second of step(ctx), which does some work and returns how many units
 * (tokens, trees, flops) it did: 3 warm-up calls, then the median of 3 windows of
 * at least `seconds` each. Same procedure as torch_ref.py. */
double bench_timed(double (*step)(void *ctx), void *ctx, double seconds);

/* A new tape in the precision of this run (--precision f32|bf16: the tape's
 * matrix products, ur_tape_set_precision); the program stops if it cannot be made. */
struct ur_tape;
struct ur_tape *bench_tape_new(void);

/* One entry of the workload table. by_default: run when --only is not given. */
typedef struct bench_workload {
    const char *name;
    int by_default;
    void (*run)(bench_report *r, double seconds);
} bench_workload;

/* ---- workloads (one group per file) ---- */
void bench_matmul_64(bench_report *r, double seconds);   /* bench_matmul.c */
void bench_matmul_256(bench_report *r, double seconds);
void bench_matmul_1024(bench_report *r, double seconds);
void bench_matmul_rnn(bench_report *r, double seconds); /* the GEMM shapes of RNN steps */
void bench_matmul_bf16_256(bench_report *r, double seconds); /* bench_bf16.c: bf16 vs f32 */
void bench_matmul_bf16_1024(bench_report *r, double seconds);
void bench_charlm_rnn(bench_report *r, double seconds);   /* bench_rnn.c */
void bench_charlm_gru(bench_report *r, double seconds);
void bench_charlm_lstm(bench_report *r, double seconds);
void bench_charlm_b1_rnn(bench_report *r, double seconds);
void bench_charlm_b1_gru(bench_report *r, double seconds);
void bench_charlm_b1_lstm(bench_report *r, double seconds);
void bench_medium_rnn(bench_report *r, double seconds);
void bench_medium_gru(bench_report *r, double seconds);
void bench_medium_lstm(bench_report *r, double seconds);
void bench_large_rnn(bench_report *r, double seconds);
void bench_large_gru(bench_report *r, double seconds);
void bench_large_lstm(bench_report *r, double seconds);
void bench_bilstm_tagger(bench_report *r, double seconds);
void bench_charlm_lstm_primitives(bench_report *r, double seconds);
void bench_charlm_peephole(bench_report *r, double seconds); /* the peephole LSTM cell through ur_rnn */
void bench_charlm_mgu(bench_report *r, double seconds);      /* the MGU cell through ur_rnn */
void bench_tree_rnn(bench_report *r, double seconds);     /* bench_tree.c */
void bench_tree_batching(bench_report *r, double seconds); /* bench_tree.c: ur_treenet, batched or not */
void bench_expr_lstm_gates(bench_report *r, double seconds); /* bench_expr.c: gate math fused/expr/primitives */

/* --determinism (bench_rnn.c): trains each LSTM config (and medium GRU and Elman)
 * `steps` steps on 1 and on 2 threads and prints whether every parameter and the
 * loss came out bit for bit the same; nonzero when one did not. */
int bench_determinism(int steps);

#endif
