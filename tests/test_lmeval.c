/* test_lmeval.c -- the lm-eval scoring path end to end on a small random World-vocabulary model over the
 * tiny task fixtures (tests/fixtures/lmeval/good): shared context state == recomputed context, the
 * logprob equals a direct one-pass computation, output JSON has lm-eval's keys, bad input errors. */
#include <cJSON.h>
#include <criterion/criterion.h>
#include <gsl/gsl_rng.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lmeval.h"
#include "lmeval_data.h"
#include "rwkv7_io.h"
#include "tokenizer.h"

static char tmp[256], model[300], vocab[PATH_MAX];
static int have_vocab;

static void setup(void) {
    const char *c[] = {"data/rwkv_vocab_v20230424.txt", "../shared/data/rwkv_vocab_v20230424.txt"};
    have_vocab = 0;
    for (int i = 0; i < 2 && !have_vocab; i++)
        if (realpath(c[i], vocab)) have_vocab = 1;
    snprintf(tmp, sizeof tmp, "/tmp/rwkvlab_lmeval_XXXXXX");
    cr_assert(mkdtemp(tmp));
    if (!have_vocab) return;
    /* data dir = vocab + the fixture task files */
    char p[600], q[PATH_MAX];
    snprintf(p, sizeof p, "%s/data", tmp);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/data/rwkv_vocab_v20230424.txt", tmp);
    cr_assert_eq(symlink(vocab, p), 0);
    cr_assert(realpath("tests/fixtures/lmeval/good", q));
    snprintf(p, sizeof p, "%s/data/evalsets", tmp);
    cr_assert_eq(symlink(q, p), 0);
    /* a small random model with the World vocabulary */
    Rwkv7Dims d = {.V = 65536, .C = 32, .L = 2, .N = 16, .Dw = 8, .Da = 8, .Dv = 8, .Dg = 8, .has_ln0 = 1};
    Rwkv7 *m = rwkv7_create(&d);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    rwkv7_init_official(m, r);
    for (size_t i = 0; i < m->nparams; i++) m->params[i] += (real)(0.05 * (gsl_rng_uniform(r) - 0.5));
    for (size_t i = 0; i < (size_t)d.V * d.C; i++) m->w.emb[i] = (real)(gsl_rng_uniform(r) - 0.5);
    gsl_rng_free(r);
    snprintf(model, sizeof model, "%s/m.safetensors", tmp);
    Err e;
    cr_assert_eq(rwkv7_export(m, model, TF_F32, &e), 0, "%s", e.msg);
    rwkv7_free(m);
}
static void teardown(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    (void)!system(cmd);
}
TestSuite(lmeval, .init = setup, .fini = teardown, .timeout = 300);

static cJSON *run(const char *tasks, int no_share, int samples, const char *outsub, Err *e, int *rc) {
    char data[400], out[400];
    snprintf(data, sizeof data, "%s/data", tmp);
    snprintf(out, sizeof out, "%s/%s", tmp, outsub);
    mkdir(out, 0755);
    LmevalOpts o = {.model_path = model, .tasks = tasks, .data_dir = data, .out_dir = out, .device = "cpu",
                    .prefix = 0, .bootstrap = 1000, .no_share = no_share, .samples = samples, .quiet = 1};
    *rc = lmeval_run(&o, e);
    if (*rc) return NULL;
    FILE *f = fopen(o.results_path, "r");
    cr_assert(f, "no results file %s", o.results_path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return cJSON_Parse(buf);
}

#define ALL "lambada_openai,piqa,hellaswag,arc_easy,arc_challenge,winogrande,openbookqa,copa,sciq"

Test(lmeval, shared_context_equals_recomputed_and_json_keys) {
    if (!have_vocab) cr_skip_test("tokenizer vocabulary not in data/ or ../shared/data/");
    Err e = {{0}};
    int rc;
    cJSON *a = run(ALL, 0, 1, "share", &e, &rc);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cJSON *b = run(ALL, 1, 0, "noshare", &e, &rc);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cJSON *ra = cJSON_GetObjectItem(a, "results"), *rb = cJSON_GetObjectItem(b, "results");
    int ntasks = 0;
    for (cJSON *t = ra->child; t; t = t->next, ntasks++) {
        cJSON *u = cJSON_GetObjectItem(rb, t->string);
        cr_assert(u, "task %s missing in the second run", t->string);
        cr_expect(cJSON_GetObjectItem(t, "acc,none") && cJSON_GetObjectItem(t, "acc_stderr,none"), "%s", t->string);
        for (cJSON *k = t->child; k; k = k->next)
            if (cJSON_IsNumber(k))
                cr_expect(k->valuedouble == cJSON_GetObjectItem(u, k->string)->valuedouble,
                          "%s %s: shared %.17g vs recomputed %.17g", t->string, k->string, k->valuedouble,
                          cJSON_GetObjectItem(u, k->string)->valuedouble);
    }
    cr_expect_eq(ntasks, 9);
    cJSON *lam = cJSON_GetObjectItem(ra, "lambada_openai");
    cr_expect(cJSON_GetObjectItem(lam, "perplexity,none") && cJSON_GetObjectItem(lam, "perplexity_stderr,none"));
    cr_expect(cJSON_GetObjectItem(cJSON_GetObjectItem(ra, "piqa"), "acc_norm,none"));
    const char *keys[] = {"results", "group_subtasks", "configs", "versions", "n-shot", "higher_is_better",
                          "n-samples", "config", "date", "total_evaluation_time_seconds"};
    for (int i = 0; i < 10; i++) cr_expect(cJSON_GetObjectItem(a, keys[i]), "results JSON lacks '%s'", keys[i]);
    cJSON *ns = cJSON_GetObjectItem(cJSON_GetObjectItem(a, "n-samples"), "lambada_openai");
    cr_expect_eq(cJSON_GetObjectItem(ns, "original")->valueint, 3); /* 3 documents in the fixture */
    cJSON_Delete(a), cJSON_Delete(b);
}

/* lmeval's logprob (context state shared, continuation from the state) == one pass over ctx + cont */
Test(lmeval, logprob_equals_one_pass) {
    if (!have_vocab) cr_skip_test("tokenizer vocabulary not in data/ or ../shared/data/");
    Err e;
    Tokenizer *tok = tokenizer_load(vocab, &e);
    cr_assert(tok, "%s", e.msg);
    Rwkv7 *m;
    cr_assert_eq(rwkv7_load(model, &m, &e), 0, "%s", e.msg);
    LmTask t;
    char data[400];
    snprintf(data, sizeof data, "%s/data", tmp);
    cr_assert_eq(lmeval_task_load("lambada_openai", data, &t, &e), 0, "%s", e.msg);
    const int V = m->d.V;
    for (int di = 0; di < t.ndocs; di++) {
        int *c, *k;
        size_t nc, nk;
        cr_assert_eq(lmeval_encode_request(tok, t.docs[di].context, t.docs[di].cont[0], LMEVAL_SPLIT_LMEVAL, 0, &c, &nc,
                                           &k, &nk, &e), 0);
        /* one pass */
        int *all = malloc((nc + nk) * sizeof(int));
        memcpy(all, c, nc * sizeof(int)), memcpy(all + nc, k, nk * sizeof(int));
        const real *lg = rwkv7_forward(m, all, 1, (int)(nc + nk), 16, NULL, NULL, NULL);
        double direct = 0;
        for (size_t j = 0; j < nk; j++) {
            const real *row = lg + (nc - 1 + j) * V;
            double mx = row[0], z = 0;
            for (int v = 1; v < V; v++) mx = fmax(mx, row[v]);
            for (int v = 0; v < V; v++) z += exp(row[v] - mx);
            direct += row[k[j]] - mx - log(z);
        }
        /* the lmeval path */
        real *s = calloc(rwkv7_state_numel(&m->d, 1), sizeof(real)), *lg0 = malloc(V * sizeof(real));
        memcpy(lg0, rwkv7_forward(m, c, 1, (int)nc, 16, s, s, NULL) + (nc - 1) * V, V * sizeof(real));
        int greedy;
        double lp = lmeval_score_continuation(m, s, lg0, k, (int)nk, &greedy);
        printf("lambada fixture doc %d: %zu ctx + %zu cont tokens, logprob %.6f (one pass %.6f)\n", di, nc, nk, lp, direct);
        cr_expect(fabs(lp - direct) <= 1e-4 * fmax(1, fabs(direct)), "doc %d: %.8f vs %.8f", di, lp, direct);
        free(s), free(lg0), free(all), free(c), free(k);
    }
    lmeval_task_free(&t);
    rwkv7_free(m);
    tokenizer_free(tok);
}

Test(lmeval, bad_input_errors) {
    if (!have_vocab) cr_skip_test("tokenizer vocabulary not in data/ or ../shared/data/");
    Err e = {{0}};
    int rc;
    run("lambada_openai,no_such_task", 0, 0, "bad", &e, &rc);
    cr_expect_neq(rc, 0);
    cr_expect(strstr(e.msg, "piqa"), "unknown task error should list the tasks: %s", e.msg);
    char data[400], out[400];
    snprintf(data, sizeof data, "%s/data", tmp);
    snprintf(out, sizeof out, "%s", tmp);
    LmevalOpts o = {.model_path = "/nonexistent.pth", .tasks = "piqa", .data_dir = data, .out_dir = out, .device = "cpu"};
    cr_expect_neq(lmeval_run(&o, &e), 0);
    o.model_path = "tests/fixtures/ckpt/tiny_f32.safetensors"; /* V = 97: not a World-tokenizer model */
    o.quiet = 1;
    cr_expect_neq(lmeval_run(&o, &e), 0);
    cr_expect(strstr(e.msg, "vocabulary"), "%s", e.msg);
    o.model_path = model, o.device = "cuda";
    cr_expect_neq(lmeval_run(&o, &e), 0);
    cr_expect(strstr(e.msg, "cpu"), "%s", e.msg);
}
