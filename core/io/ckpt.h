/* ckpt.h -- native checkpoints, written atomically (temp file + rename).
 *
 * ckpt.bin  (the model):   magic "RWKVLAB\x01", u32 version (2), u32 scalar bytes (4|8),
 *                          char arch[16] (model.arch), i32 ndims, ndims x {char name[16], i32 value}
 *                          (every field of the architecture's dims, biases included), i64 step,
 *                          i64 nparams, i64 config_len, config text (resolved INI), params [nparams].
 *                          Version 1 (RWKV-7 only): i32 V C L N Dw Da Dv Dg extended has_ln0 instead
 *                          of arch and named dims; still read.
 * optim.bin (resume state): magic "RWKVOPT\x01", u32 version, u32 scalar bytes, i64 step, i64 nparams,
 *                          i64 adam_t, i64 rng_bytes, rng state (gsl mt19937), m [nparams], v [nparams]
 * records.bin (run state):  magic "RWKVREC\x01", u32 version, u32 0, i64 step, i32 status, f64 last_loss,
 *                          i64 ntrain, ntrain x {i64 step, f64 loss acc lr grad_norm tokens_per_s},
 *                          i64 neval, neval x {i64 step, i64 length, f64 token_acc seq_acc}
 * All integers little-endian, offsets 64-bit. Loading checks magic, version, scalar size, sizes and
 * that the file is complete; errors say which file and what is wrong.
 *
 * The three files form ONE checkpoint, committed atomically (ckpt_save):
 *   1. optim.bin.new and records.bin.new are written completely (temp file, fsync, rename);
 *   2. ckpt.bin is replaced (temp file, fsync, rename): this rename is the commit point;
 *   3. the .new files are renamed over optim.bin and records.bin.
 * ckpt_recover, run before anything reads a run directory for --resume, finishes step 3 when a kill
 * came after the commit (a .new file with ckpt.bin's step is moved into place) and undoes step 1
 * when it came before (a .new file of another step is removed), so a kill or a full disk at any
 * moment leaves the previous complete checkpoint or the new one, never a mix.
 */
#ifndef RWKV_CKPT_H
#define RWKV_CKPT_H

#include <gsl/gsl_rng.h>

#include "common.h"
#include "h5log.h"
#include "optim.h"
#include "model.h"

#define CKPT_VERSION 1       /* optim.bin (and records.bin version 1) */
#define CKPT_STATE_VERSION 2 /* records.bin: 2 adds each /train record's wall_s and length (version 1 still read) */
#define CKPT_MODEL_VERSION 2 /* ckpt.bin */

/* Where a run stands at its checkpoint (records.bin). */
enum { RUN_TRAINING = 0, RUN_COMPLETED = 1, RUN_EARLY_STOPPED = 2 };
typedef struct {
    long step;
    int status;       /* RUN_*: training still to do, or done (then only the final outputs remain) */
    double last_loss; /* the last training loss (NaN before the first step) */
    RunRecords rec;   /* every /train and /eval record up to step */
} RunState;

int ckpt_save_model(const char *path, const Model *m, long step, const char *config_ini, Err *err);
/* Reads the header; *m_out = a new inference model of the stored architecture, dims and params;
 * *config_ini (malloc'd) may be NULL if not wanted. */
int ckpt_load_model(const char *path, Model **m_out, long *step, char **config_ini, Err *err);
int ckpt_save_optim(const char *path, const AdamW *o, const gsl_rng *rng, long step, Err *err);
/* Into an initialised AdamW of the right size and an allocated rng of the same type. */
int ckpt_load_optim(const char *path, AdamW *o, gsl_rng *rng, long *step, Err *err);

/* The whole checkpoint of a run directory (see the protocol above). */
int ckpt_save(const char *dir, const Model *m, const AdamW *o, const gsl_rng *rng, const RunState *st,
              const char *config_ini, Err *err);
/* Bring `dir` to its last complete checkpoint (finish or undo an interrupted ckpt_save) and remove
 * temp files left by killed writers. *have = 1 when dir now holds a checkpoint, 0 when none was
 * ever completed. */
int ckpt_recover(const char *dir, int *have, Err *err);
int ckpt_save_state(const char *path, const RunState *st, Err *err);
/* Fills *st (records malloc'd: records_free). */
int ckpt_load_state(const char *path, RunState *st, Err *err);

#endif
