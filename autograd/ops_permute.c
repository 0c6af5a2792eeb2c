/* ops_permute.c - swap01: the first two axes of a 3-d tensor exchanged,
 * (A, B, C) -> (B, A, C). Converts time-major sequences (T, B, H), as the RNN layers
 * make them, to batch-major (B, T, H), as attention reads them, and back.
 * Forward, backward rule, then its gradient-check cases (UR_CASES). */
#include "tape_internal.h"

/* y[b][a][:] = x[a][b][:]   x (A, B, C), y (B, A, C) */
static void swap01_rows(const ur_real *x, ur_real *y, int A, int B, int C) {
    for (int a = 0; a < A; a++)
        for (int b = 0; b < B; b++) {
            const ur_real *src = x + ((size_t)a * B + b) * C;
            ur_real *dst = y + ((size_t)b * A + a) * C;
            for (int c = 0; c < C; c++) dst[c] = src[c];
        }
}

ur_node *ur_swap01(ur_tape *t, ur_node *x) {
    if (!ur__check(t, "swap01", 1, &x)) return NULL;
    if (x->shape.ndim != 3) {
        ur__op_error(t, UR_ERR_SHAPE, "swap01", 1, &x, "needs a 3-d input (A, B, C), got %d-d", x->shape.ndim);
        return NULL;
    }
    int A = x->shape.dims[0], B = x->shape.dims[1], C = x->shape.dims[2];
    int dims[3] = {B, A, C};
    ur_shape s;
    ur_shape_make(&s, 3, dims, "swap01");
    ur_node *y = ur__node_new(t, UR_OP_SWAP01, &s, 1, &x);
    if (!y) return NULL;
    swap01_rows(x->value, y->value, A, B, C);
    return ur__node_done(t, y);
}

/* dx[a][b][:] += dy[b][a][:]: the same swap, read the other way, accumulated. */
void ur__backward_swap01(ur_tape *t, ur_node *y) {
    ur_node *x = y->in[0];
    ur_real *gx = ur__grad(t, x);
    if (!gx) return;
    int A = x->shape.dims[0], B = x->shape.dims[1], C = x->shape.dims[2];
    for (int a = 0; a < A; a++)
        for (int b = 0; b < B; b++) {
            const ur_real *g = y->grad + ((size_t)b * A + a) * C;
            ur_real *d = gx + ((size_t)a * B + b) * C;
            for (int c = 0; c < C; c++) d[c] += g[c];
        }
}

static ur_node *c_swap01(ur_tape *t, ur_node **p) { return ur_swap01(t, p[0]); }
/* swapped twice is the identity: both directions of the rule meet in one graph */
static ur_node *c_swap01_twice(ur_tape *t, ur_node **p) {
    return ur_mul(t, ur_swap01(t, ur_swap01(t, p[0])), p[0]);
}
UR_CASES(SWAP01,
         {"swap01", 1050, 1, {3}, {{4, 3, 2}}, 0, c_swap01},
         {"swap01/twice", 1051, 1, {3}, {{2, 5, 3}}, 0, c_swap01_twice});
