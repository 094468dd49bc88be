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
#include "lmeval_data.h"

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
    int shard_i, shard_n;    /* --shard I/N: score range I of N of each task, write a shard file instead of the
                                results (lmeval_shard.h); shard_n 0 = unsharded */
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

/* ---- shared by the unsharded run and lmeval-merge (lmeval_shard.c): one metrics and output path ---- */
struct cJSON;

/* results["<task>"] from the per-document values of n documents in order: acc (argmax == gold, or
 * lambada's greedy flag), accn (acc_norm, tasks that have it), ll (lambada's summed logprob); metrics as in
 * the file comment of lmeval.c, stderrs "N/A" unless n >= 2 and bootstrap > 0 (bootstrap seed 1234).
 * Prints the task's summary line on stdout unless quiet. */
struct cJSON *lmeval_task_metrics(const LmTask *t, const double *acc, const double *accn, const double *ll, int n,
                                  long bootstrap, int quiet);

/* One task of a results file. t needs only its header (name, ndocs, is_loglik_ppl, has_acc_norm, source,
 * note), not its documents. */
typedef struct {
    const LmTask *t;
    int n;                /* documents scored (n-samples "effective") */
    struct cJSON *res;    /* results["<task>"]; lmeval_results_text takes it over (sets it NULL) */
    const char *samples;  /* samples_<task>_*.jsonl text (NULL: empty) */
    size_t samples_len;
} LmTaskResult;

/* The lm-eval results JSON text (caller frees; NULL when out of memory). o gives limit, bootstrap, split,
 * no_share and device; start_wall is the run's start in seconds since the epoch, t0 / t1 its monotonic
 * start and end. */
char *lmeval_results_text(const LmevalOpts *o, LmTaskResult *tr, int ntasks, int prefix, const char *model_name,
                          const char *arch, double start_wall, double t0, double t1);

/* Publish the samples files (when samples) and, last, the results file under one fresh date_id into
 * outdir (lmeval_publish); the results file's path goes to results_path. */
int lmeval_publish_results(const char *outdir, const char *rprefix, const LmTaskResult *tr, int ntasks, int samples,
                           const char *rtext, char *results_path, size_t cap, Err *err);

#endif
