/* fuzz_pth.c -- libFuzzer harness for the .pth reader (zip + restricted unpickler).
 *
 * Input byte 0 picks the mode: even -> the rest is a whole file (zip parsing, ZIP64, local headers);
 * odd -> the rest is data.pkl, wrapped in a valid stored zip with storages data/0..3 (64 bytes each),
 * so mutations reach the unpickler without first having to keep a zip intact.
 * Build and run: see tests/fuzz/README.md.
 */
#include <stdint.h>

#include "fuzz_common.h"

static size_t put(uint8_t *o, size_t at, uint64_t x, int k) {
    for (int i = 0; i < k; i++) o[at + i] = (uint8_t)(x >> (8 * i));
    return at + (size_t)k;
}

/* stored zip: names[i] with data[i]; returns malloc'ed buffer, length in *n */
static uint8_t *wrap_zip(const uint8_t *pkl, size_t pn, size_t *n) {
    static const char *names[5] = {"a/data.pkl", "a/data/0", "a/data/1", "a/data/2", "a/data/3"};
    static uint8_t store[64];
    for (int i = 0; i < 64; i++) store[i] = (uint8_t)(i * 37);
    size_t cap = pn + 2048, at = 0, cd_at;
    uint8_t *o = calloc(cap, 1);
    uint64_t offs[5];
    for (int i = 0; i < 5; i++) {
        const uint8_t *d = i ? store : pkl;
        size_t dn = i ? 64 : pn, nl = strlen(names[i]);
        offs[i] = at;
        at = put(o, at, 0x04034b50u, 4), at = put(o, at, 20, 2), at = put(o, at, 0, 4), at = put(o, at, 0, 4);
        at = put(o, at, 0, 4), at = put(o, at, dn, 4), at = put(o, at, dn, 4), at = put(o, at, nl, 2);
        at = put(o, at, 0, 2);
        memcpy(o + at, names[i], nl), at += nl;
        if (dn) memcpy(o + at, d, dn);
        at += dn;
    }
    cd_at = at;
    for (int i = 0; i < 5; i++) {
        size_t dn = i ? 64 : pn, nl = strlen(names[i]);
        at = put(o, at, 0x02014b50u, 4), at = put(o, at, 20, 2), at = put(o, at, 20, 2), at = put(o, at, 0, 4);
        at = put(o, at, 0, 4), at = put(o, at, 0, 4), at = put(o, at, dn, 4), at = put(o, at, dn, 4);
        at = put(o, at, nl, 2), at = put(o, at, 0, 2), at = put(o, at, 0, 2), at = put(o, at, 0, 2);
        at = put(o, at, 0, 2), at = put(o, at, 0, 4), at = put(o, at, offs[i], 4);
        memcpy(o + at, names[i], nl), at += nl;
    }
    size_t cd_n = at - cd_at;
    at = put(o, at, 0x06054b50u, 4), at = put(o, at, 0, 4), at = put(o, at, 5, 2), at = put(o, at, 5, 2);
    at = put(o, at, cd_n, 4), at = put(o, at, cd_at, 4), at = put(o, at, 0, 2);
    *n = at;
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (data[0] % 2 == 0) {
        fuzz_open_and_touch(data + 1, size - 1);
    } else {
        size_t n;
        uint8_t *z = wrap_zip(data + 1, size - 1, &n);
        fuzz_open_and_touch(z, n);
        free(z);
    }
    return 0;
}
