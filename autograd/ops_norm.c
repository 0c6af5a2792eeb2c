/* ops_norm.c - logsumexp along an axis, the masked softmax along the last axis and
 * layer normalisation over the last axis (Ba et al. 2016), each one fused op.
 * Each op: forward here, backward rule right below it, its gradient-check cases
 * (UR_CASES) right below the rule. */
#include "tape_internal.h"

#include <math.h>

static int last_dim(const ur_node *a) { return a->shape.ndim ? a->shape.dims[a->shape.ndim - 1] : 1; }

/* ---- logsumexp along one axis: (outer, len, inner) -> (outer, inner) ---- */

ur_node *ur_logsumexp(ur_tape *t, ur_node *a, int axis, int keepdim) {
    ur_node *y = ur__reduce_node(t, UR_OP_LOGSUMEXP, "logsumexp", a, axis, keepdim);
    if (!y) return NULL;
    int ax = y->iattr[0];
    size_t outer, len, inner;
    ur__split_axis(&a->shape, ax, &outer, &len, &inner);
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < inner; i++) {
            const ur_real *x = a->value + o * len * inner + i;
            double m = x[0], acc = 0;
            for (size_t l = 1; l < len; l++) m = x[l * inner] > m ? x[l * inner] : m;
            /* shifted by the maximum, so that no exp overflows; an infinite maximum is the result */
            if (!isfinite(m)) {
                y->value[o * inner + i] = (ur_real)m;
                continue;
            }
            for (size_t l = 0; l < len; l++) acc += exp(x[l * inner] - m);
            y->value[o * inner + i] = (ur_real)(m + log(acc));
        }
    return ur__node_done(t, y);
}

/* dx_l += G exp(x_l - y): the softmax along the axis, from the output. */
void ur__backward_logsumexp(ur_tape *t, ur_node *y) {
    ur_node *a = y->in[0];
    ur_real *ga = ur__grad(t, a);
    if (!ga) return;
    size_t outer, len, inner;
    ur__split_axis(&a->shape, y->iattr[0], &outer, &len, &inner);
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < inner; i++) {
            size_t out = o * inner + i, base = o * len * inner + i;
            double v = y->value[out], g = y->grad[out];
            if (!isfinite(v)) continue; /* every element -inf: no share anywhere */
            for (size_t l = 0; l < len; l++) ga[base + l * inner] += (ur_real)(g * exp(a->value[base + l * inner] - v));
        }
}

static ur_node *c_lse_last(ur_tape *t, ur_node **p) { return ur_logsumexp(t, p[0], -1, 0); }
static ur_node *c_lse_first_keep(ur_tape *t, ur_node **p) { return ur_logsumexp(t, p[0], 0, 1); }
static ur_node *c_lse_mid(ur_tape *t, ur_node **p) { return ur_logsumexp(t, p[0], 1, 0); }
/* inputs around +-100: the sum of exps alone would overflow a float */
static ur_node *c_lse_large(ur_tape *t, ur_node **p) { return ur_logsumexp(t, ur_scale(t, p[0], 100), -1, 1); }
UR_CASES(LOGSUMEXP,
         {"logsumexp/last", 1071, 1, {2}, {{3, 5}}, 0, c_lse_last},
         {"logsumexp/0-keepdim", 1072, 1, {3}, {{3, 2, 2}}, 0, c_lse_first_keep},
         {"logsumexp/middle", 1073, 1, {3}, {{2, 3, 4}}, 0, c_lse_mid},
         {"logsumexp/large-keepdim", 1074, 1, {2}, {{3, 4}}, 0, c_lse_large});

/* ---- masked softmax along the last axis ----
 * y_j = m_j e^{x_j} / sum_k m_k e^{x_k} for a 0/1 mask m of x's shape: masked
 * entries get exactly 0, the rest a softmax over the kept entries; a row with
 * nothing kept is all zeros. */

/* Masked entries sit this far below the row's kept maximum before the softmax
 * kernel runs: their exp is 0 (or the kernel's smallest value), as if absent. The
 * rows stay in place (not compacted) so that the kernel sums in the same order as
 * for a -1e9 score bias: attention's weights are the same bit for bit. */
#define UR_MASKED_GAP ((ur_real)1e4)

ur_node *ur_masked_softmax(ur_tape *t, ur_node *a, ur_node *mask) {
    ur_node *in[2] = {a, mask};
    if (!ur__check(t, "masked_softmax", 2, in)) return NULL;
    if (!ur_shape_equal(&a->shape, &mask->shape)) {
        ur__op_error(t, UR_ERR_SHAPE, "masked_softmax", 2, in, "the mask must have the input's shape");
        return NULL;
    }
    if (mask->requires_grad) {
        ur__op_error(t, UR_ERR_ARG, "masked_softmax", 2, in, "the mask must be a constant (it gets no gradient)");
        return NULL;
    }
    const ur_real *m = mask->value;
    for (size_t i = 0; i < mask->size; i++)
        if (m[i] != 0 && m[i] != 1) {
            ur__op_error(t, UR_ERR_ARG, "masked_softmax", 2, in, "mask element %zu is %g (must be 0 or 1)", i,
                         (double)m[i]);
            return NULL;
        }
    ur_node *y = ur__node_new(t, UR_OP_MASKED_SOFTMAX, &a->shape, 2, in);
    if (!y) return NULL;
    int cols = last_dim(a), rows = (int)(a->size / (size_t)cols);
    ur_real *o = y->value;
    for (int r = 0; r < rows; r++) { /* the shifted row goes into y, the kernel works in place */
        const ur_real *x = a->value + (size_t)r * cols, *mr = m + (size_t)r * cols;
        ur_real *z = o + (size_t)r * cols, kmax = 0;
        int kept = 0;
        for (int j = 0; j < cols; j++)
            if (mr[j] != 0 && (!kept++ || x[j] > kmax)) kmax = x[j];
        for (int j = 0; j < cols; j++) z[j] = mr[j] != 0 ? x[j] : kmax - UR_MASKED_GAP;
    }
    ur_softmax_rows(rows, cols, o, o);
    for (size_t i = 0; i < a->size; i++)
        if (m[i] == 0) o[i] = 0;
    return ur__node_done(t, y);
}

/* dx_j = y_j (G_j - sum_k G_k y_k): the softmax rule; y_j = 0 where masked. */
void ur__backward_masked_softmax(ur_tape *t, ur_node *y) {
    ur_real *ga = ur__grad(t, y->in[0]);
    if (!ga) return;
    size_t cols = (size_t)last_dim(y), rows = y->size / cols;
    for (size_t r = 0; r < rows; r++) {
        const ur_real *g = y->grad + r * cols, *o = y->value + r * cols;
        ur_real *d = ga + r * cols;
        double s = 0;
        for (size_t j = 0; j < cols; j++) s += g[j] * o[j];
        for (size_t j = 0; j < cols; j++) d[j] += o[j] * (g[j] - (ur_real)s);
    }
}

/* rows: some kept, one fully masked, one with a single kept entry */
static const ur_real msm_mask_35[15] = {1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0};
static ur_node *c_msm(ur_tape *t, ur_node **p) {
    return ur_masked_softmax(t, p[0], ur_input_data(t, 2, (int[]){3, 5}, msm_mask_35));
}
static const ur_real msm_mask_224[16] = {1, 1, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1};
static ur_node *c_msm_3d(ur_tape *t, ur_node **p) {
    return ur_masked_softmax(t, p[0], ur_input_data(t, 3, (int[]){2, 2, 4}, msm_mask_224));
}
UR_CASES(MASKED_SOFTMAX,
         {"masked_softmax", 1075, 1, {2}, {{3, 5}}, 0, c_msm},
         {"masked_softmax/3d", 1076, 1, {3}, {{2, 2, 4}}, 0, c_msm_3d});

/* ---- layer normalisation over the last axis ----
 * x (..., H) -> y = gain * (x - mean) / sqrt(var + eps) + bias per row, var the
 * biased variance; gain and bias (H) or NULL. aux keeps each row's mean and
 * 1/sqrt(var + eps) for the backward rule. */
typedef struct ln_aux {
    ur_real *mean, *rstd; /* (rows) each */
} ln_aux;

ur_node *ur_layer_norm(ur_tape *t, ur_node *x, ur_node *gain, ur_node *bias, ur_real eps) {
    ur_node *in[3] = {x, gain, bias};
    int n_in = 1;
    if (gain) in[n_in++] = gain;
    if (bias) in[n_in++] = bias;
    if (!ur__check(t, "layer_norm", n_in, in)) return NULL;
    int H = last_dim(x);
    if (x->shape.ndim < 1 || (gain && (gain->shape.ndim != 1 || gain->shape.dims[0] != H)) ||
        (bias && (bias->shape.ndim != 1 || bias->shape.dims[0] != H))) {
        ur__op_error(t, UR_ERR_SHAPE, "layer_norm", n_in, in, "needs x (..., H) with gain and bias (H) or NULL");
        return NULL;
    }
    if (!(eps > 0) || !isfinite(eps)) {
        ur__op_error(t, UR_ERR_ARG, "layer_norm", n_in, in, "eps is %g (must be finite and > 0)", (double)eps);
        return NULL;
    }
    ur_node *y = ur__node_new(t, UR_OP_LAYER_NORM, &x->shape, n_in, in);
    ln_aux *ax = y ? ur__alloc(t, sizeof *ax) : NULL;
    if (!ax) return NULL;
    size_t rows = x->size / (size_t)H;
    ax->mean = ur__alloc_real(t, rows);
    ax->rstd = ur__alloc_real(t, rows);
    if (!ax->mean || !ax->rstd) return NULL;
    y->aux = ax;
    y->iattr[0] = gain != NULL;
    y->iattr[1] = bias != NULL;
    y->fattr[0] = eps;
    const ur_real *g = gain ? gain->value : NULL, *b = bias ? bias->value : NULL;
    for (size_t r = 0; r < rows; r++) {
        const ur_real *xr = x->value + r * H;
        ur_real *yr = y->value + r * H;
        double mu = 0, var = 0;
        for (int j = 0; j < H; j++) mu += xr[j];
        mu /= H;
        for (int j = 0; j < H; j++) var += (xr[j] - mu) * (xr[j] - mu);
        double rstd = 1 / sqrt(var / H + eps);
        ax->mean[r] = (ur_real)mu;
        ax->rstd[r] = (ur_real)rstd;
        for (int j = 0; j < H; j++) {
            ur_real v = (ur_real)((xr[j] - mu) * rstd);
            yr[j] = (g ? g[j] * v : v) + (b ? b[j] : 0);
        }
    }
    return ur__node_done(t, y);
}

/* With x^ = (x - mean) * rstd and D = G * gain (G without a gain), per row:
 *   dbias += G,  dgain += G * x^,  dx += rstd (D - mean(D) - x^ mean(D * x^)). */
void ur__backward_layer_norm(ur_tape *t, ur_node *y) {
    ur_node *x = y->in[0], *gain = y->iattr[0] ? y->in[1] : NULL, *bias = y->iattr[1] ? y->in[1 + y->iattr[0]] : NULL;
    const ln_aux *ax = y->aux;
    ur_real *gx = ur__grad(t, x), *gg = gain ? ur__grad(t, gain) : NULL, *gb = bias ? ur__grad(t, bias) : NULL;
    int H = last_dim(x);
    size_t rows = x->size / (size_t)H;
    for (size_t r = 0; r < rows; r++) {
        const ur_real *xr = x->value + r * H, *G = y->grad + r * H;
        ur_real mu = ax->mean[r], rs = ax->rstd[r];
        double m1 = 0, m2 = 0;
        for (int j = 0; j < H; j++) {
            ur_real xh = (xr[j] - mu) * rs, d = gain ? G[j] * gain->value[j] : G[j];
            if (gb) gb[j] += G[j];
            if (gg) gg[j] += G[j] * xh;
            m1 += d;
            m2 += d * xh;
        }
        if (!gx) continue;
        m1 /= H;
        m2 /= H;
        ur_real *dx = gx + r * H;
        for (int j = 0; j < H; j++) {
            ur_real xh = (xr[j] - mu) * rs, d = gain ? G[j] * gain->value[j] : G[j];
            dx[j] += rs * (d - (ur_real)m1 - xh * (ur_real)m2);
        }
    }
}

static ur_node *c_ln(ur_tape *t, ur_node **p) { return ur_layer_norm(t, p[0], p[1], p[2], (ur_real)1e-5); }
static ur_node *c_ln_plain(ur_tape *t, ur_node **p) { return ur_layer_norm(t, p[0], NULL, NULL, (ur_real)1e-5); }
static ur_node *c_ln_bias(ur_tape *t, ur_node **p) { return ur_layer_norm(t, p[0], NULL, p[1], (ur_real)0.1); }
UR_CASES(LAYER_NORM,
         {"layer_norm/gain-bias", 1077, 3, {2, 1, 1}, {{4, 5}, {5}, {5}}, 0, c_ln},
         {"layer_norm/plain-3d", 1078, 1, {3}, {{2, 3, 4}}, 0, c_ln_plain},
         {"layer_norm/bias-only", 1079, 2, {2, 1}, {{3, 6}, {6}}, 0, c_ln_bias});
