/* tape_internal.h - what ops see of the tape: the node layout, the arena and the
 * helpers every op uses. Not installed; users see ur_tape.h and ur_ops.h only. */
#ifndef UR_TAPE_INTERNAL_H
#define UR_TAPE_INTERNAL_H

#include "ur_ops.h"
#include "../tensor/kernels_internal.h"
#include "../tensor/ur_kernels.h"

typedef struct ur_plan ur_plan; /* backward_plan.c */

struct ur_node {
    int id;
    ur_op op;
    int requires_grad;
    int n_in;
    ur_node **in;       /* n_in inputs, in the arena */
    ur_shape shape;
    size_t size;
    ur_real *value;     /* size elements */
    ur_real *grad;      /* NULL until backward reaches the node */
    ur_param *param;    /* set for parameter leaves */
    const ur_tape *tape;
    uint64_t epoch;     /* the tape's epoch when created: stale handles are refused */
    const char *label;  /* optional, in the arena */
    int group;          /* index of the enclosing group, -1 for none */
    int iattr[4];       /* op attributes (axis, flags, start, ...) */
    ur_real fattr[2];
    uint64_t seed;
    void *aux;          /* op data in the arena (targets, ids, saved activations) */
};

typedef struct ur_group {
    const char *label;
    int parent;
} ur_group;

typedef struct ur_node_chunk ur_node_chunk; /* node_pool.c */

typedef struct ur_arena_chunk {
    struct ur_arena_chunk *next;
    size_t cap, used;
    unsigned char *data; /* 64-byte aligned start (2 MiB for a large chunk: tape.c) */
} ur_arena_chunk;

struct ur_tape {
    ur_arena_chunk *chunks; /* newest first */
    size_t arena_total;
    ur_node **nodes;
    int n_nodes, cap_nodes;
    ur_group *groups;
    int n_groups, cap_groups;
    int group_stack[8];
    int group_depth;
    ur_status err;
    char errmsg[512];
    int grad_enabled;
    int anomaly;
    int backward_done;
    int plan_enabled;   /* ur_tape_set_backward_plan, default 1 */
    ur_precision precision; /* ur_tape_set_precision: the GEMMs of ur__gemm */
    struct ur_bf16_weight *bf16_weights; /* gemm_precision.c: this recording's packed weights */
    ur_plan *plan;      /* during ur_backward: the shortcuts' state (backward_plan.c), else NULL */
    uint64_t epoch;
    ur_node_chunk *node_pool[2]; /* node structs of alternate recordings (node_pool.c) */
    int node_side;               /* the pool of the current recording */
    ur_node_chunk *node_cur;     /* the pool chunk being filled; NULL right after a reset */
};

/* The backward rule of every op kind (ur_ops.def): given y's gradient, adds each
 * input's share into the buffer ur__grad gives for it. */
#define UR_OP(kind, name, backward, file) void backward(ur_tape *t, ur_node *y);
#include "ur_ops.def"
#undef UR_OP

/* A gradient-check case of an op kind: params of the given shapes are filled
 * with random values from `seed` (positive ones when `positive`), build() makes
 * an output that records a node of the kind. */
typedef struct ur_op_case {
    const char *name;
    uint64_t seed;
    int n_params;
    int ndim[4];
    int dims[4][4];
    int positive;
    ur_node *(*build)(ur_tape *t, ur_node **p);
} ur_op_case;

/* The cases of one op kind. */
typedef struct ur_op_cases {
    const ur_op_case *cases;
    int n;
} ur_op_cases;

/* UR_CASES(KIND, {case}, ...): the gradient-check cases of op kind UR_OP_KIND, as
 * the object ur__cases_KIND that the op table (op_table.c) points to. Written
 * right below the kind's backward rule; without it no program that uses the
 * library links. */
#define UR_CASES(kind, ...)                                                                      \
    static const ur_op_case ur__case_rows_##kind[] = {__VA_ARGS__};                              \
    const ur_op_cases ur__cases_##kind = {ur__case_rows_##kind,                                  \
                                          (int)(sizeof ur__case_rows_##kind / sizeof(ur_op_case))}
#define UR_OP(kind, name, backward, file) extern const ur_op_cases ur__cases_##kind;
#include "ur_ops.def"
#undef UR_OP

/* The op table, made from ur_ops.def: each kind's name, backward rule, cases and
 * the file that defines them. */
typedef void (*ur_backward_fn)(ur_tape *t, ur_node *y);
typedef struct ur_op_info {
    const char *name;
    ur_backward_fn backward;
    const ur_op_cases *cases;
    const char *file;
} ur_op_info;
extern const ur_op_info ur__op_table[UR_OP_COUNT];
/* Runs case c under `kind`: fails when c records no node of that kind (a case
 * registered under the wrong kind), else the gradient check of c. */
ur_status ur__op_case_check(ur_op kind, const ur_op_case *c, double eps, ur_gradcheck_result *out);

/* Arena memory (64-byte aligned), NULL + tape error when out of memory. */
void *ur__alloc(ur_tape *t, size_t bytes);
ur_real *ur__alloc_real(ur_tape *t, size_t n);
/* Validates the tape and inputs of an op; records the error and returns 0 when
 * something is wrong. */
int ur__check(ur_tape *t, const char *op, int n, ur_node *const *in);
/* node_pool.c: a zeroed node struct for the current recording (NULL + tape error
 * when out of memory); rewind after the epoch moved on; free at ur_tape_free. */
ur_node *ur__node_alloc(ur_tape *t);
void ur__node_pool_rewind(ur_tape *t);
void ur__node_pool_free(ur_tape *t);
/* A new node with an uninitialised value of the given shape. */
ur_node *ur__node_new(ur_tape *t, ur_op op, const ur_shape *shape, int n_in, ur_node *const *in);
/* Finishes an op: anomaly check of the output. Returns y or NULL. */
ur_node *ur__node_done(ur_tape *t, ur_node *y);
/* Row-sparse parameters (ur_param_set_sparse_rows): ur_gather's backward lists the
 * rows it writes and gets the gradient buffer; any other write of a parameter's
 * gradient goes through ur__grad, which makes every row count. */
ur_real *ur__param_rows(ur_param *p, const int *ids, int n);
void ur__param_dense(ur_param *p);
/* ---- what backward rules use ----
 * A rule adds each input's share of the gradient into the buffer ur__grad gives:
 * x's gradient, zero-filled on first use. NULL when x needs no gradient, or when
 * the backward plan made the running node's gradient live in x's buffer (an
 * identity edge: the sum is already there). */
ur_real *ur__grad(ur_tape *t, ur_node *x);
/* ur__grad, except that a buffer made by this call for x alone is not zero-filled:
 * *unfilled is then 1 and the caller fills it (zeros where it does not assign)
 * before anything else reads it. */
ur_real *ur__grad_unfilled(ur_tape *t, ur_node *x, int *unfilled);
/* dW += x^T G, x (N,K), G (N,M), W (K,M); nothing when W needs no gradient. The
 * plan may do it later, batched with W's other such products. */
void ur__add_xT_G(ur_tape *t, ur_node *W, const ur_real *x, const ur_real *G, int N);
/* dx += G W^T, G (N,M), W (K,M), dx (N,K). The plan may read a stored W^T. */
void ur__add_G_WT(ur_tape *t, ur_real *dx, const ur_real *G, ur_node *W, int N);
/* gemm_precision.c. C = op(A) op(B) + beta C as ur_gemm (alpha 1), in the tape's
 * precision: ur_gemm_bf16 under UR_PRECISION_BF16 (its only failure, out of memory,
 * becomes the tape's error naming `op`). Every matrix product of matmul, linear and
 * the plan goes here. */
void ur__gemm(ur_tape *t, const char *op, int trans_a, int trans_b, int m, int n, int k,
              const ur_real *A, int lda, const ur_real *B, int ldb, ur_real beta, ur_real *C, int ldc);
/* The same with B = op(W) for a 2-d node W (K, M): op(W) is W (k = K, n = M) or,
 * with trans_w, W^T (k = M, n = K). Under BF16 a parameter's op(W) read a second
 * time on a recording is packed into bf16 once and reused for the rest of it. */
void ur__gemm_w(ur_tape *t, const char *op, int trans_a, int m, const ur_real *A, int lda, ur_node *W,
                int trans_w, ur_real beta, ur_real *C, int ldc);
/* C = A W + C0 (A m x K, W (K, M), C0 m x M with rows ldc0 apart, 0 for one row
 * added to every row), as ur__gemm_w with beta 1 on C holding C0: in f32 each
 * thread copies its part of C0 (ur__gemm_plus), in bf16 C0 is copied first.
 * linear's bias. */
void ur__gemm_w_plus(ur_tape *t, const char *op, int m, const ur_real *A, int lda, ur_node *W, const ur_real *C0,
                     int ldc0, ur_real *C, int ldc);
/* Records an error for `op` with the shapes of its inputs appended. */
void ur__op_error(ur_tape *t, ur_status s, const char *op, int n, ur_node *const *in,
                  const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;
/* Normalises a possibly negative axis; -1 when out of range. */
int ur__axis(int axis, int ndim);
/* outer x len x inner view of a shape around `axis`. */
void ur__split_axis(const ur_shape *s, int axis, size_t *outer, size_t *len, size_t *inner);
/* The output node of an op that reduces a along axis (negative counts from the end):
 * checks the input and the axis, and makes y of a's shape without that axis (or with
 * it as 1, keepdim), y->iattr[0] = the axis. NULL and the tape's error otherwise. */
ur_node *ur__reduce_node(ur_tape *t, ur_op op, const char *name, ur_node *a, int axis, int keepdim);

#endif
