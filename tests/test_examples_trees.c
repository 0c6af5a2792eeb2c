/* The tree and attention examples run as programs: treenet (recursive nets over
 * SST-style trees) and seq2seq (encoder-decoder with attention). Each run is short
 * (--steps, tiny models) and prints its metrics with --json on the last line of
 * stdout, which is checked here:
 *   treenet  every cell learns a small file; the batched and the node-by-node graphs
 *            give the same losses; --eval of a saved model gives the training run's
 *            scores; a run saved half-way and resumed with --load gives bit-identical
 *            losses; a malformed tree file names the file, line and column.
 *   seq2seq  reversing digit strings learns in a few steps; beam search runs; the
 *            attention SVG is well formed (every row of weights sums to 1); resume is
 *            bit-identical (reverse, and a small TSV whose vocabularies travel in the
 *            checkpoint); --eval reproduces the scores; bad TSV files give clear errors;
 *            --init, --forget-bias, --variational and --cell gru_reset_before change the
 *            model as they say and are kept in the checkpoint; an older checkpoint loads.
 * The runs on the real datasets are skipped with a message when they are absent. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "support.h"
#include "unroll.h"

#define BIN UR_BINARY_DIR "/bin/"
/* One kernel thread: ctest runs test binaries side by side on a small machine. */
#define ONE " --threads 1"

/* Runs `BIN prog args` (a flag error): it must exit with 2 and print exactly `message`
 * and a newline, nothing else. */
static void expect_flag_error(const char *prog, const char *args, const char *message) {
    char cmd[1024], want[512];
    snprintf(cmd, sizeof cmd, BIN "%s %s", prog, args);
    snprintf(want, sizeof want, "%s\n", message);
    ur_test_result r = ur_test_run(cmd, 1);
    cr_expect_eq(r.code, 2, "'%s' exited with %d", cmd, r.code);
    cr_expect_str_eq(r.out, want, "'%s'", cmd);
    free(r.out);
}

static int is_fraction(double x) { return x >= 0 && x <= 1; }

/* ---- small input files ---- */

/* n SST-style trees: "good"/"fun" sentences are positive (4), "bad"/"dull" negative (0). */
static void write_trees(const char *path, int n) {
    static const char *const pos[] = {"good", "fun", "great"}, *const neg[] = {"bad", "dull", "awful"};
    static const char *const noun[] = {"movie", "film", "plot", "cast"};
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    for (int i = 0; i < n; i++) {
        int good = i % 2 == 0, k = i / 2;
        const char *adj = good ? pos[k % 3] : neg[k % 3];
        int y = good ? 4 : i % 4 == 1 ? 0 : 1;
        if (k % 2)
            fprintf(f, "(%d (2 the) (%d (2 %s) (%d (2 is) (%d %s))))\n", y, y, noun[k % 4], y, y, adj);
        else
            fprintf(f, "(%d (%d (2 a) (%d %s)) (2 %s))\n", y, y, y, adj, noun[k % 4]);
    }
    fclose(f);
}

/* English -> French pairs from a few patterns ("i see the dog ." -> "je vois le chien ."):
 * 40 distinct sources; every fourth one has a second translation on the next line. */
static void write_pairs(const char *path) {
    static const char *const subj[][2] = {{"i", "je"}, {"you", "tu"}, {"we", "nous"}, {"they", "ils"}};
    static const char *const verb[][5] = {{"see", "vois", "vois", "voyons", "voient"},
                                          {"want", "veux", "veux", "voulons", "veulent"}};
    static const char *const noun[][2] = {{"the dog", "le chien"}, {"the cat", "le chat"}, {"a house", "une maison"},
                                          {"the car", "la voiture"}, {"a book", "un livre"}};
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    for (int i = 0; i < 40; i++) {
        int s = i % 4, v = (i / 4) % 2, o = (i / 8) % 5;
        for (int k = 0; k < 1 + (i % 4 == 0); k++)
            fprintf(f, "%s %s %s .\t%s %s %s %s\tCC-BY test\n", subj[s][0], verb[v][0], noun[o][0], subj[s][1],
                    verb[v][1 + s], noun[o][1], k ? "!" : ".");
    }
    fclose(f);
}

/* ---- treenet ---- */

#define TREE_SMALL BIN "treenet" ONE " --dim 16 --batch-trees 8"
static const char *const MODELS[] = {"rnn", "treelstm", "childsum"};

Test(treenet, every_model_learns_a_small_file, .timeout = 60) {
    char train[512], cmd[2048];
    ur_test_tmp_path("trees.txt", train, sizeof train);
    write_trees(train, 48);
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, TREE_SMALL " --model %s --train %s --dev %s --epochs 6 --json", MODELS[i], train,
                 train);
        char *j = ur_test_run_json(cmd);
        double first = ur_test_json_number(j, "first_loss"), last = ur_test_json_number(j, "last_loss");
        double root = ur_test_json_number(j, "dev_binary_root_accuracy"), nodes = ur_test_json_number(j, "dev_all_node_accuracy");
        cr_expect(isfinite(first) && last < first - 0.2, "%s: loss %g -> %g", MODELS[i], first, last);
        cr_expect(is_fraction(root) && is_fraction(nodes), "%s: accuracies %g, %g", MODELS[i], root, nodes);
        cr_expect_gt(root, 0.9, "%s: one word decides the class, root accuracy %g", MODELS[i], root);
        cr_expect(isnan(ur_test_json_number(j, "dev_fine_root_accuracy")), "binary task: no fine accuracy");
        cr_expect_eq((int)ur_test_json_number(j, "step"), 36);
        free(j);
    }
    remove(train);
}

/* Without dropout the batched graph (one op per level) and the node-by-node graph
 * compute the same function; sums run in another order, so the losses agree to
 * float rounding. */
Test(treenet, batched_equals_node_by_node, .timeout = 60) {
    char train[512], cmd[2048];
    ur_test_tmp_path("batching.txt", train, sizeof train);
    write_trees(train, 40);
    for (int i = 0; i < 3; i++) {
        double a[16], b[16];
        snprintf(cmd, sizeof cmd, TREE_SMALL " --model %s --train %s --dev %s --dropout 0 --steps 8 --json", MODELS[i],
                 train, train);
        char *j = ur_test_run_json(cmd);
        int na = ur_test_json_array(j, "losses", a, 16);
        free(j);
        strcat(cmd, " --no-batching");
        j = ur_test_run_json(cmd);
        int nb = ur_test_json_array(j, "losses", b, 16);
        free(j);
        cr_assert(na == 8 && nb == 8, "%s: %d and %d losses", MODELS[i], na, nb);
        for (int k = 0; k < 8; k++)
            cr_expect(fabs(a[k] - b[k]) <= 1e-5 * fabs(a[k]), "%s step %d: batched %.9g, node by node %.9g",
                      MODELS[i], k + 1, a[k], b[k]);
    }
    remove(train);
}

Test(treenet, eval_of_a_saved_model_reproduces_its_scores, .timeout = 60) {
    char train[512], ck[512], cmd[2048];
    ur_test_tmp_path("eval-trees.txt", train, sizeof train);
    ur_test_tmp_path("treenet-eval.safetensors", ck, sizeof ck);
    write_trees(train, 40);
    /* fine task: the checkpoint must carry the task, the cell, the sizes and the vocabulary */
    snprintf(cmd, sizeof cmd, TREE_SMALL " --model childsum --task fine --train %s --dev %s --steps 3 --save %s --json",
             train, train, ck);
    char *j = ur_test_run_json(cmd);
    double fine = ur_test_json_number(j, "dev_fine_root_accuracy"), bin = ur_test_json_number(j, "dev_binary_root_accuracy");
    double nodes = ur_test_json_number(j, "dev_all_node_accuracy"), loss = ur_test_json_number(j, "dev_loss");
    cr_expect(is_fraction(fine) && is_fraction(bin) && is_fraction(nodes), "accuracies %g %g %g", fine, bin, nodes);
    free(j);
    snprintf(cmd, sizeof cmd, BIN "treenet" ONE " --load %s --eval %s --json", ck, train);
    j = ur_test_run_json(cmd);
    cr_expect_eq(ur_test_json_number(j, "fine_root_accuracy"), fine, "--eval fine root %g, training run %g",
                 ur_test_json_number(j, "fine_root_accuracy"), fine);
    cr_expect_eq(ur_test_json_number(j, "binary_root_accuracy"), bin);
    cr_expect_eq(ur_test_json_number(j, "all_node_accuracy"), nodes);
    cr_expect_eq(ur_test_json_number(j, "loss"), loss, "--eval loss %g, training run %g", ur_test_json_number(j, "loss"), loss);
    free(j);
    remove(train);
    remove(ck);
}

Test(treenet, resume_is_bit_identical, .timeout = 60) {
    char train[512], ck[512], base[2048], resume[2048];
    ur_test_tmp_path("resume-trees.txt", train, sizeof train);
    ur_test_tmp_path("treenet-resume.safetensors", ck, sizeof ck);
    write_trees(train, 44); /* 6 steps per epoch: stop mid-epoch, resume into the next */
    snprintf(resume, sizeof resume, BIN "treenet" ONE " --train %s --dev %s", train, train);
    /* dropout (drawn from the step), Adagrad's sums and the cosine schedule must all resume */
    snprintf(base, sizeof base, TREE_SMALL " --model treelstm --train %s --dev %s", train, train);
    ur_test_check_resume(base, resume, 4, 10, ck);
    snprintf(base, sizeof base, TREE_SMALL " --model rnn --optim adam --lr 0.01 --train %s --dev %s", train, train);
    ur_test_check_resume(base, resume, 7, 10, ck);
    remove(train);
}

Test(treenet, malformed_and_missing_files, .timeout = 30) {
    char path[512], cmd[2048], where[600];
    ur_test_tmp_path("bad-trees.txt", path, sizeof path);
    /* a label that is not a number, at line 2, column 12 */
    ur_test_write_text(path, "(3 (2 it) (3 works))\n(4 (2 it) (x (2 does) (4 not)))\n");
    snprintf(cmd, sizeof cmd, BIN "treenet" ONE " --train %s --dev %s", path, path);
    snprintf(where, sizeof where, "%s:2:12:", path);
    ur_test_expect_failure(cmd, (const char *const[]){where, "label", NULL});
    /* an unclosed bracket */
    ur_test_write_text(path, "(3 (2 it) (3 works))\n\n(4 (2 it) (4 (2 does) (4 not))\n");
    snprintf(where, sizeof where, "%s:3:1:", path);
    ur_test_expect_failure(cmd, (const char *const[]){where, "unbalanced", NULL});
    /* three children: the cells are binary */
    ur_test_write_text(path, "(4 (2 it) (4 does) (4 not))\n");
    snprintf(where, sizeof where, "%s:1:1:", path);
    ur_test_expect_failure(cmd, (const char *const[]){where, "3 children", NULL});
    remove(path);
    snprintf(cmd, sizeof cmd, BIN "treenet" ONE " --train %s --dev %s", path, path);
    ur_test_expect_failure(cmd, (const char *const[]){path, "cannot open", NULL});
    snprintf(cmd, sizeof cmd, BIN "treenet" ONE " --load %s --eval %s", path, path);
    ur_test_expect_failure(cmd, (const char *const[]){path, NULL});
}

Test(treenet, sst, .timeout = 60) {
    char train[512], dir[512], cmd[2048];
    if (!ur_test_data_path("sst/train.txt", train, sizeof train) || !ur_test_data_path("sst/dev.txt", dir, sizeof dir))
        cr_skip_test("sst is not in the data folder");
    *strrchr(dir, '/') = '\0';
    snprintf(cmd, sizeof cmd, TREE_SMALL " --data-dir %s --task fine --steps 15 --json", dir);
    char *j = ur_test_run_json(cmd);
    double fine = ur_test_json_number(j, "dev_fine_root_accuracy"), bin = ur_test_json_number(j, "dev_binary_root_accuracy");
    cr_expect(is_fraction(fine) && is_fraction(bin), "accuracies %g, %g", fine, bin);
    cr_expect_gt(fine, 0.2, "5 classes: fine root accuracy %g is below chance", fine);
    cr_expect_lt(ur_test_json_number(j, "last_loss"), ur_test_json_number(j, "first_loss"));
    free(j);
}

/* ---- seq2seq ---- */

#define S2S_SMALL                                                                                        \
    BIN "seq2seq" ONE " --n-train 2000 --max-digits 6 --hidden 32 --emb 16 --attn-size 32 --batch 32 --show 0"
#define S2S_TSV BIN "seq2seq" ONE " --task eng-fra --hidden 16 --emb 8 --attn-size 16 --batch 8 --show 0"

Test(seq2seq_app, reverse_learns_in_a_few_steps, .timeout = 60) {
    char *j = ur_test_run_json(S2S_SMALL " --steps 120 --lr 5e-3 --json");
    double first = ur_test_json_number(j, "first_loss"), last = ur_test_json_number(j, "last_loss");
    double exact = ur_test_json_number(j, "exact_match"), bleu = ur_test_json_number(j, "bleu4"), ppl = ur_test_json_number(j, "perplexity");
    cr_expect(isfinite(first) && last < first - 1, "loss %g -> %g", first, last);
    cr_expect(is_fraction(exact) && is_fraction(bleu), "exact match %g, BLEU %g", exact, bleu);
    cr_expect_gt(exact, 0.2, "after 120 steps some held-out strings come out right: %g", exact);
    cr_expect(ppl > 1 && ppl < 3, "held-out perplexity %g (13 outcomes: 13 knows nothing)", ppl);
    cr_expect_eq((int)ur_test_json_number(j, "step"), 120);
    free(j);
}

/* The SVG: one rotated label per source word, one label per output row, one square
 * per (row, word) with its weight as a title; every row's weights sum to 1. */
static void check_svg(const char *path) {
    char *svg = ur_test_read_file(path, NULL);
    cr_assert_not_null(svg, "no %s", path);
    cr_expect(!strncmp(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"", 39), "not an SVG: %.60s", svg);
    size_t n = strlen(svg);
    cr_expect(n > 8 && !strcmp(svg + n - 7, "</svg>\n"), "the SVG is not closed");
    int cols = 0, rows = 0, cells = 0, bad_rows = 0;
    for (const char *p = svg; (p = strstr(p, "rotate(")); p++) cols++;
    for (const char *p = svg; (p = strstr(p, "text-anchor=\"end\"")); p++) rows++;
    double sum = 0;
    for (const char *p = svg; (p = strstr(p, "<title>")); cells++) {
        p += 7;
        sum += strtod(p, NULL);
        if ((cells + 1) % (cols ? cols : 1) == 0) { /* the end of a row */
            bad_rows += fabs(sum - 1) > 0.002 * cols;
            sum = 0;
        }
    }
    cr_expect(cols >= 1 && rows >= 1, "%d source words, %d output rows", cols, rows);
    cr_expect_eq(cells, rows * cols, "%d squares for %d x %d", cells, rows, cols);
    cr_expect_eq(bad_rows, 0, "%d rows of weights do not sum to 1", bad_rows);
    free(svg);
}

Test(seq2seq_app, beam_search_and_attention_svg, .timeout = 60) {
    char svg[512], cmd[2048];
    ur_test_tmp_path("attention.svg", svg, sizeof svg);
    snprintf(cmd, sizeof cmd, S2S_SMALL " --steps 80 --lr 5e-3 --beam 4 --attention-svg %s --attention-example 3 "
             "--json", svg);
    char *j = ur_test_run_json(cmd);
    cr_expect_eq((int)ur_test_json_number(j, "beam"), 4);
    double g = ur_test_json_number(j, "exact_match"), b = ur_test_json_number(j, "beam_exact_match");
    double not_worse = ur_test_json_number(j, "beam_not_below_greedy");
    cr_expect(is_fraction(g) && is_fraction(b) && is_fraction(ur_test_json_number(j, "beam_bleu4")), "exact %g, %g", g, b);
    cr_expect_gt(not_worse, 0.9, "beam search found a less likely output than greedy for %g of the sources",
                 1 - not_worse);
    free(j);
    check_svg(svg);
    remove(svg);
    /* an example that does not exist */
    snprintf(cmd, sizeof cmd, S2S_SMALL " --steps 1 --attention-svg %s --attention-example 5000", svg);
    ur_test_expect_failure(cmd, (const char *const[]){"--attention-example", NULL});
}

/* The part of a JSON line from "losses" on: every step's loss. */
static const char *losses_of(const char *j) {
    const char *l = strstr(j, "\"losses\"");
    cr_assert_not_null(l, "no losses in %s", j);
    return l;
}

/* --attention none: fewer parameters, still learns something, and has no attention
 * to draw; --tie trains; scheduled sampling with probability 1 throughout
 * (exp, k = 1) is teacher forcing bit for bit, the decaying schedules train and
 * report their last probability. */
Test(seq2seq_app, no_attention_tying_and_scheduled_sampling, .timeout = 60) {
    char *base = ur_test_run_json(S2S_SMALL " --steps 60 --lr 5e-3 --json");
    char *none = ur_test_run_json(S2S_SMALL " --steps 60 --lr 5e-3 --attention none --json");
    cr_expect_lt(ur_test_json_number(none, "params"), ur_test_json_number(base, "params"));
    cr_expect_lt(ur_test_json_number(none, "last_loss"), ur_test_json_number(none, "first_loss") - 0.5);
    char *tied = ur_test_run_json(S2S_SMALL " --steps 60 --lr 5e-3 --tie --json");
    cr_expect_lt(ur_test_json_number(tied, "last_loss"), ur_test_json_number(tied, "first_loss") - 0.5);
    char *one = ur_test_run_json(S2S_SMALL " --steps 60 --lr 5e-3 --sampling exp --sampling-k 1 --json");
    cr_expect_eq(ur_test_json_number(one, "teacher_prob_last"), 1);
    cr_expect_str_eq(losses_of(one), losses_of(base), "probability 1 must be teacher forcing");
    static const char *const schedules[] = {" --sampling linear", " --sampling exp", " --sampling sigmoid"};
    for (int i = 0; i < 3; i++) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, S2S_SMALL " --steps 60 --lr 5e-3 --epochs 1 --json%s", schedules[i]);
        char *j = ur_test_run_json(cmd);
        double p = ur_test_json_number(j, "teacher_prob_last");
        cr_expect(p >= 0 && p < 1, "%s: last teacher-forcing probability %g", schedules[i], p);
        cr_expect_lt(ur_test_json_number(j, "last_loss"), ur_test_json_number(j, "first_loss") - 0.5, "%s",
                     schedules[i]);
        free(j);
    }
    free(base);
    free(none);
    free(tied);
    free(one);
    ur_test_expect_failure(S2S_SMALL " --steps 1 --attention none --attention-svg x.svg",
                           (const char *const[]){"--attention none", NULL});
    ur_test_expect_failure(S2S_SMALL " --steps 1 --sampling exp --sampling-k 2",
                           (const char *const[]){"--sampling-k", NULL});
}

/* Scores by source length: a run without attention writes them, a run with
 * attention draws both; the file has a row per held-out length (max-digits 6: the
 * held-out strings have 2-6 digits) whose counts add up to the held-out sources. */
Test(seq2seq_app, scores_by_length_and_their_plot, .timeout = 60) {
    char tsv[512], svg[512], cmd[2048];
    ur_test_tmp_path("by-length.tsv", tsv, sizeof tsv);
    ur_test_tmp_path("by-length.svg", svg, sizeof svg);
    snprintf(cmd, sizeof cmd, S2S_SMALL " --steps 30 --attention none --by-length %s --json", tsv);
    free(ur_test_run_json(cmd));
    char *text = ur_test_read_file(tsv, NULL);
    cr_assert_not_null(text, "no %s", tsv);
    cr_expect(!strncmp(text, "# no attention\nlength\tsources\texact_match\tbleu4\n", 47), "%.80s", text);
    int rows = 0;
    long sources = 0;
    for (const char *p = strchr(strchr(text, '\n') + 1, '\n'); p && p[1]; p = strchr(p + 1, '\n')) {
        int len;
        long n;
        double exact, bleu;
        cr_assert_eq(sscanf(p + 1, "%d\t%ld\t%lf\t%lf", &len, &n, &exact, &bleu), 4, "row: %.40s", p + 1);
        cr_expect(len >= 1 && len <= 6 && is_fraction(exact) && is_fraction(bleu), "%d %g %g", len, exact, bleu);
        rows++;
        sources += n;
    }
    cr_expect(rows >= 3 && rows <= 6, "%d lengths", rows);
    cr_expect_eq(sources, 1000);
    free(text);
    snprintf(cmd, sizeof cmd, S2S_SMALL " --steps 30 --compare-with %s --plot-by-length %s --json", tsv, svg);
    free(ur_test_run_json(cmd));
    char *pic = ur_test_read_file(svg, NULL);
    cr_assert_not_null(pic, "no %s", svg);
    int lines = 0, dots = 0;
    for (const char *p = pic; (p = strstr(p, "<polyline")); p++) lines++;
    for (const char *p = pic; (p = strstr(p, "<circle")); p++) dots++;
    cr_expect_eq(lines, 2);
    cr_expect_eq(dots, 2 * rows);
    cr_expect(strstr(pic, ">no attention</text>") && strstr(pic, ">attention (feed)</text>"), "legend missing");
    free(pic);
    remove(tsv);
    remove(svg);
    /* a file that is not one */
    snprintf(cmd, sizeof cmd, S2S_SMALL " --steps 1 --compare-with %s --plot-by-length %s", svg, svg);
    FILE *f = fopen(svg, "w");
    cr_assert_not_null(f);
    fputs("# x\nlength\tsources\texact_match\tbleu4\n3\tmany\n", f);
    fclose(f);
    ur_test_expect_failure(cmd, (const char *const[]){"line 3", NULL});
    remove(svg);
}

Test(seq2seq_app, resume_is_bit_identical, .timeout = 60) {
    char tsv[512], ck[512], base[2048], resume[2048];
    ur_test_tmp_path("s2s-resume.safetensors", ck, sizeof ck);
    /* reverse: dropout, Adam's moments, the bucketed order and the schedule resume */
    ur_test_check_resume(S2S_SMALL " --dropout 0.2", BIN "seq2seq" ONE " --show 0", 5, 11, ck);
    /* the checkpoint records --attention none, --tie and the sampling schedule */
    ur_test_check_resume(S2S_SMALL " --attention none --tie --sampling linear --sampling-k 12", BIN "seq2seq" ONE
                         " --show 0", 5, 11, ck);
    /* a TSV: the vocabularies come back from the checkpoint with the same ids */
    ur_test_tmp_path("pairs.tsv", tsv, sizeof tsv);
    write_pairs(tsv);
    snprintf(base, sizeof base, S2S_TSV " --data %s --cell lstm --score general --attn-mode input", tsv);
    snprintf(resume, sizeof resume, BIN "seq2seq" ONE " --data %s --show 0", tsv);
    ur_test_check_resume(base, resume, 3, 8, ck);
    remove(tsv);
}

/* --clip-value: kept in the checkpoint, and gradients clamped to 1e-12 leave Adam's
 * steps far below its epsilon, so the loss stays where it started */
Test(seq2seq_app, clip_value, .timeout = 60) {
    char ck[512];
    ur_test_tmp_path("s2s-clip.safetensors", ck, sizeof ck);
    ur_test_check_resume(S2S_SMALL " --clip-value 0.01", BIN "seq2seq" ONE " --show 0", 3, 6, ck);
    char *j = ur_test_run_json(S2S_SMALL " --steps 20 --clip-value 1e-12 --json");
    double first = ur_test_json_number(j, "first_loss"), last = ur_test_json_number(j, "last_loss");
    cr_expect(fabs(last - first) < 0.05, "--clip-value 1e-12: the loss moved %g -> %g", first, last);
    free(j);
}

/* --cell gru_reset_before trains; it, --init, --variational and --forget-bias are
 * kept in the checkpoint (resume is bit-identical without repeating them). */
Test(seq2seq_app, rnn_flags_and_the_reset_before_gru, .timeout = 60) {
    char ck[512], cmd[2048];
    ur_test_tmp_path("s2s-rnn-flags.safetensors", ck, sizeof ck);
    char *j = ur_test_run_json(S2S_SMALL " --steps 60 --lr 5e-3 --cell gru_reset_before --json");
    cr_expect_lt(ur_test_json_number(j, "last_loss"), ur_test_json_number(j, "first_loss") - 0.5);
    free(j);
    ur_test_check_resume(S2S_SMALL " --cell gru_reset_before --init orthogonal --variational --dropout 0.3",
                         BIN "seq2seq" ONE " --show 0", 4, 9, ck);
    ur_test_check_resume(S2S_SMALL " --cell lstm --init identity --forget-bias 1", BIN "seq2seq" ONE " --show 0", 4,
                         9, ck);
    /* each flag changes the run: the first losses differ from the defaults' */
    static const char *const flags[] = {" --init orthogonal", " --init identity", " --variational --dropout 0.3",
                                        " --cell lstm --forget-bias 1"};
    static const char *const base[] = {"", "", " --dropout 0.3", " --cell lstm"};
    for (int i = 0; i < 4; i++) {
        snprintf(cmd, sizeof cmd, S2S_SMALL " --steps 2 --json%s", base[i]);
        char *a = ur_test_run_json(cmd);
        snprintf(cmd, sizeof cmd, S2S_SMALL " --steps 2 --json%s", flags[i]);
        char *b = ur_test_run_json(cmd);
        cr_expect_neq(ur_test_json_number(a, "first_loss"), ur_test_json_number(b, "first_loss"), "%s", flags[i]);
        free(a);
        free(b);
    }
}

/* --init identity --forget-bias 2 as saved (learning rate 0: the weights stay as
 * initialised): every (H, H) block of the recurrent weights is I, the forget slice
 * of the first bias is 2. */
Test(seq2seq_app, init_and_forget_bias_as_saved, .timeout = 60) {
    char ck[512], cmd[2048];
    ur_test_tmp_path("s2s-identity.safetensors", ck, sizeof ck);
    snprintf(cmd, sizeof cmd, S2S_SMALL " --cell lstm --init identity --forget-bias 2 --lr 0 --steps 1 --save %s "
             "--json", ck);
    free(ur_test_run_json(cmd));
    ur_ckpt *c = ur_ckpt_open(ck);
    cr_assert_not_null(c, "%s", ur_last_error());
    cr_expect_str_eq(ur_ckpt_meta(c, "init"), "identity");
    ur_tensor *w = ur_ckpt_get_new(c, "s2s.dec.weight_hh"), *b = ur_ckpt_get_new(c, "s2s.dec.bias_ih");
    cr_assert(w && b, "%s", ur_last_error());
    int H = w->shape.dims[0], bad = 0;
    cr_assert_eq(w->shape.dims[1], 4 * H);
    for (int i = 0; i < H; i++)
        for (int k = 0; k < 4 * H; k++) bad += w->data[(size_t)i * 4 * H + k] != (k % H == i);
    for (int k = 0; k < 4 * H; k++) bad += b->data[k] != (k / H == 1 ? 2 : 0);
    cr_expect_eq(bad, 0, "%d values differ from I and the forget bias", bad);
    ur_tensor_free(w);
    ur_tensor_free(b);
    ur_ckpt_close(c);
    remove(ck);
}

/* A checkpoint saved before --init, --forget-bias and --variational existed (the
 * committed fixture, 3 steps of a tiny reverse model) still loads: --eval gives the
 * perplexity it gave then, and training resumes from it. */
Test(seq2seq_app, a_checkpoint_from_before_the_rnn_flags_loads, .timeout = 60) {
    const char *old = UR_SOURCE_DIR "/tests/fixtures/seq2seq_before_rnn_flags.safetensors";
    char *j = ur_test_run_json(BIN "seq2seq" ONE " --load " UR_SOURCE_DIR
                               "/tests/fixtures/seq2seq_before_rnn_flags.safetensors --eval --show 0 --json");
    cr_expect_eq((int)ur_test_json_number(j, "params"), 726);
    cr_expect(fabs(ur_test_json_number(j, "perplexity") - 13.6266) < 5e-4, "perplexity %g",
              ur_test_json_number(j, "perplexity"));
    free(j);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, BIN "seq2seq" ONE " --load %s --steps 5 --show 0 --json", old);
    j = ur_test_run_json(cmd);
    cr_expect_eq((int)ur_test_json_number(j, "first_step"), 4);
    cr_expect_eq((int)ur_test_json_number(j, "step"), 5);
    free(j);
}

Test(seq2seq_app, eval_of_a_saved_model_reproduces_its_scores, .timeout = 60) {
    char tsv[512], ck[512], cmd[2048];
    ur_test_tmp_path("eval-pairs.tsv", tsv, sizeof tsv);
    ur_test_tmp_path("s2s-eval.safetensors", ck, sizeof ck);
    write_pairs(tsv);
    snprintf(cmd, sizeof cmd, S2S_TSV " --data %s --epochs 20 --lr 0.01 --beam 3 --save %s --json", tsv, ck);
    char *j = ur_test_run_json(cmd);
    double exact = ur_test_json_number(j, "exact_match"), bleu = ur_test_json_number(j, "bleu4"), ppl = ur_test_json_number(j, "perplexity");
    double beam = ur_test_json_number(j, "beam_exact_match");
    cr_expect(is_fraction(exact) && is_fraction(bleu) && is_fraction(beam), "%g %g %g", exact, bleu, beam);
    cr_expect(isfinite(ppl) && ppl > 1, "perplexity %g", ppl);
    cr_expect_lt(ur_test_json_number(j, "last_loss"), ur_test_json_number(j, "first_loss") - 1);
    free(j);
    snprintf(cmd, sizeof cmd, BIN "seq2seq" ONE " --data %s --load %s --eval --beam 3 --show 0 --json", tsv, ck);
    j = ur_test_run_json(cmd);
    cr_expect_eq(ur_test_json_number(j, "exact_match"), exact);
    cr_expect_eq(ur_test_json_number(j, "bleu4"), bleu);
    cr_expect_eq(ur_test_json_number(j, "beam_exact_match"), beam);
    cr_expect_eq(ur_test_json_number(j, "perplexity"), ppl, "--eval perplexity %g, training run %g",
                 ur_test_json_number(j, "perplexity"), ppl);
    free(j);
    remove(tsv);
    remove(ck);
}

Test(seq2seq_app, bad_tsv_files, .timeout = 30) {
    char path[512], cmd[2048], where[600];
    ur_test_tmp_path("bad.tsv", path, sizeof path);
    snprintf(cmd, sizeof cmd, S2S_TSV " --data %s", path);
    ur_test_expect_failure(cmd, (const char *const[]){path, "cannot open", NULL}); /* missing */
    ur_test_write_text(path, "go .\tva !\tCC-BY\nhello .\tbonjour .\tCC-BY\nno tab on this line\n");
    snprintf(where, sizeof where, "%s:3:", path);
    ur_test_expect_failure(cmd, (const char *const[]){where, "column", NULL});
    ur_test_write_text(path, "go .\t\tCC-BY\n");
    snprintf(where, sizeof where, "%s:1:", path);
    ur_test_expect_failure(cmd, (const char *const[]){where, "empty", NULL});
    ur_test_write_text(path, "go .\tva !\tCC-BY\nhello .\tbonjour .\tCC-BY\n"); /* nothing left to hold out */
    ur_test_expect_failure(cmd, (const char *const[]){path, "too few", NULL});
    ur_test_write_text(path, "");
    ur_test_expect_failure(cmd, (const char *const[]){path, "empty", NULL});
    remove(path);
}

Test(seq2seq_app, eng_fra, .timeout = 60) {
    char path[512], cmd[2048];
    if (!ur_test_data_path("eng-fra/eng-fra.txt", path, sizeof path))
        cr_skip_test("eng-fra is not in the data folder");
    snprintf(cmd, sizeof cmd, S2S_TSV " --data %s --steps 12 --lr 0.01 --json", path);
    char *j = ur_test_run_json(cmd);
    double ppl = ur_test_json_number(j, "perplexity");
    cr_expect(isfinite(ppl) && ppl > 1, "perplexity %g", ppl);
    cr_expect(is_fraction(ur_test_json_number(j, "bleu4")) && is_fraction(ur_test_json_number(j, "exact_match")));
    cr_expect_lt(ur_test_json_number(j, "last_loss"), ur_test_json_number(j, "first_loss"));
    free(j);
}

/* ---- both ---- */

Test(trees_apps, help_and_bad_flags, .timeout = 30) {
    static const char *const progs[] = {"treenet", "seq2seq"};
    for (int i = 0; i < 2; i++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, BIN "%s --help", progs[i]);
        ur_test_result r = ur_test_run(cmd, 1);
        cr_expect_eq(r.code, 0, "%s --help exited with %d", progs[i], r.code);
        cr_expect(strstr(r.out, "usage:") && strstr(r.out, "--seed"), "%s --help: %s", progs[i], r.out);
        free(r.out);
        snprintf(cmd, sizeof cmd, BIN "%s --no-such-flag", progs[i]);
        r = ur_test_run(cmd, 1);
        cr_expect_eq(r.code, 2, "%s with an unknown flag exited with %d", progs[i], r.code);
        free(r.out);
    }
    ur_test_result r = ur_test_run(BIN "treenet" ONE " --model lstm", 1);
    cr_expect_eq(r.code, 2, "treenet --model lstm exited with %d", r.code);
    free(r.out);
    r = ur_test_run(BIN "seq2seq" ONE " --task translate", 1);
    cr_expect_eq(r.code, 2, "seq2seq --task translate exited with %d", r.code);
    free(r.out);
}

/* --help is generated from the flag table: the choices and ranges are listed. */
Test(trees_apps, help_lists_choices_and_ranges, .timeout = 30) {
    ur_test_result r = ur_test_run(BIN "seq2seq --help", 1);
    cr_expect(strstr(r.out, "--task reverse|eng-fra") && strstr(r.out, "--score dot|general|additive") &&
                  strstr(r.out, "(default 1: greedy only) [1..64]"),
              "seq2seq --help: %s", r.out);
    free(r.out);
    r = ur_test_run(BIN "treenet --help", 1);
    cr_expect(strstr(r.out, "--model rnn|treelstm|childsum") && strstr(r.out, "--optim adagrad|adam"),
              "treenet --help: %s", r.out);
    free(r.out);
}

Test(trees_apps, flag_errors_name_the_flag, .timeout = 30) {
    expect_flag_error("seq2seq", "--beam 0", "seq2seq: --beam must be an integer in 1..64, got \"0\"");
    expect_flag_error("seq2seq", "--task translate",
                      "seq2seq: --task must be one of reverse, eng-fra, got \"translate\"");
    expect_flag_error("seq2seq", "--score cosine",
                      "seq2seq: --score must be one of dot, general, additive, got \"cosine\"");
    expect_flag_error("seq2seq", "--attn-mode both",
                      "seq2seq: --attn-mode must be one of output, feed, input, got \"both\"");
    expect_flag_error("seq2seq", "--sampling cosine",
                      "seq2seq: --sampling must be one of none, linear, exp, sigmoid, got \"cosine\"");
    expect_flag_error("seq2seq", "--cell rnn",
                      "seq2seq: --cell must be one of gru, lstm, gru_reset_before, got \"rnn\"");
    expect_flag_error("seq2seq", "--init zero",
                      "seq2seq: --init must be one of uniform, orthogonal, identity, got \"zero\"");
    expect_flag_error("seq2seq", "--dropout 1.5", "seq2seq: --dropout must be a number in [0, 1), got \"1.5\"");
    expect_flag_error("seq2seq", "--batch 99999999999",
                      "seq2seq: --batch must be an integer in 1..4096, got \"99999999999\"");
    expect_flag_error("seq2seq", "--max-len", "seq2seq: --max-len needs a value (an integer in 0..4096)");
    expect_flag_error("seq2seq", "--steps ten", "seq2seq: --steps must be an integer in 0..1000000000, got \"ten\"");
    expect_flag_error("seq2seq", "--eval", "seq2seq: --eval needs a model (--load)");
    expect_flag_error("treenet", "--model lstm",
                      "treenet: --model must be one of rnn, treelstm, childsum, got \"lstm\"");
    expect_flag_error("treenet", "--optim sgd", "treenet: --optim must be one of adagrad, adam, got \"sgd\"");
    expect_flag_error("treenet", "--batch-trees 0", "treenet: --batch-trees must be an integer in 1..4096, got \"0\"");
    expect_flag_error("treenet", "--lr-final 2", "treenet: --lr-final must be a number in [0, 1], got \"2\"");
    expect_flag_error("treenet", "--seed 1.5", "treenet: --seed must be an integer, got \"1.5\"");
    expect_flag_error("treenet", "--eval dev.txt", "treenet: --eval needs a model (--load)");
}
