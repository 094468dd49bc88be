/* bench_gpu.c -- throughput of the CUDA engine on random-weight models of released shapes (V = 65536):
 *   prefill  one sequence of T tokens (default 4096) from a zero state, logits at its last token
 *   score    LM-eval-style scoring of a LAMBADA-sized synthetic request set (5153 requests, contexts of
 *            20..140 tokens, 1-3 continuation tokens: ~419k tokens), head only at scored rows
 *   decode   one token per sequence per step for B = 1, 64, 256 sequences, state kept on the device
 * next to the card's own ceilings measured in the same run (cuBLAS bf16 8192^3 product, device-to-device
 * copy). Times are wall-clock medians of whole API calls (host checks and transfers included).
 * FLOPs: 2 per multiply-add of every matrix product actually run (the head only at scored rows) plus the
 * WKV recurrence (9 N^2 per head and token); elementwise work is not counted.
 *
 * Usage: bench_gpu [--shapes 0.1b,1.5b] [--dtype bf16|fp16|fp32] [--T 4096] [--reps 5] [--quick]
 *                  [--only prefill,score,decode] [--profile] [--wkv auto,L8r2,C32]
 *   --profile  after each timed case, one more call with per-stage GPU times (cuda_rwkv7_profile)
 */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_rwkv7.h"
#include "gpu_testutil.h"

#define CK(call)                                                                                     \
    do {                                                                                             \
        cudaError_t e_ = (call);                                                                     \
        if (e_ != cudaSuccess) {                                                                     \
            fprintf(stderr, "bench_gpu: %s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
            exit(1);                                                                                 \
        }                                                                                            \
    } while (0)

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
    qsort(v, n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* the card's bf16 matrix rate (cuBLAS, 8192^3, random data) and device-to-device copy bandwidth */
static void ceilings(double *tflops, double *gbs) {
    const int n = 8192;
    const size_t bytes = (size_t)n * n * 2;
    void *A, *B, *C;
    CK(cudaMalloc(&A, bytes)); CK(cudaMalloc(&B, bytes)); CK(cudaMalloc(&C, (size_t)n * n * 4));
    float *h = malloc((size_t)n * n * sizeof(float));
    for (size_t i = 0; i < (size_t)n * n; i++) h[i] = (float)(gt_uniform(1, i) - 0.5);
    /* bf16 bits = upper half of the float (truncation is fine for a rate measurement) */
    unsigned short *hb = malloc(bytes);
    for (size_t i = 0; i < (size_t)n * n; i++) {
        unsigned u;
        memcpy(&u, &h[i], 4);
        hb[i] = (unsigned short)(u >> 16);
    }
    CK(cudaMemcpy(A, hb, bytes, cudaMemcpyHostToDevice)); CK(cudaMemcpy(B, hb, bytes, cudaMemcpyHostToDevice));
    free(h), free(hb);
    cublasHandle_t hd;
    if (cublasCreate(&hd) != CUBLAS_STATUS_SUCCESS) exit(1);
    const float one = 1, zero = 0;
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
    double t[10];
    for (int it = -3; it < 10; it++) {
        CK(cudaEventRecord(e0, 0));
        if (cublasGemmEx(hd, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &one, A, CUDA_R_16BF, n, B, CUDA_R_16BF, n, &zero, C,
                         CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) != CUBLAS_STATUS_SUCCESS)
            exit(1);
        CK(cudaEventRecord(e1, 0));
        CK(cudaEventSynchronize(e1));
        float ms;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        if (it >= 0) t[it] = ms * 1e-3;
    }
    *tflops = 2.0 * n * n * (double)n / median(t, 10) / 1e12;
    void *X, *Y;
    const size_t cb = (size_t)4 << 30;
    CK(cudaMalloc(&X, cb)); CK(cudaMalloc(&Y, cb));
    CK(cudaMemset(X, 1, cb));
    for (int it = -2; it < 10; it++) {
        CK(cudaEventRecord(e0, 0));
        CK(cudaMemcpyAsync(Y, X, cb, cudaMemcpyDeviceToDevice, 0));
        CK(cudaEventRecord(e1, 0));
        CK(cudaEventSynchronize(e1));
        float ms;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        if (it >= 0) t[it] = ms * 1e-3;
    }
    *gbs = 2.0 * cb / median(t, 10) / 1e9;
    cublasDestroy(hd);
    CK(cudaFree(A)); CK(cudaFree(B)); CK(cudaFree(C)); CK(cudaFree(X)); CK(cudaFree(Y));
    CK(cudaEventDestroy(e0)); CK(cudaEventDestroy(e1));
}

/* forward FLOPs per token (matrices except emb and head, plus WKV) and per head row */
static double flops_token(const Rwkv7Dims *d) {
    double C = d->C, F = d->F, per = 0;
    for (int l = 0; l < d->L; l++)
        per += 2 * (4 * C * C + 2 * C * F + 2 * C * (d->Dw + d->Da + d->Dg + (l > 0 ? d->Dv : 0))) + 9.0 * d->N * C;
    return per;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *shapes = "0.1b,1.5b";
    CudaDType dt = CUDA_DT_BF16;
    int T = 4096, reps = 5, quick = 0, profile = 0;
    const char *only = "prefill,score,decode", *wkv_cfgs = "auto";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--shapes") && i + 1 < argc) shapes = argv[++i];
        else if (!strcmp(argv[i], "--dtype") && i + 1 < argc) {
            if (cuda_dtype_parse(argv[++i], &dt)) {
                fprintf(stderr, "bench_gpu: --dtype bf16|fp16|fp32\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--T") && i + 1 < argc) T = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--profile")) profile = 1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--wkv") && i + 1 < argc) wkv_cfgs = argv[++i];
        else {
            fprintf(stderr, "usage: bench_gpu [--shapes 0.1b,1.5b] [--dtype bf16|fp16|fp32] [--T 4096] [--reps 5] [--quick] [--only prefill,score,decode] [--profile] [--wkv CFG,...]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 50 || T < 1) return 2;
    char why[512];
    if (!cuda_available(why, sizeof why)) {
        printf("bench_gpu: skipped: no GPU (%s)\n", why);
        return 0;
    }
    char info[512];
    cuda_device_info(info, sizeof info);
    double peak_tf, peak_bw;
    ceilings(&peak_tf, &peak_bw);
    printf("bench_gpu: %s; weights %s\n", info, cuda_dtype_name(dt));
    printf("ceilings (this run): cuBLAS bf16 8192^3 %.0f TFLOP/s; device copy %.0f GB/s (read + write)\n", peak_tf, peak_bw);

    char list[256], out[8192] = "";
    snprintf(list, sizeof list, "%s", shapes);
    for (char *sv = NULL, *sh = strtok_r(list, ",", &sv); sh; sh = strtok_r(NULL, ",", &sv)) {
        Rwkv7Dims d = {.V = 65536, .N = 64, .has_ln0 = 1};
        if (!strcmp(sh, "0.1b")) d.L = 12, d.C = 768, d.Dw = 64, d.Da = 64, d.Dv = 32, d.Dg = 128;
        else if (!strcmp(sh, "0.4b")) d.L = 24, d.C = 1024, d.Dw = 64, d.Da = 64, d.Dv = 32, d.Dg = 128;
        else if (!strcmp(sh, "1.5b")) d.L = 24, d.C = 2048, d.Dw = 96, d.Da = 96, d.Dv = 64, d.Dg = 256;
        else if (!strcmp(sh, "2.9b")) d.L = 32, d.C = 2560, d.Dw = 96, d.Da = 96, d.Dv = 64, d.Dg = 320;
        else if (!strcmp(sh, "7.2b")) d.L = 32, d.C = 4096, d.Dw = 128, d.Da = 128, d.Dv = 96, d.Dg = 480;
        else {
            fprintf(stderr, "bench_gpu: unknown shape '%s' (0.1b 0.4b 1.5b 2.9b 7.2b)\n", sh);
            return 2;
        }
        double t0 = now_seconds();
        Rwkv7 *m = rwkv7_create_inference(&d);
        gt_fill_model(m, 42);
        const double t_fill = now_seconds() - t0;
        size_t fr0, tot;
        CK(cudaMemGetInfo(&fr0, &tot));
        Err e = {{0}};
        t0 = now_seconds();
        CudaRwkv7 *g = cuda_rwkv7_create(m, dt, &e);
        const double t_up = now_seconds() - t0;
        if (!g) {
            fprintf(stderr, "bench_gpu: %s: %s\n", sh, e.msg);
            return 1;
        }
        const Rwkv7Dims *gd = cuda_rwkv7_dims(g);
        printf("\n== %s: L%d C%d N%d V%d ranks w%d a%d v%d g%d, %.3f G parameters; host fill %.1f s, upload %.2f s "
               "(%.2f GB on the device)\n", sh, d.L, d.C, d.N, d.V, gd->Dw, gd->Da, gd->Dv, gd->Dg, m->nparams / 1e9, t_fill,
               t_up, cuda_rwkv7_weight_bytes(g) / 1e9);
        model_free(&m->head);
        const double ft = flops_token(gd), fh = 2.0 * d.V * d.C;
        double tt[50];

        /* ---- the WKV7 recurrence alone (one layer of this shape, T tokens, random inputs), per configuration */
        if (strstr(only, "wkv")) {
            const int H = d.C / d.N, N = d.N;
            const size_t act = (size_t)T * d.C;
            float *buf = malloc(7 * act * sizeof(float)), *a[7];
            for (int i = 0; i < 7; i++) a[i] = buf + i * act;
            for (size_t i = 0; i < act; i++) {
                a[0][i] = (float)(2 * gt_uniform(5, 5 * i) - 1), a[2][i] = (float)(2 * gt_uniform(5, 5 * i + 1) - 1);
                a[3][i] = (float)(2 * gt_uniform(5, 5 * i + 2) - 1), a[4][i] = (float)(gt_uniform(5, 5 * i + 3) - 0.5) / 4;
                a[1][i] = (float)exp(-exp(-0.5) / (1 + exp(-(8 * gt_uniform(5, 5 * i + 4) - 4))));
                a[5][i] = a[4][i] * 0.5f;
            }
            char cl[128];
            snprintf(cl, sizeof cl, "%s", wkv_cfgs);
            for (char *cv = NULL, *cfg = strtok_r(cl, ",", &cv); cfg; cfg = strtok_r(NULL, ",", &cv)) {
                double m0[5], m1[5], ms[2];
                for (int it = -1; it < 5; it++) {
                    if (cuda_wkv7_run(cfg, N, H, 1, &T, a[0], a[1], a[2], a[3], a[4], a[5], NULL, a[6], NULL, ms, &e)) {
                        fprintf(stderr, "bench_gpu: wkv %s: %s\n", cfg, e.msg);
                        return 1;
                    }
                    if (it >= 0) m0[it] = ms[0], m1[it] = ms[1];
                }
                const double t0m = median(m0, 5), t1m = median(m1, 5);
                printf("wkv7 one layer T=%d H=%d [%s]: %.3f ms (first pass %.3f ms, state pass %.3f ms); x %d layers = %.2f ms\n",
                       T, H, cfg, t0m, t1m, t0m - t1m, d.L, t0m * d.L);
            }
            free(buf);
        }

        /* ---- prefill, once per WKV7 configuration named by --wkv (RWKVLAB_WKV_CFG) */
        char cfgl[128];
        snprintf(cfgl, sizeof cfgl, "%s", wkv_cfgs);
        for (char *cv = NULL, *cfg = strtok_r(cfgl, ",", &cv); cfg && strstr(only, "prefill"); cfg = strtok_r(NULL, ",", &cv)) {
        setenv("RWKVLAB_WKV_CFG", cfg, 1);
        int *tok = malloc((size_t)T * sizeof(int));
        for (int i = 0; i < T; i++) tok[i] = (int)(gt_uniform(3, i) * d.V);
        CudaRwkv7State *st = cuda_rwkv7_state_create(g, 1, &e);
        float *lg = malloc((size_t)d.V * sizeof(float));
        int last = T - 1;
        for (int it = -2; it < reps; it++) {
            cuda_rwkv7_state_zero(st);
            CudaRwkv7Batch b = {.B = 1, .lens = &T, .tokens = tok, .state = st, .nout = 1, .out_rows = &last, .logits = lg};
            double a = now_seconds();
            if (cuda_rwkv7_forward(g, &b, &e)) {
                fprintf(stderr, "bench_gpu: prefill: %s\n", e.msg);
                return 1;
            }
            if (it >= 0) tt[it] = now_seconds() - a;
        }
        const double tp = median(tt, reps), fp = ft * T + fh;
        printf("prefill  T=%d [wkv %s]: %.2f ms = %.0f tok/s; %.2f TFLOP -> %.0f TFLOP/s = %.1f%% of the cuBLAS rate\n", T,
               cfg, tp * 1e3, T / tp, fp / 1e12, fp / tp / 1e12, 100 * fp / tp / 1e12 / peak_tf);
        snprintf(out + strlen(out), sizeof out - strlen(out), "| %s | prefill T=%d | %.2f ms | %.0f tok/s | %.0f TFLOP/s (%.0f%%) |\n",
                 sh, T, tp * 1e3, T / tp, fp / tp / 1e12, 100 * fp / tp / 1e12 / peak_tf);
        if (profile) {
            cuda_rwkv7_profile(g, 1);
            cuda_rwkv7_state_zero(st);
            CudaRwkv7Batch b = {.B = 1, .lens = &T, .tokens = tok, .state = st, .nout = 1, .out_rows = &last, .logits = lg};
            if (cuda_rwkv7_forward(g, &b, &e)) return 1;
            cuda_rwkv7_profile_print(g, stdout);
            cuda_rwkv7_profile(g, 0);
        }
        cuda_rwkv7_state_free(st);
        free(tok), free(lg);
        }
        unsetenv("RWKVLAB_WKV_CFG");

        /* ---- LM-eval-style scoring of a LAMBADA-sized request set */
        if (strstr(only, "score")) {
        const int NREQ = quick ? 500 : 5153;
        CudaLmRequest *req = malloc(NREQ * sizeof *req);
        int *buf = malloc((size_t)NREQ * 144 * sizeof(int));
        long ntok = 0, nscored = 0;
        for (int i = 0; i < NREQ; i++) {
            int nctx = 20 + (int)(gt_uniform(11, i) * 121);
            double u = gt_uniform(12, i);
            int ncont = u < 0.7 ? 1 : u < 0.9 ? 2 : 3;
            req[i].tokens = buf + (size_t)i * 144, req[i].nctx = nctx, req[i].ntok = nctx + ncont;
            for (int t = 0; t < nctx + ncont; t++) buf[(size_t)i * 144 + t] = (int)(gt_uniform(13 + i, t) * d.V);
            ntok += nctx + ncont, nscored += ncont;
        }
        double *lp = malloc(NREQ * sizeof(double));
        int *gr = malloc(NREQ * sizeof(int));
        const long caps[2] = {16384, 65536};
        for (int c = 0; c < 2; c++) {
            int sreps = quick ? 1 : 3;
            for (int it = -1; it < sreps; it++) {
                double a = now_seconds();
                if (cuda_rwkv7_score(g, req, NREQ, caps[c], lp, gr, &e)) {
                    fprintf(stderr, "bench_gpu: score: %s\n", e.msg);
                    return 1;
                }
                if (it >= 0) tt[it] = now_seconds() - a;
            }
            const double ts = median(tt, sreps), fs = ft * (ntok - NREQ) + fh * nscored;
            printf("score    %d requests, %ld tokens (%ld scored), <= %ld tokens per batch: %.3f s = %.0f tok/s; "
                   "%.0f TFLOP/s = %.1f%% of the cuBLAS rate\n", NREQ, ntok, nscored, caps[c], ts, ntok / ts,
                   fs / ts / 1e12, 100 * fs / ts / 1e12 / peak_tf);
            snprintf(out + strlen(out), sizeof out - strlen(out),
                     "| %s | score %d req, %ld tok, batch <= %ld tok | %.3f s | %.0f tok/s | %.0f TFLOP/s (%.0f%%) |\n", sh,
                     NREQ, ntok, caps[c], ts, ntok / ts, fs / ts / 1e12, 100 * fs / ts / 1e12 / peak_tf);
        }
        if (profile) {
            cuda_rwkv7_profile(g, 1);
            if (cuda_rwkv7_score(g, req, NREQ, 65536, lp, gr, &e)) return 1;
            cuda_rwkv7_profile_print(g, stdout);
            cuda_rwkv7_profile(g, 0);
        }
        free(req), free(buf), free(lp), free(gr);
        }

        /* ---- decoding: one token per sequence per step */
        const int Bs[3] = {1, 64, 256};
        for (int bi = 0; bi < 3 && strstr(only, "decode"); bi++) {
            const int B = Bs[bi], steps = 32;
            CudaRwkv7State *ds = cuda_rwkv7_state_create(g, B, &e);
            if (!ds) {
                fprintf(stderr, "bench_gpu: %s\n", e.msg);
                return 1;
            }
            int *lens = malloc(B * sizeof(int)), *dt_ = malloc(B * sizeof(int)), *rows = malloc(B * sizeof(int));
            int *tg = malloc(B * sizeof(int)), *g2 = malloc(B * sizeof(int));
            float *lp2 = malloc(B * sizeof(float));
            for (int b = 0; b < B; b++) lens[b] = 1, rows[b] = b, dt_[b] = b % d.V, tg[b] = (7 * b) % d.V;
            double a = 0;
            for (int s = -2; s < steps; s++) {
                if (s == 0) a = now_seconds();
                CudaRwkv7Batch b = {.B = B, .lens = lens, .tokens = dt_, .state = ds, .nout = B, .out_rows = rows,
                                    .targets = tg, .logprob = lp2, .greedy = g2};
                if (cuda_rwkv7_forward(g, &b, &e)) {
                    fprintf(stderr, "bench_gpu: decode: %s\n", e.msg);
                    return 1;
                }
            }
            const double td = (now_seconds() - a) / steps;
            printf("decode   B=%d: %.2f ms per step = %.0f tok/s (weights %.2f GB per step -> %.0f GB/s)\n", B, td * 1e3,
                   B / td, cuda_rwkv7_weight_bytes(g) / 1e9, cuda_rwkv7_weight_bytes(g) / td / 1e9);
            snprintf(out + strlen(out), sizeof out - strlen(out), "| %s | decode B=%d | %.2f ms/step | %.0f tok/s | %.0f GB/s weights |\n",
                     sh, B, td * 1e3, B / td, cuda_rwkv7_weight_bytes(g) / td / 1e9);
            /* the same steps through cuda_rwkv7_decode: the launch chain replayed from a CUDA graph, the
             * argmax on the device (what `generate` does for greedy decoding) */
            int *tk = malloc(B * sizeof(int)), *am = malloc(B * sizeof(int));
            for (int b = 0; b < B; b++) tk[b] = dt_[b];
            for (int s = -3; s < steps; s++) {
                if (s == 0) a = now_seconds();
                if (cuda_rwkv7_decode(g, ds, tk, am, NULL, &e)) {
                    fprintf(stderr, "bench_gpu: decode: %s\n", e.msg);
                    return 1;
                }
                for (int b = 0; b < B; b++) tk[b] = am[b];
            }
            const double tgph = (now_seconds() - a) / steps;
            printf("decode   B=%d with a CUDA graph (%s): %.3f ms per step = %.0f tok/s (%.0f GB/s weights)\n", B,
                   cuda_rwkv7_decode_used_graph(ds) ? "replayed" : "NOT replayed", tgph * 1e3, B / tgph,
                   cuda_rwkv7_weight_bytes(g) / tgph / 1e9);
            snprintf(out + strlen(out), sizeof out - strlen(out), "| %s | decode B=%d, CUDA graph | %.3f ms/step | %.0f tok/s | %.0f GB/s weights |\n",
                     sh, B, tgph * 1e3, B / tgph, cuda_rwkv7_weight_bytes(g) / tgph / 1e9);
            free(tk), free(am);
            cuda_rwkv7_state_free(ds);
            free(lens), free(dt_), free(rows), free(tg), free(g2), free(lp2);
        }
        size_t fr1;
        CK(cudaMemGetInfo(&fr1, &tot));
        printf("memory   weights %.2f GB, workspace %.2f GB, device in use %.2f GB (of %.1f)\n",
               cuda_rwkv7_weight_bytes(g) / 1e9, cuda_rwkv7_workspace_bytes(g) / 1e9, (tot - fr1) / 1e9, tot / 1e9);
        snprintf(out + strlen(out), sizeof out - strlen(out), "| %s | load (upload) | %.2f s | weights %.2f GB | peak ws %.2f GB |\n", sh,
                 t_up, cuda_rwkv7_weight_bytes(g) / 1e9, cuda_rwkv7_workspace_bytes(g) / 1e9);
        cuda_rwkv7_free(g);
        (void)fr0;
    }
    printf("\n| shape | case | time | throughput | achieved |\n|---|---|---|---|---|\n%s", out);
    return 0;
}
