/* A 2-layer MLP learns XOR with the tape and plain SGD: the error reaches zero. */
#include <criterion/criterion.h>
#include <math.h>

#include "unroll.h"

Test(mlp, learns_xor) {
    ur_paramset *ps = ur_paramset_new();
    int d1[2] = {2, 8}, b1[1] = {8}, d2[2] = {8, 2}, b2[1] = {2};
    ur_param *W1 = ur_paramset_add(ps, "W1", 2, d1), *B1 = ur_paramset_add(ps, "b1", 1, b1);
    ur_param *W2 = ur_paramset_add(ps, "W2", 2, d2), *B2 = ur_paramset_add(ps, "b2", 1, b2);
    ur_rng rng;
    ur_rng_seed(&rng, 42);
    ur_tensor_uniform(&W1->value, &rng, -1, 1);
    ur_tensor_uniform(&W2->value, &rng, -1, 1);
    const ur_real x[8] = {0, 0, 0, 1, 1, 0, 1, 1};
    const int y[4] = {0, 1, 1, 0};
    int dx[2] = {4, 2};
    ur_tape *t = ur_tape_new();
    double loss = 0;
    for (int step = 0; step < 2000; step++) {
        ur_tape_reset(t);
        ur_node *h = ur_tanh(t, ur_linear(t, ur_input_data(t, 2, dx, x), ur_param_node(t, W1), ur_param_node(t, B1)));
        ur_node *l = ur_cross_entropy(t, ur_linear(t, h, ur_param_node(t, W2), ur_param_node(t, B2)), y, NULL);
        ur_paramset_zero_grad(ps);
        cr_assert_eq(ur_backward(t, l), UR_OK, "%s", ur_tape_errmsg(t));
        loss = ur_node_item(l);
        for (int i = 0; i < ur_paramset_count(ps); i++) {
            ur_param *p = ur_paramset_get(ps, i);
            for (size_t k = 0; k < p->value.size; k++) p->value.data[k] -= 0.5 * p->grad.data[k];
        }
    }
    /* predictions */
    ur_tape_reset(t);
    ur_node *h = ur_tanh(t, ur_linear(t, ur_input_data(t, 2, dx, x), ur_param_node(t, W1), ur_param_node(t, B1)));
    ur_node *o = ur_linear(t, h, ur_param_node(t, W2), ur_param_node(t, B2));
    const ur_real *v = ur_node_cdata(o);
    int errors = 0;
    for (int i = 0; i < 4; i++) errors += (v[2 * i + 1] > v[2 * i]) != y[i];
    cr_expect_eq(errors, 0);
    cr_expect(loss < 0.05, "final loss %g", loss);
    ur_tape_free(t);
    ur_paramset_free(ps);
}
