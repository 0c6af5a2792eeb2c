/* unroll's RNN, GRU and LSTM layers against PyTorch's nn.RNN / nn.GRU / nn.LSTM:
 * tests/fixtures/torch_*.safetensors (made by make_torch_fixtures.py, committed, so
 * no PyTorch is needed here) hold each model's state dict, an input, a mask and
 * initial states, and PyTorch's outputs and final states. The weights are read by
 * ur_rnn_load_torch and every output must agree to TOL. test_torch_compat.c runs
 * the same tests in the float build. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "unroll.h"

#ifdef UR_DOUBLE
#define TOL 1e-12
#else
#define TOL 1e-5
#endif

static const char *const cases[] = {"rnn_tanh", "rnn_tanh_bi", "rnn_relu_bi", "gru", "gru_bi", "lstm", "lstm_bi"};
enum { N_CASES = sizeof cases / sizeof cases[0] };

static ur_ckpt *open_case(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/tests/fixtures/torch_%s.safetensors", UR_SOURCE_DIR, name);
    ur_ckpt *ck = ur_ckpt_open(path);
    cr_assert(ck, "%s", ur_last_error());
    return ck;
}

static ur_rnn_config config_of(ur_ckpt *ck) {
    const char *kind = ur_ckpt_meta(ck, "kind");
    cr_assert(kind);
    ur_rnn_kind k = !strcmp(kind, "lstm") ? UR_RNN_LSTM
                    : !strcmp(kind, "gru") ? UR_RNN_GRU
                    : !strcmp(kind, "rnn_relu") ? UR_RNN_RELU
                                                : UR_RNN_TANH;
    ur_rnn_config c = ur_rnn_defaults(k, atoi(ur_ckpt_meta(ck, "input_size")), atoi(ur_ckpt_meta(ck, "hidden_size")));
    c.num_layers = atoi(ur_ckpt_meta(ck, "num_layers"));
    c.bidirectional = atoi(ur_ckpt_meta(ck, "bidirectional"));
    return c;
}

static double max_diff(const ur_real *a, const ur_real *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - (double)b[i]));
    return m;
}

/* Runs one fixture; garbage != 0 fills the padded input steps with large values first. */
static void run_case(const char *name, int garbage) {
    ur_ckpt *ck = open_case(name);
    ur_rnn_config cfg = config_of(ck);
    ur_paramset *ps = ur_paramset_new();
    ur_rnn *r = ur_rnn_new(ps, "net", &cfg);
    cr_assert(r, "%s", ur_last_error());
    cr_assert_eq(ur_rnn_load_torch(r, ck, "rnn"), UR_OK, "%s: %s", name, ur_last_error());
    ur_tensor *x = ur_ckpt_get_new(ck, "x"), *mask = ur_ckpt_get_new(ck, "mask"), *y = ur_ckpt_get_new(ck, "y");
    ur_tensor *h0 = ur_ckpt_get_new(ck, "h0"), *hn = ur_ckpt_get_new(ck, "h_n");
    int lstm = cfg.kind == UR_RNN_LSTM;
    ur_tensor *c0 = lstm ? ur_ckpt_get_new(ck, "c0") : NULL, *cn = lstm ? ur_ckpt_get_new(ck, "c_n") : NULL;
    cr_assert(x && mask && y && h0 && hn && (!lstm || (c0 && cn)), "%s", ur_last_error());
    int B = x->shape.dims[1], H = cfg.hidden_size, in = cfg.input_size;
    int padded = 0;
    for (size_t i = 0; i < mask->size; i++) padded |= mask->data[i] == 0;
    if (garbage)
        for (size_t i = 0; i < mask->size; i++)
            if (mask->data[i] == 0)
                for (int j = 0; j < in; j++) x->data[i * in + j] = (ur_real)(1e4 * ((j + i) % 3) - 7e3);

    ur_tape *t = ur_tape_new();
    ur_rnn_args a;
    memset(&a, 0, sizeof a);
    a.mask = padded ? mask->data : NULL; /* unpadded cases take the path without a mask */
    int n = hn->shape.dims[0], bh[2] = {B, H};
    for (int k = 0; k < n; k++) {
        a.h0[k] = ur_input_data(t, 2, bh, h0->data + (size_t)k * B * H);
        if (lstm) a.c0[k] = ur_input_data(t, 2, bh, c0->data + (size_t)k * B * H);
    }
    ur_rnn_final f;
    ur_node *out = ur_rnn_forward(r, t, ur_input(t, x), &a, &f);
    cr_assert(out, "%s: %s", name, ur_tape_errmsg(t));
    cr_assert_eq(ur_node_size(out), y->size, "%s: output size", name);
    cr_expect(max_diff(ur_node_cdata(out), y->data, y->size) < TOL, "%s: outputs differ by %g", name,
              max_diff(ur_node_cdata(out), y->data, y->size));
    cr_assert_eq(f.n, n);
    for (int k = 0; k < n; k++) {
        double dh = max_diff(ur_node_cdata(f.h[k]), hn->data + (size_t)k * B * H, (size_t)B * H);
        cr_expect(dh < TOL, "%s: h_n[%d] differs by %g", name, k, dh);
        if (lstm) {
            double dc = max_diff(ur_node_cdata(f.c[k]), cn->data + (size_t)k * B * H, (size_t)B * H);
            cr_expect(dc < TOL, "%s: c_n[%d] differs by %g", name, k, dc);
        }
    }
    ur_tape_free(t);
    ur_tensor *all[] = {x, mask, y, h0, hn, c0, cn};
    for (int i = 0; i < 7; i++) ur_tensor_free(all[i]);
    ur_rnn_free(r);
    ur_paramset_free(ps);
    ur_ckpt_close(ck);
}

Test(torch_compat, outputs_and_final_states_match_pytorch) {
    for (int i = 0; i < N_CASES; i++) run_case(cases[i], 0);
}

Test(torch_compat, garbage_in_padding_is_ignored) {
    for (int i = 0; i < N_CASES; i++) run_case(cases[i], 1);
}

Test(torch_compat, loader_checks_names_and_shapes_first) {
    ur_ckpt *ck = open_case("lstm_bi");
    ur_paramset *ps = ur_paramset_new();
    ur_rnn_config c = config_of(ck);
    ur_rnn *r = ur_rnn_new(ps, "net", &c);
    cr_expect_eq(ur_rnn_load_torch(r, ck, "model"), UR_ERR_FORMAT);
    cr_expect(strstr(ur_last_error(), "'model.weight_ih_l0' is missing"), "%s", ur_last_error());
    ur_rnn_free(r);
    /* one layer too many: the first layers' tensors fit, the last is missing; nothing changes */
    c.num_layers = 3;
    r = ur_rnn_new(ps, "deep", &c);
    ur_param *w = ur_paramset_find(ps, "deep.weight_ih_l0");
    ur_real before = w->value.data[0];
    cr_expect_eq(ur_rnn_load_torch(r, ck, "rnn"), UR_ERR_FORMAT);
    cr_expect(w->value.data[0] == before, "a failed load changed a parameter");
    ur_rnn_free(r);
    /* another hidden size: a shape error naming the tensor */
    c.num_layers = 2;
    c.hidden_size = 5;
    r = ur_rnn_new(ps, "wide", &c);
    cr_expect_eq(ur_rnn_load_torch(r, ck, "rnn"), UR_ERR_SHAPE);
    cr_expect(strstr(ur_last_error(), "'rnn.weight_ih_l0' has shape (16, 3), expected (20, 3)"), "%s",
              ur_last_error());
    ur_rnn_free(r);
    /* PyTorch's GRU is the reset-after form */
    ur_rnn_config g = ur_rnn_defaults(UR_RNN_GRU_RESET_BEFORE, 3, 4);
    r = ur_rnn_new(ps, "g", &g);
    cr_expect_eq(ur_rnn_load_torch(r, ck, "rnn"), UR_ERR_ARG);
    ur_rnn_free(r);
    cr_expect_eq(ur_rnn_load_torch_file(NULL, "x", NULL), UR_ERR_ARG);
    ur_paramset_free(ps);
    ur_ckpt_close(ck);
}
