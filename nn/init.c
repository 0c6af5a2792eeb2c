/* init.c - parameter initializers (uniform, normal, Xavier, orthogonal, identity). */
#include "ur_init.h"

#include <math.h>
#include <string.h>

static ur_status need_tensor(const ur_tensor *t, const ur_rng *r, int needs_rng, const char *fn) {
    if (!t) return ur_set_error(UR_ERR_ARG, "%s: tensor is NULL", fn);
    if (needs_rng && !r) return ur_set_error(UR_ERR_ARG, "%s: rng is NULL", fn);
    return UR_OK;
}

static ur_status need_2d(const ur_tensor *t, const char *fn) {
    if (t->shape.ndim != 2) {
        char b[64];
        return ur_set_error(UR_ERR_SHAPE, "%s: needs a 2-d (in, out) tensor, got shape %s", fn,
                            ur_shape_str(&t->shape, b, sizeof b));
    }
    return UR_OK;
}

ur_status ur_init_uniform(ur_tensor *t, ur_rng *r, double a) {
    ur_status st = need_tensor(t, r, 1, "ur_init_uniform");
    if (st != UR_OK) return st;
    if (!(a >= 0) || !isfinite(a))
        return ur_set_error(UR_ERR_ARG, "ur_init_uniform: bound %g (must be >= 0)", a);
    for (size_t i = 0; i < t->size; i++) t->data[i] = (ur_real)(a * (2.0 * ur_rng_uniform(r) - 1.0));
    return UR_OK;
}

ur_status ur_init_normal(ur_tensor *t, ur_rng *r, double mean, double std) {
    ur_status st = need_tensor(t, r, 1, "ur_init_normal");
    if (st != UR_OK) return st;
    if (!(std >= 0) || !isfinite(std) || !isfinite(mean))
        return ur_set_error(UR_ERR_ARG, "ur_init_normal: mean %g, std %g (std must be >= 0)", mean, std);
    for (size_t i = 0; i < t->size; i++) t->data[i] = (ur_real)(mean + std * ur_rng_normal(r));
    return UR_OK;
}

ur_status ur_init_xavier_uniform(ur_tensor *t, ur_rng *r, double gain) {
    ur_status st = need_tensor(t, r, 1, "ur_init_xavier_uniform");
    if (st == UR_OK) st = need_2d(t, "ur_init_xavier_uniform");
    if (st != UR_OK) return st;
    double fan = (double)t->shape.dims[0] + (double)t->shape.dims[1];
    return ur_init_uniform(t, r, gain * sqrt(6.0 / fan));
}

ur_status ur_init_xavier_normal(ur_tensor *t, ur_rng *r, double gain) {
    ur_status st = need_tensor(t, r, 1, "ur_init_xavier_normal");
    if (st == UR_OK) st = need_2d(t, "ur_init_xavier_normal");
    if (st != UR_OK) return st;
    double fan = (double)t->shape.dims[0] + (double)t->shape.dims[1];
    return ur_init_normal(t, r, 0.0, gain * sqrt(2.0 / fan));
}

/* Q (m, n), m >= n, row-major: the orthonormal columns of the QR factorization of
 * a (m, n), each column multiplied by the sign of R's diagonal entry. a is
 * overwritten; v is scratch of m*n doubles. Householder: for each column k, the
 * reflector I - 2 u u^T with u = v[k*m ..] (entries k..m-1) zeroes a below the
 * diagonal; Q is then the product of the reflectors applied to the first n columns
 * of the identity. */
static void householder_q(int m, int n, double *a, double *v, double *q) {
    for (int k = 0; k < n; k++) {
        double *u = v + (size_t)k * m;
        double norm = 0.0;
        for (int i = k; i < m; i++) norm += a[(size_t)i * n + k] * a[(size_t)i * n + k];
        norm = sqrt(norm);
        double x0 = a[(size_t)k * n + k];
        double alpha = x0 > 0 ? -norm : norm; /* R[k][k]; opposite sign avoids cancellation */
        for (int i = k; i < m; i++) u[i] = a[(size_t)i * n + k];
        u[k] -= alpha;
        double un = 0.0;
        for (int i = k; i < m; i++) un += u[i] * u[i];
        un = sqrt(un);
        if (un > 0)
            for (int i = k; i < m; i++) u[i] /= un;
        /* apply the reflector to the remaining columns */
        for (int j = k; j < n; j++) {
            double d = 0.0;
            for (int i = k; i < m; i++) d += u[i] * a[(size_t)i * n + j];
            for (int i = k; i < m; i++) a[(size_t)i * n + j] -= 2.0 * d * u[i];
        }
        a[(size_t)k * n + k] = alpha;
    }
    /* R's diagonal is now on a's diagonal; Q = H_0 ... H_{n-1} I[:, :n] */
    for (size_t i = 0; i < (size_t)m * n; i++) q[i] = 0.0;
    for (int j = 0; j < n; j++) q[(size_t)j * n + j] = 1.0;
    for (int k = n - 1; k >= 0; k--) {
        const double *u = v + (size_t)k * m;
        for (int j = 0; j < n; j++) {
            double d = 0.0;
            for (int i = k; i < m; i++) d += u[i] * q[(size_t)i * n + j];
            for (int i = k; i < m; i++) q[(size_t)i * n + j] -= 2.0 * d * u[i];
        }
    }
    for (int j = 0; j < n; j++) {
        if (a[(size_t)j * n + j] < 0)
            for (int i = 0; i < m; i++) q[(size_t)i * n + j] = -q[(size_t)i * n + j];
    }
}

ur_status ur_init_orthogonal(ur_tensor *t, ur_rng *r, double gain, int blocks) {
    const char *fn = "ur_init_orthogonal";
    ur_status st = need_tensor(t, r, 1, fn);
    if (st == UR_OK) st = need_2d(t, fn);
    if (st != UR_OK) return st;
    if (blocks < 1) blocks = 1;
    int rows = t->shape.dims[0], cols = t->shape.dims[1];
    if (cols % blocks != 0)
        return ur_set_error(UR_ERR_SHAPE, "%s: %d columns do not split into %d blocks", fn, cols, blocks);
    int width = cols / blocks;
    int m = rows > width ? rows : width, n = rows > width ? width : rows;
    size_t mn = (size_t)m * (size_t)n;
    if (mn > SIZE_MAX / (3 * sizeof(double)))
        return ur_set_error(UR_ERR_SHAPE, "%s: a (%d, %d) block is too large", fn, rows, width);
    double *buf = ur_malloc(3 * mn * sizeof(double));
    if (!buf) return ur_set_error(UR_ERR_NOMEM, "%s: out of memory for a (%d, %d) block", fn, rows, width);
    double *a = buf, *v = buf + mn, *q = buf + 2 * mn;
    for (int b = 0; b < blocks; b++) {
        for (size_t i = 0; i < mn; i++) a[i] = ur_rng_normal(r);
        householder_q(m, n, a, v, q);
        /* q is (m, n) with orthonormal columns; the block is q or its transpose */
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < width; j++) {
                double x = rows >= width ? q[(size_t)i * n + j] : q[(size_t)j * n + i];
                t->data[(size_t)i * cols + (size_t)b * width + j] = (ur_real)(gain * x);
            }
    }
    ur_free(buf);
    return UR_OK;
}

ur_status ur_init_identity(ur_tensor *t, double scale) {
    ur_status st = need_tensor(t, NULL, 0, "ur_init_identity");
    if (st == UR_OK) st = need_2d(t, "ur_init_identity");
    if (st != UR_OK) return st;
    int rows = t->shape.dims[0], cols = t->shape.dims[1];
    memset(t->data, 0, t->size * sizeof *t->data);
    for (int i = 0; i < rows && i < cols; i++) t->data[(size_t)i * cols + i] = (ur_real)scale;
    return UR_OK;
}

ur_status ur_init_constant(ur_tensor *t, double v) {
    ur_status st = need_tensor(t, NULL, 0, "ur_init_constant");
    if (st != UR_OK) return st;
    for (size_t i = 0; i < t->size; i++) t->data[i] = (ur_real)v;
    return UR_OK;
}

ur_status ur_init_forget_bias(ur_param *p, int H, double value) {
    if (!p) return ur_set_error(UR_ERR_ARG, "ur_init_forget_bias: parameter is NULL");
    if (H < 1 || (size_t)H * 4 != p->value.size) {
        char b[64];
        return ur_set_error(UR_ERR_SHAPE,
                            "ur_init_forget_bias: parameter '%s' of shape %s is not a 4*%d LSTM bias",
                            p->name, ur_shape_str(&p->value.shape, b, sizeof b), H);
    }
    for (int i = H; i < 2 * H; i++) p->value.data[i] = (ur_real)value;
    return UR_OK;
}
