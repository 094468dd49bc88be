/* cmd_info.c -- `rwkvlab info FILE`: architecture, dims, shapes, parameter and state counts. */
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

#include "model_io.h"
#include "opts.h"

int cmd_info(int argc, char **argv) {
    const char *file = NULL;
    ModelLoadOpts lo;
    model_load_opts_default(&lo);
    OptSpec spec[] = {LOAD_OPTS(lo)};
    OptParser p = {.cmd = "info", .specs = spec, .nspecs = OPTS_N(spec), .pos_name = "FILE", .pos_min = 1,
                   .pos_max = 1, .pos = &file};
    int ec;
    if (parse_or_exit(&p, argc, argv, "usage: rwkvlab info FILE [--allow-unknown-tensors] [--force-memory]\n"
                      "  architecture, shapes, parameter and state counts of a .pth, .safetensors or ckpt.bin\n"
                      LOAD_USAGE, &ec))
        return ec;
    Model *m;
    Err err = {{0}};
    if (model_load_with(file, &lo, &m, &err)) return fail_msg("info", &err);
    model_print_info(m, file, stdout);
    model_free(m);
    return 0;
}
