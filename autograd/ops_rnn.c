/* ops_rnn.c - fused gate nonlinearities of LSTM and GRU cells. Each replaces a
 * handful of elementwise ops (and their tape nodes) by one pass over the gates;
 * each is gradient-checked on its own like any other op. */
#include "tape_internal.h"

#include <math.h>
#include <string.h>


static int check_bh(ur_tape *t, const char *name, int n, ur_node *const *in, const ur_node *state, int gates_k,
                    const ur_node *g) {
    if (state->shape.ndim != 2 || g->shape.ndim != 2 || g->shape.dims[0] != state->shape.dims[0] ||
        g->shape.dims[1] != gates_k * state->shape.dims[1]) {
        ur__op_error(t, UR_ERR_SHAPE, name, n, in, "gates must be (B, %dH) for a state (B, H)", gates_k);
        return 0;
    }
    return 1;
}

/* ---- c = sigmoid(f) * c_prev + sigmoid(i) * tanh(g); aux keeps sigmoid(i), sigmoid(f), tanh(g) ---- */

ur_node *ur_lstm_cell(ur_tape *t, ur_node *gates, ur_node *c_prev) {
    ur_node *in[2] = {gates, c_prev};
    if (!ur__check(t, "lstm_cell", 2, in) || !check_bh(t, "lstm_cell", 2, in, c_prev, 4, gates)) return NULL;
    int B = c_prev->shape.dims[0], H = c_prev->shape.dims[1];
    ur_node *y = ur__node_new(t, UR_OP_LSTM_CELL, &c_prev->shape, 2, in);
    ur_real *act = y ? ur__alloc_real(t, (size_t)B * 3 * H) : NULL;
    if (!act) return NULL;
    y->aux = act;
    for (int b = 0; b < B; b++) {
        const ur_real *gi = gates->value + (size_t)b * 4 * H, *gg = gi + 2 * H;
        ur_real *ai = act + (size_t)b * 3 * H, *af = ai + H, *ag = ai + 2 * H;
        ur_vec_sigmoid((size_t)2 * H, gi, ai); /* i and f are adjacent */
        ur_vec_tanh((size_t)H, gg, ag);
        const ur_real *cp = c_prev->value + (size_t)b * H;
        ur_real *c = y->value + (size_t)b * H;
        for (int j = 0; j < H; j++) c[j] = af[j] * cp[j] + ai[j] * ag[j];
    }
    return ur__node_done(t, y);
}

/* dc_prev = dc sf;  di = dc tg si(1-si);  df = dc c_prev sf(1-sf);  dg = dc si (1-tg^2) */
static void lstm_cell_backward(ur_tape *t, ur_node *y) {
    ur_node *gates = y->in[0], *c_prev = y->in[1];
    ur_real *gg = ur__grad(t, gates), *gc = ur__grad(t, c_prev);
    int B = c_prev->shape.dims[0], H = c_prev->shape.dims[1];
    const ur_real *act = y->aux;
    for (int b = 0; b < B; b++) {
        const ur_real *ai = act + (size_t)b * 3 * H, *af = ai + H, *ag = ai + 2 * H;
        const ur_real *dc = y->grad + (size_t)b * H, *cp = c_prev->value + (size_t)b * H;
        if (gg) {
            ur_real *di = gg + (size_t)b * 4 * H, *df = di + H, *dg = di + 2 * H;
            for (int j = 0; j < H; j++) {
                di[j] += dc[j] * ag[j] * ai[j] * (1 - ai[j]);
                df[j] += dc[j] * cp[j] * af[j] * (1 - af[j]);
                dg[j] += dc[j] * ai[j] * (1 - ag[j] * ag[j]);
            }
        }
        if (gc) {
            ur_real *d = gc + (size_t)b * H;
            for (int j = 0; j < H; j++) d[j] += dc[j] * af[j];
        }
    }
}

/* ---- h = sigmoid(o) * tanh(c); aux keeps sigmoid(o), tanh(c) ---- */

ur_node *ur_lstm_hidden(ur_tape *t, ur_node *gates, ur_node *c) {
    ur_node *in[2] = {gates, c};
    if (!ur__check(t, "lstm_hidden", 2, in) || !check_bh(t, "lstm_hidden", 2, in, c, 4, gates)) return NULL;
    int B = c->shape.dims[0], H = c->shape.dims[1];
    ur_node *y = ur__node_new(t, UR_OP_LSTM_HIDDEN, &c->shape, 2, in);
    ur_real *act = y ? ur__alloc_real(t, (size_t)B * 2 * H) : NULL;
    if (!act) return NULL;
    y->aux = act;
    for (int b = 0; b < B; b++) {
        ur_real *so = act + (size_t)b * 2 * H, *tc = so + H;
        ur_vec_sigmoid((size_t)H, gates->value + (size_t)b * 4 * H + 3 * H, so);
        ur_vec_tanh((size_t)H, c->value + (size_t)b * H, tc);
        ur_real *h = y->value + (size_t)b * H;
        for (int j = 0; j < H; j++) h[j] = so[j] * tc[j];
    }
    return ur__node_done(t, y);
}

/* do = dh tc so(1-so);  dc = dh so (1 - tc^2) */
static void lstm_hidden_backward(ur_tape *t, ur_node *y) {
    ur_node *gates = y->in[0], *c = y->in[1];
    ur_real *gg = ur__grad(t, gates), *gc = ur__grad(t, c);
    int B = c->shape.dims[0], H = c->shape.dims[1];
    const ur_real *act = y->aux;
    for (int b = 0; b < B; b++) {
        const ur_real *so = act + (size_t)b * 2 * H, *tc = so + H, *dh = y->grad + (size_t)b * H;
        if (gg) {
            ur_real *d = gg + (size_t)b * 4 * H + 3 * H;
            for (int j = 0; j < H; j++) d[j] += dh[j] * tc[j] * so[j] * (1 - so[j]);
        }
        if (gc) {
            ur_real *d = gc + (size_t)b * H;
            for (int j = 0; j < H; j++) d[j] += dh[j] * so[j] * (1 - tc[j] * tc[j]);
        }
    }
}

/* ---- GRU, reset-after form; aux keeps r, z, n ---- */

ur_node *ur_gru_hidden(ur_tape *t, ur_node *gx, ur_node *gh, ur_node *h_prev) {
    ur_node *in[3] = {gx, gh, h_prev};
    if (!ur__check(t, "gru_hidden", 3, in) || !check_bh(t, "gru_hidden", 3, in, h_prev, 3, gx) ||
        !check_bh(t, "gru_hidden", 3, in, h_prev, 3, gh))
        return NULL;
    int B = h_prev->shape.dims[0], H = h_prev->shape.dims[1];
    ur_node *y = ur__node_new(t, UR_OP_GRU_HIDDEN, &h_prev->shape, 3, in);
    ur_real *act = y ? ur__alloc_real(t, (size_t)B * 3 * H) : NULL;
    if (!act) return NULL;
    y->aux = act;
    for (int b = 0; b < B; b++) {
        const ur_real *x = gx->value + (size_t)b * 3 * H, *hh = gh->value + (size_t)b * 3 * H;
        const ur_real *hp = h_prev->value + (size_t)b * H;
        ur_real *r = act + (size_t)b * 3 * H, *z = r + H, *n = r + 2 * H, *h = y->value + (size_t)b * H;
        for (int j = 0; j < 2 * H; j++) r[j] = x[j] + hh[j]; /* r and z pre-activations */
        ur_vec_sigmoid((size_t)2 * H, r, r);
        for (int j = 0; j < H; j++) n[j] = x[2 * H + j] + r[j] * hh[2 * H + j];
        ur_vec_tanh((size_t)H, n, n);
        for (int j = 0; j < H; j++) h[j] = (1 - z[j]) * n[j] + z[j] * hp[j];
    }
    return ur__node_done(t, y);
}

/* dn' = dh (1-z)(1-n^2);  dz' = dh (h_prev - n) z(1-z);  dr' = dn' gh_n r(1-r)
 * gx gets (dr', dz', dn'); gh gets (dr', dz', dn' r); h_prev gets dh z. */
static void gru_hidden_backward(ur_tape *t, ur_node *y) {
    ur_node *gx = y->in[0], *gh = y->in[1], *h_prev = y->in[2];
    ur_real *dgx = ur__grad(t, gx), *dgh = ur__grad(t, gh), *dhp = ur__grad(t, h_prev);
    int B = h_prev->shape.dims[0], H = h_prev->shape.dims[1];
    for (int b = 0; b < B; b++) {
        const ur_real *r = (const ur_real *)y->aux + (size_t)b * 3 * H, *z = r + H, *n = r + 2 * H;
        const ur_real *dh = y->grad + (size_t)b * H, *hp = h_prev->value + (size_t)b * H;
        const ur_real *hn = gh->value + (size_t)b * 3 * H + 2 * H;
        ur_real *ax = dgx ? dgx + (size_t)b * 3 * H : NULL, *ah = dgh ? dgh + (size_t)b * 3 * H : NULL;
        for (int j = 0; j < H; j++) {
            ur_real dn = dh[j] * (1 - z[j]) * (1 - n[j] * n[j]);
            ur_real dz = dh[j] * (hp[j] - n[j]) * z[j] * (1 - z[j]);
            ur_real dr = dn * hn[j] * r[j] * (1 - r[j]);
            if (ax) {
                ax[j] += dr;
                ax[H + j] += dz;
                ax[2 * H + j] += dn;
            }
            if (ah) {
                ah[j] += dr;
                ah[H + j] += dz;
                ah[2 * H + j] += dn * r[j];
            }
            if (dhp) dhp[(size_t)b * H + j] += dh[j] * z[j];
        }
    }
}

const ur_backward_fn ur__backward_lstm_cell = lstm_cell_backward;
const ur_backward_fn ur__backward_lstm_hidden = lstm_hidden_backward;
const ur_backward_fn ur__backward_gru_hidden = gru_hidden_backward;

/* ---- gradient-check cases ---- */

static ur_node *c_lstm_cell(ur_tape *t, ur_node **p) { return ur_lstm_cell(t, p[0], p[1]); }
static ur_node *c_lstm_hidden(ur_tape *t, ur_node **p) { return ur_lstm_hidden(t, p[0], p[1]); }
static ur_node *c_gru(ur_tape *t, ur_node **p) { return ur_gru_hidden(t, p[0], p[1], p[2]); }

const ur_op_case ur__cases_rnn[] = {
    {"lstm_cell", UR_OP_LSTM_CELL, 2, {2, 2}, {{3, 8}, {3, 2}}, 0, c_lstm_cell},
    {"lstm_hidden", UR_OP_LSTM_HIDDEN, 2, {2, 2}, {{2, 12}, {2, 3}}, 0, c_lstm_hidden},
    {"gru_hidden", UR_OP_GRU_HIDDEN, 3, {2, 2, 2}, {{3, 6}, {3, 6}, {3, 2}}, 0, c_gru},
};
const int ur__n_cases_rnn = sizeof ur__cases_rnn / sizeof ur__cases_rnn[0];
