/* cmd_evaltask.c -- `rwkvlab evaltask`: synthetic-task accuracy vs length of a trained model, on the run's
 * own test lengths or new ones, for the run's task variant or another one. */
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
#include "protocol.h"
#include "task.h"
#include "train.h"

static const char EVALTASK_USAGE[] =
    "usage: rwkvlab evaltask RUN_DIR|CKPT [--lengths LIST] [--variant V] [--n N] [--seed S]\n"
    "  token, full-sequence and scaled accuracy of a trained model on the fixed test sets of each length\n"
    "  (the task, test-set seed and size come from the run's config unless given here)\n"
    "  --lengths LIST  lengths and ranges as task.test_lens takes them: 32,64 or 41-500 or 41-500:10\n"
    "                  (default: the run's task.test_lens)\n"
    "  --variant V     evaluate on another variant of the run's task (e.g. a swaps-trained S5 model on full)\n"
    "  --n N           sequences per length (default: the run's task.test_size)\n"
    "  --seed S        test-set seed (default: the run's seed; a merrill run's held-out split always uses\n"
    "                  the run's own seed)\n"
    "  scaled_acc = (token_acc - chance)/(1 - chance), chance = uniform guessing at a scored position\n";

/* The config a model was trained with: it travels inside ckpt.bin. */
static int config_of_ckpt(const char *ini, RunConfig *cfg, Err *err) {
    char tmp[] = "/tmp/rwkvlab_evaltask_XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0) return err_set(err, "cannot create a temporary file in /tmp: %s", strerror(errno));
    int rc = 0;
    if (write(fd, ini, strlen(ini)) != (ssize_t)strlen(ini))
        rc = err_set(err, "cannot write a temporary file in /tmp: %s", strerror(errno));
    close(fd);
    config_defaults(cfg);
    if (rc == 0) rc = config_load(cfg, tmp, err);
    unlink(tmp);
    return rc;
}

int cmd_evaltask(int argc, char **argv) {
    const char *lens = NULL, *run = NULL, *variant = NULL;
    int n = 0, nn = 0, nseed = 0;
    long seed_opt = 0;
    OptSpec spec[] = {
        O_STR("--lengths", &lens),
        O_STR("--variant", &variant),
        O_INT("--n", &n, 1, MAX_LEN, .count = &nn),
        O_LONG("--seed", &seed_opt, 0, MAX_SEED, .count = &nseed),
    };
    OptParser p = {.cmd = "evaltask", .specs = spec, .nspecs = OPTS_N(spec),
                   .pos_name = "RUN_DIR|CKPT", .pos_min = 1, .pos_max = 1, .pos = &run};
    int ec;
    if (parse_or_exit(&p, argc, argv, EVALTASK_USAGE, &ec)) return ec;
    Err err = {{0}};
    static int L[CFG_MAX_TEST_LENS];
    int nL = 0;
    if (lens && config_parse_lens(lens, "--lengths", MAX_LEN, L, CFG_MAX_TEST_LENS, &nL, &err))
        return fail_msg("evaltask", &err);
    char ckpt[4200];
    struct stat st;
    if (stat(run, &st) == 0 && S_ISDIR(st.st_mode)) snprintf(ckpt, sizeof ckpt, "%s/ckpt.bin", run);
    else snprintf(ckpt, sizeof ckpt, "%s", run);
    Model *m = NULL;
    char *ini = NULL;
    long step = 0;
    if (ckpt_load_model(ckpt, &m, &step, &ini, &err)) return fail_msg("evaltask", &err);
    RunConfig cfg;
    int rc = 1;
    Task *task = NULL;
    Protocol proto = {0};
    char trained[CFG_STR] = "", note[200] = "";
    if (config_of_ckpt(ini, &cfg, &err)) goto fail;
    snprintf(trained, sizeof trained, "%s", cfg.task.variant);
    if (variant) {
        char set[300];
        snprintf(set, sizeof set, "task.variant=%s", variant);
        if (config_set(&cfg, set, &err)) { /* "--set task.variant=V: task.variant: ..." as "--variant: ..." */
            const char *why = strstr(err.msg, "task.variant: ");
            char msg[sizeof err.msg];
            snprintf(msg, sizeof msg, "%s", why ? why + strlen("task.variant: ") : err.msg);
            err_set(&err, "--variant: %s", msg);
            goto fail;
        }
        if (!strcmp(cfg.task.protocol, "merrill")) { /* its split is of the trained variant: fresh sets instead */
            snprintf(cfg.task.protocol, sizeof cfg.task.protocol, "fresh");
            snprintf(note, sizeof note, "; fresh test sets (the run's merrill split belongs to its own variant)");
        }
    }
    if (!(task = task_create(&cfg, &err))) goto fail;
    if (task_vocab(task) > m->V) {
        err_set(&err, "task %s variant %s has %d tokens but the model was trained with a vocabulary of %d — pick a "
                "variant of the same task", cfg.task.name, cfg.task.variant, task_vocab(task), m->V);
        goto fail;
    }
    if (!nL) {
        nL = cfg.task.ntest_lens;
        memcpy(L, cfg.task.test_lens, (size_t)nL * sizeof(int));
    }
    for (int i = 0; i < nL; i++)
        if (task_check_len(task, L[i], &err)) goto fail;
    if (!nn) n = cfg.task.test_size;
    unsigned long seed = nseed ? (unsigned long)seed_opt : (unsigned long)cfg.experiment.seeds[0];
    if (protocol_init(&proto, &cfg, task, (unsigned long)cfg.experiment.seeds[0], &err)) goto fail;
    double chance = task_chance(task);
    printf("%s, step %ld; %s; %d sequences per length, test seed %lu%s\n", ckpt, step, task_describe(task), n, seed,
           note);
    if (variant) printf("  variant %s (the model was trained on variant %s)\n", cfg.task.variant, trained);
    if (chance > 0 && chance < 1) printf("  chance %.6g; scaled_acc = (token_acc - chance)/(1 - chance)\n", chance);
    else printf("  chance unknown for this task: no scaled accuracy\n");
    printf("  %8s  %9s  %9s  %10s\n", "length", "token_acc", "seq_acc", "scaled_acc");
    double mt = 0, ms = 0;
    for (int i = 0; i < nL; i++) {
        Batch b;
        protocol_testset(&proto, L[i], n, seed, &b);
        double ta, sa;
        train_evaluate(m, b.inputs, b.targets, b.mask, b.B, L[i], 16, 1L << 16, &ta, &sa);
        double sc = scaled_accuracy(ta, chance);
        char scs[32];
        if (isfinite(sc)) snprintf(scs, sizeof scs, "%10.4f", sc);
        else snprintf(scs, sizeof scs, "%10s", "-");
        printf("  %8d  %9.4f  %9.4f  %s%s\n", L[i], ta, sa, scs, b.B < n ? "  (held-out sequences: fewer than --n)" : "");
        fflush(stdout);
        mt += ta / nL, ms += sa / nL;
        batch_free(&b);
    }
    if (nL > 1) {
        double sc = scaled_accuracy(mt, chance);
        char scs[32];
        if (isfinite(sc)) snprintf(scs, sizeof scs, "%10.4f", sc);
        else snprintf(scs, sizeof scs, "%10s", "-");
        printf("  %8s  %9.4f  %9.4f  %s   (over %d lengths)\n", "mean", mt, ms, scs, nL);
    }
    rc = 0;
    goto out;
fail:
    fail_msg("evaltask", &err);
out:
    free(ini);
    protocol_free(&proto);
    task_free(task);
    model_free(m);
    return rc;
}
