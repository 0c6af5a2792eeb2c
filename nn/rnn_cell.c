/* rnn_cell.c - one cell of any definition: its parameters, binding them to a
 * tape, and one step on its own (decoders, hand-written loops).
 *
 * A step is split in two: the input projection, which a layer computes for all
 * time steps at once, and the recurrence (the definition's step function). */
#include "rnn_internal.h"
#include "ur_init.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

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

ur_status ur_cell_make(ur_rnn_cell *cell, ur_paramset *ps, const char *prefix, const char *suffix,
                       const ur_cell_def *def, int input_size, int hidden_size) {
    const char *fn = "ur_cell_make";
    if (!cell || !ps) return ur_set_error(UR_ERR_ARG, "%s: cell or paramset is NULL", fn);
    if (!ur__cell_def_ok(def, fn)) return UR_ERR_ARG;
    if (input_size < 1 || hidden_size < 1)
        return ur_set_error(UR_ERR_ARG, "%s: sizes in %d, hidden %d (must be >= 1)", fn, input_size, hidden_size);
    if (def->project && !ur_cell_size_of(def->proj, input_size, hidden_size))
        return ur_set_error(UR_ERR_ARG, "%s: cell '%s' has a projection of width 0", fn, def->name);
    ur_rnn_cell c;
    memset(&c, 0, sizeof c);
    c.def = def;
    c.input_size = input_size;
    c.hidden_size = hidden_size;
    for (int i = 0; i < def->n_params; i++) {
        const ur_cell_param *p = &def->params[i];
        int dims[2];
        for (int j = 0; j < p->ndim; j++)
            if (!(dims[j] = ur_cell_size_of(p->dims[j], input_size, hidden_size)))
                return ur_set_error(UR_ERR_ARG, "%s: cell '%s', parameter '%s' has an empty or huge dimension", fn,
                                    def->name, p->name);
        if (!(c.p[i] = add_param(ps, prefix, p->name, suffix, p->ndim, dims))) {
            char msg[256]; /* the paramset's message, copied: it is rewritten below */
            snprintf(msg, sizeof msg, "%s", ur_last_error());
            return ur_set_error(UR_ERR_ARG, "%s: %s", fn, msg);
        }
    }
    *cell = c;
    return UR_OK;
}

ur_status ur_rnn_cell_make(ur_rnn_cell *cell, ur_paramset *ps, const char *prefix, const char *suffix,
                           ur_rnn_kind kind, int input_size, int hidden_size) {
    const ur_cell_def *def = ur_rnn_kind_cell(kind);
    if (!def) return ur_set_error(UR_ERR_ARG, "ur_rnn_cell_make: unknown cell kind %d", (int)kind);
    return ur_cell_make(cell, ps, prefix, suffix, def, input_size, hidden_size);
}

ur_param *ur_rnn_cell_param(const ur_rnn_cell *cell, const char *name) {
    if (!cell || !cell->def || !name) return NULL;
    for (int i = 0; i < cell->def->n_params; i++)
        if (!strcmp(cell->def->params[i].name, name)) return cell->p[i];
    return NULL;
}

int ur__cell_check(ur_tape *t, const ur_rnn_cell *cell, const char *fn) {
    int ok = cell && cell->def && cell->def->n_params >= 1 && cell->def->n_params <= UR_CELL_MAX_PARAMS &&
             cell->def->step && cell->hidden_size >= 1;
    for (int i = 0; ok && i < cell->def->n_params; i++) ok = cell->p[i] != NULL;
    if (!ok) ur_tape_fail(t, UR_ERR_ARG, "%s: cell, its definition or one of its parameters is NULL", fn);
    return ok;
}

ur_status ur_rnn_cell_init_uniform(ur_rnn_cell *cell, ur_rng *rng) {
    if (!rng || !cell || !cell->def)
        return ur_set_error(UR_ERR_ARG, "ur_rnn_cell_init_uniform: cell, its definition or rng is NULL");
    double a = 1.0 / sqrt((double)cell->hidden_size);
    for (int i = 0; i < cell->def->n_params; i++) {
        if (!cell->p[i]) return ur_set_error(UR_ERR_ARG, "ur_rnn_cell_init_uniform: parameter %d is NULL", i);
        ur_status st = ur_init_uniform(&cell->p[i]->value, rng, a);
        if (st != UR_OK) return st;
    }
    return UR_OK;
}

/* ---- binding and stepping ---- */

int ur__cell_bind(ur_tape *t, const ur_rnn_cell *cell, int layer, ur_cell_bound *b, const char *fn) {
    memset(b, 0, sizeof *b);
    if (!ur__cell_check(t, cell, fn)) return 0;
    b->cell = cell;
    b->H = cell->hidden_size;
    b->layer = layer;
    for (int i = 0; i < cell->def->n_params; i++) b->p[i] = ur_param_node(t, cell->p[i]);
    if (ur_tape_error(t)) return 0;
    if (cell->def->bind && !cell->def->bind(t, b) && !ur_tape_error(t))
        ur_tape_fail(t, UR_ERR_ARG, "%s: the bind of cell '%s' failed", fn, cell->def->name);
    return ur_tape_error(t) == UR_OK;
}

/* The width a step's input must have: P, or `in` for a cell without projection. */
static int step_width(const ur_rnn_cell *cell) {
    const ur_cell_def *d = cell->def;
    return d->project ? ur_cell_size_of(d->proj, cell->input_size, cell->hidden_size) : cell->input_size;
}

ur_node *ur_rnn_cell_project(ur_tape *t, const ur_rnn_cell *cell, ur_node *x) {
    ur_cell_bound b;
    if (!t || ur_tape_error(t) || !ur__cell_bind(t, cell, 0, &b, "rnn_cell_project")) return NULL;
    return cell->def->project ? cell->def->project(t, &b, x) : x;
}

/* Checks gx (B, P) and the state shapes; fills zero states for NULL ones. */
static int prepare(ur_tape *t, const ur_rnn_cell *cell, ur_node *gx, ur_rnn_hc *prev, const char *fn) {
    if (!gx) return ur_tape_fail(t, UR_ERR_ARG, "%s: input is NULL", fn), 0;
    int P = step_width(cell), H = cell->hidden_size, B = ur_node_dim(gx, 0);
    char buf[64];
    if (ur_node_ndim(gx) != 2 || ur_node_dim(gx, 1) != P) {
        ur_tape_fail(t, UR_ERR_SHAPE, "%s: projected input must be (B, %d), got %s", fn, P,
                     ur_shape_str(ur_node_shape(gx), buf, sizeof buf));
        return 0;
    }
    int dims[2] = {B, H};
    for (int i = 0; i < cell->def->n_states; i++) {
        ur_node **s = &prev->s[i];
        if (!*s) {
            *s = ur_zeros(t, 2, dims);
        } else if (ur_node_ndim(*s) != 2 || ur_node_dim(*s, 0) != B || ur_node_dim(*s, 1) != H) {
            const char *name = cell->def->state_names[i] ? cell->def->state_names[i] : "?";
            ur_tape_fail(t, UR_ERR_SHAPE, "%s: state %s must be (%d, %d), got %s", fn, name, B, H,
                         ur_shape_str(ur_node_shape(*s), buf, sizeof buf));
            return 0;
        }
    }
    return ur_tape_error(t) == UR_OK;
}

/* The definition's step; all states NULL when the tape holds an error. */
ur_rnn_hc ur__cell_run_step(ur_tape *t, const ur_cell_bound *b, ur_node *gx, ur_rnn_hc prev, ur_node *hdrop) {
    ur_rnn_hc out;
    memset(&out, 0, sizeof out);
    b->cell->def->step(t, b, gx, prev.s, hdrop, out.s);
    for (int i = 0; i < b->cell->def->n_states && !ur_tape_error(t); i++)
        if (!out.s[i])
            ur_tape_fail(t, UR_ERR_ARG, "rnn_cell_step: the step of cell '%s' gave no state %d", b->cell->def->name,
                         i);
    if (ur_tape_error(t)) memset(&out, 0, sizeof out);
    return out;
}

ur_rnn_hc ur_rnn_cell_recur(ur_tape *t, const ur_rnn_cell *cell, ur_node *gx, ur_rnn_hc prev, ur_node *hdrop) {
    ur_rnn_hc none;
    memset(&none, 0, sizeof none);
    const char *fn = "rnn_cell_recur";
    ur_cell_bound b;
    if (!t || ur_tape_error(t) || !ur__cell_bind(t, cell, 0, &b, fn) || !prepare(t, cell, gx, &prev, fn))
        return none;
    return ur__cell_run_step(t, &b, gx, prev, hdrop);
}

ur_rnn_hc ur_rnn_cell_step(ur_tape *t, const ur_rnn_cell *cell, ur_node *x, ur_rnn_hc prev) {
    ur_rnn_hc none;
    memset(&none, 0, sizeof none);
    const char *fn = "rnn_cell_step";
    ur_cell_bound b;
    if (!t || ur_tape_error(t) || !ur__cell_bind(t, cell, 0, &b, fn)) return none;
    ur_node *gx = cell->def->project ? cell->def->project(t, &b, x) : x; /* (B, P) */
    if (!gx && !ur_tape_error(t)) ur_tape_fail(t, UR_ERR_ARG, "%s: x is NULL", fn);
    if (ur_tape_error(t) || !prepare(t, cell, gx, &prev, fn)) return none;
    return ur__cell_run_step(t, &b, gx, prev, NULL);
}
