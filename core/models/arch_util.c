/* arch_util.c -- pieces the architectures share (see arch_util.h). */
#include "arch_util.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <string.h>

real *arch_walk_add(ParamWalk *wk, const char *name, int ndim, int s0, int s1, int s2, int decay) {
    size_t numel = (size_t)s0 * (ndim > 1 ? s1 : 1) * (ndim > 2 ? s2 : 1);
    if (wk->table) {
        ParamTensor *p = &wk->table[wk->n];
        snprintf(p->name, sizeof p->name, "%s", name);
        p->ndim = ndim;
        p->shape[0] = s0, p->shape[1] = ndim > 1 ? s1 : 0, p->shape[2] = ndim > 2 ? s2 : 0;
        p->offset = wk->off;
        p->numel = numel;
        p->decay = decay;
        p->lr_mult = 1;
    }
    real *ptr = wk->base ? wk->base + wk->off : NULL;
    wk->off += numel;
    wk->n++;
    return ptr;
}

real *arch_carve(size_t *off, real *base, size_t n) {
    real *p = base ? base + *off : NULL;
    *off += n;
    return p;
}

/* The Q of a Gaussian matrix with R's diagonal made positive (torch's orthogonal_), computed by modified
 * Gram-Schmidt, applied twice ("twice is enough"), on the k = min(rows,cols) columns of length
 * n = max(rows,cols); this gives exactly that Q without forming an n x n matrix (the head of a 65536-token
 * model would need 32 GiB). */
void arch_orthogonal_init(real *W, int rows, int cols, double gain, gsl_rng *rng) {
    int n = rows > cols ? rows : cols, k = rows > cols ? cols : rows;
    double *Q = xmalloc((size_t)n * k * sizeof(double)); /* column c at Q + c*n */
    for (size_t i = 0; i < (size_t)n * k; i++) Q[i] = gsl_ran_gaussian(rng, 1.0);
    for (int c = 0; c < k; c++) {
        double *qc = Q + (size_t)c * n;
        for (int pass = 0; pass < 2; pass++)
            for (int p = 0; p < c; p++) {
                const double *qp = Q + (size_t)p * n;
                double dot = 0;
                for (int i = 0; i < n; i++) dot += qp[i] * qc[i];
                for (int i = 0; i < n; i++) qc[i] -= dot * qp[i];
            }
        double nr = 0;
        for (int i = 0; i < n; i++) nr += qc[i] * qc[i];
        nr = sqrt(nr);
        CHECK(nr > 0, "orthogonal init: degenerate random matrix (%d x %d)", rows, cols);
        for (int i = 0; i < n; i++) qc[i] /= nr;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++) {
            double q = Q[(size_t)j * n + i] * gain;
            if (rows >= cols) W[(size_t)i * cols + j] = (real)q; // W (n,k)
            else W[(size_t)j * cols + i] = (real)q;              // W = Q^T (k,n)
        }
    free(Q);
}

void arch_copy_last_token(real *dst, const real *x, int B, int T, int C) {
    for (int b = 0; b < B; b++) memcpy(dst + (size_t)b * C, x + ((size_t)b * T + T - 1) * C, C * sizeof(real));
}

void arch_to_float(float *dst, const real *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = (float)src[i];
}
