/* shortconv.c -- the short causal depthwise convolution (see shortconv.h for the definition and layout).
 *
 * Adjoint: y[t] = sum_j w_j x[t-(K-1)+j] (per channel) gives
 *   dx[t] = sum_j w_j dy[t+(K-1)-j]   (terms with t+(K-1)-j > T-1 absent; inputs from state_in get none)
 *   dw_j += sum_{b,t} dy[t] x[t-(K-1)+j]   (x before t = 0 read from state_in, or zero)
 * Every sum runs in a fixed order (taps ascending, rows ascending), so results do not depend on the
 * thread count, and a sequence split into calls that carry the state gives the same y bit for bit.
 */
#include "shortconv.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <string.h>

/* the input row of sequence b at time tau (-(K-1) <= tau < T), or NULL for a zero row */
static inline const real *input_row(const real *x, const real *state_in, int b, int tau, int T, int C, int K) {
    if (tau >= 0) return x + ((size_t)b * T + tau) * C;
    if (!state_in) return NULL;
    return state_in + ((size_t)b * (K - 1) + (tau + K - 1)) * C;
}

#define SHORTCONV_CBLOCK 16 /* channels per task of the dw reduction */

void shortconv_forward(real *y, const real *x, const real *w, const real *state_in, real *state_out, int B, int T,
                       int C, int K) {
    CHECK(B >= 1 && T >= 1 && C >= 1 && K >= 1, "shortconv_forward: bad shape B=%d T=%d C=%d K=%d (kernel size "
          "model.short_conv must be >= 1 when the convolution is on)", B, T, C, K);
    const long R = (long)B * T;
    // y[b,t,c] = sum_j w[c*K+j] * x[b, t-(K-1)+j, c]
#pragma omp parallel for schedule(static)
    for (long r = 0; r < R; r++) {
        const int b = (int)(r / T), t = (int)(r % T);
        real *restrict yr = y + (size_t)r * C;
        for (int c = 0; c < C; c++) yr[c] = 0;
        for (int j = 0; j < K; j++) {
            const real *restrict xs = input_row(x, state_in, b, t - (K - 1) + j, T, C, K);
            if (!xs) continue;
            for (int c = 0; c < C; c++) yr[c] += w[(size_t)c * K + j] * xs[c];
        }
    }
    if (!state_out || K == 1) return;
    /* state_out row s = input at time T-(K-1)+s. When state_out aliases state_in (T < K-1), row s is written
     * from row s+T > s of state_in, which ascending s has not overwritten yet. */
    for (int b = 0; b < B; b++)
        for (int s = 0; s < K - 1; s++) {
            real *dst = state_out + ((size_t)b * (K - 1) + s) * C;
            const real *src = input_row(x, state_in, b, T - (K - 1) + s, T, C, K);
            if (src) memmove(dst, src, (size_t)C * sizeof(real));
            else memset(dst, 0, (size_t)C * sizeof(real));
        }
}

void shortconv_backward(real *dx, real *dw, const real *dy, const real *x, const real *w, const real *state_in,
                        int B, int T, int C, int K) {
    CHECK(B >= 1 && T >= 1 && C >= 1 && K >= 1, "shortconv_backward: bad shape B=%d T=%d C=%d K=%d", B, T, C, K);
    const long R = (long)B * T;
    // fwd: y[t] = sum_j w_j x[t-(K-1)+j]  ->  dx[t] = sum_j w_j dy[t+(K-1)-j]   (dx assigned)
#pragma omp parallel for schedule(static)
    for (long r = 0; r < R; r++) {
        const int b = (int)(r / T), t = (int)(r % T);
        real *restrict dxr = dx + (size_t)r * C;
        for (int c = 0; c < C; c++) dxr[c] = 0;
        for (int j = 0; j < K; j++) {
            const int tt = t + (K - 1) - j;
            if (tt >= T) continue;
            const real *restrict dyr = dy + ((size_t)b * T + tt) * C;
            for (int c = 0; c < C; c++) dxr[c] += w[(size_t)c * K + j] * dyr[c];
        }
    }
    // fwd: same line  ->  dw_j += sum_{b,t} dy[t] x[t-(K-1)+j]; parallel over channel blocks, rows in order
    const int nblk = (C + SHORTCONV_CBLOCK - 1) / SHORTCONV_CBLOCK;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblk; blk++) {
        const int c0 = blk * SHORTCONV_CBLOCK, c1 = c0 + SHORTCONV_CBLOCK < C ? c0 + SHORTCONV_CBLOCK : C;
        for (long r = 0; r < R; r++) {
            const int b = (int)(r / T), t = (int)(r % T);
            const real *restrict dyr = dy + (size_t)r * C;
            for (int j = 0; j < K; j++) {
                const real *restrict xs = input_row(x, state_in, b, t - (K - 1) + j, T, C, K);
                if (!xs) continue;
                for (int c = c0; c < c1; c++) dw[(size_t)c * K + j] += dyr[c] * xs[c];
            }
        }
    }
}

void shortconv_init(real *w, int C, int K, gsl_rng *rng) {
    const double bound = 1 / sqrt((double)K);
    for (size_t i = 0; i < (size_t)C * K; i++) w[i] = (real)gsl_ran_flat(rng, -bound, bound);
}

size_t shortconv3_numel(const int C[3], int B, int K) {
    return K > 1 ? (size_t)B * (K - 1) * ((size_t)C[0] + C[1] + C[2]) : 0;
}

void shortconv3_forward(real *const y[3], const real *const x[3], const real *const w[3], real *hist,
                        const real *state_in, real *state_out, const int C[3], int B, int T, int K) {
    const size_t n = shortconv3_numel(C, B, K);
    if (n) {
        CHECK(hist, "shortconv3_forward: K=%d needs a history buffer", K);
        if (state_in) memcpy(hist, state_in, n * sizeof(real));
        else memset(hist, 0, n * sizeof(real));
    }
    size_t o = 0; /* offset of conv i's block in the history and the states */
    for (int i = 0; i < 3; i++) {
        shortconv_forward(y[i], x[i], w[i], n ? hist + o : NULL, n && state_out ? state_out + o : NULL, B, T, C[i], K);
        o += (size_t)B * (K - 1) * C[i];
    }
}

void shortconv3_backward(real *const dx[3], real *const dw[3], const real *const dy[3], const real *const x[3],
                         const real *const w[3], const real *hist, const int C[3], int B, int T, int K) {
    const size_t n = shortconv3_numel(C, B, K);
    size_t o = 0;
    for (int i = 0; i < 3; i++) {
        shortconv_backward(dx[i], dw[i], dy[i], x[i], w[i], n ? hist + o : NULL, B, T, C[i], K);
        o += (size_t)B * (K - 1) * C[i];
    }
}
