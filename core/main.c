/* main.c -- the rwkvlab command line: one binary, subcommands, --help on each. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "cmd_model.h"
#include "sweep.h"
#include "config.h"
#include "opts.h"
#include "train.h"

#ifndef RWKVLAB_VERSION
#define RWKVLAB_VERSION "unknown"
#endif

static void usage(FILE *f) {
    fprintf(f,
            "rwkvlab %s -- formal-language and state-tracking experiments with RWKV-7\n"
            "\n"
            "usage: rwkvlab <command> [options]   (rwkvlab <command> --help for details)\n"
            "  train CONFIG [--set section.key=value ...] [--out DIR] [--resume DIR]\n"
            "                 train one run (first seed of the config); see README\n"
            "  sweep CONFIG [--jobs N] [--slurm] [--dry-run] [--out DIR]   the [sweep] grid x seeds\n"
            "  evaltask RUN_DIR|CKPT --lengths 32,64,... [--n N] [--seed S]   accuracy vs length\n"
            "  config [CONFIG] [--set section.key=value ...]\n"
            "                 print the resolved config (defaults when no CONFIG) and check it\n"
            "  info FILE      architecture, shapes, parameter and state counts of a checkpoint\n"
            "  logits --model FILE --tokens 0,17,... --out FILE.npy [--recurrent]\n"
            "  export CKPT --to model.pth|model.safetensors [--dtype bf16|f16|f32]\n"
            "  trace --model FILE (--tokens ...|--text STR|--task NAME[:VARIANT]) --out FILE.h5\n"
            "  init --to FILE [--vocab V --layers L --d-model C --head-size N --noise X|--random X]\n"
            "       [--dtype bf16|f16|f32] [--seed S]   a fresh model file\n"
            "  lmeval --model FILE --tasks lambada_openai,piqa,... [--limit N] [--out DIR] (see --help)\n"
            "  bench [--quick] training throughput vs the machine's sgemm rate, memory vs T\n"
            "  version        print the code version\n",
            RWKVLAB_VERSION);
}

static void train_usage(FILE *f) {
    fprintf(f,
            "usage: rwkvlab train CONFIG [--set section.key=value ...] [--out DIR] [--resume DIR] [--quiet]\n"
            "  CONFIG            INI file (see configs/ and README 'Config reference')\n"
            "  --set s.k=v       override one key (repeatable), validated like the file\n"
            "  --out DIR         run directory (default results/<experiment>/seed<seed>-<time>)\n"
            "  --resume DIR      continue the run in DIR from its last checkpoint (CONFIG defaults to\n"
            "                    DIR/config.ini; CONFIG and --set may change only train.steps and\n"
            "                    train.threads, anything else is refused)\n"
            "  --quiet           no progress on stdout (run.log still has it)\n"
            "  testing aids: --stop-after STEP (behave as if interrupted), --inject-nan STEP (STEP >= 1)\n"
            "exit status: 0 done, 1 error, 3 diverged (NaN/Inf), 130 interrupted (resumable)\n");
}

/* The configuration `train` runs and `config` prints: defaults, then CONFIG (if any), then each --set in
 * order, then the cross-field validation. One function, so that the two accept exactly the same. */
static int resolve_config(RunConfig *cfg, const char *path, const char *const *sets, int nsets, Err *err) {
    config_defaults(cfg);
    if (path && config_load(cfg, path, err)) return -1;
    for (int i = 0; i < nsets; i++)
        if (config_set(cfg, sets[i], err)) return -1;
    return config_validate(cfg, err);
}

#define MAX_SETS 256

static int cmd_train(int argc, char **argv) {
    TrainOpts opts = {0};
    const char *sets[MAX_SETS], *config_path = NULL;
    int nsets = 0;
    /* the options of `train` (add new ones here; TrainOpts carries them to train_run) */
    OptSpec spec[] = {
        O_STRS("--set", sets, MAX_SETS, &nsets),
        O_STR("--out", &opts.out_dir),
        O_STR("--resume", &opts.resume_dir),
        O_FLAG("--quiet", &opts.quiet),
        O_LONG("--stop-after", &opts.stop_after, 1, (double)LONG_MAX),
        O_LONG("--inject-nan", &opts.inject_nan_at, 1, (double)LONG_MAX),
    };
    OptParser p = {.cmd = "train", .specs = spec, .nspecs = OPTS_N(spec),
                   .pos_name = "CONFIG", .pos_min = 0, .pos_max = 1, .pos = &config_path};
    Err err = {{0}};
    int prc = opts_parse(&p, argc, argv, &err);
    if (prc == OPTS_HELP) return train_usage(stdout), 0;
    if (prc) {
        fprintf(stderr, "rwkvlab train: %s\n", err.msg);
        return 1;
    }
    char resumed_cfg[4200];
    char probe[4200];
    if (opts.resume_dir && config_path && !opts.out_dir) {
        /* train CONFIG --resume DIR on a directory that holds no run yet (killed before its config.ini
         * was written): start that run there, so a retry loop needs no special case */
        snprintf(probe, sizeof probe, "%s/config.ini", opts.resume_dir);
        if (access(probe, F_OK) != 0) {
            fprintf(stderr, "rwkvlab train: %s holds no run yet: starting it there\n", opts.resume_dir);
            opts.out_dir = opts.resume_dir;
            opts.resume_dir = NULL;
        }
    }
    if (opts.resume_dir && !config_path) {
        /* without CONFIG: the run's own resolved config; with one, train_run checks it against the run's */
        snprintf(resumed_cfg, sizeof resumed_cfg, "%s/config.ini", opts.resume_dir);
        config_path = resumed_cfg;
    }
    if (!config_path) {
        fprintf(stderr, "rwkvlab train: missing CONFIG (rwkvlab train --help)\n");
        return 1;
    }
    RunConfig cfg;
    if (resolve_config(&cfg, config_path, sets, nsets, &err)) {
        fprintf(stderr, "rwkvlab train: %s\n", err.msg);
        return 1;
    }
    int rc = train_run(&cfg, &opts, &err);
    if (rc == TRAIN_ERROR) fprintf(stderr, "rwkvlab train: %s\n", err.msg);
    return rc;
}

/* rwkvlab config [CONFIG] [--set ...]: the resolved configuration, validated like `train`, as INI. */
static int cmd_config(int argc, char **argv) {
    const char *sets[MAX_SETS], *path = NULL;
    int nsets = 0;
    OptSpec spec[] = {{"--set", OPT_STRS, sets, .cap = MAX_SETS, .count = &nsets}};
    OptParser p = {.cmd = "config", .specs = spec, .nspecs = OPTS_N(spec),
                   .pos_name = "CONFIG", .pos_min = 0, .pos_max = 1, .pos = &path};
    Err err = {{0}};
    int prc = opts_parse(&p, argc, argv, &err);
    if (prc == OPTS_HELP) {
        printf("usage: rwkvlab config [CONFIG] [--set section.key=value ...]\n"
               "prints every key with its resolved value (defaults when no CONFIG is given), checked exactly\n"
               "as `rwkvlab train` checks it: exit 0 means train accepts this configuration\n");
        return 0;
    }
    RunConfig cfg;
    if (prc || resolve_config(&cfg, path, sets, nsets, &err)) {
        fprintf(stderr, "rwkvlab config: %s\n", err.msg);
        return 1;
    }
    char *ini = config_to_ini(&cfg);
    fputs(ini, stdout);
    free(ini);
    return 0;
}

static int cmd_version(int argc, char **argv) {
    OptParser p = {.cmd = "version"};
    Err err = {{0}};
    int prc = opts_parse(&p, argc, argv, &err);
    if (prc < 0) {
        fprintf(stderr, "rwkvlab version: %s\n", err.msg);
        return 1;
    }
    if (prc == OPTS_HELP) printf("usage: rwkvlab version   prints the code version (git describe)\n");
    else printf("rwkvlab %s\n", RWKVLAB_VERSION);
    return 0;
}

/* OpenMP's default is to spin-wait between parallel regions, and OpenBLAS's threads spin (sched_yield)
 * for about 2^28 cycles after each product; the two fight over the cores. Measured on the 2-core
 * development machine: 30x slower scoring with the defaults, and training 15.1k -> 20.3k tokens/s with
 * OPENBLAS_THREAD_TIMEOUT=4 on top of a passive OpenMP wait. Both libraries read these variables when
 * they are loaded, before main, so when the user has set neither we set them and re-execute ourselves
 * once (an explicit setting of either is respected). */
static void tune_thread_waiting(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("OPENBLAS_THREAD_TIMEOUT")) return;
    setenv("OMP_WAIT_POLICY", "passive", 1);
    setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1);
    execv("/proc/self/exe", argv); /* returns only on failure: then we simply go on */
}

int main(int argc, char **argv) {
    tune_thread_waiting(argv);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "sweep")) return sweep_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "evaltask")) return cmd_evaltask(argc - 1, argv + 1);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "logits")) return cmd_logits(argc - 1, argv + 1);
    if (!strcmp(cmd, "export")) return cmd_export(argc - 1, argv + 1);
    if (!strcmp(cmd, "init")) return cmd_init(argc - 1, argv + 1);
    if (!strcmp(cmd, "lmeval")) return cmd_lmeval(argc - 1, argv + 1);
    if (!strcmp(cmd, "trace")) return cmd_trace(argc - 1, argv + 1);
    if (!strcmp(cmd, "config")) return cmd_config(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench")) return bench_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) return cmd_version(argc - 1, argv + 1);
    static const char *const cmds[] = {"train", "sweep", "evaltask", "info", "logits", "export", "init",
                                       "lmeval", "trace", "config", "bench", "version"};
    const char *near = NULL;
    for (int i = 0; i < OPTS_N(cmds) && !near; i++)
        if (opts_edit_distance(cmd, cmds[i]) <= 2) near = cmds[i];
    fprintf(stderr, "rwkvlab: unknown command '%s'%s%s%s\n", cmd, near ? "; did you mean " : "", near ? near : "",
            near ? "?" : "");
    usage(stderr);
    return 1;
}
