/* checkpoint_write.c - saving safetensors files.
 *
 * The header is built as text (names escaped as JSON strings, padded with spaces
 * to a multiple of 8), then prefix, header and data are written to a temporary
 * file beside the target ("PATH.tmp-PID-N"), flushed to disk (fsync) and renamed
 * over the target. rename is atomic, so a reader (or a process killed during the
 * save) sees either the old file or the new one, never a mixture; a failed save
 * removes its temporary file. A process killed while saving cannot: the next save
 * to the same PATH removes temporaries whose process no longer exists, so they do
 * not pile up (at most one per saver alive or killed since the last save).
 */
#include "checkpoint_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* ---- little-endian encoding (independent of the host's byte order) ---- */

static void put_u64(uint8_t *b, uint64_t v) {
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
}

static void put_real(uint8_t *b, ur_real x) {
#ifdef UR_DOUBLE
    uint64_t u;
    memcpy(&u, &x, 8);
    put_u64(b, u);
#else
    uint32_t u;
    memcpy(&u, &x, 4);
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(u >> (8 * i));
#endif
}

/* 1 if the NUL-terminated string is valid UTF-8 (names must be, to be JSON). */
static int utf8_valid(const char *str) {
    const uint8_t *s = (const uint8_t *)str;
    size_t n = strlen(str);
    for (size_t i = 0; i < n;) {
        size_t len = ur__ckpt_utf8_len(s + i, n - i);
        if (!len) return 0;
        i += len;
    }
    return 1;
}

/* ---- the header text ---- */

/* A growable byte buffer that remembers an allocation failure. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    int failed;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (n > SIZE_MAX - b->len - 1) {
        b->failed = 1;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
        char *p = ur_realloc(b->p, b->len, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

static void sb_u64(sbuf *b, uint64_t v) {
    char tmp[24];
    snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    sb_puts(b, tmp);
}

/* s as a JSON string: quotes, backslashes and control characters escaped. */
static void sb_json_string(sbuf *b, const char *s) {
    sb_putn(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sb_putn(b, e, 2);
        } else if (c < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", c);
            sb_putn(b, e, 6);
        } else {
            sb_putn(b, (const char *)&c, 1);
        }
    }
    sb_putn(b, "\"", 1);
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks that the n names are usable and unique; what = "tensor" or "metadata key". */
static ur_status check_names(const char **names, int n, const char *what) {
    const char *fn = "ur_ckpt_save";
    for (int i = 0; i < n; i++) {
        if (!names[i] || !names[i][0]) return ur_set_error(UR_ERR_ARG, "%s: %s %d has no name", fn, what, i);
        if (!utf8_valid(names[i]))
            return ur_set_error(UR_ERR_ARG, "%s: %s name '%.60s' is not valid UTF-8", fn, what, names[i]);
        if (strcmp(names[i], "__metadata__") == 0 && what[0] == 't')
            return ur_set_error(UR_ERR_ARG, "%s: the tensor name '__metadata__' is reserved", fn);
    }
    if (n < 2) return UR_OK;
    const char **sorted = ur_malloc((size_t)n * sizeof *sorted);
    if (!sorted) return ur_set_error(UR_ERR_NOMEM, "%s: out of memory", fn);
    memcpy(sorted, names, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_str_ptr);
    ur_status st = UR_OK;
    for (int i = 1; i < n && st == UR_OK; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0)
            st = ur_set_error(UR_ERR_ARG, "%s: duplicate %s name '%.60s'", fn, what, sorted[i]);
    ur_free(sorted);
    return st;
}

/* The JSON header (padded with spaces to a multiple of 8) for the given tensors. */
static ur_status build_header(sbuf *b, const char **names, const ur_tensor **ts, int n,
                              const ur_ckpt_kv *meta, int n_meta) {
    sb_puts(b, "{");
    if (n_meta > 0) {
        sb_puts(b, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i) sb_puts(b, ",");
            sb_json_string(b, meta[i].key);
            sb_puts(b, ":");
            sb_json_string(b, meta[i].value);
        }
        sb_puts(b, "}");
        if (n > 0) sb_puts(b, ",");
    }
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        const ur_tensor *t = ts[i];
        uint64_t bytes = (uint64_t)t->size * sizeof(ur_real);
        if (i) sb_puts(b, ",");
        sb_json_string(b, names[i]);
        sb_puts(b, ":{\"dtype\":\"" UR_REAL_DTYPE "\",\"shape\":[");
        for (int d = 0; d < t->shape.ndim; d++) {
            if (d) sb_puts(b, ",");
            sb_u64(b, (uint64_t)t->shape.dims[d]);
        }
        sb_puts(b, "],\"data_offsets\":[");
        sb_u64(b, offset);
        sb_puts(b, ",");
        sb_u64(b, offset + bytes);
        sb_puts(b, "]}");
        offset += bytes;
    }
    sb_puts(b, "}");
    while (!b->failed && b->len % 8 != 0) sb_puts(b, " ");
    if (b->failed) return ur_set_error(UR_ERR_NOMEM, "ur_ckpt_save: out of memory for the header");
    if (b->len > UR_CKPT_MAX_HEADER)
        return ur_set_error(UR_ERR_ARG, "ur_ckpt_save: the header would be %zu bytes (limit %d)", b->len,
                            UR_CKPT_MAX_HEADER);
    return UR_OK;
}

/* ---- the file ---- */

static int write_tensor(FILE *f, const ur_tensor *t) {
    uint8_t buf[4096];
    const size_t per = sizeof buf / sizeof(ur_real);
    for (size_t done = 0; done < t->size;) {
        size_t m = t->size - done < per ? t->size - done : per;
        for (size_t i = 0; i < m; i++) put_real(buf + i * sizeof(ur_real), t->data[done + i]);
        if (fwrite(buf, sizeof(ur_real), m, f) != m) return -1;
        done += m;
    }
    return 0;
}

/* The directory part of path ("." when it has none) into dirbuf (room for path). */
static const char *parent_dir(const char *path, char *dirbuf) {
    strcpy(dirbuf, path);
    char *slash = strrchr(dirbuf, '/');
    if (!slash) strcpy(dirbuf, ".");
    else if (slash == dirbuf) slash[1] = '\0';
    else *slash = '\0';
    return dirbuf;
}

/* Flushes the directory entry of path to disk (best effort). dirbuf has room for path. */
static void sync_parent_dir(const char *path, char *dirbuf) {
    int fd = open(parent_dir(path, dirbuf), O_RDONLY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* The PID of a temporary of the target named base ("BASE.tmp-PID-N"), or -1 when
 * name is not one. */
static long temporary_pid(const char *name, const char *base) {
    size_t n = strlen(base);
    if (strncmp(name, base, n) != 0 || strncmp(name + n, ".tmp-", 5) != 0) return -1;
    const char *s = name + n + 5;
    long pid = 0;
    int digits = 0;
    for (; *s >= '0' && *s <= '9' && pid < 100000000; s++, digits++) pid = pid * 10 + (*s - '0');
    if (!digits || *s++ != '-' || !(*s >= '0' && *s <= '9')) return -1;
    while (*s >= '0' && *s <= '9') s++;
    return *s ? -1 : pid;
}

/* Removes the temporaries of path left by saves whose process no longer exists:
 * a process killed during a save cannot remove its own. A temporary of a live
 * process (this one included) is never touched. Best effort. */
static void remove_stale_temporaries(const char *path, char *dirbuf) {
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    DIR *d = opendir(parent_dir(path, dirbuf));
    if (!d) return;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        long pid = temporary_pid(e->d_name, base);
        if (pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH)
            (void)unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

/* Writes prefix, header and data to a temporary file beside path, syncs it and
 * renames it over path. On failure the temporary file is removed. */
static ur_status write_atomic(const char *path, const sbuf *hdr, const ur_tensor **ts, int n) {
    static _Thread_local unsigned counter;
    const char *fn = "ur_ckpt_save";
    size_t cap = strlen(path) + 64;
    char *tmp = ur_malloc(cap);
    if (!tmp) return ur_set_error(UR_ERR_NOMEM, "%s: out of memory", fn);
    remove_stale_temporaries(path, tmp);
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        snprintf(tmp, cap, "%s.tmp-%ld-%u", path, (long)getpid(), counter++);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        ur_status st = ur_set_error(UR_ERR_IO, "%s: cannot create a temporary file beside %s: %s", fn, path,
                                    strerror(errno));
        ur_free(tmp);
        return st;
    }
    FILE *f = fdopen(fd, "wb");
    ur_status st = UR_OK;
    if (!f) {
        st = ur_set_error(UR_ERR_IO, "%s: cannot open %s for writing: %s", fn, tmp, strerror(errno));
        close(fd);
        goto fail;
    }
    uint8_t prefix[8];
    put_u64(prefix, (uint64_t)hdr->len);
    int bad = fwrite(prefix, 1, 8, f) != 8 || fwrite(hdr->p, 1, hdr->len, f) != hdr->len;
    for (int i = 0; i < n && !bad; i++) bad = write_tensor(f, ts[i]) != 0;
    if (!bad) bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    if (bad) {
        st = ur_set_error(UR_ERR_IO, "%s: writing %s failed: %s", fn, tmp, strerror(errno));
        fclose(f);
        goto fail;
    }
    if (fclose(f) != 0) {
        st = ur_set_error(UR_ERR_IO, "%s: closing %s failed: %s", fn, tmp, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        st = ur_set_error(UR_ERR_IO, "%s: cannot rename %s to %s: %s", fn, tmp, path, strerror(errno));
        goto fail;
    }
    sync_parent_dir(path, tmp);
    ur_free(tmp);
    return UR_OK;
fail:
    unlink(tmp);
    ur_free(tmp);
    return st;
}

/* ---- entry points ---- */

ur_status ur_ckpt_save(const char *path, const ur_paramset *ps, const ur_named_tensor *extras, int n_extras,
                       const ur_ckpt_kv *metadata) {
    const char *fn = "ur_ckpt_save";
    if (!path || !path[0]) return ur_set_error(UR_ERR_ARG, "%s: path is empty", fn);
    if (n_extras < 0 || (n_extras > 0 && !extras))
        return ur_set_error(UR_ERR_ARG, "%s: %d extras at %p", fn, n_extras, (const void *)extras);
    int np = ps ? ur_paramset_count(ps) : 0;
    if (n_extras > INT_MAX - np) return ur_set_error(UR_ERR_ARG, "%s: too many tensors", fn);
    int n = np + n_extras, n_meta = 0;
    if (metadata)
        while (metadata[n_meta].key) n_meta++;
    for (int i = 0; i < n_extras; i++)
        if (!extras[i].tensor)
            return ur_set_error(UR_ERR_ARG, "%s: extra tensor '%.60s' is NULL", fn,
                                extras[i].name ? extras[i].name : "?");
    for (int i = 0; i < n_meta; i++)
        if (!metadata[i].value)
            return ur_set_error(UR_ERR_ARG, "%s: metadata '%.60s' has no value", fn, metadata[i].key);

    /* one array of names, one of tensors, then one of metadata keys for the checks */
    size_t slots = (size_t)n + (size_t)n_meta + 1;
    const char **names = ur_malloc(slots * sizeof *names);
    const ur_tensor **ts = ur_malloc(((size_t)n + 1) * sizeof *ts);
    sbuf hdr = {0};
    ur_status st = UR_OK;
    if (!names || !ts) {
        st = ur_set_error(UR_ERR_NOMEM, "%s: out of memory", fn);
        goto done;
    }
    for (int i = 0; i < np; i++) {
        const ur_param *p = ur_paramset_get(ps, i);
        names[i] = p->name;
        ts[i] = &p->value;
    }
    for (int i = 0; i < n_extras; i++) {
        names[np + i] = extras[i].name;
        ts[np + i] = extras[i].tensor;
    }
    for (int i = 0; i < n_meta; i++) names[n + i] = metadata[i].key;
    st = check_names(names, n, "tensor");
    if (st == UR_OK) st = check_names(names + n, n_meta, "metadata key");
    for (int i = 0; i < n_meta && st == UR_OK; i++)
        if (!utf8_valid(metadata[i].value))
            st = ur_set_error(UR_ERR_ARG, "%s: metadata '%.60s' is not valid UTF-8", fn, metadata[i].key);
    if (st == UR_OK) st = build_header(&hdr, names, ts, n, metadata, n_meta);
    if (st == UR_OK) st = write_atomic(path, &hdr, ts, n);
done:
    ur_free(names);
    ur_free(ts);
    ur_free(hdr.p);
    return st;
}

ur_status ur_ckpt_save_training(const char *path, const ur_paramset *ps, const ur_optim *opt,
                                const ur_ckpt_kv *metadata) {
    if (!opt) return ur_set_error(UR_ERR_ARG, "ur_ckpt_save_training: optimizer is NULL");
    int ns = ur_optim_state_count(opt), nm = 0;
    if (metadata)
        while (metadata[nm].key) nm++;
    ur_named_tensor *ex = ur_malloc(((size_t)ns + 1) * sizeof *ex);
    ur_ckpt_kv *meta = ur_malloc(((size_t)nm + 3) * sizeof *meta);
    ur_status st;
    if (!ex || !meta) {
        st = ur_set_error(UR_ERR_NOMEM, "ur_ckpt_save_training: out of memory");
    } else {
        for (int i = 0; i < ns; i++) ex[i].tensor = ur_optim_state_at(opt, i, &ex[i].name);
        char step[24];
        snprintf(step, sizeof step, "%llu", (unsigned long long)ur_optim_step_count(opt));
        if (nm) memcpy(meta, metadata, (size_t)nm * sizeof *meta);
        meta[nm] = (ur_ckpt_kv){"optim.kind", ur_optim_kind_name(ur_optim_config_of(opt)->kind)};
        meta[nm + 1] = (ur_ckpt_kv){"optim.step", step};
        meta[nm + 2] = (ur_ckpt_kv){NULL, NULL};
        st = ur_ckpt_save(path, ps, ex, ns, meta);
    }
    ur_free(ex);
    ur_free(meta);
    return st;
}
