/* rwkv7.h -- the RWKV-7 ("Goose", x070) model: size table, official init, sequence and recurrent
 * forward from any state, hand-derived backward. Math: ../shared/spec/rwkv7.md.
 *
 * Memory: one buffer each for params, grads, activations; all carved by one layout function
 * (rwkv7_layout) that the table, the pointer structs, the optimizer, checkpoints and tests share.
 * Tensor names are the official checkpoint keys (blocks.0.att.w1, ...).
 */
#ifndef RWKV_RWKV7_H
#define RWKV_RWKV7_H

#include <gsl/gsl_rng.h>

#include "common.h"
#include "model.h"
#include "param.h"

typedef struct {
    int V, C, L, N, H, F;       /* F = 4C */
    int Dw, Da, Dv, Dg;         /* LoRA ranks */
    int extended;               /* 1: a = 2 w sigmoid(...)  (eigenvalues down to -1) */
    int has_ln0;                /* blocks.0.ln0 present */
    int bias;                   /* optional Linear biases present (RWKV7_BIAS_* bits; same in every layer) */
    int conv;                   /* model.short_conv: K taps of the causal depthwise conv on r, k, v; 0 = off */
} Rwkv7Dims;

/* Optional `.bias` of Linear layers (absent = zero), found in small research checkpoints. */
enum {
    RWKV7_BIAS_R = 1, RWKV7_BIAS_K = 2, RWKV7_BIAS_V = 4, RWKV7_BIAS_O = 8,
    RWKV7_BIAS_FK = 16, RWKV7_BIAS_FV = 32, RWKV7_BIAS_HEAD = 64, RWKV7_BIAS_ALL = 127
};

/* Official LoRA-rank formula (rwkv7.md): fills Dw, Da, Dv, Dg that are 0. */
void rwkv7_default_ranks(Rwkv7Dims *d);


typedef struct {
    real *ln1_w, *ln1_b, *ln2_w, *ln2_b;
    real *x_r, *x_w, *x_k, *x_v, *x_a, *x_g;           /* (C) */
    real *w0, *w1, *w2, *a0, *a1, *a2, *v0, *v1, *v2;  /* (C), (C,D), (D,C) */
    real *g1, *g2, *k_k, *k_a, *r_k;                   /* (C,Dg), (Dg,C), (C), (C), (H,N) */
    real *Wr, *Wk, *Wv, *Wo;                           /* (C,C) */
    real *lnx_w, *lnx_b;                               /* (C) */
    real *f_xk, *f_Wk, *f_Wv;                          /* (C), (F,C), (C,F) */
    real *br, *bk, *bv, *bo, *f_bk, *f_bv;             /* optional biases (C) / (F) or NULL */
    real *r_conv, *k_conv, *v_conv;                    /* att.{r,k,v}_conv.weight (C,K), or NULL (conv = 0) */
} Rwkv7Layer;

typedef struct {
    real *emb;                    /* (V,C) */
    real *ln0_w, *ln0_b;          /* (C) or NULL */
    Rwkv7Layer *layer;            /* L entries */
    real *lnout_w, *lnout_b;      /* (C) */
    real *head;                   /* (V,C) */
    real *head_b;                 /* (V) or NULL */
} Rwkv7Weights;

typedef struct Rwkv7Acts Rwkv7Acts;

typedef struct Rwkv7 {
    Rwkv7Dims d;
    ParamTensor *tensors;
    int ntensors;
    size_t nparams;
    real *params, *grads;         /* (nparams) each */
    Rwkv7Weights w, g;            /* pointers into params / grads */
    /* activations for the current (B,T) */
    int B, T, K;
    Rwkv7Acts *acts;
    Model head;                   /* the model interface's view of this model (model.h) */
    int head_last_only;           /* inference option: ln_out + head only at each sequence's last token (the
                                     other logits rows are left unset; no backward after such a forward) */
    const unsigned char *head_rows; /* training option: the head at these rows only (ModelFwd.head_rows) */
} Rwkv7;

/* Allocate params + grads (zeroed) and the tensor table: a model to train. */
Rwkv7 *rwkv7_create(const Rwkv7Dims *d);
/* The same without gradients (grads == NULL, g pointers NULL): loading and scoring, which for a
 * released 2.9B model halves the memory (11.6 GB of fp32 parameters instead of 23 GB). */
Rwkv7 *rwkv7_create_inference(const Rwkv7Dims *d);
void rwkv7_free(Rwkv7 *m);
const ParamTensor *rwkv7_find(const Rwkv7 *m, const char *name);
/* Official initialisation (rwkv7.md table); random parts from rng. */
void rwkv7_init_official(Rwkv7 *m, gsl_rng *rng);
/* Set w0 lr multiplier (1 or 2) in the table. */
void rwkv7_set_w0_lr_mult(Rwkv7 *m, double mult);

/* Recurrent state of B sequences, per layer l: att_prev (B,C), S (B,H,N,N), ffn_prev (B,C), and with the
 * short conv (conv = K > 1) the inputs of its last K-1 tokens for r, k, v: (3,B,K-1,C) (shortconv3 layout).
 * Laid out [L][att_prev | S | ffn_prev | conv]; rwkv7_state_numel gives the size for a given B. */
size_t rwkv7_state_numel(const Rwkv7Dims *d, int B);
real *rwkv7_state_att_prev(const Rwkv7Dims *d, real *state, int B, int l);
real *rwkv7_state_wkv(const Rwkv7Dims *d, real *state, int B, int l);
real *rwkv7_state_ffn_prev(const Rwkv7Dims *d, real *state, int B, int l);
real *rwkv7_state_conv(const Rwkv7Dims *d, real *state, int B, int l); /* meaningful when conv > 1 */

/* Optional per-token capture of the WKV internals for trajectories: (L,B,T,...) float arrays. */
typedef struct {
    float *state;   /* (L,B,T,H,N,N) or NULL */
    float *decay;   /* (L,B,T,C) */
    float *a;       /* (L,B,T,C) */
    float *kk;      /* (L,B,T,C) */
} Rwkv7Trace;

/* Sequence mode: tokens (B,T) -> logits (B,T,V) (returned pointer into the activations, valid until the
 * next call). state_in (NULL = fresh) and state_out (NULL = not wanted) as above; they may alias.
 * K = WKV checkpoint interval (1 = keep every state). trace may be NULL. */
const real *rwkv7_forward(Rwkv7 *m, const int *tokens, int B, int T, int K, const real *state_in,
                          real *state_out, const Rwkv7Trace *trace);

/* Backward of the last forward given dlogits (B,T,V): grads += dLoss/dparams. The loss is the shared
 * one (model_loss in model.c). */
void rwkv7_backward(Rwkv7 *m, const real *dlogits);

size_t rwkv7_act_bytes(const Rwkv7 *m); /* current activation memory */

/* The architecture behind the model interface (model.h); rwkv7_create's model is also `&m->head`. */
extern const ModelArch model_rwkv7;
/* Dims of a released-format file (rwkv7_io.c). */
int rwkv7_dims_from_tensors(void *dims, const TensorFile *tf, const char *path, Err *err);
/* Sizes without allocating, for checking a file or estimating memory before rwkv7_create:
 * the tensor table (xcalloc'ed, *ntensors entries, caller frees) and parameter count of a model of dims
 * *d (H, F and the default LoRA ranks are filled in *d, as rwkv7_create does); and the activation buffer
 * (in reals) that rwkv7_forward carves for (B,T,K), with_backward = 1 for a model from rwkv7_create,
 * 0 for one from rwkv7_create_inference. */
ParamTensor *rwkv7_tensor_table(Rwkv7Dims *d, int *ntensors, size_t *nparams);
size_t rwkv7_act_numel(const Rwkv7Dims *d, int B, int T, int K, int with_backward);

#endif
