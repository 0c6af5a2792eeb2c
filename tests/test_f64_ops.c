/* Every op kind (autograd/ur_ops.def) has a name, a backward rule and a
 * gradient-check case, and every case passes in double precision (which runs the
 * kind's backward rule). A case registered under the wrong kind fails. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "../autograd/tape_internal.h"
#include "unroll.h"

Test(ops, every_op_kind_has_a_case) {
    int covered[UR_OP_COUNT] = {0};
    for (int i = 0; i < ur_op_case_count(); i++) covered[ur_op_case_op(i)] = 1;
    for (int op = 1; op < UR_OP_COUNT; op++) {
        cr_expect(covered[op], "op '%s' has no gradient-check case", ur_op_name((ur_op)op));
        cr_expect(ur__op_table[op].backward != NULL, "op '%s' has no backward rule", ur_op_name((ur_op)op));
        cr_expect(ur__op_table[op].cases->n > 0, "op '%s' has an empty UR_CASES", ur_op_name((ur_op)op));
    }
}

Test(ops, every_op_kind_has_its_own_name) {
    cr_expect_str_eq(ur_op_name(UR_OP_LEAF), "leaf");
    for (int op = 0; op < UR_OP_COUNT; op++) {
        const char *name = ur_op_name((ur_op)op);
        cr_expect(name && name[0] && strcmp(name, "?") != 0, "op kind %d has no name", op);
        for (int other = 0; other < op; other++)
            cr_expect_str_neq(name, ur_op_name((ur_op)other), "op kinds %d and %d share a name", other, op);
    }
    cr_expect_str_eq(ur_op_name(UR_OP_COUNT), "?");
}

Test(ops, every_case_passes_gradcheck) {
    cr_assert(sizeof(ur_real) == sizeof(double), "gradient checks run in the double build");
    for (int i = 0; i < ur_op_case_count(); i++) {
        ur_gradcheck_result r;
        ur_status st = ur_op_case_run(i, 1e-6, &r);
        cr_expect_eq(st, UR_OK, "case %s: %s", ur_op_case_name(i), ur_last_error());
        cr_expect(r.max_rel_err < 1e-6, "case %s: relative error %.3e at %s", ur_op_case_name(i), r.max_rel_err,
                  r.worst);
        cr_expect(r.n_checked > 0, "case %s checked nothing", ur_op_case_name(i));
    }
}

/* Cases are told apart by name, and their random inputs by seed. */
Test(ops, every_case_has_its_own_name_and_seed) {
    for (int k = 0; k < UR_OP_COUNT; k++)
        for (int i = 0; i < ur__op_table[k].cases->n; i++) {
            const ur_op_case *c = &ur__op_table[k].cases->cases[i];
            for (int k2 = 0; k2 <= k; k2++)
                for (int i2 = 0; i2 < (k2 == k ? i : ur__op_table[k2].cases->n); i2++) {
                    const ur_op_case *c2 = &ur__op_table[k2].cases->cases[i2];
                    cr_expect_str_neq(c->name, c2->name, "two cases are named %s", c->name);
                    cr_expect_neq(c->seed, c2->seed, "cases %s and %s share seed %llu", c->name, c2->name,
                                  (unsigned long long)c->seed);
                }
        }
}

static ur_node *build_square(ur_tape *t, ur_node **p) { return ur_square(t, p[0]); }

/* A case runs only under the kind it records: square's case under "add" is refused. */
Test(ops, a_case_under_the_wrong_kind_fails) {
    ur_op_case c = {"square", 7, 1, {2}, {{3, 4}}, 0, build_square};
    ur_gradcheck_result r;
    cr_expect_eq(ur__op_case_check(UR_OP_SQUARE, &c, 1e-6, &r), UR_OK, "%s", ur_last_error());
    cr_expect(r.max_rel_err < 1e-6 && r.n_checked == 12, "rel err %g over %zu", r.max_rel_err, r.n_checked);
    cr_expect_eq(ur__op_case_check(UR_OP_ADD, &c, 1e-6, &r), UR_ERR_ARG);
    cr_expect(strstr(ur_last_error(), "'square' is registered under op kind 'add' but records no 'add' node"),
              "%s", ur_last_error());
}

/* A wrong backward must be caught: perturbing one parameter's gradient by hand makes
 * the comparison fail, so the check can fail. */
static ur_param *g_p;
static ur_node *bad_loss(ur_tape *t, void *ctx) {
    (void)ctx;
    ur_node *x = ur_param_node(t, g_p);
    /* sum(x^2) built from mul: gradient 2x. Scale the value without the gradient by
     * detaching one factor: the tape then gives x, not 2x. */
    return ur_sum(t, ur_mul(t, x, ur_detach(t, x)));
}

Test(ops, gradcheck_detects_a_wrong_gradient) {
    ur_paramset *ps = ur_paramset_new();
    int d[1] = {3};
    g_p = ur_paramset_add(ps, "x", 1, d);
    g_p->value.data[0] = 1, g_p->value.data[1] = -2, g_p->value.data[2] = 0.5;
    ur_tape *t = ur_tape_new();
    ur_gradcheck_result r;
    cr_assert_eq(ur_gradcheck(t, bad_loss, NULL, &g_p, 1, 1e-6, &r), UR_OK);
    /* numeric 2x vs analytic x: relative error |x| / max(1, 2|x|) = 0.5 for |x| >= 1 */
    cr_expect(fabs(r.max_rel_err - 0.5) < 1e-6, "rel err %g", r.max_rel_err);
    ur_tape_free(t);
    ur_paramset_free(ps);
}
