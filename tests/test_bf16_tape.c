/* test_bf16_tape.c - mixed-precision tapes (ur_tape_set_precision): matmul and
 * linear in UR_PRECISION_BF16, forward and backward, against a reference that
 * rounds the operands to bf16 and sums in double; 1 and 2 threads bit for bit;
 * a small LSTM trained in bf16 next to the same one in f32.
 *
 * Tolerance. Every product of two bf16 values is exact in float, so a bf16 GEMM
 * adds k exact terms in float in some order: within (k - 1) u sum_p |a_p b_p| of
 * the exact sum (u = FLT_EPSILON / 2). Adding an old value c (beta = 1, a bias)
 * is one rounding more. So each element must lie within
 *     (k + 2) FLT_EPSILON (sum_p |a_p b_p| + |c|)
 * of the double sum of the rounded operands. The same elements computed from the
 * unrounded operands differ from it by about 2^-8 of |a_p b_p|, far outside that
 * bound: each check also asserts that the plain float product would have failed.
 *
 * test_f64_bf16_tape.c includes this file: the double build refuses BF16.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "unroll.h"

Test(bf16_tape, precision_setting) {
    ur_tape *t = ur_tape_new();
    cr_assert(t);
    cr_assert_eq(ur_tape_precision(t), UR_PRECISION_F32, "a new tape computes in f32");
    cr_assert_eq(ur_tape_precision(NULL), UR_PRECISION_F32);
    cr_assert_eq(ur_tape_set_precision(NULL, UR_PRECISION_F32), UR_ERR_ARG);
    cr_assert_eq(ur_tape_set_precision(t, (ur_precision)7), UR_ERR_ARG);
    cr_assert(strstr(ur_tape_errmsg(t), "ur_tape_set_precision: precision 7"), "%s", ur_tape_errmsg(t));
    ur_tape_reset(t);
    cr_assert_eq(ur_tape_set_precision(t, UR_PRECISION_F32), UR_OK);
    ur_tape_free(t);
}

#ifdef UR_DOUBLE

/* The double build refuses BF16 as the tape's sticky error; F32 keeps working. */
Test(bf16_tape, refused_in_double_build) {
    ur_tape *t = ur_tape_new();
    cr_assert(t);
    cr_assert_eq(ur_tape_set_precision(t, UR_PRECISION_BF16), UR_ERR_ARG);
    cr_assert_eq(ur_tape_error(t), UR_ERR_ARG);
    cr_assert(strstr(ur_tape_errmsg(t), "ur_tape_set_precision: UR_PRECISION_BF16 needs the float"),
              "%s", ur_tape_errmsg(t));
    cr_assert_eq(ur_tape_precision(t), UR_PRECISION_F32);
    cr_assert_null(ur_scalar(t, 1), "later ops on the tape are refused");
    ur_tape_reset(t);
    ur_real a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8};
    int d[2] = {2, 2};
    ur_node *y = ur_matmul(t, ur_input_data(t, 2, d, a), ur_input_data(t, 2, d, b), 0, 0);
    cr_assert(y, "%s", ur_tape_errmsg(t));
    cr_assert_eq(ur_node_cdata(y)[0], 19, "after a reset: exact double products");
    cr_assert_eq(ur_node_cdata(y)[3], 50);
    ur_tape_free(t);
}

#else

static float bf(float x) {
    uint16_t h;
    ur_bf16_from_f32(1, &x, &h);
    ur_f32_from_bf16(1, &h, &x);
    return x;
}

static void fill(ur_rng *r, float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(ur_rng_uniform(r) * 2 - 1);
}

/* X (rows x cols) transposed into a new array (cols x rows). */
static float *transposed(const float *X, int rows, int cols) {
    float *y = malloc((size_t)rows * cols * sizeof *y);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) y[(size_t)j * rows + i] = X[(size_t)i * cols + j];
    return y;
}

/* got (m x n) against c + X Y with X (m x k) and Y (k x n) rounded to bf16 (c:
 * one row of n added to every row, or NULL), within the bound above. Returns 1
 * when the plain float product (operands not rounded) breaks that bound somewhere. */
static int check_product(const char *what, int m, int n, int k, const float *X, const float *Y,
                         const float *c, const float *got) {
    int plain_fails = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double ci = c ? c[j] : 0, sum = ci, plain = ci, mag = fabs(ci);
            for (int p = 0; p < k; p++) {
                double a = X[(size_t)i * k + p], b = Y[(size_t)p * n + j];
                sum += (double)bf((float)a) * bf((float)b);
                plain += a * b;
                mag += fabs((double)bf((float)a) * bf((float)b));
            }
            double tol = (k + 2) * FLT_EPSILON * mag, g = got[(size_t)i * n + j];
            cr_assert(fabs(g - sum) <= tol, "%s[%d][%d] = %.9g, bf16 reference %.9g (tolerance %.3g)",
                      what, i, j, g, sum, tol);
            plain_fails |= fabs(plain - sum) > tol;
        }
    return plain_fails;
}

/* loss = sum(y * R): dL/dy = R exactly, so every gradient is one GEMM with G = R. */
static ur_node *dot_loss(ur_tape *t, ur_node *y, const float *R) {
    int d[2] = {ur_node_dim(y, 0), ur_node_dim(y, 1)};
    return ur_sum(t, ur_mul(t, y, ur_input_data(t, 2, d, R)));
}

/* y = op(a) op(b) for every transpose pair, op(a) (m,k), op(b) (k,n). */
static void check_matmul(void) {
    enum { M = 7, N = 37, K = 45 };
    ur_rng r;
    ur_rng_seed(&r, 11);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            ur_paramset *ps = ur_paramset_new();
            ur_param *a = ur_test_param(ps, "a", 2, ta ? K : M, ta ? M : K);
            ur_param *b = ur_test_param(ps, "b", 2, tb ? N : K, tb ? K : N);
            float *R = malloc(M * N * sizeof *R);
            fill(&r, a->value.data, M * K);
            fill(&r, b->value.data, K * N);
            fill(&r, R, M * N);
            ur_tape *t = ur_tape_new();
            cr_assert_eq(ur_tape_set_precision(t, UR_PRECISION_BF16), UR_OK);
            ur_node *y = ur_matmul(t, ur_param_node(t, a), ur_param_node(t, b), ta, tb);
            cr_assert_eq(ur_backward(t, dot_loss(t, y, R)), UR_OK, "%s", ur_tape_errmsg(t));
            /* dense op(a), op(b), and the gradients in the same orientation */
            float *A = ta ? transposed(a->value.data, K, M) : a->value.data;
            float *B = tb ? transposed(b->value.data, N, K) : b->value.data;
            float *BT = transposed(B, K, N), *AT = transposed(A, M, K);
            float *dA = ta ? transposed(a->grad.data, K, M) : a->grad.data;
            float *dB = tb ? transposed(b->grad.data, N, K) : b->grad.data;
            int plain = check_product("y", M, N, K, A, B, NULL, ur_node_cdata(y));
            plain &= check_product("dop(a)", M, K, N, R, BT, NULL, dA); /* G op(b)^T */
            plain &= check_product("dop(b)", K, N, M, AT, R, NULL, dB); /* op(a)^T G */
            cr_assert(plain, "matmul ta=%d tb=%d: f32 products would pass the bf16 check", ta, tb);
            if (ta) free(A), free(dA);
            if (tb) free(B), free(dB);
            free(AT), free(BT), free(R);
            ur_tape_free(t);
            ur_paramset_free(ps);
        }
}

/* y = x W + b. */
static void check_linear(void) {
    enum { N = 9, K = 70, M = 33 };
    ur_rng r;
    ur_rng_seed(&r, 12);
    ur_paramset *ps = ur_paramset_new();
    ur_param *x = ur_test_param(ps, "x", 2, N, K), *W = ur_test_param(ps, "W", 2, K, M);
    ur_param *b = ur_test_param(ps, "b", 1, M, 1);
    float R[N * M];
    fill(&r, x->value.data, N * K);
    fill(&r, W->value.data, K * M);
    fill(&r, b->value.data, M);
    fill(&r, R, N * M);
    ur_tape *t = ur_tape_new();
    cr_assert_eq(ur_tape_set_precision(t, UR_PRECISION_BF16), UR_OK);
    ur_node *y = ur_linear(t, ur_param_node(t, x), ur_param_node(t, W), ur_param_node(t, b));
    cr_assert_eq(ur_backward(t, dot_loss(t, y, R)), UR_OK, "%s", ur_tape_errmsg(t));
    float *WT = transposed(W->value.data, K, M), *xT = transposed(x->value.data, N, K);
    int plain = check_product("y", N, M, K, x->value.data, W->value.data, b->value.data, ur_node_cdata(y));
    plain &= check_product("dx", N, K, M, R, WT, NULL, x->grad.data);
    plain &= check_product("dW", K, M, N, xT, R, NULL, W->grad.data);
    cr_assert(plain, "linear: f32 products would pass the bf16 check");
    for (int j = 0; j < M; j++) { /* the bias gradient stays a float sum */
        double s = 0;
        for (int i = 0; i < N; i++) s += R[i * M + j];
        cr_assert_float_eq(b->grad.data[j], s, 1e-5);
    }
    free(WT), free(xT);
    ur_tape_free(t);
    ur_paramset_free(ps);
}

Test(bf16_tape, matmul_and_linear_match_bf16_reference) {
    check_matmul();
    check_linear();
}

/* Each dispatch path of ur_gemm_bf16 in turn (the AVX512-BF16 one where the CPU
 * has it, and the portable one), same checks. */
Test(bf16_tape, every_bf16_path) {
    const char *paths[] = {"avx512", "portable"};
    for (int i = 0; i < 2; i++) {
        if (ur_kernel_select(paths[i]) != UR_OK) {
            cr_log_info("kernel path %s not on this CPU: skipped", paths[i]);
            continue;
        }
        check_matmul();
        check_linear();
    }
    ur_kernel_select(NULL);
}

/* A weight shared by S products, as in a recurrent layer: the backward plan
 * defers and batches its dW and reads a stored W^T for dx. Both must be bf16
 * products, plan on and off. */
static void check_shared_weight(void) {
    enum { S = 3, N = 8, K = 40, M = 24 };
    ur_rng r;
    ur_rng_seed(&r, 13);
    for (int plan = 1; plan >= 0; plan--) {
        ur_paramset *ps = ur_paramset_new();
        ur_param *W = ur_test_param(ps, "W", 2, K, M), *x[S];
        float R[S * N * M], X[S * N * K];
        fill(&r, W->value.data, K * M);
        fill(&r, R, S * N * M);
        ur_tape *t = ur_tape_new();
        ur_tape_set_backward_plan(t, plan);
        cr_assert_eq(ur_tape_set_precision(t, UR_PRECISION_BF16), UR_OK);
        ur_node *loss = NULL, *ys[S];
        for (int s = 0; s < S; s++) {
            char name[8] = {'x', (char)('0' + s), 0};
            x[s] = ur_test_param(ps, name, 2, N, K);
            fill(&r, x[s]->value.data, N * K);
            memcpy(X + s * N * K, x[s]->value.data, N * K * sizeof *X);
            ur_node *y = ys[s] = ur_linear(t, ur_param_node(t, x[s]), ur_param_node(t, W), NULL);
            ur_node *l = dot_loss(t, y, R + s * N * M);
            loss = loss ? ur_add(t, loss, l) : l;
        }
        cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
        float *WT = transposed(W->value.data, K, M), *XT = transposed(X, S * N, K);
        int plain = check_product("dW", K, M, S * N, XT, R, NULL, W->grad.data);
        for (int s = 0; s < S; s++) plain &= check_product("dx", N, K, M, R + s * N * M, WT, NULL, x[s]->grad.data);
        cr_assert(plain, "plan %d: f32 products would pass the bf16 check", plan);
        /* from its second use on W and W^T are packed once (gemm_precision.c): the
         * same bits as ur_gemm_bf16 packing them at each product */
        for (int s = 0; s < S; s++) {
            float y[N * M], dx[N * K];
            ur_gemm_bf16(0, 0, N, M, K, 1, x[s]->value.data, K, W->value.data, M, 0, y, M);
            ur_gemm_bf16(0, 1, N, K, M, 1, R + s * N * M, M, W->value.data, M, 0, dx, K);
            cr_assert_eq(memcmp(y, ur_node_cdata(ys[s]), sizeof y), 0, "y_%d: not the bits of ur_gemm_bf16", s);
            cr_assert_eq(memcmp(dx, x[s]->grad.data, sizeof dx), 0, "dx_%d: not the bits of ur_gemm_bf16", s);
        }
        free(WT), free(XT);
        ur_tape_free(t);
        ur_paramset_free(ps);
    }
}

Test(bf16_tape, shared_weight_through_the_plan) {
    const char *paths[] = {"avx512", "portable"};
    for (int i = 0; i < 2; i++)
        if (ur_kernel_select(paths[i]) == UR_OK) check_shared_weight();
    ur_kernel_select(NULL);
    check_shared_weight();
}

/* A weight packed on a recording is packed afresh after ur_backward: an optimizer
 * step between backward and more ops on the same recording is seen. */
Test(bf16_tape, packing_renewed_after_backward) {
    enum { N = 4, K = 20, M = 12 };
    ur_rng r;
    ur_rng_seed(&r, 14);
    ur_paramset *ps = ur_paramset_new();
    ur_param *x = ur_test_param(ps, "x", 2, N, K), *W = ur_test_param(ps, "W", 2, K, M);
    fill(&r, x->value.data, N * K);
    fill(&r, W->value.data, K * M);
    ur_tape *t = ur_tape_new();
    cr_assert_eq(ur_tape_set_precision(t, UR_PRECISION_BF16), UR_OK);
    ur_node *xn = ur_param_node(t, x), *Wn = ur_param_node(t, W);
    ur_node *y = ur_add(t, ur_linear(t, xn, Wn, NULL), ur_linear(t, xn, Wn, NULL)); /* W packed */
    cr_assert_eq(ur_backward(t, ur_sum(t, y)), UR_OK, "%s", ur_tape_errmsg(t));
    for (int i = 0; i < K * M; i++) W->value.data[i] *= -3; /* an "optimizer step" */
    ur_node *y1 = ur_linear(t, xn, Wn, NULL), *y2 = ur_linear(t, xn, Wn, NULL);
    float want[N * M];
    ur_gemm_bf16(0, 0, N, M, K, 1, x->value.data, K, W->value.data, M, 0, want, M);
    cr_assert_eq(memcmp(want, ur_node_cdata(y1), sizeof want), 0, "first use after the step");
    cr_assert_eq(memcmp(want, ur_node_cdata(y2), sizeof want), 0, "packed again after the step");
    ur_tape_free(t);
    ur_paramset_free(ps);
}

/* ---- a small LSTM language model, trained ---- */

typedef struct lstm_lm {
    ur_paramset *ps;
    ur_rnn *rnn;
    ur_param *E, *Wo, *bo;
    int T, B, V;
    int *ids, *targets; /* (T, B) each */
} lstm_lm;

static void lm_make(lstm_lm *m, int T, int B, int V, int D, int H) {
    ur_rng r;
    ur_rng_seed(&r, 5);
    *m = (lstm_lm){ur_paramset_new(), NULL, NULL, NULL, NULL, T, B, V, NULL, NULL};
    ur_rnn_config cfg = ur_rnn_defaults(UR_RNN_LSTM, D, H);
    cfg.seed = 3;
    m->rnn = ur_rnn_new(m->ps, "lstm", &cfg);
    m->E = ur_test_param(m->ps, "E", 2, V, D);
    m->Wo = ur_test_param(m->ps, "Wo", 2, H, V);
    m->bo = ur_test_param(m->ps, "bo", 1, V, 1);
    cr_assert(m->rnn);
    cr_assert_eq(ur_init_uniform(&m->E->value, &r, 0.5), UR_OK);
    cr_assert_eq(ur_init_uniform(&m->Wo->value, &r, 0.2), UR_OK);
    m->ids = malloc((size_t)T * B * sizeof *m->ids);
    m->targets = malloc((size_t)T * B * sizeof *m->targets);
    for (int i = 0; i < T * B; i++) m->ids[i] = (int)ur_rng_below(&r, (uint32_t)V);
    for (int i = 0; i < T * B; i++) m->targets[i] = m->ids[i > B ? i - B - 1 : i] % V; /* learnable */
}

static void lm_free(lstm_lm *m) {
    ur_rnn_free(m->rnn);
    ur_paramset_free(m->ps);
    free(m->ids);
    free(m->targets);
}

static ur_node *lm_loss(ur_tape *t, lstm_lm *m) {
    int d3[3] = {m->T, m->B, ur_node_dim(ur_param_node(t, m->E), 1)};
    int d2[2] = {m->T * m->B, ur_rnn_output_size(m->rnn)};
    ur_node *x = ur_reshape(t, ur_gather(t, ur_param_node(t, m->E), m->ids, m->T * m->B), 3, d3);
    ur_node *h = ur_reshape(t, ur_rnn_forward(m->rnn, t, x, NULL, NULL), 2, d2);
    ur_node *logits = ur_linear(t, h, ur_param_node(t, m->Wo), ur_param_node(t, m->bo));
    return ur_cross_entropy(t, logits, m->targets, NULL);
}

/* Trains `steps` Adam steps in precision p; the losses go to losses[]. */
static void lm_train(lstm_lm *m, ur_precision p, int steps, double *losses) {
    ur_optim_config oc = ur_optim_defaults(UR_OPTIM_ADAM, 2e-2);
    ur_optim *opt = ur_optim_new(m->ps, &oc);
    ur_tape *t = ur_tape_new();
    cr_assert(opt && t);
    cr_assert_eq(ur_tape_set_precision(t, p), UR_OK);
    for (int s = 0; s < steps; s++) {
        ur_tape_reset(t);
        ur_optim_zero_grad(opt);
        ur_node *loss = lm_loss(t, m);
        cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
        losses[s] = ur_node_item(loss);
        cr_assert_eq(ur_optim_step(opt), UR_OK);
    }
    cr_assert_eq(ur_tape_precision(t), p, "the precision outlives the resets");
    ur_tape_free(t);
    ur_optim_free(opt);
}

/* bf16 training follows f32 training: losses within 1% of each other at every step
 * (the operands' relative rounding is 2^-9), both falling, and not the same bits
 * (the bf16 products did run). */
Test(bf16_tape, lstm_training_tracks_f32, .timeout = 120) {
    enum { STEPS = 30 };
    double l32[STEPS], l16[STEPS];
    lstm_lm a, b;
    lm_make(&a, 8, 16, 24, 16, 32);
    lm_make(&b, 8, 16, 24, 16, 32);
    lm_train(&a, UR_PRECISION_F32, STEPS, l32);
    lm_train(&b, UR_PRECISION_BF16, STEPS, l16);
    cr_assert_neq(l32[0], l16[0], "the first loss differs: bf16 operands were used");
    for (int s = 0; s < STEPS; s++)
        cr_assert(fabs(l16[s] - l32[s]) <= 0.01 * l32[s], "step %d: bf16 loss %.6f, f32 %.6f", s, l16[s],
                  l32[s]);
    cr_assert(l16[STEPS - 1] < 0.7 * l16[0], "bf16 training learns: %.4f -> %.4f", l16[0], l16[STEPS - 1]);
    lm_free(&a);
    lm_free(&b);
}

/* In bf16, as in f32, 1 and 2 threads give the same bits: sizes large enough that
 * the GEMMs run on 2 threads. */
Test(bf16_tape, same_bits_on_1_and_2_threads, .timeout = 120) {
    setenv("UR_GEMM_STALL_GUARD", "0", 1); /* really use 2 threads on a busy machine */
    enum { STEPS = 3 };
    double l1[STEPS], l2[STEPS];
    lstm_lm a, b;
    lm_make(&a, 4, 64, 96, 64, 128);
    lm_make(&b, 4, 64, 96, 64, 128);
    ur_set_num_threads(1);
    lm_train(&a, UR_PRECISION_BF16, STEPS, l1);
    ur_set_num_threads(2);
    lm_train(&b, UR_PRECISION_BF16, STEPS, l2);
    ur_set_num_threads(0);
    for (int s = 0; s < STEPS; s++) cr_assert_eq(l1[s], l2[s], "step %d: %.9g vs %.9g", s, l1[s], l2[s]);
    for (int i = 0; i < ur_paramset_count(a.ps); i++) {
        const ur_param *p = ur_paramset_get(a.ps, i), *q = ur_paramset_get(b.ps, i);
        cr_assert_eq(memcmp(p->value.data, q->value.data, p->value.size * sizeof(float)), 0,
                     "%s differs between 1 and 2 threads", p->name);
    }
    lm_free(&a);
    lm_free(&b);
}

/* ---- --precision in the programs ---- */

#define CHAR_RNN UR_BINARY_DIR "/bin/char_rnn --threads 1 --hidden 64 --embed 16 --batch 16 --bptt 32 --val-chars 4000"

/* char_rnn trains in bf16 close to f32; its checkpoint loads into an f32 run (the
 * precision is not stored); a bad value is refused naming the flag. */
Test(bf16_tape, precision_flag_in_trainers, .timeout = 120) {
    char *j32 = ur_test_run_json(CHAR_RNN " --steps 20 --sample 0 --json");
    char *j16 = ur_test_run_json(CHAR_RNN " --steps 20 --sample 0 --precision bf16 --json");
    double l32 = ur_test_json_number(j32, "val_loss"), l16 = ur_test_json_number(j16, "val_loss");
    cr_assert(l16 != l32 && fabs(l16 - l32) < 0.02 * l32, "validation loss bf16 %.6f, f32 %.6f", l16, l32);
    char ck[512], cmd[1024];
    ur_test_tmp_path("bf16.safetensors", ck, sizeof ck);
    free(ur_test_run_json((snprintf(cmd, sizeof cmd, CHAR_RNN " --steps 10 --sample 0 --precision bf16 "
                                                              "--save %s --json", ck), cmd)));
    char *jl = ur_test_run_json((snprintf(cmd, sizeof cmd, CHAR_RNN " --steps 20 --sample 0 --load %s --json",
                                          ck), cmd));
    cr_assert_eq(ur_test_json_number(jl, "first_step"), 11, "the f32 run resumes the bf16 checkpoint");
    ur_test_expect_failure(CHAR_RNN " --precision fp8",
                           (const char *const[]){"--precision must be one of f32, bf16, got \"fp8\"", NULL});
    ur_test_expect_failure(UR_BINARY_DIR "/bin/unroll-bench --precision fp8",
                           (const char *const[]){"--precision must be f32 or bf16, got 'fp8'", NULL});
    free(j32), free(j16), free(jl);
}

#endif
