/* word_problem.c -- group word problems (spec/tasks.md §1): inputs g_1..g_T, targets the prefix products.
 *
 * Tasks: s<n>, a<n> (n = 1..6), z<n> (n = 1..255), e.g. s5, a5, s3, z60 (case-insensitive). Variants
 * choose the input distribution, always uniform over a fixed element list (in group index order):
 *   full    every element of the group
 *   swaps   identity + transpositions (elements moving <= 2 points; S5: 11). Not valid for A_n (odd).
 *   swaps3  elements moving <= 3 points: identity, transpositions, 3-cycles (S5: 31; A5: 21)
 * Token ids are group element indices (group.h), so V = order for inputs and targets alike.
 * targets[t] = g_1·g_2·...·g_t with g_1 applied first (group.h composition rule); every position counts.
 * One gsl_rng_uniform_int per token.
 */
#include <string.h>
#include <strings.h>

#include "group.h"
#include "task.h"

static const struct {
    const char *name;
    int max_moved; /* element list = elements moving at most this many points; -1 = all */
    const char *what;
} wp_variants[] = {
    {"full", -1, "uniform over the group"},
    {"swaps", 2, "identity + transpositions"},
    {"swaps3", 3, "permutations moving <= 3 points"},
};
#define NUM(a) ((int)(sizeof(a) / sizeof((a)[0])))

typedef struct {
    Group g;
    int *elems; /* (nelems) input alphabet as group element indices */
    int nelems;
    char desc[256];
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
    (void)args;
    int vi = -1;
    for (int i = 0; i < NUM(wp_variants); i++)
        if (!strcasecmp(variant, wp_variants[i].name)) vi = i;
    CHECK(vi >= 0, "variant '%s' passed the family's list but is unknown here", variant);
    WordProblem *w = xcalloc(1, sizeof *w);
    if (group_init_by_name(&w->g, name, err)) {
        free(w);
        return NULL;
    }
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
                "[task] variant = '%s' is not valid for %s: its inputs (%s) would be only the identity "
                "in %s (transpositions are odd permutations, not in A_n); allowed values for %s: %s",
                variant, name, wp_variants[vi].what, w->g.name, name, allowed);
        wp_free(w);
        return NULL;
    }
    snprintf(w->desc, sizeof w->desc,
             "%s (order %d), inputs: %s (%d elements, %s), prefix-product labels, g1 applied first", w->g.name,
             w->g.order, wp_variants[vi].name, w->nelems, wp_variants[vi].what);
    return w;
}

static int wp_vocab(const void *self) { return ((const WordProblem *)self)->g.order; }
static const char *wp_describe(const void *self) { return ((const WordProblem *)self)->desc; }
static double wp_chance(const void *self) { return 1.0 / ((const WordProblem *)self)->g.order; }

/* inputs uniform over the element list, targets = running product "acc then g" (g_1 first) */
static void wp_fill(const void *self, gsl_rng *rng, int T, int *in, int *tg, unsigned char *mask) {
    const WordProblem *w = self;
    const int ord = w->g.order;
    int acc = 0; /* identity */
    for (int s = 0; s < T; s++) {
        int g = w->elems[gsl_rng_uniform_int(rng, (unsigned long)w->nelems)];
        acc = w->g.mul[acc * ord + g]; /* g_1..g_{s-1} applied, then g_s */
        in[s] = g;
        tg[s] = acc;
    }
    memset(mask, 1, (size_t)T);
}

/* an element as its permutation in one-line notation, e.g. "(1 0 2 3 4)" */
static void wp_token_text(const void *self, int token, char *buf, size_t n) {
    const WordProblem *w = self;
    if (token < 0 || token >= w->g.order) {
        snprintf(buf, n, "?%d", token);
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
    .names = "s<n>|a<n> (n = 1..6)|z<n> (n = 1..255), e.g. s5, a5, s3, z60",
    .accepts = wp_accepts,
    .variants = "full|swaps|swaps3",
    .default_variant = "swaps",
    .params = NULL,
    .nparams = 0,
    .create = wp_create,
    .free = wp_free,
    .vocab = wp_vocab,
    .describe = wp_describe,
    .fill = wp_fill,
    .chance = wp_chance,
    .token_text = wp_token_text,
};
