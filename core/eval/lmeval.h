/* lmeval.h -- LM-Evaluation-Harness-style scoring of an RWKV-7 checkpoint (../shared/spec/lmeval.md).
 *
 * A request (context, continuation) returns logprob = sum of log-softmax (fp32 logits, accumulated in
 * double) of the continuation tokens and is_greedy. The context is run once per document from a zero
 * state and its state is shared by every choice with the same context tokens (--no-share recomputes
 * it per choice; results are identical, which the tests check).
 *
 * --device cuda (core/cuda, when this binary holds the engine): the model's weights go to the GPU (bf16 by
 * default, --dtype fp16|fp32), every request of a task is scored in one call that sorts and packs them by
 * length, computes each shared context once and copies its state to every choice, and runs the head only
 * at scored positions (cuda_rwkv7_score_ex); metrics, samples and the results file are the same code as
 * for the CPU.
 */
#ifndef RWKV_LMEVAL_H
#define RWKV_LMEVAL_H

#include "common.h"
#include "model.h"
#include "model_io.h"

typedef struct {
    const char *model_path;
    const char *tasks;       /* comma list */
    const char *data_dir;    /* vocab + evalsets (default "data") */
    const char *out_dir;     /* OUT: results go to OUT/<model_name_sanitized>/results_<date_id>.json (+ samples),
                                or to dirname(OUT)/<stem>_<date_id>.json when OUT ends in .json, as lm-eval
                                (lmeval_out.h); created like mkdir -p (default ".") */
    const char *device;      /* "cpu" (default) or "cuda" */
    const char *dtype;       /* cuda: weight storage "bf16" (NULL = bf16), "fp16", "fp32"; cpu: NULL or "fp32" */
    int batch;               /* cuda: requests per forward, 0 = as many as fit in 65536 tokens; cpu: ignored */
    long limit;              /* first N documents per task (0 = all; < 0 is an error) */
    int prefix;              /* -2 newline (resolved via the tokenizer), -1 none, >= 0 token id */
    int split;               /* LMEVAL_SPLIT_LMEVAL | LMEVAL_SPLIT_SEPARATE */
    int samples;             /* write samples_<task>_<time>.jsonl */
    int no_share;            /* recompute the context per choice */
    long bootstrap;          /* resamples for the perplexity stderr: 0 (no stderrs, "N/A", as lm-eval) or
                                2..LMEVAL_BOOTSTRAP_MAX */
    int quiet;
    ModelLoadOpts load;      /* --allow-unknown-tensors, --force-memory (model_load_opts_default first) */
    char results_path[4096]; /* out: the results file written ("" when the run failed) */
} LmevalOpts;

#define LMEVAL_BOOTSTRAP_MAX 1000000 /* 10x lm-eval's default; cost ~ resamples x LAMBADA's 5153 documents */
#define LMEVAL_MAX_TASKS 16

/* Check every input (options, task names listed once each, vocabulary, every task's data files, the
 * output directory, the model, every request's tokens), then score, then write. A bad input is an error
 * before the first forward pass, and a failed run writes no results or samples file. */
int lmeval_run(LmevalOpts *o, Err *err);

/* Score one continuation given the model state after the context and the logits of the context's last
 * token (lg0, V). state is consumed (advanced). Returns the summed logprob; *greedy = all argmax. */
double lmeval_score_continuation(Model *m, real *state, const real *lg0, const int *cont, int ncont, int *greedy);

#endif
