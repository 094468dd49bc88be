/* test_mem.c -- memory estimates and the up-front check (core/mem.h).
 *
 * What is checked: MemAvailable parsing; the RWKVLAB_MEM_AVAILABLE override; mem_check's refusal message
 * (estimate, available, how to fix) and force; each part of the training estimate against the buffer the
 * code really allocates (parameters, AdamW moments, the activation buffer after training and evaluation
 * forwards); the whole estimate against the peak RSS of real `rwkvlab train` runs (within a stated bound);
 * and `train` refusing up front -- before writing anything -- when the estimate exceeds what is available.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dataset.h"
#include "mem.h"
#include "rwkv7.h"
#include "optim.h"
#include "step.h"
#include "train.h"
#include "task.h"
#include "testutil.h"

#ifdef __SANITIZE_ADDRESS__
#define UNDER_ASAN 1
#else
#define UNDER_ASAN 0
#endif

static char tmpdir[64];
static void mk_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rwkvlab_mem_XXXXXX");
    cr_assert(mkdtemp(tmpdir));
    unsetenv("RWKVLAB_MEM_AVAILABLE");
    unsetenv("RWKVLAB_FORCE_MEMORY");
}
static void rm_tmpdir(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd)) {}
}

Test(mem, meminfo_parsing_and_override, .init = mk_tmpdir, .fini = rm_tmpdir) {
    const char *mi = "MemTotal:       32000000 kB\nMemFree:         1000000 kB\nMemAvailable:   24353264 kB\n"
                     "Buffers:          100 kB\n";
    cr_assert_eq(mem_parse_meminfo(mi), (size_t)24353264 * 1024);
    cr_assert_eq(mem_parse_meminfo("MemTotal: 5 kB\n"), 0, "no MemAvailable line: unknown");
    cr_assert_eq(mem_parse_meminfo("MemAvailableX: 5 kB\nMemAvailable: 7 kB\n"), 7 * 1024);
    size_t a = mem_available_bytes();
    if (access("/proc/meminfo", R_OK) == 0) cr_assert(a > ((size_t)1 << 20), "available = %zu on a Linux machine", a);
    setenv("RWKVLAB_MEM_AVAILABLE", "123456789", 1);
    cr_assert_eq(mem_available_bytes(), 123456789);
    unsetenv("RWKVLAB_MEM_AVAILABLE");
}

Test(mem, check_message_and_force, .init = mk_tmpdir, .fini = rm_tmpdir) {
    setenv("RWKVLAB_MEM_AVAILABLE", "1048576", 1); /* 1 MiB free */
    Err e = {{0}};
    cr_assert_eq(mem_check(1000, "a small job", 0, &e), 0);
    cr_assert_eq(mem_check((size_t)3 << 30, "the big job", 0, &e), -1);
    cr_assert(strstr(e.msg, "the big job needs about 3.00 GiB of memory but only 1.0 MiB is available"), "%s", e.msg);
    cr_assert(strstr(e.msg, "RWKVLAB_FORCE_MEMORY=1"), "%s", e.msg);
    cr_assert_eq(mem_check((size_t)3 << 30, "the big job", 1, &e), 0, "force turns the refusal into a warning");
    unsetenv("RWKVLAB_MEM_AVAILABLE");
}

static void small_cfg(RunConfig *c) {
    config_defaults(c);
    snprintf(c->experiment.name, sizeof c->experiment.name, "memtest");
    c->model.layers = 2, c->model.d_model = 64, c->model.head_size = 16;
    c->task.train_len = 24, c->task.test_lens[0] = 24, c->task.test_lens[1] = 300, c->task.ntest_lens = 2;
    c->task.test_size = 6;
    c->train.batch = 5, c->train.chunk = 4;
    c->log.trajectories = 0;
}

/* Each part against what the code allocates: params and moments from the real model and optimizer, the
 * activation buffer after the forwards that train_run makes (training batch, evaluation at each length). */
Test(mem, train_estimate_parts_match_real_buffers) {
    RunConfig c;
    small_cfg(&c);
    Err e;
    cr_assert_eq(config_validate(&c, &e), 0, "%s", e.msg);
    Task *task = task_create(&c, &e);
    cr_assert(task, "%s", e.msg);
    Rwkv7Dims d;
    cr_assert_eq(mem_train_dims(&c, task_vocab(task), &model_rwkv7, &d, &e), 0, "%s", e.msg);
    const int K = c.train.chunk;
    MemTrainParts p;
    size_t total = mem_train_bytes(&c, &model_rwkv7, &d, K, &p);
    cr_assert_eq(total, p.params + p.grads + p.optim + p.acts + p.data + p.traj + p.shards + p.ckpt);
    cr_assert_eq(p.ckpt, p.optim, "optim.bin holds both moments");
    Model *m = model_create(&model_rwkv7, &d, 1);
    cr_assert_eq(p.params, m->nparams * sizeof(real));
    cr_assert_eq(p.grads, m->nparams * sizeof(real));
    AdamW o;
    AdamWConfig ac = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8, .steps = 1};
    adamw_init(&o, &ac, m->nparams);
    cr_assert_eq(p.optim, 2 * o.n * sizeof(real));
    adamw_free(&o);
    Batch b;
    batch_alloc(&b, c.train.batch, c.task.train_len);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    task_sample(task, rng, &b);
    ModelFwd f = {.K = K};
    model_forward(m, b.inputs, b.B, b.T, &f);
    size_t train_acts = m->arch->act_bytes(m);
    for (int i = 0; i < c.task.ntest_lens; i++) {
        Batch tb;
        task_testset(task, 1, c.task.test_lens[i], c.task.test_size, &tb);
        double ta, sa;
        train_evaluate(m, tb.inputs, tb.targets, tb.mask, tb.B, tb.T, K, 4096, &ta, &sa);
        batch_free(&tb);
    }
    size_t acts = m->arch->act_bytes(m); /* the buffer only grows: its size now is the run's peak */
    cr_assert(acts > train_acts, "the length-300 evaluation must need more than training (%zu vs %zu)", acts, train_acts);
    size_t rows = 0; /* largest forward: rows of the loss buffers (model.c) and predictions */
    for (int i = 0; i < c.task.ntest_lens; i++) {
        int tl = c.task.test_lens[i], eb = 4096 / tl < 1 ? 1 : 4096 / tl;
        if (eb > c.task.test_size) eb = c.task.test_size;
        if ((size_t)eb * tl > rows) rows = (size_t)eb * tl;
    }
    /* the shared loss keeps probabilities and dlogits (R,V) plus targets and mask; predictions (R) */
    cr_assert_eq(m->loss_cap, rows, "loss buffers hold %zu rows, the largest forward %zu", m->loss_cap, rows);
    size_t want = acts + rows * (2 * (size_t)m->V * sizeof(real) + sizeof(int) + 1) + rows * sizeof(int);
    cr_assert_eq(p.acts, want, "activation estimate %zu, real buffer %zu + %zu rows", p.acts, acts, rows);
    /* the step's replicas (train.shards = 2 of B = 5: the replica holds the larger shard, 3 sequences) */
    cr_assert_eq(c.train.shards, 2);
    TrainStep ts;
    train_step_init(&ts, m, c.train.shards);
    long nc, cnt;
    train_step_grads(&ts, b.inputs, b.targets, b.mask, b.B, b.T, K, &nc, &cnt);
    const Model *rep = ts.rep[1];
    cr_assert(rep && rep->B == 3, "the replica holds shard 1 (3 sequences)");
    size_t rep_bytes = 2 * rep->nparams * sizeof(real) + rep->arch->act_bytes(rep) +
                       rep->loss_cap * (2 * (size_t)rep->V * sizeof(real) + sizeof(int) + 1);
    cr_assert_eq(p.shards, rep_bytes, "replica estimate %zu, real %zu", p.shards, rep_bytes);
    train_step_free(&ts);
    printf("train estimate (L=2 C=64, B=5 T=24, tests 24 and 300): params %zu, grads %zu, optim %zu, acts %zu, data %zu, "
           "shard replica %zu -> %zu bytes\n", p.params, p.grads, p.optim, p.acts, p.data, p.shards, total);
    gsl_rng_free(rng);
    batch_free(&b);
    model_free(m);
    task_free(task);
}

/* The merrill finite dataset is counted: for A5 at n = 3 (60 symbols, 216000 sequences, all of them) and S5
 * swaps at n = 6 (11 symbols, capped at dataset_max), the data part grows by exactly the bytes of the
 * dataset the run builds (dataset_merrill), and the total covers the build's peak; fresh: nothing. */
Test(mem, merrill_dataset_is_counted) {
    static const struct {
        const char *name, *variant;
        int n;
        long max;
    } cases[] = {{"a5", "full", 3, 1000000}, {"s5", "swaps", 6, 50000}};
    for (int k = 0; k < 2; k++) {
        RunConfig c;
        small_cfg(&c);
        Err e;
        char a[96];
        const char *sets[] = {"task.name=%s", "task.variant=%s", "task.protocol=merrill", "task.train_len=%d",
                              "task.test_lens=%d", "task.dataset_max=%ld"};
        for (int i = 0; i < 6; i++) {
            if (i < 2) snprintf(a, sizeof a, sets[i], i ? cases[k].variant : cases[k].name);
            else if (i < 5) snprintf(a, sizeof a, sets[i], cases[k].n);
            else snprintf(a, sizeof a, sets[i], cases[k].max);
            cr_assert_eq(config_set(&c, a, &e), 0, "%s: %s", a, e.msg);
        }
        cr_assert_eq(config_validate(&c, &e), 0, "%s", e.msg);
        Task *task = task_create(&c, &e);
        cr_assert(task, "%s", e.msg);
        Rwkv7Dims d;
        cr_assert_eq(mem_train_dims(&c, task_vocab(task), &model_rwkv7, &d, &e), 0, "%s", e.msg);
        MemTrainParts p, pf;
        mem_train_bytes(&c, &model_rwkv7, &d, c.train.chunk, &p);
        FiniteSet fs;
        cr_assert_eq(dataset_merrill(task, 1, cases[k].n, c.task.train_fraction, c.task.dataset_max, &fs, &e), 0, "%s",
                     e.msg);
        const int n = cases[k].n;
        size_t real_bytes = (size_t)(fs.train.B + fs.test.B) * n * (2 * sizeof(int) + 1) +
                            (size_t)fs.pairs.B * 2 * (2 * sizeof(int) + 1);
        printf("merrill dataset %s %s n=%d: %ld distinct (%s), %d pairs; estimate %zu bytes (build %zu), real %zu\n",
               cases[k].name, cases[k].variant, n, fs.distinct, fs.complete ? "all" : "capped", fs.pairs.B, p.dataset,
               p.dataset_build, real_bytes);
        cr_assert_eq(p.dataset, real_bytes, "%s: estimate %zu bytes, the built dataset holds %zu", cases[k].name,
                     p.dataset, real_bytes);
        cr_assert(p.dataset_build > p.dataset && p.total >= p.dataset_build);
        cr_assert(p.total >= p.params + p.grads + p.optim + p.acts + p.data + p.traj + p.shards + p.ckpt);
        snprintf(a, sizeof a, "task.protocol=fresh");
        cr_assert_eq(config_set(&c, a, &e), 0, "%s", e.msg);
        mem_train_bytes(&c, &model_rwkv7, &d, c.train.chunk, &pf);
        cr_assert_eq(pf.dataset, 0);
        cr_assert_eq(p.data - pf.data, real_bytes, "the data part grows by the dataset");
        dataset_free(&fs);
        task_free(task);
    }
}

/* Peak RSS (kB) of `rwkvlab train CFG --set ...` in a child; -1 if it failed. */
static long train_rss_kb(const char *cfg, const char *sets, const char *out) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "exec %s train %s %s --out %s --quiet > %s.log 2>&1", rwkvlab_bin(), cfg, sets, out, out);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int st;
    struct rusage ru;
    cr_assert(wait4(pid, &st, 0, &ru) == pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st)) return -1;
    return ru.ru_maxrss;
}

static size_t estimate_for(const char *cfg_path, const char *const *sets, int nsets) {
    RunConfig c;
    Err e;
    config_defaults(&c);
    cr_assert_eq(config_load(&c, cfg_path, &e), 0, "%s", e.msg);
    for (int i = 0; i < nsets; i++) cr_assert_eq(config_set(&c, sets[i], &e), 0, "%s", e.msg);
    Task *t = task_create(&c, &e);
    cr_assert(t, "%s", e.msg);
    Rwkv7Dims d;
    cr_assert_eq(mem_train_dims(&c, task_vocab(t), &model_rwkv7, &d, &e), 0, "%s", e.msg);
    size_t b = mem_train_bytes(&c, &model_rwkv7, &d, c.train.chunk > 0 ? c.train.chunk : 1, NULL);
    task_free(t);
    return b;
}

static void write_cfg(const char *path) {
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs("[experiment]\nname = memtest\n[model]\nlayers = 1\nd_model = 32\nhead_size = 8\n[task]\nname = s5\n"
          "train_len = 16\ntest_lens = 16\ntest_size = 8\n[train]\nsteps = 1\nbatch = 4\neval_every = 1\n"
          "ckpt_every = 1\nlog_every = 1\nwarmup = 0\n[log]\ntrajectories = 0\n", f);
    fclose(f);
}

/* The estimate against a real run: peak RSS minus that of a tiny run (code, libraries, HDF5 and BLAS
 * buffers), for a parameter-heavy and an activation-heavy config. Bound: the difference of the two estimates
 * and the difference of the two RSS agree within 10% + 12 MiB. Skipped under ASan (its shadow memory and
 * quarantine make RSS meaningless). */
Test(mem, train_estimate_vs_peak_rss, .init = mk_tmpdir, .fini = rm_tmpdir, .timeout = 120) {
    if (UNDER_ASAN) cr_skip_test("RSS is not comparable under AddressSanitizer");
    char cfg[128], out[160];
    snprintf(cfg, sizeof cfg, "%s/mem.ini", tmpdir);
    write_cfg(cfg);
    snprintf(out, sizeof out, "%s/base", tmpdir);
    long base_kb = train_rss_kb(cfg, "", out);
    cr_assert(base_kb > 0, "the tiny run failed (see %s.log)", out);
    size_t base_est = estimate_for(cfg, NULL, 0);
    static const char *const heavy[3][9] = {
        /* parameters: L=8 C=256 -> 6.8M parameters, x4 buffers */
        {"model.layers=8", "model.d_model=256", "model.head_size=64", "train.batch=1", NULL},
        /* activations: B=32 x T=128 in 2 shards (the model and one replica, 16 sequences each) with every WKV
         * state kept (chunk = 1), evaluation at length 128 in batches of 16 (no larger than a shard: a larger
         * evaluation batch grows the model's buffer, whose backward part evaluation never touches, so the
         * estimate is then an upper bound rather than the resident size) */
        {"model.layers=2", "model.d_model=64", "model.head_size=16", "train.batch=32", "task.train_len=128",
         "task.test_lens=128", "task.test_size=16", "train.chunk=1", NULL},
        /* the merrill dataset: S5 swaps (11 symbols) at n = 8, 10^6 distinct sequences (72 MiB), whose build
         * holds about twice that */
        {"task.protocol=merrill", "task.train_len=8", "task.test_lens=8", "task.dataset_max=1000000", NULL}};
    for (int k = 0; k < 3; k++) {
        char sets[1024] = "";
        int ns = 0;
        for (; heavy[k][ns]; ns++) snprintf(sets + strlen(sets), sizeof sets - strlen(sets), " --set %s", heavy[k][ns]);
        snprintf(out, sizeof out, "%s/run%d", tmpdir, k);
        long kb = train_rss_kb(cfg, sets, out);
        cr_assert(kb > 0, "run %d failed (see %s.log)", k, out);
        double est = (double)(estimate_for(cfg, heavy[k], ns) - base_est) / 1048576;
        double rss = (double)(kb - base_kb) / 1024;
        double bound = 0.10 * est + 12;
        printf("memory estimate vs peak RSS (%s): estimate %.1f MiB, measured %.1f MiB above a tiny run (bound %.1f MiB, "
               "used %.0f%%)\n", k == 2 ? "merrill-dataset-heavy" : k ? "activation-heavy" : "parameter-heavy", est, rss, bound,
               100 * (rss > est ? rss - est : est - rss) / bound);
        cr_assert(rss > est - bound && rss < est + bound, "estimate %.1f MiB vs measured %.1f MiB (bound %.1f MiB)", est,
                  rss, bound);
    }
}

/* train refuses a config that cannot fit before it writes anything, and runs it when forced */
Test(mem, train_refuses_up_front, .init = mk_tmpdir, .fini = rm_tmpdir, .timeout = 60) {
    char cfg[128], cmd[1024], out[160];
    snprintf(cfg, sizeof cfg, "%s/mem.ini", tmpdir);
    write_cfg(cfg);
    snprintf(out, sizeof out, "%s/refused", tmpdir);
    snprintf(cmd, sizeof cmd, "RWKVLAB_MEM_AVAILABLE=200000 %s train %s --out %s > %s/log.txt 2>&1", rwkvlab_bin(), cfg,
             out, tmpdir);
    cr_assert_eq(sh(cmd), 1, "train must exit 1 when the estimate exceeds the available memory");
    snprintf(cmd, sizeof cmd, "grep -q 'needs about .* of memory but only 195.3 KiB is available' %s/log.txt && "
                              "grep -q 'train.batch' %s/log.txt && grep -q -- '--force-memory' %s/log.txt",
             tmpdir, tmpdir, tmpdir);
    cr_assert_eq(sh(cmd), 0, "message lacks the estimate, the available memory or the fixes");
    struct stat st;
    cr_assert(stat(out, &st) != 0, "a refused run must leave no run directory behind");
    snprintf(cmd, sizeof cmd, "RWKVLAB_MEM_AVAILABLE=200000 RWKVLAB_FORCE_MEMORY=1 %s train %s --out %s --quiet "
                              "> %s/log2.txt 2>&1 && grep -q 'trying anyway' %s/log2.txt", rwkvlab_bin(), cfg, out,
             tmpdir, tmpdir);
    cr_assert_eq(sh(cmd), 0, "forced, the run must go ahead with a warning");
    snprintf(cmd, sizeof cmd, "rm -rf %s && RWKVLAB_MEM_AVAILABLE=200000 %s train %s --out %s --quiet --force-memory "
                              "> %s/log3.txt 2>&1 && grep -q 'trying anyway' %s/log3.txt && grep -q 'estimated memory' "
                              "%s/run.log", out, rwkvlab_bin(), cfg, out, tmpdir, tmpdir, out);
    cr_assert_eq(sh(cmd), 0, "--force-memory must do what RWKVLAB_FORCE_MEMORY=1 does, and run.log gives the estimate");
}

/* The refusal comes before the Merrill dataset is built: under an address-space limit (ulimit -v) that the
 * build cannot live in (S5 swaps at n = 8, 4194304 distinct sequences: about 608 MiB while built), train must
 * still answer with the memory refusal, not die in the build ("out of memory holding ..."), and quickly
 * touch little memory. Skipped under ASan (its shadow memory needs far more address space than the limit). */
Test(mem, train_refuses_before_building_the_dataset, .init = mk_tmpdir, .fini = rm_tmpdir, .timeout = 60) {
    if (UNDER_ASAN) cr_skip_test("ulimit -v cannot hold an AddressSanitizer process");
    char cfg[128], cmd[1400], out[160];
    snprintf(cfg, sizeof cfg, "%s/mem.ini", tmpdir);
    write_cfg(cfg);
    snprintf(out, sizeof out, "%s/refused", tmpdir);
    snprintf(cmd, sizeof cmd, "ulimit -v 400000; RWKVLAB_MEM_AVAILABLE=100000000 %s train %s --out %s --quiet --set "
             "task.protocol=merrill --set task.train_len=8 --set task.test_lens=8 --set task.dataset_max=4194304 > "
             "%s/log.txt 2>&1", rwkvlab_bin(), cfg, out, tmpdir);
    cr_assert_eq(sh(cmd), 1, "train must exit 1 (see %s/log.txt)", tmpdir);
    snprintf(cmd, sizeof cmd, "grep -q 'merrill dataset: .* while it is built) needs about .* of memory but only "
             "95.4 MiB is available' %s/log.txt && ! grep -q 'out of memory holding' %s/log.txt", tmpdir, tmpdir);
    cr_assert_eq(sh(cmd), 0, "the refusal must come before the dataset build (see %s/log.txt)", tmpdir);
    struct stat st;
    cr_assert(stat(out, &st) != 0, "a refused run must leave no run directory behind");
}
