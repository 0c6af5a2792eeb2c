/* svg.h - pictures the examples write as SVG. Not part of the library (examples only). */
#ifndef UR_EXAMPLES_SVG_H
#define UR_EXAMPLES_SVG_H

#include "unroll.h"

/* Attention weights as a heat map: one row per output word (then one for EOS when
 * `ended`), one column per source word, darker for more weight, the words along the
 * edges. attn is (n_out + ended, S) row-major; words are looked up in sv (source
 * ids src) and tv (output ids out, and eos). Returns 1, or 0 when the file cannot be
 * written. */
int svg_attention(const char *path, const ur_vocab *sv, const ur_vocab *tv, const int *src, int S, const int *out,
                  int n_out, int ended, int eos, const ur_real *attn);

/* One line of a line plot: n points (x[i], y[i]) and the label of its legend entry. */
typedef struct svg_curve {
    const char *label;
    int n;
    const double *x, *y;
} svg_curve;

/* Lines over a shared x axis (the data's range) and a y axis from 0 to ymax, each
 * point a dot with its value as a title, the legend above the plot. Returns
 * 1, or 0 when the file cannot be written. */
int svg_lines(const char *path, const char *title, const char *xlabel, const char *ylabel, double ymax,
              const svg_curve *c, int n_curves);

#endif
