/* test_cli.c -- the command line through the binary (RWKVLAB_BIN): every subcommand parses its options
 * strictly (unknown, malformed, out-of-range or missing values are an error naming the option and the
 * value, exit 1, nothing written), `config` and `train` accept the same configurations, id lists are
 * parsed without crashing, `logits` refuses non-finite results, `trace` writes its file atomically, and
 * --allow-unknown-tensors / --force-memory reach the loader from info, logits, export and trace. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

static char tmpdir[256];
static void mk_tmp(void) { cr_assert(test_mkdtemp(tmpdir, sizeof tmpdir, "cli") == 0); }
static void rm_tmp(void) { test_rmtree(tmpdir); }
TestSuite(cli, .init = mk_tmp, .fini = rm_tmp, .timeout = 300);

static char output[16384]; /* stdout + stderr of the last cli() call */

/* Runs `rwkvlab ARGS` (ARGS: printf format; "@" in it stands for the temporary directory) with the
 * given shell prefix; returns the exit status and leaves its output in `output`. */
static int cli_in(const char *prefix, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = test_cli_va(output, sizeof output, tmpdir, prefix, fmt, ap);
    va_end(ap);
    return rc;
}
#define cli(...) cli_in("", __VA_ARGS__)

static int exists(const char *fmt, const char *name) {
    char p[600];
    snprintf(p, sizeof p, fmt, tmpdir, name);
    return access(p, F_OK) == 0;
}

/* Names in tmpdir, sorted, comma separated (to check what a command left behind). */
static void listing(char *buf, size_t n) {
    char names[64][256];
    int cnt = 0;
    DIR *d = opendir(tmpdir);
    cr_assert(d);
    for (struct dirent *e; (e = readdir(d)) && cnt < 64;)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) snprintf(names[cnt++], 256, "%s", e->d_name);
    closedir(d);
    qsort(names, cnt, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < cnt && used < n; i++) used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? "," : "", names[i]);
}

/* A tiny f32 model (V=16, L=1, C=16, N=16) at @/m.safetensors; extra init options in `extra`. */
static void make_model(const char *name, const char *extra) {
    int rc = cli("init --to @/%s --vocab 16 --layers 1 --d-model 16 --head-size 16 --dtype f32 %s", name, extra);
    cr_assert_eq(rc, 0, "init failed: %s", output);
}

/* ---- every subcommand: bad options are errors naming the option and the value ----------------- */

typedef struct {
    const char *args;
    const char *frag[3]; /* each must appear in the message */
} BadCase;

#define TINY "--vocab 16 --layers 1 --d-model 16 --head-size 16"
/* (train cases name a config that does not exist: options are checked before the config is read, and a
 * parser that let an option through cannot start a long run) */

static const BadCase BAD[] = {
    {"train --bogus", {"rwkvlab train:", "unknown option --bogus"}},
    {"train @/none.ini --out @/r --qiet", {"unknown option --qiet", "did you mean --quiet?"}},
    {"train @/none.ini --out @/r --stop-after 12x", {"--stop-after", "'12x'", "whole number"}},
    {"train @/none.ini --out @/r --inject-nan -3", {"--inject-nan", "-3", "out of range"}},
    {"train @/none.ini --out", {"--out needs a value"}},
    {"train @/none.ini --out --quiet", {"--out needs a value", "got option --quiet"}},
    {"train @/none.ini configs/s5_swaps_rwkv7.ini --out @/r", {"unexpected argument", "s5_swaps"}},
    {"train @/none.ini --out @/r --out @/r2", {"--out is given twice"}},
    {"config --sett task.name=s3", {"rwkvlab config:", "unknown option --sett", "did you mean --set?"}},
    {"config configs/s3_full_rwkv7.ini configs/s5_swaps_rwkv7.ini", {"unexpected argument", "one CONFIG"}},
    {"config --set", {"--set needs a value"}},
    {"evaltask @/run --lengths 16 --n -5", {"rwkvlab evaltask:", "--n -5", "out of range"}},
    {"evaltask @/run --lengths 16 --n 3x", {"--n '3x'", "not a whole number"}},
    {"evaltask @/run --lengths 16 --seed abc", {"--seed 'abc'"}},
    {"evaltask @/run --lengths 16 --m 2", {"unknown option --m", "did you mean --n?"}},
    {"evaltask @/run --variant", {"--variant needs a value"}}, /* --lengths is optional: the run's test_lens */
    {"evaltask --lengths 16", {"missing RUN_DIR|CKPT"}},
    {"info @/m.safetensors --verbose", {"rwkvlab info:", "unknown option --verbose"}},
    {"info", {"missing FILE"}},
    {"logits --model @/m.safetensors --tokens 1 --out @/l.npy --recurent", {"rwkvlab logits:", "did you mean --recurrent?"}},
    {"logits --model @/m.safetensors --out @/l.npy", {"missing --tokens"}},
    {"export @/m.safetensors --to @/e.safetensors --dtype f8", {"rwkvlab export:", "--dtype 'f8'", "bf16, f16, f32"}},
    {"export @/m.safetensors", {"missing --to"}},
    {"trace --model @/m.safetensors --task s3 --len abc --out @/t.h5", {"rwkvlab trace:", "--len 'abc'"}},
    {"trace --model @/m.safetensors --task s3 --len 0 --out @/t.h5", {"--len 0", "out of range"}},
    {"trace --model @/m.safetensors --task s3 --seed -1 --out @/t.h5", {"--seed -1", "out of range"}},
    {"trace --model @/m.safetensors --tokens 1 --len 5 --out @/t.h5", {"--len is used only with --task"}},
    {"trace --model @/m.safetensors --tokens 1 --text hi --out @/t.h5", {"exactly one of --tokens, --text and --task"}},
    {"trace --model @/m.safetensors --tokens 1 --outt @/t.h5", {"unknown option --outt", "did you mean --out?"}},
    {"init --to @/i.safetensors " TINY " --dtype f8", {"rwkvlab init:", "--dtype 'f8'", "bf16, f16, f32"}},
    {"init --to @/i.safetensors --vocab 16 --d-model 16 --head-size 16 --layer 1",
     {"unknown option --layer", "did you mean --layers?"}},
    {"init --to @/i.safetensors " TINY " --random nan", {"--random nan", "not a finite number"}},
    {"init --to @/i.safetensors " TINY " --random 0", {"--random 0", "out of range"}},
    {"init --to @/i.safetensors " TINY " --noise -1", {"--noise -1", "out of range"}},
    {"init --to @/i.safetensors --vocab 12x --layers 1 --d-model 16 --head-size 16", {"--vocab '12x'"}},
    {"init --to @/i.safetensors --vocab 16 --layers 0 --d-model 16 --head-size 16", {"--layers 0", "[1, 1024]"}},
    {"init --to @/i.safetensors --vocab 16 --layers 1 --d-model 24 --head-size 16", {"does not divide"}},
    {"init --to", {"--to needs a value"}},
    {"lmeval --model @/m.safetensors --tasks piqa --limit abc", {"rwkvlab lmeval:", "--limit 'abc'"}},
    {"lmeval --model @/m.safetensors --tasks piqa --limit -5", {"--limit -5", "out of range"}},
    {"lmeval --model @/m.safetensors --tasks piqa --bootstrap 100000000", {"--bootstrap 100000000", "out of range"}},
    {"lmeval --model @/m.safetensors --tasks piqa --bootstrap 1e9", {"--bootstrap '1e9'", "not a whole number"}},
    {"lmeval --model @/m.safetensors --tasks piqa --prefix bogus", {"--prefix 'bogus'", "none, 0, newline"}},
    {"lmeval --model @/m.safetensors --tasks piqa --split x", {"--split 'x'", "lmeval, separate"}},
    {"lmeval --model @/m.safetensors --tasks piqa --samples=1", {"--samples takes no value"}},
    {"lmeval --model @/m.safetensors --tasks piqa --limt 5", {"unknown option --limt", "did you mean --limit?"}},
    {"lmeval --tasks piqa", {"missing --model"}},
    {"version --bogus", {"rwkvlab version:", "unknown option --bogus"}},
};

Test(cli, bad_options_are_errors_naming_the_option) {
    make_model("m.safetensors", "");
    for (size_t i = 0; i < sizeof BAD / sizeof *BAD; i++) {
        int rc = cli("%s", BAD[i].args);
        cr_expect_eq(rc, 1, "rwkvlab %s: exit %d, expected 1; output:\n%s", BAD[i].args, rc, output);
        for (int k = 0; k < 3 && BAD[i].frag[k]; k++)
            cr_expect(strstr(output, BAD[i].frag[k]), "rwkvlab %s: the message lacks \"%s\":\n%s", BAD[i].args,
                      BAD[i].frag[k], output);
    }
    /* nothing was written by the rejected commands */
    cr_expect(!exists("%s/%s", "i.safetensors"), "init wrote a model despite a bad option");
    cr_expect(!exists("%s/%s", "e.safetensors") && !exists("%s/%s", "l.npy") && !exists("%s/%s", "t.h5"),
              "a rejected command wrote its output");
    cr_expect(!exists("%s/%s", "r") && !exists("%s/%s", "r2"), "train created a run directory despite a bad option");
}

Test(cli, help_on_every_subcommand) {
    const char *cmds[] = {"train", "config", "evaltask", "info", "logits", "export", "trace", "init", "lmeval", "version"};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        int rc = cli("%s --help", cmds[i]);
        cr_expect_eq(rc, 0, "%s --help: exit %d", cmds[i], rc);
        cr_expect(strstr(output, "usage: rwkvlab") && strstr(output, cmds[i]), "%s --help:\n%s", cmds[i], output);
    }
    cr_expect_eq(cli("trian configs/s3_full_rwkv7.ini"), 1);
    cr_expect(strstr(output, "did you mean train?"), "%s", output);
}

/* The forms that must keep working: --name=value, negative-looking values only where allowed, `--`. */
Test(cli, good_option_forms) {
    cr_assert_eq(cli("init --to=@/a.safetensors --vocab=16 --layers 1 --d-model 16 --head-size=16 --dtype=f16 --seed 7"),
                 0, "%s", output);
    cr_expect(strstr(output, "F16"), "%s", output);
    cr_expect_eq(cli("info -- @/a.safetensors"), 0, "%s", output);
    cr_expect_eq(cli("config configs/s3_full_rwkv7.ini --set train.steps=500 --set=model.layers=1"), 0, "%s", output);
    cr_expect(strstr(output, "steps = 500") && strstr(output, "layers = 1"), "%s", output);
}

/* ---- config and train accept the same configurations ------------------------------------------ */

Test(cli, config_and_train_reject_a5_swaps_alike) {
    char p[600];
    snprintf(p, sizeof p, "%s/a5.ini", tmpdir);
    FILE *f = fopen(p, "w");
    cr_assert(f);
    fputs("[experiment]\nname = a5\n[model]\nlayers = 1\nd_model = 16\nhead_size = 16\n[task]\nname = a5\n"
          "variant = swaps\ntrain_len = 8\ntest_lens = 8\ntest_size = 4\n[train]\nsteps = 2\nbatch = 4\nwarmup = 1\n"
          "[log]\ntrajectories = 0\n", f);
    fclose(f);
    int rc = cli("config @/a5.ini");
    cr_expect_eq(rc, 1, "config accepted a5 with swaps (exit %d):\n%.300s", rc, output);
    cr_expect(strstr(output, "variant = 'swaps'") && strstr(output, "full, swaps3"), "%s", output);
    rc = cli("train @/a5.ini --out @/run --quiet");
    cr_expect_eq(rc, 1, "train: exit %d", rc);
    cr_expect(strstr(output, "variant = 'swaps'") && strstr(output, "full, swaps3"), "%s", output);
    cr_expect(!exists("%s/%s", "run"), "train created a run directory for an invalid config");
    /* the same fix through --set is accepted by both */
    cr_expect_eq(cli("config @/a5.ini --set task.variant=swaps3"), 0, "%s", output);
    cr_expect_eq(cli("train @/a5.ini --set task.variant=swaps3 --out @/run --quiet"), 0, "%s", output);
    /* and --set can break it for both */
    cr_expect_eq(cli("config configs/s3_full_rwkv7.ini --set task.name=a5 --set task.variant=swaps"), 1);
    cr_expect_eq(cli("train configs/s3_full_rwkv7.ini --set task.name=a5 --set task.variant=swaps --out @/r2"), 1);
    cr_expect(!exists("%s/%s", "r2"));
}

/* ---- id lists (issue 6 item 14: a bad entry aborted with a double free) ----------------------- */

Test(cli, bad_id_lists_are_errors_not_crashes) {
    make_model("m.safetensors", "");
    /* a real run for evaltask, so that the list is parsed where the old code crashed */
    char p[600];
    snprintf(p, sizeof p, "%s/s3.ini", tmpdir);
    FILE *f = fopen(p, "w");
    cr_assert(f);
    fputs("[experiment]\nname = s3\n[model]\nlayers = 1\nd_model = 16\nhead_size = 16\n[task]\nname = s3\n"
          "variant = full\ntrain_len = 8\ntest_lens = 8\ntest_size = 4\n[train]\nsteps = 2\nbatch = 4\nwarmup = 1\n"
          "[log]\ntrajectories = 0\n", f);
    fclose(f);
    cr_assert_eq(cli("train @/s3.ini --out @/run --quiet"), 0, "%s", output);
    static const struct {
        const char *list, *frag;
    } bad[] = {{"16,abc", "entry 2 'abc'"}, {"16,,8", "entry 2 is empty"}, {"16,", "entry 2 is empty"},
               {"0", "out of range"},     {"12x", "'12x'"},             {"''", "empty list"},
               {"99999999999999999999", "out of range"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = cli("evaltask @/run --lengths %s", bad[i].list);
        cr_expect_eq(rc, 1, "evaltask --lengths %s: exit %d (a crash is -1 or >128):\n%s", bad[i].list, rc, output);
        cr_expect(strstr(output, "--lengths") && !strstr(output, "--tokens") && strstr(output, bad[i].frag),
                  "evaltask --lengths %s: the message should name --lengths and '%s':\n%s", bad[i].list, bad[i].frag,
                  output);
    }
    cr_expect_eq(cli("evaltask @/run --lengths 8,16"), 0, "%s", output);
    static const char *bad_tokens[] = {"0,abc", "1,,2", "1,", "-1", "1,2x"};
    for (size_t i = 0; i < sizeof bad_tokens / sizeof *bad_tokens; i++) {
        int rc = cli("trace --model @/m.safetensors --tokens %s --out @/t.h5", bad_tokens[i]);
        cr_expect_eq(rc, 1, "trace --tokens %s: exit %d:\n%s", bad_tokens[i], rc, output);
        cr_expect(strstr(output, "--tokens"), "%s", output);
        rc = cli("logits --model @/m.safetensors --tokens %s --out @/l.npy", bad_tokens[i]);
        cr_expect_eq(rc, 1, "logits --tokens %s: exit %d:\n%s", bad_tokens[i], rc, output);
    }
    /* a file of ids: whitespace and commas separate; a bad entry names the file */
    snprintf(p, sizeof p, "%s/ids.txt", tmpdir);
    f = fopen(p, "w");
    fputs("1 2,3\n\n4\n", f);
    fclose(f);
    cr_expect_eq(cli("trace --model @/m.safetensors --tokens @/ids.txt --out @/t.h5"), 0, "%s", output);
    cr_expect(strstr(output, "4 tokens"), "%s", output);
    f = fopen(p, "w");
    fputs("1 2\nabc\n", f);
    fclose(f);
    cr_expect_eq(cli("trace --model @/m.safetensors --tokens @/ids.txt --out @/t2.h5"), 1);
    cr_expect(strstr(output, "ids.txt") && strstr(output, "'abc'"), "%s", output);
    cr_expect(!exists("%s/%s", "t2.h5") && !exists("%s/%s", "l.npy"));
}

/* ---- logits: a NaN/Inf result is an error, nothing written ------------------------------------ */

Test(cli, logits_refuses_non_finite_results) {
    make_model("big.safetensors", "--random 1e30"); /* weights that overflow float32 */
    int rc = cli("logits --model @/big.safetensors --tokens 1,2,3 --out @/l.npy");
    cr_expect_eq(rc, 1, "logits wrote non-finite values (exit %d):\n%s", rc, output);
    cr_expect(strstr(output, "not finite") && strstr(output, "position 0"), "%s", output);
    cr_expect(!exists("%s/%s", "l.npy"), "a .npy was written for non-finite logits");
    make_model("ok.safetensors", "--noise 0.1");
    cr_expect_eq(cli("logits --model @/ok.safetensors --tokens 1,2,3 --out @/l.npy"), 0, "%s", output);
    cr_expect(exists("%s/%s", "l.npy"));
}

/* ---- trace writes its HDF5 file atomically ---------------------------------------------------- */

Test(cli, trace_writes_atomically) {
    make_model("m.safetensors", "");
    char ids[600], after[4096];
    snprintf(ids, sizeof ids, "%s/ids", tmpdir);
    FILE *f = fopen(ids, "w");
    for (int i = 0; i < 400; i++) fprintf(f, "%d ", i % 16);
    fclose(f);
    /* success: exactly the output file appears (no temporary left) */
    cr_assert_eq(cli("trace --model @/m.safetensors --tokens @/ids --out @/t.h5"), 0, "%s", output);
    listing(after, sizeof after);
    cr_expect_str_eq(after, "ids,m.safetensors,t.h5", "what a good trace left");
    /* the temporary file of a trace killed by SIGKILL (a pid that no longer exists) is removed by the next
     * trace to the same name; one of a live process is left alone */
    char stale[700], live[700];
    snprintf(stale, sizeof stale, "%s/t.h5.tmp.999999999", tmpdir);
    snprintf(live, sizeof live, "%s/t.h5.tmp.%ld", tmpdir, (long)getppid());
    fclose(fopen(stale, "w")), fclose(fopen(live, "w"));
    cr_assert_eq(cli("trace --model @/m.safetensors --tokens @/ids --out @/t.h5"), 0, "%s", output);
    cr_expect(access(stale, F_OK) != 0, "the dead trace's temporary file was not removed");
    cr_expect(access(live, F_OK) == 0, "a live process's temporary file was removed");
    unlink(live);
    /* a path whose directory does not exist: error, nothing anywhere */
    cr_expect_eq(cli("trace --model @/m.safetensors --tokens 1,2 --out @/nodir/t.h5"), 1);
    cr_expect(!exists("%s/%s", "nodir"));
    /* the output is a directory: the rename fails, the temporary file is removed */
    char d[600];
    snprintf(d, sizeof d, "%s/adir", tmpdir);
    cr_assert_eq(mkdir(d, 0755), 0);
    cr_expect_eq(cli("trace --model @/m.safetensors --tokens 1,2 --out @/adir"), 1, "%s", output);
    listing(after, sizeof after);
    cr_expect_str_eq(after, "adir,ids,m.safetensors,t.h5");
    /* killed half-way: a file size limit of 4 KB kills the process with SIGXFSZ at its first write past
     * it (before, a partial t_new.h5 that looked like a result was left) */
    int rc = cli_in("ulimit -f 8;", "trace --model @/m.safetensors --tokens @/ids --out @/t_new.h5");
    cr_expect_neq(rc, 0, "the trace succeeded under a 4 KB file size limit:\n%s", output);
    listing(after, sizeof after);
    cr_expect_str_eq(after, "adir,ids,m.safetensors,t.h5", "a trace killed half-way left files behind");
    /* a write that fails half-way (SIGXFSZ ignored, so write() fails with EFBIG): an error, nothing left */
    const char *limited = "trap '' XFSZ; ulimit -f 8;";
    rc = cli_in(limited, "trace --model @/m.safetensors --tokens @/ids --out @/t_new.h5");
    cr_expect_eq(rc, 1, "trace under a 4 KB file size limit: exit %d, expected 1:\n%s", rc, output);
    listing(after, sizeof after);
    cr_expect_str_eq(after, "adir,ids,m.safetensors,t.h5", "a failed trace to a new file left files behind");
    char path[600];
    snprintf(path, sizeof path, "%s/t.h5", tmpdir);
    FILE *old = fopen(path, "w");
    cr_assert(old);
    fputs("earlier result", old);
    fclose(old);
    rc = cli_in(limited, "trace --model @/m.safetensors --tokens @/ids --out @/t.h5");
    cr_expect_eq(rc, 1, "trace under a 4 KB file size limit: exit %d, expected 1:\n%s", rc, output);
    old = fopen(path, "r");
    char buf[64] = "";
    cr_assert(old);
    cr_expect(fgets(buf, sizeof buf, old) && !strcmp(buf, "earlier result"), "t.h5 was changed by a failed trace");
    fclose(old);
    listing(after, sizeof after);
    cr_expect_str_eq(after, "adir,ids,m.safetensors,t.h5", "a failed trace left files behind");
    /* and a complete trace replaces it */
    cr_expect_eq(cli("trace --model @/m.safetensors --tokens 1,2 --out @/t.h5"), 0, "%s", output);
    old = fopen(path, "rb");
    cr_assert(old);
    cr_expect(fread(buf, 1, 8, old) == 8 && !memcmp(buf, "\x89HDF\r\n\x1a\n", 8), "t.h5 is not an HDF5 file");
    fclose(old);
}

/* ---- the loader's switches reach it from every subcommand that loads a model ------------------ */

/* Copies the safetensors file src to dst with one more tensor, "extra.weight" [1] F32, that no model uses. */
static void add_unknown_tensor(const char *src, const char *dst) {
    FILE *f = fopen(src, "rb");
    cr_assert(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(n);
    cr_assert(fread(b, 1, n, f) == (size_t)n);
    fclose(f);
    unsigned long long hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | b[i];
    cr_assert(8 + hl < (unsigned long long)n && b[8] == '{');
    unsigned long long data = n - 8 - hl;
    char extra[160], hdr[65536];
    snprintf(extra, sizeof extra, "\"extra.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%llu,%llu]},",
             data, data + 4);
    int len = snprintf(hdr, sizeof hdr, "{%s%.*s", extra, (int)hl - 1, (char *)b + 9);
    while (len % 8) hdr[len++] = ' '; /* keep the data 8-byte aligned */
    f = fopen(dst, "wb");
    cr_assert(f);
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)((unsigned long long)len >> (8 * i));
    float one = 1;
    cr_assert(fwrite(lenb, 1, 8, f) == 8 && fwrite(hdr, 1, len, f) == (size_t)len &&
              fwrite(b + 8 + hl, 1, data, f) == data && fwrite(&one, 4, 1, f) == 1);
    fclose(f);
    free(b);
}

Test(cli, load_switches_on_info_logits_export_trace) {
    make_model("m.safetensors", "");
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/m.safetensors", tmpdir);
    snprintf(b, sizeof b, "%s/u.safetensors", tmpdir);
    add_unknown_tensor(a, b);
    static const char *cmds[] = {"info @/%s", "logits --model @/%s --tokens 1,2 --out @/l.npy",
                                 "export @/%s --to @/e.safetensors", "trace --model @/%s --tokens 1,2 --out @/t.h5"};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        char u[300], m[300];
        snprintf(u, sizeof u, cmds[i], "u.safetensors");
        snprintf(m, sizeof m, cmds[i], "m.safetensors");
        cr_expect_eq(cli("%s", u), 1, "%s accepted an unknown tensor:\n%s", u, output);
        cr_expect(strstr(output, "extra.weight"), "%s: the message should name the tensor:\n%s", u, output);
        cr_expect_eq(cli("%s --allow-unknown-tensors", u), 0, "%s --allow-unknown-tensors:\n%s", u, output);
        /* a machine with 1 KB: refused, unless forced */
        cr_expect_eq(cli_in("RWKVLAB_MEM_AVAILABLE=1000", "%s", m), 1, "%s with 1 KB:\n%s", m, output);
        cr_expect(strstr(output, "memory"), "%s", output);
        cr_expect_eq(cli_in("RWKVLAB_MEM_AVAILABLE=1000", "%s --force-memory", m), 0, "%s --force-memory:\n%s", m,
                     output);
    }
}
