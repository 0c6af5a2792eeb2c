/* checkpoint_json.c - the strict JSON parser of a safetensors header.
 *
 * It knows only the safetensors schema: one object of tensor records
 * {"dtype": "F32", "shape": [..], "data_offsets": [b, e]} plus at most one
 * "__metadata__" object of strings. It stops at the first byte that does not fit
 * and names that byte's file offset. Strings must be valid UTF-8 (escapes
 * included), integers plain decimals that fit 64 bits, and nothing may follow the
 * object but whitespace. Sizes and offsets are checked afterwards (checkpoint.c).
 */
#include "checkpoint_internal.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at s (at most avail bytes), 0 if invalid. */
size_t ur__ckpt_utf8_len(const uint8_t *s, size_t avail) {
    uint8_t c = s[0];
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;      /* no overlong forms */
        else if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        else if (c == 0xF4) hi = 0x8F; /* nothing above U+10FFFF */
    } else return 0;
    if (avail < len || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return len;
}

/* ---- the header parser ---- */

typedef struct parser {
    ur_ckpt *ck;
    const uint8_t *s; /* the header, n bytes */
    size_t n, pos;
} parser;

static ur_status perr(const parser *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static ur_status perr(const parser *p, const char *fmt, ...) {
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ur_set_error(UR_ERR_FORMAT, "%.150s: offset %llu: %s", p->ck->label,
                        (unsigned long long)(8 + p->pos), msg);
}

static void skip_ws(parser *p) {
    while (p->pos < p->n) {
        uint8_t c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

/* Describes the byte at the current position for a message. */
static const char *found(const parser *p, char *buf, size_t n) {
    if (p->pos >= p->n) snprintf(buf, n, "the end of the header");
    else if (p->s[p->pos] >= 0x21 && p->s[p->pos] < 0x7F) snprintf(buf, n, "'%c'", p->s[p->pos]);
    else snprintf(buf, n, "byte 0x%02x", p->s[p->pos]);
    return buf;
}

static ur_status expect(parser *p, char c, const char *where) {
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == (uint8_t)c) {
        p->pos++;
        return UR_OK;
    }
    char b[32];
    return perr(p, "expected '%c' %s, found %s", c, where, found(p, b, sizeof b));
}

/* After an element of an object or array: 1 for ',', 0 for the closing bracket. */
static ur_status next_or_close(parser *p, char close, const char *where, int *more) {
    skip_ws(p);
    if (p->pos < p->n && (p->s[p->pos] == ',' || p->s[p->pos] == (uint8_t)close)) {
        *more = p->s[p->pos] == ',';
        p->pos++;
        return UR_OK;
    }
    char b[32];
    return perr(p, "expected ',' or '%c' %s, found %s", close, where, found(p, b, sizeof b));
}

int ur__ckpt_hex4(const uint8_t *s, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return 0;
        v = v * 16 + (uint32_t)d;
    }
    *out = v;
    return 1;
}

static size_t utf8_put(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A \uXXXX escape (with its low surrogate if it is a high one) at p->pos. */
static ur_status parse_u_escape(parser *p, uint32_t *cp) {
    if (p->n - p->pos < 6 || !ur__ckpt_hex4(p->s + p->pos + 2, cp)) return perr(p, "invalid \\u escape");
    p->pos += 6;
    if (*cp >= 0xDC00 && *cp <= 0xDFFF) return perr(p, "unpaired low surrogate in a \\u escape");
    if (*cp >= 0xD800 && *cp <= 0xDBFF) {
        uint32_t lo;
        if (p->n - p->pos < 6 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u' ||
            !ur__ckpt_hex4(p->s + p->pos + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
            return perr(p, "high surrogate without a low surrogate in a \\u escape");
        p->pos += 6;
        *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (*cp == 0) return perr(p, "\\u0000 in a string is not supported");
    return UR_OK;
}

/* A JSON string, decoded into the arena. A decoded string plus its NUL is never
 * longer than its quoted form, so the arena (header length + 1) cannot overflow. */
static ur_status parse_string(parser *p, const char **out) {
    skip_ws(p);
    if (p->pos >= p->n || p->s[p->pos] != '"') {
        char b[32];
        return perr(p, "expected a string, found %s", found(p, b, sizeof b));
    }
    p->pos++;
    char *dst = p->ck->arena + p->ck->arena_used;
    size_t k = 0;
    for (;;) {
        if (p->pos >= p->n) return perr(p, "unterminated string");
        uint8_t c = p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) return perr(p, "control character 0x%02x in a string", c);
        if (c != '\\') {
            size_t len = ur__ckpt_utf8_len(p->s + p->pos, p->n - p->pos);
            if (!len) return perr(p, "invalid UTF-8 in a string");
            memcpy(dst + k, p->s + p->pos, len);
            k += len;
            p->pos += len;
            continue;
        }
        if (p->pos + 1 >= p->n) return perr(p, "unterminated string");
        uint8_t e = p->s[p->pos + 1];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char decoded[] = "\"\\/\b\f\n\r\t";
            dst[k++] = decoded[simple - "\"\\/bfnrt"];
            p->pos += 2;
        } else if (e == 'u') {
            uint32_t cp = 0;
            ur_status st = parse_u_escape(p, &cp);
            if (st != UR_OK) return st;
            k += utf8_put(cp, dst + k);
        } else {
            return perr(p, "invalid escape sequence in a string");
        }
    }
    dst[k] = '\0';
    p->ck->arena_used += k + 1;
    *out = dst;
    return UR_OK;
}

/* A non-negative integer without sign, fraction or exponent. */
static ur_status parse_uint(parser *p, uint64_t *out) {
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == '-') return perr(p, "negative integer");
    if (p->pos >= p->n || p->s[p->pos] < '0' || p->s[p->pos] > '9') {
        char b[32];
        return perr(p, "expected an integer, found %s", found(p, b, sizeof b));
    }
    if (p->s[p->pos] == '0' && p->pos + 1 < p->n && p->s[p->pos + 1] >= '0' && p->s[p->pos + 1] <= '9')
        return perr(p, "integer with a leading zero");
    uint64_t v = 0;
    while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        unsigned d = (unsigned)(p->s[p->pos] - '0');
        if (v > (UINT64_MAX - d) / 10) return perr(p, "integer too large");
        v = v * 10 + d;
        p->pos++;
    }
    if (p->pos < p->n && (p->s[p->pos] == '.' || p->s[p->pos] == 'e' || p->s[p->pos] == 'E'))
        return perr(p, "expected an integer, found a fraction or exponent");
    *out = v;
    return UR_OK;
}

/* [int, ...] with at most max entries. */
static ur_status parse_uint_array(parser *p, uint64_t *v, int max, int *count, const char *what) {
    ur_status st = expect(p, '[', what);
    if (st != UR_OK) return st;
    *count = 0;
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == ']') {
        p->pos++;
        return UR_OK;
    }
    for (int more = 1; more;) {
        if (*count >= max) return perr(p, "%s has more than %d entries", what, max);
        st = parse_uint(p, &v[*count]);
        if (st == UR_OK) st = next_or_close(p, ']', what, &more);
        if (st != UR_OK) return st;
        (*count)++;
    }
    return UR_OK;
}

/* {"dtype": ..., "shape": [...], "data_offsets": [b, e]} */
static ur_status parse_tensor_record(parser *p, ur__ckpt_entry *e) {
    char where[96];
    snprintf(where, sizeof where, "in the record of tensor '%.60s'", e->name);
    ur_status st = expect(p, '{', where);
    if (st != UR_OK) return st;
    int seen_dtype = 0, seen_shape = 0, seen_offsets = 0;
    skip_ws(p);
    int more = 1;
    if (p->pos < p->n && p->s[p->pos] == '}') {
        p->pos++;
        more = 0;
    }
    while (more) {
        const char *key, *dt;
        uint64_t off[2];
        int n_off;
        skip_ws(p);
        size_t key_pos = p->pos; /* errors about the key or the dtype point here */
        st = parse_string(p, &key);
        if (st == UR_OK) st = expect(p, ':', where);
        if (st != UR_OK) return st;
        if (strcmp(key, "dtype") == 0 && !seen_dtype) {
            seen_dtype = 1;
            st = parse_string(p, &dt);
            if (st != UR_OK) return st;
            e->dtype = ur__ckpt_dtype_find(dt);
            if (e->dtype < 0) {
                p->pos = key_pos;
                return perr(p, "tensor '%.60s' has unknown dtype '%.20s'", e->name, dt);
            }
        } else if (strcmp(key, "shape") == 0 && !seen_shape) {
            seen_shape = 1;
            st = parse_uint_array(p, e->dims, UR_CKPT_MAX_DIMS, &e->ndim, "shape");
        } else if (strcmp(key, "data_offsets") == 0 && !seen_offsets) {
            seen_offsets = 1;
            st = parse_uint_array(p, off, 2, &n_off, "data_offsets");
            if (st == UR_OK && n_off != 2)
                return perr(p, "data_offsets of tensor '%.60s' must hold 2 integers", e->name);
            e->begin = off[0];
            e->end = off[1];
        } else {
            p->pos = key_pos;
            return perr(p, "%s key '%.40s' %s",
                        seen_dtype + seen_shape + seen_offsets < 3 ? "unexpected" : "extra", key, where);
        }
        if (st == UR_OK) st = next_or_close(p, '}', where, &more);
        if (st != UR_OK) return st;
    }
    if (!seen_dtype || !seen_shape || !seen_offsets)
        return perr(p, "tensor '%.60s' lacks \"%s\"", e->name,
                    !seen_dtype   ? "dtype"
                    : !seen_shape ? "shape"
                                  : "data_offsets");
    return UR_OK;
}

/* {"key": "value", ...} */
static ur_status parse_metadata(parser *p) {
    ur_ckpt *ck = p->ck;
    ur_status st = expect(p, '{', "to open __metadata__");
    if (st != UR_OK) return st;
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == '}') {
        p->pos++;
        return UR_OK;
    }
    for (int more = 1; more;) {
        const char *key, *value;
        st = parse_string(p, &key);
        if (st == UR_OK) st = expect(p, ':', "after a metadata key");
        if (st != UR_OK) return st;
        skip_ws(p);
        if (p->pos >= p->n || p->s[p->pos] != '"')
            return perr(p, "metadata value of '%.60s' must be a string", key);
        st = parse_string(p, &value);
        if (st != UR_OK) return st;
        if (ck->n_meta == ck->cap_meta) {
            int cap = ck->cap_meta ? ck->cap_meta * 2 : 8;
            ur_ckpt_kv *m = ur_realloc(ck->meta, (size_t)ck->n_meta * sizeof *m, (size_t)cap * sizeof *m);
            if (!m) return ur_set_error(UR_ERR_NOMEM, "%.150s: out of memory for the metadata", ck->label);
            ck->meta = m;
            ck->cap_meta = cap;
        }
        ck->meta[ck->n_meta++] = (ur_ckpt_kv){key, value};
        st = next_or_close(p, '}', "in __metadata__", &more);
        if (st != UR_OK) return st;
    }
    return UR_OK;
}

/* A new record named name whose name starts at header position name_pos. */
static ur_status add_entry(parser *p, const char *name, size_t name_pos, ur__ckpt_entry **out) {
    ur_ckpt *ck = p->ck;
    if (!name[0]) return perr(p, "empty tensor name");
    if (ck->n_ent == ck->cap_ent) {
        if (ck->cap_ent > INT_MAX / 2) return perr(p, "too many tensors");
        int cap = ck->cap_ent ? ck->cap_ent * 2 : 16;
        ur__ckpt_entry *e = ur_realloc(ck->ent, (size_t)ck->n_ent * sizeof *e, (size_t)cap * sizeof *e);
        if (!e) return ur_set_error(UR_ERR_NOMEM, "%.150s: out of memory for the tensor list", ck->label);
        ck->ent = e;
        ck->cap_ent = cap;
    }
    ur__ckpt_entry *e = &ck->ent[ck->n_ent++];
    memset(e, 0, sizeof *e);
    e->name = name;
    e->dtype = -1;
    e->pos = 8 + (uint64_t)name_pos;
    *out = e;
    return UR_OK;
}

/* The whole header: one object of tensor records and at most one __metadata__. */
ur_status ur__ckpt_parse_json(ur_ckpt *ck, const uint8_t *hdr, size_t n) {
    parser parser_state = {ck, hdr, n, 0}, *p = &parser_state;
    ur_status st = expect(p, '{', "at the start of the header");
    if (st != UR_OK) return st;
    skip_ws(p);
    int more = 1, seen_meta = 0;
    if (p->pos < p->n && p->s[p->pos] == '}') {
        p->pos++;
        more = 0;
    }
    while (more) {
        const char *key;
        skip_ws(p);
        size_t key_pos = p->pos;
        st = parse_string(p, &key);
        if (st == UR_OK) st = expect(p, ':', "after a tensor name");
        if (st != UR_OK) return st;
        if (strcmp(key, "__metadata__") == 0) {
            if (seen_meta) return perr(p, "duplicate __metadata__");
            seen_meta = 1;
            st = parse_metadata(p);
        } else {
            ur__ckpt_entry *e = NULL;
            st = add_entry(p, key, key_pos, &e);
            if (st == UR_OK) st = parse_tensor_record(p, e);
        }
        if (st == UR_OK) st = next_or_close(p, '}', "in the header object", &more);
        if (st != UR_OK) return st;
    }
    skip_ws(p);
    if (p->pos != p->n) {
        char b[32];
        return perr(p, "unexpected %s after the header object", found(p, b, sizeof b));
    }
    return UR_OK;
}
