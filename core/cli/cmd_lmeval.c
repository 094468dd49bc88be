/* cmd_lmeval.c -- `rwkvlab lmeval`: LM-eval-harness-style scoring (the engine is core/lmeval.c). */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lmeval.h"
#include "lmeval_data.h"
#include "lmeval_shard.h"
#include "opts.h"

static const char LMEVAL_USAGE[] =
    "usage: rwkvlab lmeval --model FILE --tasks lambada_openai,piqa,... [--device cpu|cuda]\n"
    "       [--data DIR] [--out DIR] [--limit N] [--prefix none|0|newline] [--split lmeval|separate]\n"
    "       [--samples] [--bootstrap N] [--no-share] [--quiet] [--batch N] [--dtype bf16|fp16|fp32]\n"
    "  --device cuda: the GPU engine (RWKV-7 models; weights --dtype, default bf16; every request of a task\n"
    "  sorted and packed by length, shared contexts once); --batch N: at most N requests per GPU forward\n"
    "  (default 0 = as many as fit in 65536 tokens; ignored on cpu, which scores one document at a time)\n"
    "  tasks: lambada_openai, piqa, hellaswag, arc_easy, arc_challenge, winogrande, openbookqa,\n"
    "         copa, sciq (needs DATA/sciq_test.jsonl)\n"
    "  --limit N: the first N documents of each task (default 0 = all); --bootstrap N: 0 (no standard\n"
    "  errors) or 2..1000000 resamples for the perplexity stderr (default 100000)\n"
    "  writes OUT/<model_name_sanitized>/results_<date_id>.json (lm-eval layout; OUT ending in .json:\n"
    "  next to it) and with --samples samples_<task>_<date_id>.jsonl; default prefix token 0, lm-eval\n"
    "  tokenisation split\n"
    "  --shard I/N: score shard I (0 <= I < N) of each task's documents (contiguous ranges balanced by\n"
    "  tokens) and write OUT/<model_name_sanitized>/lmeval_shard_<I>of<N>.json for `rwkvlab lmeval-merge`\n"
    "  --devices LIST: one worker per entry (a GPU index, or cpu), e.g. 0,1 or cpu,cpu, each scoring one\n"
    "  shard; their shards merged into OUT as one run (not with --device or --shard)\n" LOAD_USAGE;

int cmd_lmeval(int argc, char **argv) {
    LmevalOpts o = {.device = "cpu", .prefix = 0, .bootstrap = 100000, .data_dir = "data", .out_dir = "."};
    model_load_opts_default(&o.load);
    int prefix = 1, split = 0;
    const char *shard = NULL, *devices = NULL; /* --shard I/N, --devices LIST (lmeval_shard.h, lmeval_devices.c) */
    static const int prefixes[] = {-1, 0, -2}; /* none, 0, newline (LmevalOpts.prefix) */
    static const int splits[] = {LMEVAL_SPLIT_LMEVAL, LMEVAL_SPLIT_SEPARATE};
    OptSpec spec[] = {
        O_STR("--model", &o.model_path, .required = 1),
        O_STR("--tasks", &o.tasks, .required = 1),
        O_STR("--device", &o.device),
        O_STR("--data", &o.data_dir),
        O_STR("--out", &o.out_dir),
        O_LONG("--limit", &o.limit, 0, (double)LONG_MAX), /* 0 = all */
        O_LONG("--bootstrap", &o.bootstrap, 0, LMEVAL_BOOTSTRAP_MAX), /* 1: lmeval_run says why not */
        O_ENUM("--prefix", &prefix, "none|0|newline"),
        O_ENUM("--split", &split, "lmeval|separate"),
        O_INT("--batch", &o.batch, 0, MAX_LEN),
        O_STR("--dtype", &o.dtype),
        O_FLAG("--samples", &o.samples),
        O_FLAG("--no-share", &o.no_share),
        O_FLAG("--quiet", &o.quiet),
        O_STR("--shard", &shard),
        O_STR("--devices", &devices),
        LOAD_OPTS(o.load),
    };
    OptParser p = {.cmd = "lmeval", .specs = spec, .nspecs = OPTS_N(spec)};
    int ec;
    if (parse_or_exit(&p, argc, argv, LMEVAL_USAGE, &ec)) return ec;
    o.prefix = prefixes[prefix];
    o.split = splits[split];
    Err err = {{0}};
    if (shard && devices) {
        err_set(&err, "--shard with --devices: --devices runs every shard itself; give one of them");
        return fail_msg("lmeval", &err);
    }
    if (shard && lmeval_shard_parse(shard, &o.shard_i, &o.shard_n, &err)) return fail_msg("lmeval", &err);
    if (devices) return lmeval_devices_main(devices, argc, argv, &o);
    if (lmeval_run(&o, &err)) return fail_msg("lmeval", &err);
    printf("wrote %s\n", o.results_path);
    return 0;
}
