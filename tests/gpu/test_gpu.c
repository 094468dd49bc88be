/* test_gpu.c -- the CUDA engine against the CPU engine (the oracle), run on a GPU machine.
 *
 * Checks (each prints its worst deviation next to its limit, so the headroom is visible):
 *  1. logits at every position and the final state, GPU vs CPU, on random checkpoints written in the
 *     official .pth format (bf16) and read back by the CPU loader: N = 64 with V = 65536, unequal LoRA
 *     ranks, with and without ln0 and the optional Linear biases, 0.1B width (C = 768); N = 32; the N = 16
 *     fixture. Ragged batches starting from non-zero states. Weights as fp32, bf16 and fp16.
 *  2. the real trained reverse_L2_x070.pth (N = 16) reverses every digit on the GPU, 60 sequences at once;
 *  3. a sequence split in two with the state carried on the device equals one pass; a sequence alone
 *     equals the same sequence inside a batch;
 *  4. LM-eval scoring (cuda_rwkv7_score) equals the CPU's log-softmax sums;
 *  5. bad input is refused with a message (tokens outside the vocabulary, empty sequences, rows out of
 *     range, an unsupported head size).
 * Tolerances are relative to the spread (std) of the CPU values. fp32 weights: the same arithmetic in a
 * different order, so max |d| <= 1e-4 std (the limit the CPU meets against the float64 reference).
 * bf16 / fp16 weights: every matrix-product input is also rounded (unit roundoff u = 2^-9 / 2^-11); with
 * ~7 rounded products per layer adding in quadrature the expected rms logit error is about
 * u sqrt(7L) ~ 1e-2 std (bf16, L = 3), so the limits are rms <= 2e-2 / 5e-3 std and max <= 1e-1 / 2.5e-2 std.
 *
 * Usage: test_gpu [--quick] [--require-data] [--data DIR]
 *   --quick         small shapes only (for compute-sanitizer)
 *   --require-data  a missing fixture file is a failure, not a skip
 * Exit status: 0 when every check passed (or no GPU: "skipped: no GPU (...)"), 1 otherwise.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cuda_rwkv7.h"
#include "gpu_testutil.h"
#include "model_io.h"

static int n_checks, n_fail, n_skip, opt_quick, opt_require;
static const char *opt_data;
static char tmpdir[256];

#define EXPECT(cond, ...)                                          \
    do {                                                           \
        n_checks++;                                                \
        if (!(cond)) {                                             \
            n_fail++;                                              \
            printf("  FAIL (%s:%d): ", __FILE__, __LINE__);        \
            printf(__VA_ARGS__);                                   \
            printf("\n");                                          \
        }                                                          \
    } while (0)

static void skip(const char *what) {
    if (opt_require) {
        n_checks++, n_fail++;
        printf("  FAIL: %s (--require-data)\n", what);
    } else {
        n_skip++;
        printf("  SKIP: %s\n", what);
    }
}

/* load an RWKV-7 checkpoint through the model interface; the CUDA engine takes the RWKV-7 struct */
static Rwkv7 *load_rwkv7(const char *path, Err *e) {
    Model *mm = NULL;
    if (model_load(path, &mm, e)) return NULL;
    if (mm->arch != &model_rwkv7) {
        err_set(e, "%s holds a %s model, not RWKV-7", path, mm->arch->name);
        model_free(mm);
        return NULL;
    }
    return mm->self;
}
static void free_rwkv7(Rwkv7 *m) {
    if (m) model_free(&m->head);
}

static const char *find_file(const char *name) {
    static char buf[1024];
    const char *dirs[] = {opt_data, ".", "tests/fixtures/ckpt", "data/models", "../shared/data/models"};
    for (int i = 0; i < 5; i++) {
        if (!dirs[i]) continue;
        snprintf(buf, sizeof buf, "%s/%s", dirs[i], name);
        if (access(buf, R_OK) == 0) return buf;
    }
    return NULL;
}

/* max and rms of |gpu - cpu| over the std of cpu; every value must be finite */
static void check_close(const char *what, const float *gpu, const float *cpu, size_t n, double lim_max,
                        double lim_rms) {
    double s = 0, s2 = 0, mx = 0, e2 = 0;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        s += cpu[i], s2 += (double)cpu[i] * cpu[i];
        if (!isfinite(gpu[i])) {
            bad++;
            continue;
        }
        double d = fabs((double)gpu[i] - cpu[i]);
        mx = d > mx ? d : mx;
        e2 += d * d;
    }
    double mean = s / n, sd = sqrt(fmax(s2 / n - mean * mean, 0)), rmax = mx / sd, rrms = sqrt(e2 / n) / sd;
    printf("    %-44s max|d|/std %.2e (limit %.0e, %5.1fx headroom)  rms/std %.2e (limit %.0e)\n", what, rmax,
           lim_max, rmax > 0 ? lim_max / rmax : INFINITY, rrms, lim_rms);
    EXPECT(bad == 0, "%s: %zu of %zu values not finite (unwritten or overflow)", what, bad, n);
    EXPECT(sd > 0, "%s: reference has zero spread", what);
    EXPECT(rmax <= lim_max, "%s: max|d|/std %.3e > %.0e", what, rmax, lim_max);
    EXPECT(rrms <= lim_rms, "%s: rms/std %.3e > %.0e", what, rrms, lim_rms);
}

typedef struct {
    double max, rms;
} Tol;
static Tol tol_of(CudaDType t) {
    return t == CUDA_DT_F32 ? (Tol){1e-4, 1e-5} : t == CUDA_DT_F16 ? (Tol){2.5e-2, 5e-3} : (Tol){1e-1, 2e-2};
}

/* random checkpoint of the given shape, written as an official-format bf16 .pth and read back */
static Rwkv7 *make_checkpoint(const char *name, Rwkv7Dims d, uint64_t seed) {
    Rwkv7 *m = rwkv7_create_inference(&d);
    gt_fill_model(m, seed);
    char path[512];
    snprintf(path, sizeof path, "%s/%s.pth", tmpdir, name);
    Err e = {{0}};
    if (model_export(&m->head, path, TF_BF16, &e)) {
        printf("  cannot write %s: %s\n", path, e.msg);
        exit(1);
    }
    free_rwkv7(m);
    Rwkv7 *r = load_rwkv7(path, &e);
    if (!r) {
        printf("  cannot read back %s: %s\n", path, e.msg);
        exit(1);
    }
    unlink(path);
    return r;
}

static void rand_tokens(int *t, size_t n, int V, uint64_t seed) {
    for (size_t i = 0; i < n; i++) t[i] = (int)(gt_uniform(seed, i) * V);
}

/* a realistic start state for each of B sequences: the CPU state after 6 random tokens */
static float *start_state(Rwkv7 *m, int B, uint64_t seed) {
    float *st = xcalloc(rwkv7_state_numel(&m->d, B), sizeof(float));
    int *pre = xmalloc((size_t)B * 6 * sizeof(int)), *lens = xmalloc(B * sizeof(int));
    rand_tokens(pre, (size_t)B * 6, m->d.V, seed);
    for (int b = 0; b < B; b++) lens[b] = 6;
    gt_cpu_ragged(m, pre, lens, B, NULL, st, NULL);
    free(pre), free(lens);
    return st;
}

/* compare the three parts of a state (token shifts, WKV) separately: their scales differ */
static void check_state(const char *what, const Rwkv7Dims *d, const float *gpu, const float *cpu, int B, Tol t) {
    const size_t C = d->C, S = (size_t)d->H * d->N * d->N;
    size_t nsh = (size_t)d->L * 2 * B * C, nw = (size_t)d->L * B * S;
    float *gs = xmalloc(nsh * sizeof(float)), *cs = xmalloc(nsh * sizeof(float));
    float *gw = xmalloc(nw * sizeof(float)), *cw = xmalloc(nw * sizeof(float));
    size_t is = 0, iw = 0;
    for (int l = 0; l < d->L; l++) {
        const float *parts[3][2] = {{rwkv7_state_att_prev(d, (real *)gpu, B, l), rwkv7_state_att_prev(d, (real *)cpu, B, l)},
                                    {rwkv7_state_wkv(d, (real *)gpu, B, l), rwkv7_state_wkv(d, (real *)cpu, B, l)},
                                    {rwkv7_state_ffn_prev(d, (real *)gpu, B, l), rwkv7_state_ffn_prev(d, (real *)cpu, B, l)}};
        memcpy(gs + is, parts[0][0], B * C * sizeof(float)), memcpy(cs + is, parts[0][1], B * C * sizeof(float));
        is += B * C;
        memcpy(gs + is, parts[2][0], B * C * sizeof(float)), memcpy(cs + is, parts[2][1], B * C * sizeof(float));
        is += B * C;
        memcpy(gw + iw, parts[1][0], B * S * sizeof(float)), memcpy(cw + iw, parts[1][1], B * S * sizeof(float));
        iw += B * S;
    }
    char nm[160];
    snprintf(nm, sizeof nm, "%s state: token shift", what);
    check_close(nm, gs, cs, nsh, t.max, t.rms);
    snprintf(nm, sizeof nm, "%s state: WKV S", what);
    check_close(nm, gw, cw, nw, t.max, t.rms);
    free(gs), free(cs), free(gw), free(cw);
}

/* CPU log-softmax at target y of a logits row, in double */
static double cpu_logprob(const float *lg, int V, int y, int *is_max) {
    double mx = lg[0];
    for (int i = 1; i < V; i++) mx = lg[i] > mx ? lg[i] : mx;
    double z = 0;
    for (int i = 0; i < V; i++) z += exp(lg[i] - mx);
    *is_max = lg[y] >= mx;
    return lg[y] - mx - log(z);
}

/* 1. GPU vs CPU on one model: a ragged batch from realistic start states, every row's logits, the
 * log-softmax at the next token, the final state; for each weight type. */
static void check_model(const char *name, Rwkv7 *m, const int *lens, int B, uint64_t seed) {
    const Rwkv7Dims *d = &m->d;
    long R = 0;
    for (int b = 0; b < B; b++) R += lens[b];
    printf("  %s: V=%d C=%d L=%d N=%d ranks w%d a%d v%d g%d ln0=%d bias=%d; B=%d, %ld tokens\n", name, d->V, d->C, d->L,
           d->N, d->Dw, d->Da, d->Dv, d->Dg, d->has_ln0, d->bias, B, R);
    int *tok = xmalloc(R * sizeof(int)), *rows = xmalloc(R * sizeof(int)), *tg = xmalloc(R * sizeof(int));
    rand_tokens(tok, R, d->V, seed);
    for (long r = 0; r < R; r++) rows[r] = (int)r, tg[r] = tok[(r + 1) % R];
    float *st0 = start_state(m, B, seed + 1);
    const size_t ns = rwkv7_state_numel(d, B);
    float *cpu_lg = xmalloc((size_t)R * d->V * sizeof(float)), *cpu_st = xmalloc(ns * sizeof(float));
    gt_cpu_ragged(m, tok, lens, B, st0, cpu_st, cpu_lg);
    float *cpu_lp = xmalloc(R * sizeof(float));
    int *cpu_gr = xmalloc(R * sizeof(int));
    for (long r = 0; r < R; r++) cpu_lp[r] = (float)cpu_logprob(cpu_lg + r * d->V, d->V, tg[r], &cpu_gr[r]);
    float *lg = xmalloc((size_t)R * d->V * sizeof(float)), *st = xmalloc(ns * sizeof(float)), *lp = xmalloc(R * sizeof(float));
    int *gr = xmalloc(R * sizeof(int));
    const CudaDType types[3] = {CUDA_DT_F32, CUDA_DT_BF16, CUDA_DT_F16};
    for (int ti = 0; ti < 3; ti++) {
        Err e = {{0}};
        CudaRwkv7 *g = cuda_rwkv7_create(m, types[ti], &e);
        EXPECT(g, "%s: cuda_rwkv7_create: %s", name, e.msg);
        if (!g) continue;
        CudaRwkv7State *s = cuda_rwkv7_state_create(g, B, &e);
        EXPECT(s, "%s: state: %s", name, e.msg);
        if (!s) {
            cuda_rwkv7_free(g);
            continue;
        }
        cuda_rwkv7_state_upload(s, st0);
        for (size_t i = 0; i < (size_t)R * d->V; i++) lg[i] = NAN; /* poison: unwritten values fail */
        for (long r = 0; r < R; r++) lp[r] = NAN, gr[r] = -1;
        CudaRwkv7Batch bt = {.B = B, .lens = lens, .tokens = tok, .state = s, .nout = (int)R, .out_rows = rows,
                             .logits = lg, .targets = tg, .logprob = lp, .greedy = gr};
        int rc = cuda_rwkv7_forward(g, &bt, &e);
        EXPECT(rc == 0, "%s: forward: %s", name, e.msg);
        cuda_rwkv7_state_download(s, st);
        Tol t = tol_of(types[ti]);
        char nm[160];
        snprintf(nm, sizeof nm, "%s %s logits", name, cuda_dtype_name(types[ti]));
        check_close(nm, lg, cpu_lg, (size_t)R * d->V, t.max, t.rms);
        snprintf(nm, sizeof nm, "%s %s log-softmax", name, cuda_dtype_name(types[ti]));
        check_close(nm, lp, cpu_lp, R, t.max, t.rms);
        snprintf(nm, sizeof nm, "%s %s", name, cuda_dtype_name(types[ti]));
        check_state(nm, d, st, cpu_st, B, t);
        /* greedy flags: equal wherever the target's margin to the maximum exceeds the logit error */
        long mism = 0;
        for (long r = 0; r < R; r++) {
            const float *row = cpu_lg + r * d->V;
            float mx = row[0];
            for (int i = 1; i < d->V; i++) mx = row[i] > mx ? row[i] : mx;
            if (gr[r] != cpu_gr[r] && fabsf(mx - row[tg[r]]) > 1e-3f) mism++;
            if (gr[r] != 0 && gr[r] != 1) mism++;
        }
        EXPECT(mism == 0, "%s: %ld greedy flags differ from the CPU", nm, mism);
        cuda_rwkv7_state_free(s);
        cuda_rwkv7_free(g);
    }
    free(tok), free(rows), free(tg), free(st0), free(cpu_lg), free(cpu_st), free(cpu_lp), free(cpu_gr);
    free(lg), free(st), free(lp), free(gr);
}

/* 2. the real reverse model, every digit, 60 sequences in one ragged batch */
static void check_reverse(void) {
    const char *p = find_file("reverse_L2_x070.pth");
    if (!p) {
        skip("reverse_L2_x070.pth not found (--data DIR, data/models or ../shared/data/models)");
        return;
    }
    Err e = {{0}};
    Rwkv7 *m = load_rwkv7(p, &e);
    if (!m) {
        EXPECT(0, "load %s: %s", p, e.msg);
        return;
    }
    enum { NS = 60 };
    int lens[NS], *tok = xmalloc(NS * 122 * sizeof(int));
    long R = 0;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 2026);
    for (int n = 1; n <= NS; n++) {
        int *s = tok + R;
        for (int i = 0; i < n; i++) s[i] = (int)gsl_rng_uniform_int(rng, 10);
        s[n] = 10;
        for (int i = 0; i < n; i++) s[n + 1 + i] = s[n - 1 - i];
        s[2 * n + 1] = 11;
        lens[n - 1] = 2 * n + 2;
        R += 2 * n + 2;
    }
    gsl_rng_free(rng);
    int *rows = xmalloc(R * sizeof(int));
    for (long r = 0; r < R; r++) rows[r] = (int)r;
    float *lg = xmalloc(R * 12 * sizeof(float));
    const CudaDType types[2] = {CUDA_DT_F32, CUDA_DT_BF16};
    for (int ti = 0; ti < 2; ti++) {
        CudaRwkv7 *g = cuda_rwkv7_create(m, types[ti], &e);
        EXPECT(g, "reverse: create: %s", e.msg);
        if (!g) continue;
        CudaRwkv7Batch bt = {.B = NS, .lens = lens, .tokens = tok, .nout = (int)R, .out_rows = rows, .logits = lg};
        EXPECT(cuda_rwkv7_forward(g, &bt, &e) == 0, "reverse: forward: %s", e.msg);
        long wrong = 0, total = 0, off = 0;
        for (int n = 1; n <= NS; n++) {
            for (int t = n; t <= 2 * n; t++) {
                const float *row = lg + (off + t) * 12;
                int am = 0;
                for (int i = 1; i < 12; i++) am = row[i] > row[am] ? i : am;
                total++;
                wrong += am != tok[off + t + 1];
            }
            off += lens[n - 1];
        }
        printf("    reverse_L2_x070 on the GPU (%s): %ld of %ld reversed digits (and '#') wrong\n",
               cuda_dtype_name(types[ti]), wrong, total);
        EXPECT(wrong == 0, "reverse (%s): %ld of %ld wrong", cuda_dtype_name(types[ti]), wrong, total);
        cuda_rwkv7_free(g);
    }
    free(tok), free(rows), free(lg);
    free_rwkv7(m);
}

/* 3. split == one pass (state carried on the device); alone == inside a batch */
static void check_split_and_batch(const char *name, Rwkv7 *m, CudaDType dt) {
    const Rwkv7Dims *d = &m->d;
    const int T = 41, T1 = 17, V = d->V;
    int tok[41];
    rand_tokens(tok, T, V, 99);
    Err e = {{0}};
    CudaRwkv7 *g = cuda_rwkv7_create(m, dt, &e);
    EXPECT(g, "%s: create: %s", name, e.msg);
    if (!g) return;
    const size_t ns = rwkv7_state_numel(d, 1);
    float *lg1 = xmalloc((size_t)T * V * sizeof(float)), *lg2 = xmalloc((size_t)T * V * sizeof(float));
    float *st1 = xmalloc(ns * sizeof(float)), *st2 = xmalloc(ns * sizeof(float));
    int rows[41];
    for (int t = 0; t < T; t++) rows[t] = t;
    CudaRwkv7State *s = cuda_rwkv7_state_create(g, 1, &e);
    int len = T;
    CudaRwkv7Batch one = {.B = 1, .lens = &len, .tokens = tok, .state = s, .nout = T, .out_rows = rows, .logits = lg1};
    EXPECT(cuda_rwkv7_forward(g, &one, &e) == 0, "%s", e.msg);
    cuda_rwkv7_state_download(s, st1);
    cuda_rwkv7_state_zero(s);
    int l1 = T1, l2 = T - T1;
    CudaRwkv7Batch a = {.B = 1, .lens = &l1, .tokens = tok, .state = s, .nout = T1, .out_rows = rows, .logits = lg2};
    CudaRwkv7Batch b = {.B = 1, .lens = &l2, .tokens = tok + T1, .state = s, .nout = T - T1, .out_rows = rows,
                        .logits = lg2 + (size_t)T1 * V};
    EXPECT(cuda_rwkv7_forward(g, &a, &e) == 0 && cuda_rwkv7_forward(g, &b, &e) == 0, "%s", e.msg);
    cuda_rwkv7_state_download(s, st2);
    Tol t = tol_of(CUDA_DT_F32); /* same arithmetic on the same values: only the products' blocking differs */
    char nm[160];
    snprintf(nm, sizeof nm, "%s %s split 17+24 vs one pass: logits", name, cuda_dtype_name(dt));
    check_close(nm, lg2, lg1, (size_t)T * V, dt == CUDA_DT_F32 ? t.max : tol_of(dt).max,
                dt == CUDA_DT_F32 ? t.rms : tol_of(dt).rms);
    snprintf(nm, sizeof nm, "%s %s split 17+24 vs one pass: state", name, cuda_dtype_name(dt));
    check_close(nm, st2, st1, ns, dt == CUDA_DT_F32 ? t.max : tol_of(dt).max, dt == CUDA_DT_F32 ? t.rms : tol_of(dt).rms);
    cuda_rwkv7_state_free(s);

    /* the same 41 tokens as sequence 1 of 3 (others: 5 and 60 tokens) from a zero state */
    int lens3[3] = {5, T, 60}, tok3[106];
    rand_tokens(tok3, 106, V, 7);
    memcpy(tok3 + 5, tok, T * sizeof(int));
    int rows3[41];
    for (int i = 0; i < T; i++) rows3[i] = 5 + i;
    CudaRwkv7Batch bb = {.B = 3, .lens = lens3, .tokens = tok3, .nout = T, .out_rows = rows3, .logits = lg2};
    EXPECT(cuda_rwkv7_forward(g, &bb, &e) == 0, "%s", e.msg);
    snprintf(nm, sizeof nm, "%s %s alone vs inside a batch of 3: logits", name, cuda_dtype_name(dt));
    check_close(nm, lg2, lg1, (size_t)T * V, dt == CUDA_DT_F32 ? t.max : tol_of(dt).max,
                dt == CUDA_DT_F32 ? t.rms : tol_of(dt).rms);
    free(lg1), free(lg2), free(st1), free(st2);
    cuda_rwkv7_free(g);
}

/* 4. LM-eval scoring vs the CPU: context + continuation from a zero state, summed log-softmax */
static void check_score(const char *name, Rwkv7 *m) {
    const Rwkv7Dims *d = &m->d;
    enum { NR = 37 };
    CudaLmRequest req[NR];
    int *buf = xmalloc(NR * 64 * sizeof(int));
    for (int i = 0; i < NR; i++) {
        int nctx = 1 + (int)(gt_uniform(5, i) * 40), ncont = 1 + (int)(gt_uniform(6, i) * 6);
        req[i].tokens = buf + i * 64, req[i].nctx = nctx, req[i].ntok = nctx + ncont;
        rand_tokens(buf + i * 64, nctx + ncont, d->V, 100 + i);
    }
    double cpu_lp[NR], lp[NR];
    int cpu_gr[NR], gr[NR];
    float *lg = xmalloc((size_t)64 * d->V * sizeof(float));
    double ls = 0, ls2 = 0, ln = 0; /* spread of the CPU logits: the scale of the limits */
    for (int i = 0; i < NR; i++) {
        int len = req[i].ntok - 1;
        gt_cpu_ragged(m, req[i].tokens, &len, 1, NULL, NULL, lg);
        for (size_t j = 0; j < (size_t)len * d->V; j++) ls += lg[j], ls2 += (double)lg[j] * lg[j], ln++;
        cpu_lp[i] = 0, cpu_gr[i] = 1;
        for (int t = req[i].nctx; t < req[i].ntok; t++) {
            int g1;
            cpu_lp[i] += cpu_logprob(lg + (size_t)(t - 1) * d->V, d->V, req[i].tokens[t], &g1);
            cpu_gr[i] &= g1;
        }
    }
    Err e = {{0}};
    const CudaDType types[2] = {CUDA_DT_F32, CUDA_DT_BF16};
    for (int ti = 0; ti < 2; ti++) {
        CudaRwkv7 *g = cuda_rwkv7_create(m, types[ti], &e);
        EXPECT(g, "score: %s", e.msg);
        if (!g) continue;
        const long caps[2] = {1L << 20, 50}; /* everything in one batch; many small batches */
        for (int c = 0; c < 2; c++) {
            EXPECT(cuda_rwkv7_score(g, req, NR, caps[c], lp, gr, &e) == 0, "score: %s", e.msg);
            double worst = 0;
            int gm = 0;
            for (int i = 0; i < NR; i++) {
                int nc = req[i].ntok - req[i].nctx;
                double dd = fabs(lp[i] - cpu_lp[i]) / nc; /* per scored token */
                worst = dd > worst ? dd : worst;
                gm += gr[i] != cpu_gr[i];
            }
            /* a log-softmax value moves with the logits: the per-token limit is the logits' (x their std) */
            Tol t = tol_of(types[ti]);
            const double sd = sqrt(fmax(ls2 / ln - (ls / ln) * (ls / ln), 0)), rel = worst / sd;
            printf("    %-30s %s cap %7ld: max|d logprob|/token/std %.2e (limit %.0e)  greedy differs: %d\n", name,
                   cuda_dtype_name(types[ti]), caps[c], rel, t.max, gm);
            EXPECT(rel <= t.max, "%s %s: score differs by %.3e std per token", name, cuda_dtype_name(types[ti]), rel);
            if (types[ti] == CUDA_DT_F32) EXPECT(gm == 0, "%s: %d greedy flags differ (fp32)", name, gm);
        }
        cuda_rwkv7_free(g);
    }
    free(buf), free(lg);
}

/* 5. bad input: refused with a message, nothing crashes */
static void check_errors(Rwkv7 *m) {
    Err e = {{0}};
    CudaRwkv7 *g = cuda_rwkv7_create(m, CUDA_DT_BF16, &e);
    EXPECT(g, "errors: create: %s", e.msg);
    if (!g) return;
    int tok[4] = {1, 2, m->d.V, 3}, lens[2] = {2, 2}, rows[1] = {0}, zero[2] = {2, 0}, far[1] = {4};
    CudaRwkv7Batch b1 = {.B = 2, .lens = lens, .tokens = tok};
    EXPECT(cuda_rwkv7_forward(g, &b1, &e) != 0 && strstr(e.msg, "outside the vocabulary"), "bad token: '%s'", e.msg);
    tok[2] = 0;
    CudaRwkv7Batch b2 = {.B = 2, .lens = zero, .tokens = tok};
    EXPECT(cuda_rwkv7_forward(g, &b2, &e) != 0 && strstr(e.msg, "has 0 tokens"), "empty sequence: '%s'", e.msg);
    CudaRwkv7Batch b3 = {.B = 2, .lens = lens, .tokens = tok, .nout = 1, .out_rows = far};
    EXPECT(cuda_rwkv7_forward(g, &b3, &e) != 0 && strstr(e.msg, "out_rows"), "row out of range: '%s'", e.msg);
    CudaRwkv7State *s = cuda_rwkv7_state_create(g, 3, &e);
    CudaRwkv7Batch b4 = {.B = 2, .lens = lens, .tokens = tok, .state = s, .nout = 1, .out_rows = rows};
    EXPECT(cuda_rwkv7_forward(g, &b4, &e) != 0 && strstr(e.msg, "3 sequences"), "state size: '%s'", e.msg);
    cuda_rwkv7_state_free(s);
    CudaLmRequest q = {.tokens = tok, .ntok = 2, .nctx = 2};
    double lp;
    int gr;
    EXPECT(cuda_rwkv7_score(g, &q, 1, 100, &lp, &gr, &e) != 0 && strstr(e.msg, "continuation"), "no continuation: '%s'",
           e.msg);
    printf("    bad input refused: last message \"%s\"\n", e.msg);
    cuda_rwkv7_free(g);
    /* head size 8 (the l3_f32 fixture's) is not built: a clear refusal */
    Rwkv7Dims d8 = {.V = 40, .C = 32, .L = 1, .N = 8, .Dw = 8, .Da = 8, .Dv = 8, .Dg = 8};
    Rwkv7 *m8 = rwkv7_create_inference(&d8);
    CudaRwkv7 *g8 = cuda_rwkv7_create(m8, CUDA_DT_F32, &e);
    EXPECT(!g8 && strstr(e.msg, "head size N=8"), "N=8 should be refused: '%s'", e.msg);
    cuda_rwkv7_free(g8);
    free_rwkv7(m8);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) opt_quick = 1;
        else if (!strcmp(argv[i], "--require-data")) opt_require = 1;
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) opt_data = argv[++i];
        else {
            fprintf(stderr, "usage: test_gpu [--quick] [--require-data] [--data DIR]\n");
            return 2;
        }
    }
    char why[512];
    if (!cuda_available(why, sizeof why)) {
        printf("test_gpu: skipped: no GPU (%s)\n", why);
        return 0;
    }
    char info[512];
    cuda_device_info(info, sizeof info);
    printf("test_gpu: %s%s\n", info, opt_quick ? " (quick)" : "");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rwkvlab_gpu_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    double t0 = now_seconds();

    printf("[1] GPU vs CPU logits and final state\n");
    /* N = 16: the committed fixture (F32 safetensors, ln0) */
    Rwkv7 *fx = NULL;
    const char *fp = find_file("tiny_f32.safetensors");
    Err e = {{0}};
    if (fp && (fx = load_rwkv7(fp, &e))) {
        int lens[3] = {24, 3, 11};
        check_model("tiny_f32 fixture (N=16)", fx, lens, 3, 11);
    } else {
        skip("tests/fixtures/ckpt/tiny_f32.safetensors not found");
    }
    /* N = 32, small vocabulary, ln0, LoRA ranks all different */
    Rwkv7Dims dc = {.V = 1000, .C = 96, .L = 2, .N = 32, .Dw = 8, .Da = 16, .Dv = 24, .Dg = 12, .has_ln0 = 1};
    Rwkv7 *mc = make_checkpoint("n32", dc, 3);
    {
        int lens[4] = {30, 1, 45, 7};
        check_model("N=32 C=96", mc, lens, 4, 12);
    }
    Rwkv7 *ma = NULL;
    if (!opt_quick) {
        /* N = 64, V = 65536: ln0, no biases, unequal ranks */
        Rwkv7Dims da = {.V = 65536, .C = 256, .L = 3, .N = 64, .Dw = 32, .Da = 64, .Dv = 16, .Dg = 48, .has_ln0 = 1};
        ma = make_checkpoint("n64a", da, 1);
        int lens_a[3] = {33, 1, 70};
        check_model("N=64 C=256 ln0", ma, lens_a, 3, 13);
        /* N = 64, V = 65536: no ln0, every optional bias */
        Rwkv7Dims db = {.V = 65536, .C = 128, .L = 2, .N = 64, .Dw = 16, .Da = 32, .Dv = 24, .Dg = 40,
                        .has_ln0 = 0, .bias = RWKV7_BIAS_ALL};
        Rwkv7 *mb = make_checkpoint("n64b", db, 2);
        int lens_b[2] = {50, 19};
        check_model("N=64 C=128 biases, no ln0", mb, lens_b, 2, 14);
        free_rwkv7(mb);
        /* the 0.1B width and LoRA ranks (C = 768, H = 12; w64 a64 v32 g128), two layers */
        Rwkv7Dims de = {.V = 65536, .C = 768, .L = 2, .N = 64, .Dw = 64, .Da = 64, .Dv = 32, .Dg = 128, .has_ln0 = 1};
        Rwkv7 *me = make_checkpoint("n64e", de, 4);
        int lens_e[2] = {64, 9};
        check_model("N=64 C=768 (0.1B width)", me, lens_e, 2, 15);
        free_rwkv7(me);
    }

    printf("[2] the real reverse model\n");
    check_reverse();

    printf("[3] split vs one pass, alone vs in a batch\n");
    check_split_and_batch("N=32 C=96", mc, CUDA_DT_F32);
    check_split_and_batch("N=32 C=96", mc, CUDA_DT_BF16);
    if (ma) check_split_and_batch("N=64 C=256", ma, CUDA_DT_F32);

    printf("[4] LM-eval scoring\n");
    check_score("N=32 C=96", mc);
    if (ma) check_score("N=64 C=256 V=65536", ma);

    printf("[5] bad input\n");
    check_errors(mc);

    free_rwkv7(fx), free_rwkv7(mc), free_rwkv7(ma);
    rmdir(tmpdir);
    printf("test_gpu: %d checks, %d failed, %d skipped (%.1f s)%s\n", n_checks, n_fail, n_skip, now_seconds() - t0,
           n_fail ? "" : ": all passed");
    return n_fail ? 1 : 0;
}
