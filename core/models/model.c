/* model.c -- what every architecture shares behind the model interface (model.h): creation and freeing
 * through the architecture's table, the masked cross-entropy loss with optional L2Wrap, dims as named
 * integers, parameter lookup and `info`. */
#include "model.h"

#include <string.h>

#include "ops.h"

Model *model_create(const ModelArch *a, const void *dims, int with_grads) {
    CHECK(a && dims, "model_create: missing architecture or dims");
    Model *m = a->create(dims, with_grads);
    CHECK(m && m->arch == a && m->params, "architecture %s: create did not fill the model head", a->name);
    return m;
}

void model_attach(Model *m, const ModelArch *a, void *self, const void *dims, int V, int C, int L, int H, int N,
                  int Nv, const ParamTensor *tensors, int ntensors, size_t nparams, real *params, real *grads) {
    m->arch = a, m->self = self;
    m->dims = xmalloc(a->dims_size);
    memcpy(m->dims, dims, a->dims_size);
    m->V = V, m->C = C, m->L = L, m->H = H, m->N = N, m->Nv = Nv;
    m->tensors = tensors, m->ntensors = ntensors, m->nparams = nparams;
    m->params = params, m->grads = grads;
}

void model_free(Model *m) {
    if (!m) return;
    void *dims = m->dims;
    free(m->probs), free(m->dlogits), free(m->targets), free(m->mask);
    m->arch->free(m); /* frees the architecture's struct and the head */
    free(dims);
}

void model_init(Model *m, gsl_rng *rng, const RunConfig *c) { m->arch->init(m, rng, c); }

const real *model_forward(Model *m, const int *tokens, int B, int T, const ModelFwd *f) {
    static const ModelFwd defaults = {0};
    ModelFwd run = f ? *f : defaults;
    if (run.K <= 0) run.K = 16;
    CHECK(B >= 1 && T >= 1, "model_forward: bad shape B=%d T=%d", B, T);
    for (long i = 0; i < (long)B * T; i++)
        CHECK(tokens[i] >= 0 && tokens[i] < m->V, "token %d at position %ld is outside the vocabulary [0,%d)",
              tokens[i], i, m->V);
    CHECK(!(run.head_rows && run.head_last_only), "model_forward: head_rows and head_last_only exclude each other");
    CHECK(!(run.head_rows && m->l2wrap), "model_forward: head_rows with L2Wrap (which reads every row's logits)");
    m->logits = m->arch->forward(m, tokens, B, T, &run);
    m->B = run.head_last_only ? 0 : B; /* no loss / backward after a head-last-only forward */
    m->T = T;
    m->head_rows = run.head_rows;
    m->nhead = (long)B * T;
    if (run.head_rows) {
        m->nhead = 0;
        for (long i = 0; i < (long)B * T; i++) m->nhead += run.head_rows[i] != 0;
    }
    return m->logits;
}

/* grow the loss buffers to R rows */
static void loss_ensure(Model *m, size_t R) {
    if (R <= m->loss_cap) return;
    free(m->probs), free(m->dlogits), free(m->targets), free(m->mask);
    m->probs = xmalloc(R * m->V * sizeof(real));
    m->dlogits = m->grads ? xmalloc(R * m->V * sizeof(real)) : NULL;
    m->targets = xmalloc(R * sizeof(int));
    m->mask = xmalloc(R);
    m->loss_cap = R;
}

double model_loss(Model *m, const int *targets, const unsigned char *mask, int *pred, long *ncorrect, long *ncount) {
    CHECK(m->logits && m->B > 0, "model_loss needs a full forward first (not a head-last-only one)");
    const size_t R = (size_t)m->B * m->T;
    loss_ensure(m, R);
    if (m->head_rows) { /* the logits hold the flagged rows, packed: so do targets and mask */
        CHECK(!pred, "model_loss: pred needs every row's logits (a forward without head_rows)");
        size_t n = 0;
        for (size_t r = 0; r < R; r++) {
            CHECK((mask[r] != 0) == (m->head_rows[r] != 0),
                  "model_loss: row %zu: the mask differs from the forward's head_rows (they must be equal)", r);
            if (mask[r]) m->targets[n] = targets[r], m->mask[n++] = 1;
        }
        double loss = crossentropy_forward(m->probs, NULL, m->logits, m->targets, m->mask, (int)n, m->V, ncorrect,
                                           ncount);
        m->ncount = *ncount;
        return loss;
    }
    memcpy(m->targets, targets, R * sizeof(int));
    memcpy(m->mask, mask, R);
    double loss = crossentropy_forward(m->probs, pred, m->logits, targets, mask, (int)R, m->V, ncorrect, ncount);
    m->ncount = *ncount;
    return loss;
}

void model_backward(Model *m) { model_backward_part(m, m->ncount, (long)m->B * m->T); }

void model_backward_part(Model *m, long ncount_all, long rows_all) {
    CHECK(m->grads, "model_backward on an inference model (created without gradients)");
    CHECK(m->logits && m->B > 0, "model_backward needs a forward and model_loss first");
    CHECK(ncount_all >= m->ncount && rows_all >= (long)m->B * m->T,
          "model_backward_part: the whole batch (%ld counted of %ld rows) is smaller than this part (%ld of %ld)",
          ncount_all, rows_all, m->ncount, (long)m->B * m->T);
    const int R = (int)m->nhead, V = m->V; /* rows of the loss: packed with head_rows (model_loss) */
    memset(m->dlogits, 0, (size_t)R * V * sizeof(real));
    // fwd: loss = mean over the whole batch's counted positions of CE(logits)
    crossentropy_backward(m->dlogits, m->probs, m->targets, m->mask, R, V, ncount_all, 1);
    if (m->l2wrap) {
        /* L2Wrap (official): every position, counted or not, gets 1e-4 * max_logit / (B*T) added to the
         * gradient of its argmax logit (upstream loss gradient = 1). Normalised by B*T as the original. */
        const real rows = (real)rows_all;
#pragma omp parallel for schedule(static)
        for (int r = 0; r < R; r++) {
            const real *lg = m->logits + (size_t)r * V;
            int am = 0;
            for (int i = 1; i < V; i++)
                if (lg[i] > lg[am]) am = i;
            m->dlogits[(size_t)r * V + am] += (real)1e-4 * lg[am] / rows;
        }
    }
    m->arch->backward(m, m->dlogits);
}

size_t model_state_numel(const Model *m, int B) { return m->arch->state_numel(m, B); }
size_t model_matrix_state_numel(const Model *m) { return m->arch->matrix_state_numel(m); }

const char *model_eig_range(const Model *m) {
    int vals[MODEL_MAX_DIMS];
    model_dims_get(m->arch, m->dims, vals);
    for (int i = 0; i < m->arch->ndims; i++)
        if (!strcmp(m->arch->dim_fields[i].name, "extended")) return vals[i] ? "extended" : "standard";
    return "standard";
}

const ParamTensor *model_find(const Model *m, const char *name) {
    for (int i = 0; i < m->ntensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

void model_dims_get(const ModelArch *a, const void *dims, int *vals) {
    for (int i = 0; i < a->ndims; i++) memcpy(&vals[i], (const char *)dims + a->dim_fields[i].offset, sizeof(int));
}

int model_dims_set(const ModelArch *a, void *dims, const char *const *names, const int *vals, int n, Err *err) {
    memset(dims, 0, a->dims_size);
    int seen[MODEL_MAX_DIMS] = {0};
    for (int k = 0; k < n; k++) {
        int i = 0;
        while (i < a->ndims && strcmp(a->dim_fields[i].name, names[k])) i++;
        if (i == a->ndims) return err_set(err, "%s has no dimension '%s'", a->title, names[k]);
        memcpy((char *)dims + a->dim_fields[i].offset, &vals[k], sizeof(int));
        seen[i] = 1;
    }
    for (int i = 0; i < a->ndims; i++)
        if (!seen[i] && !a->dim_fields[i].optional) /* optional: 0, from the memset */
            return err_set(err, "%s dimension '%s' is missing", a->title, a->dim_fields[i].name);
    return 0;
}

void model_print_info(const Model *m, const char *path, FILE *f) {
    const ModelArch *a = m->arch;
    fprintf(f, "file: %s\narchitecture: %s (model.arch = %s)\n", path, a->title, a->name);
    int vals[MODEL_MAX_DIMS];
    model_dims_get(a, m->dims, vals);
    fprintf(f, "dims:");
    for (int i = 0; i < a->ndims; i++) fprintf(f, " %s=%d", a->dim_fields[i].name, vals[i]);
    fprintf(f, "\nparameters: %zu in %d tensors\n", m->nparams, m->ntensors);
    fprintf(f, "recurrent state per sequence: %zu numbers (matrix state L*H*Nk*Nv = %d*%d*%d*%d = %zu, plus %zu "
               "in vectors)\n", model_state_numel(m, 1), m->L, m->H, m->N, m->Nv, model_matrix_state_numel(m),
            model_state_numel(m, 1) - model_matrix_state_numel(m));
    if (a->ntrace) {
        fprintf(f, "traced per step:");
        for (int i = 0; i < a->ntrace; i++) fprintf(f, " %s", a->trace[i].name);
        fprintf(f, " (+ state, transition eigenvalues)\n");
    }
    fprintf(f, "tensors:\n");
    for (int i = 0; i < m->ntensors; i++) {
        const ParamTensor *t = &m->tensors[i];
        fprintf(f, "  %-32s [", t->name);
        for (int k = 0; k < t->ndim; k++) fprintf(f, "%s%d", k ? ", " : "", t->shape[k]);
        fprintf(f, "]\n");
    }
}

void model_trace_alloc(const Model *m, int B, int T, ModelTrace *tr) {
    const size_t LBT = (size_t)m->L * B * T, C = m->C;
    memset(tr, 0, sizeof *tr);
    tr->state = xmalloc(LBT * m->H * m->Nv * m->N * sizeof(float));
    tr->w = xmalloc(LBT * C * sizeof(float));
    if (m->arch->rank_one) {
        tr->alpha = xmalloc(LBT * C * sizeof(float));
        tr->beta = xmalloc(LBT * C * sizeof(float));
    }
    for (int i = 0; i < m->arch->ntrace; i++)
        tr->q[i] = xmalloc(LBT * (m->arch->trace[i].per_head ? (size_t)m->H : C) * sizeof(float));
}

void model_trace_free(ModelTrace *tr) {
    free(tr->state), free(tr->w), free(tr->alpha), free(tr->beta);
    for (int i = 0; i < MODEL_MAX_TRACE; i++) free(tr->q[i]);
    memset(tr, 0, sizeof *tr);
}
