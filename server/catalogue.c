/* The tool table, the per-field table, and the generic binding of CallTool requests. */
#include "catalogue.h"
#include "clock.h"

#include "bastion/v1/mcp.pb-c.h"

#include <stdio.h>
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

/* ---- tools --------------------------------------------------------------------------------- */

static enum bst_status run_list_pods(struct call *c, struct kube_backend *kube,
                                     const ProtobufCMessage *args, struct tool_output *out);

const struct tool catalogue_tools[] = {
    {
        .name = "list_pods",
        .title = "List pods",
        .description = "List the pods in one namespace with their phase, readiness, restarts, "
                       "node and IP, as a table and as structured data.",
        .permission = "k8s:pods:list",
        .namespace_field = "namespace",
        .hints = TOOL_READ_ONLY | TOOL_IDEMPOTENT,
        .run = run_list_pods,
    },
};
const size_t catalogue_n_tools = sizeof(catalogue_tools) / sizeof(catalogue_tools[0]);

const struct tool_field catalogue_fields[] = {
    {"list_pods", "namespace", 1, 63, 0, "The namespace to list pods in, e.g. \"default\"."},
};
const size_t catalogue_n_fields = sizeof(catalogue_fields) / sizeof(catalogue_fields[0]);

const struct tool *catalogue_find(const char *name)
{
    for (size_t i = 0; i < catalogue_n_tools; i++) {
        if (strcmp(catalogue_tools[i].name, name) == 0)
            return &catalogue_tools[i];
    }
    return NULL;
}

int catalogue_dns_label_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        int alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (!alnum && !(ch == '-' && i > 0 && i + 1 < n))
            return 0;
    }
    return 1;
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

/* Returns the string value of an optional string field, or NULL when absent. */
static const char *string_field(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    return *(const char *const *)((const char *)m + f->offset);
}

static enum bst_status check_fields(struct call *c, const struct tool *t,
                                    const ProtobufCMessage *args)
{
    for (size_t i = 0; i < catalogue_n_fields; i++) {
        const struct tool_field *tf = &catalogue_fields[i];
        const ProtobufCFieldDescriptor *f;
        const char *v;
        if (strcmp(tf->tool, t->name) != 0)
            continue;
        f = protobuf_c_message_descriptor_get_field_by_name(args->descriptor, tf->field);
        if (f == NULL || f->type != PROTOBUF_C_TYPE_STRING)
            continue; /* only string fields have rules so far; a unit test pins the table */
        v = string_field(args, f);
        if (tf->required && (v == NULL || v[0] == '\0')) {
            call_fail(c, BST_INVALID_ARGUMENT, "%s: argument '%s' is required", t->name, tf->field);
            return BST_INVALID_ARGUMENT;
        }
        if (v != NULL && tf->max_len > 0 && strlen(v) > tf->max_len) {
            call_fail(c, BST_INVALID_ARGUMENT, "%s: argument '%s' is longer than %zu bytes",
                      t->name, tf->field, tf->max_len);
            return BST_INVALID_ARGUMENT;
        }
    }
    return BST_OK;
}

enum bst_status catalogue_bind(struct call *c, const ProtobufCMessage *req,
                               const ProtobufCMessage **args)
{
    const Bastion__V1__CallToolRequest *r = (const Bastion__V1__CallToolRequest *)req;
    const ProtobufCFieldDescriptor *member = oneof_member(req);
    const struct tool *t;
    const ProtobufCMessage *a;

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
    if (check_fields(c, t, a) != BST_OK)
        return BST_INVALID_ARGUMENT;
    c->tool = t;
    c->permission = t->permission;
    c->namespace_ = NULL;
    if (t->namespace_field != NULL) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(a->descriptor, t->namespace_field);
        const char *ns = f != NULL ? string_field(a, f) : NULL;
        if (ns == NULL || !catalogue_dns_label_ok(ns)) {
            call_fail(c, BST_INVALID_ARGUMENT,
                      "%s: namespace must be a DNS-1123 label (1-63 of a-z, 0-9, '-')", t->name);
            return BST_INVALID_ARGUMENT;
        }
        if ((c->namespace_ = call_strdup(c, ns)) == NULL) {
            call_fail(c, BST_RESOURCE_EXHAUSTED, "out of memory");
            return BST_RESOURCE_EXHAUSTED;
        }
    }
    *args = a;
    return BST_OK;
}

enum call_next catalogue_call(struct call *c, const ProtobufCMessage *args)
{
    Bastion__V1__CallToolResponse *resp = call_alloc(c, sizeof(*resp));
    struct tool_output out = {NULL, NULL, 0};

    if (resp == NULL)
        return call_fail(c, BST_RESOURCE_EXHAUSTED, "out of memory");
    bastion__v1__call_tool_response__init(resp);
    if (c->tool->run(c, backend, args, &out) != BST_OK) {
        if (c->status == BST_OK)
            call_fail(c, BST_INTERNAL, "tool failed");
        return CALL_DONE;
    }
    resp->text = out.text;
    resp->has_is_error = 1;
    resp->is_error = out.is_error;
    if (out.result != NULL && oneof_set(&resp->base, c->tool->name, out.result) != 0)
        return call_fail(c, BST_INTERNAL, "tool result does not match the catalogue");
    c->response = &resp->base;
    return CALL_NEXT;
}

/* ---- list_pods ----------------------------------------------------------------------------- */

static void format_age(char *buf, size_t len, int64_t secs)
{
    if (secs < 0)
        secs = 0;
    if (secs < 120)
        snprintf(buf, len, "%llds", (long long)secs);
    else if (secs < 2 * 3600)
        snprintf(buf, len, "%lldm", (long long)(secs / 60));
    else if (secs < 2 * 86400)
        snprintf(buf, len, "%lldh", (long long)(secs / 3600));
    else
        snprintf(buf, len, "%lldd", (long long)(secs / 86400));
}

char *catalogue_render_pods(struct call *c, const struct kube_pod_list *pods, int64_t now_unix)
{
    size_t cap = 128 + pods->n * 192, used = 0;
    size_t wname = 4;
    char *buf;

    for (size_t i = 0; i < pods->n; i++) {
        size_t l = strlen(pods->items[i].name);
        if (l > wname)
            wname = l;
    }
    if (wname > 80)
        wname = 80;
    cap += pods->n * wname;
    if ((buf = call_alloc(c, cap)) == NULL)
        return NULL;
    if (pods->n == 0)
        return call_strdup(c, "No pods found in this namespace.");
    used += (size_t)snprintf(buf, cap, "%-*s  %-5s  %-9s  %-8s  %s\n", (int)wname, "NAME", "READY",
                             "STATUS", "RESTARTS", "AGE");
    for (size_t i = 0; i < pods->n && used < cap; i++) {
        const struct kube_pod *p = &pods->items[i];
        char ready[24], age[24];
        snprintf(ready, sizeof(ready), "%u/%u", p->ready_containers, p->total_containers);
        format_age(age, sizeof(age), now_unix - p->start_time_unix);
        used +=
            (size_t)snprintf(buf + used, cap - used, "%-*.*s  %-5s  %-9s  %-8u  %s\n", (int)wname,
                             (int)wname, p->name, ready, p->phase, p->restarts, age);
    }
    return buf;
}

static enum bst_status run_list_pods(struct call *c, struct kube_backend *kube,
                                     const ProtobufCMessage *args, struct tool_output *out)
{
    struct kube_pod_list pods = {NULL, 0};
    struct bst_err err = {BST_OK, ""};
    Bastion__V1__ListPodsResult *res;
    enum bst_status rv;

    (void)args; /* the namespace was validated and bound by catalogue_bind */
    rv = kube->ops->list_pods(kube, c->namespace_, &pods, &err);
    if (rv == BST_NOT_FOUND) {
        out->is_error = 1;
        out->text = call_strdup(c, err.msg);
        return out->text != NULL ? BST_OK : BST_RESOURCE_EXHAUSTED;
    }
    if (rv != BST_OK) {
        call_fail(c, rv, "%s", err.msg);
        return rv;
    }
    res = call_alloc(c, sizeof(*res));
    if (res == NULL)
        goto oom;
    bastion__v1__list_pods_result__init(res);
    res->n_pods = pods.n;
    res->pods = call_alloc(c, (pods.n ? pods.n : 1) * sizeof(*res->pods));
    if (res->pods == NULL)
        goto oom;
    for (size_t i = 0; i < pods.n; i++) {
        const struct kube_pod *p = &pods.items[i];
        Bastion__V1__Pod *m = call_alloc(c, sizeof(*m));
        if (m == NULL)
            goto oom;
        bastion__v1__pod__init(m);
        m->name = call_strdup(c, p->name);
        m->namespace_ = call_strdup(c, p->namespace_);
        m->phase = call_strdup(c, p->phase);
        m->node = call_strdup(c, p->node);
        m->ip = call_strdup(c, p->ip);
        m->has_restarts = m->has_ready_containers = m->has_total_containers = 1;
        m->has_start_time_unix = 1;
        m->restarts = p->restarts;
        m->ready_containers = p->ready_containers;
        m->total_containers = p->total_containers;
        m->start_time_unix = p->start_time_unix;
        m->n_labels = p->n_labels;
        m->labels = call_alloc(c, (p->n_labels ? p->n_labels : 1) * sizeof(*m->labels));
        if (m->name == NULL || m->namespace_ == NULL || m->phase == NULL || m->node == NULL ||
            m->ip == NULL || m->labels == NULL)
            goto oom;
        for (size_t j = 0; j < p->n_labels; j++) {
            Bastion__V1__Label *l = call_alloc(c, sizeof(*l));
            if (l == NULL)
                goto oom;
            bastion__v1__label__init(l);
            l->key = call_strdup(c, p->labels[j].key);
            l->value = call_strdup(c, p->labels[j].value);
            if (l->key == NULL || l->value == NULL)
                goto oom;
            m->labels[j] = l;
        }
        res->pods[i] = m;
    }
    out->text = catalogue_render_pods(c, &pods, bst_wall_ns() / BST_NS_PER_S);
    if (out->text == NULL)
        goto oom;
    out->result = &res->base;
    kube_pod_list_free(&pods);
    return BST_OK;
oom:
    kube_pod_list_free(&pods);
    call_fail(c, BST_RESOURCE_EXHAUSTED, "response too large");
    return BST_RESOURCE_EXHAUSTED;
}
