/* ur_bio.h - named entities in the B-I-O scheme: the tag set, a reader for
 * CoNLL-style files, entity spans and their scores as conlleval counts them.
 *
 * Tags: O, then B-X and I-X for X in PER, ORG, LOC (ids below). An entity is a run
 * of tokens that starts at B-X (or at an I-X that does not continue an X entity, as
 * conlleval reads it) and goes on over the following I-X. A prediction scores when
 * its span and type both equal a gold entity's (exact match).
 */
#ifndef UR_BIO_H
#define UR_BIO_H

#include "ur_data.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ur_bio_tag {
    UR_BIO_O = 0,
    UR_BIO_B_PER, UR_BIO_I_PER,
    UR_BIO_B_ORG, UR_BIO_I_ORG,
    UR_BIO_B_LOC, UR_BIO_I_LOC,
    UR_BIO_COUNT /* 7 */
} ur_bio_tag;

/* "O", "B-PER", ...; NULL when id is out of range. */
const char *ur_bio_name(int id);
/* Id of the len bytes at tag, or -1 when it is not one of the seven. */
int ur_bio_id(const char *tag, size_t len);
/* 1 when tag `to` may follow `from` (from = -1: at the start of a sentence):
 * everything except an I-X that does not follow B-X or I-X. */
int ur_bio_allowed(int from, int to);
/* B-X for I-X, the tag itself otherwise. */
int ur_bio_begin_of(int tag);

/* Counts of the reader: tags that were not one of the seven (read as O; "B-O" and
 * the like in the data), and I-X tags that did not continue an X entity and were
 * turned into B-X (the entities are unchanged by that). */
typedef struct ur_iob_stats {
    size_t n_irregular;
    size_t n_repaired;
} ur_iob_stats;

/* Parses "ID<TAB>FORM<TAB>TAG[<TAB>more]" lines, '#' comments, blank lines between
 * sentences, into sentences of words and ur_bio_tag ids (free with
 * ur_conllu_free). stats may be NULL. Errors as ur_conllu_parse's. */
ur_status ur_iob_parse(const char *buf, size_t len, const char *name_for_errors, ur_conllu **out,
                       ur_iob_stats *stats);
/* Reads and parses a file (errors name the path). */
ur_status ur_iob_read_file(const char *path, ur_conllu **out, ur_iob_stats *stats);

/* An entity: tokens [start, end) of type X (1 PER, 2 ORG, 3 LOC). */
typedef struct ur_bio_span {
    int start, end, type;
} ur_bio_span;

/* The entities of tags[0..n) in order; writes at most max of them to out (may be
 * NULL) and returns how many there are. Tags outside 0..UR_BIO_COUNT-1 count as O. */
int ur_bio_spans(const int *tags, int n, ur_bio_span *out, int max);

/* Entity counts over a corpus: add one sentence at a time. */
typedef struct ur_bio_score {
    long gold, predicted, correct; /* entities in the gold tags, in the predictions, in both */
    long invalid;                  /* predicted tags that break the scheme (ur_bio_allowed) */
    long tokens;
} ur_bio_score;

/* Adds a sentence's gold and predicted tags (n each) to s. */
void ur_bio_score_add(ur_bio_score *s, const int *gold, const int *pred, int n);
/* Precision, recall and F1 in percent (0 when undefined). */
double ur_bio_precision(const ur_bio_score *s);
double ur_bio_recall(const ur_bio_score *s);
double ur_bio_f1(const ur_bio_score *s);

#ifdef __cplusplus
}
#endif
#endif
