/* test_sweep_resume.c -- re-running a sweep continues every unfinished run and keeps every log (issue 6,
 * item 9), and refuses run directories that hold another config (item 10).
 *
 * One grid point ("base") x seeds 3, 4, 5, prepared as a killed, a diverged and a never-started run:
 *   seed 3: `train --stop-after 2`, then summary.json removed (killed after its step-2 checkpoint),
 *           with an earlier sweep log beside it;
 *   seed 4: `train --inject-nan 2` (diverged: a final result);
 *   seed 5: nothing;
 *   seed 6: only its config.ini and an empty run.h5 (its start failed, e.g. out of memory).
 * Before the fix a re-run retried only "interrupted" runs: seed 3 failed with "already holds a run" and
 * its log was overwritten. */
#include "sweep_testutil.h"

TestSuite(sweep_resume, .init = sw_setup, .fini = sw_teardown, .timeout = 300);

static char cfg[400], out[400], log_[400];

/* `rwkvlab train CFG --set experiment.seeds=SEED --out OUT/base-seedSEED EXTRA`, as a sweep run would be */
static void train_into(long seed, const char *extra, int want_rc) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s train %s --set experiment.seeds=%ld --out %s/base-seed%ld --quiet %s > %s 2>&1",
             rwkvlab_bin(), cfg, seed, out, seed, extra, log_);
    int rc = sh(cmd);
    char *l = sw_read(log_);
    cr_assert_eq(rc, want_rc, "%s\n%s", cmd, l);
    free(l);
}

/* `rwkvlab sweep CFG --out OUT EXTRA`: its exit status; its output in *text (caller frees) */
static int sweep(const char *extra, char **text) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s sweep %s --out %s %s > %s 2>&1", rwkvlab_bin(), cfg, out, extra, log_);
    int rc = sh(cmd);
    *text = sw_read(log_);
    return rc;
}

static char *run_file(long seed, const char *name) {
    char p[600];
    snprintf(p, sizeof p, "%s/base-seed%ld%s", out, seed, name);
    return sw_read(p);
}

static void prepare(void) {
    snprintf(cfg, sizeof cfg, "%s/sw.ini", sw_tmp);
    snprintf(out, sizeof out, "%s/out", sw_tmp);
    snprintf(log_, sizeof log_, "%s/log.txt", sw_tmp);
    sw_config(cfg, "3, 4, 5, 6", "8, 16", NULL);
    cr_assert_eq(mkdir(out, 0755), 0);
    train_into(3, "--stop-after 2", 130);
    char p[600];
    snprintf(p, sizeof p, "%s/base-seed3/summary.json", out);
    cr_assert_eq(unlink(p), 0);
    snprintf(p, sizeof p, "%s/base-seed3.log", out);
    sw_write(p, "EARLIER ATTEMPT: killed\n");
    train_into(4, "--inject-nan 2", 3);
    /* seed 6's config.ini as its own start would have written it */
    train_into(6, "--stop-after 1", 130);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cd %s/base-seed6 && find . -type f ! -name config.ini -delete && : > run.h5", out);
    cr_assert_eq(sh(cmd), 0);
}

Test(sweep_resume, killed_run_continued_diverged_reported_logs_kept) {
    prepare();
    char *t;
    /* first re-run, itself stopped at step 3: seed 3 continues from step 2, seed 5 starts, seed 4 is left */
    int rc = sweep("--stop-after 3", &t);
    cr_expect_eq(rc, 1, "unfinished runs make the exit status 1:\n%s", t);
    cr_expect(strstr(t, "[continue] base-seed3") && strstr(t, "[start] base-seed5") &&
              strstr(t, "[continue] base-seed6"), "%s", t);
    cr_expect(strstr(t, "[diverged] base-seed4") && !strstr(t, "[continue] base-seed4") &&
              !strstr(t, "[start] base-seed4"), "a diverged run must not be retried:\n%s", t);
    free(t);
    char *l3 = run_file(3, ".log");
    cr_assert(l3);
    cr_expect(strstr(l3, "EARLIER ATTEMPT: killed"), "the earlier log was overwritten:\n%s", l3);
    cr_expect(strstr(l3, "resuming at step 2") && strstr(l3, "interrupted at step 3"), "%s", l3);
    free(l3);

    /* second re-run: both continue and finish; the diverged one is still only reported */
    rc = sweep("", &t);
    cr_expect_eq(rc, 0, "every run has a final result now:\n%s", t);
    cr_expect(strstr(t, "[continue] base-seed3") && strstr(t, "[continue] base-seed5"), "%s", t);
    cr_expect(strstr(t, "[diverged] base-seed4") && !strstr(t, "[continue] base-seed4"), "%s", t);
    cr_expect(strstr(t, "1 run(s) diverged"), "%s", t);
    free(t);
    l3 = run_file(3, ".log");
    const char *a = strstr(l3, "EARLIER ATTEMPT"), *b = a ? strstr(a, "interrupted at step 3") : NULL,
               *c = b ? strstr(b, "resuming at step 3") : NULL, *d = c ? strstr(c, "done:") : NULL;
    cr_expect(d, "seed 3's log must hold every attempt, in order:\n%s", l3);
    cr_expect_eq(sw_count(l3, "===== rwkvlab sweep"), 2, "one header per attempt:\n%s", l3);
    free(l3);
    char *l5 = run_file(5, ".log");
    cr_expect(l5 && strstr(l5, "interrupted at step 3") && strstr(l5, "resuming at step 3"), "%s", l5);
    free(l5);
    char p4[600];
    snprintf(p4, sizeof p4, "%s/base-seed4.log", out);
    cr_expect(!sw_exists(p4), "the sweep started the diverged run");
    char *s4 = run_file(4, "/summary.json");
    cr_expect(s4 && strstr(s4, "\"diverged\""), "%s", s4);
    free(s4);

    char p[600];
    snprintf(p, sizeof p, "%s/sweep.json", out);
    cJSON *j = sw_json(p), *pt = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "points"), 0);
    cr_expect_eq(sw_int(pt, "seeds"), 3);
    cr_expect_eq(sw_int(pt, "diverged"), 1);
    cr_expect_eq(sw_int(pt, "unfinished"), 0);
    cr_expect_eq(sw_int(cJSON_GetArrayItem(cJSON_GetObjectItem(pt, "lengths"), 0), "n"), 3);
    cJSON_Delete(j);
    char *s3 = run_file(3, "/summary.json");
    cr_expect(s3 && strstr(s3, "\"completed\"") && strstr(s3, "\"steps_done\":\t4"), "%s", s3);
    free(s3);
    char *s6 = run_file(6, "/summary.json");
    cr_expect(s6 && strstr(s6, "\"completed\"") && strstr(s6, "\"steps_done\":\t4"), "%s", s6);
    free(s6);
}

Test(sweep_resume, a_directory_with_another_config_is_an_error) {
    prepare();
    char *t;
    cr_assert_eq(sweep("", &t), 0, "%s", t);
    free(t);
    char *before = run_file(3, ".log");
    /* a changed learning rate: every existing run is named with the key, nothing runs */
    int rc = sweep("--set train.lr=0.002", &t);
    cr_expect_eq(rc, 1, "%s", t);
    for (long s = 3; s <= 6; s++) {
        char name[64];
        snprintf(name, sizeof name, "base-seed%ld: train.lr (run: 0.001, this sweep: 0.002)", s);
        cr_expect(strstr(t, name), "missing '%s' in:\n%s", name, t);
    }
    cr_expect(strstr(t, "Nothing was run") && !strstr(t, "[start]") && !strstr(t, "[skip]"), "%s", t);
    free(t);
    char *after = run_file(3, ".log");
    cr_expect_str_eq(after, before, "a refused sweep touched a run's log");
    free(after);
    /* --report refuses too: results of another config are not reported under this one */
    cr_expect_eq(sweep("--set train.lr=0.002 --report", &t), 1, "%s", t);
    free(t);
    /* keys that cannot change a result are not differences */
    cr_expect_eq(sweep("--set train.threads=1 --set experiment.notes=other", &t), 0, "%s", t);
    cr_expect_eq(sw_count(t, "[skip]"), 3, "%s", t);
    free(t);
    /* a new seed in the same directory is fine: only that run starts */
    char p[600];
    snprintf(p, sizeof p, "%s/base-seed7", out);
    cr_expect_eq(sweep("--set experiment.seeds=3,4,5,6,7", &t), 0, "%s", t);
    cr_expect(strstr(t, "[start] base-seed7") && sw_count(t, "[start]") == 1 && sw_exists(p), "%s", t);
    free(t);
    free(before);
}

/* The line of `text` that starts with `prefix` (after leading blanks), copied into buf ("" when none). */
static const char *line_of(const char *text, const char *prefix, char *buf, size_t n) {
    buf[0] = 0;
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        const char *b = l + strspn(l, " ");
        if (!strncmp(b, prefix, strlen(prefix))) {
            size_t k = strcspn(b, "\n");
            snprintf(buf, n, "%.*s", (int)(k < n ? k : n - 1), b);
            break;
        }
    }
    return buf;
}

/* Every run a sweep starts or continues gets this sweep's thread count: the config's train.threads when
 * set (it was overridden by cores / --jobs), else cores / --jobs -- for a continued run too (it kept the
 * count of its first start, so a sweep begun with --jobs 1 and continued with --jobs 2 oversubscribed). */
Test(sweep_resume, threads_reach_fresh_and_continued_runs) {
    prepare();
    char *t, l[1024];
    cr_expect_eq(sweep("--set train.threads=3 --dry-run", &t), 0, "%s", t);
    line_of(t, "[continue] base-seed3", l, sizeof l);
    cr_expect(strstr(l, "--resume") && strstr(l, "--set train.threads=3") && sw_count(l, "train.threads=") == 1,
              "a continued run must get the config's train.threads: '%s'\n%s", l, t);
    line_of(t, "[start] base-seed5", l, sizeof l);
    cr_expect(strstr(l, "train.threads=3") && sw_count(l, "train.threads=") == 2 && !strstr(l, "train.threads=1 ") &&
                  !strstr(l, "train.threads=2 "),
              "a fresh run must get the config's train.threads (the user's --set and the sweep's, equal): '%s'", l);
    free(t);
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    char jobs[64];
    snprintf(jobs, sizeof jobs, "--jobs %ld --dry-run", nc);
    cr_expect_eq(sweep(jobs, &t), 0, "%s", t);
    line_of(t, "[continue] base-seed6", l, sizeof l);
    cr_expect(strstr(l, "--set train.threads=1"), "--jobs = cores: a continued run gets 1 thread: '%s'\n%s", l, t);
    free(t);
}

/* SIGTERM to the sweep (a Slurm time limit, `kill`): the running train is told, checkpoints and says
 * interrupted; the sweep exits 130; the next sweep continues the run. */
Test(sweep_resume, sigterm_reaches_the_running_train) {
    snprintf(cfg, sizeof cfg, "%s/long.ini", sw_tmp);
    snprintf(out, sizeof out, "%s/out", sw_tmp);
    snprintf(log_, sizeof log_, "%s/log.txt", sw_tmp);
    sw_write(cfg, "[experiment]\nname = sw\nseeds = 3\n[model]\nlayers = 1\nd_model = 32\nhead_size = 16\n"
                  "[task]\nname = s3\ntrain_len = 8\ntest_lens = 8\ntest_size = 8\n[train]\nsteps = 1000000\n"
                  "batch = 4\nwarmup = 1\nlog_every = 1\n[log]\ntrajectories = 0\n");
    char bin[4096];
    cr_assert(realpath(rwkvlab_bin(), bin));
    char *argv[] = {bin, "sweep", cfg, "--out", out, NULL};
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int fd = open(log_, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) _exit(125);
        execv(bin, argv);
        _exit(127);
    }
    char p[600];
    snprintf(p, sizeof p, "%s/base-seed3/run.log", out);
    int seen = 0;
    for (int i = 0; i < 1200 && !seen; i++) { /* up to 60 s for the first training step */
        char *l = sw_read(p);
        seen = l && strstr(l, "step 1/");
        free(l);
        if (!seen) usleep(50000);
    }
    cr_assert(seen, "the run never started");
    cr_assert_eq(kill(pid, SIGTERM), 0);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    char *t = sw_read(log_);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 130, "sweep exit %d:\n%s", WIFEXITED(st) ? WEXITSTATUS(st) : -1, t);
    cr_expect(strstr(t, "[interrupted] base-seed3") && strstr(t, "Run the same command again"), "%s", t);
    free(t);
    char *s = run_file(3, "/summary.json"), *l = run_file(3, ".log");
    cr_expect(s && strstr(s, "\"interrupted\""), "%s", s);
    cr_expect(l && strstr(l, "interrupted (SIGTERM)"), "%s", l);
    free(s), free(l);
    cr_expect_eq(sweep("--dry-run", &t), 0, "%s", t);
    cr_expect(strstr(t, "[continue] base-seed3"), "%s", t);
    free(t);
}
