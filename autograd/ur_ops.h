/* ur_ops.h - the primitive ops. Each one computes its result now and records
 * itself on the tape with its backward rule. One line per op gives the formula;
 * docs/ops.md gives each derivative.
 *
 * Every op returns NULL when the tape already holds an error or when this op fails
 * (then the tape holds the error: op name, input shapes, what was wrong).
 *
 * Broadcasting (add, sub, mul, div): shapes are aligned on their last dimension;
 * each pair of dimensions must be equal or one of them 1 (a missing leading
 * dimension counts as 1). So (B,H)+(H) is a bias add and (B,H)*(B,1) a per-row mask.
 */
#ifndef UR_OPS_H
#define UR_OPS_H

#include "ur_tape.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The op kinds, one per line of ur_ops.def (which also names each one's backward
 * rule and the file defining it). */
typedef enum ur_op {
#define UR_OP(kind, name, backward, file) UR_OP_##kind,
#include "ur_ops.def"
#undef UR_OP
    UR_OP_COUNT
} ur_op;

const char *ur_op_name(ur_op op); /* "add", ...; "?" when out of range */

/* ---- elementwise, with broadcasting ---- */
ur_node *ur_add(ur_tape *t, ur_node *a, ur_node *b); /* a + b */
ur_node *ur_sub(ur_tape *t, ur_node *a, ur_node *b); /* a - b */
ur_node *ur_mul(ur_tape *t, ur_node *a, ur_node *b); /* a * b */
ur_node *ur_div(ur_tape *t, ur_node *a, ur_node *b); /* a / b */

/* ---- elementwise, one input ---- */
ur_node *ur_scale(ur_tape *t, ur_node *a, ur_real s);      /* s * a */
ur_node *ur_neg(ur_tape *t, ur_node *a);                   /* -a */
ur_node *ur_one_minus(ur_tape *t, ur_node *a);             /* 1 - a */
ur_node *ur_add_scalar(ur_tape *t, ur_node *a, ur_real s); /* a + s */
ur_node *ur_tanh(ur_tape *t, ur_node *a);                  /* tanh(a) */
ur_node *ur_sigmoid(ur_tape *t, ur_node *a);               /* 1 / (1 + exp(-a)) */
ur_node *ur_relu(ur_tape *t, ur_node *a);                  /* max(a, 0) */
ur_node *ur_exp(ur_tape *t, ur_node *a);                   /* exp(a) */
ur_node *ur_log(ur_tape *t, ur_node *a);                   /* log(a), a > 0 */

/* ---- linear algebra ----
 * matmul: op(a) * op(b), op = transpose when the flag is set.
 * 2-d: (m,k)*(k,n) -> (m,n). 3-d: batched over the first dimension,
 * (B,m,k)*(B,k,n) -> (B,m,n); the flags transpose the last two dimensions. */
ur_node *ur_matmul(ur_tape *t, ur_node *a, ur_node *b, int trans_a, int trans_b);
/* x * W + b for x (N,in), W (in,out), b (out) broadcast over the rows, b (N,out)
 * added as it is (a recurrent step's projected input), or NULL: one fused op. */
ur_node *ur_linear(ur_tape *t, ur_node *x, ur_node *W, ur_node *b);
ur_node *ur_transpose(ur_tape *t, ur_node *a); /* 2-d: (m,n) -> (n,m) */

/* ---- along the last axis ---- */
ur_node *ur_softmax(ur_tape *t, ur_node *a);     /* exp(a_i) / sum_j exp(a_j) */
ur_node *ur_log_softmax(ur_tape *t, ur_node *a); /* a_i - log sum_j exp(a_j) */

/* ---- losses (scalar results) ----
 * cross_entropy: logits (N,C), targets[N] in [0,C), mask[N] of weights or NULL.
 * loss = sum_i mask_i * (-log softmax(logits_i)[targets_i]) / sum_i mask_i
 * (mean over the unmasked rows; 0 when the mask sums to 0). Targets and mask are
 * copied. A masked row gets exactly zero gradient. */
ur_node *ur_cross_entropy(ur_tape *t, ur_node *logits, const int *targets, const ur_real *mask);
ur_node *ur_mse(ur_tape *t, ur_node *a, ur_node *b); /* mean((a - b)^2) */

/* ---- reductions ---- */
ur_node *ur_sum(ur_tape *t, ur_node *a);  /* sum of all elements -> scalar */
ur_node *ur_mean(ur_tape *t, ur_node *a); /* mean of all elements -> scalar */
/* Along one axis (negative counts from the end); the axis is removed from the
 * shape unless keepdim. */
ur_node *ur_sum_axis(ur_tape *t, ur_node *a, int axis, int keepdim);
ur_node *ur_mean_axis(ur_tape *t, ur_node *a, int axis, int keepdim);
/* Maximum along the axis; the gradient goes to the first maximal element. */
ur_node *ur_max_axis(ur_tape *t, ur_node *a, int axis, int keepdim);

/* ---- shape ---- */
/* Joins n nodes along axis; other dimensions must agree. */
ur_node *ur_concat(ur_tape *t, int n, ur_node *const *xs, int axis);
/* Elements start .. start+len-1 along axis. */
ur_node *ur_slice(ur_tape *t, ur_node *a, int axis, int start, int len);
/* Same elements, new shape (one dim may be -1: inferred). */
ur_node *ur_reshape(ur_tape *t, ur_node *a, int ndim, const int *dims);
/* The first two axes exchanged: (A,B,C) -> (B,A,C), y[b][a][:] = x[a][b][:] (a copy).
 * Time-major (T,B,H) to batch-major (B,T,H) and back. */
ur_node *ur_swap01(ur_tape *t, ur_node *x);
/* Rows ids[0..n-1] of table (V, D) -> (n, D); ids copied. Backward adds each row's
 * gradient into the table's row (embedding lookup; repeated ids sum). */
ur_node *ur_gather(ur_tape *t, ur_node *table, const int *ids, int n);
#define ur_embedding ur_gather

/* ---- more elementwise maps (ops_pointwise.c) ---- */
ur_node *ur_square(ur_tape *t, ur_node *a);                /* a^2 */
ur_node *ur_sqrt(ur_tape *t, ur_node *a);                  /* sqrt(a), a > 0 */
/* a^p; a > 0 unless p is an integer (a = 0 with p < 0 gives inf) */
ur_node *ur_pow(ur_tape *t, ur_node *a, ur_real p);
ur_node *ur_abs(ur_tape *t, ur_node *a);                   /* |a|; gradient 0 at 0 */
ur_node *ur_softplus(ur_tape *t, ur_node *a);              /* log(1 + exp(a)), stable */
ur_node *ur_leaky_relu(ur_tape *t, ur_node *a, ur_real slope); /* a > 0 ? a : slope * a */
ur_node *ur_log_sigmoid(ur_tape *t, ur_node *a);           /* log sigmoid(a) = -softplus(-a) */
/* min(max(a, lo), hi), lo <= hi; gradient 1 strictly inside (lo, hi), 0 elsewhere */
ur_node *ur_clamp(ur_tape *t, ur_node *a, ur_real lo, ur_real hi);
/* Elementwise max / min of a and b, broadcast like ur_add; on a tie the gradient
 * goes to a. */
ur_node *ur_maximum(ur_tape *t, ur_node *a, ur_node *b);
ur_node *ur_minimum(ur_tape *t, ur_node *a, ur_node *b);
/* mask ? a : b elementwise: mask a constant of 0s and 1s, a and b broadcast like
 * ur_add, the mask broadcast to their shape. The mask gets no gradient. */
ur_node *ur_where(ur_tape *t, ur_node *mask, ur_node *a, ur_node *b);

/* ---- normalising (ops_norm.c) ---- */
/* log sum exp along one axis (stable); the axis removed unless keepdim. */
ur_node *ur_logsumexp(ur_tape *t, ur_node *a, int axis, int keepdim);
/* Softmax along the last axis over the entries where the constant 0/1 mask (a's
 * shape) is 1; masked entries are exactly 0 with 0 gradient, a row masked
 * entirely is all zeros. */
ur_node *ur_masked_softmax(ur_tape *t, ur_node *a, ur_node *mask);
/* Layer normalisation over the last axis: x (..., H), gain and bias (H) or NULL,
 * y = gain * (x - mean) / sqrt(var + eps) + bias with var the biased variance, eps > 0. */
ur_node *ur_layer_norm(ur_tape *t, ur_node *x, ur_node *gain, ur_node *bias, ur_real eps);

/* ---- dropout (inverted: kept values are scaled by 1/(1-p)) ----
 * ur_dropout draws its mask from (seed, element index) with p = drop probability;
 * p = 0 returns a (recorded) copy. ur_dropout_mask multiplies by a supplied mask,
 * broadcast like ur_mul: the way to share one mask across time steps. */
ur_node *ur_dropout(ur_tape *t, ur_node *a, ur_real p, uint64_t seed);
ur_node *ur_dropout_mask(ur_tape *t, ur_node *a, ur_node *mask);
/* A constant mask of the given shape: 0 with probability p, else 1/(1-p). */
ur_node *ur_dropout_make_mask(ur_tape *t, int ndim, const int *dims, ur_real p, uint64_t seed);

/* ---- the gradient-check cases of the op table ----
 * Every op kind has at least one case; the test suite and unroll-gradcheck run them
 * all. A case builds small random inputs as parameters and a scalar loss that
 * weights the op's output by fixed random numbers. */
int ur_op_case_count(void);
const char *ur_op_case_name(int i); /* "add/broadcast-bias", ... */
ur_op ur_op_case_op(int i);
ur_status ur_op_case_run(int i, double eps, ur_gradcheck_result *out);

#ifdef __cplusplus
}
#endif
#endif
