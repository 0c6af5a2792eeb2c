/* attention.c - dot, general and additive attention with a masked softmax. */
#include "flag_names_internal.h"
#include "ur_attention.h"
#include "ur_init.h"

#include <stdio.h>
#include <string.h>

/* Added to the score of a padded position: exp() of it underflows to exactly 0. */
#define UR_ATTN_PAD_SCORE ((ur_real)-1e9)

/* "(3, 4)" for error messages: what a caller passed where another shape was expected. */
static const char *given(const ur_node *n, char *buf, size_t size) {
    const ur_shape *s = ur_node_shape(n);
    return s ? ur_shape_str(s, buf, size) : "a node erased by ur_tape_reset";
}

const char *ur_attn_score_name(ur_attn_score s) {
    switch (s) {
    case UR_ATTN_DOT: return "dot";
    case UR_ATTN_GENERAL: return "general";
    case UR_ATTN_ADDITIVE: return "additive";
    }
    return "?";
}

ur_status ur_attn_score_parse(const char *name, ur_attn_score *out) {
    for (int s = UR_ATTN_DOT; s <= UR_ATTN_ADDITIVE; s++)
        if (name && out && !strcmp(name, ur_attn_score_name((ur_attn_score)s))) {
            *out = (ur_attn_score)s;
            return UR_OK;
        }
    return ur_set_error(UR_ERR_ARG, "ur_attn_score_parse: unknown score '%s' (dot, general, additive)",
                        name ? name : "(null)");
}

static ur_param *add(ur_paramset *ps, const char *prefix, const char *name, int ndim, int d0, int d1) {
    char full[96];
    if (snprintf(full, sizeof full, "%s.%s", prefix, name) >= (int)sizeof full) {
        ur_set_error(UR_ERR_ARG, "ur_attention_make: prefix '%s' is too long", prefix);
        return NULL;
    }
    int dims[2] = {d0, d1};
    return ur_paramset_add(ps, full, ndim, dims);
}

ur_status ur_attention_make(ur_attention *a, ur_paramset *ps, const char *prefix, ur_attn_score score,
                            int query_size, int key_size, int attn_size, ur_rng *rng) {
    if (!a || !ps || !prefix || !rng) return ur_set_error(UR_ERR_ARG, "ur_attention_make: NULL argument");
    memset(a, 0, sizeof *a);
    if (score < UR_ATTN_DOT || score > UR_ATTN_ADDITIVE || query_size < 1 || key_size < 1 ||
        (score == UR_ATTN_ADDITIVE && attn_size < 1))
        return ur_set_error(UR_ERR_ARG, "ur_attention_make: bad sizes (query %d, key %d, attn %d) or score",
                            query_size, key_size, attn_size);
    if (score == UR_ATTN_DOT && query_size != key_size)
        return ur_set_error(UR_ERR_ARG, "ur_attention_make: dot scores need query_size == key_size (%d vs %d)",
                            query_size, key_size);
    a->score = score;
    a->query_size = query_size;
    a->key_size = key_size;
    a->attn_size = score == UR_ATTN_ADDITIVE ? attn_size : 0;
    if (score == UR_ATTN_GENERAL) {
        if (!(a->W = add(ps, prefix, "W", 2, query_size, key_size))) return UR_ERR_ARG;
        ur_init_xavier_uniform(&a->W->value, rng, 1.0);
    } else if (score == UR_ATTN_ADDITIVE) {
        if (!(a->W = add(ps, prefix, "W", 2, query_size, attn_size)) ||
            !(a->W1 = add(ps, prefix, "W1", 2, key_size, attn_size)) ||
            !(a->b = add(ps, prefix, "b", 1, attn_size, 1)) ||
            !(a->v = add(ps, prefix, "v", 2, attn_size, 1)))
            return UR_ERR_ARG;
        ur_init_xavier_uniform(&a->W->value, rng, 1.0);
        ur_init_xavier_uniform(&a->W1->value, rng, 1.0);
        ur_init_xavier_uniform(&a->v->value, rng, 1.0);
    }
    return UR_OK;
}

ur_status ur_attention_memory(ur_tape *t, const ur_attention *a, ur_node *enc, const ur_real *mask,
                              ur_attn_memory *mem) {
    if (!t) return ur_set_error(UR_ERR_ARG, "attention_memory: tape is NULL");
    if (!mem) return ur_tape_fail(t, UR_ERR_ARG, "attention_memory: mem is NULL");
    memset(mem, 0, sizeof *mem);
    if (ur_tape_error(t)) return ur_tape_error(t);
    if (!a || !enc) return ur_tape_fail(t, UR_ERR_ARG, "attention_memory: NULL attention or encoder states");
    char buf[64];
    if (ur_node_ndim(enc) != 3 || ur_node_dim(enc, 2) != a->key_size)
        return ur_tape_fail(t, UR_ERR_SHAPE, "attention_memory: encoder states must be (B, S, %d), got %s",
                            a->key_size, given(enc, buf, sizeof buf));
    int B = ur_node_dim(enc, 0), S = ur_node_dim(enc, 1), Hk = a->key_size;
    mem->B = B;
    mem->S = S;
    mem->values = enc;
    mem->keys = enc;
    if (a->score == UR_ATTN_ADDITIVE) { /* W1 h_j + b for every position at once */
        int d2[2] = {B * S, Hk}, d3[3] = {B, S, a->attn_size};
        ur_node *k = ur_linear(t, ur_reshape(t, enc, 2, d2), ur_param_node(t, a->W1), ur_param_node(t, a->b));
        mem->keys = ur_reshape(t, k, 3, d3);
    }
    if (mask) {
        int d2[2] = {B, S};
        mem->mask = ur_zeros(t, 2, d2); /* 1 where mask is nonzero: the 0/1 mask of ur_masked_softmax */
        mem->bias = ur_zeros(t, 2, d2);
        if (mem->mask && mem->bias) {
            ur_real *m01 = ur_node_data(mem->mask), *bias = ur_node_data(mem->bias);
            for (size_t i = 0; i < (size_t)B * (size_t)S; i++) {
                m01[i] = mask[i] != 0;
                bias[i] = mask[i] != 0 ? 0 : UR_ATTN_PAD_SCORE;
            }
        }
    }
    return ur_tape_error(t);
}

/* Time-major encoder states (S, B, Hk) and mask[t*B + b], as ur_rnn_forward makes
 * and reads them: swapped to (B, S, Hk) on the tape, the mask transposed to (B, S). */
ur_status ur_attention_memory_time_major(ur_tape *t, const ur_attention *a, ur_node *enc, const ur_real *mask,
                                         ur_attn_memory *mem) {
    if (!t) return ur_set_error(UR_ERR_ARG, "attention_memory_time_major: tape is NULL");
    if (!mem) return ur_tape_fail(t, UR_ERR_ARG, "attention_memory_time_major: mem is NULL");
    memset(mem, 0, sizeof *mem);
    if (ur_tape_error(t)) return ur_tape_error(t);
    if (!a || !enc) return ur_tape_fail(t, UR_ERR_ARG, "attention_memory_time_major: NULL attention or encoder states");
    char buf[64];
    if (ur_node_ndim(enc) != 3 || ur_node_dim(enc, 2) != a->key_size)
        return ur_tape_fail(t, UR_ERR_SHAPE, "attention_memory_time_major: encoder states must be (S, B, %d), got %s",
                            a->key_size, given(enc, buf, sizeof buf));
    const ur_real *mask_bm = NULL;
    if (mask) { /* (S, B) -> (B, S): a constant, the copy lives on the tape */
        int d[2] = {ur_node_dim(enc, 0), ur_node_dim(enc, 1)};
        mask_bm = ur_node_cdata(ur_transpose(t, ur_input_data(t, 2, d, mask)));
        if (!mask_bm) return ur_tape_error(t);
    }
    return ur_attention_memory(t, a, ur_swap01(t, enc), mask_bm, mem);
}

ur_node *ur_attention_scores(ur_tape *t, const ur_attention *a, const ur_attn_memory *mem, ur_node *query) {
    if (!t || ur_tape_error(t)) return NULL;
    if (!a || !mem || !mem->values || !query) {
        ur_tape_fail(t, UR_ERR_ARG, "attention: NULL attention, memory or query");
        return NULL;
    }
    int B = mem->B, S = mem->S;
    int rows = ur_node_dim(query, 0);
    if (ur_node_ndim(query) != 2 || (rows != B && rows != 1) || ur_node_dim(query, 1) != a->query_size) {
        char buf[64];
        ur_tape_fail(t, UR_ERR_SHAPE, "attention: query must be (%d, %d) or (1, %d), got %s", B, a->query_size,
                     a->query_size, given(query, buf, sizeof buf));
        return NULL;
    }
    if (rows != B) { /* one learned query (1, Hq) for every sequence: broadcast to (B, Hq) */
        int dq[2] = {B, a->query_size};
        query = ur_add(t, ur_zeros(t, 2, dq), query);
    }
    int d2[2] = {B, S};
    if (a->score == UR_ATTN_ADDITIVE) { /* v^T tanh(keys + W2 s) */
        int A = a->attn_size, dq[3] = {B, 1, A}, de[2] = {B * S, A};
        ur_node *q = ur_reshape(t, ur_linear(t, query, ur_param_node(t, a->W), NULL), 3, dq);
        ur_node *e = ur_tanh(t, ur_add(t, mem->keys, q)); /* (B, S, A) */
        ur_node *s = ur_linear(t, ur_reshape(t, e, 2, de), ur_param_node(t, a->v), NULL);
        return ur_reshape(t, s, 2, d2);
    }
    ur_node *q = a->score == UR_ATTN_GENERAL ? ur_linear(t, query, ur_param_node(t, a->W), NULL) : query;
    int dq[3] = {B, a->key_size, 1};
    ur_node *s = ur_matmul(t, mem->keys, ur_reshape(t, q, 3, dq), 0, 0); /* (B, S, 1) */
    return ur_reshape(t, s, 2, d2);
}

ur_node *ur_attention_step(ur_tape *t, const ur_attention *a, const ur_attn_memory *mem, ur_node *query,
                           ur_node **weights) {
    if (weights) *weights = NULL;
    ur_node *s = ur_attention_scores(t, a, mem, query);
    if (!s) return NULL;
    int B = mem->B, S = mem->S, dw[3] = {B, 1, S}, dc[2] = {B, a->key_size};
    ur_node *w;
    if (mem->mask) w = ur_masked_softmax(t, s, mem->mask);
    else w = ur_softmax(t, s);
    ur_node *ctx = ur_matmul(t, ur_reshape(t, w, 3, dw), mem->values, 0, 0); /* (B, 1, Hk) */
    ctx = ur_reshape(t, ctx, 2, dc);
    if (!ctx) return NULL;
    if (weights) *weights = w;
    return ctx;
}

ur_node *ur_attention_apply(ur_tape *t, const ur_attention *a, ur_node *query, ur_node *enc, const ur_real *mask,
                            ur_node **weights) {
    ur_attn_memory mem;
    if (weights) *weights = NULL;
    if (ur_attention_memory(t, a, enc, mask, &mem) != UR_OK) return NULL;
    return ur_attention_step(t, a, &mem, query, weights);
}
