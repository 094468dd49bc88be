/* test_tasks.c -- permutation groups (group.h) and the group word-problem task (task.h).
 *
 * Oracles are independent of the tables under test: permutation arrays composed by hand, linear search
 * instead of group_find, inversion-count parity instead of cycle parity, and a brute-force prefix
 * product in place of the generator's running product. Expected counts are mathematical facts
 * (n!, n!/2, 1 + C(5,2) = 11, 1 + 10 + 2*C(5,3) = 31, ...).
 */
#include <criterion/criterion.h>
#include <gsl/gsl_rng.h>
#include <string.h>

#include "group.h"
#include "task.h"

/* ---- independent helpers --------------------------------------------------------------------- */

/* out = "a then b": out[x] = b[a[x]] (the composition order documented in group.h). */
static void ref_compose(const unsigned char *a, const unsigned char *b, int n, unsigned char *out) {
    for (int x = 0; x < n; x++) out[x] = b[a[x]];
}

static int ref_find(const Group *g, const unsigned char *p) {
    for (int e = 0; e < g->order; e++)
        if (memcmp(group_perm(g, e), p, (size_t)g->n) == 0) return e;
    return -1;
}

static int ref_is_identity(const unsigned char *p, int n) {
    for (int x = 0; x < n; x++)
        if (p[x] != x) return 0;
    return 1;
}

/* Parity by counting inversions (a different method from group.c's cycle count). */
static int ref_parity(const unsigned char *p, int n) {
    int inv = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) inv += p[i] > p[j];
    return inv & 1;
}

static int ref_moved(const unsigned char *p, int n) {
    int m = 0;
    for (int x = 0; x < n; x++) m += p[x] != x;
    return m;
}

static void make_group(Group *g, char kind, int n) {
    Err err = {{0}};
    int rc = kind == 'S' ? group_init_symmetric(g, n, &err)
             : kind == 'A' ? group_init_alternating(g, n, &err)
                           : group_init_cyclic(g, n, &err);
    cr_assert_eq(rc, 0, "%c%d failed to build: %s", kind, n, err.msg);
}

static RunConfig make_cfg(const char *name, const char *variant) {
    RunConfig c;
    memset(&c, 0, sizeof c);
    snprintf(c.task.name, sizeof c.task.name, "%s", name);
    snprintf(c.task.variant, sizeof c.task.variant, "%s", variant);
    c.task.train_len = 32;
    return c;
}

static Task *make_task(const char *name, const char *variant) {
    RunConfig c = make_cfg(name, variant);
    Err err = {{0}};
    Task *t = task_create(&c, &err);
    cr_assert_not_null(t, "task_create(%s, %s) failed: %s", name, variant, err.msg);
    return t;
}

static int batch_equal(const Batch *a, const Batch *b) {
    size_t bt = (size_t)a->B * a->T;
    return a->B == b->B && a->T == b->T && memcmp(a->inputs, b->inputs, bt * sizeof(int)) == 0 &&
           memcmp(a->targets, b->targets, bt * sizeof(int)) == 0 && memcmp(a->mask, b->mask, bt) == 0;
}

/* ---- groups ---------------------------------------------------------------------------------- */

Test(group, orders) {
    const struct { char kind; int n; int order; } cases[] = {
        {'S', 1, 1}, {'S', 3, 6}, {'S', 4, 24}, {'S', 5, 120}, {'S', 6, 720},
        {'A', 3, 3}, {'A', 4, 12}, {'A', 5, 60}, {'A', 6, 360}, {'Z', 1, 1}, {'Z', 7, 7}, {'Z', 60, 60},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Group g;
        make_group(&g, cases[i].kind, cases[i].n);
        cr_expect_eq(g.order, cases[i].order, "%s: order %d, expected %d", g.name, g.order, cases[i].order);
        group_free(&g);
    }
}

Test(group, elements_are_distinct_permutations_and_identity_first) {
    const char *names[] = {"S3", "S5", "A5", "Z12", "S6"};
    for (int k = 0; k < 5; k++) {
        Group g;
        Err err = {{0}};
        cr_assert_eq(group_init_by_name(&g, names[k], &err), 0, "%s: %s", names[k], err.msg);
        cr_assert(ref_is_identity(group_perm(&g, 0), g.n), "%s: element 0 is not the identity", g.name);
        for (int e = 0; e < g.order; e++) {
            unsigned char seen[256] = {0};
            const unsigned char *p = group_perm(&g, e);
            for (int x = 0; x < g.n; x++) {
                cr_assert_lt(p[x], g.n, "%s elem %d maps %d out of range", g.name, e, x);
                cr_assert_eq(seen[p[x]], 0, "%s elem %d is not a bijection", g.name, e);
                seen[p[x]] = 1;
            }
            if (e > 0) /* strictly increasing lexicographic order => distinct, fixed order */
                cr_assert_lt(memcmp(group_perm(&g, e - 1), p, (size_t)g.n), 0, "%s: order broken at %d", g.name, e);
            cr_assert_eq(group_mul(&g, 0, e), e, "%s: identity*%d", g.name, e);
            cr_assert_eq(group_mul(&g, e, 0), e, "%s: %d*identity", g.name, e);
        }
        group_free(&g);
    }
}

Test(group, s3_lexicographic_order) {
    const unsigned char expect[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    Group g;
    make_group(&g, 'S', 3);
    for (int e = 0; e < 6; e++)
        cr_expect(memcmp(group_perm(&g, e), expect[e], 3) == 0, "S3 element %d not lexicographic", e);
    group_free(&g);
}

Test(group, mul_matches_bruteforce_composition) {
    const struct { char kind; int n; } cases[] = {{'S', 3}, {'S', 4}, {'S', 5}, {'A', 4}, {'A', 5}, {'Z', 9}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Group g;
        make_group(&g, cases[i].kind, cases[i].n);
        unsigned char c[256];
        for (int a = 0; a < g.order; a++)
            for (int b = 0; b < g.order; b++) {
                ref_compose(group_perm(&g, a), group_perm(&g, b), g.n, c);
                int ab = group_mul(&g, a, b);
                cr_assert(ab >= 0 && ab < g.order, "%s: mul(%d,%d)=%d out of range", g.name, a, b, ab);
                cr_assert(memcmp(group_perm(&g, ab), c, (size_t)g.n) == 0,
                          "%s: mul(%d,%d) is not 'a then b'", g.name, a, b);
                cr_assert_eq(ref_find(&g, c), ab, "%s: closure/lookup at (%d,%d)", g.name, a, b);
            }
        group_free(&g);
    }
}

Test(group, noncommutative_s3_transpositions) {
    Group g;
    make_group(&g, 'S', 3);
    const unsigned char t01[3] = {1, 0, 2}, t12[3] = {0, 2, 1};
    /* swap(0,1) then swap(1,2): 0->1->2, 1->0->0, 2->2->1 */
    const unsigned char t01_then_t12[3] = {2, 0, 1};
    /* swap(1,2) then swap(0,1): 0->0->1, 1->2->2, 2->1->0 */
    const unsigned char t12_then_t01[3] = {1, 2, 0};
    int a = ref_find(&g, t01), b = ref_find(&g, t12);
    int ab = ref_find(&g, t01_then_t12), ba = ref_find(&g, t12_then_t01);
    cr_assert(a >= 0 && b >= 0 && ab >= 0 && ba >= 0);
    cr_assert_neq(ab, ba);
    cr_expect_eq(group_mul(&g, a, b), ab, "mul(t01, t12) should be [2,0,1] (t01 applied first)");
    cr_expect_eq(group_mul(&g, b, a), ba, "mul(t12, t01) should be [1,2,0] (t12 applied first)");
    /* indices under the documented lexicographic order: t01=2, t12=1, [2,0,1]=4, [1,2,0]=3 */
    cr_expect_eq(group_mul(&g, 2, 1), 4);
    cr_expect_eq(group_mul(&g, 1, 2), 3);
    group_free(&g);
}

Test(group, inverses) {
    const char *names[] = {"S3", "S5", "A5", "Z10"};
    for (int k = 0; k < 4; k++) {
        Group g;
        Err err = {{0}};
        cr_assert_eq(group_init_by_name(&g, names[k], &err), 0, "%s", err.msg);
        unsigned char c[256];
        for (int a = 0; a < g.order; a++) {
            int ia = group_inv(&g, a);
            cr_assert(ia >= 0 && ia < g.order, "%s: inv(%d) out of range", g.name, a);
            ref_compose(group_perm(&g, a), group_perm(&g, ia), g.n, c);
            cr_assert(ref_is_identity(c, g.n), "%s: %d then inv is not identity", g.name, a);
            ref_compose(group_perm(&g, ia), group_perm(&g, a), g.n, c);
            cr_assert(ref_is_identity(c, g.n), "%s: inv then %d is not identity", g.name, a);
            cr_assert_eq(group_mul(&g, a, ia), 0);
            cr_assert_eq(group_mul(&g, ia, a), 0);
        }
        group_free(&g);
    }
}

Test(group, associativity) {
    Group s3, s5, a5;
    make_group(&s3, 'S', 3);
    make_group(&s5, 'S', 5);
    make_group(&a5, 'A', 5);
    for (int a = 0; a < 6; a++) /* S3: exhaustive */
        for (int b = 0; b < 6; b++)
            for (int c = 0; c < 6; c++)
                cr_assert_eq(group_mul(&s3, group_mul(&s3, a, b), c), group_mul(&s3, a, group_mul(&s3, b, c)),
                             "S3: (%d%d)%d != %d(%d%d)", a, b, c, a, b, c);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 12345);
    const Group *gs[2] = {&s5, &a5};
    for (int k = 0; k < 2; k++) {
        const Group *g = gs[k];
        for (int i = 0; i < 20000; i++) {
            int a = (int)gsl_rng_uniform_int(rng, g->order), b = (int)gsl_rng_uniform_int(rng, g->order),
                c = (int)gsl_rng_uniform_int(rng, g->order);
            cr_assert_eq(group_mul(g, group_mul(g, a, b), c), group_mul(g, a, group_mul(g, b, c)),
                         "%s: associativity fails at (%d,%d,%d)", g->name, a, b, c);
        }
    }
    gsl_rng_free(rng);
    group_free(&s3);
    group_free(&s5);
    group_free(&a5);
}

Test(group, a5_is_exactly_the_even_permutations_of_s5) {
    Group s5, a5;
    make_group(&s5, 'S', 5);
    make_group(&a5, 'A', 5);
    for (int e = 0; e < a5.order; e++) {
        cr_assert_eq(ref_parity(group_perm(&a5, e), 5), 0, "A5 element %d is odd", e);
        cr_assert_eq(group_parity(&a5, e), 0);
    }
    int even = 0;
    for (int e = 0; e < s5.order; e++) {
        int par = ref_parity(group_perm(&s5, e), 5);
        cr_assert_eq(group_parity(&s5, e), par, "S5 parity of %d", e);
        int in_a5 = group_find(&a5, group_perm(&s5, e)) >= 0;
        cr_assert_eq(in_a5, par == 0, "S5 element %d: parity %d but in A5 = %d", e, par, in_a5);
        even += par == 0;
    }
    cr_assert_eq(even, 60);
    group_free(&s5);
    group_free(&a5);
}

Test(group, cyclic_is_abelian_rotation) {
    Group z;
    make_group(&z, 'Z', 12);
    for (int a = 0; a < 12; a++)
        for (int b = 0; b < 12; b++) {
            cr_assert_eq(group_mul(&z, a, b), group_mul(&z, b, a));
            cr_assert_eq(group_mul(&z, a, b), (a + b) % 12, "Z12: rotation %d then %d", a, b);
        }
    group_free(&z);
}

Test(group, moved_point_counts) {
    Group s5, a5, s3;
    make_group(&s5, 'S', 5);
    make_group(&a5, 'A', 5);
    make_group(&s3, 'S', 3);
    cr_expect_eq(group_elements_moving_at_most(&s5, 2, NULL), 11);   /* 1 + C(5,2) */
    cr_expect_eq(group_elements_moving_at_most(&s5, 3, NULL), 31);   /* + 2*C(5,3) 3-cycles */
    cr_expect_eq(group_elements_moving_at_most(&s5, 5, NULL), 120);
    cr_expect_eq(group_elements_moving_at_most(&a5, 2, NULL), 1);    /* transpositions are odd */
    cr_expect_eq(group_elements_moving_at_most(&a5, 3, NULL), 21);   /* 1 + 20 3-cycles */
    cr_expect_eq(group_elements_moving_at_most(&s3, 2, NULL), 4);
    int out[120];
    int cnt = group_elements_moving_at_most(&s5, 3, out);
    for (int i = 0; i < cnt; i++) {
        cr_assert_leq(ref_moved(group_perm(&s5, out[i]), 5), 3);
        if (i > 0) cr_assert_lt(out[i - 1], out[i], "list not in index order");
    }
    group_free(&s5);
    group_free(&a5);
    group_free(&s3);
}

Test(group, bad_names_and_sizes) {
    const char *bad[] = {"Q5", "S", "", "S9", "A0", "Z0", "Z1000", "S5x", "S-3"};
    for (int k = 0; k < 9; k++) {
        Group g;
        Err err = {{0}};
        cr_expect_neq(group_init_by_name(&g, bad[k], &err), 0, "'%s' should be rejected", bad[k]);
        cr_expect_neq(err.msg[0], '\0', "'%s': empty error message", bad[k]);
        cr_expect_null(g.mul);
    }
    Group g;
    Err err = {{0}};
    cr_assert_eq(group_init_by_name(&g, "a5", &err), 0, "%s", err.msg);
    cr_expect_eq(g.order, 60);
    cr_expect_str_eq(g.name, "A5");
    group_free(&g);
}

/* ---- word-problem task ----------------------------------------------------------------------- */

Test(task, vocab_and_describe) {
    const struct { const char *name; int v; const char *g; } cases[] = {{"s5", 120, "S5"}, {"A5", 60, "A5"}, {"s3", 6, "S3"}};
    for (int i = 0; i < 3; i++) {
        Task *t = make_task(cases[i].name, "full");
        cr_expect_eq(task_vocab(t), cases[i].v);
        cr_expect(strstr(task_describe(t), cases[i].g) != NULL, "describe: %s", task_describe(t));
        task_free(t);
    }
    Task *t = make_task("s5", "swaps");
    const char *d = task_describe(t);
    cr_expect(strstr(d, "order 120") && strstr(d, "swaps") && strstr(d, "11 elements") &&
              strstr(d, "g1 applied first"), "describe: %s", d);
    task_free(t);
}

/* The inputs a variant produces: every draw moves <= k points, and all of them appear. */
Test(task, variant_alphabets) {
    const struct { const char *name, *variant; char kind; int n, max_moved, size; } cases[] = {
        {"s5", "full", 'S', 5, 5, 120}, {"s5", "swaps", 'S', 5, 2, 11}, {"s5", "swaps3", 'S', 5, 3, 31},
        {"a5", "full", 'A', 5, 5, 60},  {"a5", "swaps3", 'A', 5, 3, 21}, {"s3", "full", 'S', 3, 3, 6},
        {"s3", "swaps", 'S', 3, 2, 4},  {"s3", "swaps3", 'S', 3, 3, 6},
    };
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 7);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Task *t = make_task(cases[i].name, cases[i].variant);
        Group g;
        make_group(&g, cases[i].kind, cases[i].n);
        Batch b;
        batch_alloc(&b, 64, 128); /* 8192 draws: P(some of 120 unseen) < 120*(119/120)^8192 ~ 1e-27 */
        task_sample(t, rng, &b);
        char seen[720] = {0};
        int distinct = 0;
        for (int j = 0; j < b.B * b.T; j++) {
            int e = b.inputs[j];
            cr_assert(e >= 0 && e < g.order, "%s/%s: token %d out of range", cases[i].name, cases[i].variant, e);
            cr_assert_leq(ref_moved(group_perm(&g, e), g.n), cases[i].max_moved, "%s/%s: element %d moves too many points",
                          cases[i].name, cases[i].variant, e);
            if (!seen[e]) distinct++;
            seen[e] = 1;
        }
        cr_expect_eq(distinct, cases[i].size, "%s/%s: %d distinct inputs, expected %d", cases[i].name,
                     cases[i].variant, distinct, cases[i].size);
        batch_free(&b);
        group_free(&g);
        task_free(t);
    }
    gsl_rng_free(rng);
}

/* Brute-force prefix products from permutation arrays (g_1 applied first) vs the generator's labels. */
static void check_labels_bruteforce(const char *name, const char *variant, char kind, int n, const Batch *b) {
    Group g;
    make_group(&g, kind, n);
    for (int i = 0; i < b->B; i++) {
        unsigned char cur[16], next[16];
        for (int x = 0; x < n; x++) cur[x] = (unsigned char)x;
        for (int s = 0; s < b->T; s++) {
            int e = b->inputs[i * b->T + s];
            ref_compose(cur, group_perm(&g, e), n, next); /* prefix so far, then g_s */
            memcpy(cur, next, (size_t)n);
            int want = ref_find(&g, cur);
            cr_assert_eq(b->targets[i * b->T + s], want, "%s/%s: seq %d pos %d label %d, brute force %d", name,
                         variant, i, s, b->targets[i * b->T + s], want);
            cr_assert_eq(b->mask[i * b->T + s], 1);
        }
    }
    group_free(&g);
}

Test(task, labels_match_bruteforce_prefix_products) {
    const struct { const char *name, *variant; char kind; int n; } cases[] = {
        {"s5", "full", 'S', 5}, {"s5", "swaps", 'S', 5}, {"s5", "swaps3", 'S', 5}, {"a5", "full", 'A', 5},
        {"a5", "swaps3", 'A', 5}, {"s3", "full", 'S', 3}, {"s3", "swaps", 'S', 3},
    };
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 2024);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Task *t = make_task(cases[i].name, cases[i].variant);
        Batch b;
        batch_alloc(&b, 16, 100);
        for (int rep = 0; rep < 3; rep++) {
            task_sample(t, rng, &b);
            check_labels_bruteforce(cases[i].name, cases[i].variant, cases[i].kind, cases[i].n, &b);
        }
        batch_free(&b);
        task_testset(t, 99, 57, 8, &b);
        check_labels_bruteforce(cases[i].name, cases[i].variant, cases[i].kind, cases[i].n, &b);
        batch_free(&b);
        task_free(t);
    }
    gsl_rng_free(rng);
}

Test(task, sample_deterministic_for_seed) {
    Task *t = make_task("s5", "full");
    gsl_rng *r1 = gsl_rng_alloc(gsl_rng_mt19937), *r2 = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r1, 42);
    gsl_rng_set(r2, 42);
    Batch a, b;
    batch_alloc(&a, 8, 32);
    batch_alloc(&b, 8, 32);
    for (int rep = 0; rep < 3; rep++) {
        task_sample(t, r1, &a);
        task_sample(t, r2, &b);
        cr_assert(batch_equal(&a, &b), "same seed gave different batches (step %d)", rep);
    }
    gsl_rng_set(r2, 43);
    task_sample(t, r2, &b);
    cr_assert_not(batch_equal(&a, &b), "different seeds gave identical batches");
    batch_free(&a);
    batch_free(&b);
    gsl_rng_free(r1);
    gsl_rng_free(r2);
    task_free(t);
}

Test(task, testset_fixed_per_seed_and_length) {
    Task *t = make_task("s5", "swaps");
    Batch a, b, c;
    task_testset(t, 1, 64, 20, &a);
    task_testset(t, 1, 64, 20, &b);
    cr_assert(batch_equal(&a, &b), "same (seed,T,n) gave different test sets");
    batch_free(&b);
    task_testset(t, 2, 64, 20, &b);
    cr_assert_not(batch_equal(&a, &b), "different seeds gave identical test sets");
    batch_free(&b);
    /* different length: a different stream, so the first 64 tokens differ */
    task_testset(t, 1, 65, 20, &b);
    int same_prefix = 1;
    for (int i = 0; i < 20 && same_prefix; i++)
        same_prefix = memcmp(a.inputs + i * 64, b.inputs + i * 65, 64 * sizeof(int)) == 0;
    cr_expect_not(same_prefix, "T=64 and T=65 test sets share their sequences");
    batch_free(&b);
    /* a smaller n is a prefix of the larger set (documented in task.c) */
    task_testset(t, 1, 64, 5, &c);
    cr_expect(memcmp(c.inputs, a.inputs, 5 * 64 * sizeof(int)) == 0, "n=5 set is not a prefix of n=20 set");
    batch_free(&c);
    batch_free(&a);
    task_free(t);
}

Test(task, testset_independent_of_training_stream) {
    Task *t = make_task("a5", "full");
    Batch before, after, train;
    task_testset(t, 5, 40, 16, &before);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 5); /* the same seed value as the test set */
    batch_alloc(&train, 16, 40);
    task_sample(t, rng, &train);
    cr_assert_not(batch_equal(&train, &before), "test set equals the training stream for the same seed");
    for (int i = 0; i < 10; i++) task_sample(t, rng, &train);
    unsigned long next_before = gsl_rng_get(rng);
    gsl_rng_set(rng, 5);
    for (int i = 0; i < 11; i++) task_sample(t, rng, &train);
    task_testset(t, 5, 40, 16, &after);
    cr_assert(batch_equal(&before, &after), "test set changed after training draws");
    cr_assert_eq(gsl_rng_get(rng), next_before, "task_testset consumed the training rng");
    batch_free(&before);
    batch_free(&after);
    batch_free(&train);
    gsl_rng_free(rng);
    task_free(t);
}

Test(task, bad_names_and_variants) {
    const struct { const char *name, *variant, *must_mention; } cases[] = {
        {"s7", "full", "s5, a5, s3"},
        {"", "full", "s5, a5, s3"},
        {"s5", "bogus", "full, swaps, swaps3"},
        {"s3", "", "full, swaps, swaps3"},
        {"a5", "swaps", "full, swaps3"},
    };
    for (int i = 0; i < 5; i++) {
        RunConfig c = make_cfg(cases[i].name, cases[i].variant);
        Err err = {{0}};
        Task *t = task_create(&c, &err);
        cr_expect_null(t, "task_create('%s','%s') should fail", cases[i].name, cases[i].variant);
        if (t) task_free(t);
        cr_expect(strstr(err.msg, cases[i].must_mention) != NULL, "'%s'/'%s': error '%s' lacks '%s'",
                  cases[i].name, cases[i].variant, err.msg, cases[i].must_mention);
    }
    Task *t = make_task("S5", "SWAPS"); /* case-insensitive */
    cr_expect_eq(task_vocab(t), 120);
    task_free(t);
}
