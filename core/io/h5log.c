/* h5log.c -- the run.h5 writer: root attributes, appended /train and /eval records, probe
 * trajectories with state norms and transition-matrix eigenvalues (schema: h5log.h and
 * analysis/README.md).
 *
 * Rules:
 *   - Every HDF5 call goes through H5_TRY, which on failure records file:line, the operation, the
 *     run.h5 path and the innermost HDF5 error description in `err`, then jumps to the cleanup label.
 *     HDF5's automatic error-stack printing is switched off.
 *   - /train and /eval are groups of 1-D extendible datasets (chunked, max dims unlimited) of equal
 *     length, one element per record; step and length are int64, the rest float64. Each append
 *     extends every dataset of the group by one and then flushes the file, so a crash loses at most
 *     the record being written. On --resume the file is rebuilt from the
 *     checkpoint's records (h5log_rebuild), so a torn run.h5 never blocks a resume.
 *   - Self-describing: every dataset gets string attributes meaning / units / shape (a legend of its
 *     dimensions), every group a meaning, all written by the one attribute writer h5log_attrs from
 *     tables (the field tables below, h5log_traj_docs, the architecture's TraceQuantity docs).
 *   - Trajectory arrays are float32, gzip level 4, chunked along T so a chunk holds at least one
 *     time step (several when a step's slice is small). Eigenvalues are computed in double precision
 *     with gsl_eigen_nonsymm, one workspace per h5log_trajectory call.
 * Dimension legend (common.h): L layers, T tokens, H heads, N head size, C = H*N.
 */
#include "h5log.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <gsl/gsl_eigen.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_vector.h>
#include <hdf5.h>

#define H5LOG_CHUNK 256                 /* records per chunk of the /train and /eval datasets */
#define H5LOG_TRAJ_CHUNK_BYTES (64 << 10) /* target minimum chunk size of trajectory arrays */
#define H5LOG_GZIP_LEVEL 4

enum { H5LOG_I64, H5LOG_F64 };

typedef struct {
    const char *name;
    int type;            /* H5LOG_I64 or H5LOG_F64 */
    const char *units;   /* attribute `units` */
    const char *meaning; /* attribute `meaning` */
} H5LogField;

/* Field tables shared by create and append: the order here is the argument order (new fields go last, so
 * that readers of older files find the old ones unchanged). */
static const H5LogField h5log_train_fields[] = {
    {"step", H5LOG_I64, "steps", "optimiser step the record belongs to (strictly increasing)"},
    {"loss", H5LOG_F64, "nats per scored token", "mean training cross-entropy of the step's batch"},
    {"acc", H5LOG_F64, "fraction in [0, 1]", "fraction of the batch's scored tokens whose argmax prediction is the target"},
    {"lr", H5LOG_F64, "1 (dimensionless)", "learning rate used for the step (after the warm-up / decay schedule)"},
    {"grad_norm", H5LOG_F64, "1 (L2 norm of dloss/dparams)", "global L2 norm of the gradient, before clipping to train.grad_clip"},
    {"tokens_per_s", H5LOG_F64, "tokens / s", "training throughput of this session up to the step (tokens / wall seconds)"},
    {"wall_s", H5LOG_F64, "s", "wall-clock seconds from the start of the run's training loop to the step (evaluations "
                               "included), summed over resumed sessions (NaN: unknown, a record kept by an older "
                               "checkpoint)"},
    {"length", H5LOG_I64, "tokens", "sequence length of the step's training batch (its longest row; varies when the "
                                    "protocol trains on a range of lengths; -1: unknown)"},
};
static const H5LogField h5log_eval_fields[] = {
    {"step", H5LOG_I64, "steps", "training step at which the evaluation ran (non-decreasing)"},
    {"length", H5LOG_I64, "tokens", "sequence length of the evaluation set"},
    {"token_acc", H5LOG_F64, "fraction in [0, 1]", "fraction of scored positions predicted correctly"},
    {"seq_acc", H5LOG_F64, "fraction in [0, 1]", "fraction of sequences with every scored position correct"},
    {"scaled_acc", H5LOG_F64, "1 (0 = chance, 1 = perfect)", "(token_acc - task_chance) / (1 - task_chance); NaN "
                                                          "when the task's chance level is unknown"},
};
#define H5LOG_NTRAIN ((int)(sizeof h5log_train_fields / sizeof h5log_train_fields[0]))
#define H5LOG_NEVAL ((int)(sizeof h5log_eval_fields / sizeof h5log_eval_fields[0]))

/* One appendable group (/train or /eval). */
typedef struct {
    const char *gname;
    const H5LogField *fields;
    int nfields;
    hid_t group;
    hid_t ds[12];
    hsize_t n; /* records written */
} H5LogGroup;

struct H5Log {
    char *path;
    hid_t file;
    int autoflush; /* flush after every record (off while h5log_rebuild writes the recovered records) */
    double chance; /* the task's chance level, for /eval/scaled_acc */
    long trace_step;        /* h5log_set_trace_point: marks the probe groups */
    const char *trace_status;
    H5LogGroup train, eval;
};

/* ---- error capture ----------------------------------------------------------------------------- */

/* H5Ewalk2 callback: walking downward, the last description seen is the innermost (most specific,
 * e.g. the OS error of an open). */
static herr_t h5log_walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
    char *buf = data;
    (void)n;
    if (e && e->desc && e->desc[0]) snprintf(buf, 512, "%s", e->desc);
    return 0;
}

static int h5log_fail(Err *err, const char *file, int line, const char *path, const char *op) {
    char detail[512] = "";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, h5log_walk_cb, detail);
    H5Eclear2(H5E_DEFAULT);
    return err_set(err, "run.h5 '%s': HDF5 failed to %s (%s:%d)%s%s", path ? path : "?", op, file,
                   line, detail[0] ? ": " : "", detail);
}

/* Evaluate an HDF5 call (hid_t or herr_t); negative -> fill err and goto fail. Needs `err`,
 * `path` and a `fail:` label in scope. */
#define H5_TRY(expr, op)                                                                    \
    do {                                                                                    \
        if ((expr) < 0) {                                                                   \
            h5log_fail(err, __FILE__, __LINE__, path, op);                                  \
            goto fail;                                                                      \
        }                                                                                   \
    } while (0)

/* HDF5's automatic error printing off; and no HDF5 clean-up at exit: after a write failure (a full disk)
 * a file may refuse to close, and HDF5 1.10's exit handler then crashes retrying it (seen on Debian
 * 12); the process exits without it, and the half-written file is a temp file we remove. */
static void h5log_quiet(void) {
    static int once = 0;
    if (!once) once = 1, H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void h5log_close_id(hid_t *id, herr_t (*closer)(hid_t)) {
    if (*id >= 0) closer(*id);
    *id = H5I_INVALID_HID;
}

static void h5log_group_init(H5LogGroup *g, const char *gname, const H5LogField *f, int nf) {
    g->gname = gname;
    g->fields = f;
    g->nfields = nf;
    g->group = H5I_INVALID_HID;
    for (int i = 0; i < (int)(sizeof g->ds / sizeof g->ds[0]); i++) g->ds[i] = H5I_INVALID_HID;
    g->n = 0;
}

static void h5log_group_close(H5LogGroup *g) {
    for (int i = 0; i < g->nfields; i++) h5log_close_id(&g->ds[i], H5Dclose);
    h5log_close_id(&g->group, H5Gclose);
}

static H5Log *h5log_alloc(const char *path) {
    H5Log *h = xcalloc(1, sizeof *h);
    h->path = xmalloc(strlen(path) + 1);
    strcpy(h->path, path);
    h->file = H5I_INVALID_HID;
    h->autoflush = 1;
    h->trace_step = -1;
    h->trace_status = "final";
    h5log_group_init(&h->train, "train", h5log_train_fields, H5LOG_NTRAIN);
    h5log_group_init(&h->eval, "eval", h5log_eval_fields, H5LOG_NEVAL);
    return h;
}

int h5log_finish(H5Log *h, Err *err) {
    if (!h) return 0;
    const char *path = h->path;
    int rc = 0;
    for (int gi = 0; gi < 2; gi++) {
        H5LogGroup *g = gi ? &h->eval : &h->train;
        for (int i = 0; i < g->nfields; i++)
            if (g->ds[i] >= 0 && H5Dclose(g->ds[i]) < 0 && !rc) rc = h5log_fail(err, __FILE__, __LINE__, path, "close a dataset");
        for (int i = 0; i < g->nfields; i++) g->ds[i] = H5I_INVALID_HID;
        if (g->group >= 0 && H5Gclose(g->group) < 0 && !rc) rc = h5log_fail(err, __FILE__, __LINE__, path, "close a group");
        g->group = H5I_INVALID_HID;
    }
    if (h->file >= 0) {
        if (H5Fflush(h->file, H5F_SCOPE_LOCAL) < 0 && !rc) rc = h5log_fail(err, __FILE__, __LINE__, path, "flush (disk full?)");
        if (H5Fclose(h->file) < 0 && !rc) rc = h5log_fail(err, __FILE__, __LINE__, path, "close (disk full?)");
        h->file = H5I_INVALID_HID;
    }
    H5Eclear2(H5E_DEFAULT);
    free(h->path);
    free(h);
    return rc;
}

void h5log_close(H5Log *h) {
    if (!h) return;
    h5log_group_close(&h->train);
    h5log_group_close(&h->eval);
    if (h->file >= 0) {
        H5Fflush(h->file, H5F_SCOPE_LOCAL);
        H5Fclose(h->file);
    }
    H5Eclear2(H5E_DEFAULT);
    free(h->path);
    free(h);
}

/* ---- attributes ------------------------------------------------------------------------------- */

/* One attribute: a UTF-8 string (kind 's'), an int64 ('i') or a float64 ('f'). */
typedef struct {
    const char *name;
    char kind;
    const char *s;
    long i;
    double f;
} H5LogAttr;
#define H5LOG_ASTR(n, v) ((H5LogAttr){.name = (n), .kind = 's', .s = (v)})
#define H5LOG_AI64(n, v) ((H5LogAttr){.name = (n), .kind = 'i', .i = (v)})
#define H5LOG_AF64(n, v) ((H5LogAttr){.name = (n), .kind = 'f', .f = (v)})

/* Write n scalar attributes on obj (`where` names obj in errors): the one attribute writer. */
static int h5log_attrs(hid_t obj, const char *where, const H5LogAttr *a, int n, const char *path, Err *err) {
    hid_t type = H5I_INVALID_HID, space = H5I_INVALID_HID, attr = H5I_INVALID_HID;
    char op[192];
    for (int k = 0; k < n; k++) {
        snprintf(op, sizeof op, "write attribute '%s' of %s", a[k].name, where);
        int64_t iv = a[k].i;
        const char *sv = a[k].s ? a[k].s : "";
        hid_t ftype = a[k].kind == 'i' ? H5T_STD_I64LE : H5T_IEEE_F64LE;
        hid_t mtype = a[k].kind == 'i' ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE;
        const void *buf = a[k].kind == 'i' ? (const void *)&iv : (const void *)&a[k].f;
        if (a[k].kind == 's') {
            H5_TRY(type = H5Tcopy(H5T_C_S1), op);
            H5_TRY(H5Tset_size(type, H5T_VARIABLE), op);
            H5_TRY(H5Tset_cset(type, H5T_CSET_UTF8), op);
            ftype = mtype = type;
            buf = &sv;
        }
        H5_TRY(space = H5Screate(H5S_SCALAR), op);
        H5_TRY(attr = H5Acreate2(obj, a[k].name, ftype, space, H5P_DEFAULT, H5P_DEFAULT), op);
        H5_TRY(H5Awrite(attr, mtype, buf), op);
        h5log_close_id(&attr, H5Aclose);
        h5log_close_id(&space, H5Sclose);
        h5log_close_id(&type, H5Tclose);
    }
    return 0;
fail:
    h5log_close_id(&attr, H5Aclose);
    h5log_close_id(&space, H5Sclose);
    h5log_close_id(&type, H5Tclose);
    return -1;
}

/* The three attributes every dataset carries. */
static int h5log_describe(hid_t ds, const char *where, const char *meaning, const char *units, const char *shape,
                          const char *path, Err *err) {
    const H5LogAttr a[] = {H5LOG_ASTR("meaning", meaning), H5LOG_ASTR("units", units), H5LOG_ASTR("shape", shape)};
    return h5log_attrs(ds, where, a, 3, path, err);
}

/* ---- appendable groups ------------------------------------------------------------------------- */

static hid_t h5log_file_type(int t) { return t == H5LOG_I64 ? H5T_STD_I64LE : H5T_IEEE_F64LE; }
static hid_t h5log_mem_type(int t) { return t == H5LOG_I64 ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE; }

static int h5log_group_create(hid_t file, H5LogGroup *g, const char *path, Err *err) {
    hid_t space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID;
    hsize_t dims[1] = {0}, maxdims[1] = {H5S_UNLIMITED}, chunk[1] = {H5LOG_CHUNK};
    char op[128];
    char where[64];
    snprintf(op, sizeof op, "create group /%s", g->gname);
    snprintf(where, sizeof where, "/%s", g->gname);
    H5_TRY(g->group = H5Gcreate2(file, g->gname, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), op);
    const H5LogAttr ga = H5LOG_ASTR("meaning", g->fields == h5log_train_fields
                                             ? "one record per logged optimisation step; record k of every dataset "
                                               "here belongs together"
                                             : "one record per (evaluation step, test length); record k of every "
                                               "dataset here belongs together");
    if (h5log_attrs(g->group, where, &ga, 1, path, err)) goto fail;
    H5_TRY(space = H5Screate_simple(1, dims, maxdims), op);
    H5_TRY(dcpl = H5Pcreate(H5P_DATASET_CREATE), op);
    H5_TRY(H5Pset_chunk(dcpl, 1, chunk), op);
    for (int i = 0; i < g->nfields; i++) {
        snprintf(op, sizeof op, "create dataset /%s/%s", g->gname, g->fields[i].name);
        H5_TRY(g->ds[i] = H5Dcreate2(g->group, g->fields[i].name, h5log_file_type(g->fields[i].type),
                                     space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
               op);
        snprintf(where, sizeof where, "/%s/%s", g->gname, g->fields[i].name);
        if (h5log_describe(g->ds[i], where, g->fields[i].meaning, g->fields[i].units,
                           g->fields == h5log_train_fields ? "[n]: one element per /train record"
                                                           : "[n]: one element per /eval record",
                           path, err))
            goto fail;
    }
    H5Pclose(dcpl);
    H5Sclose(space);
    g->n = 0;
    return 0;
fail:
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    return -1;
}

/* Append one record (vals[i] is a long* for I64 fields, a double* for F64 fields), then flush. */
static int h5log_append(H5Log *h, H5LogGroup *g, const void *const *vals, Err *err) {
    const char *path = h ? h->path : NULL;
    hid_t fspace = H5I_INVALID_HID, mspace = H5I_INVALID_HID;
    char op[128];
    if (!h || h->file < 0) return err_set(err, "h5log: append to /%s on a closed log", g ? g->gname : "?");
    if (fault_point("h5"))
        return err_set(err, "run.h5 '%s': cannot append to /%s: %s", path, g->gname, strerror(errno));
    hsize_t n1[1] = {g->n + 1}, start[1] = {g->n}, one[1] = {1};
    H5_TRY(mspace = H5Screate_simple(1, one, NULL), "create memory dataspace");
    for (int i = 0; i < g->nfields; i++) {
        snprintf(op, sizeof op, "append to /%s/%s", g->gname, g->fields[i].name);
        int64_t iv = 0;
        const void *src = vals[i];
        if (g->fields[i].type == H5LOG_I64) {
            iv = *(const long *)vals[i];
            src = &iv;
        }
        H5_TRY(H5Dset_extent(g->ds[i], n1), op);
        H5_TRY(fspace = H5Dget_space(g->ds[i]), op);
        H5_TRY(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, one, NULL), op);
        H5_TRY(H5Dwrite(g->ds[i], h5log_mem_type(g->fields[i].type), mspace, fspace, H5P_DEFAULT, src),
               op);
        H5Sclose(fspace);
        fspace = H5I_INVALID_HID;
    }
    H5Sclose(mspace);
    mspace = H5I_INVALID_HID;
    g->n++;
    if (h->autoflush) H5_TRY(H5Fflush(h->file, H5F_SCOPE_LOCAL), "flush");
    return 0;
fail:
    if (fspace >= 0) H5Sclose(fspace);
    if (mspace >= 0) H5Sclose(mspace);
    return -1;
}

/* ---- create / rebuild -------------------------------------------------------------------------- */

H5Log *h5log_create(const char *path, const H5RunAttrs *attrs, Err *err) {
    if (!path || !attrs) {
        err_set(err, "h5log_create: missing path or attributes");
        return NULL;
    }
    h5log_quiet();
    if (access(path, F_OK) == 0) {
        err_set(err, "run.h5 '%s' already exists; refusing to overwrite it (use --resume to continue "
                     "that run, or choose a new run directory)",
                path);
        return NULL;
    }
    H5Log *h = h5log_alloc(path);
    H5_TRY(h->file = H5Fcreate(path, H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT), "create the file");
    const H5LogAttr root[] = {
        H5LOG_ASTR("config", attrs->config_ini),
        H5LOG_ASTR("code_version", attrs->code_version),
        H5LOG_AI64("seed", attrs->seed),
        H5LOG_ASTR("arch", attrs->arch),
        H5LOG_AI64("param_count", attrs->param_count),
        H5LOG_AI64("state_size", attrs->state_size),
        H5LOG_AI64("state_size_total", attrs->state_size_total),
        H5LOG_ASTR("eig_range", attrs->eig_range),
        H5LOG_ASTR("scalar", REAL_NAME),
        H5LOG_ASTR("task", attrs->task),
        H5LOG_AF64("task_chance", attrs->task_chance > 0 && attrs->task_chance < 1 ? attrs->task_chance : NAN),
        H5LOG_AI64("schema_version", H5LOG_SCHEMA_VERSION),
        H5LOG_ASTR("meaning", "one rwkvlab training run: /train and /eval records, /trajectories of probe sequences; "
                           "every dataset has meaning / units / shape attributes (analysis/README.md)"),
    };
    if (h5log_attrs(h->file, "the root group", root, (int)(sizeof root / sizeof root[0]), path, err) != 0)
        goto fail;
    h->chance = attrs->task_chance;
    if (h5log_group_create(h->file, &h->train, path, err) != 0) goto fail;
    if (h5log_group_create(h->file, &h->eval, path, err) != 0) goto fail;
    H5_TRY(H5Fflush(h->file, H5F_SCOPE_LOCAL), "flush");
    return h;
fail: {
    /* drop our half-written file so that a retry is not refused as "already exists" */
    int created = h->file >= 0;
    h5log_close(h);
    if (created) unlink(path);
    return NULL;
}
}

H5Log *h5log_rebuild(const char *path, const H5RunAttrs *attrs, const RunRecords *rec, Err *err) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    unlink(tmp);
    H5Log *h = h5log_create(tmp, attrs, err);
    if (!h) return NULL;
    h->autoflush = 0;
    for (long i = 0; rec && i < rec->ntrain; i++) {
        if (h5log_train(h, &rec->train[i], err)) goto fail;
    }
    for (long i = 0; rec && i < rec->neval; i++) {
        const EvalRec *e = &rec->eval[i];
        if (h5log_eval(h, e->step, e->length, e->token_acc, e->seq_acc, err)) goto fail;
    }
    h->autoflush = 1;
    if (h5log_flush(h, err)) goto fail;
    if (rename(tmp, path) != 0) {
        err_set(err, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        goto fail;
    }
    free(h->path);
    h->path = xmalloc(strlen(path) + 1);
    strcpy(h->path, path);
    return h;
fail:
    h5log_close(h);
    unlink(tmp);
    return NULL;
}

int h5log_train(H5Log *h, const TrainRec *t, Err *err) {
    if (!h || !t) return err_set(err, "h5log_train: log or record is NULL");
    long len = t->length > 0 ? t->length : -1;
    const void *vals[] = {&t->step, &t->loss, &t->acc, &t->lr, &t->grad_norm, &t->tokens_per_s, &t->wall_s, &len};
    return h5log_append(h, &h->train, vals, err);
}

int h5log_eval(H5Log *h, long step, int length, double token_acc, double seq_acc, Err *err) {
    if (!h) return err_set(err, "h5log_eval: log is NULL");
    long len = length;
    double sc = scaled_accuracy(token_acc, h->chance);
    const void *vals[] = {&step, &len, &token_acc, &seq_acc, &sc};
    return h5log_append(h, &h->eval, vals, err);
}

double scaled_accuracy(double acc, double chance) {
    return chance > 0 && chance < 1 ? (acc - chance) / (1 - chance) : NAN;
}

int h5log_flush(H5Log *h, Err *err) {
    if (!h || h->file < 0) return err_set(err, "h5log_flush: log is not open");
    const char *path = h->path;
    H5_TRY(H5Fflush(h->file, H5F_SCOPE_LOCAL), "flush");
    return 0;
fail:
    return -1;
}

/* ---- the records kept in memory (and in records.bin) ------------------------------------------- */

void records_add_train(RunRecords *r, const TrainRec *t) {
    if (r->ntrain == r->cap_train) {
        r->cap_train = r->cap_train ? 2 * r->cap_train : 256;
        r->train = realloc(r->train, r->cap_train * sizeof *r->train);
        CHECK(r->train, "out of memory keeping %ld training records", r->cap_train);
    }
    r->train[r->ntrain++] = *t;
}

void records_add_eval(RunRecords *r, const EvalRec *e) {
    if (r->neval == r->cap_eval) {
        r->cap_eval = r->cap_eval ? 2 * r->cap_eval : 64;
        r->eval = realloc(r->eval, r->cap_eval * sizeof *r->eval);
        CHECK(r->eval, "out of memory keeping %ld evaluation records", r->cap_eval);
    }
    r->eval[r->neval++] = *e;
}

void records_free(RunRecords *r) {
    free(r->train), free(r->eval);
    *r = (RunRecords){0};
}

/* ---- transition eigenvalues -------------------------------------------------------------------- */

typedef struct {
    double re, im;
} H5LogEig;

static int h5log_eig_cmp(const void *pa, const void *pb) {
    const H5LogEig *x = pa, *y = pb;
    if (x->re != y->re) return x->re > y->re ? -1 : 1;
    if (x->im != y->im) return x->im > y->im ? -1 : 1;
    return 0;
}

/* Workspace for repeated N x N eigenproblems. */
typedef struct {
    int N;
    gsl_matrix *m;
    gsl_vector_complex *eval;
    gsl_eigen_nonsymm_workspace *ws;
    H5LogEig *pairs;
} H5LogEigWs;

static int h5log_eigws_init(H5LogEigWs *e, int N) {
    memset(e, 0, sizeof *e);
    e->N = N;
    e->m = gsl_matrix_alloc(N, N);
    e->eval = gsl_vector_complex_alloc(N);
    e->ws = gsl_eigen_nonsymm_alloc(N);
    e->pairs = xmalloc((size_t)N * sizeof *e->pairs);
    return e->m && e->eval && e->ws ? 0 : -1;
}

static void h5log_eigws_free(H5LogEigWs *e) {
    if (e->ws) gsl_eigen_nonsymm_free(e->ws);
    if (e->eval) gsl_vector_complex_free(e->eval);
    if (e->m) gsl_matrix_free(e->m);
    free(e->pairs);
    memset(e, 0, sizeof *e);
}

/* M[i][j] = w[i]*(i==j) - kk[i]*a[j]*kk[j]; eigenvalues sorted (desc re, then desc im). */
/* Eigenvalues of M = diag(w) + alpha beta^T (N x N; alpha, beta NULL: diagonal), sorted. */
static int h5log_eig_solve(H5LogEigWs *e, const float *w, const float *alpha, const float *beta, double *re,
                           double *im) {
    int N = e->N;
    for (int i = 0; i < N; i++)
        if (!isfinite(w[i]) || (alpha && (!isfinite(alpha[i]) || !isfinite(beta[i])))) return -1;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            gsl_matrix_set(e->m, i, j,
                           (i == j ? (double)w[i] : 0.0) + (alpha ? (double)alpha[i] * (double)beta[j] : 0.0));
    /* GSL's default handler aborts; report non-convergence as a return value instead. */
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    int st = gsl_eigen_nonsymm(e->m, e->eval, e->ws);
    gsl_set_error_handler(old);
    if (st != GSL_SUCCESS) return -1;
    for (int i = 0; i < N; i++) {
        gsl_complex z = gsl_vector_complex_get(e->eval, i);
        e->pairs[i].re = GSL_REAL(z);
        e->pairs[i].im = GSL_IMAG(z);
    }
    qsort(e->pairs, N, sizeof *e->pairs, h5log_eig_cmp);
    for (int i = 0; i < N; i++) {
        re[i] = e->pairs[i].re;
        im[i] = e->pairs[i].im;
    }
    return 0;
}

int transition_eigenvalues(int N, const float *w, const float *alpha, const float *beta, double *re, double *im) {
    if (N < 1 || !w || !alpha != !beta || !re || !im) return -1;
    H5LogEigWs e;
    int rc = h5log_eigws_init(&e, N) == 0 ? h5log_eig_solve(&e, w, alpha, beta, re, im) : -1;
    h5log_eigws_free(&e);
    return rc;
}

/* ---- trajectories ------------------------------------------------------------------------------ */

/* What the trajectory datasets hold (attributes meaning / units / shape); the architecture's own per-step
 * quantities take their meaning from its TraceQuantity docs. */
typedef struct {
    const char *name, *units, *shape, *meaning;
} H5LogDoc;
static const H5LogDoc h5log_traj_docs[] = {
    {"tokens", "token id", "[T]: position t", "input token ids of the probe sequence"},
    {"targets", "token id", "[T]: position t", "target ids (task-specific; unscored positions as the task defines them)"},
    {"pred", "token id", "[T]: position t", "the model's argmax prediction at each position"},
    {"state", "1 (entries of the state matrix)", "[T,H,Nv,N]: token t, head h, value index i (row), key index j (column)",
     "matrix state S of each head after consuming token t"},
    {"state_norm", "1 (Frobenius norm)", "[T,H]: token t, head h", "Frobenius norm of state[t,h], sqrt(sum_ij S_ij^2)"},
    {"eig_real", "1 (eigenvalue; |lambda| < 1 forgets, < 0 flips sign)",
     "[T,H,N]: token t, head h, eigenvalue index (sorted by descending real part, then imaginary part)",
     "real parts of the eigenvalues of head h's transition matrix M_t = diag(w) + alpha beta^T at token t"},
    {"eig_imag", "1 (eigenvalue)", "[T,H,N]: token t, head h, eigenvalue index (paired with eig_real)",
     "imaginary parts of the eigenvalues of M_t (0 for the transitions of these architectures)"},
};

static const H5LogDoc *h5log_traj_doc(const char *name) {
    for (size_t i = 0; i < sizeof h5log_traj_docs / sizeof h5log_traj_docs[0]; i++)
        if (!strcmp(h5log_traj_docs[i].name, name)) return &h5log_traj_docs[i];
    return NULL;
}

/* Write a float32 array [dims] gzip-compressed, chunked along dim 0 (time), with its description d. */
static int h5log_write_f32(hid_t grp, const char *name, int rank, const hsize_t *dims, const float *data,
                           const H5LogDoc *d, const char *path, Err *err) {
    hid_t space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, ds = H5I_INVALID_HID;
    hsize_t chunk[4];
    char op[128];
    snprintf(op, sizeof op, "write trajectory dataset '%s'", name);
    size_t slice = sizeof(float);
    for (int r = 1; r < rank; r++) {
        chunk[r] = dims[r];
        slice *= dims[r];
    }
    hsize_t ct = H5LOG_TRAJ_CHUNK_BYTES / slice;
    if (ct < 1) ct = 1;
    if (ct > dims[0]) ct = dims[0];
    chunk[0] = ct;
    H5_TRY(space = H5Screate_simple(rank, dims, NULL), op);
    H5_TRY(dcpl = H5Pcreate(H5P_DATASET_CREATE), op);
    H5_TRY(H5Pset_chunk(dcpl, rank, chunk), op);
    H5_TRY(H5Pset_deflate(dcpl, H5LOG_GZIP_LEVEL), op);
    H5_TRY(ds = H5Dcreate2(grp, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT), op);
    H5_TRY(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), op);
    if (h5log_describe(ds, name, d->meaning, d->units, d->shape, path, err)) goto fail;
    H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(space);
    return 0;
fail:
    if (ds >= 0) H5Dclose(ds);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    return -1;
}

static int h5log_write_i32(hid_t grp, const char *name, hsize_t T, const int *data, const char *path,
                           Err *err) {
    hid_t space = H5I_INVALID_HID, ds = H5I_INVALID_HID;
    hsize_t dims[1] = {T};
    char op[128];
    snprintf(op, sizeof op, "write trajectory dataset '%s'", name);
    H5_TRY(space = H5Screate_simple(1, dims, NULL), op);
    H5_TRY(ds = H5Dcreate2(grp, name, H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), op);
    H5_TRY(H5Dwrite(ds, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), op);
    const H5LogDoc *d = h5log_traj_doc(name);
    if (h5log_describe(ds, name, d->meaning, d->units, d->shape, path, err)) goto fail;
    H5Dclose(ds);
    H5Sclose(space);
    return 0;
fail:
    if (ds >= 0) H5Dclose(ds);
    if (space >= 0) H5Sclose(space);
    return -1;
}

/* Open `name` under `parent`, creating it if absent. */
static hid_t h5log_group_open_or_create(hid_t parent, const char *name) {
    htri_t ex = H5Lexists(parent, name, H5P_DEFAULT);
    if (ex < 0) return H5I_INVALID_HID;
    return ex ? H5Gopen2(parent, name, H5P_DEFAULT)
              : H5Gcreate2(parent, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
}

void h5log_set_trace_point(H5Log *h, long step, const char *status) {
    if (!h) return;
    h->trace_step = step;
    h->trace_status = status ? status : "final";
}

/* Writes /trajectories/probe<p>; an existing probe<p> (e.g. from before a --resume) is replaced. */
int h5log_trajectory(H5Log *h, int probe, const Model *m, int T, const int *tokens, const int *targets,
                     const int *pred, const ModelTrace *tr, Err *err) {
    if (!h || h->file < 0) return err_set(err, "h5log_trajectory: log is not open");
    const char *path = h->path;
    const int L = m ? m->L : 0, H = m ? m->H : 0, N = m ? m->N : 0, Nv = m ? m->Nv : 0;
    if (probe < 0 || L < 1 || T < 1 || H < 1 || N < 1 || Nv < 1)
        return err_set(err, "h5log_trajectory: bad shape probe=%d L=%d T=%d H=%d N=%d", probe, L, T, H, N);
    const ModelArch *arch = m->arch;
    int qok = 1;
    for (int i = 0; i < arch->ntrace; i++) qok &= tr && tr->q[i] != NULL;
    if (!tokens || !targets || !pred || !tr || !tr->state || !tr->w || !tr->alpha != !tr->beta || !qok)
        return err_set(err, "h5log_trajectory: NULL array for probe %d", probe);

    hid_t troot = H5I_INVALID_HID, pgrp = H5I_INVALID_HID, lgrp = H5I_INVALID_HID;
    int rc = -1, created = 0, C = m->C;
    size_t TH = (size_t)T * H, THN = TH * N, TC = (size_t)T * C, SS = (size_t)H * N * Nv;
    float *norm = xmalloc(TH * sizeof *norm);    // (T,H)
    float *ere = xmalloc(THN * sizeof *ere);     // (T,H,N)
    float *eim = xmalloc(THN * sizeof *eim);     // (T,H,N)
    double *re = xmalloc((size_t)N * sizeof *re); // (N)
    double *im = xmalloc((size_t)N * sizeof *im); // (N)
    H5LogEigWs ew;
    char pname[32], lname[32], op[128];
    htri_t ex;
    if (h5log_eigws_init(&ew, N) != 0) {
        err_set(err, "h5log_trajectory: cannot allocate GSL eigen workspace for N=%d", N);
        goto fail;
    }

    H5_TRY(ex = H5Lexists(h->file, "trajectories", H5P_DEFAULT), "look up /trajectories");
    H5_TRY(troot = h5log_group_open_or_create(h->file, "trajectories"), "open /trajectories");
    if (!ex) {
        const H5LogAttr ta = H5LOG_ASTR("meaning", "probe sequences (first rows of a test set) traced through the model: "
                                             "states, transition eigenvalues, the architecture's gates per token");
        if (h5log_attrs(troot, "/trajectories", &ta, 1, path, err)) goto fail;
    }
    snprintf(pname, sizeof pname, "probe%d", probe);
    H5_TRY(ex = H5Lexists(troot, pname, H5P_DEFAULT), "look up the probe group");
    if (ex > 0) H5_TRY(H5Ldelete(troot, pname, H5P_DEFAULT), "replace an existing probe group");
    snprintf(op, sizeof op, "create /trajectories/%s", pname);
    H5_TRY(pgrp = H5Gcreate2(troot, pname, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), op);
    created = 1;
    {
        char meaning[160];
        snprintf(meaning, sizeof meaning, "probe sequence %d of the test set at length %d, run through the model "
                                          "one token at a time", probe, T);
        const H5LogAttr pa[] = {H5LOG_ASTR("meaning", meaning), H5LOG_AI64("step", h->trace_step),
                             H5LOG_ASTR("run_status", h->trace_status), H5LOG_AI64("T", T)};
        if (h5log_attrs(pgrp, pname, pa, 4, path, err)) goto fail;
    }
    if (h5log_write_i32(pgrp, "tokens", T, tokens, path, err) != 0) goto fail;
    if (h5log_write_i32(pgrp, "targets", T, targets, path, err) != 0) goto fail;
    if (h5log_write_i32(pgrp, "pred", T, pred, path, err) != 0) goto fail;

    for (int l = 0; l < L; l++) {
        const float *sl = tr->state + (size_t)l * T * SS;                 // (T,H,Nv,N)
        const float *wl = tr->w + (size_t)l * TC;                         // (T,C)
        const float *al = tr->alpha ? tr->alpha + (size_t)l * TC : NULL;  // (T,C)
        const float *bl = tr->beta ? tr->beta + (size_t)l * TC : NULL;    // (T,C)
        for (int t = 0; t < T; t++) {
            for (int hh = 0; hh < H; hh++) {
                const float *s = sl + ((size_t)t * H + hh) * N * Nv;
                double acc = 0;
                for (size_t i = 0; i < (size_t)N * Nv; i++) acc += (double)s[i] * s[i];
                norm[(size_t)t * H + hh] = (float)sqrt(acc);
                size_t off = (size_t)t * C + (size_t)hh * N;
                if (h5log_eig_solve(&ew, wl + off, al ? al + off : NULL, bl ? bl + off : NULL, re, im) != 0) {
                    err_set(err,
                            "run.h5 '%s': eigenvalues of the transition matrix failed for probe %d "
                            "layer %d t=%d head %d (non-finite transition, or QR did not converge)",
                            path, probe, l, t, hh);
                    goto fail;
                }
                for (int i = 0; i < N; i++) {
                    ere[((size_t)t * H + hh) * N + i] = (float)re[i];
                    eim[((size_t)t * H + hh) * N + i] = (float)im[i];
                }
            }
        }
        snprintf(lname, sizeof lname, "layer%d", l);
        snprintf(op, sizeof op, "create /trajectories/%s/%s", pname, lname);
        H5_TRY(lgrp = H5Gcreate2(pgrp, lname, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), op);
        char lmean[96];
        snprintf(lmean, sizeof lmean, "layer %d of %d (0 = nearest the input): state, transitions, gates", l, L);
        const H5LogAttr la = H5LOG_ASTR("meaning", lmean);
        if (h5log_attrs(lgrp, lname, &la, 1, path, err)) goto fail;
        hsize_t d_state[4] = {T, H, Nv, N}, d_norm[2] = {T, H}, d_eig[3] = {T, H, N};
        if (h5log_write_f32(lgrp, "state", 4, d_state, sl, h5log_traj_doc("state"), path, err) != 0 ||
            h5log_write_f32(lgrp, "state_norm", 2, d_norm, norm, h5log_traj_doc("state_norm"), path, err) != 0 ||
            h5log_write_f32(lgrp, "eig_real", 3, d_eig, ere, h5log_traj_doc("eig_real"), path, err) != 0 ||
            h5log_write_f32(lgrp, "eig_imag", 3, d_eig, eim, h5log_traj_doc("eig_imag"), path, err) != 0)
            goto fail;
        for (int i = 0; i < arch->ntrace; i++) {
            const TraceQuantity *q = &arch->trace[i];
            hsize_t width = q->per_head ? (hsize_t)H : (hsize_t)C, d_q[2] = {T, width};
            const H5LogDoc d = {q->name, "1", q->per_head ? "[T,H]: token t, head h"
                                                          : "[T,C]: token t, channel c (head h owns channels h*N .. h*N+N-1)",
                                q->doc ? q->doc : ""};
            if (h5log_write_f32(lgrp, q->name, 2, d_q, tr->q[i] + (size_t)l * T * width, &d, path, err) != 0)
                goto fail;
        }
        H5Gclose(lgrp);
        lgrp = H5I_INVALID_HID;
    }
    H5Gclose(pgrp);
    pgrp = H5I_INVALID_HID;
    H5_TRY(H5Fflush(h->file, H5F_SCOPE_LOCAL), "flush");
    rc = 0;
fail:
    if (lgrp >= 0) H5Gclose(lgrp);
    if (pgrp >= 0) H5Gclose(pgrp);
    if (rc != 0 && created) H5Ldelete(troot, pname, H5P_DEFAULT); /* no half-written probe */
    if (troot >= 0) H5Gclose(troot);
    H5Eclear2(H5E_DEFAULT);
    h5log_eigws_free(&ew);
    free(norm), free(ere), free(eim), free(re), free(im);
    return rc;
}
