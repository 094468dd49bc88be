/* test_h5log.c -- run.h5 writer: append, rebuild from records (--resume), error paths (existing file,
 * missing directory, a full disk while appending), transition-matrix eigenvalues against closed forms and
 * trace/determinant identities, and trajectory write + read-back (shapes, values, state norms).
 * Files live in a mkdtemp directory under /tmp that is removed after each test.
 */
#include <criterion/criterion.h>

#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hdf5.h>

#include "ckpt.h"
#include "h5log.h"
#include "rwkv7.h"

static char tmpdir[256];

static void setup(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rwkvlab_h5log_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp failed");
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void teardown(void) { nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static void tmp_path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmpdir, name); }

static const H5RunAttrs test_attrs = {
    .config_ini = "[model]\narch = rwkv7\nlayers = 2\n",
    .code_version = "test-0",
    .seed = 1234,
    .arch = "rwkv7",
    .param_count = 98765,
    .state_size = 4096,
    .eig_range = "(-1,1)",
};

/* ---- HDF5 read-back helpers (independent of h5log.c) ----------------------------------------- */

static int ds_dims(hid_t f, const char *name, hsize_t *dims) {
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    cr_assert(ds >= 0, "dataset %s missing", name);
    hid_t sp = H5Dget_space(ds);
    int rank = H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    H5Dclose(ds);
    return rank;
}

static void ds_read(hid_t f, const char *name, hid_t memtype, void *buf) {
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    cr_assert(ds >= 0, "dataset %s missing", name);
    cr_assert(H5Dread(ds, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0, "read %s", name);
    H5Dclose(ds);
}

static hsize_t ds_len(hid_t f, const char *name) {
    hsize_t d[4];
    cr_assert_eq(ds_dims(f, name, d), 1, "%s should be 1-D", name);
    return d[0];
}

static uint64_t rng_state = 88172645463325252ull;
static double urand(void) { /* xorshift64, uniform in [0,1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (rng_state >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- (1) append, resume truncation, continued appends ------------------------------------------ */

static void write_run(const char *path) {
    Err err = {{0}};
    H5Log *h = h5log_create(path, &test_attrs, &err);
    cr_assert_not_null(h, "create: %s", err.msg);
    for (long s = 1; s <= 10; s++) {
        TrainRec t = {s, 1.0 / s, 0.1 * s, 1e-3, 0.5 + s, 1000.0 * s, 0.25 * s, 30 + s};
        cr_assert_eq(h5log_train(h, &t, &err), 0, "%s", err.msg);
        if (s % 5 == 0)
            for (int len = 8; len <= 16; len += 8)
                cr_assert_eq(h5log_eval(h, s, len, 0.01 * s + len, 0.02 * s, &err), 0, "%s", err.msg);
    }
    cr_assert_eq(h5log_flush(h, &err), 0, "%s", err.msg);
    h5log_close(h);
}

Test(h5log, append_and_attributes, .init = setup, .fini = teardown) {
    char path[512];
    tmp_path(path, sizeof path, "run.h5");
    write_run(path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0);
    cr_assert_eq(ds_len(f, "/train/step"), 10);
    cr_assert_eq(ds_len(f, "/train/tokens_per_s"), 10);
    cr_assert_eq(ds_len(f, "/eval/seq_acc"), 4);
    double loss[10];
    int64_t step[10];
    ds_read(f, "/train/loss", H5T_NATIVE_DOUBLE, loss);
    ds_read(f, "/train/step", H5T_NATIVE_INT64, step);
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(step[i], i + 1);
        cr_assert_float_eq(loss[i], 1.0 / (i + 1), 1e-15);
    }
    /* dtypes: step int64, losses float64; chunked + unlimited */
    hid_t ds = H5Dopen2(f, "/train/step", H5P_DEFAULT);
    hid_t ty = H5Dget_type(ds);
    cr_assert(H5Tequal(ty, H5T_STD_I64LE) > 0);
    H5Tclose(ty);
    hid_t sp = H5Dget_space(ds);
    hsize_t cur[1], mx[1];
    H5Sget_simple_extent_dims(sp, cur, mx);
    cr_assert_eq(mx[0], H5S_UNLIMITED);
    H5Sclose(sp);
    H5Dclose(ds);
    ds = H5Dopen2(f, "/eval/token_acc", H5P_DEFAULT);
    ty = H5Dget_type(ds);
    cr_assert(H5Tequal(ty, H5T_IEEE_F64LE) > 0);
    H5Tclose(ty);
    H5Dclose(ds);
    /* root attributes */
    int64_t seed = 0;
    hid_t at = H5Aopen(f, "seed", H5P_DEFAULT);
    cr_assert(at >= 0);
    H5Aread(at, H5T_NATIVE_INT64, &seed);
    H5Aclose(at);
    cr_assert_eq(seed, 1234);
    at = H5Aopen(f, "arch", H5P_DEFAULT);
    cr_assert(at >= 0);
    hid_t st = H5Aget_type(at);
    cr_assert(H5Tis_variable_str(st) > 0);
    char *arch = NULL;
    H5Aread(at, st, &arch);
    cr_assert_str_eq(arch, "rwkv7");
    H5free_memory(arch);
    H5Tclose(st);
    H5Aclose(at);
    for (const char *const *n = (const char *const[]){"config", "code_version", "param_count",
                                                      "state_size", "eig_range", "scalar", NULL};
         *n; n++)
        cr_assert(H5Aexists(f, *n) > 0, "missing root attribute %s", *n);
    H5Fclose(f);
}

/* --resume rebuilds run.h5 from the checkpoint's records: whatever was there (a torn file, garbage,
 * records written after the checkpoint) is replaced by exactly those records, and appends continue. */
Test(h5log, rebuild_replaces_torn_file_and_continues, .init = setup, .fini = teardown) {
    char path[512];
    Err err = {{0}};
    tmp_path(path, sizeof path, "run.h5");
    FILE *fp = fopen(path, "wb"); /* a torn file: an HDF5 signature and then garbage */
    cr_assert_not_null(fp);
    fwrite("\x89HDF\r\n\x1a\n", 1, 8, fp);
    for (int i = 0; i < 3000; i++) fputc((i * 7919) & 0xff, fp);
    fclose(fp);
    RunRecords rec = {0};
    for (long s = 1; s <= 6; s++) {
        TrainRec t = {s, 1.0 / s, 0.1 * s, 1e-3, 0.5 + s, 1000.0 * s, 0.5 * s, 24 + s};
        records_add_train(&rec, &t);
    }
    for (int len = 8; len <= 16; len += 8) {
        EvalRec e = {5, len, 0.05 + len, 0.1};
        records_add_eval(&rec, &e);
    }
    H5Log *h = h5log_rebuild(path, &test_attrs, &rec, &err);
    cr_assert_not_null(h, "rebuild: %s", err.msg);
    for (long s = 7; s <= 10; s++) {
        TrainRec t = {s, 2.0 / s, 0, 0, 0, 0, NAN, 0};
        cr_assert_eq(h5log_train(h, &t, &err), 0, "%s", err.msg);
    }
    cr_assert_eq(h5log_eval(h, 10, 32, 0.5, 0.25, &err), 0, "%s", err.msg);
    cr_assert_eq(h5log_finish(h, &err), 0, "%s", err.msg);
    records_free(&rec);

    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0, "the rebuilt file does not open");
    const char *train[] = {"/train/step", "/train/loss", "/train/acc", "/train/lr", "/train/grad_norm",
                           "/train/tokens_per_s", "/train/wall_s", "/train/length"};
    for (int i = 0; i < 8; i++) cr_assert_eq(ds_len(f, train[i]), 10, "%s", train[i]);
    double wall[10];
    int64_t tlen[10];
    ds_read(f, "/train/wall_s", H5T_NATIVE_DOUBLE, wall);
    ds_read(f, "/train/length", H5T_NATIVE_INT64, tlen);
    cr_assert_float_eq(wall[5], 3.0, 1e-15); /* the records' wall time and length survive the rebuild */
    cr_assert_eq(tlen[5], 30);
    cr_assert(isnan(wall[6]), "an unknown wall time is NaN");
    cr_assert_eq(tlen[6], -1, "an unknown length is -1");
    cr_assert_eq(ds_len(f, "/eval/length"), 3);
    int64_t step[10], len[3];
    double loss[10], tps[10];
    ds_read(f, "/train/step", H5T_NATIVE_INT64, step);
    ds_read(f, "/train/loss", H5T_NATIVE_DOUBLE, loss);
    ds_read(f, "/train/tokens_per_s", H5T_NATIVE_DOUBLE, tps);
    ds_read(f, "/eval/length", H5T_NATIVE_INT64, len);
    for (int i = 0; i < 10; i++) cr_assert_eq(step[i], i + 1);
    cr_assert_float_eq(loss[5], 1.0 / 6, 1e-15); /* from the records */
    cr_assert_float_eq(tps[5], 6000.0, 1e-9);
    cr_assert_float_eq(loss[6], 2.0 / 7, 1e-15); /* appended after the rebuild */
    cr_assert_eq(len[0], 8);
    cr_assert_eq(len[1], 16);
    cr_assert_eq(len[2], 32);
    for (const char *const *n = (const char *const[]){"config", "code_version", "seed", "arch", "param_count",
                                                      "state_size", "eig_range", "scalar", NULL};
         *n; n++)
        cr_assert(H5Aexists(f, *n) > 0, "missing root attribute %s", *n);
    H5Fclose(f);
    /* no temp file is left beside it */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "ls '%s' | grep -c tmp", tmpdir);
    cr_assert_neq(system(tmp), 0, "a temp file was left in %s", tmpdir);
}

/* A full disk at the n-th record append is an error naming the file, not a crash; finish reports. */
Test(h5log, append_failure_is_an_error, .init = setup, .fini = teardown) {
    char path[512];
    Err err = {{0}};
    tmp_path(path, sizeof path, "run.h5");
    setenv("RWKVLAB_FAULT", "h5:3:enospc", 1);
    H5Log *h = h5log_create(path, &test_attrs, &err);
    cr_assert_not_null(h, "%s", err.msg);
    int rc = 0;
    for (long s = 1; s <= 5 && rc == 0; s++) rc = h5log_train(h, &(TrainRec){s, 1, 1, 1, 1, 1, 1, 8}, &err);
    unsetenv("RWKVLAB_FAULT");
    cr_assert_eq(rc, -1, "the injected ENOSPC was not reported");
    cr_assert(strstr(err.msg, path) && strstr(err.msg, "space"), "message: %s", err.msg);
    cr_assert_eq(h5log_finish(h, &err), 0, "%s", err.msg);
}

/* ---- (2) error paths ---------------------------------------------------------------------------- */

Test(h5log, create_refuses_existing_file, .init = setup, .fini = teardown) {
    char path[512];
    Err err = {{0}};
    tmp_path(path, sizeof path, "run.h5");
    write_run(path);
    H5Log *h = h5log_create(path, &test_attrs, &err);
    cr_assert_null(h);
    cr_assert(strstr(err.msg, "already exists") && strstr(err.msg, path), "message: %s", err.msg);
    cr_log_info("%s", err.msg);
    /* the existing file is untouched */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_eq(ds_len(f, "/train/step"), 10);
    H5Fclose(f);
    /* a directory that does not exist: error naming the file and operation, no crash */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/no/such/dir/run.h5", tmpdir);
    err.msg[0] = 0;
    cr_assert_null(h5log_create(bad, &test_attrs, &err));
    cr_assert(strstr(err.msg, bad) && strstr(err.msg, "create"), "message: %s", err.msg);
    cr_log_info("%s", err.msg);
}

Test(h5log, null_log, .init = setup, .fini = teardown) {
    Err err = {{0}};
    /* NULL log is tolerated by close and reported by the writers */
    h5log_close(NULL);
    cr_assert_eq(h5log_train(NULL, &(TrainRec){.step = 1}, &err), -1);
    cr_assert_eq(h5log_flush(NULL, &err), -1);
}

/* ---- (3) transition eigenvalues ----------------------------------------------------------------- */

/* The RWKV-7 transition M = diag(w) - kk (kk*a)^T in the generic form diag(w) + alpha beta^T. */
static int rwkv7_eigs(int N, const float *w, const float *a, const float *kk, double *re, double *im) {
    float alpha[64], beta[64];
    if (N < 0 || N > 64) return -1;
    for (int i = 0; i < N; i++) alpha[i] = -kk[i], beta[i] = kk[i] * a[i];
    return transition_eigenvalues(N, w, alpha, beta, re, im);
}

Test(h5log, eigenvalues_kk_zero_are_w_sorted) {
    enum { N = 6 };
    float w[N] = {0.7f, 0.95f, 0.6f, 0.99f, 0.8f, 0.55f}, a[N], kk[N] = {0};
    for (int i = 0; i < N; i++) a[i] = 0.5f;
    double re[N], im[N];
    cr_assert_eq(rwkv7_eigs(N, w, a, kk, re, im), 0);
    const double want[N] = {0.99, 0.95, 0.8, 0.7, 0.6, 0.55};
    for (int i = 0; i < N; i++) {
        cr_assert(fabs(re[i] - (double)(float)want[i]) < 1e-12, "re[%d] = %g want %g", i, re[i], want[i]);
        cr_assert(fabs(im[i]) < 1e-12);
    }
}

Test(h5log, eigenvalues_rank_one_closed_form) {
    enum { N = 8 };
    const float c = 0.9f, alpha = 0.6f;
    float w[N], a[N], kk[N];
    double nrm = 0;
    for (int i = 0; i < N; i++) {
        w[i] = c;
        a[i] = alpha;
        kk[i] = (float)(urand() - 0.5);
        nrm += (double)kk[i] * kk[i];
    }
    for (int i = 0; i < N; i++) kk[i] = (float)(kk[i] / sqrt(nrm));
    double re[N], im[N], worst = 0;
    cr_assert_eq(rwkv7_eigs(N, w, a, kk, re, im), 0);
    /* M = c I - alpha kk kk^T: eigenvalue c on kk's complement, c - alpha*|kk|^2 along kk */
    for (int i = 0; i < N - 1; i++) worst = fmax(worst, fabs(re[i] - c));
    worst = fmax(worst, fabs(re[N - 1] - (c - alpha)));
    for (int i = 0; i < N; i++) worst = fmax(worst, fabs(im[i]));
    cr_log_info("rank-one closed form: worst |err| %.2e (limit 1e-6, float kk normalisation)", worst);
    cr_assert(worst < 1e-6, "worst error %g", worst);
}

/* determinant by LU with partial pivoting, double precision */
static double det_lu(int n, double *m) {
    double det = 1;
    for (int k = 0; k < n; k++) {
        int p = k;
        for (int i = k + 1; i < n; i++)
            if (fabs(m[i * n + k]) > fabs(m[p * n + k])) p = i;
        if (m[p * n + k] == 0) return 0;
        if (p != k) {
            for (int j = 0; j < n; j++) {
                double t = m[k * n + j];
                m[k * n + j] = m[p * n + j];
                m[p * n + j] = t;
            }
            det = -det;
        }
        det *= m[k * n + k];
        for (int i = k + 1; i < n; i++) {
            double f = m[i * n + k] / m[k * n + k];
            for (int j = k; j < n; j++) m[i * n + j] -= f * m[k * n + j];
        }
    }
    return det;
}

Test(h5log, eigenvalues_trace_and_determinant) {
    enum { N = 16 };
    double worst_tr = 0, worst_det = 0, worst_conj = 0;
    for (int trial = 0; trial < 50; trial++) {
        float w[N], a[N], kk[N];
        for (int i = 0; i < N; i++) {
            w[i] = (float)(0.545 + 0.455 * urand()); /* realistic regime */
            a[i] = (float)urand();
            kk[i] = (float)(2 * urand() - 1);
        }
        if (trial % 2) /* half the trials with an unnormalised, large kk: complex pairs and |l|>1 */
            for (int i = 0; i < N; i++) a[i] = (float)(3 * urand() - 1);
        double m[N * N], tr = 0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++)
                /* the matrix as the solver gets it: alpha = -kk and beta = kk*a rounded to float */
                m[i * N + j] = (i == j ? (double)w[i] : 0) + (double)(-kk[i]) * (double)(kk[j] * a[j]);
        for (int i = 0; i < N; i++) tr += m[i * N + i];
        double det = det_lu(N, m);
        double re[N], im[N];
        cr_assert_eq(rwkv7_eigs(N, w, a, kk, re, im), 0);
        double sum_re = 0, sum_im = 0, pr = 1, pi = 0;
        for (int i = 0; i < N; i++) {
            sum_re += re[i];
            sum_im += im[i];
            double nr = pr * re[i] - pi * im[i], ni = pr * im[i] + pi * re[i];
            pr = nr, pi = ni;
            if (i > 0) /* sorted: descending real part, then descending imaginary part */
                cr_assert(re[i - 1] > re[i] || (re[i - 1] == re[i] && im[i - 1] >= im[i]),
                          "unsorted at %d", i);
        }
        worst_tr = fmax(worst_tr, fabs(sum_re - tr) / (1 + fabs(tr)) + fabs(sum_im));
        worst_det = fmax(worst_det, (fabs(pr - det) + fabs(pi)) / (1e-300 + fabs(det)));
        worst_conj = fmax(worst_conj, fabs(sum_im));
    }
    cr_log_info("trace rel err %.2e (limit 1e-12), det rel err %.2e (limit 1e-8)", worst_tr, worst_det);
    cr_assert(worst_tr < 1e-12, "trace mismatch %g", worst_tr);
    cr_assert(worst_det < 1e-8, "determinant mismatch %g", worst_det);
    cr_assert(worst_conj < 1e-12, "imaginary parts do not cancel: %g", worst_conj);
}

Test(h5log, eigenvalues_reject_bad_input) {
    float w[2] = {0.5f, NAN}, a[2] = {0}, kk[2] = {0};
    double re[2], im[2];
    cr_assert_eq(rwkv7_eigs(2, w, a, kk, re, im), -1);
    cr_assert_eq(rwkv7_eigs(0, w, a, kk, re, im), -1);
    w[1] = 0.25f;
    cr_assert_eq(rwkv7_eigs(1, w, a, kk, re, im), 0);
    cr_assert_float_eq(re[0], 0.5, 1e-15);
}

/* ---- (4) trajectories --------------------------------------------------------------------------- */

Test(h5log, trajectory_roundtrip, .init = setup, .fini = teardown) {
    enum { L = 2, T = 5, H = 2, N = 4, C = H * N };
    static float state[L * T * H * N * N], decay[L * T * C], a[L * T * C], kk[L * T * C];
    int tokens[T], targets[T], pred[T];
    for (size_t i = 0; i < sizeof state / sizeof *state; i++) state[i] = (float)(2 * urand() - 1);
    for (int i = 0; i < L * T * C; i++) {
        decay[i] = (float)(0.545 + 0.455 * urand());
        a[i] = (float)urand();
        kk[i] = (float)(2 * urand() - 1);
    }
    for (int t = 0; t < T; t++) tokens[t] = 10 + t, targets[t] = 20 + t, pred[t] = 30 + t;

    /* an RWKV-7-shaped model head and its trace in the generic form */
    static float alpha[L * T * C], beta[L * T * C];
    for (int i = 0; i < L * T * C; i++) alpha[i] = -kk[i], beta[i] = kk[i] * a[i];
    Model mh = {.arch = &model_rwkv7, .L = L, .H = H, .N = N, .Nv = N, .C = C};
    ModelTrace mt = {.state = state, .w = decay, .alpha = alpha, .beta = beta, .q = {decay, a}};
    char path[512];
    Err err = {{0}};
    tmp_path(path, sizeof path, "run.h5");
    H5Log *h = h5log_create(path, &test_attrs, &err);
    cr_assert_not_null(h, "%s", err.msg);
    /* written twice: the second call replaces the first */
    for (int rep = 0; rep < 2; rep++)
        cr_assert_eq(h5log_trajectory(h, 0, &mh, T, tokens, targets, pred, &mt, &err), 0,
                     "%s", err.msg);
    cr_assert_eq(h5log_trajectory(h, 3, &mh, T, tokens, targets, pred, &mt, &err), 0,
                 "%s", err.msg);
    /* bad shape and non-finite input are errors, not crashes */
    cr_assert_eq(h5log_trajectory(h, 1, &mh, 0, tokens, targets, pred, &mt, &err), -1);
    const float keep = decay[C + 1];
    decay[C + 1] = NAN;
    cr_assert_eq(h5log_trajectory(h, 2, &mh, T, tokens, targets, pred, &mt, &err), -1);
    cr_assert(strstr(err.msg, "t=1") != NULL, "message: %s", err.msg);
    cr_log_info("non-finite input reported as: %s", err.msg);
    decay[C + 1] = keep;
    h5log_close(h);

    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0);
    hsize_t d[4];
    cr_assert_eq(ds_dims(f, "/trajectories/probe0/tokens", d), 1);
    cr_assert_eq(d[0], T);
    int ti[T];
    ds_read(f, "/trajectories/probe0/pred", H5T_NATIVE_INT, ti);
    cr_assert_eq(ti[4], 34);
    ds_read(f, "/trajectories/probe3/targets", H5T_NATIVE_INT, ti);
    cr_assert_eq(ti[0], 20);

    static float st[T * H * N * N], nrm[T * H], ere[T * H * N], eim[T * H * N], dc[T * C];
    double worst_norm = 0;
    for (int l = 0; l < L; l++) {
        char name[128];
        snprintf(name, sizeof name, "/trajectories/probe0/layer%d/state", l);
        cr_assert_eq(ds_dims(f, name, d), 4);
        cr_assert(d[0] == T && d[1] == H && d[2] == N && d[3] == N);
        ds_read(f, name, H5T_NATIVE_FLOAT, st);
        cr_assert_eq(memcmp(st, state + (size_t)l * T * H * N * N, sizeof st), 0, "state layer %d", l);

        hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
        hid_t dcpl = H5Dget_create_plist(ds);
        cr_assert_eq(H5Pget_layout(dcpl), H5D_CHUNKED);
        unsigned flags;
        size_t nelem = 1;
        unsigned cd[1];
        cr_assert_eq(H5Pget_filter2(dcpl, 0, &flags, &nelem, cd, 0, NULL, NULL), H5Z_FILTER_DEFLATE);
        cr_assert_eq(cd[0], 4);
        hid_t ty = H5Dget_type(ds);
        cr_assert(H5Tequal(ty, H5T_IEEE_F32LE) > 0);
        H5Tclose(ty);
        H5Pclose(dcpl);
        H5Dclose(ds);

        snprintf(name, sizeof name, "/trajectories/probe0/layer%d/state_norm", l);
        cr_assert_eq(ds_dims(f, name, d), 2);
        cr_assert(d[0] == T && d[1] == H);
        ds_read(f, name, H5T_NATIVE_FLOAT, nrm);
        for (int t = 0; t < T; t++)
            for (int hh = 0; hh < H; hh++) {
                const float *s = state + (((size_t)l * T + t) * H + hh) * N * N;
                double acc = 0;
                for (int i = 0; i < N * N; i++) acc += (double)s[i] * s[i];
                double rel = fabs(nrm[t * H + hh] - sqrt(acc)) / sqrt(acc);
                worst_norm = fmax(worst_norm, rel);
            }

        snprintf(name, sizeof name, "/trajectories/probe0/layer%d/decay", l);
        cr_assert_eq(ds_dims(f, name, d), 2);
        cr_assert(d[0] == T && d[1] == C);
        ds_read(f, name, H5T_NATIVE_FLOAT, dc);
        cr_assert_eq(memcmp(dc, decay + (size_t)l * T * C, sizeof dc), 0);
        snprintf(name, sizeof name, "/trajectories/probe0/layer%d/a", l);
        ds_read(f, name, H5T_NATIVE_FLOAT, dc);
        cr_assert_eq(memcmp(dc, a + (size_t)l * T * C, sizeof dc), 0);

        snprintf(name, sizeof name, "/trajectories/probe0/layer%d/eig_real", l);
        cr_assert_eq(ds_dims(f, name, d), 3);
        cr_assert(d[0] == T && d[1] == H && d[2] == N);
        ds_read(f, name, H5T_NATIVE_FLOAT, ere);
        snprintf(name, sizeof name, "/trajectories/probe0/layer%d/eig_imag", l);
        ds_read(f, name, H5T_NATIVE_FLOAT, eim);
        for (int t = 0; t < T; t += 2) /* spot-check against the exposed solver */
            for (int hh = 0; hh < H; hh++) {
                size_t off = ((size_t)l * T + t) * C + (size_t)hh * N;
                double re[N], im[N];
                cr_assert_eq(rwkv7_eigs(N, decay + off, a + off, kk + off, re, im), 0);
                for (int i = 0; i < N; i++) {
                    cr_assert_eq(ere[(t * H + hh) * N + i], (float)re[i]);
                    cr_assert_eq(eim[(t * H + hh) * N + i], (float)im[i]);
                }
            }
    }
    cr_log_info("state_norm worst rel err %.2e (limit 1e-6)", worst_norm);
    cr_assert(worst_norm < 1e-6);
    cr_assert(H5Lexists(f, "/trajectories/probe2", H5P_DEFAULT) <= 0,
              "a failed h5log_trajectory must not leave a partial probe group");
    H5Fclose(f);
}

/* ---- (5) a file that explains itself ------------------------------------------------------------ */

static char *attr_str(hid_t obj, const char *name) { /* NULL when absent or not a string */
    if (H5Aexists(obj, name) <= 0) return NULL;
    hid_t at = H5Aopen(obj, name, H5P_DEFAULT), ty = H5Aget_type(at), mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5T_CSET_UTF8);
    char *v = NULL, *out = NULL;
    if (H5Tget_class(ty) == H5T_STRING && H5Aread(at, mt, &v) >= 0 && v) {
        out = strdup(v);
        H5free_memory(v);
    }
    H5Tclose(mt), H5Tclose(ty), H5Aclose(at);
    return out;
}

typedef struct {
    int datasets, groups;
    char bad[512];
} Visit;

static herr_t visit_cb(hid_t obj, const char *name, const H5O_info_t *info, void *data) {
    Visit *v = data;
    if (v->bad[0]) return 0;
    const char *need_ds[] = {"meaning", "units", "shape"}, *need_g[] = {"meaning"};
    int isds = info->type == H5O_TYPE_DATASET;
    if (!isds && info->type != H5O_TYPE_GROUP) return 0;
    hid_t o = H5Oopen(obj, name, H5P_DEFAULT);
    for (int i = 0; i < (isds ? 3 : 1); i++) {
        char *s = attr_str(o, isds ? need_ds[i] : need_g[i]);
        if (!s || !s[0]) snprintf(v->bad, sizeof v->bad, "%s '%s' has no '%s' attribute", isds ? "dataset" : "group",
                                  name, isds ? need_ds[i] : need_g[i]);
        free(s);
    }
    H5Oclose(o);
    isds ? v->datasets++ : v->groups++;
    return 0;
}

Test(h5log, every_dataset_and_group_is_described, .init = setup, .fini = teardown) {
    enum { L = 1, T = 3, H = 2, N = 2, C = H * N };
    static float state[L * T * H * N * N], w[L * T * C], alpha[L * T * C], beta[L * T * C], a[L * T * C];
    for (int i = 0; i < L * T * C; i++) w[i] = 0.9f, alpha[i] = -0.5f, beta[i] = 0.25f, a[i] = 0.5f;
    int tok[T] = {1, 2, 3};
    Model mh = {.arch = &model_rwkv7, .L = L, .H = H, .N = N, .Nv = N, .C = C};
    ModelTrace mt = {.state = state, .w = w, .alpha = alpha, .beta = beta, .q = {w, a}};
    char path[512];
    Err err = {{0}};
    tmp_path(path, sizeof path, "run.h5");
    H5Log *h = h5log_create(path, &test_attrs, &err);
    cr_assert_not_null(h, "%s", err.msg);
    cr_assert_eq(h5log_train(h, &(TrainRec){1, 2.0, 0.5, 1e-3, 1.0, 100.0, 0.5, 16}, &err), 0, "%s", err.msg);
    cr_assert_eq(h5log_eval(h, 1, 16, 0.5, 0.25, &err), 0, "%s", err.msg);
    h5log_set_trace_point(h, 7, "interrupted");
    cr_assert_eq(h5log_trajectory(h, 0, &mh, T, tok, tok, tok, &mt, &err), 0, "%s", err.msg);
    cr_assert_eq(h5log_finish(h, &err), 0, "%s", err.msg);

    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0);
    Visit v = {0};
    cr_assert(H5Ovisit(f, H5_INDEX_NAME, H5_ITER_NATIVE, visit_cb, &v) >= 0);
    cr_assert_eq(v.bad[0], 0, "%s", v.bad);
    /* 8 /train + 5 /eval + 3 probe + 6 layer datasets (state, norm, 2 eig, decay, a); root, train, eval,
     * trajectories, probe0, layer0 */
    cr_assert_eq(v.datasets, 8 + 5 + 3 + 6, "datasets visited: %d", v.datasets);
    cr_assert_eq(v.groups, 6, "groups visited: %d", v.groups);
    int64_t ver = 0, st = 0;
    hid_t at = H5Aopen(f, "schema_version", H5P_DEFAULT);
    cr_assert(at >= 0 && H5Aread(at, H5T_NATIVE_INT64, &ver) >= 0);
    H5Aclose(at);
    cr_assert_eq(ver, H5LOG_SCHEMA_VERSION);
    hid_t pg = H5Gopen2(f, "/trajectories/probe0", H5P_DEFAULT);
    at = H5Aopen(pg, "step", H5P_DEFAULT);
    cr_assert(at >= 0 && H5Aread(at, H5T_NATIVE_INT64, &st) >= 0);
    H5Aclose(at);
    cr_assert_eq(st, 7);
    char *rs = attr_str(pg, "run_status");
    cr_assert_str_eq(rs ? rs : "(none)", "interrupted");
    free(rs);
    hid_t ds = H5Dopen2(f, "/train/loss", H5P_DEFAULT);
    char *u = attr_str(ds, "units");
    cr_assert_str_eq(u ? u : "(none)", "nats per scored token");
    free(u);
    H5Dclose(ds);
    H5Gclose(pg);
    H5Fclose(f);
}

/* records.bin of format version 1 (before wall_s and length) is still read: those two are unknown. */
Test(h5log, records_version1_still_read, .init = setup, .fini = teardown) {
    char path[512];
    tmp_path(path, sizeof path, "records.bin");
    FILE *fp = fopen(path, "wb");
    cr_assert_not_null(fp);
    const char magic[8] = {'R', 'W', 'K', 'V', 'R', 'E', 'C', 1};
    uint32_t ver = 1, zero = 0;
    int64_t step = 4, n = 2, es = 4, el = 16;
    int32_t status = 0;
    double last = 0.75, f[5] = {1.5, 0.25, 1e-3, 2.0, 500.0}, ev[2] = {0.5, 0.125};
    fwrite(magic, 1, 8, fp), fwrite(&ver, 4, 1, fp), fwrite(&zero, 4, 1, fp);
    fwrite(&step, 8, 1, fp), fwrite(&status, 4, 1, fp), fwrite(&last, 8, 1, fp), fwrite(&n, 8, 1, fp);
    for (int64_t s = 2; s <= 4; s += 2) fwrite(&s, 8, 1, fp), fwrite(f, 8, 5, fp);
    n = 1;
    fwrite(&n, 8, 1, fp), fwrite(&es, 8, 1, fp), fwrite(&el, 8, 1, fp), fwrite(ev, 8, 2, fp);
    fclose(fp);
    RunState st = {0};
    Err err = {{0}};
    cr_assert_eq(ckpt_load_state(path, &st, &err), 0, "%s", err.msg);
    cr_assert_eq(st.rec.ntrain, 2);
    cr_assert_eq(st.rec.train[1].step, 4);
    cr_assert_float_eq(st.rec.train[1].tokens_per_s, 500.0, 1e-12);
    cr_assert(isnan(st.rec.train[1].wall_s));
    cr_assert(st.rec.train[1].length <= 0);
    cr_assert_eq(st.rec.neval, 1);
    cr_assert_eq(st.rec.eval[0].length, 16);
    /* and the current version round-trips both */
    st.rec.train[1].wall_s = 12.5, st.rec.train[1].length = 48;
    cr_assert_eq(ckpt_save_state(path, &st, &err), 0, "%s", err.msg);
    RunState st2 = {0};
    cr_assert_eq(ckpt_load_state(path, &st2, &err), 0, "%s", err.msg);
    cr_assert_float_eq(st2.rec.train[1].wall_s, 12.5, 1e-15);
    cr_assert_eq(st2.rec.train[1].length, 48);
    records_free(&st.rec), records_free(&st2.rec);
}

/* ---- (6) a real run: interrupted -> trajectories marked interrupted; resumed -> wall time continues ----- */

static double *read_f64_all(hid_t f, const char *name, hsize_t *n) {
    *n = ds_len(f, name);
    double *v = malloc((*n ? *n : 1) * sizeof *v);
    ds_read(f, name, H5T_NATIVE_DOUBLE, v);
    return v;
}

static long probe_attr_i64(hid_t f, const char *name) {
    hid_t pg = H5Gopen2(f, "/trajectories/probe0", H5P_DEFAULT);
    cr_assert(pg >= 0, "no /trajectories/probe0");
    int64_t v = -99;
    hid_t at = H5Aopen(pg, name, H5P_DEFAULT);
    cr_assert(at >= 0 && H5Aread(at, H5T_NATIVE_INT64, &v) >= 0, "probe0 attribute %s", name);
    H5Aclose(at), H5Gclose(pg);
    return (long)v;
}

static char *probe_status(hid_t f) {
    hid_t pg = H5Gopen2(f, "/trajectories/probe0", H5P_DEFAULT);
    char *s = attr_str(pg, "run_status");
    H5Gclose(pg);
    return s;
}

Test(h5log, interrupted_run_keeps_trajectories_and_wall_time, .init = setup, .fini = teardown) {
    char cfg[512], dir[512], h5[600], cmd[2048];
    tmp_path(cfg, sizeof cfg, "t.ini");
    tmp_path(dir, sizeof dir, "run");
    snprintf(h5, sizeof h5, "%s/run.h5", dir);
    FILE *fp = fopen(cfg, "w");
    cr_assert_not_null(fp);
    fputs("[experiment]\nname = h5int\n[model]\nlayers = 1\nd_model = 16\nhead_size = 8\n[task]\nname = s3\n"
          "train_len = 4-8\ntest_lens = 8\ntest_size = 4\n[train]\nsteps = 10\nbatch = 2\nwarmup = 1\n"
          "log_every = 1\neval_every = 5\nckpt_every = 100\n[log]\ntrajectories = 1\ntrajectory_len = 6\n", fp);
    fclose(fp);
    const char *bin = getenv("RWKVLAB_BIN") ? getenv("RWKVLAB_BIN") : "build/rwkvlab";
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s train %s --out %s --stop-after 6 --quiet > /dev/null 2>&1", bin,
             cfg, dir);
    int st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 130, "an interrupted run exits 130 (status %d)", st);
    hid_t f = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0);
    cr_assert(H5Lexists(f, "/trajectories/probe0/layer0/eig_real", H5P_DEFAULT) > 0,
              "an interrupted run must still write its probe trajectories");
    cr_assert_eq(probe_attr_i64(f, "step"), 6);
    char *s = probe_status(f);
    cr_assert_str_eq(s ? s : "(none)", "interrupted");
    free(s);
    hsize_t n1;
    double *w1 = read_f64_all(f, "/train/wall_s", &n1);
    cr_assert_eq(n1, 6);
    int64_t len[6];
    ds_read(f, "/train/length", H5T_NATIVE_INT64, len);
    for (int i = 0; i < 6; i++) cr_assert(len[i] >= 4 && len[i] <= 8, "record %d: length %ld not in 4-8", i, (long)len[i]);
    H5Fclose(f);

    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s train %s/config.ini --resume %s --quiet > /dev/null 2>&1", bin, dir,
             dir);
    st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the resume finishes (status %d)", st);
    f = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0);
    hsize_t n2;
    double *w2 = read_f64_all(f, "/train/wall_s", &n2);
    cr_assert_eq(n2, 10);
    for (hsize_t i = 0; i < n1; i++) cr_assert_eq(w2[i], w1[i], "record %d: wall time changed by the resume", (int)i);
    for (hsize_t i = 1; i < n2; i++)
        cr_assert(isfinite(w2[i]) && w2[i] >= w2[i - 1], "wall time must not go back across a resume (%g then %g)",
                  w2[i - 1], w2[i]);
    cr_assert_eq(probe_attr_i64(f, "step"), 10);
    s = probe_status(f);
    cr_assert_str_eq(s ? s : "(none)", "final");
    free(s);
    H5Fclose(f);
    free(w1), free(w2);
}
