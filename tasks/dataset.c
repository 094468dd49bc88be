/* dataset.c -- finite datasets of a task and the Merrill train/test split (rules and costs: dataset.h).
 *
 * The distinct sequences are kept in growing row arrays plus an open-addressing hash table of row
 * indices (linear probing, load <= 1/2); a hit is confirmed by comparing the inputs, so hash collisions
 * never merge two different sequences.
 */
#include "dataset.h"

#include <math.h>
#include <string.h>

#define STALE_FACTOR 25 /* stop after this many x (sequences held) draws without a new one ... */
#define STALE_MIN 1000  /* ... and at least this many */

typedef struct {
    int T;
    long n, cap;      /* rows held, rows allocated */
    int *in, *tg;     /* (cap, T) */
    unsigned char *mk;
    long *slot;       /* (nslot) row index + 1; 0 = empty */
    size_t nslot;
} Rows;

static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t hash_row(const int *in, int T) {
    uint64_t h = 0x51ed27a1b3c4d5e6ULL ^ (uint64_t)T;
    for (int t = 0; t < T; t++) h = mix64(h ^ (uint32_t)in[t]);
    return h;
}

static void rows_rehash(Rows *r, size_t nslot) {
    free(r->slot);
    r->slot = xcalloc(nslot, sizeof *r->slot);
    r->nslot = nslot;
    for (long i = 0; i < r->n; i++) {
        size_t j = hash_row(r->in + (size_t)i * r->T, r->T) & (nslot - 1);
        while (r->slot[j]) j = (j + 1) & (nslot - 1);
        r->slot[j] = i + 1;
    }
}

/* Adds the row (in, tg, mk) unless its inputs are already held; 1 when added. */
static int rows_add(Rows *r, const int *in, const int *tg, const unsigned char *mk) {
    const size_t T = (size_t)r->T;
    size_t j = hash_row(in, r->T) & (r->nslot - 1);
    for (; r->slot[j]; j = (j + 1) & (r->nslot - 1))
        if (!memcmp(r->in + (size_t)(r->slot[j] - 1) * T, in, T * sizeof(int))) return 0;
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 1024;
        r->in = realloc(r->in, (size_t)r->cap * T * sizeof(int));
        r->tg = realloc(r->tg, (size_t)r->cap * T * sizeof(int));
        r->mk = realloc(r->mk, (size_t)r->cap * T);
        CHECK(r->in && r->tg && r->mk, "out of memory holding %ld distinct sequences of length %d", r->cap, r->T);
    }
    memcpy(r->in + (size_t)r->n * T, in, T * sizeof(int));
    memcpy(r->tg + (size_t)r->n * T, tg, T * sizeof(int));
    memcpy(r->mk + (size_t)r->n * T, mk, T);
    r->slot[j] = ++r->n;
    if ((size_t)r->n * 2 > r->nslot) rows_rehash(r, r->nslot * 2);
    return 1;
}

int dataset_distinct(Task *t, gsl_rng *rng, int T, long max, Batch *out, int *complete, Err *err) {
    if (T < 1 || max < 1) return err_set(err, "dataset: length %d and size %ld must be positive", T, max);
    Rows r = {.T = T};
    rows_rehash(&r, 2048);
    Batch one;
    batch_alloc(&one, 1, T);
    long stale = 0;
    *complete = 0;
    while (r.n < max) {
        task_sample(t, rng, &one);
        if (rows_add(&r, one.inputs, one.targets, one.mask)) stale = 0;
        else if (++stale >= (r.n * STALE_FACTOR > STALE_MIN ? r.n * STALE_FACTOR : STALE_MIN)) {
            *complete = 1;
            break;
        }
    }
    batch_free(&one);
    free(r.slot);
    out->B = (int)r.n, out->T = T;
    out->inputs = r.in, out->targets = r.tg, out->mask = r.mk;
    return 0;
}

/* rows idx[lo..hi) of src into a new batch */
static void gather(const Batch *src, const long *idx, long lo, long hi, Batch *dst) {
    batch_alloc(dst, (int)(hi - lo), src->T);
    const size_t T = (size_t)src->T;
    for (long i = lo; i < hi; i++) {
        size_t s = (size_t)idx[i] * T, d = (size_t)(i - lo) * T;
        memcpy(dst->inputs + d, src->inputs + s, T * sizeof(int));
        memcpy(dst->targets + d, src->targets + s, T * sizeof(int));
        memcpy(dst->mask + d, src->mask + s, T);
    }
}

int dataset_merrill(Task *t, unsigned long seed, int n, double train_fraction, long max, FiniteSet *d, Err *err) {
    memset(d, 0, sizeof *d);
    if (n < 2 || !(train_fraction > 0 && train_fraction < 1) || max < 2)
        return err_set(err, "dataset: n = %d (>= 2), train_fraction = %g (in (0, 1)) and size %ld (>= 2) needed", n,
                       train_fraction, max);
    d->n = n;
    gsl_rng *rng = task_rng_fixed(seed, n, DATASET_SALT);
    Batch all;
    dataset_distinct(t, rng, n, max, &all, &d->complete, err);
    d->distinct = all.B;
    long ntrain = (long)floor(train_fraction * (double)all.B + 0.5);
    if (ntrain < 1 || ntrain >= all.B) {
        err_set(err, "task.protocol = merrill: the task has %ld distinct length-%d sequences%s; task.train_fraction = "
                "%g leaves %s — use a longer task.train_len or a train_fraction nearer 0.5", d->distinct, n,
                d->complete ? "" : " (capped by task.dataset_max)", train_fraction,
                ntrain < 1 ? "none to train on" : "none held out for testing");
        gsl_rng_free(rng);
        batch_free(&all);
        return -1;
    }
    long *idx = xmalloc((size_t)all.B * sizeof *idx);
    for (long i = 0; i < all.B; i++) idx[i] = i;
    for (long i = all.B - 1; i > 0; i--) { /* Fisher-Yates */
        long j = (long)gsl_rng_uniform_int(rng, (unsigned long)i + 1), x = idx[i];
        idx[i] = idx[j], idx[j] = x;
    }
    gather(&all, idx, 0, ntrain, &d->train);
    gather(&all, idx, ntrain, all.B, &d->test);
    free(idx);
    batch_free(&all);
    gsl_rng_free(rng);
    if (n > 2) {
        rng = task_rng_fixed(seed, 2, DATASET_PAIRS_SALT);
        dataset_distinct(t, rng, 2, DATASET_PAIRS_MAX, &d->pairs, &d->pairs_complete, err);
        gsl_rng_free(rng);
    }
    return 0;
}

void dataset_free(FiniteSet *d) {
    if (!d) return;
    batch_free(&d->train);
    batch_free(&d->test);
    batch_free(&d->pairs);
    memset(d, 0, sizeof *d);
}

void dataset_sample(const FiniteSet *d, gsl_rng *rng, Batch *b, int *row_len) {
    CHECK(b->T == d->n && d->train.B > 0, "dataset_sample: batch length %d, dataset length %d", b->T, d->n);
    const unsigned long pool = (unsigned long)d->train.B + (unsigned long)d->pairs.B;
    const size_t T = (size_t)d->n;
    for (int i = 0; i < b->B; i++) {
        unsigned long k = gsl_rng_uniform_int(rng, pool);
        size_t o = (size_t)i * T;
        if (row_len) row_len[i] = k < (unsigned long)d->train.B ? d->n : 2;
        if (k < (unsigned long)d->train.B) {
            size_t s = (size_t)k * T;
            memcpy(b->inputs + o, d->train.inputs + s, T * sizeof(int));
            memcpy(b->targets + o, d->train.targets + s, T * sizeof(int));
            memcpy(b->mask + o, d->train.mask + s, T);
        } else {
            size_t s = (size_t)(k - d->train.B) * 2;
            memcpy(b->inputs + o, d->pairs.inputs + s, 2 * sizeof(int));
            memcpy(b->targets + o, d->pairs.targets + s, 2 * sizeof(int));
            memcpy(b->mask + o, d->pairs.mask + s, 2);
            memset(b->inputs + o + 2, 0, (T - 2) * sizeof(int));
            memset(b->targets + o + 2, 0, (T - 2) * sizeof(int));
            memset(b->mask + o + 2, 0, T - 2);
        }
    }
}
