/* ngram.c - the classic baseline for the character language models: counts of
 * character n-grams with interpolated Kneser-Ney smoothing (see nn/ur_ngram.h).
 *   ngram                          generated play text (no download), orders 1..5
 *   ngram --data input.txt         a file: the first 90% counts, the last 10% is scored
 * The split is char_rnn's, so the bits per character of the two are comparable.
 * There is no training loop: the model is its counts.
 */
#include <math.h>
#include <stdio.h>

#include "cli.h"
#include "unroll.h"

int main(int argc, char **argv) {
    const char *data = NULL;
    long gen_bytes = 262144, gen_seed = 7;
    int order = 5, json = 0;
    const cli_opt opts[] = {
        CLI_TEXT("--data", &data, "text file (default: generated play text, no download)"),
        CLI_LONG("--gen-bytes", &gen_bytes, 1, 1000000000, "size of the generated text (default 262144)"),
        CLI_ANY_LONG("--gen-seed", &gen_seed, "seed of the generated text (default 7)"),
        CLI_INT("--order", &order, 1, UR_NGRAM_MAX_ORDER, "highest order N (default 5): orders 1..N are scored"),
        CLI_BOOL("--json", &json, "print final metrics as one JSON line"),
    };
    int r = cli_parse(argc, argv, "Character n-gram language model with interpolated Kneser-Ney smoothing.", opts,
                      (int)(sizeof opts / sizeof opts[0]));
    if (r) return r > 0 ? 0 : 2;

    /* the corpus, split as char_rnn splits it */
    ur_text *text = NULL;
    ur_char_corpus *corpus = NULL;
    ur_status st = data && *data ? ur_text_read_file(data, 0, &text)
                                 : ur_text_generate((uint64_t)gen_seed, (size_t)gen_bytes, &text);
    if (st == UR_OK) st = ur_char_corpus_make(text, 0.9, &corpus);
    if (st == UR_OK && corpus->cs.size > UR_NGRAM_MAX_VOCAB)
        st = ur_set_error(UR_ERR_FORMAT, "%d distinct bytes, at most %d", corpus->cs.size, UR_NGRAM_MAX_VOCAB);
    if (st != UR_OK) {
        fprintf(stderr, "ngram: %s\n", ur_last_error());
        ur_text_free(text);
        return 1;
    }
    printf("data: %s, %zu chars, vocab %d, train %zu, validation %zu\n", data && *data ? data : "generated play text",
           corpus->n, corpus->cs.size, corpus->n_train, corpus->n - corpus->n_train);

    /* one model per order: count, then score the validation text */
    double t0 = cli_now(), bpc[UR_NGRAM_MAX_ORDER + 1];
    printf("order  n-grams  discount  val bits/char\n");
    for (int k = 1; k <= order; k++) {
        ur_ngram *m = ur_ngram_train(k, corpus->cs.size, corpus->ids, corpus->n_train);
        if (!m) {
            fprintf(stderr, "ngram: %s\n", ur_last_error());
            ur_char_corpus_free(corpus);
            ur_text_free(text);
            return 1;
        }
        bpc[k] = ur_ngram_bits(m, corpus->ids, corpus->n_train, corpus->n);
        printf("%5d  %7zu  %8.4f  %13.4f\n", k, ur_ngram_size(m, k), ur_ngram_discount(m, k), bpc[k]);
        ur_ngram_free(m);
    }
    double seconds = cli_now() - t0;
    printf("order %d: %.4f bits/char, perplexity %.3f\n", order, bpc[order], exp2(bpc[order]));
    if (json) {
        cli_json j;
        cli_json_begin(&j);
        cli_json_str(&j, "example", "ngram");
        cli_json_int(&j, "order", order);
        cli_json_array(&j, "val_bpc_by_order", bpc + 1, order);
        cli_json_num(&j, "val_bpc", bpc[order]);
        cli_json_num(&j, "seconds", seconds);
        cli_json_end(&j);
    }
    ur_char_corpus_free(corpus);
    ur_text_free(text);
    return 0;
}
