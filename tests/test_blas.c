/* test_blas.c -- the OpenBLAS kernel choice (core/blas.h): which fallbacks are replaced and by what, that
 * the user's OPENBLAS_CORETYPE wins, and that the running kernels pass the self-check. */
#include <criterion/criterion.h>
#include <string.h>

#include "blas.h"
#include "testutil.h"

static const char *DYN = "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64";

Test(blas, core_levels) {
    cr_expect_eq(blas_core_isa("Prescott"), BLAS_ISA_SSE);
    cr_expect_eq(blas_core_isa("nehalem"), BLAS_ISA_SSE, "names compare case-insensitively");
    cr_expect_eq(blas_core_isa("Sandybridge"), BLAS_ISA_AVX);
    cr_expect_eq(blas_core_isa("Haswell"), BLAS_ISA_AVX2);
    cr_expect_eq(blas_core_isa("Zen"), BLAS_ISA_AVX2);
    cr_expect_eq(blas_core_isa("SkylakeX"), BLAS_ISA_AVX512);
    cr_expect_eq(blas_core_isa("ARMV8"), -1, "a core not known here is never replaced");
    cr_expect_eq(blas_core_isa(NULL), -1);
}

Test(blas, fallbacks_are_replaced) {
    /* the Xeon case of issue 12: Prescott kernels on an Intel AVX-512 CPU */
    cr_expect_str_eq(blas_better_core("Prescott", BLAS_ISA_AVX512, 1, DYN, NULL), "SkylakeX");
    cr_expect_str_eq(blas_better_core("Prescott", BLAS_ISA_AVX512, 0, DYN, NULL), "Haswell");
    cr_expect_str_eq(blas_better_core("Nehalem", BLAS_ISA_AVX2, 1, DYN, NULL), "Haswell");
    cr_expect_str_eq(blas_better_core("Sandybridge", BLAS_ISA_AVX2, 0, DYN, NULL), "Haswell");
    cr_expect_str_eq(blas_better_core("Core2", BLAS_ISA_AVX, 1, DYN, NULL), "Sandybridge");
}

Test(blas, kept) {
    cr_expect_null(blas_better_core("Prescott", BLAS_ISA_AVX512, 1, DYN, "Prescott"), "the user's setting wins");
    cr_expect_null(blas_better_core("Prescott", BLAS_ISA_AVX512, 1, "OpenBLAS 0.3.21 Prescott", NULL),
                   "a library built for one core cannot switch");
    cr_expect_null(blas_better_core("Haswell", BLAS_ISA_AVX512, 0, DYN, NULL), "AVX2 kernels are kept");
    cr_expect_null(blas_better_core("SkylakeX", BLAS_ISA_AVX512, 1, DYN, NULL));
    cr_expect_null(blas_better_core("Prescott", BLAS_ISA_SSE, 1, DYN, NULL), "a matching level is kept");
    cr_expect_null(blas_better_core("Sandybridge", BLAS_ISA_AVX, 1, DYN, NULL));
    cr_expect_null(blas_better_core("Mystery", BLAS_ISA_AVX512, 1, DYN, NULL));
}

Test(blas, kernels_in_use_compute_right) {
    cr_expect_eq(blas_selfcheck(), 0, "kernels %s", blas_core_name());
}

Test(blas, cpu_level_matches_cpuinfo) {
    /* procfs files have no size: read the first processor's flags line */
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) cr_skip_test("no /proc/cpuinfo");
    static char line[8192];
    char *info = NULL;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "flags", 5)) {
            line[strcspn(line, "\n")] = ' ';
            info = line;
            break;
        }
    fclose(f);
    if (!info) cr_skip_test("no flags line in /proc/cpuinfo");
    int lvl = blas_cpu_isa();
    int has512 = strstr(info, " avx512f") && strstr(info, " avx512bw") && strstr(info, " avx512vl") &&
                 strstr(info, " avx512dq") && strstr(info, " avx512cd");
    int has2 = strstr(info, " avx2") && strstr(info, " fma");
    cr_expect_eq(lvl >= BLAS_ISA_AVX512, !!has512, "level %d", lvl);
    if (!has512) cr_expect_eq(lvl >= BLAS_ISA_AVX2, !!has2, "level %d", lvl);
}

/* The CLI says which kernels run (bench header) and names a user's OPENBLAS_CORETYPE as theirs. */
Test(blas, cli_names_the_users_choice, .timeout = 120) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "OPENBLAS_CORETYPE=Haswell %s bench --help >/dev/null 2>&1", rwkvlab_bin());
    cr_assert_eq(sh(cmd), 0);
    char dir[64];
    cr_assert_eq(test_mkdtemp(dir, sizeof dir, "blas"), 0);
    snprintf(cmd, sizeof cmd,
             "cd %s && OPENBLAS_CORETYPE=Haswell OMP_NUM_THREADS=1 %s%s bench --quick --steps 1 >out.txt 2>err.txt",
             dir, rwkvlab_bin()[0] == '/' ? "" : "$OLDPWD/", rwkvlab_bin());
    cr_assert_eq(sh(cmd), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    size_t n;
    char *out = test_slurp(path, &n);
    cr_assert_not_null(out);
    cr_expect_not_null(strstr(out, "core Haswell (OPENBLAS_CORETYPE=Haswell, the user's setting)"), "%s", out);
    snprintf(path, sizeof path, "%s/err.txt", dir);
    char *err = test_slurp(path, &n);
    cr_expect(err && !strstr(err, "using OPENBLAS_CORETYPE"), "no change announced: %s", err ? err : "");
    free(out), free(err);
    test_rmtree(dir);
}
