/* bench_bf16.c - ur_gemm_bf16 against ur_gemm on the same square product
 * (C = A B, n x n), timed alternately in one run: R rounds, each timing the float
 * GEMM and then the bf16 one (bench_timed with seconds / R), medians over the
 * rounds. Keys unroll-matmul-bf16-<n>-{f32-gflops,gflops,speedup,path}. */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "ur_kernels.h"

enum { ROUNDS = 5 };

typedef struct square_gemm {
    int n;
    ur_real *A, *B, *C;
} square_gemm;

static double f32_step(void *ctx) {
    square_gemm *g = ctx;
    ur_gemm(0, 0, g->n, g->n, g->n, 1, g->A, g->n, g->B, g->n, 0, g->C, g->n);
    return 2.0 * g->n * g->n * g->n;
}

static double bf16_step(void *ctx) {
    square_gemm *g = ctx;
    if (ur_gemm_bf16(0, 0, g->n, g->n, g->n, 1, g->A, g->n, g->B, g->n, 0, g->C, g->n) != UR_OK) {
        fprintf(stderr, "unroll-bench: %s\n", ur_last_error());
        exit(1);
    }
    return 2.0 * g->n * g->n * g->n;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void square(bench_report *r, double seconds, int n) {
    square_gemm g = {n, NULL, NULL, NULL};
    size_t nn = (size_t)n * n;
    g.A = malloc(sizeof(ur_real) * nn);
    g.B = malloc(sizeof(ur_real) * nn);
    g.C = malloc(sizeof(ur_real) * nn);
    if (!g.A || !g.B || !g.C) {
        fprintf(stderr, "unroll-bench: out of memory\n");
        exit(1);
    }
    ur_rng rng;
    ur_rng_seed(&rng, 0);
    for (size_t i = 0; i < nn; i++) {
        g.A[i] = (ur_real)ur_rng_normal(&rng);
        g.B[i] = (ur_real)ur_rng_normal(&rng);
    }
    double f32[ROUNDS], bf16[ROUNDS];
    for (int i = 0; i < ROUNDS; i++) {
        f32[i] = bench_timed(f32_step, &g, seconds / ROUNDS) / 1e9;
        bf16[i] = bench_timed(bf16_step, &g, seconds / ROUNDS) / 1e9;
    }
    qsort(f32, ROUNDS, sizeof f32[0], cmp_double);
    qsort(bf16, ROUNDS, sizeof bf16[0], cmp_double);
    char key[96], json[64];
    snprintf(key, sizeof key, "unroll-matmul-bf16-%d-f32-gflops", n);
    bench_report_number(r, BENCH_OTHER, key, f32[ROUNDS / 2]);
    snprintf(key, sizeof key, "unroll-matmul-bf16-%d-gflops", n);
    bench_report_number(r, BENCH_OTHER, key, bf16[ROUNDS / 2]);
    snprintf(key, sizeof key, "unroll-matmul-bf16-%d-speedup", n);
    bench_report_number(r, BENCH_OTHER, key, bf16[ROUNDS / 2] / f32[ROUNDS / 2]);
    snprintf(key, sizeof key, "unroll-matmul-bf16-%d-path", n);
    snprintf(json, sizeof json, "\"%s\"", ur_gemm_bf16_isa());
    bench_report_json(r, BENCH_OTHER, key, json);
    free(g.A);
    free(g.B);
    free(g.C);
}

void bench_matmul_bf16_256(bench_report *r, double seconds) { square(r, seconds, 256); }
void bench_matmul_bf16_1024(bench_report *r, double seconds) { square(r, seconds, 1024); }
