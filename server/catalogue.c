/* The tool table, the per-field table, and the generic binding, invocation and description of
 * tools (see catalogue.h). */
#include "catalogue.h"
#include "clock.h"
#include "kube/manifest.h"
#include "kube/names.h"
#include "kube/selector.h"
#include "text.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct kube_backend *backend;

void catalogue_set_backend(struct kube_backend *kube)
{
    backend = kube;
}

struct kube_backend *catalogue_backend(void)
{
    return backend;
}

int catalogue_dns_label_ok(const char *s)
{
    return kube_dns1123_label_ok(s);
}

/* ---- invocation adapters: one line per tool ------------------------------------------------ */

#define ADAPTER(tool, Args, Result)                                                                \
    static enum bst_status invoke_##tool(struct kube_backend *b, const struct kube_ctx *ctx,       \
                                         const ProtobufCMessage *args, ProtobufCMessage **result,  \
                                         struct bst_err *err)                                      \
    {                                                                                              \
        Bastion__V1__##Result *r = NULL;                                                           \
        enum bst_status rv = b->ops->tool(b, ctx, (const Bastion__V1__##Args *)args, &r, err);     \
        *result = r != NULL ? &r->base : NULL;                                                     \
        return rv;                                                                                 \
    }

ADAPTER(list_pods, ListPodsArgs, ListPodsResult)
ADAPTER(list_namespaces, ListNamespacesArgs, ListNamespacesResult)
ADAPTER(get_pod, GetPodArgs, GetPodResult)
ADAPTER(get_pod_logs, GetPodLogsArgs, GetPodLogsResult)
ADAPTER(delete_pod, DeletePodArgs, DeletePodResult)
ADAPTER(restart_pod, RestartPodArgs, RestartPodResult)
ADAPTER(list_deployments, ListDeploymentsArgs, ListDeploymentsResult)
ADAPTER(scale_deployment, ScaleDeploymentArgs, ScaleDeploymentResult)
ADAPTER(restart_deployment, RestartDeploymentArgs, RestartDeploymentResult)
ADAPTER(list_services, ListServicesArgs, ListServicesResult)
ADAPTER(list_events, ListEventsArgs, ListEventsResult)
ADAPTER(list_secrets, ListSecretsArgs, ListSecretsResult)
ADAPTER(create_secret, CreateSecretArgs, CreateSecretResult)
ADAPTER(delete_secret, DeleteSecretArgs, DeleteSecretResult)

static struct kube_manifest_limits manifest_limits = {0, 100};

static enum bst_status invoke_create_resource(struct kube_backend *b, const struct kube_ctx *ctx,
                                              const ProtobufCMessage *args,
                                              ProtobufCMessage **result, struct bst_err *err)
{
    const Bastion__V1__CreateResourceArgs *a = (const void *)args;
    Bastion__V1__CreateResourceResult *r = NULL;
    enum kube_kind kind;
    json_t *obj;
    enum bst_status rv;

    /* Parsed again here (bind checked it): the JSON tree does not outlive binding. */
    rv = kube_manifest_parse(a->manifest, strlen(a->manifest), a->namespace_, &manifest_limits,
                             &kind, &obj, err);
    if (rv != BST_OK)
        return rv;
    rv = b->ops->create_resource(b, ctx, a->namespace_, kind, obj, a->has_dry_run && a->dry_run, &r,
                                 err);
    json_decref(obj);
    *result = r != NULL ? &r->base : NULL;
    return rv;
}

static enum bst_status check_manifest(struct call *c, const ProtobufCMessage *args)
{
    const Bastion__V1__CreateResourceArgs *a = (const void *)args;
    struct bst_err err = {BST_OK, ""};
    enum kube_kind kind;
    json_t *obj;

    if (kube_manifest_parse(a->manifest, strlen(a->manifest), a->namespace_, &manifest_limits,
                            &kind, &obj, &err) != BST_OK) {
        call_fail(
            c, err.code == BST_RESOURCE_EXHAUSTED ? BST_RESOURCE_EXHAUSTED : BST_INVALID_ARGUMENT,
            "create_resource.manifest: %s", err.msg);
        return c->status;
    }
    json_decref(obj);
    return BST_OK;
}

/* ---- tools --------------------------------------------------------------------------------- */

#define RO (TOOL_READ_ONLY | TOOL_IDEMPOTENT)

const struct tool catalogue_tools[] = {
    {"list_pods", "List pods",
     "List the pods of one namespace (or of all namespaces) with their status, readiness, "
     "restarts, age, IP and node, optionally filtered by a label selector; returns a "
     "kubectl-style table and structured pods.",
     "k8s:pods:list", "namespace", "all_namespaces", RO, NULL, invoke_list_pods,
     kube_render_list_pods},
    {"list_namespaces", "List namespaces",
     "List the cluster's namespaces with their status and age, optionally filtered by a label "
     "selector.",
     "k8s:namespaces:list", NULL, NULL, RO, NULL, invoke_list_namespaces,
     kube_render_list_namespaces},
    {"get_pod", "Describe a pod",
     "Show one pod in detail, like `kubectl describe pod`: node, IP, labels, owner, each "
     "container's image, state, readiness and restarts, and the pod's recent events.",
     "k8s:pods:get", "namespace", NULL, RO, NULL, invoke_get_pod, kube_render_get_pod},
    {"get_pod_logs", "Read pod logs",
     "Read the log lines of a container of a pod, like `kubectl logs`: the last tail_lines "
     "lines or those of the last since_seconds, with timestamps if asked, or the previous "
     "(crashed) instance of the container; name the container when the pod has several.",
     "k8s:pods:logs", "namespace", NULL, RO, NULL, invoke_get_pod_logs, kube_render_get_pod_logs},
    {"delete_pod", "Delete a pod",
     "Delete one pod; a pod managed by a deployment is replaced by its controller with a new "
     "pod of a new name, a pod without an owner is gone for good.",
     "k8s:pods:delete", "namespace", NULL, TOOL_DESTRUCTIVE, NULL, invoke_delete_pod,
     kube_render_delete_pod},
    {"restart_pod", "Restart a pod",
     "Restart one pod by deleting it and letting it be recreated: its controller starts a "
     "replacement with a new name, or a pod without an owner is recreated under the same name; "
     "returns the replacement pod.",
     "k8s:pods:restart", "namespace", NULL, TOOL_DESTRUCTIVE, NULL, invoke_restart_pod,
     kube_render_restart_pod},
    {"list_deployments", "List deployments",
     "List the deployments of one namespace (or of all namespaces) with ready, up-to-date and "
     "available replicas, age and images, optionally filtered by a label selector.",
     "k8s:deployments:list", "namespace", "all_namespaces", RO, NULL, invoke_list_deployments,
     kube_render_list_deployments},
    {"scale_deployment", "Scale a deployment",
     "Set the number of replicas of a deployment; its controller creates or removes pods at "
     "once, and the result shows the previous and the new replica count.",
     "k8s:deployments:scale", "namespace", NULL, TOOL_IDEMPOTENT, NULL, invoke_scale_deployment,
     kube_render_scale_deployment},
    {"restart_deployment", "Restart a deployment",
     "Roll every pod of a deployment, like `kubectl rollout restart`: sets the restartedAt "
     "annotation of its pod template, so a new replica set replaces all pods.",
     "k8s:deployments:restart", "namespace", NULL, TOOL_DESTRUCTIVE, NULL,
     invoke_restart_deployment, kube_render_restart_deployment},
    {"list_services", "List services",
     "List the services of one namespace (or of all namespaces) with type, cluster IP, "
     "external IP, ports and selector, optionally filtered by a label selector.",
     "k8s:services:list", "namespace", "all_namespaces", RO, NULL, invoke_list_services,
     kube_render_list_services},
    {"list_events", "List events",
     "List the events of one namespace (or of all namespaces), oldest first, optionally only "
     "those about one object or of one type (Warning), to see what happened to pods and "
     "deployments.",
     "k8s:events:list", "namespace", "all_namespaces", RO, NULL, invoke_list_events,
     kube_render_list_events},
    {"list_secrets", "List secrets",
     "List the secrets of a namespace with their type and key names; secret values are "
     "write-only and never returned.",
     "k8s:secrets:manage", "namespace", NULL, RO, NULL, invoke_list_secrets,
     kube_render_list_secrets},
    {"create_secret", "Create a secret",
     "Create a secret from key/value pairs (values are write-only: never echoed, logged or "
     "returned); types Opaque (default), kubernetes.io/tls, kubernetes.io/dockerconfigjson, "
     "kubernetes.io/basic-auth and kubernetes.io/ssh-auth.",
     "k8s:secrets:manage", "namespace", NULL, 0, NULL, invoke_create_secret,
     kube_render_create_secret},
    {"delete_secret", "Delete a secret",
     "Delete one secret of a namespace; pods that mount or reference it cannot start until it "
     "exists again.",
     "k8s:secrets:manage", "namespace", NULL, TOOL_DESTRUCTIVE | TOOL_IDEMPOTENT, NULL,
     invoke_delete_secret, kube_render_delete_secret},
    {"create_resource", "Create a resource",
     "Create one Pod, Deployment, Service or ConfigMap from a YAML or JSON manifest; pods and "
     "pod templates must meet the Pod Security Standards restricted profile (non-root, no "
     "privilege escalation, all capabilities dropped, RuntimeDefault seccomp, no host access); "
     "dry_run only checks.",
     "k8s:resources:create", "namespace", NULL, 0, check_manifest, invoke_create_resource,
     kube_render_create_resource},
};
const size_t catalogue_n_tools = sizeof(catalogue_tools) / sizeof(catalogue_tools[0]);

/* ---- the per-field table ------------------------------------------------------------------- */

#define DNS_LABEL "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#define DNS_SUBDOMAIN "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
#define LABEL_SYNTAX "a DNS-1123 label (1-63 of a-z, 0-9, '-', alphanumeric at both ends)"
#define SUBDOMAIN_SYNTAX "a DNS-1123 subdomain (1-253 of a-z, 0-9, '-', '.')"

#define NAMESPACE(req, what)                                                                       \
    {                                                                                              \
        .required = (req), .max_len = 63, .pattern = DNS_LABEL, .valid = kube_dns1123_label_ok,    \
        .syntax = LABEL_SYNTAX, .description = (what)                                              \
    }
#define NAME(what)                                                                                 \
    {                                                                                              \
        .required = 1, .max_len = 253, .pattern = DNS_SUBDOMAIN,                                   \
        .valid = kube_dns1123_subdomain_ok, .syntax = SUBDOMAIN_SYNTAX, .description = (what)      \
    }
#define SELECTOR                                                                                   \
    {                                                                                              \
        .max_len = KUBE_SELECTOR_MAX_BYTES, .valid = kube_selector_ok,                             \
        .syntax = "a label selector such as app=web,tier!=db or env in (a,b) or !canary",          \
        .description = "Only objects whose labels match this Kubernetes label selector, e.g. "     \
                       "\"app=web,tier!=db\", \"env in (staging,production)\" or \"!canary\"."     \
    }
#define ALL_NS                                                                                     \
    {                                                                                              \
        .description = "Set to true to list every namespace instead of one; then leave "           \
                       "namespace out.",                                                           \
        .default_json = "false"                                                                    \
    }
#define LIST_NS                                                                                    \
    NAMESPACE(0, "The namespace to list, e.g. \"default\"; required unless "                       \
                 "all_namespaces is true.")

static int event_type_ok(const char *s)
{
    return strcmp(s, "Normal") == 0 || strcmp(s, "Warning") == 0;
}

static int kind_word_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z')))
            return 0;
    return 1;
}

static int secret_type_ok(const char *s)
{
    static const char *const types[] = {"Opaque",
                                        "kubernetes.io/tls",
                                        "kubernetes.io/dockerconfigjson",
                                        "kubernetes.io/basic-auth",
                                        "kubernetes.io/ssh-auth",
                                        NULL};
    for (size_t i = 0; types[i] != NULL; i++)
        if (strcmp(s, types[i]) == 0)
            return 1;
    return 0;
}

static int label_value_ok(const char *s)
{
    return kube_label_value_ok(s);
}

/* Not const: catalogue_set_replica_bounds writes the replicas row before serving. */
static struct tool_field fields[] = {
    /* list_pods */
    {"ListPodsArgs", "namespace", LIST_NS},
    {"ListPodsArgs", "label_selector", SELECTOR},
    {"ListPodsArgs", "all_namespaces", ALL_NS},
    /* list_namespaces */
    {"ListNamespacesArgs", "label_selector", SELECTOR},
    /* get_pod */
    {"GetPodArgs", "namespace", NAMESPACE(1, "The namespace of the pod, e.g. \"default\".")},
    {"GetPodArgs", "name", NAME("The pod's name, e.g. \"web-7d4b9c6f5-2xkqp\".")},
    /* get_pod_logs */
    {"GetPodLogsArgs", "namespace", NAMESPACE(1, "The namespace of the pod.")},
    {"GetPodLogsArgs", "name", NAME("The pod's name.")},
    {"GetPodLogsArgs",
     "container",
     {.max_len = 63,
      .pattern = DNS_LABEL,
      .valid = kube_dns1123_label_ok,
      .syntax = LABEL_SYNTAX,
      .description = "The container to read; required when the pod has several containers "
                     "(get_pod lists them)."}},
    {"GetPodLogsArgs",
     "tail_lines",
     {.has_bounds = 1,
      .min = 0,
      .max = 100000,
      .description = "Only the last N lines. Leave out for every line the node still keeps."}},
    {"GetPodLogsArgs",
     "since_seconds",
     {.has_bounds = 1,
      .min = 1,
      .max = 366 * 24 * 3600,
      .description = "Only lines written in the last N seconds."}},
    {"GetPodLogsArgs",
     "previous",
     {.description = "Read the previous, terminated instance of the container (after a crash "
                     "or restart) instead of the current one.",
      .default_json = "false"}},
    {"GetPodLogsArgs",
     "timestamps",
     {.description = "Prefix every line with its RFC 3339 time stamp.", .default_json = "false"}},
    {"GetPodLogsArgs",
     "limit_bytes",
     {.has_bounds = 1,
      .min = 1,
      .max = 1048576,
      .description = "Stop after this many bytes (the answer is also capped at 256 KiB)."}},
    /* delete_pod, restart_pod */
    {"DeletePodArgs", "namespace", NAMESPACE(1, "The namespace of the pod.")},
    {"DeletePodArgs", "name", NAME("The name of the pod to delete.")},
    {"RestartPodArgs", "namespace", NAMESPACE(1, "The namespace of the pod.")},
    {"RestartPodArgs", "name", NAME("The name of the pod to restart.")},
    /* deployments */
    {"ListDeploymentsArgs", "namespace", LIST_NS},
    {"ListDeploymentsArgs", "label_selector", SELECTOR},
    {"ListDeploymentsArgs", "all_namespaces", ALL_NS},
    {"ScaleDeploymentArgs", "namespace", NAMESPACE(1, "The namespace of the deployment.")},
    {"ScaleDeploymentArgs", "name", NAME("The deployment's name, e.g. \"web\".")},
    {"ScaleDeploymentArgs",
     "replicas",
     {.required = 1,
      .has_bounds = 1,
      .min = 0,
      .max = 100,
      .description = "The number of pods the deployment should run (0 stops them all)."}},
    {"RestartDeploymentArgs", "namespace", NAMESPACE(1, "The namespace of the deployment.")},
    {"RestartDeploymentArgs", "name", NAME("The deployment's name.")},
    /* services */
    {"ListServicesArgs", "namespace", LIST_NS},
    {"ListServicesArgs", "label_selector", SELECTOR},
    {"ListServicesArgs", "all_namespaces", ALL_NS},
    /* events */
    {"ListEventsArgs", "namespace", LIST_NS},
    {"ListEventsArgs", "all_namespaces", ALL_NS},
    {"ListEventsArgs",
     "object_kind",
     {.max_len = 63,
      .pattern = "^[A-Za-z]+$",
      .valid = kind_word_ok,
      .syntax = "a kind such as Pod or Deployment",
      .description = "Only events about objects of this kind: Pod, Deployment, ReplicaSet, "
                     "Service, ..."}},
    {"ListEventsArgs",
     "object_name",
     {.max_len = 253,
      .pattern = DNS_SUBDOMAIN,
      .valid = kube_dns1123_subdomain_ok,
      .syntax = SUBDOMAIN_SYNTAX,
      .description = "Only events about the object with this name."}},
    {"ListEventsArgs",
     "type",
     {.max_len = 7,
      .pattern = "^(Normal|Warning)$",
      .valid = event_type_ok,
      .syntax = "Normal or Warning",
      .description = "Only events of this type: Normal or Warning."}},
    {"ListEventsArgs",
     "limit",
     {.has_bounds = 1,
      .min = 1,
      .max = 1000,
      .description = "Only the newest N events (still listed oldest first)."}},
    /* secrets */
    {"ListSecretsArgs", "namespace", NAMESPACE(1, "The namespace whose secrets to list.")},
    {"ListSecretsArgs", "label_selector", SELECTOR},
    {"CreateSecretArgs", "namespace", NAMESPACE(1, "The namespace to create the secret in.")},
    {"CreateSecretArgs", "name", NAME("The new secret's name.")},
    {"CreateSecretArgs",
     "type",
     {.max_len = 64,
      .valid = secret_type_ok,
      .syntax = "Opaque, kubernetes.io/tls, kubernetes.io/dockerconfigjson, "
                "kubernetes.io/basic-auth or kubernetes.io/ssh-auth",
      .default_json = "\"Opaque\"",
      .description = "The secret type; kubernetes.io/tls needs the keys tls.crt and tls.key."}},
    {"CreateSecretArgs",
     "data",
     {.max_items = 100,
      .description = "The keys and values of the secret. Values are write-only: they are never "
                     "returned, logged or echoed."}},
    {"CreateSecretArgs", "labels", {.max_items = 64, .description = "Labels for the secret."}},
    {"SecretEntry",
     "key",
     {.required = 1,
      .max_len = 253,
      .pattern = "^[-._a-zA-Z0-9]+$",
      .valid = kube_config_key_ok,
      .syntax = "a key of 1-253 of A-Z, a-z, 0-9, '-', '_', '.'",
      .description = "The key, e.g. \"password\" or \"tls.crt\"."}},
    {"SecretEntry",
     "value",
     {.sensitive = 1, .max_len = 1048576, .description = "The secret value (write-only)."}},
    {"DeleteSecretArgs", "namespace", NAMESPACE(1, "The namespace of the secret.")},
    {"DeleteSecretArgs", "name", NAME("The name of the secret to delete.")},
    /* create_resource */
    {"CreateResourceArgs", "namespace",
     NAMESPACE(1, "The namespace to create the object in; a namespace in the manifest must "
                  "be the same.")},
    {"CreateResourceArgs",
     "manifest",
     {.required = 1,
      .max_len = KUBE_MANIFEST_MAX_BYTES,
      .description = "The object as YAML or JSON: one Pod (v1), Deployment (apps/v1), Service "
                     "(v1) or ConfigMap (v1). Containers must set securityContext "
                     "{allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: {drop: "
                     "[ALL]}, seccompProfile: {type: RuntimeDefault}}."}},
    {"CreateResourceArgs",
     "dry_run",
     {.description = "Only check the manifest and whether it could be created; create nothing.",
      .default_json = "false"}},
    /* shared messages */
    {"Label",
     "key",
     {.required = 1,
      .max_len = 317,
      .valid = kube_label_key_ok,
      .syntax = "a label key such as app or app.kubernetes.io/name",
      .description = "The label key."}},
    {"Label",
     "value",
     {.max_len = 63,
      .valid = label_value_ok,
      .syntax = "a label value (0-63 of A-Z, a-z, 0-9, '-', '_', '.')",
      .description = "The label value."}},
    /* results */
    {"Pod",
     "status",
     {.description = "What kubectl shows as STATUS: Running, ContainerCreating, Pending, "
                     "CrashLoopBackOff, ImagePullBackOff, Completed, Terminating."}},
    {"Pod", "restarts", {.description = "Container restarts, summed over the pod's containers."}},
    {"Pod", "start_time_unix", {.description = "When the pod started, in Unix seconds."}},
    {"Deployment", "replicas", {.description = "Desired replicas."}},
    {"Deployment", "ready_replicas", {.description = "Pods of the deployment that are ready."}},
    {"GetPodLogsResult",
     "truncated",
     {.description = "True when limit_bytes or the server's cap cut the logs."}},
    {"Secret", "keys", {.description = "The key names; values are never returned."}},
    {"CreateResourceResult",
     "created",
     {.description = "False for a dry run: nothing was created."}},
};
const struct tool_field *const catalogue_fields = fields;
const size_t catalogue_n_fields = sizeof(fields) / sizeof(fields[0]);

const struct bst_pbjson_field_info *catalogue_field_lookup(const ProtobufCMessageDescriptor *msg,
                                                           const ProtobufCFieldDescriptor *field,
                                                           void *arg)
{
    (void)arg;
    if (msg->package_name == NULL || strcmp(msg->package_name, "bastion.v1") != 0)
        return NULL;
    for (size_t i = 0; i < catalogue_n_fields; i++)
        if (strcmp(fields[i].message, msg->short_name) == 0 &&
            strcmp(fields[i].field, field->name) == 0)
            return &fields[i].info;
    return NULL;
}

static const struct {
    enum kube_kind kind;
    const char *permission;
    const char *tool;
} resource_kinds[] = {
    {KUBE_KIND_POD, "k8s:pods:get", "get_pod"},
    {KUBE_KIND_DEPLOYMENT, "k8s:deployments:list", "list_deployments"},
    {KUBE_KIND_REPLICASET, "k8s:deployments:list", "list_deployments"},
    {KUBE_KIND_SERVICE, "k8s:services:list", "list_services"},
    {KUBE_KIND_CONFIGMAP, "k8s:configmaps:get", NULL},
    {KUBE_KIND_SECRET, "k8s:secrets:manage", "list_secrets"},
};

const char *catalogue_resource_permission(enum kube_kind k, const struct tool **tool)
{
    for (size_t i = 0; i < sizeof(resource_kinds) / sizeof(resource_kinds[0]); i++)
        if (resource_kinds[i].kind == k) {
            *tool = resource_kinds[i].tool != NULL ? catalogue_find(resource_kinds[i].tool) : NULL;
            return resource_kinds[i].permission;
        }
    *tool = NULL;
    return NULL;
}

static size_t add_permission(const char **out, size_t n, size_t max, const char *p)
{
    for (size_t i = 0; i < n && i < max; i++)
        if (strcmp(out[i], p) == 0)
            return n;
    if (n < max)
        out[n] = p;
    return n + 1;
}

size_t catalogue_permissions(const char **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < catalogue_n_tools; i++)
        n = add_permission(out, n, max, catalogue_tools[i].permission);
    for (size_t i = 0; i < sizeof(resource_kinds) / sizeof(resource_kinds[0]); i++)
        n = add_permission(out, n, max, resource_kinds[i].permission);
    return n;
}

const struct tool *catalogue_find(const char *name)
{
    for (size_t i = 0; i < catalogue_n_tools; i++) {
        if (strcmp(catalogue_tools[i].name, name) == 0)
            return &catalogue_tools[i];
    }
    return NULL;
}

/* ---- schemas ------------------------------------------------------------------------------- */

static pthread_mutex_t schema_lock = PTHREAD_MUTEX_INITIALIZER;
static char *schemas[2 * sizeof(catalogue_tools) / sizeof(catalogue_tools[0])];

void catalogue_shutdown(void)
{
    pthread_mutex_lock(&schema_lock);
    for (size_t i = 0; i < sizeof(schemas) / sizeof(schemas[0]); i++) {
        free(schemas[i]);
        schemas[i] = NULL;
    }
    pthread_mutex_unlock(&schema_lock);
}

int catalogue_set_replica_bounds(int32_t min, int32_t max)
{
    if (min < 0 || max < min)
        return -1;
    for (size_t i = 0; i < catalogue_n_fields; i++)
        if (strcmp(fields[i].message, "ScaleDeploymentArgs") == 0 &&
            strcmp(fields[i].field, "replicas") == 0) {
            fields[i].info.min = min;
            fields[i].info.max = max;
        }
    manifest_limits.min_replicas = min;
    manifest_limits.max_replicas = max;
    catalogue_shutdown(); /* the schemas show the bounds */
    return 0;
}

static const ProtobufCMessageDescriptor *oneof_type(const ProtobufCMessageDescriptor *d,
                                                    const char *name)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, name);
    return f != NULL ? f->descriptor : NULL;
}

/* The schema text of tool index i (output: i + n), built once and kept. */
static const char *schema_text(size_t i, int output)
{
    size_t slot = 2 * i + (output ? 1 : 0);
    const char *s;

    pthread_mutex_lock(&schema_lock);
    if (schemas[slot] == NULL) {
        const ProtobufCMessageDescriptor *d =
            oneof_type(output ? &bastion__v1__call_tool_response__descriptor
                              : &bastion__v1__call_tool_request__descriptor,
                       catalogue_tools[i].name);
        json_t *j = d != NULL ? bst_pbjson_schema(d, catalogue_field_lookup, NULL) : NULL;
        if (j != NULL)
            schemas[slot] = json_dumps(j, JSON_COMPACT);
        json_decref(j);
    }
    s = schemas[slot];
    pthread_mutex_unlock(&schema_lock);
    return s;
}

Bastion__V1__Tool *catalogue_tool_message(struct call *c, const struct tool *t)
{
    Bastion__V1__Tool *m = call_alloc(c, sizeof(*m));
    Bastion__V1__ToolAnnotations *a = call_alloc(c, sizeof(*a));
    size_t i = (size_t)(t - catalogue_tools);

    if (m == NULL || a == NULL)
        return NULL;
    bastion__v1__tool__init(m);
    bastion__v1__tool_annotations__init(a);
    m->name = (char *)t->name;
    m->title = (char *)t->title;
    m->description = (char *)t->description;
    m->permission = (char *)t->permission;
    m->input_schema_json = (char *)schema_text(i, 0);
    m->output_schema_json = (char *)schema_text(i, 1);
    if (m->input_schema_json == NULL || m->output_schema_json == NULL)
        return NULL;
    a->has_read_only_hint = a->has_destructive_hint = 1;
    a->has_idempotent_hint = a->has_open_world_hint = 1;
    a->read_only_hint = (t->hints & TOOL_READ_ONLY) != 0;
    a->destructive_hint = (t->hints & TOOL_DESTRUCTIVE) != 0;
    a->idempotent_hint = (t->hints & TOOL_IDEMPOTENT) != 0;
    a->open_world_hint = (t->hints & TOOL_OPEN_WORLD) != 0;
    m->annotations = a;
    return m;
}

/* ---- generic descriptor access ------------------------------------------------------------- */

/* Returns the set member of the message's (single) oneof, or NULL if none is set. */
static const ProtobufCFieldDescriptor *oneof_member(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t which = *(const uint32_t *)((const char *)m + f->quantifier_offset);
            return which == 0 ? NULL : protobuf_c_message_descriptor_get_field(d, which);
        }
    }
    return NULL;
}

/* Sets the oneof member named name of m to value. Returns 0, or -1 if there is no such field. */
static int oneof_set(ProtobufCMessage *m, const char *name, ProtobufCMessage *value)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
    if (f == NULL || !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
        return -1;
    *(uint32_t *)((char *)m + f->quantifier_offset) = f->id;
    *(ProtobufCMessage **)((char *)m + f->offset) = value;
    return 0;
}

/* The string value of a field named name of m, or NULL when absent or not a string. */
static const char *string_arg(const ProtobufCMessage *m, const char *name)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
    const char *v = NULL;
    if (f == NULL || f->type != PROTOBUF_C_TYPE_STRING)
        return NULL;
    memcpy(&v, (const char *)m + f->offset, sizeof(v));
    return v;
}

static int bool_arg(const ProtobufCMessage *m, const char *name)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
    protobuf_c_boolean has = 0, v = 0;
    if (f == NULL || f->type != PROTOBUF_C_TYPE_BOOL)
        return 0;
    memcpy(&has, (const char *)m + f->quantifier_offset, sizeof(has));
    memcpy(&v, (const char *)m + f->offset, sizeof(v));
    return has && v;
}

/* ---- binding ------------------------------------------------------------------------------- */

enum bst_status catalogue_bind(struct call *c, const ProtobufCMessage *req,
                               const ProtobufCMessage **args)
{
    const Bastion__V1__CallToolRequest *r = (const Bastion__V1__CallToolRequest *)req;
    const ProtobufCFieldDescriptor *member = oneof_member(req);
    struct bst_err err = {BST_OK, ""};
    const struct tool *t;
    const ProtobufCMessage *a;
    const char *ns = NULL;

    if (r->name == NULL || r->name[0] == '\0') {
        call_fail(c, BST_INVALID_ARGUMENT, "name: the tool name is required");
        return BST_INVALID_ARGUMENT;
    }
    if (member == NULL) {
        call_fail(c, BST_INVALID_ARGUMENT,
                  "arguments: none set; set the field named after the tool (e.g. list_pods)");
        return BST_INVALID_ARGUMENT;
    }
    if (strcmp(member->name, r->name) != 0) {
        call_fail(c, BST_INVALID_ARGUMENT, "name '%.64s' disagrees with the arguments set for '%s'",
                  r->name, member->name);
        return BST_INVALID_ARGUMENT;
    }
    t = catalogue_find(member->name);
    a = *(const ProtobufCMessage *const *)((const char *)req + member->offset);
    if (t == NULL || a == NULL) {
        call_fail(c, BST_INVALID_ARGUMENT, "unknown tool '%s'", member->name);
        return BST_INVALID_ARGUMENT;
    }
    if (t->namespace_field != NULL) {
        ns = string_arg(a, t->namespace_field);
        if (t->all_namespaces_field != NULL && bool_arg(a, t->all_namespaces_field)) {
            if (ns != NULL) {
                call_fail(c, BST_INVALID_ARGUMENT, "%s: give %s or %s: true, not both", t->name,
                          t->namespace_field, t->all_namespaces_field);
                return BST_INVALID_ARGUMENT;
            }
        } else if (ns == NULL || ns[0] == '\0') {
            /* An empty namespace is never "all namespaces": that must be asked for. */
            if (t->all_namespaces_field != NULL)
                call_fail(c, BST_INVALID_ARGUMENT, "%s.%s: required (or set %s: true)", t->name,
                          t->namespace_field, t->all_namespaces_field);
            else
                call_fail(c, BST_INVALID_ARGUMENT, "%s.%s: required", t->name, t->namespace_field);
            return BST_INVALID_ARGUMENT;
        }
    }
    /* The whole request: paths then read "scale_deployment.replicas". */
    if (bst_pbjson_check(req, catalogue_field_lookup, NULL, &err) != BST_OK) {
        call_fail(c, BST_INVALID_ARGUMENT, "%s", err.msg);
        return BST_INVALID_ARGUMENT;
    }
    if (t->check != NULL && t->check(c, a) != BST_OK) {
        if (c->status == BST_OK)
            call_fail(c, BST_INVALID_ARGUMENT, "%s: invalid arguments", t->name);
        return c->status;
    }
    c->tool = t;
    c->permission = t->permission;
    c->namespace_ = NULL;
    if (ns != NULL && (c->namespace_ = call_strdup(c, ns)) == NULL) {
        call_fail(c, BST_RESOURCE_EXHAUSTED, "out of memory");
        c->tool = NULL;
        c->permission = NULL;
        return BST_RESOURCE_EXHAUSTED;
    }
    *args = a;
    return BST_OK;
}

/* ---- calling ------------------------------------------------------------------------------- */

static void *arena_alloc(void *arg, size_t n)
{
    return call_alloc(arg, n);
}

void catalogue_kube_ctx(struct call *c, struct kube_ctx *ctx)
{
    ctx->request_id = c->id.hex;
    ctx->deadline_mono_ns = c->deadline_mono_ns;
    ctx->alloc = arena_alloc;
    ctx->alloc_arg = c;
}

/* kubectl's "Error from server (Reason): message" for an answer of the cluster. */
static const char *reason(enum bst_status s, const char *msg)
{
    switch (s) {
    case BST_NOT_FOUND:
        return "NotFound";
    case BST_ALREADY_EXISTS:
        return "AlreadyExists";
    case BST_FAILED_PRECONDITION:
        return strstr(msg, "is forbidden") != NULL ? "Forbidden" : "BadRequest";
    default:
        return strstr(msg, "is invalid") != NULL ? "Invalid" : "BadRequest";
    }
}

enum call_next catalogue_call(struct call *c, const ProtobufCMessage *args)
{
    Bastion__V1__CallToolResponse *resp = call_alloc(c, sizeof(*resp));
    struct bst_err err = {BST_OK, ""};
    struct kube_ctx ctx;
    ProtobufCMessage *result = NULL;
    enum bst_status rv;

    if (resp == NULL)
        return call_fail(c, BST_RESOURCE_EXHAUSTED, "response too large");
    if (backend == NULL)
        return call_fail(c, BST_UNAVAILABLE, "no cluster backend");
    bastion__v1__call_tool_response__init(resp);
    catalogue_kube_ctx(c, &ctx);
    rv = c->tool->invoke(backend, &ctx, args, &result, &err);
    resp->has_is_error = 1;
    switch (rv) {
    case BST_OK:
        resp->text = c->tool->render(args, result, bst_wall_ns() / BST_NS_PER_S, &ctx);
        if (resp->text == NULL || result == NULL)
            return call_fail(c, BST_RESOURCE_EXHAUSTED, "response too large");
        if (oneof_set(&resp->base, c->tool->name, result) != 0)
            return call_fail(c, BST_INTERNAL, "tool result does not match the catalogue");
        break;
    case BST_NOT_FOUND:
    case BST_ALREADY_EXISTS:
    case BST_INVALID_ARGUMENT:
    case BST_FAILED_PRECONDITION: {
        /* The cluster's answer, for the model to act on: a tool-level error. */
        char text[sizeof(err.msg) + 64], clean[sizeof(text)];
        snprintf(text, sizeof(text), "Error from server (%s): %s", reason(rv, err.msg), err.msg);
        bst_text_sanitize(clean, sizeof(clean), text, strlen(text));
        resp->is_error = 1;
        if ((resp->text = call_strdup(c, clean)) == NULL)
            return call_fail(c, BST_RESOURCE_EXHAUSTED, "response too large");
        break;
    }
    case BST_RESOURCE_EXHAUSTED:
        return call_fail(c, BST_RESOURCE_EXHAUSTED, "response too large");
    default:
        return call_fail(c, rv, "%s", err.msg);
    }
    c->response = &resp->base;
    return CALL_NEXT;
}
