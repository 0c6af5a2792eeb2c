/* Handles from a freed tape never pass for nodes of a new tape, even when the new
 * tape gets the freed one's address (a parameter caches its node per recording). */
#include <criterion/criterion.h>

#include "unroll.h"

Test(tape_epochs, a_new_tape_at_a_freed_address_gets_new_parameter_nodes) {
    ur_paramset *ps = ur_paramset_new();
    int d[1] = {3};
    ur_param *p = ur_paramset_add(ps, "p", 1, d);
    for (int round = 0; round < 50; round++) {
        ur_tape *t = ur_tape_new();
        cr_assert_not_null(t);
        ur_node *x = ur_param_node(t, p);
        cr_assert_not_null(x);
        /* the node must be one of this tape: ops accept it and backward reaches p */
        ur_node *loss = ur_sum(t, ur_mul(t, x, x));
        cr_assert_not_null(loss, "round %d: %s", round, ur_tape_errmsg(t));
        cr_assert_eq(ur_tape_size(t), 3, "round %d: param, mul and sum are recorded", round);
        cr_assert_eq(ur_backward(t, loss), UR_OK);
        ur_tape_free(t);
    }
    ur_paramset_free(ps);
}

Test(tape_epochs, two_tapes_never_share_a_recording_number) {
    ur_tape *a = ur_tape_new(), *b = ur_tape_new();
    ur_node *x = ur_scalar(a, 2);
    ur_tape_reset(b);
    cr_assert_null(ur_neg(b, x), "a node of tape a is refused by tape b");
    cr_assert_eq(ur_tape_error(b), UR_ERR_STATE);
    ur_tape_free(a);
    ur_tape_free(b);
}
