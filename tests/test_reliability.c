/* test_reliability.c - the library under stress: saves killed at random moments,
 * hostile checkpoint files (each message names the file, the position and the
 * problem), bit-for-bit determinism (also across thread counts), degenerate sizes,
 * an allocation failure at every point of a training step and of the readers,
 * anomaly mode, and the regressions found by the fuzzers (tests/fuzz).
 * docs/reliability.md describes what is tested and how to run it. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support.h"
#include "ur_checkpoint.h"
#include "ur_data.h"
#include "ur_init.h"
#include "ur_kernels.h"
#include "ur_ops.h"
#include "ur_optim.h"
#include "ur_tape.h"

/* ======================= helpers ======================= */

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* Temporaries of a save to path: "PATH.tmp-PID-N" beside it. */
static int count_temporaries(const char *path) {
    char dir[512], prefix[300];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    cr_assert_not_null(slash);
    *slash = '\0';
    snprintf(prefix, sizeof prefix, "%s.tmp-", slash + 1);
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) n++;
    if (d) closedir(d);
    return n;
}

static ur_param *add_param(ur_paramset *ps, const char *name, int ndim, int d0, int d1) {
    int dims[2] = {d0, d1};
    ur_param *p = ur_paramset_add(ps, name, ndim, dims);
    cr_assert_not_null(p, "%s", ur_last_error());
    return p;
}

/* The message holds every piece of `want` (a NULL-terminated list). */
static void expect_message(const char *msg, const char *const *want) {
    for (int i = 0; want[i]; i++)
        cr_expect(strstr(msg, want[i]) != NULL, "expected '%s' in: %s", want[i], msg);
}

/* ======================= (a) saves killed at random moments ======================= */

/* A checkpoint of about 1 MB; version k has every element of w equal to k, of b
 * equal to -k, and metadata version = k, so a mixture of two versions shows. */
enum { KILL_ROUNDS = 50, KILL_W_ROWS = 512, KILL_W_COLS = 512 };

static ur_status save_version(const char *path, ur_paramset *ps, long k) {
    ur_tensor_fill(&ur_paramset_find(ps, "w")->value, (ur_real)k);
    ur_tensor_fill(&ur_paramset_find(ps, "b")->value, -(ur_real)k);
    char v[24];
    snprintf(v, sizeof v, "%ld", k);
    ur_ckpt_kv meta[] = {{"version", v}, {NULL, NULL}};
    return ur_ckpt_save(path, ps, NULL, 0, meta);
}

/* Loads path and checks it is one complete version; returns the version. */
static long load_version(const char *path, ur_paramset *ps) {
    ur_ckpt *ck = ur_ckpt_open(path);
    cr_assert_not_null(ck, "the checkpoint must always load: %s", ur_last_error());
    const char *v = ur_ckpt_meta(ck, "version");
    cr_assert_not_null(v, "metadata 'version' present");
    long k = strtol(v, NULL, 10);
    cr_assert_eq(ur_ckpt_read_params(ck, ps, 0), UR_OK, "%s", ur_last_error());
    ur_ckpt_close(ck);
    const ur_tensor *w = &ur_paramset_find(ps, "w")->value, *b = &ur_paramset_find(ps, "b")->value;
    for (size_t i = 0; i < w->size; i++)
        cr_assert_eq(w->data[i], (ur_real)k, "w[%zu] = %g in version %ld", i, (double)w->data[i], k);
    for (size_t i = 0; i < b->size; i++) cr_assert_eq(b->data[i], -(ur_real)k, "b[%zu] in version %ld", i, k);
    return k;
}

Test(reliability, save_survives_sigkill_at_random_moments, .timeout = 60) {
    char path[512];
    ur_test_tmp_path("killed.safetensors", path, sizeof path);
    ur_paramset *ps = ur_paramset_new();
    add_param(ps, "w", 2, KILL_W_ROWS, KILL_W_COLS);
    add_param(ps, "b", 1, 1000, 1);
    cr_assert_eq(save_version(path, ps, 0), UR_OK, "%s", ur_last_error());
    ur_rng r;
    ur_rng_seed(&r, 2024);
    long last = 0;
    int rounds = 0, mid_save = 0, advanced = 0;
    double start = now_seconds();
    for (; rounds < KILL_ROUNDS && now_seconds() - start < 8.0; rounds++) {
        long base = 1000L * (rounds + 1);
        pid_t pid = fork();
        cr_assert_neq(pid, -1, "fork");
        if (pid == 0) { /* the child saves newer versions until it is killed */
            for (long k = base;; k++)
                if (save_version(path, ps, k) != UR_OK) _exit(3);
        }
        sleep_us((long)ur_rng_below(&r, 25000));
        kill(pid, SIGKILL);
        int status = 0;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "the child ended by itself (a save failed?), status %d", status);
        int temps = count_temporaries(path);
        cr_assert_leq(temps, 1, "round %d: %d temporary files (only the killed save's may remain)", rounds,
                      temps);
        mid_save += temps;
        long k = load_version(path, ps);
        cr_assert_geq(k, last, "round %d: version %ld after version %ld", rounds, k, last);
        cr_assert(k == last || (k >= base && k < base + 1000), "round %d: version %ld", rounds, k);
        advanced += k != last;
        last = k;
    }
    cr_log_info("kill test: %d rounds in %.2f s, %d killed during a save, %d saw a newer version", rounds,
                now_seconds() - start, mid_save, advanced);
    cr_expect_geq(rounds, 10, "at least 10 rounds within the time bound");
    /* the next save removes what the killed ones left */
    cr_assert_eq(save_version(path, ps, last + 1), UR_OK, "%s", ur_last_error());
    cr_expect_eq(count_temporaries(path), 0, "stale temporaries are removed by the next save");
    cr_expect_eq(load_version(path, ps), last + 1);
    ur_paramset_free(ps);
    unlink(path);
}

/* ======================= (b) hostile checkpoint files ======================= */

/* A valid file: w (3, 4) then b (4), F32; returns its bytes. */
static uint8_t *valid_image(const char *path, size_t *n, ur_paramset **ps_out) {
    ur_paramset *ps = ur_paramset_new();
    ur_param *w = add_param(ps, "w", 2, 3, 4), *b = add_param(ps, "b", 1, 4, 1);
    for (int i = 0; i < 12; i++) w->value.data[i] = (ur_real)i;
    for (int i = 0; i < 4; i++) b->value.data[i] = (ur_real)-i;
    cr_assert_eq(ur_ckpt_save(path, ps, NULL, 0, NULL), UR_OK, "%s", ur_last_error());
    *ps_out = ps;
    uint8_t *img = (uint8_t *)ur_test_read_file(path, n);
    cr_assert_not_null(img, "cannot read %s", path);
    return img;
}

/* File offset of the record of tensor `name` in the image's header. */
static size_t record_offset(const uint8_t *img, size_t n, const char *name) {
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\":", name);
    for (size_t i = 8; i + strlen(quoted) <= n; i++)
        if (memcmp(img + i, quoted, strlen(quoted)) == 0) return i;
    cr_assert_fail("no record of %s", name);
    return 0;
}

static void open_fails(const char *path, const char *const *want) {
    ur_ckpt *ck = ur_ckpt_open(path);
    cr_expect_null(ck, "opening %s should fail", path);
    ur_ckpt_close(ck);
    expect_message(ur_last_error(), want);
}

/* Opening `path` fails with a message holding the path and every argument. */
#define OPEN_FAILS(...) open_fails(path, (const char *[]){path, __VA_ARGS__, NULL})
/* The last message holds every argument. */
#define MESSAGE_HOLDS(...) expect_message(ur_last_error(), (const char *[]){__VA_ARGS__, NULL})

Test(reliability, bad_files_name_file_position_problem) {
    char path[512], at[64], at_w[64], at_b[64];
    ur_test_tmp_path("hostile.safetensors", path, sizeof path);
    size_t n;
    ur_paramset *ps;
    uint8_t *img = valid_image(path, &n, &ps);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | img[i];
    snprintf(at_w, sizeof at_w, "offset %zu: ", record_offset(img, n, "w"));
    snprintf(at_b, sizeof at_b, "offset %zu: ", record_offset(img, n, "b"));

    /* truncated inside the data area: the last tensor's bytes are missing */
    ur_test_write_file(path, img, n - 5);
    char problem[160];
    snprintf(problem, sizeof problem,
             "tensor 'b' has data_offsets [48, 64] beyond the end of the %llu-byte data area "
             "(truncated file?)",
             (unsigned long long)(n - 5 - 8 - hlen));
    OPEN_FAILS(at_b, problem);

    /* truncated inside the header, and inside the length prefix */
    ur_test_write_file(path, img, 8 + hlen / 2);
    snprintf(problem, sizeof problem,
             "offset 0: header length %llu exceeds the %llu bytes after the length prefix (truncated file?)",
             (unsigned long long)hlen, (unsigned long long)(hlen / 2));
    OPEN_FAILS(problem);
    ur_test_write_file(path, img, 5);
    OPEN_FAILS("offset 0: the file has 5 bytes, fewer than the 8-byte header length");

    /* a header length over the limit */
    uint8_t huge[16] = {0, 0, 0, 0, 0, 1, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    ur_test_write_file(path, huge, sizeof huge);
    OPEN_FAILS("offset 0: header length 1099511627776 exceeds the limit of 100000000 bytes");

    /* a header claiming more data than the file holds */
    const char *h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1024],\"data_offsets\":[0,4096]}}    ";
    uint8_t more[8 + 64 + 48] = {0};
    more[0] = (uint8_t)strlen(h);
    memcpy(more + 8, h, strlen(h));
    ur_test_write_file(path, more, 8 + strlen(h) + 48);
    OPEN_FAILS("offset 9: tensor 'w' has data_offsets [0, 4096] beyond the end of the 48-byte data area");

    /* malformed JSON: the offset is that of the offending byte */
    uint8_t *bad = calloc(n + 512, 1); /* also holds the random files below */
    memcpy(bad, img, n);
    size_t colon = record_offset(img, n, "w") + 3;
    bad[colon] = ';';
    ur_test_write_file(path, bad, n);
    snprintf(at, sizeof at, "offset %zu: expected ':' after a tensor name, found ';'", colon);
    OPEN_FAILS(at);

    /* wrong dtype: "F32" of w becomes "I32" (same length, offsets stay valid) */
    memcpy(bad, img, n);
    char *dt = strstr((char *)bad + 8, "\"F32\"");
    cr_assert_not_null(dt);
    dt[1] = 'I';
    ur_test_write_file(path, bad, n);
    cr_expect_eq(ur_ckpt_load_params(path, ps, 0), UR_ERR_FORMAT);
    MESSAGE_HOLDS("checkpoint ", path, at_w, "tensor 'w' has dtype I32; only F32 and F64 can be read");

    /* a shape that does not fit the parameter */
    ur_test_write_file(path, img, n);
    ur_paramset *other = ur_paramset_new();
    add_param(other, "w", 2, 4, 3);
    add_param(other, "b", 1, 4, 1);
    cr_expect_eq(ur_ckpt_load_params(path, other, 0), UR_ERR_SHAPE);
    MESSAGE_HOLDS("checkpoint ", path, at_w, "tensor 'w' has shape (3, 4), parameter expects (4, 3)");
    cr_expect_eq(ur_paramset_find(other, "b")->value.data[3], 0, "nothing is changed when a check fails");

    /* random bytes: with a random length prefix, and with a plausible one */
    ur_rng r;
    ur_rng_seed(&r, 77);
    for (int round = 0; round < 200; round++) {
        size_t len = 1 + ur_rng_below(&r, 300);
        for (size_t i = 0; i < len; i++) bad[i] = (uint8_t)ur_rng_next(&r);
        if ((round & 1) && len > 8) {
            uint64_t claim = ur_rng_below(&r, (uint32_t)(len - 7));
            for (int k = 0; k < 8; k++) bad[k] = (uint8_t)(claim >> (8 * k));
        }
        ur_test_write_file(path, bad, len);
        ur_ckpt *ck = ur_ckpt_open(path);
        cr_assert_null(ck, "random bytes opened as a checkpoint (round %d)", round);
        const char *msg = ur_last_error(), *off = strstr(msg, ": offset ");
        cr_assert(strstr(msg, path) && off, "round %d: '%s: offset N: problem' expected, got %s", round, path,
                  msg);
        unsigned long long pos = strtoull(off + 9, NULL, 10);
        cr_assert_leq(pos, len, "round %d: position %llu beyond the %zu-byte file: %s", round, pos, len, msg);
        const char *problem_text = strstr(off + 9, ": ");
        cr_assert(problem_text && strlen(problem_text) > 10, "round %d: a problem is named: %s", round, msg);
    }
    free(bad);
    free(img);
    ur_paramset_free(ps);
    ur_paramset_free(other);
    unlink(path);
}

/* ======================= (c) determinism ======================= */

/* A small language model over 3 time steps: embedding, LSTM (tied over time), a
 * wide tanh layer and a softmax output; Adam. Sizes are chosen so that with 2
 * threads every parallel path runs: the matmuls exceed the GEMM threshold, the
 * (64, 2048) tanh the vector threshold and W1 and W2 the optimizer's. */
enum { DV = 256, DD = 64, DH = 64, DF = 2048, DN = 64, DT = 3, DSTEPS = 4 };

typedef struct det_model {
    ur_paramset *ps;
    ur_param *E, *Wx, *bx, *Wh, *W1, *b1, *W2, *b2;
    int ids[DT][DN], targets[DN];
} det_model;

static void det_model_make(det_model *m, uint64_t seed) {
    ur_rng r;
    ur_rng_seed(&r, seed);
    m->ps = ur_paramset_new();
    m->E = add_param(m->ps, "E", 2, DV, DD);
    m->Wx = add_param(m->ps, "Wx", 2, DD, 4 * DH);
    m->bx = add_param(m->ps, "bx", 1, 4 * DH, 1);
    m->Wh = add_param(m->ps, "Wh", 2, DH, 4 * DH);
    m->W1 = add_param(m->ps, "W1", 2, DH, DF);
    m->b1 = add_param(m->ps, "b1", 1, DF, 1);
    m->W2 = add_param(m->ps, "W2", 2, DF, DV);
    m->b2 = add_param(m->ps, "b2", 1, DV, 1);
    for (int i = 0; i < ur_paramset_count(m->ps); i++)
        cr_assert_eq(ur_init_uniform(&ur_paramset_get(m->ps, i)->value, &r, 0.2), UR_OK);
    for (int t = 0; t < DT; t++)
        for (int n = 0; n < DN; n++) m->ids[t][n] = (int)ur_rng_below(&r, DV);
    for (int n = 0; n < DN; n++) m->targets[n] = (int)ur_rng_below(&r, DV);
}

static ur_node *det_loss(ur_tape *t, det_model *m) {
    int hd[2] = {DN, DH};
    ur_node *h = ur_zeros(t, 2, hd), *c = ur_zeros(t, 2, hd);
    for (int s = 0; s < DT; s++) {
        ur_node *x = ur_gather(t, ur_param_node(t, m->E), m->ids[s], DN);
        ur_node *gates = ur_add(t, ur_linear(t, x, ur_param_node(t, m->Wx), ur_param_node(t, m->bx)),
                                ur_matmul(t, h, ur_param_node(t, m->Wh), 0, 0));
        c = ur_lstm_cell(t, gates, c);
        h = ur_lstm_hidden(t, gates, c);
    }
    ur_node *z = ur_tanh(t, ur_linear(t, h, ur_param_node(t, m->W1), ur_param_node(t, m->b1)));
    ur_node *logits = ur_linear(t, z, ur_param_node(t, m->W2), ur_param_node(t, m->b2));
    return ur_cross_entropy(t, logits, m->targets, NULL);
}

/* Trains DSTEPS steps with the given thread count; the losses go to losses[] and
 * the trained model stays in *m. */
static void det_train(det_model *m, uint64_t seed, int threads, ur_real *losses) {
    ur_set_num_threads(threads);
    det_model_make(m, seed);
    ur_optim_config cfg = ur_optim_defaults(UR_OPTIM_ADAM, 1e-2);
    ur_optim *opt = ur_optim_new(m->ps, &cfg);
    ur_tape *t = ur_tape_new();
    cr_assert(opt && t);
    for (int s = 0; s < DSTEPS; s++) {
        ur_tape_reset(t);
        ur_optim_zero_grad(opt);
        ur_node *loss = det_loss(t, m);
        cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
        losses[s] = ur_node_item(loss);
        cr_assert_eq(ur_optim_step(opt), UR_OK, "%s", ur_last_error());
    }
    ur_tape_free(t);
    ur_optim_free(opt);
    ur_set_num_threads(0);
}

static void expect_identical(const det_model *a, const ur_real *la, const det_model *b, const ur_real *lb,
                             const char *what) {
    for (int s = 0; s < DSTEPS; s++)
        cr_expect_eq(memcmp(&la[s], &lb[s], sizeof(ur_real)), 0, "%s: loss of step %d: %.9g vs %.9g", what, s,
                     (double)la[s], (double)lb[s]);
    for (int i = 0; i < ur_paramset_count(a->ps); i++) {
        const ur_param *p = ur_paramset_get(a->ps, i), *q = ur_paramset_get(b->ps, i);
        cr_expect_eq(memcmp(p->value.data, q->value.data, p->value.size * sizeof(ur_real)), 0,
                     "%s: parameter %s differs after training", what, p->name);
    }
}

/* The fused gate ops of LSTM and GRU split their rows over threads from 2048
 * elements on: values and gradients must not depend on it. B x H = 48 x 96, with
 * and without kept activations (STORE_MAX in ops_rnn.c: 4608 values are kept, a
 * state of 96 x 192 is recomputed). Returns every value and gradient, malloc'ed. */
static ur_real *gate_ops_run(int threads, int B, int H, size_t *n) {
    ur_set_num_threads(threads);
    ur_paramset *ps = ur_paramset_new();
    ur_param *g4 = add_param(ps, "g4", 2, B, 4 * H), *c0 = add_param(ps, "c0", 2, B, H);
    ur_param *gx = add_param(ps, "gx", 2, B, 3 * H), *gh = add_param(ps, "gh", 2, B, 3 * H);
    ur_rng r;
    ur_rng_seed(&r, 5);
    for (int i = 0; i < ur_paramset_count(ps); i++)
        cr_assert_eq(ur_init_uniform(&ur_paramset_get(ps, i)->value, &r, 2.0), UR_OK);
    ur_tape *t = ur_tape_new();
    ur_node *c = ur_lstm_cell(t, ur_param_node(t, g4), ur_param_node(t, c0));
    ur_node *h = ur_lstm_hidden(t, ur_param_node(t, g4), c);
    ur_node *hg = ur_gru_hidden(t, ur_param_node(t, gx), ur_param_node(t, gh), h);
    /* a loss that weighs every element differently */
    ur_node *w = ur_input_data(t, 2, (int[]){B, H}, gh->value.data);
    ur_node *loss = ur_sum(t, ur_mul(t, ur_add(t, hg, c), w));
    cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
    const ur_node *outs[3] = {c, h, hg};
    *n = 3 * (size_t)B * H;
    for (int i = 0; i < ur_paramset_count(ps); i++) *n += ur_paramset_get(ps, i)->grad.size;
    ur_real *v = malloc(*n * sizeof *v), *at = v;
    cr_assert_not_null(v);
    for (int k = 0; k < 3; k++) {
        memcpy(at, ur_node_cdata(outs[k]), (size_t)B * H * sizeof *v);
        at += (size_t)B * H;
    }
    for (int i = 0; i < ur_paramset_count(ps); i++) {
        const ur_tensor *g = &ur_paramset_get(ps, i)->grad;
        memcpy(at, g->data, g->size * sizeof *v);
        at += g->size;
    }
    ur_tape_free(t);
    ur_paramset_free(ps);
    ur_set_num_threads(0);
    return v;
}

Test(reliability, gate_ops_same_bits_any_thread_count) {
    setenv("UR_GEMM_STALL_GUARD", "0", 1); /* really use the threads, even on a busy machine */
    static const int SIZES[2][2] = {{48, 96}, {96, 192}};
    for (int k = 0; k < 2; k++) {
        int B = SIZES[k][0], H = SIZES[k][1];
        size_t n1, n;
        ur_real *one = gate_ops_run(1, B, H, &n1);
        for (int threads = 2; threads <= 3; threads++) {
            ur_real *many = gate_ops_run(threads, B, H, &n);
            cr_assert_eq(n, n1);
            size_t diff = 0;
            for (size_t i = 0; i < n; i++) diff += memcmp(&one[i], &many[i], sizeof(ur_real)) != 0;
            cr_expect_eq(diff, 0, "B %d, H %d: %zu of %zu values differ between 1 and %d threads", B, H, diff, n,
                         threads);
            free(many);
        }
        free(one);
    }
}

Test(reliability, same_seed_same_bits_any_thread_count, .timeout = 120) {
    setenv("UR_GEMM_STALL_GUARD", "0", 1);
    det_model a, b, c, d;
    ur_real la[DSTEPS], lb[DSTEPS], lc[DSTEPS], ld[DSTEPS];
    det_train(&a, 11, 1, la);
    det_train(&b, 11, 1, lb);
    det_train(&c, 11, 2, lc);
    det_train(&d, 12, 2, ld);
    cr_expect(la[DSTEPS - 1] < la[0], "the model learns (%g -> %g)", (double)la[0], (double)la[DSTEPS - 1]);
    expect_identical(&a, la, &b, lb, "same seed, run twice");
    expect_identical(&a, la, &c, lc, "1 thread vs 2 threads");
    cr_expect_neq(memcmp(la, ld, sizeof la), 0, "another seed gives other losses");
    ur_paramset_free(a.ps);
    ur_paramset_free(b.ps);
    ur_paramset_free(c.ps);
    ur_paramset_free(d.ps);
}

/* ======================= (d) limits ======================= */

Test(reliability, zero_length_sequences_and_empty_batches) {
    /* two sequences of length 0 pad to one step that is all padding */
    int s0[1] = {0};
    const int *seqs[2] = {s0, s0};
    int lens[2] = {0, 0};
    ur_padded *p = NULL;
    cr_assert_eq(ur_batch_pad(seqs, lens, NULL, 2, 0, 7, &p), UR_OK, "%s", ur_last_error());
    cr_expect(p->T == 1 && p->B == 2 && p->lens[0] == 0 && p->lens[1] == 0);
    cr_expect(p->ids[0] == 7 && p->mask[0] == 0 && p->mask[1] == 0);
    /* a loss over nothing but padding is 0 and sends no gradient */
    ur_paramset *ps = ur_paramset_new();
    ur_param *logits = add_param(ps, "logits", 2, 2, 5);
    for (int i = 0; i < 10; i++) logits->value.data[i] = (ur_real)i;
    ur_tape *t = ur_tape_new();
    ur_node *loss = ur_cross_entropy(t, ur_param_node(t, logits), p->ids, p->mask);
    cr_assert_not_null(loss, "%s", ur_tape_errmsg(t));
    cr_expect_eq(ur_node_item(loss), 0);
    cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
    for (int i = 0; i < 10; i++) cr_expect_eq(logits->grad.data[i], 0);
    ur_padded_free(p);
    /* no sequences at all */
    cr_expect_eq(ur_batch_pad(seqs, lens, NULL, 0, 0, 0, &p), UR_ERR_ARG);
    cr_expect_null(p);
    ur_rng r;
    ur_rng_seed(&r, 1);
    ur_batches *bs = NULL;
    cr_assert_eq(ur_bucket_batches(lens, 0, 4, &r, &bs), UR_OK, "%s", ur_last_error());
    cr_expect(bs->n_batches == 0 && bs->n == 0 && bs->offset[0] == 0);
    ur_batches_free(bs);
    /* empty inputs to every reader */
    ur_tokens *tk = NULL;
    cr_assert_eq(ur_tokenize("", 0, &tk), UR_OK);
    cr_expect_eq(tk->n, 0);
    ur_tokens_free(tk);
    ur_pairs *pr = NULL;
    cr_assert_eq(ur_pairs_parse("", 0, "empty", &pr), UR_OK);
    cr_expect_eq(pr->n, 0);
    ur_pairs_free(pr);
    ur_conllu *cu = NULL;
    cr_assert_eq(ur_conllu_parse("\n\n", 2, "empty", &cu), UR_OK);
    cr_expect(cu->n_sentences == 0 && cu->n_tokens == 0);
    ur_conllu_free(cu);
    ur_treebank *tb = NULL;
    cr_assert_eq(ur_treebank_parse("", 0, "empty", -1, 0, &tb), UR_OK);
    cr_expect_eq(tb->n_trees, 0);
    ur_treebank_free(tb);
    ur_text text = {"", 0};
    ur_char_corpus *cc = NULL;
    cr_expect_eq(ur_char_corpus_make(&text, 0.9, &cc), UR_ERR_ARG);
    char path[512];
    ur_test_tmp_path("empty.txt", path, sizeof path);
    ur_test_write_file(path, "", 0);
    ur_text *tx = NULL;
    cr_expect_eq(ur_text_read_file(path, 0, &tx), UR_ERR_FORMAT);
    cr_expect(strstr(ur_last_error(), path) && strstr(ur_last_error(), "is empty"), "%s", ur_last_error());
    unlink(path);
    ur_tape_free(t);
    ur_paramset_free(ps);
}

Test(reliability, vocabulary_of_one) {
    ur_vocab *counts = ur_vocab_new(0);
    for (int i = 0; i < 3; i++) cr_assert_eq(ur_vocab_add(counts, "only"), 0);
    ur_vocab *v = NULL;
    cr_assert_eq(ur_vocab_build(counts, 1, 0, &v), UR_OK);
    cr_expect(ur_vocab_size(v) == 1 && ur_vocab_count(v, 0) == 3);
    cr_expect_eq(ur_vocab_id(v, "other"), -1, "no UNK: an unknown word has no id");
    ur_text text = {"aaaa", 4};
    ur_char_corpus *cc = NULL;
    cr_assert_eq(ur_char_corpus_make(&text, 0.5, &cc), UR_OK);
    cr_expect(cc->cs.size == 1 && cc->ids[3] == 0 && cc->n_train == 2);
    ur_char_corpus_free(cc);
    /* a one-class model trains: the loss is 0 and so is every gradient */
    ur_paramset *ps = ur_paramset_new();
    ur_param *E = add_param(ps, "E", 2, 1, 4), *W = add_param(ps, "W", 2, 4, 1);
    ur_rng r;
    ur_rng_seed(&r, 3);
    ur_init_uniform(&E->value, &r, 1);
    ur_init_uniform(&W->value, &r, 1);
    ur_optim_config cfg = ur_optim_defaults(UR_OPTIM_ADAM, 0.1);
    ur_optim *opt = ur_optim_new(ps, &cfg);
    ur_tape *t = ur_tape_new();
    int ids[3] = {0, 0, 0};
    ur_node *logits = ur_matmul(t, ur_gather(t, ur_param_node(t, E), ids, 3), ur_param_node(t, W), 0, 0);
    ur_node *loss = ur_cross_entropy(t, logits, ids, NULL);
    cr_assert_not_null(loss, "%s", ur_tape_errmsg(t));
    cr_expect_eq(ur_node_item(loss), 0);
    cr_assert_eq(ur_backward(t, loss), UR_OK);
    cr_expect_eq(ur_grad_norm(ps), 0);
    cr_expect_eq(ur_optim_step(opt), UR_OK);
    ur_node *sm = ur_softmax(t, logits);
    cr_expect(sm && ur_node_cdata(sm)[0] == 1);
    ur_tape_free(t);
    ur_optim_free(opt);
    ur_paramset_free(ps);
    ur_vocab_free(v);
    ur_vocab_free(counts);
}

/* An allocator with 1 GB of memory per request. */
static void *small_malloc(size_t size, void *user) {
    (void)user;
    return size > ((size_t)1 << 30) ? NULL : malloc(size);
}

static void plain_free(void *p, void *user) {
    (void)user;
    free(p);
}

Test(reliability, dimensions_whose_product_overflows) {
    int big[4] = {65536, 65536, 65536, 65536};
    cr_expect_null(ur_tensor_new(4, big));
    cr_expect(strstr(ur_last_error(), "overflows") != NULL, "%s", ur_last_error());
    ur_paramset *ps = ur_paramset_new();
    cr_expect_null(ur_paramset_add(ps, "huge", 4, big));
    cr_expect(strstr(ur_last_error(), "overflows") != NULL, "%s", ur_last_error());
    cr_expect_eq(ur_paramset_count(ps), 0);
    ur_tape *t = ur_tape_new();
    cr_expect_null(ur_zeros(t, 4, big));
    cr_expect_eq(ur_tape_error(t), UR_ERR_SHAPE, "%s", ur_tape_errmsg(t));
    ur_tape_reset(t);
    /* a reshape whose -1 would need a huge dimension, and one past INT_MAX */
    int d3[1] = {6}, bad[3] = {-1, 65536, 65536}, two[2] = {4, 3};
    cr_expect_null(ur_reshape(t, ur_zeros(t, 1, d3), 3, bad));
    cr_expect_neq(ur_tape_error(t), UR_OK);
    ur_tape_reset(t);
    cr_expect_null(ur_reshape(t, ur_zeros(t, 1, d3), 2, two));
    cr_expect_eq(ur_tape_error(t), UR_ERR_SHAPE, "%s", ur_tape_errmsg(t));
    /* as large as a shape allows, but more memory than exists: NULL, not a crash
     * (the hook refuses what malloc would; ASan would abort instead of failing) */
    ur_set_allocator(small_malloc, plain_free, NULL);
    ur_tensor *x = ur_tensor_new_2d(1 << 30, 1 << 30);
    cr_expect_null(x);
    cr_expect_eq(strcmp(ur_last_error(), "") != 0, 1, "a message is left");
    ur_tape_reset(t);
    ur_node *z = ur_zeros(t, 2, (int[]){1 << 30, 1 << 30});
    ur_set_allocator(NULL, NULL, NULL);
    cr_expect_null(z);
    cr_expect_eq(ur_tape_error(t), UR_ERR_NOMEM, "%s", ur_tape_errmsg(t));
    ur_tape_free(t);
    ur_paramset_free(ps);
}

/* ---- allocation failures: the Nth allocation fails, for every N ---- */

typedef struct fail_alloc {
    long count;   /* allocations attempted */
    long fail_at; /* this one returns NULL (0: none) */
    int and_later; /* 1: every allocation from fail_at on fails */
    long live;    /* allocated and not yet freed */
} fail_alloc;

static fail_alloc fa;

static void *fail_nth_malloc(size_t size, void *user) {
    (void)user;
    ++fa.count;
    if (fa.count == fa.fail_at || (fa.and_later && fa.fail_at > 0 && fa.count > fa.fail_at)) return NULL;
    void *p = malloc(size);
    if (p) fa.live++;
    return p;
}

static void counting_free(void *p, void *user) {
    (void)user;
    fa.live--;
    free(p);
}

/* Runs scenario with the Nth allocation failing, for N = 1, 2, ... until it
 * succeeds with no failure injected; with and_later, allocation N and every later
 * one fail (the memory stays exhausted). Every failed run must report
 * UR_ERR_NOMEM with an "out of memory" message and free everything it allocated.
 * Returns the number of allocations of a full run. */
static long sweep_allocation_failures(ur_status (*scenario)(void), const char *name, int and_later) {
    ur_kernel_free_buffers(); /* allocated before the hook: not counted */
    ur_set_num_threads(1);    /* the same allocation order every run */
    long total = -1;
    for (long n = 1; total < 0 || n <= total + 1; n++) {
        fa = (fail_alloc){0, n, and_later, 0};
        ur_set_allocator(fail_nth_malloc, counting_free, NULL);
        ur_status st = scenario();
        ur_kernel_free_buffers();
        ur_set_allocator(NULL, NULL, NULL);
        cr_assert_eq(fa.live, 0, "%s, allocation %ld failing: %ld blocks leaked", name, n, fa.live);
        if (fa.count < n) { /* nothing failed: a full run */
            cr_assert_eq(st, UR_OK, "%s without a failure: %s", name, ur_last_error());
            if (total < 0) total = fa.count;
            break;
        }
        /* the kernels fall back to unbuffered code when a packing buffer is missing */
        cr_assert(st == UR_OK || st == UR_ERR_NOMEM, "%s, allocation %ld failing: %s: %s", name, n,
                  ur_status_name(st), ur_last_error());
        if (st == UR_ERR_NOMEM)
            cr_assert(strstr(ur_last_error(), "out of memory") != NULL, "%s, allocation %ld: %s", name, n,
                      ur_last_error());
    }
    ur_set_num_threads(0);
    cr_assert_gt(total, 10, "%s: the sweep saw the allocations", name);
    return total;
}

/* The first error of a scenario is kept; later steps are skipped. */
#define STEP(call)                              \
    do {                                        \
        if (st == UR_OK) {                      \
            ur_status s_ = (call);              \
            if (s_ != UR_OK) st = s_;           \
        }                                       \
    } while (0)

static char sweep_path[512];

/* A whole training step from nothing: model, optimizer, forward, backward,
 * update, a training checkpoint saved and loaded back, and teardown. */
static ur_status training_step_scenario(void) {
    ur_status st = UR_OK;
    ur_paramset *ps = ur_paramset_new();
    ur_tape *t = ur_tape_new();
    ur_optim *opt = NULL;
    ur_param *E = NULL, *W = NULL, *b = NULL, *Wh = NULL;
    if (!ps || !t) st = UR_ERR_NOMEM;
    int ed[2] = {10, 8}, wd[2] = {8, 16}, bd[1] = {16}, hd[2] = {4, 16};
    if (st == UR_OK && (!(E = ur_paramset_add(ps, "E", 2, ed)) || !(W = ur_paramset_add(ps, "W", 2, wd)) ||
                        !(b = ur_paramset_add(ps, "b", 1, bd)) || !(Wh = ur_paramset_add(ps, "Wh", 2, hd))))
        st = UR_ERR_NOMEM;
    ur_rng r;
    ur_rng_seed(&r, 5);
    for (int i = 0; st == UR_OK && i < ur_paramset_count(ps); i++)
        STEP(ur_init_uniform(&ur_paramset_get(ps, i)->value, &r, 0.3));
    if (st == UR_OK) {
        ur_optim_config cfg = ur_optim_defaults(UR_OPTIM_ADAM, 0.01);
        if (!(opt = ur_optim_new(ps, &cfg))) st = UR_ERR_NOMEM;
    }
    for (int step = 0; step < 2 && st == UR_OK; step++) {
        ur_tape_reset(t);
        ur_optim_zero_grad(opt);
        int ids[4] = {1, 2, 3, step}, targets[4] = {0, 1, 2, 3}, h0d[2] = {4, 4};
        ur_node *h = ur_zeros(t, 2, h0d);
        for (int s = 0; s < 3; s++) { /* a tiny recurrence with a tied weight */
            ur_node *x = ur_gather(t, ur_param_node(t, E), ids, 4);
            ur_node *g = ur_add(t, ur_linear(t, x, ur_param_node(t, W), ur_param_node(t, b)),
                                ur_matmul(t, h, ur_param_node(t, Wh), 0, 0));
            h = ur_tanh(t, ur_slice(t, g, 1, 0, 4));
        }
        ur_node *loss = ur_cross_entropy(t, h, targets, NULL);
        STEP(ur_backward(t, loss));
        STEP(ur_optim_step(opt));
    }
    STEP(ur_ckpt_save_training(sweep_path, ps, opt, NULL));
    STEP(ur_ckpt_load_params(sweep_path, ps, 0));
    if (st == UR_OK) {
        ur_ckpt *ck = ur_ckpt_open(sweep_path);
        if (!ck) st = UR_ERR_NOMEM;
        STEP(ur_ckpt_read_optim(ck, opt));
        ur_ckpt_close(ck);
    }
    ur_optim_free(opt);
    ur_tape_free(t);
    ur_paramset_free(ps);
    return st;
}

Test(reliability, allocation_failure_in_a_training_step, .timeout = 120) {
    ur_test_tmp_path("sweep.safetensors", sweep_path, sizeof sweep_path);
    long total = sweep_allocation_failures(training_step_scenario, "training step", 0);
    sweep_allocation_failures(training_step_scenario, "training step, memory exhausted", 1);
    cr_log_info("training step: failed each of %ld allocations in turn", total);
    unlink(sweep_path);
}

static const char conllu_text[] = "# c\n1\tThe\tthe\tDET\t_\t_\t2\tdet\t_\t_\n"
                                  "2\tdog\tdog\tNOUN\t_\t_\t0\troot\t_\t_\n\n"
                                  "1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n1\tdo\tdo\tAUX\t_\t_\t0\troot\t_\t_\n"
                                  "2\tn't\tnot\tPART\t_\t_\t1\tadvmod\t_\t_\n";
static const char tree_text[] = "(3 (2 It) (4 (2 's) (3 lovely)))\n(1 (1 Bad) (2 film))\n(2 word)\n";
static const char pairs_text[] = "Go.\tVa !\nI don't know.\tJe ne sais pas.\textra\n"
                                 "Well-known!\tBien connu !\n";

/* Every reader on a small input, and the vocabulary and batching built on them. */
static ur_status readers_scenario(void) {
    ur_status st = UR_OK;
    ur_conllu *cu = NULL;
    ur_treebank *tb = NULL;
    ur_pairs *pr = NULL;
    ur_tokens *tk = NULL;
    ur_vocab *counts = NULL, *v = NULL;
    ur_batches *bs = NULL;
    ur_padded *pad = NULL;
    ur_char_corpus *cc = NULL;
    STEP(ur_conllu_parse(conllu_text, sizeof conllu_text - 1, "c", &cu));
    STEP(ur_treebank_parse(tree_text, sizeof tree_text - 1, "t", 4, 0, &tb));
    STEP(ur_pairs_parse(pairs_text, sizeof pairs_text - 1, "p", &pr));
    if (st == UR_OK && !(counts = ur_vocab_new(UR_VOCAB_PAD | UR_VOCAB_UNK))) st = UR_ERR_NOMEM;
    for (int i = 0; st == UR_OK && i < pr->n; i++) {
        STEP(ur_tokenize(pr->src[i], strlen(pr->src[i]), &tk));
        for (int k = 0; st == UR_OK && k < tk->n; k++)
            if (ur_vocab_add(counts, tk->tok[k]) < 0) st = UR_ERR_NOMEM;
        ur_tokens_free(tk);
        tk = NULL;
    }
    STEP(ur_vocab_build(counts, 1, UR_VOCAB_PAD | UR_VOCAB_UNK, &v));
    if (st == UR_OK) ur_treebank_set_word_ids(tb, v);
    int lens[3] = {2, 0, 3}, a[2] = {4, 5}, c[3] = {6, 7, 8};
    const int *seqs[3] = {a, NULL, c};
    ur_rng r;
    ur_rng_seed(&r, 9);
    STEP(ur_bucket_batches(lens, 3, 2, &r, &bs));
    STEP(ur_batch_pad(seqs, lens, NULL, 3, 0, 0, &pad));
    ur_text text = {(char *)tree_text, sizeof tree_text - 1};
    STEP(ur_char_corpus_make(&text, 0.9, &cc));
    ur_char_corpus_free(cc);
    ur_padded_free(pad);
    ur_batches_free(bs);
    ur_vocab_free(v);
    ur_vocab_free(counts);
    ur_pairs_free(pr);
    ur_treebank_free(tb);
    ur_conllu_free(cu);
    return st;
}

Test(reliability, allocation_failure_in_the_readers) {
    long total = sweep_allocation_failures(readers_scenario, "readers", 0);
    sweep_allocation_failures(readers_scenario, "readers, memory exhausted", 1);
    cr_log_info("readers: failed each of %ld allocations in turn", total);
}

/* ======================= anomaly mode ======================= */

Test(reliability, anomaly_names_op_node_and_shape_of_an_injected_nan) {
    ur_paramset *ps = ur_paramset_new();
    ur_param *W = add_param(ps, "W", 2, 4, 8), *b = add_param(ps, "b", 1, 8, 1);
    ur_rng r;
    ur_rng_seed(&r, 8);
    ur_init_uniform(&W->value, &r, 0.5);
    ur_optim_config cfg = ur_optim_defaults(UR_OPTIM_SGD, 0.1);
    ur_optim *opt = ur_optim_new(ps, &cfg);
    ur_tape *t = ur_tape_new();
    ur_tape_set_anomaly(t, 1);
    ur_real xv[12], yv[24];
    for (int i = 0; i < 12; i++) xv[i] = (ur_real)sin(i);
    for (int i = 0; i < 24; i++) yv[i] = (ur_real)cos(i);
    int xd[2] = {3, 4}, yd[2] = {3, 8};
    for (int step = 0; step < 6; step++) {
        ur_tape_reset(t);
        ur_optim_zero_grad(opt);
        if (step == 3) W->value.data[5] = NAN; /* corrupted mid-training */
        ur_node *x = ur_input_data(t, 2, xd, xv), *y = ur_input_data(t, 2, yd, yv);
        ur_node *Wn = ur_param_node(t, W), *bn = ur_param_node(t, b);
        int linear_id = ur_tape_size(t);
        ur_node *loss = ur_mse(t, ur_tanh(t, ur_linear(t, x, Wn, bn)), y);
        if (step < 3) {
            cr_assert_not_null(loss, "step %d: %s", step, ur_tape_errmsg(t));
            cr_assert_eq(ur_backward(t, loss), UR_OK);
            cr_assert_eq(ur_optim_step(opt), UR_OK);
            continue;
        }
        cr_expect_null(loss, "the NaN is caught where it first appears");
        cr_expect_eq(ur_tape_error(t), UR_ERR_NUMERIC);
        char want[128];
        snprintf(want, sizeof want, "anomaly: op 'linear' (node %d, shape (3, 8)) produced NaN or Inf",
                 linear_id);
        cr_expect_str_eq(ur_tape_errmsg(t), want);
        cr_expect_eq(ur_backward(t, loss), UR_ERR_NUMERIC, "backward refuses the errored tape");
        break;
    }
    ur_tape_free(t);
    ur_optim_free(opt);
    ur_paramset_free(ps);
}

/* ======================= regressions found by the fuzzers ======================= */

/* fuzz_tree: a treebank whose trees are single leaves has no child links; the
 * reader computed pointers from a NULL array (undefined behaviour, caught by
 * clang's UBSan: "applying zero offset to null pointer"). */
Test(fuzz_regressions, tree_of_single_leaves) {
    static const char text[] = "(3 h)\n(1 x)\n";
    ur_treebank *tb = NULL;
    cr_assert_eq(ur_treebank_parse(text, sizeof text - 1, "leaves", 4, 0, &tb), UR_OK, "%s", ur_last_error());
    cr_assert_eq(tb->n_trees, 2);
    for (int k = 0; k < 2; k++) {
        const ur_tree *t = &tb->trees[k];
        cr_expect(t->n_nodes == 1 && t->n_words == 1 && t->max_children == 0);
        cr_expect_not_null(t->children, "an address even without children");
        cr_expect(t->nodes[0].n_children == 0 && t->nodes[0].word == 0 && t->nodes[0].parent == -1);
    }
    cr_expect_str_eq(tb->trees[0].words[0], "h");
    cr_expect_eq(tb->trees[1].label, 1);
    ur_treebank_free(tb);
}

/* fuzz_text: adding counts near INT64_MAX overflowed the signed count (UBSan);
 * counts now saturate. */
Test(fuzz_regressions, vocab_count_saturates) {
    ur_vocab *v = ur_vocab_new(0);
    cr_assert_eq(ur_vocab_add_n(v, "~big", 4, INT64_MAX - 7), 0);
    cr_assert_eq(ur_vocab_add_n(v, "~big", 4, INT64_MAX - 7), 0);
    cr_expect_eq(ur_vocab_count(v, 0), INT64_MAX);
    cr_assert_eq(ur_vocab_add_n(v, "~big", 4, 1), 0);
    cr_expect_eq(ur_vocab_count(v, 0), INT64_MAX);
    ur_vocab *built = NULL;
    cr_assert_eq(ur_vocab_build(v, 1, 0, &built), UR_OK);
    cr_expect_eq(ur_vocab_count(built, 0), INT64_MAX);
    ur_vocab_free(built);
    ur_vocab_free(v);
}
