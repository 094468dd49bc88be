/* blas.c -- OpenBLAS kernel detection (see blas.h). */
#include "blas.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int blas_cpu_isa(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return BLAS_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return BLAS_ISA_AVX2;
    if (__builtin_cpu_supports("avx")) return BLAS_ISA_AVX;
#endif
    return BLAS_ISA_SSE;
}

/* OpenBLAS's x86 core names (driver/others/dynamic.c, 0.3.x) by the widest vector unit their kernels use. */
static const struct {
    const char *name;
    int isa;
} cores[] = {
    {"Katmai", BLAS_ISA_SSE},        {"Coppermine", BLAS_ISA_SSE}, {"Northwood", BLAS_ISA_SSE},
    {"Prescott", BLAS_ISA_SSE},      {"Banias", BLAS_ISA_SSE},     {"Atom", BLAS_ISA_SSE},
    {"Core2", BLAS_ISA_SSE},         {"Penryn", BLAS_ISA_SSE},     {"Dunnington", BLAS_ISA_SSE},
    {"Nehalem", BLAS_ISA_SSE},       {"Athlon", BLAS_ISA_SSE},     {"Opteron", BLAS_ISA_SSE},
    {"Opteron_SSE3", BLAS_ISA_SSE},  {"Barcelona", BLAS_ISA_SSE},  {"Nano", BLAS_ISA_SSE},
    {"Bobcat", BLAS_ISA_SSE},        {"Sandybridge", BLAS_ISA_AVX}, {"Bulldozer", BLAS_ISA_AVX},
    {"Piledriver", BLAS_ISA_AVX},    {"Steamroller", BLAS_ISA_AVX}, {"Excavator", BLAS_ISA_AVX},
    {"Haswell", BLAS_ISA_AVX2},      {"Zen", BLAS_ISA_AVX2},       {"SkylakeX", BLAS_ISA_AVX512},
    {"Cooperlake", BLAS_ISA_AVX512}, {"SapphireRapids", BLAS_ISA_AVX512},
};

int blas_core_isa(const char *core) {
    if (!core) return -1;
    for (size_t i = 0; i < sizeof cores / sizeof cores[0]; i++)
        if (!strcasecmp(core, cores[i].name)) return cores[i].isa;
    return -1;
}

int blas_cpu_intel(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_is("intel");
#else
    return 0;
#endif
}

/* The kernels asked for (see blas.h). Measured on an AMD EPYC (Zen 5, AVX-512): sgemm 2048^3 on 2 threads
 * Prescott 22.6, Haswell 81.8, Zen 64.4 GFLOP/s (the Zen kernels are Haswell's with other blocking), so
 * AVX2 means Haswell on every vendor. */
const char *blas_better_core(const char *core, int cpu_isa, int intel, const char *config, const char *user_setting) {
    if (user_setting || !config || !strstr(config, "DYNAMIC_ARCH")) return NULL;
    int have = blas_core_isa(core);
    if (have < 0 || have >= BLAS_ISA_AVX2 || have >= cpu_isa) return NULL;
    if (cpu_isa >= BLAS_ISA_AVX512 && intel) return "SkylakeX";
    if (cpu_isa >= BLAS_ISA_AVX2) return "Haswell";
    if (cpu_isa >= BLAS_ISA_AVX) return "Sandybridge";
    return NULL;
}

/* C = A B for a few shapes that exercise the edge and main kernels, against a double loop. */
int blas_selfcheck(void) {
    static const int shapes[][3] = {{64, 64, 64}, {67, 33, 129}, {5, 300, 17}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N), *C = malloc(sizeof(float) * M * N);
        if (!A || !B || !C) return free(A), free(B), free(C), -1;
        unsigned x = 2463534242u;
        for (int i = 0; i < M * K; i++) x ^= x << 13, x ^= x >> 17, x ^= x << 5, A[i] = (float)(x % 2001) / 1000 - 1;
        for (int i = 0; i < K * N; i++) x ^= x << 13, x ^= x >> 17, x ^= x << 5, B[i] = (float)(x % 2001) / 1000 - 1;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, A, K, B, N, 0, C, N);
        int bad = 0;
        for (int i = 0; i < M && !bad; i++)
            for (int j = 0; j < N && !bad; j++) {
                double ref = 0, mag = 0;
                for (int k = 0; k < K; k++) ref += (double)A[i * K + k] * B[k * N + j], mag += fabs((double)A[i * K + k] * B[k * N + j]);
                if (!(fabs(C[i * N + j] - ref) <= 1e-5 * mag + 1e-6)) bad = 1;
            }
        free(A), free(B), free(C);
        if (bad) return -1;
    }
    return 0;
}

const char *blas_core_name(void) { return openblas_get_corename(); }

const char *blas_core_origin(const char **from) {
    static char prev[64];
    const char *note = getenv(BLAS_NOTE_ENV);
    if (from) *from = NULL;
    if (note) {
        const char *arrow = strstr(note, "->");
        const char *want = getenv("OPENBLAS_CORETYPE");
        if (arrow && want && !strcasecmp(arrow + 2, want)) {
            snprintf(prev, sizeof prev, "%.*s", (int)(arrow - note) < 63 ? (int)(arrow - note) : 63, note);
            if (from) *from = prev;
            return "rwkvlab";
        }
    }
    return getenv("OPENBLAS_CORETYPE") ? "user" : "library";
}

void blas_describe(char *out, size_t n) {
    static const char *isa_names[] = {"SSE", "AVX", "AVX2", "AVX-512"};
    const char *from, *origin = blas_core_origin(&from);
    char *cfg = openblas_get_config();
    if (!strcmp(origin, "rwkvlab"))
        snprintf(out, n, "%s; core %s (set by rwkvlab: the library chose %s on an %s CPU; set OPENBLAS_CORETYPE to "
                 "choose yourself)", cfg, blas_core_name(), from, isa_names[blas_cpu_isa()]);
    else if (!strcmp(origin, "user"))
        snprintf(out, n, "%s; core %s (OPENBLAS_CORETYPE=%s, the user's setting)", cfg, blas_core_name(),
                 getenv("OPENBLAS_CORETYPE"));
    else
        snprintf(out, n, "%s; core %s (the library's choice; CPU level %s)", cfg, blas_core_name(),
                 isa_names[blas_cpu_isa()]);
}
