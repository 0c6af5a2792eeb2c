/* rnn_internal.h - shared by rnn_cell.c and rnn_layer.c (not part of the public API).
 * Names start with ur_rnn_ so the static library exports nothing outside ur_. */
#ifndef UR_RNN_INTERNAL_H
#define UR_RNN_INTERNAL_H

#include "ur_rnn.h"

/* A cell's recurrent weights as nodes of one recording. The reset-before GRU also
 * needs W_hh and b_hh split into their r,z columns and their n columns; a layer
 * makes those slices once per sequence instead of once per step. */
typedef struct ur_rnn_bound {
    const ur_rnn_cell *cell;
    ur_node *W_hh, *b_hh;   /* (H, G*H), (G*H) */
    ur_node *W_hrz, *b_hrz; /* reset-before GRU: (H, 2H), (2H) */
    ur_node *W_hn, *b_hn;   /* reset-before GRU: (H, H), (H) */
} ur_rnn_bound;

/* Fills w for cell on t; 0 on failure (the tape holds the error). */
int ur_rnn_bind(ur_tape *t, const ur_rnn_cell *cell, ur_rnn_bound *w, const char *fn);
/* One step from a projected input, as ur_rnn_cell_recur; prev.h (and prev.c) must not be NULL.
 * With w->b_hh NULL (a layer: b_hh is inside gx), gx must be a view of the layer's
 * own projected inputs: an LSTM or Elman step writes its pre-activations over it. */
ur_rnn_hc ur_rnn_bound_step(ur_tape *t, const ur_rnn_bound *w, ur_node *gx, ur_rnn_hc prev, ur_node *hdrop);
/* 1 if the cell's fields are usable, else records "fn: problem" on t and returns 0. */
int ur_rnn_cell_check(ur_tape *t, const ur_rnn_cell *cell, const char *fn);

#endif
