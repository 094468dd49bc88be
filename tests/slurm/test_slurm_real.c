/* test_slurm_real.c -- `rwkvlab sweep --slurm` against a real single-node Slurm (issue 8, item 9).
 *
 * Built and run by `make slurm-test` (not part of `make test`: it starts daemons and takes ~30 s;
 * .ci/run calls it after the suite). start_slurm.sh starts munged, slurmctld and slurmd in
 * RWKVLAB_SLURM_DIR (default /tmp/rwkvlab-slurm); where that cannot work (not root, slurm-wlm or munge
 * missing, daemons that do not come up) the test says why and is skipped, unless
 * RWKVLAB_SLURM_REQUIRED=1, which makes that a failure. The daemons are always stopped at the end.
 *
 * The scenario, a sweep of 3 seeds of a tiny config (2000 steps, a few seconds each, 1 CPU per task):
 *   1. the script is generated with --time, --mem, --partition and --cpus-per-task, and Slurm's record
 *      of the job must show them (TimeLimit, MinMemoryNode, Partition, CPUs/Task);
 *   2. run 2's directory is planted with a broken config.ini: its task must fail (Slurm: FAILED, exit
 *      1) with train's error and the task's FAILED line in its Slurm log;
 *   3. task 0 is cancelled with scancel while it trains (after its log shows progress): it must
 *      checkpoint (summary "interrupted"), and Slurm records it CANCELLED;
 *   4. run 2's directory is deleted (the documented fix) and the same script submitted again: task 0
 *      continues from its checkpoint (its first progress line is past step 100, not a fresh start),
 *      task 1 does nothing (already finished), task 2 starts fresh;
 *   5. every run is completed with all 2000 steps, each finished exactly once ("done:" once per run
 *      over all Slurm logs, starts and continues counted), and `sweep --report` exits 0 with every
 *      seed in the table and sweep.json, whose median and best equal those recomputed here from the
 *      three summaries. */
#include <limits.h>
#include <math.h>
#include <time.h>

#include "../sweep_testutil.h"

#define STEPS 2000
#define WAIT_S 60 /* the longest any wait may take: each wave needs ~10 s on 2 loaded cores */

static char g_dir[512];  /* the cluster's directory */
static int g_started = 0;

static void slurm_fini(void) {
    if (g_started) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "tests/slurm/stop_slurm.sh '%s' >&2", g_dir);
        if (sh(cmd) != 0) fprintf(stderr, "slurm_real: the daemons did not all stop (see %s)\n", g_dir);
        g_started = 0;
    }
    sw_teardown();
}

TestSuite(slurm_real, .init = sw_setup, .fini = slurm_fini, .timeout = 240);

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* a command's stdout (caller frees; "" when it printed nothing), its exit status in *rc */
static char *cmd_out(const char *cmd, int *rc) {
    FILE *p = popen(cmd, "r");
    cr_assert(p, "cannot run %s", cmd);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0) fwrite(chunk, 1, n, m);
    fclose(m);
    int st = pclose(p);
    if (rc) *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return buf;
}

/* sbatch SCRIPT: the job id */
static long submit(const char *script) {
    char cmd[700];
    int rc;
    snprintf(cmd, sizeof cmd, "sbatch --parsable '%s' 2>&1", script);
    char *o = cmd_out(cmd, &rc);
    long id = atol(o);
    cr_assert(rc == 0 && id > 0, "sbatch %s failed (exit %d): %s", script, rc, o);
    free(o);
    return id;
}

/* the queue, for messages (caller frees) */
static char *queue(void) { return cmd_out("squeue -o '%i %T %R' 2>&1", NULL); }

/* waits until no task of job id is in the queue; fails the test after WAIT_S */
static void wait_job(long id, const char *what) {
    char cmd[200];
    snprintf(cmd, sizeof cmd, "squeue -h -j %ld -o %%i 2>/dev/null", id);
    const double t0 = now_s();
    for (;;) {
        int rc;
        char *o = cmd_out(cmd, &rc);
        int empty = rc == 0 && o[0] == 0;
        free(o);
        if (empty) return;
        if (now_s() - t0 > WAIT_S) {
            char *q = queue();
            cr_assert_fail("%s: job %ld still in the queue after %d s:\n%s", what, id, WAIT_S, q);
        }
        usleep(200000);
    }
}

/* `scontrol show job ID_TASK` on one line (caller frees) */
static char *job_record(long id, int task) {
    char cmd[200];
    snprintf(cmd, sizeof cmd, "scontrol -o show job %ld_%d 2>&1", id, task);
    return cmd_out(cmd, NULL);
}

/* the Slurm log of task `task` of job id (caller frees; NULL when absent) */
static char *task_log(const char *out, long id, int task) {
    char p[700];
    snprintf(p, sizeof p, "%s/slurm-%ld_%d.out", out, id, task);
    return sw_read(p);
}

/* the step of the last progress line "step N/STEPS" in a log; -1 when there is none */
static int last_step(const char *log, int first) {
    int s = -1;
    char pat[32];
    snprintf(pat, sizeof pat, "/%d  loss", STEPS);
    for (const char *l = log; l && *l;) {
        int n;
        if (sscanf(l, "step %d/", &n) == 1 && strstr(l, pat) && strstr(l, pat) < l + strcspn(l, "\n")) {
            s = n;
            if (first) return s;
        }
        l += strcspn(l, "\n");
        if (*l) l++;
    }
    return s;
}

/* a member of a summary.json, as a number (NAN when absent) or a string */
static double sum_num(const cJSON *j, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(j, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}
static const char *sum_str(const cJSON *j, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(j, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

Test(slurm_real, submit_cancel_resubmit_report) {
    const char *d = getenv("RWKVLAB_SLURM_DIR");
    snprintf(g_dir, sizeof g_dir, "%s", d && *d ? d : "/tmp/rwkvlab-slurm");
    char cmd[2048], startlog[400];
    snprintf(startlog, sizeof startlog, "%s/start.log", sw_tmp);
    snprintf(cmd, sizeof cmd, "tests/slurm/start_slurm.sh '%s' > '%s' 2>&1", g_dir, startlog);
    const double t_start = now_s();
    int rc = sh(cmd);
    g_started = rc == 0;
    if (rc != 0) {
        char *why = sw_read(startlog);
        for (size_t n = why ? strlen(why) : 0; n > 0 && why[n - 1] == '\n';) why[--n] = 0;
        const char *req = getenv("RWKVLAB_SLURM_REQUIRED");
        if (req && !strcmp(req, "1"))
            cr_assert_fail("a real Slurm could not be started (exit %d) and RWKVLAB_SLURM_REQUIRED=1:\n%s", rc, why);
        fprintf(stderr, "\nslurm_real: SKIPPED: no real Slurm here (start_slurm.sh exit %d: %s). Install slurm-wlm and "
                        "munge and run as root to include it (.ci/run does).\n", rc, why ? why : "");
        cr_skip_test("no real Slurm here (start_slurm.sh exit %d)", rc);
    }
    fprintf(stderr, "slurm_real: cluster up in %.1f s\n", now_s() - t_start);
    char conf[600];
    snprintf(conf, sizeof conf, "%s/slurm.conf", g_dir);
    setenv("SLURM_CONF", conf, 1);
    unsetenv("RWKVLAB"); /* the script's own default: the binary that wrote it */

    /* the sweep: 3 seeds, each a few seconds */
    char cfg[400], out[400], log[400], script[500], bin[PATH_MAX];
    snprintf(cfg, sizeof cfg, "%s/sl.ini", sw_tmp);
    snprintf(out, sizeof out, "%s/out", sw_tmp);
    snprintf(log, sizeof log, "%s/log.txt", sw_tmp);
    snprintf(script, sizeof script, "%s/sweep.slurm", out);
    cr_assert(realpath(rwkvlab_bin(), bin));
    char text[1024];
    snprintf(text, sizeof text,
             "[experiment]\nname = slurmtest\nseeds = 1, 2, 3\n[model]\nlayers = 1\nd_model = 32\nhead_size = 16\n"
             "[task]\nname = s3\ntrain_len = 16\ntest_lens = 8, 12\ntest_size = 16\n[train]\nsteps = %d\nbatch = 8\n"
             "warmup = 1\neval_every = 1000\nckpt_every = 100\n[log]\ntrajectories = 0\n", STEPS);
    sw_write(cfg, text);
    char *av[] = {bin, "sweep", cfg, "--out", out, "--slurm", "--time", "00:10:00", "--mem", "256M", "--partition",
                  "rwkvlab", "--cpus-per-task", "1", NULL};
    rc = sw_run(av, log, NULL, NULL);
    char *l = sw_read(log);
    cr_assert_eq(rc, 0, "sweep --slurm: %s", l);
    free(l);
    const char *runs[3] = {"base-seed1", "base-seed2", "base-seed3"};
    char dirs[3][600];
    for (int i = 0; i < 3; i++) snprintf(dirs[i], sizeof dirs[i], "%s/%s", out, runs[i]);

    /* run 2 cannot start: a broken config.ini in its directory */
    char p[800];
    cr_assert_eq(mkdir(dirs[2], 0755), 0);
    snprintf(p, sizeof p, "%s/config.ini", dirs[2]);
    sw_write(p, "[experiment]\nname = slurmtest\n[model]\nlayers = banana\n");

    /* wave 1 */
    const double t1 = now_s();
    long a = submit(script);
    char *rec = job_record(a, 0);
    cr_expect(strstr(rec, "TimeLimit=00:10:00") && strstr(rec, "MinMemoryNode=256M") &&
                  strstr(rec, "Partition=rwkvlab") && strstr(rec, "CPUs/Task=1"),
              "Slurm's record of the job lacks the options:\n%s", rec);
    free(rec);
    /* cancel task 0 once its log shows progress */
    int seen = -1;
    for (const double t0 = now_s(); seen < 100;) {
        char *t = task_log(out, a, 0);
        seen = last_step(t, 0);
        free(t);
        if (seen >= 100) break;
        if (now_s() - t0 > WAIT_S) {
            char *q = queue();
            t = task_log(out, a, 0);
            cr_assert_fail("task 0 showed no progress past step 100 in %d s; queue:\n%s\nits log:\n%s", WAIT_S, q, t);
        }
        usleep(100000);
    }
    snprintf(cmd, sizeof cmd, "scancel %ld_0", a);
    cr_assert_eq(sh(cmd), 0, "%s failed", cmd);
    wait_job(a, "the first submission");
    fprintf(stderr, "slurm_real: wave 1 (task 0 cancelled at step >= %d) took %.1f s\n", seen, now_s() - t1);

    char *l0 = task_log(out, a, 0), *l1 = task_log(out, a, 1), *l2 = task_log(out, a, 2);
    cr_assert(l0 && l1 && l2, "a task of job %ld wrote no Slurm log in %s", a, out);
    cJSON *s0 = sw_json((snprintf(p, sizeof p, "%s/summary.json", dirs[0]), p));
    cr_assert_str_eq(sum_str(s0, "status"), "interrupted",
                     "task 0: the run was not interrupted by scancel (it may have finished first: make the runs "
                     "longer):\n%s", l0);
    cr_expect(sum_num(s0, "steps_done") < STEPS, "task 0 finished before the cancel");
    cJSON_Delete(s0);
    cr_expect(strstr(l0, "starting ") && strstr(l0, "interrupted by SIGTERM (exit 130)"),
              "task 0's log does not say it was interrupted:\n%s", l0);
    rec = job_record(a, 0);
    cr_expect(strstr(rec, "JobState=CANCELLED"), "%s", rec);
    free(rec);
    /* progress and the end reach the log of a run that went through */
    cr_expect(last_step(l1, 0) == STEPS && strstr(l1, "eval step 1000") && strstr(l1, "accuracy vs length") &&
                  strstr(l1, "done: "),
              "task 1's log lacks the run's progress or its end:\n%s", l1);
    /* a failing run's error reaches the log, then the task's verdict; Slurm sees the failure */
    const char *e = strstr(l2, "banana"), *f = e ? strstr(e, "FAILED (exit 1)") : NULL;
    cr_expect(e && f && strstr(l2, "config.ini"), "task 2's log lacks train's error or the FAILED line:\n%s", l2);
    rec = job_record(a, 2);
    cr_expect(strstr(rec, "JobState=FAILED") && strstr(rec, "ExitCode=1:0"), "%s", rec);
    free(rec);
    free(l0), free(l1), free(l2);

    /* the documented fix for run 2, then the same script again */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dirs[2]);
    cr_assert_eq(sh(cmd), 0);
    const double t2 = now_s();
    long b = submit(script);
    wait_job(b, "the resubmission");
    fprintf(stderr, "slurm_real: wave 2 took %.1f s\n", now_s() - t2);
    l0 = task_log(out, b, 0), l1 = task_log(out, b, 1), l2 = task_log(out, b, 2);
    cr_assert(l0 && l1 && l2, "a task of job %ld wrote no Slurm log in %s", b, out);
    int first = last_step(l0, 1);
    cr_expect(strstr(l0, "continuing ") && strstr(l0, "done: ") && first > 100 && last_step(l0, 0) == STEPS,
              "task 0 did not continue its run from the checkpoint (first progress step %d):\n%s", first, l0);
    cr_expect(strstr(l1, "already has a final result; nothing to do") && !strstr(l1, "starting ") &&
                  !strstr(l1, "continuing ") && last_step(l1, 0) < 0,
              "task 1 ran its finished run again:\n%s", l1);
    cr_expect(strstr(l2, "starting ") && strstr(l2, "done: ") && last_step(l2, 0) == STEPS, "task 2:\n%s", l2);
    free(l0), free(l1), free(l2);

    /* every run finished exactly once, across every Slurm log of the sweep */
    snprintf(cmd, sizeof cmd, "cat '%s'/slurm-*.out", out);
    char *all = cmd_out(cmd, NULL);
    const int want_start[3] = {1, 1, 1}, want_cont[3] = {1, 0, 1};
    for (int i = 0; i < 3; i++) {
        char needle[700];
        snprintf(needle, sizeof needle, "done: %s\n", dirs[i]);
        cr_expect_eq(sw_count(all, needle), 1, "%s finished %d times", runs[i], sw_count(all, needle));
        snprintf(needle, sizeof needle, "starting %s\n", dirs[i]);
        cr_expect_eq(sw_count(all, needle), want_start[i], "%s started %d times", runs[i], sw_count(all, needle));
        snprintf(needle, sizeof needle, "continuing %s (", dirs[i]);
        cr_expect_eq(sw_count(all, needle), want_cont[i], "%s continued %d times", runs[i], sw_count(all, needle));
    }
    free(all);

    /* the aggregated table and sweep.json */
    char *rv[] = {bin, "sweep", cfg, "--out", out, "--report", NULL};
    rc = sw_run(rv, log, NULL, NULL);
    l = sw_read(log);
    cr_expect_eq(rc, 0, "sweep --report: %s", l);
    fprintf(stderr, "slurm_real: sweep --report:\n%s", l);
    free(l);
    snprintf(p, sizeof p, "%s/sweep.json", out);
    cJSON *j = sw_json(p);
    const cJSON *pts = cJSON_GetObjectItem(j, "points");
    cr_assert(cJSON_IsArray(pts) && cJSON_GetArraySize(pts) == 1);
    const cJSON *pt = cJSON_GetArrayItem(pts, 0);
    cr_expect_eq(sw_int(pt, "seeds"), 3);
    cr_expect_eq(sw_int(pt, "seeds_planned"), 3);
    cr_expect_eq(sw_int(pt, "unfinished"), 0);
    cr_expect_eq(sw_int(pt, "diverged"), 0);
    const cJSON *rj = cJSON_GetObjectItem(pt, "runs");
    cr_assert(cJSON_IsArray(rj) && cJSON_GetArraySize(rj) == 3);
    double acc[2][3];
    for (int i = 0; i < 3; i++) {
        cr_expect_str_eq(sum_str(cJSON_GetArrayItem(rj, i), "status"), "completed", "run %d in sweep.json", i);
        cJSON *s = sw_json((snprintf(p, sizeof p, "%s/summary.json", dirs[i]), p));
        cr_expect_str_eq(sum_str(s, "status"), "completed", "%s", runs[i]);
        cr_expect_eq(sum_num(s, "steps_done"), STEPS, "%s: %g steps", runs[i], sum_num(s, "steps_done"));
        const cJSON *ev = cJSON_GetObjectItem(s, "eval");
        for (int li = 0; li < 2; li++) {
            acc[li][i] = NAN;
            for (const cJSON *x = cJSON_IsArray(ev) ? ev->child : NULL; x; x = x->next)
                if (sum_num(x, "length") == (li ? 12 : 8)) acc[li][i] = sum_num(x, "seq_acc");
            cr_expect(!isnan(acc[li][i]), "%s has no seq_acc at length %d", runs[i], li ? 12 : 8);
        }
        cJSON_Delete(s);
    }
    const cJSON *lens = cJSON_GetObjectItem(pt, "lengths");
    cr_assert(cJSON_IsArray(lens) && cJSON_GetArraySize(lens) == 2);
    for (int li = 0; li < 2; li++) {
        const cJSON *le = cJSON_GetArrayItem(lens, li);
        cr_expect_eq(sw_int(le, "length"), li ? 12 : 8);
        cr_expect_eq(sw_int(le, "n"), 3);
        qsort(acc[li], 3, sizeof(double), cmp_d);
        cr_expect_float_eq(sum_num(le, "seq_acc_median"), acc[li][1], 1e-12, "median at length %d", li ? 12 : 8);
        cr_expect_float_eq(sum_num(le, "seq_acc_best"), acc[li][2], 1e-12, "best at length %d", li ? 12 : 8);
    }
    cJSON_Delete(j);
    fprintf(stderr, "slurm_real: passed in %.1f s (cluster start included)\n", now_s() - t_start);
}
