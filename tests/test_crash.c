/* test_crash.c -- a run survives a kill or a full disk at any moment (issue 6, items 1-8).
 *
 * One tiny run is made uninterrupted (the reference). Then the same run is killed with SIGKILL at
 * every fsync, at every record appended to run.h5 and at a few random times, or hit by ENOSPC at
 * every fsync; each time it is continued with `rwkvlab train CONFIG --resume DIR` (repeated while a
 * resume itself fails, at most a few times) and must end exactly like the reference: ckpt.bin and
 * optim.bin byte-identical, summary.json equal except its timing fields, every /train and /eval
 * record equal (tokens_per_s excepted), the probe trajectory equal, no temp file left.
 * The points are counted by the run itself (RWKVLAB_FAULT_COUNT) and hit with RWKVLAB_FAULT
 * (common.h), so the test needs no strace and does not depend on timing except for the random kills.
 */
#include <cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

static char tmpdir[256];
static void mk_tmp(void) { cr_assert(test_mkdtemp(tmpdir, sizeof tmpdir, "crash") == 0); }
static void rm_tmp(void) { test_rmtree(tmpdir); }
TestSuite(crash, .init = mk_tmp, .fini = rm_tmp, .timeout = 600);

static const char *CFG =
    "[experiment]\nname = crash\n[model]\nlayers = 1\nd_model = 16\nhead_size = 8\n[task]\nname = s3\n"
    "train_len = 8\ntest_lens = 8, 16\ntest_size = 8\n[train]\nsteps = 14\nbatch = 4\nwarmup = 2\n"
    "eval_every = 6\nlog_every = 2\nckpt_every = 5\nchunk = 4\nthreads = 1\n[log]\ntrajectories = 1\n";

static void write_cfg(char *path, size_t n) {
    snprintf(path, n, "%s/crash.ini", tmpdir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(CFG, f);
    fclose(f);
}


static int same_file(const char *da, const char *db, const char *name) {
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/%s", da, name);
    snprintf(b, sizeof b, "%s/%s", db, name);
    size_t na = 0, nb = 0;
    char *pa = test_slurp(a, &na), *pb = test_slurp(b, &nb);
    int same = pa && pb && na == nb && memcmp(pa, pb, na) == 0;
    free(pa), free(pb);
    return same;
}

/* summary.json without the fields that measure this invocation (time, speed, where) */
static char *summary_core(const char *dir) {
    char p[700];
    size_t n;
    snprintf(p, sizeof p, "%s/summary.json", dir);
    char *s = test_slurp(p, &n);
    if (!s) return NULL;
    cJSON *j = cJSON_Parse(s);
    free(s);
    if (!j) return NULL;
    const char *drop[] = {"wall_seconds", "tokens_per_s", "run_dir"};
    for (int i = 0; i < 3; i++) cJSON_DeleteItemFromObjectCaseSensitive(j, drop[i]);
    char *out = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return out;
}

/* every element of a dataset as bytes (NULL if missing); *n bytes */
static char *read_ds(hid_t f, const char *name, size_t *n) {
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return NULL;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return NULL;
    hid_t t = H5Dget_type(d);
    size_t sz = H5Tget_size(t);
    hid_t sp = H5Dget_space(d);
    hssize_t cnt = H5Sget_simple_extent_npoints(sp);
    *n = (size_t)cnt * sz;
    char *v = malloc(*n + 1);
    H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Sclose(sp), H5Tclose(t), H5Dclose(d);
    return v;
}

/* the first difference between the run.h5 files of two runs, or NULL when the records agree */
static const char *h5_differs(const char *da, const char *db) {
    static const char *ds[] = {"/train/step", "/train/loss", "/train/acc", "/train/lr", "/train/grad_norm", "/train/length",
                               "/eval/step", "/eval/length", "/eval/token_acc", "/eval/seq_acc",
                               "/trajectories/probe0/tokens", "/trajectories/probe0/pred",
                               "/trajectories/probe0/layer0/state", "/trajectories/probe0/layer0/eig_real"};
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/run.h5", da);
    snprintf(b, sizeof b, "%s/run.h5", db);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t fa = H5Fopen(a, H5F_ACC_RDONLY, H5P_DEFAULT), fb = H5Fopen(b, H5F_ACC_RDONLY, H5P_DEFAULT);
    const char *bad = NULL;
    if (fa < 0 || fb < 0) bad = "run.h5 (does not open)";
    for (size_t i = 0; !bad && i < sizeof ds / sizeof *ds; i++) {
        size_t na = 0, nb = 0;
        char *va = read_ds(fa, ds[i], &na), *vb = read_ds(fb, ds[i], &nb);
        if (!va || !vb || na != nb || memcmp(va, vb, na)) bad = ds[i];
        free(va), free(vb);
    }
    if (fa >= 0) H5Fclose(fa);
    if (fb >= 0) H5Fclose(fb);
    return bad;
}

static int has_tmp_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d))) found |= strstr(e->d_name, ".tmp.") != NULL || strstr(e->d_name, ".new") != NULL;
    closedir(d);
    return found;
}

/* the run must end exactly as the reference; returns a description of the first difference or NULL */
static const char *compare_to_ref(const char *ref, const char *dir) {
    static char why[256];
    if (!same_file(ref, dir, "ckpt.bin")) return "ckpt.bin";
    if (!same_file(ref, dir, "optim.bin")) return "optim.bin";
    if (!same_file(ref, dir, "config.ini")) return "config.ini";
    char *sa = summary_core(ref), *sb = summary_core(dir);
    int same = sa && sb && !strcmp(sa, sb);
    free(sa), free(sb);
    if (!same) return "summary.json";
    const char *h = h5_differs(ref, dir);
    if (h) return snprintf(why, sizeof why, "run.h5 %s", h), why;
    if (has_tmp_files(dir)) return "temp or .new files left";
    return NULL;
}

static void count_points(const char *bin, const char *cfg, int *nfsync, int *nh5) {
    char dir[600], cnt[600], cmd[2048];
    snprintf(dir, sizeof dir, "%s/ref", tmpdir);
    snprintf(cnt, sizeof cnt, "%s/points.txt", tmpdir);
    snprintf(cmd, sizeof cmd, "RWKVLAB_FAULT_COUNT=%s %s train %s --out %s --quiet > %s/ref.log 2>&1", cnt, bin, cfg,
             dir, tmpdir);
    cr_assert_eq(sh(cmd), 0, "reference run failed: %s", cmd);
    size_t n;
    char *s = test_slurp(cnt, &n);
    cr_assert(s);
    *nfsync = *nh5 = 0;
    for (char *l = strtok(s, "\n"); l; l = strtok(NULL, "\n")) *nfsync += !strcmp(l, "fsync"), *nh5 += !strcmp(l, "h5");
    free(s);
}

/* run with a fault, then resume until done (a resume may itself be hit by nothing: faults are only
 * in the first run); returns the first run's exit status */
static int fault_then_resume(const char *bin, const char *cfg, const char *dir, const char *fault, int *resumes) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    sh(cmd);
    snprintf(cmd, sizeof cmd, "RWKVLAB_FAULT=%s %s train %s --out %s --quiet > %s.first.log 2>&1", fault, bin, cfg,
             dir, dir);
    int first = sh(cmd);
    *resumes = 0;
    snprintf(cmd, sizeof cmd, "%s train %s --resume %s --quiet >> %s.resume.log 2>&1", bin, cfg, dir, dir);
    while (*resumes < 3) {
        ++*resumes;
        if (sh(cmd) == 0) break;
    }
    return first;
}

Test(crash, killed_at_every_fsync_and_h5_write_resumes_identically) {
    const char *bin = rwkvlab_bin();
    char cfg[600], ref[600], dir[600], fault[64];
    write_cfg(cfg, sizeof cfg);
    int nf, nh;
    count_points(bin, cfg, &nf, &nh);
    snprintf(ref, sizeof ref, "%s/ref", tmpdir);
    cr_assert(nf >= 10 && nh >= 5, "implausibly few fault points: %d fsync, %d h5", nf, nh);
    int checked = 0, killed = 0;
    for (int kind = 0; kind < 2; kind++) {
        int n = kind ? nh : nf;
        for (int i = 1; i <= n; i++) {
            snprintf(fault, sizeof fault, "%s:%d:kill", kind ? "h5" : "fsync", i);
            snprintf(dir, sizeof dir, "%s/k", tmpdir);
            int resumes;
            int first = fault_then_resume(bin, cfg, dir, fault, &resumes);
            killed += first == 128 + 9;
            const char *why = compare_to_ref(ref, dir);
            cr_expect(why == NULL, "killed at %s (first run exit %d, %d resumes): %s differs from the uninterrupted run",
                      fault, first, resumes, why);
            cr_expect_eq(resumes, 1, "killed at %s: the first resume did not finish the run", fault);
            checked++;
        }
    }
    printf("crash: killed at each of %d fsyncs and %d run.h5 appends (%d kills), every resume matched the "
           "uninterrupted run\n", nf, nh, killed);
    cr_expect_eq(killed, checked, "%d of %d fault points did not kill the run", checked - killed, checked);
}

Test(crash, disk_full_at_every_fsync_is_reported_and_resumable) {
    const char *bin = rwkvlab_bin();
    char cfg[600], ref[600], dir[600], fault[64], p[700];
    write_cfg(cfg, sizeof cfg);
    int nf, nh;
    count_points(bin, cfg, &nf, &nh);
    snprintf(ref, sizeof ref, "%s/ref", tmpdir);
    for (int i = 1; i <= nf; i++) {
        snprintf(fault, sizeof fault, "fsync:%d:enospc", i);
        snprintf(dir, sizeof dir, "%s/f", tmpdir);
        int resumes;
        int first = fault_then_resume(bin, cfg, dir, fault, &resumes);
        cr_expect_eq(first, 1, "ENOSPC at fsync %d: exit %d, expected 1 (error)", i, first);
        size_t n;
        snprintf(p, sizeof p, "%s.first.log", dir);
        char *msg = test_slurp(p, &n);
        cr_expect(msg && strstr(msg, "No space left"), "ENOSPC at fsync %d: the message does not say so: %s", i,
                  msg ? msg : "(none)");
        free(msg);
        snprintf(p, sizeof p, "%s/run.log", dir);
        char *log = test_slurp(p, &n);
        if (log) /* a failure before run.log exists cannot be logged there */
            cr_expect(strstr(log, "No space left"), "ENOSPC at fsync %d: run.log does not record the error", i);
        free(log);
        const char *why = compare_to_ref(ref, dir);
        cr_expect(why == NULL, "ENOSPC at fsync %d, then resumed: %s differs from the uninterrupted run", i, why);
    }
}

Test(crash, killed_at_random_times_resumes_identically) {
    const char *bin = rwkvlab_bin();
    char cfg[600], ref[600], dir[600], cmd[2048];
    write_cfg(cfg, sizeof cfg);
    int nf, nh;
    count_points(bin, cfg, &nf, &nh);
    snprintf(ref, sizeof ref, "%s/ref", tmpdir);
    srand((unsigned)time(NULL));
    for (int k = 0; k < 4; k++) {
        int ms = 5 + rand() % 400;
        snprintf(dir, sizeof dir, "%s/r", tmpdir);
        snprintf(cmd, sizeof cmd, "rm -rf %s; timeout -s KILL %d.%03d %s train %s --out %s --quiet > /dev/null 2>&1", dir,
                 ms / 1000, ms % 1000, bin, cfg, dir);
        sh(cmd);
        snprintf(cmd, sizeof cmd, "%s train %s --resume %s --quiet > %s.log 2>&1", bin, cfg, dir, dir);
        cr_expect_eq(sh(cmd), 0, "resume after a kill at %d ms failed", ms);
        const char *why = compare_to_ref(ref, dir);
        cr_expect(why == NULL, "killed after %d ms, then resumed: %s differs from the uninterrupted run", ms, why);
    }
}

/* A real full disk (a small tmpfs, needs root; skipped otherwise): at every size the run fails with a
 * message (no crash), and once space is freed --resume finishes it exactly like the reference. */
Test(crash, real_full_disk_then_resume) {
    const char *bin = rwkvlab_bin();
    char cfg[600], ref[600], mnt[600], dir[700], cmd[2048];
    write_cfg(cfg, sizeof cfg);
    int nf, nh;
    count_points(bin, cfg, &nf, &nh);
    snprintf(ref, sizeof ref, "%s/ref", tmpdir);
    snprintf(mnt, sizeof mnt, "%s/tmpfs", tmpdir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && mount -t tmpfs -o size=16k tmpfs %s 2>/dev/null", mnt, mnt);
    if (getuid() != 0 || sh(cmd) != 0) cr_skip_test("needs root and tmpfs mounts to fill a real disk");
    snprintf(dir, sizeof dir, "%s/r", mnt);
    int failed = 0;
    for (int kb = 16; kb <= 240; kb += 16) {
        snprintf(cmd, sizeof cmd, "rm -rf %s; mount -o remount,size=%dk %s && %s train %s --out %s --quiet > %s/full.log 2>&1",
                 dir, kb, mnt, bin, cfg, dir, tmpdir);
        int rc = sh(cmd);
        cr_expect(rc == 0 || rc == 1, "with a %d KiB disk the run ended with status %d (crash?)", kb, rc);
        if (rc == 1) {
            failed++;
            size_t n;
            char p[800];
            snprintf(p, sizeof p, "%s/full.log", tmpdir);
            char *msg = test_slurp(p, &n);
            cr_expect(msg && strstr(msg, "No space left"), "%d KiB: the message does not say the disk is full: %s", kb, msg);
            free(msg);
        }
        snprintf(cmd, sizeof cmd, "mount -o remount,size=16m %s && %s train %s --resume %s --quiet > /dev/null 2>&1", mnt,
                 bin, cfg, dir);
        cr_expect_eq(sh(cmd), 0, "%d KiB: resume with space freed failed", kb);
        const char *why = compare_to_ref(ref, dir);
        cr_expect(why == NULL, "%d KiB disk, then resumed: %s differs from the uninterrupted run", kb, why);
    }
    snprintf(cmd, sizeof cmd, "umount %s", mnt);
    sh(cmd);
    cr_expect(failed >= 3, "only %d disk sizes were too small: the test did not exercise a full disk", failed);
}

/* A second process on a run directory in use gets a clear error and changes nothing. */
Test(crash, run_directory_is_locked) {
    const char *bin = rwkvlab_bin();
    char cfg[600], dir[600], lock[700], cmd[2048], out[700];
    write_cfg(cfg, sizeof cfg);
    snprintf(dir, sizeof dir, "%s/locked", tmpdir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    sh(cmd);
    snprintf(lock, sizeof lock, "%s/.lock", dir);
    int fd = open(lock, O_RDWR | O_CREAT, 0644);
    cr_assert(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0);
    snprintf(out, sizeof out, "%s/locked.log", tmpdir);
    snprintf(cmd, sizeof cmd, "%s train %s --out %s --quiet > %s 2>&1", bin, cfg, dir, out);
    cr_expect_eq(sh(cmd), 1, "a second process on a locked run directory must fail");
    size_t n;
    char *msg = test_slurp(out, &n);
    cr_expect(msg && strstr(msg, "in use by another rwkvlab process"), "message: %s", msg ? msg : "");
    free(msg);
    char p[700];
    snprintf(p, sizeof p, "%s/config.ini", dir);
    cr_expect(access(p, F_OK) != 0, "the losing process wrote config.ini");
    close(fd);
    cr_expect_eq(sh(cmd), 0, "once the lock is released the run starts");
}

/* --resume refuses a changed configuration, naming the key; train.steps may grow and is recorded. */
Test(crash, resume_refuses_config_changes) {
    const char *bin = rwkvlab_bin();
    char cfg[600], dir[600], cmd[2048], out[700], p[700];
    write_cfg(cfg, sizeof cfg);
    snprintf(dir, sizeof dir, "%s/cfgchange", tmpdir);
    snprintf(out, sizeof out, "%s/cfgchange.log", tmpdir);
    snprintf(cmd, sizeof cmd, "%s train %s --out %s --quiet --stop-after 7 > %s 2>&1", bin, cfg, dir, out);
    cr_assert_eq(sh(cmd), 130);
    snprintf(cmd, sizeof cmd, "%s train %s --resume %s --set model.layers=2 --quiet > %s 2>&1", bin, cfg, dir, out);
    cr_expect_eq(sh(cmd), 1, "--set model.layers on resume must be refused");
    size_t n;
    char *msg = test_slurp(out, &n);
    cr_expect(msg && strstr(msg, "model.layers: 1 -> 2"), "message should name the key and both values: %s", msg);
    free(msg);
    /* a different CONFIG file is checked the same way */
    char cfg2[600];
    snprintf(cfg2, sizeof cfg2, "%s/other.ini", tmpdir);
    FILE *f = fopen(cfg2, "w");
    cr_assert(f);
    char *other = strdup(CFG);
    char *dm = strstr(other, "d_model = 16");
    memcpy(dm, "d_model = 32", 12);
    fputs(other, f);
    fclose(f);
    free(other);
    snprintf(cmd, sizeof cmd, "%s train %s --resume %s --quiet > %s 2>&1", bin, cfg2, dir, out);
    cr_expect_eq(sh(cmd), 1, "a CONFIG with another d_model must be refused on resume");
    msg = test_slurp(out, &n);
    cr_expect(msg && strstr(msg, "model.d_model: 16 -> 32"), "message: %s", msg);
    free(msg);
    snprintf(cmd, sizeof cmd, "%s train %s --resume %s --set train.lr=0.01 --quiet > %s 2>&1", bin, cfg, dir, out);
    cr_expect_eq(sh(cmd), 1, "train.lr change on resume must be refused");
    msg = test_slurp(out, &n);
    cr_expect(msg && strstr(msg, "train.lr"), "message: %s", msg);
    free(msg);
    /* more steps: accepted, recorded in config.ini and run.log */
    snprintf(cmd, sizeof cmd, "%s train %s --resume %s --set train.steps=20 --quiet > %s 2>&1", bin, cfg, dir, out);
    cr_expect_eq(sh(cmd), 0, "train.steps may change on resume");
    snprintf(p, sizeof p, "%s/config.ini", dir);
    msg = test_slurp(p, &n);
    cr_expect(msg && strstr(msg, "steps = 20"), "config.ini does not record the new train.steps");
    free(msg);
    snprintf(p, sizeof p, "%s/run.log", dir);
    msg = test_slurp(p, &n);
    cr_expect(msg && strstr(msg, "train.steps: 14 -> 20"), "run.log does not record the change");
    free(msg);
}
