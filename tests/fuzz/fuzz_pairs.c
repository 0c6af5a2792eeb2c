/* fuzz_pairs.c - tab-separated sentence pairs and the tokenizer.
 *
 * An accepted input gives pairs of strings without tabs or newlines. Every string,
 * and the raw input itself, is tokenized: tokens are non-empty, hold no ASCII
 * space, control byte or capital letter, ASCII punctuation other than ' and -
 * stands alone, and the tokens never hold more bytes than the text.
 */
#include "fuzz_common.h"

#include "ur_data.h"

static const char *const LABEL = "fuzz-pairs";

static int is_punct(unsigned char c) {
    int alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    return c > ' ' && c < 127 && !alnum;
}

static void check_tokens(const char *s, size_t len) {
    ur_tokens *t = NULL;
    FUZZ_CHECK(ur_tokenize(s, len, &t) == UR_OK && t != NULL);
    size_t bytes = 0;
    for (int i = 0; i < t->n; i++) {
        const unsigned char *tok = (const unsigned char *)t->tok[i];
        size_t n = strlen((const char *)tok);
        FUZZ_CHECK(n >= 1);
        for (size_t k = 0; k < n; k++) {
            FUZZ_CHECK(tok[k] > ' ' && tok[k] != 127);
            FUZZ_CHECK(!(tok[k] >= 'A' && tok[k] <= 'Z'));
            if (is_punct(tok[k]) && tok[k] != '\'' && tok[k] != '-') FUZZ_CHECK(n == 1);
        }
        bytes += n;
    }
    FUZZ_CHECK(bytes <= len);
    ur_tokens_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    check_tokens(text, size);
    ur_pairs *p = NULL;
    ur_status st = ur_pairs_parse(text, size, LABEL, &p);
    if (st != UR_OK) {
        FUZZ_CHECK(p == NULL && (st == UR_ERR_FORMAT || st == UR_ERR_NOMEM));
        if (st == UR_ERR_FORMAT) fuzz_check_error_names(LABEL);
        return 0;
    }
    FUZZ_CHECK(p != NULL && p->n >= 0);
    for (int i = 0; i < p->n; i++) {
        const char *side[2] = {p->src[i], p->tgt[i]};
        for (int k = 0; k < 2; k++) {
            FUZZ_CHECK(side[k] != NULL);
            FUZZ_CHECK(strchr(side[k], '\t') == NULL && strchr(side[k], '\n') == NULL);
            check_tokens(side[k], strlen(side[k]));
        }
    }
    ur_pairs_free(p);
    return 0;
}
