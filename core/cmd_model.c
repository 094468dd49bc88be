/* cmd_model.c -- subcommands on checkpoints: info, logits, export, trace. */
#include "cmd_model.h"

#include <errno.h>
#include <gsl/gsl_rng.h>
#include <math.h>
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
#include "rwkv7_io.h"
#include "tokenizer.h"

/* "0,17,5" -> ids; error on anything else */
static int parse_ids(const char *s, int **ids, int *n, Err *err) {
    int cap = 16;
    *ids = xmalloc(cap * sizeof(int));
    *n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > 1 << 30) {
            free(*ids);
            return err_set(err, "--tokens: '%s' is not a comma-separated list of token ids (at '%.10s')", s, p);
        }
        if (*n == cap) *ids = realloc(*ids, (cap *= 2) * sizeof(int));
        (*ids)[(*n)++] = (int)v;
        p = end;
        while (*p == ' ') p++;
        if (*p == ',') p++;
        else if (*p) {
            free(*ids);
            return err_set(err, "--tokens: unexpected '%c' in '%s'", *p, s);
        }
    }
    if (*n == 0) return err_set(err, "--tokens: empty list");
    return 0;
}

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

static const char *opt(int argc, char **argv, const char *name) {
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return argv[i + 1];
    return NULL;
}
static int flag(int argc, char **argv, const char *name) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], name)) return 1;
    return 0;
}

int cmd_info(int argc, char **argv) {
    if (argc < 2 || flag(argc, argv, "--help")) {
        printf("usage: rwkvlab info FILE   (.pth, .safetensors or ckpt.bin)\n");
        return argc < 2;
    }
    Rwkv7 *m;
    Err err = {{0}};
    if (rwkv7_load(argv[1], &m, &err)) {
        fprintf(stderr, "rwkvlab info: %s\n", err.msg);
        return 1;
    }
    rwkv7_print_info(m, argv[1], stdout);
    rwkv7_free(m);
    return 0;
}

int cmd_logits(int argc, char **argv) {
    const char *model = opt(argc, argv, "--model"), *toks = opt(argc, argv, "--tokens"), *out = opt(argc, argv, "--out");
    if (!model || !toks || !out || flag(argc, argv, "--help")) {
        printf("usage: rwkvlab logits --model FILE --tokens 0,17,... --out FILE.npy [--recurrent]\n"
               "  per-position logits (float32 .npy, T x V) from a zero state; --recurrent runs one token at a\n"
               "  time carrying the state (must agree with the default sequence mode)\n");
        return !flag(argc, argv, "--help");
    }
    Err err = {{0}};
    int *ids, T;
    Rwkv7 *m;
    if (parse_ids(toks, &ids, &T, &err) || rwkv7_load(model, &m, &err)) {
        fprintf(stderr, "rwkvlab logits: %s\n", err.msg);
        return 1;
    }
    const int V = m->d.V;
    for (int t = 0; t < T; t++)
        if (ids[t] >= V) {
            fprintf(stderr, "rwkvlab logits: token %d at position %d is outside the model's vocabulary [0,%d)\n",
                    ids[t], t, V);
            return 1;
        }
    float *lg = xmalloc((size_t)T * V * sizeof(float));
    if (flag(argc, argv, "--recurrent")) {
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
    int rc = write_npy(out, lg, T, V, &err);
    if (rc) fprintf(stderr, "rwkvlab logits: %s\n", err.msg);
    free(lg), free(ids);
    rwkv7_free(m);
    return rc ? 1 : 0;
}

int cmd_export(int argc, char **argv) {
    const char *to = opt(argc, argv, "--to"), *dt = opt(argc, argv, "--dtype");
    if (argc < 2 || !to || flag(argc, argv, "--help")) {
        printf("usage: rwkvlab export CKPT --to model.pth|model.safetensors [--dtype bf16|f16|f32]\n"
               "  writes official key names and shapes (default dtype bf16, as released checkpoints)\n");
        return !flag(argc, argv, "--help");
    }
    TfDType dtype = TF_BF16;
    if (dt && !strcmp(dt, "f32")) dtype = TF_F32;
    else if (dt && !strcmp(dt, "f16")) dtype = TF_F16;
    else if (dt && strcmp(dt, "bf16")) {
        fprintf(stderr, "rwkvlab export: --dtype %s: use bf16, f16 or f32\n", dt);
        return 1;
    }
    Rwkv7 *m;
    Err err = {{0}};
    if (rwkv7_load(argv[1], &m, &err) || rwkv7_export(m, to, dtype, &err)) {
        fprintf(stderr, "rwkvlab export: %s\n", err.msg);
        return 1;
    }
    printf("wrote %s (%s, %d tensors, %zu parameters)\n", to, tf_dtype_name(dtype), m->ntensors, m->nparams);
    rwkv7_free(m);
    return 0;
}

/* --tokens accepts a comma list or the name of a file holding ids (separated by commas or whitespace) */
static int ids_from_arg(const char *arg, int **ids, int *n, Err *err) {
    FILE *f = fopen(arg, "r");
    if (!f) return parse_ids(arg, ids, n, err);
    size_t cap = 1 << 16, len = 0;
    char *buf = xmalloc(cap);
    size_t k;
    while ((k = fread(buf + len, 1, cap - len - 1, f)) > 0)
        if ((len += k) + 1 == cap) buf = realloc(buf, cap *= 2);
    fclose(f);
    buf[len] = 0;
    for (char *c = buf; *c; c++)
        if (*c == ' ' || *c == '\n' || *c == '\t' || *c == '\r') *c = ',';
    char *p = buf; /* collapse runs of separators */
    for (char *q = buf; *q; q++)
        if (!(*q == ',' && (p == buf || p[-1] == ','))) *p++ = *q;
    if (p > buf && p[-1] == ',') p--;
    *p = 0;
    int rc = parse_ids(buf, ids, n, err);
    if (rc) err_set(err, "--tokens %s: the file must hold token ids separated by commas or whitespace", arg);
    free(buf);
    return rc;
}

int cmd_trace(int argc, char **argv) {
    const char *model = opt(argc, argv, "--model"), *toks = opt(argc, argv, "--tokens"),
               *text = opt(argc, argv, "--text"), *out = opt(argc, argv, "--out"),
               *data = opt(argc, argv, "--data"), *task = opt(argc, argv, "--task");
    if (!model || !out || (!toks && !text && !task) || flag(argc, argv, "--help")) {
        printf("usage: rwkvlab trace --model FILE (--tokens 0,17,...|IDS_FILE | --text STR [--data DIR] |\n"
               "                     --task NAME[:VARIANT] [--len T] [--seed S]) --out FILE.h5\n"
               "  state trajectory of one sequence (same schema as training probes: /trajectories/probe0);\n"
               "  targets are the next token, or for --task the task's labels (e.g. --task s5:swaps)\n");
        return !flag(argc, argv, "--help");
    }
    Err err = {{0}};
    int *ids = NULL, *task_tgt = NULL, T = 0;
    if (toks) {
        if (ids_from_arg(toks, &ids, &T, &err)) goto fail;
    } else if (task) {
        RunConfig cfg;
        config_defaults(&cfg);
        char nm[160], set[200];
        snprintf(nm, sizeof nm, "%s", task);
        char *variant = strchr(nm, ':');
        if (variant) *variant++ = 0;
        snprintf(set, sizeof set, "task.name=%s", nm);
        if (config_set(&cfg, set, &err)) goto fail;
        if (variant) {
            snprintf(set, sizeof set, "task.variant=%s", variant);
            if (config_set(&cfg, set, &err)) goto fail;
        } else if (config_set(&cfg, "task.variant=full", &err)) goto fail;
        Task *tk = task_create(&cfg, &err);
        if (!tk) goto fail;
        T = opt(argc, argv, "--len") ? atoi(opt(argc, argv, "--len")) : 64;
        unsigned long seed = opt(argc, argv, "--seed") ? strtoul(opt(argc, argv, "--seed"), NULL, 10) : 1;
        if (T < 1) {
            task_free(tk);
            err_set(&err, "--len must be >= 1");
            goto fail;
        }
        Batch b;
        task_testset(tk, seed, T, 1, &b);
        ids = xmalloc(T * sizeof(int)), task_tgt = xmalloc(T * sizeof(int));
        memcpy(ids, b.inputs, T * sizeof(int)), memcpy(task_tgt, b.targets, T * sizeof(int));
        batch_free(&b);
        task_free(tk);
    } else {
        char vp[4096];
        snprintf(vp, sizeof vp, "%s/rwkv_vocab_v20230424.txt", data ? data : "data");
        Tokenizer *tk = tokenizer_load(vp, &err);
        if (!tk) goto fail;
        size_t n;
        int rc = tokenizer_encode(tk, text, strlen(text), &ids, &n, &err);
        tokenizer_free(tk);
        if (rc) goto fail;
        T = (int)n;
    }
    Rwkv7 *m;
    if (rwkv7_load(model, &m, &err)) goto fail;
    const Rwkv7Dims *d = &m->d;
    for (int t = 0; t < T; t++)
        if (ids[t] >= d->V) {
            err_set(&err, "token %d at position %d is outside the vocabulary [0,%d)", ids[t], t, d->V);
            rwkv7_free(m);
            goto fail;
        }
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
    H5RunAttrs at = {.config_ini = "", .code_version = RWKVLAB_VERSION, .seed = 0, .arch = "rwkv7",
                     .param_count = (long)m->nparams, .state_size = (long)d->L * d->H * d->N * d->N,
                     .eig_range = d->extended ? "extended" : "standard"};
    H5Log *h = h5log_create(out, &at, &err);
    int rc = !h || h5log_trajectory(h, 0, d->L, T, d->H, d->N, ids, tgt, pred, tr.state, tr.decay, tr.a, tr.kk, &err);
    h5log_close(h);
    if (h && rc) unlink(out); /* we created it: leave no half-written result */
    const int L = d->L;
    free(tr.state), free(tr.decay), free(tr.a), free(tr.kk), free(pred), free(tgt), free(ids), free(task_tgt);
    rwkv7_free(m);
    if (rc) {
        fprintf(stderr, "rwkvlab trace: %s\n", err.msg);
        return 1;
    }
    printf("wrote %s (%d tokens, %d layers)\n", out, T, L);
    return 0;
fail:
    free(ids), free(task_tgt);
    fprintf(stderr, "rwkvlab trace: %s\n", err.msg);
    return 1;
}

int cmd_lmeval(int argc, char **argv) {
    LmevalOpts o = {.device = "cpu", .prefix = 0, .bootstrap = 100000, .data_dir = "data", .out_dir = "."};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: rwkvlab lmeval --model FILE --tasks lambada_openai,piqa,... [--device cpu]\n"
                   "       [--data DIR] [--out DIR] [--limit N] [--prefix none|0|newline] [--split lmeval|separate]\n"
                   "       [--samples] [--bootstrap N] [--no-share] [--quiet] [--batch N (GPU engine; ignored on cpu)]\n"
                   "  tasks: lambada_openai, piqa, hellaswag, arc_easy, arc_challenge, winogrande, openbookqa,\n"
                   "         copa, sciq (needs DATA/sciq_test.jsonl)\n"
                   "  writes OUT/results_<time>.json (lm-eval layout) and with --samples\n"
                   "  OUT/samples_<task>_<time>.jsonl; default prefix token 0, lm-eval tokenisation split\n");
            return 0;
        }
        if (!v && a[0] == '-' && strcmp(a, "--samples") && strcmp(a, "--no-share") && strcmp(a, "--quiet")) {
            fprintf(stderr, "rwkvlab lmeval: option %s needs a value\n", a);
            return 1;
        }
        if (!strcmp(a, "--model")) o.model_path = argv[++i];
        else if (!strcmp(a, "--tasks")) o.tasks = argv[++i];
        else if (!strcmp(a, "--device")) o.device = argv[++i];
        else if (!strcmp(a, "--data")) o.data_dir = argv[++i];
        else if (!strcmp(a, "--out")) o.out_dir = argv[++i];
        else if (!strcmp(a, "--limit")) o.limit = atol(argv[++i]);
        else if (!strcmp(a, "--bootstrap")) o.bootstrap = atol(argv[++i]);
        else if (!strcmp(a, "--batch")) ++i; /* accepted for the CLI of the GPU engine; CPU scores one by one */
        else if (!strcmp(a, "--samples")) o.samples = 1;
        else if (!strcmp(a, "--no-share")) o.no_share = 1;
        else if (!strcmp(a, "--quiet")) o.quiet = 1;
        else if (!strcmp(a, "--prefix")) {
            v = argv[++i];
            if (!strcmp(v, "none")) o.prefix = -1;
            else if (!strcmp(v, "0")) o.prefix = 0;
            else if (!strcmp(v, "newline")) o.prefix = -2;
            else {
                fprintf(stderr, "rwkvlab lmeval: --prefix %s: use none, 0 or newline\n", v);
                return 1;
            }
        } else if (!strcmp(a, "--split")) {
            v = argv[++i];
            if (!strcmp(v, "lmeval")) o.split = LMEVAL_SPLIT_LMEVAL;
            else if (!strcmp(v, "separate")) o.split = LMEVAL_SPLIT_SEPARATE;
            else {
                fprintf(stderr, "rwkvlab lmeval: --split %s: use lmeval or separate\n", v);
                return 1;
            }
        } else {
            fprintf(stderr, "rwkvlab lmeval: unknown option '%s' (see --help)\n", a);
            return 1;
        }
    }
    if (!o.model_path || !o.tasks) {
        fprintf(stderr, "rwkvlab lmeval: --model and --tasks are required (see --help)\n");
        return 1;
    }
    Err err = {{0}};
    if (lmeval_run(&o, &err)) {
        fprintf(stderr, "rwkvlab lmeval: %s\n", err.msg);
        return 1;
    }
    printf("wrote %s\n", o.results_path);
    return 0;
}

/* rwkvlab init: a freshly initialised model written as a checkpoint (for benchmarks and smoke tests). */
int cmd_init(int argc, char **argv) {
    const char *to = opt(argc, argv, "--to");
    if (!to || flag(argc, argv, "--help")) {
        printf("usage: rwkvlab init --to FILE.pth|FILE.safetensors [--vocab V] [--layers L] [--d-model C]\n"
               "       [--head-size N] [--seed S] [--noise X] [--random X] [--dtype bf16|f16|f32]\n"
               "  official initialisation (plus uniform noise of half-width X on every parameter, so that the\n"
               "  zero-initialised matrices take part); --random X instead fills every parameter uniformly in [-X,X]\n"
               "  (fast, for benchmark-sized files); defaults: the 0.1B shape V=65536 L=12 C=768 N=64\n");
        return !flag(argc, argv, "--help");
    }
    const char *s;
    Rwkv7Dims d = {.V = 65536, .L = 12, .C = 768, .N = 64, .has_ln0 = 1};
    if ((s = opt(argc, argv, "--vocab"))) d.V = atoi(s);
    if ((s = opt(argc, argv, "--layers"))) d.L = atoi(s);
    if ((s = opt(argc, argv, "--d-model"))) d.C = atoi(s);
    if ((s = opt(argc, argv, "--head-size"))) d.N = atoi(s);
    if (d.V < 1 || d.L < 1 || d.C < 1 || d.N < 1 || d.C % d.N) {
        fprintf(stderr, "rwkvlab init: need V, L, C, N >= 1 with N dividing C (got V=%d L=%d C=%d N=%d)\n", d.V, d.L,
                d.C, d.N);
        return 1;
    }
    unsigned long seed = (s = opt(argc, argv, "--seed")) ? strtoul(s, NULL, 10) : 1;
    double noise = (s = opt(argc, argv, "--noise")) ? atof(s) : 0;
    TfDType dtype = TF_BF16;
    if ((s = opt(argc, argv, "--dtype"))) dtype = !strcmp(s, "f32") ? TF_F32 : !strcmp(s, "f16") ? TF_F16 : TF_BF16;
    Rwkv7 *m = rwkv7_create_inference(&d);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, seed);
    double uni = (s = opt(argc, argv, "--random")) ? atof(s) : 0;
    if (uni > 0) /* fast, for benchmark-sized files: the official init orthogonalises every matrix */
        for (size_t i = 0; i < m->nparams; i++) m->params[i] = (real)(uni * (2 * gsl_rng_uniform(rng) - 1));
    else
        rwkv7_init_official(m, rng);
    for (size_t i = 0; noise > 0 && i < m->nparams; i++) m->params[i] += (real)(noise * (2 * gsl_rng_uniform(rng) - 1));
    gsl_rng_free(rng);
    Err err = {{0}};
    int rc = rwkv7_export(m, to, dtype, &err);
    if (rc) fprintf(stderr, "rwkvlab init: %s\n", err.msg);
    else printf("wrote %s (%zu parameters, %s)\n", to, m->nparams, tf_dtype_name(dtype));
    rwkv7_free(m);
    return rc ? 1 : 0;
}

/* rwkvlab evaltask RUN_DIR|CKPT --lengths 32,64,...: synthetic-task accuracy vs length of a trained model. */
int cmd_evaltask(int argc, char **argv) {
    const char *lens = opt(argc, argv, "--lengths"), *ns = opt(argc, argv, "--n"), *ss = opt(argc, argv, "--seed");
    if (argc < 2 || argv[1][0] == '-' || !lens || flag(argc, argv, "--help")) {
        printf("usage: rwkvlab evaltask RUN_DIR|CKPT --lengths 32,64,... [--n N] [--seed S]\n"
               "  token and full-sequence accuracy of a trained model on fixed test sets of each length\n"
               "  (the task and, by default, the test-set seed and size come from the run's config)\n");
        return !flag(argc, argv, "--help");
    }
    Err err = {{0}};
    char ckpt[4200];
    struct stat st;
    if (stat(argv[1], &st) == 0 && S_ISDIR(st.st_mode)) snprintf(ckpt, sizeof ckpt, "%s/ckpt.bin", argv[1]);
    else snprintf(ckpt, sizeof ckpt, "%s", argv[1]);
    Rwkv7 *m = NULL;
    char *ini = NULL;
    long step = 0;
    if (ckpt_load_model(ckpt, &m, &step, &ini, &err)) {
        fprintf(stderr, "rwkvlab evaltask: %s\n", err.msg);
        return 1;
    }
    /* the config the model was trained with travels inside ckpt.bin */
    char tmp[] = "/tmp/rwkvlab_evaltask_XXXXXX";
    int fd = mkstemp(tmp);
    RunConfig cfg;
    config_defaults(&cfg);
    int rc = 1;
    int *L = NULL, nL = 0;
    Task *task = NULL;
    if (fd < 0 || write(fd, ini, strlen(ini)) != (ssize_t)strlen(ini)) {
        fprintf(stderr, "rwkvlab evaltask: cannot write a temporary file\n");
        goto out;
    }
    if (config_load(&cfg, tmp, &err) || parse_ids(lens, &L, &nL, &err) || !(task = task_create(&cfg, &err))) {
        fprintf(stderr, "rwkvlab evaltask: %s\n", err.msg);
        goto out;
    }
    int n = ns ? atoi(ns) : cfg.task.test_size;
    unsigned long seed = ss ? strtoul(ss, NULL, 10) : (unsigned long)cfg.experiment.seeds[0];
    if (n < 1) {
        fprintf(stderr, "rwkvlab evaltask: --n must be >= 1\n");
        goto out;
    }
    printf("%s, step %ld; %s; %d sequences per length, test seed %lu\n", ckpt, step, task_describe(task), n, seed);
    printf("  %8s  %9s  %9s\n", "length", "token_acc", "seq_acc");
    for (int i = 0; i < nL; i++) {
        if (L[i] < 1) continue;
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
