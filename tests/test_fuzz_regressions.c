/* test_fuzz_regressions.c - the bugs the fuzzers (tests/fuzz) found, each kept as a
 * test (docs/reliability.md). */
#include <criterion/criterion.h>
#include <stdint.h>

#include "ur_data.h"

/* fuzz_tree: a treebank whose trees are single leaves has no child links; the
 * reader computed pointers from a NULL array (undefined behaviour, caught by
 * clang's UBSan: "applying zero offset to null pointer"). */
Test(fuzz_regressions, tree_of_single_leaves) {
    static const char text[] = "(3 h)\n(1 x)\n";
    ur_treebank *tb = NULL;
    cr_assert_eq(ur_treebank_parse(text, sizeof text - 1, "leaves", 4, 0, &tb), UR_OK, "%s", ur_last_error());
    cr_assert_eq(tb->n_trees, 2);
    for (int k = 0; k < 2; k++) {
        const ur_tree *t = &tb->trees[k];
        cr_expect(t->n_nodes == 1 && t->n_words == 1 && t->max_children == 0);
        cr_expect_not_null(t->children, "an address even without children");
        cr_expect(t->nodes[0].n_children == 0 && t->nodes[0].word == 0 && t->nodes[0].parent == -1);
    }
    cr_expect_str_eq(tb->trees[0].words[0], "h");
    cr_expect_eq(tb->trees[1].label, 1);
    ur_treebank_free(tb);
}

/* fuzz_text: adding counts near INT64_MAX overflowed the signed count (UBSan);
 * counts now saturate. */
Test(fuzz_regressions, vocab_count_saturates) {
    ur_vocab *v = ur_vocab_new(0);
    cr_assert_eq(ur_vocab_add_n(v, "~big", 4, INT64_MAX - 7), 0);
    cr_assert_eq(ur_vocab_add_n(v, "~big", 4, INT64_MAX - 7), 0);
    cr_expect_eq(ur_vocab_count(v, 0), INT64_MAX);
    cr_assert_eq(ur_vocab_add_n(v, "~big", 4, 1), 0);
    cr_expect_eq(ur_vocab_count(v, 0), INT64_MAX);
    ur_vocab *built = NULL;
    cr_assert_eq(ur_vocab_build(v, 1, 0, &built), UR_OK);
    cr_expect_eq(ur_vocab_count(built, 0), INT64_MAX);
    ur_vocab_free(built);
    ur_vocab_free(v);
}
