/* sweep_testutil.h -- helpers shared by the test_sweep*.c files (header-only): a scratch directory per
 * test, reading and writing small files, a tiny sweep config, and running a command from an argv array
 * (no shell in between, so hostile arguments reach the program exactly as written). */
#ifndef RWKV_SWEEP_TESTUTIL_H
#define RWKV_SWEEP_TESTUTIL_H

#include <cJSON.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static char sw_tmp[256];

static inline void sw_setup(void) {
    snprintf(sw_tmp, sizeof sw_tmp, "/tmp/rwkvlab_sweep_XXXXXX");
    cr_assert(mkdtemp(sw_tmp));
}

static inline void sw_teardown(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", sw_tmp);
    (void)!system(cmd);
}

/* a file's contents (caller frees); NULL when it cannot be read */
static inline char *sw_read(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) fwrite(chunk, 1, n, m);
    fclose(f);
    fclose(m);
    return buf;
}

static inline void sw_write(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    cr_assert(f, "cannot write %s", path);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

static inline int sw_exists(const char *path) { return access(path, F_OK) == 0; }

/* the tiny config every sweep test trains: seeds and test lengths given, 4 steps of a 1-layer model */
static inline void sw_config(const char *path, const char *seeds, const char *test_lens, const char *sweep) {
    char text[2048];
    snprintf(text, sizeof text,
             "[experiment]\nname = sw\nseeds = %s\n[model]\nlayers = 1\nd_model = 32\nhead_size = 16\n"
             "[task]\nname = s3\ntrain_len = 8\ntest_lens = %s\ntest_size = 8\n[train]\nsteps = 4\nbatch = 4\n"
             "warmup = 1\neval_every = 4\n[log]\ntrajectories = 0\n%s%s\n",
             seeds, test_lens, sweep ? "[sweep]\n" : "", sweep ? sweep : "");
    sw_write(path, text);
}

/* Runs argv[0] (a path) with argv, stdout+stderr to `log`, in directory `cwd` (NULL: this one), with
 * the "NAME=VALUE" entries of `env` added. Its exit status, or 128 + signal. */
static inline int sw_run(char *const argv[], const char *log, const char *cwd, char *const env[]) {
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) _exit(125);
        if (cwd && chdir(cwd)) _exit(124);
        for (int i = 0; env && env[i]; i++) putenv(env[i]);
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* the JSON document in a file (caller cJSON_Deletes); fails the test when missing or malformed */
static inline cJSON *sw_json(const char *path) {
    char *t = sw_read(path);
    cr_assert(t, "missing %s", path);
    cJSON *j = cJSON_Parse(t);
    cr_assert(j, "%s is not JSON:\n%s", path, t);
    free(t);
    return j;
}

/* the integer member `key` of JSON object o; fails the test when it is missing */
static inline int sw_int(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    cr_assert(cJSON_IsNumber(v), "JSON member '%s' missing or not a number", key);
    return v->valueint;
}

/* occurrences of needle in hay */
static inline int sw_count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

#endif
