/* sample.h -- the next token from a row of logits: greedy, or sampled with temperature and top-p, from a
 * counter-based random number (the same draws whether a run is continued from a saved state or not).
 *
 * Rules (the CPU and the GPU paths of `generate` share them):
 *  - temperature 0: the first index of the largest logit (NaN never wins);
 *  - temperature T > 0: p_i = exp((l_i - max) / T) (double; NaN logits get 0); the nucleus is the smallest
 *    set of most probable tokens (ties: lower id first) whose mass reaches top_p of the total (top_p >= 1:
 *    every token, in id order); the token is where u * (nucleus mass) falls in the nucleus's running sum;
 *  - u = sample_uniform(seed, sequence, position): splitmix64 of the three, in [0, 1).
 */
#ifndef RWKV_SAMPLE_H
#define RWKV_SAMPLE_H

#include <stdint.h>

#include "common.h"

double sample_uniform(uint64_t seed, uint64_t seq, uint64_t pos);
int sample_argmax(const real *logits, int V);

typedef struct {
    int V;
    double *p;   /* (V) */
    int *heap;   /* (V) */
} Sampler;
void sampler_init(Sampler *s, int V);
void sampler_free(Sampler *s);
/* temperature >= 0, top_p in (0, 1], u in [0, 1) */
int sampler_pick(Sampler *s, const real *logits, double temperature, double top_p, double u);

#endif
