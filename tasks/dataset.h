/* dataset.h -- finite datasets of a task: distinct sequences of one length, split into a training part and
 * a held-out test part that share no sequence (Merrill et al., ICML 2024; task.protocol = merrill).
 *
 * Distinct sequences (dataset_distinct): sequences are drawn from the task's own generator (task_sample,
 * one at a time) and kept when their inputs are new (two sequences are the same when their inputs are;
 * the labels are a function of the inputs). Drawing stops when `max` distinct sequences are held (then
 * they are a sample without replacement of the task's length-T sequences) or when 25 x (the number held),
 * and at least 1000, consecutive draws bring nothing new (then they are all of them: `complete`). For a
 * generator that is uniform over its support of S sequences (group word problems: i.i.d. uniform inputs)
 * the chance that this rule stops while a sequence is still missing is below 2 exp(-25), about 3e-11.
 * Cost: about S (ln S + 25) draws when S <= max, about max draws when S >> max.
 *
 * The Merrill split (dataset_merrill) for length n, run seed `seed`:
 *   1. the distinct length-n sequences, at most max (the paper: 1M), from the fixed generator
 *      task_rng_fixed(seed, n, DATASET_SALT) -- independent of the training stream and of the test sets;
 *   2. shuffled (Fisher-Yates, same generator); the first round(train_fraction x N) train, the rest test;
 *   3. every length-2 sequence (e.g. 3600 for a 60-element alphabet; not capped by max, only by
 *      DATASET_PAIRS_MAX), from task_rng_fixed(seed, 2, DATASET_PAIRS_SALT), added to training -- as the
 *      paper does. Their code's default also adds the
 *      lengths 3..n-1; this does not. For n = 2 the pairs are the length-n set itself and nothing is added
 *      (adding them would put the test sequences into training).
 * Training batches (dataset_sample) draw rows uniformly with replacement from train + pairs (each
 * sequence equally likely, as an epoch over the concatenated set is); pairs are right-padded to n with
 * mask 0.
 */
#ifndef RWKV_DATASET_H
#define RWKV_DATASET_H

#include "task.h"

#define DATASET_SALT 0xda7a5e7d15c0ffeeULL
#define DATASET_PAIRS_SALT 0x9a125da7a5e7beefULL
#define DATASET_PAIRS_MAX (1L << 22) /* length-2 sequences kept at most (an alphabet of 2048 tokens) */

typedef struct {
    int n;          /* the length */
    Batch train;    /* (ntrain, n) */
    Batch test;     /* (ntest, n): held out, no sequence of train */
    Batch pairs;    /* (npairs, 2): every length-2 sequence, trained on; B = 0 (empty) when n == 2 */
    long distinct;  /* distinct length-n sequences found (= train.B + test.B) */
    int complete;   /* 1: all of the task's length-n sequences; 0: capped at max (a sample without replacement) */
    int pairs_complete; /* 1: every length-2 sequence (0: capped at DATASET_PAIRS_MAX, or n == 2) */
} FiniteSet;

/* The distinct sequences of length T (see above) into *out (allocated, rows in the order first drawn);
 * *complete as above. 0, or -1 with err. */
int dataset_distinct(Task *t, gsl_rng *rng, int T, long max, Batch *out, int *complete, Err *err);

/* The Merrill split of length n (n >= 2, 0 < train_fraction < 1, max >= 2: the length-n sequences kept at
 * most). 0, or -1 with err when a part would be empty. */
int dataset_merrill(Task *t, unsigned long seed, int n, double train_fraction, long max, FiniteSet *d, Err *err);
void dataset_free(FiniteSet *d);

/* One training batch: b (allocated with T = d->n) gets b->B rows drawn uniformly with replacement from
 * train + pairs (one gsl_rng_uniform_int per row). row_len (b->B entries, may be NULL): each row's own
 * length (n, or 2 for a pair). */
void dataset_sample(const FiniteSet *d, gsl_rng *rng, Batch *b, int *row_len);

#endif
