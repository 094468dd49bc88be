/* deltanet.c -- DeltaNet (fla's delta rule, ../shared/spec/baselines.md) behind the model interface:
 *   S_t = S_{t-1} (I - beta k k^T) + beta v k^T,  o = S_t (q / sqrt(N)),  out = W_o RMSNorm_head(o)
 * with beta = sigmoid(W_b x) per head (extended range: 2 sigmoid, eigenvalue 1 - beta along k in (-1,1)).
 * The model (shared with Gated DeltaNet: skeleton, FFN, q/k/v/beta path, the WKV7 kernel with w = 1,
 * a = beta) is delta_common.c; this file is what makes it DeltaNet: name, dims, keys, traced quantities.
 * Dims: V C L N has_ln0 extended short_conv (the value head is N: state N x N per head). */
#include <stddef.h>

#include "delta_common.h"

#define DN_DIM(f) {#f, offsetof(DeltaDims, f)}
static const DimField dn_dim_fields[] = {
    DN_DIM(V), DN_DIM(C), DN_DIM(L), DN_DIM(N), DN_DIM(has_ln0), DN_DIM(extended), DN_DIM(short_conv),
};

static int dn_dims_from_config(void *dims, const RunConfig *c, int V, Err *err) {
    return delta_dims_from_config(dims, c, V, 0, err);
}
static int dn_dims_from_tensors(void *dims, const TensorFile *tf, const char *path, Err *err) {
    return delta_dims_from_tensors(dims, tf, path, 0, err);
}
static int dn_validate_dims(const void *dims, Err *err) { return delta_validate_dims(dims, 0, err); }
/* DeltaNet files have the beta projection and no gate (Gated DeltaNet's A_log) */
static int dn_recognise(const TensorFile *tf) {
    return tensorfile_find(tf, "blocks.0.attn.b_proj.weight") && !tensorfile_find(tf, "blocks.0.attn.A_log");
}
static ParamTensor *dn_tensor_table(const void *dims, int *n, size_t *np) { return delta_tensor_table(dims, 0, n, np); }
static size_t dn_act_bytes_for(const void *dims, int B, int T, int K, int with_backward) {
    return delta_act_bytes_for(dims, 0, B, T, K, with_backward);
}
static Model *dn_create(const void *dims, int with_grads);

/* Trace: M = I - beta k k^T, i.e. w = 1, alpha = -k, beta_vec = beta k (ModelTrace); own quantity: beta. */
static const TraceQuantity dn_trace[] = {
    {"beta", 1, "beta per head: the delta rule's step size (standard: (0,1); extended: (0,2)); eigenvalue 1 - beta "
                "along k"},
};

const ModelArch model_deltanet = {
    .name = "deltanet",
    .title = "DeltaNet",
    .dims_size = sizeof(DeltaDims),
    .dim_fields = dn_dim_fields,
    .ndims = sizeof dn_dim_fields / sizeof *dn_dim_fields,
    .dims_from_config = dn_dims_from_config,
    .recognise = dn_recognise,
    .dims_from_tensors = dn_dims_from_tensors,
    .ignored_tensors = NULL,
    .tensor_table = dn_tensor_table,
    .act_bytes_for = dn_act_bytes_for,
    .export_note = delta_export_note,
    .validate_dims = dn_validate_dims,
    .create = dn_create,
    .free = delta_free,
    .init = delta_init,
    .forward = delta_forward,
    .backward = delta_backward,
    .state_numel = delta_state_numel,
    .matrix_state_numel = delta_matrix_state_numel,
    .rank_one = 1,
    .trace = dn_trace,
    .ntrace = 1,
    .act_bytes = delta_act_bytes,
    .fwd_flops_per_token = delta_fwd_flops,
};

static Model *dn_create(const void *dims, int with_grads) { return delta_create(&model_deltanet, dims, 0, with_grads); }
