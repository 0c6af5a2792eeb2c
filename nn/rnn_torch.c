/* rnn_torch.c - reading the state dict of PyTorch's nn.RNN / nn.GRU / nn.LSTM.
 *
 * PyTorch stores weight_ih_lK as (G*H, in) and weight_hh_lK as (G*H, H), gate
 * blocks stacked by rows; unroll keeps their transposes, (in, G*H) and (H, G*H),
 * so that x W is one ur_linear. Gate order and biases are the same. */
#include "ur_rnn.h"

#include <stdio.h>
#include <string.h>

enum { N_TENSORS = 4 };
static const char *const bases[N_TENSORS] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};

/* a PyTorch cell's parameters 0..3 are weight_ih, weight_hh, bias_ih, bias_hh */
static ur_param *cell_param(const ur_rnn_cell *c, int i) { return c->p[i]; }

/* Copies src (rows, cols) transposed into dst (cols, rows); a 1-d bias is copied. */
static void copy_transposed(ur_tensor *dst, const ur_tensor *src) {
    if (src->shape.ndim == 1) {
        memcpy(dst->data, src->data, src->size * sizeof *src->data);
        return;
    }
    int rows = src->shape.dims[0], cols = src->shape.dims[1];
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) dst->data[(size_t)j * rows + i] = src->data[(size_t)i * cols + j];
}

ur_status ur_rnn_load_torch(ur_rnn *r, ur_ckpt *ck, const char *prefix) {
    const char *fn = "ur_rnn_load_torch";
    if (!r || !ck) return ur_set_error(UR_ERR_ARG, "%s: network or checkpoint is NULL", fn);
    const ur_rnn_config *cfg = ur_rnn_config_of(r);
    const ur_cell_def *def = ur_rnn_config_cell(cfg);
    if (!def->torch)
        return ur_set_error(UR_ERR_ARG, "%s: cell '%s' is not one of PyTorch's (rnn_tanh, rnn_relu, gru, lstm; "
                                        "PyTorch's GRU is the reset-after form)", fn, def->name);
    int D = ur_rnn_directions(r), n = cfg->num_layers * D;
    const char *pre = prefix && *prefix ? prefix : "", *dot = prefix && *prefix ? "." : "";
    char names[UR_RNN_MAX_STATES][N_TENSORS][128];
    int n_bias = 0;
    /* check every name and shape before changing anything */
    for (int k = 0; k < n; k++) {
        const ur_rnn_cell *c = ur_rnn_cell_at(r, k / D, k % D);
        for (int i = 0; i < N_TENSORS; i++) {
            char *name = names[k][i];
            snprintf(name, sizeof names[k][i], "%s%s%s_l%d%s", pre, dot, bases[i], k / D, k % D ? "_reverse" : "");
            if (!ur_ckpt_has(ck, name)) {
                if (i >= 2) continue; /* biases: see below */
                return ur_set_error(UR_ERR_FORMAT, "%s: tensor '%s' is missing", fn, name);
            }
            n_bias += i >= 2;
            ur_shape have, want = cell_param(c, i)->value.shape;
            if (want.ndim == 2) { /* PyTorch's layout is the transpose */
                int tmp = want.dims[0];
                want.dims[0] = want.dims[1];
                want.dims[1] = tmp;
            }
            ur_status st = ur_ckpt_shape(ck, name, &have);
            if (st != UR_OK) return st;
            if (!ur_shape_equal(&have, &want)) {
                char a[64], b[64];
                return ur_set_error(UR_ERR_SHAPE, "%s: tensor '%s' has shape %s, expected %s (a %s of %d layer(s))",
                                    fn, name, ur_shape_str(&have, a, sizeof a), ur_shape_str(&want, b, sizeof b),
                                    def->name, cfg->num_layers);
            }
        }
    }
    if (n_bias != 0 && n_bias != 2 * n)
        return ur_set_error(UR_ERR_FORMAT, "%s: only %d of the %d bias tensors are present", fn, n_bias, 2 * n);
    /* read everything, then copy: a failed read changes nothing */
    ur_tensor *tmp[UR_RNN_MAX_STATES][N_TENSORS];
    memset(tmp, 0, sizeof tmp);
    ur_status st = UR_OK;
    for (int k = 0; k < n && st == UR_OK; k++)
        for (int i = 0; i < N_TENSORS && st == UR_OK; i++)
            if ((i < 2 || n_bias) && !(tmp[k][i] = ur_ckpt_get_new(ck, names[k][i]))) st = UR_ERR_IO;
    if (st == UR_OK) {
        for (int k = 0; k < n; k++) {
            const ur_rnn_cell *c = ur_rnn_cell_at(r, k / D, k % D);
            for (int i = 0; i < N_TENSORS; i++) {
                ur_tensor *dst = &cell_param(c, i)->value;
                if (tmp[k][i]) copy_transposed(dst, tmp[k][i]);
                else ur_tensor_fill(dst, 0); /* bias=False */
            }
        }
    }
    for (int k = 0; k < n; k++)
        for (int i = 0; i < N_TENSORS; i++) ur_tensor_free(tmp[k][i]);
    return st; /* on failure ur_ckpt_get_new left the message */
}

ur_status ur_rnn_load_torch_file(ur_rnn *r, const char *path, const char *prefix) {
    if (!r || !path) return ur_set_error(UR_ERR_ARG, "ur_rnn_load_torch_file: network or path is NULL");
    ur_ckpt *ck = ur_ckpt_open(path);
    if (!ck) return UR_ERR_IO; /* ur_ckpt_open left the message */
    ur_status st = ur_rnn_load_torch(r, ck, prefix);
    ur_ckpt_close(ck);
    return st;
}
