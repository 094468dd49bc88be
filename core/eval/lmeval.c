/* lmeval.c -- run lm-eval tasks on a checkpoint: inputs checked, requests, metrics, lm-eval-compatible JSON.
 * Order (nothing is scored before every input is known good): options and task names, the vocabulary,
 * every task's data, the output directory (created, writable), the model, every request tokenised and
 * inside the model's vocabulary; then scoring; then the samples files and, last, the results file.
 * Metrics (lmeval.md): acc = argmax logprob == gold (ties -> first), acc_norm = argmax logprob /
 * choice_len (Unicode code points), stderr = sample std (n-1) / sqrt(n); lambada perplexity =
 * exp(-mean summed logprob per document), its stderr by bootstrap over documents. */
#include "lmeval.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cuda_rwkv7.h"
#include "lmeval_data.h"
#include "lmeval_out.h"
#include "lmeval_shard.h"
#include "model_io.h"
#include "tokenizer.h"

#ifndef RWKVLAB_VERSION
#define RWKVLAB_VERSION "unknown"
#endif

/* log-softmax of one row at index y, and whether y is the argmax. The terms exp(l - max) are computed
 * in float (expf: the logits are fp32 anyway) and summed in double. */
static double logprob_at(const real *lg, int V, int y, int *is_max) {
    int am = 0;
    for (int i = 1; i < V; i++)
        if (lg[i] > lg[am]) am = i;
    double z = 0;
    const float mx = (float)lg[am];
    for (int i = 0; i < V; i++) z += expf((float)lg[i] - mx);
    *is_max = lg[y] >= lg[am];
    return (double)lg[y] - lg[am] - log(z);
}

double lmeval_score_continuation(Model *m, real *state, const real *lg0, const int *cont, int ncont, int *greedy) {
    const int V = m->V;
    int g;
    double lp = logprob_at(lg0, V, cont[0], &g);
    *greedy = g;
    if (ncont > 1) {
        /* tokens cont[0..n-2] predict cont[1..n-1]; positions are independent: parallel, summed in order */
        ModelFwd f = {.K = 16, .state_in = state, .state_out = state};
        const real *lg = model_forward(m, cont, 1, ncont - 1, &f);
        double *lps = xmalloc(ncont * sizeof(double));
        int *gs = xmalloc(ncont * sizeof(int));
#pragma omp parallel for schedule(static)
        for (int j = 1; j < ncont; j++) lps[j] = logprob_at(lg + (size_t)(j - 1) * V, V, cont[j], &gs[j]);
        for (int j = 1; j < ncont; j++) lp += lps[j], *greedy &= gs[j];
        free(lps), free(gs);
    }
    return lp;
}

static double mean(const double *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    return n ? s / n : 0;
}
static double stderr_of(const double *x, int n) {
    double mu = mean(x, n), s = 0;
    for (int i = 0; i < n; i++) s += (x[i] - mu) * (x[i] - mu);
    return sqrt(s / (n - 1)) / sqrt((double)n);
}

/* perplexity = exp(-mean(ll)); bootstrap stderr over documents (n >= 2, iters >= 2). The resamples run in
 * blocks of BOOT_BLOCK, in parallel; block k draws its document indices from its own counter-based stream
 * (splitmix64 of (seed, k, draw); index = the high 32 bits times n, shifted down: a bias below n / 2^32),
 * and the sums are added in block order, so the result does not depend on the number of threads.
 * 100000 resamples of LAMBADA's 5153 documents are 5e8 draws: ~0.5 s on one core. */
#define BOOT_BLOCK 1000
static uint64_t boot_mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
static double bootstrap_ppl_stderr(const double *ll, int n, long iters, unsigned long seed) {
    const long nb = (iters + BOOT_BLOCK - 1) / BOOT_BLOCK;
    double *bs = xcalloc(2 * (size_t)nb, sizeof(double));
#pragma omp parallel for schedule(dynamic)
    for (long k = 0; k < nb; k++) {
        uint64_t x = boot_mix(boot_mix((uint64_t)seed) ^ (uint64_t)k);
        double s = 0, s2 = 0;
        for (long it = k * BOOT_BLOCK; it < iters && it < (k + 1) * BOOT_BLOCK; it++) {
            double acc = 0;
            for (int i = 0; i < n; i++) acc += ll[(uint32_t)(((boot_mix(x++) >> 32) * (uint64_t)n) >> 32)];
            double p = exp(-acc / n);
            s += p, s2 += p * p;
        }
        bs[2 * k] = s, bs[2 * k + 1] = s2;
    }
    double s = 0, s2 = 0;
    for (long k = 0; k < nb; k++) s += bs[2 * k], s2 += bs[2 * k + 1];
    free(bs);
    double mu = s / iters;
    return sqrt(fmax(0, (s2 - iters * mu * mu) / (iters - 1)));
}

/* ---- inputs, all checked before the first forward pass ---------------------------------------- */

/* One request, tokenised: context ids (prefix included; never empty) and continuation ids (never empty). */
typedef struct {
    int *ctx, *cont;
    int nctx, ncont;
} LmReq;

/* One task of the run: its documents, their requests and, once scored, its results and samples. */
typedef struct {
    LmTask t;
    int n;        /* documents scored (--limit applied) */
    int *first;   /* (n) index of document i's first request in req */
    LmReq *req;   /* (sum of ncont over the n documents) */
    long ntok;    /* tokens in all requests */
    int lo, hi;   /* documents [lo, hi) are scored: all, or this shard's range (--shard, lmeval_select_range) */
    long rtok;    /* tokens of the requests of documents [lo, hi) */
    uint64_t req_hash; /* every tokenised request of the n documents (shard files compare it) */
    double *acc, *accn, *ll; /* (hi - lo) per-document values: acc, acc_norm, lambada's summed logprob */
    cJSON *res;   /* results["<task>"] */
    LmBuf samples; /* samples_<task>_*.jsonl text (with --samples) */
} LmJob;

static void lmeval_job_free(LmJob *j) {
    if (j->req)
        for (int di = 0; di < j->n; di++)
            for (int c = 0; c < j->t.docs[di].ncont; c++) free(j->req[j->first[di] + c].ctx), free(j->req[j->first[di] + c].cont);
    free(j->req), free(j->first);
    free(j->acc), free(j->accn), free(j->ll);
    cJSON_Delete(j->res);
    lmbuf_free(&j->samples);
    lmeval_task_free(&j->t);
    memset(j, 0, sizeof *j);
}

static int lmeval_known_task(const char *name, size_t len) {
    const char *s = lmeval_task_names(); /* "a, b, c" */
    for (;;) {
        while (*s == ' ') s++;
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == len && !memcmp(s, name, len)) return 1;
        if (!e) return 0;
        s = e + 1;
    }
}

/* --tasks: a comma list of known task names, each once; blanks around a name are ignored. */
static int lmeval_parse_tasks(const char *list, char names[][32], int *ntasks, Err *err) {
    *ntasks = 0;
    const char *s = list ? list : "";
    size_t all = strspn(s, " \t");
    if (!s[all])
        return err_set(err, "--tasks is empty; give a comma-separated list of tasks, e.g. --tasks piqa,arc_easy "
                            "(known: %s)", lmeval_task_names());
    for (int idx = 1;; idx++) {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        const char *b = s;
        while (n && (*b == ' ' || *b == '\t')) b++, n--;
        while (n && (b[n - 1] == ' ' || b[n - 1] == '\t')) n--;
        if (!n)
            return err_set(err, "--tasks '%.200s': entry %d is empty (two commas in a row, or a comma at an end); "
                                "list task names separated by single commas", list, idx);
        if (!lmeval_known_task(b, n))
            return err_set(err, "--tasks: unknown task '%.*s'; known tasks: %s", (int)(n > 100 ? 100 : n), b,
                           lmeval_task_names());
        for (int k = 0; k < *ntasks; k++)
            if (strlen(names[k]) == n && !memcmp(names[k], b, n))
                return err_set(err, "--tasks '%.200s': task '%s' is listed twice; list each task once", list, names[k]);
        if (*ntasks >= LMEVAL_MAX_TASKS) return err_set(err, "--tasks: more than %d tasks", LMEVAL_MAX_TASKS);
        snprintf(names[(*ntasks)++], 32, "%.*s", (int)n, b);
        if (!e) return 0;
        s = e + 1;
    }
}

static int lmeval_is_cuda(const LmevalOpts *o) { return o->device && !strcmp(o->device, "cuda"); }

static int lmeval_check_opts(const LmevalOpts *o, Err *err) {
    if (o->device && strcmp(o->device, "cpu") && strcmp(o->device, "cuda"))
        return err_set(err, "--device %s: use cpu or cuda", o->device);
    CudaDType dt;
    if (o->dtype && cuda_dtype_parse(o->dtype, &dt))
        return err_set(err, "--dtype %s: use bf16, fp16 or fp32 (the GPU's weight storage)", o->dtype);
    if (o->dtype && !lmeval_is_cuda(o) && dt != CUDA_DT_F32)
        return err_set(err, "--dtype %s: the CPU engine computes in fp32 only; --dtype chooses the weights of "
                            "--device cuda", o->dtype);
    if (o->batch < 0) return err_set(err, "--batch %d: use a number of requests >= 1, or 0 for as many as fit", o->batch);
    if (lmeval_is_cuda(o)) {
        char why[600];
        if (!cuda_built())
            return err_set(err, "--device cuda: not available: %s; or use --device cpu", (cuda_available(why, sizeof why), why));
        if (!cuda_available(why, sizeof why))
            return err_set(err, "--device cuda: no usable GPU found: %s; use --device cpu", why);
    }
    if (!o->model_path || !*o->model_path) return err_set(err, "--model FILE is required (a .pth or .safetensors checkpoint)");
    if (access(o->model_path, R_OK))
        return err_set(err, "--model %s: cannot read the file: %s", o->model_path, strerror(errno));
    if (o->limit < 0)
        return err_set(err, "--limit %ld: the number of documents per task must be >= 0 (0 = all)", o->limit);
    if (o->bootstrap < 0 || o->bootstrap == 1 || o->bootstrap > LMEVAL_BOOTSTRAP_MAX)
        return err_set(err, "--bootstrap %ld: use 0 (no standard errors, as lm-eval) or 2..%d resamples (lm-eval's "
                            "default is 100000)", o->bootstrap, LMEVAL_BOOTSTRAP_MAX);
    if (o->split != LMEVAL_SPLIT_LMEVAL && o->split != LMEVAL_SPLIT_SEPARATE)
        return err_set(err, "tokenisation split %d: use lmeval or separate", o->split);
    if (o->prefix < -2) return err_set(err, "prefix token %d: use none, 0 or newline", o->prefix);
    return 0;
}

/* Tokenise every request of the first j->n documents; checks that each continuation has tokens and that
 * every token is inside the model's vocabulary. */
static int lmeval_tokenise(LmJob *j, const Tokenizer *tok, int V, int split, int prefix, Err *err) {
    size_t nreq = 0;
    j->first = xmalloc((size_t)(j->n ? j->n : 1) * sizeof(int));
    for (int di = 0; di < j->n; di++) j->first[di] = (int)nreq, nreq += j->t.docs[di].ncont;
    j->req = xcalloc(nreq ? nreq : 1, sizeof(LmReq));
    for (int di = 0; di < j->n; di++) {
        const LmDoc *d = &j->t.docs[di];
        for (int c = 0; c < d->ncont; c++) {
            LmReq *r = &j->req[j->first[di] + c];
            int *cids, *kids;
            size_t nc, nk;
            if (lmeval_encode_request(tok, lmeval_doc_context(d, c), d->cont[c], split, prefix, &cids, &nc, &kids, &nk,
                                      err))
                return -1;
            if (nc == 0) { /* empty context: lm-eval conditions on end-of-text */
                free(cids);
                cids = xmalloc(sizeof(int));
                cids[0] = 0, nc = 1;
            }
            r->ctx = cids, r->nctx = (int)nc, r->cont = kids, r->ncont = (int)nk;
            if (nk == 0) return err_set(err, "%s doc %d choice %d: the continuation tokenises to nothing", j->t.name, di, c);
            int bad = -1;
            for (size_t i = 0; i < nc && bad < 0; i++) bad = cids[i] >= V ? cids[i] : -1;
            for (size_t i = 0; i < nk && bad < 0; i++) bad = kids[i] >= V ? kids[i] : -1;
            if (bad >= 0)
                return err_set(err, "%s doc %d: token %d is outside the model's vocabulary of %d: this checkpoint does "
                                    "not use the RWKV World tokenizer (65536 tokens), the only one rwkvlab has",
                               j->t.name, di, bad, V);
            j->ntok += (long)(nc + nk);
        }
    }
    return 0;
}

/* The documents this process scores: all of them, or with --shard I/N range I of each task's documents
 * balanced by request tokens (lmeval_shard.h); also the hash of every tokenised request of the task. */
static void lmeval_select_range(LmJob *j, const LmevalOpts *o) {
    long *dt = xcalloc(j->n ? j->n : 1, sizeof(long));
    LmHash h;
    lmhash_init(&h);
    for (int di = 0; di < j->n; di++)
        for (int c = 0; c < j->t.docs[di].ncont; c++) {
            const LmReq *r = &j->req[j->first[di] + c];
            const int len[3] = {di, r->nctx, r->ncont};
            lmhash_update(&h, len, sizeof len);
            lmhash_update(&h, r->ctx, r->nctx * sizeof(int));
            lmhash_update(&h, r->cont, r->ncont * sizeof(int));
            dt[di] += r->nctx + r->ncont;
        }
    j->req_hash = lmhash_final(&h);
    lmeval_shard_range(dt, j->n, o->shard_n ? o->shard_i : 0, o->shard_n ? o->shard_n : 1, &j->lo, &j->hi);
    j->rtok = 0;
    for (int di = j->lo; di < j->hi; di++) j->rtok += dt[di];
    free(dt);
}

/* ---- scoring ------------------------------------------------------------------------------------ */

static const char *py_bool(int b) { return b ? "True" : "False"; }

/* lm-eval's sample line (v0.4.8 shape; resps and filtered_resps hold strings, as lm-eval's sanitize_list
 * writes them) appended to j->samples. */
static int lmeval_add_sample(LmJob *j, int di, const double *lps, const int *greedy, double acc, double accn,
                             Err *err) {
    const LmTask *t = &j->t;
    const LmDoc *d = &t->docs[di];
    cJSON *s = cJSON_CreateObject();
    cJSON_AddNumberToObject(s, "doc_id", di);
    cJSON *doc = cJSON_AddObjectToObject(s, "doc");
    cJSON_AddStringToObject(doc, "context", lmeval_doc_context(d, d->gold));
    cJSON *ch = cJSON_AddArrayToObject(doc, "choices");
    for (int c = 0; c < d->ncont; c++) cJSON_AddItemToArray(ch, cJSON_CreateString(d->cont[c]));
    cJSON_AddNumberToObject(doc, "gold", d->gold);
    if (t->is_loglik_ppl) cJSON_AddStringToObject(s, "target", d->cont[0]);
    else {
        char g[16];
        snprintf(g, sizeof g, "%d", d->gold);
        cJSON_AddStringToObject(s, "target", g);
    }
    cJSON *args = cJSON_AddObjectToObject(s, "arguments");
    cJSON *resps = cJSON_AddArrayToObject(s, "resps"), *fr = cJSON_AddArrayToObject(s, "filtered_resps");
    for (int c = 0; c < d->ncont; c++) {
        char k[32], lp[64];
        snprintf(k, sizeof k, "gen_args_%d", c);
        cJSON *a = cJSON_AddObjectToObject(args, k);
        cJSON_AddStringToObject(a, "arg_0", lmeval_doc_context(d, c));
        cJSON_AddStringToObject(a, "arg_1", d->cont[c]);
        lmeval_py_float(lps[c], lp, sizeof lp);
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(lp));
        cJSON_AddItemToArray(pair, cJSON_CreateString(py_bool(greedy[c])));
        cJSON *wrap = cJSON_CreateArray();
        cJSON_AddItemToArray(wrap, pair);
        cJSON_AddItemToArray(resps, wrap);
        cJSON_AddItemToArray(fr, cJSON_Duplicate(pair, 1));
    }
    cJSON_AddStringToObject(s, "filter", "none");
    cJSON *mets = cJSON_AddArrayToObject(s, "metrics");
    if (t->is_loglik_ppl) { /* lm-eval: perplexity = the loglikelihood, acc = int(is_greedy) */
        cJSON_AddItemToArray(mets, cJSON_CreateString("perplexity"));
        cJSON_AddItemToArray(mets, cJSON_CreateString("acc"));
        lmeval_json_add_float(s, "perplexity", lps[0]);
        cJSON_AddNumberToObject(s, "acc", greedy[0] ? 1 : 0);
    } else {
        cJSON_AddItemToArray(mets, cJSON_CreateString("acc"));
        if (t->has_acc_norm) cJSON_AddItemToArray(mets, cJSON_CreateString("acc_norm"));
        lmeval_json_add_float(s, "acc", acc);
        if (t->has_acc_norm) lmeval_json_add_float(s, "acc_norm", accn);
    }
    char *line = cJSON_PrintUnformatted(s);
    cJSON_Delete(s);
    if (!line) return err_set(err, "%s doc %d: out of memory formatting the sample line", t->name, di);
    Err e;
    int rc = lmbuf_add(&j->samples, line, strlen(line), &e) || lmbuf_add(&j->samples, "\n", 1, &e);
    free(line);
    return rc ? err_set(err, "%s samples: %s", t->name, e.msg) : 0;
}

/* "<metric>_stderr,none": a number, or "N/A" as lm-eval writes when it is not computed */
static void lmeval_add_stderr(cJSON *res, const char *key, int have, double v) {
    if (have) lmeval_json_add_float(res, key, v);
    else cJSON_AddStringToObject(res, key, "N/A");
}

/* requests of documents [j->lo, j->hi): [lmeval_req_lo, lmeval_req_lo + lmeval_req_n) of j->req */
static size_t lmeval_req_lo(const LmJob *j) { return j->hi > j->lo ? (size_t)j->first[j->lo] : 0; }
static size_t lmeval_req_n(const LmJob *j) {
    return j->hi > j->lo ? (size_t)j->first[j->hi - 1] + j->t.docs[j->hi - 1].ncont - lmeval_req_lo(j) : 0;
}

/* Documents [j->lo, j->hi) on the CPU, one by one: a context shared by consecutive choices is run once
 * (unless --no-share) and its state copied for each continuation. lp / gr: one entry per request of the
 * range (request first[lo] at index 0). */
static void score_cpu(Model *m, LmJob *j, const LmevalOpts *o, double *lp, int *gr) {
    const LmTask *t = &j->t;
    const int lo = j->lo, n = j->hi - j->lo;
    const size_t nstate = model_state_numel(m, 1), r0 = lmeval_req_lo(j);
    real *state = xmalloc(nstate * sizeof(real)), *ctx_state = xmalloc(nstate * sizeof(real));
    real *lg0 = xmalloc(m->V * sizeof(real));
    double t0 = now_seconds(), last_print = 0;
    const int tty = isatty(STDERR_FILENO);
    long ntok = 0;
    for (int di = lo; di < j->hi; di++) {
        const LmDoc *d = &t->docs[di];
        const LmReq *rq = &j->req[j->first[di]];
        const LmReq *prev = NULL;
        for (int c = 0; c < d->ncont; c++) {
            const LmReq *r = &rq[c];
            int reuse = !o->no_share && prev && prev->nctx == r->nctx && !memcmp(prev->ctx, r->ctx, r->nctx * sizeof(int));
            if (!reuse) {
                memset(ctx_state, 0, nstate * sizeof(real));
                /* the context is scored only at its last token */
                ModelFwd f = {.K = 16, .state_in = ctx_state, .state_out = ctx_state, .head_last_only = 1};
                const real *lg = model_forward(m, r->ctx, 1, r->nctx, &f);
                memcpy(lg0, lg + (size_t)(r->nctx - 1) * m->V, m->V * sizeof(real));
                ntok += r->nctx;
                prev = r;
            }
            memcpy(state, ctx_state, nstate * sizeof(real));
            const size_t q = j->first[di] + c - r0;
            lp[q] = lmeval_score_continuation(m, state, lg0, r->cont, r->ncont, &gr[q]);
            ntok += r->ncont;
        }
        const int k = di - lo;
        double el = now_seconds() - t0;
        /* progress: redrawn in place on a terminal, a plain line every 10 s otherwise */
        if (!o->quiet && (el - last_print > (tty ? 1.0 : 10.0) || k + 1 == n)) {
            last_print = el;
            fprintf(stderr, "%s%s: %d/%d docs  %.0f tok/s  ETA %.0fs%s", tty ? "\r" : "", t->name, k + 1, n,
                    ntok / fmax(el, 1e-9), (j->rtok - ntok) / fmax(ntok / fmax(el, 1e-9), 1e-9), tty ? "   " : "\n");
            if (tty && k + 1 == n) fputc('\n', stderr);
        }
    }
    free(state), free(ctx_state), free(lg0);
}

/* Documents [j->lo, j->hi) on the GPU in one call (cuda_rwkv7_score_ex: every request sorted and packed by
 * length, each shared context once, the head only at scored positions). lp / gr as for score_cpu. */
static int score_cuda(CudaRwkv7 *g, LmJob *j, const LmevalOpts *o, double *lp, int *gr, Err *err) {
    const size_t nreq = lmeval_req_n(j), r0 = lmeval_req_lo(j);
    if (!nreq) return 0;
    CudaLmRequest *q = xmalloc(nreq * sizeof(CudaLmRequest));
    int *buf = xmalloc((size_t)(j->rtok ? j->rtok : 1) * sizeof(int));
    size_t off = 0;
    for (size_t i = 0; i < nreq; i++) {
        const LmReq *r = &j->req[r0 + i];
        memcpy(buf + off, r->ctx, r->nctx * sizeof(int));
        memcpy(buf + off + r->nctx, r->cont, r->ncont * sizeof(int));
        q[i] = (CudaLmRequest){.tokens = buf + off, .ntok = r->nctx + r->ncont, .nctx = r->nctx};
        off += r->nctx + r->ncont;
    }
    CudaScoreOpts so = {.max_tokens = 65536, .max_seqs = o->batch, .share = !o->no_share};
    CudaScoreStats st = {0};
    const double t0 = now_seconds();
    int rc = cuda_rwkv7_score_ex(g, q, (int)nreq, &so, lp, gr, &st, err);
    const double el = now_seconds() - t0;
    if (!rc && !o->quiet)
        fprintf(stderr, "%s: %zu requests, %ld tokens scored in %.2f s on the GPU (%.0f tok/s; %ld forward calls, %ld "
                        "rows computed, head at %ld rows; %ld shared contexts for %ld requests)\n", j->t.name, nreq,
                j->rtok, el, j->rtok / fmax(el, 1e-9), st.forwards, st.rows, st.head_rows, st.groups, st.grouped);
    free(q), free(buf);
    return rc;
}

/* Score documents [j->lo, j->hi) of one task on the CPU (m) or the GPU (g): fills j->acc, j->accn, j->ll
 * (and j->samples with --samples) and, unsharded, j->res. Metrics and samples are the same code for both. */
static int run_task(Model *m, CudaRwkv7 *g, LmJob *j, const LmevalOpts *o, Err *err) {
    const LmTask *t = &j->t;
    const int lo = j->lo, n = j->hi - j->lo;
    const size_t nreq = lmeval_req_n(j), r0 = lmeval_req_lo(j);
    double *acc = j->acc = xcalloc(n ? n : 1, sizeof(double)), *accn = j->accn = xcalloc(n ? n : 1, sizeof(double));
    double *ll = j->ll = xcalloc(n ? n : 1, sizeof(double));
    double *lp = xcalloc(nreq ? nreq : 1, sizeof(double));
    int *gr = xcalloc(nreq ? nreq : 1, sizeof(int)), rc = -1;
    if (g) {
        if (score_cuda(g, j, o, lp, gr, err)) goto done;
    } else {
        score_cpu(m, j, o, lp, gr);
    }
    for (int di = lo; di < j->hi; di++) {
        const LmDoc *d = &t->docs[di];
        const double *lps = lp + (j->first[di] - r0);
        const int *greedy = gr + (j->first[di] - r0);
        int best = 0, bestn = 0;
        for (int c = 1; c < d->ncont; c++) {
            if (lps[c] > lps[best]) best = c;
            if (lps[c] / d->choice_len[c] > lps[bestn] / d->choice_len[bestn]) bestn = c;
        }
        const int k = di - lo;
        if (t->is_loglik_ppl) {
            ll[k] = lps[0];
            acc[k] = greedy[0];
        } else {
            acc[k] = best == d->gold;
            accn[k] = bestn == d->gold;
        }
        if (o->samples && lmeval_add_sample(j, di, lps, greedy, acc[k], accn[k], err)) goto done;
    }
    if (!o->shard_n) j->res = lmeval_task_metrics(t, acc, accn, ll, n, o->bootstrap, o->quiet);
    rc = 0;
done:
    free(lp), free(gr);
    return rc;
}

cJSON *lmeval_task_metrics(const LmTask *t, const double *acc, const double *accn, const double *ll, int n,
                           long bootstrap, int quiet) {
    /* lm-eval: a standard error needs >= 2 documents and bootstrap_iters > 0, otherwise "N/A" */
    const int se = n > 1 && bootstrap > 0;
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "alias", t->name);
    if (t->is_loglik_ppl) {
        lmeval_json_add_float(res, "perplexity,none", exp(-mean(ll, n)));
        lmeval_add_stderr(res, "perplexity_stderr,none", se, se ? bootstrap_ppl_stderr(ll, n, bootstrap, 1234) : 0);
    }
    lmeval_json_add_float(res, "acc,none", mean(acc, n));
    lmeval_add_stderr(res, "acc_stderr,none", se, se ? stderr_of(acc, n) : 0);
    if (t->has_acc_norm) {
        lmeval_json_add_float(res, "acc_norm,none", mean(accn, n));
        lmeval_add_stderr(res, "acc_norm_stderr,none", se, se ? stderr_of(accn, n) : 0);
    }
    if (!quiet) {
        printf("%-15s n=%-5d", t->name, n);
        if (t->is_loglik_ppl) printf(" ppl %.4f ", exp(-mean(ll, n)));
        char sa[16] = "N/A", sn[16] = "N/A";
        if (se) snprintf(sa, sizeof sa, "%.4f", stderr_of(acc, n)), snprintf(sn, sizeof sn, "%.4f", stderr_of(accn, n));
        printf(" acc %.4f +- %s", mean(acc, n), sa);
        if (t->has_acc_norm) printf("  acc_norm %.4f +- %s", mean(accn, n), sn);
        printf("\n");
    }
    return res;
}

/* ---- results JSON -------------------------------------------------------------------------------- */

static void lmeval_add_task_meta(cJSON *root, const LmTask *t, int n) {
    cJSON_AddItemToObject(cJSON_GetObjectItem(root, "group_subtasks"), t->name, cJSON_CreateArray());
    cJSON *cfg = cJSON_AddObjectToObject(cJSON_GetObjectItem(root, "configs"), t->name);
    cJSON_AddStringToObject(cfg, "task", t->name);
    cJSON_AddStringToObject(cfg, "dataset_path", t->source);
    cJSON_AddStringToObject(cfg, "description", "");
    cJSON_AddStringToObject(cfg, "target_delimiter", " ");
    cJSON_AddStringToObject(cfg, "fewshot_delimiter", "\n\n");
    cJSON_AddNumberToObject(cfg, "num_fewshot", 0);
    /* lm-eval v0.4.8's task yamls: lambada_openai is `loglikelihood`, every other task here `multiple_choice` */
    cJSON_AddStringToObject(cfg, "output_type", t->is_loglik_ppl ? "loglikelihood" : "multiple_choice");
    cJSON *ml = cJSON_AddArrayToObject(cfg, "metric_list");
    const char *mets[3] = {t->is_loglik_ppl ? "perplexity" : "acc", t->is_loglik_ppl ? "acc" : NULL, NULL};
    if (!t->is_loglik_ppl && t->has_acc_norm) mets[1] = "acc_norm";
    for (int k = 0; k < 3 && mets[k]; k++) {
        cJSON *mi = cJSON_CreateObject();
        cJSON_AddStringToObject(mi, "metric", mets[k]);
        cJSON_AddStringToObject(mi, "aggregation", strcmp(mets[k], "perplexity") ? "mean" : "perplexity");
        cJSON_AddBoolToObject(mi, "higher_is_better", strcmp(mets[k], "perplexity") != 0);
        cJSON_AddItemToArray(ml, mi);
    }
    cJSON_AddNumberToObject(cfg, "repeats", 1);
    cJSON_AddFalseToObject(cfg, "should_decontaminate");
    lmeval_json_add_float(cJSON_AddObjectToObject(cfg, "metadata"), "version", 1.0);
    if (t->note) cJSON_AddStringToObject(cfg, "rwkvlab_note", t->note);
    lmeval_json_add_float(cJSON_GetObjectItem(root, "versions"), t->name, 1.0);
    cJSON_AddNumberToObject(cJSON_GetObjectItem(root, "n-shot"), t->name, 0);
    cJSON *h = cJSON_AddObjectToObject(cJSON_GetObjectItem(root, "higher_is_better"), t->name);
    if (t->is_loglik_ppl) cJSON_AddFalseToObject(h, "perplexity");
    cJSON_AddTrueToObject(h, "acc");
    if (t->has_acc_norm) cJSON_AddTrueToObject(h, "acc_norm");
    cJSON *ns = cJSON_AddObjectToObject(cJSON_GetObjectItem(root, "n-samples"), t->name);
    cJSON_AddNumberToObject(ns, "original", t->ndocs);
    cJSON_AddNumberToObject(ns, "effective", n);
}

char *lmeval_results_text(const LmevalOpts *o, LmTaskResult *tr, int ntasks, int prefix, const char *model_name,
                          const char *arch, double start_wall, double t0, double t1) {
    cJSON *root = cJSON_CreateObject(), *results = cJSON_AddObjectToObject(root, "results");
    const char *objs[] = {"group_subtasks", "configs", "versions", "n-shot", "higher_is_better", "n-samples"};
    for (int k = 0; k < 6; k++) cJSON_AddObjectToObject(root, objs[k]);
    for (int i = 0; i < ntasks; i++) {
        cJSON_AddItemToObject(results, tr[i].t->name, tr[i].res);
        tr[i].res = NULL; /* owned by root now */
        lmeval_add_task_meta(root, tr[i].t, tr[i].n);
    }
    char args[4400], san[1024];
    /* "cuda", or a merged shards' "cuda:0,1" (lmeval_merge_devices) */
    const int cuda = o->device && !strncmp(o->device, "cuda", 4);
    CudaDType dt = CUDA_DT_BF16;
    if (o->dtype) cuda_dtype_parse(o->dtype, &dt); /* checked by lmeval_check_opts */
    const char *dtype = cuda ? cuda_dtype_torch_name(dt) : "float32";
    snprintf(args, sizeof args, "pretrained=%s,dtype=%s", model_name, dtype);
    cJSON *cf = cJSON_AddObjectToObject(root, "config");
    char mname[64];
    snprintf(mname, sizeof mname, "rwkvlab-%s", arch);
    cJSON_AddStringToObject(cf, "model", mname);
    cJSON_AddStringToObject(cf, "model_args", args);
    if (!cuda) cJSON_AddNumberToObject(cf, "batch_size", 1);
    else if (o->batch > 0) cJSON_AddNumberToObject(cf, "batch_size", o->batch);
    else cJSON_AddStringToObject(cf, "batch_size", "auto"); /* lm-eval's word for a chosen size */
    cJSON_AddArrayToObject(cf, "batch_sizes");
    cJSON_AddStringToObject(cf, "device", o->device && strcmp(o->device, "cuda") ? o->device : cuda ? "cuda" : "cpu");
    cJSON_AddNullToObject(cf, "use_cache");
    if (o->limit > 0) cJSON_AddNumberToObject(cf, "limit", o->limit);
    else cJSON_AddNullToObject(cf, "limit");
    cJSON_AddNumberToObject(cf, "bootstrap_iters", o->bootstrap);
    cJSON_AddNullToObject(cf, "gen_kwargs");
    cJSON_AddStringToObject(cf, "dtype", dtype);
    if (prefix >= 0) cJSON_AddNumberToObject(cf, "prefix_token", prefix);
    else cJSON_AddStringToObject(cf, "prefix_token", "none");
    cJSON_AddStringToObject(cf, "tokenisation_split", o->split == 0 ? "lm-eval (whole[len(ctx):])" : "separate");
    cJSON_AddNumberToObject(cf, "bootstrap_seed", 1234);
    cJSON_AddBoolToObject(cf, "shared_context_state", !o->no_share);
    cJSON_AddStringToObject(root, "rwkvlab_version", RWKVLAB_VERSION);
    lmeval_json_add_float(root, "date", start_wall);
    cJSON_AddObjectToObject(root, "task_hashes");
    cJSON_AddStringToObject(root, "model_source", mname);
    cJSON_AddStringToObject(root, "model_name", model_name);
    lmeval_sanitize_model_name(model_name, san, sizeof san);
    cJSON_AddStringToObject(root, "model_name_sanitized", san);
    cJSON_AddNullToObject(root, "system_instruction");
    cJSON_AddNullToObject(root, "system_instruction_sha");
    cJSON_AddFalseToObject(root, "fewshot_as_multiturn");
    cJSON_AddNullToObject(root, "chat_template");
    cJSON_AddNullToObject(root, "chat_template_sha");
    lmeval_json_add_float(root, "start_time", t0);
    lmeval_json_add_float(root, "end_time", t1);
    char tt[64];
    lmeval_py_float(t1 - t0, tt, sizeof tt);
    cJSON_AddStringToObject(root, "total_evaluation_time_seconds", tt);
    char *txt = cJSON_Print(root);
    cJSON_Delete(root);
    return txt;
}

int lmeval_publish_results(const char *outdir, const char *rprefix, const LmTaskResult *tr, int ntasks, int samples,
                           const char *rtext, char *results_path, size_t cap, Err *err) {
    LmOutFile files[LMEVAL_MAX_TASKS + 1];
    char spref[LMEVAL_MAX_TASKS][64];
    int nf = 0;
    if (ntasks > LMEVAL_MAX_TASKS) return err_set(err, "more than %d tasks", LMEVAL_MAX_TASKS);
    for (int i = 0; samples && i < ntasks; i++) {
        snprintf(spref[i], sizeof spref[i], "samples_%s_", tr[i].t->name);
        files[nf++] = (LmOutFile){spref[i], ".jsonl", tr[i].samples ? tr[i].samples : "", tr[i].samples_len};
    }
    files[nf++] = (LmOutFile){rprefix, ".json", rtext, strlen(rtext)};
    char stamp[64];
    if (lmeval_publish(outdir, files, nf, lmeval_now_usec(), stamp, sizeof stamp, err)) return -1;
    snprintf(results_path, cap, "%s/%s%s.json", outdir, rprefix, stamp);
    return 0;
}

/* ---- the run --------------------------------------------------------------------------------------- */

int lmeval_run(LmevalOpts *o, Err *err) {
    const double t0 = now_seconds(), start_wall = lmeval_now_usec() / 1e6;
    o->results_path[0] = 0;
    /* 1. options and the task list: no file is touched yet */
    char names[LMEVAL_MAX_TASKS][32];
    int ntasks = 0;
    if (lmeval_check_opts(o, err) || lmeval_shard_check(o->shard_i, o->shard_n, err) ||
        lmeval_parse_tasks(o->tasks, names, &ntasks, err))
        return -1;
    const char *data = o->data_dir ? o->data_dir : "data";
    const int cuda = lmeval_is_cuda(o);
    char outdir[4096], rprefix[512];
    if (lmeval_out_location(o->out_dir, o->model_path, outdir, sizeof outdir, rprefix, sizeof rprefix, err)) return -1;
    /* 2. the vocabulary and every task's data, then the output directory, then the model */
    char vp[4096];
    snprintf(vp, sizeof vp, "%s/rwkv_vocab_v20230424.txt", data);
    Tokenizer *tok = tokenizer_load(vp, err);
    if (!tok) return -1;
    LmJob *jobs = xcalloc(ntasks, sizeof(LmJob));
    Model *m = NULL;
    CudaRwkv7 *g = NULL;
    const char *arch_name = NULL;
    char *rtext = NULL, created[4096] = "";
    int rc = -1, prefix = o->prefix;
    for (int i = 0; i < ntasks; i++) {
        if (lmeval_task_load(names[i], data, &jobs[i].t, err)) goto out;
        jobs[i].n = o->limit > 0 && o->limit < jobs[i].t.ndocs ? (int)o->limit : jobs[i].t.ndocs;
    }
    if (lmeval_out_prepare(outdir, created, sizeof created, err)) goto out;
    if (prefix == -2) {
        int *ids;
        size_t n;
        if (tokenizer_encode(tok, "\n", 1, &ids, &n, err)) goto out;
        prefix = ids[0];
        free(ids);
    }
    double tl = now_seconds();
    if (cuda) cuda_init_async(); /* the GPU's context is made while the model loads (joined below) */
    if (model_load_with(o->model_path, &o->load, &m, err)) goto out;
    arch_name = m->arch->name;
    tl = now_seconds() - tl;
    LmShardRun shard = {.o = o, .date = start_wall, .t0 = t0}; /* --shard: the model file's hash, once */
    if (o->shard_n && lmeval_file_hash64(o->model_path, &shard.model_hash, &shard.model_bytes, err)) goto out;
    /* 3. every request tokenised and checked against the model's vocabulary */
    long ndocs = 0, ntok = 0;
    double tt = now_seconds();
    for (int i = 0; i < ntasks; i++) {
        if (lmeval_tokenise(&jobs[i], tok, m->V, o->split, prefix, err)) goto out;
        lmeval_select_range(&jobs[i], o);
        ndocs += jobs[i].n, ntok += jobs[i].ntok;
    }
    tt = now_seconds() - tt;
    const int V = m->V;
    if (cuda) { /* the weights go to the GPU; the CPU copy is no longer needed */
        CudaDType dt = CUDA_DT_BF16;
        if (o->dtype) cuda_dtype_parse(o->dtype, &dt);
        double tu = now_seconds();
        if (!(g = cuda_model_create(m, dt, err))) goto out;
        tu = now_seconds() - tu;
        model_free(m);
        m = NULL;
        if (!o->quiet) {
            char info[512];
            cuda_device_info(info, sizeof info);
            fprintf(stderr, "rwkvlab lmeval: model read in %.2f s, requests tokenised in %.2f s; GPU %s: %s weights "
                            "(%.2f GB) uploaded in %.2f s\n", tl, tt, info, cuda_dtype_name(dt),
                    cuda_rwkv7_weight_bytes(g) / 1e9, tu);
        }
    }
    if (V < tokenizer_vocab_size(tok))
        fprintf(stderr, "warning: the model's vocabulary (%d) is smaller than the World tokenizer's (%d); every "
                        "token of these tasks fits\n", V, tokenizer_vocab_size(tok));
    if (!o->quiet)
        fprintf(stderr, "rwkvlab lmeval: %d task%s, %ld documents, %ld tokens; output in %s/\n", ntasks,
                ntasks > 1 ? "s" : "", ndocs, ntok, outdir);
    /* 4. scoring */
    for (int i = 0; i < ntasks; i++)
        if (run_task(m, g, &jobs[i], o, err)) goto out;
    if (o->shard_n) { /* --shard: the per-document values go to the shard file; lmeval-merge makes the results */
        LmShardTask st[LMEVAL_MAX_TASKS];
        for (int i = 0; i < ntasks; i++) {
            const LmJob *j = &jobs[i];
            st[i] = (LmShardTask){&j->t, j->n, j->lo, j->hi, j->ntok, j->rtok, j->req_hash, j->acc, j->accn, j->ll,
                                  j->samples.p, j->samples.len};
        }
        shard.prefix = prefix, shard.arch = arch_name, shard.t1 = now_seconds();
        if (lmeval_shard_write(&shard, st, ntasks, outdir, o->results_path, sizeof o->results_path, err)) goto out;
        rc = 0;
        goto out;
    }
    /* 5. output: samples first, the results file last, under one fresh date_id */
    LmTaskResult tr[LMEVAL_MAX_TASKS];
    for (int i = 0; i < ntasks; i++) {
        tr[i] = (LmTaskResult){&jobs[i].t, jobs[i].n, jobs[i].res, jobs[i].samples.p, jobs[i].samples.len};
        jobs[i].res = NULL; /* lmeval_results_text takes it over */
    }
    rtext = lmeval_results_text(o, tr, ntasks, prefix, o->model_path, arch_name, start_wall, t0, now_seconds());
    if (!rtext) {
        err_set(err, "out of memory formatting the results JSON");
        goto out;
    }
    if (lmeval_publish_results(outdir, rprefix, tr, ntasks, o->samples, rtext, o->results_path, sizeof o->results_path,
                               err))
        goto out;
    rc = 0;
out:
    if (cuda) cuda_init_wait();
    if (rc) lmeval_out_unprepare(outdir, created);
    free(rtext);
    for (int i = 0; i < ntasks; i++) lmeval_job_free(&jobs[i]);
    free(jobs);
    model_free(m);
    cuda_rwkv7_free(g);
    tokenizer_free(tok);
    return rc;
}
