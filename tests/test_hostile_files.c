/* test_hostile_files.c - hostile checkpoint files: truncated, oversized, malformed,
 * of the wrong dtype or shape, and random bytes. Each message names the file, the
 * byte offset and the problem (docs/reliability.md). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"
#include "ur_checkpoint.h"
#include "ur_tape.h"

/* The message holds every piece of `want` (a NULL-terminated list). */
static void expect_message(const char *msg, const char *const *want) {
    for (int i = 0; want[i]; i++)
        cr_expect(strstr(msg, want[i]) != NULL, "expected '%s' in: %s", want[i], msg);
}

/* A valid file: w (3, 4) then b (4), F32; returns its bytes. */
static uint8_t *valid_image(const char *path, size_t *n, ur_paramset **ps_out) {
    ur_paramset *ps = ur_paramset_new();
    ur_param *w = ur_test_param(ps, "w", 2, 3, 4), *b = ur_test_param(ps, "b", 1, 4, 1);
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

Test(hostile_files, bad_files_name_file_position_problem) {
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
    ur_test_param(other, "w", 2, 4, 3);
    ur_test_param(other, "b", 1, 4, 1);
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
