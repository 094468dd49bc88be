/* cmd_sample.c -- `rwkvlab sample`: a task's sequences as JSON lines, to see a task before training on it.
 *
 * What is printed (one JSON object per line on stdout; a description of the task on stderr):
 *   default      one training batch of N rows drawn as a training step draws it (protocol.h: the length
 *                rule of task.train_len / train_len_mode, or the merrill training pool), from a generator
 *                gsl mt19937 seeded with S (not the run's own stream, which model_init uses first);
 *                rows are printed at their own length (no padding);
 *   --len T      N fresh sequences of length T: task_sample on an N x T batch from mt19937 seeded with S;
 *   --test       the fixed test set the run is evaluated on: task_testset(seed S, length T = --len or the
 *                first of task.test_lens) (under merrill at length n: the held-out part of the split).
 * Each line: {"index", "length", "inputs", "targets", "mask", "text"}: text renders every position,
 * "input->target" where the position is scored and "input" where it is not, positions separated by two
 * spaces; inputs with the task's token_text, targets with its target_text (task_target_text: a class as
 * its class, e.g. parity "odd", cycle_nav "@3", a DFA "accept"; groups and recall render targets as
 * tokens).
 */
#include "cli.h"

#include <cJSON.h>
#include <limits.h>
#include <gsl/gsl_rng.h>
#include <string.h>

#include "config.h"
#include "opts.h"
#include "protocol.h"
#include "task.h"

static const char SAMPLE_USAGE[] =
    "usage: rwkvlab sample CONFIG [--set section.key=value ...] [--len T] [--n N] [--seed S] [--test]\n"
    "  prints sequences of the config's task as JSON lines: inputs, targets, mask and a rendering (text)\n"
    "  default   one training batch of N rows, drawn as a training step draws it (lengths as task.train_len\n"
    "            and task.train_len_mode say, or the merrill training pool)\n"
    "  --len T   N fresh sequences of length T\n"
    "  --test    the fixed test set of length T (--len, default the first of task.test_lens) the run is\n"
    "            evaluated on\n"
    "  --n N     how many sequences (default 4)\n"
    "  --seed S  the generator's seed (default the config's first seed; for --test the test-set seed)\n";

#define SAMPLE_MAX_TOKENS (1L << 26) /* N x T printed at most */

static cJSON *int_array(const int *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

/* One row as a JSON line on stdout. */
static void print_row(const Task *t, int index, const int *in, const int *tg, const unsigned char *mk, int T) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "index", index);
    cJSON_AddNumberToObject(j, "length", T);
    cJSON_AddItemToObject(j, "inputs", int_array(in, T));
    cJSON_AddItemToObject(j, "targets", int_array(tg, T));
    cJSON *m = cJSON_CreateArray();
    for (int i = 0; i < T; i++) cJSON_AddItemToArray(m, cJSON_CreateNumber(mk[i] ? 1 : 0));
    cJSON_AddItemToObject(j, "mask", m);
    size_t cap = 1 + (size_t)T * (2 * 64 + 4), used = 0; /* each position: two tokens, "->", "  " */
    char *text = xmalloc(cap), a[64], b[64];
    text[0] = 0;
    for (int i = 0; i < T; i++) {
        task_token_text(t, in[i], a, sizeof a);
        if (mk[i]) task_target_text(t, tg[i], b, sizeof b);
        used += (size_t)snprintf(text + used, cap - used, "%s%s%s%s", i ? "  " : "", a, mk[i] ? "->" : "", mk[i] ? b : "");
    }
    cJSON_AddStringToObject(j, "text", text);
    free(text);
    char *s = cJSON_PrintUnformatted(j);
    CHECK(s != NULL, "out of memory printing a sequence");
    puts(s);
    free(s);
    cJSON_Delete(j);
}

int cmd_sample(int argc, char **argv) {
    const char *sets[MAX_SETS], *path = NULL;
    int nsets = 0, T = 0, nlen = 0, n = 4, test = 0, nseed = 0;
    long seed_opt = 0;
    OptSpec spec[] = {
        O_STRS("--set", sets, MAX_SETS, &nsets),
        O_INT("--len", &T, 1, MAX_LEN, .count = &nlen),
        O_INT("--n", &n, 1, 100000),
        O_LONG("--seed", &seed_opt, 0, MAX_SEED, .count = &nseed),
        O_FLAG("--test", &test),
    };
    OptParser p = {.cmd = "sample", .specs = spec, .nspecs = OPTS_N(spec),
                   .pos_name = "CONFIG", .pos_min = 1, .pos_max = 1, .pos = &path};
    int ec;
    if (parse_or_exit(&p, argc, argv, SAMPLE_USAGE, &ec)) return ec;
    Err err = {{0}};
    RunConfig cfg;
    if (resolve_config(&cfg, path, sets, nsets, &err)) return fail_msg("sample", &err);
    unsigned long seed = nseed ? (unsigned long)seed_opt : (unsigned long)cfg.experiment.seeds[0];
    if (test && !nlen) T = cfg.task.test_lens[0];
    int rows_T = nlen || test ? T : cfg.task.train_len;
    if ((long)n * rows_T > SAMPLE_MAX_TOKENS) {
        err_set(&err, "--n %d x length %d is more than the %ld tokens sample prints — lower --n or --len", n, rows_T,
                SAMPLE_MAX_TOKENS);
        return fail_msg("sample", &err);
    }
    Task *task = task_create(&cfg, &err);
    if (!task) return fail_msg("sample", &err);
    if ((nlen || test) && task_check_len(task, T, &err)) { /* the config's own lengths were checked with it */
        task_free(task);
        return fail_msg("sample", &err);
    }
    Protocol proto;
    if (protocol_init(&proto, &cfg, task, (unsigned long)cfg.experiment.seeds[0], &err)) {
        task_free(task);
        return fail_msg("sample", &err);
    }
    double chance = task_chance(task);
    char ch[32] = "unknown";
    if (chance > 0 && chance < 1) snprintf(ch, sizeof ch, "%.6g", chance);
    fprintf(stderr, "rwkvlab sample: %s; vocabulary %d; chance %s; %s; seed %lu; %s\n", task_describe(task),
            task_vocab(task), ch, proto.desc, seed,
            test ? "the fixed test set" : nlen ? "fresh sequences" : "one training batch");
    Batch b;
    int *row_len = xmalloc((size_t)n * sizeof *row_len);
    if (test) {
        protocol_testset(&proto, T, n, seed, &b);
        for (int i = 0; i < b.B; i++) row_len[i] = T;
    } else {
        gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
        CHECK(rng != NULL, "gsl_rng_alloc failed");
        gsl_rng_set(rng, seed);
        batch_alloc(&b, n, rows_T);
        if (nlen) {
            task_sample(task, rng, &b);
            for (int i = 0; i < n; i++) row_len[i] = T;
        } else {
            protocol_batch(&proto, rng, &b, row_len);
        }
        gsl_rng_free(rng);
    }
    for (int i = 0; i < b.B; i++) {
        size_t o = (size_t)i * b.T;
        print_row(task, i, b.inputs + o, b.targets + o, b.mask + o, row_len[i]);
    }
    fflush(stdout);
    free(row_len);
    batch_free(&b);
    protocol_free(&proto);
    task_free(task);
    return 0;
}
