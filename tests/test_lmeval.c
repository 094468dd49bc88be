/* test_lmeval.c -- the lm-eval scoring path end to end on a small random World-vocabulary model over the
 * tiny task fixtures (tests/fixtures/lmeval/good): shared context state == recomputed context, the
 * logprob equals a direct one-pass computation, output JSON has lm-eval's keys, place and value types
 * (issue 6 item 16), every bad input is an error before the first document is scored and leaves no file
 * (item 15), two quick runs keep two results files. */
#include <cJSON.h>
#include <criterion/criterion.h>
#include <gsl/gsl_rng.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <glob.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "lmeval.h"
#include "lmeval_out.h"
#include "lmeval_data.h"
#include "model_io.h"
#include "rwkv7.h"
#include "testutil.h"
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
    Model *mm = model_create(&model_rwkv7, &d, 1);
    Rwkv7 *m = mm->self;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    model_init(mm, r, NULL);
    for (size_t i = 0; i < m->nparams; i++) m->params[i] += (real)(0.05 * (gsl_rng_uniform(r) - 0.5));
    for (size_t i = 0; i < (size_t)d.V * d.C; i++) m->w.emb[i] = (real)(gsl_rng_uniform(r) - 0.5);
    gsl_rng_free(r);
    snprintf(model, sizeof model, "%s/m.safetensors", tmp);
    Err e;
    cr_assert_eq(model_export(mm, model, TF_F32, &e), 0, "%s", e.msg);
    model_free(mm);
}
static void teardown(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    (void)!system(cmd);
}
TestSuite(lmeval, .init = setup, .fini = teardown, .timeout = 300);

/* the whole file as a string (caller frees), or NULL */
static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = malloc(n + 1);
    size_t got = fread(b, 1, n, f);
    b[got] = 0;
    fclose(f);
    return b;
}

/* lm-eval's model_name_sanitized of the test model's path (only '/' occurs there, never twice in a row) */
static void sanitized_model(char *out, size_t cap) {
    size_t o = 0;
    for (const char *p = model; *p && o + 3 < cap; p++)
        if (*p == '/') out[o++] = '_', out[o++] = '_';
        else out[o++] = *p;
    out[o] = 0;
}

static cJSON *run_opts(LmevalOpts *o, const char *outsub, Err *e, int *rc, char **text) {
    static char data[400], out[400];
    snprintf(data, sizeof data, "%s/data", tmp);
    snprintf(out, sizeof out, "%s/%s", tmp, outsub);
    o->model_path = o->model_path ? o->model_path : model, o->data_dir = data, o->out_dir = out, o->device = "cpu";
    *rc = lmeval_run(o, e);
    if (*rc) return NULL;
    /* lm-eval's place: OUT/<model_name_sanitized>/results_<date_id>.json */
    char san[600], want[1200];
    sanitized_model(san, sizeof san);
    snprintf(want, sizeof want, "%s/%s/results_", out, san);
    cr_assert(!strncmp(o->results_path, want, strlen(want)), "results at %s, expected under %s", o->results_path, want);
    char *buf = slurp(o->results_path);
    cr_assert(buf, "no results file %s", o->results_path);
    cJSON *j = cJSON_Parse(buf);
    cr_assert(j, "results file %s is not JSON", o->results_path);
    if (text) *text = buf;
    else free(buf);
    return j;
}

static cJSON *run(const char *tasks, int no_share, int samples, const char *outsub, Err *e, int *rc) {
    LmevalOpts o = {.tasks = tasks, .prefix = 0, .bootstrap = 1000, .no_share = no_share, .samples = samples, .quiet = 1};
    return run_opts(&o, outsub, e, rc, NULL);
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
    Model *m;
    cr_assert_eq(model_load(model, &m, &e), 0, "%s", e.msg);
    LmTask t;
    char data[400];
    snprintf(data, sizeof data, "%s/data", tmp);
    cr_assert_eq(lmeval_task_load("lambada_openai", data, &t, &e), 0, "%s", e.msg);
    const int V = m->V;
    for (int di = 0; di < t.ndocs; di++) {
        int *c, *k;
        size_t nc, nk;
        cr_assert_eq(lmeval_encode_request(tok, t.docs[di].context, t.docs[di].cont[0], LMEVAL_SPLIT_LMEVAL, 0, &c, &nc,
                                           &k, &nk, &e), 0);
        /* one pass */
        int *all = malloc((nc + nk) * sizeof(int));
        memcpy(all, c, nc * sizeof(int)), memcpy(all + nc, k, nk * sizeof(int));
        const real *lg = model_forward(m, all, 1, (int)(nc + nk), NULL);
        double direct = 0;
        for (size_t j = 0; j < nk; j++) {
            const real *row = lg + (nc - 1 + j) * V;
            double mx = row[0], z = 0;
            for (int v = 1; v < V; v++) mx = fmax(mx, row[v]);
            for (int v = 0; v < V; v++) z += exp(row[v] - mx);
            direct += row[k[j]] - mx - log(z);
        }
        /* the lmeval path */
        real *s = calloc(model_state_numel(m, 1), sizeof(real)), *lg0 = malloc(V * sizeof(real));
        ModelFwd f = {.state_in = s, .state_out = s};
        memcpy(lg0, model_forward(m, c, 1, (int)nc, &f) + (nc - 1) * V, V * sizeof(real));
        int greedy;
        double lp = lmeval_score_continuation(m, s, lg0, k, (int)nk, &greedy);
        printf("lambada fixture doc %d: %zu ctx + %zu cont tokens, logprob %.6f (one pass %.6f)\n", di, nc, nk, lp, direct);
        cr_expect(fabs(lp - direct) <= 1e-4 * fmax(1, fabs(direct)), "doc %d: %.8f vs %.8f", di, lp, direct);
        free(s), free(lg0), free(all), free(c), free(k);
    }
    lmeval_task_free(&t);
    model_free(m);
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
    /* the library checks its options itself (whatever the CLI parser lets through) */
    o.device = "cpu";
    const struct {
        long limit, bootstrap;
        const char *tasks, *want;
    } c[] = {{-5, 100, "piqa", "--limit -5"},           {0, 1, "piqa", "--bootstrap 1"},
             {0, -1, "piqa", "--bootstrap -1"},          {0, LMEVAL_BOOTSTRAP_MAX + 1, "piqa", "--bootstrap"},
             {0, 100, "", "--tasks is empty"},           {0, 100, "piqa,", "entry 2 is empty"},
             {0, 100, "copa,piqa,copa", "listed twice"}, {0, 100, "piqa,Piqa", "unknown task 'Piqa'"}};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        o.limit = c[i].limit, o.bootstrap = c[i].bootstrap, o.tasks = c[i].tasks;
        cr_expect_neq(lmeval_run(&o, &e), 0, "case %zu accepted", i);
        cr_expect(strstr(e.msg, c[i].want), "case %zu: %s", i, e.msg);
        cr_expect_str_eq(o.results_path, "", "case %zu: a results path was reported", i);
    }
}

/* ---- issue 6, item 15: every input checked before the first forward pass ------------------------ */

/* Each bad input: nonzero exit, a message naming the problem, within seconds, no document scored (no
 * progress or score line), no file written and no output directory left behind. */
Test(lmeval, bad_inputs_fail_before_scoring) {
    if (!have_vocab) cr_skip_test("tokenizer vocabulary not in data/ or ../shared/data/");
    char d2[400], p[800], q[PATH_MAX], file[400], nodata[400], none[400];
    /* a data directory holding every fixture but sciq's */
    snprintf(d2, sizeof d2, "%s/data2", tmp);
    mkdir(d2, 0755);
    snprintf(p, sizeof p, "%s/evalsets", d2);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/rwkv_vocab_v20230424.txt", d2);
    cr_assert_eq(symlink(vocab, p), 0);
    cr_assert(realpath("tests/fixtures/lmeval/good", q));
    DIR *dd = opendir(q);
    cr_assert(dd);
    for (struct dirent *de; (de = readdir(dd));) {
        if (de->d_name[0] == '.' || !strcmp(de->d_name, "sciq_test.jsonl")) continue;
        char src[PATH_MAX + 300], dst[800];
        snprintf(src, sizeof src, "%s/%s", q, de->d_name);
        snprintf(dst, sizeof dst, "%s/evalsets/%s", d2, de->d_name);
        cr_assert_eq(symlink(src, dst), 0);
    }
    closedir(dd);
    snprintf(file, sizeof file, "%s/afile", tmp);
    FILE *f = fopen(file, "w");
    fclose(f);
    snprintf(nodata, sizeof nodata, "%s/nodata", tmp);
    snprintf(none, sizeof none, "%s/none.pth", tmp);
    char data[400], out[400], fileout[500];
    snprintf(data, sizeof data, "%s/data", tmp);
    snprintf(out, sizeof out, "%s/badout/deeper", tmp);
    snprintf(fileout, sizeof fileout, "%s/sub", file);
    const struct {
        const char *tasks, *extra, *model, *data, *out, *want;
    } c[] = {
        {"lambada_openai,bogus", "", NULL, NULL, NULL, "unknown task 'bogus'; known tasks: lambada_openai, piqa"},
        {"", "", NULL, NULL, NULL, "empty"},
        {"  ", "", NULL, NULL, NULL, "empty"},
        {"piqa,,copa", "", NULL, NULL, NULL, "entry 2 is empty"},
        {"lambada_openai,piqa,", "", NULL, NULL, NULL, "entry 3 is empty"},
        {"piqa,copa, piqa", "", NULL, NULL, NULL, "'piqa' is listed twice"},
        {"lambada_openai,piqa,sciq", "", NULL, d2, NULL, "sciq_test.jsonl not found"},
        {"lambada_openai", "--limit -5", NULL, NULL, NULL, "--limit"},
        {"lambada_openai", "--bootstrap 99999999999", NULL, NULL, NULL, "--bootstrap"},
        {"lambada_openai", "--bootstrap 1", NULL, NULL, NULL, "--bootstrap"},
        {"lambada_openai", "--bootstrap -3", NULL, NULL, NULL, "--bootstrap"},
        {"lambada_openai", "", NULL, NULL, fileout, "output directory"},
        {"lambada_openai", "", NULL, nodata, NULL, "vocabulary"},
        {"lambada_openai,piqa", "", "tests/fixtures/ckpt/tiny_f32.safetensors", NULL, NULL, "outside the model's vocabulary"},
        {"lambada_openai", "", none, NULL, NULL, "--model"},
    };
    char log[500];
    snprintf(log, sizeof log, "%s/bad.log", tmp);
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char cmd[4000];
        snprintf(cmd, sizeof cmd, "%s lmeval --model '%s' --data '%s' --out '%s' --tasks '%s' %s > '%s' 2>&1",
                 rwkvlab_bin(), c[i].model ? c[i].model : model, c[i].data ? c[i].data : data,
                 c[i].out ? c[i].out : out, c[i].tasks, c[i].extra, log);
        double t0 = now_seconds();
        int rc = sh(cmd);
        double el = now_seconds() - t0;
        char *txt = slurp(log);
        cr_assert(txt);
        cr_expect(rc != 0, "case %zu (--tasks '%s' %s): exit 0\n%s", i, c[i].tasks, c[i].extra, txt);
        cr_expect(strstr(txt, c[i].want), "case %zu: message lacks \"%s\":\n%s", i, c[i].want, txt);
        cr_expect(!strstr(txt, " docs ") && !strstr(txt, " acc "), "case %zu: documents were scored first:\n%s", i, txt);
        cr_expect(el < 20, "case %zu: %.1f s to report a bad input", i, el);
        char chk[1200];
        snprintf(chk, sizeof chk, "test ! -e '%s/badout' && test -z \"$(find '%s' -name 'results_*' -o -name 'samples_*')\"",
                 tmp, tmp);
        cr_expect_eq(sh(chk), 0, "case %zu: an output file or directory was left behind", i);
        free(txt);
    }
}

/* ---- issue 6, item 16: a script written for lm-eval's output reads ours --------------------------- */

/* every "<metric>,none" value in the text: a float literal (with '.' or an exponent) or the string "N/A" */
static int check_metric_floats(const char *text) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, ",none\"")); p++) {
        const char *v = p + 6;
        while (*v == ' ' || *v == '\t') v++;
        cr_assert_eq(*v, ':', "unexpected text after a ,none key: %.40s", p);
        for (v++; *v == ' ' || *v == '\t';) v++;
        size_t len = strcspn(v, ",}\n\r\t ");
        if (*v == '"') cr_expect(!strncmp(v, "\"N/A\"", 5), "metric value %.*s is a string but not \"N/A\"", (int)len, v);
        else cr_expect(memchr(v, '.', len) || memchr(v, 'e', len), "metric written as %.*s: Python reads an int",
                       (int)len, v);
        n++;
    }
    return n;
}

/* the date_id of a results path .../results_<date_id>.json: lm-eval's %Y-%m-%dT%H-%M-%S.%f */
static void stamp_of(const char *path, char *stamp) {
    const char *b = strrchr(path, '/') + 1;
    cr_assert(!strncmp(b, "results_", 8), "%s", b);
    snprintf(stamp, 64, "%.*s", (int)(strlen(b) - 8 - 5), b + 8);
    const char *pat = "dddd-dd-ddTdd-dd-dd.dddddd";
    cr_assert_eq(strlen(stamp), strlen(pat), "date_id %s", stamp);
    for (size_t i = 0; pat[i]; i++)
        cr_expect(pat[i] == 'd' ? (stamp[i] >= '0' && stamp[i] <= '9') : stamp[i] == pat[i], "date_id %s", stamp);
}

Test(lmeval, results_and_samples_read_as_lm_eval) {
    if (!have_vocab) cr_skip_test("tokenizer vocabulary not in data/ or ../shared/data/");
    Err e = {{0}};
    int rc;
    char *text;
    /* one document per task: every acc is exactly 0 or 1, the values that print as ints without care */
    LmevalOpts o = {.tasks = "lambada_openai,piqa,hellaswag,arc_easy,winogrande,copa", .limit = 1, .bootstrap = 1000,
                    .samples = 1, .quiet = 1};
    cJSON *j = run_opts(&o, "compat", &e, &rc, &text);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_geq(check_metric_floats(text), 6 * 2, "too few metrics found in\n%s", text);
    cJSON *res = cJSON_GetObjectItem(j, "results");
    for (cJSON *t = res->child; t; t = t->next) {
        cJSON *a = cJSON_GetObjectItem(t, "acc,none");
        cr_expect(a->valuedouble == 0 || a->valuedouble == 1, "%s: acc of one document %g", t->string, a->valuedouble);
        /* lm-eval: no standard error from one document */
        cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(t, "acc_stderr,none")), "N/A", "%s", t->string);
        cJSON *cfg = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "configs"), t->string);
        cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(cfg, "output_type")),
                         strcmp(t->string, "lambada_openai") ? "multiple_choice" : "loglikelihood", "%s", t->string);
        cJSON *ns = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "n-samples"), t->string);
        cr_expect_eq(cJSON_GetObjectItem(ns, "effective")->valueint, 1);
    }
    /* versions are floats (lm-eval's task metadata version 1.0) */
    const char *v = strstr(text, "\"versions\":");
    cr_assert(v);
    const char *vend = strchr(v, '}');
    int nver = 0;
    for (const char *p = strchr(v, '{'); p < vend; p++)
        if (*p >= '0' && *p <= '9' && (p[-1] == ' ' || p[-1] == '\t' || p[-1] == ':')) {
            cr_expect(p[1] == '.', "a version written as an int: %.10s", p);
            nver++;
        }
    cr_expect_eq(nver, 6);
    char san[600], args[1200];
    sanitized_model(san, sizeof san);
    snprintf(args, sizeof args, "pretrained=%s,dtype=float32", model);
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(j, "model_name")), model);
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(j, "model_name_sanitized")), san);
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "config"), "model_args")), args);
    cr_expect(cJSON_IsString(cJSON_GetObjectItem(j, "total_evaluation_time_seconds")));
    cr_expect(cJSON_IsNumber(cJSON_GetObjectItem(j, "date")));
    /* the samples files share the results file's date_id; lm-eval's value types */
    char stamp[64], sp[1400];
    stamp_of(o.results_path, stamp);
    const char *mc[] = {"piqa", "lambada_openai"};
    for (int k = 0; k < 2; k++) {
        snprintf(sp, sizeof sp, "%.*s/samples_%s_%s.jsonl", (int)(strrchr(o.results_path, '/') - o.results_path),
                 o.results_path, mc[k], stamp);
        char *st = slurp(sp);
        cr_assert(st, "no samples file %s", sp);
        cJSON *s = cJSON_Parse(st); /* the first line */
        cr_assert(s, "%s: first line is not JSON", sp);
        cJSON *r0 = cJSON_GetArrayItem(cJSON_GetArrayItem(cJSON_GetObjectItem(s, "resps"), 0), 0);
        cr_expect(cJSON_IsString(cJSON_GetArrayItem(r0, 0)), "resps hold strings in lm-eval's samples");
        const char *g = cJSON_GetStringValue(cJSON_GetArrayItem(r0, 1));
        cr_expect(g && (!strcmp(g, "True") || !strcmp(g, "False")), "is_greedy as Python's str(bool): %s", g ? g : "?");
        cr_expect(strtod(cJSON_GetStringValue(cJSON_GetArrayItem(r0, 0)), NULL) < 0, "a logprob must be negative");
        const char *acc = strstr(st, "\"acc\":");
        cr_assert(acc);
        if (k == 0) cr_expect(acc[7] == '.', "multiple_choice acc is a float in lm-eval: %.12s", acc);
        else cr_expect(acc[7] == '}' || acc[7] == ',', "lambada acc is int(is_greedy) in lm-eval: %.12s", acc);
        cJSON_Delete(s), free(st);
    }
    cJSON_Delete(j), free(text);
}

Test(lmeval, bootstrap_zero_means_no_stderr) {
    if (!have_vocab) cr_skip_test("tokenizer vocabulary not in data/ or ../shared/data/");
    Err e = {{0}};
    int rc;
    LmevalOpts o = {.tasks = "lambada_openai,piqa", .bootstrap = 0, .quiet = 1};
    cJSON *j = run_opts(&o, "noboot", &e, &rc, NULL);
    cr_assert_eq(rc, 0, "%s", e.msg);
    int n = 0;
    for (cJSON *t = cJSON_GetObjectItem(j, "results")->child; t; t = t->next)
        for (cJSON *k = t->child; k; k = k->next)
            if (strstr(k->string, "_stderr,")) {
                cr_expect(cJSON_IsString(k) && !strcmp(k->valuestring, "N/A"), "%s %s with --bootstrap 0", t->string, k->string);
                n++;
            }
    cr_expect_eq(n, 4);
    cJSON_Delete(j);
}

/* the perplexity's bootstrap stderr runs in parallel blocks: the same value with 1 and with 3 threads, and
 * a real spread (not 0, not N/A) */
Test(lmeval, bootstrap_independent_of_thread_count) {
    if (!have_vocab) cr_skip_test("tokenizer vocabulary not in data/ or ../shared/data/");
#ifdef _OPENMP
    Err e = {{0}};
    int rc;
    double v[2];
    const int threads[2] = {1, 3};
    for (int i = 0; i < 2; i++) {
        omp_set_num_threads(threads[i]);
        LmevalOpts o = {.tasks = "lambada_openai", .bootstrap = 2500, .quiet = 1};
        cJSON *j = run_opts(&o, i ? "boot3" : "boot1", &e, &rc, NULL);
        cr_assert_eq(rc, 0, "%s", e.msg);
        cJSON *k = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "results"), "lambada_openai"),
                                       "perplexity_stderr,none");
        cr_assert(cJSON_IsNumber(k));
        v[i] = k->valuedouble;
        cJSON_Delete(j);
    }
    omp_set_num_threads(2);
    cr_expect_eq(v[0], v[1], "stderr %.17g with 1 thread, %.17g with 3", v[0], v[1]);
    cr_expect(v[0] > 0 && isfinite(v[0]), "stderr %g", v[0]);
#else
    cr_skip_test("built without OpenMP");
#endif
}

/* two runs in quick succession into one OUT: two results files (and samples), nothing overwritten */
Test(lmeval, two_quick_runs_two_files) {
    if (!have_vocab) cr_skip_test("tokenizer vocabulary not in data/ or ../shared/data/");
    Err e = {{0}};
    int rc;
    char first[4096], st1[64], st2[64];
    LmevalOpts o = {.tasks = "copa", .bootstrap = 100, .samples = 1, .quiet = 1};
    cJSON *a = run_opts(&o, "twice", &e, &rc, NULL);
    cr_assert_eq(rc, 0, "%s", e.msg);
    snprintf(first, sizeof first, "%s", o.results_path);
    LmevalOpts o2 = {.tasks = "copa", .bootstrap = 100, .samples = 1, .quiet = 1};
    cJSON *b = run_opts(&o2, "twice", &e, &rc, NULL);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_str_neq(first, o2.results_path);
    stamp_of(first, st1), stamp_of(o2.results_path, st2);
    char pat[4200];
    const char *kinds[] = {"results_*.json", "samples_copa_*.jsonl"};
    for (int k = 0; k < 2; k++) {
        snprintf(pat, sizeof pat, "%.*s/%s", (int)(strrchr(first, '/') - first), first, kinds[k]);
        glob_t g;
        cr_assert_eq(glob(pat, 0, NULL, &g), 0, "%s", pat);
        cr_expect_eq(g.gl_pathc, 2, "%zu files match %s", g.gl_pathc, pat);
        for (size_t i = 0; i < g.gl_pathc; i++)
            cr_expect(strstr(g.gl_pathv[i], st1) || strstr(g.gl_pathv[i], st2), "%s: not one of the two runs", g.gl_pathv[i]);
        globfree(&g);
    }
    cJSON_Delete(a), cJSON_Delete(b);
}
