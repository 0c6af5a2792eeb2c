/* ur_rnn.h - recurrent networks of any cell (ur_cell.h) composed from public ops:
 * the built-in Elman RNN, GRU and LSTM described below, the cells of nn/cell_*.c,
 * and a user's own cell, all run by the same layer code.
 *
 * Nothing here has a backward rule of its own: every step is built from the ops of
 * ur_ops.h on the tape, and backpropagation through time falls out of the tape (a
 * weight used at T steps is one node with T consumers; its gradient is the sum).
 *
 * Shapes: T time steps, B sequences in a batch, `in` input features, H hidden
 * units, G gates (Elman 1, GRU 3, LSTM 4), D directions (1, or 2 bidirectional).
 * Sequences are time-major: x is (T, B, in), row (t, b) at offset (t*B + b)*in.
 *
 * Parameters of a built-in cell, named as PyTorch names them but stored transposed, in
 * the layout x * W wants (ur_linear):
 *   W_ih  "PREFIX.weight_ih_lK[_reverse]"  (in, G*H)   PyTorch: (G*H, in)
 *   W_hh  "PREFIX.weight_hh_lK[_reverse]"  (H, G*H)    PyTorch: (G*H, H)
 *   b_ih  "PREFIX.bias_ih_lK[_reverse]"    (G*H)
 *   b_hh  "PREFIX.bias_hh_lK[_reverse]"    (G*H)
 * Gate blocks are column blocks of width H in PyTorch's order: LSTM i, f, g, o;
 * GRU r, z, n. Because the layout differs, a file written by ur_ckpt_save from an
 * ur_rnn is read back by ur_ckpt_load_params, while PyTorch's own state dicts are
 * read by ur_rnn_load_torch (which transposes).
 *
 * One step of a built-in cell, with gx = x W_ih + b_ih and gh = h W_hh + b_hh (each (B, G*H)):
 *   Elman:  h' = act(gx + gh)                       act = tanh or relu
 *   LSTM:   [i f g o] = gx + gh                     (one fused matmul for all gates)
 *           c' = sigmoid(f) * c + sigmoid(i) * tanh(g)        (one expression,
 *           h' = sigmoid(o) * tanh(c')                         ur_expr_lstm)
 *   GRU, reset after the matmul (cuDNN, PyTorch; one expression, ur_expr_gru):
 *           r = sigmoid(gx_r + gh_r),  z = sigmoid(gx_z + gh_z)
 *           n = tanh(gx_n + r * gh_n)                gh_n = h W_hn + b_hn
 *           h' = (1 - z) * n + z * h
 *   GRU, reset before the matmul (Cho et al. 2014), composed from elementwise ops:
 *           r, z as above
 *           n = tanh(gx_n + (r * h) W_hn + b_hn)
 *           h' = (1 - z) * n + z * h
 *
 * Speed: a layer projects the inputs of ALL time steps with one ur_linear over
 * (T*B, in); each step then does one fused (B, H) x (H, G*H) matmul and the gate
 * op (the reset-before GRU needs two matmuls per step: r must be known first).
 *
 * Variable lengths: with a mask m (1 for a real step, 0 for padding; sequences are
 * padded at the end), each step keeps a finished sequence's states (every state
 * of the cell: h; h and c; ...) unchanged,
 *   s_t = m_t * s_new + (1 - m_t) * s_{t-1}     (m_t is (B, 1), broadcast)
 * and the output there is zero. The final state of a sequence is thus its state
 * after its last real step, and padded inputs receive and pass exactly zero
 * gradient. The reverse direction needs nothing extra: it runs from t = T-1 down
 * to 0 and stays at its initial state until it reaches the sequence's last step.
 *
 * Errors: graph-building functions (step, forward) record a sticky error on the
 * tape and return NULL, like every op. The others return ur_status or NULL with
 * ur_last_error() set ("function: problem").
 *
 * Weight tying (language models, Press & Wolf 2017): with an embedding table E
 * (V, H) read by ur_gather, the output layer can reuse it transposed instead of
 * owning a (H, V) matrix:  logits = ur_matmul(t, h, E, 0, 1)  -- h (N, H), E^T
 * (H, V) -> (N, V). E's one node then has two consumers and its gradient is the
 * sum of both uses; no code is needed. H must equal the embedding size (or add a
 * (H, E) projection first; examples/char_rnn.c --tie does both).
 *
 * Truncated BPTT: after a segment, copy the final states out of the tape
 * (ur_rnn_state_save) and, after ur_tape_reset, feed them in as constants for the
 * next segment (ur_rnn_state_feed): values flow on, gradients stop at the cut.
 */
#ifndef UR_RNN_H
#define UR_RNN_H

#include "../autograd/ur_ops.h"
#include "io/ur_checkpoint.h"
#include "ur_cell.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    UR_RNN_MAX_LAYERS = 8,
    UR_RNN_MAX_STATES = 2 * UR_RNN_MAX_LAYERS /* layers * directions */
};

/* Names of the built-in cells, kept for source compatibility: a config's kind is
 * the registered cell named ur_rnn_kind_name(kind) (unless its `cell` is set). */
typedef enum ur_rnn_kind {
    UR_RNN_TANH = 0,          /* "rnn_tanh": Elman, h' = tanh(gx + gh) */
    UR_RNN_RELU,              /* "rnn_relu": Elman, h' = relu(gx + gh) */
    UR_RNN_GRU,               /* "gru": reset after the matmul (PyTorch, cuDNN) */
    UR_RNN_GRU_RESET_BEFORE,  /* "gru_reset_before": reset before the matmul (Cho et al. 2014) */
    UR_RNN_LSTM               /* "lstm": gates i, f, g, o */
} ur_rnn_kind;

/* "rnn_tanh", "rnn_relu", "gru", "gru_reset_before", "lstm"; "?" when out of range. */
const char *ur_rnn_kind_name(ur_rnn_kind kind);
/* Number of H-wide blocks of the cell's first parameter (weight_ih): 1, 1, 3, 3, 4;
 * 0 when out of range. */
int ur_rnn_gates(ur_rnn_kind kind);
/* The built-in cell's registered definition; NULL when out of range. */
const ur_cell_def *ur_rnn_kind_cell(ur_rnn_kind kind);

/* ============================ one cell ============================
 * ur_rnn_cell, ur_rnn_hc and the one-step functions are in ur_cell.h. */

/* ur_cell_make for a built-in cell. */
ur_status ur_rnn_cell_make(ur_rnn_cell *cell, ur_paramset *ps, const char *prefix, const char *suffix,
                           ur_rnn_kind kind, int input_size, int hidden_size);

/* ============================ a stacked layer ============================ */

typedef enum ur_rnn_merge {
    UR_RNN_MERGE_CONCAT = 0, /* [forward, backward] -> (T, B, 2H) */
    UR_RNN_MERGE_SUM         /* forward + backward  -> (T, B, H) */
} ur_rnn_merge;

typedef enum ur_rnn_init {
    UR_RNN_INIT_UNIFORM = 0, /* PyTorch: all weights and biases U(-1/sqrt(H), 1/sqrt(H)) */
    UR_RNN_INIT_ORTHOGONAL,  /* W_ih Xavier uniform, each gate block of W_hh orthogonal, biases 0 */
    UR_RNN_INIT_IDENTITY     /* IRNN (Le et al. 2015): W_hh blocks = identity, W_ih N(0, 0.001^2), biases 0 */
} ur_rnn_init;

/* Start from ur_rnn_defaults and change fields. */
typedef struct ur_rnn_config {
    ur_rnn_kind kind;      /* a built-in cell, used when cell is NULL */
    const ur_cell_def *cell; /* any registered (or unregistered) cell; NULL: kind's */
    int input_size, hidden_size;
    int num_layers;        /* 1 .. UR_RNN_MAX_LAYERS */
    int bidirectional;     /* 1: a second cell per layer reads the sequence backwards */
    ur_rnn_merge merge;    /* how the two directions' outputs are joined */
    double dropout;        /* p on the input of layers 1..L-1 (PyTorch's `dropout`) */
    double dropout_input;  /* p on the input of layer 0 (e.g. embeddings) */
    double dropout_hidden; /* p on h_{t-1} entering the recurrent matmul (always variational) */
    int variational;       /* 1: input dropouts use one (B, in) mask per sequence, shared by all steps */
    ur_rnn_init init;
    double forget_bias;    /* if != 0 and the cell has a forget gate: its slice of the first bias
                            * set to it, of the other biases to 0 (LSTM: b_ih and b_hh) */
    uint64_t seed;         /* of the initial values */
    int residual;          /* 1: layers 1..L-1 add their input to their output, see below */
} ur_rnn_config;

/* Residual connections (deep RNNs): with `residual` set, layer l > 0 outputs
 *     y_l = RNN_l(dropout(y_{l-1})) + y_{l-1}      (T, B, out), out = ur_rnn_output_size
 * The sizes always match there: layer l reads the previous layer's output. The skip
 * uses the input before dropout, is zero at padded steps like both terms, and leaves
 * the states (ur_rnn_final) as they were; layer 0 has no skip (its input has
 * input_size features). The gradient reaches lower layers through the sum unchanged. */

/* One layer, unidirectional, no dropout, PyTorch's initialization, seed 0. */
ur_rnn_config ur_rnn_defaults(ur_rnn_kind kind, int input_size, int hidden_size);
/* The same for any cell (cell NULL: the error shows at ur_rnn_new). */
ur_rnn_config ur_rnn_defaults_cell(const ur_cell_def *cell, int input_size, int hidden_size);
/* The cell a config runs: cfg->cell, or the built-in of cfg->kind; NULL if neither. */
const ur_cell_def *ur_rnn_config_cell(const ur_rnn_config *cfg);

typedef struct ur_rnn ur_rnn;

/* A new network whose parameters are added to ps (which must outlive it) and
 * initialized from cfg. Names as in the header comment, e.g. "rnn.weight_ih_l0".
 * NULL on a bad config or duplicate name (ur_last_error); parameters added before
 * the failure stay in ps. */
ur_rnn *ur_rnn_new(ur_paramset *ps, const char *prefix, const ur_rnn_config *cfg);
void ur_rnn_free(ur_rnn *r); /* the parameters stay in their paramset; NULL is a no-op */

const ur_rnn_config *ur_rnn_config_of(const ur_rnn *r);
int ur_rnn_directions(const ur_rnn *r);  /* 1 or 2 */
int ur_rnn_output_size(const ur_rnn *r); /* H, or 2H when bidirectional and concatenated */
/* The cell of a layer and direction (0 forward, 1 backward); NULL if out of range. */
ur_rnn_cell *ur_rnn_cell_at(ur_rnn *r, int layer, int direction);

/* Optional inputs of a forward pass; zero-initialize ({0}) for the defaults. States
 * are indexed layer * D + direction (PyTorch's h_n order). */
typedef struct ur_rnn_args {
    const ur_real *mask;               /* T*B values, mask[t*B + b]; NULL: all lengths T */
    union { /* initial states (B, H); NULL entries are zeros */
        struct {
            ur_node *h0[UR_RNN_MAX_STATES]; /* state 0 (h) */
            ur_node *c0[UR_RNN_MAX_STATES]; /* state 1 (an LSTM's c) */
        };
        ur_node *s0[UR_CELL_MAX_STATES][UR_RNN_MAX_STATES]; /* s0[j][k]: state j of layer/direction k */
    };
    int training;                      /* 1: apply the config's dropouts */
    uint64_t seed;                     /* of the dropout masks: change it every step */
} ur_rnn_args;

/* The final states after each sequence's last real step. */
typedef struct ur_rnn_final {
    int n;                             /* layers * directions */
    union { /* (B, H); NULL beyond the cell's states */
        struct {
            ur_node *h[UR_RNN_MAX_STATES]; /* state 0 */
            ur_node *c[UR_RNN_MAX_STATES]; /* state 1 (an LSTM's c) */
        };
        ur_node *s[UR_CELL_MAX_STATES][UR_RNN_MAX_STATES]; /* s[j][k]: state j of layer/direction k */
    };
} ur_rnn_final;

/* Runs the stack over x (T, B, in); returns the top layer's outputs (T, B,
 * ur_rnn_output_size), zero at padded steps. args may be NULL, final may be NULL.
 * Each step's nodes are grouped on the tape as "t=3" (with several layers or
 * directions "l1 t=3", "l1 rev t=3"). Not reentrant on one ur_rnn (scratch space). */
ur_node *ur_rnn_forward(ur_rnn *r, ur_tape *t, ur_node *x, const ur_rnn_args *args, ur_rnn_final *final);

/* ====================== PyTorch state dicts ====================== */

/* Copies the weights of a PyTorch nn.RNN / nn.GRU / nn.LSTM with the same sizes from
 * a safetensors file: names PREFIX.weight_ih_lK[_reverse] (G*H, in) etc. (prefix
 * NULL or "" for none), transposed into this layout. Every name and shape is checked
 * before any parameter changes. A model saved with bias=False (no bias tensors at
 * all) gives zero biases. The cell must be one of PyTorch's (rnn_tanh, rnn_relu,
 * gru, lstm: its definition's `torch` flag). */
ur_status ur_rnn_load_torch(ur_rnn *r, ur_ckpt *ck, const char *prefix);
/* ur_ckpt_open + ur_rnn_load_torch + ur_ckpt_close. */
ur_status ur_rnn_load_torch_file(ur_rnn *r, const char *path, const char *prefix);

/* ====================== truncated BPTT: carried states ====================== */

/* Final states copied out of a tape, to start the next segment from. */
typedef struct ur_rnn_state {
    int n;                            /* layers * directions */
    int batch, hidden;
    int n_states;                     /* per layer and direction: the cell's */
    union { /* (B, H); NULL beyond the cell's states */
        struct {
            ur_tensor *h[UR_RNN_MAX_STATES]; /* state 0 */
            ur_tensor *c[UR_RNN_MAX_STATES]; /* state 1 (an LSTM's c) */
        };
        ur_tensor *s[UR_CELL_MAX_STATES][UR_RNN_MAX_STATES];
    };
} ur_rnn_state;

/* Zero states for r and batch size B; NULL on failure (ur_last_error). */
ur_rnn_state *ur_rnn_state_new(const ur_rnn *r, int batch);
void ur_rnn_state_free(ur_rnn_state *s); /* NULL is a no-op */
/* Sets every state to zero (a new stream starts). */
void ur_rnn_state_zero(ur_rnn_state *s);
/* Zeroes the states of sequence b only (its stream ended; the others go on). */
ur_status ur_rnn_state_zero_row(ur_rnn_state *s, int b);
/* Copies the final states of a forward pass into s (before ur_tape_reset). */
ur_status ur_rnn_state_save(ur_rnn_state *s, const ur_rnn_final *f);
/* Puts the saved states on the tape as constants (no gradient flows into the
 * previous segment) and points args->s0 (h0, c0, ...) at them. */
ur_status ur_rnn_state_feed(const ur_rnn_state *s, ur_tape *t, ur_rnn_args *args);

#ifdef __cplusplus
}
#endif
#endif
