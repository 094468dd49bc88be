/* gradcheck.h -- finite-difference oracle for the gradient tests (header-only, built with -DRWKV_F64).
 *
 * check_grad() perturbs chosen elements of one tensor by +-h, re-evaluates the scalar loss and compares
 * the central difference with the analytic gradient under a two-part tolerance
 *     |analytic - numeric| <= atol + rtol * |numeric|
 * It prints the worst element, its errors and the headroom (limit / error; > 1 passes).
 */
#ifndef RWKV_GRADCHECK_H
#define RWKV_GRADCHECK_H

#include <criterion/criterion.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>

#include "common.h"

typedef double (*loss_fn)(void *ctx);

typedef struct {
    double atol, rtol, h;
} GradTol;

static const GradTol GRAD_TOL = {1e-8, 1e-5, 1e-6};

static inline void fill_uniform(real *x, size_t n, gsl_rng *rng, double lo, double hi) {
    for (size_t i = 0; i < n; i++) x[i] = (real)(lo + (hi - lo) * gsl_rng_uniform(rng));
}

/* Check up to max_elems elements of x (n) (all if n <= max_elems, else a random subset).
 * Returns the worst ratio err / limit (< 1 passes) and asserts. */
static inline double check_grad(const char *name, real *x, const real *analytic, size_t n, loss_fn f,
                                void *ctx, size_t max_elems, gsl_rng *rng, GradTol tol) {
    _Static_assert(sizeof(real) == sizeof(double), "gradient checks need the fp64 build (-DRWKV_F64)");
    double worst = 0, worst_a = 0, worst_n = 0;
    size_t worst_i = 0, checked = 0;
    for (size_t c = 0; c < (n < max_elems ? n : max_elems); c++) {
        size_t i = n <= max_elems ? c : gsl_rng_uniform_int(rng, n);
        real keep = x[i];
        x[i] = keep + tol.h;
        double fp = f(ctx);
        x[i] = keep - tol.h;
        double fm = f(ctx);
        x[i] = keep;
        double num = (fp - fm) / (2 * tol.h);
        double err = fabs(analytic[i] - num), lim = tol.atol + tol.rtol * fabs(num);
        if (err / lim > worst || checked == 0) {
            worst = err / lim, worst_a = analytic[i], worst_n = num, worst_i = i;
        }
        checked++;
    }
    printf("  grad %-34s n=%-6zu checked=%-4zu worst[%zu]: analytic=% .10e numeric=% .10e  err/limit=%.3f "
           "(headroom %.1fx)\n",
           name, n, checked, worst_i, worst_a, worst_n, worst, worst > 0 ? 1 / worst : INFINITY);
    cr_expect(worst <= 1.0, "%s: gradient mismatch at [%zu]: analytic %.10e vs numeric %.10e", name, worst_i,
              worst_a, worst_n);
    return worst;
}

/* sum(out * w) in a fixed order */
static inline double dot_loss(const real *out, const real *w, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)out[i] * w[i];
    return s;
}

#endif
