/* test_limits.c - degenerate sizes: zero-length sequences, empty batches and inputs,
 * a vocabulary of one, and dimensions whose product overflows (docs/reliability.md). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"
#include "ur_data.h"
#include "ur_init.h"
#include "ur_ops.h"
#include "ur_optim.h"
#include "ur_tape.h"

Test(limits, zero_length_sequences_and_empty_batches) {
    /* two sequences of length 0 pad to one step that is all padding */
    int s0[1] = {0};
    const int *seqs[2] = {s0, s0};
    int lens[2] = {0, 0};
    ur_padded *p = NULL;
    cr_assert_eq(ur_batch_pad(seqs, lens, NULL, 2, 0, 7, &p), UR_OK, "%s", ur_last_error());
    cr_expect(p->T == 1 && p->B == 2 && p->lens[0] == 0 && p->lens[1] == 0);
    cr_expect(p->ids[0] == 7 && p->mask[0] == 0 && p->mask[1] == 0);
    /* a loss over nothing but padding is 0 and sends no gradient */
    ur_paramset *ps = ur_paramset_new();
    ur_param *logits = ur_test_param(ps, "logits", 2, 2, 5);
    for (int i = 0; i < 10; i++) logits->value.data[i] = (ur_real)i;
    ur_tape *t = ur_tape_new();
    ur_node *loss = ur_cross_entropy(t, ur_param_node(t, logits), p->ids, p->mask);
    cr_assert_not_null(loss, "%s", ur_tape_errmsg(t));
    cr_expect_eq(ur_node_item(loss), 0);
    cr_assert_eq(ur_backward(t, loss), UR_OK, "%s", ur_tape_errmsg(t));
    for (int i = 0; i < 10; i++) cr_expect_eq(logits->grad.data[i], 0);
    ur_padded_free(p);
    /* no sequences at all */
    cr_expect_eq(ur_batch_pad(seqs, lens, NULL, 0, 0, 0, &p), UR_ERR_ARG);
    cr_expect_null(p);
    ur_rng r;
    ur_rng_seed(&r, 1);
    ur_batches *bs = NULL;
    cr_assert_eq(ur_bucket_batches(lens, 0, 4, &r, &bs), UR_OK, "%s", ur_last_error());
    cr_expect(bs->n_batches == 0 && bs->n == 0 && bs->offset[0] == 0);
    ur_batches_free(bs);
    /* empty inputs to every reader */
    ur_tokens *tk = NULL;
    cr_assert_eq(ur_tokenize("", 0, &tk), UR_OK);
    cr_expect_eq(tk->n, 0);
    ur_tokens_free(tk);
    ur_pairs *pr = NULL;
    cr_assert_eq(ur_pairs_parse("", 0, "empty", &pr), UR_OK);
    cr_expect_eq(pr->n, 0);
    ur_pairs_free(pr);
    ur_conllu *cu = NULL;
    cr_assert_eq(ur_conllu_parse("\n\n", 2, "empty", &cu), UR_OK);
    cr_expect(cu->n_sentences == 0 && cu->n_tokens == 0);
    ur_conllu_free(cu);
    ur_treebank *tb = NULL;
    cr_assert_eq(ur_treebank_parse("", 0, "empty", -1, 0, &tb), UR_OK);
    cr_expect_eq(tb->n_trees, 0);
    ur_treebank_free(tb);
    ur_text text = {"", 0};
    ur_char_corpus *cc = NULL;
    cr_expect_eq(ur_char_corpus_make(&text, 0.9, &cc), UR_ERR_ARG);
    char path[512];
    ur_test_tmp_path("empty.txt", path, sizeof path);
    ur_test_write_file(path, "", 0);
    ur_text *tx = NULL;
    cr_expect_eq(ur_text_read_file(path, 0, &tx), UR_ERR_FORMAT);
    cr_expect(strstr(ur_last_error(), path) && strstr(ur_last_error(), "is empty"), "%s", ur_last_error());
    unlink(path);
    ur_tape_free(t);
    ur_paramset_free(ps);
}

Test(limits, vocabulary_of_one) {
    ur_vocab *counts = ur_vocab_new(0);
    for (int i = 0; i < 3; i++) cr_assert_eq(ur_vocab_add(counts, "only"), 0);
    ur_vocab *v = NULL;
    cr_assert_eq(ur_vocab_build(counts, 1, 0, &v), UR_OK);
    cr_expect(ur_vocab_size(v) == 1 && ur_vocab_count(v, 0) == 3);
    cr_expect_eq(ur_vocab_id(v, "other"), -1, "no UNK: an unknown word has no id");
    ur_text text = {"aaaa", 4};
    ur_char_corpus *cc = NULL;
    cr_assert_eq(ur_char_corpus_make(&text, 0.5, &cc), UR_OK);
    cr_expect(cc->cs.size == 1 && cc->ids[3] == 0 && cc->n_train == 2);
    ur_char_corpus_free(cc);
    /* a one-class model trains: the loss is 0 and so is every gradient */
    ur_paramset *ps = ur_paramset_new();
    ur_param *E = ur_test_param(ps, "E", 2, 1, 4), *W = ur_test_param(ps, "W", 2, 4, 1);
    ur_rng r;
    ur_rng_seed(&r, 3);
    ur_init_uniform(&E->value, &r, 1);
    ur_init_uniform(&W->value, &r, 1);
    ur_optim_config cfg = ur_optim_defaults(UR_OPTIM_ADAM, 0.1);
    ur_optim *opt = ur_optim_new(ps, &cfg);
    ur_tape *t = ur_tape_new();
    int ids[3] = {0, 0, 0};
    ur_node *logits = ur_matmul(t, ur_gather(t, ur_param_node(t, E), ids, 3), ur_param_node(t, W), 0, 0);
    ur_node *loss = ur_cross_entropy(t, logits, ids, NULL);
    cr_assert_not_null(loss, "%s", ur_tape_errmsg(t));
    cr_expect_eq(ur_node_item(loss), 0);
    cr_assert_eq(ur_backward(t, loss), UR_OK);
    cr_expect_eq(ur_grad_norm(ps), 0);
    cr_expect_eq(ur_optim_step(opt), UR_OK);
    ur_node *sm = ur_softmax(t, logits);
    cr_expect(sm && ur_node_cdata(sm)[0] == 1);
    ur_tape_free(t);
    ur_optim_free(opt);
    ur_paramset_free(ps);
    ur_vocab_free(v);
    ur_vocab_free(counts);
}

/* An allocator with 1 GB of memory per request. */
static void *small_malloc(size_t size, void *user) {
    (void)user;
    return size > ((size_t)1 << 30) ? NULL : malloc(size);
}

static void plain_free(void *p, void *user) {
    (void)user;
    free(p);
}

Test(limits, dimensions_whose_product_overflows) {
    int big[4] = {65536, 65536, 65536, 65536};
    cr_expect_null(ur_tensor_new(4, big));
    cr_expect(strstr(ur_last_error(), "overflows") != NULL, "%s", ur_last_error());
    ur_paramset *ps = ur_paramset_new();
    cr_expect_null(ur_paramset_add(ps, "huge", 4, big));
    cr_expect(strstr(ur_last_error(), "overflows") != NULL, "%s", ur_last_error());
    cr_expect_eq(ur_paramset_count(ps), 0);
    ur_tape *t = ur_tape_new();
    cr_expect_null(ur_zeros(t, 4, big));
    cr_expect_eq(ur_tape_error(t), UR_ERR_SHAPE, "%s", ur_tape_errmsg(t));
    ur_tape_reset(t);
    /* a reshape whose -1 would need a huge dimension, and one past INT_MAX */
    int d3[1] = {6}, bad[3] = {-1, 65536, 65536}, two[2] = {4, 3};
    cr_expect_null(ur_reshape(t, ur_zeros(t, 1, d3), 3, bad));
    cr_expect_neq(ur_tape_error(t), UR_OK);
    ur_tape_reset(t);
    cr_expect_null(ur_reshape(t, ur_zeros(t, 1, d3), 2, two));
    cr_expect_eq(ur_tape_error(t), UR_ERR_SHAPE, "%s", ur_tape_errmsg(t));
    /* as large as a shape allows, but more memory than exists: NULL, not a crash
     * (the hook refuses what malloc would; ASan would abort instead of failing) */
    ur_set_allocator(small_malloc, plain_free, NULL);
    ur_tensor *x = ur_tensor_new_2d(1 << 30, 1 << 30);
    cr_expect_null(x);
    cr_expect_eq(strcmp(ur_last_error(), "") != 0, 1, "a message is left");
    ur_tape_reset(t);
    ur_node *z = ur_zeros(t, 2, (int[]){1 << 30, 1 << 30});
    ur_set_allocator(NULL, NULL, NULL);
    cr_expect_null(z);
    cr_expect_eq(ur_tape_error(t), UR_ERR_NOMEM, "%s", ur_tape_errmsg(t));
    ur_tape_free(t);
    ur_paramset_free(ps);
}
