/* lmeval_devices.c -- `rwkvlab lmeval --devices LIST`: one worker process per entry of LIST, each this same
 * binary re-executed as `lmeval ... --shard i/N --device D --out TMP/w<i>`, then their shard files merged
 * (lmeval_merge) into OUT, exactly as `lmeval-merge` would.
 *
 * Rules:
 *   - LIST: comma-separated entries, each `cpu` or a GPU index (0..9999, each index at most once), at most
 *     LMEVAL_DEVICES_MAX entries; N = the number of entries, worker i scores shard i/N.
 *   - A GPU entry g runs its worker with --device cuda and CUDA_VISIBLE_DEVICES=g; a cpu entry with
 *     --device cpu. Workers inherit the environment otherwise unchanged, thread settings included: the
 *     CPU engine's logprobs change in their last bits with OpenBLAS's thread count (measured: piqa
 *     -54.54470916009482 with 1 thread, -54.5447090476104 with 2), so a cpu worker matches an unsharded
 *     run only under the same OPENBLAS_NUM_THREADS / OMP_NUM_THREADS. Several cpu workers on one machine
 *     therefore share its cores (set those variables to cores/N for speed, and the same for the
 *     unsharded run it is compared with).
 *   - Workers run in TMP = OUTDIR/.rwkvlab-devices.<pid> (OUTDIR: where the results go); worker i's
 *     stdout is discarded, its stderr goes to TMP/w<i>.log. They die with the parent (PR_SET_PDEATHSIG);
 *     a parent killed by a signal leaves TMP behind (a hidden directory, safe to delete).
 *   - The first worker that fails (nonzero exit or a signal) fails the run: the others are stopped
 *     (SIGTERM), its log's tail is the error, TMP is removed and nothing is written to OUT. On success
 *     the merged results are published and TMP is removed.
 *   - --device and --shard are not taken with --devices (the list sets both per worker).
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lmeval.h"
#include "lmeval_out.h"
#include "lmeval_shard.h"

#define LMEVAL_DEVICES_MAX 64

typedef struct {
    int gpu; /* GPU index, or -1 for cpu */
    pid_t pid;
    int status, done;
    char dir[4200], log[4200];
} Worker;

/* LIST -> w[0..*n) */
static int parse_devices(const char *list, Worker *w, int *n, Err *err) {
    *n = 0;
    const char *s = list;
    for (int idx = 1;; idx++) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (*n == LMEVAL_DEVICES_MAX) return err_set(err, "--devices %.200s: more than %d entries", list, LMEVAL_DEVICES_MAX);
        if (len == 3 && !memcmp(s, "cpu", 3)) w[*n].gpu = -1;
        else {
            long g = 0;
            size_t k = 0;
            for (; k < len && k < 4 && s[k] >= '0' && s[k] <= '9'; k++) g = g * 10 + (s[k] - '0');
            if (!len || k != len)
                return err_set(err, "--devices %.200s: entry %d ('%.*s') is neither cpu nor a GPU index; give e.g. "
                                    "--devices 0,1 (GPUs 0 and 1) or --devices cpu,cpu",
                               list, idx, (int)(len > 40 ? 40 : len), s);
            for (int q = 0; q < *n; q++)
                if (w[q].gpu == g)
                    return err_set(err, "--devices %.200s: GPU %ld is listed twice; list each GPU once", list, g);
            w[*n].gpu = (int)g;
        }
        (*n)++;
        if (!e) return 0;
        s = e + 1;
    }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f) { return remove(path); }
static void rm_tree(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* the last part of a worker's log (its error message is at the end), into out */
static void log_tail(const char *path, char *out, size_t cap) {
    out[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long len = ftell(f), take = len < 700 ? len : 700;
    fseek(f, len - take, SEEK_SET);
    size_t k = fread(out, 1, cap - 1 < (size_t)take ? cap - 1 : (size_t)take, f);
    fclose(f);
    out[k] = 0;
    while (k && (out[k - 1] == '\n' || out[k - 1] == ' ')) out[--k] = 0;
    const char *nl = take < len ? strchr(out, '\n') : NULL; /* start at a line */
    if (nl) memmove(out, nl + 1, strlen(nl + 1) + 1);
}

/* argv of worker i: the user's options without --devices and --out, then its own --shard, --device, --out */
static char **worker_argv(int argc, char **argv, int i, int n, const Worker *w, char *shard, size_t scap, Err *err) {
    char **a = xcalloc((size_t)argc + 10, sizeof(char *));
    int k = 0;
    a[k++] = "rwkvlab";
    a[k++] = "lmeval";
    for (int j = 1; j < argc; j++) {
        const char *s = argv[j];
        static const char *const drop[] = {"--devices", "--out"}, *const refuse[] = {"--device", "--shard"};
        int skip = 0;
        for (int d = 0; d < 2; d++) {
            size_t l = strlen(refuse[d]);
            if (!strncmp(s, refuse[d], l) && (!s[l] || s[l] == '=')) {
                free(a);
                return err_set(err, "%s with --devices: the list sets each worker's %s; drop %s", refuse[d],
                               d ? "shard (i/N)" : "device (cpu, or cuda on GPU g)", refuse[d]),
                       NULL;
            }
            l = strlen(drop[d]);
            if (!strncmp(s, drop[d], l) && (!s[l] || s[l] == '=')) skip = s[l] ? 1 : 2;
        }
        if (skip) {
            j += skip - 1; /* "--opt VALUE": the value too (opts_parse accepted it, so it is there) */
            continue;
        }
        a[k++] = argv[j];
    }
    snprintf(shard, scap, "%d/%d", i, n);
    a[k++] = "--shard", a[k++] = shard;
    a[k++] = "--device", a[k++] = w->gpu >= 0 ? "cuda" : "cpu";
    a[k++] = "--out", a[k++] = (char *)w->dir;
    a[k] = NULL;
    return a;
}

static void describe(const Worker *w, char *out, size_t cap) {
    if (w->gpu >= 0) snprintf(out, cap, "GPU %d", w->gpu);
    else snprintf(out, cap, "cpu");
}

/* start worker i; 0 or -1 with err */
static int spawn(Worker *w, int i, char **args, Err *err) {
    fflush(stdout), fflush(stderr);
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return err_set(err, "cannot start worker %d: fork: %s", i, strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(127); /* the parent died before prctl */
        int lf = open(w->log, O_WRONLY | O_CREAT | O_TRUNC, 0644), nf = open("/dev/null", O_WRONLY);
        if (lf < 0 || nf < 0) _exit(126);
        dup2(nf, STDOUT_FILENO), dup2(lf, STDERR_FILENO);
        close(lf), close(nf);
        if (w->gpu >= 0) {
            char g[16];
            snprintf(g, sizeof g, "%d", w->gpu);
            setenv("CUDA_VISIBLE_DEVICES", g, 1);
        }
        execv("/proc/self/exe", args);
        fprintf(stderr, "rwkvlab lmeval: worker %d: cannot run /proc/self/exe: %s\n", i, strerror(errno));
        _exit(127);
    }
    w->pid = pid;
    return 0;
}

/* wait for every worker; the index of the first that failed, or -1 */
static int wait_all(Worker *w, int n) {
    int running = n, failed = -1;
    while (running) {
        int progressed = 0;
        for (int i = 0; i < n; i++) {
            if (w[i].done || !w[i].pid) continue;
            pid_t r = waitpid(w[i].pid, &w[i].status, WNOHANG);
            if (r == 0 || (r < 0 && errno == EINTR)) continue;
            w[i].done = 1, running--, progressed = 1;
            const int ok = r > 0 && WIFEXITED(w[i].status) && WEXITSTATUS(w[i].status) == 0;
            if (!ok && failed < 0) {
                failed = i;
                for (int q = 0; q < n; q++)
                    if (!w[q].done && w[q].pid) kill(w[q].pid, SIGTERM);
            }
        }
        if (!progressed) nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    }
    return failed;
}

int lmeval_devices_main(const char *list, int argc, char **argv, LmevalOpts *o) {
    Err err = {{0}};
    Worker w[LMEVAL_DEVICES_MAX];
    memset(w, 0, sizeof w);
    int n = 0, rc = 1;
    if (parse_devices(list, w, &n, &err)) return fail_msg("lmeval", &err);
    char shard[LMEVAL_DEVICES_MAX][32];
    char **args[LMEVAL_DEVICES_MAX] = {0};
    for (int i = 0; i < n; i++)
        if (!(args[i] = worker_argv(argc, argv, i, n, &w[i], shard[i], sizeof shard[i], &err))) {
            for (int q = 0; q < i; q++) free(args[q]);
            return fail_msg("lmeval", &err);
        }
    char outdir[4096], rprefix[512], created[4096] = "", tmp[4200];
    if (lmeval_out_location(o->out_dir, o->model_path, outdir, sizeof outdir, rprefix, sizeof rprefix, &err) ||
        lmeval_out_prepare(outdir, created, sizeof created, &err))
        goto out_args;
    snprintf(tmp, sizeof tmp, "%s/.rwkvlab-devices.%ld", outdir, (long)getpid());
    if (mkdir(tmp, 0755)) {
        err_set(&err, "cannot create the workers' directory '%s': %s", tmp, strerror(errno));
        lmeval_out_unprepare(outdir, created);
        goto out_args;
    }
    int failed = -1;
    for (int i = 0; i < n && failed < 0; i++) {
        snprintf(w[i].dir, sizeof w[i].dir, "%s/w%d", tmp, i);
        snprintf(w[i].log, sizeof w[i].log, "%s/w%d.log", tmp, i);
        if (mkdir(w[i].dir, 0755) || spawn(&w[i], i, args[i], &err)) failed = i;
    }
    if (!o->quiet) {
        fprintf(stderr, "rwkvlab lmeval: %d workers (", n);
        for (int i = 0; i < n; i++) {
            char d[32];
            describe(&w[i], d, sizeof d);
            fprintf(stderr, "%s%s", i ? ", " : "", d);
        }
        fprintf(stderr, "), working in %s/\n", tmp);
    }
    if (failed >= 0) { /* could not start them all: stop those started */
        if (!err.msg[0]) err_set(&err, "cannot start worker %d in %s: %s", failed, w[failed].dir, strerror(errno));
        for (int i = 0; i < n; i++)
            if (w[i].pid) kill(w[i].pid, SIGTERM);
        wait_all(w, n);
    } else if ((failed = wait_all(w, n)) >= 0) {
        char d[32], tail[800], how[64];
        describe(&w[failed], d, sizeof d);
        log_tail(w[failed].log, tail, sizeof tail);
        const int st = w[failed].status;
        if (WIFEXITED(st)) snprintf(how, sizeof how, "exit status %d", WEXITSTATUS(st));
        else snprintf(how, sizeof how, "killed by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        err_set(&err, "worker %d of %d (%s, --shard %s) failed (%s); nothing was written. Its log ends:\n%s", failed, n, d,
                shard[failed], how, *tail ? tail : "(empty)");
    } else {
        const char *paths[LMEVAL_DEVICES_MAX];
        char (*sp)[4800] = xmalloc((size_t)n * sizeof *sp);
        for (int i = 0; i < n; i++) {
            char wd[4096], wp[512], name[64];
            lmeval_shard_file_name(i, n, name, sizeof name);
            if (lmeval_out_location(w[i].dir, o->model_path, wd, sizeof wd, wp, sizeof wp, &err)) break;
            snprintf(sp[i], sizeof sp[i], "%s/%s", wd, name);
            paths[i] = sp[i];
        }
        if (!err.msg[0] && !lmeval_merge(paths, n, o->out_dir, o->quiet, o->results_path, sizeof o->results_path, &err))
            rc = 0;
        free(sp);
    }
    rm_tree(tmp);
    if (rc) lmeval_out_unprepare(outdir, created);
out_args:
    for (int i = 0; i < n; i++) free(args[i]);
    if (rc) return fail_msg("lmeval", &err);
    printf("wrote %s\n", o->results_path);
    return 0;
}
