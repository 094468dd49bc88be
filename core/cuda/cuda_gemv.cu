/* cuda_gemv.cu -- memory-bound products for a few rows (decoding at batch <= 8): out(R,NO) = beta out +
 * in(R,NI) W(NO,NI)^T with W's rows contiguous (the layout gemm_lin hands cuBLAS), fp32 accumulation.
 *
 * With R <= 8 rows a product is a read of W: cuBLAS reaches ~1.1 TB/s at R = 1 on these shapes (NOTES.md),
 * a quarter of the card's copy rate. Here one warp owns one output column n: its lanes stream W's row n in
 * 16-byte loads (8 bf16 / fp16, 4 fp32), U loads in flight per lane, multiply them with the same elements of
 * the R input rows (16-byte loads, served by L1/L2: every warp reads them), and reduce over the lanes with
 * xor shuffles (a fixed order: deterministic). Up to 3 independent products with the same shape run in one
 * launch (blockIdx.y), for r, k, v.
 */
#include <stdio.h>

#include "cuda_kernels.cuh"

template <typename T> struct Vec16;
template <> struct Vec16<float> {
    static constexpr int n = 4;
    static __device__ __forceinline__ void unpack(const uint4 &u, float *f) {
        f[0] = __uint_as_float(u.x), f[1] = __uint_as_float(u.y), f[2] = __uint_as_float(u.z), f[3] = __uint_as_float(u.w);
    }
};
template <> struct Vec16<__nv_bfloat16> {
    static constexpr int n = 8;
    static __device__ __forceinline__ void unpack(const uint4 &u, float *f) {
        const __nv_bfloat162 *h = reinterpret_cast<const __nv_bfloat162 *>(&u);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const float2 x = __bfloat1622float2(h[i]);
            f[2 * i] = x.x, f[2 * i + 1] = x.y;
        }
    }
};
template <> struct Vec16<__half> {
    static constexpr int n = 8;
    static __device__ __forceinline__ void unpack(const uint4 &u, float *f) {
        const __half2 *h = reinterpret_cast<const __half2 *>(&u);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const float2 x = __half22float2(h[i]);
            f[2 * i] = x.x, f[2 * i + 1] = x.y;
        }
    }
};

template <typename T, int RM, int U>
__global__ void __launch_bounds__(256) k_gemv(GemvJobs<T> jobs, int ldo, int ldi, int R, int NI, int NO, float beta) {
    constexpr int VEC = Vec16<T>::n, STEP = 32 * VEC;
    const int n = blockIdx.x * 8 + (threadIdx.x >> 5), lane = threadIdx.x & 31, job = blockIdx.y;
    if (n >= NO) return;
    /* selects, not a runtime index into the parameter struct (that would copy it to local memory) */
    const T *wr = (job == 0 ? jobs.W[0] : job == 1 ? jobs.W[1] : jobs.W[2]) + (size_t)n * NI;
    const T *x = job == 0 ? jobs.in[0] : job == 1 ? jobs.in[1] : jobs.in[2];
    float acc[RM];
#pragma unroll
    for (int r = 0; r < RM; r++) acc[r] = 0.f;
    for (int k0 = lane * VEC; k0 < NI; k0 += STEP * U) {
        uint4 wv[U];
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int k = k0 + u * STEP;
            wv[u] = k < NI ? __ldg(reinterpret_cast<const uint4 *>(wr + k)) : make_uint4(0u, 0u, 0u, 0u);
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int k = k0 + u * STEP;
            if (k >= NI) break;
            float wf[VEC];
            Vec16<T>::unpack(wv[u], wf);
#pragma unroll
            for (int r = 0; r < RM; r++) {
                if (r >= R) break;
                float xf[VEC];
                Vec16<T>::unpack(*reinterpret_cast<const uint4 *>(x + (size_t)r * ldi + k), xf);
#pragma unroll
                for (int e = 0; e < VEC; e++) acc[r] += wf[e] * xf[e];
            }
        }
    }
#pragma unroll
    for (int r = 0; r < RM; r++) acc[r] = warp_sum(acc[r]);
    float *o = job == 0 ? jobs.out[0] : job == 1 ? jobs.out[1] : jobs.out[2];
#pragma unroll
    for (int r = 0; r < RM; r++)
        if (lane == r && r < R) {
            float *p = o + (size_t)r * ldo + n;
            *p = beta != 0.f ? beta * *p + acc[r] : acc[r];
        }
}

template <typename T>
int gemv_lin_launch(cudaStream_t st, const GemvJobs<T> &jobs, int njobs, int ldo, int ldi, int R, int NI, int NO,
                    float beta) {
    constexpr int VEC = Vec16<T>::n;
    if (R < 1 || R > 8 || njobs < 1 || njobs > 3 || NI % VEC || ldi % VEC) return -1;
    for (int j = 0; j < njobs; j++)
        if (((uintptr_t)jobs.W[j] | (uintptr_t)jobs.in[j]) % 16) return -1;
    const dim3 grid((NO + 7) / 8, njobs);
    constexpr int U = 4;
    if (R == 1) k_gemv<T, 1, U><<<grid, 256, 0, st>>>(jobs, ldo, ldi, R, NI, NO, beta);
    else if (R == 2) k_gemv<T, 2, U><<<grid, 256, 0, st>>>(jobs, ldo, ldi, R, NI, NO, beta);
    else if (R <= 4) k_gemv<T, 4, U><<<grid, 256, 0, st>>>(jobs, ldo, ldi, R, NI, NO, beta);
    else k_gemv<T, 8, 2><<<grid, 256, 0, st>>>(jobs, ldo, ldi, R, NI, NO, beta);
    KERNEL_CHECK();
    return 0;
}

template int gemv_lin_launch<float>(cudaStream_t, const GemvJobs<float> &, int, int, int, int, int, int, float);
template int gemv_lin_launch<__half>(cudaStream_t, const GemvJobs<__half> &, int, int, int, int, int, int, float);
template int gemv_lin_launch<__nv_bfloat16>(cudaStream_t, const GemvJobs<__nv_bfloat16> &, int, int, int, int, int,
                                            int, float);

/* ---- few-row products with W(NI,NO) row-major (the LoRA factors): out(R,NO) = in(R,NI) W ------------------
 * Block: 64 output columns of one job (lane: 2 adjacent columns, one 2-element load per W row) and one slice
 * of KR rows of W (8 warps splitting it). With NI = C rows and NO = rank columns (the first factors) a
 * single slice per column block would leave ~16 blocks walking 2048 rows each; so the rows are split over
 * KS = ceil(NI / 256) blocks: each writes its partial sums to scratch, and the last block of a column block
 * to finish (a counter, reset by that block) adds the KS partials in slice order (deterministic). Up to 4
 * jobs of their own shapes in one launch (blockIdx.z): the four LoRA products of a layer. */
template <typename T> __device__ __forceinline__ float2 load2(const T *p);
template <> __device__ __forceinline__ float2 load2<float>(const float *p) { return __ldg(reinterpret_cast<const float2 *>(p)); }
template <> __device__ __forceinline__ float2 load2<__nv_bfloat16>(const __nv_bfloat16 *p) {
    return __bfloat1622float2(__ldg(reinterpret_cast<const __nv_bfloat162 *>(p)));
}
template <> __device__ __forceinline__ float2 load2<__half>(const __half *p) {
    return __half22float2(__ldg(reinterpret_cast<const __half2 *>(p)));
}

#define GEMV_KR 256 /* rows of W per block */

template <typename T, int RM>
__global__ void __launch_bounds__(256) k_gemv_mat(GemvMatJobs<T> jobs, int R) {
    __shared__ float part[8][RM][64];
    __shared__ int last;
    const int jb = blockIdx.z, lane = threadIdx.x & 31, wp = threadIdx.x >> 5, ks = blockIdx.y, cb = blockIdx.x;
    /* selects, not a runtime index into the parameter struct (that would copy it to local memory) */
#define PICK(f) (jb == 0 ? jobs.j[0].f : jb == 1 ? jobs.j[1].f : jb == 2 ? jobs.j[2].f : jobs.j[3].f)
    const int NI = PICK(NI), NO = PICK(NO), ldi = PICK(ldi), ldo = PICK(ldo), slot = PICK(slot), cslot = PICK(cslot);
    const T *W = PICK(W), *x = PICK(in);
    float *out = PICK(out);
#undef PICK
    const int n0 = cb * 64, KS = (NI + GEMV_KR - 1) / GEMV_KR;
    if (n0 >= NO || ks >= KS) return; /* the whole block: this job has fewer columns or rows */
    const int n = n0 + 2 * lane, k1 = min(NI, (ks + 1) * GEMV_KR);
    float2 acc[RM];
#pragma unroll
    for (int r = 0; r < RM; r++) acc[r] = make_float2(0.f, 0.f);
    if (n < NO)
#pragma unroll 4
        for (int k = ks * GEMV_KR + wp; k < k1; k += 8) {
            const float2 w2 = load2<T>(W + (size_t)k * NO + n);
#pragma unroll
            for (int r = 0; r < RM; r++) {
                if (r >= R) break;
                const float xv = to_f<T>(x[(size_t)r * ldi + k]);
                acc[r].x += xv * w2.x, acc[r].y += xv * w2.y;
            }
        }
#pragma unroll
    for (int r = 0; r < RM; r++) part[wp][r][2 * lane] = acc[r].x, part[wp][r][2 * lane + 1] = acc[r].y;
    __syncthreads();
    float *gp = jobs.part + ((size_t)slot + (size_t)cb * KS) * 8 * 64; /* this column block's KS partials */
    for (int e = threadIdx.x; e < R * 64; e += 256) {
        const int r = e / 64, c = e % 64;
        float s = 0.f;
#pragma unroll
        for (int q = 0; q < 8; q++) s += part[q][r][c];
        if (KS == 1) {
            if (n0 + c < NO) out[(size_t)r * ldo + n0 + c] = s;
        } else {
            gp[((size_t)ks * 8 + r) * 64 + c] = s;
        }
    }
    if (KS == 1) return;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        const unsigned done = atomicAdd(jobs.cnt + cslot + cb, 1u);
        last = done == (unsigned)KS - 1;
        if (last) jobs.cnt[cslot + cb] = 0; /* ready for the next launch */
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    for (int e = threadIdx.x; e < R * 64; e += 256) {
        const int r = e / 64, c = e % 64;
        if (n0 + c >= NO) continue;
        float s = 0.f;
        for (int q = 0; q < KS; q++) s += __ldcg(gp + ((size_t)q * 8 + r) * 64 + c);
        out[(size_t)r * ldo + n0 + c] = s;
    }
}

template <typename T>
int gemv_mat_launch(cudaStream_t st, GemvMatJobs<T> jobs, int njobs, int R) {
    if (R < 1 || R > 8 || njobs < 1 || njobs > 4 || !jobs.part || !jobs.cnt) return -1;
    int maxno = 0, maxks = 0;
    size_t slot = 0, cslot = 0; /* partial-sum blocks of 8 x 64 floats, counters */
    for (int j = 0; j < njobs; j++) {
        GemvMatJob<T> &J = jobs.j[j];
        const int ks = (J.NI + GEMV_KR - 1) / GEMV_KR, ncb = (J.NO + 63) / 64;
        if (J.NO % 2 || (uintptr_t)J.W % (2 * sizeof(T)) || J.NI < 1) return -1;
        J.slot = (int)slot, J.cslot = (int)cslot;
        if (ks > 1) slot += (size_t)ncb * ks, cslot += ncb;
        maxno = J.NO > maxno ? J.NO : maxno;
        maxks = ks > maxks ? ks : maxks;
    }
    if (slot * 8 * 64 > GEMV_SCRATCH_FLOATS || cslot > GEMV_MAX_COUNTERS) return -1;
    const dim3 grid((maxno + 63) / 64, maxks, njobs);
    if (R == 1) k_gemv_mat<T, 1><<<grid, 256, 0, st>>>(jobs, R);
    else if (R == 2) k_gemv_mat<T, 2><<<grid, 256, 0, st>>>(jobs, R);
    else if (R <= 4) k_gemv_mat<T, 4><<<grid, 256, 0, st>>>(jobs, R);
    else k_gemv_mat<T, 8><<<grid, 256, 0, st>>>(jobs, R);
    KERNEL_CHECK();
    return 0;
}

template int gemv_mat_launch<float>(cudaStream_t, GemvMatJobs<float>, int, int);
template int gemv_mat_launch<__half>(cudaStream_t, GemvMatJobs<__half>, int, int);
template int gemv_mat_launch<__nv_bfloat16>(cudaStream_t, GemvMatJobs<__nv_bfloat16>, int, int);
