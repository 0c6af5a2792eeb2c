/* epochs.h - training by epochs over bucketed mini-batches, with word dropout and a
 * vocabulary kept in the checkpoint: what the sentence-level examples (tagger,
 * classify) share. Not part of the library (examples only).
 *
 * One step: take the next batch of the epoch's order (ur_bucket_batches, drawn again
 * at the start of every epoch), let the program record its loss on the tape, walk
 * backward, clip the gradient norm, set the learning rate (cosine from lr to lr/10
 * over the whole run) and update. A progress line every log_every steps, the
 * development score after every epoch. */
#ifndef UR_EXAMPLES_EPOCHS_H
#define UR_EXAMPLES_EPOCHS_H

#include "cli.h"
#include "unroll.h"
#include "ur_checkpoint.h"
#include "ur_optim.h"

/* What the program does in a step. */
typedef struct cli_task {
    void *ctx;
    /* Records the loss of the training examples pick[0..B) on t (training mode;
     * `seed` for its dropout masks) and returns it; *h: the recurrent outputs
     * (T, B, H) for --grad-report; adds the batch's real tokens to *tokens. NULL
     * after an error: a tape error is reported by the caller, anything else by the
     * program. Host memory the tape reads must stay valid until the next call. */
    ur_node *(*loss)(void *ctx, ur_tape *t, const int *pick, int B, uint64_t seed, ur_node **h, long *tokens);
    /* Accuracy and mean loss on the development set (NAN after an error); returns
     * the number of items scored. */
    long (*dev)(void *ctx, double *acc, double *loss);
} cli_task;

typedef struct cli_epochs {
    /* the run */
    const char *prog; /* prefix of messages */
    const cli_common *c;
    const int *lens; /* n training examples: their lengths, for bucketing */
    int n, batch, epochs, has_dev;
    long log_every;
    double lr, clip;
    ur_tape *tape;
    ur_paramset *ps;
    ur_optim *opt;
    ur_rng *rng; /* draws each epoch's batch order */
    int per_example; /* the loss is a mean over examples, not tokens (how ranks weigh their shares) */
    /* filled by cli_epochs_run */
    long per_epoch, first, last; /* batches per epoch; this run trained steps first..last-1 */
    double *losses;              /* last - first training losses */
    long tokens;
    double seconds, dev_acc, dev_loss, best_dev;
    ur_rng epoch_rng; /* the RNG at the start of the epoch the run stopped in */
} cli_epochs;

/* Under mpirun each rank trains its share of every batch (dist_cli.h); rank 0 logs,
 * scores the development set and saves.
 * Trains from the optimizer's step count (a loaded checkpoint continues its run) to
 * epochs * per_epoch steps, or to --steps. 1, or 0 after printing an error. */
int cli_epochs_run(cli_epochs *e, const cli_task *task);
/* The development score after training, printed as "dev (FILE): N <unit>, ..." */
void cli_epochs_final_dev(cli_epochs *e, const cli_task *task, const char *file, const char *unit);
/* The RNG to save: a run stopped in mid-epoch redraws that epoch's order on --load. */
const ur_rng *cli_epochs_rng_to_save(const cli_epochs *e);
/* The run's figures into the JSON object: step, first_step, first_loss, last_loss
 * (mean of the last 10), dev_accuracy, dev_loss, best_dev_accuracy, seconds,
 * tokens_per_s, params, losses. */
void cli_epochs_json(cli_json *j, const cli_epochs *e);
void cli_epochs_free(cli_epochs *e);

/* Word dropout: each real (mask 1) word of p, seen n times in the training data
 * (its count in v), becomes <unk> with probability a / (a + n); out gets T*B ids. */
void cli_drop_words(const ur_padded *p, const ur_vocab *v, double a, uint64_t seed, int *out);

/* A checkpoint of a model with a vocabulary (<pad>, <unk>, then the words): the
 * parameters, the optimizer, the stored flags, the RNG and the vocabulary, with
 * "example" = prog. 1, or 0 after printing an error. */
int cli_save_with_vocab(const char *path, const char *prog, const ur_paramset *ps, const ur_optim *opt,
                        const ur_vocab *v, const ur_rng *rng, const cli_opt *opts, int n_opts,
                        const char *const *stored);
/* Reads back the parameters, the optimizer state (opt may be NULL) and the RNG. */
int cli_load_with_vocab(ur_ckpt *ck, const char *path, const char *prog, ur_paramset *ps, ur_optim *opt,
                        ur_rng *rng);
/* The vocabulary stored by cli_save_with_vocab; NULL after printing an error. */
ur_vocab *cli_load_vocab(const ur_ckpt *ck, const char *path, const char *prog);

#endif
