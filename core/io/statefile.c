/* statefile.c -- saved recurrent states (format and rules: statefile.h). */
#include "statefile.h"

#include <errno.h>
#include <string.h>

static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}
static uint64_t fnv1a(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* the model's dims as stored: V, C, L, H, N, Nv */
static void model_dims6(const Model *m, int32_t d[6]) {
    d[0] = m->V, d[1] = m->C, d[2] = m->L, d[3] = m->H, d[4] = m->N, d[5] = m->Nv;
}

int statefile_save(const char *path, const Model *m, int B, const real *state, const int *pending, uint64_t seed,
                   uint64_t step, Err *err) {
    if (B < 1) return err_set(err, "--save-state %s: no sequences to save", path);
    const size_t numel = model_state_numel(m, B), pay = (size_t)B * 4 + numel * 4, total = STATEFILE_HEADER + pay;
    unsigned char *buf = calloc(1, total);
    if (!buf) return err_set(err, "--save-state %s: out of memory for %.1f MiB", path, total / 1048576.0);
    unsigned char *h = buf, *p = buf + STATEFILE_HEADER;
    for (int b = 0; b < B; b++) put32(p + 4 * (size_t)b, (uint32_t)pending[b]);
    unsigned char *sp = p + 4 * (size_t)B;
    for (size_t i = 0; i < numel; i++) {
        float f = (float)state[i];
        uint32_t u;
        memcpy(&u, &f, 4);
        put32(sp + 4 * i, u);
    }
    memcpy(h, "RWKVSTAT", 8);
    put32(h + 8, STATEFILE_VERSION), put32(h + 12, STATEFILE_HEADER);
    snprintf((char *)h + 16, 32, "%s", m->arch->name);
    int32_t d[6];
    model_dims6(m, d);
    for (int i = 0; i < 6; i++) put32(h + 48 + 4 * i, (uint32_t)d[i]);
    put32(h + 72, (uint32_t)B), put32(h + 76, 4);
    put64(h + 80, numel), put64(h + 88, seed), put64(h + 96, step), put64(h + 104, fnv1a(p, pay));
    Err e;
    int rc = write_file_atomic(path, buf, total, &e);
    free(buf);
    return rc ? err_set(err, "--save-state %s: %s", path, e.msg) : 0;
}

int statefile_load(const char *path, const Model *m, StateFile *sf, Err *err) {
    memset(sf, 0, sizeof *sf);
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, "--load-state %s: cannot open: %s", path, strerror(errno));
    unsigned char h[STATEFILE_HEADER];
    unsigned char *pay = NULL;
    int rc = -1;
    if (fseek(f, 0, SEEK_END) || ftell(f) < 0) {
        err_set(err, "--load-state %s: cannot read its size: %s", path, strerror(errno));
        goto out;
    }
    const long long size = ftell(f);
    rewind(f);
    if (size < STATEFILE_HEADER || fread(h, 1, STATEFILE_HEADER, f) != STATEFILE_HEADER) {
        err_set(err, "--load-state %s: %lld bytes, shorter than the %d-byte header of a state file", path, size,
                STATEFILE_HEADER);
        goto out;
    }
    if (memcmp(h, "RWKVSTAT", 8)) {
        err_set(err, "--load-state %s: not a state file (no RWKVSTAT magic); give a file written by generate --save-state",
                path);
        goto out;
    }
    if (get32(h + 8) != STATEFILE_VERSION || get32(h + 12) != STATEFILE_HEADER) {
        err_set(err, "--load-state %s: state file version %u (header %u bytes); this build reads version %d", path,
                get32(h + 8), get32(h + 12), STATEFILE_VERSION);
        goto out;
    }
    char arch[33];
    memcpy(arch, h + 16, 32);
    arch[32] = 0;
    int32_t d[6], md[6];
    for (int i = 0; i < 6; i++) d[i] = (int32_t)get32(h + 48 + 4 * i);
    model_dims6(m, md);
    if (strcmp(arch, m->arch->name) || memcmp(d, md, sizeof d)) {
        err_set(err, "--load-state %s: saved from a %s model with V=%d C=%d L=%d H=%d N=%d Nv=%d, but this model is %s "
                     "with V=%d C=%d L=%d H=%d N=%d Nv=%d; load it with the model it was saved from",
                path, arch, d[0], d[1], d[2], d[3], d[4], d[5], m->arch->name, md[0], md[1], md[2], md[3], md[4], md[5]);
        goto out;
    }
    const int32_t B = (int32_t)get32(h + 72);
    const uint64_t numel = get64(h + 80);
    if (B < 1 || B > (1 << 20) || get32(h + 76) != 4 || numel != model_state_numel(m, B)) {
        err_set(err, "--load-state %s: inconsistent header (B=%d, dtype %u, %llu state values; this model needs %zu for "
                     "B=%d)", path, B, get32(h + 76), (unsigned long long)numel, B >= 1 ? model_state_numel(m, B) : 0, B);
        goto out;
    }
    const size_t np = (size_t)B * 4 + numel * 4;
    if ((unsigned long long)size != STATEFILE_HEADER + np) {
        err_set(err, "--load-state %s: %lld bytes, but its header describes %zu (%s); the file is damaged", path, size,
                STATEFILE_HEADER + np, (unsigned long long)size < STATEFILE_HEADER + np ? "truncated" : "trailing bytes");
        goto out;
    }
    pay = malloc(np);
    if (!pay) {
        err_set(err, "--load-state %s: out of memory for %.1f MiB", path, np / 1048576.0);
        goto out;
    }
    if (fread(pay, 1, np, f) != np) {
        err_set(err, "--load-state %s: read failed: %s", path, strerror(errno));
        goto out;
    }
    if (fnv1a(pay, np) != get64(h + 104)) {
        err_set(err, "--load-state %s: checksum mismatch: the file is damaged", path);
        goto out;
    }
    sf->B = B, sf->numel = numel, sf->seed = get64(h + 88), sf->step = get64(h + 96);
    sf->pending = xmalloc((size_t)B * sizeof(int));
    sf->state = xmalloc(numel * sizeof(real));
    for (int b = 0; b < B; b++) sf->pending[b] = (int)(int32_t)get32(pay + 4 * (size_t)b);
    for (size_t i = 0; i < numel; i++) {
        uint32_t u = get32(pay + 4 * (size_t)B + 4 * i);
        float x;
        memcpy(&x, &u, 4);
        sf->state[i] = x;
    }
    for (int b = 0; b < B; b++)
        if (sf->pending[b] < 0 || sf->pending[b] >= m->V) {
            err_set(err, "--load-state %s: pending token %d of sequence %d is outside the vocabulary of %d", path,
                    sf->pending[b], b, m->V);
            statefile_free(sf);
            goto out;
        }
    rc = 0;
out:
    free(pay);
    fclose(f);
    return rc;
}

void statefile_free(StateFile *sf) {
    free(sf->pending), free(sf->state);
    memset(sf, 0, sizeof *sf);
}
