/* fuzz_conllu.c - the CoNLL-U reader.
 *
 * An accepted input gives sentences of at least one token whose lengths add up to
 * n_tokens, tags among the 17 UPOS ids and words without tabs or newlines. A
 * rejected one gives UR_ERR_FORMAT (or NOMEM) naming the input.
 */
#include "fuzz_common.h"

#include "ur_data.h"

static const char *const LABEL = "fuzz-conllu";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ur_conllu *c = NULL;
    ur_status st = ur_conllu_parse((const char *)data, size, LABEL, &c);
    if (st != UR_OK) {
        FUZZ_CHECK(c == NULL);
        FUZZ_CHECK(st == UR_ERR_FORMAT || st == UR_ERR_NOMEM);
        if (st == UR_ERR_FORMAT) fuzz_check_error_names(LABEL);
        return 0;
    }
    FUZZ_CHECK(c != NULL && c->n_sentences >= 0);
    size_t tokens = 0;
    for (int s = 0; s < c->n_sentences; s++) {
        const ur_tagged_sentence *sent = &c->sents[s];
        FUZZ_CHECK(sent->len >= 1);
        for (int i = 0; i < sent->len; i++) {
            const char *w = sent->words[i];
            FUZZ_CHECK(w != NULL); /* a NUL byte in FORM is kept, so w may look empty */
            FUZZ_CHECK(strchr(w, '\t') == NULL && strchr(w, '\n') == NULL);
            FUZZ_CHECK(sent->tags[i] >= 0 && sent->tags[i] < UR_UPOS_COUNT);
            FUZZ_CHECK(ur_upos_name(sent->tags[i]) != NULL);
        }
        tokens += (size_t)sent->len;
    }
    FUZZ_CHECK(tokens == c->n_tokens);
    FUZZ_CHECK(tokens <= size / 10); /* a token line has 9 tabs and a newline or more */
    ur_conllu_free(c);
    return 0;
}
