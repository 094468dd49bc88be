/* cuda_none.c -- the CUDA engine's C API in a binary built without it (no nvcc, or NO_CUDA=1), and in the
 * CPU test programs. cuda_available() says why there is no GPU engine; creating a model or a state fails
 * with that message; every other entry point takes an object that cannot exist here and is never reached
 * (it stops the program, naming itself, should that ever change). */
#include <stdio.h>
#include <stdlib.h>

#include "cuda_rwkv7.h"

static const char WHY[] = "this rwkvlab was built without the CUDA engine (nvcc was not found when it was built, or "
                          "NO_CUDA=1): rebuild with the CUDA toolkit on PATH (make clean all) to use --device cuda";

int cuda_available(char *why, size_t n) {
    if (why) snprintf(why, n, "%s", WHY);
    return 0;
}
int cuda_built(void) { return 0; }
void cuda_init_async(void) {}
void cuda_init_wait(void) {}
void cuda_device_info(char *buf, size_t n) { snprintf(buf, n, "no CUDA engine in this build"); }

static void never(const char *fn) {
    fprintf(stderr, "rwkvlab: internal error: %s called in a build without the CUDA engine\n", fn);
    abort();
}

CudaRwkv7 *cuda_rwkv7_create(const Rwkv7 *m, CudaDType wtype, Err *err) {
    err_set(err, "GPU: %s", WHY);
    return NULL;
}
CudaRwkv7 *cuda_model_create(const Model *m, CudaDType wtype, Err *err) {
    err_set(err, "GPU: %s", WHY);
    return NULL;
}
void cuda_rwkv7_free(CudaRwkv7 *g) {
    if (g) never(__func__);
}
const Rwkv7Dims *cuda_rwkv7_dims(const CudaRwkv7 *g) {
    never(__func__);
    return NULL;
}
size_t cuda_rwkv7_weight_bytes(const CudaRwkv7 *g) {
    never(__func__);
    return 0;
}
size_t cuda_rwkv7_workspace_bytes(const CudaRwkv7 *g) {
    never(__func__);
    return 0;
}
void cuda_rwkv7_profile(CudaRwkv7 *g, int on) { never(__func__); }
void cuda_rwkv7_profile_print(CudaRwkv7 *g, FILE *f) { never(__func__); }
CudaRwkv7State *cuda_rwkv7_state_create(CudaRwkv7 *g, int B, Err *err) {
    err_set(err, "GPU: %s", WHY);
    return NULL;
}
void cuda_rwkv7_state_free(CudaRwkv7State *s) {
    if (s) never(__func__);
}
int cuda_rwkv7_state_batch(const CudaRwkv7State *s) {
    never(__func__);
    return 0;
}
void cuda_rwkv7_state_zero(CudaRwkv7State *s) { never(__func__); }
void cuda_rwkv7_state_upload(CudaRwkv7State *s, const float *host) { never(__func__); }
void cuda_rwkv7_state_download(const CudaRwkv7State *s, float *host) { never(__func__); }
int cuda_rwkv7_state_copy_seq(CudaRwkv7State *dst, int db, const CudaRwkv7State *src, int sb, Err *err) {
    never(__func__);
    return -1;
}
int cuda_rwkv7_state_gather(CudaRwkv7State *dst, const CudaRwkv7State *src, const int *idx, Err *err) {
    never(__func__);
    return -1;
}
int cuda_rwkv7_forward(CudaRwkv7 *g, const CudaRwkv7Batch *b, Err *err) {
    never(__func__);
    return -1;
}
int cuda_rwkv7_score(CudaRwkv7 *g, const CudaLmRequest *req, int n, long max_tokens, double *logprob, int *greedy,
                     Err *err) {
    never(__func__);
    return -1;
}
int cuda_rwkv7_score_ex(CudaRwkv7 *g, const CudaLmRequest *req, int n, const CudaScoreOpts *o, double *logprob,
                        int *greedy, CudaScoreStats *stats, Err *err) {
    never(__func__);
    return -1;
}
int cuda_rwkv7_decode(CudaRwkv7 *g, CudaRwkv7State *s, const int *tokens, int *argmax, float *logits, Err *err) {
    never(__func__);
    return -1;
}
int cuda_rwkv7_decode_used_graph(const CudaRwkv7State *s) {
    never(__func__);
    return 0;
}
int cuda_wkv7_run(const char *cfg, int N, int H, int B, const int *lens, const float *r, const float *w,
                  const float *k, const float *v, const float *kk, const float *b, const float *s0, float *y,
                  float *sT, double *ms, Err *err) {
    return err_set(err, "GPU: %s", WHY);
}
int cuda_rwkv7_trace(CudaRwkv7 *g, const int *tokens, int T, float *logits, float *S, float *w, float *kk, float *b,
                     float *a, Err *err) {
    never(__func__);
    return -1;
}
int cuda_model_trace(const Model *m, CudaDType wtype, const int *tokens, int T, float *logits, ModelTrace *tr,
                     Err *err) {
    return err_set(err, "GPU: %s", WHY);
}
