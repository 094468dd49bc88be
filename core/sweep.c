/* sweep.c -- expand a config's [sweep] grid x experiment.seeds into runs of `rwkvlab train`.
 *
 * Each run is the base config plus the user's --set options plus one value per swept key plus
 * experiment.seeds=<seed>, written to ROOT/<key=value,...>-seed<seed>/ (ROOT = --out, default
 * results/<experiment>/sweep/). Local mode runs --jobs children of this same binary at a time, each with
 * train.threads = cores / jobs; a run whose summary.json already says completed or early_stopped is
 * skipped, so an interrupted sweep is continued by running the same command again. --slurm writes
 * ROOT/sweep.slurm, a job-array script with one array index per run, and runs nothing. At the end the
 * runs' summary.json files are aggregated per grid point across seeds: sequence accuracy per test length,
 * median and best, with the number of seeds (never the best alone), into ROOT/sweep.json and a table. */
#include "sweep.h"

#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "config.h"

#define MAX_VALS 64
#define MAX_SETS 128

typedef struct {
    int nkeys;
    char key[CFG_MAX_SWEEP][CFG_STR];
    int nvals[CFG_MAX_SWEEP];
    char val[CFG_MAX_SWEEP][MAX_VALS][64];
} Grid;

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) *--e = 0;
    return s;
}

static int grid_from_config(const RunConfig *c, Grid *g, Err *err) {
    memset(g, 0, sizeof *g);
    g->nkeys = c->sweep.n;
    for (int i = 0; i < c->sweep.n; i++) {
        snprintf(g->key[i], sizeof g->key[i], "%s", c->sweep.key[i]);
        char buf[sizeof c->sweep.values[0]];
        snprintf(buf, sizeof buf, "%s", c->sweep.values[i]);
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (g->nvals[i] == MAX_VALS) return err_set(err, "[sweep] %s: more than %d values", g->key[i], MAX_VALS);
            snprintf(g->val[i][g->nvals[i]++], 64, "%s", trim(tok));
        }
        if (g->nvals[i] == 0) return err_set(err, "[sweep] %s has no values", g->key[i]);
    }
    return 0;
}

static long grid_points(const Grid *g) {
    long n = 1;
    for (int i = 0; i < g->nkeys; i++) n *= g->nvals[i];
    return n;
}

/* value index of key i at grid point p (last key varies fastest) */
static int grid_index(const Grid *g, long p, int i) {
    for (int k = g->nkeys - 1; k > i; k--) p /= g->nvals[k];
    return (int)(p % g->nvals[i]);
}

/* "model.layers=2,model.eig_range=extended" -> a directory-safe label */
static void point_label(const Grid *g, long p, char *out, size_t n) {
    size_t o = 0;
    out[0] = 0;
    if (g->nkeys == 0) snprintf(out, n, "base");
    for (int i = 0; i < g->nkeys; i++) {
        const char *k = strchr(g->key[i], '.') ? strchr(g->key[i], '.') + 1 : g->key[i];
        o += snprintf(out + o, o < n ? n - o : 0, "%s%s=%s", i ? "," : "", k, g->val[i][grid_index(g, p, i)]);
    }
    for (char *c = out; *c; c++)
        if (!(isalnum((unsigned char)*c) || strchr("=,._-", *c))) *c = '_';
}

typedef struct {
    char dir[2048];
    char label[512];
    long point;
    long seed;
    pid_t pid;
    int status; /* -1 pending/running, else exit code */
} Run;

/* DIR/summary.json parsed, or NULL when absent or unreadable (caller cJSON_Deletes) */
static cJSON *read_summary(const char *dir) {
    char p[2100];
    snprintf(p, sizeof p, "%s/summary.json", dir);
    FILE *f = fopen(p, "r");
    if (!f) return NULL;
    static char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    return cJSON_Parse(buf);
}

/* the run's status ("completed", "interrupted", ...) into status; "" when there is no summary */
static void summary_status(const char *dir, char *status, size_t n) {
    cJSON *j = read_summary(dir);
    const cJSON *s = j ? cJSON_GetObjectItem(j, "status") : NULL;
    snprintf(status, n, "%s", cJSON_IsString(s) ? s->valuestring : "");
    cJSON_Delete(j);
}

/* argv for `rwkvlab train` of one run */
static int run_argv(const char *self, const char *cfg, const char *const *sets, int nsets, const Grid *g,
                    const Run *r, int threads, char store[][600], char **argv) {
    int a = 0, s = 0;
    argv[a++] = (char *)self;
    argv[a++] = "train";
    argv[a++] = (char *)cfg;
    for (int i = 0; i < nsets; i++) argv[a++] = "--set", argv[a++] = (char *)sets[i];
    for (int i = 0; i < g->nkeys; i++) {
        snprintf(store[s], 600, "%s=%s", g->key[i], g->val[i][grid_index(g, r->point, i)]);
        argv[a++] = "--set", argv[a++] = store[s++];
    }
    snprintf(store[s], 600, "experiment.seeds=%ld", r->seed);
    argv[a++] = "--set", argv[a++] = store[s++];
    if (threads > 0) {
        snprintf(store[s], 600, "train.threads=%d", threads);
        argv[a++] = "--set", argv[a++] = store[s++];
    }
    argv[a++] = "--out", argv[a++] = (char *)r->dir;
    argv[a++] = "--quiet";
    argv[a] = NULL;
    return a;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ROOT/sweep.json + a table: per grid point and test length, median and best seq_acc over seeds */
static void aggregate(const char *root, const Grid *g, const Run *runs, int nruns, const RunConfig *c) {
    cJSON *out = cJSON_CreateObject(), *pts = cJSON_AddArrayToObject(out, "points");
    cJSON_AddStringToObject(out, "experiment", c->experiment.name);
    cJSON_AddStringToObject(out, "statistic", "sequence accuracy per test length across seeds: median and best");
    long np = grid_points(g);
    printf("\nsequence accuracy across seeds (median / best, n = seeds with a finished run):\n");
    printf("  %-40s %4s", "grid point", "n");
    for (int li = 0; li < c->task.ntest_lens; li++) printf("  %13d", c->task.test_lens[li]);
    printf("\n");
    for (long p = 0; p < np; p++) {
        double acc[CFG_MAX_LIST][CFG_MAX_LIST];
        int n = 0;
        char label[512];
        for (int r = 0; r < nruns; r++) {
            if (runs[r].point != p) continue;
            snprintf(label, sizeof label, "%s", runs[r].label);
            cJSON *j = read_summary(runs[r].dir);
            if (!j) continue;
            const cJSON *st = cJSON_GetObjectItem(j, "status"), *ev = cJSON_GetObjectItem(j, "eval");
            int ok = cJSON_IsString(st) && (!strcmp(st->valuestring, "completed") || !strcmp(st->valuestring, "early_stopped"));
            if (ok && cJSON_IsArray(ev) && n < CFG_MAX_LIST) {
                int li = 0;
                for (const cJSON *e = ev->child; e && li < c->task.ntest_lens; e = e->next, li++)
                    acc[li][n] = cJSON_GetObjectItem(e, "seq_acc") ? cJSON_GetObjectItem(e, "seq_acc")->valuedouble : NAN;
                n++;
            }
            cJSON_Delete(j);
        }
        cJSON *pj = cJSON_CreateObject();
        cJSON_AddStringToObject(pj, "point", label);
        cJSON_AddNumberToObject(pj, "seeds", n);
        cJSON *lens = cJSON_AddArrayToObject(pj, "lengths");
        printf("  %-40s %4d", label, n);
        for (int li = 0; li < c->task.ntest_lens; li++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "length", c->task.test_lens[li]);
            if (n > 0) {
                qsort(acc[li], n, sizeof(double), cmp_double);
                double med = n % 2 ? acc[li][n / 2] : 0.5 * (acc[li][n / 2 - 1] + acc[li][n / 2]);
                cJSON_AddNumberToObject(e, "seq_acc_median", med);
                cJSON_AddNumberToObject(e, "seq_acc_best", acc[li][n - 1]);
                printf("  %6.3f/%6.3f", med, acc[li][n - 1]);
            } else {
                printf("  %13s", "-");
            }
            cJSON_AddItemToArray(lens, e);
        }
        printf("\n");
        cJSON_AddItemToArray(pts, pj);
    }
    char p[2100];
    snprintf(p, sizeof p, "%s/sweep.json", root);
    Err err;
    if (json_write_atomic(p, out, &err)) fprintf(stderr, "rwkvlab sweep: %s\n", err.msg);
    else printf("wrote %s\n", p);
    cJSON_Delete(out);
}

static void usage(void) {
    printf("usage: rwkvlab sweep CONFIG [--set section.key=value ...] [--jobs N] [--slurm] [--dry-run] [--out DIR]\n"
           "  runs the config's [sweep] grid x experiment.seeds with `rwkvlab train` (N at a time, default 1;\n"
           "  each with train.threads = cores / N), skipping runs already finished; --slurm writes\n"
           "  DIR/sweep.slurm (a job array, one index per run) instead; --dry-run lists the runs.\n"
           "  DIR defaults to results/<experiment>/sweep. Results: DIR/sweep.json (median and best across seeds).\n");
}

int sweep_main(int argc, char **argv) {
    const char *cfgp = NULL, *out = NULL, *sets[MAX_SETS];
    int nsets = 0, jobs = 1, slurm = 0, dry = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return usage(), 0;
        else if (!strcmp(argv[i], "--set") && i + 1 < argc && nsets < MAX_SETS) sets[nsets++] = argv[++i];
        else if (!strcmp(argv[i], "--jobs") && i + 1 < argc) jobs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--slurm")) slurm = 1;
        else if (!strcmp(argv[i], "--dry-run")) dry = 1;
        else if (argv[i][0] != '-' && !cfgp) cfgp = argv[i];
        else {
            fprintf(stderr, "rwkvlab sweep: unknown or incomplete option '%s'\n", argv[i]);
            usage();
            return 1;
        }
    }
    if (!cfgp || jobs < 1) {
        fprintf(stderr, "rwkvlab sweep: %s\n", !cfgp ? "missing CONFIG" : "--jobs must be >= 1");
        return 1;
    }
    RunConfig c;
    config_defaults(&c);
    Err err = {{0}};
    if (config_load(&c, cfgp, &err)) goto fail;
    for (int i = 0; i < nsets; i++)
        if (config_set(&c, sets[i], &err)) goto fail;
    if (config_validate(&c, &err)) goto fail;
    Grid g;
    if (grid_from_config(&c, &g, &err)) goto fail;
    /* every grid point must itself be a valid config (e.g. head_size dividing d_model) */
    long np = grid_points(&g), nruns = np * c.experiment.nseeds;
    for (long p = 0; p < np; p++) {
        RunConfig t = c;
        for (int i = 0; i < g.nkeys; i++) {
            char a[600];
            snprintf(a, sizeof a, "%s=%s", g.key[i], g.val[i][grid_index(&g, p, i)]);
            if (config_set(&t, a, &err)) goto fail;
        }
        char label[512];
        point_label(&g, p, label, sizeof label);
        if (config_validate(&t, &err)) {
            fprintf(stderr, "rwkvlab sweep: grid point %s is not a valid config: %s\n", label, err.msg);
            return 1;
        }
    }
    char root[1800];
    if (out) snprintf(root, sizeof root, "%s", out);
    else snprintf(root, sizeof root, "results/%s/sweep", c.experiment.name);
    Run *runs = xcalloc(nruns, sizeof(Run));
    for (long p = 0, r = 0; p < np; p++)
        for (int s = 0; s < c.experiment.nseeds; s++, r++) {
            runs[r].point = p, runs[r].seed = c.experiment.seeds[s], runs[r].status = -1;
            point_label(&g, p, runs[r].label, sizeof runs[r].label);
            snprintf(runs[r].dir, sizeof runs[r].dir, "%s/%s-seed%ld", root, runs[r].label, runs[r].seed);
        }
    long ncores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = (int)(ncores / jobs) > 0 ? (int)(ncores / jobs) : 1;
    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0) snprintf(self, sizeof self, "%s", "rwkvlab");
    else self[sl] = 0;
    printf("sweep %s: %ld grid point(s) x %d seed(s) = %ld runs -> %s\n", c.experiment.name, np, c.experiment.nseeds,
           nruns, root);
    static char store[CFG_MAX_SWEEP + 2][600];
    char *av[2 * (MAX_SETS + CFG_MAX_SWEEP) + 16];
    if (dry || slurm) {
        FILE *sf = NULL;
        char sp[2100];
        if (slurm) {
            if (mkdir_p(root, &err)) goto fail_runs;
            snprintf(sp, sizeof sp, "%s/sweep.slurm.tmp", root);
            sf = xfopen(sp, "w");
            fprintf(sf, "#!/bin/bash\n# rwkvlab sweep %s: %ld runs; submit with: sbatch %s/sweep.slurm\n", c.experiment.name,
                    nruns, root);
            fprintf(sf, "#SBATCH --job-name=%s\n#SBATCH --array=0-%ld\n#SBATCH --cpus-per-task=%d\n#SBATCH "
                        "--output=%s/slurm-%%A_%%a.out\nset -euo pipefail\ncase \"$SLURM_ARRAY_TASK_ID\" in\n",
                    c.experiment.name, nruns - 1, threads, root);
        }
        for (long r = 0; r < nruns; r++) {
            int n = run_argv(self, cfgp, sets, nsets, &g, &runs[r], slurm ? 0 : threads, store, av);
            if (sf) fprintf(sf, "  %ld) exec", r);
            else printf("  ");
            for (int k = 0; k < n; k++) {
                const char *a = k == 0 && sf ? "\"${RWKVLAB:-rwkvlab}\"" : av[k];
                if (sf) fprintf(sf, k == 0 ? " %s" : " '%s'", a);
                else printf("%s%s", k ? " " : "", a);
            }
            if (sf) fprintf(sf, " ;;\n");
            else printf("\n");
        }
        if (sf) {
            fprintf(sf, "  *) echo \"no run for index $SLURM_ARRAY_TASK_ID\" >&2; exit 1 ;;\nesac\n");
            fclose(sf);
            char fin[2100];
            snprintf(fin, sizeof fin, "%s/sweep.slurm", root);
            if (rename(sp, fin)) {
                err_set(&err, "cannot write '%s': %s", fin, strerror(errno));
                goto fail_runs;
            }
            chmod(fin, 0755);
            printf("wrote %s (sbatch it; set RWKVLAB to the binary's path on the cluster; run `rwkvlab sweep` again "
                   "afterwards to aggregate)\n", fin);
        }
        free(runs);
        return 0;
    }
    if (mkdir_p(root, &err)) goto fail_runs;
    int running = 0, failed = 0;
    long next = 0, done = 0;
    while (done < nruns) {
        while (running < jobs && next < nruns) {
            Run *r = &runs[next++];
            char st[64];
            summary_status(r->dir, st, sizeof st);
            if (!strcmp(st, "completed") || !strcmp(st, "early_stopped")) {
                printf("  [skip] %s-seed%ld (already %s)\n", r->label, r->seed, st);
                r->status = 0, done++;
                continue;
            }
            int resume = !strcmp(st, "interrupted");
            int n = run_argv(self, cfgp, sets, nsets, &g, r, threads, store, av);
            if (resume) { /* continue an interrupted run instead of refusing its directory */
                av[n - 3] = "--resume";
            }
            char errp[2100];
            snprintf(errp, sizeof errp, "%s/%s-seed%ld.stderr", root, r->label, r->seed);
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                FILE *e = freopen(errp, "w", stderr);
                (void)e;
                if (!freopen("/dev/null", "w", stdout)) _exit(126);
                execv(self, av);
                _exit(127);
            }
            if (pid < 0) {
                err_set(&err, "fork failed: %s", strerror(errno));
                goto fail_runs;
            }
            r->pid = pid;
            running++;
            printf("  [start] %s-seed%ld%s\n", r->label, r->seed, resume ? " (resuming)" : "");
            fflush(stdout);
        }
        if (running == 0) break;
        int status;
        pid_t pid = wait(&status);
        if (pid < 0) break;
        for (long i = 0; i < nruns; i++)
            if (runs[i].pid == pid) {
                runs[i].status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                running--, done++;
                if (runs[i].status) failed++;
                printf("  [%s] %s-seed%ld%s\n", runs[i].status ? "FAILED" : "done", runs[i].label, runs[i].seed,
                       runs[i].status ? " (see its .stderr file and run.log)" : "");
                fflush(stdout);
            }
    }
    aggregate(root, &g, runs, (int)nruns, &c);
    free(runs);
    if (failed) fprintf(stderr, "rwkvlab sweep: %d run(s) failed\n", failed);
    return failed ? 1 : 0;
fail_runs:
    free(runs);
fail:
    fprintf(stderr, "rwkvlab sweep: %s\n", err.msg);
    return 1;
}
