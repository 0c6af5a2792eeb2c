/* epochs.c - the epoch loop, word dropout and vocabulary checkpoints of epochs.h. */
#include "epochs.h"

#include <math.h>
#include <stdlib.h>

#include "dist_cli.h"
#include "ur_data.h"

/* The next batch of the epoch that step is in: a new order at each epoch's start
 * (and at the first step of a resumed run, from the RNG saved at that epoch's
 * start). *order is NULL after an error. */
static int next_batch(cli_epochs *e, long step, ur_batches **order, const int **pick) {
    if (!*order || step % e->per_epoch == 0) {
        ur_batches_free(*order);
        *order = NULL;
        e->epoch_rng = *e->rng;
        if (ur_bucket_batches(e->lens, e->n, e->batch, e->rng, order) != UR_OK) {
            fprintf(stderr, "%s: %s\n", e->prog, ur_last_error());
            return 0;
        }
    }
    long k = step % e->per_epoch;
    *pick = (*order)->index + (*order)->offset[k];
    return (*order)->offset[k + 1] - (*order)->offset[k];
}

/* backward, the first step's reports, the mean over the ranks (weight: what this
 * rank's loss averaged over, 0 when it had no examples; *lv its loss, then the
 * batch's), clipping, the learning rate, the update */
static int learn(cli_epochs *e, long step, ur_node *loss, ur_node *h, const ur_lr_schedule *sched, double weight,
                 double *lv, double *tokens) {
    ur_optim_zero_grad(e->opt);
    if (weight > 0 && (!loss || ur_tape_error(e->tape) || ur_backward(e->tape, loss) != UR_OK)) {
        if (loss || ur_tape_error(e->tape))
            fprintf(stderr, "%s: %s\n", e->prog, ur_tape_error(e->tape) ? ur_tape_errmsg(e->tape) : ur_last_error());
        return 0;
    }
    if (step == e->first && weight > 0)
        cli_show_step(e->c, e->tape, e->ps, h); /* --print-tape, --dot, --grad-report */
    *lv = weight > 0 ? ur_node_item(loss) : 0;
    if (dist_cli_reduce(e->prog, e->ps, weight, lv, tokens) != 0) return 0;
    ur_optim_set_lr(e->opt, ur_lr_at(sched, step));
    if ((e->clip > 0 && ur_clip_grad_norm(e->ps, e->clip, NULL) != UR_OK) || ur_optim_step(e->opt) != UR_OK) {
        fprintf(stderr, "%s: step %ld: %s\n", e->prog, step + 1, ur_last_error());
        return 0;
    }
    return 1;
}

int cli_epochs_run(cli_epochs *e, const cli_task *task) {
    e->per_epoch = (e->n + e->batch - 1) / e->batch;
    long total = e->per_epoch * e->epochs;
    e->first = (long)ur_optim_step_count(e->opt);
    e->last = e->c->steps > 0 && e->c->steps < total ? e->c->steps : total;
    e->losses = calloc((size_t)(e->last > e->first ? e->last - e->first : 1), sizeof *e->losses);
    e->epoch_rng = *e->rng;
    e->tokens = 0;
    e->dev_acc = e->dev_loss = NAN;
    e->best_dev = 0;
    if (!e->losses) {
        fprintf(stderr, "%s: out of memory\n", e->prog);
        return 0;
    }
    ur_lr_schedule sched = ur_lr_cosine(e->lr, e->lr / 10, total);
    ur_batches *order = NULL;
    double started = cli_now(), window = 0;
    long n_window = 0;
    int ok = 1;
    cli_progress_start(e->first);
    for (long step = e->first; ok && step < e->last; step++) {
        const int *pick = NULL;
        int B = next_batch(e, step, &order, &pick);
        if (!order) {
            ok = 0;
            break;
        }
        uint64_t seed = (uint64_t)e->c->seed * 1000003u + (uint64_t)step;
        ur_tape_reset(e->tape);
        int lo, Bn = dist_cli_share(B, &lo); /* this rank's examples pick[lo .. lo + Bn) */
        long before = e->tokens;
        ur_node *h = NULL, *loss = Bn ? task->loss(task->ctx, e->tape, pick + lo, Bn, seed, &h, &e->tokens) : NULL;
        double l, tokens = (double)(e->tokens - before);
        if (!(ok = learn(e, step, loss, h, &sched, e->per_example ? Bn : tokens, &l, &tokens))) break;
        e->tokens = before + (long)tokens;
        e->losses[step - e->first] = l;
        window += l;
        n_window++;
        if ((step + 1) % e->log_every == 0 || step + 1 == e->last) {
            cli_progress(step + 1, e->last, window / (double)n_window, (double)e->tokens / (cli_now() - started),
                         started);
            window = 0;
            n_window = 0;
        }
        /* the end of an epoch: rank 0 scores the development set */
        if ((step + 1) % e->per_epoch == 0 && e->has_dev && step + 1 < e->last && dist_cli_rank0()) {
            task->dev(task->ctx, &e->dev_acc, &e->dev_loss);
            if (e->dev_acc > e->best_dev) e->best_dev = e->dev_acc;
            cli_progress_end();
            printf("epoch %ld: dev accuracy %.2f%%, loss %.4f\n", (step + 1) / e->per_epoch, 100 * e->dev_acc,
                   e->dev_loss);
        }
    }
    cli_progress_end();
    ur_batches_free(order);
    e->seconds = cli_now() - started;
    return ok;
}

void cli_epochs_final_dev(cli_epochs *e, const cli_task *task, const char *file, const char *unit) {
    if (!dist_cli_rank0()) return;
    long n = task->dev(task->ctx, &e->dev_acc, &e->dev_loss);
    if (e->dev_acc > e->best_dev) e->best_dev = e->dev_acc;
    printf("dev (%s): %ld %s, accuracy %.2f%%, loss %.4f\n", file, n, unit, 100 * e->dev_acc, e->dev_loss);
}

const ur_rng *cli_epochs_rng_to_save(const cli_epochs *e) {
    return e->last % e->per_epoch ? &e->epoch_rng : e->rng;
}

void cli_epochs_json(cli_json *j, const cli_epochs *e) {
    long done = e->last > e->first ? e->last - e->first : 0, n_tail = done < 10 ? done : 10;
    double tail = 0;
    for (long i = done - n_tail; i < done; i++) tail += e->losses[i];
    cli_json_int(j, "step", (long)ur_optim_step_count(e->opt));
    cli_json_int(j, "first_step", e->first + 1);
    cli_json_num(j, "first_loss", done ? e->losses[0] : NAN);
    cli_json_num(j, "last_loss", n_tail ? tail / (double)n_tail : NAN);
    cli_json_num(j, "dev_accuracy", e->dev_acc);
    cli_json_num(j, "dev_loss", e->dev_loss);
    cli_json_num(j, "best_dev_accuracy", e->best_dev);
    cli_json_num(j, "seconds", e->seconds);
    cli_json_num(j, "tokens_per_s", e->seconds > 0 ? (double)e->tokens / e->seconds : 0);
    cli_json_int(j, "params", (long)ur_paramset_numel(e->ps));
    cli_json_array(j, "losses", e->losses, (int)done);
}

void cli_epochs_free(cli_epochs *e) {
    free(e->losses);
    e->losses = NULL;
}

void cli_drop_words(const ur_padded *p, const ur_vocab *v, double a, uint64_t seed, int *out) {
    int unk = ur_vocab_special_id(v, UR_VOCAB_UNK);
    for (int i = 0; i < p->T * p->B; i++) {
        out[i] = p->ids[i];
        double n = (double)ur_vocab_count(v, p->ids[i]);
        if (a > 0 && p->mask[i] && ur_hash_uniform(seed, (uint64_t)i) < a / (a + n)) out[i] = unk;
    }
}

int cli_save_with_vocab(const char *path, const char *prog, const ur_paramset *ps, const ur_optim *opt,
                        const ur_vocab *v, const ur_rng *rng, const cli_opt *opts, int n_opts,
                        const char *const *stored) {
    if (!dist_cli_rank0()) return 1; /* one writer */
    char store[24][CLI_META_LEN], rng_hex[UR_CKPT_RNG_HEX];
    ur_ckpt_kv meta[32];
    char *vocab = cli_vocab_to_text(v, 2); /* after <pad>, <unk> */
    int k = cli_meta_put(opts, n_opts, stored, store, meta);
    ur_ckpt_rng_encode(rng, rng_hex);
    meta[k++] = (ur_ckpt_kv){"example", prog};
    meta[k++] = (ur_ckpt_kv){"rng", rng_hex};
    meta[k++] = (ur_ckpt_kv){"vocab", vocab ? vocab : ""};
    meta[k] = (ur_ckpt_kv){NULL, NULL};
    ur_status s = vocab ? ur_ckpt_save_training(path, ps, opt, meta) : UR_ERR_NOMEM;
    if (s != UR_OK) fprintf(stderr, "%s: --save %s: %s\n", prog, path, vocab ? ur_last_error() : "out of memory");
    free(vocab);
    return s == UR_OK;
}

int cli_load_with_vocab(ur_ckpt *ck, const char *path, const char *prog, ur_paramset *ps, ur_optim *opt,
                        ur_rng *rng) {
    const char *rng_hex = ur_ckpt_meta(ck, "rng");
    ur_status s = ur_ckpt_read_params(ck, ps, 0);
    if (s == UR_OK && opt) s = ur_ckpt_read_optim(ck, opt);
    if (s == UR_OK && rng) s = rng_hex ? ur_ckpt_rng_decode(rng_hex, rng) : ur_set_error(UR_ERR_FORMAT, "no 'rng'");
    if (s != UR_OK) fprintf(stderr, "%s: --load %s: %s\n", prog, path, ur_last_error());
    return s == UR_OK;
}

ur_vocab *cli_load_vocab(const ur_ckpt *ck, const char *path, const char *prog) {
    const char *text = ur_ckpt_meta(ck, "vocab");
    ur_vocab *v = text ? cli_vocab_from_text(text, UR_VOCAB_PAD | UR_VOCAB_UNK) : NULL;
    if (!v) fprintf(stderr, "%s: --load %s: no usable 'vocab' in the metadata\n", prog, path);
    return v;
}
