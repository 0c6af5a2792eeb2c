/* ur_optim.h - optimizers, gradient clipping and learning-rate schedules.
 *
 * An optimizer updates every parameter of a ur_paramset from its gradient. Its
 * per-parameter state (momentum, running averages) is allocated on the first step,
 * so a training loop makes no allocation in ur_optim_step after that.
 *
 * Update rules, with g the gradient and w the value of one element, t the step
 * count after incrementing (1 on the first step):
 *   weight decay (L2):    g += wd * w                 (before the rule below)
 *   decoupled (AdamW):    w -= lr * wd * w            (instead of the L2 term)
 *   SGD:                  w -= lr * g
 *   SGD + momentum mu:    b = mu*b + g;  w -= lr * b          (Nesterov: lr * (g + mu*b))
 *   Adagrad:              s += g^2;      w -= lr * g / (sqrt(s) + eps)
 *   RMSprop:              s = a*s + (1-a)*g^2;   w -= lr * g / (sqrt(s) + eps)
 *   Adam:                 m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;
 *                         w -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * Arithmetic is done in double and stored in ur_real.
 *
 * A step first checks every gradient: a NaN or Inf gives UR_ERR_NUMERIC naming the
 * parameter, and no value, state or step count changes.
 *
 * Row-sparse parameters (ur_param_set_sparse_rows, embedding tables): when only
 * ur_gather wrote the gradient, a step visits only the rows it wrote if that gives
 * exactly the dense result: plain SGD and Adagrad without weight decay (a row with a
 * zero gradient does not change there). Adam with `lazy` set updates only those
 * rows and their moments, the others keep theirs (PyTorch's SparseAdam): not the
 * dense Adam, whose moments decay every step. Every other case is dense.
 */
#ifndef UR_OPTIM_H
#define UR_OPTIM_H

#include "../autograd/ur_tape.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ur_optim_kind {
    UR_OPTIM_SGD = 0,
    UR_OPTIM_ADAGRAD,
    UR_OPTIM_RMSPROP,
    UR_OPTIM_ADAM
} ur_optim_kind;

/* Hyperparameters; start from ur_optim_defaults and change fields. */
typedef struct ur_optim_config {
    ur_optim_kind kind;
    double lr;           /* learning rate (>= 0) */
    double momentum;     /* SGD: 0 = plain SGD */
    int nesterov;        /* SGD: Nesterov momentum (needs momentum > 0) */
    double alpha;        /* RMSprop: decay of the squared-gradient average (0.99) */
    double beta1, beta2; /* Adam: decays of the moment estimates (0.9, 0.999) */
    double eps;          /* Adagrad 1e-10, RMSprop and Adam 1e-8 */
    double weight_decay; /* 0 = none */
    int decoupled;       /* 1: decoupled weight decay (AdamW style) instead of L2 */
    int lazy;            /* Adam: update only the listed rows of row-sparse parameters */
} ur_optim_config;

typedef struct ur_optim ur_optim;

/* The usual defaults of the given kind with learning rate lr. */
ur_optim_config ur_optim_defaults(ur_optim_kind kind, double lr);
/* "sgd", "adagrad", "rmsprop", "adam" ("?" when out of range). */
const char *ur_optim_kind_name(ur_optim_kind kind);

/* An optimizer over ps (not owned; it must outlive the optimizer). NULL on a bad
 * hyperparameter or out of memory (ur_last_error). */
ur_optim *ur_optim_new(ur_paramset *ps, const ur_optim_config *cfg);
void ur_optim_free(ur_optim *o); /* NULL is a no-op */

/* One update of every parameter from its gradient (see the rules above). */
ur_status ur_optim_step(ur_optim *o);
/* Sets every parameter gradient to zero. */
void ur_optim_zero_grad(ur_optim *o);

void ur_optim_set_lr(ur_optim *o, double lr); /* ignored for lr < 0 */
double ur_optim_get_lr(const ur_optim *o);    /* NaN for NULL */
const ur_optim_config *ur_optim_config_of(const ur_optim *o);
uint64_t ur_optim_step_count(const ur_optim *o);       /* completed steps */
void ur_optim_set_step_count(ur_optim *o, uint64_t n); /* when restoring a checkpoint */

/* ---- state, for checkpoints ----
 * State tensors are named "optim.<kind>.<buffer>.<param name>", e.g.
 * "optim.adam.m.w", "optim.adam.v.w", "optim.sgd.momentum.w", "optim.adagrad.sum.w",
 * "optim.rmsprop.sq.w". Each has its parameter's shape. */

/* Allocates the state now (ur_optim_step does it on its first call); for restoring
 * state before the first step. UR_ERR_STATE if the paramset changed since. */
ur_status ur_optim_init_state(ur_optim *o);
/* Number of state tensors (0 until the state exists; 0 for plain SGD). */
int ur_optim_state_count(const ur_optim *o);
/* The i-th state tensor, and its name in *name if name is not NULL; NULL if out of range. */
ur_tensor *ur_optim_state_at(const ur_optim *o, int i, const char **name);

/* ---- gradient clipping ---- */
/* Global L2 norm of all gradients, accumulated in double (NaN for NULL). */
double ur_grad_norm(const ur_paramset *ps);
/* If the global norm exceeds max_norm, scales every gradient by max_norm / norm.
 * The norm before clipping goes to *norm_before (if not NULL). UR_ERR_NUMERIC, with
 * gradients unchanged, when a gradient holds NaN or Inf. */
ur_status ur_clip_grad_norm(ur_paramset *ps, double max_norm, double *norm_before);
/* Clamps every gradient element into [-clip, clip]. */
ur_status ur_clip_grad_value(ur_paramset *ps, double clip);

/* ---- learning-rate schedules ----
 * For step s (0-based): during the first warmup_steps steps the rate rises linearly,
 * lr = base_lr * (s + 1) / warmup_steps. After that, with u = s - warmup_steps:
 *   CONSTANT:     base_lr
 *   STEP:         base_lr * gamma^floor(u / step_size)
 *   EXPONENTIAL:  base_lr * gamma^u
 *   COSINE:       min_lr + (base_lr - min_lr) * (1 + cos(pi * min(u, decay_steps) / decay_steps)) / 2
 * A pure linear warmup is CONSTANT with warmup_steps > 0. */
typedef enum ur_lr_kind { UR_LR_CONSTANT = 0, UR_LR_STEP, UR_LR_EXPONENTIAL, UR_LR_COSINE } ur_lr_kind;

typedef struct ur_lr_schedule {
    ur_lr_kind kind;
    double base_lr;
    long warmup_steps; /* 0 = no warmup */
    long step_size;    /* STEP */
    double gamma;      /* STEP, EXPONENTIAL */
    long decay_steps;  /* COSINE */
    double min_lr;     /* COSINE */
} ur_lr_schedule;

ur_lr_schedule ur_lr_constant(double lr);
ur_lr_schedule ur_lr_step(double lr, long step_size, double gamma);
ur_lr_schedule ur_lr_exponential(double lr, double gamma);
ur_lr_schedule ur_lr_cosine(double lr, double min_lr, long decay_steps);
/* The learning rate at step (0-based); base_lr for invalid fields, NaN for NULL. */
double ur_lr_at(const ur_lr_schedule *s, long step);

#ifdef __cplusplus
}
#endif
#endif
