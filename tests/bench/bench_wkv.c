/* bench_wkv.c -- times the WKV7 recurrence (wkv7_forward, wkv7_backward) and the WKV6 one (wkv6_forward,
 * wkv6_backward) alone, at the trainer's shapes.
 *
 * Not part of `make test` (no timed assertions anywhere); build and run with
 *   make build/bench_wkv && OMP_NUM_THREADS=1 build/bench_wkv [reps]
 * Cases: N = 32 (B 64, T 128, H 4: the L2 C128 bench layer) and N = 64 (B 32, T 128, H 4: L4 C256),
 * K = 16 (the trainer's checkpoint interval), inputs in the trained regime (w in (0.55, 1), kk unit per head,
 * a in (0, 1)). For each: the fastest of `reps` calls (default 7) after one warm-up, as ms and GFLOP/s with
 * the work counted per token, head and state element as
 *   forward  9 flops (sa = S(-kk): 2; S' = S w + sa b + v k: 5; y = S' r: 2),
 *   backward 26 flops (the forward's 7 to recompute the chunk's states from its checkpoint, then
 *            G += dy r^T, dr, dw, db, dk, dsa, dv, dq: 2 each, G <- G w + dsa q^T: 3).
 * and for WKV6 (same shapes, w in (0.3, 1))
 *   forward  5 flops (y += r_i S_i: 2; S' = w S + k v^T: 3),
 *   backward 14 flops (the forward's 3 to recompute, then G . S, G . v, S . dy, dv += G k: 2 each, G <- w G +
 *            r dy^T: 3).
 * A checksum of the outputs is printed so that runs can be compared for identical results. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "wkv6.h"
#include "wkv7.h"

static unsigned long long lcg = 88172645463325252ull;
static double urand(void) {
    lcg ^= lcg << 13, lcg ^= lcg >> 7, lcg ^= lcg << 17;
    return (double)(lcg >> 11) / 9007199254740992.0;
}
static real *filled(size_t n, double lo, double hi) {
    real *x = xmalloc(n * sizeof(real));
    for (size_t i = 0; i < n; i++) x[i] = (real)(lo + (hi - lo) * urand());
    return x;
}
static double checksum(const real *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * (double)((i % 7) + 1);
    return s;
}

static void run(int B, int T, int H, int N, int reps) {
    Wkv7Dims d = {.B = B, .T = T, .H = H, .N = N, .K = 16, .Nv = N};
    const size_t nx = (size_t)B * T * H * N;
    real *r = filled(nx, -1, 1), *w = filled(nx, 0.55, 0.999), *k = filled(nx, -1, 1), *v = filled(nx, -1, 1);
    real *kk = filled(nx, -1, 1), *a = filled(nx, 0.01, 0.99), *dy = filled(nx, -1, 1);
    for (size_t h = 0; h < nx / N; h++) {
        double s = 0;
        for (int j = 0; j < N; j++) s += (double)kk[h * N + j] * kk[h * N + j];
        for (int j = 0; j < N; j++) kk[h * N + j] = (real)(kk[h * N + j] / sqrt(s));
    }
    real *y = xcalloc(nx, sizeof(real)), *ckpt = xcalloc(wkv7_ckpt_numel(&d), sizeof(real));
    real *g[6];
    for (int i = 0; i < 6; i++) g[i] = xcalloc(nx, sizeof(real));
    double best_f = INFINITY, best_b = INFINITY;
    for (int it = 0; it <= reps; it++) {
        double t0 = now_seconds();
        wkv7_forward(y, ckpt, NULL, NULL, r, w, k, v, kk, a, NULL, &d);
        double t1 = now_seconds();
        for (int i = 0; i < 6; i++) memset(g[i], 0, nx * sizeof(real));
        double t2 = now_seconds();
        wkv7_backward(g[0], g[1], g[2], g[3], g[4], g[5], NULL, dy, NULL, ckpt, r, w, k, v, kk, a, &d);
        double t3 = now_seconds();
        if (it > 0) best_f = fmin(best_f, t1 - t0), best_b = fmin(best_b, t3 - t2);
    }
    const double elems = (double)B * T * H * N * N;
    double cs = checksum(y, nx);
    for (int i = 0; i < 6; i++) cs += checksum(g[i], nx);
    printf("wkv7 N=%-3d B=%-3d T=%d H=%d  forward %8.2f ms %7.2f GFLOP/s   backward %8.2f ms %7.2f GFLOP/s   "
           "checksum %.9e\n",
           N, B, T, H, 1e3 * best_f, 9 * elems / best_f * 1e-9, 1e3 * best_b, 26 * elems / best_b * 1e-9, cs);
    free(r), free(w), free(k), free(v), free(kk), free(a), free(dy), free(y), free(ckpt);
    for (int i = 0; i < 6; i++) free(g[i]);
}

static void run6(int B, int T, int H, int N, int reps) {
    Wkv6Dims d = {.B = B, .T = T, .H = H, .N = N, .K = 16};
    const size_t nx = (size_t)B * T * H * N;
    real *r = filled(nx, -1, 1), *k = filled(nx, -1, 1), *v = filled(nx, -1, 1), *w = filled(nx, 0.3, 0.999);
    real *u = filled((size_t)H * N, -1, 1), *dy = filled(nx, -1, 1);
    real *y = xcalloc(nx, sizeof(real)), *ckpt = xcalloc(wkv6_ckpt_numel(&d), sizeof(real));
    real *g[5];
    for (int i = 0; i < 4; i++) g[i] = xcalloc(nx, sizeof(real));
    g[4] = xcalloc((size_t)H * N, sizeof(real));
    double best_f = INFINITY, best_b = INFINITY;
    for (int it = 0; it <= reps; it++) {
        double t0 = now_seconds();
        wkv6_forward(y, ckpt, NULL, NULL, r, k, v, w, u, NULL, &d);
        double t1 = now_seconds();
        for (int i = 0; i < 4; i++) memset(g[i], 0, nx * sizeof(real));
        memset(g[4], 0, (size_t)H * N * sizeof(real));
        double t2 = now_seconds();
        wkv6_backward(g[0], g[1], g[2], g[3], g[4], NULL, dy, NULL, ckpt, r, k, v, w, u, &d);
        double t3 = now_seconds();
        if (it > 0) best_f = fmin(best_f, t1 - t0), best_b = fmin(best_b, t3 - t2);
    }
    const double elems = (double)B * T * H * N * N;
    double cs = checksum(y, nx) + checksum(g[4], (size_t)H * N);
    for (int i = 0; i < 4; i++) cs += checksum(g[i], nx);
    printf("wkv6 N=%-3d B=%-3d T=%d H=%d  forward %8.2f ms %7.2f GFLOP/s   backward %8.2f ms %7.2f GFLOP/s   "
           "checksum %.9e\n",
           N, B, T, H, 1e3 * best_f, 5 * elems / best_f * 1e-9, 1e3 * best_b, 14 * elems / best_b * 1e-9, cs);
    free(r), free(k), free(v), free(w), free(u), free(dy), free(y), free(ckpt);
    for (int i = 0; i < 5; i++) free(g[i]);
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    CHECK(reps >= 1, "bench_wkv: reps must be >= 1 (got '%s')", argv[1]);
    run(64, 128, 4, 32, reps);
    run(32, 128, 4, 64, reps);
    run6(64, 128, 4, 32, reps);
    run6(32, 128, 4, 64, reps);
    return 0;
}
