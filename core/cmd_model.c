/* cmd_model.c -- subcommands on checkpoints: info, logits, export, trace, init, lmeval, evaltask.
 * Every one parses its argv with one OptSpec table (opts.h): unknown or malformed options are errors. */
#include "cmd_model.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt.h"
#include "config.h"
#include "h5log.h"
#include "task.h"
#include "train.h"
#include "lmeval.h"
#include "lmeval_data.h"
#include "opts.h"
#include "rwkv7_io.h"
#include "tokenizer.h"

/* Largest token id accepted on the command line (then checked against the model's vocabulary). */
#define MAX_TOKEN_ID (1 << 30)
/* Largest sequence length / test-set size taken on the command line. */
#define MAX_LEN (1 << 20)
#define MAX_SEED ((double)LONG_MAX)

/* "rwkvlab CMD: MSG" on stderr; returns 1 (the exit status of a bad invocation). */
static int fail_msg(const char *cmd, const Err *err) {
    fprintf(stderr, "rwkvlab %s: %s\n", cmd, err->msg);
    return 1;
}

/* opts_parse for a subcommand: 0 = go on; otherwise *exit_code is what the subcommand returns
 * (0 after printing usage for --help, 1 after printing the error). */
static int parse_or_exit(OptParser *p, int argc, char **argv, const char *usage, int *exit_code) {
    Err err = {{0}};
    int rc = opts_parse(p, argc, argv, &err);
    if (rc == 0) return 0;
    if (rc == OPTS_HELP) fputs(usage, stdout), *exit_code = 0;
    else *exit_code = fail_msg(p->cmd, &err);
    return 1;
}

/* The options of every subcommand that loads a .pth/.safetensors/ckpt.bin with rwkv7_load_with:
 * --allow-unknown-tensors (tensors the model does not use become a warning) and --force-memory (a load
 * larger than the memory available becomes a warning). Defaults come from the environment
 * (RWKVLAB_ALLOW_UNKNOWN_TENSORS=1, RWKVLAB_FORCE_MEMORY=1). */
#define LOAD_OPTS(lo) O_FLAG("--allow-unknown-tensors", &(lo).allow_unknown), O_FLAG("--force-memory", &(lo).force_memory)
#define LOAD_USAGE "  --allow-unknown-tensors  load files holding tensors the model does not use (listed as a warning)\n" \
                   "  --force-memory           load even when the estimate exceeds the memory available\n"

/* float32 .npy, shape (T,V), written atomically */
static int write_npy(const char *path, const float *x, int rows, int cols, Err *err) {
    char hdr[128];
    int hl = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", rows, cols);
    int total = 10 + hl + 1;
    int pad = (64 - total % 64) % 64;
    size_t hlen = hl + pad + 1, n = 10 + hlen + (size_t)rows * cols * 4;
    unsigned char *buf = xmalloc(n);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = hlen & 0xff, buf[9] = (hlen >> 8) & 0xff;
    memcpy(buf + 10, hdr, hl);
    memset(buf + 10 + hl, ' ', pad);
    buf[10 + hl + pad] = '\n';
    memcpy(buf + 10 + hlen, x, (size_t)rows * cols * 4);
    int rc = write_file_atomic(path, buf, n, err);
    free(buf);
    return rc;
}

int cmd_info(int argc, char **argv) {
    const char *file = NULL;
    Rwkv7LoadOpts lo;
    rwkv7_load_opts_default(&lo);
    OptSpec spec[] = {LOAD_OPTS(lo)};
    OptParser p = {.cmd = "info", .specs = spec, .nspecs = OPTS_N(spec), .pos_name = "FILE", .pos_min = 1,
                   .pos_max = 1, .pos = &file};
    int ec;
    if (parse_or_exit(&p, argc, argv, "usage: rwkvlab info FILE [--allow-unknown-tensors] [--force-memory]\n"
                      "  architecture, shapes, parameter and state counts of a .pth, .safetensors or ckpt.bin\n"
                      LOAD_USAGE, &ec))
        return ec;
    Rwkv7 *m;
    Err err = {{0}};
    if (rwkv7_load_with(file, &lo, &m, &err)) return fail_msg("info", &err);
    rwkv7_print_info(m, file, stdout);
    rwkv7_free(m);
    return 0;
}

/* --tokens accepts a comma list or the name of a file holding ids (separated by commas or whitespace).
 * On error *ids = NULL and nothing is left allocated; on success the caller frees *ids. */
#define IDS_FILE_MAX ((size_t)1 << 30)
static int ids_from_arg(const char *arg, int **ids, int *n, Err *err) {
    *ids = NULL, *n = 0;
    FILE *f = fopen(arg, "r");
    if (!f) {
        int open_errno = errno;
        if (opts_parse_ints("--tokens", arg, 1, 0, MAX_TOKEN_ID, ids, n, err) == 0) return 0;
        if (!strchr(arg, ',')) { /* one word that is no number: perhaps a file name */
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            return err_set(err, "%s (nor is it a readable file of ids: %s)", msg, strerror(open_errno));
        }
        return -1;
    }
    size_t cap = 1 << 16, len = 0, k;
    char *buf = xmalloc(cap);
    while ((k = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += k;
        if (len + 1 < cap) continue;
        char *bigger = cap < IDS_FILE_MAX ? realloc(buf, cap * 2) : NULL;
        if (!bigger) {
            fclose(f), free(buf);
            return err_set(err, "--tokens %s: the file is too large to read (over %zu bytes)", arg, cap);
        }
        buf = bigger, cap *= 2;
    }
    int bad = ferror(f);
    int e = errno;
    fclose(f);
    if (bad) {
        free(buf);
        return err_set(err, "--tokens %s: cannot read the file: %s", arg, strerror(e));
    }
    buf[len] = 0;
    char what[600];
    snprintf(what, sizeof what, "--tokens %s", arg);
    int rc = opts_parse_ints(what, buf, 0, 0, MAX_TOKEN_ID, ids, n, err);
    free(buf);
    return rc;
}

/* Every token id must be in the model's vocabulary. */
static int check_vocab(const int *ids, int T, int V, Err *err) {
    for (int t = 0; t < T; t++)
        if (ids[t] >= V)
            return err_set(err, "token %d at position %d is outside the model's vocabulary [0,%d)", ids[t], t, V);
    return 0;
}

static const char LOGITS_USAGE[] =
    "usage: rwkvlab logits --model FILE --tokens 0,17,...|IDS_FILE --out FILE.npy [--recurrent]\n"
    "       [--allow-unknown-tensors] [--force-memory]\n"
    "  per-position logits (float32 .npy, T x V) from a zero state; --recurrent runs one token at a\n"
    "  time carrying the state (must agree with the default sequence mode). A NaN or Inf logit is an\n"
    "  error (naming the first position): nothing is written then.\n" LOAD_USAGE;

int cmd_logits(int argc, char **argv) {
    const char *model = NULL, *toks = NULL, *out = NULL;
    int recurrent = 0;
    Rwkv7LoadOpts lo;
    rwkv7_load_opts_default(&lo);
    OptSpec spec[] = {
        LOAD_OPTS(lo),
        O_STR("--model", &model, .required = 1),
        O_STR("--tokens", &toks, .required = 1),
        O_STR("--out", &out, .required = 1),
        O_FLAG("--recurrent", &recurrent),
    };
    OptParser p = {.cmd = "logits", .specs = spec, .nspecs = OPTS_N(spec)};
    int ec;
    if (parse_or_exit(&p, argc, argv, LOGITS_USAGE, &ec)) return ec;
    Err err = {{0}};
    int *ids = NULL, T = 0;
    Rwkv7 *m = NULL;
    float *lg = NULL;
    int rc = 1;
    if (ids_from_arg(toks, &ids, &T, &err) || rwkv7_load_with(model, &lo, &m, &err) ||
        check_vocab(ids, T, m->d.V, &err))
        goto done;
    const int V = m->d.V;
    lg = xmalloc((size_t)T * V * sizeof(float));
    if (recurrent) {
        real *state = xcalloc(rwkv7_state_numel(&m->d, 1), sizeof(real));
        for (int t = 0; t < T; t++) {
            const real *l = rwkv7_forward(m, &ids[t], 1, 1, 1, state, state, NULL);
            for (int v = 0; v < V; v++) lg[(size_t)t * V + v] = (float)l[v];
        }
        free(state);
    } else {
        const real *l = rwkv7_forward(m, ids, 1, T, 16, NULL, NULL, NULL);
        for (size_t i = 0; i < (size_t)T * V; i++) lg[i] = (float)l[i];
    }
    for (size_t i = 0; i < (size_t)T * V; i++)
        if (!isfinite(lg[i])) {
            err_set(&err, "the logits at position %zu (token %d) are not finite (%s at vocabulary entry %zu) — the "
                    "model's weights are NaN/Inf or overflow; nothing was written to %s", i / V, ids[i / V],
                    isnan(lg[i]) ? "NaN" : "Inf", i % V, out);
            goto done;
        }
    rc = write_npy(out, lg, T, V, &err) ? 1 : 0;
done:
    if (rc) fail_msg("logits", &err);
    free(lg), free(ids);
    rwkv7_free(m);
    return rc;
}

int cmd_export(int argc, char **argv) {
    const char *to = NULL, *ckpt = NULL;
    int dt = 0;
    static const TfDType dtypes[] = {TF_BF16, TF_F16, TF_F32}; /* order of the choices */
    Rwkv7LoadOpts lo;
    rwkv7_load_opts_default(&lo);
    OptSpec spec[] = {
        LOAD_OPTS(lo),
        O_STR("--to", &to, .required = 1),
        O_ENUM("--dtype", &dt, "bf16|f16|f32"),
    };
    OptParser p = {.cmd = "export", .specs = spec, .nspecs = OPTS_N(spec),
                   .pos_name = "CKPT", .pos_min = 1, .pos_max = 1, .pos = &ckpt};
    int ec;
    if (parse_or_exit(&p, argc, argv,
                      "usage: rwkvlab export CKPT --to model.pth|model.safetensors [--dtype bf16|f16|f32]\n"
                      "       [--allow-unknown-tensors] [--force-memory]\n"
                      "  writes official key names and shapes (default dtype bf16, as released checkpoints)\n"
                      LOAD_USAGE,
                      &ec))
        return ec;
    TfDType dtype = dtypes[dt];
    Rwkv7 *m;
    Err err = {{0}};
    if (rwkv7_load_with(ckpt, &lo, &m, &err)) return fail_msg("export", &err);
    if (rwkv7_export(m, to, dtype, &err)) {
        rwkv7_free(m);
        return fail_msg("export", &err);
    }
    printf("wrote %s (%s, %d tensors, %zu parameters)\n", to, tf_dtype_name(dtype), m->ntensors, m->nparams);
    rwkv7_free(m);
    return 0;
}

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

/* The trace of one sequence written to `out` atomically: an HDF5 file is built under a temporary name
 * in the same directory (out.tmp.PID), flushed, fsync'ed and renamed over `out` only when complete. On
 * an error, or SIGINT/SIGTERM/SIGHUP/SIGXFSZ, the temporary file is removed: nothing is left, and an
 * existing `out` is untouched (after SIGKILL or a power loss only out.tmp.PID can remain, never a
 * partial `out`). */
static int trace_write(const char *out, const Rwkv7 *m, const Rwkv7Trace *tr, const int *ids, const int *tgt,
                       const int *pred, int T, Err *err) {
    const Rwkv7Dims *d = &m->d;
    char *tmp = trace_tmp;
    if ((size_t)snprintf(tmp, sizeof trace_tmp, "%s.tmp.%ld", out, (long)getpid()) >= sizeof trace_tmp)
        return err_set(err, "--out: path too long (%zu characters)", strlen(out));
    unlink(tmp); /* our own name: a leftover of an earlier process with this pid */
    struct sigaction saved[N_TRACE_SIGNALS];
    trace_guard(1, saved);
    H5RunAttrs at = {.config_ini = "", .code_version = RWKVLAB_VERSION, .seed = 0, .arch = "rwkv7",
                     .param_count = (long)m->nparams, .state_size = (long)d->L * d->H * d->N * d->N,
                     .eig_range = d->extended ? "extended" : "standard"};
    H5Log *h = h5log_create(tmp, &at, err);
    if (!h) {
        unlink(tmp);
        trace_guard(0, saved);
        return -1;
    }
    int rc = h5log_trajectory(h, 0, d->L, T, d->H, d->N, ids, tgt, pred, tr->state, tr->decay, tr->a, tr->kk, err);
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
    "                     [--allow-unknown-tensors] [--force-memory]\n"
    "  state trajectory of one sequence (same schema as training probes: /trajectories/probe0);\n"
    "  targets are the next token, or for --task the task's labels (e.g. --task s5:swaps).\n"
    "  FILE.h5 is replaced only when the trace is complete; on failure nothing is written.\n" LOAD_USAGE;

/* The ids (and, for --task, the labels) of the sequence to trace; caller frees both. */
static int trace_sequence(const char *toks, const char *text, const char *data, const char *task, int T_task,
                          long seed, int **ids, int **task_tgt, int *T, Err *err) {
    *ids = NULL, *task_tgt = NULL, *T = 0;
    if (toks) return ids_from_arg(toks, ids, T, err);
    if (task) {
        RunConfig cfg;
        config_defaults(&cfg);
        char nm[160], set[200];
        snprintf(nm, sizeof nm, "%s", task);
        char *variant = strchr(nm, ':');
        if (variant) *variant++ = 0;
        snprintf(set, sizeof set, "task.name=%s", nm);
        if (config_set(&cfg, set, err)) return -1;
        snprintf(set, sizeof set, "task.variant=%s", variant ? variant : "full");
        if (config_set(&cfg, set, err)) return -1;
        Task *tk = task_create(&cfg, err);
        if (!tk) return -1;
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
    const char *model = NULL, *toks = NULL, *text = NULL, *out = NULL, *data = NULL, *task = NULL;
    int T_task = 64, nlen = 0, nseed = 0;
    long seed = 1;
    Rwkv7LoadOpts lo;
    rwkv7_load_opts_default(&lo);
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
    int *ids = NULL, *task_tgt = NULL, T = 0;
    Rwkv7 *m = NULL;
    if (trace_sequence(toks, text, data, task, T_task, seed, &ids, &task_tgt, &T, &err) ||
        rwkv7_load_with(model, &lo, &m, &err) || check_vocab(ids, T, m->d.V, &err)) {
        free(ids), free(task_tgt);
        rwkv7_free(m);
        return fail_msg("trace", &err);
    }
    const Rwkv7Dims *d = &m->d;
    size_t LT = (size_t)d->L * T;
    Rwkv7Trace tr = {.state = xmalloc(LT * d->H * d->N * d->N * sizeof(float)),
                     .decay = xmalloc(LT * d->C * sizeof(float)), .a = xmalloc(LT * d->C * sizeof(float)),
                     .kk = xmalloc(LT * d->C * sizeof(float))};
    const real *lg = rwkv7_forward(m, ids, 1, T, 16, NULL, NULL, &tr);
    int *pred = xmalloc(T * sizeof(int)), *tgt = xmalloc(T * sizeof(int));
    for (int t = 0; t < T; t++) {
        int am = 0;
        for (int v = 1; v < d->V; v++)
            if (lg[(size_t)t * d->V + v] > lg[(size_t)t * d->V + am]) am = v;
        pred[t] = am;
        tgt[t] = task_tgt ? task_tgt[t] : t + 1 < T ? ids[t + 1] : -1; /* task label, or the next token */
    }
    int rc = trace_write(out, m, &tr, ids, tgt, pred, T, &err);
    const int L = d->L;
    free(tr.state), free(tr.decay), free(tr.a), free(tr.kk), free(pred), free(tgt), free(ids), free(task_tgt);
    rwkv7_free(m);
    if (rc) return fail_msg("trace", &err);
    printf("wrote %s (%d tokens, %d layers)\n", out, T, L);
    return 0;
}

static const char LMEVAL_USAGE[] =
    "usage: rwkvlab lmeval --model FILE --tasks lambada_openai,piqa,... [--device cpu]\n"
    "       [--data DIR] [--out DIR] [--limit N] [--prefix none|0|newline] [--split lmeval|separate]\n"
    "       [--samples] [--bootstrap N] [--no-share] [--quiet] [--batch N (GPU engine; ignored on cpu)]\n"
    "  tasks: lambada_openai, piqa, hellaswag, arc_easy, arc_challenge, winogrande, openbookqa,\n"
    "         copa, sciq (needs DATA/sciq_test.jsonl)\n"
    "  --limit N: the first N documents of each task (default 0 = all); --bootstrap N: 0 (no standard\n"
    "  errors) or 2..1000000 resamples for the perplexity stderr (default 100000)\n"
    "  writes OUT/<model_name_sanitized>/results_<date_id>.json (lm-eval layout; OUT ending in .json:\n"
    "  next to it) and with --samples samples_<task>_<date_id>.jsonl; default prefix token 0, lm-eval\n"
    "  tokenisation split\n";

int cmd_lmeval(int argc, char **argv) {
    LmevalOpts o = {.device = "cpu", .prefix = 0, .bootstrap = 100000, .data_dir = "data", .out_dir = "."};
    int prefix = 1, split = 0, batch = 1;
    static const int prefixes[] = {-1, 0, -2}; /* none, 0, newline (LmevalOpts.prefix) */
    static const int splits[] = {LMEVAL_SPLIT_LMEVAL, LMEVAL_SPLIT_SEPARATE};
    OptSpec spec[] = {
        O_STR("--model", &o.model_path, .required = 1),
        O_STR("--tasks", &o.tasks, .required = 1),
        O_STR("--device", &o.device),
        O_STR("--data", &o.data_dir),
        O_STR("--out", &o.out_dir),
        O_LONG("--limit", &o.limit, 0, (double)LONG_MAX), /* 0 = all */
        O_LONG("--bootstrap", &o.bootstrap, 0, LMEVAL_BOOTSTRAP_MAX), /* 1: lmeval_run says why not */
        O_ENUM("--prefix", &prefix, "none|0|newline"),
        O_ENUM("--split", &split, "lmeval|separate"),
        O_INT("--batch", &batch, 1, MAX_LEN), /* accepted for the CLI of the GPU engine; CPU scores one by one */
        O_FLAG("--samples", &o.samples),
        O_FLAG("--no-share", &o.no_share),
        O_FLAG("--quiet", &o.quiet),
    };
    OptParser p = {.cmd = "lmeval", .specs = spec, .nspecs = OPTS_N(spec)};
    int ec;
    if (parse_or_exit(&p, argc, argv, LMEVAL_USAGE, &ec)) return ec;
    o.prefix = prefixes[prefix];
    o.split = splits[split];
    Err err = {{0}};
    if (lmeval_run(&o, &err)) return fail_msg("lmeval", &err);
    printf("wrote %s\n", o.results_path);
    return 0;
}

static const char INIT_USAGE[] =
    "usage: rwkvlab init --to FILE.pth|FILE.safetensors [--vocab V] [--layers L] [--d-model C]\n"
    "       [--head-size N] [--seed S] [--noise X] [--random X] [--dtype bf16|f16|f32]\n"
    "  official initialisation (plus uniform noise of half-width X on every parameter, so that the\n"
    "  zero-initialised matrices take part); --random X > 0 instead fills every parameter uniformly in\n"
    "  [-X,X] (fast, for benchmark-sized files); defaults: the 0.1B shape V=65536 L=12 C=768 N=64, bf16\n";

/* rwkvlab init: a freshly initialised model written as a checkpoint (for benchmarks and smoke tests). */
int cmd_init(int argc, char **argv) {
    const char *to = NULL;
    Rwkv7Dims d = {.V = 65536, .L = 12, .C = 768, .N = 64, .has_ln0 = 1};
    long seed = 1;
    double noise = 0, uni = 0;
    int dt = 0, nrandom = 0;
    static const TfDType dtypes[] = {TF_BF16, TF_F16, TF_F32}; /* order of the choices */
    OptSpec spec[] = {
        O_STR("--to", &to, .required = 1),
        O_INT("--vocab", &d.V, 1, 1 << 24),
        O_INT("--layers", &d.L, 1, 1024),
        O_INT("--d-model", &d.C, 1, 65536),
        O_INT("--head-size", &d.N, 1, 65536),
        O_LONG("--seed", &seed, 0, MAX_SEED),
        O_REAL("--noise", &noise, 0, 1e30),
        O_REAL("--random", &uni, 0, 1e30, .lo_open = 1, .count = &nrandom),
        O_ENUM("--dtype", &dt, "bf16|f16|f32"),
    };
    OptParser p = {.cmd = "init", .specs = spec, .nspecs = OPTS_N(spec)};
    int ec;
    if (parse_or_exit(&p, argc, argv, INIT_USAGE, &ec)) return ec;
    if (d.C % d.N) {
        fprintf(stderr, "rwkvlab init: --head-size %d does not divide --d-model %d — pick a head size that divides it\n",
                d.N, d.C);
        return 1;
    }
    TfDType dtype = dtypes[dt];
    Rwkv7 *m = rwkv7_create_inference(&d);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, (unsigned long)seed);
    if (nrandom) /* fast, for benchmark-sized files: the official init orthogonalises every matrix */
        for (size_t i = 0; i < m->nparams; i++) m->params[i] = (real)(uni * (2 * gsl_rng_uniform(rng) - 1));
    else
        rwkv7_init_official(m, rng);
    for (size_t i = 0; noise > 0 && i < m->nparams; i++) m->params[i] += (real)(noise * (2 * gsl_rng_uniform(rng) - 1));
    gsl_rng_free(rng);
    Err err = {{0}};
    int rc = rwkv7_export(m, to, dtype, &err);
    if (rc) fail_msg("init", &err);
    else printf("wrote %s (%zu parameters, %s)\n", to, m->nparams, tf_dtype_name(dtype));
    rwkv7_free(m);
    return rc ? 1 : 0;
}

static const char EVALTASK_USAGE[] =
    "usage: rwkvlab evaltask RUN_DIR|CKPT --lengths 32,64,... [--n N] [--seed S]\n"
    "  token and full-sequence accuracy of a trained model on fixed test sets of each length\n"
    "  (the task and, by default, the test-set seed and size come from the run's config)\n";

/* rwkvlab evaltask RUN_DIR|CKPT --lengths 32,64,...: synthetic-task accuracy vs length of a trained model. */
int cmd_evaltask(int argc, char **argv) {
    const char *lens = NULL, *run = NULL;
    int n = 0, nn = 0, nseed = 0;
    long seed_opt = 0;
    OptSpec spec[] = {
        O_STR("--lengths", &lens, .required = 1),
        O_INT("--n", &n, 1, MAX_LEN, .count = &nn),
        O_LONG("--seed", &seed_opt, 0, MAX_SEED, .count = &nseed),
    };
    OptParser p = {.cmd = "evaltask", .specs = spec, .nspecs = OPTS_N(spec),
                   .pos_name = "RUN_DIR|CKPT", .pos_min = 1, .pos_max = 1, .pos = &run};
    int ec;
    if (parse_or_exit(&p, argc, argv, EVALTASK_USAGE, &ec)) return ec;
    Err err = {{0}};
    int *L = NULL, nL = 0;
    if (opts_parse_ints("--lengths", lens, 1, 1, MAX_LEN, &L, &nL, &err)) return fail_msg("evaltask", &err);
    char ckpt[4200];
    struct stat st;
    if (stat(run, &st) == 0 && S_ISDIR(st.st_mode)) snprintf(ckpt, sizeof ckpt, "%s/ckpt.bin", run);
    else snprintf(ckpt, sizeof ckpt, "%s", run);
    Rwkv7 *m = NULL;
    char *ini = NULL;
    long step = 0;
    if (ckpt_load_model(ckpt, &m, &step, &ini, &err)) {
        free(L);
        return fail_msg("evaltask", &err);
    }
    /* the config the model was trained with travels inside ckpt.bin */
    char tmp[] = "/tmp/rwkvlab_evaltask_XXXXXX";
    int fd = mkstemp(tmp);
    RunConfig cfg;
    config_defaults(&cfg);
    int rc = 1;
    Task *task = NULL;
    if (fd < 0 || write(fd, ini, strlen(ini)) != (ssize_t)strlen(ini)) {
        err_set(&err, "cannot write a temporary file in /tmp: %s", strerror(errno));
        fail_msg("evaltask", &err);
        goto out;
    }
    if (config_load(&cfg, tmp, &err) || !(task = task_create(&cfg, &err))) {
        fail_msg("evaltask", &err);
        goto out;
    }
    if (!nn) n = cfg.task.test_size;
    unsigned long seed = nseed ? (unsigned long)seed_opt : (unsigned long)cfg.experiment.seeds[0];
    printf("%s, step %ld; %s; %d sequences per length, test seed %lu\n", ckpt, step, task_describe(task), n, seed);
    printf("  %8s  %9s  %9s\n", "length", "token_acc", "seq_acc");
    for (int i = 0; i < nL; i++) {
        Batch b;
        task_testset(task, seed, L[i], n, &b);
        double ta, sa;
        train_evaluate(m, b.inputs, b.targets, b.mask, n, L[i], 16, 1L << 16, &ta, &sa);
        printf("  %8d  %9.4f  %9.4f\n", L[i], ta, sa);
        fflush(stdout);
        batch_free(&b);
    }
    rc = 0;
out:
    if (fd >= 0) close(fd), unlink(tmp);
    free(L), free(ini);
    task_free(task);
    rwkv7_free(m);
    return rc;
}
