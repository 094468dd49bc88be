/* test_train.c -- the training run end to end (fp32 build): loss goes down on a fixed batch,
 * --resume continues bit-identically, NaN stops the run and keeps the last good checkpoint,
 * same seed => identical results, thread count does not change results, CLI errors. */
#include <cblas.h>
#include <criterion/criterion.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "ckpt.h"
#include "config.h"
#include "optim.h"
#include "rwkv7.h"
#include "task.h"
#include "train.h"
#include "testutil.h"

static char tmpdir[256];
static void mk_tmp(void) { cr_assert(test_mkdtemp(tmpdir, sizeof tmpdir, "train") == 0); }
static void rm_tmp(void) { test_rmtree(tmpdir); }
TestSuite(train, .init = mk_tmp, .fini = rm_tmp, .timeout = 300);

static void small_cfg(RunConfig *c, long steps) {
    config_defaults(c);
    const char *sets[] = {"experiment.name=t", "model.layers=2", "model.d_model=32", "model.head_size=16",
                          "task.name=s3", "task.variant=full", "task.train_len=12", "task.test_lens=12,24",
                          "task.test_size=16", "train.batch=8", "train.warmup=2", "train.eval_every=5",
                          "train.log_every=1", "train.ckpt_every=4", "train.chunk=5", "log.trajectories=1"};
    Err e;
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) cr_assert(config_set(c, sets[i], &e) == 0, "%s", e.msg);
    c->train.steps = steps;
}

static char *slurp(const char *path, size_t *n) {
    char *p = test_slurp(path, n);
    cr_assert(p, "cannot read %s", path);
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
    cr_assert(f >= 0);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT), s = H5Dget_space(d);
    H5Sget_simple_extent_dims(s, n, NULL);
    double *v = malloc(*n * sizeof(double) + 8);
    H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Sclose(s), H5Dclose(d), H5Fclose(f);
    return v;
}

static int run(RunConfig *c, const char *sub, const char *resume, long stop_after, long nan_at) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, sub);
    TrainOpts o = {.out_dir = resume ? NULL : dir, .resume_dir = resume ? dir : NULL, .stop_after = stop_after,
                   .inject_nan_at = nan_at, .quiet = 1};
    Err e = {{0}};
    int rc = train_run(c, &o, &e);
    if (rc == TRAIN_ERROR) cr_log_error("train_run: %s", e.msg);
    return rc;
}

Test(train, loss_decreases_on_fixed_batch) {
    RunConfig c;
    small_cfg(&c, 1);
    Err e;
    Task *t = task_create(&c, &e);
    cr_assert(t);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 3);
    Batch b;
    batch_alloc(&b, 8, 12);
    task_sample(t, rng, &b);
    Rwkv7Dims d = {.V = task_vocab(t), .C = 32, .L = 2, .N = 16, .has_ln0 = 1};
    Model *m = model_create(&model_rwkv7, &d, 1);
    model_init(m, rng, NULL);
    AdamWConfig ac = {.lr = 3e-3, .steps = 60, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8, .grad_clip = 1.0};
    AdamW o;
    adamw_init(&o, &ac, m->nparams);
    double first = 0, last = 0;
    for (int s = 0; s < 60; s++) {
        memset(m->grads, 0, m->nparams * sizeof(real));
        ModelFwd f = {.K = 4};
        model_forward(m, b.inputs, 8, 12, &f);
        long nc, cnt;
        double loss = model_loss(m, b.targets, b.mask, NULL, &nc, &cnt);
        model_backward(m);
        adamw_step(&o, m->params, m->grads, m->tensors, m->ntensors, NULL, NULL);
        if (s == 0) first = loss;
        last = loss;
    }
    printf("fixed batch: loss %.4f -> %.4f after 60 AdamW steps (must at least halve)\n", first, last);
    cr_expect(last < 0.5 * first, "loss %.4f -> %.4f did not halve", first, last);
    adamw_free(&o), model_free(m), batch_free(&b), task_free(t), gsl_rng_free(rng);
}

Test(train, resume_is_bit_identical) {
    RunConfig c;
    small_cfg(&c, 12);
    cr_assert_eq(run(&c, "full", NULL, 0, 0), TRAIN_OK);
    small_cfg(&c, 12);
    cr_assert_eq(run(&c, "split", NULL, 6, 0), TRAIN_INTERRUPTED); /* stops after step 6 (not a ckpt step) */
    small_cfg(&c, 12);
    cr_assert_eq(run(&c, "split", "resume", 0, 0), TRAIN_OK);
    char a[600], b[600];
    const char *files[] = {"ckpt.bin", "optim.bin"};
    for (int i = 0; i < 2; i++) {
        snprintf(a, sizeof a, "%s/full/%s", tmpdir, files[i]);
        snprintf(b, sizeof b, "%s/split/%s", tmpdir, files[i]);
        cr_expect(same_file(a, b), "%s differs between the uninterrupted and the resumed run", files[i]);
    }
    const char *ds[] = {"/train/step", "/train/loss", "/train/grad_norm", "/eval/seq_acc", "/eval/token_acc"};
    for (int i = 0; i < 5; i++) {
        hsize_t na, nb;
        snprintf(a, sizeof a, "%s/full/run.h5", tmpdir);
        snprintf(b, sizeof b, "%s/split/run.h5", tmpdir);
        double *va = read_ds(a, ds[i], &na), *vb = read_ds(b, ds[i], &nb);
        cr_expect_eq(na, nb, "%s: %llu vs %llu records", ds[i], (unsigned long long)na, (unsigned long long)nb);
        cr_expect(na == nb && memcmp(va, vb, na * sizeof(double)) == 0, "%s differs after resume", ds[i]);
        free(va), free(vb);
    }
}

Test(train, same_seed_same_result_and_thread_independent) {
    RunConfig c;
    small_cfg(&c, 6);
    c.train.threads = 1;
    cr_assert_eq(run(&c, "t1", NULL, 0, 0), TRAIN_OK);
    small_cfg(&c, 6);
    c.train.threads = 1;
    cr_assert_eq(run(&c, "t1b", NULL, 0, 0), TRAIN_OK);
    small_cfg(&c, 6);
    c.train.threads = 2;
    cr_assert_eq(run(&c, "t2", NULL, 0, 0), TRAIN_OK);
    char a[600], b[600], b2[600];
    snprintf(a, sizeof a, "%s/t1/ckpt.bin", tmpdir);
    snprintf(b, sizeof b, "%s/t1b/ckpt.bin", tmpdir);
    snprintf(b2, sizeof b2, "%s/t2/ckpt.bin", tmpdir);
    cr_expect(same_file(a, b), "two runs with the same seed differ");
    /* ckpt.bin embeds the config (which records the thread count): compare the parameters */
    Model *m1 = NULL, *m2 = NULL;
    Err e;
    cr_assert_eq(ckpt_load_model(a, &m1, NULL, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(ckpt_load_model(b2, &m2, NULL, NULL, &e), 0, "%s", e.msg);
    cr_expect(m1->nparams == m2->nparams && memcmp(m1->params, m2->params, m1->nparams * sizeof(real)) == 0,
              "1 thread and 2 threads give different parameters");
    model_free(m1), model_free(m2);
}

/* train.threads bounds OpenBLAS's own pool too (it defaults to every core): two 1-thread runs of a sweep ran
 * 2 BLAS threads each on 2 cores. The 2-thread run above compares results across both counts. */
Test(train, threads_bound_the_blas_pool) {
    openblas_set_num_threads(2);
    if (openblas_get_num_threads() < 2) cr_skip_test("OpenBLAS runs one thread here: nothing to bound");
    RunConfig c;
    small_cfg(&c, 2);
    c.train.threads = 1;
    cr_assert_eq(run(&c, "b1", NULL, 0, 0), TRAIN_OK);
    cr_expect_eq(openblas_get_num_threads(), 1, "train.threads = 1 left OpenBLAS at %d threads",
                 openblas_get_num_threads());
}

Test(train, nan_stops_and_keeps_last_good_checkpoint) {
    RunConfig c;
    small_cfg(&c, 12);
    cr_assert_eq(run(&c, "nan", NULL, 0, 7), TRAIN_DIVERGED);
    char p[600];
    snprintf(p, sizeof p, "%s/nan/ckpt.bin", tmpdir);
    Model *m = NULL;
    long step = -1;
    Err e;
    cr_assert_eq(ckpt_load_model(p, &m, &step, NULL, &e), 0, "%s", e.msg);
    cr_expect_eq(step, 4, "last good checkpoint should be step 4, got %ld", step);
    size_t bad = 0;
    for (size_t i = 0; i < m->nparams; i++) bad += !isfinite(m->params[i]);
    cr_expect_eq(bad, 0, "%zu non-finite parameters in the kept checkpoint", bad);
    model_free(m);
    size_t n;
    snprintf(p, sizeof p, "%s/nan/summary.json", tmpdir);
    char *s = slurp(p, &n);
    cr_expect(strstr(s, "\"diverged\""), "summary.json lacks status diverged: %s", s);
    free(s);
}

Test(train, refuses_existing_run_dir) {
    RunConfig c;
    small_cfg(&c, 2);
    cr_assert_eq(run(&c, "x", NULL, 0, 0), TRAIN_OK);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/x", tmpdir);
    TrainOpts o = {.out_dir = dir, .quiet = 1};
    Err e = {{0}};
    small_cfg(&c, 2);
    cr_assert_eq(train_run(&c, &o, &e), TRAIN_ERROR);
    cr_expect(strstr(e.msg, "--resume"), "message should suggest --resume: %s", e.msg);
}

Test(train, checkpoint_rejects_bad_files) {
    char p[600];
    snprintf(p, sizeof p, "%s/bad.bin", tmpdir);
    Model *m = NULL;
    Err e;
    FILE *f = fopen(p, "wb");
    fputs("not a checkpoint at all", f);
    fclose(f);
    cr_expect_neq(ckpt_load_model(p, &m, NULL, NULL, &e), 0);
    cr_expect(strstr(e.msg, "magic"), "%s", e.msg);
    /* a real checkpoint truncated by one byte */
    RunConfig c;
    small_cfg(&c, 2);
    cr_assert_eq(run(&c, "tr", NULL, 0, 0), TRAIN_OK);
    char src[600];
    snprintf(src, sizeof src, "%s/tr/ckpt.bin", tmpdir);
    size_t n;
    char *buf = slurp(src, &n);
    f = fopen(p, "wb");
    fwrite(buf, 1, n - 1, f);
    fclose(f);
    free(buf);
    cr_expect_neq(ckpt_load_model(p, &m, NULL, NULL, &e), 0);
    cr_expect(strstr(e.msg, "truncated") || strstr(e.msg, "ends early"), "%s", e.msg);
}

/* The CLI: errors name the file and line, and nothing is written for a bad config. */
Test(train, cli_reports_bad_config) {
    const char *bin = rwkvlab_bin();
    char cfgp[600], cmd[2048], outp[600];
    snprintf(cfgp, sizeof cfgp, "%s/bad.ini", tmpdir);
    snprintf(outp, sizeof outp, "%s/bad.out", tmpdir);
    FILE *f = fopen(cfgp, "w");
    fputs("[experiment]\nname = x\n[model]\nlayers = two\n[task]\nname = s5\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s train %s --out %s/run > %s 2>&1", bin, cfgp, tmpdir, outp);
    cr_expect_eq(sh(cmd), 1);
    size_t n;
    char *s = slurp(outp, &n);
    cr_expect(strstr(s, "bad.ini:4"), "error should name bad.ini:4: %s", s);
    free(s);
    char rd[600];
    snprintf(rd, sizeof rd, "%s/run", tmpdir);
    struct stat st;
    cr_expect(stat(rd, &st) != 0, "a run directory was created for a bad config");
    snprintf(cmd, sizeof cmd, "%s train %s --set model.head_size=48 --out %s/run2 > %s 2>&1", bin,
             "configs/s5_swaps_rwkv7.ini", tmpdir, outp);
    cr_expect_eq(sh(cmd), 1);
    s = slurp(outp, &n);
    cr_expect(strstr(s, "head_size"), "%s", s);
    free(s);
}

/* A real SIGINT through the CLI: the run checkpoints, exits 130, and --resume finishes it. */
Test(train, cli_sigint_then_resume) {
    const char *bin = rwkvlab_bin();
    char cfgp[600], dir[600], log[600];
    snprintf(cfgp, sizeof cfgp, "%s/long.ini", tmpdir);
    snprintf(dir, sizeof dir, "%s/sig", tmpdir);
    snprintf(log, sizeof log, "%s/sig.log", tmpdir);
    FILE *f = fopen(cfgp, "w");
    fputs("[experiment]\nname = sig\n[model]\nlayers = 1\nd_model = 32\nhead_size = 16\n[task]\nname = s3\n"
          "train_len = 16\ntest_lens = 16\ntest_size = 8\n[train]\nsteps = 1000000\nbatch = 8\nwarmup = 1\n"
          "eval_every = 1000000\nlog_every = 1\nckpt_every = 1000000\n[log]\ntrajectories = 0\n", f);
    fclose(f);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1), dup2(fd, 2);
        execl(bin, bin, "train", cfgp, "--out", dir, (char *)NULL);
        _exit(127);
    }
    /* wait until the training loop runs (its progress lines reach run.log), then interrupt */
    char rl[700];
    snprintf(rl, sizeof rl, "%s/run.log", dir);
    int started = 0;
    for (int i = 0; i < 3000 && !started; i++) { /* up to 60 s on a loaded machine */
        FILE *lf = fopen(rl, "r");
        if (lf) {
            char line[512];
            while (fgets(line, sizeof line, lf))
                if (!strncmp(line, "step 3/", 7)) started = 1;
            fclose(lf);
        }
        if (!started) usleep(20000);
    }
    cr_assert(started, "training did not start within 60 s (see %s)", log);
    kill(pid, SIGINT);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status), "train did not exit cleanly on SIGINT");
    cr_expect_eq(WEXITSTATUS(status), TRAIN_INTERRUPTED, "exit status %d, expected 130", WEXITSTATUS(status));
    char p[700];
    snprintf(p, sizeof p, "%s/ckpt.bin", dir);
    Model *m = NULL;
    long step = 0;
    Err e;
    cr_assert_eq(ckpt_load_model(p, &m, &step, NULL, &e), 0, "%s", e.msg);
    cr_expect(step >= 1, "interrupted run checkpointed at step %ld", step);
    model_free(m);
    /* resume to a few steps past the interruption */
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s train %s/config.ini --resume %s --set train.steps=%ld --quiet > %s 2>&1", bin, dir,
             dir, step + 3, log);
    cr_expect_eq(sh(cmd), 0, "resume after SIGINT failed (see %s)", log);
    cr_assert_eq(ckpt_load_model(p, &m, &step, NULL, &e), 0, "%s", e.msg);
    model_free(m);
    size_t n;
    snprintf(p, sizeof p, "%s/summary.json", dir);
    char *s = slurp(p, &n);
    cr_expect(strstr(s, "\"completed\""), "%s", s);
    free(s);
}

/* evaltask on a finished run reproduces the run's own final evaluation (same fixed test sets). */
Test(train, evaltask_matches_final_eval) {
    RunConfig c;
    small_cfg(&c, 5);
    cr_assert_eq(run(&c, "ev", NULL, 0, 0), TRAIN_OK);
    const char *bin = rwkvlab_bin();
    char cmd[2048], outp[600];
    snprintf(outp, sizeof outp, "%s/ev.txt", tmpdir);
    snprintf(cmd, sizeof cmd, "%s evaltask %s/ev --lengths 12,24 > %s 2>&1", bin, tmpdir, outp);
    cr_assert_eq(sh(cmd), 0);
    FILE *f = fopen(outp, "r");
    char line[512];
    double got[2][2];
    int k = 0;
    while (fgets(line, sizeof line, f) && k < 2) {
        int len;
        double ta, sa;
        if (sscanf(line, " %d %lf %lf", &len, &ta, &sa) == 3) got[k][0] = ta, got[k][1] = sa, k++;
    }
    fclose(f);
    cr_assert_eq(k, 2, "evaltask printed %d rows", k);
    /* the run's final /eval records for lengths 12 and 24 */
    char h5[600];
    snprintf(h5, sizeof h5, "%s/ev/run.h5", tmpdir);
    hsize_t n;
    double *ta = read_ds(h5, "/eval/token_acc", &n), *sa = read_ds(h5, "/eval/seq_acc", &n);
    cr_assert(n >= 2);
    for (int i = 0; i < 2; i++) {
        cr_expect(fabs(got[i][0] - ta[n - 2 + i]) < 5e-5, "length %d token acc %.4f vs run %.4f", i ? 24 : 12,
                  got[i][0], ta[n - 2 + i]);
        cr_expect(fabs(got[i][1] - sa[n - 2 + i]) < 5e-5, "length %d seq acc %.4f vs run %.4f", i ? 24 : 12,
                  got[i][1], sa[n - 2 + i]);
    }
    free(ta), free(sa);
}
