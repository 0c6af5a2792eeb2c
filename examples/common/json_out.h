/* json_out.h - a program's final metrics as one JSON object on one line of stdout,
 * which the tests and scripts parse. Not part of the library (examples only). */
#ifndef UR_EXAMPLES_JSON_OUT_H
#define UR_EXAMPLES_JSON_OUT_H

#include <stdio.h>

/* Final metrics as one JSON object on one line of stdout. */
typedef struct cli_json {
    FILE *out;
    int n;
} cli_json;
void cli_json_begin(cli_json *j);
void cli_json_num(cli_json *j, const char *key, double v);
void cli_json_int(cli_json *j, const char *key, long v);
void cli_json_str(cli_json *j, const char *key, const char *v);
/* An array of n numbers, [0.5, 2], and a rows x cols row-major matrix as nested
 * arrays, [[1, 2], [3, 4]]; both with 9 significant digits (enough for a float). */
void cli_json_array(cli_json *j, const char *key, const double *v, int n);
void cli_json_matrix(cli_json *j, const char *key, const double *v, int rows, int cols);
void cli_json_end(cli_json *j);

#endif
