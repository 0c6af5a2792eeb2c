/* vec.c - elementwise activations, axpy, dot and row-wise softmax.
 *
 * The _ref versions are plain loops over libm. The fast versions are in
 * tensor/kernels/vec_simd.c, one copy per instruction set, called through the
 * kernel table (tensor/dispatch.c); here they are split over threads when large.
 * (AVX-512 float has its own exp, tanh and sigmoid, within 2 ulp of libm over
 * the float range; see there).
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "kernels_ref_internal.h"
#include "gemm_internal.h"

#ifdef UR_DOUBLE
#define UR_EXP exp
#define UR_TANH tanh
#define UR_LOG log
#else
#define UR_EXP expf
#define UR_TANH tanhf
#define UR_LOG logf
#endif

/* Elementwise work splits over threads only when large: the result of each
 * element does not depend on the split. */
#define UR_VEC_PAR_MIN ((size_t)1 << 17)
#define UR_VEC_CHUNK ((size_t)1 << 14)

/* ---- references: libm, one element at a time ---- */

void ur_vec_exp_ref(size_t n, const ur_real *x, ur_real *y) {
    for (size_t i = 0; i < n; i++) y[i] = UR_EXP(x[i]);
}

void ur_vec_tanh_ref(size_t n, const ur_real *x, ur_real *y) {
    for (size_t i = 0; i < n; i++) y[i] = UR_TANH(x[i]);
}

void ur_vec_sigmoid_ref(size_t n, const ur_real *x, ur_real *y) {
    for (size_t i = 0; i < n; i++) y[i] = 1 / (1 + UR_EXP(-x[i]));
}

/* Runs f over x in chunks, in parallel when n is large. */
static void vec_apply(void (*f)(size_t, const ur_real *, ur_real *), size_t n, const ur_real *x,
                      ur_real *y) {
    if (n < UR_VEC_PAR_MIN || omp_in_parallel()) {
        f(n, x, y);
        return;
    }
    long chunks = (long)((n + UR_VEC_CHUNK - 1) / UR_VEC_CHUNK);
#pragma omp parallel for schedule(static)
    for (long c = 0; c < chunks; c++) {
        size_t at = (size_t)c * UR_VEC_CHUNK, len = n - at < UR_VEC_CHUNK ? n - at : UR_VEC_CHUNK;
        f(len, x + at, y + at);
    }
}

void ur_vec_exp(size_t n, const ur_real *x, ur_real *y) { vec_apply(ur__kernels()->exp, n, x, y); }
void ur_vec_tanh(size_t n, const ur_real *x, ur_real *y) { vec_apply(ur__kernels()->tanh, n, x, y); }
void ur_vec_sigmoid(size_t n, const ur_real *x, ur_real *y) {
    vec_apply(ur__kernels()->sigmoid, n, x, y);
}

void ur_vec_axpy(size_t n, ur_real a, const ur_real *x, ur_real *y) {
    ur__kernels()->axpy(n, a, x, y);
}

ur_real ur_vec_dot(size_t n, const ur_real *x, const ur_real *y) {
    return ur__kernels()->dot(n, x, y);
}

/* ---- the optimizer's checks and plain SGD step (nn/optim.c) ---- */

int ur__vec_all_finite_ref(size_t n, const ur_real *x) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

int ur__vec_all_finite(size_t n, const ur_real *x) { return ur__kernels()->all_finite(n, x); }

void ur__vec_sgd_ref(size_t n, double lr, double l2, double shrink, const ur_real *g, ur_real *w) {
    for (size_t i = 0; i < n; i++) {
        double x = (double)w[i] * shrink;
        double gi = (double)g[i] + l2 * (double)w[i];
        x -= lr * gi;
        w[i] = (ur_real)x;
    }
}

void ur__vec_sgd(size_t n, double lr, double l2, double shrink, const ur_real *g, ur_real *w) {
    void (*f)(size_t, double, double, double, const ur_real *, ur_real *) = ur__kernels()->sgd;
    if (n < UR_VEC_PAR_MIN || omp_in_parallel()) {
        f(n, lr, l2, shrink, g, w);
        return;
    }
    long chunks = (long)((n + UR_VEC_CHUNK - 1) / UR_VEC_CHUNK);
#pragma omp parallel for schedule(static)
    for (long c = 0; c < chunks; c++) {
        size_t at = (size_t)c * UR_VEC_CHUNK, len = n - at < UR_VEC_CHUNK ? n - at : UR_VEC_CHUNK;
        f(len, lr, l2, shrink, g + at, w + at);
    }
}

/* y[0..n) = x[0..n), or 0 when x is NULL: in chunks over the threads when large. */
static void fill(size_t n, const ur_real *x, ur_real *y) {
    if (n < UR_VEC_PAR_MIN || omp_in_parallel()) {
        if (x) memcpy(y, x, n * sizeof *y);
        else memset(y, 0, n * sizeof *y);
        return;
    }
    long chunks = (long)((n + UR_VEC_CHUNK - 1) / UR_VEC_CHUNK);
#pragma omp parallel for schedule(static)
    for (long c = 0; c < chunks; c++) {
        size_t at = (size_t)c * UR_VEC_CHUNK, len = n - at < UR_VEC_CHUNK ? n - at : UR_VEC_CHUNK;
        if (x) memcpy(y + at, x + at, len * sizeof *y);
        else memset(y + at, 0, len * sizeof *y);
    }
}

void ur__vec_zero(size_t n, ur_real *y) { fill(n, NULL, y); }

void ur__vec_copy(size_t n, const ur_real *x, ur_real *y) { fill(n, x, y); }

/* ---- softmax along rows ---- */

void ur_softmax_rows_ref(int rows, int cols, const ur_real *x, ur_real *y) {
    for (int r = 0; r < rows; r++) {
        const ur_real *xr = x + (size_t)r * cols;
        ur_real *yr = y + (size_t)r * cols, mx = xr[0], sum = 0;
        for (int j = 1; j < cols; j++) mx = xr[j] > mx ? xr[j] : mx;
        for (int j = 0; j < cols; j++) sum += yr[j] = UR_EXP(xr[j] - mx);
        for (int j = 0; j < cols; j++) yr[j] /= sum;
    }
}

void ur_log_softmax_rows_ref(int rows, int cols, const ur_real *x, ur_real *y) {
    for (int r = 0; r < rows; r++) {
        const ur_real *xr = x + (size_t)r * cols;
        ur_real *yr = y + (size_t)r * cols, mx = xr[0], sum = 0;
        for (int j = 1; j < cols; j++) mx = xr[j] > mx ? xr[j] : mx;
        for (int j = 0; j < cols; j++) sum += UR_EXP(xr[j] - mx);
        ur_real shift = mx + UR_LOG(sum);
        for (int j = 0; j < cols; j++) yr[j] = xr[j] - shift;
    }
}

void ur_softmax_rows(int rows, int cols, const ur_real *x, ur_real *y) {
    ur__kernels()->softmax_rows(rows, cols, x, y);
}

void ur_log_softmax_rows(int rows, int cols, const ur_real *x, ur_real *y) {
    ur__kernels()->log_softmax_rows(rows, cols, x, y);
}
