/* Pieces of kube/backend.h shared by every backend: kind names and result allocation. */
#include "backend.h"

#include <string.h>

static const char *const kind_names[KUBE_KIND_COUNT] = {
    "pod", "deployment", "replicaset", "service", "configmap", "secret",
};

static const char *const kind_titles[KUBE_KIND_COUNT] = {
    "Pod", "Deployment", "ReplicaSet", "Service", "ConfigMap", "Secret",
};

const char *kube_kind_name(enum kube_kind k)
{
    return (unsigned)k < KUBE_KIND_COUNT ? kind_names[k] : NULL;
}

const char *kube_kind_title(enum kube_kind k)
{
    return (unsigned)k < KUBE_KIND_COUNT ? kind_titles[k] : NULL;
}

int kube_kind_parse(const char *s, enum kube_kind *out)
{
    for (int k = 0; k < KUBE_KIND_COUNT; k++) {
        if (strcmp(s, kind_names[k]) == 0) {
            *out = (enum kube_kind)k;
            return 0;
        }
    }
    return -1;
}

void *kube_alloc(const struct kube_ctx *ctx, size_t n)
{
    return ctx->alloc(ctx->alloc_arg, n > 0 ? n : 1);
}

char *kube_strdup(const struct kube_ctx *ctx, const char *s)
{
    size_t n;
    char *d;
    if (s == NULL)
        return NULL;
    n = strlen(s);
    if ((d = kube_alloc(ctx, n + 1)) != NULL)
        memcpy(d, s, n + 1);
    return d;
}

void kube_backend_free(struct kube_backend *b)
{
    if (b != NULL)
        b->ops->destroy(b);
}
