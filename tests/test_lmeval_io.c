/* test_lmeval_io.c -- lm-eval 0.4-compatible output rules (core/eval/lmeval_out.c) without a model: float text
 * as Python's repr (so json.load reads floats), lm-eval's sanitize_model_name and date_id, the output
 * location for a directory or a .json OUT, collision-free publishing (two runs never overwrite each
 * other), and the checked growth of the samples buffer. Expected strings are Python's outputs
 * (repr(x), re.sub(r'["<>:/|\\?*\[\]]+', '__', name), datetime.isoformat().replace(':', '-')). */
#include <cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lmeval_out.h"

Test(lmeval_io, floats_as_python_repr) {
    const struct {
        double x;
        const char *py;
    } c[] = {{0.0, "0.0"},           {1.0, "1.0"},
             {-0.0, "-0.0"},         {0.5, "0.5"},
             {1.0 / 3, "0.3333333333333333"}, {2.0 / 3, "0.6666666666666666"},
             {1e-05, "1e-05"},       {0.0001, "0.0001"},
             {1e16, "1e+16"},        {1e15, "1000000000000000.0"},
             {123.456, "123.456"},   {1.5e-7, "1.5e-07"},
             {12.407, "12.407"},     {-2.5, "-2.5"},
             {5e-324, "5e-324"},     {1.7976931348623157e308, "1.7976931348623157e+308"},
             {100.0, "100.0"},       {0.1 + 0.2, "0.30000000000000004"}};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char t[64];
        lmeval_py_float(c[i].x, t, sizeof t);
        cr_expect_str_eq(t, c[i].py, "%.17g: got %s, Python writes %s", c[i].x, t, c[i].py);
    }
    char t[64];
    lmeval_py_float(NAN, t, sizeof t);
    cr_expect_str_eq(t, "nan");
    lmeval_py_float(-INFINITY, t, sizeof t);
    cr_expect_str_eq(t, "-inf");
    /* any finite double: reads back exactly and is a JSON float (has '.' or an exponent) */
    unsigned long long s = 88172645463325252ULL;
    for (int i = 0; i < 20000; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        double x;
        memcpy(&x, &s, sizeof x);
        if (!isfinite(x)) continue;
        if (i % 2) x = (double)(s % 1000) / 1000.0; /* also plain metric-like values */
        lmeval_py_float(x, t, sizeof t);
        cr_assert(strtod(t, NULL) == x, "%.17g written as %s does not read back", x, t);
        cr_assert(strpbrk(t, ".e"), "%.17g written as %s: not a float to Python's json", x, t);
    }
}

Test(lmeval_io, json_float_items) {
    cJSON *o = cJSON_CreateObject();
    lmeval_json_add_float(o, "acc,none", 0.0);
    lmeval_json_add_float(o, "one", 1.0);
    lmeval_json_add_float(o, "bad", NAN);
    char *txt = cJSON_PrintUnformatted(o);
    cr_expect_str_eq(txt, "{\"acc,none\":0.0,\"one\":1.0,\"bad\":null}");
    cJSON *back = cJSON_Parse(txt);
    cr_assert(back, "not valid JSON: %s", txt);
    cr_expect(cJSON_GetObjectItem(back, "acc,none")->valuedouble == 0.0);
    cJSON_Delete(back), cJSON_Delete(o), free(txt);
}

Test(lmeval_io, sanitize_model_name_as_lm_eval) {
    const char *c[][2] = {{"/a/b:c", "__a__b__c"},  {"a//b", "a__b"},          {"m.safetensors", "m.safetensors"},
                          {"x[1]", "x__1__"},       {"a\"<>|?*\\b", "a__b"},  {"rel/dir/m.pth", "rel__dir__m.pth"}};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char o[256];
        lmeval_sanitize_model_name(c[i][0], o, sizeof o);
        cr_expect_str_eq(o, c[i][1], "%s -> %s, lm-eval gives %s", c[i][0], o, c[i][1]);
    }
}

Test(lmeval_io, date_id_has_microseconds) {
    setenv("TZ", "UTC", 1);
    tzset();
    char d[64];
    lmeval_date_id(1700000000123456LL, d, sizeof d);
    cr_expect_str_eq(d, "2023-11-14T22-13-20.123456");
    lmeval_date_id(0, d, sizeof d);
    cr_expect_str_eq(d, "1970-01-01T00-00-00.000000");
    lmeval_date_id(1700000000000001LL, d, sizeof d);
    cr_expect_str_eq(d, "2023-11-14T22-13-20.000001");
}

Test(lmeval_io, output_location) {
    char dir[512], pre[128];
    Err e;
    const struct {
        const char *out, *model, *dir, *pre;
    } c[] = {{"out", "/a/m.pth", "out/__a__m.pth", "results_"},
             {"out/", "m.pth", "out/m.pth", "results_"},
             {NULL, "models/x.pth", "./models__x.pth", "results_"},
             {"x/res.json", "m.pth", "x", "res_"},       /* lm-eval: OUT ending in .json names the file */
             {"res.json", "m.pth", ".", "res_"},
             {"/res.json", "m.pth", "/", "res_"},
             {"a/.json", "m.pth", "a/.json/m.pth", "results_"}}; /* Path('.json').suffix is '' */
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        cr_assert_eq(lmeval_out_location(c[i].out, c[i].model, dir, sizeof dir, pre, sizeof pre, &e), 0, "%s", e.msg);
        cr_expect_str_eq(dir, c[i].dir, "OUT %s: dir %s", c[i].out, dir);
        cr_expect_str_eq(pre, c[i].pre, "OUT %s: prefix %s", c[i].out, pre);
    }
}

static char tmp[128];
static void mk(void) {
    snprintf(tmp, sizeof tmp, "/tmp/rwkvlab_lmio_XXXXXX");
    cr_assert(mkdtemp(tmp));
}
static void rm(void) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    (void)!system(cmd);
}
static int count_files(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += !strncmp(e->d_name, prefix, strlen(prefix));
    closedir(d);
    return n;
}
static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char b[4096];
    size_t n = fread(b, 1, sizeof b - 1, f);
    b[n] = 0;
    fclose(f);
    return b;
}

/* Two runs with the same clock reading (the worst case of "two quick runs") keep both outputs. */
Test(lmeval_io, publish_never_overwrites, .init = mk, .fini = rm) {
    Err e;
    char s1[64], s2[64], p[512];
    LmOutFile f1[2] = {{"samples_piqa_", ".jsonl", "first samples\n", 14}, {"results_", ".json", "{\"run\":1}", 9}};
    LmOutFile f2[2] = {{"samples_piqa_", ".jsonl", "second samples\n", 15}, {"results_", ".json", "{\"run\":2}", 9}};
    const long long t = 1700000000123456LL;
    cr_assert_eq(lmeval_publish(tmp, f1, 2, t, s1, sizeof s1, &e), 0, "%s", e.msg);
    cr_assert_eq(lmeval_publish(tmp, f2, 2, t, s2, sizeof s2, &e), 0, "%s", e.msg);
    cr_expect_str_neq(s1, s2, "both runs got date_id %s", s1);
    cr_expect_eq(count_files(tmp, "results_"), 2);
    cr_expect_eq(count_files(tmp, "samples_piqa_"), 2);
    cr_expect_eq(count_files(tmp, ".rwkvlab"), 0, "temporary files left behind");
    snprintf(p, sizeof p, "%s/results_%s.json", tmp, s1);
    cr_expect_str_eq(slurp(p), "{\"run\":1}", "the first results file was changed");
    snprintf(p, sizeof p, "%s/samples_piqa_%s.jsonl", tmp, s2);
    cr_expect_str_eq(slurp(p), "second samples\n");
    /* a name taken by something else: only the results name of the next stamp exists */
    char d[64];
    lmeval_date_id(t + 5, d, sizeof d);
    snprintf(p, sizeof p, "%s/results_%s.json", tmp, d);
    FILE *f = fopen(p, "w");
    fputs("not ours", f);
    fclose(f);
    char s3[64];
    cr_assert_eq(lmeval_publish(tmp, f1, 2, t + 5, s3, sizeof s3, &e), 0, "%s", e.msg);
    cr_expect_str_neq(s3, d);
    cr_expect_str_eq(slurp(p), "not ours", "an existing file was overwritten");
    snprintf(p, sizeof p, "%s/samples_piqa_%s.jsonl", tmp, d);
    cr_expect_neq(access(p, F_OK), 0, "samples file left under the taken stamp %s", d);
    snprintf(p, sizeof p, "%s/results_%s.json", tmp, s3);
    cr_expect_str_eq(slurp(p), "{\"run\":1}");
}

Test(lmeval_io, publish_failure_leaves_nothing, .init = mk, .fini = rm) {
    Err e = {{0}};
    char s[64], dir[256];
    snprintf(dir, sizeof dir, "%s/missing", tmp);
    LmOutFile f[1] = {{"results_", ".json", "{}", 2}};
    cr_expect_neq(lmeval_publish(dir, f, 1, 1, s, sizeof s, &e), 0);
    cr_expect(strstr(e.msg, "missing"), "%s", e.msg);
    cr_expect_eq(count_files(tmp, ""), 2, "only . and .. expected"); /* nothing created */
}

Test(lmeval_io, prepare_creates_and_checks, .init = mk, .fini = rm) {
    Err e = {{0}};
    char dir[256], created[256];
    snprintf(dir, sizeof dir, "%s/a/b/c", tmp);
    cr_assert_eq(lmeval_out_prepare(dir, created, sizeof created, &e), 0, "%s", e.msg);
    struct stat st;
    cr_expect(stat(dir, &st) == 0 && S_ISDIR(st.st_mode));
    cr_expect_eq(count_files(dir, ".rwkvlab"), 0, "probe file left behind");
    lmeval_out_unprepare(dir, created); /* a failed run removes what it created */
    snprintf(dir, sizeof dir, "%s/a", tmp);
    cr_expect_neq(access(dir, F_OK), 0, "%s still exists", dir);
    /* under a regular file: an error naming the directory */
    snprintf(dir, sizeof dir, "%s/file", tmp);
    FILE *f = fopen(dir, "w");
    fclose(f);
    snprintf(dir, sizeof dir, "%s/file/sub", tmp);
    cr_expect_neq(lmeval_out_prepare(dir, created, sizeof created, &e), 0);
    cr_expect(strstr(e.msg, "file/sub") && strstr(e.msg, "--out"), "%s", e.msg);
    snprintf(dir, sizeof dir, "%s/file", tmp);
    cr_expect_neq(lmeval_out_prepare(dir, created, sizeof created, &e), 0, "a regular file accepted as directory");
    cr_expect(strstr(e.msg, "not a directory"), "%s", e.msg);
}

Test(lmeval_io, buffer_growth_is_checked) {
    LmBuf b = {0};
    Err e = {{0}};
    for (int i = 0; i < 100000; i++) cr_assert_eq(lmbuf_add(&b, "0123456789", 10, &e), 0);
    cr_expect_eq(b.len, 1000000);
    cr_expect_eq(b.p[b.len], 0);
    cr_expect(!memcmp(b.p + 999990, "0123456789", 10));
#if defined(__SANITIZE_ADDRESS__)
    /* ASan aborts on an impossible allocation instead of returning NULL: the release build checks it */
#else
    size_t before = b.len;
    cr_expect_neq(lmbuf_add(&b, "x", SIZE_MAX / 4, &e), 0, "an impossible growth succeeded");
    cr_expect(strstr(e.msg, "out of memory"), "%s", e.msg);
    cr_expect_eq(b.len, before, "the buffer changed after a failed growth");
#endif
    lmbuf_free(&b);
}
