/* unroll-onednn - one recurrent layer trained by unroll and by oneDNN's RNN
 * primitive on the same numbers: their gradients are compared, then both are timed
 * in alternation.
 *
 *   unroll-onednn [--cell lstm|gru] [--precision f32|bf16] [--T 64] [--B 32]
 *                 [--I 64] [--H 128] [--threads N] [--windows 5] [--seconds 1]
 *
 * One step is forward + backward of a single-layer, one-direction LSTM (or GRU in
 * the linear-before-reset form, which is PyTorch's and unroll's) over x (T, B, I),
 * loss = sum(h ⊙ R) for a fixed random R, giving the gradients of x, W_ih, W_hh and
 * the biases. Both libraries start backward from R as the output's gradient: oneDNN
 * takes it as diff_dst, unroll as the dy of ur_backward_from (neither records the
 * loss itself). Both libraries get the same weights; both read them in their own
 * layout every step (oneDNN reorders them into the layouts its forward and
 * backward primitives ask for, as a training loop whose weights change must).
 * oneDNN gets explicit zero initial and final states (2.6.3 computes a wrong
 * dW_hh without them) and its gradient buffers are zeroed every step (it adds
 * into them).
 *
 * Gate orders: LSTM i, f, g, o in both. GRU: unroll r, z, n; oneDNN u (= z),
 * r, o (= n), with a fourth bias block b_u' for the recurrent part of o (= b_hn).
 *
 * --precision bf16: unroll's tape computes in mixed precision (ur_tape_set_precision:
 * every GEMM takes bf16 operands and sums in float) and oneDNN gets bf16 x, h, output
 * and weights (its bf16 RNN: bias, cell state c and every diff_* stay f32). The x and
 * the float master weights are converted to bf16 every step, as in a training loop.
 *
 * Exit status 1 when a gradient differs by more than 1e-5 of its tensor's largest
 * value (f32), or (bf16) when either library's bf16 gradient differs from unroll's f32
 * one by more than BF16_TOL of that tensor's largest value (see there).
 *
 * Timing: `windows` rounds, each running oneDNN then unroll for at least `seconds`;
 * each side's figure is its best window in tokens (T*B) per second.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <oneapi/dnnl/dnnl.h>

#include "unroll.h"

_Static_assert(sizeof(ur_real) == sizeof(float), "the comparison runs unroll's float build");

typedef struct settings {
    int gru, bf16, T, B, I, H, threads, windows;
    double seconds;
} settings;

#define CHECK(call)                                                                                   \
    do {                                                                                              \
        dnnl_status_t s_ = (call);                                                                    \
        if (s_ != dnnl_success) {                                                                     \
            fprintf(stderr, "unroll-onednn: %s failed (status %d) at line %d\n", #call, (int)s_, __LINE__); \
            exit(1);                                                                                  \
        }                                                                                             \
    } while (0)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------- the shared numbers ---------------- */

typedef struct problem {
    int T, B, I, H, G;
    float *x, *R;              /* (T, B, I), (T, B, H) */
    float *W_ih, *W_hh;        /* unroll's layout: (I, G*H), (H, G*H), gates in unroll's order */
    float *b_ih, *b_hh;        /* (G*H) each */
} problem;

static float *randoms(ur_rng *rng, size_t n, double scale) {
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = (float)(scale * (2 * ur_rng_uniform(rng) - 1));
    return v;
}

static void problem_make(problem *p, const settings *s) {
    ur_rng rng;
    ur_rng_seed(&rng, 42);
    p->T = s->T, p->B = s->B, p->I = s->I, p->H = s->H, p->G = s->gru ? 3 : 4;
    size_t GH = (size_t)p->G * p->H;
    double k = 1 / sqrt((double)p->H);
    p->x = randoms(&rng, (size_t)p->T * p->B * p->I, 1);
    p->R = randoms(&rng, (size_t)p->T * p->B * p->H, 1);
    p->W_ih = randoms(&rng, (size_t)p->I * GH, k);
    p->W_hh = randoms(&rng, (size_t)p->H * GH, k);
    p->b_ih = randoms(&rng, GH, k);
    p->b_hh = randoms(&rng, GH, k);
    if (!s->gru) memset(p->b_hh, 0, GH * sizeof *p->b_hh); /* oneDNN's LSTM has one bias */
}

/* oneDNN's gate block of unroll's block g */
static int onednn_gate(const problem *p, int g) { return p->G == 3 ? (g == 0 ? 1 : g == 1 ? 0 : 2) : g; }

/* ---------------- unroll ---------------- */

typedef struct unroll_side {
    ur_paramset *ps;
    ur_rnn *rnn;
    ur_tape *tape;
    ur_param *W_ih, *W_hh, *b_ih, *b_hh;
    ur_tensor *x;
    float *dx;
} unroll_side;

static void unroll_make(unroll_side *u, const problem *p) {
    u->ps = ur_paramset_new();
    ur_rnn_config cfg = ur_rnn_defaults(p->G == 3 ? UR_RNN_GRU : UR_RNN_LSTM, p->I, p->H);
    u->rnn = ur_rnn_new(u->ps, "rnn", &cfg);
    u->tape = ur_tape_new();
    if (!u->rnn || !u->tape) {
        fprintf(stderr, "unroll-onednn: %s\n", ur_last_error());
        exit(1);
    }
    u->W_ih = ur_paramset_find(u->ps, "rnn.weight_ih_l0");
    u->W_hh = ur_paramset_find(u->ps, "rnn.weight_hh_l0");
    u->b_ih = ur_paramset_find(u->ps, "rnn.bias_ih_l0");
    u->b_hh = ur_paramset_find(u->ps, "rnn.bias_hh_l0");
    size_t GH = (size_t)p->G * p->H;
    for (size_t i = 0; i < (size_t)p->I * GH; i++) u->W_ih->value.data[i] = p->W_ih[i];
    for (size_t i = 0; i < (size_t)p->H * GH; i++) u->W_hh->value.data[i] = p->W_hh[i];
    for (size_t i = 0; i < GH; i++) u->b_ih->value.data[i] = p->b_ih[i], u->b_hh->value.data[i] = p->b_hh[i];
    u->x = ur_tensor_new(3, (int[]){p->T, p->B, p->I});
    for (size_t i = 0; i < u->x->size; i++) u->x->data[i] = p->x[i];
    u->dx = malloc(u->x->size * sizeof *u->dx);
}

static void unroll_step(unroll_side *u, const problem *p) {
    ur_tape *t = u->tape;
    ur_tape_reset(t);
    ur_paramset_zero_grad(u->ps);
    ur_node *x = ur_variable(t, u->x);
    ur_node *h = ur_rnn_forward(u->rnn, t, x, NULL, NULL);
    if (ur_backward_from(t, h, p->R) != UR_OK) {
        fprintf(stderr, "unroll-onednn: %s\n", ur_tape_errmsg(t));
        exit(1);
    }
    const ur_real *g = ur_node_grad(x);
    for (size_t i = 0; i < u->x->size; i++) u->dx[i] = (float)g[i];
}

static void unroll_free(unroll_side *u) {
    ur_tape_free(u->tape);
    ur_rnn_free(u->rnn);
    ur_paramset_free(u->ps);
    ur_tensor_free(u->x);
    free(u->dx);
}

/* ---------------- oneDNN ---------------- */

typedef struct onednn_side {
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    dnnl_primitive_t fwd, bwd, to_fwd_l, to_fwd_i, to_bwd_l, to_bwd_i, to_src; /* to_src: bf16 only */
    /* user memories (plain layouts, f32) and the primitives' own */
    dnnl_memory_t x, src, zero_iter, zero_iter_c, w_l, w_i, bias, dst, dst_iter, dst_iter_c;
    dnnl_memory_t fw_l, fw_i, bw_l, bw_i, ws;
    dnnl_memory_t diff_src, diff_src_iter, diff_src_iter_c, diff_w_l, diff_w_i, diff_bias;
    dnnl_memory_t diff_dst, diff_dst_iter, diff_dst_iter_c;
    float *user_w_l, *user_w_i, *user_bias; /* oneDNN's gate order */
} onednn_side;

static dnnl_memory_desc_t md(int nd, const dnnl_dims_t dims, dnnl_data_type_t dt, dnnl_format_tag_t tag) {
    dnnl_memory_desc_t d;
    CHECK(dnnl_memory_desc_init_by_tag(&d, nd, dims, dt, tag));
    return d;
}

static dnnl_memory_t mem(onednn_side *o, const dnnl_memory_desc_t *d, void *handle) {
    dnnl_memory_t m;
    CHECK(dnnl_memory_create(&m, d, o->eng, handle ? handle : DNNL_MEMORY_ALLOCATE));
    return m;
}

static float *data_of(dnnl_memory_t m) {
    void *h;
    CHECK(dnnl_memory_get_data_handle(m, &h));
    return h;
}

static void zero(dnnl_memory_t m) {
    const dnnl_memory_desc_t *d;
    CHECK(dnnl_memory_get_memory_desc(m, &d));
    memset(data_of(m), 0, dnnl_memory_desc_get_size(d));
}

/* a memory in the layout (and data type) the primitive asks for, or in `want`, and
 * the reorder into it */
static dnnl_memory_t layout_for(onednn_side *o, dnnl_primitive_desc_t pd, dnnl_query_t q, int idx,
                                dnnl_memory_t from, dnnl_primitive_t *reorder, const dnnl_memory_desc_t *want) {
    const dnnl_memory_desc_t *have;
    if (!want) want = dnnl_primitive_desc_query_md(pd, q, idx);
    CHECK(dnnl_memory_get_memory_desc(from, &have));
    dnnl_memory_t m = mem(o, want, NULL);
    dnnl_primitive_desc_t rpd;
    CHECK(dnnl_reorder_primitive_desc_create(&rpd, have, o->eng, want, o->eng, NULL));
    CHECK(dnnl_primitive_create(reorder, rpd));
    CHECK(dnnl_primitive_desc_destroy(rpd));
    return m;
}

/* The primitive descriptor. oneDNN answers dnnl_unimplemented when no implementation
 * of the cell exists for these data types on this CPU: say so and stop. */
static dnnl_primitive_desc_t pd_create(const onednn_side *o, const void *desc, dnnl_primitive_desc_t hint,
                                       dnnl_data_type_t dt, const char *what) {
    dnnl_primitive_desc_t pd;
    dnnl_status_t st = dnnl_primitive_desc_create(&pd, desc, NULL, o->eng, hint);
    if (st != dnnl_success) {
        fprintf(stderr, "unroll-onednn: oneDNN has no %s %s RNN primitive here: dnnl_primitive_desc_create returned %d%s\n",
                dt == dnnl_bf16 ? "bf16" : "f32", what, (int)st, st == dnnl_unimplemented ? " (dnnl_unimplemented)" : "");
        exit(1);
    }
    return pd;
}

/* Data types: f32 throughout, or (bf16) x, h, the output and the weights in bf16 with
 * the bias, the LSTM's cell state and every diff_* in f32, as oneDNN's bf16 RNN wants. */
static void onednn_make(onednn_side *o, const problem *p, int bf16) {
    memset(o, 0, sizeof *o);
    CHECK(dnnl_engine_create(&o->eng, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&o->strm, o->eng, dnnl_stream_default_flags));
    int T = p->T, B = p->B, I = p->I, H = p->H, G = p->G, GB = 4; /* LSTM: 4 gates; GRU: 3 + b_u' */
    dnnl_data_type_t dt = bf16 ? dnnl_bf16 : dnnl_f32, f32 = dnnl_f32;
    dnnl_dims_t d_src = {T, B, I}, d_dst = {T, B, H}, d_iter = {1, 1, B, H};
    dnnl_dims_t d_wl = {1, 1, I, G, H}, d_wi = {1, 1, H, G, H}, d_b = {1, 1, GB, H};
    /* t_*: in the primitive's data type; the rest f32 */
    dnnl_memory_desc_t t_src = md(3, d_src, dt, dnnl_tnc), t_dst = md(3, d_dst, dt, dnnl_tnc);
    dnnl_memory_desc_t t_iter = md(4, d_iter, dt, dnnl_ldnc), m_iter = md(4, d_iter, f32, dnnl_ldnc);
    dnnl_memory_desc_t m_src = md(3, d_src, f32, dnnl_tnc), m_dst = md(3, d_dst, f32, dnnl_tnc);
    dnnl_memory_desc_t m_wl = md(5, d_wl, f32, dnnl_ldigo), m_wi = md(5, d_wi, f32, dnnl_ldigo);
    dnnl_memory_desc_t m_b = md(4, d_b, f32, dnnl_ldgo);
    dnnl_memory_desc_t a_wl = md(5, d_wl, dt, dnnl_format_tag_any), a_wi = md(5, d_wi, dt, dnnl_format_tag_any);
    /* weights and biases in oneDNN's gate order */
    size_t GH = (size_t)G * H;
    o->user_w_l = malloc((size_t)I * GH * sizeof(float));
    o->user_w_i = malloc((size_t)H * GH * sizeof(float));
    o->user_bias = calloc((size_t)GB * H, sizeof(float));
    for (int g = 0; g < G; g++) {
        int og = onednn_gate(p, g);
        for (int r = 0; r < I; r++)
            memcpy(o->user_w_l + (size_t)r * GH + (size_t)og * H, p->W_ih + (size_t)r * GH + (size_t)g * H, H * sizeof(float));
        for (int r = 0; r < H; r++)
            memcpy(o->user_w_i + (size_t)r * GH + (size_t)og * H, p->W_hh + (size_t)r * GH + (size_t)g * H, H * sizeof(float));
        for (int j = 0; j < H; j++) {
            float bi = p->b_ih[(size_t)g * H + j], bh = p->b_hh[(size_t)g * H + j];
            if (G == 4 || g < 2) o->user_bias[(size_t)og * H + j] = bi + bh;
            else o->user_bias[(size_t)og * H + j] = bi, o->user_bias[(size_t)3 * H + j] = bh; /* b_in, b_hn */
        }
    }
    o->x = mem(o, &m_src, p->x);
    o->src = bf16 ? layout_for(o, NULL, dnnl_query_undef, 0, o->x, &o->to_src, &t_src) : o->x;
    o->zero_iter = mem(o, &t_iter, NULL), o->zero_iter_c = mem(o, &m_iter, NULL);
    zero(o->zero_iter), zero(o->zero_iter_c);
    o->w_l = mem(o, &m_wl, o->user_w_l), o->w_i = mem(o, &m_wi, o->user_w_i), o->bias = mem(o, &m_b, o->user_bias);
    o->dst = mem(o, &t_dst, NULL), o->dst_iter = mem(o, &t_iter, NULL), o->dst_iter_c = mem(o, &m_iter, NULL);

    dnnl_rnn_desc_t fd, bd;
    const dnnl_memory_desc_t *ic = G == 4 ? &m_iter : NULL; /* c: f32 in both precisions */
    if (G == 4)
        CHECK(dnnl_lstm_forward_desc_init(&fd, dnnl_forward_training, dnnl_unidirectional_left2right, &t_src, &t_iter,
                                          ic, &a_wl, &a_wi, &m_b, &t_dst, &t_iter, ic, dnnl_rnn_flags_undef));
    else
        CHECK(dnnl_lbr_gru_forward_desc_init(&fd, dnnl_forward_training, dnnl_unidirectional_left2right, &t_src, &t_iter,
                                             &a_wl, &a_wi, &m_b, &t_dst, &t_iter, dnnl_rnn_flags_undef));
    dnnl_primitive_desc_t fpd = pd_create(o, &fd, NULL, dt, G == 4 ? "forward LSTM" : "forward GRU"), bpd;
    o->fw_l = layout_for(o, fpd, dnnl_query_weights_md, 0, o->w_l, &o->to_fwd_l, NULL);
    o->fw_i = layout_for(o, fpd, dnnl_query_weights_md, 1, o->w_i, &o->to_fwd_i, NULL);
    o->ws = mem(o, dnnl_primitive_desc_query_md(fpd, dnnl_query_workspace_md, 0), NULL);
    CHECK(dnnl_primitive_create(&o->fwd, fpd));

    /* backward: weights as it wants them, gradients (f32) in the plain layouts */
    if (G == 4)
        CHECK(dnnl_lstm_backward_desc_init(&bd, dnnl_backward, dnnl_unidirectional_left2right, &t_src, &t_iter, ic,
                                           &a_wl, &a_wi, &m_b, &t_dst, &t_iter, ic, &m_src, &m_iter, ic, &m_wl, &m_wi,
                                           &m_b, &m_dst, &m_iter, ic, dnnl_rnn_flags_undef));
    else
        CHECK(dnnl_lbr_gru_backward_desc_init(&bd, dnnl_backward, dnnl_unidirectional_left2right, &t_src, &t_iter,
                                              &a_wl, &a_wi, &m_b, &t_dst, &t_iter, &m_src, &m_iter, &m_wl, &m_wi, &m_b,
                                              &m_dst, &m_iter, dnnl_rnn_flags_undef));
    bpd = pd_create(o, &bd, fpd, dt, G == 4 ? "backward LSTM" : "backward GRU");
    o->bw_l = layout_for(o, bpd, dnnl_query_weights_md, 0, o->w_l, &o->to_bwd_l, NULL);
    o->bw_i = layout_for(o, bpd, dnnl_query_weights_md, 1, o->w_i, &o->to_bwd_i, NULL);
    CHECK(dnnl_primitive_create(&o->bwd, bpd));
    o->diff_src = mem(o, &m_src, NULL), o->diff_src_iter = mem(o, &m_iter, NULL), o->diff_src_iter_c = mem(o, &m_iter, NULL);
    o->diff_w_l = mem(o, &m_wl, NULL), o->diff_w_i = mem(o, &m_wi, NULL), o->diff_bias = mem(o, &m_b, NULL);
    o->diff_dst = mem(o, &m_dst, p->R);
    o->diff_dst_iter = mem(o, &m_iter, NULL), o->diff_dst_iter_c = mem(o, &m_iter, NULL);
    zero(o->diff_dst_iter), zero(o->diff_dst_iter_c);
    CHECK(dnnl_primitive_desc_destroy(fpd));
    CHECK(dnnl_primitive_desc_destroy(bpd));
}

static void run(onednn_side *o, dnnl_primitive_t prim, int n, const dnnl_exec_arg_t *args) {
    CHECK(dnnl_primitive_execute(prim, o->strm, n, args));
}

static void reorder(onednn_side *o, dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to) {
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    run(o, r, 2, a);
}

static void onednn_step(onednn_side *o, int lstm) {
    if (o->to_src) reorder(o, o->to_src, o->x, o->src); /* bf16: the batch's x */
    reorder(o, o->to_fwd_l, o->w_l, o->fw_l);
    reorder(o, o->to_fwd_i, o->w_i, o->fw_i);
    dnnl_exec_arg_t f[] = {{DNNL_ARG_SRC_LAYER, o->src},   {DNNL_ARG_SRC_ITER, o->zero_iter},
                           {DNNL_ARG_WEIGHTS_LAYER, o->fw_l}, {DNNL_ARG_WEIGHTS_ITER, o->fw_i},
                           {DNNL_ARG_BIAS, o->bias},        {DNNL_ARG_DST_LAYER, o->dst},
                           {DNNL_ARG_DST_ITER, o->dst_iter}, {DNNL_ARG_WORKSPACE, o->ws},
                           {DNNL_ARG_SRC_ITER_C, o->zero_iter_c}, {DNNL_ARG_DST_ITER_C, o->dst_iter_c}};
    run(o, o->fwd, lstm ? 10 : 8, f);
    reorder(o, o->to_bwd_l, o->w_l, o->bw_l);
    reorder(o, o->to_bwd_i, o->w_i, o->bw_i);
    zero(o->diff_w_l), zero(o->diff_w_i), zero(o->diff_bias); /* oneDNN adds into them */
    dnnl_exec_arg_t b[] = {{DNNL_ARG_SRC_LAYER, o->src},        {DNNL_ARG_SRC_ITER, o->zero_iter},
                           {DNNL_ARG_WEIGHTS_LAYER, o->bw_l},     {DNNL_ARG_WEIGHTS_ITER, o->bw_i},
                           {DNNL_ARG_BIAS, o->bias},             {DNNL_ARG_DST_LAYER, o->dst},
                           {DNNL_ARG_DST_ITER, o->dst_iter},      {DNNL_ARG_WORKSPACE, o->ws},
                           {DNNL_ARG_DIFF_SRC_LAYER, o->diff_src}, {DNNL_ARG_DIFF_SRC_ITER, o->diff_src_iter},
                           {DNNL_ARG_DIFF_WEIGHTS_LAYER, o->diff_w_l}, {DNNL_ARG_DIFF_WEIGHTS_ITER, o->diff_w_i},
                           {DNNL_ARG_DIFF_BIAS, o->diff_bias},   {DNNL_ARG_DIFF_DST_LAYER, o->diff_dst},
                           {DNNL_ARG_DIFF_DST_ITER, o->diff_dst_iter},
                           {DNNL_ARG_SRC_ITER_C, o->zero_iter_c}, {DNNL_ARG_DST_ITER_C, o->dst_iter_c},
                           {DNNL_ARG_DIFF_SRC_ITER_C, o->diff_src_iter_c},
                           {DNNL_ARG_DIFF_DST_ITER_C, o->diff_dst_iter_c}};
    run(o, o->bwd, lstm ? 19 : 15, b);
    CHECK(dnnl_stream_wait(o->strm));
}

static void onednn_free(onednn_side *o) {
    dnnl_primitive_t prims[] = {o->fwd, o->bwd, o->to_fwd_l, o->to_fwd_i, o->to_bwd_l, o->to_bwd_i, o->to_src};
    for (size_t i = 0; i < sizeof prims / sizeof prims[0]; i++)
        if (prims[i]) dnnl_primitive_destroy(prims[i]);
    if (o->src != o->x) dnnl_memory_destroy(o->src);
    dnnl_memory_t mems[] = {o->x, o->zero_iter, o->zero_iter_c, o->w_l, o->w_i, o->bias, o->dst, o->dst_iter,
                            o->dst_iter_c, o->fw_l, o->fw_i, o->bw_l, o->bw_i, o->ws, o->diff_src, o->diff_src_iter,
                            o->diff_src_iter_c, o->diff_w_l, o->diff_w_i, o->diff_bias, o->diff_dst,
                            o->diff_dst_iter, o->diff_dst_iter_c};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++) dnnl_memory_destroy(mems[i]);
    dnnl_stream_destroy(o->strm);
    dnnl_engine_destroy(o->eng);
    free(o->user_w_l), free(o->user_w_i), free(o->user_bias);
}

/* ---------------- the comparison ---------------- */

/* Largest gradient difference allowed in bf16, as a fraction of the tensor's largest
 * value. A bf16 operand is its float rounded to 8 significant bits (relative error up
 * to 2^-9), so a product of two carries up to 2^-8. Every gradient goes through at
 * least three products in a row (the forward gates x W_ih + h W_hh, the backward
 * dh W_hh^T, then x^T dG or dG W_ih^T), each adding its 2^-8, and the errors of h and
 * dh are carried along the T steps of the recurrence; oneDNN also stores h in bf16.
 * 2^-5 (8 times the single-product bound) leaves room for that and still catches a
 * wrong layout or gate order, which moves a gradient by about its whole size. */
#define BF16_TOL 0.03125

/* one library's gradients, all f32 and in oneDNN's gate order */
typedef struct grads {
    float *x, *w_l, *w_i, *b; /* (T, B, I), (I, G*H), (H, G*H), (4, H) */
} grads;

static void grads_alloc(grads *g, const problem *p) {
    size_t GH = (size_t)p->G * p->H;
    g->x = malloc((size_t)p->T * p->B * p->I * sizeof(float));
    g->w_l = malloc((size_t)p->I * GH * sizeof(float));
    g->w_i = malloc((size_t)p->H * GH * sizeof(float));
    g->b = calloc(4 * (size_t)p->H, sizeof(float));
}

static void grads_free(grads *g) { free(g->x), free(g->w_l), free(g->w_i), free(g->b); }

/* max |a - b| / max |b|: the largest difference against the tensor's scale */
static double max_err(const float *a, const float *b, size_t n) {
    double e = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double)a[i] - (double)b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    return scale > 0 ? e / scale : e;
}

/* unroll's (rows, G*H) gradient in oneDNN's gate order */
static void to_onednn_order(const problem *p, const ur_real *src, int rows, float *dst) {
    size_t GH = (size_t)p->G * p->H;
    for (int g = 0; g < p->G; g++)
        for (int r = 0; r < rows; r++)
            memcpy(dst + (size_t)r * GH + (size_t)onednn_gate(p, g) * p->H, src + (size_t)r * GH + (size_t)g * p->H,
                   (size_t)p->H * sizeof(float));
}

static void grads_of_unroll(grads *g, const problem *p, const unroll_side *u) {
    size_t H = (size_t)p->H;
    memcpy(g->x, u->dx, u->x->size * sizeof(float));
    to_onednn_order(p, u->W_ih->grad.data, p->I, g->w_l);
    to_onednn_order(p, u->W_hh->grad.data, p->H, g->w_i);
    to_onednn_order(p, u->b_ih->grad.data, 1, g->b); /* d b_ih; for the GRU also d b_hn */
    if (p->G == 3) memcpy(g->b + 3 * H, u->b_hh->grad.data + 2 * H, H * sizeof(float));
}

static void grads_of_onednn(grads *g, const problem *p, onednn_side *o) {
    size_t GH = (size_t)p->G * p->H;
    memcpy(g->x, data_of(o->diff_src), (size_t)p->T * p->B * p->I * sizeof(float));
    memcpy(g->w_l, data_of(o->diff_w_l), (size_t)p->I * GH * sizeof(float));
    memcpy(g->w_i, data_of(o->diff_w_i), (size_t)p->H * GH * sizeof(float));
    memcpy(g->b, data_of(o->diff_bias), 4 * (size_t)p->H * sizeof(float));
}

/* prints the four differences of `a` against `ref`; returns the largest */
static double compare(const char *what, const problem *p, const grads *a, const grads *ref) {
    size_t GH = (size_t)p->G * p->H;
    double e[4] = {max_err(a->x, ref->x, (size_t)p->T * p->B * p->I), max_err(a->w_l, ref->w_l, (size_t)p->I * GH),
                   max_err(a->w_i, ref->w_i, (size_t)p->H * GH), max_err(a->b, ref->b, 4 * (size_t)p->H)};
    printf("gradients, max |%s| / max |reference|: x %.2e  W_ih %.2e  W_hh %.2e  bias %.2e\n", what, e[0], e[1],
           e[2], e[3]);
    return fmax(fmax(e[0], e[1]), fmax(e[2], e[3]));
}

/* f32: oneDNN against unroll. bf16: both libraries' bf16 gradients against unroll's
 * f32 ones (computed here first), and against each other (printed, not bounded). */
static double check(const problem *p, unroll_side *u, onednn_side *o, int bf16) {
    grads ref, gu, go;
    grads_alloc(&ref, p), grads_alloc(&gu, p), grads_alloc(&go, p);
    unroll_step(u, p);
    grads_of_unroll(&ref, p, u);
    onednn_step(o, p->G == 4);
    grads_of_onednn(&go, p, o);
    double err;
    if (!bf16) {
        err = compare("oneDNN - unroll", p, &go, &ref);
    } else {
        ur_tape_set_precision(u->tape, UR_PRECISION_BF16);
        unroll_step(u, p);
        grads_of_unroll(&gu, p, u);
        err = compare("oneDNN bf16 - unroll f32", p, &go, &ref);
        err = fmax(err, compare("unroll bf16 - unroll f32", p, &gu, &ref));
        compare("oneDNN bf16 - unroll bf16", p, &go, &gu);
    }
    grads_free(&ref), grads_free(&gu), grads_free(&go);
    return err;
}

static double window(void (*step)(void *), void *ctx, double seconds, long *n_out) {
    long n = 0;
    double t0 = now(), t;
    do {
        step(ctx);
        n++;
    } while ((t = now() - t0) < seconds);
    *n_out = n;
    return t;
}

typedef struct both {
    const problem *p;
    unroll_side *u;
    onednn_side *o;
} both;

static void step_unroll(void *c) { unroll_step(((both *)c)->u, ((both *)c)->p); }
static void step_onednn(void *c) { onednn_step(((both *)c)->o, ((both *)c)->p->G == 4); }

int main(int argc, char **argv) {
    settings s = {0, 0, 64, 32, 64, 128, 1, 5, 1.0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int *iv = !strcmp(a, "--T") ? &s.T : !strcmp(a, "--B") ? &s.B : !strcmp(a, "--I") ? &s.I
                : !strcmp(a, "--H") ? &s.H : !strcmp(a, "--threads") ? &s.threads : !strcmp(a, "--windows") ? &s.windows : NULL;
        if (iv && v && atoi(v) > 0) *iv = atoi(v), i++;
        else if (!strcmp(a, "--seconds") && v && atof(v) > 0) s.seconds = atof(v), i++;
        else if (!strcmp(a, "--cell") && v && (!strcmp(v, "lstm") || !strcmp(v, "gru"))) s.gru = !strcmp(v, "gru"), i++;
        else if (!strcmp(a, "--precision") && v && (!strcmp(v, "f32") || !strcmp(v, "bf16"))) s.bf16 = !strcmp(v, "bf16"), i++;
        else {
            fprintf(stderr, "usage: unroll-onednn [--cell lstm|gru] [--precision f32|bf16] [--T N] [--B N] [--I N] [--H N] "
                            "[--threads N] [--windows N] [--seconds S]\n(bad or incomplete argument: %s)\n", a);
            return !strcmp(a, "--help") ? 0 : 2;
        }
    }
    omp_set_num_threads(s.threads);
    ur_set_num_threads(s.threads);
    problem p;
    problem_make(&p, &s);
    unroll_side u;
    onednn_side o;
    unroll_make(&u, &p);
    const char *prec = s.bf16 ? "bf16" : "f32";
    printf("%s T=%d B=%d I=%d H=%d, %d thread%s, %s, oneDNN %d.%d.%d\n", s.gru ? "GRU (linear before reset)" : "LSTM",
           s.T, s.B, s.I, s.H, s.threads, s.threads > 1 ? "s" : "", prec, dnnl_version()->major, dnnl_version()->minor,
           dnnl_version()->patch);
    fflush(stdout);
    onednn_make(&o, &p, s.bf16);
    double err = check(&p, &u, &o, s.bf16), tol = s.bf16 ? BF16_TOL : 1e-5;
    both c = {&p, &u, &o};
    double best_o = 0, best_u = 0, tokens = (double)s.T * s.B;
    for (int w = 0; w < s.windows; w++) {
        long n;
        double t = window(step_onednn, &c, s.seconds, &n);
        best_o = fmax(best_o, n * tokens / t);
        t = window(step_unroll, &c, s.seconds, &n);
        best_u = fmax(best_u, n * tokens / t);
    }
    printf("tokens/s (best of %d alternating windows of %.1f s): oneDNN %.1fk  unroll %.1fk  unroll/oneDNN %.2f\n",
           s.windows, s.seconds, best_o / 1e3, best_u / 1e3, best_u / best_o);
    printf("{\"cell\": \"%s\", \"precision\": \"%s\", \"T\": %d, \"B\": %d, \"I\": %d, \"H\": %d, \"threads\": %d, \"max_grad_err\": %.3e, "
           "\"onednn_tokens_per_s\": %.1f, \"unroll_tokens_per_s\": %.1f, \"ratio\": %.4f}\n",
           s.gru ? "gru" : "lstm", prec, s.T, s.B, s.I, s.H, s.threads, err, best_o, best_u, best_u / best_o);
    unroll_free(&u);
    onednn_free(&o);
    free(p.x), free(p.R), free(p.W_ih), free(p.W_hh), free(p.b_ih), free(p.b_hh);
    /* f32: float rounding of sums over T*B terms stays far below 1e-5; a wrong layout gives ~1 */
    if (err > tol) fprintf(stderr, "unroll-onednn: gradients differ by %.2e, more than %.2e\n", err, tol);
    return err <= tol ? 0 : 1;
}
