/* gradcheck.c - backward's gradients against central differences. */
#include "tape_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static ur_status eval(ur_tape *t, ur_loss_fn f, void *ctx, double *loss) {
    ur_tape_reset(t);
    int old = ur_tape_set_grad_enabled(t, 0);
    ur_node *y = f(t, ctx);
    ur_tape_set_grad_enabled(t, old);
    if (!y) return ur_tape_error(t) ? ur_tape_error(t) : ur_set_error(UR_ERR_ARG, "gradcheck: loss is NULL");
    *loss = ur_node_item(y);
    return UR_OK;
}

/* Element k of the `count` checked in a parameter of `size` elements: all of them,
 * or `count` evenly spaced ones from the first to the last (deterministic). */
static size_t checked_index(size_t k, size_t count, size_t size) {
    if (count == size || count < 2) return count == size ? k : 0;
    return (size_t)((double)k * (double)(size - 1) / (double)(count - 1) + 0.5);
}

/* Central difference of element i of p against backward's gradient, folded into out. */
static ur_status check_element(ur_tape *t, ur_loss_fn loss_fn, void *ctx, ur_param *p, size_t i, double eps,
                               ur_gradcheck_result *out) {
    ur_real x = p->value.data[i];
    double fp = 0, fm = 0;
    p->value.data[i] = (ur_real)(x + eps);
    ur_status st = eval(t, loss_fn, ctx, &fp);
    p->value.data[i] = (ur_real)(x - eps);
    if (st == UR_OK) st = eval(t, loss_fn, ctx, &fm);
    p->value.data[i] = x;
    if (st != UR_OK) return ur_set_error(st, "ur_gradcheck: %s", ur_tape_errmsg(t));
    double num = (fp - fm) / (2 * eps), ana = p->grad.data[i];
    double abs_err = fabs(ana - num);
    double scale = fmax(1.0, fmax(fabs(ana), fabs(num)));
    double rel = abs_err / scale;
    if (!(abs_err <= out->max_abs_err)) out->max_abs_err = abs_err;
    if (!(rel <= out->max_rel_err)) {
        out->max_rel_err = rel;
        snprintf(out->worst, sizeof out->worst, "%s[%zu]", p->name, i);
    }
    out->n_checked++;
    return UR_OK;
}

/* The check of ur_gradcheck, at most max_per_param elements of each parameter (0: all). */
static ur_status gradcheck_params(ur_tape *t, ur_loss_fn loss_fn, void *ctx, ur_param *const *params,
                                  int n_params, double eps, size_t max_per_param, ur_gradcheck_result *out) {
    if (!t || !loss_fn || !out || (n_params > 0 && !params))
        return ur_set_error(UR_ERR_ARG, "ur_gradcheck: tape, loss function, params or result is NULL");
    if (!(eps > 0)) return ur_set_error(UR_ERR_ARG, "ur_gradcheck: eps must be > 0 (got %g)", eps);
    for (int k = 0; k < n_params; k++)
        if (!params[k]) return ur_set_error(UR_ERR_ARG, "ur_gradcheck: parameter %d is NULL", k);
    memset(out, 0, sizeof *out);
    /* analytic gradients */
    for (int k = 0; k < n_params; k++) memset(params[k]->grad.data, 0, params[k]->grad.size * sizeof(ur_real));
    ur_tape_reset(t);
    ur_node *loss = loss_fn(t, ctx);
    if (!loss || ur_backward(t, loss) != UR_OK)
        return ur_set_error(ur_tape_error(t) ? ur_tape_error(t) : UR_ERR_ARG, "ur_gradcheck: %s",
                            ur_tape_errmsg(t)[0] ? ur_tape_errmsg(t) : "the loss function returned NULL");
    /* numeric gradients, one element at a time */
    for (int k = 0; k < n_params; k++) {
        ur_param *p = params[k];
        size_t size = p->value.size;
        size_t count = max_per_param && max_per_param < size ? max_per_param : size;
        for (size_t j = 0; j < count; j++) {
            ur_status st = check_element(t, loss_fn, ctx, p, checked_index(j, count, size), eps, out);
            if (st != UR_OK) return st;
        }
    }
    ur_tape_reset(t);
    return UR_OK;
}

ur_status ur_gradcheck(ur_tape *t, ur_loss_fn loss_fn, void *ctx, ur_param *const *params, int n_params,
                       double eps, ur_gradcheck_result *out) {
    return gradcheck_params(t, loss_fn, ctx, params, n_params, eps, 0, out);
}

ur_status ur_gradcheck_paramset(ur_tape *t, ur_loss_fn loss_fn, void *ctx, const ur_paramset *ps, double eps,
                                size_t max_per_param, ur_gradcheck_result *out) {
    if (!ps) return ur_set_error(UR_ERR_ARG, "ur_gradcheck_paramset: parameter set is NULL");
    if (ur_paramset_error(ps))
        return ur_set_error(ur_paramset_error(ps), "ur_gradcheck_paramset: the set has an error: %s",
                            ur_paramset_errmsg(ps));
    int n = ur_paramset_count(ps);
    ur_param **params = ur_malloc((size_t)(n ? n : 1) * sizeof *params);
    if (!params) return ur_set_error(UR_ERR_NOMEM, "ur_gradcheck_paramset: out of memory");
    for (int k = 0; k < n; k++) params[k] = ur_paramset_get(ps, k);
    ur_status st = gradcheck_params(t, loss_fn, ctx, params, n, eps, max_per_param, out);
    ur_free(params);
    return st;
}
