/* data_generate.c - a synthetic play for character-level language models.
 *
 * The text looks like a small play: a speaker's name in capitals and a colon, then
 * one to four sentences, one per line, then a blank line. Sentences come from a
 * small grammar with structure a model can learn: determiners agree with their noun
 * ("a king", "these kings"), verbs with their subject ("the king sees", "the kings
 * see"), "a" becomes "an" before a vowel, questions invert with "does"/"do" and end
 * in '?'. The names (made of random syllables) and all choices come from the seed.
 */
#include "data_internal.h"

#include <ctype.h>
#include <string.h>

enum { N_NAMES = 10, NAME_MAX = 24, PARA_MAX = 2048 };

#define COUNT(a) ((uint32_t)(sizeof(a) / sizeof((a)[0])))

static const char *const nouns[] = {"king",  "queen", "knight", "river", "stone",  "horse", "sword", "castle",
                                    "garden", "letter", "ship",  "crown", "friend", "tower", "lamp",  "field"};
static const char *const adjectives[] = {"old",  "young",  "bright", "dark", "gentle",
                                         "proud", "silent", "golden", "cold", "noble"};
/* transitive verbs: base form, third person singular */
static const char *const verbs_t[][2] = {{"see", "sees"},         {"hold", "holds"},     {"love", "loves"},
                                         {"find", "finds"},       {"keep", "keeps"},     {"carry", "carries"},
                                         {"watch", "watches"},    {"follow", "follows"}, {"praise", "praises"},
                                         {"seek", "seeks"}};
static const char *const verbs_i[][2] = {{"sleep", "sleeps"}, {"wait", "waits"}, {"sing", "sings"},
                                         {"fall", "falls"},   {"rise", "rises"}, {"weep", "weeps"}};
static const char *const preps[] = {"in", "by", "near", "under", "beyond", "with"};
static const char *const adverbs[] = {"slowly", "again", "tonight", "gladly", "alone"};
static const char *const det_sg[] = {"the", "a", "every", "this", "my"};
static const char *const det_pl[] = {"the", "some", "these", "all the", "my"};

/* A paragraph under construction; writes past PARA_MAX are dropped (never reached). */
typedef struct para {
    char buf[PARA_MAX];
    size_t len;
    ur_rng *rng;
    char names[N_NAMES][NAME_MAX];
} para;

static void put(para *p, const char *s) {
    size_t n = strlen(s);
    if (p->len + n >= PARA_MAX) return;
    memcpy(p->buf + p->len, s, n);
    p->len += n;
}

/* A word after a space (or none at the start of a line). */
static void word(para *p, const char *w) {
    if (p->len > 0 && p->buf[p->len - 1] != '\n') put(p, " ");
    put(p, w);
}

static const char *pick(para *p, const char *const *list, uint32_t n) { return list[ur_rng_below(p->rng, n)]; }

/* A name of two or three random syllables, capitalised. */
static void make_name(ur_rng *r, char *out) {
    static const char *const onsets[] = {"b", "d", "f", "g", "l", "m", "n", "r", "s", "t", "v", "th", "c"};
    static const char *const vowels[] = {"a", "e", "i", "o", "u", "ia", "ou"};
    static const char *const codas[] = {"", "", "n", "r", "s", "l"};
    out[0] = '\0';
    int syllables = 2 + (int)ur_rng_below(r, 2);
    for (int i = 0; i < syllables; i++) {
        strcat(out, onsets[ur_rng_below(r, COUNT(onsets))]);
        strcat(out, vowels[ur_rng_below(r, COUNT(vowels))]);
    }
    strcat(out, codas[ur_rng_below(r, COUNT(codas))]);
    out[0] = (char)toupper((unsigned char)out[0]);
}

/* "a" or "an" for the next word. */
static void article(para *p, const char *next) { word(p, strchr("aeiou", next[0]) ? "an" : "a"); }

/* A noun phrase; plural adds "s". Returns nothing: the caller knows the number. */
static void noun_phrase(para *p, int plural, int allow_name) {
    if (!plural && allow_name && ur_rng_below(p->rng, 3) == 0) {
        word(p, p->names[ur_rng_below(p->rng, N_NAMES)]);
        return;
    }
    const char *det = plural ? pick(p, det_pl, COUNT(det_pl)) : pick(p, det_sg, COUNT(det_sg));
    const char *adj = ur_rng_below(p->rng, 2) ? pick(p, adjectives, COUNT(adjectives)) : NULL;
    const char *noun = pick(p, nouns, COUNT(nouns));
    if (strcmp(det, "a") == 0) article(p, adj ? adj : noun);
    else word(p, det);
    if (adj) word(p, adj);
    word(p, noun);
    if (plural) put(p, "s");
}

/* Capitalises the first letter of the sentence that starts at offset `start`. */
static void capitalise(para *p, size_t start) { p->buf[start] = (char)toupper((unsigned char)p->buf[start]); }

static void statement(para *p) {
    int plural = (int)ur_rng_below(p->rng, 2);
    noun_phrase(p, plural, 1);
    if (ur_rng_below(p->rng, 3) == 0) {
        word(p, verbs_i[ur_rng_below(p->rng, COUNT(verbs_i))][!plural]);
        if (ur_rng_below(p->rng, 2)) word(p, pick(p, adverbs, COUNT(adverbs)));
    } else {
        word(p, verbs_t[ur_rng_below(p->rng, COUNT(verbs_t))][!plural]);
        noun_phrase(p, (int)ur_rng_below(p->rng, 2), 1);
    }
    if (ur_rng_below(p->rng, 3) == 0) {
        word(p, pick(p, preps, COUNT(preps)));
        noun_phrase(p, 0, 0);
    }
}

static void sentence(para *p) {
    size_t start = p->len;
    uint32_t kind = ur_rng_below(p->rng, 6);
    if (kind == 0) { /* question */
        int plural = (int)ur_rng_below(p->rng, 2);
        word(p, plural ? "do" : "does");
        noun_phrase(p, plural, 1);
        word(p, verbs_t[ur_rng_below(p->rng, COUNT(verbs_t))][0]);
        noun_phrase(p, (int)ur_rng_below(p->rng, 2), 1);
        put(p, "?");
    } else if (kind == 1) { /* two names act together */
        word(p, p->names[ur_rng_below(p->rng, N_NAMES)]);
        word(p, "and");
        word(p, p->names[ur_rng_below(p->rng, N_NAMES)]);
        word(p, verbs_t[ur_rng_below(p->rng, COUNT(verbs_t))][0]);
        noun_phrase(p, 0, 0);
        put(p, ".");
    } else if (kind == 2) { /* reported speech */
        word(p, p->names[ur_rng_below(p->rng, N_NAMES)]);
        word(p, "says that");
        statement(p);
        put(p, ",");
        word(p, "and");
        statement(p);
        put(p, ".");
    } else {
        statement(p);
        put(p, ur_rng_below(p->rng, 5) == 0 ? "!" : ".");
    }
    capitalise(p, start);
    put(p, "\n");
}

/* "NAME:\n", one to four sentences, "\n". */
static void paragraph(para *p) {
    p->len = 0;
    const char *speaker = p->names[ur_rng_below(p->rng, N_NAMES / 2)];
    for (const char *c = speaker; *c; c++) {
        char up[2] = {(char)toupper((unsigned char)*c), '\0'};
        put(p, up);
    }
    put(p, ":\n");
    int n = 1 + (int)ur_rng_below(p->rng, 4);
    for (int i = 0; i < n; i++) sentence(p);
    put(p, "\n");
}

ur_status ur_text_generate(uint64_t seed, size_t n_bytes, ur_text **out) {
    if (!out) return ur_set_error(UR_ERR_ARG, "ur_text_generate: out is NULL");
    *out = NULL;
    if (n_bytes == 0) n_bytes = 262144;
    if (n_bytes < 1024 || n_bytes > UR_TEXT_MAX_BYTES)
        return ur_set_error(UR_ERR_ARG, "ur_text_generate: n_bytes %zu is not in [1024, 2^30]", n_bytes);
    ur_text *t = ur_malloc(sizeof *t);
    char *data = ur_malloc(n_bytes + 1);
    para *p = ur_malloc(sizeof *p);
    if (!t || !data || !p) {
        ur_free(t);
        ur_free(data);
        ur_free(p);
        return ur_data_nomem("ur_text_generate");
    }
    ur_rng rng;
    ur_rng_seed(&rng, seed);
    p->rng = &rng;
    for (int i = 0; i < N_NAMES; i++) make_name(&rng, p->names[i]);
    size_t len = 0;
    for (;;) {
        paragraph(p);
        if (len + p->len > n_bytes) break;
        memcpy(data + len, p->buf, p->len);
        len += p->len;
    }
    ur_free(p);
    data[len] = '\0';
    t->data = data;
    t->len = len;
    *out = t;
    return UR_OK;
}
