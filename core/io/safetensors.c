/* safetensors.c -- .safetensors reader and writer.
 *
 * Format (facts): u64 little-endian header length H, then H bytes of JSON
 *   {"name": {"dtype": "F32"|"F16"|"BF16", "shape": [..], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"k": "v", ...}}
 * then the byte buffer; offsets are relative to the buffer's start, tensors are contiguous row-major.
 *
 * Reader rules: H must fit the file and stay under 100 MB; JSON parsed with cJSON (nesting bounded by
 * cJSON); offsets integral, inside the buffer, end - begin == numel * dtype size, and no two tensors
 * overlap. Tensors point into the caller's map. Other dtypes (F64, I64, U8, ...) are refused by name.
 * Writer rules: header padded with spaces to a multiple of 8 (the data section starts 8-byte aligned),
 * `__metadata__ {"format": "pt"}`, tensors in the given order; streamed through a temp file + rename.
 */
#include "tensorfile.h"

#include <cJSON.h>
#include <math.h>
#include <string.h>

#define ST_MAX_HEADER (100u << 20)

typedef struct {
    uint64_t begin, end;
} Span;

static int span_cmp(const void *a, const void *b) {
    const Span *x = a, *y = b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

/* a JSON number that is an integer in [0, 2^53] */
static int json_u53(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return -1;
    double v = j->valuedouble;
    if (!(v >= 0 && v <= 9007199254740992.0) || floor(v) != v) return -1;
    *out = (uint64_t)v;
    return 0;
}

int safetensors_parse(const uint8_t *data, size_t len, TensorFile *tf, Err *err) {
    if (len < 8) return err_set(err, "safetensors: file too short (%zu bytes) for the 8-byte header length", len);
    uint64_t h = 0;
    for (int i = 0; i < 8; i++) h |= (uint64_t)data[i] << (8 * i);
    if (h > len - 8)
        return err_set(err, "safetensors: header length %llu exceeds the %zu bytes after it (truncated, or not a "
                            "checkpoint at all: a .pth starts with 'PK')", (unsigned long long)h, len - 8);
    if (h > ST_MAX_HEADER) return err_set(err, "safetensors: header length %llu is over the 100 MB limit", (unsigned long long)h);
    if (h < 2 || data[8] != '{')
        return err_set(err, "safetensors: header does not start with '{' (not a safetensors file: wrong magic)");
    const uint8_t *buf = data + 8 + h;
    uint64_t blen = len - 8 - h;
    const char *endp = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)data + 8, (size_t)h, &endp, 0);
    if (!root) {
        size_t at = endp && endp >= (const char *)data + 8 && endp <= (const char *)data + 8 + h
                        ? (size_t)(endp - (const char *)data) : 8;
        return err_set(err, "safetensors: header is not valid JSON (parse stopped near byte %zu)", at);
    }
    int rc = 0, n = 0;
    Span *sp = NULL;
    if (!cJSON_IsObject(root)) {
        rc = err_set(err, "safetensors: header is JSON but not an object");
        goto done;
    }
    int cap = cJSON_GetArraySize(root);
    tf->t = calloc(cap ? (size_t)cap : 1, sizeof *tf->t);
    sp = malloc((cap ? (size_t)cap : 1) * sizeof *sp);
    if (!tf->t || !sp) {
        rc = err_set(err, "safetensors: out of memory for %d entries", cap);
        goto done;
    }
    for (const cJSON *e = root->child; e; e = e->next) {
        const char *name = e->string ? e->string : "";
        if (!strcmp(name, "__metadata__")) {
            if (!cJSON_IsObject(e)) { rc = err_set(err, "safetensors: __metadata__ is not an object"); goto done; }
            continue;
        }
        if (strlen(name) >= TF_NAME_MAX) {
            rc = err_set(err, "safetensors: tensor name '%.60s...' is longer than %d bytes", name, TF_NAME_MAX - 1);
            goto done;
        }
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        const cJSON *shp = cJSON_GetObjectItemCaseSensitive(e, "shape");
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!cJSON_IsObject(e) || !cJSON_IsString(dt) || !cJSON_IsArray(shp) || !cJSON_IsArray(off) ||
            cJSON_GetArraySize(off) != 2) {
            rc = err_set(err, "safetensors: entry '%s' lacks dtype (string), shape (array) or data_offsets ([begin, end])", name);
            goto done;
        }
        TfTensor *t = &tf->t[n];
        memset(t, 0, sizeof *t);
        snprintf(t->name, sizeof t->name, "%s", name);
        if (!strcmp(dt->valuestring, "F32")) t->dtype = TF_F32;
        else if (!strcmp(dt->valuestring, "F16")) t->dtype = TF_F16;
        else if (!strcmp(dt->valuestring, "BF16")) t->dtype = TF_BF16;
        else {
            rc = err_set(err, "safetensors: tensor '%s' has unsupported dtype '%.20s'; only F32, F16 and BF16 are read",
                         name, dt->valuestring);
            goto done;
        }
        int nd = cJSON_GetArraySize(shp);
        if (nd > TF_MAX_NDIM) {
            rc = err_set(err, "safetensors: tensor '%s' has %d dimensions; at most %d are supported", name, nd, TF_MAX_NDIM);
            goto done;
        }
        t->ndim = nd;
        int64_t numel = 1;
        const cJSON *d = shp->child;
        for (int i = 0; i < nd; i++, d = d->next) {
            uint64_t v;
            if (json_u53(d, &v) || (v > 0 && (uint64_t)numel > ((uint64_t)1 << 53) / v)) {
                rc = err_set(err, "safetensors: tensor '%s': shape[%d] is not a non-negative integer or the element "
                                  "count overflows", name, i);
                goto done;
            }
            t->shape[i] = (int64_t)v;
            numel *= (int64_t)v;
        }
        int64_t s64 = 1;
        for (int i = nd - 1; i >= 0; i--) { t->stride[i] = s64; s64 *= t->shape[i]; }
        uint64_t b, en;
        char sh[160];
        tf_shape_str(t->shape, nd, sh, sizeof sh);
        if (json_u53(off->child, &b) || json_u53(off->child->next, &en) || b > en) {
            rc = err_set(err, "safetensors: tensor '%s': data_offsets must be integers with begin <= end <= %llu "
                              "(the data size)", name, (unsigned long long)blen);
            goto done;
        }
        if (en > blen) {
            rc = err_set(err, "safetensors: tensor '%s' %s %s: data_offsets [%llu, %llu] reach beyond the end of the "
                              "file, whose data section holds %llu bytes (%zu-byte file): truncated or corrupt; nothing "
                              "was allocated", name, sh, dt->valuestring, (unsigned long long)b, (unsigned long long)en,
                         (unsigned long long)blen, len);
            goto done;
        }
        if (en - b != (uint64_t)numel * tf_dtype_size(t->dtype)) {
            rc = err_set(err, "safetensors: tensor '%s' %s: data_offsets span %llu bytes but %s x %lld elements need %llu",
                         name, sh, (unsigned long long)(en - b), dt->valuestring, (long long)numel,
                         (unsigned long long)numel * tf_dtype_size(t->dtype));
            goto done;
        }
        t->storage = buf + b;
        t->offset = 0;
        t->storage_numel = numel;
        t->storage_file_bytes = en - b;
        sp[n] = (Span){b, en};
        n++;
    }
    tf->n = n;
    qsort(sp, (size_t)n, sizeof *sp, span_cmp);
    uint64_t reach = 0; /* end of the non-empty spans seen so far */
    for (int i = 0; i < n; i++) {
        if (sp[i].begin == sp[i].end) continue;
        if (sp[i].begin < reach) {
            rc = err_set(err, "safetensors: tensors overlap (one ends at byte %llu of the data, another starts at %llu)",
                         (unsigned long long)reach, (unsigned long long)sp[i].begin);
            goto done;
        }
        reach = sp[i].end;
    }
done:
    free(sp);
    cJSON_Delete(root);
    if (rc) {
        free(tf->t);
        tf->t = NULL;
        tf->n = 0;
    }
    return rc ? -1 : 0;
}

/* JSON string with the escapes the format needs */
static void json_str(FILE *f, const char *s, uint64_t *pos) {
    fputc('"', f), (*pos)++;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') { fprintf(f, "\\%c", *p); *pos += 2; }
        else if (*p < 0x20) { fprintf(f, "\\u%04x", *p); *pos += 6; }
        else { fputc(*p, f); (*pos)++; }
    }
    fputc('"', f), (*pos)++;
}

static uint64_t header_write(FILE *f, const TfOut *t, int n, TfDType dtype, uint64_t pad) {
    uint64_t pos = 0, off = 0;
    size_t es = tf_dtype_size(dtype);
    pos += (uint64_t)fprintf(f, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        pos += (uint64_t)fprintf(f, ",");
        json_str(f, t[i].name, &pos);
        pos += (uint64_t)fprintf(f, ":{\"dtype\":\"%s\",\"shape\":[", tf_dtype_name(dtype));
        uint64_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) {
            pos += (uint64_t)fprintf(f, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
            numel *= (uint64_t)t[i].shape[d];
        }
        pos += (uint64_t)fprintf(f, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                                 (unsigned long long)(off + numel * es));
        off += numel * es;
    }
    pos += (uint64_t)fprintf(f, "}");
    for (uint64_t i = 0; i < pad; i++) fputc(' ', f);
    return pos;
}

int safetensors_write(const char *path, const TfOut *t, int n, TfDType dtype, Err *err) {
    if (tf_check_outputs(t, n, dtype, err)) return -1;
    /* measure the header, then write length, header (padded to 8), data */
    FILE *nul = fopen("/dev/null", "w");
    if (!nul) return err_set(err, "cannot open /dev/null");
    uint64_t hl = header_write(nul, t, n, dtype, 0);
    fclose(nul);
    uint64_t pad = (8 - hl % 8) % 8;
    char tmp[4200];
    FILE *f = tf_tmp_open(path, tmp, sizeof tmp, err);
    if (!f) return -1;
    uint8_t lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (uint8_t)((hl + pad) >> (8 * i));
    int ok = fwrite(lenb, 1, 8, f) == 8;
    header_write(f, t, n, dtype, pad);
    size_t es = tf_dtype_size(dtype);
    for (int i = 0; i < n && ok; i++) {
        int64_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= t[i].shape[d];
        if (!numel) continue;
        if (dtype == TF_F32) { /* as it is */
            ok = fwrite(t[i].data, es, (size_t)numel, f) == (size_t)numel;
            continue;
        }
        void *buf = malloc((size_t)numel * es);
        if (!buf) { ok = 0; break; }
        tf_from_f32(t[i].data, numel, dtype, buf);
        ok = fwrite(buf, es, (size_t)numel, f) == (size_t)numel;
        free(buf);
    }
    return tf_commit(f, tmp, path, ok && !ferror(f), err);
}
