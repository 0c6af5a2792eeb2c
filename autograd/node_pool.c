/* node_pool.c - where the node structs of a tape live.
 *
 * Node structs are kept out of the value arena so that a handle erased by
 * ur_tape_reset can be recognised: recordings alternate between two pools (every
 * reset switches to the other), so the recording that follows a reset never writes
 * over the nodes of the one before it, and a stale handle still carries its old
 * epoch for the readers and ops to refuse. A handle two or more resets old may sit
 * in memory the current recording has reused; it cannot be told apart then.
 *
 * Chunks are freed only by ur_tape_free, so a stale handle always points at valid
 * memory while its tape lives. Once both pools have grown to the size of a step,
 * recording makes no allocation here. */
#include "tape_internal.h"

#include <string.h>

enum { NODE_CHUNK_MIN = 64, NODE_CHUNK_MAX = 1 << 16 };

struct ur_node_chunk {
    struct ur_node_chunk *next;
    int cap, used;
    ur_node nodes[]; /* cap structs */
};

/* A zeroed node struct for the current recording; NULL + tape error when out of memory. */
ur_node *ur__node_alloc(ur_tape *t) {
    ur_node_chunk **head = &t->node_pool[t->node_side];
    ur_node_chunk *c = t->node_cur, *prev = c;
    if (!c) { /* first node of this recording: rewind the pool */
        c = *head;
        if (c) c->used = 0;
    } else if (c->used == c->cap) {
        c = c->next;
        if (c) c->used = 0;
    }
    if (!c) {
        /* each new chunk doubles the pool, up to NODE_CHUNK_MAX structs a chunk */
        int cap = prev ? prev->cap * 2 : NODE_CHUNK_MIN;
        if (cap > NODE_CHUNK_MAX) cap = NODE_CHUNK_MAX;
        c = ur_malloc(sizeof *c + (size_t)cap * sizeof(ur_node));
        if (!c) {
            ur_tape_fail(t, UR_ERR_NOMEM, "tape: out of memory allocating %d nodes", cap);
            return NULL;
        }
        c->next = NULL;
        c->cap = cap;
        c->used = 0;
        if (prev) prev->next = c;
        else *head = c;
    }
    t->node_cur = c;
    ur_node *n = &c->nodes[c->used++];
    memset(n, 0, sizeof *n);
    return n;
}

/* Called by ur_tape_reset: the next recording takes the other pool. */
void ur__node_pool_rewind(ur_tape *t) {
    t->node_side ^= 1;
    t->node_cur = NULL;
}

void ur__node_pool_free(ur_tape *t) {
    for (int p = 0; p < 2; p++) {
        ur_node_chunk *c = t->node_pool[p];
        while (c) {
            ur_node_chunk *next = c->next;
            ur_free(c);
            c = next;
        }
        t->node_pool[p] = NULL;
    }
    t->node_cur = NULL;
}
