/* ops_rnn.c - fused gate nonlinearities of LSTM and GRU cells. Each replaces a
 * handful of elementwise ops (and their tape nodes) by one pass over the gates;
 * each is gradient-checked on its own like any other op.
 *
 * The gate activations backward needs are kept (aux) for small states and
 * recomputed from the inputs for large ones: below STORE_MAX elements a step's
 * memory hardly matters and the vector exps cost more than the stored copy; above
 * it the matmuls dominate the time and a recorded step takes half the memory.
 * Either way backward sees exactly the forward's values (the same kernels).
 * Rows go in chunks of CHUNK columns through small buffers on the stack. */
#include "tape_internal.h"

#include <math.h>
#include <string.h>

enum { CHUNK = 256, STORE_MAX = 16384 };

/* Rows (batch entries) are independent: the loops over them run on several
 * threads from PAR_MIN elements on (each row is computed the same way whatever
 * the split, so results do not depend on the thread count). */
#define PAR_MIN 2048.0
#define PRAGMA(x) _Pragma(#x)
#define ROWS_PARALLEL(nt) PRAGMA(omp parallel for num_threads(nt) if (nt > 1) schedule(static))

static int check_bh(ur_tape *t, const char *name, int n, ur_node *const *in, const ur_node *state, int gates_k,
                    const ur_node *g) {
    if (state->shape.ndim != 2 || g->shape.ndim != 2 || g->shape.dims[0] != state->shape.dims[0] ||
        g->shape.dims[1] != gates_k * state->shape.dims[1]) {
        ur__op_error(t, UR_ERR_SHAPE, name, n, in, "gates must be (B, %dH) for a state (B, H)", gates_k);
        return 0;
    }
    return 1;
}

/* out += v, n elements */
static void add_to(int n, ur_real *restrict out, const ur_real *restrict v) {
    for (int j = 0; j < n; j++) out[j] += v[j];
}

/* ---- c = sigmoid(f) * c_prev + sigmoid(i) * tanh(g) ---- */

/* sigmoid(i), sigmoid(f), tanh(g) of columns j0 .. j0+n of one row of gates */
static void ifg_act(const ur_real *row, int H, int j0, int n, ur_real *si, ur_real *sf, ur_real *tg) {
    ur_vec_sigmoid((size_t)n, row + j0, si);
    ur_vec_sigmoid((size_t)n, row + H + j0, sf);
    ur_vec_tanh((size_t)n, row + 2 * H + j0, tg);
}

ur_node *ur_lstm_cell(ur_tape *t, ur_node *gates, ur_node *c_prev) {
    ur_node *in[2] = {gates, c_prev};
    if (!ur__check(t, "lstm_cell", 2, in) || !check_bh(t, "lstm_cell", 2, in, c_prev, 4, gates)) return NULL;
    int B = c_prev->shape.dims[0], H = c_prev->shape.dims[1];
    ur_node *y = ur__node_new(t, UR_OP_LSTM_CELL, &c_prev->shape, 2, in);
    if (!y) return NULL;
    ur_real *act = y->size <= STORE_MAX ? ur__alloc_real(t, 3 * y->size) : NULL; /* rows [si sf tg] */
    if (y->size <= STORE_MAX && !act) return NULL;
    y->aux = act;
    int nt = ur__par_threads((double)B * H, PAR_MIN);
    ROWS_PARALLEL(nt)
    for (int b = 0; b < B; b++) {
        const ur_real *row = gates->value + (size_t)b * 4 * H, *restrict cp = c_prev->value + (size_t)b * H;
        ur_real *restrict c = y->value + (size_t)b * H;
        for (int j0 = 0; j0 < H; j0 += CHUNK) {
            int n = H - j0 < CHUNK ? H - j0 : CHUNK;
            ur_real bi[CHUNK], bf[CHUNK], bg[CHUNK];
            ur_real *si = bi, *sf = bf, *tg = bg;
            if (act) si = act + (size_t)b * 3 * H + j0, sf = si + H, tg = si + 2 * H;
            ifg_act(row, H, j0, n, si, sf, tg);
            for (int j = 0; j < n; j++) c[j0 + j] = sf[j] * cp[j0 + j] + si[j] * tg[j];
        }
    }
    return ur__node_done(t, y);
}

/* dc_prev = dc sf;  di = dc tg si(1-si);  df = dc c_prev sf(1-sf);  dg = dc si (1-tg^2) */
void ur__backward_lstm_cell(ur_tape *t, ur_node *y) {
    ur_node *gates = y->in[0], *c_prev = y->in[1];
    ur_real *gg = ur__grad(t, gates), *gc = ur__grad(t, c_prev);
    int B = c_prev->shape.dims[0], H = c_prev->shape.dims[1];
    int nt = ur__par_threads((double)B * H, PAR_MIN);
    ROWS_PARALLEL(nt)
    for (int b = 0; b < B; b++) {
        const ur_real *row = gates->value + (size_t)b * 4 * H;
        const ur_real *restrict dc = y->grad + (size_t)b * H, *restrict cp = c_prev->value + (size_t)b * H;
        for (int j0 = 0; j0 < H; j0 += CHUNK) {
            int n = H - j0 < CHUNK ? H - j0 : CHUNK;
            ur_real bi[CHUNK], bf[CHUNK], bg[CHUNK], d[CHUNK];
            const ur_real *si = bi, *sf = bf, *tg = bg;
            if (y->aux) si = (const ur_real *)y->aux + (size_t)b * 3 * H + j0, sf = si + H, tg = si + 2 * H;
            else ifg_act(row, H, j0, n, bi, bf, bg);
            if (gg) {
                ur_real *out = gg + (size_t)b * 4 * H + j0;
                for (int j = 0; j < n; j++) d[j] = dc[j0 + j] * tg[j] * si[j] * (1 - si[j]);
                add_to(n, out, d);
                for (int j = 0; j < n; j++) d[j] = dc[j0 + j] * cp[j0 + j] * sf[j] * (1 - sf[j]);
                add_to(n, out + H, d);
                for (int j = 0; j < n; j++) d[j] = dc[j0 + j] * si[j] * (1 - tg[j] * tg[j]);
                add_to(n, out + 2 * H, d);
            }
            if (gc) {
                for (int j = 0; j < n; j++) d[j] = dc[j0 + j] * sf[j];
                add_to(n, gc + (size_t)b * H + j0, d);
            }
        }
    }
}

/* ---- h = sigmoid(o) * tanh(c) ---- */

ur_node *ur_lstm_hidden(ur_tape *t, ur_node *gates, ur_node *c) {
    ur_node *in[2] = {gates, c};
    if (!ur__check(t, "lstm_hidden", 2, in) || !check_bh(t, "lstm_hidden", 2, in, c, 4, gates)) return NULL;
    int B = c->shape.dims[0], H = c->shape.dims[1];
    ur_node *y = ur__node_new(t, UR_OP_LSTM_HIDDEN, &c->shape, 2, in);
    if (!y) return NULL;
    ur_real *act = y->size <= STORE_MAX ? ur__alloc_real(t, 2 * y->size) : NULL; /* rows [so tc] */
    if (y->size <= STORE_MAX && !act) return NULL;
    y->aux = act;
    int nt = ur__par_threads((double)B * H, PAR_MIN);
    ROWS_PARALLEL(nt)
    for (int b = 0; b < B; b++) {
        const ur_real *og = gates->value + (size_t)b * 4 * H + 3 * H, *cr = c->value + (size_t)b * H;
        ur_real *restrict h = y->value + (size_t)b * H;
        for (int j0 = 0; j0 < H; j0 += CHUNK) {
            int n = H - j0 < CHUNK ? H - j0 : CHUNK;
            ur_real bo[CHUNK], bt[CHUNK];
            ur_real *so = bo, *tc = bt;
            if (act) so = act + (size_t)b * 2 * H + j0, tc = so + H;
            ur_vec_sigmoid((size_t)n, og + j0, so);
            ur_vec_tanh((size_t)n, cr + j0, tc);
            for (int j = 0; j < n; j++) h[j0 + j] = so[j] * tc[j];
        }
    }
    return ur__node_done(t, y);
}

/* do = dh tc so(1-so);  dc = dh so (1 - tc^2) */
void ur__backward_lstm_hidden(ur_tape *t, ur_node *y) {
    ur_node *gates = y->in[0], *c = y->in[1];
    ur_real *gg = ur__grad(t, gates), *gc = ur__grad(t, c);
    int B = c->shape.dims[0], H = c->shape.dims[1];
    int nt = ur__par_threads((double)B * H, PAR_MIN);
    ROWS_PARALLEL(nt)
    for (int b = 0; b < B; b++) {
        const ur_real *og = gates->value + (size_t)b * 4 * H + 3 * H, *cr = c->value + (size_t)b * H;
        const ur_real *restrict dh = y->grad + (size_t)b * H;
        for (int j0 = 0; j0 < H; j0 += CHUNK) {
            int n = H - j0 < CHUNK ? H - j0 : CHUNK;
            ur_real bo[CHUNK], bt[CHUNK], d[CHUNK];
            const ur_real *so = bo, *tc = bt;
            if (y->aux) {
                so = (const ur_real *)y->aux + (size_t)b * 2 * H + j0, tc = so + H;
            } else {
                ur_vec_sigmoid((size_t)n, og + j0, bo);
                ur_vec_tanh((size_t)n, cr + j0, bt);
            }
            if (gg) {
                for (int j = 0; j < n; j++) d[j] = dh[j0 + j] * tc[j] * so[j] * (1 - so[j]);
                add_to(n, gg + (size_t)b * 4 * H + 3 * H + j0, d);
            }
            if (gc) {
                for (int j = 0; j < n; j++) d[j] = dh[j0 + j] * so[j] * (1 - tc[j] * tc[j]);
                add_to(n, gc + (size_t)b * H + j0, d);
            }
        }
    }
}

/* ---- GRU, reset-after form ---- */

/* r, z, n of columns j0 .. j0+n of one row: x, hh are rows of gx and gh (3H). */
static void rzn_act(const ur_real *restrict x, const ur_real *restrict hh, int H, int j0, int n, ur_real *restrict r,
                    ur_real *restrict z, ur_real *restrict nn) {
    for (int j = 0; j < n; j++) {
        r[j] = x[j0 + j] + hh[j0 + j];
        z[j] = x[H + j0 + j] + hh[H + j0 + j];
    }
    ur_vec_sigmoid((size_t)n, r, r);
    ur_vec_sigmoid((size_t)n, z, z);
    for (int j = 0; j < n; j++) nn[j] = x[2 * H + j0 + j] + r[j] * hh[2 * H + j0 + j];
    ur_vec_tanh((size_t)n, nn, nn);
}

ur_node *ur_gru_hidden(ur_tape *t, ur_node *gx, ur_node *gh, ur_node *h_prev) {
    ur_node *in[3] = {gx, gh, h_prev};
    if (!ur__check(t, "gru_hidden", 3, in) || !check_bh(t, "gru_hidden", 3, in, h_prev, 3, gx) ||
        !check_bh(t, "gru_hidden", 3, in, h_prev, 3, gh))
        return NULL;
    int B = h_prev->shape.dims[0], H = h_prev->shape.dims[1];
    ur_node *y = ur__node_new(t, UR_OP_GRU_HIDDEN, &h_prev->shape, 3, in);
    if (!y) return NULL;
    ur_real *act = y->size <= STORE_MAX ? ur__alloc_real(t, 3 * y->size) : NULL; /* rows [r z n] */
    if (y->size <= STORE_MAX && !act) return NULL;
    y->aux = act;
    int nt = ur__par_threads((double)B * H, PAR_MIN);
    ROWS_PARALLEL(nt)
    for (int b = 0; b < B; b++) {
        const ur_real *x = gx->value + (size_t)b * 3 * H, *hh = gh->value + (size_t)b * 3 * H;
        const ur_real *restrict hp = h_prev->value + (size_t)b * H;
        ur_real *restrict h = y->value + (size_t)b * H;
        for (int j0 = 0; j0 < H; j0 += CHUNK) {
            int n = H - j0 < CHUNK ? H - j0 : CHUNK;
            ur_real br[CHUNK], bz[CHUNK], bn[CHUNK];
            ur_real *r = br, *z = bz, *nn = bn;
            if (act) r = act + (size_t)b * 3 * H + j0, z = r + H, nn = r + 2 * H;
            rzn_act(x, hh, H, j0, n, r, z, nn);
            for (int j = 0; j < n; j++) h[j0 + j] = (1 - z[j]) * nn[j] + z[j] * hp[j0 + j];
        }
    }
    return ur__node_done(t, y);
}

/* dn' = dh (1-z)(1-n^2);  dz' = dh (h_prev - n) z(1-z);  dr' = dn' gh_n r(1-r)
 * gx gets (dr', dz', dn'); gh gets (dr', dz', dn' r); h_prev gets dh z. */
void ur__backward_gru_hidden(ur_tape *t, ur_node *y) {
    ur_node *gx = y->in[0], *gh = y->in[1], *h_prev = y->in[2];
    ur_real *dgx = ur__grad(t, gx), *dgh = ur__grad(t, gh), *dhp = ur__grad(t, h_prev);
    int B = h_prev->shape.dims[0], H = h_prev->shape.dims[1];
    int nt = ur__par_threads((double)B * H, PAR_MIN);
    ROWS_PARALLEL(nt)
    for (int b = 0; b < B; b++) {
        const ur_real *x = gx->value + (size_t)b * 3 * H, *hh = gh->value + (size_t)b * 3 * H;
        const ur_real *restrict dh = y->grad + (size_t)b * H, *restrict hp = h_prev->value + (size_t)b * H;
        for (int j0 = 0; j0 < H; j0 += CHUNK) {
            int n = H - j0 < CHUNK ? H - j0 : CHUNK;
            ur_real br[CHUNK], bz[CHUNK], bn[CHUNK], dr[CHUNK], dz[CHUNK], dn[CHUNK];
            const ur_real *r = br, *z = bz, *nn = bn;
            if (y->aux) r = (const ur_real *)y->aux + (size_t)b * 3 * H + j0, z = r + H, nn = r + 2 * H;
            else rzn_act(x, hh, H, j0, n, br, bz, bn);
            const ur_real *restrict hn = hh + 2 * H + j0;
            for (int j = 0; j < n; j++) {
                dn[j] = dh[j0 + j] * (1 - z[j]) * (1 - nn[j] * nn[j]);
                dz[j] = dh[j0 + j] * (hp[j0 + j] - nn[j]) * z[j] * (1 - z[j]);
                dr[j] = dn[j] * hn[j] * r[j] * (1 - r[j]);
            }
            if (dgx) {
                ur_real *out = dgx + (size_t)b * 3 * H + j0;
                add_to(n, out, dr);
                add_to(n, out + H, dz);
                add_to(n, out + 2 * H, dn);
            }
            if (dgh) {
                ur_real *out = dgh + (size_t)b * 3 * H + j0;
                add_to(n, out, dr);
                add_to(n, out + H, dz);
                for (int j = 0; j < n; j++) dn[j] *= r[j];
                add_to(n, out + 2 * H, dn);
            }
            if (dhp) {
                for (int j = 0; j < n; j++) dz[j] = dh[j0 + j] * z[j];
                add_to(n, dhp + (size_t)b * H + j0, dz);
            }
        }
    }
}

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
