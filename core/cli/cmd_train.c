/* cmd_train.c -- `rwkvlab train`: one run of one config and seed (the run itself: core/train/train.c). */
#include "cli.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "opts.h"
#include "train.h"

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
            "  --force-memory    run even when the memory estimate exceeds what is available\n"
            "  testing aids: --stop-after STEP (behave as if interrupted), --inject-nan STEP (STEP >= 1)\n"
            "exit status: 0 done, 1 error, 3 diverged (NaN/Inf), 130 interrupted (resumable)\n");
}


int cmd_train(int argc, char **argv) {
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
        O_FLAG("--force-memory", &opts.force_memory),
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
