/* rnn_cell.c - one recurrent step (Elman, GRU in both forms, LSTM) from public ops.
 *
 * Every cell splits a step in two: the input projection gx = x W_ih + b_ih, which a
 * layer computes for all time steps at once, and the recurrence, which reads
 * h W_hh + b_hh through one fused matmul and applies the gate equations. */
#include "rnn_internal.h"
#include "ur_init.h"

#include <math.h>
#include <stdio.h>

const char *ur_rnn_kind_name(ur_rnn_kind kind) {
    static const char *const names[] = {"rnn_tanh", "rnn_relu", "gru", "gru_reset_before", "lstm"};
    return (int)kind >= 0 && (int)kind < 5 ? names[kind] : "?";
}

int ur_rnn_gates(ur_rnn_kind kind) {
    static const int gates[] = {1, 1, 3, 3, 4};
    return (int)kind >= 0 && (int)kind < 5 ? gates[kind] : 0;
}

/* ---- parameters ---- */

static ur_param *add_param(ur_paramset *ps, const char *prefix, const char *base, const char *suffix, int ndim,
                           const int *dims) {
    char name[sizeof ((ur_param *)0)->name];
    int n = snprintf(name, sizeof name, "%s%s%s%s", prefix && *prefix ? prefix : "", prefix && *prefix ? "." : "",
                     base, suffix ? suffix : "");
    if (n < 0 || (size_t)n >= sizeof name) {
        ur_set_error(UR_ERR_ARG, "parameter name '%s.%s%s' is longer than %d bytes",
                     prefix ? prefix : "", base, suffix ? suffix : "", (int)sizeof name - 1);
        return NULL;
    }
    return ur_paramset_add(ps, name, ndim, dims);
}

ur_status ur_rnn_cell_make(ur_rnn_cell *cell, ur_paramset *ps, const char *prefix, const char *suffix,
                           ur_rnn_kind kind, int input_size, int hidden_size) {
    if (!cell || !ps) return ur_set_error(UR_ERR_ARG, "ur_rnn_cell_make: cell or paramset is NULL");
    int G = ur_rnn_gates(kind);
    if (G == 0) return ur_set_error(UR_ERR_ARG, "ur_rnn_cell_make: unknown cell kind %d", (int)kind);
    if (input_size < 1 || hidden_size < 1 || hidden_size > 0x7fffffff / G)
        return ur_set_error(UR_ERR_ARG, "ur_rnn_cell_make: sizes in %d, hidden %d (must be >= 1)", input_size,
                            hidden_size);
    int GH = G * hidden_size;
    int d_ih[2] = {input_size, GH}, d_hh[2] = {hidden_size, GH}, d_b[1] = {GH};
    ur_rnn_cell c = {kind, input_size, hidden_size, NULL, NULL, NULL, NULL};
    if (!(c.W_ih = add_param(ps, prefix, "weight_ih", suffix, 2, d_ih)) ||
        !(c.W_hh = add_param(ps, prefix, "weight_hh", suffix, 2, d_hh)) ||
        !(c.b_ih = add_param(ps, prefix, "bias_ih", suffix, 1, d_b)) ||
        !(c.b_hh = add_param(ps, prefix, "bias_hh", suffix, 1, d_b))) {
        char msg[256]; /* the paramset's message, copied: it is rewritten below */
        snprintf(msg, sizeof msg, "%s", ur_last_error());
        return ur_set_error(UR_ERR_ARG, "ur_rnn_cell_make: %s", msg);
    }
    *cell = c;
    return UR_OK;
}

ur_status ur_rnn_cell_init_uniform(ur_rnn_cell *cell, ur_rng *rng) {
    if (!cell || !rng || !cell->W_ih || !cell->W_hh || !cell->b_ih || !cell->b_hh)
        return ur_set_error(UR_ERR_ARG, "ur_rnn_cell_init_uniform: cell, its parameters or rng is NULL");
    double a = 1.0 / sqrt((double)cell->hidden_size);
    ur_param *p[4] = {cell->W_ih, cell->W_hh, cell->b_ih, cell->b_hh};
    for (int i = 0; i < 4; i++) {
        ur_status st = ur_init_uniform(&p[i]->value, rng, a);
        if (st != UR_OK) return st;
    }
    return UR_OK;
}

int ur_rnn_cell_check(ur_tape *t, const ur_rnn_cell *cell, const char *fn) {
    if (!cell || !cell->W_ih || !cell->W_hh || !cell->b_ih || !cell->b_hh) {
        ur_tape_fail(t, UR_ERR_ARG, "%s: cell or one of its parameters is NULL", fn);
        return 0;
    }
    if (ur_rnn_gates(cell->kind) == 0) {
        ur_tape_fail(t, UR_ERR_ARG, "%s: unknown cell kind %d", fn, (int)cell->kind);
        return 0;
    }
    return 1;
}

/* ---- the step ---- */

ur_node *ur_rnn_cell_project(ur_tape *t, const ur_rnn_cell *cell, ur_node *x) {
    if (!t || ur_tape_error(t) || !ur_rnn_cell_check(t, cell, "rnn_cell_project")) return NULL;
    return ur_linear(t, x, ur_param_node(t, cell->W_ih), ur_param_node(t, cell->b_ih));
}

int ur_rnn_bind(ur_tape *t, const ur_rnn_cell *cell, ur_rnn_bound *w, const char *fn) {
    w->cell = cell;
    w->W_hh = w->b_hh = w->W_hrz = w->b_hrz = w->W_hn = w->b_hn = NULL;
    if (!ur_rnn_cell_check(t, cell, fn)) return 0;
    w->W_hh = ur_param_node(t, cell->W_hh);
    w->b_hh = ur_param_node(t, cell->b_hh);
    if (cell->kind == UR_RNN_GRU_RESET_BEFORE) {
        int H = cell->hidden_size;
        w->W_hrz = ur_slice(t, w->W_hh, 1, 0, 2 * H);
        w->b_hrz = ur_slice(t, w->b_hh, 0, 0, 2 * H);
        w->W_hn = ur_slice(t, w->W_hh, 1, 2 * H, H);
        w->b_hn = ur_slice(t, w->b_hh, 0, 2 * H, H);
    }
    return ur_tape_error(t) == UR_OK;
}

/* h' = (1 - z) * n + z * h */
static ur_node *interpolate(ur_tape *t, ur_node *z, ur_node *n, ur_node *h) {
    return ur_add(t, ur_mul(t, ur_one_minus(t, z), n), ur_mul(t, z, h));
}

ur_rnn_hc ur_rnn_bound_step(ur_tape *t, const ur_rnn_bound *w, ur_node *gx, ur_rnn_hc prev, ur_node *hdrop) {
    const ur_rnn_cell *cell = w->cell;
    int H = cell->hidden_size;
    ur_rnn_hc out = {NULL, NULL};
    ur_node *h = prev.h;
    ur_node *hin = hdrop ? ur_mul(t, h, hdrop) : h; /* the h that enters the matmul */
    /* gx + h W_hh + b_hh; a layer passes b_hh = NULL with it already inside gx, and
     * then the sum is one linear op with gx as its full-size bias */
    ur_node *pre = cell->kind == UR_RNN_GRU || cell->kind == UR_RNN_GRU_RESET_BEFORE ? NULL
                   : w->b_hh ? ur_add(t, gx, ur_linear(t, hin, w->W_hh, w->b_hh))
                             : ur_linear(t, hin, w->W_hh, gx);
    switch (cell->kind) {
    case UR_RNN_TANH:
    case UR_RNN_RELU: {
        /* h' = act(gx + h W_hh + b_hh) */
        out.h = cell->kind == UR_RNN_TANH ? ur_tanh(t, pre) : ur_relu(t, pre);
        break;
    }
    case UR_RNN_LSTM: {
        /* [i f g o] = gx + h W_hh + b_hh: one matmul for the four gates */
        ur_node *gates = pre;
        out.c = ur_lstm_cell(t, gates, prev.c);  /* c' = sigmoid(f) c + sigmoid(i) tanh(g) */
        out.h = ur_lstm_hidden(t, gates, out.c); /* h' = sigmoid(o) tanh(c') */
        break;
    }
    case UR_RNN_GRU: {
        /* gh = h W_hh + b_hh; r, z = sigmoid(gx + gh); n = tanh(gx_n + r gh_n);
         * h' = (1 - z) n + z h, all in one fused op */
        ur_node *gh = ur_linear(t, hin, w->W_hh, w->b_hh);
        out.h = ur_gru_hidden(t, gx, gh, h);
        break;
    }
    case UR_RNN_GRU_RESET_BEFORE: {
        /* [r z] = sigmoid(gx_rz + h W_hrz + b_hrz) */
        ur_node *rz = ur_sigmoid(t, ur_add(t, ur_slice(t, gx, 1, 0, 2 * H), ur_linear(t, hin, w->W_hrz, w->b_hrz)));
        ur_node *r = ur_slice(t, rz, 1, 0, H), *z = ur_slice(t, rz, 1, H, H);
        /* n = tanh(gx_n + (r * h) W_hn + b_hn): the reset gate acts before the matmul */
        ur_node *rh = ur_mul(t, r, hin);
        ur_node *n = ur_tanh(t, ur_add(t, ur_slice(t, gx, 1, 2 * H, H), ur_linear(t, rh, w->W_hn, w->b_hn)));
        out.h = interpolate(t, z, n, h);
        break;
    }
    }
    if (ur_tape_error(t)) out.h = out.c = NULL;
    return out;
}

/* Checks gx (B, G*H) and the state shapes; fills zero states for NULL ones. */
static int prepare(ur_tape *t, const ur_rnn_cell *cell, ur_node *gx, ur_rnn_hc *prev, const char *fn) {
    if (!gx) {
        ur_tape_fail(t, UR_ERR_ARG, "%s: input is NULL", fn);
        return 0;
    }
    int G = ur_rnn_gates(cell->kind), H = cell->hidden_size, B = ur_node_dim(gx, 0);
    char buf[64];
    if (ur_node_ndim(gx) != 2 || ur_node_dim(gx, 1) != G * H) {
        ur_tape_fail(t, UR_ERR_SHAPE, "%s: projected input must be (B, %d), got %s", fn, G * H,
                     ur_shape_str(ur_node_shape(gx), buf, sizeof buf));
        return 0;
    }
    int dims[2] = {B, H};
    ur_node **st[2] = {&prev->h, &prev->c};
    for (int i = 0; i < (cell->kind == UR_RNN_LSTM ? 2 : 1); i++) {
        if (!*st[i]) {
            *st[i] = ur_zeros(t, 2, dims);
        } else if (ur_node_ndim(*st[i]) != 2 || ur_node_dim(*st[i], 0) != B || ur_node_dim(*st[i], 1) != H) {
            ur_tape_fail(t, UR_ERR_SHAPE, "%s: state %s must be (%d, %d), got %s", fn, i ? "c" : "h", B, H,
                         ur_shape_str(ur_node_shape(*st[i]), buf, sizeof buf));
            return 0;
        }
    }
    return ur_tape_error(t) == UR_OK;
}

ur_rnn_hc ur_rnn_cell_recur(ur_tape *t, const ur_rnn_cell *cell, ur_node *gx, ur_rnn_hc prev, ur_node *hdrop) {
    ur_rnn_hc none = {NULL, NULL};
    const char *fn = "rnn_cell_recur";
    ur_rnn_bound w;
    if (!t || ur_tape_error(t) || !ur_rnn_bind(t, cell, &w, fn) || !prepare(t, cell, gx, &prev, fn)) return none;
    return ur_rnn_bound_step(t, &w, gx, prev, hdrop);
}

ur_rnn_hc ur_rnn_cell_step(ur_tape *t, const ur_rnn_cell *cell, ur_node *x, ur_rnn_hc prev) {
    ur_rnn_hc none = {NULL, NULL};
    const char *fn = "rnn_cell_step";
    ur_rnn_bound w;
    if (!t || ur_tape_error(t) || !ur_rnn_bind(t, cell, &w, fn)) return none;
    ur_node *gx = ur_rnn_cell_project(t, cell, x); /* (B, G*H) */
    if (!gx || !prepare(t, cell, gx, &prev, fn)) return none;
    return ur_rnn_bound_step(t, &w, gx, prev, NULL);
}
