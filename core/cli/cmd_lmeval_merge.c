/* cmd_lmeval_merge.c -- `rwkvlab lmeval-merge`: the shard files of `lmeval --shard I/N` runs merged into one
 * lm-eval results JSON (the checks and the merge are core/eval/lmeval_shard.c). */
#include "cli.h"

#include <string.h>

#include "lmeval_shard.h"
#include "opts.h"

static const char MERGE_USAGE[] =
    "usage: rwkvlab lmeval-merge DIR|FILE... [--out OUT] [--quiet]\n"
    "  merges the shard files of `rwkvlab lmeval --shard I/N` runs (lmeval_shard_<I>of<N>.json, found in each\n"
    "  DIR or in its immediate subdirectories) into OUT/<model_name_sanitized>/results_<date_id>.json and,\n"
    "  when the shards hold samples, samples_<task>_<date_id>.jsonl, as one unsharded `rwkvlab lmeval` run\n"
    "  writes them (same metrics, same samples in the same order; only the timing fields differ).\n"
    "  Refuses shards of different runs (code version, model file hash, tasks, prefix, split, limit,\n"
    "  bootstrap, --no-share, --samples, data, N), a repeated or missing index, and ranges with a gap.\n"
    "  --out OUT: as lmeval's --out (default .)\n";

#define MERGE_MAX_INPUTS 4096

int cmd_lmeval_merge(int argc, char **argv) {
    const char *out = ".", *pos[MERGE_MAX_INPUTS];
    int quiet = 0;
    OptSpec spec[] = {O_STR("--out", &out), O_FLAG("--quiet", &quiet)};
    OptParser p = {.cmd = "lmeval-merge", .specs = spec, .nspecs = OPTS_N(spec), .pos_name = "DIR|FILE", .pos_min = 1,
                   .pos_max = MERGE_MAX_INPUTS, .pos = pos};
    int ec;
    if (parse_or_exit(&p, argc, argv, MERGE_USAGE, &ec)) return ec;
    Err err = {{0}};
    char path[4096];
    if (lmeval_merge(pos, p.npos, out, quiet, path, sizeof path, &err)) return fail_msg("lmeval-merge", &err);
    printf("wrote %s\n", path);
    return 0;
}
