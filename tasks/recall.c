/* recall.c -- associative recall (spec/tasks.md §3): `ar` and `mqar`, the generators of HazyResearch/zoology
 * (zoology/data/associative_recall.py `_ar`, zoology/data/multiquery_ar.py `multiquery_ar`), re-derived
 * here in C with GSL randomness (same distributions, not the same numbers as numpy).
 *
 * Vocabulary (both): V = task.vocab (default 8192). Keys are drawn without replacement from [1, V/2),
 * values without replacement from [V/2, V) (V/2 rounded down); token 0 is the filler. The model's
 * vocabulary is V for inputs and targets alike.
 * Context (both): positions 0..2K-1 hold k_1 v_1 k_2 v_2 ... k_K v_K (K = task.num_kv), not scored.
 *
 * mqar (Zoology's multi-query AR): length T even, V > T, 4K <= T. space = (T - 2K)/2; K distinct gaps
 *   g_1..g_K in {0..space-1} by sequential weighted sampling without replacement, weight (g+1)^(a-1)
 *   (a = task.power_a, default 0.01; a = 1 is uniform). (numpy's choice(replace=False, p=...) used by
 *   Zoology draws the same ordered sample: each next gap from p restricted to the gaps not yet drawn.)
 *   Query j, the key k_j, sits at position 2K + 2*g_j; its label, at that same position, is v_j (the model
 *   answers on reading the key). Every key is queried exactly once, queries only at even offsets after
 *   the context. K scored positions per sequence.
 * ar (Zoology's associative_recall, default one query): T even, V > T, 2K + Q <= T (Q = task.num_queries,
 *   default 1, <= K). Q distinct pairs, uniform, are queried, at Q distinct positions drawn uniformly from
 *   [2K, T) (any parity); label v at the query position. Q scored positions per sequence.
 *
 * Filler (both): every position that is neither context nor query is 0, or with task.random_non_queries
 * = 1 (Zoology's default) an independent uniform draw from [0, V) -- which can equal a key or a value of
 * the sequence (as in Zoology, where the zeros are replaced after the fact).
 * Labels and mask: mask = 1 exactly at the query positions; targets there = the queried key's value;
 * targets elsewhere are 0 and mean nothing.
 * Metric: Zoology's accuracy is the per-query accuracy averaged within each example, then over examples.
 * Every sequence here has the same number of scored positions (K for mqar, Q for ar), so that equals
 * the trainer's token accuracy (correct / scored over the whole test set). Chance at a scored position:
 * 1/(number of values) = 1/(V - V/2).
 * Randomness, in this order per sequence: keys, values, (ar: queried pairs, query positions; mqar: gaps),
 * then one draw per filler position in position order when random_non_queries = 1.
 */
#include <math.h>
#include <string.h>
#include <strings.h>

#include "task.h"

#define RC_V_MAX (1L << 20)
#define NUM(a) ((int)(sizeof(a) / sizeof((a)[0])))

typedef struct {
    int multi;   /* 1 = mqar, 0 = ar */
    int K, V, Q; /* pairs, vocabulary, queries (ar; mqar: Q = K) */
    double a;    /* mqar gap power */
    int rnq;     /* random_non_queries */
    char desc[400];
} Recall;

static const TaskParam ar_params[] = {
    {"num_kv", "4", "number of key-value pairs K, >= 1; needs 2K + num_queries <= T"},
    {"num_queries", "1", "number of queried pairs Q, 1..K (1 = single-query AR)"},
    {"vocab", "8192", "vocabulary size V: keys from [1, V/2), values from [V/2, V); needs V > T"},
    {"random_non_queries", "1", "1: filler positions uniform from [0, V) (Zoology's default); 0: filler is 0"},
};
static const TaskParam mqar_params[] = {
    {"num_kv", "8", "number of key-value pairs K (each queried once), >= 1; needs 4K <= T"},
    {"vocab", "8192", "vocabulary size V: keys from [1, V/2), values from [V/2, V); needs V > T"},
    {"power_a", "0.01", "query gap g has weight (g+1)^(a-1), a in (0, 10]; 1 = uniform gaps"},
    {"random_non_queries", "1", "1: filler positions uniform from [0, V) (Zoology's default); 0: filler is 0"},
};

static int ar_accepts(const char *name) { return name && !strcasecmp(name, "ar"); }
static int mqar_accepts(const char *name) { return name && !strcasecmp(name, "mqar"); }

static void rc_free(void *self) { free(self); }

static void *rc_create(int multi, const TaskArgs *args, Err *err) {
    long K, V, Q = 0, rnq;
    double a = 1;
    if (task_arg_int(args, "num_kv", 1, RC_V_MAX, &K, err) || task_arg_int(args, "vocab", 4, RC_V_MAX, &V, err) ||
        task_arg_int(args, "random_non_queries", 0, 1, &rnq, err))
        return NULL;
    if (multi) {
        if (task_arg_real(args, "power_a", 0, 10, &a, err)) return NULL;
        if (!(a > 0)) {
            err_set(err, "[task] power_a = '%s': must be > 0 (the gap weight (g+1)^(a-1); 1 = uniform)",
                    task_arg(args, "power_a"));
            return NULL;
        }
        Q = K;
    } else if (task_arg_int(args, "num_queries", 1, K, &Q, err)) {
        return NULL;
    }
    /* K distinct keys in [1, V/2) and K distinct values in [V/2, V) */
    if (V / 2 - 1 < K) {
        err_set(err, "[task] vocab = %ld: too small for num_kv = %ld distinct keys in [1, %ld) — use vocab >= %ld", V,
                K, V / 2, 2 * K + 2);
        return NULL;
    }
    Recall *r = xcalloc(1, sizeof *r);
    r->multi = multi, r->K = (int)K, r->V = (int)V, r->Q = (int)Q, r->a = a, r->rnq = (int)rnq;
    char filler[64];
    if (rnq) snprintf(filler, sizeof filler, "uniform from [0, %d)", r->V);
    else snprintf(filler, sizeof filler, "0");
    if (multi)
        snprintf(r->desc, sizeof r->desc,
                 "mqar (Zoology): %d key-value pairs, keys from [1, %d), values from [%d, %d), each key queried once "
                 "at 2K + 2g, gap weight (g+1)^(%g-1); filler %s; V = %d; scored at the %d query positions",
                 r->K, r->V / 2, r->V / 2, r->V, r->a, filler, r->V, r->K);
    else
        snprintf(r->desc, sizeof r->desc,
                 "ar (Zoology): %d key-value pairs, keys from [1, %d), values from [%d, %d), %d quer%s at uniform "
                 "positions after the pairs; filler %s; V = %d; scored at the query position%s",
                 r->K, r->V / 2, r->V / 2, r->V, r->Q, r->Q == 1 ? "y" : "ies", filler, r->V, r->Q == 1 ? "" : "s");
    return r;
}

static void *ar_create(const char *name, const char *variant, const TaskArgs *args, Err *err) {
    return rc_create(0, args, err);
}
static void *mqar_create(const char *name, const char *variant, const TaskArgs *args, Err *err) {
    return rc_create(1, args, err);
}

static int rc_vocab(const void *self) { return ((const Recall *)self)->V; }
static const char *rc_describe(const void *self) { return ((const Recall *)self)->desc; }
static double rc_chance(const void *self) {
    const Recall *r = self;
    return 1.0 / (r->V - r->V / 2);
}

static int rc_check_len(const void *self, int T, Err *err) {
    const Recall *r = self;
    if (T % 2) return err_set(err, "%s lengths must be even (Zoology's rule) — use %d or %d", r->multi ? "mqar" : "ar", T - 1, T + 1);
    if (r->V <= T)
        return err_set(err, "the vocabulary must exceed the length (vocab = %d, Zoology's rule V > T) — raise task.vocab "
                       "above %d or shorten the sequence", r->V, T);
    if (r->multi && 4L * r->K > T)
        return err_set(err, "mqar needs 4 * num_kv <= T (num_kv = %d needs T >= %d) — lower task.num_kv to <= %d or "
                       "lengthen the sequence", r->K, 4 * r->K, T / 4);
    if (!r->multi && 2L * r->K + r->Q > T)
        return err_set(err, "ar needs 2 * num_kv + num_queries <= T (%d pairs, %d quer%s need T >= %d) — lower "
                       "task.num_kv or lengthen the sequence", r->K, r->Q, r->Q == 1 ? "y" : "ies", 2 * r->K + r->Q);
    return 0;
}

/* n distinct values uniform from [lo, hi), in draw order (a uniformly random ordered sample), by
 * rejection; used marks taken values (indexed from 0, size >= hi) and is left set. */
static void draw_distinct(gsl_rng *rng, int lo, int hi, int n, int *out, unsigned char *used) {
    for (int i = 0; i < n; i++) {
        int x;
        do x = lo + (int)gsl_rng_uniform_int(rng, (unsigned long)(hi - lo));
        while (used[x]);
        used[x] = 1;
        out[i] = x;
    }
}

static void rc_fill(const void *self, gsl_rng *rng, int T, int *in, int *tg, unsigned char *mask) {
    const Recall *r = self;
    const int K = r->K, V = r->V, half = V / 2;
    int *keys = xmalloc((size_t)K * sizeof *keys), *vals = xmalloc((size_t)K * sizeof *vals);
    unsigned char *used = xcalloc((size_t)(V > T ? V : T), 1);
    draw_distinct(rng, 1, half, K, keys, used);
    draw_distinct(rng, half, V, K, vals, used);
    memset(mask, 0, (size_t)T);
    for (int t = 0; t < T; t++) in[t] = -1, tg[t] = 0;
    for (int j = 0; j < K; j++) in[2 * j] = keys[j], in[2 * j + 1] = vals[j];
    if (r->multi) {
        /* gaps: sequential weighted sampling without replacement, weight (g+1)^(a-1) (for a > 1 scaled by
         * space^(1-a), which changes no probability, so that no weight overflows) */
        const int space = (T - 2 * K) / 2;
        double *w = xmalloc((size_t)space * sizeof *w);
        unsigned char *taken = xcalloc((size_t)space, 1);
        for (int g = 0; g < space; g++) w[g] = pow(r->a > 1 ? (g + 1.0) / space : g + 1.0, r->a - 1.0);
        for (int j = 0; j < K; j++) {
            double total = 0;
            int last = -1;
            for (int g = 0; g < space; g++)
                if (!taken[g]) total += w[g], last = g;
            double u = gsl_rng_uniform(rng) * total, acc = 0;
            int pick = last; /* rounding: u beyond the accumulated sum takes the last gap left */
            for (int g = 0; g < space; g++)
                if (!taken[g] && u < (acc += w[g])) {
                    pick = g;
                    break;
                }
            taken[pick] = 1;
            const int pos = 2 * K + 2 * pick;
            in[pos] = keys[j], tg[pos] = vals[j], mask[pos] = 1;
        }
        free(taken);
        free(w);
    } else {
        memset(used, 0, (size_t)(V > T ? V : T));
        int *idx = xmalloc((size_t)r->Q * sizeof *idx), *pos = xmalloc((size_t)r->Q * sizeof *pos);
        draw_distinct(rng, 0, K, r->Q, idx, used);
        memset(used, 0, (size_t)(V > T ? V : T));
        draw_distinct(rng, 2 * K, T, r->Q, pos, used);
        for (int q = 0; q < r->Q; q++) in[pos[q]] = keys[idx[q]], tg[pos[q]] = vals[idx[q]], mask[pos[q]] = 1;
        free(idx), free(pos);
    }
    for (int t = 0; t < T; t++)
        if (in[t] < 0) in[t] = r->rnq ? (int)gsl_rng_uniform_int(rng, (unsigned long)V) : 0;
    free(keys), free(vals), free(used);
}

/* "k17" for a key token, "v4100" for a value token, "0" for the filler token 0 */
static void rc_token_text(const void *self, int token, char *buf, size_t n) {
    const Recall *r = self;
    if (token == 0) snprintf(buf, n, "0");
    else if (token > 0 && token < r->V / 2) snprintf(buf, n, "k%d", token);
    else if (token >= r->V / 2 && token < r->V) snprintf(buf, n, "v%d", token);
    else snprintf(buf, n, "?%d", token);
}

const TaskKind task_ar = {
    .family = "ar",
    .names = "ar",
    .accepts = ar_accepts,
    .variants = NULL,
    .default_variant = NULL,
    .params = ar_params,
    .nparams = NUM(ar_params),
    .create = ar_create,
    .free = rc_free,
    .vocab = rc_vocab,
    .describe = rc_describe,
    .check_len = rc_check_len,
    .fill = rc_fill,
    .chance = rc_chance,
    .token_text = rc_token_text,
};

const TaskKind task_mqar = {
    .family = "mqar",
    .names = "mqar",
    .accepts = mqar_accepts,
    .variants = NULL,
    .default_variant = NULL,
    .params = mqar_params,
    .nparams = NUM(mqar_params),
    .create = mqar_create,
    .free = rc_free,
    .vocab = rc_vocab,
    .describe = rc_describe,
    .check_len = rc_check_len,
    .fill = rc_fill,
    .chance = rc_chance,
    .token_text = rc_token_text,
};
