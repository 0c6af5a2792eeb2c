/* dist_cli.c - data-parallel helpers of the example programs (dist_cli.h). */
#include "dist_cli.h"

#include <stdio.h>
#include <string.h>

#include "ur_dist.h"
#include "ur_shard.h"

int dist_cli_start(const char *prog) {
    if (ur_dist_init(NULL, NULL) != UR_OK) {
        fprintf(stderr, "%s: %s\n", prog, ur_last_error());
        return -1;
    }
    /* one set of results: rank 0's (errors still come from every rank, on stderr) */
    if (ur_dist_rank() != 0 && !freopen("/dev/null", "w", stdout)) {
        fprintf(stderr, "%s: rank %d: cannot mute stdout\n", prog, ur_dist_rank());
        return -1;
    }
    return 0;
}

int dist_cli_rank0(void) { return ur_dist_rank() == 0; }

int dist_cli_share(int n, int *lo) {
    int hi;
    ur_shard_range(n, ur_dist_rank(), ur_dist_size(), lo, &hi);
    return hi - *lo;
}

int dist_cli_sync(const char *prog, ur_paramset *ps) {
    if (ur_dist_broadcast_params(ps) == UR_OK) return 0;
    fprintf(stderr, "%s: %s\n", prog, ur_last_error());
    return -1;
}

int dist_cli_reduce(const char *prog, ur_paramset *ps, double weight, double *loss, double *count) {
    if (ur_dist_size() == 1) return 0; /* the loss stays bit for bit what it was */
    double v[3] = {weight > 0 ? *loss * weight : 0, weight, count ? *count : 0};
    if (ur_dist_allreduce_grads(ps, weight) != UR_OK || ur_dist_sum(v, 3) != UR_OK) {
        fprintf(stderr, "%s: %s\n", prog, ur_last_error());
        return -1;
    }
    *loss = v[0] / v[1];
    if (count) *count = v[2];
    return 0;
}

int dist_cli_end(int status) {
    if (status == 0 && ur_dist_finalize() != UR_OK) {
        fprintf(stderr, "%s\n", ur_last_error());
        return 1;
    }
    return status;
}

ur_rnn_state *dist_cli_state_all(const char *prog, const ur_rnn *r, ur_rnn_state *mine, int B) {
    if (mine->batch == B) return mine;
    ur_rnn_state *all = ur_rnn_state_new(r, B);
    if (!all) fprintf(stderr, "%s: %s\n", prog, ur_last_error());
    return all;
}

void dist_cli_state_done(ur_rnn_state *all, ur_rnn_state *mine) {
    if (all != mine) ur_rnn_state_free(all);
}

/* The tensors of state i: h, then c (NULL for cells without c). */
static ur_tensor *state_tensor(const ur_rnn_state *s, int k) { return k % 2 ? s->c[k / 2] : s->h[k / 2]; }

int dist_cli_state_gather(const char *prog, const ur_rnn_state *mine, ur_rnn_state *all) {
    if (all == mine) return 0;
    for (int k = 0; k < 2 * mine->n; k++) {
        const ur_tensor *src = state_tensor(mine, k);
        ur_tensor *dst = state_tensor(all, k);
        if (!src) continue;
        /* rows (streams) are contiguous in (B, H): rank order is stream order */
        if (ur_dist_allgather(src->data, src->size, dst->data, dst->size) != UR_OK) {
            fprintf(stderr, "%s: carried states: %s\n", prog, ur_last_error());
            return -1;
        }
    }
    return 0;
}

void dist_cli_state_take(const ur_rnn_state *all, ur_rnn_state *mine, int lo) {
    if (all == mine) return;
    for (int k = 0; k < 2 * mine->n; k++) {
        const ur_tensor *src = state_tensor(all, k);
        ur_tensor *dst = state_tensor(mine, k);
        if (dst) memcpy(dst->data, src->data + (size_t)lo * (size_t)mine->hidden, dst->size * sizeof *dst->data);
    }
}
