/* test_deltanet.c -- DeltaNet and Gated DeltaNet through the command line (RWKVLAB_BIN), fp32:
 * `init --arch` then `info` round-trips the dims; `logits` agrees with its recurrent mode; `export` to .pth
 * and back keeps the model; `train` runs on S5 (short conv, expand_v = 2, extended range) and writes the
 * architecture's traced quantities (beta; alpha and beta) and the transition eigenvalues into run.h5;
 * `export`, `info` and `trace` work on the trained model; a DeltaNet given expand_v is refused; files whose
 * shapes contradict the architecture are refused with an error naming the file and the tensor. */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "delta_common.h"
#include "model_io.h"
#include "tensorfile.h"
#include "testutil.h"

static char dir[256];
static void mk_tmp(void) { cr_assert(test_mkdtemp(dir, sizeof dir, "delta") == 0, "cannot make a temporary directory"); }
static void rm_tmp(void) { test_rmtree(dir); }
TestSuite(deltanet_cli, .init = mk_tmp, .fini = rm_tmp, .timeout = 300);

static char out[32768]; /* stdout + stderr of the last run() */

/* `rwkvlab ARGS` ("@" in ARGS stands for the temporary directory): exit status, output in `out` */
TEST_CLI_RUNNER(run, out, dir, "OMP_NUM_THREADS=2")

/* float32 data of a T x V .npy written by `logits` (header skipped) */
static float *read_npy(const char *name, size_t *n) {
    char p[400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    cr_assert(f, "no %s", p);
    unsigned char hd[10];
    cr_assert_eq(fread(hd, 1, 10, f), 10);
    const long hl = hd[8] | hd[9] << 8;
    fseek(f, 0, SEEK_END);
    const long total = ftell(f);
    *n = (size_t)(total - 10 - hl) / sizeof(float);
    fseek(f, 10 + hl, SEEK_SET);
    float *x = malloc(*n * sizeof(float));
    cr_assert_eq(fread(x, sizeof(float), *n, f), *n);
    fclose(f);
    return x;
}

/* dims of dataset `path` in the HDF5 file; 0 if absent */
static int h5_dims(const char *file, const char *path, hsize_t *dims) {
    char p[400];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0, "cannot open %s", p);
    int nd = 0;
    H5E_BEGIN_TRY {
        hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
        if (d >= 0) {
            hid_t s = H5Dget_space(d);
            nd = H5Sget_simple_extent_dims(s, dims, NULL);
            H5Sclose(s);
            H5Dclose(d);
        }
    } H5E_END_TRY;
    H5Fclose(f);
    return nd;
}

static void init_round_trip(const char *arch, const char *title) {
    cr_assert_eq(run("init --arch %s --to @/m.safetensors --vocab 16 --layers 2 --d-model 32 --head-size 8 --dtype f32 "
                     "--noise 0.1", arch), 0, "%s", out);
    cr_assert_eq(run("info @/m.safetensors"), 0, "%s", out);
    char want[128];
    snprintf(want, sizeof want, "architecture: %s (model.arch = %s)", title, arch);
    cr_expect(strstr(out, want), "info does not say '%s':\n%s", want, out);
    cr_expect(strstr(out, "dims: V=16 C=32 L=2 N=8 has_ln0=1 extended=0 short_conv=0"), "dims:\n%s", out);
    cr_expect(strstr(out, "blocks.1.attn.b_proj.weight      [4, 32]"), "b_proj [H,C]:\n%s", out);
    cr_expect(strstr(out, "matrix state L*H*Nk*Nv = 2*4*8*8 = 512"), "state size:\n%s", out);
    char params[64] = "";
    const char *pp = strstr(out, "parameters: ");
    cr_assert(pp);
    sscanf(pp, "parameters: %63[0-9]", params);
    /* logits: sequence mode == recurrent mode */
    cr_assert_eq(run("logits --model @/m.safetensors --tokens 1,5,3,9,0,15,2,2,7 --out @/a.npy"), 0, "%s", out);
    cr_assert_eq(run("logits --model @/m.safetensors --tokens 1,5,3,9,0,15,2,2,7 --out @/b.npy --recurrent"), 0, "%s", out);
    size_t na, nb;
    float *a = read_npy("a.npy", &na), *b = read_npy("b.npy", &nb);
    cr_assert_eq(na, 9 * 16);
    cr_assert_eq(nb, na);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < na; i++) worst = fmax(worst, fabs(a[i] - b[i])), scale = fmax(scale, fabs(a[i]));
    cr_expect(scale > 0 && worst <= 1e-5 * scale, "%s logits: recurrent vs sequence max |diff| %g (max |logit| %g)", arch,
              worst, scale);
    /* export to .pth and back: same dims, same parameter count, same logits */
    cr_assert_eq(run("export @/m.safetensors --to @/m.pth --dtype f32"), 0, "%s", out);
    cr_assert_eq(run("info @/m.pth"), 0, "%s", out);
    cr_expect(strstr(out, want) && strstr(out, "dims: V=16 C=32 L=2 N=8 has_ln0=1 extended=0 short_conv=0"), "%s", out);
    char p2[80];
    snprintf(p2, sizeof p2, "parameters: %s in", params);
    cr_expect(strstr(out, p2), "parameter count changed (%s):\n%s", params, out);
    cr_assert_eq(run("logits --model @/m.pth --tokens 1,5,3,9,0,15,2,2,7 --out @/c.npy"), 0, "%s", out);
    size_t nc;
    float *c = read_npy("c.npy", &nc);
    cr_assert_eq(nc, na);
    cr_expect(memcmp(a, c, na * sizeof(float)) == 0, "%s: logits changed through export to .pth", arch);
    free(a), free(b), free(c);
}
Test(deltanet_cli, init_info_logits_export_deltanet) { init_round_trip("deltanet", "DeltaNet"); }
Test(deltanet_cli, init_info_logits_export_gated) { init_round_trip("gated_deltanet", "Gated DeltaNet"); }

static void write_config(const char *arch, const char *extra) {
    char p[400];
    snprintf(p, sizeof p, "%s/c.ini", dir);
    FILE *f = fopen(p, "w");
    cr_assert(f);
    fprintf(f, "[experiment]\nname = delta_smoke\nseeds = 1\n\n[model]\narch = %s\nlayers = 2\nd_model = 32\n"
               "head_size = 8\neig_range = extended\nshort_conv = 4\n%s\n\n"
               "[task]\nname = s5\nvariant = swaps\ntrain_len = 16\ntest_lens = 16, 32\ntest_size = 16\n\n"
               "[train]\nsteps = 12\nbatch = 8\nlr = 3e-3\nwarmup = 2\neval_every = 12\nlog_every = 4\nckpt_every = 12\n\n"
               "[log]\ntrajectories = 1\n", arch, extra);
    fclose(f);
}

static void train_smoke(const char *arch, const char *extra, const char *const *quantities, const char *dims) {
    write_config(arch, extra);
    cr_assert_eq(run("train @/c.ini --out @/run --quiet"), 0, "train %s: %s", arch, out);
    char p[400];
    snprintf(p, sizeof p, "%s/run/summary.json", dir);
    size_t n = 0;
    char *js = test_slurp(p, &n);
    cr_assert(js, "no summary.json");
    char want[96];
    snprintf(want, sizeof want, "\"arch\":\t\"%s\"", arch);
    cr_expect(strstr(js, want), "summary.json lacks %s:\n%s", want, js);
    cr_expect(strstr(js, "\"status\":\t\"completed\""), "%s", js);
    free(js);
    /* run.h5: the architecture's own quantities (T,H) and the transition eigenvalues (T,H,N) */
    hsize_t d[4];
    for (int i = 0; quantities[i]; i++) {
        char ds[128];
        snprintf(ds, sizeof ds, "/trajectories/probe0/layer1/%s", quantities[i]);
        cr_expect_eq(h5_dims("run/run.h5", ds, d), 2, "run.h5 lacks %s", ds);
        cr_expect_eq(d[1], 4, "%s is per head (H = 4), got width %d", ds, (int)d[1]);
    }
    cr_expect_eq(h5_dims("run/run.h5", "/trajectories/probe0/layer0/eig_real", d), 3, "no eig_real");
    cr_expect(d[1] == 4 && d[2] == 8, "eig_real (T,H,N) = (.,4,8), got (.,%d,%d)", (int)d[1], (int)d[2]);
    /* export, info, trace on the exported model */
    cr_assert_eq(run("export @/run/ckpt.bin --to @/x.safetensors --dtype f32"), 0, "%s", out);
    cr_expect(strstr(out, "extended eigenvalue range"), "export does not warn that the range is not in the file:\n%s", out);
    cr_assert_eq(run("info @/x.safetensors"), 0, "%s", out);
    cr_expect(strstr(out, dims), "info of the export lacks '%s':\n%s", dims, out);
    cr_assert_eq(run("info @/run/ckpt.bin"), 0, "%s", out);
    cr_expect(strstr(out, "extended=1"), "ckpt.bin keeps the range:\n%s", out);
    cr_assert_eq(run("trace --model @/x.safetensors --task s5:swaps --len 10 --out @/t.h5"), 0, "%s", out);
    for (int i = 0; quantities[i]; i++) {
        char ds[128];
        snprintf(ds, sizeof ds, "/trajectories/probe0/layer0/%s", quantities[i]);
        cr_expect_eq(h5_dims("t.h5", ds, d), 2, "trace lacks %s", ds);
        cr_expect(d[0] == 10 && d[1] == 4, "%s shape (%d,%d), want (10,4)", ds, (int)d[0], (int)d[1]);
    }
}
Test(deltanet_cli, train_export_trace_deltanet) {
    train_smoke("deltanet", "", (const char *[]){"beta", NULL}, "L=2 N=8 has_ln0=1 extended=0 short_conv=4");
}
Test(deltanet_cli, train_export_trace_gated_expand2) {
    train_smoke("gated_deltanet", "expand_v = 2", (const char *[]){"alpha", "beta", NULL},
                "L=2 N=8 has_ln0=1 extended=0 short_conv=4 expand_v=2");
    /* state size with Nv = 2N: L*H*Nk*Nv = 2*4*8*16 */
    cr_assert_eq(run("info @/x.safetensors"), 0, "%s", out);
    cr_expect(strstr(out, "2*4*8*16 = 1024"), "state size with expand_v = 2:\n%s", out);
}

Test(deltanet_cli, deltanet_refuses_expand_v) {
    write_config("deltanet", "expand_v = 2");
    cr_expect_eq(run("train @/c.ini --out @/run --quiet"), 1, "%s", out);
    cr_expect(strstr(out, "model.expand_v = 2 applies to Gated DeltaNet only"), "message:\n%s", out);
    char p[400];
    snprintf(p, sizeof p, "%s/run/ckpt.bin", dir);
    cr_expect(access(p, F_OK) != 0, "a refused run wrote a checkpoint");
}

/* ---- loading files that are not what they claim: a clear error naming the file and the tensor ---- */
extern const ModelArch model_deltanet, model_gated_deltanet;

/* A fresh model of `arch` written as safetensors with tensor `name` replaced by shape (r,c) (r = 0: left out). */
static void write_altered(const ModelArch *arch, const void *dims, const char *name, int r, int c, const char *file) {
    Model *m = model_create(arch, dims, 0);
    TfOut *o = calloc(m->ntensors, sizeof *o);
    float *big = calloc((size_t)(r > 0 ? r : 1) * (c > 0 ? c : 1), sizeof(float));
    int n = 0;
    for (int i = 0; i < m->ntensors; i++) {
        const ParamTensor *p = &m->tensors[i];
        if (!strcmp(p->name, name) && r == 0) continue;
        o[n].name = p->name, o[n].ndim = p->ndim, o[n].data = (const float *)(m->params + p->offset);
        for (int k = 0; k < p->ndim; k++) o[n].shape[k] = p->shape[k];
        if (!strcmp(p->name, name)) o[n].ndim = 2, o[n].shape[0] = r, o[n].shape[1] = c, o[n].data = big;
        n++;
    }
    char p[400];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    Err err = {{0}};
    cr_assert_eq(safetensors_write(p, o, n, TF_F32, &err), 0, "%s", err.msg);
    free(o), free(big);
    model_free(m);
}

static void expect_load_error(const char *file, const char *what) {
    char p[400];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    Model *m = NULL;
    Err err = {{0}};
    cr_expect_neq(model_load(p, &m, &err), 0, "%s loaded", file);
    cr_expect(m == NULL);
    printf("  refused: %s\n", err.msg);
    cr_expect(strstr(err.msg, what) && strstr(err.msg, file), "error for %s does not say '%s':\n%s", file, what, err.msg);
}

Test(deltanet_cli, loader_errors) {
    DeltaDims d = {.V = 16, .C = 32, .L = 1, .N = 8, .has_ln0 = 1};
    write_altered(&model_deltanet, &d, "blocks.0.attn.v_proj.weight", 64, 32, "wide_v.safetensors");
    expect_load_error("wide_v.safetensors", "a DeltaNet value head equals its key head");
    write_altered(&model_deltanet, &d, "blocks.0.attn.b_proj.weight", 3, 32, "bad_b.safetensors");
    expect_load_error("bad_b.safetensors", "'blocks.0.attn.b_proj.weight' must be [H,C]");
    DeltaDims g = {.V = 16, .C = 32, .L = 1, .N = 8, .has_ln0 = 1, .short_conv = 4, .expand_v = 2};
    write_altered(&model_gated_deltanet, &g, "blocks.0.attn.dt_bias", 0, 0, "no_dt.safetensors");
    expect_load_error("no_dt.safetensors", "blocks.0.attn.dt_bias");
    write_altered(&model_gated_deltanet, &g, "blocks.0.attn.v_conv1d.weight", 64, 3, "bad_conv.safetensors");
    expect_load_error("bad_conv.safetensors", "blocks.0.attn.v_conv1d.weight");
    /* the unaltered file loads, as Gated DeltaNet with its dims */
    write_altered(&model_gated_deltanet, &g, "none", 0, 0, "ok.safetensors");
    char p[400];
    snprintf(p, sizeof p, "%s/ok.safetensors", dir);
    Model *m = NULL;
    Err err = {{0}};
    cr_assert_eq(model_load(p, &m, &err), 0, "%s", err.msg);
    cr_expect_str_eq(m->arch->name, "gated_deltanet");
    cr_expect(m->Nv == 16 && m->N == 8 && m->H == 4, "Nv=%d N=%d H=%d", m->Nv, m->N, m->H);
    model_free(m);
}
