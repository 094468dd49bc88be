/* task.c -- what every task family shares (task.h): batches, the Task wrapper over a family, the
 * typed reading of a family's [task] keys, and the fixed test sets.
 *
 * Randomness: GSL only. task_sample fills the rows of a batch one after the other from the caller's
 * rng. task_testset uses its own gsl_rng_mt19937 seeded from a hash of (seed, T, salt): the test set
 * depends only on (task, seed, T, n) -- never on the training stream -- and the first m sequences of a
 * size-n set equal the size-m set.
 */
#include "task.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

struct Task {
    const TaskKind *kind;
    void *self;
    char name[64]; /* task.name as given, for messages */
};

void batch_alloc(Batch *b, int B, int T) {
    CHECK(B > 0 && T > 0, "batch_alloc: B=%d T=%d must be positive", B, T);
    size_t bt = (size_t)B * T;
    b->B = B;
    b->T = T;
    b->inputs = xmalloc(bt * sizeof *b->inputs);
    b->targets = xmalloc(bt * sizeof *b->targets);
    b->mask = xmalloc(bt * sizeof *b->mask);
}

void batch_free(Batch *b) {
    if (!b) return;
    free(b->inputs);
    free(b->targets);
    free(b->mask);
    memset(b, 0, sizeof *b);
}

/* ---- a family's keys ------------------------------------------------------------------------------- */

static const TaskParam *param_of(const TaskKind *k, const char *key) {
    for (int i = 0; i < k->nparams; i++)
        if (!strcmp(k->params[i].key, key)) return &k->params[i];
    return NULL;
}

const char *task_arg(const TaskArgs *a, const char *key) {
    for (int i = 0; i < a->n; i++)
        if (!strcmp(a->key[i], key)) return a->val[i];
    return NULL;
}

int task_arg_int(const TaskArgs *a, const char *key, long lo, long hi, long *out, Err *err) {
    const char *v = task_arg(a, key);
    CHECK(v, "task key '%s' is not declared by its family", key);
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return err_set(err, "[task] %s = '%s': expected a whole number in [%ld, %ld]", key, v, lo, hi);
    *out = x;
    return 0;
}

int task_arg_real(const TaskArgs *a, const char *key, double lo, double hi, double *out, Err *err) {
    const char *v = task_arg(a, key);
    CHECK(v, "task key '%s' is not declared by its family", key);
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x) || x < lo || x > hi)
        return err_set(err, "[task] %s = '%s': expected a number in [%g, %g]", key, v, lo, hi);
    *out = x;
    return 0;
}

/* ---- the Task ---------------------------------------------------------------------------------------- */

/* "v" is one of the '|'-separated names in list */
static int in_list(const char *list, const char *v) {
    size_t n = strlen(v);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, '|');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncasecmp(p, v, n)) return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

Task *task_create_named(const char *name, const char *variant, const char *const *keys, const char *const *vals,
                        int n, Err *err) {
    const TaskKind *k = task_kind_find(name);
    if (!k) {
        err_set(err, "[task] name = '%s' is unknown; allowed values: %s", name, task_names());
        return NULL;
    }
    const char *given = variant;
    if (!variant || !strcasecmp(variant, "default")) variant = k->default_variant;
    if (k->variants ? !variant || !in_list(k->variants, variant) : variant != NULL) {
        char allowed[512] = "default";
        for (const char *p = k->variants; p && *p;) { /* "a|b" as "default, a, b" */
            size_t len = strcspn(p, "|");
            snprintf(allowed + strlen(allowed), sizeof allowed - strlen(allowed), ", %.*s", (int)len, p);
            p += len + (p[len] == '|');
        }
        err_set(err, "[task] variant = '%s' does not apply to task %s; allowed values: %s%s", given ? given : "", name,
                allowed, k->variants ? "" : " (it has no variants)");
        return NULL;
    }
    /* the family's keys: every one present, defaults filled in; a key of another family is an error */
    TaskArgs a = {.n = 0};
    CHECK(k->nparams <= CFG_MAX_TASK_PARAMS, "task family %s declares too many keys", k->family);
    for (int i = 0; i < k->nparams; i++) a.key[a.n] = k->params[i].key, a.val[a.n++] = k->params[i].def;
    for (int j = 0; j < n; j++) {
        if (!param_of(k, keys[j])) {
            char list[512] = "";
            for (int i = 0; i < k->nparams; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", k->params[i].key);
            err_set(err, "[task] key '%s' does not apply to task %s (%s tasks take: %s)", keys[j], name, k->family,
                    k->nparams ? list : "no keys of their own");
            return NULL;
        }
        for (int i = 0; i < a.n; i++)
            if (!strcmp(a.key[i], keys[j])) a.val[i] = vals[j];
    }
    void *self = k->create(name, variant, &a, err);
    if (!self) return NULL;
    Task *t = xcalloc(1, sizeof *t);
    t->kind = k, t->self = self;
    snprintf(t->name, sizeof t->name, "%s", name);
    return t;
}

Task *task_create(const RunConfig *cfg, Err *err) {
    const char *keys[CFG_MAX_TASK_PARAMS], *vals[CFG_MAX_TASK_PARAMS];
    int n = cfg->task.nparams;
    for (int i = 0; i < n; i++) keys[i] = cfg->task.param_key[i], vals[i] = cfg->task.param_val[i];
    return task_create_named(cfg->task.name, cfg->task.variant, keys, vals, n, err);
}

void task_free(Task *t) {
    if (!t) return;
    t->kind->free(t->self);
    free(t);
}

int task_vocab(const Task *t) { return t->kind->vocab(t->self); }
const char *task_describe(const Task *t) { return t->kind->describe(t->self); }
double task_chance(const Task *t) { return t->kind->chance ? t->kind->chance(t->self) : -1; }
const TaskKind *task_kind(const Task *t) { return t->kind; }
int task_check_len(const Task *t, int T, Err *err) {
    if (T < 1) return err_set(err, "task %s: length %d: lengths must be >= 1", t->name, T);
    if (!t->kind->check_len) return 0;
    Err e;
    if (t->kind->check_len(t->self, T, &e) == 0) return 0;
    return err_set(err, "task %s: length %d: %s", t->name, T, e.msg);
}

void task_token_text(const Task *t, int token, char *buf, size_t n) {
    if (t->kind->token_text) t->kind->token_text(t->self, token, buf, n);
    else snprintf(buf, n, "%d", token);
}

void task_target_text(const Task *t, int target, char *buf, size_t n) {
    if (t->kind->target_text) t->kind->target_text(t->self, target, buf, n);
    else task_token_text(t, target, buf, n);
}

static void task_fill(const Task *t, gsl_rng *rng, Batch *b) {
    CHECK(b->B > 0 && b->T > 0 && b->inputs && b->targets && b->mask,
          "task batch not allocated (B=%d T=%d); call batch_alloc first", b->B, b->T);
    Err e;
    CHECK(task_check_len(t, b->T, &e) == 0, "%s (callers check lengths with task_check_len first)", e.msg);
    for (int i = 0; i < b->B; i++) {
        size_t o = (size_t)i * b->T;
        t->kind->fill(t->self, rng, b->T, b->inputs + o, b->targets + o, b->mask + o);
    }
}

void task_sample(Task *t, gsl_rng *rng, Batch *b) {
    CHECK(rng != NULL, "task_sample: rng is NULL");
    task_fill(t, rng, b);
}

/* splitmix64 finaliser: a bijective 64-bit mixer. */
static uint64_t task_mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void task_sample_rows(Task *t, gsl_rng *rng, Batch *b, const int *len) {
    CHECK(rng != NULL && len != NULL, "task_sample_rows: rng or len is NULL");
    CHECK(b->B > 0 && b->T > 0 && b->inputs && b->targets && b->mask,
          "task batch not allocated (B=%d T=%d); call batch_alloc first", b->B, b->T);
    for (int i = 0; i < b->B; i++) {
        CHECK(len[i] >= 1 && len[i] <= b->T, "task_sample_rows: row %d length %d outside [1, %d]", i, len[i], b->T);
        Err e;
        CHECK(task_check_len(t, len[i], &e) == 0, "%s (callers check lengths with task_check_len first)", e.msg);
        size_t o = (size_t)i * b->T, L = (size_t)len[i], pad = (size_t)b->T - L;
        t->kind->fill(t->self, rng, len[i], b->inputs + o, b->targets + o, b->mask + o);
        memset(b->inputs + o + L, 0, pad * sizeof(int));
        memset(b->targets + o + L, 0, pad * sizeof(int));
        memset(b->mask + o + L, 0, pad);
    }
}

gsl_rng *task_rng_fixed(unsigned long seed, int T, uint64_t salt) {
    uint64_t h = task_mix64(task_mix64(salt ^ (uint64_t)seed) ^ (uint64_t)T);
    /* mt19937 uses only the low 32 bits of its seed (and maps 0 to its default): fold, avoid 0. */
    unsigned long s32 = (unsigned long)((h ^ (h >> 32)) & 0xffffffffULL);
    if (s32 == 0) s32 = 1;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    CHECK(rng != NULL, "gsl_rng_alloc failed");
    gsl_rng_set(rng, s32);
    return rng;
}

void task_testset(Task *t, unsigned long seed, int T, int n, Batch *b) {
    CHECK(T > 0 && n > 0, "task_testset: T=%d n=%d must be positive", T, n);
    gsl_rng *rng = task_rng_fixed(seed, T, TASK_TESTSET_SALT);
    batch_alloc(b, n, T);
    task_fill(t, rng, b);
    gsl_rng_free(rng);
}
