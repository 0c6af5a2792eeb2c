/* pairs.h - the data of seq2seq: pairs of token-id sequences for its two tasks.
 * Not part of the library (examples only).
 *
 *   reverse  digit strings of 1..max_digits digits, one token per digit, the target
 *            reversed; the held-out set is 1000 strings drawn from another seed.
 *   eng-fra  a TSV file of sentence pairs, tokenised; pairs are grouped by English
 *            sentence and 10% of the groups are held out (a fixed split), with all
 *            their translations as references. */
#ifndef UR_EXAMPLES_PAIRS_H
#define UR_EXAMPLES_PAIRS_H

#include <stdint.h>

#include "unroll.h"

/* One pair: source and target ids (at most 64 tokens each: longer sentences are cut). */
typedef struct s2s_example {
    int *src, src_len;
    int *tgt, tgt_len;
    int group; /* held-out: index of the English sentence (references share it) */
} s2s_example;

/* A set of pairs; held-out pairs of one source are adjacent (same group). */
typedef struct s2s_dataset {
    int n;
    s2s_example *ex;
    const int **src, **tgt; /* views for the library calls */
    int *src_len, *tgt_len;
} s2s_dataset;

/* The reserved entries of the two vocabularies (before the words). */
enum {
    S2S_SRC_SPECIALS = UR_VOCAB_PAD | UR_VOCAB_UNK,
    S2S_TGT_SPECIALS = UR_VOCAB_PAD | UR_VOCAB_UNK | UR_VOCAB_BOS | UR_VOCAB_EOS
};

/* What the data depends on. */
typedef struct s2s_task {
    const char *name; /* "reverse" or "eng-fra" */
    const char *data; /* eng-fra: the TSV file */
    int n_train, max_digits; /* reverse: training strings, longest string */
} s2s_task;

/* Builds the vocabularies (unless *sv and *tv are given: a loaded model's) and the
 * two datasets of the task; 1, or 0 after printing an error. *n_seen: held-out
 * reverse strings that are also training strings. */
int s2s_load_data(const s2s_task *task, uint64_t seed, ur_vocab **sv, ur_vocab **tv, s2s_dataset *train,
                  s2s_dataset *held, int *n_seen);
void s2s_dataset_free(s2s_dataset *d);

#endif
