/* model.h -- the one interface every architecture sits behind (RWKV-7, RWKV-6, DeltaNet, Gated DeltaNet).
 *
 * Every architecture shares the skeleton of ../shared/spec/baselines.md (embedding, optional ln0,
 * L blocks of x += Mixer(LN(x)); x += FFN(LN(x)), final LN, head) and differs in its mixer. Callers
 * (train, checkpoints, evaltask, trace, export, lmeval, bench) reach a model only through this file:
 *
 *   Model        the common head: the architecture's table of functions, its own struct (`self`), the
 *                dimensions every model has, the parameter table and the flat params/grads buffers
 *                (shared by the optimizer, checkpoints and tests);
 *   ModelArch    one per architecture, found by its `model.arch` name in the registry (models.c);
 *   model_loss   the masked cross-entropy (+ optional L2Wrap), shared by every architecture: it keeps the
 *                gradient of the logits, which model_backward hands to the architecture's backward.
 *
 * An architecture's dimensions are its own struct of ints (ranks, flags, biases); `dim_fields` names
 * every field, so checkpoints store and `info` prints them all without knowing the architecture.
 * Adding an architecture: one file defining a `const ModelArch model_<name>`, one line in models.c.
 */
#ifndef RWKV_MODEL_H
#define RWKV_MODEL_H

#include <gsl/gsl_rng.h>
#include <stdio.h>

#include "common.h"
#include "config.h"
#include "param.h"
#include "tensorfile.h"

typedef struct ModelArch ModelArch;

#define MODEL_MAX_DIMS 32  /* int fields of an architecture's dims struct */
#define MODEL_MAX_TRACE 4  /* per-step quantities an architecture records in trajectories */

/* Optional per-token capture for trajectories (float arrays, layer-major: (L,B,T,...)). */
typedef struct {
    float *state;               /* (L,B,T,H,Nv,Nk) matrix state after each token: row = value, column = key */
    /* The state transition of each step and head, S_t = S_{t-1} M_t + ..., M_t = diag(w) + alpha beta^T
     * (alpha, beta NULL for a diagonal transition): its eigenvalues are what state tracking needs. */
    float *w, *alpha, *beta;    /* (L,B,T,C) each */
    float *q[MODEL_MAX_TRACE];  /* (L,B,T,width_i): the architecture's own quantities, named in arch->trace */
} ModelTrace;

/* Per-step quantity an architecture records (trajectories in run.h5 and `trace`). */
typedef struct {
    const char *name;           /* dataset name under layer<l>/ */
    int per_head;               /* 1: H values per step, 0: C values per step */
    const char *doc;            /* one line for analysis/README.md and `info` */
} TraceQuantity;

/* How a forward runs. Zero-initialised = training defaults (fresh state, every logit). */
typedef struct {
    int K;                      /* checkpoint interval of the recurrence for the backward (0 = 16) */
    const real *state_in;       /* (state_numel(B)) or NULL = zero state */
    real *state_out;            /* (state_numel(B)) or NULL = not wanted; may alias state_in */
    const ModelTrace *trace;    /* or NULL */
    int head_last_only;         /* inference: final LN + head only at each sequence's last token (the other
                                   logits rows are left unset; no backward after such a forward) */
    const unsigned char *head_rows; /* training (B*T flags) or NULL: the head only at the flagged rows, which
                                   must be model_loss's mask (the rows it counts); the logits hold them
                                   packed. Not with L2Wrap (it reads every row). Must live until the
                                   backward. Same loss and gradients as every row, less work. */
} ModelFwd;

typedef struct Model {
    const ModelArch *arch;
    void *self;                 /* the architecture's own model struct */
    void *dims;                 /* the architecture's own dims struct (arch->dims_size bytes) */
    int V, C, L, H, N, Nv;      /* vocabulary, width, layers, heads, key / value head size */
    const ParamTensor *tensors; /* the parameter table (official key names) */
    int ntensors;
    size_t nparams;
    real *params, *grads;       /* (nparams) each; grads NULL for an inference model */
    int l2wrap;                 /* training option: official L2Wrap on the logits (model_backward) */
    /* shared loss state of the last forward */
    int B, T;
    const real *logits;         /* (B,T,V), owned by the architecture */
    real *probs, *dlogits;      /* (B,T,V) each, owned here */
    int *targets;
    unsigned char *mask;
    long ncount;
    size_t loss_cap;
    const unsigned char *head_rows; /* the last forward's ModelFwd.head_rows (NULL: every row) */
    long nhead;                 /* rows of the loss: B*T, or the flagged rows with head_rows */
} Model;

/* An int field of an architecture's dims struct. */
typedef struct {
    const char *name;
    size_t offset;
    int optional;               /* 1: a checkpoint written before the field existed may lack it; it reads 0 */
} DimField;

struct ModelArch {
    const char *name;           /* model.arch value and checkpoint tag: "rwkv7" */
    const char *title;          /* for people: "RWKV-7 (x070)" */
    size_t dims_size;
    const DimField *dim_fields; /* every field of the dims struct (checkpoints store them all) */
    int ndims;
    /* dims from a validated config; V = the task's vocabulary */
    int (*dims_from_config)(void *dims, const RunConfig *c, int V, Err *err);
    /* released-format files (.pth/.safetensors): does this file hold this architecture (by its keys)?
     * Then its dims from the tensor shapes. */
    int (*recognise)(const TensorFile *tf);
    int (*dims_from_tensors)(void *dims, const TensorFile *tf, const char *path, Err *err); /* errors name path */
    /* names a file of this architecture may hold that the model does not use (NULL-terminated; '*' at the
     * end matches any suffix, "blocks.0.att.v0"); loading skips them and says so */
    const char *const *ignored_tensors;
    /* the parameter table of a model of these dims, without allocating it (xcalloc'ed; caller frees) */
    ParamTensor *(*tensor_table)(const void *dims, int *ntensors, size_t *nparams);
    /* bytes of the activation buffers a forward of (B,T,K) needs (memory estimates; = act_bytes after it) */
    size_t (*act_bytes_for)(const void *dims, int B, int T, int K, int with_backward);
    /* a warning for `export` when the official code would not reproduce the model (or NULL) */
    const char *(*export_note)(const Model *m);
    /* checks dims from a file (a checkpoint header) before create, which trusts them */
    int (*validate_dims)(const void *dims, Err *err);
    /* fills the common fields of the Model it returns: arch, self, dims, V..Nv, tensor table, buffers */
    Model *(*create)(const void *dims, int with_grads);
    void (*free)(Model *m);     /* the architecture's part (model_free does the rest) */
    void (*init)(Model *m, gsl_rng *rng, const RunConfig *c); /* official init; c may be NULL */
    /* tokens (B,T) -> logits (B,T,V), valid until the next forward */
    const real *(*forward)(Model *m, const int *tokens, int B, int T, const ModelFwd *f);
    /* grads += d loss / d params, from dlogits (B,T,V) of the last forward */
    void (*backward)(Model *m, const real *dlogits);
    size_t (*state_numel)(const Model *m, int B); /* recurrent state of B sequences, in reals */
    size_t (*matrix_state_numel)(const Model *m); /* L*H*Nk*Nv of one sequence (the part that tracks) */
    int rank_one;               /* its transition has the rank-one part (ModelTrace alpha, beta filled) */
    const TraceQuantity *trace; /* the architecture's own per-step quantities (ModelTrace.q) */
    int ntrace;
    size_t (*act_bytes)(const Model *m); /* current activation memory of the architecture's forward */
    /* forward FLOPs per token (matrix products incl. the head, plus the recurrence), for `bench`'s fraction
     * of the sgemm rate; a training step counts 3x the products plus the recurrence's backward */
    double (*fwd_flops_per_token)(const Model *m, double *matmul, double *recurrence);
};

/* ---- the registry (models.c) -------------------------------------------------------------------- */
extern const ModelArch *const model_archs[]; /* NULL-terminated */
const ModelArch *model_arch_find(const char *name);
/* "rwkv7|rwkv6|..." for messages and config validation */
const char *model_arch_names(void);

/* ---- generic operations (model.c) --------------------------------------------------------------- */
Model *model_create(const ModelArch *a, const void *dims, int with_grads);
void model_free(Model *m);
/* Called by an architecture's create: fills the common fields of m from its table and buffers. */
void model_attach(Model *m, const ModelArch *a, void *self, const void *dims, int V, int C, int L, int H, int N,
                  int Nv, const ParamTensor *tensors, int ntensors, size_t nparams, real *params, real *grads);
void model_init(Model *m, gsl_rng *rng, const RunConfig *c);
const real *model_forward(Model *m, const int *tokens, int B, int T, const ModelFwd *f);
/* Masked mean cross-entropy of the last forward (every architecture the same); fills pred (B*T, may
 * be NULL) and the correct / counted token numbers; keeps dlogits for model_backward. */
double model_loss(Model *m, const int *targets, const unsigned char *mask, int *pred, long *ncorrect, long *ncount);
/* grads += d loss / d params (call after model_loss). */
void model_backward(Model *m);
/* The same for a part of a larger batch (core/train/step.h): the loss is the mean over the whole batch's
 * ncount_all counted positions and L2Wrap is normalised by its rows_all = B*T, so this part's logit
 * gradients are exactly those of one backward over the whole batch. */
void model_backward_part(Model *m, long ncount_all, long rows_all);
size_t model_state_numel(const Model *m, int B);
/* State size reported everywhere (info, summary.json, run.h5): matrix part and all of it, per sequence. */
size_t model_matrix_state_numel(const Model *m);
/* "standard" or "extended": the model's eigenvalue range (dims field `extended`, absent = standard). */
const char *model_eig_range(const Model *m);
const ParamTensor *model_find(const Model *m, const char *name);
/* An architecture's dims as named integers (checkpoints, info): get fills vals (arch->ndims). */
void model_dims_get(const ModelArch *a, const void *dims, int *vals);
/* set from (name, value) pairs; every field of the architecture must be given, unknown names are errors. */
int model_dims_set(const ModelArch *a, void *dims, const char *const *names, const int *vals, int n, Err *err);
/* Buffers for tracing B sequences of T tokens (every field the architecture fills); free with
 * model_trace_free. */
void model_trace_alloc(const Model *m, int B, int T, ModelTrace *tr);
void model_trace_free(ModelTrace *tr);
/* Architecture, dims, shapes, parameter and state counts. */
void model_print_info(const Model *m, const char *path, FILE *f);

#endif
