/* expr_internal.h - the representation of a fused pointwise expression, shared by
 * the builder (expr.c) and the evaluator (expr_eval.c). Not installed. */
#ifndef UR_EXPR_INTERNAL_H
#define UR_EXPR_INTERNAL_H

#include "tape_internal.h"
#include "ur_expr.h"

/* Node kinds: the leaves first (EX_CONST is the last leaf), then the rules. */
typedef enum ur__ex_kind {
    EX_INPUT, /* (B, N) */
    EX_BLOCK, /* block k of (B, nb N) */
    EX_ROW,   /* (N) or (1, N) */
    EX_COL,   /* (B, 1) */
    EX_CONST,
    EX_ADD,
    EX_SUB,
    EX_MUL,
    EX_DIV,
    EX_SIGMOID,
    EX_TANH,
    EX_RELU,
    EX_EXP,
    EX_LOG,
    EX_ONE_MINUS,
    EX_NEG,
    EX_KINDS
} ur__ex_kind;

typedef struct ur__ex_node {
    ur__ex_kind kind;
    int a, b;        /* operand ids (b: -1 for one operand) */
    int slot, k, nb; /* leaves: input slot; block k of nb */
    ur_real v;       /* EX_CONST */
} ur__ex_node;

struct ur_expr {
    char name[48];
    ur__ex_node *nodes;
    int n_nodes, cap_nodes;
    int *out; /* node id of each output */
    int n_out, cap_out;
    int n_slots;
    ur_status err;
    char errmsg[256];
};

enum {
    UR_EX_MAX_SLOTS = 64,
    UR_EX_CHUNK = 256,                     /* columns per chunk, at most */
    UR_EX_SCRATCH = 16384,                 /* stack buffer of a pass: values and adjoints of every node */
    UR_EX_MAX_NODES = UR_EX_SCRATCH / 16,  /* so that a chunk has at least 8 columns */
    UR_EX_SAVE_MAX = 16384,                /* B N up to which transcendentals are saved */
};
/* which operand values a derivative reads */
enum { USE_A = 1, USE_B = 2, USE_Y = 4 };

/* How an adjoint starts in backward: zeroed, assigned by its first contribution, a
 * copy of the output's gradient, or that gradient itself (read only). */
enum { ADJ_ZERO, ADJ_SET, ADJ_COPY, ADJ_GY };

/* expr_eval.c, from the rule table: the arity of a kind (0 for leaves), the values
 * its derivative reads (USE_*), whether it is worth saving for backward. */
int ur__ex_arity(ur__ex_kind k);
int ur__ex_uses(ur__ex_kind k);
int ur__ex_worth_saving(ur__ex_kind k);

/* A recorded application: the expression copied into the tape's arena. */
typedef struct ur__ex_plan {
    const char *name;
    int n_nodes, n_out, n_slots;
    const ur__ex_node *nodes;
    const int *out;
    const unsigned char *live; /* per node: some output depends on it */
    const unsigned char *need; /* per node: backward reads its value */
    const int *first_out;      /* per node: the first output that is this node, or -1 */
    const int *save_at;        /* per node: its index among the saved nodes, or -1 */
    const unsigned char *init; /* per node: how its adjoint starts (ADJ_*) */
    const unsigned char *set;  /* per node: its rule assigns to a's (1) or b's (2) adjoint */
    const unsigned char *alias; /* per node: a's (1) or b's (2) adjoint IS this node's (see expr_plan.c) */
    int n_saved;
    ur_real *saved; /* B rows of n_saved blocks of N; NULL: recompute */
    int B, N, chunk;
} ur__ex_plan;

/* expr_plan.c: the plan of e for a (B, N) application (save: backward will run),
 * NULL (and the tape's error) when out of memory or e is too large. expr_eval.c:
 * the forward pass, x[s] the values of slot s and y the packed output (n_out B, N). */
ur__ex_plan *ur__expr_plan(ur_tape *t, const char *op, const ur_expr *e, int B, int N, int save);
void ur__expr_forward(const ur__ex_plan *p, const ur_real *const *x, ur_real *y);

/* expr_eval.c: the derived backward pass of an expression node (reverse mode per
 * chunk, one rule per node kind). */
void ur__ex_backward(ur_tape *t, ur_node *y);

#endif
