/* test_optim.c - optimizer updates against hand-computed numbers, clipping,
 * schedules, NaN gradients and the no-allocation-after-the-first-step promise. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ur_optim.h"

/* Every example: one parameter w = [1, -2], gradient g1 = [0.5, -1] on the first
 * step and g2 = [0.1, 0.2] on the second, learning rate 0.1. */
static const double W0[2] = {1.0, -2.0}, G1[2] = {0.5, -1.0}, G2[2] = {0.1, 0.2};

static ur_paramset *ps;
static ur_param *w;

static void setup(void) {
    ps = ur_paramset_new();
    int two = 2;
    w = ur_paramset_add(ps, "w", 1, &two);
    cr_assert_not_null(w, "%s", ur_last_error());
    for (int i = 0; i < 2; i++) w->value.data[i] = (ur_real)W0[i];
}

static void teardown(void) { ur_paramset_free(ps); }

static void set_grad(const double *g) {
    for (int i = 0; i < 2; i++) w->grad.data[i] = (ur_real)g[i];
}

static void expect_w(double a, double b, const char *what) {
    cr_expect(fabs(w->value.data[0] - a) < 1e-6 && fabs(w->value.data[1] - b) < 1e-6,
              "%s: w = [%.9f, %.9f], expected [%.9f, %.9f]", what, (double)w->value.data[0],
              (double)w->value.data[1], a, b);
}

/* Two steps with g1 then g2; checks w after each. */
static void run_two(ur_optim_config cfg, double a1, double b1, double a2, double b2) {
    ur_optim *o = ur_optim_new(ps, &cfg);
    cr_assert_not_null(o, "%s", ur_last_error());
    set_grad(G1);
    cr_assert_eq(ur_optim_step(o), UR_OK, "%s", ur_last_error());
    expect_w(a1, b1, "step 1");
    set_grad(G2);
    cr_assert_eq(ur_optim_step(o), UR_OK, "%s", ur_last_error());
    expect_w(a2, b2, "step 2");
    cr_expect_eq(ur_optim_step_count(o), 2);
    ur_optim_free(o);
}

TestSuite(optim, .init = setup, .fini = teardown);

Test(optim, sgd_plain) {
    /* w - 0.1 g1 = [0.95, -1.9]; - 0.1 g2 = [0.94, -1.92] */
    run_two(ur_optim_defaults(UR_OPTIM_SGD, 0.1), 0.95, -1.9, 0.94, -1.92);
}

Test(optim, sgd_momentum) {
    /* b1 = g1 = [0.5, -1];              w = [1, -2] - 0.1 b1 = [0.95, -1.9]
     * b2 = 0.9 b1 + g2 = [0.55, -0.7];  w = [0.95, -1.9] - 0.1 b2 = [0.895, -1.83] */
    ur_optim_config c = ur_optim_defaults(UR_OPTIM_SGD, 0.1);
    c.momentum = 0.9;
    run_two(c, 0.95, -1.9, 0.895, -1.83);
}

Test(optim, sgd_nesterov) {
    /* step 1: b = g1, update g1 + 0.9 b = 1.9 g1 = [0.95, -1.9]; w = [0.905, -1.81]
     * step 2: b = [0.55, -0.7], update g2 + 0.9 b = [0.595, -0.43]; w = [0.8455, -1.767] */
    ur_optim_config c = ur_optim_defaults(UR_OPTIM_SGD, 0.1);
    c.momentum = 0.9;
    c.nesterov = 1;
    run_two(c, 0.905, -1.81, 0.8455, -1.767);
}

Test(optim, sgd_l2_weight_decay) {
    /* g1 + 0.1 w = [0.6, -1.2]: w = [0.94, -1.88]
     * g2 + 0.1 w = [0.194, 0.012]: w = [0.9206, -1.8812] */
    ur_optim_config c = ur_optim_defaults(UR_OPTIM_SGD, 0.1);
    c.weight_decay = 0.1;
    run_two(c, 0.94, -1.88, 0.9206, -1.8812);
}

Test(optim, adagrad) {
    /* step 1: s = g1^2, w -= 0.1 g1 / |g1| = [0.9, -1.9]
     * step 2: s = [0.26, 1.04], w -= 0.1 g2 / sqrt(s)
     *         = [0.9 - 0.01/0.5099020, -1.9 - 0.02/1.0198039] = [0.8803884, -1.9196116] */
    run_two(ur_optim_defaults(UR_OPTIM_ADAGRAD, 0.1), 0.9, -1.9, 0.8803883865, -1.9196116135);
}

Test(optim, rmsprop) {
    /* step 1: s = 0.01 g1^2 = [0.0025, 0.01], sqrt(s) = 0.1 |g1|, so
     *         w -= 0.1 g1 / (0.1 |g1|) = [1, -1]: w = [0, -1] (eps = 1e-8 leaves 2e-7)
     * step 2: s = 0.99 s + 0.01 g2^2 = [0.002575, 0.0103], w -= 0.1 g2 / sqrt(s)
     *         = [0 - 0.01/0.0507445, -1 - 0.02/0.1014889] = [-0.1970656, -1.1970659] */
    run_two(ur_optim_defaults(UR_OPTIM_RMSPROP, 0.1), 2.0e-7, -1.0000001, -0.1970656168, -1.1970659362);
}

Test(optim, adam_two_steps) {
    /* beta1 = 0.9, beta2 = 0.999, eps = 1e-8.
     * step 1: m = 0.1 g1 = [0.05, -0.1], v = 0.001 g1^2 = [0.00025, 0.001];
     *         mhat = m / 0.1 = g1, vhat = v / 0.001 = g1^2, so w -= 0.1 sign(g1): [0.9, -1.9]
     * step 2: m = 0.9 m + 0.1 g2 = [0.055, -0.07], v = 0.999 v + 0.001 g2^2 = [0.00025975, 0.001039]
     *         mhat = m / 0.19 = [0.2894737, -0.3684211]
     *         vhat = v / 0.001999 = [0.1299400, 0.5197599], sqrt = [0.3604719, 0.7209438]
     *         w -= 0.1 mhat / sqrt(vhat) = [0.9 - 0.0803041, -1.9 + 0.0511026]
     *           = [0.8196959, -1.8488974] */
    run_two(ur_optim_defaults(UR_OPTIM_ADAM, 0.1), 0.9, -1.9, 0.8196959064, -1.8488973940);
}

Test(optim, adamw_decoupled) {
    /* as Adam, with w first multiplied by 1 - lr * wd = 0.99 each step:
     * step 1: [0.99, -1.98] - [0.1, -0.1] = [0.89, -1.88]
     * step 2: [0.8811, -1.8612] - [0.0803041, -0.0511026] = [0.8007959, -1.8100974] */
    ur_optim_config c = ur_optim_defaults(UR_OPTIM_ADAM, 0.1);
    c.weight_decay = 0.1;
    c.decoupled = 1;
    run_two(c, 0.89, -1.88, 0.8007959064, -1.8100973940);
}

Test(optim, bad_config) {
    ur_optim_config c = ur_optim_defaults(UR_OPTIM_SGD, 0.1);
    c.nesterov = 1;
    cr_expect_null(ur_optim_new(ps, &c));
    cr_expect(strstr(ur_last_error(), "Nesterov") != NULL, "%s", ur_last_error());
    c = ur_optim_defaults(UR_OPTIM_ADAM, -1.0);
    cr_expect_null(ur_optim_new(ps, &c));
    c = ur_optim_defaults(UR_OPTIM_ADAM, 0.1);
    c.beta2 = 1.0;
    cr_expect_null(ur_optim_new(ps, &c));
    cr_expect_null(ur_optim_new(NULL, &c));
}

Test(optim, lr_get_set) {
    ur_optim_config c = ur_optim_defaults(UR_OPTIM_SGD, 0.1);
    ur_optim *o = ur_optim_new(ps, &c);
    cr_expect_eq(ur_optim_get_lr(o), 0.1);
    ur_optim_set_lr(o, 0.5);
    cr_expect_eq(ur_optim_get_lr(o), 0.5);
    set_grad(G1);
    ur_optim_step(o);
    expect_w(0.75, -1.5, "lr 0.5");
    ur_optim_free(o);
}

Test(optim, nan_gradient_leaves_values) {
    int three = 3;
    ur_param *bias = ur_paramset_add(ps, "bias", 1, &three);
    ur_optim_config c = ur_optim_defaults(UR_OPTIM_ADAM, 0.1);
    ur_optim *o = ur_optim_new(ps, &c);
    set_grad(G1);
    cr_assert_eq(ur_optim_step(o), UR_OK);
    bias->grad.data[1] = (ur_real)NAN;
    ur_real before[2] = {w->value.data[0], w->value.data[1]};
    cr_assert_eq(ur_optim_step(o), UR_ERR_NUMERIC);
    cr_expect(strstr(ur_last_error(), "'bias'") != NULL, "message names the parameter: %s", ur_last_error());
    cr_expect(strstr(ur_last_error(), "NaN") != NULL, "%s", ur_last_error());
    cr_expect(w->value.data[0] == before[0] && w->value.data[1] == before[1], "values unchanged");
    cr_expect_eq(ur_optim_step_count(o), 1);
    bias->grad.data[1] = (ur_real)INFINITY;
    cr_expect_eq(ur_optim_step(o), UR_ERR_NUMERIC);
    cr_expect(strstr(ur_last_error(), "Inf") != NULL, "%s", ur_last_error());
    ur_optim_free(o);
}

Test(optim, no_allocation_after_first_step) {
    ur_optim_kind kinds[] = {UR_OPTIM_SGD, UR_OPTIM_ADAGRAD, UR_OPTIM_RMSPROP, UR_OPTIM_ADAM};
    for (int k = 0; k < 4; k++) {
        ur_optim_config c = ur_optim_defaults(kinds[k], 0.01);
        c.momentum = kinds[k] == UR_OPTIM_SGD ? 0.9 : 0.0;
        ur_optim *o = ur_optim_new(ps, &c);
        set_grad(G1);
        cr_assert_eq(ur_optim_step(o), UR_OK);
        uint64_t n = ur_alloc_count();
        for (int s = 0; s < 20; s++) {
            ur_optim_zero_grad(o);
            set_grad(G2);
            cr_assert_eq(ur_optim_step(o), UR_OK);
        }
        cr_expect_eq(ur_alloc_count(), n, "%s allocated %llu times after its first step",
                     ur_optim_kind_name(kinds[k]), (unsigned long long)(ur_alloc_count() - n));
        ur_optim_free(o);
    }
}

Test(optim, state_names) {
    ur_optim_config c = ur_optim_defaults(UR_OPTIM_ADAM, 0.1);
    ur_optim *o = ur_optim_new(ps, &c);
    cr_expect_eq(ur_optim_state_count(o), 0, "no state before the first step");
    set_grad(G1);
    ur_optim_step(o);
    cr_assert_eq(ur_optim_state_count(o), 2);
    const char *name;
    ur_tensor *m = ur_optim_state_at(o, 0, &name);
    cr_expect_str_eq(name, "optim.adam.m.w");
    cr_expect(fabs(m->data[0] - 0.05) < 1e-7);
    ur_optim_state_at(o, 1, &name);
    cr_expect_str_eq(name, "optim.adam.v.w");
    cr_expect_null(ur_optim_state_at(o, 2, &name));
    /* a parameter added after the state was made is an error, not a crash */
    int one = 1;
    ur_paramset_add(ps, "late", 1, &one);
    cr_expect_eq(ur_optim_step(o), UR_ERR_STATE);
    ur_optim_free(o);
}

/* ---- clipping ---- */

Test(optim, clip_grad_norm) {
    int two = 2;
    ur_param *b = ur_paramset_add(ps, "b", 1, &two);
    w->grad.data[0] = 3; /* global norm of (3, 0, 0, 4) = 5 */
    w->grad.data[1] = 0;
    b->grad.data[0] = 0;
    b->grad.data[1] = 4;
    cr_expect(fabs(ur_grad_norm(ps) - 5.0) < 1e-12);
    double before = 0;
    cr_assert_eq(ur_clip_grad_norm(ps, 10.0, &before), UR_OK);
    cr_expect(fabs(before - 5.0) < 1e-12);
    cr_expect_eq(w->grad.data[0], 3, "below max_norm: unchanged");
    cr_assert_eq(ur_clip_grad_norm(ps, 1.0, &before), UR_OK);
    cr_expect(fabs(w->grad.data[0] - 0.6) < 1e-6 && fabs(b->grad.data[1] - 0.8) < 1e-6);
    cr_expect(fabs(ur_grad_norm(ps) - 1.0) < 1e-6);
    b->grad.data[0] = (ur_real)NAN;
    cr_expect_eq(ur_clip_grad_norm(ps, 1.0, &before), UR_ERR_NUMERIC);
    cr_expect(strstr(ur_last_error(), "'b'") != NULL, "%s", ur_last_error());
    cr_expect_eq(ur_clip_grad_norm(ps, 0.0, NULL), UR_ERR_ARG);
}

Test(optim, clip_grad_norm_in_double) {
    /* squares of 1e20 overflow float but not double */
    w->grad.data[0] = (ur_real)1e20;
    w->grad.data[1] = (ur_real)1e20;
    double before;
    cr_assert_eq(ur_clip_grad_norm(ps, 1.0, &before), UR_OK);
    cr_expect(fabs(before / (1e20 * sqrt(2.0)) - 1) < 1e-6, "norm %g", before);
    cr_expect(fabs(w->grad.data[0] - 1 / sqrt(2.0)) < 1e-6);
}

Test(optim, clip_grad_value) {
    set_grad(G1);
    cr_assert_eq(ur_clip_grad_value(ps, 0.6), UR_OK);
    cr_expect(fabs(w->grad.data[0] - 0.5) < 1e-7 && fabs(w->grad.data[1] + 0.6) < 1e-7);
}

/* ---- schedules ---- */

static void expect_lr(const ur_lr_schedule *s, long step, double want) {
    double got = ur_lr_at(s, step);
    cr_expect(fabs(got - want) < 1e-12, "step %ld: lr %.15g, expected %.15g", step, got, want);
}

Test(schedule, constant_and_warmup) {
    ur_lr_schedule s = ur_lr_constant(0.1);
    expect_lr(&s, 0, 0.1);
    expect_lr(&s, 1000, 0.1);
    s.warmup_steps = 4; /* 0.025, 0.05, 0.075, 0.1, then 0.1 */
    expect_lr(&s, 0, 0.025);
    expect_lr(&s, 2, 0.075);
    expect_lr(&s, 3, 0.1);
    expect_lr(&s, 50, 0.1);
}

Test(schedule, step_decay) {
    ur_lr_schedule s = ur_lr_step(1.0, 10, 0.5);
    expect_lr(&s, 0, 1.0);
    expect_lr(&s, 9, 1.0);
    expect_lr(&s, 10, 0.5);
    expect_lr(&s, 25, 0.25);
    s.warmup_steps = 5; /* the decay counts from the end of the warmup */
    expect_lr(&s, 14, 1.0);
    expect_lr(&s, 15, 0.5);
}

Test(schedule, exponential) {
    ur_lr_schedule s = ur_lr_exponential(2.0, 0.9);
    expect_lr(&s, 0, 2.0);
    expect_lr(&s, 3, 2.0 * 0.729);
}

Test(schedule, cosine) {
    ur_lr_schedule s = ur_lr_cosine(1.0, 0.1, 100);
    expect_lr(&s, 0, 1.0);
    expect_lr(&s, 50, 0.55); /* halfway: (1 + 0.1) / 2 */
    expect_lr(&s, 100, 0.1);
    expect_lr(&s, 500, 0.1);
    s.warmup_steps = 10;
    expect_lr(&s, 4, 0.5);
    expect_lr(&s, 60, 0.55);
    cr_expect(isnan(ur_lr_at(NULL, 0)));
}
