/* test_generate.c -- `rwkvlab generate` on the CPU (issue 9 item 3) through the binary (RWKVLAB_BIN) and
 * the sampler directly: greedy is the first argmax and the same for every sequence of a batch; sampling is
 * fixed by the seed and follows the top-p rule on hand-made logits; a run of 2N tokens equals a run of N
 * saved with --save-state and a run of N continued with --load-state (greedy and sampled, batches of 1 and
 * 2); state files are written atomically and every damaged or mismatched file is refused with a message;
 * and --device cuda without a GPU (CUDA_VISIBLE_DEVICES="") fails cleanly, naming why, for generate and
 * for lmeval, writing nothing. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sample.h"
#include "testutil.h"

static char tmpdir[256];
static const char *M = "tests/fixtures/ckpt/tiny_f32.safetensors"; /* V=97 C=64 L=2 N=16 */
static const char *M2 = "tests/fixtures/ckpt/l3_f32.safetensors";  /* another shape */
static void mk_tmp(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rwkvlab_gen_XXXXXX");
    cr_assert(mkdtemp(tmpdir));
}
static void rm_tmp(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    (void)!system(cmd);
}
TestSuite(generate, .init = mk_tmp, .fini = rm_tmp, .timeout = 120);

static char out[65536], err_[16384];

/* `PREFIX rwkvlab ARGS` ("@" = the temporary directory); stdout in out, stderr in err_; the exit status */
static int run(const char *prefix, const char *fmt, ...) {
    char args[4096], exp[8192], cmd[9000], po[400], pe[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    size_t k = 0;
    for (const char *c = args; *c && k + 300 < sizeof exp; c++)
        if (*c == '@') k += (size_t)snprintf(exp + k, sizeof exp - k, "%s", tmpdir);
        else exp[k++] = *c;
    exp[k] = 0;
    snprintf(po, sizeof po, "%s/o.txt", tmpdir), snprintf(pe, sizeof pe, "%s/e.txt", tmpdir);
    snprintf(cmd, sizeof cmd, "%s %s %s > %s 2> %s", prefix, rwkvlab_bin(), exp, po, pe);
    int rc = sh(cmd);
    char *bufs[2] = {out, err_};
    size_t caps[2] = {sizeof out, sizeof err_};
    const char *paths[2] = {po, pe};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(paths[i], "r");
        size_t n = f ? fread(bufs[i], 1, caps[i] - 1, f) : 0;
        bufs[i][n] = 0;
        if (f) fclose(f);
        unlink(paths[i]);
    }
    return rc;
}

/* stdout of a successful run (copied) */
static char *gen(const char *fmt, ...) {
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    int rc = run("", "generate --model %s --quiet %s", M, args);
    cr_assert_eq(rc, 0, "generate %s failed: %s", args, err_);
    return strdup(out);
}

/* a and b: lines "[i] ids" or "ids"; acc = per line "a_i b_i" (b's "[i] " prefix dropped) */
static void cat_lines(char *acc, size_t cap, const char *a, const char *b) {
    char *ca = strdup(a), *cb = strdup(b), *sa, *sb;
    char *la = strtok_r(ca, "\n", &sa), *lb = strtok_r(cb, "\n", &sb);
    size_t k = 0;
    acc[0] = 0;
    while (la && lb) {
        const char *bb = lb;
        if (*bb == '[') bb = strchr(bb, ' ') + 1;
        k += (size_t)snprintf(acc + k, cap - k, "%s %s\n", la, bb);
        la = strtok_r(NULL, "\n", &sa), lb = strtok_r(NULL, "\n", &sb);
    }
    cr_assert(!la && !lb, "different line counts:\n%s\n--\n%s", a, b);
    free(ca), free(cb);
}

Test(generate, greedy_is_deterministic_and_the_same_in_a_batch) {
    char *one = gen("--tokens 1,2,3 --n 12"), *again = gen("--tokens 1,2,3 --n 12"), *three = gen("--tokens 1,2,3 --n 12 --batch 3");
    cr_assert_str_eq(one, again);
    char want[4096];
    one[strlen(one) - 1] = 0;
    snprintf(want, sizeof want, "[0] %s\n[1] %s\n[2] %s\n", one, one, one);
    cr_assert_str_eq(three, want);
    /* a nucleus of one token is the argmax, whatever the temperature */
    char *nuc = gen("--tokens 1,2,3 --n 12 --temperature 2 --top-p 0.0001 --seed 9");
    nuc[strlen(nuc) - 1] = 0;
    cr_assert_str_eq(nuc, one);
    free(one), free(again), free(three), free(nuc);
}

Test(generate, sampling_follows_the_seed) {
    char *a = gen("--tokens 5,6 --n 32 --batch 2 --temperature 1 --seed 7");
    char *b = gen("--tokens 5,6 --n 32 --batch 2 --temperature 1 --seed 7");
    char *c = gen("--tokens 5,6 --n 32 --batch 2 --temperature 1 --seed 8");
    cr_assert_str_eq(a, b);
    cr_assert_str_neq(a, c, "seeds 7 and 8 drew the same 64 tokens");
    /* the two sequences of a batch draw their own numbers */
    char *nl = strchr(a, '\n');
    cr_assert(nl && strcmp(strchr(nl + 1, ' '), strchr(a, ' ')), "both sequences sampled the same tokens:\n%s", a);
    free(a), free(b), free(c);
}

/* unbroken 2N == N saved + N continued (stdout lines joined) */
static void check_continue(const char *opts, int n) {
    char *full = gen("--tokens 1,2,3 %s --n %d", opts, 2 * n);
    char *first = gen("--tokens 1,2,3 %s --n %d --save-state @/st.bin", opts, n);
    char *second = gen("--load-state @/st.bin %s --n %d", opts, n);
    char joined[65536];
    cat_lines(joined, sizeof joined, first, second);
    cr_assert_str_eq(joined, full, "continued run differs (%s):\n%s\nvs unbroken\n%s", opts, joined, full);
    free(full), free(first), free(second);
}
Test(generate, saved_state_continued_equals_unbroken_run) {
    check_continue("", 6);
    check_continue("--batch 2 --temperature 0.8 --top-p 0.9 --seed 3", 7);
    /* the seed comes from the file unless given: an explicit other seed changes the continuation */
    char *first = gen("--tokens 1,2,3 --n 4 --batch 2 --temperature 1 --seed 3 --save-state @/s3.bin");
    char *same = gen("--load-state @/s3.bin --n 16 --temperature 1");
    char *other = gen("--load-state @/s3.bin --n 16 --temperature 1 --seed 4");
    cr_assert_str_neq(same, other);
    free(first), free(same), free(other);
    /* a prompt after a loaded state is fed after the pending tokens */
    char *p = gen("--load-state @/s3.bin --tokens 9,9 --n 3 --temperature 1");
    cr_assert(strlen(p) > 0);
    free(p);
}

/* the CPU path is the model interface's: another architecture continues from its own state too */
Test(generate, other_architecture_continues_from_its_state) {
    cr_assert_eq(run("", "init --arch rwkv6 --to @/r6.safetensors --vocab 50 --layers 2 --d-model 32 --head-size 16 "
                         "--dtype f32 --noise 0.3"), 0, "%s", err_);
    cr_assert_eq(run("", "generate --model @/r6.safetensors --tokens 1,2,3 --n 10 --temperature 1 --quiet"), 0, "%s", err_);
    char *full = strdup(out);
    cr_assert_eq(run("", "generate --model @/r6.safetensors --tokens 1,2,3 --n 5 --temperature 1 --quiet "
                         "--save-state @/r6.st"), 0, "%s", err_);
    char *first = strdup(out);
    cr_assert_eq(run("", "generate --model @/r6.safetensors --load-state @/r6.st --n 5 --temperature 1 --quiet"), 0, "%s", err_);
    char joined[4096];
    first[strlen(first) - 1] = 0;
    snprintf(joined, sizeof joined, "%s %s", first, out);
    cr_expect_str_eq(joined, full);
    /* a state of this model is refused by a model of another architecture */
    cr_expect_neq(run("", "generate --model %s --load-state @/r6.st --n 2", M), 0);
    cr_expect(strstr(err_, "saved from a rwkv6 model"), "%s", err_);
    free(full), free(first);
}

Test(generate, state_file_is_atomic_and_replaced) {
    char *a = gen("--tokens 1,2 --n 3 --save-state @/s.bin");
    char *b = gen("--tokens 4 --n 3 --save-state @/s.bin");
    DIR *d = opendir(tmpdir);
    for (struct dirent *e; (e = readdir(d));) cr_assert(!strstr(e->d_name, ".tmp."), "temporary file left: %s", e->d_name);
    closedir(d);
    char p[400];
    snprintf(p, sizeof p, "%s/s.bin", tmpdir);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    /* header 128 + pending 4 + state 2304 floats (tiny_f32: L=2, C=64, H=4, N=16) */
    cr_assert_eq(st.st_size, 128 + 4 + 4 * 2304);
    free(a), free(b);
}

Test(generate, bad_state_files_are_refused) {
    free(gen("--tokens 1,2 --n 3 --batch 2 --save-state @/s.bin"));
    char cmd[1200];
    /* truncated, bad magic, one flipped payload byte, another model, wrong batch, missing file */
    snprintf(cmd, sizeof cmd, "cd %s && head -c 5000 s.bin > trunc.bin && (printf 'NOTSTATE'; tail -c +9 s.bin) > magic.bin && "
                              "cp s.bin flip.bin && printf '\\377' | dd of=flip.bin bs=1 seek=300 conv=notrunc 2>/dev/null",
             tmpdir);
    cr_assert_eq(sh(cmd), 0);
    struct {
        const char *args, *want;
    } cases[] = {
        {"--model %s --load-state @/trunc.bin", "truncated"},
        {"--model %s --load-state @/magic.bin", "not a state file"},
        {"--model %s --load-state @/flip.bin", "checksum"},
        {"--model %s --load-state @/s.bin --batch 3", "holds 2 sequences"},
        {"--model %s --load-state @/none.bin", "cannot open"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char a[600];
        snprintf(a, sizeof a, cases[i].args, M);
        int rc = run("", "generate %s --n 2", a);
        cr_expect_neq(rc, 0, "%s: accepted", a);
        cr_expect(strstr(err_, cases[i].want) && strstr(err_, "rwkvlab generate:"), "%s: message '%s' lacks '%s'", a,
                  err_, cases[i].want);
        cr_expect_eq(out[0], 0, "%s: printed tokens: %s", a, out);
    }
    int rc = run("", "generate --model %s --load-state @/s.bin --n 2", M2);
    cr_expect_neq(rc, 0);
    cr_expect(strstr(err_, "saved from a rwkv7 model with V=97") && strstr(err_, "load it with the model"), "%s", err_);
    /* options */
    cr_expect_neq(run("", "generate --model %s --n 2", M), 0);
    cr_expect(strstr(err_, "nothing to continue"), "%s", err_);
    cr_expect_neq(run("", "generate --model %s --tokens 1 --prompt hi", M), 0);
    cr_expect(strstr(err_, "both given"), "%s", err_);
    cr_expect_neq(run("", "generate --model %s --tokens 1,500 --n 2", M), 0);
    cr_expect(strstr(err_, "outside the model's vocabulary of 97"), "%s", err_);
    cr_expect_neq(run("", "generate --model %s --tokens 1 --dtype bf16", M), 0);
    cr_expect(strstr(err_, "fp32 only"), "%s", err_);
    cr_expect_neq(run("", "generate --model %s --tokens 1 --device tpu", M), 0);
    cr_expect(strstr(err_, "use cpu or cuda"), "%s", err_);
}

/* --device cuda where no GPU can be used: a clear error naming why, exit 1, nothing written */
Test(generate, device_cuda_without_gpu_fails_cleanly) {
    const char *why[2] = {"built without the CUDA engine", "no usable GPU found"};
    int rc = run("CUDA_VISIBLE_DEVICES=", "generate --model %s --tokens 1,2 --n 3 --device cuda --save-state @/s.bin", M);
    cr_assert_eq(rc, 1, "rc %d: %s", rc, err_);
    cr_expect(strstr(err_, "rwkvlab generate: --device cuda:") && (strstr(err_, why[0]) || strstr(err_, why[1])), "%s", err_);
    cr_expect_eq(out[0], 0);
    char p[400];
    snprintf(p, sizeof p, "%s/s.bin", tmpdir);
    cr_expect_neq(access(p, F_OK), 0, "a state file was written");
    rc = run("CUDA_VISIBLE_DEVICES=", "lmeval --model %s --tasks lambada_openai --device cuda --out @/res --data @", M);
    cr_assert_eq(rc, 1, "rc %d: %s", rc, err_);
    cr_expect(strstr(err_, "rwkvlab lmeval: --device cuda:") && (strstr(err_, why[0]) || strstr(err_, why[1])), "%s", err_);
    snprintf(p, sizeof p, "%s/res", tmpdir);
    cr_expect_neq(access(p, F_OK), 0, "an output folder was made");
}

/* the sampler on hand-made logits (sample.h's rules) */
Test(generate, sampler_rules) {
    Sampler s;
    sampler_init(&s, 3);
    const real two[3] = {0, (real)log(3.0), -INFINITY}; /* p = 1/4, 3/4, 0 */
    cr_expect_eq(sampler_pick(&s, two, 0, 1, 0.5), 1);
    cr_expect_eq(sampler_pick(&s, two, 1, 1, 0.2), 0);
    cr_expect_eq(sampler_pick(&s, two, 1, 1, 0.3), 1);
    cr_expect_eq(sampler_pick(&s, two, 1, 0.7, 0.0), 1); /* nucleus {1} */
    cr_expect_eq(sampler_pick(&s, two, 1, 0.7, 0.99), 1);
    cr_expect_eq(sampler_pick(&s, two, 1, 0.8, 0.7), 1); /* nucleus [1, 0]: running sums 0.75, 1.0 */
    cr_expect_eq(sampler_pick(&s, two, 1, 0.8, 0.8), 0);
    const real tie[3] = {1, 1, 1};
    cr_expect_eq(sampler_pick(&s, tie, 0, 1, 0.9), 0); /* greedy: the first maximum */
    for (int i = 0; i < 100; i++) {                     /* top-p 0.5 of three equal: ids 0 and 1 only */
        int t = sampler_pick(&s, tie, 1, 0.5, i / 100.0);
        cr_expect_eq(t, i < 50 ? 0 : 1, "u=%d/100 -> %d", i, t);
    }
    const real nan3[3] = {NAN, 2, 1};
    cr_expect_eq(sampler_pick(&s, nan3, 0, 1, 0), 1);
    cr_expect_eq(sampler_pick(&s, nan3, 1, 1, 0), 1);
    sampler_free(&s);
    double lo = 1, hi = 0;
    for (int i = 0; i < 1000; i++) {
        double u = sample_uniform(1, 2, (uint64_t)i);
        cr_assert(u >= 0 && u < 1);
        lo = fmin(lo, u), hi = fmax(hi, u);
    }
    cr_expect(lo < 0.01 && hi > 0.99, "1000 draws span [%g, %g]", lo, hi);
    cr_expect_neq(sample_uniform(1, 0, 5), sample_uniform(1, 1, 5));
    cr_expect_neq(sample_uniform(1, 0, 5), sample_uniform(2, 0, 5));
}
