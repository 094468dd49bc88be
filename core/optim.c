/* optim.c -- AdamW, schedule, clipping (see optim.h). Decoupled weight decay: p -= lr * wd * p. */
#include "optim.h"

#include <math.h>
#include <string.h>

void adamw_init(AdamW *o, const AdamWConfig *cfg, size_t n) {
    o->cfg = *cfg;
    o->n = n;
    o->m = xcalloc(n, sizeof(real));
    o->v = xcalloc(n, sizeof(real));
    o->t = 0;
}

void adamw_free(AdamW *o) {
    free(o->m), free(o->v);
    o->m = o->v = NULL;
}

double adamw_lr(const AdamWConfig *c, long t) {
    if (c->warmup > 0 && t < c->warmup) return c->lr * (double)(t + 1) / c->warmup;
    if (!c->cosine) return c->lr;
    long span = c->steps - c->warmup;
    double p = span > 0 ? (double)(t - c->warmup) / span : 1.0;
    if (p > 1) p = 1;
    return c->lr_min + 0.5 * (c->lr - c->lr_min) * (1 + cos(M_PI * p));
}

double grad_norm(const real *g, size_t n) {
    /* blocks of fixed size summed in order: independent of the thread count */
    enum { BLK = 4096 };
    size_t nb = (n + BLK - 1) / BLK;
    double *part = scratch(SCR_GNORM, nb * sizeof(double)); /* every entry written below */
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < nb; b++) {
        double s = 0;
        size_t e = (b + 1) * BLK < n ? (b + 1) * BLK : n;
        for (size_t i = b * BLK; i < e; i++) s += (double)g[i] * g[i];
        part[b] = s;
    }
    double s = 0;
    for (size_t b = 0; b < nb; b++) s += part[b];
    return sqrt(s);
}

void adamw_step(AdamW *o, real *params, real *grads, const ParamTensor *tensors, int ntensors, double *gnorm,
                double *lr_used) {
    double gn = grad_norm(grads, o->n);
    adamw_step_norm(o, params, grads, tensors, ntensors, gn, lr_used);
    if (gnorm) *gnorm = gn;
}

void adamw_step_norm(AdamW *o, real *params, real *grads, const ParamTensor *tensors, int ntensors, double gn,
                     double *lr_used) {
    const AdamWConfig *c = &o->cfg;
    double scale = (c->grad_clip > 0 && gn > c->grad_clip) ? c->grad_clip / gn : 1.0;
    double lr = adamw_lr(c, o->t);
    o->t++;
    double bc1 = 1 - pow(c->beta1, (double)o->t), bc2 = 1 - pow(c->beta2, (double)o->t);
    /* one parallel region for every tensor (a region per tensor woke the threads ~60 times a step); each
     * element on its own, so the thread count does not change the result */
#pragma omp parallel
    for (int ti = 0; ti < ntensors; ti++) {
        const ParamTensor *pt = &tensors[ti];
        double tlr = lr * pt->lr_mult, wd = pt->decay ? c->weight_decay : 0;
        real *p = params + pt->offset, *g = grads + pt->offset, *m = o->m + pt->offset, *v = o->v + pt->offset;
#pragma omp for schedule(static) nowait
        for (size_t i = 0; i < pt->numel; i++) {
            double gi = g[i] * scale;
            m[i] = (real)(c->beta1 * m[i] + (1 - c->beta1) * gi);
            v[i] = (real)(c->beta2 * v[i] + (1 - c->beta2) * gi * gi);
            double upd = (m[i] / bc1) / (sqrt(v[i] / bc2) + c->eps);
            p[i] = (real)(p[i] - tlr * (upd + wd * p[i]));
        }
    }
    if (lr_used) *lr_used = lr;
}
