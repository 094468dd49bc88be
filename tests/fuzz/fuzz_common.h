/* fuzz_common.h -- shared body of the libFuzzer harnesses: open a buffer with tensorfile_open_mem and,
 * when it opens, convert every tensor (so ASan checks the reader's bounds promise: every element that
 * shape/stride/offset address lies inside the input). */
#ifndef RWKV_FUZZ_COMMON_H
#define RWKV_FUZZ_COMMON_H
#include <stdlib.h>
#include <string.h>

#include "tensorfile.h"

static void fuzz_open_and_touch(const uint8_t *data, size_t size) {
    TensorFile tf;
    Err err;
    if (tensorfile_open_mem(data, size, &tf, &err) != 0) {
        if (!err.msg[0] || tf.t) abort(); /* every failure must say why and leave tf empty */
        return;
    }
    for (int i = 0; i < tf.n; i++) {
        int64_t n = tf_numel(&tf.t[i]);
        if (n > (int64_t)size) abort(); /* element counts are bounded by the input size */
        float *x = malloc((size_t)(n ? n : 1) * sizeof *x);
        tf_to_f32(&tf.t[i], x);
        free(x);
        if (tensorfile_find(&tf, tf.t[i].name) != &tf.t[i]) abort(); /* names are unique */
    }
    tensorfile_close(&tf);
}
#endif
