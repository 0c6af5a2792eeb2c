/* data_conllu.c - CoNLL-U reader: sentences of (FORM, UPOS).
 *
 * A token line has 10 tab-separated columns: ID FORM LEMMA UPOS XPOS FEATS HEAD
 * DEPREL DEPS MISC. Only ID, FORM and UPOS are kept. The parser appends forms to one
 * byte array and tags to one int array, remembering where each sentence starts; the
 * word pointers are made once at the end, when the byte array no longer moves.
 */
#include "data_internal.h"

#include <string.h>

static const char *const upos_names[UR_UPOS_COUNT] = {
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
    "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X"};

_Static_assert(sizeof upos_names / sizeof upos_names[0] == 17, "17 UPOS tags");

const char *ur_upos_name(int id) { return id >= 0 && id < UR_UPOS_COUNT ? upos_names[id] : NULL; }

int ur_upos_id(const char *tag, size_t len) {
    if (!tag) return -1;
    for (int i = 0; i < UR_UPOS_COUNT; i++)
        if (strlen(upos_names[i]) == len && memcmp(upos_names[i], tag, len) == 0) return i;
    return -1;
}

/* Parser state: growing arrays and where the errors point. */
typedef struct parser {
    const char *name;
    size_t lineno;
    ur_data_vec text;   /* char: forms, NUL-terminated */
    ur_data_vec offs;   /* size_t: offset of each token's form in text */
    ur_data_vec tags;   /* int: UPOS id of each token */
    ur_data_vec starts; /* size_t: first token of each sentence */
    size_t sent_start;  /* first token of the sentence being read */
} parser;

#define FN "ur_conllu_parse"

static ur_status fail(const parser *p, const char *fmt, const char *field, size_t len) {
    int n = len > 40 ? 40 : (int)len;
    return ur_set_error(UR_ERR_FORMAT, FN ": %s:%zu: %s '%.*s'", p->name, p->lineno, fmt, n, field);
}

/* Splits line at tabs into at most 10 fields; returns the number of fields found. */
static int split_tabs(const char *line, size_t len, const char **f, size_t *flen) {
    int n = 0;
    const char *s = line, *end = line + len;
    for (;;) {
        const char *tab = memchr(s, '\t', (size_t)(end - s));
        const char *e = tab ? tab : end;
        if (n < 10) {
            f[n] = s;
            flen[n] = (size_t)(e - s);
        }
        n++;
        if (!tab) return n;
        s = tab + 1;
    }
}

/* Digits only, no sign; value in *v (saturating). */
static int parse_uint(const char *s, size_t len, long *v) {
    if (len == 0) return 0;
    *v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        if (*v < 100000000) *v = *v * 10 + (s[i] - '0');
    }
    return 1;
}

/* 1: a word ID in *id; 0: a range or decimal ID to skip; -1: malformed. */
static int classify_id(const char *s, size_t len, long *id) {
    if (parse_uint(s, len, id)) return *id >= 1 ? 1 : -1;
    const char *sep = NULL;
    for (size_t i = 0; i < len && !sep; i++)
        if (s[i] == '-' || s[i] == '.') sep = s + i;
    if (!sep) return -1;
    long a, b;
    size_t la = (size_t)(sep - s);
    if (!parse_uint(s, la, &a) || !parse_uint(sep + 1, len - la - 1, &b)) return -1;
    return 0;
}

/* Closes the current sentence (if it has tokens). */
static ur_status end_sentence(parser *p) {
    if (p->tags.n == p->sent_start) return UR_OK;
    if (p->starts.n >= 0x7fffffff) return ur_set_error(UR_ERR_FORMAT, FN ": %s: too many sentences", p->name);
    ur_status s = ur_data_vec_push(&p->starts, &p->sent_start, 1, FN);
    p->sent_start = p->tags.n;
    return s;
}

static ur_status token_line(parser *p, const char *line, size_t len) {
    const char *f[10];
    size_t fl[10];
    int n = split_tabs(line, len, f, fl);
    if (n != 10)
        return ur_set_error(UR_ERR_FORMAT, FN ": %s:%zu: expected 10 tab-separated columns, found %d", p->name,
                            p->lineno, n);
    long id;
    int kind = classify_id(f[0], fl[0], &id);
    if (kind < 0) return fail(p, "bad ID", f[0], fl[0]);
    if (kind == 0) return UR_OK;
    size_t expect = p->tags.n - p->sent_start + 1;
    if ((size_t)id != expect)
        return ur_set_error(UR_ERR_FORMAT, FN ": %s:%zu: ID %ld out of order (expected %zu)", p->name, p->lineno,
                            id, expect);
    if (fl[1] == 0) return ur_set_error(UR_ERR_FORMAT, FN ": %s:%zu: empty FORM", p->name, p->lineno);
    if (fl[3] == 0) return ur_set_error(UR_ERR_FORMAT, FN ": %s:%zu: empty UPOS", p->name, p->lineno);
    int tag = ur_upos_id(f[3], fl[3]);
    if (tag < 0) return fail(p, "unknown UPOS", f[3], fl[3]);
    size_t off = p->text.n;
    ur_status s = ur_data_vec_push(&p->text, f[1], fl[1], FN);
    if (s == UR_OK) s = ur_data_vec_push(&p->text, "", 1, FN);
    if (s == UR_OK) s = ur_data_vec_push(&p->offs, &off, 1, FN);
    if (s == UR_OK) s = ur_data_vec_push(&p->tags, &tag, 1, FN);
    return s;
}

static int is_blank(const char *line, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (line[i] != ' ' && line[i] != '\t') return 0;
    return 1;
}

static ur_status parse_lines(parser *p, const char *buf, size_t len) {
    ur_data_lines it = ur_data_lines_make(buf, len);
    const char *line;
    size_t n;
    while (ur_data_lines_next(&it, &line, &n)) {
        p->lineno = it.lineno;
        ur_status s = UR_OK;
        if (n > UR_DATA_MAX_LINE)
            s = ur_set_error(UR_ERR_FORMAT, FN ": %s:%zu: line too long (%zu bytes, limit %d)", p->name, p->lineno,
                             n, UR_DATA_MAX_LINE);
        else if (is_blank(line, n)) s = end_sentence(p);
        else if (line[0] != '#') s = token_line(p, line, n);
        if (s != UR_OK) return s;
    }
    return end_sentence(p);
}

/* Builds the result from the parser's arrays (which it takes over on success). */
static ur_status finish(parser *p, ur_conllu **out) {
    size_t nt = p->tags.n, ns = p->starts.n;
    ur_conllu *c = ur_calloc(1, sizeof *c);
    const char **words = ur_malloc(nt * sizeof *words);
    ur_tagged_sentence *sents = ur_malloc(ns * sizeof *sents);
    if (!c || !words || !sents) {
        ur_free(c);
        ur_free(words);
        ur_free(sents);
        return ur_data_nomem(FN);
    }
    c->text_ = ur_data_vec_take(&p->text);
    c->tags_ = ur_data_vec_take(&p->tags);
    const size_t *offs = p->offs.p, *starts = p->starts.p;
    for (size_t i = 0; i < nt; i++) words[i] = c->text_ + offs[i];
    for (size_t k = 0; k < ns; k++) {
        size_t end = k + 1 < ns ? starts[k + 1] : nt;
        sents[k] = (ur_tagged_sentence){(int)(end - starts[k]), words + starts[k], c->tags_ + starts[k]};
    }
    c->words_ = words;
    c->sents = sents;
    c->n_sentences = (int)ns;
    c->n_tokens = nt;
    *out = c;
    return UR_OK;
}

ur_status ur_conllu_parse(const char *buf, size_t len, const char *name_for_errors, ur_conllu **out) {
    if (!out) return ur_set_error(UR_ERR_ARG, FN ": out is NULL");
    *out = NULL;
    if (!buf && len) return ur_set_error(UR_ERR_ARG, FN ": buf is NULL");
    parser p = {ur_data_name(name_for_errors), 0, ur_data_vec_make(1), ur_data_vec_make(sizeof(size_t)),
                ur_data_vec_make(sizeof(int)), ur_data_vec_make(sizeof(size_t)), 0};
    ur_status s = parse_lines(&p, buf ? buf : "", len);
    if (s == UR_OK) s = finish(&p, out);
    ur_data_vec_free(&p.text);
    ur_data_vec_free(&p.offs);
    ur_data_vec_free(&p.tags);
    ur_data_vec_free(&p.starts);
    return s;
}

ur_status ur_conllu_read_file(const char *path, ur_conllu **out) {
    if (!out) return ur_set_error(UR_ERR_ARG, "ur_conllu_read_file: out is NULL");
    *out = NULL;
    char *buf;
    size_t len;
    ur_status s = ur_data_read_all(path, 0, "ur_conllu_read_file", &buf, &len);
    if (s != UR_OK) return s;
    s = ur_conllu_parse(buf, len, path, out);
    ur_free(buf);
    return s;
}

void ur_conllu_free(ur_conllu *c) {
    if (!c) return;
    ur_free(c->sents);
    ur_free(c->words_);
    ur_free(c->tags_);
    ur_free(c->text_);
    ur_free(c);
}
