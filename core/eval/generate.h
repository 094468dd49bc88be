/* generate.h -- decoding: B sequences continue a prompt (or a saved state) by n tokens each, greedy or
 * sampled (sample.h), on the CPU (any architecture, through model.h) or the GPU (RWKV-7, core/cuda).
 *
 * A run: the feed of each sequence (the saved pending token, if a state was loaded, then the prompt) is
 * run from the start state (zero, or the loaded one); the token after it is drawn at sampling position
 * step (0 fresh, the saved step after a load); then n-1 times: that token is fed, one step for all B
 * sequences, and the next one drawn. At the end the state (every token fed) and the last, not yet fed
 * token of each sequence can be saved (statefile.h) with step + n. So a run of 2n tokens gives the same
 * tokens as a run of n saved and a run of n continued from it (same seed, temperature, top-p), which the
 * tests check on both engines.
 *
 * CPU: the prompt runs as B identical sequences (B, T) and each step as (B, 1). GPU: a fresh prompt runs
 * once and its state is copied to the B sequences (cuda_rwkv7_state_gather); each step is
 * cuda_rwkv7_decode (a CUDA graph); greedy steps bring back only the argmax, sampled steps the logits.
 */
#ifndef RWKV_GENERATE_H
#define RWKV_GENERATE_H

#include <stdint.h>

#include "common.h"
#include "model_io.h"

typedef struct {
    const char *model_path;
    const int *prompt;       /* tokens fed first (may be empty with load_state) */
    int nprompt;
    int n;                   /* tokens generated per sequence (>= 1) */
    int batch;               /* sequences (>= 1; with load_state 0 = the file's, else must equal it) */
    double temperature;      /* 0 = greedy */
    double top_p;            /* (0, 1] */
    uint64_t seed;
    int seed_given;          /* with load_state: 0 = use the saved seed */
    const char *device;      /* "cpu" (default) | "cuda" */
    const char *dtype;       /* cuda weights: NULL/"bf16", "fp16", "fp32" */
    const char *save_state, *load_state;
    ModelLoadOpts load;
    /* out */
    int B;                   /* sequences generated */
    int *out;                /* (B, n) generated tokens (caller frees) */
    int V;                   /* the model's vocabulary */
    double t_load, t_prefill, t_decode; /* seconds: model read (and GPU upload), the feed, the n-1 steps */
    int used_graph;          /* GPU: the steps replayed a CUDA graph */
} GenOpts;

int generate_run(GenOpts *o, Err *err);

#endif
