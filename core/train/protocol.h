/* protocol.h -- what a run trains and tests on: the training lengths of each step and the test sets
 * (spec/tasks.md "Protocols"). Used by `train`, `evaltask` and `sample`, so the three agree.
 *
 * Training batches (protocol_batch), from the run's RNG (which the checkpoint stores: a resumed run draws
 * exactly what the uninterrupted one draws):
 *   fixed length (task.train_len = N)      B sequences of length N (no length draw);
 *   range, train_len_mode = batch          one length T ~ U{A..B} per batch (gsl_rng_uniform_int), then B
 *                                          sequences of length T (Deletang et al.);
 *   range, train_len_mode = mixed          B lengths T_i ~ U{A..B}, then row i of length T_i, right-padded
 *                                          to max_i T_i with input 0, target 0, mask 0 (rows padded after
 *                                          their end: a causal model's scored outputs do not see it; with
 *                                          train.l2wrap = 1 padded positions get the L2Wrap term, as any
 *                                          unscored position does);
 *   task.protocol = merrill                B rows uniformly with replacement from the finite training set
 *                                          (dataset.h: the train part of length n plus every length-2 pair).
 * Test sets (protocol_testset): the fixed task_testset of (test seed, T); under merrill the length-n set is
 * the held-out part of the split (always from the run's own seed), of which the first test_size rows are
 * evaluated (the split is shuffled, so they are a uniform sample of it). Other test lengths of a merrill
 * run get fresh task_testset sets (lengths never trained on: config validation refuses length 2, which
 * training holds whole, unless n = 2), so one test_lens list serves a sweep over n.
 */
#ifndef RWKV_PROTOCOL_H
#define RWKV_PROTOCOL_H

#include "config.h"
#include "dataset.h"
#include "task.h"

typedef struct {
    Task *task;          /* not owned */
    int lo, hi;          /* training lengths */
    int mixed;           /* one length per sequence */
    int merrill;         /* the finite-dataset protocol: data holds the split */
    FiniteSet data;
    char desc[256];      /* one line: "train lengths 1-40 (one per batch); 47 test lengths 41-500:10" */
} Protocol;

/* For config c (validated) and its task t; builds the Merrill split from the run seed (seconds for large
 * sets). 0, or -1 with err. */
int protocol_init(Protocol *p, const RunConfig *c, Task *t, unsigned long seed, Err *err);
void protocol_free(Protocol *p);

/* One training batch into b (allocated with B rows of p->hi); b->T becomes this step's length. row_len
 * (B entries, may be NULL) gets each row's own length (= b->T except in mixed mode and merrill pairs). */
void protocol_batch(const Protocol *p, gsl_rng *rng, Batch *b, int *row_len);

/* The test set of length T, at most n sequences (allocates b; b->B may be below n only under merrill). */
void protocol_testset(const Protocol *p, int T, int n, unsigned long test_seed, Batch *b);

#endif
