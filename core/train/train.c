/* train.c -- the training run: setup, step loop, evaluation, checkpoints, trajectories, summary.
 * See train.h for the outputs and the exit codes. */
#include "train.h"

#include <cJSON.h>
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "blas.h"
#include "ckpt.h"
#include "h5log.h"
#include "mem.h"
#include "optim.h"
#include "model.h"
#include "protocol.h"
#include "step.h"
#include "task.h"

#ifndef RWKVLAB_VERSION
#define RWKVLAB_VERSION "unknown"
#endif

static volatile sig_atomic_t g_stop_signal = 0;
static void on_signal(int sig) { g_stop_signal = sig; }

/* ---- small helpers --------------------------------------------------------------------------- */
static int file_exists(const char *p) { return access(p, F_OK) == 0; }

typedef struct {
    FILE *log;
    int quiet, tty;
    int midline; /* a \r progress line is showing */
} Out;

/* A line to stdout (unless quiet) and to run.log. */
static void say(Out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(Out *o, const char *fmt, ...) {
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (!o->quiet) {
        if (o->midline) fputc('\n', stdout), o->midline = 0;
        fputs(line, stdout);
        fputc('\n', stdout);
        fflush(stdout);
    }
    if (o->log) fprintf(o->log, "%s\n", line), fflush(o->log);
}

/* The progress line: overwritten in place on a TTY, a plain line otherwise. */
static void progress(Out *o, const char *line) {
    if (o->log) fprintf(o->log, "%s\n", line), fflush(o->log);
    if (o->quiet) return;
    if (o->tty) {
        printf("\r%s\033[K", line);
        o->midline = 1;
    } else {
        puts(line);
    }
    fflush(stdout);
}

static void fmt_duration(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0) snprintf(buf, n, "?");
    else if (s < 60) snprintf(buf, n, "%.0fs", s);
    else if (s < 3600) snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(buf, n, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

/* ---- evaluation ------------------------------------------------------------------------------ */
void train_evaluate(Model *m, const int *inputs, const int *targets, const unsigned char *mask, int n, int T,
                    int K, long max_rows, double *token_acc, double *seq_acc) {
    int eb = (int)(max_rows / T);
    if (eb < 1) eb = 1;
    if (eb > n) eb = n;
    int *pred = xmalloc((size_t)eb * T * sizeof(int));
    long tok_ok = 0, tok_n = 0, seq_ok = 0;
    for (int s = 0; s < n; s += eb) {
        int b = n - s < eb ? n - s : eb;
        size_t o = (size_t)s * T;
        long nc, cnt;
        ModelFwd f = {.K = K};
        model_forward(m, inputs + o, b, T, &f);
        model_loss(m, targets + o, mask + o, pred, &nc, &cnt);
        tok_ok += nc, tok_n += cnt;
        for (int i = 0; i < b; i++) {
            int ok = 1;
            for (int t = 0; t < T; t++) {
                size_t j = (size_t)i * T + t;
                if (mask[o + j] && pred[j] != targets[o + j]) ok = 0;
            }
            seq_ok += ok;
        }
    }
    free(pred);
    *token_acc = tok_n ? (double)tok_ok / tok_n : 0;
    *seq_acc = (double)seq_ok / n;
}

/* ---- the run --------------------------------------------------------------------------------- */
typedef struct {
    RunConfig *cfg;
    TrainOpts *opts;
    Out out;
    char dir[2048];
    Task *task;
    Protocol proto; /* training batches and test sets (protocol.h) */
    double chance;  /* task_chance: uniform-guess accuracy at a scored position (< 0 unknown) */
    Model *m;
    TrainStep step; /* the step's batch shards (step.h) */
    AdamW opt;
    gsl_rng *rng;
    H5Log *h5;
    Batch batch;
    double *last_tok, *last_seq; /* per test length, from the latest evaluation */
    long last_eval_step;
    char *config_ini;
    long seed;
    int K;
    RunState st;  /* step, status, last loss and every record so far: what a checkpoint stores */
    int lock_fd;  /* flock on RUN_DIR/.lock, held for the whole run */
} Run;

static void path_in(char *dst, size_t n, const Run *r, const char *name) { snprintf(dst, n, "%s/%s", r->dir, name); }

static int save_checkpoint(Run *r, long step, int status, Err *err) {
    r->st.step = step;
    r->st.status = status;
    if (ckpt_save(r->dir, r->m, &r->opt, r->rng, &r->st, r->config_ini, err)) return -1;
    return h5log_flush(r->h5, err);
}

/* Every record goes to run.h5 (for live reading) and into the run state (for the checkpoint). */
static int log_train(Run *r, const TrainRec *t, Err *err) {
    records_add_train(&r->st.rec, t);
    return h5log_train(r->h5, t, err);
}

/* After a resume: the latest evaluation, matched to the test lengths by length. */
static void restore_last_eval(Run *r) {
    const RunRecords *rec = &r->st.rec;
    if (rec->neval == 0) return;
    long last = rec->eval[rec->neval - 1].step;
    for (long j = 0; j < rec->neval; j++) {
        const EvalRec *e = &rec->eval[j];
        if (e->step != last) continue;
        for (int i = 0; i < r->cfg->task.ntest_lens; i++)
            if (r->cfg->task.test_lens[i] == e->length) r->last_tok[i] = e->token_acc, r->last_seq[i] = e->seq_acc;
    }
    r->last_eval_step = last;
}

/* The means over the test lengths of the latest evaluation (Deletang's score is the mean accuracy). */
static void eval_means(const Run *r, double *tok, double *seq) {
    int n = r->cfg->task.ntest_lens;
    *tok = *seq = 0;
    for (int i = 0; i < n; i++) *tok += r->last_tok[i] / n, *seq += r->last_seq[i] / n;
}

/* Every test length: its test set (made now, freed after: 512 lengths x test_size sequences need not sit
 * in memory), token / sequence accuracy, one /eval record. */
static int run_eval(Run *r, long step, Err *err) {
    const RunConfig *c = r->cfg;
    long max_rows = (long)c->train.batch * c->task.train_len;
    if (max_rows < 4096) max_rows = 4096;
    char line[1024];
    size_t n = (size_t)snprintf(line, sizeof line, "eval step %ld  seq_acc by length:", step);
    for (int i = 0; i < c->task.ntest_lens; i++) {
        Batch tb;
        protocol_testset(&r->proto, c->task.test_lens[i], c->task.test_size, (unsigned long)r->seed, &tb);
        train_evaluate(r->m, tb.inputs, tb.targets, tb.mask, tb.B, tb.T, r->K, max_rows, &r->last_tok[i],
                       &r->last_seq[i]);
        batch_free(&tb);
        EvalRec e = {step, c->task.test_lens[i], r->last_tok[i], r->last_seq[i]};
        records_add_eval(&r->st.rec, &e);
        if (h5log_eval(r->h5, step, e.length, r->last_tok[i], r->last_seq[i], err)) return -1;
        if (n + 40 < sizeof line) n += (size_t)snprintf(line + n, sizeof line - n, "  %d:%.3f", e.length, r->last_seq[i]);
        else if (n + 5 < sizeof line) n += (size_t)snprintf(line + n, sizeof line - n, "  ...");
    }
    r->last_eval_step = step;
    if (c->task.ntest_lens > 1) {
        double mt, ms;
        eval_means(r, &mt, &ms);
        char sc[48] = "";
        if (r->chance > 0 && r->chance < 1) snprintf(sc, sizeof sc, ", scaled %.3f", scaled_accuracy(mt, r->chance));
        say(&r->out, "%s  (mean over %d lengths: token %.3f%s, seq %.3f)", line, c->task.ntest_lens, mt, sc, ms);
    } else {
        say(&r->out, "%s", line);
    }
    return 0;
}

static int write_trajectories(Run *r, Err *err) {
    const RunConfig *c = r->cfg;
    int P = c->log.trajectories;
    if (P <= 0) return 0;
    int T = c->log.trajectory_len;
    if (T <= 0)
        for (int i = 0; i < c->task.ntest_lens; i++)
            if (c->task.test_lens[i] > T) T = c->task.test_lens[i];
    Batch probes;
    task_testset(r->task, (unsigned long)r->seed, T, P, &probes); /* = first P rows of that test set */
    ModelTrace tr;
    model_trace_alloc(r->m, 1, T, &tr);
    int *pred = xmalloc((size_t)T * sizeof(int));
    int rc = 0;
    for (int p = 0; p < P && rc == 0; p++) {
        const int *tok = probes.inputs + (size_t)p * T, *tgt = probes.targets + (size_t)p * T;
        long nc, cnt;
        ModelFwd f = {.K = r->K, .trace = &tr};
        model_forward(r->m, tok, 1, T, &f);
        model_loss(r->m, tgt, probes.mask + (size_t)p * T, pred, &nc, &cnt);
        rc = h5log_trajectory(r->h5, p, r->m, T, tok, tgt, pred, &tr, err);
    }
    model_trace_free(&tr);
    free(pred);
    batch_free(&probes);
    return rc;
}

static int write_summary(Run *r, const char *status, long step, double wall, double tps, double last_loss,
                         Err *err) {
    const RunConfig *c = r->cfg;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "experiment", c->experiment.name);
    cJSON_AddStringToObject(j, "status", status);
    cJSON_AddStringToObject(j, "run_dir", r->dir);
    cJSON_AddStringToObject(j, "code_version", RWKVLAB_VERSION);
    cJSON_AddNumberToObject(j, "seed", r->seed);
    cJSON_AddStringToObject(j, "arch", c->model.arch);
    cJSON_AddStringToObject(j, "eig_range", c->model.eig_range);
    cJSON_AddStringToObject(j, "task", task_describe(r->task));
    {
        char tl[64];
        int lo = config_train_len_min(c);
        if (lo < c->task.train_len) snprintf(tl, sizeof tl, "%d-%d", lo, c->task.train_len);
        else snprintf(tl, sizeof tl, "%d", c->task.train_len);
        cJSON_AddStringToObject(j, "train_len", tl);
        cJSON_AddStringToObject(j, "train_len_mode", c->task.train_len_mode);
        cJSON_AddStringToObject(j, "protocol", c->task.protocol);
        cJSON_AddStringToObject(j, "protocol_detail", r->proto.desc);
        if (r->proto.merrill) {
            const FiniteSet *d = &r->proto.data;
            cJSON *ds = cJSON_AddObjectToObject(j, "dataset");
            cJSON_AddNumberToObject(ds, "length", d->n);
            cJSON_AddNumberToObject(ds, "distinct", (double)d->distinct);
            cJSON_AddBoolToObject(ds, "complete", d->complete);
            cJSON_AddNumberToObject(ds, "train", d->train.B);
            cJSON_AddNumberToObject(ds, "pairs", d->pairs.B);
            cJSON_AddBoolToObject(ds, "pairs_complete", d->pairs_complete);
            cJSON_AddNumberToObject(ds, "held_out", d->test.B);
            cJSON_AddNumberToObject(ds, "evaluated", d->test.B < c->task.test_size ? d->test.B : c->task.test_size);
        }
        if (r->chance > 0 && r->chance < 1) cJSON_AddNumberToObject(j, "chance", r->chance);
        else cJSON_AddNullToObject(j, "chance");
    }
    cJSON_AddNumberToObject(j, "param_count", (double)r->m->nparams);
    cJSON_AddNumberToObject(j, "state_size", (double)model_matrix_state_numel(r->m));
    cJSON_AddNumberToObject(j, "state_size_total", (double)model_state_numel(r->m, 1));
#ifdef _OPENMP
    cJSON_AddNumberToObject(j, "threads", omp_get_max_threads());
#else
    cJSON_AddNumberToObject(j, "threads", 1);
#endif
    cJSON_AddStringToObject(j, "scalar", REAL_NAME);
    {
        const char *from, *origin = blas_core_origin(&from);
        cJSON *b = cJSON_AddObjectToObject(j, "blas");
        cJSON_AddStringToObject(b, "core", blas_core_name());
        cJSON_AddStringToObject(b, "chosen_by", origin);
        if (from) cJSON_AddStringToObject(b, "library_choice", from);
    }
    cJSON_AddNumberToObject(j, "steps_done", step);
    cJSON_AddNumberToObject(j, "steps_planned", c->train.steps);
    cJSON_AddNumberToObject(j, "wall_seconds", wall);
    cJSON_AddNumberToObject(j, "tokens_per_s", tps);
    if (isfinite(last_loss)) cJSON_AddNumberToObject(j, "last_train_loss", last_loss);
    else cJSON_AddNullToObject(j, "last_train_loss");
    cJSON_AddNumberToObject(j, "eval_step", r->last_eval_step);
    cJSON *ev = cJSON_AddArrayToObject(j, "eval");
    for (int i = 0; i < c->task.ntest_lens && r->last_eval_step >= 0; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "length", c->task.test_lens[i]);
        cJSON_AddNumberToObject(e, "token_acc", r->last_tok[i]);
        cJSON_AddNumberToObject(e, "seq_acc", r->last_seq[i]);
        double sc = scaled_accuracy(r->last_tok[i], r->chance);
        if (isfinite(sc)) cJSON_AddNumberToObject(e, "scaled_acc", sc);
        else cJSON_AddNullToObject(e, "scaled_acc");
        cJSON_AddItemToArray(ev, e);
    }
    if (r->last_eval_step >= 0 && c->task.ntest_lens > 0) { /* the protocol's score: the mean over the lengths */
        double mt, ms;
        eval_means(r, &mt, &ms);
        cJSON *e = cJSON_AddObjectToObject(j, "eval_mean");
        cJSON_AddNumberToObject(e, "lengths", c->task.ntest_lens);
        cJSON_AddNumberToObject(e, "token_acc", mt);
        cJSON_AddNumberToObject(e, "seq_acc", ms);
        double sc = scaled_accuracy(mt, r->chance);
        if (isfinite(sc)) cJSON_AddNumberToObject(e, "scaled_acc", sc);
        else cJSON_AddNullToObject(e, "scaled_acc");
    }
    char p[4200];
    path_in(p, sizeof p, r, "summary.json");
    int rc = json_write_atomic(p, j, err);
    cJSON_Delete(j);
    return rc;
}

static void print_table(Run *r) {
    const RunConfig *c = r->cfg;
    if (r->last_eval_step < 0) return;
    say(&r->out, "accuracy vs length (%s, step %ld; scaled = (token_acc - chance)/(1 - chance)):", task_describe(r->task),
        r->last_eval_step);
    say(&r->out, "  %8s  %9s  %9s  %10s", "length", "token_acc", "seq_acc", "scaled_acc");
    char sc[32];
    for (int i = 0; i < c->task.ntest_lens; i++) {
        double v = scaled_accuracy(r->last_tok[i], r->chance);
        if (isfinite(v)) snprintf(sc, sizeof sc, "%10.4f", v);
        else snprintf(sc, sizeof sc, "%10s", "-");
        say(&r->out, "  %8d  %9.4f  %9.4f  %s", c->task.test_lens[i], r->last_tok[i], r->last_seq[i], sc);
    }
    if (c->task.ntest_lens > 1) {
        double mt, ms;
        eval_means(r, &mt, &ms);
        double v = scaled_accuracy(mt, r->chance);
        if (isfinite(v)) snprintf(sc, sizeof sc, "%10.4f", v);
        else snprintf(sc, sizeof sc, "%10s", "-");
        say(&r->out, "  %8s  %9.4f  %9.4f  %s", "mean", mt, ms, sc);
    }
}

static void run_free(Run *r) {
    free(r->last_tok), free(r->last_seq);
    protocol_free(&r->proto);
    batch_free(&r->batch);
    h5log_close(r->h5);
    if (r->m) adamw_free(&r->opt);
    train_step_free(&r->step);
    model_free(r->m);
    task_free(r->task);
    if (r->rng) gsl_rng_free(r->rng);
    free(r->config_ini);
    records_free(&r->st.rec);
    if (r->out.log) fclose(r->out.log);
    if (r->lock_fd > 0) close(r->lock_fd);
}

/* Own the run directory for the lifetime of this process: a second rwkvlab on the same directory
 * gets a clear error instead of racing for its files. The lock goes away with the process. */
static int lock_run_dir(Run *r, Err *err) {
    char p[4200];
    path_in(p, sizeof p, r, ".lock");
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return err_set(err, "cannot create the lock file '%s': %s", p, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "?";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        if (n > 0) pid[strcspn(pid, "\n")] = 0;
        close(fd);
        return err_set(err, "run directory '%s' is in use by another rwkvlab process (pid %s): wait for it to "
                            "finish or stop it, or choose another --out", r->dir, n > 0 ? pid : "?");
    }
    char line[32];
    int n = snprintf(line, sizeof line, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, n, 0) != n) { /* the pid is only informative */ }
    r->lock_fd = fd;
    return 0;
}

/* status of an existing summary.json ("" when there is none or it cannot be read) */
static void summary_status(const Run *r, char *status, size_t n) {
    char p[4200];
    path_in(p, sizeof p, r, "summary.json");
    status[0] = 0;
    FILE *f = fopen(p, "rb");
    if (!f) return;
    char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    cJSON *j = cJSON_Parse(buf);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "status");
    if (cJSON_IsString(s)) snprintf(status, n, "%s", s->valuestring);
    cJSON_Delete(j);
}

/* Value of `sec.key` in resolved INI text (config_to_ini's layout: "[sec]" lines, "key = value[ ; allowed]"),
 * copied into val without the allowed-values comment; 0 when found. */
static int ini_value(const char *ini, const char *sec, const char *key, char *val, size_t n) {
    char cur[64] = "";
    for (const char *l = ini; *l;) {
        const char *e = l + strcspn(l, "\n");
        int len = (int)(e - l);
        if (len > 1 && l[0] == '[') {
            snprintf(cur, sizeof cur, "%.*s", len - 2, l + 1);
        } else if (!strcmp(cur, sec)) {
            size_t kl = strlen(key);
            if ((size_t)len > kl + 2 && !strncmp(l, key, kl) && !strncmp(l + kl, " =", 2)) {
                const char *v = l + kl + 2 + (l[kl + 2] == ' ');
                const char *c = strstr(v, " ; ");
                int vl = (int)((c && c < e ? c : e) - v);
                snprintf(val, n, "%.*s", vl, v);
                return 0;
            }
        }
        l = *e ? e + 1 : e;
    }
    return -1;
}

/* Every key of the run's resolved config whose value differs in `given`, as "section.key: RUN -> GIVEN";
 * keys named in `allowed` go to *changed, the others to *refused. */
static void config_diff(const char *run_ini, const char *given_ini, const char *const *allowed, char *changed,
                        size_t nc, char *refused, size_t nr) {
    changed[0] = refused[0] = 0;
    char sec[64] = "";
    for (const char *l = run_ini; *l;) {
        const char *e = l + strcspn(l, "\n");
        int len = (int)(e - l);
        if (len > 1 && l[0] == '[') snprintf(sec, sizeof sec, "%.*s", len - 2, l + 1);
        const char *eq = memchr(l, '=', len);
        if (l[0] != '[' && l[0] != ';' && eq && eq > l + 1) {
            char key[96], a[512], b[512] = "(absent)";
            snprintf(key, sizeof key, "%.*s", (int)(eq - l - 1), l);
            ini_value(run_ini, sec, key, a, sizeof a);
            ini_value(given_ini, sec, key, b, sizeof b);
            if (strcmp(a, b)) {
                char full[160];
                snprintf(full, sizeof full, "%s.%s", sec, key);
                int ok = 0;
                for (int i = 0; allowed[i]; i++) ok |= !strcmp(full, allowed[i]);
                char *dst = ok ? changed : refused;
                size_t dn = ok ? nc : nr, used = strlen(dst);
                if (used + 1 < dn) snprintf(dst + used, dn - used, "%s%s: %s -> %s", used ? "; " : "", full, a, b);
            }
        }
        l = *e ? e + 1 : e;
    }
}

/* The run directory: --resume DIR (must hold a run), --out DIR, or a fresh results/<experiment>/... .
 * Locks it; a fresh run refuses a directory that already holds one. */
static int choose_run_dir(Run *r, Err *err) {
    const RunConfig *c = r->cfg;
    char p[4200];
    if (r->opts->resume_dir) {
        snprintf(r->dir, sizeof r->dir, "%s", r->opts->resume_dir);
        path_in(p, sizeof p, r, "config.ini");
        if (!file_exists(p))
            return err_set(err, "--resume %s: no run there (%s is missing); start a run with --out %s instead", r->dir,
                           p, r->dir);
        return lock_run_dir(r, err);
    }
    if (r->opts->out_dir) {
        snprintf(r->dir, sizeof r->dir, "%s", r->opts->out_dir);
    } else {
        char ts[32];
        time_t now = time(NULL);
        strftime(ts, sizeof ts, "%Y%m%d-%H%M%S", localtime(&now));
        snprintf(r->dir, sizeof r->dir, "results/%s/seed%ld-%s", c->experiment.name, r->seed, ts);
        for (int k = 2; file_exists(r->dir) && k < 100; k++)
            snprintf(r->dir, sizeof r->dir, "results/%s/seed%ld-%s-%d", c->experiment.name, r->seed, ts, k);
    }
    if (mkdir_p(r->dir, err) || lock_run_dir(r, err)) return -1;
    remove_stale_tmp(r->dir); /* left by a start that was killed before it wrote config.ini */
    const char *marks[] = {"config.ini", "ckpt.bin", "run.h5"};
    for (int i = 0; i < 3; i++) {
        path_in(p, sizeof p, r, marks[i]);
        if (file_exists(p))
            return err_set(err, "'%s' already holds a run (%s exists): continue it with --resume %s, or choose "
                                "another --out", r->dir, marks[i], r->dir);
    }
    return 0;
}

/* On --resume the run's own config.ini is the run; the given config (CONFIG and --set, or config.ini and
 * --set) may differ from it only in keys that are safe to change mid-run. Those are applied (and
 * config.ini updated); any other difference is refused, naming it. */
static const char *const RESUME_CHANGEABLE[] = {"train.steps", "train.threads", NULL};
static int resume_config(Run *r, Err *err) {
    char p[4200], changed[2048], refused[2048];
    path_in(p, sizeof p, r, "config.ini");
    RunConfig run_cfg;
    config_defaults(&run_cfg);
    if (config_load(&run_cfg, p, err)) return -1;
    char *run_ini = config_to_ini(&run_cfg);
    config_diff(run_ini, r->config_ini, RESUME_CHANGEABLE, changed, sizeof changed, refused, sizeof refused);
    free(run_ini);
    if (refused[0])
        return err_set(err, "--resume %s: the given configuration differs from the run's own (%s): %s. A resumed run "
                            "keeps its configuration (only %s may change); start a new run for a different one",
                       r->dir, p, refused, "train.steps and train.threads");
    if (changed[0]) {
        if (write_file_atomic(p, r->config_ini, strlen(r->config_ini), err)) return -1;
        say(&r->out, "resume: changed %s (recorded in config.ini)", changed);
    }
    return 0;
}

static const char *status_name(int status) {
    return status == RUN_COMPLETED ? "completed" : status == RUN_EARLY_STOPPED ? "early_stopped" : "training";
}

int train_run(RunConfig *cfg, TrainOpts *opts, Err *err) {
    Run R = {.cfg = cfg, .opts = opts, .last_eval_step = -1, .lock_fd = -1, .st = {.last_loss = NAN}};
    Run *r = &R;
    int rc = TRAIN_ERROR;
    const int resuming = opts->resume_dir != NULL;
    r->seed = cfg->experiment.nseeds > 0 ? cfg->experiment.seeds[0] : 1;
    r->K = cfg->train.chunk > 0 ? cfg->train.chunk : 1; /* chunk = 0: keep every state (K = 1) */
#ifdef _OPENMP
    if (cfg->train.threads > 0) omp_set_num_threads(cfg->train.threads);
#endif
    /* OpenBLAS keeps its own thread pool (its default: every core), so train.threads bounds it too:
     * two 1-thread runs of a sweep (--jobs 2) otherwise ran 2 BLAS threads each on 2 cores, at 40% of
     * their speed (MQAR d = 64: 3.8k instead of 9k+ tokens/s). Results do not depend on it. */
    if (cfg->train.threads > 0) openblas_set_num_threads(cfg->train.threads);
    const ModelArch *arch = model_arch_find(cfg->model.arch);
    if (!arch)
        return err_set(err, "model.arch = %s is not known (available: %s)", cfg->model.arch, model_arch_names()),
               TRAIN_ERROR;
    if (config_validate(cfg, err)) return TRAIN_ERROR;
    if (!(r->task = task_create(cfg, err))) return TRAIN_ERROR;
    r->chance = task_chance(r->task);
    /* the memory check first, before anything is allocated or written: its estimate covers the Merrill
     * dataset's build (mem.h), so a dataset that cannot fit is refused before it is built */
    size_t mem_need = 0;
    if (mem_check_train(cfg, task_vocab(r->task), r->K, opts->force_memory, &mem_need, err)) goto done;
    /* then the protocol, still before anything is written: a Merrill split that leaves a part empty is an error here */
    if (protocol_init(&r->proto, cfg, r->task, (unsigned long)r->seed, err)) goto done;
    if (choose_run_dir(r, err)) goto done;
    snprintf(opts->run_dir, sizeof opts->run_dir, "%s", r->dir);
    r->config_ini = config_to_ini(cfg);
    {
        char p[4200];
        path_in(p, sizeof p, r, "run.log");
        r->out.log = fopen(p, "a");
        if (!r->out.log) {
            err_set(err, "cannot open log '%s': %s", p, strerror(errno));
            goto done;
        }
        r->out.quiet = opts->quiet;
        r->out.tty = isatty(STDOUT_FILENO);
        if (resuming) {
            if (resume_config(r, err)) goto done;
        } else {
            path_in(p, sizeof p, r, "config.ini");
            if (write_file_atomic(p, r->config_ini, strlen(r->config_ini), err)) goto done;
        }
    }

    /* model, optimizer, rng */
    {
        char dims[1024];
        CHECK(arch->dims_size <= sizeof dims, "dims of %s too large", arch->name);
        if (arch->dims_from_config(dims, cfg, task_vocab(r->task), err)) goto done;
        r->m = model_create(arch, dims, 1);
    }
    r->m->l2wrap = cfg->train.l2wrap;
    train_step_init(&r->step, r->m, cfg->train.shards);
    r->rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r->rng, (unsigned long)r->seed);
    model_init(r->m, r->rng, cfg);
    AdamWConfig ac = {.lr = cfg->train.lr, .lr_min = cfg->train.lr_min, .warmup = cfg->train.warmup,
                      .steps = cfg->train.steps, .cosine = !strcmp(cfg->train.schedule, "cosine"),
                      .beta1 = cfg->train.beta1, .beta2 = cfg->train.beta2, .eps = cfg->train.adam_eps,
                      .weight_decay = cfg->train.weight_decay, .grad_clip = cfg->train.grad_clip};
    adamw_init(&r->opt, &ac, r->m->nparams);

    long step = 0;
    char p[4200];
    if (resuming) {
        char prev[32];
        summary_status(r, prev, sizeof prev);
        if (!strcmp(prev, "diverged")) {
            fprintf(stderr, "rwkvlab train: %s diverged (see its summary.json and run.log); resuming would diverge "
                            "again: start a new run with a lower train.lr or a smaller train.grad_clip\n", r->dir);
            rc = TRAIN_DIVERGED;
            goto done;
        }
        int have = 0;
        if (ckpt_recover(r->dir, &have, err)) goto done;
        if (have) {
            Model *loaded = NULL;
            long s_model = 0, s_opt = 0;
            path_in(p, sizeof p, r, "ckpt.bin");
            if (ckpt_load_model(p, &loaded, &s_model, NULL, err)) goto done;
            if (loaded->arch != r->m->arch || loaded->nparams != r->m->nparams ||
                memcmp(loaded->dims, r->m->dims, arch->dims_size)) {
                model_free(loaded);
                err_set(err, "'%s' does not match the model of %s/config.ini", p, r->dir);
                goto done;
            }
            memcpy(r->m->params, loaded->params, r->m->nparams * sizeof(real));
            model_free(loaded);
            path_in(p, sizeof p, r, "optim.bin");
            if (ckpt_load_optim(p, &r->opt, r->rng, &s_opt, err)) goto done;
            path_in(p, sizeof p, r, "records.bin");
            if (ckpt_load_state(p, &r->st, err)) goto done;
            step = s_model;
            if (s_opt != step || r->st.step != step) {
                err_set(err, "%s: ckpt.bin, optim.bin and records.bin are at steps %ld, %ld and %ld; cannot resume",
                        r->dir, step, s_opt, r->st.step);
                goto done;
            }
            if (step > cfg->train.steps) {
                err_set(err, "--resume %s: train.steps = %ld is below the checkpoint's step %ld", r->dir,
                        cfg->train.steps, step);
                goto done;
            }
            if (r->st.status != RUN_TRAINING && !strcmp(prev, status_name(r->st.status))) {
                fprintf(stderr, "rwkvlab train: %s is %s at step %ld: nothing to resume%s\n", r->dir, prev, step,
                        r->st.status == RUN_COMPLETED ? " (to train longer, add --set train.steps=N with a larger N)"
                                                      : "");
                rc = TRAIN_OK;
                goto done;
            }
            if (r->st.status == RUN_COMPLETED && step < cfg->train.steps) r->st.status = RUN_TRAINING;
        } else {
            say(&r->out, "resume: %s has no complete checkpoint yet: starting from step 0", r->dir);
        }
    }
    /* run.h5 is (re)written from the records of the checkpoint: a torn file never blocks a resume */
    path_in(p, sizeof p, r, "run.h5");
    H5RunAttrs at = {.config_ini = r->config_ini, .code_version = RWKVLAB_VERSION, .seed = r->seed,
                     .arch = cfg->model.arch, .param_count = (long)r->m->nparams,
                     .state_size = (long)model_matrix_state_numel(r->m),
                     .state_size_total = (long)model_state_numel(r->m, 1), .eig_range = cfg->model.eig_range,
                     .task = task_describe(r->task), .task_chance = r->chance};
    if (!(r->h5 = h5log_rebuild(p, &at, &r->st.rec, err))) goto done;

    /* accuracies per test length (the test sets are made at each evaluation: protocol_testset) */
    r->last_tok = xcalloc(cfg->task.ntest_lens, sizeof(double));
    r->last_seq = xcalloc(cfg->task.ntest_lens, sizeof(double));
    batch_alloc(&r->batch, cfg->train.batch, cfg->task.train_len); /* the longest; each step sets its T */
    restore_last_eval(r);

#ifdef _OPENMP
    int threads = omp_get_max_threads();
#else
    int threads = 1;
#endif
    say(&r->out, "rwkvlab %s train: %s -> %s", RWKVLAB_VERSION, cfg->experiment.name, r->dir);
    say(&r->out, "task: %s", task_describe(r->task));
    say(&r->out, "protocol: %s", r->proto.desc);
    {
        char dl[512] = "";
        int vals[MODEL_MAX_DIMS];
        model_dims_get(arch, r->m->dims, vals);
        for (int i = 0; i < arch->ndims; i++)
            snprintf(dl + strlen(dl), sizeof dl - strlen(dl), "%s%s=%d", i ? " " : "", arch->dim_fields[i].name, vals[i]);
        char mb[32];
        say(&r->out, "model: %s %s eig_range=%s, %zu params, state %zu numbers (matrix %zu); %s, %d threads, "
                     "%d batch shards, recurrence checkpoint every %d tokens; estimated memory %s",
            arch->title, dl, cfg->model.eig_range, r->m->nparams, model_state_numel(r->m, 1),
            model_matrix_state_numel(r->m), REAL_NAME, threads, train_step_nshards(cfg->train.batch, cfg->train.shards),
            r->K, mem_fmt(mem_need, mb, sizeof mb));
    }
    if (r->out.log) fprintf(r->out.log, "resolved config:\n%s\n", r->config_ini);
    if (resuming && step > 0)
        say(&r->out, r->st.status == RUN_TRAINING ? "resuming at step %ld of %ld" : "resuming at step %ld of %ld: "
                     "training is done, writing the final outputs", step, cfg->train.steps);

    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    g_stop_signal = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    const int B = cfg->train.batch, varies = r->proto.lo < r->proto.hi;
    const int lo = r->proto.lo, hi = r->proto.hi;
    int status = r->st.status == RUN_TRAINING ? RUN_COMPLETED : r->st.status;
    double t_start = now_seconds(), tps = r->st.rec.ntrain ? r->st.rec.train[r->st.rec.ntrain - 1].tokens_per_s : 0;
    /* /train/wall_s continues from the last record a resumed run kept (0 if unknown, an older checkpoint) */
    double wall0 = r->st.rec.ntrain && isfinite(r->st.rec.train[r->st.rec.ntrain - 1].wall_s)
                       ? r->st.rec.train[r->st.rec.ntrain - 1].wall_s : 0;
    long step0 = step, tokens = 0;
    while (r->st.status == RUN_TRAINING && step < cfg->train.steps) {
        protocol_batch(&r->proto, r->rng, &r->batch, NULL); /* this step's length(s) from the run's rng */
        const int T = r->batch.T;
        long nc, cnt;
        double loss = train_step_grads(&r->step, r->batch.inputs, r->batch.targets, r->batch.mask, B, T, r->K, &nc, &cnt);
        if (opts->inject_nan_at > 0 && step + 1 == opts->inject_nan_at) loss = NAN;
        double gn = grad_norm(r->m->grads, r->m->nparams);
        if (!isfinite(loss) || !isfinite(gn)) {
            say(&r->out, "error: the %s became %s at step %ld. The run stops; the last good checkpoint is kept in "
                         "%s/ckpt.bin. Try a lower train.lr, a smaller train.grad_clip or a longer warmup.",
                isfinite(loss) ? "gradient norm" : "loss", isnan(isfinite(loss) ? gn : loss) ? "NaN" : "Inf", step + 1,
                r->dir);
            rc = TRAIN_DIVERGED;
            Err e2 = {{0}};
            if (h5log_flush(r->h5, &e2) || write_summary(r, "diverged", step, now_seconds() - t_start, tps, NAN, &e2))
                say(&r->out, "error: %s", e2.msg);
            goto restore;
        }
        double lr;
        adamw_step_norm(&r->opt, r->m->params, r->m->grads, r->m->tensors, r->m->ntensors, gn, &lr);
        step++;
        tokens += (long)B * T;
        r->st.last_loss = loss;
        double el = now_seconds() - t_start;
        tps = tokens / (el > 0 ? el : 1e-9);
        double acc = cnt ? (double)nc / cnt : 0;
        if (step % cfg->train.log_every == 0 || step == cfg->train.steps) {
            TrainRec tr = {step, loss, acc, lr, gn, tps, wall0 + el, T};
            if (log_train(r, &tr, err)) goto restore;
            char eta[32], line[512], len[32] = "";
            fmt_duration(eta, sizeof eta, (cfg->train.steps - step) * (el / (step - step0)));
            if (varies) snprintf(len, sizeof len, "  len %d", T);
            snprintf(line, sizeof line, "step %ld/%ld%s  loss %.4f  acc %.4f  lr %.2e  |g| %.3f  %.0f tok/s  ETA %s",
                     step, cfg->train.steps, len, loss, acc, lr, gn, tps, eta);
            progress(&r->out, line);
        }
        int stop_early = 0;
        if (step % cfg->train.eval_every == 0 || step == cfg->train.steps) {
            if (run_eval(r, step, err)) goto restore;
            if (cfg->train.early_stop > 0) { /* every test length inside the training range has reached it */
                int inside = 0, reached = 0;
                for (int i = 0; i < cfg->task.ntest_lens; i++)
                    if (cfg->task.test_lens[i] >= lo && cfg->task.test_lens[i] <= hi)
                        inside++, reached += r->last_seq[i] >= cfg->train.early_stop;
                stop_early = inside > 0 && reached == inside;
            }
        }
        if (step % cfg->train.ckpt_every == 0 && step < cfg->train.steps && !stop_early &&
            save_checkpoint(r, step, RUN_TRAINING, err))
            goto restore;
        if (stop_early) {
            say(&r->out, "early stop: sequence accuracy at the training length%s reached %.3f at step %ld",
                varies ? "s" : "", cfg->train.early_stop, step);
            status = RUN_EARLY_STOPPED;
            break;
        }
        if (g_stop_signal || (opts->stop_after > 0 && step >= opts->stop_after)) {
            if (save_checkpoint(r, step, RUN_TRAINING, err)) goto restore;
            /* the model as it stands, for a look at an interrupted run (a resume rebuilds run.h5 and writes the
             * final trajectories at the end) */
            h5log_set_trace_point(r->h5, step, "interrupted");
            if (write_trajectories(r, err) || h5log_flush(r->h5, err)) goto restore;
            say(&r->out, "interrupted%s at step %ld: checkpoint saved; continue with: rwkvlab train %s/config.ini "
                         "--resume %s",
                g_stop_signal == SIGTERM ? " (SIGTERM)" : g_stop_signal == SIGINT ? " (SIGINT)" : "", step, r->dir, r->dir);
            if (write_summary(r, "interrupted", step, now_seconds() - t_start, tps, r->st.last_loss, err)) goto restore;
            rc = TRAIN_INTERRUPTED;
            goto restore;
        }
    }
    /* training is done: the final evaluation and checkpoint (marked done, so a resume after a kill from
     * here on only writes the final outputs), then trajectories, run.h5 closed, summary.json last */
    if (r->st.status == RUN_TRAINING) {
        if (r->last_eval_step != step && run_eval(r, step, err)) goto restore;
        if (save_checkpoint(r, step, status, err)) goto restore;
    }
    h5log_set_trace_point(r->h5, step, "final");
    if (write_trajectories(r, err)) goto restore;
    {
        H5Log *h = r->h5;
        r->h5 = NULL;
        if (h5log_finish(h, err)) goto restore;
    }
    print_table(r);
    {
        double wall = now_seconds() - t_start;
        if (write_summary(r, status_name(status), step, wall, tps, r->st.last_loss, err)) goto restore;
        char w[32];
        fmt_duration(w, sizeof w, wall);
        say(&r->out, "done: %ld steps in %s (%.0f tokens/s); results in %s", step - step0, w, tps, r->dir);
    }
    rc = TRAIN_OK;
restore:
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
done:
    if (rc == TRAIN_ERROR && r->out.log) fprintf(r->out.log, "error: %s\n", err->msg), fflush(r->out.log);
    run_free(r);
    return rc;
}
