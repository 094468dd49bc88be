/* test_tensorfile.c -- .pth and .safetensors readers/writers (core/io/tensorfile.h).
 *
 * What is checked: exact f16/bf16 conversions and round-to-nearest-even; the real torch.save checkpoint
 * (../shared/data/models/reverse_L2_x070.pth, skipped when absent); committed fixtures written by torch
 * and safetensors (tests/fixtures/tensorfile/make_fixtures.py): strided views, storage offsets, shared
 * storages, f16/bf16 storages, a module state dict with _metadata (BUILD), ZIP64 records, a compressed
 * zip and a legacy pickle; round trips of both writers in each dtype (forced ZIP64 too); and bad input:
 * truncation at every cut point, wrong magic, hostile pickles, malformed safetensors headers and random
 * byte flips -- each must give -1 with a message that names the problem, never a crash (the debug build
 * runs this under ASan + UBSan). Inputs are opened from exact-size heap copies so ASan sees over-reads.
 * Set TF_TEST_VERBOSE=1 to print every rejection message.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tensorfile.h"

#define FIX "tests/fixtures/tensorfile/"

/* ---- helpers ------------------------------------------------------------------------------------ */
typedef struct {
    uint8_t *p;
    size_t n, cap;
} TB;

static void tb_put(TB *b, const void *s, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        cr_assert(b->p);
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void tb_u8(TB *b, unsigned x) { uint8_t c = (uint8_t)x; tb_put(b, &c, 1); }
static void tb_le(TB *b, uint64_t x, int k) {
    for (int i = 0; i < k; i++) tb_u8(b, (unsigned)(x >> (8 * i)) & 0xff);
}
static void tb_s(TB *b, const char *s) { tb_put(b, s, strlen(s)); }

static int verbose(void) { return getenv("TF_TEST_VERBOSE") != NULL; }

static uint8_t *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(len > 0 ? (size_t)len : 1);
    *n = fread(p, 1, (size_t)len, f);
    fclose(f);
    return p;
}

/* Opens an exact-size heap copy of d[0..n) and expects failure with `want` in the message. */
static void must_fail(const uint8_t *d, size_t n, const char *want, const char *what) {
    uint8_t *c = malloc(n ? n : 1);
    if (n) memcpy(c, d, n);
    TensorFile tf;
    Err e = {{0}};
    int rc = tensorfile_open_mem(c, n, &tf, &e);
    if (rc == 0) tensorfile_close(&tf);
    free(c);
    cr_assert(rc == -1, "%s: expected a failure, got success", what);
    cr_assert(tf.n == 0 && tf.t == NULL, "%s: tf not cleared on failure", what);
    cr_assert(e.msg[0], "%s: empty error message", what);
    if (want) cr_assert(strstr(e.msg, want), "%s: message \"%s\" lacks \"%s\"", what, e.msg, want);
    if (verbose()) printf("  %-34s -> %s\n", what, e.msg);
}

/* Opens an exact-size copy; if it opens, converts every tensor (ASan checks the bounds promise). */
static int open_and_touch(const uint8_t *d, size_t n) {
    uint8_t *c = malloc(n ? n : 1);
    if (n) memcpy(c, d, n);
    TensorFile tf;
    Err e = {{0}};
    int rc = tensorfile_open_mem(c, n, &tf, &e);
    if (rc == 0) {
        for (int i = 0; i < tf.n; i++) {
            int64_t k = tf_numel(&tf.t[i]);
            if (k > (1 << 20)) continue;
            float *x = malloc((size_t)(k ? k : 1) * sizeof *x);
            tf_to_f32(&tf.t[i], x);
            free(x);
        }
        tensorfile_close(&tf);
    } else {
        cr_assert(e.msg[0] && tf.t == NULL);
    }
    free(c);
    return rc;
}

static float *to_f32(const TfTensor *t) {
    float *x = malloc((size_t)(tf_numel(t) ? tf_numel(t) : 1) * sizeof *x);
    tf_to_f32(t, x);
    return x;
}

static const TfTensor *need(const TensorFile *tf, const char *name, TfDType dt, int ndim, const int64_t *shape) {
    const TfTensor *t = tensorfile_find(tf, name);
    cr_assert(t, "tensor '%s' missing", name);
    cr_assert(t->dtype == dt, "'%s': dtype %s, want %s", name, tf_dtype_name(t->dtype), tf_dtype_name(dt));
    cr_assert(t->ndim == ndim, "'%s': ndim %d, want %d", name, t->ndim, ndim);
    for (int i = 0; i < ndim; i++)
        cr_assert(t->shape[i] == shape[i], "'%s': shape[%d] = %lld, want %lld", name, i, (long long)t->shape[i],
                  (long long)shape[i]);
    return t;
}

static char tmpdir[64];
static void mk_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rwkvlab_tf_XXXXXX");
    cr_assert(mkdtemp(tmpdir));
}
static void rm_tmpdir(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd)) {}
}

/* ---- conversions ---------------------------------------------------------------------------------- */
static float bitsf(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

Test(tensorfile, conversions_exact_and_nearest_even) {
    cr_assert_eq(tf_f32_to_f16(1.0f), 0x3c00);
    cr_assert_eq(tf_f32_to_f16(-2.5f), 0xc100);
    cr_assert_eq(tf_f32_to_f16(65504.0f), 0x7bff);
    cr_assert_eq(tf_f32_to_f16(65519.0f), 0x7bff);       /* below the halfway point */
    cr_assert_eq(tf_f32_to_f16(65520.0f), 0x7c00);       /* tie to even -> inf */
    cr_assert_eq(tf_f32_to_f16(ldexpf(1, -24)), 0x0001); /* smallest subnormal */
    cr_assert_eq(tf_f32_to_f16(ldexpf(1, -25)), 0x0000); /* tie -> even (0) */
    cr_assert_eq(tf_f32_to_f16(ldexpf(3, -25)), 0x0002); /* tie -> even (2) */
    cr_assert_eq(tf_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00);
    cr_assert_eq(tf_f32_to_f16(1.0f + ldexpf(3, -11)), 0x3c02);
    cr_assert_eq(tf_f32_to_f16(-INFINITY), 0xfc00);
    cr_assert(isnan(tf_f16_to_f32(tf_f32_to_f16(NAN))));
    cr_assert_eq(tf_f32_to_bf16(1.0f), 0x3f80);
    cr_assert_eq(tf_f32_to_bf16(1.0f + ldexpf(1, -8)), 0x3f80); /* tie -> even */
    cr_assert_eq(tf_f32_to_bf16(1.0f + ldexpf(3, -8)), 0x3f82); /* tie -> even (up) */
    cr_assert_eq(tf_f32_to_bf16(bitsf(0x7f7fffff)), 0x7f80);    /* FLT_MAX rounds to inf */
    cr_assert(isnan(tf_bf16_to_f32(tf_f32_to_bf16(bitsf(0x7f800001))))); /* signalling NaN stays NaN */
    cr_assert(tf_f16_to_f32(0x0001) == ldexpf(1, -24));
    cr_assert(tf_f16_to_f32(0x7bff) == 65504.0f);
    cr_assert(isinf(tf_f16_to_f32(0x7c00)));
    /* every non-NaN half and bfloat16 survives f32 and back */
    for (uint32_t h = 0; h < 65536; h++) {
        int hnan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff), bnan = (h & 0x7f80) == 0x7f80 && (h & 0x7f);
        if (!hnan) cr_assert_eq(tf_f32_to_f16(tf_f16_to_f32((uint16_t)h)), h, "half 0x%04x", h);
        if (!bnan) cr_assert_eq(tf_f32_to_bf16(tf_bf16_to_f32((uint16_t)h)), h, "bf16 0x%04x", h);
    }
}

/* ---- the real torch checkpoint -------------------------------------------------------------------- */
Test(tensorfile, real_torch_checkpoint) {
    const char *cands[] = {"data/models/reverse_L2_x070.pth", "../shared/data/models/reverse_L2_x070.pth"};
    const char *path = NULL;
    for (int i = 0; i < 2 && !path; i++)
        if (access(cands[i], R_OK) == 0) path = cands[i];
    if (!path) cr_skip_test("reverse_L2_x070.pth not found in data/models or ../shared/data/models");
    TensorFile tf;
    Err e;
    cr_assert(tensorfile_open(path, &tf, &e) == 0, "%s", e.msg);
    cr_assert_eq(tf.n, 73);
    cr_assert_str_eq(tf.t[0].name, "emb.weight"); /* file order kept */
    need(&tf, "emb.weight", TF_F32, 2, (int64_t[]){12, 32});
    need(&tf, "blocks.0.att.r_k", TF_F32, 2, (int64_t[]){2, 16});
    need(&tf, "blocks.0.att.x_r", TF_F32, 3, (int64_t[]){1, 1, 32});
    need(&tf, "blocks.1.ffn.key.weight", TF_F32, 2, (int64_t[]){128, 32});
    need(&tf, "head.bias", TF_F32, 1, (int64_t[]){12});
    cr_assert_null(tensorfile_find(&tf, "blocks.0.ln0.weight"));
    int64_t total = 0;
    for (int i = 0; i < tf.n; i++) {
        float *x = to_f32(&tf.t[i]);
        for (int64_t k = 0; k < tf_numel(&tf.t[i]); k++) cr_assert(isfinite(x[k]), "%s[%lld]", tf.t[i].name, (long long)k);
        total += tf_numel(&tf.t[i]);
        /* tensors point into the map, 64-byte aligned as torch wrote them */
        cr_assert((const uint8_t *)tf.t[i].storage >= (const uint8_t *)tf.map &&
                  (const uint8_t *)tf.t[i].storage < (const uint8_t *)tf.map + tf.map_len);
        cr_assert(((const uint8_t *)tf.t[i].storage - (const uint8_t *)tf.map) % 64 == 0);
        free(x);
    }
    cr_assert_eq(total, 30796); /* parameter count, as torch.load counts it */
    tensorfile_close(&tf);
}

/* ---- fixtures written by torch --------------------------------------------------------------------- */
static void check_strided(const TensorFile *tf) {
    cr_assert_eq(tf->n, 5);
    const TfTensor *tr = need(tf, "t.transposed", TF_F32, 2, (int64_t[]){10, 6});
    const TfTensor *sl = need(tf, "t.slice", TF_F32, 2, (int64_t[]){3, 4});
    const TfTensor *ba = need(tf, "t.base", TF_F32, 2, (int64_t[]){6, 10});
    const TfTensor *hh = need(tf, "h.half", TF_F16, 2, (int64_t[]){3, 4});
    const TfTensor *br = need(tf, "b.row1", TF_BF16, 1, (int64_t[]){4});
    cr_assert(tr->stride[0] == 1 && tr->stride[1] == 10);
    cr_assert(sl->offset == 23 && sl->stride[0] == 10 && sl->stride[1] == 1);
    cr_assert(tr->storage == ba->storage && sl->storage == ba->storage, "views must share the base storage");
    cr_assert(br->offset == 4 && br->storage_numel == 8);
    float *x = to_f32(tr);
    for (int i = 0; i < 10; i++)
        for (int j = 0; j < 6; j++) cr_assert_float_eq(x[i * 6 + j], (10 * j + i) / 4.0f, 0, "transposed[%d][%d]", i, j);
    free(x);
    x = to_f32(sl);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) cr_assert_float_eq(x[i * 4 + j], (10 * (i + 2) + j + 3) / 4.0f, 0);
    free(x);
    x = to_f32(ba);
    for (int k = 0; k < 60; k++) cr_assert_float_eq(x[k], k / 4.0f, 0);
    free(x);
    x = to_f32(hh);
    for (int k = 0; k < 12; k++) cr_assert_float_eq(x[k], (k - 6) / 4.0f, 0);
    free(x);
    x = to_f32(br);
    for (int k = 0; k < 4; k++) cr_assert_float_eq(x[k], (k + 5) / 2.0f, 0);
    free(x);
}

Test(tensorfile, torch_views_offsets_shared_storage) {
    TensorFile tf;
    Err e;
    cr_assert(tensorfile_open(FIX "strided.pth", &tf, &e) == 0, "%s", e.msg);
    check_strided(&tf);
    tensorfile_close(&tf);
}

Test(tensorfile, torch_zip64_records) {
    TensorFile tf;
    Err e;
    cr_assert(tensorfile_open(FIX "zip64.pth", &tf, &e) == 0, "%s", e.msg);
    check_strided(&tf);
    tensorfile_close(&tf);
}

Test(tensorfile, torch_module_state_dict_with_metadata) {
    TensorFile tf;
    Err e;
    cr_assert(tensorfile_open(FIX "module_sd.pth", &tf, &e) == 0, "%s", e.msg);
    cr_assert_eq(tf.n, 2);
    float *w = to_f32(need(&tf, "weight", TF_F32, 2, (int64_t[]){2, 3}));
    for (int k = 0; k < 6; k++) cr_assert_float_eq(w[k], (k - 2) / 4.0f, 0);
    float *b = to_f32(need(&tf, "bias", TF_F32, 1, (int64_t[]){2}));
    cr_assert(b[0] == 0.5f && b[1] == -0.5f);
    free(w);
    free(b);
    tensorfile_close(&tf);
}

Test(tensorfile, safetensors_reference_file) {
    TensorFile tf;
    Err e;
    cr_assert(tensorfile_open(FIX "ref.safetensors", &tf, &e) == 0, "%s", e.msg);
    cr_assert_eq(tf.n, 4);
    float *a = to_f32(need(&tf, "a.f32", TF_F32, 2, (int64_t[]){6, 10}));
    for (int k = 0; k < 60; k++) cr_assert_float_eq(a[k], k / 4.0f, 0);
    float *h = to_f32(need(&tf, "b.f16", TF_F16, 2, (int64_t[]){3, 4}));
    for (int k = 0; k < 12; k++) cr_assert_float_eq(h[k], (k - 6) / 4.0f, 0);
    float *c = to_f32(need(&tf, "c.bf16", TF_BF16, 2, (int64_t[]){2, 4}));
    for (int k = 0; k < 8; k++) cr_assert_float_eq(c[k], (k + 1) / 2.0f, 0);
    float *s = to_f32(need(&tf, "d.scalar", TF_F32, 0, NULL));
    cr_assert(s[0] == 1.25f);
    free(a), free(h), free(c), free(s);
    tensorfile_close(&tf);
}

Test(tensorfile, refused_containers) {
    Err e;
    TensorFile tf;
    cr_assert(tensorfile_open(FIX "compressed.pth", &tf, &e) == -1);
    cr_assert(strstr(e.msg, "compressed (method 8)"), "%s", e.msg);
    cr_assert(tensorfile_open(FIX "legacy.pth", &tf, &e) == -1);
    cr_assert(strstr(e.msg, "bare pickle"), "%s", e.msg);
    cr_assert(tensorfile_open(FIX "does_not_exist.pth", &tf, &e) == -1);
    cr_assert(strstr(e.msg, "cannot open"), "%s", e.msg);
    cr_assert(tensorfile_open(FIX, &tf, &e) == -1);
    cr_assert(strstr(e.msg, "not a regular file"), "%s", e.msg);
    must_fail((const uint8_t *)"hello, this is not a checkpoint at all", 38, "header length", "text file");
    must_fail((const uint8_t *)"PK\x03\x04garbage", 11, "end-of-central-directory", "zip magic, no zip");
    must_fail((const uint8_t *)"", 0, "too short", "empty buffer");
}

/* ---- writers: round trips --------------------------------------------------------------------------- */
enum { NT = 6 };
static float rt_a[7 * 5], rt_b[33], rt_c[2 * 3 * 2 * 2], rt_s[1];
static TfOut rt_out[NT];

static void rt_setup(void) {
    uint32_t r = 12345;
    for (int i = 0; i < 35; i++) { r = r * 1664525u + 1013904223u; rt_a[i] = ((int32_t)r / 2147483648.0f) * 3.0f; }
    for (int i = 0; i < 33; i++) rt_b[i] = ldexpf(1.0f + i / 33.0f, i - 20); /* wide range, subnormal f16 */
    for (int i = 0; i < 24; i++) rt_c[i] = i - 11.5f;
    rt_s[0] = 3.14159265f;
    rt_out[0] = (TfOut){"emb.weight", 2, {7, 5}, rt_a};
    rt_out[1] = (TfOut){"blocks.0.ln1.weight", 1, {33}, rt_b};
    rt_out[2] = (TfOut){"four.d", 4, {2, 3, 2, 2}, rt_c};
    rt_out[3] = (TfOut){"scalar", 0, {0}, rt_s};
    rt_out[4] = (TfOut){"empty", 2, {0, 3}, NULL};
    rt_out[5] = (TfOut){"name with \"quotes\" \\ and \xc3\xa9", 1, {2}, rt_a};
}

static float expect(float x, TfDType dt) {
    return dt == TF_F32 ? x : dt == TF_F16 ? tf_f16_to_f32(tf_f32_to_f16(x)) : tf_bf16_to_f32(tf_f32_to_bf16(x));
}

static void rt_check(const char *path, TfDType dt) {
    TensorFile tf;
    Err e;
    cr_assert(tensorfile_open(path, &tf, &e) == 0, "%s: %s", path, e.msg);
    cr_assert_eq(tf.n, NT);
    for (int i = 0; i < NT; i++) {
        cr_assert_str_eq(tf.t[i].name, rt_out[i].name);
        const TfTensor *t = need(&tf, rt_out[i].name, dt, rt_out[i].ndim, rt_out[i].shape);
        if (strstr(path, ".pth"))
            cr_assert(((const uint8_t *)t->storage - (const uint8_t *)tf.map) % 64 == 0, "64-byte alignment");
        float *x = to_f32(t);
        for (int64_t k = 0; k < tf_numel(t); k++) {
            float want = expect(rt_out[i].data[k], dt), ref = rt_out[i].data[k];
            cr_assert(memcmp(&x[k], &want, 4) == 0, "%s %s[%lld]: %g != %g", path, t->name, (long long)k, x[k], want);
            /* and the rounding is to nearest: error at most half an ulp of the stored format */
            if (dt != TF_F32 && fabsf(ref) > 6.2e-5f && fabsf(ref) < 6e4f)
                cr_assert(fabsf(x[k] - ref) <= fabsf(ref) * (dt == TF_F16 ? 0x1p-11f : 0x1p-8f));
        }
        free(x);
    }
    tensorfile_close(&tf);
}

Test(tensorfile, roundtrip_pth_and_safetensors_all_dtypes, .init = mk_tmpdir, .fini = rm_tmpdir) {
    rt_setup();
    for (int d = 0; d < 3; d++) {
        char p[128], s[128];
        snprintf(p, sizeof p, "%s/model_%s.pth", tmpdir, tf_dtype_name((TfDType)d));
        snprintf(s, sizeof s, "%s/model_%s.safetensors", tmpdir, tf_dtype_name((TfDType)d));
        Err e;
        cr_assert(pth_write(p, rt_out, NT, (TfDType)d, &e) == 0, "%s", e.msg);
        cr_assert(safetensors_write(s, rt_out, NT, (TfDType)d, &e) == 0, "%s", e.msg);
        rt_check(p, (TfDType)d);
        rt_check(s, (TfDType)d);
        /* the archive is named after the file stem; storages are 64-byte aligned */
        size_t n;
        uint8_t *b = read_all(p, &n);
        char stem[64];
        snprintf(stem, sizeof stem, "model_%s/data.pkl", tf_dtype_name((TfDType)d));
        cr_assert(memmem(b, n, stem, strlen(stem)), "archive name");
        cr_assert(memmem(b, n, "FloatStorage", 12) || d != TF_F32);
        cr_assert(memmem(b, n, "BFloat16Storage", 15) || d != TF_BF16);
        free(b);
    }
}

Test(tensorfile, roundtrip_forced_zip64, .init = mk_tmpdir, .fini = rm_tmpdir) {
    rt_setup();
    char p[128];
    snprintf(p, sizeof p, "%s/z64.pth", tmpdir);
    Err e;
    int64_t old = tf_zip64_limit;
    tf_zip64_limit = 0; /* every size and offset takes the ZIP64 path, as in a > 4 GiB file */
    int rc = pth_write(p, rt_out, NT, TF_BF16, &e);
    tf_zip64_limit = old;
    cr_assert(rc == 0, "%s", e.msg);
    size_t n;
    uint8_t *b = read_all(p, &n);
    cr_assert(memmem(b, n, "PK\x06\x06", 4) && memmem(b, n, "PK\x06\x07", 4), "ZIP64 end record and locator");
    free(b);
    rt_check(p, TF_BF16);
}

Test(tensorfile, writer_errors, .init = mk_tmpdir, .fini = rm_tmpdir) {
    rt_setup();
    Err e;
    TfOut dup[2] = {rt_out[0], rt_out[0]};
    cr_assert(pth_write("/tmp/never.pth", dup, 2, TF_F32, &e) == -1 && strstr(e.msg, "twice"), "%s", e.msg);
    TfOut five = {"x", 5, {1, 1, 1, 1}, rt_a};
    cr_assert(safetensors_write("/tmp/never.st", &five, 1, TF_F32, &e) == -1 && strstr(e.msg, "ndim"), "%s", e.msg);
    cr_assert(pth_write("/nonexistent_dir/x.pth", rt_out, 1, TF_F32, &e) == -1 && strstr(e.msg, "cannot create"), "%s", e.msg);
    cr_assert(safetensors_write("/nonexistent_dir/x.st", rt_out, 1, TF_F32, &e) == -1 && strstr(e.msg, "cannot create"));
    cr_assert(access("/tmp/never.pth", F_OK) != 0 && access("/tmp/never.st", F_OK) != 0);
    /* an empty state dict is valid */
    char p[128];
    snprintf(p, sizeof p, "%s/empty.pth", tmpdir);
    cr_assert(pth_write(p, NULL, 0, TF_F32, &e) == 0, "%s", e.msg);
    TensorFile tf;
    cr_assert(tensorfile_open(p, &tf, &e) == 0 && tf.n == 0, "%s", e.msg);
    tensorfile_close(&tf);
}

/* ---- truncation and byte flips ------------------------------------------------------------------- */
static void all_cuts(const char *path, size_t step) {
    size_t n;
    uint8_t *b = read_all(path, &n);
    cr_assert(b, "%s", path);
    cr_assert_eq(open_and_touch(b, n), 0, "%s must open whole", path);
    int fails = 0;
    for (size_t cut = 0; cut < n; cut += (cut < 4096 ? 1 : step)) {
        char what[64];
        snprintf(what, sizeof what, "%s cut at %zu", strrchr(path, '/') + 1, cut);
        uint8_t *c = malloc(cut ? cut : 1);
        memcpy(c, b, cut);
        TensorFile tf;
        Err e = {{0}};
        int rc = tensorfile_open_mem(c, cut, &tf, &e);
        cr_assert(rc == -1 && e.msg[0], "%s: a truncated file must be refused", what);
        if (verbose() && cut % 997 == 0) printf("  %-34s -> %s\n", what, e.msg);
        free(c);
        fails++;
    }
    free(b);
    cr_assert(fails > 0);
}

Test(tensorfile, truncated_files_every_cut, .init = mk_tmpdir, .fini = rm_tmpdir) {
    rt_setup();
    char p[128], s[128];
    snprintf(p, sizeof p, "%s/t.pth", tmpdir);
    snprintf(s, sizeof s, "%s/t.safetensors", tmpdir);
    Err e;
    cr_assert(pth_write(p, rt_out, NT, TF_F16, &e) == 0);
    cr_assert(safetensors_write(s, rt_out, NT, TF_F16, &e) == 0);
    all_cuts(p, 1);
    all_cuts(s, 1);
    all_cuts(FIX "strided.pth", 1);
    all_cuts(FIX "zip64.pth", 1);
    all_cuts(FIX "ref.safetensors", 1);
    if (access("../shared/data/models/reverse_L2_x070.pth", R_OK) == 0)
        all_cuts("../shared/data/models/reverse_L2_x070.pth", 97);
}

Test(tensorfile, random_byte_flips_never_crash) {
    const char *files[] = {FIX "strided.pth", FIX "module_sd.pth", FIX "zip64.pth", FIX "ref.safetensors"};
    uint32_t r = 2024;
    for (int f = 0; f < 4; f++) {
        size_t n;
        uint8_t *b = read_all(files[f], &n);
        int ok = 0;
        for (int it = 0; it < 3000; it++) {
            uint8_t *c = malloc(n);
            memcpy(c, b, n);
            int flips = 1 + it % 4;
            for (int k = 0; k < flips; k++) {
                r = r * 1664525u + 1013904223u;
                size_t at = (r >> 8) % n;
                r = r * 1664525u + 1013904223u;
                c[at] = (it & 1) ? (uint8_t)(r >> 24) : c[at] ^ (uint8_t)(1u << (r >> 29));
            }
            ok += open_and_touch(c, n) == 0;
            free(c);
        }
        if (verbose()) printf("  %s: %d of 3000 mutants still open\n", files[f], ok);
        free(b);
    }
}

/* ---- hostile pickles -------------------------------------------------------------------------------- */
/* A stored zip with entries (no CRC: the reader does not check it). */
static TB make_zip(int n, const char *const *names, const TB *data) {
    TB z = {0}, cd = {0};
    for (int i = 0; i < n; i++) {
        uint64_t off = z.n;
        size_t nl = strlen(names[i]);
        tb_le(&z, 0x04034b50u, 4), tb_le(&z, 20, 2), tb_le(&z, 0, 2), tb_le(&z, 0, 2), tb_le(&z, 0, 4);
        tb_le(&z, 0, 4), tb_le(&z, data[i].n, 4), tb_le(&z, data[i].n, 4), tb_le(&z, nl, 2), tb_le(&z, 0, 2);
        tb_put(&z, names[i], nl);
        tb_put(&z, data[i].p, data[i].n);
        tb_le(&cd, 0x02014b50u, 4), tb_le(&cd, 20, 2), tb_le(&cd, 20, 2), tb_le(&cd, 0, 2), tb_le(&cd, 0, 2);
        tb_le(&cd, 0, 4), tb_le(&cd, 0, 4), tb_le(&cd, data[i].n, 4), tb_le(&cd, data[i].n, 4), tb_le(&cd, nl, 2);
        tb_le(&cd, 0, 2), tb_le(&cd, 0, 2), tb_le(&cd, 0, 2), tb_le(&cd, 0, 2), tb_le(&cd, 0, 4), tb_le(&cd, off, 4);
        tb_put(&cd, names[i], nl);
    }
    uint64_t cdo = z.n;
    tb_put(&z, cd.p, cd.n);
    tb_le(&z, 0x06054b50u, 4), tb_le(&z, 0, 4), tb_le(&z, (uint64_t)n, 2), tb_le(&z, (uint64_t)n, 2);
    tb_le(&z, cd.n, 4), tb_le(&z, cdo, 4), tb_le(&z, 0, 2);
    free(cd.p);
    return z;
}

static void pk_int(TB *b, int64_t x) {
    if (x >= 0 && x < 256) tb_u8(b, 'K'), tb_u8(b, (unsigned)x);
    else if (x >= INT32_MIN && x <= INT32_MAX) tb_u8(b, 'J'), tb_le(b, (uint64_t)x, 4);
    else tb_u8(b, 0x8a), tb_u8(b, 8), tb_le(b, (uint64_t)x, 8);
}
static void pk_str(TB *b, const char *s) { tb_u8(b, 'X'), tb_le(b, strlen(s), 4), tb_s(b, s); }
static void pk_global(TB *b, const char *mod, const char *name) {
    tb_u8(b, 'c'), tb_s(b, mod), tb_u8(b, '\n'), tb_s(b, name), tb_u8(b, '\n');
}

typedef struct {
    const char *rb_mod, *rb_name, *st_name, *key;
    int64_t numel, offset;
    int ndim, sdim;
    int64_t shape[6], stride[6];
    long storage_bytes; /* -1: no data/0 entry */
    const char *byteorder;
} PkSpec;

static PkSpec spec_ok(void) {
    return (PkSpec){"torch._utils", "_rebuild_tensor_v2", "FloatStorage", "w", 6, 0, 2, 2, {2, 3}, {3, 1}, 24, "little"};
}

static TB spec_pickle(const PkSpec *s) {
    TB b = {0};
    tb_u8(&b, 0x80), tb_u8(&b, 2), tb_u8(&b, '}'), tb_u8(&b, '(');
    pk_str(&b, s->key);
    pk_global(&b, s->rb_mod, s->rb_name);
    tb_u8(&b, '('), tb_u8(&b, '(');
    pk_str(&b, "storage"), pk_global(&b, "torch", s->st_name), pk_str(&b, "0"), pk_str(&b, "cpu"), pk_int(&b, s->numel);
    tb_u8(&b, 't'), tb_u8(&b, 'Q');
    pk_int(&b, s->offset);
    tb_u8(&b, '(');
    for (int i = 0; i < s->ndim; i++) pk_int(&b, s->shape[i]);
    tb_u8(&b, 't'), tb_u8(&b, '(');
    for (int i = 0; i < s->sdim; i++) pk_int(&b, s->stride[i]);
    tb_u8(&b, 't'), tb_u8(&b, 0x89);
    pk_global(&b, "collections", "OrderedDict"), tb_u8(&b, ')'), tb_u8(&b, 'R');
    tb_u8(&b, 't'), tb_u8(&b, 'R'), tb_u8(&b, 'u'), tb_u8(&b, '.');
    return b;
}

static TB pth_from_pickle(const TB *pk, long storage_bytes, const char *byteorder) {
    const char *names[3] = {"a/data.pkl", "a/byteorder", "a/data/0"};
    TB data[3] = {*pk, {0}, {0}};
    tb_s(&data[1], byteorder);
    if (storage_bytes > 0) {
        uint8_t *z = calloc((size_t)storage_bytes, 1);
        tb_put(&data[2], z, (size_t)storage_bytes);
        free(z);
    }
    TB zip = make_zip(storage_bytes >= 0 ? 3 : 2, names, data);
    free(data[1].p), free(data[2].p);
    return zip;
}

static void spec_fail(const PkSpec *s, const char *want, const char *what) {
    TB pk = spec_pickle(s), z = pth_from_pickle(&pk, s->storage_bytes, s->byteorder);
    must_fail(z.p, z.n, want, what);
    free(pk.p), free(z.p);
}

static void raw_fail(const char *pickle, size_t n, const char *want, const char *what) {
    TB pk = {0};
    tb_put(&pk, pickle, n);
    TB z = pth_from_pickle(&pk, 24, "little");
    must_fail(z.p, z.n, want, what);
    free(pk.p), free(z.p);
}
#define RAW(lit, want) raw_fail(lit, sizeof lit - 1, want, #lit)

Test(tensorfile, hostile_pickles) {
    PkSpec s = spec_ok();
    { /* the hand-built baseline opens */
        TB pk = spec_pickle(&s), z = pth_from_pickle(&pk, 24, "little");
        cr_assert_eq(open_and_touch(z.p, z.n), 0);
        free(pk.p), free(z.p);
    }
    s = spec_ok(), s.rb_mod = "os", s.rb_name = "system";
    spec_fail(&s, "refusing to load: pickle references os.system", "GLOBAL os system");
    s = spec_ok(), s.rb_mod = "builtins", s.rb_name = "eval";
    spec_fail(&s, "pickle references builtins.eval", "GLOBAL builtins eval");
    s = spec_ok(), s.rb_mod = "torch._utils", s.rb_name = "_rebuild_parameter";
    spec_fail(&s, "refusing to load", "GLOBAL _rebuild_parameter");
    s = spec_ok(), s.st_name = "DoubleStorage";
    spec_fail(&s, "unsupported dtype: storage type torch.DoubleStorage", "DoubleStorage");
    s = spec_ok(), s.st_name = "LongStorage";
    spec_fail(&s, "unsupported dtype", "LongStorage");
    s = spec_ok(), s.numel = (int64_t)1 << 62;
    spec_fail(&s, "claims", "huge storage numel");
    s = spec_ok(), s.numel = -5;
    spec_fail(&s, "negative storage size", "negative numel");
    s = spec_ok(), s.shape[0] = s.shape[1] = (int64_t)1 << 40, s.stride[0] = (int64_t)1 << 40;
    spec_fail(&s, "overflows", "huge shape");
    s = spec_ok(), s.stride[0] = s.stride[1] = (int64_t)1 << 62;
    spec_fail(&s, "overflows", "huge stride");
    s = spec_ok(), s.stride[0] = -3;
    spec_fail(&s, "must be >= 0", "negative stride");
    s = spec_ok(), s.shape[0] = -2;
    spec_fail(&s, "must be >= 0", "negative size");
    s = spec_ok(), s.shape[0] = 3;
    spec_fail(&s, "holds only 6", "storage too small for shape");
    s = spec_ok(), s.ndim = s.sdim = 1, s.shape[0] = 1000000, s.stride[0] = 0;
    spec_fail(&s, "broadcast views are not read", "stride-0 view of 10^6 elements");
    s = spec_ok(), s.stride[0] = 4;
    spec_fail(&s, "reach element 6", "row stride past the storage");
    s = spec_ok(), s.offset = 1;
    spec_fail(&s, "reach element 6", "offset past the storage");
    s = spec_ok(), s.offset = -1;
    spec_fail(&s, "negative storage offset", "negative offset");
    s = spec_ok(), s.storage_bytes = 20;
    spec_fail(&s, "holds 20 bytes", "storage entry too short");
    s = spec_ok(), s.storage_bytes = -1;
    spec_fail(&s, "has no zip entry 'a/data/0'", "missing storage entry");
    s = spec_ok(), s.ndim = s.sdim = 5;
    spec_fail(&s, "at most 4 ints", "five dimensions");
    s = spec_ok(), s.sdim = 1;
    spec_fail(&s, "different lengths", "stride/size length mismatch");
    s = spec_ok(), s.byteorder = "big";
    spec_fail(&s, "only little-endian", "byteorder big");
    char longkey[200];
    memset(longkey, 'k', 199), longkey[199] = 0;
    s = spec_ok(), s.key = longkey;
    spec_fail(&s, "longer than 159 bytes", "key too long");

    RAW("\x80\x02" "cos\nsystem\nX\x02\x00\x00\x00lsR.", "refusing to load: pickle references os.system");
    RAW("\x80\x02" "cbuiltins\ngetattr\n.", "builtins.getattr");
    RAW("\x80\x02" "ccollections\nOrderedDict\nK\x01\x85R.", "OrderedDict called with arguments");
    RAW("\x80\x02" "ctorch\nFloatStorage\n)R.", "REDUCE calls a storage type");
    RAW("\x80\x02" "})R.", "REDUCE on something other than");
    RAW("\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n)R.", "other than 6 or 7 arguments");
    RAW("\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n(K\x01K\x02K\x03K\x04K\x05K\x06tR.", "arguments are not");
    RAW("\x80\x02" "}i__main__\nX\n.", "unsupported pickle opcode 0x69");
    RAW("\x80\x02" "}G\x3f\xf0\x00\x00\x00\x00\x00\x00.", "unsupported pickle opcode 0x47");
    RAW("\x80\x02" "}", "ends without STOP");
    RAW("\x80\x02" "t.", "no MARK");
    RAW("\x80\x02" "R.", "stack underflow");
    RAW("\x80\x02" "(.", "stack underflow");
    RAW("\x80\x02" "h\x05.", "memo get of an unset index");
    RAW("\x80\x02" "}r\xff\xff\xff\xff.", "memo index out of range");
    RAW("\x80\x02" "].", "not a dict");
    RAW("\x80\x02" "}(X\x01\x00\x00\x00" "aK\x01u.", "value of 'a' is not a tensor");
    RAW("\x80\x02" "}(K\x01K\x01u.", "key 0 is not a string");
    RAW("\x80\x02" "X\xff\xff\xff\x7f", "runs past the end");
    RAW("\x80\x02" "\x8a\x09\x01\x01\x01\x01\x01\x01\x01\x01\x01.", "wider than 64 bits");
    RAW("\x80\x02" "](K\x01K\x02u.", "not a dict");
    RAW("\x80\x02" "}(K\x01u.", "odd number");
    RAW("\x80\x02" "]}b.", "BUILD on something that is not a dict");
    RAW("\x80\x02" "}K\x01" "a.", "APPEND(S) on something that is not a list");
    RAW("\x80\x01" "}.", "unsupported pickle protocol");
    RAW("\x80\x02" "(X\x07\x00\x00\x00storageK\x01tQ.", "persistent id is not");
    RAW("\x80\x02" "cos\nsys", "GLOBAL without two newline-terminated names");
    RAW("\x80\x02" "}X\x01\x00\x00\x00" "a}sX\x01\x00\x00\x00" "a}s.", "not a tensor");
    RAW("\x80\x02" "]K\x01" "a}X\x01\x00\x00\x00" "a}s.", "");
    { /* a MARK bomb and a deep tuple nest: bounded, no recursion */
        TB b = {0};
        tb_u8(&b, 0x80), tb_u8(&b, 2);
        for (int i = 0; i < 100000; i++) tb_u8(&b, '(');
        tb_u8(&b, '.');
        TB z = pth_from_pickle(&b, 24, "little");
        must_fail(z.p, z.n, "stack underflow", "100000 MARKs");
        free(z.p);
        b.n = 2;
        tb_u8(&b, ')');
        for (int i = 0; i < 100000; i++) tb_u8(&b, 0x85);
        tb_u8(&b, '.');
        z = pth_from_pickle(&b, 24, "little");
        must_fail(z.p, z.n, "not a dict", "100000 nested tuples");
        free(z.p), free(b.p);
    }
    { /* duplicate key: the same key set twice in one SETITEMS */
        PkSpec d = spec_ok();
        TB pk = spec_pickle(&d), one = {0};
        size_t head = 4, tailn = 2; /* PROTO 2, EMPTY_DICT, MARK | ... | SETITEMS, STOP */
        tb_put(&one, pk.p, pk.n - tailn);
        tb_put(&one, pk.p + head, pk.n - head - tailn);
        tb_put(&one, "u.", 2);
        TB z = pth_from_pickle(&one, 24, "little");
        must_fail(z.p, z.n, "tensor name 'w' appears twice", "duplicate key");
        free(pk.p), free(one.p), free(z.p);
    }
    { /* no data.pkl, and a zip whose central directory points outside the file */
        const char *names[1] = {"a/other"};
        TB d = {0};
        tb_s(&d, "x");
        TB z = make_zip(1, names, &d);
        must_fail(z.p, z.n, "no '<archive>/data.pkl'", "zip without data.pkl");
        z.p[z.n - 3] = 0xff; /* central directory offset, high byte */
        must_fail(z.p, z.n, "outside", "central directory out of range");
        free(z.p), free(d.p);
    }
}

/* ---- malformed safetensors -------------------------------------------------------------------------- */
static void st_fail(const char *json, size_t data_len, uint64_t hlen_override, const char *want, const char *what) {
    TB b = {0};
    size_t h = strlen(json);
    tb_le(&b, hlen_override ? hlen_override : h, 8);
    tb_s(&b, json);
    for (size_t i = 0; i < data_len; i++) tb_u8(&b, 0);
    must_fail(b.p, b.n, want, what);
    free(b.p);
}

Test(tensorfile, malformed_safetensors) {
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    { /* baseline opens */
        TB b = {0};
        tb_le(&b, strlen(ok), 8), tb_s(&b, ok), tb_le(&b, 0, 8);
        cr_assert_eq(open_and_touch(b.p, b.n), 0);
        free(b.p);
    }
    st_fail(ok, 8, 1000, "exceeds", "header length > file");
    st_fail(ok, 8, (uint64_t)1 << 63, "exceeds", "header length 2^63");
    st_fail("   ", 0, 0, "does not start with '{'", "header of spaces");
    st_fail("{\"a\":", 8, 0, "not valid JSON", "truncated JSON");
    st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, 0, "lacks", "no data_offsets");
    st_fail("{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, 0, "unsupported dtype 'F64'", "F64");
    st_fail("{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, 0, "unsupported dtype 'I64'", "I64");
    st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,1000]}}", 8, 0, "data_offsets", "end past data");
    st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, 0, "data_offsets", "begin > end");
    st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0.5,8]}}", 8, 0, "data_offsets", "fractional");
    st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, 0, "data_offsets", "negative offset");
    st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8, 0, "need 8", "size mismatch");
    st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 8, 0, "shape[0]", "negative shape");
    st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, 0, "shape[0]", "string shape");
    st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[9007199254740992,9007199254740992],\"data_offsets\":[0,8]}}", 8, 0,
            "overflows", "shape overflow");
    st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", 8, 0, "at most 4", "5-D");
    st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, 0, "overlap", "overlap");
    st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, 0, "appears twice", "duplicate name");
    st_fail("{\"__metadata__\":[1],\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0,
            "__metadata__", "metadata not an object");
    st_fail("{\"a\":3}", 0, 0, "lacks", "entry not an object");
    char big[400];
    snprintf(big, sizeof big, "{\"%0200d\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 7);
    st_fail(big, 8, 0, "longer than", "name too long");
    { /* deep JSON nesting is bounded by cJSON */
        TB j = {0};
        tb_s(&j, "{\"a\":");
        for (int i = 0; i < 5000; i++) tb_u8(&j, '[');
        tb_u8(&j, 0);
        st_fail((const char *)j.p, 0, 0, "not valid JSON", "5000-deep nesting");
        free(j.p);
    }
}

/* ---- a small file declaring a huge tensor: refused before anything is allocated, naming the tensor ---- */
Test(tensorfile, huge_declared_tensor_past_the_end_is_named) {
    PkSpec s = spec_ok();
    s.key = "blocks.0.att.w1", s.numel = (int64_t)1 << 30, s.storage_bytes = 20000; /* a ~20 KB file */
    s.shape[0] = 1, s.shape[1] = (int64_t)1 << 30, s.stride[0] = (int64_t)1 << 30, s.stride[1] = 1;
    spec_fail(&s, "tensor 'blocks.0.att.w1' [1,1073741824] F32: its storage claims 1073741824 elements (4.295 GB) but "
                  "holds 20000 bytes in the file: the data would lie beyond the end of the file", "pth: 2^30 elements");
    st_fail("{\"blocks.0.att.w1\":{\"dtype\":\"BF16\",\"shape\":[1024,1048576],\"data_offsets\":[0,2147483648]}}", 20000, 0,
            "tensor 'blocks.0.att.w1' [1024,1048576] BF16: data_offsets [0, 2147483648] reach beyond the end of the file, "
            "whose data section holds 20000 bytes", "safetensors: 2^30 elements");
}
