/* test_dfa.c -- DFA files (tasks/dfa.h) and the `dfa` task (tasks/dfa.c).
 *
 * The parser is checked against transition tables written out by hand in this file (the fixtures'
 * content), every malformed fixture against the file and line it must name; the task's labels are
 * recomputed for every position that counts by two independent routes: a walk over the hand-written
 * table, and the language's own definition (count of 1s, divisibility by 3 through the alternating-sum
 * rule, a search for "ab", the length, "only 1s"). Sampling: symbol frequencies, the balance of balanced
 * sampling and its uniformity within a class (every string of length 4 in each class of the mod-3 DFA),
 * its errors when a class is unreachable or too rare. Fixtures: tests/data/dfa_*.dfa.
 */
#include <criterion/criterion.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dfa.h"
#include "task.h"

#define DATA "tests/data/"

/* ---- the good fixtures, written out by hand ------------------------------------------------------------ */

typedef struct {
    const char *file;
    int nstates, nsym;
    const char *states[6], *syms[3];
    const char *start;
    const char *accept[4];
    const char *table[6][3]; /* table[state][symbol] = next state name (declaration order) */
    int (*lang)(const int *x, int n); /* the language's own definition on tokens */
} Good;

static int lang_parity(const int *x, int n) {
    int ones = 0;
    for (int i = 0; i < n; i++) ones += x[i] == 1;
    return ones % 2 == 0;
}
/* binary, most significant bit first: 2 = -1 (mod 3), so the value is the alternating sum of the bits
 * read from the least significant end */
static int lang_mod3(const int *x, int n) {
    int s = 0;
    for (int i = 0; i < n; i++) s += (n - 1 - i) % 2 ? -x[i] : x[i];
    return ((s % 3) + 3) % 3 == 0;
}
static int lang_ab(const int *x, int n) { /* c = 0, a = 1, b = 2 */
    for (int i = 0; i + 1 < n; i++)
        if (x[i] == 1 && x[i + 1] == 2) return 1;
    return 0;
}
static int lang_even_len(const int *x, int n) { return (void)x, n % 2 == 0; }
static int lang_all_ones(const int *x, int n) {
    for (int i = 0; i < n; i++)
        if (x[i] != 1) return 0;
    return 1;
}

static int lang_len3_y(const int *x, int n) { /* x = 0, y = 1 */
    int y = 0;
    for (int i = 0; i < n; i++) y |= x[i] == 1;
    return n % 3 == 0 && y;
}

static const Good GOOD[] = {
    {"dfa_parity.dfa", 2, 2, {"even", "odd"}, {"0", "1"}, "even", {"even"},
     {{"even", "odd"}, {"odd", "even"}}, lang_parity},
    {"dfa_mod3.dfa", 3, 2, {"r0", "r1", "r2"}, {"0", "1"}, "r0", {"r0"},
     {{"r0", "r1"}, {"r2", "r0"}, {"r1", "r2"}}, lang_mod3},
    {"dfa_ab.dfa", 4, 3, {"none", "saw_a", "found", "junk"}, {"c", "a", "b"}, "none", {"found"},
     {{"none", "saw_a", "none"}, {"none", "saw_a", "found"}, {"found", "found", "found"}, {"found", "junk", "none"}},
     lang_ab},
    {"dfa_even_len.dfa", 2, 2, {"e", "o"}, {"x", "y"}, "e", {"e"}, {{"o", "o"}, {"e", "e"}}, lang_even_len},
    {"dfa_all_ones.dfa", 2, 2, {"ok", "dead"}, {"0", "1"}, "ok", {"ok"}, {{"dead", "ok"}, {"dead", "dead"}},
     lang_all_ones},
    {"dfa_len3_y.dfa", 6, 2, {"m0", "m1", "m2", "y0", "y1", "y2"}, {"x", "y"}, "m0", {"y0"},
     {{"m1", "y1"}, {"m2", "y2"}, {"m0", "y0"}, {"y1", "y1"}, {"y2", "y2"}, {"y0", "y0"}}, lang_len3_y},
};
#define NGOOD ((int)(sizeof GOOD / sizeof GOOD[0]))

static int state_id(const Good *g, const char *name) {
    for (int i = 0; i < g->nstates; i++)
        if (!strcmp(g->states[i], name)) return i;
    cr_assert_fail("fixture table names unknown state %s", name);
    return -1;
}

/* acceptance of x[0..n-1] by walking the hand-written table */
static int walk(const Good *g, const int *x, int n) {
    int q = state_id(g, g->start);
    for (int i = 0; i < n; i++) q = state_id(g, g->table[q][x[i]]);
    for (int k = 0; k < 4 && g->accept[k]; k++)
        if (!strcmp(g->accept[k], g->states[q])) return 1;
    return 0;
}

static Task *make_dfa(const char *file, const char *variant, const char *sampling, const char *tries, Err *err) {
    char path[256];
    snprintf(path, sizeof path, "%s%s", strchr(file, '/') ? "" : DATA, file);
    const char *k[3] = {"dfa_file", "dfa_sampling", "dfa_max_tries"}, *v[3] = {path, sampling, tries};
    return task_create_named("dfa", variant, k, v, tries ? 3 : sampling ? 2 : 1, err);
}

static Task *make_ok(const char *file, const char *variant, const char *sampling, const char *tries) {
    Err err = {{0}};
    Task *t = make_dfa(file, variant, sampling, tries, &err);
    cr_assert_not_null(t, "dfa %s %s %s: %s", file, variant, sampling ? sampling : "", err.msg);
    return t;
}

/* ---- parsing -------------------------------------------------------------------------------------------- */

Test(dfa, good_fixtures_parse_to_the_written_tables) {
    for (int gi = 0; gi < NGOOD; gi++) {
        const Good *g = &GOOD[gi];
        char path[256];
        snprintf(path, sizeof path, DATA "%s", g->file);
        Dfa d;
        Err err = {{0}};
        cr_assert_eq(dfa_load(&d, path, &err), 0, "%s: %s", path, err.msg);
        cr_expect_eq(d.nstates, g->nstates, "%s", path);
        cr_expect_eq(d.nsym, g->nsym, "%s", path);
        for (int i = 0; i < g->nstates; i++) cr_expect_str_eq(d.state[i], g->states[i], "%s state %d", path, i);
        for (int a = 0; a < g->nsym; a++) cr_expect_str_eq(d.sym[a], g->syms[a], "%s symbol %d", path, a);
        cr_expect_str_eq(d.state[d.start], g->start);
        int nacc = 0;
        for (int k = 0; k < 4 && g->accept[k]; k++) {
            nacc++;
            cr_expect(d.accept[state_id(g, g->accept[k])], "%s: %s should accept", path, g->accept[k]);
        }
        cr_expect_eq(d.naccept, nacc);
        for (int q = 0; q < g->nstates; q++)
            for (int a = 0; a < g->nsym; a++)
                cr_expect_str_eq(d.state[dfa_next(&d, q, a)], g->table[q][a], "%s: %s on %s", path, g->states[q],
                                 g->syms[a]);
        dfa_free(&d);
    }
}

Test(dfa, crlf_lines_and_the_hash) {
    char p1[] = "/tmp/rwkvlab_dfa_XXXXXX", p2[] = "/tmp/rwkvlab_dfa_XXXXXX", p3[] = "/tmp/rwkvlab_dfa_XXXXXX";
    const char *body = "states: a b\r\nalphabet: x\r\nstart: a\r\naccept: b\r\na x -> b\r\nb x -> a\r\n";
    int fds[3] = {mkstemp(p1), mkstemp(p2), mkstemp(p3)};
    cr_assert(fds[0] >= 0 && fds[1] >= 0 && fds[2] >= 0);
    cr_assert(write(fds[0], body, strlen(body)) == (ssize_t)strlen(body));
    cr_assert(write(fds[1], body, strlen(body)) == (ssize_t)strlen(body));
    cr_assert(write(fds[2], body, strlen(body)) == (ssize_t)strlen(body) && write(fds[2], "# more\n", 7) == 7);
    for (int i = 0; i < 3; i++) close(fds[i]);
    Dfa a, b, c;
    Err err = {{0}};
    cr_assert_eq(dfa_load(&a, p1, &err), 0, "CRLF file: %s", err.msg);
    cr_assert_eq(dfa_load(&b, p2, &err), 0, "%s", err.msg);
    cr_assert_eq(dfa_load(&c, p3, &err), 0, "%s", err.msg);
    cr_expect(a.nstates == 2 && a.nsym == 1 && dfa_next(&a, 0, 0) == 1 && dfa_next(&a, 1, 0) == 0);
    cr_expect(a.hash == b.hash, "the same bytes gave two hashes");
    cr_expect(a.hash != c.hash, "a changed file kept its hash");
    dfa_free(&a), dfa_free(&b), dfa_free(&c);
    unlink(p1), unlink(p2), unlink(p3);
}

typedef struct {
    const char *file;
    int line;
    const char *frag[2];
} BadFile;

static const BadFile BAD[] = {
    {"dfa_bad_missing_transition.dfa", 2, {"state 'odd' has no transition on symbol '1'", "add a line 'odd 1 -> STATE'"}},
    {"dfa_bad_unknown_symbol.dfa", 7, {"symbol '2' is not declared", "alphabet: 0, 1"}},
    {"dfa_bad_unknown_state.dfa", 8, {"target state 'evn' is not declared", "states: even, odd"}},
    {"dfa_bad_duplicate_transition.dfa", 9, {"second transition for state 'even' on symbol '1'", "line 6"}},
    {"dfa_bad_unreachable_accept.dfa", 5, {"accepting state 'goal' is not reachable", "start state 's'"}},
    {"dfa_bad_no_accept.dfa", 4, {"no accepting state", "accepts nothing"}},
    {"dfa_bad_empty_alphabet.dfa", 2, {"empty alphabet", NULL}},
    {"dfa_bad_no_states.dfa", 1, {"no states", NULL}},
    {"dfa_bad_empty.dfa", 2, {"end of file without a 'states:' line", NULL}},
    {"dfa_bad_syntax.dfa", 5, {"cannot read 's a s'", "FROM SYMBOL -> TO"}},
    {"dfa_bad_dup_state.dfa", 1, {"state 's' is listed twice", NULL}},
    {"dfa_bad_twice.dfa", 3, {"second 'states:' line", "line 1"}},
    {"dfa_bad_start_unknown.dfa", 3, {"start state 'q' is not declared", NULL}},
    {"dfa_bad_two_starts.dfa", 3, {"'start:' names 2 states", "exactly one"}},
    {"dfa_bad_keyword.dfa", 3, {"unknown declaration 'initial:'", "states:, alphabet:, start:, accept:"}},
    {"dfa_bad_accept_unknown.dfa", 4, {"accepting state 't' is not declared", NULL}},
};

Test(dfa, malformed_files_name_file_and_line) {
    for (size_t i = 0; i < sizeof BAD / sizeof *BAD; i++) {
        const BadFile *b = &BAD[i];
        char path[256], where[300];
        snprintf(path, sizeof path, DATA "%s", b->file);
        snprintf(where, sizeof where, "%s:%d: ", path, b->line);
        Dfa d;
        Err err = {{0}};
        cr_expect_eq(dfa_load(&d, path, &err), -1, "%s was accepted", path);
        cr_expect(strstr(err.msg, where), "%s: the message should start with '%s': %s", b->file, where, err.msg);
        for (int k = 0; k < 2 && b->frag[k]; k++)
            cr_expect(strstr(err.msg, b->frag[k]), "%s: the message should say '%s': %s", b->file, b->frag[k], err.msg);
        cr_expect(d.nstates == 0 && d.next == NULL, "%s: d not zeroed on error", b->file);
        /* the same error through the task (what `rwkvlab config` and `train` print) */
        Err e2 = {{0}};
        Task *t = make_dfa(b->file, "prefix", NULL, NULL, &e2);
        cr_expect(t == NULL && strstr(e2.msg, where), "%s through the task: %s", b->file, e2.msg);
        task_free(t);
    }
}

/* names: too long, "->", ':' inside, control characters */
Test(dfa, bad_names_and_bytes) {
    const struct {
        const char *body, *frag;
        int line;
    } cases[] = {
        {"states: a\nalphabet: x\nstart: a\naccept: a\na x -> aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", "longer than 31", 5},
        {"states: a ->\nalphabet: x\nstart: a\naccept: a\na x -> a\n", "'->' cannot be a state name", 1},
        {"states: a\nalphabet: x\nstart: a\naccept: a\na x:y -> a\n", "unknown declaration", 5},
        {"states: a\nalphabet: x\x01\nstart: a\naccept: a\na x -> a\n", "control character", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char p[] = "/tmp/rwkvlab_dfa_XXXXXX";
        int fd = mkstemp(p);
        cr_assert(fd >= 0);
        cr_assert(write(fd, cases[i].body, strlen(cases[i].body)) == (ssize_t)strlen(cases[i].body));
        close(fd);
        Dfa d;
        Err err = {{0}};
        char where[64];
        snprintf(where, sizeof where, "%s:%d: ", p, cases[i].line);
        cr_expect_eq(dfa_load(&d, p, &err), -1, "case %zu accepted", i);
        cr_expect(strstr(err.msg, where) && strstr(err.msg, cases[i].frag), "case %zu: %s", i, err.msg);
        unlink(p);
    }
    Dfa d;
    Err err = {{0}};
    cr_expect_eq(dfa_load(&d, DATA "no_such_file.dfa", &err), -1);
    cr_expect(strstr(err.msg, "no_such_file.dfa") && strstr(err.msg, "cannot open"), "%s", err.msg);
}

/* ---- the task: every label by brute force -------------------------------------------------------------- */

static const char *const VARIANTS[] = {"prefix", "last", "final"};

static void check_seq(const Good *g, int vi, int T, const int *in, const int *tg, const unsigned char *mk) {
    const int n = vi == 2 ? T - 1 : T;
    for (int t = 0; t < n; t++) cr_assert(in[t] >= 0 && in[t] < g->nsym, "%s: input %d at %d", g->file, in[t], t);
    if (vi == 2) cr_assert_eq(in[T - 1], g->nsym, "%s final: position T-1 = %d is not the blank %d", g->file, in[T - 1],
                              g->nsym);
    for (int t = 0; t < T; t++) {
        const int scored = vi == 0 ? 1 : t == T - 1;
        cr_assert_eq(mk[t], scored, "%s/%s T=%d: mask[%d] = %d", g->file, VARIANTS[vi], T, t, mk[t]);
        if (!scored) {
            cr_assert_eq(tg[t], 0);
            continue;
        }
        const int plen = vi == 0 ? t + 1 : n;
        const int a = walk(g, in, plen), b = g->lang(in, plen);
        cr_assert_eq(a, b, "%s: the table walk and the language disagree (fixture or test is wrong)", g->file);
        cr_assert_eq(tg[t], a, "%s/%s T=%d: label at %d is %d, brute force %d", g->file, VARIANTS[vi], T, t, tg[t], a);
    }
}

Test(dfa, every_label_recomputed_by_brute_force, .timeout = 120) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 4242);
    long checked = 0;
    for (int gi = 0; gi < NGOOD; gi++)
        for (int vi = 0; vi < 3; vi++)
            for (int bal = 0; bal < 2; bal++) {
                const Good *g = &GOOD[gi];
                Task *t = make_ok(g->file, VARIANTS[vi], bal ? "balanced" : "uniform", NULL);
                cr_expect_eq(task_vocab(t), g->nsym + 1);
                for (int T = 1; T <= 41; T++) {
                    const int n = vi == 2 ? T - 1 : T;
                    Err e;
                    if (bal && task_check_len(t, T, &e)) continue;          /* one class only (next test) */
                    /* a class of probability 2^-n (all 1s; x^n for len3_y): too rare for 10000 tries */
                    if (bal && (g->lang == lang_all_ones || g->lang == lang_len3_y) && n > 6) continue;
                    Batch b;
                    batch_alloc(&b, 30, T);
                    task_sample(t, rng, &b);
                    for (int i = 0; i < b.B; i++, checked++)
                        check_seq(g, vi, T, b.inputs + (size_t)i * T, b.targets + (size_t)i * T, b.mask + (size_t)i * T);
                    batch_free(&b);
                    task_testset(t, 3, T, 20, &b);
                    for (int i = 0; i < b.B; i++, checked++)
                        check_seq(g, vi, T, b.inputs + (size_t)i * T, b.targets + (size_t)i * T, b.mask + (size_t)i * T);
                    batch_free(&b);
                }
                task_free(t);
            }
    cr_expect_gt(checked, 30000, "only %ld sequences", checked);
    gsl_rng_free(rng);
}

/* ---- sampling ------------------------------------------------------------------------------------------------ */

static void expect_binomial(long count, long N, double p, const char *what) {
    double mu = N * p, sd = sqrt(N * p * (1 - p));
    cr_expect(fabs(count - mu) <= 5 * sd + 1, "%s: %ld of %ld, expected %.1f +- %.1f (5 sd)", what, count, N, mu, 5 * sd);
}

/* mod 3, length 4: accepted 0000 0011 0110 1001 1100 1111 (6 of 16) */
Test(dfa, uniform_and_balanced_sampling) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 77);
    const int N = 16000;
    for (int bal = 0; bal < 2; bal++) {
        Task *t = make_ok("dfa_mod3.dfa", "last", bal ? "balanced" : "uniform", NULL);
        Batch b;
        batch_alloc(&b, N, 4);
        task_sample(t, rng, &b);
        long per[16] = {0}, acc = 0, ones = 0;
        for (int i = 0; i < N; i++) {
            const int *x = b.inputs + (size_t)i * 4;
            int v = x[0] * 8 + x[1] * 4 + x[2] * 2 + x[3];
            per[v]++;
            acc += v % 3 == 0;
            ones += x[0] + x[1] + x[2] + x[3];
            cr_assert_eq(b.targets[(size_t)i * 4 + 3], v % 3 == 0);
        }
        if (!bal) {
            expect_binomial(acc, N, 6.0 / 16, "uniform: accepted");
            expect_binomial(ones, 4L * N, 0.5, "uniform: ones");
            for (int v = 0; v < 16; v++) expect_binomial(per[v], N, 1.0 / 16, "uniform: one string");
        } else {
            expect_binomial(acc, N, 0.5, "balanced: accepted");
            for (int v = 0; v < 16; v++) /* uniform within its class */
                expect_binomial(per[v], N, v % 3 == 0 ? 0.5 / 6 : 0.5 / 10, "balanced: one string");
        }
        batch_free(&b);
        task_free(t);
    }
    /* three symbols, uniform */
    Task *t = make_ok("dfa_ab.dfa", "prefix", "uniform", NULL);
    Batch b;
    batch_alloc(&b, 200, 60);
    task_sample(t, rng, &b);
    long cnt[3] = {0};
    for (int i = 0; i < 200 * 60; i++) cnt[b.inputs[i]]++;
    for (int a = 0; a < 3; a++) expect_binomial(cnt[a], 200 * 60, 1.0 / 3, "ab: symbol");
    batch_free(&b);
    task_free(t);
    gsl_rng_free(rng);
}

/* Balanced sampling at length T needs both classes among the strings of its input length: task_check_len
 * (what `rwkvlab config` asks for every length) against every string of lengths 0..10, for each fixture
 * and variant; uniform sampling takes every length. */
Test(dfa, check_len_matches_enumeration) {
    for (int gi = 0; gi < NGOOD; gi++) {
        const Good *g = &GOOD[gi];
        int both[11];
        for (int n = 0; n <= 10; n++) {
            long total = 1;
            for (int i = 0; i < n; i++) total *= g->nsym;
            int x[10], acc = 0, rej = 0;
            for (long code = 0; code < total; code++) {
                long c = code;
                for (int i = 0; i < n; i++) x[i] = (int)(c % g->nsym), c /= g->nsym;
                if (g->lang(x, n)) acc = 1;
                else rej = 1;
            }
            both[n] = acc && rej;
        }
        for (int vi = 0; vi < 3; vi++) {
            Task *bt = make_ok(g->file, VARIANTS[vi], "balanced", NULL), *ut = make_ok(g->file, VARIANTS[vi], NULL, NULL);
            for (int T = 1; T <= 10; T++) {
                const int n = vi == 2 ? T - 1 : T;
                Err e = {{0}};
                int ok = task_check_len(bt, T, &e) == 0;
                cr_expect_eq(ok, both[n], "%s %s T=%d: check_len says %d, enumeration %d (%s)", g->file, VARIANTS[vi], T,
                             ok, both[n], e.msg);
                if (!ok) cr_expect(strstr(e.msg, "dfa_sampling = balanced") && strstr(e.msg, g->file), "%s", e.msg);
                cr_expect_eq(task_check_len(ut, T, &e), 0, "uniform sampling refused T = %d", T);
            }
            task_free(bt), task_free(ut);
        }
    }
}

/* beyond the lengths computed at creation (4096) the repeating pattern decides: period 3 and 2 here */
Test(dfa, check_len_extrapolates_the_period) {
    Task *t = make_ok("dfa_len3_y.dfa", "prefix", "balanced", NULL);
    Err e;
    const int Ts[] = {3, 4, 5, 6, 4095, 4096, 4097, 4098, 99999, 100000, 100001, 1000002};
    for (size_t i = 0; i < sizeof Ts / sizeof *Ts; i++)
        cr_expect_eq(task_check_len(t, Ts[i], &e) == 0, Ts[i] % 3 == 0, "len3_y T=%d", Ts[i]);
    task_free(t);
    t = make_ok("dfa_even_len.dfa", "last", "balanced", NULL);
    for (int T = 1; T < 8; T++) {
        cr_expect_neq(task_check_len(t, T, &e), 0, "even_len T=%d", T);
        cr_expect(strstr(e.msg, T % 2 ? "is accepted" : "is rejected"), "even_len T=%d names the wrong class: %s", T,
                  e.msg);
    }
    cr_expect_neq(task_check_len(t, 1000001, &e), 0);
    task_free(t);
    t = make_ok("dfa_mod3.dfa", "final", "balanced", NULL);
    cr_expect_neq(task_check_len(t, 1, &e), 0, "final T=1 is the empty string: accepted only");
    cr_expect(strstr(e.msg, "no string of length 0") && strstr(e.msg, "rejected"), "%s", e.msg);
    cr_expect_eq(task_check_len(t, 2, &e), 0);
    cr_expect_eq(task_check_len(t, 777777, &e), 0);
    task_free(t);
}

static void fill_once(const char *file, const char *variant, const char *tries, int T, int B) {
    Task *t = make_ok(file, variant, "balanced", tries);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 1);
    Batch b;
    batch_alloc(&b, B, T);
    task_sample(t, rng, &b);
}
/* 2^-30: not found in 5 tries */
Test(dfa, balanced_rare_class_exits, .exit_code = 1) { fill_once("dfa_all_ones.dfa", "prefix", "5", 30, 50); }
/* the control: the same rare class at a length where 10000 tries suffice */
Test(dfa, balanced_rare_class_found_with_enough_tries) {
    fill_once("dfa_all_ones.dfa", "prefix", "10000", 5, 200);
}

/* ---- task keys, describe, determinism ------------------------------------------------------------------- */

Test(dfa, bad_keys_and_values) {
    Err err = {{0}};
    cr_expect_null(make_dfa("dfa_accept_all.dfa", "prefix", "balanced", NULL, &err));
    cr_expect(strstr(err.msg, "accepts every string") && strstr(err.msg, "dfa_sampling = uniform"), "%s", err.msg);
    Task *ok = make_dfa("dfa_accept_all.dfa", "prefix", "uniform", NULL, &err); /* uniform is fine */
    cr_expect_not_null(ok, "%s", err.msg);
    task_free(ok);
    cr_expect_null(make_dfa("dfa_mod3.dfa", "prefix", "stratified", NULL, &err));
    cr_expect(strstr(err.msg, "dfa_sampling = 'stratified'") && strstr(err.msg, "uniform, balanced"), "%s", err.msg);
    const char *tries[] = {"0", "abc", "1000000000", "-5"};
    for (int i = 0; i < 4; i++) {
        cr_expect_null(make_dfa("dfa_mod3.dfa", "prefix", "balanced", tries[i], &err), "tries %s", tries[i]);
        cr_expect(strstr(err.msg, "dfa_max_tries") && strstr(err.msg, tries[i]), "%s", err.msg);
    }
    cr_expect_null(task_create_named("dfa", "prefix", NULL, NULL, 0, &err));
    cr_expect(strstr(err.msg, "dfa_file = PATH"), "%s", err.msg);
    const char *k[2] = {"dfa_file", "operators"}, *v[2] = {DATA "dfa_mod3.dfa", "+-"};
    cr_expect_null(task_create_named("dfa", "prefix", k, v, 2, &err));
    cr_expect(strstr(err.msg, "operators") && strstr(err.msg, "dfa_file, dfa_sampling, dfa_max_tries"), "%s", err.msg);
    cr_expect_null(make_dfa("dfa_mod3.dfa", "swaps", NULL, NULL, &err));
    cr_expect(strstr(err.msg, "prefix, last, final"), "%s", err.msg);
}

Test(dfa, describe_vocab_chance_tokens) {
    Task *t = make_ok("dfa_ab.dfa", "default", NULL, NULL);
    const char *d = task_describe(t);
    cr_expect(strstr(d, DATA "dfa_ab.dfa") && strstr(d, "fnv1a64") && strstr(d, "variant prefix") &&
                  strstr(d, "uniform strings") && strstr(d, "V = 4") && strstr(d, "4 states"),
              "%s", d);
    cr_expect_eq(task_vocab(t), 4);
    cr_expect(task_chance(t) == 0.5);
    char buf[40];
    const char *names[] = {"c", "a", "b", "_"};
    for (int i = 0; i < 4; i++) {
        task_token_text(t, i, buf, sizeof buf);
        cr_expect_str_eq(buf, names[i]);
    }
    task_free(t);
    t = make_ok("dfa_mod3.dfa", "final", "balanced", "77");
    cr_expect(strstr(task_describe(t), "balanced") && strstr(task_describe(t), "77 tries") &&
                  strstr(task_describe(t), "variant final"),
              "%s", task_describe(t));
    task_free(t);
}

Test(dfa, deterministic_for_a_seed) {
    Task *t = make_ok("dfa_mod3.dfa", "prefix", "balanced", NULL);
    Batch a, b;
    task_testset(t, 9, 25, 40, &a);
    task_testset(t, 9, 25, 10, &b);
    cr_expect(!memcmp(a.inputs, b.inputs, (size_t)10 * 25 * sizeof(int)), "test set prefix property");
    batch_free(&a), batch_free(&b);
    gsl_rng *r1 = gsl_rng_alloc(gsl_rng_mt19937), *r2 = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r1, 5), gsl_rng_set(r2, 5);
    batch_alloc(&a, 20, 25), batch_alloc(&b, 20, 25);
    task_sample(t, r1, &a), task_sample(t, r2, &b);
    cr_expect(!memcmp(a.inputs, b.inputs, (size_t)20 * 25 * sizeof(int)) &&
              !memcmp(a.targets, b.targets, (size_t)20 * 25 * sizeof(int)));
    batch_free(&a), batch_free(&b);
    gsl_rng_free(r1), gsl_rng_free(r2);
    task_free(t);
}
