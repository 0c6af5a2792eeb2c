/* ops_reduce.c - softmax, log-softmax, the losses and the reductions.
 * Each op: forward here, backward rule right below it, its gradient-check cases
 * (UR_CASES) right below the rule. */
#include "tape_internal.h"

#include <math.h>
#include <string.h>

static size_t last_dim(const ur_node *a) { return a->shape.ndim ? (size_t)a->shape.dims[a->shape.ndim - 1] : 1; }

/* ---- softmax / log-softmax along the last axis ---- */

static ur_node *softmax_like(ur_tape *t, ur_op op, const char *name, ur_node *a) {
    if (!ur__check(t, name, 1, &a)) return NULL;
    ur_node *y = ur__node_new(t, op, &a->shape, 1, &a);
    if (!y) return NULL;
    int cols = (int)last_dim(a), rows = (int)(a->size / (size_t)cols);
    if (op == UR_OP_SOFTMAX) ur_softmax_rows(rows, cols, a->value, y->value);
    else ur_log_softmax_rows(rows, cols, a->value, y->value);
    return ur__node_done(t, y);
}

ur_node *ur_softmax(ur_tape *t, ur_node *a) { return softmax_like(t, UR_OP_SOFTMAX, "softmax", a); }
ur_node *ur_log_softmax(ur_tape *t, ur_node *a) { return softmax_like(t, UR_OP_LOG_SOFTMAX, "log_softmax", a); }

/* softmax:     dx_i = y_i (g_i - sum_j g_j y_j)
 * log-softmax: dx_i = g_i - exp(y_i) sum_j g_j */
void ur__backward_softmax(ur_tape *t, ur_node *y) {
    ur_real *ga = ur__grad(t, y->in[0]);
    if (!ga) return;
    size_t cols = last_dim(y), rows = y->size / cols;
    for (size_t r = 0; r < rows; r++) {
        const ur_real *g = y->grad + r * cols, *o = y->value + r * cols;
        ur_real *d = ga + r * cols;
        double s = 0;
        if (y->op == UR_OP_SOFTMAX) {
            for (size_t j = 0; j < cols; j++) s += g[j] * o[j];
            for (size_t j = 0; j < cols; j++) d[j] += o[j] * (g[j] - (ur_real)s);
        } else {
            for (size_t j = 0; j < cols; j++) s += g[j];
            for (size_t j = 0; j < cols; j++) d[j] += g[j] - exp(o[j]) * (ur_real)s;
        }
    }
}

static ur_node *c_softmax(ur_tape *t, ur_node **p) { return ur_softmax(t, p[0]); }
UR_CASES(SOFTMAX,
         {"softmax", 1029, 1, {2}, {{3, 5}}, 0, c_softmax},
         {"softmax/3d", 1030, 1, {3}, {{2, 2, 4}}, 0, c_softmax});

static ur_node *c_log_softmax(ur_tape *t, ur_node **p) { return ur_log_softmax(t, p[0]); }
UR_CASES(LOG_SOFTMAX, {"log_softmax", 1031, 1, {2}, {{3, 5}}, 0, c_log_softmax});

/* ---- cross-entropy from logits ----
 * aux holds the row-wise log-softmax (N,C) followed by the targets and mask. */
typedef struct ce_aux {
    ur_real *logp;
    int *targets;
    ur_real *mask; /* NULL: every row weighs 1 */
    double denom;  /* sum of the mask */
} ce_aux;

ur_node *ur_cross_entropy(ur_tape *t, ur_node *logits, const int *targets, const ur_real *mask) {
    if (!ur__check(t, "cross_entropy", 1, &logits)) return NULL;
    if (logits->shape.ndim != 2) {
        ur__op_error(t, UR_ERR_SHAPE, "cross_entropy", 1, &logits, "logits must be 2-d (N, C)");
        return NULL;
    }
    if (!targets) {
        ur__op_error(t, UR_ERR_ARG, "cross_entropy", 1, &logits, "targets is NULL");
        return NULL;
    }
    int N = logits->shape.dims[0], C = logits->shape.dims[1];
    for (int i = 0; i < N; i++) {
        int skip = mask && mask[i] == 0;
        if (!skip && (targets[i] < 0 || targets[i] >= C)) {
            ur__op_error(t, UR_ERR_ARG, "cross_entropy", 1, &logits, "target %d of row %d is outside [0, %d)",
                         targets[i], i, C);
            return NULL;
        }
        if (mask && !isfinite(mask[i])) {
            ur__op_error(t, UR_ERR_NUMERIC, "cross_entropy", 1, &logits, "mask of row %d is not finite", i);
            return NULL;
        }
    }
    ur_shape s;
    ur_shape_make(&s, 0, NULL, "cross_entropy");
    ur_node *y = ur__node_new(t, UR_OP_CROSS_ENTROPY, &s, 1, &logits);
    ce_aux *ax = y ? ur__alloc(t, sizeof *ax) : NULL;
    if (!ax) return NULL;
    ax->logp = ur__alloc_real(t, logits->size);
    ax->targets = ur__alloc(t, (size_t)N * sizeof(int));
    ax->mask = mask ? ur__alloc_real(t, (size_t)N) : NULL;
    if (!ax->logp || !ax->targets || (mask && !ax->mask)) return NULL;
    memcpy(ax->targets, targets, (size_t)N * sizeof(int));
    if (mask) memcpy(ax->mask, mask, (size_t)N * sizeof(ur_real));
    ur_log_softmax_rows(N, C, logits->value, ax->logp);
    double loss = 0, denom = 0;
    for (int i = 0; i < N; i++) {
        double w = mask ? mask[i] : 1;
        if (w == 0) continue;
        loss -= w * ax->logp[(size_t)i * C + targets[i]];
        denom += w;
    }
    ax->denom = denom;
    y->value[0] = denom != 0 ? (ur_real)(loss / denom) : 0;
    y->aux = ax;
    return ur__node_done(t, y);
}

/* d/dlogits_i = g * w_i / sum(w) * (softmax_i - onehot(target_i)); rows of weight 0
 * get 0. softmax_i = exp(log-softmax_i), a vector exp over the row. */
static void ce_row(int C, ur_real c, const ur_real *restrict lp, ur_real *restrict d) {
    ur_real tmp[256];
    for (int j0 = 0; j0 < C; j0 += 256) {
        int n = C - j0 < 256 ? C - j0 : 256;
        ur_vec_exp((size_t)n, lp + j0, tmp);
        for (int j = 0; j < n; j++) d[j0 + j] += c * tmp[j];
    }
}

void ur__backward_cross_entropy(ur_tape *t, ur_node *y) {
    ur_real *ga = ur__grad(t, y->in[0]);
    const ce_aux *ax = y->aux;
    if (!ga) return;
    int N = y->in[0]->shape.dims[0], C = y->in[0]->shape.dims[1];
    for (int i = 0; i < N; i++) {
        ur_real w = ax->mask ? ax->mask[i] : 1;
        ur_real *d = ga + (size_t)i * C;
        if (w == 0 || ax->denom == 0) continue;
        ur_real c = (ur_real)(y->grad[0] * w / ax->denom);
        ce_row(C, c, ax->logp + (size_t)i * C, d);
        d[ax->targets[i]] -= c;
    }
}

static const int ce_targets[6] = {2, 0, 3, 1, 3, 2};
static ur_node *c_ce(ur_tape *t, ur_node **p) { return ur_cross_entropy(t, p[0], ce_targets, NULL); }
static const ur_real ce_mask[6] = {1, 0, 1, 1, 0, 1};
static ur_node *c_ce_mask(ur_tape *t, ur_node **p) { return ur_cross_entropy(t, p[0], ce_targets, ce_mask); }
static const ur_real ce_weights[6] = {0.5, 2, 1, 0, 1.5, 1};
static ur_node *c_ce_weights(ur_tape *t, ur_node **p) { return ur_cross_entropy(t, p[0], ce_targets, ce_weights); }
UR_CASES(CROSS_ENTROPY,
         {"cross_entropy", 1032, 1, {2}, {{6, 4}}, 0, c_ce},
         {"cross_entropy/mask", 1033, 1, {2}, {{6, 4}}, 0, c_ce_mask},
         {"cross_entropy/weights", 1034, 1, {2}, {{6, 4}}, 0, c_ce_weights});

/* ---- mean squared error ---- */

ur_node *ur_mse(ur_tape *t, ur_node *a, ur_node *b) {
    ur_node *in[2] = {a, b};
    if (!ur__check(t, "mse", 2, in)) return NULL;
    if (!ur_shape_equal(&a->shape, &b->shape)) {
        ur__op_error(t, UR_ERR_SHAPE, "mse", 2, in, "shapes differ");
        return NULL;
    }
    ur_shape s;
    ur_shape_make(&s, 0, NULL, "mse");
    ur_node *y = ur__node_new(t, UR_OP_MSE, &s, 2, in);
    if (!y) return NULL;
    double acc = 0;
    for (size_t i = 0; i < a->size; i++) {
        double d = (double)a->value[i] - b->value[i];
        acc += d * d;
    }
    y->value[0] = (ur_real)(acc / (double)a->size);
    return ur__node_done(t, y);
}

/* d/da = 2 (a - b) / n * g, d/db = -d/da */
void ur__backward_mse(ur_tape *t, ur_node *y) {
    ur_node *a = y->in[0], *b = y->in[1];
    ur_real *ga = ur__grad(t, a), *gb = ur__grad(t, b);
    ur_real c = 2 * y->grad[0] / (ur_real)a->size;
    for (size_t i = 0; i < a->size; i++) {
        ur_real d = c * (a->value[i] - b->value[i]);
        if (ga) ga[i] += d;
        if (gb) gb[i] -= d;
    }
}

static ur_node *c_mse(ur_tape *t, ur_node **p) { return ur_mse(t, p[0], p[1]); }
UR_CASES(MSE, {"mse", 1035, 2, {2, 2}, {{3, 4}, {3, 4}}, 0, c_mse});

/* ---- sum and mean of everything ----
 * In double. Fewer than SUM_BLOCKED values: one sum in order. More (a loss over a
 * whole sequence): one chain of additions would take four cycles a value, so the
 * values are cut into blocks of UR_PAR_CHUNK, each summed as SUM_LANES interleaved
 * partial sums added pairwise, and the blocks' sums are added in order. The blocks
 * depend on the size alone: the result is the same on any number of threads. */
enum { SUM_LANES = 16, SUM_BLOCKED = 2 * UR_PAR_CHUNK };

typedef struct sum_job {
    const ur_real *x;
    double *block; /* one sum per block */
} sum_job;

static void sum_blocks(void *ctx, size_t at, size_t len) {
    const sum_job *j = ctx;
    for (size_t b0 = at; b0 < at + len; b0 += UR_PAR_CHUNK) {
        size_t n = at + len - b0 < UR_PAR_CHUNK ? at + len - b0 : UR_PAR_CHUNK, i = 0;
        const ur_real *x = j->x + b0;
        double lane[SUM_LANES] = {0};
        for (; i + SUM_LANES <= n; i += SUM_LANES)
            for (int l = 0; l < SUM_LANES; l++) lane[l] += x[i + l];
        for (int l = 0; i < n; i++, l++) lane[l] += x[i];
        for (int w = SUM_LANES / 2; w > 0; w /= 2)
            for (int l = 0; l < w; l++) lane[l] += lane[l + w];
        j->block[b0 / UR_PAR_CHUNK] = lane[0];
    }
}

static ur_node *reduce_all(ur_tape *t, ur_op op, const char *name, ur_node *a) {
    if (!ur__check(t, name, 1, &a)) return NULL;
    ur_shape s;
    ur_shape_make(&s, 0, NULL, name);
    ur_node *y = ur__node_new(t, op, &s, 1, &a);
    if (!y) return NULL;
    size_t n = a->size;
    double acc = 0;
    if (n < SUM_BLOCKED) {
        for (size_t i = 0; i < n; i++) acc += a->value[i];
    } else {
        size_t blocks = (n + UR_PAR_CHUNK - 1) / UR_PAR_CHUNK;
        sum_job j = {a->value, ur__alloc(t, blocks * sizeof(double))};
        if (!j.block) return NULL;
        ur__par_chunks(n, sum_blocks, &j);
        for (size_t b = 0; b < blocks; b++) acc += j.block[b];
    }
    y->value[0] = (ur_real)(op == UR_OP_MEAN ? acc / (double)n : acc);
    return ur__node_done(t, y);
}

ur_node *ur_sum(ur_tape *t, ur_node *a) { return reduce_all(t, UR_OP_SUM, "sum", a); }
ur_node *ur_mean(ur_tape *t, ur_node *a) { return reduce_all(t, UR_OP_MEAN, "mean", a); }

typedef struct add_const_job {
    ur_real g;
    ur_real *ga;
} add_const_job;

static void add_const(void *ctx, size_t at, size_t len) {
    const add_const_job *j = ctx;
    for (size_t i = at; i < at + len; i++) j->ga[i] += j->g;
}

void ur__backward_reduce_all(ur_tape *t, ur_node *y) {
    ur_node *a = y->in[0];
    ur_real *ga = ur__grad(t, a);
    if (!ga) return;
    add_const_job j = {y->op == UR_OP_MEAN ? y->grad[0] / (ur_real)a->size : y->grad[0], ga};
    ur__par_chunks(a->size, add_const, &j);
}

static ur_node *c_sum(ur_tape *t, ur_node **p) { return ur_sum(t, p[0]); }
UR_CASES(SUM, {"sum", 1036, 1, {2}, {{3, 4}}, 0, c_sum});

static ur_node *c_mean(ur_tape *t, ur_node **p) { return ur_mean(t, p[0]); }
UR_CASES(MEAN, {"mean", 1037, 1, {3}, {{2, 3, 4}}, 0, c_mean});

/* ---- along one axis: (outer, len, inner) -> (outer, inner) ---- */

static ur_node *reduce_axis(ur_tape *t, ur_op op, const char *name, ur_node *a, int axis, int keepdim) {
    ur_node *y = ur__reduce_node(t, op, name, a, axis, keepdim);
    if (!y) return NULL;
    int ax = y->iattr[0];
    size_t outer, len, inner;
    ur__split_axis(&a->shape, ax, &outer, &len, &inner);
    int *arg = NULL;
    if (op == UR_OP_MAX_AXIS) {
        arg = ur__alloc(t, y->size * sizeof(int));
        if (!arg) return NULL;
        y->aux = arg;
    }
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < inner; i++) {
            const ur_real *x = a->value + o * len * inner + i;
            size_t out = o * inner + i;
            if (op == UR_OP_MAX_AXIS) {
                size_t best = 0;
                for (size_t l = 1; l < len; l++)
                    if (x[l * inner] > x[best * inner]) best = l;
                y->value[out] = x[best * inner];
                arg[out] = (int)best;
            } else {
                double acc = 0;
                for (size_t l = 0; l < len; l++) acc += x[l * inner];
                y->value[out] = (ur_real)(op == UR_OP_MEAN_AXIS ? acc / (double)len : acc);
            }
        }
    return ur__node_done(t, y);
}

ur_node *ur_sum_axis(ur_tape *t, ur_node *a, int axis, int keepdim) {
    return reduce_axis(t, UR_OP_SUM_AXIS, "sum_axis", a, axis, keepdim);
}
ur_node *ur_mean_axis(ur_tape *t, ur_node *a, int axis, int keepdim) {
    return reduce_axis(t, UR_OP_MEAN_AXIS, "mean_axis", a, axis, keepdim);
}
ur_node *ur_max_axis(ur_tape *t, ur_node *a, int axis, int keepdim) {
    return reduce_axis(t, UR_OP_MAX_AXIS, "max_axis", a, axis, keepdim);
}

/* sum: every element of the axis gets g; mean: g / len; max: only the argmax gets g. */
void ur__backward_reduce_axis(ur_tape *t, ur_node *y) {
    ur_node *a = y->in[0];
    ur_real *ga = ur__grad(t, a);
    if (!ga) return;
    size_t outer, len, inner;
    ur__split_axis(&a->shape, y->iattr[0], &outer, &len, &inner);
    const int *arg = y->aux;
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < inner; i++) {
            size_t out = o * inner + i;
            ur_real *d = ga + o * len * inner + i;
            ur_real g = y->grad[out];
            if (y->op == UR_OP_MAX_AXIS) d[(size_t)arg[out] * inner] += g;
            else {
                if (y->op == UR_OP_MEAN_AXIS) g /= (ur_real)len;
                for (size_t l = 0; l < len; l++) d[l * inner] += g;
            }
        }
}

static ur_node *c_sum_axis0(ur_tape *t, ur_node **p) { return ur_sum_axis(t, p[0], 0, 0); }
static ur_node *c_sum_axis_mid(ur_tape *t, ur_node **p) { return ur_sum_axis(t, p[0], 1, 1); }
UR_CASES(SUM_AXIS,
         {"sum_axis/0", 1038, 1, {2}, {{3, 4}}, 0, c_sum_axis0},
         {"sum_axis/middle-keepdim", 1039, 1, {3}, {{2, 3, 4}}, 0, c_sum_axis_mid});

static ur_node *c_mean_axis(ur_tape *t, ur_node **p) { return ur_mean_axis(t, p[0], -1, 0); }
UR_CASES(MEAN_AXIS, {"mean_axis/last", 1040, 1, {3}, {{2, 3, 4}}, 0, c_mean_axis});

static ur_node *c_max_axis(ur_tape *t, ur_node **p) { return ur_max_axis(t, p[0], -1, 0); }
static ur_node *c_max_axis0(ur_tape *t, ur_node **p) { return ur_max_axis(t, p[0], 0, 1); }
UR_CASES(MAX_AXIS,
         {"max_axis/last", 1041, 1, {2}, {{4, 5}}, 0, c_max_axis},
         {"max_axis/0-keepdim", 1042, 1, {3}, {{3, 2, 2}}, 0, c_max_axis0});
