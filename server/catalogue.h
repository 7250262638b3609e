/* The tool catalogue: data, defined once. One row per tool gives its MCP name, title, the
 * permission it needs, which argument names its namespace (and whether it may list all
 * namespaces), its MCP annotations, the backend operation it invokes and its text renderer; a
 * per-field table beside it gives what protoc-c descriptors cannot carry (required, bounds,
 * syntax, sensitivity, a description for LLMs), keyed by message and field so that it also
 * covers nested and result messages. Argument and result messages are selected by the
 * `arguments` and `result` oneofs of CallToolRequest/CallToolResponse, whose field names are the
 * tool names: validation, JSON Schemas (common/pbjson.h) and the JSON mapping are derived from
 * descriptors plus this table, with no per-tool JSON code. */
#ifndef BASTION_SERVER_CATALOGUE_H
#define BASTION_SERVER_CATALOGUE_H

#include "call.h"
#include "kube/backend.h"
#include "kube/render.h"
#include "pbjson.h"

#include "bastion/v1/mcp.pb-c.h"

#include <protobuf-c/protobuf-c.h>

enum tool_hint {
    TOOL_READ_ONLY = 1 << 0,
    TOOL_DESTRUCTIVE = 1 << 1,
    TOOL_IDEMPOTENT = 1 << 2,
    TOOL_OPEN_WORLD = 1 << 3,
};

/* Calls the backend operation of a tool: a typed adapter of one line per tool. Returns what the
 * operation returns; *result is ctx memory. */
typedef enum bst_status (*tool_invoke_fn)(struct kube_backend *b, const struct kube_ctx *ctx,
                                          const ProtobufCMessage *args, ProtobufCMessage **result,
                                          struct bst_err *err);

struct tool {
    const char *name; /* the MCP tool name = the oneof field name */
    const char *title;
    const char *description;          /* for an LLM: what it does and what it returns */
    const char *permission;           /* e.g. "k8s:pods:list" */
    const char *namespace_field;      /* argument naming the namespace; NULL = cluster-scoped */
    const char *all_namespaces_field; /* bool argument selecting every namespace, or NULL */
    unsigned hints;                   /* enum tool_hint */
    /* Checks beyond the field table, at bind time (e.g. the manifest); NULL = none. Returns
     * BST_OK or BST_INVALID_ARGUMENT with c->message set. */
    enum bst_status (*check)(struct call *c, const ProtobufCMessage *args);
    tool_invoke_fn invoke;
    kube_render_fn render;
};

/* One row of the per-field table. */
struct tool_field {
    const char *message; /* short name of a bastion.v1 message, e.g. "ListPodsArgs" */
    const char *field;   /* field name in it */
    struct bst_pbjson_field_info info;
};

/* The catalogue, in oneof field-number order (list_pods = 10, ...). */
extern const struct tool catalogue_tools[];
extern const size_t catalogue_n_tools;
extern const struct tool_field *const catalogue_fields;
extern const size_t catalogue_n_fields;

/* Returns the tool named name, or NULL. */
const struct tool *catalogue_find(const char *name);

/* The per-field table as a bst_pbjson_lookup_fn (arg unused): for validation, schemas,
 * redaction of sensitive fields (audit, logs) and the JSON routes. Thread-safe. */
const struct bst_pbjson_field_info *catalogue_field_lookup(const ProtobufCMessageDescriptor *msg,
                                                           const ProtobufCFieldDescriptor *field,
                                                           void *arg);

/* Sets the backend every tool handler uses (not owned). */
void catalogue_set_backend(struct kube_backend *kube);
struct kube_backend *catalogue_backend(void);

/* Sets the bounds of scale_deployment.replicas and of manifests' spec.replicas (default
 * 0..100). Call before serving (it rebuilds the cached schemas). Returns 0, or -1 when
 * min > max or either is negative. */
int catalogue_set_replica_bounds(int32_t min, int32_t max);

/* Frees the cached schemas (tests, and a clean exit). */
void catalogue_shutdown(void);

/* Validates a CallToolRequest: exactly the oneof member named by `name` is set and names a
 * tool; the per-field table's rules hold (required, bounds, lengths, syntax: names and
 * namespaces DNS-1123, label selectors parse); the namespace is given, or all_namespaces is
 * set for tools that allow it (never both, and never an empty namespace meaning "all"); the
 * tool's own check passes. On success stores the tool, its permission and the namespace
 * (arena; NULL for cluster scope or all namespaces) in c and *args points to the argument
 * message. Returns BST_OK or BST_INVALID_ARGUMENT with c->message set. */
enum bst_status catalogue_bind(struct call *c, const ProtobufCMessage *req,
                               const ProtobufCMessage **args);

/* Runs c->tool on args and stores the typed result and its text in a CallToolResponse
 * (c->response). Cluster answers such as "not found" are tool-level errors (is_error, text
 * says why); server-side failures fail the call. */
enum call_next catalogue_call(struct call *c, const ProtobufCMessage *args);

/* Builds the ListTools entry of t (arena): name, title, description, permission, annotations
 * and the input and output JSON Schemas. NULL when out of memory. */
Bastion__V1__Tool *catalogue_tool_message(struct call *c, const struct tool *t);

/* What reading a resource (k8s://NAMESPACE/KIND/NAME) of kind k needs: the permission of the
 * tool that shows such objects, and that tool (NULL for config maps, which have no tool and
 * their own permission, k8s:configmaps:get). */
const char *catalogue_resource_permission(enum kube_kind k, const struct tool **tool);

/* Every permission the server checks (tools, resources and listing resources), each once, into
 * out[0..max); returns how many there are (out may hold fewer). For validating policies. */
size_t catalogue_permissions(const char **out, size_t max);

/* Returns 1 if s is a DNS-1123 label: 1 to 63 of [a-z0-9-], alphanumeric at both ends. */
int catalogue_dns_label_ok(const char *s);

/* A struct kube_ctx whose results go to the call's arena. */
void catalogue_kube_ctx(struct call *c, struct kube_ctx *ctx);

#endif
