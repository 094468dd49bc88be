/* test_rwkv6.c -- RWKV-6 (x060) in the fp32 build, end to end: the official initialisation against the
 * formulas of baselines.md; loss halves on a fixed batch; `init --arch rwkv6` -> info / logits / export
 * (.pth and .safetensors) / trace round trip through the CLI, the file recognised as RWKV-6 from its keys;
 * logits and state of a small BF16 model match an independent Python implementation (rwkv6_ref.py);
 * `train` runs (and resumes bit-identically), its trajectories hold the decay and the eigenvalues of the
 * diagonal transition (= the decays); with model.short_conv = 4 the conv weights are trained, stored, exported
 * and recognised from the file; config and train refuse eig_range = extended. */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "model_io.h"
#include "optim.h"
#include "rwkv6.h"
#include "task.h"
#include "testutil.h"

static char tmpdir[256];
static void mk_tmp(void) { cr_assert(test_mkdtemp(tmpdir, sizeof tmpdir, "rwkv6") == 0); }
static void rm_tmp(void) { test_rmtree(tmpdir); }
TestSuite(rwkv6, .init = mk_tmp, .fini = rm_tmp, .timeout = 300);

static char output[16384]; /* stdout + stderr of the last cli() call */

/* `rwkvlab ARGS` ("@" in ARGS stands for the temporary directory): exit status, output in `output` */
TEST_CLI_RUNNER(cli, output, tmpdir, "")

/* a file of the temporary directory, whole (asserts it can be read) */
static char *slurp(const char *name, size_t *n) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    char *b = test_slurp(p, n);
    cr_assert(b, "cannot read %s", p);
    return b;
}
static int same_file(const char *a, const char *b) {
    size_t na, nb;
    char *pa = slurp(a, &na), *pb = slurp(b, &nb);
    int same = na == nb && !memcmp(pa, pb, na);
    free(pa), free(pb);
    return same;
}

/* ---- official initialisation: baselines.md's list, value by value ------------------------------------ */
Test(rwkv6, official_init_follows_the_spec) {
    const int C = 32, L = 3, N = 8, V = 40;
    Rwkv6Dims d = {.V = V, .C = C, .L = L, .N = N, .Dm = 4, .Dd = 6, .has_ln0 = 1};
    Model *mm = model_create(&model_rwkv6, &d, 0);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 1);
    model_init(mm, rng, NULL);
    Rwkv6 *m = mm->self;
    cr_assert_eq(m->d.F, 96, "F = int(3.5*32)//32*32 = 96, got %d", m->d.F);
    double worst = 0;
#define NEAR(a, b) worst = fmax(worst, fabs((double)(a) - (b)))
    for (int l = 0; l < L; l++) {
        const Rwkv6Layer *P = &m->w.layer[l];
        double r0 = (double)l / (L - 1), r1 = 1.0 - (double)l / L;
        for (int n = 0; n < C; n++) {
            double ddd = (double)n / C, x = (double)n / (C - 1);
            NEAR(P->maa_x[n], 1 - pow(ddd, r1)), NEAR(P->maa_w[n], 1 - pow(ddd, r1)), NEAR(P->maa_k[n], 1 - pow(ddd, r1));
            NEAR(P->maa_v[n], 1 - (pow(ddd, r1) + 0.3 * r0));
            NEAR(P->maa_r[n], 1 - pow(ddd, 0.5 * r1)), NEAR(P->maa_g[n], 1 - pow(ddd, 0.5 * r1));
            NEAR(P->decay[n], -6 + 5 * pow(x, 0.7 + 1.3 * r0));
            NEAR(P->faaaa[n], r0 * (1 - x) + ((n + 1) % 3 - 1) * 0.1);
            NEAR(P->f_maa_k[n], 1 - pow(ddd, pow(r1, 3))), NEAR(P->f_maa_r[n], 1 - pow(ddd, pow(r1, 3)));
            NEAR(P->lnx_w[n], pow((1.0 + l) / L, 0.7)), NEAR(P->lnx_b[n], 0);
            NEAR(P->ln1_w[n], 1), NEAR(P->ln2_w[n], 1), NEAR(P->ln1_b[n], 0);
        }
        double zero = 0, w2max = 0, dw2max = 0;
        for (int i = 0; i < C * 5 * 4; i++) zero += fabs(P->maa_w1[i]), w2max = fmax(w2max, fabs(P->maa_w2[i]));
        for (int i = 0; i < C * 6; i++) zero += fabs(P->decay_w1[i]), dw2max = fmax(dw2max, fabs(P->decay_w2[i]));
        for (int i = 0; i < C * C; i++) zero += fabs(P->Wo[i]) + fabs(P->f_Wr[i]);
        for (int i = 0; i < C * m->d.F; i++) zero += fabs(P->f_Wv[i]);
        cr_expect(zero == 0, "layer %d: time_maa_w1, time_decay_w1, output, ffn.receptance, ffn.value must be 0", l);
        cr_expect(w2max > 0.005 && w2max <= 0.01 && dw2max > 0.005 && dw2max <= 0.01,
                  "time_maa_w2 / time_decay_w2 must be U(-0.01, 0.01): max |.| %g, %g", w2max, dw2max);
        /* orthogonal with gains: W W^T = gain^2 I (receptance, value 1; key, gate 0.1); ffn.key [F,C]: W^T W = I */
        const real *Ws[4] = {P->Wr, P->Wv, P->Wk, P->Wg};
        const double gains[4] = {1, 1, 0.1, 0.1};
        for (int q = 0; q < 4; q++)
            for (int i = 0; i < C; i++)
                for (int j = 0; j < C; j++) {
                    double s = 0;
                    for (int c = 0; c < C; c++) s += (double)Ws[q][i * C + c] * Ws[q][j * C + c];
                    NEAR(s / (gains[q] * gains[q]), i == j);
                }
        for (int i = 0; i < C; i++)
            for (int j = 0; j < C; j++) {
                double s = 0;
                for (int f = 0; f < m->d.F; f++) s += (double)P->f_Wk[f * C + i] * P->f_Wk[f * C + j];
                NEAR(s, i == j);
            }
    }
    /* head [V,C], V > C: gain 0.5 sqrt(V/C), columns orthogonal; emb U(-1e-4, 1e-4) */
    double g2 = 0.25 * V / C, emax = 0;
    for (int i = 0; i < C; i++)
        for (int j = 0; j < C; j++) {
            double s = 0;
            for (int v = 0; v < V; v++) s += (double)m->w.head[v * C + i] * m->w.head[v * C + j];
            NEAR(s / g2, i == j);
        }
    for (int i = 0; i < V * C; i++) emax = fmax(emax, fabs(m->w.emb[i]));
    cr_expect(emax > 5e-5 && emax <= 1e-4, "emb must be U(-1e-4, 1e-4): max |.| = %g", emax);
#undef NEAR
    printf("official init vs baselines.md formulas: max |diff| %.3g (fp32)\n", worst);
    cr_expect(worst < 2e-5, "official init differs from the spec by %g", worst);
    gsl_rng_free(rng);
    model_free(mm);
}

/* ---- the independent reference (tests/fixtures/rwkv6_ref.py, plain Python in float64 from baselines.md) -- */
#define FIX "tests/fixtures/rwkv6/tiny_bf16"

static double *read_numbers(const char *path, long *n) {
    FILE *f = fopen(path, "r");
    cr_assert(f, "missing fixture %s (regenerate: python3 tests/fixtures/rwkv6_ref.py)", path);
    long cap = 4096;
    double *v = malloc(cap * sizeof(double));
    *n = 0;
    while (*n < cap && fscanf(f, " %lf ,", &v[*n]) == 1) (*n)++;
    fclose(f);
    return v;
}

/* max |a - ref| / std(ref) */
static double rel_err(const real *a, const double *ref, long n) {
    double mu = 0, var = 0, worst = 0;
    for (long i = 0; i < n; i++) mu += ref[i];
    mu /= n;
    for (long i = 0; i < n; i++) var += (ref[i] - mu) * (ref[i] - mu);
    for (long i = 0; i < n; i++) worst = fmax(worst, fabs(a[i] - ref[i]));
    return worst / sqrt(var / n);
}

/* Our fp32 engine reproduces the reference's logits (sequence and recurrent mode) and final state (layout
 * [att x_prev | S [key][value] | ffn x_prev] per layer) within 1e-4 of their std, like RWKV-7's fixtures. */
Test(rwkv6, matches_the_python_reference) {
    Model *m;
    Err e;
    cr_assert_eq(model_load(FIX ".safetensors", &m, &e), 0, "%s", e.msg);
    cr_assert_str_eq(m->arch->name, "rwkv6", "the fixture was not recognised as RWKV-6");
    const Rwkv6Dims *d = &((Rwkv6 *)m->self)->d;
    cr_assert(d->V == 10 && d->C == 12 && d->L == 2 && d->N == 4 && d->Dm == 2 && d->Dd == 3 && d->has_ln0 && d->F == 32,
              "dims from the shapes: V=%d C=%d L=%d N=%d Dm=%d Dd=%d", d->V, d->C, d->L, d->N, d->Dm, d->Dd);
    long nt, nl, ns;
    double *tk = read_numbers(FIX ".tokens.txt", &nt), *ref = read_numbers(FIX ".logits.txt", &nl);
    double *sref = read_numbers(FIX ".state.txt", &ns);
    const int T = (int)nt, V = d->V;
    cr_assert(nl == (long)T * V && (size_t)ns == model_state_numel(m, 1), "fixture sizes T=%d logits %ld state %ld", T,
              nl, ns);
    int tok[64];
    for (int t = 0; t < T; t++) tok[t] = (int)tk[t];
    real *state = calloc(ns, sizeof(real)), *s1 = calloc(ns, sizeof(real)), *rec = malloc(nl * sizeof(real));
    ModelFwd f = {.K = 4, .state_out = state};
    double r_seq = rel_err(model_forward(m, tok, 1, T, &f), ref, nl);
    for (int t = 0; t < T; t++) {
        ModelFwd f1 = {.K = 1, .state_in = s1, .state_out = s1};
        memcpy(rec + (size_t)t * V, model_forward(m, &tok[t], 1, 1, &f1), V * sizeof(real));
    }
    double r_rec = rel_err(rec, ref, nl), r_state = rel_err(state, sref, ns), r_s1 = rel_err(s1, sref, ns);
    printf("RWKV-6 vs the Python reference (bf16 weights, T=%d): max|diff|/std logits seq %.2e, recurrent %.2e, "
           "state %.2e / %.2e (limit 1e-4)\n", T, r_seq, r_rec, r_state, r_s1);
    cr_expect(r_seq <= 1e-4, "sequence logits differ from the reference: %.3g", r_seq);
    cr_expect(r_rec <= 1e-4, "recurrent logits differ from the reference: %.3g", r_rec);
    cr_expect(r_state <= 1e-4 && r_s1 <= 1e-4, "final state differs from the reference: %.3g / %.3g", r_state, r_s1);
    free(tk), free(ref), free(sref), free(state), free(s1), free(rec);
    model_free(m);
}

/* ---- training through the interface --------------------------------------------------------------------- */
static void small_cfg(RunConfig *c) {
    config_defaults(c);
    const char *sets[] = {"experiment.name=t6", "model.arch=rwkv6", "model.layers=2", "model.d_model=32",
                          "model.head_size=16", "model.lora_mix=8", "model.lora_w=16", "task.name=s3",
                          "task.variant=full", "task.train_len=12", "task.test_lens=12,24", "task.test_size=16",
                          "train.batch=8", "train.warmup=2", "train.eval_every=5", "train.log_every=1",
                          "train.ckpt_every=4", "train.chunk=5", "log.trajectories=1"};
    Err e;
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) cr_assert(config_set(c, sets[i], &e) == 0, "%s", e.msg);
}

Test(rwkv6, loss_decreases_on_fixed_batch) {
    RunConfig c;
    small_cfg(&c);
    Err e;
    Task *t = task_create(&c, &e);
    cr_assert(t);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 3);
    Batch b;
    batch_alloc(&b, 8, 12);
    task_sample(t, rng, &b);
    char dims[1024];
    cr_assert_eq(model_rwkv6.dims_from_config(dims, &c, task_vocab(t), &e), 0, "%s", e.msg);
    Model *m = model_create(&model_rwkv6, dims, 1);
    model_init(m, rng, &c);
    cr_expect_eq(model_find(m, "blocks.1.att.time_decay")->lr_mult, 2.0, "train.w0_lr_mult reaches time_decay");
    cr_expect_eq(model_find(m, "blocks.1.att.time_faaaa")->lr_mult, 1.0);
    AdamWConfig ac = {.lr = 3e-3, .steps = 60, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8, .grad_clip = 1.0};
    AdamW o;
    adamw_init(&o, &ac, m->nparams);
    double first = 0, last = 0;
    for (int s = 0; s < 60; s++) {
        memset(m->grads, 0, m->nparams * sizeof(real));
        ModelFwd f = {.K = 4};
        model_forward(m, b.inputs, 8, 12, &f);
        long nc, cnt;
        double loss = model_loss(m, b.targets, b.mask, NULL, &nc, &cnt);
        model_backward(m);
        adamw_step(&o, m->params, m->grads, m->tensors, m->ntensors, NULL, NULL);
        if (s == 0) first = loss;
        last = loss;
    }
    printf("RWKV-6 fixed batch: loss %.4f -> %.4f after 60 AdamW steps (must at least halve)\n", first, last);
    cr_expect(last < 0.5 * first, "loss %g -> %g", first, last);
    adamw_free(&o), model_free(m), batch_free(&b), task_free(t), gsl_rng_free(rng);
}

/* `info` lists tensor NAME with SHAPE (its line in `output`) */
static int has_tensor(const char *name, const char *shape) {
    char key[128];
    snprintf(key, sizeof key, "  %s ", name);
    const char *p = strstr(output, key), *e = p ? strchr(p, '\n') : NULL;
    if (!p || !e) return 0;
    const char *q = strstr(p, shape);
    return q && q < e;
}

/* ---- the CLI round trip ---------------------------------------------------------------------------------- */
Test(rwkv6, cli_init_info_logits_export_trace) {
    cr_assert_eq(cli("init --arch rwkv6 --to @/m.safetensors --vocab 20 --layers 2 --d-model 32 --head-size 8 "
                     "--dtype f32 --noise 0.1"), 0, "%s", output);
    cr_expect(strstr(output, "RWKV-6 (x060)"), "%s", output);
    cr_assert_eq(cli("info @/m.safetensors"), 0, "%s", output);
    cr_expect(strstr(output, "architecture: RWKV-6 (x060) (model.arch = rwkv6)"), "%s", output);
    cr_expect(strstr(output, "dims: V=20 C=32 L=2 N=8 Dm=32 Dd=64 has_ln0=1"), "%s", output);
    /* state: L*H*N*N = 2*4*8*8 = 512 matrix numbers + 2 * 2 * C token-shift numbers */
    cr_expect(strstr(output, "recurrent state per sequence: 640 numbers (matrix state L*H*Nk*Nv = 2*4*8*8 = 512, "
                             "plus 128 in vectors)"), "%s", output);
    cr_expect(has_tensor("blocks.1.att.time_maa_w2", "[5, 32, 32]") && has_tensor("blocks.0.att.time_faaaa", "[4, 8]") &&
              has_tensor("blocks.1.att.time_maa_x", "[1, 1, 32]") && has_tensor("blocks.1.ffn.key.weight", "[96, 32]"),
              "%s", output);
    cr_expect(strstr(output, "traced per step: decay"), "%s", output);
    cr_assert_eq(cli("logits --model @/m.safetensors --tokens 1,5,7,19,0 --out @/a.npy"), 0, "%s", output);
    /* export to a torch .pth (f32: exact) and back to safetensors: same file, same logits */
    cr_assert_eq(cli("export @/m.safetensors --to @/e.pth --dtype f32"), 0, "%s", output);
    cr_assert_eq(cli("info @/e.pth"), 0, "%s", output);
    cr_expect(strstr(output, "RWKV-6 (x060)"), "%s", output);
    cr_assert_eq(cli("export @/e.pth --to @/e.safetensors --dtype f32"), 0, "%s", output);
    cr_expect(same_file("m.safetensors", "e.safetensors"), "safetensors -> pth -> safetensors changed the file");
    cr_assert_eq(cli("logits --model @/e.pth --tokens 1,5,7,19,0 --out @/b.npy"), 0, "%s", output);
    cr_expect(same_file("a.npy", "b.npy"), "logits differ after the .pth round trip");
    cr_assert_eq(cli("trace --model @/e.pth --tokens 1,5,7,19,0 --out @/t.h5"), 0, "%s", output);
    /* a bf16 export (the release dtype) loads as RWKV-6 too */
    cr_assert_eq(cli("export @/m.safetensors --to @/h.pth --dtype bf16"), 0, "%s", output);
    cr_assert_eq(cli("info @/h.pth"), 0, "%s", output);
    cr_expect(strstr(output, "Dm=32 Dd=64"), "%s", output);
}

/* ---- train end to end --------------------------------------------------------------------------------- */
#define TRAIN_ARGS "configs/demo_s5_swaps.ini --set model.arch=rwkv6 --set model.eig_range=standard " \
                   "--set model.d_model=32 --set model.head_size=8 --set model.lora_mix=8 --set model.lora_w=16 " \
                   "--set task.train_len=8 --set task.test_lens=8,16 --set task.test_size=16 --set train.batch=8 " \
                   "--set train.steps=12 --set train.warmup=2 --set train.eval_every=6 --set train.ckpt_every=4 " \
                   "--set train.log_every=2 --set train.chunk=3 --set log.trajectories=1 --quiet"

static float *read_f32(const char *file, const char *ds, hsize_t dims[4], int *nd) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", tmpdir, file);
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0, "cannot open %s", p);
    hid_t d = H5Dopen2(f, ds, H5P_DEFAULT);
    cr_assert(d >= 0, "%s: no dataset %s", p, ds);
    hid_t s = H5Dget_space(d);
    *nd = H5Sget_simple_extent_ndims(s);
    H5Sget_simple_extent_dims(s, dims, NULL);
    hsize_t n = 1;
    for (int i = 0; i < *nd; i++) n *= dims[i];
    float *v = malloc(n * sizeof(float));
    cr_assert(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Sclose(s), H5Dclose(d), H5Fclose(f);
    return v;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

Test(rwkv6, train_runs_resumes_and_traces) {
    cr_assert_eq(cli("train " TRAIN_ARGS " --out @/full"), 0, "%s", output);
    size_t n;
    char *sum = slurp("full/summary.json", &n);
    cr_expect(strstr(sum, "rwkv6"), "summary.json does not name the architecture:\n%s", sum);
    free(sum);
    cr_assert_eq(cli("info @/full/ckpt.bin"), 0, "%s", output);
    cr_expect(strstr(output, "RWKV-6 (x060)") && strstr(output, "Dm=8 Dd=16"), "%s", output);
    cr_assert_eq(cli("evaltask @/full --lengths 8,32 --n 8"), 0, "%s", output);
    cr_assert_eq(cli("export @/full/ckpt.bin --to @/full.safetensors"), 0, "%s", output);
    cr_assert_eq(cli("trace --model @/full.safetensors --task s5:swaps --len 10 --out @/tr.h5"), 0, "%s", output);
    /* interrupted after step 6 (not a checkpoint step) and resumed: bit-identical checkpoint and optimizer */
    cr_assert_eq(cli("train " TRAIN_ARGS " --out @/split --stop-after 6"), 130, "%s", output);
    cr_assert_eq(cli("train --resume @/split --quiet"), 0, "%s", output);
    cr_expect(same_file("full/ckpt.bin", "split/ckpt.bin"), "ckpt.bin differs between the full and the resumed run");
    cr_expect(same_file("full/optim.bin", "split/optim.bin"), "optim.bin differs between the full and the resumed run");
    /* trajectories: the decay per channel, and the transition's eigenvalues, which for the diagonal
     * transition diag(w) are the decays of the head (sorted), all real */
    const char *files[] = {"full/run.h5", "tr.h5"};
    for (int fi = 0; fi < 2; fi++) {
        hsize_t dd[4], de[4], ds[4];
        int nd, ne, ns;
        float *w = read_f32(files[fi], "/trajectories/probe0/layer0/decay", dd, &nd);
        float *re = read_f32(files[fi], "/trajectories/probe0/layer0/eig_real", de, &ne);
        float *im = read_f32(files[fi], "/trajectories/probe0/layer0/eig_imag", de, &ne);
        float *st = read_f32(files[fi], "/trajectories/probe0/layer0/state", ds, &ns);
        cr_assert(nd == 2 && ne == 3 && ns == 4 && dd[1] == 32 && de[1] == 4 && de[2] == 8 && de[0] == dd[0],
                  "%s: shapes decay %dD, eig %dD", files[fi], nd, ne);
        double worst = 0, imax = 0;
        int inside = 1;
        for (hsize_t t = 0; t < dd[0]; t++)
            for (int h = 0; h < 4; h++) {
                float v[8], e[8];
                for (int i = 0; i < 8; i++) {
                    v[i] = w[t * 32 + h * 8 + i], e[i] = re[(t * 4 + h) * 8 + i];
                    inside &= v[i] > 0 && v[i] < 1;
                    imax = fmax(imax, fabs(im[(t * 4 + h) * 8 + i]));
                }
                qsort(v, 8, sizeof *v, cmp_float), qsort(e, 8, sizeof *e, cmp_float);
                for (int i = 0; i < 8; i++) worst = fmax(worst, fabs(v[i] - e[i]));
            }
        printf("%s: %d steps, eigenvalues vs decays max |diff| %.3g, max |imag| %.3g\n", files[fi], (int)dd[0], worst,
               imax);
        cr_expect(inside, "%s: decays outside (0,1)", files[fi]);
        cr_expect(worst <= 1e-6 && imax == 0, "%s: eigenvalues of diag(w) are not the decays", files[fi]);
        free(w), free(re), free(im), free(st);
    }
}

/* ---- refusals: what RWKV-6 does not have is an error in config and in train, before anything is written -- */
Test(rwkv6, config_and_train_refuse_extended_range) {
    static const struct { const char *set, *frag; } bad[] = {
        {"--set model.eig_range=extended", "eig_range = extended does not apply to model.arch = rwkv6"},
        {"--set model.eig_range=standard --set model.d_model=8 --set model.head_size=8", "too small for RWKV-6"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_expect_eq(cli("config configs/demo_s5_swaps.ini --set model.arch=rwkv6 %s", bad[i].set), 1, "%s", output);
        cr_expect(strstr(output, bad[i].frag), "config %s: expected '%s' in:\n%s", bad[i].set, bad[i].frag, output);
        cr_expect_eq(cli("train configs/demo_s5_swaps.ini --set model.arch=rwkv6 %s --out @/r%zu", bad[i].set, i), 1,
                     "%s", output);
        cr_expect(strstr(output, bad[i].frag), "train %s: expected '%s' in:\n%s", bad[i].set, bad[i].frag, output);
        char p[600];
        snprintf(p, sizeof p, "%s/r%zu", tmpdir, i);
        FILE *f = fopen(p, "r");
        cr_expect(!f, "train left %s behind", p);
        if (f) fclose(f);
    }
    cr_expect_eq(cli("config configs/demo_s5_swaps.ini --set model.arch=rwkv6 --set model.eig_range=standard"), 0,
                 "%s", output);
}

/* model.short_conv = 4: att.{r,k,v}_conv.weight [C,4] are trained, checkpointed, exported, and a file holding
 * them loads with conv = 4 (the dims come from their shape); the state counts the conv's history. */
Test(rwkv6, short_conv_trains_exports_and_loads) {
    cr_assert_eq(cli("train " TRAIN_ARGS " --set model.short_conv=4 --out @/conv"), 0, "%s", output);
    cr_assert_eq(cli("info @/conv/ckpt.bin"), 0, "%s", output);
    cr_expect(strstr(output, "conv=4") && has_tensor("blocks.0.att.v_conv.weight", "[32, 4]"), "%s", output);
    /* C=32, L=1, N=8: 4*8*8 = 256 matrix numbers + 2C token shift + 3*(4-1)*C conv history = 352 */
    cr_expect(strstr(output, "recurrent state per sequence: 608 numbers (matrix state L*H*Nk*Nv = 1*4*8*8 = 256, plus "
                             "352 in vectors)"), "%s", output);
    cr_assert_eq(cli("export @/conv/ckpt.bin --to @/conv.safetensors"), 0, "%s", output);
    cr_expect(strstr(output, "short convolution"), "export should say the official code does not apply the conv:\n%s",
              output);
    cr_assert_eq(cli("info @/conv.safetensors"), 0, "%s", output);
    cr_expect(strstr(output, "RWKV-6 (x060)") && strstr(output, "conv=4"), "%s", output);
    cr_assert_eq(cli("evaltask @/conv --lengths 8 --n 8"), 0, "%s", output);
    cr_assert_eq(cli("trace --model @/conv.safetensors --task s5:swaps --len 6 --out @/ct.h5"), 0, "%s", output);
}
