/* optim.c - SGD, Adagrad, RMSprop, Adam; clipping; learning-rate schedules. */
#include "ur_optim.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../tensor/kernels_internal.h"

/* One state tensor: a buffer of the same shape as its parameter. */
typedef struct state_buf {
    char name[128];
    ur_tensor *t;
} state_buf;

struct ur_optim {
    ur_paramset *ps;
    ur_optim_config cfg;
    uint64_t steps;
    int n_params;     /* parameter count when the state was made; -1 before */
    int per_param;    /* state tensors per parameter: 0, 1 or 2 */
    state_buf *state; /* n_params * per_param, parameter-major */
};

static const char *kind_names[] = {"sgd", "adagrad", "rmsprop", "adam"};

const char *ur_optim_kind_name(ur_optim_kind kind) {
    if ((int)kind < 0 || (int)kind > UR_OPTIM_ADAM) return "?";
    return kind_names[kind];
}

ur_optim_config ur_optim_defaults(ur_optim_kind kind, double lr) {
    ur_optim_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.lr = lr;
    c.alpha = 0.99;
    c.beta1 = 0.9;
    c.beta2 = 0.999;
    c.eps = kind == UR_OPTIM_ADAGRAD ? 1e-10 : 1e-8;
    return c;
}

static ur_status check_config(const ur_optim_config *c) {
    const char *fn = "ur_optim_new";
    if ((int)c->kind < 0 || (int)c->kind > UR_OPTIM_ADAM)
        return ur_set_error(UR_ERR_ARG, "%s: unknown optimizer kind %d", fn, (int)c->kind);
    if (!(c->lr >= 0) || !isfinite(c->lr))
        return ur_set_error(UR_ERR_ARG, "%s: learning rate %g (must be finite and >= 0)", fn, c->lr);
    if (!(c->weight_decay >= 0) || !isfinite(c->weight_decay))
        return ur_set_error(UR_ERR_ARG, "%s: weight decay %g (must be finite and >= 0)", fn, c->weight_decay);
    if (!(c->eps >= 0) || !isfinite(c->eps))
        return ur_set_error(UR_ERR_ARG, "%s: eps %g (must be finite and >= 0)", fn, c->eps);
    if (c->kind == UR_OPTIM_SGD) {
        if (!(c->momentum >= 0 && c->momentum < 1))
            return ur_set_error(UR_ERR_ARG, "%s: momentum %g (must be in [0, 1))", fn, c->momentum);
        if (c->nesterov && c->momentum == 0)
            return ur_set_error(UR_ERR_ARG, "%s: Nesterov momentum needs momentum > 0", fn);
    }
    if (c->kind == UR_OPTIM_RMSPROP && !(c->alpha >= 0 && c->alpha < 1))
        return ur_set_error(UR_ERR_ARG, "%s: RMSprop alpha %g (must be in [0, 1))", fn, c->alpha);
    if (c->kind == UR_OPTIM_ADAM && !(c->beta1 >= 0 && c->beta1 < 1 && c->beta2 >= 0 && c->beta2 < 1))
        return ur_set_error(UR_ERR_ARG, "%s: Adam betas (%g, %g) (each must be in [0, 1))", fn, c->beta1,
                            c->beta2);
    return UR_OK;
}

ur_optim *ur_optim_new(ur_paramset *ps, const ur_optim_config *cfg) {
    if (!ps || !cfg) {
        ur_set_error(UR_ERR_ARG, "ur_optim_new: paramset or config is NULL");
        return NULL;
    }
    if (check_config(cfg) != UR_OK) return NULL;
    ur_optim *o = ur_calloc(1, sizeof *o);
    if (!o) {
        ur_set_error(UR_ERR_NOMEM, "ur_optim_new: out of memory");
        return NULL;
    }
    o->ps = ps;
    o->cfg = *cfg;
    o->n_params = -1;
    switch (cfg->kind) {
    case UR_OPTIM_SGD: o->per_param = cfg->momentum > 0 ? 1 : 0; break;
    case UR_OPTIM_ADAGRAD:
    case UR_OPTIM_RMSPROP: o->per_param = 1; break;
    case UR_OPTIM_ADAM: o->per_param = 2; break;
    }
    return o;
}

static void free_state(ur_optim *o) {
    if (o->state) {
        int n = o->n_params * o->per_param;
        for (int i = 0; i < n; i++) ur_tensor_free(o->state[i].t);
        ur_free(o->state);
    }
    o->state = NULL;
    o->n_params = -1;
}

void ur_optim_free(ur_optim *o) {
    if (!o) return;
    free_state(o);
    ur_free(o);
}

/* The buffer names of each kind, in the order of the state array. */
static const char *buffer_name(ur_optim_kind kind, int j) {
    switch (kind) {
    case UR_OPTIM_SGD: return "momentum";
    case UR_OPTIM_ADAGRAD: return "sum";
    case UR_OPTIM_RMSPROP: return "sq";
    case UR_OPTIM_ADAM: return j == 0 ? "m" : "v";
    }
    return "?";
}

ur_status ur_optim_init_state(ur_optim *o) {
    if (!o) return ur_set_error(UR_ERR_ARG, "ur_optim_init_state: optimizer is NULL");
    int np = ur_paramset_count(o->ps);
    if (o->n_params >= 0) {
        if (np != o->n_params)
            return ur_set_error(UR_ERR_STATE,
                                "ur_optim_init_state: the paramset has %d parameters, the optimizer state "
                                "was made for %d",
                                np, o->n_params);
        return UR_OK;
    }
    int n = np * o->per_param;
    state_buf *st = ur_calloc(n > 0 ? (size_t)n : 1, sizeof *st);
    if (!st) return ur_set_error(UR_ERR_NOMEM, "ur_optim_init_state: out of memory");
    o->state = st;
    o->n_params = np;
    for (int i = 0; i < np; i++) {
        const ur_param *p = ur_paramset_get(o->ps, i);
        for (int j = 0; j < o->per_param; j++) {
            state_buf *b = &st[i * o->per_param + j];
            snprintf(b->name, sizeof b->name, "optim.%s.%s.%s", kind_names[o->cfg.kind],
                     buffer_name(o->cfg.kind, j), p->name);
            b->t = ur_tensor_new(p->value.shape.ndim, p->value.shape.dims);
            if (!b->t) {
                free_state(o);
                return ur_set_error(UR_ERR_NOMEM, "ur_optim_init_state: out of memory for the state of '%s'",
                                    p->name);
            }
        }
    }
    return UR_OK;
}

int ur_optim_state_count(const ur_optim *o) {
    if (!o || o->n_params < 0) return 0;
    return o->n_params * o->per_param;
}

ur_tensor *ur_optim_state_at(const ur_optim *o, int i, const char **name) {
    if (i < 0 || i >= ur_optim_state_count(o)) return NULL;
    if (name) *name = o->state[i].name;
    return o->state[i].t;
}

/* 1 when a row-sparse parameter may be updated row by row under c: exactly the
 * dense update (a zero gradient leaves the row as it is), or lazy Adam. */
static int row_wise(const ur_optim_config *c) {
    switch (c->kind) {
    case UR_OPTIM_SGD: return c->momentum == 0 && c->weight_decay == 0;
    case UR_OPTIM_ADAGRAD: return c->weight_decay == 0;
    case UR_OPTIM_ADAM: return c->lazy;
    default: return 0;
    }
}

/* Before any change: every parameter still matches its state, and every gradient
 * is finite. */
static ur_status check_before_step(const ur_optim *o) {
    for (int i = 0; i < o->n_params; i++) {
        const ur_param *p = ur_paramset_get(o->ps, i);
        if (o->per_param > 0 && o->state[i * o->per_param].t->size != p->value.size)
            return ur_set_error(UR_ERR_STATE,
                                "ur_optim_step: parameter '%s' changed size since the first step", p->name);
        const ur_real *g = p->grad.data;
        const int *rows;
        int n_rows = row_wise(&o->cfg) ? ur_param_grad_rows(p, &rows) : -1;
        size_t D = n_rows >= 0 ? (size_t)p->value.shape.dims[1] : 0;
        for (int r = 0; r < (n_rows < 0 ? 1 : n_rows); r++) { /* the whole tensor, or each listed row */
            size_t at = n_rows < 0 ? 0 : (size_t)rows[r] * D, n = n_rows < 0 ? p->grad.size : D;
            if (ur__vec_all_finite(n, g + at)) continue; /* the common case, vectorized */
            for (size_t k = at; k < at + n; k++)
                if (!isfinite(g[k]))
                    return ur_set_error(UR_ERR_NUMERIC, "ur_optim_step: gradient of '%s' is %s at element %zu",
                                        p->name, isnan(g[k]) ? "NaN" : "Inf", k);
        }
    }
    return UR_OK;
}

/* Below this many elements one thread updates a parameter: the update is a few
 * nanoseconds per element, and on a busy machine a parallel region can wait
 * milliseconds for its second thread. Below it the loop is not inside a parallel
 * region at all: even one with a false if clause costs a call into the OpenMP
 * runtime (a team set up, an allocation, futex calls), and a row-sparse embedding
 * update makes one call per row. Does not change any result. */
enum { UPDATE_PAR_MIN = 1 << 18 };

/* The update of one parameter of n elements. s0, s1: its state buffers (or NULL).
 * bc1, bc2: Adam's bias corrections 1 - beta^t.
 * One loop per rule, with the settings in locals: the per-element switch and the
 * reads through c kept the compiler from vectorizing, and the update of a large
 * embedding table dominated small training steps. Every element goes through
 * the same double-precision expressions as before, so the results are unchanged. */
#define UPDATE_ELEMENT(BODY)                                                                       \
    {                                                                                              \
        double x = (double)w[k] * shrink;                                                          \
        double g = (double)grad[k] + l2 * (double)w[k];                                            \
        BODY;                                                                                      \
        w[k] = (ur_real)x;                                                                         \
    }
#define UPDATE_LOOP(BODY)                                                                          \
    if (n >= UPDATE_PAR_MIN) {                                                                     \
        _Pragma("omp parallel for schedule(static)")                                               \
        for (size_t k = 0; k < n; k++) UPDATE_ELEMENT(BODY)                                        \
    } else {                                                                                       \
        for (size_t k = 0; k < n; k++) UPDATE_ELEMENT(BODY)                                        \
    }

static void update_param(const ur_optim_config *c, size_t n, ur_real *restrict w, const ur_real *restrict grad,
                         ur_real *restrict s0, ur_real *restrict s1, double bc1, double bc2) {
    const double lr = c->lr, wd = c->weight_decay, eps = c->eps;
    const double l2 = c->decoupled ? 0.0 : wd;                /* added to the gradient */
    const double shrink = c->decoupled ? 1.0 - lr * wd : 1.0; /* applied to the value */
    const double mom = c->momentum, alpha = c->alpha, beta1 = c->beta1, beta2 = c->beta2;
    switch (c->kind) {
    case UR_OPTIM_SGD:
        if (!s0) /* the same expressions in the vectorized kernel of this CPU */
            ur__vec_sgd(n, lr, l2, shrink, grad, w);
        else if (c->nesterov) {
            UPDATE_LOOP(double b = mom * (double)s0[k] + g; s0[k] = (ur_real)b; x -= lr * (g + mom * b))
        } else {
            UPDATE_LOOP(double b = mom * (double)s0[k] + g; s0[k] = (ur_real)b; x -= lr * b)
        }
        break;
    case UR_OPTIM_ADAGRAD:
        UPDATE_LOOP(double s = (double)s0[k] + g * g; s0[k] = (ur_real)s; x -= lr * g / (sqrt(s) + eps))
        break;
    case UR_OPTIM_RMSPROP:
        UPDATE_LOOP(double s = alpha * (double)s0[k] + (1.0 - alpha) * g * g; s0[k] = (ur_real)s;
                    x -= lr * g / (sqrt(s) + eps))
        break;
    case UR_OPTIM_ADAM:
        UPDATE_LOOP(double m = beta1 * (double)s0[k] + (1.0 - beta1) * g;
                    double v = beta2 * (double)s1[k] + (1.0 - beta2) * g * g; s0[k] = (ur_real)m;
                    s1[k] = (ur_real)v; x -= lr * (m / bc1) / (sqrt(v / bc2) + eps))
        break;
    }
}
#undef UPDATE_LOOP
#undef UPDATE_ELEMENT

ur_status ur_optim_step(ur_optim *o) {
    if (!o) return ur_set_error(UR_ERR_ARG, "ur_optim_step: optimizer is NULL");
    ur_status st = ur_optim_init_state(o);
    if (st != UR_OK) return st;
    st = check_before_step(o);
    if (st != UR_OK) return st;
    o->steps++;
    double t = (double)o->steps;
    double bc1 = 1.0 - pow(o->cfg.beta1, t), bc2 = 1.0 - pow(o->cfg.beta2, t);
    for (int i = 0; i < o->n_params; i++) {
        ur_param *p = ur_paramset_get(o->ps, i);
        ur_real *s0 = o->per_param > 0 ? o->state[i * o->per_param].t->data : NULL;
        ur_real *s1 = o->per_param > 1 ? o->state[i * o->per_param + 1].t->data : NULL;
        const int *rows;
        int n_rows = row_wise(&o->cfg) ? ur_param_grad_rows(p, &rows) : -1;
        if (n_rows < 0) {
            update_param(&o->cfg, p->value.size, p->value.data, p->grad.data, s0, s1, bc1, bc2);
            continue;
        }
        size_t D = (size_t)p->value.shape.dims[1];
        for (int r = 0; r < n_rows; r++) { /* the same update, one row at a time */
            size_t at = (size_t)rows[r] * D;
            update_param(&o->cfg, D, p->value.data + at, p->grad.data + at, s0 ? s0 + at : NULL, s1 ? s1 + at : NULL,
                         bc1, bc2);
        }
    }
    return UR_OK;
}

void ur_optim_zero_grad(ur_optim *o) {
    if (o) ur_paramset_zero_grad(o->ps);
}

void ur_optim_set_lr(ur_optim *o, double lr) {
    if (o && lr >= 0 && isfinite(lr)) o->cfg.lr = lr;
}

double ur_optim_get_lr(const ur_optim *o) { return o ? o->cfg.lr : NAN; }

const ur_optim_config *ur_optim_config_of(const ur_optim *o) { return o ? &o->cfg : NULL; }

uint64_t ur_optim_step_count(const ur_optim *o) { return o ? o->steps : 0; }

void ur_optim_set_step_count(ur_optim *o, uint64_t n) {
    if (o) o->steps = n;
}

/* ---- clipping ---- */

/* Sum of squares of all gradients in double; the first parameter with a non-finite
 * gradient in *bad (NULL when all are finite). */
static double grad_sumsq(const ur_paramset *ps, const ur_param **bad) {
    double ss = 0.0;
    *bad = NULL;
    int np = ur_paramset_count(ps);
    for (int i = 0; i < np; i++) {
        const ur_param *p = ur_paramset_get(ps, i);
        double ssp = 0.0;
        for (size_t k = 0; k < p->grad.size; k++) {
            double g = (double)p->grad.data[k];
            ssp += g * g;
        }
        if (!isfinite(ssp) && !*bad) {
            /* distinguish a huge finite gradient (overflowing its square) from NaN/Inf */
            for (size_t k = 0; k < p->grad.size; k++)
                if (!isfinite(p->grad.data[k])) *bad = p;
        }
        ss += ssp;
    }
    return ss;
}

double ur_grad_norm(const ur_paramset *ps) {
    if (!ps) return NAN;
    const ur_param *bad;
    return sqrt(grad_sumsq(ps, &bad));
}

ur_status ur_clip_grad_norm(ur_paramset *ps, double max_norm, double *norm_before) {
    if (!ps) return ur_set_error(UR_ERR_ARG, "ur_clip_grad_norm: paramset is NULL");
    if (!(max_norm > 0) || !isfinite(max_norm))
        return ur_set_error(UR_ERR_ARG, "ur_clip_grad_norm: max_norm %g (must be finite and > 0)", max_norm);
    const ur_param *bad;
    double norm = sqrt(grad_sumsq(ps, &bad));
    if (norm_before) *norm_before = norm;
    if (bad)
        return ur_set_error(UR_ERR_NUMERIC, "ur_clip_grad_norm: gradient of '%s' holds NaN or Inf",
                            bad->name);
    if (norm <= max_norm) return UR_OK;
    double scale = max_norm / norm; /* norm may be +Inf from overflow: scale 0 is the limit */
    int np = ur_paramset_count(ps);
    for (int i = 0; i < np; i++) {
        ur_param *p = ur_paramset_get(ps, i);
        for (size_t k = 0; k < p->grad.size; k++)
            p->grad.data[k] = (ur_real)((double)p->grad.data[k] * scale);
    }
    return UR_OK;
}

ur_status ur_clip_grad_value(ur_paramset *ps, double clip) {
    if (!ps) return ur_set_error(UR_ERR_ARG, "ur_clip_grad_value: paramset is NULL");
    if (!(clip >= 0)) return ur_set_error(UR_ERR_ARG, "ur_clip_grad_value: clip %g (must be >= 0)", clip);
    int np = ur_paramset_count(ps);
    for (int i = 0; i < np; i++) {
        ur_param *p = ur_paramset_get(ps, i);
        for (size_t k = 0; k < p->grad.size; k++) {
            double g = (double)p->grad.data[k];
            if (g > clip) p->grad.data[k] = (ur_real)clip;
            else if (g < -clip) p->grad.data[k] = (ur_real)-clip;
        }
    }
    return UR_OK;
}

/* ---- schedules ---- */

static ur_lr_schedule schedule_base(ur_lr_kind kind, double lr) {
    ur_lr_schedule s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.base_lr = lr;
    s.gamma = 1.0;
    return s;
}

ur_lr_schedule ur_lr_constant(double lr) { return schedule_base(UR_LR_CONSTANT, lr); }

ur_lr_schedule ur_lr_step(double lr, long step_size, double gamma) {
    ur_lr_schedule s = schedule_base(UR_LR_STEP, lr);
    s.step_size = step_size;
    s.gamma = gamma;
    return s;
}

ur_lr_schedule ur_lr_exponential(double lr, double gamma) {
    ur_lr_schedule s = schedule_base(UR_LR_EXPONENTIAL, lr);
    s.gamma = gamma;
    return s;
}

ur_lr_schedule ur_lr_cosine(double lr, double min_lr, long decay_steps) {
    ur_lr_schedule s = schedule_base(UR_LR_COSINE, lr);
    s.min_lr = min_lr;
    s.decay_steps = decay_steps;
    return s;
}

double ur_lr_at(const ur_lr_schedule *s, long step) {
    if (!s) return NAN;
    if (step < 0) step = 0;
    if (s->warmup_steps > 0 && step < s->warmup_steps)
        return s->base_lr * (double)(step + 1) / (double)s->warmup_steps;
    long u = step - (s->warmup_steps > 0 ? s->warmup_steps : 0);
    switch (s->kind) {
    case UR_LR_CONSTANT: return s->base_lr;
    case UR_LR_STEP:
        if (s->step_size <= 0) return s->base_lr;
        return s->base_lr * pow(s->gamma, (double)(u / s->step_size));
    case UR_LR_EXPONENTIAL: return s->base_lr * pow(s->gamma, (double)u);
    case UR_LR_COSINE: {
        if (s->decay_steps <= 0) return s->base_lr;
        double frac = u >= s->decay_steps ? 1.0 : (double)u / (double)s->decay_steps;
        return s->min_lr + (s->base_lr - s->min_lr) * 0.5 * (1.0 + cos(3.14159265358979323846 * frac));
    }
    }
    return s->base_lr;
}
