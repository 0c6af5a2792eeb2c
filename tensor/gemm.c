/* gemm.c - ur_gemm: cache-blocked, packed matrix multiply, and its reference.
 *
 * The loop nest (Goto / BLIS):
 *   for each block of nc columns of C                    (B block kc x nc: L3)
 *     for each depth block of kc                         (split of k: fixed by k)
 *       pack B[p0.., j0..] into NR-wide panels           (or read B in place, see below)
 *       for each block of mc rows of C                   (A block mc x kc: L2)
 *         pack A[i0.., p0..] into MR-tall panels
 *         for each MR panel of A, each NR panel of B:    (A panel MR x kc: L1)
 *           micro-kernel: C tile (MR x NR) = alpha * A panel * B panel + beta * C tile
 * The first depth block applies the caller's beta, the later ones add (beta = 1).
 *
 * Threads: C is cut into one rectangle per thread (along n when that is cheaper,
 * else along m) and each thread runs the whole loop nest on its rectangle with its
 * own packing buffers. k is never split, and the depth blocks depend on k alone, so
 * every element of C is computed by the same operations in the same order whatever
 * the number of threads: results are bit-identical for 1, 2 or more threads.
 * Small problems (under UR_GEMM_PAR_FLOPS) run on the calling thread only, and so
 * does everything for a while after a parallel call was held up by a busy machine.
 *
 * Skinny shapes (few rows, as in an RNN step: m = batch) do not pack B when B is
 * not transposed: the micro-kernel reads B's rows in place, which saves a copy of
 * the whole of B for a product that uses each of its values only m times (measured
 * as fast as packing or faster up to UR_GEMM_DIRECT_B_ROWS rows, while B is small
 * enough to stay in cache: read_b_in_place in gemm_rect.c). Panels of a few
 * rows use wider tiles (gemm_kernel.c). A * B^T with few rows (use_dot)
 * is a set of dot products along k, reading both in place (its sums are grouped
 * differently, but again never by thread).
 *
 * This file holds what every instruction set shares: the threads, the buffer pool
 * and the reference. The loop nest and the kernels are in tensor/kernels/, one
 * copy per instruction set; ur_gemm calls the chosen one through the kernel table
 * (tensor/dispatch.c).
 */
#include <omp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_internal.h"
#include "kernels_ref_internal.h"

/* Below this many flops (2*m*n*k) one thread does all the work: starting a
 * parallel region costs a few microseconds. Does not affect results. */
#ifndef UR_GEMM_PAR_FLOPS
#define UR_GEMM_PAR_FLOPS 1.5e6
#endif

/* On an oversubscribed machine a parallel region can wait milliseconds at its
 * closing barrier for a team thread that the OS is not running, which makes a
 * small product a hundred times slower than on one thread. When a parallel call
 * waits more than UR_GEMM_STALL_S beyond its own work, and more than half that
 * work (a shorter wait still leaves two threads ahead of one), calls run on one
 * thread for a while: UR_GEMM_BACKOFF_MIN seconds after an isolated stall (a quiet
 * machine has a few a second), twice the last pause when the first parallel call
 * after it stalls again, up to UR_GEMM_BACKOFF_MAX (a busy machine). Results are
 * the same either way. */
#define UR_GEMM_STALL_S 300e-6
#define UR_GEMM_BACKOFF_MIN 0.005
#define UR_GEMM_BACKOFF_MAX 0.1
static _Atomic double serial_until; /* omp_get_wtime() before which to stay serial */
static _Atomic double backoff = UR_GEMM_BACKOFF_MIN; /* the last pause */

/* A parallel call that started at t0 and ended at `now` stalled. */
static void note_stall(double t0, double now) {
    double last = atomic_load_explicit(&backoff, memory_order_relaxed);
    double until = atomic_load_explicit(&serial_until, memory_order_relaxed);
    /* the first parallel call since the last pause ended: the machine is still busy */
    int again = until > 0 && t0 - until < last;
    double pause = again ? last * 2 : UR_GEMM_BACKOFF_MIN;
    if (pause > UR_GEMM_BACKOFF_MAX) pause = UR_GEMM_BACKOFF_MAX;
    atomic_store_explicit(&backoff, pause, memory_order_relaxed);
    atomic_store_explicit(&serial_until, now + pause, memory_order_relaxed);
}

/* For parallel calls outside ur_gemm (ur_gemm_bf16): one that started at t0, whose
 * thread 0 worked `busy` seconds, has just ended; the same rule as ur_gemm's. */
void ur__par_stalled(double t0, double busy) {
    double now = omp_get_wtime(), wait = now - t0 - busy;
    if (wait > UR_GEMM_STALL_S && wait > 0.5 * busy) note_stall(t0, now);
}

/* The guard is on unless the environment has UR_GEMM_STALL_GUARD=0 (tests that
 * need the thread count to be exactly the one asked for). */
static int stall_guard_on(void) {
    static atomic_int state; /* 0 unknown, 1 on, 2 off */
    int s = atomic_load_explicit(&state, memory_order_relaxed);
    if (!s) {
        const char *e = getenv("UR_GEMM_STALL_GUARD");
        s = e && e[0] == '0' ? 2 : 1;
        atomic_store_explicit(&state, s, memory_order_relaxed);
    }
    return s == 1;
}

static int imin(int a, int b) { return a < b ? a : b; }
static int ceil_div(int a, int b) { return (a + b - 1) / b; }

/* ---- packing buffers ----
 * A pool of slots, each with an A and a B buffer grown on demand (ur_malloc) and
 * kept for the next call. A call takes a free slot for the time of its work, so
 * any thread (OpenMP worker or not, nested or not) gets buffers of its own. The
 * pool is a static array: the buffers stay reachable, and ur_kernel_free_buffers
 * releases them. */
enum { N_SLOTS = 64, ALIGN = 64 };

struct ur_gemm_slot {
    atomic_int busy;
    void *raw[2];  /* as returned by ur_malloc, [0] for A, [1] for B */
    size_t cap[2]; /* usable bytes after alignment */
};

static ur_gemm_slot slots[N_SLOTS];

/* Tries the slot of the caller's OpenMP thread number first (so that a thread
 * finds the buffers it grew last time), then any free one. */
ur_gemm_slot *ur__gemm_slot_acquire(void) {
    int first = omp_get_thread_num();
    for (int i = 0; i < N_SLOTS; i++) {
        ur_gemm_slot *s = &slots[(first + i) % N_SLOTS];
        if (!atomic_exchange_explicit(&s->busy, 1, memory_order_acquire)) return s;
    }
    return NULL;
}

void ur__gemm_slot_release(ur_gemm_slot *s) {
    if (s) atomic_store_explicit(&s->busy, 0, memory_order_release);
}

/* Buffer `which` of the slot with room for n values, 64-byte aligned; NULL when the
 * allocation fails. */
ur_real *ur__gemm_slot_buffer(ur_gemm_slot *s, int which, size_t n) {
    size_t bytes = n * sizeof(ur_real);
    if (s->cap[which] < bytes) {
        ur_free(s->raw[which]);
        s->raw[which] = ur_malloc(bytes + ALIGN);
        s->cap[which] = s->raw[which] ? bytes : 0;
        if (!s->raw[which]) return NULL;
    }
    uintptr_t p = (uintptr_t)s->raw[which];
    return (ur_real *)((p + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1));
}

void ur_kernel_free_buffers(void) {
    for (int i = 0; i < N_SLOTS; i++) {
        ur_gemm_slot *s = &slots[i];
        if (atomic_exchange_explicit(&s->busy, 1, memory_order_acquire)) continue; /* in use */
        for (int w = 0; w < 2; w++) {
            ur_free(s->raw[w]);
            s->raw[w] = NULL;
            s->cap[w] = 0;
        }
        ur__gemm_slot_release(s);
    }
}

/* Splits C into tm x tn rectangles for nt threads, minimising what each thread
 * packs (its rows of A plus its columns of B); prefers splitting n on ties. mr x nr
 * is the micro-tile of the kernels in use. */
static void split_grid(int m, int n, int nt, int mr, int nr, int *tm, int *tn) {
    double best = -1;
    *tm = 1;
    *tn = nt;
    for (int a = 1; a <= nt; a++) {
        if (nt % a) continue;
        int b = nt / a;
        if (a > ceil_div(m, mr) || b > ceil_div(n, nr)) continue;
        double cost = (double)m / a + (double)n / b;
        if (best < 0 || cost < best || (cost == best && b > *tn)) {
            best = cost;
            *tm = a;
            *tn = b;
        }
    }
}

/* Start of part t of `len` split into `parts` pieces aligned to `unit`. */
static int part_start(int len, int unit, int parts, int t) {
    int units = ceil_div(len, unit);
    int u = units / parts * t + imin(t, units % parts);
    return imin(u * unit, len);
}

static void scale_c(int m, int n, ur_real beta, ur_real *C, int ldc) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            ur_real *c = &C[(size_t)i * ldc + j];
            *c = beta == 0 ? (ur_real)0 : beta * *c;
        }
}

/* See tape_internal.h (the fused expressions of autograd/expr_eval.c use it too). */
int ur__par_threads(double work, double min_work) {
    if (work < min_work || omp_in_parallel()) return 1;
    int nt = omp_get_max_threads();
    if (nt > 1 && stall_guard_on() &&
        omp_get_wtime() < atomic_load_explicit(&serial_until, memory_order_relaxed))
        nt = 1;
    return nt;
}

/* Runs g on the threads: C cut into rectangles (see above). */
static void run_job(const ur_gemm_job *g) {
    int m = g->m, n = g->n, k = g->k;
    const ur_kernel_table *K = ur__kernels();
    int nt = ur__par_threads(2.0 * m * n * k, UR_GEMM_PAR_FLOPS);
    if (nt <= 1) {
        K->gemm_rect(g, 0, m, 0, n, m, n);
        return;
    }
    const int mr = K->mr, nr = K->nr;
    double master_busy = 0, t0 = omp_get_wtime();
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), got = omp_get_num_threads(), tm, tn;
        split_grid(m, n, got, mr, nr, &tm, &tn);
        double start = omp_get_wtime();
        if (t < tm * tn) {
            int ti = t / tn, tj = t % tn;
            K->gemm_rect(g, part_start(m, mr, tm, ti), part_start(m, mr, tm, ti + 1),
                          part_start(n, nr, tn, tj), part_start(n, nr, tn, tj + 1),
                          ceil_div(ceil_div(m, mr), tm) * mr, ceil_div(ceil_div(n, nr), tn) * nr);
        }
        if (t == 0) master_busy = omp_get_wtime() - start;
    }
    /* Thread 0 has the largest share; waiting much longer than its own work means
     * another thread was not running. */
    double now = omp_get_wtime();
    double wait = now - t0 - master_busy;
    if (wait > UR_GEMM_STALL_S && wait > 0.5 * master_busy) note_stall(t0, now);
}

void ur_gemm(int trans_a, int trans_b, int m, int n, int k, ur_real alpha, const ur_real *A,
             int lda, const ur_real *B, int ldb, ur_real beta, ur_real *C, int ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0 || alpha == 0) {
        scale_c(m, n, beta, C, ldc);
        return;
    }
    ur_gemm_job g = {trans_a, trans_b, m, n, k, alpha, beta, A, B, C, lda, ldb, ldc, NULL, 0, NULL, NULL};
    run_job(&g);
}

/* See kernels_internal.h. */
void ur__gemm_plus(int trans_a, int trans_b, int m, int n, int k, const ur_real *A, int lda,
                   const ur_real *B, int ldb, const ur_real *C0, int ldc0, ur_real *C, int ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        for (int i = 0; i < m; i++) memcpy(C + (size_t)i * ldc, C0 + (size_t)i * ldc0, (size_t)n * sizeof(ur_real));
        return;
    }
    ur_gemm_job g = {trans_a, trans_b, m, n, k, 1, 1, A, B, C, lda, ldb, ldc, C0, ldc0, NULL, NULL};
    run_job(&g);
}

/* See kernels_internal.h. */
void ur__gemm_rows_tn(int m, int n, int k, const ur_real *A, int lda, const ur_real *const *arows,
                      const ur_real *B, int ldb, const ur_real *const *brows, ur_real *C, int ldc) {
    if (m <= 0 || n <= 0 || k <= 0) return;
    ur_gemm_job g = {1, 0, m, n, k, 1, 1, A, B, C, lda, ldb, ldc, NULL, 0, arows, brows};
    run_job(&g);
}

/* The reference: one dot product per element, summed in order, then scaled. */
void ur_gemm_ref(int trans_a, int trans_b, int m, int n, int k, ur_real alpha, const ur_real *A,
                 int lda, const ur_real *B, int ldb, ur_real beta, ur_real *C, int ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0 || alpha == 0) {
        scale_c(m, n, beta, C, ldc);
        return;
    }
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            ur_real sum = 0;
            for (int p = 0; p < k; p++) {
                ur_real a = trans_a ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                ur_real b = trans_b ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                sum += a * b;
            }
            ur_real *c = &C[(size_t)i * ldc + j];
            *c = beta == 0 ? alpha * sum : alpha * sum + beta * *c;
        }
}

void ur_set_num_threads(int n) { omp_set_num_threads(n < 1 ? omp_get_num_procs() : n); }

int ur_get_num_threads(void) { return omp_get_max_threads(); }

void ur_gemm_transpose(int rows, int cols, const ur_real *src, int lds, ur_real *dst, int ldd) {
    ur__kernels()->transpose(rows, cols, src, lds, dst, ldd);
}
