/* svg.c - the attention heat map as SVG. */
#include "svg.h"

#include <math.h>
#include <stdio.h>

/* Text with the characters XML reserves escaped. */
static void svg_text(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

int svg_attention(const char *path, const ur_vocab *sv, const ur_vocab *tv, const int *src, int S, const int *out,
                  int n_out, int ended, int eos, const ur_real *attn) {
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    /* margins for the labels, at about 7 px per character of 12 px text; the source
     * words are rotated by 60 degrees, so they rise 0.87 and lean right 0.5 of their length */
    const int cell = 28, rows = n_out + ended;
    size_t src_chars = 1, out_chars = 1;
    for (int j = 0; j < S; j++)
        if (ur_vocab_string_len(sv, src[j]) > src_chars) src_chars = ur_vocab_string_len(sv, src[j]);
    for (int i = 0; i < rows; i++)
        if (ur_vocab_string_len(tv, i < n_out ? out[i] : eos) > out_chars)
            out_chars = ur_vocab_string_len(tv, i < n_out ? out[i] : eos);
    int left = 16 + 7 * (int)out_chars, top = 16 + (int)(0.87 * 7 * (double)src_chars);
    int right = 10 + (int)(0.5 * 7 * (double)src_chars);
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
               "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            left + S * cell + right, top + rows * cell + 10);
    for (int j = 0; j < S; j++) { /* source words, rotated, above their columns */
        int x = left + j * cell + cell / 2 + 4, y = top - 6;
        fprintf(f, "<text x=\"%d\" y=\"%d\" transform=\"rotate(-60 %d %d)\">", x, y, x, y);
        svg_text(f, ur_vocab_string(sv, src[j]));
        fputs("</text>\n", f);
    }
    for (int i = 0; i < rows; i++) {
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", left - 6, top + i * cell + cell / 2 + 4);
        svg_text(f, ur_vocab_string(tv, i < n_out ? out[i] : eos));
        fputs("</text>\n", f);
        for (int j = 0; j < S; j++) {
            double w = attn[(size_t)i * S + j];
            int shade = (int)lround(255 * (1 - (w < 0 ? 0 : w > 1 ? 1 : w)));
            fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"rgb(%d,%d,255)\" stroke=\"#ddd\">"
                       "<title>%.3f</title></rect>\n",
                    left + j * cell, top + i * cell, cell, cell, shade, shade, w);
        }
    }
    fputs("</svg>\n", f);
    return fclose(f) == 0;
}

/* ---- line plots ---- */

int svg_lines(const char *path, const char *title, const char *xlabel, const char *ylabel, double ymax,
              const svg_curve *c, int n_curves) {
    static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};
    const int n_colors = (int)(sizeof colors / sizeof colors[0]);
    double x0 = INFINITY, x1 = -INFINITY;
    for (int k = 0; k < n_curves; k++)
        for (int i = 0; i < c[k].n; i++) {
            if (c[k].x[i] < x0) x0 = c[k].x[i];
            if (c[k].x[i] > x1) x1 = c[k].x[i];
        }
    if (!(x0 <= x1)) x0 = 0, x1 = 1;
    if (x1 == x0) x1 = x0 + 1;
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    const int W = 560, H = 360, left = 60, right = 20, top = 56, bottom = 50;
    const int pw = W - left - right, ph = H - top - bottom;
#define PX(v) (left + ((v) - x0) / (x1 - x0) * pw)
#define PY(v) (top + ph - ((v) < 0 ? 0 : (v) > ymax ? ymax : (v)) / ymax * ph)
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
               "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H);
    fprintf(f, "<text x=\"%d\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">", W / 2);
    svg_text(f, title);
    fputs("</text>\n", f);
    for (int g = 0; g <= 4; g++) { /* horizontal grid at quarters of ymax */
        double v = ymax * g / 4;
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", left, PY(v), left + pw,
                PY(v));
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", left - 6, PY(v) + 4, v);
    }
    for (double v = ceil(x0); v <= x1; v += 1) /* a tick per integer x */
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n", PX(v), top + ph + 16, v);
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#888\"/>\n", left, top, pw,
            ph);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", left + pw / 2, H - 10);
    svg_text(f, xlabel);
    fprintf(f, "</text>\n<text x=\"16\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 16 %d)\">",
            top + ph / 2, top + ph / 2);
    svg_text(f, ylabel);
    fputs("</text>\n", f);
    for (int k = 0; k < n_curves; k++) {
        const char *col = colors[k % n_colors];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
        for (int i = 0; i < c[k].n; i++) fprintf(f, "%s%.1f,%.1f", i ? " " : "", PX(c[k].x[i]), PY(c[k].y[i]));
        fputs("\"/>\n", f);
        for (int i = 0; i < c[k].n; i++)
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>%g: %.2f</title></circle>\n",
                    PX(c[k].x[i]), PY(c[k].y[i]), col, c[k].x[i], c[k].y[i]);
        int lx = left + 240 * k, ly = top - 12; /* the legend, side by side above the plot */
        fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"/>\n", lx,
                ly - 4, lx + 20, ly - 4, col);
        fprintf(f, "<text x=\"%d\" y=\"%d\">", lx + 26, ly);
        svg_text(f, c[k].label ? c[k].label : "");
        fputs("</text>\n", f);
    }
#undef PX
#undef PY
    fputs("</svg>\n", f);
    return fclose(f) == 0;
}
