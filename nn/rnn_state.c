/* rnn_state.c - carrying recurrent states across tape resets (truncated BPTT).
 *
 * A segment's final states are copied out of the tape into tensors; the next
 * segment starts from them as constants, so values flow on and gradients stop. */
#include "ur_rnn.h"

#include <stdio.h>

#include <string.h>

ur_rnn_state *ur_rnn_state_new(const ur_rnn *r, int batch) {
    if (!r || batch < 1) return (void)ur_set_error(UR_ERR_ARG, "ur_rnn_state_new: network is NULL or batch < 1"), NULL;
    const ur_rnn_config *cfg = ur_rnn_config_of(r);
    ur_rnn_state *s = ur_calloc(1, sizeof *s);
    if (!s) return (void)ur_set_error(UR_ERR_NOMEM, "ur_rnn_state_new: out of memory"), NULL;
    s->n = cfg->num_layers * ur_rnn_directions(r);
    s->batch = batch;
    s->hidden = cfg->hidden_size;
    s->n_states = ur_rnn_config_cell(cfg)->n_states;
    for (int j = 0; j < s->n_states; j++)
        for (int k = 0; k < s->n; k++)
            if (!(s->s[j][k] = ur_tensor_new_2d(batch, s->hidden))) {
                ur_rnn_state_free(s);
                return NULL; /* ur_tensor_new left the message */
            }
    return s;
}

void ur_rnn_state_free(ur_rnn_state *s) {
    if (!s) return;
    for (int j = 0; j < UR_CELL_MAX_STATES; j++)
        for (int k = 0; k < s->n; k++) ur_tensor_free(s->s[j][k]);
    ur_free(s);
}

void ur_rnn_state_zero(ur_rnn_state *s) {
    if (!s) return;
    for (int j = 0; j < s->n_states; j++)
        for (int k = 0; k < s->n; k++) ur_tensor_fill(s->s[j][k], 0);
}

ur_status ur_rnn_state_zero_row(ur_rnn_state *s, int b) {
    if (!s || b < 0 || b >= s->batch)
        return ur_set_error(UR_ERR_ARG, "ur_rnn_state_zero_row: state is NULL or row %d is out of range", b);
    size_t H = (size_t)s->hidden;
    for (int j = 0; j < s->n_states; j++)
        for (int k = 0; k < s->n; k++) memset(s->s[j][k]->data + (size_t)b * H, 0, H * sizeof(ur_real));
    return UR_OK;
}

ur_status ur_rnn_state_save(ur_rnn_state *s, const ur_rnn_final *f) {
    if (!s || !f) return ur_set_error(UR_ERR_ARG, "ur_rnn_state_save: state or final states is NULL");
    if (f->n != s->n)
        return ur_set_error(UR_ERR_ARG, "ur_rnn_state_save: %d final states for %d saved ones (did the forward fail?)",
                            f->n, s->n);
    for (int j = 0; j < s->n_states; j++)
        for (int k = 0; k < s->n; k++)
            if (!f->s[j][k])
                return ur_set_error(UR_ERR_ARG, "ur_rnn_state_save: final state %d of layer/direction %d is NULL", j,
                                    k);
    for (int j = 0; j < s->n_states; j++)
        for (int k = 0; k < s->n; k++) {
            ur_status st = ur_node_copy_to(f->s[j][k], s->s[j][k]);
            if (st != UR_OK) return st;
        }
    return UR_OK;
}

ur_status ur_rnn_state_feed(const ur_rnn_state *s, ur_tape *t, ur_rnn_args *args) {
    if (!s || !t || !args) return ur_set_error(UR_ERR_ARG, "ur_rnn_state_feed: state, tape or args is NULL");
    for (int j = 0; j < UR_CELL_MAX_STATES; j++)
        for (int k = 0; k < s->n; k++) args->s0[j][k] = j < s->n_states ? ur_input(t, s->s[j][k]) : NULL;
    return ur_tape_error(t);
}
