/* word_problem.c -- group word problems (spec/tasks.md §1): inputs g_1..g_T, targets the prefix products.
 *
 * Tasks: any group of group.h by name: s<n>, a<n> (n = 1..6), z<n> (n = 1..255) and direct products of
 * them written GxH, e.g. s5, a5, a4xz5, z60, s3 (case-insensitive). Variants choose the input
 * distribution, always uniform over a fixed element list (in group index order):
 *   full      every element of the group
 *   swaps     identity + transpositions (elements moving <= 2 points; S5: 11). Not valid where that list
 *             is only the identity (A_n: transpositions are odd; Z_n for n >= 3 and A4xZ5: every
 *             non-identity element moves more points).
 *   swaps3    elements moving <= 3 points: identity, transpositions, 3-cycles (S5: 31; A5: 21). "Points"
 *             are those of the group's permutation action (group.h; a product acts on the disjoint union).
 *   k_tokens  each element, uniform over the whole group, is followed by k-1 copies of a no-op token
 *             (key task.k, default 2): inputs g_1 _ ... _ g_2 _ ... (blocks of k tokens).
 * Tokens: group element indices 0..order-1 (group.h); k_tokens adds the no-op token `order`, so
 * V = order (full, swaps, swaps3) or order + 1 (k_tokens).
 * Labels: targets[t] = the product of the group elements among inputs[0..t], g_1 applied first (group.h
 * composition rule), at every position (no-op positions carry the product so far).
 * Positions that count (mask): every position for full/swaps/swaps3; for k_tokens only the last position
 * of each complete block (t % k == k-1), i.e. the model reads the element and then has k-1 no-op steps
 * before it is scored; a trailing incomplete block (T not a multiple of k) is not scored, and T >= k is
 * required. Fixed across models. Chance at a scored position: 1/order.
 * Randomness: one gsl_rng_uniform_int per group element (none for no-op tokens).
 */
#include <string.h>
#include <strings.h>

#include "group.h"
#include "task.h"

#define WP_K_DEFAULT "2"
#define WP_K_MAX 256

static const struct {
    const char *name;
    int max_moved; /* element list = elements moving at most this many points; -1 = all */
    int k_tokens;  /* 1: blocks of k tokens */
    const char *what;
} wp_variants[] = {
    {"full", -1, 0, "uniform over the group"},
    {"swaps", 2, 0, "identity + transpositions"},
    {"swaps3", 3, 0, "permutations moving <= 3 points"},
    {"k_tokens", -1, 1, "uniform over the group, each element followed by k-1 no-op tokens"},
};
#define NUM(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const TaskParam wp_params[] = {
    {"k", WP_K_DEFAULT, "variant k_tokens: tokens per group element (the element, then k-1 no-op tokens); "
                        "1..256; only the last token of each block is scored"},
};

typedef struct {
    Group g;
    int *elems; /* (nelems) input alphabet as group element indices */
    int nelems;
    int k;      /* block length: 1 unless k_tokens */
    int nop;    /* the no-op token (k_tokens), = g.order; -1 otherwise */
    char desc[320];
} WordProblem;

static int wp_accepts(const char *name) {
    Group g;
    int ok = group_init_by_name(&g, name, NULL) == 0;
    if (ok) group_free(&g);
    return ok;
}

/* Element list of a variant (max_moved < 0: all). Returns count; out has capacity g->order. */
static int wp_variant_elems(const Group *g, int max_moved, int *out) {
    return group_elements_moving_at_most(g, max_moved < 0 ? g->n : max_moved, out);
}

static void wp_free(void *self) {
    WordProblem *w = self;
    if (!w) return;
    group_free(&w->g);
    free(w->elems);
    free(w);
}

static void *wp_create(const char *name, const char *variant, const TaskArgs *args, Err *err) {
    int vi = -1;
    for (int i = 0; i < NUM(wp_variants); i++)
        if (!strcasecmp(variant, wp_variants[i].name)) vi = i;
    CHECK(vi >= 0, "variant '%s' passed the family's list but is unknown here", variant);
    long k = 1;
    if (wp_variants[vi].k_tokens) {
        if (task_arg_int(args, "k", 1, WP_K_MAX, &k, err)) return NULL;
    } else if (strcmp(task_arg(args, "k"), WP_K_DEFAULT)) {
        err_set(err, "[task] k = '%s' applies to variant k_tokens only (variant here: %s) — remove the key or set "
                "variant = k_tokens", task_arg(args, "k"), variant);
        return NULL;
    }
    WordProblem *w = xcalloc(1, sizeof *w);
    if (group_init_by_name(&w->g, name, err)) {
        free(w);
        return NULL;
    }
    w->k = (int)k;
    w->nop = wp_variants[vi].k_tokens ? w->g.order : -1;
    w->elems = xmalloc((size_t)w->g.order * sizeof *w->elems);
    w->nelems = wp_variant_elems(&w->g, wp_variants[vi].max_moved, w->elems);
    /* A variant whose list is only the identity (swaps in A_n: transpositions are odd) is rejected. */
    if (w->nelems < 2 && w->g.order > 1) {
        char allowed[128] = "";
        for (int i = 0; i < NUM(wp_variants); i++) {
            if (wp_variant_elems(&w->g, wp_variants[i].max_moved, NULL) < 2) continue;
            if (allowed[0]) strncat(allowed, ", ", sizeof allowed - strlen(allowed) - 1);
            strncat(allowed, wp_variants[i].name, sizeof allowed - strlen(allowed) - 1);
        }
        err_set(err,
                "[task] variant = '%s' is not valid for %s: its inputs (%s) would be only the identity in %s "
                "(no other element moves so few points: transpositions are odd, so not in A_n; a rotation of Z_n, "
                "n >= 3, moves all n points); allowed values for %s: %s",
                variant, name, wp_variants[vi].what, w->g.name, name, allowed);
        wp_free(w);
        return NULL;
    }
    if (wp_variants[vi].k_tokens)
        snprintf(w->desc, sizeof w->desc,
                 "%s (order %d), inputs: k_tokens, k = %d (each of the %d elements, uniform, then %d no-op token%s = "
                 "token %d), prefix-product labels, g1 applied first, scored at the last token of each block",
                 w->g.name, w->g.order, w->k, w->nelems, w->k - 1, w->k == 2 ? "" : "s", w->nop);
    else
        snprintf(w->desc, sizeof w->desc,
                 "%s (order %d), inputs: %s (%d elements, %s), prefix-product labels, g1 applied first", w->g.name,
                 w->g.order, wp_variants[vi].name, w->nelems, wp_variants[vi].what);
    return w;
}

static int wp_vocab(const void *self) {
    const WordProblem *w = self;
    return w->g.order + (w->nop >= 0);
}
static const char *wp_describe(const void *self) { return ((const WordProblem *)self)->desc; }
static double wp_chance(const void *self) { return 1.0 / ((const WordProblem *)self)->g.order; }

static int wp_check_len(const void *self, int T, Err *err) {
    const WordProblem *w = self;
    if (T < w->k)
        return err_set(err, "k_tokens with k = %d scores the last token of each block of %d, so a length must be "
                       ">= %d", w->k, w->k, w->k);
    return 0;
}

/* inputs uniform over the element list (k_tokens: at block starts, no-ops between), targets = running
 * product "acc then g" (g_1 first) */
static void wp_fill(const void *self, gsl_rng *rng, int T, int *in, int *tg, unsigned char *mask) {
    const WordProblem *w = self;
    const int ord = w->g.order, k = w->k;
    int acc = 0; /* identity */
    for (int s = 0; s < T; s++) {
        if (s % k == 0) {
            int g = w->elems[gsl_rng_uniform_int(rng, (unsigned long)w->nelems)];
            acc = w->g.mul[acc * ord + g]; /* g_1..g_{s-1} applied, then g_s */
            in[s] = g;
        } else {
            in[s] = w->nop;
        }
        tg[s] = acc;
        mask[s] = s % k == k - 1; /* k = 1: every position */
    }
}

/* an element as its permutation in one-line notation, e.g. "(1 0 2 3 4)" (Z_n: "+k", the rotation by k);
 * the no-op token as "_" */
static void wp_token_text(const void *self, int token, char *buf, size_t n) {
    const WordProblem *w = self;
    if (w->nop >= 0 && token == w->nop) {
        snprintf(buf, n, "_");
        return;
    }
    if (token < 0 || token >= w->g.order) {
        snprintf(buf, n, "?%d", token);
        return;
    }
    if ((w->g.name[0] == 'Z') && !strchr(w->g.name, 'x')) { /* Z_n: rotation by `token` */
        snprintf(buf, n, "+%d", token);
        return;
    }
    const unsigned char *p = group_perm(&w->g, token);
    size_t o = 0;
    o += (size_t)snprintf(buf + o, o < n ? n - o : 0, "(");
    for (int i = 0; i < w->g.n; i++) o += (size_t)snprintf(buf + o, o < n ? n - o : 0, "%s%d", i ? " " : "", p[i]);
    snprintf(buf + o, o < n ? n - o : 0, ")");
}

const TaskKind task_word_problem = {
    .family = "group",
    .names = "s5|a5|a4xz5|z60|s3|s<n>, a<n> (n = 1..6)|z<n> (n = 1..255)|products GxH of those (e.g. s3xz2)",
    .accepts = wp_accepts,
    .variants = "full|swaps|swaps3|k_tokens",
    .default_variant = "swaps",
    .params = wp_params,
    .nparams = NUM(wp_params),
    .create = wp_create,
    .free = wp_free,
    .vocab = wp_vocab,
    .describe = wp_describe,
    .check_len = wp_check_len,
    .fill = wp_fill,
    .chance = wp_chance,
    .token_text = wp_token_text,
};
