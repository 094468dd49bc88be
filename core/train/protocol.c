/* protocol.c -- training batches and test sets of a run (rules: protocol.h). */
#include "protocol.h"

#include <string.h>

int protocol_init(Protocol *p, const RunConfig *c, Task *t, unsigned long seed, Err *err) {
    memset(p, 0, sizeof *p);
    p->task = t;
    p->lo = config_train_len_min(c), p->hi = c->task.train_len;
    p->mixed = !strcmp(c->task.train_len_mode, "mixed");
    p->merrill = !strcmp(c->task.protocol, "merrill");
    char lens[160];
    config_format_lens(c->task.test_lens, c->task.ntest_lens, lens, sizeof lens);
    if (p->merrill) {
        if (dataset_merrill(t, seed, p->hi, c->task.train_fraction, c->task.dataset_max, &p->data, err)) return -1;
        snprintf(p->desc, sizeof p->desc, "merrill: length %d, %ld distinct sequences (%s), %d train + %d pairs of "
                 "length 2, %d held out (%d evaluated)", p->hi, p->data.distinct,
                 p->data.complete ? "all of them" : "capped by task.dataset_max", p->data.train.B, p->data.pairs.B,
                 p->data.test.B, p->data.test.B < c->task.test_size ? p->data.test.B : c->task.test_size);
    } else if (p->lo < p->hi) {
        snprintf(p->desc, sizeof p->desc, "train lengths %d-%d (%s); %d test length%s %s", p->lo, p->hi,
                 p->mixed ? "one per sequence, right-padded" : "one per batch", c->task.ntest_lens,
                 c->task.ntest_lens > 1 ? "s" : "", lens);
    } else {
        snprintf(p->desc, sizeof p->desc, "train length %d; %d test length%s %s", p->hi, c->task.ntest_lens,
                 c->task.ntest_lens > 1 ? "s" : "", lens);
    }
    return 0;
}

void protocol_free(Protocol *p) {
    if (p) dataset_free(&p->data);
}

void protocol_batch(const Protocol *p, gsl_rng *rng, Batch *b, int *row_len) {
    if (p->merrill) {
        b->T = p->hi;
        dataset_sample(&p->data, rng, b, row_len);
        return;
    }
    const unsigned long span = (unsigned long)(p->hi - p->lo + 1);
    if (p->lo < p->hi && p->mixed) {
        int *len = row_len ? row_len : xmalloc((size_t)b->B * sizeof *len), T = 1;
        for (int i = 0; i < b->B; i++) {
            len[i] = p->lo + (int)gsl_rng_uniform_int(rng, span);
            if (len[i] > T) T = len[i];
        }
        b->T = T;
        task_sample_rows(p->task, rng, b, len);
        if (!row_len) free(len);
        return;
    }
    b->T = p->lo < p->hi ? p->lo + (int)gsl_rng_uniform_int(rng, span) : p->hi;
    task_sample(p->task, rng, b);
    if (row_len)
        for (int i = 0; i < b->B; i++) row_len[i] = b->T;
}

void protocol_testset(const Protocol *p, int T, int n, unsigned long test_seed, Batch *b) {
    if (p->merrill && T == p->data.n) {
        const Batch *h = &p->data.test;
        int m = n < h->B ? n : h->B;
        batch_alloc(b, m, T);
        memcpy(b->inputs, h->inputs, (size_t)m * T * sizeof(int));
        memcpy(b->targets, h->targets, (size_t)m * T * sizeof(int));
        memcpy(b->mask, h->mask, (size_t)m * T);
        return;
    }
    task_testset(p->task, test_seed, T, n, b);
}
