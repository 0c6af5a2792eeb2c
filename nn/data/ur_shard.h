/* ur_shard.h - each rank's share of the data in data-parallel training.
 *
 * Shares are contiguous and balanced: of n items over size ranks, the first
 * n % size ranks get one item more than the others. All ranks compute the same
 * split from the same arguments, with no communication.
 */
#ifndef UR_SHARD_H
#define UR_SHARD_H

#include <stdint.h>
#include "../../tensor/ur_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Rank's items [*lo, *hi) of n (n >= 0, 0 <= rank < size). Out-of-range arguments
 * give the empty share [0, 0). */
void ur_shard_range(int n, int rank, int size, int *lo, int *hi);

/* This rank's items of an epoch: the indices 0..n-1 in an order drawn from seed and
 * epoch (the same on every rank, a new one each epoch), of which rank keeps its
 * ur_shard_range share, in that order, in out (room for n / size + 1 ints).
 * *count gets the share's size. UR_ERR_ARG for n < 0, a rank outside [0, size) or
 * NULL pointers. */
ur_status ur_shard_epoch(int n, uint64_t seed, long epoch, int rank, int size, int *out, int *count);

#ifdef __cplusplus
}
#endif
#endif
