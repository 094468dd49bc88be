/* test_tokenizer.c -- the RWKV World tokenizer (tokenizer.h).
 *
 * Oracles: the encodings published in ../shared/data/README.md; a hand-written vocabulary
 * (tests/fixtures/tokenizer/escapes.txt) whose expected bytes were worked out from Python's literal
 * rules; round trips on random byte strings (invalid UTF-8 included) and on real text; malformed
 * vocabularies must fail with FILE:LINE. Tests needing the real vocabulary look in data/ and then
 * ../shared/data/, and skip when it is in neither.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "tokenizer.h"

#define VOCAB "rwkv_vocab_v20230424.txt"
#define FIX "tests/fixtures/tokenizer/"

/* data/NAME or ../shared/data/NAME into out; 0 if neither exists. */
static int find_data(const char *name, char *out, size_t cap) {
    const char *dirs[] = {"data/", "../shared/data/"};
    for (int i = 0; i < 2; i++) {
        snprintf(out, cap, "%s%s", dirs[i], name);
        if (access(out, R_OK) == 0) return 1;
    }
    return 0;
}

static Tokenizer *real_vocab(void) {
    char path[512];
    if (!find_data(VOCAB, path, sizeof path)) cr_skip_test("%s not in data/ or ../shared/data/ (run `make data`)", VOCAB);
    Err err = {{0}};
    Tokenizer *t = tokenizer_load(path, &err);
    cr_assert_not_null(t, "loading %s: %s", path, err.msg);
    return t;
}

static void expect_ids(const Tokenizer *t, const char *text, const int *want, size_t nwant) {
    int *ids;
    size_t n;
    Err err = {{0}};
    cr_assert_eq(tokenizer_encode(t, text, strlen(text), &ids, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, nwant, "\"%s\": %zu tokens, want %zu", text, n, nwant);
    for (size_t i = 0; i < n; i++) cr_assert_eq(ids[i], want[i], "\"%s\" token %zu: %d, want %d", text, i, ids[i], want[i]);
    size_t len;
    char *back = tokenizer_decode(t, ids, n, &len, &err);
    cr_assert_not_null(back, "%s", err.msg);
    cr_assert_eq(len, strlen(text));
    cr_assert_eq(memcmp(back, text, len), 0);
    free(back);
    free(ids);
}

Test(tokenizer, readme_encodings) {
    Tokenizer *t = real_vocab();
    cr_assert_eq(tokenizer_vocab_size(t), 65530);
    cr_assert_eq(tokenizer_n_tokens(t), 65529);
    expect_ids(t, "The Eiffel tower is in the city of", (int[]){6699, 304, 25740, 109, 39990, 4600, 4596, 22590, 30449, 4706}, 10);
    expect_ids(t, "\n\nUser: hi", (int[]){261, 24281, 59, 4571}, 4);
    expect_ids(t, "Hello world!", (int[]){33155, 40213, 34}, 3);
    expect_ids(t, "\xe4\xbd\xa0\xe5\xa5\xbd", (int[]){10464, 11685}, 2); /* 你好 */
    tokenizer_free(t);
}

Test(tokenizer, single_bytes_are_ids_1_to_256) {
    Tokenizer *t = real_vocab();
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        int *ids;
        size_t n;
        Err err = {{0}};
        cr_assert_eq(tokenizer_encode(t, &c, 1, &ids, &n, &err), 0);
        cr_assert(n == 1 && ids[0] == b + 1, "byte 0x%02x -> %d tokens, first %d; want id %d", b, (int)n, ids[0], b + 1);
        size_t len;
        const unsigned char *tb = tokenizer_token_bytes(t, b + 1, &len);
        cr_assert(tb && len == 1 && tb[0] == b);
        free(ids);
    }
    tokenizer_free(t);
}

static uint64_t rng_next(uint64_t *s) { /* xorshift64* */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

Test(tokenizer, roundtrip_random_bytes) {
    Tokenizer *t = real_vocab();
    uint64_t s = 0x1234567u;
    /* alphabet mixes ASCII text, UTF-8 lead/continuation bytes and arbitrary bytes */
    const char *pieces[] = {" the", "ing", "\n\n", "\xe4\xbd\xa0", "\xc3\xa9", "\xf0\x9f\x98\x80", "  ", "A", "\\"};
    char buf[600];
    int invalid_seen = 0;
    for (int iter = 0; iter < 3000; iter++) {
        size_t len = 0, target = rng_next(&s) % 400;
        while (len < target) {
            uint64_t r = rng_next(&s);
            if (r % 3 == 0) {
                buf[len++] = (char)(r >> 8); /* any byte, invalid UTF-8 likely */
                invalid_seen += ((unsigned char)(r >> 8)) >= 0x80;
            } else {
                const char *p = pieces[(r >> 8) % 9];
                size_t k = strlen(p);
                if (len + k > sizeof buf) break;
                memcpy(buf + len, p, k);
                len += k;
            }
        }
        int *ids;
        size_t n, back_len;
        Err err = {{0}};
        cr_assert_eq(tokenizer_encode(t, buf, len, &ids, &n, &err), 0, "%s", err.msg);
        cr_assert_leq(n, len);
        char *back = tokenizer_decode(t, ids, n, &back_len, &err);
        cr_assert_not_null(back, "%s", err.msg);
        cr_assert_eq(back_len, len, "iter %d: %zu bytes back, want %zu", iter, back_len, len);
        cr_assert_eq(memcmp(back, buf, len), 0, "iter %d: bytes differ after round trip", iter);
        free(back);
        free(ids);
    }
    cr_assert_gt(invalid_seen, 1000);
    tokenizer_free(t);
}

/* The whole LAMBADA file (raw JSON bytes: real English with escapes) survives encode + decode. */
Test(tokenizer, roundtrip_real_text) {
    Tokenizer *t = real_vocab();
    char path[512];
    if (!find_data("evalsets/lambada_openai_test.jsonl", path, sizeof path)) cr_skip_test("LAMBADA file not found");
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)sz);
    cr_assert_eq(fread(text, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    int *ids;
    size_t n, len;
    Err err = {{0}};
    double t0 = now_seconds();
    cr_assert_eq(tokenizer_encode(t, text, (size_t)sz, &ids, &n, &err), 0, "%s", err.msg);
    double dt = now_seconds() - t0;
    char *back = tokenizer_decode(t, ids, n, &len, &err);
    cr_assert_not_null(back, "%s", err.msg);
    cr_assert(len == (size_t)sz && memcmp(back, text, len) == 0, "LAMBADA file does not round-trip");
    cr_log_info("tokenizer: raw LAMBADA file, %ld bytes -> %zu tokens in %.3f s (%.1f MB/s)", sz, n, dt, sz / dt / 1e6);
    free(back);
    free(ids);
    free(text);
    tokenizer_free(t);
}

Test(tokenizer, decode_errors) {
    Tokenizer *t = real_vocab();
    Err err = {{0}};
    size_t len = 99;
    int bad[][2] = {{33, -1}, {33, 65530}, {33, 1 << 30}};
    for (int i = 0; i < 3; i++) {
        err.msg[0] = '\0';
        char *s = tokenizer_decode(t, bad[i], 2, &len, &err);
        cr_assert_null(s, "id %d decoded", bad[i][1]);
        cr_assert(strstr(err.msg, "cannot decode id") && strstr(err.msg, "position 1"), "message: %s", err.msg);
    }
    /* id 0 (end-of-text) decodes to nothing */
    char *s = tokenizer_decode(t, (int[]){0, 34, 0}, 3, &len, &err);
    cr_assert(s && len == 1 && s[0] == '!', "EOT handling");
    free(s);
    cr_assert_null(tokenizer_token_bytes(t, 0, &len));
    tokenizer_free(t);
}

/* ---- the hand-written vocabulary: literal parsing and greedy longest match ---------------------- */

static Tokenizer *fixture_vocab(void) {
    Err err = {{0}};
    Tokenizer *t = tokenizer_load(FIX "escapes.txt", &err);
    cr_assert_not_null(t, "%s", err.msg);
    return t;
}

static void expect_token(const Tokenizer *t, int id, const char *bytes, size_t n) {
    size_t len;
    const unsigned char *b = tokenizer_token_bytes(t, id, &len);
    cr_assert_not_null(b, "id %d missing", id);
    cr_assert_eq(len, n, "id %d: %zu bytes, want %zu", id, len, n);
    cr_assert_eq(memcmp(b, bytes, n), 0, "id %d: bytes differ", id);
}

Test(tokenizer, python_literals) {
    Tokenizer *t = fixture_vocab();
    cr_assert_eq(tokenizer_vocab_size(t), 21);
    cr_assert_eq(tokenizer_n_tokens(t), 17);
    expect_token(t, 3, "\xc3\xa9", 2);     /* '\xe9' is U+00E9 -> UTF-8 */
    expect_token(t, 4, "\xe9", 1);         /* b'\xe9' is one byte */
    expect_token(t, 5, "\xe4\xbd\xa0", 3); /* '\u4f60' */
    expect_token(t, 6, "'", 1);
    expect_token(t, 7, "\\", 1);
    expect_token(t, 8, "'x", 2);
    expect_token(t, 9, "\t\n", 2);
    expect_token(t, 10, "\xe4\xbd\xa0\xe5\xa5\xbd", 6); /* raw UTF-8 in a str literal */
    expect_token(t, 11, "x\\u", 3);                    /* \u is not an escape in bytes */
    expect_token(t, 12, "A", 1);                       /* octal \101 */
    cr_assert_null(tokenizer_token_bytes(t, 17, NULL)); /* unused id */
    tokenizer_free(t);
}

Test(tokenizer, greedy_longest_match) {
    Tokenizer *t = fixture_vocab();
    /* "abcd": greedy takes "abc" then "d" (not the 2-token "a"+"bcd" alternative either way) */
    expect_ids(t, "abcd", (int[]){14, 16}, 2);
    expect_ids(t, "bcd", (int[]){15}, 1);
    expect_ids(t, "abab", (int[]){13, 13}, 2);
    expect_ids(t, "\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xbd\xa0", (int[]){10, 5}, 2);
    expect_ids(t, "", NULL, 0);
    /* a byte without a token is an error, not a crash */
    int *ids;
    size_t n;
    Err err = {{0}};
    cr_assert_neq(tokenizer_encode(t, "abz", 3, &ids, &n, &err), 0);
    cr_assert(strstr(err.msg, "0x7a") && strstr(err.msg, "offset 2"), "message: %s", err.msg);
    size_t len;
    cr_assert_null(tokenizer_decode(t, (int[]){18}, 1, &len, &err), "unused id 18 must not decode");
    tokenizer_free(t);
}

Test(tokenizer, malformed_vocab_files) {
    struct {
        const char *file, *where, *what;
    } cases[] = {
        {"bad_length.txt", "bad_length.txt:3:", "decodes to 3 bytes but the line says 2"},
        {"bad_unterminated.txt", "bad_unterminated.txt:2:", "unterminated"},
        {"bad_hex.txt", "bad_hex.txt:1:", "\\x escape"},
        {"bad_dup_id.txt", "bad_dup_id.txt:2:", "duplicate id 1"},
        {"bad_dup_bytes.txt", "bad_dup_bytes.txt:2:", "same bytes as id 1"},
        {"bad_no_id.txt", "bad_no_id.txt:1:", "decimal id"},
        {"bad_id0.txt", "bad_id0.txt:1:", "reserved"},
        {"bad_surrogate.txt", "bad_surrogate.txt:2:", "surrogate"},
        {"bad_trailing.txt", "bad_trailing.txt:1:", "byte length"},
        {"bad_bytes_nonascii.txt", "bad_bytes_nonascii.txt:4:", "non-ASCII"},
        {"empty.txt", "empty.txt", "no tokens"},
        {"does_not_exist.txt", "does_not_exist.txt", "cannot open"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, FIX "%s", cases[i].file);
        Err err = {{0}};
        Tokenizer *t = tokenizer_load(path, &err);
        cr_assert_null(t, "%s loaded", cases[i].file);
        cr_assert(strstr(err.msg, cases[i].where) && strstr(err.msg, cases[i].what), "%s: message '%s' lacks '%s' / '%s'",
                  cases[i].file, err.msg, cases[i].where, cases[i].what);
        cr_log_info("%s -> %s", cases[i].file, err.msg);
    }
}
