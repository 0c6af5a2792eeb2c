/* dist_cli.h - the example programs under mpirun: each rank trains on its share
 * of every batch; rank 0 alone logs, evaluates and writes checkpoints. Built
 * without MPI (the default) every helper is the one-process case and the programs
 * behave exactly as before. Not part of the library (examples only).
 *
 * In a program, after its flags are parsed:
 *     dist_cli_start(prog)                 MPI up, stdout muted on ranks > 0
 *     lo = ..., n = dist_cli_share(B, &lo) this rank's part [lo, lo + n) of a batch
 *     loss, ur_backward
 *     dist_cli_reduce(prog, ps, n, &loss)  mean gradient and loss of the whole batch
 *     clip, update                         the same on every rank
 *     if (dist_cli_rank0()) evaluate, save
 *     return dist_cli_end(status)
 */
#ifndef UR_EXAMPLES_DIST_CLI_H
#define UR_EXAMPLES_DIST_CLI_H

#include "ur_rnn.h"

/* Starts MPI (ur_dist_init) and, on ranks other than 0, sends stdout to /dev/null
 * and silences the progress line. 0, or -1 after printing an error. */
int dist_cli_start(const char *prog);
/* 1 on rank 0 (always without MPI). */
int dist_cli_rank0(void);
/* This rank's share of n items: returns its size, *lo its first item. */
int dist_cli_share(int n, int *lo);
/* The ranks' parameters start from rank 0's. 0, or -1 after printing an error. */
int dist_cli_sync(const char *prog, ur_paramset *ps);
/* After ur_backward: every gradient becomes the mean over the ranks weighted by
 * what each rank's loss averaged over (weight: its tokens or examples, 0 for none),
 * *loss (this rank's mean, ignored for weight 0) the same mean of the whole batch,
 * and *count (if not NULL; e.g. tokens, for the rates) the sum over the ranks.
 * Nothing changes with one rank. 0, or -1 after printing an error. */
int dist_cli_reduce(const char *prog, ur_paramset *ps, double weight, double *loss, double *count);
/* Ends MPI after a successful run and returns status. After a failure MPI is left
 * as it is: the other ranks may wait in a collective, and mpirun ends them when
 * this process exits with its failing status. */
int dist_cli_end(int status);

/* ---- carried RNN states of B streams, each rank holding rows [lo, lo + n) ----
 * A checkpoint holds the states of all B streams, whatever the number of ranks. */
/* `mine` itself when it holds all B streams, else new zero states of B streams
 * (NULL after printing an error); free with dist_cli_state_done. */
ur_rnn_state *dist_cli_state_all(const char *prog, const ur_rnn *r, ur_rnn_state *mine, int B);
void dist_cli_state_done(ur_rnn_state *all, ur_rnn_state *mine);
/* Every rank's rows into all (on every rank). 0, or -1 after printing an error. */
int dist_cli_state_gather(const char *prog, const ur_rnn_state *mine, ur_rnn_state *all);
/* This rank's rows [lo, lo + mine->batch) of all into mine. */
void dist_cli_state_take(const ur_rnn_state *all, ur_rnn_state *mine, int lo);

#endif
