/* cli.h - what every example program shares: the common flags (the table itself is
 * flags.h), the start of a run, a progress line, checkpoint helpers and a look inside
 * one training step; JSON output is json_out.h. Not part of the library (examples only). */
#ifndef UR_EXAMPLES_CLI_H
#define UR_EXAMPLES_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "flags.h"
#include "json_out.h"
#include "ur_checkpoint.h"
#include "ur_data.h"

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
    const char *precision; /* "f32" or "bf16": the tape's matrix products (cli_tape_new) */
} cli_common;

/* The choices of --precision, in the order of ur_precision. */
extern const char *const cli_precisions[];

#define CLI_COMMON_OPTS(c)                                                                   \
    CLI_ANY_LONG("--seed", &(c).seed, "random seed (default 1)"),                          \
    CLI_INT("--threads", &(c).threads, 0, 1024, "kernel threads (default: all cores)"),     \
    CLI_LONG("--steps", &(c).steps, 0, 1000000000, "stop after N training steps"),          \
    CLI_BOOL("--json", &(c).json, "print final metrics as one JSON line"),                  \
    CLI_BOOL("--print-tape", &(c).print_tape, "print the tape of one training step"),       \
    CLI_BOOL("--grad-report", &(c).grad_report, "print gradient norms after one step"),     \
    CLI_TEXT("--dot", &(c).dot, "write the tape of one training step as Graphviz DOT"),     \
    CLI_TEXT("--save", &(c).save, "write a checkpoint (safetensors) at the end"),           \
    CLI_TEXT("--load", &(c).load, "start from a checkpoint"),                               \
    CLI_CHOICE("--precision", &(c).precision, cli_precisions,                               \
               "matrix products in f32 or bf16 (bf16 operands, f32 sums; AVX512-BF16 if the CPU " \
               "has it, else a slow portable path; default f32)")

void cli_common_defaults(cli_common *c);
/* Applies --threads, and the smoke cap: with UR_SMOKE_STEPS=N in the environment
 * (a testing aid: tests/doc_commands.sh runs every documented command with it) a
 * --steps above N becomes N. */
void cli_apply_common(cli_common *c);
/* N of UR_SMOKE_STEPS=N (a positive integer), else 0. */
long cli_smoke_steps(void);
/* n, or at most `per_step` * N items of it in a smoke run: what an evaluation over
 * n items (batches, sentences, characters) may cover then. */
long cli_smoke_limit(long n, long per_step);

/* A new tape computing its matrix products in the precision --precision names; NULL
 * when out of memory or refused (ur_last_error says why). */
ur_tape *cli_tape_new(const cli_common *c);

double cli_now(void); /* monotonic seconds */

/* One progress line on stderr, rewritten in place when stderr is a terminal:
 * "step 120/2000  loss 1.8342  41.2k tok/s  ETA 1m05s". */
void cli_progress(long step, long total, double loss, double tokens_per_s, double started);
void cli_progress_end(void);
/* A resumed run starts at the loaded step: the ETA and rates then count only the
 * steps of this run. Call before the first cli_progress (default 0). */
void cli_progress_start(long first_step);
/* The mean training loss since the last progress line: add each step's loss, take
 * the mean for the line (which starts the next mean). */
typedef struct cli_meter {
    double sum;
    long n;
} cli_meter;
void cli_meter_add(cli_meter *m, double loss);
double cli_meter_take(cli_meter *m);

/* Reads back from a checkpoint the parameters, the optimizer state (opt may be NULL:
 * --eval needs none) and the RNG saved as metadata "rng" (rng may be NULL). 1, or 0
 * after printing an error prefixed with prog. */
int cli_load_training(ur_ckpt *ck, const char *path, const char *prog, ur_paramset *ps, ur_optim *opt,
                      ur_rng *rng);

/* The start of a training program: parses argv; with --load, opens the checkpoint,
 * takes the settings it stored (`stored`, as for cli_meta_get) and parses argv again,
 * so flags on the command line win; then applies the common flags (cli_apply_common;
 * with UR_SMOKE_STEPS=N, --steps 0, the program's full length, becomes N as well).
 * *ck is the open checkpoint (NULL without --load; the caller closes it). Returns -1 to go on, else
 * the status to exit with at once: 0 after --help, 2 for a bad flag, 1 for a
 * checkpoint that cannot be read (the error is printed, prefixed with `prog`). */
int cli_start(int argc, char **argv, const char *prog, const char *about, cli_common *c,
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

#endif
