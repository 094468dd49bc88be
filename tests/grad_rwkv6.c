/* grad_rwkv6.c -- RWKV-6 (x060) in double precision:
 *  - the WKV6 kernel (N = 4, and 32, 40, 64: its specialised and generic vector kernels) against a direct
 *    implementation of its definition (y_t = S_{t-1}^T r + ((u*k).r) v,
 *    S_t = diag(w) S_{t-1} + k v^T, state [key][value]) from a non-zero state; its backward against finite
 *    differences (every input, u, the initial state, an upstream gradient on the final state); chunked ==
 *    unchunked bit for bit; token by token == one pass;
 *  - RWKV-6's own small ops (ddlerp, decay) against finite differences;
 *  - a tiny model with every parameter tensor against finite differences (each gradient also non-zero; with
 *    and without model.short_conv), recurrent == sequence from a non-zero state (including the conv's
 *    history), chunked == unchunked, and the trace (state transposed to
 *    the common orientation, transition diag(w)). */
#include <string.h>

#include "gradcheck.h"
#include "rwkv6.h"
#include "wkv6.h"

/* ---- the kernel ------------------------------------------------------------------------------------- */
/* the kernel case's shape: the small default, or the head sizes with their own kernels (N = 32, 64) and the
 * generic kernel with a partial vector (N = 40), set by set_kshape */
static int KB = 2, KT = 7, KH = 2, KN = 4, KC = 8;
static void set_kshape(int b, int t, int h, int n) { KB = b, KT = t, KH = h, KN = n, KC = h * n; }
static void default_kshape(void) { set_kshape(2, 7, 2, 4); }
TestSuite(grad_rwkv6, .init = default_kshape);
#define NX ((size_t)KB * KT * KC)
#define NS ((size_t)KB * KH * KN * KN)
#define NU ((size_t)KH * KN)

typedef struct {
    real *r, *k, *v, *w, *u, *s0;
    real *y, *sT, *ckpt, *dy, *dsT;
    Wkv6Dims d;
} WkvCase;

static double wkv_loss(void *ctx) {
    WkvCase *c = ctx;
    wkv6_forward(c->y, c->ckpt, c->sT, NULL, c->r, c->k, c->v, c->w, c->u, c->s0, &c->d);
    return dot_loss(c->y, c->dy, NX) + dot_loss(c->sT, c->dsT, NS);
}

/* the model's regime: w = exp(-exp(z)) in (0,1) (here 0.3 .. 0.999), u of either sign */
static void make_case(WkvCase *c, gsl_rng *rng, int K) {
    real **arr[] = {&c->r, &c->k, &c->v, &c->w, &c->y, &c->dy};
    for (int i = 0; i < 6; i++) *arr[i] = calloc(NX, sizeof(real));
    c->u = calloc(NU, sizeof(real));
    c->s0 = calloc(NS, sizeof(real)), c->sT = calloc(NS, sizeof(real)), c->dsT = calloc(NS, sizeof(real));
    c->d = (Wkv6Dims){KB, KT, KH, KN, K};
    c->ckpt = calloc(wkv6_ckpt_numel(&c->d), sizeof(real));
    fill_uniform(c->r, NX, rng, -1, 1), fill_uniform(c->k, NX, rng, -1, 1), fill_uniform(c->v, NX, rng, -1, 1);
    fill_uniform(c->w, NX, rng, 0.3, 0.999), fill_uniform(c->u, NU, rng, -1, 1);
    fill_uniform(c->s0, NS, rng, -0.5, 0.5);
    fill_uniform(c->dy, NX, rng, -1, 1), fill_uniform(c->dsT, NS, rng, -1, 1);
}
static void free_case(WkvCase *c) {
    free(c->r), free(c->k), free(c->v), free(c->w), free(c->u), free(c->y), free(c->dy);
    free(c->s0), free(c->sT), free(c->dsT), free(c->ckpt);
}

typedef struct { real *dr, *dk, *dv, *dw, *du, *ds0; } WkvGrads;
static void grads_alloc(WkvGrads *g) {
    real **arr[] = {&g->dr, &g->dk, &g->dv, &g->dw};
    for (int i = 0; i < 4; i++) *arr[i] = calloc(NX, sizeof(real));
    g->du = calloc(NU, sizeof(real)), g->ds0 = calloc(NS, sizeof(real));
}
static void grads_free(WkvGrads *g) { free(g->dr), free(g->dk), free(g->dv), free(g->dw), free(g->du), free(g->ds0); }
static void backward(WkvCase *c, WkvGrads *g) {
    wkv_loss(c);
    wkv6_backward(g->dr, g->dk, g->dv, g->dw, g->du, g->ds0, c->dy, c->dsT, c->ckpt, c->r, c->k, c->v, c->w, c->u,
                  &c->d);
}

/* The definition, written out without the kernel's loop order: for every (b, h, t)
 *   y[j] = sum_i r[i] * (u[i] k[i] v[j] + S[i][j]) ;  then S[i][j] = w[i] S[i][j] + k[i] v[j]. */
static void definition_check(void) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 3);
    WkvCase c;
    make_case(&c, rng, 3);
    wkv_loss(&c);
    double worst = 0, scale = 0;
    for (int b = 0; b < KB; b++)
        for (int h = 0; h < KH; h++) {
            double S[KN][KN];
            for (int i = 0; i < KN; i++)
                for (int j = 0; j < KN; j++) S[i][j] = c.s0[((size_t)(b * KH + h) * KN + i) * KN + j];
            for (int t = 0; t < KT; t++) {
                const size_t o = ((size_t)b * KT + t) * KC + (size_t)h * KN;
                const real *r = c.r + o, *k = c.k + o, *v = c.v + o, *w = c.w + o, *u = c.u + (size_t)h * KN;
                for (int j = 0; j < KN; j++) {
                    double yj = 0;
                    for (int i = 0; i < KN; i++) yj += r[i] * (u[i] * k[i] * v[j] + S[i][j]);
                    worst = fmax(worst, fabs(yj - c.y[o + j]));
                    scale = fmax(scale, fabs(yj));
                }
                for (int i = 0; i < KN; i++)
                    for (int j = 0; j < KN; j++) S[i][j] = w[i] * S[i][j] + k[i] * v[j];
            }
            for (int i = 0; i < KN; i++)
                for (int j = 0; j < KN; j++)
                    worst = fmax(worst, fabs(S[i][j] - c.sT[((size_t)(b * KH + h) * KN + i) * KN + j]));
        }
    printf("  wkv6 vs its definition (non-zero s0): max |diff| = %.3g (outputs up to %.3g; limit 1e-12)\n", worst,
           scale);
    cr_expect(scale > 0.1, "degenerate case");
    cr_expect(worst <= 1e-12, "WKV6 differs from y = S_{t-1}^T r + ((u*k).r) v by %g", worst);
    free_case(&c);
    gsl_rng_free(rng);
}
Test(grad_rwkv6, wkv6_matches_its_definition) { definition_check(); }
Test(grad_rwkv6, wkv6_matches_its_definition_n32_n40_n64) {
    int ns[] = {32, 40, 64};
    for (int i = 0; i < 3; i++) set_kshape(2, 7, 2, ns[i]), definition_check();
}

static void fd_check(unsigned long seed, size_t max_elems, GradTol tol) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, seed);
    WkvCase c;
    make_case(&c, rng, 3); /* K = 3 does not divide T = 7: a partial last chunk */
    WkvGrads g;
    grads_alloc(&g);
    backward(&c, &g);
    check_grad("wkv6.r", c.r, g.dr, NX, wkv_loss, &c, max_elems, rng, tol);
    check_grad("wkv6.k", c.k, g.dk, NX, wkv_loss, &c, max_elems, rng, tol);
    check_grad("wkv6.v", c.v, g.dv, NX, wkv_loss, &c, max_elems, rng, tol);
    check_grad("wkv6.w", c.w, g.dw, NX, wkv_loss, &c, max_elems, rng, tol);
    check_grad("wkv6.u", c.u, g.du, NU, wkv_loss, &c, max_elems, rng, tol);
    check_grad("wkv6.s0", c.s0, g.ds0, NS, wkv_loss, &c, max_elems, rng, tol);
    grads_free(&g);
    free_case(&c);
    gsl_rng_free(rng);
}
Test(grad_rwkv6, wkv6_finite_differences_chunked) { fd_check(7, (size_t)-1, GRAD_TOL); }
/* B 1, T 7, H 2, K 3, a random subset of 40 elements per tensor. The loss sums thousands of terms here, so the
 * central difference with h = 1e-6 carries ~1e-7 of rounding noise: h = 1e-5 instead, whose truncation error
 * (h^2/6 times the third derivative) stays ~1e-9; the error limits are GRAD_TOL's. */
static const GradTol WIDE_TOL = {1e-8, 1e-5, 1e-5};
Test(grad_rwkv6, wkv6_finite_differences_n32_n40_n64) {
    int ns[] = {32, 40, 64};
    for (int i = 0; i < 3; i++) printf("wkv6 N=%d:\n", ns[i]), set_kshape(1, 7, 2, ns[i]), fd_check(20 + i, 40, WIDE_TOL);
}

/* Chunked (K = 2, 3, 5, 7, 16) reproduces the store-everything backward (K = 1) bit for bit. */
static void chunked_check(void) {
    int Ks[] = {1, 2, 3, 5, 7, 16};
    WkvGrads ref = {0};
    for (int ki = 0; ki < 6; ki++) {
        gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
        gsl_rng_set(rng, 11);
        WkvCase c;
        make_case(&c, rng, Ks[ki]);
        WkvGrads g;
        grads_alloc(&g);
        backward(&c, &g);
        if (ki == 0) {
            ref = g;
        } else {
            cr_expect(!memcmp(g.dr, ref.dr, NX * sizeof(real)), "K=%d dr differs", Ks[ki]);
            cr_expect(!memcmp(g.dk, ref.dk, NX * sizeof(real)), "K=%d dk differs", Ks[ki]);
            cr_expect(!memcmp(g.dv, ref.dv, NX * sizeof(real)), "K=%d dv differs", Ks[ki]);
            cr_expect(!memcmp(g.dw, ref.dw, NX * sizeof(real)), "K=%d dw differs", Ks[ki]);
            cr_expect(!memcmp(g.du, ref.du, NU * sizeof(real)), "K=%d du differs", Ks[ki]);
            cr_expect(!memcmp(g.ds0, ref.ds0, NS * sizeof(real)), "K=%d ds0 differs", Ks[ki]);
            printf("  wkv6 chunked K=%d: checkpoint %zu values vs %zu for K=1; gradients bit-identical\n", Ks[ki],
                   wkv6_ckpt_numel(&c.d), NS * KT);
            grads_free(&g);
        }
        free_case(&c);
        gsl_rng_free(rng);
    }
    grads_free(&ref);
}
Test(grad_rwkv6, wkv6_chunked_equals_unchunked) { chunked_check(); }
Test(grad_rwkv6, wkv6_chunked_equals_unchunked_n32_n40_n64) {
    int ns[] = {32, 40, 64};
    for (int i = 0; i < 3; i++) set_kshape(2, 7, 2, ns[i]), chunked_check();
}

/* One token at a time carrying the state == one pass. */
static void state_carry_check(void) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 5);
    WkvCase c;
    make_case(&c, rng, 2);
    wkv_loss(&c);
    Wkv6Dims d1 = {1, 1, KH, KN, 1};
    real S[KH * KN * KN], y1[KC];
    memcpy(S, c.s0, sizeof S); /* b = 0 */
    double maxdiff = 0;
    for (int t = 0; t < KT; t++) {
        size_t o = (size_t)t * KC;
        wkv6_forward(y1, NULL, S, NULL, c.r + o, c.k + o, c.v + o, c.w + o, c.u, S, &d1);
        for (int i = 0; i < KC; i++) maxdiff = fmax(maxdiff, fabs(y1[i] - c.y[o + i]));
    }
    for (int i = 0; i < KH * KN * KN; i++) maxdiff = fmax(maxdiff, fabs(S[i] - c.sT[i]));
    printf("  wkv6 N=%d token-by-token vs sequence: max |diff| = %.3g\n", KN, maxdiff);
    cr_expect(maxdiff == 0, "recurrent and sequence WKV6 differ by %g", maxdiff);
    free_case(&c);
    gsl_rng_free(rng);
}
Test(grad_rwkv6, wkv6_state_carry_equals_one_pass) { state_carry_check(); }
Test(grad_rwkv6, wkv6_state_carry_equals_one_pass_n32_n40_n64) {
    int ns[] = {32, 40, 64};
    for (int i = 0; i < 3; i++) set_kshape(2, 7, 2, ns[i]), state_carry_check();
}

/* ---- RWKV-6's small ops ------------------------------------------------------------------------------- */
enum { OR = 5, OC = 6 };
typedef struct { real *x, *prev, *mu, *m, *z, *out, *ez, *dout; } OpCase;

static double ddlerp_loss(void *ctx) {
    OpCase *c = ctx;
    rwkv6_ddlerp_forward(c->out, c->x, c->prev, c->mu, c->m, OR, OC);
    return dot_loss(c->out, c->dout, OR * OC);
}
Test(grad_rwkv6, ddlerp_op) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 21);
    real x[OR * OC], prev[OR * OC], mu[OC], m[OR * OC], out[OR * OC], dout[OR * OC];
    real dx[OR * OC] = {0}, dprev[OR * OC] = {0}, dmu[OC] = {0}, dm[OR * OC] = {0};
    fill_uniform(x, OR * OC, rng, -1, 1), fill_uniform(prev, OR * OC, rng, -1, 1), fill_uniform(mu, OC, rng, 0, 1);
    fill_uniform(m, OR * OC, rng, -0.3, 0.3), fill_uniform(dout, OR * OC, rng, -1, 1);
    OpCase c = {.x = x, .prev = prev, .mu = mu, .m = m, .out = out, .dout = dout};
    rwkv6_ddlerp_backward(dx, dprev, dmu, dm, dout, x, prev, mu, m, OR, OC);
    check_grad("ddlerp.x", x, dx, OR * OC, ddlerp_loss, &c, 400, rng, GRAD_TOL);
    check_grad("ddlerp.prev", prev, dprev, OR * OC, ddlerp_loss, &c, 400, rng, GRAD_TOL);
    check_grad("ddlerp.mu", mu, dmu, OC, ddlerp_loss, &c, 400, rng, GRAD_TOL);
    check_grad("ddlerp.m", m, dm, OR * OC, ddlerp_loss, &c, 400, rng, GRAD_TOL);
    gsl_rng_free(rng);
}

static double decay_loss(void *ctx) {
    OpCase *c = ctx;
    rwkv6_decay_forward(c->out, c->ez, c->z, OR * OC);
    return dot_loss(c->out, c->dout, OR * OC);
}
Test(grad_rwkv6, decay_op) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 22);
    real z[OR * OC], w[OR * OC], ez[OR * OC], dout[OR * OC], dz[OR * OC] = {0};
    fill_uniform(z, OR * OC, rng, -7, 2), fill_uniform(dout, OR * OC, rng, -1, 1);
    OpCase c = {.z = z, .out = w, .ez = ez, .dout = dout};
    decay_loss(&c);
    for (int i = 0; i < OR * OC; i++) {
        cr_expect(w[i] > 0 && w[i] < 1, "decay %g outside (0,1)", w[i]);
        cr_expect(fabs(w[i] - exp(-exp(z[i]))) <= 1e-15, "decay is not exp(-exp(z))");
    }
    rwkv6_decay_backward(dz, dout, w, ez, OR * OC);
    check_grad("decay.z", z, dz, OR * OC, decay_loss, &c, 400, rng, GRAD_TOL);
    /* far beyond the fp range (ez = inf, w = 0): the gradient is 0, not NaN */
    real zb = 1000, wb, eb, db = 0, one = 1;
    rwkv6_decay_forward(&wb, &eb, &zb, 1);
    rwkv6_decay_backward(&db, &one, &wb, &eb, 1);
    cr_expect(wb == 0 && db == 0, "decay at z = 1000: w = %g, dz = %g (expected 0, 0)", wb, db);
    gsl_rng_free(rng);
}

/* ---- the whole model ------------------------------------------------------------------------------------ */
enum { B = 2, T = 20, V = 11 };

typedef struct {
    Model *m;
    int *tok, *tgt;
    unsigned char *mask;
    int K;
} ModelCase;

static double case_loss(void *ctx) {
    ModelCase *c = ctx;
    long nc, cnt;
    ModelFwd f = {.K = c->K};
    model_forward(c->m, c->tok, B, T, &f);
    return model_loss(c->m, c->tgt, c->mask, NULL, &nc, &cnt);
}

/* Official init, then every tensor perturbed so that no gradient path is trivially zero (the official init
 * zeroes time_maa_w1, time_decay_w1, att.output, ffn.receptance and ffn.value). */
static Model *tiny_model(gsl_rng *rng, int L, int C, int N, int ln0, int conv) {
    Rwkv6Dims d = {.V = V, .C = C, .L = L, .N = N, .Dm = 3, .Dd = 5, .has_ln0 = ln0, .conv = conv};
    Model *m = model_create(&model_rwkv6, &d, 1);
    model_init(m, rng, NULL);
    for (int i = 0; i < m->ntensors; i++) {
        const ParamTensor *p = &m->tensors[i];
        real *x = m->params + p->offset;
        double s = strstr(p->name, "emb") ? 0.5 : 0.2;
        for (size_t e = 0; e < p->numel; e++) x[e] += (real)(s * (2 * gsl_rng_uniform(rng) - 1));
    }
    return m;
}

static void make_data(ModelCase *c, gsl_rng *rng) {
    c->tok = malloc(B * T * sizeof(int)), c->tgt = malloc(B * T * sizeof(int)), c->mask = malloc(B * T);
    for (int i = 0; i < B * T; i++) {
        c->tok[i] = gsl_rng_uniform_int(rng, V);
        c->tgt[i] = gsl_rng_uniform_int(rng, V);
        c->mask[i] = (i % 5) != 2;
    }
}

static void full_check(int L, int C, int N, int ln0, int conv, int per_tensor, unsigned long seed) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, seed);
    ModelCase c = {.m = tiny_model(rng, L, C, N, ln0, conv), .K = 6};
    make_data(&c, rng);
    Model *m = c.m;
    printf("tiny RWKV-6 L=%d C=%d N=%d T=%d B=%d V=%d ln0=%d short_conv=%d: %d tensors, %zu params\n", L, C, N, T, B,
           V, ln0, conv, m->ntensors, m->nparams);
    memset(m->grads, 0, m->nparams * sizeof(real));
    case_loss(&c);
    model_backward(m);
    real *analytic = malloc(m->nparams * sizeof(real));
    memcpy(analytic, m->grads, m->nparams * sizeof(real));
    double worst = 0;
    for (int i = 0; i < m->ntensors; i++) {
        const ParamTensor *p = &m->tensors[i];
        double nz = 0;
        for (size_t e = 0; e < p->numel; e++) nz += fabs(analytic[p->offset + e]);
        cr_expect(nz > 0, "%s: gradient is identically zero (path not exercised)", p->name);
        double w = check_grad(p->name, m->params + p->offset, analytic + p->offset, p->numel, case_loss, &c, per_tensor, rng,
                              GRAD_TOL);
        if (w > worst) worst = w;
    }
    printf("worst err/limit over all %d tensors: %.3f (headroom %.1fx)\n", m->ntensors, worst, 1 / worst);
    free(analytic), free(c.tok), free(c.tgt), free(c.mask);
    model_free(m);
    gsl_rng_free(rng);
}

Test(grad_rwkv6, every_tensor_two_layers, .timeout = 600) { full_check(2, 24, 8, 1, 0, 40, 101); }
Test(grad_rwkv6, every_tensor_one_layer_no_ln0, .timeout = 600) { full_check(1, 16, 4, 0, 0, 40, 202); }
Test(grad_rwkv6, every_tensor_three_layers, .timeout = 600) { full_check(3, 16, 8, 1, 0, 24, 303); }
/* model.short_conv = 4 on r, k, v (att.{r,k,v}_conv.weight) */
Test(grad_rwkv6, every_tensor_short_conv, .timeout = 600) { full_check(2, 16, 8, 1, 4, 32, 404); }

/* Sequence mode over T tokens == recurrent mode one token at a time, both from the same non-zero state. */
static void recurrent_check(int conv) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 9);
    Model *m = tiny_model(rng, 2, 24, 8, 1, conv);
    const Rwkv6Dims *d = &((Rwkv6 *)m->self)->d;
    int tok[B * T];
    for (int i = 0; i < B * T; i++) tok[i] = gsl_rng_uniform_int(rng, V);
    size_t ns = model_state_numel(m, B), n1 = model_state_numel(m, 1);
    real *s0 = malloc(ns * sizeof(real)), *sseq = malloc(ns * sizeof(real));
    fill_uniform(s0, ns, rng, -0.3, 0.3);
    real *seq = malloc((size_t)B * T * V * sizeof(real));
    ModelFwd f = {.K = 4, .state_in = s0, .state_out = sseq};
    memcpy(seq, model_forward(m, tok, B, T, &f), (size_t)B * T * V * sizeof(real));
    double maxd = 0, ref = 0;
    const size_t C = d->C, NN = (size_t)d->H * d->N * d->N, HC = conv > 1 ? (size_t)(conv - 1) * C : 0;
    for (int b = 0; b < B; b++) {
        real *s = malloc(n1 * sizeof(real)); /* sequence b's state, out of the batched layout */
        for (int l = 0; l < d->L; l++) {
            memcpy(rwkv6_state_att_prev(d, s, 1, l), rwkv6_state_att_prev(d, s0, B, l) + b * C, C * sizeof(real));
            memcpy(rwkv6_state_wkv(d, s, 1, l), rwkv6_state_wkv(d, s0, B, l) + b * NN, NN * sizeof(real));
            memcpy(rwkv6_state_ffn_prev(d, s, 1, l), rwkv6_state_ffn_prev(d, s0, B, l) + b * C, C * sizeof(real));
            for (int q = 0; q < 3 && conv > 1; q++) /* (3,B,conv-1,C) */
                memcpy(rwkv6_state_conv(d, s, 1, l) + q * HC, rwkv6_state_conv(d, s0, B, l) + (q * B + b) * HC,
                       HC * sizeof(real));
        }
        for (int t = 0; t < T; t++) {
            ModelFwd f1 = {.K = 1, .state_in = s, .state_out = s};
            const real *lg = model_forward(m, &tok[b * T + t], 1, 1, &f1);
            for (int v = 0; v < V; v++) {
                maxd = fmax(maxd, fabs(lg[v] - seq[((size_t)b * T + t) * V + v]));
                ref = fmax(ref, fabs(lg[v]));
            }
        }
        for (int l = 0; l < d->L; l++) {
            const real *a = rwkv6_state_wkv(d, s, 1, l), *e = rwkv6_state_wkv(d, sseq, B, l) + b * NN;
            for (size_t i = 0; i < NN; i++) maxd = fmax(maxd, fabs(a[i] - e[i]));
            const real *p = rwkv6_state_att_prev(d, s, 1, l), *q = rwkv6_state_att_prev(d, sseq, B, l) + b * C;
            for (size_t i = 0; i < C; i++) maxd = fmax(maxd, fabs(p[i] - q[i]));
            p = rwkv6_state_ffn_prev(d, s, 1, l), q = rwkv6_state_ffn_prev(d, sseq, B, l) + b * C;
            for (size_t i = 0; i < C; i++) maxd = fmax(maxd, fabs(p[i] - q[i]));
            for (int k = 0; k < 3 && conv > 1; k++) {
                p = rwkv6_state_conv(d, s, 1, l) + k * HC, q = rwkv6_state_conv(d, sseq, B, l) + (k * B + b) * HC;
                for (size_t i = 0; i < HC; i++) maxd = fmax(maxd, fabs(p[i] - q[i]));
            }
        }
        free(s);
    }
    /* and the state matters: from a zero state the logits are different */
    ModelFwd fz = {.K = 4};
    const real *lz = model_forward(m, tok, B, T, &fz);
    double dz = 0;
    for (size_t i = 0; i < (size_t)B * T * V; i++) dz = fmax(dz, fabs(lz[i] - seq[i]));
    printf("recurrent vs sequence (from a random state, short_conv=%d): max |diff| = %.3g (logits up to %.3g; limit "
           "1e-12); zero state moves them by %.3g\n", conv, maxd, ref, dz);
    cr_expect(maxd <= 1e-12, "recurrent and sequence mode differ by %g", maxd);
    cr_expect(dz > 1e-3, "the initial state does not reach the logits (%g)", dz);
    free(s0), free(sseq), free(seq);
    model_free(m);
    gsl_rng_free(rng);
}
Test(grad_rwkv6, recurrent_equals_sequence) { recurrent_check(0); }
/* the state carries the short conv's last K-1 inputs of r, k, v too */
Test(grad_rwkv6, recurrent_equals_sequence_short_conv) { recurrent_check(4); }

/* Model gradients with the WKV6 state stored every K tokens equal those with every state stored. */
Test(grad_rwkv6, chunked_equals_unchunked) {
    real *ref = NULL;
    int Ks[] = {1, 3, 8, 16, 64};
    for (int ki = 0; ki < 5; ki++) {
        gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
        gsl_rng_set(rng, 77);
        ModelCase c = {.m = tiny_model(rng, 2, 24, 8, 1, 3), .K = Ks[ki]};
        make_data(&c, rng);
        memset(c.m->grads, 0, c.m->nparams * sizeof(real));
        case_loss(&c);
        model_backward(c.m);
        printf("  K=%-3d activation bytes %zu\n", Ks[ki], c.m->arch->act_bytes(c.m));
        if (!ref) {
            ref = malloc(c.m->nparams * sizeof(real));
            memcpy(ref, c.m->grads, c.m->nparams * sizeof(real));
        } else {
            cr_expect(!memcmp(ref, c.m->grads, c.m->nparams * sizeof(real)), "gradients with K=%d differ from K=1",
                      Ks[ki]);
        }
        free(c.tok), free(c.tgt), free(c.mask);
        model_free(c.m);
        gsl_rng_free(rng);
    }
    free(ref);
}

/* The trace: ModelTrace.state is the WKV6 state transposed to the common orientation (row = value, column =
 * key), the transition is diagonal (no alpha/beta) with w = the decay in (0,1), recorded as "decay" too. */
Test(grad_rwkv6, trace_is_in_the_common_orientation) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 13);
    Model *m = tiny_model(rng, 2, 24, 8, 1, 0);
    const Rwkv6Dims *d = &((Rwkv6 *)m->self)->d;
    cr_assert(!m->arch->rank_one && m->arch->ntrace == 1 && !strcmp(m->arch->trace[0].name, "decay"));
    int tok[B * T];
    for (int i = 0; i < B * T; i++) tok[i] = gsl_rng_uniform_int(rng, V);
    ModelTrace tr;
    model_trace_alloc(m, B, T, &tr);
    cr_assert(!tr.alpha && !tr.beta, "a diagonal transition has no rank-one part");
    real *sout = malloc(model_state_numel(m, B) * sizeof(real));
    ModelFwd f = {.K = 5, .state_out = sout, .trace = &tr};
    model_forward(m, tok, B, T, &f);
    const int H = d->H, N = d->N, C = d->C;
    double worst = 0, asym = 0;
    int wok = 1;
    for (int l = 0; l < d->L; l++)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++) {
                const real *S = rwkv6_state_wkv(d, sout, B, l) + ((size_t)b * H + h) * N * N; /* [key][value] */
                const float *P = tr.state + ((((size_t)l * B + b) * T + T - 1) * H + h) * N * N; /* [value][key] */
                for (int i = 0; i < N; i++)
                    for (int j = 0; j < N; j++) {
                        worst = fmax(worst, fabs(P[(size_t)j * N + i] - S[(size_t)i * N + j]) / (1 + fabs(S[i * N + j])));
                        asym = fmax(asym, fabs(S[(size_t)i * N + j] - S[(size_t)j * N + i]));
                    }
            }
    for (size_t i = 0; i < (size_t)d->L * B * T * C; i++) wok &= tr.w[i] > 0 && tr.w[i] < 1 && tr.w[i] == tr.q[0][i];
    printf("  trace state vs transposed final WKV6 state: max rel diff %.3g (state asymmetry %.3g)\n", worst, asym);
    cr_expect(asym > 1e-3, "the state is (nearly) symmetric: the test cannot see a missing transpose");
    cr_expect(worst <= 1e-6, "ModelTrace.state is not S^T (row = value, column = key): %g", worst);
    cr_expect(wok, "ModelTrace.w must be the decay in (0,1) and equal the 'decay' quantity");
    free(sout);
    model_trace_free(&tr);
    model_free(m);
    gsl_rng_free(rng);
}
