/* task.h -- the one interface every synthetic task family sits behind, and the Task the trainer uses.
 *
 * A task is a generator: (rng, T) -> one sequence inputs[T], targets[T], mask[T] (mask = positions that
 * count for loss and accuracy; spec/tasks.md). Families (one file each under tasks/, one line each in
 * the registry tasks.c) describe themselves with a TaskKind: which `task.name` values they provide, their
 * variants, their own [task] keys (TaskParam: name, default, what is allowed), and the functions below.
 * Config validation reads the registry for the allowed names, variants and keys, so a new family is one
 * file plus one registry line.
 *
 * Token ids are in [0, vocab); the model uses one vocabulary for inputs and targets (emb and head both
 * [V,C]). Generation is deterministic for an RNG state and independent of thread count. Test sets are
 * fixed per (seed, T): task_testset seeds its own generator from a hash of both, never from the
 * training stream, and the first m sequences of a size-n set equal the size-m set.
 */
#ifndef RWKV_TASK_H
#define RWKV_TASK_H

#include <gsl/gsl_rng.h>
#include <stddef.h>
#include <stdint.h>

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

/* One [task] key of a family: its name, its default (text, as in an INI file) and what is allowed. */
typedef struct {
    const char *key;
    const char *def;
    const char *doc;
} TaskParam;

/* The values a family is created with: its own keys (every one of them, defaults filled in). */
typedef struct {
    int n;
    const char *key[CFG_MAX_TASK_PARAMS];
    const char *val[CFG_MAX_TASK_PARAMS];
} TaskArgs;
/* The value of key (the family's default when not given); NULL when the family has no such key. */
const char *task_arg(const TaskArgs *a, const char *key);
/* Typed reads of a key with a range: 0, or -1 with err "[task] KEY = 'V': ..." */
int task_arg_int(const TaskArgs *a, const char *key, long lo, long hi, long *out, Err *err);
int task_arg_real(const TaskArgs *a, const char *key, double lo, double hi, double *out, Err *err);

typedef struct TaskKind {
    const char *family;                   /* "group", "regular", "dfa", "recall", ... */
    const char *names;                    /* the task.name values it provides, for messages ("s5|a5|...") */
    int (*accepts)(const char *name);     /* does this family provide task.name = name (s7, z12, ...)? */
    const char *variants;                 /* allowed task.variant values "a|b" (NULL = none but "default") */
    const char *default_variant;          /* what variant = default means (NULL when there are no variants) */
    const TaskParam *params;              /* its own [task] keys */
    int nparams;
    /* the family's state for (name, resolved variant, args); NULL + err on a bad combination */
    void *(*create)(const char *name, const char *variant, const TaskArgs *args, Err *err);
    void (*free)(void *self);
    int (*vocab)(const void *self);
    const char *(*describe)(const void *self);
    /* can this task make sequences of length T? 0, or -1 with err naming what T must be (e.g. "even").
     * NULL: every T >= 1. fill is only called with lengths this accepts. */
    int (*check_len)(const void *self, int T, Err *err);
    /* one sequence of length T drawn from rng */
    void (*fill)(const void *self, gsl_rng *rng, int T, int *inputs, int *targets, unsigned char *mask);
    /* accuracy of uniform guessing at a scored position (for scaled accuracy (acc - c)/(1 - c)); < 0: unknown */
    double (*chance)(const void *self);
    /* a human-readable rendering of a token (for `rwkvlab sample`): writes at most n bytes */
    void (*token_text)(const void *self, int token, char *buf, size_t n);
    /* the rendering of a target at a scored position (a class, an accept/reject bit, ...) when targets are
     * not input tokens; NULL: targets are tokens of the input vocabulary and render with token_text */
    void (*target_text)(const void *self, int target, char *buf, size_t n);
} TaskKind;

/* ---- the registry (tasks.c) ---------------------------------------------------------------------- */
extern const TaskKind *const task_kinds[]; /* NULL-terminated */
const TaskKind *task_kind_find(const char *name);
const char *task_names(void);          /* "s5|a5|...|parity|..." for messages */
const char *task_variant_names(void);  /* "default|" + every family's variants, for config validation */
int task_param_declared(const char *key); /* some family has [task] key `key` */

/* ---- a task ---------------------------------------------------------------------------------------- */
typedef struct Task Task;

/* From the [task] section of a config (name, variant, the family's keys). NULL + err on a bad name,
 * variant or key (the message lists the allowed values). */
Task *task_create(const RunConfig *cfg, Err *err);
/* The same from plain values (e.g. `trace --task s5:swaps`); keys/vals may be NULL when n = 0. */
Task *task_create_named(const char *name, const char *variant, const char *const *keys, const char *const *vals,
                        int n, Err *err);
void task_free(Task *t);
int task_vocab(const Task *t);            /* V for the model */
const char *task_describe(const Task *t); /* one line, e.g. "S5 (order 120), inputs: swaps (11 elements), ..." */
double task_chance(const Task *t);        /* see TaskKind.chance */
const TaskKind *task_kind(const Task *t);
/* 0 if the task makes sequences of length T, else -1 with err "task <name>: length T ...: why / what is
 * allowed". Config validation checks train_len, every test length and trajectory_len with it. */
int task_check_len(const Task *t, int T, Err *err);
void task_token_text(const Task *t, int token, char *buf, size_t n);
/* a target rendered as what it means (TaskKind.target_text, else task_token_text) */
void task_target_text(const Task *t, int target, char *buf, size_t n);

/* Fresh training samples: fills b (already allocated with B,T) drawing from rng, row after row. */
void task_sample(Task *t, gsl_rng *rng, Batch *b);

/* Rows of different lengths (task.train_len_mode = mixed): row i of b gets one sequence of length
 * len[i] <= b->T drawn from rng (rows in order, as task_sample), right-padded to b->T with input 0,
 * target 0 and mask 0. A causal model's outputs at a row's real positions do not depend on what follows
 * them, so the padding changes nothing that is scored. */
void task_sample_rows(Task *t, gsl_rng *rng, Batch *b, const int *len);

/* A generator of its own for the fixed set (seed, T, salt): mt19937 seeded from a hash of the three.
 * task_testset uses it with TASK_TESTSET_SALT; other fixed sets (dataset.h) use their own salts, so no
 * two sets share a stream. Free with gsl_rng_free. */
#define TASK_TESTSET_SALT 0x7e575e7a5c0ffeeULL
gsl_rng *task_rng_fixed(unsigned long seed, int T, uint64_t salt);

/* The fixed test set for (seed, length): n sequences of length T, always the same for the same
 * (seed, T, n), independent of the training stream. Allocates b. */
void task_testset(Task *t, unsigned long seed, int T, int n, Batch *b);

#endif
