/* test_short_conv.c -- the short convolution (model.short_conv = 4; off by default) as every architecture has
 * it: one initialisation (U(-1/sqrt K, 1/sqrt K)) and no weight decay for every architecture's filters; and
 * RWKV-7's: the model round-trips through .safetensors, .pth and ckpt.bin bit for bit (dims from the conv
 * tensor's shape, logits of the reloaded model equal), a file without conv loads as conv = 0, a misshapen
 * conv tensor is refused, and through the binary: config accepts it, train / info / export (with its note) /
 * evaltask / trace work on it. The gradients, recurrent == sequence and chunked == unchunked are
 * tests/grad_model.c's (RWKV-6, DeltaNet: grad_rwkv6.c, grad_deltanet.c). */
#include <criterion/criterion.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ckpt.h"
#include "config.h"
#include "model_io.h"
#include "rwkv7.h"
#include "testutil.h"

static char tmpdir[256];
static char output[16384]; /* stdout + stderr of the last cli() call */
static void mk_tmp(void) { cr_assert(test_mkdtemp(tmpdir, sizeof tmpdir, "shortconv") == 0); }
static void rm_tmp(void) { test_rmtree(tmpdir); }
TestSuite(short_conv, .init = mk_tmp, .fini = rm_tmp, .timeout = 300);

/* `rwkvlab ARGS` ("@" in ARGS stands for the temporary directory): exit status, output in `output` */
TEST_CLI_RUNNER(cli, output, tmpdir, "OMP_NUM_THREADS=2")

enum { V = 13, B = 2, T = 9 };

/* Every architecture with model.short_conv = 4: its conv filters (the [C|CV, 4] tensors named *conv*) are
 * drawn from U(-1/2, 1/2) (bounded by 1/sqrt(4), and spread over it: a narrower init such as N(0, 0.02) fails)
 * and get no weight decay; the other tensors are not *conv*. */
Test(short_conv, one_init_and_decay_rule_for_every_arch) {
    int narchs = 0;
    for (const ModelArch *const *a = model_archs; *a; a++, narchs++) {
        RunConfig c;
        config_defaults(&c);
        Err err = {{0}};
        char set[128];
        const char *sets[] = {set, "model.short_conv=4", "model.d_model=32", "model.head_size=8", "model.layers=2",
                              "model.eig_range=standard"};
        snprintf(set, sizeof set, "model.arch=%s", (*a)->name);
        for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
            cr_assert_eq(config_set(&c, sets[i], &err), 0, "%s: %s", sets[i], err.msg);
        cr_assert_eq(config_validate(&c, &err), 0, "%s: %s", (*a)->name, err.msg);
        char dims[512];
        cr_assert((*a)->dims_size <= sizeof dims);
        cr_assert_eq((*a)->dims_from_config(dims, &c, 11, &err), 0, "%s: %s", (*a)->name, err.msg);
        Model *m = model_create(*a, dims, 0);
        gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
        gsl_rng_set(rng, 5);
        model_init(m, rng, &c);
        gsl_rng_free(rng);
        int nconv = 0;
        for (int i = 0; i < m->ntensors; i++) {
            const ParamTensor *p = &m->tensors[i];
            if (!strstr(p->name, "conv")) continue;
            nconv++;
            double mx = 0;
            for (size_t e = 0; e < p->numel; e++) mx = fmax(mx, fabs(m->params[p->offset + e]));
            cr_expect(p->ndim == 2 && p->shape[1] == 4, "%s %s: shape [%d, %d], want [C, 4]", (*a)->name, p->name,
                      p->shape[0], p->shape[1]);
            cr_expect(mx <= 0.5 && mx > 0.4, "%s %s: max |w| = %.3g, want U(-0.5, 0.5) (max near 0.5)", (*a)->name,
                      p->name, mx);
            cr_expect(!p->decay, "%s %s: a conv filter gets weight decay", (*a)->name, p->name);
        }
        printf("%-15s short_conv=4: %d conv filters, U(-1/2, 1/2), no weight decay\n", (*a)->name, nconv);
        cr_expect_eq(nconv, 3 * 2, "%s: %d conv tensors, want r/q, k, v in each of 2 layers", (*a)->name, nconv);
        model_free(m);
    }
    cr_expect_eq(narchs, 4, "the registry has %d architectures; this test knows 4", narchs);
}

/* official init, then every tensor perturbed (the official init zeroes some), conv K = 4 */
static Model *conv_model(int conv) {
    Rwkv7Dims d = {.V = V, .C = 32, .L = 2, .N = 8, .Dw = 8, .Da = 8, .Dv = 8, .Dg = 8, .has_ln0 = 1, .conv = conv};
    Model *m = model_create(&model_rwkv7, &d, 0);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 31);
    model_init(m, rng, NULL);
    for (size_t i = 0; i < m->nparams; i++) m->params[i] += (real)(0.1 * (2 * gsl_rng_uniform(rng) - 1));
    gsl_rng_free(rng);
    return m;
}

static const real *logits_of(Model *m) {
    static int tok[B * T];
    for (int i = 0; i < B * T; i++) tok[i] = (i * 7 + 3) % V;
    ModelFwd f = {.K = 4};
    return model_forward(m, tok, B, T, &f);
}

/* the model written to `name` and read back: same architecture, conv = 4, every parameter and logit equal */
static void round_trip(Model *m, const char *name) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    Err err;
    if (strstr(name, ".bin")) cr_assert_eq(ckpt_save_model(p, m, 7, "", &err), 0, "%s", err.msg);
    else cr_assert_eq(model_export(m, p, TF_F32, &err), 0, "%s", err.msg);
    Model *r = NULL;
    cr_assert_eq(model_load(p, &r, &err), 0, "%s: %s", name, err.msg);
    cr_assert_eq(r->arch, &model_rwkv7, "%s: loaded as %s", name, r->arch->name);
    const Rwkv7Dims *d = r->dims;
    cr_expect_eq(d->conv, 4, "%s: conv = %d after loading, want 4", name, d->conv);
    cr_assert_eq(r->nparams, m->nparams, "%s: %zu parameters, want %zu", name, r->nparams, m->nparams);
    cr_expect(model_find(r, "blocks.1.att.v_conv.weight"), "%s: no blocks.1.att.v_conv.weight", name);
    cr_expect(memcmp(r->params, m->params, m->nparams * sizeof(real)) == 0, "%s: parameters differ", name);
    real *a = malloc((size_t)B * T * V * sizeof(real));
    memcpy(a, logits_of(m), (size_t)B * T * V * sizeof(real));
    const real *b = logits_of(r);
    double maxd = 0;
    for (size_t i = 0; i < (size_t)B * T * V; i++) maxd = fmax(maxd, fabs(a[i] - b[i]));
    printf("rwkv7 short_conv=4 %-18s round trip: %zu params equal, max |logit diff| %.3g\n", name, m->nparams, maxd);
    cr_expect(maxd == 0, "%s: logits differ by %g after the round trip", name, maxd);
    free(a);
    model_free(r);
}

Test(short_conv, export_load_round_trip) {
    Model *m = conv_model(4);
    /* the conv changes the model: the same weights without it give other logits */
    Model *m0 = conv_model(0);
    real *l4 = malloc((size_t)B * T * V * sizeof(real));
    memcpy(l4, logits_of(m), (size_t)B * T * V * sizeof(real));
    const real *l0 = logits_of(m0);
    double d = 0;
    for (size_t i = 0; i < (size_t)B * T * V; i++) d = fmax(d, fabs(l4[i] - l0[i]));
    cr_expect(d > 1e-4, "logits with and without the conv agree (%g): is it applied?", d);
    free(l4);
    round_trip(m, "m.safetensors");
    round_trip(m, "m.pth");
    round_trip(m, "ckpt.bin");
    /* and a file without the conv still loads as conv = 0 */
    char p[600];
    snprintf(p, sizeof p, "%s/plain.safetensors", tmpdir);
    Err err;
    cr_assert_eq(model_export(m0, p, TF_F32, &err), 0, "%s", err.msg);
    Model *r = NULL;
    cr_assert_eq(model_load(p, &r, &err), 0, "%s", err.msg);
    cr_expect_eq(((const Rwkv7Dims *)r->dims)->conv, 0);
    cr_expect_eq(r->nparams, m0->nparams);
    model_free(r), model_free(m0), model_free(m);
}

/* A conv tensor of the wrong shape is refused with a message naming it. */
Test(short_conv, misshapen_conv_tensor_is_refused) {
    Model *m = conv_model(4);
    const ParamTensor *t = model_find(m, "blocks.0.att.r_conv.weight");
    cr_assert(t);
    ((ParamTensor *)t)->shape[0] = 16; /* [16, 4] instead of [C = 32, 4]: the writer takes the table's shape */
    ((ParamTensor *)t)->shape[1] = 8;
    char p[600];
    snprintf(p, sizeof p, "%s/bad.safetensors", tmpdir);
    Err err;
    cr_assert_eq(model_export(m, p, TF_F32, &err), 0, "%s", err.msg);
    Model *r = NULL;
    cr_expect_neq(model_load(p, &r, &err), 0, "a [16, 8] att.r_conv.weight loaded");
    cr_expect(strstr(err.msg, "blocks.0.att.r_conv.weight") && strstr(err.msg, "[C, K]"), "%s", err.msg);
    if (r) model_free(r);
    model_free(m);
}

#define TRAIN_ARGS "configs/demo_s5_swaps.ini --set model.layers=1 --set model.d_model=32 --set model.head_size=8 " \
                   "--set train.steps=30 --set train.batch=8 --set train.warmup=5 --set train.eval_every=30 "     \
                   "--set task.test_lens=8 --set task.test_size=16"

Test(short_conv, trains_exports_traces) {
    cr_assert_eq(cli("config " TRAIN_ARGS " --set model.short_conv=4"), 0, "%s", output);
    cr_assert_eq(cli("train " TRAIN_ARGS " --set model.short_conv=4 --quiet --out @/conv"), 0, "%s", output);
    cr_assert_eq(cli("info @/conv/ckpt.bin"), 0, "%s", output);
    cr_expect(strstr(output, "RWKV-7 (x070)") && strstr(output, "conv=4") &&
              strstr(output, "blocks.0.att.k_conv.weight"), "%s", output);
    /* C=32, L=1, N=8: 4*8*8 = 256 matrix numbers + 2C token shift + 3*(4-1)*C conv history = 352 */
    cr_expect(strstr(output, "recurrent state per sequence: 608 numbers (matrix state L*H*Nk*Nv = 1*4*8*8 = 256, plus "
                             "352 in vectors)"), "%s", output);
    cr_assert_eq(cli("export @/conv/ckpt.bin --to @/conv.safetensors"), 0, "%s", output);
    cr_expect(strstr(output, "short convolution"), "export should say the official code does not apply the conv:\n%s",
              output);
    cr_assert_eq(cli("info @/conv.safetensors"), 0, "%s", output);
    cr_expect(strstr(output, "RWKV-7 (x070)") && strstr(output, "conv=4"), "%s", output);
    cr_assert_eq(cli("evaltask @/conv --lengths 8 --n 8"), 0, "%s", output);
    cr_assert_eq(cli("trace --model @/conv.safetensors --task s5:swaps --len 6 --out @/ct.h5"), 0, "%s", output);
}
