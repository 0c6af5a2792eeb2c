/* ur_expr.h - fused pointwise expressions: the elementwise part of a step, written
 * once as an expression and recorded as ONE node per application.
 *
 *   ur_expr *e = ur_expr_new("lstm");                  // built once, outside the loop
 *   int i = ur_expr_sigmoid(e, ur_expr_input_block(e, 0, 0, 4));
 *   ...
 *   ur_expr_output(e, h);
 *   ur_node *out[2];
 *   ur_expr_apply(t, e, 2, (ur_node *[]){gates, c_prev}, out);   // every step
 *
 * An expression is a list of nodes; each builder call appends one and returns its
 * id (>= 0). The inputs are numbered slots, bound to tape nodes by ur_expr_apply.
 * Every input is read at the expression's width N, per batch row b:
 *   input        (B, N)             the whole tensor
 *   input_block  (B, n_blocks * N)  columns [k N, (k+1) N): block k of a gate block
 *   input_row    (N) or (1, N)      the same row for every b (a bias, a peephole)
 *   input_col    (B, 1)             one value per row, for every column (a mask)
 * Each output is (B, N). Backward is derived from the expression (docs/expressions.md):
 * the gradients of a row input are summed over the batch, those of a column over
 * the columns.
 *
 * Errors are sticky on the expression: a builder call with a bad argument returns
 * -1, records a message naming the call, and every later call returns -1 too.
 * ur_expr_apply refuses an expression in error, and records shape errors (which
 * input, expected and given shape) on the tape like any op. */
#ifndef UR_EXPR_H
#define UR_EXPR_H

#include "ur_tape.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ur_expr ur_expr;

/* A new, empty expression; `name` (copied) appears in its error messages. NULL
 * (and ur_last_error) when out of memory. */
ur_expr *ur_expr_new(const char *name);
void ur_expr_free(ur_expr *e);
ur_status ur_expr_error(const ur_expr *e);    /* UR_OK, or the first error */
const char *ur_expr_errmsg(const ur_expr *e); /* "" when there is none */
int ur_expr_input_count(const ur_expr *e);    /* 1 + the highest slot used */
int ur_expr_output_count(const ur_expr *e);
int ur_expr_node_count(const ur_expr *e);

/* ---- leaves: inputs (a slot is read one way: full, blocks of one count, row or col) ---- */
int ur_expr_input(ur_expr *e, int slot);                             /* (B, N) */
int ur_expr_input_block(ur_expr *e, int slot, int k, int n_blocks);  /* block k of (B, n_blocks N) */
int ur_expr_input_row(ur_expr *e, int slot);                         /* (N) or (1, N), all rows */
int ur_expr_input_col(ur_expr *e, int slot);                         /* (B, 1), all columns */
int ur_expr_const(ur_expr *e, ur_real v);                            /* v everywhere */

/* ---- nodes: a, b are ids returned by earlier calls ---- */
int ur_expr_add(ur_expr *e, int a, int b);   /* a + b */
int ur_expr_sub(ur_expr *e, int a, int b);   /* a - b */
int ur_expr_mul(ur_expr *e, int a, int b);   /* a * b */
int ur_expr_div(ur_expr *e, int a, int b);   /* a / b */
int ur_expr_sigmoid(ur_expr *e, int a);      /* 1 / (1 + exp(-a)) */
int ur_expr_tanh(ur_expr *e, int a);         /* tanh(a) */
int ur_expr_relu(ur_expr *e, int a);         /* max(a, 0) */
int ur_expr_exp(ur_expr *e, int a);          /* exp(a) */
int ur_expr_log(ur_expr *e, int a);          /* log(a), a > 0 */
int ur_expr_one_minus(ur_expr *e, int a);    /* 1 - a */
int ur_expr_neg(ur_expr *e, int a);          /* -a */

/* Marks node `id` as the next output; returns the output's index (0, 1, ...). */
int ur_expr_output(ur_expr *e, int id);

/* Records the expression on the tape as one node: in[s] is the tape node bound to
 * slot s (n_in == ur_expr_input_count), out[k] receives output k (B, N). Returns
 * UR_OK, or the tape's error (then every out[k] is NULL). The expression is copied
 * into the recording: it may be changed or freed afterwards. */
ur_status ur_expr_apply(ur_tape *t, const ur_expr *e, int n_in, ur_node *const *in, ur_node **out);

/* ---- the gate math of the library's cells, as expressions (free with ur_expr_free) ----
 * lstm:     slots gates (B,4H) = [i f g o], c_prev (B,H);
 *           c = sigmoid(f) c_prev + sigmoid(i) tanh(g), h = sigmoid(o) tanh(c); outputs h, c.
 * gru:      slots gx, gh (B,3H) = [r z n], h_prev (B,H), reset-after form:
 *           r = sigmoid(gx_r + gh_r), z = sigmoid(gx_z + gh_z), n = tanh(gx_n + r gh_n),
 *           h = (1 - z) n + z h_prev; output h.
 * peephole: slots gates (B,4H), c_prev (B,H), p_i, p_f, p_o (H) (Gers & Schmidhuber 2002):
 *           i = sigmoid(g_i + c_prev p_i), f = sigmoid(g_f + c_prev p_f),
 *           c = f c_prev + i tanh(g_g), o = sigmoid(g_o + c p_o), h = o tanh(c); outputs h, c.
 * The width H is taken from the inputs when applied. NULL when out of memory. */
ur_expr *ur_expr_lstm(void);
ur_expr *ur_expr_gru(void);
ur_expr *ur_expr_peephole_lstm(void);

#ifdef __cplusplus
}
#endif

#endif
