/* grad_deltanet.c -- DeltaNet and Gated DeltaNet in double precision:
 *  - their own ops (l2norm, head RMSNorm, the gate, the transition's kernel inputs) vs finite differences;
 *  - each model's logits and final state vs a direct implementation of its definition written here
 *    (S_t = S_{t-1}(I - beta k k^T) + beta v k^T, Gated: alpha S_{t-1}(I - beta k k^T) + beta v k^T, token by
 *    token with explicit matrices), from a non-zero state, with and without the short conv, expand_v = 2;
 *  - every parameter tensor of tiny models vs finite differences (each gradient also non-zero), including
 *    short_conv = 4, expand_v = 2, the extended range, no ln0, and a backward from a non-zero state;
 *  - recurrent (one token at a time) == sequence mode from a non-zero state; chunked backward == unchunked;
 *  - the traced transition diag(w) + alpha beta^T is the model's: M k = w (1 - beta) k, M u = w u (u . k = 0). */
#include <string.h>

#include "delta_common.h"
#include "gradcheck.h"

/* ---- the ops ------------------------------------------------------------------------------------- */
enum { OR = 5, OG = 3, ON = 4 };
#define ONX ((size_t)OR * OG * ON)

typedef struct {
    real *in[4], *d[4];
    size_t n[4];
    int nin;
    real *out, *dout, *saved;
    size_t nout;
    void (*fwd)(void *);
} OpCase;

static double op_loss(void *ctx) {
    OpCase *c = ctx;
    c->fwd(c);
    return dot_loss(c->out, c->dout, c->nout);
}
static OpCase *mk(gsl_rng *rng, int nin, const size_t *n, size_t nout, double lo, double hi) {
    OpCase *c = calloc(1, sizeof *c);
    c->nin = nin;
    for (int i = 0; i < nin; i++) {
        c->n[i] = n[i];
        c->in[i] = calloc(n[i], sizeof(real)), c->d[i] = calloc(n[i], sizeof(real));
        fill_uniform(c->in[i], n[i], rng, lo, hi);
    }
    c->nout = nout;
    c->out = calloc(nout, sizeof(real)), c->dout = calloc(nout, sizeof(real)), c->saved = calloc(nout, sizeof(real));
    fill_uniform(c->dout, nout, rng, -1, 1);
    return c;
}
static void op_free(OpCase *c) {
    for (int i = 0; i < c->nin; i++) free(c->in[i]), free(c->d[i]);
    free(c->out), free(c->dout), free(c->saved), free(c);
}
static void op_checks(OpCase *c, gsl_rng *rng, const char *const *names) {
    for (int i = 0; i < c->nin; i++)
        if (names[i]) check_grad(names[i], c->in[i], c->d[i], c->n[i], op_loss, c, 200, rng, GRAD_TOL);
}

static void f_l2(void *s) { OpCase *c = s; delta_l2norm_forward(c->out, c->saved, c->in[0], OR, OG, ON, DELTA_L2_EPS); }
Test(grad_deltanet, op_l2norm) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 1);
    OpCase *c = mk(rng, 1, (size_t[]){ONX}, ONX, -1, 1);
    c->in[0][0] = c->in[0][1] = c->in[0][2] = c->in[0][3] = 1e-3; /* a near-zero group: the eps matters */
    c->fwd = f_l2;
    f_l2(c);
    /* definition: x / sqrt(sum x^2 + 1e-6) */
    double s = 4 * 1e-6, worst = 0;
    for (int i = 0; i < 4; i++) worst = fmax(worst, fabs(c->out[i] - 1e-3 / sqrt(s + 1e-6)));
    cr_expect(worst < 1e-15, "l2norm eps: %g", worst);
    delta_l2norm_backward(c->d[0], c->dout, c->out, c->saved, OR, OG, ON);
    op_checks(c, rng, (const char *[]){"l2norm.x"});
    op_free(c);
    gsl_rng_free(rng);
}

static void f_rms(void *s) { OpCase *c = s; delta_rmsnorm_forward(c->out, c->saved, c->in[0], c->in[1], OR, OG, ON, DELTA_RMS_EPS); }
Test(grad_deltanet, op_head_rmsnorm) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 2);
    OpCase *c = mk(rng, 2, (size_t[]){ONX, ON}, ONX, -1, 1);
    c->fwd = f_rms;
    f_rms(c);
    double ms = 0; /* definition for group (0,0): x * w / sqrt(mean x^2 + 1e-5) */
    for (int i = 0; i < ON; i++) ms += c->in[0][i] * c->in[0][i] / ON;
    for (int i = 0; i < ON; i++)
        cr_expect(fabs(c->out[i] - c->in[0][i] * c->in[1][i] / sqrt(ms + 1e-5)) < 1e-14, "rmsnorm definition");
    delta_rmsnorm_backward(c->d[0], c->d[1], c->dout, c->in[0], c->saved, c->in[1], OR, OG, ON);
    op_checks(c, rng, (const char *[]){"rmsnorm.x", "rmsnorm.w"});
    op_free(c);
    gsl_rng_free(rng);
}

static void f_gate(void *s) { OpCase *c = s; delta_gate_forward(c->out, c->in[0], c->in[1], c->in[2], OR, OG); }
Test(grad_deltanet, op_gate) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 3);
    OpCase *c = mk(rng, 3, (size_t[]){OR * OG, OG, OG}, OR * OG, -3, 3);
    c->in[0][0] = 30, c->in[0][1] = -30; /* both branches of the stable softplus */
    c->fwd = f_gate;
    f_gate(c);
    for (int i = 0; i < OR * OG; i++) {
        const int h = i % OG;
        const double z = c->in[0][i] + c->in[2][h];
        cr_expect(fabs(c->out[i] - exp(-exp(c->in[1][h]) * log1p(exp(z)))) < 1e-14, "gate definition at %d", i);
    }
    delta_gate_backward(c->d[0], c->d[1], c->d[2], c->dout, c->out, c->in[0], c->in[1], c->in[2], OR, OG);
    op_checks(c, rng, (const char *[]){"gate.u", "gate.A_log", "gate.dt_bias"});
    op_free(c);
    gsl_rng_free(rng);
}

/* transition: out = [w | a | vb] concatenated */
enum { TNv = 6 };
static void f_trans(void *s) {
    OpCase *c = s;
    const size_t nk = (size_t)OR * OG * ON;
    delta_transition_forward(c->out, c->out + nk, c->out + 2 * nk, c->nin == 3 ? c->in[2] : NULL, c->in[0], c->in[1],
                             OR, OG, ON, TNv);
}
static void transition_case(int gated) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 4 + gated);
    const size_t nk = (size_t)OR * OG * ON, nv = (size_t)OR * OG * TNv;
    OpCase *c = mk(rng, gated ? 3 : 2, (size_t[]){OR * OG, nv, OR * OG}, 2 * nk + nv, 0.1, 1.9);
    c->fwd = f_trans;
    f_trans(c);
    for (int rh = 0; rh < OR * OG; rh++) { /* the algebra of delta_common.h */
        const double al = gated ? c->in[2][rh] : 1, b = c->in[0][rh];
        for (int j = 0; j < ON; j++) {
            cr_expect(c->out[rh * ON + j] == al, "w");
            cr_expect(fabs(c->out[nk + rh * ON + j] - al * b) < 1e-15, "a");
        }
        for (int i = 0; i < TNv; i++) cr_expect(fabs(c->out[2 * nk + rh * TNv + i] - b * c->in[1][rh * TNv + i]) < 1e-15, "vb");
    }
    delta_transition_backward(gated ? c->d[2] : NULL, c->d[0], c->d[1], c->dout, c->dout + nk, c->dout + 2 * nk,
                              gated ? c->in[2] : NULL, c->in[0], c->in[1], OR, OG, ON, TNv);
    op_checks(c, rng, (const char *[]){"transition.beta", "transition.v", "transition.alpha"});
    op_free(c);
    gsl_rng_free(rng);
}
Test(grad_deltanet, op_transition_deltanet) { transition_case(0); }
Test(grad_deltanet, op_transition_gated) { transition_case(1); }

/* ---- tiny models ------------------------------------------------------------------------------- */
extern const ModelArch model_deltanet, model_gated_deltanet;
enum { B = 2, T = 12, V = 11 };

typedef struct {
    int gated, L, C, N, K, expand_v, extended, ln0;
} Cfg;

static Model *tiny(const Cfg *g, gsl_rng *rng, double noise) {
    DeltaDims d = {.V = V, .C = g->C, .L = g->L, .N = g->N, .has_ln0 = g->ln0, .extended = g->extended,
                   .short_conv = g->K, .expand_v = g->gated ? g->expand_v : 0};
    Model *m = model_create(g->gated ? &model_gated_deltanet : &model_deltanet, &d, 1);
    model_init(m, rng, NULL);
    /* perturb the official init so that no gradient path is trivially zero (ffn.value starts at zero) */
    for (int i = 0; i < m->ntensors; i++) {
        const ParamTensor *p = &m->tensors[i];
        const double s = strstr(p->name, "emb") ? 0.5 : noise;
        for (size_t e = 0; e < p->numel; e++) m->params[p->offset + e] += (real)(s * (2 * gsl_rng_uniform(rng) - 1));
    }
    return m;
}

static real *P(Model *m, const char *fmt, int l) {
    char nm[64];
    snprintf(nm, sizeof nm, fmt, l);
    const ParamTensor *p = model_find(m, nm);
    return p ? m->params + p->offset : NULL;
}

static void ln(double *out, const double *x, const real *w, const real *b, int C) {
    double mu = 0, var = 0;
    for (int i = 0; i < C; i++) mu += x[i] / C;
    for (int i = 0; i < C; i++) var += (x[i] - mu) * (x[i] - mu) / C;
    for (int i = 0; i < C; i++) out[i] = (x[i] - mu) / sqrt(var + 1e-5) * w[i] + b[i];
}
static void lin(double *out, const double *x, const real *W, int NI, int NO) { /* out = W x, W (NO,NI) */
    for (int o = 0; o < NO; o++) {
        double s = 0;
        for (int i = 0; i < NI; i++) s += W[(size_t)o * NI + i] * x[i];
        out[o] = s;
    }
}
static double silu(double x) { return x / (1 + exp(-x)); }
static double sig(double x) { return 1 / (1 + exp(-x)); }

/* The definition, token by token for one sequence b of the batch, written from baselines.md without the
 * model's kernels: logits (T,V) and the final state (written into the batched layout `st` at b). */
static void reference(Model *m, const Cfg *g, const int *tok, const real *s0, real *st, int b, double *logits) {
    DeltaModel *dm = m->self;
    const int C = m->C, L = m->L, N = m->N, H = m->H, Nv = m->Nv, CV = H * Nv, F = 4 * C, K = g->K;
    double *x = calloc(C, sizeof *x), *h1 = calloc(C, sizeof *h1), *h2 = calloc(C, sizeof *h2);
    double *proj[3], *hist[3], *act[3], *o = calloc(CV, sizeof *o), *gate = calloc(CV, sizeof *gate);
    double *tmp = calloc(F, sizeof *tmp), *xk = calloc(C, sizeof *xk), *y = calloc(C, sizeof *y);
    double bz[64], au[64];
    const int width[3] = {C, C, CV};
    for (int i = 0; i < 3; i++) {
        proj[i] = calloc(width[i], sizeof(double)), act[i] = calloc(width[i], sizeof(double));
        hist[i] = calloc((size_t)(L * (K ? K : 1)) * width[i], sizeof(double)); /* per layer: K rows, oldest first */
    }
    double *S = calloc((size_t)L * H * Nv * N, sizeof *S), *prev = calloc((size_t)L * C, sizeof *prev);
    for (int l = 0; l < L; l++) { /* unpack sequence b of the batched start state */
        if (K)
            for (int i = 0; i < 3; i++) {
                const real *cs = s0 ? delta_state_conv(dm, (real *)s0, B, l, i) : NULL;
                for (int r = 0; r < K - 1; r++)
                    for (int c = 0; c < width[i]; c++)
                        hist[i][((size_t)l * K + r) * width[i] + c] = cs ? cs[((size_t)b * (K - 1) + r) * width[i] + c] : 0;
            }
        const real *Ss = s0 ? delta_state_S(dm, (real *)s0, B, l) : NULL, *fs = s0 ? delta_state_ffn(dm, (real *)s0, B, l) : NULL;
        for (int e = 0; e < H * Nv * N; e++) S[(size_t)l * H * Nv * N + e] = Ss ? Ss[(size_t)b * H * Nv * N + e] : 0;
        for (int c = 0; c < C; c++) prev[(size_t)l * C + c] = fs ? fs[(size_t)b * C + c] : 0;
    }
    const double bscale = g->extended ? 2 : 1;
    for (int t = 0; t < T; t++) {
        const real *e = P(m, "emb.weight", 0) + (size_t)tok[b * T + t] * C;
        for (int c = 0; c < C; c++) x[c] = e[c];
        if (g->ln0) {
            ln(h1, x, P(m, "blocks.0.ln0.weight", 0), P(m, "blocks.0.ln0.bias", 0), C);
            memcpy(x, h1, C * sizeof *x);
        }
        for (int l = 0; l < L; l++) {
            ln(h1, x, P(m, "blocks.%d.ln1.weight", l), P(m, "blocks.%d.ln1.bias", l), C);
            lin(proj[0], h1, P(m, "blocks.%d.attn.q_proj.weight", l), C, C);
            lin(proj[1], h1, P(m, "blocks.%d.attn.k_proj.weight", l), C, C);
            lin(proj[2], h1, P(m, "blocks.%d.attn.v_proj.weight", l), C, CV);
            static const char *const convs[3] = {"blocks.%d.attn.q_conv1d.weight", "blocks.%d.attn.k_conv1d.weight",
                                                 "blocks.%d.attn.v_conv1d.weight"};
            for (int i = 0; i < 3; i++) {
                if (K) { /* y = sum_j w[c,j] x[t-(K-1)+j]: the history's K rows, the current input last */
                    double *hs = hist[i] + (size_t)l * K * width[i];
                    memcpy(hs + (size_t)(K - 1) * width[i], proj[i], width[i] * sizeof(double));
                    const real *w = P(m, convs[i], l);
                    for (int c = 0; c < width[i]; c++) {
                        double s = 0;
                        for (int j = 0; j < K; j++) s += w[c * K + j] * hs[(size_t)j * width[i] + c];
                        act[i][c] = silu(s);
                    }
                    memmove(hs, hs + width[i], (size_t)(K - 1) * width[i] * sizeof(double));
                } else {
                    for (int c = 0; c < width[i]; c++) act[i][c] = silu(proj[i][c]);
                }
            }
            for (int i = 0; i < 2; i++) /* q, k: l2norm per head */
                for (int h = 0; h < H; h++) {
                    double ss = 0;
                    for (int j = 0; j < N; j++) ss += act[i][h * N + j] * act[i][h * N + j];
                    for (int j = 0; j < N; j++) act[i][h * N + j] /= sqrt(ss + 1e-6);
                }
            lin(bz, h1, P(m, "blocks.%d.attn.b_proj.weight", l), C, H);
            if (g->gated) lin(au, h1, P(m, "blocks.%d.attn.a_proj.weight", l), C, H);
            for (int h = 0; h < H; h++) {
                const double beta = bscale * sig(bz[h]);
                double alpha = 1;
                if (g->gated) {
                    const double z = au[h] + P(m, "blocks.%d.attn.dt_bias", l)[h];
                    alpha = exp(-exp(P(m, "blocks.%d.attn.A_log", l)[h]) * log1p(exp(z)));
                }
                const double *q = act[0] + h * N, *k = act[1] + h * N, *v = act[2] + h * Nv;
                double *Sh = S + ((size_t)l * H + h) * Nv * N, Mt[64 * 64];
                /* M = alpha (I - beta k k^T); S <- S M + beta v k^T */
                for (int i = 0; i < N; i++)
                    for (int j = 0; j < N; j++) Mt[i * N + j] = alpha * ((i == j) - beta * k[i] * k[j]);
                for (int i = 0; i < Nv; i++) {
                    double row[64];
                    for (int j = 0; j < N; j++) {
                        double s = 0;
                        for (int p = 0; p < N; p++) s += Sh[i * N + p] * Mt[p * N + j];
                        row[j] = s + beta * v[i] * k[j];
                    }
                    memcpy(Sh + i * N, row, N * sizeof(double));
                    double oi = 0;
                    for (int j = 0; j < N; j++) oi += Sh[i * N + j] * q[j] / sqrt((double)N);
                    o[h * Nv + i] = oi;
                }
                double ms = 0; /* RMSNorm over the head's Nv channels, weight shared by heads */
                for (int i = 0; i < Nv; i++) ms += o[h * Nv + i] * o[h * Nv + i] / Nv;
                for (int i = 0; i < Nv; i++) o[h * Nv + i] *= P(m, "blocks.%d.attn.o_norm.weight", l)[i] / sqrt(ms + 1e-5);
            }
            if (g->gated) {
                lin(gate, h1, P(m, "blocks.%d.attn.g_proj.weight", l), C, CV);
                for (int i = 0; i < CV; i++) o[i] *= silu(gate[i]);
            }
            lin(y, o, P(m, "blocks.%d.attn.o_proj.weight", l), CV, C);
            for (int c = 0; c < C; c++) x[c] += y[c];
            ln(h2, x, P(m, "blocks.%d.ln2.weight", l), P(m, "blocks.%d.ln2.bias", l), C);
            const real *mu = P(m, "blocks.%d.ffn.x_k", l);
            for (int c = 0; c < C; c++) xk[c] = h2[c] + (prev[(size_t)l * C + c] - h2[c]) * mu[c];
            memcpy(prev + (size_t)l * C, h2, C * sizeof(double));
            lin(tmp, xk, P(m, "blocks.%d.ffn.key.weight", l), C, F);
            for (int i = 0; i < F; i++) tmp[i] = tmp[i] > 0 ? tmp[i] * tmp[i] : 0;
            lin(y, tmp, P(m, "blocks.%d.ffn.value.weight", l), F, C);
            for (int c = 0; c < C; c++) x[c] += y[c];
        }
        ln(h1, x, P(m, "ln_out.weight", 0), P(m, "ln_out.bias", 0), C);
        lin(logits + (size_t)t * V, h1, P(m, "head.weight", 0), C, V);
    }
    for (int l = 0; l < L; l++) { /* pack the final state of sequence b */
        if (K)
            for (int i = 0; i < 3; i++) {
                real *cs = delta_state_conv(dm, st, B, l, i);
                for (int r = 0; r < K - 1; r++)
                    for (int c = 0; c < width[i]; c++)
                        cs[((size_t)b * (K - 1) + r) * width[i] + c] = (real)hist[i][((size_t)l * K + r) * width[i] + c];
            }
        real *Ss = delta_state_S(dm, st, B, l), *fs = delta_state_ffn(dm, st, B, l);
        for (int e = 0; e < H * Nv * N; e++) Ss[(size_t)b * H * Nv * N + e] = (real)S[(size_t)l * H * Nv * N + e];
        for (int c = 0; c < C; c++) fs[(size_t)b * C + c] = (real)prev[(size_t)l * C + c];
    }
    for (int i = 0; i < 3; i++) free(proj[i]), free(act[i]), free(hist[i]);
    free(x), free(h1), free(h2), free(o), free(gate), free(tmp), free(xk), free(y), free(S), free(prev);
}

static void make_tokens(int *tok, gsl_rng *rng) {
    for (int i = 0; i < B * T; i++) tok[i] = (int)gsl_rng_uniform_int(rng, V);
}

/* the model (sequence mode, K = 5) vs the reference, from a random non-zero state */
static void definition_case(const Cfg *g, unsigned long seed) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, seed);
    Model *m = tiny(g, rng, 0.3);
    int tok[B * T];
    make_tokens(tok, rng);
    const size_t ns = model_state_numel(m, B);
    real *s0 = malloc(ns * sizeof(real)), *sm = malloc(ns * sizeof(real)), *sr = calloc(ns, sizeof(real));
    fill_uniform(s0, ns, rng, -0.5, 0.5);
    ModelFwd f = {.K = 5, .state_in = s0, .state_out = sm};
    const real *lg = model_forward(m, tok, B, T, &f);
    double *ref = malloc((size_t)T * V * sizeof *ref), worst = 0, worst_s = 0;
    for (int b = 0; b < B; b++) {
        reference(m, g, tok, s0, sr, b, ref);
        for (int i = 0; i < T * V; i++) worst = fmax(worst, fabs(ref[i] - lg[(size_t)b * T * V + i]));
    }
    for (size_t i = 0; i < ns; i++) worst_s = fmax(worst_s, fabs(sr[i] - sm[i]));
    printf("%s L=%d C=%d N=%d Nv=%d short_conv=%d extended=%d ln0=%d vs its definition (from a random state): "
           "logits max |diff| %.3g, final state %.3g (limit 1e-11)\n", m->arch->title, m->L, m->C, m->N, m->Nv, g->K,
           g->extended, g->ln0, worst, worst_s);
    cr_expect(worst <= 1e-11 && worst_s <= 1e-11, "%s differs from its definition: logits %g, state %g", m->arch->title,
              worst, worst_s);
    free(s0), free(sm), free(sr), free(ref);
    model_free(m);
    gsl_rng_free(rng);
}
Test(grad_deltanet, deltanet_is_its_definition) { definition_case(&(Cfg){0, 2, 16, 8, 0, 1, 0, 1}, 11); }
Test(grad_deltanet, deltanet_conv_extended_is_its_definition) { definition_case(&(Cfg){0, 2, 16, 8, 4, 1, 1, 0}, 12); }
Test(grad_deltanet, gated_is_its_definition) { definition_case(&(Cfg){1, 2, 16, 8, 0, 1, 0, 1}, 13); }
Test(grad_deltanet, gated_conv_expand2_is_its_definition) { definition_case(&(Cfg){1, 2, 16, 8, 4, 2, 1, 1}, 14); }

/* ---- every tensor vs finite differences ---------------------------------------------------------- */
typedef struct {
    Model *m;
    int *tok, *tgt;
    unsigned char *mask;
    int K;
    const real *s0;
} Case;

static double case_loss(void *ctx) {
    Case *c = ctx;
    long nc, cnt;
    ModelFwd f = {.K = c->K, .state_in = c->s0};
    model_forward(c->m, c->tok, B, T, &f);
    return model_loss(c->m, c->tgt, c->mask, NULL, &nc, &cnt);
}
static void case_data(Case *c, gsl_rng *rng) {
    c->tok = malloc(B * T * sizeof(int)), c->tgt = malloc(B * T * sizeof(int)), c->mask = malloc(B * T);
    for (int i = 0; i < B * T; i++) {
        c->tok[i] = (int)gsl_rng_uniform_int(rng, V);
        c->tgt[i] = (int)gsl_rng_uniform_int(rng, V);
        c->mask[i] = (i % 5) != 2;
    }
}
static void case_free(Case *c) { free(c->tok), free(c->tgt), free(c->mask); }

static void every_tensor(const Cfg *g, int from_state, unsigned long seed) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, seed);
    Case c = {.m = tiny(g, rng, 0.2), .K = 5};
    case_data(&c, rng);
    Model *m = c.m;
    real *s0 = NULL;
    if (from_state) {
        const size_t ns = model_state_numel(m, B);
        s0 = malloc(ns * sizeof(real));
        fill_uniform(s0, ns, rng, -0.5, 0.5);
        c.s0 = s0;
    }
    printf("tiny %s L=%d C=%d N=%d Nv=%d short_conv=%d extended=%d ln0=%d%s: %d tensors, %zu params\n", m->arch->title,
           m->L, m->C, m->N, m->Nv, g->K, g->extended, g->ln0, from_state ? " from a random state" : "", m->ntensors,
           m->nparams);
    memset(m->grads, 0, m->nparams * sizeof(real));
    case_loss(&c);
    model_backward(m);
    real *an = malloc(m->nparams * sizeof(real));
    memcpy(an, m->grads, m->nparams * sizeof(real));
    double worst = 0;
    for (int i = 0; i < m->ntensors; i++) {
        const ParamTensor *p = &m->tensors[i];
        double nz = 0;
        for (size_t e = 0; e < p->numel; e++) nz += fabs(an[p->offset + e]);
        cr_expect(nz > 0, "%s: gradient is identically zero (path not exercised)", p->name);
        worst = fmax(worst, check_grad(p->name, m->params + p->offset, an + p->offset, p->numel, case_loss, &c, 32,
                                       rng, GRAD_TOL));
    }
    printf("worst err/limit over all %d tensors: %.3f (headroom %.1fx)\n", m->ntensors, worst, 1 / worst);
    free(an), free(s0);
    case_free(&c);
    model_free(m);
    gsl_rng_free(rng);
}
Test(grad_deltanet, every_tensor_deltanet, .timeout = 600) { every_tensor(&(Cfg){0, 2, 16, 8, 0, 1, 0, 1}, 0, 101); }
Test(grad_deltanet, every_tensor_deltanet_conv4_extended_no_ln0, .timeout = 600) {
    every_tensor(&(Cfg){0, 2, 16, 8, 4, 1, 1, 0}, 0, 102);
}
Test(grad_deltanet, every_tensor_deltanet_conv4_from_state, .timeout = 600) {
    every_tensor(&(Cfg){0, 1, 16, 8, 4, 1, 0, 1}, 1, 103);
}
Test(grad_deltanet, every_tensor_gated, .timeout = 600) { every_tensor(&(Cfg){1, 2, 16, 8, 0, 1, 0, 1}, 0, 201); }
Test(grad_deltanet, every_tensor_gated_conv4_expand2_extended, .timeout = 600) {
    every_tensor(&(Cfg){1, 2, 16, 8, 4, 2, 1, 1}, 0, 202);
}
Test(grad_deltanet, every_tensor_gated_expand2_from_state, .timeout = 600) {
    every_tensor(&(Cfg){1, 1, 16, 8, 4, 2, 0, 0}, 1, 203);
}

/* ---- recurrent == sequence, chunked == unchunked ------------------------------------------------- */
static void recurrent_case(const Cfg *g, unsigned long seed) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, seed);
    Model *m = tiny(g, rng, 0.3);
    int tok[B * T];
    make_tokens(tok, rng);
    const size_t ns = model_state_numel(m, B), n1 = model_state_numel(m, 1);
    real *s0 = malloc(ns * sizeof(real)), *sseq = malloc(ns * sizeof(real)), *s = malloc(n1 * sizeof(real));
    fill_uniform(s0, ns, rng, -0.3, 0.3);
    real *seq = malloc((size_t)B * T * V * sizeof(real));
    ModelFwd f = {.K = 4, .state_in = s0, .state_out = sseq};
    memcpy(seq, model_forward(m, tok, B, T, &f), (size_t)B * T * V * sizeof(real));
    DeltaModel *dm = m->self;
    const int C = m->C, CV = m->H * m->Nv, Kp = g->K ? g->K - 1 : 0;
    const size_t SS = (size_t)m->H * m->Nv * m->N;
    double maxd = 0;
    for (int b = 0; b < B; b++) {
        /* sequence b alone: its slices of the batched state (the layout delta_state_* describe) */
        for (int l = 0; l < m->L; l++) {
            for (int i = 0; i < 3 && g->K; i++) {
                const size_t w = (size_t)Kp * (i < 2 ? C : CV);
                memcpy(delta_state_conv(dm, s, 1, l, i), delta_state_conv(dm, s0, B, l, i) + b * w, w * sizeof(real));
            }
            memcpy(delta_state_S(dm, s, 1, l), delta_state_S(dm, s0, B, l) + b * SS, SS * sizeof(real));
            memcpy(delta_state_ffn(dm, s, 1, l), delta_state_ffn(dm, s0, B, l) + (size_t)b * C, C * sizeof(real));
        }
        for (int t = 0; t < T; t++) {
            ModelFwd f1 = {.K = 1, .state_in = s, .state_out = s};
            const real *lg = model_forward(m, &tok[b * T + t], 1, 1, &f1);
            for (int v = 0; v < V; v++) maxd = fmax(maxd, fabs(lg[v] - seq[((size_t)b * T + t) * V + v]));
        }
        for (int l = 0; l < m->L; l++) {
            for (int i = 0; i < 3 && g->K; i++) {
                const size_t w = (size_t)Kp * (i < 2 ? C : CV);
                const real *p = delta_state_conv(dm, s, 1, l, i), *q = delta_state_conv(dm, sseq, B, l, i) + b * w;
                for (size_t e = 0; e < w; e++) maxd = fmax(maxd, fabs(p[e] - q[e]));
            }
            const real *p = delta_state_S(dm, s, 1, l), *q = delta_state_S(dm, sseq, B, l) + b * SS;
            for (size_t e = 0; e < SS; e++) maxd = fmax(maxd, fabs(p[e] - q[e]));
            p = delta_state_ffn(dm, s, 1, l), q = delta_state_ffn(dm, sseq, B, l) + (size_t)b * C;
            for (int e = 0; e < C; e++) maxd = fmax(maxd, fabs(p[e] - q[e]));
        }
    }
    printf("%s short_conv=%d Nv=%d: recurrent vs sequence (from a random state): max |diff| = %.3g (limit 1e-12)\n",
           m->arch->title, g->K, m->Nv, maxd);
    cr_expect(maxd <= 1e-12, "recurrent and sequence mode differ by %g", maxd);
    free(s0), free(sseq), free(s), free(seq);
    model_free(m);
    gsl_rng_free(rng);
}
Test(grad_deltanet, recurrent_equals_sequence_deltanet) { recurrent_case(&(Cfg){0, 2, 16, 8, 0, 1, 0, 1}, 31); }
Test(grad_deltanet, recurrent_equals_sequence_deltanet_conv4) { recurrent_case(&(Cfg){0, 2, 16, 8, 4, 1, 1, 1}, 32); }
Test(grad_deltanet, recurrent_equals_sequence_gated_conv4_expand2) { recurrent_case(&(Cfg){1, 2, 16, 8, 4, 2, 0, 1}, 33); }

static void chunked_case(const Cfg *g) {
    real *ref = NULL;
    const int Ks[] = {1, 3, 8, 16, 64};
    for (int ki = 0; ki < 5; ki++) {
        gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
        gsl_rng_set(rng, 77);
        Case c = {.m = tiny(g, rng, 0.2), .K = Ks[ki]};
        case_data(&c, rng);
        memset(c.m->grads, 0, c.m->nparams * sizeof(real));
        case_loss(&c);
        model_backward(c.m);
        if (!ref) {
            ref = malloc(c.m->nparams * sizeof(real));
            memcpy(ref, c.m->grads, c.m->nparams * sizeof(real));
        } else {
            cr_expect(memcmp(ref, c.m->grads, c.m->nparams * sizeof(real)) == 0, "%s: gradients with K=%d differ from K=1",
                      c.m->arch->title, Ks[ki]);
        }
        printf("  %s K=%-3d activation bytes %zu\n", c.m->arch->title, Ks[ki], c.m->arch->act_bytes(c.m));
        case_free(&c);
        model_free(c.m);
        gsl_rng_free(rng);
    }
    free(ref);
}
Test(grad_deltanet, chunked_equals_unchunked_deltanet) { chunked_case(&(Cfg){0, 2, 16, 8, 4, 1, 0, 1}); }
Test(grad_deltanet, chunked_equals_unchunked_gated) { chunked_case(&(Cfg){1, 2, 16, 8, 4, 2, 1, 1}); }

/* ---- traces: the generic transition is the model's --------------------------------------------- */
static void trace_case(const Cfg *g, unsigned long seed) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, seed);
    Model *m = tiny(g, rng, 0.3);
    int tok[T];
    for (int t = 0; t < T; t++) tok[t] = (int)gsl_rng_uniform_int(rng, V);
    ModelTrace tr;
    model_trace_alloc(m, 1, T, &tr);
    const size_t ns = model_state_numel(m, 1);
    real *sT = malloc(ns * sizeof(real));
    ModelFwd f = {.trace = &tr, .state_out = sT};
    model_forward(m, tok, 1, T, &f);
    const int N = m->N, H = m->H, C = m->C, L = m->L;
    double worst = 0;
    for (int l = 0; l < L; l++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++) {
                const size_t o = ((size_t)l * T + t) * C + (size_t)h * N, oh = ((size_t)l * T + t) * H + h;
                const double beta = tr.q[g->gated ? 1 : 0][oh], alpha = g->gated ? tr.q[0][oh] : 1;
                cr_expect(beta > 0 && beta < (g->extended ? 2 : 1), "beta %g out of range", beta);
                double k[64], u[64], ku = 0, kk = 0;
                for (int j = 0; j < N; j++) k[j] = -tr.alpha[o + j], u[j] = gsl_rng_uniform(rng) - 0.5;
                for (int j = 0; j < N; j++) ku += k[j] * u[j], kk += k[j] * k[j];
                for (int j = 0; j < N; j++) u[j] -= ku / kk * k[j]; /* u orthogonal to k */
                /* M = diag(w) + alpha_vec beta_vec^T applied to k and u */
                double ak = 0, au = 0;
                for (int j = 0; j < N; j++) ak += tr.beta[o + j] * k[j], au += tr.beta[o + j] * u[j];
                for (int j = 0; j < N; j++) {
                    cr_expect(tr.w[o + j] == (float)alpha, "w must be alpha (Gated) or 1 (DeltaNet)");
                    const double Mk = tr.w[o + j] * k[j] + tr.alpha[o + j] * ak, Mu = tr.w[o + j] * u[j] + tr.alpha[o + j] * au;
                    /* |k|^2 = 1 - ~1e-6/(|silu|^2+1e-6): use the exact norm of the traced k */
                    worst = fmax(worst, fabs(Mk - alpha * (1 - beta * kk) * k[j]));
                    worst = fmax(worst, fabs(Mu - alpha * u[j]));
                }
            }
    /* the last traced state is the final state */
    double ds = 0;
    const size_t SS = (size_t)H * m->Nv * N;
    for (int l = 0; l < L; l++) {
        const real *S = delta_state_S(m->self, sT, 1, l);
        for (size_t e = 0; e < SS; e++) ds = fmax(ds, fabs(tr.state[((size_t)l * T + T - 1) * SS + e] - S[e]));
    }
    printf("%s trace: transition on k and on k-orthogonal u vs alpha(1-beta)k, alpha u: max |diff| %.3g; last traced "
           "state vs final state %.3g (float, limit 1e-5)\n", m->arch->title, worst, ds);
    cr_expect(worst < 1e-5 && ds < 1e-5, "traced transition or state does not match the model");
    model_trace_free(&tr);
    free(sT);
    model_free(m);
    gsl_rng_free(rng);
}
Test(grad_deltanet, trace_transition_deltanet) { trace_case(&(Cfg){0, 2, 16, 8, 0, 1, 1, 1}, 41); }
Test(grad_deltanet, trace_transition_gated) { trace_case(&(Cfg){1, 2, 16, 8, 4, 2, 0, 1}, 42); }
