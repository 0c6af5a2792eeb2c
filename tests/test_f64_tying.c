/* Weight tying (Press & Wolf 2017; Inan et al. 2017): an embedding table E (V, D)
 * read by ur_gather and, transposed, as the output layer, logits = h E^T. E is one
 * node with two consumers, so backward gives it the sum of both uses' gradients:
 * this test computes each use's gradient on its own (with an untied copy) and
 * checks that the tied gradient is their sum, then checks the whole with central
 * differences. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "unroll.h"

enum { V = 7, D = 5, N = 6 };
static const int IDS[N] = {1, 4, 4, 0, 6, 2};
static const int TARGETS[N] = {3, 3, 0, 6, 1, 4};

typedef struct model {
    ur_paramset *ps;
    ur_param *E, *E_out, *W; /* E_out: the untied copy of E for the output layer */
    int tied;
} model;

/* logits = tanh(E[ids] W) E^T, cross-entropy against TARGETS */
static ur_node *loss_fn(ur_tape *t, void *ctx) {
    model *m = ctx;
    ur_node *E = ur_param_node(t, m->E);
    ur_node *h = ur_tanh(t, ur_matmul(t, ur_gather(t, E, IDS, N), ur_param_node(t, m->W), 0, 0));
    ur_node *out = m->tied ? E : ur_param_node(t, m->E_out);
    return ur_cross_entropy(t, ur_matmul(t, h, out, 0, 1), TARGETS, NULL);
}

Test(tying, the_tied_gradient_is_the_sum_of_both_uses) {
    model m = {ur_paramset_new(), NULL, NULL, NULL, 1};
    m.E = ur_paramset_add(m.ps, "E", 2, (int[]){V, D});
    m.E_out = ur_paramset_add(m.ps, "E_out", 2, (int[]){V, D});
    m.W = ur_paramset_add(m.ps, "W", 2, (int[]){D, D});
    ur_rng rng;
    ur_rng_seed(&rng, 4);
    ur_tensor_normal(&m.E->value, &rng, 0, 1);
    ur_tensor_normal(&m.W->value, &rng, 0, 0.5);
    memcpy(m.E_out->value.data, m.E->value.data, sizeof(ur_real) * V * D);

    ur_real tied[V * D];
    double untied_loss = 0, tied_loss = 0;
    for (int round = 0; round < 2; round++) {
        m.tied = round == 0;
        ur_paramset_zero_grad(m.ps);
        ur_tape *t = ur_tape_new();
        ur_node *l = loss_fn(t, &m);
        cr_assert_eq(ur_backward(t, l), UR_OK, "%s", ur_tape_errmsg(t));
        if (m.tied) tied_loss = ur_node_item(l), memcpy(tied, m.E->grad.data, sizeof tied);
        else untied_loss = ur_node_item(l);
        ur_tape_free(t);
    }
    cr_assert_eq(tied_loss, untied_loss, "the copy has the same values");
    for (int i = 0; i < V * D; i++) {
        double sum = m.E->grad.data[i] + m.E_out->grad.data[i];
        cr_assert(fabs(tied[i] - sum) < 1e-14, "E[%d]: tied %.17g, input use + output use %.17g", i, tied[i], sum);
    }
    /* both uses matter: neither part is zero everywhere */
    double in_norm = 0, out_norm = 0;
    for (int i = 0; i < V * D; i++) in_norm += fabs(m.E->grad.data[i]), out_norm += fabs(m.E_out->grad.data[i]);
    cr_assert(in_norm > 1e-3 && out_norm > 1e-3);

    m.tied = 1;
    ur_param *p[2] = {m.E, m.W};
    ur_tape *t = ur_tape_new();
    ur_gradcheck_result r;
    cr_assert_eq(ur_gradcheck(t, loss_fn, &m, p, 2, 1e-6, &r), UR_OK, "%s", ur_last_error());
    cr_assert(r.max_rel_err < 1e-8, "max relative error %g at %s", r.max_rel_err, r.worst);
    ur_tape_free(t);
    ur_paramset_free(m.ps);
}
