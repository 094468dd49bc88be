/* lmeval_data.h -- lm-evaluation-harness (v0.4.8, 0-shot) task files turned into scoring documents.
 *
 * Scope: read each task's data file (../shared/spec/lmeval.md, "Tasks") and render every item into one
 * LmDoc: context(s), continuations (choices, each starting with the target delimiter), gold index and
 * the acc_norm length of each choice. Scoring, tokenisation splits and metrics live elsewhere; the one
 * tokenisation helper here (lmeval_encode_request) implements lmeval.md's request rule.
 *
 * Rules (lmeval.md):
 *   lambada_openai  context = text before the last ' ' (U+0020); one continuation " " + last word; gold 0;
 *                   metrics perplexity + acc (is_loglik_ppl = 1).
 *   piqa            "Question: {goal}\nAnswer:"; " " + sol1, " " + sol2; gold from piqa_valid-labels.lst.
 *   hellaswag       preprocess(line 1); " " + preprocess(ending) x4; gold = line 2 (this file holds the
 *                   joined, uncapitalised ctx: scores come from that rendering, see LMEVAL_HELLASWAG_NOTE).
 *   arc_easy/_challenge  query + "\nAnswer:"; " " + choice; gold.
 *   winogrande      per-choice contexts = context_options; continuation " " + continuation (shared).
 *   openbookqa      query; " " + choice; gold.
 *   copa            query with its final ", because" / ", therefore" turned into " because" /
 *                   " therefore"; "  " + choice (two spaces); gold. (lm-eval's choice text is
 *                   " " + choice, so choice_len counts that space; copa reports acc only.)
 *   sciq            support.lstrip() + "\nQuestion: " + question + "\nAnswer:"; " " + distractor1..3,
 *                   " " + correct_answer; gold 3 (file sciq_test.jsonl, allenai/sciq fields; optional).
 * JSON files hold one object per line (blank lines skipped; line numbers count them). Every string is
 * checked to be valid UTF-8. Malformed input (bad JSON, missing field, wrong type, gold
 * out of range, label count mismatch, empty dataset) gives an error "FILE:LINE: ..." and no crash.
 *
 * Files are looked up as DATA_DIR/evalsets/NAME, then DATA_DIR/NAME (so DATA_DIR may be `data` or
 * `data/evalsets`). HellaSwag is read from hellaswag_val_full.txt.bz2 (libbz2, link -lbz2) or, if
 * that is absent, from a decompressed hellaswag_val_full.txt.
 */
#ifndef RWKV_LMEVAL_DATA_H
#define RWKV_LMEVAL_DATA_H

#include <stddef.h>

#include "common.h"
#include "tokenizer.h"

typedef struct {
    char *context;      /* shared context; NULL when `contexts` is set (use lmeval_doc_context) */
    char **contexts;    /* (ncont) per-choice contexts (winogrande) or NULL */
    int ncont;          /* number of continuations (1 for lambada) */
    char **cont;        /* (ncont) continuations, each including the leading target delimiter */
    size_t *choice_len; /* (ncont) Python len() (Unicode code points) of the choice text without the
                           delimiter: the acc_norm divisor (acc_bytes uses strlen(cont[i]) - 1) */
    int gold;           /* gold index in [0, ncont) */
} LmDoc;

typedef struct {
    char name[32];
    int ndocs;
    LmDoc *docs;
    int is_loglik_ppl;  /* lambada: perplexity + acc over one continuation */
    int has_acc_norm;   /* piqa, hellaswag, arc_*, openbookqa, sciq */
    char source[1024];  /* the file(s) read */
    const char *note;   /* rendering caveat to print in outputs, or NULL */
} LmTask;

#define LMEVAL_HELLASWAG_NOTE                                                                           \
    "hellaswag contexts rendered from hellaswag_val_full.txt (joined ctx, no ctx_b capitalisation); an "  \
    "exact lm-eval match needs the original hellaswag_val.jsonl"

/* Load task `task_name` (one of lmeval_task_names()) from `data_dir`. 0 on success; on failure
 * nonzero, `err` filled and *t left empty (safe to lmeval_task_free). */
int lmeval_task_load(const char *task_name, const char *data_dir, LmTask *t, Err *err);

/* Load from explicit files: `path` is the task's data file, `labels_path` the PIQA label file (NULL
 * for other tasks). Used by lmeval_task_load and by tests with fixtures. */
int lmeval_task_load_file(const char *task_name, const char *path, const char *labels_path, LmTask *t,
                          Err *err);

void lmeval_task_free(LmTask *t);

/* "lambada_openai, piqa, hellaswag, arc_easy, arc_challenge, winogrande, openbookqa, copa, sciq" */
const char *lmeval_task_names(void);

/* Context of choice i (per-choice contexts for winogrande, otherwise the shared one). */
const char *lmeval_doc_context(const LmDoc *d, int i);

/* Number of Unicode code points in a NUL-terminated UTF-8 string (Python len()). */
size_t lmeval_utf8_len(const char *s);

/* lm-eval's hellaswag preprocess: strip(); " [title]" -> ". "; remove \[.*?\]; "  " -> " " once.
 * Returns a new string (caller frees). Exposed for tests. */
char *lmeval_hellaswag_preprocess(const char *text);

/* Tokenise one request. split = LMEVAL_SPLIT_LMEVAL: trailing whitespace of the context moves to the
 * front of the continuation, whole = tok(ctx + cont), ctx_ids = tok(ctx), cont_ids = whole[len(ctx_ids):]
 * (lm-eval); LMEVAL_SPLIT_SEPARATE: ctx_ids = tok(ctx), cont_ids = tok(cont) (BlinkDL's check).
 * prefix >= 0 is prepended to ctx_ids (0 or the id of "\n"); -1 for none. Arrays are new (caller frees). */
enum { LMEVAL_SPLIT_LMEVAL = 0, LMEVAL_SPLIT_SEPARATE = 1 };
int lmeval_encode_request(const Tokenizer *tok, const char *ctx, const char *cont, int split, int prefix,
                          int **ctx_ids, size_t *nctx, int **cont_ids, size_t *ncont, Err *err);

#endif
