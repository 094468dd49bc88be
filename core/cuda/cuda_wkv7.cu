/* cuda_wkv7.cu -- the WKV7 recurrence on the GPU, sequential in time, one launch for a whole ragged batch.
 *
 * Per sequence b and head h, S is N x N (row i = value index, column j = key index), fp32:
 *   sa_i = -sum_j S[i][j] kk_j ;  S[i][j] = S[i][j] w_j + sa_i b_j + v_i k_j ;  y_i = sum_j S[i][j] r_j
 * with b = kk * a (computed by the prep kernel). Rows of S are independent given the per-token vectors, so
 * a head's N rows are split over N/ROWS blocks (more blocks in flight for a single long sequence). Within a
 * block, G consecutive lanes own one row: lane g keeps the E = N/G columns 4*(g + G*q) + u (u < 4) in
 * registers, so the float4 reads of a vector from shared memory by the G lanes of a row are consecutive
 * 16-byte chunks (conflict-free) and the other rows of the warp read the same addresses (broadcast). The two
 * row reductions (sa, y) are G-lane xor shuffles.
 * The per-token vectors r, w, k, v, kk, b of TT tokens are brought into shared memory by cp.async, double
 * buffered: the next tile is in flight while the current one is used.
 * Grid: (B, H, N/ROWS); a block walks its sequence's tokens seq_off[b] .. seq_off[b+1]-1.
 */
#include <cuda_pipeline.h>
#include <stdio.h>
#include <stdlib.h>

#include "cuda_kernels.cuh"

template <int G>
__device__ __forceinline__ float group_sum(float v) {
#pragma unroll
    for (int o = G / 2; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

template <int N, int G, int ROWS, int TT>
__global__ void __launch_bounds__(ROWS *G)
    k_wkv7(float *__restrict__ y, const float *__restrict__ r, const float *__restrict__ w, const float *__restrict__ k,
           const float *__restrict__ v, const float *__restrict__ kk, const float *__restrict__ bb,
           const int *__restrict__ seq_off, const float *__restrict__ s_in, float *__restrict__ s_out, int C, int H) {
    constexpr int E = N / G, NQ4 = E / 4, NT = ROWS * G, CH = N / 4;
    static_assert(E % 4 == 0 && NT % 32 == 0 && 32 % G == 0, "bad WKV7 tiling");
    enum { AR = 0, AW, AK, AV, AKK, AB };
    __shared__ __align__(16) float sm[2][6][TT][N];
    const int b = blockIdx.x, h = blockIdx.y;
    const int tid = threadIdx.x, g = tid % G, i = blockIdx.z * ROWS + tid / G;
    const int t0 = seq_off[b], len = seq_off[b + 1] - t0;
    const size_t so = (((size_t)b * H + h) * N + i) * N;

    float s[E];
#pragma unroll
    for (int q = 0; q < NQ4; q++) {
        float4 v4 = make_float4(0.f, 0.f, 0.f, 0.f);
        if (s_in) v4 = *reinterpret_cast<const float4 *>(s_in + so + 4 * (g + G * q));
        s[4 * q] = v4.x, s[4 * q + 1] = v4.y, s[4 * q + 2] = v4.z, s[4 * q + 3] = v4.w;
    }

    /* tile of tokens [ts, ts+n) of every vector into buffer buf, as one cp.async group */
    auto load = [&](int buf, int ts) {
        const int n = min(TT, len - ts);
        const float *src[6] = {r, w, k, v, kk, bb};
#pragma unroll
        for (int a = 0; a < 6; a++)
            for (int e = tid; e < n * CH; e += NT) {
                const int tt = e / CH, ch = e % CH;
                __pipeline_memcpy_async(&sm[buf][a][tt][4 * ch], src[a] + (size_t)(t0 + ts + tt) * C + h * N + 4 * ch, 16);
            }
        __pipeline_commit();
    };

    if (len > 0) load(0, 0);
    int cur = 0;
    for (int ts = 0; ts < len; ts += TT, cur ^= 1) {
        const int n = min(TT, len - ts);
        if (ts + TT < len) load(cur ^ 1, ts + TT);
        else __pipeline_commit(); /* empty group: "all but the newest" below is then the current tile */
        __pipeline_wait_prior(1);
        __syncthreads();
#pragma unroll 2
        for (int tt = 0; tt < n; tt++) {
            float sa = 0.f;
#pragma unroll
            for (int q = 0; q < NQ4; q++) {
                const float4 x = *reinterpret_cast<const float4 *>(&sm[cur][AKK][tt][4 * (g + G * q)]);
                sa += s[4 * q] * x.x + s[4 * q + 1] * x.y + s[4 * q + 2] * x.z + s[4 * q + 3] * x.w;
            }
            sa = -group_sum<G>(sa);
            const float vi = sm[cur][AV][tt][i];
            float yy = 0.f;
#pragma unroll
            for (int q = 0; q < NQ4; q++) {
                const int j = 4 * (g + G * q);
                const float4 w4 = *reinterpret_cast<const float4 *>(&sm[cur][AW][tt][j]);
                const float4 b4 = *reinterpret_cast<const float4 *>(&sm[cur][AB][tt][j]);
                const float4 k4 = *reinterpret_cast<const float4 *>(&sm[cur][AK][tt][j]);
                const float4 r4 = *reinterpret_cast<const float4 *>(&sm[cur][AR][tt][j]);
                s[4 * q] = s[4 * q] * w4.x + sa * b4.x + vi * k4.x;
                s[4 * q + 1] = s[4 * q + 1] * w4.y + sa * b4.y + vi * k4.y;
                s[4 * q + 2] = s[4 * q + 2] * w4.z + sa * b4.z + vi * k4.z;
                s[4 * q + 3] = s[4 * q + 3] * w4.w + sa * b4.w + vi * k4.w;
                yy += s[4 * q] * r4.x + s[4 * q + 1] * r4.y + s[4 * q + 2] * r4.z + s[4 * q + 3] * r4.w;
            }
            yy = group_sum<G>(yy);
            if (g == 0) y[(size_t)(t0 + ts + tt) * C + h * N + i] = yy;
        }
        __syncthreads(); /* the next iteration's load overwrites this buffer */
    }
    if (s_out)
#pragma unroll
        for (int q = 0; q < NQ4; q++)
            *reinterpret_cast<float4 *>(s_out + so + 4 * (g + G * q)) =
                make_float4(s[4 * q], s[4 * q + 1], s[4 * q + 2], s[4 * q + 3]);
}

int wkv7_supported(int N) { return N == 16 || N == 32 || N == 64; }

void wkv7_launch(cudaStream_t st, int N, float *y, const float *r, const float *w, const float *k, const float *v,
                 const float *kk, const float *b, const int *seq_off, int B, const float *s_in, float *s_out, int C,
                 int H) {
    /* G = 4 lanes per row, 16 rows per block (64 threads); TT so that the two buffers take 24 KiB */
#define WKV(NN, TTT) \
    k_wkv7<NN, 4, 16, TTT><<<dim3(B, H, NN / 16), 64, 0, st>>>(y, r, w, k, v, kk, b, seq_off, s_in, s_out, C, H)
    if (N == 64) WKV(64, 8);
    else if (N == 32) WKV(32, 16);
    else if (N == 16) WKV(16, 32);
    else {
        fprintf(stderr, "rwkvlab: wkv7_launch: head size %d not built (16, 32, 64 are)\n", N);
        exit(EXIT_FAILURE);
    }
#undef WKV
    KERNEL_CHECK();
}
