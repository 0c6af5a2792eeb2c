/* dist_bench.c - the time of one ur_dist_allreduce_grads, for the cost model of
 * docs/distributed.md.
 *   mpirun -np 2 ./build/bin/dist_bench [P [REPS]]
 * times REPS (default 50) gradient means of a paramset of P (default 1000000)
 * scalars after 5 warm-up calls, and prints on rank 0 the median and the fastest
 * call, and the bytes of one rank's gradient. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "unroll.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    long P = argc > 1 ? atol(argv[1]) : 1000000, reps = argc > 2 ? atol(argv[2]) : 50;
    if (P < 1 || P > 1L << 28 || reps < 1 || reps > 100000) {
        fprintf(stderr, "usage: dist_bench [P in 1..2^28 [REPS in 1..100000]]\n");
        return 2;
    }
    if (ur_dist_init(&argc, &argv) != UR_OK) {
        fprintf(stderr, "dist_bench: %s\n", ur_last_error());
        return 1;
    }
    ur_paramset *ps = ur_paramset_new();
    ur_param *p = ur_paramset_add(ps, "w", 1, (int[]){(int)P});
    double *t = malloc((size_t)reps * sizeof *t);
    int ok = p && t;
    for (long i = 0; ok && i < reps + 5; i++) {
        double t0 = now();
        ok = ur_dist_allreduce_grads(ps, 1.0) == UR_OK;
        if (i >= 5) t[i - 5] = now() - t0;
    }
    if (!ok) fprintf(stderr, "dist_bench: rank %d: %s\n", ur_dist_rank(), ur_last_error());
    if (ok && ur_dist_rank() == 0) {
        qsort(t, (size_t)reps, sizeof *t, cmp);
        printf("dist_bench: %d ranks, %ld scalars (%ld bytes) per gradient: median %.3f ms, fastest %.3f ms "
               "over %ld calls\n", ur_dist_size(), P, P * (long)sizeof(ur_real), 1e3 * t[reps / 2], 1e3 * t[0], reps);
    }
    free(t);
    ur_paramset_free(ps);
    ur_dist_finalize();
    return ok ? 0 : 1;
}
