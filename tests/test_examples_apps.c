/* The application examples run as programs: char_rnn (character language model),
 * tagger (BiLSTM part-of-speech tagger, or named entities with --scheme bio, softmax
 * or CRF) and classify (pooled sentence classifier).
 * Each run is short (--steps), prints its metrics with --json on the last line of
 * stdout, and is checked here: the loss is finite and falls, accuracies lie in
 * [0, 1], a sample is printed. A run saved half-way and resumed with --load must
 * give bit-identical losses to an uninterrupted run. Malformed input files must
 * give a non-zero exit and a message naming the file and the line.
 *
 * char_rnn needs no data (it generates its text); tagger and classify are checked on
 * small files written here, and on the real datasets when they are present. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "support.h"

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

/* ---- small input files ---- */


/* A CoNLL-U file of n short sentences built from a few patterns ("the dog runs ."). */
static void write_conllu(const char *path, int n) {
    static const char *const det[] = {"the", "a", "this", "every"}, *const noun[] = {"dog", "cat", "idea", "Paris"};
    static const char *const verb[] = {"runs", "sleeps", "falls", "grows"}, *const adj[] = {"big", "red", "old", "new"};
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    for (int i = 0; i < n; i++) {
        int k = i * 7 + i / 3, id = 1;
        fprintf(f, "# sent_id = s%d\n", i + 1);
        fprintf(f, "%d\t%s\t_\tDET\t_\t_\t0\t_\t_\t_\n", id++, det[k % 4]);
        if (i % 2) fprintf(f, "%d\t%s\t_\tADJ\t_\t_\t0\t_\t_\t_\n", id++, adj[(k / 4) % 4]);
        fprintf(f, "%d\t%s\t_\t%s\t_\t_\t0\t_\t_\t_\n", id++, noun[(k / 2) % 4], k % 8 == 3 ? "PROPN" : "NOUN");
        fprintf(f, "%d\t%s\t_\tVERB\t_\t_\t0\t_\t_\t_\n", id++, verb[(k / 3) % 4]);
        if (i % 3 == 0) fprintf(f, "%d\t%d\t_\tNUM\t_\t_\t0\t_\t_\t_\n", id++, i);
        fprintf(f, "%d\t.\t_\tPUNCT\t_\t_\t0\t_\t_\t_\n\n", id);
    }
    fclose(f);
}

/* n SST-style trees: "good"/"fun" sentences are positive (4), "bad"/"dull" negative (0). */
static void write_trees(const char *path, int n) {
    static const char *const pos[] = {"good", "fun", "great"}, *const neg[] = {"bad", "dull", "awful"};
    static const char *const noun[] = {"movie", "film", "plot", "cast"};
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    for (int i = 0; i < n; i++) {
        int good = i % 2 == 0, k = i / 2;
        const char *adj = good ? pos[k % 3] : neg[k % 3];
        int y = good ? 4 : 0;
        if (k % 2)
            fprintf(f, "(%d (2 the) (%d (2 %s) (%d (2 is) (%d %s))))\n", y, y, noun[k % 4], y, y, adj);
        else
            fprintf(f, "(%d (%d (2 a) (%d %s)) (2 %s))\n", y, y, y, adj, noun[k % 4]);
    }
    fclose(f);
}

/* ---- char_rnn ---- */

#define CHAR_SMALL BIN "char_rnn" ONE " --hidden 64 --embed 16 --batch 16 --bptt 32 --val-chars 4000"

Test(apps, char_rnn_generated_text_learns_and_samples, .timeout = 60) {
    char *j = ur_test_run_json(CHAR_SMALL " --steps 60 --sample 80 --json");
    double first = ur_test_json_number(j, "first_loss"), last = ur_test_json_number(j, "last_loss");
    cr_expect(isfinite(first) && isfinite(last), "losses %g, %g", first, last);
    cr_expect_lt(last, first - 0.5, "the loss did not fall: %g -> %g", first, last);
    double bpc = ur_test_json_number(j, "val_bpc"), ppl = ur_test_json_number(j, "val_ppl");
    cr_expect(bpc > 0 && bpc < 6, "validation bits/char %g", bpc);
    cr_expect_float_eq(ppl, exp(bpc * log(2.0)), 1e-3 * ppl, "perplexity %g vs bpc %g", ppl, bpc);
    cr_expect_geq(ur_test_json_string_len(j, "sample"), 80, "sample too short: %s", j);
    cr_expect_eq((int)ur_test_json_number(j, "step"), 60);
    free(j);
}

Test(apps, char_rnn_resume_is_bit_identical, .timeout = 60) {
    char ck[512];
    ur_test_tmp_path("char.safetensors", ck, sizeof ck);
    /* dropout and two layers: the checkpoint must carry states, Adam moments and step */
    ur_test_check_resume(CHAR_SMALL " --sample 10 --layers 2 --dropout 0.1", BIN "char_rnn" ONE " --val-chars 4000 --sample 10",
                 7, 14, ck);
}

Test(apps, char_rnn_gru_and_rnn_one_hot, .timeout = 60) {
    char *j = ur_test_run_json(CHAR_SMALL " --cell gru --embed 0 --steps 10 --sample 10 --json");
    cr_expect(isfinite(ur_test_json_number(j, "val_loss")));
    free(j);
    j = ur_test_run_json(CHAR_SMALL " --cell rnn --steps 10 --sample 10 --json");
    cr_expect(isfinite(ur_test_json_number(j, "val_loss")));
    free(j);
}

/* The recurrent-network flags: each changes the run, and a checkpoint keeps them
 * (the resumed run gets no flags but --load, and must still match bit for bit). */
Test(apps, char_rnn_rnn_flags, .timeout = 60) {
    char *j = ur_test_run_json(CHAR_SMALL " --steps 3 --sample 0 --json");
    double plain = ur_test_json_number(j, "first_loss");
    free(j);
    j = ur_test_run_json(CHAR_SMALL " --steps 3 --sample 0 --init orthogonal --forget-bias 1 --json");
    double ortho = ur_test_json_number(j, "first_loss");
    cr_expect(isfinite(ortho) && ortho != plain, "--init orthogonal changed nothing: %g", ortho);
    free(j);
    j = ur_test_run_json(CHAR_SMALL " --cell rnn_relu --init identity --lr 1e-3 --steps 10 --sample 0 --json");
    cr_expect(isfinite(ur_test_json_number(j, "val_loss")), "IRNN: %s", j);
    free(j);
    j = ur_test_run_json(CHAR_SMALL " --cell gru_reset_before --steps 10 --sample 0 --json");
    cr_expect(isfinite(ur_test_json_number(j, "val_loss")), "gru_reset_before: %s", j);
    free(j);
    /* Adam rescales what it gets, but gradients clamped to 1e-12 sit far below its
     * epsilon: the loss stays where it started */
    j = ur_test_run_json(CHAR_SMALL " --steps 20 --sample 0 --clip-value 1e-12 --json");
    double first = ur_test_json_number(j, "first_loss"), last = ur_test_json_number(j, "last_loss");
    cr_expect(fabs(last - first) < 0.05, "--clip-value 1e-12: the loss moved %g -> %g", first, last);
    free(j);
    char ck[512];
    ur_test_tmp_path("char-flags.safetensors", ck, sizeof ck);
    ur_test_check_resume(CHAR_SMALL " --sample 10 --layers 2 --dropout 0.2 --variational --init orthogonal "
                                    "--forget-bias 1 --clip-value 0.01",
                         BIN "char_rnn" ONE " --val-chars 4000 --sample 10", 5, 10, ck);
}

static double char_params(const char *flags) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, CHAR_SMALL " --steps 1 --sample 0 --val-chars 100 --json %s", flags);
    char *j = ur_test_run_json(cmd);
    double n = ur_test_json_number(j, "params");
    free(j);
    return n;
}

/* --tie: the (H, V) output matrix goes; an (H, E) projection comes when H != E. A
 * tied run trains, and a checkpoint of one resumes bit for bit. */
Test(apps, char_rnn_tie, .timeout = 60) {
    double d_same = char_params("--hidden 16") - char_params("--hidden 16 --tie"); /* H = E = 16: H*V */
    double V = d_same / 16;
    cr_expect(V == floor(V) && V > 20 && V < 128, "H = E: %g fewer parameters is not 16 * V", d_same);
    double d_proj = char_params("") - char_params("--tie"); /* H = 64, E = 16: H*V - H*E */
    cr_expect_eq(d_proj, 64 * V - 64 * 16, "H != E: %g fewer parameters, expected 64*%g - 64*16", d_proj, V);
    char *j = ur_test_run_json(CHAR_SMALL " --tie --steps 60 --sample 20 --json");
    double first = ur_test_json_number(j, "first_loss"), last = ur_test_json_number(j, "last_loss");
    cr_expect(isfinite(first) && last < first - 0.5, "tied: the loss did not fall: %g -> %g", first, last);
    free(j);
    char ck[512];
    ur_test_tmp_path("char-tie.safetensors", ck, sizeof ck);
    ur_test_check_resume(CHAR_SMALL " --sample 10 --tie", BIN "char_rnn" ONE " --val-chars 4000 --sample 10", 5, 10,
                         ck);
    expect_flag_error("char_rnn", "--tie --embed 0",
                      "char_rnn: --tie needs an embedding to tie to (--embed > 0), got --embed 0");
}

/* The per-step losses of a char_rnn run with extra flags (n of them). */
static int char_losses(const char *flags, double *losses, int cap) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, CHAR_SMALL " --bptt 16 --layers 2 --sample 0 --json %s", flags);
    char *j = ur_test_run_json(cmd);
    int n = ur_test_json_array(j, "losses", losses, cap);
    free(j);
    return n;
}

/* BPTT(k1, k2): K2 = K1 is today's truncation bit for bit (dropout, two layers). With
 * the learning rate at 0 the weights stay put, so a window that starts K2 - K1 bytes
 * earlier from the state carried there must see exactly the losses of plain
 * truncation: same states, loss on the same K1 bytes. With learning, the longer
 * gradient path changes the updates. A windowed run resumes bit for bit. */
Test(apps, char_rnn_bptt_window, .timeout = 60) {
    double a[16], b[16];
    int n = char_losses("--steps 12 --dropout 0.2", a, 16);
    cr_assert_eq(n, 12);
    cr_assert_eq(char_losses("--steps 12 --dropout 0.2 --bptt-window 16", b, 16), 12);
    for (int i = 0; i < n; i++) cr_expect_eq(a[i], b[i], "K2 = K1, step %d: %.9g vs %.9g", i + 1, a[i], b[i]);
    char_losses("--steps 12 --lr 0", a, 16);
    char_losses("--steps 12 --lr 0 --bptt-window 40", b, 16);
    for (int i = 0; i < n; i++)
        cr_expect_float_eq(a[i], b[i], 1e-5, "lr 0, K2 = 40, step %d: %.9g vs %.9g", i + 1, a[i], b[i]);
    char_losses("--steps 12", a, 16);
    char_losses("--steps 12 --bptt-window 40", b, 16);
    cr_expect_eq(a[0], b[0], "step 1 has no earlier bytes: the same window"); /* 16 bytes either way */
    cr_expect_neq(a[11], b[11], "K2 = 40 trained exactly like K2 = 16");
    char ck[512];
    ur_test_tmp_path("char-window.safetensors", ck, sizeof ck);
    ur_test_check_resume(CHAR_SMALL " --bptt 16 --bptt-window 40 --sample 10",
                         BIN "char_rnn" ONE " --val-chars 4000 --sample 10", 5, 10, ck);
    expect_flag_error("char_rnn", "--bptt 16 --bptt-window 8",
                      "char_rnn: --bptt-window must be at least --bptt (16), got 8");
}

/* --residual: a 3-layer residual stack trains, and a checkpoint keeps the flag. */
Test(apps, char_rnn_residual, .timeout = 60) {
    char *j = ur_test_run_json(CHAR_SMALL " --layers 3 --residual --steps 40 --sample 0 --json");
    double first = ur_test_json_number(j, "first_loss"), last = ur_test_json_number(j, "last_loss");
    cr_expect(isfinite(first) && last < first - 0.5, "residual: the loss did not fall: %g -> %g", first, last);
    free(j);
    char ck[512];
    ur_test_tmp_path("char-residual.safetensors", ck, sizeof ck);
    ur_test_check_resume(CHAR_SMALL " --layers 2 --residual --sample 10",
                         BIN "char_rnn" ONE " --val-chars 4000 --sample 10", 4, 8, ck);
}

Test(apps, char_rnn_tinyshakespeare, .timeout = 60) {
    char path[512], cmd[1024];
    if (!ur_test_data_path("tinyshakespeare/input.txt", path, sizeof path))
        cr_skip_test("tinyshakespeare/input.txt is not in the data folder");
    snprintf(cmd, sizeof cmd, CHAR_SMALL " --data %s --steps 30 --sample 40 --json", path);
    char *j = ur_test_run_json(cmd);
    cr_expect_lt(ur_test_json_number(j, "last_loss"), ur_test_json_number(j, "first_loss"));
    cr_expect(ur_test_json_number(j, "val_bpc") < 6.5, "bpc %g", ur_test_json_number(j, "val_bpc"));
    free(j);
}

Test(apps, char_rnn_bad_files, .timeout = 30) {
    char path[512], cmd[1024];
    ur_test_tmp_path("empty.txt", path, sizeof path);
    ur_test_write_text(path, "");
    snprintf(cmd, sizeof cmd, BIN "char_rnn" ONE " --data %s --json", path);
    ur_test_result r = ur_test_run(cmd, 1);
    cr_expect_neq(r.code, 0);
    cr_expect(strstr(r.out, path) != NULL, "message does not name %s: %s", path, r.out);
    free(r.out);
    /* a text file is not a checkpoint: the message names it and the byte offset */
    ur_test_write_text(path, "not a checkpoint at all, just text\n");
    snprintf(cmd, sizeof cmd, BIN "char_rnn" ONE " --load %s", path);
    r = ur_test_run(cmd, 1);
    cr_expect_neq(r.code, 0);
    cr_expect(strstr(r.out, path) && strstr(r.out, "offset"), "message: %s", r.out);
    free(r.out);
    remove(path);
}

/* ---- tagger ---- */

#define TAG_SMALL BIN "tagger" ONE " --hidden 32 --word-dim 24 --char-dim 8 --char-filters 16 --batch 8"

Test(apps, tagger_learns_small_file_and_evaluates, .timeout = 60) {
    char train[512], ck[512], cmd[2048];
    ur_test_tmp_path("tags.conllu", train, sizeof train);
    ur_test_tmp_path("tagger.safetensors", ck, sizeof ck);
    write_conllu(train, 64);
    snprintf(cmd, sizeof cmd, TAG_SMALL " --char --train %s --dev %s --epochs 6 --lr 0.01 --save %s --json", train,
             train, ck);
    char *j = ur_test_run_json(cmd);
    double first = ur_test_json_number(j, "first_loss"), last = ur_test_json_number(j, "last_loss");
    double acc = ur_test_json_number(j, "dev_accuracy");
    cr_expect(isfinite(first) && last < first - 0.5, "loss %g -> %g", first, last);
    cr_expect(acc >= 0 && acc <= 1, "accuracy %g", acc);
    cr_expect_gt(acc, 0.8, "a pattern this simple should be learned: accuracy %g", acc);
    free(j);
    /* --eval rebuilds the model from the checkpoint alone */
    snprintf(cmd, sizeof cmd, BIN "tagger" ONE " --load %s --eval %s --json", ck, train);
    j = ur_test_run_json(cmd);
    cr_expect_float_eq(ur_test_json_number(j, "accuracy"), acc, 1e-6, "--eval gives %g, training run %g",
                       ur_test_json_number(j, "accuracy"), acc);
    free(j);
    remove(train);
    remove(ck);
}

Test(apps, tagger_resume_is_bit_identical, .timeout = 60) {
    char train[512], ck[512], base[2048];
    ur_test_tmp_path("resume.conllu", train, sizeof train);
    ur_test_tmp_path("tagger-resume.safetensors", ck, sizeof ck);
    write_conllu(train, 60); /* 8 batches per epoch: stop mid-epoch, resume into the next */
    snprintf(base, sizeof base, TAG_SMALL " --char --train %s", train);
    ur_test_check_resume(base, BIN "tagger" ONE, 5, 12, ck);
    remove(train);
}

Test(apps, tagger_ud_english_ewt, .timeout = 60) {
    char train[512], dev[512], cmd[2048];
    if (!ur_test_data_path("ud-en-ewt/en_ewt-ud-train.conllu", train, sizeof train) ||
        !ur_test_data_path("ud-en-ewt/en_ewt-ud-dev.conllu", dev, sizeof dev))
        cr_skip_test("ud-en-ewt is not in the data folder");
    snprintf(cmd, sizeof cmd, TAG_SMALL " --char --train %s --dev %s --limit 400 --steps 40 --json", train, dev);
    char *j = ur_test_run_json(cmd);
    double acc = ur_test_json_number(j, "dev_accuracy");
    cr_expect(acc >= 0 && acc <= 1, "accuracy %g", acc);
    cr_expect_lt(ur_test_json_number(j, "last_loss"), ur_test_json_number(j, "first_loss"));
    free(j);
}

Test(apps, tagger_malformed_file, .timeout = 30) {
    char path[512], cmd[1024];
    ur_test_tmp_path("bad.conllu", path, sizeof path);
    ur_test_write_text(path, "# a comment\n1\tThe\t_\tDET\t_\t_\t0\t_\t_\t_\n2\tdog\t_\tNOUNISH\t_\t_\t0\t_\t_\t_\n\n");
    snprintf(cmd, sizeof cmd, BIN "tagger" ONE " --train %s", path);
    char where[600];
    snprintf(where, sizeof where, "%s:3", path);
    ur_test_expect_failure(cmd, (const char *const[]){where, NULL}); /* the message names file:line */
    remove(path);
}

/* ---- tagger --scheme bio: named entities ---- */

/* n B-I-O sentences from a few patterns ("Anna Smith visited Paris ."): PER, LOC, ORG spans. */
static void write_iob(const char *path, int n) {
    static const char *const first[] = {"Anna", "Omar", "Li", "Maria"}, *const last[] = {"Smith", "Khan", "Wei", "Rossi"};
    static const char *const place[] = {"Paris", "Lagos", "Lima", "Oslo"}, *const org[] = {"Acme", "Globex", "Initech"};
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    for (int i = 0; i < n; i++) {
        int id = 1, k = i * 5 + i / 4;
        fprintf(f, "# sent_id = s%d\n%d\t%s\tB-PER\n", i + 1, id++, first[k % 4]);
        if (i % 2) fprintf(f, "%d\t%s\tI-PER\n", id++, last[(k / 2) % 4]);
        fprintf(f, "%d\t%s\tO\n", id++, i % 3 ? "visited" : "joined");
        if (i % 3) fprintf(f, "%d\t%s\tB-LOC\n", id++, place[(k / 3) % 4]);
        else fprintf(f, "%d\t%s\tB-ORG\n%d\tCorp\tI-ORG\n", id, org[(k / 3) % 3], id + 1), id += 2;
        fprintf(f, "%d\t.\tO\n\n", id);
    }
    fclose(f);
}

/* Trains on train and scores dev; checks the scores lie in range. The JSON line (the caller frees it). */
static char *bio_run(const char *flags, const char *train, const char *dev, const char *save) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, TAG_SMALL " --scheme bio %s --train %s --dev %s%s%s --json", flags, train, dev,
             save ? " --save " : "", save ? save : "");
    char *j = ur_test_run_json(cmd);
    double f1 = ur_test_json_number(j, "dev_f1");
    cr_expect(f1 >= 0 && f1 <= 100, "'%s': F1 %g", cmd, f1);
    double acc = ur_test_json_number(j, "dev_accuracy");
    cr_expect(acc >= 0 && acc <= 1, "'%s': accuracy %g", cmd, acc);
    return j;
}

Test(apps, tagger_bio_softmax_and_crf_learn_small_file, .timeout = 60) {
    char train[512], ck[512], cmd[2048];
    ur_test_tmp_path("ner.iob2", train, sizeof train);
    ur_test_tmp_path("ner-crf.safetensors", ck, sizeof ck);
    write_iob(train, 64); /* 64 sentences, 128 entities (a person and a place or company each) */
    char *j = bio_run("--epochs 8 --lr 0.01", train, train, NULL);
    cr_expect_eq(ur_test_json_number(j, "dev_gold_entities"), 128);
    cr_expect_gt(ur_test_json_number(j, "dev_f1"), 80, "softmax: a pattern this simple should be learned");
    free(j);
    j = bio_run("--crf --epochs 8 --lr 0.01", train, train, ck);
    double f1 = ur_test_json_number(j, "dev_f1");
    cr_expect_gt(f1, 80, "CRF: a pattern this simple should be learned: F1 %g", f1);
    cr_expect_gt(ur_test_json_number(j, "dev_predicted_entities"), 0);
    cr_expect_eq(ur_test_json_number(j, "dev_invalid_transitions"), 0, "constrained Viterbi never breaks B-I-O");
    free(j);
    /* --eval rebuilds the CRF tagger from the checkpoint alone: the same F1 */
    snprintf(cmd, sizeof cmd, BIN "tagger" ONE " --load %s --eval %s --json", ck, train);
    j = ur_test_run_json(cmd);
    cr_expect_float_eq(ur_test_json_number(j, "f1"), f1, 1e-9, "--eval F1 %g, training run %g",
                       ur_test_json_number(j, "f1"), f1);
    cr_expect_eq(ur_test_json_number(j, "invalid_transitions"), 0);
    free(j);
    remove(train);
    remove(ck);
}

/* The scheme and the CRF come back from the checkpoint alone: the resumed run continues bit for bit. */
Test(apps, tagger_bio_crf_resume_is_bit_identical, .timeout = 60) {
    char train[512], ck[512], base[2048];
    ur_test_tmp_path("resume.iob2", train, sizeof train);
    ur_test_tmp_path("tagger-crf-resume.safetensors", ck, sizeof ck);
    write_iob(train, 60); /* 8 batches per epoch: stop mid-epoch, resume into the next */
    snprintf(base, sizeof base, TAG_SMALL " --scheme bio --crf --char --train %s", train);
    ur_test_check_resume(base, BIN "tagger" ONE, 5, 12, ck);
    remove(train);
}

/* The real data: train on the dev file, score on the test file (the train split is not there). */
Test(apps, tagger_bio_uner_english_ewt, .timeout = 120) {
    char train[512], test[512], ck[512], cmd[2048];
    if (!ur_test_data_path("uner-en-ewt/en_ewt-ud-dev.iob2", train, sizeof train) ||
        !ur_test_data_path("uner-en-ewt/en_ewt-ud-test.iob2", test, sizeof test))
        cr_skip_test("uner-en-ewt is not in the data folder");
    ur_test_tmp_path("uner-crf.safetensors", ck, sizeof ck);
    char *j = bio_run("--steps 150 --batch 16 --lr 0.01", train, test, NULL);
    cr_expect_eq(ur_test_json_number(j, "dev_gold_entities"), 1088); /* as the data README counts them */
    cr_expect_lt(ur_test_json_number(j, "last_loss"), ur_test_json_number(j, "first_loss"));
    free(j);
    j = bio_run("--crf --steps 150 --batch 16 --lr 0.01", train, test, ck);
    double f1 = ur_test_json_number(j, "dev_f1");
    cr_expect_lt(ur_test_json_number(j, "last_loss"), ur_test_json_number(j, "first_loss"));
    cr_expect_gt(ur_test_json_number(j, "dev_predicted_entities"), 0, "150 steps find some entities");
    cr_expect_eq(ur_test_json_number(j, "dev_invalid_transitions"), 0, "constrained Viterbi never breaks B-I-O");
    free(j);
    snprintf(cmd, sizeof cmd, BIN "tagger" ONE " --load %s --eval %s --json", ck, test);
    j = ur_test_run_json(cmd);
    cr_expect_float_eq(ur_test_json_number(j, "f1"), f1, 1e-9, "--eval F1 %g, training run %g",
                       ur_test_json_number(j, "f1"), f1);
    free(j);
    remove(ck);
}

Test(apps, tagger_bio_malformed_file, .timeout = 30) {
    char path[512], cmd[1024], where[600];
    ur_test_tmp_path("bad.iob2", path, sizeof path);
    ur_test_write_text(path, "# a comment\n1\tAnna\tB-PER\n2\tvisited\n\n");
    snprintf(cmd, sizeof cmd, BIN "tagger" ONE " --scheme bio --train %s", path);
    snprintf(where, sizeof where, "%s:3", path);
    ur_test_expect_failure(cmd, (const char *const[]){where, "expected at least 3 tab-separated columns", NULL});
    remove(path);
}

Test(apps, tagger_bio_flag_rules) {
    expect_flag_error("tagger", "--train x --crf", "tagger: --crf needs --scheme bio");
    expect_flag_error("tagger", "--train x --scheme bio --no-constraints", "tagger: --no-constraints needs --crf");
    expect_flag_error("tagger", "--scheme iob", "tagger: --scheme must be one of upos, bio, got \"iob\"");
}

/* ---- classify ---- */

#define CLS_SMALL BIN "classify" ONE " --hidden 24 --embed 24 --batch 8"

Test(apps, classify_every_pooling_learns, .timeout = 60) {
    char train[512], cmd[2048];
    ur_test_tmp_path("trees.txt", train, sizeof train);
    write_trees(train, 48);
    static const char *const pools[] = {"last", "bilast", "mean", "max"};
    for (int i = 0; i < 4; i++) {
        snprintf(cmd, sizeof cmd, CLS_SMALL " --train %s --dev %s --pool %s --epochs 8 --lr 0.01 --dropout 0.1 --json",
                 train, train, pools[i]);
        char *j = ur_test_run_json(cmd);
        double first = ur_test_json_number(j, "first_loss"), last = ur_test_json_number(j, "last_loss");
        double acc = ur_test_json_number(j, "dev_accuracy");
        cr_expect(isfinite(first) && last < first, "--pool %s: loss %g -> %g", pools[i], first, last);
        cr_expect(acc >= 0 && acc <= 1, "--pool %s: accuracy %g", pools[i], acc);
        cr_expect_gt(acc, 0.9, "--pool %s: one word decides the class, accuracy %g", pools[i], acc);
        free(j);
    }
    remove(train);
}

Test(apps, classify_resume_and_eval, .timeout = 60) {
    char train[512], ck[512], base[2048], cmd[4096];
    ur_test_tmp_path("resume-trees.txt", train, sizeof train);
    ur_test_tmp_path("classify.safetensors", ck, sizeof ck);
    write_trees(train, 40);
    snprintf(base, sizeof base, CLS_SMALL " --cell gru --pool mean --phrases --train %s", train);
    ur_test_check_resume(base, BIN "classify" ONE, 9, 20, ck);
    snprintf(cmd, sizeof cmd, "%s --steps 4 --save %s --json", base, ck);
    free(ur_test_run_json(cmd));
    snprintf(cmd, sizeof cmd, BIN "classify" ONE " --load %s --eval %s --json", ck, train);
    char *j = ur_test_run_json(cmd);
    double acc = ur_test_json_number(j, "accuracy");
    cr_expect(acc >= 0 && acc <= 1, "accuracy %g", acc);
    cr_expect_eq((int)ur_test_json_number(j, "examples"), 40);
    free(j);
    remove(train);
    remove(ck);
}

Test(apps, tagger_and_classify_rnn_flags, .timeout = 60) {
    char conllu[512], trees[512], ck[512], base[2048], cmd[2048];
    ur_test_tmp_path("flags.conllu", conllu, sizeof conllu);
    ur_test_tmp_path("flags-trees.txt", trees, sizeof trees);
    ur_test_tmp_path("flags.safetensors", ck, sizeof ck);
    write_conllu(conllu, 40);
    write_trees(trees, 40);
    snprintf(base, sizeof base, TAG_SMALL " --train %s --init orthogonal --forget-bias 1 --variational "
             "--clip-value 0.05", conllu);
    ur_test_check_resume(base, BIN "tagger" ONE, 3, 6, ck); /* the flags come back from the checkpoint */
    snprintf(base, sizeof base, CLS_SMALL " --train %s --cell gru_reset_before --init identity --variational "
             "--clip-value 0.05", trees);
    ur_test_check_resume(base, BIN "classify" ONE, 3, 6, ck);
    snprintf(cmd, sizeof cmd, CLS_SMALL " --train %s --dev %s --cell gru_reset_before --epochs 8 --lr 0.01 "
             "--dropout 0.1 --json", trees, trees);
    char *j = ur_test_run_json(cmd);
    double first = ur_test_json_number(j, "first_loss"), last = ur_test_json_number(j, "last_loss");
    cr_expect(isfinite(first) && last < first, "gru_reset_before: loss %g -> %g", first, last);
    cr_expect_gt(ur_test_json_number(j, "dev_accuracy"), 0.9, "gru_reset_before: %s", j);
    free(j);
    remove(conllu);
    remove(trees);
    remove(ck);
}

Test(apps, classify_sst, .timeout = 60) {
    char train[512], dev[512], cmd[2048];
    if (!ur_test_data_path("sst/train.txt", train, sizeof train) || !ur_test_data_path("sst/dev.txt", dev, sizeof dev))
        cr_skip_test("sst is not in the data folder");
    snprintf(cmd, sizeof cmd, CLS_SMALL " --task fine --train %s --dev %s --limit 300 --steps 30 --json", train, dev);
    char *j = ur_test_run_json(cmd);
    double acc = ur_test_json_number(j, "dev_accuracy");
    cr_expect(acc >= 0 && acc <= 1, "accuracy %g", acc);
    cr_expect(isfinite(ur_test_json_number(j, "last_loss")));
    free(j);
}

Test(apps, classify_malformed_file, .timeout = 30) {
    char path[512], cmd[1024];
    ur_test_tmp_path("bad-trees.txt", path, sizeof path);
    ur_test_write_text(path, "(3 (2 it) (3 works))\n(4 (2 it) (4 (2 does) (4 not))\n");
    snprintf(cmd, sizeof cmd, BIN "classify" ONE " --train %s", path);
    char where[600];
    snprintf(where, sizeof where, "%s:2", path);
    ur_test_expect_failure(cmd, (const char *const[]){where, NULL}); /* the message names file:line */
    remove(path);
}

Test(apps, help_and_bad_flags, .timeout = 30) {
    static const char *const progs[] = {"char_rnn", "tagger", "classify"};
    for (int i = 0; i < 3; i++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, BIN "%s --help", progs[i]);
        ur_test_result r = ur_test_run(cmd, 1);
        cr_expect_eq(r.code, 0, "%s --help exited with %d", progs[i], r.code);
        cr_expect(strstr(r.out, "usage:") && strstr(r.out, "--seed") && strstr(r.out, "--grad-report"),
                  "%s --help: %s", progs[i], r.out);
        free(r.out);
        snprintf(cmd, sizeof cmd, BIN "%s --no-such-flag", progs[i]);
        r = ur_test_run(cmd, 1);
        cr_expect_eq(r.code, 2, "%s with an unknown flag exited with %d", progs[i], r.code);
        free(r.out);
    }
}

Test(apps, grad_report_and_dot, .timeout = 30) {
    char dot[512], cmd[1024];
    ur_test_tmp_path("step.dot", dot, sizeof dot);
    snprintf(cmd, sizeof cmd, CHAR_SMALL " --bptt 5 --steps 1 --sample 0 --grad-report --dot %s", dot);
    ur_test_result r = ur_test_run(cmd, 0);
    cr_expect_eq(r.code, 0);
    cr_expect(strstr(r.out, "rnn.weight_hh_l0") && strstr(r.out, "||dL/dh_t||"), "no gradient report: %s", r.out);
    free(r.out);
    FILE *f = fopen(dot, "r");
    cr_assert_not_null(f, "no %s", dot);
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    cr_expect(strstr(buf, "digraph") && strstr(buf, "cluster"), "not a clustered DOT graph");
    remove(dot);
}

/* Every kind of flag refuses a bad value with a message naming the flag, what it
 * allows and what was given: an integer out of range, a number that is not one, a
 * name outside the choices, a missing value. */
Test(apps, flag_errors_name_the_flag, .timeout = 30) {
    expect_flag_error("char_rnn", "--hidden -5", "char_rnn: --hidden must be an integer in 1..4096, got \"-5\"");
    expect_flag_error("char_rnn", "--layers 9", "char_rnn: --layers must be an integer in 1..8, got \"9\"");
    expect_flag_error("char_rnn", "--cell xyz", "char_rnn: --cell must be one of rnn, rnn_tanh, rnn_relu, gru, gru_reset_before, lstm, mgu, peephole_lstm, indrnn, jordan, lnlstm, got \"xyz\"");
    expect_flag_error("char_rnn", "--dropout 1", "char_rnn: --dropout must be a number in [0, 1), got \"1\"");
    expect_flag_error("char_rnn", "--log-every 0",
                      "char_rnn: --log-every must be an integer in 1..1000000000, got \"0\"");
    expect_flag_error("char_rnn", "--steps 12x", "char_rnn: --steps must be an integer in 0..1000000000, got \"12x\"");
    expect_flag_error("char_rnn", "--seed", "char_rnn: --seed needs a value (an integer)");
    expect_flag_error("char_rnn", "--no-such-flag", "char_rnn: unknown flag '--no-such-flag' (see --help)");
    expect_flag_error("tagger", "--batch 0", "tagger: --batch must be an integer in 1..4096, got \"0\"");
    expect_flag_error("tagger", "--lr fast", "tagger: --lr must be a number in [0, 10], got \"fast\"");
    expect_flag_error("tagger", "--train x --dropout -0.1",
                      "tagger: --dropout must be a number in [0, 1), got \"-0.1\"");
    expect_flag_error("tagger", "--train", "tagger: --train needs a value (a text)");
    expect_flag_error("tagger", "--log-every -1",
                      "tagger: --log-every must be an integer in 1..1000000000, got \"-1\"");
    expect_flag_error("classify", "--pool sum", "classify: --pool must be one of last, bilast, mean, max, got \"sum\"");
    expect_flag_error("classify", "--task", "classify: --task needs a value (one of binary, fine)");
    expect_flag_error("classify", "--bidir 2", "classify: --bidir must be an integer in 0..1, got \"2\"");
    expect_flag_error("classify", "--log-every 1e3",
                      "classify: --log-every must be an integer in 1..1000000000, got \"1e3\"");
    expect_flag_error("classify", "--word-dropout nan",
                      "classify: --word-dropout must be a number in [0, 1000], got \"nan\"");
    expect_flag_error("ngram", "--order 9", "ngram: --order must be an integer in 1..8, got \"9\"");
    expect_flag_error("ngram", "--gen-bytes 0", "ngram: --gen-bytes must be an integer in 1..1000000000, got \"0\"");
    /* a rule between two flags is checked after parsing, with the same exit code */
    expect_flag_error("classify", "--train x --pool bilast --bidir 0",
                      "classify: --pool bilast needs --bidir 1 (see --help)");
}

/* --help is generated from the same table: choices and ranges are listed. */
Test(apps, help_lists_choices_and_ranges, .timeout = 30) {
    ur_test_result r = ur_test_run(BIN "char_rnn --help", 1);
    cr_expect_eq(r.code, 0);
    cr_expect(strstr(r.out, "--cell rnn|rnn_tanh|rnn_relu|gru|gru_reset_before|lstm|mgu|peephole_lstm|indrnn|jordan|lnlstm") && strstr(r.out, "hidden units per layer (default 256) [1..4096]") &&
                  strstr(r.out, "(default 0) [0, 1)"),
              "char_rnn --help: %s", r.out);
    free(r.out);
    r = ur_test_run(BIN "classify --help", 1);
    cr_expect(strstr(r.out, "--pool last|bilast|mean|max") && strstr(r.out, "--cell lstm|gru"), "classify --help: %s",
              r.out);
    free(r.out);
    r = ur_test_run(BIN "tagger --help", 1);
    cr_expect(strstr(r.out, "stacked BiLSTM layers (default 1) [1..8]"), "tagger --help: %s", r.out);
    free(r.out);
}
