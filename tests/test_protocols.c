/* test_protocols.c -- training and test protocols (protocol.h, dataset.h, config task.train_len /
 * task.test_lens / task.protocol): range parsing, the per-batch and per-sequence length draws, scaled
 * accuracy, the Merrill finite-dataset split, resume with a length range, evaltask on new lengths and a
 * new variant.
 *
 * Oracles are independent of the code under test: lengths are recomputed by replaying the documented
 * draw order on a second generator, expansions are written out by hand, the Merrill split is checked
 * against every sequence enumerated by nested counting, labels by composing permutation arrays, the
 * scaled accuracy from the group order.
 */
#include <criterion/criterion.h>
#include <cJSON.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt.h"
#include "config.h"
#include "dataset.h"
#include "group.h"
#include "h5log.h"
#include "protocol.h"
#include "task.h"
#include "train.h"
#include "testutil.h"

static char tmpdir[256];
static void mk_tmp(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rwkvlab_proto_XXXXXX");
    cr_assert(mkdtemp(tmpdir));
}
static void rm_tmp(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    (void)!system(cmd);
}
TestSuite(protocols, .init = mk_tmp, .fini = rm_tmp, .timeout = 300);

static void set_ok(RunConfig *c, const char *a) {
    Err e = {{0}};
    cr_assert_eq(config_set(c, a, &e), 0, "--set %s: %s", a, e.msg);
}

/* --set a fails, naming every fragment */
static void set_bad(const char *a, const char *f1, const char *f2) {
    RunConfig c, before;
    config_defaults(&c);
    before = c;
    Err e = {{0}};
    cr_expect_neq(config_set(&c, a, &e), 0, "--set %s was accepted", a);
    cr_expect(strstr(e.msg, f1) && (!f2 || strstr(e.msg, f2)), "--set %s: message lacks '%s'/'%s': %s", a, f1,
              f2 ? f2 : "", e.msg);
    cr_expect(memcmp(&c, &before, sizeof c) == 0, "--set %s changed the config although it failed", a);
}

/* ---- parsing ---------------------------------------------------------------------------------------- */

Test(protocols, train_len_ranges_parse) {
    RunConfig c;
    config_defaults(&c);
    set_ok(&c, "task.train_len=1-40");
    cr_expect_eq(config_train_len_min(&c), 1);
    cr_expect_eq(c.task.train_len, 40);
    set_ok(&c, "task.train_len=32");
    cr_expect_eq(config_train_len_min(&c), 32);
    cr_expect_eq(c.task.train_len, 32);
    set_ok(&c, "task.train_len=7-7"); /* a one-length range is that length */
    cr_expect_eq(config_train_len_min(&c), 7);
    cr_expect_eq(c.task.train_len, 7);
    set_ok(&c, "task.train_len= 3-1048576 ");
    cr_expect_eq(config_train_len_min(&c), 3);
    cr_expect_eq(c.task.train_len, 1 << 20);
}

Test(protocols, train_len_bad_values) {
    set_bad("task.train_len=40-1", "task.train_len '40-1' is a decreasing range", "1-40");
    set_bad("task.train_len=0-5", "'0-5' is out of range", "[1, 1048576]");
    set_bad("task.train_len=1-", "'1-' is not a length or a range", "A-B");
    set_bad("task.train_len=-5", "'-5'", "A-B");
    set_bad("task.train_len=1-2-3", "'1-2-3'", NULL);
    set_bad("task.train_len=1-40:2", "'1-40:2'", NULL); /* no steps for training lengths */
    set_bad("task.train_len=abc", "'abc' is not a length", NULL);
    set_bad("task.train_len=", "task.train_len", NULL);
    set_bad("task.train_len=1-1048577", "out of range", NULL);
    set_bad("task.train_len=1-99999999999999999999", "out of range", NULL);
    set_bad("task.train_len=1 - 40", "'1 - 40'", NULL);
}

static void lens_of(const char *text, int *out, int *n) {
    RunConfig c;
    config_defaults(&c);
    char a[300];
    snprintf(a, sizeof a, "task.test_lens=%s", text);
    set_ok(&c, a);
    *n = c.task.ntest_lens;
    memcpy(out, c.task.test_lens, (size_t)*n * sizeof(int));
}

Test(protocols, test_lens_lists_and_ranges) {
    static int v[CFG_MAX_TEST_LENS];
    int n;
    lens_of("41-500", v, &n);
    cr_expect_eq(n, 460);
    for (int i = 0; i < n; i++) cr_expect_eq(v[i], 41 + i);
    lens_of("41-500:10", v, &n); /* 41, 51, ..., 491, and the end 500 */
    cr_expect_eq(n, 47);
    for (int i = 0; i < 46; i++) cr_expect_eq(v[i], 41 + 10 * i);
    cr_expect_eq(v[46], 500);
    lens_of("8, 16, 100-300:100, 7", v, &n);
    int want[] = {8, 16, 100, 200, 300, 7};
    cr_assert_eq(n, 6);
    for (int i = 0; i < 6; i++) cr_expect_eq(v[i], want[i]);
    lens_of("1-512", v, &n); /* the bound itself */
    cr_expect_eq(n, CFG_MAX_TEST_LENS);
}

/* what config_to_ini writes is the compact form, and reading it back gives the same config, byte for byte */
Test(protocols, lens_write_back_compactly_and_exactly) {
    static const struct {
        const char *in, *out;
    } cases[] = {{"41-500:10", "41-500:10"},     {"41-500", "41-500"},       {"8,16,24,32", "8-32:8"},
                 {"10,20,30,35", "10-35:10"},    {"1,2,4,8,9,10,11", "1, 2, 4, 8-11"},
                 {"32, 64, 128, 256, 512", "32, 64, 128, 256, 512"}, {"5", "5"}, {"9, 3", "9, 3"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        RunConfig c, back;
        config_defaults(&c);
        char a[300];
        snprintf(a, sizeof a, "task.test_lens=%s", cases[i].in);
        set_ok(&c, a);
        set_ok(&c, "task.train_len=2-9");
        char *ini = config_to_ini(&c);
        char line[300];
        snprintf(line, sizeof line, "\ntest_lens = %s\n", cases[i].out);
        cr_expect(strstr(ini, line), "%s: expected '%s' in:\n%s", cases[i].in, cases[i].out, ini);
        cr_expect(strstr(ini, "\ntrain_len = 2-9\n"), "%s", ini);
        char path[512];
        snprintf(path, sizeof path, "%s/rt.ini", tmpdir);
        FILE *f = fopen(path, "w");
        fputs(ini, f);
        fclose(f);
        free(ini);
        config_defaults(&back);
        Err e = {{0}};
        cr_assert_eq(config_load(&back, path, &e), 0, "%s", e.msg);
        cr_expect(memcmp(&c, &back, sizeof c) == 0, "%s: the config read back differs", cases[i].in);
    }
}

Test(protocols, test_lens_bad_values) {
    set_bad("task.test_lens=40-1", "entry 1 '40-1' is a decreasing range", NULL);
    set_bad("task.test_lens=8, 0-5", "entry 2 '0-5' is out of range", NULL);
    set_bad("task.test_lens=41-500:0", "the step must be", NULL);
    set_bad("task.test_lens=41-", "entry 1 '41-'", NULL);
    set_bad("task.test_lens=41-500:", "entry 1 '41-500:'", NULL);
    set_bad("task.test_lens=41:5", "entry 1 '41:5'", NULL);
    set_bad("task.test_lens=8,,16", "entry 2 is empty", NULL);
    set_bad("task.test_lens=", "empty list", NULL);
    /* bounded: at most CFG_MAX_TEST_LENS test sets per run */
    set_bad("task.test_lens=1-1000000", "makes 1000000 test lengths", "at most 512");
    set_bad("task.test_lens=1-513", "makes 513 test lengths", "A-B:S");
    set_bad("task.test_lens=1-300, 301-600", "makes 600 test lengths", NULL);
    set_bad("task.test_lens=1-99999999999999999999:5", "out of range", NULL);
    RunConfig c;
    config_defaults(&c);
    set_ok(&c, "task.test_lens=1-10, 10");
    Err e = {{0}};
    cr_expect_neq(config_validate(&c, &e), 0);
    cr_expect(strstr(e.msg, "lists 10 twice"), "%s", e.msg);
}

/* in a file: the error names file and line */
Test(protocols, bad_range_in_file_names_the_line) {
    char path[512];
    snprintf(path, sizeof path, "%s/bad.ini", tmpdir);
    FILE *f = fopen(path, "w");
    fputs("[experiment]\nname = x\n[task]\nname = s3\ntrain_len = 40-1\n", f);
    fclose(f);
    RunConfig c;
    config_defaults(&c);
    Err e = {{0}};
    cr_assert_neq(config_load(&c, path, &e), 0);
    cr_expect(strstr(e.msg, "bad.ini:5") && strstr(e.msg, "decreasing"), "%s", e.msg);
}

Test(protocols, cross_checks_of_the_protocols) {
    static const struct {
        const char *sets[4], *frag;
    } bad[] = {
        {{"task.protocol=merrill", "task.train_len=2-8", "task.test_lens=8"}, "is a range"},
        {{"task.protocol=merrill", "task.train_len=8", "task.test_lens=4, 16"}, "does not list 8"},
        {{"task.protocol=merrill", "task.train_len=8", "task.test_lens=2-8"}, "cannot list 2"},
        {{"task.protocol=merrill", "task.train_len=1", "task.test_lens=1"}, "train_len >= 2"},
        {{"train.early_stop=0.9", "task.train_len=1-40", "task.test_lens=41-60"}, "inside the training range 1-40"},
        {{"train.early_stop=0.9", "task.train_len=12", "task.test_lens=24"}, "add 12 to task.test_lens"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        RunConfig c;
        config_defaults(&c);
        for (int k = 0; k < 4 && bad[i].sets[k]; k++) set_ok(&c, bad[i].sets[k]);
        Err e = {{0}};
        cr_expect_neq(config_validate(&c, &e), 0, "case %zu accepted", i);
        cr_expect(strstr(e.msg, bad[i].frag), "case %zu: message lacks '%s': %s", i, bad[i].frag, e.msg);
    }
    RunConfig c;
    config_defaults(&c);
    set_ok(&c, "train.early_stop=0.9");
    set_ok(&c, "task.train_len=1-40");
    set_ok(&c, "task.test_lens=40-60:10");
    Err e = {{0}};
    cr_expect_eq(config_validate(&c, &e), 0, "%s", e.msg);
    /* merrill with more test lengths than n (one list for a sweep over n), and n = 2 testing length 2 */
    const char *ok[][3] = {{"task.protocol=merrill", "task.train_len=5", "task.test_lens=3-12"},
                           {"task.protocol=merrill", "task.train_len=2", "task.test_lens=2-6"}};
    for (int i = 0; i < 2; i++) {
        config_defaults(&c);
        for (int k = 0; k < 3; k++) set_ok(&c, ok[i][k]);
        cr_expect_eq(config_validate(&c, &e), 0, "%s", e.msg);
    }
}

/* ---- the length draws ------------------------------------------------------------------------------ */

static Task *s3(const char *variant) {
    Err e = {{0}};
    Task *t = task_create_named("s3", variant, NULL, NULL, 0, &e);
    cr_assert(t, "%s", e.msg);
    return t;
}

static void proto_cfg(RunConfig *c, const char *train_len, const char *mode) {
    config_defaults(c);
    set_ok(c, "task.name=s3");
    set_ok(c, "task.variant=full");
    char a[64];
    snprintf(a, sizeof a, "task.train_len=%s", train_len);
    set_ok(c, a);
    snprintf(a, sizeof a, "task.train_len_mode=%s", mode);
    set_ok(c, a);
    set_ok(c, "task.test_lens=8");
}

/* batch mode: one length per batch, drawn first (lo + gsl_rng_uniform_int(rng, hi - lo + 1)), then the
 * B sequences of that length exactly as task_sample draws them; deterministic for a seed; uniform. */
Test(protocols, one_length_per_batch) {
    RunConfig c;
    proto_cfg(&c, "3-11", "batch");
    Task *t = s3("full");
    Protocol p;
    Err e = {{0}};
    cr_assert_eq(protocol_init(&p, &c, t, 1, &e), 0, "%s", e.msg);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937), *ref = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 42), gsl_rng_set(ref, 42);
    Batch b, want;
    batch_alloc(&b, 5, 11);
    int seen[12] = {0}, row_len[5];
    for (int s = 0; s < 300; s++) {
        protocol_batch(&p, rng, &b, row_len);
        int T = 3 + (int)gsl_rng_uniform_int(ref, 9); /* the documented draw, replayed */
        cr_assert_eq(b.T, T, "step %d: batch length %d, replayed draw %d", s, b.T, T);
        batch_alloc(&want, 5, T);
        task_sample(t, ref, &want);
        cr_assert(!memcmp(b.inputs, want.inputs, 5 * (size_t)T * sizeof(int)) &&
                      !memcmp(b.targets, want.targets, 5 * (size_t)T * sizeof(int)) && !memcmp(b.mask, want.mask, 5 * (size_t)T),
                  "step %d: the batch is not task_sample's at the drawn length", s);
        for (int i = 0; i < 5; i++) cr_assert_eq(row_len[i], T);
        batch_free(&want);
        seen[T]++;
    }
    for (int T = 3; T <= 11; T++) cr_expect(seen[T] > 0, "length %d never drawn in 300 batches", T);
    /* uniform over 3..11: chi-square with 8 degrees of freedom over 9000 one-row draws, below the 0.1% point */
    batch_free(&b);
    batch_alloc(&b, 1, 11);
    int cnt[12] = {0};
    for (int s = 0; s < 9000; s++) protocol_batch(&p, rng, &b, NULL), cnt[b.T]++;
    double chi2 = 0;
    for (int T = 3; T <= 11; T++) chi2 += (cnt[T] - 1000.0) * (cnt[T] - 1000.0) / 1000.0;
    printf("one length per batch: chi-square %.2f over lengths 3..11 (8 dof, 0.1%% point 26.12)\n", chi2);
    cr_expect(chi2 < 26.12, "length draws not uniform: chi2 = %.2f", chi2);
    batch_free(&b);
    gsl_rng_free(rng), gsl_rng_free(ref);
    protocol_free(&p);
    task_free(t);
}

/* a fixed length draws no length: the stream is exactly task_sample's (runs from before ranges unchanged) */
Test(protocols, fixed_length_draws_nothing_extra) {
    RunConfig c;
    proto_cfg(&c, "9", "batch");
    Task *t = s3("full");
    Protocol p;
    Err e = {{0}};
    cr_assert_eq(protocol_init(&p, &c, t, 1, &e), 0, "%s", e.msg);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937), *ref = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 7), gsl_rng_set(ref, 7);
    Batch b, want;
    batch_alloc(&b, 4, 9), batch_alloc(&want, 4, 9);
    for (int s = 0; s < 20; s++) {
        protocol_batch(&p, rng, &b, NULL);
        task_sample(t, ref, &want);
        cr_assert(b.T == 9 && !memcmp(b.inputs, want.inputs, 36 * sizeof(int)));
    }
    cr_expect_eq(gsl_rng_get(rng), gsl_rng_get(ref), "the streams diverged");
    batch_free(&b), batch_free(&want);
    gsl_rng_free(rng), gsl_rng_free(ref);
    protocol_free(&p);
    task_free(t);
}

/* mixed mode: B lengths first, then row i of length len[i], right-padded to the longest with 0/0/mask 0 */
Test(protocols, mixed_lengths_pad_and_mask) {
    RunConfig c;
    proto_cfg(&c, "2-10", "mixed");
    Task *t = s3("full");
    Protocol p;
    Err e = {{0}};
    cr_assert_eq(protocol_init(&p, &c, t, 1, &e), 0, "%s", e.msg);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937), *ref = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 5), gsl_rng_set(ref, 5);
    const int B = 6;
    Batch b, one;
    batch_alloc(&b, B, 10);
    int row_len[6], differ = 0;
    for (int s = 0; s < 50; s++) {
        protocol_batch(&p, rng, &b, row_len);
        int len[6], T = 0;
        for (int i = 0; i < B; i++) {
            len[i] = 2 + (int)gsl_rng_uniform_int(ref, 9);
            if (len[i] > T) T = len[i];
        }
        cr_assert_eq(b.T, T, "step %d: batch length %d, longest drawn %d", s, b.T, T);
        for (int i = 0; i < B; i++) {
            cr_assert_eq(row_len[i], len[i]);
            differ |= len[i] != len[0];
            batch_alloc(&one, 1, len[i]);
            task_sample(t, ref, &one);
            const size_t o = (size_t)i * T;
            cr_assert(!memcmp(b.inputs + o, one.inputs, (size_t)len[i] * sizeof(int)) &&
                          !memcmp(b.targets + o, one.targets, (size_t)len[i] * sizeof(int)),
                      "step %d row %d is not the task's sequence of length %d", s, i, len[i]);
            for (int x = 0; x < T; x++) {
                if (x < len[i]) cr_assert_eq(b.mask[o + x], 1);
                else cr_assert(b.mask[o + x] == 0 && b.inputs[o + x] == 0 && b.targets[o + x] == 0,
                               "step %d row %d position %d: padding not 0/0/mask 0", s, i, x);
            }
            batch_free(&one);
        }
    }
    cr_expect(differ, "mixed mode never gave rows of different lengths");
    batch_free(&b);
    gsl_rng_free(rng), gsl_rng_free(ref);
    protocol_free(&p);
    task_free(t);
}

/* ---- runs ----------------------------------------------------------------------------------------------- */

static void small_cfg(RunConfig *c, long steps, const char *train_len, const char *mode) {
    config_defaults(c);
    const char *sets[] = {"experiment.name=p", "model.layers=1", "model.d_model=32", "model.head_size=16",
                          "task.name=s3", "task.variant=full", "task.test_lens=8-24:8",
                          "task.test_size=16", "train.batch=8", "train.warmup=2", "train.eval_every=5",
                          "train.log_every=1", "train.ckpt_every=4", "train.chunk=5", "log.trajectories=0",
                          "train.threads=1"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) set_ok(c, sets[i]);
    char a[64];
    snprintf(a, sizeof a, "task.train_len=%s", train_len);
    set_ok(c, a);
    snprintf(a, sizeof a, "task.train_len_mode=%s", mode);
    set_ok(c, a);
    c->train.steps = steps;
}

static int run(RunConfig *c, const char *sub, int resume, long stop_after) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, sub);
    TrainOpts o = {.out_dir = resume ? NULL : dir, .resume_dir = resume ? dir : NULL, .stop_after = stop_after,
                   .quiet = 1};
    Err e = {{0}};
    int rc = train_run(c, &o, &e);
    if (rc == TRAIN_ERROR) cr_log_error("train_run: %s", e.msg);
    return rc;
}

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc(*n + 1);
    cr_assert(fread(p, 1, *n, f) == *n);
    fclose(f);
    p[*n] = 0;
    return p;
}

static int same_file(const char *a, const char *b) {
    size_t na, nb;
    char *pa = slurp(a, &na), *pb = slurp(b, &nb);
    int same = na == nb && memcmp(pa, pb, na) == 0;
    free(pa), free(pb);
    return same;
}

static double *read_ds(const char *h5, const char *name, hsize_t *n) {
    hid_t f = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0, "cannot open %s", h5);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    cr_assert(d >= 0, "%s has no %s", h5, name);
    hid_t s = H5Dget_space(d);
    H5Sget_simple_extent_dims(s, n, NULL);
    double *v = malloc(*n * sizeof(double) + 8);
    H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Sclose(s), H5Dclose(d), H5Fclose(f);
    return v;
}

/* The training length of each step, from the progress lines of run.log ("step S/N  len L  ..."). */
static int log_lengths(const char *sub, int *len, int cap) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s/run.log", tmpdir, sub);
    FILE *f = fopen(p, "r");
    cr_assert(f, "no %s", p);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f) && n < cap) {
        long s, N;
        int L;
        if (sscanf(line, "step %ld/%ld len %d", &s, &N, &L) == 3) len[n++] = L;
    }
    fclose(f);
    return n;
}

/* A run's batches have the drawn lengths: every step logs one, all in the range, the same for the same
 * seed, other ones for another seed. */
Test(protocols, run_lengths_deterministic_for_a_seed) {
    RunConfig c;
    small_cfg(&c, 20, "4-12", "batch");
    cr_assert_eq(run(&c, "r1", 0, 0), TRAIN_OK);
    small_cfg(&c, 20, "4-12", "batch");
    cr_assert_eq(run(&c, "r1b", 0, 0), TRAIN_OK);
    small_cfg(&c, 20, "4-12", "batch");
    c.experiment.seeds[0] = 2;
    cr_assert_eq(run(&c, "r2", 0, 0), TRAIN_OK);
    int a[64], b[64], d[64];
    int na = log_lengths("r1", a, 64), nb = log_lengths("r1b", b, 64), nd = log_lengths("r2", d, 64);
    cr_assert_eq(na, 20, "%d steps logged a length", na);
    cr_assert_eq(nb, 20);
    cr_assert_eq(nd, 20);
    int distinct = 0, seen[13] = {0}, other = 0;
    for (int i = 0; i < 20; i++) {
        cr_expect(a[i] >= 4 && a[i] <= 12, "step %d: length %d outside 4-12", i + 1, a[i]);
        cr_expect_eq(a[i], b[i], "step %d: the same seed drew %d and %d", i + 1, a[i], b[i]);
        distinct += !seen[a[i]]++;
        other |= a[i] != d[i];
    }
    cr_expect(distinct >= 3, "only %d distinct lengths in 20 steps", distinct);
    cr_expect(other, "seed 2 drew the same 20 lengths as seed 1");
}

/* --resume continues bit-identically with a length range (the draws come from the checkpointed rng) */
static void resume_case(const char *mode) {
    char full[64], split[64];
    snprintf(full, sizeof full, "full-%s", mode);
    snprintf(split, sizeof split, "split-%s", mode);
    RunConfig c;
    small_cfg(&c, 12, "3-14", mode);
    cr_assert_eq(run(&c, full, 0, 0), TRAIN_OK);
    small_cfg(&c, 12, "3-14", mode);
    cr_assert_eq(run(&c, split, 0, 6), TRAIN_INTERRUPTED); /* after step 6, between checkpoints 4 and 8 */
    small_cfg(&c, 12, "3-14", mode);
    cr_assert_eq(run(&c, split, 1, 0), TRAIN_OK);
    char a[600], b[600];
    const char *files[] = {"ckpt.bin", "optim.bin"};
    for (int i = 0; i < 2; i++) {
        snprintf(a, sizeof a, "%s/%s/%s", tmpdir, full, files[i]);
        snprintf(b, sizeof b, "%s/%s/%s", tmpdir, split, files[i]);
        cr_expect(same_file(a, b), "%s: %s differs between the uninterrupted and the resumed run", mode, files[i]);
    }
    const char *ds[] = {"/train/loss", "/train/grad_norm", "/eval/token_acc", "/eval/seq_acc", "/eval/scaled_acc"};
    for (int i = 0; i < 5; i++) {
        hsize_t na, nb;
        snprintf(a, sizeof a, "%s/%s/run.h5", tmpdir, full);
        snprintf(b, sizeof b, "%s/%s/run.h5", tmpdir, split);
        double *va = read_ds(a, ds[i], &na), *vb = read_ds(b, ds[i], &nb);
        cr_expect(na == nb && na > 0 && memcmp(va, vb, na * sizeof(double)) == 0, "%s: %s differs after resume", mode,
                  ds[i]);
        free(va), free(vb);
    }
    int la[64], lb[64];
    int na = log_lengths(full, la, 64), nb = log_lengths(split, lb, 64); /* the split log: 1..6, then 7..12 */
    cr_assert_eq(na, 12);
    cr_assert_eq(nb, 12);
    cr_expect(!memcmp(la, lb, sizeof(int) * 12), "%s: the resumed run drew other lengths", mode);
}
Test(protocols, resume_bit_identical_with_length_range) {
    resume_case("batch");
    resume_case("mixed");
}

/* scaled accuracy = (acc - chance) / (1 - chance) with chance = 1/|G| for group word problems */
Test(protocols, scaled_accuracy_formula) {
    cr_expect_float_eq(scaled_accuracy(0.5, 0.25), 1.0 / 3, 1e-15);
    cr_expect_float_eq(scaled_accuracy(1.0, 0.5), 1.0, 1e-15);
    cr_expect_float_eq(scaled_accuracy(0.5, 0.5), 0.0, 1e-15);
    cr_expect_float_eq(scaled_accuracy(0.2, 0.5), -0.6, 1e-15); /* below chance is negative, not clipped */
    cr_expect(isnan(scaled_accuracy(0.7, -1)), "unknown chance must give NaN");
    cr_expect(isnan(scaled_accuracy(0.7, 0)), "chance 0 means unknown");
    cr_expect(isnan(scaled_accuracy(0.7, 1)), "chance 1 leaves nothing to scale");
}

Test(protocols, scaled_accuracy_in_summary_h5_and_evaltask) {
    RunConfig c;
    small_cfg(&c, 6, "4-12", "batch");
    cr_assert_eq(run(&c, "sc", 0, 0), TRAIN_OK);
    const double chance = 1.0 / 6; /* S3 has 6 elements */
    char p[600];
    snprintf(p, sizeof p, "%s/sc/summary.json", tmpdir);
    size_t n;
    char *s = slurp(p, &n);
    cJSON *j = cJSON_Parse(s);
    free(s);
    cr_assert(j);
    cr_expect_float_eq(cJSON_GetObjectItem(j, "chance")->valuedouble, chance, 1e-15);
    cr_expect_str_eq(cJSON_GetObjectItem(j, "train_len")->valuestring, "4-12");
    const cJSON *ev = cJSON_GetObjectItem(j, "eval");
    cr_assert_eq(cJSON_GetArraySize(ev), 3);
    double tok[3], mean_tok = 0, mean_seq = 0;
    int k = 0;
    for (const cJSON *e = ev->child; e; e = e->next, k++) {
        tok[k] = cJSON_GetObjectItem(e, "token_acc")->valuedouble;
        double sc = cJSON_GetObjectItem(e, "scaled_acc")->valuedouble;
        cr_expect_float_eq(sc, (tok[k] - chance) / (1 - chance), 1e-12, "length %d", 8 * (k + 1));
        mean_tok += tok[k] / 3, mean_seq += cJSON_GetObjectItem(e, "seq_acc")->valuedouble / 3;
    }
    const cJSON *m = cJSON_GetObjectItem(j, "eval_mean");
    cr_assert(m);
    cr_expect_float_eq(cJSON_GetObjectItem(m, "token_acc")->valuedouble, mean_tok, 1e-12);
    cr_expect_float_eq(cJSON_GetObjectItem(m, "seq_acc")->valuedouble, mean_seq, 1e-12);
    cr_expect_float_eq(cJSON_GetObjectItem(m, "scaled_acc")->valuedouble, (mean_tok - chance) / (1 - chance), 1e-12);
    cJSON_Delete(j);
    /* run.h5: /eval/scaled_acc of the last evaluation, and the task_chance attribute */
    snprintf(p, sizeof p, "%s/sc/run.h5", tmpdir);
    hsize_t nh;
    double *ta = read_ds(p, "/eval/token_acc", &nh), *sa = read_ds(p, "/eval/scaled_acc", &nh);
    cr_assert(nh >= 3);
    for (hsize_t i = 0; i < nh; i++) cr_expect_float_eq(sa[i], (ta[i] - chance) / (1 - chance), 1e-12);
    for (int i = 0; i < 3; i++) cr_expect_float_eq(ta[nh - 3 + i], tok[i], 1e-15);
    free(ta), free(sa);
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t at = H5Aopen(f, "task_chance", H5P_DEFAULT);
    double hc = 0;
    H5Aread(at, H5T_NATIVE_DOUBLE, &hc);
    H5Aclose(at), H5Fclose(f);
    cr_expect_float_eq(hc, chance, 1e-15);
    /* evaltask prints the same accuracies and scaled values for the run's own test lengths */
    char cmd[2048], outp[600];
    snprintf(outp, sizeof outp, "%s/ev.txt", tmpdir);
    snprintf(cmd, sizeof cmd, "%s evaltask %s/sc > %s 2>&1", rwkvlab_bin(), tmpdir, outp);
    cr_assert_eq(sh(cmd), 0);
    FILE *fo = fopen(outp, "r");
    char line[512];
    int rows = 0, mean_row = 0;
    while (fgets(line, sizeof line, fo)) {
        int L;
        double t, q, sc;
        if (sscanf(line, " %d %lf %lf %lf", &L, &t, &q, &sc) == 4) {
            cr_assert(rows < 3 && L == 8 * (rows + 1), "%s", line);
            cr_expect(fabs(t - tok[rows]) < 5e-5, "length %d: evaltask %.4f vs run %.4f", L, t, tok[rows]);
            cr_expect(fabs(sc - (tok[rows] - chance) / (1 - chance)) < 5e-5, "length %d scaled %.4f", L, sc);
            rows++;
        } else if (sscanf(line, " mean %lf %lf %lf", &t, &q, &sc) == 3) {
            cr_expect(fabs(sc - (mean_tok - chance) / (1 - chance)) < 5e-5, "mean scaled %.4f", sc);
            mean_row = 1;
        }
    }
    fclose(fo);
    cr_expect_eq(rows, 3, "evaltask printed %d rows", rows);
    cr_expect(mean_row, "evaltask printed no mean row");
}

/* evaltask on a new variant and new lengths: the numbers of an independent evaluation of that variant */
Test(protocols, evaltask_new_variant_and_range) {
    RunConfig c;
    small_cfg(&c, 4, "6", "batch");
    set_ok(&c, "task.test_lens=6");
    cr_assert_eq(run(&c, "var", 0, 0), TRAIN_OK);
    char cmd[2048], outp[600];
    snprintf(outp, sizeof outp, "%s/var.txt", tmpdir);
    snprintf(cmd, sizeof cmd, "%s evaltask %s/var --variant swaps --lengths 5-15:5 --n 32 > %s 2>&1", rwkvlab_bin(),
             tmpdir, outp);
    cr_assert_eq(sh(cmd), 0);
    char p[600];
    snprintf(p, sizeof p, "%s/var/ckpt.bin", tmpdir);
    Model *m = NULL;
    Err e = {{0}};
    cr_assert_eq(ckpt_load_model(p, &m, NULL, NULL, &e), 0, "%s", e.msg);
    Task *t = s3("swaps");
    FILE *fo = fopen(outp, "r");
    char line[512];
    int rows = 0, saw_variant = 0;
    while (fgets(line, sizeof line, fo)) {
        saw_variant |= strstr(line, "variant swaps (the model was trained on variant full)") != NULL;
        int L;
        double ta, sa;
        if (sscanf(line, " %d %lf %lf", &L, &ta, &sa) != 3) continue;
        cr_assert(L == 5 * (rows + 1), "row %d: length %d", rows, L);
        Batch b;
        task_testset(t, 1, L, 32, &b);
        double wt, ws;
        train_evaluate(m, b.inputs, b.targets, b.mask, 32, L, 16, 1L << 16, &wt, &ws);
        cr_expect(fabs(ta - wt) < 5e-5 && fabs(sa - ws) < 5e-5, "length %d: evaltask %.4f/%.4f, swaps test set %.4f/%.4f",
                  L, ta, sa, wt, ws);
        batch_free(&b);
        rows++;
    }
    fclose(fo);
    cr_expect_eq(rows, 3);
    cr_expect(saw_variant, "evaltask did not say which variant it evaluated");
    task_free(t);
    model_free(m);
    /* a variant that does not exist, or a bad range: an error naming it, exit 1 */
    snprintf(cmd, sizeof cmd, "%s evaltask %s/var --variant bogus > %s 2>&1", rwkvlab_bin(), tmpdir, outp);
    cr_expect_eq(sh(cmd), 1);
    size_t n;
    char *s = slurp(outp, &n);
    cr_expect(strstr(s, "--variant") && strstr(s, "bogus") && strstr(s, "swaps"), "%s", s);
    free(s);
    snprintf(cmd, sizeof cmd, "%s evaltask %s/var --lengths 40-1 > %s 2>&1", rwkvlab_bin(), tmpdir, outp);
    cr_expect_eq(sh(cmd), 1);
    s = slurp(outp, &n);
    cr_expect(strstr(s, "--lengths") && strstr(s, "decreasing"), "%s", s);
    free(s);
}

/* ---- the Merrill split ------------------------------------------------------------------------------ */

/* independent label check: the prefix products by composing permutation arrays ("a then b": b[a[x]]) */
static void check_labels(const Group *g, const Batch *b, int rows) {
    for (int i = 0; i < rows; i++) {
        unsigned char acc[8], nxt[8];
        for (int x = 0; x < g->n; x++) acc[x] = (unsigned char)x;
        for (int t = 0; t < b->T; t++) {
            const unsigned char *p = group_perm(g, b->inputs[(size_t)i * b->T + t]);
            for (int x = 0; x < g->n; x++) nxt[x] = p[acc[x]];
            memcpy(acc, nxt, (size_t)g->n);
            int want = -1;
            for (int e = 0; e < g->order && want < 0; e++)
                if (!memcmp(group_perm(g, e), acc, (size_t)g->n)) want = e;
            cr_assert_eq(b->targets[(size_t)i * b->T + t], want, "row %d position %d: label %d, composed %d", i, t,
                         b->targets[(size_t)i * b->T + t], want);
        }
    }
}

/* index of a sequence over an alphabet of size a (its inputs as base-a digits, via the alphabet list) */
static long seq_code(const int *in, int T, const int *alpha, int a) {
    long code = 0;
    for (int t = 0; t < T; t++) {
        int d = -1;
        for (int k = 0; k < a; k++)
            if (alpha[k] == in[t]) d = k;
        cr_assert(d >= 0, "token %d is not in the input alphabet", in[t]);
        code = code * a + d;
    }
    return code;
}

/* every sequence of length n over the alphabet appears exactly once in train + test, never in both;
 * sizes round(0.8 N) / the rest; every pair present once; labels right */
static void merrill_exhaustive(const char *variant, const int *alpha, int a, int n) {
    Task *t = s3(variant);
    Group g;
    Err e = {{0}};
    cr_assert_eq(group_init_by_name(&g, "s3", &e), 0);
    FiniteSet d;
    cr_assert_eq(dataset_merrill(t, 1, n, 0.8, 1000000, &d, &e), 0, "%s", e.msg);
    long N = 1;
    for (int i = 0; i < n; i++) N *= a;
    cr_expect_eq(d.distinct, N, "%s n=%d: %ld distinct, %ld exist", variant, n, d.distinct, N);
    cr_expect(d.complete, "all %ld sequences were found but complete = 0", N);
    long ntrain = (long)floor(0.8 * N + 0.5);
    cr_expect_eq(d.train.B, ntrain, "train %d, want round(0.8 x %ld) = %ld", d.train.B, N, ntrain);
    cr_expect_eq(d.test.B, N - ntrain);
    char *where = calloc((size_t)N, 1); /* 1 = train, 2 = test */
    for (int i = 0; i < d.train.B; i++) {
        long k = seq_code(d.train.inputs + (size_t)i * n, n, alpha, a);
        cr_assert_eq(where[k], 0, "sequence %ld twice in train", k);
        where[k] = 1;
    }
    for (int i = 0; i < d.test.B; i++) {
        long k = seq_code(d.test.inputs + (size_t)i * n, n, alpha, a);
        cr_assert_eq(where[k], 0, "sequence %ld of the test part is also in %s", k, where[k] == 1 ? "train" : "test");
        where[k] = 2;
    }
    for (long k = 0; k < N; k++) cr_assert(where[k], "sequence %ld missing from the dataset", k);
    free(where);
    check_labels(&g, &d.train, d.train.B);
    check_labels(&g, &d.test, d.test.B);
    /* all length-2 pairs, each once */
    cr_expect_eq(d.pairs.B, a * a, "%d pairs, want %d", d.pairs.B, a * a);
    char seen[64] = {0};
    for (int i = 0; i < d.pairs.B; i++) {
        long k = seq_code(d.pairs.inputs + (size_t)i * 2, 2, alpha, a);
        cr_assert(!seen[k], "pair %ld twice", k);
        seen[k] = 1;
    }
    check_labels(&g, &d.pairs, d.pairs.B);
    printf("merrill s3 %s n=%d: %ld sequences -> %d train + %d test, %d pairs\n", variant, n, N, d.train.B, d.test.B,
           d.pairs.B);
    dataset_free(&d);
    group_free(&g);
    task_free(t);
}

Test(protocols, merrill_split_exhaustive) {
    int full[6] = {0, 1, 2, 3, 4, 5};
    merrill_exhaustive("full", full, 6, 3); /* 216 sequences */
    merrill_exhaustive("full", full, 6, 4); /* 1296 */
    /* swaps: identity + the transpositions, found independently (elements moving at most 2 points) */
    Group g;
    Err e;
    cr_assert_eq(group_init_by_name(&g, "s3", &e), 0);
    int sw[6], a = 0;
    for (int el = 0; el < g.order; el++) {
        int moved = 0;
        for (int x = 0; x < g.n; x++) moved += group_perm(&g, el)[x] != x;
        if (moved <= 2) sw[a++] = el;
    }
    group_free(&g);
    cr_assert_eq(a, 4);
    merrill_exhaustive("swaps", sw, 4, 5); /* 1024 */
}

static int row_cmp_T;
static int row_cmp(const void *x, const void *y) { return memcmp(x, y, (size_t)row_cmp_T * sizeof(int)); }

/* more sequences than the cap: exactly `max` distinct ones, split 80/20, no sequence in both parts,
 * deterministic for the seed and different for another seed */
Test(protocols, merrill_split_capped) {
    Task *t = s3("full");
    Err e = {{0}};
    FiniteSet d, d2, d3;
    const int n = 7; /* 6^7 = 279936 sequences */
    cr_assert_eq(dataset_merrill(t, 3, n, 0.8, 5000, &d, &e), 0, "%s", e.msg);
    cr_expect_eq(d.distinct, 5000);
    cr_expect(!d.complete);
    cr_expect_eq(d.train.B, 4000);
    cr_expect_eq(d.test.B, 1000);
    cr_expect_eq(d.pairs.B, 36);
    /* no overlap, no duplicates: sort all rows together and compare neighbours */
    int *all = malloc((size_t)5000 * n * sizeof(int));
    memcpy(all, d.train.inputs, (size_t)4000 * n * sizeof(int));
    memcpy(all + (size_t)4000 * n, d.test.inputs, (size_t)1000 * n * sizeof(int));
    row_cmp_T = n;
    qsort(all, 5000, (size_t)n * sizeof(int), row_cmp);
    for (int i = 1; i < 5000; i++)
        cr_assert(memcmp(all + (size_t)(i - 1) * n, all + (size_t)i * n, (size_t)n * sizeof(int)) != 0,
                  "a sequence appears twice in train + test");
    free(all);
    cr_assert_eq(dataset_merrill(t, 3, n, 0.8, 5000, &d2, &e), 0);
    cr_expect(!memcmp(d.train.inputs, d2.train.inputs, (size_t)4000 * n * sizeof(int)) &&
                  !memcmp(d.test.inputs, d2.test.inputs, (size_t)1000 * n * sizeof(int)),
              "the same seed gave another split");
    cr_assert_eq(dataset_merrill(t, 4, n, 0.8, 5000, &d3, &e), 0);
    cr_expect(memcmp(d.test.inputs, d3.test.inputs, (size_t)1000 * n * sizeof(int)) != 0,
              "seed 4 gave the same test part as seed 3");
    dataset_free(&d), dataset_free(&d2), dataset_free(&d3);
    task_free(t);
}

/* the paper's pair counts: 3600 for the 60-element groups, 14400 for S5 */
Test(protocols, merrill_pairs_of_big_groups) {
    static const struct {
        const char *name;
        int order;
    } gs[] = {{"z60", 60}, {"a5", 60}, {"s5", 120}};
    for (int i = 0; i < 3; i++) {
        Err e = {{0}};
        Task *t = task_create_named(gs[i].name, "full", NULL, NULL, 0, &e);
        cr_assert(t, "%s", e.msg);
        FiniteSet d;
        cr_assert_eq(dataset_merrill(t, 1, 3, 0.8, 2000, &d, &e), 0, "%s", e.msg);
        cr_expect_eq(d.pairs.B, gs[i].order * gs[i].order, "%s: %d pairs", gs[i].name, d.pairs.B);
        char *seen = calloc((size_t)gs[i].order * gs[i].order, 1);
        for (int k = 0; k < d.pairs.B; k++) {
            int x = d.pairs.inputs[2 * k], y = d.pairs.inputs[2 * k + 1];
            cr_assert(!seen[x * gs[i].order + y], "%s: pair (%d, %d) twice", gs[i].name, x, y);
            seen[x * gs[i].order + y] = 1;
        }
        free(seen);
        dataset_free(&d);
        task_free(t);
    }
}

/* n = 2: the pairs are the dataset itself, so none are added (the test part stays unseen) */
Test(protocols, merrill_n2_adds_no_pairs) {
    Task *t = s3("full");
    Err e = {{0}};
    FiniteSet d;
    cr_assert_eq(dataset_merrill(t, 1, 2, 0.8, 1000, &d, &e), 0, "%s", e.msg);
    cr_expect_eq(d.distinct, 36);
    cr_expect_eq(d.train.B, 29); /* round(28.8) */
    cr_expect_eq(d.test.B, 7);
    cr_expect_eq(d.pairs.B, 0);
    dataset_free(&d);
    task_free(t);
    /* a split that leaves a part empty is an error */
    t = task_create_named("z2", "full", NULL, NULL, 0, &e);
    cr_assert(t, "%s", e.msg);
    cr_expect_neq(dataset_merrill(t, 1, 2, 0.9, 1000, &d, &e), 0); /* 4 sequences, round(3.6) = 4 to train */
    cr_expect(strstr(e.msg, "none held out") && strstr(e.msg, "train_fraction"), "%s", e.msg);
    task_free(t);
}

/* training batches come from train + pairs only: never a held-out sequence */
Test(protocols, merrill_batches_never_hold_test_sequences) {
    RunConfig c;
    config_defaults(&c);
    set_ok(&c, "task.name=s3");
    set_ok(&c, "task.variant=full");
    set_ok(&c, "task.protocol=merrill");
    set_ok(&c, "task.train_len=4");
    set_ok(&c, "task.test_lens=4");
    Err e = {{0}};
    cr_assert_eq(config_validate(&c, &e), 0, "%s", e.msg);
    Task *t = s3("full");
    Protocol p;
    cr_assert_eq(protocol_init(&p, &c, t, 1, &e), 0, "%s", e.msg);
    const FiniteSet *d = &p.data;
    int full[6] = {0, 1, 2, 3, 4, 5};
    char *test = calloc(1296, 1), *train = calloc(1296, 1);
    for (int i = 0; i < d->test.B; i++) test[seq_code(d->test.inputs + (size_t)i * 4, 4, full, 6)] = 1;
    for (int i = 0; i < d->train.B; i++) train[seq_code(d->train.inputs + (size_t)i * 4, 4, full, 6)] = 1;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 9);
    Batch b;
    batch_alloc(&b, 64, 4);
    int row_len[64], npairs = 0;
    for (int s = 0; s < 200; s++) {
        protocol_batch(&p, rng, &b, row_len);
        cr_assert_eq(b.T, 4);
        for (int i = 0; i < 64; i++) {
            const int *in = b.inputs + (size_t)i * 4;
            if (row_len[i] == 2) {
                npairs++;
                cr_assert(b.mask[i * 4 + 2] == 0 && b.mask[i * 4 + 3] == 0 && b.mask[i * 4] == 1, "pair not padded");
            } else {
                cr_assert_eq(row_len[i], 4);
                long k = seq_code(in, 4, full, 6);
                cr_assert(!test[k], "a training batch holds held-out sequence %ld", k);
                cr_assert(train[k], "a training row is in neither part");
            }
        }
    }
    /* pairs are 36 of the 36 + 1037 pooled sequences: about 3.4% of 12800 rows (435); within 5 sigma */
    double expect = 12800.0 * 36 / (36 + d->train.B), sd = sqrt(expect);
    cr_expect(fabs(npairs - expect) < 5 * sd, "%d pair rows, expected about %.0f", npairs, expect);
    /* the test sets are the held-out part */
    Batch tb;
    protocol_testset(&p, 4, 100, 123, &tb);
    cr_assert_eq(tb.B, 100);
    cr_expect(!memcmp(tb.inputs, d->test.inputs, 400 * sizeof(int)), "the length-4 test set is not the held-out part");
    batch_free(&tb);
    protocol_testset(&p, 4, 100000, 123, &tb);
    cr_expect_eq(tb.B, d->test.B, "asking for more than are held out gives all of them");
    batch_free(&tb);
    /* another length: the fresh fixed test set */
    Batch want;
    protocol_testset(&p, 6, 10, 123, &tb);
    task_testset(t, 123, 6, 10, &want);
    cr_expect(tb.B == 10 && !memcmp(tb.inputs, want.inputs, 60 * sizeof(int)), "length 6 is not task_testset's");
    batch_free(&tb), batch_free(&want);
    free(test), free(train);
    batch_free(&b);
    gsl_rng_free(rng);
    protocol_free(&p);
    task_free(t);
}

/* a merrill run end to end: summary.json reports the split; evaltask reproduces the held-out accuracy */
Test(protocols, merrill_run_and_evaltask) {
    RunConfig c;
    small_cfg(&c, 6, "4", "batch");
    set_ok(&c, "task.protocol=merrill");
    set_ok(&c, "task.test_lens=4");
    set_ok(&c, "task.test_size=5000");
    cr_assert_eq(run(&c, "mer", 0, 0), TRAIN_OK);
    char p[600];
    snprintf(p, sizeof p, "%s/mer/summary.json", tmpdir);
    size_t n;
    char *s = slurp(p, &n);
    cJSON *j = cJSON_Parse(s);
    free(s);
    cr_assert(j);
    const cJSON *d = cJSON_GetObjectItem(j, "dataset");
    cr_assert(d, "summary.json has no dataset");
    cr_expect_eq(cJSON_GetObjectItem(d, "distinct")->valueint, 1296);
    cr_expect_eq(cJSON_GetObjectItem(d, "train")->valueint, 1037);
    cr_expect_eq(cJSON_GetObjectItem(d, "held_out")->valueint, 259);
    cr_expect_eq(cJSON_GetObjectItem(d, "pairs")->valueint, 36);
    cr_expect_eq(cJSON_GetObjectItem(d, "evaluated")->valueint, 259);
    double tok = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "eval")->child, "token_acc")->valuedouble;
    cJSON_Delete(j);
    char cmd[2048], outp[600];
    snprintf(outp, sizeof outp, "%s/mer.txt", tmpdir);
    snprintf(cmd, sizeof cmd, "%s evaltask %s/mer > %s 2>&1", rwkvlab_bin(), tmpdir, outp);
    cr_assert_eq(sh(cmd), 0);
    FILE *f = fopen(outp, "r");
    char line[512];
    int rows = 0;
    while (fgets(line, sizeof line, f)) {
        int L;
        double t, q;
        if (sscanf(line, " %d %lf %lf", &L, &t, &q) == 3) {
            cr_expect(L == 4 && fabs(t - tok) < 5e-5, "evaltask %d %.4f vs the run's %.4f", L, t, tok);
            rows++;
        }
    }
    fclose(f);
    cr_expect_eq(rows, 1);
}

/* every config of configs/ is one `rwkvlab config` accepts */
Test(protocols, shipped_configs_are_accepted) {
    FILE *ls = popen("ls configs/*.ini", "r");
    cr_assert(ls);
    char path[512];
    int n = 0;
    while (fgets(path, sizeof path, ls)) {
        path[strcspn(path, "\n")] = 0;
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "%s config %s > /dev/null 2> %s/cfg.err", rwkvlab_bin(), path, tmpdir);
        int rc = sh(cmd);
        if (rc != 0) {
            char ep[600];
            snprintf(ep, sizeof ep, "%s/cfg.err", tmpdir);
            size_t k;
            char *msg = slurp(ep, &k);
            cr_expect_eq(rc, 0, "rwkvlab config %s: %s", path, msg);
            free(msg);
        }
        n++;
    }
    pclose(ls);
    cr_expect(n >= 5, "only %d configs found", n);
}
