/* test_wkv6.c -- the fp32 WKV6 kernels at N = 32 and 64 (the kernels specialised for them) and N = 40 (the
 * generic one with a partial vector): forward (y, final state) and backward (every gradient, u's and the
 * initial state's included, with an upstream gradient on the final state) against a plain double-precision
 * implementation of the recurrence and its adjoint written here from the formulas in wkv6.h / wkv6.c (every
 * state kept, no chunking), within 1e-4 of each tensor's standard deviation (the fp32-vs-fp64 bound of
 * test_reference.c); and results bit-identical for 1 and 2 threads. fp64 finite differences: grad_rwkv6.c. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "wkv6.h"

typedef struct {
    int B, T, H, N;
    size_t nx, ns, nu;
    float *r, *k, *v, *w, *u, *s0, *dy, *dsT;
} Case;

static unsigned long long rs = 0x2545F4914F6CDD1Dull;
static double urand(void) {
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    return (double)(rs >> 11) / 9007199254740992.0;
}
static float *fill(size_t n, double lo, double hi) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * urand());
    return x;
}
/* the model's regime: w in (0.3, 1), u of either sign */
static void make(Case *c, int B, int T, int H, int N) {
    *c = (Case){.B = B, .T = T, .H = H, .N = N};
    c->nx = (size_t)B * T * H * N, c->ns = (size_t)B * H * N * N, c->nu = (size_t)H * N;
    c->r = fill(c->nx, -1, 1), c->k = fill(c->nx, -1, 1), c->v = fill(c->nx, -1, 1), c->w = fill(c->nx, 0.3, 0.999);
    c->u = fill(c->nu, -1, 1), c->s0 = fill(c->ns, -0.5, 0.5), c->dy = fill(c->nx, -1, 1), c->dsT = fill(c->ns, -1, 1);
}
static void unmake(Case *c) { free(c->r), free(c->k), free(c->v), free(c->w), free(c->u), free(c->s0), free(c->dy), free(c->dsT); }

/* outputs: y (nx), sT (ns), dr dk dv dw (nx), du (nu), ds0 (ns) */
enum { NOUT = 8 };
typedef struct { double *o[NOUT]; } Outs;
static size_t out_n(const Case *c, int i) { return i == 1 || i == 7 ? c->ns : i == 6 ? c->nu : c->nx; }
static const char *out_name[NOUT] = {"y", "sT", "dr", "dk", "dv", "dw", "du", "ds0"};

static void run_f32(const Case *c, Outs *out) {
    Wkv6Dims d = {.B = c->B, .T = c->T, .H = c->H, .N = c->N, .K = 16};
    float *o[NOUT], *ck = calloc(wkv6_ckpt_numel(&d), sizeof(float));
    for (int i = 0; i < NOUT; i++) o[i] = calloc(out_n(c, i), sizeof(float));
    wkv6_forward(o[0], ck, o[1], NULL, c->r, c->k, c->v, c->w, c->u, c->s0, &d);
    wkv6_backward(o[2], o[3], o[4], o[5], o[6], o[7], c->dy, c->dsT, ck, c->r, c->k, c->v, c->w, c->u, &d);
    for (int i = 0; i < NOUT; i++) {
        out->o[i] = malloc(out_n(c, i) * sizeof(double));
        for (size_t e = 0; e < out_n(c, i); e++) out->o[i][e] = o[i][e];
        free(o[i]);
    }
    free(ck);
}

/* the reference, in double: y_t = S_{t-1}^T r + ((u*k).r) v, S_t = diag(w) S_{t-1} + k v^T ([key][value]),
 * every S_t kept; then backward token by token with G = dL/dS_t. */
static void run_ref(const Case *c, Outs *out) {
    const int T = c->T, H = c->H, N = c->N, C = H * N;
    const size_t NN = (size_t)N * N;
    for (int i = 0; i < NOUT; i++) out->o[i] = calloc(out_n(c, i), sizeof(double));
    double *S = malloc((size_t)(T + 1) * NN * sizeof(double)), *G = malloc(NN * sizeof(double));
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < H; h++) {
            const size_t bh = (size_t)b * H + h;
            const float *u = c->u + (size_t)h * N;
            for (size_t e = 0; e < NN; e++) S[e] = c->s0[bh * NN + e];
            for (int t = 0; t < T; t++) {
                const size_t o = ((size_t)b * T + t) * C + (size_t)h * N;
                const double *Sp = S + (size_t)t * NN;
                double *Sn = S + (size_t)(t + 1) * NN;
                for (int j = 0; j < N; j++) {
                    double y = 0;
                    for (int i = 0; i < N; i++) y += c->r[o + i] * (Sp[i * N + j] + (double)u[i] * c->k[o + i] * c->v[o + j]);
                    out->o[0][o + j] = y;
                }
                for (int i = 0; i < N; i++)
                    for (int j = 0; j < N; j++) Sn[i * N + j] = c->w[o + i] * Sp[i * N + j] + (double)c->k[o + i] * c->v[o + j];
            }
            for (size_t e = 0; e < NN; e++) out->o[1][bh * NN + e] = S[(size_t)T * NN + e], G[e] = c->dsT[bh * NN + e];
            for (int t = T - 1; t >= 0; t--) {
                const size_t o = ((size_t)b * T + t) * C + (size_t)h * N;
                const double *Sp = S + (size_t)t * NN;
                double a = 0, vdy = 0;
                for (int i = 0; i < N; i++) a += (double)c->r[o + i] * u[i] * c->k[o + i];
                for (int j = 0; j < N; j++) vdy += (double)c->v[o + j] * c->dy[o + j];
                for (int j = 0; j < N; j++) out->o[4][o + j] += a * c->dy[o + j];
                for (int i = 0; i < N; i++) {
                    double gw = 0, gk = 0, gr = 0;
                    for (int j = 0; j < N; j++) {
                        gw += G[i * N + j] * Sp[i * N + j], gk += G[i * N + j] * c->v[o + j], gr += Sp[i * N + j] * c->dy[o + j];
                        out->o[4][o + j] += G[i * N + j] * c->k[o + i];
                    }
                    out->o[5][o + i] += gw;
                    out->o[3][o + i] += gk + (double)c->r[o + i] * u[i] * vdy;
                    out->o[2][o + i] += gr + (double)u[i] * c->k[o + i] * vdy;
                    out->o[6][(size_t)h * N + i] += (double)c->r[o + i] * c->k[o + i] * vdy;
                    for (int j = 0; j < N; j++) G[i * N + j] = c->w[o + i] * G[i * N + j] + (double)c->r[o + i] * c->dy[o + j];
                }
            }
            for (size_t e = 0; e < NN; e++) out->o[7][bh * NN + e] = G[e];
        }
    free(S), free(G);
}
static void free_outs(Outs *o) {
    for (int i = 0; i < NOUT; i++) free(o->o[i]);
}

static void check_against_reference(int N) {
    Case c;
    make(&c, 2, 20, 2, N); /* T = 20, K = 16: one whole chunk and a partial one */
    Outs got, ref;
    run_f32(&c, &got), run_ref(&c, &ref);
    for (int i = 0; i < NOUT; i++) {
        const size_t n = out_n(&c, i);
        double mean = 0, var = 0, worst = 0;
        for (size_t e = 0; e < n; e++) mean += ref.o[i][e];
        mean /= n;
        for (size_t e = 0; e < n; e++) var += (ref.o[i][e] - mean) * (ref.o[i][e] - mean);
        const double sd = sqrt(var / n);
        for (size_t e = 0; e < n; e++) worst = fmax(worst, fabs(got.o[i][e] - ref.o[i][e]));
        printf("  wkv6 f32 N=%d %-3s: max |diff| %.3g = %.3g of the reference's std (limit 1e-4)\n", N, out_name[i],
               worst, worst / sd);
        cr_expect(sd > 0 && worst <= 1e-4 * sd, "N=%d %s: fp32 kernels differ from the fp64 reference by %g (std %g)",
                  N, out_name[i], worst, sd);
    }
    free_outs(&got), free_outs(&ref);
    unmake(&c);
}
Test(wkv6_f32, reference_n32) { check_against_reference(32); }
Test(wkv6_f32, reference_n64) { check_against_reference(64); }
Test(wkv6_f32, reference_n40) { check_against_reference(40); }

/* parallel over B x H only (du summed over the batch afterwards, in order): any thread count, same bits */
Test(wkv6_f32, thread_count_independent) {
#ifdef _OPENMP
    int ns[] = {32, 64, 40};
    for (int k = 0; k < 3; k++) {
        Case c;
        make(&c, 3, 20, 2, ns[k]);
        Outs o1, o2;
        omp_set_num_threads(1);
        run_f32(&c, &o1);
        omp_set_num_threads(2);
        run_f32(&c, &o2);
        for (int i = 0; i < NOUT; i++)
            cr_expect(memcmp(o1.o[i], o2.o[i], out_n(&c, i) * sizeof(double)) == 0, "N=%d %s: 1 and 2 threads differ",
                      ns[k], out_name[i]);
        free_outs(&o1), free_outs(&o2);
        unmake(&c);
    }
#else
    cr_skip_test("built without OpenMP");
#endif
}
