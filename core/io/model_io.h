/* model_io.h -- models of any architecture from and to files: released .pth / .safetensors (official key
 * names) and our native ckpt.bin (ckpt.h).
 *
 * Loading a .pth / .safetensors: the architecture is the first in the registry whose `recognise` accepts
 * the file's keys; its dims come from the tensor shapes (arch->dims_from_tensors); then every tensor of the
 * file is accounted for:
 *  - every tensor that a model of those dims needs must be present with its shape ([1,1,C] vectors may be
 *    stored as [C]), else an error names the file and the (first) missing or misshapen key;
 *  - a tensor the model does not use is an error naming it, unless allow_unknown (then a warning lists
 *    them); keys the architecture lists as known-unused (arch->ignored_tensors) are skipped;
 *  - before allocating, the memory the load needs (parameters as `real` + the largest storage's mapped
 *    pages) is checked against what is available (mem.h): refused with a message, unless force_memory;
 *  - views of one storage are converted together and the storage's pages released once, after its last
 *    tensor (stats->storage_reads counts storage passes: one per distinct storage).
 * Weights stored as bf16/f16 are converted to fp32 (exact); the file is memory-mapped and read once.
 */
#ifndef RWKV_MODEL_IO_H
#define RWKV_MODEL_IO_H

#include "model.h"
#include "tensorfile.h"

typedef struct {
    int storages;        /* distinct storages the model's tensors view */
    int storage_reads;   /* passes over storages while converting (== storages) */
    size_t need_bytes;   /* the memory estimate checked before allocating */
} ModelLoadStats;
typedef struct {
    int allow_unknown;       /* CLI: --allow-unknown-tensors */
    int force_memory;        /* CLI: --force-memory */
    ModelLoadStats *stats;   /* may be NULL */
} ModelLoadOpts;
/* Defaults from the environment: RWKVLAB_ALLOW_UNKNOWN_TENSORS=1, RWKVLAB_FORCE_MEMORY=1 (else 0). */
void model_load_opts_default(ModelLoadOpts *o);
/* Any of: torch .pth zip, .safetensors, native ckpt.bin (detected from content); an inference model (no
 * gradients). opts NULL = defaults. */
int model_load_with(const char *path, const ModelLoadOpts *opts, Model **out, Err *err);
int model_load(const char *path, Model **out, Err *err); /* model_load_with(path, NULL, ...) */
/* Write with official key names and shapes; format from the extension (.pth | .safetensors). */
int model_export(const Model *m, const char *path, TfDType dtype, Err *err);
/* Layer index K of a key "blocks.K.<rest>" (K decimal, no sign or leading zero), or -1. */
long model_key_layer(const char *name);

#endif
