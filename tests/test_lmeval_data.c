/* test_lmeval_data.c -- lm-eval task loading (lmeval_data.h).
 *
 * Oracles: expected contexts/continuations written by hand from the rules in
 * ../shared/spec/lmeval.md (not from the loader's output), for tiny fixtures
 * (tests/fixtures/lmeval/good, bz2) and one spot-checked document per real task; malformed fixtures
 * (tests/fixtures/lmeval/bad) must fail with FILE:LINE messages; the LAMBADA token statistics from
 * ../shared/data/README.md check tokenizer + split together. Real-data tests look in data/ then
 * ../shared/data/ and skip when the files are in neither.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

#include "lmeval_data.h"
#include "tokenizer.h"

#define GOOD "tests/fixtures/lmeval/good"
#define BAD "tests/fixtures/lmeval/bad/"

static const char *real_data_dir(void) {
    if (access("data/evalsets/lambada_openai_test.jsonl", R_OK) == 0) return "data";
    if (access("../shared/data/evalsets/lambada_openai_test.jsonl", R_OK) == 0) return "../shared/data";
    return NULL;
}

static void load_ok(const char *name, const char *dir, LmTask *t) {
    Err err = {{0}};
    int rc = lmeval_task_load(name, dir, t, &err);
    cr_assert_eq(rc, 0, "%s from %s: %s", name, dir, err.msg);
}

/* Doc d: context(s), continuations, gold. ctx == NULL means per-choice contexts given in ctxs. */
static void expect_doc(const LmTask *t, int i, const char *ctx, const char *const *ctxs, int ncont,
                       const char *const *conts, int gold) {
    cr_assert_lt(i, t->ndocs);
    const LmDoc *d = &t->docs[i];
    cr_assert_eq(d->ncont, ncont, "%s doc %d: %d choices, want %d", t->name, i, d->ncont, ncont);
    for (int k = 0; k < ncont; k++) {
        const char *want_ctx = ctx ? ctx : ctxs[k];
        cr_assert_str_eq(lmeval_doc_context(d, k), want_ctx, "%s doc %d choice %d context", t->name, i, k);
        cr_assert_str_eq(d->cont[k], conts[k], "%s doc %d continuation %d", t->name, i, k);
    }
    if (ctx) {
        cr_assert_null(d->contexts);
        cr_assert_str_eq(d->context, ctx);
    }
    cr_assert_eq(d->gold, gold, "%s doc %d gold %d, want %d", t->name, i, d->gold, gold);
}

/* ---- fixtures: every template ------------------------------------------------------------------- */

Test(lmeval_data, fixture_lambada) {
    LmTask t;
    load_ok("lambada_openai", GOOD, &t);
    cr_assert_eq(t.ndocs, 3);
    cr_assert(t.is_loglik_ppl && !t.has_acc_norm);
    expect_doc(&t, 0, "The cat sat on the", NULL, 1, (const char *[]){" mat"}, 0);
    expect_doc(&t, 1, "Caf\xc3\xa9 au lait, s'il vous", NULL, 1, (const char *[]){" pla\xc3\xaet"}, 0);
    cr_assert_eq(t.docs[1].choice_len[0], 5); /* "plaît": 5 code points, 6 bytes */
    /* two spaces before the last word: the context keeps one of them (split at the LAST space) */
    expect_doc(&t, 2, "line one\nline two ", NULL, 1, (const char *[]){" end"}, 0);
    lmeval_task_free(&t);
}

Test(lmeval_data, fixture_piqa) {
    LmTask t;
    load_ok("piqa", GOOD, &t);
    cr_assert_eq(t.ndocs, 2);
    cr_assert(t.has_acc_norm);
    /* trailing space of sol1 kept; no stripping in lm-eval's piqa */
    expect_doc(&t, 0, "Question: Open a jar\nAnswer:", NULL, 2, (const char *[]){" twist the lid ", " hit the lid"}, 0);
    expect_doc(&t, 1, "Question: dresser\nAnswer:", NULL, 2, (const char *[]){" replace drawer", " finish, with  pin"}, 1);
    cr_assert_eq(t.docs[0].choice_len[0], 14);
    lmeval_task_free(&t);
}

static void check_hellaswag_fixture(const LmTask *t) {
    cr_assert_eq(t->ndocs, 2);
    cr_assert(t->has_acc_norm && t->note);
    /* strip; " [title]" -> ". "; drop [..]; "  " -> " " once (3 spaces -> 2); no final strip */
    expect_doc(t, 0, "Home: How to x. Do it.  Then go.", NULL, 4,
               (const char *[]){" end one", "  end two", " end three. more", " end four"}, 2);
    cr_assert_eq(t->docs[0].choice_len[1], 8); /* " end two" (its own leading space counts) */
    /* "[b [c]" is one non-greedy match */
    expect_doc(t, 1, "Sport: A man runs. he", NULL, 4, (const char *[]){" runs fast.", " spaced  out", " x", " y"}, 0);
}

Test(lmeval_data, fixture_hellaswag_text) {
    LmTask t;
    load_ok("hellaswag", GOOD, &t);
    check_hellaswag_fixture(&t);
    lmeval_task_free(&t);
}

Test(lmeval_data, fixture_hellaswag_bz2_multistream) {
    LmTask t;
    load_ok("hellaswag", "tests/fixtures/lmeval/bz2", &t);
    check_hellaswag_fixture(&t);
    lmeval_task_free(&t);
}

Test(lmeval_data, fixture_arc_obqa) {
    LmTask t;
    load_ok("arc_easy", GOOD, &t);
    cr_assert_eq(t.ndocs, 2);
    expect_doc(&t, 0, "Question: What is 1+1?\nAnswer:", NULL, 3, (const char *[]){" 1", " 2", " 3"}, 1);
    expect_doc(&t, 1, "Question: Pick e\nAnswer:", NULL, 5, (const char *[]){" a", " b", " c", " d", " \xc3\xa9"}, 4);
    cr_assert_eq(t.docs[1].choice_len[4], 1);
    lmeval_task_free(&t);
    load_ok("arc_challenge", GOOD, &t);
    expect_doc(&t, 0, "Question: Hard?\nAnswer:", NULL, 4, (const char *[]){" yes", " no", " maybe", " never"}, 3);
    lmeval_task_free(&t);
    load_ok("openbookqa", GOOD, &t);
    expect_doc(&t, 0, "Predators eat", NULL, 4, (const char *[]){" lions", " humans", " bunnies", " grass"}, 2);
    cr_assert(t.has_acc_norm);
    lmeval_task_free(&t);
}

Test(lmeval_data, fixture_winogrande) {
    LmTask t;
    load_ok("winogrande", GOOD, &t);
    cr_assert(!t.has_acc_norm);
    expect_doc(&t, 0, NULL, (const char *[]){"Ann helped Bo because Ann", "Ann helped Bo because Bo"}, 2,
               (const char *[]){" was kind.", " was kind."}, 0);
    cr_assert_null(t.docs[0].context);
    lmeval_task_free(&t);
}

Test(lmeval_data, fixture_copa) {
    LmTask t;
    load_ok("copa", GOOD, &t);
    /* only the final ", therefore" loses its comma; two spaces before each choice */
    expect_doc(&t, 0, "He stayed, because it rained therefore", NULL, 2, (const char *[]){"  he got wet.", "  he was dry."}, 1);
    expect_doc(&t, 1, "The glass broke because", NULL, 2, (const char *[]){"  it fell.", "  it sang."}, 0);
    lmeval_task_free(&t);
}

Test(lmeval_data, fixture_sciq) {
    LmTask t;
    load_ok("sciq", GOOD, &t);
    /* support.lstrip() removes "\n", " " and U+00A0 (Python whitespace) */
    expect_doc(&t, 0, "Water boils at 100 C.\nQuestion: When does water boil?\nAnswer:", NULL, 4,
               (const char *[]){" 50 C", " 0 C", " 10 C", " 100 C"}, 3);
    lmeval_task_free(&t);
}

Test(lmeval_data, hellaswag_preprocess_rules) {
    struct {
        const char *in, *out;
    } c[] = {
        {"  a  b  ", "a b"},
        {"a   b", "a  b"},                 /* one pass: three spaces -> two */
        {"a    b", "a  b"},                /* four -> two */
        {"x [title] y", "x. y"},           /* ". " then the double space is halved */
        {"x [title]y", "x. y"},
        {"[title] y", " y"},               /* no leading space: only the bracket rule applies */
        {"a [b] c [d]", "a c "},           /* no final strip */
        {"a [b c", "a [b c"},              /* unclosed bracket stays */
        {"a ]b[ c] d", "a ]b d"},
        {"\xc2\xa0\xe3\x80\x80hi\xe2\x80\x83", "hi"}, /* Unicode whitespace stripped like Python */
        {"", ""},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char *o = lmeval_hellaswag_preprocess(c[i].in);
        cr_assert_str_eq(o, c[i].out, "preprocess(\"%s\") = \"%s\", want \"%s\"", c[i].in, o, c[i].out);
        free(o);
    }
}

Test(lmeval_data, utf8_len) {
    cr_assert_eq(lmeval_utf8_len(""), 0);
    cr_assert_eq(lmeval_utf8_len("abc"), 3);
    cr_assert_eq(lmeval_utf8_len("\xe4\xbd\xa0\xe5\xa5\xbd"), 2);
    cr_assert_eq(lmeval_utf8_len("\xf0\x9f\x98\x80!"), 2);
}

Test(lmeval_data, unknown_task_lists_allowed) {
    LmTask t;
    Err err = {{0}};
    cr_assert_neq(lmeval_task_load("mmlu", GOOD, &t, &err), 0);
    cr_assert(strstr(err.msg, "mmlu") && strstr(err.msg, lmeval_task_names()), "message: %s", err.msg);
    cr_assert(strstr(lmeval_task_names(), "winogrande"));
    cr_assert_eq(t.ndocs, 0);
    lmeval_task_free(&t);
    cr_assert_neq(lmeval_task_load("piqa", "tests/fixtures/lmeval/nowhere", &t, &err), 0);
    cr_assert(strstr(err.msg, "not found"), "message: %s", err.msg);
}

/* ---- malformed inputs: FILE:LINE errors, no crash --------------------------------------------- */

Test(lmeval_data, malformed_files) {
    struct {
        const char *task, *file, *labels, *where, *what;
    } c[] = {
        {"arc_easy", "bad_json.jsonl", NULL, "bad_json.jsonl:2:", "invalid JSON"},
        {"lambada_openai", "trailing_garbage.jsonl", NULL, "trailing_garbage.jsonl:1:", "invalid JSON"},
        {"arc_easy", "missing_field.jsonl", NULL, "missing_field.jsonl:3:", "missing field \"gold\""},
        {"arc_easy", "wrong_type.jsonl", NULL, "wrong_type.jsonl:1:", "\"choices\" must be an array"},
        {"openbookqa", "wrong_type_query.jsonl", NULL, "wrong_type_query.jsonl:1:", "\"query\" must be a string"},
        {"openbookqa", "wrong_type_elem.jsonl", NULL, "wrong_type_elem.jsonl:1:", "\"choices\"[1] must be a string"},
        {"arc_challenge", "gold_range.jsonl", NULL, "gold_range.jsonl:2:", "gold 4 out of range"},
        {"arc_challenge", "gold_negative.jsonl", NULL, "gold_negative.jsonl:1:", "out of range"},
        {"copa", "gold_float.jsonl", NULL, "gold_float.jsonl:1:", "must be an integer"},
        {"copa", "gold_string.jsonl", NULL, "gold_string.jsonl:1:", "must be an integer"},
        {"arc_easy", "not_object.jsonl", NULL, "not_object.jsonl:1:", "expected a JSON object"},
        {"arc_easy", "empty.jsonl", NULL, "empty.jsonl", "empty dataset"},
        {"lambada_openai", "lambada_nospace.jsonl", NULL, "lambada_nospace.jsonl:2:", "no space"},
        {"copa", "copa_noconn.jsonl", NULL, "copa_noconn.jsonl:1:", "must end with"},
        {"lambada_openai", "bad_utf8.jsonl", NULL, "bad_utf8.jsonl:1:", "not valid UTF-8"},
        {"lambada_openai", "nul_byte.jsonl", NULL, "nul_byte.jsonl:2:", "NUL byte"},
        {"winogrande", "one_choice.jsonl", NULL, "one_choice.jsonl:1:", "at least 2"},
        {"sciq", "sciq_missing.jsonl", NULL, "sciq_missing.jsonl:1:", "missing field \"support\""},
        {"piqa", "piqa.jsonl", BAD "piqa_labels_short.lst", "piqa_labels_short.lst", "1 labels for the 2 items"},
        {"piqa", "piqa.jsonl", BAD "piqa_labels_long.lst", "piqa_labels_long.lst:3:", "more labels"},
        {"piqa", "piqa.jsonl", BAD "piqa_labels_bad.lst", "piqa_labels_bad.lst:2:", "must be 0 or 1"},
        {"piqa", "piqa.jsonl", BAD "no_such_labels.lst", "no_such_labels.lst", "cannot open"},
        {"hellaswag", "hellaswag_truncated.txt", NULL, "hellaswag_truncated.txt:8:", "truncated item"},
        {"hellaswag", "hellaswag_badgold.txt", NULL, "hellaswag_badgold.txt:2:", "gold must be"},
        {"hellaswag", "hellaswag_badutf8.txt", NULL, "hellaswag_badutf8.txt:4:", "not valid UTF-8"},
        {"hellaswag", "hellaswag_truncated.txt.bz2", NULL, "hellaswag_truncated.txt.bz2", "corrupt"},
        {"hellaswag", "hellaswag_notbz2.txt.bz2", NULL, "hellaswag_notbz2.txt.bz2", "corrupt"},
        {"arc_easy", "no_such_file.jsonl", NULL, "no_such_file.jsonl", "cannot open"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, BAD "%s", c[i].file);
        LmTask t;
        Err err = {{0}};
        int rc = lmeval_task_load_file(c[i].task, path, c[i].labels, &t, &err);
        cr_assert_neq(rc, 0, "%s loaded", c[i].file);
        cr_assert(strstr(err.msg, c[i].where) && strstr(err.msg, c[i].what), "%s: message '%s' lacks '%s' / '%s'",
                  c[i].file, err.msg, c[i].where, c[i].what);
        cr_assert(t.ndocs == 0 && t.docs == NULL, "%s: partial task left behind", c[i].file);
        lmeval_task_free(&t);
        cr_log_info("%s -> %s", c[i].file, err.msg);
    }
}

/* ---- request tokenisation ---------------------------------------------------------------------- */

static Tokenizer *real_tokenizer(void) {
    const char *paths[] = {"data/rwkv_vocab_v20230424.txt", "../shared/data/rwkv_vocab_v20230424.txt"};
    for (int i = 0; i < 2; i++) {
        if (access(paths[i], R_OK) != 0) continue;
        Err err = {{0}};
        Tokenizer *t = tokenizer_load(paths[i], &err);
        cr_assert_not_null(t, "%s", err.msg);
        return t;
    }
    cr_skip_test("rwkv_vocab_v20230424.txt not in data/ or ../shared/data/");
    return NULL;
}

static int *enc(const Tokenizer *t, const char *s, size_t *n) {
    int *ids;
    Err err = {{0}};
    cr_assert_eq(tokenizer_encode(t, s, strlen(s), &ids, n, &err), 0);
    return ids;
}

Test(lmeval_data, encode_request_rules) {
    Tokenizer *tok = real_tokenizer();
    int *ci, *ki;
    size_t nc, nk, na, nb;
    Err err = {{0}};
    /* trailing whitespace of the context moves to the continuation: ctx "The city of " + "Paris"
     * must tokenise like ctx "The city of" + " Paris" */
    cr_assert_eq(lmeval_encode_request(tok, "The city of ", "Paris", LMEVAL_SPLIT_LMEVAL, 0, &ci, &nc, &ki, &nk, &err), 0,
                 "%s", err.msg);
    int *a = enc(tok, "The city of", &na), *b = enc(tok, "The city of Paris", &nb);
    cr_assert_eq(nc, na + 1);
    cr_assert_eq(ci[0], 0, "prefix token 0 first");
    cr_assert_eq(memcmp(ci + 1, a, na * sizeof *a), 0);
    cr_assert_eq(nk, nb - na);
    cr_assert_eq(memcmp(ki, b + na, nk * sizeof *b), 0, "continuation = whole[len(ctx):]");
    free(ci), free(ki), free(a), free(b);
    /* separate split, no prefix */
    cr_assert_eq(lmeval_encode_request(tok, "Hello", " world!", LMEVAL_SPLIT_SEPARATE, -1, &ci, &nc, &ki, &nk, &err), 0);
    cr_assert(nc == 1 && ci[0] == 33155 && nk == 2 && ki[0] == 40213 && ki[1] == 34);
    free(ci), free(ki);
    /* newline prefix */
    cr_assert_eq(lmeval_encode_request(tok, "Hello", " world!", LMEVAL_SPLIT_LMEVAL, 11, &ci, &nc, &ki, &nk, &err), 0);
    cr_assert(nc == 2 && ci[0] == 11 && ci[1] == 33155 && nk == 2);
    free(ci), free(ki);
    tokenizer_free(tok);
}

/* ---- real data: counts, one spot check per task, LAMBADA statistics ------------------------------ */

#define NEED_REAL_DATA()                                                                                      \
    const char *dir = real_data_dir();                                                                      \
    if (!dir) cr_skip_test("evalsets not in data/ or ../shared/data/ (run `make data`)")

Test(lmeval_data, real_counts) {
    NEED_REAL_DATA();
    struct {
        const char *name;
        int n;
    } c[] = {{"lambada_openai", 5153}, {"piqa", 1838},       {"hellaswag", 10042}, {"arc_easy", 2376},
             {"arc_challenge", 1172},  {"winogrande", 1267}, {"openbookqa", 500},  {"copa", 100}};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        LmTask t;
        double t0 = now_seconds();
        load_ok(c[i].name, dir, &t);
        cr_assert_eq(t.ndocs, c[i].n, "%s: %d docs, want %d", c[i].name, t.ndocs, c[i].n);
        for (int k = 0; k < t.ndocs; k++)
            cr_assert(t.docs[k].gold >= 0 && t.docs[k].gold < t.docs[k].ncont, "%s doc %d gold", c[i].name, k);
        cr_log_info("%s: %d docs from %s in %.3f s", c[i].name, t.ndocs, t.source, now_seconds() - t0);
        lmeval_task_free(&t);
    }
    LmTask t;
    Err err = {{0}};
    cr_assert_neq(lmeval_task_load("sciq", dir, &t, &err), 0, "sciq has no data file here");
    cr_assert(strstr(err.msg, "sciq_test.jsonl"), "%s", err.msg);
}

/* Expected strings below are the spec's templates applied by hand to the first lines of each file. */
Test(lmeval_data, real_spot_checks) {
    NEED_REAL_DATA();
    LmTask t;
    load_ok("lambada_openai", dir, &t);
    const char *head = "In my palm is a clear stone, and inside it is a small ivory statuette.";
    cr_assert(strncmp(t.docs[0].context, head, strlen(head)) == 0, "lambada doc 0 context: %.80s", t.docs[0].context);
    size_t lc = strlen(t.docs[0].context);
    const char *tail = "his mouth curved in a confident grin, I don't care about";
    cr_assert_str_eq(t.docs[0].context + lc - strlen(tail), tail);
    cr_assert_str_eq(t.docs[0].cont[0], " signs");
    lmeval_task_free(&t);

    load_ok("piqa", dir, &t);
    expect_doc(&t, 1, "Question: dresser\nAnswer:", NULL, 2,
               (const char *[]){" replace drawer with bobby pin ", " finish, woodgrain with  bobby pin "}, 1);
    lmeval_task_free(&t);

    load_ok("arc_easy", dir, &t);
    expect_doc(&t, 1,
               "Question: Which piece of safety equipment is used to keep mold spores from entering the respiratory "
               "system?\nAnswer:",
               NULL, 4, (const char *[]){" safety goggles", " breathing mask", " rubber gloves", " lead apron"}, 1);
    lmeval_task_free(&t);

    load_ok("arc_challenge", dir, &t);
    expect_doc(&t, 0,
               "Question: An astronomer observes that a planet rotates faster after a meteorite impact. Which is the "
               "most likely effect of this increase in rotation?\nAnswer:",
               NULL, 4,
               (const char *[]){" Planetary density will decrease.", " Planetary years will become longer.",
                                " Planetary days will become shorter.", " Planetary gravity will become stronger."},
               2);
    lmeval_task_free(&t);

    load_ok("openbookqa", dir, &t);
    expect_doc(&t, 1, "There is most likely going to be fog around:", NULL, 4,
               (const char *[]){" a marsh", " a tundra", " the plains", " a desert"}, 0);
    lmeval_task_free(&t);

    load_ok("copa", dir, &t);
    expect_doc(&t, 0, "The man turned on the faucet therefore", NULL, 2,
               (const char *[]){"  the toilet filled with water.", "  water flowed from the spout."}, 1);
    expect_doc(&t, 4, "The hamburger meat browned because", NULL, 2,
               (const char *[]){"  the cook froze it.", "  the cook grilled it."}, 1);
    lmeval_task_free(&t);

    load_ok("winogrande", dir, &t);
    expect_doc(&t, 0, NULL,
               (const char *[]){"Sarah was a much better surgeon than Maria so Sarah",
                                "Sarah was a much better surgeon than Maria so Maria"},
               2, (const char *[]){" always got the easier cases.", " always got the easier cases."}, 1);
    lmeval_task_free(&t);

    load_ok("hellaswag", dir, &t);
    expect_doc(&t, 0, "Roof shingle removal: A man is sitting on a roof. he", NULL, 4,
               (const char *[]){" is using wrap to wrap a pair of skis.", " is ripping level tiles off.",
                                " is holding a rubik's cube.", " starts pulling up roofing on a roof."},
               3);
    /* item 3505 (file line 21031): "[www.kiddio.org]" removed, the double space left behind halved */
    const char *ctx3505 = "Family Life: How to entertain a toddler. Ask the toddler what he or she would like to do "
                          "instead of doing what you would like to do.. Visit a site like to find loads of creative "
                          "activities for toddlers and preschoolers.. Choose small, simple games like candy land or "
                          "chutes and ladders.";
    cr_assert_str_eq(t.docs[3505].context, ctx3505);
    cr_assert_eq(t.docs[3505].gold, 1);
    /* item 4078 ending 0: "[a [your name]" is one non-greedy match */
    cr_assert(strstr(t.docs[4078].cont[0], "snap back by putting right beside your current name.") != NULL, "%s",
              t.docs[4078].cont[0]);
    /* item 4121 ending 1: "bed.  Do" -> "bed. Do" */
    cr_assert_str_eq(t.docs[4121].cont[1],
                     " Stop when you are not overly tired and give yourself a break before going to bed. Do not be "
                     "embarrassed by physical exertion.");
    lmeval_task_free(&t);
}

/* README: "With token 0 prefixed and contexts tokenised separately, LAMBADA has 401,739 context tokens
 * and 6,918 target tokens (1,511 targets are multi-token)." (see the note on the prefix below) */
Test(lmeval_data, lambada_token_statistics) {
    NEED_REAL_DATA();
    Tokenizer *tok = real_tokenizer();
    LmTask t;
    load_ok("lambada_openai", dir, &t);
    size_t ctx_tokens = 0, tgt_tokens = 0, multi = 0, bytes = 0;
    double t0 = now_seconds();
    for (int i = 0; i < t.ndocs; i++) {
        int *ci, *ki;
        size_t nc, nk;
        Err err = {{0}};
        cr_assert_eq(lmeval_encode_request(tok, t.docs[i].context, t.docs[i].cont[0], LMEVAL_SPLIT_SEPARATE, 0, &ci,
                                           &nc, &ki, &nk, &err),
                     0, "%s", err.msg);
        ctx_tokens += nc;
        tgt_tokens += nk;
        multi += nk > 1;
        bytes += strlen(t.docs[i].context) + strlen(t.docs[i].cont[0]);
        free(ci);
        free(ki);
    }
    double dt = now_seconds() - t0;
    cr_log_info("LAMBADA: %d docs, %zu bytes: %zu context tokens (token 0 prefixed), %zu target tokens, %zu "
                "multi-token targets; tokenised in %.3f s (%.1f MB/s)",
                t.ndocs, bytes, ctx_tokens, tgt_tokens, multi, dt, bytes / dt / 1e6);
    /* The README's 401,739 counts the context tokens WITHOUT the prefix token: with it there are
     * 401,739 + 5,153 (one per document). An independent Python greedy tokenizer (ast.literal_eval of the
     * vocabulary) gives the same 401,739 / 6,918 / 1,511 and identical ids. */
    cr_assert_eq(ctx_tokens, 401739 + (size_t)t.ndocs, "context tokens with prefix: %zu", ctx_tokens);
    cr_assert_eq(ctx_tokens - (size_t)t.ndocs, 401739);
    cr_assert_eq(tgt_tokens, 6918);
    cr_assert_eq(multi, 1511);
    /* speed is measured by `make bench` (BENCHMARKS.md), not asserted here */
    lmeval_task_free(&t);
    tokenizer_free(tok);
}

/* ---- a huge document line is refused while reading (it used to reach scoring and fail there with "out of
 * memory at rwkv7.c": a 20M-word lambada line asked for 1 TB of activations) ------------------------- */
static void write_lambada_line(FILE *f, size_t nbytes) { /* {"text": "w w ... w"} of exactly nbytes */
    const char *head = "{\"text\": \"", *tail = "\"}";
    size_t body = nbytes - strlen(head) - strlen(tail);
    fputs(head, f);
    for (size_t i = 0; i < body; i++) fputc(i + 1 == body ? 'x' : i % 2 ? ' ' : 'w', f); /* ends in a word */
    fputs(tail, f);
    fputc('\n', f);
}

Test(lmeval_data, document_line_size_limit) {
    char path[64] = "/tmp/rwkvlab_lmline_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("{\"text\": \"a short doc\"}\n", f);
    write_lambada_line(f, 65536); /* exactly at the limit: a document */
    fclose(f);
    LmTask t;
    Err err = {{0}};
    cr_assert_eq(lmeval_task_load_file("lambada_openai", path, NULL, &t, &err), 0, "%s", err.msg);
    cr_assert_eq(t.ndocs, 2);
    lmeval_task_free(&t);
    f = fopen(path, "a");
    write_lambada_line(f, 65537); /* line 3: one byte over */
    fclose(f);
    cr_assert_neq(lmeval_task_load_file("lambada_openai", path, NULL, &t, &err), 0);
    char want[128];
    snprintf(want, sizeof want, "%s:3: line of 65537 bytes is over the 65536-byte limit for one document", path);
    cr_assert(strstr(err.msg, want), "message '%s' lacks '%s'", err.msg, want);
    cr_assert(t.ndocs == 0 && t.docs == NULL);
    /* the same for the hellaswag text reader */
    cr_assert_neq(lmeval_task_load_file("hellaswag", path, NULL, &t, &err), 0);
    cr_assert(strstr(err.msg, ":3: line of 65537 bytes"), "%s", err.msg);
    unlink(path);
}
