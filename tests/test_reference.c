/* test_reference.c -- our fp32 engine against an independent numpy implementation of rwkv7.md
 * (tests/fixtures/rwkv7_ref.py, fp64): logits of small release-format checkpoints (several shapes,
 * N = 64, unequal LoRA ranks, bf16 storage, no ln0, biases, unused layer-0 v0/v1/v2) must agree within
 * 1e-4 relative (max |diff| / std of the reference logits), in sequence and recurrent mode, and the
 * final state too. Fixtures: tests/fixtures/ckpt/ (regenerate with make_fixtures.py). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "model_io.h"
#include "rwkv7.h"

#define DIR "tests/fixtures/ckpt/"

/* minimal float32 .npy reader: returns data, shape in dims (up to 3), count in *n */
static float *read_npy(const char *path, int *ndim, long dims[3], long *n) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "missing fixture %s", path);
    unsigned char h[10];
    cr_assert_eq(fread(h, 1, 10, f), 10);
    cr_assert(!memcmp(h, "\x93NUMPY", 6), "%s: not .npy", path);
    int hl = h[8] | h[9] << 8;
    char *hdr = calloc(hl + 1, 1);
    cr_assert_eq(fread(hdr, 1, hl, f), (size_t)hl);
    cr_assert(strstr(hdr, "'<f4'"), "%s: expected float32: %s", path, hdr);
    cr_assert(strstr(hdr, "'fortran_order': False"), "%s", hdr);
    char *s = strchr(strstr(hdr, "'shape'"), '(') + 1;
    *ndim = 0, *n = 1;
    while (*s != ')') {
        char *e;
        long v = strtol(s, &e, 10);
        if (e == s) break;
        dims[(*ndim)++] = v, *n *= v;
        s = e;
        while (*s == ',' || *s == ' ') s++;
    }
    float *x = malloc(*n * sizeof(float));
    cr_assert_eq(fread(x, sizeof(float), *n, f), (size_t)*n, "%s: short data", path);
    fclose(f);
    free(hdr);
    return x;
}

static int *read_tokens(const char *path, int *T) {
    FILE *f = fopen(path, "r");
    cr_assert(f, "missing fixture %s", path);
    int *t = malloc(4096 * sizeof(int));
    *T = 0;
    while (*T < 4096 && fscanf(f, "%d", &t[*T]) == 1) {
        (*T)++;
        if (fgetc(f) != ',') break;
    }
    fclose(f);
    return t;
}

static double rel_err(const real *got, const float *ref, long n) {
    double mu = 0, var = 0, worst = 0;
    for (long i = 0; i < n; i++) mu += ref[i];
    mu /= n;
    for (long i = 0; i < n; i++) var += (ref[i] - mu) * (ref[i] - mu);
    double sd = sqrt(var / n);
    for (long i = 0; i < n; i++) worst = fmax(worst, fabs(got[i] - ref[i]));
    return worst / sd;
}

static void check_fixture(const char *name, const char *ext) {
    char p[256];
    snprintf(p, sizeof p, DIR "%s.%s", name, ext);
    Model *mm;
    Err e;
    cr_assert_eq(model_load(p, &mm, &e), 0, "%s", e.msg);
    Rwkv7 *m = mm->self;
    int T;
    snprintf(p, sizeof p, DIR "%s.tokens.txt", name);
    int *tok = read_tokens(p, &T);
    int nd;
    long dims[3], n;
    snprintf(p, sizeof p, DIR "%s.logits.npy", name);
    float *ref = read_npy(p, &nd, dims, &n);
    cr_assert(nd == 2 && dims[0] == T && dims[1] == m->d.V, "%s: logits shape vs T=%d V=%d", name, T, m->d.V);
    size_t ns = rwkv7_state_numel(&m->d, 1);
    real *state = calloc(ns, sizeof(real));
    const real *lg = rwkv7_forward(m, tok, 1, T, 16, NULL, state, NULL);
    double r_seq = rel_err(lg, ref, n);
    /* recurrent mode, one token at a time */
    real *rec = malloc(n * sizeof(real)), *s2 = calloc(ns, sizeof(real));
    for (int t = 0; t < T; t++) memcpy(rec + (size_t)t * m->d.V, rwkv7_forward(m, &tok[t], 1, 1, 1, s2, s2, NULL), m->d.V * sizeof(real));
    double r_rec = rel_err(rec, ref, n);
    /* final state: reference layout per layer [att x_prev C | S H*N*N | ffn x_prev C] == ours for B = 1 */
    snprintf(p, sizeof p, DIR "%s.state.npy", name);
    long sn;
    float *sref = read_npy(p, &nd, dims, &sn);
    cr_assert_eq((size_t)sn, ns, "%s: state size %ld vs %zu", name, sn, ns);
    double r_state = rel_err(state, sref, sn);
    printf("%-9s %-12s L=%d C=%d N=%d V=%d T=%d: max|diff|/std logits seq %.2e, recurrent %.2e, state %.2e "
           "(limit 1e-4)\n", name, ext, m->d.L, m->d.C, m->d.N, m->d.V, T, r_seq, r_rec, r_state);
    cr_expect(r_seq <= 1e-4, "%s: sequence logits differ from the reference: %.3g", name, r_seq);
    cr_expect(r_rec <= 1e-4, "%s: recurrent logits differ from the reference: %.3g", name, r_rec);
    cr_expect(r_state <= 1e-4, "%s: final state differs from the reference: %.3g", name, r_state);
    free(tok), free(ref), free(state), free(rec), free(s2), free(sref);
    model_free(mm);
}

Test(reference, tiny_f32) { check_fixture("tiny_f32", "safetensors"); }
Test(reference, n64_bf16_safetensors) { check_fixture("n64_bf16", "safetensors"); }
Test(reference, n64_bf16_torch_pth) { check_fixture("n64_bf16", "pth"); }
Test(reference, l3_f32) { check_fixture("l3_f32", "safetensors"); }
