/* generate.c -- decoding on the CPU or the GPU (what a run does: generate.h). */
#include "generate.h"

#include <math.h>
#include <string.h>

#include "cuda_rwkv7.h"
#include "sample.h"
#include "statefile.h"

static int gen_is_cuda(const GenOpts *o) { return o->device && !strcmp(o->device, "cuda"); }

static int gen_check(const GenOpts *o, Err *err) {
    if (o->device && strcmp(o->device, "cpu") && strcmp(o->device, "cuda"))
        return err_set(err, "--device %s: use cpu or cuda", o->device);
    if (!o->model_path || !*o->model_path) return err_set(err, "--model FILE is required");
    if (o->n < 1) return err_set(err, "--n %d: generate at least 1 token per sequence", o->n);
    if (o->batch < 0) return err_set(err, "--batch %d: use a number of sequences >= 1", o->batch);
    if (!(o->temperature >= 0) || !isfinite(o->temperature))
        return err_set(err, "--temperature %g: use 0 (greedy) or a positive number", o->temperature);
    if (!(o->top_p > 0 && o->top_p <= 1)) return err_set(err, "--top-p %g: use a number in (0, 1]", o->top_p);
    if (o->nprompt < 0 || (o->nprompt == 0 && !o->load_state))
        return err_set(err, "nothing to continue: give a prompt (--prompt TEXT or --tokens IDS) or --load-state FILE");
    CudaDType dt;
    if (o->dtype && cuda_dtype_parse(o->dtype, &dt))
        return err_set(err, "--dtype %s: use bf16, fp16 or fp32 (the GPU's weight storage)", o->dtype);
    if (o->dtype && !gen_is_cuda(o) && dt != CUDA_DT_F32)
        return err_set(err, "--dtype %s: the CPU engine computes in fp32 only; --dtype chooses the weights of --device "
                            "cuda", o->dtype);
    if (gen_is_cuda(o)) {
        char why[600];
        if (!cuda_built())
            return err_set(err, "--device cuda: not available: %s; or use --device cpu", (cuda_available(why, sizeof why), why));
        if (!cuda_available(why, sizeof why)) return err_set(err, "--device cuda: no usable GPU found: %s; use --device cpu", why);
    }
    return 0;
}

/* the feed of each sequence: its pending token (after a load), then the prompt; (B, T) */
static int *gen_feed(const GenOpts *o, const int *pending, int B, int *T) {
    *T = (pending ? 1 : 0) + o->nprompt;
    int *feed = xmalloc((size_t)B * *T * sizeof(int));
    for (int b = 0; b < B; b++) {
        int *f = feed + (size_t)b * *T;
        if (pending) *f++ = pending[b];
        if (o->nprompt) memcpy(f, o->prompt, o->nprompt * sizeof(int));
    }
    return feed;
}

static int gen_pick(Sampler *sm, const GenOpts *o, const real *row, int b, uint64_t pos, uint64_t seed) {
    return sampler_pick(sm, row, o->temperature, o->top_p, sample_uniform(seed, (uint64_t)b, pos));
}

/* CPU: any architecture through model.h; state (model_state_numel(m, B)) is advanced in place */
static int gen_cpu(Model *m, GenOpts *o, int B, real *state, const int *pending, uint64_t seed, uint64_t step, int *out) {
    const int V = m->V, n = o->n;
    Sampler sm;
    sampler_init(&sm, V);
    int T;
    int *feed = gen_feed(o, pending, B, &T);
    double t0 = now_seconds();
    /* one token per sequence is a decoding step (the same call as below: a continued run computes exactly
     * what an unbroken one does); longer feeds run the head at their last token only */
    ModelFwd f = {.K = 16, .state_in = state, .state_out = state, .head_last_only = T > 1};
    const real *lg = model_forward(m, feed, B, T, &f);
    for (int b = 0; b < B; b++) out[(size_t)b * n] = gen_pick(&sm, o, lg + ((size_t)b * T + T - 1) * V, b, step, seed);
    o->t_prefill = now_seconds() - t0;
    t0 = now_seconds();
    int *tok = xmalloc((size_t)B * sizeof(int));
    for (int k = 1; k < n; k++) {
        for (int b = 0; b < B; b++) tok[b] = out[(size_t)b * n + k - 1];
        ModelFwd fs = {.K = 16, .state_in = state, .state_out = state};
        lg = model_forward(m, tok, B, 1, &fs);
        for (int b = 0; b < B; b++) out[(size_t)b * n + k] = gen_pick(&sm, o, lg + (size_t)b * V, b, step + k, seed);
    }
    o->t_decode = now_seconds() - t0;
    free(tok), free(feed);
    sampler_free(&sm);
    return 0;
}

/* GPU: RWKV-7 only; state (host, rwkv7 layout) is the start state when pending != NULL and gets the final
 * state when want_state */
static int gen_cuda(Model *m, GenOpts *o, int B, real *state, const int *pending, uint64_t seed, uint64_t step,
                    int *out, int want_state, Err *err) {
#ifdef RWKV_F64
    (void)m, (void)o, (void)B, (void)state, (void)pending, (void)seed, (void)step, (void)out, (void)want_state;
    return err_set(err, "--device cuda: the fp64 build has no GPU path");
#else
    const int V = m->V, n = o->n, greedy = o->temperature <= 0;
    CudaDType dt = CUDA_DT_BF16;
    if (o->dtype) cuda_dtype_parse(o->dtype, &dt);
    double t0 = now_seconds();
    CudaRwkv7 *g = cuda_model_create(m, dt, err);
    o->t_load += now_seconds() - t0;
    if (!g) return -1;
    int rc = -1, T;
    CudaRwkv7State *s = cuda_rwkv7_state_create(g, B, err), *s1 = NULL;
    int *feed = gen_feed(o, pending, B, &T), *am = xmalloc((size_t)B * sizeof(int)), *tok = xmalloc((size_t)B * sizeof(int));
    int *idx = xcalloc((size_t)B, sizeof(int)), *rows = xmalloc((size_t)B * sizeof(int)), *lens = xmalloc((size_t)B * sizeof(int));
    float *lg = xmalloc((size_t)B * V * sizeof(float));
    Sampler sm;
    sampler_init(&sm, V);
    if (!s) goto out;
    t0 = now_seconds();
    if (!pending) { /* B identical sequences from the zero state: the prompt once, its state copied */
        if (!(s1 = cuda_rwkv7_state_create(g, 1, err))) goto out;
        int len = T, row = T - 1;
        CudaRwkv7Batch bt = {.B = 1, .lens = &len, .tokens = feed, .state = s1, .nout = 1, .out_rows = &row, .logits = lg};
        if (cuda_rwkv7_forward(g, &bt, err) || cuda_rwkv7_state_gather(s, s1, idx, err)) goto out;
        for (int b = 0; b < B; b++) out[(size_t)b * n] = gen_pick(&sm, o, lg, b, step, seed);
    } else {
        cuda_rwkv7_state_upload(s, state);
        if (T == 1) { /* a decoding step, as in an unbroken run */
            if (cuda_rwkv7_decode(g, s, feed, am, greedy ? NULL : lg, err)) goto out;
        } else {
            for (int b = 0; b < B; b++) lens[b] = T, rows[b] = b * T + T - 1;
            CudaRwkv7Batch bt = {.B = B, .lens = lens, .tokens = feed, .state = s, .nout = B, .out_rows = rows, .logits = lg};
            if (cuda_rwkv7_forward(g, &bt, err)) goto out;
            for (int b = 0; b < B; b++) am[b] = sample_argmax(lg + (size_t)b * V, V);
        }
        for (int b = 0; b < B; b++)
            out[(size_t)b * n] = greedy ? am[b] : gen_pick(&sm, o, lg + (size_t)b * V, b, step, seed);
    }
    o->t_prefill = now_seconds() - t0;
    t0 = now_seconds();
    for (int k = 1; k < n; k++) {
        for (int b = 0; b < B; b++) tok[b] = out[(size_t)b * n + k - 1];
        if (cuda_rwkv7_decode(g, s, tok, am, greedy ? NULL : lg, err)) goto out;
        for (int b = 0; b < B; b++)
            out[(size_t)b * n + k] = greedy ? am[b] : gen_pick(&sm, o, lg + (size_t)b * V, b, step + k, seed);
    }
    o->t_decode = now_seconds() - t0;
    o->used_graph = n > 1 && cuda_rwkv7_decode_used_graph(s);
    if (want_state) cuda_rwkv7_state_download(s, state);
    rc = 0;
out:
    sampler_free(&sm);
    free(feed), free(am), free(tok), free(idx), free(rows), free(lens), free(lg);
    cuda_rwkv7_state_free(s1);
    cuda_rwkv7_state_free(s);
    cuda_rwkv7_free(g);
    return rc;
#endif
}

int generate_run(GenOpts *o, Err *err) {
    o->out = NULL, o->B = 0, o->V = 0, o->t_load = o->t_prefill = o->t_decode = 0, o->used_graph = 0;
    if (gen_check(o, err)) return -1;
    if (gen_is_cuda(o)) cuda_init_async(); /* the GPU's context is made while the model loads */
    Model *m = NULL;
    double t0 = now_seconds();
    if (model_load_with(o->model_path, &o->load, &m, err)) {
        cuda_init_wait();
        return -1;
    }
    o->t_load = now_seconds() - t0;
    o->V = m->V;
    StateFile sf = {0};
    real *state = NULL;
    int *out = NULL, rc = -1;
    for (int i = 0; i < o->nprompt; i++)
        if (o->prompt[i] < 0 || o->prompt[i] >= m->V) {
            err_set(err, "prompt token %d (position %d) is outside the model's vocabulary of %d", o->prompt[i], i, m->V);
            goto done;
        }
    uint64_t seed = o->seed, step = 0;
    int B = o->batch ? o->batch : 1;
    if (o->load_state) {
        if (statefile_load(o->load_state, m, &sf, err)) goto done;
        if (o->batch && o->batch != sf.B) {
            err_set(err, "--batch %d: the state in %s holds %d sequences; leave --batch out (or give %d)", o->batch,
                    o->load_state, sf.B, sf.B);
            goto done;
        }
        B = sf.B, step = sf.step;
        if (!o->seed_given) seed = sf.seed;
        state = sf.state;
    } else {
        state = xcalloc(model_state_numel(m, B), sizeof(real));
    }
    out = xmalloc((size_t)B * o->n * sizeof(int));
    if (gen_is_cuda(o)) rc = gen_cuda(m, o, B, state, o->load_state ? sf.pending : NULL, seed, step, out, o->save_state != NULL, err);
    else rc = gen_cpu(m, o, B, state, o->load_state ? sf.pending : NULL, seed, step, out);
    if (!rc && o->save_state) {
        int *pend = xmalloc((size_t)B * sizeof(int));
        for (int b = 0; b < B; b++) pend[b] = out[(size_t)b * o->n + o->n - 1];
        rc = statefile_save(o->save_state, m, B, state, pend, seed, step + (uint64_t)o->n, err);
        free(pend);
    }
    if (!rc) o->out = out, o->B = B, out = NULL;
done:
    cuda_init_wait();
    free(out);
    if (o->load_state) statefile_free(&sf);
    else free(state);
    model_free(m);
    return rc;
}
