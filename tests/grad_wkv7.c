/* grad_wkv7.c -- the WKV7 recurrence: forward vs the matrix definition, backward vs finite differences (all
 * inputs, initial state, with an upstream gradient on the final state), and the chunked backward vs the
 * store-everything backward; each for a square state (Nv = N, RWKV-7) and a wide one (Nv = 2N, Gated
 * DeltaNet's expand_v = 2). Head sizes: N = 4 (one partial vector of the kernels' 16 lanes), N = 32 and 64
 * (the kernels specialised for them) and N = 40 (the generic kernel: two whole vectors and a partial one). */
#include <string.h>

#include "gradcheck.h"
#include "wkv7.h"

/* the shape of the case being built or checked (set by set_shape; the default is the small one) */
static int B = 2, T = 7, H = 2, N = 4, C = 8;
static void set_shape(int b, int t, int h, int n) { B = b, T = t, H = h, N = n, C = h * n; }
static void default_shape(void) { set_shape(2, 7, 2, 4); }
TestSuite(grad_wkv7, .init = default_shape);
#define NX ((size_t)B * T * C)
#define NXV(nv) ((size_t)B * T * H * (nv))
#define NS(nv) ((size_t)B * H * (nv) * N)

typedef struct {
    real *r, *w, *k, *v, *kk, *a, *s0;
    real *y, *sT, *ckpt, *dy, *dsT;
    Wkv7Dims d;
} WkvCase;

static double wkv_loss(void *ctx) {
    WkvCase *c = ctx;
    wkv7_forward(c->y, c->ckpt, c->sT, NULL, c->r, c->w, c->k, c->v, c->kk, c->a, c->s0, &c->d);
    return dot_loss(c->y, c->dy, NXV(c->d.Nv)) + dot_loss(c->sT, c->dsT, NS(c->d.Nv));
}

/* realistic regime: w in (0.545, 1), kk unit per head, a in (0, 1) */
static void make_case_nv(WkvCase *c, gsl_rng *rng, int K, int Nv) {
    real **arr[] = {&c->r, &c->w, &c->k, &c->kk, &c->a};
    for (int i = 0; i < 5; i++) *arr[i] = calloc(NX, sizeof(real));
    c->v = calloc(NXV(Nv), sizeof(real)), c->y = calloc(NXV(Nv), sizeof(real)), c->dy = calloc(NXV(Nv), sizeof(real));
    c->s0 = calloc(NS(Nv), sizeof(real)), c->sT = calloc(NS(Nv), sizeof(real)), c->dsT = calloc(NS(Nv), sizeof(real));
    c->d = (Wkv7Dims){.B = B, .T = T, .H = H, .N = N, .K = K, .Nv = Nv};
    c->ckpt = calloc(wkv7_ckpt_numel(&c->d), sizeof(real));
    fill_uniform(c->r, NX, rng, -1, 1), fill_uniform(c->k, NX, rng, -1, 1), fill_uniform(c->v, NXV(Nv), rng, -1, 1);
    fill_uniform(c->w, NX, rng, 0.55, 0.999), fill_uniform(c->a, NX, rng, 0.01, 0.99);
    fill_uniform(c->kk, NX, rng, -1, 1);
    for (size_t h = 0; h < NX / N; h++) {
        double s = 0;
        for (int j = 0; j < N; j++) s += c->kk[h * N + j] * c->kk[h * N + j];
        for (int j = 0; j < N; j++) c->kk[h * N + j] /= sqrt(s);
    }
    fill_uniform(c->s0, NS(Nv), rng, -0.5, 0.5);
    fill_uniform(c->dy, NXV(Nv), rng, -1, 1), fill_uniform(c->dsT, NS(Nv), rng, -1, 1);
}
static void make_case(WkvCase *c, gsl_rng *rng, int K) { make_case_nv(c, rng, K, N); }

static void free_case(WkvCase *c) {
    free(c->r), free(c->w), free(c->k), free(c->v), free(c->kk), free(c->a), free(c->y), free(c->dy);
    free(c->s0), free(c->sT), free(c->dsT), free(c->ckpt);
}

typedef struct { real *dr, *dw, *dk, *dv, *dkk, *da, *ds0; } WkvGrads;
static void grads_alloc_nv(WkvGrads *g, int Nv) {
    real **arr[] = {&g->dr, &g->dw, &g->dk, &g->dkk, &g->da};
    for (int i = 0; i < 5; i++) *arr[i] = calloc(NX, sizeof(real));
    g->dv = calloc(NXV(Nv), sizeof(real)), g->ds0 = calloc(NS(Nv), sizeof(real));
}
static void grads_free(WkvGrads *g) {
    free(g->dr), free(g->dw), free(g->dk), free(g->dv), free(g->dkk), free(g->da), free(g->ds0);
}
static void backward(WkvCase *c, WkvGrads *g) {
    wkv_loss(c);
    wkv7_backward(g->dr, g->dw, g->dk, g->dv, g->dkk, g->da, g->ds0, c->dy, c->dsT, c->ckpt, c->r, c->w, c->k,
                  c->v, c->kk, c->a, &c->d);
}

static void fd_check_n(int Nv, unsigned long seed, size_t max_elems, GradTol tol) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, seed);
    WkvCase c;
    make_case_nv(&c, rng, 3, Nv); /* K = 3 does not divide T = 7: exercises a partial last chunk */
    WkvGrads g;
    grads_alloc_nv(&g, Nv);
    backward(&c, &g);
    printf("wkv7 N=%d Nv=%d:\n", N, Nv);
    check_grad("wkv7.r", c.r, g.dr, NX, wkv_loss, &c, max_elems, rng, tol);
    check_grad("wkv7.w", c.w, g.dw, NX, wkv_loss, &c, max_elems, rng, tol);
    check_grad("wkv7.k", c.k, g.dk, NX, wkv_loss, &c, max_elems, rng, tol);
    check_grad("wkv7.v", c.v, g.dv, NXV(Nv), wkv_loss, &c, max_elems, rng, tol);
    check_grad("wkv7.kk", c.kk, g.dkk, NX, wkv_loss, &c, max_elems, rng, tol);
    check_grad("wkv7.a", c.a, g.da, NX, wkv_loss, &c, max_elems, rng, tol);
    check_grad("wkv7.s0", c.s0, g.ds0, NS(Nv), wkv_loss, &c, max_elems, rng, tol);
    grads_free(&g);
    free_case(&c);
    gsl_rng_free(rng);
}
static void fd_check(int Nv, unsigned long seed) { fd_check_n(Nv, seed, (size_t)-1, GRAD_TOL); }
Test(grad_wkv7, finite_differences_chunked) { fd_check(N, 7); }
Test(grad_wkv7, finite_differences_wide_value) { fd_check(2 * N, 8); }
/* the head sizes with their own kernels and a generic one with a partial vector: B 1, T 5, H 2, K 3, a
 * random subset of 40 elements per tensor. The loss sums thousands of terms here, so the central difference
 * with h = 1e-6 carries ~1e-7 of rounding noise (it fails the old kernels as well): h = 1e-5 instead, whose
 * truncation error (h^2/6 times the third derivative) stays ~1e-9; the error limits are GRAD_TOL's. */
static const GradTol WIDE_TOL = {1e-8, 1e-5, 1e-5};
Test(grad_wkv7, finite_differences_n32) { set_shape(1, 5, 2, 32), fd_check_n(32, 9, 40, WIDE_TOL); }
Test(grad_wkv7, finite_differences_n32_wide_value) { set_shape(1, 5, 2, 32), fd_check_n(64, 10, 40, WIDE_TOL); }
Test(grad_wkv7, finite_differences_n64) { set_shape(1, 5, 2, 64), fd_check_n(64, 11, 40, WIDE_TOL); }
Test(grad_wkv7, finite_differences_n40_wide_value) { set_shape(1, 5, 2, 40), fd_check_n(80, 12, 40, WIDE_TOL); }

/* Forward against the matrix definition, written independently per token and head:
 * S_t = S_{t-1} diag(w) + (S_{t-1}(-kk)) (kk*a)^T + v k^T (S_t is Nv x N), y = S_t r. */
static void definition_check(int Nv) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 21);
    WkvCase c;
    make_case_nv(&c, rng, 2, Nv);
    wkv_loss(&c);
    double worst = 0;
    real *S = malloc((size_t)Nv * N * sizeof(real)), *Sn = malloc((size_t)Nv * N * sizeof(real));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            memcpy(S, c.s0 + ((size_t)b * H + h) * Nv * N, (size_t)Nv * N * sizeof(real));
            for (int t = 0; t < T; t++) {
                const size_t o = ((size_t)b * T + t) * C + (size_t)h * N, ov = ((size_t)b * T + t) * H * Nv + (size_t)h * Nv;
                for (int i = 0; i < Nv; i++) {
                    double Sq = 0; /* (S (-kk))_i */
                    for (int j = 0; j < N; j++) Sq -= S[i * N + j] * c.kk[o + j];
                    for (int j = 0; j < N; j++)
                        Sn[i * N + j] = S[i * N + j] * c.w[o + j] + Sq * c.kk[o + j] * c.a[o + j] + c.v[ov + i] * c.k[o + j];
                }
                memcpy(S, Sn, (size_t)Nv * N * sizeof(real));
                for (int i = 0; i < Nv; i++) {
                    double y = 0;
                    for (int j = 0; j < N; j++) y += S[i * N + j] * c.r[o + j];
                    worst = fmax(worst, fabs(y - c.y[ov + i]));
                }
            }
            for (int e = 0; e < Nv * N; e++) worst = fmax(worst, fabs(S[e] - c.sT[((size_t)b * H + h) * Nv * N + e]));
        }
    printf("wkv7 N=%d Nv=%d vs the matrix definition: max |diff| = %.3g (limit 1e-12)\n", N, Nv, worst);
    cr_expect(worst <= 1e-12, "WKV7 (Nv=%d) differs from its definition by %g", Nv, worst);
    free(S), free(Sn);
    free_case(&c);
    gsl_rng_free(rng);
}
Test(grad_wkv7, definition_square) { definition_check(N); }
Test(grad_wkv7, definition_wide_value) { definition_check(2 * N); }
Test(grad_wkv7, definition_n32_n40_n64) {
    int ns[] = {32, 40, 64};
    for (int i = 0; i < 3; i++) set_shape(2, 7, 2, ns[i]), definition_check(N), definition_check(2 * N);
}

/* Chunked (K = 2, 3, 5, 7, 16) must reproduce the store-everything backward (K = 1) bit for bit. */
static void chunked_check(int Nv) {
    int Ks[] = {2, 3, 5, 7, 16};
    WkvGrads ref;
    grads_alloc_nv(&ref, Nv);
    {
        gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
        gsl_rng_set(rng, 11);
        WkvCase c;
        make_case_nv(&c, rng, 1, Nv);
        backward(&c, &ref);
        free_case(&c);
        gsl_rng_free(rng);
    }
    for (int ki = 0; ki < 5; ki++) {
        gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
        gsl_rng_set(rng, 11);
        WkvCase c;
        make_case_nv(&c, rng, Ks[ki], Nv);
        WkvGrads g;
        grads_alloc_nv(&g, Nv);
        backward(&c, &g);
        cr_expect(memcmp(g.dr, ref.dr, NX * sizeof(real)) == 0, "K=%d dr differs", Ks[ki]);
        cr_expect(memcmp(g.dw, ref.dw, NX * sizeof(real)) == 0, "K=%d dw differs", Ks[ki]);
        cr_expect(memcmp(g.dk, ref.dk, NX * sizeof(real)) == 0, "K=%d dk differs", Ks[ki]);
        cr_expect(memcmp(g.dv, ref.dv, NXV(Nv) * sizeof(real)) == 0, "K=%d dv differs", Ks[ki]);
        cr_expect(memcmp(g.dkk, ref.dkk, NX * sizeof(real)) == 0, "K=%d dkk differs", Ks[ki]);
        cr_expect(memcmp(g.da, ref.da, NX * sizeof(real)) == 0, "K=%d da differs", Ks[ki]);
        cr_expect(memcmp(g.ds0, ref.ds0, NS(Nv) * sizeof(real)) == 0, "K=%d ds0 differs", Ks[ki]);
        printf("  wkv7 Nv=%d chunked K=%d: checkpoint %zu values vs %zu for K=1; gradients bit-identical\n", Nv,
               Ks[ki], wkv7_ckpt_numel(&c.d), (size_t)B * H * T * Nv * N);
        grads_free(&g);
        free_case(&c);
        gsl_rng_free(rng);
    }
    grads_free(&ref);
}
Test(grad_wkv7, chunked_equals_unchunked) { chunked_check(N); }
Test(grad_wkv7, chunked_equals_unchunked_wide_value) { chunked_check(2 * N); }
Test(grad_wkv7, chunked_equals_unchunked_n32_n40_n64) {
    int ns[] = {32, 40, 64};
    for (int i = 0; i < 3; i++) set_shape(2, 7, 2, ns[i]), chunked_check(N), chunked_check(2 * N);
}

/* Splitting a sequence and carrying the state equals one pass (the recurrence from any start state). */
static void state_carry_check(void) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 5);
    WkvCase c;
    make_case(&c, rng, 2);
    wkv_loss(&c);
    /* one sequence (b = 0 only, B = 1 view) token by token */
    Wkv7Dims d1 = {.B = 1, .T = 1, .H = H, .N = N, .K = 1, .Nv = N};
    real S[H * N * N], y1[C], ck[H * N * N];
    memcpy(S, c.s0, sizeof S);
    double maxdiff = 0;
    for (int t = 0; t < T; t++) {
        size_t o = (size_t)t * C; /* b = 0 */
        wkv7_forward(y1, ck, S, NULL, c.r + o, c.w + o, c.k + o, c.v + o, c.kk + o, c.a + o, S, &d1);
        for (int i = 0; i < C; i++) maxdiff = fmax(maxdiff, fabs(y1[i] - c.y[o + i]));
    }
    for (int i = 0; i < H * N * N; i++) maxdiff = fmax(maxdiff, fabs(S[i] - c.sT[i]));
    printf("  wkv7 N=%d token-by-token vs sequence: max |diff| = %.3g\n", N, maxdiff);
    cr_expect(maxdiff == 0, "recurrent and sequence WKV differ by %g", maxdiff);
    free_case(&c);
    gsl_rng_free(rng);
}
Test(grad_wkv7, state_carry_equals_one_pass) { state_carry_check(); }
Test(grad_wkv7, state_carry_equals_one_pass_n32_n40_n64) {
    int ns[] = {32, 40, 64};
    for (int i = 0; i < 3; i++) set_shape(2, 7, 2, ns[i]), state_carry_check();
}
