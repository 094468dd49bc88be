/* shortconv.h -- the short causal convolution (`model.short_conv = K`, 0 = off): depthwise over time,
 * no bias, the same switch for every architecture (fla's ShortConvolution, applied before the activation).
 *
 * Dimensions: B sequences, T tokens, C channels, K kernel taps (K >= 1). Rows are tokens, (B,T,C).
 *   y[b,t,c] = sum_{j<K} w[c*K + j] * x[b, t-(K-1)+j, c]
 * so tap j = K-1 multiplies the current token and tap 0 the oldest one (PyTorch Conv1d with left padding
 * K-1). Inputs before t = 0 come from state_in (B,K-1,C): row s (s = 0..K-2) is the input at time
 * s-(K-1), oldest first; state_in NULL = zeros (a fresh sequence). state_out (B,K-1,C), same layout,
 * receives the last K-1 inputs (reaching into state_in when T < K-1) so that the next call continues the
 * sequence; NULL = not wanted; it may alias state_in.
 *
 * Gradients: shortconv_backward ASSIGNS dx (=) and ACCUMULATES dw (+=), given dy (B,T,C) of the forward
 * run on the same x, w, state_in. No gradient flows into state_in (training starts from zero states).
 */
#ifndef RWKV_SHORTCONV_H
#define RWKV_SHORTCONV_H

#include <gsl/gsl_rng.h>

#include "common.h"

#define SHORTCONV_MAX_K 64 /* kernel sizes a model file may declare */

/* y (B,T,C) = conv(x (B,T,C); w (C,K)); state_in / state_out (B,K-1,C) or NULL */
void shortconv_forward(real *y, const real *x, const real *w, const real *state_in, real *state_out, int B, int T,
                       int C, int K);
/* dx (B,T,C) = ; dw (C,K) += */
void shortconv_backward(real *dx, real *dw, const real *dy, const real *x, const real *w, const real *state_in,
                        int B, int T, int C, int K);

/* The one initialisation of the filters, for every architecture: PyTorch Conv1d's default
 * (kaiming-uniform with a = sqrt(5)), which for a depthwise filter (fan_in = K) is U(-1/sqrt(K), 1/sqrt(K)).
 * w (C,K); C*K draws from rng in order. */
void shortconv_init(real *w, int C, int K, gsl_rng *rng);

/* A mixer's three convolutions side by side (RWKV: r, k, v; DeltaNet: q, k, v), channels C[i] each, with one
 * history block in the recurrent state: (B,K-1,C[0]) then (B,K-1,C[1]) then (B,K-1,C[2]), each laid out as
 * state_in above. shortconv3_numel gives its size. The forward copies the history it starts from into hist
 * (same size; zeros for state_in NULL) so that the backward need not keep state_in; hist and the states
 * are NULL when K = 1 (no history). state_out may alias state_in. */
size_t shortconv3_numel(const int C[3], int B, int K);
void shortconv3_forward(real *const y[3], const real *const x[3], const real *const w[3], real *hist,
                        const real *state_in, real *state_out, const int C[3], int B, int T, int K);
/* dx[i] (B,T,C[i]) = ; dw[i] (C[i],K) += ; hist as the forward left it */
void shortconv3_backward(real *const dx[3], real *const dw[3], const real *const dy[3], const real *const x[3],
                         const real *const w[3], const real *hist, const int C[3], int B, int T, int K);

#endif
