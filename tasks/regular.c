/* regular.c -- regular-language tasks (spec/tasks.md §2): Delétang et al. (ICLR 2023) `parity`,
 * `even_pairs`, `cycle_nav`, `mod_arith`, and `mod_arith_brackets`, the bracketed modular arithmetic of
 * Grazzi et al. (ICLR 2025). Grazzi's parity and modular arithmetic without brackets are `parity` and
 * `mod_arith` (their generators are the same; the read-out differs: see the variants and configs/).
 *
 * T is always the length of the sequence the model reads, every token included (input, blank, padding).
 *
 * Generators (one gsl_rng_uniform_int per drawn token, in position order; n = the requested input length,
 * see the variants):
 *   parity      x in {0,1}^n uniform;            class = sum(x) mod 2
 *   even_pairs  x in {0,1}^n uniform;            class = #{i : x_i != x_{i+1}} mod 2 (= x_0 != x_{n-1})
 *   cycle_nav   a in {0,1,2}^n uniform;          class = sum(a_i - 1) mod 5, non-negative (0 = -1, 1 = stay,
 *               2 = +1, start at 0; the code of Delétang et al. is the reference, not the paper's text)
 *   mod_arith   modulus 5; the expression length is l = n if n is odd, else n - 1 (Delétang's odd-length
 *               rule); digits uniform in {0..4} at even positions, operators uniform over the operator set
 *               at odd positions; value = the sum of the products (* binds first), each '-' negating the
 *               term after it, reduced to [0,5). Operator set: key `operators` (+-* by default).
 *   mod_arith_brackets  an expression of exactly n tokens, drawn by this recursive scheme (the one of
 *               Grazzi et al.'s code, written here from its description):
 *                 E(1) = d        E(2) = - d        E(3) = ( d )        E(4) = ( - d )
 *                 E(m) = ( E(l) op E(m-3-l) )   for m >= 5, l uniform in {1..m-4}, drawn first; then the
 *                        left operand, the right operand, and op uniform over the operator set
 *               d uniform in {0..4}; value mod 5 (unary '-' negates its digit; + - * as usual, every
 *               binary operation is bracketed). Operator set: key `operators` (+- by default).
 *
 * Variants (task.variant; the read-out and which positions count):
 *   final  (default; Delétang's formulation) input length n = T - 1 at positions 0..n-1, then one blank
 *          token at position n; the class of the whole input is read at the blank and only that position
 *          counts. T = 1 is the empty input (class 0) for parity, even_pairs, cycle_nav. mod_arith: the
 *          odd-length rule shortens the expression to l = n or n - 1; the blank is at l (the read-out) and
 *          position T - 1, when l = T - 2, is one more blank that does not count. mod_arith and
 *          mod_arith_brackets need T >= 2 (an expression has at least one digit): check_len refuses T = 1,
 *          so `rwkvlab config` rejects such a train_len or test length.
 *   last   no blank: input length n = T, the class of the whole input is read at its last token T - 1 and
 *          only that position counts (Grazzi et al.'s parity read-out). mod_arith: l = T or T - 1; the
 *          read-out is at l - 1 and, when l = T - 1, position T - 1 is a blank that does not count.
 *   prefix per-position labels: input length n = T, position t is labelled with the class of the prefix
 *          x_0..x_t and every position counts. mod_arith: only the digit positions (even t) count, where the
 *          prefix is a complete expression; operator positions and a trailing blank (l = T - 1) do not.
 *          Not available for mod_arith_brackets (a prefix of a bracketed expression is no expression).
 * Targets at positions that do not count are 0.
 *
 * Token layout (the same for every variant, so a model trained on one variant can be scored on another):
 *   parity, even_pairs   0, 1 = the bits, 2 = blank;                         V = 3, classes 0..1
 *   cycle_nav            0 = -1, 1 = stay, 2 = +1, 3 = blank;                 V = 5, classes 0..4
 *   mod_arith            0..4 digits, 5 '+', 6 '-', 7 '*', 8 blank;           V = 9, classes 0..4
 *   mod_arith_brackets   0..4 digits, 5 '+', 6 '-', 7 '*', 8 '(', 9 ')', 10 blank; V = 11, classes 0..4
 * ('*' keeps its id when `operators = +-`; it just never occurs.) Targets are class ids in the same
 * vocabulary (`rwkvlab sample` renders them as classes: even/odd, @k, =k). Chance (uniform guessing at a
 * scored position): 1/2 for parity and even_pairs, 1/5 for the rest.
 */
#include <string.h>
#include <strings.h>

#include "task.h"

#define RG_MOD 5
enum { TOK_PLUS = 5, TOK_MINUS = 6, TOK_TIMES = 7, TOK_LPAR = 8, TOK_RPAR = 9 };

typedef enum { RG_PARITY, RG_EVEN_PAIRS, RG_CYCLE_NAV, RG_MOD_ARITH, RG_BRACKETS } RegKind;
typedef enum { RV_FINAL, RV_LAST, RV_PREFIX } RegVariant;

static const struct {
    const char *name;
    RegKind kind;
    int blank;  /* the blank token id; V = max(blank + 1, classes) */
    int nclass;
    const char *rule;
} rg_tasks[] = {
    {"parity", RG_PARITY, 2, 2, "x uniform in {0,1}^n, class = sum(x) mod 2"},
    {"even_pairs", RG_EVEN_PAIRS, 2, 2, "x uniform in {0,1}^n, class = #(x_i != x_i+1) mod 2"},
    {"cycle_nav", RG_CYCLE_NAV, 3, 5, "a uniform in {0,1,2}^n (-1, stay, +1), class = sum(a_i - 1) mod 5"},
    {"mod_arith", RG_MOD_ARITH, 8, 5,
     "digits 0-4 at even positions, operators at odd, odd length, * binds first, value mod 5"},
    {"mod_arith_brackets", RG_BRACKETS, 10, 5,
     "bracketed expression of exactly n tokens (E(m) = (E(l) op E(m-3-l)), l ~ U{1..m-4}), value mod 5"},
};
#define NUM(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *const rg_variant_names[] = {"final", "last", "prefix"};

typedef struct {
    RegKind kind;
    RegVariant var;
    const char *name;
    int blank, nclass, V;
    int nops; /* 2: + -   3: + - * */
    char desc[768];
} Regular;

static int rg_find(const char *name) {
    for (int i = 0; name && i < NUM(rg_tasks); i++)
        if (!strcasecmp(name, rg_tasks[i].name)) return i;
    return -1;
}

static int rg_accepts(const char *name) { return rg_find(name) >= 0; }

static void rg_free(void *self) { free(self); }

static void *rg_create(const char *name, const char *variant, const TaskArgs *args, Err *err) {
    int ti = rg_find(name);
    CHECK(ti >= 0, "regular: task '%s' passed accepts() but is unknown here", name);
    int vi = -1;
    for (int i = 0; i < NUM(rg_variant_names); i++)
        if (!strcasecmp(variant, rg_variant_names[i])) vi = i;
    CHECK(vi >= 0, "regular: variant '%s' passed the family's list but is unknown here", variant);
    const RegKind kind = rg_tasks[ti].kind;
    const int arith = kind == RG_MOD_ARITH || kind == RG_BRACKETS;
    if (kind == RG_BRACKETS && vi == RV_PREFIX) {
        err_set(err, "[task] variant = 'prefix' does not apply to task mod_arith_brackets: a prefix of a bracketed "
                     "expression is not an expression, so it has no value; allowed values: default, final, last");
        return NULL;
    }
    const char *ops = task_arg(args, "operators");
    CHECK(ops, "regular: key 'operators' is not declared");
    int nops;
    if (!strcasecmp(ops, "default")) nops = kind == RG_BRACKETS ? 2 : 3;
    else if (!strcmp(ops, "+-")) nops = 2;
    else if (!strcmp(ops, "+-*")) nops = 3;
    else {
        err_set(err, "[task] operators = '%s': allowed values: +-, +-* or default (mod_arith: +-*, "
                     "mod_arith_brackets: +-)", ops);
        return NULL;
    }
    if (!arith && strcasecmp(ops, "default")) {
        err_set(err, "[task] operators = '%s' does not apply to task %s — only mod_arith and mod_arith_brackets "
                     "take operators; remove the key", ops, rg_tasks[ti].name);
        return NULL;
    }
    Regular *r = xcalloc(1, sizeof *r);
    r->kind = kind;
    r->var = (RegVariant)vi;
    r->name = rg_tasks[ti].name;
    r->blank = rg_tasks[ti].blank;
    r->nclass = rg_tasks[ti].nclass;
    r->V = r->blank + 1 > r->nclass ? r->blank + 1 : r->nclass;
    r->nops = arith ? nops : 0;

    static const char *const readout[] = {
        "variant final: input length n = T-1, blank (token %d) at position n, class read there, only it counts",
        "variant last: input length n = T, class read at the last input token T-1, only it counts, no blank",
        "variant prefix: input length n = T, position t labelled with the class of x_0..x_t, every position counts",
    };
    static const char *const readout_arith[] = {
        "variant final: expression length l = T-1 if odd else T-2, blank (token %d) at position l, class read "
        "there, only it counts (a second blank at T-1 when l = T-2 does not)",
        "variant last: expression length l = T if odd else T-1, class read at l-1, only it counts (a blank "
        "%d at T-1 when l = T-1 does not)",
        "variant prefix: expression length l = T if odd else T-1, position t labelled with the value of x_0..x_t, "
        "only the digit positions (even t) count",
    };
    static const char *const readout_brackets[] = {
        "variant final: expression length n = T-1, blank (token %d) at position n, class read there, only it "
        "counts",
        "variant last: expression length n = T, class read at the last token T-1, only it counts, no blank "
        "(token %d unused)",
        "",
    };
    char ro[256];
    const char *fmt = kind == RG_MOD_ARITH ? readout_arith[vi] : kind == RG_BRACKETS ? readout_brackets[vi] : readout[vi];
    if (strstr(fmt, "%d")) snprintf(ro, sizeof ro, fmt, r->blank);
    else snprintf(ro, sizeof ro, "%s", fmt);
    char opstxt[64] = "";
    if (arith) snprintf(opstxt, sizeof opstxt, "; operators %s", nops == 3 ? "+-*" : "+-");
    snprintf(r->desc, sizeof r->desc, "%s (regular): %s%s; %s; V = %d, chance 1/%d", r->name, rg_tasks[ti].rule,
             opstxt, ro, r->V, r->nclass);
    return r;
}

static int rg_vocab(const void *self) { return ((const Regular *)self)->V; }
static const char *rg_describe(const void *self) { return ((const Regular *)self)->desc; }
static double rg_chance(const void *self) { return 1.0 / ((const Regular *)self)->nclass; }

static int rg_draw(gsl_rng *rng, int k) { return (int)gsl_rng_uniform_int(rng, (unsigned long)k); }

/* Counting tasks: inputs x_0..x_{n-1}; lab[t] = class of the prefix x_0..x_t. Returns the class of the
 * whole input (0 for n = 0). */
static int gen_counting(RegKind kind, gsl_rng *rng, int n, int *in, int *lab) {
    int s = 0;
    for (int t = 0; t < n; t++) {
        if (kind == RG_PARITY) {
            in[t] = rg_draw(rng, 2);
            s ^= in[t];
        } else if (kind == RG_EVEN_PAIRS) {
            in[t] = rg_draw(rng, 2);
            if (t > 0) s ^= in[t] != in[t - 1];
        } else {
            in[t] = rg_draw(rng, 3);
            s = (s + in[t] - 1 + RG_MOD) % RG_MOD;
        }
        lab[t] = s;
    }
    return s;
}

/* mod_arith: an expression of l = n (odd) or n - 1 tokens at in[0..l-1]; lab[t] = value of the prefix
 * x_0..x_t at even t (complete expressions). Returns l; *value = value of the whole expression. */
static int gen_mod_arith(gsl_rng *rng, int nops, int n, int *in, int *lab, int *value) {
    const int l = n % 2 ? n : n - 1;
    int sum = 0, term = 0, op = TOK_PLUS; /* value so far = sum + term (term: the open product, signed) */
    for (int t = 0; t < l; t++) {
        if (t % 2) {
            op = TOK_PLUS + rg_draw(rng, nops);
            in[t] = op;
            continue;
        }
        const int d = rg_draw(rng, RG_MOD);
        in[t] = d;
        if (t == 0) term = d;
        else if (op == TOK_TIMES) term = term * d % RG_MOD;
        else {
            sum = (sum + term) % RG_MOD;
            term = op == TOK_MINUS ? (RG_MOD - d) % RG_MOD : d;
        }
        lab[t] = (sum + term) % RG_MOD;
    }
    *value = l > 0 ? lab[l - 1] : 0;
    return l;
}

/* mod_arith_brackets: the expression E(m) of exactly m >= 1 tokens at out[0..m-1] (scheme in the header);
 * returns its value mod 5. Recursion depth <= m/4 + 1. */
static int gen_brackets(gsl_rng *rng, int nops, int m, int *out) {
    if (m <= 4) {
        const int d = rg_draw(rng, RG_MOD), neg = (RG_MOD - d) % RG_MOD;
        switch (m) {
        case 1: out[0] = d; return d;
        case 2: out[0] = TOK_MINUS, out[1] = d; return neg;
        case 3: out[0] = TOK_LPAR, out[1] = d, out[2] = TOK_RPAR; return d;
        default: out[0] = TOK_LPAR, out[1] = TOK_MINUS, out[2] = d, out[3] = TOK_RPAR; return neg;
        }
    }
    const int l = 1 + rg_draw(rng, m - 4), r = m - 3 - l;
    out[0] = TOK_LPAR;
    const int a = gen_brackets(rng, nops, l, out + 1);
    const int b = gen_brackets(rng, nops, r, out + 2 + l);
    const int op = TOK_PLUS + rg_draw(rng, nops);
    out[1 + l] = op;
    out[m - 1] = TOK_RPAR;
    if (op == TOK_PLUS) return (a + b) % RG_MOD;
    if (op == TOK_MINUS) return (a - b + RG_MOD) % RG_MOD;
    return a * b % RG_MOD;
}

/* variant final of the arithmetic tasks needs a digit and the blank */
static int rg_check_len(const void *self, int T, Err *err) {
    const Regular *r = self;
    if ((r->kind == RG_MOD_ARITH || r->kind == RG_BRACKETS) && r->var == RV_FINAL && T < 2)
        return err_set(err, "variant final needs T >= 2 (one digit, then the blank); T = 1 has no room for an "
                            "expression — use lengths >= 2, or variant last");
    return 0;
}

static void rg_fill(const void *self, gsl_rng *rng, int T, int *in, int *tg, unsigned char *mask) {
    const Regular *r = self;
    const int n = r->var == RV_FINAL ? T - 1 : T; /* requested input length */
    const int arith = r->kind == RG_MOD_ARITH || r->kind == RG_BRACKETS;
    CHECK(!arith || n >= 1, "%s: fill with T = %d (rg_check_len refuses it)", r->name, T);
    for (int t = 0; t < T; t++) in[t] = r->blank, tg[t] = 0;
    memset(mask, 0, (size_t)T);
    int l = n, value;
    if (r->kind == RG_BRACKETS) {
        value = gen_brackets(rng, r->nops, n, in);
    } else if (r->kind == RG_MOD_ARITH) {
        l = gen_mod_arith(rng, r->nops, n, in, tg, &value);
    } else {
        value = gen_counting(r->kind, rng, n, in, tg);
    }
    switch (r->var) {
    case RV_PREFIX: /* tg holds every prefix label; mod_arith: only the digit positions count */
        for (int t = 0; t < l; t++) mask[t] = r->kind != RG_MOD_ARITH || t % 2 == 0;
        for (int t = 0; t < T; t++)
            if (!mask[t]) tg[t] = 0;
        break;
    case RV_LAST:
        for (int t = 0; t < T; t++) tg[t] = 0;
        tg[l - 1] = value, mask[l - 1] = 1;
        break;
    case RV_FINAL:
        for (int t = 0; t < T; t++) tg[t] = 0;
        in[l] = r->blank; /* already blank: the input ends at l */
        tg[l] = value, mask[l] = 1;
        break;
    }
}

static void rg_token_text(const void *self, int token, char *buf, size_t n) {
    const Regular *r = self;
    if (token == r->blank) snprintf(buf, n, "_");
    else if (token < 0 || token >= r->V) snprintf(buf, n, "?%d", token);
    else if (r->kind == RG_CYCLE_NAV && token < 3) snprintf(buf, n, "%s", token == 0 ? "-1" : token == 1 ? "0" : "+1");
    else if ((r->kind == RG_MOD_ARITH || r->kind == RG_BRACKETS) && token >= TOK_PLUS)
        snprintf(buf, n, "%c", "+-*()"[token - TOK_PLUS]);
    else snprintf(buf, n, "%d", token);
}

/* a class: parity and even_pairs "even"/"odd" (of the count they take mod 2), cycle_nav the position
 * "@k" (0..4), the arithmetic tasks the value "=k" */
static void rg_target_text(const void *self, int target, char *buf, size_t n) {
    const Regular *r = self;
    const int ncls = r->kind == RG_PARITY || r->kind == RG_EVEN_PAIRS ? 2 : RG_MOD;
    if (target < 0 || target >= ncls) snprintf(buf, n, "?%d", target);
    else if (ncls == 2) snprintf(buf, n, "%s", target ? "odd" : "even");
    else snprintf(buf, n, "%s%d", r->kind == RG_CYCLE_NAV ? "@" : "=", target);
}

static const TaskParam rg_params[] = {
    {"operators", "default",
     "mod_arith and mod_arith_brackets: +- or +-* (default: +-* for mod_arith as Deletang et al., +- for "
     "mod_arith_brackets as Grazzi et al.'s generator)"},
};

const TaskKind task_regular = {
    .family = "regular",
    .names = "parity|even_pairs|cycle_nav|mod_arith|mod_arith_brackets",
    .accepts = rg_accepts,
    .variants = "final|last|prefix",
    .default_variant = "final",
    .params = rg_params,
    .nparams = NUM(rg_params),
    .create = rg_create,
    .free = rg_free,
    .vocab = rg_vocab,
    .describe = rg_describe,
    .check_len = rg_check_len,
    .fill = rg_fill,
    .chance = rg_chance,
    .token_text = rg_token_text,
    .target_text = rg_target_text,
};
