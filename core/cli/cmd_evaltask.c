/* cmd_evaltask.c -- `rwkvlab evaltask`: synthetic-task accuracy vs length of a trained model. */
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

#include "ckpt.h"
#include "config.h"
#include "opts.h"
#include "task.h"
#include "train.h"

static const char EVALTASK_USAGE[] =
    "usage: rwkvlab evaltask RUN_DIR|CKPT --lengths 32,64,... [--n N] [--seed S]\n"
    "  token and full-sequence accuracy of a trained model on fixed test sets of each length\n"
    "  (the task and, by default, the test-set seed and size come from the run's config)\n";

/* rwkvlab evaltask RUN_DIR|CKPT --lengths 32,64,...: synthetic-task accuracy vs length of a trained model. */
int cmd_evaltask(int argc, char **argv) {
    const char *lens = NULL, *run = NULL;
    int n = 0, nn = 0, nseed = 0;
    long seed_opt = 0;
    OptSpec spec[] = {
        O_STR("--lengths", &lens, .required = 1),
        O_INT("--n", &n, 1, MAX_LEN, .count = &nn),
        O_LONG("--seed", &seed_opt, 0, MAX_SEED, .count = &nseed),
    };
    OptParser p = {.cmd = "evaltask", .specs = spec, .nspecs = OPTS_N(spec),
                   .pos_name = "RUN_DIR|CKPT", .pos_min = 1, .pos_max = 1, .pos = &run};
    int ec;
    if (parse_or_exit(&p, argc, argv, EVALTASK_USAGE, &ec)) return ec;
    Err err = {{0}};
    int *L = NULL, nL = 0;
    if (opts_parse_ints("--lengths", lens, 1, 1, MAX_LEN, &L, &nL, &err)) return fail_msg("evaltask", &err);
    char ckpt[4200];
    struct stat st;
    if (stat(run, &st) == 0 && S_ISDIR(st.st_mode)) snprintf(ckpt, sizeof ckpt, "%s/ckpt.bin", run);
    else snprintf(ckpt, sizeof ckpt, "%s", run);
    Model *m = NULL;
    char *ini = NULL;
    long step = 0;
    if (ckpt_load_model(ckpt, &m, &step, &ini, &err)) {
        free(L);
        return fail_msg("evaltask", &err);
    }
    /* the config the model was trained with travels inside ckpt.bin */
    char tmp[] = "/tmp/rwkvlab_evaltask_XXXXXX";
    int fd = mkstemp(tmp);
    RunConfig cfg;
    config_defaults(&cfg);
    int rc = 1;
    Task *task = NULL;
    if (fd < 0 || write(fd, ini, strlen(ini)) != (ssize_t)strlen(ini)) {
        err_set(&err, "cannot write a temporary file in /tmp: %s", strerror(errno));
        fail_msg("evaltask", &err);
        goto out;
    }
    if (config_load(&cfg, tmp, &err) || !(task = task_create(&cfg, &err))) {
        fail_msg("evaltask", &err);
        goto out;
    }
    for (int i = 0; i < nL; i++)
        if (task_check_len(task, L[i], &err)) {
            fail_msg("evaltask", &err);
            goto out;
        }
    if (!nn) n = cfg.task.test_size;
    unsigned long seed = nseed ? (unsigned long)seed_opt : (unsigned long)cfg.experiment.seeds[0];
    printf("%s, step %ld; %s; %d sequences per length, test seed %lu\n", ckpt, step, task_describe(task), n, seed);
    printf("  %8s  %9s  %9s\n", "length", "token_acc", "seq_acc");
    for (int i = 0; i < nL; i++) {
        Batch b;
        task_testset(task, seed, L[i], n, &b);
        double ta, sa;
        train_evaluate(m, b.inputs, b.targets, b.mask, n, L[i], 16, 1L << 16, &ta, &sa);
        printf("  %8d  %9.4f  %9.4f\n", L[i], ta, sa);
        fflush(stdout);
        batch_free(&b);
    }
    rc = 0;
out:
    if (fd >= 0) close(fd), unlink(tmp);
    free(L), free(ini);
    task_free(task);
    model_free(m);
    return rc;
}
