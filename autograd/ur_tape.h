/* ur_tape.h - the tape (Wengert list), parameters, backward, gradient checks.
 *
 * Every op appends one node to the tape as it runs; ur_backward walks the nodes
 * once in reverse, each op's backward rule adding its output gradient into its
 * inputs' gradients. Gradients accumulate (+=): a value used twice receives the sum,
 * which is all that backpropagation through time needs for tied weights.
 *
 * Memory: the values and gradients of a tape live in one arena, its node structs in
 * two pools used by alternate recordings (so that a node erased by a reset is
 * recognised: see "reading nodes"). Reset keeps the memory, so a training loop that
 * builds the same graph every step makes no allocation after its first two steps.
 *
 * Errors are sticky: the first failing op stores its name, its input shapes and what
 * was wrong; every later op on that tape returns NULL at once and ur_backward
 * refuses. Check once with ur_tape_error(). A NULL node passed to an op on a tape
 * without an error is itself an error of that op.
 */
#ifndef UR_TAPE_H
#define UR_TAPE_H

#include <stdio.h>
#include "../tensor/ur_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ur_tape ur_tape;
typedef struct ur_node ur_node;

/* ---- parameters ----
 * A parameter lives outside any tape and owns its gradient buffer. ur_param_node
 * gives the parameter's one node on a tape (the same node for every use, so a tied
 * weight is one node with many consumers); backward adds into param->grad. */
typedef struct ur_param {
    char name[96];
    ur_tensor value;
    ur_tensor grad;
    /* private: the node of this parameter on the tape that used it last */
    ur_node *node_;
    const ur_tape *tape_;
    uint64_t epoch_;
    /* private: row-sparse gradients (ur_param_set_sparse_rows) */
    int sparse_rows_;        /* 1: rows written by ur_gather are listed */
    int all_rows_;           /* another op wrote the gradient since the last zero_grad */
    int n_rows_;             /* rows listed */
    int *rows_;              /* the listed rows, in order of first use */
    unsigned char *row_mark_; /* per row: listed */
} ur_param;

typedef struct ur_paramset ur_paramset;

ur_paramset *ur_paramset_new(void);
void ur_paramset_free(ur_paramset *ps); /* frees every parameter; NULL is a no-op */
/* A new zero-filled parameter; NULL on a duplicate or empty name, bad shape or out
 * of memory (ur_last_error). Names are at most 95 bytes. Errors are sticky: the
 * set keeps the first one, and every later add on it returns NULL at once, so
 * chain the adds and check ur_paramset_error once. */
ur_param *ur_paramset_add(ur_paramset *ps, const char *name, int ndim, const int *dims);
ur_status ur_paramset_error(const ur_paramset *ps);    /* UR_OK or the first failed add */
const char *ur_paramset_errmsg(const ur_paramset *ps); /* "" when there is none */
int ur_paramset_count(const ur_paramset *ps);
ur_param *ur_paramset_get(const ur_paramset *ps, int i); /* NULL if out of range */
ur_param *ur_paramset_find(const ur_paramset *ps, const char *name);
size_t ur_paramset_numel(const ur_paramset *ps); /* total number of scalars */
void ur_paramset_zero_grad(ur_paramset *ps);

/* Row-sparse gradients, for an embedding table E (V, D) read by ur_gather. With
 * them on, backward lists the rows that ur_gather gave a gradient; ur_paramset_zero_grad
 * clears only those rows, and ur_optim_step updates only those rows where that
 * equals the dense update (plain SGD, Adagrad, both without weight decay) or where
 * asked (Adam with `lazy`). If any other op writes the gradient of E (a tied output
 * layer, ur_matmul with E), every row counts until the next zero_grad, and the
 * update is dense. Values, gradients and checkpoints are unchanged: only which rows
 * are visited. UR_ERR_SHAPE for a parameter that is not 2-d; UR_ERR_NOMEM. */
ur_status ur_param_set_sparse_rows(ur_param *p, int enabled);
/* Rows with a gradient since the last zero_grad: their number and, in *rows (may be
 * NULL), the list (owned by p); -1 when every row counts (sparse rows off, or
 * another op wrote the gradient). */
int ur_param_grad_rows(const ur_param *p, const int **rows);

/* ---- the tape ---- */
ur_tape *ur_tape_new(void); /* NULL when out of memory */
void ur_tape_free(ur_tape *t);
/* Forgets every node and the error; keeps the memory for the next step. */
void ur_tape_reset(ur_tape *t);

ur_status ur_tape_error(const ur_tape *t);    /* UR_OK or the first error */
const char *ur_tape_errmsg(const ur_tape *t); /* "" when there is none */
/* Records an error on the tape from outside an op (first one wins); returns s. */
ur_status ur_tape_fail(ur_tape *t, ur_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* With gradients disabled, ops compute values but record no history: every result
 * is a constant leaf (inference, sampling). Returns the previous setting. */
int ur_tape_set_grad_enabled(ur_tape *t, int enabled);
int ur_tape_grad_enabled(const ur_tape *t);
/* The backward plan (on by default): ur_backward shares gradient buffers along
 * identity edges and contiguous slices, batches the weight gradients of weights
 * read by many small products and stores their transposes once. Off, every
 * gradient has a buffer of its own and every product is done where its rule is;
 * gradients agree up to float rounding. Returns the previous setting. */
int ur_tape_set_backward_plan(ur_tape *t, int enabled);
/* The precision of the tape's matrix products. UR_PRECISION_F32 (the default):
 * ur_real throughout. UR_PRECISION_BF16 (mixed precision): every GEMM of matmul and
 * linear, forward and backward (dx and dW products, the plan's batched and
 * transposed ones included), rounds both operands to bf16 and sums the products in
 * float (ur_gemm_bf16); everything else -- parameters, their gradients, optimizer
 * state, elementwise math, losses -- stays float. Kept across ur_tape_reset. The
 * double build has no bf16 GEMM: there BF16 is refused with UR_ERR_ARG, recorded as
 * the tape's error (sticky until the next reset) and the precision stays F32. */
typedef enum ur_precision { UR_PRECISION_F32 = 0, UR_PRECISION_BF16 = 1 } ur_precision;
ur_status ur_tape_set_precision(ur_tape *t, ur_precision p);
ur_precision ur_tape_precision(const ur_tape *t); /* F32 for NULL */
/* Anomaly mode: every op's output, and every gradient during backward, is checked
 * for NaN/Inf; the first offending op is reported through the tape's error. */
void ur_tape_set_anomaly(ur_tape *t, int enabled);

int ur_tape_size(const ur_tape *t);          /* number of nodes */
ur_node *ur_tape_node(const ur_tape *t, int id);
size_t ur_tape_arena_bytes(const ur_tape *t); /* memory held by the arena */

/* Groups the following nodes under a label ("t=3", "subtree 7") until the matching
 * end; ur_tape_dot draws each group as a cluster. Groups may nest (depth <= 8). */
void ur_tape_begin_group(ur_tape *t, const char *label);
void ur_tape_end_group(ur_tape *t);

/* Gives a node a name shown by print and dot (copied). */
void ur_node_set_label(ur_tape *t, ur_node *n, const char *label);

/* One line per node: id, op, shape, inputs. */
ur_status ur_tape_print(const ur_tape *t, FILE *out);
/* Graphviz DOT of the recorded graph: parameters, inputs and ops drawn differently. */
ur_status ur_tape_dot(const ur_tape *t, FILE *out);

/* ---- leaves ---- */
/* A constant copied from `value` (no gradient). */
ur_node *ur_input(ur_tape *t, const ur_tensor *value);
/* A constant of the given shape copied from data (size = product of dims). */
ur_node *ur_input_data(ur_tape *t, int ndim, const int *dims, const ur_real *data);
ur_node *ur_zeros(ur_tape *t, int ndim, const int *dims);
ur_node *ur_scalar(ur_tape *t, ur_real v);
/* A leaf that does require a gradient, owned by the tape (read it after backward
 * with ur_node_grad): for inputs whose gradient you want to inspect. */
ur_node *ur_variable(ur_tape *t, const ur_tensor *value);
/* The parameter's node on this tape. */
ur_node *ur_param_node(ur_tape *t, ur_param *p);
/* The same values, cut from their history: no gradient flows back through it. */
ur_node *ur_detach(ur_tape *t, ur_node *x);

/* ---- reading nodes ----
 * NULL gives the "no value" below without touching ur_last_error. A node erased by
 * ur_tape_reset (a handle kept from the previous recording) gives the same "no
 * value" and sets ur_last_error (UR_ERR_STATE); the tape's error is left alone. */
int ur_node_id(const ur_node *n); /* -1 for NULL or stale */
int ur_node_ndim(const ur_node *n);
int ur_node_dim(const ur_node *n, int axis); /* negative axis counts from the end */
const ur_shape *ur_node_shape(const ur_node *n);
size_t ur_node_size(const ur_node *n);
ur_real *ur_node_data(ur_node *n);
const ur_real *ur_node_cdata(const ur_node *n);
/* The gradient after ur_backward, NULL if none reached this node. */
const ur_real *ur_node_grad(const ur_node *n);
ur_real ur_node_item(const ur_node *n); /* first element; NaN for NULL or stale */
const char *ur_node_op_name(const ur_node *n);
int ur_node_requires_grad(const ur_node *n);
/* Copies the node's values into a tensor of the same size (for carrying state
 * across tape resets, e.g. truncated BPTT): before the reset; after it the node
 * is stale and this returns UR_ERR_STATE, copying nothing. */
ur_status ur_node_copy_to(const ur_node *n, ur_tensor *dst);

/* ---- backward ----
 * loss must have exactly one element. Walks the tape once in reverse; parameter
 * gradients are added to param->grad (zero them between steps). Calling it twice on
 * one recording is an error (UR_ERR_STATE): reset the tape and rebuild. */
ur_status ur_backward(ur_tape *t, ur_node *loss);
/* The same walk from a node y of any shape whose gradient dL/dy is given: dy holds
 * y's size values (copied; all finite, else UR_ERR_NUMERIC naming the first bad
 * one). Every gradient is then what ur_backward gives for the loss sum(y * dy),
 * without recording that loss: the vector-Jacobian product, as PyTorch's
 * y.backward(dy). For a part of a model whose output gradient comes from
 * elsewhere (another program, another process, a layer trained apart). */
ur_status ur_backward_from(ur_tape *t, ur_node *y, const ur_real *dy);

/* ---- numerical gradient checks ----
 * loss_fn builds a scalar loss on the (reset) tape from the parameters. The check
 * compares backward's gradient of every parameter element with the central
 * difference (f(x+eps) - f(x-eps)) / 2eps. Relative error is
 * |analytic - numeric| / max(1, |analytic|, |numeric|). Meant for the double build. */
typedef ur_node *(*ur_loss_fn)(ur_tape *t, void *ctx);
typedef struct ur_gradcheck_result {
    double max_abs_err;
    double max_rel_err;
    size_t n_checked;
    char worst[128]; /* "param[index]" of the largest relative error */
} ur_gradcheck_result;
ur_status ur_gradcheck(ur_tape *t, ur_loss_fn loss_fn, void *ctx, ur_param *const *params,
                       int n_params, double eps, ur_gradcheck_result *out);
/* The same over every parameter of ps. With max_per_param > 0, a parameter larger
 * than that is checked at max_per_param evenly spaced elements, first and last
 * included (the same ones every call); 0 checks every element. */
ur_status ur_gradcheck_paramset(ur_tape *t, ur_loss_fn loss_fn, void *ctx, const ur_paramset *ps, double eps,
                                size_t max_per_param, ur_gradcheck_result *out);

#ifdef __cplusplus
}
#endif
#endif
