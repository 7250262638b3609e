/* Internals of the simulated cluster, shared by its files:
 *   sim.c       objects, the store, the deployment and replica-set controllers, the operations;
 *   sim_seed.c  the seed file (configs/cluster-seed.yaml) through the strict YAML reader;
 *   sim_logs.c  deterministic container logs;
 *   sim_view.c  objects as proto result messages and as Kubernetes JSON.
 *
 * Concurrency: one read-write lock guards the whole cluster. Reads (lists, gets, logs) share it;
 * every mutation takes it exclusively and runs the controllers synchronously inside, so no
 * caller ever observes a deployment whose pods do not match its replicas. Nothing inside the
 * lock blocks or calls out. */
#ifndef BASTION_KUBE_SIM_INTERNAL_H
#define BASTION_KUBE_SIM_INTERNAL_H

#include "backend.h"
#include "selector.h"

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

enum sim_kind {
    SK_POD = KUBE_KIND_POD,
    SK_DEPLOYMENT = KUBE_KIND_DEPLOYMENT,
    SK_REPLICASET = KUBE_KIND_REPLICASET,
    SK_SERVICE = KUBE_KIND_SERVICE,
    SK_CONFIGMAP = KUBE_KIND_CONFIGMAP,
    SK_SECRET = KUBE_KIND_SECRET,
    SK_NAMESPACE,
    SK_EVENT,
    SK_COUNT
};

/* How a pod's containers behave over time (the seed picks it per workload). */
enum sim_behavior {
    SB_HEALTHY = 0,   /* ContainerCreating for a moment, then Running and ready */
    SB_CRASHLOOP,     /* the first container exits with an error and backs off */
    SB_IMAGE_PULL,    /* the first container's image cannot be pulled */
    SB_UNSCHEDULABLE, /* no node fits: Pending without a node */
    SB_COMPLETED,     /* ran to completion (exit 0) */
};

/* The pod is shown as creating for this long after it was created. */
#define SIM_CREATING_SECONDS 2

struct sim_kvs {
    struct kube_kv *v;
    size_t n;
};

struct sim_port {
    char *name;
    int32_t port;
    char *protocol;
};

struct sim_container {
    char *name;
    char *image;
    char *log_profile; /* nginx, postgres, redis, json-api, worker, coredns, generic */
    struct sim_port *ports;
    size_t n_ports;
};

/* What pods are made from: a deployment's (and replica set's) pod template, or a pod's own. */
struct sim_template {
    struct sim_kvs labels;
    struct sim_kvs annotations;
    struct sim_container *containers;
    size_t n_containers;
    char *service_account;
    enum sim_behavior behavior;
    json_t *spec; /* the PodSpec as Kubernetes JSON, for resources (owned) */
};

struct sim_owner {
    enum sim_kind kind; /* SK_COUNT = none */
    char *name;
    char uid[40];
};

struct sim_meta {
    char *name;
    char *namespace_; /* NULL for namespaces */
    char uid[40];
    uint64_t rv;
    int64_t created; /* unix seconds */
    int64_t generation;
    struct sim_kvs labels;
    struct sim_kvs annotations;
    struct sim_owner owner;
};

struct sim_pod {
    struct sim_template t;
    const char *node; /* a name in sim->nodes (not owned); NULL when unscheduled */
    char ip[16];
    uint32_t base_restarts;  /* restarts of the first container when it was created (seed) */
    const char *last_reason; /* why the previous instance ended: Error, OOMKilled (static) */
    int64_t deleted;         /* deletionTimestamp while being returned; 0 otherwise */
    uint64_t log_seed;
};

struct sim_rs {
    struct sim_template t;
    int32_t replicas;
    char hash[16];
    int64_t revision;
};

struct sim_deploy {
    struct sim_template t;
    int32_t replicas;
    struct sim_kvs selector; /* matchLabels */
    char *strategy;
    int64_t observed_generation;
    int32_t history_limit;
};

struct sim_svc_port {
    char *name;
    char *protocol;
    int32_t port;
    char *target_port;
    int32_t node_port;
};

struct sim_service {
    char *type;
    char cluster_ip[16];
    char *external_ip; /* LoadBalancer ingress, or NULL */
    struct sim_svc_port *ports;
    size_t n_ports;
    struct sim_kvs selector;
};

struct sim_data {
    char *type;          /* secrets only */
    struct sim_kvs data; /* secret values are never shown */
};

struct sim_event {
    char *type;
    char *reason;
    char *message;
    enum sim_kind involved_kind;
    char *involved_name;
    char involved_uid[40];
    uint32_t count;
    int64_t first;
    int64_t last;
    char *source;
    uint64_t seq; /* creation order */
};

struct sim_obj {
    enum sim_kind kind;
    struct sim_meta meta;
    union {
        struct sim_pod pod;
        struct sim_rs rs;
        struct sim_deploy dep;
        struct sim_service svc;
        struct sim_data data; /* config maps and secrets */
        struct sim_event ev;
    } u;
};

struct sim_node {
    char *name;
    int control_plane;
    unsigned char ip_used[256];
};

/* A sorted array of objects of one kind, ordered by (namespace, name). */
struct sim_list {
    struct sim_obj **v;
    size_t n, cap;
};

struct sim {
    struct kube_backend base;
    pthread_rwlock_t lock;
    struct sim_list lists[SK_COUNT];
    struct sim_node *nodes;
    size_t n_nodes;
    uint64_t rv;        /* the cluster's resourceVersion: bumped by every write */
    uint64_t rng;       /* deterministic names, UIDs and IPs */
    uint64_t event_seq; /* creation order of events */
    size_t n_objects;   /* all but namespaces and events */
    size_t max_objects;
    size_t max_events;
    int64_t t0; /* when the cluster was created (unix seconds): seed ages count back from it */
    char *version;
};

/* ---- sim.c ------------------------------------------------------------------------------- */

/* Current wall time in seconds (the injectable clock). */
int64_t sim_now(void);
uint64_t sim_rand(struct sim *s);
void sim_uid(struct sim *s, char out[40]);
struct sim_obj *sim_find(struct sim *s, enum sim_kind k, const char *ns, const char *name);
/* Creates an empty object of kind k (the caller fills it, then sim_insert). */
struct sim_obj *sim_obj_new(struct sim *s, enum sim_kind k, const char *ns, const char *name,
                            int64_t created);
enum bst_status sim_insert(struct sim *s, struct sim_obj *o, struct bst_err *err);
void sim_obj_free(struct sim_obj *o);
/* Records the scheduler's and kubelet's events of a new pod at time t. */
void sim_pod_events(struct sim *s, const struct sim_obj *p, int64_t t);
/* Records an event about o (aggregated with an identical recent one). */
void sim_event(struct sim *s, const struct sim_obj *o, const char *type, const char *reason,
               const char *source, int64_t when, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
/* Creates a pod from template t in namespace ns for owner (NULL: none), scheduled; a pod
 * without an owner also gets its creation events (an owner records its own event first, then
 * calls sim_pod_events). name NULL: generated from the owner's name. */
enum bst_status sim_create_pod(struct sim *s, const char *ns, const char *name,
                               const struct sim_template *t, const struct sim_obj *owner,
                               int64_t created, struct sim_obj **out, struct bst_err *err);
/* Removes o from the store and frees it (the cluster's resourceVersion moves on). */
void sim_remove(struct sim *s, struct sim_obj *o);
/* Deletes pod p; a pod owned by a replica set gets its replacement at once, returned in
 * *replacement (NULL if none). */
enum bst_status sim_delete_pod(struct sim *s, struct sim_obj *p, int64_t now,
                               struct sim_obj **replacement, struct bst_err *err);
/* Runs the deployment controller for d (and the replica-set controller below it). */
enum bst_status sim_reconcile_deployment(struct sim *s, struct sim_obj *d, int64_t now,
                                         struct bst_err *err);
enum bst_status sim_template_copy(struct sim_template *dst, const struct sim_template *src);
void sim_template_dispose(struct sim_template *t);
enum bst_status sim_kvs_copy(struct sim_kvs *dst, const struct sim_kvs *src);
void sim_kvs_dispose(struct sim_kvs *kv);
const char *sim_kvs_get(const struct sim_kvs *kv, const char *key);
/* Sets key to value (replacing); returns 0 or -1 when out of memory. */
int sim_kvs_set(struct sim_kvs *kv, const char *key, const char *value);
/* The namespace object, or NULL. */
struct sim_obj *sim_namespace(struct sim *s, const char *ns);
/* Creates a namespace with its kube-root-ca.crt config map. */
enum bst_status sim_create_namespace(struct sim *s, const char *name, const struct sim_kvs *labels,
                                     int64_t created, struct bst_err *err);
/* Allocates a free service IP in 10.96.0.0/12 into out. */
void sim_alloc_service_ip(struct sim *s, char out[16]);

/* ---- sim_seed.c -------------------------------------------------------------------------- */

/* Loads the seed (a file, or the built-in one when path is NULL) into an empty cluster. */
enum bst_status sim_seed_load(struct sim *s, const char *path, struct bst_err *err);

/* The built-in seed (generated from configs/cluster-seed.yaml at build time). */
extern const unsigned char sim_builtin_seed[];
extern const size_t sim_builtin_seed_len;

/* ---- sim_logs.c -------------------------------------------------------------------------- */

/* The state of one container instance, as logs need it. */
struct sim_instance {
    int64_t start;          /* when it started (unix seconds) */
    int64_t end;            /* when it ended, or now for a running one */
    int crashed;            /* it ended with an error: the last lines say why */
    const char *end_reason; /* Error, OOMKilled, Completed */
};

/* Writes the log lines of instance inst of container c of pod p, honouring tail_lines
 * (< 0 = all retained lines), since (0 = no limit; a unix time), timestamps and limit_bytes, into
 * a ctx-allocated buffer. Returns BST_OK or BST_RESOURCE_EXHAUSTED. */
enum bst_status sim_logs_render(const struct sim_obj *p, const struct sim_container *c,
                                size_t container_index, const struct sim_instance *inst,
                                int64_t tail_lines, int64_t since, int timestamps,
                                size_t limit_bytes, const struct kube_ctx *ctx, char **out,
                                uint32_t *lines, int *truncated);

/* The log profile of an image ("nginx:1.27" -> nginx), for containers the seed does not name. */
const char *sim_log_profile_for_image(const char *image);

/* Lines kept per container instance, as if older ones had been rotated away. */
#define SIM_LOG_RETAINED_LINES 1000
/* Hard cap of one logs answer, whatever limit_bytes says. */
#define SIM_LOG_MAX_BYTES (256 * 1024)

/* ---- sim_view.c -------------------------------------------------------------------------- */

/* The state of a pod at time now (derived from its behaviour and age). */
struct sim_pod_state {
    const char *phase;
    const char *status; /* kubectl's STATUS column */
    uint32_t ready;
    uint32_t restarts;            /* of the first container */
    int running;                  /* containers are up (logs exist) */
    int64_t started;              /* current instance of the first container */
    int64_t prev_start, prev_end; /* previous instance, when restarts > 0 */
    const char *waiting_reason;
};

void sim_pod_state(const struct sim_obj *p, int64_t now, struct sim_pod_state *st);
/* Restarts a crash-looping container of age `age` seconds has accumulated (back-off 10 s,
 * doubling, capped at 5 min), and the start of its current and previous instance. */
uint32_t sim_crashloop_restarts(int64_t age, int64_t *cur_start_off, int64_t *prev_start_off);

Bastion__V1__Pod *sim_view_pod(const struct sim *s, const struct sim_obj *p, int64_t now,
                               const struct kube_ctx *ctx);
Bastion__V1__Deployment *sim_view_deployment(const struct sim *s, const struct sim_obj *d,
                                             int64_t now, const struct kube_ctx *ctx);
Bastion__V1__Service *sim_view_service(const struct sim_obj *o, const struct kube_ctx *ctx);
Bastion__V1__Event *sim_view_event(const struct sim_obj *o, const struct kube_ctx *ctx);
Bastion__V1__Namespace *sim_view_namespace(const struct sim_obj *o, const struct kube_ctx *ctx);
Bastion__V1__Secret *sim_view_secret(const struct sim_obj *o, const struct kube_ctx *ctx);
/* The object as Kubernetes JSON (secret data removed); NULL when out of memory. */
json_t *sim_json(const struct sim *s, const struct sim_obj *o, int64_t now);
/* "2025-01-01T00:00:00Z" into buf (at least 21 bytes). */
void sim_rfc3339(int64_t t, char *buf, size_t len);
/* "resourceVersion" text of v. */
char *sim_rv_str(const struct kube_ctx *ctx, uint64_t v);
/* Counts the pods a replica set or deployment owns, and how many are ready at now. */
void sim_count_pods(const struct sim *s, const struct sim_obj *owner, int64_t now, int32_t *total,
                    int32_t *ready);

#endif
