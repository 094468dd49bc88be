/* cuda_blas.cu -- cuBLAS loaded at run time (see CublasApi in cuda_common.cuh). */
#include <dlfcn.h>
#include <stdio.h>

#include "cuda_common.cuh"

CublasApi g_cublas;

int cublas_load(char *why, size_t n) {
    static int state = 0; /* 0 not tried, 1 loaded, -1 failed */
    static char msg[512];
    if (state == 0) {
        char name[64];
        snprintf(name, sizeof name, "libcublas.so.%d", CUDART_VERSION / 1000);
        void *h = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
        if (!h) h = dlopen("libcublas.so", RTLD_NOW | RTLD_GLOBAL);
        if (!h) {
            snprintf(msg, sizeof msg, "cannot load cuBLAS (%s): %s; install the CUDA toolkit's cuBLAS (CUDA %d) or "
                                      "add its lib64 folder to LD_LIBRARY_PATH", name, dlerror(), CUDART_VERSION / 1000);
            state = -1;
        } else {
            const char *missing = NULL;
#define SYM(field, sym)                                                   \
    do {                                                                  \
        g_cublas.field = (decltype(g_cublas.field))dlsym(h, sym);         \
        if (!g_cublas.field && !missing) missing = sym;                   \
    } while (0)
            SYM(create, "cublasCreate_v2");
            SYM(destroy, "cublasDestroy_v2");
            SYM(set_stream, "cublasSetStream_v2");
            SYM(set_math_mode, "cublasSetMathMode");
            SYM(set_workspace, "cublasSetWorkspace_v2");
            SYM(gemm_ex, "cublasGemmEx");
            SYM(gemm_strided_batched_ex, "cublasGemmStridedBatchedEx");
            SYM(status_name, "cublasGetStatusName");
            SYM(status_string, "cublasGetStatusString");
#undef SYM
            if (missing) {
                snprintf(msg, sizeof msg, "%s lacks %s: use the cuBLAS of CUDA %d (the toolkit this was built with)",
                         name, missing, CUDART_VERSION / 1000);
                state = -1;
            } else {
                state = 1;
            }
        }
    }
    if (state < 0 && why) snprintf(why, n, "%s", msg);
    return state > 0 ? 0 : -1;
}
