/* Building audit records from calls. Everything here runs on a worker's loop; audit_submit
 * copies the record at once, so records live on the stack and in the call's arena. */
#include "auditlog.h"
#include "audit.h"
#include "catalogue.h"
#include "clock.h"
#include "identity.h"
#include "log.h"
#include "pbjson.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGUMENTS 32
#define MAX_ARGUMENT_VALUE 256

static struct audit *_Atomic writer;

void auditlog_install(struct audit *a)
{
    atomic_store(&writer, a);
    call_set_recorder(a != NULL ? auditlog_record : NULL);
}

static const char *result_of(const struct call *c)
{
    switch (c->status) {
    case BST_OK:
        break;
    case BST_PERMISSION_DENIED:
        return "denied";
    case BST_UNAUTHENTICATED:
        return "unauthenticated";
    default:
        return "error";
    }
    /* A tool-level failure is a successful call whose result says is_error. */
    if (c->response != NULL) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(c->response->descriptor, "is_error");
        if (f != NULL && f->type == PROTOBUF_C_TYPE_BOOL &&
            *(const protobuf_c_boolean *)((const char *)c->response + f->offset))
            return "tool_error";
    }
    return "success";
}

/* The tool the caller asked for: the bound one, or, when validation refused the call, the
 * catalogue tool named by the set member of the request's `arguments` oneof (so a refused call
 * still says what was attempted). */
static const struct tool *requested_tool(const struct call *c,
                                         const ProtobufCFieldDescriptor **member)
{
    const ProtobufCMessageDescriptor *d;
    *member = NULL;
    if (c->request == NULL)
        return NULL;
    d = c->request->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (*(const uint32_t *)((const char *)c->request + f->quantifier_offset) != f->id)
            continue;
        *member = f;
        return c->tool != NULL ? c->tool : catalogue_find(f->name);
    }
    return c->tool;
}

/* The argument message of a CallTool request: the set oneof member, when it names a tool. */
static const ProtobufCMessage *tool_args(const struct call *c, const struct tool **tool)
{
    const ProtobufCFieldDescriptor *f;
    *tool = requested_tool(c, &f);
    if (*tool == NULL || f == NULL || strcmp(f->name, (*tool)->name) != 0)
        return NULL;
    return *(const ProtobufCMessage *const *)((const char *)c->request + f->offset);
}

/* A redacted summary of the tool arguments: every field the caller set, values as compact JSON
 * cut to MAX_ARGUMENT_VALUE bytes, and sensitive fields (the catalogue's per-field table) named
 * but never given. */
static void add_arguments(struct call *c, Bastion__V1__AuditRecord *r, const ProtobufCMessage *args)
{
    const ProtobufCMessageDescriptor *d = args->descriptor;
    json_t *js = bst_pbjson_encode(args, catalogue_field_lookup, NULL, BST_PBJSON_REDACT);
    Bastion__V1__AuditArgument **list = call_alloc(c, MAX_ARGUMENTS * sizeof(*list));

    if (list == NULL)
        goto out;
    for (unsigned i = 0; i < d->n_fields && r->n_arguments < MAX_ARGUMENTS; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const struct bst_pbjson_field_info *info = catalogue_field_lookup(d, f, NULL);
        json_t *v = js != NULL ? json_object_get(js, f->name) : NULL;
        Bastion__V1__AuditArgument *a;
        int sensitive = info != NULL && info->sensitive;

        if (v == NULL && !sensitive)
            continue; /* not set */
        if (sensitive) {
            /* Say that it was sent only when it was: presence is not a secret, the value is. */
            const void *member = (const char *)args + f->offset;
            if (f->label == PROTOBUF_C_LABEL_REPEATED
                    ? *(const size_t *)((const char *)args + f->quantifier_offset) == 0
                : (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE)
                    ? *(void *const *)member == NULL
                    : f->quantifier_offset != 0 &&
                          !*(const protobuf_c_boolean *)((const char *)args + f->quantifier_offset))
                continue;
        }
        if ((a = call_alloc(c, sizeof(*a))) == NULL)
            break;
        bastion__v1__audit_argument__init(a);
        a->name = (char *)f->name;
        if (sensitive) {
            a->has_redacted = 1;
            a->redacted = 1;
        } else {
            char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            if (text != NULL) {
                size_t n = strlen(text);
                a->value = call_strndup(c, text, n > MAX_ARGUMENT_VALUE ? MAX_ARGUMENT_VALUE : n);
                free(text);
            }
        }
        list[r->n_arguments++] = a;
    }
    r->arguments = list;
out:
    json_decref(js);
}

static Bastion__V1__AuditPrincipal *principal_of(struct call *c)
{
    const struct bst_principal *p = &c->principal;
    Bastion__V1__AuditPrincipal *m = call_alloc(c, sizeof(*m));
    if (m == NULL)
        return NULL;
    bastion__v1__audit_principal__init(m);
    if (c->authn_outcome == CALL_AUTHN_NOT_RUN && p->cert_identity == NULL &&
        c->peer_cert != NULL) {
        /* Refused before authentication (unknown method, bad framing): the verified client
         * certificate still says who was calling. */
        struct bst_principal tmp;
        bst_principal_init(&tmp);
        if (authn_cert_identity(c->peer_cert, &tmp, NULL) == BST_OK) {
            m->certificate_identity = call_strdup(c, tmp.cert_identity);
            m->certificate_fingerprint_sha256 = call_strdup(c, tmp.fingerprint);
        }
        bst_principal_dispose(&tmp);
        return m;
    }
    m->name = p->name;
    m->has_mechanism = 1;
    m->mechanism = (Bastion__V1__AuthMechanism)p->mechanism;
    m->groups = p->groups;
    m->n_groups = p->n_groups;
    m->tenant = p->tenant;
    m->certificate_identity = p->cert_identity;
    m->certificate_fingerprint_sha256 = p->fingerprint[0] ? (char *)p->fingerprint : NULL;
    m->credential_id = p->credential_id[0] ? (char *)p->credential_id : NULL;
    return m;
}

static void fill_common(struct call *c, Bastion__V1__AuditRecord *r, Bastion__V1__AuditEventType t)
{
    const struct call_md *ua = call_md_get(c, "user-agent");
    bastion__v1__audit_record__init(r);
    r->has_time_unix_nano = 1;
    r->time_unix_nano = c->start_wall_ns;
    r->has_event_type = 1;
    r->event_type = t;
    r->principal = principal_of(c);
    r->peer_address = c->peer;
    r->grpc_method = (char *)c->path;
    {
        const ProtobufCFieldDescriptor *member;
        const struct tool *tool = requested_tool(c, &member);
        r->tool = tool != NULL ? (char *)tool->name : NULL;
    }
    r->permission = (char *)c->permission;
    r->namespace_ = (char *)c->namespace_;
    r->request_id = c->id.hex;
    r->user_agent = ua != NULL ? (char *)ua->value : NULL;
    if (c->decision.verdict != BST_VERDICT_NONE) {
        r->has_decision = 1;
        r->decision = c->decision.verdict == BST_VERDICT_ALLOW
                          ? BASTION__V1__AUDIT_DECISION__AUDIT_DECISION_ALLOW
                          : BASTION__V1__AUDIT_DECISION__AUDIT_DECISION_DENY;
        r->decision_rule = c->decision.rule;
    }
}

static void submitted(void *arg, enum bst_status st)
{
    struct call *c = arg;
    /* Blocking mode: no durable record, no success. The stage owns the call until it resumes. */
    if (st != BST_OK) {
        call_fail(c, BST_UNAVAILABLE, "the audit log is unavailable; the call was not completed");
        snprintf(c->detail, sizeof(c->detail), "audit write failed");
    }
    call_resume(c, CALL_NEXT);
}

enum call_next auditlog_record(struct call *c)
{
    struct audit *a = atomic_load(&writer);
    Bastion__V1__AuditRecord r;
    const ProtobufCMessage *args;
    const struct tool *requested;

    if (a == NULL)
        return CALL_NEXT;
    /* Optional events first: the writer is FIFO, so they are durable when the request is. */
    if (c->authn_outcome != CALL_AUTHN_NOT_RUN) {
        int failed = c->authn_outcome == CALL_AUTHN_FAILED;
        if (audit_wants(a, BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_AUTHENTICATION, failed)) {
            fill_common(c, &r, BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_AUTHENTICATION);
            r.result = failed ? "unauthenticated" : "success";
            r.has_grpc_status = 1;
            r.grpc_status = failed ? (uint32_t)c->status : 0;
            r.detail = failed ? c->detail : NULL;
            audit_submit(a, &r, NULL, NULL);
        }
    }
    if (c->decision.verdict != BST_VERDICT_NONE) {
        int denied = c->decision.verdict == BST_VERDICT_DENY;
        if (audit_wants(a, BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_AUTHORIZATION, denied)) {
            fill_common(c, &r, BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_AUTHORIZATION);
            r.result = denied ? "denied" : "allowed";
            r.detail = c->decision.reason;
            audit_submit(a, &r, NULL, NULL);
        }
    }
    fill_common(c, &r, BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_REQUEST);
    r.result = (char *)result_of(c);
    r.has_grpc_status = 1;
    r.grpc_status = (uint32_t)c->status;
    r.grpc_message = c->message[0] ? c->message : NULL;
    r.detail = c->detail[0] ? c->detail : NULL;
    r.has_duration_us = 1;
    r.duration_us = (uint64_t)((bst_mono_ns() - c->start_mono_ns) / 1000);
    if ((args = tool_args(c, &requested)) != NULL) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(args->descriptor, "name");
        if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING)
            r.object_name = *(char *const *)((const char *)args + f->offset);
        add_arguments(c, &r, args);
    }
    /* The callback may run inside audit_submit (batch, best-effort): call_resume only posts to
     * the loop, so the chain continues after we return CALL_PENDING. */
    audit_submit(a, &r, submitted, c); /* `submitted` runs exactly once, whatever it returns */
    return CALL_PENDING;
}

void auditlog_connection(const char *peer, const char *reason, const char *detail)
{
    struct audit *a = atomic_load(&writer);
    Bastion__V1__AuditRecord r = BASTION__V1__AUDIT_RECORD__INIT;
    if (a == NULL)
        return;
    r.has_time_unix_nano = 1;
    r.time_unix_nano = bst_wall_ns();
    r.has_event_type = 1;
    r.event_type = BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_CONNECTION;
    r.peer_address = (char *)peer;
    r.result = "refused";
    r.action = (char *)reason;
    r.detail = (char *)detail;
    audit_submit(a, &r, NULL, NULL);
}
