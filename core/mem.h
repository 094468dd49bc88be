/* mem.h -- memory estimates and an up-front check: refuse work that cannot fit before allocating it.
 *
 * Scope: what the machine has (mem_available_bytes), what a job needs (mem_train_bytes for a training
 * run, the loader's own estimate in model_io.c for a tensor file), and one check (mem_check) whose
 * message gives the estimate, what is available and how to fix it.
 * Rules:
 *  - Available = /proc/meminfo MemAvailable, lowered to (limit - usage) of every cgroup (v2 memory.max /
 *    memory.current, or v1 memory.limit_in_bytes / memory.usage_in_bytes) from this process's cgroup up
 *    to the root. 0 means "unknown" (no /proc): the check then passes.
 *  - RWKVLAB_MEM_AVAILABLE=BYTES replaces the measurement (to rehearse a smaller machine; tests use it).
 *  - force (the CLI's --force-memory, or RWKVLAB_FORCE_MEMORY=1: mem_force_from_env) turns a
 *    refusal into a warning on stderr.
 *  - Estimates count the large buffers (parameters, gradients, optimizer moments, activations, test
 *    sets, trajectory buffers); code, libraries and small tables are not counted (a few tens of MB).
 */
#ifndef RWKV_MEM_H
#define RWKV_MEM_H

#include <stddef.h>

#include "common.h"
#include "config.h"
#include "model.h"

/* Bytes this process can still allocate without swapping or hitting a cgroup limit; 0 = unknown. */
size_t mem_available_bytes(void);
/* MemAvailable (bytes) from the text of /proc/meminfo; 0 if absent. Exposed for tests. */
size_t mem_parse_meminfo(const char *text);

/* 0 when need fits (or availability is unknown). Otherwise: with force, a warning on stderr and 0;
 * without, -1 and err = "<what> needs about X but Y is available ... <how to fix>". hint (may be NULL)
 * names what the user can make smaller; the message always ends with the way to try anyway. */
int mem_check_hint(size_t need, const char *what, const char *hint, int force, Err *err);
int mem_check(size_t need, const char *what, int force, Err *err);
/* RWKVLAB_FORCE_MEMORY=1 (the stand-in for --force-memory until the CLI passes it). */
int mem_force_from_env(void);
/* How a refusal tells the user to try anyway (update when the CLI gains --force-memory). */
#define MEM_FORCE_HOW "pass --force-memory (or set RWKVLAB_FORCE_MEMORY=1)"

/* "1.50 GiB", "12.0 MiB", "640 B" into buf. */
const char *mem_fmt(size_t bytes, char *buf, size_t n);

/* Estimated peak bytes of `rwkvlab train` for cfg with architecture a and its dims (as the run builds them) and WKV checkpoint interval K; parts (may be NULL) gets the breakdown. */
typedef struct {
    size_t params;       /* parameters */
    size_t grads;        /* gradients */
    size_t optim;        /* AdamW first and second moments */
    size_t acts;         /* activation buffer at its largest (training, evaluation or trajectory forward),
                            including the WKV state checkpoints and the per-row token buffers */
    size_t data;         /* training batch and fixed test sets */
    size_t traj;         /* trajectory capture buffers at the end of the run */
    size_t shards;       /* the step's replicas (core/train/step.h): train.shards - 1 times parameters,
                            gradients and a training forward of the largest shard */
    size_t ckpt;         /* checkpoint writing: ckpt.c builds optim.bin (both moments) in memory before its
                            atomic write (and resume reads files of that size) */
    size_t dataset;      /* of data: task.protocol = merrill's finite dataset as it stays (train + held-out
                            sequences and the length-2 pairs); the number of distinct sequences is estimated
                            as min(task.dataset_max, A^n), A = the input symbols seen in 16384 sampled tokens */
    size_t dataset_build; /* the peak while that dataset is built (the distinct set and its hash table, then
                            the set and its two parts at once); it comes before the model exists */
    size_t total;        /* the sum of the parts above (dataset_build not added), or dataset_build if larger */
} MemTrainParts;
/* Bytes of a Merrill dataset of N distinct length-n sequences and npairs length-2 sequences as it stays
 * allocated (tasks/dataset.c), and in *build_peak (may be NULL) the most it holds while being built. */
size_t mem_merrill_bytes(long N, int n, long npairs, size_t *build_peak);
size_t mem_train_bytes(const RunConfig *cfg, const ModelArch *a, const void *dims, int K, MemTrainParts *parts);
/* The model dims train_run builds from cfg and the task's vocabulary (the architecture's dims_from_config). */
int mem_train_dims(const RunConfig *cfg, int vocab, const ModelArch *a, void *dims, Err *err);
/* mem_train_bytes for mem_train_dims(cfg, vocab) + mem_check with a hint for training configs; force (or
 * RWKVLAB_FORCE_MEMORY=1) turns a refusal into a warning; *need (may be NULL) = the estimate. */
int mem_check_train(const RunConfig *cfg, int vocab, int K, int force, size_t *need, Err *err);

#endif
