/* test_suites.c -- the experiment suites (the scripts in experiments/) run end to end at a toy scale (a few steps of
 * tiny models, through each suite's `--set` pass-through): every sweep they start must be accepted and
 * finish, and the suite must write its table; a sweep that fails must be reported and fail the suite.
 * (A suite whose cells all failed config validation once went unnoticed: depth_length at n != 4.) Every
 * suite of EXPERIMENTS.md: parity, s5_swaps, mechanism (on those two's runs), regular, mqar, depth_length. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* Runs `VAR=tmpdir/NAME bash experiments/SCRIPT ARGS` and checks it succeeded without a failed sweep and
 * wrote each of the files named (relative to tmpdir/NAME, NULL-terminated). */
static void suite_ok(const char *var, const char *name, const char *script, const char *args, const char *const *files) {
    char env[600], log[400];
    snprintf(env, sizeof env, "%s='%s/%s'", var, tmpdir, name);
    snprintf(log, sizeof log, "%s/%s.log", tmpdir, name);
    int rc = run_suite(env, script, args, log);
    char *out = read_file_str(log);
    cr_assert(out, "%s: no output", script);
    cr_expect_eq(rc, 0, "%s exit %d:\n%s", script, rc, out);
    cr_expect(!strstr(out, "FAILED") && !strstr(out, "rwkvlab sweep: "), "%s: a sweep failed:\n%s", script, out);
    free(out);
    for (int i = 0; files[i]; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s/%s", tmpdir, name, files[i]);
        cr_expect(access(p, F_OK) == 0, "%s did not write %s", script, files[i]);
    }
}

#define TOY1 TOY " --set experiment.seeds=1"

Test(suites, parity_s5_swaps_and_mechanism, .init = mk_tmpdir, .fini = rm_tmpdir, .timeout = 300) {
    /* trajectories kept (log.trajectories = 1 after TOY's 0): mechanism.sh reads them */
    static const char *const parity[] = {"table.md", "figures/parity.png", NULL};
    suite_ok("PARITY_OUT", "parity", "parity.sh", TOY1 " --set log.trajectories=1", parity);
    static const char *const s5[] = {"table.md", "figures/s5_swaps.png", NULL};
    suite_ok("S5_OUT", "s5", "s5_swaps.sh", "--layers 1" TOY1 " --set log.trajectories=1", s5);
    char env[900], log[400];
    snprintf(env, sizeof env, "PARITY_OUT='%s/parity' S5_OUT='%s/s5' MECH_OUT='%s/mech'", tmpdir, tmpdir, tmpdir);
    snprintf(log, sizeof log, "%s/mech.log", tmpdir);
    int rc = run_suite(env, "mechanism.sh", "", log);
    char *out = read_file_str(log);
    cr_assert(out);
    cr_expect_eq(rc, 0, "mechanism.sh exit %d:\n%s", rc, out);
    free(out);
    static const char *const mech[] = {"parity.md", "s5_swaps.md", "figures/mechanism_parity.png",
                                       "figures/mechanism_s5_swaps.png"};
    for (size_t i = 0; i < sizeof mech / sizeof *mech; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/mech/%s", tmpdir, mech[i]);
        cr_expect(access(p, F_OK) == 0, "mechanism.sh did not write %s", mech[i]);
    }
}

Test(suites, regular, .init = mk_tmpdir, .fini = rm_tmpdir, .timeout = 300) {
    static const char *const regular[] = {"deletang.md", "grazzi_modarith.md", "deletang/figures/deletang.png",
                                          "grazzi_modarith/figures/grazzi_modarith.png", NULL};
    suite_ok("REGULAR_OUT", "regular", "regular.sh", "--seeds 1" TOY, regular);
}

/* its own test (and time limit): with the two together the sanitizer build ran past 300 s */
Test(suites, mqar, .init = mk_tmpdir, .fini = rm_tmpdir, .timeout = 300) {
    /* MQAR keeps its head size 64 and sets d_model itself */
    static const char *const mqar[] = {"table.md", "figures/mqar.png", NULL};
    suite_ok("MQAR_OUT", "mqar", "mqar.sh",
             "--d 64 --set train.steps=4 --set train.warmup=0 --set train.eval_every=2 --set train.ckpt_every=2"
             " --set train.log_every=2 --set task.test_size=16 --set log.trajectories=0",
             mqar);
}
