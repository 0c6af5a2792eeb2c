/* Fused pointwise expressions in double precision: the library's gate expressions
 * equal the hand-fused gate ops (values and gradients), and 200 random expressions
 * equal the same formula written with primitive ops and pass the gradient check. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "support.h"
#include "unroll.h"

/* ---- running a step twice: the expression and a reference, on fresh tapes ---- */

enum { MAXIN = 5, MAXOUT = 4 };

typedef struct step {
    int n_in, n_out;
    int ndim[MAXIN], dims[MAXIN][2];
    ur_tensor *x[MAXIN];
    ur_tensor *w[MAXOUT]; /* loss = sum_k sum(out_k * w_k) */
} step;

/* builds the outputs from the inputs; returns 0 on failure */
typedef int (*step_fn)(ur_tape *t, void *ctx, ur_node **in, ur_node **out);

typedef struct run_result {
    double *val[MAXOUT];
    double *grad[MAXIN];
} run_result;

static void step_init(step *s, uint64_t seed, int n_in, int n_out, const int (*dims)[2], const int *ndim, int B, int N) {
    memset(s, 0, sizeof *s);
    s->n_in = n_in, s->n_out = n_out;
    ur_rng rng;
    ur_rng_seed(&rng, seed);
    for (int i = 0; i < n_in; i++) {
        s->ndim[i] = ndim[i];
        s->dims[i][0] = dims[i][0], s->dims[i][1] = dims[i][1];
        s->x[i] = ur_tensor_new(ndim[i], dims[i]);
        cr_assert(s->x[i]);
        ur_tensor_uniform(s->x[i], &rng, -2, 2);
    }
    for (int k = 0; k < n_out; k++) {
        s->w[k] = ur_tensor_new(2, (int[]){B, N});
        cr_assert(s->w[k]);
        ur_tensor_normal(s->w[k], &rng, 0, 1);
    }
}

static void step_free(step *s) {
    for (int i = 0; i < s->n_in; i++) ur_tensor_free(s->x[i]);
    for (int k = 0; k < s->n_out; k++) ur_tensor_free(s->w[k]);
}

/* The tape's arena first holds sevens (ur_test_fill_tape_memory), so that a value or
 * gradient some pass never writes shows as a seven, not as a zero. */
enum { DIRTY = 1 << 16 };

static ur_tape *dirty_tape(void) {
    ur_tape *t = ur_tape_new();
    cr_assert_not_null(t);
    ur_test_fill_tape_memory(t, DIRTY);
    return t;
}

static run_result run(const step *s, step_fn f, void *ctx) {
    run_result r;
    memset(&r, 0, sizeof r);
    ur_tape *t = dirty_tape();
    ur_node *in[MAXIN], *out[MAXOUT];
    for (int i = 0; i < s->n_in; i++) in[i] = ur_variable(t, s->x[i]);
    cr_assert(f(t, ctx, in, out), "building the step failed: %s", ur_tape_errmsg(t));
    ur_node *loss = NULL;
    for (int k = 0; k < s->n_out; k++) {
        ur_node *w = ur_input(t, s->w[k]);
        ur_node *term = ur_sum(t, ur_mul(t, out[k], w));
        loss = loss ? ur_add(t, loss, term) : term;
    }
    cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
    for (int k = 0; k < s->n_out; k++) {
        size_t n = ur_node_size(out[k]);
        r.val[k] = malloc(n * sizeof(double));
        memcpy(r.val[k], ur_node_cdata(out[k]), n * sizeof(double));
    }
    for (int i = 0; i < s->n_in; i++) {
        size_t n = s->x[i]->size;
        r.grad[i] = calloc(n, sizeof(double));
        if (ur_node_grad(in[i])) memcpy(r.grad[i], ur_node_grad(in[i]), n * sizeof(double));
    }
    ur_tape_free(t);
    return r;
}

static double max_rel_diff(const double *a, const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]) / fmax(1.0, fabs(b[i]));
        if (!(d <= m)) m = d;
    }
    return m;
}

/* Runs both, compares values and gradients; returns the largest relative difference. */
static double compare(const step *s, step_fn fa, void *ca, step_fn fb, void *cb, const char *what) {
    run_result a = run(s, fa, ca), b = run(s, fb, cb);
    double m = 0;
    size_t out_n = s->w[0]->size;
    for (int k = 0; k < s->n_out; k++) {
        double d = max_rel_diff(a.val[k], b.val[k], out_n);
        cr_expect(d <= 1e-12, "%s: output %d differs by %.3e", what, k, d);
        m = fmax(m, d);
        free(a.val[k]), free(b.val[k]);
    }
    for (int i = 0; i < s->n_in; i++) {
        double d = max_rel_diff(a.grad[i], b.grad[i], s->x[i]->size);
        cr_expect(d <= 1e-12, "%s: gradient of input %d differs by %.3e", what, i, d);
        m = fmax(m, d);
        free(a.grad[i]), free(b.grad[i]);
    }
    return m;
}

static int by_expr(ur_tape *t, void *ctx, ur_node **in, ur_node **out) {
    const ur_expr *e = ctx;
    return ur_expr_apply(t, e, ur_expr_input_count(e), in, out) == UR_OK;
}

/* ---- the library's expressions against the same math from primitive ops ---- */

/* c = sigmoid(f) c_prev + sigmoid(i) tanh(g), h = sigmoid(o) tanh(c) */
static int lstm_primitives(ur_tape *t, void *ctx, ur_node **in, ur_node **out) {
    (void)ctx;
    int H = ur_node_dim(in[1], 1);
    ur_node *g = in[0];
    ur_node *i = ur_sigmoid(t, ur_slice(t, g, 1, 0, H)), *f = ur_sigmoid(t, ur_slice(t, g, 1, H, H));
    ur_node *c = ur_add(t, ur_mul(t, f, in[1]), ur_mul(t, i, ur_tanh(t, ur_slice(t, g, 1, 2 * H, H))));
    out[0] = ur_mul(t, ur_sigmoid(t, ur_slice(t, g, 1, 3 * H, H)), ur_tanh(t, c));
    out[1] = c;
    return out[0] != NULL;
}

/* r = sigmoid(gx_r + gh_r), z = sigmoid(gx_z + gh_z), n = tanh(gx_n + r gh_n),
 * h = (1 - z) n + z h_prev */
static int gru_primitives(ur_tape *t, void *ctx, ur_node **in, ur_node **out) {
    (void)ctx;
    int H = ur_node_dim(in[2], 1);
    ur_node *gx = in[0], *gh = in[1];
    ur_node *r = ur_sigmoid(t, ur_add(t, ur_slice(t, gx, 1, 0, H), ur_slice(t, gh, 1, 0, H)));
    ur_node *z = ur_sigmoid(t, ur_add(t, ur_slice(t, gx, 1, H, H), ur_slice(t, gh, 1, H, H)));
    ur_node *n = ur_tanh(t, ur_add(t, ur_slice(t, gx, 1, 2 * H, H), ur_mul(t, r, ur_slice(t, gh, 1, 2 * H, H))));
    out[0] = ur_add(t, ur_mul(t, ur_one_minus(t, z), n), ur_mul(t, z, in[2]));
    return out[0] != NULL;
}

/* the peephole step from primitive ops: each gate a column slice of gates */
static int peephole_primitives(ur_tape *t, void *ctx, ur_node **in, ur_node **out) {
    int H = ur_node_dim(in[1], 1);
    ur_node *g = in[0], *cp = in[1];
    ur_node *i = ur_sigmoid(t, ur_add(t, ur_slice(t, g, 1, 0, H), ur_mul(t, cp, in[2])));
    ur_node *f = ur_sigmoid(t, ur_add(t, ur_slice(t, g, 1, H, H), ur_mul(t, cp, in[3])));
    ur_node *c = ur_add(t, ur_mul(t, f, cp), ur_mul(t, i, ur_tanh(t, ur_slice(t, g, 1, 2 * H, H))));
    ur_node *o = ur_sigmoid(t, ur_add(t, ur_slice(t, g, 1, 3 * H, H), ur_mul(t, c, in[4])));
    out[0] = ur_mul(t, o, ur_tanh(t, c));
    out[1] = c;
    return out[0] != NULL;
}

/* (B, H): small (activations saved), large and wider than a chunk (recomputed) */
static const int sizes[][2] = {{4, 3}, {2, 300}, {64, 300}};

Test(expr, lstm_equals_primitives) {
    ur_expr *e = ur_expr_lstm();
    cr_assert(e);
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        int B = sizes[z][0], H = sizes[z][1];
        step s;
        step_init(&s, 10 + z, 2, 2, (const int[][2]){{B, 4 * H}, {B, H}}, (const int[]){2, 2}, B, H);
        compare(&s, by_expr, e, lstm_primitives, NULL, "lstm");
        step_free(&s);
    }
    ur_expr_free(e);
}

Test(expr, gru_equals_primitives) {
    ur_expr *e = ur_expr_gru();
    cr_assert(e);
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        int B = sizes[z][0], H = sizes[z][1];
        step s;
        step_init(&s, 20 + z, 3, 1, (const int[][2]){{B, 3 * H}, {B, 3 * H}, {B, H}}, (const int[]){2, 2, 2}, B, H);
        compare(&s, by_expr, e, gru_primitives, NULL, "gru");
        step_free(&s);
    }
    ur_expr_free(e);
}

Test(expr, peephole_lstm_equals_primitives) {
    ur_expr *e = ur_expr_peephole_lstm();
    cr_assert(e);
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        int B = sizes[z][0], H = sizes[z][1];
        step s;
        step_init(&s, 30 + z, 5, 2, (const int[][2]){{B, 4 * H}, {B, H}, {H, 0}, {H, 0}, {H, 0}},
                  (const int[]){2, 2, 1, 1, 1}, B, H);
        compare(&s, by_expr, e, peephole_primitives, NULL, "peephole_lstm");
        step_free(&s);
    }
    ur_expr_free(e);
}

/* ---- a randomised family: every node kind, depth up to 6, broadcasting, blocks ----
 * A recipe is written twice: as an expression and with primitive ops. Inputs:
 * slot 0 full (B, N), slot 1 three blocks (B, 3N), slot 2 a row (N), slot 3 a
 * column (B, 1). log and div only see positive values: log(1 + a a), a / (1 + b b);
 * exp sees a bounded argument (tanh of it when it could be large). */
enum { R_FULL, R_BLOCK, R_ROW, R_COL, R_CONST, R_ADD, R_SUB, R_MUL, R_DIV, R_SIGMOID, R_TANH,
       R_RELU, R_EXP, R_LOG, R_ONE_MINUS, R_NEG, R_KINDS, R_MAX = 1024 };

typedef struct rnode {
    int kind, a, b, k;
    double v;
} rnode;

typedef struct recipe {
    rnode n[R_MAX];
    int count, out[2];
} recipe;

static int used_kinds[R_KINDS];

static int put(recipe *r, int kind, int a, int b, int k, double v) {
    cr_assert(r->count < R_MAX);
    r->n[r->count] = (rnode){kind, a, b, k, v};
    used_kinds[kind]++;
    return r->count++;
}

/* *bound: a bound on |value| (inputs are in [-2, 2]) */
static int gen(recipe *r, ur_rng *rng, int depth, double *bound) {
    if (depth == 0 || r->count > R_MAX / 2 || ur_rng_uniform(rng) < 0.2) {
        int kind = (int)ur_rng_below(rng, 5);
        *bound = 2;
        return put(r, kind, -1, -1, (int)ur_rng_below(rng, 3), 3 * ur_rng_uniform(rng) - 1.5);
    }
    int kind = R_ADD + (int)ur_rng_below(rng, R_KINDS - R_ADD), a, b, id;
    double ba, bb;
    a = gen(r, rng, depth - 1, &ba);
    switch (kind) {
    case R_ADD:
    case R_SUB:
    case R_MUL:
        b = gen(r, rng, depth - 1, &bb);
        id = put(r, kind, a, b, 0, 0);
        *bound = kind == R_MUL ? ba * bb : ba + bb;
        break;
    case R_DIV: /* a / (1 + b b) */
        b = gen(r, rng, depth - 1, &bb);
        b = put(r, R_ADD, put(r, R_CONST, -1, -1, 0, 1), put(r, R_MUL, b, b, 0, 0), 0, 0);
        id = put(r, R_DIV, a, b, 0, 0);
        *bound = ba;
        break;
    case R_LOG: /* log(1 + a a) */
        a = put(r, R_ADD, put(r, R_CONST, -1, -1, 0, 1), put(r, R_MUL, a, a, 0, 0), 0, 0);
        id = put(r, R_LOG, a, -1, 0, 0);
        *bound = log(1 + ba * ba);
        break;
    case R_EXP:
        if (ba > 3) a = put(r, R_TANH, a, -1, 0, 0), ba = 1;
        id = put(r, R_EXP, a, -1, 0, 0);
        *bound = exp(ba);
        break;
    case R_SIGMOID:
    case R_TANH: id = put(r, kind, a, -1, 0, 0), *bound = 1; break;
    case R_ONE_MINUS: id = put(r, kind, a, -1, 0, 0), *bound = 1 + ba; break;
    default: id = put(r, kind, a, -1, 0, 0), *bound = ba; break; /* relu, neg */
    }
    if (*bound > 100) id = put(r, R_TANH, id, -1, 0, 0), *bound = 1;
    return id;
}

static void gen_recipe(recipe *r, ur_rng *rng, int depth) {
    r->count = 0;
    double b;
    /* out0 = tree + full; out1 = tree (times tanh(out0)) + block 1 + row + col: every slot is read */
    int t0 = gen(r, rng, depth, &b);
    put(r, R_SIGMOID, t0, -1, 0, 0); /* read by no output: skipped */
    r->out[0] = put(r, R_ADD, t0, put(r, R_FULL, -1, -1, 0, 0), 0, 0);
    int t1 = gen(r, rng, depth, &b);
    if (ur_rng_below(rng, 2)) t1 = put(r, R_MUL, t1, put(r, R_TANH, r->out[0], -1, 0, 0), 0, 0); /* reads out0 */
    t1 = put(r, R_ADD, t1, put(r, R_BLOCK, -1, -1, 1, 0), 0, 0);
    t1 = put(r, R_ADD, t1, put(r, R_ROW, -1, -1, 0, 0), 0, 0);
    r->out[1] = put(r, R_ADD, t1, put(r, R_COL, -1, -1, 0, 0), 0, 0);
}

static ur_expr *recipe_expr(const recipe *r) {
    ur_expr *e = ur_expr_new("random");
    int id[R_MAX];
    for (int i = 0; i < r->count; i++) {
        const rnode *n = &r->n[i];
        int a = n->a >= 0 ? id[n->a] : -1, b = n->b >= 0 ? id[n->b] : -1;
        switch (n->kind) {
        case R_FULL: id[i] = ur_expr_input(e, 0); break;
        case R_BLOCK: id[i] = ur_expr_input_block(e, 1, n->k, 3); break;
        case R_ROW: id[i] = ur_expr_input_row(e, 2); break;
        case R_COL: id[i] = ur_expr_input_col(e, 3); break;
        case R_CONST: id[i] = ur_expr_const(e, n->v); break;
        case R_ADD: id[i] = ur_expr_add(e, a, b); break;
        case R_SUB: id[i] = ur_expr_sub(e, a, b); break;
        case R_MUL: id[i] = ur_expr_mul(e, a, b); break;
        case R_DIV: id[i] = ur_expr_div(e, a, b); break;
        case R_SIGMOID: id[i] = ur_expr_sigmoid(e, a); break;
        case R_TANH: id[i] = ur_expr_tanh(e, a); break;
        case R_RELU: id[i] = ur_expr_relu(e, a); break;
        case R_EXP: id[i] = ur_expr_exp(e, a); break;
        case R_LOG: id[i] = ur_expr_log(e, a); break;
        case R_ONE_MINUS: id[i] = ur_expr_one_minus(e, a); break;
        default: id[i] = ur_expr_neg(e, a); break;
        }
    }
    ur_expr_output(e, id[r->out[0]]);
    ur_expr_output(e, id[r->out[1]]);
    cr_assert_eq(ur_expr_error(e), UR_OK, "%s", ur_expr_errmsg(e));
    return e;
}

static int recipe_primitives(ur_tape *t, void *ctx, ur_node **in, ur_node **out) {
    const recipe *r = ctx;
    int N = ur_node_dim(in[0], 1);
    ur_node *v[R_MAX];
    for (int i = 0; i < r->count; i++) {
        const rnode *n = &r->n[i];
        ur_node *a = n->a >= 0 ? v[n->a] : NULL, *b = n->b >= 0 ? v[n->b] : NULL;
        switch (n->kind) {
        case R_FULL: v[i] = in[0]; break;
        case R_BLOCK: v[i] = ur_slice(t, in[1], 1, n->k * N, N); break;
        case R_ROW: v[i] = in[2]; break;
        case R_COL: v[i] = in[3]; break;
        case R_CONST: v[i] = ur_input_data(t, 1, (int[]){1}, &n->v); break;
        case R_ADD: v[i] = ur_add(t, a, b); break;
        case R_SUB: v[i] = ur_sub(t, a, b); break;
        case R_MUL: v[i] = ur_mul(t, a, b); break;
        case R_DIV: v[i] = ur_div(t, a, b); break;
        case R_SIGMOID: v[i] = ur_sigmoid(t, a); break;
        case R_TANH: v[i] = ur_tanh(t, a); break;
        case R_RELU: v[i] = ur_relu(t, a); break;
        case R_EXP: v[i] = ur_exp(t, a); break;
        case R_LOG: v[i] = ur_log(t, a); break;
        case R_ONE_MINUS: v[i] = ur_one_minus(t, a); break;
        default: v[i] = ur_neg(t, a); break;
        }
    }
    out[0] = v[r->out[0]];
    out[1] = v[r->out[1]];
    return out[0] && out[1];
}

typedef struct check_ctx {
    const ur_expr *e;
    ur_param *p[4];
    const step *s;
} check_ctx;

static ur_node *expr_loss(ur_tape *t, void *ctx) {
    check_ctx *c = ctx;
    ur_node *in[4], *out[2];
    for (int i = 0; i < 4; i++) in[i] = ur_param_node(t, c->p[i]);
    if (ur_expr_apply(t, c->e, 4, in, out) != UR_OK) return NULL;
    return ur_add(t, ur_sum(t, ur_mul(t, out[0], ur_input(t, c->s->w[0]))),
                  ur_sum(t, ur_mul(t, out[1], ur_input(t, c->s->w[1]))));
}

Test(expr, random_expressions_match_primitives_and_pass_gradcheck) {
    enum { B = 3, N = 4, COUNT = 200 };
    ur_rng rng;
    ur_rng_seed(&rng, 2024);
    static recipe r;
    memset(used_kinds, 0, sizeof used_kinds);
    double worst_twin = 0, worst_check = 0;
    size_t checked = 0;
    int max_nodes = 0, sum_nodes = 0;
    for (int x = 0; x < COUNT; x++) {
        gen_recipe(&r, &rng, 1 + x % 6);
        ur_expr *e = recipe_expr(&r);
        sum_nodes += ur_expr_node_count(e);
        if (ur_expr_node_count(e) > max_nodes) max_nodes = ur_expr_node_count(e);
        step s;
        step_init(&s, 100 + (uint64_t)x, 4, 2, (const int[][2]){{B, N}, {B, 3 * N}, {N, 0}, {B, 1}},
                  (const int[]){2, 2, 1, 2}, B, N);
        char what[48];
        snprintf(what, sizeof what, "random expression %d", x);
        worst_twin = fmax(worst_twin, compare(&s, by_expr, e, recipe_primitives, &r, what));
        if (x % 4 == 0) { /* wide rows: recomputed in backward, several chunks, threads */
            step wide;
            int W = 8200;
            step_init(&wide, 500 + (uint64_t)x, 4, 2, (const int[][2]){{2, W}, {2, 3 * W}, {W, 0}, {2, 1}},
                      (const int[]){2, 2, 1, 2}, 2, W);
            worst_twin = fmax(worst_twin, compare(&wide, by_expr, e, recipe_primitives, &r, what));
            step_free(&wide);
        }

        ur_paramset *ps = ur_paramset_new();
        check_ctx c = {e, {0}, &s};
        for (int i = 0; i < 4; i++) {
            char name[8] = {'x', (char)('0' + i), 0};
            c.p[i] = ur_paramset_add(ps, name, s.ndim[i], s.dims[i]);
            cr_assert(c.p[i]);
            memcpy(c.p[i]->value.data, s.x[i]->data, s.x[i]->size * sizeof(double));
        }
        ur_tape *t = ur_tape_new();
        ur_gradcheck_result g;
        cr_assert_eq(ur_gradcheck(t, expr_loss, &c, c.p, 4, 1e-6, &g), UR_OK, "%s: %s", what, ur_last_error());
        cr_expect(g.max_rel_err < 1e-6, "%s (%d nodes): relative error %.3e at %s", what, ur_expr_node_count(e),
                  g.max_rel_err, g.worst);
        worst_check = fmax(worst_check, g.max_rel_err);
        checked += g.n_checked;
        ur_tape_free(t);
        ur_paramset_free(ps);
        step_free(&s);
        ur_expr_free(e);
    }
    for (int k = 0; k < R_KINDS; k++) cr_expect(used_kinds[k] > 0, "node kind %d never generated", k);
    cr_expect(max_nodes > 60, "the family has no large expression (largest %d nodes)", max_nodes);
    cr_log_info("%d expressions (%d nodes on average, at most %d), %zu gradient elements: largest difference "
                "to primitives %.2e, largest gradient-check error %.2e", COUNT, sum_nodes / COUNT, max_nodes,
                checked, worst_twin, worst_check);
}

/* Outputs may be leaves and may repeat; their gradients add up. */
static int odd_outputs_expr(ur_tape *t, void *ctx, ur_node **in, ur_node **out) {
    ur_expr *e = ur_expr_new("odd");
    int a = ur_expr_input(e, 0), col = ur_expr_input_col(e, 1), p = ur_expr_mul(e, a, col);
    ur_expr_output(e, a);
    ur_expr_output(e, p);
    ur_expr_output(e, p);
    ur_expr_output(e, col);
    int ok = ur_expr_apply(t, e, 2, in, out) == UR_OK;
    ur_expr_free(e);
    return ok;
}

static int odd_outputs_primitives(ur_tape *t, void *ctx, ur_node **in, ur_node **out) {
    out[0] = in[0];
    out[1] = out[2] = ur_mul(t, in[0], in[1]);
    out[3] = ur_add(t, in[1], ur_zeros(t, 2, (int[]){ur_node_dim(in[0], 0), ur_node_dim(in[0], 1)}));
    return out[3] != NULL;
}

Test(expr, outputs_may_be_leaves_and_repeat) {
    step s;
    step_init(&s, 40, 2, 4, (const int[][2]){{3, 5}, {3, 1}}, (const int[]){2, 2}, 3, 5);
    compare(&s, odd_outputs_expr, NULL, odd_outputs_primitives, NULL, "odd outputs");
    step_free(&s);
}


/* Rows are split over the threads, row inputs summed in row order: the results do
 * not depend on the thread count (bit for bit). */
Test(expr, results_do_not_depend_on_the_threads) {
    enum { B = 64, H = 300 };
    ur_expr *e = ur_expr_peephole_lstm();
    step s;
    step_init(&s, 77, 5, 2, (const int[][2]){{B, 4 * H}, {B, H}, {H, 0}, {H, 0}, {H, 0}}, (const int[]){2, 2, 1, 1, 1},
              B, H);
    int old = ur_get_num_threads();
    ur_set_num_threads(1);
    run_result one = run(&s, by_expr, e);
    ur_set_num_threads(2);
    run_result two = run(&s, by_expr, e);
    ur_set_num_threads(old);
    for (int k = 0; k < 2; k++) {
        cr_expect(memcmp(one.val[k], two.val[k], (size_t)B * H * sizeof(double)) == 0, "output %d differs", k);
        free(one.val[k]), free(two.val[k]);
    }
    for (int i = 0; i < 5; i++) {
        cr_expect(memcmp(one.grad[i], two.grad[i], s.x[i]->size * sizeof(double)) == 0, "gradient %d differs", i);
        free(one.grad[i]), free(two.grad[i]);
    }
    step_free(&s);
    ur_expr_free(e);
}
