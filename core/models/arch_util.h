/* arch_util.h -- what the architectures' files share (model.h is what callers see; this is what an
 * architecture is built from): the layout walk that describes a model's tensors once for its table, its
 * params and its grads; the carving of one growing activation buffer; the official orthogonal
 * initialiser; two copies every forward needs (last token's row, a trace in float); and the skeleton
 * every architecture has around its mixer (baselines.md), forward and backward side by side:
 *
 *   x = emb[token]  (then LN(x; ln0) when blocks.0.ln0 exists)           arch_embed_*
 *   L blocks:  x += Mixer(LN(x; ln1));  x += FFN(LN(x; ln2))             the architecture's own mixer;
 *              FFN = RWKV-7's channel mix (RWKV-7, DeltaNet, Gated DeltaNet: arch_ffn_*; RWKV-6 has
 *              its own with receptance)
 *   logits = head LN(x; ln_out) (+ head.bias when present)               arch_head_*
 *
 * Dimensions: B sequences, T tokens, R = B*T rows (tokens), C width, V vocabulary, F FFN width.
 * Gradient rule as ops.h: forwards assign, parameter gradients accumulate (+=); each backward says what
 * it does with its input gradient.
 */
#ifndef RWKV_ARCH_UTIL_H
#define RWKV_ARCH_UTIL_H

#include <gsl/gsl_rng.h>

#include <string.h>

#include "common.h"
#include "param.h"

/* One walk over the tensors in checkpoint order: counting (base NULL, table NULL), filling the table
 * (table non-NULL) or handing out pointers into a buffer (base non-NULL). */
typedef struct {
    size_t off;            /* reals visited so far */
    real *base;            /* NULL: no pointers (counting, or a model without gradients) */
    ParamTensor *table;    /* NULL: no table wanted */
    int n;                 /* tensors visited so far */
} ParamWalk;

/* Visit tensor `name` of shape [s0] / [s0,s1] / [s0,s1,s2] (ndim 1..3); decay: AdamW weight decay applies.
 * Returns its place in wk->base (NULL when base is NULL). lr_mult starts at 1. */
real *arch_walk_add(ParamWalk *wk, const char *name, int ndim, int s0, int s1, int s2, int decay);

/* The same with the name from a printf format ("blocks.%d.ln1.weight", l). */
real *arch_walk_addf(ParamWalk *wk, int ndim, int s0, int s1, int s2, int decay, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* A tensor table from a layout walk (count, then fill): xcalloc'ed, *ntensors entries, caller frees. */
typedef void (*ArchLayoutFn)(const void *shape, ParamWalk *wk); /* walks without handing out pointers */
ParamTensor *arch_table_of(ArchLayoutFn layout, const void *shape, int *ntensors, size_t *nparams);

/* A short-conv filter [C,K] (shortconv.h) named by fmt and block l ("blocks.%d.att.r_conv.weight"): one
 * rule for every architecture, no weight decay (a K-tap filter per channel, not one of the 2-D matrices
 * that rwkv7.md decays). */
real *arch_walk_conv(ParamWalk *wk, int C, int K, const char *fmt, int l);

/* The short conv of an RWKV mixer (RWKV-6 and RWKV-7 alike: on r, k, v right after their projections):
 * the filters blocks.l.att.{r,k,v}_conv.weight [C,K] (arch_walk_conv), their init (shortconv_init each, r, k,
 * v in this order) and the history they keep in the recurrent state, (3,B,K-1,C) (shortconv3_numel). */
void arch_layout_rkv_conv(ParamWalk *wk, int l, int C, int K, real **r, real **k, real **v);
void arch_init_rkv_conv(real *r, real *k, real *v, int C, int K, gsl_rng *rng);
size_t arch_rkv_conv_state_numel(int C, int B, int K);

/* Activation buffers: the next n reals of base at *off (NULL when base is NULL: a sizing pass). */
real *arch_carve(size_t *off, real *base, size_t n);

/* An activation buffer that only grows (inference with varying lengths does not reallocate) and the
 * forward's copy of its tokens. Contents are not kept across a growth: the forward writes all it reads. */
typedef struct {
    real *buf;
    size_t cap;                /* reals allocated */
    int *tokens;
    size_t rows_cap;           /* tokens allocated */
} ArchBuf;
void arch_buf_reserve(ArchBuf *b, size_t numel, size_t rows);
void arch_buf_free(ArchBuf *b);
size_t arch_buf_bytes(const ArchBuf *b); /* what it holds now: reals and tokens */

/* W (rows,cols) = gain * (semi-)orthogonal, as torch.nn.init.orthogonal_ (the official initialiser). */
void arch_orthogonal_init(real *W, int rows, int cols, double gain, gsl_rng *rng);

/* dst (B,C) = x (B,T,C) at t = T-1 (the token-shift state a forward hands on) */
void arch_copy_last_token(real *dst, const real *x, int B, int T, int C);
/* dst = (float)src, n values (traces are float) */
void arch_to_float(float *dst, const real *src, size_t n);

/* ---- the skeleton: embedding and head ---------------------------------------------------------- */
/* Its parameters: pointers into params (or grads, for their gradients); NULL where absent. */
typedef struct {
    real *emb;                 /* (V,C) emb.weight */
    real *ln0_w, *ln0_b;       /* (C) blocks.0.ln0, or NULL */
    real *lnout_w, *lnout_b;   /* (C) ln_out */
    real *head, *head_b;       /* (V,C) head.weight; (V) head.bias or NULL */
} ArchEnds;
/* The ArchEnds view of an architecture's weights struct W (one with these seven fields). */
#define ARCH_ENDS_OF(W) \
    ((ArchEnds){(W)->emb, (W)->ln0_w, (W)->ln0_b, (W)->lnout_w, (W)->lnout_b, (W)->head, (W)->head_b})

/* Checkpoint order: emb.weight, blocks.0.ln0.{weight,bias} (has_ln0) before the blocks;
 * ln_out.{weight,bias}, head.weight, head.bias (head_bias) after them. Pointers as arch_walk_add. */
void arch_layout_first(ParamWalk *wk, int V, int C, int has_ln0, real **emb, real **ln0_w, real **ln0_b);
void arch_layout_last(ParamWalk *wk, int V, int C, int head_bias, real **lnout_w, real **lnout_b, real **head,
                      real **head_b);
/* blocks.l.ln1.{weight,bias}, blocks.l.ln2.{weight,bias}: the first tensors of every block */
void arch_layout_block_norms(ParamWalk *wk, int l, int C, real **ln1_w, real **ln1_b, real **ln2_w,
                             real **ln2_b);
/* Official init (rwkv7.md, every architecture): emb U(-1e-4, 1e-4), ln0 weight 1 (first, before the
 * blocks draw); ln_out weight 1, head orthogonal with gain 0.5 max(1, sqrt(V/C)) (last). Biases stay 0. */
void arch_init_first(const ArchEnds *w, int V, int C, gsl_rng *rng);
void arch_init_last(const ArchEnds *w, int V, int C, gsl_rng *rng);

/* Its activations (carved by arch_ends_carve: emb..logits; arch_ends_carve_grad: dx, dlnf, demb). */
typedef struct {
    real *emb, *ln0_m, *ln0_r;                  /* (R,C) (R) (R): the raw embedding when ln0 exists */
    real *x_fin, *lnf, *lnf_m, *lnf_r, *logits; /* (R,C) (R,C) (R) (R) (R,V) */
    real *dx, *dlnf, *demb;                     /* backward scratch (R,C) each; NULL without backward */
    const unsigned char *rows;                  /* the last forward's head rows (NULL: every row), and */
    int nrows;                                  /* how many: logits then holds those rows, packed */
} ArchEndActs;
void arch_ends_carve(ArchEndActs *e, size_t *off, real *base, size_t R, int C, int V);
void arch_ends_carve_grad(ArchEndActs *e, size_t *off, real *base, size_t R, int C, int with_backward);

/* x0 (R,C) = emb[tokens], then LN(.; ln0) when w->ln0_w (the raw embedding kept in e->emb) */
void arch_embed_forward(real *x0, ArchEndActs *e, const int *tokens, const ArchEnds *w, int R, int C);
/* g->emb (and ln0) += from dx0 (R,C), the gradient of the first block's input */
void arch_embed_backward(const ArchEnds *g, ArchEndActs *e, const real *dx0, const int *tokens, const ArchEnds *w,
                         int R, int C, int V);
/* e->logits (B,T,V) = head LN(e->x_fin; ln_out) (+ head_b); returned. last_only (inference): only each
 * sequence's last row b*T + T-1, the other rows left unset. rows (B*T flags, or NULL; training): the head
 * only at the rows flagged, their logits packed in order as the first nrows rows of e->logits (the loss
 * needs no other: MQAR scores 4 of 64 positions, and the head is most of its step); e->lnf is packed the
 * same way. The flags are read again by arch_head_backward, so they must live until it. */
const real *arch_head_forward(ArchEndActs *e, const ArchEnds *w, int B, int T, int C, int V, int last_only,
                              const unsigned char *rows);
/* e->dx (R,C) = d loss / d x_fin (assigned); g->lnout, g->head +=. After a forward with head rows, dlogits
 * holds their nrows packed rows (model_backward writes it so); the other rows' logit gradient is zero. */
void arch_head_backward(ArchEndActs *e, const ArchEnds *g, const real *dlogits, const ArchEnds *w, int R, int C,
                        int V);

/* ---- the skeleton: the FFN (RWKV-7's channel mix), shared by RWKV-7, DeltaNet and Gated DeltaNet ---- *
 *   ln2 = LN(x_mid; ln2);  fxk = ln2 + (shift(ln2) - ln2) * ffn.x_k;
 *   x_next = x_mid + ffn.value relu(ffn.key fxk)^2      (optional biases: RWKV-7 research checkpoints) */
typedef struct {
    real *ln2_w, *ln2_b;       /* (C) blocks.l.ln2 */
    real *x_k;                 /* (C) ffn.x_k */
    real *Wk, *bk;             /* (F,C) ffn.key.weight; (F) its bias or NULL */
    real *Wv, *bv;             /* (C,F) ffn.value.weight; (C) its bias or NULL */
} ArchFfn;
/* The ArchFfn view of an architecture's layer struct P (fields ln2_w ln2_b f_xk f_Wk f_bk f_Wv f_bv). */
#define ARCH_FFN_OF(P) ((ArchFfn){(P)->ln2_w, (P)->ln2_b, (P)->f_xk, (P)->f_Wk, (P)->f_bk, (P)->f_Wv, (P)->f_bv})
/* ffn.x_k, ffn.key.weight (+ .bias with bias_k), ffn.value.weight (+ .bias with bias_v) of block l */
void arch_layout_ffn(ParamWalk *wk, int l, int C, int F, int bias_k, int bias_v, real **x_k, real **Wk, real **bk,
                     real **Wv, real **bv);
/* ffn.x_k = 1 - (c/C)^(r1^4), r1 = 1 - l/L (rwkv7.md); the key's orthogonal init is the caller's (its
 * place in the random stream differs between architectures) */
void arch_init_ffn_mix(real *x_k, int l, int L, int C);

typedef struct {
    real *x_mid, *ln2, *ln2_m, *ln2_r, *prev2, *fxk; /* (R,C) (R,C) (R) (R) (R,C) (R,C) */
    real *fk, *fr;                                   /* (R,F) (R,F) */
} ArchFfnActs;
void arch_ffn_carve(ArchFfnActs *a, size_t *off, real *base, size_t R, int C, int F);
/* x_next (R,C) = x_mid + FFN(x_mid), x_mid = a->x_mid; shift_in (B,C) the previous ln2 row of each
 * sequence (NULL = zeros), shift_out (B,C) its last one (NULL = not wanted; may alias shift_in) */
void arch_ffn_forward(real *x_next, ArchFfnActs *a, const ArchFfn *w, const real *shift_in, real *shift_out, int B,
                      int T, int C, int F);
/* g->x_mid (R,C) = dx_next + d FFN / d x_mid (assigned); gw +=. g's other arrays are scratch that the
 * caller has zeroed. No gradient flows into shift_in. */
void arch_ffn_backward(ArchFfnActs *g, const ArchFfn *gw, const real *dx_next, const ArchFfnActs *a, const ArchFfn *w,
                       int B, int T, int C, int F);

static inline void arch_zero(real *p, size_t n) { memset(p, 0, n * sizeof(real)); }

#endif
