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

#include <algorithm>
#include <vector>

#include "cuda_kernels.cuh"
#include "cuda_rwkv7.h"

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

static const char *const wkv_cfgs[] = {"auto", "L4", "L8", "L8r2", "L16r4", "T4", "T4r2", "C16", "C32", "C32r8", "C32s2", "C32s4"};
static int wkv_cfg_ok(const char *c) {
    for (const char *o : wkv_cfgs)
        if (!strcmp(c, o)) return 1;
    return 0;
}
static int is_chunked(const char *c) { return c[0] == 'C'; }

/* read at every forward (benchmarks switch it between calls) */
static const char *wkv_cfg(void) {
    const char *c = getenv("RWKVLAB_WKV_CFG");
    if (!c || !*c) return "auto";
    if (!wkv_cfg_ok(c)) {
        fprintf(stderr, "rwkvlab: RWKVLAB_WKV_CFG=%s: use auto, L4, L8, L8r2, L16r4, T4, T4r2, C16, C32, C32r8, C32s2 or C32s4\n", c);
        exit(EXIT_FAILURE);
    }
    return c;
}

/* automatic choice: few long sequences (few blocks of the sequential kernel in flight) -> the chunked form;
 * many sequences -> the sequential kernel's throughput configuration */
const char *wkv7_pick(int N, int B, int max_len, int H) {
    static int nsm = 0;
    if (!nsm) {
        int dev;
        CUDA_CHECK(cudaGetDevice(&dev));
        CUDA_CHECK(cudaDeviceGetAttribute(&nsm, cudaDevAttrMultiProcessorCount, dev));
    }
    const char *c = wkv_cfg();
    if (N != 64) return "auto";
    if (strcmp(c, "auto")) return c;
    return (long)B * H * (N / 16) <= 2L * nsm && max_len >= 256 ? "C32" : "T4r2";
}

void wkv7_launch(cudaStream_t st, int N, const char *cfg, float *rec, float *y, const float *r, const float *w,
                 const float *k, const float *v, const float *kk, const float *b, const int *seq_off, int B,
                 int max_len, const float *s_in, float *s_out, int C, int H) {
#define ARGS st, y, r, w, k, v, kk, b, seq_off, B, s_in, s_out, C, H
    if (N == 64) {
        const char *c = cfg;
        if (is_chunked(c) && !rec) c = "L8r2"; /* no room for the chunk records: the sequential form */
        if (is_chunked(c)) {
            wkv7_chunk_launch(st, c, rec, y, r, w, k, v, kk, b, seq_off, B, max_len, s_in, s_out, C, H, 3);
            return;
        }
        if (!strcmp(c, "auto")) c = "T4r2";
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

/* ---- test entry point: one launch on host arrays (cuda_rwkv7.h) -------------------------------------- */
extern "C" int cuda_wkv7_run(const char *cfg, int N, int H, int B, const int *lens, const float *r, const float *w,
                             const float *k, const float *v, const float *kk, const float *b, const float *s0,
                             float *y, float *sT, double *ms, Err *err) {
    if (!wkv_cfg_ok(cfg)) return err_set(err, "cuda_wkv7_run: unknown configuration '%s'", cfg);
    if (!wkv7_supported(N)) return err_set(err, "cuda_wkv7_run: head size %d (16, 32, 64 are built)", N);
    if (B < 1 || H < 1) return err_set(err, "cuda_wkv7_run: B=%d H=%d (need >= 1)", B, H);
    std::vector<int> off(B + 1, 0);
    int max_len = 0;
    for (int i = 0; i < B; i++) {
        if (lens[i] < 1) return err_set(err, "cuda_wkv7_run: sequence %d has %d tokens (need >= 1)", i, lens[i]);
        off[i + 1] = off[i] + lens[i];
        max_len = std::max(max_len, lens[i]);
    }
    const int C = H * N;
    const size_t R = off[B], act = R * C * sizeof(float), st = (size_t)B * H * N * N * sizeof(float);
    if (!strcmp(cfg, "auto")) cfg = wkv7_pick(N, B, max_len, H);
    const size_t nrec = is_chunked(cfg) ? wkv7_chunk_floats(cfg, N, B, max_len, H) : 0;
    float *d[7], *ds0 = nullptr, *dsT = nullptr, *rec = nullptr;
    int *doff;
    const float *h[6] = {r, w, k, v, kk, b};
    for (int i = 0; i < 7; i++) CUDA_CHECK(cudaMalloc(&d[i], act));
    for (int i = 0; i < 6; i++) CUDA_CHECK(cudaMemcpy(d[i], h[i], act, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMalloc(&doff, (B + 1) * sizeof(int)));
    CUDA_CHECK(cudaMemcpy(doff, off.data(), (B + 1) * sizeof(int), cudaMemcpyHostToDevice));
    if (s0) {
        CUDA_CHECK(cudaMalloc(&ds0, st));
        CUDA_CHECK(cudaMemcpy(ds0, s0, st, cudaMemcpyHostToDevice));
    }
    if (sT) CUDA_CHECK(cudaMalloc(&dsT, st));
    if (nrec) CUDA_CHECK(cudaMalloc(&rec, nrec * sizeof(float)));
    cudaEvent_t ev[3];
    for (auto &x : ev) CUDA_CHECK(cudaEventCreate(&x));
    CUDA_CHECK(cudaEventRecord(ev[0], 0));
    wkv7_launch(0, N, cfg, rec, d[6], d[0], d[1], d[2], d[3], d[4], d[5], doff, B, max_len, ds0, dsT, C, H);
    CUDA_CHECK(cudaEventRecord(ev[1], 0));
    if (ms && nrec) /* the first pass alone, for timing */
        wkv7_chunk_launch(0, cfg, rec, d[6], d[0], d[1], d[2], d[3], d[4], d[5], doff, B, max_len, ds0, dsT, C, H, 1);
    CUDA_CHECK(cudaEventRecord(ev[2], 0));
    CUDA_CHECK(cudaDeviceSynchronize());
    if (ms) {
        float a, b2;
        CUDA_CHECK(cudaEventElapsedTime(&a, ev[0], ev[1]));
        CUDA_CHECK(cudaEventElapsedTime(&b2, ev[1], ev[2]));
        ms[0] = a, ms[1] = nrec ? b2 : 0;
    }
    for (auto &x : ev) CUDA_CHECK(cudaEventDestroy(x));
    CUDA_CHECK(cudaMemcpy(y, d[6], act, cudaMemcpyDeviceToHost));
    if (sT) CUDA_CHECK(cudaMemcpy(sT, dsT, st, cudaMemcpyDeviceToHost));
    for (int i = 0; i < 7; i++) CUDA_CHECK(cudaFree(d[i]));
    CUDA_CHECK(cudaFree(doff));
    if (ds0) CUDA_CHECK(cudaFree(ds0));
    if (dsT) CUDA_CHECK(cudaFree(dsT));
    if (rec) CUDA_CHECK(cudaFree(rec));
    return 0;
}
