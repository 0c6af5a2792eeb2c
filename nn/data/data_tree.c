/* data_tree.c - bracketed trees, one per line: "(3 (2 It) (4 (2 's) (3 lovely)))".
 *
 * The parser is iterative (no recursion, so deep trees cannot overflow the stack):
 * an open '(' pushes a frame; its ')' emits the node. Nodes are emitted in
 * post-order by construction. Emitted nodes waiting for their parent sit on a
 * `pending` stack; a closing node with k children takes the last k of them.
 * All trees share one node array, one child array and one byte array of words.
 */
#include "data_internal.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#define FN "ur_treebank_parse"

typedef struct frame {
    int label, n_children, word; /* word: tree-local word index or -1 */
    size_t col;                  /* of the '(' */
} frame;

/* Where one tree's items start in the shared arrays. */
typedef struct span {
    size_t node0, child0, word0;
    int n_nodes, n_children, n_words, max_children;
} span;

typedef struct parser {
    const char *name;
    int max_label, flags;
    size_t lineno;
    const char *line;
    size_t len, pos;       /* the line and the read position in it */
    ur_data_vec frames;    /* frame: open nodes */
    ur_data_vec pending;   /* int: tree-local indices of nodes waiting for a parent */
    ur_data_vec nodes;     /* ur_tree_node, all trees */
    ur_data_vec children;  /* int, all trees */
    ur_data_vec text;      /* char: words, NUL-terminated */
    ur_data_vec word_offs; /* size_t: offset of each word in text */
    ur_data_vec spans;     /* span per tree */
    span cur;
} parser;

static ur_status fail_at(const parser *p, size_t col, const char *what) {
    return ur_set_error(UR_ERR_FORMAT, FN ": %s:%zu:%zu: %s", p->name, p->lineno, col, what);
}

static ur_status fail_tok(const parser *p, size_t col, const char *what, const char *tok, size_t n) {
    return ur_set_error(UR_ERR_FORMAT, FN ": %s:%zu:%zu: %s '%.*s'", p->name, p->lineno, col, what,
                        (int)(n > 40 ? 40 : n), tok);
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\v' || c == '\f'; }

static void skip_space(parser *p) {
    while (p->pos < p->len && is_space(p->line[p->pos])) p->pos++;
}

/* Length of the atom (run of non-space, non-bracket bytes) at the read position. */
static size_t atom_len(const parser *p) {
    size_t e = p->pos;
    while (e < p->len && !is_space(p->line[e]) && p->line[e] != '(' && p->line[e] != ')') e++;
    return e - p->pos;
}

/* Reads the label after a '(' opened at column col. */
static ur_status read_label(parser *p, size_t col, int *label) {
    skip_space(p);
    size_t n = atom_len(p), at = p->pos + 1;
    const char *s = p->line + p->pos;
    if (n == 0 && p->pos < p->len && s[0] == ')') return fail_at(p, col, "empty node '()'");
    if (n == 0) return fail_at(p, at, "missing label");
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return fail_tok(p, at, "non-integer label", s, n);
        if (v <= INT_MAX) v = v * 10 + (s[i] - '0');
    }
    if (v > INT_MAX || (p->max_label >= 0 && v > p->max_label)) {
        char what[64];
        snprintf(what, sizeof what, "label out of range [0, %d]:", p->max_label >= 0 ? p->max_label : INT_MAX);
        return fail_tok(p, at, what, s, n);
    }
    p->pos += n;
    *label = (int)v;
    return UR_OK;
}

static ur_status open_node(parser *p) {
    size_t col = ++p->pos; /* past '(' ; col is the 1-based column of '(' */
    frame f = {0, 0, -1, col};
    ur_status s = read_label(p, col, &f.label);
    if (s == UR_OK) s = ur_data_vec_push(&p->frames, &f, 1, FN);
    return s;
}

static ur_status add_word(parser *p, frame *f, size_t n) {
    size_t col = p->pos + 1;
    if (f->word >= 0 || f->n_children > 0) return fail_tok(p, col, "unexpected word", p->line + p->pos, n);
    size_t off = p->text.n;
    ur_status s = ur_data_vec_push(&p->text, p->line + p->pos, n, FN);
    if (s == UR_OK) s = ur_data_vec_push(&p->text, "", 1, FN);
    if (s == UR_OK) s = ur_data_vec_push(&p->word_offs, &off, 1, FN);
    f->word = p->cur.n_words++;
    p->pos += n;
    return s;
}

/* Emits the node of the top frame, linking the last n_children pending nodes. */
static ur_status close_node(parser *p) {
    frame *f = (frame *)p->frames.p + p->frames.n - 1;
    if (f->n_children == 0 && f->word < 0) return fail_at(p, p->pos + 1, "node without a word or children");
    if ((p->flags & UR_TREE_BINARY) && f->n_children > 0 && f->n_children != 2) {
        char what[64];
        snprintf(what, sizeof what, "node with %d child%s (binary trees need 2)", f->n_children,
                 f->n_children == 1 ? "" : "ren");
        return fail_at(p, f->col, what);
    }
    ur_tree_node node = {f->label, f->n_children, (int)(p->children.n - p->cur.child0), f->word, 0, -1};
    int self = p->cur.n_nodes;
    size_t first = p->pending.n - (size_t)f->n_children;
    ur_status s = UR_OK;
    if (f->n_children > 0) { /* only then are the arrays non-empty (NULL + 0 is undefined) */
        int *pend = (int *)p->pending.p + first;
        ur_tree_node *all = (ur_tree_node *)p->nodes.p + p->cur.node0;
        for (int i = 0; i < f->n_children; i++) {
            ur_tree_node *child = all + pend[i];
            child->parent = self;
            if (child->height + 1 > node.height) node.height = child->height + 1;
        }
        s = ur_data_vec_push(&p->children, pend, (size_t)f->n_children, FN);
    }
    if (s == UR_OK) s = ur_data_vec_push(&p->nodes, &node, 1, FN);
    if (s != UR_OK) return s;
    if (f->n_children > p->cur.max_children) p->cur.max_children = f->n_children;
    p->pending.n = first;
    p->frames.n--;
    p->cur.n_nodes++;
    p->pos++;
    if (p->frames.n > 0) ((frame *)p->frames.p)[p->frames.n - 1].n_children++;
    return ur_data_vec_push(&p->pending, &self, 1, FN);
}

/* One step inside an open node: a child, a word or the closing bracket. */
static ur_status step(parser *p) {
    frame *f = (frame *)p->frames.p + p->frames.n - 1;
    skip_space(p);
    if (p->pos >= p->len)
        return fail_at(p, f->col, "unbalanced brackets: '(' is not closed by the end of the line");
    char c = p->line[p->pos];
    if (c == ')') return close_node(p);
    if (c != '(') return add_word(p, f, atom_len(p));
    if (f->word >= 0) return fail_at(p, p->pos + 1, "a child after the word of a leaf");
    return open_node(p);
}

static ur_status parse_tree(parser *p) {
    p->cur = (span){p->nodes.n, p->children.n, p->word_offs.n, 0, 0, 0, 0};
    p->frames.n = p->pending.n = 0;
    skip_space(p);
    if (p->line[p->pos] != '(') return fail_tok(p, p->pos + 1, "expected '(' but found", p->line + p->pos, 1);
    ur_status s = open_node(p);
    while (s == UR_OK && p->frames.n > 0) s = step(p);
    if (s != UR_OK) return s;
    skip_space(p);
    if (p->pos < p->len && p->line[p->pos] == ')') return fail_at(p, p->pos + 1, "unbalanced brackets: extra ')'");
    if (p->pos < p->len) {
        size_t n = atom_len(p);
        return fail_tok(p, p->pos + 1, "trailing text after the tree:", p->line + p->pos, n ? n : 1);
    }
    if (p->spans.n >= INT_MAX) return fail_at(p, 1, "too many trees");
    p->cur.n_children = (int)(p->children.n - p->cur.child0);
    return ur_data_vec_push(&p->spans, &p->cur, 1, FN);
}

static ur_status parse_lines(parser *p, const char *buf, size_t len) {
    ur_data_lines it = ur_data_lines_make(buf, len);
    while (ur_data_lines_next(&it, &p->line, &p->len)) {
        p->lineno = it.lineno;
        p->pos = 0;
        if (p->len > UR_DATA_MAX_LINE)
            return ur_set_error(UR_ERR_FORMAT, FN ": %s:%zu:1: line too long (%zu bytes, limit %d)", p->name,
                                p->lineno, p->len, UR_DATA_MAX_LINE);
        skip_space(p);
        if (p->pos == p->len) continue; /* blank line */
        p->pos = 0;
        ur_status s = parse_tree(p);
        if (s != UR_OK) return s;
    }
    return UR_OK;
}

static void free_parser(parser *p) {
    ur_data_vec *v[] = {&p->frames, &p->pending, &p->nodes, &p->children, &p->text, &p->word_offs, &p->spans};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) ur_data_vec_free(v[i]);
}

/* Points every tree into the shared arrays, which the treebank takes over. */
static ur_status finish(parser *p, ur_treebank **out) {
    size_t nt = p->spans.n, nw = p->word_offs.n;
    /* trees of single leaves have no children: still give the array an address,
     * since pointer arithmetic on NULL is undefined */
    if (ur_data_vec_reserve(&p->children, 1, FN) != UR_OK) return ur_data_nomem(FN);
    ur_treebank *tb = ur_calloc(1, sizeof *tb);
    ur_tree *trees = ur_calloc(nt, sizeof *trees);
    const char **words = ur_malloc(nw * sizeof *words);
    int *ids = ur_malloc(nw * sizeof *ids);
    if (!tb || !trees || !words || !ids) {
        ur_free(tb);
        ur_free(trees);
        ur_free(words);
        ur_free(ids);
        return ur_data_nomem(FN);
    }
    tb->text_ = ur_data_vec_take(&p->text);
    tb->nodes_ = ur_data_vec_take(&p->nodes);
    tb->children_ = ur_data_vec_take(&p->children);
    const size_t *offs = p->word_offs.p;
    for (size_t i = 0; i < nw; i++) {
        words[i] = tb->text_ + offs[i];
        ids[i] = -1;
    }
    for (size_t k = 0; k < nt; k++) {
        const span *sp = (const span *)p->spans.p + k;
        ur_tree *t = &trees[k];
        t->n_nodes = sp->n_nodes;
        t->nodes = tb->nodes_ + sp->node0;
        t->children = tb->children_ + sp->child0;
        t->n_words = sp->n_words;
        t->words = words + sp->word0;
        t->word_ids = ids + sp->word0;
        t->label = t->nodes[t->n_nodes - 1].label;
        t->max_children = sp->max_children;
    }
    tb->n_trees = (int)nt;
    tb->trees = trees;
    tb->words_ = words;
    tb->word_ids_ = ids;
    *out = tb;
    return UR_OK;
}

ur_status ur_treebank_parse(const char *buf, size_t len, const char *name_for_errors, int max_label, int flags,
                            ur_treebank **out) {
    if (!out) return ur_set_error(UR_ERR_ARG, FN ": out is NULL");
    *out = NULL;
    if (!buf && len) return ur_set_error(UR_ERR_ARG, FN ": buf is NULL");
    if (flags & ~UR_TREE_BINARY) return ur_set_error(UR_ERR_ARG, FN ": unknown flags 0x%x", (unsigned)flags);
    parser p = {0};
    p.name = ur_data_name(name_for_errors);
    p.max_label = max_label;
    p.flags = flags;
    p.frames = ur_data_vec_make(sizeof(frame));
    p.pending = ur_data_vec_make(sizeof(int));
    p.nodes = ur_data_vec_make(sizeof(ur_tree_node));
    p.children = ur_data_vec_make(sizeof(int));
    p.text = ur_data_vec_make(1);
    p.word_offs = ur_data_vec_make(sizeof(size_t));
    p.spans = ur_data_vec_make(sizeof(span));
    ur_status s = parse_lines(&p, buf ? buf : "", len);
    if (s == UR_OK) s = finish(&p, out);
    free_parser(&p);
    return s;
}

ur_status ur_treebank_read_file(const char *path, int max_label, int flags, ur_treebank **out) {
    if (!out) return ur_set_error(UR_ERR_ARG, "ur_treebank_read_file: out is NULL");
    *out = NULL;
    char *buf;
    size_t len;
    ur_status s = ur_data_read_all(path, 0, "ur_treebank_read_file", &buf, &len);
    if (s != UR_OK) return s;
    s = ur_treebank_parse(buf, len, path, max_label, flags, out);
    ur_free(buf);
    return s;
}

void ur_treebank_free(ur_treebank *tb) {
    if (!tb) return;
    ur_free(tb->trees);
    ur_free(tb->nodes_);
    ur_free(tb->children_);
    ur_free(tb->words_);
    ur_free(tb->word_ids_);
    ur_free(tb->text_);
    ur_free(tb);
}

int ur_tree_root(const ur_tree *t) { return t ? t->n_nodes - 1 : -1; }

void ur_treebank_set_word_ids(ur_treebank *tb, const ur_vocab *v) {
    if (!tb) return;
    for (int k = 0; k < tb->n_trees; k++) {
        ur_tree *t = &tb->trees[k];
        for (int i = 0; i < t->n_words; i++) t->word_ids[i] = ur_vocab_id(v, t->words[i]);
    }
}

int ur_sst_binary_label(int label) {
    if (label == 0 || label == 1) return 0;
    if (label == 3 || label == 4) return 1;
    return -1;
}
