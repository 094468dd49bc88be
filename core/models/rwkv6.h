/* rwkv6.h -- the RWKV-6 ("Finch", x060) model: size table, official init, sequence and recurrent forward
 * from any state, hand-derived backward. Math: ../shared/spec/baselines.md (RWKV-6 section), skeleton and
 * init constants (r0, r1, ddd) as ../shared/spec/rwkv7.md.
 *
 * Tensor names and shapes are the official x060 checkpoint keys (blocks.0.att.time_maa_x, ...), so a
 * released x060 .pth loads. The recurrence is wkv6.h (state [key][value], read before the update, bonus u).
 * Recurrent state per sequence and layer: TimeMix x_prev [C], WKV S [H,N,N] ([key][value]), ChannelMix
 * x_prev [C] (and the short convolution's inputs when model.short_conv is on); trajectories store S transposed (row = value, column = key, the common orientation).
 */
#ifndef RWKV_RWKV6_H
#define RWKV_RWKV6_H

#include <gsl/gsl_rng.h>

#include "common.h"
#include "model.h"
#include "param.h"

typedef struct {
    int V, C, L, N;
    int H, F;                   /* derived: H = C/N, F = int(3.5C)//32*32 */
    int Dm;                     /* token-shift LoRA rank: time_maa_w1 [C,5*Dm], time_maa_w2 [5,Dm,C] */
    int Dd;                     /* decay LoRA rank: time_decay_w1 [C,Dd], time_decay_w2 [Dd,C] */
    int has_ln0;                /* blocks.0.ln0 present */
    int conv;                   /* model.short_conv: causal depthwise conv of kernel `conv` on r, k, v (0 = off) */
} Rwkv6Dims;

#define RWKV6_DM_DEFAULT 32     /* official D_MIX_LORA */
#define RWKV6_DD_DEFAULT 64     /* official D_DECAY_LORA */

/* F = int(3.5 C) // 32 * 32, the official FFN width (0 for C < 10: such a model cannot be built) */
int rwkv6_ffn_width(int C);

typedef struct {
    real *ln1_w, *ln1_b, *ln2_w, *ln2_b;                       /* (C) */
    real *maa_x, *maa_w, *maa_k, *maa_v, *maa_r, *maa_g;       /* (C) */
    real *maa_w1, *maa_w2;                                     /* (C,5Dm), (5,Dm,C) */
    real *decay, *decay_w1, *decay_w2;                         /* (C), (C,Dd), (Dd,C) */
    real *faaaa;                                               /* (H,N): the bonus u */
    real *Wr, *Wk, *Wv, *Wo, *Wg;                              /* (C,C) */
    real *lnx_w, *lnx_b;                                       /* (C) */
    real *f_maa_k, *f_maa_r;                                   /* (C) */
    real *f_Wk, *f_Wr, *f_Wv;                                  /* (F,C), (C,C), (C,F) */
    real *r_conv, *k_conv, *v_conv;                            /* (C,conv) each, or NULL (short_conv off) */
} Rwkv6Layer;

typedef struct {
    real *emb;                    /* (V,C) */
    real *ln0_w, *ln0_b;          /* (C) or NULL */
    Rwkv6Layer *layer;            /* L entries */
    real *lnout_w, *lnout_b;      /* (C) */
    real *head;                   /* (V,C) */
    real *head_b;                 /* always NULL: x060 has no head bias (the skeleton's field, arch_util.h) */
} Rwkv6Weights;

typedef struct Rwkv6Acts Rwkv6Acts;

typedef struct Rwkv6 {
    Rwkv6Dims d;
    ParamTensor *tensors;
    int ntensors;
    size_t nparams;
    real *params, *grads;         /* (nparams) each; grads NULL for an inference model */
    Rwkv6Weights w, g;            /* pointers into params / grads */
    int B, T, K;                  /* shape of the last forward */
    int head_last_only;           /* that forward computed the head at each sequence's last token only */
    Rwkv6Acts *acts;
    Model head;                   /* the model interface's view of this model (model.h) */
} Rwkv6;

/* The architecture behind the model interface; rwkv6_create's model is also `&m->head`. */
extern const ModelArch model_rwkv6;

Rwkv6 *rwkv6_create(const Rwkv6Dims *d, int with_grads);
void rwkv6_init_official(Rwkv6 *m, gsl_rng *rng);

/* Recurrent state of B sequences, per layer l: att_prev (B,C), S (B,H,N,N) [key][value], ffn_prev (B,C) and,
 * with the short convolution, its last conv-1 inputs of r, k, v (3,B,conv-1,C); laid out
 * [L][att_prev | S | ffn_prev | conv]. */
size_t rwkv6_state_numel(const Rwkv6Dims *d, int B);
real *rwkv6_state_att_prev(const Rwkv6Dims *d, real *state, int B, int l);
real *rwkv6_state_wkv(const Rwkv6Dims *d, real *state, int B, int l);
real *rwkv6_state_ffn_prev(const Rwkv6Dims *d, real *state, int B, int l);
real *rwkv6_state_conv(const Rwkv6Dims *d, real *state, int B, int l); /* (3,B,conv-1,C): r, k, v */

/* ---- RWKV-6's own small ops (forward/backward pairs, ops.h's signature rule; fp64-tested) --------- */
/* ddlerp: out(R,C) = x + (prev - x) * (mu + m); mu (C) a parameter, m (R,C) data-dependent */
void rwkv6_ddlerp_forward(real *out, const real *x, const real *prev, const real *mu, const real *m, int R, int C);
void rwkv6_ddlerp_backward(real *dx, real *dprev, real *dmu, real *dm, const real *dout, const real *x,
                           const real *prev, const real *mu, const real *m, int R, int C);
/* decay: ez = exp(z) (saved), w = exp(-ez), in (0,1) */
void rwkv6_decay_forward(real *w, real *ez, const real *z, int n);
void rwkv6_decay_backward(real *dz, const real *dw, const real *w, const real *ez, int n);

#endif
