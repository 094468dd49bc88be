/* test_regular.c -- the regular-language tasks (tasks/regular.c) and their CLI smoke runs.
 *
 * Every label is recomputed from the inputs by routines of this file that share nothing with the
 * generator: parity by counting ones, even_pairs by counting changes (and checked against first != last),
 * cycle_nav by walking a position with explicit moves, mod_arith by two evaluators (a recursive-descent
 * parser with precedence, and a literal "sum of signed products" reading of Delétang's rule),
 * mod_arith_brackets by the parser plus a checker of the stated grammar. The positions that count, the
 * blank, the odd-length rule, the token ranges, the operator sets, the sampling scheme of the bracketed
 * expressions and the chance levels are checked against the documentation in regular.c; thousands of
 * sequences per task and variant, from task_sample and from task_testset. Then `rwkvlab train` and
 * `rwkvlab config` through the binary (RWKVLAB_BIN).
 */
#include <criterion/criterion.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "task.h"
#include "testutil.h"

/* the token layout documented in regular.c (what these tests pin) */
enum { PLUS = 5, MINUS = 6, TIMES = 7, LPAR = 8, RPAR = 9 };

typedef struct {
    const char *name;
    int V, blank, nclass;
    int arith; /* 1 = mod_arith, 2 = mod_arith_brackets */
} Spec;
static const Spec SPECS[] = {
    {"parity", 3, 2, 2, 0},
    {"even_pairs", 3, 2, 2, 0},
    {"cycle_nav", 5, 3, 5, 0},
    {"mod_arith", 9, 8, 5, 1},
    {"mod_arith_brackets", 11, 10, 5, 2},
};
#define NSPECS ((int)(sizeof SPECS / sizeof SPECS[0]))
static const char *const VARIANTS[] = {"final", "last", "prefix"};

static Task *make(const char *name, const char *variant, const char *ops) {
    Err err = {{0}};
    const char *k[1] = {"operators"}, *v[1] = {ops};
    Task *t = task_create_named(name, variant, k, v, ops ? 1 : 0, &err);
    cr_assert_not_null(t, "task %s/%s (operators %s) failed: %s", name, variant, ops ? ops : "-", err.msg);
    return t;
}

static const char *try_make(const char *name, const char *variant, const char *key, const char *val) {
    static Err err;
    memset(&err, 0, sizeof err);
    const char *k[1] = {key}, *v[1] = {val};
    Task *t = task_create_named(name, variant, k, v, key ? 1 : 0, &err);
    if (t) {
        task_free(t);
        return NULL;
    }
    return err.msg;
}

/* ---- independent label routines --------------------------------------------------------------------- */

static int mod5(long v) {
    long r = v % 5;
    return (int)(r < 0 ? r + 5 : r);
}
static int is_digit(int t) { return t >= 0 && t <= 4; }
static int is_op(int t) { return t == PLUS || t == MINUS || t == TIMES; }

/* recursive descent: sum := prod (('+'|'-') prod)*, prod := unary ('*' unary)*,
 * unary := '-' unary | digit | '(' sum ')' */
typedef struct {
    const int *tok;
    int n, pos, ok;
} Ev;
static long ev_sum(Ev *e);
static long ev_unary(Ev *e) {
    if (e->pos >= e->n) return e->ok = 0, 0;
    int t = e->tok[e->pos];
    if (t == MINUS) {
        e->pos++;
        return mod5(-ev_unary(e));
    }
    if (is_digit(t)) return e->pos++, t;
    if (t == LPAR) {
        e->pos++;
        long v = ev_sum(e);
        if (e->pos >= e->n || e->tok[e->pos] != RPAR) return e->ok = 0, 0;
        e->pos++;
        return v;
    }
    return e->ok = 0, 0;
}
static long ev_prod(Ev *e) {
    long v = ev_unary(e);
    while (e->ok && e->pos < e->n && e->tok[e->pos] == TIMES) {
        e->pos++;
        v = mod5(v * ev_unary(e));
    }
    return v;
}
static long ev_sum(Ev *e) {
    long v = ev_prod(e);
    while (e->ok && e->pos < e->n && (e->tok[e->pos] == PLUS || e->tok[e->pos] == MINUS)) {
        int op = e->tok[e->pos++];
        long w = ev_prod(e);
        v = mod5(op == PLUS ? v + w : v - w);
    }
    return v;
}
/* value of tok[0..n-1] as one complete expression; -1 if it is not one */
static int parse_value(const int *tok, int n) {
    Ev e = {tok, n, 0, 1};
    long v = ev_sum(&e);
    return e.ok && e.pos == n ? (int)v : -1;
}

/* Delétang's rule read literally (no brackets): the terms are the maximal products of digits joined by
 * '*'; each term is negated when a '-' precedes it; the value is their sum mod 5. */
static int products_value(const int *tok, int n) {
    long total = 0, term = tok[0];
    int sign = 1;
    for (int i = 1; i + 1 < n; i += 2) {
        if (tok[i] == TIMES) {
            term = term * tok[i + 1] % 5; /* only the residue mod 5 matters */
            continue;
        }
        total += sign * (term % 5);
        sign = tok[i] == MINUS ? -1 : 1;
        term = tok[i + 1];
    }
    total += sign * (term % 5);
    return mod5(total);
}

/* does tok[0..m-1] derive from E(m) of the grammar in regular.c? */
static int derives(const int *t, int m) {
    switch (m) {
    case 1: return is_digit(t[0]);
    case 2: return t[0] == MINUS && is_digit(t[1]);
    case 3: return t[0] == LPAR && is_digit(t[1]) && t[2] == RPAR;
    case 4: return t[0] == LPAR && t[1] == MINUS && is_digit(t[2]) && t[3] == RPAR;
    default: break;
    }
    if (m < 5 || t[0] != LPAR || t[m - 1] != RPAR) return 0;
    for (int l = 1; l <= m - 4; l++) {
        if (!is_op(t[1 + l])) continue;
        int depth = 0, bal = 1;
        for (int i = 1; i <= l && bal; i++) {
            depth += t[i] == LPAR ? 1 : t[i] == RPAR ? -1 : 0;
            bal = depth >= 0;
        }
        if (bal && depth == 0 && derives(t + 1, l) && derives(t + 2 + l, m - 3 - l)) return 1;
    }
    return 0;
}

/* the length of the left operand of E(m), m >= 5 (its first unit after the outer '(') */
static int left_len(const int *t) {
    if (is_digit(t[1])) return 1;
    if (t[1] == MINUS) return 2;
    int depth = 0, i = 1;
    do depth += t[i] == LPAR ? 1 : t[i] == RPAR ? -1 : 0;
    while (depth && ++i);
    return i;
}

/* class of the counting tasks for x[0..n-1] */
static int count_label(const char *name, const int *x, int n) {
    if (!strcmp(name, "parity")) {
        int ones = 0;
        for (int i = 0; i < n; i++) ones += x[i] == 1;
        return ones % 2;
    }
    if (!strcmp(name, "even_pairs")) {
        int changes = 0;
        for (int i = 0; i + 1 < n; i++) changes += x[i] != x[i + 1];
        int label = changes % 2;
        cr_assert_eq(label, n > 0 && x[0] != x[n - 1], "even_pairs: #changes mod 2 != (first != last)");
        return label;
    }
    int pos = 0; /* cycle_nav: walk */
    for (int i = 0; i < n; i++) {
        if (x[i] == 0) pos -= 1;
        else if (x[i] == 2) pos += 1;
        while (pos < 0) pos += 5;
        while (pos >= 5) pos -= 5;
    }
    return pos;
}

/* ---- one sequence against the documentation ----------------------------------------------------------- */

typedef struct {
    long seqs, scored;
    long ops[3];    /* operator counts (mod_arith, mod_arith_brackets) */
    long sym[5];    /* input symbol counts */
} Tally;

static void check_one(const Spec *s, int vi, int nops, int T, const int *in, const int *tg, const unsigned char *mk,
                      Tally *ty) {
    const char *v = VARIANTS[vi];
    const int n = vi == 0 ? T - 1 : T; /* requested input length */
    int l = n;                         /* actual input length */
    if (s->arith == 1) l = n % 2 ? n : n - 1;
    const char *nm = s->name;
    ty->seqs++;
    /* inputs: symbols of the task before l, blanks from l on */
    for (int t = 0; t < T; t++) {
        if (t >= l) {
            cr_assert_eq(in[t], s->blank, "%s/%s T=%d: position %d (input length %d) should be the blank %d, is %d", nm,
                         v, T, t, l, s->blank, in[t]);
            continue;
        }
        cr_assert(in[t] >= 0 && in[t] < s->V && in[t] != s->blank, "%s/%s T=%d: input %d at %d out of range", nm, v,
                  T, in[t], t);
        if (s->arith == 0) {
            int nsym = !strcmp(nm, "cycle_nav") ? 3 : 2;
            cr_assert_lt(in[t], nsym, "%s: symbol %d at %d", nm, in[t], t);
            ty->sym[in[t]]++;
        } else if (s->arith == 1) {
            if (t % 2 == 0) cr_assert(is_digit(in[t]), "mod_arith T=%d: position %d (even) holds %d, not a digit", T, t,
                                      in[t]);
            else cr_assert(in[t] >= PLUS && in[t] < PLUS + nops, "mod_arith T=%d: position %d (odd) holds %d, not an "
                                                                 "operator of the set (%d)", T, t, in[t], nops);
        } else {
            cr_assert(is_digit(in[t]) || (in[t] >= PLUS && in[t] <= RPAR), "brackets: token %d", in[t]);
            cr_assert(in[t] != TIMES || nops == 3, "brackets: '*' with operators +-");
        }
        if (s->arith && in[t] >= PLUS && in[t] <= TIMES) ty->ops[in[t] - PLUS]++;
        if (s->arith && is_digit(in[t])) ty->sym[in[t]]++;
    }
    if (s->arith == 1) cr_assert(l % 2 == 1, "mod_arith: expression length %d is even", l);
    if (s->arith == 2) cr_assert(derives(in, l), "%s T=%d: tokens 0..%d do not derive from E(%d)", nm, T, l - 1, l);
    /* positions that count, and their labels */
    for (int t = 0; t < T; t++) {
        int expect_scored;
        if (vi == 0) expect_scored = t == l;                        /* final: the blank after the input */
        else if (vi == 1) expect_scored = t == l - 1;               /* last: the last input token */
        else expect_scored = t < l && (s->arith != 1 || t % 2 == 0); /* prefix */
        cr_assert_eq(mk[t], expect_scored, "%s/%s T=%d (input length %d): mask[%d] = %d", nm, v, T, l, t, mk[t]);
        if (!mk[t]) {
            cr_assert_eq(tg[t], 0, "%s/%s: target %d at unscored position %d", nm, v, tg[t], t);
            continue;
        }
        ty->scored++;
        const int plen = vi == 2 ? t + 1 : l; /* the prefix whose class is asked for */
        int want;
        if (s->arith == 0) want = count_label(nm, in, plen);
        else if (s->arith == 1) {
            want = parse_value(in, plen);
            cr_assert_eq(want, products_value(in, plen), "mod_arith: the two evaluators disagree");
        } else want = parse_value(in, plen);
        cr_assert(want >= 0 && want < s->nclass, "%s: evaluator failed on a generated sequence", nm);
        cr_assert_eq(tg[t], want, "%s/%s T=%d: label at %d is %d, brute force says %d", nm, v, T, t, tg[t], want);
    }
}

static void check_batch(const Spec *s, int vi, int nops, const Batch *b, Tally *ty) {
    for (int i = 0; i < b->B; i++) {
        size_t o = (size_t)i * b->T;
        check_one(s, vi, nops, b->T, b->inputs + o, b->targets + o, b->mask + o, ty);
    }
}

static int variant_ok(const Spec *s, int vi) { return !(s->arith == 2 && vi == 2); }

/* ---- the evaluators of this file, on hand-worked expressions ---------------------------------------------- */

Test(regular, test_evaluators_on_known_expressions) {
    const struct {
        int tok[12];
        int n, value;
    } cases[] = {
        {{1, PLUS, 2, TIMES, 3}, 5, 2},                 /* 1 + 6 = 7 */
        {{4, MINUS, 3, TIMES, 2}, 5, 3},                /* 4 - 6 = -2 */
        {{2, TIMES, 3, MINUS, 4, TIMES, 4}, 7, 0},      /* 6 - 16 = -10 */
        {{3, MINUS, 1, MINUS, 4}, 5, 3},                /* -2 */
        {{0}, 1, 0},
        {{4, TIMES, 4, TIMES, 4}, 5, 4},                /* 64 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cr_expect_eq(parse_value(cases[i].tok, cases[i].n), cases[i].value, "case %zu (parser)", i);
        cr_expect_eq(products_value(cases[i].tok, cases[i].n), cases[i].value, "case %zu (products)", i);
    }
    const int b1[] = {LPAR, 3, MINUS, MINUS, 2, RPAR};                 /* (3--2) = 5 */
    const int b2[] = {LPAR, MINUS, 4, TIMES, 2, RPAR};                 /* (-4*2) = -8 */
    const int b3[] = {LPAR, LPAR, 1, PLUS, 2, RPAR, TIMES, LPAR, MINUS, 3, RPAR, RPAR}; /* ((1+2)*(-3)) */
    cr_expect_eq(parse_value(b1, 6), 0);
    cr_expect_eq(parse_value(b2, 6), 2);
    cr_expect_eq(parse_value(b3, 12), 1);
    cr_expect(derives(b1, 6) && derives(b2, 6) && derives(b3, 12));
    const int bad1[] = {LPAR, 1, PLUS, 2}, bad2[] = {1, PLUS, 2}; /* unclosed; binary op without brackets */
    cr_expect_eq(parse_value(bad1, 4), -1);
    cr_expect(!derives(bad1, 4) && !derives(bad2, 3));
    cr_expect_eq(left_len(b3), 5);
}

/* ---- every label, every variant, by brute force ------------------------------------------------------------ */

Test(regular, every_label_recomputed_by_brute_force, .timeout = 120) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 20240601);
    for (int si = 0; si < NSPECS; si++) {
        const Spec *s = &SPECS[si];
        const char *opsets[2] = {s->arith ? "+-" : NULL, s->arith ? "+-*" : NULL};
        for (int oi = 0; oi < (s->arith ? 2 : 1); oi++)
            for (int vi = 0; vi < 3; vi++) {
                if (!variant_ok(s, vi)) continue;
                Task *tk = make(s->name, VARIANTS[vi], opsets[oi]);
                const int nops = s->arith ? (int)strlen(opsets[oi]) : 0;
                Tally ty = {0};
                const int lens[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 17, 24, 31, 32, 40, 41, 64, 101};
                for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
                    int T = lens[li];
                    if (s->arith && vi == 0 && T < 2) continue; /* no room for an expression (tested below) */
                    Batch b;
                    batch_alloc(&b, T > 40 ? 40 : 120, T);
                    task_sample(tk, rng, &b);
                    check_batch(s, vi, nops, &b, &ty);
                    batch_free(&b);
                    task_testset(tk, 7, T, 60, &b);
                    check_batch(s, vi, nops, &b, &ty);
                    batch_free(&b);
                }
                cr_expect_geq(ty.seqs, 3000, "%s/%s: only %ld sequences checked", s->name, VARIANTS[vi], ty.seqs);
                if (s->arith) { /* every operator of the set occurs; no other */
                    for (int o = 0; o < 3; o++)
                        if (o < nops) cr_expect_gt(ty.ops[o], 100, "%s %s: operator %d occurs %ld times", s->name,
                                                   opsets[oi], o, ty.ops[o]);
                        else cr_expect_eq(ty.ops[o], 0, "%s %s: '*' occurs", s->name, opsets[oi]);
                }
                task_free(tk);
            }
    }
    gsl_rng_free(rng);
}

/* long sequences (Delétang's and Grazzi's test lengths) */
Test(regular, long_sequences_recomputed, .timeout = 120) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 99);
    for (int si = 0; si < NSPECS; si++)
        for (int vi = 0; vi < 3; vi++) {
            const Spec *s = &SPECS[si];
            if (!variant_ok(s, vi)) continue;
            Task *tk = make(s->name, VARIANTS[vi], NULL);
            const int nops = s->arith == 1 ? 3 : s->arith == 2 ? 2 : 0; /* the defaults */
            Tally ty = {0};
            const int lens[] = {256, 501};
            for (int li = 0; li < 2; li++) {
                Batch b;
                batch_alloc(&b, vi == 2 && s->arith ? 3 : 20, lens[li]);
                task_sample(tk, rng, &b);
                check_batch(s, vi, nops, &b, &ty);
                batch_free(&b);
            }
            task_free(tk);
        }
    gsl_rng_free(rng);
}

/* rows of their own lengths (train_len_mode = mixed): each row is the task's sequence of its length,
 * then padding (input 0, target 0, mask 0) */
Test(regular, mixed_length_rows) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 8);
    for (int si = 0; si < NSPECS; si++)
        for (int vi = 0; vi < 3; vi++) {
            const Spec *s = &SPECS[si];
            if (!variant_ok(s, vi)) continue;
            Task *tk = make(s->name, VARIANTS[vi], NULL);
            const int nops = s->arith == 1 ? 3 : s->arith == 2 ? 2 : 0, B = 64, T = 40;
            int len[64];
            for (int i = 0; i < B; i++) len[i] = 2 + (int)gsl_rng_uniform_int(rng, T - 1);
            Batch b;
            batch_alloc(&b, B, T);
            task_sample_rows(tk, rng, &b, len);
            Tally ty = {0};
            for (int i = 0; i < B; i++) {
                size_t o = (size_t)i * T;
                check_one(s, vi, nops, len[i], b.inputs + o, b.targets + o, b.mask + o, &ty);
                for (int t = len[i]; t < T; t++)
                    cr_assert(b.inputs[o + t] == 0 && b.targets[o + t] == 0 && b.mask[o + t] == 0, "padding");
            }
            batch_free(&b);
            task_free(tk);
        }
    gsl_rng_free(rng);
}

/* ---- layout, chance, describe --------------------------------------------------------------------------- */

Test(regular, vocab_chance_and_describe) {
    for (int si = 0; si < NSPECS; si++)
        for (int vi = 0; vi < 3; vi++) {
            const Spec *s = &SPECS[si];
            if (!variant_ok(s, vi)) continue;
            Task *t = make(s->name, VARIANTS[vi], NULL);
            cr_expect_eq(task_vocab(t), s->V, "%s: V = %d, documented %d", s->name, task_vocab(t), s->V);
            cr_expect(fabs(task_chance(t) - 1.0 / s->nclass) < 1e-12, "%s: chance %g", s->name, task_chance(t));
            const char *d = task_describe(t);
            cr_expect(strstr(d, s->name) && strstr(d, VARIANTS[vi]), "%s/%s: describe '%s'", s->name, VARIANTS[vi], d);
            char vtxt[16];
            snprintf(vtxt, sizeof vtxt, "V = %d", s->V);
            cr_expect(strstr(d, vtxt), "describe should state %s: %s", vtxt, d);
            char buf[16];
            task_token_text(t, s->blank, buf, sizeof buf);
            cr_expect_str_eq(buf, "_");
            task_free(t);
        }
    /* the default variant is Delétang's (final) */
    Task *t = make("parity", "default", NULL);
    cr_expect(strstr(task_describe(t), "variant final"), "%s", task_describe(t));
    task_free(t);
    /* the operator set is recorded: defaults +-* (mod_arith) and +- (mod_arith_brackets) */
    t = make("mod_arith", "default", NULL);
    cr_expect(strstr(task_describe(t), "operators +-*"), "%s", task_describe(t));
    task_free(t);
    t = make("mod_arith", "final", "+-");
    cr_expect(strstr(task_describe(t), "operators +-;"), "%s", task_describe(t));
    task_free(t);
    t = make("mod_arith_brackets", "default", NULL);
    cr_expect(strstr(task_describe(t), "operators +-;"), "%s", task_describe(t));
    char buf[8];
    const char *want[] = {"0", "4", "+", "-", "*", "(", ")"};
    const int tok[] = {0, 4, PLUS, MINUS, TIMES, LPAR, RPAR};
    for (int i = 0; i < 7; i++) {
        task_token_text(t, tok[i], buf, sizeof buf);
        cr_expect_str_eq(buf, want[i]);
    }
    task_free(t);
    t = make("cycle_nav", "final", NULL);
    task_token_text(t, 0, buf, sizeof buf);
    cr_expect_str_eq(buf, "-1");
    task_token_text(t, 2, buf, sizeof buf);
    cr_expect_str_eq(buf, "+1");
    task_free(t);
}

/* ---- distributions ------------------------------------------------------------------------------------------- */

/* count ~ Binomial(N, p): within 5 standard deviations */
static void expect_binomial(long count, long N, double p, const char *what, int k) {
    double mu = N * p, sd = sqrt(N * p * (1 - p));
    cr_expect(fabs(count - mu) <= 5 * sd + 1, "%s %d: %ld of %ld, expected %.1f +- %.1f (5 sd)", what, k, count, N, mu,
              5 * sd);
}

Test(regular, input_symbols_are_uniform) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 5);
    for (int si = 0; si < NSPECS; si++) {
        const Spec *s = &SPECS[si];
        Task *t = make(s->name, "last", s->arith ? "+-*" : NULL);
        Batch b;
        batch_alloc(&b, 400, 51);
        task_sample(t, rng, &b);
        Tally ty = {0};
        check_batch(s, 1, s->arith ? 3 : 0, &b, &ty);
        const int nsym = s->arith ? 5 : !strcmp(s->name, "cycle_nav") ? 3 : 2;
        long total = 0, tops = ty.ops[0] + ty.ops[1] + ty.ops[2];
        for (int k = 0; k < nsym; k++) total += ty.sym[k];
        for (int k = 0; k < nsym; k++) expect_binomial(ty.sym[k], total, 1.0 / nsym, s->name, k);
        /* (mod_arith only: in mod_arith_brackets '-' is also the unary minus of E(2) and E(4)) */
        for (int k = 0; s->arith == 1 && k < 3; k++) expect_binomial(ty.ops[k], tops, 1.0 / 3, "operator", k);
        batch_free(&b);
        task_free(t);
    }
    gsl_rng_free(rng);
}

/* the bracket scheme: E(1..4) fixed shapes, E(m >= 5) with its left length uniform in 1..m-4 */
Test(regular, bracket_sampling_scheme) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 11);
    Task *t = make("mod_arith_brackets", "last", "+-*");
    const int ms[] = {6, 7, 20};
    for (int mi = 0; mi < 3; mi++) {
        const int m = ms[mi], N = 6000;
        Batch b;
        batch_alloc(&b, N, m);
        task_sample(t, rng, &b);
        long hist[32] = {0}, top[3] = {0};
        for (int i = 0; i < N; i++) {
            const int *x = b.inputs + (size_t)i * m;
            cr_assert(derives(x, m));
            int l = left_len(x);
            cr_assert(l >= 1 && l <= m - 4, "left operand length %d for m = %d", l, m);
            hist[l]++;
            cr_assert(is_op(x[1 + l]));
            top[x[1 + l] - PLUS]++;
        }
        for (int l = 1; l <= m - 4; l++) expect_binomial(hist[l], N, 1.0 / (m - 4), "left length", l);
        for (int o = 0; o < 3; o++) expect_binomial(top[o], N, 1.0 / 3, "top operator", o);
        batch_free(&b);
    }
    /* E(1..4) */
    const int shapes[4][4] = {{0}, {MINUS, 0}, {LPAR, 0, RPAR}, {LPAR, MINUS, 0, RPAR}};
    for (int m = 1; m <= 4; m++) {
        Batch b;
        batch_alloc(&b, 50, m);
        task_sample(t, rng, &b);
        for (int i = 0; i < 50; i++)
            for (int j = 0; j < m; j++) {
                int x = b.inputs[(size_t)i * m + j];
                if (shapes[m - 1][j] == 0) cr_assert(is_digit(x), "E(%d) position %d: %d", m, j, x);
                else cr_assert_eq(x, shapes[m - 1][j], "E(%d) position %d", m, j);
            }
        batch_free(&b);
    }
    task_free(t);
    gsl_rng_free(rng);
}

/* ---- determinism ------------------------------------------------------------------------------------------------ */

Test(regular, deterministic_for_a_seed) {
    for (int si = 0; si < NSPECS; si++) {
        Task *t = make(SPECS[si].name, "final", NULL);
        Batch a, b, c;
        gsl_rng *r1 = gsl_rng_alloc(gsl_rng_mt19937), *r2 = gsl_rng_alloc(gsl_rng_mt19937);
        gsl_rng_set(r1, 3), gsl_rng_set(r2, 3);
        batch_alloc(&a, 16, 33), batch_alloc(&b, 16, 33);
        task_sample(t, r1, &a), task_sample(t, r2, &b);
        size_t bt = (size_t)16 * 33;
        cr_expect(!memcmp(a.inputs, b.inputs, bt * sizeof(int)) && !memcmp(a.targets, b.targets, bt * sizeof(int)) &&
                  !memcmp(a.mask, b.mask, bt));
        batch_free(&a), batch_free(&b);
        task_testset(t, 1, 33, 16, &a);
        task_testset(t, 1, 33, 8, &b);
        task_testset(t, 2, 33, 16, &c);
        cr_expect(!memcmp(a.inputs, b.inputs, (size_t)8 * 33 * sizeof(int)), "%s: test set prefix", SPECS[si].name);
        cr_expect(memcmp(a.inputs, c.inputs, bt * sizeof(int)), "%s: seeds 1 and 2 gave the same test set",
                  SPECS[si].name);
        batch_free(&a), batch_free(&b), batch_free(&c);
        gsl_rng_free(r1), gsl_rng_free(r2);
        task_free(t);
    }
}

/* ---- bad keys and values ----------------------------------------------------------------------------------------- */

Test(regular, bad_keys_and_values) {
    const char *m;
    m = try_make("mod_arith", "final", "operators", "+*");
    cr_expect(m && strstr(m, "operators = '+*'") && strstr(m, "+-, +-*"), "%s", m ? m : "(accepted)");
    m = try_make("mod_arith", "final", "operators", "+-*/");
    cr_expect(m && strstr(m, "'+-*/'"), "%s", m ? m : "(accepted)");
    m = try_make("mod_arith_brackets", "final", "operators", "");
    cr_expect(m && strstr(m, "operators = ''"), "%s", m ? m : "(accepted)");
    const char *counting[] = {"parity", "even_pairs", "cycle_nav"};
    for (int i = 0; i < 3; i++) {
        m = try_make(counting[i], "final", "operators", "+-");
        cr_expect(m && strstr(m, "does not apply") && strstr(m, counting[i]), "%s", m ? m : "(accepted)");
    }
    m = try_make("mod_arith_brackets", "prefix", NULL, NULL);
    cr_expect(m && strstr(m, "variant = 'prefix'") && strstr(m, "final, last"), "%s", m ? m : "(accepted)");
    m = try_make("parity", "swaps", NULL, NULL);
    cr_expect(m && strstr(m, "variant = 'swaps'") && strstr(m, "final, last, prefix"), "%s", m ? m : "(accepted)");
    m = try_make("parity", "final", "dfa_file", "x.dfa");
    cr_expect(m && strstr(m, "dfa_file") && strstr(m, "operators"), "%s", m ? m : "(accepted)");
    m = try_make("s5", "swaps", "operators", "+-");
    cr_expect(m && strstr(m, "operators") && strstr(m, "does not apply"), "%s", m ? m : "(accepted)");
    m = try_make("Parity", "FINAL", NULL, NULL); /* names and variants are case-insensitive */
    cr_expect(m == NULL, "%s", m);
}

/* T = 1 leaves no room for an expression in variant final: refused by task_check_len (what config
 * validation asks for every length); every other task and variant takes every T >= 1 */
Test(regular, check_len) {
    for (int si = 0; si < NSPECS; si++)
        for (int vi = 0; vi < 3; vi++) {
            const Spec *s = &SPECS[si];
            if (!variant_ok(s, vi)) continue;
            Task *t = make(s->name, VARIANTS[vi], NULL);
            Err e = {{0}};
            const int refused = s->arith && vi == 0;
            cr_expect_eq(task_check_len(t, 1, &e) != 0, refused, "%s/%s T=1: %s", s->name, VARIANTS[vi], e.msg);
            if (refused) cr_expect(strstr(e.msg, "T >= 2") && strstr(e.msg, s->name), "%s", e.msg);
            for (int T = 2; T < 600; T += 7) cr_expect_eq(task_check_len(t, T, &e), 0, "%s T=%d: %s", s->name, T, e.msg);
            task_free(t);
        }
}
Test(regular, mod_arith_last_T1_is_one_digit) {
    Task *t = make("mod_arith", "last", NULL);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    Batch b;
    batch_alloc(&b, 20, 1);
    task_sample(t, rng, &b);
    for (int i = 0; i < 20; i++) cr_expect(is_digit(b.inputs[i]) && b.targets[i] == b.inputs[i] && b.mask[i] == 1);
    batch_free(&b);
    gsl_rng_free(rng);
    task_free(t);
}

/* ---- through the binary ----------------------------------------------------------------------------------------- */

static char tmpdir[256];
static char output[16384];
static void mk_tmp(void) { cr_assert(test_mkdtemp(tmpdir, sizeof tmpdir, "regular") == 0); }
static void rm_tmp(void) { test_rmtree(tmpdir); }

/* `rwkvlab ARGS` ("@" = the temporary directory); exit status, output in `output` */
TEST_CLI_RUNNER(cli, output, tmpdir, "")

static void write_cfg(const char *name, const char *task_lines) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    cr_assert(f);
    fprintf(f, "[experiment]\nname = smoke\n[model]\nlayers = 1\nd_model = 16\nhead_size = 16\n[task]\n%s"
               "train_len = 12\ntest_lens = 12, 20\ntest_size = 8\n[train]\nsteps = 3\nbatch = 8\nwarmup = 1\n"
               "eval_every = 3\n[log]\ntrajectories = 0\n", task_lines);
    fclose(f);
}

static int file_has(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strstr(buf, needle) != NULL;
}

#define TINY "--set model.layers=1 --set model.d_model=16 --set model.head_size=16 --set train.steps=2 " \
             "--set train.batch=4 --set train.warmup=1 --set train.eval_every=2 --set task.test_size=4 " \
             "--set log.trajectories=0 --set train.ckpt_every=2 --quiet"

TestSuite(regular_cli, .init = mk_tmp, .fini = rm_tmp, .timeout = 300);

Test(regular_cli, train_parity_and_every_regular_task) {
    write_cfg("p.ini", "name = parity\n");
    cr_assert_eq(cli("train @/p.ini --out @/run --quiet"), 0, "%s", output);
    char p[600];
    snprintf(p, sizeof p, "%s/run/summary.json", tmpdir);
    cr_expect(file_has(p, "parity (regular)") && file_has(p, "variant final"), "summary.json does not name the task");
    const char *names[] = {"even_pairs", "cycle_nav", "mod_arith", "mod_arith_brackets"};
    for (int i = 0; i < 4; i++)
        for (int v = 0; v < 3; v++) {
            if (i == 3 && v == 2) continue;
            cr_expect_eq(cli("train @/p.ini --set task.name=%s --set task.variant=%s --out @/run_%d_%d --quiet",
                             names[i], VARIANTS[v], i, v), 0, "%s/%s: %s", names[i], VARIANTS[v], output);
        }
}

Test(regular_cli, the_protocol_configs_train) {
    const char *cfgs[] = {"configs/deletang_regular.ini", "configs/grazzi_parity.ini", "configs/grazzi_modarith.ini"};
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(cli("config %s", cfgs[i]), 0, "%s: %s", cfgs[i], output);
        cr_expect_eq(cli("train %s " TINY " --out @/c%d", cfgs[i], i), 0, "%s: %s", cfgs[i], output); /* their ranges */
    }
    /* the four tasks of the Delétang config, and Grazzi's brackets task and other operator set */
    const char *deletang[] = {"parity", "even_pairs", "cycle_nav", "mod_arith"};
    for (int i = 0; i < 4; i++)
        cr_expect_eq(cli("train configs/deletang_regular.ini " TINY " --set task.train_len=9 --set task.name=%s "
                         "--out @/d%d", deletang[i], i), 0, "%s: %s", deletang[i], output);
    cr_expect_eq(cli("train configs/grazzi_modarith.ini " TINY " --set task.train_len=9 --set task.name=mod_arith_brackets "
                     "--out @/g1"), 0, "%s", output);
    cr_expect_eq(cli("train configs/grazzi_modarith.ini " TINY " --set task.train_len=9 --set task.operators=+- "
                     "--out @/g2"), 0, "%s", output);
    char p[600];
    snprintf(p, sizeof p, "%s/g2/summary.json", tmpdir);
    cr_expect(file_has(p, "operators +-;"), "the operator set is not recorded in summary.json");
}

Test(regular_cli, config_prints_and_checks_the_keys) {
    write_cfg("p.ini", "name = mod_arith\noperators = +-\n");
    cr_assert_eq(cli("config @/p.ini"), 0, "%s", output);
    cr_expect(strstr(output, "name = mod_arith") && strstr(output, "operators = +-"), "%s", output);
    cr_expect(strstr(output, "final|last|prefix"), "the variants are not listed: %s", output);
    cr_expect_eq(cli("config @/p.ini --set task.operators=+-*"), 0, "%s", output);
    cr_expect(strstr(output, "operators = +-*"), "%s", output);
    /* bad values: config and train refuse alike, train before creating anything */
    cr_expect_eq(cli("config @/p.ini --set task.operators=x"), 1, "%s", output);
    cr_expect(strstr(output, "operators = 'x'"), "%s", output);
    cr_expect_eq(cli("train @/p.ini --set task.operators=x --out @/bad"), 1, "%s", output);
    char bad[600];
    snprintf(bad, sizeof bad, "%s/bad", tmpdir);
    cr_expect(access(bad, F_OK) != 0, "train created a run for a bad config");
    cr_expect_eq(cli("config @/p.ini --set task.name=parity"), 1, "operators accepted for parity: %s", output);
    cr_expect_eq(cli("config @/p.ini --set task.name=mod_arith_brackets --set task.variant=prefix"), 1, "%s", output);
}

Test(regular_cli, mod_arith_final_length_1_is_refused_by_config_and_train) {
    write_cfg("p.ini", "name = mod_arith\n");
    cr_expect_eq(cli("config @/p.ini --set task.train_len=1-40"), 1, "%s", output);
    cr_expect(strstr(output, "includes 1") && strstr(output, "T >= 2"), "%s", output);
    int rc = cli("train @/p.ini --set task.train_len=1 --out @/r --quiet");
    cr_expect_eq(rc, 1, "exit %d: %s", rc, output);
    cr_expect(strstr(output, "T >= 2"), "%s", output);
    char run[600];
    snprintf(run, sizeof run, "%s/r", tmpdir);
    cr_expect(access(run, F_OK) != 0, "train created a run directory for a length the task refuses");
    cr_expect_eq(cli("config @/p.ini --set task.train_len=2-41"), 0, "%s", output);
    cr_expect_eq(cli("config @/p.ini --set task.train_len=1-40 --set task.variant=last"), 0, "%s", output);
}

/* ---- the dfa task through the binary ------------------------------------------------------------------------------ */

Test(regular_cli, train_a_dfa_config) {
    write_cfg("d.ini", "name = dfa\ndfa_file = tests/data/dfa_mod3.dfa\ndfa_sampling = balanced\n");
    cr_assert_eq(cli("config @/d.ini"), 0, "%s", output);
    cr_expect(strstr(output, "dfa_file = tests/data/dfa_mod3.dfa") && strstr(output, "dfa_sampling = balanced"), "%s",
              output);
    cr_assert_eq(cli("train @/d.ini --out @/run --quiet"), 0, "%s", output);
    char p[600];
    snprintf(p, sizeof p, "%s/run/summary.json", tmpdir);
    cr_expect(file_has(p, "dfa tests/data/dfa_mod3.dfa") && file_has(p, "variant prefix") && file_has(p, "balanced"),
              "summary.json does not describe the dfa task");
    const char *variants[] = {"last", "final"};
    for (int v = 0; v < 2; v++)
        cr_expect_eq(cli("train @/d.ini --set task.variant=%s --set task.dfa_sampling=uniform --set "
                         "task.dfa_file=tests/data/dfa_ab.dfa --out @/run_%d --quiet", variants[v], v), 0, "%s: %s",
                     variants[v], output);
}

Test(regular_cli, a_malformed_dfa_stops_config_and_train) {
    write_cfg("d.ini", "name = dfa\ndfa_file = tests/data/dfa_bad_unknown_symbol.dfa\n");
    cr_expect_eq(cli("config @/d.ini"), 1, "%s", output);
    cr_expect(strstr(output, "tests/data/dfa_bad_unknown_symbol.dfa:7:") && strstr(output, "symbol '2'"), "%s", output);
    cr_expect_eq(cli("train @/d.ini --out @/run --quiet"), 1, "%s", output);
    cr_expect(strstr(output, "tests/data/dfa_bad_unknown_symbol.dfa:7:"), "%s", output);
    char run[600];
    snprintf(run, sizeof run, "%s/run", tmpdir);
    cr_expect(access(run, F_OK) != 0, "train created a run directory for a malformed DFA");
    cr_expect_eq(cli("config @/d.ini --set task.dfa_file=tests/data/none.dfa"), 1, "%s", output);
    cr_expect(strstr(output, "none.dfa") && strstr(output, "cannot open"), "%s", output);
    cr_expect_eq(cli("config @/d.ini --set task.dfa_file=tests/data/dfa_mod3.dfa --set task.dfa_sampling=x"), 1);
    cr_expect(strstr(output, "dfa_sampling = 'x'"), "%s", output);
    /* balanced sampling at lengths where one class cannot occur: refused before any run directory */
    cr_expect_eq(cli("train @/d.ini --set task.dfa_file=tests/data/dfa_even_len.dfa --set task.dfa_sampling=balanced "
                     "--out @/run --quiet"), 1, "%s", output);
    cr_expect(strstr(output, "dfa_sampling = balanced") && strstr(output, "dfa_even_len.dfa"), "%s", output);
    cr_expect(access(run, F_OK) != 0, "train created a run directory for an impossible balanced length");
}
