/* task.h -- synthetic task generators: (rng, B, T) -> inputs[B,T], targets[B,T], mask[B,T].
 *
 * A Task is created from the [task] config section. Token ids are in [0, vocab); the model uses one
 * vocabulary for inputs and targets (emb and head both [V,C]). mask marks positions that count for loss
 * and accuracy. Generation is deterministic for an RNG state and independent of thread count.
 */
#ifndef RWKV_TASK_H
#define RWKV_TASK_H

#include <gsl/gsl_rng.h>

#include "common.h"
#include "config.h"

typedef struct {
    int B, T;
    int *inputs;           /* (B,T) */
    int *targets;          /* (B,T) */
    unsigned char *mask;   /* (B,T) 1 = counts */
} Batch;

void batch_alloc(Batch *b, int B, int T);
void batch_free(Batch *b);

typedef struct Task Task;

/* NULL + err on a bad name/variant (message lists the allowed values). */
Task *task_create(const RunConfig *cfg, Err *err);
void task_free(Task *t);
int task_vocab(const Task *t);          /* V for the model */
const char *task_describe(const Task *t); /* one line, e.g. "S5 (120 elements), swaps inputs (11), ..." */

/* Fresh training samples: fills b (already allocated with B,T) drawing from rng. */
void task_sample(Task *t, gsl_rng *rng, Batch *b);

/* The fixed test set for (seed, length): n sequences of length T, always the same for the same
 * (seed, T, n), independent of the training stream. Allocates b. */
void task_testset(Task *t, unsigned long seed, int T, int n, Batch *b);

#endif
