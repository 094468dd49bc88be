/* testutil.h -- small helpers shared by the fp32 test files (header-only). */
#ifndef RWKV_TESTUTIL_H
#define RWKV_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

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

#endif
