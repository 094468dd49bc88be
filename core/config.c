/* config.c -- RunConfig: defaults, INI loading (inih), --set overrides, validation, INI output.
 *
 * Scope: everything about reading and writing the run configuration. One table, CFG_KEYS, lists every
 * key (section, name, type, offset into RunConfig, allowed values); load, set, validate, to_ini and the
 * error messages all go through it, so adding a key means adding one table row (and a default).
 *
 * Rules:
 *   - Errors read "WHERE: WHAT — HOW TO FIX". WHERE is "FILE:LINE" for a config file, "FILE" when no
 *     line applies (missing required key), "--set a.b=v" for an override, "config" for config_validate.
 *   - Integers are base 10, floats finite; the whole value must parse (strtol/strtod + end pointer).
 *   - A key set twice in one file is an error naming both lines: a config file should say one thing.
 *   - A file must set experiment.name and task.name. After parsing, config_load runs the cross-field
 *     checks of config_validate and points at the line of the key involved.
 *   - config_validate also builds the task (task_create), so a config it accepts is one `train` accepts
 *     (e.g. task a5 with variant swaps is rejected here). That check is not run by config_load: a file
 *     may leave task.variant to a later --set.
 *   - config_load is all-or-nothing: on error the config passed in is left unchanged. config_set too.
 *   - Line numbers come from our own line reader (Debian's inih has no INI_HANDLER_LINENO). The reader
 *     also rejects what inih would otherwise accept silently: lines longer than its buffer (inih would
 *     split them), NUL bytes, unknown [sections] without keys, and indented lines after a key (inih
 *     would read them as continuation values of that key).
 *   - Strings and lists are limited so that config_to_ini can write them back on one INI line and
 *     config_load(config_to_ini(c)) reproduces c byte for byte.
 *   - [sweep]: "section.key = v1, v2, ..." for any scalar key (list keys cannot be swept: commas are
 *     the separator; seeds are swept through experiment.seeds). Each value is checked by applying it
 *     to a scratch copy of the config; the text is stored verbatim. --set sweep.model.layers=1,2 works.
 */
#include "config.h"
#include "model.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include "opts.h"
#include "task.h"

/* ---- the key table ------------------------------------------------------------------------------ */

typedef enum {
    T_INT,   /* int, range [lo, hi] */
    T_LONG,  /* long, range [lo, hi] */
    T_REAL,  /* double, range with open/closed ends */
    T_STR,   /* free text */
    T_NAME,  /* identifier: letters, digits, _ - . (used in paths) */
    T_ENUM,  /* one of choices */
    T_INTS,  /* comma list of int, each in [lo, hi] */
    T_LONGS, /* comma list of long, each in [lo, hi] */
    T_RANGE, /* a length N or a range A-B: off = the longest (int), count_off = the shortest (int, 0 = fixed) */
    T_LENS,  /* comma list of lengths and ranges A-B, A-B:S, expanded into an int array (as T_INTS) */
} KeyType;

typedef struct {
    const char *section, *name;
    KeyType type;
    size_t off;          /* offsetof(RunConfig, section.name) */
    size_t cap;          /* strings: buffer size; lists: max entries */
    size_t count_off;    /* lists: offset of the int entry count */
    double lo, hi;       /* numeric range (lists: of each entry) */
    int lo_open, hi_open; /* T_REAL: 1 = that end is excluded */
    const char *choices; /* T_ENUM: "a|b|c" */
    const char *(*choices_fn)(void); /* T_ENUM read from a registry instead (model.arch) */
} CfgKey;

static const char *key_choices(const CfgKey *k) { return k->choices_fn ? k->choices_fn() : k->choices; }

/* Offsets with a compile-time check that the field has the size of the type the row claims. */
#define MEMBER(s, f) (((RunConfig *)0)->s.f)
#define SIZE_IS(expr, T) (0 * sizeof(char[sizeof(expr) == sizeof(T) ? 1 : -1]))
#define OFF(s, f, T) (offsetof(RunConfig, s.f) + SIZE_IS(MEMBER(s, f), T))
#define K_INT(s, f, lo, hi) {#s, #f, T_INT, OFF(s, f, int), 0, 0, lo, hi, 0, 0, NULL, NULL}
#define K_LONG(s, f, lo, hi) {#s, #f, T_LONG, OFF(s, f, long), 0, 0, lo, hi, 0, 0, NULL, NULL}
#define K_REAL(s, f, lo, lo_open, hi, hi_open) {#s, #f, T_REAL, OFF(s, f, double), 0, 0, lo, hi, lo_open, hi_open, NULL, NULL}
#define K_STR(s, f, ty) {#s, #f, ty, offsetof(RunConfig, s.f), sizeof MEMBER(s, f), 0, 0, 0, 0, 0, NULL, NULL}
#define K_ENUM(s, f, ch) {#s, #f, T_ENUM, offsetof(RunConfig, s.f), sizeof MEMBER(s, f), 0, 0, 0, 0, 0, ch, NULL}
#define K_ENUMF(s, f, fn) {#s, #f, T_ENUM, offsetof(RunConfig, s.f), sizeof MEMBER(s, f), 0, 0, 0, 0, 0, NULL, fn}
#define K_RANGE(s, f, fmin, lo, hi) {#s, #f, T_RANGE, OFF(s, f, int), 0, OFF(s, fmin, int), lo, hi, 0, 0, NULL, NULL}
#define K_LIST(s, f, ty, elem, cnt, lo, hi)                                                               \
    {#s, #f, ty, offsetof(RunConfig, s.f) + SIZE_IS(MEMBER(s, f)[0], elem),                             \
     sizeof MEMBER(s, f) / sizeof(elem), OFF(s, cnt, int), lo, hi, 0, 0, NULL, NULL}

#define BIG (1 << 20) /* generous upper bound for sizes and lengths (keeps B*T*C products in range) */
#define DATASET_MAX (1 << 22) /* task.dataset_max: distinct sequences a finite dataset may hold */

static const CfgKey CFG_KEYS[] = {
    K_STR(experiment, name, T_NAME),
    K_LIST(experiment, seeds, T_LONGS, long, nseeds, 0, INFINITY),
    K_STR(experiment, notes, T_STR),

    K_ENUMF(model, arch, model_arch_names),
    K_INT(model, layers, 1, 1024),
    K_INT(model, d_model, 1, 65536),
    K_INT(model, head_size, 1, 65536),
    K_ENUM(model, eig_range, "standard|extended"),
    K_INT(model, lora_w, 0, 65536),
    K_INT(model, lora_a, 0, 65536),
    K_INT(model, lora_v, 0, 65536),
    K_INT(model, lora_g, 0, 65536),
    K_INT(model, lora_mix, 0, 65536),
    K_INT(model, short_conv, 0, 16),
    K_INT(model, expand_v, 1, 8),
    K_ENUM(model, init, "official"),

    K_STR(task, name, T_NAME),
    K_ENUMF(task, variant, task_variant_names),
    K_RANGE(task, train_len, train_len_min, 1, BIG),
    K_ENUM(task, train_len_mode, "batch|mixed"),
    K_LIST(task, test_lens, T_LENS, int, ntest_lens, 1, BIG),
    K_INT(task, test_size, 1, BIG),
    K_ENUM(task, protocol, "fresh|merrill"),
    K_REAL(task, train_fraction, 0, 1, 1, 1),
    K_INT(task, dataset_max, 2, DATASET_MAX),

    K_LONG(train, steps, 1, INFINITY),
    K_INT(train, batch, 1, BIG),
    K_REAL(train, lr, 0, 1, INFINITY, 0),
    K_REAL(train, lr_min, 0, 0, INFINITY, 0),
    K_LONG(train, warmup, 0, INFINITY),
    K_ENUM(train, schedule, "cosine|constant"),
    K_REAL(train, weight_decay, 0, 0, INFINITY, 0),
    K_REAL(train, grad_clip, 0, 0, INFINITY, 0),
    K_REAL(train, beta1, 0, 0, 1, 1),
    K_REAL(train, beta2, 0, 0, 1, 1),
    K_REAL(train, adam_eps, 0, 1, INFINITY, 0),
    K_REAL(train, w0_lr_mult, 0, 0, INFINITY, 0),
    K_LONG(train, eval_every, 1, INFINITY),
    K_REAL(train, early_stop, 0, 0, 1, 0),
    K_LONG(train, log_every, 1, INFINITY),
    K_LONG(train, ckpt_every, 1, INFINITY),
    K_INT(train, chunk, 0, BIG),
    K_INT(train, threads, 0, 4096),
    K_INT(train, shards, 1, 1024),
    K_INT(train, l2wrap, 0, 1),

    K_INT(log, trajectories, 0, BIG),
    K_INT(log, trajectory_len, 0, BIG),
};
#define NKEYS ((int)(sizeof CFG_KEYS / sizeof CFG_KEYS[0]))

static const char *const SECTIONS[] = {"experiment", "model", "task", "train", "log", "sweep"};
#define NSECTIONS ((int)(sizeof SECTIONS / sizeof SECTIONS[0]))
#define ALLOWED_SECTIONS "[experiment] [model] [task] [train] [log] [sweep]"

/* The longest line config_to_ini may write and inih reads back whole (INI_MAX_LINE counts '\n' + NUL). */
#define LINE_MAX_CHARS (INI_MAX_LINE - 2)
#define SWEEP_VALUES_CAP ((int)sizeof MEMBER(sweep, values[0]))
#define SWEEP_KEY_CAP ((int)sizeof MEMBER(sweep, key[0]))

void config_defaults(RunConfig *c) {
    memset(c, 0, sizeof *c); /* also zeroes unused bytes, so configs compare with memcmp */
    snprintf(c->experiment.name, CFG_STR, "unnamed");
    c->experiment.seeds[0] = 1;
    c->experiment.nseeds = 1;

    snprintf(c->model.arch, CFG_STR, "rwkv7");
    c->model.layers = 2;
    c->model.d_model = 128;
    c->model.head_size = 32;
    snprintf(c->model.eig_range, CFG_STR, "standard");
    snprintf(c->model.init, CFG_STR, "official");
    c->model.expand_v = 1;

    snprintf(c->task.name, CFG_STR, "s5");
    snprintf(c->task.variant, CFG_STR, "default");
    c->task.train_len = 32;
    c->task.train_len_min = 0;
    snprintf(c->task.train_len_mode, CFG_STR, "batch");
    snprintf(c->task.protocol, CFG_STR, "fresh");
    c->task.train_fraction = 0.8;
    c->task.dataset_max = 1000000;
    static const int lens[] = {32, 64, 128, 256, 512};
    for (int i = 0; i < 5; i++) c->task.test_lens[i] = lens[i];
    c->task.ntest_lens = 5;
    c->task.test_size = 256;

    c->train.steps = 2000;
    c->train.batch = 64;
    c->train.lr = 1e-3;
    c->train.lr_min = 1e-5;
    c->train.warmup = 100;
    snprintf(c->train.schedule, CFG_STR, "cosine");
    c->train.weight_decay = 0.1;
    c->train.grad_clip = 1.0;
    c->train.beta1 = 0.9;
    c->train.beta2 = 0.99;
    c->train.adam_eps = 1e-8;
    c->train.w0_lr_mult = 2.0;
    c->train.eval_every = 500;
    c->train.early_stop = 0.0;
    c->train.log_every = 10;
    c->train.ckpt_every = 500;
    c->train.chunk = 16;
    c->train.threads = 0;
    c->train.shards = 2;
    c->train.l2wrap = 0;

    c->log.trajectories = 4;
    c->log.trajectory_len = 0;
}

/* ---- small helpers ------------------------------------------------------------------------------ */

static int section_index(const char *s) {
    for (int i = 0; i < NSECTIONS; i++)
        if (strcmp(SECTIONS[i], s) == 0) return i;
    return -1;
}

static int key_index(const char *section, const char *name) {
    for (int i = 0; i < NKEYS; i++)
        if (strcmp(CFG_KEYS[i].section, section) == 0 && strcmp(CFG_KEYS[i].name, name) == 0) return i;
    return -1;
}

/* "model.layers" -> table index, or -1. */
static int key_index_dotted(const char *dotted) {
    const char *dot = strchr(dotted, '.');
    if (!dot || dot == dotted) return -1;
    char sec[64];
    size_t n = (size_t)(dot - dotted);
    if (n >= sizeof sec) return -1;
    memcpy(sec, dotted, n);
    sec[n] = '\0';
    return key_index(sec, dot + 1);
}

static int is_list(const CfgKey *k) { return k->type == T_INTS || k->type == T_LONGS || k->type == T_LENS; }

/* Writes " (did you mean PRE<best>POST?)" into out if a candidate is close to word, else "". */
static void suggest(char *out, size_t n, const char *word, const char *const *cands, int ncand,
                    const char *pre, const char *post) {
    int best = -1, bestd = 3;
    for (int i = 0; i < ncand; i++) {
        int d = opts_edit_distance(word, cands[i]);
        if (d < bestd && d < (int)strlen(cands[i])) bestd = d, best = i;
    }
    if (best >= 0) snprintf(out, n, " (did you mean %s%s%s?)", pre, cands[best], post);
    else if (n) out[0] = '\0';
}

/* Comma-separated names of the keys of one section ("arch, layers, ..."). */
static void section_keys(char *out, size_t n, const char *section) {
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < NKEYS && used < n; i++) {
        if (strcmp(CFG_KEYS[i].section, section) != 0) continue;
        used += (size_t)snprintf(out + used, n - used, "%s%s", used ? ", " : "", CFG_KEYS[i].name);
    }
}

static void suggest_key(char *out, size_t n, const char *section, const char *name) {
    const char *cands[NKEYS];
    int nc = 0;
    for (int i = 0; i < NKEYS; i++)
        if (strcmp(CFG_KEYS[i].section, section) == 0) cands[nc++] = CFG_KEYS[i].name;
    suggest(out, n, name, cands, nc, "'", "'");
    for (int i = 0; i < NKEYS && !out[0]; i++)
        if (strcmp(CFG_KEYS[i].name, name) == 0)
            snprintf(out, n, " (%s belongs in [%s])", name, CFG_KEYS[i].section);
}

static void suggest_dotted(char *out, size_t n, const char *dotted) {
    char full[NKEYS][64];
    const char *cands[NKEYS];
    for (int i = 0; i < NKEYS; i++) {
        snprintf(full[i], sizeof full[i], "%s.%s", CFG_KEYS[i].section, CFG_KEYS[i].name);
        cands[i] = full[i];
    }
    suggest(out, n, dotted, cands, NKEYS, "'", "'");
}

/* Shortest %.Ng (N = 15..17) that reads back as exactly v. */
static void fmt_real(char *buf, size_t n, double v) {
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

/* Human wording of a key's numeric range: "a whole number >= 1", "a number in [0, 1)". */
static void range_text(char *buf, size_t n, const CfgKey *k) {
    const char *what = k->type == T_REAL ? "a number" : "a whole number";
    char lo[32], hi[32];
    fmt_real(lo, sizeof lo, k->lo);
    fmt_real(hi, sizeof hi, k->hi);
    if (isinf(k->hi)) snprintf(buf, n, "%s %s %s", what, k->lo_open ? ">" : ">=", lo);
    else if (k->type != T_REAL && k->hi - k->lo == 1) snprintf(buf, n, "%s or %s", lo, hi);
    else snprintf(buf, n, "%s in %c%s, %s%c", what, k->lo_open ? '(' : '[', lo, hi, k->hi_open ? ')' : ']');
}

static int in_range(const CfgKey *k, double v) {
    if (k->lo_open ? !(v > k->lo) : !(v >= k->lo)) return 0;
    if (k->hi_open ? !(v < k->hi) : !(v <= k->hi)) return 0;
    return 1;
}

/* Longest value that fits "name = value" on one INI line and in the field. */
static size_t value_max(const CfgKey *k) {
    size_t line = (size_t)LINE_MAX_CHARS - strlen(k->name) - 3;
    if ((k->type == T_STR || k->type == T_NAME || k->type == T_ENUM) && k->cap - 1 < line) return k->cap - 1;
    return line;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

/* Text that INI cannot carry verbatim in a value: returns a description of the problem, or NULL. */
static const char *ini_text_problem(const char *s) {
    for (const char *p = s; *p; p++) {
        if (iscntrl((unsigned char)*p)) return "contains a control character (tab, newline, ...)";
        if (*p == ';' && (p == s || isspace((unsigned char)p[-1])))
            return "contains ';' at the start or after a space, which INI reads as a comment";
    }
    if (*s && (isspace((unsigned char)s[0]) || isspace((unsigned char)s[strlen(s) - 1])))
        return "has leading or trailing whitespace";
    return NULL;
}

/* Messages quote user text: replace control bytes so a hostile file cannot garble the terminal. */
static int err_clean(Err *err) {
    if (err)
        for (char *p = err->msg; *p; p++)
            if (iscntrl((unsigned char)*p)) *p = '?';
    return -1;
}

/* ---- parsing one value into the config ---------------------------------------------------------- */

/* Parses one number for key k (a scalar or one list entry), range-checked. `what` names it in messages. */
static int parse_number(const CfgKey *k, const char *s, const char *where, const char *what, long *lv,
                        double *dv, Err *err) {
    char range[96];
    range_text(range, sizeof range, k);
    const char *each = is_list(k) ? " for each entry, separated by commas" : "";
    char *end = NULL;
    errno = 0;
    if (k->type == T_REAL) {
        double v = *s ? strtod(s, &end) : 0.0;
        if (!*s || *end) return err_set(err, "%s: %s: '%s' is not a number — use %s", where, what, s, range);
        if (!isfinite(v))
            return err_set(err, "%s: %s: '%s' is not a finite number — use %s", where, what, s, range);
        if (errno == ERANGE || !in_range(k, v)) return err_set(err, "%s: %s: %s is out of range — use %s", where, what, s, range);
        *dv = v;
        return 0;
    }
    long v = *s ? strtol(s, &end, 10) : 0;
    if (!*s || *end)
        return err_set(err, "%s: %s: '%s' is not an integer — use %s%s", where, what, s, range, each);
    if (errno == ERANGE || !in_range(k, (double)v) || (k->type == T_INT || k->type == T_INTS ? v < INT_MIN || v > INT_MAX : 0))
        return err_set(err, "%s: %s: %s is out of range — use %s%s", where, what, s, range, each);
    *lv = v;
    return 0;
}

/* ---- lengths and ranges (task.train_len, task.test_lens) ------------------------------------------ */

int config_train_len_min(const RunConfig *c) {
    return c->task.train_len_min > 0 ? c->task.train_len_min : c->task.train_len;
}

/* A whole number of digits only (no sign, no spaces), into *v; 0, or -1 when s[0..n) is not one. Values
 * too large for a long become LONG_MAX (then out of every range). */
static int digits_value(const char *s, size_t n, long *v) {
    if (n == 0) return -1;
    long x = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        x = x > (LONG_MAX - 9) / 10 ? LONG_MAX : x * 10 + (s[i] - '0');
    }
    *v = x;
    return 0;
}

/* One item "N", "A-B" or (with_step) "A-B:S", each number in [1, max]. Fills a <= b and the step
 * (1 unless given). 0, or -1 with err "WHAT: '...' ... — HOW". */
static int parse_len_item(const char *item, const char *what, long max, int with_step, long *a, long *b, long *step,
                          Err *err) {
    const char *forms = with_step ? "N (e.g. 64), A-B (e.g. 41-500) or A-B:S (e.g. 41-500:10, every S-th length "
                                    "from A, and B)"
                                  : "N (e.g. 32) or A-B (e.g. 1-40)";
    const char *dash = strchr(item, '-'), *colon = strchr(item, ':');
    size_t len = strlen(item);
    long s = 1;
    if (colon && (!with_step || !dash || colon < dash))
        return err_set(err, "%s '%s' is not a length or a range — write %s", what, item, forms);
    if (!dash) {
        if (digits_value(item, len, a)) return err_set(err, "%s '%s' is not a length — write %s", what, item, forms);
        *b = *a;
    } else {
        const char *end_b = colon ? colon : item + len;
        if (digits_value(item, (size_t)(dash - item), a) || digits_value(dash + 1, (size_t)(end_b - dash - 1), b) ||
            (colon && digits_value(colon + 1, strlen(colon + 1), &s)))
            return err_set(err, "%s '%s' is not a length or a range — write %s", what, item, forms);
    }
    if (*a < 1 || *a > max || *b < 1 || *b > max)
        return err_set(err, "%s '%s' is out of range — lengths are whole numbers in [1, %ld]", what, item, max);
    if (*a > *b)
        return err_set(err, "%s '%s' is a decreasing range — write the shorter length first (e.g. %ld-%ld)", what, item,
                       *b, *a);
    if (s < 1 || s > max)
        return err_set(err, "%s '%s': the step must be a whole number in [1, %ld]", what, item, max);
    *step = s;
    return 0;
}

/* How many lengths a..b with step s gives (the end b is always included). */
static long range_count(long a, long b, long s) { return (b - a) / s + 1 + ((b - a) % s != 0); }

int config_parse_lens(const char *text, const char *what, int max_len, int *out, int cap, int *n, Err *err) {
    char *copy = strdup(text);
    CHECK(copy != NULL, "out of memory");
    int count = 0, rc = 0;
    char *p = copy;
    for (int entry = 1;; entry++) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        char *item = trim(p);
        char ew[160];
        snprintf(ew, sizeof ew, "%s entry %d", what, entry);
        if (!*item) {
            if (comma || entry > 1)
                rc = err_set(err, "%s: entry %d is empty — write lengths and ranges separated by commas, e.g. 32, 64, "
                             "100-500:100", what, entry);
            else rc = err_set(err, "%s: empty list — give at least one length, e.g. 32, 64 or 41-500:10", what);
            break;
        }
        long a, b, s;
        if ((rc = parse_len_item(item, ew, max_len, 1, &a, &b, &s, err)) != 0) break;
        long k = range_count(a, b, s);
        if (k > cap - count) {
            rc = err_set(err, "%s: '%s' makes %ld test lengths%s; a run takes at most %d — use a step (A-B:S, e.g. "
                         "41-500:10) or fewer entries", what, item, k + count, count ? " with the entries before it" : "",
                         cap);
            break;
        }
        for (long x = a; x <= b; x += s) out[count++] = (int)x;
        if (out[count - 1] != b) out[count++] = (int)b;
        if (!comma) break;
        p = comma + 1;
    }
    free(copy);
    *n = rc ? 0 : count;
    return rc ? -1 : 0;
}

void config_format_lens(const int *v, int n, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && used < cap;) {
        const char *sep = i ? ", " : "";
        long d = i + 2 < n ? (long)v[i + 1] - v[i] : 0;
        if (d > 0 && (long)v[i + 2] - v[i + 1] == d) {
            int j = i + 2;
            while (j + 1 < n && (long)v[j + 1] - v[j] == d) j++;
            int end = v[j], k = j + 1;
            if (k < n && v[k] > v[j] && v[k] < v[j] + d) end = v[k++]; /* an end off the step grid: A-B:S gives it */
            if (d == 1) used += (size_t)snprintf(buf + used, cap - used, "%s%d-%d", sep, v[i], end);
            else used += (size_t)snprintf(buf + used, cap - used, "%s%d-%d:%ld", sep, v[i], end, d);
            i = k;
        } else {
            used += (size_t)snprintf(buf + used, cap - used, "%s%d", sep, v[i]);
            i++;
        }
    }
}

/* Applies the text of one value to key k of c. Leaves c unchanged on error. */
static int key_apply(RunConfig *c, const CfgKey *k, const char *text, const char *where, Err *err) {
    char *field = (char *)c + k->off;
    char kn[80];
    snprintf(kn, sizeof kn, "%s.%s", k->section, k->name);
    switch (k->type) {
    case T_INT:
    case T_LONG:
    case T_REAL: {
        long lv = 0;
        double dv = 0;
        if (parse_number(k, text, where, kn, &lv, &dv, err)) return -1;
        if (k->type == T_INT) *(int *)field = (int)lv;
        else if (k->type == T_LONG) *(long *)field = lv;
        else *(double *)field = dv;
        return 0;
    }
    case T_ENUM: {
        size_t n = strlen(text);
        for (const char *p = key_choices(k); *p;) {
            size_t m = strcspn(p, "|");
            if (m == n && strncmp(p, text, n) == 0) {
                memset(field, 0, k->cap);
                memcpy(field, text, n);
                return 0;
            }
            p += m + (p[m] == '|');
        }
        return err_set(err, "%s: %s: '%s' is not one of %s — pick one of these (case-sensitive)", where, kn,
                       text, key_choices(k));
    }
    case T_STR:
    case T_NAME: {
        size_t n = strlen(text), max = value_max(k);
        const char *bad = ini_text_problem(text);
        if (bad) return err_set(err, "%s: %s: '%s' %s — remove it", where, kn, text, bad);
        if (n > max)
            return err_set(err, "%s: %s: value is %zu characters long — at most %zu fit", where, kn, n, max);
        if (k->type == T_NAME) {
            int ok = n > 0 && text[0] != '.';
            for (size_t i = 0; i < n; i++)
                ok &= isalnum((unsigned char)text[i]) || strchr("_-.", text[i]) != NULL;
            if (!ok)
                return err_set(err, "%s: %s: '%s' is not a valid name — use letters, digits, '_', '-' and '.' "
                               "(not first); it names the results directory", where, kn, text);
        }
        memset(field, 0, k->cap);
        memcpy(field, text, n);
        return 0;
    }
    case T_RANGE: {
        long a, b, s;
        Err e;
        if (parse_len_item(text, kn, (long)k->hi, 0, &a, &b, &s, &e)) return err_set(err, "%s: %s", where, e.msg);
        *(int *)field = (int)b;
        *(int *)((char *)c + k->count_off) = a < b ? (int)a : 0; /* canonical: 0 when fixed */
        return 0;
    }
    case T_LENS: {
        int vals[CFG_MAX_TEST_LENS], count = 0;
        Err e;
        CHECK(k->cap <= CFG_MAX_TEST_LENS, "%s: list capacity", kn);
        if (config_parse_lens(text, kn, (int)k->hi, vals, (int)k->cap, &count, &e))
            return err_set(err, "%s: %s", where, e.msg);
        char canon[2048];
        config_format_lens(vals, count, canon, sizeof canon);
        if (strlen(canon) > value_max(k))
            return err_set(err, "%s: %s: list too long to write back on one INI line (%zu > %zu characters, written "
                           "as '%.40s...') — use ranges (A-B, A-B:S) or fewer entries", where, kn, strlen(canon),
                           value_max(k), canon);
        memset(field, 0, k->cap * sizeof(int));
        memcpy(field, vals, (size_t)count * sizeof(int));
        *(int *)((char *)c + k->count_off) = count;
        return 0;
    }
    case T_INTS:
    case T_LONGS: {
        long vals[CFG_MAX_LIST];
        int count = 0;
        char *copy = strdup(text);
        CHECK(copy != NULL, "out of memory");
        int rc = 0;
        char *p = copy;
        for (int entry = 1;; entry++) {
            char *comma = strchr(p, ',');
            if (comma) *comma = '\0';
            char *item = trim(p);
            char what[112];
            snprintf(what, sizeof what, "%s entry %d", kn, entry);
            if (!*item) {
                char empty[32];
                if (comma || entry > 1) snprintf(empty, sizeof empty, "entry %d is empty", entry);
                else snprintf(empty, sizeof empty, "the list is empty");
                rc = err_set(err, "%s: %s: %s — write entries separated by commas, e.g. %s = 1, 2, 3", where, kn,
                             empty, k->name);
                break;
            }
            if (count == (int)k->cap) {
                rc = err_set(err, "%s: %s: more than %d entries — use at most %d", where, kn, (int)k->cap,
                             (int)k->cap);
                break;
            }
            double unused;
            if ((rc = parse_number(k, item, where, what, &vals[count], &unused, err)) != 0) break;
            count++;
            if (!comma) break;
            p = comma + 1;
        }
        free(copy);
        if (rc) return -1;
        /* the canonical form written by config_to_ini must fit one line */
        size_t len = 0;
        for (int i = 0; i < count; i++) {
            char num[32];
            len += (size_t)snprintf(num, sizeof num, "%ld", vals[i]) + (i ? 2 : 0);
        }
        if (len > value_max(k))
            return err_set(err, "%s: %s: list too long to write back on one INI line (%zu > %zu characters) — "
                           "use fewer entries", where, kn, len, value_max(k));
        int *cnt = (int *)((char *)c + k->count_off);
        memset(field, 0, k->cap * (k->type == T_INTS ? sizeof(int) : sizeof(long)));
        for (int i = 0; i < count; i++) {
            if (k->type == T_INTS) ((int *)field)[i] = (int)vals[i];
            else ((long *)field)[i] = vals[i];
        }
        *cnt = count;
        return 0;
    }
    }
    return err_set(err, "%s: %s: internal error: unknown key type", where, kn);
}

/* The value of key k as INI text. */
static void key_format(const RunConfig *c, const CfgKey *k, char *buf, size_t n) {
    const char *field = (const char *)c + k->off;
    switch (k->type) {
    case T_INT: snprintf(buf, n, "%d", *(const int *)field); return;
    case T_LONG: snprintf(buf, n, "%ld", *(const long *)field); return;
    case T_REAL: fmt_real(buf, n, *(const double *)field); return;
    case T_STR:
    case T_NAME:
    case T_ENUM: snprintf(buf, n, "%.*s", (int)k->cap, field); return;
    case T_RANGE: {
        int hi = *(const int *)field, lo = *(const int *)((const char *)c + k->count_off);
        if (lo > 0) snprintf(buf, n, "%d-%d", lo, hi);
        else snprintf(buf, n, "%d", hi);
        return;
    }
    case T_LENS: {
        int cnt = *(const int *)((const char *)c + k->count_off);
        config_format_lens((const int *)field, cnt < 0 ? 0 : cnt > (int)k->cap ? (int)k->cap : cnt, buf, n);
        return;
    }
    case T_INTS:
    case T_LONGS: {
        int cnt = *(const int *)((const char *)c + k->count_off);
        size_t used = 0;
        buf[0] = '\0';
        for (int i = 0; i < cnt && i < (int)k->cap && used < n; i++) {
            long v = k->type == T_INTS ? ((const int *)field)[i] : ((const long *)field)[i];
            used += (size_t)snprintf(buf + used, n - used, "%s%ld", i ? ", " : "", v);
        }
        return;
    }
    }
}

/* ---- the task family's own [task] keys ------------------------------------------------------------- */

static int task_param_find(const RunConfig *c, const char *key) {
    for (int i = 0; i < c->task.nparams && i < CFG_MAX_TASK_PARAMS; i++)
        if (!strcmp(c->task.param_key[i], key)) return i;
    return -1;
}

/* Stores [task] key = value for a key some family declares (which family: checked when the task is
 * built, by config_validate). */
static int task_param_apply(RunConfig *c, const char *key, const char *value, const char *where, Err *err) {
    int slot = task_param_find(c, key);
    if (slot < 0) {
        if (c->task.nparams >= CFG_MAX_TASK_PARAMS)
            return err_set(err, "%s: more than %d task keys — remove some", where, CFG_MAX_TASK_PARAMS);
        slot = c->task.nparams++;
    }
    if (strlen(key) >= sizeof c->task.param_key[0] || strlen(value) >= sizeof c->task.param_val[0])
        return err_set(err, "%s: task.%s: key or value too long (at most %zu characters)", where, key,
                       sizeof c->task.param_val[0] - 1);
    for (const char *p = value; *p; p++)
        if ((unsigned char)*p < 32) return err_set(err, "%s: task.%s: control character in the value", where, key);
    snprintf(c->task.param_key[slot], sizeof c->task.param_key[slot], "%s", key);
    snprintf(c->task.param_val[slot], sizeof c->task.param_val[slot], "%s", value);
    return 0;
}

/* ---- [sweep] ------------------------------------------------------------------------------------ */

/* Checks "key = values" of a sweep entry against c (scratch copy; c is not modified). */
static int sweep_check(const RunConfig *c, const char *key, const char *values, const char *where, Err *err) {
    int ki = key_index_dotted(key);
    if (ki < 0) {
        char hint[96];
        suggest_dotted(hint, sizeof hint, key);
        return err_set(err, "%s: [sweep] key '%s' is not a config key — write section.key, e.g. "
                       "model.layers = 1, 2, 3%s", where, key, hint);
    }
    const CfgKey *k = &CFG_KEYS[ki];
    if (is_list(k))
        return err_set(err, "%s: [sweep] %s is a list and cannot be swept (commas separate sweep values) — "
                       "set it in [%s]%s", where, key, k->section,
                       ki == key_index("experiment", "seeds") ? "; every seed is run by `rwkvlab sweep`" : "");
    const char *bad = ini_text_problem(values);
    if (bad) return err_set(err, "%s: [sweep] %s: values %s — remove it", where, key, bad);
    size_t len = strlen(key) + 3 + strlen(values);
    if (len > (size_t)LINE_MAX_CHARS || strlen(values) >= (size_t)SWEEP_VALUES_CAP)
        return err_set(err, "%s: [sweep] %s: line too long (%zu > %d characters) — use fewer values", where, key,
                       len, LINE_MAX_CHARS);
    RunConfig *scratch = xmalloc(sizeof *scratch);
    *scratch = *c;
    char *copy = strdup(values);
    CHECK(copy != NULL, "out of memory");
    char *items[64];
    int n = 0, rc = 0;
    for (char *p = copy;;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        char *item = trim(p);
        char sub[640];
        snprintf(sub, sizeof sub, "%s: [sweep] value %d", where, n + 1);
        if (!*item) {
            rc = err_set(err, "%s is empty — write %s = v1, v2, ...", sub, key);
            break;
        }
        for (int i = 0; i < n && rc == 0; i++)
            if (strcmp(items[i], item) == 0)
                rc = err_set(err, "%s: '%s' is listed twice — list each value once", sub, item);
        if (rc) break;
        if (n == 64) {
            rc = err_set(err, "%s: more than 64 values — split the sweep", sub);
            break;
        }
        items[n++] = item;
        if ((rc = key_apply(scratch, k, item, sub, err)) != 0) break;
        if (!comma) break;
        p = comma + 1;
    }
    free(copy);
    free(scratch);
    return rc ? -1 : 0;
}

static int sweep_find(const RunConfig *c, const char *key) {
    for (int i = 0; i < c->sweep.n && i < CFG_MAX_SWEEP; i++)
        if (strncmp(c->sweep.key[i], key, SWEEP_KEY_CAP) == 0) return i;
    return -1;
}

/* Adds or replaces the sweep entry for key. */
static int sweep_apply(RunConfig *c, const char *key, const char *values, const char *where, Err *err) {
    if (sweep_check(c, key, values, where, err)) return -1;
    int slot = sweep_find(c, key);
    if (slot < 0) {
        if (c->sweep.n >= CFG_MAX_SWEEP)
            return err_set(err, "%s: [sweep] more than %d swept keys — sweep fewer keys per config", where,
                           CFG_MAX_SWEEP);
        slot = c->sweep.n++;
    }
    memset(c->sweep.key[slot], 0, SWEEP_KEY_CAP);
    memset(c->sweep.values[slot], 0, SWEEP_VALUES_CAP);
    snprintf(c->sweep.key[slot], SWEEP_KEY_CAP, "%s", key);
    snprintf(c->sweep.values[slot], SWEEP_VALUES_CAP, "%s", values);
    return 0;
}

/* ---- cross-field rules -------------------------------------------------------------------------- */

/* On failure: err holds "WHAT — HOW" (no location), blame[] the table indices of the keys involved,
 * most specific first (config_load reports the line of the first one the file set). */
static int cross_check(const RunConfig *c, Err *err, int blame[2]) {
    blame[0] = blame[1] = -1;
    int C = c->model.d_model, N = c->model.head_size;
    if (N > 0 && C % N != 0) {
        char list[256];
        size_t used = 0;
        int shown = 0;
        for (int d = 1; d <= C && used < sizeof list; d++)
            if (C % d == 0 && shown++ < 16) used += (size_t)snprintf(list + used, sizeof list - used, "%s%d", used ? ", " : "", d);
        if (shown > 16 && used < sizeof list) snprintf(list + used, sizeof list - used, ", ...");
        blame[0] = key_index("model", "head_size"), blame[1] = key_index("model", "d_model");
        return err_set(err, "model.head_size = %d does not divide model.d_model = %d — use a head size that "
                       "divides it: %s", N, C, list);
    }
    if (c->train.warmup > c->train.steps) {
        blame[0] = key_index("train", "warmup"), blame[1] = key_index("train", "steps");
        return err_set(err, "train.warmup = %ld exceeds train.steps = %ld — lower warmup or raise steps",
                       c->train.warmup, c->train.steps);
    }
    if (c->train.lr_min > c->train.lr) {
        char a[32], b[32];
        fmt_real(a, sizeof a, c->train.lr_min);
        fmt_real(b, sizeof b, c->train.lr);
        blame[0] = key_index("train", "lr_min"), blame[1] = key_index("train", "lr");
        return err_set(err, "train.lr_min = %s exceeds train.lr = %s — lr_min is where the schedule ends; "
                       "set it <= lr", a, b);
    }
    for (int i = 0; i < c->experiment.nseeds; i++)
        for (int j = 0; j < i; j++)
            if (c->experiment.seeds[i] == c->experiment.seeds[j]) {
                blame[0] = key_index("experiment", "seeds");
                return err_set(err, "experiment.seeds lists %ld twice — list each seed once",
                               c->experiment.seeds[i]);
            }
    for (int i = 0; i < c->task.ntest_lens; i++)
        for (int j = 0; j < i; j++)
            if (c->task.test_lens[i] == c->task.test_lens[j]) {
                blame[0] = key_index("task", "test_lens");
                return err_set(err, "task.test_lens lists %d twice — list each length once", c->task.test_lens[i]);
            }
    const int lo = config_train_len_min(c), hi = c->task.train_len;
    if (!strcmp(c->task.protocol, "merrill")) {
        blame[0] = key_index("task", "protocol");
        if (lo != hi) {
            blame[1] = key_index("task", "train_len");
            return err_set(err, "task.protocol = merrill trains on one length n, but task.train_len = %d-%d is a range "
                           "— give one length (a sweep over task.train_len covers several)", lo, hi);
        }
        if (hi < 2) {
            blame[1] = key_index("task", "train_len");
            return err_set(err, "task.protocol = merrill needs task.train_len >= 2 (the paper's n runs from 2) — "
                           "raise it");
        }
        int has_n = 0, has_2 = 0;
        for (int i = 0; i < c->task.ntest_lens; i++)
            has_n |= c->task.test_lens[i] == hi, has_2 |= c->task.test_lens[i] == 2;
        if (!has_n) {
            blame[1] = key_index("task", "test_lens");
            return err_set(err, "task.protocol = merrill tests on the held-out length-%d sequences, but task.test_lens "
                           "does not list %d (the training length) — add it", hi, hi);
        }
        if (has_2 && hi != 2) {
            blame[1] = key_index("task", "test_lens");
            return err_set(err, "task.protocol = merrill trains on every length-2 sequence, so task.test_lens cannot "
                           "list 2 (it would test on training data) — remove it");
        }
    }
    if (c->train.early_stop > 0) {
        int inside = 0;
        for (int i = 0; i < c->task.ntest_lens; i++) inside |= c->task.test_lens[i] >= lo && c->task.test_lens[i] <= hi;
        if (!inside) {
            blame[0] = key_index("train", "early_stop"), blame[1] = key_index("task", "test_lens");
            if (lo == hi)
                return err_set(err, "train.early_stop watches the test length equal to task.train_len = %d, but "
                               "task.test_lens does not list it — add %d to task.test_lens or set early_stop = 0",
                               hi, hi);
            return err_set(err, "train.early_stop watches the test lengths inside the training range %d-%d, but "
                           "task.test_lens lists none — add one (e.g. %d) or set early_stop = 0", lo, hi, hi);
        }
    }
    return 0;
}

int config_validate(const RunConfig *c, Err *err) {
    RunConfig *scratch = xmalloc(sizeof *scratch);
    *scratch = *c;
    int rc = 0;
    /* every key: its current value must be one config_load would accept (format, then re-apply) */
    for (int i = 0; i < NKEYS && rc == 0; i++) {
        const CfgKey *k = &CFG_KEYS[i];
        const char *field = (const char *)c + k->off;
        if ((k->type == T_STR || k->type == T_NAME || k->type == T_ENUM) && !memchr(field, '\0', k->cap)) {
            rc = err_set(err, "config: %s.%s is not NUL-terminated — internal error", k->section, k->name);
            break;
        }
        if (is_list(k)) {
            int cnt = *(const int *)((const char *)c + k->count_off);
            if (cnt < 1 || cnt > (int)k->cap) {
                rc = err_set(err, "config: %s.%s has %d entries — give 1 to %d", k->section, k->name, cnt,
                             (int)k->cap);
                break;
            }
        }
        char text[1024];
        key_format(c, k, text, sizeof text);
        rc = key_apply(scratch, k, text, "config", err);
    }
    if (rc == 0 && (c->sweep.n < 0 || c->sweep.n > CFG_MAX_SWEEP))
        rc = err_set(err, "config: sweep.n = %d — must be in [0, %d]", c->sweep.n, CFG_MAX_SWEEP);
    for (int i = 0; rc == 0 && i < c->sweep.n; i++) {
        if (!memchr(c->sweep.key[i], '\0', SWEEP_KEY_CAP) || !memchr(c->sweep.values[i], '\0', SWEEP_VALUES_CAP))
            rc = err_set(err, "config: sweep entry %d is not NUL-terminated — internal error", i);
        else if (sweep_find(c, c->sweep.key[i]) != i)
            rc = err_set(err, "config: [sweep] %s appears twice — keep one", c->sweep.key[i]);
        else rc = sweep_check(c, c->sweep.key[i], c->sweep.values[i], "config", err);
    }
    free(scratch);
    if (rc) return err_clean(err);
    int blame[2];
    Err tmp;
    if (cross_check(c, &tmp, blame)) return err_set(err, "config: %s", tmp.msg);
    /* the task must build: the check `train` makes when it creates the task (e.g. swaps in A5 would be
     * only the identity), so that `config` accepts exactly what `train` accepts. Here and not in
     * config_load's cross-field rules: a file may leave the variant to a later --set. */
    Task *task = task_create(c, &tmp);
    if (!task) return err_set(err, "config: %s", tmp.msg), err_clean(err);
    /* and make every length the run asks of it (e.g. mqar: even, >= 4 num_kv, < vocab): each training
     * length of the range, the test lengths, the trajectory length, and merrill's length-2 pairs */
    int rc_len = 0;
    for (int T = config_train_len_min(c); rc_len == 0 && T <= c->task.train_len; T++)
        if (task_check_len(task, T, &tmp)) {
            if (T == c->task.train_len && config_train_len_min(c) == T)
                rc_len = err_set(err, "config: task.train_len = %d: %s", T, tmp.msg);
            else
                rc_len = err_set(err, "config: task.train_len = %d-%d includes %d: %s", config_train_len_min(c),
                                 c->task.train_len, T, tmp.msg);
        }
    for (int i = 0; rc_len == 0 && i < c->task.ntest_lens; i++)
        if (task_check_len(task, c->task.test_lens[i], &tmp))
            rc_len = err_set(err, "config: task.test_lens lists %d: %s", c->task.test_lens[i], tmp.msg);
    if (rc_len == 0 && c->log.trajectories > 0 && c->log.trajectory_len > 0 &&
        task_check_len(task, c->log.trajectory_len, &tmp))
        rc_len = err_set(err, "config: log.trajectory_len = %d: %s", c->log.trajectory_len, tmp.msg);
    if (rc_len == 0 && !strcmp(c->task.protocol, "merrill") && task_check_len(task, 2, &tmp))
        rc_len = err_set(err, "config: task.protocol = merrill also trains on every length-2 sequence: %s", tmp.msg);
    if (rc_len) {
        task_free(task);
        return err_clean(err);
    }
    /* and the architecture must accept the model keys, as `train` checks when it builds the model (e.g.
     * rwkv6 refuses eig_range = extended) */
    const ModelArch *arch = model_arch_find(c->model.arch);
    int dims[MODEL_MAX_DIMS * 4]; /* an architecture's dims struct (ints) */
    CHECK(!arch || arch->dims_size <= sizeof dims, "architecture %s: dims struct of %zu bytes exceeds %zu", arch->name,
          arch->dims_size, sizeof dims);
    int bad = arch && arch->dims_from_config(dims, c, task_vocab(task), &tmp);
    task_free(task);
    if (bad) return err_set(err, "config: %s", tmp.msg), err_clean(err);
    return 0;
}

/* ---- config_load -------------------------------------------------------------------------------- */

typedef struct {
    RunConfig *c;
    const char *path;
    const char *pos, *end; /* unread part of the file */
    int line;              /* current line, 1-based */
    int after_key;         /* a key was read since the last [section] (inih then treats indented lines as continuations) */
    int cont;              /* the current line is such a continuation */
    int failed;            /* our first error is in err; stop reading */
    int fail_line;
    int key_line[NKEYS];   /* line where the file set each key; 0 = not set */
    int sweep_line[CFG_MAX_SWEEP];
    Err *err;
} LoadCtx;

static int load_fail(LoadCtx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int load_fail(LoadCtx *x, const char *fmt, ...) {
    char what[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    x->failed = 1;
    x->fail_line = x->line;
    err_set(x->err, "%s:%d: %s", x->path, x->line, what);
    return 0; /* inih: handler failure */
}

/* fgets-like reader over the file text: counts lines and vets what inih would take silently. */
static char *load_reader(char *str, int num, void *stream) {
    LoadCtx *x = stream;
    if (x->failed || x->pos >= x->end) return NULL;
    const char *nl = memchr(x->pos, '\n', (size_t)(x->end - x->pos));
    size_t len = nl ? (size_t)(nl - x->pos) + 1 : (size_t)(x->end - x->pos);
    x->line++;
    if (memchr(x->pos, '\0', len)) {
        load_fail(x, "line contains a NUL byte — this is not a text INI file");
        return NULL;
    }
    if (num < 2 || len > (size_t)num - 1) {
        load_fail(x, "line is %zu characters long; the INI reader takes at most %d — shorten it",
                  len - (nl != NULL), num - 2);
        return NULL;
    }
    memcpy(str, x->pos, len);
    str[len] = '\0';
    x->pos += len;

    const char *s = str;
    if (x->line == 1 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF)
        s += 3;
    int lead_ws = isspace((unsigned char)s[0]);
    while (isspace((unsigned char)*s)) s++;
    int blank_or_comment = *s == '\0' || *s == ';' || *s == '#';
    x->cont = lead_ws && x->after_key && !blank_or_comment;
    if (!x->cont && *s == '[') {
        /* section header: inih takes the text up to ']' (a " ;" first makes it a syntax error) */
        const char *p = s + 1;
        while (*p && *p != ']' && !(*p == ';' && isspace((unsigned char)p[-1]))) p++;
        if (*p == ']') {
            char name[64];
            size_t n = (size_t)(p - s - 1);
            snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name ? n : sizeof name - 1), s + 1);
            if (section_index(name) < 0) {
                char hint[96];
                suggest(hint, sizeof hint, name, SECTIONS, NSECTIONS, "[", "]");
                load_fail(x, "unknown section [%s] — allowed sections: %s%s", name, ALLOWED_SECTIONS, hint);
                return NULL;
            }
            x->after_key = 0;
        }
    }
    return str;
}

static int load_handler(void *user, const char *section, const char *name, const char *value) {
    LoadCtx *x = user;
    if (x->failed) return 0;
    x->after_key = 1;
    char where[600];
    snprintf(where, sizeof where, "%s:%d", x->path, x->line);
    if (x->cont)
        return load_fail(x, "indented line continues the value of %s.%s — remove the indentation (INI reads "
                         "indented lines after a key as more of its value)", section, name);
    if (!*section) {
        for (int i = 0; i < NKEYS; i++)
            if (strcmp(CFG_KEYS[i].name, name) == 0)
                return load_fail(x, "key '%s' appears before any [section] — put it under [%s]", name,
                                 CFG_KEYS[i].section);
        return load_fail(x, "key '%s' appears before any [section] — put keys under one of %s", name,
                         ALLOWED_SECTIONS);
    }
    if (strcmp(section, "sweep") == 0) {
        int slot = sweep_find(x->c, name);
        if (slot >= 0 && x->sweep_line[slot])
            return load_fail(x, "[sweep] %s is set twice (first on line %d) — keep one of the two lines", name,
                             x->sweep_line[slot]);
        if (sweep_apply(x->c, name, value, where, x->err)) {
            x->failed = 1, x->fail_line = x->line;
            return 0;
        }
        x->sweep_line[sweep_find(x->c, name)] = x->line;
        return 1;
    }
    int ki = key_index(section, name);
    if (ki < 0 && !strcmp(section, "task") && task_param_declared(name)) {
        if (task_param_find(x->c, name) >= 0)
            return load_fail(x, "task.%s is set twice — keep one of the two lines", name);
        if (task_param_apply(x->c, name, value, where, x->err)) {
            x->failed = 1, x->fail_line = x->line;
            return 0;
        }
        return 1;
    }
    if (ki < 0) {
        char keys[512], hint[96];
        section_keys(keys, sizeof keys, section);
        suggest_key(hint, sizeof hint, section, name);
        return load_fail(x, "unknown key '%s' in [%s] — allowed keys: %s%s", name, section, keys, hint);
    }
    if (x->key_line[ki])
        return load_fail(x, "%s.%s is set twice (first on line %d) — keep one of the two lines", section, name,
                         x->key_line[ki]);
    x->key_line[ki] = x->line;
    if (key_apply(x->c, &CFG_KEYS[ki], value, where, x->err)) {
        x->failed = 1, x->fail_line = x->line;
        return 0;
    }
    return 1;
}

#define CONFIG_FILE_MAX (1 << 20)

/* Whole file into memory (NUL-terminated), or NULL + err. */
static char *read_text(const char *path, size_t *len, Err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        err_set(err, "%s: cannot open config file: %s — check the path (relative paths start at the current "
                "directory)", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap + 1);
    for (;;) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        if (cap >= CONFIG_FILE_MAX) {
            err_set(err, "%s: larger than %d bytes — this does not look like a config file", path, CONFIG_FILE_MAX);
            fclose(f);
            free(buf);
            return NULL;
        }
        char *bigger = xmalloc(2 * cap + 1);
        memcpy(bigger, buf, n);
        free(buf);
        buf = bigger;
        cap *= 2;
    }
    int bad = ferror(f);
    int e = errno;
    fclose(f);
    if (bad) {
        err_set(err, "%s: cannot read config file: %s — is it a regular file?", path, strerror(e));
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Text of line `lineno` (1-based) of buf, shortened for messages. */
static void line_text(const char *buf, size_t len, int lineno, char *out, size_t n) {
    const char *p = buf, *end = buf + len;
    for (int l = 1; l < lineno && p < end; l++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    size_t m = strcspn(p, "\r\n");
    while (m && isspace((unsigned char)p[m - 1])) m--;
    while (m && isspace((unsigned char)*p)) p++, m--;
    snprintf(out, n, "%.*s%s", (int)(m > 60 ? 60 : m), p, m > 60 ? "..." : "");
}

int config_load(RunConfig *c, const char *path, Err *err) {
    size_t len = 0;
    char *text = read_text(path, &len, err);
    if (!text) return -1;
    RunConfig *work = xmalloc(sizeof *work);
    *work = *c;
    LoadCtx *x = xcalloc(1, sizeof *x);
    x->c = work, x->path = path, x->pos = text, x->end = text + len, x->err = err;

    int ret = ini_parse_stream(load_reader, x, load_handler, x);
    int rc = -1;
    if (ret > 0 && (!x->failed || ret < x->fail_line)) {
        char shown[80];
        line_text(text, len, ret, shown, sizeof shown);
        if (shown[0] == '[')
            err_set(err, "%s:%d: cannot parse '%s' — a section header is [name] with a closing ']'", path, ret, shown);
        else
            err_set(err, "%s:%d: cannot parse '%s' — write 'key = value', '[section]' or a '; comment'", path, ret,
                    shown);
    } else if (x->failed) {
        /* message already in err */
    } else if (ret < 0) {
        err_set(err, "%s: the INI parser failed (code %d, out of memory?) — try again", path, ret);
    } else if (!x->key_line[key_index("experiment", "name")]) {
        err_set(err, "%s: missing required key experiment.name — add 'name = ...' under [experiment]", path);
    } else if (!x->key_line[key_index("task", "name")]) {
        err_set(err, "%s: missing required key task.name — add 'name = s5' (or a5, s3) under [task]", path);
    } else {
        int blame[2];
        Err tmp;
        if (cross_check(work, &tmp, blame)) {
            int line = 0;
            for (int i = 0; i < 2 && !line; i++)
                if (blame[i] >= 0) line = x->key_line[blame[i]];
            if (line) err_set(err, "%s:%d: %s", path, line, tmp.msg);
            else err_set(err, "%s: %s", path, tmp.msg);
        } else {
            *c = *work;
            rc = 0;
        }
    }
    free(x);
    free(work);
    free(text);
    return rc ? err_clean(err) : 0;
}

/* ---- config_set --------------------------------------------------------------------------------- */

int config_set(RunConfig *c, const char *assignment, Err *err) {
    char where[300];
    snprintf(where, sizeof where, "--set %.290s", assignment);
    const char *eq = strchr(assignment, '=');
    if (!eq) return err_set(err, "%s: missing '=' — write --set section.key=value, e.g. --set model.layers=2", where);
    char *copy = strdup(assignment);
    CHECK(copy != NULL, "out of memory");
    copy[eq - assignment] = '\0';
    char *key = trim(copy), *value = trim(copy + (eq - assignment) + 1);
    char *dot = strchr(key, '.');
    int rc;
    if (!dot || dot == key) {
        rc = err_set(err, "%s: '%s' is not section.key — write e.g. --set model.layers=2", where, key);
    } else {
        *dot = '\0';
        const char *section = key, *name = dot + 1;
        int ki = key_index(section, name);
        if (strcmp(section, "sweep") == 0) {
            rc = sweep_apply(c, name, value, where, err);
        } else if (section_index(section) < 0) {
            char hint[96];
            suggest(hint, sizeof hint, section, SECTIONS, NSECTIONS, "", "");
            rc = err_set(err, "%s: unknown section '%s' — allowed sections: %s%s", where, section, ALLOWED_SECTIONS,
                         hint);
        } else if (ki < 0 && !strcmp(section, "task") && task_param_declared(name)) {
            rc = task_param_apply(c, name, value, where, err);
        } else if (ki < 0) {
            char keys[512], hint[96];
            section_keys(keys, sizeof keys, section);
            suggest_key(hint, sizeof hint, section, name);
            rc = err_set(err, "%s: unknown key '%s' in [%s] — allowed keys: %s%s", where, name, section, keys, hint);
        } else {
            rc = key_apply(c, &CFG_KEYS[ki], value, where, err);
        }
    }
    free(copy);
    return rc ? err_clean(err) : 0;
}

/* ---- config_to_ini ------------------------------------------------------------------------------ */

/* all: also the chosen task family's keys that are not set, each with its default and what it means */
static char *to_ini(const RunConfig *c, int all) {
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    CHECK(f != NULL, "open_memstream failed (out of memory?)");
    fprintf(f, "; rwkvlab resolved configuration (every key; read back by config_load)\n");
    for (int s = 0; s < NSECTIONS; s++) {
        fprintf(f, "%s[%s]\n", s ? "\n" : "", SECTIONS[s]);
        for (int i = 0; i < NKEYS; i++) {
            const CfgKey *k = &CFG_KEYS[i];
            if (strcmp(k->section, SECTIONS[s]) != 0) continue;
            char text[1024];
            key_format(c, k, text, sizeof text);
            if (k->type == T_ENUM) fprintf(f, "%s = %s ; %s\n", k->name, text, key_choices(k));
            else fprintf(f, "%s = %s\n", k->name, text);
        }
        if (!strcmp(SECTIONS[s], "task"))
            for (int i = 0; i < c->task.nparams && i < CFG_MAX_TASK_PARAMS; i++)
                fprintf(f, "%s = %s\n", c->task.param_key[i], c->task.param_val[i]);
        const TaskKind *kind = all && !strcmp(SECTIONS[s], "task") ? task_kind_find(c->task.name) : NULL;
        for (int i = 0; kind && i < kind->nparams; i++)
            if (task_param_find(c, kind->params[i].key) < 0)
                fprintf(f, "%s = %s ; (default) %s\n", kind->params[i].key, kind->params[i].def, kind->params[i].doc);
    }
    for (int i = 0; i < c->sweep.n && i < CFG_MAX_SWEEP; i++)
        fprintf(f, "%.*s = %.*s\n", SWEEP_KEY_CAP, c->sweep.key[i], SWEEP_VALUES_CAP, c->sweep.values[i]);
    CHECK(fclose(f) == 0, "writing the config text failed (out of memory?)");
    return buf;
}

char *config_to_ini(const RunConfig *c) { return to_ini(c, 0); }
char *config_to_ini_all(const RunConfig *c) { return to_ini(c, 1); }
