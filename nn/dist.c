/* dist.c - data-parallel training over MPI (ur_dist.h).
 *
 * Built with UR_HAVE_MPI (cmake -DUR_MPI=ON) the functions talk to MPI_COMM_WORLD;
 * without it they are the one-rank case. With one rank nothing is communicated
 * either way: the checks below run and the data stay as they are.
 */
#include "ur_dist.h"

#include <math.h>
#include <string.h>

#ifdef UR_HAVE_MPI
#include <limits.h>
#include <mpi.h>
#endif

static struct {
    int rank, size;
    int initialized; /* ur_dist_init ran */
    int owns_mpi;    /* ... and called MPI_Init_thread: finalize must end MPI */
    unsigned char *buf; /* scratch of the collectives, grown on demand */
    size_t cap;
} g_dist = {0, 1, 0, 0, NULL, 0};

int ur_dist_rank(void) { return g_dist.rank; }
int ur_dist_size(void) { return g_dist.size; }

/* ---- checks and the one-rank case ---- */

static int weight_ok(double w) { return isfinite(w) && w >= 0; }

static ur_status local_allreduce(const ur_paramset *ps, double weight) {
    if (!ps) return ur_set_error(UR_ERR_ARG, "ur_dist_allreduce_grads: paramset is NULL");
    if (!weight_ok(weight) || weight == 0)
        return ur_set_error(UR_ERR_ARG, "ur_dist_allreduce_grads: expected a finite weight > 0 on the only rank, "
                                        "got %g", weight);
    return UR_OK; /* the mean of one gradient is itself */
}

static ur_status local_allgather(const ur_real *mine, size_t n, ur_real *all, size_t total) {
    if (n != total)
        return ur_set_error(UR_ERR_SHAPE, "ur_dist_allgather: total %zu is not the sum of the ranks' counts (%zu)",
                            total, n);
    if (n && (!mine || !all)) return ur_set_error(UR_ERR_ARG, "ur_dist_allgather: NULL buffer");
    if (n && mine != all) memmove(all, mine, n * sizeof *all);
    return UR_OK;
}

#ifndef UR_HAVE_MPI

int ur_dist_has_mpi(void) { return 0; }

ur_status ur_dist_init(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    g_dist.initialized = 1;
    return UR_OK;
}

ur_status ur_dist_finalize(void) {
    g_dist.initialized = 0;
    return UR_OK;
}

ur_status ur_dist_broadcast_params(ur_paramset *ps) {
    return ps ? UR_OK : ur_set_error(UR_ERR_ARG, "ur_dist_broadcast_params: paramset is NULL");
}

ur_status ur_dist_allreduce_grads(ur_paramset *ps, double weight) { return local_allreduce(ps, weight); }

ur_status ur_dist_sum(double *v, int n) {
    if (n < 0 || (n > 0 && !v)) return ur_set_error(UR_ERR_ARG, "ur_dist_sum: expected n >= 0 values, got %d", n);
    return UR_OK;
}

ur_status ur_dist_allgather(const ur_real *mine, size_t n, ur_real *all, size_t total) {
    return local_allgather(mine, n, all, total);
}

#else /* UR_HAVE_MPI */

#ifdef UR_DOUBLE
#define UR_MPI_REAL MPI_DOUBLE
#else
#define UR_MPI_REAL MPI_FLOAT
#endif

int ur_dist_has_mpi(void) { return 1; }

/* Copies every gradient (values: 0) of ps into flat[0..P) or back. */
static void flat_copy(ur_paramset *ps, ur_real *flat, int values, int to_params) {
    size_t off = 0;
    for (int i = 0; i < ur_paramset_count(ps); i++) {
        ur_param *p = ur_paramset_get(ps, i);
        ur_tensor *t = values ? &p->value : &p->grad;
        if (to_params)
            memcpy(t->data, flat + off, t->size * sizeof *flat);
        else
            memcpy(flat + off, t->data, t->size * sizeof *flat);
        off += t->size;
    }
}

/* The error of a failed MPI call: "fn: call failed on rank R of N: reason". */
static ur_status mpi_fail(const char *fn, const char *call, int rc) {
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "MPI error code %d", rc);
    return ur_set_error(UR_ERR_IO, "%s: %s failed on rank %d of %d: %s", fn, call, g_dist.rank, g_dist.size, msg);
}

static unsigned char *scratch(size_t bytes) {
    if (bytes <= g_dist.cap) return g_dist.buf;
    unsigned char *b = ur_realloc(g_dist.buf, g_dist.cap, bytes);
    if (!b) return NULL;
    g_dist.buf = b;
    g_dist.cap = bytes;
    return b;
}

ur_status ur_dist_init(int *argc, char ***argv) {
    int inited = 0, rc;
    if ((rc = MPI_Initialized(&inited)) != MPI_SUCCESS) return mpi_fail("ur_dist_init", "MPI_Initialized", rc);
    if (!inited) {
        int provided;
        /* OpenMP threads run the kernels; only the main thread calls MPI. */
        if ((rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided)) != MPI_SUCCESS)
            return mpi_fail("ur_dist_init", "MPI_Init_thread", rc);
        g_dist.owns_mpi = 1;
    }
    if ((rc = MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN)) != MPI_SUCCESS)
        return mpi_fail("ur_dist_init", "MPI_Comm_set_errhandler", rc);
    if ((rc = MPI_Comm_rank(MPI_COMM_WORLD, &g_dist.rank)) != MPI_SUCCESS ||
        (rc = MPI_Comm_size(MPI_COMM_WORLD, &g_dist.size)) != MPI_SUCCESS)
        return mpi_fail("ur_dist_init", "MPI_Comm_rank/size", rc);
    g_dist.initialized = 1;
    return UR_OK;
}

ur_status ur_dist_finalize(void) {
    ur_free(g_dist.buf);
    g_dist.buf = NULL;
    g_dist.cap = 0;
    int done = 1, rc = MPI_SUCCESS;
    if (g_dist.owns_mpi && MPI_Finalized(&done) == MPI_SUCCESS && !done) rc = MPI_Finalize();
    g_dist.owns_mpi = g_dist.initialized = 0;
    g_dist.rank = 0;
    g_dist.size = 1;
    return rc == MPI_SUCCESS ? UR_OK : mpi_fail("ur_dist_finalize", "MPI_Finalize", rc);
}

/* Every rank learns whether all ranks hold P scalars (P = -1 for a NULL paramset)
 * and got `bytes` of scratch: one small allreduce, so that all ranks stop together
 * when one of them cannot go on. */
static ur_status agree(const char *fn, long long P, size_t bytes, unsigned char **buf) {
    *buf = P >= 0 ? scratch(bytes) : NULL;
    long long mx[3] = {P, -P, *buf ? 0 : 1};
    int rc = MPI_Allreduce(MPI_IN_PLACE, mx, 3, MPI_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(fn, "MPI_Allreduce", rc);
    if (P < 0) return ur_set_error(UR_ERR_ARG, "%s: paramset is NULL on rank %d", fn, g_dist.rank);
    if (mx[0] != P || -mx[1] != P)
        return ur_set_error(UR_ERR_SHAPE, "%s: the ranks' paramsets differ in size (%lld to %lld scalars; rank %d "
                                          "has %lld)", fn, -mx[1], mx[0], g_dist.rank, P);
    if (mx[2]) return ur_set_error(UR_ERR_NOMEM, "%s: out of memory for %zu bytes of buffers on a rank", fn, bytes);
    return UR_OK;
}

ur_status ur_dist_broadcast_params(ur_paramset *ps) {
    const char *fn = "ur_dist_broadcast_params";
    if (g_dist.size == 1) return ps ? UR_OK : ur_set_error(UR_ERR_ARG, "%s: paramset is NULL", fn);
    long long P = ps ? (long long)ur_paramset_numel(ps) : -1;
    unsigned char *buf;
    ur_status s = agree(fn, P, (size_t)(P > 0 ? P : 1) * sizeof(ur_real), &buf);
    if (s != UR_OK) return s;
    if (P > INT_MAX) return ur_set_error(UR_ERR_SHAPE, "%s: %lld scalars exceed MPI's int count", fn, P);
    ur_real *flat = (ur_real *)buf;
    int rc;
    if (g_dist.rank == 0) flat_copy(ps, flat, 1, 0);
    if ((rc = MPI_Bcast(flat, (int)P, UR_MPI_REAL, 0, MPI_COMM_WORLD)) != MPI_SUCCESS)
        return mpi_fail(fn, "MPI_Bcast", rc);
    if (g_dist.rank != 0) flat_copy(ps, flat, 1, 1);
    return UR_OK;
}

/* Rank r's weights w[0..N) and chunks v_r (K values after an 8-byte header at
 * recv + r * stride) into out[0..K) = sum_r w_r v_r / sum_r w_r, the terms added in
 * rank order in double (acc: K doubles). Ranks of weight 0 add nothing. */
static void weighted_mean(const unsigned char *recv, size_t stride, const double *w, int N, size_t K, double W,
                          double *acc, ur_real *out) {
    for (size_t i = 0; i < K; i++) acc[i] = 0;
    for (int r = 0; r < N; r++) {
        if (w[r] == 0) continue;
        const ur_real *v = (const ur_real *)(recv + (size_t)r * stride + 8);
        for (size_t i = 0; i < K; i++) acc[i] += w[r] * (double)v[i];
    }
    for (size_t i = 0; i < K; i++) out[i] = (ur_real)(acc[i] / W);
}

ur_status ur_dist_allreduce_grads(ur_paramset *ps, double weight) {
    if (g_dist.size == 1) return local_allreduce(ps, weight);
    const char *fn = "ur_dist_allreduce_grads";
    const int N = g_dist.size;
    long long P = ps ? (long long)ur_paramset_numel(ps) : -1;
    /* chunk c = scalars [c K, c K + K) of the flat gradient, zero-padded; it travels
     * behind an 8-byte header holding the sender's weight */
    size_t K = P > 0 ? ((size_t)P + (size_t)N - 1) / (size_t)N : 0;
    size_t stride = 8 + (K * sizeof(ur_real) + 7) / 8 * 8;
    /* scratch: weights (N doubles) | send (N strides) | recv (N strides) | flat (N K) | acc (K doubles) */
    size_t o_send = (size_t)N * 8, o_recv = o_send + (size_t)N * stride, o_flat = o_recv + (size_t)N * stride;
    size_t o_acc = o_flat + ((size_t)N * K * sizeof(ur_real) + 7) / 8 * 8, bytes = o_acc + K * 8;
    unsigned char *buf;
    ur_status s = agree(fn, P, bytes, &buf);
    if (s != UR_OK) return s;
    if (stride > INT_MAX || K > INT_MAX) return ur_set_error(UR_ERR_SHAPE, "%s: chunks exceed MPI's int count", fn);
    double *w = (double *)buf, mine = weight_ok(weight) ? weight : NAN; /* a bad weight stops every rank */
    ur_real *flat = (ur_real *)(buf + o_flat);
    flat_copy(ps, flat, 0, 0);
    memset(flat + P, 0, ((size_t)N * K - (size_t)P) * sizeof *flat);
    for (int c = 0; c < N; c++) {
        memcpy(buf + o_send + (size_t)c * stride, &mine, 8);
        memcpy(buf + o_send + (size_t)c * stride + 8, flat + (size_t)c * K, K * sizeof *flat);
    }
    int rc = MPI_Alltoall(buf + o_send, (int)stride, MPI_BYTE, buf + o_recv, (int)stride, MPI_BYTE, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(fn, "MPI_Alltoall", rc);
    double W = 0;
    for (int r = 0; r < N; r++) {
        memcpy(&w[r], buf + o_recv + (size_t)r * stride, 8);
        if (!weight_ok(w[r]))
            return ur_set_error(UR_ERR_ARG, "%s: expected finite weights >= 0, rank %d gave %g", fn, r, w[r]);
        W += w[r];
    }
    if (W == 0) return ur_set_error(UR_ERR_ARG, "%s: every rank gave weight 0 (no examples in this step)", fn);
    ur_real *sum = (ur_real *)(buf + o_send); /* the send buffer is free again */
    weighted_mean(buf + o_recv, stride, w, N, K, W, (double *)(buf + o_acc), sum);
    rc = MPI_Allgather(sum, (int)K, UR_MPI_REAL, flat, (int)K, UR_MPI_REAL, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(fn, "MPI_Allgather", rc);
    flat_copy(ps, flat, 0, 1);
    return UR_OK;
}

/* ur_dist_sum and ur_dist_allgather exchange small arrays through fixed buffers
 * (in pieces), so no rank can fail to allocate while the others wait. */
enum { SMALL_BUF = 4096, MAX_RANKS_SMALL = SMALL_BUF / 2 };
static double g_small[SMALL_BUF];
static long long g_counts[SMALL_BUF];
static int g_cnt[MAX_RANKS_SMALL], g_displ[MAX_RANKS_SMALL];

ur_status ur_dist_sum(double *v, int n) {
    if (n < 0 || (n > 0 && !v)) return ur_set_error(UR_ERR_ARG, "ur_dist_sum: expected n >= 0 values, got %d", n);
    const int N = g_dist.size;
    if (N == 1 || n == 0) return UR_OK;
    if (N > MAX_RANKS_SMALL)
        return ur_set_error(UR_ERR_ARG, "ur_dist_sum: at most %d ranks, got %d", MAX_RANKS_SMALL, N);
    int piece = SMALL_BUF / N;
    for (int at = 0; at < n; at += piece) {
        int m = n - at < piece ? n - at : piece;
        int rc = MPI_Allgather(v + at, m, MPI_DOUBLE, g_small, m, MPI_DOUBLE, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail("ur_dist_sum", "MPI_Allgather", rc);
        for (int i = 0; i < m; i++) {
            double acc = 0;
            for (int r = 0; r < N; r++) acc += g_small[(size_t)r * (size_t)m + (size_t)i];
            v[at + i] = acc;
        }
    }
    return UR_OK;
}

ur_status ur_dist_allgather(const ur_real *mine, size_t n, ur_real *all, size_t total) {
    const char *fn = "ur_dist_allgather";
    const int N = g_dist.size;
    if (N == 1) return local_allgather(mine, n, all, total);
    if (N > MAX_RANKS_SMALL) return ur_set_error(UR_ERR_ARG, "%s: at most %d ranks, got %d", fn, MAX_RANKS_SMALL, N);
    /* every rank sees every (n, total, buffers present), so all agree on an error */
    long long me[2] = {(long long)n, (n && (!mine || !all)) ? -1 : (long long)total};
    int rc = MPI_Allgather(me, 2, MPI_LONG_LONG, g_counts, 2, MPI_LONG_LONG, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(fn, "MPI_Allgather", rc);
    long long sum = 0;
    for (int r = 0; r < N; r++) {
        if (g_counts[2 * r] > INT_MAX || sum > INT_MAX - g_counts[2 * r])
            return ur_set_error(UR_ERR_SHAPE, "%s: more than %d values in all", fn, INT_MAX);
        g_cnt[r] = (int)g_counts[2 * r];
        g_displ[r] = (int)sum;
        sum += g_counts[2 * r];
    }
    for (int r = 0; r < N; r++) {
        if (g_counts[2 * r + 1] < 0) return ur_set_error(UR_ERR_ARG, "%s: NULL buffer on rank %d", fn, r);
        if (g_counts[2 * r + 1] != sum)
            return ur_set_error(UR_ERR_SHAPE, "%s: rank %d expects %lld values in all, the ranks hold %lld", fn, r,
                                g_counts[2 * r + 1], sum);
    }
    rc = MPI_Allgatherv(mine, (int)n, UR_MPI_REAL, all, g_cnt, g_displ, UR_MPI_REAL, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? UR_OK : mpi_fail(fn, "MPI_Allgatherv", rc);
}

#endif /* UR_HAVE_MPI */
