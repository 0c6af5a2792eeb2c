/* ur_dist.h - data-parallel training over MPI.
 *
 * Every process (rank) holds the whole model, trains on its own part of each batch
 * and, after ur_backward, replaces its gradients with the mean over all ranks:
 *
 *     ur_dist_init(&argc, &argv);
 *     ... build the model ...
 *     ur_dist_broadcast_params(ps);                 every rank starts from rank 0's values
 *     for each step:
 *         loss of this rank's examples, ur_backward
 *         ur_dist_allreduce_grads(ps, n_local);     weighted mean of the gradients
 *         clip, ur_optim_step                       the same update on every rank
 *     ur_dist_finalize();
 *
 * The library is built with MPI when configured with -DUR_MPI=ON (ur_dist_has_mpi()
 * returns 1). Without it every function here is a single-process no-op: rank 0 of
 * size 1, so a program written for several ranks runs unchanged on one.
 *
 * Determinism: the gradient mean is the same sum in the same order whatever MPI's
 * algorithms do. Rank r's gradients are packed into one buffer of P values and cut
 * into size chunks; one MPI_Alltoall gives rank c the chunk c of every rank, which
 * it sums in rank order (in double, each term times its rank's weight) and divides
 * by the sum of the weights; one MPI_Allgather hands the summed chunks to everyone.
 * Each rank sends and receives about 2 P values per step, as a ring allreduce does.
 * With one rank (or without MPI) the gradients are left untouched, with no
 * communication at all.
 *
 * Errors: MPI's error handler is set to return, so a failing MPI call gives
 * UR_ERR_IO with "FUNCTION: MPI_CALL failed on rank R of N: MPI's message". A rank
 * that dies is reported by mpirun, which ends the other ranks (see
 * docs/distributed.md). Nothing here prints or aborts.
 */
#ifndef UR_DIST_H
#define UR_DIST_H

#include <stddef.h>
#include "../autograd/ur_tape.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when the library was built with MPI (-DUR_MPI=ON), else 0. */
int ur_dist_has_mpi(void);

/* Initializes MPI (argc, argv may be NULL) unless the program already did; safe to
 * call again. Without MPI: UR_OK, rank 0 of 1. */
ur_status ur_dist_init(int *argc, char ***argv);
/* Frees the buffers and finalizes MPI if ur_dist_init initialized it. */
ur_status ur_dist_finalize(void);
/* This process's rank (0 before ur_dist_init or without MPI). */
int ur_dist_rank(void);
/* Number of ranks (1 before ur_dist_init or without MPI). */
int ur_dist_size(void);

/* Copies rank 0's parameter values to every rank. Every rank must hold a paramset
 * of the same total size (UR_ERR_SHAPE on every rank otherwise). */
ur_status ur_dist_broadcast_params(ur_paramset *ps);

/* Replaces every gradient of ps by the weighted mean over the ranks,
 *     g = sum_r weight_r * g_r / sum_r weight_r      (sum in rank order, in double)
 * weight is what this rank's loss was averaged over (its tokens or examples), so
 * that ranks with a mean loss over unequal shares give the gradient of the mean
 * over the whole batch. weight 0 is a rank with no examples this step (its
 * gradients are ignored). UR_ERR_ARG for a negative or non-finite weight or all
 * weights 0; UR_ERR_SHAPE on every rank when the paramsets differ in size. */
ur_status ur_dist_allreduce_grads(ur_paramset *ps, double weight);

/* Replaces v[0..n) on every rank by its sum over the ranks, added in rank order (the
 * same bits on every rank): losses and token counts for logging. n >= 0, the same on
 * every rank. */
ur_status ur_dist_sum(double *v, int n);

/* Concatenates in rank order the n values of every rank into all[0..total), on every
 * rank (e.g. the rows of a carried RNN state that each rank holds for its share of
 * the streams). total must equal the sum of n over the ranks (UR_ERR_SHAPE).
 * ur_dist_sum and ur_dist_allgather take at most 2048 ranks (UR_ERR_ARG). */
ur_status ur_dist_allgather(const ur_real *mine, size_t n, ur_real *all, size_t total);

#ifdef __cplusplus
}
#endif
#endif
