/* common.c -- allocation and file helpers with call-site diagnostics; atomic file writes. */
#include "common.h"

#include <cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
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

int fault_point(const char *kind) {
    static int init = 0, target = 0, enospc = 0;
    static char want[16];
    static long count = 0;
    static const char *count_file = NULL;
    if (!init) {
        init = 1;
        const char *f = getenv("RWKVLAB_FAULT");
        count_file = getenv("RWKVLAB_FAULT_COUNT");
        if (f) {
            char act[16] = "kill";
            if (sscanf(f, "%15[^:]:%d:%15s", want, &target, act) < 2 || target <= 0) {
                fprintf(stderr, "rwkvlab: RWKVLAB_FAULT='%s' is not KIND:N[:kill|enospc]; ignored\n", f);
                target = 0;
            }
            enospc = !strcmp(act, "enospc");
        }
    }
    if (count_file) {
        FILE *c = fopen(count_file, "a");
        if (c) fprintf(c, "%s\n", kind), fclose(c);
    }
    if (!target || strcmp(kind, want) || ++count != target) return 0;
    if (!enospc) {
        raise(SIGKILL);
        return -1; /* not reached */
    }
    errno = ENOSPC;
    return -1;
}

int fsync_fd(int fd) {
    if (fault_point("fsync")) return -1;
    return fsync(fd);
}

int fsync_parent_dir(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    int fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync_fd(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

int remove_stale_tmp(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    char p[4600];
    while ((e = readdir(d))) {
        const char *t = strstr(e->d_name, ".tmp.");
        if (!t || !t[5] || strspn(t + 5, "0123456789") != strlen(t + 5)) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        n += unlink(p) == 0;
    }
    closedir(d);
    return n;
}

int write_file_atomic(const char *path, const void *data, size_t len, Err *err) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return err_set(err, "cannot create '%s': %s", tmp, strerror(errno));
    int e = 0;
    if (fwrite(data, 1, len, f) != len || fflush(f) != 0 || fsync_fd(fileno(f)) != 0) e = errno ? errno : EIO;
    if (fclose(f) != 0 && !e) e = errno ? errno : EIO;
    if (e) {
        unlink(tmp);
        return err_set(err, "cannot write '%s' (%zu bytes): %s%s", path, len, strerror(e),
                       e == ENOSPC ? " (the disk is full: free space and retry; the previous file is unchanged)" : "");
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        return err_set(err, "cannot rename '%s' to '%s': %s", tmp, path, strerror(e));
    }
    if (fsync_parent_dir(path) != 0)
        return err_set(err, "wrote '%s' but cannot sync its directory: %s", path, strerror(errno));
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

/* ---- per-thread scratch (common.h) ---- */
static __thread struct {
    void *p;
    size_t n;
} scratch_slots[SCR_SLOTS];

void *scratch_at(int slot, size_t bytes, const char *file, int line) {
    CHECK(slot >= 0 && slot < SCR_SLOTS, "scratch slot %d out of range (called from %s:%d)", slot, file, line);
    if (bytes == 0) bytes = 1;
    if (scratch_slots[slot].n < bytes) {
        free(scratch_slots[slot].p);
        scratch_slots[slot].p = xmalloc_at(bytes, file, line);
        scratch_slots[slot].n = bytes;
    }
    return scratch_slots[slot].p;
}
