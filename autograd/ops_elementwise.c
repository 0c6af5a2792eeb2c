/* ops_elementwise.c - add, sub, mul, div with broadcasting; the one-input maps.
 * Each op: forward here, backward rule right below it, its gradient-check cases
 * (UR_CASES) right below the rule. */
#include "bcast_internal.h"
#include "tape_internal.h"

#include <math.h>
#include <string.h>

typedef struct same_job {
    ur_op op;
    const ur_real *g, *x1, *x2;
    ur_real *o, *ga, *gb; /* the output (forward); the gradients (backward, NULL: none) */
} same_job;

static void same_shape_forward(void *ctx, size_t at, size_t n) {
    const same_job *j = ctx;
    const ur_real *restrict x1 = j->x1 + at, *restrict x2 = j->x2 + at;
    ur_real *restrict o = j->o + at;
    switch (j->op) {
    case UR_OP_ADD: for (size_t i = 0; i < n; i++) o[i] = x1[i] + x2[i]; break;
    case UR_OP_SUB: for (size_t i = 0; i < n; i++) o[i] = x1[i] - x2[i]; break;
    case UR_OP_MUL: for (size_t i = 0; i < n; i++) o[i] = x1[i] * x2[i]; break;
    default: for (size_t i = 0; i < n; i++) o[i] = x1[i] / x2[i]; break;
    }
}

static ur_node *binary(ur_tape *t, ur_op op, const char *name, ur_node *a, ur_node *b) {
    bcast bc;
    ur_node *y = bcast_node(t, op, name, a, b, &bc);
    if (!y) return NULL;
    const ur_real *x1 = a->value, *x2 = b->value;
    ur_real *o = y->value;
    size_t n = y->size;
    if (a->size == n && b->size == n) { /* same shape: the common case */
        same_job j = {op, NULL, x1, x2, o, NULL, NULL};
        ur__par_chunks(n, same_shape_forward, &j);
    } else {
        switch (op) {
        case UR_OP_ADD: BCAST_LOOP(&bc, o[io] = x1[ia] + x2[ib]); break;
        case UR_OP_SUB: BCAST_LOOP(&bc, o[io] = x1[ia] - x2[ib]); break;
        case UR_OP_MUL: BCAST_LOOP(&bc, o[io] = x1[ia] * x2[ib]); break;
        default: BCAST_LOOP(&bc, o[io] = x1[ia] / x2[ib]); break;
        }
    }
    return ur__node_done(t, y);
}

ur_node *ur_add(ur_tape *t, ur_node *a, ur_node *b) { return binary(t, UR_OP_ADD, "add", a, b); }
ur_node *ur_sub(ur_tape *t, ur_node *a, ur_node *b) { return binary(t, UR_OP_SUB, "sub", a, b); }
ur_node *ur_mul(ur_tape *t, ur_node *a, ur_node *b) { return binary(t, UR_OP_MUL, "mul", a, b); }
ur_node *ur_div(ur_tape *t, ur_node *a, ur_node *b) { return binary(t, UR_OP_DIV, "div", a, b); }

/* d(a op b): add (g, g), sub (g, -g), mul (g b, g a), div (g / b, -g a / b^2).
 * A broadcast input sums the gradient over the dimensions it was repeated along. */

/* Both inputs of the output's shape: loops the compiler vectorises, over chunks of
 * the elements on the threads when large (ur__par_chunks). */
static void same_shape_grad_a(ur_op op, size_t n, const ur_real *restrict g, const ur_real *restrict x2,
                              ur_real *restrict ga) {
    switch (op) {
    case UR_OP_ADD: case UR_OP_SUB: for (size_t i = 0; i < n; i++) ga[i] += g[i]; break;
    case UR_OP_MUL: for (size_t i = 0; i < n; i++) ga[i] += g[i] * x2[i]; break;
    default: for (size_t i = 0; i < n; i++) ga[i] += g[i] / x2[i]; break;
    }
}

static void same_shape_grad_b(ur_op op, size_t n, const ur_real *restrict g, const ur_real *restrict x1,
                              const ur_real *restrict x2, ur_real *restrict gb) {
    switch (op) {
    case UR_OP_ADD: for (size_t i = 0; i < n; i++) gb[i] += g[i]; break;
    case UR_OP_SUB: for (size_t i = 0; i < n; i++) gb[i] -= g[i]; break;
    case UR_OP_MUL: for (size_t i = 0; i < n; i++) gb[i] += g[i] * x1[i]; break;
    default: for (size_t i = 0; i < n; i++) gb[i] -= g[i] * x1[i] / (x2[i] * x2[i]); break;
    }
}

/* a's share, then b's (when b is a, b's adds to a's, element by element as before) */
static void same_shape_backward(void *ctx, size_t at, size_t n) {
    const same_job *j = ctx;
    if (j->ga) same_shape_grad_a(j->op, n, j->g + at, j->x2 + at, j->ga + at);
    if (j->gb) same_shape_grad_b(j->op, n, j->g + at, j->x1 + at, j->x2 + at, j->gb + at);
}

void ur__backward_binary(ur_tape *t, ur_node *y) {
    ur_node *a = y->in[0], *b = y->in[1];
    const ur_real *g = y->grad, *x1 = a->value, *x2 = b->value;
    ur_real *ga = ur__grad(t, a);
    if (a->size == y->size && b->size == y->size) {
        same_job j = {y->op, g, x1, x2, NULL, ga, ur__grad(t, b)};
        ur__par_chunks(y->size, same_shape_backward, &j);
        return;
    }
    ur_shape s;
    bcast bc;
    bcast_shape(&a->shape, &b->shape, &s, &bc);
    if (ga) {
        switch (y->op) {
        case UR_OP_ADD: case UR_OP_SUB: BCAST_LOOP(&bc, ga[ia] += g[io]); break;
        case UR_OP_MUL: BCAST_LOOP(&bc, ga[ia] += g[io] * x2[ib]); break;
        default: BCAST_LOOP(&bc, ga[ia] += g[io] / x2[ib]); break;
        }
    }
    ur_real *gb = ur__grad(t, b); /* when b is a, this adds to what ga got */
    if (gb) {
        switch (y->op) {
        case UR_OP_ADD: BCAST_LOOP(&bc, gb[ib] += g[io]); break;
        case UR_OP_SUB: BCAST_LOOP(&bc, gb[ib] -= g[io]); break;
        case UR_OP_MUL: BCAST_LOOP(&bc, gb[ib] += g[io] * x1[ia]); break;
        default: BCAST_LOOP(&bc, gb[ib] -= g[io] * x1[ia] / (x2[ib] * x2[ib])); break;
        }
    }
}

static ur_node *c_add(ur_tape *t, ur_node **p) { return ur_add(t, p[0], p[1]); }
UR_CASES(ADD,
         {"add/same-shape", 1000, 2, {2, 2}, {{3, 4}, {3, 4}}, 0, c_add},
         {"add/bias", 1001, 2, {2, 1}, {{3, 5}, {5}}, 0, c_add},
         {"add/column", 1002, 2, {3, 2}, {{2, 3, 4}, {3, 1}}, 0, c_add},
         {"add/both-broadcast", 1003, 2, {2, 2}, {{3, 1}, {1, 4}}, 0, c_add});

static ur_node *c_sub(ur_tape *t, ur_node **p) { return ur_sub(t, p[0], p[1]); }
UR_CASES(SUB,
         {"sub/bias", 1004, 2, {2, 1}, {{4, 3}, {3}}, 0, c_sub},
         {"sub/scalar-left", 1005, 2, {0, 2}, {{0}, {2, 3}}, 0, c_sub});

static ur_node *c_mul(ur_tape *t, ur_node **p) { return ur_mul(t, p[0], p[1]); }
UR_CASES(MUL,
         {"mul/same-shape", 1006, 2, {2, 2}, {{2, 5}, {2, 5}}, 0, c_mul},
         {"mul/row-mask", 1007, 2, {2, 2}, {{4, 3}, {4, 1}}, 0, c_mul});

static ur_node *c_div(ur_tape *t, ur_node **p) { return ur_div(t, p[0], p[1]); }
UR_CASES(DIV,
         {"div/same-shape", 1008, 2, {2, 2}, {{3, 2}, {3, 2}}, 1, c_div},
         {"div/bias", 1009, 2, {3, 1}, {{2, 2, 3}, {3}}, 1, c_div});

/* ---- one input ---- */

static ur_node *unary(ur_tape *t, ur_op op, const char *name, ur_node *a, ur_real s) {
    if (!ur__check(t, name, 1, &a)) return NULL;
    ur_node *y = ur__node_new(t, op, &a->shape, 1, &a);
    if (!y) return NULL;
    y->fattr[0] = s;
    const ur_real *x = a->value;
    ur_real *o = y->value;
    size_t n = a->size;
    switch (op) {
    case UR_OP_SCALE: for (size_t i = 0; i < n; i++) o[i] = s * x[i]; break;
    case UR_OP_NEG: for (size_t i = 0; i < n; i++) o[i] = -x[i]; break;
    case UR_OP_ONE_MINUS: for (size_t i = 0; i < n; i++) o[i] = 1 - x[i]; break;
    case UR_OP_ADD_SCALAR: for (size_t i = 0; i < n; i++) o[i] = x[i] + s; break;
    case UR_OP_TANH: ur_vec_tanh(n, x, o); break;
    case UR_OP_SIGMOID: ur_vec_sigmoid(n, x, o); break;
    case UR_OP_RELU: for (size_t i = 0; i < n; i++) o[i] = x[i] > 0 ? x[i] : 0; break;
    case UR_OP_EXP: ur_vec_exp(n, x, o); break;
    case UR_OP_LOG:
        for (size_t i = 0; i < n; i++) {
            if (!(x[i] > 0)) {
                ur__op_error(t, UR_ERR_NUMERIC, name, 1, &a, "element %zu is %g (must be > 0)", i, (double)x[i]);
                return NULL;
            }
            o[i] = log(x[i]);
        }
        break;
    default: break;
    }
    return ur__node_done(t, y);
}

ur_node *ur_scale(ur_tape *t, ur_node *a, ur_real s) { return unary(t, UR_OP_SCALE, "scale", a, s); }
ur_node *ur_neg(ur_tape *t, ur_node *a) { return unary(t, UR_OP_NEG, "neg", a, 0); }
ur_node *ur_one_minus(ur_tape *t, ur_node *a) { return unary(t, UR_OP_ONE_MINUS, "one_minus", a, 0); }
ur_node *ur_add_scalar(ur_tape *t, ur_node *a, ur_real s) { return unary(t, UR_OP_ADD_SCALAR, "add_scalar", a, s); }
ur_node *ur_tanh(ur_tape *t, ur_node *a) { return unary(t, UR_OP_TANH, "tanh", a, 0); }
ur_node *ur_sigmoid(ur_tape *t, ur_node *a) { return unary(t, UR_OP_SIGMOID, "sigmoid", a, 0); }
ur_node *ur_relu(ur_tape *t, ur_node *a) { return unary(t, UR_OP_RELU, "relu", a, 0); }
ur_node *ur_exp(ur_tape *t, ur_node *a) { return unary(t, UR_OP_EXP, "exp", a, 0); }
ur_node *ur_log(ur_tape *t, ur_node *a) { return unary(t, UR_OP_LOG, "log", a, 0); }

/* Derivatives written with the output y where that is cheaper:
 * tanh' = 1 - y^2, sigmoid' = y (1 - y), exp' = y, log' = 1 / x, relu' = [x > 0]. */
void ur__backward_unary(ur_tape *t, ur_node *y) {
    ur_node *a = y->in[0];
    ur_real *restrict ga = ur__grad(t, a);
    if (!ga) return;
    const ur_real *restrict g = y->grad, *restrict x = a->value, *restrict o = y->value;
    ur_real s = y->fattr[0];
    size_t n = y->size;
    switch (y->op) {
    case UR_OP_SCALE: for (size_t i = 0; i < n; i++) ga[i] += s * g[i]; break;
    case UR_OP_NEG: case UR_OP_ONE_MINUS: for (size_t i = 0; i < n; i++) ga[i] -= g[i]; break;
    case UR_OP_ADD_SCALAR: for (size_t i = 0; i < n; i++) ga[i] += g[i]; break;
    case UR_OP_TANH: for (size_t i = 0; i < n; i++) ga[i] += g[i] * (1 - o[i] * o[i]); break;
    case UR_OP_SIGMOID: for (size_t i = 0; i < n; i++) ga[i] += g[i] * o[i] * (1 - o[i]); break;
    case UR_OP_RELU: for (size_t i = 0; i < n; i++) ga[i] += x[i] > 0 ? g[i] : 0; break;
    case UR_OP_EXP: for (size_t i = 0; i < n; i++) ga[i] += g[i] * o[i]; break;
    case UR_OP_LOG: for (size_t i = 0; i < n; i++) ga[i] += g[i] / x[i]; break;
    default: break;
    }
}

static ur_node *c_scale(ur_tape *t, ur_node **p) { return ur_scale(t, p[0], (ur_real)-1.7); }
UR_CASES(SCALE, {"scale", 1010, 1, {2}, {{3, 4}}, 0, c_scale});

static ur_node *c_neg(ur_tape *t, ur_node **p) { return ur_neg(t, p[0]); }
UR_CASES(NEG, {"neg", 1011, 1, {1}, {{7}}, 0, c_neg});

static ur_node *c_one_minus(ur_tape *t, ur_node **p) { return ur_one_minus(t, p[0]); }
UR_CASES(ONE_MINUS, {"one_minus", 1012, 1, {2}, {{2, 3}}, 0, c_one_minus});

static ur_node *c_add_scalar(ur_tape *t, ur_node **p) { return ur_add_scalar(t, p[0], (ur_real)0.3); }
UR_CASES(ADD_SCALAR, {"add_scalar", 1013, 1, {2}, {{2, 3}}, 0, c_add_scalar});

static ur_node *c_tanh(ur_tape *t, ur_node **p) { return ur_tanh(t, p[0]); }
UR_CASES(TANH, {"tanh", 1014, 1, {2}, {{4, 5}}, 0, c_tanh});

static ur_node *c_sigmoid(ur_tape *t, ur_node **p) { return ur_sigmoid(t, p[0]); }
UR_CASES(SIGMOID, {"sigmoid", 1015, 1, {2}, {{4, 5}}, 0, c_sigmoid});

static ur_node *c_relu(ur_tape *t, ur_node **p) { return ur_relu(t, p[0]); }
UR_CASES(RELU, {"relu", 1016, 1, {2}, {{4, 5}}, 0, c_relu});

static ur_node *c_exp(ur_tape *t, ur_node **p) { return ur_exp(t, p[0]); }
UR_CASES(EXP, {"exp", 1017, 1, {3}, {{2, 2, 3}}, 0, c_exp});

static ur_node *c_log(ur_tape *t, ur_node **p) { return ur_log(t, p[0]); }
UR_CASES(LOG, {"log", 1018, 1, {2}, {{3, 3}}, 1, c_log});
