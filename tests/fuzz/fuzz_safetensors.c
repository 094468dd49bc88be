/* fuzz_safetensors.c -- libFuzzer harness for the .safetensors reader (header length, JSON header,
 * offsets). The input is the whole file. Build and run: see tests/fuzz/README.md. */
#include <stdint.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_open_and_touch(data, size);
    return 0;
}
