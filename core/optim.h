/* optim.h -- AdamW with linear warmup + cosine (or constant) schedule and global-norm clipping.
 * Operates on the flat parameter buffer, per tensor of the model's table (weight decay only where the
 * table says so: 2-D .weight matrices; per-tensor lr multiplier, e.g. 2x for w0). */
#ifndef RWKV_OPTIM_H
#define RWKV_OPTIM_H

#include "common.h"
#include "param.h"

typedef struct {
    double lr, lr_min;
    long warmup, steps;
    int cosine;               /* 0: constant after warmup */
    double beta1, beta2, eps;
    double weight_decay, grad_clip; /* grad_clip <= 0: off */
} AdamWConfig;

typedef struct {
    AdamWConfig cfg;
    size_t n;
    real *m, *v;              /* (n) first/second moments */
    long t;                   /* steps taken */
} AdamW;

void adamw_init(AdamW *o, const AdamWConfig *cfg, size_t n);
void adamw_free(AdamW *o);
/* Learning rate for step t (0-based): linear warmup to lr, then cosine to lr_min (or constant). */
double adamw_lr(const AdamWConfig *cfg, long t);
/* L2 norm of the gradient (fixed summation order). */
double grad_norm(const real *g, size_t n);
/* One update, with the gradient scaled by grad_clip / norm when its norm exceeds grad_clip (grads are
 * not modified); returns the pre-clip norm in *gnorm. */
void adamw_step(AdamW *o, real *params, real *grads, const ParamTensor *tensors, int ntensors, double *gnorm,
                double *lr_used);
/* The same when the caller already has grad_norm(grads) (e.g. to stop on a non-finite norm first). */
void adamw_step_norm(AdamW *o, real *params, real *grads, const ParamTensor *tensors, int ntensors, double gnorm,
                     double *lr_used);

#endif
