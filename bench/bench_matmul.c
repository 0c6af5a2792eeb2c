/* bench_matmul.c - GEMM throughput: the square products torch_ref.py measures
 * (C = A B, n x n, float) and, on request, the shapes of RNN training steps. */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "ur_kernels.h"

typedef struct gemm_shape {
    int ta, tb, m, n, k;
    ur_real *A, *B, *C;
} gemm_shape;

static double gemm_step(void *ctx) {
    gemm_shape *g = ctx;
    ur_gemm(g->ta, g->tb, g->m, g->n, g->k, 1, g->A, g->ta ? g->m : g->k, g->B, g->tb ? g->k : g->n,
            0, g->C, g->n);
    return 2.0 * g->m * g->n * g->k;
}

static ur_real *random_values(ur_rng *r, size_t n) {
    ur_real *x = malloc(sizeof(ur_real) * n);
    if (!x) {
        fprintf(stderr, "unroll-bench: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) x[i] = (ur_real)ur_rng_normal(r);
    return x;
}

/* GFLOP/s of C (m x n) = op(A) op(B). */
static double gemm_gflops(int ta, int tb, int m, int n, int k, double seconds) {
    ur_rng r;
    ur_rng_seed(&r, 0);
    gemm_shape g = {ta, tb, m, n, k, NULL, NULL, NULL};
    g.A = random_values(&r, (size_t)m * k);
    g.B = random_values(&r, (size_t)k * n);
    g.C = random_values(&r, (size_t)m * n);
    double rate = bench_timed(gemm_step, &g, seconds) / 1e9;
    free(g.A);
    free(g.B);
    free(g.C);
    return rate;
}

static void square(bench_report *r, double seconds, int n) {
    char key[64];
    snprintf(key, sizeof key, "unroll-matmul-%d-gflops", n);
    bench_report_number(r, BENCH_OTHER, key, gemm_gflops(0, 0, n, n, n, seconds));
}

void bench_matmul_64(bench_report *r, double seconds) { square(r, seconds, 64); }
void bench_matmul_256(bench_report *r, double seconds) { square(r, seconds, 256); }
void bench_matmul_1024(bench_report *r, double seconds) { square(r, seconds, 1024); }

/* Forward x W (m = batch), backward dY W^T and X^T dY, for the charlm (input 65 +
 * hidden 128 = 193, 4 x 128 gates), charlm-b1 and large (1024 -> 2048) configs.
 * Keys: unroll-gemm-<NN|NT|TN>-<m>x<k>x<n>-gflops. */
void bench_matmul_rnn(bench_report *r, double seconds) {
    static const int SHAPES[][5] = {
        /* ta, tb, m, k, n */
        {0, 0, 32, 193, 512},   {0, 0, 1, 193, 512},    {0, 0, 64, 1024, 2048},
        {0, 1, 32, 512, 193},   {0, 1, 1, 512, 193},    {0, 1, 64, 2048, 1024},
        {1, 0, 193, 32, 512},   {1, 0, 193, 2048, 512}, {1, 0, 512, 64, 512},
        {1, 0, 1024, 64, 2048},
    };
    for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++) {
        const int *s = SHAPES[i];
        char key[96];
        snprintf(key, sizeof key, "unroll-gemm-%c%c-%dx%dx%d-gflops", s[0] ? 'T' : 'N',
                 s[1] ? 'T' : 'N', s[2], s[3], s[4]);
        bench_report_number(r, BENCH_OTHER, key,
                            gemm_gflops(s[0], s[1], s[2], s[4], s[3], seconds));
    }
}
