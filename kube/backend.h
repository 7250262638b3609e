/* The one interface every tool handler calls to reach a cluster. Implementations: `sim` (the
 * embedded in-memory cluster, the default; kube/sim.c) and later `rest` (a real API server over
 * libcurl, behind the same operations).
 *
 * The object model is defined once, in proto/bastion/v1/mcp.proto (Pod, Deployment, Service,
 * Event, Namespace, Secret, ...): each operation takes the typed argument message of its tool
 * and fills its typed result message, so no layer copies between parallel struct definitions.
 * Results are allocated through the caller's allocator (struct kube_ctx), an arena the caller
 * frees as a whole (bastiond: the call's arena, whose cap also bounds every result).
 *
 * Arguments arrive validated by the catalogue's per-field table (names and namespaces are
 * DNS-1123, selectors parse, numbers within bounds); backends still refuse what they cannot
 * serve and never trust a name for building a path or URL without their own check.
 *
 * Failures: BST_NOT_FOUND (object or namespace missing), BST_ALREADY_EXISTS,
 * BST_INVALID_ARGUMENT (a request the cluster refuses, e.g. a container that does not exist),
 * BST_FAILED_PRECONDITION (e.g. no previous container instance, an exceeded quota),
 * BST_RESOURCE_EXHAUSTED (the result allocator is full), BST_UNAVAILABLE /
 * BST_DEADLINE_EXCEEDED (the cluster), with err->msg
 * worded as Kubernetes words it (`pods "web-1" not found`) and safe to show to the caller: it
 * never carries a secret value.
 *
 * Threads: every operation may be called concurrently from every worker thread. An operation of
 * a backend without KUBE_BACKEND_NONBLOCKING may block (network I/O) and must not be called on
 * an event loop: the caller hands it to a pool and resumes the call when it returns. */
#ifndef BASTION_KUBE_BACKEND_H
#define BASTION_KUBE_BACKEND_H

#include "selector.h"
#include "status.h"

#include "bastion/v1/mcp.pb-c.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Object kinds, as they appear in resource URIs (k8s://NAMESPACE/KIND/NAME). */
enum kube_kind {
    KUBE_KIND_POD = 0,
    KUBE_KIND_DEPLOYMENT,
    KUBE_KIND_REPLICASET,
    KUBE_KIND_SERVICE,
    KUBE_KIND_CONFIGMAP,
    KUBE_KIND_SECRET,
    KUBE_KIND_COUNT
};

/* "pod", "deployment", "replicaset", "service", "configmap", "secret"; NULL if out of range. */
const char *kube_kind_name(enum kube_kind k);

/* The Kubernetes Kind ("Pod", "Deployment", ...); NULL if out of range. */
const char *kube_kind_title(enum kube_kind k);

/* Parses a kind name as kube_kind_name() writes it. Returns 0, or -1 for anything else. */
int kube_kind_parse(const char *s, enum kube_kind *out);

/* Per-call context. */
struct kube_ctx {
    const char *request_id;   /* for logs and the API server's audit annotations; may be NULL */
    int64_t deadline_mono_ns; /* 0 = none */
    /* Result memory: returns zeroed memory that lives until the caller frees the whole arena,
     * or NULL when the arena is exhausted (the operation then fails RESOURCE_EXHAUSTED). */
    void *(*alloc)(void *arg, size_t n);
    void *alloc_arg;
};

/* One object, as a resource. Strings point into the ctx allocator. */
struct kube_object_ref {
    enum kube_kind kind;
    char *namespace_;
    char *name;
};

struct kube_backend;

#define KUBE_BACKEND_NONBLOCKING (1u << 0) /* operations never block: call them anywhere */

/* Operations. Each fills *out (ctx memory) and returns BST_OK, or fails as described above.
 * "List" operations take `namespace` and `all_namespaces` from their arguments: all namespaces
 * only when all_namespaces is set; an empty namespace never means "all". */
struct kube_backend_ops {
    const char *name;
    unsigned flags;
    enum bst_status (*list_namespaces)(struct kube_backend *b, const struct kube_ctx *ctx,
                                       const Bastion__V1__ListNamespacesArgs *a,
                                       Bastion__V1__ListNamespacesResult **out,
                                       struct bst_err *err);
    enum bst_status (*list_pods)(struct kube_backend *b, const struct kube_ctx *ctx,
                                 const Bastion__V1__ListPodsArgs *a,
                                 Bastion__V1__ListPodsResult **out, struct bst_err *err);
    enum bst_status (*get_pod)(struct kube_backend *b, const struct kube_ctx *ctx,
                               const Bastion__V1__GetPodArgs *a, Bastion__V1__GetPodResult **out,
                               struct bst_err *err);
    /* Logs honour container (required when the pod has several and no default-container
     * annotation), tail_lines, since_seconds, previous, timestamps and limit_bytes; the backend
     * caps the output (truncated is then set). */
    enum bst_status (*get_pod_logs)(struct kube_backend *b, const struct kube_ctx *ctx,
                                    const Bastion__V1__GetPodLogsArgs *a,
                                    Bastion__V1__GetPodLogsResult **out, struct bst_err *err);
    enum bst_status (*delete_pod)(struct kube_backend *b, const struct kube_ctx *ctx,
                                  const Bastion__V1__DeletePodArgs *a,
                                  Bastion__V1__DeletePodResult **out, struct bst_err *err);
    /* Deletes the pod and returns its replacement: a new pod of the owning controller, or the
     * same spec recreated under the same name for a pod without an owner. */
    enum bst_status (*restart_pod)(struct kube_backend *b, const struct kube_ctx *ctx,
                                   const Bastion__V1__RestartPodArgs *a,
                                   Bastion__V1__RestartPodResult **out, struct bst_err *err);
    enum bst_status (*list_deployments)(struct kube_backend *b, const struct kube_ctx *ctx,
                                        const Bastion__V1__ListDeploymentsArgs *a,
                                        Bastion__V1__ListDeploymentsResult **out,
                                        struct bst_err *err);
    enum bst_status (*scale_deployment)(struct kube_backend *b, const struct kube_ctx *ctx,
                                        const Bastion__V1__ScaleDeploymentArgs *a,
                                        Bastion__V1__ScaleDeploymentResult **out,
                                        struct bst_err *err);
    /* Sets the pod template's kubectl.kubernetes.io/restartedAt annotation to now, which rolls
     * every pod (what `kubectl rollout restart` does). */
    enum bst_status (*restart_deployment)(struct kube_backend *b, const struct kube_ctx *ctx,
                                          const Bastion__V1__RestartDeploymentArgs *a,
                                          Bastion__V1__RestartDeploymentResult **out,
                                          struct bst_err *err);
    enum bst_status (*list_services)(struct kube_backend *b, const struct kube_ctx *ctx,
                                     const Bastion__V1__ListServicesArgs *a,
                                     Bastion__V1__ListServicesResult **out, struct bst_err *err);
    enum bst_status (*list_events)(struct kube_backend *b, const struct kube_ctx *ctx,
                                   const Bastion__V1__ListEventsArgs *a,
                                   Bastion__V1__ListEventsResult **out, struct bst_err *err);
    enum bst_status (*list_secrets)(struct kube_backend *b, const struct kube_ctx *ctx,
                                    const Bastion__V1__ListSecretsArgs *a,
                                    Bastion__V1__ListSecretsResult **out, struct bst_err *err);
    /* The values in a->data are secret: never logged, never in err, never returned. */
    enum bst_status (*create_secret)(struct kube_backend *b, const struct kube_ctx *ctx,
                                     const Bastion__V1__CreateSecretArgs *a,
                                     Bastion__V1__CreateSecretResult **out, struct bst_err *err);
    enum bst_status (*delete_secret)(struct kube_backend *b, const struct kube_ctx *ctx,
                                     const Bastion__V1__DeleteSecretArgs *a,
                                     Bastion__V1__DeleteSecretResult **out, struct bst_err *err);
    /* Creates the object of a manifest that kube_manifest_parse() accepted for namespace ns
     * (obj is its JSON form; the backend does not take ownership). With dry_run, checks that it
     * could be created (namespace exists, no name clash) and creates nothing. */
    enum bst_status (*create_resource)(struct kube_backend *b, const struct kube_ctx *ctx,
                                       const char *ns, enum kube_kind kind, const json_t *obj,
                                       int dry_run, Bastion__V1__CreateResourceResult **out,
                                       struct bst_err *err);
    /* Resources: up to limit object references in URI order after the URI `after` ("" = from
     * the start); *more is set when others follow. */
    enum bst_status (*list_objects)(struct kube_backend *b, const struct kube_ctx *ctx,
                                    const char *after, size_t limit, struct kube_object_ref **out,
                                    size_t *n, int *more, struct bst_err *err);
    /* One object as Kubernetes JSON (apiVersion, kind, metadata, spec, status) with secret data
     * removed. *out is a new reference owned by the caller (json_decref). */
    enum bst_status (*get_object)(struct kube_backend *b, const struct kube_ctx *ctx,
                                  enum kube_kind kind, const char *ns, const char *name,
                                  json_t **out, struct bst_err *err);
    void (*destroy)(struct kube_backend *b);
};

struct kube_backend {
    const struct kube_backend_ops *ops;
};

/* Options of the simulated cluster. */
struct kube_sim_options {
    /* The seed: a YAML file (the strict reader's rules), or NULL for the built-in seed (a copy
     * of configs/cluster-seed.yaml compiled in). */
    const char *seed_path;
    size_t max_objects; /* pods, replica sets, deployments, services, secrets, config maps;
                           0 = 10000 */
    size_t max_events;  /* the oldest are dropped beyond it; 0 = 1000 */
};

/* Creates the embedded simulated cluster from opts (NULL = defaults). Returns BST_OK,
 * BST_INVALID_ARGUMENT with "file:line:col: ..." for a bad seed, or BST_RESOURCE_EXHAUSTED. */
enum bst_status kube_sim_new(struct kube_backend **out, const struct kube_sim_options *opts,
                             struct bst_err *err);

/* Releases a backend; NULL is a no-op. */
void kube_backend_free(struct kube_backend *b);

/* Helpers for backends and their callers. */

/* Allocates n zeroed bytes through ctx; NULL when exhausted. */
void *kube_alloc(const struct kube_ctx *ctx, size_t n);
/* Copies s (NULL gives NULL) into ctx memory; NULL when exhausted. */
char *kube_strdup(const struct kube_ctx *ctx, const char *s);

#endif
