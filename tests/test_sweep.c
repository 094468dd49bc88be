/* test_sweep.c -- `rwkvlab sweep` through the CLI: the grid x seeds runs (2 jobs at a time), the
 * aggregate across seeds, skipping finished runs on a second call, the Slurm array script, a grid point
 * that is not a valid config, --dry-run writing nothing, and failed writes of sweep.json / sweep.slurm
 * changing the exit status. Continuing runs: test_sweep_resume.c; lengths: test_sweep_lengths.c;
 * the script's quoting: test_sweep_slurm.c. */
#include "sweep_testutil.h"

TestSuite(sweep, .init = sw_setup, .fini = sw_teardown, .timeout = 300);

Test(sweep, runs_aggregates_skips_and_writes_slurm) {
    const char *bin = rwkvlab_bin();
    char cfg[400], cmd[2048], out[400], log[400], p[600];
    snprintf(cfg, sizeof cfg, "%s/sw.ini", sw_tmp);
    snprintf(out, sizeof out, "%s/out", sw_tmp);
    snprintf(log, sizeof log, "%s/log.txt", sw_tmp);
    sw_config(cfg, "3, 4", "8, 16", "model.eig_range = standard, extended");
    snprintf(cmd, sizeof cmd, "%s sweep %s --jobs 2 --out %s > %s 2>&1", bin, cfg, out, log);
    int rc = sh(cmd);
    char *l = sw_read(log);
    cr_assert_eq(rc, 0, "%s", l);
    free(l);
    snprintf(p, sizeof p, "%s/sweep.json", out);
    cJSON *j = sw_json(p);
    cJSON *pts = cJSON_GetObjectItem(j, "points");
    cr_assert_eq(cJSON_GetArraySize(pts), 2);
    for (cJSON *pt = pts->child; pt; pt = pt->next) {
        cr_expect_eq(sw_int(pt, "seeds"), 2, "%s", cJSON_GetObjectItem(pt, "point")->valuestring);
        cr_expect_eq(sw_int(pt, "diverged"), 0);
        cJSON *l0 = cJSON_GetArrayItem(cJSON_GetObjectItem(pt, "lengths"), 0);
        cr_expect(cJSON_IsNumber(cJSON_GetObjectItem(l0, "seq_acc_median")) &&
                  cJSON_IsNumber(cJSON_GetObjectItem(l0, "seq_acc_best")));
    }
    cJSON_Delete(j);
    /* each run has its own directory with the seed and the swept value in its resolved config */
    snprintf(p, sizeof p, "%s/eig_range=extended-seed4/config.ini", out);
    char *ini = sw_read(p);
    cr_expect(ini && strstr(ini, "eig_range = extended") && strstr(ini, "seeds = 4"), "%s", ini);
    free(ini);
    /* second call, with another --jobs (so another train.threads): nothing to run */
    snprintf(cmd, sizeof cmd, "%s sweep %s --jobs 1 --out %s > %s 2>&1", bin, cfg, out, log);
    rc = sh(cmd);
    l = sw_read(log);
    cr_assert_eq(rc, 0, "%s", l);
    cr_expect(!strstr(l, "[start]") && !strstr(l, "[continue]") && sw_count(l, "[skip]") == 4,
              "second sweep should skip finished runs:\n%s", l);
    free(l);
    /* Slurm script */
    snprintf(cmd, sizeof cmd, "%s sweep %s --slurm --out %s > %s 2>&1", bin, cfg, out, log);
    cr_assert_eq(sh(cmd), 0);
    snprintf(p, sizeof p, "%s/sweep.slurm", out);
    char *s = sw_read(p);
    cr_expect(s && strstr(s, "#SBATCH --array=0-3") && strstr(s, "\n  3) dir="), "%s", s);
    free(s);
}

Test(sweep, invalid_grid_point_is_an_error) {
    const char *bin = rwkvlab_bin();
    char cfg[400], cmd[2048], log[400];
    snprintf(cfg, sizeof cfg, "%s/bad.ini", sw_tmp);
    snprintf(log, sizeof log, "%s/log.txt", sw_tmp);
    sw_config(cfg, "3, 4", "8, 16", "model.head_size = 16, 12");
    snprintf(cmd, sizeof cmd, "%s sweep %s --out %s/o > %s 2>&1", bin, cfg, sw_tmp, log);
    cr_expect_eq(sh(cmd), 1);
    char *l = sw_read(log);
    cr_expect(strstr(l, "head_size"), "%s", l);
    free(l);
    snprintf(cmd, sizeof cmd, "%s/o", sw_tmp);
    cr_expect(!sw_exists(cmd), "a sweep directory was created for an invalid grid");
}

Test(sweep, dry_run_writes_nothing) {
    char cfg[400], cmd[2048], log[400], out[400];
    snprintf(cfg, sizeof cfg, "%s/sw.ini", sw_tmp);
    snprintf(log, sizeof log, "%s/log.txt", sw_tmp);
    snprintf(out, sizeof out, "%s/o", sw_tmp);
    sw_config(cfg, "3, 4", "8, 16", "model.eig_range = standard, extended");
    snprintf(cmd, sizeof cmd, "%s sweep %s --out %s --dry-run > %s 2>&1", rwkvlab_bin(), cfg, out, log);
    cr_assert_eq(sh(cmd), 0);
    char *l = sw_read(log);
    cr_expect_eq(sw_count(l, "[start] "), 4, "%s", l);
    cr_expect(strstr(l, "--set model.eig_range=extended --set experiment.seeds=4"), "%s", l);
    free(l);
    cr_expect(!sw_exists(out), "--dry-run created %s", out);
}

/* no *.tmp.* file left in dir */
static int leftover_tmp(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -q '\\.tmp\\.'", dir);
    return sh(cmd) == 0;
}

/* item 7 of issue 6: a failed sweep.json write is an error; so is a failed sweep.slurm write, and it says
 * nothing about "wrote". (A directory where the file goes makes the rename fail even for root.) */
Test(sweep, failed_writes_change_the_exit_status) {
    const char *bin = rwkvlab_bin();
    char cfg[400], cmd[2048], log[400], out[400], p[600];
    snprintf(cfg, sizeof cfg, "%s/sw.ini", sw_tmp);
    snprintf(log, sizeof log, "%s/log.txt", sw_tmp);
    snprintf(out, sizeof out, "%s/o", sw_tmp);
    sw_config(cfg, "3", "8", NULL);
    snprintf(p, sizeof p, "%s/sweep.json", out);
    cr_assert_eq(mkdir(out, 0755), 0);
    cr_assert_eq(mkdir(p, 0755), 0);
    snprintf(cmd, sizeof cmd, "%s sweep %s --out %s > %s 2>&1", bin, cfg, out, log);
    cr_expect_eq(sh(cmd), 1, "a sweep whose sweep.json cannot be written must fail");
    char *l = sw_read(log);
    cr_expect(strstr(l, "sweep.json") && strstr(l, "--report") && !strstr(l, "wrote "), "%s", l);
    free(l);
    /* the run itself finished: --report is what is left to do, and it fails the same way */
    snprintf(cmd, sizeof cmd, "%s sweep %s --out %s --report > %s 2>&1", bin, cfg, out, log);
    cr_expect_eq(sh(cmd), 1);
    cr_expect(!leftover_tmp(out), "a temporary file was left in %s", out);
    cr_assert_eq(rmdir(p), 0);
    cr_expect_eq(sh(cmd), 0, "with the obstacle gone --report writes sweep.json");
    cr_expect(sw_exists(p));

    snprintf(p, sizeof p, "%s/sweep.slurm", out);
    cr_assert_eq(mkdir(p, 0755), 0);
    snprintf(cmd, sizeof cmd, "%s sweep %s --out %s --slurm > %s 2>&1", bin, cfg, out, log);
    cr_expect_eq(sh(cmd), 1, "a sweep --slurm whose script cannot be written must fail");
    l = sw_read(log);
    cr_expect(strstr(l, "sweep.slurm") && !strstr(l, "wrote "), "%s", l);
    free(l);
    cr_expect(!leftover_tmp(out), "a temporary file was left in %s", out);
}
