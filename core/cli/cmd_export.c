/* cmd_export.c -- `rwkvlab export`: a model as .pth / .safetensors with official key names. */
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

int cmd_export(int argc, char **argv) {
    const char *to = NULL, *ckpt = NULL;
    int dt = 0;
    static const TfDType dtypes[] = {TF_BF16, TF_F16, TF_F32}; /* order of the choices */
    ModelLoadOpts lo;
    model_load_opts_default(&lo);
    OptSpec spec[] = {
        LOAD_OPTS(lo),
        O_STR("--to", &to, .required = 1),
        O_ENUM("--dtype", &dt, "bf16|f16|f32"),
    };
    OptParser p = {.cmd = "export", .specs = spec, .nspecs = OPTS_N(spec),
                   .pos_name = "CKPT", .pos_min = 1, .pos_max = 1, .pos = &ckpt};
    int ec;
    if (parse_or_exit(&p, argc, argv,
                      "usage: rwkvlab export CKPT --to model.pth|model.safetensors [--dtype bf16|f16|f32]\n"
                      "       [--allow-unknown-tensors] [--force-memory]\n"
                      "  writes official key names and shapes (default dtype bf16, as released checkpoints)\n"
                      LOAD_USAGE,
                      &ec))
        return ec;
    TfDType dtype = dtypes[dt];
    Model *m;
    Err err = {{0}};
    if (model_load_with(ckpt, &lo, &m, &err)) return fail_msg("export", &err);
    if (model_export(m, to, dtype, &err)) {
        model_free(m);
        return fail_msg("export", &err);
    }
    printf("wrote %s (%s, %d tensors, %zu parameters)\n", to, tf_dtype_name(dtype), m->ntensors, m->nparams);
    model_free(m);
    return 0;
}
