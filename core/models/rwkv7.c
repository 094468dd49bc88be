/* rwkv7.c -- RWKV-7 model: layout, official init, forward (sequence/recurrent, any start state),
 * backward. Each backward block names the forward line it inverts; the ops themselves are in ops.c and
 * wkv7.c. Rows are tokens: R = B*T.
 *
 * The short convolution (model.short_conv = K, off by default; shortconv.h) sits where it sits in every
 * architecture: right after the projections, on their outputs, before anything else reads them:
 *   r, k, v = W_r x_r, W_k x_k, W_v x_v;  r, k, v = conv_K(r), conv_K(k), conv_K(v)   (att.{r,k,v}_conv)
 * so kk, the a-modulated key, the value residual (v_first is layer 0's convolved v), the WKV and the bonus
 * all see the convolved r, k, v (RWKV-6 the same; DeltaNet: q, k, v = conv_K(W x) before the silu). */
#include "rwkv7.h"

#include "tensorfile.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <string.h>

#include "arch_util.h"
#include "ops.h"
#include "shortconv.h"
#include "wkv7.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* below this many activations (B*T*C) a forward runs its own loops on one thread */
#define RWKV7_PAR_MIN 32768L

/* ---- layout: one walk over the tensors, shared by table, params and grads (arch_util.h) ----- */
/* Visit every tensor in checkpoint order. wts (may be NULL) receives pointers into wk->base. */
static void rwkv7_layout(const Rwkv7Dims *d, ParamWalk *wk, Rwkv7Weights *wts) {
    const int V = d->V, C = d->C, F = d->F;
    Rwkv7Weights dummy_w;
    Rwkv7Layer dummy_l;
    Rwkv7Weights *W = wts ? wts : &dummy_w;
#define ADD(field, ndim, a, b, c, dec, ...) field = arch_walk_addf(wk, ndim, a, b, c, dec, __VA_ARGS__)
    arch_layout_first(wk, V, C, d->has_ln0, &W->emb, &W->ln0_w, &W->ln0_b);
    for (int l = 0; l < d->L; l++) {
        Rwkv7Layer *P = wts ? &wts->layer[l] : &dummy_l;
        memset(P, 0, sizeof *P);
        arch_layout_block_norms(wk, l, C, &P->ln1_w, &P->ln1_b, &P->ln2_w, &P->ln2_b);
        ADD(P->x_r, 3, 1, 1, C, 0, "blocks.%d.att.x_r", l);
        ADD(P->x_w, 3, 1, 1, C, 0, "blocks.%d.att.x_w", l);
        ADD(P->x_k, 3, 1, 1, C, 0, "blocks.%d.att.x_k", l);
        ADD(P->x_v, 3, 1, 1, C, 0, "blocks.%d.att.x_v", l);
        ADD(P->x_a, 3, 1, 1, C, 0, "blocks.%d.att.x_a", l);
        ADD(P->x_g, 3, 1, 1, C, 0, "blocks.%d.att.x_g", l);
        ADD(P->w0, 3, 1, 1, C, 0, "blocks.%d.att.w0", l);
        ADD(P->w1, 2, C, d->Dw, 0, 0, "blocks.%d.att.w1", l);
        ADD(P->w2, 2, d->Dw, C, 0, 0, "blocks.%d.att.w2", l);
        ADD(P->a0, 3, 1, 1, C, 0, "blocks.%d.att.a0", l);
        ADD(P->a1, 2, C, d->Da, 0, 0, "blocks.%d.att.a1", l);
        ADD(P->a2, 2, d->Da, C, 0, 0, "blocks.%d.att.a2", l);
        if (l > 0) { /* layer 0 defines v_first: no value residual */
            ADD(P->v0, 3, 1, 1, C, 0, "blocks.%d.att.v0", l);
            ADD(P->v1, 2, C, d->Dv, 0, 0, "blocks.%d.att.v1", l);
            ADD(P->v2, 2, d->Dv, C, 0, 0, "blocks.%d.att.v2", l);
        }
        ADD(P->g1, 2, C, d->Dg, 0, 0, "blocks.%d.att.g1", l);
        ADD(P->g2, 2, d->Dg, C, 0, 0, "blocks.%d.att.g2", l);
        ADD(P->k_k, 3, 1, 1, C, 0, "blocks.%d.att.k_k", l);
        ADD(P->k_a, 3, 1, 1, C, 0, "blocks.%d.att.k_a", l);
        ADD(P->r_k, 2, d->H, d->N, 0, 0, "blocks.%d.att.r_k", l);
        ADD(P->Wr, 2, C, C, 0, 1, "blocks.%d.att.receptance.weight", l);
        if (d->bias & RWKV7_BIAS_R) ADD(P->br, 1, C, 0, 0, 0, "blocks.%d.att.receptance.bias", l);
        ADD(P->Wk, 2, C, C, 0, 1, "blocks.%d.att.key.weight", l);
        if (d->bias & RWKV7_BIAS_K) ADD(P->bk, 1, C, 0, 0, 0, "blocks.%d.att.key.bias", l);
        ADD(P->Wv, 2, C, C, 0, 1, "blocks.%d.att.value.weight", l);
        if (d->bias & RWKV7_BIAS_V) ADD(P->bv, 1, C, 0, 0, 0, "blocks.%d.att.value.bias", l);
        if (d->conv) arch_layout_rkv_conv(wk, l, C, d->conv, &P->r_conv, &P->k_conv, &P->v_conv); /* arch_util.h */
        ADD(P->Wo, 2, C, C, 0, 1, "blocks.%d.att.output.weight", l);
        if (d->bias & RWKV7_BIAS_O) ADD(P->bo, 1, C, 0, 0, 0, "blocks.%d.att.output.bias", l);
        ADD(P->lnx_w, 1, C, 0, 0, 0, "blocks.%d.att.ln_x.weight", l);
        ADD(P->lnx_b, 1, C, 0, 0, 0, "blocks.%d.att.ln_x.bias", l);
        arch_layout_ffn(wk, l, C, F, d->bias & RWKV7_BIAS_FK, d->bias & RWKV7_BIAS_FV, &P->f_xk, &P->f_Wk, &P->f_bk,
                        &P->f_Wv, &P->f_bv);
    }
    arch_layout_last(wk, V, C, d->bias & RWKV7_BIAS_HEAD, &W->lnout_w, &W->lnout_b, &W->head, &W->head_b);
#undef ADD
}
static void layout_walk(const void *d, ParamWalk *wk) { rwkv7_layout(d, wk, NULL); }

void rwkv7_default_ranks(Rwkv7Dims *d) {
    double s = sqrt((double)d->C);
#define RANK(f) (int)fmax(32, nearbyint((f) * s / 32) * 32)
    if (!d->Dw) d->Dw = RANK(2.5);
    if (!d->Da) d->Da = RANK(2.5);
    if (!d->Dv) d->Dv = RANK(1.7);
    if (!d->Dg) d->Dg = RANK(5.0);
#undef RANK
}

static Rwkv7 *create(const Rwkv7Dims *dims, int with_grads);
Rwkv7 *rwkv7_create(const Rwkv7Dims *dims) { return create(dims, 1); }
Rwkv7 *rwkv7_create_inference(const Rwkv7Dims *dims) { return create(dims, 0); }

/* H, F and the default LoRA ranks, as every model of these dims has them */
static void resolve_dims(Rwkv7Dims *d) {
    CHECK(d->C > 0 && d->N > 0 && d->C % d->N == 0, "head size N=%d must divide C=%d", d->N, d->C);
    CHECK(d->L >= 1 && d->V >= 1, "need L >= 1 and V >= 1 (L=%d V=%d)", d->L, d->V);
    CHECK(d->conv >= 0 && d->conv <= SHORTCONV_MAX_K, "RWKV-7: short conv K=%d must be in 0..%d", d->conv,
          SHORTCONV_MAX_K);
    d->H = d->C / d->N;
    d->F = 4 * d->C;
    rwkv7_default_ranks(d);
}

ParamTensor *rwkv7_tensor_table(Rwkv7Dims *d, int *ntensors, size_t *nparams) {
    resolve_dims(d);
    return arch_table_of(layout_walk, d, ntensors, nparams);
}

static Rwkv7 *create(const Rwkv7Dims *dims, int with_grads) {
    Rwkv7 *m = xcalloc(1, sizeof *m);
    m->d = *dims;
    Rwkv7Dims *d = &m->d;
    resolve_dims(d);
    ParamWalk wk = {0};
    rwkv7_layout(d, &wk, NULL);
    m->ntensors = wk.n;
    m->nparams = wk.off;
    m->tensors = xcalloc(m->ntensors, sizeof(ParamTensor));
    m->params = xcalloc(m->nparams, sizeof(real));
    m->grads = with_grads ? xcalloc(m->nparams, sizeof(real)) : NULL;
    m->w.layer = xcalloc(d->L, sizeof(Rwkv7Layer));
    m->g.layer = xcalloc(d->L, sizeof(Rwkv7Layer));
    ParamWalk wp = {.base = m->params, .table = m->tensors};
    rwkv7_layout(d, &wp, &m->w);
    ParamWalk wg = {.base = m->grads}; /* base NULL: every gradient pointer stays NULL */
    rwkv7_layout(d, &wg, &m->g);
    model_attach(&m->head, &model_rwkv7, m, d, d->V, d->C, d->L, d->H, d->N, d->N, m->tensors, m->ntensors,
                 m->nparams, m->params, m->grads);
    return m;
}

const ParamTensor *rwkv7_find(const Rwkv7 *m, const char *name) {
    for (int i = 0; i < m->ntensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

void rwkv7_set_w0_lr_mult(Rwkv7 *m, double mult) {
    for (int i = 0; i < m->ntensors; i++) {
        const char *n = m->tensors[i].name;
        size_t len = strlen(n);
        if (len > 7 && !strcmp(n + len - 7, ".att.w0")) m->tensors[i].lr_mult = mult;
    }
}

/* ---- official initialisation ----------------------------------------------------------------- */
static double lora_gain(int D, int C) { return D > C ? 0.1 * sqrt((double)D / C) : 0.1; }

void rwkv7_init_official(Rwkv7 *m, gsl_rng *rng) {
    const Rwkv7Dims *d = &m->d;
    const int C = d->C, L = d->L, N = d->N, V = d->V;
    memset(m->params, 0, m->nparams * sizeof(real));
    const ArchEnds ends = ARCH_ENDS_OF(&m->w);
    arch_init_first(&ends, V, C, rng);
    for (int l = 0; l < L; l++) {
        Rwkv7Layer *P = &m->w.layer[l];
        double r0 = L > 1 ? (double)l / (L - 1) : 0.0; /* L = 1: r0 = 0 (official code cannot build it) */
        double r1 = 1.0 - (double)l / L;
        for (int n = 0; n < C; n++) {
            double ddd = (double)n / C, lin = (double)n / (C - 1 > 0 ? C - 1 : 1) - 0.5;
            double z = ((n % N) - (N - 1) / 2.0) / ((N - 1) / 2.0 > 0 ? (N - 1) / 2.0 : 1);
            double zz = z * fabs(z);
            double www = -6 + 6 * pow((double)n / (C - 1 > 0 ? C - 1 : 1), 1 + pow(r0, 0.3));
            P->x_r[n] = P->x_g[n] = (real)(1 - pow(ddd, 0.2 * r1));
            P->x_w[n] = P->x_a[n] = (real)(1 - pow(ddd, 0.9 * r1));
            P->x_k[n] = P->x_v[n] = (real)(1 - pow(ddd, 0.7 * r1));
            P->w0[n] = (real)(www + 0.5 + 2.5 * zz);
            P->a0[n] = (real)(-0.19 + 0.3 * zz + 0.4 * lin);
            if (P->v0) P->v0[n] = (real)(0.73 - 0.4 * lin);
            P->k_k[n] = (real)(0.71 - 0.1 * lin);
            P->k_a[n] = (real)1.02;
            P->r_k[n] = (real)-0.04;
            P->lnx_w[n] = (real)pow((1.0 + l) / L, 0.7);
            P->ln1_w[n] = P->ln2_w[n] = 1;
        }
        arch_init_ffn_mix(P->f_xk, l, L, C);
        arch_orthogonal_init(P->w2, d->Dw, C, lora_gain(d->Dw, C), rng);
        arch_orthogonal_init(P->a2, d->Da, C, lora_gain(d->Da, C), rng);
        if (P->v2) arch_orthogonal_init(P->v2, d->Dv, C, lora_gain(d->Dv, C), rng);
        arch_orthogonal_init(P->g2, d->Dg, C, lora_gain(d->Dg, C), rng);
        arch_orthogonal_init(P->Wr, C, C, 1.0, rng);
        arch_orthogonal_init(P->Wk, C, C, 0.1, rng);
        arch_orthogonal_init(P->Wv, C, C, 1.0, rng);
        arch_orthogonal_init(P->f_Wk, d->F, C, 1.0, rng);
        /* w1, a1, v1, g1, Wo, f_Wv stay zero */
        /* the one conv init of every architecture (shortconv.h): U(-1/sqrt(K), 1/sqrt(K)) */
        if (d->conv) arch_init_rkv_conv(P->r_conv, P->k_conv, P->v_conv, C, d->conv, rng);
    }
    arch_init_last(&ends, V, C, rng);
}

/* ---- state ----------------------------------------------------------------------------------- */
static size_t conv_state_numel(const Rwkv7Dims *d, int B) { return arch_rkv_conv_state_numel(d->C, B, d->conv); }
static size_t state_layer_numel(const Rwkv7Dims *d, int B) {
    return (size_t)B * (2 * d->C + (size_t)d->H * d->N * d->N) + conv_state_numel(d, B);
}
size_t rwkv7_state_numel(const Rwkv7Dims *d, int B) { return d->L * state_layer_numel(d, B); }
real *rwkv7_state_att_prev(const Rwkv7Dims *d, real *s, int B, int l) {
    return s + l * state_layer_numel(d, B);
}
real *rwkv7_state_wkv(const Rwkv7Dims *d, real *s, int B, int l) {
    return rwkv7_state_att_prev(d, s, B, l) + (size_t)B * d->C;
}
real *rwkv7_state_ffn_prev(const Rwkv7Dims *d, real *s, int B, int l) {
    return rwkv7_state_wkv(d, s, B, l) + (size_t)B * d->H * d->N * d->N;
}
real *rwkv7_state_conv(const Rwkv7Dims *d, real *s, int B, int l) {
    return rwkv7_state_ffn_prev(d, s, B, l) + (size_t)B * d->C;
}

/* ---- activations ----------------------------------------------------------------------------- */
typedef struct {
    real *x_in, *ln1, *ln1_m, *ln1_r, *prev1;             /* (R,C) (R) (R) (R,C) */
    real *xr, *xw, *xk, *xv, *xa, *xg;                    /* (R,C) */
    real *r, *k, *v;                                      /* (R,C) the projections */
    real *rc, *kc, *vc, *conv_in;                         /* r, k, v after the short conv (R,C) each (= r, k, v
                                                             when it is off); its input history (3,B,K-1,C) */
    real *wh, *w, *wsig;                                  /* (R,Dw) (R,C) (R,C) */
    real *ah, *asig, *a;                                  /* (R,Da) (R,C) (R,C) */
    real *gh, *g;                                         /* (R,Dg) (R,C) */
    real *vh, *vgate, *vv;                                /* (R,Dv) (R,C) (R,C) */
    real *kk, *kkn, *knew;                                /* (R,C) (R,H) (R,C) */
    real *y, *gn, *gn_m, *gn_r, *yb, *yg;                 /* (R,C) (R,C) (R,H) (R,H) (R,C) (R,C) */
    ArchFfnActs f;                                        /* the FFN: x_mid (its input) .. fr */
    real *pre, *preD;                                     /* gradient scratch only: (R,C) (R,Dmax) */
} LayerActs;

struct Rwkv7Acts {
    size_t numel;                /* reals the current shape uses */
    ArchBuf mem;                 /* the buffer and the tokens */
    LayerActs *la;               /* L */
    LayerActs dla;               /* gradient scratch for one layer (same shapes) */
    real *ckpt;                  /* L x wkv7 checkpoint */
    size_t ckpt_layer;
    ArchEndActs e;               /* embedding and head (arch_util.h) */
    real *dvfirst;               /* backward scratch (R,C) */
};

static int lora_max_rank(const Rwkv7Dims *d) {
    int m = d->Dw;
    if (d->Da > m) m = d->Da;
    if (d->Dv > m) m = d->Dv;
    if (d->Dg > m) m = d->Dg;
    return m;
}

static void layer_acts_layout(LayerActs *a, size_t *off, real *base, const Rwkv7Dims *d, int B, size_t R,
                              int with_scratch) {
    const size_t C = d->C, H = d->H;
    const int Dmax = lora_max_rank(d);
#define RC(f) a->f = arch_carve(off, base, R * C)
    RC(x_in), RC(ln1), a->ln1_m = arch_carve(off, base, R), a->ln1_r = arch_carve(off, base, R), RC(prev1);
    RC(xr), RC(xw), RC(xk), RC(xv), RC(xa), RC(xg), RC(r), RC(k), RC(v);
    a->rc = a->r, a->kc = a->k, a->vc = a->v, a->conv_in = NULL;
    if (d->conv) {
        RC(rc), RC(kc), RC(vc);
        if (!with_scratch) a->conv_in = arch_carve(off, base, conv_state_numel(d, B));
    }
    a->wh = arch_carve(off, base, R * d->Dw), RC(w), RC(wsig);
    a->ah = arch_carve(off, base, R * d->Da), RC(asig);
    if (d->extended) RC(a);
    else a->a = a->asig; /* standard range: a = sigmoid(..) is asig itself (no copy, no adjoint pass) */
    a->gh = arch_carve(off, base, R * d->Dg), RC(g);
    a->vh = arch_carve(off, base, R * d->Dv), RC(vgate), RC(vv);
    RC(kk), a->kkn = arch_carve(off, base, R * H), RC(knew);
    RC(y), RC(gn), a->gn_m = arch_carve(off, base, R * H), a->gn_r = arch_carve(off, base, R * H), RC(yb), RC(yg);
    arch_ffn_carve(&a->f, off, base, R, d->C, d->F);
    a->pre = a->preD = NULL;
    if (with_scratch) RC(pre), a->preD = arch_carve(off, base, R * Dmax);
#undef RC
}

/* with_backward = 0 (a model without gradients): no gradient scratch is carved at all */
static void acts_layout(Rwkv7Acts *A, real *base, const Rwkv7Dims *d, int B, int T, int K, int with_backward) {
    size_t off = 0, R = (size_t)B * T, C = d->C, V = d->V;
    for (int l = 0; l < d->L; l++) layer_acts_layout(&A->la[l], &off, base, d, B, R, 0);
    memset(&A->dla, 0, sizeof A->dla);
    if (with_backward) layer_acts_layout(&A->dla, &off, base, d, B, R, 1);
    Wkv7Dims wd = {B, T, d->H, d->N, K, d->N};
    A->ckpt_layer = wkv7_ckpt_numel(&wd);
    A->ckpt = arch_carve(&off, base, A->ckpt_layer * d->L);
    arch_ends_carve(&A->e, &off, base, R, C, V);
    arch_ends_carve_grad(&A->e, &off, base, R, C, with_backward);
    A->dvfirst = with_backward ? arch_carve(&off, base, R * C) : NULL;
    A->numel = off;
}

static void acts_free(Rwkv7Acts *A) {
    if (!A) return;
    arch_buf_free(&A->mem);
    free(A->la), free(A);
}

/* Carve the activation buffer for (B,T,K) (it only grows: arch_util.h's ArchBuf). */
static void acts_ensure(Rwkv7 *m, int B, int T, int K) {
    if (m->acts && m->B == B && m->T == T && m->K == K) return;
    Rwkv7Acts *A = m->acts;
    if (!A) {
        A = xcalloc(1, sizeof *A);
        A->la = xcalloc(m->d.L, sizeof(LayerActs));
    }
    acts_layout(A, NULL, &m->d, B, T, K, m->grads != NULL);
    arch_buf_reserve(&A->mem, A->numel, (size_t)B * T);
    acts_layout(A, A->mem.buf, &m->d, B, T, K, m->grads != NULL);
    m->acts = A, m->B = B, m->T = T, m->K = K;
}

size_t rwkv7_act_bytes(const Rwkv7 *m) { return m->acts ? m->acts->mem.cap * sizeof(real) : 0; }

size_t rwkv7_act_numel(const Rwkv7Dims *dims, int B, int T, int K, int with_backward) {
    Rwkv7Dims d = *dims;
    resolve_dims(&d);
    Rwkv7Acts A = {.la = xcalloc(d.L, sizeof(LayerActs))};
    acts_layout(&A, NULL, &d, B, T, K, with_backward);
    free(A.la);
    return A.numel;
}

void rwkv7_free(Rwkv7 *m) {
    if (!m) return;
    acts_free(m->acts);
    free(m->tensors), free(m->params), free(m->grads), free(m->w.layer), free(m->g.layer), free(m);
}

/* ---- in-context rate: standard a = sig, extended a = 2 w sig ---------------------------------- */
static void arate_forward(real *a, const real *sig, const real *w, int n, int extended) {
#pragma omp parallel for simd schedule(static)
    for (int i = 0; i < n; i++) a[i] = extended ? 2 * w[i] * sig[i] : sig[i];
}
static void arate_backward(real *dsig, real *dw, const real *da, const real *sig, const real *w, int n,
                           int extended) {
    // fwd: a = sig (standard) | a = 2 w sig (extended)
#pragma omp parallel for simd schedule(static)
    for (int i = 0; i < n; i++) {
        if (extended) {
            dsig[i] += da[i] * 2 * w[i];
            dw[i] += da[i] * 2 * sig[i];
        } else {
            dsig[i] += da[i];
        }
    }
}

/* ---- forward --------------------------------------------------------------------------------- */
const real *rwkv7_forward(Rwkv7 *m, const int *tokens, int B, int T, int K, const real *state_in,
                          real *state_out, const Rwkv7Trace *trace) {
    const Rwkv7Dims *d = &m->d;
    const int C = d->C, H = d->H, N = d->N, F = d->F, V = d->V, L = d->L;
    const int R = B * T;
    CHECK(B >= 1 && T >= 1 && K >= 1, "bad forward shape B=%d T=%d K=%d", B, T, K);
    for (int i = 0; i < R; i++)
        CHECK(tokens[i] >= 0 && tokens[i] < V, "token %d at position %d is outside the vocabulary [0,%d)",
              tokens[i], i, V);
    acts_ensure(m, B, T, K);
    Rwkv7Acts *A = m->acts;
    memcpy(A->mem.tokens, tokens, (size_t)R * sizeof(int));
#ifdef _OPENMP
    /* Small calls (scoring a few tokens) run our loops on one thread: waking the team for each of the
     * ~60 parallel regions costs more than the work (measured 2x on lm-eval scoring of small models).
     * Results do not depend on the thread count, so this changes speed only. BLAS keeps its threads. */
    const int saved_threads = omp_get_max_threads();
    if ((long)R * C < RWKV7_PAR_MIN) omp_set_num_threads(1);
#endif
    const Rwkv7Weights *W = &m->w;
    const ArchEnds ends = ARCH_ENDS_OF(W);

    // x = emb[token]; x = LayerNorm(x; ln0) when present
    arch_embed_forward(A->la[0].x_in, &A->e, tokens, &ends, R, C);
    real *traj = NULL; /* (B,T,H,N,N) per layer when tracing states */
    if (trace && trace->state) traj = xmalloc((size_t)R * H * N * N * sizeof(real));

    for (int l = 0; l < L; l++) {
        const Rwkv7Layer *P = &W->layer[l];
        LayerActs *a = &A->la[l];
        real *x_next = l + 1 < L ? A->la[l + 1].x_in : A->e.x_fin;
        const real *s_att = state_in ? rwkv7_state_att_prev(d, (real *)state_in, B, l) : NULL;
        const real *s_wkv = state_in ? rwkv7_state_wkv(d, (real *)state_in, B, l) : NULL;
        const real *s_ffn = state_in ? rwkv7_state_ffn_prev(d, (real *)state_in, B, l) : NULL;

        // ---- TimeMix
        norm_forward(a->ln1, a->ln1_m, a->ln1_r, a->x_in, P->ln1_w, P->ln1_b, R, 1, C, LN_EPS);
        token_shift_forward(a->prev1, a->ln1, s_att, B, T, C);
        {   // x{r,w,k,v,a,g} = ln1 + (prev1 - ln1) * x_{r,w,k,v,a,g}: the six mixes in one pass
            real *mo[6] = {a->xr, a->xw, a->xk, a->xv, a->xa, a->xg};
            const real *mu[6] = {P->x_r, P->x_w, P->x_k, P->x_v, P->x_a, P->x_g};
            mixn_forward(mo, a->ln1, a->prev1, mu, 6, R, C);
        }
        linear_forward(a->r, a->xr, P->Wr, P->br, R, C, C);
        linear_forward(a->k, a->xk, P->Wk, P->bk, R, C, C);
        linear_forward(a->v, a->xv, P->Wv, P->bv, R, C, C);
        // r, k, v = conv_K(r, k, v) when model.short_conv = K (history from the state, or zeros): rc, kc, vc
        if (d->conv) {
            real *const y[3] = {a->rc, a->kc, a->vc};
            const real *const x[3] = {a->r, a->k, a->v}, *const cw[3] = {P->r_conv, P->k_conv, P->v_conv};
            const int Cs[3] = {C, C, C};
            shortconv3_forward(y, x, cw, a->conv_in, state_in ? rwkv7_state_conv(d, (real *)state_in, B, l) : NULL,
                               state_out ? rwkv7_state_conv(d, state_out, B, l) : NULL, Cs, B, T, d->conv);
        }
        // w = exp(-e^-0.5 sigmoid(w0 + tanh(xw w1) w2))
        matmul_forward(a->wh, a->xw, P->w1, R, C, d->Dw);
        tanh_forward(a->wh, a->wh, NULL, R, d->Dw);
        matmul_forward(a->w, a->wh, P->w2, R, d->Dw, C);
        decay_forward(a->w, a->wsig, a->w, P->w0, R, C);
        // a = sigmoid(a0 + (xa a1) a2)   [extended: 2 w sigmoid(...); standard: a is asig, the same buffer]
        matmul_forward(a->ah, a->xa, P->a1, R, C, d->Da);
        matmul_forward(a->asig, a->ah, P->a2, R, d->Da, C);
        sigmoid_forward(a->asig, a->asig, P->a0, R, C);
        if (d->extended) arate_forward(a->a, a->asig, a->w, R * C, d->extended);
        // g = sigmoid(xg g1) g2
        matmul_forward(a->gh, a->xg, P->g1, R, C, d->Dg);
        sigmoid_forward(a->gh, a->gh, NULL, R, d->Dg);
        matmul_forward(a->g, a->gh, P->g2, R, d->Dg, C);
        // kk = normalize(k * k_k) ; k = k * (1 + (a-1) k_a)
        kk_forward(a->kk, a->kkn, a->kc, P->k_k, R, H, N);
        kmod_forward(a->knew, a->kc, a->a, P->k_a, R, C);
        // value residual: layer 0 defines v_first
        if (l == 0) {
            memcpy(a->vv, a->vc, (size_t)R * C * sizeof(real));
        } else {
            matmul_forward(a->vh, a->xv, P->v1, R, C, d->Dv);
            matmul_forward(a->vgate, a->vh, P->v2, R, d->Dv, C);
            sigmoid_forward(a->vgate, a->vgate, P->v0, R, C);
            vres_forward(a->vv, a->vc, A->la[0].vv, a->vgate, R * C);
        }
        Wkv7Dims wd = {B, T, H, N, K, N};
        real *s_wkv_out = state_out ? rwkv7_state_wkv(d, state_out, B, l) : NULL;
        wkv7_forward(a->y, A->ckpt + l * A->ckpt_layer, s_wkv_out, traj, a->rc, a->w, a->knew, a->vv, a->kk,
                     a->a, s_wkv, &wd);
        norm_forward(a->gn, a->gn_m, a->gn_r, a->y, P->lnx_w, P->lnx_b, R, H, N, GN_EPS);
        bonus_forward(a->yb, a->gn, a->rc, a->knew, a->vv, P->r_k, R, H, N);
        mul_forward(a->yg, a->yb, a->g, R * C);
        linear_forward(a->f.x_mid, a->yg, P->Wo, P->bo, R, C, C);
        add_into(a->f.x_mid, a->x_in, (size_t)R * C);

        // ---- ChannelMix (arch_util.h)
        const ArchFfn fw = ARCH_FFN_OF(P);
        arch_ffn_forward(x_next, &a->f, &fw, s_ffn, state_out ? rwkv7_state_ffn_prev(d, state_out, B, l) : NULL, B,
                         T, C, F);
        if (state_out) arch_copy_last_token(rwkv7_state_att_prev(d, state_out, B, l), a->ln1, B, T, C);
        if (trace) {
            size_t o = (size_t)l * R * C;
            if (trace->decay) arch_to_float(trace->decay + o, a->w, (size_t)R * C);
            if (trace->a) arch_to_float(trace->a + o, a->a, (size_t)R * C);
            if (trace->kk) arch_to_float(trace->kk + o, a->kk, (size_t)R * C);
            if (traj) arch_to_float(trace->state + (size_t)l * R * H * N * N, traj, (size_t)R * H * N * N);
        }
    }
    free(traj);
#ifdef _OPENMP
    omp_set_num_threads(saved_threads);
#endif
    return arch_head_forward(&A->e, &ends, B, T, C, V, m->head_last_only, m->head_rows);
}

/* ---- backward -------------------------------------------------------------------------------- */

/* Zero the gradients in one layer's scratch whose first writer accumulates (+=). Not zeroed, as their first
 * writer assigns: x_in and f.x_mid (copies), f.fk (relu2_backward), pre and preD (the activations' backward),
 * r, k, v under a short conv (shortconv3_backward; without one they are rc, kc, vc); and what has no
 * gradient (wsig, kkn and the norms' saved means and rstds). The standard range's a is asig. */
static void dla_zero(const LayerActs *g, const Rwkv7Dims *d, size_t R) {
    real *const rc[] = {g->ln1, g->prev1, g->xr,  g->xw,    g->xk, g->xv,   g->xa, g->xg, g->rc,     g->kc,      g->vc,
                        g->w,   g->asig,  g->g,   g->vgate, g->vv, g->kk,   g->knew, g->y, g->gn,    g->yb,      g->yg,
                        g->f.ln2, g->f.prev2, g->f.fxk};
    for (size_t i = 0; i < sizeof rc / sizeof *rc; i++) arch_zero(rc[i], R * d->C);
    if (d->extended) arch_zero(g->a, R * d->C);
    arch_zero(g->wh, R * d->Dw), arch_zero(g->ah, R * d->Da), arch_zero(g->gh, R * d->Dg), arch_zero(g->vh, R * d->Dv);
    arch_zero(g->f.fr, R * d->F);
}

void rwkv7_backward(Rwkv7 *m, const real *dlogits) {
    const Rwkv7Dims *d = &m->d;
    const int C = d->C, H = d->H, N = d->N, F = d->F, V = d->V, L = d->L;
    const int B = m->B, T = m->T, R = B * T;
    Rwkv7Acts *A = m->acts;
    const Rwkv7Weights *W = &m->w;
    Rwkv7Weights *G = &m->g;
    CHECK(A, "rwkv7_backward called before rwkv7_forward");
    CHECK(!m->head_last_only, "rwkv7_backward after a head_last_only forward (inference mode)");
    CHECK(m->grads, "rwkv7_backward on a model made by rwkv7_create_inference (no gradient buffer)");

    const ArchEnds ends = ARCH_ENDS_OF(W), gends = ARCH_ENDS_OF(G);
    // fwd: logits = lnf head^T; lnf = LN(x_fin)   (dlogits from the shared loss, model.c)
    arch_head_backward(&A->e, &gends, dlogits, &ends, R, C, V);
    arch_zero(A->dvfirst, (size_t)R * C);

    LayerActs *g = &A->dla;
    for (int l = L - 1; l >= 0; l--) {
        const Rwkv7Layer *P = &W->layer[l];
        Rwkv7Layer *Q = &G->layer[l];
        const LayerActs *a = &A->la[l];
        dla_zero(g, d, (size_t)R);
        // ---- ChannelMix. fwd: x_next = x_mid + FFN(x_mid)   (arch_util.h)
        const ArchFfn fw = ARCH_FFN_OF(P), fg = ARCH_FFN_OF(Q);
        arch_ffn_backward(&g->f, &fg, A->e.dx, &a->f, &fw, B, T, C, F);

        // ---- TimeMix. fwd: x_mid = x_in + Wo (yb * g)
        memcpy(g->x_in, g->f.x_mid, (size_t)R * C * sizeof(real));
        linear_backward(g->yg, Q->Wo, Q->bo, g->f.x_mid, a->yg, P->Wo, R, C, C);
        mul_backward(g->yb, g->g, g->yg, a->yb, a->g, R * C);
        // fwd: yb = GN(y) + (sum r k r_k) v
        bonus_backward(g->gn, g->rc, g->knew, g->vv, Q->r_k, g->yb, a->rc, a->knew, a->vv, P->r_k, R, H, N);
        norm_backward(g->y, Q->lnx_w, Q->lnx_b, g->gn, a->y, a->gn_m, a->gn_r, P->lnx_w, R, H, N);
        // fwd: y = WKV7(r, w, knew, vv, kk, a)
        Wkv7Dims wd = {B, T, H, N, m->K, N};
        wkv7_backward(g->rc, g->w, g->knew, g->vv, g->kk, g->a, NULL, g->y, NULL, A->ckpt + l * A->ckpt_layer,
                      a->rc, a->w, a->knew, a->vv, a->kk, a->a, &wd);
        // fwd: vv = v (l = 0, v_first) | vv = v + (v_first - v) sigmoid(v0 + (xv v1) v2)
        if (l == 0) {
#pragma omp parallel for simd schedule(static)
            for (size_t i = 0; i < (size_t)R * C; i++) g->vc[i] += g->vv[i] + A->dvfirst[i];
        } else {
            vres_backward(g->vc, A->dvfirst, g->vgate, g->vv, a->vc, A->la[0].vv, a->vgate, R * C);
            sigmoid_backward(g->pre, Q->v0, g->vgate, a->vgate, R, C);
            matmul_backward(g->vh, Q->v2, g->pre, a->vh, P->v2, R, d->Dv, C);
            matmul_backward(g->xv, Q->v1, g->vh, a->xv, P->v1, R, C, d->Dv);
        }
        // fwd: knew = k (1 + (a-1) k_a) ; kk = normalize(k k_k)
        kmod_backward(g->kc, g->a, Q->k_a, g->knew, a->kc, a->a, P->k_a, R, C);
        kk_backward(g->kc, Q->k_k, g->kk, a->kk, a->kkn, a->kc, P->k_k, R, H, N);
        // fwd: g = sigmoid(xg g1) g2
        matmul_backward(g->gh, Q->g2, g->g, a->gh, P->g2, R, d->Dg, C);
        sigmoid_backward(g->preD, NULL, g->gh, a->gh, R, d->Dg);
        matmul_backward(g->xg, Q->g1, g->preD, a->xg, P->g1, R, C, d->Dg);
        // fwd: a = arate(sigmoid(a0 + (xa a1) a2), w)
        if (d->extended) arate_backward(g->asig, g->w, g->a, a->asig, a->w, R * C, d->extended); /* standard: g->asig is g->a */
        sigmoid_backward(g->pre, Q->a0, g->asig, a->asig, R, C);
        matmul_backward(g->ah, Q->a2, g->pre, a->ah, P->a2, R, d->Da, C);
        matmul_backward(g->xa, Q->a1, g->ah, a->xa, P->a1, R, C, d->Da);
        // fwd: w = decay(w0 + tanh(xw w1) w2)
        decay_backward(g->pre, Q->w0, g->w, a->w, a->wsig, R, C);
        matmul_backward(g->wh, Q->w2, g->pre, a->wh, P->w2, R, d->Dw, C);
        tanh_backward(g->preD, NULL, g->wh, a->wh, R, d->Dw);
        matmul_backward(g->xw, Q->w1, g->preD, a->xw, P->w1, R, C, d->Dw);
        // fwd: rc, kc, vc = conv_K(r, k, v)  (shortconv3_backward assigns dr, dk, dv; off: rc, kc, vc are r, k, v)
        if (d->conv) {
            real *const dx[3] = {g->r, g->k, g->v}, *const dw[3] = {Q->r_conv, Q->k_conv, Q->v_conv};
            const real *const dy[3] = {g->rc, g->kc, g->vc}, *const x[3] = {a->r, a->k, a->v};
            const real *const cw[3] = {P->r_conv, P->k_conv, P->v_conv};
            const int Cs[3] = {C, C, C};
            shortconv3_backward(dx, dw, dy, x, cw, a->conv_in, Cs, B, T, d->conv);
        }
        // fwd: r, k, v = W{r,k,v} x{r,k,v}
        linear_backward(g->xr, Q->Wr, Q->br, g->r, a->xr, P->Wr, R, C, C);
        linear_backward(g->xk, Q->Wk, Q->bk, g->k, a->xk, P->Wk, R, C, C);
        linear_backward(g->xv, Q->Wv, Q->bv, g->v, a->xv, P->Wv, R, C, C);
        // fwd: x{r,w,k,v,a,g} = mix(ln1, prev1, x_{..}) ; prev1 = shift(ln1) ; ln1 = LN(x_in)
        {
            real *dmu[6] = {Q->x_r, Q->x_w, Q->x_k, Q->x_v, Q->x_a, Q->x_g};
            const real *dmo[6] = {g->xr, g->xw, g->xk, g->xv, g->xa, g->xg};
            const real *mu[6] = {P->x_r, P->x_w, P->x_k, P->x_v, P->x_a, P->x_g};
            mixn_backward(g->ln1, g->prev1, dmu, dmo, a->ln1, a->prev1, mu, 6, R, C);
        }
        token_shift_backward(g->ln1, NULL, g->prev1, B, T, C);
        norm_backward(g->x_in, Q->ln1_w, Q->ln1_b, g->ln1, a->x_in, a->ln1_m, a->ln1_r, P->ln1_w, R, 1, C);
        memcpy(A->e.dx, g->x_in, (size_t)R * C * sizeof(real));
    }
    // fwd: x_in[0] = LN(emb[tokens]; ln0) or emb[tokens]
    arch_embed_backward(&gends, &A->e, A->e.dx, A->mem.tokens, &ends, R, C, V);
}

/* ---- the model interface (model.h) ------------------------------------------------------------ */

#define RWKV7_DIM(f) {.name = #f, .offset = offsetof(Rwkv7Dims, f)}
static const DimField rwkv7_dim_fields[] = {
    RWKV7_DIM(V),  RWKV7_DIM(C),  RWKV7_DIM(L),  RWKV7_DIM(N),        RWKV7_DIM(Dw),      RWKV7_DIM(Da),
    RWKV7_DIM(Dv), RWKV7_DIM(Dg), RWKV7_DIM(extended), RWKV7_DIM(has_ln0), RWKV7_DIM(bias),
    {.name = "conv", .offset = offsetof(Rwkv7Dims, conv), .optional = 1}, /* optional: ckpt.bin files from before the short conv lack it */
};

static int arch_dims_from_config(void *dims, const RunConfig *c, int V, Err *err) {
    Rwkv7Dims d = {.V = V, .C = c->model.d_model, .L = c->model.layers, .N = c->model.head_size,
                   .Dw = c->model.lora_w, .Da = c->model.lora_a, .Dv = c->model.lora_v, .Dg = c->model.lora_g,
                   .extended = !strcmp(c->model.eig_range, "extended"), .has_ln0 = 1, .conv = c->model.short_conv};
    if (d.C % d.N) return err_set(err, "model.head_size = %d must divide model.d_model = %d", d.N, d.C);
    if (c->model.expand_v != 1)
        return err_set(err, "model.expand_v = %d applies to gated_deltanet only; use 1 for rwkv7", c->model.expand_v);
    *(Rwkv7Dims *)dims = d;
    return 0;
}

static int arch_validate_dims(const void *dims, Err *err) {
    const Rwkv7Dims *d = dims;
    if (d->V < 1 || d->C < 1 || d->L < 1 || d->N < 1 || d->C % d->N)
        return err_set(err, "implausible RWKV-7 dims V=%d C=%d L=%d N=%d (N must divide C)", d->V, d->C, d->L, d->N);
    if (d->Dw < 0 || d->Da < 0 || d->Dv < 0 || d->Dg < 0 || d->extended < 0 || d->extended > 1 || d->has_ln0 < 0 ||
        d->has_ln0 > 1 || d->bias < 0 || d->bias > RWKV7_BIAS_ALL)
        return err_set(err, "implausible RWKV-7 LoRA ranks or flags");
    if (d->conv < 0 || d->conv > SHORTCONV_MAX_K)
        return err_set(err, "implausible RWKV-7 short conv K=%d (0 = off, else the kernel size, at most %d)", d->conv,
                       SHORTCONV_MAX_K);
    return 0;
}

static Model *arch_create(const void *dims, int with_grads) {
    Rwkv7 *m = create(dims, with_grads);
    return &m->head;
}
static void arch_free(Model *mm) { rwkv7_free(mm->self); }
static void arch_init(Model *mm, gsl_rng *rng, const RunConfig *c) {
    Rwkv7 *m = mm->self;
    rwkv7_init_official(m, rng);
    if (c) rwkv7_set_w0_lr_mult(m, c->train.w0_lr_mult);
}

/* Trace: the transition of a step is M = diag(w) - kk (kk*a)^T, i.e. alpha = -kk, beta = kk*a. */
static const TraceQuantity rwkv7_trace[] = {
    {"decay", 0, "w, per channel: the diagonal of the transition (in (0,1))"},
    {"a", 0, "in-context learning rate a, per channel (standard: (0,1); extended: (0,2w))"},
};

static const real *arch_forward(Model *mm, const int *tokens, int B, int T, const ModelFwd *f) {
    Rwkv7 *m = mm->self;
    m->head_last_only = f->head_last_only;
    m->head_rows = f->head_rows;
    const ModelTrace *mt = f->trace;
    Rwkv7Trace tr = {0};
    if (mt) tr = (Rwkv7Trace){.state = mt->state, .decay = mt->w, .a = mt->q[1], .kk = mt->alpha};
    const real *lg = rwkv7_forward(m, tokens, B, T, f->K, f->state_in, f->state_out, mt ? &tr : NULL);
    m->head_last_only = 0;
    m->head_rows = NULL;
    if (mt) {
        size_t n = (size_t)m->d.L * B * T * m->d.C;
        for (size_t i = 0; i < n; i++) {
            if (mt->q[0]) mt->q[0][i] = mt->w[i];
            if (mt->beta) mt->beta[i] = mt->alpha[i] * mt->q[1][i];
            mt->alpha[i] = -mt->alpha[i];
        }
    }
    return lg;
}

static void arch_backward(Model *mm, const real *dlogits) { rwkv7_backward(mm->self, dlogits); }
static size_t arch_state_numel(const Model *mm, int B) { return rwkv7_state_numel(&((Rwkv7 *)mm->self)->d, B); }
static size_t arch_matrix_state(const Model *mm) { return (size_t)mm->L * mm->H * mm->N * mm->N; }
static size_t arch_act_bytes(const Model *mm) {
    const Rwkv7 *m = mm->self;
    return m->acts ? arch_buf_bytes(&m->acts->mem) : 0;
}
/* keys only RWKV-7 files have (any one: a file missing some is still reported as an incomplete RWKV-7) */
static int arch_recognise(const TensorFile *tf) {
    static const char *const keys[] = {"blocks.0.att.r_k", "blocks.0.att.k_k", "blocks.0.att.k_a", "blocks.0.att.a0",
                                       "blocks.0.att.x_a"};
    for (int i = 0; i < 5; i++)
        if (tensorfile_find(tf, keys[i])) return 1;
    return 0;
}
static ParamTensor *arch_tensor_table(const void *dims, int *n, size_t *np) {
    Rwkv7Dims d = *(const Rwkv7Dims *)dims;
    return rwkv7_tensor_table(&d, n, np);
}
static size_t arch_act_bytes_for(const void *dims, int B, int T, int K, int with_backward) {
    return rwkv7_act_numel(dims, B, T, K, with_backward) * sizeof(real) + (size_t)B * T * sizeof(int); /* + tokens */
}
static const char *arch_export_note(const Model *mm) {
    static char note[400];
    const Rwkv7Dims *d = &((const Rwkv7 *)mm->self)->d;
    if (!d->extended && !d->conv) return NULL;
    snprintf(note, sizeof note, "%s%s%s", d->extended ? "this model uses the extended eigenvalue range (a = 2 w "
             "sigmoid(...)); the official RWKV-7 code computes a = sigmoid(...) and will not reproduce it" : "",
             d->extended && d->conv ? "; " : "", d->conv ? "this model has a short convolution (model.short_conv: "
             "att.r_conv/k_conv/v_conv.weight) that the official x070 code does not have and will not apply" : "");
    return note;
}

/* matmul: r k v o (4 C^2), LoRAs, FFN (2 C F), head (C V), 2 flops each; recurrence: ~5 flops per state
 * element per token forward (rwkv7.md) */
static double arch_fwd_flops(const Model *mm, double *matmul, double *recurrence) {
    const Rwkv7Dims *d = &((const Rwkv7 *)mm->self)->d;
    const double C = d->C, L = d->L, V = d->V;
    double mm_ = 2 * L * 4 * C * C + 2 * (L * 2 * C * (d->Dw + d->Da + d->Dg) + (L - 1) * 2 * C * d->Dv) +
                 2 * L * 2 * C * d->F + 2 * C * V;
    mm_ += 2 * L * 3 * C * d->conv; /* the short conv on r, k, v (counted with the products, as RWKV-6) */
    double rec = 2 * 5 * L * C * d->N;
    if (matmul) *matmul = mm_;
    if (recurrence) *recurrence = rec;
    return mm_ + rec;
}

static const char *const rwkv7_ignored[] = {"blocks.0.att.v0", "blocks.0.att.v1", "blocks.0.att.v2", NULL};

const ModelArch model_rwkv7 = {
    .name = "rwkv7",
    .title = "RWKV-7 (x070)",
    .dims_size = sizeof(Rwkv7Dims),
    .dim_fields = rwkv7_dim_fields,
    .ndims = sizeof rwkv7_dim_fields / sizeof *rwkv7_dim_fields,
    .dims_from_config = arch_dims_from_config,
    .recognise = arch_recognise,
    .dims_from_tensors = rwkv7_dims_from_tensors,
    .ignored_tensors = rwkv7_ignored,
    .tensor_table = arch_tensor_table,
    .act_bytes_for = arch_act_bytes_for,
    .export_note = arch_export_note,
    .validate_dims = arch_validate_dims,
    .create = arch_create,
    .free = arch_free,
    .init = arch_init,
    .forward = arch_forward,
    .backward = arch_backward,
    .state_numel = arch_state_numel,
    .matrix_state_numel = arch_matrix_state,
    .rank_one = 1,
    .trace = rwkv7_trace,
    .ntrace = 2,
    .act_bytes = arch_act_bytes,
    .fwd_flops_per_token = arch_fwd_flops,
};
