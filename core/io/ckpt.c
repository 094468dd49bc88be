/* ckpt.c -- native model and optimizer checkpoints (format in ckpt.h). */
#include "ckpt.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static const char MODEL_MAGIC[8] = {'R', 'W', 'K', 'V', 'L', 'A', 'B', 1};
static const char OPTIM_MAGIC[8] = {'R', 'W', 'K', 'V', 'O', 'P', 'T', 1};
static const char STATE_MAGIC[8] = {'R', 'W', 'K', 'V', 'R', 'E', 'C', 1};

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
static void put_f64(Buf *b, double v) { put(b, &v, 8); }

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

/* Checks magic, version (CKPT_VERSION, or 1..CKPT_STATE_VERSION for records.bin, then stored in *state_ver)
 * and scalar size. */
static int check_head_v(Rd *r, const char magic[8], uint32_t *state_ver, Err *err) {
    char mg[8];
    uint32_t ver = 0, sb = 0;
    if (get(r, mg, 8, "magic", err)) return -1;
    if (memcmp(mg, magic, 8))
        return err_set(err, "'%s' is not an rwkvlab %s file (bad magic)", r->path,
                       magic[4] == 'L' ? "model checkpoint" : magic[4] == 'O' ? "optimizer state" : "run state");
    if (get(r, &ver, 4, "version", err) || get(r, &sb, 4, "scalar size", err)) return -1;
    if (state_ver) {
        if (ver < 1 || ver > CKPT_STATE_VERSION)
            return err_set(err, "'%s' has format version %u; this build reads versions 1 to %d", r->path, ver,
                           CKPT_STATE_VERSION);
        *state_ver = ver;
    } else if (ver != CKPT_VERSION)
        return err_set(err, "'%s' has format version %u; this build reads version %d", r->path, ver, CKPT_VERSION);
    if (magic[4] != 'R' && sb != sizeof(real))
        return err_set(err, "'%s' stores %u-byte scalars but this build uses %zu-byte (%s) scalars", r->path, sb,
                       sizeof(real), REAL_NAME);
    return 0;
}
static int check_head(Rd *r, const char magic[8], Err *err) { return check_head_v(r, magic, NULL, err); }

#define ARCH_TAG 16 /* bytes of the architecture name and of each dimension name in the header */

int ckpt_save_model(const char *path, const Model *m, long step, const char *config_ini, Err *err) {
    Buf b = {0};
    put(&b, MODEL_MAGIC, 8);
    put_u32(&b, CKPT_MODEL_VERSION);
    put_u32(&b, sizeof(real));
    char tag[ARCH_TAG] = {0};
    snprintf(tag, sizeof tag, "%s", m->arch->name);
    put(&b, tag, ARCH_TAG);
    int vals[MODEL_MAX_DIMS];
    model_dims_get(m->arch, m->dims, vals);
    put_i32(&b, m->arch->ndims);
    for (int i = 0; i < m->arch->ndims; i++) {
        memset(tag, 0, sizeof tag);
        snprintf(tag, sizeof tag, "%s", m->arch->dim_fields[i].name);
        put(&b, tag, ARCH_TAG);
        put_i32(&b, vals[i]);
    }
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

/* The header up to the step: the architecture and its dims. Version 1 files (RWKV-7 only, before the
 * model interface) hold ten fixed int32 fields. */
static int read_model_head(Rd *r, const ModelArch **arch, void *dims, Err *err) {
    char mg[8];
    uint32_t ver = 0, sb = 0;
    if (get(r, mg, 8, "magic", err)) return -1;
    if (memcmp(mg, MODEL_MAGIC, 8)) return err_set(err, "'%s' is not an rwkvlab model checkpoint (bad magic)", r->path);
    if (get(r, &ver, 4, "version", err) || get(r, &sb, 4, "scalar size", err)) return -1;
    if (ver != 1 && ver != CKPT_MODEL_VERSION)
        return err_set(err, "'%s' has format version %u; this build reads versions 1 and %d", r->path, ver,
                       CKPT_MODEL_VERSION);
    if (sb != sizeof(real))
        return err_set(err, "'%s' stores %u-byte scalars but this build uses %zu-byte (%s) scalars", r->path, sb,
                       sizeof(real), REAL_NAME);
    const char *names[MODEL_MAX_DIMS];
    char namebuf[MODEL_MAX_DIMS][ARCH_TAG + 1];
    int vals[MODEL_MAX_DIMS], n = 0;
    if (ver == 1) {
        static const char *v1[10] = {"V", "C", "L", "N", "Dw", "Da", "Dv", "Dg", "extended", "has_ln0"};
        *arch = model_arch_find("rwkv7");
        for (n = 0; n < 10; n++) {
            names[n] = v1[n];
            if (get(r, &vals[n], 4, "dimensions", err)) return -1;
        }
        names[n] = "bias", vals[n++] = 0;
    } else {
        char tag[ARCH_TAG + 1] = {0};
        int32_t nd = 0;
        if (get(r, tag, ARCH_TAG, "architecture", err) || get(r, &nd, 4, "dimension count", err)) return -1;
        if (!(*arch = model_arch_find(tag)))
            return err_set(err, "'%s' holds a model of architecture '%.16s', which this build does not have (it has %s)",
                           r->path, tag, model_arch_names());
        if (nd < 1 || nd > MODEL_MAX_DIMS) return err_set(err, "'%s': implausible dimension count %d", r->path, nd);
        for (n = 0; n < nd; n++) {
            memset(namebuf[n], 0, sizeof namebuf[n]);
            if (get(r, namebuf[n], ARCH_TAG, "dimension name", err) || get(r, &vals[n], 4, "dimension", err)) return -1;
            names[n] = namebuf[n];
        }
    }
    for (int i = 0; i < n; i++)
        if (vals[i] < 0 || vals[i] > (1 << 20))
            return err_set(err, "'%s': implausible dimension %s = %d in the header (corrupt file?)", r->path, names[i],
                           vals[i]);
    return model_dims_set(*arch, dims, names, vals, n, err) ? err_set(err, "'%s': %s", r->path, err->msg) : 0;
}

int ckpt_load_model(const char *path, Model **m_out, long *step, char **config_ini, Err *err) {
    size_t n;
    char *p = slurp(path, &n, err);
    if (!p) return -1;
    Rd r = {p, n, 0, path};
    int64_t st = 0, np = 0, cl = 0;
    int rc = -1;
    const ModelArch *arch = NULL;
    char dims[1024];
    Model *m = NULL;
    char *cfg = NULL;
    if (read_model_head(&r, &arch, dims, err) || get(&r, &st, 8, "step", err) ||
        get(&r, &np, 8, "parameter count", err) || get(&r, &cl, 8, "config length", err))
        goto out;
    CHECK(arch->dims_size <= sizeof dims, "dims struct of %s too large", arch->name);
    if (cl < 0 || (size_t)cl > n) {
        err_set(err, "'%s': bad config length %lld", path, (long long)cl);
        goto out;
    }
    cfg = xmalloc(cl + 1);
    if (get(&r, cfg, cl, "config text", err)) goto out;
    cfg[cl] = 0;
    if (np < 0 || (size_t)np * sizeof(real) != n - r.off) {
        err_set(err, "'%s': header says %lld parameters but %zu bytes follow (truncated or corrupt)", path,
                (long long)np, n - r.off);
        goto out;
    }
    if (arch->validate_dims && arch->validate_dims(dims, err)) {
        err_set(err, "'%s': %s", path, err->msg);
        goto out;
    }
    m = model_create(arch, dims, 0);
    if ((size_t)np != m->nparams) {
        err_set(err, "'%s': header says %lld parameters but the dimensions give %zu", path, (long long)np, m->nparams);
        goto out;
    }
    if (get(&r, m->params, m->nparams * sizeof(real), "parameters", err)) goto out;
    *m_out = m, m = NULL;
    if (step) *step = st;
    if (config_ini) *config_ini = cfg, cfg = NULL;
    rc = 0;
out:
    model_free(m);
    free(cfg);
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

/* ---- records.bin ------------------------------------------------------------------------------- */

int ckpt_save_state(const char *path, const RunState *st, Err *err) {
    Buf b = {0};
    put(&b, STATE_MAGIC, 8);
    put_u32(&b, CKPT_STATE_VERSION);
    put_u32(&b, 0);
    put_i64(&b, st->step);
    put_i32(&b, st->status);
    put_f64(&b, st->last_loss);
    put_i64(&b, st->rec.ntrain);
    for (long i = 0; i < st->rec.ntrain; i++) {
        const TrainRec *t = &st->rec.train[i];
        put_i64(&b, t->step);
        double f[6] = {t->loss, t->acc, t->lr, t->grad_norm, t->tokens_per_s, t->wall_s};
        put(&b, f, sizeof f);
        put_i64(&b, t->length);
    }
    put_i64(&b, st->rec.neval);
    for (long i = 0; i < st->rec.neval; i++) {
        const EvalRec *e = &st->rec.eval[i];
        put_i64(&b, e->step);
        put_i64(&b, e->length);
        put_f64(&b, e->token_acc);
        put_f64(&b, e->seq_acc);
    }
    int rc = write_file_atomic(path, b.p, b.n, err);
    free(b.p);
    return rc;
}

int ckpt_load_state(const char *path, RunState *st, Err *err) {
    size_t n;
    char *p = slurp(path, &n, err);
    if (!p) return -1;
    Rd r = {p, n, 0, path};
    RunState s = {0};
    int64_t step = 0, cnt = 0;
    int32_t status = 0;
    int rc = -1;
    uint32_t ver = 0;
    if (check_head_v(&r, STATE_MAGIC, &ver, err) || get(&r, &step, 8, "step", err) || get(&r, &status, 4, "status", err) ||
        get(&r, &s.last_loss, 8, "last loss", err) || get(&r, &cnt, 8, "train record count", err))
        goto out;
    s.step = step, s.status = status;
    if (cnt < 0 || (size_t)cnt > n / 48) {
        err_set(err, "'%s': implausible train record count %lld (corrupt file?)", path, (long long)cnt);
        goto out;
    }
    for (int64_t i = 0; i < cnt; i++) {
        int64_t ts = 0, len = -1;
        double f[6] = {0, 0, 0, 0, 0, NAN}; /* version 1: no wall_s and length (unknown) */
        size_t nf = ver >= 2 ? 6 : 5;
        if (get(&r, &ts, 8, "train record", err) || get(&r, f, nf * sizeof(double), "train record", err) ||
            (ver >= 2 && get(&r, &len, 8, "train record", err)))
            goto out;
        TrainRec t = {ts, f[0], f[1], f[2], f[3], f[4], f[5], (long)len};
        records_add_train(&s.rec, &t);
    }
    if (get(&r, &cnt, 8, "eval record count", err)) goto out;
    if (cnt < 0 || (size_t)cnt > n / 32) {
        err_set(err, "'%s': implausible eval record count %lld (corrupt file?)", path, (long long)cnt);
        goto out;
    }
    for (int64_t i = 0; i < cnt; i++) {
        int64_t es = 0, len = 0;
        double f[2];
        if (get(&r, &es, 8, "eval record", err) || get(&r, &len, 8, "eval record", err) ||
            get(&r, f, sizeof f, "eval record", err))
            goto out;
        EvalRec e = {es, (int)len, f[0], f[1]};
        records_add_eval(&s.rec, &e);
    }
    if (r.off != n) {
        err_set(err, "'%s': %zu unexpected trailing bytes", path, n - r.off);
        goto out;
    }
    *st = s;
    rc = 0;
out:
    if (rc) records_free(&s.rec);
    free(p);
    return rc;
}

/* ---- the checkpoint as one unit ------------------------------------------------------------------ */

/* The step stored in a checkpoint file's header (each format keeps it at a fixed offset), or -1 when
 * the file is missing or too short. */
static long peek_step(const char *path, const char magic[8], long offset) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char mg[8];
    int64_t st = -1;
    int ok = fread(mg, 1, 8, f) == 8 && !memcmp(mg, magic, 8) && fseek(f, offset, SEEK_SET) == 0 &&
             fread(&st, 8, 1, f) == 1;
    fclose(f);
    return ok ? (long)st : -1;
}
/* ckpt.bin's header length depends on its version and architecture */
static long peek_model_step(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char head[8 + 8 + ARCH_TAG + 4];
    int ok = fread(head, 1, sizeof head, f) == sizeof head && !memcmp(head, MODEL_MAGIC, 8);
    fclose(f);
    if (!ok) return -1;
    uint32_t ver = 0;
    int32_t nd = 0;
    memcpy(&ver, head + 8, 4);
    memcpy(&nd, head + 16 + ARCH_TAG, 4);
    if (ver == 1) return peek_step(path, MODEL_MAGIC, 16 + 10 * 4);
    if (nd < 1 || nd > MODEL_MAX_DIMS) return -1;
    return peek_step(path, MODEL_MAGIC, 16 + ARCH_TAG + 4 + (long)nd * (ARCH_TAG + 4));
}
#define OPTIM_STEP_OFFSET 16
#define STATE_STEP_OFFSET 16

static void dir_path(char *dst, size_t n, const char *dir, const char *name) { snprintf(dst, n, "%s/%s", dir, name); }

int ckpt_save(const char *dir, const Model *m, const AdamW *o, const gsl_rng *rng, const RunState *st,
              const char *config_ini, Err *err) {
    char p[4200], q[4200];
    dir_path(p, sizeof p, dir, "optim.bin.new");
    if (ckpt_save_optim(p, o, rng, st->step, err)) return -1;
    dir_path(p, sizeof p, dir, "records.bin.new");
    if (ckpt_save_state(p, st, err)) return -1;
    dir_path(p, sizeof p, dir, "ckpt.bin"); /* the commit point */
    int failed = ckpt_save_model(p, m, st->step, config_ini, err);
    const char *names[2] = {"optim.bin", "records.bin"};
    if (failed && peek_model_step(p) != st->step) { /* not committed: drop the .new */
        for (int i = 0; i < 2; i++) dir_path(q, sizeof q, dir, names[i]), strcat(q, ".new"), unlink(q);
        return -1;
    }
    /* committed (even if syncing the directory afterwards failed): complete it */
    for (int i = 0; i < 2; i++) {
        dir_path(q, sizeof q, dir, names[i]);
        snprintf(p, sizeof p, "%s.new", q);
        if (rename(p, q) != 0) return err_set(err, "cannot rename '%s' to '%s': %s", p, q, strerror(errno));
    }
    if (failed) return -1;
    if (fsync_parent_dir(q) != 0) return err_set(err, "cannot sync directory '%s': %s", dir, strerror(errno));
    return 0;
}

int ckpt_recover(const char *dir, int *have, Err *err) {
    char p[4200], q[4200];
    remove_stale_tmp(dir);
    dir_path(p, sizeof p, dir, "ckpt.bin");
    long sm = peek_model_step(p);
    if (sm < 0 && access(p, F_OK) == 0)
        return err_set(err, "'%s' exists but is not a readable rwkvlab checkpoint (damaged?); move it away to "
                            "restart the run from step 0", p);
    const char *names[2] = {"optim.bin", "records.bin"};
    const char *magics[2] = {OPTIM_MAGIC, STATE_MAGIC};
    const long offs[2] = {OPTIM_STEP_OFFSET, STATE_STEP_OFFSET};
    int moved = 0;
    for (int i = 0; i < 2; i++) {
        dir_path(q, sizeof q, dir, names[i]);
        snprintf(p, sizeof p, "%s.new", q);
        if (access(p, F_OK) != 0) continue;
        if (sm >= 0 && peek_step(p, magics[i], offs[i]) == sm) { /* committed: finish it */
            if (rename(p, q) != 0) return err_set(err, "cannot rename '%s' to '%s': %s", p, q, strerror(errno));
            moved = 1;
        } else if (unlink(p) != 0) { /* never committed: drop it */
            return err_set(err, "cannot remove the uncommitted '%s': %s", p, strerror(errno));
        }
    }
    if (moved && fsync_parent_dir(q) != 0) return err_set(err, "cannot sync directory '%s': %s", dir, strerror(errno));
    *have = sm >= 0;
    if (sm < 0) return 0;
    for (int i = 0; i < 2; i++) {
        dir_path(q, sizeof q, dir, names[i]);
        long s = peek_step(q, magics[i], offs[i]);
        if (s < 0)
            return err_set(err, "'%s' is missing or unreadable but ckpt.bin is at step %ld: the checkpoint is "
                                "incomplete%s", q, sm, i == 1 ? " (run directories written before records.bin "
                                "existed cannot be resumed by this version)" : "");
        if (s != sm)
            return err_set(err, "'%s' is at step %ld but ckpt.bin at step %ld: the checkpoint is inconsistent", q, s, sm);
    }
    return 0;
}
