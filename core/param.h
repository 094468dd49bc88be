/* param.h -- one entry of a model's parameter table: the official checkpoint key, its shape and where
 * it lives in the flat params/grads buffers. Every architecture builds one table with one layout walk;
 * the optimizer, checkpoints, exporters and tests read only the table. */
#ifndef RWKV_PARAM_H
#define RWKV_PARAM_H

#include <stddef.h>

typedef struct {
    char name[64];
    int ndim;
    int shape[3];               /* checkpoint shape, e.g. [1,1,C] for the mixes */
    size_t offset, numel;
    int decay;                  /* AdamW weight decay applies (2-D .weight matrices) */
    double lr_mult;             /* 2 for w0 (optional), else 1 */
} ParamTensor;

#endif
