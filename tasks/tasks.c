/* tasks.c -- the registry of synthetic task families: one line per family (task.h). Config validation
 * reads its names, variants and keys from here. */
#include <string.h>

#include "task.h"

extern const TaskKind task_word_problem;
extern const TaskKind task_regular;
extern const TaskKind task_dfa;
extern const TaskKind task_ar, task_mqar;

const TaskKind *const task_kinds[] = {
    &task_word_problem,
    &task_regular,
    &task_dfa,
    &task_ar,
    &task_mqar,
    NULL,
};

const TaskKind *task_kind_find(const char *name) {
    for (int i = 0; name && task_kinds[i]; i++)
        if (task_kinds[i]->accepts(name)) return task_kinds[i];
    return NULL;
}

const char *task_names(void) {
    static char buf[1024];
    if (!buf[0])
        for (int i = 0; task_kinds[i]; i++)
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? "|" : "", task_kinds[i]->names);
    return buf;
}

/* "default" then every family's variants, each once */
const char *task_variant_names(void) {
    static char buf[1024];
    if (buf[0]) return buf;
    snprintf(buf, sizeof buf, "default");
    for (int i = 0; task_kinds[i]; i++) {
        const char *p = task_kinds[i]->variants;
        while (p && *p) {
            const char *e = strchr(p, '|');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            char v[64];
            snprintf(v, sizeof v, "%.*s", (int)len, p);
            int seen = 0;
            for (const char *q = buf; *q;) { /* already listed? */
                const char *f = strchr(q, '|');
                size_t l2 = f ? (size_t)(f - q) : strlen(q);
                seen |= l2 == strlen(v) && !strncmp(q, v, l2);
                q = f ? f + 1 : q + l2;
            }
            if (!seen) snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "|%s", v);
            p = e ? e + 1 : NULL;
        }
    }
    return buf;
}

int task_param_declared(const char *key) {
    for (int i = 0; task_kinds[i]; i++)
        for (int j = 0; j < task_kinds[i]->nparams; j++)
            if (!strcmp(task_kinds[i]->params[j].key, key)) return 1;
    return 0;
}
