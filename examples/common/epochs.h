/* epochs.h - what the sentence-level examples (tagger, classify) share: the batches
 * of an epoch, word dropout, a vocabulary kept in the checkpoint, and the JSON line
 * of a training run. The training loop itself is in each program's main(). Not part
 * of the library (examples only). */
#ifndef UR_EXAMPLES_EPOCHS_H
#define UR_EXAMPLES_EPOCHS_H

#include "cli.h"
#include "unroll.h"
#include "ur_checkpoint.h"
#include "ur_optim.h"
#include "rnn_flags.h"

/* The batches of a run over n examples: bucketed by length (ur_bucket_batches), in an
 * order drawn from rng at the start of every epoch. */
typedef struct cli_batcher {
    const int *lens; /* n example lengths */
    int n, batch;
    long per_epoch;   /* batches per epoch */
    ur_rng *rng;      /* draws each epoch's order */
    ur_rng epoch_rng; /* rng as it was at the start of the current epoch */
    ur_batches *order;
} cli_batcher;

void cli_batcher_init(cli_batcher *b, const int *lens, int n, int batch, ur_rng *rng);
/* The batch of training step `step` (counted from the start of training): its size,
 * with *pick at its example indices; a new order at each epoch's start (and at the
 * first step of a resumed run). -1 after printing an error prefixed with prog. */
int cli_batcher_next(cli_batcher *b, long step, const int **pick, const char *prog);
/* The RNG to save after `last` steps: a run stopped in mid-epoch saves the RNG of
 * that epoch's start, so --load draws the same order again. */
const ur_rng *cli_batcher_rng_to_save(const cli_batcher *b, long last);
void cli_batcher_free(cli_batcher *b);

/* What a training run did. */
typedef struct cli_run {
    long first, last; /* this run trained steps first .. last-1 */
    long tokens;      /* real tokens seen */
    double *losses;   /* last - first training losses */
    double seconds, dev_acc, dev_loss, best_dev;
} cli_run;

/* A run of the steps first .. last-1: first is where the optimizer stands (a resumed
 * run goes on from there), last = steps if 0 < steps < total, else total; room for
 * every step's loss, the dev figures NaN. 1, or 0 when out of memory. */
int cli_run_start(cli_run *r, long first, long steps, long total);

/* The run's figures into the JSON object: step, first_step, first_loss, last_loss
 * (mean of the last 10), dev_accuracy, dev_loss, best_dev_accuracy, seconds,
 * tokens_per_s, params, losses. */
void cli_run_json(cli_json *j, const cli_run *r, const ur_optim *opt, const ur_paramset *ps);

/* Word dropout: each real (mask 1) word of p, seen n times in the training data
 * (its count in v), becomes <unk> with probability a / (a + n); out gets T*B ids. */
void cli_drop_words(const ur_padded *p, const ur_vocab *v, double a, uint64_t seed, int *out);

/* What one training update needs, set once before the loop. */
typedef struct cli_updater {
    const char *prog; /* prefix of messages */
    const cli_common *c;
    ur_tape *tape;
    ur_paramset *ps;
    ur_optim *opt;
    const ur_lr_schedule *sched;
    const rnn_flags *rf; /* --clip-value */
    double clip;         /* --clip: the global norm, 0 off */
} cli_updater;

/* One update from this rank's share of a batch (mine: 0 when it has none): backward
 * of loss, the first step's reports (show: --print-tape, --dot, --grad-report), the
 * mean gradient and loss over the ranks (weight: what this rank's loss averaged
 * over), the learning rate of the schedule at step, elementwise then norm clipping,
 * the optimizer step. *mean gets the whole batch's loss; *count holds this rank's
 * count (tokens) on entry and the ranks' sum on return. 1, or 0 after an error. */
int cli_update(const cli_updater *u, long step, int mine, int show, ur_node *loss, ur_node *h, double weight,
               double *mean, double *count);

/* A checkpoint of a model with a vocabulary (<pad>, <unk>, then the words): the
 * parameters, the optimizer, the stored flags, the RNG and the vocabulary, with
 * "example" = prog. 1, or 0 after printing an error. */
int cli_save_with_vocab(const char *path, const char *prog, const ur_paramset *ps, const ur_optim *opt,
                        const ur_vocab *v, const ur_rng *rng, const cli_opt *opts, int n_opts,
                        const char *const *stored);
/* The vocabulary stored by cli_save_with_vocab; NULL after printing an error. */
ur_vocab *cli_load_vocab(const ur_ckpt *ck, const char *path, const char *prog);

#endif
