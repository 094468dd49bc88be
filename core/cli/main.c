/* main.c -- the rwkvlab command line: one binary, subcommands, --help on each. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "bench.h"
#include "blas.h"
#include "cli.h"
#include "opts.h"
#include "sweep.h"

static void usage(FILE *f) {
    fprintf(f,
            "rwkvlab %s -- formal-language and state-tracking experiments with RWKV-7\n"
            "\n"
            "usage: rwkvlab <command> [options]   (rwkvlab <command> --help for details)\n"
            "  train CONFIG [--set section.key=value ...] [--out DIR] [--resume DIR]\n"
            "                 train one run (first seed of the config); see README\n"
            "  sweep CONFIG [--jobs N] [--slurm] [--dry-run] [--out DIR]   the [sweep] grid x seeds\n"
            "  evaltask RUN_DIR|CKPT [--lengths 32,64|41-500:10] [--variant V] [--n N] [--seed S]\n"
            "                 accuracy (token, sequence, scaled) vs length of a trained model\n"
            "  sample CONFIG [--set ...] [--len T] [--n N] [--seed S] [--test]   a task's sequences as JSON lines\n"
            "  config [CONFIG] [--set section.key=value ...]\n"
            "                 print the resolved config (defaults when no CONFIG) and check it\n"
            "  info FILE      architecture, shapes, parameter and state counts of a checkpoint\n"
            "  logits --model FILE --tokens 0,17,... --out FILE.npy [--recurrent]\n"
            "  export CKPT --to model.pth|model.safetensors [--dtype bf16|f16|f32]\n"
            "  trace --model FILE (--tokens ...|--text STR|--task NAME[:VARIANT]) --out FILE.h5\n"
            "  init --to FILE [--vocab V --layers L --d-model C --head-size N --noise X|--random X]\n"
            "       [--dtype bf16|f16|f32] [--seed S]   a fresh model file\n"
            "  lmeval --model FILE --tasks lambada_openai,piqa,... [--limit N] [--out DIR] (see --help)\n"
            "  lmeval-merge DIR... [--out OUT]   merge the shard files of lmeval --shard I/N runs\n"
            "  generate --model FILE (--prompt TEXT|--tokens IDS|--load-state F) [--n N] [--batch B]\n"
            "       [--temperature T --top-p P --seed S] [--device cpu|cuda] [--save-state F]   decoding\n"
            "  bench [--quick] training throughput vs the machine's sgemm rate, memory vs T\n"
            "  version        print the code version\n",
            RWKVLAB_VERSION);
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

/* Settings the libraries read when they are loaded, before main: when one of ours is missing we set it and
 * re-execute ourselves once (RWKVLAB_REEXEC guards against a loop). An explicit setting by the user wins.
 *
 * 1. OpenMP's default is to spin-wait between parallel regions, and OpenBLAS's threads spin (sched_yield)
 *    for about 2^28 cycles after each product; the two fight over the cores. Measured on the 2-core
 *    development machine: 30x slower scoring with the defaults, and training 15.1k -> 20.3k tokens/s with
 *    OPENBLAS_THREAD_TIMEOUT=4 on top of a passive OpenMP wait. Set when neither variable is set.
 * 2. OpenBLAS kernels below the CPU's instruction set (blas.h): OPENBLAS_CORETYPE, unless the user set it;
 *    said once on stderr. */
static void tune_environment(char **argv) {
    if (getenv("RWKVLAB_REEXEC")) { /* we are the re-executed process; our children decide for themselves */
        unsetenv("RWKVLAB_REEXEC");
        const char *from;
        if (!strcmp(blas_core_origin(&from), "rwkvlab") && blas_selfcheck()) {
            fprintf(stderr, "rwkvlab: OpenBLAS's %s kernels computed a wrong product on this CPU; going back to the "
                    "library's choice (%s)\n", blas_core_name(), from);
            setenv("OPENBLAS_CORETYPE", from, 1);
            unsetenv(BLAS_NOTE_ENV);
            setenv("RWKVLAB_REEXEC", "1", 1);
            execv("/proc/self/exe", argv);
        }
        return;
    }
    int again = 0;
    if (!getenv("OMP_WAIT_POLICY") && !getenv("OPENBLAS_THREAD_TIMEOUT")) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1);
        setenv("RWKVLAB_WAIT_SET", "1", 1); /* so that `bench` can run its PyTorch peer with the user's settings */
        again = 1;
    }
    const char *core = blas_core_name();
    const char *better = blas_better_core(core, blas_cpu_isa(), blas_cpu_intel(), openblas_get_config(), getenv("OPENBLAS_CORETYPE"));
    if (better) {
        char note[128];
        snprintf(note, sizeof note, "%s->%s", core, better);
        fprintf(stderr, "rwkvlab: OpenBLAS chose its %s kernels on a CPU with %s; using OPENBLAS_CORETYPE=%s "
                "(set OPENBLAS_CORETYPE yourself to choose)\n", core,
                blas_cpu_isa() == BLAS_ISA_AVX512 ? "AVX-512" : blas_cpu_isa() == BLAS_ISA_AVX2 ? "AVX2" : "AVX",
                better);
        setenv("OPENBLAS_CORETYPE", better, 1);
        setenv(BLAS_NOTE_ENV, note, 1);
        again = 1;
    }
    if (!again) return;
    setenv("RWKVLAB_REEXEC", "1", 1);
    execv("/proc/self/exe", argv); /* returns only on failure: then we simply go on */
}

int main(int argc, char **argv) {
    tune_environment(argv);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    const char *cmd = argv[1];
    static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
    } cmds[] = {
        {"train", cmd_train}, {"sweep", sweep_main},   {"evaltask", cmd_evaltask}, {"info", cmd_info},
        {"logits", cmd_logits}, {"export", cmd_export}, {"init", cmd_init},         {"lmeval", cmd_lmeval}, {"generate", cmd_generate},
        {"trace", cmd_trace}, {"config", cmd_config}, {"bench", bench_main},       {"version", cmd_version},
        {"sample", cmd_sample},
        {"--version", cmd_version},
        {"lmeval-merge", cmd_lmeval_merge},
    };
    for (int i = 0; i < OPTS_N(cmds); i++)
        if (!strcmp(cmd, cmds[i].name)) return cmds[i].run(argc - 1, argv + 1);
    const char *near = NULL;
    for (int i = 0; i < OPTS_N(cmds) && !near; i++)
        if (opts_edit_distance(cmd, cmds[i].name) <= 2) near = cmds[i].name;
    fprintf(stderr, "rwkvlab: unknown command '%s'%s%s%s\n", cmd, near ? "; did you mean " : "", near ? near : "",
            near ? "?" : "");
    usage(stderr);
    return 1;
}
