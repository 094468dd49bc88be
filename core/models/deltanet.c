/* deltanet.c -- DeltaNet (fla's delta rule, ../shared/spec/baselines.md) behind the model interface:
 *   S_t = S_{t-1} (I - beta k k^T) + beta v k^T,  o = S_t (q / sqrt(N)),  out = W_o RMSNorm_head(o)
 * with beta = sigmoid(W_b x) per head (extended range: 2 sigmoid, eigenvalue 1 - beta along k in (-1,1)).
 * The model (shared with Gated DeltaNet: skeleton, FFN, q/k/v/beta path, the WKV7 kernel with w = 1,
 * a = beta) is delta_common.c; this file is what makes it DeltaNet: name, dims, keys, traced quantities.
 * Dims: V C L N has_ln0 extended short_conv (the value head is N: state N x N per head). */
#include <stddef.h>

#include "delta_common.h"

#define DN_DIM(f) {.name = #f, .offset = offsetof(DeltaDims, f)}
static const DimField dn_dim_fields[] = {
    DN_DIM(V), DN_DIM(C), DN_DIM(L), DN_DIM(N), DN_DIM(has_ln0), DN_DIM(extended), DN_DIM(short_conv),
};

DELTA_ARCH_FUNCS(dn, 0, model_deltanet)

/* DeltaNet files have the beta projection and no gate (Gated DeltaNet's A_log) */
static int dn_recognise(const TensorFile *tf) {
    return tensorfile_find(tf, "blocks.0.attn.b_proj.weight") && !tensorfile_find(tf, "blocks.0.attn.A_log");
}
/* Trace: M = I - beta k k^T, i.e. w = 1, alpha = -k, beta_vec = beta k (ModelTrace); own quantity: beta. */
static const TraceQuantity dn_trace[] = {
    {"beta", 1, "beta per head: the delta rule's step size (standard: (0,1); extended: (0,2)); eigenvalue 1 - beta "
                "along k"},
};

const ModelArch model_deltanet = {
    .name = "deltanet",
    .title = "DeltaNet",
    .dim_fields = dn_dim_fields,
    .ndims = sizeof dn_dim_fields / sizeof *dn_dim_fields,
    .recognise = dn_recognise,
    .trace = dn_trace,
    .ntrace = 1,
    DELTA_ARCH_SHARED(dn),
};

