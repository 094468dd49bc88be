/* lmeval.c -- run lm-eval tasks on a checkpoint: requests, metrics, lm-eval-compatible JSON output.
 * Metrics (lmeval.md): acc = argmax logprob == gold (ties -> first), acc_norm = argmax logprob /
 * choice_len (Unicode code points), stderr = sample std (n-1) / sqrt(n); lambada perplexity =
 * exp(-mean summed logprob per document), its stderr by bootstrap over documents. */
#include "lmeval.h"

#include <cJSON.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lmeval_data.h"
#include "rwkv7_io.h"
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

double lmeval_score_continuation(Rwkv7 *m, real *state, const real *lg0, const int *cont, int ncont, int *greedy) {
    const int V = m->d.V;
    int g;
    double lp = logprob_at(lg0, V, cont[0], &g);
    *greedy = g;
    if (ncont > 1) {
        /* tokens cont[0..n-2] predict cont[1..n-1]; positions are independent: parallel, summed in order */
        const real *lg = rwkv7_forward(m, cont, 1, ncont - 1, 16, state, state, NULL);
        double *lps = xmalloc(ncont * sizeof(double));
        int *gs = xmalloc(ncont * sizeof(int));
#pragma omp parallel for schedule(static)
        for (int j = 1; j < ncont; j++) lps[j] = logprob_at(lg + (size_t)(j - 1) * V, V, cont[j], &gs[j]);
        for (int j = 1; j < ncont; j++) lp += lps[j], *greedy &= gs[j];
        free(lps), free(gs);
    }
    return lp;
}

typedef struct {
    double *lp;     /* (ncont) */
    int *greedy;    /* (ncont) */
} DocResult;

static double mean(const double *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    return n ? s / n : 0;
}
static double stderr_of(const double *x, int n) {
    if (n < 2) return 0;
    double mu = mean(x, n), s = 0;
    for (int i = 0; i < n; i++) s += (x[i] - mu) * (x[i] - mu);
    return sqrt(s / (n - 1)) / sqrt((double)n);
}

/* perplexity = exp(-mean(ll)); bootstrap stderr over documents */
static double bootstrap_ppl_stderr(const double *ll, int n, long iters, unsigned long seed) {
    if (n < 2 || iters < 2) return 0;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    double s = 0, s2 = 0;
    for (long it = 0; it < iters; it++) {
        double acc = 0;
        for (int i = 0; i < n; i++) acc += ll[gsl_rng_uniform_int(r, n)];
        double p = exp(-acc / n);
        s += p, s2 += p * p;
    }
    gsl_rng_free(r);
    double mu = s / iters;
    return sqrt(fmax(0, (s2 - iters * mu * mu) / (iters - 1)));
}

static void iso_time(char *buf, size_t n) {
    time_t now = time(NULL);
    strftime(buf, n, "%Y-%m-%dT%H-%M-%S", gmtime(&now));
}

/* One task: returns a cJSON results object; appends sample lines to *samples when wanted. */
static cJSON *run_task(Rwkv7 *m, const Tokenizer *tok, const LmTask *t, const LmevalOpts *o, int prefix,
                       cJSON *samples, Err *err) {
    const int n = o->limit > 0 && o->limit < t->ndocs ? (int)o->limit : t->ndocs;
    double *acc = xcalloc(n, sizeof(double)), *accn = xcalloc(n, sizeof(double)), *ll = xcalloc(n, sizeof(double));
    real *state = xmalloc(rwkv7_state_numel(&m->d, 1) * sizeof(real));
    real *ctx_state = xmalloc(rwkv7_state_numel(&m->d, 1) * sizeof(real));
    real *lg0 = xmalloc(m->d.V * sizeof(real));
    size_t nstate = rwkv7_state_numel(&m->d, 1);
    double t0 = now_seconds(), last_print = 0;
    const int tty = isatty(STDERR_FILENO);
    long ntok = 0;
    cJSON *res = NULL;
    for (int di = 0; di < n; di++) {
        const LmDoc *d = &t->docs[di];
        double *lps = xmalloc(d->ncont * sizeof(double));
        int *greedy = xmalloc(d->ncont * sizeof(int));
        int *prev_ctx = NULL;
        size_t prev_n = 0;
        for (int c = 0; c < d->ncont; c++) {
            int *cids, *kids;
            size_t nc, nk;
            if (lmeval_encode_request(tok, lmeval_doc_context(d, c), d->cont[c], o->split, prefix, &cids, &nc, &kids,
                                      &nk, err)) {
                free(lps), free(greedy), free(prev_ctx);
                goto fail;
            }
            if (nc == 0) { /* empty context: lm-eval conditions on end-of-text */
                cids = realloc(cids, sizeof(int));
                cids[0] = 0, nc = 1;
            }
            if (nk == 0) {
                err_set(err, "%s doc %d choice %d: the continuation tokenises to nothing", t->name, di, c);
                free(cids), free(kids), free(lps), free(greedy), free(prev_ctx);
                goto fail;
            }
            int bad = -1;
            for (size_t i = 0; i < nc; i++) bad = cids[i] >= m->d.V ? cids[i] : bad;
            for (size_t i = 0; i < nk; i++) bad = kids[i] >= m->d.V ? kids[i] : bad;
            if (bad >= 0) {
                err_set(err, "%s doc %d: token %d is outside the model's vocabulary of %d: this checkpoint does not use "
                             "the RWKV World tokenizer (65536 tokens), the only one rwkvlab has", t->name, di, bad, m->d.V);
                free(cids), free(kids), free(lps), free(greedy), free(prev_ctx);
                goto fail;
            }
            int reuse = !o->no_share && prev_ctx && prev_n == nc && !memcmp(prev_ctx, cids, nc * sizeof(int));
            if (!reuse) {
                memset(ctx_state, 0, nstate * sizeof(real));
                m->head_last_only = 1; /* the context is scored only at its last token */
                const real *lg = rwkv7_forward(m, cids, 1, (int)nc, 16, ctx_state, ctx_state, NULL);
                m->head_last_only = 0;
                memcpy(lg0, lg + (nc - 1) * m->d.V, m->d.V * sizeof(real));
                ntok += nc;
                free(prev_ctx);
                prev_ctx = cids, prev_n = nc;
            } else {
                free(cids);
            }
            memcpy(state, ctx_state, nstate * sizeof(real));
            lps[c] = lmeval_score_continuation(m, state, lg0, kids, (int)nk, &greedy[c]);
            ntok += nk;
            free(kids);
        }
        free(prev_ctx);
        int best = 0, bestn = 0;
        for (int c = 1; c < d->ncont; c++) {
            if (lps[c] > lps[best]) best = c;
            if (lps[c] / d->choice_len[c] > lps[bestn] / d->choice_len[bestn]) bestn = c;
        }
        if (t->is_loglik_ppl) {
            ll[di] = lps[0];
            acc[di] = greedy[0];
        } else {
            acc[di] = best == d->gold;
            accn[di] = bestn == d->gold;
        }
        if (samples) {
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
                char k[32];
                snprintf(k, sizeof k, "gen_args_%d", c);
                cJSON *a = cJSON_AddObjectToObject(args, k);
                cJSON_AddStringToObject(a, "arg_0", lmeval_doc_context(d, c));
                cJSON_AddStringToObject(a, "arg_1", d->cont[c]);
                cJSON *pair = cJSON_CreateArray();
                cJSON_AddItemToArray(pair, cJSON_CreateNumber(lps[c]));
                cJSON_AddItemToArray(pair, cJSON_CreateBool(greedy[c]));
                cJSON *wrap = cJSON_CreateArray();
                cJSON_AddItemToArray(wrap, pair);
                cJSON_AddItemToArray(resps, wrap);
                cJSON_AddItemToArray(fr, cJSON_Duplicate(pair, 1));
            }
            cJSON_AddStringToObject(s, "filter", "none");
            cJSON *mets = cJSON_AddArrayToObject(s, "metrics");
            if (t->is_loglik_ppl) {
                cJSON_AddItemToArray(mets, cJSON_CreateString("perplexity"));
                cJSON_AddItemToArray(mets, cJSON_CreateString("acc"));
                cJSON_AddNumberToObject(s, "perplexity", lps[0]);
                cJSON_AddNumberToObject(s, "acc", acc[di]);
            } else {
                cJSON_AddItemToArray(mets, cJSON_CreateString("acc"));
                cJSON_AddNumberToObject(s, "acc", acc[di]);
                if (t->has_acc_norm) {
                    cJSON_AddItemToArray(mets, cJSON_CreateString("acc_norm"));
                    cJSON_AddNumberToObject(s, "acc_norm", accn[di]);
                }
            }
            cJSON_AddItemToArray(samples, s);
        }
        free(lps), free(greedy);
        double el = now_seconds() - t0;
        /* progress: redrawn in place on a terminal, a plain line every 10 s otherwise */
        if (!o->quiet && (el - last_print > (tty ? 1.0 : 10.0) || di + 1 == n)) {
            last_print = el;
            fprintf(stderr, "%s%s: %d/%d docs  %.0f tok/s  ETA %.0fs%s", tty ? "\r" : "", t->name, di + 1, n,
                    ntok / fmax(el, 1e-9), (n - di - 1) * el / (di + 1), tty ? "   " : "\n");
            if (tty && di + 1 == n) fputc('\n', stderr);
        }
    }
    res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "alias", t->name);
    if (t->is_loglik_ppl) {
        double ppl = exp(-mean(ll, n));
        cJSON_AddNumberToObject(res, "perplexity,none", ppl);
        cJSON_AddNumberToObject(res, "perplexity_stderr,none", bootstrap_ppl_stderr(ll, n, o->bootstrap, 1234));
    }
    cJSON_AddNumberToObject(res, "acc,none", mean(acc, n));
    cJSON_AddNumberToObject(res, "acc_stderr,none", stderr_of(acc, n));
    if (t->has_acc_norm) {
        cJSON_AddNumberToObject(res, "acc_norm,none", mean(accn, n));
        cJSON_AddNumberToObject(res, "acc_norm_stderr,none", stderr_of(accn, n));
    }
    if (!o->quiet) {
        if (t->is_loglik_ppl)
            printf("%-15s n=%-5d ppl %.4f  acc %.4f +- %.4f\n", t->name, n, exp(-mean(ll, n)), mean(acc, n), stderr_of(acc, n));
        else
            printf("%-15s n=%-5d acc %.4f +- %.4f%s", t->name, n, mean(acc, n), stderr_of(acc, n), t->has_acc_norm ? "" : "\n");
        if (!t->is_loglik_ppl && t->has_acc_norm) printf("  acc_norm %.4f +- %.4f\n", mean(accn, n), stderr_of(accn, n));
    }
fail:
    free(acc), free(accn), free(ll), free(state), free(ctx_state), free(lg0);
    return res;
}

int lmeval_run(LmevalOpts *o, Err *err) {
    if (o->device && strcmp(o->device, "cpu"))
        return err_set(err, "--device %s: only the CPU engine is built so far (the CUDA engine is a later issue); use "
                            "--device cpu", o->device);
    const char *data = o->data_dir ? o->data_dir : "data";
    char vp[4096];
    snprintf(vp, sizeof vp, "%s/rwkv_vocab_v20230424.txt", data);
    Tokenizer *tok = tokenizer_load(vp, err);
    if (!tok) return -1;
    int prefix = o->prefix;
    if (prefix == -2) {
        int *ids;
        size_t n;
        if (tokenizer_encode(tok, "\n", 1, &ids, &n, err)) {
            tokenizer_free(tok);
            return -1;
        }
        prefix = ids[0];
        free(ids);
    }
    Rwkv7 *m = NULL;
    if (rwkv7_load(o->model_path, &m, err)) {
        tokenizer_free(tok);
        return -1;
    }
    if (m->d.V < tokenizer_vocab_size(tok))
        fprintf(stderr, "warning: the model's vocabulary (%d) is smaller than the World tokenizer's (%d); tokens "
                        "beyond it stop the run\n", m->d.V, tokenizer_vocab_size(tok));
    char stamp[64];
    iso_time(stamp, sizeof stamp);
    const char *outd = o->out_dir ? o->out_dir : ".";
    cJSON *root = cJSON_CreateObject(), *results = cJSON_AddObjectToObject(root, "results");
    cJSON *groups = cJSON_AddObjectToObject(root, "group_subtasks"), *configs = cJSON_AddObjectToObject(root, "configs");
    cJSON *versions = cJSON_AddObjectToObject(root, "versions"), *nshot = cJSON_AddObjectToObject(root, "n-shot");
    cJSON *hib = cJSON_AddObjectToObject(root, "higher_is_better"), *nsamp = cJSON_AddObjectToObject(root, "n-samples");
    double t0 = now_seconds();
    int rc = -1;
    char list[1024];
    snprintf(list, sizeof list, "%s", o->tasks);
    for (char *save = NULL, *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        while (*name == ' ') name++;
        LmTask t;
        if (lmeval_task_load(name, data, &t, err)) goto out;
        cJSON *samples = o->samples ? cJSON_CreateArray() : NULL;
        cJSON *r = run_task(m, tok, &t, o, prefix, samples, err);
        if (!r) {
            cJSON_Delete(samples);
            lmeval_task_free(&t);
            goto out;
        }
        cJSON_AddItemToObject(results, t.name, r);
        cJSON_AddItemToObject(groups, t.name, cJSON_CreateArray());
        cJSON *cfg = cJSON_AddObjectToObject(configs, t.name);
        cJSON_AddStringToObject(cfg, "task", t.name);
        cJSON_AddStringToObject(cfg, "dataset_path", t.source);
        cJSON_AddNumberToObject(cfg, "num_fewshot", 0);
        cJSON_AddStringToObject(cfg, "target_delimiter", " ");
        cJSON_AddStringToObject(cfg, "output_type", "loglikelihood");
        if (t.note) cJSON_AddStringToObject(cfg, "rwkvlab_note", t.note);
        cJSON_AddNumberToObject(versions, t.name, 1.0);
        cJSON_AddNumberToObject(nshot, t.name, 0);
        cJSON *h = cJSON_AddObjectToObject(hib, t.name);
        if (t.is_loglik_ppl) cJSON_AddFalseToObject(h, "perplexity");
        cJSON_AddTrueToObject(h, "acc");
        if (t.has_acc_norm) cJSON_AddTrueToObject(h, "acc_norm");
        cJSON *ns = cJSON_AddObjectToObject(nsamp, t.name);
        cJSON_AddNumberToObject(ns, "original", t.ndocs);
        cJSON_AddNumberToObject(ns, "effective", o->limit > 0 && o->limit < t.ndocs ? o->limit : t.ndocs);
        if (samples) {
            /* one JSON object per line */
            size_t cap = 1 << 16, len = 0;
            char *buf = xmalloc(cap);
            for (cJSON *s = samples->child; s; s = s->next) {
                char *line = cJSON_PrintUnformatted(s);
                size_t l = strlen(line);
                if (len + l + 2 > cap) buf = realloc(buf, cap = 2 * (len + l + 2));
                memcpy(buf + len, line, l);
                buf[len + l] = '\n';
                len += l + 1;
                free(line);
            }
            char sp[4200];
            snprintf(sp, sizeof sp, "%s/samples_%s_%s.jsonl", outd, t.name, stamp);
            int wrc = write_file_atomic(sp, buf, len, err);
            free(buf);
            cJSON_Delete(samples);
            if (wrc) {
                lmeval_task_free(&t);
                goto out;
            }
        }
        lmeval_task_free(&t);
    }
    cJSON *cf = cJSON_AddObjectToObject(root, "config");
    cJSON_AddStringToObject(cf, "model", "rwkvlab-rwkv7");
    cJSON_AddStringToObject(cf, "model_args", o->model_path);
    cJSON_AddStringToObject(cf, "dtype", "float32");
    cJSON_AddStringToObject(cf, "device", "cpu");
    cJSON_AddNumberToObject(cf, "batch_size", 1);
    if (prefix >= 0) cJSON_AddNumberToObject(cf, "prefix_token", prefix);
    else cJSON_AddStringToObject(cf, "prefix_token", "none");
    cJSON_AddStringToObject(cf, "tokenisation_split", o->split == 0 ? "lm-eval (whole[len(ctx):])" : "separate");
    cJSON_AddNumberToObject(cf, "bootstrap_iters", o->bootstrap);
    if (o->limit > 0) cJSON_AddNumberToObject(cf, "limit", o->limit);
    else cJSON_AddNullToObject(cf, "limit");
    cJSON_AddBoolToObject(cf, "shared_context_state", !o->no_share);
    cJSON_AddStringToObject(root, "rwkvlab_version", RWKVLAB_VERSION);
    cJSON_AddNumberToObject(root, "date", (double)time(NULL));
    char tt[64];
    snprintf(tt, sizeof tt, "%.3f", now_seconds() - t0);
    cJSON_AddStringToObject(root, "total_evaluation_time_seconds", tt);
    snprintf(o->results_path, sizeof o->results_path, "%s/results_%s.json", outd, stamp);
    rc = json_write_atomic(o->results_path, root, err);
out:
    cJSON_Delete(root);
    rwkv7_free(m);
    tokenizer_free(tok);
    return rc;
}
