/* lmeval_shard.c -- document-range shards of an lm-eval run: ranges, the model hash, shard files and their
 * merge into one lm-eval results JSON (rules in lmeval_shard.h). The metrics and the results text are
 * lmeval.c's (lmeval_task_metrics, lmeval_results_text, lmeval_publish_results): a merged run and an
 * unsharded one go through the same code. */
#include "lmeval_shard.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lmeval_out.h"

#ifndef RWKVLAB_VERSION
#define RWKVLAB_VERSION "unknown"
#endif

#define SHARD_FORMAT "rwkvlab-lmeval-shard"

/* ---- the hash ---------------------------------------------------------------------------------------- */

static const uint64_t H_K1 = 0x9E3779B97F4A7C15ull, H_K2 = 0xC2B2AE3D27D4EB4Full, H_K3 = 0x165667B19E3779F9ull;

static uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static uint64_t load_le64(const unsigned char *p) {
    uint64_t w = 0;
    for (int k = 7; k >= 0; k--) w = (w << 8) | p[k];
    return w;
}

/* one 32-byte stripe: word k goes to lane k */
static void lmhash_stripe(LmHash *h, const unsigned char *p) {
    for (int k = 0; k < 4; k++) h->acc[k] = rotl64(h->acc[k] + load_le64(p + 8 * k) * H_K2, 31) * H_K1;
}

void lmhash_init(LmHash *h) {
    memset(h, 0, sizeof *h);
    for (int k = 0; k < 4; k++) h->acc[k] = H_K3 * (uint64_t)(k + 1);
}

void lmhash_update(LmHash *h, const void *data, size_t n) {
    const unsigned char *p = data;
    h->len += n;
    if (h->nbuf) {
        size_t take = 32 - (size_t)h->nbuf < n ? 32 - (size_t)h->nbuf : n;
        memcpy(h->buf + h->nbuf, p, take);
        h->nbuf += (int)take, p += take, n -= take;
        if (h->nbuf < 32) return;
        lmhash_stripe(h, h->buf);
        h->nbuf = 0;
    }
    for (; n >= 32; p += 32, n -= 32) lmhash_stripe(h, p);
    memcpy(h->buf, p, n);
    h->nbuf = (int)n;
}

uint64_t lmhash_final(const LmHash *h) {
    uint64_t x = h->len * H_K3;
    for (int k = 0; k < 4; k++) x = (x ^ rotl64(h->acc[k], 1 + 7 * k)) * H_K1;
    for (int i = 0; i < h->nbuf; i++) x = rotl64(x ^ (h->buf[i] * H_K2), 23) * H_K1;
    /* avalanche: every input bit reaches every output bit */
    x ^= x >> 30, x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27, x *= 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

int lmeval_file_hash64(const char *path, uint64_t *hash, long long *bytes, Err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, "--model %s: cannot open it to hash it: %s", path, strerror(errno));
    enum { CHUNK = 1 << 22 };
    unsigned char *buf = xmalloc(CHUNK);
    LmHash h;
    lmhash_init(&h);
    size_t k;
    while ((k = fread(buf, 1, CHUNK, f)) > 0) lmhash_update(&h, buf, k);
    int bad = ferror(f);
    fclose(f);
    free(buf);
    if (bad) return err_set(err, "--model %s: read error while hashing it", path);
    *hash = lmhash_final(&h);
    *bytes = (long long)h.len;
    return 0;
}

/* ---- --shard I/N and ranges --------------------------------------------------------------------------- */

static int parse_uint(const char *s, size_t n, long *v) {
    if (!n || n > 9) return -1;
    *v = 0;
    for (size_t k = 0; k < n; k++) {
        if (s[k] < '0' || s[k] > '9') return -1;
        *v = *v * 10 + (s[k] - '0');
    }
    return 0;
}

int lmeval_shard_parse(const char *arg, int *i, int *n, Err *err) {
    const char *sl = arg ? strchr(arg, '/') : NULL;
    long a, b;
    if (!sl || parse_uint(arg, (size_t)(sl - arg), &a) || parse_uint(sl + 1, strlen(sl + 1), &b))
        return err_set(err, "--shard '%.100s': expected I/N, two whole numbers with 0 <= I < N (e.g. --shard 0/4 for the "
                            "first of 4 shards)", arg ? arg : "");
    if (b < 1 || b > LMEVAL_SHARD_MAX)
        return err_set(err, "--shard %s: the shard count N = %ld must be in 1..%d", arg, b, LMEVAL_SHARD_MAX);
    if (a >= b)
        return err_set(err, "--shard %s: the shard index I = %ld must be in 0..%ld (indices count from 0)", arg, a, b - 1);
    *i = (int)a, *n = (int)b;
    return 0;
}

int lmeval_shard_check(int i, int n, Err *err) {
    if (n == 0 && i == 0) return 0;
    if (n < 1 || n > LMEVAL_SHARD_MAX || i < 0 || i >= n)
        return err_set(err, "shard %d/%d: use 0 <= I < N <= %d (or N = 0: unsharded)", i, n, LMEVAL_SHARD_MAX);
    return 0;
}

/* boundary s of n: the index k in [0, ndocs] whose prefix sum cum[k] is closest to s/n of the total */
void lmeval_shard_range(const long *doc_tokens, int ndocs, int i, int n, int *lo, int *hi) {
    long long total = 0;
    for (int d = 0; d < ndocs; d++) total += doc_tokens[d];
    int b[2];
    for (int e = 0; e < 2; e++) {
        const int s = i + e;
        if (s == 0) b[e] = 0;
        else if (s == n) b[e] = ndocs;
        else {
            const long long target = total * s; /* compare cum * n with total * s: exact integers */
            long long cum = 0;
            int k = 0;
            while (k < ndocs && cum * n < target) cum += doc_tokens[k++];
            /* cum[k] * n >= target (or k = ndocs); cum[k - 1] * n < target */
            if (k > 0 && target - (cum - doc_tokens[k - 1]) * n <= cum * n - target) k--;
            b[e] = k;
        }
    }
    *lo = b[0], *hi = b[1] > b[0] ? b[1] : b[0];
}

void lmeval_shard_file_name(int i, int n, char *out, size_t cap) { snprintf(out, cap, "lmeval_shard_%dof%d.json", i, n); }

/* ---- writing a shard -------------------------------------------------------------------------------------- */

static void hash_hex(uint64_t h, char *out, size_t cap) { snprintf(out, cap, "h64:%016llx", (unsigned long long)h); }

/* a float array, exactly: repr digits, non-finite values as strings */
static cJSON *float_array(const double *x, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int k = 0; k < n; k++) {
        char t[64];
        lmeval_py_float(x[k], t, sizeof t);
        cJSON_AddItemToArray(a, isfinite(x[k]) ? cJSON_CreateRaw(t) : cJSON_CreateString(t));
    }
    return a;
}

static const char *split_name(int split) { return split == LMEVAL_SPLIT_SEPARATE ? "separate" : "lmeval"; }

/* What a shard records of its device: "cpu", or "cuda:<g>" with g the GPU the process runs on (the first
 * entry of CUDA_VISIBLE_DEVICES, which --devices sets per worker; 0 without it: the engine uses device 0). */
static void shard_device_label(const LmevalOpts *o, char *out, size_t cap) {
    if (!o->device || strcmp(o->device, "cuda")) {
        snprintf(out, cap, "%s", o->device ? o->device : "cpu");
        return;
    }
    const char *v = getenv("CUDA_VISIBLE_DEVICES");
    int n = v ? (int)strcspn(v, ",") : 0;
    if (n > 40) n = 40;
    if (n > 0) snprintf(out, cap, "cuda:%.*s", n, v);
    else snprintf(out, cap, "cuda:0");
}
/* the weight type and batch size as the results file reports them (lmeval_results_text) */
static const char *shard_dtype(const LmevalOpts *o) {
    if (!o->device || strcmp(o->device, "cuda")) return "fp32";
    return o->dtype ? o->dtype : "bf16";
}
static int shard_batch(const LmevalOpts *o) { return o->device && !strcmp(o->device, "cuda") ? o->batch : 1; }

void lmeval_merge_devices(const char *const *dev, int n, char *out, size_t cap) {
    int all_cuda = n > 0;
    for (int k = 0; k < n; k++) all_cuda &= !strncmp(dev[k], "cuda:", 5);
    size_t len = 0;
    out[0] = 0;
    if (all_cuda) len = (size_t)snprintf(out, cap, "cuda:");
    for (int k = 0; k < n; k++) {
        const char *d = all_cuda ? dev[k] + 5 : dev[k];
        int seen = 0; /* distinct values, in shard order */
        for (int q = 0; q < k && !seen; q++) seen = !strcmp(all_cuda ? dev[q] + 5 : dev[q], d);
        if (seen) continue;
        const int first = all_cuda ? len == 5 : len == 0;
        if (len + strlen(d) + 2 >= cap) break;
        len += (size_t)snprintf(out + len, cap - len, "%s%s", first ? "" : ",", d);
    }
}

int lmeval_shard_write(const LmShardRun *r, const LmShardTask *tasks, int ntasks, const char *outdir, char *path,
                       size_t cap, Err *err) {
    const LmevalOpts *o = r->o;
    char name[64], hx[32];
    lmeval_shard_file_name(o->shard_i, o->shard_n, name, sizeof name);
    if ((size_t)snprintf(path, cap, "%s/%s", outdir, name) >= cap)
        return err_set(err, "--out: the shard file path '%s/%s' is too long", outdir, name);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", SHARD_FORMAT);
    cJSON_AddNumberToObject(root, "format_version", LMEVAL_SHARD_FORMAT_VERSION);
    cJSON_AddStringToObject(root, "rwkvlab_version", RWKVLAB_VERSION);
    cJSON *mo = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(mo, "path", o->model_path);
    cJSON_AddStringToObject(mo, "arch", r->arch);
    cJSON_AddNumberToObject(mo, "bytes", (double)r->model_bytes);
    hash_hex(r->model_hash, hx, sizeof hx);
    cJSON_AddStringToObject(mo, "hash", hx);
    char dev[96];
    shard_device_label(o, dev, sizeof dev);
    cJSON_AddStringToObject(root, "device", dev);
    cJSON_AddStringToObject(root, "dtype", shard_dtype(o));
    cJSON_AddNumberToObject(root, "batch", shard_batch(o));
    cJSON *sh = cJSON_AddObjectToObject(root, "shard");
    cJSON_AddNumberToObject(sh, "index", o->shard_i);
    cJSON_AddNumberToObject(sh, "count", o->shard_n);
    cJSON *tl = cJSON_AddArrayToObject(root, "tasks");
    for (int i = 0; i < ntasks; i++) cJSON_AddItemToArray(tl, cJSON_CreateString(tasks[i].t->name));
    cJSON_AddNumberToObject(root, "prefix_token", r->prefix);
    cJSON_AddStringToObject(root, "split", split_name(o->split));
    cJSON_AddNumberToObject(root, "limit", (double)o->limit);
    cJSON_AddNumberToObject(root, "bootstrap_iters", (double)o->bootstrap);
    cJSON_AddBoolToObject(root, "shared_context_state", !o->no_share);
    cJSON_AddBoolToObject(root, "samples", o->samples);
    lmeval_json_add_float(root, "date", r->date);
    lmeval_json_add_float(root, "start_time", r->t0);
    lmeval_json_add_float(root, "end_time", r->t1);
    cJSON *ta = cJSON_AddArrayToObject(root, "task_data");
    for (int i = 0; i < ntasks; i++) {
        const LmShardTask *s = &tasks[i];
        const int k = s->hi - s->lo;
        if (k > 0 && (!s->acc || (s->t->has_acc_norm && !s->accn) || (s->t->is_loglik_ppl && !s->ll))) {
            cJSON_Delete(root);
            return err_set(err, "%s: the scoring path kept no per-document values for the shard file (a bug: every "
                                "engine must fill them for --shard)", s->t->name);
        }
        cJSON *t = cJSON_CreateObject();
        cJSON_AddItemToArray(ta, t);
        cJSON_AddStringToObject(t, "name", s->t->name);
        cJSON_AddStringToObject(t, "source", s->t->source);
        if (s->t->note) cJSON_AddStringToObject(t, "note", s->t->note);
        else cJSON_AddNullToObject(t, "note");
        cJSON_AddBoolToObject(t, "loglikelihood_perplexity", s->t->is_loglik_ppl);
        cJSON_AddBoolToObject(t, "has_acc_norm", s->t->has_acc_norm);
        cJSON_AddNumberToObject(t, "ndocs_original", s->t->ndocs);
        cJSON_AddNumberToObject(t, "ndocs", s->n);
        hash_hex(s->req_hash, hx, sizeof hx);
        cJSON_AddStringToObject(t, "requests_hash", hx);
        cJSON_AddNumberToObject(t, "tokens", (double)s->ntok);
        cJSON *rg = cJSON_AddArrayToObject(t, "range");
        cJSON_AddItemToArray(rg, cJSON_CreateNumber(s->lo));
        cJSON_AddItemToArray(rg, cJSON_CreateNumber(s->hi));
        cJSON_AddNumberToObject(t, "range_tokens", (double)s->rtok);
        cJSON_AddItemToObject(t, "acc", float_array(s->acc, k));
        if (s->t->has_acc_norm) cJSON_AddItemToObject(t, "acc_norm", float_array(s->accn, k));
        if (s->t->is_loglik_ppl) cJSON_AddItemToObject(t, "ll", float_array(s->ll, k));
        if (o->samples) {
            /* the text is JSON lines (UTF-8 checked at load): one string holds them */
            cJSON *sm = cJSON_CreateString(s->samples ? s->samples : "");
            if (!sm) {
                cJSON_Delete(root);
                return err_set(err, "%s: out of memory formatting the samples of the shard file", s->t->name);
            }
            cJSON_AddItemToObject(t, "samples", sm);
        }
        if (!o->quiet)
            printf("%-15s shard %d/%d: documents [%d, %d) of %d (%ld of %ld tokens)\n", s->t->name, o->shard_i,
                   o->shard_n, s->lo, s->hi, s->n, s->rtok, s->ntok);
    }
    char *txt = cJSON_Print(root);
    cJSON_Delete(root);
    if (!txt) return err_set(err, "out of memory formatting the shard file %s", path);
    int rc = write_file_atomic(path, txt, strlen(txt), err);
    free(txt);
    return rc;
}

/* ---- reading shards ---------------------------------------------------------------------------------------- */

typedef struct {
    char name[32];
    const char *source, *note, *hash; /* inside the parsed JSON (note NULL: none) */
    int ppl, has_acc_norm, ndocs_original, n, lo, hi;
    double *acc, *accn, *ll;
    const char *samples; /* inside the parsed JSON */
} ShardTaskIn;

typedef struct {
    char path[4096];
    cJSON *json;
    int format_version;
    const char *version, *model_path, *arch, *model_hash, *device, *split, *dtype;
    double model_bytes;
    int index, count, prefix, shared, samples, batch;
    long limit, bootstrap;
    double date, t0, t1;
    int ntasks;
    ShardTaskIn task[LMEVAL_MAX_TASKS];
} ShardIn;

static void shard_in_free(ShardIn *s) {
    for (int i = 0; i < s->ntasks; i++) free(s->task[i].acc), free(s->task[i].accn), free(s->task[i].ll);
    cJSON_Delete(s->json);
    memset(s, 0, sizeof *s);
}

static char *slurp_file(const char *path, Err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, "%s: cannot open the shard file: %s", path, strerror(errno)), NULL;
    LmBuf b = {0};
    char chunk[1 << 16];
    size_t k;
    Err e;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (lmbuf_add(&b, chunk, k, &e)) {
            fclose(f), lmbuf_free(&b);
            return err_set(err, "%s: %s", path, e.msg), NULL;
        }
    int bad = ferror(f);
    fclose(f);
    if (bad) return lmbuf_free(&b), err_set(err, "%s: read error", path), NULL;
    if (!b.p) return err_set(err, "%s: the file is empty: not a shard file", path), NULL;
    return b.p;
}

/* typed field access with a message naming the file and the field */
static cJSON *field(cJSON *o, const char *key, const char *path, const char *where, Err *err) {
    cJSON *it = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    if (!it) err_set(err, "%s: shard file lacks %s'%s' (the file is damaged or not a shard file)", path, where, key);
    return it;
}
static int get_str(cJSON *o, const char *key, const char **v, const char *path, const char *where, Err *err) {
    cJSON *it = field(o, key, path, where, err);
    if (!it) return -1;
    if (!cJSON_IsString(it)) return err_set(err, "%s: %s'%s' must be a string", path, where, key);
    *v = it->valuestring;
    return 0;
}
static int get_num(cJSON *o, const char *key, double lo, double hi, double *v, const char *path, const char *where,
                   Err *err) {
    cJSON *it = field(o, key, path, where, err);
    if (!it) return -1;
    if (!cJSON_IsNumber(it) || !(it->valuedouble >= lo && it->valuedouble <= hi) || floor(it->valuedouble) != it->valuedouble)
        return err_set(err, "%s: %s'%s' must be a whole number in [%.0f, %.0f]", path, where, key, lo, hi);
    *v = it->valuedouble;
    return 0;
}
static int get_int(cJSON *o, const char *key, double lo, double hi, int *v, const char *path, const char *where, Err *err) {
    double d;
    if (get_num(o, key, lo, hi, &d, path, where, err)) return -1;
    *v = (int)d;
    return 0;
}
static int get_bool(cJSON *o, const char *key, int *v, const char *path, const char *where, Err *err) {
    cJSON *it = field(o, key, path, where, err);
    if (!it) return -1;
    if (!cJSON_IsBool(it)) return err_set(err, "%s: %s'%s' must be true or false", path, where, key);
    *v = cJSON_IsTrue(it);
    return 0;
}
static int get_float(cJSON *o, const char *key, double *v, const char *path, Err *err) {
    cJSON *it = field(o, key, path, "", err);
    if (!it) return -1;
    if (!cJSON_IsNumber(it)) return err_set(err, "%s: '%s' must be a number", path, key);
    *v = it->valuedouble;
    return 0;
}
/* (n) floats: numbers, or "nan" / "inf" / "-inf" */
static int get_floats(cJSON *o, const char *key, int n, double **out, const char *path, const char *where, Err *err) {
    cJSON *a = field(o, key, path, where, err);
    if (!a) return -1;
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n)
        return err_set(err, "%s: %s'%s' must be an array of %d values (one per document of the range)", path, where, key, n);
    double *x = *out = xcalloc(n ? n : 1, sizeof(double));
    int k = 0;
    for (cJSON *it = a->child; it; it = it->next, k++) {
        if (cJSON_IsNumber(it)) {
            x[k] = it->valuedouble;
            continue;
        }
        char *end = NULL;
        if (cJSON_IsString(it)) x[k] = strtod(it->valuestring, &end);
        if (!end || end == it->valuestring || *end || isfinite(x[k])) /* only nan, inf, -inf are strings */
            return err_set(err, "%s: %s'%s'[%d] is not a number", path, where, key, k);
    }
    return 0;
}

static int shard_read(const char *path, ShardIn *s, Err *err) {
    memset(s, 0, sizeof *s);
    snprintf(s->path, sizeof s->path, "%s", path);
    char *txt = slurp_file(path, err);
    if (!txt) return -1;
    s->json = cJSON_Parse(txt);
    free(txt);
    cJSON *r = s->json;
    if (!r || !cJSON_IsObject(r)) return err_set(err, "%s: not JSON (a damaged shard file?); re-run its shard", path);
    const char *fmt;
    if (get_str(r, "format", &fmt, path, "", err)) return -1;
    if (strcmp(fmt, SHARD_FORMAT)) return err_set(err, "%s: format '%.60s' is not " SHARD_FORMAT, path, fmt);
    if (get_int(r, "format_version", 0, 1e9, &s->format_version, path, "", err)) return -1;
    if (s->format_version != LMEVAL_SHARD_FORMAT_VERSION)
        return err_set(err, "%s: shard format version %d; this rwkvlab (%s) reads version %d: merge with the rwkvlab "
                            "that wrote the shards", path, s->format_version, RWKVLAB_VERSION, LMEVAL_SHARD_FORMAT_VERSION);
    cJSON *mo = field(r, "model", path, "", err), *sh = field(r, "shard", path, "", err);
    if (!mo || !sh) return -1;
    double lim, boot;
    if (get_str(r, "rwkvlab_version", &s->version, path, "", err) || get_str(mo, "path", &s->model_path, path, "model.", err) ||
        get_str(mo, "arch", &s->arch, path, "model.", err) || get_str(mo, "hash", &s->model_hash, path, "model.", err) ||
        get_num(mo, "bytes", 0, 9e15, &s->model_bytes, path, "model.", err) ||
        get_str(r, "device", &s->device, path, "", err) || get_str(r, "dtype", &s->dtype, path, "", err) ||
        get_int(r, "batch", 0, 1e9, &s->batch, path, "", err) ||
        get_int(sh, "count", 1, LMEVAL_SHARD_MAX, &s->count, path, "shard.", err) ||
        get_int(sh, "index", 0, LMEVAL_SHARD_MAX - 1, &s->index, path, "shard.", err) ||
        get_int(r, "prefix_token", -1, 1e9, &s->prefix, path, "", err) || get_str(r, "split", &s->split, path, "", err) ||
        get_num(r, "limit", 0, 9e15, &lim, path, "", err) ||
        get_num(r, "bootstrap_iters", 0, LMEVAL_BOOTSTRAP_MAX, &boot, path, "", err) ||
        get_bool(r, "shared_context_state", &s->shared, path, "", err) || get_bool(r, "samples", &s->samples, path, "", err) ||
        get_float(r, "date", &s->date, path, err) || get_float(r, "start_time", &s->t0, path, err) ||
        get_float(r, "end_time", &s->t1, path, err))
        return -1;
    s->limit = (long)lim, s->bootstrap = (long)boot;
    if (s->index >= s->count) return err_set(err, "%s: shard index %d is not below the count %d", path, s->index, s->count);
    if (strcmp(s->split, "lmeval") && strcmp(s->split, "separate"))
        return err_set(err, "%s: split '%.40s' is not lmeval or separate", path, s->split);
    cJSON *tl = field(r, "tasks", path, "", err), *td = field(r, "task_data", path, "", err);
    if (!tl || !td) return -1;
    if (!cJSON_IsArray(tl) || !cJSON_IsArray(td) || cJSON_GetArraySize(tl) != cJSON_GetArraySize(td) ||
        cJSON_GetArraySize(tl) < 1 || cJSON_GetArraySize(tl) > LMEVAL_MAX_TASKS)
        return err_set(err, "%s: 'tasks' and 'task_data' must be arrays of the same length (1..%d)", path, LMEVAL_MAX_TASKS);
    int i = 0;
    for (cJSON *t = td->child; t; t = t->next, i++) {
        ShardTaskIn *ti = &s->task[i];
        s->ntasks = i + 1;
        char where[48];
        snprintf(where, sizeof where, "task_data[%d].", i);
        const char *nm, *src, *hs;
        cJSON *note = field(t, "note", path, where, err), *rg = field(t, "range", path, where, err);
        if (!note || !rg) return -1;
        if (get_str(t, "name", &nm, path, where, err) || get_str(t, "source", &src, path, where, err) ||
            get_str(t, "requests_hash", &hs, path, where, err) ||
            get_bool(t, "loglikelihood_perplexity", &ti->ppl, path, where, err) ||
            get_bool(t, "has_acc_norm", &ti->has_acc_norm, path, where, err) ||
            get_int(t, "ndocs_original", 0, 2e9, &ti->ndocs_original, path, where, err) ||
            get_int(t, "ndocs", 0, 2e9, &ti->n, path, where, err))
            return -1;
        const char *listed = cJSON_IsString(cJSON_GetArrayItem(tl, i)) ? cJSON_GetArrayItem(tl, i)->valuestring : "";
        if (strlen(nm) >= sizeof ti->name || strcmp(nm, listed))
            return err_set(err, "%s: task_data[%d] is '%.40s' but tasks[%d] is '%.40s'", path, i, nm, i, listed);
        snprintf(ti->name, sizeof ti->name, "%s", nm);
        ti->source = src, ti->hash = hs;
        if (!cJSON_IsString(note) && !cJSON_IsNull(note)) return err_set(err, "%s: %s'note' must be a string or null", path, where);
        ti->note = cJSON_IsString(note) ? note->valuestring : NULL;
        if (!cJSON_IsArray(rg) || cJSON_GetArraySize(rg) != 2 || !cJSON_IsNumber(rg->child) || !cJSON_IsNumber(rg->child->next))
            return err_set(err, "%s: %s'range' must be [lo, hi]", path, where);
        ti->lo = (int)rg->child->valuedouble, ti->hi = (int)rg->child->next->valuedouble;
        if (ti->lo != rg->child->valuedouble || ti->hi != rg->child->next->valuedouble || ti->lo < 0 || ti->hi < ti->lo ||
            ti->hi > ti->n)
            return err_set(err, "%s: task %s: range [%g, %g) is not inside its %d documents", path, nm,
                           rg->child->valuedouble, rg->child->next->valuedouble, ti->n);
        const int k = ti->hi - ti->lo;
        if (get_floats(t, "acc", k, &ti->acc, path, where, err) ||
            (ti->has_acc_norm && get_floats(t, "acc_norm", k, &ti->accn, path, where, err)) ||
            (ti->ppl && get_floats(t, "ll", k, &ti->ll, path, where, err)))
            return -1;
        if (s->samples && get_str(t, "samples", &ti->samples, path, where, err)) return -1;
    }
    return 0;
}

/* ---- finding shard files ------------------------------------------------------------------------------------ */

/* "lmeval_shard_<digits>of<digits>.json" */
static int is_shard_name(const char *nm) {
    const char *p = nm;
    if (strncmp(p, "lmeval_shard_", 13)) return 0;
    p += 13;
    const char *d = p;
    while (*p >= '0' && *p <= '9') p++;
    if (p == d || strncmp(p, "of", 2)) return 0;
    d = (p += 2);
    while (*p >= '0' && *p <= '9') p++;
    return p > d && !strcmp(p, ".json");
}

typedef struct {
    char (*path)[4096];
    int n, cap;
} PathList;

static void paths_add(PathList *l, const char *dir, const char *name) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->path = realloc(l->path, (size_t)l->cap * sizeof *l->path);
        CHECK(l->path, "out of memory listing shard files");
    }
    if (dir) snprintf(l->path[l->n++], sizeof l->path[0], "%s/%s", dir, name);
    else snprintf(l->path[l->n++], sizeof l->path[0], "%s", name);
}

static int cmp_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

/* shard files directly in dir, in name order; returns how many were added */
static int scan_dir(PathList *l, const char *dir) {
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, cmp_name), added = 0;
    for (int k = 0; k < n; k++) {
        if (is_shard_name(ents[k]->d_name)) paths_add(l, dir, ents[k]->d_name), added++;
        free(ents[k]);
    }
    if (n > 0) free(ents);
    return added;
}

static int collect_inputs(const char *const *inputs, int ninputs, PathList *l, Err *err) {
    for (int a = 0; a < ninputs; a++) {
        struct stat st;
        if (stat(inputs[a], &st))
            return err_set(err, "%s: %s; give shard files (lmeval_shard_<I>of<N>.json) or the directories holding them",
                           inputs[a], strerror(errno));
        if (S_ISREG(st.st_mode)) {
            paths_add(l, NULL, inputs[a]);
            continue;
        }
        if (!S_ISDIR(st.st_mode)) return err_set(err, "%s: neither a shard file nor a directory", inputs[a]);
        if (scan_dir(l, inputs[a])) continue;
        /* none directly inside: one level down (OUT/<model_name_sanitized>/ is where lmeval --shard writes) */
        struct dirent **ents;
        int n = scandir(inputs[a], &ents, NULL, cmp_name), added = 0;
        if (n < 0) return err_set(err, "%s: cannot list the directory: %s", inputs[a], strerror(errno));
        for (int k = 0; k < n; k++) {
            char sub[4096];
            if (ents[k]->d_name[0] != '.' &&
                (size_t)snprintf(sub, sizeof sub, "%s/%s", inputs[a], ents[k]->d_name) < sizeof sub &&
                !stat(sub, &st) && S_ISDIR(st.st_mode))
                added += scan_dir(l, sub);
            free(ents[k]);
        }
        free(ents);
        if (!added)
            return err_set(err, "%s: no shard files (lmeval_shard_<I>of<N>.json) in it or its subdirectories; "
                                "`rwkvlab lmeval --shard I/N --out DIR` writes them under DIR/<model_name_sanitized>/",
                           inputs[a]);
    }
    return 0;
}

/* ---- checks ------------------------------------------------------------------------------------------------- */

static int cmp_index(const void *a, const void *b) {
    const ShardIn *x = *(ShardIn *const *)a, *y = *(ShardIn *const *)b;
    return x->index != y->index ? (x->index < y->index ? -1 : 1) : strcmp(x->path, y->path);
}

static int differ(const ShardIn *a, const ShardIn *b, const char *what, const char *va, const char *vb,
                  const char *fix, Err *err) {
    return err_set(err, "shards disagree on %s: %s has %s, %s has %s; %s", what, a->path, va, b->path, vb, fix);
}

/* every run-level and task-level fact that makes b a part of a's run */
static int shard_agrees(const ShardIn *a, const ShardIn *b, Err *err) {
    char x[1200], y[1200];
    if (strcmp(a->version, b->version))
        return differ(a, b, "the code version", a->version, b->version, "score every shard with one rwkvlab build", err);
    if (strcmp(a->model_hash, b->model_hash) || a->model_bytes != b->model_bytes) {
        snprintf(x, sizeof x, "%s (%.0f bytes, %.400s)", a->model_hash, a->model_bytes, a->model_path);
        snprintf(y, sizeof y, "%s (%.0f bytes, %.400s)", b->model_hash, b->model_bytes, b->model_path);
        return differ(a, b, "the model file", x, y, "merge shards scored from one model file", err);
    }
    if (strcmp(a->arch, b->arch)) return differ(a, b, "the model architecture", a->arch, b->arch, "merge shards of one model", err);
    if (a->count != b->count) {
        snprintf(x, sizeof x, "N = %d", a->count), snprintf(y, sizeof y, "N = %d", b->count);
        return differ(a, b, "the shard count", x, y, "merge the N shards of one --shard I/N run", err);
    }
    int ta = 0;
    for (int i = 0; i < a->ntasks; i++) ta += snprintf(x + ta, sizeof x - ta, "%s%s", i ? "," : "", a->task[i].name);
    int tb = 0;
    for (int i = 0; i < b->ntasks; i++) tb += snprintf(y + tb, sizeof y - tb, "%s%s", i ? "," : "", b->task[i].name);
    if (strcmp(x, y)) return differ(a, b, "the tasks", x, y, "score every shard with the same --tasks (same order)", err);
    if (a->prefix != b->prefix) {
        snprintf(x, sizeof x, "prefix token %d", a->prefix), snprintf(y, sizeof y, "prefix token %d", b->prefix);
        return differ(a, b, "the prefix token (-1: none)", x, y, "score every shard with the same --prefix", err);
    }
    if (strcmp(a->split, b->split))
        return differ(a, b, "the tokenisation split", a->split, b->split, "score every shard with the same --split", err);
    if (a->limit != b->limit) {
        snprintf(x, sizeof x, "--limit %ld", a->limit), snprintf(y, sizeof y, "--limit %ld", b->limit);
        return differ(a, b, "the document limit", x, y, "score every shard with the same --limit", err);
    }
    if (a->bootstrap != b->bootstrap) {
        snprintf(x, sizeof x, "--bootstrap %ld", a->bootstrap), snprintf(y, sizeof y, "--bootstrap %ld", b->bootstrap);
        return differ(a, b, "the bootstrap iterations", x, y, "score every shard with the same --bootstrap", err);
    }
    if (strcmp(a->dtype, b->dtype))
        return differ(a, b, "the weight type", a->dtype, b->dtype,
                      "score every shard with the same --dtype (a cpu shard is fp32: give the GPU ones --dtype fp32)", err);
    if (a->batch != b->batch) {
        snprintf(x, sizeof x, "--batch %d", a->batch), snprintf(y, sizeof y, "--batch %d", b->batch);
        return differ(a, b, "the batch size", x, y,
                      "score every shard with the same --batch (a cpu shard counts as --batch 1)", err);
    }
    if (a->shared != b->shared)
        return differ(a, b, "the shared context state", a->shared ? "shared" : "--no-share", b->shared ? "shared" : "--no-share",
                      "score every shard with or every shard without --no-share", err);
    if (a->samples != b->samples)
        return differ(a, b, "the samples", a->samples ? "--samples" : "no samples", b->samples ? "--samples" : "no samples",
                      "score every shard with or every shard without --samples", err);
    for (int i = 0; i < a->ntasks; i++) {
        const ShardTaskIn *p = &a->task[i], *q = &b->task[i];
        if (p->ndocs_original != q->ndocs_original || p->n != q->n || p->ppl != q->ppl || p->has_acc_norm != q->has_acc_norm) {
            snprintf(x, sizeof x, "%d documents (%d after --limit)", p->ndocs_original, p->n);
            snprintf(y, sizeof y, "%d documents (%d after --limit)", q->ndocs_original, q->n);
            char what[80];
            snprintf(what, sizeof what, "task %s's data", p->name);
            return differ(a, b, what, x, y, "score every shard from the same data files", err);
        }
        if (strcmp(p->hash, q->hash)) {
            char what[120];
            snprintf(what, sizeof what, "task %s's tokenised requests", p->name);
            return differ(a, b, what, p->hash, q->hash,
                          "the data files or the vocabulary differ: score every shard from the same data directory", err);
        }
    }
    return 0;
}

/* indices 0..N-1 each once, and each task's ranges tiling [0, n) in index order */
static int shards_complete(ShardIn **s, int ns, Err *err) {
    const int N = s[0]->count;
    for (int k = 1; k < ns; k++)
        if (s[k]->index == s[k - 1]->index)
            return err_set(err, "shard %d of %d appears twice: %s and %s; keep one of them (a re-run of a shard replaces "
                                "its file, so two copies come from two output directories)",
                           s[k]->index, N, s[k - 1]->path, s[k]->path);
    if (ns != N) {
        char miss[600] = "";
        int o = 0, k = 0, nm = 0;
        for (int i = 0; i < N; i++) {
            if (k < ns && s[k]->index == i) {
                k++;
                continue;
            }
            if (nm++ < 20 && o < (int)sizeof miss - 16) o += snprintf(miss + o, sizeof miss - o, "%s%d", o ? ", " : "", i);
        }
        if (nm > 20) snprintf(miss + o, sizeof miss - o, ", ...");
        return err_set(err, "%d of %d shards missing (index %s; found %d, e.g. %s): run `rwkvlab lmeval ... --shard I/%d` "
                            "for each missing I and merge again",
                       nm, N, miss, ns, s[0]->path, N);
    }
    for (int i = 0; i < s[0]->ntasks; i++) {
        if (s[0]->task[i].lo != 0)
            return err_set(err, "task %s: shard 0 (%s) starts at document %d, not 0: documents 0..%d are in no shard",
                           s[0]->task[i].name, s[0]->path, s[0]->task[i].lo, s[0]->task[i].lo - 1);
        for (int k = 1; k < ns; k++) {
            const ShardTaskIn *p = &s[k - 1]->task[i], *q = &s[k]->task[i];
            if (q->lo != p->hi)
                return err_set(err, "task %s: the ranges of %s [%d, %d) and %s [%d, %d) are not contiguous (%s); the "
                                    "shards come from different runs",
                               p->name, s[k - 1]->path, p->lo, p->hi, s[k]->path, q->lo, q->hi,
                               q->lo > p->hi ? "a gap" : "an overlap");
        }
        const ShardTaskIn *z = &s[ns - 1]->task[i];
        if (z->hi != z->n)
            return err_set(err, "task %s: the last shard (%s) ends at document %d of %d: documents %d..%d are in no shard",
                           z->name, s[ns - 1]->path, z->hi, z->n, z->hi, z->n - 1);
    }
    return 0;
}

/* ---- the merge ------------------------------------------------------------------------------------------------ */

static int merge_write(ShardIn **s, int ns, const char *out, int quiet, char *results_path, size_t cap, Err *err) {
    const ShardIn *a = s[0];
    const int nt = a->ntasks;
    LmTask hdr[LMEVAL_MAX_TASKS];
    LmTaskResult tr[LMEVAL_MAX_TASKS];
    LmBuf smp[LMEVAL_MAX_TASKS];
    memset(hdr, 0, sizeof hdr), memset(tr, 0, sizeof tr), memset(smp, 0, sizeof smp);
    char outdir[4096], rprefix[512], created[4096] = "";
    char *rtext = NULL;
    int rc = -1;
    if (lmeval_out_location(out, a->model_path, outdir, sizeof outdir, rprefix, sizeof rprefix, err)) return -1;
    for (int i = 0; i < nt; i++) {
        const ShardTaskIn *ti = &a->task[i];
        LmTask *t = &hdr[i];
        snprintf(t->name, sizeof t->name, "%s", ti->name);
        snprintf(t->source, sizeof t->source, "%s", ti->source);
        t->ndocs = ti->ndocs_original, t->is_loglik_ppl = ti->ppl, t->has_acc_norm = ti->has_acc_norm;
        t->note = ti->note;
        const int n = ti->n;
        double *acc = xcalloc(n ? n : 1, sizeof(double)), *accn = xcalloc(n ? n : 1, sizeof(double));
        double *ll = xcalloc(n ? n : 1, sizeof(double));
        for (int k = 0; k < ns; k++) {
            const ShardTaskIn *q = &s[k]->task[i];
            const int len = q->hi - q->lo;
            memcpy(acc + q->lo, q->acc, len * sizeof(double));
            if (q->accn) memcpy(accn + q->lo, q->accn, len * sizeof(double));
            if (q->ll) memcpy(ll + q->lo, q->ll, len * sizeof(double));
            if (q->samples && lmbuf_add(&smp[i], q->samples, strlen(q->samples), err)) {
                free(acc), free(accn), free(ll);
                goto out;
            }
        }
        tr[i] = (LmTaskResult){t, n, lmeval_task_metrics(t, acc, accn, ll, n, a->bootstrap, quiet), smp[i].p, smp[i].len};
        free(acc), free(accn), free(ll);
    }
    /* the run's options as the shards recorded them; timing: the earliest start, the longest shard */
    char devices[256];
    const char *devs[LMEVAL_SHARD_MAX];
    for (int k = 0; k < ns; k++) devs[k] = s[k]->device;
    lmeval_merge_devices(devs, ns, devices, sizeof devices);
    double date = a->date, t0 = a->t0, t1 = a->t1;
    for (int k = 1; k < ns; k++) {
        date = fmin(date, s[k]->date);
        if (s[k]->t1 - s[k]->t0 > t1 - t0) t0 = s[k]->t0, t1 = s[k]->t1;
    }
    LmevalOpts o = {.limit = a->limit, .bootstrap = a->bootstrap, .split = strcmp(a->split, "separate") ? LMEVAL_SPLIT_LMEVAL : LMEVAL_SPLIT_SEPARATE,
                    .no_share = !a->shared, .samples = a->samples, .device = devices, .model_path = a->model_path,
                    .dtype = a->dtype, .batch = a->batch};
    rtext = lmeval_results_text(&o, tr, nt, a->prefix, a->model_path, a->arch, date, t0, t1);
    if (!rtext) {
        err_set(err, "out of memory formatting the results JSON");
        goto out;
    }
    if (lmeval_out_prepare(outdir, created, sizeof created, err)) goto out;
    if (lmeval_publish_results(outdir, rprefix, tr, nt, a->samples, rtext, results_path, cap, err)) {
        lmeval_out_unprepare(outdir, created);
        goto out;
    }
    rc = 0;
out:
    for (int i = 0; i < nt; i++) cJSON_Delete(tr[i].res), lmbuf_free(&smp[i]);
    free(rtext);
    return rc;
}

int lmeval_merge(const char *const *inputs, int ninputs, const char *out, int quiet, char *results_path, size_t cap,
                 Err *err) {
    if (results_path && cap) results_path[0] = 0;
    if (ninputs < 1) return err_set(err, "no shard files given: name the shard files or the directories holding them");
    PathList l = {0};
    ShardIn *in = NULL, **s = NULL;
    int ns = 0, rc = -1;
    if (collect_inputs(inputs, ninputs, &l, err)) goto out;
    if (l.n > LMEVAL_SHARD_MAX) {
        err_set(err, "%d shard files: more than the %d shards a run can have", l.n, LMEVAL_SHARD_MAX);
        goto out;
    }
    in = xcalloc(l.n, sizeof(ShardIn));
    s = xcalloc(l.n, sizeof(ShardIn *));
    struct stat *ids = xcalloc(l.n, sizeof(struct stat));
    for (int k = 0; k < l.n; k++) {
        /* one file reached twice (a file and its directory, a path given twice) counts once */
        int dup = 0;
        if (!stat(l.path[k], &ids[ns]))
            for (int q = 0; q < ns && !dup; q++) dup = ids[q].st_dev == ids[ns].st_dev && ids[q].st_ino == ids[ns].st_ino;
        if (dup) continue;
        s[ns] = &in[ns];
        if (shard_read(l.path[k], &in[ns], err)) {
            ns++;
            free(ids);
            goto out;
        }
        ns++;
    }
    free(ids);
    qsort(s, ns, sizeof *s, cmp_index);
    for (int k = 1; k < ns; k++)
        if (shard_agrees(s[0], s[k], err)) goto out;
    if (shards_complete(s, ns, err)) goto out;
    if (strcmp(s[0]->version, RWKVLAB_VERSION))
        fprintf(stderr, "note: the shards were scored by rwkvlab %s; this is rwkvlab %s, whose metrics code merges them\n",
                s[0]->version, RWKVLAB_VERSION);
    rc = merge_write(s, ns, out, quiet, results_path, cap, err);
out:
    for (int k = 0; k < ns; k++) shard_in_free(&in[k]);
    free(in), free(s), free(l.path);
    return rc;
}
