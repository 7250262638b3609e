/* Method table and handlers of the Mcp, Auth and Health services. Tool calls go through the
 * catalogue; nothing here knows a particular tool. */
#include "services.h"
#include "catalogue.h"

#include "bastion/v1/auth.pb-c.h"
#include "bastion/v1/mcp.pb-c.h"
#include "bastion_version.h"
#include "grpc/health/v1/health.pb-c.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_int serving = 1;

void services_set_serving(int s)
{
    atomic_store(&serving, s);
}

const char *const services_protocol_versions[] = {"2025-11-25", "2025-06-18", "2025-03-26", NULL};

#define PAGE_SIZE 100
#define RESOURCE_PREFIX "k8s://namespaces/"
#define RESOURCE_SUFFIX "/pods"

/* Cursors are "o<offset>" with the offset inside the list; anything else is refused. */
static int parse_cursor(struct call *c, const char *cursor, size_t n_items, size_t *offset)
{
    char *end;
    unsigned long v;
    *offset = 0;
    if (cursor == NULL || cursor[0] == '\0')
        return 0;
    if (cursor[0] != 'o' || cursor[1] < '0' || cursor[1] > '9' || strlen(cursor) > 12)
        goto bad;
    v = strtoul(cursor + 1, &end, 10);
    if (*end != '\0' || v == 0 || v >= n_items)
        goto bad;
    *offset = v;
    return 0;
bad:
    call_fail(c, BST_INVALID_ARGUMENT, "cursor: not a cursor this server returned");
    return -1;
}

static char *next_cursor(struct call *c, size_t offset, size_t n_items)
{
    char buf[24];
    if (offset + PAGE_SIZE >= n_items)
        return NULL;
    snprintf(buf, sizeof(buf), "o%zu", offset + PAGE_SIZE);
    return call_strdup(c, buf);
}

#define NEW(c, T, init)                                                                            \
    ({                                                                                             \
        T *m_ = call_alloc((c), sizeof(T));                                                        \
        if (m_ != NULL)                                                                            \
            init(m_);                                                                              \
        m_;                                                                                        \
    })

static enum call_next oom(struct call *c)
{
    return call_fail(c, BST_RESOURCE_EXHAUSTED, "response too large");
}

/* ---- bastion.v1.Mcp ------------------------------------------------------------------------ */

static enum call_next mcp_initialize(struct call *c)
{
    const Bastion__V1__InitializeRequest *req = (const void *)c->request;
    Bastion__V1__InitializeResponse *r =
        NEW(c, Bastion__V1__InitializeResponse, bastion__v1__initialize_response__init);
    Bastion__V1__Implementation *impl =
        NEW(c, Bastion__V1__Implementation, bastion__v1__implementation__init);
    Bastion__V1__ServerCapabilities *caps =
        NEW(c, Bastion__V1__ServerCapabilities, bastion__v1__server_capabilities__init);
    const char *version = services_protocol_versions[0];

    if (r == NULL || impl == NULL || caps == NULL)
        return oom(c);
    /* Echo the requested revision if we speak it, else offer our latest (MCP lifecycle). */
    if (req->protocol_version != NULL) {
        for (size_t i = 0; services_protocol_versions[i] != NULL; i++) {
            if (strcmp(req->protocol_version, services_protocol_versions[i]) == 0)
                version = services_protocol_versions[i];
        }
    }
    impl->name = "bastion";
    impl->title = "Bastion Kubernetes gateway";
    impl->version = BASTION_VERSION;
    caps->has_tools = caps->tools = 1;
    caps->has_resources = caps->resources = 1;
    r->protocol_version = (char *)version;
    r->server_info = impl;
    r->capabilities = caps;
    r->instructions = "Tools act on a Kubernetes cluster on behalf of the authenticated caller. "
                      "Every call is authorized per namespace and recorded in an audit log.";
    c->response = &r->base;
    return CALL_NEXT;
}

static enum call_next mcp_list_tools(struct call *c)
{
    const Bastion__V1__ListToolsRequest *req = (const void *)c->request;
    Bastion__V1__ListToolsResponse *r =
        NEW(c, Bastion__V1__ListToolsResponse, bastion__v1__list_tools_response__init);
    size_t off, n;

    if (r == NULL)
        return oom(c);
    if (parse_cursor(c, req->cursor, catalogue_n_tools, &off) != 0)
        return CALL_DONE;
    n = catalogue_n_tools - off < PAGE_SIZE ? catalogue_n_tools - off : PAGE_SIZE;
    r->tools = call_alloc(c, (n ? n : 1) * sizeof(*r->tools));
    if (r->tools == NULL)
        return oom(c);
    for (size_t i = 0; i < n; i++) {
        const struct tool *t = &catalogue_tools[off + i];
        Bastion__V1__Tool *m = NEW(c, Bastion__V1__Tool, bastion__v1__tool__init);
        Bastion__V1__ToolAnnotations *a =
            NEW(c, Bastion__V1__ToolAnnotations, bastion__v1__tool_annotations__init);
        if (m == NULL || a == NULL)
            return oom(c);
        m->name = (char *)t->name;
        m->title = (char *)t->title;
        m->description = (char *)t->description;
        m->permission = (char *)t->permission;
        a->has_read_only_hint = a->has_destructive_hint = 1;
        a->has_idempotent_hint = a->has_open_world_hint = 1;
        a->read_only_hint = (t->hints & TOOL_READ_ONLY) != 0;
        a->destructive_hint = (t->hints & TOOL_DESTRUCTIVE) != 0;
        a->idempotent_hint = (t->hints & TOOL_IDEMPOTENT) != 0;
        a->open_world_hint = (t->hints & TOOL_OPEN_WORLD) != 0;
        m->annotations = a;
        r->tools[i] = m;
    }
    r->n_tools = n;
    r->next_cursor = next_cursor(c, off, catalogue_n_tools);
    c->response = &r->base;
    return CALL_NEXT;
}

static enum bst_status bind_call_tool(struct call *c)
{
    const ProtobufCMessage *args;
    return catalogue_bind(c, c->request, &args);
}

static enum call_next mcp_call_tool(struct call *c)
{
    const ProtobufCMessage *args;
    /* Binding is pure and cheap; repeating it hands the handler the argument message. */
    if (catalogue_bind(c, c->request, &args) != BST_OK)
        return CALL_DONE;
    return catalogue_call(c, args);
}

static enum bst_status bind_list_resources(struct call *c)
{
    c->permission = "k8s:namespaces:list";
    return BST_OK;
}

static enum call_next mcp_list_resources(struct call *c)
{
    const Bastion__V1__ListResourcesRequest *req = (const void *)c->request;
    Bastion__V1__ListResourcesResponse *r =
        NEW(c, Bastion__V1__ListResourcesResponse, bastion__v1__list_resources_response__init);
    struct kube_backend *kube = catalogue_backend();
    struct kube_name_list ns = {NULL, 0};
    struct bst_err err = {BST_OK, ""};
    size_t off, n;

    if (r == NULL)
        return oom(c);
    if (kube->ops->list_namespaces(kube, &ns, &err) != BST_OK)
        return call_fail(c, err.code, "%s", err.msg);
    if (parse_cursor(c, req->cursor, ns.n, &off) != 0) {
        kube_name_list_free(&ns);
        return CALL_DONE;
    }
    n = ns.n - off < PAGE_SIZE ? ns.n - off : PAGE_SIZE;
    r->resources = call_alloc(c, (n ? n : 1) * sizeof(*r->resources));
    for (size_t i = 0; r->resources != NULL && i < n; i++) {
        const char *name = ns.names[off + i];
        Bastion__V1__Resource *m = NEW(c, Bastion__V1__Resource, bastion__v1__resource__init);
        char buf[160];
        if (m == NULL)
            break;
        snprintf(buf, sizeof(buf), RESOURCE_PREFIX "%s" RESOURCE_SUFFIX, name);
        m->uri = call_strdup(c, buf);
        snprintf(buf, sizeof(buf), "pods-%s", name);
        m->name = call_strdup(c, buf);
        snprintf(buf, sizeof(buf), "Pods in namespace %s", name);
        m->title = call_strdup(c, buf);
        m->description = "A kubectl-style table of the pods in the namespace.";
        m->mime_type = "text/plain";
        r->resources[i] = m;
        r->n_resources = i + 1;
    }
    r->next_cursor = next_cursor(c, off, ns.n);
    kube_name_list_free(&ns);
    if (r->n_resources != n)
        return oom(c);
    c->response = &r->base;
    return CALL_NEXT;
}

/* A resource URI k8s://namespaces/NS/pods reads like list_pods in NS, and needs what it needs. */
static enum bst_status bind_read_resource(struct call *c)
{
    const Bastion__V1__ReadResourceRequest *req = (const void *)c->request;
    const struct tool *t = catalogue_find("list_pods");
    const char *uri = req->uri != NULL ? req->uri : "";
    size_t pl = strlen(RESOURCE_PREFIX), sl = strlen(RESOURCE_SUFFIX), n = strlen(uri);
    char *ns;

    if (uri[0] == '\0') {
        call_fail(c, BST_INVALID_ARGUMENT, "uri: required");
        return BST_INVALID_ARGUMENT;
    }
    if (n <= pl + sl || strncmp(uri, RESOURCE_PREFIX, pl) != 0 ||
        strcmp(uri + n - sl, RESOURCE_SUFFIX) != 0) {
        call_fail(c, BST_NOT_FOUND, "no resource with this URI");
        return BST_NOT_FOUND;
    }
    ns = call_strndup(c, uri + pl, n - pl - sl);
    if (ns == NULL || !catalogue_dns_label_ok(ns)) {
        call_fail(c, BST_NOT_FOUND, "no resource with this URI");
        return BST_NOT_FOUND;
    }
    c->tool = t;
    c->permission = t->permission;
    c->namespace_ = ns;
    return BST_OK;
}

static enum call_next mcp_read_resource(struct call *c)
{
    const Bastion__V1__ReadResourceRequest *req = (const void *)c->request;
    Bastion__V1__ReadResourceResponse *r =
        NEW(c, Bastion__V1__ReadResourceResponse, bastion__v1__read_resource_response__init);
    Bastion__V1__ResourceContents *rc =
        NEW(c, Bastion__V1__ResourceContents, bastion__v1__resource_contents__init);
    struct kube_backend *kube = catalogue_backend();
    struct kube_pod_list pods = {NULL, 0};
    struct bst_err err = {BST_OK, ""};
    enum bst_status rv;

    if (r == NULL || rc == NULL || (r->contents = call_alloc(c, sizeof(*r->contents))) == NULL)
        return oom(c);
    rv = kube->ops->list_pods(kube, c->namespace_, &pods, &err);
    if (rv != BST_OK)
        return call_fail(c, rv == BST_NOT_FOUND ? BST_NOT_FOUND : rv,
                         rv == BST_NOT_FOUND ? "no resource with this URI" : "%s", err.msg);
    rc->uri = call_strdup(c, req->uri);
    rc->mime_type = "text/plain";
    rc->text = catalogue_render_pods(c, &pods, c->start_wall_ns / 1000000000);
    kube_pod_list_free(&pods);
    if (rc->uri == NULL || rc->text == NULL)
        return oom(c);
    r->contents[0] = rc;
    r->n_contents = 1;
    c->response = &r->base;
    return CALL_NEXT;
}

static enum call_next mcp_ping(struct call *c)
{
    Bastion__V1__PingResponse *r =
        NEW(c, Bastion__V1__PingResponse, bastion__v1__ping_response__init);
    if (r == NULL)
        return oom(c);
    c->response = &r->base;
    return CALL_NEXT;
}

/* ---- bastion.v1.Auth ----------------------------------------------------------------------- */

static enum call_next auth_who_am_i(struct call *c)
{
    const struct bst_principal *p = &c->principal;
    Bastion__V1__WhoAmIResponse *r =
        NEW(c, Bastion__V1__WhoAmIResponse, bastion__v1__who_am_iresponse__init);
    Bastion__V1__Principal *m = NEW(c, Bastion__V1__Principal, bastion__v1__principal__init);

    if (r == NULL || m == NULL)
        return oom(c);
    m->name = p->name;
    m->has_mechanism = 1;
    m->mechanism = (Bastion__V1__AuthMechanism)p->mechanism;
    m->groups = p->groups;
    m->n_groups = p->n_groups;
    m->tenant = p->tenant;
    m->permissions = p->permissions;
    m->n_permissions = p->n_permissions;
    m->certificate_identity = p->cert_identity;
    m->certificate_fingerprint_sha256 = p->fingerprint[0] ? (char *)p->fingerprint : NULL;
    if (p->expires_at_ns != 0) {
        m->has_expires_at_unix = 1;
        m->expires_at_unix = p->expires_at_ns / 1000000000;
    }
    r->principal = m;
    r->request_id = c->id.hex;
    c->response = &r->base;
    return CALL_NEXT;
}

static enum call_next auth_unimplemented(struct call *c)
{
    return call_fail(c, BST_UNIMPLEMENTED, "%s is not implemented by this server version",
                     strrchr(c->method->path, '/') + 1);
}

/* ---- grpc.health.v1.Health ----------------------------------------------------------------- */

static enum call_next health_check(struct call *c)
{
    const Grpc__Health__V1__HealthCheckRequest *req = (const void *)c->request;
    Grpc__Health__V1__HealthCheckResponse *r = NEW(c, Grpc__Health__V1__HealthCheckResponse,
                                                   grpc__health__v1__health_check_response__init);
    const char *svc = req->service != NULL ? req->service : "";

    if (r == NULL)
        return oom(c);
    if (svc[0] != '\0' && strcmp(svc, "bastion.v1.Mcp") != 0 && strcmp(svc, "bastion.v1.Auth") != 0)
        return call_fail(c, BST_NOT_FOUND, "unknown service");
    r->has_status = 1;
    r->status = atomic_load(&serving)
                    ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                    : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    c->response = &r->base;
    return CALL_NEXT;
}

/* ---- table --------------------------------------------------------------------------------- */

#define MCP(m, in, out)                                                                            \
    "/bastion.v1.Mcp/" m, &bastion__v1__##in##__descriptor, &bastion__v1__##out##__descriptor
#define AUTH(m, in, out)                                                                           \
    "/bastion.v1.Auth/" m, &bastion__v1__##in##__descriptor, &bastion__v1__##out##__descriptor

const struct call_method services_methods[] = {
    {MCP("Initialize", initialize_request, initialize_response), 1, NULL, mcp_initialize},
    {MCP("ListTools", list_tools_request, list_tools_response), 1, NULL, mcp_list_tools},
    {MCP("CallTool", call_tool_request, call_tool_response), 1, bind_call_tool, mcp_call_tool},
    {MCP("ListResources", list_resources_request, list_resources_response), 1, bind_list_resources,
     mcp_list_resources},
    {MCP("ReadResource", read_resource_request, read_resource_response), 1, bind_read_resource,
     mcp_read_resource},
    {MCP("Ping", ping_request, ping_response), 1, NULL, mcp_ping},
    {AUTH("IssueToken", issue_token_request, issue_token_response), 0, NULL, auth_unimplemented},
    {AUTH("WhoAmI", who_am_irequest, who_am_iresponse), 1, NULL, auth_who_am_i},
    {AUTH("CanI", can_irequest, can_iresponse), 1, NULL, auth_unimplemented},
    {"/grpc.health.v1.Health/Check", &grpc__health__v1__health_check_request__descriptor,
     &grpc__health__v1__health_check_response__descriptor, 0, NULL, health_check},
};
const size_t services_n_methods = sizeof(services_methods) / sizeof(services_methods[0]);

const struct call_method *services_find(const char *path, size_t len)
{
    for (size_t i = 0; i < services_n_methods; i++) {
        const char *p = services_methods[i].path;
        if (strlen(p) == len && memcmp(p, path, len) == 0)
            return &services_methods[i];
    }
    return NULL;
}
