/* grad_wkv7.c -- the WKV7 recurrence: backward vs finite differences (all inputs, initial state, with an
 * upstream gradient on the final state), and the chunked backward vs the store-everything backward. */
#include <string.h>

#include "gradcheck.h"
#include "wkv7.h"

enum { B = 2, T = 7, H = 2, N = 4, C = H * N };
#define NX ((size_t)B * T * C)
#define NS ((size_t)B * H * N * N)

typedef struct {
    real *r, *w, *k, *v, *kk, *a, *s0;
    real *y, *sT, *ckpt, *dy, *dsT;
    Wkv7Dims d;
} WkvCase;

static double wkv_loss(void *ctx) {
    WkvCase *c = ctx;
    wkv7_forward(c->y, c->ckpt, c->sT, NULL, c->r, c->w, c->k, c->v, c->kk, c->a, c->s0, &c->d);
    return dot_loss(c->y, c->dy, NX) + dot_loss(c->sT, c->dsT, NS);
}

/* realistic regime: w in (0.545, 1), kk unit per head, a in (0, 1) */
static void make_case(WkvCase *c, gsl_rng *rng, int K) {
    real **arr[] = {&c->r, &c->w, &c->k, &c->v, &c->kk, &c->a, &c->y, &c->dy};
    for (int i = 0; i < 8; i++) *arr[i] = calloc(NX, sizeof(real));
    c->s0 = calloc(NS, sizeof(real)), c->sT = calloc(NS, sizeof(real)), c->dsT = calloc(NS, sizeof(real));
    c->d = (Wkv7Dims){B, T, H, N, K};
    c->ckpt = calloc(wkv7_ckpt_numel(&c->d), sizeof(real));
    fill_uniform(c->r, NX, rng, -1, 1), fill_uniform(c->k, NX, rng, -1, 1), fill_uniform(c->v, NX, rng, -1, 1);
    fill_uniform(c->w, NX, rng, 0.55, 0.999), fill_uniform(c->a, NX, rng, 0.01, 0.99);
    fill_uniform(c->kk, NX, rng, -1, 1);
    for (size_t h = 0; h < NX / N; h++) {
        double s = 0;
        for (int j = 0; j < N; j++) s += c->kk[h * N + j] * c->kk[h * N + j];
        for (int j = 0; j < N; j++) c->kk[h * N + j] /= sqrt(s);
    }
    fill_uniform(c->s0, NS, rng, -0.5, 0.5);
    fill_uniform(c->dy, NX, rng, -1, 1), fill_uniform(c->dsT, NS, rng, -1, 1);
}

static void free_case(WkvCase *c) {
    free(c->r), free(c->w), free(c->k), free(c->v), free(c->kk), free(c->a), free(c->y), free(c->dy);
    free(c->s0), free(c->sT), free(c->dsT), free(c->ckpt);
}

typedef struct { real *dr, *dw, *dk, *dv, *dkk, *da, *ds0; } WkvGrads;
static void grads_alloc(WkvGrads *g) {
    real **arr[] = {&g->dr, &g->dw, &g->dk, &g->dv, &g->dkk, &g->da};
    for (int i = 0; i < 6; i++) *arr[i] = calloc(NX, sizeof(real));
    g->ds0 = calloc(NS, sizeof(real));
}
static void grads_free(WkvGrads *g) {
    free(g->dr), free(g->dw), free(g->dk), free(g->dv), free(g->dkk), free(g->da), free(g->ds0);
}
static void backward(WkvCase *c, WkvGrads *g) {
    wkv_loss(c);
    wkv7_backward(g->dr, g->dw, g->dk, g->dv, g->dkk, g->da, g->ds0, c->dy, c->dsT, c->ckpt, c->r, c->w, c->k,
                  c->v, c->kk, c->a, &c->d);
}

Test(grad_wkv7, finite_differences_chunked) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 7);
    WkvCase c;
    make_case(&c, rng, 3); /* K = 3 does not divide T = 7: exercises a partial last chunk */
    WkvGrads g;
    grads_alloc(&g);
    backward(&c, &g);
    check_grad("wkv7.r", c.r, g.dr, NX, wkv_loss, &c, NX, rng, GRAD_TOL);
    check_grad("wkv7.w", c.w, g.dw, NX, wkv_loss, &c, NX, rng, GRAD_TOL);
    check_grad("wkv7.k", c.k, g.dk, NX, wkv_loss, &c, NX, rng, GRAD_TOL);
    check_grad("wkv7.v", c.v, g.dv, NX, wkv_loss, &c, NX, rng, GRAD_TOL);
    check_grad("wkv7.kk", c.kk, g.dkk, NX, wkv_loss, &c, NX, rng, GRAD_TOL);
    check_grad("wkv7.a", c.a, g.da, NX, wkv_loss, &c, NX, rng, GRAD_TOL);
    check_grad("wkv7.s0", c.s0, g.ds0, NS, wkv_loss, &c, NS, rng, GRAD_TOL);
    grads_free(&g);
    free_case(&c);
    gsl_rng_free(rng);
}

/* Chunked (K = 2, 3, 5, 7, 16) must reproduce the store-everything backward (K = 1) bit for bit. */
Test(grad_wkv7, chunked_equals_unchunked) {
    int Ks[] = {2, 3, 5, 7, 16};
    WkvGrads ref;
    grads_alloc(&ref);
    {
        gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
        gsl_rng_set(rng, 11);
        WkvCase c;
        make_case(&c, rng, 1);
        backward(&c, &ref);
        free_case(&c);
        gsl_rng_free(rng);
    }
    for (int ki = 0; ki < 5; ki++) {
        gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
        gsl_rng_set(rng, 11);
        WkvCase c;
        make_case(&c, rng, Ks[ki]);
        WkvGrads g;
        grads_alloc(&g);
        backward(&c, &g);
        cr_expect(memcmp(g.dr, ref.dr, NX * sizeof(real)) == 0, "K=%d dr differs", Ks[ki]);
        cr_expect(memcmp(g.dw, ref.dw, NX * sizeof(real)) == 0, "K=%d dw differs", Ks[ki]);
        cr_expect(memcmp(g.dk, ref.dk, NX * sizeof(real)) == 0, "K=%d dk differs", Ks[ki]);
        cr_expect(memcmp(g.dv, ref.dv, NX * sizeof(real)) == 0, "K=%d dv differs", Ks[ki]);
        cr_expect(memcmp(g.dkk, ref.dkk, NX * sizeof(real)) == 0, "K=%d dkk differs", Ks[ki]);
        cr_expect(memcmp(g.da, ref.da, NX * sizeof(real)) == 0, "K=%d da differs", Ks[ki]);
        cr_expect(memcmp(g.ds0, ref.ds0, NS * sizeof(real)) == 0, "K=%d ds0 differs", Ks[ki]);
        printf("  wkv7 chunked K=%d: checkpoint %zu values vs %zu for K=1; gradients bit-identical\n", Ks[ki],
               wkv7_ckpt_numel(&c.d), (size_t)B * H * T * N * N);
        grads_free(&g);
        free_case(&c);
        gsl_rng_free(rng);
    }
    grads_free(&ref);
}

/* Splitting a sequence and carrying the state equals one pass (the recurrence from any start state). */
Test(grad_wkv7, state_carry_equals_one_pass) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 5);
    WkvCase c;
    make_case(&c, rng, 2);
    wkv_loss(&c);
    /* one sequence (b = 0 only, B = 1 view) token by token */
    Wkv7Dims d1 = {1, 1, H, N, 1};
    real S[H * N * N], y1[C], ck[H * N * N];
    memcpy(S, c.s0, sizeof S);
    double maxdiff = 0;
    for (int t = 0; t < T; t++) {
        size_t o = (size_t)t * C; /* b = 0 */
        wkv7_forward(y1, ck, S, NULL, c.r + o, c.w + o, c.k + o, c.v + o, c.kk + o, c.a + o, S, &d1);
        for (int i = 0; i < C; i++) maxdiff = fmax(maxdiff, fabs(y1[i] - c.y[o + i]));
    }
    for (int i = 0; i < H * N * N; i++) maxdiff = fmax(maxdiff, fabs(S[i] - c.sT[i]));
    printf("  wkv7 token-by-token vs sequence: max |diff| = %.3g\n", maxdiff);
    cr_expect(maxdiff == 0, "recurrent and sequence WKV differ by %g", maxdiff);
    free_case(&c);
    gsl_rng_free(rng);
}
