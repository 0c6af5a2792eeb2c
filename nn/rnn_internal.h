/* rnn_internal.h - shared by the rnn_*.c files (not part of the public API).
 * Names start with ur_ so the static library exports nothing outside ur_. */
#ifndef UR_RNN_INTERNAL_H
#define UR_RNN_INTERNAL_H

#include "../autograd/ur_expr.h"
#include "ur_rnn.h"

/* The built-in cells (rnn_cells.c) and the cells of cell_*.c, registered from the start. */
extern const ur_cell_def ur__cell_tanh, ur__cell_relu, ur__cell_gru, ur__cell_gru_reset_before, ur__cell_lstm;
extern const ur_cell_def ur__cell_mgu, ur__cell_peephole_lstm, ur__cell_indrnn, ur__cell_jordan;
extern const ur_cell_def ur__cell_lnlstm;

/* rnn_cells.c: *slot, built by build() on first use (under a lock) and freed at
 * exit; NULL when out of memory. For the library's own fixed expressions. */
const ur_expr *ur__expr_once(ur_expr **slot, ur_expr *(*build)(void));

/* 1 if def is a usable definition, else sets "fn: problem" (ur_last_error) and returns 0. */
int ur__cell_def_ok(const ur_cell_def *def, const char *fn);
/* Fills b with cell's parameter nodes on t and runs the cell's bind; layer as in
 * ur_cell_bound. 0 on failure (the tape holds the error). */
int ur__cell_bind(ur_tape *t, const ur_rnn_cell *cell, int layer, ur_cell_bound *b, const char *fn);
/* The definition's step from a checked input and states; all states NULL when the
 * tape holds an error afterwards. */
ur_rnn_hc ur__cell_run_step(ur_tape *t, const ur_cell_bound *b, ur_node *gx, ur_rnn_hc prev, ur_node *hdrop);
/* 1 if the cell's fields are usable, else records "fn: problem" on t and returns 0. */
int ur__cell_check(ur_tape *t, const ur_rnn_cell *cell, const char *fn);

/* rnn_layer.c: initialises one cell as ur_rnn_new does under cfg's init scheme and
 * forget_bias (for cells made outside an ur_rnn, such as a decoder's). */
ur_status ur__rnn_cell_init(ur_rnn_cell *c, const ur_rnn_config *cfg, ur_rng *rng);

#endif
