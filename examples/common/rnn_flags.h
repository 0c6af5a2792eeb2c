/* rnn_flags.h - the recurrent-network flags every trainer that builds an ur_rnn
 * shares: --init, --forget-bias, --variational and --clip-value. Not part of the
 * library (examples only). A program keeps an rnn_flags in its settings, puts
 * RNN_FLAG_OPTS(f) into its flag table and RNN_FLAG_NAMES into its stored names
 * (so --load rebuilds the same model), then calls rnn_flags_apply on its
 * ur_rnn_config and rnn_flags_clip after each backward pass. */
#ifndef UR_EXAMPLES_RNN_FLAGS_H
#define UR_EXAMPLES_RNN_FLAGS_H

#include "flags.h"
#include "ur_optim.h"
#include "ur_rnn.h"

typedef struct rnn_flags {
    const char *init;   /* uniform | orthogonal | identity (ur_rnn_init) */
    double forget_bias; /* of a cell with a forget gate; 0: the init scheme's value */
    int variational;    /* 1: one input dropout mask per sequence, shared by its steps */
    double clip_value;  /* clamp every gradient element into [-X, X]; 0: off */
} rnn_flags;

static const char *const RNN_INITS[] = {"uniform", "orthogonal", "identity", NULL};

#define RNN_FLAGS_DEFAULT {.init = "uniform", .forget_bias = 0, .variational = 0, .clip_value = 0}

#define RNN_FLAG_OPTS(f)                                                                                           \
    CLI_CHOICE("--init", &(f).init, RNN_INITS, "recurrent weights: PyTorch's uniform, orthogonal, or identity "   \
               "(IRNN) (default uniform)"),                                                                        \
        CLI_REAL("--forget-bias", &(f).forget_bias, -100, 100, "forget-gate bias at the start (default 0: none)"), \
        CLI_BOOL("--variational", &(f).variational, "one input dropout mask per sequence, shared by all steps"),   \
        CLI_REAL("--clip-value", &(f).clip_value, 0, 1e6, "clamp each gradient element into [-X, X] (default 0: off)")

#define RNN_FLAG_NAMES "--init", "--forget-bias", "--variational", "--clip-value"

/* Sets the config's init scheme, forget-gate bias and variational dropout. */
static inline void rnn_flags_apply(const rnn_flags *f, ur_rnn_config *rc) {
    int k = cli_choice_index(RNN_INITS, f->init);
    rc->init = k == 1 ? UR_RNN_INIT_ORTHOGONAL : k == 2 ? UR_RNN_INIT_IDENTITY : UR_RNN_INIT_UNIFORM;
    rc->forget_bias = f->forget_bias;
    rc->variational = f->variational;
}

/* Elementwise clipping (before the norm clipping, which then sees the clamped
 * gradient); UR_OK when it is off. */
static inline ur_status rnn_flags_clip(const rnn_flags *f, ur_paramset *ps) {
    return f->clip_value > 0 ? ur_clip_grad_value(ps, f->clip_value) : UR_OK;
}

#endif
