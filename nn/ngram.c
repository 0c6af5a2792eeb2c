/* ngram.c - interpolated Kneser-Ney n-gram model (see ur_ngram.h).
 *
 * A k-gram is a key of k ids packed one byte each (id + 1, so no key is 0). Each
 * order has a hash table of k-gram counts and one of context totals, keyed by the
 * (k-1)-gram h: c_k(h .) and n_k(h .). */
#include "ur_ngram.h"

#include <math.h>
#include <string.h>

/* ---- a hash table from nonzero 64-bit keys to two counts ---- */

typedef struct table {
    uint64_t *key;
    int64_t *a, *b; /* a count and, for contexts, a number of distinct successors */
    size_t cap, n;  /* cap is a power of 2, kept at least twice n */
} table;

static uint64_t mix(uint64_t x) {
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ULL;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dULL;
    return x ^ (x >> 33);
}

static int table_init(table *t, size_t cap) {
    t->cap = cap, t->n = 0;
    t->key = ur_calloc(cap, sizeof *t->key);
    t->a = ur_calloc(cap, sizeof *t->a);
    t->b = ur_calloc(cap, sizeof *t->b);
    return t->key && t->a && t->b;
}

static void table_free(table *t) {
    ur_free(t->key);
    ur_free(t->a);
    ur_free(t->b);
}

/* Slot of key: where it is, or the empty slot where it would go. */
static size_t table_slot(const table *t, uint64_t key) {
    size_t i = (size_t)mix(key) & (t->cap - 1);
    while (t->key[i] && t->key[i] != key) i = (i + 1) & (t->cap - 1);
    return i;
}

static int table_grow(table *t) {
    table g;
    if (!table_init(&g, 2 * t->cap)) {
        table_free(&g);
        return 0;
    }
    for (size_t i = 0; i < t->cap; i++)
        if (t->key[i]) {
            size_t j = table_slot(&g, t->key[i]);
            g.key[j] = t->key[i], g.a[j] = t->a[i], g.b[j] = t->b[i];
        }
    g.n = t->n;
    table_free(t);
    *t = g;
    return 1;
}

/* The slot of key, inserted (counts 0) if new; (size_t)-1 when out of memory. */
static size_t table_get(table *t, uint64_t key, int *is_new) {
    if (2 * (t->n + 1) > t->cap && !table_grow(t)) return (size_t)-1;
    size_t i = table_slot(t, key);
    *is_new = !t->key[i];
    if (*is_new) t->key[i] = key, t->n++;
    return i;
}

static const int64_t *table_find(const table *t, uint64_t key, size_t *slot) {
    size_t i = table_slot(t, key);
    *slot = i;
    return t->key[i] ? &t->a[i] : NULL;
}

/* ---- the model ---- */

struct ur_ngram {
    int order, vocab;
    table grams[UR_NGRAM_MAX_ORDER + 1]; /* [k]: c_k of each k-gram */
    table ctx[UR_NGRAM_MAX_ORDER + 1];   /* [k]: c_k(h .) and n_k(h .) of each (k-1)-gram h */
    double discount[UR_NGRAM_MAX_ORDER + 1];
};

/* ids[0..k) packed, oldest in the highest byte */
static uint64_t pack(const int *ids, int k) {
    uint64_t key = 0;
    for (int i = 0; i < k; i++) key = key << 8 | (uint64_t)(ids[i] + 1);
    return key;
}

void ur_ngram_free(ur_ngram *m) {
    if (!m) return;
    for (int k = 0; k <= UR_NGRAM_MAX_ORDER; k++) table_free(&m->grams[k]), table_free(&m->ctx[k]);
    ur_free(m);
}

/* Adds d to the count of key in t; 1 when the key was new. -1 when out of memory. */
static int add(table *t, uint64_t key, int64_t d) {
    int is_new;
    size_t i = table_get(t, key, &is_new);
    if (i == (size_t)-1) return -1;
    t->a[i] += d;
    return is_new;
}

static int count_all(ur_ngram *m, const int *ids, size_t n) {
    int N = m->order;
    /* the highest order: occurrences */
    for (size_t i = 0; i + (size_t)N <= n; i++)
        if (add(&m->grams[N], pack(ids + i, N), 1) < 0) return 0;
    /* the k-grams at the very start have no symbol before them: they occur without a
     * left extension, counted once so that their continuation count is not 0 */
    for (int k = N - 1; k >= 1; k--) {
        const table *up = &m->grams[k + 1];
        uint64_t mask = k == 8 ? ~0ULL : ((1ULL << (8 * k)) - 1);
        for (size_t i = 0; i < up->cap; i++) /* each distinct v g adds 1 to g */
            if (up->key[i] && add(&m->grams[k], up->key[i] & mask, 1) < 0) return 0;
        if ((size_t)k <= n && add(&m->grams[k], pack(ids, k), 1) < 0) return 0;
    }
    /* context totals and distinct successors; discounts from the counts of counts */
    for (int k = 1; k <= N; k++) {
        const table *g = &m->grams[k];
        int64_t n1 = 0, n2 = 0;
        for (size_t i = 0; i < g->cap; i++) {
            if (!g->key[i]) continue;
            n1 += g->a[i] == 1, n2 += g->a[i] == 2;
            int is_new;
            size_t j = table_get(&m->ctx[k], (g->key[i] >> 8) + 1, &is_new); /* +1: the empty context */
            if (j == (size_t)-1) return 0;
            m->ctx[k].a[j] += g->a[i];
            m->ctx[k].b[j] += 1;
        }
        m->discount[k] = n1 + n2 > 0 ? (double)n1 / (double)(n1 + 2 * n2) : 0.5;
        if (m->discount[k] <= 0 || m->discount[k] >= 1) m->discount[k] = 0.5;
    }
    return 1;
}

ur_ngram *ur_ngram_train(int order, int vocab, const int *ids, size_t n) {
    if (order < 1 || order > UR_NGRAM_MAX_ORDER || vocab < 1 || vocab > UR_NGRAM_MAX_VOCAB || (!ids && n)) {
        ur_set_error(UR_ERR_ARG, "ur_ngram_train: order must be in 1..%d and vocab in 1..%d, got order %d, vocab %d%s",
                     UR_NGRAM_MAX_ORDER, UR_NGRAM_MAX_VOCAB, order, vocab, !ids && n ? ", ids NULL" : "");
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vocab) {
            ur_set_error(UR_ERR_ARG, "ur_ngram_train: ids[%zu] = %d is outside 0..%d", i, ids[i], vocab - 1);
            return NULL;
        }
    ur_ngram *m = ur_calloc(1, sizeof *m);
    int ok = m != NULL;
    for (int k = 1; ok && k <= order; k++) ok = table_init(&m->grams[k], 1024) && table_init(&m->ctx[k], 1024);
    if (m) m->order = order, m->vocab = vocab;
    if (ok) ok = count_all(m, ids, n);
    if (!ok) {
        ur_ngram_free(m);
        ur_set_error(UR_ERR_NOMEM, "ur_ngram_train: out of memory counting %zu symbols up to order %d", n, order);
        return NULL;
    }
    return m;
}

int ur_ngram_order(const ur_ngram *m) { return m ? m->order : 0; }

double ur_ngram_discount(const ur_ngram *m, int k) { return m && k >= 1 && k <= m->order ? m->discount[k] : NAN; }

size_t ur_ngram_size(const ur_ngram *m, int k) { return m && k >= 1 && k <= m->order ? m->grams[k].n : 0; }

/* P_k(next | h), h = the last k-1 symbols of ctx[0..n_ctx) (fewer at the start: the
 * order drops to what the context allows). */
static double prob(const ur_ngram *m, int k, const int *ctx, int n_ctx, int next) {
    double p = 1.0 / m->vocab;
    for (int j = 1; j <= k; j++) { /* from order 1 up: each interpolates with the one below */
        if (j - 1 > n_ctx) break;
        const int *h = ctx + n_ctx - (j - 1);
        uint64_t hk = pack(h, j - 1);
        size_t slot;
        const int64_t *tot = table_find(&m->ctx[j], hk + 1, &slot);
        if (!tot) continue; /* unseen context: P_j = P_{j-1} */
        double total = (double)*tot, types = (double)m->ctx[j].b[slot], D = m->discount[j];
        const int64_t *c = table_find(&m->grams[j], hk << 8 | (uint64_t)(next + 1), &slot);
        double cnt = c ? (double)*c : 0;
        p = (cnt > D ? cnt - D : 0) / total + D * types / total * p;
    }
    return p;
}

double ur_ngram_prob(const ur_ngram *m, const int *ctx, int n_ctx, int next) {
    if (!m || next < 0 || next >= m->vocab || n_ctx < 0 || (!ctx && n_ctx)) return NAN;
    if (n_ctx > m->order - 1) ctx += n_ctx - (m->order - 1), n_ctx = m->order - 1;
    for (int i = 0; i < n_ctx; i++)
        if (ctx[i] < 0 || ctx[i] >= m->vocab) return NAN;
    return prob(m, m->order, ctx, n_ctx, next);
}

double ur_ngram_bits(const ur_ngram *m, const int *ids, size_t from, size_t to) {
    if (!m || !ids || from >= to) return NAN;
    int k = m->order;
    double bits = 0;
    for (size_t i = from; i < to; i++) {
        if (ids[i] < 0 || ids[i] >= m->vocab) return NAN;
        int n_ctx = i < (size_t)(k - 1) ? (int)i : k - 1;
        bits -= log2(prob(m, k, ids + i - n_ctx, n_ctx, ids[i]));
    }
    return bits / (double)(to - from);
}
