/* Data readers: vocabularies, byte corpora, CoNLL-U, trees, pairs, tokens, batches.
 * Small inline inputs with exact expected results, every malformed input with its
 * message, allocation failures at every step, and the real datasets when present. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "support.h"
#include "ur_data.h"

#define EXPECT_ERR(call, status, text)                                                           \
    do {                                                                                         \
        ur_status st_ = (call);                                                                  \
        cr_expect_eq(st_, status, "%s gave %s: %s", #call, ur_status_name(st_), ur_last_error()); \
        cr_expect(strstr(ur_last_error(), text) != NULL, "message '%s' lacks '%s'", ur_last_error(), text); \
    } while (0)

/* ======================= allocation-failure injection ======================= */

/* Runs fn with the Nth allocation failing, for N = 1, 2, ... until fn succeeds with
 * no failure injected: each failure must be UR_ERR_NOMEM and leave nothing behind. */
static void check_nomem(ur_status (*fn)(void), const char *what) {
    long fail_at;
    for (fail_at = 1;; fail_at++) {
        ur_test_fail_alloc_begin(fail_at, 0);
        ur_status s = fn();
        ur_test_alloc_count n = ur_test_fail_alloc_end();
        cr_assert_eq(n.live, 0, "%s: %ld blocks leaked with allocation %ld failing", what, n.live, fail_at);
        if (n.attempts < fail_at) {
            cr_assert_eq(s, UR_OK, "%s: %s", what, ur_last_error());
            break;
        }
        cr_assert_eq(s, UR_ERR_NOMEM, "%s: allocation %ld failed but got %s (%s)", what, fail_at,
                     ur_status_name(s), ur_last_error());
    }
    cr_expect_gt(fail_at, 1, "%s allocated nothing", what);
}

/* ======================= vocabulary ======================= */

Test(vocab, add_find_count_string) {
    ur_vocab *v = ur_vocab_new(0);
    cr_assert_not_null(v);
    cr_expect_eq(ur_vocab_add(v, "the"), 0);
    cr_expect_eq(ur_vocab_add(v, "cat"), 1);
    cr_expect_eq(ur_vocab_add(v, "the"), 0);
    cr_expect_eq(ur_vocab_add_n(v, "sat on", 3, 5), 2);
    cr_expect_eq(ur_vocab_size(v), 3);
    cr_expect_eq(ur_vocab_find(v, "sat"), 2);
    cr_expect_eq(ur_vocab_find(v, "dog"), -1);
    cr_expect_eq(ur_vocab_id(v, "dog"), -1, "no UNK: absent words give -1");
    cr_expect_eq(ur_vocab_count(v, 0), 2);
    cr_expect_eq(ur_vocab_count(v, 2), 5);
    cr_expect_str_eq(ur_vocab_string(v, 1), "cat");
    cr_expect_null(ur_vocab_string(v, 3));
    cr_expect_null(ur_vocab_string(v, -1));
    cr_expect_eq(ur_vocab_special_id(v, UR_VOCAB_UNK), -1);
    /* bytes with a NUL inside are a word like any other */
    cr_expect_eq(ur_vocab_add_n(v, "a\0b", 3, 1), 3);
    cr_expect_eq(ur_vocab_find_n(v, "a\0b", 3), 3);
    cr_expect_eq(ur_vocab_string_len(v, 3), 3);
    cr_expect_eq(ur_vocab_find(v, "a"), -1);
    ur_vocab_free(v);
}

Test(vocab, many_words_survive_rehashing) {
    ur_vocab *v = ur_vocab_new(0);
    char w[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(w, sizeof w, "w%d", i);
        cr_assert_eq(ur_vocab_add(v, w), i);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(w, sizeof w, "w%d", i);
        cr_assert_eq(ur_vocab_find(v, w), i);
        cr_assert_str_eq(ur_vocab_string(v, i), w);
    }
    ur_vocab_free(v);
}

Test(vocab, build_with_min_count_and_specials) {
    ur_vocab *c = ur_vocab_new(0);
    const char *text[] = {"b", "a", "c", "a", "b", "d", "a", "b", "c"}; /* a3 b3 c2 d1 */
    for (int i = 0; i < 9; i++) ur_vocab_add(c, text[i]);
    ur_vocab *v;
    cr_assert_eq(ur_vocab_build(c, 2, UR_VOCAB_PAD | UR_VOCAB_UNK | UR_VOCAB_EOS, &v), UR_OK);
    const char *want[] = {"<pad>", "<unk>", "</s>", "a", "b", "c"};
    cr_assert_eq(ur_vocab_size(v), 6);
    for (int i = 0; i < 6; i++) cr_expect_str_eq(ur_vocab_string(v, i), want[i]);
    cr_expect_eq(ur_vocab_count(v, 3), 3);
    cr_expect_eq(ur_vocab_count(v, 5), 2);
    cr_expect_eq(ur_vocab_special_id(v, UR_VOCAB_PAD), 0);
    cr_expect_eq(ur_vocab_special_id(v, UR_VOCAB_UNK), 1);
    cr_expect_eq(ur_vocab_special_id(v, UR_VOCAB_BOS), -1);
    cr_expect_eq(ur_vocab_special_id(v, UR_VOCAB_EOS), 2);
    cr_expect_eq(ur_vocab_id(v, "d"), 1, "below min_count: UNK");
    cr_expect_eq(ur_vocab_id(v, "c"), 5);
    ur_vocab_free(v);
    EXPECT_ERR(ur_vocab_build(c, 1, 16, &v), UR_ERR_ARG, "unknown special flags");
    cr_expect_null(v);
    ur_vocab_free(ur_vocab_build(c, 1, 0, &v) == UR_OK ? v : NULL);
    ur_vocab_free(c);
}

static ur_status run_vocab(void) {
    ur_vocab *c = ur_vocab_new(0), *v = NULL;
    if (!c) return UR_ERR_NOMEM;
    char w[16];
    for (int i = 0; i < 100; i++) {
        snprintf(w, sizeof w, "%d", i % 40);
        if (ur_vocab_add(c, w) < 0) {
            ur_vocab_free(c);
            return UR_ERR_NOMEM;
        }
    }
    ur_status s = ur_vocab_build(c, 2, UR_VOCAB_UNK | UR_VOCAB_BOS, &v);
    ur_vocab_free(v);
    ur_vocab_free(c);
    return s;
}

Test(vocab, allocation_failures) { check_nomem(run_vocab, "vocab"); }

/* ======================= byte corpora ======================= */

Test(text, read_file_and_errors) {
    char path[512];
    ur_test_tmp_path("text.txt", path, sizeof path);
    ur_test_write_file(path, "hello\nworld\n", 12);
    ur_text *t;
    cr_assert_eq(ur_text_read_file(path, 0, &t), UR_OK, "%s", ur_last_error());
    cr_expect_eq(t->len, 12);
    cr_expect_str_eq(t->data, "hello\nworld\n");
    ur_text_free(t);
    EXPECT_ERR(ur_text_read_file(path, 11, &t), UR_ERR_FORMAT, "is larger than the limit of 11 bytes");
    cr_expect_null(t);
    cr_expect(strstr(ur_last_error(), path) != NULL);
    cr_assert_eq(ur_text_read_file(path, 12, &t), UR_OK);
    ur_text_free(t);
    ur_test_write_file(path, "", 0);
    EXPECT_ERR(ur_text_read_file(path, 0, &t), UR_ERR_FORMAT, "is empty");
    remove(path);
    EXPECT_ERR(ur_text_read_file(path, 0, &t), UR_ERR_IO, "No such file or directory");
    cr_expect(strstr(ur_last_error(), path) != NULL, "%s", ur_last_error());
    EXPECT_ERR(ur_text_read_file(UR_SOURCE_DIR, 0, &t), UR_ERR_IO, "cannot read");
    EXPECT_ERR(ur_text_read_file(NULL, 0, &t), UR_ERR_ARG, "path is NULL");
}

Test(text, charset_and_split) {
    ur_text t = {"hello world", 11};
    ur_char_corpus *c;
    cr_assert_eq(ur_char_corpus_make(&t, 0.9, &c), UR_OK);
    cr_expect_eq(c->cs.size, 8);
    cr_expect_eq(memcmp(c->cs.chars, " dehlorw", 8), 0);
    int want[11] = {3, 2, 4, 4, 5, 0, 7, 5, 6, 4, 1};
    for (int i = 0; i < 11; i++) cr_expect_eq(c->ids[i], want[i], "id %d", i);
    cr_expect_eq(c->n, 11);
    cr_expect_eq(c->n_train, 9);
    cr_expect_eq(c->cs.id_of['z'], -1);
    int ids[2];
    EXPECT_ERR(ur_charset_encode(&c->cs, "hz", 2, ids), UR_ERR_FORMAT, "byte 0x7a at offset 1");
    ur_char_corpus_free(c);
    EXPECT_ERR(ur_char_corpus_make(&t, 0.0, &c), UR_ERR_ARG, "train_fraction");
}

Test(text, generate_is_deterministic_and_structured) {
    ur_text *a, *b, *c;
    cr_assert_eq(ur_text_generate(7, 0, &a), UR_OK);
    cr_assert_eq(ur_text_generate(7, 0, &b), UR_OK);
    cr_assert_eq(ur_text_generate(8, 0, &c), UR_OK);
    cr_expect(a->len <= 262144 && a->len > 262144 - 2048, "length %zu", a->len);
    cr_expect_eq(a->len, b->len);
    cr_expect_eq(memcmp(a->data, b->data, a->len), 0, "same seed, same text");
    cr_expect(a->len != c->len || memcmp(a->data, c->data, a->len) != 0, "another seed, another text");
    cr_expect_eq(a->data[a->len - 1], '\n');
    cr_expect_eq(strlen(a->data), a->len);
    ur_charset cs;
    ur_charset_build(&cs, a->data, a->len);
    cr_expect(cs.size > 30 && cs.size < 64, "%d distinct bytes", cs.size);
    /* agreement: a plural subject is never followed by a singular verb */
    cr_expect_null(strstr(a->data, "kings sees"));
    cr_expect_null(strstr(a->data, "a old"));
    cr_expect_not_null(strstr(a->data, ":\n"));
    cr_expect_not_null(strstr(a->data, "?\n"));
    ur_text_free(a);
    ur_text_free(b);
    ur_text_free(c);
    EXPECT_ERR(ur_text_generate(1, 100, &a), UR_ERR_ARG, "n_bytes 100");
}

static ur_status run_text(void) {
    char path[512];
    ur_test_tmp_path("nomem.txt", path, sizeof path);
    ur_text *t, *g;
    ur_char_corpus *c;
    ur_status s = ur_text_read_file(path, 0, &t);
    if (s != UR_OK) return s;
    s = ur_char_corpus_make(t, 0.9, &c);
    ur_char_corpus_free(c);
    ur_text_free(t);
    if (s == UR_OK) s = ur_text_generate(3, 4096, &g);
    if (s == UR_OK) ur_text_free(g);
    return s;
}

Test(text, allocation_failures) {
    char path[512];
    ur_test_tmp_path("nomem.txt", path, sizeof path);
    ur_test_write_file(path, "some text\n", 10);
    check_nomem(run_text, "text");
    remove(path);
}

/* ======================= CoNLL-U ======================= */

static const char conllu_ok[] =
    "# sent_id = 1\n"
    "# text = I don't know.\n"
    "1\tI\tI\tPRON\tPRP\t_\t3\tnsubj\t_\t_\n"
    "2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n"
    "2\tdo\tdo\tAUX\tVBP\t_\t4\taux\t_\t_\n"
    "3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t_\t_\n"
    "4\tknow\tknow\tVERB\tVB\t_\t0\troot\t_\t_\n"
    "4.1\tgo\tgo\tVERB\tVB\t_\t_\t_\t2:x\t_\n"
    "5\t.\t.\tPUNCT\t.\t_\t4\tpunct\t_\t_\n"
    "\n"
    "\n"
    "# a comment only\n"
    "\n"
    "1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\r\n"
    "2\t!\t!\tPUNCT\t.\t_\t1\tpunct\t_\t_"; /* no final newline, no blank line */

Test(conllu, upos_table) {
    cr_expect_eq(UR_UPOS_COUNT, 17);
    cr_expect_str_eq(ur_upos_name(0), "ADJ");
    cr_expect_str_eq(ur_upos_name(UR_UPOS_PROPN), "PROPN");
    cr_expect_str_eq(ur_upos_name(16), "X");
    cr_expect_null(ur_upos_name(17));
    cr_expect_eq(ur_upos_id("VERB", 4), UR_UPOS_VERB);
    cr_expect_eq(ur_upos_id("VERBS", 5), -1);
    cr_expect_eq(ur_upos_id("VER", 3), -1);
    for (int i = 0; i < UR_UPOS_COUNT; i++) cr_expect_eq(ur_upos_id(ur_upos_name(i), strlen(ur_upos_name(i))), i);
}

Test(conllu, parses_words_and_tags) {
    ur_conllu *c;
    cr_assert_eq(ur_conllu_parse(conllu_ok, strlen(conllu_ok), "t.conllu", &c), UR_OK, "%s", ur_last_error());
    cr_assert_eq(c->n_sentences, 2);
    cr_expect_eq(c->n_tokens, 7);
    const char *w0[] = {"I", "do", "n't", "know", "."};
    int t0[] = {UR_UPOS_PRON, UR_UPOS_AUX, UR_UPOS_PART, UR_UPOS_VERB, UR_UPOS_PUNCT};
    cr_assert_eq(c->sents[0].len, 5);
    for (int i = 0; i < 5; i++) {
        cr_expect_str_eq(c->sents[0].words[i], w0[i]);
        cr_expect_eq(c->sents[0].tags[i], t0[i]);
    }
    cr_assert_eq(c->sents[1].len, 2);
    cr_expect_str_eq(c->sents[1].words[0], "Hi");
    cr_expect_str_eq(c->sents[1].words[1], "!");
    cr_expect_eq(c->sents[1].tags[0], UR_UPOS_INTJ);
    cr_expect_eq(c->sents[1].tags[1], UR_UPOS_PUNCT);
    ur_conllu_free(c);
    cr_assert_eq(ur_conllu_parse("", 0, NULL, &c), UR_OK);
    cr_expect_eq(c->n_sentences, 0);
    ur_conllu_free(c);
}

static void conllu_error(const char *text, const char *message) {
    ur_conllu *c = (ur_conllu *)1;
    ur_status s = ur_conllu_parse(text, strlen(text), "bad.conllu", &c);
    cr_expect_eq(s, UR_ERR_FORMAT, "input %s gave %s", text, ur_status_name(s));
    cr_expect_null(c);
    cr_expect_str_eq(ur_last_error(), message);
}

#define TOK(id, upos) id "\tw\tw\t" upos "\tX\t_\t0\troot\t_\t_\n"

Test(conllu, malformed_inputs) {
    conllu_error(TOK("1", "NOUN") "2\tw\tw\tNOUN\tX\t_\t0\troot\t_\n",
                 "ur_conllu_parse: bad.conllu:2: expected 10 tab-separated columns, found 9");
    conllu_error(TOK("1", "NOUN") TOK("2", "NOUN") "x\n",
                 "ur_conllu_parse: bad.conllu:3: expected 10 tab-separated columns, found 1");
    conllu_error(TOK("1", "NOUN") TOK("1", "NOUN") TOK("x", "NOUN") "\n",
                 "ur_conllu_parse: bad.conllu:2: ID 1 out of order (expected 2)");
    conllu_error("# c\n" TOK("a", "NOUN"), "ur_conllu_parse: bad.conllu:2: bad ID 'a'");
    conllu_error(TOK("0", "NOUN"), "ur_conllu_parse: bad.conllu:1: bad ID '0'");
    conllu_error(TOK("1-", "NOUN"), "ur_conllu_parse: bad.conllu:1: bad ID '1-'");
    conllu_error(TOK("1.x", "NOUN"), "ur_conllu_parse: bad.conllu:1: bad ID '1.x'");
    conllu_error(TOK("1", "NOUNS"), "ur_conllu_parse: bad.conllu:1: unknown UPOS 'NOUNS'");
    conllu_error(TOK("1", "_"), "ur_conllu_parse: bad.conllu:1: unknown UPOS '_'");
    conllu_error(TOK("1", ""), "ur_conllu_parse: bad.conllu:1: empty UPOS");
    conllu_error("1\t\tw\tNOUN\tX\t_\t0\troot\t_\t_\n", "ur_conllu_parse: bad.conllu:1: empty FORM");
    static char longline[UR_DATA_MAX_LINE + 20];
    memset(longline, 'a', sizeof longline - 1);
    conllu_error(longline, "ur_conllu_parse: bad.conllu:1: line too long (65555 bytes, limit 65536)");
    ur_conllu *c;
    EXPECT_ERR(ur_conllu_parse(NULL, 5, "x", &c), UR_ERR_ARG, "buf is NULL");
    EXPECT_ERR(ur_conllu_read_file("/nonexistent/x.conllu", &c), UR_ERR_IO,
               "cannot open '/nonexistent/x.conllu': No such file or directory");
}

static ur_status run_conllu(void) {
    ur_conllu *c;
    ur_status s = ur_conllu_parse(conllu_ok, strlen(conllu_ok), "t", &c);
    ur_conllu_free(c);
    return s;
}

Test(conllu, allocation_failures) { check_nomem(run_conllu, "conllu"); }

Test(conllu, real_ud_ewt) {
    char path[512];
    const char *files[2] = {"ud-en-ewt/en_ewt-ud-train.conllu", "ud-en-ewt/en_ewt-ud-dev.conllu"};
    int sents[2] = {12544, 2001};
    size_t toks[2] = {204577, 25147};
    for (int k = 0; k < 2; k++) {
        if (!ur_test_data_path(files[k], path, sizeof path)) cr_skip_test("%s not found; skipped", files[k]);
        ur_conllu *c;
        cr_assert_eq(ur_conllu_read_file(path, &c), UR_OK, "%s", ur_last_error());
        cr_expect_eq(c->n_sentences, sents[k], "%s: %d sentences", files[k], c->n_sentences);
        cr_expect_eq(c->n_tokens, toks[k], "%s: %zu tokens", files[k], c->n_tokens);
        size_t total = 0;
        for (int i = 0; i < c->n_sentences; i++) total += (size_t)c->sents[i].len;
        cr_expect_eq(total, c->n_tokens);
        if (k == 1) {
            cr_expect_str_eq(c->sents[0].words[0], "From");
            cr_expect_eq(c->sents[0].tags[0], UR_UPOS_ADP);
            cr_expect_eq(c->sents[0].len, 7);
        }
        ur_conllu_free(c);
    }
}

/* ======================= bracketed trees ======================= */

Test(tree, sst_example_structure) {
    const char *s = "(3 (2 It) (4 (2 's) (3 lovely)))\n";
    ur_treebank *tb;
    cr_assert_eq(ur_treebank_parse(s, strlen(s), "t.txt", 4, UR_TREE_BINARY, &tb), UR_OK, "%s", ur_last_error());
    cr_assert_eq(tb->n_trees, 1);
    const ur_tree *t = &tb->trees[0];
    cr_assert_eq(t->n_nodes, 5);
    cr_expect_eq(ur_tree_root(t), 4);
    cr_expect_eq(t->label, 3);
    cr_expect_eq(t->max_children, 2);
    int label[5] = {2, 2, 3, 4, 3}, nch[5] = {0, 0, 0, 2, 2}, height[5] = {0, 0, 0, 1, 2};
    int word[5] = {0, 1, 2, -1, -1}, parent[5] = {4, 3, 3, 4, -1};
    for (int i = 0; i < 5; i++) {
        cr_expect_eq(t->nodes[i].label, label[i], "node %d", i);
        cr_expect_eq(t->nodes[i].n_children, nch[i], "node %d", i);
        cr_expect_eq(t->nodes[i].height, height[i], "node %d", i);
        cr_expect_eq(t->nodes[i].word, word[i], "node %d", i);
        cr_expect_eq(t->nodes[i].parent, parent[i], "node %d", i);
    }
    const int *c3 = t->children + t->nodes[3].first_child, *c4 = t->children + t->nodes[4].first_child;
    cr_expect(c3[0] == 1 && c3[1] == 2);
    cr_expect(c4[0] == 0 && c4[1] == 3);
    cr_assert_eq(t->n_words, 3);
    cr_expect_str_eq(t->words[0], "It");
    cr_expect_str_eq(t->words[1], "'s");
    cr_expect_str_eq(t->words[2], "lovely");
    cr_expect_eq(t->word_ids[0], -1);
    ur_vocab *v = ur_vocab_new(UR_VOCAB_UNK);
    ur_vocab_add(v, "lovely");
    ur_treebank_set_word_ids(tb, v);
    cr_expect(t->word_ids[0] == 0 && t->word_ids[1] == 0 && t->word_ids[2] == 1);
    ur_vocab_free(v);
    ur_treebank_free(tb);
}

Test(tree, generic_children_blank_lines_and_several_trees) {
    const char *s = "(1 (2 a) (3 b) (4 c) (0 d))\n\n  \r\n(1 (2 (3 a)))\r\n(2 word)";
    ur_treebank *tb;
    cr_assert_eq(ur_treebank_parse(s, strlen(s), "t", -1, 0, &tb), UR_OK, "%s", ur_last_error());
    cr_assert_eq(tb->n_trees, 3);
    cr_expect_eq(tb->trees[0].n_nodes, 5);
    cr_expect_eq(tb->trees[0].max_children, 4);
    cr_expect_eq(tb->trees[0].nodes[4].height, 1);
    cr_expect_eq(tb->trees[0].n_words, 4);
    cr_expect_str_eq(tb->trees[0].words[3], "d");
    const ur_tree *u = &tb->trees[1];
    cr_expect(u->n_nodes == 3 && u->max_children == 1 && u->nodes[2].height == 2 && u->label == 1);
    cr_expect_eq(u->nodes[1].parent, 2);
    const ur_tree *w = &tb->trees[2];
    cr_expect(w->n_nodes == 1 && w->n_words == 1 && w->nodes[0].height == 0 && w->label == 2);
    cr_expect_str_eq(w->words[0], "word");
    ur_treebank_free(tb);
}

static void tree_error(const char *text, int max_label, int flags, const char *message) {
    ur_treebank *tb = (ur_treebank *)1;
    ur_status s = ur_treebank_parse(text, strlen(text), "t.txt", max_label, flags, &tb);
    cr_expect_eq(s, UR_ERR_FORMAT, "input %s gave %s", text, ur_status_name(s));
    cr_expect_null(tb);
    cr_expect_str_eq(ur_last_error(), message);
}

Test(tree, malformed_inputs) {
    const char *P = "ur_treebank_parse: t.txt:";
    char m[256];
#define TREE_ERR(text, max, flags, msg)                     \
    do {                                                    \
        snprintf(m, sizeof m, "%s%s", P, msg);              \
        tree_error(text, max, flags, m);                    \
    } while (0)
    TREE_ERR("(3 (2 a) (2 b)", 4, 0, "1:1: unbalanced brackets: '(' is not closed by the end of the line");
    TREE_ERR("(2 a)\n(3 (2 a) (2 b)))", 4, 0, "2:16: unbalanced brackets: extra ')'");
    TREE_ERR("(3 (a) (2 b))", 4, 0, "1:5: non-integer label 'a'");
    TREE_ERR("(3 (-1 a) (2 b))", -1, 0, "1:5: non-integer label '-1'");
    TREE_ERR("( (2 a))", 4, 0, "1:3: missing label");
    TREE_ERR("(2 ())", 4, 0, "1:4: empty node '()'");
    TREE_ERR("()", 4, 0, "1:1: empty node '()'");
    TREE_ERR("(3 (2 a) (2 b)) x", 4, 0, "1:17: trailing text after the tree: 'x'");
    TREE_ERR("(3 (2 a) (2 b))(2 c)", 4, 0, "1:16: trailing text after the tree: '('");
    TREE_ERR("(7 (2 a) (2 b))", 4, 0, "1:2: label out of range [0, 4]: '7'");
    TREE_ERR("(99999999999 a)", -1, 0, "1:2: label out of range [0, 2147483647]: '99999999999'");
    TREE_ERR("(2)", 4, 0, "1:3: node without a word or children");
    TREE_ERR("(2 a b)", 4, 0, "1:6: unexpected word 'b'");
    TREE_ERR("(2 (2 a) b)", 4, 0, "1:10: unexpected word 'b'");
    TREE_ERR("(2 a (2 b))", 4, 0, "1:6: a child after the word of a leaf");
    TREE_ERR("x (2 a)", 4, 0, "1:1: expected '(' but found 'x'");
    TREE_ERR("(3 (2 a) (2 b) (2 c))", 4, UR_TREE_BINARY, "1:1: node with 3 children (binary trees need 2)");
    TREE_ERR("(2 a)\n\n(3 (2 a))", 4, UR_TREE_BINARY, "3:1: node with 1 child (binary trees need 2)");
#undef TREE_ERR
    ur_treebank *tb;
    EXPECT_ERR(ur_treebank_parse("(2 a)", 5, "t", 4, 8, &tb), UR_ERR_ARG, "unknown flags");
    EXPECT_ERR(ur_treebank_read_file("/nonexistent/t.txt", 4, 0, &tb), UR_ERR_IO, "No such file or directory");
}

Test(tree, deep_nesting_does_not_recurse) {
    enum { D = 15000 }; /* 4 bytes per level: under UR_DATA_MAX_LINE */
    static char s[4 * D + 16];
    size_t n = 0;
    for (int i = 0; i < D; i++) n += (size_t)sprintf(s + n, "(1 ");
    n += (size_t)sprintf(s + n, "w");
    for (int i = 0; i < D; i++) s[n++] = ')';
    ur_treebank *tb;
    cr_assert_eq(ur_treebank_parse(s, n, "deep", -1, 0, &tb), UR_OK, "%s", ur_last_error());
    cr_expect_eq(tb->trees[0].n_nodes, D);
    cr_expect_eq(tb->trees[0].nodes[D - 1].height, D - 1);
    ur_treebank_free(tb);
}

Test(tree, sst_binary_label) {
    int want[6] = {0, 0, -1, 1, 1, -1};
    for (int l = 0; l < 6; l++) cr_expect_eq(ur_sst_binary_label(l), want[l]);
    cr_expect_eq(ur_sst_binary_label(-1), -1);
}

static ur_status run_tree(void) {
    const char *s = "(3 (2 It) (4 (2 's) (3 lovely)))\n(1 (2 (3 a)) (2 b) (1 c))\n";
    ur_treebank *tb;
    ur_status st = ur_treebank_parse(s, strlen(s), "t", 4, 0, &tb);
    ur_treebank_free(tb);
    return st;
}

Test(tree, allocation_failures) { check_nomem(run_tree, "tree"); }

Test(tree, real_sst) {
    char path[512];
    if (!ur_test_data_path("sst/train.txt", path, sizeof path)) cr_skip_test("sst/train.txt not found; skipped");
    ur_treebank *tb;
    cr_assert_eq(ur_treebank_read_file(path, 4, UR_TREE_BINARY, &tb), UR_OK, "%s", ur_last_error());
    cr_expect_eq(tb->n_trees, 8544);
    int counts[5] = {0}, want[5] = {1092, 2218, 1624, 2322, 1288};
    for (int i = 0; i < tb->n_trees; i++) {
        const ur_tree *t = &tb->trees[i];
        counts[t->label]++;
        cr_assert_eq(t->n_nodes, 2 * t->n_words - 1, "tree %d is not binary", i);
    }
    for (int l = 0; l < 5; l++) cr_expect_eq(counts[l], want[l], "label %d: %d trees", l, counts[l]);
    cr_expect_str_eq(tb->trees[0].words[0], "The");
    cr_expect_str_eq(tb->trees[0].words[1], "Rock");
    ur_treebank_free(tb);
    if (!ur_test_data_path("sst/dev.txt", path, sizeof path)) cr_skip_test("sst/dev.txt not found; skipped");
    cr_assert_eq(ur_treebank_read_file(path, 4, UR_TREE_BINARY, &tb), UR_OK, "%s", ur_last_error());
    cr_expect_eq(tb->n_trees, 1101);
    ur_treebank_free(tb);
}

/* ======================= pairs and tokens ======================= */

Test(pairs, parses_two_columns_and_ignores_the_rest) {
    const char *s = "Go.\tVa !\tCC-BY 2.0\nHi.\tSalut.\n\nRun!\tCours\xe2\x80\xaf!\tattr\r\n";
    ur_pairs *p;
    cr_assert_eq(ur_pairs_parse(s, strlen(s), "p.txt", &p), UR_OK, "%s", ur_last_error());
    cr_assert_eq(p->n, 3);
    cr_expect_str_eq(p->src[0], "Go.");
    cr_expect_str_eq(p->tgt[0], "Va !");
    cr_expect_str_eq(p->src[1], "Hi.");
    cr_expect_str_eq(p->tgt[1], "Salut.");
    cr_expect_str_eq(p->src[2], "Run!");
    cr_expect_str_eq(p->tgt[2], "Cours\xe2\x80\xaf!");
    ur_pairs_free(p);
}

static void pairs_error(const char *text, const char *message) {
    ur_pairs *p = (ur_pairs *)1;
    cr_expect_eq(ur_pairs_parse(text, strlen(text), "p.txt", &p), UR_ERR_FORMAT);
    cr_expect_null(p);
    cr_expect_str_eq(ur_last_error(), message);
}

Test(pairs, malformed_inputs) {
    pairs_error("a\tb\nonly one\n", "ur_pairs_parse: p.txt:2: expected 2 tab-separated columns, found 1");
    pairs_error("\tb\n", "ur_pairs_parse: p.txt:1: empty first column");
    pairs_error("a\tb\na\t\tc\n", "ur_pairs_parse: p.txt:2: empty second column");
    ur_pairs *p;
    EXPECT_ERR(ur_pairs_read_file("/nonexistent/p.txt", &p), UR_ERR_IO, "No such file or directory");
}

static void expect_tokens(const char *s, int n, const char *const *want) {
    ur_tokens *t;
    cr_assert_eq(ur_tokenize(s, strlen(s), &t), UR_OK);
    cr_expect_eq(t->n, n, "'%s' gave %d tokens", s, t->n);
    for (int i = 0; i < n && i < t->n; i++) cr_expect_str_eq(t->tok[i], want[i], "'%s' token %d", s, i);
    ur_tokens_free(t);
}

Test(tokens, lowercase_and_split_punctuation) {
    expect_tokens("I'm so tired!", 4, (const char *[]){"i'm", "so", "tired", "!"});
    expect_tokens("Va\xe2\x80\xaf!", 2, (const char *[]){"va", "!"});
    expect_tokens("\xc2\xa0" "Ah\t(non)...", 7, (const char *[]){"ah", "(", "non", ")", ".", ".", "."});
    expect_tokens("Well-known, '\xc3\x87" "a' -- don't.", 9,
                  (const char *[]){"well-known", ",", "'", "\xc3\x87" "a", "'", "-", "-", "don't", "."});
    expect_tokens("J'ai 2,5 \xc3\xa9t\xc3\xa9s", 5,
                  (const char *[]){"j'ai", "2", ",", "5", "\xc3\xa9t\xc3\xa9s"});
    expect_tokens("", 0, NULL);
    expect_tokens("   ", 0, NULL);
}

static ur_status run_pairs(void) {
    const char *s = "Go.\tVa !\tx\nHi.\tSalut.\nI'm so tired!\tJe suis si fatigu\xc3\xa9 !\n";
    ur_pairs *p;
    ur_tokens *t = NULL;
    ur_status st = ur_pairs_parse(s, strlen(s), "p", &p);
    if (st == UR_OK) st = ur_tokenize(p->src[2], strlen(p->src[2]), &t);
    ur_tokens_free(t);
    ur_pairs_free(p);
    return st;
}

Test(pairs, allocation_failures) { check_nomem(run_pairs, "pairs"); }

Test(pairs, real_eng_fra) {
    char path[512];
    if (!ur_test_data_path("eng-fra/eng-fra.txt", path, sizeof path))
        cr_skip_test("eng-fra/eng-fra.txt not found; skipped");
    ur_pairs *p;
    cr_assert_eq(ur_pairs_read_file(path, &p), UR_OK, "%s", ur_last_error());
    cr_expect_eq(p->n, 5000);
    cr_expect_str_eq(p->src[0], "Go.");
    cr_expect_str_eq(p->tgt[0], "Va !");
    ur_pairs_free(p);
}

Test(text, real_tinyshakespeare) {
    char path[512];
    if (!ur_test_data_path("tinyshakespeare/input.txt", path, sizeof path))
        cr_skip_test("tinyshakespeare/input.txt not found; skipped");
    ur_text *t;
    cr_assert_eq(ur_text_read_file(path, 0, &t), UR_OK, "%s", ur_last_error());
    cr_expect_eq(t->len, 1115394);
    ur_char_corpus *c;
    cr_assert_eq(ur_char_corpus_make(t, 0.9, &c), UR_OK);
    cr_expect_eq(c->cs.size, 65);
    cr_expect_eq(c->n_train, 1003854);
    ur_char_corpus_free(c);
    ur_text_free(t);
}

/* ======================= batches ======================= */

Test(batch, buckets_hold_similar_lengths_once_each) {
    int lens[10] = {5, 1, 3, 5, 2, 8, 1, 3, 9, 4};
    ur_rng rng;
    ur_rng_seed(&rng, 42);
    ur_batches *b;
    cr_assert_eq(ur_bucket_batches(lens, 10, 3, &rng, &b), UR_OK);
    cr_assert_eq(b->n_batches, 4);
    cr_expect_eq(b->n, 10);
    cr_expect_eq(b->offset[0], 0);
    cr_expect_eq(b->offset[4], 10);
    int seen[10] = {0};
    /* sorted lengths 1 1 2 | 3 3 4 | 5 5 8 | 9: each batch is one of these chunks */
    const int chunks[4][3] = {{1, 1, 2}, {3, 3, 4}, {5, 5, 8}, {9, -1, -1}};
    for (int k = 0; k < 4; k++) {
        int got[3] = {-1, -1, -1}, m = b->offset[k + 1] - b->offset[k];
        for (int i = 0; i < m; i++) {
            int idx = b->index[b->offset[k] + i];
            seen[idx]++;
            got[i] = lens[idx];
        }
        for (int i = 1; i < m; i++) cr_expect_leq(got[i - 1], got[i], "sorted inside a batch");
        int c = got[0] == 1 ? 0 : got[0] == 3 ? 1 : got[0] == 5 ? 2 : 3;
        cr_expect_eq(memcmp(got, chunks[c], sizeof got), 0, "batch %d", k);
    }
    for (int i = 0; i < 10; i++) cr_expect_eq(seen[i], 1, "index %d", i);
    /* the same seed gives the same batches; other seeds shuffle the order */
    ur_batches *b2;
    int differs = 0;
    ur_rng_seed(&rng, 42);
    cr_assert_eq(ur_bucket_batches(lens, 10, 3, &rng, &b2), UR_OK);
    cr_expect_eq(memcmp(b->index, b2->index, sizeof(int) * 10), 0);
    ur_batches_free(b2);
    for (uint64_t seed = 1; seed < 6; seed++) {
        ur_rng_seed(&rng, seed);
        cr_assert_eq(ur_bucket_batches(lens, 10, 3, &rng, &b2), UR_OK);
        differs |= memcmp(b->index, b2->index, sizeof(int) * 10) != 0;
        ur_batches_free(b2);
    }
    cr_expect(differs);
    ur_batches_free(b);
    cr_assert_eq(ur_bucket_batches(NULL, 0, 3, &rng, &b), UR_OK);
    cr_expect(b->n_batches == 0 && b->offset[0] == 0);
    ur_batches_free(b);
    EXPECT_ERR(ur_bucket_batches(lens, 10, 0, &rng, &b), UR_ERR_ARG, "batch_size = 0");
}

Test(batch, pad_time_major_with_mask) {
    int s0[] = {1, 2, 3}, s1[] = {4}, s2[] = {5, 6, 7, 8, 9};
    const int *seqs[3] = {s0, s1, s2};
    int lens[3] = {3, 1, 5};
    ur_padded *p;
    cr_assert_eq(ur_batch_pad(seqs, lens, NULL, 3, 4, 0, &p), UR_OK);
    cr_assert(p->T == 4 && p->B == 3);
    int ids[12] = {1, 4, 5, 2, 0, 6, 3, 0, 7, 0, 0, 8};
    float mask[12] = {1, 1, 1, 1, 0, 1, 1, 0, 1, 0, 0, 1};
    for (int i = 0; i < 12; i++) {
        cr_expect_eq(p->ids[i], ids[i], "ids[%d]", i);
        cr_expect_eq(p->mask[i], (ur_real)mask[i], "mask[%d]", i);
    }
    cr_expect(p->lens[0] == 3 && p->lens[1] == 1 && p->lens[2] == 4);
    ur_padded_free(p);
    int pick[2] = {1, 0};
    cr_assert_eq(ur_batch_pad(seqs, lens, pick, 2, 0, -1, &p), UR_OK);
    cr_assert(p->T == 3 && p->B == 2);
    int ids2[6] = {4, 1, -1, 2, -1, 3};
    for (int i = 0; i < 6; i++) cr_expect_eq(p->ids[i], ids2[i], "ids[%d]", i);
    ur_padded_free(p);
    int zero[1] = {0};
    cr_assert_eq(ur_batch_pad(seqs, zero, NULL, 1, 0, 7, &p), UR_OK);
    cr_expect(p->T == 1 && p->ids[0] == 7 && p->mask[0] == 0);
    ur_padded_free(p);
    int bad[3] = {3, -2, 5};
    EXPECT_ERR(ur_batch_pad(seqs, bad, NULL, 3, 0, 0, &p), UR_ERR_ARG, "sequence 1 has length -2");
}

static ur_status run_batch(void) {
    int lens[7] = {3, 1, 2, 3, 1, 2, 3}, s[3] = {1, 2, 3};
    const int *seqs[7] = {s, s, s, s, s, s, s};
    ur_rng rng;
    ur_rng_seed(&rng, 1);
    ur_batches *b;
    ur_padded *p;
    ur_status st = ur_bucket_batches(lens, 7, 2, &rng, &b);
    if (st != UR_OK) return st;
    st = ur_batch_pad(seqs, lens, b->index + b->offset[0], b->offset[1] - b->offset[0], 0, 0, &p);
    ur_padded_free(p);
    ur_batches_free(b);
    return st;
}

Test(batch, allocation_failures) { check_nomem(run_batch, "batch"); }
