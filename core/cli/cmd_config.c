/* cmd_config.c -- `rwkvlab config`: the resolved configuration, validated exactly as `train` validates it. */
#include "cli.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "opts.h"

/* rwkvlab config [CONFIG] [--set ...]: the resolved configuration, validated like `train`, as INI. */
int cmd_config(int argc, char **argv) {
    const char *sets[MAX_SETS], *path = NULL;
    int nsets = 0;
    OptSpec spec[] = {{"--set", OPT_STRS, sets, .cap = MAX_SETS, .count = &nsets}};
    OptParser p = {.cmd = "config", .specs = spec, .nspecs = OPTS_N(spec),
                   .pos_name = "CONFIG", .pos_min = 0, .pos_max = 1, .pos = &path};
    Err err = {{0}};
    int prc = opts_parse(&p, argc, argv, &err);
    if (prc == OPTS_HELP) {
        printf("usage: rwkvlab config [CONFIG] [--set section.key=value ...]\n"
               "prints every key with its resolved value (defaults when no CONFIG is given; every [task] key of\n"
               "the chosen task family, its default marked \"; (default)\"), checked exactly\n"
               "as `rwkvlab train` checks it: exit 0 means train accepts this configuration\n");
        return 0;
    }
    RunConfig cfg;
    if (prc || resolve_config(&cfg, path, sets, nsets, &err)) {
        fprintf(stderr, "rwkvlab config: %s\n", err.msg);
        return 1;
    }
    char *ini = config_to_ini_all(&cfg);
    fputs(ini, stdout);
    free(ini);
    return 0;
}
