/* cli.c - flags, progress line and JSON output shared by the examples. */
#include "cli.h"
#include "checkpoint_hooks_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "unroll.h"

const char *const cli_precisions[] = {"f32", "bf16", NULL};

void cli_common_defaults(cli_common *c) {
    memset(c, 0, sizeof *c);
    c->seed = 1;
    c->precision = "f32";
}

long cli_smoke_steps(void) {
    const char *e = getenv("UR_SMOKE_STEPS");
    char *end;
    long n = e ? strtol(e, &end, 10) : 0;
    return e && end != e && *end == '\0' && n > 0 ? n : 0;
}

long cli_smoke_limit(long n, long per_step) {
    long cap = cli_smoke_steps() * per_step;
    return cap > 0 && cap < n ? cap : n;
}

void cli_apply_common(cli_common *c) {
    ur_set_num_threads(c->threads);
    /* only a positive --steps: for some programs 0 means "no training" */
    long smoke = cli_smoke_steps();
    if (smoke && c->steps > smoke) c->steps = smoke;
}

ur_tape *cli_tape_new(const cli_common *c) {
    ur_tape *t = ur_tape_new();
    int p = cli_choice_index(cli_precisions, c->precision);
    if (t && ur_tape_set_precision(t, p == 1 ? UR_PRECISION_BF16 : UR_PRECISION_F32) != UR_OK) {
        ur_tape_free(t);
        return NULL;
    }
    return t;
}

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

void cli_meter_add(cli_meter *m, double loss) {
    m->sum += loss;
    m->n++;
}

double cli_meter_take(cli_meter *m) {
    double mean = m->sum / (double)m->n;
    *m = (cli_meter){0, 0};
    return mean;
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

int cli_load_training(ur_ckpt *ck, const char *path, const char *prog, ur_paramset *ps, ur_optim *opt,
                      ur_rng *rng) {
    const char *rng_hex = ur_ckpt_meta(ck, "rng");
    ur_status s = ur_ckpt_read_params(ck, ps, 0);
    if (s == UR_OK && opt) s = ur_ckpt_read_optim(ck, opt);
    if (s == UR_OK && rng) s = rng_hex ? ur_ckpt_rng_decode(rng_hex, rng) : ur_set_error(UR_ERR_FORMAT, "no 'rng'");
    if (s != UR_OK) fprintf(stderr, "%s: --load %s: %s\n", prog, path, ur_last_error());
    return s == UR_OK;
}

int cli_start(int argc, char **argv, const char *prog, const char *about, cli_common *c,
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
    /* the programs that start here read --steps 0 as their full length */
    if (c->steps == 0) c->steps = cli_smoke_steps();
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
