/* statefile.h -- recurrent states of B sequences saved to and restored from a file (`generate
 * --save-state / --load-state`), for any architecture behind model.h.
 *
 * Format (version 1, little-endian, 64-bit sizes):
 *   0   magic "RWKVSTAT" (8 bytes)
 *   8   u32 version (1), u32 header bytes (128)
 *   16  char arch[32]   the architecture's name, NUL-padded ("rwkv7")
 *   48  i32 V, C, L, H, N, Nv, B, dtype (4 = float32)
 *   80  u64 state floats (model_state_numel(m, B)), u64 seed, u64 step (tokens generated so far)
 *   104 u64 FNV-1a 64 of the payload, then zeros up to 128
 *   128 payload: i32 pending[B] (each sequence's next token, sampled but not yet fed), f32 state[numel]
 * The state is the model's own layout for B sequences (model.h state_numel), the same on the CPU and the
 * GPU. Written atomically (temp file, fsync, rename): a reader never sees half a file. Reading checks the
 * magic, the version, the size, the checksum and that the model (architecture and dimensions) is the one
 * the state was saved from; every failure is an error naming the file and what is wrong.
 */
#ifndef RWKV_STATEFILE_H
#define RWKV_STATEFILE_H

#include <stdint.h>

#include "common.h"
#include "model.h"

#define STATEFILE_VERSION 1
#define STATEFILE_HEADER 128

typedef struct {
    int B;
    size_t numel;      /* state reals of all B sequences */
    uint64_t seed, step;
    int *pending;      /* (B) */
    real *state;       /* (numel), the model's layout */
} StateFile;

/* Save state (model_state_numel(m, B) reals), pending (B) and the sampling position. */
int statefile_save(const char *path, const Model *m, int B, const real *state, const int *pending, uint64_t seed,
                   uint64_t step, Err *err);
/* Load and check against m; sf's buffers are the caller's (statefile_free). */
int statefile_load(const char *path, const Model *m, StateFile *sf, Err *err);
void statefile_free(StateFile *sf);

#endif
