/* s2s_by_length.c - seq2seq scores by source length: counting, the TSV file, the plot. */
#include "s2s_by_length.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svg.h"

static int clamp_len(int len) { return len < 0 ? 0 : len > BY_LENGTH_MAX ? BY_LENGTH_MAX : len; }

void by_length_add(by_length *bl, int src_len, int exact, const int *hyp, int hlen, const int *const *refs,
                   const int *ref_lens, int n_refs) {
    int l = clamp_len(src_len);
    bl->n[l]++;
    bl->right[l] += exact != 0;
    bleu_add(&bl->bleu[l], hyp, hlen, refs, ref_lens, n_refs);
}

double by_length_exact(const by_length *bl, int len) {
    int l = clamp_len(len);
    if (!bl->n[l]) return NAN;
    return bl->from_file ? bl->exact_read[l] : (double)bl->right[l] / (double)bl->n[l];
}

double by_length_bleu(const by_length *bl, int len) {
    int l = clamp_len(len);
    if (!bl->n[l]) return NAN;
    return bl->from_file ? bl->bleu_read[l] : bleu_value(&bl->bleu[l]);
}

int by_length_write(const by_length *bl, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "seq2seq: cannot write %s: %s\n", path, strerror(errno));
        return 0;
    }
    fprintf(f, "# %s\nlength\tsources\texact_match\tbleu4\n", bl->label);
    for (int l = 0; l <= BY_LENGTH_MAX; l++)
        if (bl->n[l]) fprintf(f, "%d\t%ld\t%.6f\t%.6f\n", l, bl->n[l], by_length_exact(bl, l), by_length_bleu(bl, l));
    if (fclose(f) != 0) {
        fprintf(stderr, "seq2seq: cannot write %s: %s\n", path, strerror(errno));
        return 0;
    }
    return 1;
}

int by_length_read(by_length *bl, const char *path) {
    memset(bl, 0, sizeof *bl);
    bl->from_file = 1;
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "seq2seq: cannot read %s: %s\n", path, strerror(errno));
        return 0;
    }
    char line[256];
    int row = 0, ok = 1;
    while (ok && fgets(line, sizeof line, f)) {
        row++;
        if (row == 1 && line[0] == '#') { /* the label */
            const char *lab = line[1] == ' ' ? line + 2 : line + 1;
            size_t k = strcspn(lab, "\r\n");
            if (k >= sizeof bl->label) k = sizeof bl->label - 1;
            memcpy(bl->label, lab, k);
            bl->label[k] = 0;
            continue;
        }
        if (!strncmp(line, "length\t", 7)) continue;
        int len;
        long n;
        double exact, bleu;
        if (sscanf(line, "%d\t%ld\t%lf\t%lf", &len, &n, &exact, &bleu) != 4 || len < 0 || len > BY_LENGTH_MAX ||
            n < 1 || !(exact >= 0 && exact <= 1) || !(bleu >= 0 && bleu <= 1)) {
            fprintf(stderr, "seq2seq: %s line %d: expected length, sources, exact match and BLEU-4 (fractions)\n",
                    path, row);
            ok = 0;
            break;
        }
        bl->n[len] = n;
        bl->exact_read[len] = exact;
        bl->bleu_read[len] = bleu;
    }
    fclose(f);
    return ok;
}

int by_length_plot(const char *path, const char *title, const by_length *const *runs, int n_runs, int bleu) {
    enum { MAX_RUNS = 8 };
    double x[MAX_RUNS][BY_LENGTH_MAX + 1], y[MAX_RUNS][BY_LENGTH_MAX + 1];
    svg_curve c[MAX_RUNS];
    if (n_runs > MAX_RUNS) n_runs = MAX_RUNS;
    for (int r = 0; r < n_runs; r++) {
        c[r] = (svg_curve){runs[r]->label, 0, x[r], y[r]};
        for (int l = 0; l <= BY_LENGTH_MAX; l++)
            if (runs[r]->n[l]) {
                x[r][c[r].n] = l;
                y[r][c[r].n++] = 100 * (bleu ? by_length_bleu(runs[r], l) : by_length_exact(runs[r], l));
            }
    }
    return svg_lines(path, title, "source length (words)", bleu ? "BLEU-4" : "exact match (%)", 100, c, n_runs);
}
