/* test_lmeval_shard.c -- issue 10 on the CPU path: `lmeval --shard I/N` + `lmeval-merge` and
 * `lmeval --devices cpu,cpu` give the results and samples of an unsharded run, the merge refuses shards
 * that are not the N parts of one run (another weight type or batch size too) and names the merged devices
 * ("cuda:0,1"), bad --shard values are errors, shard files are written atomically.
 *
 * Equality: every line of the results JSON is byte-equal except the four top-level timing lines "date",
 * "start_time", "end_time" and "total_evaluation_time_seconds" (and the date_id in the file names);
 * the samples files are byte-equal. The model is a small random one with the World vocabulary, the
 * data generated here (4 tasks, 5 to 11 documents, --limit 9 so that --limit is applied before the split). */
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

#include "lmeval.h"
#include "lmeval_shard.h"
#include "model_io.h"
#include "rwkv7.h"
#include "testutil.h"

#define TASKS "lambada_openai,piqa,winogrande,arc_easy"
#define LIMIT 9

static char tmp[256], model[300], data[300], vocab[PATH_MAX];
static int have_vocab;

static void put(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    cr_assert(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

/* a random model with the World vocabulary; seeds give different files */
static void make_model(const char *path, unsigned long seed) {
    Rwkv7Dims d = {.V = 65536, .C = 32, .L = 2, .N = 16, .Dw = 8, .Da = 8, .Dv = 8, .Dg = 8, .has_ln0 = 1};
    Model *mm = model_create(&model_rwkv7, &d, 1);
    Rwkv7 *m = mm->self;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    model_init(mm, r, NULL);
    for (size_t i = 0; i < m->nparams; i++) m->params[i] += (real)(0.05 * (gsl_rng_uniform(r) - 0.5));
    for (size_t i = 0; i < (size_t)d.V * d.C; i++) m->w.emb[i] = (real)(gsl_rng_uniform(r) - 0.5);
    gsl_rng_free(r);
    Err e;
    cr_assert_eq(model_export(mm, path, TF_F32, &e), 0, "%s", e.msg);
    model_free(mm);
}

/* task files with documents of different lengths (so that token balancing has something to do) */
static void make_data(void) {
    static const char *w[] = {"the", "cat", "sat", "on", "a", "warm", "mat", "while", "rain", "fell", "outside",
                              "and", "birds", "sang", "loudly", "near", "river"};
    char p[600], line[600];
    snprintf(data, sizeof data, "%s/data", tmp);
    mkdir(data, 0755);
    snprintf(p, sizeof p, "%s/evalsets", data);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/rwkv_vocab_v20230424.txt", data);
    cr_assert_eq(symlink(vocab, p), 0);
    char buf[8000] = "";
    for (int k = 0; k < 11; k++) { /* lambada: 11 documents of 2..16 words */
        int o = snprintf(line, sizeof line, "{\"text\": \"");
        for (int j = 0; j < 2 + (k * 7) % 15; j++) o += snprintf(line + o, sizeof line - o, "%s%s", j ? " " : "", w[(k + 3 * j) % 17]);
        snprintf(line + o, sizeof line - o, "\"}\n");
        strcat(buf, line);
    }
    snprintf(p, sizeof p, "%s/evalsets/lambada_openai_test.jsonl", data), put(p, buf);
    buf[0] = 0;
    char labels[64] = "";
    for (int k = 0; k < 7; k++) { /* piqa: 7 */
        snprintf(line, sizeof line, "{\"goal\": \"%s %s%s\", \"sol1\": \"%s the %s\", \"sol2\": \"%s %s %s %s\"}\n", w[k],
                 w[k + 1], k % 3 ? " quickly and then slowly" : "", w[k + 2], w[k + 5], w[k + 3], w[k + 4], w[k + 6],
                 k % 2 ? w[k + 7] : "");
        strcat(buf, line);
        strcat(labels, k % 2 ? "1\n" : "0\n");
    }
    snprintf(p, sizeof p, "%s/evalsets/piqa_valid.jsonl", data), put(p, buf);
    snprintf(p, sizeof p, "%s/evalsets/piqa_valid-labels.lst", data), put(p, labels);
    buf[0] = 0;
    for (int k = 0; k < 5; k++) { /* winogrande: 5, per-choice contexts */
        snprintf(line, sizeof line,
                 "{\"context_options\": [\"%s helped %s because %s\", \"%s helped %s because %s\"], \"continuation\": "
                 "\"was %s.\", \"gold\": %d}\n",
                 w[k], w[k + 4], w[k], w[k], w[k + 4], w[k + 4], w[k + 8], k % 2);
        strcat(buf, line);
    }
    snprintf(p, sizeof p, "%s/evalsets/winogrande_xl_dev.foundry.jsonl", data), put(p, buf);
    buf[0] = 0;
    for (int k = 0; k < 6; k++) { /* arc_easy: 6, 3 or 4 choices */
        snprintf(line, sizeof line, "{\"query\": \"Question: what %s the %s?\", \"choices\": [\"%s\", \"%s %s\", \"%s\"%s%s%s], "
                 "\"gold\": %d}\n", w[k], w[k + 2], w[k + 1], w[k + 3], w[k + 9], w[k + 5], k % 2 ? ", \"" : "",
                 k % 2 ? w[k + 6] : "", k % 2 ? "\"" : "", k % 3);
        strcat(buf, line);
    }
    snprintf(p, sizeof p, "%s/evalsets/arc_easy_test.foundry.jsonl", data), put(p, buf);
}

static void setup(void) {
    const char *c[] = {"data/rwkv_vocab_v20230424.txt", "../shared/data/rwkv_vocab_v20230424.txt"};
    have_vocab = 0;
    for (int i = 0; i < 2 && !have_vocab; i++)
        if (realpath(c[i], vocab)) have_vocab = 1;
    cr_assert_eq(test_mkdtemp(tmp, sizeof tmp, "shard"), 0);
    if (!have_vocab) return;
    make_data();
    snprintf(model, sizeof model, "%s/m.safetensors", tmp);
    make_model(model, 0);
}
static void teardown(void) { test_rmtree(tmp); }
TestSuite(lmeval_shard, .init = setup, .fini = teardown, .timeout = 300);

static char *slurp(const char *path) {
    size_t n;
    return test_slurp(path, &n);
}

/* lmeval in this process: the options every run here shares, then shard i/n (n = 0: unsharded) */
static void run_lib(const char *mpath, const char *tasks, int prefix, long limit, int i, int n, const char *outsub,
                    char *path, size_t cap) {
    char out[400];
    snprintf(out, sizeof out, "%s/%s", tmp, outsub);
    LmevalOpts o = {.model_path = mpath, .tasks = tasks, .data_dir = data, .out_dir = out, .device = "cpu",
                    .prefix = prefix, .limit = limit, .bootstrap = 1000, .samples = 1, .quiet = 1, .shard_i = i, .shard_n = n};
    model_load_opts_default(&o.load);
    Err e = {{0}};
    cr_assert_eq(lmeval_run(&o, &e), 0, "lmeval %s shard %d/%d: %s", tasks, i, n, e.msg);
    snprintf(path, cap, "%s", o.results_path);
}
static void run_shard(const char *outsub, int i, int n, char *path, size_t cap) {
    run_lib(model, TASKS, 0, LIMIT, i, n, outsub, path, cap);
}

/* the results text without its four top-level timing lines; *removed counts them */
static char *without_timing(const char *text, int *removed) {
    static const char *const skip[] = {"\t\"date\":", "\t\"start_time\":", "\t\"end_time\":",
                                       "\t\"total_evaluation_time_seconds\":"};
    char *out = malloc(strlen(text) + 1);
    size_t o = 0;
    *removed = 0;
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p + 1) : strlen(p);
        int drop = 0;
        for (int k = 0; k < 4; k++) drop |= !strncmp(p, skip[k], strlen(skip[k]));
        if (drop) (*removed)++;
        else memcpy(out + o, p, len), o += len;
        p += len;
    }
    out[o] = 0;
    return out;
}

/* results file a == b apart from the timing lines; samples files of every task byte-equal */
static void expect_same_outputs(const char *ra, const char *rb) {
    char *ta = slurp(ra), *tb = slurp(rb);
    cr_assert(ta && tb, "cannot read %s or %s", ra, rb);
    int na, nb;
    char *sa = without_timing(ta, &na), *sb = without_timing(tb, &nb);
    cr_expect_eq(na, 4, "%s: %d timing lines", ra, na);
    cr_expect_eq(nb, 4, "%s: %d timing lines", rb, nb);
    cr_expect(strstr(sa, "\"perplexity,none\"") && strstr(sa, "\"acc_norm_stderr,none\""), "no metrics in\n%s", sa);
    if (strcmp(sa, sb)) { /* the first differing line */
        size_t k = 0;
        while (sa[k] == sb[k]) k++;
        while (k && sa[k - 1] != '\n') k--;
        cr_expect(0, "results differ:\n%s: %.200s\n%s: %.200s", ra, sa + k, rb, sb + k);
    }
    const char *tasks[] = {"lambada_openai", "piqa", "winogrande", "arc_easy"};
    for (int t = 0; t < 4; t++) {
        char pa[4200], pb[4200];
        const char *sta = strrchr(ra, '_') + 1, *stb = strrchr(rb, '_') + 1; /* "<date_id>.json" */
        snprintf(pa, sizeof pa, "%.*s/samples_%s_%.*s.jsonl", (int)(strrchr(ra, '/') - ra), ra, tasks[t],
                 (int)(strlen(sta) - 5), sta);
        snprintf(pb, sizeof pb, "%.*s/samples_%s_%.*s.jsonl", (int)(strrchr(rb, '/') - rb), rb, tasks[t],
                 (int)(strlen(stb) - 5), stb);
        char *xa = slurp(pa), *xb = slurp(pb);
        cr_assert(xa && xb, "missing samples file %s or %s", pa, pb);
        cr_expect(strlen(xa) > 100, "%s is nearly empty", pa);
        cr_expect_str_eq(xa, xb, "samples differ: %s vs %s", pa, pb);
        free(xa), free(xb);
    }
    free(ta), free(tb), free(sa), free(sb);
}

/* ---- ranges and the hash ------------------------------------------------------------------------ */

/* every boundary is the prefix sum closest to s/N of the total (ties: lower), the ranges tile [0, n) */
Test(lmeval_shard_unit, ranges_balance_tokens) {
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    for (int trial = 0; trial < 300; trial++) {
        int n = (int)gsl_rng_uniform_int(r, 12), N = 1 + (int)gsl_rng_uniform_int(r, 6);
        long tok[12], cum[13] = {0};
        for (int d = 0; d < n; d++) tok[d] = 1 + (long)gsl_rng_uniform_int(r, trial % 2 ? 5 : 300), cum[d + 1] = cum[d] + tok[d];
        int prev_hi = 0;
        for (int i = 0; i < N; i++) {
            int lo, hi;
            lmeval_shard_range(tok, n, i, N, &lo, &hi);
            cr_assert_eq(lo, prev_hi, "trial %d shard %d/%d: starts at %d, previous ended at %d", trial, i, N, lo, prev_hi);
            cr_assert_leq(lo, hi);
            prev_hi = hi;
            if (i + 1 < N) { /* brute force: the closest prefix sum to (i+1)/N of the total */
                int best = 0;
                for (int k = 1; k <= n; k++)
                    if (llabs(cum[k] * N - cum[n] * (i + 1)) < llabs(cum[best] * N - cum[n] * (i + 1))) best = k;
                cr_expect_eq(hi, best, "trial %d shard %d/%d: boundary %d, closest is %d", trial, i, N, hi, best);
            }
        }
        cr_assert_eq(prev_hi, n, "trial %d: the ranges end at %d of %d", trial, prev_hi, n);
    }
    gsl_rng_free(r);
    long even[6] = {10, 10, 10, 10, 10, 10}, heavy[4] = {100, 1, 1, 1};
    int lo, hi;
    lmeval_shard_range(even, 6, 1, 3, &lo, &hi);
    cr_expect(lo == 2 && hi == 4, "[%d, %d)", lo, hi);
    lmeval_shard_range(heavy, 4, 1, 2, &lo, &hi);
    cr_expect(lo == 1 && hi == 4, "[%d, %d)", lo, hi);
}

/* the streaming hash does not depend on how the bytes are cut; one changed bit changes it */
Test(lmeval_shard_unit, hash_is_streaming_and_sensitive) {
    unsigned char b[1000];
    for (int k = 0; k < 1000; k++) b[k] = (unsigned char)(k * 131 + 7);
    LmHash h;
    lmhash_init(&h);
    lmhash_update(&h, b, sizeof b);
    const uint64_t whole = lmhash_final(&h);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    for (int trial = 0; trial < 50; trial++) {
        lmhash_init(&h);
        for (size_t at = 0; at < sizeof b;) {
            size_t n = 1 + gsl_rng_uniform_int(r, 70);
            if (n > sizeof b - at) n = sizeof b - at;
            lmhash_update(&h, b + at, n);
            at += n;
        }
        cr_expect_eq(lmhash_final(&h), whole, "trial %d", trial);
    }
    gsl_rng_free(r);
    for (int len = 0; len < 70; len++) { /* prefixes differ from each other (the length counts) */
        lmhash_init(&h), lmhash_update(&h, b, len);
        uint64_t a = lmhash_final(&h);
        lmhash_init(&h), lmhash_update(&h, b, len + 1);
        cr_expect_neq(a, lmhash_final(&h), "prefixes %d and %d", len, len + 1);
    }
    b[517] ^= 4;
    lmhash_init(&h), lmhash_update(&h, b, sizeof b);
    cr_expect_neq(lmhash_final(&h), whole);
}

/* ---- shards + merge == unsharded ---------------------------------------------------------------- */

Test(lmeval_shard, shards_merged_equal_unsharded) {
    if (!have_vocab) cr_skip_test("tokenizer vocabulary not in data/ or ../shared/data/");
    char un[4096], sp[3][4096], mg[4096];
    run_lib(model, TASKS, 0, LIMIT, 0, 0, "un", un, sizeof un);
    for (int i = 0; i < 3; i++) run_shard("sh", i, 3, sp[i], sizeof sp[i]);
    /* the ranges tile each task and every shard scores some lambada documents (the split is real) */
    int lam_end = 0;
    for (int i = 0; i < 3; i++) {
        char *t = slurp(sp[i]);
        cJSON *j = cJSON_Parse(t);
        cr_assert(j, "%s is not JSON", sp[i]);
        cJSON *lam = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "task_data"), 0);
        cJSON *rg = cJSON_GetObjectItem(lam, "range");
        int lo = cJSON_GetArrayItem(rg, 0)->valueint, hi = cJSON_GetArrayItem(rg, 1)->valueint;
        cr_expect_eq(lo, lam_end);
        lam_end = hi;
        cr_expect_gt(hi, lo, "shard %d has no lambada document", i);
        cr_expect_eq(cJSON_GetObjectItem(lam, "ndocs")->valueint, LIMIT);
        cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(lam, "ll")), hi - lo);
        cJSON_Delete(j), free(t);
    }
    cr_expect_eq(lam_end, LIMIT);
    char dir[400];
    snprintf(dir, sizeof dir, "%s/sh", tmp); /* a directory: the shards are found in its subdirectory */
    const char *in[] = {dir};
    snprintf(mg, sizeof mg, "%s/mg", tmp);
    Err e = {{0}};
    char out[4096];
    cr_assert_eq(lmeval_merge(in, 1, mg, 1, out, sizeof out, &e), 0, "%s", e.msg);
    expect_same_outputs(un, out);
    /* the same through the CLI, naming the three files in another order */
    char cmd[20000], log[400];
    snprintf(log, sizeof log, "%s/merge.log", tmp);
    snprintf(cmd, sizeof cmd, "%s lmeval-merge '%s' '%s' '%s' --out '%s/mg2' > '%s' 2>&1", rwkvlab_bin(), sp[2], sp[0],
             sp[1], tmp, log);
    cr_assert_eq(sh(cmd), 0, "%s", slurp(log));
    char *l = slurp(log), *w = strstr(l, "wrote ");
    cr_assert(w, "%s", l);
    *strchr(w, '\n') = 0;
    expect_same_outputs(un, w + 6);
    free(l);
}

/* ---- --devices cpu,cpu == unsharded --------------------------------------------------------------- */

static int cli(const char *args, const char *logname, char **text) {
    char cmd[8000], log[400];
    snprintf(log, sizeof log, "%s/%s", tmp, logname);
    snprintf(cmd, sizeof cmd, "%s %s > '%s' 2>&1", rwkvlab_bin(), args, log);
    int rc = sh(cmd);
    *text = slurp(log);
    cr_assert(*text);
    return rc;
}

/* "wrote PATH" of a CLI log */
static void wrote(const char *text, char *path, size_t cap) {
    const char *w = strstr(text, "wrote ");
    cr_assert(w, "no 'wrote' in:\n%s", text);
    snprintf(path, cap, "%.*s", (int)strcspn(w + 6, "\n"), w + 6);
}

Test(lmeval_shard, devices_cpu_cpu_equal_unsharded) {
    if (!have_vocab) cr_skip_test("tokenizer vocabulary not in data/ or ../shared/data/");
    char args[4000], *t, un[4096], dv[4096];
    snprintf(args, sizeof args, "lmeval --model '%s' --data '%s' --tasks " TASKS " --limit %d --bootstrap 1000 --samples "
             "--out '%s/un'", model, data, LIMIT, tmp);
    cr_assert_eq(cli(args, "un.log", &t), 0, "%s", t);
    wrote(t, un, sizeof un), free(t);
    snprintf(args, sizeof args, "lmeval --model '%s' --data '%s' --tasks " TASKS " --limit %d --bootstrap 1000 --samples "
             "--devices cpu,cpu --out '%s/dv'", model, data, LIMIT, tmp);
    cr_assert_eq(cli(args, "dv.log", &t), 0, "%s", t);
    cr_expect(strstr(t, "2 workers (cpu, cpu)"), "%s", t);
    wrote(t, dv, sizeof dv), free(t);
    expect_same_outputs(un, dv);
    /* OUT holds the results and the 4 samples files, nothing else (the workers' directory is gone) */
    char chk[1200];
    snprintf(chk, sizeof chk, "test \"$(ls -A '%.*s' | wc -l)\" = 5", (int)(strrchr(dv, '/') - dv), dv);
    cr_expect_eq(sh(chk), 0, "OUT holds more than the results and samples files");
}

/* a failing worker fails the run: its error, nothing written, no directory left */
Test(lmeval_shard, devices_worker_failure) {
    if (!have_vocab) cr_skip_test("tokenizer vocabulary not in data/ or ../shared/data/");
    char args[4000], *t;
    snprintf(args, sizeof args, "lmeval --model '%s' --data '%s' --tasks piqa,bogus --devices cpu,cpu --out '%s/f1'",
             model, data, tmp);
    cr_expect_neq(cli(args, "f1.log", &t), 0);
    cr_expect(strstr(t, "worker") && strstr(t, "unknown task 'bogus'"), "%s", t);
    free(t);
    /* killed while writing its shard file (the first fsync): the run fails, nothing is published */
    snprintf(args, sizeof args, "lmeval --model '%s' --data '%s' --tasks " TASKS " --devices cpu,cpu --samples "
             "--out '%s/f2'", model, data, tmp);
    char cmd[8000], log[400];
    snprintf(log, sizeof log, "%s/f2.log", tmp);
    snprintf(cmd, sizeof cmd, "env RWKVLAB_FAULT=fsync:1:kill %s %s > '%s' 2>&1", rwkvlab_bin(), args, log);
    cr_expect_neq(sh(cmd), 0);
    t = slurp(log);
    cr_expect(strstr(t, "killed by signal 9") && strstr(t, "nothing was written"), "%s", t);
    free(t);
    for (int k = 1; k <= 2; k++) {
        char chk[600];
        snprintf(chk, sizeof chk, "test ! -e '%s/f%d'", tmp, k);
        cr_expect_eq(sh(chk), 0, "f%d: an output directory was left behind", k);
    }
    /* and the options --devices does not take */
    const char *bad[][2] = {{"--devices cpu --device cpu", "drop --device"}, {"--devices cpu --shard 0/1", "give one"},
                            {"--devices 0,x", "neither cpu nor a GPU index"}, {"--devices 1,1", "listed twice"},
                            {"--devices ,cpu", "entry 1"}};
    for (int k = 0; k < 5; k++) {
        snprintf(args, sizeof args, "lmeval --model '%s' --data '%s' --tasks piqa %s --out '%s/f3'", model, data, bad[k][0], tmp);
        cr_expect_neq(cli(args, "f3.log", &t), 0, "%s accepted", bad[k][0]);
        cr_expect(strstr(t, bad[k][1]), "%s: %s", bad[k][0], t);
        free(t);
    }
    char chk[600];
    snprintf(chk, sizeof chk, "test ! -e '%s/f3'", tmp);
    cr_expect_eq(sh(chk), 0, "f3 was created");
}

/* ---- the merge refuses what is not one run -------------------------------------------------------- */

static void expect_refused(const char *const *in, int n, const char *want1, const char *want2, const char *want3) {
    char mg[400], out[4096];
    snprintf(mg, sizeof mg, "%s/refused", tmp);
    Err e = {{0}};
    cr_expect_neq(lmeval_merge(in, n, mg, 1, out, sizeof out, &e), 0, "merged (expected: %s)", want1);
    cr_expect(strstr(e.msg, want1), "message lacks \"%s\": %s", want1, e.msg);
    if (want2) cr_expect(strstr(e.msg, want2), "message lacks \"%s\": %s", want2, e.msg);
    if (want3) cr_expect(strstr(e.msg, want3), "message lacks \"%s\": %s", want3, e.msg);
    char chk[600];
    snprintf(chk, sizeof chk, "test ! -e '%s'", mg);
    cr_expect_eq(sh(chk), 0, "a refused merge created %s", mg);
}

Test(lmeval_shard, merge_refuses_other_runs_repeats_and_gaps) {
    if (!have_vocab) cr_skip_test("tokenizer vocabulary not in data/ or ../shared/data/");
    char a[3][4096], x[4096];
    for (int i = 0; i < 3; i++) run_shard("a", i, 3, a[i], sizeof a[i]);
    const char *ok[] = {a[0], a[1], a[2]};
    char mg[400], out[4096];
    snprintf(mg, sizeof mg, "%s/ok", tmp);
    Err e = {{0}};
    cr_assert_eq(lmeval_merge(ok, 3, mg, 1, out, sizeof out, &e), 0, "%s", e.msg);
    /* another model */
    char m2[400];
    snprintf(m2, sizeof m2, "%s/other.safetensors", tmp);
    make_model(m2, 99);
    run_lib(m2, TASKS, 0, LIMIT, 1, 3, "b", x, sizeof x);
    const char *other[] = {a[0], x, a[2]};
    expect_refused(other, 3, "the model file", a[0], x);
    /* a missing shard */
    const char *gap[] = {a[0], a[2]};
    expect_refused(gap, 2, "missing (index 1", "--shard I/3", NULL);
    /* a duplicated shard (the same index scored into another directory) */
    char d[4096];
    run_shard("a2", 1, 3, d, sizeof d);
    char adir[400];
    snprintf(adir, sizeof adir, "%s/a", tmp);
    const char *dup[] = {adir, d};
    expect_refused(dup, 2, "shard 1 of 3 appears twice", a[1], d);
    /* the same file reached twice counts once */
    const char *same[] = {adir, a[1]};
    e.msg[0] = 0;
    cr_expect_eq(lmeval_merge(same, 2, mg, 1, out, sizeof out, &e), 0, "%s", e.msg);
    /* other tasks, another prefix, another limit, another N */
    run_lib(model, "lambada_openai,piqa,arc_easy", 0, LIMIT, 2, 3, "t", x, sizeof x);
    const char *tasks[] = {a[0], a[1], x};
    expect_refused(tasks, 3, "the tasks", TASKS, "lambada_openai,piqa,arc_easy");
    run_lib(model, TASKS, -1, LIMIT, 2, 3, "p", x, sizeof x);
    const char *pre[] = {a[0], a[1], x};
    expect_refused(pre, 3, "the prefix token", x, NULL);
    run_lib(model, TASKS, 0, 5, 2, 3, "l", x, sizeof x);
    const char *lim[] = {a[0], a[1], x};
    expect_refused(lim, 3, "the document limit", "--limit 5", NULL);
    run_lib(model, TASKS, 0, LIMIT, 1, 2, "n", x, sizeof x);
    const char *cnt[] = {a[0], x, a[2]};
    expect_refused(cnt, 3, "the shard count", "N = 2", NULL);
    /* a gap inside: shard 2's lambada range made to start one document later */
    char *t = slurp(a[2]);
    cJSON *j = cJSON_Parse(t);
    free(t);
    cJSON *lam = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "task_data"), 0);
    cJSON *rg = cJSON_GetObjectItem(lam, "range");
    cJSON_SetNumberValue(cJSON_GetArrayItem(rg, 0), cJSON_GetArrayItem(rg, 0)->valuedouble + 1);
    cJSON_DeleteItemFromArray(cJSON_GetObjectItem(lam, "acc"), 0);
    cJSON_DeleteItemFromArray(cJSON_GetObjectItem(lam, "ll"), 0);
    char gp[400];
    snprintf(gp, sizeof gp, "%s/gap", tmp);
    mkdir(gp, 0755);
    snprintf(gp, sizeof gp, "%s/gap/lmeval_shard_2of3.json", tmp);
    t = cJSON_Print(j);
    put(gp, t);
    free(t), cJSON_Delete(j);
    const char *hole[] = {a[0], a[1], gp};
    expect_refused(hole, 3, "not contiguous (a gap)", a[1], gp);
    /* not a shard file at all */
    const char *junk[] = {a[0], a[1], model};
    expect_refused(junk, 3, model, "not JSON", NULL);
    /* the CLI: nonzero exit and the message */
    char args[20000];
    snprintf(args, sizeof args, "lmeval-merge '%s' '%s' --out '%s/cli'", a[0], a[2], tmp);
    cr_expect_neq(cli(args, "m.log", &t), 0);
    cr_expect(strstr(t, "rwkvlab lmeval-merge: 1 of 3 shards missing"), "%s", t);
    free(t);
}

/* ---- weight type, batch size and device label ------------------------------------------------------------ */

/* a copy of shard file src in tmp/<dir>/ (same name) with field key set to the string sval, or to nval */
static void edit_shard(const char *src, const char *dir, const char *key, const char *sval, double nval, char *dst,
                       size_t cap) {
    char *t = slurp(src);
    cJSON *j = cJSON_Parse(t);
    free(t);
    cr_assert(j && cJSON_GetObjectItem(j, key), "%s has no field %s", src, key);
    cJSON_ReplaceItemInObject(j, key, sval ? cJSON_CreateString(sval) : cJSON_CreateNumber(nval));
    char d[400];
    snprintf(d, sizeof d, "%s/%s", tmp, dir);
    mkdir(d, 0755);
    snprintf(dst, cap, "%s/%s", d, strrchr(src, '/') + 1);
    t = cJSON_Print(j);
    put(dst, t);
    free(t), cJSON_Delete(j);
}

static char *results_config(const char *results_path, const char *key) {
    char *t = slurp(results_path);
    cJSON *j = cJSON_Parse(t);
    free(t);
    cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "config"), key);
    char *out = v ? cJSON_PrintUnformatted(v) : strdup("(missing)");
    cJSON_Delete(j);
    return out;
}

Test(lmeval_shard, merge_checks_dtype_batch_and_names_devices) {
    if (!have_vocab) cr_skip_test("tokenizer vocabulary not in data/ or ../shared/data/");
    char a[3][4096];
    for (int i = 0; i < 3; i++) run_shard("a", i, 3, a[i], sizeof a[i]);
    /* what a CPU shard records */
    char *t = slurp(a[0]);
    cJSON *j = cJSON_Parse(t);
    free(t);
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(j, "dtype")), "fp32");
    cr_expect_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "batch")), 1);
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(j, "device")), "cpu");
    cr_expect_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "format_version")), 2);
    cJSON_Delete(j);
    /* another weight type, another batch size: refused, naming both values */
    char x[4096];
    edit_shard(a[2], "dt", "dtype", "bf16", 0, x, sizeof x);
    const char *dt[] = {a[0], a[1], x};
    expect_refused(dt, 3, "the weight type", "fp32", "bf16");
    edit_shard(a[1], "bs", "batch", NULL, 64, x, sizeof x);
    const char *bs[] = {a[0], x, a[2]};
    expect_refused(bs, 3, "the batch size", "--batch 1", "--batch 64");
    /* shards from GPUs 0 and 1 (as --devices 0,1 records them): merged device "cuda:0,1", and the shards'
     * weight type and batch size in the results */
    char g[3][4096];
    const char *dev[3] = {"cuda:0", "cuda:1", "cuda:1"};
    for (int i = 0; i < 3; i++) {
        char tmp1[4096], tmp2[4096], d1[16], d2[16], d3[16];
        snprintf(d1, sizeof d1, "g%da", i), snprintf(d2, sizeof d2, "g%db", i), snprintf(d3, sizeof d3, "g%d", i);
        edit_shard(a[i], d1, "device", dev[i], 0, tmp1, sizeof tmp1);
        edit_shard(tmp1, d2, "dtype", "bf16", 0, tmp2, sizeof tmp2);
        edit_shard(tmp2, d3, "batch", NULL, 64, g[i], sizeof g[i]);
    }
    const char *gs[] = {g[0], g[1], g[2]};
    char mg[400], out[4096];
    snprintf(mg, sizeof mg, "%s/gpu_merged", tmp);
    Err e = {{0}};
    cr_assert_eq(lmeval_merge(gs, 3, mg, 1, out, sizeof out, &e), 0, "%s", e.msg);
    char *v = results_config(out, "device");
    cr_expect_str_eq(v, "\"cuda:0,1\"");
    free(v);
    v = results_config(out, "dtype");
    cr_expect_str_eq(v, "\"bfloat16\"");
    free(v);
    v = results_config(out, "batch_size");
    cr_expect_str_eq(v, "64");
    free(v);
    /* CPU shards: "cpu" */
    const char *ok[] = {a[0], a[1], a[2]};
    snprintf(mg, sizeof mg, "%s/cpu_merged", tmp);
    cr_assert_eq(lmeval_merge(ok, 3, mg, 1, out, sizeof out, &e), 0, "%s", e.msg);
    v = results_config(out, "device");
    cr_expect_str_eq(v, "\"cpu\"");
    free(v);
    /* the label rule itself */
    char lab[64];
    const char *mixed[] = {"cpu", "cuda:0", "cpu"}, *cu[] = {"cuda:3", "cuda:1", "cuda:3"};
    lmeval_merge_devices(mixed, 3, lab, sizeof lab);
    cr_expect_str_eq(lab, "cpu,cuda:0");
    lmeval_merge_devices(cu, 3, lab, sizeof lab);
    cr_expect_str_eq(lab, "cuda:3,1");
}

/* ---- --shard values ---------------------------------------------------------------------------------- */

Test(lmeval_shard, bad_shard_values) {
    if (!have_vocab) cr_skip_test("tokenizer vocabulary not in data/ or ../shared/data/");
    const char *bad[][2] = {{"3/3", "index I = 3 must be in 0..2"}, {"0/0", "count N = 0"}, {"a/b", "expected I/N"},
                            {"-1/3", "expected I/N"},               {"1/3x", "expected I/N"}, {"1", "expected I/N"},
                            {"0/5000", "1..4096"},                  {"", "expected I/N"}};
    for (int k = 0; k < 8; k++) {
        char args[4000], *t;
        snprintf(args, sizeof args, "lmeval --model '%s' --data '%s' --tasks piqa --shard '%s' --out '%s/bad'", model, data,
                 bad[k][0], tmp);
        cr_expect_neq(cli(args, "bad.log", &t), 0, "--shard '%s' accepted", bad[k][0]);
        cr_expect(strstr(t, bad[k][1]), "--shard '%s': %s", bad[k][0], t);
        free(t);
    }
    char chk[600];
    snprintf(chk, sizeof chk, "test ! -e '%s/bad'", tmp);
    cr_expect_eq(sh(chk), 0, "a bad --shard created its output directory");
    /* the library checks them too */
    LmevalOpts o = {.model_path = model, .tasks = "piqa", .data_dir = data, .out_dir = tmp, .device = "cpu", .shard_i = 3,
                    .shard_n = 3, .quiet = 1};
    Err e = {{0}};
    cr_expect_neq(lmeval_run(&o, &e), 0);
    cr_expect(strstr(e.msg, "shard 3/3"), "%s", e.msg);
}

/* ---- atomic shard files ------------------------------------------------------------------------------- */

Test(lmeval_shard, shard_file_written_atomically) {
    if (!have_vocab) cr_skip_test("tokenizer vocabulary not in data/ or ../shared/data/");
    char p[4096], old[4200];
    run_shard("at", 0, 3, p, sizeof p);
    char *first = slurp(p);
    snprintf(old, sizeof old, "%s.old", p);
    cr_assert_eq(link(p, old), 0);
    struct stat s0, s1;
    cr_assert_eq(stat(p, &s0), 0);
    /* a re-run replaces the file by a rename (a new inode), never rewriting it in place */
    run_shard("at", 0, 3, p, sizeof p);
    cr_assert_eq(stat(p, &s1), 0);
    cr_expect_neq(s0.st_ino, s1.st_ino, "the shard file was rewritten in place");
    char *kept = slurp(old);
    cr_expect_str_eq(kept, first, "the previous file's contents changed");
    free(kept);
    unlink(old);
    char *second = slurp(p);
    /* killed in the middle of writing (at the fsync before the rename): the previous file stays whole */
    char args[4000], cmd[8000], log[400];
    snprintf(args, sizeof args, "lmeval --model '%s' --data '%s' --tasks " TASKS " --limit %d --bootstrap 1000 --samples "
             "--quiet --shard 0/3 --out '%s/at'", model, data, LIMIT, tmp);
    snprintf(log, sizeof log, "%s/kill.log", tmp);
    snprintf(cmd, sizeof cmd, "env RWKVLAB_FAULT=fsync:1:kill %s %s > '%s' 2>&1", rwkvlab_bin(), args, log);
    cr_expect_neq(sh(cmd), 0, "not killed");
    char *after = slurp(p);
    cr_expect_str_eq(after, second, "a killed writer changed the shard file");
    cJSON *j = cJSON_Parse(after);
    cr_expect(j, "the shard file is not whole JSON");
    cJSON_Delete(j);
    /* what the killed writer left (its .tmp.<pid>) is not taken for a shard: the merge finds shard 0 only */
    char dir[4200], b1[4096], b2[4096];
    snprintf(dir, sizeof dir, "%.*s", (int)(strrchr(p, '/') - p), p);
    char chk[4400];
    snprintf(chk, sizeof chk, "ls '%s' | grep -q '^lmeval_shard_0of3.json.tmp.'", dir);
    cr_expect_eq(sh(chk), 0, "the fault did not hit the shard file's write");
    run_shard("at_rest", 1, 3, b1, sizeof b1);
    run_shard("at_rest", 2, 3, b2, sizeof b2);
    const char *in[] = {dir, b1, b2};
    char mg[400], out[4096];
    snprintf(mg, sizeof mg, "%s/at_mg", tmp);
    Err e = {{0}};
    cr_expect_eq(lmeval_merge(in, 3, mg, 1, out, sizeof out, &e), 0, "%s", e.msg);
    free(first), free(second), free(after);
}
