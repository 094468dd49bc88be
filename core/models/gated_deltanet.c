/* gated_deltanet.c -- Gated DeltaNet (fla's gated delta rule, ../shared/spec/baselines.md) behind the model
 * interface:
 *   S_t = alpha S_{t-1} (I - beta k k^T) + beta v k^T,  alpha = exp(-exp(A_log) softplus(W_a x + dt_bias)),
 *   o = S_t (q / sqrt(N)),  out = W_o (RMSNorm_head(o) * silu(W_g x))
 * The model (shared with DeltaNet: skeleton, FFN, q/k/v/beta path, the WKV7 kernel with w = alpha,
 * a = alpha beta) is delta_common.c; this file is what makes it Gated DeltaNet: name, dims, keys, traces.
 * Dims: V C L N has_ln0 extended short_conv expand_v (value head Nv = expand_v * N: state N x Nv per head;
 * 1 = like-for-like with the other architectures, fla's default is 2). */
#include <stddef.h>

#include "delta_common.h"

#define GDN_DIM(f) {.name = #f, .offset = offsetof(DeltaDims, f)}
static const DimField gdn_dim_fields[] = {
    GDN_DIM(V),        GDN_DIM(C),          GDN_DIM(L),        GDN_DIM(N),
    GDN_DIM(has_ln0),  GDN_DIM(extended),   GDN_DIM(short_conv), GDN_DIM(expand_v),
};

DELTA_ARCH_FUNCS(gdn, 1, model_gated_deltanet)

/* Gated DeltaNet files have the beta projection and the gate's A_log */
static int gdn_recognise(const TensorFile *tf) {
    return tensorfile_find(tf, "blocks.0.attn.b_proj.weight") && tensorfile_find(tf, "blocks.0.attn.A_log");
}
/* Trace: M = alpha (I - beta k k^T), i.e. w = alpha, alpha_vec = -k, beta_vec = alpha beta k (ModelTrace);
 * own quantities: alpha and beta. */
static const TraceQuantity gdn_trace[] = {
    {"alpha", 1, "alpha per head: the gate (decay of the whole state), in (0,1)"},
    {"beta", 1, "beta per head: the delta rule's step size (standard: (0,1); extended: (0,2)); eigenvalue "
                "alpha (1 - beta) along k"},
};

const ModelArch model_gated_deltanet = {
    .name = "gated_deltanet",
    .title = "Gated DeltaNet",
    .dim_fields = gdn_dim_fields,
    .ndims = sizeof gdn_dim_fields / sizeof *gdn_dim_fields,
    .recognise = gdn_recognise,
    .trace = gdn_trace,
    .ntrace = 2,
    DELTA_ARCH_SHARED(gdn),
};

