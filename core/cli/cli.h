/* cli.h -- the subcommands of `rwkvlab` (core/cli/, one file each; main.c dispatches) and what they share.
 * Every subcommand parses its argv with one OptSpec table (opts.h): unknown or malformed options are
 * errors naming the option. */
#ifndef RWKV_CLI_H
#define RWKV_CLI_H

#include "common.h"
#include "config.h"
#include "lmeval.h"
#include "opts.h"

#ifndef RWKVLAB_VERSION
#define RWKVLAB_VERSION "unknown"
#endif

int cmd_train(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_evaltask(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_lmeval(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_lmeval_merge(int argc, char **argv);
/* `lmeval --devices LIST` (lmeval_devices.c): argc/argv as cmd_lmeval got them, o as it parsed them. */
int lmeval_devices_main(const char *list, int argc, char **argv, LmevalOpts *o);
int cmd_bench(int argc, char **argv);
int cmd_sample(int argc, char **argv);

/* Largest token id accepted on the command line (then checked against the model's vocabulary). */
#define MAX_TOKEN_ID (1 << 30)
/* Largest sequence length / test-set size taken on the command line. */
#define MAX_LEN (1 << 20)
#define MAX_SEED ((double)LONG_MAX)

/* The options of every subcommand that loads a .pth/.safetensors/ckpt.bin with model_load_with:
 * --allow-unknown-tensors (tensors the model does not use become a warning) and --force-memory (a load
 * larger than the memory available becomes a warning). Defaults come from the environment
 * (RWKVLAB_ALLOW_UNKNOWN_TENSORS=1, RWKVLAB_FORCE_MEMORY=1). */
#define LOAD_OPTS(lo) O_FLAG("--allow-unknown-tensors", &(lo).allow_unknown), O_FLAG("--force-memory", &(lo).force_memory)
#define LOAD_USAGE "  --allow-unknown-tensors  load files holding tensors the model does not use (listed as a warning)\n" \
                   "  --force-memory           load even when the estimate exceeds the memory available\n"

#define MAX_SETS 256 /* --set options per command */

/* The configuration `train` runs and `config` prints: defaults, then CONFIG (if any), then each --set in
 * order, then the cross-field validation. One function, so that the two accept exactly the same. */
int resolve_config(RunConfig *cfg, const char *path, const char *const *sets, int nsets, Err *err);

/* "rwkvlab CMD: MSG" on stderr; returns 1 (the exit status of a bad invocation). */
int fail_msg(const char *cmd, const Err *err);
/* opts_parse for a subcommand: 0 = go on; otherwise *exit_code is what the subcommand returns
 * (0 after printing usage for --help, 1 after printing the error). */
int parse_or_exit(OptParser *p, int argc, char **argv, const char *usage, int *exit_code);
/* --tokens accepts a comma list or the name of a file holding ids (separated by commas or whitespace).
 * On error *ids = NULL and nothing is left allocated; on success the caller frees *ids. */
int ids_from_arg(const char *arg, int **ids, int *n, Err *err);
/* Every token id must be in the model's vocabulary. */
int check_vocab(const int *ids, int T, int V, Err *err);

#endif
