/* lmeval_shard.h -- document-range shards of an lm-eval run and their merge (issue 10).
 *
 * Scope: `rwkvlab lmeval --shard I/N` scores one contiguous range of each task's documents and writes a
 * shard file; `rwkvlab lmeval-merge` reads the N shard files of a run, refuses them unless they are the
 * N parts of one run, and writes the lm-eval results JSON and samples files that the unsharded run
 * writes (lmeval_task_metrics, lmeval_results_text and lmeval_publish_results in lmeval.c: one code path).
 *
 * Rules:
 *   - Ranges: a task's documents (after --limit) are split into N contiguous ranges [lo, hi) balanced by
 *     the tokens of their requests (context + continuation of every choice): boundary s (0 < s < N) is
 *     the document index k whose token prefix sum is closest to s/N of the task's tokens (ties: the
 *     lower k). Every shard computes the same boundaries from the same tokenised requests. A range may
 *     be empty (fewer documents than shards).
 *   - Shard file: OUT/<model_name_sanitized>/lmeval_shard_<I>of<N>.json (the directory lmeval would
 *     write results to), written atomically (temp file, fsync, rename): a reader sees the previous file
 *     or the complete new one, never a part; a re-run of a shard replaces its file.
 *   - Contents (format "rwkvlab-lmeval-shard", format_version 2): code version, model (path, arch, size in
 *     bytes, hash), device ("cpu", or "cuda:<g>": g the first entry of CUDA_VISIBLE_DEVICES, else 0), the
 *     weight type ("fp32" on the CPU, --dtype or "bf16" on the GPU) and batch size (--batch on the GPU,
 *     0 = automatic; 1 on the CPU, as the results file reports them), shard index and count, tasks, resolved prefix token, split, limit, bootstrap
 *     iterations, shared context state, samples flag, time stamps; per task: name, source, note, kind,
 *     documents in the file and after --limit, a hash of every tokenised request of the task (all
 *     documents, so the data and tokenisation are compared too), the range and its tokens, the
 *     per-document values the metrics need (acc: 1 when argmax logprob == gold, or lambada's greedy
 *     flag; acc_norm; ll: lambada's summed continuation logprob), and the samples lines of the range.
 *     Floats are written as Python's repr (shortest round-trip digits, read back exactly); a
 *     non-finite value is the string "nan", "inf" or "-inf".
 *   - Merge refuses (an error naming the files and what differs, nothing written) shards that differ in
 *     format version, code version, model hash or size, model arch, shard count N, tasks, prefix, split,
 *     limit, bootstrap iterations, weight type, batch size, shared context state, samples flag, or a task's document counts,
 *     kind or request hash; two files with one index; a missing index; ranges that are not contiguous
 *     or do not cover every document. The same file reached twice (by two arguments) counts once.
 *   - The merged results equal the unsharded run's except the timing fields: "date" (the earliest
 *     shard's), "start_time", "end_time" and "total_evaluation_time_seconds" (those of the longest
 *     shard), and the date_id in the file names. config.device is the shards' device (lmeval_merge_devices:
 *     "cuda:0,1" for shards on GPUs 0 and 1, "cpu", or the distinct values joined by ',' when mixed);
 *     config.dtype / batch_size are the shards'; model_name is the lowest shard's model path.
 *   - Model hash ("h64:" + 16 hex digits): a 64-bit non-cryptographic hash of the file's bytes (four
 *     lanes of 64-bit multiply-rotate over little-endian words, then an avalanche), computed once per
 *     shard process while streaming the file; it detects a different model file, not an adversary.
 */
#ifndef RWKV_LMEVAL_SHARD_H
#define RWKV_LMEVAL_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "lmeval.h"

#define LMEVAL_SHARD_MAX 4096         /* shards per run */
#define LMEVAL_SHARD_FORMAT_VERSION 2 /* 2: dtype, batch, device "cuda:<g>" */

/* ---- the 64-bit hash (model file, tokenised requests) -------------------------------------------- */
typedef struct {
    uint64_t acc[4];
    uint64_t len;
    unsigned char buf[32];
    int nbuf;
} LmHash;
void lmhash_init(LmHash *h);
void lmhash_update(LmHash *h, const void *p, size_t n);
uint64_t lmhash_final(const LmHash *h);
/* Hash of a whole file's bytes and its size. */
int lmeval_file_hash64(const char *path, uint64_t *hash, long long *bytes, Err *err);

/* ---- --shard I/N ---------------------------------------------------------------------------------- */
/* "I/N" with 0 <= I < N <= LMEVAL_SHARD_MAX, both plain decimal numbers. */
int lmeval_shard_parse(const char *arg, int *i, int *n, Err *err);
/* The library's own check of LmevalOpts.shard_i / shard_n (shard_n 0: unsharded, then shard_i 0). */
int lmeval_shard_check(int i, int n, Err *err);
/* Range [*lo, *hi) of shard i of n over documents with doc_tokens[0..ndocs) tokens (rule above). */
void lmeval_shard_range(const long *doc_tokens, int ndocs, int i, int n, int *lo, int *hi);
/* The shard file's name inside the output directory: "lmeval_shard_<i>of<n>.json". */
void lmeval_shard_file_name(int i, int n, char *out, size_t cap);

/* One task's part of a shard: its header, range and per-document values (hi - lo of each). */
typedef struct {
    const LmTask *t;
    int n;                          /* documents after --limit */
    int lo, hi;                     /* this shard's range */
    long ntok, rtok;                /* tokens of all n documents / of the range */
    uint64_t req_hash;              /* every tokenised request of the n documents */
    const double *acc, *accn, *ll;  /* (hi - lo) */
    const char *samples;            /* the range's samples lines (with --samples), or NULL */
    size_t samples_len;
} LmShardTask;

/* The run-level facts of a shard. */
typedef struct {
    const LmevalOpts *o;     /* shard_i, shard_n, model_path, device, limit, split, bootstrap, no_share, samples */
    int prefix;              /* resolved prefix token (-1 none) */
    const char *arch;        /* the model's architecture name */
    uint64_t model_hash;
    long long model_bytes;
    double date, t0, t1;     /* wall start (s since the epoch), monotonic start and end */
} LmShardRun;

/* Write OUTDIR/lmeval_shard_<I>of<N>.json atomically; its path goes to path. */
int lmeval_shard_write(const LmShardRun *r, const LmShardTask *tasks, int ntasks, const char *outdir, char *path,
                       size_t cap, Err *err);

/* The merged device label of n shards' devices: all "cuda:<g>" -> "cuda:" + the distinct g joined by ','
 * ("cuda:0,1"); otherwise the distinct values joined by ',' ("cpu", "cpu,cuda:0"). */
void lmeval_merge_devices(const char *const *dev, int n, char *out, size_t cap);

/* ---- lmeval-merge ---------------------------------------------------------------------------------- */
/* inputs: shard files, or directories holding them (lmeval_shard_*of*.json directly inside, or else in
 * their immediate subdirectories). Checks them (rules above), computes the metrics and writes the lm-eval
 * results JSON (and samples files) under out as lmeval does (lmeval_out.h); its path goes to
 * results_path. Nothing is written when a check fails. */
int lmeval_merge(const char *const *inputs, int ninputs, const char *out, int quiet, char *results_path, size_t cap,
                 Err *err);

#endif
