/* cuda_api.c -- the parts of the CUDA engine's C API that need no GPU (cuda_rwkv7.h): compiled into the CPU
 * library, so that options such as --dtype are checked the same way whether or not the engine is built. */
#include <string.h>

#include "cuda_rwkv7.h"

const char *cuda_dtype_name(CudaDType t) { return t == CUDA_DT_BF16 ? "bf16" : t == CUDA_DT_F16 ? "fp16" : "fp32"; }

const char *cuda_dtype_torch_name(CudaDType t) {
    return t == CUDA_DT_BF16 ? "bfloat16" : t == CUDA_DT_F16 ? "float16" : "float32";
}

int cuda_dtype_parse(const char *s, CudaDType *t) {
    if (!strcmp(s, "bf16")) *t = CUDA_DT_BF16;
    else if (!strcmp(s, "fp16") || !strcmp(s, "f16")) *t = CUDA_DT_F16;
    else if (!strcmp(s, "fp32") || !strcmp(s, "f32")) *t = CUDA_DT_F32;
    else return -1;
    return 0;
}
