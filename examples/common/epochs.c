/* epochs.c - batches by epoch, word dropout, vocabulary checkpoints and the run's JSON figures. */
#include "epochs.h"
#include "dist_cli.h"

#include <math.h>
#include <stdlib.h>

#include "checkpoint_hooks_internal.h"
#include "ur_data.h"

void cli_batcher_init(cli_batcher *b, const int *lens, int n, int batch, ur_rng *rng) {
    *b = (cli_batcher){lens, n, batch, (n + batch - 1) / batch, rng, *rng, NULL};
}

int cli_batcher_next(cli_batcher *b, long step, const int **pick, const char *prog) {
    if (!b->order || step % b->per_epoch == 0) {
        ur_batches_free(b->order);
        b->order = NULL;
        b->epoch_rng = *b->rng;
        if (ur_bucket_batches(b->lens, b->n, b->batch, b->rng, &b->order) != UR_OK) {
            fprintf(stderr, "%s: %s\n", prog, ur_last_error());
            return -1;
        }
    }
    long k = step % b->per_epoch;
    *pick = b->order->index + b->order->offset[k];
    return b->order->offset[k + 1] - b->order->offset[k];
}

const ur_rng *cli_batcher_rng_to_save(const cli_batcher *b, long last) {
    return last % b->per_epoch ? &b->epoch_rng : b->rng;
}

void cli_batcher_free(cli_batcher *b) {
    ur_batches_free(b->order);
    b->order = NULL;
}

int cli_run_start(cli_run *r, long first, long steps, long total) {
    *r = (cli_run){.first = first, .dev_acc = NAN, .dev_loss = NAN};
    r->last = steps > 0 && steps < total ? steps : total;
    r->losses = calloc((size_t)(r->last > r->first ? r->last - r->first : 1), sizeof *r->losses);
    return r->losses != NULL;
}

void cli_run_json(cli_json *j, const cli_run *r, const ur_optim *opt, const ur_paramset *ps) {
    long done = r->last > r->first ? r->last - r->first : 0, n_tail = done < 10 ? done : 10;
    double tail = 0;
    for (long i = done - n_tail; i < done; i++) tail += r->losses[i];
    cli_json_int(j, "step", (long)ur_optim_step_count(opt));
    cli_json_int(j, "first_step", r->first + 1);
    cli_json_num(j, "first_loss", done ? r->losses[0] : NAN);
    cli_json_num(j, "last_loss", n_tail ? tail / (double)n_tail : NAN);
    cli_json_num(j, "dev_accuracy", r->dev_acc);
    cli_json_num(j, "dev_loss", r->dev_loss);
    cli_json_num(j, "best_dev_accuracy", r->best_dev);
    cli_json_num(j, "seconds", r->seconds);
    cli_json_num(j, "tokens_per_s", r->seconds > 0 ? (double)r->tokens / r->seconds : 0);
    cli_json_int(j, "params", (long)ur_paramset_numel(ps));
    cli_json_array(j, "losses", r->losses, (int)done);
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
    enum { MAX_STORED = 48 };
    int n_stored = 0;
    while (stored[n_stored]) n_stored++;
    if (n_stored > MAX_STORED) {
        fprintf(stderr, "%s: %d stored settings, at most %d\n", prog, n_stored, MAX_STORED);
        return 0;
    }
    char store[MAX_STORED][CLI_META_LEN], rng_hex[UR_CKPT_RNG_HEX];
    ur_ckpt_kv meta[MAX_STORED + 8];
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

ur_vocab *cli_load_vocab(const ur_ckpt *ck, const char *path, const char *prog) {
    const char *text = ur_ckpt_meta(ck, "vocab");
    ur_vocab *v = text ? cli_vocab_from_text(text, UR_VOCAB_PAD | UR_VOCAB_UNK) : NULL;
    if (!v) fprintf(stderr, "%s: --load %s: no usable 'vocab' in the metadata\n", prog, path);
    return v;
}

int cli_update(const cli_updater *u, long step, int mine, int show, ur_node *loss, ur_node *h, double weight,
               double *mean, double *count) {
    ur_optim_zero_grad(u->opt);
    if (mine && (!loss || ur_tape_error(u->tape) || ur_backward(u->tape, loss) != UR_OK)) {
        if (loss || ur_tape_error(u->tape))
            fprintf(stderr, "%s: %s\n", u->prog, ur_tape_error(u->tape) ? ur_tape_errmsg(u->tape) : ur_last_error());
        return 0;
    }
    if (show && mine) cli_show_step(u->c, u->tape, u->ps, h); /* --print-tape, --dot, --grad-report */
    *mean = mine ? ur_node_item(loss) : 0;
    if (dist_cli_reduce(u->prog, u->ps, weight, mean, count) != 0) return 0;
    ur_optim_set_lr(u->opt, ur_lr_at(u->sched, step));
    if (rnn_flags_clip(u->rf, u->ps) != UR_OK || (u->clip > 0 && ur_clip_grad_norm(u->ps, u->clip, NULL) != UR_OK) ||
        ur_optim_step(u->opt) != UR_OK) {
        fprintf(stderr, "%s: step %ld: %s\n", u->prog, step + 1, ur_last_error());
        return 0;
    }
    return 1;
}
