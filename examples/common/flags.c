/* flags.c - the flag table: parsing, range checks, --help and checkpoint metadata. */
#include "flags.h"
#include "unroll.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The program's name for messages: argv[0] without its folder. */
static const char *prog_name(const char *argv0) {
    const char *slash = strrchr(argv0, '/');
    return slash ? slash + 1 : argv0;
}

int cli_choice_index(const char *const *choices, const char *s) {
    for (int i = 0; choices && choices[i]; i++)
        if (!strcmp(choices[i], s)) return i;
    return -1;
}

/* What the flag allows, as the messages and --help say it: "an integer in 1..4096",
 * "a number in [0, 1)", "one of rnn, gru, lstm", "a text". */
static void describe(const cli_opt *o, char *buf, size_t n) {
    switch (o->type) {
    case CLI_T_BOOL: snprintf(buf, n, "0 or 1"); break;
    case CLI_T_INT:
    case CLI_T_LONG:
        if (o->bounds & CLI_ANY) snprintf(buf, n, "an integer");
        else snprintf(buf, n, "an integer in %.0f..%.0f", o->lo, o->hi);
        break;
    case CLI_T_REAL:
        snprintf(buf, n, "a number in [%g, %g%c", o->lo, o->hi, o->bounds & CLI_OPEN_HI ? ')' : ']');
        break;
    case CLI_T_TEXT: snprintf(buf, n, "a text"); break;
    case CLI_T_CHOICE: {
        size_t at = (size_t)snprintf(buf, n, "one of ");
        for (int i = 0; o->choices[i] && at < n; i++)
            at += (size_t)snprintf(buf + at, n - at, "%s%s", i ? ", " : "", o->choices[i]);
        break;
    }
    }
}

/* Parses the text v as an integer of [lo, hi]; 0, or -1 when it is not one. */
static int parse_integer(const char *v, const cli_opt *o, long *x) {
    char *end = NULL;
    errno = 0;
    *x = strtol(v, &end, 10);
    if (errno || end == v || *end) return -1;
    return o->bounds & CLI_ANY || (*x >= o->lo && *x <= o->hi) ? 0 : -1;
}

/* Sets flag o from the text v; 0, or -1 after printing "who: --flag must be ..., got "v"". */
static int set_value(const char *who, const cli_opt *o, const char *v) {
    int ok = 1;
    switch (o->type) {
    case CLI_T_TEXT: *(const char **)o->dst = v; break;
    case CLI_T_CHOICE:
        ok = cli_choice_index(o->choices, v) >= 0;
        if (ok) *(const char **)o->dst = v;
        break;
    case CLI_T_REAL: {
        char *end = NULL;
        errno = 0;
        double x = strtod(v, &end);
        ok = !errno && end != v && !*end && x >= o->lo && (o->bounds & CLI_OPEN_HI ? x < o->hi : x <= o->hi);
        if (ok) *(double *)o->dst = x;
        break;
    }
    default: { /* CLI_T_BOOL (from checkpoint metadata), CLI_T_INT, CLI_T_LONG */
        long x;
        ok = parse_integer(v, o, &x) == 0;
        if (ok && o->type == CLI_T_LONG) *(long *)o->dst = x;
        else if (ok) *(int *)o->dst = (int)x;
    }
    }
    if (ok) return 0;
    char allowed[256];
    describe(o, allowed, sizeof allowed);
    fprintf(stderr, "%s: %s must be %s, got \"%s\"\n", who, o->name, allowed, v);
    return -1;
}

/* The left column of a help line: the flag and what it takes ("--cell rnn|gru|lstm"). */
static void help_left(const cli_opt *o, char *left, size_t n) {
    size_t at = (size_t)snprintf(left, n, "%s", o->name);
    if (o->type == CLI_T_CHOICE)
        for (int k = 0; o->choices[k] && at < n; k++)
            at += (size_t)snprintf(left + at, n - at, "%c%s", k ? '|' : ' ', o->choices[k]);
    else if (o->type != CLI_T_BOOL && at < n)
        snprintf(left + at, n - at, "%s", o->type == CLI_T_TEXT ? " TEXT" : " N");
}

static void usage(const char *prog, const char *about, const cli_opt *opts, int n) {
    char left[128];
    int width = 24; /* the widest left column up to HELP_MAX; a wider one gets a line of its own */
    enum { HELP_MAX = 36 };
    for (int i = 0; i < n; i++) {
        help_left(&opts[i], left, sizeof left);
        int w = (int)strlen(left);
        if (w > width && w <= HELP_MAX) width = w;
    }
    printf("%s\n\nusage: %s [flags]\n\n", about, prog);
    for (int i = 0; i < n; i++) {
        const cli_opt *o = &opts[i];
        char range[64] = "", allowed[256];
        help_left(o, left, sizeof left);
        describe(o, allowed, sizeof allowed);
        const char *in = strstr(allowed, " in "); /* "1..4096" or "[0, 1)" */
        if (in && (o->type == CLI_T_INT || o->type == CLI_T_LONG || o->type == CLI_T_REAL))
            snprintf(range, sizeof range, o->type == CLI_T_REAL ? " %s" : " [%s]", in + 4);
        if ((int)strlen(left) > width) printf("  %s\n  %-*s %s%s\n", left, width, "", o->help, range);
        else printf("  %-*s %s%s\n", width, left, o->help, range);
    }
    printf("  %-*s %s\n", width, "--help", "show this help");
    printf("  %-*s %s\n", width, "--version", "show the version and the kernel path this CPU runs");
}

/* "char_rnn: unroll 0.1.0 (float), kernels avx512". A refused UR_KERNELS request
 * (a path this CPU lacks) is explained on stderr. */
static void print_version(const char *prog) {
    ur_status s = ur_kernel_select(NULL); /* applies UR_KERNELS and says why not */
    printf("%s: unroll %s (%s), kernels %s\n", prog, UR_VERSION, sizeof(ur_real) == sizeof(double) ? "double" : "float",
           ur_kernel_isa());
    if (s != UR_OK) fprintf(stderr, "%s: %s\n", prog, ur_last_error());
}

int cli_parse(int argc, char **argv, const char *about, const cli_opt *opts, int n) {
    const char *prog = prog_name(argv[0]);
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) {
            usage(prog, about, opts, n);
            return 1;
        }
        if (!strcmp(argv[a], "--version")) {
            print_version(prog);
            return 1;
        }
        const cli_opt *o = NULL;
        for (int i = 0; i < n && !o; i++)
            if (!strcmp(argv[a], opts[i].name)) o = &opts[i];
        if (!o) {
            fprintf(stderr, "%s: unknown flag '%s' (see --help)\n", prog, argv[a]);
            return -1;
        }
        if (o->type == CLI_T_BOOL) {
            *(int *)o->dst = 1;
            continue;
        }
        if (a + 1 >= argc) {
            char allowed[256];
            describe(o, allowed, sizeof allowed);
            fprintf(stderr, "%s: %s needs a value (%s)\n", prog, o->name, allowed);
            return -1;
        }
        if (set_value(prog, o, argv[++a]) != 0) return -1;
    }
    return 0;
}

/* ---- settings kept in checkpoints ---- */

static const cli_opt *find_opt(const cli_opt *opts, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(opts[i].name, name)) return &opts[i];
    return NULL;
}

int cli_meta_put(const cli_opt *opts, int n_opts, const char *const *names, char (*store)[CLI_META_LEN],
                 ur_ckpt_kv *kv) {
    int k = 0;
    for (int i = 0; names[i]; i++) {
        if (!strcmp(names[i], CLI_ADDED_LATER)) continue;
        const cli_opt *o = find_opt(opts, n_opts, names[i]);
        char *v = store[k];
        if (!o) v[0] = '\0';
        else switch (o->type) {
            case CLI_T_BOOL:
            case CLI_T_INT: snprintf(v, CLI_META_LEN, "%d", *(const int *)o->dst); break;
            case CLI_T_LONG: snprintf(v, CLI_META_LEN, "%ld", *(const long *)o->dst); break;
            case CLI_T_REAL: snprintf(v, CLI_META_LEN, "%.17g", *(const double *)o->dst); break; /* exact */
            default: {
                const char *s = *(const char *const *)o->dst;
                snprintf(v, CLI_META_LEN, "%s", s ? s : "");
            }
            }
        kv[k].key = names[i] + 2; /* "--hidden" -> "hidden" */
        kv[k].value = v;
        k++;
    }
    kv[k].key = kv[k].value = NULL;
    return k;
}

int cli_meta_get(const ur_ckpt *ck, const char *path, const cli_opt *opts, int n_opts, const char *const *names) {
    int later = 0;
    for (int k = 0; names[k]; k++) {
        if (!strcmp(names[k], CLI_ADDED_LATER)) {
            later = 1;
            continue;
        }
        const cli_opt *o = find_opt(opts, n_opts, names[k]);
        const char *v = ur_ckpt_meta(ck, names[k] + 2);
        if (!v && later) continue; /* an older checkpoint: the default stays */
        if (!v) {
            fprintf(stderr, "%s: metadata '%s' is missing (not a checkpoint of this program?)\n", path,
                    names[k] + 2);
            return -1;
        }
        if (o && set_value(path, o, v) != 0) return -1;
    }
    return 0;
}
