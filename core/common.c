/* common.c -- allocation and file helpers with call-site diagnostics; atomic file writes. */
#include "common.h"

#include <cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

void *xmalloc_at(size_t n, const char *file, int line) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "rwkvlab: out of memory allocating %zu bytes at %s:%d\n", n, file, line);
        exit(EXIT_FAILURE);
    }
    return p;
}

void *xcalloc_at(size_t n, size_t sz, const char *file, int line) {
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) {
        fprintf(stderr, "rwkvlab: out of memory allocating %zu x %zu bytes at %s:%d\n", n, sz, file, line);
        exit(EXIT_FAILURE);
    }
    return p;
}

FILE *xfopen_at(const char *path, const char *mode, const char *file, int line) {
    FILE *f = fopen(path, mode);
    if (!f) {
        fprintf(stderr, "rwkvlab: cannot open '%s' (mode %s) at %s:%d: %s\n", path, mode, file, line,
                strerror(errno));
        exit(EXIT_FAILURE);
    }
    return f;
}

int err_set(Err *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int write_file_atomic(const char *path, const void *data, size_t len, Err *err) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return err_set(err, "cannot create '%s': %s", tmp, strerror(errno));
    int ok = fwrite(data, 1, len, f) == len;
    ok &= fflush(f) == 0;
    ok &= fsync(fileno(f)) == 0;
    ok &= fclose(f) == 0;
    if (!ok) {
        unlink(tmp);
        return err_set(err, "cannot write '%s' (disk full?): %s", tmp, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return err_set(err, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    }
    return 0;
}

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int json_write_atomic(const char *path, const struct cJSON *j, Err *err) {
    char *txt = cJSON_Print(j);
    if (!txt) return err_set(err, "cannot format JSON for '%s' (out of memory?)", path);
    int rc = write_file_atomic(path, txt, strlen(txt), err);
    free(txt);
    return rc;
}

int mkdir_p(const char *path, Err *err) {
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s", path) >= sizeof tmp) return err_set(err, "path too long: '%.80s...'", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) && errno != EEXIST)
                return err_set(err, "cannot create directory '%s': %s", tmp, strerror(errno));
            *p = '/';
        }
    if (mkdir(tmp, 0755) && errno != EEXIST) return err_set(err, "cannot create directory '%s': %s", tmp, strerror(errno));
    return 0;
}
