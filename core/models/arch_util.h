/* arch_util.h -- what the architectures' files share (model.h is what callers see; this is what an
 * architecture is built from): the layout walk that describes a model's tensors once for its table, its
 * params and its grads; the carving of one activation buffer; the official orthogonal initialiser; and two
 * copies every forward needs (last token's row, a trace in float).
 */
#ifndef RWKV_ARCH_UTIL_H
#define RWKV_ARCH_UTIL_H

#include <gsl/gsl_rng.h>

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

/* Activation buffers: the next n reals of base at *off (NULL when base is NULL: a sizing pass). */
real *arch_carve(size_t *off, real *base, size_t n);

/* W (rows,cols) = gain * (semi-)orthogonal, as torch.nn.init.orthogonal_ (the official initialiser). */
void arch_orthogonal_init(real *W, int rows, int cols, double gain, gsl_rng *rng);

/* dst (B,C) = x (B,T,C) at t = T-1 (the token-shift state a forward hands on) */
void arch_copy_last_token(real *dst, const real *x, int B, int T, int C);
/* dst = (float)src, n values (traces are float) */
void arch_to_float(float *dst, const real *src, size_t n);

#endif
