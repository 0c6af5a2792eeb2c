/* rnn_registry.c - the registry of recurrent cells, looked up by name (ur_rnn,
 * char_rnn --cell NAME), and the names of the built-in kinds. */
#include "rnn_internal.h"

#include <stdio.h>
#include <string.h>

static const ur_cell_def *registry[UR_CELL_MAX] = {
    &ur__cell_tanh, &ur__cell_relu,          &ur__cell_gru,    &ur__cell_gru_reset_before, &ur__cell_lstm,
    &ur__cell_mgu,  &ur__cell_peephole_lstm, &ur__cell_indrnn, &ur__cell_jordan,
    &ur__cell_lnlstm};
static int n_registered = 10;

/* in ur_rnn_kind order */
static const ur_cell_def *const kinds[] = {&ur__cell_tanh, &ur__cell_relu, &ur__cell_gru, &ur__cell_gru_reset_before,
                                           &ur__cell_lstm};
enum { N_KINDS = sizeof kinds / sizeof *kinds };

const ur_cell_def *ur_rnn_kind_cell(ur_rnn_kind kind) {
    return (int)kind >= 0 && (int)kind < N_KINDS ? kinds[kind] : NULL;
}

const char *ur_rnn_kind_name(ur_rnn_kind kind) {
    const ur_cell_def *d = ur_rnn_kind_cell(kind);
    return d ? d->name : "?";
}

int ur_rnn_gates(ur_rnn_kind kind) {
    const ur_cell_def *d = ur_rnn_kind_cell(kind);
    return d ? d->params[0].dims[1].hidden : 0;
}

int ur_cell_size_of(ur_cell_size s, int input_size, int hidden_size) {
    long long n = (long long)s.in * input_size + (long long)s.hidden * hidden_size;
    return n > 0 && n <= 0x7fffffff ? (int)n : 0;
}

int ur__cell_def_ok(const ur_cell_def *d, const char *fn) {
    if (!d) return ur_set_error(UR_ERR_ARG, "%s: cell definition is NULL", fn), 0;
    if (!d->name || !*d->name || strlen(d->name) > 31)
        return ur_set_error(UR_ERR_ARG, "%s: cell name is empty, NULL or longer than 31 bytes", fn), 0;
    if (d->n_states < 1 || d->n_states > UR_CELL_MAX_STATES)
        return ur_set_error(UR_ERR_ARG, "%s: cell '%s' has %d states (must be 1..%d)", fn, d->name, d->n_states,
                            UR_CELL_MAX_STATES), 0;
    if (d->n_params < 1 || d->n_params > UR_CELL_MAX_PARAMS)
        return ur_set_error(UR_ERR_ARG, "%s: cell '%s' has %d parameters (must be 1..%d)", fn, d->name, d->n_params,
                            UR_CELL_MAX_PARAMS), 0;
    for (int i = 0; i < d->n_params; i++) {
        const ur_cell_param *p = &d->params[i];
        if (!p->name || !*p->name || (p->ndim != 1 && p->ndim != 2))
            return ur_set_error(UR_ERR_ARG, "%s: cell '%s', parameter %d: no name or ndim %d (must be 1 or 2)", fn,
                                d->name, i, p->ndim), 0;
        for (int j = 0; j < i; j++)
            if (!strcmp(d->params[j].name, p->name))
                return ur_set_error(UR_ERR_ARG, "%s: cell '%s' names two parameters '%s'", fn, d->name, p->name), 0;
    }
    if (!d->step) return ur_set_error(UR_ERR_ARG, "%s: cell '%s' has no step function", fn, d->name), 0;
    if (d->project && d->proj.in < 0) return ur_set_error(UR_ERR_ARG, "%s: cell '%s': negative width", fn, d->name), 0;
    if (d->torch && (d->n_params < 4 || d->params[0].ndim != 2 || d->params[1].ndim != 2 ||
                     d->params[2].ndim != 1 || d->params[3].ndim != 1))
        return ur_set_error(UR_ERR_ARG, "%s: cell '%s' is marked as PyTorch's but lacks its 4 parameters", fn,
                            d->name), 0;
    return 1;
}

ur_status ur_cell_register(const ur_cell_def *def) {
    const char *fn = "ur_cell_register";
    if (!ur__cell_def_ok(def, fn)) return UR_ERR_ARG;
    for (int i = 0; i < n_registered; i++)
        if (!strcmp(registry[i]->name, def->name))
            return ur_set_error(UR_ERR_ARG, "%s: a cell named '%s' is already registered", fn, def->name);
    if (n_registered == UR_CELL_MAX)
        return ur_set_error(UR_ERR_ARG, "%s: the registry is full (%d cells)", fn, UR_CELL_MAX);
    registry[n_registered++] = def;
    return UR_OK;
}

const ur_cell_def *ur_cell_find(const char *name) {
    for (int i = 0; name && i < n_registered; i++)
        if (!strcmp(registry[i]->name, name)) return registry[i];
    char known[512];
    size_t used = 0;
    known[0] = 0;
    for (int i = 0; i < n_registered && used < sizeof known; i++) {
        int n = snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "", registry[i]->name);
        if (n < 0) break;
        used += (size_t)n;
    }
    ur_set_error(UR_ERR_ARG, "ur_cell_find: no cell named '%s' (known: %s)", name ? name : "(null)", known);
    return NULL;
}

int ur_cell_count(void) { return n_registered; }

const ur_cell_def *ur_cell_at(int i) { return i >= 0 && i < n_registered ? registry[i] : NULL; }
