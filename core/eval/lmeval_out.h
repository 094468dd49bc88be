/* lmeval_out.h -- lm-eval 0.4-compatible output files: names, number formatting, collision-free writes.
 *
 * Scope: what `rwkvlab lmeval` writes must be readable by scripts written for lm-evaluation-harness
 * v0.4.x (lmeval.md, "Output"). This module holds the rules that are about files and text, not scores:
 *   - where: OUT/<model_name_sanitized>/results_<date_id>.json and samples_<task>_<date_id>.jsonl, or,
 *     when OUT ends in ".json", dirname(OUT)/<stem>_<date_id>.json with the samples next to it
 *     (lm-eval's EvaluationTracker); the directory is created like `mkdir -p`.
 *   - names: model_name_sanitized = every run of the characters  " < > : / | \ ? * [ ]  replaced by "__"
 *     (lm_eval.utils.sanitize_model_name); date_id = local time as %Y-%m-%dT%H-%M-%S.%f (microseconds,
 *     lm-eval's datetime.now().isoformat() with ':' -> '-').
 *   - numbers: a float is written so that Python's json reads a float back: the shortest digits that
 *     round-trip, always with a '.' or an exponent ("0.0", "1.0", "0.6931471805599453", "1e-05"), as
 *     Python's repr(float); NaN and infinities become null in JSON (they are not JSON numbers).
 *   - no overwrite: files are published with link(2), which fails rather than replace an existing name;
 *     when any name of a run is taken, the stamp moves on by one microsecond and all are tried again. The
 *     results file is published last, so a results file never exists without its samples.
 */
#ifndef RWKV_LMEVAL_OUT_H
#define RWKV_LMEVAL_OUT_H

#include <stddef.h>

#include "common.h"

struct cJSON;

/* lm-eval's sanitize_model_name (see above) into out (truncated to cap - 1 bytes). */
void lmeval_sanitize_model_name(const char *name, char *out, size_t cap);

/* date_id of a time given in microseconds since the epoch, local time: "2025-03-01T12-34-56.012345". */
void lmeval_date_id(long long usec, char *out, size_t cap);

/* Python repr() of a double ("0.0", "1e-05", "nan", "inf", "-inf"); out holds at least 32 bytes. */
void lmeval_py_float(double x, char *out, size_t cap);

/* Add key: x to obj as a JSON float (repr digits; null when not finite). Returns the item. */
struct cJSON *lmeval_json_add_float(struct cJSON *obj, const char *key, double x);
/* A JSON float item (for arrays). */
struct cJSON *lmeval_json_float(double x);

/* A growing byte buffer whose growth is checked (an error, not an abort, when memory runs out). */
typedef struct {
    char *p;
    size_t len, cap;
} LmBuf;
int lmbuf_add(LmBuf *b, const char *s, size_t n, Err *err);
void lmbuf_free(LmBuf *b);

/* Output location for OUT and a model name: *dir gets the directory to create, *results_prefix the
 * results file's name before the date_id ("results_" or "<stem>_"). */
int lmeval_out_location(const char *out, const char *model_name, char *dir, size_t dcap, char *results_prefix,
                        size_t pcap, Err *err);

/* mkdir -p dir, then prove that a file can be created in it (and remove that file). *created gets the
 * shallowest directory this call created ("" if dir existed), for lmeval_out_unprepare. */
int lmeval_out_prepare(const char *dir, char *created, size_t cap, Err *err);
/* After a failed run: remove the directories lmeval_out_prepare created, if they are still empty. */
void lmeval_out_unprepare(const char *dir, const char *created);

/* One output file: its name is prefix + date_id + suffix inside the output directory. */
typedef struct {
    const char *prefix, *suffix;
    const char *data;
    size_t len;
} LmOutFile;

/* Write files[0..n) into dir under the first date_id >= usec (in steps of 1 us, at most 10^6 tries) for
 * which none of their names exists; files are published in order (put the results file last). On
 * success the date_id used is in stamp and 0 is returned; on failure nothing of this call is left. */
int lmeval_publish(const char *dir, const LmOutFile *files, int n, long long usec, char *stamp, size_t scap,
                   Err *err);

/* Microseconds since the epoch now (CLOCK_REALTIME). */
long long lmeval_now_usec(void);

#endif
