/* fuzz_lm.c -- libFuzzer harness over the lm-eval task loaders (tasks/lmeval_data.c): byte 0 picks the
 * task, the rest is the data file (PIQA also gets a labels file cut from it). Build: see README.md. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "lmeval_data.h"
static const char *names[] = {"lambada_openai","piqa","hellaswag","arc_easy","winogrande","openbookqa","copa","sciq"};
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    if (n < 1) return 0;
    char path[64], lab[64];
    snprintf(path, sizeof path, "/dev/shm/fz_lm_%d.txt", (int)getpid());
    snprintf(lab, sizeof lab, "/dev/shm/fz_lab_%d.txt", (int)getpid());
    FILE *f = fopen(path, "wb"); fwrite(d + 1, 1, n - 1, f); fclose(f);
    f = fopen(lab, "wb"); fwrite(d + 1, 1, (n - 1) / 3, f); fclose(f);
    int ti = d[0] % 8;
    LmTask t; Err e;
    if (lmeval_task_load_file(names[ti], path, ti == 1 ? lab : NULL, &t, &e) == 0) {
        for (int i = 0; i < t.ndocs; i++)
            for (int k = 0; k < t.docs[i].ncont; k++) { (void)strlen(lmeval_doc_context(&t.docs[i], k)); (void)strlen(t.docs[i].cont[k]); }
    }
    lmeval_task_free(&t);
    return 0;
}
