/* ur_cell.h - the recurrent cell interface: what ur_rnn needs to know about a cell.
 *
 * A cell is a ur_cell_def: a name, its states, its parameters and its step built
 * from the public ops. ur_rnn runs any registered cell the same way -- stacked,
 * bidirectional, masked, with every dropout, carried states for truncated BPTT,
 * checkpoint names and --dot step groups -- and the library's own cells (Elman
 * tanh/relu, both GRU forms, the LSTM, and the MGU, peephole LSTM, IndRNN,
 * Jordan and layer-normalised LSTM cells of nn/cell_*.c) are defined through it
 * like a user's cell.
 *
 * Sizes: `in` input features, H hidden units, B sequences, N rows (T*B for a
 * whole sequence). Every state is (B, H); state 0 is what the layer outputs.
 *
 * A parameter's shape is given as multiples of the input and hidden sizes, e.g.
 * (in, 4H) is {{1, 0}, {0, 4}}. In a ur_rnn its name is PREFIX.NAME_lK[_reverse]
 * ("rnn.weight_ih_l0", "rnn.weight_hh_l1_reverse").
 *
 * The step is split in two so that a layer can do the expensive part once:
 *   project(x)  x (N, in) -> (N, P), the part of the step that reads only the
 *               input: a layer calls it ONCE for all T*B rows (one big matmul)
 *               and hands each step its (B, P) rows. NULL: steps get x itself.
 *   step(in, prev) -> next: in (B, P), prev[j] and next[j] (B, H) for each
 *               state j. Errors go on the tape (sticky), as with every op.
 * A step that feeds state 0 into a recurrent matmul multiplies it by `hdrop`
 * first when hdrop is not NULL (variational dropout on h, a (B, H) mask). */
#ifndef UR_CELL_H
#define UR_CELL_H

#include "../autograd/ur_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    UR_CELL_MAX_PARAMS = 8, /* parameters of one cell */
    UR_CELL_MAX_STATES = 4, /* states of one cell (h; h and c; ...) */
    UR_CELL_MAX_EXTRA = 8,  /* nodes a cell's bind makes once per sequence */
    UR_CELL_MAX = 64        /* cells in the registry */
};

/* A size: in * input_size + hidden * hidden_size. */
typedef struct ur_cell_size {
    int in, hidden;
} ur_cell_size;

/* How a parameter is initialized by each ur_rnn_init scheme (uniform | orthogonal | identity). */
typedef enum ur_cell_role {
    UR_CELL_INPUT_WEIGHT = 0, /* U(+-1/sqrt(H)) | Xavier uniform | N(0, 0.001^2) */
    UR_CELL_RECURRENT_WEIGHT, /* (H, k*H): U(+-1/sqrt(H)) | each (H, H) block orthogonal | each block identity */
    UR_CELL_BIAS,             /* U(+-1/sqrt(H)) | 0 | 0 */
    UR_CELL_VECTOR            /* elementwise weights (peepholes, IndRNN's u): U(+-1/sqrt(H)) in every scheme */
} ur_cell_role;

typedef struct ur_cell_param {
    const char *name;     /* checkpoint base name, e.g. "weight_ih" */
    int ndim;             /* 1 or 2 */
    ur_cell_size dims[2]; /* dims[0], and dims[1] when 2-d */
    ur_cell_role role;
} ur_cell_param;

typedef struct ur_cell_def ur_cell_def;

/* The parameters of one cell (one layer, one direction), in the order of its
 * definition. Fields are public: a test can read or swap any weight. The
 * built-in cells' four parameters are also W_ih, W_hh, b_ih, b_hh (p[0..3]). */
typedef struct ur_rnn_cell {
    const ur_cell_def *def;
    int input_size, hidden_size;
    union {
        ur_param *p[UR_CELL_MAX_PARAMS];
        struct {
            ur_param *W_ih, *W_hh, *b_ih, *b_hh;
        };
    };
} ur_rnn_cell;

/* A cell's parameters as nodes of one recording, made once per sequence. */
typedef struct ur_cell_bound {
    const ur_rnn_cell *cell;
    int H;
    /* 1 inside a ur_rnn layer: a step's `in` is its rows of the projection the cell's
     * project made for the whole sequence (a bind may have folded biases into it).
     * 0 for a step on its own (ur_rnn_cell_step / _recur). */
    int layer;
    ur_node *p[UR_CELL_MAX_PARAMS];    /* ur_param_node of each parameter */
    ur_node *extra[UR_CELL_MAX_EXTRA]; /* whatever the cell's bind made (slices, summed biases) */
} ur_cell_bound;

struct ur_cell_def {
    const char *name;   /* registry name, e.g. "lstm"; at most 31 bytes */
    int n_states;       /* 1 .. UR_CELL_MAX_STATES */
    const char *state_names[UR_CELL_MAX_STATES]; /* "h", "c", ... */
    int n_params;       /* 1 .. UR_CELL_MAX_PARAMS */
    ur_cell_param params[UR_CELL_MAX_PARAMS];
    ur_cell_size proj;  /* P, the width of project's output (ignored when project is NULL) */
    int forget_block;   /* 1 + the index of the forget gate's H-wide block in the first
                         * UR_CELL_BIAS parameter (LSTM: 2, f of i f g o), where ur_rnn's
                         * forget_bias goes (the block of the other biases is set to 0);
                         * 0: no forget gate (the default of a designated initializer) */
    int torch;          /* 1: parameters 0..3 are weight_ih, weight_hh, bias_ih, bias_hh in
                         * PyTorch's layout (transposed) and ur_rnn_load_torch reads them */
    /* optional: nodes made once per sequence into b->extra; 0 on failure (tape error) */
    int (*bind)(ur_tape *t, ur_cell_bound *b);
    /* optional: x (N, in) -> (N, P) */
    ur_node *(*project)(ur_tape *t, const ur_cell_bound *b, ur_node *x);
    /* required: in (B, P) or x (B, in); prev[0..n_states) -> next[0..n_states) */
    void (*step)(ur_tape *t, const ur_cell_bound *b, ur_node *in, ur_node *const *prev, ur_node *hdrop,
                 ur_node **next);
};

/* ---- the registry ----
 * The built-in cells are registered from the start: rnn_tanh, rnn_relu, gru,
 * gru_reset_before, lstm, mgu, peephole_lstm, indrnn, jordan, lnlstm. */

/* Adds def (which must outlive every use; it is not copied). Errors: NULL or
 * malformed def, a name already registered, a full registry. The registry is one
 * per process and unlocked: register cells before threads look them up. */
ur_status ur_cell_register(const ur_cell_def *def);
/* The cell registered under name, or NULL (ur_last_error names the known ones). */
const ur_cell_def *ur_cell_find(const char *name);
int ur_cell_count(void);                /* registered cells */
const ur_cell_def *ur_cell_at(int i);   /* 0 .. ur_cell_count()-1, in order of registration; else NULL */
/* The size s for the given input and hidden sizes. */
int ur_cell_size_of(ur_cell_size s, int input_size, int hidden_size);

/* ---- one cell on its own (decoders, hand-written loops) ---- */

/* A recurrent state of one cell: s[j] (B, H); h and c name states 0 and 1. */
typedef union ur_rnn_hc {
    struct {
        ur_node *h, *c;
    };
    ur_node *s[UR_CELL_MAX_STATES];
} ur_rnn_hc;

/* Adds a cell's parameters (zero-filled) to ps, named PREFIX.NAME SUFFIX ("dec" and
 * "" give "dec.weight_ih", as PyTorch's nn.LSTMCell; prefix NULL or "" drops
 * "PREFIX."). Initialize them with ur_init_* or ur_rnn_cell_init_uniform. */
ur_status ur_cell_make(ur_rnn_cell *cell, ur_paramset *ps, const char *prefix, const char *suffix,
                       const ur_cell_def *def, int input_size, int hidden_size);
/* The parameter named name ("weight_hh"), or NULL. */
ur_param *ur_rnn_cell_param(const ur_rnn_cell *cell, const char *name);
/* PyTorch's default: every parameter uniform in [-1/sqrt(H), 1/sqrt(H)). */
ur_status ur_rnn_cell_init_uniform(ur_rnn_cell *cell, ur_rng *rng);
/* The cell's input projection: x (N, in) -> (N, P); x itself for a cell without one. */
ur_node *ur_rnn_cell_project(ur_tape *t, const ur_rnn_cell *cell, ur_node *x);
/* One step from a projected input gx (B, P). NULL states are zeros. hdrop (B, H) or
 * NULL multiplies h before it enters the recurrent matmul (variational dropout).
 * All states NULL on error (the tape holds it). */
ur_rnn_hc ur_rnn_cell_recur(ur_tape *t, const ur_rnn_cell *cell, ur_node *gx, ur_rnn_hc prev, ur_node *hdrop);
/* One step from x (B, in): project, then recur. */
ur_rnn_hc ur_rnn_cell_step(ur_tape *t, const ur_rnn_cell *cell, ur_node *x, ur_rnn_hc prev);

#ifdef __cplusplus
}
#endif
#endif
