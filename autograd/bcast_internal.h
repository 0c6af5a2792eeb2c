/* bcast_internal.h - broadcasting of two inputs, shared by the binary ops
 * (ops_elementwise.c) and maximum / minimum / where (ops_pointwise.c). Not installed. */
#ifndef UR_BCAST_INTERNAL_H
#define UR_BCAST_INTERNAL_H

#include "tape_internal.h"

/* ---- broadcasting ----
 * Shapes are right-aligned and padded to 4 dims; a dimension of size 1 in an input
 * has stride 0. The loop visits output elements in order, giving each input's
 * element index. */
typedef struct bcast {
    int dims[4];
    size_t sa[4], sb[4];
} bcast;

static inline void strides_of(const ur_shape *s, const int *out_dims, size_t *st) {
    int pad = 4 - s->ndim;
    size_t stride = 1;
    for (int i = 3; i >= 0; i--) {
        int d = i >= pad ? s->dims[i - pad] : 1;
        st[i] = (d == 1 && out_dims[i] != 1) ? 0 : stride;
        stride *= (size_t)d;
    }
}

/* Output shape of broadcasting a with b; 0 when they do not broadcast. */
static inline int bcast_shape(const ur_shape *a, const ur_shape *b, ur_shape *out, bcast *bc) {
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    out->ndim = nd;
    for (int i = 0; i < UR_MAX_DIMS; i++) out->dims[i] = 1;
    for (int i = 0; i < 4; i++) bc->dims[i] = 1;
    for (int k = 1; k <= nd; k++) {
        int da = k <= a->ndim ? a->dims[a->ndim - k] : 1;
        int db = k <= b->ndim ? b->dims[b->ndim - k] : 1;
        if (da != db && da != 1 && db != 1) return 0;
        int d = da > db ? da : db;
        out->dims[nd - k] = d;
        bc->dims[4 - k] = d;
    }
    strides_of(a, bc->dims, bc->sa);
    strides_of(b, bc->dims, bc->sb);
    return 1;
}

#define BCAST_LOOP(bc, BODY)                                                        \
    do {                                                                            \
        size_t io = 0;                                                              \
        for (int i0 = 0; i0 < (bc)->dims[0]; i0++)                                  \
            for (int i1 = 0; i1 < (bc)->dims[1]; i1++)                              \
                for (int i2 = 0; i2 < (bc)->dims[2]; i2++) {                        \
                    size_t ia = i0 * (bc)->sa[0] + i1 * (bc)->sa[1] + i2 * (bc)->sa[2]; \
                    size_t ib = i0 * (bc)->sb[0] + i1 * (bc)->sb[1] + i2 * (bc)->sb[2]; \
                    for (int i3 = 0; i3 < (bc)->dims[3]; i3++, io++, ia += (bc)->sa[3], \
                             ib += (bc)->sb[3]) {                                   \
                        BODY;                                                       \
                    }                                                               \
                }                                                                   \
    } while (0)

/* The output node of a broadcasting op on a and b: checks the inputs and their
 * shapes, fills *bc for BCAST_LOOP. NULL and the tape's error otherwise. */
static inline ur_node *bcast_node(ur_tape *t, ur_op op, const char *name, ur_node *a, ur_node *b, bcast *bc) {
    ur_node *in[2] = {a, b};
    if (!ur__check(t, name, 2, in)) return NULL;
    ur_shape s;
    if (!bcast_shape(&a->shape, &b->shape, &s, bc)) {
        ur__op_error(t, UR_ERR_SHAPE, name, 2, in, "shapes do not broadcast");
        return NULL;
    }
    return ur__node_new(t, op, &s, 2, in);
}

#endif
