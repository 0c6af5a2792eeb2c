/* gemm_precision.c - the matrix products of the tape in its precision
 * (ur_tape_set_precision): ur_gemm in f32, ur_gemm_bf16 in bf16.
 *
 * Weights packed once per recording. A recurrent weight is the right operand of
 * one product per time step, forward (x W) and backward (G W^T), and ur_gemm_bf16
 * would round and pack all of it at every one of them. Under BF16 a parameter's
 * W or W^T is packed into bf16 at its second use on a recording and that packing
 * serves every later use: once per training step, i.e. once per update. The
 * packing is the one ur_gemm_bf16 makes, so the results are the same bits. The
 * list is dropped at ur_tape_reset and at the end of ur_backward (an optimizer
 * step may follow, and then ops on the same recording); between those a
 * parameter's values must not change. Other nodes are never packed ahead. The
 * packed words live in the arena. */
#include "tape_internal.h"

#include "../tensor/gemm_bf16_internal.h"

#include <string.h>

void ur__gemm(ur_tape *t, const char *op, int trans_a, int trans_b, int m, int n, int k,
              const ur_real *A, int lda, const ur_real *B, int ldb, ur_real beta, ur_real *C, int ldc) {
    if (t->precision == UR_PRECISION_F32) {
        ur_gemm(trans_a, trans_b, m, n, k, 1, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    ur_status s = ur_gemm_bf16(trans_a, trans_b, m, n, k, 1, A, lda, B, ldb, beta, C, ldc);
    if (s != UR_OK) ur_tape_fail(t, s, "%s: bf16 product (%d x %d x %d): %s", op, m, n, k, ur_last_error());
}

#ifdef UR_DOUBLE

/* no bf16 here: the precision is always F32 */
void ur__gemm_w(ur_tape *t, const char *op, int trans_a, int m, const ur_real *A, int lda, ur_node *W,
                int trans_w, ur_real beta, ur_real *C, int ldc) {
    int K = W->shape.dims[0], M = W->shape.dims[1];
    ur__gemm(t, op, trans_a, trans_w, m, trans_w ? K : M, trans_w ? M : K, A, lda, W->value, M, beta, C, ldc);
}

#else

/* One parameter's op(W) on this recording: how often it was read, and its
 * packing from the second read on. */
typedef struct ur_bf16_weight {
    const ur_node *W;
    int trans, uses;
    ur_bf16_packed packed; /* words NULL until packed */
    struct ur_bf16_weight *next;
} ur_bf16_weight;

/* op(W) packed for this recording, or NULL: not a parameter, its first read, or
 * out of memory (then the tape has the error). */
static const ur_bf16_packed *packed_weight(ur_tape *t, const ur_node *W, int trans) {
    if (!W->param) return NULL;
    ur_bf16_weight *e = t->bf16_weights;
    while (e && (e->W != W || e->trans != trans)) e = e->next;
    if (!e) {
        if (!(e = ur__alloc(t, sizeof *e))) return NULL;
        *e = (ur_bf16_weight){W, trans, 0, {0}, t->bf16_weights};
        t->bf16_weights = e;
    }
    if (++e->uses < 2) return NULL;
    if (!e->packed.words || e->packed.kern != ur__gemm_bf16_kernel()) { /* the path may change */
        int K = W->shape.dims[0], M = W->shape.dims[1], n = trans ? K : M, k = trans ? M : K;
        uint32_t *words = ur__alloc(t, ur__bf16_packed_words(n, k) * sizeof *words);
        if (!words) return NULL;
        ur__bf16_pack(&e->packed, trans, W->value, M, n, k, words);
    }
    return &e->packed;
}

void ur__gemm_w(ur_tape *t, const char *op, int trans_a, int m, const ur_real *A, int lda, ur_node *W,
                int trans_w, ur_real beta, ur_real *C, int ldc) {
    int K = W->shape.dims[0], M = W->shape.dims[1];
    const ur_bf16_packed *pb = t->precision == UR_PRECISION_BF16 ? packed_weight(t, W, trans_w) : NULL;
    if (!pb) {
        ur__gemm(t, op, trans_a, trans_w, m, trans_w ? K : M, trans_w ? M : K, A, lda, W->value, M, beta, C, ldc);
        return;
    }
    ur_status s = ur__gemm_bf16_packed(trans_a, m, A, lda, pb, beta, C, ldc);
    if (s != UR_OK)
        ur_tape_fail(t, s, "%s: bf16 product (%d x %d x %d): %s", op, m, pb->n, pb->k, ur_last_error());
}

#endif

void ur__gemm_w_plus(ur_tape *t, const char *op, int m, const ur_real *A, int lda, ur_node *W, const ur_real *C0,
                     int ldc0, ur_real *C, int ldc) {
    int K = W->shape.dims[0], M = W->shape.dims[1];
    if (t->precision == UR_PRECISION_F32) {
        ur__gemm_plus(0, 0, m, M, K, A, lda, W->value, M, C0, ldc0, C, ldc);
        return;
    }
    for (int i = 0; i < m; i++) memcpy(C + (size_t)i * ldc, C0 + (size_t)i * ldc0, (size_t)M * sizeof(ur_real));
    ur__gemm_w(t, op, 0, m, A, lda, W, 0, 1, C, ldc);
}
