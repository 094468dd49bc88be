/* test_checkpoint.c -- released-format checkpoints through the loader and the fp32 engine:
 * the real trained reverse_L2_x070.pth (from the data directory) must reverse digit strings with every
 * digit right, in sequence and recurrent mode; export -> load round trips; bad files are rejected. */
#include <criterion/criterion.h>
#include <gsl/gsl_rng.h>
#include <hdf5.h>
#include <math.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model_io.h"
#include "rwkv7.h"
#include "testutil.h"

static const char *find_data(const char *rel) {
    static char buf[512];
    const char *roots[] = {"data", "../shared/data"};
    for (int i = 0; i < 2; i++) {
        snprintf(buf, sizeof buf, "%s/%s", roots[i], rel);
        if (access(buf, R_OK) == 0) return buf;
    }
    return NULL;
}

static int argmax(const real *x, int n) {
    int a = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[a]) a = i;
    return a;
}

Test(checkpoint, real_reverse_model_reverses_digits) {
    const char *p = find_data("models/reverse_L2_x070.pth");
    if (!p) cr_skip_test("reverse_L2_x070.pth not in data/ or ../shared/data/ (run `make data`)");
    Model *mm;
    Err e;
    cr_assert_eq(model_load(p, &mm, &e), 0, "%s", e.msg);
    cr_assert_eq(mm->arch, &model_rwkv7);
    Rwkv7 *m = mm->self;
    cr_expect_eq(m->d.L, 2);
    cr_expect_eq(m->d.C, 32);
    cr_expect_eq(m->d.N, 16);
    cr_expect_eq(m->d.V, 12);
    cr_expect_eq(m->d.has_ln0, 0);
    cr_expect_eq(m->d.bias, RWKV7_BIAS_O | RWKV7_BIAS_HEAD);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 2026);
    long wrong = 0, total = 0, wrong_rec = 0;
    int seq[128];
    real *state = xcalloc(rwkv7_state_numel(&m->d, 1), sizeof(real));
    for (int n = 1; n <= 60; n++) {
        for (int i = 0; i < n; i++) seq[i] = (int)gsl_rng_uniform_int(rng, 10);
        seq[n] = 10; /* ',' */
        for (int i = 0; i < n; i++) seq[n + 1 + i] = seq[n - 1 - i];
        seq[2 * n + 1] = 11; /* '#' */
        int T = 2 * n + 2;
        const real *lg = rwkv7_forward(m, seq, 1, T, 16, NULL, NULL, NULL);
        for (int t = n; t <= 2 * n; t++) { /* after ',' and each reversed digit: the next token */
            total++;
            wrong += argmax(lg + (size_t)t * 12, 12) != seq[t + 1];
        }
        if (n % 15 == 0) { /* recurrent mode on a few lengths */
            memset(state, 0, rwkv7_state_numel(&m->d, 1) * sizeof(real));
            for (int t = 0; t < T; t++) {
                const real *l1 = rwkv7_forward(m, &seq[t], 1, 1, 1, state, state, NULL);
                if (t >= n && t <= 2 * n) wrong_rec += argmax(l1, 12) != seq[t + 1];
            }
        }
    }
    printf("reverse_L2_x070: %ld of %ld reversed digits (and '#') wrong; recurrent mode: %ld wrong\n", wrong, total,
           wrong_rec);
    cr_expect_eq(wrong, 0, "%ld of %ld positions wrong", wrong, total);
    cr_expect_eq(wrong_rec, 0);
    free(state);
    gsl_rng_free(rng);
    model_free(mm);
}

/* export to .pth and .safetensors in f32 and reload: identical parameters; bf16 within rounding */
Test(checkpoint, export_roundtrip) {
    Rwkv7Dims d = {.V = 13, .C = 32, .L = 2, .N = 16, .Dw = 8, .Da = 16, .Dv = 8, .Dg = 24, .has_ln0 = 1,
                   .bias = RWKV7_BIAS_O | RWKV7_BIAS_HEAD};
    Model *mm = model_create(&model_rwkv7, &d, 1);
    Rwkv7 *m = mm->self;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    model_init(mm, rng, NULL);
    for (size_t i = 0; i < m->nparams; i++) m->params[i] += (real)(0.01 * (gsl_rng_uniform(rng) - 0.5));
    char dir[] = "/tmp/rwkvlab_export_XXXXXX";
    cr_assert(mkdtemp(dir));
    const char *exts[] = {"pth", "safetensors"};
    for (int k = 0; k < 2; k++)
        for (int bf = 0; bf < 2; bf++) {
            char p[256];
            snprintf(p, sizeof p, "%s/m%d.%s", dir, bf, exts[k]);
            Err e;
            cr_assert_eq(model_export(mm, p, bf ? TF_BF16 : TF_F32, &e), 0, "%s", e.msg);
            Model *rm;
            cr_assert_eq(model_load(p, &rm, &e), 0, "%s: %s", p, e.msg);
            Rwkv7 *r = rm->self;
            cr_assert_eq(r->nparams, m->nparams);
            cr_expect_eq(memcmp(&r->d, &m->d, sizeof d), 0, "dims differ after %s", p);
            double worst = 0;
            for (size_t i = 0; i < m->nparams; i++) {
                double rel = fabs(r->params[i] - m->params[i]) / fmax(fabs(m->params[i]), 1e-30);
                if (m->params[i] != 0 && rel > worst) worst = rel;
            }
            printf("export %s %s: worst relative parameter change %.3g\n", exts[k], bf ? "bf16" : "f32", worst);
            if (bf) cr_expect(worst <= 1.0 / 256, "bf16 rounding error %.3g > 2^-8", worst);
            else cr_expect(worst == 0, "f32 round trip not exact (%.3g)", worst);
            model_free(rm);
            unlink(p);
        }
    rmdir(dir);
    gsl_rng_free(rng);
    model_free(mm);
}

Test(checkpoint, rejects_non_rwkv7_files) {
    char p[] = "/tmp/rwkvlab_bad_XXXXXX";
    int fd = mkstemp(p);
    cr_assert(fd >= 0);
    (void)!write(fd, "garbage that is neither a zip nor safetensors", 46);
    close(fd);
    Model *m;
    Err e = {{0}};
    cr_expect_neq(model_load(p, &m, &e), 0);
    cr_expect(strlen(e.msg) > 10, "no message");
    printf("garbage file: %s\n", e.msg);
    unlink(p);
    cr_expect_neq(model_load("/nonexistent/model.pth", &m, &e), 0);
}

/* The checkpoint commands through the CLI: info, logits (sequence == recurrent), trace (HDF5). */
Test(checkpoint, cli_info_logits_trace) {
    const char *p = find_data("models/reverse_L2_x070.pth");
    if (!p) cr_skip_test("reverse_L2_x070.pth not in data/ or ../shared/data/ (run `make data`)");
    char model[600];
    snprintf(model, sizeof model, "%s", p);
    const char *bin = rwkvlab_bin();
    char dir[] = "/tmp/rwkvlab_cli_XXXXXX", cmd[2048];
    cr_assert(mkdtemp(dir));
    snprintf(cmd, sizeof cmd, "%s info %s > %s/info.txt", bin, model, dir);
    cr_assert_eq(sh(cmd), 0);
    const char *seqs[2] = {"", " --recurrent"};
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd, "%s logits --model %s --tokens 1,2,3,10,3,2,1,11 --out %s/l%d.npy%s", bin, model, dir,
                 i, seqs[i]);
        cr_assert_eq(sh(cmd), 0, "%s", cmd);
    }
    /* .npy files: same header, logits agree to rounding */
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/l0.npy", dir);
    snprintf(b, sizeof b, "%s/l1.npy", dir);
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    cr_assert(fa && fb);
    unsigned char ha[128], hb[128];
    cr_assert_eq(fread(ha, 1, 128, fa), 128);
    cr_assert_eq(fread(hb, 1, 128, fb), 128);
    cr_expect(!memcmp(ha, hb, 128) && strstr((char *)ha + 10, "(8, 12)"), "npy header: %.80s", ha + 10);
    float la[96], lb[96];
    cr_assert_eq(fread(la, 4, 96, fa), 96);
    cr_assert_eq(fread(lb, 4, 96, fb), 96);
    fclose(fa), fclose(fb);
    double md = 0;
    for (int i = 0; i < 96; i++) md = fmax(md, fabs(la[i] - lb[i]));
    cr_expect(md < 1e-4, "sequence vs recurrent logits differ by %g", md);
    /* bad token and bad list are clear errors */
    snprintf(cmd, sizeof cmd, "%s logits --model %s --tokens 1,99 --out %s/bad.npy 2>/dev/null", bin, model, dir);
    cr_expect_eq(sh(cmd), 1);
    snprintf(cmd, sizeof cmd, "%s logits --model %s --tokens 1,x --out %s/bad.npy 2>/dev/null", bin, model, dir);
    cr_expect_eq(sh(cmd), 1);
    snprintf(a, sizeof a, "%s/bad.npy", dir);
    cr_expect(access(a, F_OK) != 0, "a result file was written for bad input");
    /* trace: the training-probe schema */
    snprintf(cmd, sizeof cmd, "%s trace --model %s --tokens 1,2,3,10,3,2,1 --out %s/t.h5 > /dev/null", bin, model, dir);
    cr_assert_eq(sh(cmd), 0);
    snprintf(a, sizeof a, "%s/t.h5", dir);
    hid_t f = H5Fopen(a, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0, "cannot open %s", a);
    const char *paths[] = {"/trajectories", "/trajectories/probe0", "/trajectories/probe0/layer1",
                           "/trajectories/probe0/layer1/eig_real", "/trajectories/probe0/layer0/state",
                           "/trajectories/probe0/tokens"};
    for (int i = 0; i < 6; i++) cr_expect(H5Lexists(f, paths[i], H5P_DEFAULT) > 0, "trace output lacks %s", paths[i]);
    H5Fclose(f);
    /* trace from a file of ids, and from a synthetic task sequence (labels as targets) */
    snprintf(a, sizeof a, "%s/ids.txt", dir);
    FILE *fi = fopen(a, "w");
    fputs("1, 2 3\n10\n", fi);
    fclose(fi);
    snprintf(cmd, sizeof cmd, "%s trace --model %s --tokens %s --out %s/t2.h5 > /dev/null", bin, model, a, dir);
    cr_expect_eq(sh(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s trace --model %s --task s3 --len 10 --out %s/t3.h5 > /dev/null", bin, model, dir);
    cr_expect_eq(sh(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s trace --model %s --task nosuch --out %s/t4.h5 2>/dev/null", bin, model, dir);
    cr_expect_eq(sh(cmd), 1);
    snprintf(a, sizeof a, "%s/t2.h5", dir);
    f = H5Fopen(a, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0);
    hid_t ds = H5Dopen2(f, "/trajectories/probe0/tokens", H5P_DEFAULT);
    int tk[4] = {0};
    H5Dread(ds, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, tk);
    cr_expect(tk[0] == 1 && tk[1] == 2 && tk[2] == 3 && tk[3] == 10, "tokens read from the file: %d %d %d %d", tk[0],
              tk[1], tk[2], tk[3]);
    H5Dclose(ds), H5Fclose(f);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    (void)!system(cmd);
}
