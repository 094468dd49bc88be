/* wkv_vec.h -- the vector helpers of the WKV recurrences (wkv7.c, wkv6.c): one definition of the lane
 * width, the loads and stores of a state row, the fused multiply-add and the fixed-order horizontal sum.
 * Included by those kernels only (static inline helpers, no symbols of their own). */
#ifndef RWKV_WKV_VEC_H
#define RWKV_WKV_VEC_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common.h"

/* Vectors of WKV_LANES reals (GCC/Clang vector extensions: one AVX-512 register for fp32, two for fp64; the
 * compiler lowers them to whatever the target has). A state row of N reals is NV = ceil(N / WKV_LANES) such
 * vectors, the last one zero-padded when N is not a multiple (loads fill the missing lanes with 0, stores
 * write only the N - WKV_LANES * q valid ones). Every product-sum is an explicit fused multiply-add, so the
 * rounding does not depend on what the compiler contracts. */
#define WKV_LANES 16
#pragma GCC diagnostic ignored "-Wpsabi" /* fp64 vectors are 128 bytes: a note about an old ABI change */
typedef real wvec __attribute__((vector_size(WKV_LANES * sizeof(real))));

#define WKV_INLINE static inline __attribute__((always_inline))

WKV_INLINE wvec wv_load(const real *p, int n) { /* n valid lanes (>= WKV_LANES: a whole vector) */
    wvec x = {0};
    memcpy(&x, p, (n >= WKV_LANES ? WKV_LANES : n) * sizeof(real));
    return x;
}
WKV_INLINE void wv_store(real *p, wvec x, int n) { memcpy(p, &x, (n >= WKV_LANES ? WKV_LANES : n) * sizeof(real)); }
WKV_INLINE wvec wv_set(real s) {
    wvec x;
    for (int l = 0; l < WKV_LANES; l++) x[l] = s;
    return x;
}
WKV_INLINE wvec wv_fma(wvec a, wvec b, wvec c) { /* a * b + c, one rounding per lane */
    wvec x;
#ifdef RWKV_F64
    for (int l = 0; l < WKV_LANES; l++) x[l] = fma(a[l], b[l], c[l]);
#else
    for (int l = 0; l < WKV_LANES; l++) x[l] = fmaf(a[l], b[l], c[l]);
#endif
    return x;
}

/* The lanes of x and of y summed, each by the same fixed halving tree (lane l + lane l+8, then l + l+4, then
 * l + l+2, then the last two: ((x0+x8)+(x4+x12)) + ((x2+x10)+(x6+x14)) + ...), two at a time so that the
 * shuffles serve both: out[0] = sum of x, out[1] = sum of y. The order depends neither on the thread count
 * nor on N nor on the target, and a sum is the same whichever vector it is paired with. */
WKV_INLINE void wkv_lanes_sum2(wvec x, wvec y, real out[2]) {
    // s[0..7] = x[l] + x[l+8], s[8..15] = y[l] + y[l+8]
    wvec s = __builtin_shufflevector(x, y, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
             __builtin_shufflevector(x, y, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    s = s + __builtin_shufflevector(s, s, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11); // + l+4
    s = s + __builtin_shufflevector(s, s, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13); // + l+2
    s = s + __builtin_shufflevector(s, s, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14); // + l+1
    out[0] = s[0], out[1] = s[8];
}

/* A per-thread scratch array of n vectors, aligned (scratch() gives malloc's alignment only). */
static inline wvec *wv_scratch(int slot, size_t n) {
    char *p = scratch(slot, (n + 1) * sizeof(wvec));
    return (wvec *)(p + (sizeof(wvec) - (uintptr_t)p % sizeof(wvec)) % sizeof(wvec));
}

#endif
