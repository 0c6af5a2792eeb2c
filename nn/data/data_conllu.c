/* data_conllu.c - one-token-per-line readers: CoNLL-U (FORM, UPOS) and CoNLL-style
 * B-I-O named entities (FORM, entity tag).
 *
 * A token line has tab-separated columns, the first an ID counting 1, 2, ... in each
 * sentence; '#' starts a comment line and blank lines end sentences. The two
 * formats differ only in their number of columns and where the tag is and what it
 * means, so one parser serves both. It appends forms to one byte array and tags to
 * one int array, remembering where each sentence starts; the word pointers are made
 * once at the end, when the byte array no longer moves.
 */
#include "data_internal.h"

#include <stdio.h>
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

/* What one format looks like: its columns and how a tag field becomes an id. */
typedef struct format {
    const char *fn;             /* the reader's name, for errors */
    int min_cols, max_cols;     /* columns per token line (max_cols < 0: any number) */
    int tag_col;                /* the tag's column; FORM is column 1 */
    int allow_ranges;           /* skip range (3-4) and empty-node (5.1) IDs */
    const char *tag_name;       /* the tag column's name, for errors */
    /* tag id of a field, or -1 when unknown (then the line is an error) */
    int (*tag_of)(const char *tag, size_t len, ur_iob_stats *stats);
} format;

/* Parser state: growing arrays and where the errors point. */
typedef struct parser {
    const format *fmt;
    ur_iob_stats *stats;
    const char *name;
    size_t lineno;
    ur_data_vec text;   /* char: forms, NUL-terminated */
    ur_data_vec offs;   /* size_t: offset of each token's form in text */
    ur_data_vec tags;   /* int: UPOS id of each token */
    ur_data_vec starts; /* size_t: first token of each sentence */
    size_t sent_start;  /* first token of the sentence being read */
} parser;

static ur_status fail(const parser *p, const char *fmt, const char *field, size_t len) {
    int n = len > 40 ? 40 : (int)len;
    return ur_set_error(UR_ERR_FORMAT, "%s: %s:%zu: %s '%.*s'", p->fmt->fn, p->name, p->lineno, fmt, n, field);
}

/* Splits line at tabs, keeping at most 10 fields; returns the number of fields found. */
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
    if (p->starts.n >= 0x7fffffff) return ur_set_error(UR_ERR_FORMAT, "%s: %s: too many sentences", p->fmt->fn, p->name);
    ur_status s = ur_data_vec_push(&p->starts, &p->sent_start, 1, p->fmt->fn);
    p->sent_start = p->tags.n;
    return s;
}

static ur_status token_line(parser *p, const char *line, size_t len) {
    const format *fmt = p->fmt;
    const char *f[10];
    size_t fl[10];
    int n = split_tabs(line, len, f, fl);
    if (n < fmt->min_cols || (fmt->max_cols >= 0 && n > fmt->max_cols)) {
        if (fmt->min_cols == fmt->max_cols)
            return ur_set_error(UR_ERR_FORMAT, "%s: %s:%zu: expected %d tab-separated columns, found %d", fmt->fn,
                                p->name, p->lineno, fmt->min_cols, n);
        return ur_set_error(UR_ERR_FORMAT, "%s: %s:%zu: expected at least %d tab-separated columns, found %d",
                            fmt->fn, p->name, p->lineno, fmt->min_cols, n);
    }
    long id;
    int kind = classify_id(f[0], fl[0], &id);
    if (kind < 0 || (kind == 0 && !fmt->allow_ranges)) return fail(p, "bad ID", f[0], fl[0]);
    if (kind == 0) return UR_OK;
    size_t expect = p->tags.n - p->sent_start + 1;
    if ((size_t)id != expect)
        return ur_set_error(UR_ERR_FORMAT, "%s: %s:%zu: ID %ld out of order (expected %zu)", fmt->fn, p->name,
                            p->lineno, id, expect);
    if (fl[1] == 0) return ur_set_error(UR_ERR_FORMAT, "%s: %s:%zu: empty FORM", fmt->fn, p->name, p->lineno);
    const char *tf = f[fmt->tag_col];
    size_t tl = fl[fmt->tag_col];
    if (tl == 0)
        return ur_set_error(UR_ERR_FORMAT, "%s: %s:%zu: empty %s", fmt->fn, p->name, p->lineno, fmt->tag_name);
    int tag = fmt->tag_of(tf, tl, p->stats);
    if (tag < 0) {
        char what[32];
        snprintf(what, sizeof what, "unknown %s", fmt->tag_name);
        return fail(p, what, tf, tl);
    }
    size_t off = p->text.n;
    ur_status s = ur_data_vec_push(&p->text, f[1], fl[1], fmt->fn);
    if (s == UR_OK) s = ur_data_vec_push(&p->text, "", 1, fmt->fn);
    if (s == UR_OK) s = ur_data_vec_push(&p->offs, &off, 1, fmt->fn);
    if (s == UR_OK) s = ur_data_vec_push(&p->tags, &tag, 1, fmt->fn);
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
            s = ur_set_error(UR_ERR_FORMAT, "%s: %s:%zu: line too long (%zu bytes, limit %d)", p->fmt->fn, p->name,
                             p->lineno, n, UR_DATA_MAX_LINE);
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
        return ur_data_nomem(p->fmt->fn);
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

static ur_status parse(const format *fmt, const char *buf, size_t len, const char *name_for_errors,
                       ur_conllu **out, ur_iob_stats *stats) {
    if (!out) return ur_set_error(UR_ERR_ARG, "%s: out is NULL", fmt->fn);
    *out = NULL;
    if (!buf && len) return ur_set_error(UR_ERR_ARG, "%s: buf is NULL", fmt->fn);
    parser p = {fmt, stats, ur_data_name(name_for_errors), 0, ur_data_vec_make(1), ur_data_vec_make(sizeof(size_t)),
                ur_data_vec_make(sizeof(int)), ur_data_vec_make(sizeof(size_t)), 0};
    ur_status s = parse_lines(&p, buf ? buf : "", len);
    if (s == UR_OK) s = finish(&p, out);
    ur_data_vec_free(&p.text);
    ur_data_vec_free(&p.offs);
    ur_data_vec_free(&p.tags);
    ur_data_vec_free(&p.starts);
    return s;
}

static ur_status read_file(const format *fmt, const char *fn, const char *path, ur_conllu **out,
                           ur_iob_stats *stats) {
    if (!out) return ur_set_error(UR_ERR_ARG, "%s: out is NULL", fn);
    *out = NULL;
    char *buf;
    size_t len;
    ur_status s = ur_data_read_all(path, 0, fn, &buf, &len);
    if (s != UR_OK) return s;
    s = parse(fmt, buf, len, path, out, stats);
    ur_free(buf);
    return s;
}

/* ---- CoNLL-U: ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC ---- */

static int upos_of(const char *tag, size_t len, ur_iob_stats *stats) {
    (void)stats;
    return ur_upos_id(tag, len);
}

static const format conllu = {"ur_conllu_parse", 10, 10, 3, 1, "UPOS", upos_of};

ur_status ur_conllu_parse(const char *buf, size_t len, const char *name_for_errors, ur_conllu **out) {
    return parse(&conllu, buf, len, name_for_errors, out, NULL);
}

ur_status ur_conllu_read_file(const char *path, ur_conllu **out) {
    return read_file(&conllu, "ur_conllu_read_file", path, out, NULL);
}

/* ---- B-I-O entities: ID FORM TAG [more columns] ---- */

static int bio_of(const char *tag, size_t len, ur_iob_stats *stats) {
    int id = ur_bio_id(tag, len);
    if (id >= 0) return id;
    if (stats && !(len == 1 && tag[0] == 'O')) stats->n_irregular++;
    return UR_BIO_O;
}

static const format iob = {"ur_iob_parse", 3, -1, 2, 0, "tag", bio_of};

/* I-X that does not continue an X entity starts one: it becomes B-X (the span is
 * the same under conlleval's reading, and a CRF's gold path stays allowed). */
static void repair(ur_conllu *c, ur_iob_stats *stats) {
    for (int k = 0; k < c->n_sentences; k++) {
        int *tags = (int *)c->sents[k].tags;
        for (int i = 0; i < c->sents[k].len; i++)
            if (!ur_bio_allowed(i ? tags[i - 1] : -1, tags[i])) {
                tags[i] = ur_bio_begin_of(tags[i]);
                if (stats) stats->n_repaired++;
            }
    }
}

ur_status ur_iob_parse(const char *buf, size_t len, const char *name_for_errors, ur_conllu **out,
                       ur_iob_stats *stats) {
    if (stats) *stats = (ur_iob_stats){0, 0};
    ur_status s = parse(&iob, buf, len, name_for_errors, out, stats);
    if (s == UR_OK) repair(*out, stats);
    return s;
}

ur_status ur_iob_read_file(const char *path, ur_conllu **out, ur_iob_stats *stats) {
    if (stats) *stats = (ur_iob_stats){0, 0};
    ur_status s = read_file(&iob, "ur_iob_read_file", path, out, stats);
    if (s == UR_OK) repair(*out, stats);
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
