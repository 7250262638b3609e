/* The one interface every tool handler calls to reach a cluster. Implementations: `sim` (the
 * embedded in-memory cluster, the default) and later `rest` (a real API server over libcurl).
 * Results are plain C structs owned by the caller and released with the matching free
 * function; failures are a status plus a message that is safe to show to the caller.
 * Every function may be called concurrently from every worker thread. */
#ifndef BASTION_KUBE_BACKEND_H
#define BASTION_KUBE_BACKEND_H

#include "status.h"

#include <stddef.h>
#include <stdint.h>

struct kube_label {
    char *key;
    char *value;
};

struct kube_pod {
    char *name;
    char *namespace_;
    char *phase; /* Pending, Running, Succeeded, Failed, Unknown */
    char *node;
    char *ip;
    uint32_t restarts;
    uint32_t ready_containers;
    uint32_t total_containers;
    int64_t start_time_unix;
    struct kube_label *labels;
    size_t n_labels;
};

struct kube_pod_list {
    struct kube_pod *items;
    size_t n;
};

struct kube_name_list {
    char **names;
    size_t n;
};

struct kube_backend;

struct kube_backend_ops {
    const char *name;
    /* Lists pods in namespace ns (a validated DNS-1123 label). An unknown namespace is
     * BST_NOT_FOUND. */
    enum bst_status (*list_pods)(struct kube_backend *b, const char *ns, struct kube_pod_list *out,
                                 struct bst_err *err);
    /* Lists namespace names, sorted. */
    enum bst_status (*list_namespaces)(struct kube_backend *b, struct kube_name_list *out,
                                       struct bst_err *err);
    void (*destroy)(struct kube_backend *b);
};

struct kube_backend {
    const struct kube_backend_ops *ops;
};

/* Creates the embedded simulated cluster. Returns BST_OK or BST_RESOURCE_EXHAUSTED. */
enum bst_status kube_sim_new(struct kube_backend **out);

/* Releases a backend; NULL is a no-op. */
void kube_backend_free(struct kube_backend *b);

void kube_pod_list_free(struct kube_pod_list *l);
void kube_name_list_free(struct kube_name_list *l);

#endif
