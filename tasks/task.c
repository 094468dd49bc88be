/* task.c -- group word problems (spec/tasks.md §1): inputs g_1..g_T, targets the prefix products.
 *
 * Tasks: s5, a5, s3 (case-insensitive). Variants choose the input distribution, always uniform over a
 * fixed element list (in group index order):
 *   full    every element of the group
 *   swaps   identity + transpositions (elements moving <= 2 points; S5: 11). Not valid for A5 (odd).
 *   swaps3  elements moving <= 3 points: identity, transpositions, 3-cycles (S5: 31; A5: 21)
 * Token ids are group element indices (group.h), so V = order for inputs and targets alike.
 * targets[b,t] = g_1·g_2·...·g_t with g_1 applied first (group.h composition rule); mask is all 1.
 *
 * Randomness: GSL only. task_sample draws B*T indices from the caller's rng, row-major (b outer,
 * t inner), one gsl_rng_uniform_int per token. task_testset uses its own gsl_rng_mt19937 seeded from a
 * hash of (seed, T, salt): the test set depends only on (task, seed, T, n) -- never on the training
 * stream -- and the first m sequences of a size-n set equal the size-m set.
 */
#include "task.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "group.h"

#define TASK_NAMES "s5, a5, s3"
#define TASK_VARIANTS "full, swaps, swaps3"
#define TASK_TESTSET_SALT 0x7e575e7a5c0ffeeULL

static const struct {
    const char *name;
    char kind; /* 'S' symmetric, 'A' alternating */
    int n;
} task_groups[] = {{"s5", 'S', 5}, {"a5", 'A', 5}, {"s3", 'S', 3}};

static const struct {
    const char *name;
    int max_moved; /* element list = elements moving at most this many points; -1 = all */
    const char *what;
} task_variants[] = {
    {"full", -1, "uniform over the group"},
    {"swaps", 2, "identity + transpositions"},
    {"swaps3", 3, "permutations moving <= 3 points"},
};

#define NUM(a) ((int)(sizeof(a) / sizeof((a)[0])))

struct Task {
    Group g;
    int *elems;   /* (nelems) input alphabet as group element indices */
    int nelems;
    char desc[256];
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

/* Element list of a variant (max_moved < 0: all). Returns count; out has capacity g->order. */
static int task_variant_elems(const Group *g, int max_moved, int *out) {
    return group_elements_moving_at_most(g, max_moved < 0 ? g->n : max_moved, out);
}

Task *task_create(const RunConfig *cfg, Err *err) {
    const char *name = cfg->task.name, *variant = cfg->task.variant;
    int gi = -1, vi = -1;
    for (int i = 0; i < NUM(task_groups); i++)
        if (strcasecmp(name, task_groups[i].name) == 0) gi = i;
    if (gi < 0) {
        err_set(err, "[task] name = '%s' is unknown; allowed values: " TASK_NAMES, name);
        return NULL;
    }
    for (int i = 0; i < NUM(task_variants); i++)
        if (strcasecmp(variant, task_variants[i].name) == 0) vi = i;
    if (vi < 0) {
        err_set(err, "[task] variant = '%s' is unknown; allowed values: " TASK_VARIANTS, variant);
        return NULL;
    }

    Task *t = xcalloc(1, sizeof *t);
    int rc = task_groups[gi].kind == 'S' ? group_init_symmetric(&t->g, task_groups[gi].n, err)
                                         : group_init_alternating(&t->g, task_groups[gi].n, err);
    CHECK(rc == 0, "built-in group %s failed to build: %s", task_groups[gi].name, err ? err->msg : "");
    t->elems = xmalloc((size_t)t->g.order * sizeof *t->elems);
    t->nelems = task_variant_elems(&t->g, task_variants[vi].max_moved, t->elems);

    /* A variant whose list is only the identity (swaps in A_n: transpositions are odd) is rejected. */
    if (t->nelems < 2 && t->g.order > 1) {
        char allowed[128] = "";
        for (int i = 0; i < NUM(task_variants); i++) {
            if (task_variant_elems(&t->g, task_variants[i].max_moved, NULL) < 2) continue;
            if (allowed[0]) strncat(allowed, ", ", sizeof allowed - strlen(allowed) - 1);
            strncat(allowed, task_variants[i].name, sizeof allowed - strlen(allowed) - 1);
        }
        err_set(err,
                "[task] variant = '%s' is not valid for %s: its inputs (%s) would be only the identity "
                "in %s (transpositions are odd permutations, not in A_n); allowed values for %s: %s",
                variant, name, task_variants[vi].what, t->g.name, task_groups[gi].name, allowed);
        task_free(t);
        return NULL;
    }
    snprintf(t->desc, sizeof t->desc,
             "%s (order %d), inputs: %s (%d elements, %s), prefix-product labels, g1 applied first",
             t->g.name, t->g.order, task_variants[vi].name, t->nelems, task_variants[vi].what);
    return t;
}

void task_free(Task *t) {
    if (!t) return;
    group_free(&t->g);
    free(t->elems);
    free(t);
}

int task_vocab(const Task *t) { return t->g.order; }

const char *task_describe(const Task *t) { return t->desc; }

/* Fill b: inputs uniform over t->elems, targets = running product "acc then g" (g_1 first). */
static void task_fill(const Task *t, gsl_rng *rng, Batch *b) {
    CHECK(b->B > 0 && b->T > 0 && b->inputs && b->targets && b->mask,
          "task batch not allocated (B=%d T=%d); call batch_alloc first", b->B, b->T);
    const int ord = t->g.order;
    for (int i = 0; i < b->B; i++) {
        int *in = b->inputs + (size_t)i * b->T;   /* (T) */
        int *tg = b->targets + (size_t)i * b->T;  /* (T) */
        int acc = 0;                              /* identity */
        for (int s = 0; s < b->T; s++) {
            int g = t->elems[gsl_rng_uniform_int(rng, (unsigned long)t->nelems)];
            acc = t->g.mul[acc * ord + g];        /* g_1..g_{s-1} applied, then g_s */
            in[s] = g;
            tg[s] = acc;
        }
    }
    memset(b->mask, 1, (size_t)b->B * b->T);
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

void task_testset(Task *t, unsigned long seed, int T, int n, Batch *b) {
    CHECK(T > 0 && n > 0, "task_testset: T=%d n=%d must be positive", T, n);
    uint64_t h = task_mix64(task_mix64(TASK_TESTSET_SALT ^ (uint64_t)seed) ^ (uint64_t)T);
    /* mt19937 uses only the low 32 bits of its seed (and maps 0 to its default): fold, avoid 0. */
    unsigned long s32 = (unsigned long)((h ^ (h >> 32)) & 0xffffffffULL);
    if (s32 == 0) s32 = 1;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    CHECK(rng != NULL, "gsl_rng_alloc failed");
    gsl_rng_set(rng, s32);
    batch_alloc(b, n, T);
    task_fill(t, rng, b);
    gsl_rng_free(rng);
}
