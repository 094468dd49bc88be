/* test_tasks.c -- permutation groups (group.h, direct products included) and the group word-problem task
 * (task.h): variants full, swaps, swaps3, k_tokens.
 *
 * Oracles are independent of the tables under test: permutation arrays composed by hand, linear search
 * instead of group_find, inversion-count parity instead of cycle parity, and a brute-force prefix
 * product in place of the generator's running product; products are also checked through their
 * factors (each factor's permutation arrays composed separately). Expected counts are mathematical facts
 * (n!, n!/2, 1 + C(5,2) = 11, 1 + 10 + 2*C(5,3) = 31, |Z(A4 x Z5)| = 5, ...).
 */
#include <criterion/criterion.h>
#include <gsl/gsl_rng.h>
#include <stdlib.h>
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
        {"s7", "full", "s5|a5|a4xz5|z60|s3"},
        {"", "full", "s5|a5|a4xz5|z60|s3"},
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

/* ---- direct products ------------------------------------------------------------------------------ */

static void make_named(Group *g, const char *name) {
    Err err = {{0}};
    cr_assert_eq(group_init_by_name(g, name, &err), 0, "%s failed to build: %s", name, err.msg);
}

static const struct { const char *prod, *G, *H, *name; } PRODUCTS[] = {
    {"a4xz5", "A4", "Z5", "A4xZ5"}, {"S3xZ2", "S3", "Z2", "S3xZ2"}, {"z2xz3", "Z2", "Z3", "Z2xZ3"},
    {"s3xa4", "S3", "A4", "S3xA4"}, {"s3xz2xz2", "S3", "Z2xZ2", "S3xZ2xZ2"},
};
#define NPRODUCTS ((int)(sizeof PRODUCTS / sizeof PRODUCTS[0]))

/* element (a, b) has index a*|H| + b and permutation (perm_G(a), perm_H(b) + nG) */
Test(group, product_element_order_and_action) {
    for (int c = 0; c < NPRODUCTS; c++) {
        Group P, G, H;
        make_named(&P, PRODUCTS[c].prod), make_named(&G, PRODUCTS[c].G), make_named(&H, PRODUCTS[c].H);
        cr_assert_eq(P.order, G.order * H.order, "%s order", P.name);
        cr_assert_eq(P.n, G.n + H.n, "%s degree", P.name);
        cr_expect_str_eq(P.name, PRODUCTS[c].name);
        for (int e = 0; e < P.order; e++) {
            int a = e / H.order, b = e % H.order;
            const unsigned char *p = group_perm(&P, e);
            for (int x = 0; x < G.n; x++) cr_assert_eq(p[x], group_perm(&G, a)[x], "%s elem %d point %d", P.name, e, x);
            for (int x = 0; x < H.n; x++)
                cr_assert_eq(p[G.n + x], group_perm(&H, b)[x] + G.n, "%s elem %d point %d", P.name, e, G.n + x);
        }
        group_free(&P), group_free(&G), group_free(&H);
    }
}

/* (a, b)·(a', b') = (a·a', b·b'), each factor composed from its own permutation arrays ("a then a'") */
Test(group, product_composes_factorwise) {
    for (int c = 0; c < NPRODUCTS; c++) {
        Group P, G, H;
        make_named(&P, PRODUCTS[c].prod), make_named(&G, PRODUCTS[c].G), make_named(&H, PRODUCTS[c].H);
        unsigned char cg[16], ch[16];
        for (int e1 = 0; e1 < P.order; e1++) {
            int a1 = e1 / H.order, b1 = e1 % H.order;
            for (int e2 = 0; e2 < P.order; e2++) {
                int a2 = e2 / H.order, b2 = e2 % H.order;
                ref_compose(group_perm(&G, a1), group_perm(&G, a2), G.n, cg);
                ref_compose(group_perm(&H, b1), group_perm(&H, b2), H.n, ch);
                int want = ref_find(&G, cg) * H.order + ref_find(&H, ch);
                cr_assert_eq(group_mul(&P, e1, e2), want, "%s: (%d,%d)*(%d,%d) = %d, factor-wise %d", P.name, a1, b1, a2,
                             b2, group_mul(&P, e1, e2), want);
            }
            cr_assert_eq(group_mul(&P, e1, group_inv(&P, e1)), 0, "%s: inverse of %d", P.name, e1);
        }
        group_free(&P), group_free(&G), group_free(&H);
    }
}

/* order of element e from powers of its permutation array */
static int ref_elem_order(const Group *g, int e) {
    unsigned char cur[256], next[256];
    memcpy(cur, group_perm(g, e), (size_t)g->n);
    int k = 1;
    while (!ref_is_identity(cur, g->n)) {
        ref_compose(cur, group_perm(g, e), g->n, next);
        memcpy(cur, next, (size_t)g->n);
        k++;
    }
    return k;
}

static int ref_center_size(const Group *g) {
    int z = 0;
    unsigned char ab[256], ba[256];
    for (int a = 0; a < g->order; a++) {
        int central = 1;
        for (int b = 0; b < g->order && central; b++) {
            ref_compose(group_perm(g, a), group_perm(g, b), g->n, ab);
            ref_compose(group_perm(g, b), group_perm(g, a), g->n, ba);
            central = memcmp(ab, ba, (size_t)g->n) == 0;
        }
        z += central;
    }
    return z;
}

/* The three groups of order 60 are told apart by facts about them: centre |Z(A4xZ5)| = 5 (Z5), |Z(A5)| = 1,
 * Z60 abelian; elements of order 2: A4xZ5 3 (double transpositions), A5 15, Z60 1; Z2xZ3 is cyclic. */
Test(group, product_structure_order_60) {
    const struct { const char *name; int center, involutions, max_order; } cases[] = {
        {"a4xz5", 5, 3, 15}, {"a5", 1, 15, 5}, {"z60", 60, 1, 60}, {"z2xz3", 6, 1, 6},
    };
    for (int c = 0; c < 4; c++) {
        Group g;
        make_named(&g, cases[c].name);
        int inv2 = 0, maxo = 0;
        for (int e = 0; e < g.order; e++) {
            int o = ref_elem_order(&g, e);
            inv2 += o == 2;
            if (o > maxo) maxo = o;
        }
        cr_expect_eq(ref_center_size(&g), cases[c].center, "%s centre", g.name);
        cr_expect_eq(inv2, cases[c].involutions, "%s elements of order 2", g.name);
        cr_expect_eq(maxo, cases[c].max_order, "%s largest element order", g.name);
        group_free(&g);
    }
}

Test(group, product_bad_names) {
    const struct { const char *name, *must; } bad[] = {
        {"a4x", "unknown group"},  {"xz5", "unknown group"},       {"a4xq5", "unknown group"},
        {"a4xz5x", "unknown group"}, {"a4x-z5", "unknown group"},  {"s6xs6", "1440"},
        {"s9xz2", "S_9"},           {"z200xz100", "too large"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Group g;
        Err err = {{0}};
        cr_expect_neq(group_init_by_name(&g, bad[i].name, &err), 0, "'%s' should be rejected", bad[i].name);
        cr_expect(strstr(err.msg, bad[i].must) != NULL, "'%s': '%s' lacks '%s'", bad[i].name, err.msg, bad[i].must);
        cr_expect_null(g.mul);
    }
}

/* ---- word problems on more groups, and k_tokens ------------------------------------------------------ */

static Task *make_task_k(const char *name, const char *variant, const char *k) {
    Err err = {{0}};
    const char *keys[1] = {"k"}, *vals[1] = {k};
    Task *t = task_create_named(name, variant, keys, vals, k ? 1 : 0, &err);
    cr_assert_not_null(t, "%s/%s k=%s: %s", name, variant, k ? k : "-", err.msg);
    return t;
}

/* Prefix products by composing g's permutation arrays, for blocks of k (k = 1: plain); no-op tokens
 * (= order) only inside blocks; mask exactly at the last token of each complete block. */
static void check_labels_blocks(const Group *g, int k, const Batch *b) {
    const int nop = g->order;
    for (int i = 0; i < b->B; i++) {
        unsigned char cur[256], next[256];
        for (int x = 0; x < g->n; x++) cur[x] = (unsigned char)x;
        for (int s = 0; s < b->T; s++) {
            size_t j = (size_t)i * b->T + s;
            int e = b->inputs[j];
            if (s % k) {
                cr_assert_eq(e, nop, "%s k=%d: position %d holds %d, expected the no-op %d", g->name, k, s, e, nop);
            } else {
                cr_assert(e >= 0 && e < g->order, "%s: position %d holds %d, not an element", g->name, s, e);
                ref_compose(cur, group_perm(g, e), g->n, next);
                memcpy(cur, next, (size_t)g->n);
            }
            int want = ref_find(g, cur);
            cr_assert_eq(b->targets[j], want, "%s k=%d: seq %d pos %d label %d, brute force %d", g->name, k, i, s,
                         b->targets[j], want);
            int scored = s % k == k - 1 && (s / k + 1) * k <= b->T;
            cr_assert_eq(b->mask[j], scored, "%s k=%d: mask at %d is %d", g->name, k, s, b->mask[j]);
        }
    }
}

/* Products through their factors: token e = (a, b) decoded by the documented index rule, each factor's
 * prefix composed separately. */
static void check_labels_factors(const char *Gn, const char *Hn, const Batch *b) {
    Group G, H;
    make_named(&G, Gn), make_named(&H, Hn);
    for (int i = 0; i < b->B; i++) {
        unsigned char cg[256], ch[256], nx[256];
        for (int x = 0; x < G.n; x++) cg[x] = (unsigned char)x;
        for (int x = 0; x < H.n; x++) ch[x] = (unsigned char)x;
        for (int s = 0; s < b->T; s++) {
            size_t j = (size_t)i * b->T + s;
            int e = b->inputs[j];
            ref_compose(cg, group_perm(&G, e / H.order), G.n, nx), memcpy(cg, nx, (size_t)G.n);
            ref_compose(ch, group_perm(&H, e % H.order), H.n, nx), memcpy(ch, nx, (size_t)H.n);
            int want = ref_find(&G, cg) * H.order + ref_find(&H, ch);
            cr_assert_eq(b->targets[j], want, "%sx%s: seq %d pos %d label %d, factor-wise %d", Gn, Hn, i, s,
                         b->targets[j], want);
        }
    }
    group_free(&G), group_free(&H);
}

Test(task, labels_bruteforce_more_groups) {
    const struct { const char *name, *variant; int elems; } cases[] = {
        {"a4xz5", "full", 60}, {"z60", "full", 60}, {"a4xz5", "swaps3", 9}, {"s3xz2", "swaps", 5},
        {"s4", "full", 24},    {"a4", "full", 12},  {"z7", "full", 7},       {"z2", "swaps", 2},
    };
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 77);
    long seqs = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        Task *t = make_task(cases[c].name, cases[c].variant);
        Group g;
        make_named(&g, cases[c].name);
        cr_expect_eq(task_vocab(t), g.order);
        cr_expect_float_eq(task_chance(t), 1.0 / g.order, 1e-12);
        Batch b;
        batch_alloc(&b, 100, 64);
        char seen[720] = {0};
        int distinct = 0;
        for (int rep = 0; rep < 3; rep++) {
            task_sample(t, rng, &b);
            check_labels_blocks(&g, 1, &b);
            for (int j = 0; j < b.B * b.T; j++) distinct += !seen[b.inputs[j]], seen[b.inputs[j]] = 1;
            seqs += b.B;
        }
        cr_expect_eq(distinct, cases[c].elems, "%s/%s: %d distinct inputs", cases[c].name, cases[c].variant, distinct);
        batch_free(&b);
        task_testset(t, 3, 50, 64, &b);
        check_labels_blocks(&g, 1, &b);
        seqs += b.B;
        batch_free(&b);
        group_free(&g);
        task_free(t);
    }
    cr_assert_geq(seqs, 2000);
    gsl_rng_free(rng);
}

Test(task, product_labels_through_factors) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 78);
    const struct { const char *name, *variant, *G, *H; } cases[] = {
        {"a4xz5", "full", "A4", "Z5"}, {"a4xz5", "swaps3", "A4", "Z5"}, {"s3xz2", "full", "S3", "Z2"},
    };
    for (int c = 0; c < 3; c++) {
        Task *t = make_task(cases[c].name, cases[c].variant);
        Batch b;
        batch_alloc(&b, 500, 64);
        for (int rep = 0; rep < 2; rep++) {
            task_sample(t, rng, &b);
            check_labels_factors(cases[c].G, cases[c].H, &b);
        }
        batch_free(&b);
        task_testset(t, 4, 100, 100, &b);
        check_labels_factors(cases[c].G, cases[c].H, &b);
        batch_free(&b);
        task_free(t);
    }
    gsl_rng_free(rng);
}

Test(task, k_tokens_labels_mask_and_vocab) {
    const struct { const char *name, *k; int T; } cases[] = {
        {"s5", "2", 64}, {"a5", "3", 50}, {"a4xz5", "4", 50}, {"z60", "2", 33}, {"s3", "1", 40}, {"s5", NULL, 31},
    };
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 79);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        Task *t = make_task_k(cases[c].name, "k_tokens", cases[c].k);
        int k = cases[c].k ? atoi(cases[c].k) : 2; /* the documented default */
        Group g;
        make_named(&g, cases[c].name);
        cr_expect_eq(task_vocab(t), g.order + 1, "%s k_tokens: V = order + 1", cases[c].name);
        cr_expect_float_eq(task_chance(t), 1.0 / g.order, 1e-12);
        Batch b;
        batch_alloc(&b, 200, cases[c].T);
        char seen[721] = {0};
        int distinct = 0;
        for (int rep = 0; rep < 4; rep++) {
            task_sample(t, rng, &b);
            check_labels_blocks(&g, k, &b);
            for (int j = 0; j < b.B * b.T; j++)
                if (b.inputs[j] < g.order) distinct += !seen[b.inputs[j]], seen[b.inputs[j]] = 1;
        }
        /* elements uniform over the whole group: >= 3200 draws, P(one of 120 unseen) < 120 e^(-3200/120) ~ 3e-10 */
        cr_expect_eq(distinct, g.order, "%s k_tokens: %d distinct elements", cases[c].name, distinct);
        batch_free(&b);
        task_testset(t, 5, cases[c].T, 50, &b);
        check_labels_blocks(&g, k, &b);
        batch_free(&b);
        char s[32];
        if (k > 1) {
            task_token_text(t, g.order, s, sizeof s);
            cr_expect_str_eq(s, "_");
        }
        cr_expect(strstr(task_describe(t), "k_tokens") != NULL, "%s", task_describe(t));
        group_free(&g);
        task_free(t);
    }
    gsl_rng_free(rng);
}

Test(task, k_tokens_bad_keys_and_lengths) {
    const struct { const char *name, *variant, *k, *must; } bad[] = {
        {"s5", "k_tokens", "0", "k = '0'"},     {"s5", "k_tokens", "257", "k = '257'"},
        {"s5", "k_tokens", "two", "k = 'two'"}, {"s5", "full", "3", "k_tokens only"},
        {"s5", "swaps", "4", "k_tokens only"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Err err = {{0}};
        const char *keys[1] = {"k"}, *vals[1] = {bad[i].k};
        Task *t = task_create_named(bad[i].name, bad[i].variant, keys, vals, 1, &err);
        cr_expect_null(t, "case %zu should fail", i);
        if (t) task_free(t);
        cr_expect(strstr(err.msg, bad[i].must) != NULL, "case %zu: '%s' lacks '%s'", i, err.msg, bad[i].must);
    }
    Task *t = make_task_k("s5", "k_tokens", "4");
    Err err = {{0}};
    cr_expect_neq(task_check_len(t, 3, &err), 0);
    cr_expect(strstr(err.msg, ">= 4") != NULL, "%s", err.msg);
    cr_expect_eq(task_check_len(t, 4, &err), 0);
    cr_expect_eq(task_check_len(t, 7, &err), 0); /* a trailing partial block is allowed (and not scored) */
    task_free(t);
    t = make_task("s5", "full"); /* other variants: any length */
    cr_expect_eq(task_check_len(t, 1, &err), 0);
    task_free(t);
    /* through config validation */
    RunConfig c = make_cfg("s5", "k_tokens");
    config_defaults(&c);
    snprintf(c.experiment.name, sizeof c.experiment.name, "t");
    snprintf(c.task.name, sizeof c.task.name, "s5");
    snprintf(c.task.variant, sizeof c.task.variant, "k_tokens");
    snprintf(c.task.param_key[0], sizeof c.task.param_key[0], "k");
    snprintf(c.task.param_val[0], sizeof c.task.param_val[0], "40");
    c.task.nparams = 1;
    c.task.train_len = 64;
    c.task.test_lens[0] = 64, c.task.test_lens[1] = 32, c.task.ntest_lens = 2;
    cr_expect_neq(config_validate(&c, &err), 0);
    cr_expect(strstr(err.msg, "task.test_lens lists 32") && strstr(err.msg, ">= 40"), "%s", err.msg);
}

Test(task, variants_that_are_only_the_identity) {
    const struct { const char *name, *variant, *allowed; } bad[] = {
        {"z60", "swaps", "full, k_tokens"}, {"z60", "swaps3", "full, k_tokens"}, {"a4xz5", "swaps", "full, swaps3, k_tokens"},
        {"a5", "swaps", "full, swaps3, k_tokens"},
    };
    for (int i = 0; i < 4; i++) {
        RunConfig c = make_cfg(bad[i].name, bad[i].variant);
        Err err = {{0}};
        Task *t = task_create(&c, &err);
        cr_expect_null(t, "%s/%s should fail", bad[i].name, bad[i].variant);
        if (t) task_free(t);
        cr_expect(strstr(err.msg, bad[i].allowed) && strstr(err.msg, "only the identity"), "%s/%s: '%s'", bad[i].name,
                  bad[i].variant, err.msg);
    }
}

Test(task, names_describe_and_rendering) {
    const char *names = task_names();
    cr_expect(strstr(names, "s5|a5|a4xz5|z60|s3") != NULL, "%s", names);
    Task *t = make_task("A4xZ5", "full");
    cr_expect(strstr(task_describe(t), "A4xZ5 (order 60)") != NULL, "%s", task_describe(t));
    char s[64];
    task_token_text(t, 0, s, sizeof s);
    cr_expect_str_eq(s, "(0 1 2 3 4 5 6 7 8)");
    task_token_text(t, 1, s, sizeof s); /* (identity of A4, rotation by 1 of Z5) */
    cr_expect_str_eq(s, "(0 1 2 3 5 6 7 8 4)");
    task_free(t);
    t = make_task("z60", "full");
    task_token_text(t, 17, s, sizeof s);
    cr_expect_str_eq(s, "+17");
    task_free(t);
}
