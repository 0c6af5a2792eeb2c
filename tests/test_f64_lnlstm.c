/* The layer-normalised LSTM cell (nn/cell_lnlstm.c): one step against its
 * equations written out with loops, a gradient check of three unrolled steps, and
 * training from char_rnn --cell lnlstm. (test_f64_cells runs it through ur_rnn with
 * every registered cell: layers, directions, padding, dropout, TBPTT, checkpoints.) */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "unroll.h"

enum { IN = 4, H = 3, B = 2 };

static double sigm(double a) { return 1 / (1 + exp(-a)); }

/* v (n) normalised in place: (v - mean) / sqrt(var + 1e-5) * gain + bias */
static void layer_norm(double *v, int n, const ur_real *gain_offset, const ur_real *bias) {
    double mu = 0, var = 0;
    for (int k = 0; k < n; k++) mu += v[k] / n;
    for (int k = 0; k < n; k++) var += (v[k] - mu) * (v[k] - mu) / n;
    for (int k = 0; k < n; k++) v[k] = (v[k] - mu) / sqrt(var + 1e-5) * (1 + gain_offset[k]) + (bias ? bias[k] : 0);
}

static ur_paramset *make_cell(ur_rnn_cell *cell) {
    ur_paramset *ps = ur_paramset_new();
    const ur_cell_def *def = ur_cell_find("lnlstm");
    cr_assert(def, "%s", ur_last_error());
    cr_assert_eq(ur_cell_make(cell, ps, "c", "", def, IN, H), UR_OK, "%s", ur_last_error());
    ur_rng rng;
    ur_rng_seed(&rng, 5);
    cr_assert_eq(ur_rnn_cell_init_uniform(cell, &rng), UR_OK);
    return ps;
}

Test(lnlstm, one_step_follows_its_equations) {
    ur_rnn_cell cell;
    ur_paramset *ps = make_cell(&cell);
    const ur_real *Wi = ur_rnn_cell_param(&cell, "weight_ih")->value.data;
    const ur_real *Wh = ur_rnn_cell_param(&cell, "weight_hh")->value.data;
    const ur_real *b = ur_rnn_cell_param(&cell, "bias")->value.data;
    const ur_real *gi = ur_rnn_cell_param(&cell, "ln_gain_ih")->value.data;
    const ur_real *gh = ur_rnn_cell_param(&cell, "ln_gain_hh")->value.data;
    const ur_real *gc = ur_rnn_cell_param(&cell, "ln_gain_c")->value.data;
    const ur_real *bc = ur_rnn_cell_param(&cell, "ln_bias_c")->value.data;
    ur_real x[B * IN], h[B * H], c[B * H];
    for (int i = 0; i < B * IN; i++) x[i] = (ur_real)(0.3 * i - 1);
    for (int i = 0; i < B * H; i++) h[i] = (ur_real)(0.2 * i - 0.5), c[i] = (ur_real)(0.7 - 0.25 * i);

    ur_tape *t = ur_tape_new();
    ur_rnn_hc prev = {{ur_input_data(t, 2, (int[]){B, H}, h), ur_input_data(t, 2, (int[]){B, H}, c)}};
    ur_rnn_hc got = ur_rnn_cell_step(t, &cell, ur_input_data(t, 2, (int[]){B, IN}, x), prev);
    cr_assert(got.h && got.c, "%s", ur_tape_errmsg(t));
    for (int r = 0; r < B; r++) {
        double ax[4 * H] = {0}, ah[4 * H] = {0}, c2[H], lc[H];
        for (int k = 0; k < 4 * H; k++) {
            for (int i = 0; i < IN; i++) ax[k] += x[r * IN + i] * Wi[i * 4 * H + k];
            for (int i = 0; i < H; i++) ah[k] += h[r * H + i] * Wh[i * 4 * H + k];
        }
        layer_norm(ax, 4 * H, gi, b);
        layer_norm(ah, 4 * H, gh, NULL);
        for (int k = 0; k < H; k++) {
            double i = sigm(ax[k] + ah[k]), f = sigm(ax[H + k] + ah[H + k]), g = tanh(ax[2 * H + k] + ah[2 * H + k]);
            lc[k] = c2[k] = f * c[r * H + k] + i * g;
        }
        layer_norm(lc, H, gc, bc);
        for (int k = 0; k < H; k++) {
            double o = sigm(ax[3 * H + k] + ah[3 * H + k]), want_h = o * tanh(lc[k]);
            double gh_ = ur_node_cdata(got.h)[r * H + k], gc_ = ur_node_cdata(got.c)[r * H + k];
            cr_expect(fabs(gc_ - c2[k]) < 1e-14, "c[%d][%d] = %.17g, want %.17g", r, k, gc_, c2[k]);
            cr_expect(fabs(gh_ - want_h) < 1e-14, "h[%d][%d] = %.17g, want %.17g", r, k, gh_, want_h);
        }
    }
    ur_tape_free(t);
    ur_paramset_free(ps);
}

/* three steps from zero states, a loss weighting every h and c */
typedef struct unrolled {
    ur_rnn_cell cell;
    ur_real x[3][B * IN], w[B * H];
} unrolled;

static ur_node *unrolled_loss(ur_tape *t, void *ctx) {
    unrolled *u = ctx;
    ur_rnn_hc s = {{NULL, NULL}};
    ur_node *loss = NULL;
    for (int step = 0; step < 3; step++) {
        s = ur_rnn_cell_step(t, &u->cell, ur_input_data(t, 2, (int[]){B, IN}, u->x[step]), s);
        ur_node *w = ur_input_data(t, 2, (int[]){B, H}, u->w);
        ur_node *term = ur_add(t, ur_sum(t, ur_mul(t, s.h, w)), ur_sum(t, ur_mul(t, s.c, s.c)));
        loss = loss ? ur_add(t, loss, term) : term;
    }
    return loss;
}

Test(lnlstm, gradient_check_of_three_steps) {
    unrolled u;
    ur_paramset *ps = make_cell(&u.cell);
    ur_rng rng;
    ur_rng_seed(&rng, 11);
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < B * IN; i++) u.x[s][i] = (ur_real)ur_rng_normal(&rng);
    for (int i = 0; i < B * H; i++) u.w[i] = (ur_real)ur_rng_normal(&rng);
    ur_tape *t = ur_tape_new();
    ur_gradcheck_result r;
    cr_assert_eq(ur_gradcheck_paramset(t, unrolled_loss, &u, ps, 1e-6, 0, &r), UR_OK, "%s", ur_last_error());
    cr_expect_eq(r.n_checked, (size_t)(IN * 4 * H + H * 4 * H + 3 * 4 * H + 2 * H));
    cr_expect(r.max_rel_err < 1e-6, "relative error %.3e at %s", r.max_rel_err, r.worst);
    ur_tape_free(t);
    ur_paramset_free(ps);
}

Test(lnlstm, trains_in_char_rnn, .timeout = 120) {
    char *j = ur_test_run_json(UR_BINARY_DIR "/bin/char_rnn --threads 1 --cell lnlstm --hidden 64 --embed 16 "
                                             "--batch 16 --bptt 32 --steps 40 --val-chars 2000 --sample 0 --json");
    char got[32];
    ur_test_json_string(j, "cell", got, sizeof got);
    cr_expect_str_eq(got, "lnlstm");
    double first = ur_test_json_number(j, "first_loss"), last = ur_test_json_number(j, "last_loss");
    cr_expect(isfinite(first) && isfinite(last), "losses %g, %g", first, last);
    cr_expect_lt(last, first - 0.5, "the loss did not fall: %g -> %g", first, last);
    free(j);
}
