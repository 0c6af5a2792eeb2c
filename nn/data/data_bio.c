/* data_bio.c - the B-I-O tag set, entity spans and their exact-match scores. */
#include "data_internal.h"

#include <string.h>

static const char *const names[UR_BIO_COUNT] = {"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"};

const char *ur_bio_name(int id) { return id >= 0 && id < UR_BIO_COUNT ? names[id] : NULL; }

int ur_bio_id(const char *tag, size_t len) {
    if (!tag) return -1;
    for (int i = 0; i < UR_BIO_COUNT; i++)
        if (strlen(names[i]) == len && memcmp(names[i], tag, len) == 0) return i;
    return -1;
}

/* ids: B-X = 2X - 1, I-X = 2X for type X in 1..3 */
static int type_of(int tag) { return tag > 0 && tag < UR_BIO_COUNT ? (tag + 1) / 2 : 0; }
static int is_inside(int tag) { return tag > 0 && tag < UR_BIO_COUNT && tag % 2 == 0; }

int ur_bio_allowed(int from, int to) { return !is_inside(to) || (from >= 0 && type_of(from) == type_of(to)); }

int ur_bio_begin_of(int tag) { return is_inside(tag) ? tag - 1 : tag; }

/* The next entity at or after *at: 1 and *span, or 0 when there is none. */
static int next_span(const int *tags, int n, int *at, ur_bio_span *span) {
    for (int i = *at; i < n; i++) {
        int x = type_of(tags[i]);
        if (!x) continue;
        int j = i + 1; /* the entity goes on over I-X of the same type */
        while (j < n && is_inside(tags[j]) && type_of(tags[j]) == x) j++;
        *span = (ur_bio_span){i, j, x};
        *at = j;
        return 1;
    }
    *at = n;
    return 0;
}

int ur_bio_spans(const int *tags, int n, ur_bio_span *out, int max) {
    int count = 0, at = 0;
    ur_bio_span sp;
    while (tags && next_span(tags, n, &at, &sp)) {
        if (out && count < max) out[count] = sp;
        count++;
    }
    return count;
}

void ur_bio_score_add(ur_bio_score *s, const int *gold, const int *pred, int n) {
    if (!s || !gold || !pred || n <= 0) return;
    s->tokens += n;
    for (int i = 0; i < n; i++) s->invalid += !ur_bio_allowed(i ? pred[i - 1] : -1, pred[i]);
    /* both span lists are in order and never overlap: merge them by start */
    int ga = 0, pa = 0;
    ur_bio_span g, p;
    int hg = next_span(gold, n, &ga, &g), hp = next_span(pred, n, &pa, &p);
    s->gold += hg;
    s->predicted += hp;
    while (hg && hp) {
        int adv_g = g.start <= p.start, adv_p = p.start <= g.start;
        if (adv_g && adv_p) s->correct += g.end == p.end && g.type == p.type;
        if (adv_g && (hg = next_span(gold, n, &ga, &g))) s->gold++;
        if (adv_p && (hp = next_span(pred, n, &pa, &p))) s->predicted++;
    }
    while (hg && (hg = next_span(gold, n, &ga, &g))) s->gold++;
    while (hp && (hp = next_span(pred, n, &pa, &p))) s->predicted++;
}

double ur_bio_precision(const ur_bio_score *s) { return s && s->predicted ? 100.0 * s->correct / s->predicted : 0; }
double ur_bio_recall(const ur_bio_score *s) { return s && s->gold ? 100.0 * s->correct / s->gold : 0; }
double ur_bio_f1(const ur_bio_score *s) {
    double p = ur_bio_precision(s), r = ur_bio_recall(s);
    return p + r > 0 ? 2 * p * r / (p + r) : 0;
}
