/* train.h -- `rwkvlab train`: one run of one config and seed, end to end.
 *
 * Writes RUN_DIR = --out DIR or results/<experiment>/seed<seed>-<YYYYmmdd-HHMMSS>/ :
 *   config.ini (resolved), run.log, run.h5 (see h5log.h), the checkpoint ckpt.bin + optim.bin +
 *   records.bin (one atomic unit, see ckpt.h), summary.json (final metrics; status completed |
 *   early_stopped | interrupted | diverged), .lock (held by the process that owns the directory).
 * SIGINT/SIGTERM: finish the current step, checkpoint, flush, exit with TRAIN_INTERRUPTED.
 * --resume RUN_DIR continues from the last complete checkpoint bit-identically (same thread count),
 * whatever moment a kill or a full disk interrupted the run: run.h5 is rebuilt from the checkpoint's
 * records, a run whose training was finished only writes its final outputs, a run without any
 * checkpoint starts from step 0. The given config must equal the run's own except train.steps and
 * train.threads. A NaN/Inf loss or gradient stops the run (TRAIN_DIVERGED) and keeps the last good
 * checkpoint.
 */
#ifndef RWKV_TRAIN_H
#define RWKV_TRAIN_H

#include "config.h"

enum { TRAIN_OK = 0, TRAIN_ERROR = 1, TRAIN_DIVERGED = 3, TRAIN_INTERRUPTED = 130 };

typedef struct {
    const char *out_dir;     /* NULL: results/<experiment>/<run-id> */
    const char *resume_dir;  /* NULL: fresh run */
    long stop_after;         /* testing aid: act as if interrupted after this step (0 = off) */
    int force_memory;        /* run even when the memory estimate exceeds what is available */
    long inject_nan_at;      /* testing aid: make the loss NaN at this step (0 = off) */
    int quiet;               /* no progress lines on stdout (the log still gets them) */
    char run_dir[4096];      /* out: the run directory used */
} TrainOpts;

/* Returns one of the TRAIN_* codes; on TRAIN_ERROR err says why. */
int train_run(RunConfig *cfg, TrainOpts *opts, Err *err);

/* Token and full-sequence accuracy of a model on (inputs, targets, mask) (n, T), evaluated in
 * sub-batches of at most max_rows tokens. */
struct Model;
void train_evaluate(struct Model *m, const int *inputs, const int *targets, const unsigned char *mask, int n,
                    int T, int K, long max_rows, double *token_acc, double *seq_acc);

#endif
