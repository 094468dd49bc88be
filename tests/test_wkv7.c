/* test_wkv7.c -- the fp32 WKV7 kernels at the head sizes the trainer uses (N = 32 and 64, the kernels
 * specialised for them, and N = 40, the generic one with a partial vector), square and wide (Nv = 2N) states:
 * forward (y, final state) and backward (every gradient, including the initial state's, with an upstream
 * gradient on the final state) against a plain double-precision implementation of the recurrence and its
 * adjoint written here from the formulas in wkv7.h / wkv7.c (every state kept, no chunking), within
 * 1e-4 of each tensor's standard deviation (the fp32-vs-fp64 bound of test_reference.c); and results
 * bit-identical for 1 and 2 threads. The fp64 build's finite-difference checks are in grad_wkv7.c. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "wkv7.h"

typedef struct {
    int B, T, H, N, Nv;
    size_t nx, nxv, ns;
    float *in[6]; /* r, w, k, kk, a (nx), v (nxv) */
    float *s0, *dy, *dsT;
} Case;

static unsigned long long rs = 0x9E3779B97F4A7C15ull;
static double urand(void) {
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    return (double)(rs >> 11) / 9007199254740992.0;
}
static float *fill(size_t n, double lo, double hi) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * urand());
    return x;
}

/* the trained regime: w in (0.55, 1), kk unit per head, a in (0, 1) */
static void make(Case *c, int B, int T, int H, int N, int Nv) {
    *c = (Case){.B = B, .T = T, .H = H, .N = N, .Nv = Nv};
    c->nx = (size_t)B * T * H * N, c->nxv = (size_t)B * T * H * Nv, c->ns = (size_t)B * H * Nv * N;
    c->in[0] = fill(c->nx, -1, 1), c->in[1] = fill(c->nx, 0.55, 0.999), c->in[2] = fill(c->nx, -1, 1);
    c->in[3] = fill(c->nx, -1, 1), c->in[4] = fill(c->nx, 0.01, 0.99), c->in[5] = fill(c->nxv, -1, 1);
    for (size_t h = 0; h < c->nx / N; h++) {
        double s = 0;
        for (int j = 0; j < N; j++) s += (double)c->in[3][h * N + j] * c->in[3][h * N + j];
        for (int j = 0; j < N; j++) c->in[3][h * N + j] = (float)(c->in[3][h * N + j] / sqrt(s));
    }
    c->s0 = fill(c->ns, -0.5, 0.5), c->dy = fill(c->nxv, -1, 1), c->dsT = fill(c->ns, -1, 1);
}
static void unmake(Case *c) {
    for (int i = 0; i < 6; i++) free(c->in[i]);
    free(c->s0), free(c->dy), free(c->dsT);
}

/* outputs: y (nxv), sT (ns), then dr dw dk dkk da (nx), dv (nxv), ds0 (ns) */
typedef struct { double *o[9]; } Outs;
static size_t out_n(const Case *c, int i) { return i == 0 || i == 7 ? c->nxv : i == 1 || i == 8 ? c->ns : c->nx; }
static const char *out_name[9] = {"y", "sT", "dr", "dw", "dk", "dkk", "da", "dv", "ds0"};

/* the fp32 kernels, K = 16 (the trainer's checkpoint interval) */
static void run_f32(const Case *c, Outs *out) {
    Wkv7Dims d = {.B = c->B, .T = c->T, .H = c->H, .N = c->N, .K = 16, .Nv = c->Nv};
    float *o[9], *ck = calloc(wkv7_ckpt_numel(&d), sizeof(float));
    for (int i = 0; i < 9; i++) o[i] = calloc(out_n(c, i), sizeof(float));
    float *const *x = c->in;
    wkv7_forward(o[0], ck, o[1], NULL, x[0], x[1], x[2], x[5], x[3], x[4], c->s0, &d);
    wkv7_backward(o[2], o[3], o[4], o[7], o[5], o[6], o[8], c->dy, c->dsT, ck, x[0], x[1], x[2], x[5], x[3], x[4], &d);
    for (int i = 0; i < 9; i++) {
        out->o[i] = malloc(out_n(c, i) * sizeof(double));
        for (size_t e = 0; e < out_n(c, i); e++) out->o[i][e] = o[i][e];
        free(o[i]);
    }
    free(ck);
}

/* the reference, in double: S_t = S_{t-1} diag(w) + (S_{t-1}(-kk)) (kk*a)^T + v k^T, y = S_t r, every S_t
 * kept; then backward token by token with G = dL/dS_t. */
static void run_ref(const Case *c, Outs *out) {
    const int T = c->T, H = c->H, N = c->N, Nv = c->Nv, C = H * N, CV = H * Nv;
    for (int i = 0; i < 9; i++) out->o[i] = calloc(out_n(c, i), sizeof(double));
    double *S = malloc((size_t)(T + 1) * Nv * N * sizeof(double)), *G = malloc((size_t)Nv * N * sizeof(double));
    double *sa = malloc((size_t)T * Nv * sizeof(double)), *dsa = malloc(Nv * sizeof(double));
    double *db = malloc(N * sizeof(double)), *dq = malloc(N * sizeof(double));
    const size_t NN = (size_t)Nv * N;
    float *const *x = c->in;
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < H; h++) {
            const size_t bh = (size_t)b * H + h;
            for (size_t e = 0; e < NN; e++) S[e] = c->s0[bh * NN + e];
            for (int t = 0; t < T; t++) {
                const size_t o = ((size_t)b * T + t) * C + (size_t)h * N, ov = ((size_t)b * T + t) * CV + (size_t)h * Nv;
                const double *Sp = S + (size_t)t * NN;
                double *Sn = S + (size_t)(t + 1) * NN;
                for (int i = 0; i < Nv; i++) {
                    double s = 0;
                    for (int j = 0; j < N; j++) s -= Sp[i * N + j] * x[3][o + j];
                    sa[(size_t)t * Nv + i] = s;
                    double y = 0;
                    for (int j = 0; j < N; j++) {
                        Sn[i * N + j] = Sp[i * N + j] * x[1][o + j] + s * x[3][o + j] * x[4][o + j] + (double)x[5][ov + i] * x[2][o + j];
                        y += Sn[i * N + j] * x[0][o + j];
                    }
                    out->o[0][ov + i] = y;
                }
            }
            for (size_t e = 0; e < NN; e++) out->o[1][bh * NN + e] = S[(size_t)T * NN + e], G[e] = c->dsT[bh * NN + e];
            for (int t = T - 1; t >= 0; t--) {
                const size_t o = ((size_t)b * T + t) * C + (size_t)h * N, ov = ((size_t)b * T + t) * CV + (size_t)h * Nv;
                const double *Sp = S + (size_t)t * NN, *Sn = S + (size_t)(t + 1) * NN;
                for (int i = 0; i < Nv; i++)
                    for (int j = 0; j < N; j++) {
                        G[i * N + j] += (double)c->dy[ov + i] * x[0][o + j];
                        out->o[2][o + j] += Sn[i * N + j] * c->dy[ov + i];
                    }
                for (int j = 0; j < N; j++) db[j] = dq[j] = 0;
                for (int i = 0; i < Nv; i++) {
                    double ds = 0, dv = 0;
                    for (int j = 0; j < N; j++) {
                        const double g = G[i * N + j];
                        out->o[3][o + j] += g * Sp[i * N + j];
                        db[j] += g * sa[(size_t)t * Nv + i];
                        out->o[4][o + j] += g * x[5][ov + i];
                        ds += g * x[3][o + j] * x[4][o + j];
                        dv += g * x[2][o + j];
                    }
                    dsa[i] = ds, out->o[7][ov + i] += dv;
                }
                for (int i = 0; i < Nv; i++)
                    for (int j = 0; j < N; j++) {
                        dq[j] += dsa[i] * Sp[i * N + j];
                        G[i * N + j] = G[i * N + j] * x[1][o + j] - dsa[i] * x[3][o + j];
                    }
                for (int j = 0; j < N; j++) out->o[5][o + j] += -dq[j] + db[j] * x[4][o + j], out->o[6][o + j] += db[j] * x[3][o + j];
            }
            for (size_t e = 0; e < NN; e++) out->o[8][bh * NN + e] = G[e];
        }
    free(S), free(G), free(sa), free(dsa), free(db), free(dq);
}

static void free_outs(Outs *o) {
    for (int i = 0; i < 9; i++) free(o->o[i]);
}

static void check_against_reference(int N, int Nv) {
    Case c;
    make(&c, 2, 20, 2, N, Nv); /* T = 20, K = 16: one whole chunk and a partial one */
    Outs got, ref;
    run_f32(&c, &got), run_ref(&c, &ref);
    for (int i = 0; i < 9; i++) {
        const size_t n = out_n(&c, i);
        double mean = 0, var = 0, worst = 0;
        for (size_t e = 0; e < n; e++) mean += ref.o[i][e];
        mean /= n;
        for (size_t e = 0; e < n; e++) var += (ref.o[i][e] - mean) * (ref.o[i][e] - mean);
        const double sd = sqrt(var / n);
        for (size_t e = 0; e < n; e++) worst = fmax(worst, fabs(got.o[i][e] - ref.o[i][e]));
        printf("  wkv7 f32 N=%d Nv=%d %-3s: max |diff| %.3g = %.3g of the reference's std (limit 1e-4)\n", N, Nv,
               out_name[i], worst, worst / sd);
        cr_expect(sd > 0 && worst <= 1e-4 * sd, "N=%d Nv=%d %s: fp32 kernels differ from the fp64 reference by %g (std %g)",
                  N, Nv, out_name[i], worst, sd);
    }
    free_outs(&got), free_outs(&ref);
    unmake(&c);
}
Test(wkv7_f32, reference_n32) { check_against_reference(32, 32); }
Test(wkv7_f32, reference_n32_wide_value) { check_against_reference(32, 64); }
Test(wkv7_f32, reference_n64) { check_against_reference(64, 64); }
Test(wkv7_f32, reference_n40_wide_value) { check_against_reference(40, 80); }

/* parallel over B x H only: any thread count gives the same bits */
Test(wkv7_f32, thread_count_independent) {
#ifdef _OPENMP
    int ns[] = {32, 64, 40};
    for (int k = 0; k < 3; k++) {
        Case c;
        make(&c, 3, 20, 2, ns[k], ns[k]);
        Outs o1, o2;
        omp_set_num_threads(1);
        run_f32(&c, &o1);
        omp_set_num_threads(2);
        run_f32(&c, &o2);
        for (int i = 0; i < 9; i++)
            cr_expect(memcmp(o1.o[i], o2.o[i], out_n(&c, i) * sizeof(double)) == 0, "N=%d %s: 1 and 2 threads differ",
                      ns[k], out_name[i]);
        free_outs(&o1), free_outs(&o2);
        unmake(&c);
    }
#else
    cr_skip_test("built without OpenMP");
#endif
}
