/* wkv7.c -- WKV7 forward/backward (see wkv7.h for the recurrence and the checkpointing scheme).
 *
 * Adjoint of one step (derivation). Write q = -kk, b = kk * a, S' the new state, S the old one:
 *   fwd: sa = S q ;  S' = S diag(w) + sa b^T + v k^T ;  y = S' r
 * Given dy and G = dL/dS' (from later tokens), first add the read-out:  G += dy r^T,  dr = S'^T dy.
 * Then each term of S' gives:
 *   dw_j  = sum_i G[i][j] S[i][j]        (S diag(w))
 *   db_j  = sum_i G[i][j] sa_i ;  dsa_i = sum_j G[i][j] b_j        (sa b^T)
 *   dv_i  = sum_j G[i][j] k_j ;   dk_j  = sum_i G[i][j] v_i        (v k^T)
 *   dq_j  = sum_i dsa_i S[i][j]                                    (sa = S q)
 *   dL/dS = G diag(w) + dsa q^T                                    (passed to the previous token)
 * and finally dkk = -dq + db * a, da = db * kk.
 */
#include "wkv7.h"

#include <string.h>

static inline int nchunks(const Wkv7Dims *d) { return (d->T + d->K - 1) / d->K; }

size_t wkv7_ckpt_numel(const Wkv7Dims *d) {
    return (size_t)d->B * d->H * nchunks(d) * d->N * d->N;
}

/* One step of the recurrence on one head: S (N,N) updated in place; y (N) = S' r. */
static inline void wkv7_step(real *S, real *y, const real *r, const real *w, const real *k, const real *v,
                             const real *kk, const real *a, int N) {
    for (int i = 0; i < N; i++) {
        real *Si = S + (size_t)i * N;
        real sa = 0;
        for (int j = 0; j < N; j++) sa -= Si[j] * kk[j];
        real yi = 0;
        for (int j = 0; j < N; j++) {
            Si[j] = Si[j] * w[j] + sa * (kk[j] * a[j]) + v[i] * k[j];
            yi += Si[j] * r[j];
        }
        if (y) y[i] = yi;
    }
}

void wkv7_forward(real *y, real *ckpt, real *sT, real *states, const real *r, const real *w, const real *k,
                  const real *v, const real *kk, const real *a, const real *s0, const Wkv7Dims *d) {
    const int B = d->B, T = d->T, H = d->H, N = d->N, K = d->K, C = H * N, NC = nchunks(d);
    const size_t NN = (size_t)N * N;
    CHECK(K >= 1, "WKV7 checkpoint interval K must be >= 1 (got %d)", K);
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
                wkv7_step(S, y + o, r + o, w + o, k + o, v + o, kk + o, a + o, N);
                if (states) memcpy(states + (((size_t)b * T + t) * H + h) * NN, S, NN * sizeof(real));
            }
            if (sT) memcpy(sT + (size_t)bh * NN, S, NN * sizeof(real));
        }
        free(S);
    }
}

void wkv7_backward(real *dr, real *dw, real *dk, real *dv, real *dkk, real *da, real *ds0, const real *dy,
                   const real *dsT, const real *ckpt, const real *r, const real *w, const real *k,
                   const real *v, const real *kk, const real *a, const Wkv7Dims *d) {
    const int B = d->B, T = d->T, H = d->H, N = d->N, K = d->K, C = H * N, NC = nchunks(d);
    const size_t NN = (size_t)N * N;
#pragma omp parallel
    {
        real *Sbuf = xmalloc((size_t)(K + 1) * NN * sizeof(real)); // states before/after each chunk token
        real *G = xmalloc(NN * sizeof(real));                      // dL/dS' for the current token
        real *sa = xmalloc(N * sizeof(real)), *dsa = xmalloc(N * sizeof(real));
        real *dq = xmalloc(N * sizeof(real)), *db = xmalloc(N * sizeof(real));
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * H; bh++) {
            int b = bh / H, h = bh % H;
            if (dsT) memcpy(G, dsT + (size_t)bh * NN, NN * sizeof(real));
            else memset(G, 0, NN * sizeof(real));
            for (int c = NC - 1; c >= 0; c--) {
                int t0 = c * K, t1 = t0 + K < T ? t0 + K : T;
                // recompute the chunk's states from its checkpoint (same arithmetic as the forward)
                memcpy(Sbuf, ckpt + ((size_t)bh * NC + c) * NN, NN * sizeof(real));
                for (int t = t0; t < t1; t++) {
                    size_t o = ((size_t)b * T + t) * C + (size_t)h * N;
                    real *Sn = Sbuf + (size_t)(t - t0 + 1) * NN;
                    memcpy(Sn, Sn - NN, NN * sizeof(real));
                    wkv7_step(Sn, NULL, r + o, w + o, k + o, v + o, kk + o, a + o, N);
                }
                for (int t = t1 - 1; t >= t0; t--) {
                    size_t o = ((size_t)b * T + t) * C + (size_t)h * N;
                    const real *So = Sbuf + (size_t)(t - t0) * NN, *Sn = So + NN;
                    const real *rt = r + o, *wt = w + o, *kt = k + o, *vt = v + o, *kkt = kk + o, *at = a + o;
                    const real *dyt = dy + o;
                    // fwd: y = S' r   ->  G += dy r^T ; dr = S'^T dy
                    for (int i = 0; i < N; i++)
                        for (int j = 0; j < N; j++) G[i * N + j] += dyt[i] * rt[j];
                    real *drt = dr + o;
                    for (int i = 0; i < N; i++)
                        for (int j = 0; j < N; j++) drt[j] += Sn[i * N + j] * dyt[i];
                    // fwd: sa = S q, q = -kk
                    for (int i = 0; i < N; i++) {
                        real s = 0;
                        for (int j = 0; j < N; j++) s -= So[i * N + j] * kkt[j];
                        sa[i] = s;
                    }
                    // fwd: S' = S diag(w) + sa b^T + v k^T, b = kk * a
                    real *dwt = dw + o, *dkt = dk + o, *dvt = dv + o;
                    for (int j = 0; j < N; j++) db[j] = 0, dq[j] = 0;
                    for (int i = 0; i < N; i++) {
                        const real *Gi = G + (size_t)i * N, *Soi = So + (size_t)i * N;
                        real ds = 0, dvi = 0;
                        for (int j = 0; j < N; j++) {
                            dwt[j] += Gi[j] * Soi[j];
                            db[j] += Gi[j] * sa[i];
                            dkt[j] += Gi[j] * vt[i];
                            ds += Gi[j] * kkt[j] * at[j];
                            dvi += Gi[j] * kt[j];
                        }
                        dsa[i] = ds;
                        dvt[i] += dvi;
                    }
                    // dq_j = sum_i dsa_i S[i][j] ; G <- G diag(w) + dsa q^T
                    for (int i = 0; i < N; i++) {
                        real *Gi = G + (size_t)i * N;
                        const real *Soi = So + (size_t)i * N;
                        for (int j = 0; j < N; j++) {
                            dq[j] += dsa[i] * Soi[j];
                            Gi[j] = Gi[j] * wt[j] - dsa[i] * kkt[j];
                        }
                    }
                    // q = -kk, b = kk * a
                    real *dkkt = dkk + o, *dat = da + o;
                    for (int j = 0; j < N; j++) {
                        dkkt[j] += -dq[j] + db[j] * at[j];
                        dat[j] += db[j] * kkt[j];
                    }
                }
            }
            if (ds0)
                for (size_t e = 0; e < NN; e++) ds0[(size_t)bh * NN + e] += G[e];
        }
        free(Sbuf), free(G), free(sa), free(dsa), free(dq), free(db);
    }
}
