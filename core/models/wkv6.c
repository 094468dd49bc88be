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
 * Every sum runs in a fixed order (rows i in order, j inside a row), so chunked == unchunked bit for bit.
 */
#include "wkv6.h"

#include <string.h>

static inline int nchunks(const Wkv6Dims *d) { return (d->T + d->K - 1) / d->K; }

size_t wkv6_ckpt_numel(const Wkv6Dims *d) { return (size_t)d->B * d->H * nchunks(d) * d->N * d->N; }

/* One token on one head: y (N) from the old S (NULL: not wanted), then S (N,N) updated in place.
 * Row i: y += r_i S_i ; S_i = w_i S_i + k_i v. */
static inline void wkv6_step(real *restrict S, real *restrict y, const real *restrict r, const real *restrict k,
                             const real *restrict v, const real *restrict w, const real *restrict u, int N) {
    if (y) {
        real a = 0;
        for (int i = 0; i < N; i++) a += r[i] * u[i] * k[i];
#pragma omp simd
        for (int j = 0; j < N; j++) y[j] = a * v[j];
    }
    for (int i = 0; i < N; i++) {
        real *restrict Si = S + (size_t)i * N;
        const real ri = r[i], ki = k[i], wi = w[i];
        if (y) {
#pragma omp simd
            for (int j = 0; j < N; j++) y[j] += ri * Si[j];
        }
#pragma omp simd
        for (int j = 0; j < N; j++) Si[j] = wi * Si[j] + ki * v[j];
    }
}

void wkv6_forward(real *y, real *ckpt, real *sT, real *states, const real *r, const real *k, const real *v,
                  const real *w, const real *u, const real *s0, const Wkv6Dims *d) {
    const int B = d->B, T = d->T, H = d->H, N = d->N, K = d->K, C = H * N, NC = nchunks(d);
    const size_t NN = (size_t)N * N;
    CHECK(K >= 1, "WKV6 checkpoint interval K must be >= 1 (got %d)", K);
#pragma omp parallel
    {
        real *S = xmalloc(NN * sizeof(real));
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * H; bh++) {
            int b = bh / H, h = bh % H;
            if (s0) memcpy(S, s0 + (size_t)bh * NN, NN * sizeof(real));
            else memset(S, 0, NN * sizeof(real));
            for (int t = 0; t < T; t++) {
                if (t % K == 0 && ckpt) memcpy(ckpt + ((size_t)bh * NC + t / K) * NN, S, NN * sizeof(real));
                size_t o = ((size_t)b * T + t) * C + (size_t)h * N;
                wkv6_step(S, y + o, r + o, k + o, v + o, w + o, u + (size_t)h * N, N);
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
                    memcpy(Sn, Sn - NN, NN * sizeof(real));
                    wkv6_step(Sn, NULL, r + o, k + o, v + o, w + o, uh, N);
                }
                for (int t = t1 - 1; t >= t0; t--) {
                    size_t o = ((size_t)b * T + t) * C + (size_t)h * N;
                    const real *restrict So = Sbuf + (size_t)(t - t0) * NN;
                    const real *restrict rt = r + o, *restrict kt = k + o, *restrict vt = v + o;
                    const real *restrict wt = w + o, *restrict dyt = dy + o;
                    real *restrict drt = dr + o, *restrict dkt = dk + o, *restrict dvt = dv + o;
                    real *restrict dwt = dw + o;
                    // fwd: y = S^T r + a v,  a = sum_i r_i u_i k_i
                    real a = 0, vdy = 0;
                    for (int i = 0; i < N; i++) a += rt[i] * uh[i] * kt[i];
                    for (int j = 0; j < N; j++) vdy += vt[j] * dyt[j];
#pragma omp simd
                    for (int j = 0; j < N; j++) dvt[j] += a * dyt[j];
                    for (int i = 0; i < N; i++) {
                        real *restrict Gi = G + (size_t)i * N;
                        const real *restrict Soi = So + (size_t)i * N;
                        const real ri = rt[i], ki = kt[i], wi = wt[i];
                        // fwd: S' = diag(w) S + k v^T  ->  dw, dk, dv from G ; fwd: y = S^T r -> dr from S
                        real gw = 0, gk = 0, gr = 0;
                        for (int j = 0; j < N; j++) {
                            gw += Gi[j] * Soi[j];
                            gk += Gi[j] * vt[j];
                            gr += Soi[j] * dyt[j];
                        }
                        dwt[i] += gw;
                        dkt[i] += gk + ri * uh[i] * vdy;
                        drt[i] += gr + uh[i] * ki * vdy;
                        duh[i] += ri * ki * vdy;
                        // dv_j += G[i][j] k_i ; G <- diag(w) G + r dy^T
#pragma omp simd
                        for (int j = 0; j < N; j++) {
                            dvt[j] += Gi[j] * ki;
                            Gi[j] = wi * Gi[j] + ri * dyt[j];
                        }
                    }
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
