/* test_sweep_lengths.c -- the aggregate matches each run's eval entries by "length", not by list position,
 * and a length a run lacks is missing: counted per length, null in sweep.json, '-' in the table (issue 6,
 * item 10). Before the fix the table printed the accuracy of the first entry under the first length
 * whatever its length was, and a run with fewer entries contributed uninitialised memory (5e180).
 *
 * Three seeds are trained (test lengths 8, 16, 32), then their summaries' eval lists are replaced by
 * known values in scrambled order with lengths left out, and `sweep --report` aggregates them. */
#include "sweep_testutil.h"

TestSuite(sweep_lengths, .init = sw_setup, .fini = sw_teardown, .timeout = 300);

/* replaces the "eval" array of DIR/summary.json with the JSON text `eval` */
static void set_eval(const char *out, long seed, const char *eval) {
    char p[600];
    snprintf(p, sizeof p, "%s/base-seed%ld/summary.json", out, seed);
    cJSON *j = sw_json(p), *e = cJSON_Parse(eval);
    cr_assert(e, "bad test JSON %s", eval);
    cJSON_ReplaceItemInObject(j, "eval", e);
    char *t = cJSON_Print(j);
    sw_write(p, t);
    free(t);
    cJSON_Delete(j);
}

static const cJSON *length_entry(const cJSON *pt, int length) {
    for (const cJSON *e = cJSON_GetObjectItem(pt, "lengths")->child; e; e = e->next)
        if (sw_int(e, "length") == length) return e;
    cr_assert_fail("no entry for length %d", length);
    return NULL;
}

static void expect_length(const cJSON *pt, int length, int n, double median, double best) {
    const cJSON *e = length_entry(pt, length);
    cr_expect_eq(sw_int(e, "n"), n, "length %d", length);
    const cJSON *m = cJSON_GetObjectItem(e, "seq_acc_median"), *b = cJSON_GetObjectItem(e, "seq_acc_best");
    cr_assert(cJSON_IsNumber(m) && cJSON_IsNumber(b), "length %d: median/best missing", length);
    cr_expect_float_eq(m->valuedouble, median, 1e-12, "length %d median %g, want %g", length, m->valuedouble, median);
    cr_expect_float_eq(b->valuedouble, best, 1e-12, "length %d best %g, want %g", length, b->valuedouble, best);
}

Test(sweep_lengths, matched_by_length_missing_is_null) {
    char cfg[400], out[400], log[400], cmd[2048], p[600];
    snprintf(cfg, sizeof cfg, "%s/sw.ini", sw_tmp);
    snprintf(out, sizeof out, "%s/out", sw_tmp);
    snprintf(log, sizeof log, "%s/log.txt", sw_tmp);
    snprintf(p, sizeof p, "%s/sweep.json", out);
    sw_config(cfg, "3, 4, 5", "8, 16, 32", NULL);
    snprintf(cmd, sizeof cmd, "%s sweep %s --out %s > %s 2>&1", rwkvlab_bin(), cfg, out, log);
    cr_assert_eq(sh(cmd), 0);
    set_eval(out, 3, "[{\"length\": 32, \"seq_acc\": 0.1}, {\"length\": 8, \"seq_acc\": 0.9},"
                     " {\"length\": 16, \"seq_acc\": 0.5}]");
    set_eval(out, 4, "[{\"length\": 8, \"seq_acc\": 0.7}]");
    set_eval(out, 5, "[{\"length\": 16, \"seq_acc\": 0.3}, {\"length\": 8, \"seq_acc\": 0.8},"
                     " {\"length\": 64, \"seq_acc\": 1.0}]");
    snprintf(cmd, sizeof cmd, "%s sweep %s --out %s --report > %s 2>&1", rwkvlab_bin(), cfg, out, log);
    cr_assert_eq(sh(cmd), 0);
    cJSON *j = sw_json(p), *pt = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "points"), 0);
    cr_expect_eq(sw_int(pt, "seeds"), 3);
    expect_length(pt, 8, 3, 0.8, 0.9);
    expect_length(pt, 16, 2, 0.4, 0.5);
    expect_length(pt, 32, 1, 0.1, 0.1); /* the 64 of seed 5 is not a length of this sweep: ignored */
    cJSON_Delete(j);
    char *t = sw_read(log);
    cr_expect(strstr(t, "0.800/0.900") && strstr(t, "0.400/0.500 (2)") && strstr(t, "0.100/0.100 (1)"), "%s", t);
    free(t);

    /* no run has length 32 any more: null in sweep.json, '-' in the table */
    set_eval(out, 3, "[{\"length\": 16, \"seq_acc\": 0.5}, {\"length\": 8, \"seq_acc\": 0.9}]");
    cr_assert_eq(sh(cmd), 0);
    j = sw_json(p);
    pt = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "points"), 0);
    const cJSON *e32 = length_entry(pt, 32);
    cr_expect_eq(sw_int(e32, "n"), 0);
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(e32, "seq_acc_median")) &&
              cJSON_IsNull(cJSON_GetObjectItem(e32, "seq_acc_best")), "a missing length must be null");
    expect_length(pt, 8, 3, 0.8, 0.9);
    cJSON_Delete(j);
    t = sw_read(log);
    const char *row = strstr(t, "\n  base ");
    cr_assert(row, "%s", t);
    size_t rl = strcspn(row + 1, "\n");
    cr_expect(rl > 2 && row[rl] == '-' && row[rl - 1] == ' ', "the row should end with '-':\n%s", t);
    free(t);
}
