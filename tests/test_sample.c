/* test_sample.c -- `rwkvlab sample`: every stdout line is a JSON object whose inputs, targets and mask
 * are exactly the generator's (task_sample for --len, task_testset for --test, the training draw of
 * protocol.h by default), with a rendering built from the task's token_text (inputs) and target_text
 * (targets: classes rendered as classes, not as input tokens); bad options are errors
 * naming the option. The oracle calls the library directly with the documented generator and seed. */
#include <criterion/criterion.h>
#include <cJSON.h>
#include <gsl/gsl_rng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "dataset.h"
#include "protocol.h"
#include "task.h"
#include "testutil.h"

static char tmpdir[256], cfgpath[600];
static void mk_tmp(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rwkvlab_sample_XXXXXX");
    cr_assert(mkdtemp(tmpdir));
    snprintf(cfgpath, sizeof cfgpath, "%s/s.ini", tmpdir);
    FILE *f = fopen(cfgpath, "w");
    fputs("[experiment]\nname = s\nseeds = 3\n[task]\nname = s3\nvariant = full\ntrain_len = 2-9\n"
          "test_lens = 7, 12\n", f);
    fclose(f);
}
static void rm_tmp(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    (void)!system(cmd);
}
TestSuite(sample, .init = mk_tmp, .fini = rm_tmp, .timeout = 120);

/* Runs `rwkvlab sample CONFIG ARGS` (CONFIG = the suite's s.ini); returns the exit status, stdout lines
 * parsed (NULL where not JSON) and stderr */
static int sample(const char *args, cJSON **rows, int cap, int *nrows, char *err_text, size_t err_cap) {
    char cmd[2048], out[600], errp[600];
    snprintf(out, sizeof out, "%s/out.jsonl", tmpdir);
    snprintf(errp, sizeof errp, "%s/err.txt", tmpdir);
    snprintf(cmd, sizeof cmd, "%s sample %s %s > %s 2> %s", rwkvlab_bin(), cfgpath, args, out, errp);
    int rc = sh(cmd);
    FILE *f = fopen(out, "r");
    cr_assert(f);
    static char line[1 << 16];
    *nrows = 0;
    while (fgets(line, sizeof line, f)) {
        cr_assert(*nrows < cap, "more than %d lines", cap);
        rows[(*nrows)++] = cJSON_Parse(line);
    }
    fclose(f);
    f = fopen(errp, "r");
    size_t k = fread(err_text, 1, err_cap - 1, f);
    err_text[k] = 0;
    fclose(f);
    return rc;
}

static void int_array_is(const cJSON *a, const int *want, int n, const char *what, int row) {
    cr_assert(cJSON_IsArray(a), "row %d: %s is not an array", row, what);
    cr_assert_eq(cJSON_GetArraySize(a), n, "row %d: %s has %d entries, want %d", row, what, cJSON_GetArraySize(a), n);
    int i = 0;
    for (const cJSON *e = a->child; e; e = e->next, i++)
        cr_assert(cJSON_IsNumber(e) && e->valueint == want[i], "row %d: %s[%d] = %d, want %d", row, what, i,
                  e->valueint, want[i]);
}

/* one printed row against (inputs, targets, mask) of length T, and its rendering */
static void row_is(const Task *t, const cJSON *j, int index, const int *in, const int *tg, const unsigned char *mk,
                   int T) {
    cr_assert(j, "row %d is not JSON", index);
    cr_assert_eq(cJSON_GetObjectItem(j, "index")->valueint, index);
    cr_assert_eq(cJSON_GetObjectItem(j, "length")->valueint, T, "row %d length", index);
    int_array_is(cJSON_GetObjectItem(j, "inputs"), in, T, "inputs", index);
    int_array_is(cJSON_GetObjectItem(j, "targets"), tg, T, "targets", index);
    int m[64] = {0};
    cr_assert(T <= 64);
    for (int i = 0; i < T; i++) m[i] = mk[i];
    int_array_is(cJSON_GetObjectItem(j, "mask"), m, T, "mask", index);
    /* the rendering: position by position "input->target" (scored) joined by two spaces */
    char want[8192] = "", a[64], b[64];
    for (int i = 0; i < T; i++) {
        task_token_text(t, in[i], a, sizeof a);
        task_target_text(t, tg[i], b, sizeof b);
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s%s%s", i ? "  " : "", a, mk[i] ? "->" : "",
                 mk[i] ? b : "");
    }
    const cJSON *text = cJSON_GetObjectItem(j, "text");
    cr_assert(cJSON_IsString(text), "row %d has no text", index);
    cr_assert_str_eq(text->valuestring, want, "row %d text", index);
}

static Task *s3_full(void) {
    Err e = {{0}};
    Task *t = task_create_named("s3", "full", NULL, NULL, 0, &e);
    cr_assert(t, "%s", e.msg);
    return t;
}

static void free_rows(cJSON **rows, int n) {
    for (int i = 0; i < n; i++) cJSON_Delete(rows[i]);
}

/* --len T --n N --seed S: task_sample on an N x T batch from gsl mt19937 seeded with S */
Test(sample, fixed_length_equals_task_sample) {
    cJSON *rows[16];
    int n;
    char err[4096];
    cr_assert_eq(sample("--len 11 --n 5 --seed 77", rows, 16, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 5, "%d lines", n);
    Task *t = s3_full();
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 77);
    Batch b;
    batch_alloc(&b, 5, 11);
    task_sample(t, rng, &b);
    for (int i = 0; i < 5; i++) row_is(t, rows[i], i, b.inputs + i * 11, b.targets + i * 11, b.mask + i * 11, 11);
    cr_expect(strstr(err, "S3") && strstr(err, "fresh sequences"), "stderr: %s", err);
    free_rows(rows, n);
    batch_free(&b);
    gsl_rng_free(rng);
    task_free(t);
}

/* --test: the fixed test set task_testset(seed, T, N), T = --len or the first test length */
Test(sample, test_set_equals_task_testset) {
    cJSON *rows[16];
    int n;
    char err[4096];
    Task *t = s3_full();
    cr_assert_eq(sample("--test --n 6", rows, 16, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 6);
    Batch b;
    task_testset(t, 3, 7, 6, &b); /* the config's seed 3, first test length 7 */
    for (int i = 0; i < 6; i++) row_is(t, rows[i], i, b.inputs + i * 7, b.targets + i * 7, b.mask + i * 7, 7);
    batch_free(&b);
    free_rows(rows, n);
    cr_assert_eq(sample("--test --len 12 --n 3 --seed 5", rows, 16, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 3);
    task_testset(t, 5, 12, 3, &b);
    for (int i = 0; i < 3; i++) row_is(t, rows[i], i, b.inputs + i * 12, b.targets + i * 12, b.mask + i * 12, 12);
    batch_free(&b);
    free_rows(rows, n);
    task_free(t);
}

/* default: one training batch as protocol_batch draws it (train_len 2-9): batch mode gives every row the
 * same drawn length; mixed mode one length per row, printed without its padding */
static void training_batch_case(const char *mode) {
    cJSON *rows[16];
    int n;
    char err[4096], args[200];
    snprintf(args, sizeof args, "--n 8 --seed 11 --set task.train_len_mode=%s", mode);
    cr_assert_eq(sample(args, rows, 16, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 8);
    RunConfig c;
    config_defaults(&c);
    Err e = {{0}};
    cr_assert_eq(config_load(&c, cfgpath, &e), 0, "%s", e.msg);
    char set[64];
    snprintf(set, sizeof set, "task.train_len_mode=%s", mode);
    cr_assert_eq(config_set(&c, set, &e), 0, "%s", e.msg);
    Task *t = s3_full();
    Protocol p;
    cr_assert_eq(protocol_init(&p, &c, t, 3, &e), 0, "%s", e.msg);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 11);
    Batch b;
    batch_alloc(&b, 8, 9);
    int len[8], distinct = 0;
    protocol_batch(&p, rng, &b, len);
    for (int i = 0; i < 8; i++) {
        cr_assert(len[i] >= 2 && len[i] <= 9);
        distinct |= len[i] != len[0];
        size_t o = (size_t)i * b.T;
        row_is(t, rows[i], i, b.inputs + o, b.targets + o, b.mask + o, len[i]);
    }
    if (!strcmp(mode, "batch")) cr_expect(!distinct, "batch mode printed rows of different lengths");
    else cr_expect(distinct, "mixed mode printed 8 rows of one length (possible, 8^-7; check the seed)");
    free_rows(rows, n);
    batch_free(&b);
    gsl_rng_free(rng);
    protocol_free(&p);
    task_free(t);
}
Test(sample, default_is_one_training_batch) {
    training_batch_case("batch");
    training_batch_case("mixed");
}

/* merrill: the default rows come from the training pool, --test rows from the held-out part */
Test(sample, merrill_rows_come_from_their_parts) {
    cJSON *rows[64];
    int n;
    char err[4096];
    const char *set = "--set task.protocol=merrill --set task.train_len=3 --set task.test_lens=3";
    char args[300];
    snprintf(args, sizeof args, "%s --test --n 10", set);
    cr_assert_eq(sample(args, rows, 64, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 10);
    Task *t = s3_full();
    FiniteSet d;
    Err e = {{0}};
    cr_assert_eq(dataset_merrill(t, 3, 3, 0.8, 1000000, &d, &e), 0, "%s", e.msg);
    for (int i = 0; i < 10; i++)
        row_is(t, rows[i], i, d.test.inputs + i * 3, d.test.targets + i * 3, d.test.mask + i * 3, 3);
    free_rows(rows, n);
    snprintf(args, sizeof args, "%s --n 40", set);
    cr_assert_eq(sample(args, rows, 64, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 40);
    for (int i = 0; i < 40; i++) {
        const cJSON *in = cJSON_GetObjectItem(rows[i], "inputs");
        int L = cJSON_GetArraySize(in), v[3], found = 0;
        cr_assert(L == 2 || L == 3, "row %d has length %d", i, L);
        int k = 0;
        for (const cJSON *x = in->child; x; x = x->next) v[k++] = x->valueint;
        const Batch *part = L == 3 ? &d.train : &d.pairs;
        for (int r = 0; r < part->B && !found; r++) found = !memcmp(part->inputs + (size_t)r * L, v, L * sizeof(int));
        cr_assert(found, "row %d is in neither the training part nor the pairs", i);
        for (int r = 0; L == 3 && r < d.test.B; r++)
            cr_assert(memcmp(d.test.inputs + (size_t)r * 3, v, 3 * sizeof(int)), "row %d is a held-out sequence", i);
    }
    free_rows(rows, n);
    dataset_free(&d);
    task_free(t);
}

/* targets render as what they mean: a class as its class (parity even/odd, cycle_nav @k, mod_arith =k, a
 * DFA accept/reject), recomputed here from the printed inputs; a group's target as its element (the input
 * rendering), so the hook is only where targets are not input tokens */
static int text_field(const cJSON *row, int pos, char *out, size_t n) { /* the pos-th "  "-separated field */
    const char *s = cJSON_GetObjectItem(row, "text")->valuestring;
    for (int i = 0; i < pos; i++) {
        s = strstr(s, "  ");
        if (!s) return -1;
        s += 2;
    }
    const char *e = strstr(s, "  ");
    size_t l = e ? (size_t)(e - s) : strlen(s);
    if (l >= n) return -1;
    memcpy(out, s, l), out[l] = 0;
    return 0;
}

Test(sample, targets_render_as_classes) {
    static const struct {
        const char *sets;
    } cases[] = {{"--set task.name=parity --set task.variant=prefix"},
                 {"--set task.name=cycle_nav --set task.variant=prefix"},
                 {"--set task.name=mod_arith --set task.variant=final"},
                 {"--set task.name=dfa --set task.dfa_file=tests/data/dfa_ab.dfa --set task.variant=prefix"}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char args[512];
        snprintf(args, sizeof args, "%s --len 9 --n 6", cases[c].sets);
        cJSON *rows[8];
        int n, seen = 0;
        char err[4096];
        cr_assert_eq(sample(args, rows, 8, &n, err, sizeof err), 0, "sample %s: %s", args, err);
        cr_assert_eq(n, 6);
        for (int r = 0; r < n; r++) {
            const cJSON *in = cJSON_GetObjectItem(rows[r], "inputs"), *tg = cJSON_GetObjectItem(rows[r], "targets"),
                        *mk = cJSON_GetObjectItem(rows[r], "mask");
            int sum = 0; /* parity: the bits so far; cycle_nav: the position so far */
            for (int i = 0; i < 9; i++) {
                int x = cJSON_GetArrayItem(in, i)->valueint, y = cJSON_GetArrayItem(tg, i)->valueint;
                if (c == 0) sum = (sum + x) % 2;
                if (c == 1) sum = ((sum + x - 1) % 5 + 5) % 5;
                if (!cJSON_GetArrayItem(mk, i)->valueint) continue;
                char f[128], want[64];
                cr_assert_eq(text_field(rows[r], i, f, sizeof f), 0, "row %d position %d", r, i);
                const char *arrow = strstr(f, "->");
                cr_assert(arrow, "scored position %d has no '->': '%s'", i, f);
                if (c == 0) snprintf(want, sizeof want, "%s", sum ? "odd" : "even");
                if (c == 1) snprintf(want, sizeof want, "@%d", sum);
                if (c == 2) snprintf(want, sizeof want, "=%d", y);
                if (c == 3) snprintf(want, sizeof want, "%s", y ? "accept" : "reject");
                cr_assert_str_eq(arrow + 2, want, "%s: row %d position %d renders target %d as '%s'", cases[c].sets, r, i,
                                 y, arrow + 2);
                seen++;
            }
        }
        cr_assert(seen >= 6, "%s: only %d scored positions", cases[c].sets, seen);
        free_rows(rows, n);
    }
}

/* strict options: each bad invocation exits 1 with a message naming the option, and prints no rows */
Test(sample, bad_options_are_errors) {
    static const struct {
        const char *args, *frag;
    } bad[] = {
        {"--len 0", "--len 0"},           {"--len abc", "--len 'abc'"},     {"--n 0", "--n 0"},
        {"--n 1000000", "--n 1000000"},   {"--seed -1", "--seed -1"},       {"--lenn 5", "did you mean --len?"},
        {"--test=1", "--test takes no value"}, {"--set task.train_len=40-1", "decreasing"},
        {"--set task.name=nope", "nope"}, {"--len", "--len needs a value"},
        {"--n 100000 --len 1000", "lower --n or --len"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cJSON *rows[4];
        int n;
        char err[4096];
        int rc = sample(bad[i].args, rows, 4, &n, err, sizeof err);
        cr_expect_eq(rc, 1, "sample %s: exit %d", bad[i].args, rc);
        cr_expect(strstr(err, "rwkvlab sample:") && strstr(err, bad[i].frag), "sample %s: stderr lacks '%s': %s",
                  bad[i].args, bad[i].frag, err);
        cr_expect_eq(n, 0, "sample %s printed %d rows", bad[i].args, n);
        free_rows(rows, n);
    }
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s sample > /dev/null 2>&1", rwkvlab_bin());
    cr_expect_eq(sh(cmd), 1, "sample without CONFIG must fail");
    snprintf(cmd, sizeof cmd, "%s sample %s/none.ini > /dev/null 2>&1", rwkvlab_bin(), tmpdir);
    cr_expect_eq(sh(cmd), 1, "sample of a missing file must fail");
    snprintf(cmd, sizeof cmd, "%s sample --help | grep -q 'usage: rwkvlab sample CONFIG'", rwkvlab_bin());
    cr_expect_eq(sh(cmd), 0, "sample --help");
}
