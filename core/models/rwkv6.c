/* rwkv6.c -- RWKV-6 ("Finch", x060): layout, official init, forward (sequence/recurrent, any start state),
 * backward, and the model interface. Each backward block names the forward line it inverts; the shared ops
 * are in ops.c, the recurrence in wkv6.c. Rows are tokens: R = B*T.
 *
 * TimeMix of one token (baselines.md), x = ln1 output, x_prev its value at the previous token:
 *   xxx = x + (x_prev - x) * time_maa_x
 *   m_i = tanh(xxx @ time_maa_w1)[slice i of Dm] @ time_maa_w2[i]      i = w, k, v, r, g (this order)
 *   x_i = x + (x_prev - x) * (time_maa_i + m_i)                         ("ddlerp")
 *   r, k, v = W_r x_r, W_k x_k, W_v x_v  (then each through the short causal conv when model.short_conv = K:
 *             att.{r,k,v}_conv.weight [C,K], shortconv.h) ;  g = silu(W_g x_g)
 *   w = exp(-exp(time_decay + tanh(x_w @ time_decay_w1) @ time_decay_w2))
 *   y = WKV6(r, k, v, w, u = time_faaaa)   (reads the old state; wkv6.h)
 *   out = W_o (GroupNorm(y; H groups; ln_x; eps 64e-5) * g)
 * ChannelMix: out = sigmoid(W_r x_r) * (W_v relu(W_k x_k)^2), x_k, x_r plain mixes (ffn.time_maa_k/r).
 */
#include "rwkv6.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <string.h>

#include "arch_util.h"
#include "model_io.h"
#include "ops.h"
#include "shortconv.h"
#include "tensorfile.h"
#include "wkv6.h"


int rwkv6_ffn_width(int C) { return (int)(((long)7 * C / 2) / 32 * 32); }

/* ---- layout: one walk over the tensors (arch_util.h), shared by table, params and grads ----------- */
static void rwkv6_layout(const Rwkv6Dims *d, ParamWalk *wk, Rwkv6Weights *wts) {
    const int V = d->V, C = d->C, F = d->F;
    Rwkv6Weights dummy_w;
    Rwkv6Layer dummy_l;
    Rwkv6Weights *W = wts ? wts : &dummy_w;
#define ADD(field, ndim, a, b, c, dec, ...) field = arch_walk_addf(wk, ndim, a, b, c, dec, __VA_ARGS__)
    arch_layout_first(wk, V, C, d->has_ln0, &W->emb, &W->ln0_w, &W->ln0_b);
    for (int l = 0; l < d->L; l++) {
        Rwkv6Layer *P = wts ? &wts->layer[l] : &dummy_l;
        arch_layout_block_norms(wk, l, C, &P->ln1_w, &P->ln1_b, &P->ln2_w, &P->ln2_b);
        ADD(P->maa_x, 3, 1, 1, C, 0, "blocks.%d.att.time_maa_x", l);
        ADD(P->maa_w, 3, 1, 1, C, 0, "blocks.%d.att.time_maa_w", l);
        ADD(P->maa_k, 3, 1, 1, C, 0, "blocks.%d.att.time_maa_k", l);
        ADD(P->maa_v, 3, 1, 1, C, 0, "blocks.%d.att.time_maa_v", l);
        ADD(P->maa_r, 3, 1, 1, C, 0, "blocks.%d.att.time_maa_r", l);
        ADD(P->maa_g, 3, 1, 1, C, 0, "blocks.%d.att.time_maa_g", l);
        ADD(P->maa_w1, 2, C, 5 * d->Dm, 0, 0, "blocks.%d.att.time_maa_w1", l);
        ADD(P->maa_w2, 3, 5, d->Dm, C, 0, "blocks.%d.att.time_maa_w2", l);
        ADD(P->decay, 3, 1, 1, C, 0, "blocks.%d.att.time_decay", l);
        ADD(P->decay_w1, 2, C, d->Dd, 0, 0, "blocks.%d.att.time_decay_w1", l);
        ADD(P->decay_w2, 2, d->Dd, C, 0, 0, "blocks.%d.att.time_decay_w2", l);
        ADD(P->faaaa, 2, d->H, d->N, 0, 0, "blocks.%d.att.time_faaaa", l);
        ADD(P->Wr, 2, C, C, 0, 1, "blocks.%d.att.receptance.weight", l);
        ADD(P->Wk, 2, C, C, 0, 1, "blocks.%d.att.key.weight", l);
        ADD(P->Wv, 2, C, C, 0, 1, "blocks.%d.att.value.weight", l);
        P->r_conv = P->k_conv = P->v_conv = NULL;
        if (d->conv) arch_layout_rkv_conv(wk, l, C, d->conv, &P->r_conv, &P->k_conv, &P->v_conv); /* arch_util.h */
        ADD(P->Wo, 2, C, C, 0, 1, "blocks.%d.att.output.weight", l);
        ADD(P->Wg, 2, C, C, 0, 1, "blocks.%d.att.gate.weight", l);
        ADD(P->lnx_w, 1, C, 0, 0, 0, "blocks.%d.att.ln_x.weight", l);
        ADD(P->lnx_b, 1, C, 0, 0, 0, "blocks.%d.att.ln_x.bias", l);
        ADD(P->f_maa_k, 3, 1, 1, C, 0, "blocks.%d.ffn.time_maa_k", l);
        ADD(P->f_maa_r, 3, 1, 1, C, 0, "blocks.%d.ffn.time_maa_r", l);
        ADD(P->f_Wk, 2, F, C, 0, 1, "blocks.%d.ffn.key.weight", l);
        ADD(P->f_Wr, 2, C, C, 0, 1, "blocks.%d.ffn.receptance.weight", l);
        ADD(P->f_Wv, 2, C, F, 0, 1, "blocks.%d.ffn.value.weight", l);
    }
    arch_layout_last(wk, V, C, 0, &W->lnout_w, &W->lnout_b, &W->head, &W->head_b);
#undef ADD
}
static void layout_walk(const void *d, ParamWalk *wk) { rwkv6_layout(d, wk, NULL); }

/* H and F, as every model of these dims has them (create trusts validated dims) */
static void resolve_dims(Rwkv6Dims *d) {
    CHECK(d->C > 0 && d->N > 0 && d->C % d->N == 0, "RWKV-6: head size N=%d must divide C=%d", d->N, d->C);
    CHECK(d->L >= 1 && d->V >= 1 && d->Dm >= 1 && d->Dd >= 1 && d->conv >= 0,
          "RWKV-6: need L, V, Dm, Dd >= 1 and conv >= 0 (L=%d V=%d Dm=%d Dd=%d conv=%d)", d->L, d->V, d->Dm, d->Dd,
          d->conv);
    d->H = d->C / d->N;
    d->F = rwkv6_ffn_width(d->C);
    CHECK(d->F > 0, "RWKV-6: C=%d gives no FFN width (int(3.5C)//32*32 = 0); use C >= 10", d->C);
}

static ParamTensor *table_of(Rwkv6Dims *d, int *ntensors, size_t *nparams) {
    resolve_dims(d);
    return arch_table_of(layout_walk, d, ntensors, nparams);
}

Rwkv6 *rwkv6_create(const Rwkv6Dims *dims, int with_grads) {
    Rwkv6 *m = xcalloc(1, sizeof *m);
    m->d = *dims;
    Rwkv6Dims *d = &m->d;
    m->tensors = table_of(d, &m->ntensors, &m->nparams);
    m->params = xcalloc(m->nparams, sizeof(real));
    m->grads = with_grads ? xcalloc(m->nparams, sizeof(real)) : NULL;
    m->w.layer = xcalloc(d->L, sizeof(Rwkv6Layer));
    m->g.layer = xcalloc(d->L, sizeof(Rwkv6Layer));
    ParamWalk wp = {.base = m->params};
    rwkv6_layout(d, &wp, &m->w);
    ParamWalk wg = {.base = m->grads}; /* base NULL: every gradient pointer stays NULL */
    rwkv6_layout(d, &wg, &m->g);
    model_attach(&m->head, &model_rwkv6, m, d, d->V, d->C, d->L, d->H, d->N, d->N, m->tensors, m->ntensors,
                 m->nparams, m->params, m->grads);
    return m;
}

/* ---- official initialisation (baselines.md; r0, r1, ddd as rwkv7.md) ------------------------------ */
void rwkv6_init_official(Rwkv6 *m, gsl_rng *rng) {
    const Rwkv6Dims *d = &m->d;
    const int C = d->C, L = d->L, V = d->V, Dm = d->Dm, Dd = d->Dd;
    memset(m->params, 0, m->nparams * sizeof(real));
    const ArchEnds ends = ARCH_ENDS_OF(&m->w);
    arch_init_first(&ends, V, C, rng);
    for (int l = 0; l < L; l++) {
        Rwkv6Layer *P = &m->w.layer[l];
        double r0 = L > 1 ? (double)l / (L - 1) : 0.0; /* L = 1: r0 = 0 (the official code divides by 0) */
        double r1 = 1.0 - (double)l / L;
        for (int n = 0; n < C; n++) {
            double ddd = (double)n / C, lin = (double)n / (C - 1);
            P->maa_x[n] = P->maa_w[n] = P->maa_k[n] = (real)(1 - pow(ddd, r1));
            P->maa_v[n] = (real)(1 - (pow(ddd, r1) + 0.3 * r0));
            P->maa_r[n] = P->maa_g[n] = (real)(1 - pow(ddd, 0.5 * r1));
            P->decay[n] = (real)(-6 + 5 * pow(lin, 0.7 + 1.3 * r0));
            P->faaaa[n] = (real)(r0 * (1 - lin) + ((n + 1) % 3 - 1) * 0.1); /* (H,N) flat = channel n */
            P->f_maa_k[n] = P->f_maa_r[n] = (real)(1 - pow(ddd, r1 * r1 * r1));
            P->lnx_w[n] = (real)pow((1.0 + l) / L, 0.7);
            P->ln1_w[n] = P->ln2_w[n] = 1;
        }
        for (size_t i = 0; i < (size_t)5 * Dm * C; i++) P->maa_w2[i] = (real)gsl_ran_flat(rng, -0.01, 0.01);
        for (size_t i = 0; i < (size_t)Dd * C; i++) P->decay_w2[i] = (real)gsl_ran_flat(rng, -0.01, 0.01);
        arch_orthogonal_init(P->Wr, C, C, 1.0, rng);
        arch_orthogonal_init(P->Wk, C, C, 0.1, rng);
        arch_orthogonal_init(P->Wv, C, C, 1.0, rng);
        arch_orthogonal_init(P->Wg, C, C, 0.1, rng);
        arch_orthogonal_init(P->f_Wk, d->F, C, 1.0, rng);
        /* time_maa_w1, time_decay_w1, att.output, ffn.receptance, ffn.value stay zero */
        /* the one conv init of every architecture (shortconv.h): U(-1/sqrt(K), 1/sqrt(K)) */
        if (d->conv) arch_init_rkv_conv(P->r_conv, P->k_conv, P->v_conv, C, d->conv, rng);
    }
    arch_init_last(&ends, V, C, rng);
}

/* ---- state ------------------------------------------------------------------------------------ */
static size_t conv_state_numel(const Rwkv6Dims *d, int B) { return arch_rkv_conv_state_numel(d->C, B, d->conv); }
static size_t state_layer_numel(const Rwkv6Dims *d, int B) {
    return (size_t)B * (2 * (size_t)d->C + (size_t)d->H * d->N * d->N) + conv_state_numel(d, B);
}
size_t rwkv6_state_numel(const Rwkv6Dims *d, int B) { return d->L * state_layer_numel(d, B); }
real *rwkv6_state_att_prev(const Rwkv6Dims *d, real *s, int B, int l) { return s + l * state_layer_numel(d, B); }
real *rwkv6_state_wkv(const Rwkv6Dims *d, real *s, int B, int l) {
    return rwkv6_state_att_prev(d, s, B, l) + (size_t)B * d->C;
}
real *rwkv6_state_ffn_prev(const Rwkv6Dims *d, real *s, int B, int l) {
    return rwkv6_state_wkv(d, s, B, l) + (size_t)B * d->H * d->N * d->N;
}
real *rwkv6_state_conv(const Rwkv6Dims *d, real *s, int B, int l) {
    return rwkv6_state_ffn_prev(d, s, B, l) + (size_t)B * d->C;
}

/* ---- RWKV-6's small ops -------------------------------------------------------------------------- */
void rwkv6_ddlerp_forward(real *out, const real *x, const real *prev, const real *mu, const real *m, int R, int C) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)r * C + c;
            out[i] = x[i] + (prev[i] - x[i]) * (mu[c] + m[i]);
        }
}
void rwkv6_ddlerp_backward(real *dx, real *dprev, real *dmu, real *dm, const real *dout, const real *x,
                           const real *prev, const real *mu, const real *m, int R, int C) {
    // fwd: out = x + (prev - x) * (mu + m)
#pragma omp parallel for schedule(static)
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)r * C + c;
            const real s = mu[c] + m[i], g = dout[i];
            dx[i] += g * (1 - s);
            dprev[i] += g * s;
            dm[i] += g * (prev[i] - x[i]);
        }
    // dmu_c = sum_r dout (prev - x): columns in parallel, rows in order
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        real s = 0;
        for (int r = 0; r < R; r++) {
            size_t i = (size_t)r * C + c;
            s += dout[i] * (prev[i] - x[i]);
        }
        dmu[c] += s;
    }
}

void rwkv6_decay_forward(real *w, real *ez, const real *z, int n) {
#pragma omp parallel for simd schedule(static)
    for (int i = 0; i < n; i++) {
        ez[i] = ops_exp(z[i]);
        w[i] = ops_exp(-ez[i]);
    }
}
void rwkv6_decay_backward(real *dz, const real *dw, const real *w, const real *ez, int n) {
    // fwd: w = exp(-ez), ez = exp(z)  ->  dz = -dw w ez  (-> 0 as z -> inf, where w = 0 and ez may be inf)
#pragma omp parallel for simd schedule(static)
    for (int i = 0; i < n; i++) dz[i] += w[i] > 0 ? -dw[i] * w[i] * ez[i] : 0;
}

/* The tanh of the token-shift LoRA, (R, 5*Dm) with slice i of each row in columns i*Dm.., as five (R,Dm)
 * planes (torch's .view(B*T, 5, -1).transpose(0, 1)), and back (the backward's merge assigns). */
static void split5(real *planes, const real *rows, int R, int Dm) {
    for (int i = 0; i < 5; i++)
        for (int r = 0; r < R; r++)
            memcpy(planes + ((size_t)i * R + r) * Dm, rows + ((size_t)r * 5 + i) * Dm, Dm * sizeof(real));
}
static void merge5(real *rows, const real *planes, int R, int Dm) {
    for (int i = 0; i < 5; i++)
        for (int r = 0; r < R; r++)
            memcpy(rows + ((size_t)r * 5 + i) * Dm, planes + ((size_t)i * R + r) * Dm, Dm * sizeof(real));
}

/* ---- activations ---------------------------------------------------------------------------------- */
typedef struct {
    real *x_in, *ln1, *ln1_m, *ln1_r, *prev1;   /* (R,C) (R,C) (R) (R) (R,C) */
    real *xxx, *mh, *mh5, *m5;                  /* (R,C) (R,5Dm) (5,R,Dm) (5,R,C): m_w, m_k, m_v, m_r, m_g */
    real *xw, *xk, *xv, *xr, *xg;               /* (R,C) */
    real *r, *k, *v, *gz, *g;                   /* (R,C): g = silu(gz) */
    real *rc, *kc, *vc, *conv_in;               /* r, k, v after the short conv (R,C) each (= r, k, v when it
                                                   is off); its input history (3,B,conv-1,C) */
    real *wh, *ez, *w;                          /* (R,Dd) (R,C) (R,C) */
    real *y, *gn, *gn_m, *gn_r, *yg;            /* (R,C) (R,C) (R,H) (R,H) (R,C) */
    real *x_mid, *ln2, *ln2_m, *ln2_r, *prev2;  /* (R,C) (R,C) (R) (R) (R,C) */
    real *fxk, *fxr, *fk, *fr2, *fv, *frs;      /* (R,C) (R,C) (R,F) (R,F) (R,C) (R,C) */
    real *pre, *preD;                           /* gradient scratch only: (R,C) (R,max(5Dm,Dd)) */
} LayerActs;

struct Rwkv6Acts {
    size_t numel;                /* reals the current shape uses */
    ArchBuf mem;                 /* the buffer and the tokens */
    LayerActs *la;               /* L */
    LayerActs dla;               /* gradients of one layer (same shapes), reused for every layer */
    real *ckpt;                  /* L x wkv6 checkpoints (NULL without backward) */
    size_t ckpt_layer;
    ArchEndActs e;               /* embedding and head (arch_util.h) */
};

static void layer_layout(LayerActs *a, size_t *off, real *base, const Rwkv6Dims *d, int B, size_t R, int scratch) {
    const size_t C = d->C, H = d->H, F = d->F, Dm = d->Dm, Dd = d->Dd;
#define RC(f) a->f = arch_carve(off, base, R * C)
#define RN(f, n) a->f = arch_carve(off, base, R * (n))
    RC(x_in), RC(ln1), RN(ln1_m, 1), RN(ln1_r, 1), RC(prev1);
    RC(xxx), RN(mh, 5 * Dm), RN(mh5, 5 * Dm), RN(m5, 5 * C);
    RC(xw), RC(xk), RC(xv), RC(xr), RC(xg);
    RC(r), RC(k), RC(v), RC(gz), RC(g);
    a->rc = a->r, a->kc = a->k, a->vc = a->v, a->conv_in = NULL;
    if (d->conv) RC(rc), RC(kc), RC(vc), a->conv_in = arch_carve(off, base, conv_state_numel(d, B));
    RN(wh, Dd), RC(ez), RC(w);
    RC(y), RC(gn), RN(gn_m, H), RN(gn_r, H), RC(yg);
    RC(x_mid), RC(ln2), RN(ln2_m, 1), RN(ln2_r, 1), RC(prev2);
    RC(fxk), RC(fxr), RN(fk, F), RN(fr2, F), RC(fv), RC(frs);
    a->pre = a->preD = NULL;
    if (scratch) RC(pre), RN(preD, 5 * Dm > Dd ? 5 * Dm : Dd);
#undef RC
#undef RN
}

static void acts_layout(Rwkv6Acts *A, real *base, const Rwkv6Dims *d, int B, int T, int K, int with_backward) {
    size_t off = 0, R = (size_t)B * T, C = d->C;
    for (int l = 0; l < d->L; l++) layer_layout(&A->la[l], &off, base, d, B, R, 0);
    memset(&A->dla, 0, sizeof A->dla);
    A->ckpt = NULL, A->ckpt_layer = 0;
    if (with_backward) {
        layer_layout(&A->dla, &off, base, d, B, R, 1);
        Wkv6Dims wd = {B, T, d->H, d->N, K};
        A->ckpt_layer = wkv6_ckpt_numel(&wd);
        A->ckpt = arch_carve(&off, base, A->ckpt_layer * d->L);
    }
    arch_ends_carve_grad(&A->e, &off, base, R, C, with_backward);
    arch_ends_carve(&A->e, &off, base, R, C, d->V);
    A->numel = off;
}

/* Carve the activations for (B,T,K) (the buffer only grows: arch_util.h's ArchBuf). */
static void acts_ensure(Rwkv6 *m, int B, int T, int K) {
    if (m->acts && m->B == B && m->T == T && m->K == K) return;
    Rwkv6Acts *A = m->acts;
    if (!A) {
        A = xcalloc(1, sizeof *A);
        A->la = xcalloc(m->d.L, sizeof(LayerActs));
    }
    const int wb = m->grads != NULL;
    acts_layout(A, NULL, &m->d, B, T, K, wb);
    arch_buf_reserve(&A->mem, A->numel, (size_t)B * T);
    acts_layout(A, A->mem.buf, &m->d, B, T, K, wb);
    m->acts = A, m->B = B, m->T = T, m->K = K;
}

static void acts_free(Rwkv6Acts *A) {
    if (!A) return;
    arch_buf_free(&A->mem);
    free(A->la), free(A);
}

/* the trace's states: (B,T,H,N,N) [key][value] -> float, transposed to the common [value][key] */
static void states_to_common(float *dst, const real *src, size_t nmat, int N) {
    for (size_t q = 0; q < nmat; q++) {
        const real *S = src + q * N * N;
        float *D = dst + q * N * N;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) D[(size_t)j * N + i] = (float)S[(size_t)i * N + j];
    }
}

/* ---- forward ----------------------------------------------------------------------------------------- */
static const real *rwkv6_forward(Rwkv6 *m, const int *tokens, int B, int T, const ModelFwd *f) {
    const Rwkv6Dims *d = &m->d;
    const int C = d->C, H = d->H, N = d->N, F = d->F, V = d->V, L = d->L, Dm = d->Dm, Dd = d->Dd;
    const int R = B * T, K = f->K;
    CHECK(B >= 1 && T >= 1 && K >= 1, "RWKV-6 forward: bad shape B=%d T=%d K=%d", B, T, K);
    acts_ensure(m, B, T, K);
    Rwkv6Acts *A = m->acts;
    memcpy(A->mem.tokens, tokens, (size_t)R * sizeof(int));
    m->head_last_only = f->head_last_only;
    const Rwkv6Weights *W = &m->w;
    const ArchEnds ends = ARCH_ENDS_OF(W);
    const real *state_in = f->state_in;
    real *state_out = f->state_out;
    const ModelTrace *trace = f->trace;

    // x = emb[token]; x = LayerNorm(x; ln0) when present
    arch_embed_forward(A->la[0].x_in, &A->e, tokens, &ends, R, C);
    real *traj = NULL; /* (B,T,H,N,N) of one layer when tracing states */
    if (trace && trace->state) traj = xmalloc((size_t)R * H * N * N * sizeof(real));

    for (int l = 0; l < L; l++) {
        const Rwkv6Layer *P = &W->layer[l];
        LayerActs *a = &A->la[l];
        real *x_next = l + 1 < L ? A->la[l + 1].x_in : A->e.x_fin;
        /* state_out may alias state_in: everything is read from state_in before this layer writes */
        const real *s_att = state_in ? rwkv6_state_att_prev(d, (real *)state_in, B, l) : NULL;
        const real *s_wkv = state_in ? rwkv6_state_wkv(d, (real *)state_in, B, l) : NULL;
        const real *s_ffn = state_in ? rwkv6_state_ffn_prev(d, (real *)state_in, B, l) : NULL;

        // ---- TimeMix: x = LN(x_in; ln1), x_prev = shift(x)
        norm_forward(a->ln1, a->ln1_m, a->ln1_r, a->x_in, P->ln1_w, P->ln1_b, R, 1, C, LN_EPS);
        token_shift_forward(a->prev1, a->ln1, s_att, B, T, C);
        // xxx = x + (x_prev - x) maa_x ;  m_i = tanh(xxx w1)[i] w2[i]
        mix_forward(a->xxx, a->ln1, a->prev1, P->maa_x, R, C);
        matmul_forward(a->mh, a->xxx, P->maa_w1, R, C, 5 * Dm);
        tanh_forward(a->mh, a->mh, NULL, R, 5 * Dm);
        split5(a->mh5, a->mh, R, Dm);
        for (int i = 0; i < 5; i++)
            matmul_forward(a->m5 + (size_t)i * R * C, a->mh5 + (size_t)i * R * Dm, P->maa_w2 + (size_t)i * Dm * C, R,
                           Dm, C);
        // x_i = x + (x_prev - x)(maa_i + m_i),  i = w k v r g
        real *xs[5] = {a->xw, a->xk, a->xv, a->xr, a->xg};
        const real *mus[5] = {P->maa_w, P->maa_k, P->maa_v, P->maa_r, P->maa_g};
        for (int i = 0; i < 5; i++) rwkv6_ddlerp_forward(xs[i], a->ln1, a->prev1, mus[i], a->m5 + (size_t)i * R * C, R, C);
        // r, k, v = W x ;  g = silu(W_g x_g)
        linear_forward(a->r, a->xr, P->Wr, NULL, R, C, C);
        linear_forward(a->k, a->xk, P->Wk, NULL, R, C, C);
        linear_forward(a->v, a->xv, P->Wv, NULL, R, C, C);
        linear_forward(a->gz, a->xg, P->Wg, NULL, R, C, C);
        silu_forward(a->g, a->gz, R * C);
        // r, k, v = shortconv(r, k, v) when model.short_conv = K (history from the state, or zeros)
        if (d->conv) {
            real *const y[3] = {a->rc, a->kc, a->vc};
            const real *const x[3] = {a->r, a->k, a->v}, *const cw[3] = {P->r_conv, P->k_conv, P->v_conv};
            const int Cs[3] = {C, C, C};
            shortconv3_forward(y, x, cw, a->conv_in, state_in ? rwkv6_state_conv(d, (real *)state_in, B, l) : NULL,
                               state_out ? rwkv6_state_conv(d, state_out, B, l) : NULL, Cs, B, T, d->conv);
        }
        // w = exp(-exp(time_decay + tanh(x_w decay_w1) decay_w2))
        matmul_forward(a->wh, a->xw, P->decay_w1, R, C, Dd);
        tanh_forward(a->wh, a->wh, NULL, R, Dd);
        matmul_forward(a->w, a->wh, P->decay_w2, R, Dd, C);
        add_bias_forward(a->w, a->w, P->decay, R, C);
        rwkv6_decay_forward(a->w, a->ez, a->w, R * C);
        // y = WKV6(r, k, v, w, u)   (old state + bonus; r, k, v after the conv when it is on)
        Wkv6Dims wd = {B, T, H, N, K};
        real *s_wkv_out = state_out ? rwkv6_state_wkv(d, state_out, B, l) : NULL;
        wkv6_forward(a->y, A->ckpt ? A->ckpt + l * A->ckpt_layer : NULL, s_wkv_out, traj, a->rc, a->kc, a->vc, a->w,
                     P->faaaa, s_wkv, &wd);
        // x_mid = x_in + W_o (GN(y) * g)
        norm_forward(a->gn, a->gn_m, a->gn_r, a->y, P->lnx_w, P->lnx_b, R, H, N, GN_EPS);
        mul_forward(a->yg, a->gn, a->g, R * C);
        linear_forward(a->x_mid, a->yg, P->Wo, NULL, R, C, C);
        add_into(a->x_mid, a->x_in, (size_t)R * C);

        // ---- ChannelMix: x_next = x_mid + sigmoid(W_r x_r) * W_v relu(W_k x_k)^2
        norm_forward(a->ln2, a->ln2_m, a->ln2_r, a->x_mid, P->ln2_w, P->ln2_b, R, 1, C, LN_EPS);
        token_shift_forward(a->prev2, a->ln2, s_ffn, B, T, C);
        mix_forward(a->fxk, a->ln2, a->prev2, P->f_maa_k, R, C);
        mix_forward(a->fxr, a->ln2, a->prev2, P->f_maa_r, R, C);
        linear_forward(a->fk, a->fxk, P->f_Wk, NULL, R, C, F);
        relu2_forward(a->fr2, a->fk, R * F);
        linear_forward(a->fv, a->fr2, P->f_Wv, NULL, R, F, C);
        linear_forward(a->frs, a->fxr, P->f_Wr, NULL, R, C, C);
        sigmoid_forward(a->frs, a->frs, NULL, R, C);
        mul_forward(x_next, a->frs, a->fv, R * C);
        add_into(x_next, a->x_mid, (size_t)R * C);

        if (state_out) {
            arch_copy_last_token(rwkv6_state_att_prev(d, state_out, B, l), a->ln1, B, T, C);
            arch_copy_last_token(rwkv6_state_ffn_prev(d, state_out, B, l), a->ln2, B, T, C);
        }
        if (trace) {
            /* the transition of the common-orientation state is diag(w): ModelTrace.w; "decay" the same */
            size_t o = (size_t)l * R * C;
            if (trace->w) arch_to_float(trace->w + o, a->w, (size_t)R * C);
            if (trace->q[0]) arch_to_float(trace->q[0] + o, a->w, (size_t)R * C);
            if (traj) states_to_common(trace->state + (size_t)l * R * H * N * N, traj, (size_t)R * H, N);
        }
    }
    free(traj);
    return arch_head_forward(&A->e, &ends, B, T, C, V, f->head_last_only, f->head_rows);
}

/* ---- backward -------------------------------------------------------------------------------------- */

static void rwkv6_backward(Rwkv6 *m, const real *dlogits) {
    const Rwkv6Dims *d = &m->d;
    const int C = d->C, H = d->H, N = d->N, F = d->F, V = d->V, L = d->L, Dm = d->Dm, Dd = d->Dd;
    const int B = m->B, T = m->T, R = B * T;
    Rwkv6Acts *A = m->acts;
    const Rwkv6Weights *W = &m->w;
    Rwkv6Weights *G = &m->g;
    CHECK(A, "RWKV-6 backward called before a forward");
    CHECK(!m->head_last_only, "RWKV-6 backward after a head_last_only forward (inference mode)");
    CHECK(m->grads && A->ckpt, "RWKV-6 backward on a model without gradients (created for inference)");

    const ArchEnds ends = ARCH_ENDS_OF(W), gends = ARCH_ENDS_OF(G);
    // fwd: logits = lnf head^T ; lnf = LN(x_fin; ln_out)
    arch_head_backward(&A->e, &gends, dlogits, &ends, R, C, V);

    LayerActs *g = &A->dla;
    /* the gradient set of one layer is contiguous from x_in to the end of preD */
    const size_t dla_numel = (size_t)(g->preD - g->x_in) + (size_t)R * (5 * Dm > Dd ? 5 * Dm : Dd);
    for (int l = L - 1; l >= 0; l--) {
        const Rwkv6Layer *P = &W->layer[l];
        Rwkv6Layer *Q = &G->layer[l];
        const LayerActs *a = &A->la[l];
        arch_zero(g->x_in, dla_numel);

        // ---- ChannelMix. fwd: x_next = x_mid + frs * fv
        memcpy(g->x_mid, A->e.dx, (size_t)R * C * sizeof(real));
        mul_backward(g->frs, g->fv, A->e.dx, a->frs, a->fv, R * C);
        // fwd: frs = sigmoid(f_Wr fxr)
        sigmoid_backward(g->pre, NULL, g->frs, a->frs, R, C);
        linear_backward(g->fxr, Q->f_Wr, NULL, g->pre, a->fxr, P->f_Wr, R, C, C);
        // fwd: fv = f_Wv relu(f_Wk fxk)^2
        linear_backward(g->fr2, Q->f_Wv, NULL, g->fv, a->fr2, P->f_Wv, R, F, C);
        relu2_backward(g->fk, g->fr2, a->fk, R * F);
        linear_backward(g->fxk, Q->f_Wk, NULL, g->fk, a->fxk, P->f_Wk, R, C, F);
        // fwd: fxk, fxr = mix(ln2, prev2, f_maa_k / f_maa_r) ; prev2 = shift(ln2) ; ln2 = LN(x_mid)
        mix_backward(g->ln2, g->prev2, Q->f_maa_k, g->fxk, a->ln2, a->prev2, P->f_maa_k, R, C);
        mix_backward(g->ln2, g->prev2, Q->f_maa_r, g->fxr, a->ln2, a->prev2, P->f_maa_r, R, C);
        token_shift_backward(g->ln2, NULL, g->prev2, B, T, C);
        norm_backward(g->x_mid, Q->ln2_w, Q->ln2_b, g->ln2, a->x_mid, a->ln2_m, a->ln2_r, P->ln2_w, R, 1, C);

        // ---- TimeMix. fwd: x_mid = x_in + W_o (gn * g)
        memcpy(g->x_in, g->x_mid, (size_t)R * C * sizeof(real));
        linear_backward(g->yg, Q->Wo, NULL, g->x_mid, a->yg, P->Wo, R, C, C);
        mul_backward(g->gn, g->g, g->yg, a->gn, a->g, R * C);
        // fwd: gn = GroupNorm(y; ln_x)
        norm_backward(g->y, Q->lnx_w, Q->lnx_b, g->gn, a->y, a->gn_m, a->gn_r, P->lnx_w, R, H, N);
        // fwd: y = WKV6(r, k, v, w, u)
        Wkv6Dims wd = {B, T, H, N, m->K};
        wkv6_backward(g->rc, g->kc, g->vc, g->w, Q->faaaa, NULL, g->y, NULL, A->ckpt + l * A->ckpt_layer, a->rc,
                      a->kc, a->vc, a->w, P->faaaa, &wd);
        // fwd: rc, kc, vc = shortconv(r, k, v)  (shortconv_backward assigns dx)
        if (d->conv) {
            real *const dx[3] = {g->r, g->k, g->v}, *const dw[3] = {Q->r_conv, Q->k_conv, Q->v_conv};
            const real *const dy[3] = {g->rc, g->kc, g->vc}, *const x[3] = {a->r, a->k, a->v};
            const real *const cw[3] = {P->r_conv, P->k_conv, P->v_conv};
            const int Cs[3] = {C, C, C};
            shortconv3_backward(dx, dw, dy, x, cw, a->conv_in, Cs, B, T, d->conv);
        }
        // fwd: w = exp(-exp(z)), z = time_decay + tanh(xw decay_w1) decay_w2
        arch_zero(g->pre, (size_t)R * C);
        rwkv6_decay_backward(g->pre, g->w, a->w, a->ez, R * C);
        add_bias_backward(Q->decay, g->pre, R, C);
        matmul_backward(g->wh, Q->decay_w2, g->pre, a->wh, P->decay_w2, R, Dd, C);
        tanh_backward(g->preD, NULL, g->wh, a->wh, R, Dd);
        matmul_backward(g->xw, Q->decay_w1, g->preD, a->xw, P->decay_w1, R, C, Dd);
        // fwd: g = silu(gz), gz = W_g xg
        silu_backward(g->gz, g->g, a->gz, R * C);
        linear_backward(g->xg, Q->Wg, NULL, g->gz, a->xg, P->Wg, R, C, C);
        // fwd: r, k, v = W_{r,k,v} x_{r,k,v}
        linear_backward(g->xr, Q->Wr, NULL, g->r, a->xr, P->Wr, R, C, C);
        linear_backward(g->xk, Q->Wk, NULL, g->k, a->xk, P->Wk, R, C, C);
        linear_backward(g->xv, Q->Wv, NULL, g->v, a->xv, P->Wv, R, C, C);
        // fwd: x_i = ddlerp(ln1, prev1, maa_i, m_i), i = w k v r g
        const real *dxs[5] = {g->xw, g->xk, g->xv, g->xr, g->xg};
        const real *mus[5] = {P->maa_w, P->maa_k, P->maa_v, P->maa_r, P->maa_g};
        real *dmus[5] = {Q->maa_w, Q->maa_k, Q->maa_v, Q->maa_r, Q->maa_g};
        for (int i = 0; i < 5; i++)
            rwkv6_ddlerp_backward(g->ln1, g->prev1, dmus[i], g->m5 + (size_t)i * R * C, dxs[i], a->ln1, a->prev1, mus[i],
                                  a->m5 + (size_t)i * R * C, R, C);
        // fwd: m_i = mh5_i maa_w2[i] ; mh5 = split(mh) ; mh = tanh(xxx maa_w1)
        for (int i = 0; i < 5; i++)
            matmul_backward(g->mh5 + (size_t)i * R * Dm, Q->maa_w2 + (size_t)i * Dm * C, g->m5 + (size_t)i * R * C,
                            a->mh5 + (size_t)i * R * Dm, P->maa_w2 + (size_t)i * Dm * C, R, Dm, C);
        merge5(g->mh, g->mh5, R, Dm);
        tanh_backward(g->preD, NULL, g->mh, a->mh, R, 5 * Dm);
        matmul_backward(g->xxx, Q->maa_w1, g->preD, a->xxx, P->maa_w1, R, C, 5 * Dm);
        // fwd: xxx = mix(ln1, prev1, maa_x) ; prev1 = shift(ln1) ; ln1 = LN(x_in)
        mix_backward(g->ln1, g->prev1, Q->maa_x, g->xxx, a->ln1, a->prev1, P->maa_x, R, C);
        token_shift_backward(g->ln1, NULL, g->prev1, B, T, C);
        norm_backward(g->x_in, Q->ln1_w, Q->ln1_b, g->ln1, a->x_in, a->ln1_m, a->ln1_r, P->ln1_w, R, 1, C);
        memcpy(A->e.dx, g->x_in, (size_t)R * C * sizeof(real));
    }
    // fwd: x_in[0] = LN(emb[tokens]; ln0) or emb[tokens]
    arch_embed_backward(&gends, &A->e, A->e.dx, A->mem.tokens, &ends, R, C, V);
}

/* ---- the model interface (model.h) -------------------------------------------------------------------- */

#define RWKV6_DIM(f) {.name = #f, .offset = offsetof(Rwkv6Dims, f)}
static const DimField rwkv6_dim_fields[] = {
    RWKV6_DIM(V),  RWKV6_DIM(C),  RWKV6_DIM(L),       RWKV6_DIM(N),
    RWKV6_DIM(Dm), RWKV6_DIM(Dd), RWKV6_DIM(has_ln0), RWKV6_DIM(conv),
};

static int arch_validate_dims(const void *dims, Err *err) {
    const Rwkv6Dims *d = dims;
    if (d->V < 1 || d->C < 1 || d->L < 1 || d->N < 1 || d->C % d->N)
        return err_set(err, "implausible RWKV-6 dims V=%d C=%d L=%d N=%d (N must divide C)", d->V, d->C, d->L, d->N);
    if (rwkv6_ffn_width(d->C) < 1)
        return err_set(err, "RWKV-6 needs C >= 10 (its FFN width int(3.5C)//32*32 is 0 for C=%d)", d->C);
    if (d->Dm < 1 || d->Dd < 1 || d->has_ln0 < 0 || d->has_ln0 > 1 || d->conv < 0 || d->conv > SHORTCONV_MAX_K)
        return err_set(err, "implausible RWKV-6 LoRA ranks or flags (Dm=%d Dd=%d has_ln0=%d conv=%d; conv must be in "
                            "0..%d)", d->Dm, d->Dd, d->has_ln0, d->conv, SHORTCONV_MAX_K);
    return 0;
}

static int arch_dims_from_config(void *dims, const RunConfig *c, int V, Err *err) {
    if (!strcmp(c->model.eig_range, "extended"))
        return err_set(err, "model.eig_range = extended does not apply to model.arch = rwkv6: RWKV-6's transition is "
                            "diagonal with decays exp(-exp(.)) in (0,1) by construction (that is the point of this "
                            "baseline); set model.eig_range = standard");
    Rwkv6Dims d = {.V = V, .C = c->model.d_model, .L = c->model.layers, .N = c->model.head_size,
                   .Dm = c->model.lora_mix ? c->model.lora_mix : RWKV6_DM_DEFAULT,
                   .Dd = c->model.lora_w ? c->model.lora_w : RWKV6_DD_DEFAULT, .has_ln0 = 1,
                   .conv = c->model.short_conv};
    if (d.N < 1 || d.C % d.N) return err_set(err, "model.head_size = %d must divide model.d_model = %d", d.N, d.C);
    if (rwkv6_ffn_width(d.C) < 1)
        return err_set(err, "model.d_model = %d is too small for RWKV-6: its FFN width int(3.5C)//32*32 is 0; use "
                            "model.d_model >= 10", d.C);
    *(Rwkv6Dims *)dims = d;
    if (c->model.expand_v != 1)
        return err_set(err, "model.expand_v = %d applies to gated_deltanet only; use 1 for rwkv6", c->model.expand_v);
    return 0;
}

/* keys only x060 files have (any one: a file missing others is reported as an incomplete RWKV-6 model) */
static int arch_recognise(const TensorFile *tf) {
    static const char *const keys[] = {"blocks.0.att.time_maa_x", "blocks.0.att.time_maa_w1",
                                       "blocks.0.att.time_maa_w2", "blocks.0.att.time_decay_w1"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (tensorfile_find(tf, keys[i])) return 1;
    return 0;
}

#define IO_MAX_DIM (1 << 28)
#define RWKV6_TENSORS_PER_LAYER 28

static int arch_dims_from_tensors(void *dims, const TensorFile *tf, const char *path, Err *err) {
    Rwkv6Dims *d = dims;
    memset(d, 0, sizeof *d);
    const TfTensor *emb = tensorfile_find(tf, "emb.weight"), *u = tensorfile_find(tf, "blocks.0.att.time_faaaa");
    const TfTensor *mw1 = tensorfile_find(tf, "blocks.0.att.time_maa_w1");
    const TfTensor *dw1 = tensorfile_find(tf, "blocks.0.att.time_decay_w1");
    char s1[96], s2[96];
    if (!emb || emb->ndim != 2 || emb->shape[0] < 1 || emb->shape[1] < 1 || emb->shape[0] > IO_MAX_DIM ||
        emb->shape[1] > IO_MAX_DIM)
        return err_set(err, "%s: no 2-D 'emb.weight' [V,C] with sizes in 1..%d: not a complete RWKV-6 (x060) checkpoint",
                       path, IO_MAX_DIM);
    d->V = (int)emb->shape[0], d->C = (int)emb->shape[1];
    if (!u || u->ndim != 2 || u->shape[0] < 1 || u->shape[1] < 1 || u->shape[0] * u->shape[1] != d->C)
        return err_set(err, "%s: 'blocks.0.att.time_faaaa' must be [H,N] with H*N = C = %d (from emb.weight); found %s",
                       path, d->C, u ? tf_shape_str(u->shape, u->ndim, s1, sizeof s1) : "no such tensor");
    d->N = (int)u->shape[1];
    if (!mw1 || mw1->ndim != 2 || mw1->shape[0] != d->C || mw1->shape[1] < 5 || mw1->shape[1] % 5 ||
        mw1->shape[1] > IO_MAX_DIM)
        return err_set(err, "%s: 'blocks.0.att.time_maa_w1' must be [C, 5*Dm] with C = %d; found %s", path, d->C,
                       mw1 ? tf_shape_str(mw1->shape, mw1->ndim, s1, sizeof s1) : "no such tensor");
    d->Dm = (int)(mw1->shape[1] / 5);
    if (!dw1 || dw1->ndim != 2 || dw1->shape[0] != d->C || dw1->shape[1] < 1 || dw1->shape[1] > IO_MAX_DIM)
        return err_set(err, "%s: 'blocks.0.att.time_decay_w1' must be [C, Dd] with C = %d; found %s", path, d->C,
                       dw1 ? tf_shape_str(dw1->shape, dw1->ndim, s2, sizeof s2) : "no such tensor");
    d->Dd = (int)dw1->shape[1];
    /* layers: max K + 1 over "blocks.K." keys, bounded by the tensor count (a hostile key cannot make the
     * table huge) */
    long maxk = -1;
    int at = -1;
    for (int i = 0; i < tf->n; i++) {
        long k = model_key_layer(tf->t[i].name);
        if (k > maxk) maxk = k, at = i;
    }
    if (maxk < 0) return err_set(err, "%s: no 'blocks.K.*' tensors: no layers found", path);
    if ((maxk + 1) * RWKV6_TENSORS_PER_LAYER > tf->n)
        return err_set(err, "%s: tensor '%s' names layer %ld, but the file holds only %d tensors and %ld layers need "
                            "%ld: the file is incomplete", path, tf->t[at].name, maxk, tf->n, maxk + 1,
                       (maxk + 1) * RWKV6_TENSORS_PER_LAYER);
    d->L = (int)(maxk + 1);
    d->has_ln0 = tensorfile_find(tf, "blocks.0.ln0.weight") || tensorfile_find(tf, "blocks.0.ln0.bias");
    /* the short convolution (ours, not in released x060 files): att.r_conv.weight [C, K] */
    const TfTensor *rc = tensorfile_find(tf, "blocks.0.att.r_conv.weight");
    if (rc) {
        if (rc->ndim != 2 || rc->shape[0] != d->C || rc->shape[1] < 1 || rc->shape[1] > SHORTCONV_MAX_K)
            return err_set(err, "%s: 'blocks.0.att.r_conv.weight' must be [C, K] with C = %d and 1 <= K <= %d; found %s",
                           path, d->C, SHORTCONV_MAX_K, tf_shape_str(rc->shape, rc->ndim, s1, sizeof s1));
        d->conv = (int)rc->shape[1];
    }
    Err why;
    if (arch_validate_dims(d, &why)) return err_set(err, "%s: %s", path, why.msg);
    return 0;
}

static ParamTensor *arch_tensor_table(const void *dims, int *n, size_t *np) {
    Rwkv6Dims d = *(const Rwkv6Dims *)dims;
    return table_of(&d, n, np);
}

static size_t arch_act_bytes_for(const void *dims, int B, int T, int K, int with_backward) {
    Rwkv6Dims d = *(const Rwkv6Dims *)dims;
    resolve_dims(&d);
    Rwkv6Acts A = {.la = xcalloc(d.L, sizeof(LayerActs))};
    acts_layout(&A, NULL, &d, B, T, K, with_backward);
    free(A.la);
    return A.numel * sizeof(real) + (size_t)B * T * sizeof(int);
}

static const char *arch_export_note(const Model *mm) {
    static char note[320];
    const Rwkv6Dims *d = &((const Rwkv6 *)mm->self)->d;
    if (d->conv) {
        snprintf(note, sizeof note, "this model has a short convolution (model.short_conv = %d: att.r_conv/k_conv/"
                                    "v_conv.weight) that the official x060 code does not have and will not apply", d->conv);
        return note;
    }
    if (d->Dm == RWKV6_DM_DEFAULT && d->Dd == RWKV6_DD_DEFAULT) return NULL;
    snprintf(note, sizeof note, "LoRA ranks Dm=%d (time_maa_w1) and Dd=%d (time_decay_w1) differ from the official "
                                "training code's fixed 32 and 64; inference code that reads them from the shapes "
                                "loads the model", d->Dm, d->Dd);
    return note;
}

static Model *arch_create(const void *dims, int with_grads) { return &rwkv6_create(dims, with_grads)->head; }

static void arch_free(Model *mm) {
    Rwkv6 *m = mm->self;
    acts_free(m->acts);
    free(m->tensors), free(m->params), free(m->grads), free(m->w.layer), free(m->g.layer), free(m);
}

static void arch_init(Model *mm, gsl_rng *rng, const RunConfig *c) {
    Rwkv6 *m = mm->self;
    rwkv6_init_official(m, rng);
    /* train.w0_lr_mult applies to the decay bias time_decay, RWKV-6's w0 (the official x060 trains it at 2x) */
    for (int i = 0; c && i < m->ntensors; i++) {
        const char *n = m->tensors[i].name;
        size_t len = strlen(n);
        if (len > 15 && !strcmp(n + len - 15, ".att.time_decay")) m->tensors[i].lr_mult = c->train.w0_lr_mult;
    }
}

static const TraceQuantity rwkv6_trace[] = {
    {"decay", 0, "w = exp(-exp(time_decay + tanh(x_w decay_w1) decay_w2)), per channel: the (diagonal) transition, in (0,1)"},
};

static const real *arch_forward(Model *mm, const int *tokens, int B, int T, const ModelFwd *f) {
    return rwkv6_forward(mm->self, tokens, B, T, f);
}
static void arch_backward(Model *mm, const real *dlogits) { rwkv6_backward(mm->self, dlogits); }
static size_t arch_state_numel(const Model *mm, int B) { return rwkv6_state_numel(&((Rwkv6 *)mm->self)->d, B); }
static size_t arch_matrix_state(const Model *mm) { return (size_t)mm->L * mm->H * mm->N * mm->N; }
static size_t arch_act_bytes(const Model *mm) {
    const Rwkv6 *m = mm->self;
    return m->acts ? arch_buf_bytes(&m->acts->mem) : 0;
}

/* matmul: r k v g o (5 C^2), token-shift LoRA (C*5Dm + 5*Dm*C), decay LoRA (2 C Dd), FFN (2 C F + C^2),
 * head (C V), 2 flops each; recurrence: 5 flops per state element per token forward (y += r_i S_i: 2,
 * S_i = w_i S_i + k_i v: 3), with L*C*N state elements per token */
static double arch_fwd_flops(const Model *mm, double *matmul, double *recurrence) {
    const Rwkv6Dims *d = &((const Rwkv6 *)mm->self)->d;
    const double C = d->C, L = d->L, V = d->V;
    double mm_ = 2 * L * (6 * C * C + 10 * C * d->Dm + 2 * C * d->Dd + 2 * C * d->F) + 2 * C * V;
    mm_ += 2 * L * 3 * C * d->conv; /* the short conv on r, k, v (counted with the products) */
    double rec = 5 * L * C * d->N;
    if (matmul) *matmul = mm_;
    if (recurrence) *recurrence = rec;
    return mm_ + rec;
}

const ModelArch model_rwkv6 = {
    .name = "rwkv6",
    .title = "RWKV-6 (x060)",
    .dims_size = sizeof(Rwkv6Dims),
    .dim_fields = rwkv6_dim_fields,
    .ndims = sizeof rwkv6_dim_fields / sizeof *rwkv6_dim_fields,
    .dims_from_config = arch_dims_from_config,
    .recognise = arch_recognise,
    .dims_from_tensors = arch_dims_from_tensors,
    .ignored_tensors = NULL,
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
    .rank_one = 0,
    .trace = rwkv6_trace,
    .ntrace = 1,
    .act_bytes = arch_act_bytes,
    .fwd_flops_per_token = arch_fwd_flops,
};
