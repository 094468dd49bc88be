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
    return (size_t)d->B * d->H * nchunks(d) * d->Nv * d->N;
}

static void check_dims(const Wkv7Dims *d) {
    CHECK(d->B >= 1 && d->T >= 1 && d->H >= 1 && d->N >= 1 && d->Nv >= 1,
          "WKV7: bad dims B=%d T=%d H=%d N=%d Nv=%d (every Wkv7Dims field must be set; Nv = N for a square state)",
          d->B, d->T, d->H, d->N, d->Nv);
    CHECK(d->K >= 1, "WKV7 checkpoint interval K must be >= 1 (got %d)", d->K);
}

/* Dot product in a fixed order: WKV_LANES interleaved partial sums (vectorisable without reassociating),
 * combined by a fixed tree, then the tail in order. The result depends neither on the thread count nor on
 * how the compiler vectorises. */
#define WKV_LANES 16
static inline real wkv7_dot(const real *restrict x, const real *restrict y, int n) {
    real acc[WKV_LANES] = {0};
    int j = 0;
    for (; j + WKV_LANES <= n; j += WKV_LANES) {
#pragma omp simd
        for (int l = 0; l < WKV_LANES; l++) acc[l] += x[j + l] * y[j + l];
    }
#pragma omp simd
    for (int l = 0; l < 8; l++) acc[l] += acc[l + 8];
    real s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    for (; j < n; j++) s += x[j] * y[j];
    return s;
}

/* One step of the recurrence on one head: S (Nv,N) updated in place; y (Nv) = S' r (NULL: not wanted);
 * sa (Nv) receives sa_i when not NULL. b (N) is scratch for kk * a.
 * Row i: sa_i = -S_i . kk ; S_i = S_i * w + sa_i b + v_i k ; y_i = S_i . r  -- the read-out is summed in the
 * update's own pass, lane by lane exactly as wkv7_dot would (same order, same result). */
static inline void wkv7_step(real *restrict S, real *restrict y, real *restrict sa_out, real *restrict b,
                             const real *restrict r, const real *restrict w, const real *restrict k,
                             const real *restrict v, const real *restrict kk, const real *restrict a, int N, int Nv) {
#pragma omp simd
    for (int j = 0; j < N; j++) b[j] = kk[j] * a[j];
    for (int i = 0; i < Nv; i++) {
        real *restrict Si = S + (size_t)i * N;
        const real sa = -wkv7_dot(Si, kk, N), vi = v[i];
        if (sa_out) sa_out[i] = sa;
        if (!y) {
#pragma omp simd
            for (int j = 0; j < N; j++) Si[j] = Si[j] * w[j] + sa * b[j] + vi * k[j];
            continue;
        }
        real acc[WKV_LANES] = {0};
        int j = 0;
        for (; j + WKV_LANES <= N; j += WKV_LANES) {
#pragma omp simd
            for (int l = 0; l < WKV_LANES; l++) {
                const real s = Si[j + l] * w[j + l] + sa * b[j + l] + vi * k[j + l];
                Si[j + l] = s;
                acc[l] += s * r[j + l];
            }
        }
        for (int jt = j; jt < N; jt++) Si[jt] = Si[jt] * w[jt] + sa * b[jt] + vi * k[jt];
#pragma omp simd
        for (int l = 0; l < 8; l++) acc[l] += acc[l + 8];
        real yi = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
        for (; j < N; j++) yi += Si[j] * r[j];
        y[i] = yi;
    }
}

void wkv7_forward(real *y, real *ckpt, real *sT, real *states, const real *r, const real *w, const real *k,
                  const real *v, const real *kk, const real *a, const real *s0, const Wkv7Dims *d) {
    check_dims(d);
    const int B = d->B, T = d->T, H = d->H, N = d->N, Nv = d->Nv, K = d->K, C = H * N, CV = H * Nv;
    const int NC = nchunks(d);
    const size_t NN = (size_t)Nv * N;
#pragma omp parallel
    {
        real *S = scratch(SCR_WKV_S, NN * sizeof(real)), *bs = scratch(SCR_WKV_B, N * sizeof(real));
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * H; bh++) {
            int b = bh / H, h = bh % H;
            if (s0) memcpy(S, s0 + (size_t)bh * NN, NN * sizeof(real));
            else memset(S, 0, NN * sizeof(real));
            for (int t = 0; t < T; t++) {
                if (t % K == 0 && ckpt) memcpy(ckpt + ((size_t)bh * NC + t / K) * NN, S, NN * sizeof(real));
                size_t o = ((size_t)b * T + t) * C + (size_t)h * N, ov = ((size_t)b * T + t) * CV + (size_t)h * Nv;
                wkv7_step(S, y + ov, NULL, bs, r + o, w + o, k + o, v + ov, kk + o, a + o, N, Nv);
                if (states) memcpy(states + (((size_t)b * T + t) * H + h) * NN, S, NN * sizeof(real));
            }
            if (sT) memcpy(sT + (size_t)bh * NN, S, NN * sizeof(real));
        }
    }
}

void wkv7_backward(real *dr, real *dw, real *dk, real *dv, real *dkk, real *da, real *ds0, const real *dy,
                   const real *dsT, const real *ckpt, const real *r, const real *w, const real *k,
                   const real *v, const real *kk, const real *a, const Wkv7Dims *d) {
    check_dims(d);
    const int B = d->B, T = d->T, H = d->H, N = d->N, Nv = d->Nv, K = d->K, C = H * N, CV = H * Nv;
    const int NC = nchunks(d);
    const size_t NN = (size_t)Nv * N;
#pragma omp parallel
    {
        real *Sbuf = scratch(SCR_WKV_SBUF, (size_t)(K + 1) * NN * sizeof(real)); // states before/after each chunk token
        real *sabuf = scratch(SCR_WKV_SA, (size_t)K * Nv * sizeof(real));       // sa of each chunk token
        real *G = scratch(SCR_WKV_G, NN * sizeof(real));                      // dL/dS' for the current token
        real *dq = scratch(SCR_WKV_DQ, N * sizeof(real)), *db = scratch(SCR_WKV_DB, N * sizeof(real));
        real *bv = scratch(SCR_WKV_BV, N * sizeof(real));
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * H; bh++) {
            int b = bh / H, h = bh % H;
            if (dsT) memcpy(G, dsT + (size_t)bh * NN, NN * sizeof(real));
            else memset(G, 0, NN * sizeof(real));
            for (int c = NC - 1; c >= 0; c--) {
                int t0 = c * K, t1 = t0 + K < T ? t0 + K : T;
                // recompute the chunk's states (and sa) from its checkpoint (same arithmetic as the forward)
                memcpy(Sbuf, ckpt + ((size_t)bh * NC + c) * NN, NN * sizeof(real));
                for (int t = t0; t < t1; t++) {
                    size_t o = ((size_t)b * T + t) * C + (size_t)h * N, ov = ((size_t)b * T + t) * CV + (size_t)h * Nv;
                    real *Sn = Sbuf + (size_t)(t - t0 + 1) * NN;
                    memcpy(Sn, Sn - NN, NN * sizeof(real));
                    wkv7_step(Sn, NULL, sabuf + (size_t)(t - t0) * Nv, bv, r + o, w + o, k + o, v + ov, kk + o, a + o, N, Nv);
                }
                for (int t = t1 - 1; t >= t0; t--) {
                    size_t o = ((size_t)b * T + t) * C + (size_t)h * N, ov = ((size_t)b * T + t) * CV + (size_t)h * Nv;
                    const real *So = Sbuf + (size_t)(t - t0) * NN, *Sn = So + NN, *sat = sabuf + (size_t)(t - t0) * Nv;
                    const real *restrict rt = r + o, *restrict wt = w + o, *restrict kt = k + o;
                    const real *restrict vt = v + ov, *restrict kkt = kk + o, *restrict at = a + o;
                    const real *restrict dyt = dy + ov;
                    real *restrict drt = dr + o, *restrict dwt = dw + o, *restrict dkt = dk + o;
                    real *restrict dvt = dv + ov;
#pragma omp simd
                    for (int j = 0; j < N; j++) db[j] = 0, dq[j] = 0, bv[j] = kkt[j] * at[j];
                    // row by row: every j-indexed sum below accumulates over i in order; the two i-indexed dot
                    // products over j are summed lane by lane in the same pass (wkv7_dot's order)
                    for (int i = 0; i < Nv; i++) {
                        real *restrict Gi = G + (size_t)i * N;
                        const real *restrict Soi = So + (size_t)i * N, *restrict Sni = Sn + (size_t)i * N;
                        const real dyi = dyt[i], sai = sat[i], vi = vt[i];
                        // y = S' r: G += dy r^T, dr = S'^T dy ; S' = S diag(w) + sa b^T + v k^T, sa = S q, q = -kk:
                        // dw += G S, db += G sa, dk += G v, dsa = G . b, dv = G . k
                        real as[WKV_LANES] = {0}, av[WKV_LANES] = {0};
                        int j = 0;
                        for (; j + WKV_LANES <= N; j += WKV_LANES) {
#pragma omp simd
                            for (int l = 0; l < WKV_LANES; l++) {
                                const real g = Gi[j + l] + dyi * rt[j + l];
                                Gi[j + l] = g;
                                drt[j + l] += Sni[j + l] * dyi;
                                dwt[j + l] += g * Soi[j + l];
                                db[j + l] += g * sai;
                                dkt[j + l] += g * vi;
                                as[l] += g * bv[j + l];
                                av[l] += g * kt[j + l];
                            }
                        }
                        for (int jt = j; jt < N; jt++) {
                            const real g = Gi[jt] + dyi * rt[jt];
                            Gi[jt] = g;
                            drt[jt] += Sni[jt] * dyi;
                            dwt[jt] += g * Soi[jt];
                            db[jt] += g * sai;
                            dkt[jt] += g * vi;
                        }
#pragma omp simd
                        for (int l = 0; l < 8; l++) as[l] += as[l + 8], av[l] += av[l + 8];
                        real dsai = ((as[0] + as[4]) + (as[2] + as[6])) + ((as[1] + as[5]) + (as[3] + as[7]));
                        real dvi = ((av[0] + av[4]) + (av[2] + av[6])) + ((av[1] + av[5]) + (av[3] + av[7]));
                        for (; j < N; j++) dsai += Gi[j] * bv[j], dvi += Gi[j] * kt[j];
                        dvt[i] += dvi;
                        // dq_j += dsa_i S[i][j] ; G <- G diag(w) + dsa q^T
#pragma omp simd
                        for (int jj = 0; jj < N; jj++) {
                            dq[jj] += dsai * Soi[jj];
                            Gi[jj] = Gi[jj] * wt[jj] - dsai * kkt[jj];
                        }
                    }
                    // q = -kk, b = kk * a
                    real *restrict dkkt = dkk + o, *restrict dat = da + o;
#pragma omp simd
                    for (int j = 0; j < N; j++) {
                        dkkt[j] += -dq[j] + db[j] * at[j];
                        dat[j] += db[j] * kkt[j];
                    }
                }
            }
            if (ds0)
                for (size_t e = 0; e < NN; e++) ds0[(size_t)bh * NN + e] += G[e];
        }
    }
}
