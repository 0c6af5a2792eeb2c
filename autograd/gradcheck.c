/* gradcheck.c - backward's gradients against central differences. */
#include "tape_internal.h"

#include <math.h>
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

ur_status ur_gradcheck(ur_tape *t, ur_loss_fn loss_fn, void *ctx, ur_param *const *params, int n_params,
                       double eps, ur_gradcheck_result *out) {
    if (!t || !loss_fn || !out || (n_params > 0 && !params))
        return ur_set_error(UR_ERR_ARG, "ur_gradcheck: tape, loss function, params or result is NULL");
    if (!(eps > 0)) return ur_set_error(UR_ERR_ARG, "ur_gradcheck: eps must be > 0 (got %g)", eps);
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
        for (size_t i = 0; i < p->value.size; i++) {
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
        }
    }
    ur_tape_reset(t);
    return UR_OK;
}
