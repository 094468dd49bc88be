/* test_loader_strict.c -- building a model from a .pth / .safetensors accounts for every tensor, checks
 * memory before allocating, and reads each shared storage once (core/io/model_io.h).
 *
 * Files are derived in the test from the committed fixture tests/fixtures/ckpt/l3_f32.safetensors (3 layers,
 * C=32): one tensor removed, one added, a LoRA factor declared [0, 2^30], a storage claiming more than the
 * file holds, and a .pth whose tensors all view ONE storage (as torch.save writes views of one tensor).
 * Each must either load with exactly the fixture's parameters or fail with a message that names the file
 * and the tensor. RWKVLAB_MEM_AVAILABLE rehearses a small machine.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "model_io.h"
#include "rwkv7.h"
#include "testutil.h"

#define L3 "tests/fixtures/ckpt/l3_f32.safetensors"

static char tmpdir[64];
static void mk_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rwkvlab_ld_XXXXXX");
    cr_assert(mkdtemp(tmpdir));
    unsetenv("RWKVLAB_ALLOW_UNKNOWN_TENSORS");
    unsetenv("RWKVLAB_FORCE_MEMORY");
    unsetenv("RWKVLAB_MEM_AVAILABLE");
}
static void rm_tmpdir(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd)) {}
}

/* The fixture's tensors as f32 arrays (file order). */
typedef struct {
    int n;
    TfOut t[256];
    float *data[256];
} Sd;

static void sd_read(Sd *s, const char *path) {
    TensorFile tf;
    Err e;
    cr_assert(tensorfile_open(path, &tf, &e) == 0, "%s", e.msg);
    cr_assert(tf.n <= 250);
    memset(s, 0, sizeof *s);
    for (int i = 0; i < tf.n; i++) {
        const TfTensor *t = &tf.t[i];
        int64_t k = tf_numel(t);
        s->data[i] = malloc((size_t)(k ? k : 1) * sizeof(float));
        tf_to_f32(t, s->data[i]);
        s->t[i] = (TfOut){strdup(t->name), t->ndim, {0}, s->data[i]};
        for (int d = 0; d < t->ndim; d++) s->t[i].shape[d] = t->shape[d];
    }
    s->n = tf.n;
    tensorfile_close(&tf);
}
static void sd_free(Sd *s) {
    for (int i = 0; i < s->n; i++) free((char *)s->t[i].name), free(s->data[i]);
    s->n = 0;
}
static int sd_index(const Sd *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->t[i].name, name)) return i;
    cr_assert_fail("fixture has no tensor '%s'", name);
    return -1;
}
static void sd_remove(Sd *s, const char *name) {
    int i = sd_index(s, name);
    free((char *)s->t[i].name), free(s->data[i]);
    memmove(&s->t[i], &s->t[i + 1], (size_t)(s->n - i - 1) * sizeof s->t[0]);
    memmove(&s->data[i], &s->data[i + 1], (size_t)(s->n - i - 1) * sizeof s->data[0]);
    s->n--;
}
static float extra_data[6] = {1, 2, 3, 4, 5, 6};
static void sd_add_extra(Sd *s, const char *name) {
    float *d = malloc(sizeof extra_data);
    memcpy(d, extra_data, sizeof extra_data);
    s->data[s->n] = d;
    s->t[s->n++] = (TfOut){strdup(name), 2, {2, 3}, d};
}
static void sd_write(const Sd *s, const char *path) {
    Err e;
    int pth = strstr(path, ".pth") != NULL;
    cr_assert((pth ? pth_write : safetensors_write)(path, s->t, s->n, TF_F32, &e) == 0, "%s", e.msg);
}

static void path_in(char *p, size_t n, const char *name) { snprintf(p, n, "%s/%s", tmpdir, name); }

/* load must fail; the message must hold every string of want[] (NULL-terminated) */
static void load_fails(const char *path, const ModelLoadOpts *o, const char *const *want) {
    Model *m = (Model *)1;
    Err e = {{0}};
    int rc = model_load_with(path, o, &m, &e);
    cr_assert(rc != 0, "%s: loaded, but must be refused", path);
    cr_assert(m == NULL, "%s: *out must be NULL after a failure", path);
    for (int i = 0; want[i]; i++) cr_assert(strstr(e.msg, want[i]), "%s: message \"%s\" lacks \"%s\"", path, e.msg, want[i]);
    if (getenv("TF_TEST_VERBOSE")) printf("  refused: %s\n", e.msg);
}

/* parameters of a loaded model equal those of the fixture, tensor by tensor */
static void same_params(const Model *a, const Model *b) {
    cr_assert_eq(a->nparams, b->nparams);
    cr_assert(a->arch == b->arch && !memcmp(a->dims, b->dims, a->arch->dims_size), "dims differ");
    cr_assert(!memcmp(a->params, b->params, a->nparams * sizeof(real)), "parameters differ");
}

static Model *load_ok(const char *path, const ModelLoadOpts *o) {
    Model *m = NULL;
    Err e;
    cr_assert(model_load_with(path, o, &m, &e) == 0, "%s: %s", path, e.msg);
    return m;
}

/* ---- item 12: every tensor accounted for ---------------------------------------------------------- */
Test(loader_strict, existing_fixtures_load_strictly, .init = mk_tmpdir, .fini = rm_tmpdir) {
    const char *files[] = {L3, "tests/fixtures/ckpt/tiny_f32.safetensors", "tests/fixtures/ckpt/n64_bf16.safetensors",
                           "tests/fixtures/ckpt/n64_bf16.pth", "../shared/data/models/reverse_L2_x070.pth"};
    const int layers[] = {3, 2, 2, 2, 2};
    ModelLoadOpts strict = {0}; /* allow_unknown = 0 */
    for (int i = 0; i < 5; i++) {
        if (access(files[i], R_OK)) continue; /* the real model lives outside the repository */
        Model *m = load_ok(files[i], &strict);
        cr_assert_eq(m->L, layers[i], "%s: L = %d", files[i], m->L);
        model_free(m);
    }
}

Test(loader_strict, missing_tensor_of_layer_1_is_named, .init = mk_tmpdir, .fini = rm_tmpdir) {
    /* blocks.1.ln1.weight: the old loader counted layers up to it and loaded a 1-layer model */
    const char *gone[] = {"blocks.1.ln1.weight", "blocks.1.att.key.weight", "blocks.2.ffn.value.weight",
                          "blocks.0.att.w1", "ln_out.bias"};
    for (int k = 0; k < 5; k++) {
        for (int fmt = 0; fmt < 2; fmt++) {
            Sd s;
            sd_read(&s, L3);
            sd_remove(&s, gone[k]);
            char p[128], q[160];
            path_in(p, sizeof p, fmt ? "missing.pth" : "missing.safetensors");
            sd_write(&s, p);
            snprintf(q, sizeof q, "missing tensor '%s'", gone[k]);
            load_fails(p, NULL, (const char *[]){p, q, NULL});
            sd_free(&s);
        }
    }
    /* and the CLI exits nonzero with that message (it used to print a 1-layer model and exit 0) */
    Sd s;
    sd_read(&s, L3);
    sd_remove(&s, "blocks.1.ln1.weight");
    char p[128], cmd[512];
    path_in(p, sizeof p, "missing.safetensors");
    sd_write(&s, p);
    sd_free(&s);
    snprintf(cmd, sizeof cmd, "%s info %s > %s/out.txt 2>&1", rwkvlab_bin(), p, tmpdir);
    cr_assert_neq(sh(cmd), 0, "info on a file missing blocks.1.ln1.weight must fail");
    snprintf(cmd, sizeof cmd, "grep -q \"missing tensor 'blocks.1.ln1.weight'\" %s/out.txt", tmpdir);
    cr_assert_eq(sh(cmd), 0, "CLI message lacks the missing tensor's name");
}

/* every single tensor of the fixture is needed: dropping any one of them is refused, naming it */
Test(loader_strict, each_tensor_is_needed, .init = mk_tmpdir, .fini = rm_tmpdir) {
    Sd all;
    sd_read(&all, L3);
    char p[128];
    path_in(p, sizeof p, "drop.safetensors");
    for (int k = 0; k < all.n; k++) {
        TfOut t[256];
        int n = 0;
        for (int i = 0; i < all.n; i++)
            if (i != k) t[n++] = all.t[i];
        Err e;
        cr_assert(safetensors_write(p, t, n, TF_F32, &e) == 0, "%s", e.msg);
        Model *m = NULL;
        cr_assert(model_load_with(p, NULL, &m, &e) != 0, "loaded without '%s'", all.t[k].name);
        char q[200];
        snprintf(q, sizeof q, "'%s'", all.t[k].name);
        cr_assert(strstr(e.msg, q), "without '%s': message \"%s\" does not name it", all.t[k].name, e.msg);
    }
    sd_free(&all);
}

Test(loader_strict, unknown_tensor_refused_unless_allowed, .init = mk_tmpdir, .fini = rm_tmpdir) {
    Model *ref = load_ok(L3, NULL);
    const char *extra[] = {"blocks.1.att.surprise", "model.extra_head", "blocks.7.ln1.weight"};
    for (int k = 0; k < 3; k++) {
        Sd s;
        sd_read(&s, L3);
        sd_add_extra(&s, extra[k]);
        char p[128], q[160];
        path_in(p, sizeof p, k == 1 ? "extra.pth" : "extra.safetensors");
        sd_write(&s, p);
        sd_free(&s);
        if (k < 2) {
            snprintf(q, sizeof q, "tensor '%s' [2,3] is not part of the model (RWKV-7", extra[k]);
            load_fails(p, NULL, (const char *[]){p, q, "--allow-unknown-tensors", NULL});
            ModelLoadOpts allow = {.allow_unknown = 1};
            Model *m = load_ok(p, &allow);
            same_params(m, ref);
            model_free(m);
            setenv("RWKVLAB_ALLOW_UNKNOWN_TENSORS", "1", 1); /* the environment's default, for opts = NULL */
            m = load_ok(p, NULL);
            same_params(m, ref);
            model_free(m);
            unsetenv("RWKVLAB_ALLOW_UNKNOWN_TENSORS");
        } else { /* a stray key of a layer 7 makes the file too small for 8 layers: refused, never allowed */
            load_fails(p, NULL, (const char *[]){"blocks.7.ln1.weight", "names layer 7", NULL});
        }
    }
    model_free(ref);
}

Test(loader_strict, absurd_layer_index_refused_quickly, .init = mk_tmpdir, .fini = rm_tmpdir) {
    Sd s;
    sd_read(&s, L3);
    sd_add_extra(&s, "blocks.99999999.ln1.weight");
    char p[128];
    path_in(p, sizeof p, "layer_bomb.safetensors");
    sd_write(&s, p);
    sd_free(&s);
    load_fails(p, &(ModelLoadOpts){.allow_unknown = 1}, (const char *[]){"names layer 99999999", NULL});
}

/* ---- item 17: huge declarations refused before allocating ------------------------------------------ */
Test(loader_strict, empty_but_huge_lora_factor_refused_before_allocation, .init = mk_tmpdir, .fini = rm_tmpdir) {
    /* a [0, 2^30] tensor holds no data, so the file stays small; the old loader took Dw = 2^30 from it and
     * died allocating a 400 GB model ("out of memory at rwkv7.c") */
    Sd s;
    sd_read(&s, L3);
    int i = sd_index(&s, "blocks.0.att.w1");
    s.t[i].shape[0] = 0, s.t[i].shape[1] = (int64_t)1 << 30;
    char p[128];
    path_in(p, sizeof p, "w1_huge.safetensors");
    sd_write(&s, p);
    sd_free(&s);
    load_fails(p, NULL, (const char *[]){p, "'blocks.0.att.w1' has shape [0,1073741824]", "[C, D] with C = 32", NULL});
    path_in(p, sizeof p, "w1_huge.pth");
    sd_read(&s, L3);
    i = sd_index(&s, "blocks.0.att.w1");
    s.t[i].shape[0] = 0, s.t[i].shape[1] = (int64_t)1 << 30;
    sd_write(&s, p);
    sd_free(&s);
    load_fails(p, NULL, (const char *[]){"'blocks.0.att.w1' has shape [0,1073741824]", NULL});
}

Test(loader_strict, model_larger_than_available_memory, .init = mk_tmpdir, .fini = rm_tmpdir) {
    ModelLoadStats st = {0};
    Model *m = load_ok(L3, &(ModelLoadOpts){.stats = &st});
    /* the estimate: the parameters as `real` plus the largest storage mapped at once */
    cr_assert(st.need_bytes >= m->nparams * sizeof(real), "estimate %zu below the parameters' %zu bytes", st.need_bytes,
              m->nparams * sizeof(real));
    cr_assert(st.need_bytes <= m->nparams * sizeof(real) + 64 * 1024, "estimate %zu", st.need_bytes);
    model_free(m);
    setenv("RWKVLAB_MEM_AVAILABLE", "100000", 1); /* a machine with 100 kB free; the model needs ~256 kB */
    load_fails(L3, NULL, (const char *[]){"loading '" L3 "'", "needs about", "only 97.7 KiB is available",
                                          "RWKVLAB_FORCE_MEMORY=1", NULL});
    m = load_ok(L3, &(ModelLoadOpts){.force_memory = 1}); /* forced: a warning, and it loads */
    model_free(m);
    setenv("RWKVLAB_FORCE_MEMORY", "1", 1);
    m = load_ok(L3, NULL);
    model_free(m);
    unsetenv("RWKVLAB_FORCE_MEMORY");
    unsetenv("RWKVLAB_MEM_AVAILABLE");
}

/* ---- .pth whose tensors are views of ONE storage ---------------------------------------------------- */
typedef struct {
    uint8_t *p;
    size_t n, cap;
} Buf;
static void put(Buf *b, const void *s, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        cr_assert(b->p);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void u8(Buf *b, unsigned x) { uint8_t c = (uint8_t)x; put(b, &c, 1); }
static void le(Buf *b, uint64_t x, int k) {
    for (int i = 0; i < k; i++) u8(b, (unsigned)(x >> (8 * i)) & 0xff);
}
static void pstr(Buf *b, const char *s) { u8(b, 'X'), le(b, strlen(s), 4), put(b, s, strlen(s)); }
static void pint(Buf *b, int64_t x) {
    if (x >= 0 && x < 256) u8(b, 'K'), u8(b, (unsigned)x);
    else u8(b, 0x8a), u8(b, 8), le(b, (uint64_t)x, 8);
}
static void pglobal(Buf *b, const char *mod, const char *name) {
    u8(b, 'c'), put(b, mod, strlen(mod)), u8(b, '\n'), put(b, name, strlen(name)), u8(b, '\n');
}

/* A torch.save-like zip: data.pkl maps each tensor of s to _rebuild_tensor_v2 over storage key
 * storage_of[i] at offset offset_of[i] (contiguous strides); storages[k] (nstor of them) are f32 data. */
static void write_views_pth(const char *path, const Sd *s, const int *storage_of, const int64_t *offset_of,
                            const float *const *storages, const int64_t *storage_numel, int nstor) {
    Buf pk = {0};
    u8(&pk, 0x80), u8(&pk, 2);
    pglobal(&pk, "collections", "OrderedDict"), u8(&pk, ')'), u8(&pk, 'R'), u8(&pk, '(');
    for (int i = 0; i < s->n; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", storage_of[i]);
        pstr(&pk, s->t[i].name);
        pglobal(&pk, "torch._utils", "_rebuild_tensor_v2");
        u8(&pk, '('), u8(&pk, '(');
        pstr(&pk, "storage"), pglobal(&pk, "torch", "FloatStorage"), pstr(&pk, key), pstr(&pk, "cpu");
        pint(&pk, storage_numel[storage_of[i]]);
        u8(&pk, 't'), u8(&pk, 'Q');
        pint(&pk, offset_of[i]);
        int64_t st[4], acc = 1;
        for (int d = s->t[i].ndim - 1; d >= 0; d--) st[d] = acc, acc *= s->t[i].shape[d];
        u8(&pk, '(');
        for (int d = 0; d < s->t[i].ndim; d++) pint(&pk, s->t[i].shape[d]);
        u8(&pk, 't'), u8(&pk, '(');
        for (int d = 0; d < s->t[i].ndim; d++) pint(&pk, st[d]);
        u8(&pk, 't'), u8(&pk, 0x89);
        pglobal(&pk, "collections", "OrderedDict"), u8(&pk, ')'), u8(&pk, 'R');
        u8(&pk, 't'), u8(&pk, 'R');
    }
    u8(&pk, 'u'), u8(&pk, '.');
    int ne = 1 + nstor;
    char names[64][32];
    const void *data[64];
    uint64_t size[64];
    cr_assert(ne <= 64);
    snprintf(names[0], 32, "a/data.pkl"), data[0] = pk.p, size[0] = pk.n;
    for (int k = 0; k < nstor; k++)
        snprintf(names[1 + k], 32, "a/data/%d", k), data[1 + k] = storages[k], size[1 + k] = (uint64_t)storage_numel[k] * 4;
    Buf z = {0}, cd = {0};
    for (int i = 0; i < ne; i++) {
        uint64_t off = z.n;
        size_t nl = strlen(names[i]);
        le(&z, 0x04034b50u, 4), le(&z, 20, 2), le(&z, 0, 2), le(&z, 0, 2), le(&z, 0, 4), le(&z, 0, 4);
        le(&z, size[i], 4), le(&z, size[i], 4), le(&z, nl, 2), le(&z, 0, 2), put(&z, names[i], nl), put(&z, data[i], size[i]);
        le(&cd, 0x02014b50u, 4), le(&cd, 20, 2), le(&cd, 20, 2), le(&cd, 0, 2), le(&cd, 0, 2), le(&cd, 0, 4), le(&cd, 0, 4);
        le(&cd, size[i], 4), le(&cd, size[i], 4), le(&cd, nl, 2), le(&cd, 0, 2), le(&cd, 0, 2), le(&cd, 0, 2), le(&cd, 0, 2);
        le(&cd, 0, 4), le(&cd, off, 4), put(&cd, names[i], nl);
    }
    uint64_t cdo = z.n;
    put(&z, cd.p, cd.n);
    le(&z, 0x06054b50u, 4), le(&z, 0, 4), le(&z, (uint64_t)ne, 2), le(&z, (uint64_t)ne, 2), le(&z, cd.n, 4), le(&z, cdo, 4),
        le(&z, 0, 2);
    FILE *f = fopen(path, "wb");
    cr_assert(f && fwrite(z.p, 1, z.n, f) == z.n && fclose(f) == 0);
    free(pk.p), free(z.p), free(cd.p);
}

Test(loader_strict, shared_storage_read_once, .init = mk_tmpdir, .fini = rm_tmpdir) {
    Sd s;
    sd_read(&s, L3);
    Model *ref = load_ok(L3, NULL);
    /* (a) every tensor a view of one storage, laid out back to front so that file order != storage order */
    int64_t total = 0, off[256];
    int sto[256];
    for (int i = s.n - 1; i >= 0; i--) {
        int64_t k = 1;
        for (int d = 0; d < s.t[i].ndim; d++) k *= s.t[i].shape[d];
        off[i] = total, sto[i] = 0, total += k;
    }
    float *one = malloc((size_t)total * sizeof(float));
    for (int i = 0; i < s.n; i++) {
        int64_t k = 1;
        for (int d = 0; d < s.t[i].ndim; d++) k *= s.t[i].shape[d];
        memcpy(one + off[i], s.data[i], (size_t)k * sizeof(float));
    }
    char p[128];
    path_in(p, sizeof p, "one_storage.pth");
    write_views_pth(p, &s, sto, off, (const float *const[]){one}, (int64_t[]){total}, 1);
    ModelLoadStats st = {0};
    Model *m = load_ok(p, &(ModelLoadOpts){.stats = &st});
    same_params(m, ref);
    cr_assert_eq(st.storages, 1);
    cr_assert_eq(st.storage_reads, 1, "the one storage was read %d times (once per tensor before the fix)",
                 st.storage_reads);
    /* the estimate counts the parameters once plus the one storage's pages, not the storage once per view */
    cr_assert_eq(st.need_bytes, m->nparams * sizeof(real) + (size_t)total * 4);
    model_free(m);
    /* (b) 8 tensors of layer 2 (the six [1,1,C] mixes, k_k, k_a) view storage 0 of 8 x 32 floats; every other
     * tensor keeps its view of the whole-model storage of (a), now storage 1 */
    const char *eight[8] = {"blocks.2.att.x_r", "blocks.2.att.x_w", "blocks.2.att.x_k", "blocks.2.att.x_v",
                            "blocks.2.att.x_a", "blocks.2.att.x_g", "blocks.2.att.k_k", "blocks.2.att.k_a"};
    for (int i = 0; i < s.n; i++) sto[i] = 1;
    float shared8[8 * 32];
    for (int j = 0; j < 8; j++) {
        int i = sd_index(&s, eight[j]);
        cr_assert_eq(s.t[i].ndim, 3);
        cr_assert_eq(s.t[i].shape[2], 32);
        memcpy(shared8 + 32 * j, s.data[i], 32 * sizeof(float));
        sto[i] = 0, off[i] = 32 * j;
    }
    path_in(p, sizeof p, "two_storages.pth");
    write_views_pth(p, &s, sto, off, (const float *const[]){shared8, one}, (int64_t[]){8 * 32, total}, 2);
    m = load_ok(p, &(ModelLoadOpts){.stats = &st});
    same_params(m, ref);
    cr_assert_eq(st.storages, 2);
    cr_assert_eq(st.storage_reads, 2, "2 storages read %d times", st.storage_reads);
    model_free(m);
    sd_free(&s);
    free(one);
    model_free(ref);
}
