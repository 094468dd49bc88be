/* cmd_init.c -- `rwkvlab init`: a freshly initialised model of any architecture, written as a checkpoint. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "model_io.h"
#include "opts.h"

static const char INIT_USAGE[] =
    "usage: rwkvlab init --to FILE.pth|FILE.safetensors [--arch NAME] [--vocab V] [--layers L] [--d-model C]\n"
    "       [--head-size N] [--seed S] [--noise X] [--random X] [--dtype bf16|f16|f32]\n"
    "  official initialisation of an architecture (default rwkv7; the other model.* keys at their config\n"
    "  defaults) plus uniform noise of half-width X on every parameter, so that the zero-initialised\n"
    "  matrices take part; --random X > 0 instead fills every parameter uniformly in [-X,X] (fast, for\n"
    "  benchmark-sized files); defaults: the 0.1B shape V=65536 L=12 C=768 N=64, bf16\n";

/* rwkvlab init: a freshly initialised model written as a checkpoint (for benchmarks and smoke tests). */
int cmd_init(int argc, char **argv) {
    const char *to = NULL, *arch_name = "rwkv7";
    int V = 65536;
    RunConfig cfg;
    config_defaults(&cfg);
    cfg.model.layers = 12, cfg.model.d_model = 768, cfg.model.head_size = 64;
    long seed = 1;
    double noise = 0, uni = 0;
    int dt = 0, nrandom = 0;
    static const TfDType dtypes[] = {TF_BF16, TF_F16, TF_F32}; /* order of the choices */
    OptSpec spec[] = {
        O_STR("--to", &to, .required = 1),
        O_STR("--arch", &arch_name),
        O_INT("--vocab", &V, 1, 1 << 24),
        O_INT("--layers", &cfg.model.layers, 1, 1024),
        O_INT("--d-model", &cfg.model.d_model, 1, 65536),
        O_INT("--head-size", &cfg.model.head_size, 1, 65536),
        O_LONG("--seed", &seed, 0, MAX_SEED),
        O_REAL("--noise", &noise, 0, 1e30),
        O_REAL("--random", &uni, 0, 1e30, .lo_open = 1, .count = &nrandom),
        O_ENUM("--dtype", &dt, "bf16|f16|f32"),
    };
    OptParser p = {.cmd = "init", .specs = spec, .nspecs = OPTS_N(spec)};
    int ec;
    if (parse_or_exit(&p, argc, argv, INIT_USAGE, &ec)) return ec;
    const ModelArch *arch = model_arch_find(arch_name);
    if (!arch) {
        fprintf(stderr, "rwkvlab init: --arch %s is not known (available: %s)\n", arch_name, model_arch_names());
        return 1;
    }
    snprintf(cfg.model.arch, sizeof cfg.model.arch, "%s", arch_name);
    if (cfg.model.d_model % cfg.model.head_size) {
        fprintf(stderr, "rwkvlab init: --head-size %d does not divide --d-model %d — pick a head size that divides it\n",
                cfg.model.head_size, cfg.model.d_model);
        return 1;
    }
    Err err = {{0}};
    char dims[1024];
    if (arch->dims_from_config(dims, &cfg, V, &err)) return fail_msg("init", &err);
    TfDType dtype = dtypes[dt];
    Model *m = model_create(arch, dims, 0);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, (unsigned long)seed);
    if (nrandom) { /* fast, for benchmark-sized files (the official init orthogonalises every matrix): value i
                      from a counter-based generator (splitmix64 of seed and i), filled in parallel, the same for
                      any number of threads */
        const uint64_t s0 = (uint64_t)seed * 0x9e3779b97f4a7c15ull;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < m->nparams; i++) {
            uint64_t x = s0 + 0x632be59bd9b4e019ull * (i + 1);
            x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
            x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
            x ^= x >> 31;
            m->params[i] = (real)(uni * (2 * ((x >> 11) * (1.0 / 9007199254740992.0)) - 1));
        }
    } else
        model_init(m, rng, NULL);
    for (size_t i = 0; noise > 0 && i < m->nparams; i++) m->params[i] += (real)(noise * (2 * gsl_rng_uniform(rng) - 1));
    gsl_rng_free(rng);
    int rc = model_export(m, to, dtype, &err);
    if (rc) fail_msg("init", &err);
    else printf("wrote %s (%s, %zu parameters, %s)\n", to, arch->title, m->nparams, tf_dtype_name(dtype));
    model_free(m);
    return rc ? 1 : 0;
}
