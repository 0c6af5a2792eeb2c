/* checkpoint.c - reading safetensors files: open, validate, look up, read.
 *
 * Reading never trusts the file: the header length is capped and checked against
 * the file size before anything is allocated; the header is parsed by a strict
 * JSON parser (checkpoint_json.c); then sizes are products checked for overflow
 * and tensors must lie inside the data area without overlapping. Errors about one
 * tensor name the file offset of its record in the header. Saving is in
 * checkpoint_write.c.
 */
#include "checkpoint_hooks_internal.h"
#include "checkpoint_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* ---- dtypes ---- */

const ur__ckpt_dtype ur__ckpt_dtypes[UR__N_DTYPES] = {
    {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},  {"I32", 4},     {"I16", 2},     {"I8", 1},
    {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1},   {"BOOL", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1},
};

int ur__ckpt_dtype_find(const char *name) {
    for (int i = 0; i < UR__N_DTYPES; i++)
        if (strcmp(ur__ckpt_dtypes[i].name, name) == 0) return i;
    return -1;
}

/* ---- little-endian decoding (independent of the host's byte order) ---- */

static uint64_t get_u64(const uint8_t *b) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

/* n values of dtype F32 or F64 from little-endian bytes to ur_real */
static void decode_reals(const uint8_t *b, int dtype, size_t n, ur_real *out) {
    for (size_t i = 0; i < n; i++) {
        if (dtype == UR__DT_F64) {
            uint64_t u = get_u64(b + 8 * i);
            double d;
            memcpy(&d, &u, 8);
            out[i] = (ur_real)d;
        } else {
            const uint8_t *p = b + 4 * i;
            uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
            float f;
            memcpy(&f, &u, 4);
            out[i] = (ur_real)f;
        }
    }
}

/* ---- the reader object ---- */

static ur_ckpt *reader_new(const char *label) {
    ur_ckpt *ck = ur_calloc(1, sizeof *ck);
    size_t n = strlen(label) + 1;
    if (ck) ck->label = ur_malloc(n);
    if (!ck || !ck->label) {
        ur_free(ck);
        ur_set_error(UR_ERR_NOMEM, "ur_ckpt_open: out of memory");
        return NULL;
    }
    memcpy(ck->label, label, n);
    return ck;
}

void ur_ckpt_close(ur_ckpt *ck) {
    if (!ck) return;
    if (ck->f) fclose(ck->f);
    ur_free(ck->label);
    ur_free(ck->arena);
    ur_free(ck->ent);
    ur_free(ck->by_name);
    ur_free(ck->meta);
    ur_free(ck);
}

/* ---- validation after parsing ---- */

static char *dims_str(const ur__ckpt_entry *e, char *buf, size_t n) {
    size_t at = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < e->ndim && at < n; i++)
        at += (size_t)snprintf(buf + at, n - at, i ? ", %llu" : "%llu", (unsigned long long)e->dims[i]);
    if (at < n) snprintf(buf + at, n - at, ")");
    return buf;
}

static int cmp_begin(const void *a, const void *b) {
    const ur__ckpt_entry *x = *(const ur__ckpt_entry *const *)a, *y = *(const ur__ckpt_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const ur__ckpt_entry *const *)a)->name, (*(const ur__ckpt_entry *const *)b)->name);
}

static int cmp_key(const void *a, const void *b) {
    return strcmp(((const ur_ckpt_kv *)a)->key, ((const ur_ckpt_kv *)b)->key);
}

/* An error about one record: "[checkpoint ]LABEL: offset N: ..." with N the file
 * offset of the record's name in the header. */
static ur_status rec_error(const ur_ckpt *ck, const ur__ckpt_entry *e, ur_status s, const char *pre,
                           const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

static ur_status rec_error(const ur_ckpt *ck, const ur__ckpt_entry *e, ur_status s, const char *pre,
                           const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ur_set_error(s, "%s%.150s: offset %llu: %s", pre, ck->label, (unsigned long long)e->pos, msg);
}

/* Sizes, bounds, overlaps and duplicates of the parsed records. */
static ur_status validate(ur_ckpt *ck) {
    const ur_status F = UR_ERR_FORMAT;
    char b[160];
    for (int i = 0; i < ck->n_ent; i++) {
        const ur__ckpt_entry *e = &ck->ent[i];
        unsigned long long begin = e->begin, end = e->end;
        if (begin > end)
            return rec_error(ck, e, F, "", "tensor '%.60s' has data_offsets [%llu, %llu] with begin > end",
                             e->name, begin, end);
        if (e->end > ck->data_size)
            return rec_error(ck, e, F, "",
                             "tensor '%.60s' has data_offsets [%llu, %llu] beyond the end of the %llu-byte "
                             "data area (truncated file?)",
                             e->name, begin, end, (unsigned long long)ck->data_size);
        uint64_t bytes = ur__ckpt_dtypes[e->dtype].size;
        for (int d = 0; d < e->ndim; d++) {
            if (e->dims[d] != 0 && bytes > UINT64_MAX / e->dims[d])
                return rec_error(ck, e, F, "", "tensor '%.60s': the size of shape %s overflows", e->name,
                                 dims_str(e, b, sizeof b));
            bytes *= e->dims[d];
        }
        if (bytes != e->end - e->begin)
            return rec_error(ck, e, F, "",
                             "tensor '%.60s' of shape %s and dtype %s needs %llu bytes, its data_offsets "
                             "[%llu, %llu] hold %llu",
                             e->name, dims_str(e, b, sizeof b), ur__ckpt_dtypes[e->dtype].name,
                             (unsigned long long)bytes, begin, end, end - begin);
    }
    size_t n = (size_t)ck->n_ent;
    ck->by_name = ur_malloc((n + 1) * sizeof *ck->by_name);
    if (!ck->by_name) return ur_set_error(UR_ERR_NOMEM, "%.150s: out of memory", ck->label);
    for (size_t i = 0; i < n; i++) ck->by_name[i] = &ck->ent[i];
    /* overlaps: sorted by begin, each non-empty tensor must start at or after the
     * end of the previous non-empty one */
    qsort(ck->by_name, n, sizeof *ck->by_name, cmp_begin);
    const ur__ckpt_entry *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        const ur__ckpt_entry *e = ck->by_name[i];
        if (e->begin == e->end) continue;
        if (prev && e->begin < prev->end)
            return rec_error(ck, e, F, "", "tensors '%.60s' [%llu, %llu) and '%.60s' [%llu, %llu) overlap",
                             prev->name, (unsigned long long)prev->begin, (unsigned long long)prev->end,
                             e->name, (unsigned long long)e->begin, (unsigned long long)e->end);
        prev = e;
    }
    qsort(ck->by_name, n, sizeof *ck->by_name, cmp_name);
    for (size_t i = 1; i < n; i++) {
        const ur__ckpt_entry *a = ck->by_name[i - 1], *e = ck->by_name[i];
        if (strcmp(a->name, e->name) == 0)
            return rec_error(ck, a->pos > e->pos ? a : e, F, "", "duplicate tensor name '%.60s'", e->name);
    }
    if (ck->n_meta > 1) qsort(ck->meta, (size_t)ck->n_meta, sizeof *ck->meta, cmp_key);
    for (int i = 1; i < ck->n_meta; i++)
        if (strcmp(ck->meta[i - 1].key, ck->meta[i].key) == 0)
            return ur_set_error(F, "%.150s: duplicate metadata key '%.60s'", ck->label, ck->meta[i].key);
    return UR_OK;
}

/* Checks the 8-byte prefix of a file of total bytes; sets the data area. */
static ur_status check_prefix(ur_ckpt *ck, const uint8_t *prefix, uint64_t total, uint64_t *hlen) {
    const char *L = ck->label;
    if (total < 8)
        return ur_set_error(UR_ERR_FORMAT,
                            "%.150s: offset 0: the file has %llu bytes, fewer than the 8-byte header length",
                            L, (unsigned long long)total);
    uint64_t n = get_u64(prefix);
    if (n > UR_CKPT_MAX_HEADER)
        return ur_set_error(UR_ERR_FORMAT,
                            "%.150s: offset 0: header length %llu exceeds the limit of %d bytes", L,
                            (unsigned long long)n, UR_CKPT_MAX_HEADER);
    if (n > total - 8)
        return ur_set_error(
            UR_ERR_FORMAT,
            "%.150s: offset 0: header length %llu exceeds the %llu bytes after the length prefix "
            "(truncated file?)",
            L, (unsigned long long)n, (unsigned long long)(total - 8));
    *hlen = n;
    ck->data_start = 8 + n;
    ck->data_size = total - 8 - n;
    return UR_OK;
}

static ur_status load_header(ur_ckpt *ck, const uint8_t *hdr, size_t n) {
    ck->arena = ur_malloc(n + 1);
    if (!ck->arena)
        return ur_set_error(UR_ERR_NOMEM, "%.150s: out of memory for a %zu-byte header", ck->label, n);
    ur_status st = ur__ckpt_parse_json(ck, hdr, n);
    return st == UR_OK ? validate(ck) : st;
}

/* ur_ckpt_open with the status of a failure in *status. */
static ur_ckpt *open_file(const char *path, ur_status *status) {
    if (!path) {
        *status = ur_set_error(UR_ERR_ARG, "ur_ckpt_open: path is NULL");
        return NULL;
    }
    ur_ckpt *ck = reader_new(path);
    if (!ck) {
        *status = UR_ERR_NOMEM;
        return NULL;
    }
    uint8_t prefix[8] = {0};
    uint8_t *hdr = NULL;
    uint64_t hlen = 0;
    ur_status st = UR_OK;
    ck->f = fopen(path, "rb");
    if (!ck->f) {
        st = ur_set_error(UR_ERR_IO, "checkpoint %.150s: cannot open: %s", path, strerror(errno));
        goto done;
    }
    struct stat sb;
    if (fstat(fileno(ck->f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = ur_set_error(UR_ERR_IO, "checkpoint %.150s: not a regular file", path);
        goto done;
    }
    off_t size = -1;
    if (fseeko(ck->f, 0, SEEK_END) == 0) size = ftello(ck->f);
    if (size < 0 || fseeko(ck->f, 0, SEEK_SET) != 0) {
        st = ur_set_error(UR_ERR_IO, "checkpoint %.150s: cannot determine the file size: %s", path,
                          strerror(errno));
        goto done;
    }
    size_t got = fread(prefix, 1, 8, ck->f);
    st = check_prefix(ck, prefix, (uint64_t)(got < 8 ? (uint64_t)got : (uint64_t)size), &hlen);
    if (st != UR_OK) goto done;
    hdr = ur_malloc((size_t)hlen + 1);
    if (!hdr) {
        st = ur_set_error(UR_ERR_NOMEM, "%.150s: out of memory for a %llu-byte header", path,
                          (unsigned long long)hlen);
        goto done;
    }
    if (fread(hdr, 1, (size_t)hlen, ck->f) != (size_t)hlen) {
        st = ur_set_error(UR_ERR_IO, "checkpoint %.150s: cannot read the %llu-byte header", path,
                          (unsigned long long)hlen);
        goto done;
    }
    st = load_header(ck, hdr, (size_t)hlen);
done:
    ur_free(hdr);
    *status = st;
    if (st != UR_OK) {
        ur_ckpt_close(ck);
        return NULL;
    }
    return ck;
}

ur_ckpt *ur_ckpt_open(const char *path) {
    ur_status st;
    return open_file(path, &st);
}

static ur_ckpt *open_memory(const uint8_t *data, size_t size, const char *label, ur_status *status) {
    if (!label) label = "<memory>";
    if (!data && size > 0) {
        *status = ur_set_error(UR_ERR_ARG, "ur_ckpt_open_memory: data is NULL");
        return NULL;
    }
    ur_ckpt *ck = reader_new(label);
    if (!ck) {
        *status = UR_ERR_NOMEM;
        return NULL;
    }
    ck->mem = data;
    uint64_t hlen = 0;
    ur_status st = check_prefix(ck, data, (uint64_t)size, &hlen);
    if (st == UR_OK) st = load_header(ck, data + 8, (size_t)hlen);
    *status = st;
    if (st != UR_OK) {
        ur_ckpt_close(ck);
        return NULL;
    }
    return ck;
}

ur_ckpt *ur_ckpt_open_memory(const uint8_t *data, size_t size, const char *label) {
    ur_status st;
    return open_memory(data, size, label, &st);
}

ur_status ur_ckpt_parse_header(const uint8_t *data, size_t size, const char *label) {
    ur_status st;
    ur_ckpt_close(open_memory(data, size, label, &st));
    return st;
}

/* ---- lookups ---- */

static const ur__ckpt_entry *find_entry(const ur_ckpt *ck, const char *name) {
    if (!ck || !name || !ck->by_name) return NULL;
    ur__ckpt_entry key;
    key.name = name;
    const ur__ckpt_entry *kp = &key;
    const ur__ckpt_entry **hit = bsearch(&kp, ck->by_name, (size_t)ck->n_ent, sizeof *ck->by_name, cmp_name);
    return hit ? *hit : NULL;
}

int ur_ckpt_count(const ur_ckpt *ck) { return ck ? ck->n_ent : 0; }

const char *ur_ckpt_name(const ur_ckpt *ck, int i) {
    return ck && i >= 0 && i < ck->n_ent ? ck->ent[i].name : NULL;
}

int ur_ckpt_has(const ur_ckpt *ck, const char *name) { return find_entry(ck, name) != NULL; }

const char *ur_ckpt_dtype(const ur_ckpt *ck, const char *name) {
    const ur__ckpt_entry *e = find_entry(ck, name);
    return e ? ur__ckpt_dtypes[e->dtype].name : NULL;
}

int ur_ckpt_meta_count(const ur_ckpt *ck) { return ck ? ck->n_meta : 0; }

const char *ur_ckpt_meta_key(const ur_ckpt *ck, int i) {
    return ck && i >= 0 && i < ck->n_meta ? ck->meta[i].key : NULL;
}

const char *ur_ckpt_meta(const ur_ckpt *ck, const char *key) {
    if (!ck || !key || ck->n_meta == 0) return NULL;
    ur_ckpt_kv k = {key, NULL};
    const ur_ckpt_kv *hit = bsearch(&k, ck->meta, (size_t)ck->n_meta, sizeof *ck->meta, cmp_key);
    return hit ? hit->value : NULL;
}

static ur_status missing(const ur_ckpt *ck, const char *name, const char *what) {
    return ur_set_error(UR_ERR_FORMAT, "checkpoint %.150s: %s '%.60s' is missing", ck ? ck->label : "?", what,
                        name ? name : "(null)");
}

ur_status ur_ckpt_shape(const ur_ckpt *ck, const char *name, ur_shape *out) {
    if (!ck || !out) return ur_set_error(UR_ERR_ARG, "ur_ckpt_shape: checkpoint or output is NULL");
    const ur__ckpt_entry *e = find_entry(ck, name);
    if (!e) return missing(ck, name, "tensor");
    if (e->ndim > UR_MAX_DIMS)
        return rec_error(ck, e, UR_ERR_SHAPE, "checkpoint ",
                         "tensor '%.60s' has %d dimensions (at most %d supported)", e->name, e->ndim,
                         UR_MAX_DIMS);
    int dims[UR_MAX_DIMS];
    for (int d = 0; d < e->ndim; d++) {
        if (e->dims[d] == 0 || e->dims[d] > INT_MAX)
            return rec_error(ck, e, UR_ERR_SHAPE, "checkpoint ",
                             "tensor '%.60s' has dimension %llu (not supported)", e->name,
                             (unsigned long long)e->dims[d]);
        dims[d] = (int)e->dims[d];
    }
    char what[256];
    snprintf(what, sizeof what, "checkpoint %.150s: offset %llu: tensor '%.40s'", ck->label,
             (unsigned long long)e->pos, e->name);
    return ur_shape_make(out, e->ndim, dims, what);
}

/* The tensor can be read into a tensor of shape want; who names the receiver. */
static ur_status check_readable(const ur_ckpt *ck, const ur__ckpt_entry *e, const ur_shape *want,
                                const char *who) {
    if (e->dtype != UR__DT_F32 && e->dtype != UR__DT_F64)
        return rec_error(ck, e, UR_ERR_FORMAT, "checkpoint ",
                         "tensor '%.60s' has dtype %s; only F32 and F64 can be read", e->name,
                         ur__ckpt_dtypes[e->dtype].name);
    int same = e->ndim == want->ndim;
    for (int d = 0; same && d < e->ndim; d++) same = e->dims[d] == (uint64_t)want->dims[d];
    if (!same) {
        char a[160], b[64];
        return rec_error(ck, e, UR_ERR_SHAPE, "checkpoint ", "tensor '%.60s' has shape %s, %s expects %s",
                         e->name, dims_str(e, a, sizeof a), who, ur_shape_str(want, b, sizeof b));
    }
    return UR_OK;
}

/* Reads the (checked) tensor's values into dst, converting to ur_real. */
static ur_status read_values(ur_ckpt *ck, const ur__ckpt_entry *e, ur_real *dst) {
    uint8_t buf[4096];
    size_t esz = ur__ckpt_dtypes[e->dtype].size;
    uint64_t count = (e->end - e->begin) / esz;
    const size_t per = sizeof buf / esz;
    uint64_t at = ck->data_start + e->begin; /* file offset of the tensor's bytes */
    if (ck->f && fseeko(ck->f, (off_t)at, SEEK_SET) != 0)
        return ur_set_error(UR_ERR_IO, "checkpoint %.150s: offset %llu: cannot seek to tensor '%.60s': %s",
                            ck->label, (unsigned long long)at, e->name, strerror(errno));
    for (uint64_t done = 0; done < count;) {
        size_t m = count - done < per ? (size_t)(count - done) : per;
        if (ck->f) {
            if (fread(buf, esz, m, ck->f) != m)
                return ur_set_error(UR_ERR_IO,
                                    "checkpoint %.150s: offset %llu: reading tensor '%.60s' failed (file "
                                    "changed?)",
                                    ck->label, (unsigned long long)(at + done * esz), e->name);
        } else {
            memcpy(buf, ck->mem + ck->data_start + e->begin + done * esz, m * esz);
        }
        decode_reals(buf, e->dtype, m, dst + done);
        done += m;
    }
    return UR_OK;
}

ur_status ur_ckpt_get(ur_ckpt *ck, const char *name, ur_tensor *dst) {
    if (!ck || !dst) return ur_set_error(UR_ERR_ARG, "ur_ckpt_get: checkpoint or tensor is NULL");
    const ur__ckpt_entry *e = find_entry(ck, name);
    if (!e) return missing(ck, name, "tensor");
    ur_status st = check_readable(ck, e, &dst->shape, "destination");
    return st == UR_OK ? read_values(ck, e, dst->data) : st;
}

ur_tensor *ur_ckpt_get_new(ur_ckpt *ck, const char *name) {
    ur_shape s;
    if (ur_ckpt_shape(ck, name, &s) != UR_OK) return NULL;
    ur_tensor *t = ur_tensor_new(s.ndim, s.dims);
    if (!t) return NULL;
    if (ur_ckpt_get(ck, name, t) != UR_OK) {
        ur_tensor_free(t);
        return NULL;
    }
    return t;
}

/* ---- parameters and optimizer state ---- */

ur_status ur_ckpt_read_params(ur_ckpt *ck, ur_paramset *ps, unsigned flags) {
    if (!ck || !ps) return ur_set_error(UR_ERR_ARG, "ur_ckpt_read_params: checkpoint or paramset is NULL");
    int np = ur_paramset_count(ps);
    for (int i = 0; i < np; i++) { /* check everything before changing anything */
        const ur_param *p = ur_paramset_get(ps, i);
        const ur__ckpt_entry *e = find_entry(ck, p->name);
        if (!e) {
            if (flags & UR_CKPT_ALLOW_MISSING) continue;
            return ur_set_error(
                UR_ERR_FORMAT,
                "checkpoint %.150s: parameter '%.60s' is missing (UR_CKPT_ALLOW_MISSING keeps its value)",
                ck->label, p->name);
        }
        ur_status st = check_readable(ck, e, &p->value.shape, "parameter");
        if (st != UR_OK) return st;
    }
    if (flags & UR_CKPT_REJECT_UNKNOWN) {
        for (int i = 0; i < ck->n_ent; i++) {
            const char *name = ck->ent[i].name;
            if (strncmp(name, "optim.", 6) != 0 && !ur_paramset_find(ps, name))
                return ur_set_error(UR_ERR_FORMAT, "checkpoint %.150s: tensor '%.60s' matches no parameter",
                                    ck->label, name);
        }
    }
    for (int i = 0; i < np; i++) {
        ur_param *p = ur_paramset_get(ps, i);
        const ur__ckpt_entry *e = find_entry(ck, p->name);
        if (!e) continue;
        ur_status st = read_values(ck, e, p->value.data);
        if (st != UR_OK) return st;
    }
    return UR_OK;
}

ur_status ur_ckpt_load_params(const char *path, ur_paramset *ps, unsigned flags) {
    ur_status st;
    ur_ckpt *ck = open_file(path, &st);
    if (!ck) return st;
    st = ur_ckpt_read_params(ck, ps, flags);
    ur_ckpt_close(ck);
    return st;
}

/* A decimal u64 without sign or spaces. */
static int parse_decimal(const char *s, uint64_t *out) {
    uint64_t v = 0;
    if (!*s) return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return 0;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

ur_status ur_ckpt_read_optim(ur_ckpt *ck, ur_optim *opt) {
    if (!ck || !opt) return ur_set_error(UR_ERR_ARG, "ur_ckpt_read_optim: checkpoint or optimizer is NULL");
    const char *L = ck->label;
    const char *kind = ur_ckpt_meta(ck, "optim.kind"), *step_s = ur_ckpt_meta(ck, "optim.step");
    const char *mine = ur_optim_kind_name(ur_optim_config_of(opt)->kind);
    uint64_t step;
    if (!step_s)
        return ur_set_error(UR_ERR_FORMAT,
                            "checkpoint %.150s: no optimizer state (metadata 'optim.step' is missing)", L);
    if (!parse_decimal(step_s, &step))
        return ur_set_error(UR_ERR_FORMAT,
                            "checkpoint %.150s: metadata optim.step '%.30s' is not a step count", L, step_s);
    if (kind && strcmp(kind, mine) != 0)
        return ur_set_error(UR_ERR_FORMAT,
                            "checkpoint %.150s: optimizer state is for '%.20s', this optimizer is '%s'", L,
                            kind, mine);
    if (step > 0) {
        ur_status st = ur_optim_init_state(opt);
        if (st != UR_OK) return st;
        int n = ur_optim_state_count(opt);
        for (int pass = 0; pass < 2; pass++) /* pass 0 checks all, pass 1 reads */
            for (int i = 0; i < n; i++) {
                const char *name;
                ur_tensor *t = ur_optim_state_at(opt, i, &name);
                const ur__ckpt_entry *e = find_entry(ck, name);
                if (!e) return missing(ck, name, "optimizer state tensor");
                st = pass == 0 ? check_readable(ck, e, &t->shape, "optimizer state")
                               : read_values(ck, e, t->data);
                if (st != UR_OK) return st;
            }
    }
    ur_optim_set_step_count(opt, step);
    return UR_OK;
}

/* ---- RNG state ---- */

void ur_ckpt_rng_encode(const ur_rng *r, char *out) {
    if (!out) return;
    if (!r) {
        out[0] = '\0';
        return;
    }
    uint64_t spare;
    memcpy(&spare, &r->spare, 8);
    snprintf(out, UR_CKPT_RNG_HEX, "%016llx%016llx%016llx%016llx%016llx%d", (unsigned long long)r->s[0],
             (unsigned long long)r->s[1], (unsigned long long)r->s[2], (unsigned long long)r->s[3],
             (unsigned long long)spare, r->has_spare ? 1 : 0);
}

ur_status ur_ckpt_rng_decode(const char *hex, ur_rng *r) {
    if (!hex || !r) return ur_set_error(UR_ERR_ARG, "ur_ckpt_rng_decode: string or rng is NULL");
    if (strlen(hex) != UR_CKPT_RNG_HEX - 1 || (hex[80] != '0' && hex[80] != '1'))
        return ur_set_error(UR_ERR_FORMAT, "ur_ckpt_rng_decode: '%.90s' is not an RNG state (81 hex digits)",
                            hex);
    uint64_t w[5];
    for (int k = 0; k < 5; k++) {
        uint32_t hi, lo;
        const uint8_t *s = (const uint8_t *)hex + 16 * k;
        if (!ur__ckpt_hex4(s, &hi) || !ur__ckpt_hex4(s + 4, &lo)) goto bad;
        w[k] = (uint64_t)hi << 48 | (uint64_t)lo << 32;
        if (!ur__ckpt_hex4(s + 8, &hi) || !ur__ckpt_hex4(s + 12, &lo)) goto bad;
        w[k] |= (uint64_t)hi << 16 | lo;
    }
    for (int k = 0; k < 4; k++) r->s[k] = w[k];
    memcpy(&r->spare, &w[4], 8);
    r->has_spare = hex[80] == '1';
    return UR_OK;
bad:
    return ur_set_error(UR_ERR_FORMAT,
                        "ur_ckpt_rng_decode: '%.90s' holds a character that is not a hex digit", hex);
}
