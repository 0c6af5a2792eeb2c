/* test_determinism.c - bit-for-bit determinism: the same seed gives the same losses
 * and weights run twice and with any number of threads, and the fused gate ops give
 * the same bits on 1, 2 or 3 threads (docs/reliability.md, docs/performance.md). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "ur_init.h"
#include "ur_expr.h"
#include "ur_kernels.h"
#include "ur_ops.h"
#include "ur_optim.h"
#include "ur_tape.h"

/* A small language model over 3 time steps: embedding, LSTM (tied over time), a
 * wide tanh layer and a softmax output; Adam. Sizes are chosen so that with 2
 * threads every parallel path runs: the matmuls exceed the GEMM threshold, the
 * (64, 2048) tanh the vector threshold and W1 and W2 the optimizer's. */
enum { DV = 256, DD = 64, DH = 64, DF = 2048, DN = 64, DT = 3, DSTEPS = 4 };

typedef struct det_model {
    ur_paramset *ps;
    ur_param *E, *Wx, *bx, *Wh, *W1, *b1, *W2, *b2;
    int ids[DT][DN], targets[DN];
} det_model;

static void det_model_make(det_model *m, uint64_t seed) {
    ur_rng r;
    ur_rng_seed(&r, seed);
    m->ps = ur_paramset_new();
    m->E = ur_test_param(m->ps, "E", 2, DV, DD);
    m->Wx = ur_test_param(m->ps, "Wx", 2, DD, 4 * DH);
    m->bx = ur_test_param(m->ps, "bx", 1, 4 * DH, 1);
    m->Wh = ur_test_param(m->ps, "Wh", 2, DH, 4 * DH);
    m->W1 = ur_test_param(m->ps, "W1", 2, DH, DF);
    m->b1 = ur_test_param(m->ps, "b1", 1, DF, 1);
    m->W2 = ur_test_param(m->ps, "W2", 2, DF, DV);
    m->b2 = ur_test_param(m->ps, "b2", 1, DV, 1);
    for (int i = 0; i < ur_paramset_count(m->ps); i++)
        cr_assert_eq(ur_init_uniform(&ur_paramset_get(m->ps, i)->value, &r, 0.2), UR_OK);
    for (int t = 0; t < DT; t++)
        for (int n = 0; n < DN; n++) m->ids[t][n] = (int)ur_rng_below(&r, DV);
    for (int n = 0; n < DN; n++) m->targets[n] = (int)ur_rng_below(&r, DV);
}

static ur_node *det_loss(ur_tape *t, det_model *m) {
    int hd[2] = {DN, DH};
    ur_node *h = ur_zeros(t, 2, hd), *c = ur_zeros(t, 2, hd);
    ur_expr *e = ur_expr_lstm();
    cr_assert(e);
    for (int s = 0; s < DT; s++) {
        ur_node *x = ur_gather(t, ur_param_node(t, m->E), m->ids[s], DN);
        ur_node *gates = ur_add(t, ur_linear(t, x, ur_param_node(t, m->Wx), ur_param_node(t, m->bx)),
                                ur_matmul(t, h, ur_param_node(t, m->Wh), 0, 0));
        ur_node *hc[2];
        cr_assert_eq(ur_expr_apply(t, e, 2, (ur_node *[]){gates, c}, hc), UR_OK, "%s", ur_tape_errmsg(t));
        h = hc[0], c = hc[1];
    }
    ur_expr_free(e);
    ur_node *z = ur_tanh(t, ur_linear(t, h, ur_param_node(t, m->W1), ur_param_node(t, m->b1)));
    ur_node *logits = ur_linear(t, z, ur_param_node(t, m->W2), ur_param_node(t, m->b2));
    return ur_cross_entropy(t, logits, m->targets, NULL);
}

/* Trains DSTEPS steps with the given thread count; the losses go to losses[] and
 * the trained model stays in *m. */
static void det_train(det_model *m, uint64_t seed, int threads, ur_real *losses) {
    ur_set_num_threads(threads);
    det_model_make(m, seed);
    ur_optim_config cfg = ur_optim_defaults(UR_OPTIM_ADAM, 1e-2);
    ur_optim *opt = ur_optim_new(m->ps, &cfg);
    ur_tape *t = ur_tape_new();
    cr_assert(opt && t);
    for (int s = 0; s < DSTEPS; s++) {
        ur_tape_reset(t);
        ur_optim_zero_grad(opt);
        ur_node *loss = det_loss(t, m);
        cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
        losses[s] = ur_node_item(loss);
        cr_assert_eq(ur_optim_step(opt), UR_OK, "%s", ur_last_error());
    }
    ur_tape_free(t);
    ur_optim_free(opt);
    ur_set_num_threads(0);
}

static void expect_identical(const det_model *a, const ur_real *la, const det_model *b, const ur_real *lb,
                             const char *what) {
    for (int s = 0; s < DSTEPS; s++)
        cr_expect_eq(memcmp(&la[s], &lb[s], sizeof(ur_real)), 0, "%s: loss of step %d: %.9g vs %.9g", what, s,
                     (double)la[s], (double)lb[s]);
    for (int i = 0; i < ur_paramset_count(a->ps); i++) {
        const ur_param *p = ur_paramset_get(a->ps, i), *q = ur_paramset_get(b->ps, i);
        cr_expect_eq(memcmp(p->value.data, q->value.data, p->value.size * sizeof(ur_real)), 0,
                     "%s: parameter %s differs after training", what, p->name);
    }
}

/* The fused gate expressions of LSTM and GRU split their rows over threads from
 * 2048 elements on: values and gradients must not depend on it. B x H = 48 x 96,
 * with and without kept activations (UR_EX_SAVE_MAX in autograd/expr_internal.h:
 * 4608 values are kept, a state of 96 x 192 is recomputed). Returns every value and gradient, malloc'ed. */
static ur_real *gate_ops_run(int threads, int B, int H, size_t *n) {
    ur_set_num_threads(threads);
    ur_paramset *ps = ur_paramset_new();
    ur_param *g4 = ur_test_param(ps, "g4", 2, B, 4 * H), *c0 = ur_test_param(ps, "c0", 2, B, H);
    ur_param *gx = ur_test_param(ps, "gx", 2, B, 3 * H), *gh = ur_test_param(ps, "gh", 2, B, 3 * H);
    ur_rng r;
    ur_rng_seed(&r, 5);
    for (int i = 0; i < ur_paramset_count(ps); i++)
        cr_assert_eq(ur_init_uniform(&ur_paramset_get(ps, i)->value, &r, 2.0), UR_OK);
    ur_tape *t = ur_tape_new();
    ur_expr *lstm = ur_expr_lstm(), *gru = ur_expr_gru();
    cr_assert(lstm && gru);
    ur_node *hc[2], *hg;
    cr_assert_eq(ur_expr_apply(t, lstm, 2, (ur_node *[]){ur_param_node(t, g4), ur_param_node(t, c0)}, hc), UR_OK);
    ur_node *h = hc[0], *c = hc[1];
    cr_assert_eq(ur_expr_apply(t, gru, 3, (ur_node *[]){ur_param_node(t, gx), ur_param_node(t, gh), h}, &hg), UR_OK);
    ur_expr_free(lstm);
    ur_expr_free(gru);
    /* a loss that weighs every element differently */
    ur_node *w = ur_input_data(t, 2, (int[]){B, H}, gh->value.data);
    ur_node *loss = ur_sum(t, ur_mul(t, ur_add(t, hg, c), w));
    cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
    const ur_node *outs[3] = {c, h, hg};
    *n = 3 * (size_t)B * H;
    for (int i = 0; i < ur_paramset_count(ps); i++) *n += ur_paramset_get(ps, i)->grad.size;
    ur_real *v = malloc(*n * sizeof *v), *at = v;
    cr_assert_not_null(v);
    for (int k = 0; k < 3; k++) {
        memcpy(at, ur_node_cdata(outs[k]), (size_t)B * H * sizeof *v);
        at += (size_t)B * H;
    }
    for (int i = 0; i < ur_paramset_count(ps); i++) {
        const ur_tensor *g = &ur_paramset_get(ps, i)->grad;
        memcpy(at, g->data, g->size * sizeof *v);
        at += g->size;
    }
    ur_tape_free(t);
    ur_paramset_free(ps);
    ur_set_num_threads(0);
    return v;
}

Test(determinism, gate_ops_same_bits_any_thread_count) {
    setenv("UR_GEMM_STALL_GUARD", "0", 1); /* really use the threads, even on a busy machine */
    static const int SIZES[2][2] = {{48, 96}, {96, 192}};
    for (int k = 0; k < 2; k++) {
        int B = SIZES[k][0], H = SIZES[k][1];
        size_t n1, n;
        ur_real *one = gate_ops_run(1, B, H, &n1);
        for (int threads = 2; threads <= 3; threads++) {
            ur_real *many = gate_ops_run(threads, B, H, &n);
            cr_assert_eq(n, n1);
            size_t diff = 0;
            for (size_t i = 0; i < n; i++) diff += memcmp(&one[i], &many[i], sizeof(ur_real)) != 0;
            cr_expect_eq(diff, 0, "B %d, H %d: %zu of %zu values differ between 1 and %d threads", B, H, diff, n,
                         threads);
            free(many);
        }
        free(one);
    }
}

Test(determinism, same_seed_same_bits_any_thread_count, .timeout = 120) {
    setenv("UR_GEMM_STALL_GUARD", "0", 1);
    det_model a, b, c, d;
    ur_real la[DSTEPS], lb[DSTEPS], lc[DSTEPS], ld[DSTEPS];
    det_train(&a, 11, 1, la);
    det_train(&b, 11, 1, lb);
    det_train(&c, 11, 2, lc);
    det_train(&d, 12, 2, ld);
    cr_expect(la[DSTEPS - 1] < la[0], "the model learns (%g -> %g)", (double)la[0], (double)la[DSTEPS - 1]);
    expect_identical(&a, la, &b, lb, "same seed, run twice");
    expect_identical(&a, la, &c, lc, "1 thread vs 2 threads");
    cr_expect_neq(memcmp(la, ld, sizeof la), 0, "another seed gives other losses");
    ur_paramset_free(a.ps);
    ur_paramset_free(b.ps);
    ur_paramset_free(c.ps);
    ur_paramset_free(d.ps);
}

/* A concat of more than 2^17 values copies and adds back on several threads, and
 * gradients that large are zeroed on several: the values and gradients must be
 * exact whatever the thread count. n pieces of (R, C) along `axis`; with `repeat`
 * piece 0 is also piece n/2 (its gradient is then the sum of two blocks). */
static void concat_check(int threads, int axis, int repeat) {
    enum { N = 40, R = 64, C = 64 };
    ur_set_num_threads(threads);
    ur_paramset *ps = ur_paramset_new();
    ur_param *p[N];
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", i);
        p[i] = ur_test_param(ps, name, 2, R, C);
        for (int j = 0; j < R * C; j++) p[i]->value.data[j] = (ur_real)(i * R * C + j);
    }
    ur_tape *t = ur_tape_new();
    ur_node *x[N];
    for (int i = 0; i < N; i++) x[i] = ur_param_node(t, p[i]);
    if (repeat) x[N / 2] = x[0];
    ur_node *y = ur_concat(t, N, x, axis);
    cr_assert_not_null(y, "%s", ur_tape_errmsg(t));
    size_t total = (size_t)N * R * C;
    ur_real *w = malloc(total * sizeof *w);
    cr_assert_not_null(w);
    for (size_t k = 0; k < total; k++) w[k] = (ur_real)(k % 1000) / 8;
    int dims[2] = {axis ? R : N * R, axis ? N * C : C};
    ur_node *loss = ur_sum(t, ur_mul(t, y, ur_input_data(t, 2, dims, w)));
    cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
    /* y[r][c] of piece i, and where that element sits in y */
    const ur_real *yv = ur_node_cdata(y);
    size_t bad_y = 0, bad_g = 0;
    for (int i = 0; i < N; i++) {
        int src = repeat && i == N / 2 ? 0 : i;
        for (int r = 0; r < R; r++)
            for (int c = 0; c < C; c++) {
                size_t at = axis ? (size_t)r * N * C + (size_t)i * C + c : ((size_t)i * R + r) * C + c;
                bad_y += yv[at] != p[src]->value.data[r * C + c];
            }
    }
    for (int i = 0; i < N; i++) {
        if (repeat && i == N / 2) continue;
        for (int r = 0; r < R; r++)
            for (int c = 0; c < C; c++) {
                size_t at = axis ? (size_t)r * N * C + (size_t)i * C + c : ((size_t)i * R + r) * C + c;
                ur_real want = 0;
                want += w[at];
                if (repeat && i == 0) {
                    size_t at2 = axis ? (size_t)r * N * C + (size_t)(N / 2) * C + c
                                      : ((size_t)(N / 2) * R + r) * C + c;
                    want += w[at2];
                }
                bad_g += p[i]->grad.data[r * C + c] != want;
            }
    }
    cr_expect_eq(bad_y, 0, "%d threads, axis %d%s: %zu values of the concat are wrong", threads, axis,
                 repeat ? ", repeated input" : "", bad_y);
    cr_expect_eq(bad_g, 0, "%d threads, axis %d%s: %zu gradient values are wrong", threads, axis,
                 repeat ? ", repeated input" : "", bad_g);
    free(w);
    ur_tape_free(t);
    ur_paramset_free(ps);
    ur_set_num_threads(0);
}

Test(determinism, large_concat_exact_on_any_thread_count) {
    setenv("UR_GEMM_STALL_GUARD", "0", 1);
    for (int threads = 1; threads <= 2; threads++)
        for (int axis = 0; axis < 2; axis++)
            for (int repeat = 0; repeat < 2; repeat++) concat_check(threads, axis, repeat);
}

/* linear's row-bias gradient, large enough to be summed on several threads, is each
 * column's sum of G's rows in row order, on 1 and 2 threads. */
Test(determinism, large_row_bias_gradient_exact_on_any_thread_count) {
    enum { N = 2048, K = 3, M = 390 };
    setenv("UR_GEMM_STALL_GUARD", "0", 1);
    ur_real *w = malloc(sizeof *w * N * M);
    cr_assert_not_null(w);
    for (size_t k = 0; k < (size_t)N * M; k++) w[k] = (ur_real)((k * 2654435761u) % 1000) / 7;
    for (int threads = 1; threads <= 2; threads++) {
        ur_set_num_threads(threads);
        ur_paramset *ps = ur_paramset_new();
        ur_param *W = ur_test_param(ps, "W", 2, K, M), *b = ur_test_param(ps, "b", 1, M, 0);
        ur_tape *t = ur_tape_new();
        ur_node *x = ur_zeros(t, 2, (int[]){N, K});
        ur_node *y = ur_linear(t, x, ur_param_node(t, W), ur_param_node(t, b));
        ur_node *loss = ur_sum(t, ur_mul(t, y, ur_input_data(t, 2, (int[]){N, M}, w)));
        cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
        size_t bad = 0;
        for (int j = 0; j < M; j++) {
            ur_real want = 0;
            for (int i = 0; i < N; i++) want += w[(size_t)i * M + j];
            bad += b->grad.data[j] != want;
        }
        cr_expect_eq(bad, 0, "%d threads: %zu of %d bias gradients differ from the sums in row order", threads,
                     bad, M);
        ur_tape_free(t);
        ur_paramset_free(ps);
    }
    ur_set_num_threads(0);
    free(w);
}

/* ur_sum and ur_mean of a large node (a loss over a whole sequence) add the values in
 * blocks of 2^14, each as 16 interleaved sums added pairwise, then the blocks in
 * order; below 2^15 values one sum in order. Checked against those orders written
 * out here, on 1 and 2 threads, with the gradient (a constant) and the same-shape
 * mul and add around it split over the threads as well. */
static double blocked_sum(const ur_real *x, size_t n) {
    if (n < ((size_t)1 << 15)) {
        double s = 0;
        for (size_t i = 0; i < n; i++) s += x[i];
        return s;
    }
    double total = 0;
    for (size_t b0 = 0; b0 < n; b0 += (size_t)1 << 14) {
        size_t len = n - b0 < ((size_t)1 << 14) ? n - b0 : (size_t)1 << 14;
        double lane[16] = {0};
        for (size_t i = 0; i < len; i++) lane[i % 16] += x[b0 + i];
        for (int w = 8; w > 0; w /= 2)
            for (int l = 0; l < w; l++) lane[l] += lane[l + w];
        total += lane[0];
    }
    return total;
}

Test(determinism, large_sums_and_elementwise_exact_on_any_thread_count) {
    setenv("UR_GEMM_STALL_GUARD", "0", 1);
    static const size_t sizes[] = {1000, ((size_t)1 << 15) - 1, (size_t)1 << 15, 300007};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        size_t n = sizes[si];
        ur_tensor *a = ur_tensor_new(1, (int[]){(int)n}), *b = ur_tensor_new(1, (int[]){(int)n});
        cr_assert(a && b);
        for (size_t i = 0; i < n; i++) {
            a->data[i] = (ur_real)((i * 2654435761u) % 2001) / 1000 - 1; /* -1 .. 1 */
            b->data[i] = (ur_real)((i * 40503u) % 999 + 1) / 997;
        }
        ur_real *ab = malloc(n * sizeof *ab);
        cr_assert(ab);
        for (size_t i = 0; i < n; i++) ab[i] = a->data[i] * b->data[i] + a->data[i];
        ur_real want_sum = (ur_real)blocked_sum(ab, n), want_mean = (ur_real)(blocked_sum(ab, n) / (double)n);
        for (int threads = 1; threads <= 2; threads++) {
            ur_set_num_threads(threads);
            for (int mean = 0; mean < 2; mean++) {
                ur_tape *t = ur_tape_new();
                ur_node *x = ur_variable(t, a), *w = ur_input(t, b);
                ur_node *p = ur_add(t, ur_mul(t, x, w), x); /* same shape: elementwise on the threads */
                ur_node *loss = mean ? ur_mean(t, p) : ur_sum(t, p);
                cr_assert(loss, "%s", ur_tape_errmsg(t));
                size_t bad = 0;
                for (size_t i = 0; i < n; i++) bad += ur_node_data(p)[i] != ab[i];
                cr_expect_eq(bad, 0, "n %zu, %d threads: %zu values of x * w + x differ", n, threads, bad);
                cr_expect_eq(ur_node_data(loss)[0], mean ? want_mean : want_sum,
                             "n %zu, %d threads, %s: %.9g, summed in the documented order %.9g", n, threads,
                             mean ? "mean" : "sum", (double)ur_node_data(loss)[0],
                             (double)(mean ? want_mean : want_sum));
                cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
                ur_real g = mean ? (ur_real)1 / (ur_real)n : 1;
                const ur_real *gx = ur_node_grad(x);
                bad = 0;
                for (size_t i = 0; i < n; i++) bad += gx[i] != g * b->data[i] + g;
                cr_expect_eq(bad, 0, "n %zu, %d threads, %s: %zu gradients of x differ from g w + g", n, threads,
                             mean ? "mean" : "sum", bad);
                ur_tape_free(t);
            }
        }
        free(ab);
        ur_tensor_free(a);
        ur_tensor_free(b);
    }
    ur_set_num_threads(0);
}

/* x * x (both inputs one node) on the threads: each element's gradient is g x + g x. */
Test(determinism, large_square_by_mul_gradient) {
    setenv("UR_GEMM_STALL_GUARD", "0", 1);
    enum { N = 200003 };
    ur_tensor *a = ur_tensor_new(1, (int[]){N});
    cr_assert(a);
    for (size_t i = 0; i < N; i++) a->data[i] = (ur_real)((i * 2654435761u) % 2001) / 1000 - 1;
    for (int threads = 1; threads <= 2; threads++) {
        ur_set_num_threads(threads);
        ur_tape *t = ur_tape_new();
        ur_node *x = ur_variable(t, a);
        cr_assert_eq(ur_backward(t, ur_sum(t, ur_mul(t, x, x))), UR_OK, "%s", ur_tape_errmsg(t));
        size_t bad = 0;
        for (size_t i = 0; i < N; i++) bad += ur_node_grad(x)[i] != a->data[i] + a->data[i];
        cr_expect_eq(bad, 0, "%d threads: %zu gradients differ from x + x", threads, bad);
        ur_tape_free(t);
    }
    ur_set_num_threads(0);
    ur_tensor_free(a);
}

/* The same sums on values whose total depends on the order of the additions: every
 * fourth value is 2^40 or -2^40 in turn, the others small (multiples of 2^-20), so
 * that in plain order the small ones are lost while the running sum is large; one
 * more 2^40 in the first block and -2^40 in the second make the order of the blocks'
 * sums matter too. The
 * result is that of the documented order, and for 2^15 values or more it differs
 * from the sum in plain order, so a change of order shows. */
Test(determinism, large_sum_order_is_the_documented_one) {
    setenv("UR_GEMM_STALL_GUARD", "0", 1);
    static const size_t sizes[] = {((size_t)1 << 15) - 1, (size_t)1 << 15, 300007};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        size_t n = sizes[si];
        ur_tensor *a = ur_tensor_new(1, (int[]){(int)n});
        cr_assert(a);
        for (size_t i = 0; i < n; i++) {
            ur_real big = (ur_real)1099511627776.0, small = (ur_real)((i * 2654435761u) % 7 + 1) / 1048576;
            a->data[i] = i % 4 ? ((i * 40503u) % 2 ? small : -small) : (i / 4) % 2 ? -big : big;
        }
        if (n > ((size_t)1 << 14) + 1) { /* blocks 0 and 1 sum to about 2^40 and -2^40: their order shows */
            a->data[1] = (ur_real)1099511627776.0;
            a->data[((size_t)1 << 14) + 1] = -(ur_real)1099511627776.0;
        }
        double plain = 0;
        for (size_t i = 0; i < n; i++) plain += a->data[i];
        ur_real want = (ur_real)blocked_sum(a->data, n);
        if (n >= ((size_t)1 << 15))
            cr_expect_neq(want, (ur_real)plain, "n %zu: these values must give different sums in the two orders", n);
        for (int threads = 1; threads <= 2; threads++) {
            ur_set_num_threads(threads);
            ur_tape *t = ur_tape_new();
            ur_node *s = ur_sum(t, ur_input(t, a));
            cr_assert(s, "%s", ur_tape_errmsg(t));
            cr_expect_eq(ur_node_data(s)[0], want, "n %zu, %d threads: %.17g, in the documented order %.17g", n,
                         threads, (double)ur_node_data(s)[0], (double)want);
            ur_tape_free(t);
        }
        ur_tensor_free(a);
    }
    ur_set_num_threads(0);
}
