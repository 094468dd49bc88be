/* tensorfile.c -- the common side of checkpoint files: open by content (mmap), tensor validation,
 * lookup, and f32 <-> f16/bf16 conversion.
 *
 * Rules: the file is mapped once, read-only and private; parsers (pth.c, safetensors.c) fill TfTensor
 * entries that point into the map and never copy storages. Every parsed tensor passes tf_validate before
 * the caller sees it, so tf_to_f32 may trust shape/stride/offset/storage_numel without further checks.
 * Conversions: bf16/f16 -> f32 exact; f32 -> bf16/f16 round to nearest even, NaN kept as a quiet NaN,
 * values past the largest finite half/bfloat become inf.
 */
#include "tensorfile.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int64_t tf_zip64_limit = 0xFFFFFFFFLL;

size_t tf_dtype_size(TfDType d) { return d == TF_F32 ? 4 : 2; }

const char *tf_dtype_name(TfDType d) {
    switch (d) {
    case TF_F32: return "F32";
    case TF_F16: return "F16";
    case TF_BF16: return "BF16";
    }
    return "?";
}

int64_t tf_numel(const TfTensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

const char *tf_shape_str(const int64_t *shape, int ndim, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++) k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

/* ---- scalar conversions ------------------------------------------------------------------------ */
static uint32_t f32_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}
static float bits_f32(uint32_t u) {
    float x;
    memcpy(&x, &u, 4);
    return x;
}

float tf_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

float tf_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0) { /* zero or subnormal: m * 2^-24, exact in f32 */
        float v = ldexpf((float)m, -24);
        return sign ? -v : v;
    }
    if (e == 31) return bits_f32(sign | 0x7f800000u | (m << 13));
    return bits_f32(sign | ((e - 15 + 127) << 23) | (m << 13));
}

uint16_t tf_f32_to_bf16(float x) {
    uint32_t u = f32_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

uint16_t tf_f32_to_f16(float x) {
    uint32_t u = f32_bits(x), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);  /* NaN */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520 rounds to inf */
    if (a < 0x38800000u) {                                   /* below 2^-14: subnormal half */
        float s = bits_f32(a) * 16777216.0f;                   /* exact: times 2^24 */
        return (uint16_t)(sign | (uint32_t)rintf(s));          /* default mode: nearest even */
    }
    a = a - (112u << 23); /* rebias exponent 127 -> 15 */
    return (uint16_t)(sign | ((a + 0xfffu + ((a >> 13) & 1u)) >> 13));
}

/* ---- tensors ------------------------------------------------------------------------------------ */
int tf_validate(const TfTensor *t, Err *err) {
    if (t->ndim < 0 || t->ndim > TF_MAX_NDIM)
        return err_set(err, "tensor '%s': %d dimensions; at most %d are supported", t->name, t->ndim,
                       TF_MAX_NDIM);
    if (t->offset < 0 || t->storage_numel < 0)
        return err_set(err, "tensor '%s': negative storage offset (%lld) or storage size (%lld)", t->name,
                       (long long)t->offset, (long long)t->storage_numel);
    const size_t es = tf_dtype_size(t->dtype);
    if ((uint64_t)t->storage_numel > t->storage_file_bytes / es) {
        char sh[160];
        tf_shape_str(t->shape, t->ndim, sh, sizeof sh);
        return err_set(err, "tensor '%s' %s %s: its storage claims %lld elements (%.4g GB) but holds %llu bytes in the "
                            "file: the data would lie beyond the end of the file (truncated or corrupt checkpoint); "
                            "nothing was allocated", t->name, sh, tf_dtype_name(t->dtype), (long long)t->storage_numel,
                       (double)t->storage_numel * (double)es / 1e9, (unsigned long long)t->storage_file_bytes);
    }
    int64_t numel = 1, last = t->offset;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0 || t->stride[i] < 0)
            return err_set(err, "tensor '%s': dimension %d has size %lld and stride %lld; both must be >= 0",
                           t->name, i, (long long)t->shape[i], (long long)t->stride[i]);
        if (t->shape[i] > 0 && numel > INT64_MAX / 8 / t->shape[i])
            return err_set(err, "tensor '%s': element count overflows (dimension %d = %lld)", t->name, i,
                           (long long)t->shape[i]);
        numel *= t->shape[i];
    }
    if (numel == 0) return 0;
    if (numel > t->storage_numel) /* keeps every element count bounded by the file size */
        return err_set(err, "tensor '%s': %lld elements but its storage holds only %lld (broadcast views are not read)",
                       t->name, (long long)numel, (long long)t->storage_numel);
    for (int i = 0; i < t->ndim; i++) {
        int64_t ext = t->shape[i] - 1;
        if (t->stride[i] > 0 && ext > (INT64_MAX - last) / t->stride[i])
            return err_set(err, "tensor '%s': shape x stride overflows (dimension %d: size %lld, stride %lld)",
                           t->name, i, (long long)t->shape[i], (long long)t->stride[i]);
        last += ext * t->stride[i];
    }
    if (last >= t->storage_numel)
        return err_set(err,
                       "tensor '%s': shape/stride/offset reach element %lld but its storage holds %lld elements",
                       t->name, (long long)last, (long long)t->storage_numel);
    if (!t->storage) return err_set(err, "tensor '%s': no storage", t->name);
    return 0;
}

static int name_cmp(const void *a, const void *b) {
    return strcmp((*(const TfTensor *const *)a)->name, (*(const TfTensor *const *)b)->name);
}

int tf_finish(TensorFile *tf, Err *err) {
    for (int i = 0; i < tf->n; i++)
        if (tf_validate(&tf->t[i], err)) return -1;
    if (tf->n < 2) return 0;
    const TfTensor **idx = malloc((size_t)tf->n * sizeof *idx);
    if (!idx) return err_set(err, "out of memory indexing %d tensors", tf->n);
    for (int i = 0; i < tf->n; i++) idx[i] = &tf->t[i];
    qsort(idx, (size_t)tf->n, sizeof *idx, name_cmp);
    int rc = 0;
    for (int i = 1; i < tf->n && !rc; i++)
        if (strcmp(idx[i - 1]->name, idx[i]->name) == 0)
            rc = err_set(err, "tensor name '%s' appears twice", idx[i]->name);
    free(idx);
    return rc;
}

/* Rows (the last dimension) are converted in parallel for large tensors: a pure element-wise conversion,
 * so the result does not depend on the thread count (a 1.5B bf16 checkpoint: 6 GB of fp32 written, which
 * one thread does at ~1 GB/s, page faults included). */
void tf_to_f32(const TfTensor *t, float *dst) {
    int64_t sh[4] = {1, 1, 1, 1}, st[4] = {0, 0, 0, 0};
    int pad = TF_MAX_NDIM - t->ndim;
    for (int i = 0; i < t->ndim; i++) sh[pad + i] = t->shape[i], st[pad + i] = t->stride[i];
    const int64_t numel = tf_numel(t);
    if (numel == 0) return;
    const uint8_t *base = t->storage;
    const int64_t nrows = sh[0] * sh[1] * sh[2], W = sh[3];
    const int dt = t->dtype;
#pragma omp parallel for schedule(static) if (numel >= (1 << 18) && nrows > 1)
    for (int64_t r = 0; r < nrows; r++) {
        const int64_t a = r / (sh[1] * sh[2]), b = (r / sh[2]) % sh[1], c = r % sh[2];
        const int64_t row = t->offset + a * st[0] + b * st[1] + c * st[2], sd = st[3];
        float *o = dst + r * W;
        if (dt == TF_F32) {
            if (sd == 1) memcpy(o, base + row * 4, (size_t)W * 4);
            else
                for (int64_t d = 0; d < W; d++) memcpy(&o[d], base + (row + d * sd) * 4, 4);
        } else {
            for (int64_t d = 0; d < W; d++) {
                uint16_t h;
                memcpy(&h, base + (row + d * sd) * 2, 2);
                o[d] = dt == TF_BF16 ? tf_bf16_to_f32(h) : tf_f16_to_f32(h);
            }
        }
    }
}

const TfTensor *tensorfile_find(const TensorFile *tf, const char *name) {
    for (int i = 0; i < tf->n; i++)
        if (strcmp(tf->t[i].name, name) == 0) return &tf->t[i];
    return NULL;
}

/* ---- open / close ------------------------------------------------------------------------------- */
int tensorfile_open_mem(const void *data, size_t len, TensorFile *tf, Err *err) {
    memset(tf, 0, sizeof *tf);
    const uint8_t *p = data;
    int rc;
    if (len >= 4 && p[0] == 'P' && p[1] == 'K')
        rc = pth_parse(p, len, tf, err);
    else if (len >= 2 && p[0] == 0x80 && p[1] <= 5)
        rc = err_set(err, "this is a bare pickle (torch.save before torch 1.6, or pickle.dump), not a zip: "
                          "re-save it with a current torch.save; only the zip format is read");
    else
        rc = safetensors_parse(p, len, tf, err);
    if (rc == 0) rc = tf_finish(tf, err);
    if (rc) {
        free(tf->t);
        memset(tf, 0, sizeof *tf);
        return -1;
    }
    return 0;
}

int tensorfile_open(const char *path, TensorFile *tf, Err *err) {
    memset(tf, 0, sizeof *tf);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_set(err, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(err, "'%s' is not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return err_set(err, "'%s' is empty", path);
    }
    size_t len = (size_t)st.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return err_set(err, "cannot map '%s' (%zu bytes): %s", path, len, strerror(errno));
    Err e2 = {{0}};
    if (tensorfile_open_mem(map, len, tf, &e2)) {
        munmap(map, len);
        return err_set(err, "%s: %s", path, e2.msg);
    }
    tf->map = map;
    tf->map_len = len;
    return 0;
}

void tensorfile_close(TensorFile *tf) {
    if (!tf) return;
    free(tf->t);
    if (tf->map) munmap(tf->map, tf->map_len);
    memset(tf, 0, sizeof *tf);
}

/* ---- writer checks ------------------------------------------------------------------------------ */
int tf_check_outputs(const TfOut *t, int n, TfDType dtype, Err *err) {
    if (n < 0 || (n > 0 && !t)) return err_set(err, "bad tensor list (n = %d)", n);
    if (dtype != TF_F32 && dtype != TF_F16 && dtype != TF_BF16) return err_set(err, "unknown dtype %d", (int)dtype);
    for (int i = 0; i < n; i++) {
        if (!t[i].name || !t[i].name[0] || strlen(t[i].name) >= TF_NAME_MAX)
            return err_set(err, "tensor %d: name missing or longer than %d bytes", i, TF_NAME_MAX - 1);
        if (t[i].ndim < 0 || t[i].ndim > TF_MAX_NDIM)
            return err_set(err, "tensor '%s': ndim %d outside 0..%d", t[i].name, t[i].ndim, TF_MAX_NDIM);
        int64_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) {
            if (t[i].shape[d] < 0 || (t[i].shape[d] > 0 && numel > INT64_MAX / 8 / t[i].shape[d]))
                return err_set(err, "tensor '%s': bad size %lld in dimension %d", t[i].name,
                               (long long)t[i].shape[d], d);
            numel *= t[i].shape[d];
        }
        if (numel > 0 && !t[i].data) return err_set(err, "tensor '%s': no data", t[i].name);
        for (int j = 0; j < i; j++)
            if (strcmp(t[i].name, t[j].name) == 0) return err_set(err, "tensor name '%s' given twice", t[i].name);
    }
    return 0;
}

/* ---- writer helpers ---------------------------------------------------------------------------- */
/* Opens `path`.tmp.<pid> for a streamed atomic write; tf_commit fsyncs and renames (or removes). */
FILE *tf_tmp_open(const char *path, char *tmp, size_t tn, Err *err) {
    snprintf(tmp, tn, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) err_set(err, "cannot create '%s': %s", tmp, strerror(errno));
    return f;
}

int tf_commit(FILE *f, const char *tmp, const char *path, int ok, Err *err) {
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int e = errno;
    ok = (fclose(f) == 0) && ok;
    if (!ok) {
        unlink(tmp);
        return err_set(err, "cannot write '%s' (disk full?): %s", tmp, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        return err_set(err, "cannot rename '%s' to '%s': %s", tmp, path, strerror(e));
    }
    return 0;
}

/* Converts n contiguous floats to dtype bytes in dst. */
void tf_from_f32(const float *src, int64_t n, TfDType dt, void *dstv) {
    uint8_t *dst = dstv;
    if (dt == TF_F32) { memcpy(dst, src, (size_t)n * 4); return; }
#pragma omp parallel for schedule(static) if (n >= (1 << 18)) /* element-wise: any thread count, same bytes */
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = dt == TF_BF16 ? tf_f32_to_bf16(src[i]) : tf_f32_to_f16(src[i]);
        memcpy(dst + 2 * i, &h, 2);
    }
}

