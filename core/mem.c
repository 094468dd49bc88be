/* mem.c -- available memory, estimates and the up-front check (rules in mem.h). */
#include "mem.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "task.h"

/* ---- what the machine has ---------------------------------------------------------------------- */
static char *slurp(const char *path, size_t max) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *b = malloc(max + 1);
    size_t n = b ? fread(b, 1, max, f) : 0;
    fclose(f);
    if (!b) return NULL;
    b[n] = 0;
    return b;
}

/* value of "key" (at a line start, followed by ':' or ' ') as an unsigned integer; 0 when absent */
static unsigned long long field_u64(const char *text, const char *key, int *found) {
    size_t kl = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, kl) || (p[kl] != ':' && p[kl] != ' ')) continue;
        const char *q = p + kl + (p[kl] == ':');
        while (*q == ' ' || *q == '\t') q++;
        char *e;
        errno = 0;
        unsigned long long v = strtoull(q, &e, 10);
        if (e == q || errno) return 0;
        if (found) *found = 1;
        return v;
    }
    return 0;
}

size_t mem_parse_meminfo(const char *text) {
    int found = 0;
    unsigned long long kb = field_u64(text, "MemAvailable", &found);
    if (!found || kb > SIZE_MAX / 1024) return 0;
    return (size_t)kb * 1024;
}

/* one number from a file ("max" = no limit); 0 when unreadable or unlimited */
static unsigned long long read_u64(const char *path, int *ok) {
    char *s = slurp(path, 64);
    *ok = 0;
    if (!s) return 0;
    char *e;
    unsigned long long v = strtoull(s, &e, 10);
    *ok = e != s;
    free(s);
    return v;
}

/* (limit - usage + reclaimable page cache) of the cgroup directory dir, or SIZE_MAX when unlimited */
static size_t cgroup_room(const char *dir, int v2) {
    char p[4200];
    int ok1, ok2;
    snprintf(p, sizeof p, "%s/%s", dir, v2 ? "memory.max" : "memory.limit_in_bytes");
    unsigned long long lim = read_u64(p, &ok1);
    if (!ok1 || lim >= (1ULL << 60)) return SIZE_MAX; /* "max", absent, or v1's page-rounded LONG_MAX */
    snprintf(p, sizeof p, "%s/%s", dir, v2 ? "memory.current" : "memory.usage_in_bytes");
    unsigned long long use = read_u64(p, &ok2);
    if (!ok2) use = 0;
    snprintf(p, sizeof p, "%s/memory.stat", dir);
    char *st = slurp(p, 1 << 16);
    unsigned long long inact = st ? field_u64(st, v2 ? "inactive_file" : "total_inactive_file", NULL) : 0;
    free(st);
    use = use > inact ? use - inact : 0;
    return lim > use ? (size_t)(lim - use) : 0;
}

/* smallest room from the cgroup at base/rel up to base itself */
static size_t cgroup_walk(const char *base, const char *rel, int v2) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s%s", base, rel);
    size_t room = SIZE_MAX;
    for (;;) {
        size_t r = cgroup_room(dir, v2);
        if (r < room) room = r;
        char *slash = strrchr(dir, '/');
        if (!slash || (size_t)(slash - dir) < strlen(base)) break;
        *slash = 0;
    }
    return room;
}

static size_t cgroup_available(void) {
    char *cg = slurp("/proc/self/cgroup", 1 << 14);
    if (!cg) return SIZE_MAX;
    size_t room = SIZE_MAX;
    for (char *line = strtok(cg, "\n"); line; line = strtok(NULL, "\n")) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = 0;
        const char *ctrl = c1 + 1, *rel = c2 + 1;
        if (!strcmp(rel, "/")) rel = "";
        size_t r = SIZE_MAX;
        if (!strncmp(line, "0", 1) && !*ctrl) { /* cgroup v2 (unified) */
            r = cgroup_walk("/sys/fs/cgroup", rel, 1);
            size_t r2 = cgroup_walk("/sys/fs/cgroup/unified", rel, 1);
            if (r2 < r) r = r2;
        } else if (strstr(ctrl, "memory")) { /* cgroup v1 memory controller */
            r = cgroup_walk("/sys/fs/cgroup/memory", rel, 0);
        }
        if (r < room) room = r;
    }
    free(cg);
    return room;
}

size_t mem_available_bytes(void) {
    const char *ov = getenv("RWKVLAB_MEM_AVAILABLE");
    if (ov && *ov) {
        char *e;
        errno = 0;
        unsigned long long v = strtoull(ov, &e, 10);
        if (!*e && !errno) return (size_t)v;
        fprintf(stderr, "rwkvlab: ignoring RWKVLAB_MEM_AVAILABLE='%s' (not a byte count)\n", ov);
    }
    char *mi = slurp("/proc/meminfo", 1 << 16);
    size_t avail = mi ? mem_parse_meminfo(mi) : 0;
    free(mi);
    size_t cg = cgroup_available();
    if (cg < avail || (avail == 0 && cg != SIZE_MAX)) avail = cg;
    return avail;
}

int mem_force_from_env(void) {
    const char *f = getenv("RWKVLAB_FORCE_MEMORY");
    return f && !strcmp(f, "1");
}

const char *mem_fmt(size_t b, char *buf, size_t n) {
    if (b >= ((size_t)1 << 30)) snprintf(buf, n, "%.2f GiB", b / 1073741824.0);
    else if (b >= ((size_t)1 << 20)) snprintf(buf, n, "%.1f MiB", b / 1048576.0);
    else if (b >= 1024) snprintf(buf, n, "%.1f KiB", b / 1024.0);
    else snprintf(buf, n, "%zu B", b);
    return buf;
}

int mem_check_hint(size_t need, const char *what, const char *hint, int force, Err *err) {
    size_t avail = mem_available_bytes();
    if (avail == 0 || need <= avail) return 0;
    char a[32], b[32];
    mem_fmt(need, a, sizeof a), mem_fmt(avail, b, sizeof b);
    if (force) {
        fprintf(stderr, "rwkvlab: warning: %s needs about %s of memory but only %s is available; trying anyway "
                        "(forced)\n", what, a, b);
        return 0;
    }
    return err_set(err, "%s needs about %s of memory but only %s is available (MemAvailable, or the cgroup limit if "
                        "lower). To fit, %s; or %s to try anyway",
                   what, a, b, hint ? hint : "free memory or use a smaller job", MEM_FORCE_HOW);
}

int mem_check(size_t need, const char *what, int force, Err *err) {
    return mem_check_hint(need, what, NULL, force, err);
}

/* ---- what a training run needs ------------------------------------------------------------------ */
/* bytes of a training model's forward at (B,T,K) and its loss: the architecture's activations (with its
 * token copy) and the shared loss buffers of model.c (probabilities and dlogits (R,V), targets, mask) */
static size_t fwd_bytes(const ModelArch *a, const void *dims, int V, int B, int T, int K) {
    const size_t R = (size_t)B * T;
    return a->act_bytes_for(dims, B, T, K, 1) + R * V * 2 * sizeof(real) + R * (sizeof(int) + 1);
}

static size_t batch_bytes(size_t B, size_t T) { return B * T * (2 * sizeof(int) + 1); }

/* smallest start * 2^k >= n */
static size_t grow_to(size_t start, size_t n) {
    size_t v = start;
    while (v < n) v *= 2;
    return v;
}

/* min(A^n, cap) without overflow */
static long pow_capped(long A, int n, long cap) {
    long v = 1;
    for (int i = 0; i < n && v < cap; i++) v = v > cap / (A > 0 ? A : 1) ? cap : v * A;
    return v < cap ? v : cap;
}

size_t mem_merrill_bytes(long N, int n, long npairs, size_t *build_peak) {
    const size_t rows = batch_bytes((size_t)N, (size_t)n);                 /* all N sequences once */
    const size_t slots = grow_to(2048, 2 * (size_t)N) * sizeof(long);       /* dataset_distinct's hash table */
    const size_t pair_rows = batch_bytes((size_t)npairs, 2);
    const size_t pair_slots = npairs ? grow_to(2048, 2 * (size_t)npairs) * sizeof(long) : 0;
    size_t peak = rows + slots;                                             /* drawing the distinct set */
    size_t split = 2 * rows + (size_t)N * sizeof(long);                     /* gather: set, both parts, idx */
    if (split > peak) peak = split;
    size_t pairs = rows + pair_rows + pair_slots;                           /* drawing the length-2 pairs */
    if (pairs > peak) peak = pairs;
    if (build_peak) *build_peak = peak;
    return rows + pair_rows;
}

/* The input alphabet of a task at length n, as seen in MEM_ALPHABET_TOKENS sampled input tokens (every
 * symbol of a uniform alphabet of up to ~1000 symbols is seen with near certainty); the vocabulary when
 * the task cannot be built here (config validation reports why). */
#define MEM_ALPHABET_TOKENS 16384
static long sampled_alphabet(const RunConfig *c, int n, int V) {
    Err e;
    Task *t = task_create(c, &e);
    if (!t) return V;
    Batch b;
    batch_alloc(&b, (MEM_ALPHABET_TOKENS + n - 1) / n, n);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    CHECK(rng != NULL, "gsl_rng_alloc failed");
    gsl_rng_set(rng, 1);
    task_sample(t, rng, &b);
    unsigned char *seen = xcalloc((size_t)task_vocab(t) + 1, 1);
    long A = 0;
    for (long i = 0; i < (long)b.B * n; i++)
        if (b.inputs[i] >= 0 && b.inputs[i] < task_vocab(t) && !seen[b.inputs[i]]) seen[b.inputs[i]] = 1, A++;
    free(seen);
    gsl_rng_free(rng);
    batch_free(&b);
    task_free(t);
    return A > 0 ? A : 1;
}

size_t mem_train_bytes(const RunConfig *c, const ModelArch *a, const void *dims, int K, MemTrainParts *parts) {
    MemTrainParts p = {0};
    int nt = 0;
    size_t np = 0;
    free(a->tensor_table(dims, &nt, &np));
    int vals[MODEL_MAX_DIMS], V = 0;
    model_dims_get(a, dims, vals);
    for (int i = 0; i < a->ndims; i++)
        if (!strcmp(a->dim_fields[i].name, "V")) V = vals[i];
    p.params = p.grads = np * sizeof(real);
    p.optim = 2 * np * sizeof(real);
    /* the activation and loss buffers only grow: their peak is the largest of the shapes the run forwards
     * (an evaluation batch larger than a training shard is counted whole, backward part included, though
     * evaluation never touches that part: then this is an upper bound of the resident size) */
    const int B = c->train.batch, T = c->task.train_len;
    /* the step's shards (step.h): min(shards, B) of at most ceil(B / that) sequences; shard 0 is the model */
    const int ns = c->train.shards < B ? c->train.shards : B, Bs = (B + ns - 1) / ns;
    size_t acts = fwd_bytes(a, dims, V, Bs, T, K);
    p.shards = (size_t)(ns - 1) * (2 * np * sizeof(real) + fwd_bytes(a, dims, V, Bs, T, K));
    long max_rows = (long)B * T; /* as train.c's run_eval / train_evaluate */
    if (max_rows < 4096) max_rows = 4096;
    int tmax = 0;
    p.data = batch_bytes((size_t)B, (size_t)T);
    for (int i = 0; i < c->task.ntest_lens; i++) {
        int tl = c->task.test_lens[i], n = c->task.test_size;
        if (tl > tmax) tmax = tl;
        int eb = (int)(max_rows / tl);
        if (eb < 1) eb = 1;
        if (eb > n) eb = n;
        size_t b = fwd_bytes(a, dims, V, eb, tl, K) + (size_t)eb * tl * sizeof(int); /* + predictions */
        if (b > acts) acts = b;
        p.data += batch_bytes((size_t)n, (size_t)tl);
    }
    if (c->log.trajectories > 0) {
        int tt = c->log.trajectory_len > 0 ? c->log.trajectory_len : tmax;
        size_t b = fwd_bytes(a, dims, V, 1, tt, K);
        if (b > acts) acts = b;
        /* model_trace_alloc's arrays, and the architecture's per-step state copy while tracing */
        Model *m = model_create(a, dims, 0); /* for the derived sizes; no forward, tiny next to a run */
        size_t LT = (size_t)m->L * tt, S = (size_t)m->H * m->N * m->Nv, per = S + (size_t)m->C * (a->rank_one ? 3 : 1);
        for (int i = 0; i < a->ntrace; i++) per += a->trace[i].per_head ? (size_t)m->H : (size_t)m->C;
        p.traj = LT * per * sizeof(float) + (size_t)tt * S * sizeof(real) +
                 batch_bytes((size_t)c->log.trajectories, (size_t)tt) + (size_t)tt * sizeof(int);
        model_free(m);
    }
    if (!strcmp(c->task.protocol, "merrill")) { /* the finite dataset (dataset.h), built before the model */
        const int n = c->task.train_len;
        const long A = sampled_alphabet(c, n, V);
        const long N = pow_capped(A, n, c->task.dataset_max), npairs = n > 2 ? pow_capped(A, 2, DATASET_PAIRS_MAX) : 0;
        p.dataset = mem_merrill_bytes(N, n, npairs, &p.dataset_build);
        p.data += p.dataset;
    }
    p.acts = acts;
    p.ckpt = 2 * np * sizeof(real);
    p.total = p.params + p.grads + p.optim + p.acts + p.data + p.traj + p.shards + p.ckpt;
    if (p.dataset_build > p.total) p.total = p.dataset_build; /* the build's peak comes before everything else */
    if (parts) *parts = p;
    return p.total;
}

int mem_train_dims(const RunConfig *c, int vocab, const ModelArch *a, void *dims, Err *err) {
    return a->dims_from_config(dims, c, vocab, err);
}

int mem_check_train(const RunConfig *c, int vocab, int K, int force, size_t *need, Err *err) {
    MemTrainParts p;
    const ModelArch *a = model_arch_find(c->model.arch);
    char dims[1024];
    if (!a) return err_set(err, "model.arch = %s is not known (available: %s)", c->model.arch, model_arch_names());
    if (mem_train_dims(c, vocab, a, dims, err)) return -1;
    mem_train_bytes(c, a, dims, K, &p);
    if (need) *need = p.total;
    char what[700], s[8][24];
    snprintf(what, sizeof what,
             "training (%s L=%d C=%d, batch %d x length %d) (parameters %s, gradients %s, AdamW moments %s, "
             "activations %s, data %s, trajectories %s, batch-shard replicas %s, checkpoint buffer %s)",
             a->title, c->model.layers, c->model.d_model, c->train.batch, c->task.train_len, mem_fmt(p.params, s[0], 24), mem_fmt(p.grads, s[1], 24),
             mem_fmt(p.optim, s[2], 24), mem_fmt(p.acts, s[3], 24), mem_fmt(p.data, s[4], 24),
             mem_fmt(p.traj, s[5], 24), mem_fmt(p.shards, s[7], 24), mem_fmt(p.ckpt, s[6], 24));
    if (p.dataset) {
        char d1[24], d2[24];
        size_t l = strlen(what);
        snprintf(what + l, sizeof what - l, " (of the data, the merrill dataset: %s, %s while it is built)",
                 mem_fmt(p.dataset, d1, sizeof d1), mem_fmt(p.dataset_build, d2, sizeof d2));
    }
    return mem_check_hint(p.total, what,
                          "use a smaller train.batch or task.train_len (activations), a larger train.chunk (state "
                          "checkpoints), a smaller model (model.layers, model.d_model), fewer or shorter "
                          "task.test_lens or, under task.protocol = merrill, a smaller task.dataset_max",
                          force || mem_force_from_env(), err);
}
