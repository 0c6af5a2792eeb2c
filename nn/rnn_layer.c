/* rnn_layer.c - stacked, optionally bidirectional recurrent layers over whole
 * sequences: initialization, dropout between layers, masking of padded steps. */
#include "rnn_internal.h"
#include "ur_init.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

struct ur_rnn {
    ur_rnn_config cfg;
    int D;                                /* directions */
    ur_rnn_cell cells[UR_RNN_MAX_STATES]; /* index layer * D + direction */
    ur_node **outs;                       /* scratch: one output node per time step */
    int outs_cap;
};

ur_rnn_config ur_rnn_defaults(ur_rnn_kind kind, int input_size, int hidden_size) {
    ur_rnn_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.input_size = input_size;
    c.hidden_size = hidden_size;
    c.num_layers = 1;
    c.merge = UR_RNN_MERGE_CONCAT;
    c.init = UR_RNN_INIT_UNIFORM;
    return c;
}

ur_rnn_config ur_rnn_defaults_cell(const ur_cell_def *cell, int input_size, int hidden_size) {
    ur_rnn_config c = ur_rnn_defaults(UR_RNN_TANH, input_size, hidden_size);
    c.cell = cell;
    return c;
}

const ur_cell_def *ur_rnn_config_cell(const ur_rnn_config *cfg) {
    if (!cfg) return NULL;
    return cfg->cell ? cfg->cell : ur_rnn_kind_cell(cfg->kind);
}

static ur_status check_config(const ur_rnn_config *c) {
    const char *fn = "ur_rnn_new";
    if (!c->cell && !ur_rnn_kind_cell(c->kind))
        return ur_set_error(UR_ERR_ARG, "%s: unknown cell kind %d", fn, (int)c->kind);
    if (!ur__cell_def_ok(ur_rnn_config_cell(c), fn)) return UR_ERR_ARG;
    if (c->input_size < 1 || c->hidden_size < 1)
        return ur_set_error(UR_ERR_ARG, "%s: input_size %d, hidden_size %d (must be >= 1)", fn, c->input_size,
                            c->hidden_size);
    if (c->num_layers < 1 || c->num_layers > UR_RNN_MAX_LAYERS)
        return ur_set_error(UR_ERR_ARG, "%s: num_layers %d (must be 1..%d)", fn, c->num_layers, UR_RNN_MAX_LAYERS);
    if (c->bidirectional != 0 && c->bidirectional != 1)
        return ur_set_error(UR_ERR_ARG, "%s: bidirectional is %d (must be 0 or 1)", fn, c->bidirectional);
    if (c->merge != UR_RNN_MERGE_CONCAT && c->merge != UR_RNN_MERGE_SUM)
        return ur_set_error(UR_ERR_ARG, "%s: unknown merge mode %d", fn, (int)c->merge);
    const double p[3] = {c->dropout, c->dropout_input, c->dropout_hidden};
    for (int i = 0; i < 3; i++)
        if (!(p[i] >= 0 && p[i] < 1))
            return ur_set_error(UR_ERR_ARG, "%s: dropout probability %g is outside [0, 1)", fn, p[i]);
    if (c->init != UR_RNN_INIT_UNIFORM && c->init != UR_RNN_INIT_ORTHOGONAL && c->init != UR_RNN_INIT_IDENTITY)
        return ur_set_error(UR_ERR_ARG, "%s: unknown init scheme %d", fn, (int)c->init);
    if (!isfinite(c->forget_bias)) return ur_set_error(UR_ERR_ARG, "%s: forget_bias is not finite", fn);
    if (c->residual != 0 && c->residual != 1)
        return ur_set_error(UR_ERR_ARG, "%s: residual is %d (must be 0 or 1)", fn, c->residual);
    return UR_OK;
}

/* Each (H, H) block of a recurrent weight (H, k*H) set to the identity (IRNN). */
static ur_status init_identity_blocks(ur_tensor *W) {
    int H = W->shape.dims[0], cols = W->shape.dims[1];
    if (cols == H) return ur_init_identity(W, 1.0);
    ur_init_constant(W, 0.0);
    for (int g = 0; g + H <= cols; g += H)
        for (int i = 0; i < H; i++) W->data[(size_t)i * cols + (size_t)g + i] = 1;
    return UR_OK;
}

/* One parameter by its role under the config's scheme (see ur_cell_role). */
static ur_status init_param(ur_tensor *w, ur_cell_role role, ur_rnn_init scheme, int H, ur_rng *rng) {
    if (scheme == UR_RNN_INIT_UNIFORM || role == UR_CELL_VECTOR) return ur_init_uniform(w, rng, 1.0 / sqrt((double)H));
    int recurrent_2d = role == UR_CELL_RECURRENT_WEIGHT && w->shape.ndim == 2 && w->shape.dims[0] == H &&
                       w->shape.dims[1] % H == 0;
    if (role == UR_CELL_BIAS) return ur_init_constant(w, 0.0);
    if (scheme == UR_RNN_INIT_ORTHOGONAL) /* each (H, H) block of a recurrent weight orthogonal */
        return recurrent_2d ? ur_init_orthogonal(w, rng, 1.0, w->shape.dims[1] / H)
                            : ur_init_xavier_uniform(w, rng, 1.0);
    return recurrent_2d ? init_identity_blocks(w) : ur_init_normal(w, rng, 0.0, 0.001);
}

/* forget_bias into the forget block of the first bias, 0 into that block of the others */
static ur_status init_forget_bias(ur_rnn_cell *c, double value) {
    int g = c->def->forget_block - 1, H = c->hidden_size, first = 1;
    for (int i = 0; i < c->def->n_params; i++) {
        if (c->def->params[i].role != UR_CELL_BIAS) continue;
        ur_tensor *b = &c->p[i]->value;
        if ((size_t)(g + 1) * H > b->size)
            return ur_set_error(UR_ERR_SHAPE, "ur_rnn_new: cell '%s': forget gate block %d is outside bias '%s'",
                                c->def->name, g, c->p[i]->name);
        for (int j = g * H; j < (g + 1) * H; j++) b->data[j] = (ur_real)(first ? value : 0.0);
        first = 0;
    }
    return UR_OK;
}

static ur_status init_cell(ur_rnn_cell *c, const ur_rnn_config *cfg, ur_rng *rng) {
    ur_status st = UR_OK;
    if (cfg->init == UR_RNN_INIT_UNIFORM) st = ur_rnn_cell_init_uniform(c, rng);
    for (int i = 0; i < c->def->n_params && st == UR_OK && cfg->init != UR_RNN_INIT_UNIFORM; i++)
        st = init_param(&c->p[i]->value, c->def->params[i].role, cfg->init, c->hidden_size, rng);
    if (st == UR_OK && c->def->forget_block > 0 && cfg->forget_bias != 0) st = init_forget_bias(c, cfg->forget_bias);
    return st;
}

ur_status ur__rnn_cell_init(ur_rnn_cell *c, const ur_rnn_config *cfg, ur_rng *rng) { return init_cell(c, cfg, rng); }

ur_rnn *ur_rnn_new(ur_paramset *ps, const char *prefix, const ur_rnn_config *cfg) {
    if (!ps || !cfg) return (void)ur_set_error(UR_ERR_ARG, "ur_rnn_new: paramset or config is NULL"), NULL;
    if (check_config(cfg) != UR_OK) return NULL;
    ur_rnn *r = ur_calloc(1, sizeof *r);
    if (!r) return (void)ur_set_error(UR_ERR_NOMEM, "ur_rnn_new: out of memory"), NULL;
    r->cfg = *cfg;
    r->D = cfg->bidirectional ? 2 : 1;
    ur_rng rng;
    ur_rng_seed(&rng, cfg->seed);
    for (int l = 0; l < cfg->num_layers; l++) {
        int in = l == 0 ? cfg->input_size : ur_rnn_output_size(r);
        for (int d = 0; d < r->D; d++) {
            char suffix[32];
            snprintf(suffix, sizeof suffix, "_l%d%s", l, d ? "_reverse" : "");
            ur_rnn_cell *c = &r->cells[l * r->D + d];
            if (ur_cell_make(c, ps, prefix, suffix, ur_rnn_config_cell(cfg), in, cfg->hidden_size) != UR_OK ||
                init_cell(c, cfg, &rng) != UR_OK) {
                ur_free(r);
                return NULL;
            }
        }
    }
    return r;
}

void ur_rnn_free(ur_rnn *r) {
    if (!r) return;
    ur_free(r->outs);
    ur_free(r);
}

const ur_rnn_config *ur_rnn_config_of(const ur_rnn *r) { return r ? &r->cfg : NULL; }
int ur_rnn_directions(const ur_rnn *r) { return r ? r->D : 0; }

int ur_rnn_output_size(const ur_rnn *r) {
    if (!r) return 0;
    return r->D == 2 && r->cfg.merge == UR_RNN_MERGE_CONCAT ? 2 * r->cfg.hidden_size : r->cfg.hidden_size;
}

ur_rnn_cell *ur_rnn_cell_at(ur_rnn *r, int layer, int direction) {
    if (!r || layer < 0 || layer >= r->cfg.num_layers || direction < 0 || direction >= r->D) return NULL;
    return &r->cells[layer * r->D + direction];
}

/* ---- forward ---- */

/* A seed for one dropout mask, from the step's seed and where the mask is used. */
static uint64_t mask_seed(uint64_t seed, int layer, int what) {
    uint64_t z = seed ^ ((uint64_t)(layer + 1) * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)(what + 1) << 56);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Dropout on a layer's input x (T*B, n): layer 0 uses dropout_input, the others
 * dropout. Variational: one (B, n) mask shared by every time step. */
static ur_node *input_dropout(const ur_rnn *r, ur_tape *t, ur_node *x, int layer, int T, int B,
                              const ur_rnn_args *a) {
    double p = layer == 0 ? r->cfg.dropout_input : r->cfg.dropout;
    if (!a->training || p <= 0) return x;
    if (!r->cfg.variational) return ur_dropout(t, x, (ur_real)p, mask_seed(a->seed, layer, 0));
    int n = ur_node_dim(x, 1);
    int md[2] = {B, n}, d3[3] = {T, B, n}, d2[2] = {T * B, n};
    ur_node *mask = ur_dropout_make_mask(t, 2, md, (ur_real)p, mask_seed(a->seed, layer, 1));
    return ur_reshape(t, ur_mul(t, ur_reshape(t, x, 3, d3), mask), 2, d2); /* (T,B,n) * (B,n) */
}

/* 1 if every mask value of step s is 1, 0 if every one is 0, -1 if mixed. */
static int mask_live(const ur_real *mask, int s, int B) {
    int ones = 0;
    for (int b = 0; b < B; b++) ones += mask[(size_t)s * B + b] != 0;
    return ones == B ? 1 : ones == 0 ? 0 : -1;
}

/* h = m * h_new + (1 - m) * h_old, m (B, 1): a finished sequence keeps its state. */
static ur_node *blend(ur_tape *t, ur_node *m, ur_node *keep, ur_node *h_new, ur_node *h_old) {
    return ur_add(t, ur_mul(t, m, h_new), ur_mul(t, keep, h_old));
}

static char *put_str(char *p, const char *s) {
    while (*s) *p++ = *s++;
    return p;
}

static char *put_uint(char *p, int v) {
    char d[12];
    int n = 0;
    do d[n++] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    while (n) *p++ = d[--n];
    return p;
}

/* A step's label on the tape: "t=3", or with several layers or directions "l1 rev t=3".
 * Written by hand: snprintf took 2% of a batch-1 step. buf: at least 48 chars. */
static void step_label(char *buf, int many, int layer, int dir, int step) {
    char *p = buf;
    if (many) {
        p = put_uint(put_str(p, "l"), layer);
        p = put_str(p, dir ? " rev " : " ");
    }
    *put_uint(put_str(p, "t="), step) = '\0';
}

/* One direction of one layer over the whole sequence: x (T*B, in) -> (T*B, H). */
static ur_node *run_direction(ur_rnn *r, ur_tape *t, int layer, int dir, ur_node *x, int T, int B,
                              const ur_rnn_args *a, ur_rnn_final *final) {
    int k = layer * r->D + dir, H = r->cfg.hidden_size;
    const ur_rnn_cell *cell = &r->cells[k];
    const ur_cell_def *def = cell->def;
    int bh[2] = {B, H}, b1[2] = {B, 1}, S = def->n_states;
    ur_cell_bound w;
    if (!ur__cell_bind(t, cell, def->project != NULL, &w, "rnn_forward")) return NULL;
    /* (T*B, P): every step's input projected at once, one big matmul */
    ur_node *gx = def->project ? def->project(t, &w, x) : x;
    if (!gx) return NULL;
    ur_node *hdrop = NULL; /* variational: the same (B, H) mask at every step */
    if (a->training && r->cfg.dropout_hidden > 0)
        hdrop = ur_dropout_make_mask(t, 2, bh, (ur_real)r->cfg.dropout_hidden, mask_seed(a->seed, layer, 2 + dir));
    ur_rnn_hc s;
    memset(&s, 0, sizeof s);
    for (int j = 0; j < S; j++) s.s[j] = a->s0[j][k] ? a->s0[j][k] : ur_zeros(t, 2, bh);
    int many = r->cfg.num_layers > 1 || r->D > 1;
    for (int i = 0; i < T && !ur_tape_error(t); i++) {
        int step = dir == 0 ? i : T - 1 - i;
        char label[48];
        step_label(label, many, layer, dir, step);
        ur_tape_begin_group(t, label);
        int live = a->mask ? mask_live(a->mask, step, B) : 1;
        if (live == 0) { /* every sequence has ended: the state is carried, the output is zero */
            r->outs[step] = ur_zeros(t, 2, bh);
        } else {
            ur_node *gx_t = ur_slice(t, gx, 0, step * B, B); /* (B, P), a view of gx's rows */
            ur_rnn_hc nw = gx_t ? ur__cell_run_step(t, &w, gx_t, s, hdrop) : s;
            if (live == 1) {
                s = nw;
                r->outs[step] = nw.h;
            } else {
                ur_node *m = ur_input_data(t, 2, b1, a->mask + (size_t)step * B), *keep = ur_one_minus(t, m);
                for (int j = 0; j < S; j++) s.s[j] = blend(t, m, keep, nw.s[j], s.s[j]);
                r->outs[step] = ur_mul(t, m, nw.h); /* zero at padded positions */
            }
        }
        ur_tape_end_group(t);
    }
    if (ur_tape_error(t)) return NULL;
    for (int j = 0; final && j < S; j++) final->s[j][k] = s.s[j];
    return ur_concat(t, T, r->outs, 0); /* (T*B, H) in time order */
}

/* Checks x, the mask and the initial states; grows the scratch space. */
static int check_inputs(ur_rnn *r, ur_tape *t, ur_node *x, const ur_rnn_args *a) {
    const char *fn = "rnn_forward";
    char buf[64];
    if (!x) return ur_tape_fail(t, UR_ERR_ARG, "%s: x is NULL", fn), 0;
    int T = ur_node_dim(x, 0), B = ur_node_dim(x, 1), H = r->cfg.hidden_size;
    if (ur_node_ndim(x) != 3 || ur_node_dim(x, 2) != r->cfg.input_size) {
        ur_tape_fail(t, UR_ERR_SHAPE, "%s: x must be (T, B, %d), got %s", fn, r->cfg.input_size,
                     ur_shape_str(ur_node_shape(x), buf, sizeof buf));
        return 0;
    }
    if (a->mask)
        for (size_t i = 0; i < (size_t)T * B; i++)
            if (a->mask[i] != 0 && a->mask[i] != 1) {
                ur_tape_fail(t, UR_ERR_ARG, "%s: mask[%zu] is %g (must be 0 or 1)", fn, i, (double)a->mask[i]);
                return 0;
            }
    int n = r->cfg.num_layers * r->D;
    for (int k = 0; k < n; k++) {
        for (int j = 0; j < UR_CELL_MAX_STATES; j++) {
            ur_node *st = a->s0[j][k];
            if (st && (ur_node_ndim(st) != 2 || ur_node_dim(st, 0) != B || ur_node_dim(st, 1) != H)) {
                ur_tape_fail(t, UR_ERR_SHAPE, "%s: %s[%d] must be (%d, %d), got %s", fn,
                             j == 0 ? "h0" : j == 1 ? "c0" : "s0", k, B, H,
                             ur_shape_str(ur_node_shape(st), buf, sizeof buf));
                return 0;
            }
        }
    }
    if (T > r->outs_cap) {
        ur_node **p = ur_realloc(r->outs, (size_t)r->outs_cap * sizeof *p, (size_t)T * sizeof *p);
        if (!p) return ur_tape_fail(t, UR_ERR_NOMEM, "%s: out of memory for %d steps", fn, T), 0;
        r->outs = p;
        r->outs_cap = T;
    }
    return 1;
}

ur_node *ur_rnn_forward(ur_rnn *r, ur_tape *t, ur_node *x, const ur_rnn_args *args, ur_rnn_final *final) {
    static const ur_rnn_args no_args;
    if (!t) return (void)ur_set_error(UR_ERR_ARG, "rnn_forward: tape is NULL"), NULL;
    if (final) memset(final, 0, sizeof *final);
    if (ur_tape_error(t)) return NULL;
    if (!r) return (void)ur_tape_fail(t, UR_ERR_ARG, "rnn_forward: network is NULL"), NULL;
    const ur_rnn_args *a = args ? args : &no_args;
    if (!check_inputs(r, t, x, a)) return NULL;
    int T = ur_node_dim(x, 0), B = ur_node_dim(x, 1);
    if (final) final->n = r->cfg.num_layers * r->D;
    int d2[2] = {T * B, r->cfg.input_size};
    ur_node *h = ur_reshape(t, x, 2, d2); /* (T*B, in): row t*B + b */
    for (int l = 0; l < r->cfg.num_layers && h; l++) {
        ur_node *in = h; /* (T*B, out) for l > 0: the residual skip, before dropout */
        h = input_dropout(r, t, h, l, T, B, a);
        ur_node *y[2] = {NULL, NULL};
        for (int d = 0; d < r->D; d++) y[d] = run_direction(r, t, l, d, h, T, B, a, final);
        if (r->D == 1) h = y[0];
        else if (r->cfg.merge == UR_RNN_MERGE_CONCAT) h = ur_concat(t, 2, y, 1); /* (T*B, 2H) */
        else h = ur_add(t, y[0], y[1]);                                          /* (T*B, H) */
        if (r->cfg.residual && l > 0) h = ur_add(t, h, in);
    }
    int d3[3] = {T, B, ur_rnn_output_size(r)};
    ur_node *out = ur_reshape(t, h, 3, d3);
    if (!out && final) memset(final, 0, sizeof *final);
    return out;
}
