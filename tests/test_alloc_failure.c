/* test_alloc_failure.c - allocation N fails, alone and with every later one, for
 * every N of a whole training step and of the readers: always UR_ERR_NOMEM with an
 * "out of memory" message, never a crash or a leak (docs/reliability.md). */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <string.h>
#include <unistd.h>

#include "support.h"
#include "ur_checkpoint.h"
#include "ur_data.h"
#include "ur_init.h"
#include "ur_kernels.h"
#include "ur_ops.h"
#include "ur_optim.h"
#include "ur_tape.h"

/* Runs scenario with the Nth allocation failing, for N = 1, 2, ... until it
 * succeeds with no failure injected; with and_later, allocation N and every later
 * one fail (the memory stays exhausted). Every failed run must report
 * UR_ERR_NOMEM with an "out of memory" message and free everything it allocated.
 * Returns the number of allocations of a full run. */
static long sweep_allocation_failures(ur_status (*scenario)(void), const char *name, int and_later) {
    ur_kernel_free_buffers(); /* allocated before the hook: not counted */
    ur_set_num_threads(1);    /* the same allocation order every run */
    long total = -1;
    for (long n = 1; total < 0 || n <= total + 1; n++) {
        ur_test_fail_alloc_begin(n, and_later);
        ur_status st = scenario();
        ur_kernel_free_buffers();
        ur_test_alloc_count c = ur_test_fail_alloc_end();
        cr_assert_eq(c.live, 0, "%s, allocation %ld failing: %ld blocks leaked", name, n, c.live);
        if (c.attempts < n) { /* nothing failed: a full run */
            cr_assert_eq(st, UR_OK, "%s without a failure: %s", name, ur_last_error());
            if (total < 0) total = c.attempts;
            break;
        }
        /* the kernels fall back to unbuffered code when a packing buffer is missing */
        cr_assert(st == UR_OK || st == UR_ERR_NOMEM, "%s, allocation %ld failing: %s: %s", name, n,
                  ur_status_name(st), ur_last_error());
        if (st == UR_ERR_NOMEM)
            cr_assert(strstr(ur_last_error(), "out of memory") != NULL, "%s, allocation %ld: %s", name, n,
                      ur_last_error());
    }
    ur_set_num_threads(0);
    cr_assert_gt(total, 10, "%s: the sweep saw the allocations", name);
    return total;
}

/* The first error of a scenario is kept; later steps are skipped. */
#define STEP(call)                              \
    do {                                        \
        if (st == UR_OK) {                      \
            ur_status s_ = (call);              \
            if (s_ != UR_OK) st = s_;           \
        }                                       \
    } while (0)

static char sweep_path[512];

/* A whole training step from nothing: model, optimizer, forward, backward,
 * update, a training checkpoint saved and loaded back, and teardown. */
static ur_status training_step_scenario(void) {
    ur_status st = UR_OK;
    ur_paramset *ps = ur_paramset_new();
    ur_tape *t = ur_tape_new();
    ur_optim *opt = NULL;
    ur_param *E = NULL, *W = NULL, *b = NULL, *Wh = NULL;
    if (!ps || !t) st = UR_ERR_NOMEM;
    int ed[2] = {10, 8}, wd[2] = {8, 16}, bd[1] = {16}, hd[2] = {4, 16};
    if (st == UR_OK && (!(E = ur_paramset_add(ps, "E", 2, ed)) || !(W = ur_paramset_add(ps, "W", 2, wd)) ||
                        !(b = ur_paramset_add(ps, "b", 1, bd)) || !(Wh = ur_paramset_add(ps, "Wh", 2, hd))))
        st = UR_ERR_NOMEM;
    ur_rng r;
    ur_rng_seed(&r, 5);
    for (int i = 0; st == UR_OK && i < ur_paramset_count(ps); i++)
        STEP(ur_init_uniform(&ur_paramset_get(ps, i)->value, &r, 0.3));
    if (st == UR_OK) {
        ur_optim_config cfg = ur_optim_defaults(UR_OPTIM_ADAM, 0.01);
        if (!(opt = ur_optim_new(ps, &cfg))) st = UR_ERR_NOMEM;
    }
    for (int step = 0; step < 2 && st == UR_OK; step++) {
        ur_tape_reset(t);
        ur_optim_zero_grad(opt);
        int ids[4] = {1, 2, 3, step}, targets[4] = {0, 1, 2, 3}, h0d[2] = {4, 4};
        ur_node *h = ur_zeros(t, 2, h0d);
        for (int s = 0; s < 3; s++) { /* a tiny recurrence with a tied weight */
            ur_node *x = ur_gather(t, ur_param_node(t, E), ids, 4);
            ur_node *g = ur_add(t, ur_linear(t, x, ur_param_node(t, W), ur_param_node(t, b)),
                                ur_matmul(t, h, ur_param_node(t, Wh), 0, 0));
            h = ur_tanh(t, ur_slice(t, g, 1, 0, 4));
        }
        ur_node *loss = ur_cross_entropy(t, h, targets, NULL);
        STEP(ur_backward(t, loss));
        STEP(ur_optim_step(opt));
    }
    STEP(ur_ckpt_save_training(sweep_path, ps, opt, NULL));
    STEP(ur_ckpt_load_params(sweep_path, ps, 0));
    if (st == UR_OK) {
        ur_ckpt *ck = ur_ckpt_open(sweep_path);
        if (!ck) st = UR_ERR_NOMEM;
        STEP(ur_ckpt_read_optim(ck, opt));
        ur_ckpt_close(ck);
    }
    ur_optim_free(opt);
    ur_tape_free(t);
    ur_paramset_free(ps);
    return st;
}

Test(alloc_failure, allocation_failure_in_a_training_step, .timeout = 120) {
    ur_test_tmp_path("sweep.safetensors", sweep_path, sizeof sweep_path);
    long total = sweep_allocation_failures(training_step_scenario, "training step", 0);
    sweep_allocation_failures(training_step_scenario, "training step, memory exhausted", 1);
    cr_log_info("training step: failed each of %ld allocations in turn", total);
    unlink(sweep_path);
}

static const char conllu_text[] = "# c\n1\tThe\tthe\tDET\t_\t_\t2\tdet\t_\t_\n"
                                  "2\tdog\tdog\tNOUN\t_\t_\t0\troot\t_\t_\n\n"
                                  "1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n1\tdo\tdo\tAUX\t_\t_\t0\troot\t_\t_\n"
                                  "2\tn't\tnot\tPART\t_\t_\t1\tadvmod\t_\t_\n";
static const char tree_text[] = "(3 (2 It) (4 (2 's) (3 lovely)))\n(1 (1 Bad) (2 film))\n(2 word)\n";
static const char pairs_text[] = "Go.\tVa !\nI don't know.\tJe ne sais pas.\textra\n"
                                 "Well-known!\tBien connu !\n";

/* Every reader on a small input, and the vocabulary and batching built on them. */
static ur_status readers_scenario(void) {
    ur_status st = UR_OK;
    ur_conllu *cu = NULL;
    ur_treebank *tb = NULL;
    ur_pairs *pr = NULL;
    ur_tokens *tk = NULL;
    ur_vocab *counts = NULL, *v = NULL;
    ur_batches *bs = NULL;
    ur_padded *pad = NULL;
    ur_char_corpus *cc = NULL;
    STEP(ur_conllu_parse(conllu_text, sizeof conllu_text - 1, "c", &cu));
    STEP(ur_treebank_parse(tree_text, sizeof tree_text - 1, "t", 4, 0, &tb));
    STEP(ur_pairs_parse(pairs_text, sizeof pairs_text - 1, "p", &pr));
    if (st == UR_OK && !(counts = ur_vocab_new(UR_VOCAB_PAD | UR_VOCAB_UNK))) st = UR_ERR_NOMEM;
    for (int i = 0; st == UR_OK && i < pr->n; i++) {
        STEP(ur_tokenize(pr->src[i], strlen(pr->src[i]), &tk));
        for (int k = 0; st == UR_OK && k < tk->n; k++)
            if (ur_vocab_add(counts, tk->tok[k]) < 0) st = UR_ERR_NOMEM;
        ur_tokens_free(tk);
        tk = NULL;
    }
    STEP(ur_vocab_build(counts, 1, UR_VOCAB_PAD | UR_VOCAB_UNK, &v));
    if (st == UR_OK) ur_treebank_set_word_ids(tb, v);
    int lens[3] = {2, 0, 3}, a[2] = {4, 5}, c[3] = {6, 7, 8};
    const int *seqs[3] = {a, NULL, c};
    ur_rng r;
    ur_rng_seed(&r, 9);
    STEP(ur_bucket_batches(lens, 3, 2, &r, &bs));
    STEP(ur_batch_pad(seqs, lens, NULL, 3, 0, 0, &pad));
    ur_text text = {(char *)tree_text, sizeof tree_text - 1};
    STEP(ur_char_corpus_make(&text, 0.9, &cc));
    ur_char_corpus_free(cc);
    ur_padded_free(pad);
    ur_batches_free(bs);
    ur_vocab_free(v);
    ur_vocab_free(counts);
    ur_pairs_free(pr);
    ur_treebank_free(tb);
    ur_conllu_free(cu);
    return st;
}

Test(alloc_failure, allocation_failure_in_the_readers) {
    long total = sweep_allocation_failures(readers_scenario, "readers", 0);
    sweep_allocation_failures(readers_scenario, "readers, memory exhausted", 1);
    cr_log_info("readers: failed each of %ld allocations in turn", total);
}
