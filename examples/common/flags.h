/* flags.h - command-line flags declared once, in a table: the parser, the error
 * messages and --help all read the same rows. Not part of the library (examples only).
 *
 * A program lists its flags,
 *
 *     cli_opt opts[] = {
 *         CLI_INT("--hidden", &cfg.hidden, 1, 4096, "hidden units per layer (default 256)"),
 *         CLI_CHOICE("--cell", &cfg.cell, CELLS, "recurrent cell (default lstm)"),
 *     };
 *
 * and a bad value is refused with a message that names the flag, what it allows and
 * what was given:
 *
 *     char_rnn: --hidden must be an integer in 1..4096, got "-5"
 *     char_rnn: --cell must be one of rnn, gru, lstm, got "xyz"
 */
#ifndef UR_EXAMPLES_FLAGS_H
#define UR_EXAMPLES_FLAGS_H

#include <limits.h>

#include "ur_checkpoint.h"

typedef enum cli_type {
    CLI_T_BOOL,   /* --name alone sets an int to 1 */
    CLI_T_INT,    /* int in lo..hi */
    CLI_T_LONG,   /* long in lo..hi */
    CLI_T_REAL,   /* double in [lo, hi], or [lo, hi) with CLI_OPEN_HI */
    CLI_T_TEXT,   /* const char *: any text (a path) */
    CLI_T_CHOICE  /* const char *: one of `choices` */
} cli_type;

enum { CLI_OPEN_HI = 1, CLI_ANY = 2 }; /* cli_opt.bounds */

typedef struct cli_opt {
    const char *name; /* "--hidden" */
    cli_type type;
    void *dst; /* int *, long *, double * or const char ** */
    double lo, hi;
    int bounds;                 /* CLI_OPEN_HI: hi itself is refused; CLI_ANY: no range */
    const char *const *choices; /* CLI_T_CHOICE: NULL-terminated */
    const char *help;
} cli_opt;

#define CLI_BOOL(name, dst, help) {name, CLI_T_BOOL, dst, 0, 1, 0, NULL, help}
#define CLI_INT(name, dst, lo, hi, help) {name, CLI_T_INT, dst, lo, hi, 0, NULL, help}
#define CLI_LONG(name, dst, lo, hi, help) {name, CLI_T_LONG, dst, lo, hi, 0, NULL, help}
#define CLI_ANY_LONG(name, dst, help) {name, CLI_T_LONG, dst, 0, 0, CLI_ANY, NULL, help}
#define CLI_REAL(name, dst, lo, hi, help) {name, CLI_T_REAL, dst, lo, hi, 0, NULL, help}
#define CLI_REAL_BELOW(name, dst, lo, hi, help) {name, CLI_T_REAL, dst, lo, hi, CLI_OPEN_HI, NULL, help}
#define CLI_TEXT(name, dst, help) {name, CLI_T_TEXT, dst, 0, 0, 0, NULL, help}
#define CLI_CHOICE(name, dst, choices, help) {name, CLI_T_CHOICE, dst, 0, 0, 0, choices, help}

/* Parses argv against the table. Returns 0 to go on, 1 after printing --help or
 * --version (exit
 * 0), -1 after printing an error to stderr (exit 2). Messages start with the
 * program's name (argv[0] without its folder). */
int cli_parse(int argc, char **argv, const char *about, const cli_opt *opts, int n_opts);
/* The index of choice s in a NULL-terminated list, or -1. */
int cli_choice_index(const char *const *choices, const char *s);

/* ---- settings kept in checkpoints ----
 * A checkpoint stores the flags that define the model and the run (`names`, a
 * NULL-terminated list such as {"--hidden", "--lr", NULL}), so --load rebuilds the
 * same model and continues the same run. cli_meta_put writes each flag's value as
 * text into kv ({"hidden", "256"}: the name without "--"), then a {NULL, NULL} entry;
 * kv needs one entry per name plus one, store one row per name. Returns the count. */
enum { CLI_META_LEN = 256 };
/* In a list of stored flags, the flags after CLI_ADDED_LATER were added to the
 * program after checkpoints had been written without them: cli_meta_get leaves
 * such a flag at its default when the checkpoint lacks it (an older checkpoint
 * then loads as the model it was). cli_meta_put skips the marker. */
#define CLI_ADDED_LATER "(added later)"
int cli_meta_put(const cli_opt *opts, int n_opts, const char *const *names, char (*store)[CLI_META_LEN],
                 ur_ckpt_kv *kv);
/* Sets each named flag from the checkpoint's metadata (checked as on the command
 * line). String flags then point into ck: keep it open while they are used. Returns
 * 0, or -1 after printing an error naming the file and the key. */
int cli_meta_get(const ur_ckpt *ck, const char *path, const cli_opt *opts, int n_opts, const char *const *names);

#endif
