/* cmd_trace.c -- `rwkvlab trace`: the state trajectory of one sequence, written atomically to HDF5. */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cuda_rwkv7.h"
#include "h5log.h"
#include "lmeval_data.h"
#include "model_io.h"
#include "opts.h"
#include "task.h"
#include "tokenizer.h"

/* The temporary file of trace_write, removed by a fatal signal that arrives while it exists. */
static char trace_tmp[4200];

static const int TRACE_SIGNALS[] = {SIGINT, SIGTERM, SIGHUP, SIGXFSZ};
#define N_TRACE_SIGNALS ((int)(sizeof TRACE_SIGNALS / sizeof TRACE_SIGNALS[0]))

static void trace_on_signal(int sig) {
    unlink(trace_tmp); /* async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Install (on = 1) or restore (on = 0) the handlers that remove trace_tmp. */
static void trace_guard(int on, struct sigaction *saved) {
    for (int i = 0; i < N_TRACE_SIGNALS; i++) {
        if (!on) {
            sigaction(TRACE_SIGNALS[i], &saved[i], NULL);
            continue;
        }
        struct sigaction sa = {0};
        sa.sa_handler = trace_on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(TRACE_SIGNALS[i], NULL, &saved[i]);
        if (saved[i].sa_handler != SIG_IGN) sigaction(TRACE_SIGNALS[i], &sa, NULL); /* ignored stays ignored */
    }
}

/* Remove OUT.tmp.PID files whose process no longer exists (a trace killed by SIGKILL leaves one). */
static void remove_dead_tmp(const char *out) {
    char dir[4200], pre[4200], p[8600];
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : out;
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    snprintf(pre, sizeof pre, "%s.tmp.", base);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, pre, strlen(pre))) continue;
        const char *num = e->d_name + strlen(pre);
        char *end;
        long pid = strtol(num, &end, 10);
        if (!*num || *end || pid <= 0) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive (or not ours to judge) */
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
}

/* The trace of one sequence written to `out` atomically: an HDF5 file is built under a temporary name
 * in the same directory (out.tmp.PID), flushed, fsync'ed and renamed over `out` only when complete. On
 * an error, or SIGINT/SIGTERM/SIGHUP/SIGXFSZ, the temporary file is removed: nothing is left, and an
 * existing `out` is untouched (after SIGKILL or a power loss only out.tmp.PID can remain, never a
 * partial `out`). */
static int trace_write(const char *out, const Model *m, const ModelTrace *tr, const int *ids, const int *tgt,
                       const int *pred, int T, Err *err) {
    char *tmp = trace_tmp;
    if ((size_t)snprintf(tmp, sizeof trace_tmp, "%s.tmp.%ld", out, (long)getpid()) >= sizeof trace_tmp)
        return err_set(err, "--out: path too long (%zu characters)", strlen(out));
    unlink(tmp); /* our own name: a leftover of an earlier process with this pid */
    remove_dead_tmp(out); /* OUT.tmp.PID of traces killed by SIGKILL */
    struct sigaction saved[N_TRACE_SIGNALS];
    trace_guard(1, saved);
    H5RunAttrs at = {.config_ini = "", .code_version = RWKVLAB_VERSION, .seed = 0, .arch = m->arch->name,
                     .param_count = (long)m->nparams, .state_size = (long)model_matrix_state_numel(m),
                     .state_size_total = (long)model_state_numel(m, 1), .eig_range = model_eig_range(m)};
    H5Log *h = h5log_create(tmp, &at, err);
    if (!h) {
        unlink(tmp);
        trace_guard(0, saved);
        return -1;
    }
    h5log_set_trace_point(h, -1, "trace"); /* a model file traced, not a training run */
    int rc = h5log_trajectory(h, 0, m, T, ids, tgt, pred, tr, err);
    if (rc == 0) rc = h5log_finish(h, err); /* flush + close, each checked (a full disk shows up here) */
    else h5log_close(h);
    if (rc == 0) { /* the data must be on disk before the name points at it */
        int fd = open(tmp, O_RDONLY);
        if (fd < 0 || fsync(fd) != 0) rc = err_set(err, "cannot sync '%s': %s", tmp, strerror(errno));
        if (fd >= 0) close(fd);
    }
    if (rc == 0 && rename(tmp, out) != 0)
        rc = err_set(err, "cannot rename '%s' to '%s': %s", tmp, out, strerror(errno));
    if (rc) unlink(tmp);
    trace_guard(0, saved);
    return rc;
}

static const char TRACE_USAGE[] =
    "usage: rwkvlab trace --model FILE (--tokens 0,17,...|IDS_FILE | --text STR [--data DIR] |\n"
    "                     --task NAME[:VARIANT] [--len T] [--seed S]) --out FILE.h5\n"
    "                     [--device cpu|cuda] [--dtype bf16|fp16|fp32] [--allow-unknown-tensors] [--force-memory]\n"
    "  state trajectory of one sequence (same schema as training probes: /trajectories/probe0);\n"
    "  targets are the next token, or for --task the task's labels (e.g. --task s5:swaps).\n"
    "  FILE.h5 is replaced only when the trace is complete; on failure nothing is written.\n"
    "  --device cuda: RWKV-7 on the GPU (weights --dtype, default bf16), one token per forward; same schema.\n"
    LOAD_USAGE;

/* The ids (and, for --task, the labels) of the sequence to trace; caller frees both. */
static int trace_sequence(const char *toks, const char *text, const char *data, const char *task, int T_task,
                          long seed, int **ids, int **task_tgt, int *T, Err *err) {
    *ids = NULL, *task_tgt = NULL, *T = 0;
    if (toks) return ids_from_arg(toks, ids, T, err);
    if (task) { /* NAME[:VARIANT] (variant default: the family's, e.g. swaps for groups) */
        char nm[160];
        snprintf(nm, sizeof nm, "%s", task);
        char *variant = strchr(nm, ':');
        if (variant) *variant++ = 0;
        Task *tk = task_create_named(nm, variant, NULL, NULL, 0, err);
        if (!tk) return -1;
        if (task_check_len(tk, T_task, err)) {
            task_free(tk);
            return -1;
        }
        Batch b;
        task_testset(tk, (unsigned long)seed, T_task, 1, &b);
        *ids = xmalloc(T_task * sizeof(int)), *task_tgt = xmalloc(T_task * sizeof(int));
        memcpy(*ids, b.inputs, T_task * sizeof(int)), memcpy(*task_tgt, b.targets, T_task * sizeof(int));
        *T = T_task;
        batch_free(&b);
        task_free(tk);
        return 0;
    }
    char vp[4096];
    snprintf(vp, sizeof vp, "%s/rwkv_vocab_v20230424.txt", data ? data : "data");
    Tokenizer *tk = tokenizer_load(vp, err);
    if (!tk) return -1;
    size_t n = 0;
    int rc = tokenizer_encode(tk, text, strlen(text), ids, &n, err);
    tokenizer_free(tk);
    if (rc == 0 && n == 0) rc = err_set(err, "--text: the text encodes to no tokens — give a non-empty text");
    if (rc == 0 && n > MAX_LEN) rc = err_set(err, "--text: %zu tokens, more than the %d taken", n, MAX_LEN);
    if (rc) {
        free(*ids);
        *ids = NULL;
        return -1;
    }
    *T = (int)n;
    return 0;
}

int cmd_trace(int argc, char **argv) {
    const char *model = NULL, *toks = NULL, *text = NULL, *out = NULL, *data = NULL, *task = NULL, *device = NULL,
               *dtype = NULL;
    int T_task = 64, nlen = 0, nseed = 0;
    long seed = 1;
    ModelLoadOpts lo;
    model_load_opts_default(&lo);
    OptSpec spec[] = {
        LOAD_OPTS(lo),
        O_STR("--model", &model, .required = 1),
        O_STR("--out", &out, .required = 1),
        O_STR("--tokens", &toks),
        O_STR("--text", &text),
        O_STR("--data", &data),
        O_STR("--task", &task),
        O_INT("--len", &T_task, 1, MAX_LEN, .count = &nlen),
        O_LONG("--seed", &seed, 0, MAX_SEED, .count = &nseed),
        O_STR("--device", &device),
        O_STR("--dtype", &dtype),
    };
    OptParser p = {.cmd = "trace", .specs = spec, .nspecs = OPTS_N(spec)};
    int ec;
    if (parse_or_exit(&p, argc, argv, TRACE_USAGE, &ec)) return ec;
    Err err = {{0}};
    if (!!toks + !!text + !!task != 1) {
        err_set(&err, "give exactly one of --tokens, --text and --task (rwkvlab trace --help)");
        return fail_msg("trace", &err);
    }
    if (data && !text) return err_set(&err, "--data is used only with --text"), fail_msg("trace", &err);
    if ((nlen || nseed) && !task)
        return err_set(&err, "%s is used only with --task", nlen ? "--len" : "--seed"), fail_msg("trace", &err);
    const int cuda = device && !strcmp(device, "cuda");
    CudaDType dt = CUDA_DT_BF16;
    if (device && strcmp(device, "cpu") && !cuda)
        return err_set(&err, "--device %s: use cpu or cuda", device), fail_msg("trace", &err);
    if (dtype && !cuda) return err_set(&err, "--dtype is used only with --device cuda"), fail_msg("trace", &err);
    if (dtype && cuda_dtype_parse(dtype, &dt))
        return err_set(&err, "--dtype %s: use bf16, fp16 or fp32", dtype), fail_msg("trace", &err);
    if (cuda) {
        char why[512];
        if (!cuda_built())
            return err_set(&err, "--device cuda: not available: %s; or use --device cpu",
                           (cuda_available(why, sizeof why), why)),
                   fail_msg("trace", &err);
        if (!cuda_available(why, sizeof why))
            return err_set(&err, "--device cuda: no usable GPU found: %s; use --device cpu", why), fail_msg("trace", &err);
    }
    int *ids = NULL, *task_tgt = NULL, T = 0;
    Model *m = NULL;
    if (trace_sequence(toks, text, data, task, T_task, seed, &ids, &task_tgt, &T, &err) ||
        model_load_with(model, &lo, &m, &err) || check_vocab(ids, T, m->V, &err)) {
        free(ids), free(task_tgt);
        model_free(m);
        return fail_msg("trace", &err);
    }
    const int V = m->V;
    ModelTrace tr;
    model_trace_alloc(m, 1, T, &tr);
    real *lg_gpu = NULL;
    const real *lg;
    if (cuda) { /* the GPU engine fills the same trace arrays (cuda_model_trace) */
        float *lf = xmalloc((size_t)T * V * sizeof(float));
        if (cuda_model_trace(m, dt, ids, T, lf, &tr, &err)) {
            free(lf), model_trace_free(&tr), free(ids), free(task_tgt);
            model_free(m);
            return fail_msg("trace", &err);
        }
        lg_gpu = xmalloc((size_t)T * V * sizeof(real));
        for (size_t i = 0; i < (size_t)T * V; i++) lg_gpu[i] = lf[i];
        free(lf);
        lg = lg_gpu;
    } else {
        ModelFwd f = {.trace = &tr};
        lg = model_forward(m, ids, 1, T, &f);
    }
    int *pred = xmalloc(T * sizeof(int)), *tgt = xmalloc(T * sizeof(int));
    for (int t = 0; t < T; t++) {
        int am = 0;
        for (int v = 1; v < V; v++)
            if (lg[(size_t)t * V + v] > lg[(size_t)t * V + am]) am = v;
        pred[t] = am;
        tgt[t] = task_tgt ? task_tgt[t] : t + 1 < T ? ids[t + 1] : -1; /* task label, or the next token */
    }
    int rc = trace_write(out, m, &tr, ids, tgt, pred, T, &err);
    const int L = m->L;
    model_trace_free(&tr);
    free(pred), free(tgt), free(ids), free(task_tgt), free(lg_gpu);
    model_free(m);
    if (rc) return fail_msg("trace", &err);
    printf("wrote %s (%d tokens, %d layers)\n", out, T, L);
    return 0;
}
