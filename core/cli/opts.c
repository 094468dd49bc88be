/* opts.c -- the one command-line option parser (rules in opts.h). */
#include "opts.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <string.h>

int opts_edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    int row[64];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Shortest %g that reads back as v (ranges in messages: "1048576", not "1.04858e+06"). */
static void fmt_num(char *buf, size_t n, double v) {
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, n, "%.0f", v);
        return;
    }
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

/* The numeric range of s, in words: "a whole number in [1, 1024]", "a number >= 0". */
static void range_text(const OptSpec *s, char *buf, size_t n) {
    const char *what = s->type == OPT_REAL ? "a finite number" : "a whole number";
    double lo = s->lo, hi = s->hi;
    if (lo == 0 && hi == 0) {
        if (s->type == OPT_INT) lo = INT_MIN, hi = INT_MAX;
        else if (s->type == OPT_LONG) lo = (double)LONG_MIN, hi = (double)LONG_MAX;
        else {
            snprintf(buf, n, "%s", what);
            return;
        }
    }
    char a[40], b[40];
    fmt_num(a, sizeof a, lo);
    fmt_num(b, sizeof b, hi);
    if (s->type != OPT_REAL && hi >= (double)LONG_MAX) snprintf(buf, n, "%s >= %s", what, a);
    else snprintf(buf, n, "%s in %c%s, %s]", what, s->lo_open ? '(' : '[', a, b);
}

static int in_range(const OptSpec *s, double v) {
    if (s->lo == 0 && s->hi == 0) return 1;
    if (s->lo_open ? !(v > s->lo) : !(v >= s->lo)) return 0;
    return v <= s->hi;
}

/* Allowed values of an enum for messages: "bf16, f16, f32". */
static void choices_text(const char *choices, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = '\0';
    for (const char *c = choices; *c && used < n; c++)
        used += (size_t)snprintf(buf + used, n - used, *c == '|' ? ", " : "%c", *c);
}

/* The text of one value into s->dst; err names the option and the value. */
static int set_value(const OptSpec *s, const char *v, Err *err) {
    char range[128];
    switch (s->type) {
    case OPT_INT:
    case OPT_LONG: {
        range_text(s, range, sizeof range);
        char *end = NULL;
        errno = 0;
        long x = (*v && !isspace((unsigned char)*v)) ? strtol(v, &end, 10) : 0;
        if (!end || end == v || *end)
            return err_set(err, "%s '%s': not a whole number — use %s", s->name, v, range);
        if (errno == ERANGE || !in_range(s, (double)x) || (s->type == OPT_INT && (x < INT_MIN || x > INT_MAX)))
            return err_set(err, "%s %s: out of range — use %s", s->name, v, range);
        if (s->type == OPT_INT) *(int *)s->dst = (int)x;
        else *(long *)s->dst = x;
        return 0;
    }
    case OPT_REAL: {
        range_text(s, range, sizeof range);
        char *end = NULL;
        errno = 0;
        double x = (*v && !isspace((unsigned char)*v)) ? strtod(v, &end) : 0;
        if (!end || end == v || *end) return err_set(err, "%s '%s': not a number — use %s", s->name, v, range);
        if (!isfinite(x) || errno == ERANGE)
            return err_set(err, "%s %s: not a finite number — use %s", s->name, v, range);
        if (!in_range(s, x)) return err_set(err, "%s %s: out of range — use %s", s->name, v, range);
        *(double *)s->dst = x;
        return 0;
    }
    case OPT_STR:
        *(const char **)s->dst = v;
        return 0;
    case OPT_ENUM: {
        size_t n = strlen(v);
        int idx = 0;
        for (const char *c = s->choices; *c; idx++) {
            size_t m = strcspn(c, "|");
            if (m == n && !strncmp(c, v, n)) {
                *(int *)s->dst = idx;
                return 0;
            }
            c += m + (c[m] == '|');
        }
        choices_text(s->choices, range, sizeof range);
        return err_set(err, "%s '%s': not allowed — use one of %s", s->name, v, range);
    }
    case OPT_STRS:
    case OPT_FLAG:
        break;
    }
    return err_set(err, "%s: internal error: option type %d", s->name, (int)s->type);
}

/* " — did you mean --layers?" for a close option name, else "". */
static void suggest(const OptParser *p, const char *name, char *out, size_t n) {
    int best = -1, bestd = 99;
    size_t ln = strlen(name);
    for (int i = 0; i < p->nspecs; i++) {
        const char *c = p->specs[i].name;
        int d = opts_edit_distance(name, c);
        if (ln > 2 && !strncmp(c, name, ln)) d = 1; /* a prefix: --lay for --layers */
        if (d < bestd) bestd = d, best = i;
    }
    size_t core = ln > 2 ? ln - 2 : ln;
    if (best >= 0 && bestd <= (core < 4 ? 1 : 2)) snprintf(out, n, "; did you mean %s?", p->specs[best].name);
    else out[0] = '\0';
}

/* The messages quote argv: keep control bytes out of the terminal. */
static int err_clean(Err *err) {
    for (char *c = err->msg; *c; c++)
        if (iscntrl((unsigned char)*c)) *c = '?';
    return -1;
}

int opts_parse(OptParser *p, int argc, char **argv, Err *err) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return OPTS_HELP;
    }
    int given[64] = {0};
    CHECK(p->nspecs <= 64, "opts_parse: %d options for '%s' (at most 64)", p->nspecs, p->cmd);
    p->npos = 0;
    int only_pos = 0;
    char hint[160];
    snprintf(hint, sizeof hint, "(rwkvlab %s --help lists the options)", p->cmd);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && !strcmp(a, "--")) {
            only_pos = 1;
            continue;
        }
        if (only_pos || a[0] != '-' || !a[1]) {
            if (!p->pos_name || p->pos_max == 0)
                return err_set(err, "unexpected argument '%s' — %s takes no positional argument %s", a, p->cmd,
                               hint), err_clean(err);
            if (p->npos == p->pos_max)
                return err_set(err, "unexpected argument '%s' — %s takes %s%s%s %s", a, p->cmd,
                               p->pos_max == 1 ? "one " : "at most ", p->pos_name, p->pos_max == 1 ? "" : "s", hint),
                       err_clean(err);
            p->pos[p->npos++] = a;
            continue;
        }
        /* an option: --name or --name=value */
        char name[128];
        const char *eq = strchr(a, '=');
        size_t ln = eq ? (size_t)(eq - a) : strlen(a);
        snprintf(name, sizeof name, "%.*s", (int)(ln < sizeof name ? ln : sizeof name - 1), a);
        int si = -1;
        for (int k = 0; k < p->nspecs && si < 0; k++)
            if (!strcmp(p->specs[k].name, name)) si = k;
        if (si < 0) {
            char sug[100];
            suggest(p, name, sug, sizeof sug);
            return err_set(err, "unknown option %s%s %s", name, sug, hint), err_clean(err);
        }
        const OptSpec *s = &p->specs[si];
        if (given[si] && s->type != OPT_STRS)
            return err_set(err, "%s is given twice — give it once", s->name);
        given[si]++;
        if (s->type == OPT_FLAG) {
            if (eq) return err_set(err, "%s takes no value (got '%s')", s->name, eq + 1), err_clean(err);
            *(int *)s->dst = 1;
            continue;
        }
        const char *v;
        if (eq) v = eq + 1;
        else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2)) v = argv[++i];
        else if (i + 1 < argc)
            return err_set(err, "%s needs a value (got option %s; write %s=VALUE for a value starting with --)",
                           s->name, argv[i + 1], s->name), err_clean(err);
        else return err_set(err, "%s needs a value %s", s->name, hint);
        if (s->type == OPT_STRS) {
            if (given[si] > s->cap)
                return err_set(err, "%s is given more than %d times — that is the most it takes", s->name, s->cap);
            ((const char **)s->dst)[given[si] - 1] = v;
            continue;
        }
        if (set_value(s, v, err)) return err_clean(err);
    }
    for (int k = 0; k < p->nspecs; k++) {
        if (p->specs[k].count) *p->specs[k].count = given[k];
        if (p->specs[k].required && !given[k])
            return err_set(err, "missing %s (required) %s", p->specs[k].name, hint);
    }
    if (p->npos < p->pos_min)
        return err_set(err, "missing %s %s", p->pos_name ? p->pos_name : "argument", hint);
    return 0;
}

/* ---- lists of whole numbers ------------------------------------------------------------------- */

int opts_parse_ints(const char *what, const char *s, int strict, long lo, long hi, int **out, int *n, Err *err) {
    *out = NULL;
    *n = 0;
    CHECK(lo <= hi && lo >= INT_MIN && hi <= INT_MAX, "opts_parse_ints: range [%ld, %ld] is not within int", lo, hi);
    const char *seps = strict ? "," : ", \t\r\n";
    const char *sepw = strict ? "commas" : "commas or whitespace";
    char quoted[240] = ""; /* the list as given, in messages (not the contents of a file) */
    if (strict) snprintf(quoted, sizeof quoted, " '%.200s%s'", s, strlen(s) > 200 ? "..." : "");
    size_t cap = 16, cnt = 0;
    int *v = xmalloc(cap * sizeof *v);
    int rc = 0;
    const char *c = s;
    for (int entry = 1; rc == 0; entry++) {
        if (!strict) {
            c += strspn(c, seps); /* any run of separators */
            if (!*c) break;
        }
        size_t len = strcspn(c, seps);
        const char *b = c, *e = c + len; /* the entry, without the spaces around it */
        while (b < e && *b == ' ') b++;
        while (e > b && e[-1] == ' ') e--;
        if (b == e) {
            if (entry == 1 && !*e) break; /* "" or "  ": reported as an empty list below */
            rc = err_set(err, "%s%s: entry %d is empty — write whole numbers separated by %s, e.g. 0,17,5", what,
                         quoted, entry, sepw);
            break;
        }
        char num[32], *end = NULL;
        long x = 0;
        int ok = (size_t)(e - b) < sizeof num && (isdigit((unsigned char)*b) || *b == '-' || *b == '+');
        if (ok) {
            memcpy(num, b, (size_t)(e - b));
            num[e - b] = '\0';
            errno = 0;
            x = strtol(num, &end, 10);
            ok = end != num && !*end;
        }
        if (!ok) {
            rc = err_set(err, "%s%s: entry %d '%.*s' is not a whole number — give whole numbers in [%ld, %ld] "
                         "separated by %s", what, quoted, entry, (int)(e - b > 40 ? 40 : e - b), b, lo, hi, sepw);
            break;
        }
        if (errno == ERANGE || x < lo || x > hi) {
            rc = err_set(err, "%s: entry %d (%s) is out of range — each must be in [%ld, %ld]", what, entry, num, lo,
                         hi);
            break;
        }
        if (cnt == cap) {
            int *bigger = cap < ((size_t)1 << 40) ? realloc(v, 2 * cap * sizeof *v) : NULL;
            CHECK(bigger != NULL, "out of memory growing the %s list to %zu entries", what, 2 * cap);
            v = bigger, cap *= 2;
        }
        v[cnt++] = (int)x;
        c += len;
        if (!*c) break;
        c++; /* the separator */
    }
    if (rc == 0 && cnt == 0)
        rc = err_set(err, "%s: empty list — give at least one whole number, e.g. %s 0,17,5", what, what);
    if (rc) {
        free(v);
        return err_clean(err);
    }
    *out = v;
    *n = (int)cnt;
    return 0;
}
