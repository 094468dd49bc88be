/* cli_common.c -- what the subcommands share: error exit, option parsing with usage, token-id lists. */
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

#include "config.h"
#include "opts.h"

/* "rwkvlab CMD: MSG" on stderr; returns 1 (the exit status of a bad invocation). */
int fail_msg(const char *cmd, const Err *err) {
    fprintf(stderr, "rwkvlab %s: %s\n", cmd, err->msg);
    return 1;
}

/* opts_parse for a subcommand: 0 = go on; otherwise *exit_code is what the subcommand returns
 * (0 after printing usage for --help, 1 after printing the error). */
int parse_or_exit(OptParser *p, int argc, char **argv, const char *usage, int *exit_code) {
    Err err = {{0}};
    int rc = opts_parse(p, argc, argv, &err);
    if (rc == 0) return 0;
    if (rc == OPTS_HELP) fputs(usage, stdout), *exit_code = 0;
    else *exit_code = fail_msg(p->cmd, &err);
    return 1;
}


/* --tokens accepts a comma list or the name of a file holding ids (separated by commas or whitespace).
 * On error *ids = NULL and nothing is left allocated; on success the caller frees *ids. */
#define IDS_FILE_MAX ((size_t)1 << 30)
int ids_from_arg(const char *arg, int **ids, int *n, Err *err) {
    *ids = NULL, *n = 0;
    FILE *f = fopen(arg, "r");
    if (!f) {
        int open_errno = errno;
        if (opts_parse_ints("--tokens", arg, 1, 0, MAX_TOKEN_ID, ids, n, err) == 0) return 0;
        if (!strchr(arg, ',')) { /* one word that is no number: perhaps a file name */
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            return err_set(err, "%s (nor is it a readable file of ids: %s)", msg, strerror(open_errno));
        }
        return -1;
    }
    size_t cap = 1 << 16, len = 0, k;
    char *buf = xmalloc(cap);
    while ((k = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += k;
        if (len + 1 < cap) continue;
        char *bigger = cap < IDS_FILE_MAX ? realloc(buf, cap * 2) : NULL;
        if (!bigger) {
            fclose(f), free(buf);
            return err_set(err, "--tokens %s: the file is too large to read (over %zu bytes)", arg, cap);
        }
        buf = bigger, cap *= 2;
    }
    int bad = ferror(f);
    int e = errno;
    fclose(f);
    if (bad) {
        free(buf);
        return err_set(err, "--tokens %s: cannot read the file: %s", arg, strerror(e));
    }
    buf[len] = 0;
    char what[600];
    snprintf(what, sizeof what, "--tokens %s", arg);
    int rc = opts_parse_ints(what, buf, 0, 0, MAX_TOKEN_ID, ids, n, err);
    free(buf);
    return rc;
}

/* Every token id must be in the model's vocabulary. */
int check_vocab(const int *ids, int T, int V, Err *err) {
    for (int t = 0; t < T; t++)
        if (ids[t] >= V)
            return err_set(err, "token %d at position %d is outside the model's vocabulary [0,%d)", ids[t], t, V);
    return 0;
}

/* The configuration `train` runs and `config` prints: defaults, then CONFIG (if any), then each --set in
 * order, then the cross-field validation. One function, so that the two accept exactly the same. */
int resolve_config(RunConfig *cfg, const char *path, const char *const *sets, int nsets, Err *err) {
    config_defaults(cfg);
    if (path && config_load(cfg, path, err)) return -1;
    for (int i = 0; i < nsets; i++)
        if (config_set(cfg, sets[i], err)) return -1;
    return config_validate(cfg, err);
}
