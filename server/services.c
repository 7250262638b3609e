/* Method table and handlers of the Mcp, Auth and Health services. Tool calls go through the
 * catalogue; nothing here knows a particular tool. */
#include "services.h"
#include "authsvc.h"
#include "catalogue.h"
#include "kube/names.h"
#include "text.h"

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
    for (size_t i = 0; i < n; i++)
        if ((r->tools[i] = catalogue_tool_message(c, &catalogue_tools[off + i])) == NULL)
            return oom(c);
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

/* ---- resources: every object as k8s://NAMESPACE/KIND/NAME ---------------------------------- */

#define RESOURCE_SCHEME "k8s://"
#define RESOURCE_PAGE 100
#define MAX_URI 600

/* Cursors are the base64url text of the last URI returned, so a page is stable while objects
 * come and go; anything that does not decode to a resource URI is refused. */
static char *resource_cursor(struct call *c, const char *uri)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = strlen(uri), o = 0;
    char *out = call_alloc(c, 4 * ((n + 2) / 3) + 1);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)uri[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)uri[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)uri[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = b64[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = b64[v & 63];
    }
    out[o] = '\0';
    return out;
}

static int b64url(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    return ch == '-' ? 62 : ch == '_' ? 63 : -1;
}

/* Decodes a cursor into out (MAX_URI bytes). Returns 0, or -1 if it is not one of ours. */
static int parse_resource_cursor(const char *cursor, char *out)
{
    size_t n = strlen(cursor), o = 0;
    uint32_t acc = 0;
    int bits = 0;
    if (n == 0 || n > 4 * (MAX_URI / 3) || n % 4 == 1)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int v = b64url(cursor[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= MAX_URI)
                return -1;
            out[o++] = (char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    out[o] = '\0';
    return strlen(out) == o && strncmp(out, RESOURCE_SCHEME, strlen(RESOURCE_SCHEME)) == 0 &&
                   bst_utf8_valid(out, o)
               ? 0
               : -1;
}

/* Listing names every object of every namespace: it needs the cluster-wide namespaces
 * permission; reading one object needs the permission of its kind in its namespace. */
static enum bst_status bind_list_resources(struct call *c)
{
    const Bastion__V1__ListResourcesRequest *req = (const void *)c->request;
    char after[MAX_URI];
    if (req->cursor != NULL && req->cursor[0] != '\0' &&
        parse_resource_cursor(req->cursor, after) != 0) {
        call_fail(c, BST_INVALID_ARGUMENT, "cursor: not a cursor this server returned");
        return BST_INVALID_ARGUMENT;
    }
    c->tool = catalogue_find("list_namespaces");
    c->permission = "k8s:namespaces:list";
    c->namespace_ = NULL;
    return BST_OK;
}

static enum call_next mcp_list_resources(struct call *c)
{
    const Bastion__V1__ListResourcesRequest *req = (const void *)c->request;
    Bastion__V1__ListResourcesResponse *r =
        NEW(c, Bastion__V1__ListResourcesResponse, bastion__v1__list_resources_response__init);
    struct kube_backend *kube = catalogue_backend();
    struct kube_object_ref *refs = NULL;
    struct bst_err err = {BST_OK, ""};
    struct kube_ctx ctx;
    char after[MAX_URI] = "", buf[MAX_URI + 64];
    size_t n = 0;
    int more = 0;

    if (r == NULL)
        return oom(c);
    if (req->cursor != NULL && req->cursor[0] != '\0' &&
        parse_resource_cursor(req->cursor, after) != 0)
        return call_fail(c, BST_INVALID_ARGUMENT, "cursor: not a cursor this server returned");
    catalogue_kube_ctx(c, &ctx);
    if (kube->ops->list_objects(kube, &ctx, after, RESOURCE_PAGE, &refs, &n, &more, &err) != BST_OK)
        return err.code == BST_RESOURCE_EXHAUSTED ? oom(c) : call_fail(c, err.code, "%s", err.msg);
    r->resources = call_alloc(c, (n ? n : 1) * sizeof(*r->resources));
    if (r->resources == NULL)
        return oom(c);
    for (size_t i = 0; i < n; i++) {
        const char *kind = kube_kind_name(refs[i].kind), *title = kube_kind_title(refs[i].kind);
        Bastion__V1__Resource *m = NEW(c, Bastion__V1__Resource, bastion__v1__resource__init);
        if (m == NULL)
            return oom(c);
        snprintf(buf, sizeof(buf), RESOURCE_SCHEME "%s/%s/%s", refs[i].namespace_, kind,
                 refs[i].name);
        m->uri = call_strdup(c, buf);
        snprintf(buf, sizeof(buf), "%s/%s", kind, refs[i].name);
        m->name = call_strdup(c, buf);
        snprintf(buf, sizeof(buf), "%s %s/%s", title, refs[i].namespace_, refs[i].name);
        m->title = call_strdup(c, buf);
        m->description = refs[i].kind == KUBE_KIND_SECRET
                             ? "The Kubernetes object as JSON, without its secret data."
                             : "The Kubernetes object as JSON (apiVersion, kind, metadata, "
                               "spec, status).";
        m->mime_type = "application/json";
        if (m->uri == NULL || m->name == NULL || m->title == NULL)
            return oom(c);
        r->resources[r->n_resources++] = m;
    }
    if (more && n > 0 && (r->next_cursor = resource_cursor(c, r->resources[n - 1]->uri)) == NULL)
        return oom(c);
    c->response = &r->base;
    return CALL_NEXT;
}

struct resource_uri {
    enum kube_kind kind;
    char ns[64];
    char name[254];
};

/* k8s://NAMESPACE/KIND/NAME, each part checked as Kubernetes checks it. */
static int parse_resource_uri(const char *uri, struct resource_uri *out)
{
    const char *p = uri, *s1, *s2;
    char kind[32];
    size_t pl = strlen(RESOURCE_SCHEME);

    if (strncmp(p, RESOURCE_SCHEME, pl) != 0)
        return -1;
    p += pl;
    if ((s1 = strchr(p, '/')) == NULL || (s2 = strchr(s1 + 1, '/')) == NULL ||
        (size_t)(s1 - p) >= sizeof(out->ns) || (size_t)(s2 - s1 - 1) >= sizeof(kind) ||
        strlen(s2 + 1) >= sizeof(out->name))
        return -1;
    memcpy(out->ns, p, (size_t)(s1 - p));
    out->ns[s1 - p] = '\0';
    memcpy(kind, s1 + 1, (size_t)(s2 - s1 - 1));
    kind[s2 - s1 - 1] = '\0';
    memcpy(out->name, s2 + 1, strlen(s2 + 1) + 1);
    if (!kube_dns1123_label_ok(out->ns) || kube_kind_parse(kind, &out->kind) != 0 ||
        !kube_dns1123_subdomain_ok(out->name))
        return -1;
    return 0;
}

static enum bst_status bind_read_resource(struct call *c)
{
    const Bastion__V1__ReadResourceRequest *req = (const void *)c->request;
    const char *uri = req->uri != NULL ? req->uri : "";
    struct resource_uri u;

    if (uri[0] == '\0') {
        call_fail(c, BST_INVALID_ARGUMENT, "uri: required");
        return BST_INVALID_ARGUMENT;
    }
    if (parse_resource_uri(uri, &u) != 0) {
        call_fail(c, BST_NOT_FOUND, "no resource with this URI");
        return BST_NOT_FOUND;
    }
    c->permission = catalogue_resource_permission(u.kind, &c->tool);
    if ((c->namespace_ = call_strdup(c, u.ns)) == NULL) {
        call_fail(c, BST_RESOURCE_EXHAUSTED, "out of memory");
        return BST_RESOURCE_EXHAUSTED;
    }
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
    struct bst_err err = {BST_OK, ""};
    struct resource_uri u;
    struct kube_ctx ctx;
    json_t *obj = NULL;
    char *text;
    enum bst_status rv;

    if (r == NULL || rc == NULL || (r->contents = call_alloc(c, sizeof(*r->contents))) == NULL)
        return oom(c);
    if (parse_resource_uri(req->uri, &u) != 0)
        return call_fail(c, BST_NOT_FOUND, "no resource with this URI");
    catalogue_kube_ctx(c, &ctx);
    rv = kube->ops->get_object(kube, &ctx, u.kind, u.ns, u.name, &obj, &err);
    if (rv == BST_NOT_FOUND)
        return call_fail(c, BST_NOT_FOUND, "no resource with this URI");
    if (rv != BST_OK)
        return rv == BST_RESOURCE_EXHAUSTED ? oom(c) : call_fail(c, rv, "%s", err.msg);
    text = json_dumps(obj, JSON_INDENT(2));
    json_decref(obj);
    if (text == NULL)
        return oom(c);
    rc->text = call_strdup(c, text);
    free(text);
    rc->uri = call_strdup(c, req->uri);
    rc->mime_type = "application/json";
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
    {MCP("Initialize", initialize_request, initialize_response), 1, NULL, mcp_initialize, 0},
    {MCP("ListTools", list_tools_request, list_tools_response), 1, NULL, mcp_list_tools, 0},
    {MCP("CallTool", call_tool_request, call_tool_response), 1, bind_call_tool, mcp_call_tool, 0},
    {MCP("ListResources", list_resources_request, list_resources_response), 1, bind_list_resources,
     mcp_list_resources, 0},
    {MCP("ReadResource", read_resource_request, read_resource_response), 1, bind_read_resource,
     mcp_read_resource, 0},
    {MCP("Ping", ping_request, ping_response), 1, NULL, mcp_ping, 0},
    {AUTH("IssueToken", issue_token_request, issue_token_response), 0, NULL, authsvc_issue_token,
     1},
    {AUTH("WhoAmI", who_am_irequest, who_am_iresponse), 1, NULL, auth_who_am_i, 0},
    {AUTH("CanI", can_irequest, can_iresponse), 1, NULL, authsvc_can_i, 0},
    {"/grpc.health.v1.Health/Check", &grpc__health__v1__health_check_request__descriptor,
     &grpc__health__v1__health_check_response__descriptor, 0, NULL, health_check, 1},
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
