/* cmd_logits.c -- `rwkvlab logits`: per-position logits of a token sequence as float32 .npy (T x V). */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model_io.h"
#include "opts.h"

/* float32 .npy, shape (T,V), written atomically */
static int write_npy(const char *path, const float *x, int rows, int cols, Err *err) {
    char hdr[128];
    int hl = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", rows, cols);
    int total = 10 + hl + 1;
    int pad = (64 - total % 64) % 64;
    size_t hlen = hl + pad + 1, n = 10 + hlen + (size_t)rows * cols * 4;
    unsigned char *buf = xmalloc(n);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = hlen & 0xff, buf[9] = (hlen >> 8) & 0xff;
    memcpy(buf + 10, hdr, hl);
    memset(buf + 10 + hl, ' ', pad);
    buf[10 + hl + pad] = '\n';
    memcpy(buf + 10 + hlen, x, (size_t)rows * cols * 4);
    int rc = write_file_atomic(path, buf, n, err);
    free(buf);
    return rc;
}


static const char LOGITS_USAGE[] =
    "usage: rwkvlab logits --model FILE --tokens 0,17,...|IDS_FILE --out FILE.npy [--recurrent]\n"
    "       [--allow-unknown-tensors] [--force-memory]\n"
    "  per-position logits (float32 .npy, T x V) from a zero state; --recurrent runs one token at a\n"
    "  time carrying the state (must agree with the default sequence mode). A NaN or Inf logit is an\n"
    "  error (naming the first position): nothing is written then.\n" LOAD_USAGE;

int cmd_logits(int argc, char **argv) {
    const char *model = NULL, *toks = NULL, *out = NULL;
    int recurrent = 0;
    ModelLoadOpts lo;
    model_load_opts_default(&lo);
    OptSpec spec[] = {
        LOAD_OPTS(lo),
        O_STR("--model", &model, .required = 1),
        O_STR("--tokens", &toks, .required = 1),
        O_STR("--out", &out, .required = 1),
        O_FLAG("--recurrent", &recurrent),
    };
    OptParser p = {.cmd = "logits", .specs = spec, .nspecs = OPTS_N(spec)};
    int ec;
    if (parse_or_exit(&p, argc, argv, LOGITS_USAGE, &ec)) return ec;
    Err err = {{0}};
    int *ids = NULL, T = 0;
    Model *m = NULL;
    float *lg = NULL;
    int rc = 1;
    if (ids_from_arg(toks, &ids, &T, &err) || model_load_with(model, &lo, &m, &err) ||
        check_vocab(ids, T, m->V, &err))
        goto done;
    const int V = m->V;
    lg = xmalloc((size_t)T * V * sizeof(float));
    if (recurrent) {
        real *state = xcalloc(model_state_numel(m, 1), sizeof(real));
        for (int t = 0; t < T; t++) {
            ModelFwd f = {.K = 1, .state_in = state, .state_out = state};
            const real *l = model_forward(m, &ids[t], 1, 1, &f);
            for (int v = 0; v < V; v++) lg[(size_t)t * V + v] = (float)l[v];
        }
        free(state);
    } else {
        const real *l = model_forward(m, ids, 1, T, NULL);
        for (size_t i = 0; i < (size_t)T * V; i++) lg[i] = (float)l[i];
    }
    for (size_t i = 0; i < (size_t)T * V; i++)
        if (!isfinite(lg[i])) {
            err_set(&err, "the logits at position %zu (token %d) are not finite (%s at vocabulary entry %zu) — the "
                    "model's weights are NaN/Inf or overflow; nothing was written to %s", i / V, ids[i / V],
                    isnan(lg[i]) ? "NaN" : "Inf", i % V, out);
            goto done;
        }
    rc = write_npy(out, lg, T, V, &err) ? 1 : 0;
done:
    if (rc) fail_msg("logits", &err);
    free(lg), free(ids);
    model_free(m);
    return rc;
}
