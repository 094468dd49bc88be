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

#define GDN_DIM(f) {#f, offsetof(DeltaDims, f)}
static const DimField gdn_dim_fields[] = {
    GDN_DIM(V),        GDN_DIM(C),          GDN_DIM(L),        GDN_DIM(N),
    GDN_DIM(has_ln0),  GDN_DIM(extended),   GDN_DIM(short_conv), GDN_DIM(expand_v),
};

static int gdn_dims_from_config(void *dims, const RunConfig *c, int V, Err *err) {
    return delta_dims_from_config(dims, c, V, 1, err);
}
static int gdn_dims_from_tensors(void *dims, const TensorFile *tf, const char *path, Err *err) {
    return delta_dims_from_tensors(dims, tf, path, 1, err);
}
static int gdn_validate_dims(const void *dims, Err *err) { return delta_validate_dims(dims, 1, err); }
/* Gated DeltaNet files have the beta projection and the gate's A_log */
static int gdn_recognise(const TensorFile *tf) {
    return tensorfile_find(tf, "blocks.0.attn.b_proj.weight") && tensorfile_find(tf, "blocks.0.attn.A_log");
}
static ParamTensor *gdn_tensor_table(const void *dims, int *n, size_t *np) {
    return delta_tensor_table(dims, 1, n, np);
}
static size_t gdn_act_bytes_for(const void *dims, int B, int T, int K, int with_backward) {
    return delta_act_bytes_for(dims, 1, B, T, K, with_backward);
}
static Model *gdn_create(const void *dims, int with_grads);

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
    .dims_size = sizeof(DeltaDims),
    .dim_fields = gdn_dim_fields,
    .ndims = sizeof gdn_dim_fields / sizeof *gdn_dim_fields,
    .dims_from_config = gdn_dims_from_config,
    .recognise = gdn_recognise,
    .dims_from_tensors = gdn_dims_from_tensors,
    .ignored_tensors = NULL,
    .tensor_table = gdn_tensor_table,
    .act_bytes_for = gdn_act_bytes_for,
    .export_note = delta_export_note,
    .validate_dims = gdn_validate_dims,
    .create = gdn_create,
    .free = delta_free,
    .init = delta_init,
    .forward = delta_forward,
    .backward = delta_backward,
    .state_numel = delta_state_numel,
    .matrix_state_numel = delta_matrix_state_numel,
    .rank_one = 1,
    .trace = gdn_trace,
    .ntrace = 2,
    .act_bytes = delta_act_bytes,
    .fwd_flops_per_token = delta_fwd_flops,
};

static Model *gdn_create(const void *dims, int with_grads) {
    return delta_create(&model_gated_deltanet, dims, 1, with_grads);
}
