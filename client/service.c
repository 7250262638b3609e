/* The ProtobufCService adapter: protoc-c's generated stubs (bastion__v1__mcp__ping(svc, ...))
 * invoke calls over a channel. protoc-c closures carry no status, so they receive NULL on any
 * failure; bastion_call_start() is the API for callers that need the status and message. */
#include "internal.h"

#include <stdlib.h>

struct bcl_service {
    ProtobufCService base; /* first: the stubs see only this */
    bastion_channel *ch;
    bastion_call_options *opts; /* NULL: channel defaults */
    int flags;
};

struct pending {
    ProtobufCClosure closure; /* NULL: nobody wants the outcome */
    void *data;
};

static void async_done(bastion_call *call, bastion_status status, const char *message,
                       ProtobufCMessage *response, void *user)
{
    struct pending *p = user;
    (void)call;
    (void)status;
    (void)message;
    if (p->closure != NULL)
        p->closure(response, p->data); /* borrowed by the closure, as in protobuf-c's RPC */
    bastion_response_free(response);
    free(p);
}

static void invoke_blocking(struct bcl_service *s, const char *method,
                            const ProtobufCMessage *input, ProtobufCClosure closure,
                            void *closure_data)
{
    bastion_call *call = NULL;
    ProtobufCMessage *r = NULL;

    if (bastion_call_start(s->ch, s->base.descriptor, method, input, s->opts, NULL, NULL, &call) ==
            BASTION_OK &&
        bastion_call_wait(call) == BASTION_OK)
        r = bastion_call_take_response(call);
    bastion_call_release(call);
    if (closure != NULL)
        closure(r, closure_data);
    bastion_response_free(r);
}

static void svc_invoke(ProtobufCService *service, unsigned method_index,
                       const ProtobufCMessage *input, ProtobufCClosure closure, void *closure_data)
{
    struct bcl_service *s = (struct bcl_service *)service;
    const char *method;
    struct pending *p;

    if (method_index >= service->descriptor->n_methods) {
        if (closure != NULL)
            closure(NULL, closure_data);
        return;
    }
    method = service->descriptor->methods[method_index].name;
    if (s->flags & BASTION_SERVICE_BLOCKING) {
        invoke_blocking(s, method, input, closure, closure_data);
        return;
    }
    p = malloc(sizeof(*p));
    if (p == NULL) {
        if (closure != NULL)
            closure(NULL, closure_data);
        return;
    }
    p->closure = closure;
    p->data = closure_data;
    if (bastion_call_start(s->ch, service->descriptor, method, input, s->opts, async_done, p,
                           NULL) != BASTION_OK) {
        free(p);
        if (closure != NULL)
            closure(NULL, closure_data); /* nothing started: reported at once, on this thread */
    }
}

static void svc_destroy(ProtobufCService *service)
{
    struct bcl_service *s = (struct bcl_service *)service;
    bastion_call_options_free(s->opts);
    free(s);
}

bastion_status bastion_service_new(ProtobufCService **out, bastion_channel *ch,
                                   const ProtobufCServiceDescriptor *service,
                                   const bastion_call_options *opts, int flags)
{
    struct bcl_service *s;

    if (out == NULL)
        return BASTION_E_ARGUMENT;
    *out = NULL;
    if (ch == NULL || service == NULL || service->magic != PROTOBUF_C__SERVICE_DESCRIPTOR_MAGIC ||
        (flags & ~BASTION_SERVICE_BLOCKING) != 0)
        return BASTION_E_ARGUMENT;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return BASTION_E_NOMEM;
    if (opts != NULL && bcl_call_options_copy(&s->opts, opts) != BASTION_OK) {
        free(s);
        return BASTION_E_NOMEM;
    }
    s->base.descriptor = service;
    s->base.invoke = svc_invoke;
    s->base.destroy = svc_destroy;
    s->ch = ch;
    s->flags = flags;
    *out = &s->base;
    return BASTION_OK;
}

void bastion_service_free(ProtobufCService *svc)
{
    if (svc != NULL)
        svc->destroy(svc);
}
