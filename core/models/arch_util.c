/* arch_util.c -- pieces the architectures share (see arch_util.h). */
#include "arch_util.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "ops.h"
#include "shortconv.h"

real *arch_walk_add(ParamWalk *wk, const char *name, int ndim, int s0, int s1, int s2, int decay) {
    size_t numel = (size_t)s0 * (ndim > 1 ? s1 : 1) * (ndim > 2 ? s2 : 1);
    if (wk->table) {
        ParamTensor *p = &wk->table[wk->n];
        snprintf(p->name, sizeof p->name, "%s", name);
        p->ndim = ndim;
        p->shape[0] = s0, p->shape[1] = ndim > 1 ? s1 : 0, p->shape[2] = ndim > 2 ? s2 : 0;
        p->offset = wk->off;
        p->numel = numel;
        p->decay = decay;
        p->lr_mult = 1;
    }
    real *ptr = wk->base ? wk->base + wk->off : NULL;
    wk->off += numel;
    wk->n++;
    return ptr;
}

real *arch_walk_addf(ParamWalk *wk, int ndim, int s0, int s1, int s2, int decay, const char *fmt, ...) {
    char nm[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(nm, sizeof nm, fmt, ap);
    va_end(ap);
    return arch_walk_add(wk, nm, ndim, s0, s1, s2, decay);
}

real *arch_walk_conv(ParamWalk *wk, int C, int K, const char *fmt, int l) {
    char nm[64];
    snprintf(nm, sizeof nm, fmt, l);
    return arch_walk_add(wk, nm, 2, C, K, 0, 0);
}

void arch_layout_rkv_conv(ParamWalk *wk, int l, int C, int K, real **r, real **k, real **v) {
    *r = arch_walk_conv(wk, C, K, "blocks.%d.att.r_conv.weight", l);
    *k = arch_walk_conv(wk, C, K, "blocks.%d.att.k_conv.weight", l);
    *v = arch_walk_conv(wk, C, K, "blocks.%d.att.v_conv.weight", l);
}

void arch_init_rkv_conv(real *r, real *k, real *v, int C, int K, gsl_rng *rng) {
    shortconv_init(r, C, K, rng);
    shortconv_init(k, C, K, rng);
    shortconv_init(v, C, K, rng);
}

size_t arch_rkv_conv_state_numel(int C, int B, int K) {
    const int Cs[3] = {C, C, C};
    return shortconv3_numel(Cs, B, K);
}

ParamTensor *arch_table_of(ArchLayoutFn layout, const void *shape, int *ntensors, size_t *nparams) {
    ParamWalk wk = {0};
    layout(shape, &wk);
    ParamWalk wt = {.table = xcalloc(wk.n, sizeof(ParamTensor))};
    layout(shape, &wt);
    *ntensors = wk.n;
    *nparams = wk.off;
    return wt.table;
}

void arch_buf_reserve(ArchBuf *b, size_t numel, size_t rows) {
    if (numel > b->cap || !b->buf) {
        free(b->buf);
        b->buf = xmalloc((numel ? numel : 1) * sizeof(real));
        b->cap = numel;
    }
    if (rows > b->rows_cap || !b->tokens) {
        free(b->tokens);
        b->tokens = xmalloc((rows ? rows : 1) * sizeof(int));
        b->rows_cap = rows;
    }
}

void arch_buf_free(ArchBuf *b) {
    free(b->buf), free(b->tokens);
    *b = (ArchBuf){0};
}

size_t arch_buf_bytes(const ArchBuf *b) { return b->cap * sizeof(real) + b->rows_cap * sizeof(int); }

real *arch_carve(size_t *off, real *base, size_t n) {
    real *p = base ? base + *off : NULL;
    *off += n;
    return p;
}

/* The Q of a Gaussian matrix with R's diagonal made positive (torch's orthogonal_), computed by modified
 * Gram-Schmidt, applied twice ("twice is enough"), on the k = min(rows,cols) columns of length
 * n = max(rows,cols); this gives exactly that Q without forming an n x n matrix (the head of a 65536-token
 * model would need 32 GiB). */
void arch_orthogonal_init(real *W, int rows, int cols, double gain, gsl_rng *rng) {
    int n = rows > cols ? rows : cols, k = rows > cols ? cols : rows;
    double *Q = xmalloc((size_t)n * k * sizeof(double)); /* column c at Q + c*n */
    for (size_t i = 0; i < (size_t)n * k; i++) Q[i] = gsl_ran_gaussian(rng, 1.0);
    for (int c = 0; c < k; c++) {
        double *qc = Q + (size_t)c * n;
        for (int pass = 0; pass < 2; pass++)
            for (int p = 0; p < c; p++) {
                const double *qp = Q + (size_t)p * n;
                double dot = 0;
                for (int i = 0; i < n; i++) dot += qp[i] * qc[i];
                for (int i = 0; i < n; i++) qc[i] -= dot * qp[i];
            }
        double nr = 0;
        for (int i = 0; i < n; i++) nr += qc[i] * qc[i];
        nr = sqrt(nr);
        CHECK(nr > 0, "orthogonal init: degenerate random matrix (%d x %d)", rows, cols);
        for (int i = 0; i < n; i++) qc[i] /= nr;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++) {
            double q = Q[(size_t)j * n + i] * gain;
            if (rows >= cols) W[(size_t)i * cols + j] = (real)q; // W (n,k)
            else W[(size_t)j * cols + i] = (real)q;              // W = Q^T (k,n)
        }
    free(Q);
}

void arch_copy_last_token(real *dst, const real *x, int B, int T, int C) {
    for (int b = 0; b < B; b++) memcpy(dst + (size_t)b * C, x + ((size_t)b * T + T - 1) * C, C * sizeof(real));
}

void arch_to_float(float *dst, const real *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = (float)src[i];
}

/* ---- the skeleton: embedding and head ---------------------------------------------------------- */
void arch_layout_first(ParamWalk *wk, int V, int C, int has_ln0, real **emb, real **ln0_w, real **ln0_b) {
    *emb = arch_walk_add(wk, "emb.weight", 2, V, C, 0, 1);
    *ln0_w = *ln0_b = NULL;
    if (has_ln0) {
        *ln0_w = arch_walk_add(wk, "blocks.0.ln0.weight", 1, C, 0, 0, 0);
        *ln0_b = arch_walk_add(wk, "blocks.0.ln0.bias", 1, C, 0, 0, 0);
    }
}

void arch_layout_last(ParamWalk *wk, int V, int C, int head_bias, real **lnout_w, real **lnout_b, real **head,
                      real **head_b) {
    *lnout_w = arch_walk_add(wk, "ln_out.weight", 1, C, 0, 0, 0);
    *lnout_b = arch_walk_add(wk, "ln_out.bias", 1, C, 0, 0, 0);
    *head = arch_walk_add(wk, "head.weight", 2, V, C, 0, 1);
    *head_b = head_bias ? arch_walk_add(wk, "head.bias", 1, V, 0, 0, 0) : NULL;
}

void arch_layout_block_norms(ParamWalk *wk, int l, int C, real **ln1_w, real **ln1_b, real **ln2_w,
                             real **ln2_b) {
    *ln1_w = arch_walk_addf(wk, 1, C, 0, 0, 0, "blocks.%d.ln1.weight", l);
    *ln1_b = arch_walk_addf(wk, 1, C, 0, 0, 0, "blocks.%d.ln1.bias", l);
    *ln2_w = arch_walk_addf(wk, 1, C, 0, 0, 0, "blocks.%d.ln2.weight", l);
    *ln2_b = arch_walk_addf(wk, 1, C, 0, 0, 0, "blocks.%d.ln2.bias", l);
}

void arch_init_first(const ArchEnds *w, int V, int C, gsl_rng *rng) {
    for (size_t i = 0; i < (size_t)V * C; i++) w->emb[i] = (real)gsl_ran_flat(rng, -1e-4, 1e-4);
    if (w->ln0_w)
        for (int c = 0; c < C; c++) w->ln0_w[c] = 1;
}

void arch_init_last(const ArchEnds *w, int V, int C, gsl_rng *rng) {
    for (int c = 0; c < C; c++) w->lnout_w[c] = 1;
    arch_orthogonal_init(w->head, V, C, V > C ? 0.5 * sqrt((double)V / C) : 0.5, rng);
}

void arch_ends_carve(ArchEndActs *e, size_t *off, real *base, size_t R, int C, int V) {
    e->emb = arch_carve(off, base, R * C);
    e->ln0_m = arch_carve(off, base, R), e->ln0_r = arch_carve(off, base, R);
    e->x_fin = arch_carve(off, base, R * C), e->lnf = arch_carve(off, base, R * C);
    e->lnf_m = arch_carve(off, base, R), e->lnf_r = arch_carve(off, base, R);
    e->logits = arch_carve(off, base, R * V);
}

void arch_ends_carve_grad(ArchEndActs *e, size_t *off, real *base, size_t R, int C, int with_backward) {
    e->dx = e->dlnf = e->demb = NULL;
    if (!with_backward) return;
    e->dx = arch_carve(off, base, R * C), e->dlnf = arch_carve(off, base, R * C);
    e->demb = arch_carve(off, base, R * C);
}

void arch_embed_forward(real *x0, ArchEndActs *e, const int *tokens, const ArchEnds *w, int R, int C) {
    // x0 = emb[token]; x0 = LayerNorm(x0; ln0) when present
    if (w->ln0_w) {
        embedding_forward(e->emb, tokens, w->emb, R, C);
        norm_forward(x0, e->ln0_m, e->ln0_r, e->emb, w->ln0_w, w->ln0_b, R, 1, C, LN_EPS);
    } else {
        embedding_forward(x0, tokens, w->emb, R, C);
    }
}

void arch_embed_backward(const ArchEnds *g, ArchEndActs *e, const real *dx0, const int *tokens, const ArchEnds *w,
                         int R, int C, int V) {
    // fwd: x0 = LN(emb[tokens]; ln0) or emb[tokens]
    if (w->ln0_w) {
        memset(e->demb, 0, (size_t)R * C * sizeof(real));
        norm_backward(e->demb, g->ln0_w, g->ln0_b, dx0, e->emb, e->ln0_m, e->ln0_r, w->ln0_w, R, 1, C);
        embedding_backward(g->emb, e->demb, tokens, R, C, V);
    } else {
        embedding_backward(g->emb, dx0, tokens, R, C, V);
    }
}

const real *arch_head_forward(ArchEndActs *e, const ArchEnds *w, int B, int T, int C, int V, int last_only,
                              const unsigned char *rows) {
    CHECK(!(last_only && rows), "arch_head_forward: head rows and last-only exclude each other");
    e->rows = rows, e->nrows = B * T;
    if (rows) {
        const int R = B * T;
        norm_forward(e->lnf, e->lnf_m, e->lnf_r, e->x_fin, w->lnout_w, w->lnout_b, R, 1, C, LN_EPS);
        int n = 0; /* pack the flagged rows of lnf to the front, in order (row n <= r: nothing is overwritten) */
        for (int r = 0; r < R; r++)
            if (rows[r]) {
                if (n != r) memcpy(e->lnf + (size_t)n * C, e->lnf + (size_t)r * C, (size_t)C * sizeof(real));
                n++;
            }
        e->nrows = n;
        if (n) linear_forward(e->logits, e->lnf, w->head, w->head_b, n, C, V);
        return e->logits;
    }
    if (last_only) { /* only the last token of each sequence: rows b*T + T-1 */
        for (int b = 0; b < B; b++) {
            const size_t r = (size_t)b * T + T - 1;
            norm_forward(e->lnf + r * C, e->lnf_m + r, e->lnf_r + r, e->x_fin + r * C, w->lnout_w, w->lnout_b, 1, 1,
                         C, LN_EPS);
            linear_forward(e->logits + r * V, e->lnf + r * C, w->head, w->head_b, 1, C, V);
        }
        return e->logits;
    }
    const int R = B * T;
    norm_forward(e->lnf, e->lnf_m, e->lnf_r, e->x_fin, w->lnout_w, w->lnout_b, R, 1, C, LN_EPS);
    linear_forward(e->logits, e->lnf, w->head, w->head_b, R, C, V);
    return e->logits;
}

void arch_head_backward(ArchEndActs *e, const ArchEnds *g, const real *dlogits, const ArchEnds *w, int R, int C,
                        int V) {
    // fwd: logits = lnf head^T (+ head_b) ; lnf = LN(x_fin; ln_out)
    memset(e->dlnf, 0, (size_t)R * C * sizeof(real));
    if (e->rows) { /* packed: the nrows flagged rows; their dlnf unpacked back to their rows, the rest 0 */
        const int n = e->nrows;
        if (n) linear_backward(e->dlnf, g->head, g->head_b, dlogits, e->lnf, w->head, n, C, V);
        for (int r = R - 1, k = n - 1; r >= 0 && k >= 0; r--) /* row r >= k: a packed row is moved once */
            if (e->rows[r]) {
                if (k != r) memcpy(e->dlnf + (size_t)r * C, e->dlnf + (size_t)k * C, (size_t)C * sizeof(real));
                k--;
            }
        for (int r = 0; r < R; r++)
            if (!e->rows[r]) memset(e->dlnf + (size_t)r * C, 0, (size_t)C * sizeof(real));
    } else {
        linear_backward(e->dlnf, g->head, g->head_b, dlogits, e->lnf, w->head, R, C, V);
    }
    memset(e->dx, 0, (size_t)R * C * sizeof(real));
    norm_backward(e->dx, g->lnout_w, g->lnout_b, e->dlnf, e->x_fin, e->lnf_m, e->lnf_r, w->lnout_w, R, 1, C);
}

/* ---- the skeleton: the FFN ------------------------------------------------------------------------ */
void arch_layout_ffn(ParamWalk *wk, int l, int C, int F, int bias_k, int bias_v, real **x_k, real **Wk, real **bk,
                     real **Wv, real **bv) {
    *x_k = arch_walk_addf(wk, 3, 1, 1, C, 0, "blocks.%d.ffn.x_k", l);
    *Wk = arch_walk_addf(wk, 2, F, C, 0, 1, "blocks.%d.ffn.key.weight", l);
    *bk = bias_k ? arch_walk_addf(wk, 1, F, 0, 0, 0, "blocks.%d.ffn.key.bias", l) : NULL;
    *Wv = arch_walk_addf(wk, 2, C, F, 0, 1, "blocks.%d.ffn.value.weight", l);
    *bv = bias_v ? arch_walk_addf(wk, 1, C, 0, 0, 0, "blocks.%d.ffn.value.bias", l) : NULL;
}

void arch_init_ffn_mix(real *x_k, int l, int L, int C) {
    const double r1 = 1.0 - (double)l / L;
    for (int c = 0; c < C; c++) x_k[c] = (real)(1 - pow((double)c / C, pow(r1, 4)));
}

void arch_ffn_carve(ArchFfnActs *a, size_t *off, real *base, size_t R, int C, int F) {
    a->x_mid = arch_carve(off, base, R * C), a->ln2 = arch_carve(off, base, R * C);
    a->ln2_m = arch_carve(off, base, R), a->ln2_r = arch_carve(off, base, R);
    a->prev2 = arch_carve(off, base, R * C), a->fxk = arch_carve(off, base, R * C);
    a->fk = arch_carve(off, base, R * F), a->fr = arch_carve(off, base, R * F);
}

void arch_ffn_forward(real *x_next, ArchFfnActs *a, const ArchFfn *w, const real *shift_in, real *shift_out, int B,
                      int T, int C, int F) {
    const int R = B * T;
    norm_forward(a->ln2, a->ln2_m, a->ln2_r, a->x_mid, w->ln2_w, w->ln2_b, R, 1, C, LN_EPS);
    token_shift_forward(a->prev2, a->ln2, shift_in, B, T, C);
    mix_forward(a->fxk, a->ln2, a->prev2, w->x_k, R, C);
    linear_forward(a->fk, a->fxk, w->Wk, w->bk, R, C, F);
    relu2_forward(a->fr, a->fk, R * F);
    linear_forward(x_next, a->fr, w->Wv, w->bv, R, F, C);
    add_into(x_next, a->x_mid, (size_t)R * C);
    if (shift_out) arch_copy_last_token(shift_out, a->ln2, B, T, C);
}

void arch_ffn_backward(ArchFfnActs *g, const ArchFfn *gw, const real *dx_next, const ArchFfnActs *a, const ArchFfn *w,
                       int B, int T, int C, int F) {
    const int R = B * T;
    // fwd: x_next = x_mid + Wv relu(Wk fxk)^2 ; fxk = mix(ln2, prev2) ; prev2 = shift(ln2) ; ln2 = LN(x_mid)
    memcpy(g->x_mid, dx_next, (size_t)R * C * sizeof(real));
    linear_backward(g->fr, gw->Wv, gw->bv, dx_next, a->fr, w->Wv, R, F, C);
    relu2_backward(g->fk, g->fr, a->fk, R * F);
    linear_backward(g->fxk, gw->Wk, gw->bk, g->fk, a->fxk, w->Wk, R, C, F);
    mix_backward(g->ln2, g->prev2, gw->x_k, g->fxk, a->ln2, a->prev2, w->x_k, R, C);
    token_shift_backward(g->ln2, NULL, g->prev2, B, T, C);
    norm_backward(g->x_mid, gw->ln2_w, gw->ln2_b, g->ln2, a->x_mid, a->ln2_m, a->ln2_r, w->ln2_w, R, 1, C);
}
