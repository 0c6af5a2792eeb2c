/* test_kernels.c - the fast kernels against their reference versions.
 *
 * ur_gemm against ur_gemm_ref over every transpose combination, odd sizes, padded
 * leading dimensions (the padding holds NaN, so a read outside the matrix shows),
 * several alpha/beta pairs and beta = 0 over a C full of NaN; results bit-identical
 * for 1, 2, 3 and 4 threads; the stack fallback when allocation fails; no
 * allocation once warm. The vector kernels against libm over the whole range.
 * With UR_KERNELS set (a ctest entry per path) all of it runs on that path.
 *
 * Tolerances: any summation order of a k-term dot product is within
 * (k + 2) * eps * sum |a_p b_p| of the exact value, so two orders differ by at most
 * twice that; the scale is computed for each element.
 *
 * test_f64_kernels.c includes this file to run the same cases in double precision.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "kernels_internal.h"
#include "kernels_ref_internal.h"

#ifdef UR_DOUBLE
#define EPS DBL_EPSILON
#define TINY DBL_MIN
#else
#define EPS FLT_EPSILON
#define TINY FLT_MIN
#endif

static const ur_real C_PAD = (ur_real)12345; /* C's padding: must survive */

/* A rows x cols matrix with leading dimension ld; values uniform in [-1, 1),
 * padding columns NaN. */
static ur_real *random_matrix(ur_rng *r, int rows, int cols, int ld) {
    ur_real *m = malloc(sizeof(ur_real) * ((size_t)rows * ld + 1));
    cr_assert_not_null(m);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < ld; j++)
            m[(size_t)i * ld + j] = j < cols ? (ur_real)(2 * ur_rng_uniform(r) - 1) : (ur_real)NAN;
    return m;
}

typedef struct gemm_case {
    int ta, tb, m, n, k, pad_a, pad_b, pad_c;
    double alpha, beta;
    int c_nan; /* C starts as NaN (only meaningful with beta == 0) */
} gemm_case;

/* Runs one case through ur_gemm and ur_gemm_ref and compares element by element.
 * Returns 1 when all agree (and reports the first mismatch otherwise). */
static int check_gemm(const gemm_case *t, uint64_t seed) {
    ur_rng r;
    ur_rng_seed(&r, seed);
    int ar = t->ta ? t->k : t->m, ac = t->ta ? t->m : t->k;
    int br = t->tb ? t->n : t->k, bc = t->tb ? t->k : t->n;
    int lda = ac + t->pad_a, ldb = bc + t->pad_b, ldc = t->n + t->pad_c;
    ur_real *A = random_matrix(&r, ar, ac, lda), *B = random_matrix(&r, br, bc, ldb);
    ur_real *C = random_matrix(&r, t->m, t->n, ldc);
    for (int i = 0; i < t->m; i++)
        for (int j = 0; j < ldc; j++) {
            ur_real *c = &C[(size_t)i * ldc + j];
            *c = j >= t->n ? C_PAD : t->c_nan ? (ur_real)NAN : *c;
        }
    size_t csize = sizeof(ur_real) * (size_t)t->m * ldc;
    ur_real *C0 = malloc(csize), *R = malloc(csize);
    memcpy(C0, C, csize);
    memcpy(R, C, csize);
    ur_gemm(t->ta, t->tb, t->m, t->n, t->k, (ur_real)t->alpha, A, lda, B, ldb, (ur_real)t->beta, C,
            ldc);
    ur_gemm_ref(t->ta, t->tb, t->m, t->n, t->k, (ur_real)t->alpha, A, lda, B, ldb, (ur_real)t->beta,
                R, ldc);
    int ok = 1;
    for (int i = 0; i < t->m && ok; i++)
        for (int j = 0; j < ldc && ok; j++) {
            size_t at = (size_t)i * ldc + j;
            if (j >= t->n) {
                ok = C[at] == C_PAD;
                cr_expect(ok, "gemm %d%d %dx%dx%d: padding of C at (%d,%d) overwritten", t->ta,
                          t->tb, t->m, t->n, t->k, i, j);
                continue;
            }
            double scale = t->beta == 0 ? 0 : fabs(t->beta * (double)C0[at]);
            for (int p = 0; p < t->k && t->alpha != 0; p++) {
                double a = t->ta ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                double b = t->tb ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                scale += fabs(t->alpha * a * b);
            }
            double tol = 2.0 * (t->k + 2) * EPS * scale + 4 * TINY;
            ok = isfinite((double)C[at]) && fabs((double)C[at] - (double)R[at]) <= tol;
            cr_expect(ok,
                      "gemm ta=%d tb=%d m=%d n=%d k=%d pads=%d,%d,%d alpha=%g beta=%g: C(%d,%d) = "
                      "%.9g, reference %.9g (tolerance %.3g)",
                      t->ta, t->tb, t->m, t->n, t->k, t->pad_a, t->pad_b, t->pad_c, t->alpha,
                      t->beta, i, j, (double)C[at], (double)R[at], tol);
        }
    free(A);
    free(B);
    free(C);
    free(C0);
    free(R);
    return ok;
}

/* The shapes an RNN produces, and the edges of every blocking parameter:
 * k across the depth block (256), m across the A block and the panel heights,
 * n across the B block (2048), 1..5-row tails (wide tiles), m <= 16 with B^T
 * (dot products), m <= 32 (B read in place). */
static const int SHAPES[][3] = {
    {1, 1, 1},     {1, 512, 193},  {32, 512, 193}, {3, 100, 257}, {17, 33, 1},   {13, 1, 300},
    {64, 64, 64},  {12, 32, 256},  {25, 65, 513},  {5, 2100, 20}, {250, 70, 30}, {300, 300, 300},
    {2, 130, 600}, {16, 96, 1024}, {33, 47, 5},    {11, 7, 2},    {128, 40, 32}, {7, 2049, 3},
};

Test(gemm, shapes_every_transpose) {
    int n_shapes = (int)(sizeof SHAPES / sizeof SHAPES[0]);
    for (int s = 0; s < n_shapes; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                gemm_case t = {ta, tb, SHAPES[s][0], SHAPES[s][1], SHAPES[s][2], 0, 0, 0, 1, 0, 0};
                if (!check_gemm(&t, 100 + s)) return;
            }
}

Test(gemm, random_shapes_padding_alpha_beta) {
    static const double AB[][2] = {{1, 0}, {1, 1}, {0.5, -1}, {-1.5, 0.25}, {2, 3}, {0, 0.5}};
    ur_rng r;
    ur_rng_seed(&r, 7);
    for (int c = 0; c < 160; c++) {
        int lim = c % 8 == 0 ? 300 : c % 3 == 0 ? 150 : 40;
        gemm_case t;
        t.ta = (int)ur_rng_below(&r, 2);
        t.tb = (int)ur_rng_below(&r, 2);
        t.m = 1 + (int)ur_rng_below(&r, lim);
        t.n = 1 + (int)ur_rng_below(&r, lim);
        t.k = 1 + (int)ur_rng_below(&r, lim);
        t.pad_a = (int)ur_rng_below(&r, 3) * (int)ur_rng_below(&r, 9);
        t.pad_b = (int)ur_rng_below(&r, 3) * (int)ur_rng_below(&r, 9);
        t.pad_c = (int)ur_rng_below(&r, 3) * (int)ur_rng_below(&r, 9);
        int ab = (int)ur_rng_below(&r, 6);
        t.alpha = AB[ab][0];
        t.beta = AB[ab][1];
        t.c_nan = 0;
        if (!check_gemm(&t, 1000 + c)) return;
    }
}

Test(gemm, beta_zero_ignores_nan_in_c) {
    for (int s = 0; s < 12; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                gemm_case t = {ta, tb, SHAPES[s][0], SHAPES[s][1], SHAPES[s][2], 1, 2, 3, 0.75,
                               0,  1};
                if (!check_gemm(&t, 300 + s)) return;
            }
}

Test(gemm, empty_and_degenerate) {
    ur_real A[4] = {1, 2, 3, 4}, B[4] = {5, 6, 7, 8}, C[4] = {1, 1, 1, 1};
    ur_gemm(0, 0, 0, 2, 2, 1, A, 2, B, 2, 0, C, 2); /* m = 0: nothing */
    ur_gemm(0, 0, 2, 0, 2, 1, A, 2, B, 2, 0, C, 2); /* n = 0: nothing */
    for (int i = 0; i < 4; i++) cr_assert_eq(C[i], 1);
    ur_gemm(0, 0, 2, 2, 0, 1, A, 2, B, 2, 3, C, 2); /* k = 0: C = beta * C */
    for (int i = 0; i < 4; i++) cr_assert_eq(C[i], 3);
    ur_gemm(0, 0, 2, 2, 2, 0, A, 2, B, 2, 0.5, C, 2); /* alpha = 0: C = beta * C */
    for (int i = 0; i < 4; i++) cr_assert_eq(C[i], 1.5);
    C[0] = (ur_real)NAN;
    ur_gemm(0, 0, 2, 2, 0, 1, A, 2, B, 2, 0, C, 2); /* k = 0, beta = 0: zeros, even over NaN */
    for (int i = 0; i < 4; i++) cr_assert_eq(C[i], 0);
    ur_gemm(0, 0, 2, 2, 2, 1, A, 2, B, 2, 0, C, 2); /* [1 2; 3 4] [5 6; 7 8] */
    cr_assert(C[0] == 19 && C[1] == 22 && C[2] == 43 && C[3] == 50, "%g %g %g %g", (double)C[0],
              (double)C[1], (double)C[2], (double)C[3]);
}

/* ---- threads ---- */

static const int PAR_SHAPES[][5] = {
    /* m, n, k, ta, tb: all above the parallel threshold */
    {200, 300, 150, 0, 0}, {64, 2048, 300, 0, 0}, {3, 2000, 300, 0, 1}, {20, 1000, 200, 0, 0},
    {256, 512, 32, 1, 0},  {130, 77, 600, 1, 1},  {1, 4096, 400, 0, 0}, {33, 700, 513, 0, 1},
    {16, 20, 5000, 0, 1},  {13, 20, 5000, 0, 0}, /* narrow: split along m */
};
enum { N_PAR = sizeof PAR_SHAPES / sizeof PAR_SHAPES[0] };

/* Operands of PAR_SHAPES[s], op(A) m x k and op(B) k x n stored as the transpose
 * flags say, from r seeded with `seed` (r goes on for more). */
static void par_operands(int s, uint64_t seed, ur_rng *r, ur_real **A, ur_real **B) {
    const int *p = PAR_SHAPES[s];
    int m = p[0], n = p[1], k = p[2], ta = p[3], tb = p[4];
    ur_rng_seed(r, seed);
    *A = random_matrix(r, ta ? k : m, ta ? m : k, ta ? m : k);
    *B = random_matrix(r, tb ? n : k, tb ? k : n, tb ? k : n);
}

/* C of every shape above with the given thread count, concatenated. */
static ur_real *run_with_threads(int threads, size_t *total) {
    ur_set_num_threads(threads);
    size_t sz = 0;
    for (int s = 0; s < N_PAR; s++) sz += (size_t)PAR_SHAPES[s][0] * PAR_SHAPES[s][1];
    ur_real *out = malloc(sizeof(ur_real) * sz), *at = out;
    for (int s = 0; s < N_PAR; s++) {
        const int *p = PAR_SHAPES[s];
        int m = p[0], n = p[1], k = p[2], ta = p[3], tb = p[4];
        ur_rng r;
        ur_real *A, *B;
        par_operands(s, 50 + s, &r, &A, &B);
        ur_gemm(ta, tb, m, n, k, (ur_real)0.7, A, ta ? m : k, B, tb ? k : n, 0, at, n);
        at += (size_t)m * n;
        free(A);
        free(B);
    }
    *total = sz;
    return out;
}

Test(gemm, bit_identical_for_any_thread_count) {
    setenv("UR_GEMM_STALL_GUARD", "0", 1); /* really use the threads, even on a busy machine */
    size_t n1, n;
    ur_real *one = run_with_threads(1, &n1);
    for (int threads = 2; threads <= 4; threads++) {
        ur_real *many = run_with_threads(threads, &n);
        cr_assert_eq(n, n1);
        size_t diff = 0;
        for (size_t i = 0; i < n; i++) diff += memcmp(&one[i], &many[i], sizeof(ur_real)) != 0;
        cr_expect_eq(diff, 0, "%zu of %zu elements differ between 1 and %d threads", diff, n,
                     threads);
        free(many);
    }
    free(one);
}

/* ur__gemm_plus (C = op(A) op(B) + C0, each thread copying its part of C0) gives
 * the bits of ur_gemm with beta 1 on C holding C0: for a full C0 and for one row of
 * C0 added to every row (ldc0 = 0), on 1 and 2 threads; C0 is not written. */
Test(gemm, plus_equals_copy_then_gemm) {
    setenv("UR_GEMM_STALL_GUARD", "0", 1);
    for (int threads = 1; threads <= 2; threads++) {
        ur_set_num_threads(threads);
        for (int s = 0; s < N_PAR; s++)
            for (int one_row = 0; one_row < 2; one_row++) {
                const int *p = PAR_SHAPES[s];
                int m = p[0], n = p[1], k = p[2], ta = p[3], tb = p[4];
                ur_rng r;
                ur_real *A, *B;
                par_operands(s, 80 + s, &r, &A, &B);
                ur_real *C0 = random_matrix(&r, one_row ? 1 : m, n, n);
                size_t c0_size = (size_t)(one_row ? 1 : m) * n;
                ur_real *keep = malloc(c0_size * sizeof *keep), *want = malloc((size_t)m * n * sizeof *want),
                        *got = malloc((size_t)m * n * sizeof *got);
                cr_assert(keep && want && got);
                memcpy(keep, C0, c0_size * sizeof *keep);
                for (int i = 0; i < m; i++) memcpy(want + (size_t)i * n, C0 + (one_row ? 0 : (size_t)i * n), n * sizeof *want);
                ur_gemm(ta, tb, m, n, k, 1, A, ta ? m : k, B, tb ? k : n, 1, want, n);
                ur__gemm_plus(ta, tb, m, n, k, A, ta ? m : k, B, tb ? k : n, C0, one_row ? 0 : n, got, n);
                size_t diff = 0;
                for (size_t i = 0; i < (size_t)m * n; i++) diff += memcmp(&want[i], &got[i], sizeof *got) != 0;
                cr_expect_eq(diff, 0, "%d x %d x %d%s, %d threads: %zu of %zu values differ", m, n, k,
                             one_row ? " (one row)" : "", threads, diff, (size_t)m * n);
                cr_expect(!memcmp(keep, C0, c0_size * sizeof *keep), "C0 was written");
                free(A), free(B), free(C0), free(keep), free(want), free(got);
            }
    }
    ur_set_num_threads(0);
}

/* ur__gemm_rows_tn (a weight's gradient over rows scattered in memory) gives the
 * bits of ur_gemm(1, 0, ...) on the rows joined into matrices: rows of A, of B or
 * of both taken by address from scattered blocks, on 1 and 2 threads, for depths
 * of one and of several blocks, and narrow and wide C. */
Test(gemm, rows_by_address_equal_joined_rows) {
    static const int SHAPES[][3] = {{128, 384, 256}, {128, 512, 256}, {64, 96, 600}, {200, 30, 33}};
    setenv("UR_GEMM_STALL_GUARD", "0", 1);
    for (int threads = 1; threads <= 2; threads++) {
        ur_set_num_threads(threads);
        for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++)
            for (int which = 1; which <= 3; which++) { /* 1: A's rows, 2: B's, 3: both */
                int m = SHAPES[s][0], n = SHAPES[s][1], k = SHAPES[s][2];
                ur_rng r;
                ur_rng_seed(&r, 90 + s);
                ur_real *A = random_matrix(&r, k, m, m), *B = random_matrix(&r, k, n, n);
                /* the same rows, scattered: row p at block p % 3, slot p / 3, rows padded */
                int third = (k + 2) / 3;
                ur_real *As = malloc(sizeof(ur_real) * 3 * third * (m + 5)), *Bs = malloc(sizeof(ur_real) * 3 * third * (n + 3));
                const ur_real **ar = malloc(sizeof *ar * k), **br = malloc(sizeof *br * k);
                ur_real *want = random_matrix(&r, m, n, n), *got = malloc(sizeof(ur_real) * (size_t)m * n);
                cr_assert(As && Bs && ar && br && got);
                memcpy(got, want, sizeof(ur_real) * (size_t)m * n);
                for (int p = 0; p < k; p++) {
                    size_t slot = (size_t)(p % 3) * third + p / 3;
                    ur_real *a = As + slot * (m + 5), *b = Bs + slot * (n + 3);
                    memcpy(a, A + (size_t)p * m, sizeof(ur_real) * m);
                    memcpy(b, B + (size_t)p * n, sizeof(ur_real) * n);
                    ar[p] = a;
                    br[p] = b;
                }
                ur_gemm(1, 0, m, n, k, 1, A, m, B, n, 1, want, n);
                ur__gemm_rows_tn(m, n, k, which & 1 ? NULL : A, m, which & 1 ? ar : NULL, which & 2 ? NULL : B, n,
                                 which & 2 ? br : NULL, got, n); /* a matrix given by its rows only */
                size_t diff = 0;
                for (size_t i = 0; i < (size_t)m * n; i++) diff += memcmp(&want[i], &got[i], sizeof *got) != 0;
                cr_expect_eq(diff, 0, "%d x %d x %d, tables %d, %d threads: %zu of %zu values differ", m, n, k,
                             which, threads, diff, (size_t)m * n);
                free(A), free(B), free(As), free(Bs), free(ar), free(br), free(want), free(got);
            }
    }
    ur_set_num_threads(0);
}

Test(gemm, thread_count_setting) {
    ur_set_num_threads(3);
    cr_expect_eq(ur_get_num_threads(), 3);
    ur_set_num_threads(0); /* all cores */
    cr_expect_eq(ur_get_num_threads(), omp_get_num_procs());
    ur_set_num_threads(-5);
    cr_expect_eq(ur_get_num_threads(), omp_get_num_procs());
}

/* ctest runs this file once per kernel path as well (test_kernels_avx2, ...,
 * with UR_KERNELS set): every other test here then checks that path against the
 * references. The path must be the one asked for, unless this CPU lacks it. */
Test(gemm, kernel_path) {
    const char *isa = ur_kernel_isa(); /* the first kernel call: the choice is made here */
    cr_expect(!strcmp(isa, "avx512") || !strcmp(isa, "avx2") || !strcmp(isa, "portable"),
              "unknown kernel path %s", isa);
#if defined(UR_KERNELS_NATIVE) && defined(__AVX512F__)
    cr_expect_str_eq(isa, "avx512");
#elif defined(UR_KERNELS_NATIVE) && defined(__AVX2__) && defined(__FMA__)
    cr_expect_str_eq(isa, "avx2");
#elif defined(UR_KERNELS_NATIVE) || !(defined(__x86_64__) || defined(__i386__))
    cr_expect_str_eq(isa, "portable");
#endif
    const char *want = getenv("UR_KERNELS");
    if (!want || !want[0]) return;
    if (ur_kernel_select(want) != UR_OK) {
        cr_expect(strstr(ur_last_error(), want) != NULL, "refusal names the path: %s",
                  ur_last_error());
        cr_skip_test("this CPU or build has no %s kernels: %s", want, ur_last_error());
    }
    cr_expect_str_eq(isa, want, "UR_KERNELS=%s, but the %s kernels ran", want, isa);
}

/* ---- buffers ---- */

Test(gemm, correct_when_allocation_fails) {
    ur_kernel_free_buffers();
    ur_test_fail_alloc_begin(1, 1); /* every allocation fails */
    /* packed A and B, B in place, one and two threads */
    gemm_case cases[] = {
        {0, 0, 100, 90, 300, 0, 0, 0, 1, 0.5, 0},
        {1, 1, 40, 70, 50, 1, 0, 2, -1, 0, 0},
        {0, 0, 7, 300, 280, 0, 0, 0, 1, 0, 0},
    };
    for (int threads = 1; threads <= 2; threads++) {
        ur_set_num_threads(threads);
        for (int c = 0; c < 3; c++) cr_expect(check_gemm(&cases[c], 900 + c));
    }
    ur_test_fail_alloc_end();
}

Test(gemm, no_allocation_once_warm) {
    setenv("UR_GEMM_STALL_GUARD", "0", 1); /* on a busy machine it would pick 1 thread */
    ur_set_num_threads(2);
    size_t n;
    free(run_with_threads(1, &n)); /* warm: buffers for one thread and for two */
    free(run_with_threads(2, &n));
    uint64_t before = ur_alloc_count();
    free(run_with_threads(2, &n));
    free(run_with_threads(1, &n));
    cr_expect_eq(ur_alloc_count(), before, "ur_gemm allocated %llu times after warm-up",
                 (unsigned long long)(ur_alloc_count() - before));
    ur_kernel_free_buffers();
}

/* ---- elementwise ---- */

typedef void (*vec_fn)(size_t, const ur_real *, ur_real *);

/* fast vs ref over x in [lo, hi] (n points, plus the same in place); relative
 * error < 1e-6, or absolute < 4 * denormal min near 0. */
static void check_vec(const char *name, vec_fn fast, vec_fn ref, double lo, double hi, size_t n) {
    ur_real *x = malloc(sizeof(ur_real) * n), *y = malloc(sizeof(ur_real) * n);
    ur_real *r = malloc(sizeof(ur_real) * n);
    for (size_t i = 0; i < n; i++) x[i] = (ur_real)(lo + (hi - lo) * (double)i / (double)(n - 1));
    fast(n, x, y);
    ref(n, x, r);
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        double a = y[i], b = r[i];
        int ok = a == b || (isfinite(a) && fabs(a - b) <= 1e-6 * fabs(b) + 4 * TINY * EPS);
        if (!ok && !bad++) first = i;
    }
    cr_expect_eq(bad, 0, "%s: %zu of %zu differ, first x = %.9g: %.9g vs libm %.9g", name, bad, n,
                 (double)x[first], (double)y[first], (double)r[first]);
    fast(n, x, x); /* in place */
    cr_expect_eq(memcmp(x, y, sizeof(ur_real) * n), 0, "%s: in place differs", name);
    free(x);
    free(y);
    free(r);
}

Test(vec, exp_tanh_sigmoid_match_libm) {
    /* n not a multiple of the vector width; the large n runs on several threads */
    check_vec("exp", ur_vec_exp, ur_vec_exp_ref, -110, 110, 2000003);
    check_vec("tanh", ur_vec_tanh, ur_vec_tanh_ref, -30, 30, 2000003);
    check_vec("sigmoid", ur_vec_sigmoid, ur_vec_sigmoid_ref, -110, 110, 2000003);
    check_vec("tanh near 0", ur_vec_tanh, ur_vec_tanh_ref, -1, 1, 100001);
    for (size_t n = 1; n <= 40; n++)
        check_vec("exp short", ur_vec_exp, ur_vec_exp_ref, -3, 2, n + 1);
}

Test(vec, extremes) {
    const ur_real x[] = {-100, 100, -1000, 1000, -INFINITY, INFINITY, 0, 88, -87, -103};
    enum { N = sizeof x / sizeof x[0] };
    ur_real t[N], s[N], e[N];
    ur_vec_tanh(N, x, t);
    ur_vec_sigmoid(N, x, s);
    ur_vec_exp(N, x, e);
    cr_expect(t[0] == -1 && t[1] == 1 && t[2] == -1 && t[3] == 1 && t[4] == -1 && t[5] == 1,
              "tanh: %g %g %g %g", (double)t[0], (double)t[1], (double)t[4], (double)t[5]);
    cr_expect(s[0] >= 0 && s[0] < 1e-30 && s[1] == 1 && s[2] == 0 && s[3] == 1 && s[4] == 0 &&
                  s[5] == 1,
              "sigmoid: %g %g %g %g", (double)s[0], (double)s[1], (double)s[2], (double)s[3]);
    cr_expect(e[2] == 0 && isinf(e[3]) && e[4] == 0 && isinf(e[5]) && e[6] == 1, "exp: %g %g %g %g",
              (double)e[2], (double)e[3], (double)e[4], (double)e[5]);
    cr_expect(isfinite(e[7]) && e[8] > 0 && e[9] >= 0, "exp(88) = %g", (double)e[7]);
    for (int i = 0; i < N; i++)
        cr_expect(!isnan(t[i]) && !isnan(s[i]) && !isnan(e[i]), "NaN at %d", i);
#ifndef UR_DOUBLE
    /* float: finite up to the largest float, inf just past it */
    ur_real big[3] = {88.72f, 88.8f, 89.0f}, eb[3];
    ur_vec_exp(3, big, eb);
    cr_expect(isfinite(eb[0]) && eb[0] > 3.3e38f && isinf(eb[1]) && isinf(eb[2]), "%g %g %g",
              (double)eb[0], (double)eb[1], (double)eb[2]);
#endif
    ur_real nan_in = (ur_real)NAN, out;
    ur_vec_exp(1, &nan_in, &out);
    cr_expect(isnan(out));
    ur_vec_tanh(1, &nan_in, &out);
    cr_expect(isnan(out));
}

Test(vec, axpy_and_dot) {
    ur_rng r;
    ur_rng_seed(&r, 3);
    for (size_t n = 0; n < 300; n += 7) {
        ur_real *x = malloc(sizeof(ur_real) * (n + 1)), *y = malloc(sizeof(ur_real) * (n + 1));
        ur_real *y0 = malloc(sizeof(ur_real) * (n + 1));
        double exact = 0, scale = 0;
        for (size_t i = 0; i < n; i++) {
            x[i] = (ur_real)(2 * ur_rng_uniform(&r) - 1);
            y0[i] = y[i] = (ur_real)(2 * ur_rng_uniform(&r) - 1);
            exact += (double)x[i] * y[i];
            scale += fabs((double)x[i] * y[i]);
        }
        ur_real d = ur_vec_dot(n, x, y);
        cr_expect(fabs(d - exact) <= (n + 2) * EPS * scale + TINY, "dot n=%zu: %.9g vs %.9g", n,
                  (double)d, exact);
        cr_expect(ur_vec_dot(n, x, y) == d, "dot is not repeatable");
        ur_vec_axpy(n, (ur_real)-0.5, x, y);
        for (size_t i = 0; i < n; i++)
            cr_expect(fabs(y[i] - (y0[i] - 0.5 * x[i])) <= 2 * EPS, "axpy n=%zu at %zu", n, i);
        free(x);
        free(y);
        free(y0);
    }
}

/* ---- softmax ---- */

Test(softmax, rows_match_reference) {
    static const int SIZES[][2] = {{1, 1}, {3, 7}, {32, 65}, {5, 16}, {2, 1000}, {7, 33}};
    ur_rng r;
    ur_rng_seed(&r, 11);
    for (int s = 0; s < 6; s++) {
        int rows = SIZES[s][0], cols = SIZES[s][1];
        size_t n = (size_t)rows * cols;
        ur_real *x = malloc(sizeof(ur_real) * n), *y = malloc(sizeof(ur_real) * n);
        ur_real *ref = malloc(sizeof(ur_real) * n);
        for (size_t i = 0; i < n; i++)
            x[i] =
                (ur_real)(20 * ur_rng_uniform(&r) - 10 + (s == 3 ? 1000 : 0)); /* large: stable? */
        ur_softmax_rows(rows, cols, x, y);
        ur_softmax_rows_ref(rows, cols, x, ref);
        for (int i = 0; i < rows; i++) {
            double sum = 0;
            for (int j = 0; j < cols; j++) {
                size_t at = (size_t)i * cols + j;
                sum += y[at];
                cr_expect(fabs(y[at] - ref[at]) <= 1e-5 * ref[at] + TINY,
                          "softmax %dx%d (%d,%d): %g vs %g", rows, cols, i, j, (double)y[at],
                          (double)ref[at]);
            }
            cr_expect(fabs(sum - 1) < 1e-5, "softmax row %d sums to %.9g", i, sum);
        }
        ur_log_softmax_rows(rows, cols, x, y);
        ur_log_softmax_rows_ref(rows, cols, x, ref);
        for (size_t i = 0; i < n; i++)
            cr_expect(fabs(y[i] - ref[i]) <= 1e-5 * (1 + fabs(ref[i])),
                      "log_softmax %dx%d at %zu: %g vs %g", rows, cols, i, (double)y[i],
                      (double)ref[i]);
        ur_log_softmax_rows(rows, cols, x, x); /* in place */
        cr_expect_eq(memcmp(x, y, sizeof(ur_real) * n), 0, "log_softmax in place differs");
        free(x);
        free(y);
        free(ref);
    }
}
