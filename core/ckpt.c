/* ckpt.c -- native model and optimizer checkpoints (format in ckpt.h). */
#include "ckpt.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

static const char MODEL_MAGIC[8] = {'R', 'W', 'K', 'V', 'L', 'A', 'B', 1};
static const char OPTIM_MAGIC[8] = {'R', 'W', 'K', 'V', 'O', 'P', 'T', 1};

/* growable byte buffer for building a file in memory before the atomic write */
typedef struct {
    char *p;
    size_t n, cap;
} Buf;
static void put(Buf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 1024;
        b->p = realloc(b->p, b->cap);
        CHECK(b->p, "out of memory building a checkpoint of %zu bytes", b->cap);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void put_u32(Buf *b, uint32_t v) { put(b, &v, 4); }
static void put_i32(Buf *b, int32_t v) { put(b, &v, 4); }
static void put_i64(Buf *b, int64_t v) { put(b, &v, 8); }

typedef struct {
    const char *p;
    size_t n, off;
    const char *path;
} Rd;
static int get(Rd *r, void *dst, size_t n, const char *what, Err *err) {
    if (r->off + n > r->n)
        return err_set(err, "'%s': file ends early while reading %s (truncated or not an rwkvlab checkpoint)",
                       r->path, what);
    memcpy(dst, r->p + r->off, n);
    r->off += n;
    return 0;
}

static char *slurp(const char *path, size_t *n, Err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        err_set(err, "cannot open checkpoint '%s': %s", path, strerror(errno));
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = xmalloc(len > 0 ? len : 1);
    if (len < 0 || fread(p, 1, len, f) != (size_t)len) {
        fclose(f);
        free(p);
        err_set(err, "cannot read checkpoint '%s'", path);
        return NULL;
    }
    fclose(f);
    *n = len;
    return p;
}

static int check_head(Rd *r, const char magic[8], Err *err) {
    char mg[8];
    uint32_t ver = 0, sb = 0;
    if (get(r, mg, 8, "magic", err)) return -1;
    if (memcmp(mg, magic, 8))
        return err_set(err, "'%s' is not an rwkvlab %s file (bad magic)", r->path,
                       magic[4] == 'L' ? "model checkpoint" : "optimizer state");
    if (get(r, &ver, 4, "version", err) || get(r, &sb, 4, "scalar size", err)) return -1;
    if (ver != CKPT_VERSION)
        return err_set(err, "'%s' has format version %u; this build reads version %d", r->path, ver, CKPT_VERSION);
    if (sb != sizeof(real))
        return err_set(err, "'%s' stores %u-byte scalars but this build uses %zu-byte (%s) scalars", r->path, sb,
                       sizeof(real), REAL_NAME);
    return 0;
}

int ckpt_save_model(const char *path, const Rwkv7 *m, long step, const char *config_ini, Err *err) {
    Buf b = {0};
    put(&b, MODEL_MAGIC, 8);
    put_u32(&b, CKPT_VERSION);
    put_u32(&b, sizeof(real));
    const Rwkv7Dims *d = &m->d;
    int32_t dims[10] = {d->V, d->C, d->L, d->N, d->Dw, d->Da, d->Dv, d->Dg, d->extended, d->has_ln0};
    for (int i = 0; i < 10; i++) put_i32(&b, dims[i]);
    put_i64(&b, step);
    put_i64(&b, (int64_t)m->nparams);
    size_t cl = config_ini ? strlen(config_ini) : 0;
    put_i64(&b, (int64_t)cl);
    if (cl) put(&b, config_ini, cl);
    put(&b, m->params, m->nparams * sizeof(real));
    int rc = write_file_atomic(path, b.p, b.n, err);
    free(b.p);
    return rc;
}

int ckpt_load_model(const char *path, Rwkv7 **m_out, long *step, char **config_ini, Err *err) {
    size_t n;
    char *p = slurp(path, &n, err);
    if (!p) return -1;
    Rd r = {p, n, 0, path};
    int32_t dims[10];
    int64_t st = 0, np = 0, cl = 0;
    int rc = -1;
    if (check_head(&r, MODEL_MAGIC, err) || get(&r, dims, sizeof dims, "dimensions", err) ||
        get(&r, &st, 8, "step", err) || get(&r, &np, 8, "parameter count", err) ||
        get(&r, &cl, 8, "config length", err))
        goto out;
    for (int i = 0; i < 8; i++)
        if (dims[i] <= 0 || dims[i] > (1 << 20)) {
            err_set(err, "'%s': implausible dimension %d in the header (corrupt file?)", path, dims[i]);
            goto out;
        }
    if (dims[1] % dims[3]) {
        err_set(err, "'%s': head size %d does not divide C=%d (corrupt file?)", path, dims[3], dims[1]);
        goto out;
    }
    if (cl < 0 || (size_t)cl > n) {
        err_set(err, "'%s': bad config length %lld", path, (long long)cl);
        goto out;
    }
    char *cfg = xmalloc(cl + 1);
    if (get(&r, cfg, cl, "config text", err)) {
        free(cfg);
        goto out;
    }
    cfg[cl] = 0;
    Rwkv7Dims d = {.V = dims[0], .C = dims[1], .L = dims[2], .N = dims[3], .Dw = dims[4], .Da = dims[5],
                   .Dv = dims[6], .Dg = dims[7], .extended = dims[8], .has_ln0 = dims[9]};
    Rwkv7 *m = rwkv7_create_inference(&d);
    if ((size_t)np != m->nparams) {
        err_set(err, "'%s': header says %lld parameters but the dimensions give %zu", path, (long long)np, m->nparams);
        rwkv7_free(m), free(cfg);
        goto out;
    }
    if (get(&r, m->params, m->nparams * sizeof(real), "parameters", err)) {
        rwkv7_free(m), free(cfg);
        goto out;
    }
    if (r.off != n) {
        err_set(err, "'%s': %zu unexpected trailing bytes", path, n - r.off);
        rwkv7_free(m), free(cfg);
        goto out;
    }
    *m_out = m;
    if (step) *step = st;
    if (config_ini) *config_ini = cfg;
    else free(cfg);
    rc = 0;
out:
    free(p);
    return rc;
}

int ckpt_save_optim(const char *path, const AdamW *o, const gsl_rng *rng, long step, Err *err) {
    Buf b = {0};
    put(&b, OPTIM_MAGIC, 8);
    put_u32(&b, CKPT_VERSION);
    put_u32(&b, sizeof(real));
    put_i64(&b, step);
    put_i64(&b, (int64_t)o->n);
    put_i64(&b, o->t);
    size_t rs = gsl_rng_size(rng);
    put_i64(&b, (int64_t)rs);
    put(&b, gsl_rng_state(rng), rs);
    put(&b, o->m, o->n * sizeof(real));
    put(&b, o->v, o->n * sizeof(real));
    int rc = write_file_atomic(path, b.p, b.n, err);
    free(b.p);
    return rc;
}

int ckpt_load_optim(const char *path, AdamW *o, gsl_rng *rng, long *step, Err *err) {
    size_t n;
    char *p = slurp(path, &n, err);
    if (!p) return -1;
    Rd r = {p, n, 0, path};
    int64_t st = 0, np = 0, t = 0, rs = 0;
    int rc = -1;
    if (check_head(&r, OPTIM_MAGIC, err) || get(&r, &st, 8, "step", err) || get(&r, &np, 8, "size", err) ||
        get(&r, &t, 8, "adam step", err) || get(&r, &rs, 8, "rng size", err))
        goto out;
    if ((size_t)np != o->n) {
        err_set(err, "'%s' holds optimizer state for %lld parameters, the model has %zu", path, (long long)np, o->n);
        goto out;
    }
    if ((size_t)rs != gsl_rng_size(rng)) {
        err_set(err, "'%s': RNG state of %lld bytes, expected %zu", path, (long long)rs, gsl_rng_size(rng));
        goto out;
    }
    if (get(&r, gsl_rng_state(rng), rs, "rng state", err) || get(&r, o->m, o->n * sizeof(real), "adam m", err) ||
        get(&r, o->v, o->n * sizeof(real), "adam v", err))
        goto out;
    o->t = t;
    if (step) *step = st;
    rc = 0;
out:
    free(p);
    return rc;
}
