/* step.c -- one training step's gradients over fixed batch shards (see step.h). */
#include "step.h"

#include <cblas.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

void train_step_init(TrainStep *ts, Model *m, int shards) {
    CHECK(m && m->grads, "train_step_init needs a model with gradients");
    CHECK(shards >= 1 && shards <= STEP_MAX_SHARDS, "train.shards = %d outside 1..%d", shards, STEP_MAX_SHARDS);
    memset(ts, 0, sizeof *ts);
    ts->m = m, ts->S = shards;
    ts->rep = xcalloc((size_t)shards, sizeof(Model *));
    ts->rep[0] = m;
    ts->loss = xcalloc((size_t)shards, sizeof(double));
    ts->nc = xcalloc((size_t)shards, sizeof(long));
    ts->cnt = xcalloc((size_t)shards, sizeof(long));
}

void train_step_free(TrainStep *ts) {
    if (!ts->rep) return;
    for (int s = 1; s < ts->S; s++)
        if (ts->rep[s]) model_free(ts->rep[s]);
    free(ts->rep), free(ts->loss), free(ts->nc), free(ts->cnt);
    memset(ts, 0, sizeof *ts);
}

size_t train_step_act_bytes(const TrainStep *ts) {
    size_t n = 0;
    for (int s = 0; s < ts->S; s++)
        if (ts->rep[s]) n += ts->rep[s]->arch->act_bytes(ts->rep[s]);
    return n;
}

int train_step_nshards(int B, int S) { return S < B ? S : B; }

/* Replica s (s >= 1) made ready for a step: created on first use, given the model's current parameters. */
static void replica_sync(TrainStep *ts, int s) {
    const Model *m = ts->m;
    if (!ts->rep[s]) {
        ts->rep[s] = model_create(m->arch, m->dims, 1);
        CHECK(ts->rep[s]->nparams == m->nparams, "replica of %s has %zu parameters, the model %zu", m->arch->name,
              ts->rep[s]->nparams, m->nparams);
    }
    Model *r = ts->rep[s];
    r->l2wrap = m->l2wrap;
    memcpy(r->params, m->params, m->nparams * sizeof(real));
}

typedef struct {
    const int *inputs, *targets;
    const unsigned char *mask;
    int B, T, K, n;       /* batch, length, checkpoint interval, shards */
    long count_all;       /* counted positions of the whole batch */
} StepJob;

/* forward, loss and backward of shard s: sequences [s*B/n, (s+1)*B/n) */
static void shard_run(TrainStep *ts, const StepJob *j, int s) {
    Model *sm = ts->rep[s];
    const int b0 = (int)((long)j->B * s / j->n), b1 = (int)((long)j->B * (s + 1) / j->n);
    const size_t o = (size_t)b0 * j->T;
    double t0 = now_seconds();
    memset(sm->grads, 0, sm->nparams * sizeof(real));
    /* the head at the counted rows only (the loss reads no other); L2Wrap reads every row */
    ModelFwd f = {.K = j->K, .head_rows = sm->l2wrap || ts->full_head ? NULL : j->mask + o};
    model_forward(sm, j->inputs + o, b1 - b0, j->T, &f);
    ts->loss[s] = model_loss(sm, j->targets + o, j->mask + o, NULL, &ts->nc[s], &ts->cnt[s]);
    if (s == 0) ts->fwd_s = now_seconds() - t0;
    model_backward_part(sm, j->count_all, (long)j->B * j->T);
}

double train_step_grads(TrainStep *ts, const int *inputs, const int *targets, const unsigned char *mask, int B,
                        int T, int K, long *ncorrect, long *ncount) {
    CHECK(B >= 1 && T >= 1, "train_step_grads: bad batch shape B=%d T=%d", B, T);
    double t0 = now_seconds();
    StepJob j = {.inputs = inputs, .targets = targets, .mask = mask, .B = B, .T = T, .K = K,
                 .n = train_step_nshards(B, ts->S)};
    for (size_t i = 0; i < (size_t)B * T; i++) j.count_all += mask[i] != 0;
    for (int s = 1; s < j.n; s++) replica_sync(ts, s); /* on one thread: creation allocates */

    int together = 0;
#ifdef _OPENMP
    const int nt = omp_get_max_threads();
    together = nt >= 2 && j.n >= 2 && nt <= j.n && !omp_in_parallel();
    if (together) {
        const int bt = openblas_get_num_threads();
        openblas_set_num_threads(1);
#pragma omp parallel num_threads(nt)
        {
            omp_set_num_threads(1); /* this thread's own loops (nested regions) run on it alone */
            for (int s = omp_get_thread_num(); s < j.n; s += nt) shard_run(ts, &j, s);
        }
        openblas_set_num_threads(bt);
    }
#endif
    if (!together)
        for (int s = 0; s < j.n; s++) shard_run(ts, &j, s);

    /* the sum over shards, in shard order (each parameter on its own: thread-count independent) */
    if (j.n > 1) {
        real *g = ts->m->grads;
        Model *const *rep = ts->rep;
        const size_t np = ts->m->nparams;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < np; i++) {
            real v = g[i];
            for (int s = 1; s < j.n; s++) v += rep[s]->grads[i];
            g[i] = v;
        }
    }
    double loss = 0;
    long nc = 0, cnt = 0;
    for (int s = 0; s < j.n; s++) loss += ts->loss[s] * ts->cnt[s], nc += ts->nc[s], cnt += ts->cnt[s];
    *ncorrect = nc, *ncount = cnt;
    ts->step_s = now_seconds() - t0;
    return cnt ? loss / cnt : 0;
}
