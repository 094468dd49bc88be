/* test_step.c -- the sharded training step (core/train/step.h) in the release precision: for every
 * architecture the gradients do not depend on the thread count (1 thread: shards one after another; 2 and
 * 3: shards at the same time, a thread taking several when there are more shards than threads), and do
 * depend on the shard count only through rounding. The fp64 build checks them against finite differences
 * and one unsharded backward (grad_step.c). */
#include <criterion/criterion.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "config.h"
#include "model.h"
#include "step.h"

enum { V = 17, B = 6, T = 24 };

static Model *small_model(const ModelArch *a, unsigned long seed) {
    RunConfig c;
    config_defaults(&c);
    Err err = {{0}};
    char set[128];
    const char *sets[] = {set, "model.d_model=64", "model.head_size=16", "model.layers=2"};
    snprintf(set, sizeof set, "model.arch=%s", a->name);
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        cr_assert_eq(config_set(&c, sets[i], &err), 0, "%s: %s", sets[i], err.msg);
    cr_assert_eq(config_validate(&c, &err), 0, "%s: %s", a->name, err.msg);
    char dims[1024];
    cr_assert_eq(a->dims_from_config(dims, &c, V, &err), 0, "%s: %s", a->name, err.msg);
    Model *m = model_create(a, dims, 1);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, seed);
    model_init(m, rng, &c);
    for (size_t i = 0; i < m->nparams; i++) m->params[i] += (real)(0.1 * (2 * gsl_rng_uniform(rng) - 1));
    gsl_rng_free(rng);
    return m;
}

/* gradients of one sharded step with `threads` OpenMP threads (BLAS as the test environment sets it) */
static real *step_grads(const ModelArch *a, int shards, int threads, const int *tok, const int *tgt,
                        const unsigned char *mask, double *loss, size_t *np) {
    Model *m = small_model(a, 3);
    TrainStep ts;
    train_step_init(&ts, m, shards);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    long nc, cnt;
    for (int rep = 0; rep < 2; rep++) /* twice: the second step reuses the replicas and their buffers */
        *loss = train_step_grads(&ts, tok, tgt, mask, B, T, 16, &nc, &cnt);
    omp_set_num_threads(saved);
    *np = m->nparams;
    real *g = malloc(*np * sizeof(real));
    memcpy(g, m->grads, *np * sizeof(real));
    train_step_free(&ts);
    model_free(m);
    return g;
}

Test(step, gradients_do_not_depend_on_the_thread_count) {
    int tok[B * T], tgt[B * T];
    unsigned char mask[B * T];
    for (int i = 0; i < B * T; i++) tok[i] = (i * 7 + 3) % V, tgt[i] = (i * 5 + 1) % V, mask[i] = i % 3 != 0;
    for (const ModelArch *const *a = model_archs; *a; a++) {
        const int shards[] = {2, 3, 5};
        real *g2 = NULL;
        size_t np = 0;
        for (size_t k = 0; k < sizeof shards / sizeof *shards; k++) {
            double l1, l2, l3;
            real *g1 = step_grads(*a, shards[k], 1, tok, tgt, mask, &l1, &np);
            real *gt = step_grads(*a, shards[k], 2, tok, tgt, mask, &l2, &np);
            real *g3 = step_grads(*a, shards[k], 3, tok, tgt, mask, &l3, &np);
            cr_expect(memcmp(g1, gt, np * sizeof(real)) == 0 && l1 == l2,
                      "%s, %d shards: 1 and 2 threads give different gradients", (*a)->name, shards[k]);
            cr_expect(memcmp(g1, g3, np * sizeof(real)) == 0 && l1 == l3,
                      "%s, %d shards: 1 and 3 threads give different gradients", (*a)->name, shards[k]);
            if (k == 0) g2 = g1;
            else { /* another shard count: the same gradient up to float rounding of the shard sum */
                double d = 0, s = 0;
                for (size_t i = 0; i < np; i++) d = fmax(d, fabs(g1[i] - g2[i])), s = fmax(s, fabs(g2[i]));
                cr_expect(d <= 1e-4 * s, "%s: %d and 2 shards differ by %.3g (max |g| %.3g)", (*a)->name, shards[k], d, s);
                free(g1);
            }
            free(gt), free(g3);
        }
        free(g2);
    }
}
