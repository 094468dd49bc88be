/* pth.c -- PyTorch `torch.save` checkpoints (.pth): a zip reader, a restricted unpickler, and a writer.
 *
 * Format (facts, as torch >= 1.6 writes it): a zip of stored (uncompressed) entries
 *   <archive>/data.pkl      pickle (protocol 2) of the state dict
 *   <archive>/data/<key>    raw little-endian storage bytes, each 64-byte aligned in the file through
 *                           padding in the *local* header's extra field
 *   <archive>/byteorder     "little" (absent in old files), <archive>/version "3\n", and a few more.
 * Files over 4 GiB use ZIP64: the zip64 end-of-central-directory record + locator and zip64 extra fields
 * (id 0x0001) in central and local headers.
 *
 * Reader rules: the zip is parsed from the central directory; each entry's data starts after its local
 * header, whose name and extra lengths are read there. Compressed or encrypted entries are refused. CRCs
 * are not verified on load (that would read a multi-GiB file once more). The unpickler is a small stack
 * machine that implements only the opcodes torch.save of a state dict uses and knows five globals:
 * collections.OrderedDict, torch._utils._rebuild_tensor_v2 and torch.{Float,Half,BFloat16}Storage.
 * REDUCE may call only OrderedDict() and _rebuild_tensor_v2(...); BUILD is accepted only on a dict
 * (it carries the state dict's `_metadata`, which is ignored). Every count is bounded by the pickle's
 * length; every error names the opcode's byte offset in data.pkl.
 *
 * Writer rules: entries in torch's order and layout (data.pkl, .format_version, .storage_alignment,
 * byteorder, data/0..n-1, version, .data/serialization_id), CRC-32 in local and central headers, ZIP64
 * records when an offset or size reaches tf_zip64_limit; streamed to a temp file one tensor at a time,
 * fsync'ed and renamed into place.
 */
#include "tensorfile.h"

#include <string.h>

/* ================================================================================================ */
/* little-endian helpers                                                                            */
/* ================================================================================================ */
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static int grow(void **p, int64_t *cap, int64_t need, size_t elsz) {
    if (need <= *cap) return 0;
    int64_t nc = *cap ? *cap : 16;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, (size_t)nc * elsz);
    if (!q) return -1;
    *p = q;
    *cap = nc;
    return 0;
}

/* ================================================================================================ */
/* zip reader                                                                                       */
/* ================================================================================================ */
typedef struct {
    const char *name; /* inside the map, not NUL-terminated */
    int name_len;
    uint64_t data; /* offset of the entry's bytes */
    uint64_t size;
} ZipEntry;

static int zip_entry_cmp(const void *a, const void *b) {
    const ZipEntry *x = a, *y = b;
    int n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, (size_t)n);
    return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

static const ZipEntry *zip_find(const ZipEntry *e, int64_t n, const char *name, size_t len) {
    ZipEntry key = {name, (int)len, 0, 0};
    return bsearch(&key, e, (size_t)n, sizeof *e, zip_entry_cmp);
}

/* Reads the zip64 extra field (id 1) of a central header: the fields present are those whose 32-bit
 * (or 16-bit disk) value is saturated, in the order usize, csize, offset, disk. */
static int zip64_extra(const uint8_t *x, size_t xlen, uint64_t *usize, uint64_t *csize, uint64_t *off,
                       int want_u, int want_c, int want_o) {
    size_t i = 0;
    while (i + 4 <= xlen) {
        unsigned id = rd16(x + i), sz = rd16(x + i + 2);
        if (i + 4 + sz > xlen) return -1;
        if (id == 1) {
            const uint8_t *f = x + i + 4;
            size_t k = 0;
            if (want_u) { if (k + 8 > sz) return -1; *usize = rd64(f + k); k += 8; }
            if (want_c) { if (k + 8 > sz) return -1; *csize = rd64(f + k); k += 8; }
            if (want_o) { if (k + 8 > sz) return -1; *off = rd64(f + k); k += 8; }
            return 0;
        }
        i += 4 + sz;
    }
    return (want_u || want_c || want_o) ? -1 : 0;
}

static int zip_read(const uint8_t *d, size_t len, ZipEntry **out, int64_t *nout, Err *err) {
    *out = NULL;
    *nout = 0;
    if (len < 22) return err_set(err, "zip: file too short (%zu bytes) for an end-of-central-directory record", len);
    /* End of central directory: 22 bytes + comment (<= 65535), searched backwards from the end. */
    size_t lo = len > 22 + 65535 ? len - 22 - 65535 : 0, eocd = SIZE_MAX;
    for (size_t p = len - 22 + 1; p-- > lo;)
        if (rd32(d + p) == 0x06054b50u && p + 22 + rd16(d + p + 20) <= len) {
            eocd = p;
            break;
        }
    if (eocd == SIZE_MAX)
        return err_set(err, "zip: no end-of-central-directory record in the last 64 KiB (truncated file?)");
    uint64_t n = rd16(d + eocd + 10), cd_size = rd32(d + eocd + 12), cd_off = rd32(d + eocd + 16);
    if (rd16(d + eocd + 4) != 0 || rd16(d + eocd + 6) != 0) return err_set(err, "zip: multi-disk archives are not supported");
    if (eocd >= 20 && rd32(d + eocd - 20) == 0x07064b50u) { /* ZIP64 locator */
        uint64_t z = rd64(d + eocd - 20 + 8);
        if (z > eocd - 20 || eocd - 20 - z < 56 || rd32(d + z) != 0x06064b50u)
            return err_set(err, "zip: ZIP64 locator at byte %zu points to %llu, where there is no ZIP64 end record",
                           eocd - 20, (unsigned long long)z);
        n = rd64(d + z + 32);
        cd_size = rd64(d + z + 40);
        cd_off = rd64(d + z + 48);
    } else if (n == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu) {
        return err_set(err, "zip: end record has saturated fields but no ZIP64 locator (truncated file?)");
    }
    if (cd_off > len || cd_size > len - cd_off)
        return err_set(err, "zip: central directory (offset %llu, %llu bytes) lies outside the %zu-byte file (truncated?)",
                       (unsigned long long)cd_off, (unsigned long long)cd_size, len);
    if (n > cd_size / 46) return err_set(err, "zip: %llu entries cannot fit a %llu-byte central directory",
                                         (unsigned long long)n, (unsigned long long)cd_size);
    ZipEntry *e = malloc((n ? n : 1) * sizeof *e);
    if (!e) return err_set(err, "zip: out of memory for %llu entries", (unsigned long long)n);
    uint64_t p = cd_off, end = cd_off + cd_size;
    for (uint64_t i = 0; i < n; i++) {
        if (end - p < 46 || rd32(d + p) != 0x02014b50u) {
            free(e);
            return err_set(err, "zip: bad central directory header %llu at byte %llu", (unsigned long long)i,
                           (unsigned long long)p);
        }
        const uint8_t *h = d + p;
        unsigned flags = rd16(h + 8), method = rd16(h + 10), nl = rd16(h + 28), xl = rd16(h + 30), cl = rd16(h + 32);
        uint64_t csize = rd32(h + 20), usize = rd32(h + 24), loff = rd32(h + 42);
        if ((uint64_t)46 + nl + xl + cl > end - p) {
            free(e);
            return err_set(err, "zip: central header %llu at byte %llu runs past the directory", (unsigned long long)i,
                           (unsigned long long)p);
        }
        const char *name = (const char *)h + 46;
        if (zip64_extra(h + 46 + nl, xl, &usize, &csize, &loff, usize == 0xffffffffu, csize == 0xffffffffu,
                        loff == 0xffffffffu)) {
            free(e);
            return err_set(err, "zip: entry '%.*s' has saturated sizes but no valid ZIP64 extra field", (int)nl, name);
        }
        if (method != 0) {
            free(e);
            return err_set(err, "zip: entry '%.*s' is compressed (method %u); torch.save stores entries "
                                "uncompressed: re-save with torch.save (or re-zip with 'zip -0')", (int)nl, name, method);
        }
        if (flags & 1) {
            free(e);
            return err_set(err, "zip: entry '%.*s' is encrypted", (int)nl, name);
        }
        if (csize != usize) {
            free(e);
            return err_set(err, "zip: stored entry '%.*s' has compressed size %llu != size %llu", (int)nl, name,
                           (unsigned long long)csize, (unsigned long long)usize);
        }
        /* data start comes from the local header: its own name and extra lengths (torch pads there) */
        if (loff > len || len - loff < 30 || rd32(d + loff) != 0x04034b50u) {
            free(e);
            return err_set(err, "zip: entry '%.*s': no local header at byte %llu (truncated file?)", (int)nl, name,
                           (unsigned long long)loff);
        }
        uint64_t data = loff + 30 + rd16(d + loff + 26) + rd16(d + loff + 28);
        if (rd16(d + loff + 26) != nl || (len - loff - 30 >= nl && memcmp(d + loff + 30, name, nl) != 0)) {
            free(e);
            return err_set(err, "zip: entry '%.*s': local header at byte %llu names another file", (int)nl, name,
                           (unsigned long long)loff);
        }
        if (data > len || usize > len - data) {
            free(e);
            return err_set(err, "zip: entry '%.*s' (%llu bytes at byte %llu) runs past the end of the %zu-byte file "
                                "(truncated?)", (int)nl, name, (unsigned long long)usize, (unsigned long long)data, len);
        }
        e[i] = (ZipEntry){name, (int)nl, data, usize};
        p += 46 + nl + xl + cl;
    }
    qsort(e, (size_t)n, sizeof *e, zip_entry_cmp);
    *out = e;
    *nout = (int64_t)n;
    return 0;
}

/* ================================================================================================ */
/* restricted unpickler                                                                             */
/* ================================================================================================ */
enum { V_NONE, V_BOOL, V_INT, V_STR, V_TUPLE, V_LIST, V_DICT, V_GLOBAL, V_STORAGE, V_TENSOR };
enum { G_ODICT, G_REBUILD, G_F32, G_F16, G_BF16 };

typedef struct {
    uint8_t kind, sub;   /* sub: global id, or storage dtype */
    int32_t first, last; /* containers: linked children (dict: key, value, key, value, ...) */
    int64_t i;           /* int value / bool / child count / storage numel / tensor index */
    const char *s;       /* string bytes (in the map) / storage key */
    uint32_t slen;
} PVal;
typedef struct {
    int32_t v, next;
} PLink;

typedef struct {
    const uint8_t *p;
    size_t len, pos, op; /* op: offset of the opcode being run */
    PVal *val;
    int64_t nval, cval;
    PLink *lk;
    int64_t nlk, clk;
    int32_t *stk;
    int64_t nstk, cstk;
    int64_t *marks;
    int64_t nmark, cmark;
    int32_t *memo;
    int64_t cmemo, nmemo;
    TfTensor *ten;
    int64_t nten, cten;
    const uint8_t *file;
    const ZipEntry *ents;
    int64_t nents;
    const char *arch;
    int arch_len;
    Err *err;
} Unp;

#define UNP_MAX_STACK (1 << 22)
#define UNP_MAX_MEMO (1 << 24)

static int unp_fail(Unp *u, const char *what) {
    return err_set(u->err, "data.pkl: %s (opcode 0x%02x at offset %zu)", what, u->p[u->op], u->op);
}

static int new_val(Unp *u, int kind) {
    if (grow((void **)&u->val, &u->cval, u->nval + 1, sizeof *u->val)) return -1;
    PVal *v = &u->val[u->nval];
    memset(v, 0, sizeof *v);
    v->kind = (uint8_t)kind;
    v->first = v->last = -1;
    return (int)u->nval++;
}

static int push(Unp *u, int v) {
    if (v < 0) return err_set(u->err, "data.pkl: out of memory");
    if (u->nstk >= UNP_MAX_STACK) return unp_fail(u, "pickle stack too deep");
    if (grow((void **)&u->stk, &u->cstk, u->nstk + 1, sizeof *u->stk)) return err_set(u->err, "data.pkl: out of memory");
    u->stk[u->nstk++] = v;
    return 0;
}

static int pop(Unp *u, int *v) {
    int64_t floor = u->nmark ? u->marks[u->nmark - 1] : 0;
    if (u->nstk <= floor) return unp_fail(u, "stack underflow");
    *v = u->stk[--u->nstk];
    return 0;
}

static int link_child(Unp *u, int parent, int child) {
    if (grow((void **)&u->lk, &u->clk, u->nlk + 1, sizeof *u->lk)) return err_set(u->err, "data.pkl: out of memory");
    u->lk[u->nlk] = (PLink){child, -1};
    PVal *p = &u->val[parent];
    if (p->last >= 0) u->lk[p->last].next = (int32_t)u->nlk;
    else p->first = (int32_t)u->nlk;
    p->last = (int32_t)u->nlk++;
    p->i++;
    return 0;
}

/* Pop everything above the last MARK into a new container of `kind` (or into `target` if >= 0). */
static int pop_mark_into(Unp *u, int kind, int target) {
    if (!u->nmark) return unp_fail(u, "no MARK before this opcode");
    int64_t m = u->marks[--u->nmark];
    int c = target;
    if (c < 0 && (c = new_val(u, kind)) < 0) return err_set(u->err, "data.pkl: out of memory");
    for (int64_t k = m; k < u->nstk; k++)
        if (link_child(u, c, u->stk[k])) return -1;
    u->nstk = m;
    return target >= 0 ? 0 : push(u, c);
}

static int child(const Unp *u, int v, int k) { /* k-th child of a container */
    int l = u->val[v].first;
    while (k-- > 0 && l >= 0) l = u->lk[l].next;
    return l >= 0 ? u->lk[l].v : -1;
}

static int is_str(const Unp *u, int v, const char *s) {
    return u->val[v].kind == V_STR && u->val[v].slen == strlen(s) && memcmp(u->val[v].s, s, u->val[v].slen) == 0;
}

static int op_global(Unp *u, const char *mod, size_t ml, const char *name, size_t nl) {
    char full[200];
    snprintf(full, sizeof full, "%.*s.%.*s", (int)(ml < 80 ? ml : 80), mod, (int)(nl < 80 ? nl : 80), name);
    int g = -1;
    if (ml == 11 && !memcmp(mod, "collections", 11) && nl == 11 && !memcmp(name, "OrderedDict", 11)) g = G_ODICT;
    else if (ml == 12 && !memcmp(mod, "torch._utils", 12) && nl == 18 && !memcmp(name, "_rebuild_tensor_v2", 18)) g = G_REBUILD;
    else if (ml == 5 && !memcmp(mod, "torch", 5)) {
        if (nl == 12 && !memcmp(name, "FloatStorage", 12)) g = G_F32;
        else if (nl == 11 && !memcmp(name, "HalfStorage", 11)) g = G_F16;
        else if (nl == 15 && !memcmp(name, "BFloat16Storage", 15)) g = G_BF16;
        else if (nl > 7 && !memcmp(name + nl - 7, "Storage", 7))
            return err_set(u->err, "data.pkl: unsupported dtype: storage type %s (opcode at offset %zu); only "
                                   "Float, Half and BFloat16 storages are supported", full, u->op);
    }
    if (g < 0)
        return err_set(u->err, "refusing to load: pickle references %s (opcode at offset %zu of data.pkl), which a "
                               "state dict never needs", full, u->op);
    int v = new_val(u, V_GLOBAL);
    if (v >= 0) u->val[v].sub = (uint8_t)g;
    return push(u, v);
}

/* ('storage', StorageType, key, location, numel) -> V_STORAGE */
static int op_persid(Unp *u) {
    int t;
    if (pop(u, &t)) return -1;
    const PVal *v = &u->val[t];
    int s0 = child(u, t, 0), s1 = child(u, t, 1), s2 = child(u, t, 2), s3 = child(u, t, 3), s4 = child(u, t, 4);
    if (v->kind != V_TUPLE || v->i != 5 || !is_str(u, s0, "storage") || u->val[s1].kind != V_GLOBAL ||
        u->val[s1].sub < G_F32 || u->val[s2].kind != V_STR || u->val[s3].kind != V_STR || u->val[s4].kind != V_INT)
        return unp_fail(u, "persistent id is not ('storage', <Float|Half|BFloat16>Storage, key, location, numel)");
    if (u->val[s4].i < 0) return unp_fail(u, "negative storage size");
    int r = new_val(u, V_STORAGE);
    if (r < 0) return err_set(u->err, "data.pkl: out of memory");
    PVal *sv = &u->val[r];
    sv->sub = (uint8_t)(u->val[s1].sub == G_F32 ? TF_F32 : u->val[s1].sub == G_F16 ? TF_F16 : TF_BF16);
    sv->s = u->val[s2].s;
    sv->slen = u->val[s2].slen;
    sv->i = u->val[s4].i;
    return push(u, r);
}

static int int_tuple(const Unp *u, int v, int64_t *out, int *n) {
    if (v < 0 || u->val[v].kind != V_TUPLE || u->val[v].i > TF_MAX_NDIM) return -1;
    *n = (int)u->val[v].i;
    for (int k = 0; k < *n; k++) {
        int c = child(u, v, k);
        if (u->val[c].kind != V_INT) return -1;
        out[k] = u->val[c].i;
    }
    return 0;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
static int make_tensor(Unp *u, int args) {
    int na = (int)u->val[args].i;
    if (na != 6 && na != 7) return unp_fail(u, "_rebuild_tensor_v2 called with other than 6 or 7 arguments");
    int st = child(u, args, 0), off = child(u, args, 1), sz = child(u, args, 2), sd = child(u, args, 3);
    int rg = child(u, args, 4), hk = child(u, args, 5);
    if (u->val[st].kind != V_STORAGE || u->val[off].kind != V_INT || u->val[rg].kind != V_BOOL ||
        u->val[hk].kind != V_DICT)
        return unp_fail(u, "_rebuild_tensor_v2 arguments are not (storage, int, size, stride, bool, OrderedDict)");
    TfTensor t;
    memset(&t, 0, sizeof t);
    int nd2 = -1;
    if (int_tuple(u, sz, t.shape, &t.ndim) || int_tuple(u, sd, t.stride, &nd2))
        return unp_fail(u, "tensor size/stride is not a tuple of at most 4 ints");
    if (nd2 != t.ndim) return unp_fail(u, "tensor size and stride have different lengths");
    const PVal *s = &u->val[st];
    t.dtype = (TfDType)s->sub;
    t.offset = u->val[off].i;
    t.storage_numel = s->i;
    /* locate <archive>/data/<key> */
    char nm[512];
    if (s->slen > 256) return unp_fail(u, "storage key longer than 256 bytes");
    int nl = snprintf(nm, sizeof nm, "%.*s/data/%.*s", u->arch_len, u->arch, (int)s->slen, s->s);
    const ZipEntry *e = zip_find(u->ents, u->nents, nm, (size_t)nl);
    if (!e) return err_set(u->err, "data.pkl: storage '%.*s' (opcode at offset %zu) has no zip entry '%s'",
                           (int)s->slen, s->s, u->op, nm);
    t.storage_file_bytes = e->size; /* tf_validate checks the claimed size against it, naming the tensor */
    t.storage = u->file + e->data;
    if (grow((void **)&u->ten, &u->cten, u->nten + 1, sizeof *u->ten)) return err_set(u->err, "data.pkl: out of memory");
    u->ten[u->nten] = t;
    int v = new_val(u, V_TENSOR);
    if (v < 0) return err_set(u->err, "data.pkl: out of memory");
    u->val[v].i = u->nten++;
    return push(u, v);
}

static int op_reduce(Unp *u) {
    int args, fn;
    if (pop(u, &args) || pop(u, &fn)) return -1;
    if (u->val[fn].kind != V_GLOBAL || u->val[args].kind != V_TUPLE)
        return unp_fail(u, "REDUCE on something other than OrderedDict or _rebuild_tensor_v2");
    if (u->val[fn].sub == G_ODICT) {
        if (u->val[args].i != 0) return unp_fail(u, "OrderedDict called with arguments");
        return push(u, new_val(u, V_DICT));
    }
    if (u->val[fn].sub == G_REBUILD) return make_tensor(u, args);
    return unp_fail(u, "REDUCE calls a storage type; only OrderedDict() and _rebuild_tensor_v2(...) may be called");
}

static int read_n(Unp *u, size_t n, const uint8_t **q) {
    if (n > u->len - u->pos) return unp_fail(u, "argument runs past the end of data.pkl (truncated?)");
    *q = u->p + u->pos;
    u->pos += n;
    return 0;
}

static int memo_put(Unp *u, uint64_t idx) {
    if (!u->nstk) return unp_fail(u, "memo store with an empty stack");
    if (idx >= UNP_MAX_MEMO || idx > u->len) return unp_fail(u, "memo index out of range");
    int64_t old = u->cmemo;
    if (grow((void **)&u->memo, &u->cmemo, (int64_t)idx + 1, sizeof *u->memo)) return err_set(u->err, "data.pkl: out of memory");
    for (int64_t k = old; k < u->cmemo; k++) u->memo[k] = -1;
    u->memo[idx] = u->stk[u->nstk - 1];
    if ((int64_t)idx >= u->nmemo) u->nmemo = (int64_t)idx + 1;
    return 0;
}

static int memo_get(Unp *u, uint64_t idx) {
    if (idx >= (uint64_t)u->cmemo || u->memo[idx] < 0) return unp_fail(u, "memo get of an unset index");
    return push(u, u->memo[idx]);
}

static int add_items(Unp *u, int single) {
    int64_t m;
    if (single) {
        if (u->nstk - (u->nmark ? u->marks[u->nmark - 1] : 0) < 3) return unp_fail(u, "stack underflow");
        m = u->nstk - 2;
    } else {
        if (!u->nmark) return unp_fail(u, "no MARK before SETITEMS");
        m = u->marks[--u->nmark];
        if (m < 1) return unp_fail(u, "SETITEMS without a dict below the MARK");
    }
    int d = u->stk[m - 1];
    if (u->val[d].kind != V_DICT) return unp_fail(u, "SETITEM(S) on something that is not a dict");
    if ((u->nstk - m) % 2) return unp_fail(u, "SETITEMS with an odd number of items");
    for (int64_t k = m; k < u->nstk; k++)
        if (link_child(u, d, u->stk[k])) return -1;
    u->nstk = m;
    return 0;
}

static int add_list(Unp *u, int single) {
    int64_t m;
    if (single) {
        if (u->nstk - (u->nmark ? u->marks[u->nmark - 1] : 0) < 2) return unp_fail(u, "stack underflow");
        m = u->nstk - 1;
    } else {
        if (!u->nmark) return unp_fail(u, "no MARK before APPENDS");
        m = u->marks[--u->nmark];
        if (m < 1) return unp_fail(u, "APPENDS without a list below the MARK");
    }
    int l = u->stk[m - 1];
    if (u->val[l].kind != V_LIST) return unp_fail(u, "APPEND(S) on something that is not a list");
    for (int64_t k = m; k < u->nstk; k++)
        if (link_child(u, l, u->stk[k])) return -1;
    u->nstk = m;
    return 0;
}

static int push_int(Unp *u, int64_t x) {
    int v = new_val(u, V_INT);
    if (v >= 0) u->val[v].i = x;
    return push(u, v);
}

static int push_str(Unp *u, const uint8_t *s, size_t n) {
    int v = new_val(u, V_STR);
    if (v >= 0) u->val[v].s = (const char *)s, u->val[v].slen = (uint32_t)n;
    return push(u, v);
}

/* Runs data.pkl; on success *root is the top-level dict. */
static int unp_run(Unp *u, int *root) {
    const uint8_t *q = NULL;
    while (u->pos < u->len) {
        u->op = u->pos;
        uint8_t op = u->p[u->pos++];
        int rc = 0, v;
        switch (op) {
        case 0x80: /* PROTO */
            if ((rc = read_n(u, 1, &q))) break;
            if (q[0] < 2 || q[0] > 5) rc = unp_fail(u, "unsupported pickle protocol");
            break;
        case 0x95: rc = read_n(u, 8, &q); break; /* FRAME: a size hint only */
        case 'c': {                               /* GLOBAL module\nname\n */
            const uint8_t *a = u->p + u->pos, *end = u->p + u->len;
            const uint8_t *nl1 = memchr(a, '\n', (size_t)(end - a) < 256 ? (size_t)(end - a) : 256);
            const uint8_t *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1) < 256 ? (size_t)(end - nl1 - 1) : 256) : NULL;
            if (!nl2) { rc = unp_fail(u, "GLOBAL without two newline-terminated names (or names over 255 bytes)"); break; }
            u->pos = (size_t)(nl2 + 1 - u->p);
            rc = op_global(u, (const char *)a, (size_t)(nl1 - a), (const char *)nl1 + 1, (size_t)(nl2 - nl1 - 1));
            break;
        }
        case 0x93: { /* STACK_GLOBAL */
            int mn, nm;
            if ((rc = pop(u, &nm)) || (rc = pop(u, &mn))) break;
            if (u->val[mn].kind != V_STR || u->val[nm].kind != V_STR) { rc = unp_fail(u, "STACK_GLOBAL of non-strings"); break; }
            rc = op_global(u, u->val[mn].s, u->val[mn].slen, u->val[nm].s, u->val[nm].slen);
            break;
        }
        case 'q': if (!(rc = read_n(u, 1, &q))) rc = memo_put(u, q[0]); break;
        case 'r': if (!(rc = read_n(u, 4, &q))) rc = memo_put(u, rd32(q)); break;
        case 0x94: rc = memo_put(u, (uint64_t)u->nmemo); break; /* MEMOIZE */
        case 'h': if (!(rc = read_n(u, 1, &q))) rc = memo_get(u, q[0]); break;
        case 'j': if (!(rc = read_n(u, 4, &q))) rc = memo_get(u, rd32(q)); break;
        case '(':
            if (grow((void **)&u->marks, &u->cmark, u->nmark + 1, sizeof *u->marks)) { rc = err_set(u->err, "data.pkl: out of memory"); break; }
            if (u->nmark >= UNP_MAX_STACK) { rc = unp_fail(u, "too many MARKs"); break; }
            u->marks[u->nmark++] = u->nstk;
            break;
        case '}': rc = push(u, new_val(u, V_DICT)); break;
        case ']': rc = push(u, new_val(u, V_LIST)); break;
        case ')': rc = push(u, new_val(u, V_TUPLE)); break;
        case 't': rc = pop_mark_into(u, V_TUPLE, -1); break;
        case 0x85: case 0x86: case 0x87: { /* TUPLE1..3 */
            int k = op - 0x84, it[3];
            for (int j = k - 1; j >= 0 && !rc; j--) rc = pop(u, &it[j]);
            if (rc) break;
            if ((v = new_val(u, V_TUPLE)) < 0) { rc = err_set(u->err, "data.pkl: out of memory"); break; }
            for (int j = 0; j < k && !rc; j++) rc = link_child(u, v, it[j]);
            if (!rc) rc = push(u, v);
            break;
        }
        case 'J': if (!(rc = read_n(u, 4, &q))) rc = push_int(u, (int32_t)rd32(q)); break;
        case 'K': if (!(rc = read_n(u, 1, &q))) rc = push_int(u, q[0]); break;
        case 'M': if (!(rc = read_n(u, 2, &q))) rc = push_int(u, rd16(q)); break;
        case 0x8a: { /* LONG1: n-byte two's complement little-endian */
            if ((rc = read_n(u, 1, &q))) break;
            size_t n = q[0];
            if (n > 8) { rc = unp_fail(u, "integer wider than 64 bits"); break; }
            if ((rc = read_n(u, n, &q))) break;
            uint64_t x = 0;
            for (size_t k = 0; k < n; k++) x |= (uint64_t)q[k] << (8 * k);
            if (n > 0 && n < 8 && (q[n - 1] & 0x80)) x |= ~(uint64_t)0 << (8 * n);
            int64_t sx;
            memcpy(&sx, &x, 8);
            rc = push_int(u, sx);
            break;
        }
        case 'X': case 0x8c: { /* BINUNICODE, SHORT_BINUNICODE */
            size_t n;
            if (op == 'X') { if ((rc = read_n(u, 4, &q))) break; n = rd32(q); }
            else { if ((rc = read_n(u, 1, &q))) break; n = q[0]; }
            if (!(rc = read_n(u, n, &q))) rc = push_str(u, q, n);
            break;
        }
        case 'Q': rc = op_persid(u); break;
        case 'R': rc = op_reduce(u); break;
        case 's': rc = add_items(u, 1); break;
        case 'u': rc = add_items(u, 0); break;
        case 'a': rc = add_list(u, 1); break;
        case 'e': rc = add_list(u, 0); break;
        case 'b': { /* BUILD: only the state of an OrderedDict (its _metadata), ignored */
            int state;
            if ((rc = pop(u, &state))) break;
            if (u->nstk <= (u->nmark ? u->marks[u->nmark - 1] : 0)) { rc = unp_fail(u, "stack underflow"); break; }
            if (u->val[u->stk[u->nstk - 1]].kind != V_DICT) rc = unp_fail(u, "BUILD on something that is not a dict");
            break;
        }
        case 0x89: case 0x88: /* NEWFALSE, NEWTRUE */
            if ((v = new_val(u, V_BOOL)) >= 0) u->val[v].i = op == 0x88;
            rc = push(u, v);
            break;
        case 'N': rc = push(u, new_val(u, V_NONE)); break;
        case '.': { /* STOP */
            if ((rc = pop(u, root))) return rc;
            if (u->val[*root].kind != V_DICT) return unp_fail(u, "the pickled object is not a dict (a state dict is)");
            return 0;
        }
        default: {
            char m[120];
            snprintf(m, sizeof m, "unsupported pickle opcode 0x%02x ('%c'); torch.save of a state dict never uses it",
                     op, op >= 32 && op < 127 ? op : '?');
            rc = unp_fail(u, m);
        }
        }
        if (rc) return rc;
    }
    return err_set(u->err, "data.pkl: ends without STOP after %zu bytes (truncated?)", u->len);
}

/* ================================================================================================ */
/* .pth reader                                                                                      */
/* ================================================================================================ */
int pth_parse(const uint8_t *data, size_t len, TensorFile *tf, Err *err) {
    ZipEntry *ents;
    int64_t n;
    if (zip_read(data, len, &ents, &n, err)) return -1;
    /* archive name: the entry "<archive>/data.pkl" with no other '/' */
    const ZipEntry *pkl = NULL;
    for (int64_t i = 0; i < n && !pkl; i++) {
        const ZipEntry *e = &ents[i];
        if (e->name_len > 9 && !memcmp(e->name + e->name_len - 9, "/data.pkl", 9) &&
            !memchr(e->name, '/', (size_t)e->name_len - 9))
            pkl = e;
    }
    if (!pkl) {
        free(ents);
        return err_set(err, "zip has no '<archive>/data.pkl' entry: not a torch.save checkpoint");
    }
    int alen = pkl->name_len - 9;
    if (alen > 200) {
        free(ents);
        return err_set(err, "archive name longer than 200 bytes");
    }
    char nm[256];
    int nl = snprintf(nm, sizeof nm, "%.*s/byteorder", alen, pkl->name);
    const ZipEntry *bo = zip_find(ents, n, nm, (size_t)nl);
    if (bo && !(bo->size == 6 && !memcmp(data + bo->data, "little", 6))) {
        err_set(err, "'%s' is '%.*s'; only little-endian checkpoints are supported", nm,
                (int)(bo->size < 16 ? bo->size : 16), (const char *)data + bo->data);
        free(ents);
        return -1;
    }
    if (pkl->size > (1u << 30)) { /* value indices are 32-bit; a real state dict pickles to a few MB */
        free(ents);
        return err_set(err, "data.pkl is %llu bytes; over the 1 GiB a state dict could need",
                       (unsigned long long)pkl->size);
    }
    Unp u;
    memset(&u, 0, sizeof u);
    u.p = data + pkl->data;
    u.len = (size_t)pkl->size;
    u.file = data;
    u.ents = ents;
    u.nents = n;
    u.arch = pkl->name;
    u.arch_len = alen;
    u.err = err;
    int root = -1, rc = unp_run(&u, &root);
    if (!rc) { /* walk the top-level dict: str -> tensor */
        const PVal *r = &u.val[root];
        int64_t nt = r->i / 2;
        if (nt > 0) tf->t = calloc((size_t)nt, sizeof *tf->t);
        if (nt > 0 && !tf->t) rc = err_set(err, "out of memory for %lld tensors", (long long)nt);
        int l = r->first;
        for (int64_t k = 0; k < nt && !rc; k++) {
            int key = u.lk[l].v, val = u.lk[u.lk[l].next].v;
            l = u.lk[u.lk[l].next].next;
            const PVal *kv = &u.val[key];
            if (kv->kind != V_STR) { rc = err_set(err, "data.pkl: state dict key %lld is not a string", (long long)k); break; }
            if (kv->slen >= TF_NAME_MAX || memchr(kv->s, 0, kv->slen)) {
                rc = err_set(err, "data.pkl: state dict key '%.60s...' is longer than %d bytes or holds a NUL", kv->s,
                             TF_NAME_MAX - 1);
                break;
            }
            if (u.val[val].kind != V_TENSOR) {
                rc = err_set(err, "data.pkl: value of '%.*s' is not a tensor (only dicts of tensors are read)",
                             (int)kv->slen, kv->s);
                break;
            }
            TfTensor *t = &tf->t[tf->n++];
            *t = u.ten[u.val[val].i];
            memcpy(t->name, kv->s, kv->slen);
            t->name[kv->slen] = 0;
        }
    }
    free(u.val);
    free(u.lk);
    free(u.stk);
    free(u.marks);
    free(u.memo);
    free(u.ten);
    free(ents);
    return rc ? -1 : 0;
}

/* ================================================================================================ */
/* writer                                                                                           */
/* ================================================================================================ */
typedef struct {
    uint8_t *p;
    int64_t n, cap;
    int oom;
} Buf;

static void buf_put(Buf *b, const void *s, size_t n) {
    if (b->oom || grow((void **)&b->p, &b->cap, b->n + (int64_t)n, 1)) {
        b->oom = 1;
        return;
    }
    memcpy(b->p + b->n, s, n);
    b->n += (int64_t)n;
}
static void buf_u8(Buf *b, unsigned x) { uint8_t c = (uint8_t)x; buf_put(b, &c, 1); }
static void buf_le(Buf *b, uint64_t x, int nbytes) {
    uint8_t t[8];
    for (int i = 0; i < nbytes; i++) t[i] = (uint8_t)(x >> (8 * i));
    buf_put(b, t, (size_t)nbytes);
}

static uint32_t crc_table[256];
static void crc_init(void) {
    if (crc_table[1]) return;
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}
static uint32_t crc32_of(const void *data, size_t n) {
    const uint8_t *p = data;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

/* pickle pieces */
static void pk_int(Buf *b, int64_t x) {
    if (x >= 0 && x < 256) { buf_u8(b, 'K'); buf_u8(b, (unsigned)x); }
    else if (x >= 0 && x < 65536) { buf_u8(b, 'M'); buf_le(b, (uint64_t)x, 2); }
    else if (x >= INT32_MIN && x <= INT32_MAX) { buf_u8(b, 'J'); buf_le(b, (uint64_t)x, 4); }
    else { /* LONG1: minimal two's complement */
        int n = 8;
        while (n > 1) {
            int64_t lo = -((int64_t)1 << (8 * (n - 1) - 1)), hi = ((int64_t)1 << (8 * (n - 1) - 1)) - 1;
            if (x < lo || x > hi) break;
            n--;
        }
        buf_u8(b, 0x8a); buf_u8(b, (unsigned)n); buf_le(b, (uint64_t)x, n);
    }
}
static void pk_str(Buf *b, const char *s) { size_t n = strlen(s); buf_u8(b, 'X'); buf_le(b, n, 4); buf_put(b, s, n); }
static void pk_put(Buf *b, uint32_t *memo) {
    if (*memo < 256) { buf_u8(b, 'q'); buf_u8(b, *memo); }
    else { buf_u8(b, 'r'); buf_le(b, *memo, 4); }
    (*memo)++;
}
static void pk_get(Buf *b, uint32_t id) {
    if (id < 256) { buf_u8(b, 'h'); buf_u8(b, id); }
    else { buf_u8(b, 'j'); buf_le(b, id, 4); }
}
static void pk_tuple(Buf *b, const int64_t *x, int n, uint32_t *memo) {
    if (n == 0) { buf_u8(b, ')'); return; } /* the empty tuple is not memoized by pickle */
    if (n > 3) buf_u8(b, '(');
    for (int i = 0; i < n; i++) pk_int(b, x[i]);
    buf_u8(b, n == 1 ? 0x85 : n == 2 ? 0x86 : n == 3 ? 0x87 : 't');
    pk_put(b, memo);
}

/* data.pkl of an OrderedDict name -> _rebuild_tensor_v2(storage i, 0, shape, contiguous stride, False,
 * OrderedDict()), memoizing globals and repeated strings as pickle does. */
static void pth_pickle(Buf *b, const TfOut *t, int n, TfDType dtype) {
    const char *st = dtype == TF_F32 ? "FloatStorage" : dtype == TF_F16 ? "HalfStorage" : "BFloat16Storage";
    uint32_t memo = 0, m_odict, m_rebuild = 0, m_storage = 0, m_type = 0, m_cpu = 0;
    buf_u8(b, 0x80); buf_u8(b, 2);
    m_odict = memo;
    buf_put(b, "ccollections\nOrderedDict\n", 25); pk_put(b, &memo);
    buf_u8(b, ')'); buf_u8(b, 'R'); pk_put(b, &memo);
    for (int i = 0; i < n; i++) {
        if (i % 1000 == 0) buf_u8(b, '('); /* pickle batches SETITEMS by 1000 */
        pk_str(b, t[i].name); pk_put(b, &memo);
        if (i == 0) { m_rebuild = memo; buf_put(b, "ctorch._utils\n_rebuild_tensor_v2\n", 33); pk_put(b, &memo); }
        else pk_get(b, m_rebuild);
        buf_u8(b, '(');
        buf_u8(b, '(');
        if (i == 0) {
            m_storage = memo; pk_str(b, "storage"); pk_put(b, &memo);
            m_type = memo; buf_put(b, "ctorch\n", 7); buf_put(b, st, strlen(st)); buf_u8(b, '\n'); pk_put(b, &memo);
        } else { pk_get(b, m_storage); pk_get(b, m_type); }
        char key[24];
        snprintf(key, sizeof key, "%d", i);
        pk_str(b, key); pk_put(b, &memo);
        if (i == 0) { m_cpu = memo; pk_str(b, "cpu"); pk_put(b, &memo); }
        else pk_get(b, m_cpu);
        int64_t numel = 1, stride[TF_MAX_NDIM];
        for (int d = t[i].ndim - 1; d >= 0; d--) { stride[d] = numel; numel *= t[i].shape[d]; }
        pk_int(b, numel);
        buf_u8(b, 't'); pk_put(b, &memo);
        buf_u8(b, 'Q');
        pk_int(b, 0);
        pk_tuple(b, t[i].shape, t[i].ndim, &memo);
        pk_tuple(b, stride, t[i].ndim, &memo);
        buf_u8(b, 0x89);
        pk_get(b, m_odict); buf_u8(b, ')'); buf_u8(b, 'R'); pk_put(b, &memo);
        buf_u8(b, 't'); pk_put(b, &memo);
        buf_u8(b, 'R'); pk_put(b, &memo);
        if (i % 1000 == 999 || i == n - 1) buf_u8(b, 'u');
    }
    buf_u8(b, '.');
}

typedef struct {
    char name[256];
    uint32_t crc;
    uint64_t size, off;
} ZwEnt;
typedef struct {
    FILE *f;
    uint64_t pos;
    ZwEnt *e;
    int64_t n, cap;
    int bad;
} ZipW;

static void zw_write(ZipW *z, const void *p, size_t n) {
    if (z->bad) return;
    if (n && fwrite(p, 1, n, z->f) != n) z->bad = 1;
    z->pos += n;
}

static int zw_entry(ZipW *z, const char *name, const void *data, uint64_t size) {
    if (grow((void **)&z->e, &z->cap, z->n + 1, sizeof *z->e)) return z->bad = 1, -1;
    ZwEnt *e = &z->e[z->n++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->crc = crc32_of(data, (size_t)size);
    e->size = size;
    e->off = z->pos;
    int big = (int64_t)size >= tf_zip64_limit;
    size_t nl = strlen(e->name);
    Buf h = {0};
    buf_le(&h, 0x04034b50u, 4);
    buf_le(&h, big ? 45 : 20, 2); /* version needed */
    buf_le(&h, 0, 2);             /* flags */
    buf_le(&h, 0, 2);             /* stored */
    buf_le(&h, 0, 2);             /* time */
    buf_le(&h, 0x21, 2);          /* date: 1980-01-01 */
    buf_le(&h, e->crc, 4);
    buf_le(&h, big ? 0xffffffffu : size, 4);
    buf_le(&h, big ? 0xffffffffu : size, 4);
    buf_le(&h, nl, 2);
    uint64_t base = z->pos + 30 + nl + (big ? 20 : 0) + 4; /* data start with an empty padding field */
    size_t pad = (size_t)((64 - base % 64) % 64);
    buf_le(&h, (big ? 20 : 0) + 4 + pad, 2);
    buf_put(&h, e->name, nl);
    if (big) { buf_le(&h, 1, 2); buf_le(&h, 16, 2); buf_le(&h, size, 8); buf_le(&h, size, 8); }
    buf_le(&h, 0x4246, 2); /* 'FB': torch's padding field */
    buf_le(&h, pad, 2);
    static const uint8_t zeros[64];
    buf_put(&h, zeros, pad);
    if (h.oom) { free(h.p); return z->bad = 1, -1; }
    zw_write(z, h.p, (size_t)h.n);
    free(h.p);
    zw_write(z, data, (size_t)size);
    return z->bad ? -1 : 0;
}

static int zw_finish(ZipW *z) {
    Buf c = {0};
    uint64_t cd_off = z->pos;
    for (int64_t i = 0; i < z->n; i++) {
        const ZwEnt *e = &z->e[i];
        int bs = (int64_t)e->size >= tf_zip64_limit, bo = (int64_t)e->off >= tf_zip64_limit;
        size_t nl = strlen(e->name), xl = (bs || bo) ? 4 + 8 * (2 * bs + bo) : 0;
        buf_le(&c, 0x02014b50u, 4);
        buf_le(&c, xl ? 45 : 20, 2); /* made by */
        buf_le(&c, xl ? 45 : 20, 2); /* needed */
        buf_le(&c, 0, 2);
        buf_le(&c, 0, 2);
        buf_le(&c, 0, 2);
        buf_le(&c, 0x21, 2);
        buf_le(&c, e->crc, 4);
        buf_le(&c, bs ? 0xffffffffu : e->size, 4);
        buf_le(&c, bs ? 0xffffffffu : e->size, 4);
        buf_le(&c, nl, 2);
        buf_le(&c, xl, 2);
        buf_le(&c, 0, 2); /* comment */
        buf_le(&c, 0, 2); /* disk */
        buf_le(&c, 0, 2); /* internal attributes */
        buf_le(&c, 0, 4); /* external attributes */
        buf_le(&c, bo ? 0xffffffffu : e->off, 4);
        buf_put(&c, e->name, nl);
        if (xl) {
            buf_le(&c, 1, 2);
            buf_le(&c, xl - 4, 2);
            if (bs) { buf_le(&c, e->size, 8); buf_le(&c, e->size, 8); }
            if (bo) buf_le(&c, e->off, 8);
        }
    }
    uint64_t cd_size = (uint64_t)c.n, n = (uint64_t)z->n;
    int z64 = n >= 0xffff || (int64_t)cd_off >= tf_zip64_limit || (int64_t)cd_size >= tf_zip64_limit;
    if (z64) {
        uint64_t rec = cd_off + cd_size;
        buf_le(&c, 0x06064b50u, 4);
        buf_le(&c, 44, 8); /* size of the rest of the record */
        buf_le(&c, 45, 2);
        buf_le(&c, 45, 2);
        buf_le(&c, 0, 4);
        buf_le(&c, 0, 4);
        buf_le(&c, n, 8);
        buf_le(&c, n, 8);
        buf_le(&c, cd_size, 8);
        buf_le(&c, cd_off, 8);
        buf_le(&c, 0x07064b50u, 4); /* locator */
        buf_le(&c, 0, 4);
        buf_le(&c, rec, 8);
        buf_le(&c, 1, 4);
    }
    buf_le(&c, 0x06054b50u, 4);
    buf_le(&c, 0, 2);
    buf_le(&c, 0, 2);
    buf_le(&c, z64 ? 0xffff : n, 2);
    buf_le(&c, z64 ? 0xffff : n, 2);
    buf_le(&c, z64 ? 0xffffffffu : cd_size, 4);
    buf_le(&c, z64 ? 0xffffffffu : cd_off, 4);
    buf_le(&c, 0, 2);
    if (c.oom) z->bad = 1;
    else zw_write(z, c.p, (size_t)c.n);
    free(c.p);
    return z->bad ? -1 : 0;
}

int pth_write(const char *path, const TfOut *t, int n, TfDType dtype, Err *err) {
    if (tf_check_outputs(t, n, dtype, err)) return -1;
    crc_init();
    /* archive name: the file's stem, as torch.save does */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char arch[128];
    snprintf(arch, sizeof arch, "%s", base);
    char *dot = strrchr(arch, '.');
    if (dot && dot != arch) *dot = 0;
    if (!arch[0] || !strcmp(arch, ".") || !strcmp(arch, "..")) snprintf(arch, sizeof arch, "archive");
    Buf pk = {0};
    pth_pickle(&pk, t, n, dtype);
    if (pk.oom) { free(pk.p); return err_set(err, "out of memory building data.pkl"); }
    char tmp[4200];
    FILE *f = tf_tmp_open(path, tmp, sizeof tmp, err);
    if (!f) { free(pk.p); return -1; }
    ZipW z = {f, 0, NULL, 0, 0, 0};
    char nm[256];
#define ENTRY(suffix, data, size) \
    (snprintf(nm, sizeof nm, "%s/%s", arch, suffix), zw_entry(&z, nm, (data), (size)))
    ENTRY("data.pkl", pk.p, (uint64_t)pk.n);
    ENTRY(".format_version", "1", 1);
    ENTRY(".storage_alignment", "64", 2);
    ENTRY("byteorder", "little", 6);
    size_t es = tf_dtype_size(dtype);
    for (int i = 0; i < n && !z.bad; i++) {
        int64_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= t[i].shape[d];
        uint8_t *buf = NULL; /* f32 goes out as it is; f16/bf16 through one converted copy */
        if (dtype != TF_F32 && !(buf = malloc((size_t)numel * es + 1))) { z.bad = 1; break; }
        if (buf && numel) tf_from_f32(t[i].data, numel, dtype, buf);
        char key[40];
        snprintf(key, sizeof key, "data/%d", i);
        ENTRY(key, buf ? (const void *)buf : (const void *)t[i].data, (uint64_t)numel * es);
        free(buf);
    }
    ENTRY("version", "3\n", 2);
    char sid[41];
    uint32_t h = crc32_of(pk.p, (size_t)pk.n);
    snprintf(sid, sizeof sid, "%020u%020u", h, (unsigned)(n * 2654435761u));
    ENTRY(".data/serialization_id", sid, 40);
#undef ENTRY
    free(pk.p);
    if (!z.bad) zw_finish(&z);
    free(z.e);
    return tf_commit(f, tmp, path, !z.bad, err);
}
