/* cuda_kernels.cuh -- launchers of the RWKV-7 inference kernels (cuda_kernels.cu, cuda_wkv7.cu).
 *
 * Rows are packed tokens of a ragged batch: row r belongs to sequence row_seq[r], whose rows are
 * seq_off[b] .. seq_off[b+1]-1. (R,C) activations are row-major fp32 unless typed T (the weight storage
 * type: the inputs of matrix products). Outputs are assigned (=) unless a comment says +=.
 * States (st_in / st_out) use the CPU layout of rwkv7.h; NULL st_in = zero state, NULL st_out = not wanted;
 * st_in and st_out must not alias (the first row of a sequence reads what its last row writes).
 */
#ifndef RWKV_CUDA_KERNELS_CUH
#define RWKV_CUDA_KERNELS_CUH

#include "cuda_common.cuh"

/* x(R,C) = emb[tok[r]] as fp32; then LayerNorm(ln0) in place when lw != NULL */
template <typename T>
void embed_launch(cudaStream_t st, float *x, const int *tok, const T *emb, const float *lw, const float *lb, int R, int C);

/* Token shift + mixes of one sub-block: xn = LayerNorm(x[r]; lw, lb); prev = xn of row r-1, or st_in[b] at a
 * sequence's first row; out[i][r] = xn + (prev - xn) * mu[i] (as T), i < n (6 for TimeMix, 1 for ChannelMix).
 * At a sequence's last row st_out[b] = xn. st_in/st_out: (B,C). */
struct MixOut {
    const float *mu[6];
    void *out[6];
    int n;
};
template <typename T>
void shift_mix_launch(cudaStream_t st, const float *x, const float *lw, const float *lb, const int *row_seq,
                      const int *seq_off, const float *st_in, float *st_out, const MixOut &mo, int R, int C);

/* LoRA hidden activations, columns [w: Dw | a: Da | g: Dg | v: Dv_used] of an (R, ld) buffer:
 * out = tanh | identity | sigmoid | identity of in, as T (same layout) */
template <typename T>
void lora_act_launch(cudaStream_t st, T *out, const float *in, int R, int ld, int Dw, int Da, int Dg, int Dv_used);

/* Per-token WKV inputs, in place (N = head size, H heads, C = H*N):
 *   w   <- exp(-e^-0.5 sigmoid(w0 + w))               (w holds the LoRA output before w0)
 *   a   <- sigmoid(a0 + a) [extended: 2 w sigmoid(..)]; then kk * a is stored in a ("b" of the recurrence)
 *   kk  =  normalize_per_head(k * k_k), eps 1e-12
 *   k   <- k * (1 + (a - 1) * k_a)
 *   v   <- layer 0 (vl == NULL): unchanged and copied to vfirst; else v + (vfirst - v) sigmoid(v0 + vl)
 * a_out (R,C) or NULL: the in-context rate a itself (traces) */
void wkv_prep_launch(cudaStream_t st, int N, float *w, float *a, float *k, float *kk, float *v, float *vfirst,
                     const float *vl, const float *w0, const float *a0, const float *v0, const float *k_k,
                     const float *k_a, int R, int C, int H, int extended, float *a_out = nullptr);

/* The WKV7 recurrence over every sequence (one launch per form): per token, sa = -S kk ;
 * S = S diag(w) + sa b^T + v k^T ; y = S r, with b = kk * a. s_in / s_out: (B,H,N,N) or NULL; max_len = the
 * longest sequence. Two forms (N = 64): sequential in time (cuda_wkv7.cu; configurations L*, T*) and chunked
 * (cuda_wkv7_chunk.cu; C16, C32, C32r8, C32s2, C32s4: intra-chunk matrix products, one state pass per chunk), which needs
 * `rec`, wkv7_chunk_floats(cfg, ...) floats of device scratch (NULL: the sequential form is used).
 * wkv7_pick gives the configuration for a batch (RWKVLAB_WKV_CFG overrides; "auto" = automatic).
 * Supported N: 16, 32, 64 (wkv7_supported). */
int wkv7_supported(int N);
const char *wkv7_pick(int N, int B, int max_len, int H);
size_t wkv7_chunk_floats(const char *cfg, int N, int B, int max_len, int H);
void wkv7_launch(cudaStream_t st, int N, const char *cfg, float *rec, float *y, const float *r, const float *w,
                 const float *k, const float *v, const float *kk, const float *b, const int *seq_off, int B,
                 int max_len, const float *s_in, float *s_out, int C, int H);
void wkv7_chunk_launch(cudaStream_t st, const char *cfg, float *rec, float *y, const float *r, const float *w,
                       const float *k, const float *v, const float *kk, const float *b, const int *seq_off, int B,
                       int max_len, const float *s_in, float *s_out, int C, int H, int passes /* 1 prep, 2 scan, 3 */);

/* Few-row products (cuda_gemv.cu): for each job j < njobs (<= 3, one launch), out_j(R,NO) (row stride ldo)
 * = beta out_j + in_j(R,NI) (row stride ldi) W_j(NO,NI)^T, W_j rows contiguous, fp32 accumulation; R <= 8.
 * Returns -1 (nothing launched) when the shape does not suit (R > 8, NI or ldi not a multiple of 16 bytes'
 * worth of T, unaligned pointers): the caller uses cuBLAS then. */
template <typename T>
struct GemvJobs {
    float *out[3];
    const T *in[3];
    const T *W[3];
};
template <typename T>
int gemv_lin_launch(cudaStream_t st, const GemvJobs<T> &jobs, int njobs, int ldo, int ldi, int R, int NI, int NO,
                    float beta);

/* Few-row products with W(NI,NO) row-major (LoRA factors; cuda_gemv.cu): out_j(R,NO_j) (row stride ldo_j)
 * = in_j(R,NI_j) (row stride ldi_j) W_j, fp32 accumulation, R <= 8, up to 4 jobs of their own shapes in one
 * launch. part / cnt: device scratch of GEMV_SCRATCH_FLOATS floats and GEMV_MAX_COUNTERS zeroed counters
 * (the rows of W are split over blocks; the counters return to 0 after every launch). -1 (nothing launched)
 * when unsuited (odd NO, unaligned W, more partial sums than the scratch holds): the caller uses cuBLAS. */
#define GEMV_SCRATCH_FLOATS ((size_t)1 << 20)
#define GEMV_MAX_COUNTERS 2048
template <typename T>
struct GemvMatJob {
    float *out;
    const T *in;
    const T *W;
    int ldo, ldi, NI, NO, slot, cslot; /* slot, cslot: set by the launcher */
};
template <typename T>
struct GemvMatJobs {
    GemvMatJob<T> j[4];
    float *part;
    unsigned *cnt;
};
template <typename T>
int gemv_mat_launch(cudaStream_t st, GemvMatJobs<T> jobs, int njobs, int R);

/* out = (GroupNorm(y; H groups, eps 64e-5; lw, lb) + (sum_j r k r_k) v) * g, as T */
template <typename T>
void gn_bonus_gate_launch(cudaStream_t st, int N, T *out, const float *y, const float *r, const float *k,
                          const float *v, const float *g, const float *lw, const float *lb, const float *r_k, int R,
                          int C, int H);

/* out(R,F) = relu(in + bias)^2 as T (bias (F) or NULL) */
template <typename T>
void relu2_launch(cudaStream_t st, T *out, const float *in, const float *bias, long R, int F);

/* x(R,C) += b(C) */
void add_bias_launch(cudaStream_t st, float *x, const float *b, long R, int C);

/* out(o,C) = LayerNorm(x[rows[o]]; w, b) as T */
template <typename T>
void ln_gather_launch(cudaStream_t st, T *out, const float *x, const int *rows, const float *w, const float *b,
                      int nout, int C);

/* per row o of logits (nout,V): lp[o] = log-softmax at targets[o]; greedy[o] = target logit is the max */
void logsoftmax_gather_launch(cudaStream_t st, const float *logits, const int *targets, float *lp, int *greedy,
                              int nout, int V);

/* per row o of logits (nout,V): out[o] = the first index of the row's largest value (NaN never wins) */
void argmax_launch(cudaStream_t st, const float *logits, int *out, int nout, int V);

/* States in the CPU layout (per layer l: att_prev (B,C) | S (B,H,N,N) | ffn_prev (B,C)):
 * dst sequence j := src sequence idx[j] for j < Bd (device idx); S = H*N*N. dst must not alias src. */
void state_gather_launch(cudaStream_t st, float *dst, const float *src, const int *idx, int Bd, int Bs, int L, int C,
                         int S);

/* dst(n) = src as T (round to nearest even) */
template <typename T>
void convert_launch(cudaStream_t st, T *dst, const float *src, size_t n);

#endif
