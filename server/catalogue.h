/* The tool catalogue: data, defined once. One row per tool gives its MCP name, the permission it
 * needs, which argument names its namespace, its MCP annotations and its handler; a per-field
 * table beside it gives what protoc-c descriptors cannot carry (required, bounds, sensitive, a
 * description for LLMs). Argument and result messages are selected by the `arguments` and
 * `result` oneofs of CallToolRequest/CallToolResponse, whose field names are the tool names:
 * everything here is looked up generically through descriptors, with no per-tool glue. */
#ifndef BASTION_SERVER_CATALOGUE_H
#define BASTION_SERVER_CATALOGUE_H

#include "call.h"
#include "kube/backend.h"

#include <protobuf-c/protobuf-c.h>

enum tool_hint {
    TOOL_READ_ONLY = 1 << 0,
    TOOL_DESTRUCTIVE = 1 << 1,
    TOOL_IDEMPOTENT = 1 << 2,
    TOOL_OPEN_WORLD = 1 << 3,
};

/* Output of a tool: the typed result (arena memory) and the plain-text rendering for LLMs.
 * A tool-level failure (the call itself succeeded) sets is_error with text saying why. */
struct tool_output {
    ProtobufCMessage *result;
    char *text;
    int is_error;
};

struct tool {
    const char *name; /* the MCP tool name = the oneof field name */
    const char *title;
    const char *description;     /* one sentence, written for an LLM */
    const char *permission;      /* e.g. "k8s:pods:list" */
    const char *namespace_field; /* argument naming the namespace; NULL = cluster-scoped */
    unsigned hints;              /* enum tool_hint */
    /* Runs the tool against the cluster. Returns BST_OK (with out filled, possibly is_error),
     * or a status that fails the whole call (c->message set). */
    enum bst_status (*run)(struct call *c, struct kube_backend *kube, const ProtobufCMessage *args,
                           struct tool_output *out);
};

struct tool_field {
    const char *tool;  /* tool name */
    const char *field; /* field name in the argument message */
    int required;
    size_t max_len; /* strings: bytes; 0 = no limit beyond the message size */
    int sensitive;  /* never logged or audited */
    const char *description;
};

/* The catalogue, in oneof field-number order. */
extern const struct tool catalogue_tools[];
extern const size_t catalogue_n_tools;
extern const struct tool_field catalogue_fields[];
extern const size_t catalogue_n_fields;

/* Returns the tool named name, or NULL. */
const struct tool *catalogue_find(const char *name);

/* Sets the backend every tool handler uses (not owned). */
void catalogue_set_backend(struct kube_backend *kube);
struct kube_backend *catalogue_backend(void);

/* Validates a CallToolRequest: exactly the oneof member named by `name` is set, the tool
 * exists, required fields are present, strings within bounds, the namespace a DNS-1123 label.
 * On success stores the tool, its permission and the namespace (arena) in c and *args points
 * to the argument message. Returns BST_OK or BST_INVALID_ARGUMENT with c->message set. */
enum bst_status catalogue_bind(struct call *c, const ProtobufCMessage *req,
                               const ProtobufCMessage **args);

/* Runs c->tool on args and stores the typed result in the CallToolResponse oneof. */
enum call_next catalogue_call(struct call *c, const ProtobufCMessage *args);

/* Returns 1 if s is a DNS-1123 label: 1 to 63 of [a-z0-9-], alphanumeric at both ends. */
int catalogue_dns_label_ok(const char *s);

/* Renders pods as a kubectl-like table into arena memory. */
char *catalogue_render_pods(struct call *c, const struct kube_pod_list *pods, int64_t now_unix);

#endif
