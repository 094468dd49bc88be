/* grad_ops.c -- every op's backward against central finite differences, in double precision.
 * Loss = sum(out * dout) for a random upstream gradient dout; each input and parameter is checked. */
#include <string.h>

#include "gradcheck.h"
#include "ops.h"

enum { R = 6, H = 2, N = 4, C = H * N, V = 5, NI = 7, NO = 5 };

typedef struct {
    real *in[6];    /* inputs / params */
    real *d[6];     /* analytic grads */
    size_t n[6];
    int nin;
    real *out, *dout;
    size_t nout;
    void (*fwd)(void *self);
    int *tok;
    unsigned char *mask;
} OpCase;

static double op_loss(void *ctx) {
    OpCase *c = ctx;
    c->fwd(c);
    return dot_loss(c->out, c->dout, c->nout);
}

static gsl_rng *rng;
static void setup(void) {
    rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 1234);
}
static void teardown(void) { gsl_rng_free(rng); }

static OpCase *mk(int nin, const size_t *sizes, size_t nout, double lo, double hi) {
    OpCase *c = calloc(1, sizeof *c);
    c->nin = nin;
    for (int i = 0; i < nin; i++) {
        c->n[i] = sizes[i];
        c->in[i] = calloc(sizes[i], sizeof(real));
        c->d[i] = calloc(sizes[i], sizeof(real));
        fill_uniform(c->in[i], sizes[i], rng, lo, hi);
    }
    c->nout = nout;
    c->out = calloc(nout, sizeof(real));
    c->dout = calloc(nout, sizeof(real));
    fill_uniform(c->dout, nout, rng, -1, 1);
    return c;
}
static void run_checks(OpCase *c, const char *const *names) {
    for (int i = 0; i < c->nin; i++)
        if (names[i]) check_grad(names[i], c->in[i], c->d[i], c->n[i], op_loss, c, 400, rng, GRAD_TOL);
}
static void freecase(OpCase *c) {
    for (int i = 0; i < c->nin; i++) free(c->in[i]), free(c->d[i]);
    free(c->out), free(c->dout), free(c->tok), free(c->mask), free(c);
}

TestSuite(grad_ops, .init = setup, .fini = teardown);

/* ---- linear / matmul ---- */
static void f_linear(void *s) { OpCase *c = s; linear_forward(c->out, c->in[0], c->in[1], c->in[2], R, NI, NO); }
Test(grad_ops, linear) {
    OpCase *c = mk(3, (size_t[]){R * NI, NO * NI, NO}, R * NO, -1, 1);
    c->fwd = f_linear;
    f_linear(c);
    linear_backward(c->d[0], c->d[1], c->d[2], c->dout, c->in[0], c->in[1], R, NI, NO);
    run_checks(c, (const char *[]){"linear.in", "linear.W", "linear.bias"});
    freecase(c);
}
static void f_matmul(void *s) { OpCase *c = s; matmul_forward(c->out, c->in[0], c->in[1], R, NI, NO); }
Test(grad_ops, matmul) {
    OpCase *c = mk(2, (size_t[]){R * NI, NI * NO}, R * NO, -1, 1);
    c->fwd = f_matmul;
    f_matmul(c);
    matmul_backward(c->d[0], c->d[1], c->dout, c->in[0], c->in[1], R, NI, NO);
    run_checks(c, (const char *[]){"matmul.in", "matmul.W"});
    freecase(c);
}

/* ---- embedding (repeated tokens exercise the scatter-add) ---- */
static void f_emb(void *s) { OpCase *c = s; embedding_forward(c->out, c->tok, c->in[0], R, C); }
Test(grad_ops, embedding) {
    OpCase *c = mk(1, (size_t[]){V * C}, R * C, -1, 1);
    c->tok = malloc(R * sizeof(int));
    for (int i = 0; i < R; i++) c->tok[i] = i % 3; /* tokens 0,1,2 repeated, 3,4 unused */
    c->fwd = f_emb;
    f_emb(c);
    embedding_backward(c->d[0], c->dout, c->tok, R, C, V);
    run_checks(c, (const char *[]){"embedding.emb"});
    freecase(c);
}

/* ---- LayerNorm (G=1) and GroupNorm (G=H) ---- */
static real norm_m[R * H], norm_r[R * H];
static void f_ln(void *s) { OpCase *c = s; norm_forward(c->out, norm_m, norm_r, c->in[0], c->in[1], c->in[2], R, 1, C, LN_EPS); }
static void f_gn(void *s) { OpCase *c = s; norm_forward(c->out, norm_m, norm_r, c->in[0], c->in[1], c->in[2], R, H, N, GN_EPS); }
Test(grad_ops, layernorm) {
    OpCase *c = mk(3, (size_t[]){R * C, C, C}, R * C, -2, 2);
    c->fwd = f_ln;
    f_ln(c);
    norm_backward(c->d[0], c->d[1], c->d[2], c->dout, c->in[0], norm_m, norm_r, c->in[1], R, 1, C);
    run_checks(c, (const char *[]){"layernorm.in", "layernorm.w", "layernorm.b"});
    freecase(c);
}
Test(grad_ops, groupnorm) {
    OpCase *c = mk(3, (size_t[]){R * C, C, C}, R * C, -0.05, 0.05); /* small inputs: eps matters */
    c->fwd = f_gn;
    f_gn(c);
    norm_backward(c->d[0], c->d[1], c->d[2], c->dout, c->in[0], norm_m, norm_r, c->in[1], R, H, N);
    run_checks(c, (const char *[]){"groupnorm.in", "groupnorm.w", "groupnorm.b"});
    freecase(c);
}

/* ---- token shift (B=2, T=3) and mix ---- */
static void f_shift(void *s) { OpCase *c = s; token_shift_forward(c->out, c->in[0], c->in[1], 2, 3, C); }
Test(grad_ops, token_shift) {
    OpCase *c = mk(2, (size_t[]){R * C, 2 * C}, R * C, -1, 1);
    c->fwd = f_shift;
    f_shift(c);
    token_shift_backward(c->d[0], c->d[1], c->dout, 2, 3, C);
    run_checks(c, (const char *[]){"token_shift.x", "token_shift.x0"});
    freecase(c);
}
static void f_mix(void *s) { OpCase *c = s; mix_forward(c->out, c->in[0], c->in[1], c->in[2], R, C); }
Test(grad_ops, mix) {
    OpCase *c = mk(3, (size_t[]){R * C, R * C, C}, R * C, -1, 1);
    c->fwd = f_mix;
    f_mix(c);
    mix_backward(c->d[0], c->d[1], c->d[2], c->dout, c->in[0], c->in[1], c->in[2], R, C);
    run_checks(c, (const char *[]){"mix.x", "mix.prev", "mix.mu"});
    freecase(c);
}

/* three mixes in one pass: out = [3][R*C], mu = [3][C] */
static void f_mixn(void *s) {
    OpCase *c = s;
    real *out[3] = {c->out, c->out + R * C, c->out + 2 * R * C};
    const real *mu[3] = {c->in[2], c->in[2] + C, c->in[2] + 2 * C};
    mixn_forward(out, c->in[0], c->in[1], mu, 3, R, C);
}
Test(grad_ops, mixn) {
    OpCase *c = mk(3, (size_t[]){R * C, R * C, 3 * C}, 3 * R * C, -1, 1);
    c->fwd = f_mixn;
    f_mixn(c);
    const real *dout[3] = {c->dout, c->dout + R * C, c->dout + 2 * R * C}, *mu[3] = {c->in[2], c->in[2] + C, c->in[2] + 2 * C};
    real *dmu[3] = {c->d[2], c->d[2] + C, c->d[2] + 2 * C};
    mixn_backward(c->d[0], c->d[1], dmu, dout, c->in[0], c->in[1], mu, 3, R, C);
    run_checks(c, (const char *[]){"mixn.x", "mixn.prev", "mixn.mu"});
    freecase(c);
}

/* ---- elementwise (the backward takes the saved output) ---- */
#define ELEMENTWISE_TEST(op, lo, hi, saved_is_out)                                               \
    static void f_##op(void *s) { OpCase *c = s; op##_forward(c->out, c->in[0], R * C); }       \
    Test(grad_ops, op) {                                                                        \
        OpCase *c = mk(1, (size_t[]){R * C}, R * C, lo, hi);                                    \
        c->fwd = f_##op;                                                          \
        f_##op(c);                                                                              \
        op##_backward(c->d[0], c->dout, (saved_is_out) ? c->out : c->in[0], R * C);             \
        run_checks(c, (const char *[]){#op ".in"});                                              \
        freecase(c);                                                                            \
    }
ELEMENTWISE_TEST(relu2, -1, 1, 0)
/* relu2_backward assigns din: garbage in it must not survive (an op that accumulated would fail) */
Test(grad_ops, relu2_assigns) {
    OpCase *c = mk(1, (size_t[]){R * C}, R * C, -1, 1);
    c->fwd = f_relu2;
    f_relu2(c);
    for (int i = 0; i < R * C; i++) c->d[0][i] = 1e3;
    relu2_backward(c->d[0], c->dout, c->in[0], R * C);
    run_checks(c, (const char *[]){"relu2(assigned).in"});
    freecase(c);
}
ELEMENTWISE_TEST(silu, -3, 3, 0)

static void f_bias(void *s) { OpCase *c = s; add_bias_forward(c->out, c->in[0], c->in[1], R, C); }
Test(grad_ops, add_bias) {
    OpCase *c = mk(2, (size_t[]){R * C, C}, R * C, -1, 1);
    c->fwd = f_bias;
    f_bias(c);
    memcpy(c->d[0], c->dout, R * C * sizeof(real)); /* d in = dout (identity path) */
    add_bias_backward(c->d[1], c->dout, R, C);
    run_checks(c, (const char *[]){"add_bias.in", "add_bias.bias"});
    freecase(c);
}

/* ---- bias + activation: out = act(in + bias), with the bias and without (NULL); the backward ASSIGNS din
 * (prefilled with garbage here: an op that accumulated would fail) and accumulates dbias in the same pass ---- */
static real saved1[R * C];
static void f_tanh_b(void *s) { OpCase *c = s; tanh_forward(c->out, c->in[0], c->in[1], R, C); }
static void f_tanh_n(void *s) { OpCase *c = s; tanh_forward(c->out, c->in[0], NULL, R, C); }
static void f_sigmoid_b(void *s) { OpCase *c = s; sigmoid_forward(c->out, c->in[0], c->in[1], R, C); }
static void f_sigmoid_n(void *s) { OpCase *c = s; sigmoid_forward(c->out, c->in[0], NULL, R, C); }
static void f_decay_b(void *s) { OpCase *c = s; decay_forward(c->out, saved1, c->in[0], c->in[1], R, C); }
static void f_decay_n(void *s) { OpCase *c = s; decay_forward(c->out, saved1, c->in[0], NULL, R, C); }
static void act_case(const char *name, void (*fwd)(void *), int with_bias, double lo, double hi) {
    OpCase *c = mk(2, (size_t[]){R * C, C}, R * C, lo, hi);
    c->fwd = fwd;
    fwd(c);
    for (int i = 0; i < R * C; i++) c->d[0][i] = 1e3; /* must be overwritten */
    real *db = with_bias ? c->d[1] : NULL;
    if (!strcmp(name, "tanh")) tanh_backward(c->d[0], db, c->dout, c->out, R, C);
    else if (!strcmp(name, "sigmoid")) sigmoid_backward(c->d[0], db, c->dout, c->out, R, C);
    else decay_backward(c->d[0], db, c->dout, c->out, saved1, R, C);
    char n0[64], n1[64];
    snprintf(n0, sizeof n0, "%s%s.in", name, with_bias ? "+bias" : "");
    snprintf(n1, sizeof n1, "%s+bias.bias", name);
    run_checks(c, (const char *[]){n0, with_bias ? n1 : NULL});
    freecase(c);
}
Test(grad_ops, tanh_bias) { act_case("tanh", f_tanh_b, 1, -2, 2); }
Test(grad_ops, tanh) { act_case("tanh", f_tanh_n, 0, -2, 2); }
Test(grad_ops, sigmoid_bias) { act_case("sigmoid", f_sigmoid_b, 1, -3, 3); }
Test(grad_ops, sigmoid) { act_case("sigmoid", f_sigmoid_n, 0, -3, 3); }
Test(grad_ops, decay_bias) { act_case("decay", f_decay_b, 1, -4, 4); }
Test(grad_ops, decay) { act_case("decay", f_decay_n, 0, -4, 4); }

/* ---- RWKV-7 small ops ---- */
static void f_kk(void *s) { OpCase *c = s; kk_forward(c->out, saved1, c->in[0], c->in[1], R, H, N); }
Test(grad_ops, kk_normalize) {
    OpCase *c = mk(2, (size_t[]){R * C, C}, R * C, -1, 1);
    c->fwd = f_kk;
    f_kk(c);
    kk_backward(c->d[0], c->d[1], c->dout, c->out, saved1, c->in[0], c->in[1], R, H, N);
    run_checks(c, (const char *[]){"kk.k", "kk.k_k"});
    freecase(c);
}
static void f_kmod(void *s) { OpCase *c = s; kmod_forward(c->out, c->in[0], c->in[1], c->in[2], R, C); }
Test(grad_ops, kmod) {
    OpCase *c = mk(3, (size_t[]){R * C, R * C, C}, R * C, 0.05, 1);
    c->fwd = f_kmod;
    f_kmod(c);
    kmod_backward(c->d[0], c->d[1], c->d[2], c->dout, c->in[0], c->in[1], c->in[2], R, C);
    run_checks(c, (const char *[]){"kmod.k", "kmod.a", "kmod.k_a"});
    freecase(c);
}
static void f_vres(void *s) { OpCase *c = s; vres_forward(c->out, c->in[0], c->in[1], c->in[2], R * C); }
Test(grad_ops, value_residual) {
    OpCase *c = mk(3, (size_t[]){R * C, R * C, R * C}, R * C, -1, 1);
    c->fwd = f_vres;
    f_vres(c);
    vres_backward(c->d[0], c->d[1], c->d[2], c->dout, c->in[0], c->in[1], c->in[2], R * C);
    run_checks(c, (const char *[]){"vres.v", "vres.v_first", "vres.gate"});
    freecase(c);
}
static void f_bonus(void *s) { OpCase *c = s; bonus_forward(c->out, c->in[0], c->in[1], c->in[2], c->in[3], c->in[4], R, H, N); }
Test(grad_ops, bonus) {
    OpCase *c = mk(5, (size_t[]){R * C, R * C, R * C, R * C, C}, R * C, -1, 1);
    c->fwd = f_bonus;
    f_bonus(c);
    bonus_backward(c->d[0], c->d[1], c->d[2], c->d[3], c->d[4], c->dout, c->in[1], c->in[2], c->in[3], c->in[4], R, H, N);
    run_checks(c, (const char *[]){"bonus.y", "bonus.r", "bonus.k", "bonus.v", "bonus.r_k"});
    freecase(c);
}
static void f_mul(void *s) { OpCase *c = s; mul_forward(c->out, c->in[0], c->in[1], R * C); }
Test(grad_ops, mul) {
    OpCase *c = mk(2, (size_t[]){R * C, R * C}, R * C, -1, 1);
    c->fwd = f_mul;
    f_mul(c);
    mul_backward(c->d[0], c->d[1], c->dout, c->in[0], c->in[1], R * C);
    run_checks(c, (const char *[]){"mul.x", "mul.g"});
    freecase(c);
}

/* ---- masked cross-entropy: loss itself is the scalar ---- */
static real ce_probs[R * V];
static double ce_loss(void *s) {
    OpCase *c = s;
    long nc, cnt;
    return crossentropy_forward(ce_probs, NULL, c->in[0], c->tok, c->mask, R, V, &nc, &cnt);
}
Test(grad_ops, crossentropy) {
    OpCase *c = mk(1, (size_t[]){R * V}, 1, -3, 3);
    c->tok = malloc(R * sizeof(int));
    c->mask = malloc(R);
    for (int i = 0; i < R; i++) c->tok[i] = (i * 3) % V, c->mask[i] = i % 3 != 1;
    long nc, cnt;
    crossentropy_forward(ce_probs, NULL, c->in[0], c->tok, c->mask, R, V, &nc, &cnt);
    cr_assert_eq(cnt, 4);
    crossentropy_backward(c->d[0], ce_probs, c->tok, c->mask, R, V, cnt, 1);
    check_grad("crossentropy.logits", c->in[0], c->d[0], R * V, ce_loss, c, 400, rng, GRAD_TOL);
    /* unmasked rows get no gradient */
    for (int v = 0; v < V; v++) cr_expect_eq(c->d[0][1 * V + v], 0);
    freecase(c);
}
