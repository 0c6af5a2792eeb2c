/* dist_kill.c - a rank that dies in the middle of training ends the whole job.
 *
 * Every rank runs allreduce steps on a small paramset; the last rank kills itself
 * with SIGKILL at step 5 (no chance to clean up, as after an out-of-memory kill or
 * a lost machine), or with the argument "exit" leaves with status 3 there, as a
 * program does after an error. The other ranks are then blocked in ur_dist_allreduce_grads:
 * mpirun sees the dead rank, reports it and ends them. run_mpi.sh checks that the
 * job ends well within its timeout, with a failing status and that report. Alone
 * (one rank) the program just counts to the end and exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unroll.h"

int main(int argc, char **argv) {
    if (ur_dist_init(&argc, &argv) != UR_OK) {
        fprintf(stderr, "dist_kill: %s\n", ur_last_error());
        return 1;
    }
    const int rank = ur_dist_rank(), size = ur_dist_size(), by_exit = argc > 1 && !strcmp(argv[1], "exit");
    ur_paramset *ps = ur_paramset_new();
    ur_param *p = ur_paramset_add(ps, "w", 1, (int[]){1000});
    int ok = p != NULL;
    for (int step = 0; ok && step < 100000; step++) {
        if (size > 1 && rank == size - 1 && step == 5) {
            fprintf(stderr, "dist_kill: rank %d %s at step %d\n", rank, by_exit ? "exits with status 3" : "kills itself",
                    step);
            fflush(stderr);
            if (by_exit) exit(3);
            raise(SIGKILL);
        }
        p->grad.data[0] = (ur_real)step;
        if (ur_dist_allreduce_grads(ps, 1.0) != UR_OK) {
            fprintf(stderr, "dist_kill: rank %d: %s\n", rank, ur_last_error());
            ok = 0;
        }
    }
    ur_paramset_free(ps);
    ur_dist_finalize();
    return ok ? 0 : 1;
}
