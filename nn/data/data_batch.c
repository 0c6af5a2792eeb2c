/* data_batch.c - length-bucketed batches and padded time-major id matrices.
 *
 * Sorting by length before cutting batches keeps padding small; a random key
 * breaks ties between equal lengths, and the batch order is shuffled, so every
 * epoch sees different batches in a different order.
 */
#include "data_internal.h"

#include <stdlib.h>

typedef struct keyed {
    int len;
    uint64_t key;
    int idx;
} keyed;

static int cmp_keyed(const void *pa, const void *pb) {
    const keyed *a = pa, *b = pb;
    if (a->len != b->len) return a->len < b->len ? -1 : 1;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

/* A fresh ur_batches with room for n indices and nb batches. */
static ur_batches *batches_new(int n, int nb) {
    ur_batches *b = ur_calloc(1, sizeof *b);
    int *index = ur_malloc((size_t)n * sizeof *index);
    int *offset = ur_malloc(((size_t)nb + 1) * sizeof *offset);
    if (!b || !index || !offset) {
        ur_free(b);
        ur_free(index);
        ur_free(offset);
        ur_data_nomem("ur_bucket_batches");
        return NULL;
    }
    b->n = n;
    b->n_batches = nb;
    b->index = index;
    b->offset = offset;
    return b;
}

/* Copies the sorted chunks into b in the order given by perm. */
static void fill_batches(ur_batches *b, const keyed *items, const int *perm, int batch_size) {
    int pos = 0;
    for (int k = 0; k < b->n_batches; k++) {
        int first = perm[k] * batch_size, last = first + batch_size;
        if (last > b->n) last = b->n;
        b->offset[k] = pos;
        for (int i = first; i < last; i++) b->index[pos++] = items[i].idx;
    }
    b->offset[b->n_batches] = pos;
}

ur_status ur_bucket_batches(const int *lengths, int n, int batch_size, ur_rng *rng, ur_batches **out) {
    if (!out) return ur_set_error(UR_ERR_ARG, "ur_bucket_batches: out is NULL");
    *out = NULL;
    if (n < 0 || batch_size < 1 || !rng || (n > 0 && !lengths))
        return ur_set_error(UR_ERR_ARG, "ur_bucket_batches: n = %d, batch_size = %d, or NULL lengths or rng", n,
                            batch_size);
    int nb = n / batch_size + (n % batch_size != 0);
    keyed *items = ur_malloc((size_t)n * sizeof *items);
    int *perm = ur_malloc((size_t)nb * sizeof *perm);
    ur_batches *b = items && perm ? batches_new(n, nb) : NULL;
    if (!b) {
        ur_free(items);
        ur_free(perm);
        return ur_data_nomem("ur_bucket_batches");
    }
    for (int i = 0; i < n; i++) items[i] = (keyed){lengths[i], ur_rng_next(rng), i};
    qsort(items, (size_t)n, sizeof *items, cmp_keyed);
    for (int k = 0; k < nb; k++) perm[k] = k;
    for (int k = nb - 1; k > 0; k--) { /* Fisher-Yates */
        int j = (int)ur_rng_below(rng, (uint32_t)k + 1), t = perm[k];
        perm[k] = perm[j];
        perm[j] = t;
    }
    fill_batches(b, items, perm, batch_size);
    ur_free(items);
    ur_free(perm);
    *out = b;
    return UR_OK;
}

void ur_batches_free(ur_batches *b) {
    if (!b) return;
    ur_free(b->index);
    ur_free(b->offset);
    ur_free(b);
}

/* Checks the sequences and returns the padded length T (>= 1), or -1 on error. */
static int padded_length(const int *const *seqs, const int *lens, const int *pick, int B, int max_len) {
    int T = 1;
    for (int b = 0; b < B; b++) {
        int j = pick ? pick[b] : b;
        if (j < 0 || lens[j] < 0 || (lens[j] > 0 && !seqs[j])) {
            ur_set_error(UR_ERR_ARG, "ur_batch_pad: sequence %d has length %d or is NULL", j, j < 0 ? -1 : lens[j]);
            return -1;
        }
        int n = max_len > 0 && lens[j] > max_len ? max_len : lens[j];
        if (n > T) T = n;
    }
    return T;
}

ur_status ur_batch_pad(const int *const *seqs, const int *lens, const int *pick, int B, int max_len, int pad_id,
                       ur_padded **out) {
    if (!out) return ur_set_error(UR_ERR_ARG, "ur_batch_pad: out is NULL");
    *out = NULL;
    if (!seqs || !lens || B < 1) return ur_set_error(UR_ERR_ARG, "ur_batch_pad: B = %d or NULL seqs or lens", B);
    int T = padded_length(seqs, lens, pick, B, max_len);
    if (T < 0) return UR_ERR_ARG;
    size_t cells = (size_t)T * (size_t)B;
    ur_padded *p = ur_calloc(1, sizeof *p);
    int *ids = ur_malloc(cells * sizeof *ids), *clipped = ur_malloc((size_t)B * sizeof *clipped);
    ur_real *mask = ur_malloc(cells * sizeof *mask);
    if (!p || !ids || !clipped || !mask) {
        ur_free(p);
        ur_free(ids);
        ur_free(clipped);
        ur_free(mask);
        return ur_data_nomem("ur_batch_pad");
    }
    for (int b = 0; b < B; b++) {
        int j = pick ? pick[b] : b, n = lens[j] < T ? lens[j] : T;
        clipped[b] = n;
        for (int t = 0; t < T; t++) {
            ids[(size_t)t * B + b] = t < n ? seqs[j][t] : pad_id;
            mask[(size_t)t * B + b] = t < n ? (ur_real)1 : (ur_real)0;
        }
    }
    *p = (ur_padded){T, B, ids, mask, clipped};
    *out = p;
    return UR_OK;
}

void ur_padded_free(ur_padded *p) {
    if (!p) return;
    ur_free(p->ids);
    ur_free(p->mask);
    ur_free(p->lens);
    ur_free(p);
}
