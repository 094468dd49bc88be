/* test_config.c -- config_defaults/load/set/validate/to_ini: good configs load, every kind of bad input
 * fails with the file, the exact line and the allowed values in the message, and to_ini round-trips.
 * Fixtures: the .ini files under tests/data/ (tests run from the repository root). */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "task.h"

/* Loads `path` over the defaults; expects failure with "path:line:" (line 0: "path: ") and each of the
 * NULL-terminated fragments in the message. */
static void expect_load_error(const char *path, int line, ...) {
    RunConfig c, before;
    config_defaults(&c);
    before = c;
    Err err = {{0}};
    int rc = config_load(&c, path, &err);
    cr_assert_eq(rc, -1, "%s: expected an error, got none", path);
    cr_assert_eq(memcmp(&c, &before, sizeof c), 0, "%s: a failed load changed the config", path);
    char where[512];
    if (line) snprintf(where, sizeof where, "%s:%d: ", path, line);
    else snprintf(where, sizeof where, "%s: ", path);
    cr_assert(strncmp(err.msg, where, strlen(where)) == 0, "message should start with '%s': %s", where, err.msg);
    cr_assert(strstr(err.msg, " — ") != NULL, "message should say how to fix it: %s", err.msg);
    va_list ap;
    va_start(ap, line);
    for (const char *frag; (frag = va_arg(ap, const char *)) != NULL;)
        cr_assert(strstr(err.msg, frag) != NULL, "message lacks '%s': %s", frag, err.msg);
    va_end(ap);
}

/* Applies --set to a defaults config; expects failure mentioning "--set <a>" and the fragments. */
static void expect_set_error(const char *assignment, ...) {
    RunConfig c, before;
    config_defaults(&c);
    before = c;
    Err err = {{0}};
    cr_assert_eq(config_set(&c, assignment, &err), -1, "--set %s: expected an error", assignment);
    cr_assert_eq(memcmp(&c, &before, sizeof c), 0, "a failed --set changed the config");
    char where[256];
    snprintf(where, sizeof where, "--set %s: ", assignment);
    cr_assert(strncmp(err.msg, where, strlen(where)) == 0, "message should start with '%s': %s", where, err.msg);
    va_list ap;
    va_start(ap, assignment);
    for (const char *frag; (frag = va_arg(ap, const char *)) != NULL;)
        cr_assert(strstr(err.msg, frag) != NULL, "message lacks '%s': %s", frag, err.msg);
    va_end(ap);
}

static void set_ok(RunConfig *c, const char *assignment) {
    Err err = {{0}};
    cr_assert_eq(config_set(c, assignment, &err), 0, "--set %s failed: %s", assignment, err.msg);
}

static void load_ok(RunConfig *c, const char *path) {
    Err err = {{0}};
    cr_assert_eq(config_load(c, path, &err), 0, "%s failed: %s", path, err.msg);
    cr_assert_eq(config_validate(c, &err), 0, "%s does not validate: %s", path, err.msg);
}

/* Writes text to a fresh temporary file; returns its path (static buffer). */
static const char *write_temp(const char *text) {
    static char path[64];
    snprintf(path, sizeof path, "/tmp/rwkvlab_cfg_XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    size_t n = strlen(text);
    cr_assert_eq(write(fd, text, n), (ssize_t)n);
    close(fd);
    return path;
}

/* ---- good inputs ---- */

Test(config, defaults_validate) {
    RunConfig c;
    config_defaults(&c);
    Err err = {{0}};
    cr_assert_eq(config_validate(&c, &err), 0, "%s", err.msg);
    cr_assert_str_eq(c.experiment.name, "unnamed");
    cr_assert_eq(c.experiment.nseeds, 1);
    cr_assert_eq(c.experiment.seeds[0], 1);
    cr_assert_eq(c.model.layers, 2);
    cr_assert_eq(c.model.d_model, 128);
    cr_assert_eq(c.model.head_size, 32);
    cr_assert_eq(c.task.ntest_lens, 5);
    cr_assert_eq(c.task.test_lens[4], 512);
    cr_assert_eq(c.train.steps, 2000);
    cr_assert_float_eq(c.train.lr, 1e-3, 0);
    cr_assert_eq(c.train.chunk, 16);
}

Test(config, load_good_fixture_with_spaced_lists) {
    RunConfig c;
    config_defaults(&c);
    load_ok(&c, "tests/data/cfg_good.ini");
    cr_assert_str_eq(c.experiment.name, "fixture_good");
    cr_assert_eq(c.experiment.nseeds, 3);
    cr_assert_eq(c.experiment.seeds[0], 3);
    cr_assert_eq(c.experiment.seeds[1], 1);
    cr_assert_eq(c.experiment.seeds[2], 2);
    cr_assert_str_eq(c.experiment.notes, "fixture: every section");
    cr_assert_eq(c.model.layers, 3);
    cr_assert_eq(c.model.d_model, 96);
    cr_assert_str_eq(c.model.eig_range, "extended");
    cr_assert_str_eq(c.task.name, "a5");
    cr_assert_eq(c.task.ntest_lens, 4);
    int want[] = {16, 32, 64, 128};
    for (int i = 0; i < 4; i++) cr_assert_eq(c.task.test_lens[i], want[i]);
    cr_assert_float_eq(c.train.lr, 3e-4, 0);
    cr_assert_str_eq(c.train.schedule, "constant");
    cr_assert_eq(c.train.batch, 64, "unset keys keep their defaults");
    cr_assert_eq(c.sweep.n, 2);
    cr_assert_str_eq(c.sweep.key[0], "model.layers");
    cr_assert_str_eq(c.sweep.values[0], "1, 2, 4");
    cr_assert_str_eq(c.sweep.key[1], "train.lr");
}

Test(config, example_configs_load_and_validate) {
    const char *paths[] = {"configs/s5_swaps_rwkv7.ini", "configs/s3_full_rwkv7.ini"};
    for (int i = 0; i < 2; i++) {
        RunConfig c;
        config_defaults(&c);
        load_ok(&c, paths[i]);
    }
    RunConfig c;
    config_defaults(&c);
    load_ok(&c, "configs/s5_swaps_rwkv7.ini");
    cr_assert_str_eq(c.experiment.name, "s5_swaps_rwkv7");
    cr_assert_str_eq(c.task.variant, "swaps");
    cr_assert_eq(c.task.test_lens[c.task.ntest_lens - 1], 500);
}

Test(config, set_overrides_after_load) {
    RunConfig c;
    config_defaults(&c);
    load_ok(&c, "tests/data/cfg_good.ini");
    set_ok(&c, "model.layers=5");
    set_ok(&c, " train.lr = 2.5e-4 ");
    set_ok(&c, "task.test_lens= 8 ,16,  24");
    set_ok(&c, "experiment.notes=override, with commas");
    set_ok(&c, "sweep.model.layers=1,3");   /* replaces the file's sweep entry */
    set_ok(&c, "sweep.train.batch=16, 32"); /* adds one */
    cr_assert_eq(c.model.layers, 5);
    cr_assert_float_eq(c.train.lr, 2.5e-4, 0);
    cr_assert_eq(c.task.ntest_lens, 3);
    cr_assert_eq(c.task.test_lens[2], 24);
    cr_assert_str_eq(c.experiment.notes, "override, with commas");
    cr_assert_eq(c.sweep.n, 3);
    cr_assert_str_eq(c.sweep.values[0], "1,3");
    cr_assert_str_eq(c.sweep.key[2], "train.batch");
    Err err = {{0}};
    cr_assert_eq(config_validate(&c, &err), 0, "%s", err.msg);
}

Test(config, round_trip_to_ini_is_exact) {
    RunConfig c;
    config_defaults(&c);
    load_ok(&c, "tests/data/cfg_good.ini");
    set_ok(&c, "train.lr=0.1");               /* not exactly representable */
    set_ok(&c, "train.beta2=0.999999999999"); /* needs many digits */
    set_ok(&c, "train.adam_eps=1e-300");
    set_ok(&c, "train.weight_decay=0");
    set_ok(&c, "experiment.seeds=9223372036854775807, 0, 42");
    set_ok(&c, "experiment.notes=a;b = c: d");
    set_ok(&c, "train.l2wrap=1");
    set_ok(&c, "log.trajectory_len=64");
    char *ini = config_to_ini(&c);
    const char *path = write_temp(ini);
    RunConfig back;
    config_defaults(&back);
    Err err = {{0}};
    int rc = config_load(&back, path, &err);
    unlink(path);
    cr_assert_eq(rc, 0, "reloading to_ini output failed: %s\n%s", err.msg, ini);
    cr_assert_eq(memcmp(&c, &back, sizeof c), 0, "round trip differs:\n%s", ini);
    char *again = config_to_ini(&back);
    cr_assert_str_eq(ini, again);
    free(again);
    free(ini);
}

Test(config, to_ini_lists_every_key) {
    RunConfig c;
    config_defaults(&c);
    char *ini = config_to_ini(&c);
    const char *keys[] = {"[experiment]", "\nname = unnamed", "\nseeds = 1\n", "\nnotes = \n", "[model]",
                          "\nlora_g = 0", "[task]", "\ntest_lens = 32, 64, 128, 256, 512\n", "[train]",
                          "\nlr = 0.001\n", "\nl2wrap = 0", "[log]", "\ntrajectory_len = 0", "[sweep]"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_assert(strstr(ini, keys[i]) != NULL, "to_ini lacks '%s':\n%s", keys[i], ini);
    free(ini);
}

/* `rwkvlab config` (config_to_ini_all) prints every [task] key of the chosen family, set or not, with the
 * family's own default; keys of other families are not printed; a set key keeps its value; the output
 * reloads to the same task keys' values */
Test(config, to_ini_all_lists_every_key_of_the_family) {
    const char *names[] = {"s5", "parity", "mqar", "ar", "dfa"};
    int checked = 0;
    for (size_t n = 0; n < sizeof names / sizeof names[0]; n++) {
        const TaskKind *kind = task_kind_find(names[n]);
        cr_assert(kind, "no family for %s", names[n]);
        RunConfig c;
        config_defaults(&c);
        char a[64];
        snprintf(a, sizeof a, "task.name=%s", names[n]);
        set_ok(&c, a);
        char *plain = config_to_ini(&c), *ini = config_to_ini_all(&c);
        for (int i = 0; i < kind->nparams; i++) {
            char want[512];
            snprintf(want, sizeof want, "\n%s = %s ; (default) ", kind->params[i].key, kind->params[i].def);
            cr_assert(strstr(ini, want), "%s: config lacks '%s':\n%s", names[n], want + 1, ini);
            snprintf(want, sizeof want, "\n%s = ", kind->params[i].key);
            cr_assert(!strstr(plain, want), "%s: a run's config.ini gained unset key %s", names[n], kind->params[i].key);
            checked++;
        }
        for (int k = 0; task_kinds[k]; k++) /* other families' keys stay out */
            for (int i = 0; task_kinds[k] != kind && i < task_kinds[k]->nparams; i++) {
                int shared = 0;
                for (int j = 0; j < kind->nparams; j++) shared |= !strcmp(kind->params[j].key, task_kinds[k]->params[i].key);
                char want[128];
                snprintf(want, sizeof want, "\n%s = ", task_kinds[k]->params[i].key);
                cr_assert(shared || !strstr(ini, want), "%s: prints %s of family %s", names[n],
                          task_kinds[k]->params[i].key, task_kinds[k]->family);
            }
        free(plain);
        free(ini);
    }
    cr_assert(checked >= 8, "only %d family keys checked", checked);
    RunConfig c;
    config_defaults(&c);
    set_ok(&c, "task.name=mqar");
    set_ok(&c, "task.num_kv=4");
    char *ini = config_to_ini_all(&c);
    cr_assert(strstr(ini, "\nnum_kv = 4\n"), "a set key keeps its value:\n%s", ini);
    cr_assert(!strstr(ini, "num_kv = 8"), "and is printed once:\n%s", ini);
    const char *path = write_temp(ini);
    RunConfig back;
    config_defaults(&back);
    Err err = {{0}};
    cr_assert_eq(config_load(&back, path, &err), 0, "reloading config's output: %s\n%s", err.msg, ini);
    unlink(path);
    cr_assert_eq(config_validate(&back, &err), 0, "%s", err.msg);
    char *again = config_to_ini_all(&back);
    const char *keep[] = {"\nnum_kv = 4\n", "\nvocab = 8192"};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        cr_assert(strstr(again, keep[i]), "reloaded config lacks '%s':\n%s", keep[i] + 1, again);
    free(again);
    free(ini);
}

Test(config, crlf_bom_colon_and_comments) {
    const char *path = write_temp("\xEF\xBB\xBF; comment\r\n[experiment]\r\n# another comment\r\n"
                                  "name: crlf\r\n\r\n[task]\r\n  name = s3 ; indented first key is fine\r\n"
                                  "test_lens = 8,16\r\n");
    RunConfig c;
    config_defaults(&c);
    Err err = {{0}};
    int rc = config_load(&c, path, &err);
    unlink(path);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_assert_str_eq(c.experiment.name, "crlf");
    cr_assert_str_eq(c.task.name, "s3");
    cr_assert_eq(c.task.ntest_lens, 2);
}

/* ---- bad files: exact line, allowed values ---- */

Test(config, unknown_section) {
    expect_load_error("tests/data/bad_section.ini", 4, "unknown section [modle]", "[experiment] [model]",
                      "did you mean [model]", NULL);
}

Test(config, unknown_section_without_keys) {
    expect_load_error("tests/data/empty_section.ini", 5, "unknown section [trian]", "[train]", NULL);
}

Test(config, unknown_key_lists_allowed) {
    expect_load_error("tests/data/bad_key.ini", 7, "unknown key 'layer' in [model]",
                      "allowed keys: arch, layers, d_model, head_size", "did you mean 'layers'", NULL);
}

Test(config, bad_int) {
    expect_load_error("tests/data/bad_int.ini", 7, "model.layers", "'12x' is not an integer",
                      "a whole number in [1, 1024]", NULL);
}

Test(config, bad_float) {
    expect_load_error("tests/data/bad_float.ini", 7, "train.lr", "'1e-3.5' is not a number", "a number > 0", NULL);
}

Test(config, out_of_range) {
    expect_load_error("tests/data/bad_range.ini", 6, "train.beta2", "out of range", "a number in [0, 1)", NULL);
}

Test(config, bad_enum_lists_allowed) {
    expect_load_error("tests/data/bad_enum.ini", 4, "model.arch: 'rwkv8' is not one of rwkv7", NULL);
}

Test(config, missing_required_key) {
    expect_load_error("tests/data/missing_name.ini", 0, "missing required key experiment.name", "[experiment]", NULL);
}

Test(config, missing_file) {
    expect_load_error("tests/data/no_such_file.ini", 0, "cannot open config file", "No such file", NULL);
}

Test(config, head_size_must_divide_d_model) {
    expect_load_error("tests/data/bad_head.ini", 7, "head_size = 48 does not divide model.d_model = 128",
                      "1, 2, 4, 8, 16, 32, 64, 128", NULL);
}

Test(config, warmup_exceeds_steps) {
    expect_load_error("tests/data/bad_warmup.ini", 6, "train.warmup = 3000 exceeds train.steps = 1000", NULL);
}

Test(config, empty_list_entry) {
    expect_load_error("tests/data/bad_list.ini", 5, "task.test_lens", "entry 2 is empty", NULL);
}

Test(config, duplicate_key_is_an_error) {
    expect_load_error("tests/data/bad_dup.ini", 8, "model.layers is set twice (first on line 4)", NULL);
}

Test(config, sweep_value_checked) {
    expect_load_error("tests/data/bad_sweep.ini", 7, "[sweep] value 2", "model.d_model", "'zero' is not an integer",
                      NULL);
}

Test(config, sweep_key_checked) {
    expect_load_error("tests/data/bad_sweep_key.ini", 6, "'model.layer' is not a config key",
                      "did you mean 'model.layers'", NULL);
}

Test(config, indented_continuation_rejected) {
    expect_load_error("tests/data/bad_indent.ini", 7, "indented line", "model.layers", NULL);
}

Test(config, syntax_error_line) {
    expect_load_error("tests/data/bad_syntax.ini", 6, "cannot parse 'layers 2'", NULL);
}

Test(config, overlong_line_rejected) {
    expect_load_error("tests/data/long_line.ini", 3, "characters long", NULL);
}

Test(config, experiment_name_is_path_safe) {
    expect_load_error("tests/data/bad_name.ini", 2, "experiment.name", "not a valid name", NULL);
}

/* ---- bad --set ---- */

Test(config, set_without_equals) { expect_set_error("model.layers", "missing '='", NULL); }
Test(config, set_without_section) { expect_set_error("layers=2", "not section.key", NULL); }
Test(config, set_unknown_key) {
    expect_set_error("model.layer=2", "unknown key 'layer' in [model]", "allowed keys: arch, layers", NULL);
}
Test(config, set_key_in_wrong_section) {
    expect_set_error("model.l2wrap=1", "unknown key 'l2wrap' in [model]", "l2wrap belongs in [train]", NULL);
}
Test(config, set_unknown_section) { expect_set_error("modle.layers=2", "unknown section 'modle'", NULL); }
Test(config, set_bad_value) { expect_set_error("model.layers=two", "'two' is not an integer", NULL); }
Test(config, set_out_of_range) { expect_set_error("train.batch=0", "out of range", "in [1, 1048576]", NULL); }
Test(config, set_bad_enum) {
    expect_set_error("task.variant=half", "'half' is not one of default|full|swaps|swaps3", NULL);
}
Test(config, set_nonfinite) { expect_set_error("train.lr=inf", "not a finite number", NULL); }
Test(config, set_int_overflow) { expect_set_error("train.steps=99999999999999999999999", "out of range", NULL); }
Test(config, set_comment_in_string) { expect_set_error("experiment.notes=a ;b", "comment", NULL); }
Test(config, set_sweep_of_list_key) { expect_set_error("sweep.task.test_lens=1,2", "cannot be swept", NULL); }

/* ---- config_validate on structs built in code ---- */

Test(config, validate_catches_code_values) {
    RunConfig c;
    Err err = {{0}};
    config_defaults(&c);
    c.model.layers = 0;
    cr_assert_eq(config_validate(&c, &err), -1);
    cr_assert(strstr(err.msg, "model.layers") && strstr(err.msg, "out of range"), "%s", err.msg);

    config_defaults(&c);
    c.model.head_size = 48;
    cr_assert_eq(config_validate(&c, &err), -1);
    cr_assert(strstr(err.msg, "does not divide"), "%s", err.msg);

    config_defaults(&c);
    c.task.ntest_lens = 0;
    cr_assert_eq(config_validate(&c, &err), -1);
    cr_assert(strstr(err.msg, "task.test_lens"), "%s", err.msg);

    config_defaults(&c);
    c.experiment.seeds[1] = 1;
    c.experiment.nseeds = 2;
    cr_assert_eq(config_validate(&c, &err), -1);
    cr_assert(strstr(err.msg, "lists 1 twice"), "%s", err.msg);

    config_defaults(&c);
    snprintf(c.train.schedule, CFG_STR, "linear");
    cr_assert_eq(config_validate(&c, &err), -1);
    cr_assert(strstr(err.msg, "cosine|constant"), "%s", err.msg);
}

/* issue 6 item 13: config_validate accepts exactly the tasks `train` can build. A5 has no transpositions,
 * so its "swaps" inputs would be only the identity: task_create rejects it, and so must validation
 * (before, `config` printed such a config and exit 0, then `train` refused it). */
Test(config, validate_rejects_task_variant_train_rejects) {
    static const struct {
        const char *name, *variant;
        int ok;
    } cases[] = {{"a5", "swaps", 0}, {"a5", "full", 1}, {"a5", "swaps3", 1}, {"s5", "swaps", 1}, {"s3", "swaps", 1}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        RunConfig c;
        config_defaults(&c);
        char a[64], b[64];
        snprintf(a, sizeof a, "task.name=%s", cases[i].name);
        snprintf(b, sizeof b, "task.variant=%s", cases[i].variant);
        set_ok(&c, a);
        set_ok(&c, b);
        Err err = {{0}};
        int rc = config_validate(&c, &err);
        cr_expect_eq(rc, cases[i].ok ? 0 : -1, "%s:%s: validate returned %d (%s)", cases[i].name, cases[i].variant,
                     rc, err.msg);
        if (!cases[i].ok)
            cr_expect(strstr(err.msg, "variant = 'swaps'") && strstr(err.msg, "a5") && strstr(err.msg, "full, swaps3"),
                      "message should name the variant, the task and the allowed variants: %s", err.msg);
    }
}

/* A file may leave task.variant to a later --set: loading "a5" alone (default variant swaps) succeeds,
 * validation of the resolved config decides. */
Test(config, task_variant_checked_on_the_resolved_config) {
    char path[] = "/tmp/rwkvlab_cfg_a5_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    const char *text = "[experiment]\nname = a5\n[task]\nname = a5\n";
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    RunConfig c;
    config_defaults(&c);
    Err err = {{0}};
    cr_assert_eq(config_load(&c, path, &err), 0, "%s", err.msg);
    cr_expect_eq(config_validate(&c, &err), -1, "a5 with the default variant swaps validated");
    set_ok(&c, "task.variant=full");
    cr_expect_eq(config_validate(&c, &err), 0, "%s", err.msg);
    unlink(path);
}

/* A model key an architecture does not have is refused by config as by train, naming the key. */
Test(config, arch_refuses_keys_it_does_not_have) {
    static const char *const cases[][3] = {
        {"model.arch=rwkv7", "model.expand_v=2", "model.expand_v"},
        {"model.arch=rwkv6", "model.expand_v=2", "model.expand_v"},
        {"model.arch=rwkv6", "model.eig_range=extended", "extended"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        RunConfig c;
        config_defaults(&c);
        set_ok(&c, cases[i][0]);
        set_ok(&c, cases[i][1]);
        Err err = {{0}};
        cr_expect_eq(config_validate(&c, &err), -1, "%s %s validated", cases[i][0], cases[i][1]);
        cr_expect(strstr(err.msg, cases[i][2]), "%s %s: message lacks '%s': %s", cases[i][0], cases[i][1], cases[i][2],
                  err.msg);
    }
}
