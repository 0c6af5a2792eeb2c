/* data_shard.c - balanced contiguous shares and per-epoch shuffled shares (ur_shard.h). */
#include "ur_shard.h"

#include <stddef.h>

void ur_shard_range(int n, int rank, int size, int *lo, int *hi) {
    int a = 0, b = 0;
    if (n > 0 && size > 0 && rank >= 0 && rank < size) {
        int base = n / size, extra = n % size;
        /* ranks below `extra` hold base + 1 items */
        a = rank * base + (rank < extra ? rank : extra);
        b = a + base + (rank < extra ? 1 : 0);
    }
    if (lo) *lo = a;
    if (hi) *hi = b;
}

ur_status ur_shard_epoch(int n, uint64_t seed, long epoch, int rank, int size, int *out, int *count) {
    if (count) *count = 0;
    if (n < 0 || size < 1 || rank < 0 || rank >= size || !out || !count)
        return ur_set_error(UR_ERR_ARG, "ur_shard_epoch: expected n >= 0, 0 <= rank < size and non-NULL out, "
                                        "count; got n %d, rank %d, size %d", n, rank, size);
    int lo, hi;
    ur_shard_range(n, rank, size, &lo, &hi);
    int *perm = ur_malloc((size_t)(n > 0 ? n : 1) * sizeof *perm);
    if (!perm) return ur_set_error(UR_ERR_NOMEM, "ur_shard_epoch: out of memory for %d indices", n);
    /* The epoch's order: a Fisher-Yates shuffle from a generator seeded by (seed,
     * epoch), so every rank draws the same permutation and keeps its own part. */
    ur_rng r;
    ur_rng_seed(&r, seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(epoch + 1)));
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)ur_rng_below(&r, (uint32_t)i + 1u);
        int tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    for (int i = lo; i < hi; i++) out[i - lo] = perm[i];
    *count = hi - lo;
    ur_free(perm);
    return UR_OK;
}
