/* test_recall.c -- associative recall tasks `ar` and `mqar` (tasks/recall.c) against independent oracles.
 *
 * Oracles: labels recomputed by looking the query key up in the context (linear search), structure
 * checked token by token (key/value ranges, no repeated key or value, one query per key, query offsets
 * even), the filler rule, and distributions by chi-square tests against probabilities computed here from
 * the definitions (sequential weighted sampling without replacement, weight (g+1)^(a-1)), not from the
 * generator. Each chi-square threshold is the GSL quantile with false-failure probability 1e-6 for a
 * correct generator and a fresh seed (the seeds here are fixed, so the suite is deterministic).
 */
#include <criterion/criterion.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "task.h"

#define FALSE_FAIL 1e-6

typedef struct {
    const char *key, *val;
} KV;

static Task *make(const char *name, const KV *kv, int n) {
    const char *keys[8], *vals[8];
    for (int i = 0; i < n; i++) keys[i] = kv[i].key, vals[i] = kv[i].val;
    Err err = {{0}};
    Task *t = task_create_named(name, NULL, keys, vals, n, &err);
    cr_assert_not_null(t, "%s: %s", name, err.msg);
    return t;
}

static Task *make_fail(const char *name, const KV *kv, int n, Err *err) {
    const char *keys[8], *vals[8];
    for (int i = 0; i < n; i++) keys[i] = kv[i].key, vals[i] = kv[i].val;
    return task_create_named(name, NULL, keys, vals, n, err);
}

/* The value stored with key q in the context (positions 0..2K-1), by linear search; -1 if absent. */
static int lookup(const int *in, int K, int q) {
    for (int j = 0; j < K; j++)
        if (in[2 * j] == q) return in[2 * j + 1];
    return -1;
}

/* Everything the definition says about one sequence. Q = queries per sequence (mqar: K). Returns the
 * number of scored positions. gap_of_pair (may be NULL, mqar only): gap of pair j's query. */
static void check_seq(int multi, int K, int Q, int V, int rnq, int T, const int *in, const int *tg,
                      const unsigned char *mask, int *gap_of_pair, long *filler_hist, int nbins) {
    const int half = V / 2;
    /* context: keys in [1, V/2), values in [V/2, V), none repeated */
    for (int j = 0; j < K; j++) {
        int k = in[2 * j], v = in[2 * j + 1];
        cr_assert(k >= 1 && k < half, "key %d at position %d outside [1, %d)", k, 2 * j, half);
        cr_assert(v >= half && v < V, "value %d at position %d outside [%d, %d)", v, 2 * j + 1, half, V);
        for (int i = 0; i < j; i++) {
            cr_assert_neq(in[2 * i], k, "key %d repeated (pairs %d and %d)", k, i, j);
            cr_assert_neq(in[2 * i + 1], v, "value %d repeated (pairs %d and %d)", v, i, j);
        }
        cr_assert_eq(mask[2 * j], 0, "context position %d is scored", 2 * j);
        cr_assert_eq(mask[2 * j + 1], 0, "context position %d is scored", 2 * j + 1);
    }
    int nq = 0, queried[4096] = {0};
    for (int t = 2 * K; t < T; t++) {
        if (!mask[t]) {
            /* filler: 0, or uniform over [0, V) */
            if (!rnq) cr_assert_eq(in[t], 0, "filler at %d is %d, expected 0 (random_non_queries = 0)", t, in[t]);
            else {
                cr_assert(in[t] >= 0 && in[t] < V, "filler %d at %d outside [0, %d)", in[t], t, V);
                if (filler_hist) filler_hist[(long)in[t] * nbins / V]++;
            }
            continue;
        }
        nq++;
        int j = -1;
        for (int i = 0; i < K; i++)
            if (in[2 * i] == in[t]) j = i;
        cr_assert(j >= 0, "query %d at %d is not a key of the context", in[t], t);
        cr_assert_eq(tg[t], lookup(in, K, in[t]), "label at %d is %d, lookup gives %d", t, tg[t], lookup(in, K, in[t]));
        cr_assert_eq(queried[j], 0, "key %d (pair %d) queried twice", in[t], j);
        queried[j] = 1;
        if (multi) {
            cr_assert_eq((t - 2 * K) % 2, 0, "mqar query at odd offset %d after the context", t - 2 * K);
            if (gap_of_pair) gap_of_pair[j] = (t - 2 * K) / 2;
        }
    }
    cr_assert_eq(nq, Q, "%d scored positions, expected %d", nq, Q);
    if (!rnq) /* with zero filler the queries are exactly the nonzero positions after the context */
        for (int t = 2 * K; t < T; t++) cr_assert_eq(mask[t], in[t] != 0, "position %d: mask %d, input %d", t, mask[t], in[t]);
}

static void check_batch(int multi, int K, int Q, int V, int rnq, const Batch *b, long *hist, int nbins) {
    for (int i = 0; i < b->B; i++) {
        size_t o = (size_t)i * b->T;
        check_seq(multi, K, Q, V, rnq, b->T, b->inputs + o, b->targets + o, b->mask + o, NULL, hist, nbins);
    }
}

/* sum (obs - exp)^2 / exp over n cells */
static double chisq(const long *obs, const double *expect, int n) {
    double x = 0;
    for (int i = 0; i < n; i++) x += (obs[i] - expect[i]) * (obs[i] - expect[i]) / expect[i];
    return x;
}

/* x below the (1 - FALSE_FAIL) quantile of chi-square with df degrees of freedom; logs the headroom */
static void expect_chisq(const char *what, double x, int df) {
    double crit = gsl_cdf_chisq_Qinv(FALSE_FAIL, df);
    cr_log_info("%s: chi-square %.1f, df %d, limit %.1f (%.0f%% of it; P_false = %g)", what, x, df, crit,
                100 * x / crit, FALSE_FAIL);
    cr_expect_lt(x, crit, "%s: chi-square %.1f with %d degrees of freedom, limit %.1f (P_false = %g)", what, x, df,
                 crit, FALSE_FAIL);
}

static gsl_rng *rng_new(unsigned long seed) {
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    return r;
}

/* ---- labels and structure over thousands of sequences ------------------------------------------------ */

Test(recall, mqar_labels_and_structure_bruteforce) {
    const struct { int T, K, V, rnq; } cases[] = {
        {64, 4, 8192, 1}, {64, 4, 8192, 0}, {128, 8, 8192, 1}, {32, 8, 40, 1}, {34, 8, 35, 0}, {256, 16, 300, 1},
    };
    gsl_rng *rng = rng_new(31);
    long seqs = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char K[16], V[16], R[16];
        snprintf(K, sizeof K, "%d", cases[c].K), snprintf(V, sizeof V, "%d", cases[c].V);
        snprintf(R, sizeof R, "%d", cases[c].rnq);
        KV kv[] = {{"num_kv", K}, {"vocab", V}, {"random_non_queries", R}};
        Task *t = make("mqar", kv, 3);
        cr_assert_eq(task_vocab(t), cases[c].V);
        Batch b;
        batch_alloc(&b, 100, cases[c].T);
        for (int rep = 0; rep < 5; rep++) {
            task_sample(t, rng, &b);
            check_batch(1, cases[c].K, cases[c].K, cases[c].V, cases[c].rnq, &b, NULL, 0);
            seqs += b.B;
        }
        batch_free(&b);
        task_testset(t, 7, cases[c].T, 200, &b);
        check_batch(1, cases[c].K, cases[c].K, cases[c].V, cases[c].rnq, &b, NULL, 0);
        seqs += b.B;
        batch_free(&b);
        task_free(t);
    }
    cr_assert_geq(seqs, 3000);
    gsl_rng_free(rng);
}

Test(recall, ar_labels_and_structure_bruteforce) {
    const struct { int T, K, Q, V, rnq; } cases[] = {
        {64, 4, 1, 8192, 1}, {64, 4, 1, 8192, 0}, {18, 8, 2, 64, 0}, {20, 4, 4, 24, 1}, {10, 4, 1, 12, 0},
    };
    gsl_rng *rng = rng_new(32);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char K[16], Q[16], V[16], R[16];
        snprintf(K, sizeof K, "%d", cases[c].K), snprintf(Q, sizeof Q, "%d", cases[c].Q);
        snprintf(V, sizeof V, "%d", cases[c].V), snprintf(R, sizeof R, "%d", cases[c].rnq);
        KV kv[] = {{"num_kv", K}, {"num_queries", Q}, {"vocab", V}, {"random_non_queries", R}};
        Task *t = make("ar", kv, 4);
        Batch b;
        batch_alloc(&b, 200, cases[c].T);
        for (int rep = 0; rep < 5; rep++) {
            task_sample(t, rng, &b);
            check_batch(0, cases[c].K, cases[c].Q, cases[c].V, cases[c].rnq, &b, NULL, 0);
        }
        batch_free(&b);
        task_testset(t, 8, cases[c].T, 500, &b);
        check_batch(0, cases[c].K, cases[c].Q, cases[c].V, cases[c].rnq, &b, NULL, 0);
        batch_free(&b);
        task_free(t);
    }
    gsl_rng_free(rng);
}

/* Defaults: Zoology's V = 8192, K = 8 (mqar) / 4 pairs and 1 query (ar), random filler. */
Test(recall, defaults_vocab_chance_describe) {
    Task *m = make("mqar", NULL, 0), *a = make("ar", NULL, 0);
    cr_expect_eq(task_vocab(m), 8192);
    cr_expect_eq(task_vocab(a), 8192);
    cr_expect_float_eq(task_chance(m), 1.0 / 4096, 1e-15);
    cr_expect_float_eq(task_chance(a), 1.0 / 4096, 1e-15);
    cr_expect(strstr(task_describe(m), "8 key-value pairs") && strstr(task_describe(m), "uniform from [0, 8192)"),
              "%s", task_describe(m));
    cr_expect(strstr(task_describe(a), "4 key-value pairs") && strstr(task_describe(a), "1 query"), "%s",
              task_describe(a));
    Batch b;
    task_testset(m, 1, 64, 300, &b);
    check_batch(1, 8, 8, 8192, 1, &b, NULL, 0);
    batch_free(&b);
    task_testset(a, 1, 64, 300, &b);
    check_batch(0, 4, 1, 8192, 1, &b, NULL, 0);
    batch_free(&b);
    KV odd[] = {{"vocab", "101"}, {"num_kv", "3"}}; /* odd V: values from [50, 101), 51 of them */
    Task *o = make("mqar", odd, 2);
    cr_expect_float_eq(task_chance(o), 1.0 / 51, 1e-15);
    task_testset(o, 1, 100, 200, &b);
    check_batch(1, 3, 3, 101, 1, &b, NULL, 0);
    batch_free(&b);
    char s[32];
    task_token_text(o, 0, s, sizeof s);
    cr_expect_str_eq(s, "0");
    task_token_text(o, 49, s, sizeof s);
    cr_expect_str_eq(s, "k49");
    task_token_text(o, 50, s, sizeof s);
    cr_expect_str_eq(s, "v50");
    task_free(o), task_free(m), task_free(a);
}

/* ---- distributions ----------------------------------------------------------------------------------- */

static double w_of(int g, double a) { return pow(g + 1.0, a - 1.0); }

/* The whole joint law of the ordered gaps (g_1, g_2) for K = 2, T = 16 (space 6): the exact probability
 * of an ordered pair under sequential weighted sampling is w(g1)/W * w(g2)/(W - w(g1)). */
static void joint_gap_test(double a, unsigned long seed) {
    const int T = 16, K = 2, space = (T - 2 * K) / 2, N = 40000;
    char A[32];
    snprintf(A, sizeof A, "%.17g", a);
    KV kv[] = {{"num_kv", "2"}, {"vocab", "64"}, {"power_a", A}, {"random_non_queries", "0"}};
    Task *t = make("mqar", kv, 4);
    double W = 0;
    for (int g = 0; g < space; g++) W += w_of(g, a);
    double expect[36];
    long obs[36] = {0};
    int cells = 0;
    for (int g1 = 0; g1 < space; g1++)
        for (int g2 = 0; g2 < space; g2++)
            if (g1 != g2) expect[cells++] = N * w_of(g1, a) / W * w_of(g2, a) / (W - w_of(g1, a));
    gsl_rng *rng = rng_new(seed);
    Batch b;
    batch_alloc(&b, 1000, T);
    for (int rep = 0; rep < N / 1000; rep++) {
        task_sample(t, rng, &b);
        for (int i = 0; i < b.B; i++) {
            int gap[2] = {-1, -1};
            size_t o = (size_t)i * T;
            check_seq(1, K, K, 64, 0, T, b.inputs + o, b.targets + o, b.mask + o, gap, NULL, 0);
            cr_assert(gap[0] != gap[1] && gap[0] >= 0 && gap[1] >= 0);
            int cell = gap[0] * (space - 1) + (gap[1] < gap[0] ? gap[1] : gap[1] - 1); /* same order as expect */
            obs[cell]++;
        }
    }
    char what[64];
    snprintf(what, sizeof what, "a = %g, %d ordered gap pairs", a, cells);
    expect_chisq(what, chisq(obs, expect, cells), cells - 1);
    batch_free(&b);
    gsl_rng_free(rng);
    task_free(t);
}

Test(recall, mqar_gap_pairs_follow_sequential_power_law) {
    joint_gap_test(0.01, 41); /* Zoology's a */
    joint_gap_test(1.0, 42);  /* uniform */
    joint_gap_test(3.0, 43);  /* increasing weights (the scaled branch) */
}

/* Zoology's cell (T, K) = (64, 4): the first pair's gap has exactly the law w(g)/W over 28 gaps, and the
 * frequency of gap 0 is within 5 standard deviations of 1/W (P(|Z| > 5) = 5.7e-7 for a correct generator). */
Test(recall, mqar_first_gap_marginal_and_gap0_bound) {
    const int T = 64, K = 4, space = (T - 2 * K) / 2, N = 40000;
    const double a = 0.01;
    KV kv[] = {{"num_kv", "4"}, {"vocab", "8192"}};
    Task *t = make("mqar", kv, 2);
    double W = 0, expect[28];
    for (int g = 0; g < space; g++) W += w_of(g, a);
    for (int g = 0; g < space; g++) expect[g] = N * w_of(g, a) / W;
    long obs[28] = {0};
    gsl_rng *rng = rng_new(44);
    Batch b;
    batch_alloc(&b, 1000, T);
    for (int rep = 0; rep < N / 1000; rep++) {
        task_sample(t, rng, &b);
        for (int i = 0; i < b.B; i++) {
            int gap[4];
            size_t o = (size_t)i * T;
            check_seq(1, K, K, 8192, 1, T, b.inputs + o, b.targets + o, b.mask + o, gap, NULL, 0);
            obs[gap[0]]++;
        }
    }
    expect_chisq("first gap over 28 gaps", chisq(obs, expect, space), space - 1);
    double p0 = 1 / W, f0 = (double)obs[0] / N, sd = sqrt(p0 * (1 - p0) / N);
    cr_log_info("gap 0: frequency %.4f, exact %.4f, |diff| = %.2f sd (limit 5)", f0, p0, fabs(f0 - p0) / sd);
    cr_expect_lt(fabs(f0 - p0), 5 * sd, "gap 0 frequency %.4f vs exact %.4f (5 sd = %.4f)", f0, p0, 5 * sd);
    /* not uniform: under uniform gaps p0 would be 1/28 = 0.036; the power law gives ~0.24 */
    cr_expect_gt(p0, 0.2);
    batch_free(&b);
    gsl_rng_free(rng);
    task_free(t);
}

/* ar: the query position is uniform over [2K, T), the queried pair uniform over the K pairs. */
Test(recall, ar_query_position_and_pair_uniform) {
    const int T = 40, K = 6, N = 30000, npos = T - 2 * K;
    KV kv[] = {{"num_kv", "6"}, {"vocab", "64"}, {"random_non_queries", "1"}};
    Task *t = make("ar", kv, 3);
    long pos[28] = {0}, pair[6] = {0};
    double epos[28], epair[6];
    for (int i = 0; i < npos; i++) epos[i] = (double)N / npos;
    for (int i = 0; i < K; i++) epair[i] = (double)N / K;
    gsl_rng *rng = rng_new(45);
    Batch b;
    batch_alloc(&b, 1000, T);
    for (int rep = 0; rep < N / 1000; rep++) {
        task_sample(t, rng, &b);
        check_batch(0, K, 1, 64, 1, &b, NULL, 0);
        for (int i = 0; i < b.B; i++) {
            const int *in = b.inputs + (size_t)i * T;
            const unsigned char *m = b.mask + (size_t)i * T;
            for (int s = 2 * K; s < T; s++)
                if (m[s]) {
                    pos[s - 2 * K]++;
                    for (int j = 0; j < K; j++)
                        if (in[2 * j] == in[s]) pair[j]++;
                }
        }
    }
    expect_chisq("ar query position", chisq(pos, epos, npos), npos - 1);
    expect_chisq("ar queried pair", chisq(pair, epair, K), K - 1);
    batch_free(&b);
    gsl_rng_free(rng);
    task_free(t);
}

/* Filler with random_non_queries = 1 is uniform over [0, V) (16 equal bins); keys (first pair) uniform over
 * [1, V/2) and values over [V/2, V); the first key is below the second half the time (keys not sorted). */
Test(recall, filler_keys_values_uniform) {
    const int T = 64, V = 128, N = 20000, nb = 16;
    KV kv[] = {{"num_kv", "4"}, {"vocab", "128"}, {"random_non_queries", "1"}};
    Task *t = make("mqar", kv, 3);
    long hist[16] = {0}, key1[63] = {0}, val1[64] = {0}, k1_lt_k2 = 0;
    gsl_rng *rng = rng_new(46);
    Batch b;
    batch_alloc(&b, 1000, T);
    for (int rep = 0; rep < N / 1000; rep++) {
        task_sample(t, rng, &b);
        check_batch(1, 4, 4, V, 1, &b, hist, nb);
        for (int i = 0; i < b.B; i++) {
            const int *in = b.inputs + (size_t)i * T;
            key1[in[0] - 1]++, val1[in[1] - V / 2]++, k1_lt_k2 += in[0] < in[2];
        }
    }
    long nf = 0;
    for (int i = 0; i < nb; i++) nf += hist[i];
    cr_assert_eq(nf, (long)N * (T - 2 * 4 - 4), "filler count");
    double eh[16], ek[63], ev[64];
    for (int i = 0; i < nb; i++) eh[i] = (double)nf / nb;
    for (int i = 0; i < 63; i++) ek[i] = (double)N / 63;
    for (int i = 0; i < 64; i++) ev[i] = (double)N / 64;
    expect_chisq("filler, 16 bins", chisq(hist, eh, nb), nb - 1);
    expect_chisq("first key", chisq(key1, ek, 63), 62);
    expect_chisq("first value", chisq(val1, ev, 64), 63);
    double f = (double)k1_lt_k2 / N, sd = sqrt(0.25 / N);
    cr_expect_lt(fabs(f - 0.5), 5 * sd, "P(k1 < k2) = %.4f, expected 0.5", f);
    batch_free(&b);
    gsl_rng_free(rng);
    task_free(t);
}

/* ---- determinism ------------------------------------------------------------------------------------- */

Test(recall, deterministic_for_seed_and_testset_fixed) {
    Task *t = make("mqar", NULL, 0);
    gsl_rng *r1 = rng_new(5), *r2 = rng_new(5);
    Batch a, b;
    batch_alloc(&a, 8, 64), batch_alloc(&b, 8, 64);
    task_sample(t, r1, &a), task_sample(t, r2, &b);
    cr_assert(!memcmp(a.inputs, b.inputs, 8 * 64 * sizeof(int)) && !memcmp(a.targets, b.targets, 8 * 64 * sizeof(int)) &&
              !memcmp(a.mask, b.mask, 8 * 64));
    task_sample(t, r1, &b);
    cr_assert(memcmp(a.inputs, b.inputs, 8 * 64 * sizeof(int)), "consecutive batches identical");
    batch_free(&a), batch_free(&b);
    task_testset(t, 3, 64, 10, &a), task_testset(t, 3, 64, 10, &b);
    cr_assert(!memcmp(a.inputs, b.inputs, 10 * 64 * sizeof(int)) && !memcmp(a.mask, b.mask, 10 * 64));
    batch_free(&a), batch_free(&b);
    gsl_rng_free(r1), gsl_rng_free(r2);
    task_free(t);
}

/* ---- bad keys, values and lengths ------------------------------------------------------------------- */

Test(recall, bad_keys_and_values) {
    const struct { const char *name; KV kv[2]; int n; const char *must; } cases[] = {
        {"mqar", {{"num_kv", "0"}}, 1, "num_kv = '0'"},
        {"mqar", {{"num_kv", "x"}}, 1, "num_kv = 'x'"},
        {"mqar", {{"vocab", "3"}}, 1, "vocab = '3'"},
        {"mqar", {{"vocab", "16"}, {"num_kv", "8"}}, 2, "vocab = 16"},
        {"mqar", {{"power_a", "0"}}, 1, "power_a = '0'"},
        {"mqar", {{"power_a", "-1"}}, 1, "power_a = '-1'"},
        {"mqar", {{"power_a", "nan"}}, 1, "power_a = 'nan'"},
        {"mqar", {{"random_non_queries", "2"}}, 1, "random_non_queries = '2'"},
        {"mqar", {{"num_queries", "2"}}, 1, "'num_queries' does not apply to task mqar"},
        {"mqar", {{"k", "2"}}, 1, "'k' does not apply"},
        {"ar", {{"power_a", "0.5"}}, 1, "'power_a' does not apply to task ar"},
        {"ar", {{"num_queries", "0"}}, 1, "num_queries = '0'"},
        {"ar", {{"num_kv", "3"}, {"num_queries", "4"}}, 2, "num_queries = '4'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Err err = {{0}};
        Task *t = make_fail(cases[i].name, cases[i].kv, cases[i].n, &err);
        cr_expect_null(t, "case %zu (%s %s=%s) should fail", i, cases[i].name, cases[i].kv[0].key, cases[i].kv[0].val);
        if (t) task_free(t);
        cr_expect(strstr(err.msg, cases[i].must) != NULL, "case %zu: '%s' lacks '%s'", i, err.msg, cases[i].must);
    }
    Err err = {{0}};
    Task *t = task_create_named("mqar", "full", NULL, NULL, 0, &err);
    cr_expect_null(t);
    cr_expect(strstr(err.msg, "no variants") != NULL, "%s", err.msg);
}

Test(recall, bad_lengths) {
    KV kv[] = {{"num_kv", "8"}, {"vocab", "100"}};
    Task *m = make("mqar", kv, 2);
    KV kva[] = {{"num_kv", "8"}, {"num_queries", "3"}, {"vocab", "100"}};
    Task *a = make("ar", kva, 3);
    const struct { Task *t; int T; int ok; const char *must; } cases[] = {
        {m, 32, 1, ""},       {m, 30, 0, "4 * num_kv <= T"}, {m, 33, 0, "even"}, {m, 100, 0, "V > T"},
        {m, 98, 1, ""},       {a, 19, 0, "even"},            {a, 18, 0, "2 * num_kv + num_queries"},
        {a, 20, 1, ""},       {a, 100, 0, "V > T"},          {m, 0, 0, ">= 1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Err err = {{0}};
        int rc = task_check_len(cases[i].t, cases[i].T, &err);
        cr_expect_eq(rc == 0, cases[i].ok, "case %zu (T=%d): rc %d '%s'", i, cases[i].T, rc, err.msg);
        if (!cases[i].ok) cr_expect(strstr(err.msg, cases[i].must) != NULL, "case %zu: '%s' lacks '%s'", i, err.msg, cases[i].must);
    }
    task_free(m), task_free(a);
}

/* config validation (what `rwkvlab config` and `train` run) checks every length the run will ask for */
static RunConfig cfg_mqar(void) {
    RunConfig c;
    config_defaults(&c);
    snprintf(c.experiment.name, sizeof c.experiment.name, "t");
    snprintf(c.task.name, sizeof c.task.name, "mqar");
    snprintf(c.task.variant, sizeof c.task.variant, "default");
    c.task.train_len = 64;
    c.task.test_lens[0] = 64, c.task.test_lens[1] = 128, c.task.ntest_lens = 2;
    snprintf(c.task.param_key[0], sizeof c.task.param_key[0], "num_kv");
    snprintf(c.task.param_val[0], sizeof c.task.param_val[0], "4");
    c.task.nparams = 1;
    return c;
}

Test(recall, config_validate_checks_lengths) {
    RunConfig c = cfg_mqar();
    Err err = {{0}};
    cr_assert_eq(config_validate(&c, &err), 0, "%s", err.msg);
    c.task.train_len = 63;
    cr_expect_neq(config_validate(&c, &err), 0);
    cr_expect(strstr(err.msg, "task.train_len = 63") && strstr(err.msg, "even"), "%s", err.msg);
    c = cfg_mqar();
    c.task.test_lens[1] = 14;
    cr_expect_neq(config_validate(&c, &err), 0);
    cr_expect(strstr(err.msg, "task.test_lens lists 14") && strstr(err.msg, "4 * num_kv"), "%s", err.msg);
    c = cfg_mqar();
    c.task.test_lens[1] = 8192;
    cr_expect_neq(config_validate(&c, &err), 0);
    cr_expect(strstr(err.msg, "V > T"), "%s", err.msg);
    c = cfg_mqar();
    c.task.train_len_min = 60; /* the range 60-64 holds odd lengths */
    cr_expect_neq(config_validate(&c, &err), 0);
    cr_expect(strstr(err.msg, "task.train_len = 60-64 includes 61") && strstr(err.msg, "even"), "%s", err.msg);
    c = cfg_mqar();
    snprintf(c.task.protocol, sizeof c.task.protocol, "merrill"); /* trains on length-2 pairs too */
    cr_expect_neq(config_validate(&c, &err), 0);
    cr_expect(strstr(err.msg, "length-2") && strstr(err.msg, "4 * num_kv"), "%s", err.msg);
    c = cfg_mqar();
    c.log.trajectories = 2, c.log.trajectory_len = 66 + 1;
    cr_expect_neq(config_validate(&c, &err), 0);
    cr_expect(strstr(err.msg, "log.trajectory_len = 67"), "%s", err.msg);
}

/* the backstop: a length the task refuses never reaches its generator, even past validation */
Test(recall, fill_with_refused_length_stops, .exit_code = EXIT_FAILURE) {
    Task *t = make("mqar", NULL, 0);
    gsl_rng *rng = rng_new(1);
    Batch b;
    batch_alloc(&b, 2, 63);
    task_sample(t, rng, &b);
}
