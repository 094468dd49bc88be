/* lmeval_out.c -- lm-eval 0.4-compatible output: locations, names, float text, collision-free publishing
 * (rules in lmeval_out.h). */
#include "lmeval_out.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void lmeval_sanitize_model_name(const char *name, char *out, size_t cap) {
    size_t o = 0;
    if (!cap) return;
    for (const char *p = name; *p && o + 1 < cap;) {
        if (strchr("\"<>:/|\\?*[]", *p)) {
            while (*p && strchr("\"<>:/|\\?*[]", *p)) p++; /* a run becomes one "__" */
            for (int k = 0; k < 2 && o + 1 < cap; k++) out[o++] = '_';
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = 0;
}

void lmeval_date_id(long long usec, char *out, size_t cap) {
    time_t sec = (time_t)(usec / 1000000);
    long frac = (long)(usec % 1000000);
    struct tm tm;
    localtime_r(&sec, &tm);
    char base[48];
    strftime(base, sizeof base, "%Y-%m-%dT%H-%M-%S", &tm);
    snprintf(out, cap, "%s.%06ld", base, frac);
}

long long lmeval_now_usec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void lmeval_py_float(double x, char *out, size_t cap) {
    if (isnan(x)) {
        snprintf(out, cap, "nan");
        return;
    }
    if (isinf(x)) {
        snprintf(out, cap, x < 0 ? "-inf" : "inf");
        return;
    }
    if (x == 0) {
        snprintf(out, cap, signbit(x) ? "-0.0" : "0.0");
        return;
    }
    /* shortest significand that reads back as x (glibc rounds correctly) */
    char e[48];
    for (int p = 1; p <= 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, x);
        if (strtod(e, NULL) == x) break;
    }
    const int neg = e[0] == '-';
    char dig[24];
    int nd = 0;
    const char *s = e + neg;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9') dig[nd++] = *s;
    while (nd > 1 && dig[nd - 1] == '0') nd--;
    dig[nd] = 0;
    const int exp10 = atoi(s + 1), decpt = exp10 + 1; /* x = 0.DIGITS * 10^decpt */
    char r[64];
    int o = 0;
    if (neg) r[o++] = '-';
    if (decpt > -4 && decpt <= 16) { /* Python repr: fixed notation in this range */
        if (decpt <= 0) {
            o += sprintf(r + o, "0.");
            for (int k = 0; k < -decpt; k++) r[o++] = '0';
            o += sprintf(r + o, "%s", dig);
        } else if (decpt >= nd) {
            o += sprintf(r + o, "%s", dig);
            for (int k = nd; k < decpt; k++) r[o++] = '0';
            o += sprintf(r + o, ".0");
        } else {
            o += sprintf(r + o, "%.*s.%s", decpt, dig, dig + decpt);
        }
    } else {
        r[o++] = dig[0];
        if (nd > 1) o += sprintf(r + o, ".%s", dig + 1);
        o += sprintf(r + o, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    }
    r[o] = 0;
    snprintf(out, cap, "%s", r);
}

cJSON *lmeval_json_float(double x) {
    if (!isfinite(x)) return cJSON_CreateNull();
    char t[64];
    lmeval_py_float(x, t, sizeof t);
    return cJSON_CreateRaw(t);
}

cJSON *lmeval_json_add_float(cJSON *obj, const char *key, double x) {
    cJSON *it = lmeval_json_float(x);
    cJSON_AddItemToObject(obj, key, it);
    return it;
}

int lmbuf_add(LmBuf *b, const char *s, size_t n, Err *err) {
    if (n >= SIZE_MAX / 2 - b->len)
        return err_set(err, "out of memory: an output buffer of %zu + %zu bytes is beyond any machine", b->len, n);
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 1 << 16;
        while (cap < b->len + n + 1) cap = cap > SIZE_MAX / 4 ? b->len + n + 1 : 2 * cap;
        char *p = realloc(b->p, cap);
        if (!p)
            return err_set(err, "out of memory growing an output buffer to %zu bytes (run without --samples, or "
                                "with --limit N)", cap);
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

void lmbuf_free(LmBuf *b) {
    free(b->p);
    b->p = NULL, b->len = b->cap = 0;
}

int lmeval_out_location(const char *out, const char *model_name, char *dir, size_t dcap, char *results_prefix,
                        size_t pcap, Err *err) {
    if (!out || !*out) out = ".";
    const char *base = strrchr(out, '/');
    base = base ? base + 1 : out;
    const char *dot = strrchr(base, '.');
    if (dot && dot > base && !strcmp(dot, ".json")) {
        /* OUT is a file name: lm-eval writes <stem>_<date_id>.json next to it */
        int dl = base > out ? (int)(base - out - 1) : -1;
        if (dl == 0) snprintf(dir, dcap, "/");
        else if (dl < 0) snprintf(dir, dcap, ".");
        else if ((size_t)snprintf(dir, dcap, "%.*s", dl, out) >= dcap) goto too_long;
        if ((size_t)snprintf(results_prefix, pcap, "%.*s_", (int)(dot - base), base) >= pcap) goto too_long;
        return 0;
    }
    char san[1024];
    lmeval_sanitize_model_name(model_name, san, sizeof san);
    size_t ol = strlen(out);
    if ((size_t)snprintf(dir, dcap, "%s%s%s", out, ol && out[ol - 1] == '/' ? "" : "/", san) >= dcap) goto too_long;
    snprintf(results_prefix, pcap, "results_");
    return 0;
too_long:
    return err_set(err, "--out %.200s: the output path is too long (limit %zu bytes)", out, dcap - 1);
}

int lmeval_out_prepare(const char *dir, char *created, size_t cap, Err *err) {
    Err e;
    struct stat st;
    created[0] = 0;
    char pre[4096];
    snprintf(pre, sizeof pre, "%s", dir);
    for (char *q = pre + 1;; q++) { /* the first missing prefix at a '/' (or the whole path) */
        int end = !*q;
        if (*q == '/' || end) {
            char c = *q;
            *q = 0;
            if (stat(pre, &st) && errno == ENOENT) {
                snprintf(created, cap, "%s", pre);
                break;
            }
            *q = c;
        }
        if (end) break;
    }
    if (mkdir_p(dir, &e)) return err_set(err, "output directory: %s; choose another --out", e.msg);
    if (stat(dir, &st) || !S_ISDIR(st.st_mode))
        return err_set(err, "output directory '%s' exists and is not a directory; choose another --out", dir);
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/.rwkvlab-probe.%ld", dir, (long)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        return err_set(err, "cannot create files in output directory '%s': %s; choose another --out", dir,
                       strerror(errno));
    close(fd);
    unlink(probe);
    return 0;
}

void lmeval_out_unprepare(const char *dir, const char *created) {
    if (!created || !*created) return;
    char p[4096];
    snprintf(p, sizeof p, "%s", dir);
    for (;;) {
        size_t l = strlen(p);
        while (l > 1 && p[l - 1] == '/') p[--l] = 0;
        if (rmdir(p)) return; /* not empty (or not ours to remove): stop */
        if (!strcmp(p, created)) return;
        char *s = strrchr(p, '/');
        if (!s || s == p) return;
        *s = 0;
    }
}

/* filesystems without hard links: publish by rename after checking the name is free */
static int lmeval_link_unsupported(int e) { return e == EPERM || e == EOPNOTSUPP || e == EXDEV || e == ENOSYS || e == EMLINK; }

int lmeval_publish(const char *dir, const LmOutFile *files, int n, long long usec, char *stamp, size_t scap,
                   Err *err) {
    char (*part)[4200] = xmalloc((size_t)(n ? n : 1) * sizeof *part);
    char (*fin)[4200] = xmalloc((size_t)(n ? n : 1) * sizeof *fin);
    int *how = xcalloc(n ? n : 1, sizeof(int)); /* 1 linked, 2 renamed */
    int rc = -1, nparts = 0;
    for (; nparts < n; nparts++) {
        snprintf(part[nparts], sizeof part[0], "%s/.rwkvlab-out.%ld.%d", dir, (long)getpid(), nparts);
        if (write_file_atomic(part[nparts], files[nparts].data, files[nparts].len, err)) goto done;
    }
    for (long tries = 0; tries < 1000000; tries++) {
        char id[64];
        lmeval_date_id(usec + tries, id, sizeof id);
        int k = 0, taken = 0, failed = 0;
        for (; k < n; k++) {
            if ((size_t)snprintf(fin[k], sizeof fin[0], "%s/%s%s%s", dir, files[k].prefix, id, files[k].suffix) >=
                sizeof fin[0]) {
                err_set(err, "output path too long in '%s'", dir);
                failed = 1;
                break;
            }
            if (link(part[k], fin[k]) == 0) {
                how[k] = 1;
                continue;
            }
            int e = errno;
            if (e == EEXIST) {
                taken = 1;
                break;
            }
            if (lmeval_link_unsupported(e)) {
                if (access(fin[k], F_OK) == 0) {
                    taken = 1;
                    break;
                }
                if (rename(part[k], fin[k]) == 0) {
                    how[k] = 2;
                    continue;
                }
                e = errno;
            }
            err_set(err, "cannot write '%s': %s", fin[k], strerror(e));
            failed = 1;
            break;
        }
        if (!taken && !failed) {
            if (n) (void)fsync_parent_dir(fin[n - 1]); /* durability, best effort: the files are complete either way */
            snprintf(stamp, scap, "%s", id);
            rc = 0;
            goto done;
        }
        for (int j = 0; j < k; j++) { /* take back this attempt's files */
            if (how[j] == 1) unlink(fin[j]);
            else if (how[j] == 2) rename(fin[j], part[j]);
            how[j] = 0;
        }
        if (failed) goto done;
    }
    err_set(err, "no free output name in '%s' after 10^6 attempts", dir);
done:
    for (int j = 0; j < nparts; j++)
        if (how[j] != 2) unlink(part[j]);
    free(part), free(fin), free(how);
    return rc;
}
