/* test_checkpoint.c - safetensors round trips, the exact file layout, hostile
 * files (each error names the file and the problem) and atomic saves. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint_hooks_internal.h"
#include "support.h"
#include "ur_checkpoint.h"

/* ---- helpers ---- */

static ur_paramset *make_params(int wr, int wc) {
    ur_paramset *ps = ur_paramset_new();
    int wd[2] = {wr, wc}, bd = 3;
    ur_param *w = ur_paramset_add(ps, "w", 2, wd);
    ur_param *b = ur_paramset_add(ps, "b", 1, &bd);
    cr_assert(w && b, "%s", ur_last_error());
    for (size_t i = 0; i < w->value.size; i++) w->value.data[i] = (ur_real)(0.1 * (double)i - 0.35);
    for (size_t i = 0; i < b->value.size; i++) b->value.data[i] = (ur_real)(1.0 / 3.0 + (double)i);
    return ps;
}

/* A file of: prefix hlen (little-endian u64), the header text, then data_len bytes of
 * data (0x3f repeated: 0.74... as F32). */
static void write_image(const char *path, uint64_t hlen, const char *header, size_t data_len) {
    size_t h = strlen(header), n = 8 + h + data_len;
    uint8_t *buf = malloc(n);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(hlen >> (8 * i));
    memcpy(buf + 8, header, h);
    memset(buf + 8 + h, 0x3f, data_len);
    ur_test_write_file(path, buf, n);
    free(buf);
}

static void expect_error_names(const char *path, const char *problem) {
    const char *msg = ur_last_error();
    cr_expect(strstr(msg, path) != NULL, "message names the file: %s", msg);
    cr_expect(strstr(msg, problem) != NULL, "message says '%s': %s", problem, msg);
}

/* Opening fails and the message names the file and the problem. */
static void expect_open_fails(const char *path, const char *problem) {
    ur_ckpt *ck = ur_ckpt_open(path);
    cr_expect_null(ck, "opening should fail (%s)", problem);
    ur_ckpt_close(ck);
    expect_error_names(path, problem);
}

/* Number of leftover temporary files of the target in its directory. */
static int count_temporaries(const char *path) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : path;
    char prefix[300];
    snprintf(prefix, sizeof prefix, "%s.tmp-", base);
    if (slash) *slash = '\0';
    DIR *d = opendir(slash ? dir : ".");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) n++;
    if (d) closedir(d);
    return n;
}

/* ---- round trips ---- */

Test(checkpoint, round_trip_exact) {
    char path[512];
    ur_test_tmp_path("rt.safetensors", path, sizeof path);
    ur_paramset *ps = make_params(2, 3);
    ur_tensor *extra = ur_tensor_new_2d(2, 2);
    for (int i = 0; i < 4; i++) extra->data[i] = (ur_real)(i * 1.5);
    ur_named_tensor ex[] = {{"optim.extra", extra}};
    ur_ckpt_kv meta[] = {{"step", "7"}, {"note", "quote \" backslash \\ newline \n tab \t é"}, {NULL, NULL}};
    cr_assert_eq(ur_ckpt_save(path, ps, ex, 1, meta), UR_OK, "%s", ur_last_error());

    ur_paramset *back = make_params(2, 3);
    ur_param *w = ur_paramset_find(back, "w"), *b = ur_paramset_find(back, "b");
    ur_tensor_fill(&w->value, 0);
    ur_tensor_fill(&b->value, 0);
    cr_assert_eq(ur_ckpt_load_params(path, back, 0), UR_OK, "%s", ur_last_error());
    for (int i = 0; i < 2; i++) {
        const ur_param *p = ur_paramset_get(ps, i), *q = ur_paramset_get(back, i);
        cr_expect_eq(memcmp(p->value.data, q->value.data, p->value.size * sizeof(ur_real)), 0, "%s exact",
                     p->name);
    }

    ur_ckpt *ck = ur_ckpt_open(path);
    cr_assert_not_null(ck, "%s", ur_last_error());
    cr_expect_eq(ur_ckpt_count(ck), 3);
    cr_expect_str_eq(ur_ckpt_name(ck, 0), "w");
    cr_expect_str_eq(ur_ckpt_name(ck, 2), "optim.extra");
    cr_expect_str_eq(ur_ckpt_dtype(ck, "b"), UR_REAL_DTYPE);
    cr_expect_str_eq(ur_ckpt_meta(ck, "step"), "7");
    cr_expect_str_eq(ur_ckpt_meta(ck, "note"), meta[1].value);
    cr_expect_null(ur_ckpt_meta(ck, "absent"));
    cr_expect_eq(ur_ckpt_meta_count(ck), 2);
    ur_tensor *e2 = ur_ckpt_get_new(ck, "optim.extra");
    cr_assert_not_null(e2, "%s", ur_last_error());
    cr_expect(e2->shape.ndim == 2 && e2->shape.dims[0] == 2 && e2->shape.dims[1] == 2);
    cr_expect_eq(memcmp(e2->data, extra->data, 4 * sizeof(ur_real)), 0);
    cr_expect_null(ur_ckpt_get_new(ck, "nope"));
    expect_error_names(path, "'nope' is missing");
    ur_ckpt_close(ck);

    ur_tensor_free(e2);
    ur_tensor_free(extra);
    ur_paramset_free(ps);
    ur_paramset_free(back);
    unlink(path);
}

Test(checkpoint, file_layout_is_safetensors) {
    char path[512];
    ur_test_tmp_path("layout.safetensors", path, sizeof path);
    ur_paramset *ps = make_params(2, 3);
    ur_ckpt_kv meta[] = {{"step", "7"}, {NULL, NULL}};
    cr_assert_eq(ur_ckpt_save(path, ps, NULL, 0, meta), UR_OK, "%s", ur_last_error());
    size_t n;
    uint8_t *bytes = (uint8_t *)ur_test_read_file(path, &n);
    cr_assert_not_null(bytes, "cannot read %s", path);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | bytes[i];
    cr_assert_eq(hlen % 8, 0, "header padded to a multiple of 8: %llu", (unsigned long long)hlen);
    size_t R = sizeof(ur_real);
    cr_assert_eq(n, 8 + hlen + 9 * R, "file = prefix + header + 9 values");
    char want[512];
    snprintf(want, sizeof want,
             "{\"__metadata__\":{\"step\":\"7\"},"
             "\"w\":{\"dtype\":\"%s\",\"shape\":[2,3],\"data_offsets\":[0,%zu]},"
             "\"b\":{\"dtype\":\"%s\",\"shape\":[3],\"data_offsets\":[%zu,%zu]}}",
             UR_REAL_DTYPE, 6 * R, UR_REAL_DTYPE, 6 * R, 9 * R);
    size_t wl = strlen(want);
    cr_assert_geq(hlen, wl);
    cr_expect_eq(memcmp(bytes + 8, want, wl), 0, "header text:\n%.*s\nexpected:\n%s", (int)hlen, bytes + 8,
                 want);
    for (size_t i = wl; i < hlen; i++) cr_expect_eq(bytes[8 + i], ' ', "padding is spaces");
    /* the data: little-endian values of w then b */
    const ur_param *w = ur_paramset_find(ps, "w");
    for (size_t i = 0; i < 6; i++) {
        uint8_t le[8];
        if (R == 4) {
            uint32_t u;
            float f = (float)w->value.data[i];
            memcpy(&u, &f, 4);
            for (int k = 0; k < 4; k++) le[k] = (uint8_t)(u >> (8 * k));
        } else {
            uint64_t u;
            double d = (double)w->value.data[i];
            memcpy(&u, &d, 8);
            for (int k = 0; k < 8; k++) le[k] = (uint8_t)(u >> (8 * k));
        }
        cr_expect_eq(memcmp(bytes + 8 + hlen + i * R, le, R), 0, "value %zu little-endian", i);
    }
    free(bytes);
    ur_paramset_free(ps);
    unlink(path);
}

Test(checkpoint, reads_f64_and_f32_files) {
    char path[512];
    ur_test_tmp_path("f64.safetensors", path, sizeof path);
    /* hand-built: a F64 tensor [1.5, -2.25] then a F32 scalar 0.5 */
    const char *hdr = "{\"a\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]},"
                      "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[16,20]}}   ";
    size_t h = strlen(hdr);
    uint8_t buf[256] = {0};
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(buf + 8, hdr, h);
    double vals[2] = {1.5, -2.25};
    for (int v = 0; v < 2; v++) {
        uint64_t u;
        memcpy(&u, &vals[v], 8);
        for (int k = 0; k < 8; k++) buf[8 + h + 8 * v + k] = (uint8_t)(u >> (8 * k));
    }
    float half = 0.5f;
    uint32_t u32;
    memcpy(&u32, &half, 4);
    for (int k = 0; k < 4; k++) buf[8 + h + 16 + k] = (uint8_t)(u32 >> (8 * k));
    ur_test_write_file(path, buf, 8 + h + 20);
    ur_ckpt *ck = ur_ckpt_open(path);
    cr_assert_not_null(ck, "%s", ur_last_error());
    ur_tensor *a = ur_ckpt_get_new(ck, "a"), *s = ur_ckpt_get_new(ck, "s");
    cr_assert(a && s, "%s", ur_last_error());
    cr_expect(a->data[0] == 1.5f && a->data[1] == -2.25f);
    cr_expect(s->shape.ndim == 0 && s->data[0] == 0.5f);
    ur_tensor_free(a);
    ur_tensor_free(s);
    ur_ckpt_close(ck);
    /* the same image from memory */
    ur_ckpt *m = ur_ckpt_open_memory(buf, 8 + h + 20, "image");
    cr_assert_not_null(m, "%s", ur_last_error());
    ur_tensor *a2 = ur_ckpt_get_new(m, "a");
    cr_expect(a2 && a2->data[1] == -2.25f);
    ur_tensor_free(a2);
    ur_ckpt_close(m);
    unlink(path);
}

Test(checkpoint, missing_and_unknown_names) {
    char path[512];
    ur_test_tmp_path("names.safetensors", path, sizeof path);
    ur_paramset *ps = make_params(2, 3);
    cr_assert_eq(ur_ckpt_save(path, ps, NULL, 0, NULL), UR_OK, "%s", ur_last_error());
    int one = 1;
    ur_paramset *more = make_params(2, 3);
    ur_param *extra = ur_paramset_add(more, "extra", 1, &one);
    extra->value.data[0] = 42;
    cr_expect_eq(ur_ckpt_load_params(path, more, 0), UR_ERR_FORMAT);
    expect_error_names(path, "parameter 'extra' is missing");
    cr_expect_eq(ur_ckpt_load_params(path, more, UR_CKPT_ALLOW_MISSING), UR_OK, "%s", ur_last_error());
    cr_expect_eq(extra->value.data[0], 42, "a missing parameter keeps its value");

    ur_paramset *fewer = ur_paramset_new();
    int bd = 3;
    ur_paramset_add(fewer, "b", 1, &bd);
    cr_expect_eq(ur_ckpt_load_params(path, fewer, 0), UR_OK, "unknown names are ignored by default");
    cr_expect_eq(ur_ckpt_load_params(path, fewer, UR_CKPT_REJECT_UNKNOWN), UR_ERR_FORMAT);
    expect_error_names(path, "tensor 'w' matches no parameter");
    ur_paramset_free(ps);
    ur_paramset_free(more);
    ur_paramset_free(fewer);
    unlink(path);
}

Test(checkpoint, shape_mismatch) {
    char path[512];
    ur_test_tmp_path("shape.safetensors", path, sizeof path);
    ur_paramset *ps = make_params(3, 4);
    cr_assert_eq(ur_ckpt_save(path, ps, NULL, 0, NULL), UR_OK);
    ur_paramset *other = make_params(4, 3);
    ur_real before = ur_paramset_find(other, "b")->value.data[0];
    ur_paramset_find(other, "b")->value.data[0] = before + 1;
    cr_expect_eq(ur_ckpt_load_params(path, other, 0), UR_ERR_SHAPE);
    expect_error_names(path, "tensor 'w' has shape (3, 4), parameter expects (4, 3)");
    cr_expect_eq(ur_paramset_find(other, "b")->value.data[0], before + 1, "nothing loaded on error");
    ur_paramset_free(ps);
    ur_paramset_free(other);
    unlink(path);
}

Test(checkpoint, optimizer_state_round_trip) {
    char path[512];
    ur_test_tmp_path("optim.safetensors", path, sizeof path);
    ur_paramset *ps = make_params(2, 3);
    ur_optim_config cfg = ur_optim_defaults(UR_OPTIM_ADAM, 0.01);
    ur_optim *o = ur_optim_new(ps, &cfg);
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < 2; i++) {
            ur_param *p = ur_paramset_get(ps, i);
            for (size_t k = 0; k < p->grad.size; k++)
                p->grad.data[k] = (ur_real)(0.1 * (double)(k + s) - 0.2);
        }
        cr_assert_eq(ur_optim_step(o), UR_OK);
    }
    ur_rng rng;
    ur_rng_seed(&rng, 77);
    ur_rng_normal(&rng); /* leaves a spare normal in the state */
    char hex[UR_CKPT_RNG_HEX];
    ur_ckpt_rng_encode(&rng, hex);
    ur_ckpt_kv meta[] = {{"rng", hex}, {NULL, NULL}};
    cr_assert_eq(ur_ckpt_save_training(path, ps, o, meta), UR_OK, "%s", ur_last_error());

    ur_paramset *ps2 = make_params(2, 3);
    ur_optim *o2 = ur_optim_new(ps2, &cfg);
    ur_ckpt *ck = ur_ckpt_open(path);
    cr_assert_not_null(ck, "%s", ur_last_error());
    cr_assert(ur_ckpt_has(ck, "optim.adam.m.w") && ur_ckpt_has(ck, "optim.adam.v.b"));
    cr_expect_str_eq(ur_ckpt_meta(ck, "optim.step"), "3");
    cr_assert_eq(ur_ckpt_read_params(ck, ps2, UR_CKPT_REJECT_UNKNOWN), UR_OK, "%s", ur_last_error());
    cr_assert_eq(ur_ckpt_read_optim(ck, o2), UR_OK, "%s", ur_last_error());
    ur_rng rng2;
    cr_assert_eq(ur_ckpt_rng_decode(ur_ckpt_meta(ck, "rng"), &rng2), UR_OK);
    cr_expect_eq(ur_rng_normal(&rng2), ur_rng_normal(&rng), "the spare normal survives");
    cr_expect_eq(ur_rng_next(&rng2), ur_rng_next(&rng));
    cr_expect_eq(ur_optim_step_count(o2), 3);
    ur_optim *sgd = ur_optim_new(ps2, &(ur_optim_config){.kind = UR_OPTIM_SGD, .lr = 0.1, .momentum = 0.5});
    cr_expect_eq(ur_ckpt_read_optim(ck, sgd), UR_ERR_FORMAT);
    expect_error_names(path, "optimizer state is for 'adam'");
    ur_optim_free(sgd);
    ur_ckpt_close(ck);

    /* one more identical step on both: identical values */
    for (int i = 0; i < 2; i++) {
        ur_param *p = ur_paramset_get(ps, i), *q = ur_paramset_get(ps2, i);
        for (size_t k = 0; k < p->grad.size; k++)
            p->grad.data[k] = q->grad.data[k] = (ur_real)(0.05 * (double)k);
    }
    ur_optim_step(o);
    ur_optim_step(o2);
    for (int i = 0; i < 2; i++) {
        const ur_param *p = ur_paramset_get(ps, i), *q = ur_paramset_get(ps2, i);
        cr_expect_eq(memcmp(p->value.data, q->value.data, p->value.size * sizeof(ur_real)), 0, "%s", p->name);
    }
    cr_expect_eq(ur_ckpt_rng_decode("xyz", &rng2), UR_ERR_FORMAT);
    ur_optim_free(o);
    ur_optim_free(o2);
    ur_paramset_free(ps);
    ur_paramset_free(ps2);
    unlink(path);
}

Test(checkpoint, save_rejects_bad_names) {
    char path[512];
    ur_test_tmp_path("badnames.safetensors", path, sizeof path);
    ur_paramset *ps = make_params(2, 3);
    ur_tensor *t = ur_tensor_new_1d(2);
    ur_named_tensor dup[] = {{"w", t}};
    cr_expect_eq(ur_ckpt_save(path, ps, dup, 1, NULL), UR_ERR_ARG);
    cr_expect(strstr(ur_last_error(), "duplicate tensor name 'w'") != NULL, "%s", ur_last_error());
    ur_named_tensor reserved[] = {{"__metadata__", t}};
    cr_expect_eq(ur_ckpt_save(path, ps, reserved, 1, NULL), UR_ERR_ARG);
    ur_ckpt_kv meta[] = {{"k", "1"}, {"k", "2"}, {NULL, NULL}};
    cr_expect_eq(ur_ckpt_save(path, ps, NULL, 0, meta), UR_ERR_ARG);
    cr_expect_eq(access(path, F_OK), -1, "nothing was written");
    ur_tensor_free(t);
    ur_paramset_free(ps);
}

/* ---- hostile files ---- */

Test(checkpoint, truncated_file) {
    char path[512];
    ur_test_tmp_path("trunc.safetensors", path, sizeof path);
    ur_paramset *ps = make_params(2, 3);
    cr_assert_eq(ur_ckpt_save(path, ps, NULL, 0, NULL), UR_OK);
    size_t n;
    uint8_t *bytes = (uint8_t *)ur_test_read_file(path, &n);
    cr_assert_not_null(bytes, "cannot read %s", path);
    ur_test_write_file(path, bytes, n - 5);
    expect_open_fails(path, "beyond the end");
    cr_expect_eq(ur_ckpt_load_params(path, ps, 0), UR_ERR_FORMAT);
    ur_test_write_file(path, bytes, 40); /* inside the header */
    expect_open_fails(path, "exceeds the 32 bytes after the length prefix");
    ur_test_write_file(path, bytes, 5);
    expect_open_fails(path, "fewer than the 8-byte header length");
    ur_test_write_file(path, bytes, 0);
    expect_open_fails(path, "the file has 0 bytes");
    free(bytes);
    ur_paramset_free(ps);
    unlink(path);
}

Test(checkpoint, oversized_header_length) {
    char path[512];
    ur_test_tmp_path("huge.safetensors", path, sizeof path);
    write_image(path, (uint64_t)1 << 40, "{}      ", 0);
    expect_open_fails(path, "exceeds the limit");
    write_image(path, UINT64_MAX, "{}      ", 0);
    expect_open_fails(path, "exceeds the limit");
    unlink(path);
}

Test(checkpoint, wrong_dtype) {
    char path[512];
    ur_test_tmp_path("dtype.safetensors", path, sizeof path);
    const char *h = "{\"w\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12]}}";
    write_image(path, strlen(h), h, 12);
    ur_ckpt *ck = ur_ckpt_open(path);
    cr_assert_not_null(ck, "F16 is a known dtype: %s", ur_last_error());
    ur_tensor *t = ur_tensor_new_2d(2, 3);
    cr_expect_eq(ur_ckpt_get(ck, "w", t), UR_ERR_FORMAT);
    expect_error_names(path, "tensor 'w' has dtype F16; only F32 and F64 can be read");
    ur_ckpt_close(ck);
    ur_tensor_free(t);
    h = "{\"w\":{\"dtype\":\"Q7\",\"shape\":[2,3],\"data_offsets\":[0,12]}}";
    write_image(path, strlen(h), h, 12);
    expect_open_fails(path, "unknown dtype 'Q7'");
    unlink(path);
}

Test(checkpoint, offsets_checked) {
    char path[512];
    ur_test_tmp_path("offs.safetensors", path, sizeof path);
    const char *beyond = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}";
    write_image(path, strlen(beyond), beyond, 12);
    expect_open_fails(path, "beyond the end of the 12-byte data area");
    const char *reversed = "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}";
    write_image(path, strlen(reversed), reversed, 12);
    expect_open_fails(path, "begin > end");
    const char *size = "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}";
    write_image(path, strlen(size), size, 12);
    expect_open_fails(path, "needs 12 bytes");
    const char *overlap = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                          "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
    write_image(path, strlen(overlap), overlap, 12);
    expect_open_fails(path, "overlap");
    const char *overflow =
        "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}";
    write_image(path, strlen(overflow), overflow, 12);
    expect_open_fails(path, "overflows");
    const char *dup = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
    write_image(path, strlen(dup), dup, 8);
    expect_open_fails(path, "duplicate tensor name 'a'");
    unlink(path);
}

/* Header texts that must each be rejected with "FILE: offset N: problem". */
static const struct {
    const char *header, *problem;
} malformed[] = {
    {"", "expected '{'"},
    {"[1]", "expected '{'"},
    {"{", "expected a string"},
    {"{\"a\"}", "expected ':'"},
    {"{\"a\":}", "expected '{'"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", "expected ',' or '}'"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},}", "expected a string"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", "negative integer"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", "leading zero"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", "fraction or exponent"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1e3],\"data_offsets\":[0,4]}}", "fraction or exponent"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}",
     "integer too large"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
     "more than 8 entries"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", "more than 2 entries"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}}", "must hold 2 integers"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", "lacks \"data_offsets\""},
    {"{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "key 'dtype'"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", "key 'x'"},
    {"{\"a\":{\"dtype\":F32,\"shape\":[1],\"data_offsets\":[0,4]}}", "expected a string"},
    {"{\"a\\q\":{}}", "invalid escape"},
    {"{\"a\n\":{}}", "control character 0x0a"},
    {"{\"\\ud800\":{}}", "high surrogate"},
    {"{\"\\udc00\":{}}", "unpaired low surrogate"},
    {"{\"\\u00g0\":{}}", "invalid \\u escape"},
    {"{\"\\u0000\":{}}", "\\u0000"},
    {"{\"\xff\":{}}", "invalid UTF-8"},
    {"{\"\xc0\x80\":{}}", "invalid UTF-8"},
    {"{\"abc", "unterminated string"},
    {"{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "empty tensor name"},
    {"{\"__metadata__\":{\"k\":1}}", "must be a string"},
    {"{\"__metadata__\":{},\"__metadata__\":{}}", "duplicate __metadata__"},
    {"{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", "duplicate metadata key 'k'"},
    {"{} x", "unexpected 'x' after the header object"},
    {"{}\0", "unexpected byte 0x00"},
};

Test(checkpoint, malformed_headers) {
    char path[512];
    ur_test_tmp_path("bad.safetensors", path, sizeof path);
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        const char *h = malformed[i].header;
        size_t len = strlen(h) + (strcmp(malformed[i].problem, "unexpected byte 0x00") == 0);
        uint8_t buf[256];
        for (int k = 0; k < 8; k++) buf[k] = (uint8_t)((uint64_t)len >> (8 * k));
        memcpy(buf + 8, h, len);
        memset(buf + 8 + len, 0, 16);
        ur_test_write_file(path, buf, 8 + len + 16);
        ur_ckpt *ck = ur_ckpt_open(path);
        cr_expect_null(ck, "case %zu should fail: %s", i, h);
        ur_ckpt_close(ck);
        const char *msg = ur_last_error();
        cr_expect(strstr(msg, path) && (strstr(msg, ": offset ") || strstr(msg, "duplicate")),
                  "case %zu: '%s: offset N: ...' expected, got: %s", i, path, msg);
        cr_expect(strstr(msg, malformed[i].problem) != NULL, "case %zu (%s): expected '%s' in: %s", i, h,
                  malformed[i].problem, msg);
    }
    unlink(path);
}

Test(checkpoint, offset_in_message_points_at_the_problem) {
    const char *h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}, x}";
    uint8_t buf[128];
    size_t len = strlen(h);
    for (int k = 0; k < 8; k++) buf[k] = (uint8_t)((uint64_t)len >> (8 * k));
    memcpy(buf + 8, h, len);
    cr_expect_eq(ur_ckpt_parse_header(buf, 8 + len, "mem"), UR_ERR_FORMAT);
    char want[64];
    snprintf(want, sizeof want, "mem: offset %zu: expected a string", 8 + (size_t)(strchr(h, 'x') - h));
    cr_expect(strstr(ur_last_error(), want) != NULL, "wanted '%s' in: %s", want, ur_last_error());
}

Test(checkpoint, accepted_variants) {
    /* whitespace, escapes, empty tensors, metadata anywhere, an empty header */
    const char *ok[] = {
        "{}",
        " \t\r\n{ } ",
        "{\"a\\u00e9\\n\\\"\\/\" : { \"shape\" : [ 2 ] , \"data_offsets\" : [ 0 , 8 ], \"dtype\" : \"F32\" } "
        ","
        " \"__metadata__\" : { \"k\\ud83d\\ude00\" : \"v\" } }",
        "{\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[8,8]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint8_t buf[512];
        size_t len = strlen(ok[i]);
        for (int k = 0; k < 8; k++) buf[k] = (uint8_t)((uint64_t)len >> (8 * k));
        memcpy(buf + 8, ok[i], len);
        memset(buf + 8 + len, 0, 8);
        ur_ckpt *ck = ur_ckpt_open_memory(buf, 8 + len + 8, "mem");
        cr_expect_not_null(ck, "case %zu: %s", i, ur_last_error());
        if (ck && i == 2) {
            cr_expect(ur_ckpt_has(ck, "a\xc3\xa9\n\"/"), "escapes decoded");
            cr_expect_str_eq(ur_ckpt_meta(ck, "k\xf0\x9f\x98\x80"), "v");
        }
        if (ck && i == 3) {
            ur_shape s;
            cr_expect_eq(ur_ckpt_shape(ck, "e", &s), UR_ERR_SHAPE,
                         "an empty tensor cannot become a ur_tensor");
        }
        ur_ckpt_close(ck);
    }
}

Test(checkpoint, random_bytes_and_mutations) {
    ur_rng r;
    ur_rng_seed(&r, 12345);
    uint8_t buf[600];
    int opened = 0;
    for (int iter = 0; iter < 3000; iter++) { /* pure noise, with a plausible length prefix half the time */
        size_t n = ur_rng_below(&r, sizeof buf);
        for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)ur_rng_next(&r);
        if (n >= 8 && (iter & 1)) {
            uint64_t h = ur_rng_below(&r, (uint32_t)(n - 7));
            for (int k = 0; k < 8; k++) buf[k] = (uint8_t)(h >> (8 * k));
        }
        ur_status st = ur_ckpt_parse_header(buf, n, "noise");
        if (st == UR_OK) opened++;
        else cr_assert(strstr(ur_last_error(), "noise") != NULL, "%s", ur_last_error());
    }
    cr_expect_eq(opened, 0, "random bytes are not a checkpoint");

    /* mutations of a valid image: anything may happen except a crash or a bad read */
    const char *h =
        "{\"__metadata__\":{\"k\":\"v\\u00e9\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],"
        "\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[16,24]}}";
    size_t hl = strlen(h), n = 8 + hl + 24;
    uint8_t good[400];
    for (int k = 0; k < 8; k++) good[k] = (uint8_t)((uint64_t)hl >> (8 * k));
    memcpy(good + 8, h, hl);
    memset(good + 8 + hl, 0x40, 24);
    cr_assert_eq(ur_ckpt_parse_header(good, n, "good"), UR_OK, "%s", ur_last_error());
    for (int iter = 0; iter < 20000; iter++) {
        uint8_t *m = malloc(n); /* exact size, so ASan sees any overread */
        memcpy(m, good, n);
        int flips = 1 + (int)ur_rng_below(&r, 4);
        for (int f = 0; f < flips; f++) {
            size_t at = ur_rng_below(&r, (uint32_t)n);
            static const char pool[] = "{}[]\",:\\0123456789-eu ";
            m[at] = ur_rng_below(&r, 2) ? (uint8_t)pool[ur_rng_below(&r, sizeof pool - 1)]
                                        : (uint8_t)ur_rng_next(&r);
        }
        size_t len = ur_rng_below(&r, 8) == 0 ? ur_rng_below(&r, (uint32_t)n + 1) : n;
        ur_ckpt *ck = ur_ckpt_open_memory(m, len, "mut");
        if (ck) { /* read every tensor that fits a ur_tensor */
            for (int i = 0; i < ur_ckpt_count(ck); i++)
                ur_tensor_free(ur_ckpt_get_new(ck, ur_ckpt_name(ck, i)));
            ur_ckpt_close(ck);
        }
        free(m);
    }
}

/* ---- allocation failures ---- */

/* With a budget of b allocations, allocation b + 1 and every later one fail. */
Test(checkpoint, open_survives_allocation_failures) {
    char path[512];
    ur_test_tmp_path("oom.safetensors", path, sizeof path);
    ur_paramset *ps = make_params(2, 3);
    ur_ckpt_kv meta[] = {{"a", "1"}, {"b", "2"}, {NULL, NULL}};
    cr_assert_eq(ur_ckpt_save(path, ps, NULL, 0, meta), UR_OK);
    int succeeded = 0;
    for (int budget = 0; budget < 40 && !succeeded; budget++) {
        ur_test_fail_alloc_begin(budget + 1, 1);
        ur_ckpt *ck = ur_ckpt_open(path);
        ur_status st = ck ? ur_ckpt_read_params(ck, ps, 0) : UR_ERR_NOMEM;
        ur_test_fail_alloc_end();
        if (ck) succeeded = st == UR_OK;
        else
            cr_expect(strstr(ur_last_error(), "out of memory") != NULL, "budget %d: %s", budget,
                      ur_last_error());
        ur_ckpt_close(ck);
    }
    cr_expect(succeeded, "opens once enough memory is available");
    ur_paramset_free(ps);
    unlink(path);
}

/* ---- atomic saves ---- */

Test(checkpoint, failed_save_keeps_previous_file_allocation) {
    char path[512];
    ur_test_tmp_path("atomic1.safetensors", path, sizeof path);
    ur_paramset *ps = make_params(2, 3);
    cr_assert_eq(ur_ckpt_save(path, ps, NULL, 0, NULL), UR_OK);
    size_t n0;
    uint8_t *before = (uint8_t *)ur_test_read_file(path, &n0);
    cr_assert_not_null(before, "cannot read %s", path);
    ur_paramset_find(ps, "w")->value.data[0] = 99;
    for (int budget = 0; budget < 6; budget++) {
        ur_test_fail_alloc_begin(budget + 1, 1);
        ur_status st = ur_ckpt_save(path, ps, NULL, 0, NULL);
        ur_test_fail_alloc_end();
        if (st == UR_OK) break;
        cr_expect_eq(st, UR_ERR_NOMEM, "budget %d: %s", budget, ur_last_error());
        size_t n1;
        uint8_t *after = (uint8_t *)ur_test_read_file(path, &n1);
        cr_assert_not_null(after, "cannot read %s", path);
        cr_expect(n1 == n0 && memcmp(before, after, n0) == 0, "previous checkpoint intact");
        free(after);
        cr_expect_eq(count_temporaries(path), 0);
    }
    free(before);
    ur_paramset_free(ps);
    unlink(path);
}

Test(checkpoint, failed_write_keeps_previous_file) {
    /* a file-size limit makes the write fail half way, like a full disk */
    char path[512];
    ur_test_tmp_path("atomic2.safetensors", path, sizeof path);
    ur_paramset *ps = make_params(2, 3);
    cr_assert_eq(ur_ckpt_save(path, ps, NULL, 0, NULL), UR_OK);
    size_t n0;
    uint8_t *before = (uint8_t *)ur_test_read_file(path, &n0);
    cr_assert_not_null(before, "cannot read %s", path);
    ur_paramset *big = make_params(200, 100);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 4096;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    ur_status st = ur_ckpt_save(path, big, NULL, 0, NULL);
    setrlimit(RLIMIT_FSIZE, &old);
    cr_expect_eq(st, UR_ERR_IO);
    cr_expect(strstr(ur_last_error(), "ur_ckpt_save") && strstr(ur_last_error(), path), "%s",
              ur_last_error());
    size_t n1;
    uint8_t *after = (uint8_t *)ur_test_read_file(path, &n1);
    cr_assert_not_null(after, "cannot read %s", path);
    cr_expect(n1 == n0 && memcmp(before, after, n0) == 0, "previous checkpoint intact");
    cr_expect_eq(count_temporaries(path), 0, "the temporary file is removed");
    cr_expect_eq(ur_ckpt_save(path, big, NULL, 0, NULL), UR_OK, "works again without the limit");
    free(before);
    free(after);
    ur_paramset_free(ps);
    ur_paramset_free(big);
    unlink(path);
}

Test(checkpoint, unwritable_directory) {
    char dir[512], path[600];
    ur_test_tmp_path("rodir", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ur_paramset *ps = make_params(2, 3);
    cr_expect_eq(ur_ckpt_save(path, ps, NULL, 0, NULL), UR_ERR_IO, "the directory does not exist yet");
    expect_error_names(path, "cannot create a temporary file");
    cr_assert_eq(mkdir(dir, 0700), 0);
    cr_assert_eq(ur_ckpt_save(path, ps, NULL, 0, NULL), UR_OK);
    chmod(dir, 0500);
    if (geteuid() != 0) { /* root writes anyway */
        ur_paramset_find(ps, "w")->value.data[0] = 99;
        cr_expect_eq(ur_ckpt_save(path, ps, NULL, 0, NULL), UR_ERR_IO);
        ur_paramset *back = make_params(2, 3);
        cr_expect_eq(ur_ckpt_load_params(path, back, 0), UR_OK);
        cr_expect_neq(ur_paramset_find(back, "w")->value.data[0], 99, "the old checkpoint is still there");
        ur_paramset_free(back);
    }
    chmod(dir, 0700);
    unlink(path);
    rmdir(dir);
    ur_paramset_free(ps);
}

Test(checkpoint, open_missing_file) {
    cr_expect_null(ur_ckpt_open("/nonexistent/x.safetensors"));
    expect_error_names("/nonexistent/x.safetensors", "cannot open");
    ur_paramset *ps = make_params(2, 3);
    cr_expect_eq(ur_ckpt_load_params("/nonexistent/x.safetensors", ps, 0), UR_ERR_IO);
    cr_expect_null(ur_ckpt_open(UR_BINARY_DIR));
    expect_error_names(UR_BINARY_DIR, "not a regular file");
    ur_paramset_free(ps);
}
