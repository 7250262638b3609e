/* The embedded simulated cluster. For now a small fixed set of namespaces and pods, enough for
 * the pipe from gRPC to a tool to be real; the full simulation (deployments with a controller,
 * services, secrets, events, logs, a YAML seed) replaces this fixture behind the same
 * interface. */
#include "backend.h"
#include "clock.h"

#include <stdlib.h>
#include <string.h>

struct fixture_pod {
    const char *ns, *name, *phase, *node, *ip, *app;
    uint32_t restarts, ready, total;
    int64_t age; /* seconds before the simulated cluster started */
};

static const char *const fixture_namespaces[] = {"default", "development", "kube-system",
                                                 "production", "staging"};

static const struct fixture_pod fixture_pods[] = {
    {"default", "web-7d4b9c6f5-2xkqp", "Running", "node-1", "10.244.1.12", "web", 0, 1, 1,
     3 * 86400},
    {"default", "web-7d4b9c6f5-9mzlt", "Running", "node-2", "10.244.2.7", "web", 1, 1, 1,
     3 * 86400},
    {"development", "api-5f8d7b9c4-h2jwn", "Running", "node-1", "10.244.1.31", "api", 0, 2, 2,
     26 * 3600},
    {"kube-system", "coredns-76f75df574-q8x2v", "Running", "node-1", "10.244.1.2", "coredns", 0, 1,
     1, 12 * 86400},
    {"production", "payments-6c9f8d7b5-xr4tz", "Running", "node-3", "10.244.3.18", "payments", 0, 2,
     2, 5 * 86400},
    {"production", "payments-6c9f8d7b5-m7kfd", "Running", "node-2", "10.244.2.19", "payments", 2, 2,
     2, 5 * 86400},
    {"staging", "worker-84c6b5d9f-lp3vn", "Pending", "", "", "worker", 0, 0, 1, 40},
};

struct sim {
    struct kube_backend base;
    int64_t started_unix;
};

static int known_namespace(const char *ns)
{
    for (size_t i = 0; i < sizeof(fixture_namespaces) / sizeof(fixture_namespaces[0]); i++) {
        if (strcmp(ns, fixture_namespaces[i]) == 0)
            return 1;
    }
    return 0;
}

static enum bst_status copy_pod(struct kube_pod *d, const struct fixture_pod *s, int64_t t0)
{
    memset(d, 0, sizeof(*d));
    d->name = strdup(s->name);
    d->namespace_ = strdup(s->ns);
    d->phase = strdup(s->phase);
    d->node = strdup(s->node);
    d->ip = strdup(s->ip);
    d->labels = calloc(1, sizeof(*d->labels));
    if (d->labels != NULL) {
        d->n_labels = 1;
        d->labels[0].key = strdup("app");
        d->labels[0].value = strdup(s->app);
    }
    d->restarts = s->restarts;
    d->ready_containers = s->ready;
    d->total_containers = s->total;
    d->start_time_unix = t0 - s->age;
    if (d->name == NULL || d->namespace_ == NULL || d->phase == NULL || d->node == NULL ||
        d->ip == NULL || d->labels == NULL || d->labels[0].key == NULL ||
        d->labels[0].value == NULL)
        return BST_RESOURCE_EXHAUSTED;
    return BST_OK;
}

static enum bst_status sim_list_pods(struct kube_backend *b, const char *ns,
                                     struct kube_pod_list *out, struct bst_err *err)
{
    const struct sim *sim = (const struct sim *)b;
    size_t n = 0;
    out->items = NULL;
    out->n = 0;
    if (!known_namespace(ns))
        return bst_errf(err, BST_NOT_FOUND, "namespace \"%s\" not found", ns);
    out->items = calloc(sizeof(fixture_pods) / sizeof(fixture_pods[0]), sizeof(*out->items));
    if (out->items == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    for (size_t i = 0; i < sizeof(fixture_pods) / sizeof(fixture_pods[0]); i++) {
        if (strcmp(fixture_pods[i].ns, ns) != 0)
            continue;
        out->n = ++n;
        if (copy_pod(&out->items[n - 1], &fixture_pods[i], sim->started_unix) != BST_OK) {
            kube_pod_list_free(out);
            return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        }
    }
    return BST_OK;
}

static enum bst_status sim_list_namespaces(struct kube_backend *b, struct kube_name_list *out,
                                           struct bst_err *err)
{
    size_t n = sizeof(fixture_namespaces) / sizeof(fixture_namespaces[0]);
    (void)b;
    out->names = calloc(n, sizeof(*out->names));
    out->n = 0;
    if (out->names == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if ((out->names[i] = strdup(fixture_namespaces[i])) == NULL) {
            kube_name_list_free(out);
            return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        }
        out->n = i + 1;
    }
    return BST_OK;
}

static void sim_destroy(struct kube_backend *b)
{
    free(b);
}

static const struct kube_backend_ops sim_ops = {
    .name = "sim",
    .list_pods = sim_list_pods,
    .list_namespaces = sim_list_namespaces,
    .destroy = sim_destroy,
};

enum bst_status kube_sim_new(struct kube_backend **out)
{
    struct sim *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return BST_RESOURCE_EXHAUSTED;
    s->base.ops = &sim_ops;
    s->started_unix = bst_wall_ns() / BST_NS_PER_S;
    *out = &s->base;
    return BST_OK;
}

void kube_backend_free(struct kube_backend *b)
{
    if (b != NULL)
        b->ops->destroy(b);
}

void kube_pod_list_free(struct kube_pod_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        struct kube_pod *p = &l->items[i];
        free(p->name);
        free(p->namespace_);
        free(p->phase);
        free(p->node);
        free(p->ip);
        for (size_t j = 0; j < p->n_labels; j++) {
            free(p->labels[j].key);
            free(p->labels[j].value);
        }
        free(p->labels);
    }
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

void kube_name_list_free(struct kube_name_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    l->names = NULL;
    l->n = 0;
}
