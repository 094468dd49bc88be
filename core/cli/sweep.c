/* sweep.c -- expand a config's [sweep] grid x experiment.seeds into runs of `rwkvlab train`.
 *
 * Each run is the base config plus the user's --set options plus one value per swept key plus
 * experiment.seeds=<seed>, written to ROOT/<key=value,...>-seed<seed>/ (ROOT = --out, default
 * results/<experiment>/sweep/). Local mode runs --jobs children of this same binary at a time, each with
 * train.threads = cores / jobs. --slurm writes ROOT/sweep.slurm, a job-array script with one array index
 * per run, and runs nothing. --report only aggregates. At the end the runs' summary.json files are
 * aggregated per grid point across seeds: sequence accuracy per test length, median and best, with the
 * number of seeds (never the best alone), into ROOT/sweep.json and a table.
 *
 * Rules (what a re-run of the same sweep does with each run directory, decided before anything starts):
 *   - summary.json says completed or early_stopped: finished, skipped.
 *   - summary.json says diverged: a final result (resuming repeats the same steps from the last good
 *     checkpoint and diverges again). Reported (table column "div", sweep.json "diverged"), never retried
 *     and left out of the median; delete the run directory to run it again.
 *   - anything else with a config.ini (killed, OOM-killed, interrupted, start failed): continued with
 *     `rwkvlab train DIR/config.ini --resume DIR`, which owns the decision of how to continue it.
 *   - no config.ini: started fresh with `train CONFIG --set ... --out DIR`.
 *   - A directory with a config.ini must hold this grid point's resolved config (every key except
 *     train.threads, experiment.notes and the [sweep] grid itself, which cannot change a run's result).
 *     Otherwise the sweep stops before starting anything and names each run and each differing key:
 *     results of another config are never reported under this one, and never silently redone.
 *   - Every attempt appends to ROOT/<run>.log (a header with the date and the command, then the run's
 *     stdout and stderr); earlier attempts' logs are never overwritten.
 *   - Results are matched to test lengths by each eval entry's "length"; a length a run lacks is
 *     missing (null in sweep.json, '-' in the table), counted per length.
 *   - Exit status: 0 when every run has a final result (finished or diverged) and sweep.json was
 *     written; 1 when a run failed or is unfinished, or any output could not be written; 130 when the
 *     sweep itself was interrupted (SIGINT/SIGTERM are passed on to the running trains, which checkpoint).
 * The Slurm script is POSIX sh: every argument single-quoted (' as '\''), absolute paths, a `cd` to the
 * directory the sweep was generated from, runs not --quiet (progress reaches the Slurm log, opened in
 * append mode), and the same continue rule at run time, so a requeued or resubmitted task continues.
 * --time, --mem, --partition and --cpus-per-task become #SBATCH lines after a strict check of their
 * Slurm syntax (an #SBATCH line is not shell: only characters it carries as they are get through);
 * --cpus-per-task is also each run's train.threads, fresh or resumed; a --mem below a grid point's
 * estimated training memory (mem.h) + 64 MiB for the program is refused (RWKVLAB_FORCE_MEMORY=1: a
 * warning), since Slurm would kill that task for memory on every submission. The task does not exec the
 * run: it waits for it (SIGTERM trapped, so scancel or the time limit checkpoint the run and the task
 * still reports) and ends its Slurm log with a line saying done, diverged, interrupted or FAILED with
 * the exit status and what to do; the run's own error messages come just before it (stderr shares the
 * log). Tested against a real single-node Slurm by tests/slurm/test_slurm_real.c (`make slurm-test`). */
#include "sweep.h"

#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "config.h"
#include "mem.h"
#include "model.h"
#include "opts.h"
#include "task.h"

#ifndef RWKVLAB_VERSION
#define RWKVLAB_VERSION "unknown"
#endif

#define MAX_VALS 64
#define MAX_SETS 128
#define MAX_RUNS 10000
#define VAL_CAP ((int)sizeof(((RunConfig *)0)->sweep.values[0]))

/* ---- the grid ----------------------------------------------------------------------------------- */

typedef struct {
    int nkeys;
    char key[CFG_MAX_SWEEP][CFG_STR];
    int nvals[CFG_MAX_SWEEP];
    char text[CFG_MAX_SWEEP][VAL_CAP];       /* the values, split in place */
    const char *val[CFG_MAX_SWEEP][MAX_VALS]; /* into text */
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
        memcpy(g->text[i], c->sweep.values[i], VAL_CAP);
        g->text[i][VAL_CAP - 1] = 0;
        for (char *save = NULL, *tok = strtok_r(g->text[i], ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (g->nvals[i] == MAX_VALS) return err_set(err, "[sweep] %s: more than %d values", g->key[i], MAX_VALS);
            g->val[i][g->nvals[i]++] = trim(tok);
        }
        if (g->nvals[i] == 0) return err_set(err, "[sweep] %s has no values", g->key[i]);
    }
    return 0;
}

/* number of grid points, or -1 when above MAX_RUNS */
static long grid_points(const Grid *g) {
    long n = 1;
    for (int i = 0; i < g->nkeys; i++) {
        n *= g->nvals[i];
        if (n > MAX_RUNS) return -1;
    }
    return n;
}

/* value index of key i at grid point p (last key varies fastest) */
static int grid_index(const Grid *g, long p, int i) {
    for (int k = g->nkeys - 1; k > i; k--) p /= g->nvals[k];
    return (int)(p % g->nvals[i]);
}

static const char *grid_value(const Grid *g, long p, int i) { return g->val[i][grid_index(g, p, i)]; }

/* "model.layers=2,model.eig_range=extended" -> a directory-safe label; -1 if it does not fit */
static int point_label(const Grid *g, long p, char *out, size_t n) {
    size_t o = 0;
    out[0] = 0;
    if (g->nkeys == 0) o = snprintf(out, n, "base");
    for (int i = 0; i < g->nkeys && o < n; i++) {
        const char *k = strchr(g->key[i], '.') ? strchr(g->key[i], '.') + 1 : g->key[i];
        o += snprintf(out + o, n - o, "%s%s=%s", i ? "," : "", k, grid_value(g, p, i));
    }
    if (o >= n) return -1;
    for (char *c = out; *c; c++)
        if (!(isalnum((unsigned char)*c) || strchr("=,._-", *c))) *c = '_';
    return 0;
}

/* the resolved config of one run: base + the point's values + its seed */
static int run_config(const RunConfig *base, const Grid *g, long p, long seed, RunConfig *out, Err *err) {
    *out = *base;
    char a[CFG_STR + VAL_CAP + 8];
    for (int i = 0; i < g->nkeys; i++) {
        snprintf(a, sizeof a, "%s=%s", g->key[i], grid_value(g, p, i));
        if (config_set(out, a, err)) return -1;
    }
    snprintf(a, sizeof a, "experiment.seeds=%ld", seed);
    if (config_set(out, a, err)) return -1;
    return config_validate(out, err);
}

/* ---- runs and their directories ----------------------------------------------------------------- */

typedef enum { PLAN_NEW, PLAN_CONTINUE, PLAN_FINISHED, PLAN_DIVERGED } Plan;

typedef struct {
    char name[600]; /* <label>-seed<seed> */
    char dir[2048];
    char log[2100];
    long point, seed;
    Plan plan;
    char status[32]; /* the summary's status once the sweep is over; "" when there is none */
    pid_t pid;
    int exit_code; /* -1: not run by this sweep */
} Run;

static int file_exists(const char *p) { return access(p, F_OK) == 0; }

/* DIR/summary.json parsed, or NULL when absent or unreadable (caller cJSON_Deletes) */
static cJSON *read_summary(const char *dir) {
    char p[2100];
    snprintf(p, sizeof p, "%s/summary.json", dir);
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 16384;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, 4096, f);
        len += got;
        if (got < 4096) break;
    }
    int bad = ferror(f);
    fclose(f);
    cJSON *j = NULL;
    if (!bad) {
        buf[len] = 0;
        j = cJSON_Parse(buf);
    }
    free(buf);
    return j;
}

/* the run's status ("completed", "interrupted", ...) into status; "" when there is no readable summary */
static void summary_status(const char *dir, char *status, size_t n) {
    cJSON *j = read_summary(dir);
    const cJSON *s = j ? cJSON_GetObjectItem(j, "status") : NULL;
    snprintf(status, n, "%s", cJSON_IsString(s) ? s->valuestring : "");
    cJSON_Delete(j);
}

static int is_finished(const char *status) { return !strcmp(status, "completed") || !strcmp(status, "early_stopped"); }

/* the value part of a "key = value[ ; choices]" line of config_to_ini, into out */
static void ini_value(const char *line, size_t len, char *out, size_t n) {
    const char *eq = memchr(line, '=', len);
    const char *v = eq ? eq + 1 : line + len, *e = line + len;
    while (v < e && *v == ' ') v++;
    for (const char *s = v; s + 1 < e; s++)
        if (s[0] == ' ' && s[1] == ';') e = s;
    snprintf(out, n, "%.*s", (int)(e - v), v);
}

/* Compares DIR/config.ini with the run's resolved config `want`, ignoring train.threads,
 * experiment.notes and [sweep]. Returns 0 when equal, else 1 with the differences in msg. */
static int config_differs(const char *dir, const RunConfig *want, char *msg, size_t n) {
    char p[2100];
    snprintf(p, sizeof p, "%s/config.ini", dir);
    RunConfig *st = xmalloc(sizeof *st);
    config_defaults(st);
    Err e = {{0}};
    if (config_load(st, p, &e)) {
        snprintf(msg, n, "its config.ini cannot be read (%s)", e.msg);
        free(st);
        return 1;
    }
    st->train.threads = want->train.threads;
    memcpy(st->experiment.notes, want->experiment.notes, sizeof st->experiment.notes);
    memcpy(&st->sweep, &want->sweep, sizeof st->sweep);
    char *a = config_to_ini(st), *b = config_to_ini(want);
    free(st);
    size_t o = 0;
    int ndiff = 0;
    msg[0] = 0;
    char section[CFG_STR] = "";
    const char *x = a, *y = b;
    while (*x && *y) {
        size_t lx = strcspn(x, "\n"), ly = strcspn(y, "\n");
        if (x[0] == '[') snprintf(section, sizeof section, "%.*s", (int)(lx > 2 ? lx - 2 : 0), x + 1);
        if (lx != ly || memcmp(x, y, lx)) {
            char key[CFG_STR], vx[VAL_CAP], vy[VAL_CAP];
            snprintf(key, sizeof key, "%.*s", (int)strcspn(x, " ="), x);
            ini_value(x, lx, vx, sizeof vx);
            ini_value(y, ly, vy, sizeof vy);
            if (o < n)
                o += snprintf(msg + o, n - o, "%s%s.%s (run: %s, this sweep: %s)", ndiff ? "; " : "", section, key,
                              vx, vy);
            ndiff++;
        }
        x += lx + (x[lx] == '\n'), y += ly + (y[ly] == '\n');
    }
    if (!ndiff && (*x || *y)) snprintf(msg, n, "its config.ini differs"), ndiff = 1;
    free(a), free(b);
    return ndiff > 0;
}

/* ---- command lines -------------------------------------------------------------------------------- */

void sweep_sh_quote(FILE *f, const char *s) {
    int plain = *s != 0;
    for (const char *c = s; *c && plain; c++)
        plain = isalnum((unsigned char)*c) || strchr("_@%+=:,./-", *c);
    if (plain) {
        fputs(s, f);
        return;
    }
    fputc('\'', f);
    for (; *s; s++)
        if (*s == '\'') fputs("'\\''", f);
        else fputc(*s, f);
    fputc('\'', f);
}

typedef struct {
    char *v[2 * (MAX_SETS + CFG_MAX_SWEEP) + 16];
    char store[CFG_MAX_SWEEP + 4][2200]; /* "key=value" of the grid, numbers, DIR/config.ini */
    int n, ns;
} Argv;

static char *argv_fmt(Argv *a, const char *fmt, const char *s, long x) {
    char *d = a->store[a->ns++];
    if (s) snprintf(d, sizeof a->store[0], fmt, s, x);
    else snprintf(d, sizeof a->store[0], fmt, x);
    return d;
}

/* `train CONFIG --set ... [--out DIR]` of a fresh run (DIR NULL: no --out) */
static void fresh_argv(Argv *a, const char *self, const char *cfg, const char *const *sets, int nsets,
                       const Grid *g, const Run *r, int threads, long stop_after, const char *dir) {
    a->n = a->ns = 0;
    a->v[a->n++] = (char *)self;
    a->v[a->n++] = "train";
    a->v[a->n++] = (char *)cfg;
    for (int i = 0; i < nsets; i++) a->v[a->n++] = "--set", a->v[a->n++] = (char *)sets[i];
    for (int i = 0; i < g->nkeys; i++) {
        char *d = a->store[a->ns++];
        snprintf(d, sizeof a->store[0], "%s=%s", g->key[i], grid_value(g, r->point, i));
        a->v[a->n++] = "--set", a->v[a->n++] = d;
    }
    a->v[a->n++] = "--set", a->v[a->n++] = argv_fmt(a, "experiment.seeds=%ld", NULL, r->seed);
    if (threads > 0) a->v[a->n++] = "--set", a->v[a->n++] = argv_fmt(a, "train.threads=%ld", NULL, threads);
    if (dir) a->v[a->n++] = "--out", a->v[a->n++] = (char *)dir;
    if (stop_after > 0) a->v[a->n++] = "--stop-after", a->v[a->n++] = argv_fmt(a, "%ld", NULL, stop_after);
    a->v[a->n] = NULL;
}

/* `train DIR/config.ini --resume DIR --set train.threads=N`: the run's own config with this sweep's thread
 * count (which cannot change a result); train decides how to continue it */
static void continue_argv(Argv *a, const char *self, const Run *r, int threads, long stop_after) {
    a->n = a->ns = 0;
    a->v[a->n++] = (char *)self;
    a->v[a->n++] = "train";
    a->v[a->n++] = argv_fmt(a, "%s/config.ini", r->dir, 0);
    a->v[a->n++] = "--resume";
    a->v[a->n++] = (char *)r->dir;
    if (threads > 0) a->v[a->n++] = "--set", a->v[a->n++] = argv_fmt(a, "train.threads=%ld", NULL, threads);
    if (stop_after > 0) a->v[a->n++] = "--stop-after", a->v[a->n++] = argv_fmt(a, "%ld", NULL, stop_after);
    a->v[a->n] = NULL;
}

static void print_argv(FILE *f, char *const *v, int n) {
    for (int k = 0; k < n; k++) {
        if (k) fputc(' ', f);
        sweep_sh_quote(f, v[k]);
    }
}

/* ---- the Slurm script ---------------------------------------------------------------------------- */

/* text that an #SBATCH line carries verbatim (sbatch splits on blanks, strips quotes, expands %) */
static const char *sbatch_problem(const char *s) {
    for (const char *c = s; *c; c++) {
        if (iscntrl((unsigned char)*c) || *c == ' ') return "a space or control character";
        if (strchr("'\"\\%#", *c)) return "a quote, backslash, '%' or '#'";
    }
    return NULL;
}

/* A Slurm time limit (sbatch --time), checked here so that a typo fails before submission: minutes,
 * M:S, H:M:S, D-H, D-H:M or D-H:M:S; digits only; after the leading field minutes and seconds below 60,
 * hours below 24 after a day count; not zero (zero is "no limit" to Slurm: leave --time out instead). */
static int check_slurm_time(const char *s, Err *err) {
    static const char *HOW = "give HH:MM:SS, D-HH:MM:SS or minutes (Slurm's formats, e.g. 02:00:00, 1-12:00:00, 90)";
    long f[4] = {0}, days = -1;
    int nf = 0;
    const char *c = s;
    for (;;) {
        if (!isdigit((unsigned char)*c)) return err_set(err, "--time '%s' is not a time limit: %s", s, HOW);
        long v = 0;
        int nd = 0;
        for (; isdigit((unsigned char)*c); c++, nd++) v = v * 10 + (*c - '0');
        if (nd > 6) return err_set(err, "--time '%s': a field has more than 6 digits: %s", s, HOW);
        if (*c == '-' && days < 0 && nf == 0) {
            days = v, c++;
            continue;
        }
        f[nf++] = v;
        if (*c == 0) break;
        if (*c != ':' || nf == 3) return err_set(err, "--time '%s' is not a time limit: %s", s, HOW);
        c++;
    }
    long h = 0, m = 0, sec = 0;
    if (days >= 0) h = f[0], m = nf > 1 ? f[1] : 0, sec = nf > 2 ? f[2] : 0;
    else if (nf == 1) m = f[0];
    else if (nf == 2) m = f[0], sec = f[1];
    else h = f[0], m = f[1], sec = f[2];
    if (days >= 0 && h > 23) return err_set(err, "--time '%s': hours must be below 24 after a day count: %s", s, HOW);
    if (nf >= 2 && (f[nf - 1] > 59 || (nf == 3 && f[1] > 59)))
        return err_set(err, "--time '%s': minutes and seconds must be below 60: %s", s, HOW);
    if ((days > 0 ? days : 0) + h + m + sec == 0)
        return err_set(err, "--time '%s' is zero, which Slurm takes as no limit: give a positive limit, or leave "
                            "--time out for the partition's default", s);
    return 0;
}

/* A memory size (sbatch --mem): digits and an optional unit K, M, G or T (either case; Slurm's default
 * unit is M), at least 1M; 0 (Slurm's "all of a node's memory") is refused. *mib (may be NULL): the size
 * in MiB, rounded down. */
static int check_slurm_mem(const char *s, long *mib, Err *err) {
    static const char *HOW = "give a whole number with an optional unit K, M, G or T (e.g. 500M, 4G; no unit = M)";
    const char *c = s;
    long v = 0;
    int nd = 0;
    for (; isdigit((unsigned char)*c); c++, nd++) v = v * 10 + (*c - '0');
    if (nd == 0 || nd > 9 || (*c && (c[1] || !strchr("KMGTkmgt", *c))))
        return err_set(err, "--mem '%s' is not a memory size: %s", s, HOW);
    const int u = toupper((unsigned char)*c);
    if (v == 0 || (u == 'K' && v < 1024))
        return err_set(err, "--mem '%s' is below 1M: %s (Slurm's --mem=0, a whole node's memory, is not offered)", s,
                       HOW);
    if (mib) *mib = u == 'K' ? v / 1024 : u == 'G' ? v * 1024 : u == 'T' ? v * 1024 * 1024 : v;
    return 0;
}

/* Slurm partition names (sbatch --partition): one or a comma-separated list, each of letters, digits,
 * '_', '-' and '.'. */
static int check_slurm_partition(const char *s, Err *err) {
    size_t n = strlen(s);
    int ok = n > 0 && n <= 256 && s[0] != ',' && s[n - 1] != ',' && !strstr(s, ",,");
    for (const char *c = s; *c && ok; c++) ok = isalnum((unsigned char)*c) || strchr("_-.,", *c);
    if (!ok)
        return err_set(err, "--partition '%s' is not a partition name: use letters, digits, '_', '-' and '.', or a "
                            "comma-separated list of such names (at most 256 characters; see `sinfo -s`)", s);
    return 0;
}

typedef struct {
    const RunConfig *c;
    const Grid *g;
    const Run *runs;
    long nruns;
    const char *self, *cfg_abs, *root_abs, *cwd;
    const char *const *sets;
    int nsets, cpus;                         /* cpus: --cpus-per-task and each run's train.threads */
    const char *time, *mem, *partition;      /* validated; NULL = not given (the cluster's default) */
} SlurmSpec;

/* the script's text (caller frees), or NULL with err set */
static char *slurm_script(const SlurmSpec *s, size_t *len, Err *err) {
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f) return err_set(err, "cannot build the Slurm script: out of memory"), NULL;
    const char *bad = sbatch_problem(s->root_abs);
    if (bad) {
        fclose(f), free(buf);
        err_set(err, "the sweep directory '%s' contains %s, which an #SBATCH --output line cannot carry: choose an "
                     "--out path without them", s->root_abs, bad);
        return NULL;
    }
    fprintf(f, "#!/bin/sh\n"
               "# rwkvlab sweep %s: %ld runs, one per array index (written by rwkvlab %s).\n"
               "# Submit with: sbatch %s/sweep.slurm   (RWKVLAB=/path/to/rwkvlab overrides the binary)\n"
               "# A requeued or resubmitted task continues its run (train --resume) when the run directory\n"
               "# has a config.ini, and does nothing when the run already has a final result.\n"
               "# Afterwards: rwkvlab sweep CONFIG --out %s --report   (the table and sweep.json)\n",
            s->c->experiment.name, s->nruns, RWKVLAB_VERSION, s->root_abs, s->root_abs);
    fprintf(f, "#SBATCH --job-name=%s\n#SBATCH --array=0-%ld\n#SBATCH --cpus-per-task=%d\n"
               "#SBATCH --output=%s/slurm-%%A_%%a.out\n#SBATCH --open-mode=append\n",
            s->c->experiment.name, s->nruns - 1, s->cpus, s->root_abs);
    /* checked by parse_opts to hold only characters an #SBATCH line carries as they are */
    if (s->time) fprintf(f, "#SBATCH --time=%s\n", s->time);
    if (s->mem) fprintf(f, "#SBATCH --mem=%s\n", s->mem);
    if (s->partition) fprintf(f, "#SBATCH --partition=%s\n", s->partition);
    if (!sbatch_problem(s->cwd)) fprintf(f, "#SBATCH --chdir=%s\n", s->cwd);
    fprintf(f, "set -eu\ncd ");
    sweep_sh_quote(f, s->cwd);
    fprintf(f, "\nif [ -z \"${RWKVLAB:-}\" ]; then RWKVLAB=");
    sweep_sh_quote(f, s->self);
    fprintf(f, "; fi\ntask=${SLURM_ARRAY_TASK_ID:?not set: submit this script with sbatch}\ncase $task in\n");
    Argv *a = xmalloc(sizeof *a);
    char dir[4096];
    for (long r = 0; r < s->nruns; r++) {
        snprintf(dir, sizeof dir, "%s/%s", s->root_abs, s->runs[r].name);
        fresh_argv(a, s->self, s->cfg_abs, s->sets, s->nsets, s->g, &s->runs[r], s->cpus, 0, NULL);
        fprintf(f, "  %ld) dir=", r);
        sweep_sh_quote(f, dir);
        fprintf(f, "; set --");
        for (int k = 2; k < a->n; k++) fputc(' ', f), sweep_sh_quote(f, a->v[k]);
        fprintf(f, " ;;\n");
    }
    free(a);
    fprintf(f, "  *) echo \"rwkvlab sweep: no run for array index $task (this script has 0-%ld)\" >&2; exit 1 ;;\n"
               "esac\n",
            s->nruns - 1);
    /* every line of the task's own says when, where and which job; the run's output comes in between */
    fprintf(f, "say() {\n"
               "  printf 'rwkvlab sweep task %%s (job %%s_%%s, %%s, %%s): %%s\\n' \"$task\" \\\n"
               "    \"${SLURM_ARRAY_JOB_ID:-?}\" \"$task\" \"$(hostname 2>/dev/null || echo '?')\" \\\n"
               "    \"$(date '+%%Y-%%m-%%d %%H:%%M:%%S')\" \"$*\"\n"
               "}\n"
               "if [ -f \"$dir/summary.json\" ] &&\n"
               "   grep -Eq '\"status\":[[:space:]]*\"(completed|early_stopped|diverged)\"' \"$dir/summary.json\"; then\n"
               "  say \"$dir already has a final result; nothing to do\"\n"
               "  exit 0\n"
               "fi\n"
               "# SIGTERM (scancel, the time limit, preemption) reaches the run too, which checkpoints and\n"
               "# exits 130; the shell waits for it and then says so.\n"
               "sig=\n"
               "trap 'sig=SIGTERM' TERM\n"
               "rc=0\n"
               "if [ -f \"$dir/config.ini\" ]; then\n"
               "  say \"continuing $dir (train --resume)\"\n"
               "  \"$RWKVLAB\" train \"$dir/config.ini\" --resume \"$dir\" --set train.threads=%d || rc=$?\n"
               "else\n"
               "  say \"starting $dir\"\n"
               "  \"$RWKVLAB\" train \"$@\" --out \"$dir\" || rc=$?\n"
               "fi\n"
               "case $rc in\n"
               "  0) say \"done: $dir\" ;;\n"
               "  3) say \"diverged (exit 3): a final result, not retried; see $dir/run.log\" ;;\n"
               "  130) say \"interrupted${sig:+ by $sig} (exit 130): the run checkpointed; submit this script again to "
               "continue it\" ;;\n"
               "  126|127) say \"FAILED: cannot execute '$RWKVLAB' (exit $rc): set RWKVLAB to the rwkvlab binary on "
               "this cluster\" ;;\n"
               "  *) say \"FAILED (exit $rc)${sig:+ after $sig}: the run's error is above (and in $dir/run.log once "
               "the run has started); fix the cause, then submit this script again\" ;;\n"
               "esac\n"
               "exit $rc\n",
            s->cpus);
    if (fclose(f)) {
        free(buf);
        err_set(err, "cannot build the Slurm script: out of memory");
        return NULL;
    }
    return buf;
}

/* ---- aggregation ---------------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* seq_acc of the eval entry with this length, or NAN when the summary has none */
static double seq_acc_at(const cJSON *summary, int length) {
    const cJSON *ev = cJSON_GetObjectItem(summary, "eval");
    if (!cJSON_IsArray(ev)) return NAN;
    for (const cJSON *e = ev->child; e; e = e->next) {
        const cJSON *l = cJSON_GetObjectItem(e, "length"), *s = cJSON_GetObjectItem(e, "seq_acc");
        if (cJSON_IsNumber(l) && l->valuedouble == length)
            return cJSON_IsNumber(s) && isfinite(s->valuedouble) ? s->valuedouble : NAN;
    }
    return NAN;
}

/* ROOT/sweep.json + a table: per grid point and test length, median and best seq_acc over the seeds with
 * a finished run. Returns -1 (err set) when sweep.json cannot be written. */
static int aggregate(const char *root, const Grid *g, Run *runs, long nruns, const RunConfig *c, Err *err) {
    const int nl = c->task.ntest_lens, ns = c->experiment.nseeds;
    cJSON *out = cJSON_CreateObject(), *pts = cJSON_AddArrayToObject(out, "points");
    cJSON_AddStringToObject(out, "experiment", c->experiment.name);
    cJSON_AddStringToObject(out, "statistic", "sequence accuracy per test length across the seeds with a finished "
                                              "run (completed or early_stopped): median and best; null = no "
                                              "finished run has that length");
    long np = grid_points(g);
    printf("\nsequence accuracy across seeds (median/best; n = seeds with a finished run, div = diverged, "
           "unf = unfinished; (k) = only k seeds have that length; - = none):\n");
    printf("  %-40s %3s %3s %3s", "grid point", "n", "div", "unf");
    for (int li = 0; li < nl; li++) printf("  %17d", c->task.test_lens[li]);
    printf("\n");
    double *acc = xmalloc((size_t)(ns > 0 ? ns : 1) * sizeof(double));
    for (long p = 0; p < np; p++) {
        cJSON *pj = cJSON_CreateObject(), *rj = cJSON_CreateArray();
        char label[512];
        point_label(g, p, label, sizeof label);
        int n = 0, ndiv = 0, nunf = 0;
        cJSON **sum = xcalloc(ns > 0 ? ns : 1, sizeof(cJSON *));
        int k = 0;
        for (long r = 0; r < nruns; r++) {
            if (runs[r].point != p) continue;
            cJSON *j = read_summary(runs[r].dir);
            const cJSON *st = j ? cJSON_GetObjectItem(j, "status") : NULL;
            snprintf(runs[r].status, sizeof runs[r].status, "%s", cJSON_IsString(st) ? st->valuestring : "");
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "seed", runs[r].seed);
            cJSON_AddStringToObject(e, "status", runs[r].status[0] ? runs[r].status : "none");
            cJSON_AddStringToObject(e, "dir", runs[r].dir);
            cJSON_AddItemToArray(rj, e);
            if (is_finished(runs[r].status) && k < ns) sum[k++] = j, n++;
            else {
                if (!strcmp(runs[r].status, "diverged")) ndiv++;
                else nunf++;
                cJSON_Delete(j);
            }
        }
        cJSON_AddStringToObject(pj, "point", label);
        cJSON_AddNumberToObject(pj, "seeds", n);
        cJSON_AddNumberToObject(pj, "seeds_planned", ns);
        cJSON_AddNumberToObject(pj, "diverged", ndiv);
        cJSON_AddNumberToObject(pj, "unfinished", nunf);
        cJSON *lens = cJSON_AddArrayToObject(pj, "lengths");
        printf("  %-40s %3d %3d %3d", label, n, ndiv, nunf);
        for (int li = 0; li < nl; li++) {
            int m = 0;
            for (int s = 0; s < k; s++) {
                double v = seq_acc_at(sum[s], c->task.test_lens[li]);
                if (!isnan(v)) acc[m++] = v;
            }
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "length", c->task.test_lens[li]);
            cJSON_AddNumberToObject(e, "n", m);
            if (m > 0) {
                qsort(acc, m, sizeof(double), cmp_double);
                double med = m % 2 ? acc[m / 2] : 0.5 * (acc[m / 2 - 1] + acc[m / 2]);
                cJSON_AddNumberToObject(e, "seq_acc_median", med);
                cJSON_AddNumberToObject(e, "seq_acc_best", acc[m - 1]);
                char cell[64], cnt[16] = "";
                if (m < n) snprintf(cnt, sizeof cnt, " (%d)", m);
                snprintf(cell, sizeof cell, "%.3f/%.3f%s", med, acc[m - 1], cnt);
                printf("  %17s", cell);
            } else {
                cJSON_AddNullToObject(e, "seq_acc_median");
                cJSON_AddNullToObject(e, "seq_acc_best");
                printf("  %17s", "-");
            }
            cJSON_AddItemToArray(lens, e);
        }
        printf("\n");
        cJSON_AddItemToObject(pj, "runs", rj);
        cJSON_AddItemToArray(pts, pj);
        for (int s = 0; s < k; s++) cJSON_Delete(sum[s]);
        free(sum);
    }
    free(acc);
    char path[2100];
    snprintf(path, sizeof path, "%s/sweep.json", root);
    int rc = json_write_atomic(path, out, err);
    if (!rc) printf("wrote %s\n", path);
    cJSON_Delete(out);
    return rc;
}

/* ---- running -------------------------------------------------------------------------------------- */

static volatile sig_atomic_t g_sweep_stop = 0;
static void on_sweep_signal(int sig) { g_sweep_stop = sig; }

/* opens the run's log for appending and writes the attempt's header; the fd, or -1 with err set */
static int open_run_log(const Run *r, const char *what, char *const *v, int n, Err *err) {
    int fd = open(r->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return err_set(err, "cannot open the log '%s': %s", r->log, strerror(errno));
    char ts[64];
    time_t now = time(NULL);
    strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S %z", localtime(&now));
    char *hdr = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&hdr, &len);
    CHECK(m != NULL, "open_memstream failed (out of memory?)");
    fprintf(m, "\n===== rwkvlab sweep %s, %s: %s =====\n$ ", RWKVLAB_VERSION, ts, what);
    print_argv(m, v, n);
    fputc('\n', m);
    CHECK(fclose(m) == 0, "formatting a log header failed (out of memory?)");
    ssize_t w = write(fd, hdr, len);
    free(hdr);
    if (w != (ssize_t)len) {
        err_set(err, "cannot write the log '%s': %s", r->log, w < 0 ? strerror(errno) : "short write (disk full?)");
        close(fd);
        return -1;
    }
    return fd;
}

static pid_t start_run(const char *self, char *const *v, int fd) {
    pid_t pid = fork();
    if (pid == 0) {
        if (dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0) _exit(126);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) dup2(nul, STDIN_FILENO);
        execv(self, v);
        dprintf(STDERR_FILENO, "rwkvlab sweep: cannot execute '%s': %s\n", self, strerror(errno));
        _exit(127);
    }
    return pid;
}

/* ---- the command ---------------------------------------------------------------------------------- */

typedef struct {
    const char *cfgp, *out, *sets[MAX_SETS];
    int nsets, slurm, dry, report;
    long jobs, stop_after;
    const char *time, *mem, *partition; /* --slurm only; NULL = not given */
    long cpus;                          /* --cpus-per-task; 0 = not given */
} Opts;

/* one sweep: the base config, the grid, the runs, and what is needed to start them */
typedef struct {
    const Opts *o;
    RunConfig *c, *t; /* the base config; t a scratch config of one run */
    Grid *g;
    long np, nruns;
    Run *runs;
    char root[1800];
    char self[4096]; /* this binary */
    int threads;     /* train.threads of each local run */
    Argv *av;
} Sweep;

typedef struct {
    int failed, unfinished, diverged;
} Tally;

static void usage(FILE *f) {
    fprintf(f,
            "usage: rwkvlab sweep CONFIG [--set section.key=value ...] [--jobs N] [--out DIR]\n"
            "                            [--slurm [--time T] [--mem SIZE] [--partition NAME] [--cpus-per-task N]\n"
            "                             | --dry-run | --report]\n"
            "  runs the config's [sweep] grid x experiment.seeds with `rwkvlab train` (N at a time, default 1;\n"
            "  each with train.threads = cores / N unless the config sets it). Running it again continues the sweep: finished runs are\n"
            "  skipped, diverged runs are reported and not retried, every other run with a directory is\n"
            "  continued with `train --resume`; a run directory holding another config is an error.\n"
            "  Each run's output is appended to DIR/<run>.log. DIR defaults to results/<experiment>/sweep.\n"
            "  --slurm    write DIR/sweep.slurm (a job array, one index per run) instead of running; with it:\n"
            "               --time T          time limit per run (HH:MM:SS, D-HH:MM:SS or minutes)\n"
            "               --mem SIZE        memory per run (e.g. 500M, 4G; no unit = M), at least each\n"
            "                                 run's estimated need + 64M\n"
            "               --partition NAME  partition (or a comma-separated list)\n"
            "               --cpus-per-task N CPUs per run, and its train.threads (default: train.threads if\n"
            "                                 set, else this machine's cores / --jobs)\n"
            "  --dry-run  list what each run would do, with its command line\n"
            "  --report   run nothing: only the table and DIR/sweep.json (median and best across seeds)\n"
            "  testing aid: --stop-after STEP (passed to every train)\n");
}

/* 0 ok, 1 error (printed), 2 --help: the one option parser (opts.h) */
static int parse_opts(int argc, char **argv, Opts *o) {
    memset(o, 0, sizeof *o);
    o->jobs = 1;
    OptSpec spec[] = {
        O_STRS("--set", o->sets, MAX_SETS, &o->nsets),
        O_LONG("--jobs", &o->jobs, 1, 4096),
        O_LONG("--stop-after", &o->stop_after, 1, INT_MAX),
        O_STR("--out", &o->out),
        O_FLAG("--slurm", &o->slurm),
        O_FLAG("--dry-run", &o->dry),
        O_FLAG("--report", &o->report),
        O_STR("--time", &o->time),
        O_STR("--mem", &o->mem),
        O_STR("--partition", &o->partition),
        O_LONG("--cpus-per-task", &o->cpus, 1, 4096),
    };
    OptParser p = {.cmd = "sweep", .specs = spec, .nspecs = OPTS_N(spec), .pos_name = "CONFIG", .pos_min = 1,
                   .pos_max = 1, .pos = &o->cfgp};
    Err err = {{0}};
    int rc = opts_parse(&p, argc, argv, &err);
    if (rc == OPTS_HELP) return usage(stdout), 2;
    const int slurm_opt = o->time || o->mem || o->partition || o->cpus;
    const char *bad = rc ? err.msg
                      : o->slurm + o->dry + o->report > 1 ? "--slurm, --dry-run and --report exclude each other"
                      : o->out && !*o->out                ? "--out is empty"
                      : slurm_opt && !o->slurm ? "--time, --mem, --partition and --cpus-per-task are for the Slurm "
                                                 "script: add --slurm (a local sweep takes --jobs)"
                      : (o->time && check_slurm_time(o->time, &err)) || (o->mem && check_slurm_mem(o->mem, NULL, &err)) ||
                              (o->partition && check_slurm_partition(o->partition, &err))
                          ? err.msg
                          : NULL;
    if (bad) {
        fprintf(stderr, "rwkvlab sweep: %s\n", bad);
        usage(stderr);
        return 1;
    }
    return 0;
}

/* config, grid (every point validated), run directories and names */
static int sweep_setup(Sweep *s, Err *err) {
    const Opts *o = s->o;
    RunConfig *c = s->c;
    config_defaults(c);
    if (config_load(c, o->cfgp, err)) return -1;
    for (int i = 0; i < o->nsets; i++)
        if (config_set(c, o->sets[i], err)) return -1;
    if (config_validate(c, err) || grid_from_config(c, s->g, err)) return -1;
    const int ns = c->experiment.nseeds;
    s->np = grid_points(s->g);
    if (s->np < 0 || s->np * ns > MAX_RUNS)
        return err_set(err, "the [sweep] grid x seeds has more than %d runs: split the sweep", MAX_RUNS);
    s->nruns = s->np * ns;
    char label[512];
    for (long p = 0; p < s->np; p++) /* every grid point must itself be a valid config */
        if (run_config(c, s->g, p, c->experiment.seeds[0], s->t, err)) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            point_label(s->g, p, label, sizeof label);
            return err_set(err, "grid point %s is not a valid config: %s", label, why);
        }
    int rl = o->out ? snprintf(s->root, sizeof s->root, "%s", o->out)
                    : snprintf(s->root, sizeof s->root, "results/%s/sweep", c->experiment.name);
    if (rl < 0 || (size_t)rl >= sizeof s->root)
        return err_set(err, "the sweep directory '%.60s...' is too long (at most %zu characters)", s->root,
                       sizeof s->root - 1);
    s->runs = xcalloc(s->nruns, sizeof(Run));
    for (long p = 0, r = 0; p < s->np; p++) {
        if (point_label(s->g, p, label, sizeof label))
            return err_set(err, "grid point %ld: its directory name (key=value,...) is longer than %zu characters: "
                                "sweep shorter values or fewer keys", p, sizeof label - 1);
        for (int k = 0; k < ns; k++, r++) {
            Run *u = &s->runs[r];
            u->point = p, u->seed = c->experiment.seeds[k], u->exit_code = -1;
            snprintf(u->name, sizeof u->name, "%s-seed%ld", label, u->seed);
            if ((size_t)snprintf(u->dir, sizeof u->dir, "%s/%s", s->root, u->name) >= sizeof u->dir)
                return err_set(err, "run directory '%s/%s' is too long: choose a shorter --out", s->root, u->name);
            snprintf(u->log, sizeof u->log, "%s/%s.log", s->root, u->name);
            /* two grid points whose values differ only in characters the label replaces */
            for (long q = r - ns; q >= 0 && k == 0; q -= ns)
                if (!strcmp(s->runs[q].name, u->name))
                    return err_set(err, "grid points %ld and %ld both map to the directory '%s' (characters other "
                                        "than letters, digits and =,._- become '_'): make the swept values differ "
                                        "in letters or digits", s->runs[q].point, p, u->dir);
        }
    }
    /* every run's train.threads, fresh or continued: the config's (after --set) when set, else cores / jobs
     * (the config's was once overridden by cores / jobs, and continued runs kept the thread count of their
     * first start: --jobs 1 then 2 ran two 2-thread runs on 2 cores, at 40% of their speed) */
    long ncores = sysconf(_SC_NPROCESSORS_ONLN);
    s->threads = c->train.threads > 0            ? c->train.threads
                 : ncores / s->o->jobs > 0 ? (int)(ncores / s->o->jobs)
                                           : 1;
    ssize_t sl = readlink("/proc/self/exe", s->self, sizeof s->self - 1);
    if (sl <= 0) return err_set(err, "cannot find this program's path (/proc/self/exe: %s)", strerror(errno));
    s->self[sl] = 0;
    return 0;
}

/* Plans each run from its directory. Returns the number of directories that hold another config (each
 * listed on stderr); the sweep must not go on when it is not 0. */
static int sweep_plan(Sweep *s, Err *err) {
    int nbad = 0;
    for (long r = 0; r < s->nruns; r++) {
        Run *u = &s->runs[r];
        char cp[2100], st[32], diff[2048];
        snprintf(cp, sizeof cp, "%s/config.ini", u->dir);
        summary_status(u->dir, st, sizeof st);
        const int have_cfg = file_exists(cp);
        u->plan = is_finished(st) ? PLAN_FINISHED : !strcmp(st, "diverged") ? PLAN_DIVERGED
                  : have_cfg      ? PLAN_CONTINUE : PLAN_NEW;
        int bad = 0;
        if (!have_cfg && (u->plan == PLAN_FINISHED || u->plan == PLAN_DIVERGED)) {
            snprintf(diff, sizeof diff, "has a %s summary.json but no config.ini to match with this sweep", st);
            bad = 1;
        } else if (have_cfg) {
            if (run_config(s->c, s->g, u->point, u->seed, s->t, err)) return -1;
            bad = config_differs(u->dir, s->t, diff, sizeof diff);
        }
        if (bad && nbad++ == 0)
            fprintf(stderr, "rwkvlab sweep: existing run directories in %s do not hold this sweep's config:\n",
                    s->root);
        if (bad && nbad <= 20) fprintf(stderr, "  %s: %s\n", u->dir, diff);
    }
    if (nbad)
        fprintf(stderr, "%s%d run director%s differ%s. A run keeps the config it was started with: choose another "
                        "--out for the changed sweep, or delete those run directories to redo them. Nothing was run.\n",
                nbad > 20 ? "  ...\n" : "", nbad, nbad == 1 ? "y" : "ies", nbad == 1 ? "s" : "");
    return nbad;
}

static void sweep_dry_run(Sweep *s) {
    static const char *what[] = {"start", "continue", "finished", "diverged"};
    for (long r = 0; r < s->nruns; r++) {
        Run *u = &s->runs[r];
        printf("  [%s] %s", what[u->plan], u->name);
        if (u->plan == PLAN_NEW || u->plan == PLAN_CONTINUE) {
            if (u->plan == PLAN_NEW)
                fresh_argv(s->av, s->self, s->o->cfgp, s->o->sets, s->o->nsets, s->g, u, s->threads, s->o->stop_after,
                           u->dir);
            else continue_argv(s->av, s->self, u, s->threads, s->o->stop_after);
            printf(": ");
            print_argv(stdout, s->av->v, s->av->n);
        }
        printf("\n");
    }
}

/* What a run needs beyond train's estimate (mem.h counts the large buffers only): the program, its
 * libraries and OpenBLAS's buffers, measured at 18-45 MiB peak RSS for tiny runs. */
#define SLURM_MEM_SLACK_MIB 64

/* --mem must hold every grid point's estimated training memory + SLURM_MEM_SLACK_MIB, or each task would
 * be killed for memory (and, resubmitted, killed again). RWKVLAB_FORCE_MEMORY=1 makes it a warning. */
static int slurm_mem_fits(Sweep *s, Err *err) {
    long mib = 0;
    if (!s->o->mem || check_slurm_mem(s->o->mem, &mib, err)) return s->o->mem ? -1 : 0;
    size_t worst = 0;
    long worst_p = 0;
    for (long p = 0; p < s->np; p++) {
        if (run_config(s->c, s->g, p, s->c->experiment.seeds[0], s->t, err)) return -1;
        Task *t = task_create(s->t, err);
        if (!t) return -1;
        const int vocab = task_vocab(t);
        task_free(t);
        const ModelArch *a = model_arch_find(s->t->model.arch);
        char dims[1024];
        if (!a) return err_set(err, "model.arch = %s is not known (available: %s)", s->t->model.arch, model_arch_names());
        if (mem_train_dims(s->t, vocab, a, dims, err)) return -1;
        size_t need = mem_train_bytes(s->t, a, dims, s->t->train.chunk > 0 ? s->t->train.chunk : 1, NULL);
        if (need > worst) worst = need, worst_p = p;
    }
    const long want = (long)((worst + ((size_t)1 << 20) - 1) >> 20) + SLURM_MEM_SLACK_MIB;
    if (mib >= want) return 0;
    char label[512], est[32];
    point_label(s->g, worst_p, label, sizeof label);
    err_set(err, "--mem %s is less than grid point %s needs: about %s estimated for training + %d MiB for the program "
                 "itself: give --mem %ldM or more (or a smaller model, train.batch or task.train_len; "
                 "RWKVLAB_FORCE_MEMORY=1 writes the script anyway)", s->o->mem, label, mem_fmt(worst, est, sizeof est),
            SLURM_MEM_SLACK_MIB, want);
    if (!mem_force_from_env()) return -1;
    fprintf(stderr, "rwkvlab sweep: warning (RWKVLAB_FORCE_MEMORY=1): %s\n", err->msg);
    return 0;
}

/* ROOT/sweep.slurm, written atomically; every step checked */
static int sweep_write_slurm(Sweep *s, Err *err) {
    char cfg_abs[PATH_MAX], root_abs[PATH_MAX], cwd[PATH_MAX], sp[PATH_MAX + 16];
    if (slurm_mem_fits(s, err)) return -1;
    if (!realpath(s->o->cfgp, cfg_abs)) return err_set(err, "cannot resolve '%s': %s", s->o->cfgp, strerror(errno));
    if (!getcwd(cwd, sizeof cwd)) return err_set(err, "cannot get the current directory: %s", strerror(errno));
    if (mkdir_p(s->root, err)) return -1;
    if (!realpath(s->root, root_abs)) return err_set(err, "cannot resolve '%s': %s", s->root, strerror(errno));
    SlurmSpec spec = {.c = s->c, .g = s->g, .runs = s->runs, .nruns = s->nruns, .self = s->self, .cfg_abs = cfg_abs,
                      .root_abs = root_abs, .cwd = cwd, .sets = s->o->sets, .nsets = s->o->nsets,
                      .cpus = s->o->cpus > 0               ? (int)s->o->cpus
                              : s->c->train.threads > 0 ? s->c->train.threads
                                                        : s->threads,
                      .time = s->o->time, .mem = s->o->mem, .partition = s->o->partition};
    size_t len = 0;
    char *script = slurm_script(&spec, &len, err);
    if (!script) return -1;
    snprintf(sp, sizeof sp, "%s/sweep.slurm", root_abs);
    int rc = write_file_atomic(sp, script, len, err);
    free(script);
    if (rc) return -1;
    if (chmod(sp, 0755)) return err_set(err, "cannot make '%s' executable: %s", sp, strerror(errno));
    printf("wrote %s (%zu bytes): submit it with sbatch; set RWKVLAB to the binary's path if it differs on the "
           "cluster. Afterwards the table: rwkvlab sweep ", sp, len);
    sweep_sh_quote(stdout, s->o->cfgp);
    printf(" --out ");
    sweep_sh_quote(stdout, s->root);
    printf(" --report\n");
    return 0;
}

/* starts run u (its log appended); 0, or -1 with err set */
static int sweep_start(Sweep *s, Run *u, Err *err) {
    const int cont = u->plan == PLAN_CONTINUE;
    if (cont) continue_argv(s->av, s->self, u, s->threads, s->o->stop_after);
    else fresh_argv(s->av, s->self, s->o->cfgp, s->o->sets, s->o->nsets, s->g, u, s->threads, s->o->stop_after, u->dir);
    int fd = open_run_log(u, cont ? "continuing the run" : "starting the run", s->av->v, s->av->n, err);
    if (fd < 0) return -1;
    fflush(stdout), fflush(stderr);
    u->pid = start_run(s->self, s->av->v, fd);
    close(fd);
    if (u->pid < 0) return err_set(err, "cannot start a process: %s", strerror(errno));
    printf("  [%s] %s\n", cont ? "continue" : "start", u->name);
    fflush(stdout);
    return 0;
}

/* a finished child: what its summary says now */
static void sweep_reap(Run *u, int status, Tally *t) {
    u->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    char st[32];
    summary_status(u->dir, st, sizeof st);
    if (is_finished(st)) {
        printf("  [done] %s\n", u->name);
    } else if (!strcmp(st, "diverged")) {
        printf("  [diverged] %s (a final result: reported, not retried; see %s)\n", u->name, u->log);
        t->diverged++;
    } else if (!strcmp(st, "interrupted")) {
        printf("  [interrupted] %s: run the sweep again to continue it\n", u->name);
        t->unfinished++;
    } else {
        printf("  [FAILED] %s (%s %d): see %s\n", u->name, WIFEXITED(status) ? "exit" : "signal",
               WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), u->log);
        t->failed++;
    }
    fflush(stdout);
}

/* runs every planned run, --jobs at a time; SIGINT/SIGTERM stop new starts and reach the running trains */
static void sweep_run_local(Sweep *s, Tally *t) {
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_sweep_signal; /* no SA_RESTART: wait() returns on a signal */
    sigemptyset(&sa.sa_mask);
    g_sweep_stop = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    int running = 0, forwarded = 0;
    long next = 0;
    Err err = {{0}};
    for (;;) {
        while (!g_sweep_stop && running < s->o->jobs && next < s->nruns) {
            Run *u = &s->runs[next++];
            if (u->plan == PLAN_FINISHED) {
                printf("  [skip] %s (already finished)\n", u->name);
            } else if (u->plan == PLAN_DIVERGED) {
                printf("  [diverged] %s: diverged earlier; a final result, not retried (delete %s to run it again)\n",
                       u->name, u->dir);
                t->diverged++;
            } else if (sweep_start(s, u, &err)) {
                fprintf(stderr, "  [FAILED] %s: %s\n", u->name, err.msg);
                t->failed++;
            } else {
                running++;
            }
        }
        if (g_sweep_stop && !forwarded) {
            for (long i = 0; i < s->nruns; i++)
                if (s->runs[i].pid > 0 && s->runs[i].exit_code < 0) kill(s->runs[i].pid, SIGTERM);
            forwarded = 1;
        }
        if (running == 0) break;
        int status;
        pid_t pid = wait(&status);
        if (pid < 0 && errno == EINTR) continue;
        if (pid < 0) break;
        for (long i = 0; i < s->nruns; i++)
            if (s->runs[i].pid == pid && s->runs[i].exit_code < 0) sweep_reap(&s->runs[i], status, t), running--;
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
}

/* the exit status, after the table */
static int sweep_finish(Sweep *s, Tally *t, int write_failed) {
    if (g_sweep_stop) {
        int left = 0;
        for (long r = 0; r < s->nruns; r++)
            left += !is_finished(s->runs[r].status) && strcmp(s->runs[r].status, "diverged");
        fprintf(stderr, "rwkvlab sweep: interrupted; %d run(s) without a final result. Run the same command again to "
                        "continue them.\n", left);
        return 130;
    }
    if (s->o->report) {
        t->unfinished = 0;
        for (long r = 0; r < s->nruns; r++)
            t->unfinished += !is_finished(s->runs[r].status) && strcmp(s->runs[r].status, "diverged");
        if (t->unfinished) printf("%d of %ld runs have no final result yet\n", t->unfinished, s->nruns);
    }
    if (t->diverged) printf("%d run(s) diverged: reported, not retried, left out of the medians\n", t->diverged);
    if (!s->o->report && (t->failed || t->unfinished))
        fprintf(stderr, "rwkvlab sweep: %d run(s) failed, %d interrupted: run the same command again to continue "
                        "them (each run's output is in %s/<run>.log)\n", t->failed, t->unfinished, s->root);
    if (write_failed) {
        fprintf(stderr, "rwkvlab sweep: the results were not saved: fix the cause above, then run: rwkvlab sweep ");
        sweep_sh_quote(stderr, s->o->cfgp);
        fprintf(stderr, " --out ");
        sweep_sh_quote(stderr, s->root);
        fprintf(stderr, " --report\n");
    }
    return t->failed || t->unfinished || write_failed ? 1 : 0;
}

int sweep_main(int argc, char **argv) {
    Opts o;
    int prc = parse_opts(argc, argv, &o);
    if (prc) return prc == 2 ? 0 : 1;
    Sweep S = {.o = &o, .c = xmalloc(sizeof(RunConfig)), .t = xmalloc(sizeof(RunConfig)), .g = xmalloc(sizeof(Grid)),
               .av = xmalloc(sizeof(Argv))};
    Sweep *s = &S;
    Err err = {{0}};
    Tally t = {0};
    int rc = 1;
    if (sweep_setup(s, &err)) goto fail;
    int nbad = sweep_plan(s, &err);
    if (nbad < 0) goto fail;
    if (nbad > 0) goto done;
    printf("sweep %s: %ld grid point(s) x %d seed(s) = %ld runs -> %s\n", s->c->experiment.name, s->np,
           s->c->experiment.nseeds, s->nruns, s->root);
    if (o.dry) {
        sweep_dry_run(s);
        rc = 0;
        goto done;
    }
    if (o.slurm) {
        if (sweep_write_slurm(s, &err)) goto fail;
        rc = 0;
        goto done;
    }
    if (!o.report) {
        if (mkdir_p(s->root, &err)) goto fail;
        sweep_run_local(s, &t);
    }
    int write_failed = aggregate(s->root, s->g, s->runs, s->nruns, s->c, &err) != 0;
    if (write_failed) fprintf(stderr, "rwkvlab sweep: %s\n", err.msg);
    rc = sweep_finish(s, &t, write_failed);
    goto done;
fail:
    fprintf(stderr, "rwkvlab sweep: %s\n", err.msg);
    rc = 1;
done:
    free(s->runs), free(s->av), free(s->g), free(s->t), free(s->c);
    return rc;
}
