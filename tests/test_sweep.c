/* test_sweep.c -- `rwkvlab sweep` through the CLI: the grid x seeds runs (2 jobs at a time), the
 * aggregate across seeds, skipping finished runs on a second call, the Slurm array script, and a grid
 * point that is not a valid config. */
#include <cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static char tmp[256];
static void setup(void) {
    snprintf(tmp, sizeof tmp, "/tmp/rwkvlab_sweep_XXXXXX");
    cr_assert(mkdtemp(tmp));
}
static void teardown(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    (void)!system(cmd);
}
TestSuite(sweep, .init = setup, .fini = teardown, .timeout = 300);

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "missing %s", path);
    static char buf[1 << 17];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static void write_cfg(const char *path, const char *sweep) {
    FILE *f = fopen(path, "w");
    fprintf(f, "[experiment]\nname = sw\nseeds = 3, 4\n[model]\nlayers = 1\nd_model = 32\nhead_size = 16\n"
               "[task]\nname = s3\ntrain_len = 8\ntest_lens = 8, 16\ntest_size = 8\n[train]\nsteps = 4\nbatch = 4\n"
               "warmup = 1\neval_every = 4\n[log]\ntrajectories = 0\n[sweep]\n%s\n", sweep);
    fclose(f);
}

Test(sweep, runs_aggregates_skips_and_writes_slurm) {
    const char *bin = rwkvlab_bin();
    char cfg[400], cmd[2048], out[400], log[400];
    snprintf(cfg, sizeof cfg, "%s/sw.ini", tmp);
    snprintf(out, sizeof out, "%s/out", tmp);
    snprintf(log, sizeof log, "%s/log.txt", tmp);
    write_cfg(cfg, "model.eig_range = standard, extended");
    snprintf(cmd, sizeof cmd, "%s sweep %s --jobs 2 --out %s > %s 2>&1", bin, cfg, out, log);
    cr_assert_eq(sh(cmd), 0, "%s", slurp(log));
    char p[600];
    snprintf(p, sizeof p, "%s/sweep.json", out);
    cJSON *j = cJSON_Parse(slurp(p));
    cr_assert(j);
    cJSON *pts = cJSON_GetObjectItem(j, "points");
    cr_assert_eq(cJSON_GetArraySize(pts), 2);
    for (cJSON *pt = pts->child; pt; pt = pt->next) {
        cr_expect_eq(cJSON_GetObjectItem(pt, "seeds")->valueint, 2, "%s", cJSON_GetObjectItem(pt, "point")->valuestring);
        cJSON *l0 = cJSON_GetArrayItem(cJSON_GetObjectItem(pt, "lengths"), 0);
        cr_expect(cJSON_GetObjectItem(l0, "seq_acc_median") && cJSON_GetObjectItem(l0, "seq_acc_best"));
    }
    cJSON_Delete(j);
    /* each run has its own directory with the seed and the swept value in its resolved config */
    snprintf(p, sizeof p, "%s/eig_range=extended-seed4/config.ini", out);
    const char *ini = slurp(p);
    cr_expect(strstr(ini, "eig_range = extended") && strstr(ini, "seeds = 4"), "%s", ini);
    /* second call: nothing to run */
    cr_assert_eq(sh(cmd), 0);
    const char *l = slurp(log);
    cr_expect(!strstr(l, "[start]") && strstr(l, "[skip]"), "second sweep should skip finished runs:\n%s", l);
    /* Slurm script */
    snprintf(cmd, sizeof cmd, "%s sweep %s --slurm --out %s > %s 2>&1", bin, cfg, out, log);
    cr_assert_eq(sh(cmd), 0);
    snprintf(p, sizeof p, "%s/sweep.slurm", out);
    const char *s = slurp(p);
    cr_expect(strstr(s, "#SBATCH --array=0-3") && strstr(s, "  3) exec"), "%s", s);
}

Test(sweep, invalid_grid_point_is_an_error) {
    const char *bin = rwkvlab_bin();
    char cfg[400], cmd[2048], log[400];
    snprintf(cfg, sizeof cfg, "%s/bad.ini", tmp);
    snprintf(log, sizeof log, "%s/log.txt", tmp);
    write_cfg(cfg, "model.head_size = 16, 12");
    snprintf(cmd, sizeof cmd, "%s sweep %s --out %s/o > %s 2>&1", bin, cfg, tmp, log);
    cr_expect_eq(sh(cmd), 1);
    cr_expect(strstr(slurp(log), "head_size"), "%s", slurp(log));
    snprintf(cmd, sizeof cmd, "%s/o", tmp);
    cr_expect(access(cmd, F_OK) != 0, "a sweep directory was created for an invalid grid");
}
