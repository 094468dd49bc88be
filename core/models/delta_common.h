/* delta_common.h -- DeltaNet and Gated DeltaNet (../shared/spec/baselines.md): the one model behind both
 * architectures (deltanet.c, gated_deltanet.c hold their interface tables: name, dims, keys, traces).
 *
 * Dimensions: V vocabulary, C width, L layers, N key head size, H = C/N heads, Nv value head size
 * (DeltaNet: N; Gated DeltaNet: expand_v * N), CV = H*Nv, F = 4C, K short-conv taps (0 = off).
 *
 * Skeleton (the same for every architecture, rwkv7.md): emb, ln0 (optional), per layer
 *   x += Mixer(LN1(x)); x += FFN(LN2(x)), ln_out, head.
 * FFN = RWKV-7's channel mix (token shift mix x_k, key [F,C], ReLU^2, value [C,F]) so that only the mixer
 * differs from RWKV-7 (fla's models use a SwiGLU MLP; we keep the FFN identical across architectures).
 * Mixer, per head (fla's recurrences; conv_K only with model.short_conv = K > 0):
 *   q = l2norm(silu(conv_K(W_q x))), k = l2norm(silu(conv_K(W_k x))), v = silu(conv_K(W_v x))
 *   l2norm(x) = x / sqrt(sum x^2 + 1e-6)
 *   beta = sigmoid(W_b x)   (extended range: 2 sigmoid(W_b x), in (0,2))
 *   DeltaNet:        S_t = S_{t-1} (I - beta k k^T) + beta v k^T
 *   Gated DeltaNet:  S_t = alpha S_{t-1} (I - beta k k^T) + beta v k^T,
 *                    alpha = exp(-exp(A_log) softplus(W_a x + dt_bias))
 *   o = S_t (q / sqrt(N))   (the NEW state; S_t is Nv x N: row = value, column = key)
 *   DeltaNet: out = W_o RMSNorm_head(o);  Gated DeltaNet: out = W_o (RMSNorm_head(o) * silu(W_g x))
 *   RMSNorm_head: per head over its Nv channels, weight o_norm [Nv] shared by the heads, eps 1e-5.
 * Both recurrences run on the one diagonal-plus-rank-one kernel (wkv7.h):
 *   S_t = S_{t-1} diag(w) + (S_{t-1}(-kk)) (kk*a)^T + v' k'^T,  y = S_t r
 * with kk = k' = k, r = q/sqrt(N), v' = beta v, and
 *   DeltaNet:  w = 1,     a = beta          (S diag(1) - (S k)(beta k)^T = S (I - beta k k^T))
 *   Gated:     w = alpha, a = alpha beta    (S diag(alpha) - (S k)(alpha beta k)^T = alpha S (I - beta k k^T))
 * (the per-head scalars broadcast over the head's N key channels).
 *
 * Keys: RWKV-style skeleton (emb.weight, blocks.0.ln0, blocks.l.ln1/ln2.weight/bias, blocks.l.ffn.x_k,
 * ffn.key/value.weight, ln_out, head.weight) and fla-style mixer names under blocks.l.attn.: q_proj,
 * k_proj [C,C], v_proj [CV,C], b_proj [H,C], o_proj [C,CV], o_norm [Nv] (".weight" each), q_conv1d,
 * k_conv1d [C,K], v_conv1d [CV,K] (".weight"); Gated DeltaNet adds a_proj [H,C], A_log [H], dt_bias [H],
 * g_proj [CV,C].
 *
 * Recurrent state per sequence and layer: the conv inputs of the last K-1 tokens for q, k (K-1,C) and
 * v (K-1,CV) (when K > 0), S (H,Nv,N), the FFN's token shift (C).
 */
#ifndef RWKV_DELTA_COMMON_H
#define RWKV_DELTA_COMMON_H

#include <gsl/gsl_rng.h>

#include "common.h"
#include "model.h"
#include "param.h"
#include "tensorfile.h"

/* The dims both architectures store (checkpoints, info); DeltaNet names all but expand_v (0 in it). */
typedef struct {
    int V, C, L, N;
    int has_ln0;    /* blocks.0.ln0 present */
    int extended;   /* 1: beta = 2 sigmoid(.) (eigenvalue 1 - beta along k in (-1,1)) */
    int short_conv; /* K taps of the causal depthwise conv on q, k, v; 0 = off */
    int expand_v;   /* Gated DeltaNet: Nv = expand_v * N (1 = state N x N, fla's default 2); DeltaNet: 0 */
} DeltaDims;

#define DELTA_L2_EPS ((real)1e-6) /* fla's l2norm: x / sqrt(sum x^2 + eps) */
#define DELTA_RMS_EPS ((real)1e-5)

/* ---- the ops only these models use (forward/backward pairs, ops.h's rule: outputs =, gradients +=) -- */
/* out (R,G*N) = x / sqrt(sum_group x^2 + eps) per group of N; inv (R,G) = 1/sqrt(...) saved */
void delta_l2norm_forward(real *out, real *inv, const real *x, int R, int G, int N, real eps);
void delta_l2norm_backward(real *dx, const real *dout, const real *out, const real *inv, int R, int G, int N);
/* out (R,G*N) = x * rs * w, rs (R,G) = 1/sqrt(mean_group x^2 + eps) saved, weight w (N) shared by the groups */
void delta_rmsnorm_forward(real *out, real *rs, const real *x, const real *w, int R, int G, int N, real eps);
void delta_rmsnorm_backward(real *dx, real *dw, const real *dout, const real *x, const real *rs, const real *w,
                            int R, int G, int N);
/* Gated DeltaNet's gate: alpha (R,H) = exp(-exp(A_log) softplus(u + dt_bias)), u (R,H) = W_a x */
void delta_gate_forward(real *alpha, const real *u, const real *A_log, const real *dt_bias, int R, int H);
void delta_gate_backward(real *du, real *dA_log, real *ddt_bias, const real *dalpha, const real *alpha,
                         const real *u, const real *A_log, const real *dt_bias, int R, int H);
/* The kernel's inputs from the per-head scalars (see the header comment): w, a (R,H*N), vb (R,H*Nv) =
 * beta v; alpha (R,H) NULL = DeltaNet (w = 1, a = beta), else Gated (w = alpha, a = alpha beta). */
void delta_transition_forward(real *w, real *a, real *vb, const real *alpha, const real *beta, const real *v,
                              int R, int H, int N, int Nv);
/* dalpha may be NULL exactly when alpha is */
void delta_transition_backward(real *dalpha, real *dbeta, real *dv, const real *dw, const real *da,
                               const real *dvb, const real *alpha, const real *beta, const real *v, int R, int H,
                               int N, int Nv);

/* ---- the model ----------------------------------------------------------------------------------- */
typedef struct {
    real *ln1_w, *ln1_b, *ln2_w, *ln2_b;   /* (C) */
    real *Wq, *Wk, *Wv;                    /* q_proj, k_proj (C,C); v_proj (CV,C) */
    real *Wa, *A_log, *dt_bias;            /* Gated: a_proj (H,C), A_log (H), dt_bias (H); else NULL */
    real *Wb;                              /* b_proj (H,C) */
    real *cq, *ck, *cv;                    /* q/k/v_conv1d (C,K) (C,K) (CV,K), or NULL (K = 0) */
    real *Wg;                              /* Gated: g_proj (CV,C); else NULL */
    real *onorm;                           /* o_norm (Nv) */
    real *Wo;                              /* o_proj (C,CV) */
    real *f_xk, *f_Wk, *f_Wv;              /* ffn.x_k (C), ffn.key (F,C), ffn.value (C,F) */
    real *f_bk, *f_bv;                     /* always NULL: no FFN biases (the skeleton's fields, arch_util.h) */
} DeltaLayer;

typedef struct {
    real *emb;                             /* (V,C) */
    real *ln0_w, *ln0_b;                   /* (C) or NULL */
    DeltaLayer *layer;                     /* L */
    real *lnout_w, *lnout_b;               /* (C) */
    real *head;                            /* (V,C) */
    real *head_b;                          /* always NULL: no head bias */
} DeltaWeights;

typedef struct DeltaActs DeltaActs;

typedef struct {
    DeltaDims d;
    int gated;                             /* Gated DeltaNet */
    int H, Nv, F, K;                       /* heads, value head size, FFN width, conv taps */
    ParamTensor *tensors;
    int ntensors;
    size_t nparams;
    real *params, *grads;
    DeltaWeights w, g;                     /* pointers into params / grads (g all NULL without grads) */
    int B, T, Kc;                          /* current activation shape; Kc = recurrence checkpoint interval */
    DeltaActs *acts;
    Model head;                            /* the interface's view (model.h) */
} DeltaModel;

/* ---- what the two ModelArch tables call (gated: 0 DeltaNet, 1 Gated DeltaNet) ---------------------- */
int delta_dims_from_config(DeltaDims *d, const RunConfig *c, int V, int gated, Err *err);
int delta_dims_from_tensors(DeltaDims *d, const TensorFile *tf, const char *path, int gated, Err *err);
int delta_validate_dims(const DeltaDims *d, int gated, Err *err);
ParamTensor *delta_tensor_table(const DeltaDims *d, int gated, int *ntensors, size_t *nparams);
size_t delta_act_bytes_for(const DeltaDims *d, int gated, int B, int T, int K, int with_backward);
Model *delta_create(const ModelArch *arch, const DeltaDims *d, int gated, int with_grads);
void delta_free(Model *m);
/* skeleton as RWKV-7 (emb U(+-1e-4), LayerNorms 1/0, ffn.x_k = 1 - ddd^(r1^4), ffn.key orthogonal, ffn.value
 * 0, head orthogonal 0.5 sqrt(V/C)); mixer as fla: every Linear weight N(0, 0.02), o_norm 1;
 * the conv filters as every architecture's (shortconv_init: U(-1/sqrt(K), 1/sqrt(K)), no weight decay);
 * Gated: A ~ U(0,16) stored as A_log, dt log-uniform in [1e-3, 0.1] stored as dt_bias = softplus^-1(dt) */
void delta_init(Model *m, gsl_rng *rng, const RunConfig *c);
const real *delta_forward(Model *m, const int *tokens, int B, int T, const ModelFwd *f);
void delta_backward(Model *m, const real *dlogits);
size_t delta_state_numel(const Model *m, int B);
size_t delta_matrix_state_numel(const Model *m);
size_t delta_act_bytes(const Model *m);
double delta_fwd_flops(const Model *m, double *matmul, double *recurrence);
const char *delta_export_note(const Model *m);

/* The two tables (deltanet.c, gated_deltanet.c) differ in name, title, dims fields, key recognition and
 * traces; the rest is the functions above with `gated` fixed. DELTA_ARCH_FUNCS(p, GATED, ARCH) defines
 * those wrappers as static p_* functions (ARCH: the table being defined, for create); DELTA_ARCH_SHARED(p)
 * is the table entries both fill the same way. */
#define DELTA_ARCH_FUNCS(p, GATED, ARCH)                                                                      \
    extern const ModelArch ARCH;                                                                              \
    static int p##_dims_from_config(void *dims, const RunConfig *c, int V, Err *err) {                        \
        return delta_dims_from_config(dims, c, V, GATED, err);                                                \
    }                                                                                                         \
    static int p##_dims_from_tensors(void *dims, const TensorFile *tf, const char *path, Err *err) {          \
        return delta_dims_from_tensors(dims, tf, path, GATED, err);                                           \
    }                                                                                                         \
    static int p##_validate_dims(const void *dims, Err *err) { return delta_validate_dims(dims, GATED, err); } \
    static ParamTensor *p##_tensor_table(const void *dims, int *n, size_t *np) {                              \
        return delta_tensor_table(dims, GATED, n, np);                                                        \
    }                                                                                                         \
    static size_t p##_act_bytes_for(const void *dims, int B, int T, int K, int with_backward) {               \
        return delta_act_bytes_for(dims, GATED, B, T, K, with_backward);                                      \
    }                                                                                                         \
    static Model *p##_create(const void *dims, int with_grads) { return delta_create(&ARCH, dims, GATED, with_grads); }

#define DELTA_ARCH_SHARED(p)                                                                                  \
    .dims_size = sizeof(DeltaDims), .dims_from_config = p##_dims_from_config,                                 \
    .dims_from_tensors = p##_dims_from_tensors, .ignored_tensors = NULL, .tensor_table = p##_tensor_table,    \
    .act_bytes_for = p##_act_bytes_for, .export_note = delta_export_note, .validate_dims = p##_validate_dims, \
    .create = p##_create, .free = delta_free, .init = delta_init, .forward = delta_forward,                   \
    .backward = delta_backward, .state_numel = delta_state_numel,                                             \
    .matrix_state_numel = delta_matrix_state_numel, .rank_one = 1, .act_bytes = delta_act_bytes,              \
    .fwd_flops_per_token = delta_fwd_flops

/* The recurrent state of B sequences, per layer l: [conv_q (B,K-1,C) | conv_k (B,K-1,C) | conv_v (B,K-1,CV)]
 * (only when K > 0), S (B,H,Nv,N), ffn_prev (B,C); layers one after another. NULL for an absent part. */
real *delta_state_conv(const DeltaModel *m, real *state, int B, int l, int which); /* which: 0 q, 1 k, 2 v */
real *delta_state_S(const DeltaModel *m, real *state, int B, int l);
real *delta_state_ffn(const DeltaModel *m, real *state, int B, int l);

#endif
