/* B-I-O named entities: the reader (irregular tags, repairs, errors), entity spans
 * and exact-match scores as conlleval counts them, and the real data's counts. */
#include <criterion/criterion.h>
#include <string.h>

#include "support.h"
#include "unroll.h"

enum { O = UR_BIO_O, BP = UR_BIO_B_PER, IP = UR_BIO_I_PER, BO = UR_BIO_B_ORG, IO = UR_BIO_I_ORG,
       BL = UR_BIO_B_LOC, IL = UR_BIO_I_LOC };

Test(bio, names_and_ids_round_trip) {
    for (int i = 0; i < UR_BIO_COUNT; i++) cr_assert_eq(ur_bio_id(ur_bio_name(i), strlen(ur_bio_name(i))), i);
    cr_assert_eq(ur_bio_id("B-MISC", 6), -1);
    cr_assert_null(ur_bio_name(UR_BIO_COUNT));
    cr_assert(ur_bio_allowed(-1, BP) && !ur_bio_allowed(-1, IP) && !ur_bio_allowed(O, IL));
    cr_assert(ur_bio_allowed(BL, IL) && ur_bio_allowed(IL, IL) && !ur_bio_allowed(BP, IO));
    cr_assert_eq(ur_bio_begin_of(IO), BO);
    cr_assert_eq(ur_bio_begin_of(O), O);
}

Test(bio, reader_maps_irregular_tags_to_o_and_repairs_inside_tags) {
    const char *text = "# sent_id = 1\n"
                       "1\tJohn\tB-PER\t-\t-\n2\tSmith\tI-PER\n3\tin\tB-O\n4\tNew\tI-LOC\n5\tYork\tI-LOC\n\n"
                       "1\tHi\tO\n2\tthere\tB-MISC\n";
    ur_conllu *c;
    ur_iob_stats st;
    cr_assert_eq(ur_iob_parse(text, strlen(text), "x.iob2", &c, &st), UR_OK, "%s", ur_last_error());
    cr_assert_eq(c->n_sentences, 2);
    cr_assert_eq(c->n_tokens, 7);
    int want[5] = {BP, IP, O, BL, IL};
    for (int i = 0; i < 5; i++) cr_assert_eq(c->sents[0].tags[i], want[i], "token %d", i);
    cr_assert_str_eq(c->sents[0].words[3], "New");
    cr_assert_eq(c->sents[1].tags[1], O);
    cr_assert_eq(st.n_irregular, 2, "B-O and B-MISC");
    cr_assert_eq(st.n_repaired, 1, "I-LOC after O became B-LOC");
    ur_conllu_free(c);
}

static void iob_error(const char *text, const char *msg) {
    ur_conllu *c = (ur_conllu *)1;
    cr_assert_eq(ur_iob_parse(text, strlen(text), "bad.iob2", &c, NULL), UR_ERR_FORMAT);
    cr_assert_null(c);
    cr_assert_str_eq(ur_last_error(), msg);
}

Test(bio, reader_errors_name_the_file_line_and_problem) {
    iob_error("1\tx\n", "ur_iob_parse: bad.iob2:1: expected at least 3 tab-separated columns, found 2");
    iob_error("1\tx\tO\n3\ty\tO\n", "ur_iob_parse: bad.iob2:2: ID 3 out of order (expected 2)");
    iob_error("1-2\tx\tO\n", "ur_iob_parse: bad.iob2:1: bad ID '1-2'");
    iob_error("1\tx\t\n", "ur_iob_parse: bad.iob2:1: empty tag");
    iob_error("1\t\tO\n", "ur_iob_parse: bad.iob2:1: empty FORM");
    ur_conllu *c;
    cr_assert_eq(ur_iob_read_file("/nonexistent/x.iob2", &c, NULL), UR_ERR_IO);
    cr_assert(strstr(ur_last_error(), "/nonexistent/x.iob2"), "%s", ur_last_error());
}

Test(bio, spans_follow_conlleval) {
    /* B-PER I-PER | I-ORG (starts an ORG) | B-LOC B-LOC | I-PER after LOC starts a PER */
    int tags[8] = {BP, IP, O, IO, BL, BL, IP, IP};
    ur_bio_span sp[8];
    cr_assert_eq(ur_bio_spans(tags, 8, sp, 8), 5);
    int want[5][3] = {{0, 2, 1}, {3, 4, 2}, {4, 5, 3}, {5, 6, 3}, {6, 8, 1}};
    for (int i = 0; i < 5; i++)
        cr_assert(sp[i].start == want[i][0] && sp[i].end == want[i][1] && sp[i].type == want[i][2], "span %d", i);
    cr_assert_eq(ur_bio_spans(tags, 8, NULL, 0), 5);
}

Test(bio, scores_count_exact_span_and_type) {
    int gold[8] = {BP, IP, O, BO, IO, O, BL, O};
    int pred[8] = {BP, IP, O, BO, O, O, BP, IL}; /* PER right, ORG too short, LOC as PER, stray I-LOC */
    ur_bio_score s = {0};
    ur_bio_score_add(&s, gold, pred, 8);
    cr_assert_eq(s.gold, 3);
    cr_assert_eq(s.predicted, 4, "PER, ORG, PER, LOC (the I-LOC after B-PER starts one)");
    cr_assert_eq(s.correct, 1);
    cr_assert_eq(s.invalid, 1);
    cr_assert_float_eq(ur_bio_precision(&s), 25.0, 1e-12);
    cr_assert_float_eq(ur_bio_recall(&s), 100.0 / 3, 1e-12);
    cr_assert_float_eq(ur_bio_f1(&s), 2 * 25.0 * (100.0 / 3) / (25.0 + 100.0 / 3), 1e-12);
    ur_bio_score_add(&s, gold, gold, 8);
    cr_assert_eq(s.correct, 4);
    cr_assert_eq(s.tokens, 16);
}

Test(bio, real_data_counts_match_its_readme) {
    char buf[512];
    const char *dev = ur_test_data_path("uner-en-ewt/en_ewt-ud-dev.iob2", buf, sizeof buf);
    if (!dev) cr_skip_test("uner-en-ewt/en_ewt-ud-dev.iob2 is absent: skipped");
    ur_conllu *c;
    ur_iob_stats st;
    cr_assert_eq(ur_iob_read_file(dev, &c, &st), UR_OK, "%s", ur_last_error());
    cr_assert_eq(c->n_sentences, 2001);
    cr_assert_eq(c->n_tokens, 25149);
    long entities = 0;
    for (int k = 0; k < c->n_sentences; k++) entities += ur_bio_spans(c->sents[k].tags, c->sents[k].len, NULL, 0);
    cr_assert_eq(entities, 966, "got %ld entities (%zu irregular tags, %zu repaired)", entities, st.n_irregular,
                 st.n_repaired);
    ur_conllu_free(c);
}
