/* rwkv7_io.c -- load/export RWKV-7 checkpoints with official key names (see rwkv7_io.h). */
#include "rwkv7_io.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ckpt.h"

static const TfTensor *find(const TensorFile *tf, const char *fmt, int l) {
    char nm[TF_NAME_MAX];
    snprintf(nm, sizeof nm, fmt, l);
    return tensorfile_find(tf, nm);
}

/* dimension d of a tensor, or -1 */
static long dim(const TfTensor *t, int d) { return t && d < t->ndim ? (long)t->shape[d] : -1; }

static int infer_dims(const TensorFile *tf, Rwkv7Dims *d, const char *path, Err *err) {
    memset(d, 0, sizeof *d);
    const TfTensor *emb = tensorfile_find(tf, "emb.weight"), *rk = tensorfile_find(tf, "blocks.0.att.r_k");
    if (!emb || emb->ndim != 2)
        return err_set(err, "%s: no 2-D 'emb.weight' tensor: not an RWKV-7 checkpoint (keys like emb.weight, "
                            "blocks.0.att.r_k are expected)", path);
    if (!rk || rk->ndim != 2)
        return err_set(err, "%s: no 2-D 'blocks.0.att.r_k' [H,N]: not an RWKV-7 (x070) checkpoint", path);
    d->V = (int)dim(emb, 0), d->C = (int)dim(emb, 1);
    d->H = (int)dim(rk, 0), d->N = (int)dim(rk, 1);
    if (d->V <= 0 || d->C <= 0 || d->H <= 0 || d->N <= 0)
        return err_set(err, "%s: empty emb.weight [%d,%d] or blocks.0.att.r_k [%d,%d]", path, d->V, d->C, d->H, d->N);
    if ((long)d->H * d->N != d->C)
        return err_set(err, "%s: blocks.0.att.r_k is [%d,%d] but emb.weight has C=%d (H*N must equal C)", path,
                       d->H, d->N, d->C);
    while (find(tf, "blocks.%d.ln1.weight", d->L)) d->L++;
    if (d->L == 0) return err_set(err, "%s: no blocks.0.ln1.weight: no layers found", path);
    d->Dw = (int)dim(find(tf, "blocks.%d.att.w1", 0), 1);
    d->Da = (int)dim(find(tf, "blocks.%d.att.a1", 0), 1);
    d->Dg = (int)dim(find(tf, "blocks.%d.att.g1", 0), 1);
    d->Dv = d->L > 1 ? (int)dim(find(tf, "blocks.%d.att.v1", 1), 1) : 32; /* unused with L = 1 */
    if (d->Dw <= 0 || d->Da <= 0 || d->Dg <= 0 || d->Dv <= 0)
        return err_set(err, "%s: missing or misshapen LoRA factor (blocks.0.att.w1/a1/g1 [C,D], blocks.1.att.v1)",
                       path);
    d->has_ln0 = tensorfile_find(tf, "blocks.0.ln0.weight") != NULL;
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

int rwkv7_dims_from_tensors(void *dims, const TensorFile *tf, Err *err) {
    return infer_dims(tf, dims, "checkpoint", err);
}

/* Once a tensor is converted, drop its pages of the (read-only, private) file mapping, so that loading a
 * large checkpoint holds the fp32 parameters and not also the whole file: measured on a 2.9B-shaped
 * bf16 file (5.9 GB), peak RSS 18.0 GB without this and 11.9 GB with it. Pages shared with another
 * tensor are simply read again from the file if needed. */
static void release_pages(const TensorFile *tf, const TfTensor *t) {
    if (!tf->map) return;
    const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t s0 = (uintptr_t)t->storage, s1 = s0 + (uintptr_t)t->storage_numel * tf_dtype_size(t->dtype);
    const uintptr_t a = (s0 + pg - 1) & ~(pg - 1), e = s1 & ~(pg - 1);
    if (e > a) madvise((void *)a, e - a, MADV_DONTNEED);
}

static int load_tensorfile(const char *path, Rwkv7 **out, Err *err) {
    TensorFile tf = {0};
    if (tensorfile_open(path, &tf, err)) return -1;
    Rwkv7Dims d;
    if (infer_dims(&tf, &d, path, err)) {
        tensorfile_close(&tf);
        return -1;
    }
    Rwkv7 *m = rwkv7_create_inference(&d);
    float *buf = NULL;
    size_t bufn = 0;
    for (int i = 0; i < m->ntensors; i++) {
        const ParamTensor *p = &m->tensors[i];
        const TfTensor *t = tensorfile_find(&tf, p->name);
        char want[64];
        if (p->ndim == 1) snprintf(want, sizeof want, "[%d]", p->shape[0]);
        else if (p->ndim == 2) snprintf(want, sizeof want, "[%d,%d]", p->shape[0], p->shape[1]);
        else snprintf(want, sizeof want, "[%d,%d,%d]", p->shape[0], p->shape[1], p->shape[2]);
        if (!t) {
            err_set(err, "%s: missing tensor '%s' %s (a model with L=%d C=%d N=%d needs it)", path, p->name, want,
                    d.L, d.C, d.N);
            goto fail;
        }
        /* shapes must match, except that the [1,1,C] vectors may also be stored as [C] */
        int ok = t->ndim == p->ndim;
        for (int k = 0; ok && k < p->ndim; k++) ok = t->shape[k] == p->shape[k];
        if (!ok && p->ndim == 3 && t->ndim == 1 && t->shape[0] == p->shape[2]) ok = 1;
        if (!ok) {
            char got[96] = "[";
            for (int k = 0; k < t->ndim; k++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", k ? "," : "", (long long)t->shape[k]);
            strcat(got, "]");
            err_set(err, "%s: tensor '%s' has shape %s, expected %s", path, p->name, got, want);
            goto fail;
        }
        if (p->numel > bufn) {
            free(buf);
            bufn = p->numel;
            buf = xmalloc(bufn * sizeof(float));
        }
        tf_to_f32(t, buf);
        real *dst = m->params + p->offset;
        for (size_t e = 0; e < p->numel; e++) dst[e] = (real)buf[e];
        release_pages(&tf, t);
    }
    free(buf);
    tensorfile_close(&tf);
    *out = m;
    return 0;
fail:
    free(buf);
    rwkv7_free(m);
    tensorfile_close(&tf);
    return -1;
}

int rwkv7_load(const char *path, Rwkv7 **out, Err *err) {
    char magic[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, "cannot open model '%s'", path);
    size_t n = fread(magic, 1, 8, f);
    fclose(f);
    if (n == 8 && !memcmp(magic, "RWKVLAB\x01", 8)) return ckpt_load_model(path, out, NULL, NULL, err);
    return load_tensorfile(path, out, err);
}

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
