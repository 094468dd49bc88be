/* test_sweep_slurm_opts.c -- the cluster options of `rwkvlab sweep --slurm` and what a task's Slurm log
 * says (issue 8, item 9).
 *
 * --time, --mem, --partition and --cpus-per-task must become exactly one #SBATCH line each, in the
 * block sbatch reads (before the first command); every value Slurm's syntax allows is accepted and
 * every other one is refused before anything is written (exit 1, the option and the value named, how to
 * fix it), since an #SBATCH line is not shell and a stray character would reach sbatch. Without --slurm
 * the options are an error. A --mem below a grid point's estimated need is refused, naming the point.
 * Each task ends its log with one line saying how the run ended (done,
 * diverged, interrupted by SIGTERM, FAILED, cannot execute), after the run's own error messages; a
 * SIGTERM to the task's shell (scancel, the time limit) waits for the run to checkpoint and is reported.
 * A fake rwkvlab stands in for the run (the real one, under a real Slurm: tests/slurm/). */
#include <limits.h>

#include "sweep_testutil.h"

TestSuite(sweep_slurm_opts, .init = sw_setup, .fini = sw_teardown, .timeout = 300);

/* `rwkvlab sweep CFG --out OUT --slurm EXTRA...` (extra NULL-terminated); its exit status, output in log */
static int slurm_sweep(const char *cfg, const char *out, const char *log, const char *const *extra) {
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)rwkvlab_bin(), argv[n++] = "sweep", argv[n++] = (char *)cfg;
    argv[n++] = "--out", argv[n++] = (char *)out;
    for (int i = 0; extra && extra[i] && n < 30; i++) argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    return sw_run(argv, log, NULL, NULL);
}

/* the #SBATCH lines sbatch reads: those before the first line that is neither blank nor a comment */
static char *sbatch_block(const char *script) {
    char *b = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&b, &len);
    for (const char *l = script; *l;) {
        size_t n = strcspn(l, "\n");
        if (n > 0 && l[0] != '#') break;
        if (!strncmp(l, "#SBATCH", 7)) fprintf(m, "%.*s\n", (int)n, l);
        l += n + (l[n] == '\n');
    }
    fclose(m);
    return b;
}

Test(sweep_slurm_opts, options_become_sbatch_lines) {
    char cfg[400], out[400], log[400], sp[500], line[200];
    snprintf(cfg, sizeof cfg, "%s/sw.ini", sw_tmp);
    snprintf(log, sizeof log, "%s/log.txt", sw_tmp);
    sw_config(cfg, "3", "8", NULL);
    struct {
        const char *time, *mem, *part, *cpus;
    } ok[] = {
        {"90", "500M", "cpu", "2"},          {"90:30", "500m", "a.b,c_d-1", "1"}, {"02:00:00", "102400K", "x", "16"},
        {"1-12", "2g", "gpu-h100", "4"},     {"1-12:30", "1T", "p", "1"},         {"1-12:30:15", "700", "q.1", "3"},
        {"100:59:59", "409600k", "Z", "4096"}, {"0:1", "100", "a,b,c", "1"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(out, sizeof out, "%s/ok%zu", sw_tmp, i);
        const char *extra[] = {"--slurm", "--time", ok[i].time, "--mem", ok[i].mem, "--partition", ok[i].part,
                               "--cpus-per-task", ok[i].cpus, NULL};
        int rc = slurm_sweep(cfg, out, log, extra);
        char *l = sw_read(log);
        cr_expect_eq(rc, 0, "--time %s --mem %s --partition %s: %s", ok[i].time, ok[i].mem, ok[i].part, l);
        free(l);
        snprintf(sp, sizeof sp, "%s/sweep.slurm", out);
        char *s = sw_read(sp);
        cr_assert(s, "no %s", sp);
        char *blk = sbatch_block(s);
        const char *want[][2] = {{"time", ok[i].time}, {"mem", ok[i].mem}, {"partition", ok[i].part},
                                 {"cpus-per-task", ok[i].cpus}};
        for (int k = 0; k < 4; k++) {
            snprintf(line, sizeof line, "#SBATCH --%s=%s\n", want[k][0], want[k][1]);
            cr_expect_eq(sw_count(blk, line), 1, "want one '%.*s' where sbatch reads it:\n%s", (int)strlen(line) - 1,
                         line, s);
            snprintf(line, sizeof line, "#SBATCH --%s=", want[k][0]);
            cr_expect_eq(sw_count(s, line), 1, "one --%s line only:\n%s", want[k][0], s);
        }
        /* the runs use the CPUs they are given, fresh and resumed */
        snprintf(line, sizeof line, "--set train.threads=%s ", ok[i].cpus);
        cr_expect_eq(sw_count(s, line), 2, "train.threads=%s for the fresh run and the resume:\n%s", ok[i].cpus, s);
        char cmd[700];
        snprintf(cmd, sizeof cmd, "sh -n '%s'", sp);
        cr_expect_eq(sh(cmd), 0, "sh -n rejects %s", sp);
        free(blk);
        free(s);
    }
    /* none given: none written (the cluster's defaults) */
    snprintf(out, sizeof out, "%s/plain", sw_tmp);
    const char *extra[] = {"--slurm", NULL};
    cr_assert_eq(slurm_sweep(cfg, out, log, extra), 0);
    snprintf(sp, sizeof sp, "%s/sweep.slurm", out);
    char *s = sw_read(sp);
    cr_assert(s);
    cr_expect(!strstr(s, "--time") && !strstr(s, "--mem") && !strstr(s, "--partition"), "%s", s);
    free(s);
}

Test(sweep_slurm_opts, bad_values_are_refused_before_anything_is_written) {
    char cfg[400], out[400], log[400];
    snprintf(cfg, sizeof cfg, "%s/sw.ini", sw_tmp);
    snprintf(log, sizeof log, "%s/log.txt", sw_tmp);
    snprintf(out, sizeof out, "%s/o", sw_tmp);
    sw_config(cfg, "3", "8", NULL);
    struct {
        const char *opt, *val, *why;
    } bad[] = {
        {"--time", "", "not a time limit"},         {"--time", "abc", "not a time limit"},
        {"--time", "1h", "not a time limit"},        {"--time", " 1", "not a time limit"},
        {"--time", "1:60:00", "below 60"},           {"--time", "1:00:60", "below 60"},
        {"--time", "5:60", "below 60"},              {"--time", "1-2:60", "below 60"},
        {"--time", "1-24:00:00", "below 24"},        {"--time", "1-24", "below 24"},
        {"--time", "0", "zero"},                     {"--time", "00:00:00", "zero"},
        {"--time", "0-0", "zero"},                   {"--time", "1:2:3:4", "not a time limit"},
        {"--time", "1-", "not a time limit"},        {"--time", "-1", "not a time limit"},
        {"--time", "1:2:3-4", "not a time limit"},   {"--time", "1234567", "6 digits"},
        {"--time", "1:00\n#SBATCH --x=1", "not a time limit"},
        {"--mem", "", "not a memory size"},          {"--mem", "4GB", "not a memory size"},
        {"--mem", "4 G", "not a memory size"},       {"--mem", "1.5G", "not a memory size"},
        {"--mem", "G", "not a memory size"},         {"--mem", "-1", "not a memory size"},
        {"--mem", "1234567890", "not a memory size"}, {"--mem", "4G;rm", "not a memory size"},
        {"--mem", "0", "below 1M"},                  {"--mem", "0G", "below 1M"},
        {"--mem", "100K", "below 1M"},
        {"--partition", "", "not a partition"},      {"--partition", "a b", "not a partition"},
        {"--partition", "a,,b", "not a partition"},  {"--partition", ",a", "not a partition"},
        {"--partition", "a,", "not a partition"},    {"--partition", "a'b", "not a partition"},
        {"--partition", "a%j", "not a partition"},   {"--partition", "a\nb", "not a partition"},
        {"--partition", "a#b", "not a partition"},   {"--cpus-per-task", "0", "--cpus-per-task"},
        {"--cpus-per-task", "2x", "--cpus-per-task"}, {"--cpus-per-task", "4097", "--cpus-per-task"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *extra[] = {"--slurm", bad[i].opt, bad[i].val, NULL};
        int rc = slurm_sweep(cfg, out, log, extra);
        char *l = sw_read(log);
        cr_expect_eq(rc, 1, "%s '%s' was accepted:\n%s", bad[i].opt, bad[i].val, l);
        cr_expect(strstr(l, bad[i].opt) && strstr(l, bad[i].why), "%s '%s': want a message with '%s':\n%s", bad[i].opt,
                  bad[i].val, bad[i].why, l);
        cr_expect(!strstr(l, "wrote"), "%s", l);
        free(l);
        cr_expect(!sw_exists(out), "%s '%s': %s was created", bad[i].opt, bad[i].val, out);
    }
    /* the cluster options belong to --slurm */
    const char *local[][2] = {{"--time", "1:00:00"}, {"--mem", "1G"}, {"--partition", "p"}, {"--cpus-per-task", "2"}};
    for (int i = 0; i < 4; i++) {
        const char *extra[] = {local[i][0], local[i][1], NULL};
        cr_expect_eq(slurm_sweep(cfg, out, log, extra), 1, "%s without --slurm", local[i][0]);
        char *l = sw_read(log);
        cr_expect(strstr(l, "add --slurm"), "%s", l);
        free(l);
        cr_expect(!sw_exists(out));
    }
}

/* runs index 0 of script with shell, RWKVLAB=fake, from `/`, output into log; its exit status */
static int run_task0(const char *shell, const char *script, const char *fake, const char *log) {
    char e1[] = "SLURM_ARRAY_TASK_ID=0", e2[600], e3[] = "SLURM_ARRAY_JOB_ID=4242";
    snprintf(e2, sizeof e2, "RWKVLAB=%s", fake);
    char *env[] = {e1, e2, e3, NULL};
    char *argv[] = {(char *)shell, (char *)script, NULL};
    return sw_run(argv, log, "/", env);
}

Test(sweep_slurm_opts, task_log_ends_with_how_the_run_ended) {
    char cfg[400], out[400], log[400], sp[500], fake[400], mark[400];
    snprintf(cfg, sizeof cfg, "%s/sw.ini", sw_tmp);
    snprintf(log, sizeof log, "%s/log.txt", sw_tmp);
    snprintf(out, sizeof out, "%s/o", sw_tmp);
    snprintf(fake, sizeof fake, "%s/fake", sw_tmp);
    snprintf(mark, sizeof mark, "%s/mark", sw_tmp);
    sw_config(cfg, "3", "8", NULL);
    const char *extra[] = {"--slurm", NULL};
    cr_assert_eq(slurm_sweep(cfg, out, log, extra), 0);
    snprintf(sp, sizeof sp, "%s/sweep.slurm", out);
    struct {
        const char *body; /* the fake's shell code */
        int rc;
        const char *first, *last; /* what the log must hold, in this order */
    } cases[] = {
        {"echo 'rwkvlab train: /x/y.ini:3: task.name = nope is not known' >&2; exit 1", 1,
         "rwkvlab train: /x/y.ini:3: task.name = nope is not known", "FAILED (exit 1)"},
        {"echo 'step 10/20  loss 1.0'; exit 0", 0, "step 10/20", "done: "},
        {"exit 3", 3, "starting", "diverged (exit 3)"},
        /* SIGTERM to the task's shell (as scancel sends it to every process of the job): the shell must
         * wait for the run to checkpoint and exit, then say so */
        {"kill -TERM $PPID; sleep 0.5; echo checkpointed > MARK; echo 'interrupted (SIGTERM)'; exit 130", 130,
         "interrupted (SIGTERM)", "interrupted by SIGTERM (exit 130)"},
    };
    const char *shells[] = {"/bin/sh", "/bin/bash"};
    for (int k = 0; k < 2; k++) {
        if (!sw_exists(shells[k])) continue;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char body[800];
            snprintf(body, sizeof body, "#!/bin/sh\n%s\n", cases[i].body);
            char *m = strstr(body, "MARK");
            if (m) {
                char rest[800];
                snprintf(rest, sizeof rest, "%s%s", mark, m + 4);
                snprintf(m, sizeof body - (m - body), "%s", rest);
            }
            sw_write(fake, body);
            cr_assert_eq(chmod(fake, 0755), 0);
            unlink(mark);
            int rc = run_task0(shells[k], sp, fake, log);
            char *l = sw_read(log);
            cr_expect_eq(rc, cases[i].rc, "%s, case %zu: exit %d, want %d:\n%s", shells[k], i, rc, cases[i].rc, l);
            const char *a = strstr(l, cases[i].first), *b = a ? strstr(a, cases[i].last) : NULL;
            cr_expect(a && b, "%s, case %zu: want '%s' and then '%s' in the task's log:\n%s", shells[k], i,
                      cases[i].first, cases[i].last, l);
            cr_expect(strstr(l, "rwkvlab sweep task 0 (job 4242_0, "), "%s: the task's lines name the job:\n%s",
                      shells[k], l);
            /* the last line is the task's verdict */
            size_t n = strlen(l);
            while (n > 0 && l[n - 1] == '\n') n--;
            const char *last = l;
            for (size_t j = 0; j < n; j++)
                if (l[j] == '\n') last = l + j + 1;
            cr_expect(!strncmp(last, "rwkvlab sweep task 0", 20), "%s, case %zu: the log does not end with the task's "
                                                                  "verdict:\n%s", shells[k], i, l);
            if (cases[i].rc == 130) cr_expect(sw_exists(mark), "%s: the task did not wait for the run", shells[k]);
            free(l);
        }
        /* a binary that cannot be run */
        char nofake[500];
        snprintf(nofake, sizeof nofake, "%s/no-such-rwkvlab", sw_tmp);
        int rc = run_task0(shells[k], sp, nofake, log);
        char *l = sw_read(log);
        cr_expect_eq(rc, 127, "%s: %s", shells[k], l);
        cr_expect(strstr(l, "cannot execute") && strstr(l, "set RWKVLAB"), "%s", l);
        free(l);
    }
}

/* --mem below what a grid point needs (train's estimate + the program's own 64 MiB) would have every
 * task killed for memory, again on each resubmission: refused before anything is written, naming the
 * largest point. The sizes here are orders of magnitude apart, not tuned to the estimate. */
Test(sweep_slurm_opts, mem_below_the_estimate_is_refused) {
    char cfg[400], out[400], log[400], sp[500];
    snprintf(cfg, sizeof cfg, "%s/sw.ini", sw_tmp);
    snprintf(log, sizeof log, "%s/log.txt", sw_tmp);
    snprintf(out, sizeof out, "%s/o", sw_tmp);
    snprintf(sp, sizeof sp, "%s/sweep.slurm", out);
    /* d_model 2048, 8 layers, batch 64 x 256 tokens: tens of GiB; d_model 32: a few MiB */
    sw_config(cfg, "3", "8", "model.d_model = 32, 2048");
    const char *extra[] = {"--slurm", "--mem", "1G", "--set", "model.layers=8", "--set", "train.batch=64", "--set",
                           "task.train_len=256", NULL};
    cr_expect_eq(slurm_sweep(cfg, out, log, extra), 1);
    char *m = sw_read(log);
    cr_expect(strstr(m, "--mem 1G is less than grid point d_model=2048 needs") && strstr(m, "give --mem"), "%s", m);
    free(m);
    cr_expect(!sw_exists(out), "a refused sweep created %s", out);
    /* 1M is below the program's own share whatever the model */
    const char *tiny[] = {"--slurm", "--mem", "1M", "--set", "sweep.model.d_model=32", NULL};
    cr_expect_eq(slurm_sweep(cfg, out, log, tiny), 1);
    m = sw_read(log);
    cr_expect(strstr(m, "--mem 1M is less than grid point d_model=32 needs"), "%s", m);
    free(m);
    cr_expect(!sw_exists(out));
    /* the small point alone fits in 1G; the large one with RWKVLAB_FORCE_MEMORY=1 is written with a warning */
    const char *small[] = {"--slurm", "--mem", "1G", "--set", "sweep.model.d_model=32", NULL};
    cr_expect_eq(slurm_sweep(cfg, out, log, small), 0);
    m = sw_read(log);
    cr_expect(sw_exists(sp), "%s", m);
    free(m);
    char bin[PATH_MAX];
    cr_assert(realpath(rwkvlab_bin(), bin));
    char *av[] = {bin, "sweep", cfg, "--out", out, "--slurm", "--mem", "1G", "--set", "model.layers=8", "--set",
                  "train.batch=64", "--set", "task.train_len=256", NULL};
    char e1[] = "RWKVLAB_FORCE_MEMORY=1";
    char *env[] = {e1, NULL};
    cr_expect_eq(sw_run(av, log, NULL, env), 0);
    m = sw_read(log);
    cr_expect(strstr(m, "warning") && strstr(m, "d_model=2048") && strstr(m, "wrote"), "%s", m);
    free(m);
}
