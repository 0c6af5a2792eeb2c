/* ur_data.h - datasets for the examples: vocabularies, byte corpora, CoNLL-U
 * (words and part-of-speech tags), bracketed sentiment trees, tab-separated
 * sentence pairs, and length-bucketed padded batches.
 *
 * Conventions (those of ur_tensor.h): a loader returns ur_status and hands back a
 * new object through its last argument (set to NULL on failure); the message of a
 * failure is in ur_last_error(). Malformed input gives UR_ERR_FORMAT with
 * "NAME:LINE: problem" (trees: "NAME:LINE:COL: problem"), LINE and COL counting
 * from 1. Every object is freed with its own _free (NULL is a no-op), which frees
 * everything reachable from it: strings and arrays inside an object are owned by
 * it and stay valid until then. Fields ending in '_' are private storage.
 * Files are read whole; "\r\n" line ends are accepted everywhere.
 */
#ifndef UR_DATA_H
#define UR_DATA_H

#include <stddef.h>
#include <stdint.h>
#include "../../tensor/ur_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest line accepted by the line-based readers (CoNLL-U, trees, pairs). */
enum { UR_DATA_MAX_LINE = 65536 };
/* Default size limit of ur_text_read_file (max_bytes = 0) and of the file readers. */
#define UR_TEXT_MAX_BYTES ((size_t)1 << 30)

/* ======================= vocabulary: string <-> id ======================= */
/* A hash map from byte strings to dense ids 0..size-1 in order of insertion, each
 * with a count (frequency). Lowercasing or other normalisation is the caller's. */
typedef struct ur_vocab ur_vocab;

/* Reserved entries, inserted first in this order when requested (bit flags). */
typedef enum ur_vocab_special {
    UR_VOCAB_PAD = 1, /* "<pad>" */
    UR_VOCAB_UNK = 2, /* "<unk>": ur_vocab_id maps unknown words to it */
    UR_VOCAB_BOS = 4, /* "<s>" */
    UR_VOCAB_EOS = 8  /* "</s>" */
} ur_vocab_special;

/* A new vocabulary holding the specials of the `specials` bit set (count 0); NULL on error. */
ur_vocab *ur_vocab_new(unsigned specials);
void ur_vocab_free(ur_vocab *v);
/* Adds one occurrence of word (inserting it if new); returns its id, -1 on error. */
int ur_vocab_add(ur_vocab *v, const char *word);
/* Adds `count` (>= 0) occurrences of the len bytes at word; returns its id, -1 on error.
 * Counts saturate at INT64_MAX instead of overflowing. */
int ur_vocab_add_n(ur_vocab *v, const char *word, size_t len, int64_t count);
/* Id of word, or -1 when absent. */
int ur_vocab_find(const ur_vocab *v, const char *word);
/* Id of the len bytes at word, or -1 when absent. */
int ur_vocab_find_n(const ur_vocab *v, const char *word, size_t len);
/* Id of word, else the UNK id, else -1. */
int ur_vocab_id(const ur_vocab *v, const char *word);
/* Number of entries (ids are 0..size-1). */
int ur_vocab_size(const ur_vocab *v);
/* The string of id (NUL-terminated, owned by v, valid until the next insertion), or
 * NULL when id is out of range. */
const char *ur_vocab_string(const ur_vocab *v, int id);
/* Byte length of the string of id (0 when out of range). */
size_t ur_vocab_string_len(const ur_vocab *v, int id);
/* The count of id (0 when out of range). */
int64_t ur_vocab_count(const ur_vocab *v, int id);
/* Id of a reserved entry (one UR_VOCAB_* flag), or -1 when v has none. */
int ur_vocab_special_id(const ur_vocab *v, ur_vocab_special which);
/* New vocabulary: `specials` first, then the words of counts seen >= min_count
 * times, most frequent first (ties in byte order), with their counts. */
ur_status ur_vocab_build(const ur_vocab *counts, int64_t min_count, unsigned specials, ur_vocab **out);

/* ======================= byte (character) corpora ======================= */
/* A whole file or generated text. data has len bytes plus a terminating NUL. */
typedef struct ur_text {
    char *data;
    size_t len;
} ur_text;

/* Reads a file; UR_ERR_IO names the file and the reason, UR_ERR_FORMAT for an empty
 * file or one over max_bytes (0 means UR_TEXT_MAX_BYTES). */
ur_status ur_text_read_file(const char *path, size_t max_bytes, ur_text **out);
/* Synthetic English-like play text (speakers, sentences from a small grammar with
 * agreement), n_bytes in [1024, 2^30] (0 means 262144), same seed -> same text;
 * the result is at most n_bytes long and ends with a newline. */
ur_status ur_text_generate(uint64_t seed, size_t n_bytes, ur_text **out);
void ur_text_free(ur_text *t);

/* The set of bytes present in a text, sorted: chars[id] is a byte, id_of[byte]
 * its id or -1. A plain value: no allocation, nothing to free. */
typedef struct ur_charset {
    int size;
    unsigned char chars[256];
    int id_of[256];
} ur_charset;

/* Fills cs with the distinct bytes of data[0..len), in increasing byte order. */
void ur_charset_build(ur_charset *cs, const char *data, size_t len);
/* ids[i] = id of data[i]; UR_ERR_FORMAT naming the offset if a byte is not in cs. */
ur_status ur_charset_encode(const ur_charset *cs, const char *data, size_t len, int *ids);

/* A text encoded with its charset and split in two: ids[0..n_train) for training,
 * ids[n_train..n) for validation. */
typedef struct ur_char_corpus {
    ur_charset cs;
    int *ids;       /* n ids */
    size_t n;
    size_t n_train; /* floor(n * train_fraction) */
} ur_char_corpus;

/* Encodes t and splits it: the first train_fraction (in (0,1], e.g. 0.9) trains. */
ur_status ur_char_corpus_make(const ur_text *t, double train_fraction, ur_char_corpus **out);
void ur_char_corpus_free(ur_char_corpus *c);

/* ======================= CoNLL-U: words and UPOS tags ======================= */
/* The 17 universal part-of-speech tags; ids follow this order. */
typedef enum ur_upos {
    UR_UPOS_ADJ, UR_UPOS_ADP, UR_UPOS_ADV, UR_UPOS_AUX, UR_UPOS_CCONJ, UR_UPOS_DET,
    UR_UPOS_INTJ, UR_UPOS_NOUN, UR_UPOS_NUM, UR_UPOS_PART, UR_UPOS_PRON, UR_UPOS_PROPN,
    UR_UPOS_PUNCT, UR_UPOS_SCONJ, UR_UPOS_SYM, UR_UPOS_VERB, UR_UPOS_X,
    UR_UPOS_COUNT /* 17 */
} ur_upos;

/* "ADJ" .. "X"; NULL when id is out of range. */
const char *ur_upos_name(int id);
/* Tag id of the len bytes at tag, or -1 when it is not one of the 17. */
int ur_upos_id(const char *tag, size_t len);

/* One sentence: len tokens, words[i] its FORM, tags[i] its UPOS id. */
typedef struct ur_tagged_sentence {
    int len;
    const char *const *words;
    const int *tags;
} ur_tagged_sentence;

typedef struct ur_conllu {
    int n_sentences;
    size_t n_tokens;            /* sum of the sentence lengths */
    ur_tagged_sentence *sents;  /* n_sentences */
    const char **words_;        /* private storage */
    int *tags_;
    char *text_;
} ur_conllu;

/* Parses CoNLL-U text: 10 tab-separated columns per token line, '#' comments, blank
 * lines between sentences; range IDs (3-4) and empty nodes (5.1) are skipped. */
ur_status ur_conllu_parse(const char *buf, size_t len, const char *name_for_errors, ur_conllu **out);
/* Reads and parses a CoNLL-U file (errors name the path). */
ur_status ur_conllu_read_file(const char *path, ur_conllu **out);
void ur_conllu_free(ur_conllu *c);

/* ======================= bracketed trees (PTB / SST) ======================= */
/* A node: leaves are "(label word)", internal nodes "(label child child ...)". */
typedef struct ur_tree_node {
    int label;
    int n_children;  /* 0 for a leaf */
    int first_child; /* children are tree->children[first_child .. +n_children) */
    int word;        /* leaf: position of its word in tree->words; internal: -1 */
    int height;      /* leaf 0, else 1 + the largest child height */
    int parent;      /* node index of the parent, -1 for the root */
} ur_tree_node;

/* One tree: nodes in post-order (every child before its parent; the root is last). */
typedef struct ur_tree {
    int n_nodes;
    const ur_tree_node *nodes;
    const int *children;     /* node indices of children, grouped per parent */
    int n_words;             /* number of leaves */
    const char *const *words; /* the sentence, leaves left to right */
    int *word_ids;           /* n_words ids; -1 until ur_treebank_set_word_ids */
    int label;               /* the root's label */
    int max_children;        /* largest child count of a node */
} ur_tree;

typedef struct ur_treebank {
    int n_trees;
    ur_tree *trees;
    ur_tree_node *nodes_;    /* private storage */
    int *children_;
    const char **words_;
    int *word_ids_;
    char *text_;
} ur_treebank;

/* Parse flag: every internal node must have exactly 2 children (binary tree nets). */
enum { UR_TREE_BINARY = 1 };

/* Parses one tree per non-blank line; labels are integers in [0, max_label]
 * (max_label < 0: no upper limit); flags is 0 or UR_TREE_BINARY. */
ur_status ur_treebank_parse(const char *buf, size_t len, const char *name_for_errors, int max_label,
                            int flags, ur_treebank **out);
/* Reads and parses a tree file (errors name the path). */
ur_status ur_treebank_read_file(const char *path, int max_label, int flags, ur_treebank **out);
void ur_treebank_free(ur_treebank *tb);
/* Index of the root node of t (its last node). */
int ur_tree_root(const ur_tree *t);
/* Fills every tree's word_ids with ur_vocab_id(v, word) (UNK or -1 when absent). */
void ur_treebank_set_word_ids(ur_treebank *tb, const ur_vocab *v);
/* SST binary task: 0-1 -> 0 (negative), 3-4 -> 1 (positive), 2 or other -> -1 (drop). */
int ur_sst_binary_label(int label);

/* ======================= sentence pairs (TSV) and tokens ======================= */
/* Lines "source<TAB>target[<TAB>more...]"; extra columns are ignored. */
typedef struct ur_pairs {
    int n;
    const char **src; /* n source strings */
    const char **tgt; /* n target strings */
    char *text_;      /* private storage */
} ur_pairs;

/* Parses pairs; blank lines are skipped, a line with fewer than 2 columns or an
 * empty column is an error. */
ur_status ur_pairs_parse(const char *buf, size_t len, const char *name_for_errors, ur_pairs **out);
/* Reads and parses a pairs file (errors name the path). */
ur_status ur_pairs_read_file(const char *path, ur_pairs **out);
void ur_pairs_free(ur_pairs *p);

/* Tokens of one string: tok[0..n), each NUL-terminated. */
typedef struct ur_tokens {
    int n;
    const char **tok;
    char *text_; /* private storage */
} ur_tokens;

/* Lowercases ASCII, splits at spaces and control bytes (also UTF-8 U+00A0, U+2009,
 * U+202F), makes each ASCII punctuation mark a token except ' and - between letters
 * or digits ("don't", "well-known"); other UTF-8 bytes stay inside words. */
ur_status ur_tokenize(const char *s, size_t len, ur_tokens **out);
void ur_tokens_free(ur_tokens *t);

/* ======================= batches ======================= */
/* Batch k holds the sequence indices index[offset[k] .. offset[k+1]). */
typedef struct ur_batches {
    int n_batches;
    int n;       /* number of indices */
    int *index;  /* n */
    int *offset; /* n_batches + 1 */
} ur_batches;

/* Groups indices 0..n-1 into batches of batch_size (the last may be smaller) of
 * similar lengths[i]: sorts by length with random tie-breaks, chunks, shuffles the
 * batch order. Deterministic given the rng state. */
ur_status ur_bucket_batches(const int *lengths, int n, int batch_size, ur_rng *rng, ur_batches **out);
void ur_batches_free(ur_batches *b);

/* A padded time-major batch: element (t, b) is at [t * B + b]. */
typedef struct ur_padded {
    int T, B;
    int *ids;      /* T*B: seqs[pick[b]][t], or pad_id past the end */
    ur_real *mask; /* T*B: 1 for a real token, 0 for padding */
    int *lens;     /* B: lengths after clipping to T */
} ur_padded;

/* Pads B sequences seqs[pick[b]] (pick NULL: seqs[b]) of lengths lens[pick[b]];
 * T = longest length clipped to max_len (max_len <= 0: no clip), at least 1. */
ur_status ur_batch_pad(const int *const *seqs, const int *lens, const int *pick, int B, int max_len,
                       int pad_id, ur_padded **out);
void ur_padded_free(ur_padded *p);

#ifdef __cplusplus
}
#endif
#endif
