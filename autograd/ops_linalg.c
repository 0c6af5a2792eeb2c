/* ops_linalg.c - matmul (plain and batched, with transpose flags), linear, transpose.
 * Each op: forward here, backward rule right below it, its gradient-check cases
 * (UR_CASES) right below the rule. */
#include "tape_internal.h"

#include <string.h>

/* matmul: y = op(a) op(b). attrs: iattr[0] = trans_a, iattr[1] = trans_b.
 * Shapes per batch: op(a) (m,k), op(b) (k,n), y (m,n). */
typedef struct mm_dims {
    int batch, m, n, k;
    int ra, ca, rb, cb; /* stored rows/cols of a and b */
} mm_dims;

static mm_dims mm_of(const ur_node *a, const ur_node *b, int ta, int tb) {
    mm_dims d;
    int nd = a->shape.ndim;
    d.batch = nd == 3 ? a->shape.dims[0] : 1;
    d.ra = a->shape.dims[nd - 2];
    d.ca = a->shape.dims[nd - 1];
    d.rb = b->shape.dims[nd - 2];
    d.cb = b->shape.dims[nd - 1];
    d.m = ta ? d.ca : d.ra;
    d.k = ta ? d.ra : d.ca;
    d.n = tb ? d.rb : d.cb;
    return d;
}

ur_node *ur_matmul(ur_tape *t, ur_node *a, ur_node *b, int trans_a, int trans_b) {
    ur_node *in[2] = {a, b};
    if (!ur__check(t, "matmul", 2, in)) return NULL;
    int nd = a->shape.ndim;
    if ((nd != 2 && nd != 3) || b->shape.ndim != nd) {
        ur__op_error(t, UR_ERR_SHAPE, "matmul", 2, in, "inputs must both be 2-d or both 3-d");
        return NULL;
    }
    mm_dims d = mm_of(a, b, trans_a, trans_b);
    int kb = trans_b ? d.cb : d.rb;
    if (d.k != kb || (nd == 3 && a->shape.dims[0] != b->shape.dims[0])) {
        ur__op_error(t, UR_ERR_SHAPE, "matmul", 2, in, "inner dimensions differ (%d vs %d)%s", d.k, kb,
                     trans_a || trans_b ? " after the transpose flags" : "");
        return NULL;
    }
    ur_shape s;
    int dims[3] = {d.batch, d.m, d.n};
    ur_shape_make(&s, nd, nd == 3 ? dims : dims + 1, "matmul");
    ur_node *y = ur__node_new(t, UR_OP_MATMUL, &s, 2, in);
    if (!y) return NULL;
    y->iattr[0] = trans_a != 0;
    y->iattr[1] = trans_b != 0;
    size_t sa = (size_t)d.ra * d.ca, sb = (size_t)d.rb * d.cb, sy = (size_t)d.m * d.n;
    if (nd == 2) /* b may be a weight read many times */
        ur__gemm_w(t, "matmul", y->iattr[0], d.m, a->value, d.ca, b, y->iattr[1], 0, y->value, d.n);
    for (int i = 0; i < d.batch && nd == 3; i++)
        ur__gemm(t, "matmul", y->iattr[0], y->iattr[1], d.m, d.n, d.k, a->value + i * sa, d.ca,
                 b->value + i * sb, d.cb, 0, y->value + i * sy, d.n);
    return ur__node_done(t, y);
}

/* With G = dL/dy:
 *   y = a b:     da += G b^T,    db += a^T G
 *   y = a^T b:   da += b G^T,    db += a G
 *   y = a b^T:   da += G b,      db += G^T a
 *   y = a^T b^T: da += b^T G^T,  db += G^T a^T */
void ur__backward_matmul(ur_tape *t, ur_node *y) {
    ur_node *a = y->in[0], *b = y->in[1];
    int ta = y->iattr[0], tb = y->iattr[1];
    mm_dims d = mm_of(a, b, ta, tb);
    if (d.batch == 1 && !ta && !tb) { /* y = a b: the helpers know about shared weights */
        ur_real *ga = ur__grad(t, a);
        if (ga) ur__add_G_WT(t, ga, y->grad, b, d.m);
        ur__add_xT_G(t, b, a->value, y->grad, d.m);
        return;
    }
    ur_real *ga = ur__grad(t, a), *gb = ur__grad(t, b);
    size_t sa = (size_t)d.ra * d.ca, sb = (size_t)d.rb * d.cb, sy = (size_t)d.m * d.n;
    for (int i = 0; i < d.batch; i++) {
        const ur_real *G = y->grad + i * sy, *A = a->value + i * sa, *B = b->value + i * sb;
        if (ga) {
            ur_real *GA = ga + i * sa;
            if (!ta) ur__gemm(t, "matmul", 0, !tb, d.m, d.k, d.n, G, d.n, B, d.cb, 1, GA, d.ca);
            else ur__gemm(t, "matmul", tb, 1, d.k, d.m, d.n, B, d.cb, G, d.n, 1, GA, d.ca);
        }
        if (gb) {
            ur_real *GB = gb + i * sb;
            if (!tb) ur__gemm(t, "matmul", !ta, 0, d.k, d.n, d.m, A, d.ca, G, d.n, 1, GB, d.cb);
            else ur__gemm(t, "matmul", 1, ta, d.n, d.k, d.m, G, d.n, A, d.ca, 1, GB, d.cb);
        }
    }
}

static ur_node *c_mm(ur_tape *t, ur_node **p) { return ur_matmul(t, p[0], p[1], 0, 0); }
static ur_node *c_mm_ta(ur_tape *t, ur_node **p) { return ur_matmul(t, p[0], p[1], 1, 0); }
static ur_node *c_mm_tb(ur_tape *t, ur_node **p) { return ur_matmul(t, p[0], p[1], 0, 1); }
static ur_node *c_mm_tab(ur_tape *t, ur_node **p) { return ur_matmul(t, p[0], p[1], 1, 1); }
UR_CASES(MATMUL,
         {"matmul/nn", 1019, 2, {2, 2}, {{3, 4}, {4, 5}}, 0, c_mm},
         {"matmul/tn", 1020, 2, {2, 2}, {{4, 3}, {4, 5}}, 0, c_mm_ta},
         {"matmul/nt", 1021, 2, {2, 2}, {{3, 4}, {5, 4}}, 0, c_mm_tb},
         {"matmul/tt", 1022, 2, {2, 2}, {{4, 3}, {5, 4}}, 0, c_mm_tab},
         {"matmul/batched", 1023, 2, {3, 3}, {{2, 3, 4}, {2, 4, 2}}, 0, c_mm},
         {"matmul/batched-nt", 1024, 2, {3, 3}, {{2, 1, 4}, {2, 5, 4}}, 0, c_mm_tb});

/* linear: y = x W + b, x (N,in), W (in,out), b (out) broadcast over the rows, or
 * b (N,out) added as it is (a recurrent step adds its projected input this way),
 * or absent. */
ur_node *ur_linear(ur_tape *t, ur_node *x, ur_node *W, ur_node *b) {
    ur_node *in[3] = {x, W, b};
    int n_in = b ? 3 : 2;
    if (!ur__check(t, "linear", n_in, in)) return NULL;
    if (x->shape.ndim != 2 || W->shape.ndim != 2 || x->shape.dims[1] != W->shape.dims[0]) {
        ur__op_error(t, UR_ERR_SHAPE, "linear", n_in, in, "needs x (N,in) and W (in,out)");
        return NULL;
    }
    int N = x->shape.dims[0], K = x->shape.dims[1], M = W->shape.dims[1];
    int row_bias = b && b->shape.ndim == 1 && b->shape.dims[0] == M;
    int full_bias = b && b->shape.ndim == 2 && b->shape.dims[0] == N && b->shape.dims[1] == M;
    if (b && !row_bias && !full_bias) {
        ur__op_error(t, UR_ERR_SHAPE, "linear", n_in, in, "bias must have shape (%d)", M);
        return NULL;
    }
    ur_shape s;
    int dims[2] = {N, M};
    ur_shape_make(&s, 2, dims, "linear");
    ur_node *y = ur__node_new(t, UR_OP_LINEAR, &s, n_in, in);
    if (!y) return NULL;
    if (b) /* y = x W + b, b's rows (or its one row) copied into y by the product's threads */
        ur__gemm_w_plus(t, "linear", N, x->value, K, W, b->value, full_bias ? M : 0, y->value, M);
    else
        ur__gemm_w(t, "linear", 0, N, x->value, K, W, 0, 0, y->value, M);
    return ur__node_done(t, y);
}

/* gb[j] += G[i][j] for the rows i of G (N x M) in order, columns j0..j1-1. */
static void add_row_sums(int N, int M, const ur_real *G, ur_real *gb, int j0, int j1) {
    for (int i = 0; i < N; i++)
        for (int j = j0; j < j1; j++) gb[j] += G[(size_t)i * M + j];
}

/* A row-bias gradient of this many values of G or more is summed on several
 * threads, each taking whole columns (so every column is summed in the same order). */
#define ROW_SUMS_PAR_MIN ((double)(1 << 17))

/* dx += G W^T, dW += x^T G, db += the sum of G's rows (row bias) or G (full bias). */
void ur__backward_linear(ur_tape *t, ur_node *y) {
    ur_node *x = y->in[0], *W = y->in[1], *b = y->n_in > 2 ? y->in[2] : NULL;
    int N = x->shape.dims[0], M = W->shape.dims[1];
    const ur_real *G = y->grad;
    ur_real *gx = ur__grad(t, x);
    if (gx) ur__add_G_WT(t, gx, G, W, N);
    ur__add_xT_G(t, W, x->value, G, N);
    ur_real *gb = b ? ur__grad(t, b) : NULL;
    if (gb && b->size == y->size) {
        for (size_t i = 0; i < y->size; i++) gb[i] += G[i];
    } else if (gb) {
        enum { COLS = 64 };
        int nt = ur__par_threads((double)N * M, ROW_SUMS_PAR_MIN), blocks = (M + COLS - 1) / COLS;
        if (nt > 1 && blocks > 1) {
#pragma omp parallel for num_threads(nt) schedule(static)
            for (int k = 0; k < blocks; k++) add_row_sums(N, M, G, gb, k * COLS, k * COLS + COLS < M ? k * COLS + COLS : M);
        } else {
            add_row_sums(N, M, G, gb, 0, M);
        }
    }
}

static ur_node *c_linear(ur_tape *t, ur_node **p) { return ur_linear(t, p[0], p[1], p[2]); }
static ur_node *c_linear_nobias(ur_tape *t, ur_node **p) { return ur_linear(t, p[0], p[1], NULL); }
UR_CASES(LINEAR,
         {"linear", 1025, 3, {2, 2, 1}, {{3, 4}, {4, 6}, {6}}, 0, c_linear},
         {"linear/no-bias", 1026, 2, {2, 2}, {{1, 7}, {7, 2}}, 0, c_linear_nobias},
         {"linear/full-bias", 1027, 3, {2, 2, 2}, {{3, 4}, {4, 5}, {3, 5}}, 0, c_linear});

ur_node *ur_transpose(ur_tape *t, ur_node *a) {
    if (!ur__check(t, "transpose", 1, &a)) return NULL;
    if (a->shape.ndim != 2) {
        ur__op_error(t, UR_ERR_SHAPE, "transpose", 1, &a, "needs a 2-d input");
        return NULL;
    }
    int r = a->shape.dims[0], c = a->shape.dims[1];
    ur_shape s;
    int dims[2] = {c, r};
    ur_shape_make(&s, 2, dims, "transpose");
    ur_node *y = ur__node_new(t, UR_OP_TRANSPOSE, &s, 1, &a);
    if (!y) return NULL;
    for (int i = 0; i < r; i++)
        for (int j = 0; j < c; j++) y->value[(size_t)j * r + i] = a->value[(size_t)i * c + j];
    return ur__node_done(t, y);
}

void ur__backward_transpose(ur_tape *t, ur_node *y) {
    ur_node *a = y->in[0];
    ur_real *ga = ur__grad(t, a);
    if (!ga) return;
    int r = a->shape.dims[0], c = a->shape.dims[1];
    for (int i = 0; i < r; i++)
        for (int j = 0; j < c; j++) ga[(size_t)i * c + j] += y->grad[(size_t)j * r + i];
}

static ur_node *c_transpose(ur_tape *t, ur_node **p) { return ur_transpose(t, p[0]); }
UR_CASES(TRANSPOSE, {"transpose", 1028, 1, {2}, {{3, 5}}, 0, c_transpose});
