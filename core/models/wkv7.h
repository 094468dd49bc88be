/* wkv7.h -- the diagonal-plus-rank-one state recurrence ("WKV7": RWKV-7, DeltaNet, Gated DeltaNet),
 * forward and backward, with state checkpointing.
 *
 * Per sequence b and head h, S is Nv x N (row i = value index < Nv, column j = key index < N), fp32/fp64
 * as `real`; RWKV-7 has Nv = N, Gated DeltaNet with expand_v = e has Nv = e*N:
 *   sa_i    = sum_j S[i][j] * (-kk_j)                       (old state)
 *   S[i][j] = S[i][j] * w_j + sa_i * (kk_j * a_j) + v_i * k_j
 *   y_i     = sum_j S[i][j] * r_j                           (new state)
 * i.e. S_t = S_{t-1} diag(w) + (S_{t-1}(-kk)) (kk*a)^T + v k^T, y = S_t r.
 * Key-side inputs r, w, k, kk, a are (B,T,H*N) with head h in columns h*N..h*N+N-1 (k is the replacement
 * key, kk the removal key, a the in-context rate); value-side v and y are (B,T,H*Nv). States s0/sT are
 * (B,H,Nv,N).
 *
 * Memory: the backward must not keep S for every token. The forward stores S before tokens
 * 0, K, 2K, ... in `ckpt` (B,H,ceil(T/K),Nv,N); the backward recomputes the K states of a chunk from its
 * checkpoint and walks it in reverse. K = 1 stores every state (no recomputation): the reference the
 * chunked path is tested against. Results are identical for every K (same arithmetic, same order).
 */
#ifndef RWKV_WKV7_H
#define RWKV_WKV7_H

#include "common.h"

typedef struct {
    int B, T, H, N;
    int K;  /* checkpoint interval, >= 1 */
    int Nv; /* value head size (rows of S), >= 1; RWKV-7: Nv = N */
} Wkv7Dims;

size_t wkv7_ckpt_numel(const Wkv7Dims *d);

/* y (B,T,H*Nv) = ; ckpt (see above) = ; sT (B,H,Nv,N) = final state (NULL: not wanted; may alias s0);
 * states (B,T,H,Nv,N) = state after every token (NULL: not wanted; trajectories only).
 * s0 NULL = zero initial state. */
void wkv7_forward(real *y, real *ckpt, real *sT, real *states, const real *r, const real *w, const real *k,
                  const real *v, const real *kk, const real *a, const real *s0, const Wkv7Dims *d);

/* Gradients (+=) for r, w, k, kk, a (B,T,H*N), v (B,T,H*Nv) and ds0 (B,H,Nv,N, NULL: not wanted), given
 * dy (B,T,H*Nv) and dsT (B,H,Nv,N; NULL = 0). Inputs may alias each other (DeltaNet passes its key as both
 * k and kk); the gradient outputs must be distinct arrays. Parallel over B x H; each task owns its slices,
 * so no reduction races. */
void wkv7_backward(real *dr, real *dw, real *dk, real *dv, real *dkk, real *da, real *ds0, const real *dy,
                   const real *dsT, const real *ckpt, const real *r, const real *w, const real *k,
                   const real *v, const real *kk, const real *a, const Wkv7Dims *d);

#endif
