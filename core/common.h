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

/* Error reporting for recoverable errors (bad input): functions that can fail on user input take
 * `Err *err`, fill it and return nonzero. The message says what, where and how to fix. */
typedef struct {
    char msg[1024];
} Err;
int err_set(Err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Write `len` bytes to `path` atomically: temp file in the same directory, fsync, rename. */
int write_file_atomic(const char *path, const void *data, size_t len, Err *err);
/* A cJSON document, pretty-printed, written atomically. */
struct cJSON;
int json_write_atomic(const char *path, const struct cJSON *j, Err *err);
/* mkdir -p: create path and its missing parents (existing directories are fine). */
int mkdir_p(const char *path, Err *err);

double now_seconds(void);

#endif
