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
