/* cuda_wkv7.cu -- the WKV7 recurrence on the GPU, sequential in time, one launch for a whole ragged batch.
 *
 * Per sequence b and head h, S is N x N (row i = value index, column j = key index), fp32:
 *   sa_i = -sum_j S[i][j] kk_j ;  S[i][j] = S[i][j] w_j + sa_i b_j + v_i k_j ;  y_i = sum_j S[i][j] r_j
 * with b = kk * a (computed by the prep kernel). Rows of S are independent given the per-token vectors, so
 * a head's N rows are split over N/ROWS blocks. Within a block, G consecutive lanes own RPT rows: lane g keeps
 * the E = N/G columns 4*(g + G*q) + u (u < 4) of each of its rows in registers, so the float4 reads of a
 * vector from shared memory by the G lanes are consecutive 16-byte chunks (conflict-free) and the other
 * lanes of the warp read the same addresses (broadcast); with RPT = 2 each vector read serves two rows and
 * the two rows' dependency chains interleave. The row reductions (sa, y) are G-lane xor shuffles.
 * The per-token vectors r, w, k, v, kk, b of TT tokens are brought into shared memory by cp.async in an
 * NS-stage pipeline: the next NS-1 tiles are in flight while one is used.
 * Grid: (B, H, N/ROWS); a block walks its sequence's tokens seq_off[b] .. seq_off[b+1]-1.
 */
#include <cuda_pipeline.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_kernels.cuh"

template <int G>
__device__ __forceinline__ float group_sum(float v) {
#pragma unroll
    for (int o = G / 2; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

template <int N, int G, int RPT, int ROWS, int TT, int NS>
__global__ void __launch_bounds__(ROWS / RPT * G)
    k_wkv7(float *__restrict__ y, const float *__restrict__ r, const float *__restrict__ w, const float *__restrict__ k,
           const float *__restrict__ v, const float *__restrict__ kk, const float *__restrict__ bb,
           const int *__restrict__ seq_off, const float *__restrict__ s_in, float *__restrict__ s_out, int C, int H) {
    constexpr int E = N / G, NQ4 = E / 4, NT = ROWS / RPT * G, CH = N / 4;
    static_assert(E % 4 == 0 && NT % 32 == 0 && 32 % G == 0 && ROWS % RPT == 0 && N % ROWS == 0, "bad WKV7 tiling");
    enum { AR = 0, AW, AK, AV, AKK, AB };
    extern __shared__ float4 wkv_smem[];
    float *sm = reinterpret_cast<float *>(wkv_smem); /* [NS][6][TT][N] */
#define SM(st, a, tt, j) sm[(((st) * 6 + (a)) * TT + (tt)) * N + (j)]
    const int b = blockIdx.x, h = blockIdx.y;
    const int tid = threadIdx.x, g = tid % G, i0 = blockIdx.z * ROWS + (tid / G) * RPT;
    const int t0 = seq_off[b], len = seq_off[b + 1] - t0;
    const size_t so = (((size_t)b * H + h) * N + i0) * N; /* row i0 of this head's state */

    float s[RPT][E];
#pragma unroll
    for (int rr = 0; rr < RPT; rr++)
#pragma unroll
        for (int q = 0; q < NQ4; q++) {
            float4 v4 = make_float4(0.f, 0.f, 0.f, 0.f);
            if (s_in) v4 = *reinterpret_cast<const float4 *>(s_in + so + (size_t)rr * N + 4 * (g + G * q));
            s[rr][4 * q] = v4.x, s[rr][4 * q + 1] = v4.y, s[rr][4 * q + 2] = v4.z, s[rr][4 * q + 3] = v4.w;
        }

    /* tile `tile` (tokens [tile*TT, +TT)) of every vector into stage tile % NS, as one cp.async group;
     * past the end: an empty group, so that group counting stays uniform */
    auto load = [&](int tile) {
        const int ts = tile * TT, n = min(TT, len - ts), st = tile % NS;
        const float *src[6] = {r, w, k, v, kk, bb};
        if (n > 0)
#pragma unroll
            for (int a = 0; a < 6; a++)
                for (int e = tid; e < n * CH; e += NT) {
                    const int tt = e / CH, ch = e % CH;
                    __pipeline_memcpy_async(&SM(st, a, tt, 4 * ch), src[a] + (size_t)(t0 + ts + tt) * C + h * N + 4 * ch,
                                            16);
                }
        __pipeline_commit();
    };

    for (int p = 0; p < NS - 1; p++) load(p);
    for (int tile = 0; tile * TT < len; tile++) {
        load(tile + NS - 1); /* into the stage computed in the previous iteration (after its barrier) */
        __pipeline_wait_prior(NS - 1);
        __syncthreads();
        const int ts = tile * TT, n = min(TT, len - ts), st = tile % NS;
#pragma unroll 2
        for (int tt = 0; tt < n; tt++) {
            float sa[RPT];
#pragma unroll
            for (int rr = 0; rr < RPT; rr++) sa[rr] = 0.f;
#pragma unroll
            for (int q = 0; q < NQ4; q++) {
                const float4 x = *reinterpret_cast<const float4 *>(&SM(st, AKK, tt, 4 * (g + G * q)));
#pragma unroll
                for (int rr = 0; rr < RPT; rr++)
                    sa[rr] += s[rr][4 * q] * x.x + s[rr][4 * q + 1] * x.y + s[rr][4 * q + 2] * x.z + s[rr][4 * q + 3] * x.w;
            }
            float vi[RPT], yy[RPT];
#pragma unroll
            for (int rr = 0; rr < RPT; rr++) {
                sa[rr] = -group_sum<G>(sa[rr]);
                vi[rr] = SM(st, AV, tt, i0 + rr);
                yy[rr] = 0.f;
            }
#pragma unroll
            for (int q = 0; q < NQ4; q++) {
                const int j = 4 * (g + G * q);
                const float4 w4 = *reinterpret_cast<const float4 *>(&SM(st, AW, tt, j));
                const float4 b4 = *reinterpret_cast<const float4 *>(&SM(st, AB, tt, j));
                const float4 k4 = *reinterpret_cast<const float4 *>(&SM(st, AK, tt, j));
                const float4 r4 = *reinterpret_cast<const float4 *>(&SM(st, AR, tt, j));
#pragma unroll
                for (int rr = 0; rr < RPT; rr++) {
                    s[rr][4 * q] = s[rr][4 * q] * w4.x + sa[rr] * b4.x + vi[rr] * k4.x;
                    s[rr][4 * q + 1] = s[rr][4 * q + 1] * w4.y + sa[rr] * b4.y + vi[rr] * k4.y;
                    s[rr][4 * q + 2] = s[rr][4 * q + 2] * w4.z + sa[rr] * b4.z + vi[rr] * k4.z;
                    s[rr][4 * q + 3] = s[rr][4 * q + 3] * w4.w + sa[rr] * b4.w + vi[rr] * k4.w;
                    yy[rr] += s[rr][4 * q] * r4.x + s[rr][4 * q + 1] * r4.y + s[rr][4 * q + 2] * r4.z +
                              s[rr][4 * q + 3] * r4.w;
                }
            }
#pragma unroll
            for (int rr = 0; rr < RPT; rr++) {
                yy[rr] = group_sum<G>(yy[rr]);
                if (g == 0) y[(size_t)(t0 + ts + tt) * C + h * N + i0 + rr] = yy[rr];
            }
        }
        __syncthreads(); /* the next iteration's load overwrites the oldest stage */
    }
#undef SM
    if (s_out)
#pragma unroll
        for (int rr = 0; rr < RPT; rr++)
#pragma unroll
            for (int q = 0; q < NQ4; q++)
                *reinterpret_cast<float4 *>(s_out + so + (size_t)rr * N + 4 * (g + G * q)) =
                    make_float4(s[rr][4 * q], s[rr][4 * q + 1], s[rr][4 * q + 2], s[rr][4 * q + 3]);
}

int wkv7_supported(int N) { return N == 16 || N == 32 || N == 64; }

/* Launch configurations (N = 64). "L*" (latency: few blocks in flight, i.e. a few long sequences): 3 stages of
 * 32 tokens (144 KiB of shared memory), the next tiles' loads hidden behind 64 tokens of compute. "T*"
 * (throughput: many sequences): 2 stages of 8 tokens (24 KiB, several blocks per SM). "rK": K rows per thread,
 * so that each vector read from shared memory serves K rows (every row reads all 5N per-token values: at
 * RPT = 1 that is 80 KiB of shared-memory reads per head and token, the kernel's main cost). The choice is
 * automatic (blocks vs multiprocessors, longest sequence); RWKVLAB_WKV_CFG names one for benchmarking. */
template <int N, int G, int RPT, int ROWS, int TT, int NS>
static void launch_cfg(cudaStream_t st, float *y, const float *r, const float *w, const float *k, const float *v,
                       const float *kk, const float *b, const int *seq_off, int B, const float *s_in, float *s_out,
                       int C, int H) {
    constexpr size_t smem = (size_t)NS * 6 * TT * N * sizeof(float);
    static bool attr = false; /* per instantiation, once */
    if (!attr) {
        CUDA_CHECK(cudaFuncSetAttribute(k_wkv7<N, G, RPT, ROWS, TT, NS>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        (int)smem));
        attr = true;
    }
    k_wkv7<N, G, RPT, ROWS, TT, NS><<<dim3(B, H, N / ROWS), ROWS / RPT * G, smem, st>>>(y, r, w, k, v, kk, b, seq_off, s_in,
                                                                                     s_out, C, H);
}

static const char *wkv_cfg(void) {
    static const char *c = NULL;
    if (!c) {
        c = getenv("RWKVLAB_WKV_CFG");
        if (!c) c = "auto";
        const char *ok[] = {"auto", "L4", "L8", "L8r2", "L16r4", "T4", "T4r2"};
        int found = 0;
        for (int i = 0; i < 7; i++) found |= !strcmp(c, ok[i]);
        if (!found) {
            fprintf(stderr, "rwkvlab: RWKVLAB_WKV_CFG=%s: use auto, L4, L8, L8r2, L16r4, T4 or T4r2\n", c);
            exit(EXIT_FAILURE);
        }
    }
    return c;
}

void wkv7_launch(cudaStream_t st, int N, float *y, const float *r, const float *w, const float *k, const float *v,
                 const float *kk, const float *b, const int *seq_off, int B, int max_len, const float *s_in,
                 float *s_out, int C, int H) {
    static int nsm = 0;
    if (!nsm) {
        int dev;
        CUDA_CHECK(cudaGetDevice(&dev));
        CUDA_CHECK(cudaDeviceGetAttribute(&nsm, cudaDevAttrMultiProcessorCount, dev));
    }
#define ARGS st, y, r, w, k, v, kk, b, seq_off, B, s_in, s_out, C, H
    if (N == 64) {
        const char *c = wkv_cfg();
        /* the deep pipeline pays only for long sequences with few blocks in flight */
        if (!strcmp(c, "auto")) c = (long)B * H * (N / 16) <= 2L * nsm && max_len >= 256 ? "L8r2" : "T4r2";
        if (!strcmp(c, "L4")) launch_cfg<64, 4, 1, 16, 32, 3>(ARGS);
        else if (!strcmp(c, "L8")) launch_cfg<64, 8, 1, 16, 32, 3>(ARGS);
        else if (!strcmp(c, "L8r2")) launch_cfg<64, 8, 2, 16, 32, 3>(ARGS);
        else if (!strcmp(c, "L16r4")) launch_cfg<64, 16, 4, 16, 32, 3>(ARGS);
        else if (!strcmp(c, "T4")) launch_cfg<64, 4, 1, 16, 8, 2>(ARGS);
        else launch_cfg<64, 4, 2, 32, 8, 2>(ARGS);
    } else if (N == 32) {
        launch_cfg<32, 4, 1, 16, 16, 2>(ARGS);
    } else if (N == 16) {
        launch_cfg<16, 4, 1, 16, 32, 2>(ARGS);
    } else {
        fprintf(stderr, "rwkvlab: wkv7_launch: head size %d not built (16, 32, 64 are)\n", N);
        exit(EXIT_FAILURE);
    }
#undef ARGS
    KERNEL_CHECK();
}
