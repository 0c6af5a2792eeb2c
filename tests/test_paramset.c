/* Parameter sets: adds with sticky errors (chain the adds, check once), and a whole
 * paramset's gradient check in one call. */
#include <criterion/criterion.h>
#include <string.h>

#include "support.h"
#include "unroll.h"

static const int D23[2] = {2, 3};

Test(paramset_errors, a_new_set_has_no_error) {
    ur_paramset *ps = ur_paramset_new();
    cr_expect_eq(ur_paramset_error(ps), UR_OK);
    cr_expect_str_eq(ur_paramset_errmsg(ps), "");
    cr_expect_not_null(ur_paramset_add(ps, "W", 2, D23));
    cr_expect_eq(ur_paramset_error(ps), UR_OK);
    ur_paramset_free(ps);
    cr_expect_eq(ur_paramset_error(NULL), UR_ERR_ARG);
    cr_expect_str_eq(ur_paramset_errmsg(NULL), "parameter set is NULL");
}

/* The first failure is kept; later adds do nothing and return NULL. */
Test(paramset_errors, first_error_is_sticky) {
    ur_paramset *ps = ur_paramset_new();
    ur_param *a = ur_paramset_add(ps, "W", 2, D23);
    ur_param *b = ur_paramset_add(ps, "W", 2, D23);             /* duplicate: the first error */
    ur_param *c = ur_paramset_add(ps, "b", 1, (int[]){0});      /* bad shape: not recorded */
    ur_param *d = ur_paramset_add(ps, "U", 2, D23);             /* fine, but the set has failed */
    cr_expect_not_null(a);
    cr_expect_null(b);
    cr_expect_null(c);
    cr_expect_null(d);
    cr_expect_eq(ur_paramset_count(ps), 1);
    cr_expect_null(ur_paramset_find(ps, "U"));
    cr_expect_eq(ur_paramset_error(ps), UR_ERR_ARG);
    cr_expect_str_eq(ur_paramset_errmsg(ps), "ur_paramset_add: a parameter named 'W' exists already");
    cr_expect_str_eq(ur_last_error(), "ur_paramset_add: a parameter named 'W' exists already");
    ur_paramset_free(ps);
}

Test(paramset_errors, bad_shape_and_name_messages) {
    ur_paramset *ps = ur_paramset_new();
    cr_expect_null(ur_paramset_add(ps, "b", 1, (int[]){0}));
    cr_expect_eq(ur_paramset_error(ps), UR_ERR_SHAPE);
    cr_expect_str_eq(ur_paramset_errmsg(ps), "ur_paramset_add: dimension 0 is 0 (must be >= 1) (parameter 'b')");
    ur_paramset_free(ps);
    ps = ur_paramset_new();
    cr_expect_null(ur_paramset_add(ps, "", 2, D23));
    cr_expect_str_eq(ur_paramset_errmsg(ps), "ur_paramset_add: name '' must have 1..95 bytes (it has 0)");
    ur_paramset_free(ps);
    ps = ur_paramset_new();
    cr_expect_null(ur_paramset_add(ps, NULL, 2, D23));
    cr_expect_str_eq(ur_paramset_errmsg(ps), "ur_paramset_add: name is NULL");
    ur_paramset_free(ps);
}

Test(paramset_errors, out_of_memory_is_sticky) {
    ur_paramset *ps = ur_paramset_new();
    ur_test_fail_alloc_begin(1, 0); /* the first allocation of the add fails */
    ur_param *p = ur_paramset_add(ps, "W", 2, D23);
    ur_test_alloc_count n = ur_test_fail_alloc_end();
    cr_expect_null(p);
    cr_expect_eq(n.live, 0, "nothing left behind");
    cr_expect_eq(ur_paramset_error(ps), UR_ERR_NOMEM);
    cr_expect(strstr(ur_paramset_errmsg(ps), "out of memory") != NULL, "%s", ur_paramset_errmsg(ps));
    cr_expect_null(ur_paramset_add(ps, "b", 1, (int[]){3}), "memory is back, the set stays failed");
    cr_expect_eq(ur_paramset_count(ps), 0);
    ur_paramset_free(ps);
}

/* A model built from an errored set fails where it uses the missing parameter, on the tape. */
Test(paramset_errors, null_parameter_fails_on_the_tape) {
    ur_paramset *ps = ur_paramset_new();
    ur_param *W = ur_paramset_add(ps, "W", 2, D23);
    ur_param *U = ur_paramset_add(ps, "W", 2, D23);
    cr_assert_not_null(W);
    ur_tape *t = ur_tape_new();
    ur_node *y = ur_add(t, ur_param_node(t, W), ur_param_node(t, U));
    cr_expect_null(y);
    cr_expect_eq(ur_tape_error(t), UR_ERR_ARG);
    cr_expect_str_eq(ur_tape_errmsg(t), "param: parameter is NULL");
    ur_tape_free(t);
    ur_paramset_free(ps);
}

/* The nn/ constructors add through the same call: a failed set makes them fail. */
Test(paramset_errors, constructors_on_a_failed_set_fail) {
    ur_paramset *ps = ur_paramset_new();
    cr_expect_null(ur_paramset_add(ps, "x", 1, (int[]){-1}));
    ur_rnn_config c = ur_rnn_defaults(UR_RNN_GRU, 3, 4);
    cr_expect_null(ur_rnn_new(ps, "rnn", &c));
    cr_expect_eq(ur_paramset_count(ps), 0);
    cr_expect(strstr(ur_paramset_errmsg(ps), "(parameter 'x')") != NULL, "%s", ur_paramset_errmsg(ps));
    ur_paramset_free(ps);
}
