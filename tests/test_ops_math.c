/* test_ops_math.c -- the single-precision exp, sigmoid and tanh of ops.h (the fp32 build's; the fp64 build
 * uses libm's) against double precision: ulp error over random bit patterns (every exponent, both signs),
 * a dense sweep of the range where results are finite and non-zero, and the edges: +-0, +-inf, NaN,
 * overflow and underflow thresholds, subnormal results, FLT_MAX, the smallest subnormal input. The stated
 * bounds (ops.h) are what an exhaustive scan of all 2^32 inputs measured, rounded up: exp 0.94 ulp,
 * sigmoid 2.69 ulp, tanh 2.36 ulp. Plus: a vectorised loop (sigmoid_forward) gives the scalar function's
 * results bit for bit. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ops.h"

#ifndef RWKV_F64
/* |f - ref| in units of the last place of ref as a float (subnormal spacing below FLT_MIN); infinities and NaN
 * must match exactly (returns 0 or 1e30) */
static double ulp_err(float f, double ref) {
    if (ref != ref) return f != f ? 0 : 1e30;
    if (fabs(ref) > FLT_MAX) return isinf(f) && (f > 0) == (ref > 0) ? 0 : 1e30; /* overflows to +-inf */
    if (isinf(f) || f != f) return 1e30;
    int e;
    frexp(fabs(ref), &e); /* |ref| in [2^(e-1), 2^e) */
    double ulp = ldexp(1.0, e - 24);
    if (ulp < ldexp(1.0, -149)) ulp = ldexp(1.0, -149);
    return fabs((double)f - ref) / ulp;
}
static double ref_exp(double x) { return exp(x); }
static double ref_sig(double x) { return 1 / (1 + exp(-x)); }
static double ref_tanh(double x) { return tanh(x); }
static float f_exp(float x) { return ops_expf(x); }
static float f_sig(float x) { return ops_sigmoid(x); }
static float f_tanh(float x) { return ops_tanhf(x); }

typedef struct {
    const char *name;
    float (*f)(float);
    double (*ref)(double);
    double bound;
} Fn;
static const Fn fns[3] = {{"exp", f_exp, ref_exp, 1.0}, {"sigmoid", f_sig, ref_sig, 3.0}, {"tanh", f_tanh, ref_tanh, 3.0}};

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t next_u32(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}

Test(ops_math, ulp_error_within_the_stated_bounds) {
    static const float edges[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, FLT_MAX, -FLT_MAX, FLT_MIN, -FLT_MIN,
                                  0x1p-149f, -0x1p-149f, 88.72283f, 88.72284f, 88.7229f, 89.0f, 89.5f, 100.0f,
                                  -87.33654f, -87.33655f, -87.5f, -100.0f, -103.27893f, -103.97208f, -103.97209f,
                                  -104.0f, -104.5f, -150.0f, -1000.0f, 0.3f, -0.3f, 0x1.333332p-2f, 0x1.333334p-2f,
                                  1e-8f, -1e-8f, 0.5f, 1.0f, -1.0f, 0x1.62e43p-2f, -0x1.62e43p-2f, 9.0f, -9.0f};
    const int nedge = sizeof edges / sizeof *edges, nrand = 400000, nsweep = 400000;
    for (int k = 0; k < 3; k++) {
        const Fn *fn = &fns[k];
        double worst = 0;
        float at = 0;
        for (int i = 0; i < nedge + nrand + nsweep; i++) {
            float x;
            if (i < nedge) x = edges[i];
            else if (i < nedge + nrand) { uint32_t b = next_u32(); memcpy(&x, &b, sizeof x); }
            else x = -110.0f + 210.0f * (float)(i - nedge - nrand) / nsweep; /* [-110, 100) */
            const double e = ulp_err(fn->f(x), fn->ref((double)x));
            if (e > worst || e != e) worst = e, at = x;
        }
        printf("ops_%s: worst %.3f ulp at %a (bound %.1f, used %.0f%%)\n", fn->name, worst, at, fn->bound,
               100 * worst / fn->bound);
        cr_expect(worst <= fn->bound, "ops_%s: %.3f ulp at x = %a (%.9g): over the stated %.1f ulp", fn->name, worst,
                  at, at, fn->bound);
    }
    /* exact values where exactness is owed */
    cr_expect(ops_expf(0.0f) == 1.0f && ops_expf(-0.0f) == 1.0f, "exp(0) must be 1");
    cr_expect(ops_expf(INFINITY) == INFINITY && ops_expf(-INFINITY) == 0.0f, "exp(+-inf)");
    cr_expect(ops_expf(NAN) != ops_expf(NAN) && ops_sigmoid(NAN) != ops_sigmoid(NAN) && ops_tanhf(NAN) != ops_tanhf(NAN),
              "NaN must stay NaN");
    cr_expect(ops_sigmoid(INFINITY) == 1.0f && ops_sigmoid(-INFINITY) == 0.0f && ops_sigmoid(0.0f) == 0.5f,
              "sigmoid(+-inf), sigmoid(0)");
    cr_expect(ops_tanhf(INFINITY) == 1.0f && ops_tanhf(-INFINITY) == -1.0f && ops_tanhf(20.0f) == 1.0f,
              "tanh(+-inf), tanh(20)");
    cr_expect(signbit(ops_tanhf(-0.0f)) && ops_tanhf(-0.0f) == 0.0f, "tanh(-0) = -0");
}

/* The vectorised loops compute what the scalar functions compute, element by element (also at the odd tail) */
Test(ops_math, vector_loops_equal_the_scalar_functions) {
    enum { n = 1003 };
    static real in[n], s[n], t[n];
    for (int i = 0; i < n; i++) in[i] = -95.0f + 190.0f * (float)i / n;
    in[7] = NAN, in[8] = INFINITY, in[9] = -INFINITY, in[10] = -0.0f;
    sigmoid_forward(s, in, NULL, 1, n);
    tanh_forward(t, in, NULL, 1, n);
    for (int i = 0; i < n; i++) {
        const float rs = ops_sigmoid(in[i]), rt = ops_tanhf(in[i]);
        cr_assert(memcmp(&s[i], &rs, sizeof rs) == 0 && memcmp(&t[i], &rt, sizeof rt) == 0,
                  "element %d (x = %a): loop gives %a / %a, the function %a / %a", i, in[i], s[i], t[i], rs, rt);
    }
}
#endif
