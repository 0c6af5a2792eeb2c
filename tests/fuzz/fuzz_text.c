/* fuzz_text.c - byte corpora (charset, encoding, train/validation split) and
 * vocabulary building.
 *
 * Input: byte 0 picks the train fraction, byte 1 the minimum count, byte 2 the
 * special entries; the rest is the text. The text becomes a char corpus (every id
 * must map back to its byte) and, split at whitespace, the counts of a vocabulary
 * (a word starting with '~' counts almost INT64_MAX times, to probe count
 * arithmetic); ur_vocab_build must then order the words as documented.
 */
#include "fuzz_common.h"

#include "ur_data.h"

static void check_corpus(const char *text, size_t len, double frac) {
    ur_text t = {(char *)text, len};
    ur_char_corpus *c = NULL;
    ur_status st = ur_char_corpus_make(&t, frac, &c);
    if (len == 0) {
        FUZZ_CHECK(st == UR_ERR_ARG && c == NULL);
        return;
    }
    FUZZ_CHECK(st == UR_OK && c != NULL);
    FUZZ_CHECK(c->n == len && c->n_train <= c->n && c->cs.size >= 1 && c->cs.size <= 256);
    for (int id = 1; id < c->cs.size; id++) FUZZ_CHECK(c->cs.chars[id - 1] < c->cs.chars[id]);
    for (size_t i = 0; i < len; i++) {
        int id = c->ids[i];
        FUZZ_CHECK(id >= 0 && id < c->cs.size && c->cs.chars[id] == (unsigned char)text[i]);
        FUZZ_CHECK(c->cs.id_of[(unsigned char)text[i]] == id);
    }
    /* the charset of the first half may lack bytes of the second */
    ur_charset half;
    ur_charset_build(&half, text, len / 2);
    int *ids = malloc(len * sizeof *ids);
    FUZZ_CHECK(ids != NULL);
    if (ur_charset_encode(&half, text, len, ids) != UR_OK)
        FUZZ_CHECK(strstr(ur_last_error(), "offset") != NULL);
    free(ids);
    ur_char_corpus_free(c);
}

static int is_blank(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

/* Counts the whitespace-separated words of text into a new vocabulary. */
static ur_vocab *count_words(const char *text, size_t len) {
    ur_vocab *v = ur_vocab_new(0);
    FUZZ_CHECK(v != NULL);
    for (size_t i = 0; i < len;) {
        if (is_blank(text[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < len && !is_blank(text[j])) j++;
        int64_t count = text[i] == '~' ? INT64_MAX - 7 : 1;
        int id = ur_vocab_add_n(v, text + i, j - i, count);
        FUZZ_CHECK(id >= 0 && ur_vocab_find_n(v, text + i, j - i) == id);
        FUZZ_CHECK(ur_vocab_string_len(v, id) == j - i);
        FUZZ_CHECK(memcmp(ur_vocab_string(v, id), text + i, j - i) == 0);
        FUZZ_CHECK(ur_vocab_count(v, id) >= 1);
        i = j;
    }
    return v;
}

static void check_built(const ur_vocab *counts, int64_t min_count, unsigned specials) {
    ur_vocab *v = NULL;
    FUZZ_CHECK(ur_vocab_build(counts, min_count, specials, &v) == UR_OK && v != NULL);
    int n_special = 0;
    for (int k = 0; k < 4; k++)
        if (specials & (1u << k))
            FUZZ_CHECK(ur_vocab_special_id(v, (ur_vocab_special)(1u << k)) == n_special++);
    for (int id = n_special; id < ur_vocab_size(v); id++) {
        const char *s = ur_vocab_string(v, id);
        size_t len = ur_vocab_string_len(v, id);
        FUZZ_CHECK(s != NULL && ur_vocab_find_n(v, s, len) == id);
        FUZZ_CHECK(ur_vocab_count(v, id) >= min_count);
        int old = ur_vocab_find_n(counts, s, len);
        FUZZ_CHECK(old >= 0 && ur_vocab_count(counts, old) == ur_vocab_count(v, id));
        if (id > n_special) FUZZ_CHECK(ur_vocab_count(v, id - 1) >= ur_vocab_count(v, id));
    }
    for (int id = 0; id < ur_vocab_size(counts); id++) /* nothing frequent is lost */
        if (ur_vocab_count(counts, id) >= min_count)
            FUZZ_CHECK(ur_vocab_find_n(v, ur_vocab_string(counts, id), ur_vocab_string_len(counts, id)) >= 0);
    ur_vocab_free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    double frac = (data[0] + 1) / 256.0;
    int64_t min_count = data[1] % 4;
    unsigned specials = data[2] & 15u;
    size_t len = size - 3;
    char *text = malloc(len + 1); /* ur_text promises a terminating NUL */
    FUZZ_CHECK(text != NULL);
    memcpy(text, data + 3, len);
    text[len] = '\0';
    check_corpus(text, len, frac);
    ur_vocab *counts = count_words(text, len);
    check_built(counts, min_count, specials);
    ur_vocab_free(counts);
    free(text);
    return 0;
}
