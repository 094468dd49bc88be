/* ops.c -- forward/backward pairs of the elementary ops (see ops.h for the signature rule).
 * Each backward starts with the forward line it inverts. Parameter-gradient reductions over rows run
 * column-parallel with rows in a fixed order: the sums do not depend on the number of threads.
 * Those reductions stream the rows once: each thread owns a block of columns (OPS_COLS_BEGIN) and walks
 * all rows, adding each row's slice into per-column accumulators, so column c is still summed over rows
 * 0..R-1 in order (the same arithmetic as a column-by-column loop) but memory is read row-contiguously. */
#include "ops.h"

#include <cblas.h>
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Columns [*c0, *c1) of this thread in a parallel region: the C columns split over the team in blocks of
 * 16 (one cache line of floats). Any split gives the same sums: columns are independent. */
static void ops_thread_cols(int C, int *c0, int *c1) {
#ifdef _OPENMP
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
#else
    int nt = 1, t = 0;
#endif
    long nb = (C + 15) / 16;
    *c0 = (int)(nb * t / nt) * 16;
    *c1 = (int)(nb * (t + 1) / nt) * 16;
    if (*c1 > C) *c1 = C;
}
/* Walk column blocks of at most OPS_CB columns owned by this thread: cb..ce, with acc[0..ce-cb) zeroed. */
#define OPS_CB 256
#define OPS_COLS_BEGIN(C)                                         \
    {                                                             \
        int c0_, c1_;                                             \
        ops_thread_cols((C), &c0_, &c1_);                         \
        for (int cb = c0_; cb < c1_; cb += OPS_CB) {              \
            const int ce = cb + OPS_CB < c1_ ? cb + OPS_CB : c1_; \
            real acc[OPS_CB], acc2[OPS_CB];                       \
            for (int c = cb; c < ce; c++) acc[c - cb] = acc2[c - cb] = 0;
#define OPS_COLS_END \
    }                \
    }

#ifdef RWKV_F64
#define GEMM cblas_dgemm
#else
#define GEMM cblas_sgemm
#endif

void mm(real *Cm, const real *A, const real *Bm, int M, int N, int K, int transA, int transB, real alpha,
        real beta) {
    if (M == 0 || N == 0) return;
    GEMM(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K,
         alpha, A, transA ? M : K, Bm, transB ? K : N, beta, Cm, N);
}

/* ---- linear ---------------------------------------------------------------------------------- */
void linear_forward(real *out, const real *in, const real *W, const real *bias, int R, int NI, int NO) {
    mm(out, in, W, R, NO, NI, 0, 1, 1, 0); // out(R,O) = in(R,I) W(O,I)^T
    if (bias) add_bias_forward(out, out, bias, R, NO);
}
void linear_backward(real *din, real *dW, real *dbias, const real *dout, const real *in, const real *W,
                     int R, int NI, int NO) {
    // fwd: out = in W^T + bias
    if (din) mm(din, dout, W, R, NI, NO, 0, 0, 1, 1);   // din(R,I) += dout(R,O) W(O,I)
    if (dW) mm(dW, dout, in, NO, NI, R, 1, 0, 1, 1);    // dW(O,I) += dout^T(O,R) in(R,I)
    if (dbias) add_bias_backward(dbias, dout, R, NO);
}
void matmul_forward(real *out, const real *in, const real *W, int R, int NI, int NO) {
    mm(out, in, W, R, NO, NI, 0, 0, 1, 0); // out(R,O) = in(R,I) W(I,O)
}
void matmul_backward(real *din, real *dW, const real *dout, const real *in, const real *W, int R, int NI,
                     int NO) {
    // fwd: out = in W
    if (din) mm(din, dout, W, R, NI, NO, 0, 1, 1, 1);   // din(R,I) += dout(R,O) W(I,O)^T
    if (dW) mm(dW, in, dout, NI, NO, R, 1, 0, 1, 1);    // dW(I,O) += in^T(I,R) dout(R,O)
}

/* ---- embedding ------------------------------------------------------------------------------- */
void embedding_forward(real *out, const int *tokens, const real *emb, int R, int C) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < R; r++) memcpy(out + (size_t)r * C, emb + (size_t)tokens[r] * C, C * sizeof(real));
}
void embedding_backward(real *demb, const real *dout, const int *tokens, int R, int C, int V) {
    // fwd: out[r] = emb[tokens[r]] -- scatter-add; columns are independent, rows in order
#pragma omp parallel
    {
        int c0, c1;
        ops_thread_cols(C, &c0, &c1);
        for (int r = 0; r < R; r++) {
            real *restrict de = demb + (size_t)tokens[r] * C;
            const real *restrict d = dout + (size_t)r * C;
#pragma omp simd
            for (int c = c0; c < c1; c++) de[c] += d[c];
        }
    }
    (void)V;
}

/* ---- normalisation ----------------------------------------------------------------------------- */
void norm_forward(real *out, real *mean, real *rstd, const real *in, const real *w, const real *b, int R,
                  int G, int N, real eps) {
#pragma omp parallel for schedule(static)
    for (int rg = 0; rg < R * G; rg++) {
        int g = rg % G;
        const real *restrict x = in + (size_t)rg * N, *restrict wg = w + (size_t)g * N, *restrict bg = b + (size_t)g * N;
        real *restrict y = out + (size_t)rg * N;
        /* two passes over the row (in L1), each a vectorised reduction in double: the centred variance
         * keeps its accuracy whatever the mean (a one-pass E[x^2] - m^2 would not) */
        double m = 0, v = 0;
#pragma omp simd reduction(+ : m)
        for (int i = 0; i < N; i++) m += x[i];
        m /= N;
#pragma omp simd reduction(+ : v)
        for (int i = 0; i < N; i++) v += (x[i] - m) * (x[i] - m);
        v /= N;
        const real s = (real)(1.0 / sqrt(v + eps)), mr = (real)m;
        mean[rg] = mr;
        rstd[rg] = s;
#pragma omp simd
        for (int i = 0; i < N; i++) y[i] = (x[i] - mr) * s * wg[i] + bg[i];
    }
}
void norm_backward(real *din, real *dw, real *db, const real *dout, const real *in, const real *mean,
                   const real *rstd, const real *w, int R, int G, int N) {
    // fwd: xh = (x - mean) * rstd ; y = xh * w + b
    // din = rstd * (dxh - mean(dxh) - xh * mean(dxh * xh)),  dxh = dy * w
    int C = G * N;
#pragma omp parallel for schedule(static)
    for (int rg = 0; rg < R * G; rg++) {
        int g = rg % G;
        const real *restrict x = in + (size_t)rg * N, *restrict dy = dout + (size_t)rg * N, *restrict wg = w + (size_t)g * N;
        const real m = mean[rg], s = rstd[rg];
        double s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
        for (int i = 0; i < N; i++) {
            const real dxh = dy[i] * wg[i], xh = (x[i] - m) * s;
            s1 += dxh;
            s2 += dxh * xh;
        }
        const real m1 = (real)(s1 / N), m2 = (real)(s2 / N);
        real *restrict dx = din + (size_t)rg * N;
#pragma omp simd
        for (int i = 0; i < N; i++) {
            const real dxh = dy[i] * wg[i], xh = (x[i] - m) * s;
            dx[i] += s * (dxh - m1 - xh * m2);
        }
    }
    if (!dw && !db) return;
    // dw_c = sum_r dy xh, db_c = sum_r dy (rows in order)
#pragma omp parallel
    OPS_COLS_BEGIN(C)
    for (int r = 0; r < R; r++) {
        const real *restrict x = in + (size_t)r * C, *restrict dy = dout + (size_t)r * C;
        for (int g = cb / N; g * N < ce; g++) { /* groups overlapping [cb, ce) */
            const real m = mean[r * G + g], s = rstd[r * G + g];
            const int lo = g * N > cb ? g * N : cb, hi = (g + 1) * N < ce ? (g + 1) * N : ce;
#pragma omp simd
            for (int c = lo; c < hi; c++) {
                acc[c - cb] += dy[c] * ((x[c] - m) * s);
                acc2[c - cb] += dy[c];
            }
        }
    }
    for (int c = cb; c < ce; c++) {
        if (dw) dw[c] += acc[c - cb];
        if (db) db[c] += acc2[c - cb];
    }
    OPS_COLS_END
}

/* ---- token shift + mix ----------------------------------------------------------------------- */
void token_shift_forward(real *prev, const real *x, const real *x0, int B, int T, int C) {
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        int b = bt / T, t = bt % T;
        real *p = prev + (size_t)bt * C;
        if (t > 0) memcpy(p, x + (size_t)(bt - 1) * C, C * sizeof(real));
        else if (x0) memcpy(p, x0 + (size_t)b * C, C * sizeof(real));
        else memset(p, 0, C * sizeof(real));
    }
}
void token_shift_backward(real *dx, real *dx0, const real *dprev, int B, int T, int C) {
    // fwd: prev[b,t] = x[b,t-1] (t>0), x0[b] (t=0)
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        int b = bt / T, t = bt % T;
        const real *dp = dprev + (size_t)bt * C;
        real *dst = t > 0 ? dx + (size_t)(bt - 1) * C : (dx0 ? dx0 + (size_t)b * C : NULL);
        if (dst) {
            real *restrict d = dst;
#pragma omp simd
            for (int c = 0; c < C; c++) d[c] += dp[c];
        }
    }
}
void mix_forward(real *out, const real *x, const real *prev, const real *mu, int R, int C) {
    mixn_forward(&out, x, prev, &mu, 1, R, C);
}
void mix_backward(real *dx, real *dprev, real *dmu, const real *dout, const real *x, const real *prev,
                  const real *mu, int R, int C) {
    // fwd: out = x + (prev - x) * mu
    mixn_backward(dx, dprev, &dmu, &dout, x, prev, &mu, 1, R, C);
}

/* n mixes of the same (x, prev) in one pass: out[m] = x + (prev - x) * mu[m], m = 0..n-1 (n <= OPS_MIXN). */
void mixn_forward(real *const *out, const real *x, const real *prev, const real *const *mu, int n, int R, int C) {
    CHECK(n >= 1 && n <= OPS_MIXN, "mixn: n = %d outside 1..%d", n, OPS_MIXN);
#pragma omp parallel for schedule(static)
    for (int r = 0; r < R; r++) {
        const real *restrict xr = x + (size_t)r * C, *restrict pr = prev + (size_t)r * C;
        for (int m = 0; m < n; m++) {
            real *restrict o = out[m] + (size_t)r * C;
            const real *restrict mm = mu[m];
#pragma omp simd
            for (int c = 0; c < C; c++) o[c] = xr[c] + (pr[c] - xr[c]) * mm[c];
        }
    }
}
/* The adjoint of mixn_forward: one column-parallel pass that adds the n terms to dx and dprev in the order
 * m = 0..n-1 (as n mix_backward calls would) and sums each dmu[m] over rows in order. */
void mixn_backward(real *dx, real *dprev, real *const *dmu, const real *const *dout, const real *x, const real *prev,
                   const real *const *mu, int n, int R, int C) {
    // fwd: out[m] = x + (prev - x) * mu[m]
    CHECK(n >= 1 && n <= OPS_MIXN, "mixn: n = %d outside 1..%d", n, OPS_MIXN);
#pragma omp parallel
    OPS_COLS_BEGIN(C)
    real am[OPS_MIXN][OPS_CB];
    for (int m = 0; m < n; m++)
        for (int c = cb; c < ce; c++) am[m][c - cb] = 0;
    for (int r = 0; r < R; r++) {
        const size_t o = (size_t)r * C;
        const real *restrict xr = x + o, *restrict pr = prev + o;
        real *restrict dxr = dx + o, *restrict dpr = dprev + o;
        for (int m = 0; m < n; m++) {
            const real *restrict d = dout[m] + o, *restrict mm = mu[m];
            real *restrict a = am[m] - cb;
#pragma omp simd
            for (int c = cb; c < ce; c++) {
                dxr[c] += d[c] * (1 - mm[c]);
                dpr[c] += d[c] * mm[c];
                a[c] += d[c] * (pr[c] - xr[c]);
            }
        }
    }
    for (int m = 0; m < n; m++)
        for (int c = cb; c < ce; c++) dmu[m][c] += am[m][c - cb];
    (void)acc, (void)acc2;
    OPS_COLS_END
}

/* ---- bias + activation ------------------------------------------------------------------------ */
/* out(R,C) = F(in + bias) with z the pre-activation: rows in parallel, bias may be NULL, in == out allowed */
#define OPS_ACT_FORWARD(R, C, in, bias, BODY)                                     \
    _Pragma("omp parallel for schedule(static)") for (int r = 0; r < (R); r++) { \
        const size_t o_ = (size_t)r * (C);                                        \
        if (bias) {                                                               \
            _Pragma("omp simd") for (int c = 0; c < (C); c++) {                   \
                const size_t i = o_ + c;                                          \
                const real z = (in)[i] + (bias)[c];                               \
                BODY;                                                             \
            }                                                                     \
        } else {                                                                  \
            _Pragma("omp simd") for (int c = 0; c < (C); c++) {                   \
                const size_t i = o_ + c;                                          \
                const real z = (in)[i];                                           \
                BODY;                                                             \
            }                                                                     \
        }                                                                         \
    }
/* din(R,C) = DIN (an expression of the element index i), assigned; dbias(C) += its column sums over rows in
 * order (the column-parallel walk of OPS_COLS_BEGIN: the sums do not depend on the thread count), or no
 * reduction when dbias is NULL */
#define OPS_ACT_BACKWARD(R, C, din, dbias, DIN)                                                       \
    if (!(dbias)) {                                                                                   \
        _Pragma("omp parallel for simd schedule(static)") for (size_t i = 0; i < (size_t)(R) * (C); i++) \
            (din)[i] = (DIN);                                                                         \
    } else {                                                                                          \
        _Pragma("omp parallel") OPS_COLS_BEGIN(C) for (int r = 0; r < (R); r++) {                     \
            _Pragma("omp simd") for (int c = cb; c < ce; c++) {                                       \
                const size_t i = (size_t)r * (C) + c;                                                 \
                const real d_ = (DIN);                                                                \
                (din)[i] = d_;                                                                        \
                acc[c - cb] += d_;                                                                    \
            }                                                                                         \
        }                                                                                             \
        for (int c = cb; c < ce; c++) (dbias)[c] += acc[c - cb];                                      \
        OPS_COLS_END                                                                                  \
    }

void tanh_forward(real *out, const real *in, const real *bias, int R, int C) {
    OPS_ACT_FORWARD(R, C, in, bias, out[i] = ops_tanh(z))
}
void tanh_backward(real *din, real *dbias, const real *dout, const real *out, int R, int C) {
    // fwd: out = tanh(z), z = in + bias
    OPS_ACT_BACKWARD(R, C, din, dbias, dout[i] * (1 - out[i] * out[i]))
}
void sigmoid_forward(real *out, const real *in, const real *bias, int R, int C) {
    OPS_ACT_FORWARD(R, C, in, bias, out[i] = ops_sigmoid(z))
}
void sigmoid_backward(real *din, real *dbias, const real *dout, const real *out, int R, int C) {
    // fwd: out = sigmoid(z), z = in + bias
    OPS_ACT_BACKWARD(R, C, din, dbias, dout[i] * out[i] * (1 - out[i]))
}
#define EXP_M05 0.60653065971263342 /* exp(-0.5) */
void decay_forward(real *w, real *sig, const real *z_in, const real *bias, int R, int C) {
    OPS_ACT_FORWARD(R, C, z_in, bias, {
        const real sg = ops_sigmoid(z);
        sig[i] = sg;
        w[i] = ops_exp((real)-EXP_M05 * sg);
    })
}
void decay_backward(real *dz, real *dbias, const real *dw, const real *w, const real *sig, int R, int C) {
    // fwd: w = exp(-e^-0.5 * sigmoid(z)), z = in + bias;  dw/dz = w * (-e^-0.5) * sig * (1 - sig)
    OPS_ACT_BACKWARD(R, C, dz, dbias, dw[i] * w[i] * (real)(-EXP_M05) * sig[i] * (1 - sig[i]))
}

/* ---- elementwise ----------------------------------------------------------------------------- */
void silu_forward(real *out, const real *in, int n) {
#pragma omp parallel for simd schedule(static)
    for (int i = 0; i < n; i++) out[i] = in[i] * ops_sigmoid(in[i]);
}
void silu_backward(real *din, const real *dout, const real *in, int n) {
    // fwd: out = x sigmoid(x)  ->  d/dx = s (1 + x (1 - s))
#pragma omp parallel for simd schedule(static)
    for (int i = 0; i < n; i++) {
        const real s = ops_sigmoid(in[i]);
        din[i] += dout[i] * s * (1 + in[i] * (1 - s));
    }
}
void relu2_forward(real *out, const real *in, int n) {
#pragma omp parallel for simd schedule(static)
    for (int i = 0; i < n; i++) {
        real r = in[i] > 0 ? in[i] : 0;
        out[i] = r * r;
    }
}
void relu2_backward(real *din, const real *dout, const real *in, int n) {
    // fwd: out = relu(in)^2   (din assigned, as the activations above)
#pragma omp parallel for simd schedule(static)
    for (int i = 0; i < n; i++) din[i] = in[i] > 0 ? 2 * in[i] * dout[i] : 0;
}
void add_into(real *out, const real *x, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) out[i] += x[i];
}
void add_bias_forward(real *out, const real *in, const real *bias, int R, int C) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < R; r++) {
        real *o = out + (size_t)r * C;
        const real *x = in + (size_t)r * C;
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] = x[c] + bias[c];
    }
}
void add_bias_backward(real *dbias, const real *dout, int R, int C) {
    // fwd: out = in + bias
#pragma omp parallel
    OPS_COLS_BEGIN(C)
    for (int r = 0; r < R; r++) {
        const real *restrict d = dout + (size_t)r * C;
#pragma omp simd
        for (int c = cb; c < ce; c++) acc[c - cb] += d[c];
    }
    for (int c = cb; c < ce; c++) dbias[c] += acc[c - cb];
    OPS_COLS_END
}

/* ---- RWKV-7 small ops ------------------------------------------------------------------------ */
#define KK_EPS ((real)1e-12)
void kk_forward(real *kk, real *norm, const real *k, const real *k_k, int R, int H, int N) {
    int C = H * N;
#pragma omp parallel for schedule(static)
    for (int rh = 0; rh < R * H; rh++) {
        const int h = rh % H;
        const real *restrict kr = k + (size_t)rh * N, *restrict kh = k_k + (size_t)h * N;
        real *restrict o = kk + (size_t)rh * N;
        double ss = 0;
#pragma omp simd reduction(+ : ss)
        for (int j = 0; j < N; j++) {
            const real u = kr[j] * kh[j];
            o[j] = u;
            ss += (double)u * u;
        }
        const real nr = (real)sqrt(ss), den = nr > KK_EPS ? nr : KK_EPS;
        norm[rh] = nr;
#pragma omp simd
        for (int j = 0; j < N; j++) o[j] /= den;
    }
    (void)C;
}
void kk_backward(real *dk, real *dk_k, const real *dkk, const real *kk, const real *norm, const real *k,
                 const real *k_k, int R, int H, int N) {
    // fwd: u = k * k_k ; kk = u / max(|u|, eps)
    // du = (dkk - kk (kk . dkk)) / |u|   (|u| > eps);   du = dkk / eps otherwise
    int C = H * N;
    real *du = scratch(SCR_KK_DU, (size_t)R * C * sizeof(real));
#pragma omp parallel for schedule(static)
    for (int rh = 0; rh < R * H; rh++) {
        const int h = rh % H;
        const real *restrict o = kk + (size_t)rh * N, *restrict g = dkk + (size_t)rh * N, *restrict kh = k_k + (size_t)h * N;
        real *restrict d = du + (size_t)rh * N, *restrict dkr = dk + (size_t)rh * N;
        const real nr = norm[rh];
        if (nr > KK_EPS) {
            real dot = 0;
#pragma omp simd reduction(+ : dot)
            for (int j = 0; j < N; j++) dot += o[j] * g[j];
#pragma omp simd
            for (int j = 0; j < N; j++) d[j] = (g[j] - o[j] * dot) / nr;
        } else {
#pragma omp simd
            for (int j = 0; j < N; j++) d[j] = g[j] / KK_EPS;
        }
#pragma omp simd
        for (int j = 0; j < N; j++) dkr[j] += d[j] * kh[j];
    }
#pragma omp parallel
    OPS_COLS_BEGIN(C)
    for (int r = 0; r < R; r++) {
        const real *restrict d = du + (size_t)r * C, *restrict kr = k + (size_t)r * C;
#pragma omp simd
        for (int c = cb; c < ce; c++) acc[c - cb] += d[c] * kr[c];
    }
    for (int c = cb; c < ce; c++) dk_k[c] += acc[c - cb];
    OPS_COLS_END
}

void kmod_forward(real *knew, const real *k, const real *a, const real *k_a, int R, int C) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < R; r++) {
        const size_t o = (size_t)r * C;
        real *restrict kn = knew + o;
        const real *restrict kr = k + o, *restrict ar = a + o;
#pragma omp simd
        for (int c = 0; c < C; c++) kn[c] = kr[c] * (1 + (ar[c] - 1) * k_a[c]);
    }
}
void kmod_backward(real *dk, real *da, real *dk_a, const real *dknew, const real *k, const real *a,
                   const real *k_a, int R, int C) {
    // fwd: knew = k * (1 + (a - 1) * k_a)
#pragma omp parallel for schedule(static)
    for (int r = 0; r < R; r++) {
        const size_t o = (size_t)r * C;
        real *restrict dkr = dk + o, *restrict dar = da + o;
        const real *restrict d = dknew + o, *restrict kr = k + o, *restrict ar = a + o;
#pragma omp simd
        for (int c = 0; c < C; c++) {
            dkr[c] += d[c] * (1 + (ar[c] - 1) * k_a[c]);
            dar[c] += d[c] * kr[c] * k_a[c];
        }
    }
#pragma omp parallel
    OPS_COLS_BEGIN(C)
    for (int r = 0; r < R; r++) {
        const real *restrict d = dknew + (size_t)r * C, *restrict kr = k + (size_t)r * C, *restrict ar = a + (size_t)r * C;
#pragma omp simd
        for (int c = cb; c < ce; c++) acc[c - cb] += d[c] * kr[c] * (ar[c] - 1);
    }
    for (int c = cb; c < ce; c++) dk_a[c] += acc[c - cb];
    OPS_COLS_END
}

void vres_forward(real *out, const real *v, const real *vf, const real *gate, int n) {
#pragma omp parallel for simd schedule(static)
    for (int i = 0; i < n; i++) out[i] = v[i] + (vf[i] - v[i]) * gate[i];
}
void vres_backward(real *dv, real *dvf, real *dgate, const real *dout, const real *v, const real *vf,
                   const real *gate, int n) {
    // fwd: out = v + (vf - v) * gate
#pragma omp parallel for simd schedule(static)
    for (int i = 0; i < n; i++) {
        dv[i] += dout[i] * (1 - gate[i]);
        dvf[i] += dout[i] * gate[i];
        dgate[i] += dout[i] * (vf[i] - v[i]);
    }
}

void bonus_forward(real *out, const real *y, const real *r, const real *k, const real *v, const real *r_k,
                   int R, int H, int N) {
#pragma omp parallel for schedule(static)
    for (int rh = 0; rh < R * H; rh++) {
        const int h = rh % H;
        const size_t o = (size_t)rh * N;
        const real *restrict rr = r + o, *restrict kr = k + o, *restrict vr = v + o, *restrict yr = y + o,
                   *restrict rkh = r_k + (size_t)h * N;
        real *restrict out_r = out + o;
        real s = 0;
#pragma omp simd reduction(+ : s)
        for (int j = 0; j < N; j++) s += rr[j] * kr[j] * rkh[j];
#pragma omp simd
        for (int j = 0; j < N; j++) out_r[j] = yr[j] + s * vr[j];
    }
}
void bonus_backward(real *dy, real *dr, real *dk, real *dv, real *dr_k, const real *dout, const real *r,
                    const real *k, const real *v, const real *r_k, int R, int H, int N) {
    // fwd: s = sum_j r_j k_j r_k[h,j] ; out = y + s * v
    int C = H * N;
    real *ds = scratch(SCR_BONUS_DS, (size_t)R * H * sizeof(real));
#pragma omp parallel for schedule(static)
    for (int rh = 0; rh < R * H; rh++) {
        const int h = rh % H;
        const size_t o = (size_t)rh * N;
        const real *restrict rr = r + o, *restrict kr = k + o, *restrict vr = v + o, *restrict g = dout + o,
                   *restrict rkh = r_k + (size_t)h * N;
        real *restrict dyr = dy + o, *restrict dvr = dv + o, *restrict drr = dr + o, *restrict dkr = dk + o;
        real s = 0, d = 0;
#pragma omp simd reduction(+ : s, d)
        for (int j = 0; j < N; j++) {
            s += rr[j] * kr[j] * rkh[j];
            d += g[j] * vr[j];
        }
        ds[rh] = d;
#pragma omp simd
        for (int j = 0; j < N; j++) {
            dyr[j] += g[j];
            dvr[j] += g[j] * s;
            drr[j] += d * kr[j] * rkh[j];
            dkr[j] += d * rr[j] * rkh[j];
        }
    }
#pragma omp parallel
    OPS_COLS_BEGIN(C)
    for (int rr = 0; rr < R; rr++) {
        const real *restrict rrow = r + (size_t)rr * C, *restrict krow = k + (size_t)rr * C;
        for (int h = cb / N; h * N < ce; h++) { /* heads overlapping [cb, ce) */
            const real dsh = ds[rr * H + h];
            const int lo = h * N > cb ? h * N : cb, hi = (h + 1) * N < ce ? (h + 1) * N : ce;
#pragma omp simd
            for (int c = lo; c < hi; c++) acc[c - cb] += dsh * rrow[c] * krow[c];
        }
    }
    for (int c = cb; c < ce; c++) dr_k[c] += acc[c - cb];
    OPS_COLS_END
}

void mul_forward(real *out, const real *x, const real *g, int n) {
#pragma omp parallel for simd schedule(static)
    for (int i = 0; i < n; i++) out[i] = x[i] * g[i];
}
void mul_backward(real *dx, real *dg, const real *dout, const real *x, const real *g, int n) {
    // fwd: out = x * g
#pragma omp parallel for simd schedule(static)
    for (int i = 0; i < n; i++) {
        dx[i] += dout[i] * g[i];
        dg[i] += dout[i] * x[i];
    }
}

/* ---- loss ------------------------------------------------------------------------------------ */
double crossentropy_forward(real *probs, int *pred, const real *logits, const int *targets,
                            const unsigned char *mask, int R, int V, long *ncorrect, long *ncount) {
    double *rowloss = scratch(SCR_CE_ROWLOSS, (size_t)R * sizeof(double)); // per-row, summed serially: thread-independent
    long corr = 0, cnt = 0;
#pragma omp parallel for schedule(static) reduction(+ : corr, cnt)
    for (int r = 0; r < R; r++) {
        const real *l = logits + (size_t)r * V;
        real *p = probs + (size_t)r * V;
        rowloss[r] = 0;
        if (!mask[r] && !pred) continue; /* not counted: its argmax only, when asked for */
        int am = 0;
        for (int i = 1; i < V; i++)
            if (l[i] > l[am]) am = i;
        if (pred) pred[r] = am;
        if (!mask[r]) continue;
        /* each exp once (into p), summed in double; then normalised */
        const real lmax = l[am];
        double z = 0;
#pragma omp simd reduction(+ : z)
        for (int i = 0; i < V; i++) {
            p[i] = ops_exp(l[i] - lmax);
            z += p[i];
        }
#pragma omp simd
        for (int i = 0; i < V; i++) p[i] = (real)(p[i] / z);
        rowloss[r] = -((double)l[targets[r]] - l[am] - log(z));
        corr += am == targets[r];
        cnt++;
    }
    double loss = 0;
    for (int r = 0; r < R; r++) loss += rowloss[r];
    *ncorrect = corr;
    *ncount = cnt;
    return cnt ? loss / cnt : 0;
}
void crossentropy_backward(real *dlogits, const real *probs, const int *targets, const unsigned char *mask,
                           int R, int V, long ncount, real scale) {
    // fwd: loss = mean_{counted r} -log softmax(logits_r)[target_r];  dlogit = (p - onehot) / count
    if (ncount == 0) return;
    real s = scale / (real)ncount;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < R; r++) {
        if (!mask[r]) continue;
        real *d = dlogits + (size_t)r * V;
        const real *p = probs + (size_t)r * V;
        for (int i = 0; i < V; i++) d[i] += s * (p[i] - (i == targets[r]));
    }
}
