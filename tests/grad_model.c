/* grad_model.c -- whole-model checks on a tiny RWKV-7 in double precision:
 * every parameter tensor's gradient vs finite differences (standard and extended eigenvalue range,
 * with and without ln0, with the short conv), recurrent mode == sequence mode from a non-zero state
 * (with and without the short conv, whose history is part of the state), chunked == unchunked. */
#include <string.h>

#include "gradcheck.h"
#include "rwkv7.h"

enum { B = 2, T = 20, V = 11 };

typedef struct {
    Rwkv7 *m;
    int *tok, *tgt;
    unsigned char *mask;
    int K;
} ModelCase;

/* the loss through the model interface (model.h): the shared masked cross-entropy */
static double case_loss(void *ctx) {
    ModelCase *c = ctx;
    long nc, cnt;
    ModelFwd f = {.K = c->K};
    model_forward(&c->m->head, c->tok, B, T, &f);
    return model_loss(&c->m->head, c->tgt, c->mask, NULL, &nc, &cnt);
}

/* Official init, then every tensor perturbed so that no gradient path is trivially zero
 * (official init zeroes w1, a1, v1, g1, output and ffn.value). */
static Rwkv7 *tiny_model_c(gsl_rng *rng, int L, int extended, int ln0, int bias, int conv) {
    Rwkv7Dims d = {.V = V, .C = 32, .L = L, .N = 16, .Dw = 8, .Da = 8, .Dv = 4, .Dg = 8, .extended = extended,
                   .has_ln0 = ln0, .bias = bias, .conv = conv};
    Rwkv7 *m = rwkv7_create(&d);
    /* the conv is there when asked for (a model that ignored it would pass every other check) */
    cr_assert_eq(rwkv7_find(m, "blocks.0.att.r_conv.weight") != NULL, conv > 0, "conv=%d: att.r_conv.weight %s", conv,
                 conv ? "missing" : "present");
    rwkv7_init_official(m, rng);
    for (int i = 0; i < m->ntensors; i++) {
        const ParamTensor *p = &m->tensors[i];
        real *x = m->params + p->offset;
        double s = strstr(p->name, "emb") ? 0.5 : 0.2;
        for (size_t e = 0; e < p->numel; e++) x[e] += (real)(s * (2 * gsl_rng_uniform(rng) - 1));
    }
    return m;
}
static Rwkv7 *tiny_model(gsl_rng *rng, int L, int extended, int ln0, int conv) {
    return tiny_model_c(rng, L, extended, ln0, 0, conv);
}

static void make_data(ModelCase *c, gsl_rng *rng) {
    c->tok = malloc(B * T * sizeof(int)), c->tgt = malloc(B * T * sizeof(int)), c->mask = malloc(B * T);
    for (int i = 0; i < B * T; i++) {
        c->tok[i] = gsl_rng_uniform_int(rng, V);
        c->tgt[i] = gsl_rng_uniform_int(rng, V);
        c->mask[i] = (i % 5) != 2;
    }
}

static void full_check(int L, int extended, int ln0, int bias, int conv, unsigned long seed) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, seed);
    ModelCase c = {.m = tiny_model_c(rng, L, extended, ln0, bias, conv), .K = 6};
    make_data(&c, rng);
    Rwkv7 *m = c.m;
    printf("tiny RWKV-7 L=%d C=32 N=16 T=%d B=%d V=%d extended=%d ln0=%d short_conv=%d: %d tensors, %zu params\n", L,
           T, B, V, extended, ln0, conv, m->ntensors, m->nparams);
    memset(m->grads, 0, m->nparams * sizeof(real));
    case_loss(&c);
    model_backward(&m->head);
    real *analytic = malloc(m->nparams * sizeof(real));
    memcpy(analytic, m->grads, m->nparams * sizeof(real));
    double worst = 0;
    for (int i = 0; i < m->ntensors; i++) {
        const ParamTensor *p = &m->tensors[i];
        double nz = 0;
        for (size_t e = 0; e < p->numel; e++) nz += fabs(analytic[p->offset + e]);
        cr_expect(nz > 0, "%s: gradient is identically zero (path not exercised)", p->name);
        double w = check_grad(p->name, m->params + p->offset, analytic + p->offset, p->numel, case_loss, &c, 48,
                              rng, GRAD_TOL);
        if (w > worst) worst = w;
    }
    printf("worst err/limit over all %d tensors: %.3f (headroom %.1fx)\n", m->ntensors, worst, 1 / worst);
    free(analytic), free(c.tok), free(c.tgt), free(c.mask);
    model_free(&m->head);
    gsl_rng_free(rng);
}

Test(grad_model, every_tensor_standard, .timeout = 600) { full_check(2, 0, 1, 0, 0, 101); }
Test(grad_model, every_tensor_extended_no_ln0, .timeout = 600) { full_check(2, 1, 0, 0, 0, 202); }
Test(grad_model, every_tensor_three_layers, .timeout = 600) { full_check(3, 0, 1, 0, 0, 303); }
/* the optional Linear biases of research checkpoints (att.*.bias, ffn.*.bias, head.bias) */
Test(grad_model, every_tensor_with_biases, .timeout = 600) { full_check(2, 0, 0, RWKV7_BIAS_ALL, 0, 404); }
/* model.short_conv = 4 on r, k, v (att.{r,k,v}_conv.weight), extended range: the conv feeds kk, the a-modulated
 * key, the value residual (layer 0's v is v_first), the WKV and the bonus */
Test(grad_model, every_tensor_short_conv, .timeout = 600) { full_check(2, 1, 1, 0, 4, 505); }

/* Sequence mode over T tokens == recurrent mode one token at a time, both starting from the same
 * non-zero state; logits and final state (with the conv's history: the last K-1 inputs of r, k, v)
 * agree to rounding. */
static void recurrent_check(int conv) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 9);
    Rwkv7 *m = tiny_model(rng, 2, 0, 1, conv);
    int tok[B * T];
    for (int i = 0; i < B * T; i++) tok[i] = gsl_rng_uniform_int(rng, V);
    size_t ns = rwkv7_state_numel(&m->d, B);
    real *s0 = malloc(ns * sizeof(real)), *sseq = malloc(ns * sizeof(real));
    fill_uniform(s0, ns, rng, -0.3, 0.3);
    real *seq = malloc((size_t)B * T * V * sizeof(real));
    memcpy(seq, rwkv7_forward(m, tok, B, T, 4, s0, sseq, NULL), (size_t)B * T * V * sizeof(real));
    /* the same tokens from a zero state: the start state must matter (else the check proves nothing) */
    const real *lz = rwkv7_forward(m, tok, B, T, 4, NULL, NULL, NULL);
    double dz = 0;
    for (size_t i = 0; i < (size_t)B * T * V; i++) dz = fmax(dz, fabs(lz[i] - seq[i]));
    const size_t HC = conv > 1 ? (size_t)(conv - 1) * m->d.C : 0; /* one sequence's history of one of r, k, v */
    double maxd = 0, dconv = 0;
    for (int b = 0; b < B; b++) {
        /* state of sequence b alone: copy its slices out of the batched layout */
        size_t n1 = rwkv7_state_numel(&m->d, 1);
        real *s = malloc(n1 * sizeof(real));
        for (int l = 0; l < m->d.L; l++) {
            size_t C = m->d.C, NN = (size_t)m->d.H * m->d.N * m->d.N;
            memcpy(rwkv7_state_att_prev(&m->d, s, 1, l), rwkv7_state_att_prev(&m->d, s0, B, l) + b * C, C * sizeof(real));
            memcpy(rwkv7_state_wkv(&m->d, s, 1, l), rwkv7_state_wkv(&m->d, s0, B, l) + b * NN, NN * sizeof(real));
            memcpy(rwkv7_state_ffn_prev(&m->d, s, 1, l), rwkv7_state_ffn_prev(&m->d, s0, B, l) + b * C, C * sizeof(real));
            for (int q = 0; q < 3 && HC; q++) /* (3,B,K-1,C) */
                memcpy(rwkv7_state_conv(&m->d, s, 1, l) + q * HC, rwkv7_state_conv(&m->d, s0, B, l) + (q * B + b) * HC,
                       HC * sizeof(real));
        }
        for (int t = 0; t < T; t++) {
            const real *lg = rwkv7_forward(m, &tok[b * T + t], 1, 1, 1, s, s, NULL);
            for (int v = 0; v < V; v++) maxd = fmax(maxd, fabs(lg[v] - seq[((size_t)b * T + t) * V + v]));
        }
        for (int l = 0; l < m->d.L; l++) {
            size_t NN = (size_t)m->d.H * m->d.N * m->d.N;
            const real *a = rwkv7_state_wkv(&m->d, s, 1, l), *e = rwkv7_state_wkv(&m->d, sseq, B, l) + b * NN;
            for (size_t i = 0; i < NN; i++) maxd = fmax(maxd, fabs(a[i] - e[i]));
            const real *p = rwkv7_state_ffn_prev(&m->d, s, 1, l), *q = rwkv7_state_ffn_prev(&m->d, sseq, B, l) + b * m->d.C;
            for (int i = 0; i < m->d.C; i++) maxd = fmax(maxd, fabs(p[i] - q[i]));
            for (int k = 0; k < 3 && HC; k++) {
                p = rwkv7_state_conv(&m->d, s, 1, l) + k * HC, q = rwkv7_state_conv(&m->d, sseq, B, l) + (k * B + b) * HC;
                for (size_t i = 0; i < HC; i++) maxd = fmax(maxd, fabs(p[i] - q[i]));
                /* the handed-on history is the last K-1 inputs, not the one we started from */
                const real *o = rwkv7_state_conv(&m->d, s0, B, l) + (k * B + b) * HC;
                for (size_t i = 0; i < HC; i++) dconv = fmax(dconv, fabs(q[i] - o[i]));
            }
        }
        free(s);
    }
    printf("recurrent vs sequence (from a random state, short_conv=%d): max |diff| = %.3g (limit 1e-12); zero state "
           "moves the logits by %.3g; conv history moved by %.3g\n", conv, maxd, dz, dconv);
    cr_expect(maxd <= 1e-12, "recurrent and sequence mode differ by %g", maxd);
    cr_expect(dz > 1e-6, "the start state does not change the logits (%g): the check would prove nothing", dz);
    if (HC) cr_expect(dconv > 1e-6, "the conv history handed on equals the one given (%g)", dconv);
    free(s0), free(sseq), free(seq);
    model_free(&m->head);
    gsl_rng_free(rng);
}
Test(grad_model, recurrent_equals_sequence) { recurrent_check(0); }
/* the state carries the short conv's last K-1 inputs of r, k, v too */
Test(grad_model, recurrent_equals_sequence_short_conv) { recurrent_check(4); }

/* Model gradients with the WKV state stored every K tokens equal those with every state stored. */
static void chunked_check(int conv) {
    real *ref = NULL;
    int Ks[] = {1, 3, 8, 16, 64};
    for (int ki = 0; ki < 5; ki++) {
        gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
        gsl_rng_set(rng, 77);
        ModelCase c = {.m = tiny_model(rng, 2, 0, 1, conv), .K = Ks[ki]};
        make_data(&c, rng);
        memset(c.m->grads, 0, c.m->nparams * sizeof(real));
        case_loss(&c);
        model_backward(&c.m->head);
        printf("  short_conv=%d K=%-3d activation bytes %zu\n", conv, Ks[ki], rwkv7_act_bytes(c.m));
        if (!ref) {
            ref = malloc(c.m->nparams * sizeof(real));
            memcpy(ref, c.m->grads, c.m->nparams * sizeof(real));
        } else {
            cr_expect(memcmp(ref, c.m->grads, c.m->nparams * sizeof(real)) == 0,
                      "gradients with K=%d differ from K=1", Ks[ki]);
        }
        free(c.tok), free(c.tgt), free(c.mask);
        model_free(&c.m->head);
        gsl_rng_free(rng);
    }
    free(ref);
}
Test(grad_model, chunked_equals_unchunked) { chunked_check(0); }
Test(grad_model, chunked_equals_unchunked_short_conv) { chunked_check(4); }
