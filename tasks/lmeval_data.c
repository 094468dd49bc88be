/* lmeval_data.c -- lm-eval task files -> LmDoc lists (templates and rules in lmeval_data.h, from
 * ../shared/spec/lmeval.md). JSON lines are parsed with cJSON, one object per line; HellaSwag's text
 * file is read through libbz2. Every failure is an Err "FILE:LINE: what (hint)"; nothing aborts on
 * bad input.
 */
#include "lmeval_data.h"

#include <bzlib.h>
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#define LMEVAL_MAX_FILE ((size_t)1 << 30) /* refuse data files (or decompressed streams) above 1 GiB */
/* One document per line: the longest line of the nine real task files is 2.2 KB (piqa). A line past this
 * limit is not one of those tasks, and scoring it would need memory in proportion to its length (a
 * 20M-word lambada line asked for 1 TB of activations): refused while reading, naming FILE:LINE. */
#define LMEVAL_MAX_LINE ((size_t)1 << 16)

static const char *const lmeval_names[] = {"lambada_openai", "piqa", "hellaswag", "arc_easy", "arc_challenge",
                                           "winogrande", "openbookqa", "copa", "sciq"};
#define LMEVAL_NTASKS ((int)(sizeof lmeval_names / sizeof lmeval_names[0]))

const char *lmeval_task_names(void) {
    return "lambada_openai, piqa, hellaswag, arc_easy, arc_challenge, winogrande, openbookqa, copa, sciq";
}

/* ---- UTF-8 and Python string helpers ----------------------------------------------------------- */

/* Strict UTF-8 check (no overlongs, no surrogates, <= U+10FFFF); returns the offset of the first bad
 * byte or -1 when valid. */
static long lmeval_utf8_bad(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned long cp, min;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xE0) == 0xC0) k = 1, cp = c & 0x1F, min = 0x80;
        else if ((c & 0xF0) == 0xE0) k = 2, cp = c & 0x0F, min = 0x800;
        else if ((c & 0xF8) == 0xF0) k = 3, cp = c & 0x07, min = 0x10000;
        else return (long)i;
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (s[i + j] & 0xC0) != 0x80) return (long)i;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return (long)i;
        i += k + 1;
    }
    return -1;
}

size_t lmeval_utf8_len(const char *s) {
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) n += (*p & 0xC0) != 0x80;
    return n;
}

/* Decode the code point at s (valid UTF-8 assumed); *k = its byte length. */
static unsigned long lmeval_cp_at(const unsigned char *s, size_t *k) {
    unsigned c = s[0];
    if (c < 0x80) { *k = 1; return c; }
    if ((c & 0xE0) == 0xC0) { *k = 2; return ((c & 0x1Fu) << 6) | (s[1] & 0x3Fu); }
    if ((c & 0xF0) == 0xE0) { *k = 3; return ((c & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu); }
    *k = 4;
    return ((c & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
}

/* Python's str.isspace() set. */
static int lmeval_is_pyspace(unsigned long cp) {
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

/* Byte offset where Python's lstrip() would start / rstrip() would end, for s[0..n). */
static size_t lmeval_lstrip_at(const char *s, size_t n) {
    size_t i = 0, k;
    while (i < n && lmeval_is_pyspace(lmeval_cp_at((const unsigned char *)s + i, &k))) i += k;
    return i;
}
static size_t lmeval_rstrip_at(const char *s, size_t n) {
    size_t e = n;
    while (e > 0) {
        size_t b = e - 1, k;
        while (b > 0 && ((unsigned char)s[b] & 0xC0) == 0x80) b--;
        if (!lmeval_is_pyspace(lmeval_cp_at((const unsigned char *)s + b, &k))) break;
        e = b;
    }
    return e;
}

static char *lmeval_strndup(const char *s, size_t n) {
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* Concatenate up to three strings (NULL = empty) into a new one. */
static char *lmeval_cat3(const char *a, const char *b, const char *c) {
    size_t la = a ? strlen(a) : 0, lb = b ? strlen(b) : 0, lc = c ? strlen(c) : 0;
    char *p = xmalloc(la + lb + lc + 1);
    if (la) memcpy(p, a, la);
    if (lb) memcpy(p + la, b, lb);
    if (lc) memcpy(p + la + lb, c, lc);
    p[la + lb + lc] = '\0';
    return p;
}

char *lmeval_hellaswag_preprocess(const char *text) {
    size_t n = strlen(text);
    size_t b = lmeval_lstrip_at(text, n), e = lmeval_rstrip_at(text, n);
    if (e < b) e = b;
    /* 1. " [title]" -> ". " (never grows the string) */
    char *s1 = xmalloc(e - b + 1);
    size_t m = 0;
    for (size_t i = b; i < e;) {
        if (e - i >= 8 && memcmp(text + i, " [title]", 8) == 0) {
            s1[m++] = '.';
            s1[m++] = ' ';
            i += 8;
        } else {
            s1[m++] = text[i++];
        }
    }
    /* 2. remove every \[.*?\] ('.' matches anything but '\n') */
    char *s2 = xmalloc(m + 1);
    size_t m2 = 0;
    for (size_t i = 0; i < m;) {
        if (s1[i] == '[') {
            size_t j = i + 1;
            while (j < m && s1[j] != ']' && s1[j] != '\n') j++;
            if (j < m && s1[j] == ']') {
                i = j + 1;
                continue;
            }
        }
        s2[m2++] = s1[i++];
    }
    /* 3. "  " -> " " in one left-to-right non-overlapping pass */
    char *out = xmalloc(m2 + 1);
    size_t m3 = 0;
    for (size_t i = 0; i < m2;) {
        if (i + 1 < m2 && s2[i] == ' ' && s2[i + 1] == ' ') {
            out[m3++] = ' ';
            i += 2;
        } else {
            out[m3++] = s2[i++];
        }
    }
    out[m3] = '\0';
    free(s1);
    free(s2);
    return out;
}

/* ---- document list builder -------------------------------------------------------------------- */

typedef struct {
    LmDoc *docs;
    int n, cap;
} LmDocs;

static LmDoc *lmeval_docs_push(LmDocs *d) {
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 256;
        LmDoc *nd = xmalloc((size_t)d->cap * sizeof *nd);
        if (d->n) memcpy(nd, d->docs, (size_t)d->n * sizeof *nd);
        free(d->docs);
        d->docs = nd;
    }
    LmDoc *doc = &d->docs[d->n++];
    memset(doc, 0, sizeof *doc);
    return doc;
}

static void lmeval_doc_free(LmDoc *d) {
    free(d->context);
    for (int i = 0; i < d->ncont; i++) {
        if (d->contexts) free(d->contexts[i]);
        if (d->cont) free(d->cont[i]);
    }
    free(d->contexts);
    free(d->cont);
    free(d->choice_len);
    memset(d, 0, sizeof *d);
}

static void lmeval_doc_alloc(LmDoc *d, int ncont, int per_choice_ctx) {
    d->ncont = ncont;
    d->cont = xcalloc((size_t)ncont, sizeof *d->cont);
    d->choice_len = xcalloc((size_t)ncont, sizeof *d->choice_len);
    if (per_choice_ctx) d->contexts = xcalloc((size_t)ncont, sizeof *d->contexts);
}

/* cont[i] = delim + choice; choice_len[i] = Python len(len_of) */
static void lmeval_doc_set_choice(LmDoc *d, int i, const char *delim, const char *choice, const char *len_of) {
    d->cont[i] = lmeval_cat3(delim, choice, NULL);
    d->choice_len[i] = lmeval_utf8_len(len_of);
}

void lmeval_task_free(LmTask *t) {
    if (!t) return;
    for (int i = 0; i < t->ndocs; i++) lmeval_doc_free(&t->docs[i]);
    free(t->docs);
    memset(t, 0, sizeof *t);
}

const char *lmeval_doc_context(const LmDoc *d, int i) { return d->contexts ? d->contexts[i] : d->context; }

/* ---- file reading ------------------------------------------------------------------------------ */

/* FILE:LINE error for the first line of buf longer than LMEVAL_MAX_LINE. */
static int lmeval_check_lines(const char *path, const char *buf, size_t len, Err *err) {
    long lineno = 1;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (buf + i)) : len - i;
        if (n > LMEVAL_MAX_LINE)
            return err_set(err, "%s:%ld: line of %zu bytes is over the %zu-byte limit for one document (the longest "
                                "line of the real task files is 2.2 KB): not an lm-eval task file, or a corrupt one",
                           path, lineno, n, LMEVAL_MAX_LINE);
        i += n + 1;
        lineno++;
    }
    return 0;
}

static int lmeval_read_file(const char *path, char **buf, size_t *len, Err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, "cannot open '%s': %s (run `make data`)", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *b = xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap >= LMEVAL_MAX_FILE) {
                free(b);
                fclose(f);
                return err_set(err, "%s: larger than %zu bytes; not a task file", path, LMEVAL_MAX_FILE);
            }
            cap *= 2;
            char *nb = xmalloc(cap + 1);
            memcpy(nb, b, n);
            free(b);
            b = nb;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b);
        return err_set(err, "%s: read error", path);
    }
    b[n] = '\0';
    if (lmeval_check_lines(path, b, n, err)) {
        free(b);
        return -1;
    }
    *buf = b;
    *len = n;
    return 0;
}

/* Decompress a (possibly multi-stream) .bz2 file into memory. */
static int lmeval_read_bz2(const char *path, char **buf, size_t *len, Err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, "cannot open '%s': %s (run `make data`)", path, strerror(errno));
    size_t cap = 1 << 20, n = 0;
    char *b = xmalloc(cap + 1);
    int bzerr = BZ_OK, fail = 0;
    char unused[BZ_MAX_UNUSED];
    int nunused = 0;
    for (;;) {
        BZFILE *bz = BZ2_bzReadOpen(&bzerr, f, 0, 0, unused, nunused);
        if (bzerr != BZ_OK) {
            fail = err_set(err, "%s: cannot start bzip2 decompression (error %d)", path, bzerr);
            break;
        }
        while (bzerr == BZ_OK) {
            if (n == cap) {
                if (cap >= LMEVAL_MAX_FILE) {
                    bzerr = BZ_MEM_ERROR;
                    break;
                }
                cap *= 2;
                char *nb = xmalloc(cap + 1);
                memcpy(nb, b, n);
                free(b);
                b = nb;
            }
            int want = (int)((cap - n) > (1 << 30) ? (1 << 30) : (cap - n));
            int got = BZ2_bzRead(&bzerr, bz, b + n, want);
            if (bzerr == BZ_OK || bzerr == BZ_STREAM_END) n += (size_t)got;
        }
        if (bzerr != BZ_STREAM_END) {
            BZ2_bzReadClose(&bzerr, bz);
            fail = err_set(err, "%s: bzip2 data is corrupt, truncated or too large (decompressed so far: %zu bytes)",
                           path, n);
            break;
        }
        void *un;
        BZ2_bzReadGetUnused(&bzerr, bz, &un, &nunused);
        if (nunused > 0) memcpy(unused, un, (size_t)nunused);
        BZ2_bzReadClose(&bzerr, bz);
        if (nunused == 0) {
            int c = fgetc(f);
            if (c == EOF) break;
            ungetc(c, f);
        }
    }
    fclose(f);
    if (fail) {
        free(b);
        return -1;
    }
    b[n] = '\0';
    if (lmeval_check_lines(path, b, n, err)) {
        free(b);
        return -1;
    }
    *buf = b;
    *len = n;
    return 0;
}

/* Iterate over lines of buf (modified in place: '\n' -> '\0', a trailing '\r' removed). */
typedef struct {
    char *p, *end;
    long lineno;
} LmLines;

static char *lmeval_next_line(LmLines *it, size_t *n) {
    if (it->p >= it->end) return NULL;
    char *s = it->p;
    char *nl = memchr(s, '\n', (size_t)(it->end - s));
    char *e = nl ? nl : it->end;
    it->p = nl ? nl + 1 : it->end;
    if (e > s && e[-1] == '\r') e--;
    *e = '\0';
    *n = (size_t)(e - s);
    it->lineno++;
    return s;
}

static int lmeval_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

/* ---- JSON field access with FILE:LINE errors ---------------------------------------------------- */

typedef struct {
    const char *path;
    long lineno;
    Err *err;
} LmCtx;

static int lmeval_check_utf8(const LmCtx *c, const char *field, const char *s) {
    long bad = lmeval_utf8_bad((const unsigned char *)s, strlen(s));
    if (bad >= 0)
        return err_set(c->err, "%s:%ld: field \"%s\" is not valid UTF-8 (byte %ld)", c->path, c->lineno, field, bad);
    return 0;
}

static int lmeval_get_str(const LmCtx *c, const cJSON *o, const char *field, const char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
    if (!v) return err_set(c->err, "%s:%ld: missing field \"%s\"", c->path, c->lineno, field);
    if (!cJSON_IsString(v) || !v->valuestring)
        return err_set(c->err, "%s:%ld: field \"%s\" must be a string", c->path, c->lineno, field);
    if (lmeval_check_utf8(c, field, v->valuestring)) return -1;
    *out = v->valuestring;
    return 0;
}

static int lmeval_get_str_array(const LmCtx *c, const cJSON *o, const char *field, const cJSON **arr, int *n) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
    if (!v) return err_set(c->err, "%s:%ld: missing field \"%s\"", c->path, c->lineno, field);
    if (!cJSON_IsArray(v)) return err_set(c->err, "%s:%ld: field \"%s\" must be an array of strings", c->path, c->lineno, field);
    int k = 0;
    for (const cJSON *e = v->child; e; e = e->next, k++) {
        if (!cJSON_IsString(e) || !e->valuestring)
            return err_set(c->err, "%s:%ld: field \"%s\"[%d] must be a string", c->path, c->lineno, field, k);
        if (lmeval_check_utf8(c, field, e->valuestring)) return -1;
    }
    if (k < 2) return err_set(c->err, "%s:%ld: field \"%s\" needs at least 2 choices, has %d", c->path, c->lineno, field, k);
    *arr = v;
    *n = k;
    return 0;
}

static int lmeval_get_gold(const LmCtx *c, const cJSON *o, const char *field, int nchoices, int *gold) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
    if (!v) return err_set(c->err, "%s:%ld: missing field \"%s\"", c->path, c->lineno, field);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble))
        return err_set(c->err, "%s:%ld: field \"%s\" must be an integer", c->path, c->lineno, field);
    if (v->valuedouble < 0 || v->valuedouble >= nchoices)
        return err_set(c->err, "%s:%ld: %s %.17g out of range: must be in 0..%d", c->path, c->lineno, field,
                       v->valuedouble, nchoices - 1);
    *gold = (int)v->valuedouble;
    return 0;
}

/* ---- per-task renderers: one JSON object -> one LmDoc ------------------------------------------ */

typedef int (*LmRender)(const LmCtx *c, const cJSON *o, LmDoc *d);

static int lmeval_render_lambada(const LmCtx *c, const cJSON *o, LmDoc *d) {
    const char *text;
    if (lmeval_get_str(c, o, "text", &text)) return -1;
    const char *sp = strrchr(text, ' ');
    if (!sp) return err_set(c->err, "%s:%ld: \"text\" has no space to split off the last word", c->path, c->lineno);
    d->context = lmeval_strndup(text, (size_t)(sp - text));
    lmeval_doc_alloc(d, 1, 0);
    lmeval_doc_set_choice(d, 0, " ", sp + 1, sp + 1);
    d->gold = 0;
    return 0;
}

static int lmeval_render_piqa(const LmCtx *c, const cJSON *o, LmDoc *d) {
    const char *goal, *s1, *s2;
    if (lmeval_get_str(c, o, "goal", &goal) || lmeval_get_str(c, o, "sol1", &s1) || lmeval_get_str(c, o, "sol2", &s2))
        return -1;
    d->context = lmeval_cat3("Question: ", goal, "\nAnswer:");
    lmeval_doc_alloc(d, 2, 0);
    lmeval_doc_set_choice(d, 0, " ", s1, s1);
    lmeval_doc_set_choice(d, 1, " ", s2, s2);
    d->gold = -1; /* from the label file */
    return 0;
}

/* query/choices/gold with context = query + suffix (arc: "\nAnswer:", openbookqa: "") */
static int lmeval_render_qcg(const LmCtx *c, const cJSON *o, LmDoc *d, const char *suffix) {
    const char *query;
    const cJSON *arr;
    int n, gold;
    if (lmeval_get_str(c, o, "query", &query) || lmeval_get_str_array(c, o, "choices", &arr, &n) ||
        lmeval_get_gold(c, o, "gold", n, &gold))
        return -1;
    d->context = lmeval_cat3(query, suffix, NULL);
    lmeval_doc_alloc(d, n, 0);
    int i = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) lmeval_doc_set_choice(d, i, " ", e->valuestring, e->valuestring);
    d->gold = gold;
    return 0;
}
static int lmeval_render_arc(const LmCtx *c, const cJSON *o, LmDoc *d) { return lmeval_render_qcg(c, o, d, "\nAnswer:"); }
static int lmeval_render_obqa(const LmCtx *c, const cJSON *o, LmDoc *d) { return lmeval_render_qcg(c, o, d, ""); }

static int lmeval_render_winogrande(const LmCtx *c, const cJSON *o, LmDoc *d) {
    const char *cont;
    const cJSON *arr;
    int n, gold;
    if (lmeval_get_str_array(c, o, "context_options", &arr, &n) || lmeval_get_str(c, o, "continuation", &cont) ||
        lmeval_get_gold(c, o, "gold", n, &gold))
        return -1;
    lmeval_doc_alloc(d, n, 1);
    int i = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        d->contexts[i] = lmeval_cat3(e->valuestring, NULL, NULL);
        lmeval_doc_set_choice(d, i, " ", cont, cont);
    }
    d->gold = gold;
    return 0;
}

static int lmeval_render_copa(const LmCtx *c, const cJSON *o, LmDoc *d) {
    const char *query;
    const cJSON *arr;
    int n, gold;
    if (lmeval_get_str(c, o, "query", &query) || lmeval_get_str_array(c, o, "choices", &arr, &n) ||
        lmeval_get_gold(c, o, "gold", n, &gold))
        return -1;
    static const char *const conn[] = {", because", ", therefore"};
    size_t q = strlen(query);
    int which = -1;
    for (int k = 0; k < 2; k++) {
        size_t lc = strlen(conn[k]);
        if (q >= lc && memcmp(query + q - lc, conn[k], lc) == 0) which = k;
    }
    if (which < 0)
        return err_set(c->err, "%s:%ld: copa \"query\" must end with \", because\" or \", therefore\"", c->path, c->lineno);
    size_t lc = strlen(conn[which]);
    char *ctx = xmalloc(q);
    memcpy(ctx, query, q - lc);                       /* premise up to the comma */
    memcpy(ctx + q - lc, conn[which] + 1, lc - 1);    /* " because" / " therefore" */
    ctx[q - 1] = '\0';
    d->context = ctx;
    lmeval_doc_alloc(d, n, 0);
    int i = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        /* lm-eval's choice is " " + choice, joined with the target delimiter " ": two spaces. */
        char *choice = lmeval_cat3(" ", e->valuestring, NULL);
        lmeval_doc_set_choice(d, i, " ", choice, choice);
        free(choice);
    }
    d->gold = gold;
    return 0;
}

static int lmeval_render_sciq(const LmCtx *c, const cJSON *o, LmDoc *d) {
    const char *support, *question, *d1, *d2, *d3, *ans;
    if (lmeval_get_str(c, o, "support", &support) || lmeval_get_str(c, o, "question", &question) ||
        lmeval_get_str(c, o, "distractor1", &d1) || lmeval_get_str(c, o, "distractor2", &d2) ||
        lmeval_get_str(c, o, "distractor3", &d3) || lmeval_get_str(c, o, "correct_answer", &ans))
        return -1;
    const char *sup = support + lmeval_lstrip_at(support, strlen(support));
    char *a = lmeval_cat3(sup, "\nQuestion: ", question);
    d->context = lmeval_cat3(a, "\nAnswer:", NULL);
    free(a);
    lmeval_doc_alloc(d, 4, 0);
    const char *ch[4] = {d1, d2, d3, ans};
    for (int i = 0; i < 4; i++) lmeval_doc_set_choice(d, i, " ", ch[i], ch[i]);
    d->gold = 3;
    return 0;
}

/* ---- loaders ------------------------------------------------------------------------------------ */

static int lmeval_load_jsonl(const char *path, LmRender render, LmDocs *docs, Err *err) {
    char *buf;
    size_t len;
    if (lmeval_read_file(path, &buf, &len, err)) return -1;
    LmLines it = {buf, buf + len, 0};
    char *line;
    size_t n;
    int fail = 0;
    while ((line = lmeval_next_line(&it, &n))) {
        if (lmeval_blank(line, n)) continue;
        LmCtx c = {path, it.lineno, err};
        if (memchr(line, '\0', n)) {
            fail = err_set(err, "%s:%ld: NUL byte in the line", path, it.lineno);
            break;
        }
        const char *end = NULL;
        cJSON *o = cJSON_ParseWithOpts(line, &end, 1);
        if (!o) {
            long col = end ? (long)(end - line) + 1 : 0;
            if (!end || end < line || end > line + n) {
                const char *ep = cJSON_GetErrorPtr();
                col = (ep && ep >= line && ep <= line + n) ? (long)(ep - line) + 1 : 0;
            }
            fail = err_set(err, "%s:%ld: invalid JSON near column %ld (each line must be one JSON object)", path,
                           it.lineno, col);
            break;
        }
        if (!cJSON_IsObject(o)) {
            cJSON_Delete(o);
            fail = err_set(err, "%s:%ld: expected a JSON object", path, it.lineno);
            break;
        }
        LmDoc *d = lmeval_docs_push(docs);
        int rc = render(&c, o, d);
        cJSON_Delete(o);
        if (rc) {
            lmeval_doc_free(d);
            docs->n--;
            fail = -1;
            break;
        }
    }
    free(buf);
    if (!fail && docs->n == 0) fail = err_set(err, "%s: no documents (empty dataset)", path);
    return fail;
}

static int lmeval_load_piqa_labels(const char *path, LmDocs *docs, const char *data_path, Err *err) {
    char *buf;
    size_t len;
    if (lmeval_read_file(path, &buf, &len, err)) return -1;
    LmLines it = {buf, buf + len, 0};
    char *line;
    size_t n;
    int k = 0, fail = 0;
    while ((line = lmeval_next_line(&it, &n))) {
        if (lmeval_blank(line, n)) continue;
        size_t b = 0, e = n;
        while (b < e && (line[b] == ' ' || line[b] == '\t')) b++;
        while (e > b && (line[e - 1] == ' ' || line[e - 1] == '\t')) e--;
        if (e - b != 1 || (line[b] != '0' && line[b] != '1')) {
            fail = err_set(err, "%s:%ld: a PIQA label must be 0 or 1", path, it.lineno);
            break;
        }
        if (k >= docs->n) {
            fail = err_set(err, "%s:%ld: more labels than the %d items in %s", path, it.lineno, docs->n, data_path);
            break;
        }
        docs->docs[k++].gold = line[b] - '0';
    }
    free(buf);
    if (!fail && k != docs->n)
        fail = err_set(err, "%s: %d labels for the %d items in %s", path, k, docs->n, data_path);
    return fail;
}

static int lmeval_load_hellaswag(const char *path, LmDocs *docs, Err *err) {
    char *buf;
    size_t len, pl = strlen(path);
    int rc = pl > 4 && strcmp(path + pl - 4, ".bz2") == 0 ? lmeval_read_bz2(path, &buf, &len, err)
                                                          : lmeval_read_file(path, &buf, &len, err);
    if (rc) return -1;
    if (len > 0 && buf[len - 1] == '\n') buf[--len] = '\0'; /* final newline ends the last line */
    LmLines it = {buf, buf + len, 0};
    char *lines[6];
    size_t n;
    int fail = 0;
    for (;;) {
        int got = 0;
        for (; got < 6; got++) {
            lines[got] = lmeval_next_line(&it, &n);
            if (!lines[got]) break;
            if (memchr(lines[got], '\0', n)) {
                fail = err_set(err, "%s:%ld: NUL byte in the line", path, it.lineno);
                break;
            }
            long bad = lmeval_utf8_bad((unsigned char *)lines[got], n);
            if (bad >= 0) {
                fail = err_set(err, "%s:%ld: not valid UTF-8 (byte %ld)", path, it.lineno, bad);
                break;
            }
        }
        if (fail) break;
        if (got == 0) break;
        if (got < 6) {
            fail = err_set(err, "%s:%ld: truncated item: %d of its 6 lines (context, gold, 4 endings)", path,
                           it.lineno, got);
            break;
        }
        long ctx_line = it.lineno - 5;
        const char *g = lines[1];
        if (!(g[0] >= '0' && g[0] <= '3' && g[1] == '\0')) {
            fail = err_set(err, "%s:%ld: gold must be one digit 0..3 (line 2 of the item starting at line %ld)", path,
                           ctx_line + 1, ctx_line);
            break;
        }
        LmDoc *d = lmeval_docs_push(docs);
        d->context = lmeval_hellaswag_preprocess(lines[0]);
        lmeval_doc_alloc(d, 4, 0);
        for (int i = 0; i < 4; i++) {
            char *p = lmeval_hellaswag_preprocess(lines[2 + i]);
            lmeval_doc_set_choice(d, i, " ", p, p);
            free(p);
        }
        d->gold = g[0] - '0';
    }
    free(buf);
    if (!fail && docs->n == 0) fail = err_set(err, "%s: no documents (empty dataset)", path);
    return fail;
}

static int lmeval_task_index(const char *name) {
    for (int i = 0; i < LMEVAL_NTASKS; i++)
        if (strcmp(name, lmeval_names[i]) == 0) return i;
    return -1;
}

int lmeval_task_load_file(const char *task_name, const char *path, const char *labels_path, LmTask *t, Err *err) {
    memset(t, 0, sizeof *t);
    int ti = lmeval_task_index(task_name);
    if (ti < 0) return err_set(err, "unknown lm-eval task '%s'; allowed: %s", task_name, lmeval_task_names());
    if (ti == 1 && !labels_path) return err_set(err, "piqa needs its label file (piqa_valid-labels.lst)");
    LmDocs docs = {0};
    int rc;
    switch (ti) {
    case 0: rc = lmeval_load_jsonl(path, lmeval_render_lambada, &docs, err); break;
    case 1:
        rc = lmeval_load_jsonl(path, lmeval_render_piqa, &docs, err);
        if (!rc) rc = lmeval_load_piqa_labels(labels_path, &docs, path, err);
        break;
    case 2: rc = lmeval_load_hellaswag(path, &docs, err); break;
    case 3:
    case 4: rc = lmeval_load_jsonl(path, lmeval_render_arc, &docs, err); break;
    case 5: rc = lmeval_load_jsonl(path, lmeval_render_winogrande, &docs, err); break;
    case 6: rc = lmeval_load_jsonl(path, lmeval_render_obqa, &docs, err); break;
    case 7: rc = lmeval_load_jsonl(path, lmeval_render_copa, &docs, err); break;
    default: rc = lmeval_load_jsonl(path, lmeval_render_sciq, &docs, err); break;
    }
    t->docs = docs.docs;
    t->ndocs = docs.n;
    if (rc) {
        lmeval_task_free(t);
        return -1;
    }
    snprintf(t->name, sizeof t->name, "%s", task_name);
    if (labels_path) snprintf(t->source, sizeof t->source, "%s + %s", path, labels_path);
    else snprintf(t->source, sizeof t->source, "%s", path);
    t->is_loglik_ppl = ti == 0;
    t->has_acc_norm = ti == 1 || ti == 2 || ti == 3 || ti == 4 || ti == 6 || ti == 8;
    t->note = ti == 2 ? LMEVAL_HELLASWAG_NOTE : NULL;
    return 0;
}

/* DATA_DIR/evalsets/NAME if it exists, else DATA_DIR/NAME; 0 if found. */
static int lmeval_find(const char *data_dir, const char *name, char *out, size_t cap) {
    struct stat st;
    snprintf(out, cap, "%s/evalsets/%s", data_dir, name);
    if (stat(out, &st) == 0) return 0;
    snprintf(out, cap, "%s/%s", data_dir, name);
    return stat(out, &st) == 0 ? 0 : -1;
}

int lmeval_task_load(const char *task_name, const char *data_dir, LmTask *t, Err *err) {
    memset(t, 0, sizeof *t);
    static const char *const files[] = {"lambada_openai_test.jsonl",       "piqa_valid.jsonl",
                                        "hellaswag_val_full.txt.bz2",      "arc_easy_test.foundry.jsonl",
                                        "arc_challenge_test.foundry.jsonl", "winogrande_xl_dev.foundry.jsonl",
                                        "openbookqa_test.foundry.jsonl",   "copa_val.foundry.jsonl",
                                        "sciq_test.jsonl"};
    int ti = lmeval_task_index(task_name);
    if (ti < 0) return err_set(err, "unknown lm-eval task '%s'; allowed: %s", task_name, lmeval_task_names());
    char path[1024], labels[1024];
    int found = lmeval_find(data_dir, files[ti], path, sizeof path) == 0;
    if (!found && ti == 2) found = lmeval_find(data_dir, "hellaswag_val_full.txt", path, sizeof path) == 0;
    if (!found)
        return err_set(err, "%s: data file %s not found in %s/evalsets/ or %s/ (run `make data`%s)", task_name,
                       files[ti], data_dir, data_dir,
                       ti == 8 ? "; sciq needs allenai/sciq's test split as JSON lines with support, question, "
                                 "distractor1..3, correct_answer"
                               : "");
    if (ti == 1 && lmeval_find(data_dir, "piqa_valid-labels.lst", labels, sizeof labels) != 0)
        return err_set(err, "piqa: label file piqa_valid-labels.lst not found in %s/evalsets/ or %s/", data_dir, data_dir);
    return lmeval_task_load_file(task_name, path, ti == 1 ? labels : NULL, t, err);
}

/* ---- request tokenisation ----------------------------------------------------------------------- */

int lmeval_encode_request(const Tokenizer *tok, const char *ctx, const char *cont, int split, int prefix,
                          int **ctx_ids, size_t *nctx, int **cont_ids, size_t *ncont, Err *err) {
    size_t lc = strlen(ctx), lk = strlen(cont);
    int *a = NULL, *w = NULL;
    size_t na = 0, nw = 0;
    int pre = prefix >= 0;
    if (split == LMEVAL_SPLIT_SEPARATE) {
        if (tokenizer_encode(tok, ctx, lc, &a, &na, err)) return -1;
        if (tokenizer_encode(tok, cont, lk, &w, &nw, err)) {
            free(a);
            return -1;
        }
        *cont_ids = w;
        *ncont = nw;
    } else {
        size_t e = lmeval_rstrip_at(ctx, lc); /* trailing whitespace moves to the continuation */
        char *whole = lmeval_cat3(ctx, cont, NULL);
        if (tokenizer_encode(tok, ctx, e, &a, &na, err) || tokenizer_encode(tok, whole, lc + lk, &w, &nw, err)) {
            free(a);
            free(whole);
            return -1;
        }
        free(whole);
        size_t k = nw > na ? nw - na : 0;
        *cont_ids = xmalloc((k ? k : 1) * sizeof **cont_ids);
        if (k) memcpy(*cont_ids, w + na, k * sizeof *w);
        *ncont = k;
        free(w);
    }
    if (*ncont == 0) {
        free(a);
        free(*cont_ids);
        *cont_ids = NULL;
        return err_set(err, "lm-eval request: the continuation \"%.40s\" tokenises to nothing", cont);
    }
    *ctx_ids = xmalloc((na + (size_t)pre + 1) * sizeof **ctx_ids);
    if (pre) (*ctx_ids)[0] = prefix;
    if (na) memcpy(*ctx_ids + pre, a, na * sizeof *a);
    *nctx = na + (size_t)pre;
    free(a);
    return 0;
}
