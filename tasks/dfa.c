/* dfa.c -- DFA files (dfa.h) and the `dfa` task: any regular language from a user's automaton
 * (spec/tasks.md §2).
 *
 * Task `name = dfa`, keys:
 *   dfa_file      the DFA file (format in dfa.h); a path relative to the working directory
 *   dfa_sampling  uniform  : every input symbol uniform and independent (uniform strings of length n)
 *                 balanced : the class of the whole string (accept or reject) is drawn first, each with
 *                            probability 1/2, then uniform strings of length n are drawn until one has that
 *                            class (rejection sampling: the result is uniform over the strings of length n
 *                            in that class). At most dfa_max_tries strings per sequence; when none has the
 *                            class generation stops with an error naming the file, the length, the class
 *                            and its probability. A length at which a class cannot occur at all (e.g. odd
 *                            lengths for "even length") is refused before any sampling, by check_len, so
 *                            `rwkvlab config` rejects such a train_len or test length; the set of states
 *                            reachable in n steps is computed for n up to 4096 (less for very large DFAs)
 *                            and extrapolated once it repeats with a period <= 8.
 *                            Balanced is about the whole string: the labels of shorter prefixes are not
 *                            balanced. A DFA whose reachable states are all accepting cannot be balanced
 *                            (an error when the task is built).
 *   dfa_max_tries the bound of balanced sampling (default 10000)
 * Variants (which positions count; T is always the length of the sequence the model reads):
 *   prefix (default) input length n = T; position t is labelled 1 if the DFA accepts x_0..x_t, else 0;
 *          every position counts (recognition is tested at every length)
 *   last   input length n = T; the label of the whole string at its last token T-1; only it counts
 *   final  input length n = T-1 and one blank token at position T-1 where the label of the whole string is
 *          read (Delétang et al.'s formulation); only T-1 counts. T = 1 is the empty string.
 * Token layout: symbol i of the alphabet (declaration order) = token i, blank = token nsym (used only by
 * final, present in every variant so that variants share a model); V = nsym + 1; targets 1 = accept,
 * 0 = reject (also 0 where nothing counts). Chance: 1/2.
 * Randomness: the class (balanced only), then one gsl_rng_uniform_int per symbol, per try.
 */
#include "dfa.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "task.h"

/* ---- reading a DFA file ------------------------------------------------------------------------------ */

enum { D_STATES, D_ALPHABET, D_START, D_ACCEPT, D_NDECL };
static const char *const decl_kw[D_NDECL] = {"states", "alphabet", "start", "accept"};

typedef struct {
    int line;     /* 0 = not given */
    char **names;
    int n, cap;
} Decl;

typedef struct {
    int line;
    char *from, *sym, *to;
} Trans;

typedef struct {
    const char *path;
    int lastline;
    Decl decl[D_NDECL];
    Trans *tr;
    int ntr, captr;
    int *sorted_states, *sorted_syms; /* ids sorted by name, for lookup */
} Parse;

static void parse_free(Parse *p) {
    for (int i = 0; i < D_NDECL; i++) free(p->decl[i].names);
    free(p->tr);
    free(p->sorted_states);
    free(p->sorted_syms);
}

/* "PATH:LINE: " + message */
static int dfa_err(Err *err, const Parse *p, int line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int dfa_err(Err *err, const Parse *p, int line, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set(err, "%s:%d: %s", p->path, line, msg);
}

/* the whole file in memory, NUL-terminated */
static char *read_all(const char *path, size_t *len, Err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        err_set(err, "[task] dfa_file = '%s': cannot open it: %s — give the path of a DFA file (relative to the "
                     "working directory)", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > (size_t)DFA_MAX_FILE) {
                fclose(f);
                free(buf);
                err_set(err, "%s: larger than %ld MiB — not a DFA file?", path, DFA_MAX_FILE >> 20);
                return NULL;
            }
            cap *= 2;
            char *nb = realloc(buf, cap);
            CHECK(nb != NULL, "out of memory reading %s", path);
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        err_set(err, "%s: read error", path);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static uint64_t fnv1a64(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* splits s in place at spaces; returns the number of fields, at most max (more: max + 1) */
static int split(char *s, char **out, int max) {
    int n = 0;
    for (;;) {
        while (is_space(*s)) *s++ = '\0';
        if (!*s) return n;
        if (n == max) return max + 1;
        out[n++] = s;
        while (*s && !is_space(*s)) s++;
    }
}

/* a valid name, or -1 with err */
static int check_name(const Parse *p, int line, const char *name, const char *what, Err *err) {
    size_t len = strlen(name);
    if (len > DFA_NAME_MAX)
        return dfa_err(err, p, line, "%s name '%.40s...' is longer than %d characters", what, name, DFA_NAME_MAX);
    if (!strcmp(name, "->"))
        return dfa_err(err, p, line, "'->' cannot be a %s name (it separates a transition's symbol from its "
                                     "target: FROM SYMBOL -> TO)", what);
    for (const char *c = name; *c; c++)
        if (*c == ':')
            return dfa_err(err, p, line, "%s name '%s' contains ':' (names cannot; ':' ends a declaration "
                                         "keyword such as 'states:')", what, name);
    return 0;
}

static int add_name(Decl *d, char *name) {
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 16;
        d->names = realloc(d->names, (size_t)d->cap * sizeof *d->names);
        CHECK(d->names != NULL, "out of memory reading a DFA file");
    }
    d->names[d->n++] = name;
    return 0;
}

/* one line (comment already cut, NUL-terminated) */
static int parse_line(Parse *p, int line, char *s, Err *err) {
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c < 32 && !is_space(*c))
            return dfa_err(err, p, line, "control character (byte %d) — a DFA file is plain text",
                           (unsigned char)*c);
    while (is_space(*s)) s++;
    if (!*s) return 0;
    char *colon = strchr(s, ':');
    if (colon) {
        *colon = '\0';
        char *kw[2];
        int nk = split(s, kw, 1);
        int k = -1;
        for (int i = 0; nk == 1 && i < D_NDECL; i++)
            if (!strcmp(kw[0], decl_kw[i])) k = i;
        if (k < 0)
            return dfa_err(err, p, line, "unknown declaration '%s:' — allowed: states:, alphabet:, start:, accept: "
                                         "(or a transition 'FROM SYMBOL -> TO')", nk ? kw[0] : "");
        Decl *d = &p->decl[k];
        if (d->line)
            return dfa_err(err, p, line, "second '%s:' line (the first is line %d) — list all on one line",
                           decl_kw[k], d->line);
        d->line = line;
        char *rest = colon + 1;
        for (;;) {
            while (is_space(*rest)) *rest++ = '\0';
            if (!*rest) break;
            char *name = rest;
            while (*rest && !is_space(*rest)) rest++;
            if (*rest) *rest++ = '\0';
            if (check_name(p, line, name, k == D_ALPHABET ? "symbol" : "state", err)) return -1;
            add_name(d, name);
        }
        return 0;
    }
    char *f[4];
    char copy[80];
    snprintf(copy, sizeof copy, "%s", s);
    for (char *c = copy; *c; c++)
        if (*c == '\t') *c = ' ';
    int nf = split(s, f, 4);
    if (nf != 4 || strcmp(f[2], "->"))
        return dfa_err(err, p, line, "cannot read '%s%s': expected a declaration (states:, alphabet:, start:, "
                                     "accept:) or a transition 'FROM SYMBOL -> TO'", copy,
                       strlen(copy) == sizeof copy - 1 ? "..." : "");
    if (check_name(p, line, f[0], "state", err) || check_name(p, line, f[1], "symbol", err) ||
        check_name(p, line, f[3], "state", err))
        return -1;
    if (p->ntr == p->captr) {
        p->captr = p->captr ? 2 * p->captr : 64;
        p->tr = realloc(p->tr, (size_t)p->captr * sizeof *p->tr);
        CHECK(p->tr != NULL, "out of memory reading a DFA file");
    }
    p->tr[p->ntr++] = (Trans){line, f[0], f[1], f[3]};
    return 0;
}

static int cmp_by_name(const void *a, const void *b, void *names) {
    char **nm = names;
    return strcmp(nm[*(const int *)a], nm[*(const int *)b]);
}

/* ids 0..n-1 sorted by name; a duplicate name is an error on the declaration line */
static int *sort_names(const Parse *p, const Decl *d, const char *what, Err *err) {
    int *idx = xmalloc((size_t)(d->n ? d->n : 1) * sizeof *idx);
    for (int i = 0; i < d->n; i++) idx[i] = i;
    qsort_r(idx, (size_t)d->n, sizeof *idx, cmp_by_name, d->names);
    for (int i = 1; i < d->n; i++)
        if (!strcmp(d->names[idx[i - 1]], d->names[idx[i]])) {
            dfa_err(err, p, d->line, "%s '%s' is listed twice", what, d->names[idx[i]]);
            free(idx);
            return NULL;
        }
    return idx;
}

static int lookup(const Decl *d, const int *sorted, const char *name) {
    int lo = 0, hi = d->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(name, d->names[sorted[mid]]);
        if (!c) return sorted[mid];
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return -1;
}

/* "a, b, c" (at most ~200 characters) */
static void list_names(const Decl *d, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < d->n && used < n; i++) {
        if (used > 200) {
            snprintf(buf + used, n - used, ", ... (%d in all)", d->n);
            return;
        }
        used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? ", " : "", d->names[i]);
    }
}

static int unknown(Err *err, const Parse *p, int line, const char *what, const char *name, int k) {
    char names[320];
    list_names(&p->decl[k], names, sizeof names);
    return dfa_err(err, p, line, "%s '%s' is not declared (%s: %s)", what, name, decl_kw[k], names);
}

static int dfa_build(Dfa *d, Parse *p, Err *err) {
    Decl *st = &p->decl[D_STATES], *al = &p->decl[D_ALPHABET], *sa = &p->decl[D_START], *ac = &p->decl[D_ACCEPT];
    /* declarations */
    static const char *const example[D_NDECL] = {"states: q0 q1", "alphabet: a b", "start: q0", "accept: q1"};
    for (int k = 0; k < D_NDECL; k++)
        if (!p->decl[k].line)
            return dfa_err(err, p, p->lastline, "end of file without a '%s:' line — add one, e.g. '%s'", decl_kw[k],
                           example[k]);
    if (st->n == 0) return dfa_err(err, p, st->line, "no states: 'states:' lists none — e.g. 'states: q0 q1'");
    if (al->n == 0)
        return dfa_err(err, p, al->line, "empty alphabet: 'alphabet:' lists no symbols — e.g. 'alphabet: a b'");
    if (st->n > DFA_MAX_STATES) return dfa_err(err, p, st->line, "%d states: at most %d", st->n, DFA_MAX_STATES);
    if (al->n > DFA_MAX_SYMBOLS) return dfa_err(err, p, al->line, "%d symbols: at most %d", al->n, DFA_MAX_SYMBOLS);
    if ((long)st->n * al->n > DFA_MAX_TABLE)
        return dfa_err(err, p, st->line, "%d states x %d symbols exceeds %ld transitions", st->n, al->n, DFA_MAX_TABLE);
    if (!(p->sorted_states = sort_names(p, st, "state", err))) return -1;
    if (!(p->sorted_syms = sort_names(p, al, "symbol", err))) return -1;
    if (sa->n != 1)
        return dfa_err(err, p, sa->line, "'start:' names %d states — give exactly one", sa->n);
    const int start = lookup(st, p->sorted_states, sa->names[0]);
    if (start < 0) return unknown(err, p, sa->line, "start state", sa->names[0], D_STATES);
    if (ac->n == 0)
        return dfa_err(err, p, ac->line, "no accepting state: 'accept:' lists none, so the DFA accepts nothing — "
                                         "name at least one state");

    d->nstates = st->n, d->nsym = al->n, d->start = start;
    d->state = xcalloc((size_t)st->n, sizeof *d->state);
    d->sym = xcalloc((size_t)al->n, sizeof *d->sym);
    for (int i = 0; i < st->n; i++) snprintf(d->state[i], sizeof d->state[i], "%s", st->names[i]);
    for (int i = 0; i < al->n; i++) snprintf(d->sym[i], sizeof d->sym[i], "%s", al->names[i]);
    d->accept = xcalloc((size_t)st->n, 1);
    for (int i = 0; i < ac->n; i++) {
        int q = lookup(st, p->sorted_states, ac->names[i]);
        if (q < 0) return unknown(err, p, ac->line, "accepting state", ac->names[i], D_STATES);
        if (d->accept[q]) return dfa_err(err, p, ac->line, "accepting state '%s' is listed twice", ac->names[i]);
        d->accept[q] = 1, d->naccept++;
    }
    /* transitions */
    const long ncell = (long)st->n * al->n;
    d->next = xmalloc((size_t)ncell * sizeof *d->next);
    for (long i = 0; i < ncell; i++) d->next[i] = -1;
    for (int i = 0; i < p->ntr; i++) {
        const Trans *t = &p->tr[i];
        int q = lookup(st, p->sorted_states, t->from), a = lookup(al, p->sorted_syms, t->sym),
            r = lookup(st, p->sorted_states, t->to);
        if (q < 0) return unknown(err, p, t->line, "state", t->from, D_STATES);
        if (a < 0) return unknown(err, p, t->line, "symbol", t->sym, D_ALPHABET);
        if (r < 0) return unknown(err, p, t->line, "target state", t->to, D_STATES);
        long cell = (long)q * al->n + a;
        if (d->next[cell] >= 0) {
            int first = 0;
            for (int j = 0; j < i && !first; j++)
                if (!strcmp(p->tr[j].from, t->from) && !strcmp(p->tr[j].sym, t->sym)) first = p->tr[j].line;
            return dfa_err(err, p, t->line, "second transition for state '%s' on symbol '%s' (line %d already has "
                                            "'%s %s -> %s') — keep one: a DFA has one next state per symbol",
                           t->from, t->sym, first, t->from, t->sym, d->state[d->next[cell]]);
        }
        d->next[cell] = r;
    }
    long missing = 0, first = -1;
    for (long i = 0; i < ncell; i++)
        if (d->next[i] < 0) missing += 1, first = first < 0 ? i : first;
    if (missing) {
        const char *q = d->state[first / al->n], *a = d->sym[first % al->n];
        return dfa_err(err, p, st->line, "state '%s' has no transition on symbol '%s'%s — add a line '%s %s -> STATE' "
                                         "(every state needs one transition per symbol; %ld missing in all)",
                       q, a, missing > 1 ? " (and others)" : "", q, a, missing);
    }
    /* reachability from the start state (breadth first) */
    unsigned char *seen = xcalloc((size_t)st->n, 1);
    int *queue = xmalloc((size_t)st->n * sizeof *queue);
    int head = 0, tail = 0;
    queue[tail++] = start, seen[start] = 1;
    while (head < tail) {
        int q = queue[head++];
        for (int a = 0; a < al->n; a++) {
            int r = dfa_next(d, q, a);
            if (!seen[r]) seen[r] = 1, queue[tail++] = r;
        }
    }
    int bad = -1;
    for (int q = 0; q < st->n && bad < 0; q++)
        if (d->accept[q] && !seen[q]) bad = q;
    free(seen);
    free(queue);
    if (bad >= 0)
        return dfa_err(err, p, ac->line, "accepting state '%s' is not reachable from the start state '%s' — fix the "
                                         "transitions into it, or drop it from 'accept:'", d->state[bad],
                       d->state[start]);
    return 0;
}

int dfa_load(Dfa *d, const char *path, Err *err) {
    memset(d, 0, sizeof *d);
    size_t len;
    char *buf = read_all(path, &len, err);
    if (!buf) return -1;
    Parse p = {.path = path};
    int rc = 0;
    if (memchr(buf, '\0', len)) rc = err_set(err, "%s: contains NUL bytes — a DFA file is plain text", path);
    char *s = buf;
    int line = 0;
    while (rc == 0 && s < buf + len) {
        char *e = strchr(s, '\n');
        if (e) *e = '\0';
        line++;
        char *hash = strchr(s, '#');
        if (hash) *hash = '\0';
        rc = parse_line(&p, line, s, err);
        s = e ? e + 1 : buf + len;
    }
    p.lastline = line;
    if (rc == 0) rc = dfa_build(d, &p, err);
    if (rc == 0) d->hash = fnv1a64(buf, len);
    parse_free(&p);
    free(buf);
    if (rc) {
        dfa_free(d);
        return -1;
    }
    return 0;
}

void dfa_free(Dfa *d) {
    if (!d) return;
    free(d->state);
    free(d->sym);
    free(d->accept);
    free(d->next);
    memset(d, 0, sizeof *d);
}

/* ---- the task ---------------------------------------------------------------------------------------- */

typedef enum { DV_PREFIX, DV_LAST, DV_FINAL } DfaVariant;
static const char *const dfa_variant_names[] = {"prefix", "last", "final"};

/* which classes occur among the strings of length n (balanced sampling needs both) */
#define DFA_REACH_LEN 4096        /* lengths computed at most ... */
#define DFA_REACH_WORK 100000000L /* ... and at most this many transition steps in all */
#define DFA_REACH_PERIOD 8        /* the set of states reachable in n steps repeats with period <= this */

typedef struct {
    Dfa d;
    DfaVariant var;
    int balanced;
    long max_tries;
    unsigned char *cls; /* (ncls) bit 0: some string of length n is rejected, bit 1: some is accepted */
    int ncls, period;   /* period p > 0: the reachable set at ncls-1 equals the one at ncls-1-p */
    char path[CFG_STR];
    char desc[1024];
} DfaTask;

/* The sets S_n of states reachable in exactly n steps, n = 0, 1, ...: S_{n+1} = next(S_n), so once
 * S_n = S_{n-p} the sequence repeats with period p. Computed until such a repeat (p <= DFA_REACH_PERIOD)
 * or the limits above; lengths beyond an unrepeated prefix are unknown (both classes assumed). */
static void reach_init(DfaTask *t) {
    const Dfa *d = &t->d;
    const long edges = (long)d->nstates * d->nsym;
    int maxn = DFA_REACH_LEN;
    if ((long)maxn * edges > DFA_REACH_WORK) maxn = (int)(DFA_REACH_WORK / edges);
    if (maxn < 1) maxn = 1;
    const int R = DFA_REACH_PERIOD + 1;
    unsigned char *ring = xcalloc((size_t)R * d->nstates, 1);
    t->cls = xcalloc((size_t)maxn + 1, 1);
    ring[d->start] = 1;
    t->cls[0] = (unsigned char)(d->accept[d->start] ? 2 : 1);
    int n = 0;
    t->period = 0;
    while (n < maxn && !t->period) {
        const unsigned char *cur = ring + (size_t)(n % R) * d->nstates;
        unsigned char *nx = ring + (size_t)((n + 1) % R) * d->nstates;
        memset(nx, 0, (size_t)d->nstates);
        for (int q = 0; q < d->nstates; q++)
            if (cur[q])
                for (int a = 0; a < d->nsym; a++) nx[dfa_next(d, q, a)] = 1;
        n++;
        unsigned char bits = 0;
        for (int q = 0; q < d->nstates; q++)
            if (nx[q]) bits |= d->accept[q] ? 2 : 1;
        t->cls[n] = bits;
        for (int p = 1; p <= DFA_REACH_PERIOD && p <= n && !t->period; p++)
            if (!memcmp(nx, ring + (size_t)((n - p) % R) * d->nstates, (size_t)d->nstates)) t->period = p;
    }
    t->ncls = n + 1;
    free(ring);
}

static int reach_bits(const DfaTask *t, int n) {
    if (n < t->ncls) return t->cls[n];
    if (!t->period) return 3; /* not computed: assume both (fill reports it if a class never comes) */
    const int base = t->ncls - 1 - t->period;
    return t->cls[base + (n - base) % t->period];
}

static int dfa_accepts(const char *name) { return name && !strcasecmp(name, "dfa"); }

static void dfa_task_free(void *self) {
    DfaTask *t = self;
    if (!t) return;
    dfa_free(&t->d);
    free(t->cls);
    free(t);
}

static void *dfa_create(const char *name, const char *variant, const TaskArgs *args, Err *err) {
    (void)name;
    int vi = -1;
    for (int i = 0; i < 3; i++)
        if (!strcasecmp(variant, dfa_variant_names[i])) vi = i;
    CHECK(vi >= 0, "dfa: variant '%s' passed the family's list but is unknown here", variant);
    const char *file = task_arg(args, "dfa_file"), *sampling = task_arg(args, "dfa_sampling");
    CHECK(file && sampling, "dfa: keys not declared");
    if (!*file) {
        err_set(err, "[task] name = dfa needs the automaton: add 'dfa_file = PATH' under [task] (format: README, "
                     "tasks/dfa.h)");
        return NULL;
    }
    int balanced;
    if (!strcasecmp(sampling, "uniform")) balanced = 0;
    else if (!strcasecmp(sampling, "balanced")) balanced = 1;
    else {
        err_set(err, "[task] dfa_sampling = '%s': allowed values: uniform, balanced", sampling);
        return NULL;
    }
    long tries;
    if (task_arg_int(args, "dfa_max_tries", 1, 100000000L, &tries, err)) return NULL;
    DfaTask *t = xcalloc(1, sizeof *t);
    t->var = (DfaVariant)vi, t->balanced = balanced, t->max_tries = tries;
    snprintf(t->path, sizeof t->path, "%s", file);
    if (dfa_load(&t->d, file, err)) {
        free(t);
        return NULL;
    }
    const Dfa *d = &t->d;
    if (balanced) { /* some reachable state must reject, or the reject class never occurs */
        unsigned char *seen = xcalloc((size_t)d->nstates, 1);
        int *queue = xmalloc((size_t)d->nstates * sizeof *queue), head = 0, tail = 0, rejecting = 0;
        queue[tail++] = d->start, seen[d->start] = 1;
        while (head < tail) {
            int q = queue[head++];
            rejecting |= !d->accept[q];
            for (int a = 0; a < d->nsym; a++)
                if (!seen[dfa_next(d, q, a)]) seen[dfa_next(d, q, a)] = 1, queue[tail++] = dfa_next(d, q, a);
        }
        free(seen);
        free(queue);
        if (!rejecting) {
            err_set(err, "[task] dfa_sampling = balanced: %s accepts every string (every state reachable from '%s' "
                         "is accepting), so no string is rejected — use dfa_sampling = uniform or change the DFA",
                    file, d->state[d->start]);
            dfa_task_free(t);
            return NULL;
        }
    }
    if (balanced) reach_init(t);
    char syms[160] = "";
    for (int a = 0; a < d->nsym; a++) {
        size_t u = strlen(syms);
        if (u > 120) {
            snprintf(syms + u, sizeof syms - u, " ...");
            break;
        }
        snprintf(syms + u, sizeof syms - u, "%s%s", a ? " " : "", d->sym[a]);
    }
    static const char *const ro[] = {
        "variant prefix: input length n = T, 1/0 = accept/reject of x_0..x_t at position t, every position counts",
        "variant last: input length n = T, accept/reject of the whole string at T-1, only it counts",
        "variant final: input length n = T-1, blank at T-1 where accept/reject of the whole string is read, only "
        "it counts",
    };
    char smp[160];
    if (balanced)
        snprintf(smp, sizeof smp, "balanced (class of the whole string 1/2 each, rejection sampling of uniform "
                                  "strings, at most %ld tries)", tries);
    else snprintf(smp, sizeof smp, "uniform strings");
    snprintf(t->desc, sizeof t->desc,
             "dfa %s (fnv1a64 %016llx): %d states, alphabet [%s] = tokens 0..%d, blank %d, start %s, %d accepting; "
             "sampling: %s; %s; V = %d, chance 1/2",
             file, (unsigned long long)d->hash, d->nstates, syms, d->nsym - 1, d->nsym, d->state[d->start],
             d->naccept, smp, ro[vi], d->nsym + 1);
    return t;
}

static int dfa_vocab(const void *self) { return ((const DfaTask *)self)->d.nsym + 1; }
static const char *dfa_describe(const void *self) { return ((const DfaTask *)self)->desc; }
static double dfa_chance(const void *self) { return 0.5; }

/* the probability that a uniform string of length n has class want (exact, by the state distribution) */
static double class_probability(const Dfa *d, int n, int want) {
    double *p = xcalloc((size_t)d->nstates, sizeof *p), *q = xcalloc((size_t)d->nstates, sizeof *q);
    p[d->start] = 1;
    for (int t = 0; t < n; t++) {
        memset(q, 0, (size_t)d->nstates * sizeof *q);
        for (int s = 0; s < d->nstates; s++)
            if (p[s] > 0)
                for (int a = 0; a < d->nsym; a++) q[dfa_next(d, s, a)] += p[s] / d->nsym;
        double *tmp = p;
        p = q, q = tmp;
    }
    double c = 0;
    for (int s = 0; s < d->nstates; s++)
        if (d->accept[s] == want) c += p[s];
    free(p);
    free(q);
    return c;
}

/* balanced sampling at length T needs both classes among the strings of its input length */
static int dfa_check_len(const void *self, int T, Err *err) {
    const DfaTask *t = self;
    if (!t->balanced) return 0;
    const int n = t->var == DV_FINAL ? T - 1 : T, bits = reach_bits(t, n);
    if (bits == 3) return 0;
    return err_set(err, "dfa_sampling = balanced: no string of length %d (the input at T = %d, variant %s) is %s by "
                        "%s, so that half of the sequences cannot be drawn — use lengths where both classes occur, or "
                        "dfa_sampling = uniform", n, T, dfa_variant_names[t->var], bits & 2 ? "rejected" : "accepted",
                   t->path);
}

static void balanced_fail(const DfaTask *t, int n, int want) {
    double pr = class_probability(&t->d, n, want);
    const char *cls = want ? "accepted" : "rejected";
    if (pr == 0)
        fprintf(stderr, "rwkvlab: [task] dfa_sampling = balanced: %s: no string of length %d is %s, so that class "
                        "cannot be drawn at this length — use lengths (task.train_len, task.test_lens) where both "
                        "classes occur, or dfa_sampling = uniform\n", t->path, n, cls);
    else
        fprintf(stderr, "rwkvlab: [task] dfa_sampling = balanced: %s: none of %ld uniform strings of length %d was "
                        "%s (probability %.3g per string) — raise task.dfa_max_tries or use dfa_sampling = "
                        "uniform\n", t->path, t->max_tries, n, cls, pr);
    exit(EXIT_FAILURE);
}

static void dfa_fill(const void *self, gsl_rng *rng, int T, int *in, int *tg, unsigned char *mask) {
    const DfaTask *t = self;
    const Dfa *d = &t->d;
    const int n = t->var == DV_FINAL ? T - 1 : T;
    int q = d->start;
    if (t->balanced) {
        const int want = (int)gsl_rng_uniform_int(rng, 2);
        long tries = 0;
        for (;; tries++) {
            if (tries == t->max_tries || (n == 0 && d->accept[d->start] != want)) balanced_fail(t, n, want);
            q = d->start;
            for (int i = 0; i < n; i++) {
                in[i] = (int)gsl_rng_uniform_int(rng, (unsigned long)d->nsym);
                q = dfa_next(d, q, in[i]);
            }
            if (d->accept[q] == want) break;
        }
    } else {
        for (int i = 0; i < n; i++) in[i] = (int)gsl_rng_uniform_int(rng, (unsigned long)d->nsym);
    }
    memset(mask, 0, (size_t)T);
    for (int i = 0; i < T; i++) tg[i] = 0;
    q = d->start;
    for (int i = 0; i < n; i++) {
        q = dfa_next(d, q, in[i]);
        if (t->var == DV_PREFIX) tg[i] = d->accept[q], mask[i] = 1;
    }
    if (t->var == DV_LAST) tg[T - 1] = d->accept[q], mask[T - 1] = 1;
    if (t->var == DV_FINAL) in[T - 1] = d->nsym, tg[T - 1] = d->accept[q], mask[T - 1] = 1;
}

static void dfa_token_text(const void *self, int token, char *buf, size_t n) {
    const Dfa *d = &((const DfaTask *)self)->d;
    if (token >= 0 && token < d->nsym) snprintf(buf, n, "%s", d->sym[token]);
    else if (token == d->nsym) snprintf(buf, n, "_");
    else snprintf(buf, n, "?%d", token);
}

/* a target is the accept bit of the state reached */
static void dfa_target_text(const void *self, int target, char *buf, size_t n) {
    (void)self;
    if (target == 0 || target == 1) snprintf(buf, n, "%s", target ? "accept" : "reject");
    else snprintf(buf, n, "?%d", target);
}

static const TaskParam dfa_params[] = {
    {"dfa_file", "", "path of the DFA file (format: tasks/dfa.h), relative to the working directory"},
    {"dfa_sampling", "uniform", "uniform (uniform strings) | balanced (accept/reject 1/2 each, rejection sampling)"},
    {"dfa_max_tries", "10000", "balanced: uniform strings drawn per sequence before giving up, 1..100000000"},
};

const TaskKind task_dfa = {
    .family = "dfa",
    .names = "dfa",
    .accepts = dfa_accepts,
    .variants = "prefix|last|final",
    .default_variant = "prefix",
    .params = dfa_params,
    .nparams = (int)(sizeof dfa_params / sizeof dfa_params[0]),
    .create = dfa_create,
    .free = dfa_task_free,
    .vocab = dfa_vocab,
    .describe = dfa_describe,
    .check_len = dfa_check_len,
    .fill = dfa_fill,
    .chance = dfa_chance,
    .token_text = dfa_token_text,
    .target_text = dfa_target_text,
};
