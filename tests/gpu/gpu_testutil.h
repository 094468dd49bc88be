/* gpu_testutil.h -- helpers shared by test_gpu.c and bench_gpu.c (header-only): random models in the
 * realistic regime, per-sequence slices of a batched state, the CPU oracle over a ragged batch. */
#ifndef RWKV_GPU_TESTUTIL_H
#define RWKV_GPU_TESTUTIL_H

#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "rwkv7.h"

static inline int gt_ends(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* splitmix64: a counter-based generator, so that large tensors can be filled in parallel reproducibly */
static inline uint64_t gt_mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
static inline double gt_uniform(uint64_t seed, uint64_t i) { /* in [0,1) */
    return (gt_mix(seed * 0x2545f4914f6cdd1dull + i) >> 11) * (1.0 / 9007199254740992.0);
}

/* Fill every parameter in the realistic regime of rwkv7.md: decay from w0 in about (0.55, 0.99), mixes
 * in (0,1), norms near 1, matrices uniform with unit output variance for unit inputs (fan-in scaled),
 * embeddings of unit scale. Deterministic in seed, independent of the thread count. */
static inline void gt_fill_model(Rwkv7 *m, uint64_t seed) {
    for (int ti = 0; ti < m->ntensors; ti++) {
        const ParamTensor *p = &m->tensors[ti];
        const char *nm = p->name;
        real *x = m->params + p->offset;
        double lo = -1, hi = 1;
        if ((strstr(nm, ".ln") || !strncmp(nm, "ln_out", 6)) && gt_ends(nm, ".weight")) lo = 0.8, hi = 1.2;
        else if (gt_ends(nm, ".bias")) lo = -0.1, hi = 0.1;
        else if (!strcmp(nm, "emb.weight")) lo = -1, hi = 1;
        else if (gt_ends(nm, "x_r") || gt_ends(nm, "x_w") || gt_ends(nm, "x_k") || gt_ends(nm, "x_v") ||
                 gt_ends(nm, "x_a") || gt_ends(nm, "x_g"))
            lo = 0, hi = 1;
        else if (gt_ends(nm, ".w0")) lo = -4, hi = 0.5;
        else if (gt_ends(nm, ".a0") || gt_ends(nm, ".v0")) lo = -1, hi = 1;
        else if (gt_ends(nm, ".k_k")) lo = 0.5, hi = 1;
        else if (gt_ends(nm, ".k_a")) lo = 0.8, hi = 1.2;
        else if (gt_ends(nm, ".r_k")) lo = -0.5, hi = 0.5;
        else if (p->ndim == 2) { /* LoRA factors [C,D] / [D,C] (fan-in = rows), Linear [O,I] (fan-in = cols) */
            int lora = gt_ends(nm, "1") || gt_ends(nm, "2");
            double fan = lora ? p->shape[0] : p->shape[1], s = sqrt(3.0 / fan);
            lo = -s, hi = s;
        }
        const uint64_t ts = gt_mix(seed + 7919ull * ti);
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < p->numel; i++) x[i] = (real)(lo + (hi - lo) * gt_uniform(ts, i));
    }
}

/* one sequence's state (B = 1 layout) <-> slot b of a state of B sequences */
static inline void gt_state_get(const Rwkv7Dims *d, const float *full, int B, int b, float *one) {
    const size_t C = d->C, S = (size_t)d->H * d->N * d->N;
    for (int l = 0; l < d->L; l++) {
        memcpy(rwkv7_state_att_prev(d, one, 1, l), rwkv7_state_att_prev(d, (real *)full, B, l) + b * C, C * sizeof(float));
        memcpy(rwkv7_state_wkv(d, one, 1, l), rwkv7_state_wkv(d, (real *)full, B, l) + b * S, S * sizeof(float));
        memcpy(rwkv7_state_ffn_prev(d, one, 1, l), rwkv7_state_ffn_prev(d, (real *)full, B, l) + b * C, C * sizeof(float));
    }
}
static inline void gt_state_put(const Rwkv7Dims *d, float *full, int B, int b, const float *one) {
    const size_t C = d->C, S = (size_t)d->H * d->N * d->N;
    for (int l = 0; l < d->L; l++) {
        memcpy(rwkv7_state_att_prev(d, full, B, l) + b * C, rwkv7_state_att_prev(d, (real *)one, 1, l), C * sizeof(float));
        memcpy(rwkv7_state_wkv(d, full, B, l) + b * S, rwkv7_state_wkv(d, (real *)one, 1, l), S * sizeof(float));
        memcpy(rwkv7_state_ffn_prev(d, full, B, l) + b * C, rwkv7_state_ffn_prev(d, (real *)one, 1, l), C * sizeof(float));
    }
}

/* CPU oracle over a ragged batch: sequence b (lens[b] tokens, packed) from slot b of state_in (NULL = zero);
 * logits (sum lens, V) = every row; state_out (may be NULL) = the final states. */
static inline void gt_cpu_ragged(Rwkv7 *m, const int *tokens, const int *lens, int B, const float *state_in,
                                 float *state_out, float *logits) {
    const Rwkv7Dims *d = &m->d;
    const size_t n1 = rwkv7_state_numel(d, 1);
    float *st = xmalloc(n1 * sizeof(float));
    size_t off = 0;
    for (int b = 0; b < B; b++) {
        if (state_in) gt_state_get(d, state_in, B, b, st);
        else memset(st, 0, n1 * sizeof(float));
        const real *lg = rwkv7_forward(m, tokens + off, 1, lens[b], 16, st, st, NULL);
        if (logits) memcpy(logits + off * d->V, lg, (size_t)lens[b] * d->V * sizeof(float));
        if (state_out) gt_state_put(d, state_out, B, b, st);
        off += lens[b];
    }
    free(st);
}

#endif
