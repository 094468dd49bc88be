/* common.h -- scalar type, check macros and small helpers shared by every module.
 *
 * Dimension legend used in shape comments across rwkvlab:
 *   B batch, T time (tokens), C model width, H heads, N head size (C = H*N),
 *   V vocabulary, L layers, F FFN width (4C), D* LoRA ranks.
 *
 * `real` is the compute scalar: float by default, double when built with -DRWKV_F64
 * (used by the gradient checks). Everything numerical goes through it.
 */
#ifndef RWKV_COMMON_H
#define RWKV_COMMON_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef RWKV_F64
typedef double real;
#define REAL_NAME "f64"
#else
typedef float real;
#define REAL_NAME "f32"
#endif

/* Fatal check that stays on in release builds: prints file:line, the failed condition and a hint. */
#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "rwkvlab: check failed at %s:%d: %s\n  ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fprintf(stderr, "\n");                                                         \
            exit(EXIT_FAILURE);                                                            \
        }                                                                                  \
    } while (0)

void *xmalloc_at(size_t n, const char *file, int line);
void *xcalloc_at(size_t n, size_t sz, const char *file, int line);
FILE *xfopen_at(const char *path, const char *mode, const char *file, int line);
#define xmalloc(n) xmalloc_at((n), __FILE__, __LINE__)
#define xcalloc(n, sz) xcalloc_at((n), (sz), __FILE__, __LINE__)
#define xfopen(p, m) xfopen_at((p), (m), __FILE__, __LINE__)

/* Reusable scratch buffers, one set per thread (thread-local), grown on demand and kept: a training step
 * allocates nothing once the first step has sized them. Contents are undefined on return. A slot serves one
 * caller at a time: each user owns its slot number below. */
enum {
    SCR_WKV_S, SCR_WKV_B, SCR_WKV_SBUF, SCR_WKV_SA, SCR_WKV_G, SCR_WKV_DQ, SCR_WKV_DB, SCR_WKV_BV,
    SCR_KK_DU, SCR_BONUS_DS, SCR_CE_ROWLOSS, SCR_GNORM, SCR_SLOTS
};
void *scratch_at(int slot, size_t bytes, const char *file, int line);
#define scratch(slot, bytes) scratch_at((slot), (bytes), __FILE__, __LINE__)

/* Error reporting for recoverable errors (bad input): functions that can fail on user input take
 * `Err *err`, fill it and return nonzero. The message says what, where and how to fix. */
typedef struct {
    char msg[1024];
} Err;
int err_set(Err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Write `len` bytes to `path` atomically: temp file `path`.tmp.<pid> in the same directory, fsync,
 * rename, fsync of the directory. On failure the temp file is removed and `path` is untouched. */
int write_file_atomic(const char *path, const void *data, size_t len, Err *err);
/* A cJSON document, pretty-printed, written atomically. */
struct cJSON;
int json_write_atomic(const char *path, const struct cJSON *j, Err *err);
/* mkdir -p: create path and its missing parents (existing directories are fine). */
int mkdir_p(const char *path, Err *err);

/* fsync of a file descriptor / of the directory holding `path` (so a rename in it is durable); both go
 * through fault_point("fsync"). Return 0 or -1 with errno set. */
int fsync_fd(int fd);
int fsync_parent_dir(const char *path);
/* Remove the `NAME.tmp.<pid>` files in DIR left by killed writers (call only while owning DIR). Returns the count. */
int remove_stale_tmp(const char *dir);

/* Testing aid for crash and disk-full tests. RWKVLAB_FAULT="KIND:N[:ACTION]" makes the N-th call of
 * fault_point(KIND) in this process act: ACTION "kill" (default) sends SIGKILL to the process,
 * "enospc" makes it return -1 with errno = ENOSPC. KIND is "fsync" (every fsync_fd) or "h5" (every
 * record appended to run.h5). RWKVLAB_FAULT_COUNT=FILE appends "KIND N" per call, to count them.
 * Without the variables fault_point returns 0 and costs one branch. */
int fault_point(const char *kind);

double now_seconds(void);

#endif
