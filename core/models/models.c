/* models.c -- the registry of architectures: one line per architecture, looked up by `model.arch`. */
#include <string.h>

#include "model.h"

extern const ModelArch model_rwkv7;
extern const ModelArch model_rwkv6;
extern const ModelArch model_deltanet;
extern const ModelArch model_gated_deltanet;

const ModelArch *const model_archs[] = {
    &model_rwkv7,
    &model_rwkv6,
    &model_deltanet,
    &model_gated_deltanet,
    NULL,
};

const ModelArch *model_arch_find(const char *name) {
    for (int i = 0; model_archs[i]; i++)
        if (name && !strcmp(model_archs[i]->name, name)) return model_archs[i];
    return NULL;
}

const char *model_arch_names(void) {
    static char buf[256];
    if (!buf[0])
        for (int i = 0; model_archs[i]; i++)
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? "|" : "", model_archs[i]->name);
    return buf;
}
