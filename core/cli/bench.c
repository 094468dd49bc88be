/* bench.c -- `rwkvlab bench` (see bench.h): sgemm baseline, RWKV-7 training throughput with an analytic
 * FLOP count, and max RSS vs T from one child process per T.
 *
 * Fairness rule: the sgemm baseline and the trainer run in the same process with the same OpenMP and
 * OpenBLAS thread settings (printed in the header). The RSS sweep runs first, before this process has
 * touched OpenMP or allocated anything large, so each forked child starts from a small baseline.
 *
 * FLOPs per token (2 per multiply-add; elementwise ops, norms and the softmax are not counted):
 *   matmuls  fwd = 2 * [L (4 C^2 + 2 C (Dw + Da + Dg) + 8 C^2) + (L-1) 2 C Dv + C V],  train = 3 x fwd
 *   WKV      per state element (H N N = C N per token and layer): fwd 5 MACs (sa, S w, sa b, v k, y),
 *            bwd 10 MACs (G += dy r, dr, sa, dw, db, dk, dsa, dv, dq, G w + dsa q),
 *            chunk recomputation 4 MACs (the state update again, no read-out)
 * Dimension legend: common.h.
 */
#include "bench.h"

#include <cblas.h>
#include <gsl/gsl_rng.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "blas.h"
#include "common.h"
#include "optim.h"
#include "config.h"
#include "model.h"
#include "opts.h"
#include "rwkv7.h"
#include "step.h"
#include "lmeval_data.h"
#include "tokenizer.h"

typedef struct {
    const char *name;
    Rwkv7Dims d;
    int B, T, K;
    const ModelArch *arch; /* NULL = RWKV-7 with dims d; else dims in adims */
    char adims[512];
    int score_every;       /* 0 or 1: every position counted; P: one in P (position t with t % P == P - 1) */
    int full_head;         /* the head at every row, counted or not (TrainStep.full_head: the baseline) */
} BenchCfg;

typedef struct {
    double mm_att, mm_lora, mm_ffn, mm_head; /* forward matmul flops per token */
    double wkv_fwd, wkv_bwd, wkv_rec;        /* WKV flops per token */
    double mm_fwd, train;                    /* forward matmul total; training total */
} BenchFlops;

typedef struct {
    double fwd_ms, bwd_ms, opt_ms, step_ms, tok_s;
    size_t act_bytes;
} BenchTrain;

/* ---- machine description ------------------------------------------------------------------------ */
static void bench_cpu_model(char *out, size_t n) {
    snprintf(out, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            char *p = strchr(line, ':');
            if (p) {
                p++;
                while (*p == ' ' || *p == '\t') p++;
                p[strcspn(p, "\n")] = 0;
                snprintf(out, n, "%s", p);
            }
            break;
        }
    }
    fclose(f);
}

/* 1-minute load average: other processes on these cores make every number below a lower bound. */
static double bench_loadavg(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

static int bench_omp_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* ---- sgemm baseline ------------------------------------------------------------------------------- */
/* C(M,N) = A(M,K) B(K,N), row-major, repeated for at least min_s seconds after one warm-up call. */
static double bench_sgemm(int M, int N, int K, double min_s) {
    float *A = xmalloc((size_t)M * K * sizeof(float)), *Bm = xmalloc((size_t)K * N * sizeof(float));
    float *Cm = xmalloc((size_t)M * N * sizeof(float));
    uint32_t s = 12345;
    for (size_t i = 0; i < (size_t)M * K; i++) s = s * 1664525u + 1013904223u, A[i] = (float)(s >> 8) / (1 << 24) - 0.5f;
    for (size_t i = 0; i < (size_t)K * N; i++) s = s * 1664525u + 1013904223u, Bm[i] = (float)(s >> 8) / (1 << 24) - 0.5f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, A, K, Bm, N, 0, Cm, N);
    long reps = 0;
    double t0 = now_seconds(), el;
    do {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, A, K, Bm, N, 0, Cm, N);
        reps++;
        el = now_seconds() - t0;
    } while (el < min_s || reps < 3);
    free(A), free(Bm), free(Cm);
    return 2.0 * M * N * K * reps / el * 1e-9;
}

/* ---- FLOP count ----------------------------------------------------------------------------------- */
static BenchFlops bench_flops(const Rwkv7Dims *d0) {
    Rwkv7Dims d = *d0;
    d.H = d.C / d.N, d.F = 4 * d.C;
    rwkv7_default_ranks(&d);
    const double C = d.C, L = d.L, V = d.V;
    BenchFlops f = {0};
    f.mm_att = 2 * L * 4 * C * C;
    f.mm_lora = 2 * (L * 2 * C * (d.Dw + d.Da + d.Dg) + (L - 1) * 2 * C * d.Dv);
    f.mm_ffn = 2 * L * 2 * C * d.F;
    f.mm_head = 2 * C * V;
    f.mm_fwd = f.mm_att + f.mm_lora + f.mm_ffn + f.mm_head;
    const double state = L * C * d.N; /* state elements touched per token, all layers */
    f.wkv_fwd = 2 * 5 * state;
    f.wkv_bwd = 2 * 10 * state;
    f.wkv_rec = 2 * 4 * state;
    f.train = 3 * f.mm_fwd + f.wkv_fwd + f.wkv_bwd + f.wkv_rec;
    return f;
}

/* ---- training steps --------------------------------------------------------------------------------- */
typedef struct {
    Model *m;
    TrainStep ts;  /* the trainer's step, with the default train.shards */
    AdamW opt;
    int *tokens, *targets;
    unsigned char *mask;
} BenchRun;

static void bench_run_init(BenchRun *r, const BenchCfg *c, int steps) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 1234);
    r->m = c->arch ? model_create(c->arch, c->adims, 1) : model_create(&model_rwkv7, &c->d, 1);
    model_init(r->m, rng, NULL);
    size_t R = (size_t)c->B * c->T;
    r->tokens = xmalloc(R * sizeof(int)), r->targets = xmalloc(R * sizeof(int)), r->mask = xmalloc(R);
    for (size_t i = 0; i < R; i++) {
        r->tokens[i] = (int)gsl_rng_uniform_int(rng, r->m->V);
        r->targets[i] = (int)gsl_rng_uniform_int(rng, r->m->V);
        r->mask[i] = c->score_every > 1 ? (int)(i % c->T) % c->score_every == c->score_every - 1 : 1;
    }
    gsl_rng_free(rng);
    AdamWConfig ac = {.lr = 1e-3, .lr_min = 1e-3, .warmup = 0, .steps = steps, .cosine = 0, .beta1 = 0.9,
                      .beta2 = 0.99, .eps = 1e-8, .weight_decay = 0.1, .grad_clip = 1.0};
    adamw_init(&r->opt, &ac, r->m->nparams);
    RunConfig dc;
    config_defaults(&dc);
    train_step_init(&r->ts, r->m, dc.train.shards);
    r->ts.full_head = c->full_head;
}

static void bench_run_free(BenchRun *r) {
    adamw_free(&r->opt);
    train_step_free(&r->ts);
    model_free(r->m);
    free(r->tokens), free(r->targets), free(r->mask);
}

/* One step of the trainer (train_step_grads, then AdamW); t[0..2] += seconds of forward(+loss) (shard 0's,
 * step.h), the rest of the gradient step (backward, the other shards' excess, the shard sum), optimizer. */
static void bench_step(BenchRun *r, const BenchCfg *c, double t[3]) {
    long nc, cnt;
    double loss = train_step_grads(&r->ts, r->tokens, r->targets, r->mask, c->B, c->T, c->K, &nc, &cnt);
    double t2 = now_seconds();
    double gn;
    adamw_step(&r->opt, r->m->params, r->m->grads, r->m->tensors, r->m->ntensors, &gn, NULL);
    double t3 = now_seconds();
    CHECK(loss == loss && gn == gn, "bench: non-finite loss %g or grad norm %g", loss, gn);
    t[0] += r->ts.fwd_s, t[1] += r->ts.step_s - r->ts.fwd_s, t[2] += t3 - t2;
}

/* A warm-up step, then `steps` timed steps. */
static BenchTrain bench_train(const BenchCfg *c, int steps) {
    BenchRun r;
    bench_run_init(&r, c, steps + 1);
    double t[3] = {0, 0, 0};
    bench_step(&r, c, t);
    t[0] = t[1] = t[2] = 0;
    for (int s = 0; s < steps; s++) bench_step(&r, c, t);
    BenchTrain o;
    o.fwd_ms = 1e3 * t[0] / steps, o.bwd_ms = 1e3 * t[1] / steps, o.opt_ms = 1e3 * t[2] / steps;
    o.step_ms = o.fwd_ms + o.bwd_ms + o.opt_ms;
    o.tok_s = (double)c->B * c->T / (o.step_ms * 1e-3);
    o.act_bytes = train_step_act_bytes(&r.ts);
    bench_run_free(&r);
    return o;
}

/* ---- max RSS of a child that trains one step ------------------------------------------------------ */
/* Returns ru_maxrss in KiB; T = 0 measures an idle child (the baseline inherited from this process).
 * *act_bytes receives the child's activation bytes (through a pipe). */
static long bench_child_rss(const BenchCfg *c, size_t *act_bytes) {
    int fd[2];
    CHECK(pipe(fd) == 0, "bench: pipe() failed");
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0, "bench: fork() failed");
    if (pid == 0) {
        close(fd[0]);
        size_t ab = 0;
        if (c->T > 0) {
            BenchRun r;
            bench_run_init(&r, c, 1);
            double t[3] = {0, 0, 0};
            bench_step(&r, c, t);
            ab = train_step_act_bytes(&r.ts);
        }
        ssize_t w = write(fd[1], &ab, sizeof ab);
        _exit(w == (ssize_t)sizeof ab ? 0 : 1);
    }
    close(fd[1]);
    size_t ab = 0;
    ssize_t got = read(fd[0], &ab, sizeof ab);
    close(fd[0]);
    int status;
    struct rusage ru;
    CHECK(wait4(pid, &status, 0, &ru) == pid, "bench: wait4() failed");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0 && got == (ssize_t)sizeof ab,
          "bench: RSS child for T=%d failed (status %d)", c->T, status);
    *act_bytes = ab;
    return ru.ru_maxrss;
}

/* ---- the PyTorch eager peer (tests/bench/torch_rwkv7.py) ------------------------------------------ */
/* The script beside the source tree of this binary (build/rwkvlab -> tests/bench/), or $RWKVLAB_PEER. */
static int bench_peer_path(char *out, size_t n) {
    const char *env = getenv("RWKVLAB_PEER");
    if (env) return snprintf(out, n, "%s", env), access(out, R_OK) == 0 ? 0 : -1;
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) return -1;
    exe[len] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return -1;
    *slash = 0;
    snprintf(out, n, "%s/../tests/bench/torch_rwkv7.py", exe);
    return access(out, R_OK) == 0 ? 0 : -1;
}

/* Runs the peer for config c with `threads` threads; its tokens/s, or 0 with *why filled. The peer gets the
 * user's environment: the thread-wait settings rwkvlab made for itself (main.c) are removed for it. */
static double bench_peer(const BenchCfg *c, int threads, int steps, char *why, size_t nwhy) {
    char script[4200], cmd[8600];
    if (bench_peer_path(script, sizeof script)) return snprintf(why, nwhy, "tests/bench/torch_rwkv7.py not found (set RWKVLAB_PEER)"), 0;
    const char *unset = getenv("RWKVLAB_WAIT_SET") ? "env -u OMP_WAIT_POLICY -u OPENBLAS_THREAD_TIMEOUT " : "";
    if (system("python3 -c 'import torch' >/dev/null 2>&1") != 0)
        return snprintf(why, nwhy, "skipped: python3 cannot import torch (pip install torch to compare)"), 0;
    Rwkv7Dims d = c->d;
    d.H = d.C / d.N, d.F = 4 * d.C;
    rwkv7_default_ranks(&d);
    snprintf(cmd, sizeof cmd,
             "%sOMP_NUM_THREADS=%d python3 '%s' --layers %d --d-model %d --head-size %d --batch %d --T %d --vocab %d "
             "--ranks %d,%d,%d,%d --threads %d --steps %d 2>&1",
             unset, threads, script, d.L, d.C, d.N, c->B, c->T, d.V, d.Dw, d.Da, d.Dv, d.Dg, threads, steps);
    fflush(stdout);
    FILE *p = popen(cmd, "r");
    if (!p) return snprintf(why, nwhy, "cannot run python3"), 0;
    char line[4096], last[4096] = "";
    double tok = 0;
    while (fgets(line, sizeof line, p)) {
        snprintf(last, sizeof last, "%s", line);
        const char *k = strstr(line, "\"tokens_per_s\": ");
        if (k) tok = strtod(k + 16, NULL);
    }
    int st = pclose(p);
    if (st != 0 || !(tok > 0)) {
        last[strcspn(last, "\n")] = 0;
        snprintf(why, nwhy, "the peer failed (status %d): %.200s", st, last);
        return 0;
    }
    return tok;
}

static void bench_set_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    openblas_set_num_threads(n);
}

/* ---- driver --------------------------------------------------------------------------------------- */
static void bench_usage(void) {
    printf("usage: rwkvlab bench [--quick] [--steps N] [--blas-threads N] [--no-peer]\n"
           "  --quick           small sizes (smoke test, a few seconds)\n"
           "  --steps N         timed training steps per config after one warm-up (default 3)\n"
           "  --blas-threads N  openblas_set_num_threads(N) before measuring (default: OPENBLAS_NUM_THREADS)\n"
           "  --no-peer         do not time the PyTorch eager peer (tests/bench/torch_rwkv7.py; skipped anyway\n"
           "                    when python3 cannot import torch)\n"
           "OpenMP threads come from OMP_NUM_THREADS. The same settings serve the sgemm baseline and the trainer.\n");
}

int bench_main(int argc, char **argv) {
    int quick = 0, steps = 3, blas_threads = 0, no_peer = 0;
    OptSpec spec[] = {
        O_FLAG("--quick", &quick),
        O_INT("--steps", &steps, 1, 100000),
        O_INT("--blas-threads", &blas_threads, 1, 4096),
        O_FLAG("--no-peer", &no_peer),
    };
    OptParser p = {.cmd = "bench", .specs = spec, .nspecs = OPTS_N(spec)};
    Err perr = {{0}};
    int prc = opts_parse(&p, argc, argv, &perr);
    if (prc == OPTS_HELP) return bench_usage(), 0;
    if (prc) {
        fprintf(stderr, "rwkvlab bench: %s\n", perr.msg);
        bench_usage();
        return 1;
    }
    CHECK(steps >= 1, "bench: --steps must be >= 1 (got %d)", steps);
    if (blas_threads > 0) openblas_set_num_threads(blas_threads);

    const int B = quick ? 8 : 64;
    BenchCfg cfgs[2] = {
        {"L2 C128 N32", {.V = 120, .C = 128, .L = 2, .N = 32, .has_ln0 = 1}, B, 128, 16, NULL, {0}, 0, 0},
        {"L4 C256 N64", {.V = 120, .C = 256, .L = 4, .N = 64, .has_ln0 = 1}, quick ? 4 : 32, 128, 16, NULL, {0}, 0, 0},
    };
    const int rss_T[4] = {64, 128, 256, 512};

    char cpu[256], date[64];
    bench_cpu_model(cpu, sizeof cpu);
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M %Z", localtime(&now));
    const char *wp = getenv("OMP_WAIT_POLICY");
    printf("# rwkvlab bench%s\n\n", quick ? " (--quick)" : "");
    printf("- machine: %s, %ld online CPUs; date %s; build %s, real = %s\n", cpu, sysconf(_SC_NPROCESSORS_ONLN),
           date, RWKVLAB_VERSION, REAL_NAME);
    char blas[512];
    blas_describe(blas, sizeof blas);
    printf("- threads: OpenMP %d (OMP_WAIT_POLICY=%s), OpenBLAS %d\n- BLAS: %s\n", bench_omp_threads(),
           wp ? wp : "unset", openblas_get_num_threads(), blas);
    double load0 = bench_loadavg();
    printf("- load average at start: %.2f%s\n", load0,
           load0 > 0.5 ? " (other processes share these CPUs: the rates below are lower bounds)" : "");
    RunConfig dflt;
    config_defaults(&dflt);
    printf("- training: the trainer's step (train.shards = %d batch shards, core/train/step.h), random tokens, V=120, "
           "K=16 (WKV checkpoint interval), AdamW; 1 warm-up step + %d timed\n\n", dflt.train.shards, steps);

    /* 1. RSS sweep first: this process is still small, and OpenMP has not started its threads. */
    BenchCfg rc = cfgs[0];
    rc.T = 0;
    size_t ab0;
    long base = bench_child_rss(&rc, &ab0);
    long rss[4];
    size_t act[4];
    for (int i = 0; i < 4; i++) {
        rc.T = rss_T[i];
        rss[i] = bench_child_rss(&rc, &act[i]);
    }

    /* 2. sgemm baseline, with the trainer's threads; the square size also with one BLAS thread per CPU
     * when the trainer uses fewer, so "peak" is the machine's, not a flattering single-core rate. */
    const double min_s = quick ? 0.2 : 1.0;
    const int sq = quick ? 1024 : 2048;
    const int bt = openblas_get_num_threads(), ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    double sq_rate = bench_sgemm(sq, sq, sq, min_s), sq_all = 0;
    if (bt < ncpu) {
        openblas_set_num_threads(ncpu);
        sq_all = bench_sgemm(sq, sq, sq, min_s);
        openblas_set_num_threads(bt);
    }
    double peak = sq_rate > sq_all ? sq_rate : sq_all;
    double shape_rate[2][2];
    for (int c = 0; c < 2; c++) {
        int M = cfgs[c].B * cfgs[c].T, C = cfgs[c].d.C;
        shape_rate[c][0] = bench_sgemm(M, C, C, min_s);
        shape_rate[c][1] = bench_sgemm(M, 4 * C, C, min_s);
    }
    printf("## sgemm (cblas_sgemm, row-major NN, same threads as the trainer)\n\n");
    printf("| M | N | K | GFLOP/s | note |\n|---:|---:|---:|---:|---|\n");
    printf("| %d | %d | %d | %.1f | square, %d BLAS thread(s) (trainer setting)%s |\n", sq, sq, sq, sq_rate, bt,
           sq_rate >= sq_all ? ": **peak**" : "");
    if (bt < ncpu)
        printf("| %d | %d | %d | %.1f | square, %d BLAS threads (one per CPU)%s |\n", sq, sq, sq, sq_all, ncpu,
               sq_all > sq_rate ? ": **peak**" : "");
    for (int c = 0; c < 2; c++) {
        int M = cfgs[c].B * cfgs[c].T, C = cfgs[c].d.C;
        printf("| %d | %d | %d | %.1f | %s: M = B*T, N = C |\n", M, C, C, shape_rate[c][0], cfgs[c].name);
        printf("| %d | %d | %d | %.1f | %s: M = B*T, N = 4C (FFN) |\n", M, 4 * C, C, shape_rate[c][1],
               cfgs[c].name);
    }

    /* 3. FLOPs per token */
    BenchFlops fl[2];
    printf("\n## model FLOPs per token (2 per multiply-add)\n\n");
    printf("| part | %s fwd | %s train | %s fwd | %s train |\n|---|---:|---:|---:|---:|\n", cfgs[0].name,
           cfgs[0].name, cfgs[1].name, cfgs[1].name);
    for (int c = 0; c < 2; c++) fl[c] = bench_flops(&cfgs[c].d);
#define ROW(label, f, k)                                                                                     \
    printf("| %s | %.3f M | %.3f M | %.3f M | %.3f M |\n", label, fl[0].f * 1e-6, k * fl[0].f * 1e-6,        \
           fl[1].f * 1e-6, k * fl[1].f * 1e-6)
    ROW("matmul r,k,v,o", mm_att, 3);
    ROW("matmul LoRA w,a,v,g", mm_lora, 3);
    ROW("matmul FFN key,value", mm_ffn, 3);
    ROW("matmul head", mm_head, 3);
    printf("| WKV forward | %.3f M | %.3f M | %.3f M | %.3f M |\n", fl[0].wkv_fwd * 1e-6, fl[0].wkv_fwd * 1e-6,
           fl[1].wkv_fwd * 1e-6, fl[1].wkv_fwd * 1e-6);
    printf("| WKV backward | - | %.3f M | - | %.3f M |\n", fl[0].wkv_bwd * 1e-6, fl[1].wkv_bwd * 1e-6);
    printf("| WKV chunk recomputation | - | %.3f M | - | %.3f M |\n", fl[0].wkv_rec * 1e-6, fl[1].wkv_rec * 1e-6);
    printf("| **total** | %.3f M | **%.3f M** | %.3f M | **%.3f M** |\n", (fl[0].mm_fwd + fl[0].wkv_fwd) * 1e-6,
           fl[0].train * 1e-6, (fl[1].mm_fwd + fl[1].wkv_fwd) * 1e-6, fl[1].train * 1e-6);
#undef ROW

    /* 4. training throughput */
    printf("\n## training throughput (forward + loss + backward + AdamW)\n\n");
    printf("| config | B | T | tokens/s | ms/step | fwd ms | bwd ms | opt ms | GFLOP/s | of sgemm peak | of sgemm "
           "at M=B*T,N=C |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int c = 0; c < 2; c++) {
        BenchTrain r = bench_train(&cfgs[c], steps);
        double gf = fl[c].train * r.tok_s * 1e-9;
        printf("| %s | %d | %d | %.0f | %.1f | %.1f | %.1f | %.1f | %.1f | **%.1f%%** | %.1f%% |\n", cfgs[c].name,
               cfgs[c].B, cfgs[c].T, r.tok_s, r.step_ms, r.fwd_ms, r.bwd_ms, r.opt_ms, gf, 100 * gf / peak,
               100 * gf / shape_rate[c][0]);
        fflush(stdout);
    }
    printf("\nfwd ms: shard 0's forward and loss (core/train/step.h); bwd ms: the rest of the gradient step. The last "
           "column compares with one product over the whole batch at the trainer's BLAS threads; with 2 threads the "
           "shards run 1-thread products of half the rows side by side, which can beat it (> 100%%).\n");

    /* 4a. the first size at 1 thread and at the trainer's threads, next to the PyTorch eager peer */
    {
        const int nt = bench_omp_threads(), bt0 = openblas_get_num_threads();
        const int tl[2] = {1, nt};
        printf("\n## %s, B=%d, T=%d at 1 and %d thread(s), and the PyTorch eager peer (same sizes, threads, "
               "random tokens, AdamW)\n\n", cfgs[0].name, cfgs[0].B, cfgs[0].T, nt);
        printf("| threads | rwkvlab tokens/s | of sgemm at these threads | PyTorch eager tokens/s | rwkvlab / PyTorch "
               "|\n|---:|---:|---:|---:|---:|\n");
        for (int i = 0; i < (nt > 1 ? 2 : 1); i++) {
            bench_set_threads(tl[i]);
            double sg = bench_sgemm(sq, sq, sq, min_s);
            BenchTrain r = bench_train(&cfgs[0], steps);
            double gf = fl[0].train * r.tok_s * 1e-9;
            char why[300] = "";
            double pt = no_peer ? 0 : bench_peer(&cfgs[0], tl[i], steps < 2 ? steps : 2, why, sizeof why);
            if (no_peer) snprintf(why, sizeof why, "not run (--no-peer)");
            if (pt > 0)
                printf("| %d | %.0f | %.1f%% (%.1f GFLOP/s) | %.0f | **%.2fx** |\n", tl[i], r.tok_s, 100 * gf / sg, sg, pt,
                       r.tok_s / pt);
            else
                printf("| %d | %.0f | %.1f%% (%.1f GFLOP/s) | - | %s |\n", tl[i], r.tok_s, 100 * gf / sg, sg, why);
            fflush(stdout);
        }
        bench_set_threads(nt);
        openblas_set_num_threads(bt0);
    }

    /* 4b. every architecture of the model interface at the first size, with the same data and optimizer */
    printf("\n## every architecture, %s (head size 32), B=%d, T=%d: training throughput\n\n", cfgs[0].name,
           cfgs[0].B, cfgs[0].T);
    printf("| arch | params | tokens/s | ms/step | GFLOP/s | of sgemm peak | vs RWKV-7 |\n"
           "|---|---:|---:|---:|---:|---:|---:|\n");
    double tok_s[16] = {0}, gfl[16] = {0}, msps[16] = {0}, tok_rwkv7 = 0;
    size_t npar[16] = {0};
    char why[16][160] = {{0}};
    for (int a = 0; model_archs[a] && a < 16; a++) {
        BenchCfg ac = cfgs[0];
        ac.arch = model_archs[a];
        RunConfig mc;
        config_defaults(&mc);
        snprintf(mc.model.arch, sizeof mc.model.arch, "%s", ac.arch->name);
        mc.model.layers = ac.d.L, mc.model.d_model = ac.d.C, mc.model.head_size = ac.d.N;
        Err e = {{0}};
        CHECK(ac.arch->dims_size <= sizeof ac.adims, "bench: dims of %s too large", ac.arch->name);
        if (ac.arch->dims_from_config(ac.adims, &mc, ac.d.V, &e)) {
            snprintf(why[a], sizeof why[a], "%s", e.msg);
            continue;
        }
        BenchTrain r = bench_train(&ac, steps);
        Model *m = model_create(ac.arch, ac.adims, 0);
        double mmf = 0, recf = 0;
        ac.arch->fwd_flops_per_token(m, &mmf, &recf);
        /* training: the products three times (forward, two backward products), the recurrence ~3x too */
        tok_s[a] = r.tok_s, msps[a] = r.step_ms, gfl[a] = 3 * (mmf + recf) * r.tok_s * 1e-9, npar[a] = m->nparams;
        if (ac.arch == &model_rwkv7) tok_rwkv7 = r.tok_s;
        model_free(m);
    }
    for (int a = 0; model_archs[a] && a < 16; a++) {
        if (why[a][0]) {
            printf("| %s | - | - | - | - | - | not run: %s |\n", model_archs[a]->name, why[a]);
            continue;
        }
        printf("| %s | %zu | %.0f | %.1f | %.1f | %.1f%% | %.2fx |\n", model_archs[a]->name, npar[a], tok_s[a], msps[a],
               gfl[a], 100 * gfl[a] / peak, tok_rwkv7 > 0 ? tok_s[a] / tok_rwkv7 : 0);
    }
    fflush(stdout);

    /* 4c. sparse scoring, MQAR-shaped (configs/mqar_rwkv7.ini: V = 8192, 4 of 64 positions counted): the head
     * at every row against the trainer's head at the counted rows only, in this invocation */
    {
        BenchCfg mq = {"L2 C64 N64 V8192", {.V = 8192, .C = 64, .L = 2, .N = 64, .has_ln0 = 1}, quick ? 8 : 64, 64, 16,
                       NULL, {0}, 16, 1};
        BenchTrain full = bench_train(&mq, steps);
        mq.full_head = 0;
        BenchTrain rows = bench_train(&mq, steps);
        printf("\n## sparse scoring, MQAR-shaped (%s, B=%d, T=%d, 1 position in 16 counted): training throughput\n\n"
               "| head computed at | tokens/s | ms/step | fwd ms | bwd ms | opt ms |\n|---|---:|---:|---:|---:|---:|\n",
               mq.name, mq.B, mq.T);
        printf("| every position (baseline) | %.0f | %.1f | %.1f | %.1f | %.1f |\n", full.tok_s, full.step_ms, full.fwd_ms,
               full.bwd_ms, full.opt_ms);
        printf("| the counted positions only (the trainer) | %.0f | %.1f | %.1f | %.1f | %.1f |\n", rows.tok_s,
               rows.step_ms, rows.fwd_ms, rows.bwd_ms, rows.opt_ms);
        printf("\ncounted-rows head / every-row head: **%.2fx** tokens/s (same loss and gradients: tests/grad_step.c)\n",
               full.tok_s > 0 ? rows.tok_s / full.tok_s : 0);
        fflush(stdout);
    }

    /* 5. memory vs T */
    printf("\n## peak memory vs T (%s, B=%d, one training step in a child process)\n\n", cfgs[0].name, B);
    printf("| T | max RSS MiB | RSS - idle child MiB | activations MiB | (RSS - idle)/T KiB | activations/T KiB "
           "|\n|---:|---:|---:|---:|---:|---:|\n");
    printf("| idle | %.1f | 0 | 0 | - | - |\n", base / 1024.0);
    for (int i = 0; i < 4; i++)
        printf("| %d | %.1f | %.1f | %.1f | %.1f | %.1f |\n", rss_T[i], rss[i] / 1024.0, (rss[i] - base) / 1024.0,
               act[i] / 1048576.0, (double)(rss[i] - base) / rss_T[i], act[i] / 1024.0 / rss_T[i]);
    double slope = (double)(rss[3] - rss[2]) / (rss_T[3] - rss_T[2]), slope0 = (double)(rss[1] - rss[0]) / (rss_T[1] - rss_T[0]);
    printf("\nRSS slope: %.1f KiB per token of T between T=%d..%d, %.1f KiB between T=%d..%d (linear: equal).\n",
           slope0, rss_T[0], rss_T[1], slope, rss_T[2], rss_T[3]);
    /* 6. CPU scoring throughput of a 0.1B-shaped checkpoint (random weights; speed does not depend on them) */
    {
        Rwkv7Dims sd = {.V = 65536, .C = quick ? 256 : 768, .L = quick ? 2 : 12, .N = 64, .has_ln0 = 1};
        Model *m = model_create(&model_rwkv7, &sd, 0);
        gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
        for (size_t i = 0; i < m->nparams; i++) m->params[i] = (real)(0.02 * (gsl_rng_uniform(rng) - 0.5));
        const int T = 128, reps = quick ? 2 : 4;
        int *tok = xmalloc(T * sizeof(int));
        for (int t = 0; t < T; t++) tok[t] = (int)gsl_rng_uniform_int(rng, sd.V);
        gsl_rng_free(rng);
        BenchFlops sf = bench_flops(m->dims);
        double rate[2];
        for (int mode = 0; mode < 2; mode++) {
            ModelFwd f = {.K = 16, .head_last_only = mode};
            model_forward(m, tok, 1, T, &f); /* warm-up */
            double t0 = now_seconds();
            for (int r = 0; r < reps; r++) model_forward(m, tok, 1, T, &f);
            rate[mode] = (double)reps * T / (now_seconds() - t0);
        }
        double fwd_head = sf.mm_fwd + sf.wkv_fwd, fwd_nohead = fwd_head - sf.mm_head;
        printf("\n## CPU scoring throughput, %s-shaped random checkpoint (L%d C%d N%d V%d, %zu params, fp32)\n\n",
               quick ? "small" : "0.1B", sd.L, sd.C, sd.N, sd.V, m->nparams);
        printf("| mode | tokens/s | GFLOP/s | of sgemm peak |\n|---|---:|---:|---:|\n");
        printf("| logits at every position (`rwkvlab logits`), T=%d | %.0f | %.1f | %.1f%% |\n", T, rate[0],
               fwd_head * rate[0] * 1e-9, 100 * fwd_head * rate[0] * 1e-9 / peak);
        printf("| context pass, head only at the last token (`lmeval`), T=%d | %.0f | %.1f | %.1f%% |\n", T, rate[1],
               (fwd_nohead * rate[1] + sf.mm_head * rate[1] / T) * 1e-9,
               100 * (fwd_nohead * rate[1] + sf.mm_head * rate[1] / T) * 1e-9 / peak);
        free(tok);
        model_free(m);
    }
    /* 7. tokenizer: all of LAMBADA (contexts and targets tokenised separately), when the data is here */
    {
        Err err = {{0}};
        Tokenizer *tok = tokenizer_load("data/rwkv_vocab_v20230424.txt", &err);
        LmTask t;
        if (tok && lmeval_task_load("lambada_openai", "data", &t, &err) == 0) {
            double t0 = now_seconds();
            size_t ntok = 0, bytes = 0;
            for (int i = 0; i < t.ndocs; i++) {
                int *a, *b;
                size_t na, nb;
                if (lmeval_encode_request(tok, t.docs[i].context, t.docs[i].cont[0], LMEVAL_SPLIT_SEPARATE, 0, &a, &na,
                                          &b, &nb, &err) == 0)
                    ntok += na + nb, free(a), free(b);
                bytes += strlen(t.docs[i].context) + strlen(t.docs[i].cont[0]);
            }
            double dt = now_seconds() - t0;
            printf("\n## tokenizer\n\nLAMBADA (%d documents, %zu bytes) tokenised in %.3f s: %zu tokens, %.1f MB/s\n",
                   t.ndocs, bytes, dt, ntok, bytes / dt / 1e6);
            lmeval_task_free(&t);
        } else {
            printf("\n## tokenizer\n\nskipped: %s (run `make data`)\n", err.msg);
        }
        tokenizer_free(tok);
    }
    printf("\nload average at end: %.2f\n", bench_loadavg());
    return 0;
}
