/* gemm_bf16.c - ur_gemm_bf16: products of bf16-rounded operands summed in float,
 * the bf16 <-> float conversions, and the reference.
 *
 * Both operands are given in float and rounded to bf16 (ties to even) on the way
 * in; every product of two bf16 values is exact in float (8-bit significands), so
 * the only rounding left is that of the float sums, whose order each path fixes:
 *   amx         (tensor/kernels/gemm_bf16_amx.c) packs A and B as bf16 pairs of
 *               k and multiplies them with tdpbf16ps, in 32 x 32 blocks of four
 *               16 x 16 tiles, over all of k at once; chosen when the kernel path
 *               is avx512 and the CPU has AMX-BF16 (tensor/dispatch.c).
 *   avx512bf16  (tensor/kernels/gemm_bf16_avx512.c) packs A and B as bf16 pairs
 *               of k and multiplies them with vdpbf16ps, in 12 x 32 tiles and
 *               depth blocks of 2 * UR_BF16_KC2; chosen when the kernel path is
 *               avx512 and the CPU has AVX512-BF16 but no AMX.
 *   portable    copies the operands rounded to bf16 (as floats) and runs ur_gemm on
 *               them: the same exact products, summed by the float kernels.
 * Threads split C only, never k, so each path gives the same bits for any number
 * of threads (as ur_gemm). The packing buffers come from ur_gemm's pool, one slot
 * per thread, all taken before the threads start.
 *
 * The double build refuses ur_gemm_bf16 (UR_ERR_ARG): bf16 operands are a way to
 * make float training faster, and its double GEMM is there for the gradient checks.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>

#include "gemm_bf16_internal.h"
#include "gemm_internal.h"

void ur_bf16_from_f32(size_t n, const float *x, uint16_t *y) {
    for (size_t i = 0; i < n; i++) y[i] = ur__bf16_round(x[i]);
}

void ur_f32_from_bf16(size_t n, const uint16_t *x, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = ur__bf16_value(x[i]);
}

#ifdef UR_DOUBLE

ur_status ur_gemm_bf16(int trans_a, int trans_b, int m, int n, int k, ur_real alpha,
                       const ur_real *A, int lda, const ur_real *B, int ldb, ur_real beta,
                       ur_real *C, int ldc) {
    (void)trans_a, (void)trans_b, (void)m, (void)n, (void)k, (void)alpha, (void)A, (void)lda;
    (void)B, (void)ldb, (void)beta, (void)C, (void)ldc;
    return ur_set_error(UR_ERR_ARG, "ur_gemm_bf16: not in the double-precision build (bf16 "
                                    "operands need the float library, unroll)");
}

const char *ur_gemm_bf16_isa(void) { return "none"; }

#else

static int ceil_div(int a, int b) { return (a + b - 1) / b; }
static int imin(int a, int b) { return a < b ? a : b; }

/* op(X)[row][col] of a row-major X, ld apart, stored transposed when trans. */
static inline float op_at(const float *X, int ld, int trans, int row, int col) {
    return trans ? X[(size_t)col * ld + row] : X[(size_t)row * ld + col];
}

/* Two scratch areas of n0 and n1 32-bit words: from ur_gemm's pool when a slot is
 * free, else allocated for this call. */
typedef struct scratch {
    ur_gemm_slot *slot;
    void *own[2];
    void *p[2];
} scratch;

static ur_status scratch_get(scratch *s, size_t n0, size_t n1) {
    size_t n[2] = {n0, n1};
    *s = (scratch){ur__gemm_slot_acquire(), {NULL, NULL}, {NULL, NULL}};
    for (int w = 0; w < 2; w++) {
        s->p[w] = s->slot ? (void *)ur__gemm_slot_buffer(s->slot, w, n[w]) : NULL;
        if (!s->p[w]) s->p[w] = s->own[w] = ur_malloc(n[w] * sizeof(uint32_t));
        if (!s->p[w])
            return ur_set_error(UR_ERR_NOMEM, "ur_gemm_bf16: out of memory for %zu bytes of "
                                              "packed operands",
                                (n0 + n1) * sizeof(uint32_t));
    }
    return UR_OK;
}

static void scratch_put(scratch *s) {
    ur_free(s->own[0]);
    ur_free(s->own[1]);
    ur__gemm_slot_release(s->slot);
}

/* Blocks of MB row panels x NB column panels: the A block (MB * MR rows x one
 * depth block) stays in L2 while the B block goes by. */
enum { MB = 16, NB = 4, MAX_THREADS = 64 };

/* One call of a tile kernel: the kernel, operands and scalars; pb, when set, is
 * all of op(B) packed beforehand (ur__bf16_pack). */
typedef struct bf16_call {
    const ur_bf16_kernel *kern;
    int ta, tb, k;
    float alpha, beta;
    const float *A, *B;
    int lda, ldb, ldc;
    const uint32_t *pb;
} bf16_call;

/* One thread's share: rows i0..i0+m-1 x columns j0..j0+n-1 of C (C points at its
 * first element; j0 is a multiple of nr), with the packed operands in s. A packed
 * B holds the panels of this thread's columns from panel j0 / nr on: the same
 * words a packing of those columns alone would give. */
static void run_rect(const bf16_call *c, int i0, int m, int j0, int n, float *C, scratch *s) {
    const ur_bf16_kernel *kn = c->kern;
    int depth = ur__bf16_depth(kn, c->k), mp = ceil_div(m, kn->mr), np = ceil_div(n, kn->nr);
    kn->pack_a(c->ta, c->A, c->lda, i0, m, c->k, s->p[0]);
    const uint32_t *pb = c->pb ? c->pb + (size_t)j0 * depth : s->p[1];
    if (!c->pb) kn->pack_b(c->tb, c->B, c->ldb, j0, n, c->k, s->p[1]);
    ur_bf16_job g = {m, n, depth, c->alpha, c->beta, s->p[0], pb, C, c->ldc};
    for (int bj = 0; bj < np; bj += NB)
        for (int bi = 0; bi < mp; bi += MB)
            kn->tiles(&g, bi, imin(bi + MB, mp), bj, imin(bj + NB, np));
}

/* Start (in panels) of part t of `panels` split in `parts`. */
static int part(int panels, int parts, int t) {
    return panels / parts * t + imin(t, panels % parts);
}

/* C is cut into nt rectangles along n (or along m when n has fewer panels than
 * threads), each packed and computed by one thread: one parallel region, no
 * barrier inside, and ur_gemm's guard against a busy machine. Every buffer is
 * taken before any thread starts, so a failed allocation leaves C alone. */
static ur_status run_tiles(const bf16_call *c, int m, int n, float *C, int nt) {
    const int MR = c->kern->mr, NR = c->kern->nr, depth = ur__bf16_depth(c->kern, c->k);
    int mp = ceil_div(m, MR), np = ceil_div(n, NR);
    int along_n = np >= nt || np >= mp;
    nt = imin(imin(nt, MAX_THREADS), along_n ? np : mp);
    int rows = along_n ? mp : ceil_div(mp, nt), cols = along_n ? ceil_div(np, nt) : np;
    scratch s[MAX_THREADS];
    ur_status st = UR_OK;
    int got = 0;
    while (got < nt && st == UR_OK)
        st = scratch_get(&s[got++], (size_t)rows * MR * depth, c->pb ? 1 : (size_t)cols * NR * depth);
    if (st == UR_OK && nt == 1) run_rect(c, 0, m, 0, n, C, &s[0]);
    if (st == UR_OK && nt > 1) {
        double t0 = omp_get_wtime(), busy0 = 0;
#pragma omp parallel num_threads(nt)
        {
            double start = omp_get_wtime();
            for (int t = omp_get_thread_num(); t < nt; t += omp_get_num_threads()) {
                int p0 = part(along_n ? np : mp, nt, t), p1 = part(along_n ? np : mp, nt, t + 1);
                if (along_n)
                    run_rect(c, 0, m, p0 * NR, imin(p1 * NR, n) - p0 * NR, C + (size_t)p0 * NR, &s[t]);
                else
                    run_rect(c, p0 * MR, imin(p1 * MR, m) - p0 * MR, 0, n, C + (size_t)p0 * MR * c->ldc,
                             &s[t]);
            }
            if (omp_get_thread_num() == 0) busy0 = omp_get_wtime() - start;
        }
        ur__par_stalled(t0, busy0); /* run on one thread for a while if this one waited */
    }
    while (got > 0) scratch_put(&s[--got]);
    return st;
}

/* X (rows x cols, ld apart) rounded to bf16, as floats, into dst (cols apart). */
static void round_copy(int rows, int cols, const float *X, int ld, float *dst) {
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            dst[(size_t)i * cols + j] = ur__bf16_value(ur__bf16_round(X[(size_t)i * ld + j]));
}

static ur_status run_portable(int ta, int tb, int m, int n, int k, float alpha, const float *A,
                              const float *B, int lda, int ldb, float beta, float *C, int ldc) {
    int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
    scratch s;
    ur_status st = scratch_get(&s, (size_t)ar * ac, (size_t)br * bc);
    if (st == UR_OK) {
        round_copy(ar, ac, A, lda, s.p[0]);
        round_copy(br, bc, B, ldb, s.p[1]);
        ur_gemm(ta, tb, m, n, k, alpha, s.p[0], ac, s.p[1], bc, beta, C, ldc);
    }
    scratch_put(&s);
    return st;
}

/* UR_OK, or UR_ERR_ARG naming the first argument that does not fit. */
static ur_status check_args(int ta, int tb, int m, int n, int k, const float *A, int lda,
                            const float *B, int ldb, const float *C, int ldc) {
    if (m < 0 || n < 0 || k < 0)
        return ur_set_error(UR_ERR_ARG, "ur_gemm_bf16: sizes m = %d, n = %d, k = %d, expected "
                                        ">= 0", m, n, k);
    if (m == 0 || n == 0) return UR_OK;
    int need_a = ta ? m : k, need_b = tb ? k : n;
    if (k > 0 && (lda < need_a || lda < 1))
        return ur_set_error(UR_ERR_ARG, "ur_gemm_bf16: lda = %d, expected >= %d (op(A) is %d x "
                                        "%d, trans_a = %d)", lda, need_a, m, k, ta);
    if (k > 0 && (ldb < need_b || ldb < 1))
        return ur_set_error(UR_ERR_ARG, "ur_gemm_bf16: ldb = %d, expected >= %d (op(B) is %d x "
                                        "%d, trans_b = %d)", ldb, need_b, k, n, tb);
    if (ldc < n)
        return ur_set_error(UR_ERR_ARG, "ur_gemm_bf16: ldc = %d, expected >= n = %d", ldc, n);
    if (!C || (k > 0 && (!A || !B)))
        return ur_set_error(UR_ERR_ARG, "ur_gemm_bf16: NULL %s", !C ? "C" : !A ? "A" : "B");
    return UR_OK;
}

ur_status ur_gemm_bf16(int trans_a, int trans_b, int m, int n, int k, ur_real alpha,
                       const ur_real *A, int lda, const ur_real *B, int ldb, ur_real beta,
                       ur_real *C, int ldc) {
    ur_status st = check_args(trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc);
    if (st != UR_OK || m == 0 || n == 0) return st;
    if (k == 0 || alpha == 0) { /* as ur_gemm: C = beta * C */
        ur_gemm(0, 0, m, n, 0, alpha, A, 1, B, n, beta, C, ldc);
        return UR_OK;
    }
    int ta = trans_a != 0, tb = trans_b != 0;
    const ur_bf16_kernel *kern = ur__gemm_bf16_kernel();
    if (!kern) return run_portable(ta, tb, m, n, k, alpha, A, B, lda, ldb, beta, C, ldc);
    bf16_call c = {kern, ta, tb, k, alpha, beta, A, B, lda, ldb, ldc, NULL};
    return run_tiles(&c, m, n, C, ur__par_threads(2.0 * m * n * k, 1.5e6));
}

const char *ur_gemm_bf16_isa(void) {
    const ur_bf16_kernel *kern = ur__gemm_bf16_kernel();
    return kern ? kern->name : "portable";
}

/* ---- checking a tile kernel ---- */

/* A tile kernel against a plain loop on one product of small integers (exact in
 * bf16 and in every float sum, so any order of the sums gives the same bits) whose
 * sizes cross the edges of the panels and of a depth padded to a tile (33 x 33,
 * k = 35). */
int ur__bf16_kernel_check(const ur_bf16_kernel *kn) {
    enum { M = 33, N = 33, K = 35, WORDS = 2048 };
    float A[M * K], B[K * N], C[M * N]; /* about 30 KiB of stack with the packed operands */
    uint32_t pa[WORDS], pb[WORDS];
    int depth = ur__bf16_depth(kn, K), mp = (M + kn->mr - 1) / kn->mr, np = (N + kn->nr - 1) / kn->nr;
    if ((size_t)mp * kn->mr * depth > WORDS || (size_t)np * kn->nr * depth > WORDS) return 0;
    for (int i = 0; i < M * K; i++) A[i] = (float)((i * 7) % 9 - 4);
    for (int i = 0; i < K * N; i++) B[i] = (float)((i * 5) % 7 - 3);
    for (int i = 0; i < M * N; i++) C[i] = NAN; /* so that no element is right by chance */
    kn->pack_a(0, A, K, 0, M, K, pa);
    kn->pack_b(0, B, N, 0, N, K, pb);
    ur_bf16_job g = {M, N, depth, 1, 0, pa, pb, C, N};
    kn->tiles(&g, 0, mp, 0, np);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float sum = 0;
            for (int p = 0; p < K; p++) sum += A[i * K + p] * B[p * N + j];
            if (C[i * N + j] != sum) return 0;
        }
    return 1;
}

/* ---- a right operand packed once, for many products ---- */

size_t ur__bf16_packed_words(int n, int k) {
    const ur_bf16_kernel *kern = ur__gemm_bf16_kernel();
    if (!kern) return (size_t)n * k; /* portable: the rounded floats */
    return (size_t)ceil_div(n, kern->nr) * kern->nr * ur__bf16_depth(kern, k);
}

void ur__bf16_pack(ur_bf16_packed *p, int trans_b, const float *B, int ldb, int n, int k,
                   uint32_t *words) {
    *p = (ur_bf16_packed){ur__gemm_bf16_kernel(), trans_b != 0, n, k, words};
    if (p->kern) p->kern->pack_b(p->tb, B, ldb, 0, n, k, words);
    else round_copy(p->tb ? n : k, p->tb ? k : n, B, ldb, (float *)(void *)words);
}

ur_status ur__gemm_bf16_packed(int trans_a, int m, const float *A, int lda, const ur_bf16_packed *pb,
                               float beta, float *C, int ldc) {
    int n = pb->n, k = pb->k, ta = trans_a != 0;
    if (m == 0 || n == 0) return UR_OK;
    if (k == 0) {
        ur_gemm(0, 0, m, n, 0, 1, A, 1, NULL, n, beta, C, ldc);
        return UR_OK;
    }
    if (!pb->kern) { /* as run_portable, B already rounded */
        scratch s;
        int ar = ta ? k : m, ac = ta ? m : k;
        ur_status st = scratch_get(&s, (size_t)ar * ac, 1);
        if (st == UR_OK) {
            round_copy(ar, ac, A, lda, s.p[0]);
            ur_gemm(ta, pb->tb, m, n, k, 1, s.p[0], ac, (const float *)(const void *)pb->words,
                    pb->tb ? k : n, beta, C, ldc);
        }
        scratch_put(&s);
        return st;
    }
    bf16_call c = {pb->kern, ta, pb->tb, k, 1, beta, A, NULL, lda, 0, ldc, pb->words};
    return run_tiles(&c, m, n, C, ur__par_threads(2.0 * m * n * k, 1.5e6));
}

void ur_gemm_bf16_ref(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *A,
                      int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float sum = 0;
            for (int p = 0; p < k; p++) {
                float a = ur__bf16_value(ur__bf16_round(op_at(A, lda, trans_a, i, p)));
                float b = ur__bf16_value(ur__bf16_round(op_at(B, ldb, trans_b, p, j)));
                sum += a * b; /* exact product: contracting it to an fma changes nothing */
            }
            float *c = &C[(size_t)i * ldc + j];
            *c = beta == 0 ? alpha * sum : alpha * sum + beta * *c;
        }
}

#endif
