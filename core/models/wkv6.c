/* wkv6.c -- WKV6 forward/backward (see wkv6.h for the recurrence, its orientation and the checkpoints).
 *
 * Adjoint of one step (derivation). S the old state, S' the new one, a = sum_i r_i u_i k_i:
 *   fwd: y = S^T r + a v ;  S' = diag(w) S + k v^T
 * Given dy and G = dL/dS' (from later tokens), with vdy = v . dy:
 *   from S' = diag(w) S + k v^T:  dw_i = sum_j G[i][j] S[i][j] ;  dk_i = sum_j G[i][j] v_j ;
 *                                 dv_j = sum_i G[i][j] k_i ;     dL/dS  = diag(w) G
 *   from y = S^T r:               dr_i = sum_j S[i][j] dy_j ;    dL/dS += r dy^T
 *   from y = a v:                 dv_j += a dy_j ;  da = vdy  ->  dr_i += u_i k_i vdy, dk_i += r_i u_i vdy,
 *                                 du_i += r_i k_i vdy
 * so the gradient handed to the previous token is G <- diag(w) G + r dy^T (row i: G_i = w_i G_i + r_i dy).
 * Every sum runs in a fixed order (rows i in order; over j per lane, then wkv_lanes_sum2's tree), so
 * chunked == unchunked bit for bit. Kernels: the rows' vectors of wkv_vec.h, specialised for N = 32, 64.
 */
#include "wkv6.h"

#include <string.h>

#include "wkv_vec.h"

static inline int nchunks(const Wkv6Dims *d) { return (d->T + d->K - 1) / d->K; }

size_t wkv6_ckpt_numel(const Wkv6Dims *d) { return (size_t)d->B * d->H * nchunks(d) * d->N * d->N; }

/* One token on one head: y (N) from the old state (NULL: not wanted), then Sin (N,N) -> Sout (N,N) (the same
 * array for an update in place). Row i: y += r_i S_i ; S'_i = w_i S_i + k_i v, y starting from a v with
 * a = sum_i r_i u_i k_i (in order); y and v held as NV vectors in kv (2 NV), in registers when inlined with a
 * constant N (the callers below). */
WKV_INLINE void wkv6_step_k(const int N, wvec *restrict kv, const real *Sin, real *Sout, real *restrict y,
                            const real *restrict r, const real *restrict k, const real *restrict v,
                            const real *restrict w, const real *restrict u) {
    const int NV = (N + WKV_LANES - 1) / WKV_LANES;
    wvec *restrict vv = kv, *restrict ya = kv + NV;
    real a = 0;
    if (y)
        for (int i = 0; i < N; i++) a += r[i] * u[i] * k[i];
    const wvec av = wv_set(a);
#pragma GCC unroll 8
    for (int q = 0; q < NV; q++) vv[q] = wv_load(v + q * WKV_LANES, N - q * WKV_LANES), ya[q] = av * vv[q];
    for (int i = 0; i < N; i++) {
        const real *Si = Sin + (size_t)i * N;
        real *Di = Sout + (size_t)i * N;
        const wvec ri = wv_set(r[i]), ki = wv_set(k[i]), wi = wv_set(w[i]);
#pragma GCC unroll 8
        for (int q = 0; q < NV; q++) {
            const int o = q * WKV_LANES, n = N - o;
            const wvec x = wv_load(Si + o, n);
            if (y) ya[q] = wv_fma(ri, x, ya[q]);
            wv_store(Di + o, wv_fma(wi, x, ki * vv[q]), n);
        }
    }
    if (y)
#pragma GCC unroll 8
        for (int q = 0; q < NV; q++) wv_store(y + q * WKV_LANES, ya[q], N - q * WKV_LANES);
}
#define WKV6_STEP_ARGS const real *Sin, real *Sout, real *y, const real *r, const real *k, const real *v, const real *w, const real *u
#define WKV6_STEP_PASS Sin, Sout, y, r, k, v, w, u
static void wkv6_step_32(WKV6_STEP_ARGS) {
    wvec kv[2 * 2];
    wkv6_step_k(32, kv, WKV6_STEP_PASS);
}
static void wkv6_step_64(WKV6_STEP_ARGS) {
    wvec kv[2 * 4];
    wkv6_step_k(64, kv, WKV6_STEP_PASS);
}
static void wkv6_step_n(WKV6_STEP_ARGS, int N, wvec *kv) { wkv6_step_k(N, kv, WKV6_STEP_PASS); }
/* the step with the kernel specialised for N when there is one; kv: 2 NV vectors of scratch */
static void wkv6_step(WKV6_STEP_ARGS, int N, wvec *kv) {
    if (N == 32) wkv6_step_32(WKV6_STEP_PASS);
    else if (N == 64) wkv6_step_64(WKV6_STEP_PASS);
    else wkv6_step_n(WKV6_STEP_PASS, N, kv);
}

/* The adjoint of one token on one head (the derivation at the top), rows two at a time (an odd last row
 * alone). G (N,N) holds dL/dS' on entry and dL/dS on return, So the state before the token. The row sums
 * gw_i = G_i . S_i, gk_i = G_i . v, gr_i = S_i . dy are summed per lane and finished by wkv_lanes_sum2; dv
 * accumulates a dy + sum_i G_i k_i over the rows in order. acc: 3 NV vectors (v, dy, dv). */
WKV_INLINE void wkv6_back_k(const int N, wvec *restrict acc, real *restrict G, const real *restrict So,
                            const real *restrict rt, const real *restrict kt, const real *restrict vt,
                            const real *restrict wt, const real *restrict uh, const real *restrict dyt,
                            real *restrict drt, real *restrict dkt, real *restrict dvt, real *restrict dwt,
                            real *restrict duh) {
    const int NV = (N + WKV_LANES - 1) / WKV_LANES;
    wvec *restrict vv = acc, *restrict dyv = acc + NV, *restrict dva = acc + 2 * NV;
    // fwd: y = S^T r + a v,  a = sum_i r_i u_i k_i
    real a = 0, vdy = 0;
    for (int i = 0; i < N; i++) a += rt[i] * uh[i] * kt[i];
    for (int j = 0; j < N; j++) vdy += vt[j] * dyt[j];
    const wvec av = wv_set(a);
#pragma GCC unroll 8
    for (int q = 0; q < NV; q++) {
        const int o = q * WKV_LANES, n = N - o;
        vv[q] = wv_load(vt + o, n), dyv[q] = wv_load(dyt + o, n), dva[q] = av * dyv[q];
    }
    for (int i0 = 0; i0 < N; i0 += 2) {
        const int two = i0 + 1 < N, i1 = two ? i0 + 1 : i0;
        real *G0 = G + (size_t)i0 * N, *G1 = G + (size_t)i1 * N; // the same row when i1 == i0
        const real *restrict S0 = So + (size_t)i0 * N, *restrict S1 = So + (size_t)i1 * N;
        // fwd: S' = diag(w) S + k v^T  ->  dw, dk from G ; fwd: y = S^T r -> dr from S
        wvec w0 = {0}, w1 = {0}, k0 = {0}, k1 = {0}, r0 = {0}, r1 = {0};
#pragma GCC unroll 8
        for (int q = 0; q < NV; q++) {
            const int o = q * WKV_LANES, n = N - o;
            const wvec g0 = wv_load(G0 + o, n), g1 = wv_load(G1 + o, n), s0 = wv_load(S0 + o, n), s1 = wv_load(S1 + o, n);
            w0 = wv_fma(g0, s0, w0), w1 = wv_fma(g1, s1, w1);
            k0 = wv_fma(g0, vv[q], k0), k1 = wv_fma(g1, vv[q], k1);
            r0 = wv_fma(s0, dyv[q], r0), r1 = wv_fma(s1, dyv[q], r1);
        }
        real gw[2], gk[2], gr[2];
        wkv_lanes_sum2(w0, w1, gw), wkv_lanes_sum2(k0, k1, gk), wkv_lanes_sum2(r0, r1, gr);
        for (int m = 0; m <= two; m++) {
            const int i = i0 + m;
            const real ri = rt[i], ki = kt[i];
            dwt[i] += gw[m];
            dkt[i] += gk[m] + ri * uh[i] * vdy;
            drt[i] += gr[m] + uh[i] * ki * vdy;
            duh[i] += ri * ki * vdy;
            // dv_j += G[i][j] k_i ; G <- diag(w) G + r dy^T
            real *Gi = m ? G1 : G0;
            const wvec kiv = wv_set(ki), wiv = wv_set(wt[i]), riv = wv_set(ri);
#pragma GCC unroll 8
            for (int q = 0; q < NV; q++) {
                const int o = q * WKV_LANES, n = N - o;
                const wvec g = wv_load(Gi + o, n);
                dva[q] = wv_fma(g, kiv, dva[q]);
                wv_store(Gi + o, wv_fma(wiv, g, riv * dyv[q]), n);
            }
        }
    }
#pragma GCC unroll 8
    for (int q = 0; q < NV; q++) {
        const int o = q * WKV_LANES, n = N - o;
        wv_store(dvt + o, wv_load(dvt + o, n) + dva[q], n);
    }
}
#define WKV6_BACK_ARGS                                                                                             \
    real *G, const real *So, const real *rt, const real *kt, const real *vt, const real *wt, const real *uh,       \
        const real *dyt, real *drt, real *dkt, real *dvt, real *dwt, real *duh
#define WKV6_BACK_PASS G, So, rt, kt, vt, wt, uh, dyt, drt, dkt, dvt, dwt, duh
static void wkv6_back_32(WKV6_BACK_ARGS) {
    wvec acc[3 * 2];
    wkv6_back_k(32, acc, WKV6_BACK_PASS);
}
static void wkv6_back_64(WKV6_BACK_ARGS) {
    wvec acc[3 * 4];
    wkv6_back_k(64, acc, WKV6_BACK_PASS);
}
static void wkv6_back_n(WKV6_BACK_ARGS, int N, wvec *acc) { wkv6_back_k(N, acc, WKV6_BACK_PASS); }
/* the adjoint with the kernel specialised for N when there is one; acc: 3 NV vectors of scratch */
static void wkv6_back(WKV6_BACK_ARGS, int N, wvec *acc) {
    if (N == 32) wkv6_back_32(WKV6_BACK_PASS);
    else if (N == 64) wkv6_back_64(WKV6_BACK_PASS);
    else wkv6_back_n(WKV6_BACK_PASS, N, acc);
}

void wkv6_forward(real *y, real *ckpt, real *sT, real *states, const real *r, const real *k, const real *v,
                  const real *w, const real *u, const real *s0, const Wkv6Dims *d) {
    const int B = d->B, T = d->T, H = d->H, N = d->N, K = d->K, C = H * N, NC = nchunks(d);
    const size_t NN = (size_t)N * N;
    CHECK(K >= 1, "WKV6 checkpoint interval K must be >= 1 (got %d)", K);
#pragma omp parallel
    {
        real *S = xmalloc(NN * sizeof(real));
        // the generic kernel's vectors (the WKV7 slots: the two recurrences never run inside each other)
        wvec *kv = wv_scratch(SCR_WKV_B, 2 * (size_t)((N + WKV_LANES - 1) / WKV_LANES));
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * H; bh++) {
            int b = bh / H, h = bh % H;
            if (s0) memcpy(S, s0 + (size_t)bh * NN, NN * sizeof(real));
            else memset(S, 0, NN * sizeof(real));
            for (int t = 0; t < T; t++) {
                if (t % K == 0 && ckpt) memcpy(ckpt + ((size_t)bh * NC + t / K) * NN, S, NN * sizeof(real));
                size_t o = ((size_t)b * T + t) * C + (size_t)h * N;
                wkv6_step(S, S, y + o, r + o, k + o, v + o, w + o, u + (size_t)h * N, N, kv);
                if (states) memcpy(states + (((size_t)b * T + t) * H + h) * NN, S, NN * sizeof(real));
            }
            if (sT) memcpy(sT + (size_t)bh * NN, S, NN * sizeof(real));
        }
        free(S);
    }
}

void wkv6_backward(real *dr, real *dk, real *dv, real *dw, real *du, real *ds0, const real *dy, const real *dsT,
                   const real *ckpt, const real *r, const real *k, const real *v, const real *w, const real *u,
                   const Wkv6Dims *d) {
    const int B = d->B, T = d->T, H = d->H, N = d->N, K = d->K, C = H * N, NC = nchunks(d);
    const size_t NN = (size_t)N * N;
    CHECK(K >= 1 && ckpt, "WKV6 backward needs the checkpoints of its forward (K=%d)", K);
    real *du_bh = xcalloc((size_t)B * H * N, sizeof(real)); // (B,H,N): each task owns its row
#pragma omp parallel
    {
        real *Sbuf = xmalloc((size_t)K * NN * sizeof(real)); // the state before each token of the chunk
        real *G = xmalloc(NN * sizeof(real));                // dL/dS' for the current token
        // the generic kernels' vectors (the WKV7 slots: the two recurrences never run inside each other)
        const size_t NVS = (size_t)((N + WKV_LANES - 1) / WKV_LANES);
        wvec *kv = wv_scratch(SCR_WKV_B, 2 * NVS), *acc = wv_scratch(SCR_WKV_DQ, 3 * NVS);
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * H; bh++) {
            int b = bh / H, h = bh % H;
            const real *restrict uh = u + (size_t)h * N;
            real *restrict duh = du_bh + (size_t)bh * N;
            if (dsT) memcpy(G, dsT + (size_t)bh * NN, NN * sizeof(real));
            else memset(G, 0, NN * sizeof(real));
            for (int c = NC - 1; c >= 0; c--) {
                int t0 = c * K, t1 = t0 + K < T ? t0 + K : T;
                // recompute the chunk's states from its checkpoint (the forward's update, same arithmetic)
                memcpy(Sbuf, ckpt + ((size_t)bh * NC + c) * NN, NN * sizeof(real));
                for (int t = t0; t + 1 < t1; t++) {
                    size_t o = ((size_t)b * T + t) * C + (size_t)h * N;
                    real *Sn = Sbuf + (size_t)(t - t0 + 1) * NN;
                    wkv6_step(Sn - NN, Sn, NULL, r + o, k + o, v + o, w + o, uh, N, kv);
                }
                for (int t = t1 - 1; t >= t0; t--) {
                    size_t o = ((size_t)b * T + t) * C + (size_t)h * N;
                    const real *restrict So = Sbuf + (size_t)(t - t0) * NN;
                    const real *restrict rt = r + o, *restrict kt = k + o, *restrict vt = v + o;
                    const real *restrict wt = w + o, *restrict dyt = dy + o;
                    real *restrict drt = dr + o, *restrict dkt = dk + o, *restrict dvt = dv + o;
                    real *restrict dwt = dw + o;
                    wkv6_back(G, So, rt, kt, vt, wt, uh, dyt, drt, dkt, dvt, dwt, duh, N, acc);
                }
            }
            if (ds0)
                for (size_t e = 0; e < NN; e++) ds0[(size_t)bh * NN + e] += G[e];
        }
        free(Sbuf), free(G);
    }
    // du (H,N) = sum over the batch, in order
    for (int h = 0; h < H; h++)
        for (int b = 0; b < B; b++)
            for (int i = 0; i < N; i++) du[(size_t)h * N + i] += du_bh[((size_t)b * H + h) * N + i];
    free(du_bh);
}
