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

#include "common.h"

/* y (B,T,C) = conv(x (B,T,C); w (C,K)); state_in / state_out (B,K-1,C) or NULL */
void shortconv_forward(real *y, const real *x, const real *w, const real *state_in, real *state_out, int B, int T,
                       int C, int K);
/* dx (B,T,C) = ; dw (C,K) += */
void shortconv_backward(real *dx, real *dw, const real *dy, const real *x, const real *w, const real *state_in,
                        int B, int T, int C, int K);

#endif
