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
 *     range, an unsupported head size);
 *  6. scoring with shared contexts (groups of requests with one context: the context once, its state
 *     gathered for every choice) equals scoring each request alone and the CPU, with small batches and a
 *     small state budget forcing every sub-batch path; state gather equals per-sequence copies;
 *  7. decoding steps (cuda_rwkv7_decode, replayed from a CUDA graph from the second step on) equal the
 *     same steps through cuda_rwkv7_forward and the CPU, and their argmax is the first maximum;
 *  8. `lmeval --device cuda` (lmeval_run) against `--device cpu` on a small random World-vocabulary model
 *     (fp32 weights), several tasks, at two batch sizes (and the full lambada_openai with --lmeval-full):
 *     every request's logprob within 1e-3 + 1e-4 |lp|, per-document acc / acc_norm equal except at a near
 *     tie (the deciding difference within twice that), perplexity within 5e-3 relative;
 *  9. `generate --device cuda` (generate_run): each greedy GPU token is a CPU argmax along the GPU's path
 *     (its CPU logit within 1e-4 std of the CPU maximum); a batch of identical prompts gives identical
 *     rows; a run of 2N tokens equals N saved + N continued from the state file, greedy and sampled.
 * 10. the WKV7 recurrence alone, every launch configuration (sequential in time; chunked, N = 64) against
 *     the CPU's wkv7_forward: outputs and final states of ragged batches with non-zero initial states, lengths
 *     not multiples of the chunk (1, 15, 33, 100, 300, 1000 tokens), decays down to the lower bound;
 *     and a model forward on a 300-token sequence (the automatic choice: chunked) against the CPU.
 * 11. traces: cuda_model_trace (what `trace --device cuda` writes) vs the CPU forward's ModelTrace: logits,
 *     the state after every token, w, alpha, beta and a of every layer, fp32 and bf16 weights.
 * Tolerances are relative to the spread (std) of the CPU values. fp32 weights: the same arithmetic in a
 * different order, so max |d| <= 1e-4 std (the limit the CPU meets against the float64 reference).
 * bf16 / fp16 weights: every matrix-product input is also rounded (unit roundoff u = 2^-9 / 2^-11); with
 * ~7 rounded products per layer adding in quadrature the expected rms logit error is about
 * u sqrt(7L) ~ 1e-2 std (bf16, L = 3), so the limits are rms <= 2e-2 / 5e-3 std and max <= 1e-1 / 2.5e-2 std.
 *
 * Usage: test_gpu [--quick] [--require-data] [--data DIR] [--lmeval-data DIR] [--lmeval-full]
 *   --quick         small shapes only (for compute-sanitizer)
 *   --require-data  a missing fixture file is a failure, not a skip
 *   --lmeval-data   folder with rwkv_vocab_v20230424.txt and evalsets/ (default data, ../shared/data)
 *   --lmeval-full   check 8 also on the full lambada_openai (5153 documents)
 * Exit status: 0 when every check passed (or no GPU: "skipped: no GPU (...)"), 1 otherwise.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>
#include <glob.h>

#include "cuda_rwkv7.h"
#include "generate.h"
#include "gpu_testutil.h"
#include "lmeval.h"
#include "model_io.h"
#include "sample.h"
#include "wkv7.h"

static int n_checks, n_fail, n_skip, opt_quick, opt_require, opt_lmeval_full;
static const char *opt_data, *opt_lmeval_data;
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
    /* a model with the short convolution (model.short_conv) is refused, not run without it */
    Rwkv7Dims dcv = {.V = 40, .C = 64, .L = 1, .N = 32, .Dw = 8, .Da = 8, .Dv = 8, .Dg = 8, .conv = 4};
    Rwkv7 *mcv = rwkv7_create_inference(&dcv);
    CudaRwkv7 *gcv = cuda_rwkv7_create(mcv, CUDA_DT_F32, &e);
    EXPECT(!gcv && strstr(e.msg, "short convolution"), "short_conv should be refused: '%s'", e.msg);
    cuda_rwkv7_free(gcv);
    free_rwkv7(mcv);
}

/* 6. shared contexts: groups of 1..4 requests with one context, scored with sharing (default and with
 * small batches and a small state budget) == each request alone == the CPU */
static void check_shared_score(const char *name, Rwkv7 *m) {
    const Rwkv7Dims *d = &m->d;
    enum { NG = 23, MAXR = NG * 4 };
    CudaLmRequest req[MAXR];
    int *buf = xmalloc(MAXR * 64 * sizeof(int)), n = 0, ngroups = 0;
    for (int gi = 0; gi < NG; gi++) {
        const int nctx = 1 + (int)(gt_uniform(21, gi) * 30), k = 1 + (int)(gt_uniform(22, gi) * 4);
        int ctx[32];
        rand_tokens(ctx, nctx, d->V, 300 + gi);
        ngroups += k > 1;
        for (int c = 0; c < k; c++, n++) {
            const int ncont = 1 + (int)(gt_uniform(23, n) * 5);
            int *t = buf + n * 64;
            memcpy(t, ctx, nctx * sizeof(int));
            rand_tokens(t + nctx, ncont, d->V, 500 + n);
            req[n] = (CudaLmRequest){.tokens = t, .ntok = nctx + ncont, .nctx = nctx};
        }
    }
    double cpu_lp[MAXR], lp[3][MAXR];
    int cpu_gr[MAXR], gr[3][MAXR];
    float *lg = xmalloc((size_t)64 * d->V * sizeof(float));
    double ls = 0, ls2 = 0, ln = 0;
    for (int i = 0; i < n; i++) {
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
    const double sd = sqrt(fmax(ls2 / ln - (ls / ln) * (ls / ln), 0));
    Err e = {{0}};
    CudaRwkv7 *g = cuda_rwkv7_create(m, CUDA_DT_F32, &e);
    EXPECT(g, "shared score: %s", e.msg);
    if (!g) goto done;
    const size_t seq_bytes = rwkv7_state_numel(d, 1) * sizeof(float) * 2;
    const CudaScoreOpts opts[3] = {{.max_tokens = 1 << 20, .share = 0}, {.share = 1},
                                   {.max_tokens = 40, .max_seqs = 3, .share = 1, .state_bytes = 4 * seq_bytes}};
    const char *what[3] = {"alone", "shared", "shared, 40-token batches, 2 states"};
    for (int v = 0; v < 3; v++) {
        CudaScoreStats st = {0};
        EXPECT(cuda_rwkv7_score_ex(g, req, n, &opts[v], lp[v], gr[v], &st, &e) == 0, "score_ex: %s", e.msg);
        double worst = 0, worst_alone = 0;
        int gm = 0;
        for (int i = 0; i < n; i++) {
            const int nc = req[i].ntok - req[i].nctx;
            worst = fmax(worst, fabs(lp[v][i] - cpu_lp[i]) / nc / sd);
            worst_alone = fmax(worst_alone, fabs(lp[v][i] - lp[0][i]) / nc / sd);
            gm += gr[v][i] != cpu_gr[i];
        }
        printf("    %s %-36s vs CPU %.2e, vs alone %.2e per token/std (limit 1e-4); %ld forwards, %ld rows, %ld head "
               "rows, %ld shared contexts; greedy differs %d\n", name, what[v], worst, worst_alone, st.forwards, st.rows,
               st.head_rows, st.groups, gm);
        EXPECT(worst <= 1e-4 && worst_alone <= 1e-4, "%s %s: %.3e / %.3e", name, what[v], worst, worst_alone);
        EXPECT(gm == 0, "%s %s: %d greedy flags differ", name, what[v], gm);
        EXPECT(st.groups == (v ? ngroups : 0), "%s %s: %ld shared contexts, expected %d", name, what[v], st.groups,
               v ? ngroups : 0);
    }
    /* gather == per-sequence copies, exactly */
    {
        const int Bs = 5, Bd = 7, ix[7] = {4, 0, 0, 3, 2, 1, 4};
        const size_t ns = rwkv7_state_numel(d, Bs), nd = rwkv7_state_numel(d, Bd), n1 = rwkv7_state_numel(d, 1);
        float *hs = start_state(m, Bs, 41), *hd = xmalloc(nd * sizeof(float)), *want = xmalloc(nd * sizeof(float));
        float *one = xmalloc(n1 * sizeof(float));
        for (int j = 0; j < Bd; j++) gt_state_get(d, hs, Bs, ix[j], one), gt_state_put(d, want, Bd, j, one);
        CudaRwkv7State *src = cuda_rwkv7_state_create(g, Bs, &e), *dst = cuda_rwkv7_state_create(g, Bd, &e);
        cuda_rwkv7_state_upload(src, hs);
        EXPECT(cuda_rwkv7_state_gather(dst, src, ix, &e) == 0, "gather: %s", e.msg);
        cuda_rwkv7_state_download(dst, hd);
        EXPECT(!memcmp(hd, want, nd * sizeof(float)), "%s: gathered state differs from per-sequence copies", name);
        int bad[1] = {5};
        CudaRwkv7State *d1 = cuda_rwkv7_state_create(g, 1, &e);
        EXPECT(cuda_rwkv7_state_gather(d1, src, bad, &e) != 0 && strstr(e.msg, "outside"), "bad gather index: '%s'", e.msg);
        printf("    %s state gather of 7 from 5 sequences: %s\n", name, memcmp(hd, want, nd * sizeof(float)) ? "DIFFERS" : "exact");
        cuda_rwkv7_state_free(src), cuda_rwkv7_state_free(dst), cuda_rwkv7_state_free(d1);
        free(hs), free(hd), free(want), free(one);
        (void)ns;
    }
    cuda_rwkv7_free(g);
done:
    free(buf), free(lg);
}

/* 7. decoding steps (graph replays from the second on) == forward steps == CPU; argmax = first maximum */
static void check_decode(const char *name, Rwkv7 *m, CudaDType dt, int B) { /* B <= 8 */
    const Rwkv7Dims *d = &m->d;
    const int steps = 7, V = d->V;
    Err e = {{0}};
    CudaRwkv7 *g = cuda_rwkv7_create(m, dt, &e);
    EXPECT(g, "decode: %s", e.msg);
    if (!g) return;
    float *st0 = start_state(m, B, 61);
    const size_t ns = rwkv7_state_numel(d, B);
    CudaRwkv7State *s = cuda_rwkv7_state_create(g, B, &e), *s2 = cuda_rwkv7_state_create(g, B, &e);
    cuda_rwkv7_state_upload(s, st0), cuda_rwkv7_state_upload(s2, st0);
    float *lg = xmalloc((size_t)B * V * sizeof(float)), *lg2 = xmalloc((size_t)B * V * sizeof(float));
    float *clg = xmalloc((size_t)B * V * sizeof(float)), *cs = xmalloc(ns * sizeof(float)), *cs2 = xmalloc(ns * sizeof(float));
    memcpy(cs, st0, ns * sizeof(float));
    int tok[8], am[8], lens[8] = {1, 1, 1, 1, 1, 1, 1, 1}, rows[8] = {0, 1, 2, 3, 4, 5, 6, 7}, graphs = 0, am_bad = 0;
    double worst_fwd = 0, worst_cpu = 0;
    for (int k = 0; k < steps; k++) {
        rand_tokens(tok, B, V, 900 + k);
        const int want_logits = k != 4; /* one step with the argmax only (another graph) */
        for (size_t i = 0; i < (size_t)B * V; i++) lg[i] = NAN;
        EXPECT(cuda_rwkv7_decode(g, s, tok, am, want_logits ? lg : NULL, &e) == 0, "decode: %s", e.msg);
        graphs += cuda_rwkv7_decode_used_graph(s);
        CudaRwkv7Batch bt = {.B = B, .lens = lens, .tokens = tok, .state = s2, .nout = B, .out_rows = rows, .logits = lg2};
        EXPECT(cuda_rwkv7_forward(g, &bt, &e) == 0, "forward: %s", e.msg);
        gt_cpu_ragged(m, tok, lens, B, cs, cs2, clg);
        memcpy(cs, cs2, ns * sizeof(float));
        double s1 = 0, s2v = 0;
        for (size_t i = 0; i < (size_t)B * V; i++) s1 += clg[i], s2v += (double)clg[i] * clg[i];
        const double sd = sqrt(fmax(s2v / (B * V) - (s1 / (B * V)) * (s1 / (B * V)), 0));
        for (int b = 0; b < B; b++) {
            const float *row = want_logits ? lg + (size_t)b * V : lg2 + (size_t)b * V;
            am_bad += am[b] != sample_argmax(row, V);
        }
        if (!want_logits) continue;
        for (size_t i = 0; i < (size_t)B * V; i++) {
            worst_fwd = fmax(worst_fwd, fabs((double)lg[i] - lg2[i]) / sd);
            worst_cpu = fmax(worst_cpu, fabs((double)lg[i] - clg[i]) / sd);
        }
    }
    float *hs = xmalloc(ns * sizeof(float)), *hs2 = xmalloc(ns * sizeof(float));
    cuda_rwkv7_state_download(s, hs), cuda_rwkv7_state_download(s2, hs2);
    const Tol t = tol_of(dt);
    printf("    %s %s decode, %d steps of B=%d: %d from a CUDA graph; logits max|d|/std vs forward %.2e, vs CPU %.2e "
           "(limit %.0e); argmax != first max: %d\n", name, cuda_dtype_name(dt), steps, B, graphs, worst_fwd, worst_cpu,
           t.max, am_bad);
    EXPECT(graphs == steps - 1, "%s: %d of %d steps replayed a graph (want all but the first)", name, graphs, steps);
    EXPECT(worst_fwd <= 1e-5, "%s: decode vs forward %.3e std (the same kernels)", name, worst_fwd);
    EXPECT(worst_cpu <= t.max, "%s: decode vs CPU %.3e std > %.0e", name, worst_cpu, t.max);
    EXPECT(am_bad == 0, "%s: %d argmax values are not the first maximum", name, am_bad);
    char nm[160];
    snprintf(nm, sizeof nm, "%s %s decode vs forward", name, cuda_dtype_name(dt));
    check_state(nm, d, hs, hs2, B, tol_of(CUDA_DT_F32));
    if (dt == CUDA_DT_F32) {
        snprintf(nm, sizeof nm, "%s %s decode vs CPU", name, cuda_dtype_name(dt));
        check_state(nm, d, hs, cs, B, t);
    }
    cuda_rwkv7_state_free(s), cuda_rwkv7_state_free(s2);
    cuda_rwkv7_free(g);
    free(st0), free(lg), free(lg2), free(clg), free(cs), free(cs2), free(hs), free(hs2);
}

/* ---- 8. lmeval --device cuda vs --device cpu ---------------------------------------------------- */
static const char *lmeval_data_dir(void) {
    static char buf[1024];
    const char *dirs[] = {opt_lmeval_data, "data", "../shared/data"};
    for (int i = 0; i < 3; i++) {
        if (!dirs[i]) continue;
        snprintf(buf, sizeof buf, "%s/rwkv_vocab_v20230424.txt", dirs[i]);
        if (access(buf, R_OK) == 0) return dirs[i];
    }
    return NULL;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = xmalloc(n + 1);
    size_t got = fread(b, 1, n, f);
    b[got] = 0;
    fclose(f);
    return b;
}

/* one run's samples of a task: per document its choices' logprobs and greedy flags, acc, acc_norm */
typedef struct {
    int ndoc, nreq;
    int *first, *nch, *gr, *clen;   /* (ndoc+1), (ndoc), (nreq), (nreq) choice lengths in code points */
    double *lp, *acc, *accn;        /* (nreq), (ndoc), (ndoc) */
} Samples;
static void samples_free(Samples *s) {
    free(s->first), free(s->nch), free(s->gr), free(s->clen), free(s->lp), free(s->acc), free(s->accn);
    memset(s, 0, sizeof *s);
}
static int utf8_len(const char *s) {
    int n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}
static int samples_read(const char *dir, const char *task, Samples *S) {
    memset(S, 0, sizeof *S);
    char pat[1200];
    snprintf(pat, sizeof pat, "%s/*/samples_%s_*.jsonl", dir, task);
    glob_t gl;
    if (glob(pat, 0, NULL, &gl) || gl.gl_pathc != 1) {
        printf("    no single samples file %s\n", pat);
        return -1;
    }
    char *txt = slurp(gl.gl_pathv[0]);
    globfree(&gl);
    if (!txt) return -1;
    int cap = 1024, rcap = 4096;
    S->first = xmalloc((cap + 1) * sizeof(int)), S->nch = xmalloc(cap * sizeof(int));
    S->acc = xmalloc(cap * sizeof(double)), S->accn = xmalloc(cap * sizeof(double));
    S->lp = xmalloc(rcap * sizeof(double)), S->gr = xmalloc(rcap * sizeof(int)), S->clen = xmalloc(rcap * sizeof(int));
    for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        if (!j) continue;
        if (S->ndoc + 1 >= cap) {
            cap *= 2;
            S->first = realloc(S->first, (cap + 1) * sizeof(int)), S->nch = realloc(S->nch, cap * sizeof(int));
            S->acc = realloc(S->acc, cap * sizeof(double)), S->accn = realloc(S->accn, cap * sizeof(double));
        }
        cJSON *resps = cJSON_GetObjectItem(j, "filtered_resps"), *ch = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "doc"), "choices");
        const int k = cJSON_GetArraySize(resps);
        while (S->nreq + k >= rcap) {
            rcap *= 2;
            S->lp = realloc(S->lp, rcap * sizeof(double)), S->gr = realloc(S->gr, rcap * sizeof(int));
            S->clen = realloc(S->clen, rcap * sizeof(int));
        }
        S->first[S->ndoc] = S->nreq, S->nch[S->ndoc] = k;
        for (int c = 0; c < k; c++) {
            cJSON *pair = cJSON_GetArrayItem(resps, c);
            S->lp[S->nreq] = atof(cJSON_GetArrayItem(pair, 0)->valuestring);
            S->gr[S->nreq] = !strcmp(cJSON_GetArrayItem(pair, 1)->valuestring, "True");
            cJSON *cs = cJSON_GetArrayItem(ch, c);
            S->clen[S->nreq] = cs && cJSON_IsString(cs) ? utf8_len(cs->valuestring) : 1;
            S->nreq++;
        }
        cJSON *a = cJSON_GetObjectItem(j, "acc"), *an = cJSON_GetObjectItem(j, "acc_norm");
        S->acc[S->ndoc] = a ? a->valuedouble : 0, S->accn[S->ndoc] = an ? an->valuedouble : 0;
        S->ndoc++;
        cJSON_Delete(j);
    }
    S->first[S->ndoc] = S->nreq;
    free(txt);
    return 0;
}

/* the decision of document di is a near tie: its best and second-best choice (by lp, or lp / length)
 * within tol of each other */
static int near_tie(const Samples *S, int di, int norm, double tol) {
    double best = -INFINITY, second = -INFINITY;
    for (int r = S->first[di]; r < S->first[di + 1]; r++) {
        double v = norm ? S->lp[r] / S->clen[r] : S->lp[r];
        if (v > best) second = best, best = v;
        else if (v > second) second = v;
    }
    return S->nch[di] > 1 && best - second <= tol;
}

static double result_metric(const char *results_path, const char *task, const char *key) {
    char *t = slurp(results_path);
    cJSON *j = t ? cJSON_Parse(t) : NULL;
    free(t);
    cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "results"), task), key);
    double x = v && cJSON_IsNumber(v) ? v->valuedouble : NAN;
    cJSON_Delete(j);
    return x;
}

static int lm_run(const char *model, const char *tasks, long limit, const char *device, int batch, const char *out,
                  char *results, size_t rcap, double *secs) {
    LmevalOpts o = {.model_path = model, .tasks = tasks, .data_dir = lmeval_data_dir(), .out_dir = out, .device = device,
                    .dtype = strcmp(device, "cuda") ? NULL : "fp32", .batch = batch, .limit = limit, .prefix = 0,
                    .split = 0, .samples = 1, .bootstrap = 0, .quiet = 1};
    model_load_opts_default(&o.load);
    Err e = {{0}};
    double t0 = now_seconds();
    int rc = lmeval_run(&o, &e);
    *secs = now_seconds() - t0;
    EXPECT(rc == 0, "lmeval --device %s --batch %d: %s", device, batch, e.msg);
    snprintf(results, rcap, "%s", o.results_path);
    return rc;
}

static void compare_lmeval(const char *label, const char *tasks, const char *cpu_dir, const char *cpu_res,
                           const char *gpu_dir, const char *gpu_res) {
    char list[512];
    snprintf(list, sizeof list, "%s", tasks);
    for (char *sv, *task = strtok_r(list, ",", &sv); task; task = strtok_r(NULL, ",", &sv)) {
        Samples c, g;
        if (samples_read(cpu_dir, task, &c) || samples_read(gpu_dir, task, &g)) {
            EXPECT(0, "%s %s: samples missing", label, task);
            continue;
        }
        EXPECT(c.ndoc == g.ndoc && c.nreq == g.nreq, "%s %s: %d/%d docs, %d/%d requests", label, task, c.ndoc, g.ndoc,
               c.nreq, g.nreq);
        if (c.ndoc != g.ndoc || c.nreq != g.nreq) {
            samples_free(&c), samples_free(&g);
            continue;
        }
        double worst = 0; /* |d lp| / (1e-3 + 1e-4 |lp|) */
        int grd = 0, accd = 0, accnd = 0, accd_tie = 0, accnd_tie = 0;
        for (int r = 0; r < c.nreq; r++) {
            worst = fmax(worst, fabs(c.lp[r] - g.lp[r]) / (1e-3 + 1e-4 * fabs(c.lp[r])));
            grd += c.gr[r] != g.gr[r];
        }
        for (int di = 0; di < c.ndoc; di++) {
            const double tol = 2 * (1e-3 + 1e-4 * fabs(c.lp[c.first[di]]));
            if (c.acc[di] != g.acc[di]) accd++, accd_tie += near_tie(&c, di, 0, tol);
            if (c.accn[di] != g.accn[di]) accnd++, accnd_tie += near_tie(&c, di, 1, tol);
        }
        const char *keys[3] = {"acc,none", "acc_norm,none", "perplexity,none"};
        double mc[3], mg[3];
        for (int k = 0; k < 3; k++) mc[k] = result_metric(cpu_res, task, keys[k]), mg[k] = result_metric(gpu_res, task, keys[k]);
        const double ppl_rel = isnan(mc[2]) ? 0 : fabs(mg[2] - mc[2]) / mc[2];
        printf("    %s %-14s %4d docs %5d requests: max |d lp| %.2e of its limit; greedy flags differ %d; acc %.4f/%.4f "
               "(%d docs differ, %d near ties) acc_norm %.4f/%.4f (%d, %d) ppl %.6g/%.6g (rel %.1e, limit 5e-3)\n",
               label, task, c.ndoc, c.nreq, worst, grd, mc[0], mg[0], accd, accd_tie, mc[1], mg[1], accnd, accnd_tie,
               mc[2], mg[2], ppl_rel);
        EXPECT(worst <= 1, "%s %s: a logprob differs by %.2f x its limit", label, task, worst);
        EXPECT(grd <= c.nreq / 1000, "%s %s: %d greedy flags differ (allowed %d: near ties)", label, task, grd, c.nreq / 1000);
        EXPECT(accd == accd_tie && accnd == accnd_tie, "%s %s: acc differs on %d docs (%d near ties), acc_norm on %d (%d)",
               label, task, accd, accd_tie, accnd, accnd_tie);
        EXPECT(fabs(mg[0] - mc[0]) * c.ndoc <= accd + 1e-9, "%s %s: acc %.6f vs %.6f", label, task, mg[0], mc[0]);
        EXPECT(ppl_rel <= 5e-3, "%s %s: perplexity %.6g vs %.6g", label, task, mg[2], mc[2]);
        samples_free(&c), samples_free(&g);
    }
}

static void check_lmeval(void) {
    const char *data = lmeval_data_dir();
    if (!data) {
        skip("lmeval data (rwkv_vocab_v20230424.txt and evalsets/) not found: --lmeval-data DIR");
        return;
    }
    Rwkv7Dims dd = {.V = 65536, .C = 128, .L = 2, .N = 64, .Dw = 16, .Da = 24, .Dv = 16, .Dg = 32, .has_ln0 = 1};
    Rwkv7 *m = rwkv7_create_inference(&dd);
    gt_fill_model(m, 77);
    char model[400];
    snprintf(model, sizeof model, "%s/lm.safetensors", tmpdir);
    Err e = {{0}};
    EXPECT(model_export(&m->head, model, TF_F32, &e) == 0, "export: %s", e.msg);
    free_rwkv7(m);
    struct {
        const char *tasks;
        long limit;
        int batches[2];
        int run;
    } sets[2] = {{"lambada_openai,piqa,hellaswag,arc_easy,winogrande,copa", 60, {0, 3}, 1},
                 {"lambada_openai", 0, {0, 64}, opt_lmeval_full}};
    for (int si = 0; si < 2; si++) {
        if (!sets[si].run) continue;
        char cdir[600], cres[4096], gdir[600], gres[4096];
        double tc, tg;
        snprintf(cdir, sizeof cdir, "%s/lm_cpu%d", tmpdir, si);
        if (lm_run(model, sets[si].tasks, sets[si].limit, "cpu", 0, cdir, cres, sizeof cres, &tc)) continue;
        for (int bi = 0; bi < 2; bi++) {
            const int batch = sets[si].batches[bi];
            snprintf(gdir, sizeof gdir, "%s/lm_gpu%d_%d", tmpdir, si, batch);
            if (lm_run(model, sets[si].tasks, sets[si].limit, "cuda", batch, gdir, gres, sizeof gres, &tg)) continue;
            char label[160];
            snprintf(label, sizeof label, "%s --batch %d (cpu %.1f s, cuda %.1f s)", sets[si].limit ? "limit" : "FULL",
                     batch, tc, tg);
            compare_lmeval(label, sets[si].tasks, cdir, cres, gdir, gres);
        }
    }
    unlink(model);
}

/* ---- 9. generate --device cuda ------------------------------------------------------------------ */
static int gen_run(GenOpts *o, const char *device, Err *e) {
    o->device = device;
    o->dtype = strcmp(device, "cuda") ? NULL : "fp32";
    model_load_opts_default(&o->load);
    return generate_run(o, e);
}

static void check_generate(void) {
    Rwkv7Dims dd = {.V = 65536, .C = 128, .L = 2, .N = 64, .Dw = 16, .Da = 24, .Dv = 16, .Dg = 32, .has_ln0 = 1};
    Rwkv7 *m = rwkv7_create_inference(&dd);
    gt_fill_model(m, 78);
    char model[400], sp[400];
    snprintf(model, sizeof model, "%s/gen.safetensors", tmpdir);
    snprintf(sp, sizeof sp, "%s/gen.state", tmpdir);
    Err e = {{0}};
    EXPECT(model_export(&m->head, model, TF_F32, &e) == 0, "export: %s", e.msg);
    int prompt[9];
    rand_tokens(prompt, 9, dd.V, 1234);
    const int n = 12, B = 3;
    /* greedy on the GPU, then the CPU along the GPU's path */
    GenOpts o = {.model_path = model, .prompt = prompt, .nprompt = 9, .n = n, .batch = B, .top_p = 1};
    if (gen_run(&o, "cuda", &e)) {
        EXPECT(0, "generate cuda: %s", e.msg);
        free_rwkv7(m);
        return;
    }
    int rows_same = 1;
    for (int b = 1; b < B; b++) rows_same &= !memcmp(o.out, o.out + (size_t)b * n, n * sizeof(int));
    int path[21];
    memcpy(path, prompt, 9 * sizeof(int));
    memcpy(path + 9, o.out, n * sizeof(int));
    int len = 9 + n - 1;
    float *lg = xmalloc((size_t)len * dd.V * sizeof(float));
    gt_cpu_ragged(m, path, &len, 1, NULL, NULL, lg);
    double worst = 0, s1 = 0, s2 = 0;
    for (size_t i = 0; i < (size_t)len * dd.V; i++) s1 += lg[i], s2 += (double)lg[i] * lg[i];
    const double sd = sqrt(fmax(s2 / ((double)len * dd.V) - pow(s1 / ((double)len * dd.V), 2), 0));
    for (int k = 0; k < n; k++) {
        const float *row = lg + (size_t)(8 + k) * dd.V;
        worst = fmax(worst, (row[sample_argmax(row, dd.V)] - row[o.out[k]]) / sd);
    }
    printf("    generate cuda fp32 greedy, B=%d x %d tokens (%s): GPU tokens' CPU logit below the CPU max by at most "
           "%.2e std (limit 1e-4); rows of the batch %s\n", B, n, o.used_graph ? "CUDA graph" : "no graph", worst,
           rows_same ? "identical" : "DIFFER");
    EXPECT(worst <= 1e-4, "generate: a GPU greedy token is %.3e std below the CPU argmax", worst);
    EXPECT(rows_same, "generate: identical prompts gave different greedy rows");
    EXPECT(o.used_graph, "generate: the decoding steps did not replay a CUDA graph");
    free(o.out), free(lg);
    /* continued == unbroken on the GPU, greedy and sampled */
    const double temps[2] = {0, 1};
    for (int ti = 0; ti < 2; ti++) {
        GenOpts a = {.model_path = model, .prompt = prompt, .nprompt = 9, .n = 2 * 6, .batch = B, .top_p = 0.9,
                     .temperature = temps[ti], .seed = 5, .seed_given = 1};
        GenOpts b1 = a, b2 = a;
        b1.n = 6, b1.save_state = sp;
        b2.n = 6, b2.prompt = NULL, b2.nprompt = 0, b2.load_state = sp, b2.batch = 0;
        int ok = !gen_run(&a, "cuda", &e) && !gen_run(&b1, "cuda", &e) && !gen_run(&b2, "cuda", &e);
        EXPECT(ok, "generate continue: %s", e.msg);
        if (!ok) continue;
        int same = 1;
        for (int b = 0; b < B; b++)
            same &= !memcmp(a.out + (size_t)b * 12, b1.out + (size_t)b * 6, 6 * sizeof(int)) &&
                    !memcmp(a.out + (size_t)b * 12 + 6, b2.out + (size_t)b * 6, 6 * sizeof(int));
        printf("    generate cuda T=%g: 12 tokens unbroken vs 6 saved + 6 continued: %s\n", temps[ti], same ? "equal" : "DIFFER");
        EXPECT(same, "generate cuda T=%g: the continued run differs from the unbroken one", temps[ti]);
        free(a.out), free(b1.out), free(b2.out);
    }
    unlink(sp), unlink(model);
    free_rwkv7(m);
}

/* ---- 10. the WKV7 recurrence forms -------------------------------------------------------------------- */
static void check_wkv7_case(const char *cfg, int N, int H, int B, const int *lens, uint64_t seed) {
    int R = 0;
    for (int b = 0; b < B; b++) R += lens[b];
    const int C = H * N;
    const size_t act = (size_t)R * C, ns = (size_t)N * N, nst = (size_t)B * H * ns;
    float *r = xmalloc(act * sizeof(float)), *w = xmalloc(act * sizeof(float)), *k = xmalloc(act * sizeof(float)),
          *v = xmalloc(act * sizeof(float)), *kk = xmalloc(act * sizeof(float)), *a = xmalloc(act * sizeof(float)),
          *bb = xmalloc(act * sizeof(float)), *yg = xmalloc(act * sizeof(float)), *yc = xmalloc(act * sizeof(float)),
          *s0 = xmalloc(nst * sizeof(float)), *sg = xmalloc(nst * sizeof(float)), *sc = xmalloc(nst * sizeof(float));
    for (size_t i = 0; i < act; i++) {
        r[i] = (float)(2 * gt_uniform(seed, 6 * i) - 1), k[i] = (float)(2 * gt_uniform(seed, 6 * i + 1) - 1);
        v[i] = (float)(2 * gt_uniform(seed, 6 * i + 2) - 1), kk[i] = (float)(2 * gt_uniform(seed, 6 * i + 3) - 1);
        a[i] = (float)gt_uniform(seed, 6 * i + 4);
        /* the decay of rwkv7.md, z in [-8, 8]: w in (0.5452, 1) reaching both ends */
        const double z = 16 * gt_uniform(seed, 6 * i + 5) - 8;
        w[i] = (float)exp(-exp(-0.5) / (1 + exp(-z)));
    }
    for (size_t t = 0; t < (size_t)R * H; t++) { /* kk: unit length per head */
        double n2 = 0;
        for (int j = 0; j < N; j++) n2 += (double)kk[t * N + j] * kk[t * N + j];
        for (int j = 0; j < N; j++) kk[t * N + j] = (float)(kk[t * N + j] / sqrt(n2));
    }
    for (size_t i = 0; i < act; i++) bb[i] = kk[i] * a[i];
    for (size_t i = 0; i < nst; i++) s0[i] = (float)(gt_uniform(seed + 1, i) - 0.5);
    Err e = {{0}};
    int rc = cuda_wkv7_run(cfg, N, H, B, lens, r, w, k, v, kk, bb, s0, yg, sg, NULL, &e);
    EXPECT(rc == 0, "cuda_wkv7_run %s: %s", cfg, e.msg);
    size_t off = 0;
    for (int b = 0; b < B; b++) { /* the CPU oracle, one sequence at a time */
        Wkv7Dims d = {.B = 1, .T = lens[b], .H = H, .N = N, .K = lens[b], .Nv = N};
        wkv7_forward(yc + off, NULL, sc + (size_t)b * H * ns, NULL, r + off, w + off, k + off, v + off, kk + off,
                     a + off, s0 + (size_t)b * H * ns, &d);
        off += (size_t)lens[b] * C;
    }
    char what[128], lens_s[64] = "";
    for (int b = 0; b < B; b++)
        snprintf(lens_s + strlen(lens_s), sizeof lens_s - strlen(lens_s), "%s%d", b ? "," : "", lens[b]);
    if (rc == 0) {
        snprintf(what, sizeof what, "wkv7 %s N=%d H=%d T=%s: y", cfg, N, H, lens_s);
        check_close(what, yg, yc, act, 1e-4, 1e-5);
        snprintf(what, sizeof what, "wkv7 %s N=%d H=%d T=%s: final S", cfg, N, H, lens_s);
        check_close(what, sg, sc, nst, 1e-4, 1e-5);
    }
    free(r), free(w), free(k), free(v), free(kk), free(a), free(bb), free(yg), free(yc), free(s0), free(sg), free(sc);
}

static void check_wkv7(void) {
    const int l1[3] = {300, 33, 1}, l2[2] = {15, 100}, l3[1] = {1000};
    const char *cfgs64[] = {"C32", "C16", "C32r8", "C32s2", "C32s4", "L8r2", "T4r2", "auto"};
    for (int c = 0; c < 8; c++) {
        check_wkv7_case(cfgs64[c], 64, 2, 3, l1, 21 + c);
        check_wkv7_case(cfgs64[c], 64, 3, 2, l2, 31 + c);
        if (!opt_quick) check_wkv7_case(cfgs64[c], 64, 2, 1, l3, 41 + c);
    }
    check_wkv7_case("auto", 32, 2, 2, l2, 51);
    check_wkv7_case("auto", 16, 4, 3, l1, 52);
}

/* ---- 11. traces: cuda_model_trace (trace --device cuda) vs the CPU forward's trace ----------------------- */
static void check_trace(const char *name, Rwkv7 *rm, CudaDType dt) {
    Model *m = &rm->head;
    const int T = 40, V = m->V;
    int ids[40];
    rand_tokens(ids, T, V, 77);
    ModelTrace tc, tg;
    model_trace_alloc(m, 1, T, &tc);
    model_trace_alloc(m, 1, T, &tg);
    ModelFwd f = {.trace = &tc};
    const real *lc = model_forward(m, ids, 1, T, &f);
    float *lg = xmalloc((size_t)T * V * sizeof(float));
    Err e = {{0}};
    const int rc = cuda_model_trace(m, dt, ids, T, lg, &tg, &e);
    EXPECT(rc == 0, "%s: cuda_model_trace: %s", name, e.msg);
    if (rc == 0) {
        const Tol t = tol_of(dt);
        const size_t LTC = (size_t)m->L * T * m->C, LTS = (size_t)m->L * T * m->H * m->N * m->N;
        char nm[160];
        snprintf(nm, sizeof nm, "%s %s trace: logits", name, cuda_dtype_name(dt));
        check_close(nm, lg, lc, (size_t)T * V, t.max, t.rms);
        snprintf(nm, sizeof nm, "%s %s trace: state", name, cuda_dtype_name(dt));
        check_close(nm, tg.state, tc.state, LTS, t.max, t.rms);
        const float *gv[4] = {tg.w, tg.alpha, tg.beta, tg.q[1]}, *cv[4] = {tc.w, tc.alpha, tc.beta, tc.q[1]};
        const char *qn[4] = {"w (decay)", "alpha (-kk)", "beta (kk a)", "a"};
        for (int q = 0; q < 4; q++) {
            snprintf(nm, sizeof nm, "%s %s trace: %s", name, cuda_dtype_name(dt), qn[q]);
            check_close(nm, gv[q], cv[q], LTC, t.max, t.rms);
        }
        EXPECT(!memcmp(tg.q[0], tg.w, LTC * sizeof(float)), "%s: trace q[0] (decay) != w", name);
    }
    model_trace_free(&tc), model_trace_free(&tg);
    free(lg);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) opt_quick = 1;
        else if (!strcmp(argv[i], "--require-data")) opt_require = 1;
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) opt_data = argv[++i];
        else if (!strcmp(argv[i], "--lmeval-data") && i + 1 < argc) opt_lmeval_data = argv[++i];
        else if (!strcmp(argv[i], "--lmeval-full")) opt_lmeval_full = 1;
        else {
            fprintf(stderr, "usage: test_gpu [--quick] [--require-data] [--data DIR] [--lmeval-data DIR] [--lmeval-full]\n");
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

    printf("[10] the WKV7 recurrence: every launch configuration vs the CPU\n");
    check_wkv7();

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
        int lens_long[2] = {300, 20}; /* long enough for the chunked WKV7 form (the automatic choice) */
        check_model("N=64 C=256 ln0, 300 tokens", ma, lens_long, 2, 16);
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

    printf("[6] shared contexts, state gather\n");
    check_shared_score("N=32 C=96", mc);
    if (ma) check_shared_score("N=64 C=256 V=65536", ma);

    printf("[7] decoding steps (CUDA graph)\n");
    /* B <= 8: the few-row product kernel (cuda_gemv.cu) instead of cuBLAS, B = 1, 3, 8 */
    check_decode("N=32 C=96", mc, CUDA_DT_F32, 3);
    check_decode("N=32 C=96", mc, CUDA_DT_BF16, 3);
    check_decode("N=32 C=96", mc, CUDA_DT_F16, 1);
    if (ma) {
        check_decode("N=64 C=256", ma, CUDA_DT_F32, 3);
        check_decode("N=64 C=256", ma, CUDA_DT_F32, 1);
        check_decode("N=64 C=256", ma, CUDA_DT_BF16, 8);
    }

    printf("[11] traces (trace --device cuda) vs the CPU\n");
    check_trace("N=32 C=96", mc, CUDA_DT_F32);
    check_trace("N=32 C=96", mc, CUDA_DT_BF16);
    if (ma) check_trace("N=64 C=256", ma, CUDA_DT_F32);

    if (!opt_quick) {
        printf("[8] lmeval --device cuda vs cpu\n");
        check_lmeval();
        printf("[9] generate --device cuda\n");
        check_generate();
    }

    free_rwkv7(fx), free_rwkv7(mc), free_rwkv7(ma);
    rmdir(tmpdir);
    printf("test_gpu: %d checks, %d failed, %d skipped (%.1f s)%s\n", n_checks, n_fail, n_skip, now_seconds() - t0,
           n_fail ? "" : ": all passed");
    return n_fail ? 1 : 0;
}
