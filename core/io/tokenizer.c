/* tokenizer.c -- RWKV World tokenizer: vocabulary parser (Python literals), byte trie, greedy
 * longest-match encoder, decoder. Rules are stated in tokenizer.h.
 *
 * Layout: token bytes live in one pool (`pool`, `off[id]`, `len[id]`, len = -1 for unused ids). The
 * trie has `nnodes` nodes; `node_tok[node]` is the id ending there (-1 if none); its edges are one
 * open-addressing hash table mapping key = (node << 8 | byte) + 1 to the child node (0 = empty slot).
 */
#include "tokenizer.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#define TOKENIZER_MAX_ID (1 << 21)   /* sanity bound on ids in the file (V <= 2M) */
#define TOKENIZER_MAX_TOKEN 4096     /* sanity bound on one token's byte length */

struct Tokenizer {
    int vocab_size;  /* largest id + 1 */
    int ntokens;     /* tokens read */
    unsigned char *pool;
    size_t pool_len, pool_cap;
    long *off;       /* (vocab_size) byte offset in pool */
    int *len;        /* (vocab_size) byte length, -1 = unused id */
    /* trie */
    int *node_tok;   /* (nnodes) id ending at this node or -1 */
    int nnodes, node_cap;
    uint64_t *ekey;  /* (ecap) edge keys, 0 = empty */
    int *eval;       /* (ecap) child node */
    size_t ecap, nedges;
    int ebits;
};

/* ---- trie edges -------------------------------------------------------------------------------- */

static inline size_t tokenizer_slot(uint64_t key, int bits) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> (64 - bits));
}

static inline int tokenizer_child(const Tokenizer *t, int node, unsigned char b) {
    uint64_t key = (((uint64_t)node << 8) | b) + 1;
    size_t mask = t->ecap - 1, i = tokenizer_slot(key, t->ebits);
    for (;;) {
        uint64_t k = t->ekey[i];
        if (k == key) return t->eval[i];
        if (k == 0) return -1;
        i = (i + 1) & mask;
    }
}

static void tokenizer_edge_put(Tokenizer *t, uint64_t key, int child) {
    size_t mask = t->ecap - 1, i = tokenizer_slot(key, t->ebits);
    while (t->ekey[i] != 0) i = (i + 1) & mask;
    t->ekey[i] = key;
    t->eval[i] = child;
}

static void tokenizer_edges_grow(Tokenizer *t) {
    uint64_t *ok = t->ekey;
    int *ov = t->eval;
    size_t ocap = t->ecap;
    t->ebits++;
    t->ecap = (size_t)1 << t->ebits;
    t->ekey = xcalloc(t->ecap, sizeof *t->ekey);
    t->eval = xmalloc(t->ecap * sizeof *t->eval);
    for (size_t i = 0; i < ocap; i++)
        if (ok[i]) tokenizer_edge_put(t, ok[i], ov[i]);
    free(ok);
    free(ov);
}

static int tokenizer_new_node(Tokenizer *t) {
    if (t->nnodes == t->node_cap) {
        t->node_cap *= 2;
        int *nt = xmalloc((size_t)t->node_cap * sizeof *nt);
        memcpy(nt, t->node_tok, (size_t)t->nnodes * sizeof *nt);
        free(t->node_tok);
        t->node_tok = nt;
    }
    t->node_tok[t->nnodes] = -1;
    return t->nnodes++;
}

/* Insert token `id` with bytes b[0..n); returns the id already holding these bytes, or -1. */
static int tokenizer_trie_insert(Tokenizer *t, const unsigned char *b, size_t n, int id) {
    int node = 0;
    for (size_t i = 0; i < n; i++) {
        int c = tokenizer_child(t, node, b[i]);
        if (c < 0) {
            if (2 * (t->nedges + 1) > t->ecap) tokenizer_edges_grow(t);
            c = tokenizer_new_node(t);
            tokenizer_edge_put(t, (((uint64_t)node << 8) | b[i]) + 1, c);
            t->nedges++;
        }
        node = c;
    }
    if (t->node_tok[node] >= 0) return t->node_tok[node];
    t->node_tok[node] = id;
    return -1;
}

/* ---- vocabulary line parser (Python str / bytes literals) --------------------------------------- */

static int tokenizer_hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Append code point cp as UTF-8; -1 for surrogates / out of range (Python's UTF-8 encoder rejects). */
static int tokenizer_put_utf8(unsigned char *out, size_t *n, unsigned long cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) return -1;
    if (cp < 0x80) {
        out[(*n)++] = (unsigned char)cp;
    } else if (cp < 0x800) {
        out[(*n)++] = (unsigned char)(0xC0 | (cp >> 6));
        out[(*n)++] = (unsigned char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out[(*n)++] = (unsigned char)(0xE0 | (cp >> 12));
        out[(*n)++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*n)++] = (unsigned char)(0x80 | (cp & 0x3F));
    } else if (cp <= 0x10FFFF) {
        out[(*n)++] = (unsigned char)(0xF0 | (cp >> 18));
        out[(*n)++] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        out[(*n)++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*n)++] = (unsigned char)(0x80 | (cp & 0x3F));
    } else {
        return -1;
    }
    return 0;
}

/* Parse the literal starting at s[*pos] (line of length n) into out (capacity >= 4*n); on success
 * *pos is just past the closing quote. Returns 0 or err_set with FILE:LINE. */
static int tokenizer_parse_literal(const char *s, size_t n, size_t *pos, unsigned char *out,
                                   size_t *outn, const char *path, long lineno, Err *err) {
    size_t i = *pos;
    int is_bytes = 0;
    if (i < n && s[i] == 'b') {
        is_bytes = 1;
        i++;
    }
    if (i >= n || (s[i] != '\'' && s[i] != '"'))
        return err_set(err, "%s:%ld: expected a Python string literal ('...', \"...\" or b'...') after the id",
                       path, lineno);
    char q = s[i++];
    *outn = 0;
    for (;;) {
        if (i >= n) return err_set(err, "%s:%ld: unterminated string literal (missing closing %c)", path, lineno, q);
        unsigned char c = (unsigned char)s[i];
        if (c == (unsigned char)q) {
            i++;
            break;
        }
        if (c != '\\') {
            if (is_bytes && c >= 0x80)
                return err_set(err, "%s:%ld: non-ASCII character in a bytes literal (use \\x escapes)", path, lineno);
            out[(*outn)++] = c;
            i++;
            continue;
        }
        /* escape sequence */
        if (i + 1 >= n) return err_set(err, "%s:%ld: string literal ends with a lone backslash", path, lineno);
        char e = s[i + 1];
        i += 2;
        unsigned long v;
        switch (e) {
        case '\\': out[(*outn)++] = '\\'; break;
        case '\'': out[(*outn)++] = '\''; break;
        case '"': out[(*outn)++] = '"'; break;
        case 'a': out[(*outn)++] = 7; break;
        case 'b': out[(*outn)++] = 8; break;
        case 'f': out[(*outn)++] = 12; break;
        case 'n': out[(*outn)++] = 10; break;
        case 'r': out[(*outn)++] = 13; break;
        case 't': out[(*outn)++] = 9; break;
        case 'v': out[(*outn)++] = 11; break;
        case 'x': {
            int h1 = i < n ? tokenizer_hexval(s[i]) : -1, h0 = i + 1 < n ? tokenizer_hexval(s[i + 1]) : -1;
            if (h1 < 0 || h0 < 0)
                return err_set(err, "%s:%ld: bad \\x escape (needs exactly two hex digits)", path, lineno);
            v = (unsigned long)(h1 * 16 + h0);
            i += 2;
            if (is_bytes) out[(*outn)++] = (unsigned char)v;
            else tokenizer_put_utf8(out, outn, v);
            break;
        }
        case 'u':
        case 'U': {
            if (is_bytes) { /* not an escape in bytes literals: kept verbatim */
                out[(*outn)++] = '\\';
                out[(*outn)++] = (unsigned char)e;
                break;
            }
            int nd = e == 'u' ? 4 : 8;
            v = 0;
            for (int k = 0; k < nd; k++) {
                int h = i + k < n ? tokenizer_hexval(s[i + k]) : -1;
                if (h < 0)
                    return err_set(err, "%s:%ld: bad \\%c escape (needs exactly %d hex digits)", path, lineno, e, nd);
                v = v * 16 + (unsigned long)h;
            }
            i += (size_t)nd;
            if (tokenizer_put_utf8(out, outn, v) != 0)
                return err_set(err, "%s:%ld: \\%c escape U+%lX is a surrogate or beyond U+10FFFF (not UTF-8 encodable)",
                               path, lineno, e, v);
            break;
        }
        case 'N':
            return err_set(err, "%s:%ld: \\N{...} escapes are not supported; write the character itself", path, lineno);
        default:
            if (e >= '0' && e <= '7') { /* octal, 1-3 digits */
                v = (unsigned long)(e - '0');
                for (int k = 0; k < 2 && i < n && s[i] >= '0' && s[i] <= '7'; k++) v = v * 8 + (unsigned long)(s[i++] - '0');
                if (is_bytes) {
                    if (v > 0xFF) return err_set(err, "%s:%ld: octal escape > \\377 in a bytes literal", path, lineno);
                    out[(*outn)++] = (unsigned char)v;
                } else {
                    tokenizer_put_utf8(out, outn, v);
                }
            } else { /* unknown escape: Python keeps the backslash and the character */
                out[(*outn)++] = '\\';
                i--;
            }
        }
    }
    *pos = i;
    return 0;
}

static int tokenizer_parse_uint(const char *s, size_t n, size_t *pos, long max, long *v) {
    size_t i = *pos;
    long x = 0;
    if (i >= n || s[i] < '0' || s[i] > '9') return -1;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        x = x * 10 + (s[i] - '0');
        if (x > max) return -1;
        i++;
    }
    *pos = i;
    *v = x;
    return 0;
}

/* ---- load / free ------------------------------------------------------------------------------- */

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    free(t->pool);
    free(t->off);
    free(t->len);
    free(t->node_tok);
    free(t->ekey);
    free(t->eval);
    free(t);
}

static void tokenizer_set_token(Tokenizer *t, int id, const unsigned char *b, size_t n) {
    if (id >= t->vocab_size) {
        int nv = t->vocab_size ? t->vocab_size : 1024;
        while (nv <= id) nv *= 2;
        long *no = xmalloc((size_t)nv * sizeof *no);
        int *nl = xmalloc((size_t)nv * sizeof *nl);
        if (t->vocab_size) {
            memcpy(no, t->off, (size_t)t->vocab_size * sizeof *no);
            memcpy(nl, t->len, (size_t)t->vocab_size * sizeof *nl);
        }
        for (int k = t->vocab_size; k < nv; k++) nl[k] = -1, no[k] = 0;
        free(t->off);
        free(t->len);
        t->off = no;
        t->len = nl;
        t->vocab_size = nv; /* capacity for now; trimmed to max id + 1 at the end */
    }
    while (t->pool_len + n > t->pool_cap) {
        t->pool_cap = t->pool_cap ? 2 * t->pool_cap : 1 << 16;
        unsigned char *np = xmalloc(t->pool_cap);
        if (t->pool_len) memcpy(np, t->pool, t->pool_len);
        free(t->pool);
        t->pool = np;
    }
    memcpy(t->pool + t->pool_len, b, n);
    t->off[id] = (long)t->pool_len;
    t->len[id] = (int)n;
    t->pool_len += n;
}

Tokenizer *tokenizer_load(const char *path, Err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        err_set(err, "cannot open tokenizer vocabulary '%s': %s (run `make data`, or get %s from BlinkDL/RWKV-LM)",
                path, strerror(errno), "rwkv_vocab_v20230424.txt");
        return NULL;
    }
    Tokenizer *t = xcalloc(1, sizeof *t);
    t->node_cap = 1 << 16;
    t->node_tok = xmalloc((size_t)t->node_cap * sizeof *t->node_tok);
    t->ebits = 16;
    t->ecap = (size_t)1 << t->ebits;
    t->ekey = xcalloc(t->ecap, sizeof *t->ekey);
    t->eval = xmalloc(t->ecap * sizeof *t->eval);
    tokenizer_new_node(t); /* root = node 0 */

    char *line = NULL;
    size_t cap = 0, bcap = 0;
    unsigned char *buf = NULL;
    ssize_t got;
    long lineno = 0;
    int max_id = 0, fail = 0;
    while ((got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t n = (size_t)got;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        if (n == 0) continue; /* blank line */
        if (memchr(line, '\0', n)) {
            fail = err_set(err, "%s:%ld: NUL byte in the line", path, lineno);
            break;
        }
        if (4 * n + 8 > bcap) {
            free(buf);
            bcap = 4 * n + 8;
            buf = xmalloc(bcap);
        }
        size_t pos = 0, blen = 0;
        long id, want;
        if (tokenizer_parse_uint(line, n, &pos, TOKENIZER_MAX_ID, &id) != 0 || pos >= n || line[pos] != ' ') {
            fail = err_set(err, "%s:%ld: expected `ID LITERAL BYTE_LENGTH` with a decimal id in 1..%d followed by a space",
                           path, lineno, TOKENIZER_MAX_ID);
            break;
        }
        pos++;
        if (id == 0) {
            fail = err_set(err, "%s:%ld: id 0 is reserved for end-of-text and must not appear in the file", path, lineno);
            break;
        }
        if (tokenizer_parse_literal(line, n, &pos, buf, &blen, path, lineno, err) != 0) {
            fail = -1;
            break;
        }
        if (pos >= n || line[pos] != ' ') {
            fail = err_set(err, "%s:%ld: expected a space and the byte length after the literal", path, lineno);
            break;
        }
        pos++;
        if (tokenizer_parse_uint(line, n, &pos, TOKENIZER_MAX_TOKEN, &want) != 0 || pos != n) {
            fail = err_set(err, "%s:%ld: expected the byte length (a decimal number <= %d) to end the line", path,
                           lineno, TOKENIZER_MAX_TOKEN);
            break;
        }
        if ((long)blen != want) {
            fail = err_set(err, "%s:%ld: literal decodes to %zu bytes but the line says %ld", path, lineno, blen, want);
            break;
        }
        if (blen == 0) {
            fail = err_set(err, "%s:%ld: empty token", path, lineno);
            break;
        }
        if (id < t->vocab_size && t->len[id] >= 0) {
            fail = err_set(err, "%s:%ld: duplicate id %ld", path, lineno, id);
            break;
        }
        int prev = tokenizer_trie_insert(t, buf, blen, (int)id);
        if (prev >= 0) {
            fail = err_set(err, "%s:%ld: id %ld has the same bytes as id %d", path, lineno, id, prev);
            break;
        }
        tokenizer_set_token(t, (int)id, buf, blen);
        t->ntokens++;
        if (id > max_id) max_id = (int)id;
    }
    if (!fail && ferror(f)) fail = err_set(err, "%s: read error: %s", path, strerror(errno));
    if (!fail && t->ntokens == 0) fail = err_set(err, "%s: no tokens in the vocabulary file", path);
    free(line);
    free(buf);
    fclose(f);
    if (fail) {
        tokenizer_free(t);
        return NULL;
    }
    t->vocab_size = max_id + 1;
    return t;
}

/* ---- encode / decode ----------------------------------------------------------------------------- */

int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int **ids, size_t *n, Err *err) {
    const unsigned char *s = (const unsigned char *)text;
    int *out = xmalloc((len ? len : 1) * sizeof *out);
    size_t m = 0, i = 0;
    while (i < len) {
        int node = 0, best = -1;
        size_t best_len = 0;
        for (size_t j = i; j < len; j++) {
            node = tokenizer_child(t, node, s[j]);
            if (node < 0) break;
            if (t->node_tok[node] >= 0) {
                best = t->node_tok[node];
                best_len = j - i + 1;
            }
        }
        if (best < 0) {
            free(out);
            return err_set(err, "tokenizer: byte 0x%02x at offset %zu has no token in the vocabulary", s[i], i);
        }
        out[m++] = best;
        i += best_len;
    }
    *ids = out;
    *n = m;
    return 0;
}

char *tokenizer_decode(const Tokenizer *t, const int *ids, size_t n, size_t *len, Err *err) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        int id = ids[i];
        if (id == TOKENIZER_EOT) continue;
        if (id < 0 || id >= t->vocab_size || t->len[id] < 0) {
            err_set(err, "tokenizer: cannot decode id %d at position %zu: not in the vocabulary (size %d)", id, i,
                    t->vocab_size);
            return NULL;
        }
        total += (size_t)t->len[id];
    }
    char *out = xmalloc(total + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int id = ids[i];
        if (id == TOKENIZER_EOT) continue;
        memcpy(out + k, t->pool + t->off[id], (size_t)t->len[id]);
        k += (size_t)t->len[id];
    }
    out[k] = '\0';
    if (len) *len = k;
    return out;
}

int tokenizer_vocab_size(const Tokenizer *t) { return t->vocab_size; }
int tokenizer_n_tokens(const Tokenizer *t) { return t->ntokens; }

const unsigned char *tokenizer_token_bytes(const Tokenizer *t, int id, size_t *len) {
    if (id <= 0 || id >= t->vocab_size || t->len[id] < 0) return NULL;
    if (len) *len = (size_t)t->len[id];
    return t->pool + t->off[id];
}
