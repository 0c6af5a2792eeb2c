/* cli.c - flags, progress line and JSON output shared by the examples. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "unroll.h"

void cli_common_defaults(cli_common *c) {
    memset(c, 0, sizeof *c);
    c->seed = 1;
}

static void usage(const char *prog, const char *about, const cli_opt *opts, int n) {
    printf("%s\n\nusage: %s [flags]\n\n", about, prog);
    for (int i = 0; i < n; i++) {
        const char *arg = opts[i].type == 'b' ? "" : opts[i].type == 's' ? " TEXT" : " N";
        char left[48];
        snprintf(left, sizeof left, "%s%s", opts[i].name, arg);
        printf("  %-24s %s\n", left, opts[i].help);
    }
    printf("  %-24s %s\n", "--help", "show this help");
}

/* Sets flag o from the text v; 0, or -1 after printing an error. */
static int set_value(const char *prog, const cli_opt *o, const char *v) {
    if (o->type == 's') {
        *(const char **)o->dst = v;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case 'b': *(int *)o->dst = (int)strtol(v, &end, 10); break;
    case 'i': {
        long x = strtol(v, &end, 10);
        if (x < -2147483647L || x > 2147483647L) errno = ERANGE;
        *(int *)o->dst = (int)x;
        break;
    }
    case 'l': *(long *)o->dst = strtol(v, &end, 10); break;
    default: *(double *)o->dst = strtod(v, &end); break;
    }
    if (errno || !end || *end || end == v) {
        fprintf(stderr, "%s: flag %s: '%s' is not a valid %s\n", prog, o->name, v,
                o->type == 'f' ? "number" : "integer");
        return -1;
    }
    return 0;
}

int cli_parse(int argc, char **argv, const char *about, const cli_opt *opts, int n) {
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) {
            usage(argv[0], about, opts, n);
            return 1;
        }
        const cli_opt *o = NULL;
        for (int i = 0; i < n && !o; i++)
            if (!strcmp(argv[a], opts[i].name)) o = &opts[i];
        if (!o) {
            fprintf(stderr, "%s: unknown flag '%s' (see --help)\n", argv[0], argv[a]);
            return -1;
        }
        if (o->type == 'b') {
            *(int *)o->dst = 1;
            continue;
        }
        if (a + 1 >= argc) {
            fprintf(stderr, "%s: flag %s needs a value\n", argv[0], o->name);
            return -1;
        }
        if (set_value(argv[0], o, argv[++a]) != 0) return -1;
    }
    return 0;
}

void cli_apply_common(const cli_common *c) { ur_set_num_threads(c->threads); }

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int progress_open;
static long progress_first;

void cli_progress_start(long first_step) { progress_first = first_step; }

void cli_progress(long step, long total, double loss, double tokens_per_s, double started) {
    if (ur_dist_rank() != 0) return; /* rank 0 logs for all */
    double el = cli_now() - started;
    long done = step - progress_first;
    double eta = done > 0 && total > step ? el / (double)done * (double)(total - step) : 0;
    int tty = isatty(2);
    fprintf(stderr, "%sstep %ld/%ld  loss %.4f  %.1fk tok/s  ETA %dm%02ds%s", tty ? "\r" : "", step, total, loss,
            tokens_per_s / 1000.0, (int)(eta / 60), (int)fmod(eta, 60), tty ? "   " : "\n");
    progress_open = tty;
    fflush(stderr);
}

void cli_progress_end(void) {
    if (progress_open) fputc('\n', stderr);
    progress_open = 0;
}

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

/* ---- settings kept in checkpoints ---- */

static const cli_opt *find_opt(const cli_opt *opts, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(opts[i].name, name)) return &opts[i];
    return NULL;
}

int cli_meta_put(const cli_opt *opts, int n_opts, const char *const *names, char (*store)[CLI_META_LEN],
                 ur_ckpt_kv *kv) {
    int k = 0;
    for (; names[k]; k++) {
        const cli_opt *o = find_opt(opts, n_opts, names[k]);
        char *v = store[k];
        if (!o) v[0] = '\0';
        else switch (o->type) {
            case 'b':
            case 'i': snprintf(v, CLI_META_LEN, "%d", *(const int *)o->dst); break;
            case 'l': snprintf(v, CLI_META_LEN, "%ld", *(const long *)o->dst); break;
            case 'f': snprintf(v, CLI_META_LEN, "%.17g", *(const double *)o->dst); break; /* exact */
            default: {
                const char *s = *(const char *const *)o->dst;
                snprintf(v, CLI_META_LEN, "%s", s ? s : "");
            }
            }
        kv[k].key = names[k] + 2; /* "--hidden" -> "hidden" */
        kv[k].value = v;
    }
    kv[k].key = kv[k].value = NULL;
    return k;
}

int cli_meta_get(const ur_ckpt *ck, const char *path, const cli_opt *opts, int n_opts, const char *const *names) {
    for (int k = 0; names[k]; k++) {
        const cli_opt *o = find_opt(opts, n_opts, names[k]);
        const char *v = ur_ckpt_meta(ck, names[k] + 2);
        if (!v) {
            fprintf(stderr, "%s: metadata '%s' is missing (not a checkpoint of this program?)\n", path,
                    names[k] + 2);
            return -1;
        }
        if (o && set_value(path, o, v) != 0) return -1;
    }
    return 0;
}

char *cli_vocab_to_text(const ur_vocab *v, int skip) {
    size_t n = 1;
    for (int i = skip; i < ur_vocab_size(v); i++) n += ur_vocab_string_len(v, i) + 24;
    char *s = malloc(n), *p = s;
    if (!s) return NULL;
    for (int i = skip; i < ur_vocab_size(v); i++)
        p += snprintf(p, n - (size_t)(p - s), "%s\t%lld\n", ur_vocab_string(v, i), (long long)ur_vocab_count(v, i));
    *p = '\0';
    return s;
}

ur_vocab *cli_vocab_from_text(const char *s, unsigned specials) {
    ur_vocab *v = ur_vocab_new(specials);
    while (v && *s) {
        const char *tab = strchr(s, '\t'), *nl = tab ? strchr(tab, '\n') : NULL;
        if (!nl || ur_vocab_add_n(v, s, (size_t)(tab - s), atoll(tab + 1)) < 0) {
            ur_vocab_free(v);
            return NULL;
        }
        s = nl + 1;
    }
    return v;
}

int cli_start(int argc, char **argv, const char *prog, const char *about, const cli_common *c,
              const cli_opt *opts, int n_opts, const char *const *stored, ur_ckpt **ck) {
    *ck = NULL;
    int r = cli_parse(argc, argv, about, opts, n_opts);
    if (r) return r > 0 ? 0 : 2;
    if (c->load) {
        *ck = ur_ckpt_open(c->load);
        if (!*ck) {
            fprintf(stderr, "%s: --load: %s\n", prog, ur_last_error());
            return 1;
        }
        if (cli_meta_get(*ck, c->load, opts, n_opts, stored) != 0) {
            ur_ckpt_close(*ck);
            *ck = NULL;
            return 1;
        }
        cli_parse(argc, argv, about, opts, n_opts); /* the command line wins */
    }
    cli_apply_common(c);
    return -1;
}

/* ---- looking inside one training step ---- */

int cli_write_dot(const ur_tape *t, const char *path) {
    FILE *f = fopen(path, "w");
    int ok = f && ur_tape_dot(t, f) == UR_OK;
    if (f && fclose(f) != 0) ok = 0;
    if (!ok) fprintf(stderr, "cannot write %s: %s\n", path, f ? ur_last_error() : strerror(errno));
    return ok ? 0 : -1;
}

static double norm2(const ur_real *v, size_t n) {
    double s = 0;
    for (size_t i = 0; v && i < n; i++) s += (double)v[i] * (double)v[i];
    return sqrt(s);
}

void cli_grad_report_params(const ur_paramset *ps, FILE *out) {
    fprintf(out, "gradient norms after one training step (before clipping)\n  %-34s %-14s %12s\n", "parameter",
            "shape", "||dL/dp||");
    for (int i = 0; i < ur_paramset_count(ps); i++) {
        const ur_param *p = ur_paramset_get(ps, i);
        char shape[64];
        fprintf(out, "  %-34s %-14s %12.4e\n", p->name, ur_shape_str(&p->value.shape, shape, sizeof shape),
                norm2(p->grad.data, p->grad.size));
    }
    fprintf(out, "  %-34s %-14s %12.4e\n", "(all)", "", ur_grad_norm(ps));
}

void cli_grad_report_steps(const ur_node *h, const char *label, FILE *out) {
    const ur_real *g = ur_node_grad(h);
    int T = ur_node_dim(h, 0);
    size_t per_step = T > 0 ? ur_node_size(h) / (size_t)T : 0;
    fprintf(out, "  %-6s %12s\n", "t", label);
    for (int t = 0; t < T; t++)
        fprintf(out, "  %-6d %12.4e\n", t + 1, g ? norm2(g + (size_t)t * per_step, per_step) : 0.0);
}

int cli_show_step(const cli_common *c, const ur_tape *t, const ur_paramset *ps, const ur_node *h) {
    if (c->print_tape) ur_tape_print(t, stdout);
    if (c->grad_report) {
        cli_grad_report_params(ps, stdout);
        cli_grad_report_steps(h, "||dL/dh_t||", stdout);
    }
    if (!c->dot) return 0;
    if (cli_write_dot(t, c->dot) != 0) return -1;
    printf("wrote the tape of one training step to %s (render: dot -Tsvg %s -o step.svg)\n", c->dot, c->dot);
    return 0;
}
