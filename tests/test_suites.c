/* test_suites.c -- the experiment suites (the scripts in experiments/) run end to end at a toy scale (a few steps of
 * tiny models, through each suite's `--set` pass-through): every sweep they start must be accepted and
 * finish, and the suite must write its table; a sweep that fails must be reported and fail the suite.
 * (A suite whose cells all failed config validation once went unnoticed: depth_length at n != 4.) */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static char tmpdir[256];
static void mk_tmpdir(void) { cr_assert_eq(test_mkdtemp(tmpdir, sizeof tmpdir, "suites"), 0); }
static void rm_tmpdir(void) { test_rmtree(tmpdir); }

static char *read_file_str(const char *path) {
    size_t n;
    return test_slurp(path, &n);
}

/* tiny models, a few steps, small finite datasets: seconds per sweep */
#define TOY " --set train.steps=4 --set train.warmup=0 --set train.eval_every=2 --set train.ckpt_every=2" \
            " --set train.log_every=2 --set model.d_model=32 --set model.head_size=16 --set task.dataset_max=300" \
            " --set task.test_size=16 --set log.trajectories=0"

static int run_suite(const char *env, const char *script, const char *args, const char *log) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s RWKVLAB_BIN='%s' bash experiments/%s %s > '%s' 2>&1", env, rwkvlab_bin(), script,
             args, log);
    return sh(cmd);
}

Test(suites, depth_length_runs_every_cell_at_every_length, .init = mk_tmpdir, .fini = rm_tmpdir, .timeout = 300) {
    char env[400], log[400], table[400];
    snprintf(env, sizeof env, "DEPTH_OUT='%s/depth'", tmpdir);
    snprintf(log, sizeof log, "%s/depth.log", tmpdir);
    int rc = run_suite(env, "depth_length.sh", "--lengths 3,6 --groups z60 --max-layers 1" TOY, log);
    char *out = read_file_str(log);
    cr_assert(out, "no output");
    cr_expect_eq(rc, 0, "depth_length.sh exit %d:\n%s", rc, out);
    cr_expect(!strstr(out, "FAILED"), "a cell failed:\n%s", out);
    free(out);
    snprintf(table, sizeof table, "%s/depth/table.md", tmpdir);
    char *t = read_file_str(table);
    cr_assert(t, "no table.md");
    static const char *const models[] = {"rwkv7 standard", "rwkv7 extended", "rwkv6 standard", "deltanet standard",
                                         "deltanet extended", "gated_deltanet standard", "gated_deltanet extended"};
    for (size_t i = 0; i < sizeof models / sizeof *models; i++) {
        char row[80];
        snprintf(row, sizeof row, "| %s | >1 (", models[i]); /* 4 steps learn nothing: measured, not "?" */
        const char *r = strstr(t, row);
        cr_expect(r, "table.md has no measured row for %s:\n%s", models[i], t);
        if (r) cr_expect(!strchr(r, '?') || strchr(r, '?') > strchr(r, '\n'), "%s has an unmeasured cell:\n%s", models[i], t);
    }
    free(t);
}

/* a sweep that fails (d_model 33 is not a multiple of the head size) is reported and fails the suite */
Test(suites, depth_length_reports_a_failed_sweep, .init = mk_tmpdir, .fini = rm_tmpdir, .timeout = 120) {
    char env[400], log[400];
    snprintf(env, sizeof env, "DEPTH_OUT='%s/depth'", tmpdir);
    snprintf(log, sizeof log, "%s/depth.log", tmpdir);
    int rc = run_suite(env, "depth_length.sh", "--lengths 3 --groups z60 --max-layers 1" TOY " --set model.d_model=33", log);
    char *out = read_file_str(log);
    cr_assert(out, "no output");
    cr_expect_neq(rc, 0, "depth_length.sh exit 0 although every sweep failed:\n%s", out);
    cr_expect(strstr(out, "FAILED: rwkv7 standard z60 n=3, 1 layers"), "the failure is not reported:\n%s", out);
    free(out);
}
