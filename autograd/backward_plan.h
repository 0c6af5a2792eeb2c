/* backward_plan.h - the backward plan: the memory and speed shortcuts of one
 * backward walk, kept apart from the backward rules. Internal (not installed).
 *
 * Every backward rule is written in the plain form "dx += ...". The plan changes
 * where those sums land and when some of them are done, never what they are:
 * - identity edges and contiguous slices share one gradient buffer (ur__grad);
 * - dW += x^T G of a weight read by many thin products is deferred and batched
 *   (ur__add_xT_G);
 * - dx += G W^T of such a weight reads W^T stored once (ur__add_G_WT).
 * Its state lives on the tape (ur_tape.plan) for the length of one ur_backward;
 * ur_tape_set_backward_plan(t, 0) switches it off and every helper does the plain
 * thing. */
#ifndef UR_BACKWARD_PLAN_H
#define UR_BACKWARD_PLAN_H

#include "tape_internal.h"

/* Starts the plan of a walk from the loss (node id `last`): counts the consumers
 * of every node and finds the slice patterns. NULL when the tape has the plan
 * switched off or the arena is full (the walk then runs plain). */
ur_plan *ur__plan_begin(ur_tape *t, int last);

/* Called by ur_backward before node y's rule: y's gradient is complete now, so
 * the deferred products of y (a weight) are done here; y becomes the node whose
 * rule runs. */
void ur__plan_visit(ur_tape *t, ur_node *y);

/* tape.c: x's own gradient buffer, zero-filled on first use; NULL when out of memory. */
ur_real *ur__grad_plain(ur_tape *t, ur_node *x);

/* ur__grad under the plan. */
ur_real *ur__plan_grad(ur_tape *t, ur_node *x);

/* ur__grad_unfilled under the plan: unfilled when x (which has no buffer yet) gets a
 * buffer of its own, or the part of a sliced node's buffer that x's slice covers
 * exactly. */
ur_real *ur__plan_grad_unfilled(ur_tape *t, ur_node *x, int *unfilled);

/* Called by ur_backward after the walk, even one stopped by an error: zeroes what
 * is still unwritten of sliced nodes' buffers. */
void ur__plan_end(ur_tape *t);

#endif
