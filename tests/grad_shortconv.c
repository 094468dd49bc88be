/* grad_shortconv.c -- the short causal convolution (shortconv.h) in double precision: forward against a
 * direct padded-sequence definition, backward (dx, dw) against central finite differences from a
 * non-zero state_in (also with T < K-1 and K = 1), and a sequence split into calls that carry the state
 * (state_out aliasing state_in, token by token) equal to one pass bit for bit. */
#include <string.h>

#include "gradcheck.h"
#include "shortconv.h"

enum { B = 2, C = 5 };

typedef struct {
    int T, K;
    real *x, *w, *s0, *y, *dy;
} ConvCase;

static double conv_loss(void *ctx) {
    ConvCase *c = ctx;
    shortconv_forward(c->y, c->x, c->w, c->s0, NULL, B, c->T, C, c->K);
    return dot_loss(c->y, c->dy, (size_t)B * c->T * C);
}

static void make_case(ConvCase *c, gsl_rng *rng, int T, int K, int with_state) {
    c->T = T, c->K = K;
    size_t nx = (size_t)B * T * C, ns = (size_t)B * (K - 1) * C + 1;
    c->x = calloc(nx, sizeof(real)), c->y = calloc(nx, sizeof(real)), c->dy = calloc(nx, sizeof(real));
    c->w = calloc((size_t)C * K, sizeof(real)), c->s0 = with_state ? calloc(ns, sizeof(real)) : NULL;
    fill_uniform(c->x, nx, rng, -1, 1), fill_uniform(c->dy, nx, rng, -1, 1);
    fill_uniform(c->w, (size_t)C * K, rng, -1, 1);
    if (c->s0) fill_uniform(c->s0, ns - 1, rng, -1, 1);
}
static void free_case(ConvCase *c) { free(c->x), free(c->w), free(c->s0), free(c->y), free(c->dy); }

/* Definition, written independently: prepend the K-1 state rows (or zeros) to x, then
 * y[t] = sum_j w[j] * padded[t + j] (PyTorch's Conv1d with left padding K-1, no bias). */
static double max_diff_vs_definition(const ConvCase *c) {
    const int T = c->T, K = c->K, P = T + K - 1;
    real *pad = calloc((size_t)P * C, sizeof(real)), *y = calloc((size_t)T * C, sizeof(real));
    double worst = 0;
    for (int b = 0; b < B; b++) {
        for (int p = 0; p < P; p++)
            for (int ch = 0; ch < C; ch++)
                pad[(size_t)p * C + ch] = p < K - 1 ? (c->s0 ? c->s0[((size_t)b * (K - 1) + p) * C + ch] : 0)
                                                    : c->x[((size_t)b * T + p - (K - 1)) * C + ch];
        for (int t = 0; t < T; t++)
            for (int ch = 0; ch < C; ch++) {
                double s = 0;
                for (int j = 0; j < K; j++) s += c->w[ch * K + j] * pad[(size_t)(t + j) * C + ch];
                worst = fmax(worst, fabs(s - c->y[((size_t)b * T + t) * C + ch]));
            }
    }
    free(pad), free(y);
    return worst;
}

static void fd_case(int T, int K, int with_state, unsigned long seed) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, seed);
    ConvCase c;
    make_case(&c, rng, T, K, with_state);
    conv_loss(&c);
    double dd = max_diff_vs_definition(&c);
    printf("shortconv T=%d K=%d state_in=%s: forward vs padded definition max |diff| = %.3g\n", T, K,
           with_state ? "random" : "NULL", dd);
    cr_expect(dd <= 1e-14, "shortconv forward differs from its definition by %g", dd);
    size_t nx = (size_t)B * T * C;
    real *dx = calloc(nx, sizeof(real)), *dw = calloc((size_t)C * K, sizeof(real));
    fill_uniform(dx, nx, rng, 5, 6); /* dx is assigned: garbage in it must not matter */
    shortconv_backward(dx, dw, c.dy, c.x, c.w, c.s0, B, T, C, K);
    check_grad("shortconv.x", c.x, dx, nx, conv_loss, &c, nx, rng, GRAD_TOL);
    check_grad("shortconv.w", c.w, dw, (size_t)C * K, conv_loss, &c, (size_t)C * K, rng, GRAD_TOL);
    /* dw accumulates: a second backward doubles it */
    real *dw2 = calloc((size_t)C * K, sizeof(real));
    memcpy(dw2, dw, (size_t)C * K * sizeof(real));
    shortconv_backward(dx, dw2, c.dy, c.x, c.w, c.s0, B, T, C, K);
    for (int i = 0; i < C * K; i++) cr_expect(fabs(dw2[i] - 2 * dw[i]) <= 1e-12 * (1 + fabs(dw[i])), "dw is not +=");
    free(dx), free(dw), free(dw2);
    free_case(&c);
    gsl_rng_free(rng);
}

Test(grad_shortconv, finite_differences_k4_state) { fd_case(9, 4, 1, 1); }
Test(grad_shortconv, finite_differences_k4_fresh) { fd_case(9, 4, 0, 2); }
Test(grad_shortconv, finite_differences_short_sequence) { fd_case(2, 4, 1, 3); } /* T < K-1 */
Test(grad_shortconv, finite_differences_k1) { fd_case(5, 1, 0, 4); }
Test(grad_shortconv, finite_differences_k6) { fd_case(7, 6, 1, 5); }

/* One pass over T tokens == the same tokens in pieces (3, then 1 token at a time, then the rest), each piece
 * continuing from the previous state_out, with state_out aliasing state_in. */
Test(grad_shortconv, state_carry_equals_one_pass) {
    enum { T = 11, K = 4 };
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 9);
    ConvCase c;
    make_case(&c, rng, T, K, 1);
    real yfull[B * T * C], sfull[B * (K - 1) * C];
    shortconv_forward(yfull, c.x, c.w, c.s0, sfull, B, T, C, K);
    const int pieces[] = {3, 1, 1, 6};
    real s[B * (K - 1) * C], xp[B * T * C], yp[B * T * C];
    memcpy(s, c.s0, sizeof s);
    double worst = 0;
    for (int p = 0, t0 = 0; p < 4; t0 += pieces[p], p++) {
        const int n = pieces[p];
        for (int b = 0; b < B; b++) memcpy(xp + (size_t)b * n * C, c.x + ((size_t)b * T + t0) * C, (size_t)n * C * sizeof(real));
        shortconv_forward(yp, xp, c.w, s, s, B, n, C, K);
        for (int b = 0; b < B; b++)
            for (int i = 0; i < n * C; i++) worst = fmax(worst, fabs(yp[(size_t)b * n * C + i] - yfull[((size_t)b * T + t0) * C + i]));
    }
    for (int i = 0; i < B * (K - 1) * C; i++) worst = fmax(worst, fabs(s[i] - sfull[i]));
    printf("shortconv pieces (3,1,1,6) carrying the state vs one pass: max |diff| = %.3g\n", worst);
    cr_expect(worst == 0, "carrying the state differs from one pass by %g", worst);
    free_case(&c);
    gsl_rng_free(rng);
}
