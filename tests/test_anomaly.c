/* test_anomaly.c - anomaly mode names the op, the node id and the shape where a NaN
 * injected mid-training first appears (docs/reliability.md). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>

#include "support.h"
#include "ur_init.h"
#include "ur_ops.h"
#include "ur_optim.h"
#include "ur_tape.h"

Test(anomaly, anomaly_names_op_node_and_shape_of_an_injected_nan) {
    ur_paramset *ps = ur_paramset_new();
    ur_param *W = ur_test_param(ps, "W", 2, 4, 8), *b = ur_test_param(ps, "b", 1, 8, 1);
    ur_rng r;
    ur_rng_seed(&r, 8);
    ur_init_uniform(&W->value, &r, 0.5);
    ur_optim_config cfg = ur_optim_defaults(UR_OPTIM_SGD, 0.1);
    ur_optim *opt = ur_optim_new(ps, &cfg);
    ur_tape *t = ur_tape_new();
    ur_tape_set_anomaly(t, 1);
    ur_real xv[12], yv[24];
    for (int i = 0; i < 12; i++) xv[i] = (ur_real)sin(i);
    for (int i = 0; i < 24; i++) yv[i] = (ur_real)cos(i);
    int xd[2] = {3, 4}, yd[2] = {3, 8};
    for (int step = 0; step < 6; step++) {
        ur_tape_reset(t);
        ur_optim_zero_grad(opt);
        if (step == 3) W->value.data[5] = NAN; /* corrupted mid-training */
        ur_node *x = ur_input_data(t, 2, xd, xv), *y = ur_input_data(t, 2, yd, yv);
        ur_node *Wn = ur_param_node(t, W), *bn = ur_param_node(t, b);
        int linear_id = ur_tape_size(t);
        ur_node *loss = ur_mse(t, ur_tanh(t, ur_linear(t, x, Wn, bn)), y);
        if (step < 3) {
            cr_assert_not_null(loss, "step %d: %s", step, ur_tape_errmsg(t));
            cr_assert_eq(ur_backward(t, loss), UR_OK);
            cr_assert_eq(ur_optim_step(opt), UR_OK);
            continue;
        }
        cr_expect_null(loss, "the NaN is caught where it first appears");
        cr_expect_eq(ur_tape_error(t), UR_ERR_NUMERIC);
        char want[128];
        snprintf(want, sizeof want, "anomaly: op 'linear' (node %d, shape (3, 8)) produced NaN or Inf",
                 linear_id);
        cr_expect_str_eq(ur_tape_errmsg(t), want);
        cr_expect_eq(ur_backward(t, loss), UR_ERR_NUMERIC, "backward refuses the errored tape");
        break;
    }
    ur_tape_free(t);
    ur_optim_free(opt);
    ur_paramset_free(ps);
}
