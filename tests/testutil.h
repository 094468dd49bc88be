/* testutil.h -- small helpers shared by the fp32 test files (header-only). */
#ifndef RWKV_TESTUTIL_H
#define RWKV_TESTUTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* run a shell command; its exit status, or -1 if it did not exit normally */
static inline int sh(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* the CLI under test: RWKVLAB_BIN (set by make test / debug-test) or the release build */
static inline const char *rwkvlab_bin(void) {
    const char *b = getenv("RWKVLAB_BIN");
    return b ? b : "build/rwkvlab";
}

/* A fresh directory /tmp/rwkvlab_<tag>_XXXXXX written into dir; 0, or -1 when it cannot be made. */
static inline int test_mkdtemp(char *dir, size_t n, const char *tag) {
    snprintf(dir, n, "/tmp/rwkvlab_%s_XXXXXX", tag);
    return mkdtemp(dir) ? 0 : -1;
}

/* rm -rf dir (the directories the tests made) */
static inline void test_rmtree(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    (void)!system(cmd);
}

/* The whole file, NUL-terminated (caller frees); NULL when it cannot be read. *n = its length. */
static inline char *test_slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *p = NULL;
    long len = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (len >= 0 && fseek(f, 0, SEEK_SET) == 0 && (p = malloc((size_t)len + 1))) {
        if (fread(p, 1, (size_t)len, f) != (size_t)len) free(p), p = NULL;
        else p[len] = 0, *n = (size_t)len;
    }
    fclose(f);
    return p;
}

/* `PREFIX rwkvlab ARGS`: ARGS is a printf format with its arguments ap, every "@" in it standing for dir;
 * PREFIX ("" for none) goes before the command (environment settings). Its stdout and stderr together
 * go to out (n bytes, NUL-terminated, cut to fit) through dir/cli.out, removed after. The exit status. */
static inline int test_cli_va(char *out, size_t n, const char *dir, const char *prefix, const char *fmt, va_list ap) {
    char args[4096], expanded[8192], cmd[9000], outp[400];
    vsnprintf(args, sizeof args, fmt, ap);
    size_t k = 0;
    for (const char *c = args; *c && k + 300 < sizeof expanded; c++)
        if (*c == '@') k += (size_t)snprintf(expanded + k, sizeof expanded - k, "%s", dir);
        else expanded[k++] = *c;
    expanded[k] = '\0';
    snprintf(outp, sizeof outp, "%s/cli.out", dir);
    snprintf(cmd, sizeof cmd, "%s %s %s > '%s' 2>&1", prefix, rwkvlab_bin(), expanded, outp);
    int rc = sh(cmd);
    FILE *f = fopen(outp, "r");
    size_t got = f ? fread(out, 1, n - 1, f) : 0;
    out[got] = '\0';
    if (f) fclose(f);
    unlink(outp);
    return rc;
}

/* Defines `static int NAME(const char *fmt, ...)`: test_cli_va into the file's buffer OUT (an array) with
 * its temporary directory DIR and PREFIX. */
#define TEST_CLI_RUNNER(name, out, dir, prefix)                                       \
    static int name(const char *fmt, ...) {                                           \
        va_list ap;                                                                   \
        va_start(ap, fmt);                                                            \
        int rc_ = test_cli_va(out, sizeof out, dir, prefix, fmt, ap);                 \
        va_end(ap);                                                                   \
        return rc_;                                                                   \
    }

#endif
