/* Values, boundaries and errors of the pointwise and normalising ops
 * (autograd/ops_pointwise.c, autograd/ops_norm.c); their gradient checks are cases
 * of the op table (test_f64_ops). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "unroll.h"

static ur_tape *T;
static ur_tensor *keep[8];
static int n_keep;

static ur_node *var(int ndim, const int *dims, const ur_real *v) {
    ur_tensor *tv = ur_tensor_new(ndim, dims);
    cr_assert(tv);
    memcpy(tv->data, v, tv->size * sizeof(ur_real));
    keep[n_keep++] = tv;
    return ur_variable(T, tv);
}

static void setup(void) {
    T = ur_tape_new();
    n_keep = 0;
}
static void teardown(void) {
    ur_tape_free(T);
    for (int i = 0; i < n_keep; i++) ur_tensor_free(keep[i]);
}

static void backward_sum(ur_node *y) {
    cr_assert(y, "%s", ur_tape_errmsg(T));
    cr_assert_eq(ur_backward(T, ur_sum(T, y)), UR_OK, "%s", ur_tape_errmsg(T));
}

TestSuite(ops_more, .init = setup, .fini = teardown);

Test(ops_more, abs_has_gradient_zero_at_zero) {
    ur_real v[3] = {-2, 0, 3};
    ur_node *x = var(1, (int[]){3}, v);
    ur_node *y = ur_abs(T, x);
    backward_sum(y);
    ur_real want_y[3] = {2, 0, 3}, want_g[3] = {-1, 0, 1};
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(ur_node_data(y)[i], want_y[i]);
        cr_expect_eq(ur_node_grad(x)[i], want_g[i], "element %d", i);
    }
}

Test(ops_more, clamp_passes_the_gradient_strictly_inside_only) {
    ur_real v[5] = {-3, -1, 0.25, 2, 5};
    ur_node *x = var(1, (int[]){5}, v);
    ur_node *y = ur_clamp(T, x, -1, 2);
    backward_sum(y);
    ur_real want_y[5] = {-1, -1, 0.25, 2, 2}, want_g[5] = {0, 0, 1, 0, 0};
    for (int i = 0; i < 5; i++) {
        cr_expect_eq(ur_node_data(y)[i], want_y[i], "element %d", i);
        cr_expect_eq(ur_node_grad(x)[i], want_g[i], "element %d", i);
    }
}

Test(ops_more, clamp_refuses_lo_above_hi) {
    ur_node *x = var(1, (int[]){1}, (ur_real[]){0});
    cr_expect_null(ur_clamp(T, x, 1, -1));
    cr_expect_eq(ur_tape_error(T), UR_ERR_ARG);
    cr_expect(strstr(ur_tape_errmsg(T), "clamp") && strstr(ur_tape_errmsg(T), "lo <= hi"), "%s", ur_tape_errmsg(T));
}

Test(ops_more, maximum_and_minimum_give_a_tie_to_a) {
    ur_real va[3] = {1, 2, 3}, vb[3] = {3, 2, 1};
    ur_node *a = var(1, (int[]){3}, va), *b = var(1, (int[]){3}, vb);
    ur_node *mx = ur_maximum(T, a, b), *mn = ur_minimum(T, a, b);
    backward_sum(ur_add(T, mx, ur_scale(T, mn, 10)));
    ur_real want_mx[3] = {3, 2, 3}, want_mn[3] = {1, 2, 1};
    ur_real want_ga[3] = {10, 11, 1}, want_gb[3] = {1, 0, 10};
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(ur_node_data(mx)[i], want_mx[i]);
        cr_expect_eq(ur_node_data(mn)[i], want_mn[i]);
        cr_expect_eq(ur_node_grad(a)[i], want_ga[i], "a[%d]", i);
        cr_expect_eq(ur_node_grad(b)[i], want_gb[i], "b[%d]", i);
    }
}

Test(ops_more, maximum_of_a_node_with_itself_has_gradient_one) {
    ur_node *a = var(1, (int[]){2}, (ur_real[]){-1, 4});
    backward_sum(ur_maximum(T, a, a));
    cr_expect_eq(ur_node_grad(a)[0], 1);
    cr_expect_eq(ur_node_grad(a)[1], 1);
}

Test(ops_more, where_broadcasts_and_routes_the_gradient) {
    /* mask (2, 1) picks row 0 from a (2, 3) and row 1 from the bias b (3) */
    ur_node *m = ur_input_data(T, 2, (int[]){2, 1}, (ur_real[]){1, 0});
    ur_node *a = var(2, (int[]){2, 3}, (ur_real[]){1, 2, 3, 4, 5, 6});
    ur_node *b = var(1, (int[]){3}, (ur_real[]){-1, -2, -3});
    ur_node *y = ur_where(T, m, a, b);
    backward_sum(y);
    ur_real want[6] = {1, 2, 3, -1, -2, -3}, want_ga[6] = {1, 1, 1, 0, 0, 0};
    for (int i = 0; i < 6; i++) {
        cr_expect_eq(ur_node_data(y)[i], want[i]);
        cr_expect_eq(ur_node_grad(a)[i], want_ga[i]);
    }
    for (int i = 0; i < 3; i++) cr_expect_eq(ur_node_grad(b)[i], 1);
}

Test(ops_more, where_refuses_a_mask_that_is_not_0_1) {
    ur_node *m = ur_input_data(T, 1, (int[]){2}, (ur_real[]){1, 0.5});
    ur_node *a = var(1, (int[]){2}, (ur_real[]){1, 2});
    cr_expect_null(ur_where(T, m, a, a));
    cr_expect_eq(ur_tape_error(T), UR_ERR_ARG);
    cr_expect(strstr(ur_tape_errmsg(T), "where") && strstr(ur_tape_errmsg(T), "0 or 1"), "%s", ur_tape_errmsg(T));
}

Test(ops_more, where_refuses_a_mask_with_a_gradient) {
    ur_node *a = var(1, (int[]){2}, (ur_real[]){1, 0});
    cr_expect_null(ur_where(T, a, a, a));
    cr_expect(strstr(ur_tape_errmsg(T), "constant"), "%s", ur_tape_errmsg(T));
}

Test(ops_more, softplus_and_log_sigmoid_are_stable) {
    ur_real v[4] = {-800, -1, 30, 800};
    ur_node *x = var(1, (int[]){4}, v);
    ur_node *sp = ur_softplus(T, x), *ls = ur_log_sigmoid(T, x);
    cr_assert(sp && ls, "%s", ur_tape_errmsg(T));
    for (int i = 0; i < 4; i++) {
        double want = v[i] > 0 ? v[i] + log1p(exp(-v[i])) : log1p(exp(v[i]));
        cr_expect(fabs(ur_node_data(sp)[i] - want) <= 1e-12 * fmax(1, fabs(want)), "softplus(%g) = %g", v[i],
                  ur_node_data(sp)[i]);
        cr_expect(fabs(ur_node_data(ls)[i] - (v[i] - want)) <= 1e-12 * fmax(1, fabs(want)), "log_sigmoid(%g) = %g",
                  v[i], ur_node_data(ls)[i]);
    }
}

Test(ops_more, sqrt_and_pow_check_their_domain) {
    ur_node *x = var(1, (int[]){2}, (ur_real[]){4, -2});
    ur_node *p = ur_pow(T, x, 3); /* an integer exponent takes negatives */
    cr_assert(p);
    cr_expect_eq(ur_node_data(p)[0], 64);
    cr_expect_eq(ur_node_data(p)[1], -8);
    cr_expect_null(ur_pow(T, x, 0.5));
    cr_expect_eq(ur_tape_error(T), UR_ERR_NUMERIC);
    cr_expect(strstr(ur_tape_errmsg(T), "pow") && strstr(ur_tape_errmsg(T), "element 1"), "%s", ur_tape_errmsg(T));
    ur_tape_reset(T);
    x = var(1, (int[]){2}, (ur_real[]){4, 0});
    cr_expect_null(ur_sqrt(T, x));
    cr_expect(strstr(ur_tape_errmsg(T), "sqrt"), "%s", ur_tape_errmsg(T));
}

Test(ops_more, leaky_relu_uses_its_slope) {
    ur_node *x = var(1, (int[]){3}, (ur_real[]){-2, 0, 3});
    ur_node *y = ur_leaky_relu(T, x, 0.1);
    backward_sum(y);
    cr_expect(fabs(ur_node_data(y)[0] + 0.2) < 1e-15);
    cr_expect_eq(ur_node_data(y)[2], 3);
    cr_expect(fabs(ur_node_grad(x)[0] - 0.1) < 1e-15);
    cr_expect(fabs(ur_node_grad(x)[1] - 0.1) < 1e-15, "at 0 the slope: %g", ur_node_grad(x)[1]);
    cr_expect_eq(ur_node_grad(x)[2], 1);
}

Test(ops_more, logsumexp_is_stable_and_keeps_dims) {
    ur_node *x = var(2, (int[]){2, 3}, (ur_real[]){1000, 1000, 1000, -1, 0, 1});
    ur_node *y = ur_logsumexp(T, x, 1, 1);
    cr_assert(y, "%s", ur_tape_errmsg(T));
    cr_expect_eq(ur_node_ndim(y), 2);
    cr_expect_eq(ur_node_dim(y, 0), 2);
    cr_expect_eq(ur_node_dim(y, 1), 1);
    cr_expect(fabs(ur_node_data(y)[0] - (1000 + log(3.0))) < 1e-12, "%.17g", ur_node_data(y)[0]);
    cr_expect(fabs(ur_node_data(y)[1] - log(exp(-1.0) + 1 + exp(1.0))) < 1e-12);
    ur_node *z = ur_logsumexp(T, x, 0, 0);
    cr_assert(z);
    cr_expect_eq(ur_node_ndim(z), 1);
    cr_expect_eq(ur_node_dim(z, 0), 3);
    cr_expect_null(ur_logsumexp(T, x, 2, 0));
    cr_expect(strstr(ur_tape_errmsg(T), "logsumexp") && strstr(ur_tape_errmsg(T), "axis 2"), "%s",
              ur_tape_errmsg(T));
}

Test(ops_more, masked_softmax_zeroes_masked_entries_and_rows) {
    ur_node *x = var(2, (int[]){3, 3}, (ur_real[]){1, 2, 3, 4, 5, 6, 7, 8, 9});
    ur_node *m = ur_input_data(T, 2, (int[]){3, 3}, (ur_real[]){1, 0, 1, 0, 0, 0, 0, 1, 0});
    ur_node *y = ur_masked_softmax(T, x, m);
    cr_assert(y, "%s", ur_tape_errmsg(T));
    ur_node *w = ur_input_data(T, 2, (int[]){3, 3}, (ur_real[]){0.3, -1, 2, 1, 1, 1, 5, -2, 7});
    cr_assert_eq(ur_backward(T, ur_sum(T, ur_mul(T, y, w))), UR_OK);
    const ur_real *p = ur_node_data(y), *g = ur_node_grad(x);
    double e = exp(2.0), p0 = 1 / (1 + e), p2 = e / (1 + e); /* softmax of (1, 3) */
    cr_expect(fabs(p[0] - p0) < 1e-15 && fabs(p[2] - p2) < 1e-15, "%g %g", p[0], p[2]);
    cr_expect_eq(p[1], 0);
    for (int j = 3; j < 6; j++) cr_expect_eq(p[j], 0, "a row masked entirely is 0");
    cr_expect_eq(p[6], 0);
    cr_expect_eq(p[7], 1);
    cr_expect_eq(p[8], 0);
    /* gradient: 0 where masked, y (w - sum w y) where kept */
    double s = 0.3 * p0 + 2 * p2;
    cr_expect(fabs(g[0] - p0 * (0.3 - s)) < 1e-15);
    cr_expect(fabs(g[2] - p2 * (2 - s)) < 1e-15);
    for (int j = 0; j < 9; j++)
        if (j != 0 && j != 2) cr_expect_eq(g[j], 0, "gradient of element %d", j);
}

Test(ops_more, layer_norm_matches_the_formula) {
    ur_real v[4] = {1, 2, 4, 9};
    ur_node *x = var(2, (int[]){1, 4}, v);
    ur_node *g = var(1, (int[]){4}, (ur_real[]){1, 2, 0.5, -1});
    ur_node *b = var(1, (int[]){4}, (ur_real[]){0, 1, 0, 3});
    ur_node *y = ur_layer_norm(T, x, g, b, 1e-5);
    cr_assert(y, "%s", ur_tape_errmsg(T));
    double mu = 4, var = (9 + 4 + 0 + 25) / 4.0, r = 1 / sqrt(var + 1e-5);
    ur_real gv[4] = {1, 2, 0.5, -1}, bv[4] = {0, 1, 0, 3};
    for (int j = 0; j < 4; j++)
        cr_expect(fabs(ur_node_data(y)[j] - (gv[j] * (v[j] - mu) * r + bv[j])) < 1e-14, "y[%d] = %g", j,
                  ur_node_data(y)[j]);
    /* the normalised row of a plain layer norm has mean 0 and (biased) variance ~1 */
    ur_node *z = ur_layer_norm(T, x, NULL, NULL, 1e-5);
    double m = 0, q = 0;
    for (int j = 0; j < 4; j++) m += ur_node_data(z)[j] / 4;
    for (int j = 0; j < 4; j++) q += ur_node_data(z)[j] * ur_node_data(z)[j] / 4;
    cr_expect(fabs(m) < 1e-15 && fabs(q - var / (var + 1e-5)) < 1e-12, "mean %g var %g", m, q);
}

Test(ops_more, layer_norm_refuses_bad_shapes_and_eps) {
    ur_node *x = var(2, (int[]){2, 3}, (ur_real[]){1, 2, 3, 4, 5, 6});
    ur_node *g = var(1, (int[]){2}, (ur_real[]){1, 1});
    cr_expect_null(ur_layer_norm(T, x, g, NULL, 1e-5));
    cr_expect_eq(ur_tape_error(T), UR_ERR_SHAPE);
    cr_expect(strstr(ur_tape_errmsg(T), "layer_norm"), "%s", ur_tape_errmsg(T));
    ur_tape_reset(T);
    x = var(2, (int[]){2, 3}, (ur_real[]){1, 2, 3, 4, 5, 6});
    cr_expect_null(ur_layer_norm(T, x, NULL, NULL, 0));
    cr_expect_eq(ur_tape_error(T), UR_ERR_ARG);
}
