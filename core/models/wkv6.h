/* wkv6.h -- the RWKV-6 state recurrence ("WKV6", x060), forward and backward, with state checkpointing.
 *
 * Per sequence b and head h, S is N x N indexed [key i][value j]: RWKV-6's own orientation, the TRANSPOSE
 * of RWKV-7's (wkv7.h) and of the common orientation of trajectories (model.h: row = value, column = key).
 * The output reads the state BEFORE the update, plus the bonus u:
 *   y_j     = sum_i r_i (S[i][j] + u_i k_i v_j)          (old state)
 *   S[i][j] = w_i S[i][j] + k_i v_j
 * i.e.  y_t = S_{t-1}^T r_t + ((u*k_t).r_t) v_t ,  S_t = diag(w_t) S_{t-1} + k_t v_t^T.
 * In the common orientation (S^T) the transition is S^T_t = S^T_{t-1} diag(w_t) + v_t k_t^T: diagonal.
 * Inputs r, k, v, w are (B,T,C) with head h in columns h*N..h*N+N-1; u is (H,N) (time_faaaa); states s0/sT
 * are (B,H,N,N) in this file's orientation.
 *
 * Memory: the forward stores S before tokens 0, K, 2K, ... in `ckpt` (B,H,ceil(T/K),N,N); the backward
 * recomputes the states of a chunk from its checkpoint and walks it in reverse. K = 1 stores every state.
 * Results are identical for every K (the same arithmetic in the same order).
 */
#ifndef RWKV_WKV6_H
#define RWKV_WKV6_H

#include "common.h"

typedef struct {
    int B, T, H, N;
    int K; /* checkpoint interval, >= 1 */
} Wkv6Dims;

size_t wkv6_ckpt_numel(const Wkv6Dims *d);

/* y (B,T,C) = ; ckpt (see above) = (NULL: no backward will follow); sT (B,H,N,N) = final state (NULL: not
 * wanted; may alias s0); states (B,T,H,N,N) = state after every token, [key][value] (NULL: not wanted).
 * s0 NULL = zero initial state. */
void wkv6_forward(real *y, real *ckpt, real *sT, real *states, const real *r, const real *k, const real *v,
                  const real *w, const real *u, const real *s0, const Wkv6Dims *d);

/* Gradients (+=) for r, k, v, w (B,T,C), u (H,N) and ds0 (B,H,N,N; NULL: not wanted), given dy (B,T,C) and
 * dsT (B,H,N,N; NULL = 0). Parallel over B x H; du is summed over the batch in a fixed order afterwards, so
 * results do not depend on the thread count. */
void wkv6_backward(real *dr, real *dk, real *dv, real *dw, real *du, real *ds0, const real *dy, const real *dsT,
                   const real *ckpt, const real *r, const real *k, const real *v, const real *w, const real *u,
                   const Wkv6Dims *d);

#endif
