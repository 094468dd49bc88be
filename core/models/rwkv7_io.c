/* rwkv7_io.c -- RWKV-7's dims from the tensors of a released checkpoint (see rwkv7.h; loading, the tensor
 * accounting and export are generic: model_io.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model_io.h"
#include "rwkv7.h"
#include "shortconv.h"

static const TfTensor *find(const TensorFile *tf, const char *fmt, int l) {
    char nm[TF_NAME_MAX];
    snprintf(nm, sizeof nm, fmt, l);
    return tensorfile_find(tf, nm);
}

static const char *shape_of(const TfTensor *t, char *buf, size_t n) { return tf_shape_str(t->shape, t->ndim, buf, n); }

#define IO_MAX_DIM (1 << 28) /* C, V, N, LoRA ranks: F = 4C and every product stay in range */

/* The layer count: max K + 1 over every "blocks.K." key. A layer needs at least 30 tensors, so K must stay
 * below tf->n / 30 (a hostile key like blocks.99999999.x cannot make the tensor table huge). */
static int count_layers(const TensorFile *tf, int *L, const char *path, Err *err) {
    long maxk = -1;
    int at = -1;
    for (int i = 0; i < tf->n; i++) {
        long k = model_key_layer(tf->t[i].name);
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
    /* the short convolution (ours, not in released x070 files): att.r_conv.weight [C, K] (as RWKV-6's) */
    const TfTensor *rc = tensorfile_find(tf, "blocks.0.att.r_conv.weight");
    if (rc) {
        if (rc->ndim != 2 || rc->shape[0] != d->C || rc->shape[1] < 1 || rc->shape[1] > SHORTCONV_MAX_K)
            return err_set(err, "%s: 'blocks.0.att.r_conv.weight' must be [C, K] with C = %d and 1 <= K <= %d; found %s",
                           path, d->C, SHORTCONV_MAX_K, shape_of(rc, s1, sizeof s1));
        d->conv = (int)rc->shape[1];
    }
    return 0;
}


int rwkv7_dims_from_tensors(void *dims, const TensorFile *tf, const char *path, Err *err) {
    return infer_dims(tf, dims, path, err);
}
