/* config.h -- the one validated run configuration, parsed from INI (inih) plus --set overrides.
 *
 * Sections and keys (defaults in config_defaults; every key documented in README "Config reference"):
 *   [experiment] name, seeds (comma list; first is used by `train`), notes
 *   [model]      arch (rwkv7), layers, d_model, head_size, eig_range (standard|extended),
 *                lora_w, lora_a, lora_v, lora_g (0 = official formula), lora_mix, short_conv, expand_v,
 *                init (official)
 *   [task]       name (any name of the task registry), variant (default or the family's), train_len
 *                (a length N or a range A-B), train_len_mode (batch|mixed), test_lens (a list of lengths
 *                and ranges A-B or A-B:S), test_size (sequences per test length), protocol
 *                (fresh|merrill), train_fraction, dataset_max, and the family's own keys
 *   [train]      steps, batch, lr, lr_min, warmup, schedule (cosine|constant), weight_decay, grad_clip,
 *                beta1, beta2, adam_eps, w0_lr_mult, eval_every, early_stop, log_every, ckpt_every,
 *                chunk (WKV checkpoint interval K; 0 = store all states), threads (0 = OpenMP default),
 *                shards (batch shards of one step, default 2), l2wrap (0|1)
 *   [log]        trajectories, trajectory_len
 *   [sweep]      any "section.key = v1, v2, ..." (stored verbatim for `rwkvlab sweep`)
 * Errors name the file and line, the key, and the allowed values.
 */
#ifndef RWKV_CONFIG_H
#define RWKV_CONFIG_H

#include "common.h"

#define CFG_MAX_LIST 32
#define CFG_MAX_SWEEP 16
#define CFG_STR 128
#define CFG_MAX_TASK_PARAMS 16 /* a task family's own [task] keys (task.h TaskParam) */
#define CFG_MAX_TEST_LENS 512  /* test lengths of one run, after expanding the ranges of task.test_lens */

typedef struct {
    struct {
        char name[CFG_STR];
        long seeds[CFG_MAX_LIST];
        int nseeds;
        char notes[256];
    } experiment;
    struct {
        char arch[CFG_STR];      /* rwkv7 */
        int layers;              /* L >= 1 */
        int d_model;             /* C */
        int head_size;           /* N, divides C */
        char eig_range[CFG_STR]; /* standard | extended */
        int lora_w, lora_a, lora_v, lora_g; /* 0 = official formula */
        int lora_mix;            /* RWKV-6 token-shift LoRA rank Dm (0 = official 32) */
        int short_conv;          /* causal depthwise conv before the mixer's projections, kernel size (0 = off) */
        int expand_v;            /* Gated DeltaNet value head = expand_v * head_size (1 = like-for-like state) */
        char init[CFG_STR];      /* official */
    } model;
    struct {
        char name[CFG_STR];      /* a task.name of a family in the task registry (tasks/tasks.c) */
        char variant[CFG_STR];   /* default (the family's) or one of the family's variants */
        /* Training lengths: task.train_len = N (one length) or A-B (a range, A < B). train_len is the
         * longest (the one batch buffers and the memory estimate are sized for); train_len_min is the
         * shortest of a range, 0 when the length is fixed (config_train_len_min gives the shortest). */
        int train_len;
        int train_len_min;
        char train_len_mode[CFG_STR]; /* batch: one length per batch (Deletang) | mixed: one per sequence */
        /* the test lengths, every range expanded (task.test_lens = 41-500:10, 512 lengths at most) */
        int test_lens[CFG_MAX_TEST_LENS];
        int ntest_lens;
        int test_size;
        char protocol[CFG_STR];  /* fresh (new samples every step) | merrill (a finite dataset, split) */
        double train_fraction;   /* merrill: share of the length-n sequences trained on (the rest: test) */
        int dataset_max;         /* merrill: at most this many distinct length-n sequences (the paper: 1M) */
        /* the task family's own keys, as text (the family reads and checks them: task.h) */
        char param_key[CFG_MAX_TASK_PARAMS][32];
        char param_val[CFG_MAX_TASK_PARAMS][CFG_STR];
        int nparams;
    } task;
    struct {
        long steps;
        int batch;
        double lr, lr_min;
        long warmup;
        char schedule[CFG_STR]; /* cosine | constant */
        double weight_decay, grad_clip;
        double beta1, beta2, adam_eps;
        double w0_lr_mult;
        long eval_every, log_every, ckpt_every;
        double early_stop;      /* stop when train-length test seq acc >= this; 0 = off */
        int chunk;
        int threads;
        int shards;             /* batch shards of a step (core/train/step.h): results depend on it, not on threads */
        int l2wrap;
    } train;
    struct {
        int trajectories;
        int trajectory_len;     /* 0 = the largest test length */
    } log;
    struct {
        char key[CFG_MAX_SWEEP][CFG_STR];
        char values[CFG_MAX_SWEEP][512];
        int n;
    } sweep;
} RunConfig;

void config_defaults(RunConfig *c);
/* Parse an INI file over the current values. Returns 0, or -1 with err = "FILE:LINE: ..." */
int config_load(RunConfig *c, const char *path, Err *err);
/* Apply one "section.key=value" override (same validation as the file). */
int config_set(RunConfig *c, const char *assignment, Err *err);
/* Cross-field checks (head_size divides d_model, lengths positive, ...). */
int config_validate(const RunConfig *c, Err *err);
/* The shortest training length (train_len_min, or train_len when the length is fixed). */
int config_train_len_min(const RunConfig *c);
/* A length list as config text: runs with a constant step written as ranges ("41-500:10, 600"). */
void config_format_lens(const int *lens, int n, char *buf, size_t cap);
/* Parses a length list ("32, 64" / "41-500" / "41-500:10", each range's end always included) into
 * out (cap entries at most), each length in [1, max_len]. what names the list in messages. 0, or -1 with
 * err "WHAT: ... — HOW". */
int config_parse_lens(const char *text, const char *what, int max_len, int *out, int cap, int *n, Err *err);

/* The resolved config as INI text (every key, parseable by config_load). Caller frees. */
char *config_to_ini(const RunConfig *c);
/* The same plus every [task] key of the chosen task family that is not set, as "key = default ; (default)
 * what it means" (what `rwkvlab config` prints; a run's config.ini keeps config_to_ini). Caller frees. */
char *config_to_ini_all(const RunConfig *c);

#endif
