/* rwkv7_io.h -- RWKV-7 models from and to files: released .pth / .safetensors (official key names)
 * and our native ckpt.bin; model info.
 *
 * Hyper-parameters come from the tensor shapes: V, C from emb.weight [V,C]; L from the blocks present;
 * H, N from blocks.0.att.r_k [H,N]; LoRA ranks from w1 [C,Dw], a1 [C,Da], v1 [C,Dv] (layer 1), g1 [C,Dg].
 * Optional: blocks.0.ln0 (absent = no input LayerNorm), Linear biases (att.receptance/key/value/output,
 * ffn.key/value, head; present in every layer or in none), blocks.0.att.v0/v1/v2 (ignored).
 * Weights stored as bf16/f16 are converted to fp32 (exact); the file is memory-mapped and read once.
 */
#ifndef RWKV_RWKV7_IO_H
#define RWKV_RWKV7_IO_H

#include <stdio.h>

#include "rwkv7.h"
#include "tensorfile.h"

/* Any of: torch .pth zip, .safetensors, native ckpt.bin (detected from content). */
int rwkv7_load(const char *path, Rwkv7 **out, Err *err);
/* Write with official key names and shapes; format from the extension (.pth | .safetensors). */
int rwkv7_export(const Rwkv7 *m, const char *path, TfDType dtype, Err *err);
/* Architecture, shapes, parameter and state counts. */
void rwkv7_print_info(const Rwkv7 *m, const char *path, FILE *f);

#endif
