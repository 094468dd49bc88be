/* cuda_kernels.cu -- row-wise and elementwise kernels of the RWKV-7 inference forward (see
 * cuda_kernels.cuh for what each computes; the math is ../shared/spec/rwkv7.md, the CPU twins are in
 * core/ops.c). Row kernels run one block of ROW_THREADS per token row; per-head kernels give each warp
 * one head at a time (lane j holds channels j, j+32, ...). All statistics are fp32, two-pass. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "cuda_kernels.cuh"

#define ROW_THREADS 256
#define EW_THREADS 256

static unsigned ew_blocks(long n) {
    long b = (n + EW_THREADS - 1) / EW_THREADS;
    if (b > 65536L * 8) b = 65536L * 8; /* grid-stride beyond this */
    return (unsigned)(b < 1 ? 1 : b);
}

/* four storage values written as one access */
template <typename T>
struct alignas(4 * sizeof(T)) Vec4 {
    T x[4];
};
template <typename T>
__device__ __forceinline__ void store4(T *p, float a, float b, float c, float d) {
    Vec4<T> v;
    v.x[0] = from_f<T>(a), v.x[1] = from_f<T>(b), v.x[2] = from_f<T>(c), v.x[3] = from_f<T>(d);
    *reinterpret_cast<Vec4<T> *>(p) = v;
}
__device__ __forceinline__ float4 ld4(const float *p) { return *reinterpret_cast<const float4 *>(p); }

/* mean and 1/sqrt(var + eps) of x[0..C) over the block (biased variance, two passes; C % 4 == 0, x 16-byte
 * aligned: every row here is C = H*N floats with N >= 16) */
__device__ __forceinline__ void row_stats(const float *__restrict__ x, int C, float eps, float &mean, float &rstd) {
    float s = 0.f;
    for (int c = 4 * threadIdx.x; c < C; c += 4 * blockDim.x) {
        const float4 v = ld4(x + c);
        s += (v.x + v.y) + (v.z + v.w);
    }
    mean = block_sum(s) / C;
    float q = 0.f;
    for (int c = 4 * threadIdx.x; c < C; c += 4 * blockDim.x) {
        const float4 v = ld4(x + c);
        const float a = v.x - mean, b = v.y - mean, d = v.z - mean, e = v.w - mean;
        q += (a * a + b * b) + (d * d + e * e);
    }
    rstd = 1.f / sqrtf(block_sum(q) / C + eps);
}

/* ---- embedding (+ ln0) ------------------------------------------------------------------------ */
template <typename T>
__global__ void k_embed(float *__restrict__ x, const int *__restrict__ tok, const T *__restrict__ emb,
                        const float *__restrict__ lw, const float *__restrict__ lb, int C) {
    const long r = blockIdx.x;
    const T *e = emb + (size_t)tok[r] * C;
    float *o = x + (size_t)r * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) o[c] = to_f(e[c]);
    if (!lw) return;
    __syncthreads(); /* row_stats reads what other threads wrote */
    float m, s;
    row_stats(o, C, 1e-5f, m, s);
    for (int c = threadIdx.x; c < C; c += blockDim.x) o[c] = (o[c] - m) * s * lw[c] + lb[c];
}
template <typename T>
void embed_launch(cudaStream_t st, float *x, const int *tok, const T *emb, const float *lw, const float *lb, int R, int C) {
    k_embed<T><<<R, ROW_THREADS, 0, st>>>(x, tok, emb, lw, lb, C);
    KERNEL_CHECK();
}

/* ---- token shift + mixes ---------------------------------------------------------------------- */
template <typename T, int NM>
__global__ void k_shift_mix(const float *__restrict__ x, const float *__restrict__ lw, const float *__restrict__ lb,
                            const int *__restrict__ row_seq, const int *__restrict__ seq_off,
                            const float *__restrict__ st_in, float *__restrict__ st_out, MixOut mo, int C) {
    const long r = blockIdx.x;
    const int b = row_seq[r];
    const bool first = r == seq_off[b], last = r == seq_off[b + 1] - 1;
    const float *xr = x + (size_t)r * C, *xp = first ? xr : xr - C;
    float m, s, pm = 0.f, ps = 0.f;
    row_stats(xr, C, 1e-5f, m, s);
    if (!first) row_stats(xp, C, 1e-5f, pm, ps); /* block-uniform branch */
    const float *pin = first && st_in ? st_in + (size_t)b * C : nullptr;
    for (int c = 4 * threadIdx.x; c < C; c += 4 * blockDim.x) {
        const float4 x4 = ld4(xr + c), w4 = ld4(lw + c), b4 = ld4(lb + c);
        const float xn[4] = {(x4.x - m) * s * w4.x + b4.x, (x4.y - m) * s * w4.y + b4.y, (x4.z - m) * s * w4.z + b4.z,
                             (x4.w - m) * s * w4.w + b4.w};
        float pv[4] = {0.f, 0.f, 0.f, 0.f};
        if (!first) {
            const float4 p4 = ld4(xp + c);
            pv[0] = (p4.x - pm) * ps * w4.x + b4.x, pv[1] = (p4.y - pm) * ps * w4.y + b4.y;
            pv[2] = (p4.z - pm) * ps * w4.z + b4.z, pv[3] = (p4.w - pm) * ps * w4.w + b4.w;
        } else if (pin) {
            const float4 p4 = ld4(pin + c);
            pv[0] = p4.x, pv[1] = p4.y, pv[2] = p4.z, pv[3] = p4.w;
        }
#pragma unroll
        for (int i = 0; i < NM; i++) {
            const float4 mu = ld4(mo.mu[i] + c);
            store4((T *)mo.out[i] + (size_t)r * C + c, xn[0] + (pv[0] - xn[0]) * mu.x, xn[1] + (pv[1] - xn[1]) * mu.y,
                   xn[2] + (pv[2] - xn[2]) * mu.z, xn[3] + (pv[3] - xn[3]) * mu.w);
        }
        if (last && st_out) *reinterpret_cast<float4 *>(st_out + (size_t)b * C + c) = make_float4(xn[0], xn[1], xn[2], xn[3]);
    }
}
template <typename T>
void shift_mix_launch(cudaStream_t st, const float *x, const float *lw, const float *lb, const int *row_seq,
                      const int *seq_off, const float *st_in, float *st_out, const MixOut &mo, int R, int C) {
    if (mo.n == 6) k_shift_mix<T, 6><<<R, ROW_THREADS, 0, st>>>(x, lw, lb, row_seq, seq_off, st_in, st_out, mo, C);
    else if (mo.n == 1) k_shift_mix<T, 1><<<R, ROW_THREADS, 0, st>>>(x, lw, lb, row_seq, seq_off, st_in, st_out, mo, C);
    else {
        fprintf(stderr, "rwkvlab: shift_mix_launch: %d mixes (only 1 and 6 are built)\n", mo.n);
        exit(EXIT_FAILURE);
    }
    KERNEL_CHECK();
}

/* ---- LoRA hidden activations ------------------------------------------------------------------ */
template <typename T>
__global__ void k_lora_act(T *__restrict__ out, const float *__restrict__ in, long n, int ld, int width, int Dw, int Da,
                           int Dg) {
    for (long q = blockIdx.x * (long)blockDim.x + threadIdx.x; q < n; q += (long)gridDim.x * blockDim.x) {
        const long row = q / width;
        const int col = (int)(q - row * width);
        const size_t i = (size_t)row * ld + col;
        float v = in[i];
        if (col < Dw) v = tanhf(v);
        else if (col >= Dw + Da && col < Dw + Da + Dg) v = sigmoidf_(v);
        out[i] = from_f<T>(v);
    }
}
template <typename T>
void lora_act_launch(cudaStream_t st, T *out, const float *in, int R, int ld, int Dw, int Da, int Dg, int Dv_used) {
    const int width = Dw + Da + Dg + Dv_used;
    const long n = (long)R * width;
    k_lora_act<T><<<ew_blocks(n), EW_THREADS, 0, st>>>(out, in, n, ld, width, Dw, Da, Dg);
    KERNEL_CHECK();
}

/* ---- WKV inputs ------------------------------------------------------------------------------- */
/* one warp per (row, head); lane handles VEC consecutive channels per step q (float2 accesses for N = 64) */
template <int N>
__global__ void k_wkv_prep(float *__restrict__ w, float *__restrict__ a, float *__restrict__ k, float *__restrict__ kk,
                           float *__restrict__ v, float *__restrict__ vfirst, const float *__restrict__ vl,
                           const float *__restrict__ w0, const float *__restrict__ a0, const float *__restrict__ v0,
                           const float *__restrict__ k_k, const float *__restrict__ k_a, int C, int H, int extended,
                           float *__restrict__ a_out) {
    constexpr int VEC = N >= 64 ? 2 : 1, NQ = (N + 32 * VEC - 1) / (32 * VEC);
    const long r = blockIdx.x;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarp = blockDim.x >> 5;
    for (int h = warp; h < H; h += nwarp) {
        float u[NQ][VEC], an[NQ][VEC];
        float ss = 0.f;
#pragma unroll
        for (int q = 0; q < NQ; q++) {
            const int j0 = (lane + 32 * q) * VEC;
#pragma unroll
            for (int e = 0; e < VEC; e++) u[q][e] = 0.f, an[q][e] = 0.f;
            if (j0 < N) {
                const int c0 = h * N + j0;
                const size_t i0 = (size_t)r * C + c0;
                float wv[VEC], av[VEC], kv[VEC], vv[VEC], vlv[VEC], vf[VEC];
                if (VEC == 2) {
                    const float2 w2 = *(const float2 *)(w + i0), a2 = *(const float2 *)(a + i0);
                    const float2 k2 = *(const float2 *)(k + i0), v2 = *(const float2 *)(v + i0);
                    wv[0] = w2.x, wv[VEC - 1] = w2.y, av[0] = a2.x, av[VEC - 1] = a2.y;
                    kv[0] = k2.x, kv[VEC - 1] = k2.y, vv[0] = v2.x, vv[VEC - 1] = v2.y;
                    if (vl) {
                        const float2 l2 = *(const float2 *)(vl + i0), f2 = *(const float2 *)(vfirst + i0);
                        vlv[0] = l2.x, vlv[VEC - 1] = l2.y, vf[0] = f2.x, vf[VEC - 1] = f2.y;
                    }
                } else {
                    wv[0] = w[i0], av[0] = a[i0], kv[0] = k[i0], vv[0] = v[i0];
                    if (vl) vlv[0] = vl[i0], vf[0] = vfirst[i0];
                }
                float wo[VEC], ko[VEC], vo[VEC];
#pragma unroll
                for (int e = 0; e < VEC; e++) {
                    const int c = c0 + e;
                    const float sig = sigmoidf_(w0[c] + wv[e]);
                    const float wd = expf(-0.60653065971263342f * sig); /* exp(-e^-0.5 sigmoid(z)) */
                    wo[e] = wd;
                    const float as = sigmoidf_(a0[c] + av[e]);
                    an[q][e] = extended ? 2.f * wd * as : as;
                    if (a_out) a_out[i0 + e] = an[q][e];
                    u[q][e] = kv[e] * k_k[c];
                    ss += u[q][e] * u[q][e];
                    ko[e] = kv[e] * (1.f + (an[q][e] - 1.f) * k_a[c]);
                    vo[e] = vl ? vv[e] + (vf[e] - vv[e]) * sigmoidf_(v0[c] + vlv[e]) : vv[e];
                }
                if (VEC == 2) {
                    *(float2 *)(w + i0) = make_float2(wo[0], wo[VEC - 1]);
                    *(float2 *)(k + i0) = make_float2(ko[0], ko[VEC - 1]);
                    *(float2 *)(vl ? v + i0 : vfirst + i0) = make_float2(vo[0], vo[VEC - 1]);
                } else {
                    w[i0] = wo[0], k[i0] = ko[0];
                    (vl ? v : vfirst)[i0] = vo[0];
                }
            }
        }
        const float nr = sqrtf(warp_sum(ss));
        const float den = nr > 1e-12f ? nr : 1e-12f;
#pragma unroll
        for (int q = 0; q < NQ; q++) {
            const int j0 = (lane + 32 * q) * VEC;
            if (j0 < N) {
                const size_t i0 = (size_t)r * C + h * N + j0;
                if (VEC == 2) {
                    const float k0 = u[q][0] / den, k1 = u[q][VEC - 1] / den;
                    *(float2 *)(kk + i0) = make_float2(k0, k1);
                    *(float2 *)(a + i0) = make_float2(k0 * an[q][0], k1 * an[q][VEC - 1]);
                } else {
                    const float kn = u[q][0] / den;
                    kk[i0] = kn;
                    a[i0] = kn * an[q][0];
                }
            }
        }
    }
}
void wkv_prep_launch(cudaStream_t st, int N, float *w, float *a, float *k, float *kk, float *v, float *vfirst,
                     const float *vl, const float *w0, const float *a0, const float *v0, const float *k_k,
                     const float *k_a, int R, int C, int H, int extended, float *a_out) {
#define PREP(NN) k_wkv_prep<NN><<<R, ROW_THREADS, 0, st>>>(w, a, k, kk, v, vfirst, vl, w0, a0, v0, k_k, k_a, C, H, extended, a_out)
    if (N == 16) PREP(16);
    else if (N == 32) PREP(32);
    else if (N == 64) PREP(64);
    else {
        fprintf(stderr, "rwkvlab: wkv_prep_launch: head size %d not built\n", N);
        exit(EXIT_FAILURE);
    }
#undef PREP
    KERNEL_CHECK();
}

/* ---- GroupNorm + bonus + gate ----------------------------------------------------------------- */
template <typename T, int N>
__global__ void k_gn_bonus_gate(T *__restrict__ out, const float *__restrict__ y, const float *__restrict__ r,
                                const float *__restrict__ k, const float *__restrict__ v, const float *__restrict__ g,
                                const float *__restrict__ lw, const float *__restrict__ lb,
                                const float *__restrict__ r_k, int C, int H) {
    constexpr int NQ = (N + 31) / 32;
    const long row = blockIdx.x;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarp = blockDim.x >> 5;
    for (int h = warp; h < H; h += nwarp) {
        float yv[NQ];
        float s = 0.f, bs = 0.f;
#pragma unroll
        for (int q = 0; q < NQ; q++) {
            const int j = lane + 32 * q;
            yv[q] = 0.f;
            if (j < N) {
                const int c = h * N + j;
                const size_t i = (size_t)row * C + c;
                yv[q] = y[i];
                s += yv[q];
                bs += r[i] * k[i] * r_k[c];
            }
        }
        const float mean = warp_sum(s) / N, bonus = warp_sum(bs);
        float q2 = 0.f;
#pragma unroll
        for (int q = 0; q < NQ; q++) {
            const int j = lane + 32 * q;
            if (j < N) q2 += (yv[q] - mean) * (yv[q] - mean);
        }
        const float rs = 1.f / sqrtf(warp_sum(q2) / N + 64e-5f);
#pragma unroll
        for (int q = 0; q < NQ; q++) {
            const int j = lane + 32 * q;
            if (j < N) {
                const int c = h * N + j;
                const size_t i = (size_t)row * C + c;
                out[i] = from_f<T>(((yv[q] - mean) * rs * lw[c] + lb[c] + bonus * v[i]) * g[i]);
            }
        }
    }
}
template <typename T>
void gn_bonus_gate_launch(cudaStream_t st, int N, T *out, const float *y, const float *r, const float *k,
                          const float *v, const float *g, const float *lw, const float *lb, const float *r_k, int R,
                          int C, int H) {
#define GN(NN) k_gn_bonus_gate<T, NN><<<R, ROW_THREADS, 0, st>>>(out, y, r, k, v, g, lw, lb, r_k, C, H)
    if (N == 16) GN(16);
    else if (N == 32) GN(32);
    else if (N == 64) GN(64);
    else {
        fprintf(stderr, "rwkvlab: gn_bonus_gate_launch: head size %d not built\n", N);
        exit(EXIT_FAILURE);
    }
#undef GN
    KERNEL_CHECK();
}

/* ---- elementwise ------------------------------------------------------------------------------ */
/* four elements per thread (F % 4 == 0: F = 4C) */
template <typename T>
__global__ void k_relu2(T *__restrict__ out, const float *__restrict__ in, const float *__restrict__ bias, long n4, int F4) {
    for (long q = blockIdx.x * (long)blockDim.x + threadIdx.x; q < n4; q += (long)gridDim.x * blockDim.x) {
        float4 v = ld4(in + 4 * q);
        if (bias) {
            const float4 b = ld4(bias + 4 * (q % F4));
            v.x += b.x, v.y += b.y, v.z += b.z, v.w += b.w;
        }
        v.x = fmaxf(v.x, 0.f), v.y = fmaxf(v.y, 0.f), v.z = fmaxf(v.z, 0.f), v.w = fmaxf(v.w, 0.f);
        store4(out + 4 * q, v.x * v.x, v.y * v.y, v.z * v.z, v.w * v.w);
    }
}
template <typename T>
void relu2_launch(cudaStream_t st, T *out, const float *in, const float *bias, long R, int F) {
    const long n4 = R * F / 4;
    k_relu2<T><<<ew_blocks(n4), EW_THREADS, 0, st>>>(out, in, bias, n4, F / 4);
    KERNEL_CHECK();
}

__global__ void k_add_bias(float *__restrict__ x, const float *__restrict__ b, long n, int C) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) x[i] += b[i % C];
}
void add_bias_launch(cudaStream_t st, float *x, const float *b, long R, int C) {
    const long n = R * C;
    k_add_bias<<<ew_blocks(n), EW_THREADS, 0, st>>>(x, b, n, C);
    KERNEL_CHECK();
}

template <typename T>
__global__ void k_convert(T *__restrict__ dst, const float *__restrict__ src, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = from_f<T>(src[i]);
}
template <typename T>
void convert_launch(cudaStream_t st, T *dst, const float *src, size_t n) {
    k_convert<T><<<ew_blocks((long)n), EW_THREADS, 0, st>>>(dst, src, n);
    KERNEL_CHECK();
}

/* ---- head: ln_out at the scored rows, log-softmax with gather ---------------------------------- */
template <typename T>
__global__ void k_ln_gather(T *__restrict__ out, const float *__restrict__ x, const int *__restrict__ rows,
                            const float *__restrict__ w, const float *__restrict__ b, int C) {
    const long o = blockIdx.x;
    const float *xr = x + (size_t)rows[o] * C;
    float m, s;
    row_stats(xr, C, 1e-5f, m, s);
    for (int c = threadIdx.x; c < C; c += blockDim.x) out[(size_t)o * C + c] = from_f<T>((xr[c] - m) * s * w[c] + b[c]);
}
template <typename T>
void ln_gather_launch(cudaStream_t st, T *out, const float *x, const int *rows, const float *w, const float *b,
                      int nout, int C) {
    k_ln_gather<T><<<nout, ROW_THREADS, 0, st>>>(out, x, rows, w, b, C);
    KERNEL_CHECK();
}

__global__ void k_logsoftmax_gather(const float *__restrict__ logits, const int *__restrict__ targets,
                                    float *__restrict__ lp, int *__restrict__ greedy, int V) {
    const long o = blockIdx.x;
    const float *l = logits + (size_t)o * V;
    float mx = -INFINITY;
    for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, l[i]);
    mx = block_max(mx);
    float z = 0.f;
    for (int i = threadIdx.x; i < V; i += blockDim.x) z += expf(l[i] - mx);
    z = block_sum(z);
    if (threadIdx.x == 0) {
        const float ly = l[targets[o]];
        lp[o] = (ly - mx) - logf(z);
        greedy[o] = ly >= mx;
    }
}
void logsoftmax_gather_launch(cudaStream_t st, const float *logits, const int *targets, float *lp, int *greedy,
                              int nout, int V) {
    k_logsoftmax_gather<<<nout, 1024, 0, st>>>(logits, targets, lp, greedy, V);
    KERNEL_CHECK();
}

/* (value, index) pairs: the larger value wins, the lower index among equal values */
__device__ __forceinline__ void am_merge(float &v, int &i, float v2, int i2) {
    if (v2 > v || (v2 == v && i2 < i)) v = v2, i = i2;
}
__global__ void k_argmax(const float *__restrict__ logits, int *__restrict__ out, int V) {
    const float *l = logits + (size_t)blockIdx.x * V;
    float v = -INFINITY;
    int ix = INT_MAX;
    for (int i = threadIdx.x; i < V; i += blockDim.x) am_merge(v, ix, l[i], i); /* NaN: never > nor == */
#pragma unroll
    for (int o = 16; o; o >>= 1) am_merge(v, ix, __shfl_xor_sync(0xffffffffu, v, o), __shfl_xor_sync(0xffffffffu, ix, o));
    __shared__ float sv[32];
    __shared__ int si[32];
    const int w = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    if (lane == 0) sv[w] = v, si[w] = ix;
    __syncthreads();
    if (w == 0) {
        v = lane < nw ? sv[lane] : -INFINITY, ix = lane < nw ? si[lane] : INT_MAX;
#pragma unroll
        for (int o = 16; o; o >>= 1) am_merge(v, ix, __shfl_xor_sync(0xffffffffu, v, o), __shfl_xor_sync(0xffffffffu, ix, o));
        if (lane == 0) out[blockIdx.x] = ix == INT_MAX ? 0 : ix; /* a row of NaN / -inf only: token 0 */
    }
}
void argmax_launch(cudaStream_t st, const float *logits, int *out, int nout, int V) {
    k_argmax<<<nout, 1024, 0, st>>>(logits, out, V);
    KERNEL_CHECK();
}

/* one block per (destination sequence, layer); float4 copies (C and S are multiples of 4) */
__global__ void k_state_gather(float *__restrict__ dst, const float *__restrict__ src, const int *__restrict__ idx,
                               int Bd, int Bs, int C, int S) {
    const int b = blockIdx.x, l = blockIdx.y, sb = idx[b];
    const size_t per = 2 * (size_t)C + S;
    const float *sl = src + (size_t)l * Bs * per;
    float *dl = dst + (size_t)l * Bd * per;
    const float *sp[3] = {sl + (size_t)sb * C, sl + (size_t)Bs * C + (size_t)sb * S, sl + (size_t)Bs * (C + S) + (size_t)sb * C};
    float *dp[3] = {dl + (size_t)b * C, dl + (size_t)Bd * C + (size_t)b * S, dl + (size_t)Bd * (C + S) + (size_t)b * C};
    const int n4[3] = {C / 4, S / 4, C / 4};
#pragma unroll
    for (int p = 0; p < 3; p++)
        for (int i = threadIdx.x; i < n4[p]; i += blockDim.x)
            reinterpret_cast<float4 *>(dp[p])[i] = reinterpret_cast<const float4 *>(sp[p])[i];
}
void state_gather_launch(cudaStream_t st, float *dst, const float *src, const int *idx, int Bd, int Bs, int L, int C,
                         int S) {
    k_state_gather<<<dim3(Bd, L), 256, 0, st>>>(dst, src, idx, Bd, Bs, C, S);
    KERNEL_CHECK();
}

/* ---- instantiations --------------------------------------------------------------------------- */
#define INST(T)                                                                                                  \
    template void embed_launch<T>(cudaStream_t, float *, const int *, const T *, const float *, const float *, int, \
                                  int);                                                                          \
    template void shift_mix_launch<T>(cudaStream_t, const float *, const float *, const float *, const int *,      \
                                      const int *, const float *, float *, const MixOut &, int, int);            \
    template void lora_act_launch<T>(cudaStream_t, T *, const float *, int, int, int, int, int, int);            \
    template void gn_bonus_gate_launch<T>(cudaStream_t, int, T *, const float *, const float *, const float *,    \
                                          const float *, const float *, const float *, const float *,             \
                                          const float *, int, int, int);                                         \
    template void relu2_launch<T>(cudaStream_t, T *, const float *, const float *, long, int);                   \
    template void ln_gather_launch<T>(cudaStream_t, T *, const float *, const int *, const float *, const float *, \
                                      int, int);                                                                 \
    template void convert_launch<T>(cudaStream_t, T *, const float *, size_t);
INST(float)
INST(__half)
INST(__nv_bfloat16)
