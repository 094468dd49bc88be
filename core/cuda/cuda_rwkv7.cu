/* cuda_rwkv7.cu -- the RWKV-7 inference forward on the GPU (API and numerics: cuda_rwkv7.h).
 *
 * Device memory, one allocation per role: the weight matrices (storage type T), the fp32 vectors, the
 * activation workspace (grown on demand, carved into named buffers by ws_layout), and each state object.
 * One layer of the forward over R packed rows (CPU twin: rwkv7_forward in core/rwkv7.c):
 *   shift_mix(ln1) -> xr..xg (T) ; r,k,v = W{r,k,v} x (cuBLAS) ; LoRA stage 1 into one (R, Dw+Da+Dg+Dv)
 *   buffer, lora_act, stage 2 -> w, a, g, v-gate pre-activations ; wkv_prep ; wkv7 ; gn_bonus_gate -> yg (T)
 *   x += Wo yg ; shift_mix(ln2) -> fxk (T) ; fk = f_Wk fxk ; relu2 -> fr (T) ; x += f_Wv fr
 * The head runs only at the requested rows, in chunks of HEAD_CHUNK rows (bounded logits memory).
 * r, k, v are one strided-batched product when their inputs, weights and outputs are equally spaced (the
 * layout below makes them so; RWKVLAB_CUDA_BATCHED=0 runs three products instead).
 * Decoding (cuda_rwkv7_decode) replays the per-token chain from a CUDA graph.
 */
#include <algorithm>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <thread>
#include <vector>

#include "cuda_kernels.cuh"

#include "cuda_rwkv7.h"

static_assert(sizeof(real) == sizeof(float), "the CUDA engine links with the fp32 build of the CPU library");

#define HEAD_CHUNK 2048      /* head rows per GEMM: (HEAD_CHUNK, V) fp32 logits = 512 MiB at V = 65536 */
#define UPLOAD_CHUNK (1 << 24) /* floats per host->device conversion step (64 MiB) */
#define BLAS_WS_BYTES (32u << 20) /* cuBLAS workspace owned here (graph capture needs a fixed one) */

static int env_off(const char *name) { /* the variable is set to 0 */
    const char *e = getenv(name);
    return e && !strcmp(e, "0");
}

/* ---- errors ----------------------------------------------------------------------------------- */
void cuda_fail(const char *file, int line, const char *call, const char *name, const char *msg) {
    const char *hint =
        strstr(name, "MemoryAllocation") || strstr(name, "ALLOC_FAILED")
            ? "out of GPU memory: score fewer tokens per batch, or use bf16 weights"
        : strstr(name, "NoDevice") || strstr(name, "InsufficientDriver") || strstr(name, "NOT_INITIALIZED")
            ? "no usable GPU or driver: check nvidia-smi; the CPU engine needs none (--device cpu)"
            : "a kernel fault is reported by the next CUDA call: rerun with RWKVLAB_CUDA_SYNC=1 (synchronise after "
              "every launch) or under compute-sanitizer to name the failing launch";
    fprintf(stderr, "rwkvlab: CUDA error at %s:%d: %s: %s (%s)\n  hint: %s\n", file, line, call, name, msg, hint);
    exit(EXIT_FAILURE);
}

int cuda_sync_debug(void) {
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("RWKVLAB_CUDA_SYNC");
        v = e && *e && strcmp(e, "0") ? 1 : 0;
    }
    return v;
}

/* ---- device ----------------------------------------------------------------------------------- */
int cuda_available(char *why, size_t n) {
    int cnt = 0;
    cudaError_t e = cudaGetDeviceCount(&cnt);
    if (e != cudaSuccess) {
        if (why) snprintf(why, n, "%s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
        (void)cudaGetLastError();
        return 0;
    }
    if (cnt == 0) {
        if (why) snprintf(why, n, "no CUDA device");
        return 0;
    }
    cudaDeviceProp p;
    CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
    if (p.major < 9) {
        if (why)
            snprintf(why, n, "device 0 (%s) has compute capability %d.%d; this build targets sm_90 (set CUDA_ARCH in "
                             "core/cuda/cuda.mk to rebuild for it)", p.name, p.major, p.minor);
        return 0;
    }
    return cublas_load(why, n) == 0;
}

extern "C" int cuda_built(void) { return 1; }

/* the context is created by the first runtime call that needs it; cudaFree(NULL) is such a call. The thread
 * object is never destroyed (a joinable std::thread destroyed at exit would terminate the program); callers
 * join it with cuda_init_wait before they return. */
static std::thread *init_thread;
extern "C" void cuda_init_async(void) {
    if (init_thread) return;
    init_thread = new std::thread([] {
        if (cudaSetDevice(0) == cudaSuccess) (void)cudaFree(0);
        (void)cudaGetLastError();
    });
}
extern "C" void cuda_init_wait(void) {
    if (init_thread && init_thread->joinable()) init_thread->join();
}
static void init_wait(void) { cuda_init_wait(); }

void cuda_device_info(char *buf, size_t n) {
    cudaDeviceProp p;
    CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
    int drv = 0, rt = 0;
    CUDA_CHECK(cudaDriverGetVersion(&drv));
    CUDA_CHECK(cudaRuntimeGetVersion(&rt));
    snprintf(buf, n, "%s, %d SMs, %.1f GiB, CC %d.%d, L2 %d MiB, driver %d.%d, runtime %d.%d", p.name,
             p.multiProcessorCount, p.totalGlobalMem / 1073741824.0, p.major, p.minor, p.l2CacheSize >> 20, drv / 1000,
             (drv % 1000) / 10, rt / 1000, (rt % 1000) / 10);
}

static size_t dtype_size(CudaDType t) { return t == CUDA_DT_F32 ? 4 : 2; }
static cudaDataType_t cu_type(CudaDType t) {
    return t == CUDA_DT_BF16 ? CUDA_R_16BF : t == CUDA_DT_F16 ? CUDA_R_16F : CUDA_R_32F;
}

/* cudaMalloc that reports running out of memory as bad input (a model or batch too large), not a crash */
static int dev_alloc(void **p, size_t bytes, const char *what, Err *err) {
    cudaError_t e = cudaMalloc(p, bytes ? bytes : 1);
    if (e == cudaSuccess) return 0;
    (void)cudaGetLastError();
    *p = NULL;
    size_t fr = 0, tot = 0;
    cudaMemGetInfo(&fr, &tot);
    (void)cudaGetLastError();
    return err_set(err, "GPU: cannot allocate %.1f MiB for %s (%s; %.1f of %.1f MiB free): use fewer tokens per batch, "
                        "bf16 weights, or a larger GPU", bytes / 1048576.0, what, cudaGetErrorString(e), fr / 1048576.0,
                   tot / 1048576.0);
}

/* ---- the model -------------------------------------------------------------------------------- */
struct DLayer {
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b, *mu[6], *w0, *a0, *v0, *k_k, *k_a, *r_k, *lnx_w, *lnx_b, *f_xk;
    const float *br, *bk, *bv, *bo, *f_bk, *f_bv; /* optional biases, NULL when absent */
    const void *Wr, *Wk, *Wv, *Wo, *w1, *w2, *a1, *a2, *v1, *v2, *g1, *g2, *f_Wk, *f_Wv;
};

/* activation workspace for cap_R rows, cap_out head rows, cap_B sequences */
struct Ws {
    int *tok, *row_seq, *seq_off, *out_rows, *targets, *greedy;
    float *x, *r, *k, *v, *wl, *al, *vl, *gg, *kk, *vfirst, *y, *hf, *fk, *logits, *lp;
    void *xm[6], *yg, *fxk, *hT, *fr, *lnf;
};

/* opt-in per-stage timing (cuda_rwkv7_profile): CUDA events between the stages of each forward */
struct Prof {
    bool on = false;
    std::vector<cudaEvent_t> ev;
    std::vector<const char *> lab;
    size_t n = 0;
    std::vector<std::pair<const char *, double>> acc; /* stage -> total ms */
    long calls = 0;
};

struct CudaRwkv7 {
    Prof prof;
    Rwkv7Dims d;
    CudaDType dt;
    size_t esz;
    int Dsum; /* Dw + Da + Dg + Dv */
    cudaStream_t st;
    cublasHandle_t blas;
    void *blas_ws;
    char *wbuf;
    size_t wbytes;
    float *pbuf;
    size_t pfloats;
    const void *emb, *head;
    const float *ln0_w, *ln0_b, *lnout_w, *lnout_b, *head_b;
    std::vector<DLayer> L;
    char *ws;
    size_t ws_bytes;
    long cap_R;
    int cap_out, cap_B;
    long ws_gen; /* bumped whenever the workspace moves: captured graphs hold its addresses */
    Ws w;
    float *gemv_part; /* few-row LoRA products: partial sums (GEMV_SCRATCH_FLOATS) and counters (zeroed) */
    unsigned *gemv_cnt;
    /* trace capture (cuda_rwkv7_trace): per layer after wkv prep, the rows of w, kk, b and a go to these host
     * arrays at ((l * tr_T + tr_t) * C); tr_a is the device buffer the prep kernel writes a into */
    float *tr_w, *tr_kk, *tr_b, *tr_ah, *tr_a;
    int tr_T, tr_t;
    float *rec;      /* chunked WKV7 scratch (wkv7_chunk_floats), grown on demand; never used while capturing */
    size_t rec_floats;
};

/* one captured decoding step: valid for this state buffer, this choice of outputs and this workspace */
struct DecodeGraph {
    cudaGraphExec_t exec;
    const float *cur;
    int logits;
    long ws_gen;
};

struct CudaRwkv7State {
    CudaRwkv7 *g;
    int B;
    size_t numel, cap; /* floats used / allocated in each of cur and spare */
    float *cur, *spare; /* the forward reads cur, writes spare, then swaps */
    int *d_idx;         /* (idx_cap) gather indices */
    int idx_cap;
    /* decoding: constant row maps, token and argmax buffers (device), pinned staging, captured graphs */
    int *d_dec;         /* row_seq (B) | seq_off (B+1) | out_rows (B) | tok (B) | argmax (B) */
    int *h_tok, *h_argmax;
    float *h_logits;    /* (B,V) pinned, allocated when logits are first wanted */
    long ncalls;
    int used_graph;
    std::vector<DecodeGraph> graphs;
};

static size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* Two passes over the weights: pass 0 counts (and checks fp16 range), pass 1 uploads and sets pointers. */
struct Up {
    CudaRwkv7 *g;
    int pass;
    size_t woff, poff;      /* bytes into wbuf, floats into pbuf */
    std::vector<float> pst; /* host copy of the fp32 vectors */
    float *scratch;         /* fp16: UPLOAD_CHUNK floats on the device (converted there) */
    void *pin[2];           /* bf16, fp32: two pinned staging buffers of UPLOAD_CHUNK values (converted here) */
    cudaEvent_t ev[2];      /* the copy out of pin[i] is done */
    int used[2];
    unsigned k;             /* chunks staged so far */
    double f16_max;         /* largest |value| of a matrix (fp16 range check) */
    const char *f16_name;
};

/* fp32 -> bf16, round to nearest even (as __float2bfloat16_rn); NaN stays a (quiet) NaN */
static inline uint16_t host_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
/* the host side of an upload chunk: m values of src in the storage type, into pinned memory, in parallel */
static void stage_chunk(CudaDType dt, void *dst, const real *src, size_t m) {
    if (dt == CUDA_DT_F32) {
        float *o = (float *)dst;
#pragma omp parallel for schedule(static) if (m >= (1u << 16))
        for (long i = 0; i < (long)m; i++) o[i] = src[i];
    } else {
        uint16_t *o = (uint16_t *)dst;
#pragma omp parallel for schedule(static) if (m >= (1u << 16))
        for (long i = 0; i < (long)m; i++) o[i] = host_bf16(src[i]);
    }
}

static const float *up_vec(Up &u, const real *src, size_t n) {
    if (!src) return nullptr;
    u.poff = align_up(u.poff, 64);
    const size_t o = u.poff;
    u.poff += n;
    if (u.pass == 0) return nullptr;
    memcpy(u.pst.data() + o, src, n * sizeof(float));
    return u.g->pbuf + o;
}

static const void *up_mat(Up &u, const real *src, size_t n, const char *what) {
    if (!src) return nullptr;
    CudaRwkv7 *g = u.g;
    u.woff = align_up(u.woff, 256);
    const size_t o = u.woff;
    u.woff += n * g->esz;
    if (u.pass == 0) {
        if (g->dt == CUDA_DT_F16)
            for (size_t i = 0; i < n; i++)
                if (fabs(src[i]) > u.f16_max) u.f16_max = fabs(src[i]), u.f16_name = what;
        return nullptr;
    }
    char *dst = g->wbuf + o;
    if (g->dt != CUDA_DT_F16) { /* converted on the host into pinned buffers, two in flight: the copy of one
                                   overlaps the conversion of the next */
        for (size_t s = 0; s < n; s += UPLOAD_CHUNK) {
            const size_t m = std::min((size_t)UPLOAD_CHUNK, n - s);
            const int b = u.k++ & 1;
            if (u.used[b]) CUDA_CHECK(cudaEventSynchronize(u.ev[b]));
            stage_chunk(g->dt, u.pin[b], src + s, m);
            CUDA_CHECK(cudaMemcpyAsync(dst + s * g->esz, u.pin[b], m * g->esz, cudaMemcpyHostToDevice, g->st));
            CUDA_CHECK(cudaEventRecord(u.ev[b], g->st));
            u.used[b] = 1;
        }
        return dst;
    }
    for (size_t s = 0; s < n; s += UPLOAD_CHUNK) {
        const size_t m = std::min((size_t)UPLOAD_CHUNK, n - s);
        CUDA_CHECK(cudaMemcpyAsync(u.scratch, src + s, m * sizeof(float), cudaMemcpyHostToDevice, g->st));
        if (g->dt == CUDA_DT_BF16) convert_launch(g->st, (__nv_bfloat16 *)dst + s, u.scratch, m);
        else convert_launch(g->st, (__half *)dst + s, u.scratch, m);
        CUDA_CHECK(cudaStreamSynchronize(g->st)); /* the scratch is reused */
    }
    return dst;
}

static void walk(Up &u, const Rwkv7 *m) {
    CudaRwkv7 *g = u.g;
    const Rwkv7Dims &d = m->d;
    const Rwkv7Weights &W = m->w;
    const size_t C = d.C, V = d.V, F = d.F;
    g->emb = up_mat(u, W.emb, V * C, "emb.weight");
    g->ln0_w = up_vec(u, W.ln0_w, C);
    g->ln0_b = up_vec(u, W.ln0_b, C);
    for (int l = 0; l < d.L; l++) {
        const Rwkv7Layer &P = W.layer[l];
        DLayer &D = g->L[l];
        D.ln1_w = up_vec(u, P.ln1_w, C), D.ln1_b = up_vec(u, P.ln1_b, C);
        D.ln2_w = up_vec(u, P.ln2_w, C), D.ln2_b = up_vec(u, P.ln2_b, C);
        const real *mus[6] = {P.x_r, P.x_w, P.x_k, P.x_v, P.x_a, P.x_g};
        for (int i = 0; i < 6; i++) D.mu[i] = up_vec(u, mus[i], C);
        D.w0 = up_vec(u, P.w0, C), D.a0 = up_vec(u, P.a0, C), D.v0 = up_vec(u, P.v0, C);
        D.k_k = up_vec(u, P.k_k, C), D.k_a = up_vec(u, P.k_a, C), D.r_k = up_vec(u, P.r_k, C);
        D.lnx_w = up_vec(u, P.lnx_w, C), D.lnx_b = up_vec(u, P.lnx_b, C), D.f_xk = up_vec(u, P.f_xk, C);
        D.br = up_vec(u, P.br, C), D.bk = up_vec(u, P.bk, C), D.bv = up_vec(u, P.bv, C), D.bo = up_vec(u, P.bo, C);
        D.f_bk = up_vec(u, P.f_bk, F), D.f_bv = up_vec(u, P.f_bv, C);
        D.Wr = up_mat(u, P.Wr, C * C, "att.receptance.weight");
        D.Wk = up_mat(u, P.Wk, C * C, "att.key.weight");
        D.Wv = up_mat(u, P.Wv, C * C, "att.value.weight");
        D.Wo = up_mat(u, P.Wo, C * C, "att.output.weight");
        D.w1 = up_mat(u, P.w1, C * d.Dw, "att.w1"), D.w2 = up_mat(u, P.w2, C * d.Dw, "att.w2");
        D.a1 = up_mat(u, P.a1, C * d.Da, "att.a1"), D.a2 = up_mat(u, P.a2, C * d.Da, "att.a2");
        D.v1 = up_mat(u, P.v1, C * d.Dv, "att.v1"), D.v2 = up_mat(u, P.v2, C * d.Dv, "att.v2");
        D.g1 = up_mat(u, P.g1, C * d.Dg, "att.g1"), D.g2 = up_mat(u, P.g2, C * d.Dg, "att.g2");
        D.f_Wk = up_mat(u, P.f_Wk, F * C, "ffn.key.weight");
        D.f_Wv = up_mat(u, P.f_Wv, F * C, "ffn.value.weight");
    }
    g->lnout_w = up_vec(u, W.lnout_w, C), g->lnout_b = up_vec(u, W.lnout_b, C);
    g->head = up_mat(u, W.head, V * C, "head.weight");
    g->head_b = up_vec(u, W.head_b, V);
}

extern "C" CudaRwkv7 *cuda_rwkv7_create(const Rwkv7 *m, CudaDType wtype, Err *err) {
    char why[512];
    if (!cuda_available(why, sizeof why)) {
        err_set(err, "GPU: %s", why);
        return NULL;
    }
    const Rwkv7Dims &d = m->d;
    if (d.conv) {
        err_set(err, "GPU: this model has a short convolution on r, k, v (model.short_conv = %d), which the CUDA engine "
                     "does not implement; use --device cpu", d.conv);
        return NULL;
    }
    if (!wkv7_supported(d.N)) {
        err_set(err, "GPU: head size N=%d is not built (the CUDA kernels support N = 16, 32, 64); use --device cpu",
                d.N);
        return NULL;
    }
    init_wait();
    CudaRwkv7 *g = new CudaRwkv7();
    g->d = d;
    g->dt = wtype;
    g->esz = dtype_size(wtype);
    g->Dsum = d.Dw + d.Da + d.Dg + d.Dv;
    g->L.resize(d.L);
    CUDA_CHECK(cudaSetDevice(0));
    CUDA_CHECK(cudaStreamCreateWithFlags(&g->st, cudaStreamNonBlocking));
    CUBLAS_CHECK(g_cublas.create(&g->blas));
    CUBLAS_CHECK(g_cublas.set_stream(g->blas, g->st));
    CUBLAS_CHECK(g_cublas.set_math_mode(g->blas, CUBLAS_DEFAULT_MATH)); /* no TF32 in the fp32 mode */
    if (dev_alloc(&g->blas_ws, BLAS_WS_BYTES, "the cuBLAS workspace", err)) {
        cuda_rwkv7_free(g);
        return NULL;
    }
    CUBLAS_CHECK(g_cublas.set_workspace(g->blas, g->blas_ws, BLAS_WS_BYTES));
    if (dev_alloc((void **)&g->gemv_part, GEMV_SCRATCH_FLOATS * sizeof(float), "the few-row product scratch", err) ||
        dev_alloc((void **)&g->gemv_cnt, GEMV_MAX_COUNTERS * sizeof(unsigned), "the few-row product counters", err)) {
        cuda_rwkv7_free(g);
        return NULL;
    }
    CUDA_CHECK(cudaMemsetAsync(g->gemv_cnt, 0, GEMV_MAX_COUNTERS * sizeof(unsigned), g->st));

    Up u{};
    u.g = g;
    u.pass = 0;
    walk(u, m);
    if (wtype == CUDA_DT_F16 && u.f16_max > 65504.0) {
        err_set(err, "GPU: %s holds |x| = %g, beyond the fp16 range (65504): use bf16 or fp32 weights", u.f16_name,
                u.f16_max);
        cuda_rwkv7_free(g);
        return NULL;
    }
    g->wbytes = u.woff;
    g->pfloats = u.poff;
    auto up_free = [&u]() {
        if (u.scratch) CUDA_CHECK(cudaFree(u.scratch));
        for (int i = 0; i < 2; i++) {
            if (u.pin[i]) CUDA_CHECK(cudaFreeHost(u.pin[i]));
            if (u.ev[i]) CUDA_CHECK(cudaEventDestroy(u.ev[i]));
        }
    };
    bool ok = !dev_alloc((void **)&g->wbuf, g->wbytes, "the weight matrices", err) &&
              !dev_alloc((void **)&g->pbuf, g->pfloats * sizeof(float), "the weight vectors", err);
    if (ok && wtype == CUDA_DT_F16) ok = !dev_alloc((void **)&u.scratch, UPLOAD_CHUNK * sizeof(float), "upload scratch", err);
    for (int i = 0; ok && wtype != CUDA_DT_F16 && i < 2; i++) {
        cudaError_t e = cudaMallocHost(&u.pin[i], (size_t)UPLOAD_CHUNK * g->esz);
        if (e != cudaSuccess) {
            (void)cudaGetLastError();
            u.pin[i] = nullptr;
            err_set(err, "GPU: cannot allocate %zu MiB of pinned host memory for the upload (%s)",
                    ((size_t)UPLOAD_CHUNK * g->esz) >> 20, cudaGetErrorString(e));
            ok = false;
        } else {
            CUDA_CHECK(cudaEventCreateWithFlags(&u.ev[i], cudaEventDisableTiming));
        }
    }
    if (!ok) {
        up_free();
        cuda_rwkv7_free(g);
        return NULL;
    }
    u.pass = 1;
    u.woff = u.poff = 0;
    u.pst.assign(g->pfloats, 0.f);
    walk(u, m);
    CUDA_CHECK(cudaMemcpyAsync(g->pbuf, u.pst.data(), g->pfloats * sizeof(float), cudaMemcpyHostToDevice, g->st));
    CUDA_CHECK(cudaStreamSynchronize(g->st));
    up_free();
    return g;
}

extern "C" CudaRwkv7 *cuda_model_create(const Model *m, CudaDType wtype, Err *err) {
    if (m->arch != &model_rwkv7) {
        err_set(err, "GPU: the CUDA engine runs RWKV-7 models only (this one is %s); use --device cpu", m->arch->name);
        return NULL;
    }
    return cuda_rwkv7_create((const Rwkv7 *)m->self, wtype, err);
}

extern "C" void cuda_rwkv7_free(CudaRwkv7 *g) {
    if (!g) return;
    if (g->tr_a) CUDA_CHECK(cudaFree(g->tr_a));
    if (g->wbuf) CUDA_CHECK(cudaFree(g->wbuf));
    if (g->pbuf) CUDA_CHECK(cudaFree(g->pbuf));
    if (g->ws) CUDA_CHECK(cudaFree(g->ws));
    if (g->rec) CUDA_CHECK(cudaFree(g->rec));
    if (g->gemv_part) CUDA_CHECK(cudaFree(g->gemv_part));
    if (g->gemv_cnt) CUDA_CHECK(cudaFree(g->gemv_cnt));
    if (g->blas) CUBLAS_CHECK(g_cublas.destroy(g->blas));
    if (g->blas_ws) CUDA_CHECK(cudaFree(g->blas_ws));
    if (g->st) CUDA_CHECK(cudaStreamDestroy(g->st));
    delete g;
}

extern "C" const Rwkv7Dims *cuda_rwkv7_dims(const CudaRwkv7 *g) { return &g->d; }
extern "C" size_t cuda_rwkv7_weight_bytes(const CudaRwkv7 *g) { return g->wbytes + g->pfloats * sizeof(float); }
extern "C" size_t cuda_rwkv7_workspace_bytes(const CudaRwkv7 *g) { return g->ws_bytes; }

/* ---- workspace -------------------------------------------------------------------------------- */
/* carve (base NULL: count) the workspace for R rows, O head rows, B sequences; returns its bytes */
static size_t ws_layout(const CudaRwkv7 *g, Ws *w, char *base, long R, int O, int B) {
    size_t off = 0;
    auto take = [&](size_t bytes) -> void * {
        off = align_up(off, 256);
        void *p = base ? base + off : nullptr;
        off += bytes;
        return p;
    };
    const size_t C = g->d.C, F = g->d.F, V = g->d.V, e = g->esz, f = sizeof(float), Ds = g->Dsum;
    w->tok = (int *)take(R * sizeof(int));
    w->row_seq = (int *)take(R * sizeof(int));
    w->seq_off = (int *)take((B + 1) * sizeof(int));
    w->out_rows = (int *)take(O * sizeof(int));
    w->targets = (int *)take(O * sizeof(int));
    w->greedy = (int *)take(O * sizeof(int));
    float **f32[] = {&w->x, &w->r, &w->k, &w->v, &w->wl, &w->al, &w->vl, &w->gg, &w->kk, &w->vfirst, &w->y};
    for (float **p : f32) *p = (float *)take(R * C * f);
    w->hf = (float *)take(R * Ds * f);
    w->fk = (float *)take(R * F * f);
    w->logits = (float *)take((size_t)O * V * f);
    w->lp = (float *)take(O * f);
    /* mixes r, k, v adjacent and equally spaced (one strided-batched product), then w, a, g */
    const int mix_order[6] = {0, 2, 3, 1, 4, 5};
    for (int i = 0; i < 6; i++) w->xm[mix_order[i]] = take(R * C * e);
    w->yg = take(R * C * e);
    w->fxk = take(R * C * e);
    w->hT = take(R * Ds * e);
    w->fr = take(R * F * e);
    w->lnf = take((size_t)O * C * e);
    return off;
}

static int ws_ensure(CudaRwkv7 *g, long R, int O, int B, Err *err) {
    if (R <= g->cap_R && O <= g->cap_out && B <= g->cap_B && g->ws) return 0;
    const long nR = std::max(R, g->cap_R);
    const int nO = std::max(std::max(O, g->cap_out), 1), nB = std::max(B, g->cap_B);
    if (g->ws) CUDA_CHECK(cudaFree(g->ws));
    g->ws = nullptr, g->ws_bytes = 0, g->cap_R = 0, g->cap_out = 0, g->cap_B = 0;
    const size_t bytes = ws_layout(g, &g->w, nullptr, nR, nO, nB);
    char what[160];
    snprintf(what, sizeof what, "the activations of %ld tokens (%d head rows, %d sequences)", nR, nO, nB);
    if (dev_alloc((void **)&g->ws, bytes, what, err)) return -1;
    ws_layout(g, &g->w, g->ws, nR, nO, nB);
    g->ws_bytes = bytes, g->cap_R = nR, g->cap_out = nO, g->cap_B = nB;
    g->ws_gen++;
    return 0;
}

/* ---- states ----------------------------------------------------------------------------------- */
/* (re)size s to B sequences (contents undefined when it grows); captured graphs of s are dropped */
static void decode_release(CudaRwkv7State *s);
static int state_reserve(CudaRwkv7State *s, int B, Err *err) {
    const size_t numel = rwkv7_state_numel(&s->g->d, B);
    if (numel > s->cap) {
        decode_release(s);
        if (s->cur) CUDA_CHECK(cudaFree(s->cur));
        if (s->spare) CUDA_CHECK(cudaFree(s->spare));
        s->cur = s->spare = nullptr, s->cap = 0;
        if (dev_alloc((void **)&s->cur, numel * sizeof(float), "a recurrent state", err) ||
            dev_alloc((void **)&s->spare, numel * sizeof(float), "a recurrent state", err))
            return -1;
        s->cap = numel;
    }
    if (B > s->idx_cap) {
        if (s->d_idx) CUDA_CHECK(cudaFree(s->d_idx));
        s->d_idx = nullptr, s->idx_cap = 0;
        if (dev_alloc((void **)&s->d_idx, (size_t)B * sizeof(int), "state gather indices", err)) return -1;
        s->idx_cap = B;
    }
    if (B != s->B) decode_release(s);
    s->B = B, s->numel = numel;
    return 0;
}

extern "C" CudaRwkv7State *cuda_rwkv7_state_create(CudaRwkv7 *g, int B, Err *err) {
    if (B < 1) {
        err_set(err, "GPU state: need B >= 1 sequences (got %d)", B);
        return NULL;
    }
    CudaRwkv7State *s = new CudaRwkv7State();
    s->g = g;
    if (state_reserve(s, B, err)) {
        cuda_rwkv7_state_free(s);
        return NULL;
    }
    cuda_rwkv7_state_zero(s);
    return s;
}
extern "C" void cuda_rwkv7_state_free(CudaRwkv7State *s) {
    if (!s) return;
    decode_release(s);
    if (s->cur) CUDA_CHECK(cudaFree(s->cur));
    if (s->spare) CUDA_CHECK(cudaFree(s->spare));
    if (s->d_idx) CUDA_CHECK(cudaFree(s->d_idx));
    delete s;
}
extern "C" int cuda_rwkv7_state_batch(const CudaRwkv7State *s) { return s->B; }
extern "C" void cuda_rwkv7_state_zero(CudaRwkv7State *s) {
    CUDA_CHECK(cudaMemsetAsync(s->cur, 0, s->numel * sizeof(float), s->g->st));
    CUDA_CHECK(cudaStreamSynchronize(s->g->st));
}
/* all device work of a model runs on its own (non-blocking) stream, transfers included */
extern "C" void cuda_rwkv7_state_upload(CudaRwkv7State *s, const float *host) {
    CUDA_CHECK(cudaMemcpyAsync(s->cur, host, s->numel * sizeof(float), cudaMemcpyHostToDevice, s->g->st));
    CUDA_CHECK(cudaStreamSynchronize(s->g->st));
}
extern "C" void cuda_rwkv7_state_download(const CudaRwkv7State *s, float *host) {
    CUDA_CHECK(cudaMemcpyAsync(host, s->cur, s->numel * sizeof(float), cudaMemcpyDeviceToHost, s->g->st));
    CUDA_CHECK(cudaStreamSynchronize(s->g->st));
}
extern "C" int cuda_rwkv7_state_copy_seq(CudaRwkv7State *dst, int db, const CudaRwkv7State *src, int sb, Err *err) {
    if (dst->g != src->g || db < 0 || db >= dst->B || sb < 0 || sb >= src->B)
        return err_set(err, "GPU state copy: sequence %d of %d -> %d of %d (or states of different models)", sb, src->B,
                       db, dst->B);
    const Rwkv7Dims *d = &dst->g->d;
    const size_t C = d->C, S = (size_t)d->H * d->N * d->N;
    for (int l = 0; l < d->L; l++) {
        float *D = rwkv7_state_att_prev(d, dst->cur, dst->B, l);
        float *Sr = rwkv7_state_att_prev(d, src->cur, src->B, l);
        const size_t part[3][3] = {{0, 0, C}, {(size_t)dst->B * C, (size_t)src->B * C, S},
                                   {(size_t)dst->B * (C + S), (size_t)src->B * (C + S), C}};
        for (int p = 0; p < 3; p++) {
            const size_t n = part[p][2];
            CUDA_CHECK(cudaMemcpyAsync(D + part[p][0] + db * n, Sr + part[p][1] + sb * n, n * sizeof(float),
                                       cudaMemcpyDeviceToDevice, dst->g->st));
        }
    }
    CUDA_CHECK(cudaStreamSynchronize(dst->g->st));
    return 0;
}
extern "C" int cuda_rwkv7_state_gather(CudaRwkv7State *dst, const CudaRwkv7State *src, const int *idx, Err *err) {
    if (dst->g != src->g) return err_set(err, "GPU state gather: the states belong to different models");
    if (dst == src || dst->cur == src->cur) return err_set(err, "GPU state gather: source and destination are the same state");
    for (int j = 0; j < dst->B; j++)
        if (idx[j] < 0 || idx[j] >= src->B)
            return err_set(err, "GPU state gather: index %d = %d is outside the source's %d sequences", j, idx[j], src->B);
    const Rwkv7Dims *d = &dst->g->d;
    cudaStream_t st = dst->g->st;
    CUDA_CHECK(cudaMemcpyAsync(dst->d_idx, idx, dst->B * sizeof(int), cudaMemcpyHostToDevice, st));
    state_gather_launch(st, dst->cur, src->cur, dst->d_idx, dst->B, src->B, d->L, d->C, d->H * d->N * d->N);
    CUDA_CHECK(cudaStreamSynchronize(st)); /* idx is the caller's (pageable) memory */
    return 0;
}

/* ---- profiling ---------------------------------------------------------------------------------- */
static void prof_mark(CudaRwkv7 *g, const char *label) {
    Prof &p = g->prof;
    if (!p.on) return;
    if (p.n == p.ev.size()) {
        cudaEvent_t e;
        CUDA_CHECK(cudaEventCreate(&e));
        p.ev.push_back(e);
        p.lab.push_back(label);
    }
    p.lab[p.n] = label;
    CUDA_CHECK(cudaEventRecord(p.ev[p.n++], g->st));
}
/* after the stream is synchronised: add each stage's time to its label */
static void prof_collect(CudaRwkv7 *g) {
    Prof &p = g->prof;
    if (!p.on) return;
    for (size_t i = 1; i < p.n; i++) {
        float ms = 0;
        CUDA_CHECK(cudaEventElapsedTime(&ms, p.ev[i - 1], p.ev[i]));
        size_t k = 0;
        while (k < p.acc.size() && strcmp(p.acc[k].first, p.lab[i])) k++;
        if (k == p.acc.size()) p.acc.push_back({p.lab[i], 0.0});
        p.acc[k].second += ms;
    }
    p.n = 0;
    p.calls++;
}
extern "C" void cuda_rwkv7_profile(CudaRwkv7 *g, int on) {
    g->prof.on = on != 0;
    g->prof.n = 0;
    g->prof.acc.clear();
    g->prof.calls = 0;
}
extern "C" void cuda_rwkv7_profile_print(CudaRwkv7 *g, FILE *f) {
    Prof &p = g->prof;
    double tot = 0;
    for (auto &a : p.acc) tot += a.second;
    std::vector<std::pair<const char *, double>> v = p.acc;
    std::sort(v.begin(), v.end(), [](const auto &a, const auto &b) { return a.second > b.second; });
    fprintf(f, "  stage times over %ld forward calls (%.2f ms per call):\n", p.calls, tot / (p.calls ? p.calls : 1));
    for (auto &a : v)
        fprintf(f, "    %-24s %9.3f ms per call  %5.1f%%\n", a.first, a.second / (p.calls ? p.calls : 1),
                100 * a.second / (tot > 0 ? tot : 1));
    p.acc.clear();
    p.calls = 0;
}

/* ---- matrix products (row-major operands; cuBLAS sees them transposed) -------------------------- */
/* out(R,NO) (ld ldo) = in(R,NI) (ld ldi) @ W(NO,NI)^T + beta * out   -- PyTorch Linear */
/* the few-row kernel (cuda_gemv.cu) for R <= 8 rows (decoding), unless RWKVLAB_GEMV=0; 0 when it ran */
template <typename T>
static int gemv_t(CudaRwkv7 *g, int n, float *const *out, int ldo, const void *const *in, int ldi, const void *const *W,
                  int R, int NI, int NO, float beta) {
    GemvJobs<T> j{};
    for (int i = 0; i < n; i++) j.out[i] = out[i], j.in[i] = (const T *)in[i], j.W[i] = (const T *)W[i];
    return gemv_lin_launch<T>(g->st, j, n, ldo, ldi, R, NI, NO, beta);
}
static int gemv(CudaRwkv7 *g, int n, float *const *out, int ldo, const void *const *in, int ldi, const void *const *W,
                int R, int NI, int NO, float beta) {
    static const int on = !env_off("RWKVLAB_GEMV");
    if (!on || R > 8) return -1;
    switch (g->dt) {
    case CUDA_DT_BF16: return gemv_t<__nv_bfloat16>(g, n, out, ldo, in, ldi, W, R, NI, NO, beta);
    case CUDA_DT_F16: return gemv_t<__half>(g, n, out, ldo, in, ldi, W, R, NI, NO, beta);
    default: return gemv_t<float>(g, n, out, ldo, in, ldi, W, R, NI, NO, beta);
    }
}
static void gemm_lin(CudaRwkv7 *g, float *out, int ldo, const void *in, int ldi, const void *W, int R, int NI, int NO,
                     float beta) {
    if (!gemv(g, 1, &out, ldo, &in, ldi, &W, R, NI, NO, beta)) return;
    const float one = 1.f;
    const cudaDataType_t t = cu_type(g->dt);
    CUBLAS_CHECK(g_cublas.gemm_ex(g->blas, CUBLAS_OP_T, CUBLAS_OP_N, NO, R, NI, &one, W, t, NI, in, t, ldi, &beta, out,
                                  CUDA_R_32F, ldo, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}
/* out(R,NO) = in(R,NI) @ W(NI,NO)   -- LoRA factors */
static void gemm_mat(CudaRwkv7 *g, float *out, int ldo, const void *in, int ldi, const void *W, int R, int NI, int NO) {
    const float one = 1.f, zero = 0.f;
    const cudaDataType_t t = cu_type(g->dt);
    CUBLAS_CHECK(g_cublas.gemm_ex(g->blas, CUBLAS_OP_N, CUBLAS_OP_N, NO, R, NI, &one, W, t, NO, in, t, ldi, &zero, out,
                                  CUDA_R_32F, ldo, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}
/* r, k, v = Wr xr, Wk xk, Wv xv (C x C each): one strided-batched product when the three inputs, weights and
 * outputs are equally spaced (ws_layout and the upload order make them so), else three products */
static void gemm_rkv(CudaRwkv7 *g, float *const out[3], const void *const in[3], const void *const W[3], int R, int C) {
    if (!gemv(g, 3, out, C, in, C, W, R, C, C, 0.f)) return;
    static const int batched = !env_off("RWKVLAB_CUDA_BATCHED");
    const long long e = (long long)g->esz;
    auto gap = [](const void *a, const void *b) { return (long long)((const char *)b - (const char *)a); };
    const long long so = gap(out[0], out[1]), si = gap(in[0], in[1]), sw = gap(W[0], W[1]);
    if (batched && so == gap(out[1], out[2]) && si == gap(in[1], in[2]) && sw == gap(W[1], W[2]) && so > 0 &&
        si > 0 && sw > 0 && so % 4 == 0 && si % e == 0 && sw % e == 0) {
        const float one = 1.f, zero = 0.f;
        const cudaDataType_t t = cu_type(g->dt);
        CUBLAS_CHECK(g_cublas.gemm_strided_batched_ex(g->blas, CUBLAS_OP_T, CUBLAS_OP_N, C, R, C, &one, W[0], t, C,
                                                      sw / e, in[0], t, C, si / e, &zero, out[0], CUDA_R_32F, C, so / 4,
                                                      3, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        return;
    }
    for (int i = 0; i < 3; i++) gemm_lin(g, out[i], C, in[i], C, W[i], R, C, C, 0.f);
}

/* ---- forward ---------------------------------------------------------------------------------- */
template <typename T>
static void layers_t(CudaRwkv7 *g, int R, int B, int max_len, const float *sin, float *sout) {
    const Rwkv7Dims &d = g->d;
    const int C = d.C, H = d.H, N = d.N, F = d.F, Dw = d.Dw, Da = d.Da, Dv = d.Dv, Dg = d.Dg, Ds = g->Dsum;
    const size_t Ls = (size_t)B * (2 * (size_t)C + (size_t)H * N * N), BC = (size_t)B * C, BS = (size_t)B * H * N * N;
    Ws &w = g->w;
    cudaStream_t st = g->st;
    /* the WKV7 form for this batch; the chunked one needs its scratch (if that cannot be had: sequential) */
    const char *wcfg = wkv7_pick(N, B, max_len, H);
    const size_t nrec = wkv7_chunk_floats(wcfg, N, B, max_len, H);
    float *rec = nullptr;
    if (wcfg[0] == 'C' && nrec) {
        if (nrec > g->rec_floats) {
            if (g->rec) CUDA_CHECK(cudaFree(g->rec));
            g->rec = nullptr, g->rec_floats = 0;
            if (cudaMalloc((void **)&g->rec, nrec * sizeof(float)) == cudaSuccess) g->rec_floats = nrec;
            else g->rec = nullptr, (void)cudaGetLastError();
        }
        rec = g->rec;
    }
    embed_launch<T>(st, w.x, w.tok, (const T *)g->emb, g->ln0_w, g->ln0_b, R, C);
    prof_mark(g, "embedding");
    T *xr = (T *)w.xm[0], *xw = (T *)w.xm[1], *xk = (T *)w.xm[2], *xv = (T *)w.xm[3], *xa = (T *)w.xm[4],
      *xg = (T *)w.xm[5], *hT = (T *)w.hT, *yg = (T *)w.yg, *fxk = (T *)w.fxk, *fr = (T *)w.fr;
    for (int l = 0; l < d.L; l++) {
        const DLayer &P = g->L[l];
        const float *att_in = sin ? sin + l * Ls : nullptr;
        float *att_out = sout ? sout + l * Ls : nullptr;
        const float *wkv_in = att_in ? att_in + BC : nullptr, *ffn_in = att_in ? att_in + BC + BS : nullptr;
        float *wkv_out = att_out ? att_out + BC : nullptr, *ffn_out = att_out ? att_out + BC + BS : nullptr;
        // ---- TimeMix: ln1, token shift, the six mixes
        MixOut mo{};
        for (int i = 0; i < 6; i++) mo.mu[i] = P.mu[i], mo.out[i] = w.xm[i];
        mo.n = 6;
        shift_mix_launch<T>(st, w.x, P.ln1_w, P.ln1_b, w.row_seq, w.seq_off, att_in, att_out, mo, R, C);
        prof_mark(g, "ln1+shift+mix");
        {
            float *const o3[3] = {w.r, w.k, w.v};
            const void *const i3[3] = {xr, xk, xv}, *const w3[3] = {P.Wr, P.Wk, P.Wv};
            gemm_rkv(g, o3, i3, w3, R, C);
        }
        if (P.br) add_bias_launch(st, w.r, P.br, R, C);
        if (P.bk) add_bias_launch(st, w.k, P.bk, R, C);
        if (P.bv) add_bias_launch(st, w.v, P.bv, R, C);
        prof_mark(g, "gemm r,k,v");
        // LoRAs: hidden columns [w | a | g | v]; v only from layer 1 on (layer 0 defines v_first)
        {
            const int nl = l > 0 ? 4 : 3;
            GemvMatJobs<T> j1{}, j2{};
            float *o1[4] = {w.hf, w.hf + Dw, w.hf + Dw + Da, w.hf + Dw + Da + Dg}, *o2[4] = {w.wl, w.al, w.gg, w.vl};
            const T *i1[4] = {xw, xa, xg, xv}, *i2[4] = {hT, hT + Dw, hT + Dw + Da, hT + Dw + Da + Dg};
            const void *W1[4] = {P.w1, P.a1, P.g1, P.v1}, *W2[4] = {P.w2, P.a2, P.g2, P.v2};
            const int D[4] = {Dw, Da, Dg, Dv};
            for (int q = 0; q < nl; q++) {
                j1.j[q] = {o1[q], i1[q], (const T *)W1[q], Ds, C, C, D[q], 0, 0};
                j2.j[q] = {o2[q], i2[q], (const T *)W2[q], C, Ds, D[q], C, 0, 0};
            }
            j1.part = j2.part = g->gemv_part, j1.cnt = j2.cnt = g->gemv_cnt;
            /* few rows (decoding): own kernels, one launch for the four products of each stage */
            const int few = R <= 8 && !env_off("RWKVLAB_GEMV");
            if (!few || gemv_mat_launch<T>(st, j1, nl, R))
                for (int q = 0; q < nl; q++) gemm_mat(g, o1[q], Ds, i1[q], C, W1[q], R, C, D[q]);
            lora_act_launch<T>(st, hT, w.hf, R, Ds, Dw, Da, Dg, l > 0 ? Dv : 0);
            if (!few || gemv_mat_launch<T>(st, j2, nl, R))
                for (int q = 0; q < nl; q++) gemm_mat(g, o2[q], C, i2[q], Ds, W2[q], R, D[q], C);
        }
        prof_mark(g, "LoRA w,a,g,v");
        // decay, in-context rate, kk, replacement key, value residual; then the recurrence
        wkv_prep_launch(st, N, w.wl, w.al, w.k, w.kk, w.v, w.vfirst, l > 0 ? w.vl : nullptr, P.w0, P.a0, P.v0, P.k_k,
                        P.k_a, R, C, H, d.extended, g->tr_a);
        if (g->tr_a) { /* tracing (one token per call): this layer's rows to the host arrays */
            const size_t o = ((size_t)l * g->tr_T + g->tr_t) * C, bytes = (size_t)C * sizeof(float);
            const float *src[4] = {w.wl, w.kk, w.al, g->tr_a};
            float *dst[4] = {g->tr_w, g->tr_kk, g->tr_b, g->tr_ah};
            for (int q = 0; q < 4; q++)
                if (dst[q]) CUDA_CHECK(cudaMemcpyAsync(dst[q] + o, src[q], bytes, cudaMemcpyDeviceToHost, st));
        }
        prof_mark(g, "wkv prep");
        wkv7_launch(st, N, wcfg, rec, w.y, w.r, w.wl, w.k, w.v, w.kk, w.al, w.seq_off, B, max_len, wkv_in, wkv_out, C, H);
        prof_mark(g, "wkv7 recurrence");
        gn_bonus_gate_launch<T>(st, N, yg, w.y, w.r, w.k, w.v, w.gg, P.lnx_w, P.lnx_b, P.r_k, R, C, H);
        prof_mark(g, "groupnorm+bonus+gate");
        gemm_lin(g, w.x, C, yg, C, P.Wo, R, C, C, 1.f); /* x += Wo (y * g) */
        if (P.bo) add_bias_launch(st, w.x, P.bo, R, C);
        prof_mark(g, "gemm output");
        // ---- ChannelMix
        MixOut mf{};
        mf.mu[0] = P.f_xk, mf.out[0] = fxk, mf.n = 1;
        shift_mix_launch<T>(st, w.x, P.ln2_w, P.ln2_b, w.row_seq, w.seq_off, ffn_in, ffn_out, mf, R, C);
        prof_mark(g, "ln2+shift+mix");
        gemm_lin(g, w.fk, F, fxk, C, P.f_Wk, R, C, F, 0.f);
        prof_mark(g, "gemm ffn key");
        relu2_launch<T>(st, fr, w.fk, P.f_bk, R, F);
        prof_mark(g, "relu^2");
        gemm_lin(g, w.x, C, fr, F, P.f_Wv, R, F, C, 1.f); /* x += f_Wv relu(f_Wk xk)^2 */
        if (P.f_bv) add_bias_launch(st, w.x, P.f_bv, R, C);
        prof_mark(g, "gemm ffn value");
    }
}

template <typename T>
static void head_t(CudaRwkv7 *g, int n) {
    Ws &w = g->w;
    const int C = g->d.C, V = g->d.V;
    ln_gather_launch<T>(g->st, (T *)w.lnf, w.x, w.out_rows, g->lnout_w, g->lnout_b, n, C);
    gemm_lin(g, w.logits, V, w.lnf, C, g->head, n, C, V, 0.f);
    if (g->head_b) add_bias_launch(g->st, w.logits, g->head_b, n, V);
    prof_mark(g, "head (ln_out + gemm)");
}

extern "C" int cuda_rwkv7_forward(CudaRwkv7 *g, const CudaRwkv7Batch *bt, Err *err) {
    const Rwkv7Dims &d = g->d;
    const int B = bt->B;
    if (B < 1 || !bt->lens || !bt->tokens) return err_set(err, "GPU forward: need B >= 1 sequences with lens and tokens");
    if (bt->state && bt->state->B != B)
        return err_set(err, "GPU forward: the state holds %d sequences but the batch has %d", bt->state->B, B);
    if (bt->state && bt->state->g != g) return err_set(err, "GPU forward: the state belongs to another model");
    long R = 0;
    int max_len = 0;
    for (int b = 0; b < B; b++) {
        if (bt->lens[b] < 1) return err_set(err, "GPU forward: sequence %d has %d tokens (need >= 1)", b, bt->lens[b]);
        R += bt->lens[b];
        max_len = std::max(max_len, bt->lens[b]);
    }
    if (R > INT_MAX / 2) return err_set(err, "GPU forward: %ld tokens in one batch (at most %d)", R, INT_MAX / 2);
    for (long i = 0; i < R; i++)
        if (bt->tokens[i] < 0 || bt->tokens[i] >= d.V)
            return err_set(err, "GPU forward: token %d at packed position %ld is outside the vocabulary [0,%d)",
                           bt->tokens[i], i, d.V);
    const int nout = bt->nout;
    if (nout < 0 || (nout > 0 && !bt->out_rows)) return err_set(err, "GPU forward: nout=%d without out_rows", nout);
    for (int o = 0; o < nout; o++) {
        if (bt->out_rows[o] < 0 || bt->out_rows[o] >= R)
            return err_set(err, "GPU forward: out_rows[%d] = %d is outside the %ld packed rows", o, bt->out_rows[o], R);
        if (bt->targets && (bt->targets[o] < 0 || bt->targets[o] >= d.V))
            return err_set(err, "GPU forward: targets[%d] = %d is outside the vocabulary [0,%d)", o, bt->targets[o], d.V);
    }
    if (bt->targets && (!bt->logprob || !bt->greedy))
        return err_set(err, "GPU forward: targets given without logprob and greedy outputs");
    const int ochunk = std::min(nout, HEAD_CHUNK);
    if (ws_ensure(g, R, ochunk, B, err)) return -1;

    std::vector<int> row_seq(R), seq_off(B + 1);
    seq_off[0] = 0;
    for (int b = 0; b < B; b++) {
        seq_off[b + 1] = seq_off[b] + bt->lens[b];
        for (int t = seq_off[b]; t < seq_off[b + 1]; t++) row_seq[t] = b;
    }
    Ws &w = g->w;
    cudaStream_t st = g->st;
    prof_mark(g, "(host)");
    CUDA_CHECK(cudaMemcpyAsync(w.tok, bt->tokens, R * sizeof(int), cudaMemcpyHostToDevice, st));
    CUDA_CHECK(cudaMemcpyAsync(w.row_seq, row_seq.data(), R * sizeof(int), cudaMemcpyHostToDevice, st));
    CUDA_CHECK(cudaMemcpyAsync(w.seq_off, seq_off.data(), (B + 1) * sizeof(int), cudaMemcpyHostToDevice, st));
    prof_mark(g, "token/row uploads");
    const float *sin = bt->state ? bt->state->cur : nullptr;
    float *sout = bt->state ? bt->state->spare : nullptr;
    switch (g->dt) {
    case CUDA_DT_BF16: layers_t<__nv_bfloat16>(g, (int)R, B, max_len, sin, sout); break;
    case CUDA_DT_F16: layers_t<__half>(g, (int)R, B, max_len, sin, sout); break;
    default: layers_t<float>(g, (int)R, B, max_len, sin, sout); break;
    }
    for (int o0 = 0; o0 < nout; o0 += HEAD_CHUNK) {
        const int n = std::min(HEAD_CHUNK, nout - o0);
        CUDA_CHECK(cudaMemcpyAsync(w.out_rows, bt->out_rows + o0, n * sizeof(int), cudaMemcpyHostToDevice, st));
        switch (g->dt) {
        case CUDA_DT_BF16: head_t<__nv_bfloat16>(g, n); break;
        case CUDA_DT_F16: head_t<__half>(g, n); break;
        default: head_t<float>(g, n); break;
        }
        if (bt->logits)
            CUDA_CHECK(cudaMemcpyAsync(bt->logits + (size_t)o0 * d.V, w.logits, (size_t)n * d.V * sizeof(float),
                                       cudaMemcpyDeviceToHost, st));
        if (bt->targets) {
            CUDA_CHECK(cudaMemcpyAsync(w.targets, bt->targets + o0, n * sizeof(int), cudaMemcpyHostToDevice, st));
            logsoftmax_gather_launch(st, w.logits, w.targets, w.lp, w.greedy, n, d.V);
            CUDA_CHECK(cudaMemcpyAsync(bt->logprob + o0, w.lp, n * sizeof(float), cudaMemcpyDeviceToHost, st));
            CUDA_CHECK(cudaMemcpyAsync(bt->greedy + o0, w.greedy, n * sizeof(int), cudaMemcpyDeviceToHost, st));
        }
        prof_mark(g, "log-softmax + copies");
        CUDA_CHECK(cudaStreamSynchronize(st)); /* host buffers and the next chunk's out_rows */
    }
    CUDA_CHECK(cudaStreamSynchronize(st));
    prof_collect(g);
    if (bt->state) std::swap(bt->state->cur, bt->state->spare);
    return 0;
}

/* ---- LM-eval scoring -------------------------------------------------------------------------- */
/* One packed forward with per-row targets; lp/gr get one value per out row. */
static int score_forward(CudaRwkv7 *g, std::vector<int> &lens, std::vector<int> &toks, std::vector<int> &rows,
                         std::vector<int> &tg, CudaRwkv7State *state, std::vector<float> &lp, std::vector<int> &gr,
                         CudaScoreStats &stats, Err *err) {
    lp.assign(rows.size(), 0.f);
    gr.assign(rows.size(), 0);
    CudaRwkv7Batch bt{};
    bt.B = (int)lens.size(), bt.lens = lens.data(), bt.tokens = toks.data(), bt.state = state;
    bt.nout = (int)rows.size(), bt.out_rows = rows.data(), bt.targets = tg.data();
    bt.logprob = lp.data(), bt.greedy = gr.data();
    if (cuda_rwkv7_forward(g, &bt, err)) return -1;
    stats.forwards++, stats.rows += (long)toks.size(), stats.head_rows += (long)rows.size();
    return 0;
}

static bool same_context(const CudaLmRequest &a, const CudaLmRequest &b) {
    return a.nctx == b.nctx && !memcmp(a.tokens, b.tokens, (size_t)a.nctx * sizeof(int));
}

extern "C" int cuda_rwkv7_score_ex(CudaRwkv7 *g, const CudaLmRequest *req, int n, const CudaScoreOpts *opt,
                                   double *logprob, int *greedy, CudaScoreStats *stats_out, Err *err) {
    const int V = g->d.V;
    CudaScoreOpts o = opt ? *opt : CudaScoreOpts{};
    const long max_tokens = o.max_tokens > 0 ? o.max_tokens : 65536;
    const int max_seqs = o.max_seqs > 0 ? o.max_seqs : INT_MAX;
    CudaScoreStats stats{};
    for (int i = 0; i < n; i++) {
        const CudaLmRequest &q = req[i];
        if (q.nctx < 1 || q.ntok <= q.nctx)
            return err_set(err, "GPU score: request %d has %d context and %d continuation tokens (need >= 1 each)", i,
                           q.nctx, q.ntok - q.nctx);
        for (int t = 0; t < q.ntok; t++)
            if (q.tokens[t] < 0 || q.tokens[t] >= V)
                return err_set(err, "GPU score: request %d token %d = %d is outside the vocabulary [0,%d)", i, t,
                               q.tokens[t], V);
    }
    /* groups of consecutive requests with the same context: [gs[k], gs[k+1]) */
    std::vector<int> gs;
    for (int i = 0; i < n; i++)
        if (i == 0 || !o.share || !same_context(req[i - 1], req[i])) gs.push_back(i);
    gs.push_back(n);
    std::vector<int> singles, groups;
    for (size_t k = 0; k + 1 < gs.size(); k++) {
        if (gs[k + 1] - gs[k] == 1) singles.push_back(gs[k]);
        else groups.push_back((int)k), stats.groups++, stats.grouped += gs[k + 1] - gs[k];
    }
    std::vector<int> toks, lens, rows, tg, gr;
    std::vector<float> lp;

    /* 1. requests alone: longest first (batches of similar lengths finish their recurrence together); the
     * last token predicts nothing scored and is not fed */
    std::stable_sort(singles.begin(), singles.end(), [&](int a, int b) { return req[a].ntok > req[b].ntok; });
    for (size_t s0 = 0; s0 < singles.size();) {
        long R = 0;
        size_t e = s0;
        while (e < singles.size() && (e == s0 || (R + req[singles[e]].ntok - 1 <= max_tokens && (long)(e - s0) < max_seqs)))
            R += req[singles[e++]].ntok - 1;
        toks.clear(), lens.clear(), rows.clear(), tg.clear();
        long row = 0;
        for (size_t k = s0; k < e; k++) {
            const CudaLmRequest &q = req[singles[k]];
            toks.insert(toks.end(), q.tokens, q.tokens + q.ntok - 1);
            lens.push_back(q.ntok - 1);
            for (int t = q.nctx; t < q.ntok; t++) rows.push_back((int)(row + t - 1)), tg.push_back(q.tokens[t]);
            row += q.ntok - 1;
        }
        if (score_forward(g, lens, toks, rows, tg, NULL, lp, gr, stats, err)) return -1;
        size_t oi = 0;
        for (size_t k = s0; k < e; k++) {
            const int i = singles[k];
            double sum = 0;
            int all = 1;
            for (int t = req[i].nctx; t < req[i].ntok; t++, oi++) sum += lp[oi], all &= gr[oi];
            logprob[i] = sum, greedy[i] = all;
        }
        s0 = e;
    }

    /* 2. shared contexts: a packed batch of contexts (their states kept, the head at each context's last row
     * once per choice), then the choices' continuations from copies of those states */
    if (groups.empty()) {
        if (stats_out) *stats_out = stats;
        return 0;
    }
    const size_t seq_bytes = rwkv7_state_numel(&g->d, 1) * sizeof(float) * 2; /* cur + spare */
    const size_t budget = o.state_bytes ? o.state_bytes : (size_t)4 << 30;
    const long half = std::max(1L, (long)(budget / seq_bytes / 2));
    std::stable_sort(groups.begin(), groups.end(), [&](int a, int b) { return req[gs[a]].nctx > req[gs[b]].nctx; });
    CudaRwkv7State *cs = new CudaRwkv7State(), *qs = new CudaRwkv7State();
    cs->g = qs->g = g;
    int rc = -1;
    std::vector<int> mem, slot, idx;
    for (size_t s0 = 0; s0 < groups.size();) {
        long R = 0;
        size_t e = s0;
        while (e < groups.size() && (e == s0 || (R + req[gs[groups[e]]].nctx <= max_tokens && (long)(e - s0) < max_seqs &&
                                                 (long)(e - s0) < half)))
            R += req[gs[groups[e++]]].nctx;
        toks.clear(), lens.clear(), rows.clear(), tg.clear(), mem.clear(), slot.clear();
        long row = 0;
        for (size_t k = s0; k < e; k++) {
            const int k0 = gs[groups[k]], k1 = gs[groups[k] + 1];
            const CudaLmRequest &q = req[k0];
            toks.insert(toks.end(), q.tokens, q.tokens + q.nctx);
            lens.push_back(q.nctx);
            row += q.nctx;
            for (int i = k0; i < k1; i++) {
                rows.push_back((int)(row - 1)), tg.push_back(req[i].tokens[q.nctx]);
                mem.push_back(i), slot.push_back((int)(k - s0));
            }
        }
        if (state_reserve(cs, (int)(e - s0), err)) goto out;
        cuda_rwkv7_state_zero(cs);
        if (score_forward(g, lens, toks, rows, tg, cs, lp, gr, stats, err)) goto out;
        for (size_t j = 0; j < mem.size(); j++) logprob[mem[j]] = lp[j], greedy[mem[j]] = gr[j];
        /* continuations of two or more tokens: sub-batches within the row, sequence and state limits */
        std::vector<int> cm, cslot;
        for (size_t j = 0; j < mem.size(); j++)
            if (req[mem[j]].ntok - req[mem[j]].nctx >= 2) cm.push_back(mem[j]), cslot.push_back(slot[j]);
        for (size_t c0 = 0; c0 < cm.size();) {
            long Rc = 0;
            size_t c1 = c0;
            auto clen = [&](size_t j) { return (long)(req[cm[j]].ntok - req[cm[j]].nctx - 1); };
            while (c1 < cm.size() && (c1 == c0 || (Rc + clen(c1) <= max_tokens && (long)(c1 - c0) < max_seqs &&
                                                   (long)(c1 - c0) < half)))
                Rc += clen(c1++);
            toks.clear(), lens.clear(), rows.clear(), tg.clear(), idx.clear();
            long r2 = 0;
            for (size_t j = c0; j < c1; j++) {
                const CudaLmRequest &q = req[cm[j]];
                const int nc = q.ntok - q.nctx;
                toks.insert(toks.end(), q.tokens + q.nctx, q.tokens + q.ntok - 1);
                lens.push_back(nc - 1);
                for (int t = 0; t < nc - 1; t++) rows.push_back((int)(r2 + t)), tg.push_back(q.tokens[q.nctx + 1 + t]);
                r2 += nc - 1;
                idx.push_back(cslot[j]);
            }
            if (state_reserve(qs, (int)(c1 - c0), err) || cuda_rwkv7_state_gather(qs, cs, idx.data(), err) ||
                score_forward(g, lens, toks, rows, tg, qs, lp, gr, stats, err))
                goto out;
            size_t oi = 0;
            for (size_t j = c0; j < c1; j++) {
                const int i = cm[j];
                double sum = logprob[i]; /* the first continuation token's, from the context pass */
                int all = greedy[i];
                for (int t = req[i].nctx + 1; t < req[i].ntok; t++, oi++) sum += lp[oi], all &= gr[oi];
                logprob[i] = sum, greedy[i] = all;
            }
            c0 = c1;
        }
        s0 = e;
    }
    rc = 0;
out:
    cuda_rwkv7_state_free(cs);
    cuda_rwkv7_state_free(qs);
    if (rc == 0 && stats_out) *stats_out = stats;
    return rc;
}

extern "C" int cuda_rwkv7_score(CudaRwkv7 *g, const CudaLmRequest *req, int n, long max_tokens, double *logprob,
                                int *greedy, Err *err) {
    CudaScoreOpts o{};
    o.max_tokens = max_tokens, o.share = 1;
    return cuda_rwkv7_score_ex(g, req, n, &o, logprob, greedy, NULL, err);
}

/* ---- decoding: one token per sequence, the launch chain replayed from a CUDA graph ---------------- */
static void decode_release(CudaRwkv7State *s) {
    for (DecodeGraph &dg : s->graphs) CUDA_CHECK(cudaGraphExecDestroy(dg.exec));
    s->graphs.clear();
    if (s->d_dec) CUDA_CHECK(cudaFree(s->d_dec));
    if (s->h_tok) CUDA_CHECK(cudaFreeHost(s->h_tok));
    if (s->h_argmax) CUDA_CHECK(cudaFreeHost(s->h_argmax));
    if (s->h_logits) CUDA_CHECK(cudaFreeHost(s->h_logits));
    s->d_dec = s->h_tok = s->h_argmax = nullptr, s->h_logits = nullptr;
    s->ncalls = 0;
}

static int host_alloc(void **p, size_t bytes, const char *what, Err *err) {
    cudaError_t e = cudaMallocHost(p, bytes ? bytes : 1);
    if (e == cudaSuccess) return 0;
    (void)cudaGetLastError();
    *p = NULL;
    return err_set(err, "GPU: cannot allocate %.1f MiB of pinned host memory for %s (%s)", bytes / 1048576.0, what,
                   cudaGetErrorString(e));
}

/* device row maps of B one-token sequences (row b = sequence b, head at every row), pinned buffers */
static int decode_setup(CudaRwkv7State *s, int want_logits, Err *err) {
    const int B = s->B;
    const size_t V = s->g->d.V;
    if (!s->d_dec) {
        std::vector<int> h(5 * (size_t)B + 1, 0);
        for (int b = 0; b < B; b++) h[b] = b, h[B + b] = b, h[2 * (size_t)B + 1 + b] = b;
        h[2 * (size_t)B] = B;
        if (dev_alloc((void **)&s->d_dec, h.size() * sizeof(int), "decoding buffers", err) ||
            host_alloc((void **)&s->h_tok, B * sizeof(int), "decoding tokens", err) ||
            host_alloc((void **)&s->h_argmax, B * sizeof(int), "decoding outputs", err))
            return -1;
        CUDA_CHECK(cudaMemcpyAsync(s->d_dec, h.data(), h.size() * sizeof(int), cudaMemcpyHostToDevice, s->g->st));
        CUDA_CHECK(cudaStreamSynchronize(s->g->st));
    }
    if (want_logits && !s->h_logits && host_alloc((void **)&s->h_logits, B * V * sizeof(float), "decoding logits", err))
        return -1;
    return 0;
}

/* the step's launches on g's stream (captured or run directly): tokens from pinned memory, every layer from
 * s->cur into s->spare, the head at every row, argmax, outputs to pinned memory */
static void decode_enqueue(CudaRwkv7 *g, CudaRwkv7State *s, int want_logits) {
    const int B = s->B, V = g->d.V;
    int *row_seq = s->d_dec, *seq_off = s->d_dec + B, *out_rows = s->d_dec + 2 * B + 1, *tok = out_rows + B,
        *am = tok + B;
    const Ws saved = g->w;
    g->w.tok = tok, g->w.row_seq = row_seq, g->w.seq_off = seq_off, g->w.out_rows = out_rows;
    cudaStream_t st = g->st;
    CUDA_CHECK(cudaMemcpyAsync(tok, s->h_tok, B * sizeof(int), cudaMemcpyHostToDevice, st));
    switch (g->dt) {
    case CUDA_DT_BF16: layers_t<__nv_bfloat16>(g, B, B, 1, s->cur, s->spare), head_t<__nv_bfloat16>(g, B); break;
    case CUDA_DT_F16: layers_t<__half>(g, B, B, 1, s->cur, s->spare), head_t<__half>(g, B); break;
    default: layers_t<float>(g, B, B, 1, s->cur, s->spare), head_t<float>(g, B); break;
    }
    argmax_launch(st, g->w.logits, am, B, V);
    CUDA_CHECK(cudaMemcpyAsync(s->h_argmax, am, B * sizeof(int), cudaMemcpyDeviceToHost, st));
    if (want_logits)
        CUDA_CHECK(cudaMemcpyAsync(s->h_logits, g->w.logits, (size_t)B * V * sizeof(float), cudaMemcpyDeviceToHost, st));
    g->w = saved;
}

extern "C" int cuda_rwkv7_decode(CudaRwkv7 *g, CudaRwkv7State *s, const int *tokens, int *argmax, float *logits,
                                 Err *err) {
    const int B = s->B, V = g->d.V;
    if (s->g != g) return err_set(err, "GPU decode: the state belongs to another model");
    if (B > HEAD_CHUNK) return err_set(err, "GPU decode: %d sequences in one state (at most %d per step)", B, HEAD_CHUNK);
    for (int b = 0; b < B; b++)
        if (tokens[b] < 0 || tokens[b] >= V)
            return err_set(err, "GPU decode: token %d of sequence %d is outside the vocabulary [0,%d)", tokens[b], b, V);
    const int want = logits != NULL;
    if (ws_ensure(g, B, B, B, err) || decode_setup(s, want, err)) return -1;
    memcpy(s->h_tok, tokens, B * sizeof(int));
    static const int graphs_on = !env_off("RWKVLAB_CUDA_GRAPH");
    /* the first step runs directly: lazy module loading, kernel attributes and cuBLAS's choices happen
     * outside a capture */
    const bool graph = graphs_on && !cuda_sync_debug() && !g->prof.on && s->ncalls > 0;
    s->used_graph = 0;
    if (graph) {
        DecodeGraph *dg = nullptr;
        for (DecodeGraph &x : s->graphs)
            if (x.cur == s->cur && x.logits == want && x.ws_gen == g->ws_gen) dg = &x;
        if (!dg) {
            if (s->graphs.size() >= 4) { /* two buffers x two output choices; stale ones go first */
                CUDA_CHECK(cudaGraphExecDestroy(s->graphs.front().exec));
                s->graphs.erase(s->graphs.begin());
            }
            cudaGraph_t gr;
            CUDA_CHECK(cudaStreamBeginCapture(g->st, cudaStreamCaptureModeThreadLocal));
            decode_enqueue(g, s, want);
            CUDA_CHECK(cudaStreamEndCapture(g->st, &gr));
            DecodeGraph x{};
            x.cur = s->cur, x.logits = want, x.ws_gen = g->ws_gen;
            CUDA_CHECK(cudaGraphInstantiate(&x.exec, gr, 0));
            CUDA_CHECK(cudaGraphDestroy(gr));
            s->graphs.push_back(x);
            dg = &s->graphs.back();
        }
        CUDA_CHECK(cudaGraphLaunch(dg->exec, g->st));
        s->used_graph = 1;
    } else {
        prof_mark(g, "(host)");
        decode_enqueue(g, s, want);
    }
    CUDA_CHECK(cudaStreamSynchronize(g->st));
    if (!graph) prof_collect(g);
    std::swap(s->cur, s->spare);
    s->ncalls++;
    if (argmax) memcpy(argmax, s->h_argmax, B * sizeof(int));
    if (logits) memcpy(logits, s->h_logits, (size_t)B * V * sizeof(float));
    return 0;
}

extern "C" int cuda_rwkv7_decode_used_graph(const CudaRwkv7State *s) { return s->used_graph; }

/* ---- traces (trace --device cuda) -------------------------------------------------------------- */
extern "C" int cuda_rwkv7_trace(CudaRwkv7 *g, const int *tokens, int T, float *logits, float *S, float *w, float *kk,
                                float *b, float *a, Err *err) {
    const Rwkv7Dims &d = g->d;
    if (T < 1) return err_set(err, "GPU trace: %d tokens (need >= 1)", T);
    CudaRwkv7State *s = cuda_rwkv7_state_create(g, 1, err);
    if (!s) return -1;
    cuda_rwkv7_state_zero(s);
    if (dev_alloc((void **)&g->tr_a, (size_t)d.C * sizeof(float), "the trace row", err)) {
        cuda_rwkv7_state_free(s);
        return -1;
    }
    g->tr_w = w, g->tr_kk = kk, g->tr_b = b, g->tr_ah = a, g->tr_T = T;
    const size_t ns = rwkv7_state_numel(&d, 1), hs = (size_t)d.H * d.N * d.N;
    std::vector<float> st(ns);
    int rc = 0, one = 1, row0 = 0;
    for (int t = 0; t < T && !rc; t++) {
        g->tr_t = t;
        CudaRwkv7Batch bt{};
        bt.B = 1, bt.lens = &one, bt.tokens = tokens + t, bt.state = s, bt.nout = 1, bt.out_rows = &row0;
        bt.logits = logits ? logits + (size_t)t * d.V : nullptr;
        rc = cuda_rwkv7_forward(g, &bt, err);
        if (!rc && S) {
            cuda_rwkv7_state_download(s, st.data());
            for (int l = 0; l < d.L; l++)
                memcpy(S + ((size_t)l * T + t) * hs, rwkv7_state_wkv(&d, st.data(), 1, l), hs * sizeof(float));
        }
    }
    CUDA_CHECK(cudaStreamSynchronize(g->st));
    CUDA_CHECK(cudaFree(g->tr_a));
    g->tr_a = nullptr, g->tr_w = g->tr_kk = g->tr_b = g->tr_ah = nullptr;
    cuda_rwkv7_state_free(s);
    return rc;
}

extern "C" int cuda_model_trace(const Model *m, CudaDType wtype, const int *tokens, int T, float *logits, ModelTrace *tr,
                                Err *err) {
    if (m->arch != &model_rwkv7)
        return err_set(err, "trace --device cuda: the GPU engine runs RWKV-7 models; this is a %s model (use --device cpu)",
                       m->arch->name);
    CudaRwkv7 *g = cuda_model_create(m, wtype, err);
    if (!g) return -1;
    /* the CPU trace's conventions (rwkv7.c arch_forward): alpha = -kk, beta = kk * a, q = {decay, a} */
    int rc = cuda_rwkv7_trace(g, tokens, T, logits, tr->state, tr->w, tr->alpha, tr->beta, tr->q[1], err);
    cuda_rwkv7_free(g);
    if (rc) return -1;
    const size_t n = (size_t)m->L * T * m->C;
    for (size_t i = 0; i < n; i++) {
        if (tr->q[0]) tr->q[0][i] = tr->w[i];
        tr->alpha[i] = -tr->alpha[i];
    }
    return 0;
}
