/* cuda_wkv7_chunk.cu -- the WKV7 recurrence in chunked (parallel) form for long sequences: the intra-chunk
 * work as small matrix products, one state pass per chunk of L tokens. Same recurrence as cuda_wkv7.cu and
 * the CPU oracle (core/models/wkv7.c); only the order of the fp32 operations differs.
 *
 * One row s (1 x N) of a head's state, tokens t = 1..L of a chunk, a_t = -kk_t, b_t = kk_t * a_t (rate):
 *   sa_t = s_{t-1} . a_t ;  s_t = s_{t-1} diag(w_t) + sa_t b_t + v_t k_t ;  y_t = s_t . r_t
 * With the cumulative decay g_t = w_1 ... w_t (g_0 = 1; elementwise, in (0.5452^L, 1]) and
 *   A_t = g_{t-1} a_t,  R_t = g_t r_t,  B^_t = b_t / g_t,  K^_t = k_t / g_t
 * the scaled row s_t / g_t = s_0 + sum_{u<=t} (sa_u B^_u + v_u K^_u), so, for u, t < L:
 *   sa_t = s_0 . A_t + sum_{u<t} sa_u Mb[u][t] + sum_{u<t} v_u Mk[u][t]      Mb = B^ . A, Mk = K^ . A (u < t)
 *   y_t  = s_0 . R_t + sum_{u<=t} sa_u Qb[u][t] + sum_{u<=t} v_u Qk[u][t]    Qb = B^ . R, Qk = K^ . R (u <= t)
 *   s_L  = s_0 g_L + sum_u sa_u Bp_u + sum_u v_u Kp_u                       Bp = B^ g_L, Kp = K^ g_L
 * Every product B^_u[j] A_t[j] etc. carries the ratio g_{t-1}/g_u <= 1 (u < t): bounded, and 1/g_u stays far
 * inside the fp32 range for L <= 64 (decay >= 0.5452, rwkv7.md). The sa system is unit triangular:
 * sa = X T with T = (I - Mb)^-1, X_t = s_0 . A_t + sum_{u<t} v_u Mk[u][t]. Folding T in:
 *   sa_t = s_0 . AT_t + sum_u v_u MkT[u][t]          AT = T^T A (L x N), MkT = Mk T (L x L)
 *   y_t  = s_0 . G_t  + sum_u v_u Hm[u][t]           G = R + Qb^T AT (L x N), Hm = Qk + MkT Qb (L x L)
 * Pass 1 (k_chunk_prep, every chunk and head in parallel) computes AT, G, Bp, Kp, MkT, Hm and g_L from the
 * key-side vectors; pass 2 (k_chunk_scan, per sequence and block of state rows, sequential over chunks)
 * holds the state rows and per chunk computes sa and y (products with s_0 and with the chunk's v), then s_L.
 * Tokens past a sequence's end in its last chunk are padded with w = 1 and zeros: they change nothing.
 * Per chunk and head the pass-1 record (floats): AT[L][N] G[L][N] Bp[L][N] Kp[L][N] MkT^T[L][L] Hm^T[L][L]
 * gL[N]; chunk c of sequence b, head h at ((b * maxc + c) * H + h) * SIZE.
 */
#include <cuda_pipeline.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_kernels.cuh"

template <int N, int L>
struct ChunkRec {
    static constexpr int AT = 0, G = L * N, BP = 2 * L * N, KP = 3 * L * N, MKT = 4 * L * N, HMT = MKT + L * L,
                         GL = HMT + L * L, SIZE = GL + N;
};

__device__ __forceinline__ float dot4(float4 a, float4 b) { return a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w; }
__device__ __forceinline__ void fma4(float4 &acc, float s, float4 x) {
    acc.x += s * x.x, acc.y += s * x.y, acc.z += s * x.z, acc.w += s * x.w;
}
__device__ __forceinline__ void fma4v(float4 &acc, float4 a, float4 x) {
    acc.x += a.x * x.x, acc.y += a.y * x.y, acc.z += a.z * x.z, acc.w += a.w * x.w;
}
__device__ __forceinline__ float hsum4(float4 a) { return (a.x + a.y) + (a.z + a.w); }

/* ---- pass 1: per (chunk, head, sequence), 256 threads -------------------------------------------- */
template <int N, int L>
__global__ void __launch_bounds__(256)
    k_chunk_prep(float *__restrict__ rec, const float *__restrict__ r, const float *__restrict__ w,
                 const float *__restrict__ k, const float *__restrict__ kk, const float *__restrict__ bb,
                 const int *__restrict__ seq_off, int maxc, int C, int H) {
    constexpr int NT = 256, LDN = N + 4, LDL = L + 1, N4 = N / 4;
    using Rc = ChunkRec<N, L>;
    extern __shared__ float4 cp_smem[];
    float *sm = reinterpret_cast<float *>(cp_smem);
    float *sA = sm, *sR = sA + L * LDN, *sB = sR + L * LDN, *sK = sB + L * LDN, *sW = sK + L * LDN; /* [L][LDN] */
    float *Mb = sW + L * LDN, *Mk = Mb + L * LDL, *Qb = Mk + L * LDL, *Qk = Qb + L * LDL, *Tm = Qk + L * LDL,
          *MkT = Tm + L * LDL, *gL = MkT + L * LDL, *tot = gL + N; /* [L][LDL], gL [N], tot [4][N] */
    const int c = blockIdx.x, h = blockIdx.y, b = blockIdx.z, tid = threadIdx.x;
    const int t0 = seq_off[b], len = seq_off[b + 1] - t0, ts = c * L;
    if (ts >= len) return;
    const int n = min(L, len - ts);
    float *out = rec + ((size_t)(b * maxc + c) * H + h) * Rc::SIZE;

    for (int e = tid; e < L * N4; e += NT) { /* the chunk's vectors; padding: w = 1, the rest 0 */
        const int t = e / N4, j = 4 * (e % N4);
        float4 rv = make_float4(0.f, 0.f, 0.f, 0.f), kv = rv, kkv = rv, bv = rv, wv = make_float4(1.f, 1.f, 1.f, 1.f);
        if (t < n) {
            const size_t o = (size_t)(t0 + ts + t) * C + h * N + j;
            rv = *reinterpret_cast<const float4 *>(r + o), wv = *reinterpret_cast<const float4 *>(w + o);
            kv = *reinterpret_cast<const float4 *>(k + o), kkv = *reinterpret_cast<const float4 *>(kk + o);
            bv = *reinterpret_cast<const float4 *>(bb + o);
        }
        *reinterpret_cast<float4 *>(sR + t * LDN + j) = rv, *reinterpret_cast<float4 *>(sW + t * LDN + j) = wv;
        *reinterpret_cast<float4 *>(sK + t * LDN + j) = kv, *reinterpret_cast<float4 *>(sA + t * LDN + j) = kkv;
        *reinterpret_cast<float4 *>(sB + t * LDN + j) = bv;
    }
    __syncthreads();
    { /* cumulative decay down the chunk, 4 segments of L/4 tokens per column (segment products, then each
       * segment starts from the product of the ones before); scale in place: kk -> A, r -> R, b -> B^, k -> K^ */
        static_assert(NT == 4 * N && L % 4 == 0, "one thread per (column, quarter of the chunk)");
        constexpr int SEG = L / 4;
        const int j = tid % N, sg = tid / N;
        float loc = 1.f;
        for (int q = 0; q < SEG; q++) loc *= sW[(sg * SEG + q) * LDN + j];
        tot[sg * N + j] = loc;
        __syncthreads();
        float gm = 1.f;
        for (int q = 0; q < sg; q++) gm *= tot[q * N + j];
        for (int q = 0; q < SEG; q++) {
            const int t = sg * SEG + q;
            sA[t * LDN + j] = -sA[t * LDN + j] * gm;
            gm *= sW[t * LDN + j];
            sR[t * LDN + j] *= gm;
            const float inv = __frcp_rn(gm);
            sB[t * LDN + j] *= inv, sK[t * LDN + j] *= inv;
        }
        if (sg == 3) gL[j] = gm;
    }
    __syncthreads();
    { /* the four L x L products as one (2L x N)(N x 2L) product [B^; K^][A; R]^T, TL x TL per thread: rows
       * ra + 16 x, columns ca + 16 z (x, z < TL = 2L/16), so that a warp's reads are broadcasts (rows) or
       * 16 consecutive padded rows (columns, conflict-free) */
        constexpr int TL = 2 * L / 16;
        const int ca = tid % 16, ra = tid / 16;
        float4 acc[TL][TL];
#pragma unroll
        for (int x = 0; x < TL; x++)
#pragma unroll
            for (int z = 0; z < TL; z++) acc[x][z] = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll 2
        for (int j = 0; j < N; j += 4) {
            float4 lf[TL], rt[TL];
#pragma unroll
            for (int x = 0; x < TL; x++) {
                const int a_ = ra + 16 * x, c_ = ca + 16 * x;
                lf[x] = *reinterpret_cast<const float4 *>((a_ < L ? sB + a_ * LDN : sK + (a_ - L) * LDN) + j);
                rt[x] = *reinterpret_cast<const float4 *>((c_ < L ? sA + c_ * LDN : sR + (c_ - L) * LDN) + j);
            }
#pragma unroll
            for (int x = 0; x < TL; x++)
#pragma unroll
                for (int z = 0; z < TL; z++) fma4v(acc[x][z], lf[x], rt[z]);
        }
#pragma unroll
        for (int x = 0; x < TL; x++)
#pragma unroll
            for (int z = 0; z < TL; z++) {
                const int a_ = ra + 16 * x, c_ = ca + 16 * z, u = a_ % L, t = c_ % L;
                float *M = a_ < L ? (c_ < L ? Mb : Qb) : (c_ < L ? Mk : Qk);
                const int keep = c_ < L ? u < t : u <= t;
                M[u * LDL + t] = keep ? hsum4(acc[x][z]) : 0.f;
            }
    }
    __syncthreads();
    if (tid < L) { /* T = (I - Mb)^-1 by rows: T[u][t] = [u == t] + sum_{v < t} T[u][v] Mb[v][t] */
        const int u = tid;
        float tr[L];
#pragma unroll
        for (int t = 0; t < L; t++) {
            float s = 0.f;
#pragma unroll
            for (int v = 0; v < t; v++) s += tr[v] * Mb[v * LDL + t];
            tr[t] = t < u ? 0.f : t == u ? 1.f : s;
        }
#pragma unroll
        for (int t = 0; t < L; t++) Tm[u * LDL + t] = tr[t];
    }
    __syncthreads();
    constexpr int TT = L / 16; /* AT and G: TT tokens (tq + 16 x) x 4 columns per thread */
    const int jq = 4 * (tid % 16), tq = tid / 16;
    { /* AT[t] = sum_{u <= t} T[u][t] A_u (into sW) */
        float4 acc[TT];
#pragma unroll
        for (int x = 0; x < TT; x++) acc[x] = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll 4
        for (int u = 0; u < L; u++) {
            const float4 a4 = *reinterpret_cast<const float4 *>(sA + u * LDN + jq);
#pragma unroll
            for (int x = 0; x < TT; x++) fma4(acc[x], Tm[u * LDL + tq + 16 * x], a4);
        }
#pragma unroll
        for (int x = 0; x < TT; x++) {
            const int t = tq + 16 * x;
            *reinterpret_cast<float4 *>(sW + t * LDN + jq) = acc[x];
            *reinterpret_cast<float4 *>(out + Rc::AT + t * N + jq) = acc[x];
        }
    }
    for (int p = tid; p < L * L; p += NT) { /* MkT = Mk T */
        const int u = p / L, t = p % L;
        float s = 0.f;
#pragma unroll 8
        for (int v = 0; v < L; v++) s += Mk[u * LDL + v] * Tm[v * LDL + t];
        MkT[u * LDL + t] = s;
    }
    __syncthreads();
    { /* G[t] = R_t + sum_{u <= t} Qb[u][t] AT_u ; Bp, Kp */
        float4 acc[TT];
#pragma unroll
        for (int x = 0; x < TT; x++) acc[x] = *reinterpret_cast<const float4 *>(sR + (tq + 16 * x) * LDN + jq);
#pragma unroll 4
        for (int u = 0; u < L; u++) {
            const float4 a4 = *reinterpret_cast<const float4 *>(sW + u * LDN + jq);
#pragma unroll
            for (int x = 0; x < TT; x++) fma4(acc[x], Qb[u * LDL + tq + 16 * x], a4);
        }
        const float4 g4 = *reinterpret_cast<const float4 *>(gL + jq);
#pragma unroll
        for (int x = 0; x < TT; x++) {
            const int t = tq + 16 * x;
            *reinterpret_cast<float4 *>(out + Rc::G + t * N + jq) = acc[x];
            const float4 b4 = *reinterpret_cast<const float4 *>(sB + t * LDN + jq);
            const float4 k4 = *reinterpret_cast<const float4 *>(sK + t * LDN + jq);
            *reinterpret_cast<float4 *>(out + Rc::BP + t * N + jq) = make_float4(b4.x * g4.x, b4.y * g4.y, b4.z * g4.z, b4.w * g4.w);
            *reinterpret_cast<float4 *>(out + Rc::KP + t * N + jq) = make_float4(k4.x * g4.x, k4.y * g4.y, k4.z * g4.z, k4.w * g4.w);
        }
    }
    for (int p = tid; p < L * L; p += NT) { /* transposed: MkT^T[t][u], Hm^T[t][u] = Qk[u][t] + sum_v MkT[u][v] Qb[v][t] */
        const int t = p / L, u = p % L;
        float s = Qk[u * LDL + t];
#pragma unroll 8
        for (int v = 0; v < L; v++) s += MkT[u * LDL + v] * Qb[v * LDL + t];
        out[Rc::HMT + t * L + u] = s;
        out[Rc::MKT + t * L + u] = MkT[u * LDL + t];
    }
    if (tid < N) out[Rc::GL + tid] = gL[tid];
}

/* ---- pass 2: per (sequence, head, block of ROWS state rows), sequential over the chunks ---------------
 * Register tiles: in the sa / y products a thread owns 2 rows x 2 tokens (rows rp, rp + ROWS/2; tokens tq,
 * tq + L/2), in the state update 2 rows x 4 columns, so that each shared-memory vector read serves 4-8 FMAs
 * and the reads of a warp are broadcasts or conflict-free (row strides padded by 4 floats). */
template <int N, int L, int ROWS, int NT, int NS>
__global__ void __launch_bounds__(NT)
    k_chunk_scan(float *__restrict__ y, const float *__restrict__ v, const float *__restrict__ rec,
                 const int *__restrict__ seq_off, int maxc, const float *__restrict__ s_in, float *__restrict__ s_out,
                 int C, int H) {
    constexpr int LDN = N + 4, LDL = L + 4, LDR = ROWS + 4, N4 = N / 4, L4 = L / 4, R2 = ROWS / 2, L2 = L / 2;
    /* one stage: AT, G, Bp, Kp [L][LDN]; MkT^T, Hm^T [L][LDL]; gL [N]; V^T [ROWS][LDL]; V [L][LDR] */
    constexpr int OAT = 0, OG = L * LDN, OBP = 2 * L * LDN, OKP = 3 * L * LDN, OMK = 4 * L * LDN, OHM = OMK + L * LDL,
                  OGL = OHM + L * LDL, OVT = OGL + N, OV = OVT + ROWS * LDL, STAGE = OV + L * LDR;
    constexpr int P1 = R2 * L2, P2 = R2 * N4; /* work items of the two phases */
    using Rc = ChunkRec<N, L>;
    static_assert(STAGE % 4 == 0 && L % 4 == 0 && N % 4 == 0 && ROWS % 4 == 0, "bad chunk tiling");
    extern __shared__ float4 cs_smem[];
    float *sm = reinterpret_cast<float *>(cs_smem);
    float *S = sm + NS * STAGE, *SAt = S + ROWS * LDN; /* S [ROWS][LDN], sa transposed [L][LDR] */
    const int b = blockIdx.x, h = blockIdx.y, i0 = blockIdx.z * ROWS, tid = threadIdx.x;
    const int t0 = seq_off[b], len = seq_off[b + 1] - t0, nc = (len + L - 1) / L;
    const size_t so = (((size_t)b * H + h) * N + i0) * N;

    for (int e = tid; e < ROWS * N4; e += NT) {
        const int i = e / N4, j = 4 * (e % N4);
        *reinterpret_cast<float4 *>(S + i * LDN + j) =
            s_in ? *reinterpret_cast<const float4 *>(s_in + so + (size_t)i * N + j) : make_float4(0.f, 0.f, 0.f, 0.f);
    }
    auto load = [&](int c) {
        float *dst = sm + (c % NS) * STAGE;
        const float *src = rec + ((size_t)(b * maxc + c) * H + h) * Rc::SIZE;
        for (int e = tid; e < 4 * L * N4; e += NT) { /* AT, G, Bp, Kp: consecutive in the record */
            const int row = e / N4, j = 4 * (e % N4);
            __pipeline_memcpy_async(dst + row * LDN + j, src + row * N + j, 16);
        }
        for (int e = tid; e < 2 * L * L4; e += NT) {
            const int row = e / L4, u = 4 * (e % L4);
            __pipeline_memcpy_async(dst + OMK + row * LDL + u, src + Rc::MKT + row * L + u, 16);
        }
        for (int e = tid; e < N4; e += NT) __pipeline_memcpy_async(dst + OGL + 4 * e, src + Rc::GL + 4 * e, 16);
        const int n = min(L, len - c * L);
        for (int e = tid; e < ROWS * L; e += NT) { /* V^T[i][u]; lanes along i: coalesced reads */
            const int u = e / ROWS, i = e % ROWS;
            if (u < n) __pipeline_memcpy_async(dst + OVT + i * LDL + u, v + (size_t)(t0 + c * L + u) * C + h * N + i0 + i, 4);
            else dst[OVT + i * LDL + u] = 0.f;
        }
        for (int e = tid; e < L * (ROWS / 4); e += NT) { /* V[u][i] */
            const int u = e / (ROWS / 4), i = 4 * (e % (ROWS / 4));
            if (u < n) __pipeline_memcpy_async(dst + OV + u * LDR + i, v + (size_t)(t0 + c * L + u) * C + h * N + i0 + i, 16);
            else *reinterpret_cast<float4 *>(dst + OV + u * LDR + i) = make_float4(0.f, 0.f, 0.f, 0.f);
        }
        __pipeline_commit();
    };
    for (int c = 0; c < NS - 1; c++) { /* NS-stage pipeline: chunks c+1 .. c+NS-1 in flight while c is used */
        if (c < nc) load(c);
        else __pipeline_commit();
    }
    for (int c = 0; c < nc; c++) {
        if (c + NS - 1 < nc) load(c + NS - 1); /* into the stage chunk c-1 used (all threads are past its last barrier) */
        else __pipeline_commit();
        __pipeline_wait_prior(NS - 1);
        __syncthreads();
        const float *cur = sm + (c % NS) * STAGE;
        const int n = min(L, len - c * L);
        for (int p = tid; p < P1; p += NT) { /* sa and y of rows {rp, rp + R2} x tokens {tq, tq + L2} */
            const int rp = p % R2, tq = p / R2;
            const int ii[2] = {rp, rp + R2}, tt[2] = {tq, tq + L2};
            float4 as[2][2], ay[2][2];
#pragma unroll
            for (int x = 0; x < 2; x++)
#pragma unroll
                for (int z = 0; z < 2; z++) as[x][z] = ay[x][z] = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll 4
            for (int j = 0; j < N; j += 4) {
                float4 s4[2], at[2], g4[2];
#pragma unroll
                for (int x = 0; x < 2; x++) {
                    s4[x] = *reinterpret_cast<const float4 *>(S + ii[x] * LDN + j);
                    at[x] = *reinterpret_cast<const float4 *>(cur + OAT + tt[x] * LDN + j);
                    g4[x] = *reinterpret_cast<const float4 *>(cur + OG + tt[x] * LDN + j);
                }
#pragma unroll
                for (int x = 0; x < 2; x++)
#pragma unroll
                    for (int z = 0; z < 2; z++) fma4v(as[x][z], s4[x], at[z]), fma4v(ay[x][z], s4[x], g4[z]);
            }
#pragma unroll 4
            for (int u = 0; u < L; u += 4) {
                float4 v4[2], mk[2], hm[2];
#pragma unroll
                for (int x = 0; x < 2; x++) {
                    v4[x] = *reinterpret_cast<const float4 *>(cur + OVT + ii[x] * LDL + u);
                    mk[x] = *reinterpret_cast<const float4 *>(cur + OMK + tt[x] * LDL + u);
                    hm[x] = *reinterpret_cast<const float4 *>(cur + OHM + tt[x] * LDL + u);
                }
#pragma unroll
                for (int x = 0; x < 2; x++)
#pragma unroll
                    for (int z = 0; z < 2; z++) fma4v(as[x][z], v4[x], mk[z]), fma4v(ay[x][z], v4[x], hm[z]);
            }
#pragma unroll
            for (int x = 0; x < 2; x++)
#pragma unroll
                for (int z = 0; z < 2; z++) {
                    SAt[tt[z] * LDR + ii[x]] = hsum4(as[x][z]);
                    if (tt[z] < n) y[(size_t)(t0 + c * L + tt[z]) * C + h * N + i0 + ii[x]] = hsum4(ay[x][z]);
                }
        }
        __syncthreads();
        for (int p = tid; p < P2; p += NT) { /* s_L = s_0 g_L + sum_u sa_u Bp_u + v_u Kp_u: rows 2q, 2q+1 x 4 columns */
            const int j = 4 * (p % N4), i = 2 * (p / N4);
            const float4 g4 = *reinterpret_cast<const float4 *>(cur + OGL + j);
            float4 s4[2];
#pragma unroll
            for (int x = 0; x < 2; x++) {
                s4[x] = *reinterpret_cast<const float4 *>(S + (i + x) * LDN + j);
                s4[x] = make_float4(s4[x].x * g4.x, s4[x].y * g4.y, s4[x].z * g4.z, s4[x].w * g4.w);
            }
#pragma unroll 8
            for (int u = 0; u < L; u++) {
                const float2 sa2 = *reinterpret_cast<const float2 *>(SAt + u * LDR + i);
                const float2 v2 = *reinterpret_cast<const float2 *>(cur + OV + u * LDR + i);
                const float4 bp = *reinterpret_cast<const float4 *>(cur + OBP + u * LDN + j);
                const float4 kp = *reinterpret_cast<const float4 *>(cur + OKP + u * LDN + j);
                fma4(s4[0], sa2.x, bp), fma4(s4[1], sa2.y, bp);
                fma4(s4[0], v2.x, kp), fma4(s4[1], v2.y, kp);
            }
#pragma unroll
            for (int x = 0; x < 2; x++) *reinterpret_cast<float4 *>(S + (i + x) * LDN + j) = s4[x];
        }
        __syncthreads(); /* S complete; the next iteration's load overwrites this stage */
    }
    if (s_out)
        for (int e = tid; e < ROWS * N4; e += NT) {
            const int i = e / N4, j = 4 * (e % N4);
            *reinterpret_cast<float4 *>(s_out + so + (size_t)i * N + j) = *reinterpret_cast<const float4 *>(S + i * LDN + j);
        }
}

template <int N, int L, int ROWS, int NT, int NS>
static void chunk_cfg(cudaStream_t st, float *rec, float *y, const float *r, const float *w, const float *k,
                      const float *v, const float *kk, const float *b, const int *seq_off, int B, int max_len,
                      const float *s_in, float *s_out, int C, int H, int passes) {
    constexpr int LDN = N + 4, LDL1 = L + 1, LDL4 = L + 4, LDR = ROWS + 4;
    constexpr size_t prep_smem = (size_t)(5 * L * LDN + 6 * L * LDL1 + 5 * N) * sizeof(float);
    constexpr size_t stage = (size_t)4 * L * LDN + 2 * L * LDL4 + N + ROWS * LDL4 + L * LDR;
    constexpr size_t scan_smem = (NS * stage + ROWS * LDN + L * LDR) * sizeof(float);
    static bool attr = false;
    if (!attr) {
        CUDA_CHECK(cudaFuncSetAttribute(k_chunk_prep<N, L>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)prep_smem));
        CUDA_CHECK(cudaFuncSetAttribute(k_chunk_scan<N, L, ROWS, NT, NS>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        (int)scan_smem));
        attr = true;
    }
    const int maxc = (max_len + L - 1) / L;
    if (passes & 1) {
        k_chunk_prep<N, L><<<dim3(maxc, H, B), 256, prep_smem, st>>>(rec, r, w, k, kk, b, seq_off, maxc, C, H);
        KERNEL_CHECK();
    }
    if (passes & 2) k_chunk_scan<N, L, ROWS, NT, NS><<<dim3(B, H, N / ROWS), NT, scan_smem, st>>>(y, v, rec, seq_off, maxc, s_in, s_out, C, H);
    if (passes & 2) KERNEL_CHECK();
}

static int chunk_len(const char *cfg) { return !strcmp(cfg, "C16") ? 16 : 32; }

size_t wkv7_chunk_floats(const char *cfg, int N, int B, int max_len, int H) {
    if (N != 64) return 0;
    const int L = chunk_len(cfg);
    const size_t size = L == 16 ? ChunkRec<64, 16>::SIZE : ChunkRec<64, 32>::SIZE;
    return (size_t)B * ((max_len + L - 1) / L) * H * size;
}

void wkv7_chunk_launch(cudaStream_t st, const char *cfg, float *rec, float *y, const float *r, const float *w,
                       const float *k, const float *v, const float *kk, const float *b, const int *seq_off, int B,
                       int max_len, const float *s_in, float *s_out, int C, int H, int passes) {
#define ARGS st, rec, y, r, w, k, v, kk, b, seq_off, B, max_len, s_in, s_out, C, H, passes
    /* threads: max(ROWS/2 * L/2, ROWS/2 * N/4) (the two phases' work items) */
    if (!strcmp(cfg, "C16")) chunk_cfg<64, 16, 16, 128, 4>(ARGS);
    else if (!strcmp(cfg, "C32r8")) chunk_cfg<64, 32, 8, 64, 3>(ARGS);
    else if (!strcmp(cfg, "C32s2")) chunk_cfg<64, 32, 16, 128, 2>(ARGS);
    else if (!strcmp(cfg, "C32s4")) chunk_cfg<64, 32, 16, 128, 4>(ARGS);
    else chunk_cfg<64, 32, 16, 128, 3>(ARGS);
#undef ARGS
}
