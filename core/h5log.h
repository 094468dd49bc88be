/* h5log.h -- the run.h5 writer (schema in README "run.h5 layout").
 *
 *   /  attributes: config (resolved INI text), code_version, seed, arch, param_count, state_size,
 *                  eig_range, scalar ("f32"/"f64")
 *   /train/{step,loss,acc,lr,grad_norm,tokens_per_s}   1-D extendible, chunked, appended + flushed
 *   /eval/{step,length,token_acc,seq_acc}               1-D extendible, appended + flushed
 *   /trajectories/probe<p>/{tokens,targets,pred} [T] int32
 *   /trajectories/probe<p>/layer<l>/{state [T,H,N,N], state_norm [T,H], decay [T,C], a [T,C],
 *                                    eig_real [T,H,N], eig_imag [T,H,N]}  float32, gzip, chunked
 * Every function returns 0 or -1 with err filled; HDF5's own error stack printing is silenced.
 */
#ifndef RWKV_H5LOG_H
#define RWKV_H5LOG_H

#include "common.h"

typedef struct H5Log H5Log;

typedef struct {
    const char *config_ini;
    const char *code_version;
    long seed;
    const char *arch;
    long param_count;
    long state_size;
    const char *eig_range;
} H5RunAttrs;

/* Create a new run.h5 (fails if it exists). */
H5Log *h5log_create(const char *path, const H5RunAttrs *attrs, Err *err);
/* Reopen for --resume: drops /train and /eval records with step > last_step (written after the
 * checkpoint being resumed), so the resumed file equals an uninterrupted one. */
H5Log *h5log_reopen(const char *path, long last_step, Err *err);
int h5log_train(H5Log *h, long step, double loss, double acc, double lr, double grad_norm,
                double tokens_per_s, Err *err);
int h5log_eval(H5Log *h, long step, int length, double token_acc, double seq_acc, Err *err);

/* One probe's full trajectory. Per layer l, arrays are laid out [L][T][...]:
 *   state (L,T,H,N,N) -- WKV state after each token, row i = value index, column j = key index
 *   decay (L,T,C) w;  a (L,T,C);  kk (L,T,C) normalised removal key
 * state_norm (Frobenius, per head) and the eigenvalues of the transition matrix
 * M = diag(w_h) - kk_h^T (a_h * kk_h)   i.e. M[i][j] = w[i]*(i==j) - kk[i]*a[j]*kk[j]
 * (gsl_eigen_nonsymm) are computed here. */
int h5log_trajectory(H5Log *h, int probe, int L, int T, int H, int N, const int *tokens,
                     const int *targets, const int *pred, const float *state, const float *decay,
                     const float *a, const float *kk, Err *err);
int h5log_flush(H5Log *h, Err *err);
void h5log_close(H5Log *h);

/* Eigenvalues of M = diag(w) - kk^T (a*kk), N x N (exposed for tests). re, im: (N) sorted by
 * descending real part then imaginary part. Returns 0 or -1. */
int transition_eigenvalues(int N, const float *w, const float *a, const float *kk, double *re, double *im);

#endif
