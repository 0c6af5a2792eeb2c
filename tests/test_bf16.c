/* test_bf16.c - bf16 conversions and ur_gemm_bf16 (tensor/gemm_bf16.c) against
 * the reference ur_gemm_bf16_ref and an exact (double) product.
 *
 * Tolerance. Both paths and the reference round the operands to the same bf16
 * values, and the product of two bf16 values is exact in float, so they add the
 * same k exact terms and differ only by the order of the float sums: a sum of k
 * terms in any order is within (k - 1) u sum |a_p b_p| of the exact sum (u =
 * FLT_EPSILON / 2), two such sums within (k - 1) eps of each other; alpha and beta
 * add a few roundings more. So each result must be within
 *     (k + 2) eps (|alpha| sum_p |a_p b_p| + |beta c|)
 * of the reference, and of the product of the rounded operands in double.
 *
 * ctest runs this file once per kernel path too (test_bf16_avx512, ...: UR_KERNELS
 * set, cmake/kernels.cmake): avx512 reaches the AVX512-BF16 tiles on a CPU that
 * has them, every other path the portable route. avx512bf16_and_portable_agree
 * selects both in one process and is skipped, saying so, on a CPU without
 * AVX512-BF16. test_f64_bf16.c includes this file: the double build refuses the
 * GEMM and keeps the conversions.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "unroll.h"

static float f32_of_bits(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static uint32_t bits_of_f32(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static uint16_t to_bf16(float x) {
    uint16_t h;
    ur_bf16_from_f32(1, &x, &h);
    return h;
}

/* ---- conversions (both builds) ---- */

Test(bf16, every_value_round_trips) {
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t in = (uint16_t)h, back;
        float x;
        ur_f32_from_bf16(1, &in, &x);
        cr_assert_eq(bits_of_f32(x), h << 16, "bf16 %#06x widens to its upper half", h);
        ur_bf16_from_f32(1, &x, &back);
        if (isnan(x)) /* a signalling NaN comes back quiet */
            cr_assert(isnan(f32_of_bits((uint32_t)back << 16)) && (back & 0x8000) == (h & 0x8000),
                      "NaN %#06x stays NaN of the same sign, got %#06x", h, back);
        else
            cr_assert_eq(back, in, "bf16 %#06x comes back as %#06x", h, back);
    }
}

Test(bf16, ties_to_even_and_specials) {
    /* 1 + 2^-8 is half way between 1 and 1 + 2^-7: the even one (1) wins */
    cr_expect_eq(to_bf16(1.0f + 0x1p-8f), 0x3f80);
    cr_expect_eq(to_bf16(-(1.0f + 0x1p-8f)), 0xbf80);
    /* 1 + 3 * 2^-8 is half way between 1 + 2^-7 (odd) and 1 + 2^-6 (even) */
    cr_expect_eq(to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
    cr_expect_eq(to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81); /* above half way */
    cr_expect_eq(to_bf16(1.0f + 0x1p-8f - 0x1p-20f), 0x3f80); /* below */
    cr_expect_eq(to_bf16(INFINITY), 0x7f80);
    cr_expect_eq(to_bf16(-INFINITY), 0xff80);
    cr_expect_eq(to_bf16(FLT_MAX), 0x7f80, "beyond the largest bf16: Inf");
    cr_expect_eq(to_bf16(f32_of_bits(0x7f7f0000)), 0x7f7f, "the largest bf16 stays");
    cr_expect_eq(to_bf16(0x1p-132f), 0x0002, "a denormal is kept");
    cr_expect_eq(to_bf16(-0.0f), 0x8000);
    uint16_t q = to_bf16(NAN), s = to_bf16(f32_of_bits(0xff800001)); /* payload in the low half */
    cr_expect((q & 0x7f80) == 0x7f80 && (q & 0x7f), "NaN stays NaN: %#06x", q);
    cr_expect_eq(s, 0xffc0, "a NaN whose payload is cut off stays a (quiet, negative) NaN");
}

/* Random finite floats against rounding by distance computed in double. */
Test(bf16, nearest_for_random_floats) {
    ur_rng r;
    ur_rng_seed(&r, 5);
    for (int t = 0; t < 200000; t++) {
        uint32_t u = (uint32_t)(ur_rng_uniform(&r) * 4294967296.0);
        float x = f32_of_bits(u);
        if (!isfinite(x)) continue;
        uint32_t lo = u & 0xffff0000u, hi = lo + 0x10000u; /* the bf16 values around x */
        double dl = fabs((double)x - f32_of_bits(lo));
        double dh = fabs((double)x - f32_of_bits(hi));
        if ((hi & 0x7fffffffu) == 0x7f800000u) /* past the largest bf16: Inf stands for 2^128 */
            dh = fabs((double)x - copysign(ldexp(1.0, 128), x));
        uint16_t want = (uint16_t)((dl < dh || (dl == dh && !(lo & 0x10000u)) ? lo : hi) >> 16);
        cr_assert_eq(to_bf16(x), want, "%a (%#010x) gives %#06x, expected %#06x", (double)x, u,
                     to_bf16(x), want);
    }
}

#ifdef UR_DOUBLE

Test(bf16, gemm_refused_in_double_build) {
    ur_real a = 1, b = 2, c = 3;
    cr_expect_eq(ur_gemm_bf16(0, 0, 1, 1, 1, 1, &a, 1, &b, 1, 0, &c, 1), UR_ERR_ARG);
    cr_expect(strstr(ur_last_error(), "ur_gemm_bf16") && strstr(ur_last_error(), "double"),
              "the refusal says why: %s", ur_last_error());
    cr_expect_eq(c, 3, "C untouched");
    cr_expect_str_eq(ur_gemm_bf16_isa(), "none");
}

#else /* the GEMM, float build */

#include "gemm_bf16_internal.h"

/* rows x cols, ld apart (padding filled with NaN: never read), values in [-2, 2)
 * with some near 1 + 2^-8 (ties) and some large and small. */
static float *random_matrix(ur_rng *r, int rows, int cols, int ld) {
    float *x = malloc(sizeof(float) * (size_t)rows * ld + 1);
    cr_assert(x);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < ld; j++) {
            double u = ur_rng_uniform(r);
            float v = (float)(4 * ur_rng_uniform(r) - 2);
            if (u < 0.05) v = 1.0f + 0x1p-8f;
            else if (u < 0.1) v *= 1e3f;
            else if (u < 0.15) v *= 1e-3f;
            x[(size_t)i * ld + j] = j < cols ? v : NAN;
        }
    return x;
}

static double rounded(float x) { return ur__bf16_value(ur__bf16_round(x)); }
static double op_at(const float *X, int ld, int trans, int row, int col) {
    return rounded(trans ? X[(size_t)col * ld + row] : X[(size_t)row * ld + col]);
}

/* Runs ur_gemm_bf16 on one case and checks every element against the reference
 * and the double product of the rounded operands, within the tolerance above. */
static void check_case(ur_rng *r, int ta, int tb, int m, int n, int k, float alpha, float beta,
                       int pad) {
    int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    float *A = random_matrix(r, ta ? k : m, ta ? m : k, lda);
    float *B = random_matrix(r, tb ? n : k, tb ? k : n, ldb);
    float *C = random_matrix(r, m, n, ldc), *R = malloc(sizeof(float) * (size_t)m * ldc + 1);
    cr_assert(R);
    memcpy(R, C, sizeof(float) * (size_t)m * ldc);
    float *C0 = malloc(sizeof(float) * (size_t)m * ldc + 1);
    cr_assert(C0);
    memcpy(C0, C, sizeof(float) * (size_t)m * ldc);
    cr_assert_eq(ur_gemm_bf16(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc), UR_OK,
                 "%s", ur_last_error());
    ur_gemm_bf16_ref(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, R, ldc);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double exact = 0, mag = 0;
            for (int p = 0; p < k; p++) {
                double t = op_at(A, lda, ta, i, p) * op_at(B, ldb, tb, p, j);
                exact += t;
                mag += fabs(t);
            }
            double c0 = C0[(size_t)i * ldc + j];
            exact = alpha * exact + (beta == 0 ? 0 : beta * c0);
            double tol = (k + 2) * FLT_EPSILON * (fabs(alpha) * mag + fabs(beta * c0)) + FLT_MIN;
            double got = C[(size_t)i * ldc + j], ref = R[(size_t)i * ldc + j];
            cr_assert(fabs(got - ref) <= tol && fabs(got - exact) <= tol,
                      "%s path, ta %d tb %d m %d n %d k %d alpha %g beta %g: C[%d][%d] = %.9g, "
                      "reference %.9g, exact %.9g, tolerance %.3g",
                      ur_gemm_bf16_isa(), ta, tb, m, n, k, alpha, beta, i, j, got, ref, exact, tol);
        }
    for (int i = 0; i < m; i++) /* the padding of C is left alone */
        for (int j = n; j < ldc; j++) cr_assert(isnan(C[(size_t)i * ldc + j]));
    free(A), free(B), free(C), free(R), free(C0);
}

/* Sizes on both sides of the tile (12 x 32), task (192 x 128) and depth block
 * (256) edges, odd k included. */
Test(gemm_bf16, every_transpose_and_edge) {
    static const int SIZES[][3] = {{1, 1, 1},    {12, 32, 2},   {13, 33, 3},   {11, 31, 255},
                                   {25, 65, 256}, {7, 129, 257}, {193, 20, 40}, {40, 40, 513}};
    ur_rng r;
    ur_rng_seed(&r, 1);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t s = 0; s < sizeof SIZES / sizeof SIZES[0]; s++)
                check_case(&r, ta, tb, SIZES[s][0], SIZES[s][1], SIZES[s][2], 1, 0, (int)s % 3);
}

/* Every number of rows in the last row panel (1 to 12, and past one panel): the
 * tiles compute only the rows a panel has. */
Test(gemm_bf16, every_row_count_of_the_last_panel) {
    ur_rng r;
    ur_rng_seed(&r, 7);
    for (int m = 1; m <= 25; m++)
        for (int t = 0; t < 4; t++) check_case(&r, t & 1, t >> 1, m, 33, 37, 1, m % 2 ? 0 : 0.5f, m % 3);
}

Test(gemm_bf16, alpha_beta) {
    ur_rng r;
    ur_rng_seed(&r, 2);
    check_case(&r, 0, 0, 30, 70, 300, 0.5f, 1, 1);
    check_case(&r, 1, 1, 30, 70, 77, -2, 0.25f, 0);
    check_case(&r, 0, 1, 50, 35, 9, 1, -1, 2);
    check_case(&r, 1, 0, 14, 100, 600, 0.75f, 0.5f, 0);
}

/* The operands really are rounded: 1 + 2^-9 is 1 in bf16, so a row of k such
 * values times ones sums to k exactly (float would give k (1 + 2^-9)). */
Test(gemm_bf16, operands_rounded_to_bf16) {
    enum { M = 3, N = 40, K = 100 };
    static float A[M * K], B[K * N], C[M * N];
    for (int i = 0; i < M * K; i++) A[i] = 1.0f + 0x1p-9f;
    for (int i = 0; i < K * N; i++) B[i] = 1.0f;
    cr_assert_eq(ur_gemm_bf16(0, 0, M, N, K, 1, A, K, B, N, 0, C, N), UR_OK);
    for (int i = 0; i < M * N; i++) cr_assert_eq(C[i], (float)K, "C[%d] = %.9g", i, C[i]);
}

Test(gemm_bf16, beta_zero_ignores_nan_in_c) {
    float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {1, 0, 0, 1, 1, 1}, C[4] = {NAN, NAN, INFINITY, NAN};
    cr_assert_eq(ur_gemm_bf16(0, 0, 2, 2, 3, 1, A, 3, B, 2, 0, C, 2), UR_OK);
    float want[4] = {4, 5, 10, 11};
    for (int i = 0; i < 4; i++) cr_expect_eq(C[i], want[i], "C[%d] = %g", i, C[i]);
}

Test(gemm_bf16, empty_and_bad_arguments) {
    float A[4] = {1, 2, 3, 4}, B[4] = {1, 2, 3, 4}, C[4] = {1, 2, 3, 4};
    cr_expect_eq(ur_gemm_bf16(0, 0, 2, 2, 0, 1, A, 2, B, 2, 2, C, 2), UR_OK); /* k = 0: C *= beta */
    cr_expect(C[0] == 2 && C[3] == 8);
    cr_expect_eq(ur_gemm_bf16(0, 0, 0, 2, 2, 1, A, 2, B, 2, 0, C, 2), UR_OK);
    cr_expect(C[0] == 2, "m = 0 leaves C alone");
    cr_expect_eq(ur_gemm_bf16(0, 0, -1, 2, 2, 1, A, 2, B, 2, 0, C, 2), UR_ERR_ARG);
    cr_expect(strstr(ur_last_error(), "ur_gemm_bf16") && strstr(ur_last_error(), "m = -1"), "%s",
              ur_last_error());
    cr_expect_eq(ur_gemm_bf16(0, 0, 2, 2, 2, 1, A, 1, B, 2, 0, C, 2), UR_ERR_ARG);
    cr_expect(strstr(ur_last_error(), "lda = 1, expected >= 2"), "%s", ur_last_error());
    cr_expect_eq(ur_gemm_bf16(0, 1, 2, 2, 3, 1, A, 3, B, 2, 0, C, 2), UR_ERR_ARG);
    cr_expect(strstr(ur_last_error(), "ldb = 2, expected >= 3"), "%s", ur_last_error());
    cr_expect_eq(ur_gemm_bf16(0, 0, 2, 2, 2, 1, A, 2, NULL, 2, 0, C, 2), UR_ERR_ARG);
    cr_expect(strstr(ur_last_error(), "NULL B"), "%s", ur_last_error());
    cr_expect(C[0] == 2 && C[3] == 8, "refused calls leave C alone");
}

static float *run_threads(int threads, int ta, int tb, int m, int n, int k) {
    ur_set_num_threads(threads);
    ur_rng r;
    ur_rng_seed(&r, 3);
    float *A = random_matrix(&r, ta ? k : m, ta ? m : k, ta ? m : k);
    float *B = random_matrix(&r, tb ? n : k, tb ? k : n, tb ? k : n);
    float *C = random_matrix(&r, m, n, n);
    cr_assert_eq(ur_gemm_bf16(ta, tb, m, n, k, 0.5f, A, ta ? m : k, B, tb ? k : n, 1, C, n), UR_OK);
    free(A), free(B);
    return C;
}

Test(gemm_bf16, bit_identical_for_1_and_2_threads) {
    setenv("UR_GEMM_STALL_GUARD", "0", 1); /* really use the threads, even on a busy machine */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int m = 230, n = 150, k = 517;
            float *one = run_threads(1, ta, tb, m, n, k), *two = run_threads(2, ta, tb, m, n, k);
            size_t diff = 0;
            for (int i = 0; i < m * n; i++) diff += memcmp(&one[i], &two[i], sizeof(float)) != 0;
            cr_expect_eq(diff, 0, "%s path, ta %d tb %d: %zu elements differ", ur_gemm_bf16_isa(),
                         ta, tb, diff);
            free(one), free(two);
        }
    ur_set_num_threads(0);
}

Test(gemm_bf16, allocation_failure_reported) {
    ur_rng r;
    ur_rng_seed(&r, 4);
    float *A = random_matrix(&r, 40, 50, 50), *B = random_matrix(&r, 50, 60, 60);
    float C[40 * 60];
    for (int i = 0; i < 40 * 60; i++) C[i] = 7;
    ur_kernel_free_buffers(); /* the packing buffers must be allocated again */
    ur_test_fail_alloc_begin(1, 1);
    ur_status s = ur_gemm_bf16(0, 0, 40, 60, 50, 1, A, 50, B, 60, 0, C, 60);
    ur_test_alloc_count n = ur_test_fail_alloc_end();
    cr_expect_eq(s, UR_ERR_NOMEM);
    cr_expect(strstr(ur_last_error(), "ur_gemm_bf16") && strstr(ur_last_error(), "memory"), "%s",
              ur_last_error());
    cr_expect_eq(n.live, 0, "nothing leaked");
    cr_expect_eq(C[0], 7, "C untouched");
    cr_expect_eq(ur_gemm_bf16(0, 0, 40, 60, 50, 1, A, 50, B, 60, 0, C, 60), UR_OK);
    free(A), free(B);
    ur_kernel_free_buffers();
}

/* ---- the paths ---- */

static int have_avx512(void) {
#if defined(UR_KERNELS_BF16) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
#else
    return 0;
#endif
}

static int have_avx512bf16(void) {
    if (!have_avx512()) return 0;
#if defined(UR_KERNELS_BF16) && (defined(__x86_64__) || defined(__i386__))
    return __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

/* The bf16 path follows the kernel path: under avx512 amx where the CPU has AMX-BF16
 * (and Linux grants the tile state), else avx512bf16 where the CPU has it, else
 * portable; with UR_KERNELS set (the ctest entries per path) the path it names,
 * unless this CPU lacks it. */
Test(gemm_bf16, path_follows_kernel_path) {
    const char *isa = ur_kernel_isa(), *bf = ur_gemm_bf16_isa();
    int avx512 = !strcmp(isa, "avx512");
    const char *expect = avx512 && ur__amx_status() == 1 ? "amx" : avx512 && have_avx512bf16() ? "avx512bf16" : "portable";
    cr_expect_str_eq(bf, expect, "kernel path %s", isa);
    const char *want = getenv("UR_KERNELS");
    if (want && want[0] && strcmp(isa, want) != 0)
        cr_skip_test("this CPU or build has no %s kernels: the %s path was tested", want, bf);
    if (avx512 && !strcmp(bf, "portable"))
        cr_skip_test("this CPU lacks AVX512-BF16 and AMX-BF16 (or the build has no bf16 kernel): "
                     "the portable bf16 path was tested");
}

/* Runs the tests above on `kern` (NULL: the portable route), then compares it with
 * the portable route on one product, within twice the tolerance. */
static void kernel_against_portable(const ur_bf16_kernel *kern, const char *name) {
    enum { M = 61, N = 97, K = 389 };
    ur_rng r;
    ur_rng_seed(&r, 6);
    float *A = random_matrix(&r, K, M, M), *B = random_matrix(&r, N, K, K);
    float *C[2];
    for (int path = 0; path < 2; path++) {
        ur__gemm_bf16_use(path ? NULL : kern, 1);
        cr_assert_str_eq(ur_gemm_bf16_isa(), path ? "portable" : name);
        check_case(&r, path, 1 - path, 37, 45, 301, 1, 0.5f, 1);
        C[path] = malloc(sizeof(float) * M * N);
        cr_assert(C[path]);
        cr_assert_eq(ur_gemm_bf16(1, 1, M, N, K, 1, A, M, B, K, 0, C[path], N), UR_OK);
    }
    ur__gemm_bf16_use(NULL, 0);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double mag = 0;
            for (int p = 0; p < K; p++)
                mag += fabs(op_at(A, M, 1, i, p) * op_at(B, K, 1, p, j));
            double d = fabs((double)C[0][i * N + j] - C[1][i * N + j]);
            cr_assert(d <= 2 * (K + 2) * FLT_EPSILON * mag + FLT_MIN,
                      "C[%d][%d]: %s %.9g, portable %.9g", i, j, name, C[0][i * N + j],
                      C[1][i * N + j]);
        }
    free(A), free(B), free(C[0]), free(C[1]);
}

Test(gemm_bf16, avx512bf16_and_portable_agree) {
    if (!have_avx512bf16())
        cr_skip_test("this CPU lacks AVX512-BF16 (or the build has no bf16 kernel): only the "
                     "portable bf16 path is tested here");
    kernel_against_portable(&ur__gemm_bf16_avx512bf16, "avx512bf16");
}

#ifdef UR_KERNELS_AMX
Test(gemm_bf16, amx_and_portable_agree) {
    cr_assert_neq(ur__amx_status(), -2, "this CPU has AMX-BF16, but the AMX tiles failed the "
                                        "check of their first product (tensor/dispatch.c)");
    if (ur__amx_status() != 1)
        cr_skip_test("this CPU has no AMX-BF16 (or Linux did not grant the tile state): the AMX "
                     "tiles are tested with their instructions emulated (amx_emulated::*)");
    kernel_against_portable(&ur__gemm_bf16_amx, "amx");
}
#endif

#ifdef UR_TEST_AMX_EMULATED
/* ---- the AMX tiles, their instructions carried out in C ----
 * The packing, the addressing of the tiles and the edges of the AMX kernel, on any
 * CPU with AVX-512 (its packing uses it); only the tile instructions themselves
 * are not the CPU's. */

static void use_emulated_amx(void) {
    if (!have_avx512())
        cr_skip_test("this CPU lacks AVX-512: the AMX kernel's packing needs it");
    ur__gemm_bf16_use(&ur__gemm_bf16_amx_emulated, 1);
    cr_assert_str_eq(ur_gemm_bf16_isa(), "amx");
}

/* Sizes on both sides of the tile (16 rows, 16 pairs = 32 k), the block (32 x 32),
 * a block of at most 16 rows, the task (MB x NB panels), odd k. */
Test(amx_emulated, every_transpose_and_edge) {
    static const int SIZES[][3] = {{1, 1, 1},     {16, 16, 32},  {17, 33, 33},  {32, 32, 64},
                                   {33, 31, 31},  {15, 65, 95},  {40, 40, 513}, {64, 7, 2},
                                   {520, 20, 40}, {3, 140, 100}};
    use_emulated_amx();
    ur_rng r;
    ur_rng_seed(&r, 11);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t s = 0; s < sizeof SIZES / sizeof SIZES[0]; s++)
                check_case(&r, ta, tb, SIZES[s][0], SIZES[s][1], SIZES[s][2], 1, 0, (int)s % 3);
    ur__gemm_bf16_use(NULL, 0);
}

Test(amx_emulated, alpha_beta) {
    use_emulated_amx();
    ur_rng r;
    ur_rng_seed(&r, 12);
    check_case(&r, 0, 0, 30, 70, 300, 0.5f, 1, 1);
    check_case(&r, 1, 1, 30, 70, 77, -2, 0.25f, 0);
    check_case(&r, 0, 1, 50, 35, 9, 1, -1, 2);
    ur__gemm_bf16_use(NULL, 0);
}

Test(amx_emulated, agrees_with_portable) {
    use_emulated_amx();
    kernel_against_portable(&ur__gemm_bf16_amx_emulated, "amx");
}

Test(amx_emulated, bit_identical_for_1_and_2_threads) {
    use_emulated_amx();
    setenv("UR_GEMM_STALL_GUARD", "0", 1);
    int m = 70, n = 150, k = 133;
    float *one = run_threads(1, 1, 0, m, n, k), *two = run_threads(2, 1, 0, m, n, k);
    cr_expect_eq(memcmp(one, two, sizeof(float) * (size_t)m * n), 0, "1 and 2 threads differ");
    free(one), free(two);
    ur_set_num_threads(0);
    ur__gemm_bf16_use(NULL, 0);
}

/* The pairs past k are zero in both packed operands: a product of NaNs first
 * leaves NaN words in the pooled packing buffers, then products whose depth ends
 * inside a tile (k = 45: 23 pairs of 32) must not pick any of them up. */
Test(amx_emulated, padding_is_zero) {
    use_emulated_amx();
    ur_set_num_threads(1);
    enum { M = 64, N = 64 };
    float *X = malloc(sizeof(float) * M * M), *C = malloc(sizeof(float) * M * N);
    cr_assert(X && C);
    ur_rng r;
    ur_rng_seed(&r, 14);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            for (int i = 0; i < M * M; i++) X[i] = NAN;
            cr_assert_eq(ur_gemm_bf16(0, 0, M, N, M, 1, X, M, X, N, 0, C, N), UR_OK);
            cr_assert(isnan(C[0]));
            check_case(&r, ta, tb, M, N, 45, 1, 0, 0);
        }
    free(X), free(C);
    ur_set_num_threads(0);
    ur__gemm_bf16_use(NULL, 0);
}

/* Every number of rows in the last row panel (1 to 32, and past one panel), after
 * a product that leaves NaNs in the pooled packing buffers: the tiles of a short
 * panel are configured with its rows, so they multiply m x 32 pairs per column
 * panel and depth pair, and never the unwritten rows past m. */
Test(amx_emulated, every_row_count_of_the_last_panel) {
    use_emulated_amx();
    ur_set_num_threads(1);
    enum { N = 33, K = 37, DEPTH = 32, COL_PANELS = 2 }; /* 19 pairs padded to 32; 33 columns: 2 panels */
    float *X = malloc(sizeof(float) * 64 * 64), *C = malloc(sizeof(float) * 64 * 64);
    cr_assert(X && C);
    for (int i = 0; i < 64 * 64; i++) X[i] = NAN;
    ur_rng r;
    ur_rng_seed(&r, 15);
    for (int m = 1; m <= 40; m++)
        for (int t = 0; t < 4; t++) {
            cr_assert_eq(ur_gemm_bf16(0, 0, 64, 64, 64, 1, X, 64, X, 64, 0, C, 64), UR_OK);
            size_t before = ur__amx_emulated_pair_products();
            check_case(&r, t & 1, t >> 1, m, N, K, 1, m % 2 ? 0 : 0.5f, m % 3);
            size_t ran = ur__amx_emulated_pair_products() - before;
            cr_expect_eq(ran, (size_t)m * 32 * DEPTH * COL_PANELS, "m = %d: %zu pair products", m, ran);
        }
    free(X), free(C);
    ur_set_num_threads(0);
    ur__gemm_bf16_use(NULL, 0);
}

/* The check dispatch.c runs on the AMX tiles before their first use passes for
 * the emulated tiles and the AVX512-BF16 ones, and fails for tiles that lose a
 * part of the sums. */
static void tiles_without_last_block(const ur_bf16_job *g, int ip0, int ip1, int jp0, int jp1) {
    if (ip1 - ip0 > 1) ip1--;
    ur__gemm_bf16_amx_emulated.tiles(g, ip0, ip1, jp0, jp1);
}

Test(amx_emulated, first_use_check) {
    use_emulated_amx();
    ur__gemm_bf16_use(NULL, 0);
    cr_expect(ur__bf16_kernel_check(&ur__gemm_bf16_amx_emulated));
    if (have_avx512bf16()) cr_expect(ur__bf16_kernel_check(&ur__gemm_bf16_avx512bf16));
    ur_bf16_kernel broken = ur__gemm_bf16_amx_emulated;
    broken.tiles = tiles_without_last_block;
    cr_expect(!ur__bf16_kernel_check(&broken));
    ur_bf16_kernel shallow = ur__gemm_bf16_amx_emulated;
    shallow.pair_block = 1; /* packs 18 pairs, the tiles read 16 at a time: the last 2 are lost */
    cr_expect(!ur__bf16_kernel_check(&shallow));
}

/* A right operand packed once (a weight) gives the bits of the product that packs it. */
Test(amx_emulated, packed_b_same_bits) {
    use_emulated_amx();
    enum { M = 45, N = 70, K = 91 };
    ur_rng r;
    ur_rng_seed(&r, 13);
    float *A = random_matrix(&r, M, K, K), *B = random_matrix(&r, N, K, K);
    float *C1 = random_matrix(&r, M, N, N), *C2 = malloc(sizeof(float) * M * N);
    cr_assert(C2);
    memcpy(C2, C1, sizeof(float) * M * N);
    uint32_t *words = malloc(ur__bf16_packed_words(N, K) * sizeof *words);
    cr_assert(words);
    ur_bf16_packed pb;
    ur__bf16_pack(&pb, 1, B, K, N, K, words);
    cr_assert_eq(ur__gemm_bf16_packed(0, M, A, K, &pb, 0.5f, C1, N), UR_OK);
    cr_assert_eq(ur_gemm_bf16(0, 1, M, N, K, 1, A, K, B, K, 0.5f, C2, N), UR_OK);
    cr_expect_eq(memcmp(C1, C2, sizeof(float) * M * N), 0, "packed and unpacked B differ");
    free(A), free(B), free(C1), free(C2), free(words);
    ur__gemm_bf16_use(NULL, 0);
}
#endif

#endif
