/* test_dispatch.c - the run-time choice of the kernel path (tensor/dispatch.c).
 *
 * The choice: the best path this CPU runs by default, the one UR_KERNELS names
 * when the CPU runs it, a refusal naming the path (UR_ERR_ARG, ur_last_error)
 * otherwise, and the best path then. Every kernel of ur_kernels.h on every path
 * this CPU runs, in one process through ur_kernel_select, against the reference
 * kernels; tolerances as in test_kernels.c (GEMM: 2 (k + 2) eps sum |a_p b_p|;
 * activations and softmax: 1e-6 and 1e-5 relative). test_kernels.c runs its
 * longer checks once per path too (ctest entries test_kernels_<path>). The
 * programs' --version names the path, and a refused UR_KERNELS.
 *
 * Criterion runs each test in a process of its own: a test that sets UR_KERNELS
 * before its first kernel call sees the choice made from it.
 * test_f64_dispatch.c includes this file to run it in double precision.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_internal.h" /* ur_gemm_transpose, used by the tape */
#include "kernels_internal.h"
#include "kernels_ref_internal.h"
#include "support.h"
#include "unroll.h"

#ifdef UR_DOUBLE
#define EPS DBL_EPSILON
#define TINY DBL_MIN
#define UR_REAL_BIG DBL_MAX
#else
#define EPS FLT_EPSILON
#define TINY FLT_MIN
#define UR_REAL_BIG FLT_MAX
#endif

static const char *const PATHS[] = {"avx512", "avx2", "portable"};
enum { N_PATHS = 3 };

/* The path this CPU should get when nothing is asked for. */
static const char *expected_best(void) {
#if defined(UR_KERNELS_NATIVE) && defined(__AVX512F__)
    return "avx512";
#elif defined(UR_KERNELS_NATIVE) && defined(__AVX2__) && defined(__FMA__)
    return "avx2";
#elif defined(UR_KERNELS_X86) && !defined(UR_KERNELS_NATIVE) &&                                    \
    (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
        return "avx512";
    return avx2 ? "avx2" : "portable";
#else
    return "portable";
#endif
}

Test(dispatch, best_path_by_default) {
    unsetenv("UR_KERNELS");
    cr_expect_str_eq(ur_kernel_isa(), expected_best());
    cr_expect_eq(ur_kernel_select(NULL), UR_OK);
    cr_expect_str_eq(ur_kernel_isa(), expected_best());
    cr_expect_eq(ur_kernel_select(""), UR_OK);
    cr_expect_str_eq(ur_kernel_isa(), expected_best());
}

Test(dispatch, environment_names_the_path) {
#ifdef UR_KERNELS_NATIVE
    cr_skip_test("a UR_NATIVE build has one kernel path");
#endif
    setenv("UR_KERNELS", "portable", 1);
    cr_expect_str_eq(ur_kernel_isa(), "portable"); /* the first kernel call reads it */
    cr_expect_eq(ur_kernel_select(expected_best()), UR_OK);
    cr_expect_str_eq(ur_kernel_isa(), expected_best());
    cr_expect_eq(ur_kernel_select(NULL), UR_OK); /* back to what UR_KERNELS says */
    cr_expect_str_eq(ur_kernel_isa(), "portable");
}

Test(dispatch, unknown_path_refused) {
    unsetenv("UR_KERNELS");
#ifndef UR_KERNELS_NATIVE
    cr_assert_eq(ur_kernel_select("portable"), UR_OK); /* the refusal must switch back */
#endif
    cr_expect_eq(ur_kernel_select("sse9"), UR_ERR_ARG);
    char want[160];
    snprintf(want, sizeof want,
             "ur_kernel_select: \"sse9\" is not a kernel path (expected avx512, avx2 or "
             "portable); using %s",
             expected_best());
    cr_expect_str_eq(ur_last_error(), want);
    cr_expect_str_eq(ur_kernel_isa(), expected_best(), "falls back to the best path");
}

Test(dispatch, unknown_path_in_environment) {
    setenv("UR_KERNELS", "AVX2", 1); /* names are lower case */
    cr_expect_str_eq(ur_kernel_isa(), expected_best(), "refused at the first call, best used");
    cr_expect_eq(ur_kernel_select(NULL), UR_ERR_ARG);
    cr_expect(strstr(ur_last_error(), "\"AVX2\" (from UR_KERNELS) is not a kernel path") != NULL,
              "%s", ur_last_error());
}

/* A path this CPU (or this build) lacks is refused, and says why. */
Test(dispatch, missing_path_refused) {
    unsetenv("UR_KERNELS");
    int refused = 0;
    for (int p = 0; p < N_PATHS; p++) {
        if (ur_kernel_select(PATHS[p]) == UR_OK) {
            cr_expect_str_eq(ur_kernel_isa(), PATHS[p]);
            continue;
        }
        refused++;
        const char *e = ur_last_error();
        cr_expect(strstr(e, PATHS[p]) && (strstr(e, "which this CPU lacks") ||
                                          strstr(e, "is not in this build")),
                  "%s", e);
        cr_expect_str_eq(ur_kernel_isa(), expected_best());
    }
#ifdef UR_KERNELS_NATIVE
    cr_expect_eq(refused, N_PATHS - 1, "a UR_NATIVE build has one kernel path");
#else
    cr_expect_eq(ur_kernel_select("portable"), UR_OK, "portable runs everywhere");
    /* the refused paths are those better than the best one */
    int best_at = 0;
    while (strcmp(PATHS[best_at], expected_best()) != 0) best_at++;
    cr_expect_eq(refused, best_at, "%d paths refused, %d are beyond this CPU", refused, best_at);
#endif
}

/* ---- every kernel on every path ---- */

static ur_real *random_values(ur_rng *r, size_t n, double lo, double hi) {
    ur_real *v = malloc(sizeof(ur_real) * (n ? n : 1));
    cr_assert_not_null(v);
    for (size_t i = 0; i < n; i++) v[i] = (ur_real)(lo + (hi - lo) * ur_rng_uniform(r));
    return v;
}

/* ur_gemm against ur_gemm_ref for one shape and transpose case (leading
 * dimensions one past the width: rows never start aligned). */
static int gemm_agrees(int ta, int tb, int m, int n, int k, ur_real alpha, ur_real beta) {
    ur_rng r;
    ur_rng_seed(&r, (uint64_t)(m * 7919 + n * 131 + k * 17 + ta * 2 + tb));
    int lda = (ta ? m : k) + 1, ldb = (tb ? k : n) + 1, ldc = n + 1;
    ur_real *A = random_values(&r, (size_t)(ta ? k : m) * lda, -1, 1);
    ur_real *B = random_values(&r, (size_t)(tb ? n : k) * ldb, -1, 1);
    ur_real *C = random_values(&r, (size_t)m * ldc, -1, 1);
    ur_real *R = malloc(sizeof(ur_real) * (size_t)m * ldc);
    memcpy(R, C, sizeof(ur_real) * (size_t)m * ldc);
    ur_gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
    ur_gemm_ref(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, R, ldc);
    int ok = 1;
    for (int i = 0; i < m && ok; i++)
        for (int j = 0; j < n && ok; j++) {
            double scale = fabs((double)beta); /* |C| <= 1 before */
            for (int p = 0; p < k; p++) {
                double a = ta ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                double b = tb ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                scale += fabs(alpha * a * b);
            }
            double got = C[(size_t)i * ldc + j], want = R[(size_t)i * ldc + j];
            double tol = 2.0 * (k + 2) * EPS * scale + 4 * TINY;
            ok = fabs(got - want) <= tol;
            cr_expect(ok, "%s gemm ta=%d tb=%d %dx%dx%d: C(%d,%d) = %.9g, reference %.9g (tol %.3g)",
                      ur_kernel_isa(), ta, tb, m, n, k, i, j, got, want, tol);
        }
    free(A);
    free(B);
    free(C);
    free(R);
    return ok;
}

/* Odd sizes and the edges of the blocking (tiles of 1..12 rows, k across 256,
 * n across the wide tiles, few rows with B^T: dot products). */
static const int SHAPES[][3] = {{1, 1, 1},  {3, 5, 7},    {13, 17, 300}, {1, 100, 33},
                                {5, 70, 9}, {12, 48, 64}, {37, 29, 513}, {130, 67, 20},
                                {64, 200, 300}}; /* the last on 2 threads */

static void check_gemm_all(void) {
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++)
        for (int t = 0; t < 4; t++)
            if (!gemm_agrees(t / 2, t % 2, SHAPES[s][0], SHAPES[s][1], SHAPES[s][2],
                             (ur_real)(s % 2 ? 1 : -0.75), (ur_real)(s % 3 == 0 ? 0 : 0.5)))
                return;
}

typedef void (*vec_fn)(size_t, const ur_real *, ur_real *);

static void check_vec(const char *name, vec_fn fast, vec_fn ref, double lo, double hi) {
    enum { N = 1003 };
    ur_real x[N], y[N], want[N];
    for (int i = 0; i < N; i++) x[i] = (ur_real)(lo + (hi - lo) * i / (N - 1));
    fast(N, x, y);
    ref(N, x, want);
    for (int i = 0; i < N; i++)
        if (!(y[i] == want[i] || fabs(y[i] - want[i]) <= 1e-6 * fabs(want[i]) + 4 * TINY * EPS)) {
            cr_expect(0, "%s %s(%.9g) = %.9g, reference %.9g", ur_kernel_isa(), name, (double)x[i],
                      (double)y[i], (double)want[i]);
            return;
        }
}

/* The SGD step equals its reference bit for bit: plain, with L2 and with decoupled
 * decay, over lengths that leave every kind of vector tail. */
static void check_sgd(void) {
    static const double SET[3][3] = {{0.01, 0, 1}, {0.1, 0.003, 1}, {0.05, 0, 0.9995}}; /* lr, l2, shrink */
    ur_rng r;
    ur_rng_seed(&r, 11);
    for (size_t n = 1; n <= 67; n += 11)
        for (int s = 0; s < 3; s++) {
            ur_real *g = random_values(&r, n, -3, 3), *w = random_values(&r, n, -2, 2);
            ur_real want[67];
            memcpy(want, w, n * sizeof *w);
            /* element 0 by hand: the reference is the rule of nn/optim.c */
            double x0 = (double)want[0];
            ur_real w0 = (ur_real)(x0 * SET[s][2] - SET[s][0] * ((double)g[0] + SET[s][1] * x0));
            ur__vec_sgd(n, SET[s][0], SET[s][1], SET[s][2], g, w);
            ur__vec_sgd_ref(n, SET[s][0], SET[s][1], SET[s][2], g, want);
            cr_expect(want[0] == w0, "sgd reference at 0: %g, by hand %g", (double)want[0], (double)w0);
            cr_expect(memcmp(w, want, n * sizeof *w) == 0, "%s sgd n=%zu setting %d: not the reference's bits",
                      ur_kernel_isa(), n, s);
            free(g);
            free(w);
        }
}

/* The finiteness scan agrees with its reference: clean arrays, and one NaN, Inf,
 * -Inf or largest finite value at each position of several lengths. */
static void check_all_finite(void) {
    enum { N = 41 };
    ur_real x[N];
    const ur_real odd[4] = {(ur_real)NAN, (ur_real)INFINITY, -(ur_real)INFINITY, UR_REAL_BIG};
    for (int n = 0; n <= N; n += 8) {
        for (int i = 0; i < n; i++) x[i] = (ur_real)(i - 20) / 3;
        cr_expect(ur__vec_all_finite((size_t)n, x) == 1 && ur__vec_all_finite_ref((size_t)n, x) == 1,
                  "%s all_finite n=%d clean", ur_kernel_isa(), n);
        for (int at = 0; at < n; at++)
            for (int k = 0; k < 4; k++) {
                ur_real keep = x[at];
                x[at] = odd[k];
                int want = k == 3;
                cr_expect(ur__vec_all_finite((size_t)n, x) == want && ur__vec_all_finite_ref((size_t)n, x) == want,
                          "%s all_finite n=%d: value %g at %d", ur_kernel_isa(), n, (double)odd[k], at);
                x[at] = keep;
            }
    }
}

static void check_vec_all(void) {
    check_vec("exp", ur_vec_exp, ur_vec_exp_ref, -100, 80);
    check_vec("tanh", ur_vec_tanh, ur_vec_tanh_ref, -12, 12);
    check_vec("sigmoid", ur_vec_sigmoid, ur_vec_sigmoid_ref, -100, 100);
    ur_rng r;
    ur_rng_seed(&r, 5);
    size_t n = 77;
    ur_real *x = random_values(&r, n, -1, 1), *y = random_values(&r, n, -1, 1);
    double dot = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        dot += (double)x[i] * y[i];
        scale += fabs((double)x[i] * y[i]);
    }
    cr_expect(fabs(ur_vec_dot(n, x, y) - dot) <= (n + 2) * EPS * scale, "%s dot", ur_kernel_isa());
    ur_real y0 = y[n - 1];
    ur_vec_axpy(n, (ur_real)0.5, x, y);
    cr_expect(fabs(y[n - 1] - (y0 + 0.5 * x[n - 1])) <= 2 * EPS, "%s axpy", ur_kernel_isa());
    free(x);
    free(y);
    check_sgd();
    check_all_finite();
}

static void check_softmax_all(void) {
    enum { ROWS = 3, COLS = 37 };
    ur_rng r;
    ur_rng_seed(&r, 9);
    ur_real *x = random_values(&r, ROWS * COLS, -10, 10), y[ROWS * COLS], want[ROWS * COLS];
    ur_softmax_rows(ROWS, COLS, x, y);
    ur_softmax_rows_ref(ROWS, COLS, x, want);
    for (int i = 0; i < ROWS * COLS; i++)
        cr_expect(fabs(y[i] - want[i]) <= 1e-5 * want[i] + TINY, "%s softmax at %d: %g vs %g",
                  ur_kernel_isa(), i, (double)y[i], (double)want[i]);
    ur_log_softmax_rows(ROWS, COLS, x, y);
    ur_log_softmax_rows_ref(ROWS, COLS, x, want);
    for (int i = 0; i < ROWS * COLS; i++)
        cr_expect(fabs(y[i] - want[i]) <= 1e-5 * (1 + fabs(want[i])),
                  "%s log_softmax at %d: %g vs %g", ur_kernel_isa(), i, (double)y[i],
                  (double)want[i]);
    free(x);
}

/* The transposed copy the tape keeps of weights: exact on every path. */
static void check_transpose(void) {
    enum { R = 19, C = 23 };
    ur_real src[R * C], dst[C * R];
    for (int i = 0; i < R * C; i++) src[i] = (ur_real)i;
    ur_gemm_transpose(R, C, src, C, dst, R);
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++)
            cr_expect_eq(dst[j * R + i], src[i * C + j], "%s transpose at (%d,%d)", ur_kernel_isa(),
                         i, j);
}

Test(dispatch, every_kernel_on_every_path) {
    unsetenv("UR_KERNELS");
    int ran = 0;
    for (int p = 0; p < N_PATHS; p++) {
        if (ur_kernel_select(PATHS[p]) != UR_OK) continue;
        cr_assert_str_eq(ur_kernel_isa(), PATHS[p]);
        for (int threads = 1; threads <= 2; threads++) {
            ur_set_num_threads(threads);
            check_gemm_all();
        }
        check_vec_all();
        check_softmax_all();
        check_transpose();
        ran++;
    }
    int best_at = 0;
    while (strcmp(PATHS[best_at], expected_best()) != 0) best_at++;
#ifdef UR_KERNELS_NATIVE
    cr_expect_eq(ran, 1);
#else
    cr_expect_eq(ran, N_PATHS - best_at, "every path up to the best one ran");
#endif
}

/* ---- the programs say which path runs ---- */

#ifndef UR_DOUBLE
Test(dispatch, version_flag_names_the_path, .timeout = 30) {
    unsetenv("UR_KERNELS");
    ur_test_result r = ur_test_run(UR_BINARY_DIR "/bin/hello_rnn --version", 0);
    char want[64];
    snprintf(want, sizeof want, "(float), kernels %s\n", expected_best());
    cr_expect_eq(r.code, 0);
    cr_expect(strstr(r.out, "unroll " UR_VERSION) && strstr(r.out, want), "--version: %s", r.out);
    free(r.out);
    r = ur_test_run("UR_KERNELS=portable " UR_BINARY_DIR "/bin/hello_rnn --version", 1);
#ifndef UR_KERNELS_NATIVE
    cr_expect(strstr(r.out, "kernels portable\n"), "UR_KERNELS=portable: %s", r.out);
#endif
    free(r.out);
    r = ur_test_run("UR_KERNELS=avx9 " UR_BINARY_DIR "/bin/hello_rnn --version", 1);
    cr_expect_eq(r.code, 0);
    cr_expect(strstr(r.out, "\"avx9\" (from UR_KERNELS) is not a kernel path") && strstr(r.out, want),
              "a refused UR_KERNELS: %s", r.out);
    free(r.out);
}
#endif
