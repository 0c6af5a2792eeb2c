/* ops_pointwise.c - the one-input maps users reach for (square, sqrt, pow, abs,
 * softplus, leaky ReLU, log-sigmoid, clamp) and the elementwise maximum, minimum
 * and where(mask, a, b) of two broadcast inputs.
 * Each op: forward here, backward rule right below it, its gradient-check cases
 * (UR_CASES) right below the rule. */
#include "bcast_internal.h"

#include <math.h>

/* ---- one input ----
 * fattr[0] holds the op's scalar (pow's exponent, leaky ReLU's slope, clamp's lo),
 * fattr[1] clamp's hi. */

/* log(1 + e^x) without overflow: log1p(e^-|x|) + max(x, 0). */
static ur_real softplus(ur_real x) { return (ur_real)(log1p(exp(-fabs((double)x))) + (x > 0 ? x : 0)); }

/* 1 / (1 + e^-x), from the side where exp cannot overflow. */
static ur_real sigm(ur_real x) {
    if (x >= 0) return (ur_real)(1 / (1 + exp(-(double)x)));
    double e = exp((double)x);
    return (ur_real)(e / (1 + e));
}

/* Refuses inputs outside an op's domain: sqrt needs x > 0, pow with a non-integer
 * exponent too. Returns 0 and records the error. */
static int positive_inputs(ur_tape *t, const char *name, ur_node *a, const char *why) {
    for (size_t i = 0; i < a->size; i++)
        if (!(a->value[i] > 0)) {
            ur__op_error(t, UR_ERR_NUMERIC, name, 1, &a, "element %zu is %g (must be > 0%s)", i,
                         (double)a->value[i], why);
            return 0;
        }
    return 1;
}

static ur_node *map1(ur_tape *t, ur_op op, const char *name, ur_node *a, ur_real s0, ur_real s1) {
    if (!ur__check(t, name, 1, &a)) return NULL;
    if (op == UR_OP_SQRT && !positive_inputs(t, name, a, "")) return NULL;
    if (op == UR_OP_POW && !isfinite(s0)) {
        ur__op_error(t, UR_ERR_ARG, name, 1, &a, "exponent %g is not finite", (double)s0);
        return NULL;
    }
    if (op == UR_OP_POW && s0 != floor(s0) && !positive_inputs(t, name, a, " for a non-integer exponent")) return NULL;
    if (op == UR_OP_LEAKY_RELU && !isfinite(s0)) {
        ur__op_error(t, UR_ERR_ARG, name, 1, &a, "slope %g is not finite", (double)s0);
        return NULL;
    }
    if (op == UR_OP_CLAMP && !(s0 <= s1)) {
        ur__op_error(t, UR_ERR_ARG, name, 1, &a, "needs lo <= hi, got lo = %g, hi = %g", (double)s0, (double)s1);
        return NULL;
    }
    ur_node *y = ur__node_new(t, op, &a->shape, 1, &a);
    if (!y) return NULL;
    y->fattr[0] = s0;
    y->fattr[1] = s1;
    const ur_real *x = a->value;
    ur_real *o = y->value;
    size_t n = a->size;
    switch (op) {
    case UR_OP_SQUARE: for (size_t i = 0; i < n; i++) o[i] = x[i] * x[i]; break;
    case UR_OP_SQRT: for (size_t i = 0; i < n; i++) o[i] = (ur_real)sqrt((double)x[i]); break;
    case UR_OP_POW: for (size_t i = 0; i < n; i++) o[i] = (ur_real)pow((double)x[i], (double)s0); break;
    case UR_OP_ABS: for (size_t i = 0; i < n; i++) o[i] = x[i] < 0 ? -x[i] : x[i]; break;
    case UR_OP_SOFTPLUS: for (size_t i = 0; i < n; i++) o[i] = softplus(x[i]); break;
    case UR_OP_LEAKY_RELU: for (size_t i = 0; i < n; i++) o[i] = x[i] > 0 ? x[i] : s0 * x[i]; break;
    case UR_OP_LOG_SIGMOID: for (size_t i = 0; i < n; i++) o[i] = -softplus(-x[i]); break;
    case UR_OP_CLAMP: for (size_t i = 0; i < n; i++) o[i] = x[i] < s0 ? s0 : x[i] > s1 ? s1 : x[i]; break;
    default: break;
    }
    return ur__node_done(t, y);
}

ur_node *ur_square(ur_tape *t, ur_node *a) { return map1(t, UR_OP_SQUARE, "square", a, 0, 0); }
ur_node *ur_sqrt(ur_tape *t, ur_node *a) { return map1(t, UR_OP_SQRT, "sqrt", a, 0, 0); }
ur_node *ur_pow(ur_tape *t, ur_node *a, ur_real p) { return map1(t, UR_OP_POW, "pow", a, p, 0); }
ur_node *ur_abs(ur_tape *t, ur_node *a) { return map1(t, UR_OP_ABS, "abs", a, 0, 0); }
ur_node *ur_softplus(ur_tape *t, ur_node *a) { return map1(t, UR_OP_SOFTPLUS, "softplus", a, 0, 0); }
ur_node *ur_leaky_relu(ur_tape *t, ur_node *a, ur_real slope) {
    return map1(t, UR_OP_LEAKY_RELU, "leaky_relu", a, slope, 0);
}
ur_node *ur_log_sigmoid(ur_tape *t, ur_node *a) { return map1(t, UR_OP_LOG_SIGMOID, "log_sigmoid", a, 0, 0); }
ur_node *ur_clamp(ur_tape *t, ur_node *a, ur_real lo, ur_real hi) { return map1(t, UR_OP_CLAMP, "clamp", a, lo, hi); }

/* square' = 2x, sqrt' = 1 / (2y), pow' = p x^(p-1) (0 for p = 0), abs' = sign x
 * (0 at 0), softplus' = sigmoid(x), leaky' = 1 or slope (x > 0 or not),
 * log-sigmoid' = sigmoid(-x), clamp' = [lo < x < hi]. */
void ur__backward_pointwise(ur_tape *t, ur_node *y) {
    ur_node *a = y->in[0];
    ur_real *restrict ga = ur__grad(t, a);
    if (!ga) return;
    const ur_real *restrict g = y->grad, *restrict x = a->value, *restrict o = y->value;
    ur_real s0 = y->fattr[0], s1 = y->fattr[1];
    size_t n = y->size;
    switch (y->op) {
    case UR_OP_SQUARE: for (size_t i = 0; i < n; i++) ga[i] += 2 * x[i] * g[i]; break;
    case UR_OP_SQRT: for (size_t i = 0; i < n; i++) ga[i] += g[i] / (2 * o[i]); break;
    case UR_OP_POW:
        if (s0 == 0) break;
        for (size_t i = 0; i < n; i++) ga[i] += g[i] * s0 * (ur_real)pow((double)x[i], (double)s0 - 1);
        break;
    case UR_OP_ABS: for (size_t i = 0; i < n; i++) ga[i] += x[i] > 0 ? g[i] : x[i] < 0 ? -g[i] : 0; break;
    case UR_OP_SOFTPLUS: for (size_t i = 0; i < n; i++) ga[i] += g[i] * sigm(x[i]); break;
    case UR_OP_LEAKY_RELU: for (size_t i = 0; i < n; i++) ga[i] += x[i] > 0 ? g[i] : s0 * g[i]; break;
    case UR_OP_LOG_SIGMOID: for (size_t i = 0; i < n; i++) ga[i] += g[i] * sigm(-x[i]); break;
    case UR_OP_CLAMP: for (size_t i = 0; i < n; i++) ga[i] += x[i] > s0 && x[i] < s1 ? g[i] : 0; break;
    default: break;
    }
}

static ur_node *c_square(ur_tape *t, ur_node **p) { return ur_square(t, p[0]); }
UR_CASES(SQUARE, {"square", 1056, 1, {2}, {{3, 4}}, 0, c_square});

static ur_node *c_sqrt(ur_tape *t, ur_node **p) { return ur_sqrt(t, p[0]); }
UR_CASES(SQRT, {"sqrt", 1057, 1, {2}, {{3, 4}}, 1, c_sqrt});

static ur_node *c_pow_real(ur_tape *t, ur_node **p) { return ur_pow(t, p[0], (ur_real)-1.5); }
static ur_node *c_pow_int(ur_tape *t, ur_node **p) { return ur_pow(t, p[0], 3); }
UR_CASES(POW,
         {"pow/real-exponent", 1058, 1, {2}, {{3, 4}}, 1, c_pow_real},
         {"pow/integer-exponent", 1059, 1, {2}, {{3, 4}}, 0, c_pow_int});

static ur_node *c_abs(ur_tape *t, ur_node **p) { return ur_abs(t, p[0]); }
UR_CASES(ABS, {"abs", 1060, 1, {2}, {{4, 5}}, 0, c_abs});

static ur_node *c_softplus(ur_tape *t, ur_node **p) { return ur_softplus(t, ur_scale(t, p[0], 8)); }
UR_CASES(SOFTPLUS, {"softplus", 1061, 1, {2}, {{4, 5}}, 0, c_softplus});

static ur_node *c_leaky_relu(ur_tape *t, ur_node **p) { return ur_leaky_relu(t, p[0], (ur_real)0.1); }
UR_CASES(LEAKY_RELU, {"leaky_relu", 1062, 1, {2}, {{4, 5}}, 0, c_leaky_relu});

static ur_node *c_log_sigmoid(ur_tape *t, ur_node **p) { return ur_log_sigmoid(t, ur_scale(t, p[0], 8)); }
UR_CASES(LOG_SIGMOID, {"log_sigmoid", 1063, 1, {2}, {{4, 5}}, 0, c_log_sigmoid});

static ur_node *c_clamp(ur_tape *t, ur_node **p) { return ur_clamp(t, p[0], (ur_real)-0.6, (ur_real)0.7); }
UR_CASES(CLAMP, {"clamp", 1064, 1, {2}, {{4, 5}}, 0, c_clamp});

/* ---- maximum / minimum of two inputs, broadcast like ur_add ---- */

static ur_node *extremum(ur_tape *t, ur_op op, const char *name, ur_node *a, ur_node *b) {
    bcast bc;
    ur_node *y = bcast_node(t, op, name, a, b, &bc);
    if (!y) return NULL;
    const ur_real *x1 = a->value, *x2 = b->value;
    ur_real *o = y->value;
    if (op == UR_OP_MAXIMUM) BCAST_LOOP(&bc, o[io] = x1[ia] >= x2[ib] ? x1[ia] : x2[ib]);
    else BCAST_LOOP(&bc, o[io] = x1[ia] <= x2[ib] ? x1[ia] : x2[ib]);
    return ur__node_done(t, y);
}

ur_node *ur_maximum(ur_tape *t, ur_node *a, ur_node *b) { return extremum(t, UR_OP_MAXIMUM, "maximum", a, b); }
ur_node *ur_minimum(ur_tape *t, ur_node *a, ur_node *b) { return extremum(t, UR_OP_MINIMUM, "minimum", a, b); }

/* G goes to the input that was chosen; on a tie that is a. A broadcast input sums
 * what it received over the dimensions it was repeated along. */
void ur__backward_extremum(ur_tape *t, ur_node *y) {
    ur_node *a = y->in[0], *b = y->in[1];
    const ur_real *g = y->grad, *x1 = a->value, *x2 = b->value;
    ur_shape s;
    bcast bc;
    bcast_shape(&a->shape, &b->shape, &s, &bc);
    int mx = y->op == UR_OP_MAXIMUM;
    ur_real *ga = ur__grad(t, a);
    if (ga) BCAST_LOOP(&bc, if (mx ? x1[ia] >= x2[ib] : x1[ia] <= x2[ib]) ga[ia] += g[io]);
    ur_real *gb = ur__grad(t, b); /* when b is a, the ties already went to ga */
    if (gb) BCAST_LOOP(&bc, if (mx ? x1[ia] < x2[ib] : x1[ia] > x2[ib]) gb[ib] += g[io]);
}

static ur_node *c_maximum(ur_tape *t, ur_node **p) { return ur_maximum(t, p[0], p[1]); }
UR_CASES(MAXIMUM,
         {"maximum/same-shape", 1065, 2, {2, 2}, {{3, 4}, {3, 4}}, 0, c_maximum},
         {"maximum/bias", 1066, 2, {3, 1}, {{2, 3, 4}, {4}}, 0, c_maximum});

static ur_node *c_minimum(ur_tape *t, ur_node **p) { return ur_minimum(t, p[0], p[1]); }
UR_CASES(MINIMUM,
         {"minimum/same-shape", 1067, 2, {2, 2}, {{3, 4}, {3, 4}}, 0, c_minimum},
         {"minimum/both-broadcast", 1068, 2, {2, 2}, {{3, 1}, {1, 4}}, 0, c_minimum});

/* ---- where(mask, a, b): a where the mask is 1, b where it is 0 ----
 * a and b broadcast like ur_add; the mask broadcasts to their common shape. The
 * mask is a constant (no gradient), so it is refused when it requires one. */

/* The forward (y set) or the backward (g set) over the output, in 4-d
 * coordinates with each input's strides. */
static void where_walk(const bcast *bc, const size_t *sm, const ur_real *m, const ur_real *a, const ur_real *b,
                       ur_real *y, const ur_real *g, ur_real *ga, ur_real *gb) {
    size_t io = 0;
    for (int i0 = 0; i0 < bc->dims[0]; i0++)
        for (int i1 = 0; i1 < bc->dims[1]; i1++)
            for (int i2 = 0; i2 < bc->dims[2]; i2++)
                for (int i3 = 0; i3 < bc->dims[3]; i3++, io++) {
                    size_t ia = i0 * bc->sa[0] + i1 * bc->sa[1] + i2 * bc->sa[2] + i3 * bc->sa[3];
                    size_t ib = i0 * bc->sb[0] + i1 * bc->sb[1] + i2 * bc->sb[2] + i3 * bc->sb[3];
                    size_t im = i0 * sm[0] + i1 * sm[1] + i2 * sm[2] + i3 * sm[3];
                    if (y) y[io] = m[im] != 0 ? a[ia] : b[ib];
                    else if (m[im] != 0 && ga) ga[ia] += g[io];
                    else if (m[im] == 0 && gb) gb[ib] += g[io];
                }
}

/* Shapes of where: out = broadcast(a, b), and the mask must broadcast to out. */
static int where_shapes(const ur_node *m, const ur_node *a, const ur_node *b, ur_shape *s, bcast *bc, size_t *sm) {
    if (!bcast_shape(&a->shape, &b->shape, s, bc)) return 0;
    ur_shape s2;
    bcast bm;
    if (!bcast_shape(&m->shape, s, &s2, &bm) || !ur_shape_equal(&s2, s)) return 0;
    strides_of(&m->shape, bc->dims, sm);
    return 1;
}

ur_node *ur_where(ur_tape *t, ur_node *mask, ur_node *a, ur_node *b) {
    ur_node *in[3] = {mask, a, b};
    if (!ur__check(t, "where", 3, in)) return NULL;
    if (mask->requires_grad) {
        ur__op_error(t, UR_ERR_ARG, "where", 3, in, "the mask must be a constant (it gets no gradient)");
        return NULL;
    }
    for (size_t i = 0; i < mask->size; i++)
        if (mask->value[i] != 0 && mask->value[i] != 1) {
            ur__op_error(t, UR_ERR_ARG, "where", 3, in, "mask element %zu is %g (must be 0 or 1)", i,
                         (double)mask->value[i]);
            return NULL;
        }
    ur_shape s;
    bcast bc;
    size_t sm[4];
    if (!where_shapes(mask, a, b, &s, &bc, sm)) {
        ur__op_error(t, UR_ERR_SHAPE, "where", 3, in, "shapes do not broadcast (a with b, the mask to their shape)");
        return NULL;
    }
    ur_node *y = ur__node_new(t, UR_OP_WHERE, &s, 3, in);
    if (!y) return NULL;
    where_walk(&bc, sm, mask->value, a->value, b->value, y->value, NULL, NULL, NULL);
    return ur__node_done(t, y);
}

/* da += G where the mask is 1, db += G where it is 0 (summed over broadcasting). */
void ur__backward_where(ur_tape *t, ur_node *y) {
    ur_node *m = y->in[0], *a = y->in[1], *b = y->in[2];
    ur_shape s;
    bcast bc;
    size_t sm[4];
    where_shapes(m, a, b, &s, &bc, sm);
    ur_real *ga = ur__grad(t, a);
    if (ga) where_walk(&bc, sm, m->value, a->value, b->value, NULL, y->grad, ga, NULL);
    ur_real *gb = ur__grad(t, b);
    if (gb) where_walk(&bc, sm, m->value, a->value, b->value, NULL, y->grad, NULL, gb);
}

static const ur_real where_mask_34[12] = {1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1};
static ur_node *c_where(ur_tape *t, ur_node **p) {
    return ur_where(t, ur_input_data(t, 2, (int[]){3, 4}, where_mask_34), p[0], p[1]);
}
/* a mask (3, 1) over rows, a (3, 4), b a bias (4) */
static const ur_real where_mask_col[3] = {0, 1, 1};
static ur_node *c_where_bcast(ur_tape *t, ur_node **p) {
    return ur_where(t, ur_input_data(t, 2, (int[]){3, 1}, where_mask_col), p[0], p[1]);
}
UR_CASES(WHERE,
         {"where/same-shape", 1069, 2, {2, 2}, {{3, 4}, {3, 4}}, 0, c_where},
         {"where/broadcast", 1070, 2, {2, 1}, {{3, 4}, {4}}, 0, c_where_bcast});
