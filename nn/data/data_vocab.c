/* data_vocab.c - a string -> id hash map with counts (open addressing, linear probing).
 *
 * Strings live NUL-terminated, back to back, in one growable byte array; an entry
 * keeps the offset, length, count and hash of its string. The slot table holds ids
 * (-1 for empty) and is kept at most half full.
 */
#include "data_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    size_t off, len;
    int64_t count;
    uint64_t hash;
} entry;

struct ur_vocab {
    ur_data_vec text;    /* bytes of all strings, each followed by a NUL */
    ur_data_vec entries; /* entry per id */
    int *slots;          /* n_slots (a power of two) ids or -1 */
    size_t n_slots;
    int special[4];      /* ids of PAD, UNK, BOS, EOS or -1 */
};

static const char *const special_names[4] = {"<pad>", "<unk>", "<s>", "</s>"};

/* FNV-1a, 64 bits. */
static uint64_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}

static entry *entry_at(const ur_vocab *v, int id) { return (entry *)v->entries.p + id; }

/* Slot holding word, or the empty slot where it would go. */
static size_t probe(const ur_vocab *v, const char *word, size_t len, uint64_t h) {
    size_t mask = v->n_slots - 1, i = (size_t)h & mask;
    for (;; i = (i + 1) & mask) {
        int id = v->slots[i];
        if (id < 0) return i;
        const entry *e = entry_at(v, id);
        if (e->hash == h && e->len == len && memcmp((char *)v->text.p + e->off, word, len) == 0) return i;
    }
}

/* Doubles the slot table and re-inserts every id. */
static ur_status grow_slots(ur_vocab *v) {
    size_t n = v->n_slots * 2;
    int *slots = ur_malloc(n * sizeof *slots);
    if (!slots) return ur_data_nomem("ur_vocab_add");
    for (size_t i = 0; i < n; i++) slots[i] = -1;
    for (size_t id = 0; id < v->entries.n; id++) {
        size_t j = (size_t)entry_at(v, (int)id)->hash & (n - 1);
        while (slots[j] >= 0) j = (j + 1) & (n - 1);
        slots[j] = (int)id;
    }
    ur_free(v->slots);
    v->slots = slots;
    v->n_slots = n;
    return UR_OK;
}

ur_vocab *ur_vocab_new(unsigned specials) {
    if (specials & ~15u) {
        ur_set_error(UR_ERR_ARG, "ur_vocab_new: unknown special flags 0x%x", specials);
        return NULL;
    }
    ur_vocab *v = ur_calloc(1, sizeof *v);
    int *slots = ur_malloc(16 * sizeof *slots);
    if (!v || !slots) {
        ur_free(v);
        ur_free(slots);
        ur_data_nomem("ur_vocab_new");
        return NULL;
    }
    v->text = ur_data_vec_make(1);
    v->entries = ur_data_vec_make(sizeof(entry));
    v->slots = slots;
    v->n_slots = 16;
    for (int i = 0; i < 16; i++) slots[i] = -1;
    for (int k = 0; k < 4; k++) {
        v->special[k] = -1;
        if (!(specials & (1u << k))) continue;
        const char *name = special_names[k];
        v->special[k] = ur_vocab_add_n(v, name, strlen(name), 0);
        if (v->special[k] < 0) {
            ur_vocab_free(v);
            ur_data_nomem("ur_vocab_new");
            return NULL;
        }
    }
    return v;
}

void ur_vocab_free(ur_vocab *v) {
    if (!v) return;
    ur_data_vec_free(&v->text);
    ur_data_vec_free(&v->entries);
    ur_free(v->slots);
    ur_free(v);
}

/* Appends a new entry for word; all memory is reserved before anything changes. */
static int insert_new(ur_vocab *v, const char *word, size_t len, int64_t count, uint64_t h) {
    if (v->entries.n >= (size_t)0x7fffffff) {
        ur_set_error(UR_ERR_ARG, "ur_vocab_add: too many entries");
        return -1;
    }
    if ((v->entries.n + 1) * 2 > v->n_slots && grow_slots(v) != UR_OK) return -1;
    if (ur_data_vec_reserve(&v->entries, 1, "ur_vocab_add") != UR_OK ||
        ur_data_vec_reserve(&v->text, len + 1, "ur_vocab_add") != UR_OK)
        return -1;
    entry e = {v->text.n, len, count, h};
    char *dst = (char *)v->text.p + v->text.n;
    if (len) memcpy(dst, word, len);
    dst[len] = '\0';
    v->text.n += len + 1;
    int id = (int)v->entries.n;
    ur_data_vec_push(&v->entries, &e, 1, "ur_vocab_add"); /* cannot fail: reserved */
    v->slots[probe(v, word, len, h)] = id;
    return id;
}

int ur_vocab_add_n(ur_vocab *v, const char *word, size_t len, int64_t count) {
    if (!v || (!word && len) || count < 0) {
        ur_set_error(UR_ERR_ARG, "ur_vocab_add: NULL vocabulary or word, or negative count");
        return -1;
    }
    if (!word) word = "";
    uint64_t h = hash_bytes(word, len);
    int id = v->slots[probe(v, word, len, h)];
    if (id < 0) return insert_new(v, word, len, count, h);
    entry *e = entry_at(v, id);
    e->count = count > INT64_MAX - e->count ? INT64_MAX : e->count + count; /* saturates */
    return id;
}

int ur_vocab_add(ur_vocab *v, const char *word) {
    return ur_vocab_add_n(v, word, word ? strlen(word) : 0, 1);
}

int ur_vocab_find_n(const ur_vocab *v, const char *word, size_t len) {
    if (!v || (!word && len)) return -1;
    if (!word) word = "";
    return v->slots[probe(v, word, len, hash_bytes(word, len))];
}

int ur_vocab_find(const ur_vocab *v, const char *word) {
    return word ? ur_vocab_find_n(v, word, strlen(word)) : -1;
}

int ur_vocab_id(const ur_vocab *v, const char *word) {
    int id = ur_vocab_find(v, word);
    return id >= 0 || !v ? id : v->special[1];
}

int ur_vocab_size(const ur_vocab *v) { return v ? (int)v->entries.n : 0; }

static int valid_id(const ur_vocab *v, int id) { return v && id >= 0 && (size_t)id < v->entries.n; }

const char *ur_vocab_string(const ur_vocab *v, int id) {
    return valid_id(v, id) ? (const char *)v->text.p + entry_at(v, id)->off : NULL;
}

size_t ur_vocab_string_len(const ur_vocab *v, int id) { return valid_id(v, id) ? entry_at(v, id)->len : 0; }

int64_t ur_vocab_count(const ur_vocab *v, int id) { return valid_id(v, id) ? entry_at(v, id)->count : 0; }

int ur_vocab_special_id(const ur_vocab *v, ur_vocab_special which) {
    if (!v) return -1;
    for (int k = 0; k < 4; k++)
        if ((unsigned)which == 1u << k) return v->special[k];
    return -1;
}

/* ---- building a vocabulary from counts ---- */

typedef struct ranked {
    int64_t count;
    const char *s;
    size_t len;
} ranked;

/* Higher count first, then byte order (a shorter prefix first). */
static int cmp_ranked(const void *pa, const void *pb) {
    const ranked *a = pa, *b = pb;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->s, b->s, n);
    if (c) return c;
    return (a->len > b->len) - (a->len < b->len);
}

ur_status ur_vocab_build(const ur_vocab *counts, int64_t min_count, unsigned specials, ur_vocab **out) {
    if (!out) return ur_set_error(UR_ERR_ARG, "ur_vocab_build: out is NULL");
    *out = NULL;
    if (!counts) return ur_set_error(UR_ERR_ARG, "ur_vocab_build: counts is NULL");
    if (specials & ~15u) return ur_set_error(UR_ERR_ARG, "ur_vocab_build: unknown special flags 0x%x", specials);
    int n = ur_vocab_size(counts), m = 0;
    ranked *r = ur_malloc((size_t)n * sizeof *r);
    ur_vocab *v = r ? ur_vocab_new(specials) : NULL;
    if (!v) {
        ur_free(r);
        return ur_data_nomem("ur_vocab_build");
    }
    for (int id = 0; id < n; id++) {
        const entry *e = entry_at(counts, id);
        if (e->count >= min_count) r[m++] = (ranked){e->count, (const char *)counts->text.p + e->off, e->len};
    }
    qsort(r, (size_t)m, sizeof *r, cmp_ranked);
    for (int i = 0; i < m; i++) {
        if (ur_vocab_add_n(v, r[i].s, r[i].len, r[i].count) < 0) {
            ur_free(r);
            ur_vocab_free(v);
            return ur_data_nomem("ur_vocab_build");
        }
    }
    ur_free(r);
    *out = v;
    return UR_OK;
}
