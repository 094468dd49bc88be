/* cuda_common.cuh -- shared by the CUDA sources: checked calls, storage-type conversions, reductions.
 *
 * CUDA_CHECK / CUBLAS_CHECK stop the program with file:line, the failed call, the library's message and a
 * hint; KERNEL_CHECK follows every launch (launch errors at once; with RWKVLAB_CUDA_SYNC=1 also the
 * kernel's own faults, by synchronising).
 * Storage types T: float, __half, __nv_bfloat16; to_f / from_f convert (round to nearest even).
 */
#ifndef RWKV_CUDA_COMMON_CUH
#define RWKV_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

[[noreturn]] void cuda_fail(const char *file, int line, const char *call, const char *name, const char *msg);
int cuda_sync_debug(void);

#define CUDA_CHECK(call)                                                                    \
    do {                                                                                    \
        cudaError_t e_ = (call);                                                            \
        if (e_ != cudaSuccess) cuda_fail(__FILE__, __LINE__, #call, cudaGetErrorName(e_), cudaGetErrorString(e_)); \
    } while (0)

/* cuBLAS is loaded when first needed (dlopen of libcublas.so.<CUDA major>), not linked: the CLI links this
 * engine, and a linked cuBLAS costs every start of rwkvlab ~0.2 s and ~200 MB of resident memory (its
 * static initialisers), GPU or not. g_cublas holds the few entry points used (cuda_blas.cu). */
struct CublasApi {
    decltype(&cublasCreate_v2) create;
    decltype(&cublasDestroy_v2) destroy;
    decltype(&cublasSetStream_v2) set_stream;
    decltype(&cublasSetMathMode) set_math_mode;
    decltype(&cublasSetWorkspace_v2) set_workspace;
    cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
                              const void *, cudaDataType, int, const void *, cudaDataType, int, const void *, void *,
                              cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
    cublasStatus_t (*gemm_strided_batched_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                                              const void *, const void *, cudaDataType, int, long long int,
                                              const void *, cudaDataType, int, long long int, const void *, void *,
                                              cudaDataType, int, long long int, int, cublasComputeType_t,
                                              cublasGemmAlgo_t);
    decltype(&cublasGetStatusName) status_name;
    decltype(&cublasGetStatusString) status_string;
};
extern CublasApi g_cublas;
/* 0 when cuBLAS is loaded (idempotent); else -1 and why (which library, the loader's message, a hint) */
int cublas_load(char *why, size_t n);

#define CUBLAS_CHECK(call)                                                                  \
    do {                                                                                    \
        cublasStatus_t s_ = (call);                                                         \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                    \
            cuda_fail(__FILE__, __LINE__, #call, g_cublas.status_name(s_), g_cublas.status_string(s_)); \
    } while (0)

#define KERNEL_CHECK()                                              \
    do {                                                            \
        CUDA_CHECK(cudaGetLastError());                             \
        if (cuda_sync_debug()) CUDA_CHECK(cudaDeviceSynchronize()); \
    } while (0)

template <typename T> __device__ __forceinline__ float to_f(T x);
template <> __device__ __forceinline__ float to_f<float>(float x) { return x; }
template <> __device__ __forceinline__ float to_f<__half>(__half x) { return __half2float(x); }
template <> __device__ __forceinline__ float to_f<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_f<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Sum / max over the block (blockDim.x a multiple of 32, <= 1024); every thread gets the result. The
 * leading barrier lets consecutive calls reuse the shared slots. */
__device__ __forceinline__ float block_sum(float v) {
    __shared__ float sh[33];
    v = warp_sum(v);
    const int w = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = (blockDim.x + 31) >> 5;
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    if (w == 0) {
        float t = lane < nw ? sh[lane] : 0.f;
        t = warp_sum(t);
        if (lane == 0) sh[32] = t;
    }
    __syncthreads();
    return sh[32];
}
__device__ __forceinline__ float block_max(float v) {
    __shared__ float shm[33];
    v = warp_max(v);
    const int w = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = (blockDim.x + 31) >> 5;
    __syncthreads();
    if (lane == 0) shm[w] = v;
    __syncthreads();
    if (w == 0) {
        float t = lane < nw ? shm[lane] : -INFINITY;
        t = warp_max(t);
        if (lane == 0) shm[32] = t;
    }
    __syncthreads();
    return shm[32];
}

__device__ __forceinline__ float sigmoidf_(float x) { return 1.f / (1.f + expf(-x)); }

#endif
