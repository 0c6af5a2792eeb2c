/* seq2seq - an encoder-decoder with attention (nn/ur_seq2seq.h) on two tasks:
 *
 *   seq2seq --task reverse                 digit strings, reversed: a known answer
 *   seq2seq --task eng-fra --beam 5        English -> French sentence pairs (TSV)
 *   seq2seq --load m.safetensors --eval --attention-svg attn.svg
 *
 * The model: a bidirectional GRU (or LSTM) reads the source; a decoder of the same
 * cell reads the previous target word and attends over the source states at every step
 * (dot, general or additive scores; the context joins the decoder's output, and
 * with --attn-mode feed also its next input). Training is teacher-forced: the
 * loss is the mean negative log-likelihood per target word (EOS included).
 * Decoding is greedy, or beam search with --beam K (length-normalised with
 * --len-alpha); --temperature T prints a few samples drawn at that temperature.
 *
 * Held-out data: reverse draws 1000 strings from another seed, none of them in the
 * training set; eng-fra groups the pairs by English sentence and holds out 10% of the
 * sentences (a fixed split), with all their translations as references. Reported:
 * exact match (against any reference), corpus BLEU-4 (multi-reference) and perplexity.
 * --attention-svg draws the attention weights of one held-out example as a heat map.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "flag_names_internal.h"
#include "unroll.h"

enum { MAX_TOKENS = 64, SPLIT_SEED = 12345 };

typedef struct config {
    const char *task, *data, *cell, *score, *attn_mode, *svg;
    int emb, hidden, layers, bi, attn_size, batch, epochs, beam, max_digits, n_train, eval, show, max_len, svg_index;
    double dropout, lr, clip, len_alpha, temperature;
} config;

static const char *const STORED[] = {"--task", "--cell", "--score", "--attn-mode", "--emb", "--hidden", "--layers",
                                     "--bi", "--attn-size", "--dropout", "--lr", "--clip", "--batch", "--epochs",
                                     "--max-digits", "--n-train", "--seed", NULL};
enum { N_STORED = 17 };
_Static_assert(sizeof STORED / sizeof STORED[0] == N_STORED + 1, "N_STORED counts the stored flags");

/* ---- data: pairs of token-id sequences ---- */

typedef struct example {
    int *src, src_len;
    int *tgt, tgt_len;
    int group; /* held-out: index of the English sentence (references share it) */
} example;

typedef struct dataset {
    int n;
    example *ex;
    const int **src, **tgt; /* views for the library calls */
    int *src_len, *tgt_len;
} dataset;

static void dataset_free(dataset *d) {
    for (int i = 0; i < d->n; i++) {
        free(d->ex[i].src);
        free(d->ex[i].tgt);
    }
    free(d->ex);
    free(d->src);
    free(d->tgt);
    free(d->src_len);
    free(d->tgt_len);
    memset(d, 0, sizeof *d);
}

static int dataset_views(dataset *d) {
    size_t n = d->n > 0 ? (size_t)d->n : 1;
    d->src = malloc(n * sizeof *d->src);
    d->tgt = malloc(n * sizeof *d->tgt);
    d->src_len = malloc(n * sizeof *d->src_len);
    d->tgt_len = malloc(n * sizeof *d->tgt_len);
    if (!d->src || !d->tgt || !d->src_len || !d->tgt_len) return 0;
    for (int i = 0; i < d->n; i++) {
        d->src[i] = d->ex[i].src;
        d->tgt[i] = d->ex[i].tgt;
        d->src_len[i] = d->ex[i].src_len;
        d->tgt_len[i] = d->ex[i].tgt_len;
    }
    return 1;
}

/* Ids of the tokens of s (word ids; unknown words become <unk>). */
static int *encode(const ur_vocab *v, const ur_tokens *tk, int *len) {
    int n = tk->n < MAX_TOKENS ? tk->n : MAX_TOKENS;
    int *ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
    for (int i = 0; ids && i < n; i++) ids[i] = ur_vocab_id(v, tk->tok[i]);
    *len = n;
    return ids;
}

/* A digit string of up to 18 digits as one number, after a leading 1 ("042" -> 1042). */
static uint64_t digits_key(const int *ids, int n, const ur_vocab *v) {
    uint64_t k = 1;
    for (int j = 0; j < n; j++) k = 10 * k + (uint64_t)(ur_vocab_string(v, ids[j])[0] - '0');
    return k;
}

static int key_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Digit strings of 1..max_digits digits, each token one digit; the target reversed.
 * A string that is also in `avoid` (the training set, when drawing the held-out set)
 * is drawn again, up to 100 times; *n_seen counts those left (strings of more than 18
 * digits are not checked: they almost never repeat). */
static int make_reverse(dataset *d, int n, int max_digits, uint64_t seed, const ur_vocab *sv, const ur_vocab *tv,
                        const dataset *avoid, int *n_seen) {
    ur_rng rng;
    ur_rng_seed(&rng, seed);
    d->n = n;
    d->ex = calloc((size_t)n, sizeof *d->ex);
    int check = avoid && avoid->n > 0 && max_digits <= 18;
    uint64_t *seen = check ? malloc((size_t)avoid->n * sizeof *seen) : NULL;
    if (!d->ex || (check && !seen)) {
        free(seen);
        return 0;
    }
    for (int i = 0; check && i < avoid->n; i++) seen[i] = digits_key(avoid->src[i], avoid->src_len[i], sv);
    if (check) qsort(seen, (size_t)avoid->n, sizeof *seen, key_cmp);
    if (n_seen) *n_seen = 0;
    for (int i = 0; i < n; i++) {
        example *e = &d->ex[i];
        e->src = malloc((size_t)max_digits * sizeof(int));
        e->tgt = malloc((size_t)max_digits * sizeof(int));
        if (!e->src || !e->tgt) {
            free(seen);
            return 0;
        }
        int again = 1;
        for (int tries = 0; again && tries < 100; tries++) {
            e->src_len = e->tgt_len = 1 + (int)ur_rng_below(&rng, (uint32_t)max_digits);
            for (int j = 0; j < e->src_len; j++) {
                char digit[2] = {(char)('0' + ur_rng_below(&rng, 10)), 0};
                e->src[j] = ur_vocab_id(sv, digit);
                e->tgt[e->src_len - 1 - j] = ur_vocab_id(tv, digit);
            }
            uint64_t key = check ? digits_key(e->src, e->src_len, sv) : 0;
            again = check && bsearch(&key, seen, (size_t)avoid->n, sizeof *seen, key_cmp) != NULL;
        }
        if (n_seen) *n_seen += again;
        e->group = i;
    }
    free(seen);
    return dataset_views(d);
}

/* The eng-fra split: pairs grouped by English sentence, groups shuffled with a fixed
 * seed, the last 10% of the groups held out. held[i] = 1 for a held-out pair. */
static void split_pairs(const ur_pairs *p, int *group, int *held) {
    int n_groups = 0;
    for (int i = 0; i < p->n; i++) { /* pairs of one sentence are adjacent in the file */
        if (i == 0 || strcmp(p->src[i], p->src[i - 1])) n_groups++;
        group[i] = n_groups - 1;
    }
    int *perm = malloc((size_t)n_groups * sizeof *perm);
    ur_rng rng;
    ur_rng_seed(&rng, SPLIT_SEED);
    for (int g = 0; perm && g < n_groups; g++) perm[g] = g;
    for (int g = n_groups - 1; perm && g > 0; g--) {
        int j = (int)ur_rng_below(&rng, (uint32_t)g + 1), x = perm[g];
        perm[g] = perm[j];
        perm[j] = x;
    }
    int n_train = n_groups - n_groups / 10;
    char *is_held = calloc((size_t)n_groups, 1);
    for (int g = n_train; perm && is_held && g < n_groups; g++) is_held[perm[g]] = 1;
    for (int i = 0; i < p->n; i++) held[i] = is_held ? is_held[group[i]] : 0;
    free(perm);
    free(is_held);
}

/* Tokenised sides of every pair (NULL entries on failure). */
static ur_tokens **tokenize_all(const ur_pairs *p, int side) {
    ur_tokens **t = calloc((size_t)p->n, sizeof *t);
    for (int i = 0; t && i < p->n; i++) {
        const char *s = side ? p->tgt[i] : p->src[i];
        if (ur_tokenize(s, strlen(s), &t[i]) != UR_OK) t[i] = NULL;
    }
    return t;
}

static void tokens_free_all(ur_tokens **t, int n) {
    for (int i = 0; t && i < n; i++) ur_tokens_free(t[i]);
    free(t);
}

/* ---- evaluation ---- */

typedef struct score {
    double exact, bleu, ppl, beam_not_worse;
    int n;
} score;

/* Corpus BLEU-4 statistics of one hypothesis against its references: clipped n-gram
 * matches and totals, and the reference length closest to the hypothesis. */
typedef struct bleu_stats {
    double match[4], total[4], hyp_len, ref_len;
} bleu_stats;

static int ngram_count(const int *s, int len, const int *g, int n) {
    int c = 0;
    for (int i = 0; i + n <= len; i++) c += !memcmp(s + i, g, (size_t)n * sizeof(int));
    return c;
}

static void bleu_add(bleu_stats *b, const int *hyp, int hlen, const example *refs, int n_refs) {
    b->hyp_len += hlen;
    int best = -1;
    for (int r = 0; r < n_refs; r++) {
        int d = abs(refs[r].tgt_len - hlen), db = best < 0 ? 0 : abs(refs[best].tgt_len - hlen);
        if (best < 0 || d < db || (d == db && refs[r].tgt_len < refs[best].tgt_len)) best = r;
    }
    b->ref_len += refs[best].tgt_len;
    for (int n = 1; n <= 4; n++) {
        for (int i = 0; i + n <= hlen; i++) {
            if (ngram_count(hyp, i + n - 1, hyp + i, n)) continue; /* each distinct n-gram once */
            int in_hyp = ngram_count(hyp, hlen, hyp + i, n), in_ref = 0;
            for (int r = 0; r < n_refs; r++) {
                int c = ngram_count(refs[r].tgt, refs[r].tgt_len, hyp + i, n);
                if (c > in_ref) in_ref = c;
            }
            b->match[n - 1] += in_hyp < in_ref ? in_hyp : in_ref;
        }
        b->total[n - 1] += hlen - n + 1 > 0 ? hlen - n + 1 : 0;
    }
}

static double bleu_value(const bleu_stats *b) {
    double logp = 0;
    for (int n = 0; n < 4; n++) {
        if (b->match[n] == 0 || b->total[n] == 0) return 0;
        logp += log(b->match[n] / b->total[n]) / 4;
    }
    double bp = b->hyp_len < b->ref_len ? exp(1 - b->ref_len / (b->hyp_len > 0 ? b->hyp_len : 1)) : 1;
    return bp * exp(logp);
}

/* Greedy (and with beam > 1, beam) decoding of the held-out set: one decoding per
 * distinct source (group), scored against every reference of the group. */
static score evaluate(ur_seq2seq *m, ur_tape *t, const dataset *d, const config *cfg, int use_beam) {
    score s = {0, 0, NAN, NAN, 0};
    bleu_stats bs;
    memset(&bs, 0, sizeof bs);
    int max_len = cfg->max_len, *out = malloc((size_t)max_len * sizeof *out), len = 0, not_worse = 0;
    long right = 0;
    if (!out) return s;
    for (int i = 0; i < d->n;) {
        int j = i;
        while (j < d->n && d->ex[j].group == d->ex[i].group) j++; /* references i .. j-1 */
        double lp = 0, g_lp = 0;
        ur_status st;
        if (use_beam) {
            ur_beam_config bc = {cfg->beam, cfg->len_alpha, 0};
            st = ur_seq2seq_beam(m, t, d->src[i], d->src_len[i], max_len, &bc, out, &len, &lp);
            int g_len;
            int *g = malloc((size_t)max_len * sizeof *g);
            if (st == UR_OK && g)
                st = ur_seq2seq_greedy(m, t, &d->src[i], &d->src_len[i], 1, max_len, g, &g_len, &g_lp, NULL);
            not_worse += lp >= g_lp - 1e-4;
            free(g);
        } else {
            st = ur_seq2seq_greedy(m, t, &d->src[i], &d->src_len[i], 1, max_len, out, &len, &lp, NULL);
        }
        if (st != UR_OK) {
            fprintf(stderr, "seq2seq: decoding: %s\n", ur_last_error());
            s.n = 0;
            break;
        }
        int exact = 0;
        for (int r = i; r < j; r++)
            exact |= len == d->ex[r].tgt_len && !memcmp(out, d->ex[r].tgt, (size_t)len * sizeof(int));
        right += exact;
        bleu_add(&bs, out, len, d->ex + i, j - i);
        s.n++;
        i = j;
    }
    free(out);
    if (s.n) {
        s.exact = (double)right / s.n;
        s.bleu = bleu_value(&bs);
        if (use_beam) s.beam_not_worse = (double)not_worse / s.n;
    }
    double ppl;
    if (ur_seq2seq_perplexity(m, t, d->src, d->src_len, d->tgt, d->tgt_len, d->n, 64, &ppl, NULL) == UR_OK) s.ppl = ppl;
    return s;
}

/* ---- printing sequences and the attention heat map ---- */

static void print_ids(FILE *f, const ur_vocab *v, const int *ids, int n, int chars) {
    for (int i = 0; i < n; i++) fprintf(f, "%s%s", i && !chars ? " " : "", ur_vocab_string(v, ids[i]));
}

static void svg_text(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

/* The attention weights (rows: the output words, then EOS if it came; columns: the
 * source words) as a grid of squares, darker for more weight, the words along the edges. */
static int write_svg(const char *path, const ur_vocab *sv, const ur_vocab *tv, const int *src, int S, const int *out,
                     int n_out, int ended, int eos, const ur_real *attn) {
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    /* margins for the labels, at about 7 px per character of 12 px text; the source
     * words are rotated by 60 degrees, so they rise 0.87 and lean right 0.5 of their length */
    const int cell = 28, rows = n_out + ended;
    size_t src_chars = 1, out_chars = 1;
    for (int j = 0; j < S; j++)
        if (ur_vocab_string_len(sv, src[j]) > src_chars) src_chars = ur_vocab_string_len(sv, src[j]);
    for (int i = 0; i < rows; i++)
        if (ur_vocab_string_len(tv, i < n_out ? out[i] : eos) > out_chars)
            out_chars = ur_vocab_string_len(tv, i < n_out ? out[i] : eos);
    int left = 16 + 7 * (int)out_chars, top = 16 + (int)(0.87 * 7 * (double)src_chars);
    int right = 10 + (int)(0.5 * 7 * (double)src_chars);
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
               "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            left + S * cell + right, top + rows * cell + 10);
    for (int j = 0; j < S; j++) { /* source words, rotated, above their columns */
        int x = left + j * cell + cell / 2 + 4, y = top - 6;
        fprintf(f, "<text x=\"%d\" y=\"%d\" transform=\"rotate(-60 %d %d)\">", x, y, x, y);
        svg_text(f, ur_vocab_string(sv, src[j]));
        fputs("</text>\n", f);
    }
    for (int i = 0; i < rows; i++) {
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", left - 6, top + i * cell + cell / 2 + 4);
        svg_text(f, ur_vocab_string(tv, i < n_out ? out[i] : eos));
        fputs("</text>\n", f);
        for (int j = 0; j < S; j++) {
            double w = attn[(size_t)i * S + j];
            int shade = (int)lround(255 * (1 - (w < 0 ? 0 : w > 1 ? 1 : w)));
            fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"rgb(%d,%d,255)\" stroke=\"#ddd\">"
                       "<title>%.3f</title></rect>\n",
                    left + j * cell, top + i * cell, cell, cell, shade, shade, w);
        }
    }
    fputs("</svg>\n", f);
    return fclose(f) == 0;
}

enum {
    SRC_SPECIALS = UR_VOCAB_PAD | UR_VOCAB_UNK,
    TGT_SPECIALS = UR_VOCAB_PAD | UR_VOCAB_UNK | UR_VOCAB_BOS | UR_VOCAB_EOS
};

/* Builds the vocabularies (unless loaded) and the two datasets of the task; 0 after
 * printing an error. *n_seen: held-out reverse strings that are also training strings. */
static int load_data(const config *cfg, uint64_t seed, ur_vocab **sv, ur_vocab **tv, dataset *train, dataset *held,
                     int *n_seen) {
    *n_seen = 0;
    if (!strcmp(cfg->task, "reverse")) { /* the ten digits on both sides */
        if (!*sv) *sv = ur_vocab_new(SRC_SPECIALS);
        if (!*tv) *tv = ur_vocab_new(TGT_SPECIALS);
        for (char dgt = '0'; *sv && *tv && dgt <= '9'; dgt++) {
            ur_vocab_add(*sv, (char[]){dgt, 0});
            ur_vocab_add(*tv, (char[]){dgt, 0});
        }
        int ok = *sv && *tv && make_reverse(train, cfg->n_train, cfg->max_digits, seed, *sv, *tv, NULL, NULL) &&
                 make_reverse(held, 1000, cfg->max_digits, SPLIT_SEED, *sv, *tv, train, n_seen);
        if (!ok) fprintf(stderr, "seq2seq: out of memory for the digit strings\n");
        return ok;
    }
    ur_pairs *p = NULL;
    if (ur_pairs_read_file(cfg->data, &p) != UR_OK) {
        fprintf(stderr, "seq2seq: %s\n", ur_last_error());
        return 0;
    }
    ur_tokens **st = tokenize_all(p, 0), **tt = tokenize_all(p, 1);
    int *group = malloc((size_t)p->n * sizeof *group), *is_held = malloc((size_t)p->n * sizeof *is_held);
    int ok = st && tt && group && is_held, bad = -1;
    for (int i = 0; ok && i < p->n && bad < 0; i++) {
        ok = st[i] && tt[i];
        if (ok && st[i]->n == 0) bad = i;
    }
    if (bad >= 0) { /* a column of spaces: blank lines are skipped, so count pairs, not lines */
        fprintf(stderr, "seq2seq: %s: pair %d ('%s') has no source words\n", cfg->data, bad + 1, p->src[bad]);
        ok = 0;
    }
    if (ok) split_pairs(p, group, is_held);
    if (ok && !*sv) { /* the words of the training side */
        ur_vocab *cs = ur_vocab_new(0), *ct = ur_vocab_new(0);
        for (int i = 0; cs && ct && i < p->n; i++)
            for (int side = 0; side < 2 && !is_held[i]; side++) {
                const ur_tokens *tk = side ? tt[i] : st[i];
                for (int j = 0; j < tk->n; j++) ur_vocab_add(side ? ct : cs, tk->tok[j]);
            }
        ok = cs && ct && ur_vocab_build(cs, 1, SRC_SPECIALS, sv) == UR_OK &&
             ur_vocab_build(ct, 1, TGT_SPECIALS, tv) == UR_OK;
        ur_vocab_free(cs);
        ur_vocab_free(ct);
    }
    for (int h = 0; ok && h < 2; h++) {
        dataset *d = h ? held : train;
        d->ex = calloc((size_t)p->n, sizeof *d->ex);
        ok = d->ex != NULL;
        for (int i = 0; ok && i < p->n; i++) {
            if (is_held[i] != h) continue;
            example *e = &d->ex[d->n++];
            e->src = encode(*sv, st[i], &e->src_len);
            e->tgt = encode(*tv, tt[i], &e->tgt_len);
            e->group = group[i];
            ok = e->src && e->tgt;
        }
        ok = ok && dataset_views(d);
    }
    if (ok && (train->n == 0 || held->n == 0)) {
        fprintf(stderr, "seq2seq: %s: %d pairs are too few: 10%% of the distinct sources are held out, "
                        "and both parts need some\n", cfg->data, p->n);
        ok = 0;
    } else if (!ok && bad < 0) {
        fprintf(stderr, "seq2seq: %s: out of memory\n", cfg->data);
    }
    tokens_free_all(st, p->n);
    tokens_free_all(tt, p->n);
    free(group);
    free(is_held);
    ur_pairs_free(p);
    return ok;
}

/* One training step's loss on the pairs idx[0..B). */
static ur_node *batch_loss(ur_seq2seq *m, ur_tape *t, const dataset *d, const int *idx, int B, uint64_t seed,
                           const int **src, const int **tgt, int *sl, int *tl, int *n_tokens) {
    for (int b = 0; b < B; b++) {
        src[b] = d->src[idx[b]];
        tgt[b] = d->tgt[idx[b]];
        sl[b] = d->src_len[idx[b]];
        tl[b] = d->tgt_len[idx[b]];
    }
    return ur_seq2seq_loss(m, t, src, sl, tgt, tl, B, 1, seed, n_tokens);
}

static void print_score(const char *name, const score *s, int beam) {
    printf("%s (%d sources): exact match %.2f%%, BLEU-4 %.2f, perplexity %.3f", name, s->n, 100 * s->exact,
           100 * s->bleu, s->ppl);
    if (beam) printf(", beam log-prob >= greedy on %.1f%%", 100 * s->beam_not_worse);
    printf("\n");
}

int main(int argc, char **argv) {
    cli_common c;
    cli_common_defaults(&c);
    config cfg = {.task = "reverse", .data = "../shared/data/eng-fra/eng-fra.txt", .cell = "gru", .score = "additive",
                  .attn_mode = "feed", .emb = 0, .hidden = 0, .layers = 1, .bi = 1, .attn_size = 128, .batch = 64,
                  .epochs = 0, .beam = 1, .max_digits = 10, .n_train = 20000, .show = 5, .dropout = -1,
                  .lr = 2e-3, .clip = 5, .len_alpha = 0, .temperature = 0};
    cli_opt opts[] = {
        CLI_COMMON_OPTS(c),
        {"--task", 's', &cfg.task, "reverse (digit strings) or eng-fra (default reverse)"},
        {"--data", 's', &cfg.data, "eng-fra TSV file (default ../shared/data/eng-fra/eng-fra.txt)"},
        {"--eval", 'b', &cfg.eval, "only score the --load model on the held-out data"},
        {"--cell", 's', &cfg.cell, "gru or lstm (default gru)"},
        {"--score", 's', &cfg.score, "attention score: dot, general or additive (default additive)"},
        {"--attn-mode", 's', &cfg.attn_mode, "context joins the output, feed (and input), or input (default feed)"},
        {"--emb", 'i', &cfg.emb, "embedding size (default: reverse 64, eng-fra 256)"},
        {"--hidden", 'i', &cfg.hidden, "state size per direction (default: reverse 128, eng-fra 512)"},
        {"--layers", 'i', &cfg.layers, "encoder layers (default 1)"},
        {"--bi", 'i', &cfg.bi, "1: bidirectional encoder (default 1)"},
        {"--attn-size", 'i', &cfg.attn_size, "additive attention size (default 128)"},
        {"--dropout", 'f', &cfg.dropout, "dropout (default: reverse 0.1, eng-fra 0.4)"},
        {"--lr", 'f', &cfg.lr, "Adam learning rate, cosine-decayed (default 2e-3)"},
        {"--clip", 'f', &cfg.clip, "clip the global gradient norm (default 5)"},
        {"--batch", 'i', &cfg.batch, "pairs per step (default 64)"},
        {"--epochs", 'i', &cfg.epochs, "passes over the training pairs (default: reverse 4, eng-fra 30)"},
        {"--n-train", 'i', &cfg.n_train, "reverse: training strings (default 20000)"},
        {"--max-digits", 'i', &cfg.max_digits, "reverse: longest string (default 10)"},
        {"--max-len", 'i', &cfg.max_len, "longest decoded output (default: longest reference + 5)"},
        {"--beam", 'i', &cfg.beam, "beam width for the held-out decoding (default 1: greedy only)"},
        {"--len-alpha", 'f', &cfg.len_alpha, "beam: normalise log-probs by length^alpha (default 0)"},
        {"--temperature", 'f', &cfg.temperature, "print samples drawn at this temperature"},
        {"--show", 'i', &cfg.show, "held-out examples to print (default 5)"},
        {"--attention-svg", 's', &cfg.svg, "write the attention of one held-out example as SVG"},
        {"--attention-example", 'i', &cfg.svg_index, "which held-out source --attention-svg draws, counted from 0 "
                                                      "in the order the examples print (default 0)"},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    const char *about = "seq2seq: an encoder-decoder with attention (reverse digit strings, or English -> French)";
    ur_ckpt *ck = NULL;
    int r = cli_start(argc, argv, "seq2seq", about, &c, opts, n_opts, STORED, &ck);
    if (r >= 0) return r;
    int reverse = !strcmp(cfg.task, "reverse");
    ur_seq2seq_config mc = ur_seq2seq_defaults(1, 1, 0, 0);
    if ((!reverse && strcmp(cfg.task, "eng-fra")) || ur_attn_score_parse(cfg.score, &mc.score) != UR_OK ||
        ur_s2s_attn_mode_parse(cfg.attn_mode, &mc.attn_mode) != UR_OK ||
        (strcmp(cfg.cell, "gru") && strcmp(cfg.cell, "lstm")) ||
        cfg.batch < 1 || cfg.beam < 1 || cfg.n_train < 1 || cfg.max_digits < 1) {
        fprintf(stderr, "seq2seq: bad --task, --score, --attn-mode, --cell, --batch, --beam or sizes (see --help)\n");
        ur_ckpt_close(ck);
        return 2;
    }
    if (cfg.eval && !ck) {
        fprintf(stderr, "seq2seq: --eval needs a model (--load)\n");
        return 2;
    }
    /* the defaults of each task: 4,500 sentence pairs need a wider, more regularised model */
    if (cfg.epochs <= 0) cfg.epochs = reverse ? 4 : 30;
    if (cfg.emb <= 0) cfg.emb = reverse ? 64 : 256;
    if (cfg.hidden <= 0) cfg.hidden = reverse ? 128 : 512;
    if (cfg.dropout < 0) cfg.dropout = reverse ? 0.1 : 0.4;

    /* ---- data ---- */
    ur_vocab *sv = NULL, *tv = NULL;
    if (ck) {
        const char *st = ur_ckpt_meta(ck, "src_vocab"), *tt = ur_ckpt_meta(ck, "tgt_vocab");
        sv = st ? cli_vocab_from_text(st, SRC_SPECIALS) : NULL;
        tv = tt ? cli_vocab_from_text(tt, TGT_SPECIALS) : NULL;
        if (!sv || !tv) fprintf(stderr, "seq2seq: --load %s: no usable vocabularies in the metadata\n", c.load);
    }
    dataset train = {0}, held = {0};
    int n_seen = 0, ok = (!ck || (sv && tv)) && load_data(&cfg, (uint64_t)c.seed, &sv, &tv, &train, &held, &n_seen);
    int longest = 0;
    for (int i = 0; ok && i < held.n; i++)
        if (held.tgt_len[i] > longest) longest = held.tgt_len[i];
    if (cfg.max_len <= 0) cfg.max_len = longest + 5;
    int svg_pair = -1; /* the first pair of the chosen source: its references follow it */
    for (int i = 0, k = -1; ok && cfg.svg && i < held.n && svg_pair < 0; i++) {
        k += i == 0 || held.ex[i].group != held.ex[i - 1].group;
        if (k == cfg.svg_index) svg_pair = i;
    }
    if (ok && cfg.svg && svg_pair < 0) {
        fprintf(stderr, "seq2seq: --attention-example %d: there are fewer held-out sources\n", cfg.svg_index);
        ok = 0;
    }
    if (ok && reverse)
        printf("seq2seq: reverse: %d training strings, %d held-out strings (%d of them also in training)\n", train.n,
               held.n, n_seen);
    else if (ok)
        printf("seq2seq: eng-fra: %d training pairs, %d held-out pairs; vocabularies %d -> %d words\n", train.n,
               held.n, ur_vocab_size(sv), ur_vocab_size(tv));

    /* ---- the model ---- */
    ur_paramset *ps = ur_paramset_new();
    ur_seq2seq *m = NULL;
    int eos = ok ? ur_vocab_special_id(tv, UR_VOCAB_EOS) : 0;
    if (ok) {
        mc.cell = strcmp(cfg.cell, "lstm") ? UR_RNN_GRU : UR_RNN_LSTM;
        mc.src_vocab = ur_vocab_size(sv);
        mc.tgt_vocab = ur_vocab_size(tv);
        mc.bos_id = ur_vocab_special_id(tv, UR_VOCAB_BOS);
        mc.eos_id = eos;
        mc.emb_dim = cfg.emb;
        mc.hidden = cfg.hidden;
        mc.enc_layers = cfg.layers;
        mc.bidirectional = cfg.bi;
        mc.attn_size = cfg.attn_size;
        mc.dropout = cfg.dropout;
        mc.seed = (uint64_t)c.seed;
        m = ur_seq2seq_new(ps, "s2s", &mc);
    }
    ur_optim_config oc = ur_optim_defaults(UR_OPTIM_ADAM, cfg.lr);
    ur_optim *opt = m ? ur_optim_new(ps, &oc) : NULL;
    ur_tape *tape = ur_tape_new();
    if (ok && (!m || !opt || !tape)) {
        fprintf(stderr, "seq2seq: setup failed: %s\n", ur_last_error());
        ok = 0;
    }
    if (ok && ck) {
        ur_status s = ur_ckpt_read_params(ck, ps, 0);
        if (s == UR_OK && !cfg.eval) s = ur_ckpt_read_optim(ck, opt);
        if (s != UR_OK) fprintf(stderr, "seq2seq: --load %s: %s\n", c.load, ur_last_error());
        ok = s == UR_OK;
    }
    if (ok)
        printf("model: %s encoder %s%d x %d, %s attention (%s), %zu parameters\n", cfg.cell, cfg.bi ? "bi-" : "",
               cfg.layers, cfg.hidden, cfg.score, cfg.attn_mode, ur_paramset_numel(ps));

    /* ---- training: length-bucketed batches, a new order every epoch ---- */
    long per_epoch = ok ? (train.n + cfg.batch - 1) / cfg.batch : 1;
    long first = ok ? (long)ur_optim_step_count(opt) : 0, total = per_epoch * cfg.epochs;
    long last = cfg.eval ? first : c.steps > 0 && c.steps < total ? c.steps : total;
    ur_lr_schedule sched = ur_lr_cosine(cfg.lr, cfg.lr / 20, total);
    const int **bsrc = malloc((size_t)cfg.batch * 2 * sizeof *bsrc);
    int *blen = malloc((size_t)cfg.batch * 2 * sizeof *blen);
    ur_batches *order = NULL;
    ur_rng rng;
    ur_rng_seed(&rng, (uint64_t)c.seed);
    ok = ok && bsrc && blen;
    if (ok && !cfg.eval && (c.dot || c.print_tape || c.grad_report)) { /* look inside one step: 2 pairs */
        int idx[2] = {0, train.n > 1 ? 1 : 0}, B = cfg.batch < 2 ? 1 : 2;
        ur_tape_reset(tape);
        ur_node *loss = batch_loss(m, tape, &train, idx, B, 1, bsrc, bsrc + cfg.batch, blen, blen + cfg.batch, NULL);
        ur_paramset_zero_grad(ps);
        if (ur_backward(tape, loss) == UR_OK) {
            if (c.print_tape) ur_tape_print(tape, stdout);
            if (c.dot && cli_write_dot(tape, c.dot) == 0)
                printf("wrote the tape of one training step (%d pairs) to %s\n", B, c.dot);
            if (c.grad_report) cli_grad_report_params(ps, stdout);
        }
        ur_paramset_zero_grad(ps);
    }
    double started = cli_now(), window = 0, first_loss = NAN, last_loss = NAN;
    double *losses = calloc((size_t)(last > first ? last - first : 1), sizeof *losses);
    long n_window = 0, tokens = 0;
    ok = ok && losses;
    if (ok && last > first) cli_progress_start(first);
    for (long step = first; ok && step < last; step++) {
        long k = step % per_epoch;
        if (!order || k == 0) {
            ur_batches_free(order);
            order = NULL;
            ur_rng er; /* the epoch's order depends on the seed and the epoch only */
            ur_rng_seed(&er, (uint64_t)c.seed * 7919u + (uint64_t)(step / per_epoch));
            if (ur_bucket_batches(train.src_len, train.n, cfg.batch, &er, &order) != UR_OK) {
                fprintf(stderr, "seq2seq: %s\n", ur_last_error());
                ok = 0;
                break;
            }
        }
        int B = order->offset[k + 1] - order->offset[k], n_tok = 0;
        ur_tape_reset(tape);
        ur_node *loss = batch_loss(m, tape, &train, order->index + order->offset[k], B,
                                   (uint64_t)c.seed * 1000003u + (uint64_t)step, bsrc, bsrc + cfg.batch, blen,
                                   blen + cfg.batch, &n_tok);
        ur_optim_zero_grad(opt);
        if (ur_backward(tape, loss) != UR_OK) {
            fprintf(stderr, "seq2seq: %s\n", ur_tape_error(tape) ? ur_tape_errmsg(tape) : ur_last_error());
            ok = 0;
            break;
        }
        ur_optim_set_lr(opt, ur_lr_at(&sched, step));
        if (ur_clip_grad_norm(ps, cfg.clip, NULL) != UR_OK || ur_optim_step(opt) != UR_OK) {
            fprintf(stderr, "seq2seq: step %ld: %s\n", step + 1, ur_last_error());
            ok = 0;
            break;
        }
        double l = losses[step - first] = ur_node_item(loss);
        if (step == first) first_loss = l;
        tokens += n_tok;
        window += l;
        n_window++;
        if ((step + 1) % 20 == 0 || step + 1 == last) {
            last_loss = window / (double)n_window;
            cli_progress(step + 1, last, last_loss, (double)tokens / (cli_now() - started), started);
            window = 0;
            n_window = 0;
        }
        if ((step + 1) % per_epoch == 0 && step + 1 < last && !reverse && (step + 1) / per_epoch % 5 == 0) {
            double ppl;
            if (ur_seq2seq_perplexity(m, tape, held.src, held.src_len, held.tgt, held.tgt_len, held.n, 64, &ppl,
                                      NULL) == UR_OK) {
                cli_progress_end();
                printf("epoch %ld: held-out perplexity %.3f\n", (step + 1) / per_epoch, ppl);
            }
        }
    }
    cli_progress_end();
    double seconds = cli_now() - started;
    if (ok && c.save) {
        char store[N_STORED][CLI_META_LEN];
        ur_ckpt_kv meta[N_STORED + 4];
        char *st = cli_vocab_to_text(sv, 2), *tt = cli_vocab_to_text(tv, 4); /* after the specials */
        int k = cli_meta_put(opts, n_opts, STORED, store, meta);
        meta[k++] = (ur_ckpt_kv){"example", "seq2seq"};
        meta[k++] = (ur_ckpt_kv){"src_vocab", st ? st : ""};
        meta[k++] = (ur_ckpt_kv){"tgt_vocab", tt ? tt : ""};
        meta[k] = (ur_ckpt_kv){NULL, NULL};
        ok = st && tt && ur_ckpt_save_training(c.save, ps, opt, meta) == UR_OK;
        if (ok) printf("saved %s (step %ld)\n", c.save, (long)ur_optim_step_count(opt));
        else fprintf(stderr, "seq2seq: --save %s: %s\n", c.save, ur_last_error());
        free(st);
        free(tt);
    }

    /* ---- held-out scores, examples, attention ---- */
    score greedy = {NAN, NAN, NAN, NAN, 0}, beam = greedy;
    double eval_s = 0;
    if (ok) {
        double t0 = cli_now();
        greedy = evaluate(m, tape, &held, &cfg, 0);
        print_score("held-out, greedy", &greedy, 0);
        if (cfg.beam > 1) {
            beam = evaluate(m, tape, &held, &cfg, 1);
            char name[48];
            snprintf(name, sizeof name, "held-out, beam %d", cfg.beam);
            print_score(name, &beam, 1);
        }
        eval_s = cli_now() - t0;
        ok = greedy.n > 0;
    }
    int *out = malloc((size_t)cfg.max_len * sizeof *out), len;
    ur_rng sample_rng;
    ur_rng_seed(&sample_rng, (uint64_t)c.seed + 17);
    for (int i = 0, shown = 0; ok && out && i < held.n && shown < cfg.show; i++) {
        if (i && held.ex[i].group == held.ex[i - 1].group) continue;
        shown++;
        printf("  source    ");
        print_ids(stdout, sv, held.src[i], held.src_len[i], reverse);
        printf("\n  reference ");
        print_ids(stdout, tv, held.tgt[i], held.tgt_len[i], reverse);
        double lp;
        if (ur_seq2seq_greedy(m, tape, &held.src[i], &held.src_len[i], 1, cfg.max_len, out, &len, &lp, NULL) == UR_OK) {
            printf("\n  greedy    ");
            print_ids(stdout, tv, out, len, reverse);
            printf("   (log p %.3f)", lp);
        }
        ur_beam_config bc = {cfg.beam, cfg.len_alpha, 0};
        if (cfg.beam > 1 &&
            ur_seq2seq_beam(m, tape, held.src[i], held.src_len[i], cfg.max_len, &bc, out, &len, &lp) == UR_OK) {
            printf("\n  beam %-4d ", cfg.beam);
            print_ids(stdout, tv, out, len, reverse);
            printf("   (log p %.3f)", lp);
        }
        for (int s = 0; cfg.temperature > 0 && s < 3; s++)
            if (ur_seq2seq_sample(m, tape, &held.src[i], &held.src_len[i], 1, cfg.max_len, cfg.temperature, &sample_rng,
                                  out, &len, &lp) == UR_OK) {
                printf("\n  T=%-7.2f ", cfg.temperature);
                print_ids(stdout, tv, out, len, reverse);
                printf("   (log p %.3f)", lp);
            }
        printf("\n");
    }
    if (ok && out && cfg.svg) { /* greedy decoding of one held-out source, its attention as a picture */
        int i = svg_pair, S = held.src_len[i];
        ur_real *attn = malloc((size_t)cfg.max_len * (size_t)S * sizeof *attn);
        double lp;
        ok = 0;
        if (!attn)
            fprintf(stderr, "seq2seq: --attention-svg: out of memory\n");
        else if (ur_seq2seq_greedy(m, tape, &held.src[i], &held.src_len[i], 1, cfg.max_len, out, &len, &lp,
                                   attn) != UR_OK)
            fprintf(stderr, "seq2seq: --attention-svg: %s\n", ur_last_error());
        else if (!write_svg(cfg.svg, sv, tv, held.src[i], S, out, len, len < cfg.max_len, eos, attn))
            fprintf(stderr, "seq2seq: --attention-svg: cannot write %s\n", cfg.svg);
        else
            ok = 1;
        if (ok) printf("wrote the attention of held-out example %d to %s\n", cfg.svg_index, cfg.svg);
        free(attn);
    }
    free(out);
    if (ok && !cfg.eval) printf("trained %ld steps in %.1f s; ", last - first, seconds);
    if (ok) printf("held-out decoding %.1f s\n", eval_s);
    if (ok && c.json) {
        cli_json j;
        cli_json_begin(&j);
        cli_json_str(&j, "example", "seq2seq");
        cli_json_str(&j, "task", cfg.task);
        if (!cfg.eval) { /* --eval does not read the optimizer: no step count */
            cli_json_int(&j, "step", (long)ur_optim_step_count(opt));
            cli_json_int(&j, "first_step", first + 1);
            cli_json_num(&j, "first_loss", first_loss);
            cli_json_num(&j, "last_loss", last_loss);
        }
        cli_json_num(&j, "exact_match", greedy.exact);
        cli_json_num(&j, "bleu4", greedy.bleu);
        cli_json_num(&j, "perplexity", greedy.ppl);
        if (cfg.beam > 1) {
            cli_json_int(&j, "beam", cfg.beam);
            cli_json_num(&j, "beam_exact_match", beam.exact);
            cli_json_num(&j, "beam_bleu4", beam.bleu);
            cli_json_num(&j, "beam_not_below_greedy", beam.beam_not_worse);
        }
        cli_json_int(&j, "params", (long)ur_paramset_numel(ps));
        if (!cfg.eval) {
            cli_json_num(&j, "seconds", seconds);
            cli_json_num(&j, "tokens_per_s", seconds > 0 ? (double)tokens / seconds : 0);
            cli_json_array(&j, "losses", losses, (int)(last > first ? last - first : 0));
        }
        cli_json_end(&j);
    }
    free(losses);
    free(bsrc);
    free(blen);
    ur_batches_free(order);
    ur_tape_free(tape);
    ur_optim_free(opt);
    ur_seq2seq_free(m);
    ur_paramset_free(ps);
    dataset_free(&train);
    dataset_free(&held);
    ur_vocab_free(sv);
    ur_vocab_free(tv);
    ur_ckpt_close(ck);
    ur_kernel_free_buffers();
    return ok ? 0 : 1;
}
