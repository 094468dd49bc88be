/* grad_step.c -- the sharded training step (core/train/step.h) in double precision, for every architecture:
 * its gradient against finite differences of the whole batch's loss; against one unsharded backward
 * (equal up to the order of the shard sum) for 1, 2, 3 and B shards, uneven ones included, with a mask and
 * with L2Wrap; the replicas follow the model's parameters from one step to the next. Without L2Wrap a shard
 * computes the head at its counted rows only (ModelFwd.head_rows, logits packed), the reference at every
 * row: the comparison and the finite differences check that path too. */
#include <string.h>

#include "config.h"
#include "gradcheck.h"
#include "model.h"
#include "step.h"

enum { V = 11, B = 5, T = 7 };

/* a small model of every architecture, official init then perturbed so that no gradient is trivially 0 */
static Model *small_model(const ModelArch *a, gsl_rng *rng) {
    RunConfig c;
    config_defaults(&c);
    Err err = {{0}};
    char set[128];
    const char *sets[] = {set, "model.d_model=32", "model.head_size=16", "model.layers=2",
                          strcmp(a->name, "rwkv6") ? "model.eig_range=extended" : "model.eig_range=standard"};
    snprintf(set, sizeof set, "model.arch=%s", a->name);
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        cr_assert_eq(config_set(&c, sets[i], &err), 0, "%s: %s", sets[i], err.msg);
    cr_assert_eq(config_validate(&c, &err), 0, "%s: %s", a->name, err.msg);
    char dims[1024];
    cr_assert(a->dims_size <= sizeof dims);
    cr_assert_eq(a->dims_from_config(dims, &c, V, &err), 0, "%s: %s", a->name, err.msg);
    Model *m = model_create(a, dims, 1);
    model_init(m, rng, &c);
    for (size_t i = 0; i < m->nparams; i++) m->params[i] += (real)(0.2 * (2 * gsl_rng_uniform(rng) - 1));
    return m;
}

typedef struct {
    Model *m;
    int *tok, *tgt;
    unsigned char *mask;
} Case;

static void make_case(Case *c, const ModelArch *a, gsl_rng *rng) {
    c->m = small_model(a, rng);
    c->tok = malloc(B * T * sizeof(int)), c->tgt = malloc(B * T * sizeof(int)), c->mask = malloc(B * T);
    for (int i = 0; i < B * T; i++) {
        c->tok[i] = (int)gsl_rng_uniform_int(rng, V);
        c->tgt[i] = (int)gsl_rng_uniform_int(rng, V);
        c->mask[i] = (i % 4) != 1 && i / T != 3; /* sequence 3 has no counted token: its shard's count is 0 */
    }
}

static void free_case(Case *c) {
    model_free(c->m);
    free(c->tok), free(c->tgt), free(c->mask);
}

/* the whole batch's loss in one forward (finite differences go through this) */
static double whole_loss(void *ctx) {
    Case *c = ctx;
    long nc, cnt;
    ModelFwd f = {.K = 3};
    model_forward(c->m, c->tok, B, T, &f);
    return model_loss(c->m, c->tgt, c->mask, NULL, &nc, &cnt);
}

/* unsharded reference gradient and loss */
static double whole_grads(Case *c, real *g) {
    double loss = whole_loss(c);
    memset(c->m->grads, 0, c->m->nparams * sizeof(real));
    model_backward(c->m);
    memcpy(g, c->m->grads, c->m->nparams * sizeof(real));
    return loss;
}

static double max_rel(const real *a, const real *b, size_t n) {
    double scale = 0, d = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i])), d = fmax(d, fabs(a[i] - b[i]));
    return d / (scale > 0 ? scale : 1);
}

Test(step, sharded_gradient_equals_unsharded_and_finite_differences) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 7);
    int narchs = 0;
    for (const ModelArch *const *a = model_archs; *a; a++, narchs++)
        for (int l2 = 0; l2 < 2; l2++) {
            Case c;
            make_case(&c, *a, rng);
            c.m->l2wrap = l2;
            const size_t np = c.m->nparams;
            real *ref = malloc(np * sizeof(real));
            double lref = whole_grads(&c, ref);
            long ncref, cref;
            model_loss(c.m, c.tgt, c.mask, NULL, &ncref, &cref);
            const int shards[] = {1, 2, 3, B, 8}; /* 8 > B: B shards of one sequence */
            for (size_t k = 0; k < sizeof shards / sizeof *shards; k++) {
                TrainStep ts;
                train_step_init(&ts, c.m, shards[k]);
                long nc, cnt;
                double loss = train_step_grads(&ts, c.tok, c.tgt, c.mask, B, T, 3, &nc, &cnt);
                double e = max_rel(c.m->grads, ref, np);
                cr_expect(e < 1e-12, "%s l2wrap=%d shards=%d: gradient differs from one backward by %.3g (relative)",
                          (*a)->name, l2, shards[k], e);
                cr_expect(fabs(loss - lref) < 1e-13 * fabs(lref), "%s shards=%d: loss %.17g, unsharded %.17g",
                          (*a)->name, shards[k], loss, lref);
                cr_expect(cnt == cref && nc == ncref, "%s shards=%d: %ld of %ld correct, unsharded %ld of %ld",
                          (*a)->name, shards[k], nc, cnt, ncref, cref);
                if (shards[k] == 3 && !l2) { /* the sharded gradient itself, against the whole batch's loss */
                    for (int t = 0; t < c.m->ntensors; t++) {
                        const ParamTensor *p = &c.m->tensors[t];
                        real *g = malloc(p->numel * sizeof(real));
                        memcpy(g, c.m->grads + p->offset, p->numel * sizeof(real));
                        check_grad(p->name, c.m->params + p->offset, g, p->numel, whole_loss, &c, 4, rng, GRAD_TOL);
                        free(g);
                    }
                }
                train_step_free(&ts);
            }
            free(ref);
            free_case(&c);
        }
    cr_expect_eq(narchs, 4, "the registry has %d architectures; this test knows 4", narchs);
    gsl_rng_free(rng);
}

/* A replica must see the parameters the optimizer left: change them between two steps. */
Test(step, replicas_follow_the_parameters) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 8);
    for (const ModelArch *const *a = model_archs; *a; a++) {
        Case c;
        make_case(&c, *a, rng);
        const size_t np = c.m->nparams;
        TrainStep ts;
        train_step_init(&ts, c.m, 2);
        long nc, cnt;
        train_step_grads(&ts, c.tok, c.tgt, c.mask, B, T, 3, &nc, &cnt);
        for (size_t i = 0; i < np; i++) c.m->params[i] -= (real)0.05 * c.m->grads[i];
        real *ref = malloc(np * sizeof(real));
        whole_grads(&c, ref);
        train_step_grads(&ts, c.tok, c.tgt, c.mask, B, T, 3, &nc, &cnt);
        double e = max_rel(c.m->grads, ref, np);
        cr_expect(e < 1e-12, "%s: after a parameter update the sharded gradient differs by %.3g", (*a)->name, e);
        free(ref);
        train_step_free(&ts);
        free_case(&c);
    }
    gsl_rng_free(rng);
}
