/* h5log.h -- the run.h5 writer (schema in README "run.h5 layout").
 *
 *   /  attributes: config (resolved INI text), code_version, seed, arch, param_count, state_size,
 *                  eig_range, scalar ("f32"/"f64"), task (its description), task_chance (NaN: unknown)
 *   /train/{step,loss,acc,lr,grad_norm,tokens_per_s,wall_s,length}   1-D extendible, chunked, appended +
 *                                                       flushed
 *   /eval/{step,length,token_acc,seq_acc,scaled_acc}    1-D extendible, appended + flushed; scaled_acc =
 *                                                       scaled_accuracy(token_acc, task_chance), NaN when
 *                                                       the chance is unknown
 *   /trajectories/probe<p>/{tokens,targets,pred} [T] int32
 *   /trajectories/probe<p>/layer<l>/{state [T,H,Nv,N], state_norm [T,H], eig_real [T,H,N], eig_imag
 *                                    [T,H,N], the architecture's own per-step quantities (RWKV-7: decay
 *                                    [T,C], a [T,C])}  float32, gzip, chunked
 * Every dataset carries string attributes `meaning`, `units` and `shape` (a legend of its dimensions);
 * every group a `meaning`; the root `schema_version` (H5LOG_SCHEMA_VERSION). Not SWMR: readers open the
 * file with HDF5 file locking off (h5py.File(path, "r", locking=False)) while a run appends.
 * Every function returns 0 or -1 with err filled; HDF5's own error stack printing is silenced.
 */
#ifndef RWKV_H5LOG_H
#define RWKV_H5LOG_H

#include "common.h"
#include "model.h"

typedef struct H5Log H5Log;

/* 1: the first layout; 2: /train/wall_s and /train/length, attributes on every dataset and group, probe
 * groups marked with the step and run status they were traced at. */
#define H5LOG_SCHEMA_VERSION 2

typedef struct {
    const char *config_ini;
    const char *code_version;
    long seed;
    const char *arch;
    long param_count;
    long state_size;         /* matrix state L*H*Nk*Nv per sequence */
    long state_size_total;   /* all of the recurrent state (plus token-shift / conv vectors) */
    const char *eig_range;
    const char *task;        /* task_describe (NULL: "") */
    double task_chance;      /* uniform-guess accuracy at a scored position; outside (0, 1): unknown */
} H5RunAttrs;

/* Scaled accuracy (acc - chance) / (1 - chance): 0 = uniform guessing, 1 = perfect (Grazzi et al.);
 * NaN when chance is not in (0, 1) (unknown). Applied to the token accuracy (per scored position): for a
 * task with one scored position per sequence it is the scaled sequence accuracy too. */
double scaled_accuracy(double acc, double chance);

/* One /train and one /eval record; RunRecords is every record of a run up to its checkpoint (kept in
 * the checkpoint's records.bin, see ckpt.h), from which run.h5 is rebuilt on --resume. */
typedef struct {
    long step;
    double loss, acc, lr, grad_norm, tokens_per_s;
    double wall_s; /* wall-clock seconds of training since the run began, summed over resumed sessions;
                    * NaN: unknown (a record kept by an older checkpoint) */
    long length;   /* sequence length of the step's training batch (its longest row); <= 0: unknown */
} TrainRec;
typedef struct {
    long step;
    int length;
    double token_acc, seq_acc;
} EvalRec;
typedef struct {
    TrainRec *train;
    long ntrain, cap_train;
    EvalRec *eval;
    long neval, cap_eval;
} RunRecords;
void records_add_train(RunRecords *r, const TrainRec *t);
void records_add_eval(RunRecords *r, const EvalRec *e);
void records_free(RunRecords *r);

/* Create a new run.h5 (fails if it exists). */
H5Log *h5log_create(const char *path, const H5RunAttrs *attrs, Err *err);
/* Write a complete run.h5 holding `rec` (may be NULL) into a temp file and rename it over `path`
 * (replacing a torn or older file); returns it open for appending. A kill at any moment leaves
 * either the old file or the new complete one. */
H5Log *h5log_rebuild(const char *path, const H5RunAttrs *attrs, const RunRecords *rec, Err *err);
int h5log_train(H5Log *h, const TrainRec *t, Err *err);
int h5log_eval(H5Log *h, long step, int length, double token_acc, double seq_acc, Err *err);

/* One probe's full trajectory (B = 1), as model m traced it (ModelTrace, model.h), written under
 * /trajectories/probe<p>/: tokens, targets, pred [T]; per layer l: state [T,H,Nv,N] (row = value, column
 * = key), state_norm [T,H] (Frobenius, per head), eig_real / eig_imag [T,H,N] (eigenvalues of each step's
 * transition M = diag(w) + alpha beta^T per head, gsl_eigen_nonsymm, sorted by descending real part),
 * and the architecture's own quantities (arch->trace: [T,C] or [T,H]). */
/* The step and run status ("final", "interrupted", "trace") that the probe groups written from now on are
 * marked with (attributes `step`, `run_status`); default -1 and "final". `status` must outlive the log. */
void h5log_set_trace_point(H5Log *h, long step, const char *status);
int h5log_trajectory(H5Log *h, int probe, const Model *m, int T, const int *tokens, const int *targets,
                     const int *pred, const ModelTrace *tr, Err *err);
int h5log_flush(H5Log *h, Err *err);
/* Flush and close, checking every step (a full disk shows up here): 0 or -1 with err. Frees h. */
int h5log_finish(H5Log *h, Err *err);
/* Best-effort close on error paths (errors ignored). Frees h. */
void h5log_close(H5Log *h);

/* Eigenvalues of M = diag(w) + alpha beta^T, N x N (alpha and beta both NULL: diagonal; exposed for tests).
 * re, im: (N) sorted by descending real part then imaginary part. Returns 0 or -1. */
int transition_eigenvalues(int N, const float *w, const float *alpha, const float *beta, double *re, double *im);

#endif
