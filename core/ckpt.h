/* ckpt.h -- native checkpoints, written atomically (temp file + rename).
 *
 * ckpt.bin  (the model):   magic "RWKVLAB\x01", u32 version, u32 scalar bytes (4|8),
 *                          i32 V C L N Dw Da Dv Dg extended has_ln0, i64 step, i64 nparams,
 *                          i64 config_len, config text (resolved INI), params [nparams]
 * optim.bin (resume state): magic "RWKVOPT\x01", u32 version, u32 scalar bytes, i64 step, i64 nparams,
 *                          i64 adam_t, i64 rng_bytes, rng state (gsl mt19937), m [nparams], v [nparams]
 * All integers little-endian, offsets 64-bit. Loading checks magic, version, scalar size, sizes and
 * that the file is complete; errors say which file and what is wrong.
 */
#ifndef RWKV_CKPT_H
#define RWKV_CKPT_H

#include <gsl/gsl_rng.h>

#include "common.h"
#include "optim.h"
#include "rwkv7.h"

#define CKPT_VERSION 1

int ckpt_save_model(const char *path, const Rwkv7 *m, long step, const char *config_ini, Err *err);
/* Reads the header; *m_out = a new model with the stored dims and params; *config_ini (malloc'd) may be
 * NULL if not wanted. */
int ckpt_load_model(const char *path, Rwkv7 **m_out, long *step, char **config_ini, Err *err);
int ckpt_save_optim(const char *path, const AdamW *o, const gsl_rng *rng, long step, Err *err);
/* Into an initialised AdamW of the right size and an allocated rng of the same type. */
int ckpt_load_optim(const char *path, AdamW *o, gsl_rng *rng, long *step, Err *err);

#endif
