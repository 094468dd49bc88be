/* cuda_rwkv7.h -- the RWKV-7 inference forward on one NVIDIA GPU (CUDA + cuBLAS), C API.
 *
 * Scope: inference only (no backward). The model is uploaded from a loaded CPU model (model_load of an
 * RWKV-7 checkpoint, or rwkv7_create_inference + filled params), so every checkpoint format the CPU reads
 * works here too. The CPU path (rwkv7_forward) is the oracle this engine is tested against
 * (tests/gpu/test_gpu.c).
 *
 * Numerics (../shared/spec/rwkv7.md "Numerics"):
 *  - weight matrices (emb, receptance/key/value/output, LoRA factors, ffn, head) are stored as bf16
 *    (default), fp16 or fp32; the activations fed to a matrix product are rounded to the same type; every
 *    product accumulates in fp32 (cuBLAS, CUBLAS_COMPUTE_32F: no TF32 in the fp32 mode);
 *  - everything else is fp32: the vectors (mixes, w0, a0, v0, k_k, k_a, r_k, norms, biases), the residual
 *    stream, LayerNorm/GroupNorm statistics, the decay, the WKV state and its recurrence, log-softmax.
 * Head sizes: N = 16, 32, 64 (released models use 64).
 *
 * Batches are ragged: B sequences of their own lengths, packed one after the other ("packed rows", row
 * r = token r of the concatenation). No padding is computed.
 *
 * Errors: bad input (tokens outside the vocabulary, empty sequences, rows out of range, a model too large
 * for the card) returns -1 (or NULL) with an Err message. A failing CUDA/cuBLAS call is a bug or a broken
 * device: it stops the program with file:line, the call, the CUDA message and a hint
 * (RWKVLAB_CUDA_SYNC=1 synchronises after every launch so that a faulting kernel is named).
 * No managed memory is used; all device memory comes from cudaMalloc (cudaMallocHost for the pinned
 * staging buffers of decoding).
 *
 * Builds: the engine (the .cu files here, librwkvcuda.a) is compiled when nvcc exists; cuda_api.c (no GPU
 * needed) is part of the CPU library; a binary built without the engine links cuda_none.c instead, whose
 * cuda_available() says so and whose other entry points are never reached. cuBLAS is loaded at run time.
 */
#ifndef RWKV_CUDA_RWKV7_H
#define RWKV_CUDA_RWKV7_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "common.h"
#include "rwkv7.h"

/* 1 when a usable CUDA device (compute capability >= 9.0, what this build targets) is present and cuBLAS
 * loads; else 0 and `why` (may be NULL) says why (not built with CUDA, no driver, no device, too old, ...). */
int cuda_available(char *why, size_t n);
/* 1 when this binary holds the CUDA engine (built with nvcc), 0 for the stub of cuda_none.c */
int cuda_built(void);
/* Start creating the CUDA context in a background thread (it takes a few hundred ms; the caller meanwhile
 * loads the model); cuda_rwkv7_create waits for it, and so does cuda_init_wait, which a caller of
 * cuda_init_async must reach before it returns (also on its error paths). Harmless to call more than once. */
void cuda_init_async(void);
void cuda_init_wait(void);
/* "NVIDIA H200, 132 SMs, 139.8 GiB, CC 9.0, driver 13.0, runtime 13.0" for device 0 */
void cuda_device_info(char *buf, size_t n);

typedef enum { CUDA_DT_BF16 = 0, CUDA_DT_F16 = 1, CUDA_DT_F32 = 2 } CudaDType;
const char *cuda_dtype_name(CudaDType t);           /* "bf16", "fp16", "fp32" */
const char *cuda_dtype_torch_name(CudaDType t);     /* "bfloat16", "float16", "float32" (lm-eval's dtype) */
int cuda_dtype_parse(const char *s, CudaDType *t);  /* "bf16" | "fp16"/"f16" | "fp32"/"f32"; 0 = ok */

typedef struct CudaRwkv7 CudaRwkv7;

/* Upload the weights of m (any Rwkv7: loaded or created; only m->d and m->w are read; m may be freed
 * afterwards). NULL + err on an unsupported shape (head size), fp16 overflow, or too little GPU memory. */
CudaRwkv7 *cuda_rwkv7_create(const Rwkv7 *m, CudaDType wtype, Err *err);
/* The same from the model interface: m must be an RWKV-7 model (m->arch == &model_rwkv7), else NULL + err. */
CudaRwkv7 *cuda_model_create(const Model *m, CudaDType wtype, Err *err);
void cuda_rwkv7_free(CudaRwkv7 *g);
const Rwkv7Dims *cuda_rwkv7_dims(const CudaRwkv7 *g);
size_t cuda_rwkv7_weight_bytes(const CudaRwkv7 *g);    /* device bytes held by the weights */
size_t cuda_rwkv7_workspace_bytes(const CudaRwkv7 *g); /* device bytes of the current activation workspace */

/* Per-stage GPU time (CUDA events between stages; small overhead): on = 1 starts collecting (and resets),
 * cuda_rwkv7_profile_print writes the totals per forward call and resets them. For benchmarks. */
void cuda_rwkv7_profile(CudaRwkv7 *g, int on);
void cuda_rwkv7_profile_print(CudaRwkv7 *g, FILE *f);

/* The recurrent state of B sequences, kept on the device, in the CPU layout of rwkv7.h
 * (rwkv7_state_numel(d, B) floats: per layer att_prev (B,C) | S (B,H,N,N) | ffn_prev (B,C)). */
typedef struct CudaRwkv7State CudaRwkv7State;
CudaRwkv7State *cuda_rwkv7_state_create(CudaRwkv7 *g, int B, Err *err); /* zero state */
void cuda_rwkv7_state_free(CudaRwkv7State *s);
int cuda_rwkv7_state_batch(const CudaRwkv7State *s);
void cuda_rwkv7_state_zero(CudaRwkv7State *s);
void cuda_rwkv7_state_upload(CudaRwkv7State *s, const float *host);  /* rwkv7_state_numel(d,B) floats */
void cuda_rwkv7_state_download(const CudaRwkv7State *s, float *host);
/* dst sequence db := src sequence sb (both on this device; src may equal dst) */
int cuda_rwkv7_state_copy_seq(CudaRwkv7State *dst, int db, const CudaRwkv7State *src, int sb, Err *err);
/* dst sequence j := src sequence idx[j] for every j < dst's B, in one launch (idx: host array of dst's B
 * entries in [0, src's B); src must not be dst). Broadcasting one context state to many choices or copies. */
int cuda_rwkv7_state_gather(CudaRwkv7State *dst, const CudaRwkv7State *src, const int *idx, Err *err);

/* One forward over a ragged batch. The head (ln_out + head matrix) runs only at out_rows. */
typedef struct {
    int B;                   /* sequences, >= 1 */
    const int *lens;         /* (B) tokens of each sequence, >= 1 */
    const int *tokens;       /* (sum lens) packed: sequence b's tokens follow sequence b-1's */
    CudaRwkv7State *state;   /* NULL: start from the zero state, final state not kept. Else a state of B
                                sequences: read as the start state, replaced by the state after each
                                sequence's last token */
    int nout;                /* rows at which the head runs (0: none) */
    const int *out_rows;     /* (nout) packed row indices in [0, sum lens) */
    float *logits;           /* (nout, V) host, or NULL: not wanted */
    const int *targets;      /* (nout) token ids, or NULL: then logprob/greedy are not computed */
    float *logprob;          /* (nout) log-softmax (fp32) of the target at each out row */
    int *greedy;             /* (nout) 1 when the target's logit is the maximum of its row */
} CudaRwkv7Batch;
int cuda_rwkv7_forward(CudaRwkv7 *g, const CudaRwkv7Batch *b, Err *err);

/* LM-eval style scoring of many requests (../shared/spec/lmeval.md): request i is the token sequence
 * tokens[0..ntok) whose first nctx (>= 1) tokens are the context (prefix token included) and the rest the
 * continuation. logprob[i] = sum over continuation tokens of log-softmax at the position that predicts it
 * (per-position fp32, summed in double in position order); greedy[i] = every continuation token is an
 * argmax. Each request starts from the zero state. Requests are sorted by length and packed into ragged
 * batches of at most max_tokens rows (a longer request runs alone); the head runs only at scored rows. */
typedef struct {
    const int *tokens;
    int ntok, nctx;
} CudaLmRequest;
int cuda_rwkv7_score(CudaRwkv7 *g, const CudaLmRequest *req, int n, long max_tokens, double *logprob, int *greedy,
                     Err *err);

/* The same with options and counts. With share = 1, consecutive requests whose contexts are token for token
 * the same (the choices of a multiple-choice document) form a group: the group's context runs once, its
 * state is copied to every choice (cuda_rwkv7_state_gather) and only the continuations run from there; the
 * first continuation token of every choice is scored from the context's last row. Groups are sorted by
 * context length and packed like single requests; the states of a packed batch of contexts and of their
 * choices are bounded by state_bytes. Results equal share = 0 up to the order of floating-point sums. */
typedef struct {
    long max_tokens;         /* packed rows per forward (<= 0: 65536) */
    int max_seqs;            /* sequences per forward (<= 0: no limit but max_tokens) */
    int share;               /* 1: compute each shared context once (above) */
    size_t state_bytes;      /* device bytes for the states of shared contexts (0: 4 GiB) */
} CudaScoreOpts;
typedef struct {
    long forwards;           /* forward calls */
    long rows;               /* token rows computed */
    long head_rows;          /* rows at which the head ran */
    long groups, grouped;    /* shared contexts, and the requests that used them */
} CudaScoreStats;
int cuda_rwkv7_score_ex(CudaRwkv7 *g, const CudaLmRequest *req, int n, const CudaScoreOpts *o, double *logprob,
                        int *greedy, CudaScoreStats *stats, Err *err);

/* One decoding step: sequence b of s is fed tokens[b] (one token each) and its state advances; argmax[b]
 * (may be NULL) gets the index of the first largest logit of the new row, logits (may be NULL; (B,V) host)
 * the whole rows. The launch chain (every layer, the head, the argmax, the copies through pinned buffers)
 * is captured in a CUDA graph per (state buffer, logits wanted) once a first call has run it directly, and
 * replayed from then on; the graph is re-captured if the workspace moves. RWKVLAB_CUDA_GRAPH=0 (or
 * RWKVLAB_CUDA_SYNC=1, or profiling) runs every step directly instead: the same launches, the same results.
 * At most 2048 sequences per state. */
int cuda_rwkv7_decode(CudaRwkv7 *g, CudaRwkv7State *s, const int *tokens, int *argmax, float *logits, Err *err);
/* 1 when the last cuda_rwkv7_decode on s replayed a captured graph */
int cuda_rwkv7_decode_used_graph(const CudaRwkv7State *s);

/* Trace of one sequence of T tokens from a zero state, one token per forward (trace --device cuda): host
 * arrays, each NULL = not wanted: logits (T,V); S (L,T,H,N,N) the WKV state after every token; w (decay),
 * kk, b = kk * a and a (the in-context rate), each (L,T,C). */
int cuda_rwkv7_trace(CudaRwkv7 *g, const int *tokens, int T, float *logits, float *S, float *w, float *kk, float *b,
                     float *a, Err *err);
/* The same into a ModelTrace of an RWKV-7 Model (model_trace_alloc(m, 1, T)) with the CPU trace's conventions
 * (alpha = -kk, beta = kk * a, q = {decay, a}: the HDF5 schema of `trace`), on a model uploaded as wtype
 * and freed again; logits (T,V) or NULL. Another architecture is refused with a message. */
int cuda_model_trace(const Model *m, CudaDType wtype, const int *tokens, int T, float *logits, ModelTrace *tr,
                     Err *err);

/* For tests and benchmarks: one WKV7 recurrence launch on host arrays (the math of wkv7.h with the key-side
 * "b" = kk * a given instead of a). B ragged sequences of lens[b] tokens packed as rows; r, w, k, v, kk, b,
 * y: (sum lens, H*N); s0 (B,H,N,N) or NULL (zero); sT (B,H,N,N) or NULL. cfg: "auto" or one of the
 * RWKVLAB_WKV_CFG names (L4 L8 L8r2 L16r4 T4 T4r2: sequential in time; C16 C32 C32r8 C32s2 C32s4: chunked,
 * N = 64). ms (NULL: not wanted): [0] = GPU time of the launch, [1] = of the chunked form's first pass alone
 * (run once more after the timed launch; 0 for the sequential forms). */
int cuda_wkv7_run(const char *cfg, int N, int H, int B, const int *lens, const float *r, const float *w,
                  const float *k, const float *v, const float *kk, const float *b, const float *s0, float *y,
                  float *sT, double *ms, Err *err);

#ifdef __cplusplus
}
#endif

#endif
