/* data_text.c - byte corpora: whole files, the byte set (charset), encoded splits. */
#include "data_internal.h"

#include <string.h>

ur_status ur_text_read_file(const char *path, size_t max_bytes, ur_text **out) {
    if (!out) return ur_set_error(UR_ERR_ARG, "ur_text_read_file: out is NULL");
    *out = NULL;
    ur_text *t = ur_malloc(sizeof *t);
    if (!t) return ur_data_nomem("ur_text_read_file");
    ur_status s = ur_data_read_all(path, max_bytes, "ur_text_read_file", &t->data, &t->len);
    if (s != UR_OK) {
        ur_free(t);
        return s;
    }
    *out = t;
    return UR_OK;
}

void ur_text_free(ur_text *t) {
    if (!t) return;
    ur_free(t->data);
    ur_free(t);
}

void ur_charset_build(ur_charset *cs, const char *data, size_t len) {
    int seen[256] = {0};
    for (size_t i = 0; i < len; i++) seen[(unsigned char)data[i]] = 1;
    cs->size = 0;
    memset(cs->chars, 0, sizeof cs->chars);
    for (int b = 0; b < 256; b++) {
        cs->id_of[b] = seen[b] ? cs->size : -1;
        if (seen[b]) cs->chars[cs->size++] = (unsigned char)b;
    }
}

ur_status ur_charset_encode(const ur_charset *cs, const char *data, size_t len, int *ids) {
    if (!cs || (len && (!data || !ids))) return ur_set_error(UR_ERR_ARG, "ur_charset_encode: NULL argument");
    for (size_t i = 0; i < len; i++) {
        int id = cs->id_of[(unsigned char)data[i]];
        if (id < 0)
            return ur_set_error(UR_ERR_FORMAT, "ur_charset_encode: byte 0x%02x at offset %zu is not in the charset",
                                (unsigned char)data[i], i);
        ids[i] = id;
    }
    return UR_OK;
}

ur_status ur_char_corpus_make(const ur_text *t, double train_fraction, ur_char_corpus **out) {
    if (!out) return ur_set_error(UR_ERR_ARG, "ur_char_corpus_make: out is NULL");
    *out = NULL;
    if (!t || !t->data || t->len == 0) return ur_set_error(UR_ERR_ARG, "ur_char_corpus_make: empty or NULL text");
    if (!(train_fraction > 0.0 && train_fraction <= 1.0))
        return ur_set_error(UR_ERR_ARG, "ur_char_corpus_make: train_fraction %g is not in (0, 1]", train_fraction);
    ur_char_corpus *c = ur_malloc(sizeof *c);
    int *ids = t->len <= SIZE_MAX / sizeof(int) ? ur_malloc(t->len * sizeof(int)) : NULL;
    if (!c || !ids) {
        ur_free(c);
        ur_free(ids);
        return ur_data_nomem("ur_char_corpus_make");
    }
    ur_charset_build(&c->cs, t->data, t->len);
    ur_charset_encode(&c->cs, t->data, t->len, ids); /* cannot fail: every byte is in cs */
    c->ids = ids;
    c->n = t->len;
    c->n_train = (size_t)((double)t->len * train_fraction);
    if (c->n_train > c->n) c->n_train = c->n;
    *out = c;
    return UR_OK;
}

void ur_char_corpus_free(ur_char_corpus *c) {
    if (!c) return;
    ur_free(c->ids);
    ur_free(c);
}
