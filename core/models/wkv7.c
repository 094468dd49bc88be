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

#include "wkv_vec.h"

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

/* One step of the recurrence on one head: Sin (Nv,N) -> Sout (Nv,N) (the same array for an update in
 * place); y (Nv) = S' r (NULL: not wanted); sa (Nv) receives sa_i when not NULL. Row i:
 *   sa_i = -S_i . kk ;  S'_i = S_i * w + (sa_i b + v_i k) ;  y_i = S'_i . r      (b = kk * a)
 * each dot product summed per lane over the row's vectors in order, then by wkv_lanes_sum2, rows two at a
 * time (an odd last row is paired with itself). kv: 7 NV vectors, the token's kk, b, w, k, r loaded once and
 * the two rows; inlined with a constant N (the callers below) they live in registers. */
WKV_INLINE void wkv7_step_k(const int N, int Nv, wvec *restrict kv, const real *Sin, real *Sout, real *restrict y,
                            real *restrict sa_out, const real *restrict r, const real *restrict w,
                            const real *restrict k, const real *restrict v, const real *restrict kk,
                            const real *restrict a) {
    const int NV = (N + WKV_LANES - 1) / WKV_LANES;
    wvec *restrict kkv = kv, *restrict bv = kv + NV, *restrict wv = kv + 2 * NV, *restrict kv_ = kv + 3 * NV;
    wvec *restrict rv = kv + 4 * NV, *restrict x0 = kv + 5 * NV, *restrict x1 = kv + 6 * NV;
#pragma GCC unroll 8
    for (int q = 0; q < NV; q++) {
        const int o = q * WKV_LANES, n = N - o;
        kkv[q] = wv_load(kk + o, n), bv[q] = kkv[q] * wv_load(a + o, n), wv[q] = wv_load(w + o, n);
        kv_[q] = wv_load(k + o, n), rv[q] = y ? wv_load(r + o, n) : (wvec){0};
    }
    for (int i0 = 0; i0 < Nv; i0 += 2) {
        const int i1 = i0 + 1 < Nv ? i0 + 1 : i0;
        const real *S0 = Sin + (size_t)i0 * N, *S1 = Sin + (size_t)i1 * N;
        wvec a0 = {0}, a1 = {0};
#pragma GCC unroll 8
        for (int q = 0; q < NV; q++) {
            const int o = q * WKV_LANES, n = N - o;
            x0[q] = wv_load(S0 + o, n), x1[q] = wv_load(S1 + o, n);
            a0 = wv_fma(x0[q], kkv[q], a0), a1 = wv_fma(x1[q], kkv[q], a1);
        }
        real sa[2];
        wkv_lanes_sum2(a0, a1, sa);
        sa[0] = -sa[0], sa[1] = -sa[1];
        if (sa_out) sa_out[i0] = sa[0], sa_out[i1] = sa[1];
        const wvec sa0 = wv_set(sa[0]), sa1 = wv_set(sa[1]), v0 = wv_set(v[i0]), v1 = wv_set(v[i1]);
        real *D0 = Sout + (size_t)i0 * N, *D1 = Sout + (size_t)i1 * N;
        wvec y0 = {0}, y1 = {0};
#pragma GCC unroll 8
        for (int q = 0; q < NV; q++) {
            const int o = q * WKV_LANES, n = N - o;
            const wvec s0 = wv_fma(x0[q], wv[q], wv_fma(sa0, bv[q], v0 * kv_[q]));
            const wvec s1 = wv_fma(x1[q], wv[q], wv_fma(sa1, bv[q], v1 * kv_[q]));
            wv_store(D0 + o, s0, n), wv_store(D1 + o, s1, n);
            y0 = wv_fma(s0, rv[q], y0), y1 = wv_fma(s1, rv[q], y1);
        }
        if (y) {
            real yy[2];
            wkv_lanes_sum2(y0, y1, yy);
            y[i0] = yy[0], y[i1] = yy[1];
        }
    }
}
#define WKV7_STEP_ARGS                                                                                             \
    const real *Sin, real *Sout, real *y, real *sa, const real *r, const real *w, const real *k, const real *v,     \
        const real *kk, const real *a, int Nv
#define WKV7_STEP_PASS Sin, Sout, y, sa, r, w, k, v, kk, a
static void wkv7_step_32(WKV7_STEP_ARGS) {
    wvec kv[7 * 2];
    wkv7_step_k(32, Nv, kv, WKV7_STEP_PASS);
}
static void wkv7_step_64(WKV7_STEP_ARGS) {
    wvec kv[7 * 4];
    wkv7_step_k(64, Nv, kv, WKV7_STEP_PASS);
}
static void wkv7_step_n(WKV7_STEP_ARGS, int N, wvec *kv) { wkv7_step_k(N, Nv, kv, WKV7_STEP_PASS); }
/* the step with the kernel specialised for N when there is one; kv: 7 NV vectors of scratch */
static void wkv7_step(const real *Sin, real *Sout, real *y, real *sa, wvec *kv, const real *r, const real *w,
                      const real *k, const real *v, const real *kk, const real *a, int N, int Nv) {
    if (N == 32) wkv7_step_32(WKV7_STEP_PASS, Nv);
    else if (N == 64) wkv7_step_64(WKV7_STEP_PASS, Nv);
    else wkv7_step_n(WKV7_STEP_PASS, Nv, N, kv);
}

void wkv7_forward(real *y, real *ckpt, real *sT, real *states, const real *r, const real *w, const real *k,
                  const real *v, const real *kk, const real *a, const real *s0, const Wkv7Dims *d) {
    check_dims(d);
    const int B = d->B, T = d->T, H = d->H, N = d->N, Nv = d->Nv, K = d->K, C = H * N, CV = H * Nv;
    const int NC = nchunks(d);
    const size_t NN = (size_t)Nv * N;
#pragma omp parallel
    {
        real *S = scratch(SCR_WKV_S, NN * sizeof(real));
        wvec *kv = wv_scratch(SCR_WKV_B, 7 * (size_t)((N + WKV_LANES - 1) / WKV_LANES));
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * H; bh++) {
            int b = bh / H, h = bh % H;
            if (s0) memcpy(S, s0 + (size_t)bh * NN, NN * sizeof(real));
            else memset(S, 0, NN * sizeof(real));
            for (int t = 0; t < T; t++) {
                if (t % K == 0 && ckpt) memcpy(ckpt + ((size_t)bh * NC + t / K) * NN, S, NN * sizeof(real));
                size_t o = ((size_t)b * T + t) * C + (size_t)h * N, ov = ((size_t)b * T + t) * CV + (size_t)h * Nv;
                wkv7_step(S, S, y + ov, NULL, kv, r + o, w + o, k + o, v + ov, kk + o, a + o, N, Nv);
                if (states) memcpy(states + (((size_t)b * T + t) * H + h) * NN, S, NN * sizeof(real));
            }
            if (sT) memcpy(sT + (size_t)bh * NN, S, NN * sizeof(real));
        }
    }
}

/* The adjoint of one token on one head (see the derivation at the top), row by row. G (Nv,N) holds dL/dS'
 * on entry and dL/dS on return; So / Sn are the states before / after the token, sat its sa. The j-indexed
 * sums (dr, dw, db, dk, dq) accumulate over the rows i in order, per lane; the two i-indexed dot products
 * over j (dsa_i = G_i . b, dv_i = G_i . k) are summed per lane in the same pass and finished by
 * wkv_lanes_sum2. acc holds 11 NV vectors: the five sums, the row's G + dy r^T and the token's r, b = kk * a,
 * k, w, kk; inlined with a constant N (the callers below) they live in registers. */
WKV_INLINE void wkv7_back_k(const int N, int Nv, wvec *restrict acc, real *restrict G, const real *restrict So,
                            const real *restrict Sn, const real *restrict sat, const real *restrict rt,
                            const real *restrict wt, const real *restrict kt, const real *restrict vt,
                            const real *restrict kkt, const real *restrict at, const real *restrict dyt,
                            real *restrict drt, real *restrict dwt, real *restrict dkt, real *restrict dvt,
                            real *restrict dkkt, real *restrict dat) {
    const int NV = (N + WKV_LANES - 1) / WKV_LANES;
    wvec *restrict dra = acc, *restrict dwa = acc + NV, *restrict dba = acc + 2 * NV, *restrict dka = acc + 3 * NV;
    wvec *restrict dqa = acc + 4 * NV, *restrict g = acc + 5 * NV, *restrict rv = acc + 6 * NV;
    wvec *restrict bv = acc + 7 * NV, *restrict kv = acc + 8 * NV, *restrict wv = acc + 9 * NV;
    wvec *restrict kkv = acc + 10 * NV;
#pragma GCC unroll 8
    for (int q = 0; q < NV; q++) {
        const int o = q * WKV_LANES, n = N - o;
        dra[q] = dwa[q] = dba[q] = dka[q] = dqa[q] = (wvec){0};
        rv[q] = wv_load(rt + o, n), kkv[q] = wv_load(kkt + o, n), bv[q] = kkv[q] * wv_load(at + o, n);
        kv[q] = wv_load(kt + o, n), wv[q] = wv_load(wt + o, n);
    }
    for (int i = 0; i < Nv; i++) {
        real *restrict Gi = G + (size_t)i * N;
        const real *restrict Soi = So + (size_t)i * N, *restrict Sni = Sn + (size_t)i * N;
        const wvec dyi = wv_set(dyt[i]), sai = wv_set(sat[i]), vi = wv_set(vt[i]);
        // y = S' r: G += dy r^T, dr += S'^T dy ; S' = S diag(w) + sa b^T + v k^T:
        // dw += G o S, db += G^T sa, dk += G^T v, dsa = G b, dv = G k
        wvec as = {0}, av = {0};
#pragma GCC unroll 8
        for (int q = 0; q < NV; q++) {
            const int o = q * WKV_LANES, n = N - o;
            g[q] = wv_fma(dyi, rv[q], wv_load(Gi + o, n));
            dra[q] = wv_fma(wv_load(Sni + o, n), dyi, dra[q]);
            dwa[q] = wv_fma(g[q], wv_load(Soi + o, n), dwa[q]);
            dba[q] = wv_fma(g[q], sai, dba[q]);
            dka[q] = wv_fma(g[q], vi, dka[q]);
            as = wv_fma(g[q], bv[q], as);
            av = wv_fma(g[q], kv[q], av);
        }
        real sums[2];
        wkv_lanes_sum2(as, av, sums);
        const real dsa = sums[0];
        dvt[i] += sums[1];
        // sa = S q (q = -kk): dq += S^T dsa ; G <- G diag(w) + dsa q^T
        const wvec dsav = wv_set(dsa), ndsa = wv_set(-dsa);
#pragma GCC unroll 8
        for (int q = 0; q < NV; q++) {
            const int o = q * WKV_LANES, n = N - o;
            dqa[q] = wv_fma(dsav, wv_load(Soi + o, n), dqa[q]);
            wv_store(Gi + o, wv_fma(g[q], wv[q], ndsa * kkv[q]), n);
        }
    }
    // q = -kk, b = kk * a: dkk += -dq + db a, da += db kk
#pragma GCC unroll 8
    for (int q = 0; q < NV; q++) {
        const int o = q * WKV_LANES, n = N - o;
        wv_store(drt + o, wv_load(drt + o, n) + dra[q], n);
        wv_store(dwt + o, wv_load(dwt + o, n) + dwa[q], n);
        wv_store(dkt + o, wv_load(dkt + o, n) + dka[q], n);
        wv_store(dkkt + o, wv_load(dkkt + o, n) + wv_fma(dba[q], wv_load(at + o, n), -dqa[q]), n);
        wv_store(dat + o, wv_fma(dba[q], kkv[q], wv_load(dat + o, n)), n);
    }
}
#define WKV7_BACK_ARGS                                                                                              \
    real *G, const real *So, const real *Sn, const real *sat, const real *rt, const real *wt, const real *kt,       \
        const real *vt, const real *kkt, const real *at, const real *dyt, real *drt, real *dwt, real *dkt,          \
        real *dvt, real *dkkt, real *dat, int Nv
#define WKV7_BACK_PASS G, So, Sn, sat, rt, wt, kt, vt, kkt, at, dyt, drt, dwt, dkt, dvt, dkkt, dat
static void wkv7_back_32(WKV7_BACK_ARGS) {
    wvec acc[11 * 2];
    wkv7_back_k(32, Nv, acc, WKV7_BACK_PASS);
}
static void wkv7_back_64(WKV7_BACK_ARGS) {
    wvec acc[11 * 4];
    wkv7_back_k(64, Nv, acc, WKV7_BACK_PASS);
}
static void wkv7_back_n(WKV7_BACK_ARGS, int N, wvec *acc) { wkv7_back_k(N, Nv, acc, WKV7_BACK_PASS); }
/* the adjoint with the kernel specialised for N when there is one; acc: 11 NV vectors of scratch */
static void wkv7_back(WKV7_BACK_ARGS, int N, wvec *acc) {
    if (N == 32) wkv7_back_32(WKV7_BACK_PASS, Nv);
    else if (N == 64) wkv7_back_64(WKV7_BACK_PASS, Nv);
    else wkv7_back_n(WKV7_BACK_PASS, Nv, N, acc);
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
        // the generic kernels' vectors (the specialised ones keep them in registers)
        const size_t NVS = (size_t)((N + WKV_LANES - 1) / WKV_LANES);
        wvec *kv = wv_scratch(SCR_WKV_B, 7 * NVS), *acc = wv_scratch(SCR_WKV_DQ, 11 * NVS);
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
                    wkv7_step(Sn - NN, Sn, NULL, sabuf + (size_t)(t - t0) * Nv, kv, r + o, w + o, k + o, v + ov, kk + o, a + o, N, Nv);
                }
                for (int t = t1 - 1; t >= t0; t--) {
                    size_t o = ((size_t)b * T + t) * C + (size_t)h * N, ov = ((size_t)b * T + t) * CV + (size_t)h * Nv;
                    const real *So = Sbuf + (size_t)(t - t0) * NN, *Sn = So + NN, *sat = sabuf + (size_t)(t - t0) * Nv;
                    const real *restrict rt = r + o, *restrict wt = w + o, *restrict kt = k + o;
                    const real *restrict vt = v + ov, *restrict kkt = kk + o, *restrict at = a + o;
                    const real *restrict dyt = dy + ov;
                    real *restrict drt = dr + o, *restrict dwt = dw + o, *restrict dkt = dk + o;
                    real *restrict dvt = dv + ov;
                    real *restrict dkkt = dkk + o, *restrict dat = da + o;
                    wkv7_back(G, So, Sn, sat, rt, wt, kt, vt, kkt, at, dyt, drt, dwt, dkt, dvt, dkkt, dat, Nv, N, acc);
                }
            }
            if (ds0)
                for (size_t e = 0; e < NN; e++) ds0[(size_t)bh * NN + e] += G[e];
        }
    }
}
