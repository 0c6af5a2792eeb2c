/* data_pairs.c - tab-separated sentence pairs and a simple word tokenizer. */
#include "data_internal.h"

#include <string.h>

#define FN "ur_pairs_parse"

/* Pointers into `text` are made at the end, when it no longer moves. */
static ur_status finish_pairs(ur_data_vec *text, const ur_data_vec *offs, ur_pairs **out) {
    size_t n = offs->n / 2;
    ur_pairs *p = ur_calloc(1, sizeof *p);
    const char **src = ur_malloc(n * sizeof *src);
    const char **tgt = ur_malloc(n * sizeof *tgt);
    if (!p || !src || !tgt) {
        ur_free(p);
        ur_free(src);
        ur_free(tgt);
        return ur_data_nomem(FN);
    }
    p->text_ = ur_data_vec_take(text);
    const size_t *o = offs->p;
    for (size_t i = 0; i < n; i++) {
        src[i] = p->text_ + o[2 * i];
        tgt[i] = p->text_ + o[2 * i + 1];
    }
    p->n = (int)n;
    p->src = src;
    p->tgt = tgt;
    *out = p;
    return UR_OK;
}

/* Appends the len bytes at s and a NUL to text, and its offset to offs. */
static ur_status push_string(ur_data_vec *text, ur_data_vec *offs, const char *s, size_t len, const char *fn) {
    size_t off = text->n;
    ur_status st = ur_data_vec_push(text, s, len, fn);
    if (st == UR_OK) st = ur_data_vec_push(text, "", 1, fn);
    if (st == UR_OK) st = ur_data_vec_push(offs, &off, 1, fn);
    return st;
}

static ur_status pair_line(const char *name, size_t lineno, const char *line, size_t n, ur_data_vec *text,
                           ur_data_vec *offs) {
    if (n > UR_DATA_MAX_LINE)
        return ur_set_error(UR_ERR_FORMAT, FN ": %s:%zu: line too long (%zu bytes, limit %d)", name, lineno, n,
                            UR_DATA_MAX_LINE);
    const char *tab = memchr(line, '\t', n);
    if (!tab)
        return ur_set_error(UR_ERR_FORMAT, FN ": %s:%zu: expected 2 tab-separated columns, found 1", name, lineno);
    const char *t = tab + 1, *end = line + n;
    const char *tab2 = memchr(t, '\t', (size_t)(end - t));
    size_t ns = (size_t)(tab - line), nt = (size_t)((tab2 ? tab2 : end) - t);
    if (ns == 0 || nt == 0)
        return ur_set_error(UR_ERR_FORMAT, FN ": %s:%zu: empty %s column", name, lineno, ns ? "second" : "first");
    if (offs->n / 2 >= 0x7fffffff) return ur_set_error(UR_ERR_FORMAT, FN ": %s: too many pairs", name);
    ur_status s = push_string(text, offs, line, ns, FN);
    if (s == UR_OK) s = push_string(text, offs, t, nt, FN);
    return s;
}

ur_status ur_pairs_parse(const char *buf, size_t len, const char *name_for_errors, ur_pairs **out) {
    if (!out) return ur_set_error(UR_ERR_ARG, FN ": out is NULL");
    *out = NULL;
    if (!buf && len) return ur_set_error(UR_ERR_ARG, FN ": buf is NULL");
    const char *name = ur_data_name(name_for_errors), *line;
    ur_data_vec text = ur_data_vec_make(1), offs = ur_data_vec_make(sizeof(size_t));
    ur_data_lines it = ur_data_lines_make(buf ? buf : "", len);
    size_t n;
    ur_status s = UR_OK;
    while (s == UR_OK && ur_data_lines_next(&it, &line, &n))
        if (n > 0) s = pair_line(name, it.lineno, line, n, &text, &offs);
    if (s == UR_OK) s = finish_pairs(&text, &offs, out);
    ur_data_vec_free(&text);
    ur_data_vec_free(&offs);
    return s;
}

ur_status ur_pairs_read_file(const char *path, ur_pairs **out) {
    if (!out) return ur_set_error(UR_ERR_ARG, "ur_pairs_read_file: out is NULL");
    *out = NULL;
    char *buf;
    size_t len;
    ur_status s = ur_data_read_all(path, 0, "ur_pairs_read_file", &buf, &len);
    if (s != UR_OK) return s;
    s = ur_pairs_parse(buf, len, path, out);
    ur_free(buf);
    return s;
}

void ur_pairs_free(ur_pairs *p) {
    if (!p) return;
    ur_free(p->src);
    ur_free(p->tgt);
    ur_free(p->text_);
    ur_free(p);
}

/* ---- tokenizer ---- */

static int is_ascii_alnum(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_ascii_punct(unsigned char c) { return c > ' ' && c < 127 && !is_ascii_alnum(c); }

/* Length of the space at s (ASCII space or control byte, UTF-8 U+00A0, U+2009,
 * U+202F), 0 if none. */
static size_t space_len(const unsigned char *s, size_t left) {
    if (*s <= ' ' || *s == 127) return 1;
    if (left >= 2 && s[0] == 0xC2 && s[1] == 0xA0) return 2;
    if (left >= 3 && s[0] == 0xE2 && s[1] == 0x80 && (s[2] == 0x89 || s[2] == 0xAF)) return 3;
    return 0;
}

/* A byte that belongs inside words: ASCII letter or digit, or part of a UTF-8 character. */
static int is_word_byte(const unsigned char *s, size_t left) {
    return left > 0 && (is_ascii_alnum(*s) || (*s >= 0x80 && space_len(s, left) == 0));
}

typedef struct tokenizer {
    ur_data_vec text, offs;
    size_t start; /* offset in text of the token being built */
} tokenizer;

/* Ends the token being built, if any. */
static ur_status end_token(tokenizer *tk) {
    if (tk->text.n == tk->start) return UR_OK;
    ur_status s = ur_data_vec_push(&tk->text, "", 1, "ur_tokenize");
    if (s == UR_OK) s = ur_data_vec_push(&tk->offs, &tk->start, 1, "ur_tokenize");
    tk->start = tk->text.n;
    return s;
}

/* Handles the byte(s) at s; returns how many were consumed through *used. */
static ur_status tokenize_at(tokenizer *tk, const unsigned char *s, size_t left, size_t *used) {
    size_t sp = space_len(s, left);
    *used = sp ? sp : 1;
    if (sp) return end_token(tk);
    unsigned char c = *s;
    int inside = tk->text.n > tk->start && is_word_byte((unsigned char *)tk->text.p + tk->text.n - 1, 1) &&
                 is_word_byte(s + 1, left - 1);
    if (is_ascii_punct(c) && !((c == '\'' || c == '-') && inside)) {
        char p = (char)c;
        ur_status st = end_token(tk);
        if (st == UR_OK) st = ur_data_vec_push(&tk->text, &p, 1, "ur_tokenize");
        return st == UR_OK ? end_token(tk) : st;
    }
    char lower = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return ur_data_vec_push(&tk->text, &lower, 1, "ur_tokenize");
}

static ur_status finish_tokens(tokenizer *tk, ur_tokens **out) {
    size_t n = tk->offs.n;
    ur_tokens *t = ur_calloc(1, sizeof *t);
    const char **tok = ur_malloc(n * sizeof *tok);
    if (!t || !tok) {
        ur_free(t);
        ur_free(tok);
        return ur_data_nomem("ur_tokenize");
    }
    t->text_ = ur_data_vec_take(&tk->text);
    for (size_t i = 0; i < n; i++) tok[i] = t->text_ + ((const size_t *)tk->offs.p)[i];
    t->n = (int)n;
    t->tok = tok;
    *out = t;
    return UR_OK;
}

ur_status ur_tokenize(const char *s, size_t len, ur_tokens **out) {
    if (!out) return ur_set_error(UR_ERR_ARG, "ur_tokenize: out is NULL");
    *out = NULL;
    if (!s && len) return ur_set_error(UR_ERR_ARG, "ur_tokenize: s is NULL");
    if (len > 0x7fffffff) return ur_set_error(UR_ERR_ARG, "ur_tokenize: string too long");
    tokenizer tk = {ur_data_vec_make(1), ur_data_vec_make(sizeof(size_t)), 0};
    const unsigned char *u = (const unsigned char *)s;
    ur_status st = UR_OK;
    size_t used;
    for (size_t i = 0; st == UR_OK && i < len; i += used) st = tokenize_at(&tk, u + i, len - i, &used);
    if (st == UR_OK) st = end_token(&tk);
    if (st == UR_OK) st = finish_tokens(&tk, out);
    ur_data_vec_free(&tk.text);
    ur_data_vec_free(&tk.offs);
    return st;
}

void ur_tokens_free(ur_tokens *t) {
    if (!t) return;
    ur_free(t->tok);
    ur_free(t->text_);
    ur_free(t);
}
