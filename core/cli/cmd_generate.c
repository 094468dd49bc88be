/* cmd_generate.c -- `rwkvlab generate`: continue a prompt (or a saved state) by N tokens, greedy or
 * sampled, on the CPU or the GPU (the engine: core/eval/generate.c). */
#include "cli.h"

#include <limits.h>
#include <string.h>

#include "generate.h"
#include "opts.h"
#include "tokenizer.h"

static const char GENERATE_USAGE[] =
    "usage: rwkvlab generate --model FILE (--prompt TEXT | --tokens IDS | --load-state FILE) [--n N]\n"
    "       [--batch B] [--temperature T] [--top-p P] [--seed S] [--device cpu|cuda] [--dtype bf16|fp16|fp32]\n"
    "       [--save-state FILE] [--load-state FILE] [--data DIR] [--print auto|text|ids] [--quiet]\n"
    "  B sequences (default 1) each continue the prompt by N tokens (default 32): greedy at temperature 0\n"
    "  (the default), else sampled from softmax(logits/T) within the top-p nucleus (default 1 = all), with\n"
    "  random numbers fixed by --seed (default 1) and each sequence's position: the same command gives the\n"
    "  same tokens. --prompt TEXT is tokenised with DIR/rwkv_vocab_v20230424.txt (default DIR = data);\n"
    "  --tokens takes ids (a comma list or a file). --save-state FILE writes the state and each sequence's\n"
    "  last token (not yet fed) after the run; --load-state FILE continues from such a file (its sequences,\n"
    "  seed unless --seed is given, and position), first feeding the saved tokens, then --prompt/--tokens if\n"
    "  given: a run of 2N tokens equals a run of N saved and a run of N continued.\n"
    "  --print: the tokens as text (auto: with --prompt) or as ids (auto: otherwise), one line per sequence.\n"
    "  --device cuda: RWKV-7 on the GPU (weights --dtype, default bf16; each step a CUDA graph)\n" LOAD_USAGE;

int cmd_generate(int argc, char **argv) {
    GenOpts o = {.n = 32, .top_p = 1.0, .seed = 1, .device = "cpu"};
    model_load_opts_default(&o.load);
    const char *prompt = NULL, *tokens = NULL, *data = "data";
    long seed = 1;
    int nseed = 0, print = 0, quiet = 0;
    OptSpec spec[] = {
        O_STR("--model", &o.model_path, .required = 1),
        O_STR("--prompt", &prompt),
        O_STR("--tokens", &tokens),
        O_INT("--n", &o.n, 1, MAX_LEN),
        O_INT("--batch", &o.batch, 1, 65536),
        O_REAL("--temperature", &o.temperature, 0, 1e6),
        O_REAL("--top-p", &o.top_p, 0, 1, .lo_open = 1),
        O_LONG("--seed", &seed, 0, MAX_SEED, .count = &nseed),
        O_STR("--device", &o.device),
        O_STR("--dtype", &o.dtype),
        O_STR("--save-state", &o.save_state),
        O_STR("--load-state", &o.load_state),
        O_STR("--data", &data),
        O_ENUM("--print", &print, "auto|text|ids"),
        O_FLAG("--quiet", &quiet),
        LOAD_OPTS(o.load),
    };
    OptParser p = {.cmd = "generate", .specs = spec, .nspecs = OPTS_N(spec)};
    int ec;
    if (parse_or_exit(&p, argc, argv, GENERATE_USAGE, &ec)) return ec;
    Err err = {{0}};
    if (prompt && tokens) {
        err_set(&err, "--prompt and --tokens both given; give the prompt once, as text or as ids");
        return fail_msg("generate", &err);
    }
    o.seed = (uint64_t)seed, o.seed_given = nseed > 0;
    const int as_text = print == 1 || (print == 0 && prompt);
    Tokenizer *tok = NULL;
    int *ids = NULL, rc = 1;
    if (prompt || as_text) {
        char vp[4096];
        snprintf(vp, sizeof vp, "%s/rwkv_vocab_v20230424.txt", data);
        if (!(tok = tokenizer_load(vp, &err))) goto out;
    }
    if (prompt) {
        size_t n;
        if (tokenizer_encode(tok, prompt, strlen(prompt), &ids, &n, &err)) goto out;
        if (n == 0) {
            err_set(&err, "--prompt '': the prompt is empty; give some text (or --tokens IDS)");
            goto out;
        }
        o.prompt = ids, o.nprompt = (int)n;
    } else if (tokens) {
        int n;
        if (ids_from_arg(tokens, &ids, &n, &err)) goto out;
        o.prompt = ids, o.nprompt = n;
    }
    if (generate_run(&o, &err)) goto out;
    for (int b = 0; b < o.B; b++) {
        const int *t = o.out + (size_t)b * o.n;
        if (o.B > 1) printf("[%d] ", b);
        if (as_text) {
            size_t len;
            char *txt = tokenizer_decode(tok, t, o.n, &len, &err);
            if (!txt) goto out;
            fwrite(txt, 1, len, stdout);
            free(txt);
        } else {
            for (int i = 0; i < o.n; i++) printf(i ? " %d" : "%d", t[i]);
        }
        printf("\n");
    }
    if (!quiet) {
        const long steps = (long)o.B * (o.n - 1);
        fprintf(stderr, "rwkvlab generate: %d sequence%s x %d tokens on %s%s%s: model %.2f s, feed %.1f ms, %d steps in "
                        "%.3f s = %.0f tokens/s%s\n", o.B, o.B > 1 ? "s" : "", o.n, o.device,
                !strcmp(o.device, "cuda") ? " " : "", !strcmp(o.device, "cuda") ? (o.dtype ? o.dtype : "bf16") : "",
                o.t_load, 1e3 * o.t_prefill, o.n - 1, o.t_decode, steps / (o.t_decode > 0 ? o.t_decode : 1e-9),
                o.used_graph ? " (CUDA graph)" : "");
        if (o.save_state) fprintf(stderr, "rwkvlab generate: state saved to %s\n", o.save_state);
    }
    rc = 0;
out:
    if (rc) fail_msg("generate", &err);
    free(ids), free(o.out);
    tokenizer_free(tok);
    return rc;
}
