/* ops.h -- the building blocks of the models, each a forward/backward pair.
 *
 * Signature rule (one rule, everywhere):
 *   <op>_forward (out, saved..., in, params..., dims)      outputs are ASSIGNED (=)
 *   <op>_backward(din, dparams..., dout, saved..., in, params..., dims)
 *                                                          gradients are ACCUMULATED (+=)
 * so a tensor used twice simply receives two contributions. Rows are tokens: a (B,T,C) activation is
 * stored as rows = B*T of width C, row-major. Reductions over rows (parameter gradients) run in a fixed
 * order, parallelised over columns, so results do not depend on the thread count.
 */
#ifndef RWKV_OPS_H
#define RWKV_OPS_H

#include "common.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---- scalar functions: exp, and sigmoid and tanh built on it ---------------------------------- */
/* One definition of each, inlined into the loops of the ops so that they vectorise. The fp64 build (the
 * gradient checks) keeps libm's exp and tanh, so finite differences stay exact there. The fp32 build
 * uses ops_expf below (no libm call: a loop of them vectorises, which libm's exp does not without
 * fast-math). Accuracy (tests/test_ops_math.c, against double exp and the double formulas, over the whole
 * float range incl. overflow, underflow, subnormal results, +-0, +-inf, NaN): ops_expf <= 1 ulp,
 * ops_sigmoid <= 3 ulp, ops_tanh <= 3 ulp (a scan of all 2^32 inputs measured 0.94, 2.78 and 2.37 ulp). */

/* exp(x) in single precision: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2 (ln2 in two parts, FMA),
 * exp(r) by its Taylor polynomial to r^7 (truncation < 6e-9 relative, below 0.1 ulp), times 2^n applied as
 * two factors 2^(n/2) 2^(n - n/2) so that both stay normal for n in [-150, 128]: results that overflow
 * give +inf, results below half the smallest subnormal give 0, subnormal results are rounded once.
 * NaN gives NaN. x is clamped to [-104, 89] first (exp is inf above 88.73 and 0 below -103.98 anyway). */
static inline float ops_expf(float x) {
    float xc = x < 89.0f ? x : 89.0f; /* NaN -> 89 here (no undefined float-to-int below); restored at the end */
    xc = xc > -104.0f ? xc : -104.0f;
    const float shift = 0x1.8p23f; /* adding it rounds to an integer (round to nearest, |x/ln2| < 2^22) */
    const float nf = (xc * 0x1.715476p+0f + shift) - shift;  /* n = round(x / ln2) */
    float r = fmaf(nf, -0x1.62e43p-1f, xc);                   /* x - n ln2_hi */
    r = fmaf(nf, 0x1.05c61p-29f, r);                          /* - n ln2_lo (ln2_lo < 0) */
    float p = 0x1.a01a02p-13f;                                /* 1/7! */
    p = fmaf(p, r, 0x1.6c16c2p-10f);                          /* 1/6! */
    p = fmaf(p, r, 0x1.111112p-7f);                           /* 1/5! */
    p = fmaf(p, r, 0x1.555556p-5f);                           /* 1/4! */
    p = fmaf(p, r, 0x1.555556p-3f);                           /* 1/3! */
    p = fmaf(p, r, 0.5f);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    const int32_t n = (int32_t)nf, n1 = n / 2, n2 = n - n1;
    const uint32_t b1 = (uint32_t)(n1 + 127) << 23, b2 = (uint32_t)(n2 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    const float y = p * s1 * s2;
    return x != x ? x : y;
}

/* tanh(x) in single precision: |x| < 0.3 by its odd Taylor series to x^15 (truncation < 3e-12 relative),
 * else (1 - e) / (1 + e), e = exp(-2|x|) (1 at large |x|; NaN gives NaN); the sign of x put back. */
static inline float ops_tanhf(float x) {
    const float ax = fabsf(x), x2 = x * x;
    float p = -0x1.7da364p-10f;      /* -929569/638512875 */
    p = fmaf(p, x2, 0x1.d6d3d0p-9f); /*  21844/6081075 */
    p = fmaf(p, x2, -0x1.226e36p-7f); /* -1382/155925 */
    p = fmaf(p, x2, 0x1.664f48p-6f); /*  62/2835 */
    p = fmaf(p, x2, -0x1.ba1ba2p-5f); /* -17/315 */
    p = fmaf(p, x2, 0x1.111112p-3f); /*  2/15 */
    p = fmaf(p, x2, -0x1.555556p-2f); /* -1/3 */
    const float small = fmaf(p * x2, ax, ax);
    const float e = ops_expf(-2 * ax);
    const float big = (1 - e) / (1 + e);
    return copysignf(ax < 0.3f ? small : big, x);
}

#ifdef RWKV_F64
static inline real ops_exp(real x) { return exp(x); }
static inline real ops_tanh(real x) { return tanh(x); }
#else
static inline real ops_exp(real x) { return ops_expf(x); }
static inline real ops_tanh(real x) { return ops_tanhf(x); }
#endif
/* 1 / (1 + exp(-x)), as e / (1 + e) with e = exp(x) for x < 0 (so neither side overflows: tiny results
 * keep their relative accuracy down to the subnormals) */
static inline real ops_sigmoid(real x) {
    const real e = ops_exp(-fabs(x)), d = 1 / (1 + e);
    return x >= 0 ? d : e * d;
}

/* ---- matrix products (BLAS) ------------------------------------------------------------------ */
/* C(M,N) = alpha * A(M,K) @ op(B) + beta * C;  op(B) = B(K,N) or, with transB, B(N,K)^T */
void mm(real *Cm, const real *A, const real *Bm, int M, int N, int K, int transA, int transB,
        real alpha, real beta);

/* PyTorch Linear: out(R,O) = in(R,I) @ W(O,I)^T (+ bias(O) if non-NULL) */
void linear_forward(real *out, const real *in, const real *W, const real *bias, int R, int NI, int NO);
void linear_backward(real *din, real *dW, real *dbias, const real *dout, const real *in, const real *W,
                     int R, int NI, int NO);
/* Right-multiplication by a [I,O] matrix (LoRA factors): out(R,O) = in(R,I) @ W(I,O) */
void matmul_forward(real *out, const real *in, const real *W, int R, int NI, int NO);
void matmul_backward(real *din, real *dW, const real *dout, const real *in, const real *W, int R, int NI,
                     int NO);

/* ---- embedding -------------------------------------------------------------------------------- */
void embedding_forward(real *out, const int *tokens, const real *emb, int R, int C);
void embedding_backward(real *demb, const real *dout, const int *tokens, int R, int C, int V);

/* ---- normalisation: LayerNorm (G=1, N=C) and GroupNorm (G heads of N) are one op --------------- */
/* out(R,G*N) = (in - mean)*rstd * w + b per group of N; mean, rstd: (R,G) saved. Biased variance. */
void norm_forward(real *out, real *mean, real *rstd, const real *in, const real *w, const real *b, int R,
                  int G, int N, real eps);
void norm_backward(real *din, real *dw, real *db, const real *dout, const real *in, const real *mean,
                   const real *rstd, const real *w, int R, int G, int N);
#define LN_EPS ((real)1e-5)
#define GN_EPS ((real)64e-5)

/* ---- token shift + mix ------------------------------------------------------------------------ */
/* prev(R,C): row (b,t) = x row (b,t-1), or x0[b] (may be NULL = zeros) at t = 0. */
void token_shift_forward(real *prev, const real *x, const real *x0, int B, int T, int C);
/* dx(R,C) += dprev shifted back one token; dx0(B,C) += dprev at t = 0 (if dx0 non-NULL) */
void token_shift_backward(real *dx, real *dx0, const real *dprev, int B, int T, int C);
/* out = x + (prev - x) * mu */
void mix_forward(real *out, const real *x, const real *prev, const real *mu, int R, int C);
void mix_backward(real *dx, real *dprev, real *dmu, const real *dout, const real *x, const real *prev,
                  const real *mu, int R, int C);
/* n mixes of one (x, prev) pair at once (RWKV-7's six): out[m] = x + (prev - x) * mu[m], n <= OPS_MIXN. */
#define OPS_MIXN 8
void mixn_forward(real *const *out, const real *x, const real *prev, const real *const *mu, int n, int R, int C);
void mixn_backward(real *dx, real *dprev, real *const *dmu, const real *const *dout, const real *x, const real *prev,
                   const real *const *mu, int n, int R, int C);

/* ---- bias + activation, one pass each way ------------------------------------------------------ */
/* <act>_forward(out, saved.., in, bias, R, C):  out(R,C) = act(in + bias), bias (C) broadcast over rows or
 *   NULL (none); in == out is allowed.
 * <act>_backward(din, dbias, dout, saved.., R, C):  din = dout * act'  is ASSIGNED (=): din is the gradient
 *   of the pre-activation, a product's output that nothing else reads, so it needs no zeroing (the one
 *   exception to the += rule); dbias (C) += the column sums of din, rows in order (NULL: not wanted), in the
 *   same pass. */
void tanh_forward(real *out, const real *in, const real *bias, int R, int C);
void tanh_backward(real *din, real *dbias, const real *dout, const real *out, int R, int C);
void sigmoid_forward(real *out, const real *in, const real *bias, int R, int C);
void sigmoid_backward(real *din, real *dbias, const real *dout, const real *out, int R, int C);
/* RWKV-7 decay: sig = sigmoid(z + bias); w = exp(-exp(-0.5) * sig). Saves sig. */
void decay_forward(real *w, real *sig, const real *z, const real *bias, int R, int C);
void decay_backward(real *dz, real *dbias, const real *dw, const real *w, const real *sig, int R, int C);

/* ---- elementwise ------------------------------------------------------------------------------ */
/* out = relu(in)^2; the backward ASSIGNS din (=), as the activations above (din is a pre-activation's gradient) */
void relu2_forward(real *out, const real *in, int n);
void relu2_backward(real *din, const real *dout, const real *in, int n);
/* out = silu(in) = in * sigmoid(in); the backward reads the input */
void silu_forward(real *out, const real *in, int n);
void silu_backward(real *din, const real *dout, const real *in, int n);
/* out += x over n elements (a residual connection; its adjoint is the identity: the caller copies or adds) */
void add_into(real *out, const real *x, size_t n);
/* out(R,C) = in + bias(C) broadcast over rows; backward: dbias += column sums */
void add_bias_forward(real *out, const real *in, const real *bias, int R, int C);
void add_bias_backward(real *dbias, const real *dout, int R, int C);

/* ---- RWKV-7 specific small ops ---------------------------------------------------------------- */
/* kk = normalize_per_head(k * k_k) (H heads of N, eps 1e-12); saves the pre-norm norms (R,H) */
void kk_forward(real *kk, real *norm, const real *k, const real *k_k, int R, int H, int N);
void kk_backward(real *dk, real *dk_k, const real *dkk, const real *kk, const real *norm, const real *k,
                 const real *k_k, int R, int H, int N);
/* knew = k * (1 + (a - 1) * k_a) */
void kmod_forward(real *knew, const real *k, const real *a, const real *k_a, int R, int C);
void kmod_backward(real *dk, real *da, real *dk_a, const real *dknew, const real *k, const real *a,
                   const real *k_a, int R, int C);
/* value residual: out = v + (vf - v) * gate */
void vres_forward(real *out, const real *v, const real *vf, const real *gate, int n);
void vres_backward(real *dv, real *dvf, real *dgate, const real *dout, const real *v, const real *vf,
                   const real *gate, int n);
/* bonus: out = y + (sum_j r_j k_j r_k[h,j]) * v, per head */
void bonus_forward(real *out, const real *y, const real *r, const real *k, const real *v,
                   const real *r_k, int R, int H, int N);
void bonus_backward(real *dy, real *dr, real *dk, real *dv, real *dr_k, const real *dout, const real *r,
                    const real *k, const real *v, const real *r_k, int R, int H, int N);
/* out = x * g (elementwise) */
void mul_forward(real *out, const real *x, const real *g, int n);
void mul_backward(real *dx, real *dg, const real *dout, const real *x, const real *g, int n);

/* ---- loss ----------------------------------------------------------------------------------- */
/* Masked mean cross-entropy over positions with mask=1. probs (R,V) saved (softmax) on the counted rows
 * only (the only ones crossentropy_backward reads; the others are left as they were: MQAR scores 4 of
 * 64 positions, and the softmax over V = 8192 of every row was 30% of its training step).
 * Returns the loss; *ncorrect = argmax hits among counted rows, *ncount = counted rows.
 * pred (R) may be NULL; else receives the argmax of every row. */
double crossentropy_forward(real *probs, int *pred, const real *logits, const int *targets,
                            const unsigned char *mask, int R, int V, long *ncorrect, long *ncount);
/* dlogits (R,V) += scale * (probs - onehot) / ncount on counted rows. */
void crossentropy_backward(real *dlogits, const real *probs, const int *targets, const unsigned char *mask,
                           int R, int V, long ncount, real scale);

#endif
