/* vec.c - elementwise activations, axpy, dot and row-wise softmax.
 *
 * The _ref versions are plain loops over libm. The fast versions are in
 * tensor/kernels/vec_simd.c, one copy per instruction set, called through the
 * kernel table (tensor/dispatch.c); here they are split over threads when large.
 * (AVX-512 float has its own exp, tanh and sigmoid, within 2 ulp of libm over
 * the float range; see there).
 */
#include <math.h>
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

/* See kernels_internal.h. Elementwise work splits over threads only when large:
 * the result of each element does not depend on the split. */
void ur__par_chunks(size_t n, void (*f)(void *ctx, size_t at, size_t len), void *ctx) {
    int nt = ur__par_threads((double)n, (double)UR_PAR_MIN);
    if (nt <= 1) {
        f(ctx, 0, n);
        return;
    }
    long chunks = (long)((n + UR_PAR_CHUNK - 1) / UR_PAR_CHUNK);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (long c = 0; c < chunks; c++) {
        size_t at = (size_t)c * UR_PAR_CHUNK;
        f(ctx, at, n - at < UR_PAR_CHUNK ? n - at : UR_PAR_CHUNK);
    }
}

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

/* y = f(x) elementwise (x NULL: f ignores it), in chunks over the threads when large. */
typedef struct vec_map {
    void (*f)(size_t, const ur_real *, ur_real *);
    const ur_real *x;
    ur_real *y;
} vec_map;

static void map_part(void *ctx, size_t at, size_t len) {
    const vec_map *m = ctx;
    m->f(len, m->x ? m->x + at : NULL, m->y + at);
}

static void vec_apply(void (*f)(size_t, const ur_real *, ur_real *), size_t n, const ur_real *x,
                      ur_real *y) {
    vec_map m = {f, x, y};
    ur__par_chunks(n, map_part, &m);
}

void ur_vec_exp(size_t n, const ur_real *x, ur_real *y) { vec_apply(ur__kernels()->exp, n, x, y); }
void ur_vec_tanh(size_t n, const ur_real *x, ur_real *y) { vec_apply(ur__kernels()->tanh, n, x, y); }
void ur_vec_sigmoid(size_t n, const ur_real *x, ur_real *y) {
    vec_apply(ur__kernels()->sigmoid, n, x, y);
}

void ur__vec_exp_here(size_t n, const ur_real *x, ur_real *y) { ur__kernels()->exp(n, x, y); }
void ur__vec_tanh_here(size_t n, const ur_real *x, ur_real *y) { ur__kernels()->tanh(n, x, y); }
void ur__vec_sigmoid_here(size_t n, const ur_real *x, ur_real *y) { ur__kernels()->sigmoid(n, x, y); }

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

typedef struct sgd_job {
    double lr, l2, shrink;
    const ur_real *g;
    ur_real *w;
} sgd_job;

static void sgd_part(void *ctx, size_t at, size_t len) {
    const sgd_job *j = ctx;
    ur__kernels()->sgd(len, j->lr, j->l2, j->shrink, j->g + at, j->w + at);
}

void ur__vec_sgd(size_t n, double lr, double l2, double shrink, const ur_real *g, ur_real *w) {
    sgd_job j = {lr, l2, shrink, g, w};
    ur__par_chunks(n, sgd_part, &j);
}

/* y = x, or 0 when x is NULL */
static void fill_part(size_t n, const ur_real *x, ur_real *y) {
    if (x) memcpy(y, x, n * sizeof *y);
    else memset(y, 0, n * sizeof *y);
}

void ur__vec_zero(size_t n, ur_real *y) { vec_apply(fill_part, n, NULL, y); }

void ur__vec_copy(size_t n, const ur_real *x, ur_real *y) { vec_apply(fill_part, n, x, y); }

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
