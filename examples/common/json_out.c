/* json_out.c - one JSON object on one line: numbers, integers, strings, arrays. */
#include "json_out.h"

#include <math.h>

void cli_json_begin(cli_json *j) {
    j->out = stdout;
    j->n = 0;
    fputc('{', j->out);
}

static void key(cli_json *j, const char *k) { fprintf(j->out, "%s\"%s\": ", j->n++ ? ", " : "", k); }

void cli_json_num(cli_json *j, const char *k, double v) {
    key(j, k);
    if (isfinite(v)) fprintf(j->out, "%.6g", v);
    else fputs("null", j->out);
}

void cli_json_int(cli_json *j, const char *k, long v) {
    key(j, k);
    fprintf(j->out, "%ld", v);
}

void cli_json_str(cli_json *j, const char *k, const char *v) {
    key(j, k);
    fputc('"', j->out);
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\') fputc('\\', j->out);
        if ((unsigned char)*p < 0x20) fprintf(j->out, "\\u%04x", *p);
        else fputc(*p, j->out);
    }
    fputc('"', j->out);
}

static void json_value9(FILE *out, double v) {
    if (isfinite(v)) fprintf(out, "%.9g", v);
    else fputs("null", out);
}

static void json_row(FILE *out, const double *v, int n) {
    fputc('[', out);
    for (int i = 0; i < n; i++) {
        if (i) fputs(", ", out);
        json_value9(out, v[i]);
    }
    fputc(']', out);
}

void cli_json_array(cli_json *j, const char *k, const double *v, int n) {
    key(j, k);
    json_row(j->out, v, n);
}

void cli_json_matrix(cli_json *j, const char *k, const double *v, int rows, int cols) {
    key(j, k);
    fputc('[', j->out);
    for (int r = 0; r < rows; r++) {
        if (r) fputs(", ", j->out);
        json_row(j->out, v + (size_t)r * (size_t)cols, cols);
    }
    fputc(']', j->out);
}

void cli_json_end(cli_json *j) {
    fputs("}\n", j->out);
    fflush(j->out);
}
