/* opts.h -- the one command-line option parser: a table of options per subcommand.
 *
 * Each subcommand describes its options in an OptSpec table (name, value type, destination, range or
 * allowed values) and its positional arguments (how many, what they are called), then calls
 * opts_parse once. Rules, the same for every subcommand:
 *   - `--name VALUE` or `--name=VALUE`. A value that starts with "--" is taken as a missing value
 *     (write `--name=--text` to pass such a value); numeric values may be negative (and then rejected
 *     by their range).
 *   - An unknown option is an error naming it, with "did you mean --x?" when one is close.
 *   - A missing value, a malformed number (`abc`, `12x`, `nan`, ` 5`), a number out of its range or an
 *     enum value not allowed is an error naming the option, the value and what is allowed.
 *   - An option given twice is an error unless it is repeatable (OPT_STRS, e.g. --set).
 *   - `--help` / `-h` anywhere: opts_parse returns OPTS_HELP (the caller prints its usage, exit 0).
 *   - `--` ends the options: what follows is positional.
 * Messages are "WHAT — HOW" without the "rwkvlab CMD:" prefix, which the caller adds.
 *
 * Example (a subcommand with one positional FILE, a required --to and an enum):
 *   const char *to = NULL; int dtype = 0; const char *file = NULL;
 *   OptSpec sp[] = {O_STR("--to", &to, .required = 1), O_ENUM("--dtype", &dtype, "bf16|f16|f32")};
 *   OptParser p = {.cmd = "export", .specs = sp, .nspecs = OPTS_N(sp), .pos_name = "CKPT", .pos_min = 1,
 *                  .pos_max = 1, .pos = &file};
 *   int rc = opts_parse(&p, argc, argv, &err);   // 0, OPTS_HELP, or -1 with err
 */
#ifndef RWKV_OPTS_H
#define RWKV_OPTS_H

#include "common.h"

typedef enum {
    OPT_FLAG, /* no value; *(int *)dst = 1 */
    OPT_INT,  /* *(int *)dst, whole number in [lo, hi] */
    OPT_LONG, /* *(long *)dst, whole number in [lo, hi] */
    OPT_REAL, /* *(double *)dst, finite number in [lo, hi] ((lo, hi] with lo_open) */
    OPT_STR,  /* *(const char **)dst = the argv text */
    OPT_ENUM, /* *(int *)dst = index of the value in choices "a|b|c" */
    OPT_STRS, /* repeatable: ((const char **)dst)[k] for k < cap; *count = entries */
} OptType;

typedef struct {
    const char *name;    /* "--layers" */
    OptType type;
    void *dst;
    double lo, hi;       /* numeric range (lo == hi == 0: any value of the type) */
    const char *choices; /* OPT_ENUM */
    int cap;             /* OPT_STRS: capacity of the dst array */
    int *count;          /* optional: set to how many times the option was given (OPT_STRS: entries) */
    int required;        /* error when absent */
    int lo_open;         /* OPT_REAL: lo itself is excluded */
} OptSpec;

typedef struct {
    const char *cmd;        /* subcommand, for messages ("init") */
    const OptSpec *specs;
    int nspecs;
    const char *pos_name;   /* what the positionals are called ("CONFIG"); NULL = none taken */
    int pos_min, pos_max;   /* how many positionals */
    const char **pos;       /* (pos_max) out: the positional arguments */
    int npos;               /* out */
} OptParser;

#define OPTS_N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Table rows; more fields after the fixed ones as designated initializers (.required = 1, .count = &n). */
#define O_FLAG(nm, p, ...) {.name = nm, .type = OPT_FLAG, .dst = (p), __VA_ARGS__}
#define O_STR(nm, p, ...) {.name = nm, .type = OPT_STR, .dst = (p), __VA_ARGS__}
#define O_INT(nm, p, l, h, ...) {.name = nm, .type = OPT_INT, .dst = (p), .lo = (l), .hi = (h), __VA_ARGS__}
#define O_LONG(nm, p, l, h, ...) {.name = nm, .type = OPT_LONG, .dst = (p), .lo = (l), .hi = (h), __VA_ARGS__}
#define O_REAL(nm, p, l, h, ...) {.name = nm, .type = OPT_REAL, .dst = (p), .lo = (l), .hi = (h), __VA_ARGS__}
#define O_ENUM(nm, p, ch, ...) {.name = nm, .type = OPT_ENUM, .dst = (p), .choices = (ch), __VA_ARGS__}
#define O_STRS(nm, arr, n, cnt, ...) {.name = nm, .type = OPT_STRS, .dst = (arr), .cap = (n), .count = (cnt), __VA_ARGS__}
#define OPTS_HELP 1

/* Parses argv[1..argc-1] (argv[0] is the subcommand). 0, OPTS_HELP, or -1 with err. */
int opts_parse(OptParser *p, int argc, char **argv, Err *err);

/* A list of whole numbers, each in [lo, hi], e.g. "0,17,5" (what = the option, for messages).
 * strict: entries separated by single commas (spaces around them allowed), no empty entries.
 * !strict (the contents of a file): entries separated by any run of commas and whitespace.
 * On success *out (caller frees) holds *n >= 1 entries. On error *out = NULL, *n = 0, nothing is left
 * allocated, and err names the entry. */
int opts_parse_ints(const char *what, const char *s, int strict, long lo, long hi, int **out, int *n, Err *err);

/* Levenshtein distance of two short strings (99 when either is longer than 63 characters). */
int opts_edit_distance(const char *a, const char *b);

#endif
