/* test_init.c - initializers: orthogonality, Xavier bounds, identity, forget bias. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ur_init.h"

/* max |(A^T A)_ij - g^2 delta_ij| over the columns c0 .. c0+w-1 of the (rows, cols) tensor;
 * with rows_mode, over the rows instead (A A^T) restricted to those columns. */
static double ortho_error(const ur_tensor *t, int c0, int w, int rows_mode, double gain) {
    int rows = t->shape.dims[0], cols = t->shape.dims[1];
    int n = rows_mode ? rows : w;
    double worst = 0;
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            double d = 0;
            if (rows_mode)
                for (int j = 0; j < w; j++)
                    d += (double)t->data[a * cols + c0 + j] * t->data[b * cols + c0 + j];
            else
                for (int i = 0; i < rows; i++)
                    d += (double)t->data[i * cols + c0 + a] * t->data[i * cols + c0 + b];
            double want = a == b ? gain * gain : 0.0;
            if (fabs(d - want) > worst) worst = fabs(d - want);
        }
    return worst;
}

Test(init, orthogonal_square) {
    ur_rng r;
    ur_rng_seed(&r, 1);
    ur_tensor *t = ur_tensor_new_2d(32, 32);
    cr_assert_eq(ur_init_orthogonal(t, &r, 1.0, 1), UR_OK, "%s", ur_last_error());
    cr_expect_lt(ortho_error(t, 0, 32, 0, 1.0), 1e-5);
    cr_expect_lt(ortho_error(t, 0, 32, 1, 1.0), 1e-5);
    ur_tensor_free(t);
}

Test(init, orthogonal_tall_and_wide) {
    ur_rng r;
    ur_rng_seed(&r, 2);
    ur_tensor *tall = ur_tensor_new_2d(50, 20);
    cr_assert_eq(ur_init_orthogonal(tall, &r, 1.0, 1), UR_OK);
    cr_expect_lt(ortho_error(tall, 0, 20, 0, 1.0), 1e-5, "tall: W^T W = I");
    ur_tensor *wide = ur_tensor_new_2d(7, 30);
    cr_assert_eq(ur_init_orthogonal(wide, &r, 2.0, 1), UR_OK);
    cr_expect_lt(ortho_error(wide, 0, 30, 1, 2.0), 1e-5, "wide: W W^T = 4 I with gain 2");
    ur_tensor_free(tall);
    ur_tensor_free(wide);
}

Test(init, orthogonal_per_gate_block) {
    ur_rng r;
    ur_rng_seed(&r, 3);
    int H = 16;
    ur_tensor *t = ur_tensor_new_2d(H, 4 * H); /* recurrent weights of an LSTM */
    cr_assert_eq(ur_init_orthogonal(t, &r, 1.0, 4), UR_OK);
    for (int b = 0; b < 4; b++) cr_expect_lt(ortho_error(t, b * H, H, 0, 1.0), 1e-5, "block %d", b);
    /* the blocks differ from one another */
    cr_expect(t->data[0] != t->data[H] || t->data[1] != t->data[H + 1]);
    cr_expect_eq(ur_init_orthogonal(t, &r, 1.0, 3), UR_ERR_SHAPE, "64 columns do not split into 3");
    ur_tensor_free(t);
}

Test(init, orthogonal_is_deterministic) {
    ur_rng r1, r2;
    ur_rng_seed(&r1, 9);
    ur_rng_seed(&r2, 9);
    ur_tensor *a = ur_tensor_new_2d(8, 5), *b = ur_tensor_new_2d(8, 5);
    ur_init_orthogonal(a, &r1, 1.0, 1);
    ur_init_orthogonal(b, &r2, 1.0, 1);
    cr_expect_eq(memcmp(a->data, b->data, a->size * sizeof(ur_real)), 0);
    ur_tensor_free(a);
    ur_tensor_free(b);
}

Test(init, xavier_uniform_bounds) {
    ur_rng r;
    ur_rng_seed(&r, 4);
    ur_tensor *t = ur_tensor_new_2d(100, 50);
    cr_assert_eq(ur_init_xavier_uniform(t, &r, 1.0), UR_OK);
    double a = sqrt(6.0 / 150.0), lo = 1, hi = -1, mean = 0;
    for (size_t i = 0; i < t->size; i++) {
        lo = fmin(lo, t->data[i]);
        hi = fmax(hi, t->data[i]);
        mean += t->data[i];
    }
    mean /= (double)t->size;
    cr_expect(lo >= -a && hi <= a, "values in [%g, %g], bound %g", lo, hi, a);
    cr_expect(lo < -0.95 * a && hi > 0.95 * a, "the range is used: [%g, %g]", lo, hi);
    cr_expect(fabs(mean) < 0.01, "mean %g", mean);
    ur_tensor *v = ur_tensor_new_1d(10);
    cr_expect_eq(ur_init_xavier_uniform(v, &r, 1.0), UR_ERR_SHAPE);
    cr_expect(strstr(ur_last_error(), "2-d") != NULL, "%s", ur_last_error());
    ur_tensor_free(t);
    ur_tensor_free(v);
}

Test(init, normal_and_uniform_statistics) {
    ur_rng r;
    ur_rng_seed(&r, 5);
    ur_tensor *t = ur_tensor_new_1d(20000);
    cr_assert_eq(ur_init_normal(t, &r, 1.0, 0.5), UR_OK);
    double m = 0, v = 0;
    for (size_t i = 0; i < t->size; i++) m += t->data[i];
    m /= (double)t->size;
    for (size_t i = 0; i < t->size; i++) v += (t->data[i] - m) * (t->data[i] - m);
    v /= (double)t->size;
    cr_expect(fabs(m - 1.0) < 0.02 && fabs(sqrt(v) - 0.5) < 0.02, "mean %g std %g", m, sqrt(v));
    cr_assert_eq(ur_init_uniform(t, &r, 0.3), UR_OK);
    for (size_t i = 0; i < t->size; i++) cr_assert(t->data[i] >= -0.3f && t->data[i] <= 0.3f);
    cr_expect_eq(ur_init_uniform(t, NULL, 0.3), UR_ERR_ARG);
    ur_tensor_free(t);
}

Test(init, identity_and_constant) {
    ur_tensor *t = ur_tensor_new_2d(3, 4);
    cr_assert_eq(ur_init_identity(t, 0.5), UR_OK);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) cr_expect_eq(UR_AT2(t, i, j), i == j ? 0.5f : 0.0f);
    cr_assert_eq(ur_init_constant(t, 2.0), UR_OK);
    for (size_t i = 0; i < t->size; i++) cr_expect_eq(t->data[i], 2.0f);
    ur_tensor_free(t);
}

Test(init, forget_bias) {
    ur_paramset *ps = ur_paramset_new();
    int H = 3, n = 4 * H, bad = 10;
    ur_param *b = ur_paramset_add(ps, "lstm.b", 1, &n);
    ur_param *c = ur_paramset_add(ps, "other", 1, &bad);
    for (int i = 0; i < n; i++) b->value.data[i] = (ur_real)(0.1 * i);
    cr_assert_eq(ur_init_forget_bias(b, H, 1.0), UR_OK);
    for (int i = 0; i < n; i++) {
        ur_real want = (i >= H && i < 2 * H) ? 1.0f : (ur_real)(0.1 * i);
        cr_expect_eq(b->value.data[i], want, "element %d", i);
    }
    cr_expect_eq(ur_init_forget_bias(c, H, 1.0), UR_ERR_SHAPE);
    cr_expect(strstr(ur_last_error(), "'other'") != NULL, "%s", ur_last_error());
    ur_paramset_free(ps);
}
