/* lmeval.h -- LM-Evaluation-Harness-style scoring of an RWKV-7 checkpoint (../shared/spec/lmeval.md).
 *
 * A request (context, continuation) returns logprob = sum of log-softmax (fp32 logits, accumulated in
 * double) of the continuation tokens and is_greedy. The context is run once per document from a zero
 * state and its state is shared by every choice with the same context tokens (--no-share recomputes
 * it per choice; results are identical, which the tests check).
 */
#ifndef RWKV_LMEVAL_H
#define RWKV_LMEVAL_H

#include "common.h"
#include "rwkv7.h"

typedef struct {
    const char *model_path;
    const char *tasks;       /* comma list */
    const char *data_dir;    /* vocab + evalsets (default "data") */
    const char *out_dir;     /* results_<time>.json (+ samples) go here (default ".") */
    const char *device;      /* "cpu" */
    long limit;              /* first N documents per task (0 = all) */
    int prefix;              /* -2 newline (resolved via the tokenizer), -1 none, >= 0 token id */
    int split;               /* LMEVAL_SPLIT_LMEVAL | LMEVAL_SPLIT_SEPARATE */
    int samples;             /* write samples_<task>_<time>.jsonl */
    int no_share;            /* recompute the context per choice */
    long bootstrap;          /* resamples for the perplexity stderr */
    int quiet;
    char results_path[4096]; /* out */
} LmevalOpts;

int lmeval_run(LmevalOpts *o, Err *err);

/* Score one continuation given the model state after the context and the logits of the context's last
 * token (lg0, V). state is consumed (advanced). Returns the summed logprob; *greedy = all argmax. */
double lmeval_score_continuation(Rwkv7 *m, real *state, const real *lg0, const int *cont, int ncont, int *greedy);

#endif
