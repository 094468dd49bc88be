/* tokenizer.h -- the RWKV World tokenizer (vocabulary rwkv_vocab_v20230424.txt).
 *
 * Scope: load the vocabulary, encode UTF-8 (or any) bytes to token ids, decode ids back to bytes.
 *
 * Rules:
 *   - Vocabulary file: one token per line, `ID LITERAL BYTE_LENGTH`, where LITERAL is a Python str
 *     literal ('...' or "...", UTF-8 encoded to bytes) or bytes literal (b'...'). The decoded byte
 *     length must equal BYTE_LENGTH; ids are >= 1, unique, and no two ids share the same bytes.
 *     Any violation is an error naming FILE:LINE.
 *   - Id 0 is end-of-text: not in the file, never produced by encode; decode maps it to no bytes.
 *   - Encoding is greedy longest match over bytes: at each position the longest vocabulary entry that
 *     matches the bytes there is taken. With the real vocabulary every single byte is a token (ids
 *     1..256), so any byte string encodes and decode(encode(x)) == x.
 *   - Decoding an id outside the vocabulary (negative, >= vocab size, or an unused id) is an error.
 *
 * Implementation: a byte trie whose edges live in one open-addressing hash table keyed by
 * (node, byte); one lookup per byte walked.
 */
#ifndef RWKV_TOKENIZER_H
#define RWKV_TOKENIZER_H

#include <stddef.h>

#include "common.h"

#define TOKENIZER_EOT 0 /* end-of-text id (not in the vocabulary file) */

typedef struct Tokenizer Tokenizer;

/* Load the vocabulary file; NULL and `err` filled (with FILE:LINE for malformed lines) on failure. */
Tokenizer *tokenizer_load(const char *path, Err *err);
void tokenizer_free(Tokenizer *t);

/* Encode `len` bytes of `text` (need not be NUL-terminated or valid UTF-8). On success *ids is a new
 * xmalloc'ed array (caller frees) of *n ids and 0 is returned; nonzero + `err` when some byte has no
 * token (only possible with a vocabulary lacking single-byte tokens). */
int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int **ids, size_t *n, Err *err);

/* Decode `n` ids into a new NUL-terminated buffer (caller frees) holding *len bytes (the bytes may
 * contain NULs or invalid UTF-8). NULL + `err` for an unknown id. Id 0 (end-of-text) gives no bytes. */
char *tokenizer_decode(const Tokenizer *t, const int *ids, size_t n, size_t *len, Err *err);

/* Vocabulary size V = largest id + 1 (65530 for rwkv_vocab_v20230424). */
int tokenizer_vocab_size(const Tokenizer *t);
/* Number of tokens read from the file (65529 for the real vocabulary). */
int tokenizer_n_tokens(const Tokenizer *t);
/* Bytes of token `id` (not NUL-terminated) and their count; NULL for an unknown id or id 0. */
const unsigned char *tokenizer_token_bytes(const Tokenizer *t, int id, size_t *len);

#endif
