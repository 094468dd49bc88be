/* rwkv7_io.h -- RWKV-7 models from and to files: released .pth / .safetensors (official key names)
 * and our native ckpt.bin; model info.
 *
 * Hyper-parameters come from the tensor shapes: V, C from emb.weight [V,C]; L = max K + 1 over blocks.K.*;
 * H, N from blocks.0.att.r_k [H,N]; LoRA ranks from w1 [C,Dw], a1 [C,Da], v1 [C,Dv] (layer 1), g1 [C,Dg].
 * Optional: blocks.0.ln0 (absent = no input LayerNorm), Linear biases (att.receptance/key/value/output,
 * ffn.key/value, head; present in every layer or in none), blocks.0.att.v0/v1/v2 (ignored). An absent
 * LoRA factor takes the default rank and is reported as missing.
 * Weights stored as bf16/f16 are converted to fp32 (exact); the file is memory-mapped and read once.
 */
#ifndef RWKV_RWKV7_IO_H
#define RWKV_RWKV7_IO_H

#include <stdio.h>

#include "rwkv7.h"
#include "tensorfile.h"

/* Loading a .pth / .safetensors accounts for every tensor of the file:
 *  - L = max K + 1 over all "blocks.K." keys; every tensor that a model of the inferred shape needs must be
 *    present with its shape, else an error names the file and the (first) missing or misshapen key;
 *  - a tensor the model does not use is an error naming it, unless allow_unknown (then a warning lists
 *    them); the unused layer-0 v0/v1/v2 of the official files are known and skipped;
 *  - before allocating, the memory the load needs (parameters as `real` + the largest storage's mapped
 *    pages) is checked against what is available (mem.h): refused with a message, unless force_memory;
 *  - views of one storage are converted together and the storage's pages released once, after its last
 *    tensor (stats->storage_reads counts storage passes: one per distinct storage). */
typedef struct {
    int storages;        /* distinct storages the model's tensors view */
    int storage_reads;   /* passes over storages while converting (== storages) */
    size_t need_bytes;   /* the memory estimate checked before allocating */
} Rwkv7LoadStats;
typedef struct {
    int allow_unknown;       /* CLI: --allow-unknown-tensors */
    int force_memory;        /* CLI: --force-memory */
    Rwkv7LoadStats *stats;   /* may be NULL */
} Rwkv7LoadOpts;
/* Defaults from the environment: RWKVLAB_ALLOW_UNKNOWN_TENSORS=1, RWKVLAB_FORCE_MEMORY=1 (else 0). */
void rwkv7_load_opts_default(Rwkv7LoadOpts *o);
/* Any of: torch .pth zip, .safetensors, native ckpt.bin (detected from content). opts NULL = defaults. */
int rwkv7_load_with(const char *path, const Rwkv7LoadOpts *opts, Rwkv7 **out, Err *err);
int rwkv7_load(const char *path, Rwkv7 **out, Err *err); /* rwkv7_load_with(path, NULL, ...) */
/* Write with official key names and shapes; format from the extension (.pth | .safetensors). */
int rwkv7_export(const Rwkv7 *m, const char *path, TfDType dtype, Err *err);
/* Architecture, shapes, parameter and state counts. */
void rwkv7_print_info(const Rwkv7 *m, const char *path, FILE *f);

#endif
