/* cli.h - what every example program shares: flags, a progress line, JSON output.
 * Not part of the library (examples only). */
#ifndef UR_EXAMPLES_CLI_H
#define UR_EXAMPLES_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "ur_checkpoint.h"
#include "ur_data.h"

/* A flag: --name VALUE (or --name for booleans). type: 'i' int, 'l' long, 'f' double,
 * 's' string, 'b' boolean (set to 1). */
typedef struct cli_opt {
    const char *name;
    char type;
    void *dst;
    const char *help;
} cli_opt;

/* Flags every example takes. */
typedef struct cli_common {
    long seed;
    int threads;
    long steps;       /* stop after this many training steps (0: the example's default) */
    int json;         /* print final metrics as one JSON object on the last line of stdout */
    int print_tape;   /* print the tape of one training step */
    int grad_report;  /* print gradient norms after one step */
    const char *save; /* checkpoint to write */
    const char *load; /* checkpoint to read */
    const char *dot;  /* write the tape of one training step as Graphviz DOT */
} cli_common;

#define CLI_COMMON_OPTS(c)                                                                   \
    {"--seed", 'l', &(c).seed, "random seed (default 1)"},                                 \
    {"--threads", 'i', &(c).threads, "kernel threads (default: all cores)"},              \
    {"--steps", 'l', &(c).steps, "stop after N training steps"},                          \
    {"--json", 'b', &(c).json, "print final metrics as one JSON line"},                   \
    {"--print-tape", 'b', &(c).print_tape, "print the tape of one training step"},        \
    {"--grad-report", 'b', &(c).grad_report, "print gradient norms after one step"},      \
    {"--dot", 's', &(c).dot, "write the tape of one training step as Graphviz DOT"},      \
    {"--save", 's', &(c).save, "write a checkpoint (safetensors) at the end"},            \
    {"--load", 's', &(c).load, "start from a checkpoint"}

void cli_common_defaults(cli_common *c);
/* Parses argv. Returns 0 to go on, 1 after printing --help or --version (exit 0),
 * -1 after printing an error to stderr (exit 2). */
int cli_parse(int argc, char **argv, const char *about, const cli_opt *opts, int n_opts);
/* Applies --threads. */
void cli_apply_common(const cli_common *c);

double cli_now(void); /* monotonic seconds */

/* One progress line on stderr, rewritten in place when stderr is a terminal:
 * "step 120/2000  loss 1.8342  41.2k tok/s  ETA 1m05s". */
void cli_progress(long step, long total, double loss, double tokens_per_s, double started);
void cli_progress_end(void);
/* A resumed run starts at the loaded step: the ETA and rates then count only the
 * steps of this run. Call before the first cli_progress (default 0). */
void cli_progress_start(long first_step);

/* ---- settings kept in checkpoints ----
 * A checkpoint stores the flags that define the model and the run (`names`, a
 * NULL-terminated list such as {"--hidden", "--lr", NULL}), so --load rebuilds the
 * same model and continues the same run. cli_meta_put writes each flag's value as
 * text into kv ({"hidden", "256"}: the name without "--"), then a {NULL, NULL} entry;
 * kv needs one entry per name plus one, store one row per name. Returns the count. */
enum { CLI_META_LEN = 256 };
int cli_meta_put(const cli_opt *opts, int n_opts, const char *const *names, char (*store)[CLI_META_LEN],
                 ur_ckpt_kv *kv);
/* Sets each named flag from the checkpoint's metadata. String flags then point into
 * ck: keep it open while they are used. Returns 0, or -1 after printing an error
 * naming the file and the key. */
int cli_meta_get(const ur_ckpt *ck, const char *path, const cli_opt *opts, int n_opts, const char *const *names);

/* The start of a training program: parses argv; with --load, opens the checkpoint,
 * takes the settings it stored (`stored`, as for cli_meta_get) and parses argv again,
 * so flags on the command line win; then applies --threads. *ck is the open
 * checkpoint (NULL without --load; the caller closes it). Returns -1 to go on, else
 * the status to exit with at once: 0 after --help, 2 for a bad flag, 1 for a
 * checkpoint that cannot be read (the error is printed, prefixed with `prog`). */
int cli_start(int argc, char **argv, const char *prog, const char *about, const cli_common *c,
              const cli_opt *opts, int n_opts, const char *const *stored, ur_ckpt **ck);

/* A vocabulary as checkpoint metadata: one "word<TAB>count" line per entry after the
 * first `skip` (the reserved ones); malloc'ed, NULL when out of memory. */
char *cli_vocab_to_text(const ur_vocab *v, int skip);
/* The inverse: a new vocabulary holding `specials`, then the words of the lines with
 * their counts, in order (so ids match); NULL for a malformed text. */
ur_vocab *cli_vocab_from_text(const char *text, unsigned specials);

/* ---- looking inside one training step ---- */
/* Writes the tape as Graphviz DOT to path; 0, or -1 after printing an error. */
int cli_write_dot(const ur_tape *t, const char *path);
/* A table of the gradient norm of every parameter (after ur_backward). */
void cli_grad_report_params(const ur_paramset *ps, FILE *out);
/* The norm of dL/dh_t for each time step t of a time-major node h (T, B, H) whose
 * gradient backward has filled; the label names the rows ("dL/dh_t"). */
void cli_grad_report_steps(const ur_node *h, const char *label, FILE *out);
/* What --print-tape, --dot and --grad-report ask for, after the backward pass of one
 * training step: the tape, its DOT file, the gradient norms of the parameters and of
 * the recurrent outputs h (T, B, H) per time step. 0, or -1 if the DOT file failed. */
int cli_show_step(const cli_common *c, const ur_tape *t, const ur_paramset *ps, const ur_node *h);

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
