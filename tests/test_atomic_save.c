/* test_atomic_save.c - saves killed at random moments: a child saving in a loop is
 * SIGKILLed again and again; the checkpoint always loads and holds one complete
 * version, and at most one temporary file is left (docs/reliability.md). */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support.h"
#include "ur_checkpoint.h"
#include "ur_tape.h"

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

Test(atomic_save, save_survives_sigkill_at_random_moments, .timeout = 60) {
    char path[512];
    ur_test_tmp_path("killed.safetensors", path, sizeof path);
    ur_paramset *ps = ur_paramset_new();
    ur_test_param(ps, "w", 2, KILL_W_ROWS, KILL_W_COLS);
    ur_test_param(ps, "b", 1, 1000, 1);
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
