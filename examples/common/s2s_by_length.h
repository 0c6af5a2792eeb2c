/* s2s_by_length.h - held-out scores of seq2seq grouped by source length, written
 * to and read from a small TSV file, and drawn as a line plot. Not part of the
 * library (examples only).
 *
 * The file:
 *     # LABEL
 *     length<TAB>sources<TAB>exact_match<TAB>bleu4
 *     4<TAB>126<TAB>0.9841<TAB>0.9912
 *     ...
 * one row per source length that occurs, the scores as fractions. */
#ifndef UR_EXAMPLES_S2S_BY_LENGTH_H
#define UR_EXAMPLES_S2S_BY_LENGTH_H

#include "bleu.h"

enum { BY_LENGTH_MAX = 128 }; /* longer sources count as this length */

typedef struct by_length {
    char label[64];
    long n[BY_LENGTH_MAX + 1], right[BY_LENGTH_MAX + 1]; /* sources, exact matches */
    bleu_stats bleu[BY_LENGTH_MAX + 1];
    double exact_read[BY_LENGTH_MAX + 1], bleu_read[BY_LENGTH_MAX + 1]; /* from a file */
    int from_file;
} by_length;

/* Counts one decoded source of src_len words. */
void by_length_add(by_length *bl, int src_len, int exact, const int *hyp, int hlen, const int *const *refs,
                   const int *ref_lens, int n_refs);
double by_length_exact(const by_length *bl, int len); /* NAN where no source has that length */
double by_length_bleu(const by_length *bl, int len);
/* 1, or 0 after printing an error naming the file. */
int by_length_write(const by_length *bl, const char *path);
int by_length_read(by_length *bl, const char *path);
/* Exact match (bleu 0) or BLEU-4 (bleu 1) in percent by source length, one line per
 * run in runs[0..n_runs); 1, or 0 when the file cannot be written. */
int by_length_plot(const char *path, const char *title, const by_length *const *runs, int n_runs, int bleu);

#endif
