/* support.h - helpers shared by the tests. */
#ifndef UR_TEST_SUPPORT_H
#define UR_TEST_SUPPORT_H
#include <stddef.h>

/* Path of a file under the shared data folder (UR_DATA_DIR or ../shared/data beside
 * the source tree), or NULL when it is absent: callers skip the test then and say so. */
const char *ur_test_data_path(const char *relative, char *buf, size_t n);
/* A scratch file path unique to this process under the build folder. */
const char *ur_test_tmp_path(const char *name, char *buf, size_t n);
/* The whole file, malloc'ed with a NUL after its n bytes (n may be NULL); NULL when
 * it cannot be read. */
char *ur_test_read_file(const char *path, size_t *n);
/* Writes n bytes to path, replacing the file; the test fails when it cannot. */
void ur_test_write_file(const char *path, const void *data, size_t n);

/* ---- running the example programs (their last line of stdout is a JSON object) ---- */
typedef struct ur_test_result {
    char *out; /* stdout (and stderr with merge_stderr), malloc'ed */
    int code;  /* exit code, or -1 if it did not exit normally */
} ur_test_result;
/* Runs a shell command; stderr is merged into out or discarded. */
ur_test_result ur_test_run(const char *cmd, int merge_stderr);
/* Runs cmd, which must succeed; returns its last line of stdout (malloc'ed). */
char *ur_test_run_json(const char *cmd);
/* Runs cmd, which must fail cleanly (no sanitizer report); its output must contain
 * every one of the NULL-terminated strings. */
void ur_test_expect_failure(const char *cmd, const char *const *needles);
/* The last non-empty line of text (cut in place). */
char *ur_test_last_line(char *text);
/* Values of a flat JSON object's keys (the key must be there): where the value
 * starts; a number (NaN for null); an array's numbers, nested arrays flattened row
 * by row (returns the count, at most max); a string without escapes, cut to fit
 * buf; a string's length (an escape counts as one character). */
const char *ur_test_json_value(const char *line, const char *key);
double ur_test_json_number(const char *line, const char *key);
int ur_test_json_array(const char *line, const char *key, double *out, int max);
void ur_test_json_string(const char *line, const char *key, char *buf, size_t size);
int ur_test_json_string_len(const char *line, const char *key);
/* Trains `base` for `full` steps, and for `half` steps + --save ckpt + (resume_flags
 * --load ckpt) up to `full`: the resumed losses must equal the uninterrupted ones bit
 * for bit (both print "losses" and "first_step"). */
void ur_test_check_resume(const char *base, const char *resume_flags, int half, int full, const char *ckpt);
/* Writes a NUL-terminated text to path. */
void ur_test_write_text(const char *path, const char *text);

/* A parameter of shape (d0) (ndim 1) or (d0, d1) (ndim 2) added to ps; the test
 * stops when it cannot be added. */
struct ur_param;
struct ur_paramset;
struct ur_param *ur_test_param(struct ur_paramset *ps, const char *name, int ndim, int d0, int d1);

/* Fills the memory that t's next recording gets with sevens (a recording of `values`
 * sevens, then a reset), so that a value or gradient no pass writes shows as a
 * seven, not as a zero. */
struct ur_tape;
void ur_test_fill_tape_memory(struct ur_tape *t, int values);

/* ---- a failing allocator: the Nth allocation fails ----
 * ur_test_fail_alloc_begin installs it (ur_set_allocator): allocation number
 * fail_at (1-based; 0: none fails) returns NULL and, with and_later, so does every
 * one after it (memory stays exhausted). It counts the allocations attempted and the
 * blocks live (allocated under it and not yet freed). ur_test_fail_alloc_end
 * restores malloc/free. */
typedef struct ur_test_alloc_count {
    long attempts; /* allocations asked for, the failed ones included */
    long live;     /* blocks allocated and not freed since begin */
} ur_test_alloc_count;
void ur_test_fail_alloc_begin(long fail_at, int and_later);
ur_test_alloc_count ur_test_fail_alloc_end(void);
#endif
