/* dist_equiv.c - data-parallel training gives the parameters of one process.
 *
 * Run under mpirun with any number of ranks (also alone). A batch of 7 examples of
 * 1 to 5 tokens each (so the ranks' token counts differ) trains a small tagger-like
 * model, tokens (n, D) -> tanh(x W1 + b1) W2 + b2 -> cross-entropy, for 3 steps of
 * SGD with momentum. Each rank takes its ur_shard_range share of the examples,
 * averages its loss over its own tokens and calls ur_dist_allreduce_grads with its
 * token count as the weight. Checked:
 *   1. the ranks start from different values; after ur_dist_broadcast_params and
 *      the steps every rank holds the same bits (ur_dist_allgather);
 *   2. the parameters are bit-identical to one process that computes each share's
 *      gradient in turn and combines them by the documented rule (weighted sum in
 *      rank order, in double, divided by the total weight);
 *   3. they match one process on the whole batch within 1e-5 relative: the whole
 *      batch sums its tokens in another order, which float rounding sees;
 *   4. errors reach every rank: a negative weight on the last rank, all weights 0,
 *      paramsets of different sizes, ur_dist_allgather with a wrong total.
 * Prints one line per check on rank 0; exit status 1 on any failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unroll.h"

enum { N_EX = 7, D = 6, H = 8, C = 4, STEPS = 3, MAX_TOK = 64 };

static int g_fail = 0;
#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "dist_equiv rank %d: FAIL ", ur_dist_rank());     \
            fprintf(stderr, __VA_ARGS__);                                      \
            fprintf(stderr, "\n");                                             \
            g_fail = 1;                                                        \
        }                                                                      \
    } while (0)

/* The batch: example i has len[i] tokens, rows first[i] .. first[i+1] of x (n, D). */
typedef struct batch {
    int len[N_EX], first[N_EX + 1], target[MAX_TOK];
    ur_real x[MAX_TOK * D];
} batch;

static void make_batch(batch *b) {
    ur_rng r;
    ur_rng_seed(&r, 42);
    b->first[0] = 0;
    for (int i = 0; i < N_EX; i++) {
        b->len[i] = 1 + (i * 3) % 5;
        b->first[i + 1] = b->first[i] + b->len[i];
    }
    for (int k = 0; k < b->first[N_EX]; k++) {
        for (int d = 0; d < D; d++) b->x[k * D + d] = (ur_real)ur_rng_normal(&r);
        b->target[k] = (int)ur_rng_below(&r, C);
    }
}

typedef struct model {
    ur_paramset *ps;
    ur_param *W1, *b1, *W2, *b2;
} model;

static int model_new(model *m, uint64_t seed) {
    ur_rng r;
    ur_rng_seed(&r, seed);
    m->ps = ur_paramset_new();
    m->W1 = ur_paramset_add(m->ps, "W1", 2, (int[]){D, H});
    m->b1 = ur_paramset_add(m->ps, "b1", 1, (int[]){H});
    m->W2 = ur_paramset_add(m->ps, "W2", 2, (int[]){H, C});
    m->b2 = ur_paramset_add(m->ps, "b2", 1, (int[]){C});
    return m->W1 && m->b1 && m->W2 && m->b2 && ur_init_normal(&m->W1->value, &r, 0, 0.5) == UR_OK &&
           ur_init_normal(&m->b1->value, &r, 0, 0.1) == UR_OK && ur_init_normal(&m->W2->value, &r, 0, 0.5) == UR_OK;
}

/* Gradient of the mean loss over the tokens of examples [e0, e1) into the grads
 * (zeroed first); returns the token count, -1 on error. */
static int grads_of(model *m, ur_tape *t, const batch *b, int e0, int e1) {
    ur_paramset_zero_grad(m->ps);
    int k0 = b->first[e0], n = b->first[e1] - k0;
    if (n == 0) return 0;
    ur_tape_reset(t);
    ur_node *x = ur_input_data(t, 2, (int[]){n, D}, b->x + (size_t)k0 * D);
    ur_node *h = ur_tanh(t, ur_linear(t, x, ur_param_node(t, m->W1), ur_param_node(t, m->b1)));
    ur_node *y = ur_linear(t, h, ur_param_node(t, m->W2), ur_param_node(t, m->b2));
    ur_node *loss = ur_cross_entropy(t, y, b->target + k0, NULL);
    if (ur_tape_error(t) || ur_backward(t, loss) != UR_OK) return -1;
    return n;
}

static void flat_values(const model *m, ur_real *out) {
    size_t off = 0;
    for (int i = 0; i < ur_paramset_count(m->ps); i++) {
        const ur_tensor *v = &ur_paramset_get(m->ps, i)->value;
        memcpy(out + off, v->data, v->size * sizeof *out);
        off += v->size;
    }
}

static ur_optim *sgd(model *m) {
    ur_optim_config oc = ur_optim_defaults(UR_OPTIM_SGD, 0.5);
    oc.momentum = 0.9;
    return ur_optim_new(m->ps, &oc);
}

/* One process: every step computes each rank's share in turn and combines the
 * gradients as ur_dist_allreduce_grads documents it. */
static void train_emulated(model *m, ur_tape *t, const batch *b, int size) {
    size_t P = ur_paramset_numel(m->ps);
    ur_real *g = malloc((size_t)size * P * sizeof *g);
    double *w = malloc((size_t)size * sizeof *w);
    ur_optim *o = sgd(m);
    for (int s = 0; g && w && o && s < STEPS; s++) {
        for (int r = 0; r < size; r++) {
            int lo, hi;
            ur_shard_range(N_EX, r, size, &lo, &hi);
            w[r] = grads_of(m, t, b, lo, hi);
            size_t off = 0;
            for (int i = 0; i < ur_paramset_count(m->ps); i++) {
                const ur_tensor *gr = &ur_paramset_get(m->ps, i)->grad;
                memcpy(g + (size_t)r * P + off, gr->data, gr->size * sizeof *g);
                off += gr->size;
            }
        }
        double W = 0;
        for (int r = 0; r < size; r++) W += w[r];
        size_t off = 0;
        for (int i = 0; i < ur_paramset_count(m->ps); i++) {
            ur_tensor *gr = &ur_paramset_get(m->ps, i)->grad;
            for (size_t j = 0; j < gr->size; j++) {
                double acc = 0;
                for (int r = 0; r < size; r++)
                    if (w[r] != 0) acc += w[r] * (double)g[(size_t)r * P + off + j];
                gr->data[j] = (ur_real)(acc / W);
            }
            off += gr->size;
        }
        CHECK(ur_optim_step(o) == UR_OK, "emulated step: %s", ur_last_error());
    }
    ur_optim_free(o);
    free(g);
    free(w);
}

static void train_distributed(model *m, ur_tape *t, const batch *b) {
    int lo, hi;
    ur_shard_range(N_EX, ur_dist_rank(), ur_dist_size(), &lo, &hi);
    ur_optim *o = sgd(m);
    CHECK(ur_dist_broadcast_params(m->ps) == UR_OK, "broadcast: %s", ur_last_error());
    for (int s = 0; o && s < STEPS; s++) {
        int n = grads_of(m, t, b, lo, hi);
        CHECK(n >= 0, "step %d: %s", s, ur_tape_errmsg(t));
        CHECK(ur_dist_allreduce_grads(m->ps, n) == UR_OK, "allreduce: %s", ur_last_error());
        CHECK(ur_optim_step(o) == UR_OK, "step: %s", ur_last_error());
    }
    ur_optim_free(o);
}

/* Errors are seen by every rank, with a message naming the call. */
static void check_errors(model *m) {
    const int rank = ur_dist_rank(), size = ur_dist_size();
    ur_status s = ur_dist_allreduce_grads(m->ps, rank == size - 1 ? -1.0 : 1.0);
    CHECK(s == UR_ERR_ARG && strstr(ur_last_error(), "ur_dist_allreduce_grads"), "negative weight: %s",
          ur_last_error());
    s = ur_dist_allreduce_grads(m->ps, 0.0);
    CHECK(s == UR_ERR_ARG && strstr(ur_last_error(), "weight"), "all weights 0: %s", ur_last_error());
    ur_paramset *other = ur_paramset_new();
    ur_paramset_add(other, "w", 1, (int[]){3 + (size > 1 ? rank : 0)});
    s = ur_dist_allreduce_grads(other, 1.0);
    CHECK(size == 1 ? s == UR_OK : s == UR_ERR_SHAPE && strstr(ur_last_error(), "differ in size"),
          "mismatched paramsets: %s", ur_last_error());
    ur_paramset_free(other);
    ur_real mine[2] = {(ur_real)rank, (ur_real)rank}, all[64];
    s = ur_dist_allgather(mine, 2, all, (size_t)(2 * size + 1));
    CHECK(s == UR_ERR_SHAPE && strstr(ur_last_error(), "ur_dist_allgather"), "allgather total: %s", ur_last_error());
    double v[2] = {rank + 1.0, 1.0};
    CHECK(ur_dist_sum(v, 2) == UR_OK && v[0] == size * (size + 1) / 2.0 && v[1] == size, "ur_dist_sum");
}

int main(int argc, char **argv) {
    if (ur_dist_init(&argc, &argv) != UR_OK) {
        fprintf(stderr, "dist_equiv: %s\n", ur_last_error());
        return 1;
    }
    const int rank = ur_dist_rank(), size = ur_dist_size();
    batch b;
    make_batch(&b);
    ur_tape *t = ur_tape_new();
    model dist = {0}, emul = {0}, full = {0};
    /* every rank but 0 starts elsewhere: the broadcast must fix that */
    int ok = t && model_new(&dist, 1 + (uint64_t)rank) && model_new(&emul, 1) && model_new(&full, 1);
    CHECK(ok, "setup: %s", ur_last_error());
    size_t P = ok ? ur_paramset_numel(dist.ps) : 0;
    ur_real *a = malloc(P * sizeof *a), *e = malloc(P * sizeof *e), *f = malloc(P * sizeof *f);
    ur_real *all = malloc((size_t)size * P * sizeof *all);
    if (ok && a && e && f && all) {
        train_distributed(&dist, t, &b);
        train_emulated(&emul, t, &b, size);
        train_emulated(&full, t, &b, 1);
        flat_values(&dist, a);
        flat_values(&emul, e);
        flat_values(&full, f);

        CHECK(ur_dist_allgather(a, P, all, (size_t)size * P) == UR_OK, "allgather: %s", ur_last_error());
        int same = 1;
        for (int r = 1; r < size; r++) same &= memcmp(all, all + (size_t)r * P, P * sizeof *all) == 0;
        CHECK(same, "the ranks' parameters differ");
        CHECK(memcmp(a, e, P * sizeof *a) == 0, "not bit-identical to the in-process reduction");
        double worst = 0;
        for (size_t i = 0; i < P; i++) {
            double d = fabs((double)a[i] - (double)f[i]) / fmax(1.0, fabs((double)f[i]));
            if (d > worst) worst = d;
        }
        CHECK(worst <= 1e-5, "relative difference %.3g from the whole batch exceeds 1e-5", worst);
        if (rank == 0 && !g_fail)
            printf("dist_equiv: %d rank(s), %zu parameters, %d steps: same bits on every rank, bit-identical to "
                   "the in-process reduction; largest relative difference from the whole batch %.2g (bound 1e-5)\n",
                   size, P, STEPS, worst);
        check_errors(&dist);
    } else {
        CHECK(0, "out of memory");
    }
    free(a);
    free(e);
    free(f);
    free(all);
    ur_paramset_free(dist.ps);
    ur_paramset_free(emul.ps);
    ur_paramset_free(full.ps);
    ur_tape_free(t);
    if (rank == 0 && !g_fail) printf("dist_equiv: errors reach every rank: ok\n");
    ur_dist_finalize();
    return g_fail;
}
