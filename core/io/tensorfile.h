/* tensorfile.h -- named tensors from checkpoint files: PyTorch `torch.save` zips (.pth) and .safetensors.
 *
 * Scope: read a state dict (name -> tensor) without copying it, convert entries to f32, and write one.
 *  - Readers memory-map the file read-only (MAP_PRIVATE) and leave every tensor pointing into the map:
 *    a multi-GiB checkpoint is read once and held once. The format is detected from content (a zip =>
 *    .pth, otherwise safetensors), never from the file name.
 *  - Input is untrusted. Every size, offset, stride and count is checked against the file before use;
 *    any error returns -1 with an Err message that says what and where (byte offset, pickle opcode
 *    offset, tensor name). The .pth reader runs a restricted unpickler that knows only what torch.save
 *    of a state dict emits (see pth.c) and refuses every other global.
 *  - Writers take contiguous f32 arrays and store them as F32, F16 or BF16 (round to nearest even),
 *    through a temp file renamed into place.
 * Dtypes: TF_F32 (4 bytes), TF_F16 (IEEE half), TF_BF16 (upper half of an f32); all little-endian.
 */
#ifndef RWKV_TENSORFILE_H
#define RWKV_TENSORFILE_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

typedef enum { TF_F32, TF_F16, TF_BF16 } TfDType;

#define TF_MAX_NDIM 4
#define TF_NAME_MAX 160

typedef struct {
    char name[TF_NAME_MAX];
    TfDType dtype;
    int ndim;                    /* 0..4; 0 is a scalar with one element */
    int64_t shape[TF_MAX_NDIM];
    int64_t stride[TF_MAX_NDIM]; /* in elements, >= 0 */
    const void *storage;         /* start of the storage's raw little-endian bytes (inside the map) */
    int64_t offset;              /* storage_offset, in elements */
    int64_t storage_numel;       /* every element addressed by shape/stride/offset lies below this,
                                    and tf_numel <= storage_numel (so <= file size / dtype size) */
    /* private (parsers -> tf_validate): bytes the file holds for the storage; the storage's declared
       size must fit in it (checked with the tensor's name, so the message can say which one) */
    uint64_t storage_file_bytes;
} TfTensor;

typedef struct {
    int n;
    TfTensor *t;     /* n entries, in file order */
    /* private */
    void *map;       /* mmap base (NULL when opened from memory) */
    size_t map_len;
} TensorFile;

/* Open by content: a zip (starts with "PK\3\4") is read as a torch.save .pth, anything else as
 * .safetensors. On failure returns -1, fills err and leaves tf empty (tensorfile_close is still safe). */
int tensorfile_open(const char *path, TensorFile *tf, Err *err);
/* The same over a caller-owned buffer that must outlive tf (fuzzing, tests). */
int tensorfile_open_mem(const void *data, size_t len, TensorFile *tf, Err *err);
void tensorfile_close(TensorFile *tf);
const TfTensor *tensorfile_find(const TensorFile *tf, const char *name);

int64_t tf_numel(const TfTensor *t);
/* "[2,3]" ("[]" for a scalar) into buf; returns buf. */
const char *tf_shape_str(const int64_t *shape, int ndim, char *buf, size_t n);
size_t tf_dtype_size(TfDType d);
const char *tf_dtype_name(TfDType d); /* "F32", "F16", "BF16" */
/* Copy the tensor into dst (tf_numel floats, row-major), honouring stride and offset. bf16/f16 -> f32
 * is exact. */
void tf_to_f32(const TfTensor *t, float *dst);

/* Scalar conversions used by the writers (round to nearest even; NaN stays NaN, overflow -> inf). */
uint16_t tf_f32_to_bf16(float x);
uint16_t tf_f32_to_f16(float x);
float tf_bf16_to_f32(uint16_t h);
float tf_f16_to_f32(uint16_t h);

/* ---- writers: n tensors, each contiguous f32 data of the given shape, stored as dtype ---- */
typedef struct {
    const char *name;
    int ndim;
    int64_t shape[TF_MAX_NDIM];
    const float *data;
} TfOut;

/* A zip laid out like torch.save (archive = file stem): data.pkl (pickle protocol 2, OrderedDict of
 * _rebuild_tensor_v2), byteorder, data/0..n-1 aligned to 64 bytes, version; ZIP64 when needed. */
int pth_write(const char *path, const TfOut *t, int n, TfDType dtype, Err *err);
int safetensors_write(const char *path, const TfOut *t, int n, TfDType dtype, Err *err);

/* ---- internal (tensorfile.c, pth.c, safetensors.c) ---- */
int pth_parse(const uint8_t *data, size_t len, TensorFile *tf, Err *err);
int safetensors_parse(const uint8_t *data, size_t len, TensorFile *tf, Err *err);
/* Check ndim, shapes, strides and bounds of one parsed tensor. */
int tf_validate(const TfTensor *t, Err *err);
/* tf_validate every tensor and reject duplicate names. */
int tf_finish(TensorFile *tf, Err *err);
/* Writer side checks shared by both writers. */
int tf_check_outputs(const TfOut *t, int n, TfDType dtype, Err *err);
/* n contiguous floats -> n elements of dtype at dst (little-endian). */
void tf_from_f32(const float *src, int64_t n, TfDType dt, void *dst);
/* Streamed atomic write: open `path`.tmp.<pid>; tf_commit flushes, fsyncs, closes and renames it into
 * place when ok (else removes it and fills err). */
FILE *tf_tmp_open(const char *path, char *tmp, size_t tmp_len, Err *err);
int tf_commit(FILE *f, const char *tmp, const char *path, int ok, Err *err);
/* Zip64 is used when an offset or size reaches this (default 0xFFFFFFFF); tests lower it. */
extern int64_t tf_zip64_limit;

#endif
