/* test_sweep_slurm.c -- the Slurm script of `rwkvlab sweep --slurm` (issue 6, item 11).
 *
 * The sweep is given hostile values (quotes, $(...), backticks, spaces, backslashes, ';' in a --set value,
 * in swept values and in the config's path). The script must pass `sh -n`, and executing each array
 * index with a fake rwkvlab (RWKVLAB=fake, which records its arguments NUL-separated) from another
 * directory must deliver exactly the intended arguments and run nothing else (no canary file appears).
 * A task whose run directory exists continues it with `train --resume`; a run with a final result is
 * left alone; runs are not --quiet, so the Slurm log gets the progress; --cpus-per-task N is each run's
 * train.threads, fresh or resumed. Before the fix the values were
 * wrapped in single quotes unescaped: a quote in a value ran the rest as shell code. Values that INI
 * cannot carry (a newline) and paths that an #SBATCH line cannot carry are rejected. */
#include <limits.h>

#include "sweep_testutil.h"

TestSuite(sweep_slurm, .init = sw_setup, .fini = sw_teardown, .timeout = 300);

#define NSHELLS 2
static const char *const SHELLS[NSHELLS] = {"/bin/sh", "/bin/bash"};

/* runs `SHELL SCRIPT` for one array index from `/`, the fake recording into rec; its exit status */
static int run_task(const char *shell, const char *script, const char *task, const char *fake, const char *rec,
                    const char *log) {
    char e1[600], e2[600], e3[600];
    snprintf(e1, sizeof e1, "SLURM_ARRAY_TASK_ID=%s", task);
    snprintf(e2, sizeof e2, "RWKVLAB=%s", fake);
    snprintf(e3, sizeof e3, "FAKE_OUT=%s", rec);
    char *env[] = {e1, e2, e3, NULL};
    char *argv[] = {(char *)shell, (char *)script, NULL};
    unlink(rec);
    return sw_run(argv, log, "/", env);
}

/* the NUL-separated arguments recorded by the fake, compared with want[0..n) */
static void expect_args(const char *rec, const char *const *want, int n, const char *what) {
    char *got = sw_read(rec);
    cr_expect(got, "%s: the fake rwkvlab was not run", what);
    if (!got) return;
    FILE *f = fopen(rec, "rb");
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fclose(f);
    int k = 0;
    for (long o = 0; o < len; o += strlen(got + o) + 1, k++) {
        cr_expect(k < n, "%s: extra argument '%s'", what, got + o);
        if (k < n) cr_expect_str_eq(got + o, want[k], "%s: argument %d", what, k);
    }
    cr_expect_eq(k, n, "%s: %d arguments, want %d", what, k, n);
    free(got);
}

/* a canary file anywhere a hostile value could have created one (removed, so one failure stays one) */
static int canaries(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "find '%s' CANARY1 CANARY2 /CANARY1 /CANARY2 -maxdepth 3 -name 'CANARY*' 2>/dev/null | "
                              "grep -q . && rm -f CANARY1 CANARY2 /CANARY1 /CANARY2", sw_tmp);
    return sh(cmd) == 0;
}

Test(sweep_slurm, hostile_values_arrive_intact_and_nothing_else_runs) {
    char bin[PATH_MAX], cwd[PATH_MAX], cfgdir[600], cfg[700], cfg_abs[PATH_MAX], out[400], root_abs[PATH_MAX];
    char log[400], fake[400], rec[400], script[600], grid[1024], set[1024];
    cr_assert(realpath(rwkvlab_bin(), bin));
    cr_assert(getcwd(cwd, sizeof cwd));
    /* no '/' in a directory name: these canaries would appear where the script runs (cwd or /) */
    snprintf(cfgdir, sizeof cfgdir, "%s/cfg it's \"$(touch CANARY1)\" `touch CANARY2` \\", sw_tmp);
    cr_assert_eq(mkdir(cfgdir, 0755), 0);
    snprintf(cfg, sizeof cfg, "%s/sw.ini", cfgdir);
    snprintf(grid, sizeof grid, "experiment.notes = x'y z, $(touch %s/CANARY3), `touch %s/CANARY4`, a\\b\"c", sw_tmp,
             sw_tmp);
    sw_config(cfg, "3, 4", "8", grid);
    snprintf(set, sizeof set, "model.lora_w=16");
    snprintf(out, sizeof out, "%s/out", sw_tmp);
    snprintf(log, sizeof log, "%s/log.txt", sw_tmp);
    snprintf(fake, sizeof fake, "%s/fake-rwkvlab", sw_tmp);
    snprintf(rec, sizeof rec, "%s/args", sw_tmp);
    sw_write(fake, "#!/bin/sh\npwd > \"$FAKE_OUT.pwd\"\nprintf '%s\\0' \"$@\" > \"$FAKE_OUT\"\n");
    cr_assert_eq(chmod(fake, 0755), 0);
    /* a --set value with every kind of quote, a substitution and a ';' (INI allows all of them) */
    char notes[600];
    snprintf(notes, sizeof notes, "experiment.notes=it's \"$(touch %s/CANARY5)\" `touch %s/CANARY6` $HOME a;b \\",
             sw_tmp, sw_tmp);
    char *argv[] = {bin, "sweep", cfg, "--set", set, "--set", notes, "--out", out, "--slurm", "--cpus-per-task", "3",
                    NULL};
    int rc = sw_run(argv, log, NULL, NULL);
    char *l = sw_read(log);
    cr_assert_eq(rc, 0, "%s", l);
    free(l);
    cr_assert(realpath(cfg, cfg_abs) && realpath(out, root_abs));
    snprintf(script, sizeof script, "%s/sweep.slurm", out);
    char *s = sw_read(script);
    cr_assert(s);
    cr_expect(!strstr(s, "--quiet"), "runs in the Slurm script must not be --quiet:\n%s", s);
    char line[PATH_MAX + 32];
    snprintf(line, sizeof line, "#SBATCH --chdir=%s\n", cwd);
    cr_expect(strstr(s, line) && strstr(s, "#SBATCH --open-mode=append"), "%s", s);
    free(s);

    const char *values[] = {"x'y z", NULL, NULL, "a\\b\"c"};
    char v1[400], v2[400];
    snprintf(v1, sizeof v1, "$(touch %s/CANARY3)", sw_tmp);
    snprintf(v2, sizeof v2, "`touch %s/CANARY4`", sw_tmp);
    values[1] = v1, values[2] = v2;
    const char *labels[] = {"notes=x_y_z", NULL, NULL, "notes=a_b_c"};
    char lab1[400], lab2[400];
    snprintf(lab1, sizeof lab1, "notes=__touch_%s_CANARY3_", sw_tmp);
    snprintf(lab2, sizeof lab2, "notes=_touch_%s_CANARY4_", sw_tmp);
    for (char *c = lab1 + 6; *c; c++) *c = *c == '/' ? '_' : *c;
    for (char *c = lab2 + 6; *c; c++) *c = *c == '/' ? '_' : *c;
    labels[1] = lab1, labels[2] = lab2;

    for (int sh_i = 0; sh_i < NSHELLS; sh_i++) {
        const char *shell = SHELLS[sh_i];
        if (!sw_exists(shell)) continue;
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "%s -n '%s'", shell, script);
        cr_expect_eq(sh(cmd), 0, "%s -n rejects the script", shell);
        for (int p = 0, idx = 0; p < 4; p++)
            for (int k = 0; k < 2; k++, idx++) {
                char task[16], gridset[600], seedset[64], dir[PATH_MAX + 600], what[64];
                snprintf(task, sizeof task, "%d", idx);
                snprintf(gridset, sizeof gridset, "experiment.notes=%s", values[p]);
                snprintf(seedset, sizeof seedset, "experiment.seeds=%d", 3 + k);
                snprintf(dir, sizeof dir, "%s/%s-seed%d", root_abs, labels[p], 3 + k);
                snprintf(what, sizeof what, "%s, index %d", shell, idx);
                const char *want[] = {"train", cfg_abs, "--set", set, "--set", notes, "--set", gridset,
                                      "--set", seedset, "--set", "train.threads=3", "--out", dir};
                int trc = run_task(shell, script, task, fake, rec, log);
                l = sw_read(log);
                cr_expect_eq(trc, 0, "%s: %s", what, l);
                cr_expect(strstr(l, "starting"), "%s: the task says nothing in the Slurm log:\n%s", what, l);
                free(l);
                expect_args(rec, want, 14, what);
                char pwdf[500];
                snprintf(pwdf, sizeof pwdf, "%s.pwd", rec);
                char *pw = sw_read(pwdf);
                cr_expect(pw && !strncmp(pw, cwd, strlen(cwd)) && pw[strlen(cwd)] == '\n',
                          "%s: ran in '%s', want '%s' (the script must not depend on where it is submitted from)",
                          what, pw, cwd);
                free(pw);
            }
        cr_expect(!canaries(), "%s: a hostile value was executed", shell);
        /* an index the array does not have */
        cr_expect_eq(run_task(shell, script, "8", fake, rec, log), 1);
        cr_expect(!sw_exists(rec), "the fake ran for an unknown index");
    }

    /* a requeued task whose run directory exists continues it; one with a final result does nothing */
    char dir0[PATH_MAX + 600], p[PATH_MAX + 700];
    snprintf(dir0, sizeof dir0, "%s/%s-seed3", root_abs, labels[0]);
    cr_assert_eq(mkdir(dir0, 0755), 0);
    snprintf(p, sizeof p, "%s/config.ini", dir0);
    sw_write(p, "; a run that was started\n");
    cr_expect_eq(run_task("/bin/sh", script, "0", fake, rec, log), 0);
    const char *want_resume[] = {"train", p, "--resume", dir0, "--set", "train.threads=3"};
    expect_args(rec, want_resume, 6, "requeued index 0");
    snprintf(p, sizeof p, "%s/summary.json", dir0);
    sw_write(p, "{\n\t\"experiment\":\t\"sw\",\n\t\"status\":\t\"diverged\"\n}");
    cr_expect_eq(run_task("/bin/sh", script, "0", fake, rec, log), 0);
    cr_expect(!sw_exists(rec), "a run with a final result was run again");
    cr_expect(!canaries());
}

Test(sweep_slurm, unrepresentable_values_and_paths_are_rejected) {
    char cfg[400], log[400], out[600], cmd[2048], p[700];
    snprintf(cfg, sizeof cfg, "%s/sw.ini", sw_tmp);
    snprintf(log, sizeof log, "%s/log.txt", sw_tmp);
    sw_config(cfg, "3", "8", NULL);
    /* a newline in a --set value */
    snprintf(out, sizeof out, "%s/o", sw_tmp);
    char bin[PATH_MAX];
    cr_assert(realpath(rwkvlab_bin(), bin));
    char *argv[] = {bin, "sweep", cfg, "--set", "experiment.notes=a\nrm -rf /", "--out", out, "--slurm", NULL};
    cr_expect_eq(sw_run(argv, log, NULL, NULL), 1);
    char *l = sw_read(log);
    cr_expect(strstr(l, "control character"), "%s", l);
    free(l);
    cr_expect(!sw_exists(out), "a rejected sweep created %s", out);
    /* a sweep directory an #SBATCH --output line cannot carry */
    const char *bad[] = {"o space", "o'q", "o%j"};
    for (int i = 0; i < 3; i++) {
        snprintf(out, sizeof out, "%s/%s", sw_tmp, bad[i]);
        char *av[] = {bin, "sweep", cfg, "--out", out, "--slurm", NULL};
        cr_expect_eq(sw_run(av, log, NULL, NULL), 1, "--out '%s'", out);
        l = sw_read(log);
        cr_expect(strstr(l, "#SBATCH") && !strstr(l, "wrote"), "%s", l);
        free(l);
        snprintf(p, sizeof p, "%s/sweep.slurm", out);
        cr_expect(!sw_exists(p));
    }
    /* two swept values that would share a directory */
    sw_config(cfg, "3", "8", "experiment.notes = a'b, a\"b");
    snprintf(cmd, sizeof cmd, "%s sweep %s --out %s/c --slurm > %s 2>&1", bin, cfg, sw_tmp, log);
    cr_expect_eq(sh(cmd), 1);
    l = sw_read(log);
    cr_expect(strstr(l, "both map to the directory"), "%s", l);
    free(l);
}
