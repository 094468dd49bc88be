/* delta_common.c -- DeltaNet and Gated DeltaNet (math and layout: delta_common.h): their own small ops,
 * the parameter layout, init, forward (sequence/recurrent, any start state, traces) and backward. The
 * generic ops are ops.c's, the short conv shortconv.c's, the recurrence wkv7.c's. Rows are tokens:
 * R = B*T. The Gated DeltaNet parts are marked `gated`; everything else is shared by both. */
#include "delta_common.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <string.h>

#include "arch_util.h"
#include "model_io.h"
#include "ops.h"
#include "shortconv.h"
#include "wkv7.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* below this many activations (B*T*C) a forward runs its own loops on one thread (as rwkv7.c) */
#define DELTA_PAR_MIN 32768L

/* ---- the ops only these models use ----------------------------------------------------------- */
void delta_l2norm_forward(real *out, real *inv, const real *x, int R, int G, int N, real eps) {
#pragma omp parallel for schedule(static)
    for (long rg = 0; rg < (long)R * G; rg++) {
        const real *xr = x + (size_t)rg * N;
        real s = 0;
        for (int i = 0; i < N; i++) s += xr[i] * xr[i];
        const real iv = 1 / sqrt(s + eps);
        inv[rg] = iv;
        for (int i = 0; i < N; i++) out[(size_t)rg * N + i] = xr[i] * iv;
    }
}
void delta_l2norm_backward(real *dx, const real *dout, const real *out, const real *inv, int R, int G, int N) {
    // fwd: out = x inv, inv = (sum x^2 + eps)^-1/2  ->  dx = inv (dout - out (out . dout))
#pragma omp parallel for schedule(static)
    for (long rg = 0; rg < (long)R * G; rg++) {
        const real *o = out + (size_t)rg * N, *d = dout + (size_t)rg * N;
        real od = 0;
        for (int i = 0; i < N; i++) od += o[i] * d[i];
        for (int i = 0; i < N; i++) dx[(size_t)rg * N + i] += inv[rg] * (d[i] - o[i] * od);
    }
}

void delta_rmsnorm_forward(real *out, real *rs, const real *x, const real *w, int R, int G, int N, real eps) {
#pragma omp parallel for schedule(static)
    for (long rg = 0; rg < (long)R * G; rg++) {
        const real *xr = x + (size_t)rg * N;
        real s = 0;
        for (int i = 0; i < N; i++) s += xr[i] * xr[i];
        const real r = 1 / sqrt(s / N + eps);
        rs[rg] = r;
        for (int i = 0; i < N; i++) out[(size_t)rg * N + i] = xr[i] * r * w[i];
    }
}
void delta_rmsnorm_backward(real *dx, real *dw, const real *dout, const real *x, const real *rs, const real *w,
                            int R, int G, int N) {
    // fwd: out_i = xh_i w_i, xh = x rs, rs = (mean x^2 + eps)^-1/2
    //   ->  dx_i = rs (dout_i w_i - xh_i mean_j(dout_j w_j xh_j)) ;  dw_i += sum_rows dout_i xh_i
#pragma omp parallel for schedule(static)
    for (long rg = 0; rg < (long)R * G; rg++) {
        const real *xr = x + (size_t)rg * N, *d = dout + (size_t)rg * N, r = rs[rg];
        real m = 0;
        for (int i = 0; i < N; i++) m += d[i] * w[i] * xr[i] * r;
        m /= N;
        for (int i = 0; i < N; i++) dx[(size_t)rg * N + i] += r * (d[i] * w[i] - xr[i] * r * m);
    }
    if (!dw) return;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        real acc = 0;
        for (long rg = 0; rg < (long)R * G; rg++) acc += dout[(size_t)rg * N + i] * x[(size_t)rg * N + i] * rs[rg];
        dw[i] += acc;
    }
}

static inline real softplus(real z) { return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z)); }

void delta_gate_forward(real *alpha, const real *u, const real *A_log, const real *dt_bias, int R, int H) {
    // alpha = exp(g), g = -exp(A_log) softplus(u + dt_bias)
#pragma omp parallel for schedule(static)
    for (long rh = 0; rh < (long)R * H; rh++) {
        const int h = (int)(rh % H);
        alpha[rh] = exp(-exp(A_log[h]) * softplus(u[rh] + dt_bias[h]));
    }
}
void delta_gate_backward(real *du, real *dA_log, real *ddt_bias, const real *dalpha, const real *alpha,
                         const real *u, const real *A_log, const real *dt_bias, int R, int H) {
    // fwd: alpha = exp(g), g = -exp(A_log) sp, sp = softplus(z), z = u + dt_bias
    //   ->  dg = dalpha alpha ; dA_log += dg g ; dz = -dg exp(A_log) sigmoid(z) ; du += dz ; ddt_bias += dz
#pragma omp parallel for schedule(static)
    for (int h = 0; h < H; h++) {
        const real eA = exp(A_log[h]);
        real sA = 0, sB = 0;
        for (long r = 0; r < R; r++) {
            const size_t i = (size_t)r * H + h;
            const real z = u[i] + dt_bias[h], dg = dalpha[i] * alpha[i];
            const real dz = -dg * eA * ops_sigmoid(z);
            sA += dg * (-eA * softplus(z));
            sB += dz;
            du[i] += dz;
        }
        dA_log[h] += sA;
        ddt_bias[h] += sB;
    }
}

void delta_transition_forward(real *w, real *a, real *vb, const real *alpha, const real *beta, const real *v,
                              int R, int H, int N, int Nv) {
    // DeltaNet: w = 1, a = beta ; Gated: w = alpha, a = alpha beta ; both: vb = beta v
#pragma omp parallel for schedule(static)
    for (long rh = 0; rh < (long)R * H; rh++) {
        const real b = beta[rh], al = alpha ? alpha[rh] : 1, ab = alpha ? alpha[rh] * beta[rh] : beta[rh];
        real *wr = w + (size_t)rh * N, *ar = a + (size_t)rh * N, *vr = vb + (size_t)rh * Nv;
        const real *vi = v + (size_t)rh * Nv;
        for (int j = 0; j < N; j++) wr[j] = al, ar[j] = ab;
        for (int i = 0; i < Nv; i++) vr[i] = b * vi[i];
    }
}
void delta_transition_backward(real *dalpha, real *dbeta, real *dv, const real *dw, const real *da,
                               const real *dvb, const real *alpha, const real *beta, const real *v, int R, int H,
                               int N, int Nv) {
    // fwd: w_j = alpha, a_j = alpha beta (DeltaNet: w_j = 1, a_j = beta), vb_i = beta v_i
#pragma omp parallel for schedule(static)
    for (long rh = 0; rh < (long)R * H; rh++) {
        const real *dwr = dw + (size_t)rh * N, *dar = da + (size_t)rh * N, *dvr = dvb + (size_t)rh * Nv;
        const real *vi = v + (size_t)rh * Nv, b = beta[rh];
        real sw = 0, sa = 0, sv = 0;
        for (int j = 0; j < N; j++) sw += dwr[j], sa += dar[j];
        for (int i = 0; i < Nv; i++) {
            sv += dvr[i] * vi[i];
            dv[(size_t)rh * Nv + i] += b * dvr[i];
        }
        if (alpha) {
            dbeta[rh] += sv + sa * alpha[rh];
            dalpha[rh] += sw + sa * b;
        } else {
            dbeta[rh] += sv + sa;
        }
    }
}

/* ---- dims and layout ------------------------------------------------------------------------- */
typedef struct {
    int V, C, L, N, H, Nv, CV, F, K, gated, extended, has_ln0;
} Shape;

static Shape shape_of(const DeltaDims *d, int gated) {
    Shape s = {.V = d->V, .C = d->C, .L = d->L, .N = d->N, .K = d->short_conv, .gated = gated,
               .extended = d->extended, .has_ln0 = d->has_ln0};
    CHECK(d->N > 0 && d->C > 0 && d->C % d->N == 0, "head size N=%d must divide C=%d", d->N, d->C);
    s.H = d->C / d->N;
    s.Nv = gated ? d->expand_v * d->N : d->N;
    s.CV = s.H * s.Nv;
    s.F = 4 * d->C;
    return s;
}

/* Visit every tensor in checkpoint order; W (may be NULL) receives pointers into wk->base. */
static void delta_layout(const Shape *s, ParamWalk *wk, DeltaWeights *W) {
    const int V = s->V, C = s->C, H = s->H, CV = s->CV, F = s->F, K = s->K;
    DeltaWeights dw;
    DeltaLayer dl;
    if (!W) W = &dw;
#define ADD(field, ndim, a, b, c, dec, ...) field = arch_walk_addf(wk, ndim, a, b, c, dec, __VA_ARGS__)
    arch_layout_first(wk, V, C, s->has_ln0, &W->emb, &W->ln0_w, &W->ln0_b);
    for (int l = 0; l < s->L; l++) {
        DeltaLayer *P = W != &dw ? &W->layer[l] : &dl;
        memset(P, 0, sizeof *P);
        arch_layout_block_norms(wk, l, C, &P->ln1_w, &P->ln1_b, &P->ln2_w, &P->ln2_b);
        ADD(P->Wq, 2, C, C, 0, 1, "blocks.%d.attn.q_proj.weight", l);
        ADD(P->Wk, 2, C, C, 0, 1, "blocks.%d.attn.k_proj.weight", l);
        ADD(P->Wv, 2, CV, C, 0, 1, "blocks.%d.attn.v_proj.weight", l);
        if (s->gated) {
            ADD(P->Wa, 2, H, C, 0, 1, "blocks.%d.attn.a_proj.weight", l);
            ADD(P->A_log, 1, H, 0, 0, 0, "blocks.%d.attn.A_log", l);     /* no weight decay */
            ADD(P->dt_bias, 1, H, 0, 0, 0, "blocks.%d.attn.dt_bias", l); /* no weight decay */
        }
        ADD(P->Wb, 2, H, C, 0, 1, "blocks.%d.attn.b_proj.weight", l);
        if (K) { /* arch_util.h: one rule for every architecture's filters */
            P->cq = arch_walk_conv(wk, C, K, "blocks.%d.attn.q_conv1d.weight", l);
            P->ck = arch_walk_conv(wk, C, K, "blocks.%d.attn.k_conv1d.weight", l);
            P->cv = arch_walk_conv(wk, CV, K, "blocks.%d.attn.v_conv1d.weight", l);
        }
        if (s->gated) ADD(P->Wg, 2, CV, C, 0, 1, "blocks.%d.attn.g_proj.weight", l);
        ADD(P->onorm, 1, s->Nv, 0, 0, 0, "blocks.%d.attn.o_norm.weight", l);
        ADD(P->Wo, 2, C, CV, 0, 1, "blocks.%d.attn.o_proj.weight", l);
        arch_layout_ffn(wk, l, C, F, 0, 0, &P->f_xk, &P->f_Wk, &P->f_bk, &P->f_Wv, &P->f_bv);
    }
    arch_layout_last(wk, V, C, 0, &W->lnout_w, &W->lnout_b, &W->head, &W->head_b);
#undef ADD
}
static void layout_walk(const void *s, ParamWalk *wk) { delta_layout(s, wk, NULL); }

ParamTensor *delta_tensor_table(const DeltaDims *d, int gated, int *ntensors, size_t *nparams) {
    Shape s = shape_of(d, gated);
    return arch_table_of(layout_walk, &s, ntensors, nparams);
}

/* ---- activations ----------------------------------------------------------------------------- */
typedef struct {
    real *x_in, *ln1, *ln1_m, *ln1_r;         /* (R,C) (R,C) (R) (R) */
    real *qp, *kp, *vp;                       /* projections (R,C) (R,C) (R,CV) */
    real *qc, *kc, *vc;                       /* after the short conv; the same arrays as qp, kp, vp when K = 0 */
    real *cs_q, *cs_k, *cs_v;                 /* the conv state the forward started from (B,K-1,C|CV), one
                                                 block (shortconv3_forward's history) */
    real *qs, *ks, *vs;                       /* silu: (R,C) (R,C) (R,CV) */
    real *qn, *kn, *qinv, *kinv;              /* l2norm (R,C), saved 1/norm (R,H) */
    real *r;                                  /* qn / sqrt(N) (R,C) */
    real *bz, *bsig, *beta;                   /* (R,H): W_b x, sigmoid, beta */
    real *au, *alpha;                         /* gated (R,H): W_a x, alpha */
    real *w, *a, *vb;                         /* kernel inputs (R,C) (R,C) (R,CV) */
    real *y, *on, *ors;                       /* (R,CV) (R,CV) (R,H) */
    real *gp, *gs, *og;                       /* gated (R,CV): W_g x, silu, on * gs */
    ArchFfnActs f;                            /* the FFN: x_mid (its input) .. fr (arch_util.h) */
    real *dkk;                                /* gradient scratch only: the kernel's removal-key gradient (R,C) */
} LayerActs;

struct DeltaActs {
    size_t numel;                /* reals the current shape uses */
    ArchBuf mem;                 /* the buffer and the tokens */
    LayerActs *la;               /* L */
    LayerActs dla;               /* gradient scratch of one layer (same shapes) */
    size_t dla_numel;            /* its reals (contiguous from dla.x_in) */
    real *ckpt;                  /* L x wkv7 checkpoints */
    size_t ckpt_layer;
    ArchEndActs e;               /* embedding and head (arch_util.h) */
};

static void layer_acts_layout(LayerActs *a, size_t *off, real *base, const Shape *s, int B, int T, int scratch) {
    const size_t R = (size_t)B * T, C = s->C, H = s->H, CV = s->CV, Kp = s->K ? (size_t)s->K - 1 : 0;
#define CARVE(f, n) a->f = arch_carve(off, base, n)
    CARVE(x_in, R * C), CARVE(ln1, R * C), CARVE(ln1_m, R), CARVE(ln1_r, R);
    CARVE(qp, R * C), CARVE(kp, R * C), CARVE(vp, R * CV);
    a->cs_q = a->cs_k = a->cs_v = NULL;
    if (s->K) {
        CARVE(qc, R * C), CARVE(kc, R * C), CARVE(vc, R * CV);
        if (!scratch) CARVE(cs_q, B * Kp * C), CARVE(cs_k, B * Kp * C), CARVE(cs_v, B * Kp * CV);
    } else {
        a->qc = a->qp, a->kc = a->kp, a->vc = a->vp;
    }
    CARVE(qs, R * C), CARVE(ks, R * C), CARVE(vs, R * CV);
    CARVE(qn, R * C), CARVE(kn, R * C), CARVE(qinv, R * H), CARVE(kinv, R * H), CARVE(r, R * C);
    CARVE(bz, R * H), CARVE(bsig, R * H), CARVE(beta, R * H);
    a->au = a->alpha = a->gp = a->gs = a->og = NULL;
    if (s->gated) CARVE(au, R * H), CARVE(alpha, R * H);
    CARVE(w, R * C), CARVE(a, R * C), CARVE(vb, R * CV);
    CARVE(y, R * CV), CARVE(on, R * CV), CARVE(ors, R * H);
    if (s->gated) CARVE(gp, R * CV), CARVE(gs, R * CV), CARVE(og, R * CV);
    arch_ffn_carve(&a->f, off, base, R, s->C, s->F);
    a->dkk = NULL;
    if (scratch) CARVE(dkk, R * C);
#undef CARVE
}

/* with_backward = 0 (a model without gradients): no gradient scratch at all */
static void acts_layout(DeltaActs *A, real *base, const Shape *s, int B, int T, int K, int with_backward) {
    size_t off = 0, R = (size_t)B * T, C = s->C;
    for (int l = 0; l < s->L; l++) layer_acts_layout(&A->la[l], &off, base, s, B, T, 0);
    memset(&A->dla, 0, sizeof A->dla);
    A->dla_numel = 0;
    if (with_backward) {
        size_t o0 = off;
        layer_acts_layout(&A->dla, &off, base, s, B, T, 1);
        A->dla_numel = off - o0;
    }
    Wkv7Dims wd = {.B = B, .T = T, .H = s->H, .N = s->N, .K = K, .Nv = s->Nv};
    A->ckpt_layer = wkv7_ckpt_numel(&wd);
    A->ckpt = arch_carve(&off, base, A->ckpt_layer * s->L);
    arch_ends_carve(&A->e, &off, base, R, C, s->V);
    arch_ends_carve_grad(&A->e, &off, base, R, C, with_backward);
    A->numel = off;
}

size_t delta_act_bytes_for(const DeltaDims *d, int gated, int B, int T, int K, int with_backward) {
    Shape s = shape_of(d, gated);
    DeltaActs A = {.la = xcalloc(s.L, sizeof(LayerActs))};
    acts_layout(&A, NULL, &s, B, T, K, with_backward);
    free(A.la);
    return A.numel * sizeof(real) + (size_t)B * T * sizeof(int);
}

static Shape model_shape(const DeltaModel *m) { return shape_of(&m->d, m->gated); }

/* Carve the activation buffer for (B,T,K) (it only grows: arch_util.h's ArchBuf). */
static void acts_ensure(DeltaModel *m, int B, int T, int K) {
    if (m->acts && m->B == B && m->T == T && m->Kc == K) return;
    Shape s = model_shape(m);
    DeltaActs *A = m->acts;
    if (!A) {
        A = xcalloc(1, sizeof *A);
        A->la = xcalloc(s.L, sizeof(LayerActs));
    }
    acts_layout(A, NULL, &s, B, T, K, m->grads != NULL);
    arch_buf_reserve(&A->mem, A->numel, (size_t)B * T);
    acts_layout(A, A->mem.buf, &s, B, T, K, m->grads != NULL);
    m->acts = A, m->B = B, m->T = T, m->Kc = K;
}

size_t delta_act_bytes(const Model *mm) {
    const DeltaModel *m = mm->self;
    return m->acts ? arch_buf_bytes(&m->acts->mem) : 0;
}

/* ---- create / free ------------------------------------------------------------------------- */
Model *delta_create(const ModelArch *arch, const DeltaDims *d, int gated, int with_grads) {
    DeltaModel *m = xcalloc(1, sizeof *m);
    m->d = *d;
    m->gated = gated;
    Shape s = shape_of(d, gated);
    m->H = s.H, m->Nv = s.Nv, m->F = s.F, m->K = s.K;
    ParamWalk wk = {0};
    delta_layout(&s, &wk, NULL);
    m->ntensors = wk.n;
    m->nparams = wk.off;
    m->tensors = xcalloc(m->ntensors, sizeof(ParamTensor));
    m->params = xcalloc(m->nparams, sizeof(real));
    m->grads = with_grads ? xcalloc(m->nparams, sizeof(real)) : NULL;
    m->w.layer = xcalloc(s.L, sizeof(DeltaLayer));
    m->g.layer = xcalloc(s.L, sizeof(DeltaLayer));
    ParamWalk wp = {.base = m->params, .table = m->tensors};
    delta_layout(&s, &wp, &m->w);
    ParamWalk wg = {.base = m->grads}; /* base NULL: every gradient pointer stays NULL */
    delta_layout(&s, &wg, &m->g);
    model_attach(&m->head, arch, m, d, s.V, s.C, s.L, s.H, s.N, s.Nv, m->tensors, m->ntensors, m->nparams,
                 m->params, m->grads);
    return &m->head;
}

void delta_free(Model *mm) {
    DeltaModel *m = mm->self;
    if (m->acts) arch_buf_free(&m->acts->mem), free(m->acts->la), free(m->acts);
    free(m->tensors), free(m->params), free(m->grads), free(m->w.layer), free(m->g.layer), free(m);
}

/* ---- init ------------------------------------------------------------------------------------ */
static void normal_init(real *x, size_t n, double sd, gsl_rng *rng) {
    for (size_t i = 0; i < n; i++) x[i] = (real)gsl_ran_gaussian(rng, sd);
}

void delta_init(Model *mm, gsl_rng *rng, const RunConfig *c) {
    DeltaModel *m = mm->self;
    const Shape s = model_shape(m);
    const int V = s.V, C = s.C, L = s.L, H = s.H, CV = s.CV, K = s.K;
    memset(m->params, 0, m->nparams * sizeof(real));
    DeltaWeights *W = &m->w;
    // skeleton: as RWKV-7 (rwkv7.md's table; arch_util.h)
    const ArchEnds ends = ARCH_ENDS_OF(W);
    arch_init_first(&ends, V, C, rng);
    for (int l = 0; l < L; l++) {
        DeltaLayer *P = &W->layer[l];
        for (int i = 0; i < C; i++) P->ln1_w[i] = P->ln2_w[i] = 1;
        arch_init_ffn_mix(P->f_xk, l, L, C);
        // mixer: as fla (Linear weights N(0, 0.02), norm weight 1); conv filters: shortconv_init (all archs)
        normal_init(P->Wq, (size_t)C * C, 0.02, rng);
        normal_init(P->Wk, (size_t)C * C, 0.02, rng);
        normal_init(P->Wv, (size_t)CV * C, 0.02, rng);
        normal_init(P->Wb, (size_t)H * C, 0.02, rng);
        if (K) { /* the one conv init of every architecture (shortconv.h): U(-1/sqrt(K), 1/sqrt(K)) */
            shortconv_init(P->cq, C, K, rng);
            shortconv_init(P->ck, C, K, rng);
            shortconv_init(P->cv, CV, K, rng);
        }
        normal_init(P->Wo, (size_t)C * CV, 0.02, rng);
        for (int i = 0; i < s.Nv; i++) P->onorm[i] = 1;
        if (s.gated) {
            normal_init(P->Wa, (size_t)H * C, 0.02, rng);
            normal_init(P->Wg, (size_t)CV * C, 0.02, rng);
            for (int h = 0; h < H; h++) {
                /* A ~ U(0,16] (uniform_pos: never log(0)); dt log-uniform in [1e-3, 0.1], dt_bias = softplus^-1(dt) */
                P->A_log[h] = (real)log(16.0 * gsl_rng_uniform_pos(rng));
                const double dt = exp(log(1e-3) + (log(0.1) - log(1e-3)) * gsl_rng_uniform(rng));
                P->dt_bias[h] = (real)(dt + log(-expm1(-dt)));
            }
        }
        arch_orthogonal_init(P->f_Wk, s.F, C, 1.0, rng); /* ffn.value stays zero */
    }
    arch_init_last(&ends, V, C, rng);
    (void)c;
}

/* ---- state ----------------------------------------------------------------------------------- */
static size_t conv_numel(const Shape *s, int B) { return s->K ? (size_t)B * (s->K - 1) * (2 * s->C + s->CV) : 0; }
static size_t state_layer_numel(const Shape *s, int B) {
    return conv_numel(s, B) + (size_t)B * s->H * s->Nv * s->N + (size_t)B * s->C;
}
size_t delta_state_numel(const Model *mm, int B) {
    Shape s = model_shape(mm->self);
    return s.L * state_layer_numel(&s, B);
}
size_t delta_matrix_state_numel(const Model *mm) { return (size_t)mm->L * mm->H * mm->N * mm->Nv; }

real *delta_state_conv(const DeltaModel *m, real *state, int B, int l, int which) {
    Shape s = model_shape(m);
    if (!s.K || !state) return NULL;
    real *p = state + l * state_layer_numel(&s, B);
    const size_t Kp = (size_t)s.K - 1;
    return which == 0 ? p : which == 1 ? p + B * Kp * s.C : p + 2 * B * Kp * s.C;
}
real *delta_state_S(const DeltaModel *m, real *state, int B, int l) {
    Shape s = model_shape(m);
    return state ? state + l * state_layer_numel(&s, B) + conv_numel(&s, B) : NULL;
}
real *delta_state_ffn(const DeltaModel *m, real *state, int B, int l) {
    Shape s = model_shape(m);
    return state ? delta_state_S(m, state, B, l) + (size_t)B * s.H * s.Nv * s.N : NULL;
}

/* ---- forward --------------------------------------------------------------------------------- */
static void scale_into(real *out, const real *x, real s, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = x[i] * s;
}

const real *delta_forward(Model *mm, const int *tokens, int B, int T, const ModelFwd *f) {
    DeltaModel *m = mm->self;
    const Shape s = model_shape(m);
    const int C = s.C, H = s.H, N = s.N, Nv = s.Nv, CV = s.CV, F = s.F, V = s.V, L = s.L, K = s.K;
    const int R = B * T;
    CHECK(B >= 1 && T >= 1 && f->K >= 1, "bad forward shape B=%d T=%d K=%d", B, T, f->K);
    acts_ensure(m, B, T, f->K);
    DeltaActs *A = m->acts;
    memcpy(A->mem.tokens, tokens, (size_t)R * sizeof(int));
#ifdef _OPENMP
    const int saved_threads = omp_get_max_threads();
    if ((long)R * C < DELTA_PAR_MIN) omp_set_num_threads(1); /* speed only: results do not depend on it */
#endif
    const DeltaWeights *W = &m->w;
    const ModelTrace *tr = f->trace;
    const real beta_scale = s.extended ? 2 : 1, qscale = 1 / sqrt((real)N);
    real *state_in = (real *)f->state_in, *state_out = f->state_out;

    const ArchEnds ends = ARCH_ENDS_OF(W);
    // x = emb[token]; x = LayerNorm(x; ln0) when present
    arch_embed_forward(A->la[0].x_in, &A->e, tokens, &ends, R, C);
    real *traj = tr && tr->state ? xmalloc((size_t)R * H * Nv * N * sizeof(real)) : NULL; /* (B,T,H,Nv,N) */

    for (int l = 0; l < L; l++) {
        const DeltaLayer *P = &W->layer[l];
        LayerActs *a = &A->la[l];
        real *x_next = l + 1 < L ? A->la[l + 1].x_in : A->e.x_fin;

        // ---- mixer: q, k, v, beta from LN1(x)
        norm_forward(a->ln1, a->ln1_m, a->ln1_r, a->x_in, P->ln1_w, P->ln1_b, R, 1, C, LN_EPS);
        linear_forward(a->qp, a->ln1, P->Wq, NULL, R, C, C);
        linear_forward(a->kp, a->ln1, P->Wk, NULL, R, C, C);
        linear_forward(a->vp, a->ln1, P->Wv, NULL, R, C, CV);
        if (K) { // q, k, v = conv_K(.) carrying the conv state; cs_q.. keep the state it started from
            real *const y[3] = {a->qc, a->kc, a->vc};
            const real *const x[3] = {a->qp, a->kp, a->vp}, *const cw[3] = {P->cq, P->ck, P->cv};
            const int Cs[3] = {C, C, CV};
            shortconv3_forward(y, x, cw, a->cs_q, delta_state_conv(m, state_in, B, l, 0),
                               delta_state_conv(m, state_out, B, l, 0), Cs, B, T, K);
        }
        silu_forward(a->qs, a->qc, R * C);
        silu_forward(a->ks, a->kc, R * C);
        silu_forward(a->vs, a->vc, R * CV);
        delta_l2norm_forward(a->qn, a->qinv, a->qs, R, H, N, DELTA_L2_EPS);
        delta_l2norm_forward(a->kn, a->kinv, a->ks, R, H, N, DELTA_L2_EPS);
        scale_into(a->r, a->qn, qscale, (size_t)R * C); // r = q / sqrt(N)
        // beta = sigmoid(W_b x)  [extended: 2 sigmoid(W_b x)]
        linear_forward(a->bz, a->ln1, P->Wb, NULL, R, C, H);
        sigmoid_forward(a->bsig, a->bz, NULL, R, H);
        scale_into(a->beta, a->bsig, beta_scale, (size_t)R * H);
        // gated: alpha = exp(-exp(A_log) softplus(W_a x + dt_bias))
        if (s.gated) {
            linear_forward(a->au, a->ln1, P->Wa, NULL, R, C, H);
            delta_gate_forward(a->alpha, a->au, P->A_log, P->dt_bias, R, H);
        }
        // S_t = S_{t-1} diag(w) + (S_{t-1}(-k)) (k*a)^T + (beta v) k^T ; y = S_t r   (delta_common.h)
        delta_transition_forward(a->w, a->a, a->vb, a->alpha, a->beta, a->vs, R, H, N, Nv);
        Wkv7Dims wd = {.B = B, .T = T, .H = H, .N = N, .K = f->K, .Nv = Nv};
        wkv7_forward(a->y, A->ckpt + l * A->ckpt_layer, delta_state_S(m, state_out, B, l), traj, a->r, a->w, a->kn,
                     a->vb, a->kn, a->a, delta_state_S(m, state_in, B, l), &wd);
        // out = W_o RMSNorm_head(y)   [gated: W_o (RMSNorm_head(y) * silu(W_g x))]
        delta_rmsnorm_forward(a->on, a->ors, a->y, P->onorm, R, H, Nv, DELTA_RMS_EPS);
        const real *oin = a->on;
        if (s.gated) {
            linear_forward(a->gp, a->ln1, P->Wg, NULL, R, C, CV);
            silu_forward(a->gs, a->gp, R * CV);
            mul_forward(a->og, a->on, a->gs, R * CV);
            oin = a->og;
        }
        linear_forward(a->f.x_mid, oin, P->Wo, NULL, R, CV, C);
        add_into(a->f.x_mid, a->x_in, (size_t)R * C);

        // ---- FFN (RWKV-7's channel mix, arch_util.h): x_next = x_mid + W_v relu(W_k mix(ln2, shift(ln2)))^2
        const ArchFfn fw = ARCH_FFN_OF(P);
        arch_ffn_forward(x_next, &a->f, &fw, delta_state_ffn(m, state_in, B, l), delta_state_ffn(m, state_out, B, l),
                         B, T, C, F);

        if (tr) { // the transition M = diag(w) + alpha beta^T with alpha = -k, beta = a * k (model.h)
            const size_t oc = (size_t)l * R * C, oh = (size_t)l * R * H;
            if (tr->w) arch_to_float(tr->w + oc, a->w, (size_t)R * C);
            for (size_t i = 0; i < (size_t)R * C; i++) {
                if (tr->alpha) tr->alpha[oc + i] = (float)-a->kn[i];
                if (tr->beta) tr->beta[oc + i] = (float)(a->a[i] * a->kn[i]);
            }
            /* own quantities: DeltaNet q[0] = beta; Gated q[0] = alpha, q[1] = beta (per head) */
            if (s.gated && tr->q[0]) arch_to_float(tr->q[0] + oh, a->alpha, (size_t)R * H);
            float *qb = tr->q[s.gated ? 1 : 0];
            if (qb) arch_to_float(qb + oh, a->beta, (size_t)R * H);
            if (traj) arch_to_float(tr->state + (size_t)l * R * H * Nv * N, traj, (size_t)R * H * Nv * N);
        }
    }
    free(traj);
#ifdef _OPENMP
    omp_set_num_threads(saved_threads);
#endif
    return arch_head_forward(&A->e, &ends, B, T, C, V, f->head_last_only, f->head_rows);
}

/* ---- backward -------------------------------------------------------------------------------- */

void delta_backward(Model *mm, const real *dlogits) {
    DeltaModel *m = mm->self;
    const Shape s = model_shape(m);
    const int C = s.C, H = s.H, N = s.N, Nv = s.Nv, CV = s.CV, F = s.F, V = s.V, L = s.L, K = s.K;
    const int B = m->B, T = m->T, R = B * T;
    DeltaActs *A = m->acts;
    const DeltaWeights *W = &m->w;
    DeltaWeights *G = &m->g;
    CHECK(A, "%s backward called before its forward", mm->arch->title);
    CHECK(m->grads, "%s backward on a model created without gradients", mm->arch->title);
    const real beta_scale = s.extended ? 2 : 1, qscale = 1 / sqrt((real)N);

    const ArchEnds ends = ARCH_ENDS_OF(W), gends = ARCH_ENDS_OF(G);
    // fwd: logits = head lnf ; lnf = LN(x_fin)   (dlogits from the shared loss, model.c)
    arch_head_backward(&A->e, &gends, dlogits, &ends, R, C, V);

    LayerActs *g = &A->dla;
    for (int l = L - 1; l >= 0; l--) {
        const DeltaLayer *P = &W->layer[l];
        DeltaLayer *Q = &G->layer[l];
        const LayerActs *a = &A->la[l];
        arch_zero(g->x_in, A->dla_numel);
        // ---- FFN. fwd: x_next = x_mid + FFN(x_mid)   (arch_util.h)
        const ArchFfn fw = ARCH_FFN_OF(P), fg = ARCH_FFN_OF(Q);
        arch_ffn_backward(&g->f, &fg, A->e.dx, &a->f, &fw, B, T, C, F);

        // ---- mixer. fwd: x_mid = x_in + W_o oin
        memcpy(g->x_in, g->f.x_mid, (size_t)R * C * sizeof(real));
        if (s.gated) {
            linear_backward(g->og, Q->Wo, NULL, g->f.x_mid, a->og, P->Wo, R, CV, C);
            // fwd: og = on * gs ; gs = silu(gp) ; gp = W_g ln1
            mul_backward(g->on, g->gs, g->og, a->on, a->gs, R * CV);
            silu_backward(g->gp, g->gs, a->gp, R * CV);
            linear_backward(g->ln1, Q->Wg, NULL, g->gp, a->ln1, P->Wg, R, C, CV);
        } else {
            linear_backward(g->on, Q->Wo, NULL, g->f.x_mid, a->on, P->Wo, R, CV, C);
        }
        // fwd: on = RMSNorm_head(y; o_norm)
        delta_rmsnorm_backward(g->y, Q->onorm, g->on, a->y, a->ors, P->onorm, R, H, Nv);
        // fwd: y = WKV7(r, w, k, vb, kk = k, a)
        Wkv7Dims wd = {.B = B, .T = T, .H = H, .N = N, .K = m->Kc, .Nv = Nv};
        wkv7_backward(g->r, g->w, g->kn, g->vb, g->dkk, g->a, NULL, g->y, NULL, A->ckpt + l * A->ckpt_layer, a->r,
                      a->w, a->kn, a->vb, a->kn, a->a, &wd);
        add_into(g->kn, g->dkk, (size_t)R * C);
        // fwd: w, a, vb from alpha, beta, v (delta_transition_forward)
        delta_transition_backward(g->alpha, g->beta, g->vs, g->w, g->a, g->vb, a->alpha, a->beta, a->vs, R, H, N, Nv);
        if (s.gated) { // fwd: alpha = gate(au; A_log, dt_bias) ; au = W_a ln1
            delta_gate_backward(g->au, Q->A_log, Q->dt_bias, g->alpha, a->alpha, a->au, P->A_log, P->dt_bias, R, H);
            linear_backward(g->ln1, Q->Wa, NULL, g->au, a->ln1, P->Wa, R, C, H);
        }
        // fwd: beta = scale * sigmoid(bz) ; bz = W_b ln1
        scale_into(g->bsig, g->beta, beta_scale, (size_t)R * H);
        sigmoid_backward(g->bz, NULL, g->bsig, a->bsig, R, H);
        linear_backward(g->ln1, Q->Wb, NULL, g->bz, a->ln1, P->Wb, R, C, H);
        // fwd: r = qn / sqrt(N) ; qn, kn = l2norm(qs, ks) ; qs, ks, vs = silu(qc, kc, vc)
        for (size_t i = 0; i < (size_t)R * C; i++) g->qn[i] += g->r[i] * qscale;
        delta_l2norm_backward(g->qs, g->qn, a->qn, a->qinv, R, H, N);
        delta_l2norm_backward(g->ks, g->kn, a->kn, a->kinv, R, H, N);
        silu_backward(g->qc, g->qs, a->qc, R * C);
        silu_backward(g->kc, g->ks, a->kc, R * C);
        silu_backward(g->vc, g->vs, a->vc, R * CV);
        if (K) { // fwd: qc, kc, vc = conv_K(qp, kp, vp) from the state the forward started from
            real *const dx[3] = {g->qp, g->kp, g->vp}, *const dw[3] = {Q->cq, Q->ck, Q->cv};
            const real *const dy[3] = {g->qc, g->kc, g->vc}, *const x[3] = {a->qp, a->kp, a->vp};
            const real *const cw[3] = {P->cq, P->ck, P->cv};
            const int Cs[3] = {C, C, CV};
            shortconv3_backward(dx, dw, dy, x, cw, a->cs_q, Cs, B, T, K);
        } /* K = 0: qc, kc, vc are qp, kp, vp */
        // fwd: qp, kp, vp = W_{q,k,v} ln1 ; ln1 = LN(x_in)
        linear_backward(g->ln1, Q->Wq, NULL, g->qp, a->ln1, P->Wq, R, C, C);
        linear_backward(g->ln1, Q->Wk, NULL, g->kp, a->ln1, P->Wk, R, C, C);
        linear_backward(g->ln1, Q->Wv, NULL, g->vp, a->ln1, P->Wv, R, C, CV);
        norm_backward(g->x_in, Q->ln1_w, Q->ln1_b, g->ln1, a->x_in, a->ln1_m, a->ln1_r, P->ln1_w, R, 1, C);
        memcpy(A->e.dx, g->x_in, (size_t)R * C * sizeof(real));
    }
    // fwd: x_in[0] = LN(emb[tokens]; ln0) or emb[tokens]
    arch_embed_backward(&gends, &A->e, A->e.dx, A->mem.tokens, &ends, R, C, V);
}

/* ---- the interface pieces both tables use ----------------------------------------------------- */
int delta_dims_from_config(DeltaDims *d, const RunConfig *c, int V, int gated, Err *err) {
    const char *title = gated ? "Gated DeltaNet" : "DeltaNet";
    *d = (DeltaDims){.V = V, .C = c->model.d_model, .L = c->model.layers, .N = c->model.head_size, .has_ln0 = 1,
                     .extended = !strcmp(c->model.eig_range, "extended"), .short_conv = c->model.short_conv,
                     .expand_v = gated ? c->model.expand_v : 0};
    if (d->N < 1 || d->C % d->N)
        return err_set(err, "model.head_size = %d must divide model.d_model = %d", d->N, d->C);
    if (!gated && c->model.expand_v != 1)
        return err_set(err, "model.expand_v = %d applies to Gated DeltaNet only (model.arch = gated_deltanet); %s's "
                            "value head is model.head_size: leave model.expand_v at 1", c->model.expand_v, title);
    return delta_validate_dims(d, gated, err);
}

int delta_validate_dims(const DeltaDims *d, int gated, Err *err) {
    const char *title = gated ? "Gated DeltaNet" : "DeltaNet";
    if (d->V < 1 || d->C < 1 || d->L < 1 || d->N < 1 || d->C % d->N)
        return err_set(err, "implausible %s dims V=%d C=%d L=%d N=%d (N must divide C)", title, d->V, d->C, d->L, d->N);
    if (d->has_ln0 < 0 || d->has_ln0 > 1 || d->extended < 0 || d->extended > 1)
        return err_set(err, "implausible %s flags has_ln0=%d extended=%d (0 or 1 each)", title, d->has_ln0, d->extended);
    if (d->short_conv < 0 || d->short_conv > SHORTCONV_MAX_K)
        return err_set(err, "implausible %s short_conv=%d (0 = off, else the kernel size, at most %d)", title,
                       d->short_conv, SHORTCONV_MAX_K);
    if (gated ? d->expand_v < 1 || d->expand_v > 64 : d->expand_v != 0)
        return err_set(err, "implausible %s expand_v=%d (%s)", title, d->expand_v,
                       gated ? "the value head is expand_v * N, 1..64" : "DeltaNet has no expand_v: 0");
    return 0;
}

static const TfTensor *find_l(const TensorFile *tf, const char *fmt, int l) {
    char nm[TF_NAME_MAX];
    snprintf(nm, sizeof nm, fmt, l);
    return tensorfile_find(tf, nm);
}

#define DELTA_IO_MAX_DIM (1 << 28)

/* dims from the shapes of emb.weight [V,C], attn.b_proj.weight [H,C], attn.v_proj.weight [H*Nv,C] and
 * attn.q_conv1d.weight [C,K] (absent: no short conv); the layer count from the blocks.K keys. */
int delta_dims_from_tensors(DeltaDims *d, const TensorFile *tf, const char *path, int gated, Err *err) {
    const char *title = gated ? "Gated DeltaNet" : "DeltaNet";
    memset(d, 0, sizeof *d);
    const TfTensor *emb = tensorfile_find(tf, "emb.weight"), *bp = find_l(tf, "blocks.%d.attn.b_proj.weight", 0);
    const TfTensor *vp = find_l(tf, "blocks.%d.attn.v_proj.weight", 0);
    const TfTensor *cq = find_l(tf, "blocks.%d.attn.q_conv1d.weight", 0);
    char s1[96], s2[96];
    if (!emb || emb->ndim != 2 || emb->shape[0] < 1 || emb->shape[1] < 1 || emb->shape[0] > DELTA_IO_MAX_DIM ||
        emb->shape[1] > DELTA_IO_MAX_DIM)
        return err_set(err, "%s: no 2-D 'emb.weight' [V,C] with sizes in 1..%d: not a %s checkpoint", path,
                       DELTA_IO_MAX_DIM, title);
    d->V = (int)emb->shape[0], d->C = (int)emb->shape[1];
    if (!bp || bp->ndim != 2 || bp->shape[1] != d->C || bp->shape[0] < 1 || d->C % bp->shape[0])
        return err_set(err, "%s: 'blocks.0.attn.b_proj.weight' must be [H,C] with H dividing C = %d (from emb.weight); "
                            "it is %s", path, d->C, bp ? tf_shape_str(bp->shape, bp->ndim, s1, sizeof s1) : "missing");
    const int H = (int)bp->shape[0];
    d->N = d->C / H;
    if (!vp || vp->ndim != 2 || vp->shape[1] != d->C || vp->shape[0] < 1 || vp->shape[0] % ((long)H * d->N) ||
        vp->shape[0] > DELTA_IO_MAX_DIM)
        return err_set(err, "%s: 'blocks.0.attn.v_proj.weight' must be [H*Nv,C] with Nv a multiple of the key head "
                            "size N = %d (H = %d from b_proj); it is %s", path, d->N, H,
                       vp ? tf_shape_str(vp->shape, vp->ndim, s2, sizeof s2) : "missing");
    const int ev = (int)(vp->shape[0] / ((long)H * d->N));
    if (!gated && ev != 1)
        return err_set(err, "%s: 'blocks.0.attn.v_proj.weight' is [%d,%d]: a DeltaNet value head equals its key head "
                            "(H*N = %d rows); a wider value head is Gated DeltaNet's expand_v", path,
                       (int)vp->shape[0], d->C, d->C);
    d->expand_v = gated ? ev : 0;
    if (cq) {
        if (cq->ndim != 2 || cq->shape[0] != d->C || cq->shape[1] < 1 || cq->shape[1] > SHORTCONV_MAX_K)
            return err_set(err, "%s: 'blocks.0.attn.q_conv1d.weight' must be [C,K] with C = %d and 1 <= K <= %d; it "
                                "is %s", path, d->C, SHORTCONV_MAX_K, tf_shape_str(cq->shape, cq->ndim, s1, sizeof s1));
        d->short_conv = (int)cq->shape[1];
    }
    /* layers: max K + 1 over the blocks.K keys; a layer has at least 13 (gated: 17) tensors, so K is bounded
     * by the file's tensor count (a hostile key cannot make the table huge) */
    const int per_layer = gated ? 17 : 13;
    long maxk = -1;
    int at = -1;
    for (int i = 0; i < tf->n; i++) {
        long k = model_key_layer(tf->t[i].name);
        if (k > maxk) maxk = k, at = i;
    }
    if (maxk < 0 || (maxk + 1) * per_layer > tf->n)
        return err_set(err, "%s: %s%s names layer %ld, but the file holds only %d tensors and %ld layers need at least "
                            "%ld: the file is incomplete or not a %s checkpoint", path, at >= 0 ? "tensor " : "no layers",
                       at >= 0 ? tf->t[at].name : "", maxk, tf->n, maxk + 1, (maxk + 1) * per_layer, title);
    d->L = (int)(maxk + 1);
    d->has_ln0 = tensorfile_find(tf, "blocks.0.ln0.weight") || tensorfile_find(tf, "blocks.0.ln0.bias");
    d->extended = 0; /* not recorded in a file (export says so) */
    return delta_validate_dims(d, gated, err);
}

/* matmul: q, k (C^2 each), v (C CV), b (C H), o (CV C), gated a (C H) and g (C CV), FFN (2 C F), head (C V),
 * 2 flops per multiply-add; recurrence: ~5 multiply-adds per state element per token (as rwkv7.c counts) plus
 * the short conv */
double delta_fwd_flops(const Model *mm, double *matmul, double *recurrence) {
    const Shape s = model_shape(mm->self);
    const double C = s.C, CV = s.CV, H = s.H, L = s.L, V = s.V, F = s.F;
    double per_layer = 2 * C * C + C * CV + C * H + CV * C + (s.gated ? C * H + C * CV : 0) + 2 * C * F;
    double mm_ = 2 * L * per_layer + 2 * C * V;
    double rec = 2 * 5 * L * H * s.N * s.Nv + 2 * L * s.K * (2 * C + CV);
    if (matmul) *matmul = mm_;
    if (recurrence) *recurrence = rec;
    return mm_ + rec;
}

const char *delta_export_note(const Model *mm) {
    const DeltaModel *m = mm->self;
    return m->d.extended ? "this model uses the extended eigenvalue range (beta = 2 sigmoid(W_b x)), which a .pth / "
                           ".safetensors file does not record: loading the file gives the standard range (beta = "
                           "sigmoid); keep the run's ckpt.bin for the model itself"
                         : NULL;
}
