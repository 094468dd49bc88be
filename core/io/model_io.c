/* model_io.c -- any architecture's model from and to files (model_io.h): released .pth / .safetensors with
 * official key names, and our native ckpt.bin. The architecture is recognised from the file's keys; its
 * dims come from the tensor shapes (arch->dims_from_tensors); then every tensor of the file is accounted
 * for against the architecture's parameter table. */
#include "model_io.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ckpt.h"
#include "mem.h"

/* A key the architecture knows its files carry but does not use (arch->ignored_tensors; a trailing '*'
 * matches any suffix). */
static int known_unused(const ModelArch *a, const char *name) {
    for (int i = 0; a->ignored_tensors && a->ignored_tensors[i]; i++) {
        const char *p = a->ignored_tensors[i];
        size_t n = strlen(p);
        if (n && p[n - 1] == '*' ? !strncmp(name, p, n - 1) : !strcmp(name, p)) return 1;
    }
    return 0;
}

/* "L=2 C=64 N=16 ..." of a model's dims */
static const char *dims_str(const ModelArch *a, const void *dims, char *buf, size_t n) {
    int vals[MODEL_MAX_DIMS];
    model_dims_get(a, dims, vals);
    buf[0] = 0;
    for (int i = 0; i < a->ndims; i++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s=%d", i ? " " : "", a->dim_fields[i].name, vals[i]);
    return buf;
}

/* Layer index K of a key "blocks.K.<rest>" (K decimal, no sign or leading zero), or -1. */
long model_key_layer(const char *name) {
    if (strncmp(name, "blocks.", 7)) return -1;
    const char *p = name + 7;
    long k = 0;
    int nd = 0;
    while (*p >= '0' && *p <= '9') {
        if (nd == 9) return -1; /* > 10^9: not a layer index a file could hold */
        k = k * 10 + (*p++ - '0'), nd++;
    }
    if (!nd || *p != '.' || (nd > 1 && name[7] == '0')) return -1;
    return k;
}

static const char *shape_of(const TfTensor *t, char *buf, size_t n) { return tf_shape_str(t->shape, t->ndim, buf, n); }

static const char *want_shape(const ParamTensor *p, char *buf, size_t n) {
    int64_t sh[3] = {p->shape[0], p->shape[1], p->shape[2]};
    return tf_shape_str(sh, p->ndim, buf, n);
}

/* shapes must match, except that the [1,1,C] vectors may also be stored as [C] */
static int shape_ok(const ParamTensor *p, const TfTensor *t) {
    int ok = t->ndim == p->ndim;
    for (int k = 0; ok && k < p->ndim; k++) ok = t->shape[k] == p->shape[k];
    if (!ok && p->ndim == 3 && t->ndim == 1 && t->shape[0] == p->shape[2]) ok = 1;
    return ok;
}

/* Every tensor of the file is accounted for: each model tensor present with its shape (match[i] = its index in
 * the file), and each other tensor refused unless allow_unknown (then listed on stderr). */
static int account_tensors(const TensorFile *tf, const ModelArch *a, const void *dims, const ParamTensor *tab,
                           int nt, int *match, int allow_unknown, const char *path, Err *err) {
    char *used = xcalloc(tf->n ? tf->n : 1, 1);
    char want[96], got[96], ds[512];
    dims_str(a, dims, ds, sizeof ds);
    int rc = 0, missing = 0, first_missing = -1;
    for (int i = 0; i < nt; i++) { /* missing ones first: a missing factor can make another look misshapen */
        const TfTensor *t = tensorfile_find(tf, tab[i].name);
        match[i] = t ? (int)(t - tf->t) : -1;
        if (!t && first_missing < 0) first_missing = i;
        missing += !t;
    }
    for (int i = 0; i < nt && !missing && !rc; i++) {
        const TfTensor *t = &tf->t[match[i]];
        if (!shape_ok(&tab[i], t))
            rc = err_set(err, "%s: tensor '%s' has shape %s, expected %s (a %s model with %s)", path, t->name,
                         shape_of(t, got, sizeof got), want_shape(&tab[i], want, sizeof want), a->title, ds);
        used[match[i]] = 1;
    }
    if (missing) {
        const char *nm = tab[first_missing].name;
        char why[160];
        long lk = model_key_layer(nm);
        int L = 0;
        for (int i = 0; i < tf->n; i++)
            if (model_key_layer(tf->t[i].name) + 1 > L) L = (int)model_key_layer(tf->t[i].name) + 1;
        if (lk >= 0)
            snprintf(why, sizeof why, "the file has tensors of layers 0..%d, and each layer needs it", L - 1);
        else
            snprintf(why, sizeof why, "every %s model needs it", a->title);
        rc = err_set(err, "%s: missing tensor '%s' %s: %s (%d of the %d tensors of a %s model with %s %s missing; the "
                          "file is incomplete)", path, nm, want_shape(&tab[first_missing], want, sizeof want), why,
                     missing, nt, a->title, ds, missing > 1 ? "are" : "is");
    }
    int unknown = 0, first_unknown = -1;
    for (int i = 0; i < tf->n && !rc; i++)
        if (!used[i] && !known_unused(a, tf->t[i].name)) {
            if (first_unknown < 0) first_unknown = i;
            unknown++;
        }
    if (!rc && unknown && !allow_unknown)
        rc = err_set(err, "%s: tensor '%s' %s is not part of the model (%s) (%d unknown tensor%s in the file): "
                          "if the file is right, load it with --allow-unknown-tensors (RWKVLAB_ALLOW_UNKNOWN_TENSORS=1) "
                          "to ignore %s", path, tf->t[first_unknown].name, shape_of(&tf->t[first_unknown], got, sizeof got),
                     a->title, unknown, unknown > 1 ? "s" : "", unknown > 1 ? "them" : "it");
    if (!rc && unknown) {
        fprintf(stderr, "rwkvlab: warning: %s: ignoring %d tensor%s not part of the model (allowed):", path, unknown,
                unknown > 1 ? "s" : "");
        for (int i = 0, k = 0; i < tf->n; i++)
            if (!used[i] && !known_unused(a, tf->t[i].name) && k++ < 8) fprintf(stderr, " %s", tf->t[i].name);
        fprintf(stderr, "%s\n", unknown > 8 ? " ..." : "");
    }
    free(used);
    return rc ? -1 : 0;
}

/* Once a storage's last tensor is converted, drop its pages of the (read-only, private) file mapping, so that
 * loading a large checkpoint holds the fp32 parameters and not also the whole file: measured on a 2.9B-shaped
 * bf16 file (5.9 GB), peak RSS 18.0 GB without this and 11.9 GB with it. */
static void release_pages(const TensorFile *tf, const void *storage, size_t bytes) {
    if (!tf->map) return;
    const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t s0 = (uintptr_t)storage, s1 = s0 + bytes;
    const uintptr_t a = (s0 + pg - 1) & ~(pg - 1), e = s1 & ~(pg - 1);
    if (e > a) madvise((void *)a, e - a, MADV_DONTNEED);
}

typedef struct {
    const TfTensor *t;
    int param; /* index in the model's table */
} Job;

static int job_cmp(const void *a, const void *b) {
    const Job *x = a, *y = b;
    uintptr_t p = (uintptr_t)x->t->storage, q = (uintptr_t)y->t->storage;
    if (p != q) return p < q ? -1 : 1;
    return (x->t->offset > y->t->offset) - (x->t->offset < y->t->offset);
}

static size_t storage_bytes(const TfTensor *t) { return (size_t)t->storage_numel * tf_dtype_size(t->dtype); }

static int load_tensorfile(const char *path, const ModelLoadOpts *o, Model **out, Err *err) {
    TensorFile tf = {0};
    if (tensorfile_open(path, &tf, err)) return -1;
    char d[1024], ds[512];
    ParamTensor *tab = NULL;
    int nt = 0, *match = NULL, rc = -1;
    size_t np = 0;
    Job *jobs = NULL;
    Model *m = NULL;
    const ModelArch *a = NULL;
    for (int i = 0; model_archs[i] && !a; i++)
        if (model_archs[i]->recognise(&tf)) a = model_archs[i];
    if (!a) {
        err_set(err, "%s: not a checkpoint of any architecture this build knows (%s): none of their key patterns "
                     "(e.g. blocks.0.att.r_k for RWKV-7) is in the file", path, model_arch_names());
        goto done;
    }
    CHECK(a->dims_size <= sizeof d, "dims of %s too large", a->name);
    if (a->dims_from_tensors(d, &tf, path, err)) goto done;
    tab = a->tensor_table(d, &nt, &np);
    dims_str(a, d, ds, sizeof ds);
    match = xcalloc((size_t)nt, sizeof *match);
    if (account_tensors(&tf, a, d, tab, nt, match, o->allow_unknown, path, err)) goto done;

    /* convert storage by storage: views of one storage are read together and its pages released once */
    jobs = xcalloc((size_t)nt, sizeof *jobs);
    for (int i = 0; i < nt; i++) jobs[i] = (Job){&tf.t[match[i]], i};
    qsort(jobs, (size_t)nt, sizeof *jobs, job_cmp);
    size_t stored = 0, biggest = 0, maxel = 0; /* distinct storage bytes, largest storage, largest tensor */
    int nstor = 0;
    for (int i = 0; i < nt; i++) {
        if (tab[jobs[i].param].numel > maxel) maxel = tab[jobs[i].param].numel;
        if (i && jobs[i].t->storage == jobs[i - 1].t->storage) continue;
        size_t b = storage_bytes(jobs[i].t);
        for (int j = i + 1; j < nt && jobs[j].t->storage == jobs[i].t->storage; j++)
            if (storage_bytes(jobs[j].t) > b) b = storage_bytes(jobs[j].t);
        stored += b, nstor++;
        if (b > biggest) biggest = b;
    }
    /* memory: the parameters as `real`, one storage's pages mapped at a time, the conversion buffer (f64) */
    size_t need = np * sizeof(real) + biggest + (sizeof(real) != sizeof(float) ? maxel * sizeof(float) : 0);
    if (o->stats) {
        o->stats->need_bytes = need;
        o->stats->storages = nstor;
        o->stats->storage_reads = 0;
    }
    {
        char what[1024], ma[32], b[32];
        int n = snprintf(what, sizeof what, "loading '%s' (%s %s: %zu parameters as %s, %s)", path, a->title, ds, np,
                         REAL_NAME, mem_fmt(np * sizeof(real), ma, sizeof ma));
        if (np * sizeof(real) > 2 * stored + ((size_t)1 << 20) && n > 0 && (size_t)n < sizeof what)
            snprintf(what + n, sizeof what - n, "; its tensors overlap: they view %d storage%s of %s in all", nstor,
                     nstor > 1 ? "s" : "", mem_fmt(stored, b, sizeof b));
        if (mem_check_hint(need, what, "use a machine (or cgroup) with more memory, or a smaller model",
                           o->force_memory, err))
            goto done;
    }
    m = model_create(a, d, 0);
    /* the parameters are written once, in parallel: huge pages (where the kernel offers them) cut the page
     * faults of a large model's first touch by 512x (RWKVLAB_HUGEPAGES=0: not asked for) */
    if (!getenv("RWKVLAB_HUGEPAGES") || strcmp(getenv("RWKVLAB_HUGEPAGES"), "0")) {
        const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), s0 = (uintptr_t)m->params;
        const uintptr_t s1 = s0 + np * sizeof(real), a0 = (s0 + pg - 1) & ~(pg - 1);
        if (np * sizeof(real) >= ((size_t)64 << 20) && (s1 & ~(pg - 1)) > a0)
            (void)madvise((void *)a0, (s1 & ~(pg - 1)) - a0, MADV_HUGEPAGE);
    }
    float *buf = sizeof(real) != sizeof(float) ? xmalloc((maxel ? maxel : 1) * sizeof(float)) : NULL;
    for (int i = 0; i < nt; i++) {
        const ParamTensor *p = &m->tensors[jobs[i].param];
        const TfTensor *t = jobs[i].t;
        if ((!i || t->storage != jobs[i - 1].t->storage) && o->stats) o->stats->storage_reads++;
        real *dst = m->params + p->offset;
        if (buf) {
            tf_to_f32(t, buf);
            for (size_t e = 0; e < p->numel; e++) dst[e] = (real)buf[e];
        } else {
            tf_to_f32(t, (float *)dst);
        }
        if (i + 1 == nt || jobs[i + 1].t->storage != t->storage) release_pages(&tf, t->storage, storage_bytes(t));
    }
    free(buf);
    *out = m;
    m = NULL;
    rc = 0;
done:
    model_free(m);
    free(jobs), free(match), free(tab);
    tensorfile_close(&tf);
    return rc;
}

static int env_is_1(const char *name) {
    const char *v = getenv(name);
    return v && !strcmp(v, "1");
}

void model_load_opts_default(ModelLoadOpts *o) {
    memset(o, 0, sizeof *o);
    o->allow_unknown = env_is_1("RWKVLAB_ALLOW_UNKNOWN_TENSORS");
    o->force_memory = mem_force_from_env();
}

int model_load_with(const char *path, const ModelLoadOpts *opts, Model **out, Err *err) {
    ModelLoadOpts def;
    if (!opts) model_load_opts_default(&def), opts = &def;
    *out = NULL;
    char magic[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, "cannot open model '%s'", path);
    size_t n = fread(magic, 1, 8, f);
    fclose(f);
    if (n == 8 && !memcmp(magic, "RWKVLAB\x01", 8)) return ckpt_load_model(path, out, NULL, NULL, err);
    return load_tensorfile(path, opts, out, err);
}

int model_load(const char *path, Model **out, Err *err) { return model_load_with(path, NULL, out, err); }

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

int model_export(const Model *m, const char *path, TfDType dtype, Err *err) {
    int is_pth = ends_with(path, ".pth") || ends_with(path, ".pt");
    if (!is_pth && !ends_with(path, ".safetensors"))
        return err_set(err, "export: '%s': use a .pth or .safetensors file name", path);
    const char *note = m->arch->export_note ? m->arch->export_note(m) : NULL;
    if (note) fprintf(stderr, "warning: %s\n", note);
    TfOut *outs = xcalloc(m->ntensors, sizeof(TfOut));
    float *conv = NULL;
#ifdef RWKV_F64
    conv = xmalloc(m->nparams * sizeof(float));
    for (size_t i = 0; i < m->nparams; i++) conv[i] = (float)m->params[i];
    const float *base = conv;
#else
    const float *base = m->params;
#endif
    for (int i = 0; i < m->ntensors; i++) {
        const ParamTensor *p = &m->tensors[i];
        outs[i].name = p->name;
        outs[i].ndim = p->ndim;
        for (int k = 0; k < p->ndim; k++) outs[i].shape[k] = p->shape[k];
        outs[i].data = base + p->offset;
    }
    int rc = is_pth ? pth_write(path, outs, m->ntensors, dtype, err)
                    : safetensors_write(path, outs, m->ntensors, dtype, err);
    free(outs), free(conv);
    return rc;
}

