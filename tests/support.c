#include "support.h"
#include "ur_tape.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

const char *ur_test_data_path(const char *relative, char *buf, size_t n) {
    const char *dir = getenv("UR_DATA_DIR");
    if (!dir || !*dir) dir = UR_SOURCE_DIR "/../shared/data";
    snprintf(buf, n, "%s/%s", dir, relative);
    FILE *f = fopen(buf, "rb");
    if (!f) return NULL;
    fclose(f);
    return buf;
}

const char *ur_test_tmp_path(const char *name, char *buf, size_t n) {
    snprintf(buf, n, "%s/ur-test-%ld-%s", UR_BINARY_DIR, (long)getpid(), name);
    return buf;
}

char *ur_test_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (size >= 0 && fseek(f, 0, SEEK_SET) == 0) buf = malloc((size_t)size + 1);
    if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (!buf) return NULL;
    buf[size] = '\0';
    if (n) *n = (size_t)size;
    return buf;
}

void ur_test_write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s", path);
    cr_assert_eq(fwrite(data, 1, n, f), n, "cannot write %s", path);
    cr_assert_eq(fclose(f), 0, "cannot write %s", path);
}

/* ---- running a program ---- */

ur_test_result ur_test_run(const char *cmd, int merge_stderr) {
    char full[4096];
    snprintf(full, sizeof full, "%s %s", cmd, merge_stderr ? "2>&1" : "2>/dev/null");
    FILE *p = popen(full, "r");
    cr_assert_not_null(p, "popen: %s", full);
    size_t cap = 1 << 16, n = 0, got;
    char *out = malloc(cap);
    cr_assert_not_null(out);
    while ((got = fread(out + n, 1, cap - 1 - n, p)) > 0) {
        n += got;
        if (cap - 1 - n < 4096) {
            out = realloc(out, cap *= 2);
            cr_assert_not_null(out);
        }
    }
    out[n] = '\0';
    int st = pclose(p);
    return (ur_test_result){out, WIFEXITED(st) ? WEXITSTATUS(st) : -1};
}

/* Runs cmd, which must succeed; returns its last line of stdout (the JSON object). */
char *ur_test_run_json(const char *cmd) {
    ur_test_result r = ur_test_run(cmd, 0);
    cr_assert_eq(r.code, 0, "'%s' exited with %d; output:\n%.2000s", cmd, r.code, r.out);
    char *line = strdup(ur_test_last_line(r.out));
    free(r.out);
    cr_assert(line[0] == '{' && line[strlen(line) - 1] == '}', "'%s': last line is not a JSON object: %s", cmd,
              line);
    return line;
}

/* Runs cmd, which must fail; its output (stdout and stderr) must contain every one
 * of the NULL-terminated strings. */
void ur_test_expect_failure(const char *cmd, const char *const *needles) {
    ur_test_result r = ur_test_run(cmd, 1);
    cr_expect(r.code != 0 && r.code != -1, "'%s' exited with %d", cmd, r.code);
    cr_expect(!strstr(r.out, "Sanitizer") && !strstr(r.out, "runtime error"), "'%s' failed badly:\n%s", cmd, r.out);
    for (int i = 0; needles[i]; i++)
        cr_expect(strstr(r.out, needles[i]) != NULL, "'%s': the message does not contain '%s':\n%s", cmd, needles[i],
                  r.out);
    free(r.out);
}

/* ---- reading the flat JSON object ---- */

const char *ur_test_json_value(const char *line, const char *key) {
    char pat[80];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(line, pat);
    cr_assert_not_null(p, "no \"%s\" in %s", key, line);
    return p + strlen(pat);
}

double ur_test_json_number(const char *line, const char *key) {
    const char *v = ur_test_json_value(line, key);
    char *end;
    double x = strtod(v, &end);
    return end == v ? NAN : x; /* null -> NaN */
}

/* The numbers of an array value, nested arrays flattened row by row; returns the
 * count (at most max). */
int ur_test_json_array(const char *line, const char *key, double *out, int max) {
    const char *p = ur_test_json_value(line, key);
    cr_assert_eq(*p, '[', "\"%s\" is not an array", key);
    int depth = 0, n = 0;
    do {
        if (*p == '[') depth++, p++;
        else if (*p == ']') depth--, p++;
        else if (*p == ',' || *p == ' ') p++;
        else {
            char *end;
            double x = strtod(p, &end);
            cr_assert(end != p, "\"%s\": bad element at '%.12s'", key, p);
            if (n < max) out[n++] = x;
            p = end;
        }
    } while (depth > 0 && *p);
    cr_assert_eq(depth, 0, "\"%s\": unbalanced brackets", key);
    return n;
}

void ur_test_json_string(const char *line, const char *key, char *buf, size_t size) {
    const char *p = ur_test_json_value(line, key);
    cr_assert_eq(*p, '"', "\"%s\" is not a string", key);
    const char *q = strchr(p + 1, '"');
    cr_assert_not_null(q, "\"%s\": unterminated string", key);
    size_t n = (size_t)(q - p - 1) < size - 1 ? (size_t)(q - p - 1) : size - 1;
    memcpy(buf, p + 1, n);
    buf[n] = '\0';
}

char *ur_test_last_line(char *text) {
    size_t n = strlen(text);
    while (n && text[n - 1] == '\n') text[--n] = '\0';
    char *nl = strrchr(text, '\n');
    return nl ? nl + 1 : text;
}

/* Runs the same training uninterrupted, and stopped + saved + resumed; the resumed
 * run's losses must equal the uninterrupted run's, bit for bit (%.9g is exact for floats). */
void ur_test_check_resume(const char *base, const char *resume_flags, int half, int full, const char *ckpt) {
    char cmd[4096];
    double a[256], b[256];
    snprintf(cmd, sizeof cmd, "%s --steps %d --json", base, full);
    char *j = ur_test_run_json(cmd);
    int na = ur_test_json_array(j, "losses", a, 256);
    free(j);
    cr_assert_eq(na, full, "uninterrupted run gave %d losses", na);
    snprintf(cmd, sizeof cmd, "%s --steps %d --save %s --json", base, half, ckpt);
    free(ur_test_run_json(cmd));
    snprintf(cmd, sizeof cmd, "%s --load %s --steps %d --json", resume_flags, ckpt, full);
    j = ur_test_run_json(cmd);
    int nb = ur_test_json_array(j, "losses", b, 256);
    cr_expect_eq((int)ur_test_json_number(j, "first_step"), half + 1);
    free(j);
    cr_assert_eq(nb, full - half, "resumed run gave %d losses", nb);
    for (int i = 0; i < nb; i++)
        cr_expect_eq(a[half + i], b[i], "step %d: uninterrupted %.9g, resumed %.9g", half + i + 1, a[half + i], b[i]);
    remove(ckpt);
}

/* The length of a string value (escapes counted as one character). */
int ur_test_json_string_len(const char *line, const char *key) {
    const char *p = ur_test_json_value(line, key);
    cr_assert_eq(*p, '"', "\"%s\" is not a string", key);
    int n = 0;
    for (p++; *p && *p != '"'; p++, n++)
        if (*p == '\\') p += p[1] == 'u' ? 5 : 1;
    return n;
}

void ur_test_write_text(const char *path, const char *text) { ur_test_write_file(path, text, strlen(text)); }

/* ---- a failing allocator ---- */

static struct {
    long fail_at, attempts, live;
    int and_later;
} fail_alloc;

static void *fail_alloc_malloc(size_t size, void *user) {
    (void)user;
    long n = ++fail_alloc.attempts;
    if (fail_alloc.fail_at > 0 && (n == fail_alloc.fail_at || (fail_alloc.and_later && n > fail_alloc.fail_at)))
        return NULL;
    void *p = malloc(size);
    if (p) fail_alloc.live++;
    return p;
}

static void fail_alloc_free(void *p, void *user) {
    (void)user;
    if (p) fail_alloc.live--;
    free(p);
}

void ur_test_fail_alloc_begin(long fail_at, int and_later) {
    fail_alloc.fail_at = fail_at;
    fail_alloc.and_later = and_later;
    fail_alloc.attempts = fail_alloc.live = 0;
    ur_set_allocator(fail_alloc_malloc, fail_alloc_free, NULL);
}

ur_test_alloc_count ur_test_fail_alloc_end(void) {
    ur_set_allocator(NULL, NULL, NULL);
    return (ur_test_alloc_count){fail_alloc.attempts, fail_alloc.live};
}

void ur_test_fill_tape_memory(ur_tape *t, int values) {
    ur_real *sevens = malloc((size_t)values * sizeof *sevens);
    cr_assert_not_null(sevens);
    for (int i = 0; i < values; i++) sevens[i] = 7;
    cr_assert_not_null(ur_input_data(t, 1, (int[]){values}, sevens), "%s", ur_tape_errmsg(t));
    free(sevens);
    ur_tape_reset(t);
}

ur_param *ur_test_param(ur_paramset *ps, const char *name, int ndim, int d0, int d1) {
    int dims[2] = {d0, d1};
    ur_param *p = ur_paramset_add(ps, name, ndim, dims);
    cr_assert_not_null(p, "%s", ur_last_error());
    return p;
}
