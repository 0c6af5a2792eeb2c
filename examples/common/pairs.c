/* pairs.c - the two tasks of seq2seq as datasets of token-id pairs: digit strings
 * to reverse, and English -> French sentence pairs with a fixed held-out split. */
#include "pairs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_TOKENS = 64, SPLIT_SEED = 12345 };

void s2s_dataset_free(s2s_dataset *d) {
    for (int i = 0; i < d->n; i++) {
        free(d->ex[i].src);
        free(d->ex[i].tgt);
    }
    free(d->ex);
    free(d->src);
    free(d->tgt);
    free(d->src_len);
    free(d->tgt_len);
    memset(d, 0, sizeof *d);
}

static int dataset_views(s2s_dataset *d) {
    size_t n = d->n > 0 ? (size_t)d->n : 1;
    d->src = malloc(n * sizeof *d->src);
    d->tgt = malloc(n * sizeof *d->tgt);
    d->src_len = malloc(n * sizeof *d->src_len);
    d->tgt_len = malloc(n * sizeof *d->tgt_len);
    if (!d->src || !d->tgt || !d->src_len || !d->tgt_len) return 0;
    for (int i = 0; i < d->n; i++) {
        d->src[i] = d->ex[i].src;
        d->tgt[i] = d->ex[i].tgt;
        d->src_len[i] = d->ex[i].src_len;
        d->tgt_len[i] = d->ex[i].tgt_len;
    }
    return 1;
}

/* Ids of the tokens of s (word ids; unknown words become <unk>). */
static int *encode(const ur_vocab *v, const ur_tokens *tk, int *len) {
    int n = tk->n < MAX_TOKENS ? tk->n : MAX_TOKENS;
    int *ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
    for (int i = 0; ids && i < n; i++) ids[i] = ur_vocab_id(v, tk->tok[i]);
    *len = n;
    return ids;
}

/* A digit string of up to 18 digits as one number, after a leading 1 ("042" -> 1042). */
static uint64_t digits_key(const int *ids, int n, const ur_vocab *v) {
    uint64_t k = 1;
    for (int j = 0; j < n; j++) k = 10 * k + (uint64_t)(ur_vocab_string(v, ids[j])[0] - '0');
    return k;
}

static int key_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Digit strings of 1..max_digits digits, each token one digit; the target reversed.
 * A string that is also in `avoid` (the training set, when drawing the held-out set)
 * is drawn again, up to 100 times; *n_seen counts those left (strings of more than 18
 * digits are not checked: they almost never repeat). */
static int make_reverse(s2s_dataset *d, int n, int max_digits, uint64_t seed, const ur_vocab *sv, const ur_vocab *tv,
                        const s2s_dataset *avoid, int *n_seen) {
    ur_rng rng;
    ur_rng_seed(&rng, seed);
    d->n = n;
    d->ex = calloc((size_t)n, sizeof *d->ex);
    int check = avoid && avoid->n > 0 && max_digits <= 18;
    uint64_t *seen = check ? malloc((size_t)avoid->n * sizeof *seen) : NULL;
    if (!d->ex || (check && !seen)) {
        free(seen);
        return 0;
    }
    for (int i = 0; check && i < avoid->n; i++) seen[i] = digits_key(avoid->src[i], avoid->src_len[i], sv);
    if (check) qsort(seen, (size_t)avoid->n, sizeof *seen, key_cmp);
    if (n_seen) *n_seen = 0;
    for (int i = 0; i < n; i++) {
        s2s_example *e = &d->ex[i];
        e->src = malloc((size_t)max_digits * sizeof(int));
        e->tgt = malloc((size_t)max_digits * sizeof(int));
        if (!e->src || !e->tgt) {
            free(seen);
            return 0;
        }
        int again = 1;
        for (int tries = 0; again && tries < 100; tries++) {
            e->src_len = e->tgt_len = 1 + (int)ur_rng_below(&rng, (uint32_t)max_digits);
            for (int j = 0; j < e->src_len; j++) {
                char digit[2] = {(char)('0' + ur_rng_below(&rng, 10)), 0};
                e->src[j] = ur_vocab_id(sv, digit);
                e->tgt[e->src_len - 1 - j] = ur_vocab_id(tv, digit);
            }
            uint64_t key = check ? digits_key(e->src, e->src_len, sv) : 0;
            again = check && bsearch(&key, seen, (size_t)avoid->n, sizeof *seen, key_cmp) != NULL;
        }
        if (n_seen) *n_seen += again;
        e->group = i;
    }
    free(seen);
    return dataset_views(d);
}

/* The eng-fra split: pairs grouped by English sentence, groups shuffled with a fixed
 * seed, the last 10% of the groups held out. held[i] = 1 for a held-out pair. */
static void split_pairs(const ur_pairs *p, int *group, int *held) {
    int n_groups = 0;
    for (int i = 0; i < p->n; i++) { /* pairs of one sentence are adjacent in the file */
        if (i == 0 || strcmp(p->src[i], p->src[i - 1])) n_groups++;
        group[i] = n_groups - 1;
    }
    int *perm = malloc((size_t)n_groups * sizeof *perm);
    ur_rng rng;
    ur_rng_seed(&rng, SPLIT_SEED);
    for (int g = 0; perm && g < n_groups; g++) perm[g] = g;
    for (int g = n_groups - 1; perm && g > 0; g--) {
        int j = (int)ur_rng_below(&rng, (uint32_t)g + 1), x = perm[g];
        perm[g] = perm[j];
        perm[j] = x;
    }
    int n_train = n_groups - n_groups / 10;
    char *is_held = calloc((size_t)n_groups, 1);
    for (int g = n_train; perm && is_held && g < n_groups; g++) is_held[perm[g]] = 1;
    for (int i = 0; i < p->n; i++) held[i] = is_held ? is_held[group[i]] : 0;
    free(perm);
    free(is_held);
}

/* Tokenised sides of every pair (NULL entries on failure). */
static ur_tokens **tokenize_all(const ur_pairs *p, int side) {
    ur_tokens **t = calloc((size_t)p->n, sizeof *t);
    for (int i = 0; t && i < p->n; i++) {
        const char *s = side ? p->tgt[i] : p->src[i];
        if (ur_tokenize(s, strlen(s), &t[i]) != UR_OK) t[i] = NULL;
    }
    return t;
}

static void tokens_free_all(ur_tokens **t, int n) {
    for (int i = 0; t && i < n; i++) ur_tokens_free(t[i]);
    free(t);
}

int s2s_load_data(const s2s_task *task, uint64_t seed, ur_vocab **sv, ur_vocab **tv, s2s_dataset *train,
                  s2s_dataset *held, int *n_seen) {
    *n_seen = 0;
    if (!strcmp(task->name, "reverse")) { /* the ten digits on both sides */
        if (!*sv) *sv = ur_vocab_new(S2S_SRC_SPECIALS);
        if (!*tv) *tv = ur_vocab_new(S2S_TGT_SPECIALS);
        for (char dgt = '0'; *sv && *tv && dgt <= '9'; dgt++) {
            ur_vocab_add(*sv, (char[]){dgt, 0});
            ur_vocab_add(*tv, (char[]){dgt, 0});
        }
        int ok = *sv && *tv && make_reverse(train, task->n_train, task->max_digits, seed, *sv, *tv, NULL, NULL) &&
                 make_reverse(held, 1000, task->max_digits, SPLIT_SEED, *sv, *tv, train, n_seen);
        if (!ok) fprintf(stderr, "seq2seq: out of memory for the digit strings\n");
        return ok;
    }
    ur_pairs *p = NULL;
    if (ur_pairs_read_file(task->data, &p) != UR_OK) {
        fprintf(stderr, "seq2seq: %s\n", ur_last_error());
        return 0;
    }
    ur_tokens **st = tokenize_all(p, 0), **tt = tokenize_all(p, 1);
    int *group = malloc((size_t)p->n * sizeof *group), *is_held = malloc((size_t)p->n * sizeof *is_held);
    int ok = st && tt && group && is_held, bad = -1;
    for (int i = 0; ok && i < p->n && bad < 0; i++) {
        ok = st[i] && tt[i];
        if (ok && st[i]->n == 0) bad = i;
    }
    if (bad >= 0) { /* a column of spaces: blank lines are skipped, so count pairs, not lines */
        fprintf(stderr, "seq2seq: %s: pair %d ('%s') has no source words\n", task->data, bad + 1, p->src[bad]);
        ok = 0;
    }
    if (ok) split_pairs(p, group, is_held);
    if (ok && !*sv) { /* the words of the training side */
        ur_vocab *cs = ur_vocab_new(0), *ct = ur_vocab_new(0);
        for (int i = 0; cs && ct && i < p->n; i++)
            for (int side = 0; side < 2 && !is_held[i]; side++) {
                const ur_tokens *tk = side ? tt[i] : st[i];
                for (int j = 0; j < tk->n; j++) ur_vocab_add(side ? ct : cs, tk->tok[j]);
            }
        ok = cs && ct && ur_vocab_build(cs, 1, S2S_SRC_SPECIALS, sv) == UR_OK &&
             ur_vocab_build(ct, 1, S2S_TGT_SPECIALS, tv) == UR_OK;
        ur_vocab_free(cs);
        ur_vocab_free(ct);
    }
    for (int h = 0; ok && h < 2; h++) {
        s2s_dataset *d = h ? held : train;
        d->ex = calloc((size_t)p->n, sizeof *d->ex);
        ok = d->ex != NULL;
        for (int i = 0; ok && i < p->n; i++) {
            if (is_held[i] != h) continue;
            s2s_example *e = &d->ex[d->n++];
            e->src = encode(*sv, st[i], &e->src_len);
            e->tgt = encode(*tv, tt[i], &e->tgt_len);
            e->group = group[i];
            ok = e->src && e->tgt;
        }
        ok = ok && dataset_views(d);
    }
    if (ok && (train->n == 0 || held->n == 0)) {
        fprintf(stderr, "seq2seq: %s: %d pairs are too few: 10%% of the distinct sources are held out, "
                        "and both parts need some\n", task->data, p->n);
        ok = 0;
    } else if (!ok && bad < 0) {
        fprintf(stderr, "seq2seq: %s: out of memory\n", task->data);
    }
    tokens_free_all(st, p->n);
    tokens_free_all(tt, p->n);
    free(group);
    free(is_held);
    ur_pairs_free(p);
    return ok;
}
