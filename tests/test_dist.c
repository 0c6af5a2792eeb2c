/* test_dist.c - data sharding, and the one-process case of the data-parallel API
 * (what every build without MPI runs, and an MPI build outside mpirun). The
 * multi-rank cases run under mpirun in tests/mpi/. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "unroll.h"

Test(shard, range_is_balanced_contiguous_and_covers_all) {
    for (int size = 1; size <= 5; size++)
        for (int n = 0; n <= 12; n++) {
            int next = 0;
            for (int r = 0; r < size; r++) {
                int lo, hi;
                ur_shard_range(n, r, size, &lo, &hi);
                cr_assert_eq(lo, next, "n %d size %d rank %d starts at %d", n, size, r, lo);
                cr_assert(hi - lo == n / size + (r < n % size), "n %d size %d rank %d holds %d", n, size, r, hi - lo);
                next = hi;
            }
            cr_assert_eq(next, n);
        }
    int lo = 7, hi = 7;
    ur_shard_range(10, 3, 3, &lo, &hi);
    cr_assert(lo == 0 && hi == 0, "a rank outside [0, size) gets the empty share");
}

Test(shard, epoch_shares_form_one_permutation_that_changes_per_epoch) {
    enum { N = 11, SIZE = 3 };
    int seen[N] = {0}, order0[N], order1[N], k = 0;
    for (int r = 0; r < SIZE; r++) {
        int out[N / SIZE + 1], count;
        cr_assert_eq(ur_shard_epoch(N, 5, 0, r, SIZE, out, &count), UR_OK);
        for (int i = 0; i < count; i++) {
            cr_assert(out[i] >= 0 && out[i] < N);
            seen[out[i]]++;
            order0[k++] = out[i];
        }
    }
    cr_assert_eq(k, N);
    for (int i = 0; i < N; i++) cr_assert_eq(seen[i], 1, "index %d taken %d times", i, seen[i]);
    int count;
    cr_assert_eq(ur_shard_epoch(N, 5, 0, 0, 1, order1, &count), UR_OK);
    cr_assert(count == N && memcmp(order0, order1, sizeof order0) == 0, "the shares are slices of one order");
    cr_assert_eq(ur_shard_epoch(N, 5, 1, 0, 1, order1, &count), UR_OK);
    cr_assert(memcmp(order0, order1, sizeof order0) != 0, "epoch 1 has another order");
    cr_assert_eq(ur_shard_epoch(N, 5, 0, 3, 3, order1, &count), UR_ERR_ARG);
    cr_assert(strstr(ur_last_error(), "ur_shard_epoch") != NULL);
    cr_assert_eq(count, 0);
}

Test(dist, one_process_leaves_the_gradients_and_checks_arguments) {
    cr_assert_eq(ur_dist_init(NULL, NULL), UR_OK);
    cr_assert_eq(ur_dist_rank(), 0);
    cr_assert_eq(ur_dist_size(), 1);
    ur_paramset *ps = ur_paramset_new();
    ur_param *p = ur_paramset_add(ps, "w", 1, (int[]){3});
    cr_assert_not_null(p);
    p->value.data[1] = 2.5f;
    p->grad.data[0] = 1.25f;
    p->grad.data[2] = -3.0f;
    cr_assert_eq(ur_dist_broadcast_params(ps), UR_OK);
    cr_assert_eq(ur_dist_allreduce_grads(ps, 17), UR_OK);
    cr_assert(p->grad.data[0] == 1.25f && p->grad.data[1] == 0 && p->grad.data[2] == -3.0f);
    cr_assert_float_eq(p->value.data[1], 2.5f, 0);
    cr_assert_eq(ur_dist_allreduce_grads(ps, 0), UR_ERR_ARG);
    cr_assert(strstr(ur_last_error(), "ur_dist_allreduce_grads") != NULL);
    cr_assert_eq(ur_dist_allreduce_grads(ps, -1), UR_ERR_ARG);
    cr_assert_eq(ur_dist_allreduce_grads(NULL, 1), UR_ERR_ARG);
    cr_assert_eq(ur_dist_broadcast_params(NULL), UR_ERR_ARG);
    double v[2] = {1.5, 2};
    cr_assert(ur_dist_sum(v, 2) == UR_OK && v[0] == 1.5 && v[1] == 2);
    cr_assert_eq(ur_dist_sum(v, -1), UR_ERR_ARG);
    ur_real mine[2] = {1, 2}, all[3] = {0};
    cr_assert(ur_dist_allgather(mine, 2, all, 2) == UR_OK && all[0] == 1 && all[1] == 2);
    cr_assert_eq(ur_dist_allgather(mine, 2, all, 3), UR_ERR_SHAPE);
    cr_assert(strstr(ur_last_error(), "ur_dist_allgather") != NULL);
    ur_paramset_free(ps);
    cr_assert_eq(ur_dist_finalize(), UR_OK);
}
