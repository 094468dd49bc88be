/* rwkv7_io.c -- load/export RWKV-7 checkpoints with official key names (see rwkv7_io.h). */
#include "rwkv7_io.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ckpt.h"
#include "mem.h"

static const TfTensor *find(const TensorFile *tf, const char *fmt, int l) {
    char nm[TF_NAME_MAX];
    snprintf(nm, sizeof nm, fmt, l);
    return tensorfile_find(tf, nm);
}

static const char *shape_of(const TfTensor *t, char *buf, size_t n) { return tf_shape_str(t->shape, t->ndim, buf, n); }

#define IO_MAX_DIM (1 << 28) /* C, V, N, LoRA ranks: F = 4C and every product stay in range */

/* Layer index K of a key "blocks.K.<rest>" (K decimal, no sign or leading zero), or -1. */
static long layer_of(const char *name) {
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

/* The layer count: max K + 1 over every "blocks.K." key. A layer needs at least 30 tensors, so K must stay
 * below tf->n / 30 (a hostile key like blocks.99999999.x cannot make the tensor table huge). */
static int count_layers(const TensorFile *tf, int *L, const char *path, Err *err) {
    long maxk = -1;
    int at = -1;
    for (int i = 0; i < tf->n; i++) {
        long k = layer_of(tf->t[i].name);
        if (k > maxk) maxk = k, at = i;
    }
    if (maxk < 0) return err_set(err, "%s: no 'blocks.K.*' tensors: no layers found (not an RWKV-7 checkpoint?)", path);
    if ((maxk + 1) * 30 > tf->n)
        return err_set(err, "%s: tensor '%s' names layer %ld, but the file holds only %d tensors and %ld layers need "
                            "at least %ld: the file is incomplete or not an RWKV-7 checkpoint",
                       path, tf->t[at].name, maxk, tf->n, maxk + 1, (maxk + 1) * 30);
    *L = (int)(maxk + 1);
    return 0;
}

/* LoRA rank D of a factor that must be [C, D]; an absent factor gives 0 (the default rank; the tensor check
 * then reports it as missing). */
static int lora_rank(const TensorFile *tf, const char *fmt, int l, int C, int *D, const char *path, Err *err) {
    const TfTensor *t = find(tf, fmt, l);
    *D = 0;
    if (!t) return 0;
    char sh[96];
    if (t->ndim != 2 || t->shape[0] != C || t->shape[1] < 1 || t->shape[1] > IO_MAX_DIM)
        return err_set(err, "%s: tensor '%s' has shape %s; a LoRA factor must be [C, D] with C = %d (from emb.weight) "
                            "and 1 <= D <= %d", path, t->name, shape_of(t, sh, sizeof sh), C, IO_MAX_DIM);
    *D = (int)t->shape[1];
    return 0;
}

static int infer_dims(const TensorFile *tf, Rwkv7Dims *d, const char *path, Err *err) {
    memset(d, 0, sizeof *d);
    const TfTensor *emb = tensorfile_find(tf, "emb.weight"), *rk = tensorfile_find(tf, "blocks.0.att.r_k");
    char s1[96], s2[96];
    if (!emb || emb->ndim != 2)
        return err_set(err, "%s: no 2-D 'emb.weight' tensor: not an RWKV-7 checkpoint (keys like emb.weight, "
                            "blocks.0.att.r_k are expected)", path);
    if (!rk || rk->ndim != 2)
        return err_set(err, "%s: no 2-D 'blocks.0.att.r_k' [H,N]: not an RWKV-7 (x070) checkpoint", path);
    if (emb->shape[0] < 1 || emb->shape[1] < 1 || rk->shape[0] < 1 || rk->shape[1] < 1 ||
        emb->shape[0] > IO_MAX_DIM || emb->shape[1] > IO_MAX_DIM || rk->shape[0] > IO_MAX_DIM || rk->shape[1] > IO_MAX_DIM)
        return err_set(err, "%s: emb.weight %s and blocks.0.att.r_k %s must have sizes in 1..%d", path,
                       shape_of(emb, s1, sizeof s1), shape_of(rk, s2, sizeof s2), IO_MAX_DIM);
    d->V = (int)emb->shape[0], d->C = (int)emb->shape[1];
    d->H = (int)rk->shape[0], d->N = (int)rk->shape[1];
    if ((long)d->H * d->N != d->C)
        return err_set(err, "%s: blocks.0.att.r_k is [%d,%d] but emb.weight has C=%d (H*N must equal C)", path,
                       d->H, d->N, d->C);
    if (count_layers(tf, &d->L, path, err)) return -1;
    if (lora_rank(tf, "blocks.%d.att.w1", 0, d->C, &d->Dw, path, err) ||
        lora_rank(tf, "blocks.%d.att.a1", 0, d->C, &d->Da, path, err) ||
        lora_rank(tf, "blocks.%d.att.g1", 0, d->C, &d->Dg, path, err) ||
        (d->L > 1 && lora_rank(tf, "blocks.%d.att.v1", 1, d->C, &d->Dv, path, err)))
        return -1;
    d->has_ln0 = tensorfile_find(tf, "blocks.0.ln0.weight") || tensorfile_find(tf, "blocks.0.ln0.bias");
    static const struct { const char *name; int bit; } biases[] = {
        {"blocks.%d.att.receptance.bias", RWKV7_BIAS_R}, {"blocks.%d.att.key.bias", RWKV7_BIAS_K},
        {"blocks.%d.att.value.bias", RWKV7_BIAS_V},      {"blocks.%d.att.output.bias", RWKV7_BIAS_O},
        {"blocks.%d.ffn.key.bias", RWKV7_BIAS_FK},       {"blocks.%d.ffn.value.bias", RWKV7_BIAS_FV}};
    for (size_t i = 0; i < sizeof biases / sizeof *biases; i++) {
        int present = find(tf, biases[i].name, 0) != NULL;
        for (int l = 1; l < d->L; l++)
            if ((find(tf, biases[i].name, l) != NULL) != present) {
                char nm[TF_NAME_MAX];
                snprintf(nm, sizeof nm, biases[i].name, l);
                return err_set(err, "%s: '%s' is %s but layer 0 %s it: biases must be in every layer or none", path,
                               nm, present ? "missing" : "present", present ? "has" : "lacks");
            }
        if (present) d->bias |= biases[i].bit;
    }
    if (tensorfile_find(tf, "head.bias")) d->bias |= RWKV7_BIAS_HEAD;
    return 0;
}

/* Keys of released checkpoints that the model does not use: layer 0 has no value residual, but the official
 * files carry its (unused) v0/v1/v2. */
static int known_unused(const char *name) {
    return !strcmp(name, "blocks.0.att.v0") || !strcmp(name, "blocks.0.att.v1") || !strcmp(name, "blocks.0.att.v2");
}

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
static int account_tensors(const TensorFile *tf, const ParamTensor *tab, int nt, const Rwkv7Dims *d, int *match,
                           int allow_unknown, const char *path, Err *err) {
    char *used = xcalloc(tf->n ? tf->n : 1, 1);
    char want[96], got[96];
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
            rc = err_set(err, "%s: tensor '%s' has shape %s, expected %s (a model with L=%d C=%d H=%d N=%d V=%d)", path,
                         t->name, shape_of(t, got, sizeof got), want_shape(&tab[i], want, sizeof want), d->L, d->C,
                         d->H, d->N, d->V);
        used[match[i]] = 1;
    }
    if (missing) {
        const char *nm = tab[first_missing].name;
        char why[160];
        if (layer_of(nm) >= 0)
            snprintf(why, sizeof why, "the file has tensors of layers 0..%d, and each layer needs it", d->L - 1);
        else
            snprintf(why, sizeof why, "every RWKV-7 model needs it");
        rc = err_set(err, "%s: missing tensor '%s' %s: %s (%d of the %d tensors of an RWKV-7 model with L=%d C=%d N=%d "
                          "%s missing; the file is incomplete)", path, nm, want_shape(&tab[first_missing], want, sizeof want),
                     why, missing, nt, d->L, d->C, d->N, missing > 1 ? "are" : "is");
    }
    int unknown = 0, first_unknown = -1;
    for (int i = 0; i < tf->n && !rc; i++)
        if (!used[i] && !known_unused(tf->t[i].name)) {
            if (first_unknown < 0) first_unknown = i;
            unknown++;
        }
    if (!rc && unknown && !allow_unknown)
        rc = err_set(err, "%s: tensor '%s' %s is not part of an RWKV-7 (x070) model (%d unknown tensor%s in the file): "
                          "if the file is right, load it with --allow-unknown-tensors (RWKVLAB_ALLOW_UNKNOWN_TENSORS=1) "
                          "to ignore %s", path, tf->t[first_unknown].name, shape_of(&tf->t[first_unknown], got, sizeof got),
                     unknown, unknown > 1 ? "s" : "", unknown > 1 ? "them" : "it");
    if (!rc && unknown) {
        fprintf(stderr, "rwkvlab: warning: %s: ignoring %d tensor%s not part of the model (allowed):", path, unknown,
                unknown > 1 ? "s" : "");
        for (int i = 0, k = 0; i < tf->n; i++)
            if (!used[i] && !known_unused(tf->t[i].name) && k++ < 8) fprintf(stderr, " %s", tf->t[i].name);
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

static int load_tensorfile(const char *path, const Rwkv7LoadOpts *o, Rwkv7 **out, Err *err) {
    TensorFile tf = {0};
    if (tensorfile_open(path, &tf, err)) return -1;
    Rwkv7Dims d;
    ParamTensor *tab = NULL;
    int nt = 0, *match = NULL, rc = -1;
    size_t np = 0;
    Job *jobs = NULL;
    Rwkv7 *m = NULL;
    if (infer_dims(&tf, &d, path, err)) goto done;
    tab = rwkv7_tensor_table(&d, &nt, &np);
    match = xcalloc((size_t)nt, sizeof *match);
    if (account_tensors(&tf, tab, nt, &d, match, o->allow_unknown, path, err)) goto done;

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
        char what[1024], a[32], b[32];
        int n = snprintf(what, sizeof what, "loading '%s' (RWKV-7 L=%d C=%d V=%d: %zu parameters as %s, %s)", path,
                         d.L, d.C, d.V, np, REAL_NAME, mem_fmt(np * sizeof(real), a, sizeof a));
        if (np * sizeof(real) > 2 * stored + ((size_t)1 << 20) && n > 0 && (size_t)n < sizeof what)
            snprintf(what + n, sizeof what - n, "; its tensors overlap: they view %d storage%s of %s in all", nstor,
                     nstor > 1 ? "s" : "", mem_fmt(stored, b, sizeof b));
        if (mem_check_hint(need, what, "use a machine (or cgroup) with more memory, or a smaller model",
                           o->force_memory, err))
            goto done;
    }
    m = rwkv7_create_inference(&d);
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
    rwkv7_free(m);
    free(jobs), free(match), free(tab);
    tensorfile_close(&tf);
    return rc;
}

static int env_is_1(const char *name) {
    const char *v = getenv(name);
    return v && !strcmp(v, "1");
}

void rwkv7_load_opts_default(Rwkv7LoadOpts *o) {
    memset(o, 0, sizeof *o);
    o->allow_unknown = env_is_1("RWKVLAB_ALLOW_UNKNOWN_TENSORS");
    o->force_memory = mem_force_from_env();
}

int rwkv7_load_with(const char *path, const Rwkv7LoadOpts *opts, Rwkv7 **out, Err *err) {
    Rwkv7LoadOpts def;
    if (!opts) rwkv7_load_opts_default(&def), opts = &def;
    *out = NULL;
    char magic[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, "cannot open model '%s'", path);
    size_t n = fread(magic, 1, 8, f);
    fclose(f);
    if (n == 8 && !memcmp(magic, "RWKVLAB\x01", 8)) return ckpt_load_model(path, out, NULL, NULL, err);
    return load_tensorfile(path, opts, out, err);
}

int rwkv7_load(const char *path, Rwkv7 **out, Err *err) { return rwkv7_load_with(path, NULL, out, err); }

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

int rwkv7_export(const Rwkv7 *m, const char *path, TfDType dtype, Err *err) {
    int is_pth = ends_with(path, ".pth") || ends_with(path, ".pt");
    if (!is_pth && !ends_with(path, ".safetensors"))
        return err_set(err, "export: '%s': use a .pth or .safetensors file name", path);
    if (m->d.extended)
        fprintf(stderr, "warning: this model uses the extended eigenvalue range (a = 2 w sigmoid(...)); the "
                        "official RWKV-7 code computes a = sigmoid(...) and will not reproduce it\n");
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

void rwkv7_print_info(const Rwkv7 *m, const char *path, FILE *f) {
    const Rwkv7Dims *d = &m->d;
    fprintf(f, "model:       %s\n", path);
    fprintf(f, "arch:        RWKV-7 (x070)%s\n", d->extended ? ", extended eigenvalue range" : "");
    fprintf(f, "layers L:    %d\nwidth C:     %d\nheads H:     %d\nhead size N: %d\nvocab V:     %d\nffn F:       %d\n",
            d->L, d->C, d->H, d->N, d->V, d->F);
    fprintf(f, "LoRA ranks:  w=%d a=%d v=%d g=%d\n", d->Dw, d->Da, d->Dv, d->Dg);
    fprintf(f, "ln0:         %s\n", d->has_ln0 ? "yes" : "no");
    fprintf(f, "biases:      %s%s%s%s%s%s%s%s\n", d->bias ? "" : "none", d->bias & RWKV7_BIAS_R ? "receptance " : "",
            d->bias & RWKV7_BIAS_K ? "key " : "", d->bias & RWKV7_BIAS_V ? "value " : "",
            d->bias & RWKV7_BIAS_O ? "output " : "", d->bias & RWKV7_BIAS_FK ? "ffn.key " : "",
            d->bias & RWKV7_BIAS_FV ? "ffn.value " : "", d->bias & RWKV7_BIAS_HEAD ? "head" : "");
    fprintf(f, "parameters:  %zu (%d tensors)\n", m->nparams, m->ntensors);
    fprintf(f, "state:       %ld floats per sequence (L*H*N*N = %ld WKV + 2*L*C token shift)\n",
            (long)d->L * (d->H * d->N * d->N + 2 * d->C), (long)d->L * d->H * d->N * d->N);
}
