/* wkv7.h -- the RWKV-7 state recurrence ("WKV7"), forward and backward, with state checkpointing.
 *
 * Per sequence b and head h, S is N x N (row i = value index, column j = key index), fp32/fp64 as `real`:
 *   sa_i    = sum_j S[i][j] * (-kk_j)                       (old state)
 *   S[i][j] = S[i][j] * w_j + sa_i * (kk_j * a_j) + v_i * k_j
 *   y_i     = sum_j S[i][j] * r_j                           (new state)
 * Inputs r, w, k, v, kk, a are (B,T,C) with head h in columns h*N..h*N+N-1 (k is the replacement key,
 * kk the normalised removal key, a the in-context rate). States s0/sT are (B,H,N,N).
 *
 * Memory: the backward must not keep S for every token. The forward stores S before tokens
 * 0, K, 2K, ... in `ckpt` (B,H,ceil(T/K),N,N); the backward recomputes the K states of a chunk from its
 * checkpoint and walks it in reverse. K = 1 stores every state (no recomputation): the reference the
 * chunked path is tested against. Results are identical for every K (same arithmetic, same order).
 */
#ifndef RWKV_WKV7_H
#define RWKV_WKV7_H

#include "common.h"

typedef struct {
    int B, T, H, N;
    int K; /* checkpoint interval, >= 1 */
} Wkv7Dims;

size_t wkv7_ckpt_numel(const Wkv7Dims *d);

/* y (B,T,C) = ; ckpt (see above) = ; sT (B,H,N,N) = final state (NULL: not wanted);
 * states (B,T,H,N,N) = state after every token (NULL: not wanted; trajectories only).
 * s0 NULL = zero initial state. */
void wkv7_forward(real *y, real *ckpt, real *sT, real *states, const real *r, const real *w, const real *k,
                  const real *v, const real *kk, const real *a, const real *s0, const Wkv7Dims *d);

/* Gradients (+=) for r, w, k, v, kk, a (B,T,C) and ds0 (B,H,N,N, NULL: not wanted), given dy (B,T,C) and
 * dsT (B,H,N,N; NULL = 0). Parallel over B x H; each task owns its slices, so no reduction races. */
void wkv7_backward(real *dr, real *dw, real *dk, real *dv, real *dkk, real *da, real *ds0, const real *dy,
                   const real *dsT, const real *ckpt, const real *r, const real *w, const real *k,
                   const real *v, const real *kk, const real *a, const Wkv7Dims *d);

#endif
