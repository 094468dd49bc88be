/* testutil.h -- small helpers shared by the fp32 test files (header-only). */
#ifndef RWKV_TESTUTIL_H
#define RWKV_TESTUTIL_H

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

#endif
