/* step.h -- the gradients of one training step, computed over a fixed number of batch shards.
 *
 * The batch of B sequences is cut into S = train.shards contiguous parts (shard s: sequences
 * [s*B/S, (s+1)*B/S)). Shard 0 runs on the model itself, every other shard on a replica of it (its own
 * activations, loss buffers and gradients; the parameters copied from the model at each step). Each shard
 * runs forward, loss and backward with the loss gradient normalised by the whole batch's counted tokens,
 * so its logit gradients are exactly those of an unsharded step; the parameter gradients are then summed
 * in shard order into the model's. The result therefore depends on S, never on the thread count:
 *
 *   threads <= S (and >= 2): the shards run at the same time, one thread each (our loops and BLAS
 *                            single-threaded inside a shard); a thread takes the shards s, s+threads, ...
 *   otherwise:               the shards run one after another, each with every thread.
 *
 * Why: at the sizes this trainer is for (C = 128, B*T = 8192) a matrix product split over two threads runs
 * at 57-70% of the square-size rate and every short elementwise pass pays a wake-up, while two independent
 * halves of the batch keep both cores busy (measured: BENCHMARKS.md, issue 12).
 */
#ifndef RWKV_STEP_H
#define RWKV_STEP_H

#include "model.h"

#define STEP_MAX_SHARDS 1024

typedef struct {
    Model *m;        /* shard 0 and the home of the result (m->grads) */
    int S;           /* shards as configured (a batch smaller than S uses B shards of one sequence) */
    Model **rep;     /* (S) the model of each shard: rep[0] = m, the replicas created on first use */
    double *loss;    /* (S) each shard's loss, correct and counted positions in the last step */
    long *nc, *cnt;
    double fwd_s;    /* last step: wall seconds of shard 0's forward + loss (its thread), and of the whole step */
    double step_s;
    int full_head;   /* 1: the head at every row (bench's baseline); 0 (default): at the counted rows only
                        (ModelFwd.head_rows; every row anyway with L2Wrap). Same loss and gradients. */
} TrainStep;

void train_step_init(TrainStep *ts, Model *m, int shards);
void train_step_free(TrainStep *ts);
/* m->grads = d loss / d params of the masked mean cross-entropy over the batch (B,T) (grads are zeroed
 * first; L2Wrap when m->l2wrap). Returns the loss; *ncorrect and *ncount as model_loss over the batch. */
double train_step_grads(TrainStep *ts, const int *inputs, const int *targets, const unsigned char *mask, int B,
                        int T, int K, long *ncorrect, long *ncount);
/* Activation bytes of the model and its replicas (each architecture's act_bytes). */
size_t train_step_act_bytes(const TrainStep *ts);
/* The shards a batch of B sequences is cut into: min(S, B); the largest has ceil(B / that) sequences. */
int train_step_nshards(int B, int S);

#endif
