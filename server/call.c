/* The call object and the stage chain. */
#include "call.h"
#include "clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct call_arena_block {
    struct call_arena_block *next;
    size_t size, used;
    max_align_t data[];
};

#define MAX_OBSERVERS 8
static call_observer_fn observers[MAX_OBSERVERS];
static size_t n_observers;
static enum call_next (*recorder)(struct call *c);

/* Per-call state that must not be in the public struct: whether a stage is pending and what it
 * returned, and whether the response went out already. Kept in the call via these flags. */
#define PENDING_NONE 0
#define PENDING_RUNNING 1   /* a stage of the chain continues elsewhere */
#define PENDING_RECORDING 2 /* the recorder (audit) makes the outcome durable first */

struct call_priv {
    int pending;
    enum call_next resume_result;
    int responded;
    int recorded;
    /* Set by call_abort while a stage runs elsewhere (which owns c->status until it resumes). */
    int aborted;
    enum bst_status abort_status;
    char abort_message[sizeof(((struct call *)0)->message)];
};

/* The private part follows the public struct in one allocation. */
struct call_full {
    struct call pub;
    struct call_priv priv;
};

static struct call_priv *priv(struct call *c)
{
    return &((struct call_full *)c)->priv;
}

/* ---- lifetime ------------------------------------------------------------------------------ */

enum bst_status call_new(struct call **out, const struct call_method *method,
                         const struct call_host_ops *host_ops, void *host, size_t alloc_cap)
{
    struct call_full *f = calloc(1, sizeof(*f));
    struct call *c;

    *out = NULL;
    if (f == NULL)
        return BST_RESOURCE_EXHAUSTED;
    c = &f->pub;
    if (bst_reqid_new(&c->id) != BST_OK) {
        free(f);
        return BST_INTERNAL;
    }
    atomic_init(&c->refs, 1);
    atomic_init(&c->cancelled, 0);
    c->method = method;
    c->host_ops = host_ops;
    c->host = host;
    c->start_mono_ns = bst_mono_ns();
    c->start_wall_ns = bst_wall_ns();
    c->stages = call_default_stages;
    c->n_stages = call_default_n_stages;
    bst_principal_init(&c->principal);
    bst_pballoc_init(&c->alloc, alloc_cap);
    *out = c;
    return BST_OK;
}

void call_ref(struct call *c)
{
    atomic_fetch_add(&c->refs, 1);
}

void call_unref(struct call *c)
{
    if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    bst_pb_free(c->request, &c->alloc);
    if (c->peer_cert != NULL)
        X509_free(c->peer_cert);
    bst_principal_dispose(&c->principal);
    while (c->arena != NULL) {
        struct call_arena_block *b = c->arena;
        c->arena = b->next;
        free(b);
    }
    free((struct call_full *)c);
}

void call_set_stages(struct call *c, const struct call_stage *stages, size_t n)
{
    c->stages = stages;
    c->n_stages = n;
}

void call_set_recorder(enum call_next (*fn)(struct call *c))
{
    recorder = fn;
}

void call_add_observer(call_observer_fn fn)
{
    if (n_observers < MAX_OBSERVERS)
        observers[n_observers++] = fn;
}

/* ---- arena --------------------------------------------------------------------------------- */

void *call_alloc(struct call *c, size_t n)
{
    struct call_arena_block *b = c->arena;
    size_t need = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);

    if (need < n)
        return NULL;
    if (b == NULL || b->size - b->used < need) {
        size_t size = need > 4096 ? need : 4096;
        if (size > CALL_ARENA_CAP || c->arena_used + size > CALL_ARENA_CAP)
            return NULL;
        b = malloc(sizeof(*b) + size);
        if (b == NULL)
            return NULL;
        b->size = size;
        b->used = 0;
        b->next = c->arena;
        c->arena = b;
        c->arena_used += size;
    }
    {
        void *p = (char *)b->data + b->used;
        b->used += need;
        memset(p, 0, n);
        return p;
    }
}

char *call_strndup(struct call *c, const char *s, size_t n)
{
    char *d = call_alloc(c, n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

char *call_strdup(struct call *c, const char *s)
{
    return call_strndup(c, s, strlen(s));
}

const struct call_md *call_md_get(const struct call *c, const char *name)
{
    for (size_t i = 0; i < c->n_md; i++) {
        if (strcmp(c->md[i].name, name) == 0)
            return &c->md[i];
    }
    return NULL;
}

/* ---- chain --------------------------------------------------------------------------------- */

enum call_next call_fail(struct call *c, enum bst_status status, const char *fmt, ...)
{
    va_list ap;
    c->status = status;
    va_start(ap, fmt);
    vsnprintf(c->message, sizeof(c->message), fmt, ap);
    va_end(ap);
    return CALL_DONE;
}

enum bst_status call_set_request(struct call *c, const unsigned char *data, size_t len)
{
    struct bst_err err = {BST_OK, ""};
    enum bst_status rv = bst_pb_unpack(c->method->input, data, len, &c->alloc, &c->request, &err);
    if (rv != BST_OK)
        call_fail(c, rv, "%s", err.msg);
    return rv;
}

/* The outcome is final and recorded: answer the peer (unless that happened already) and tell the
 * observers. Runs once. */
static void complete(struct call *c)
{
    struct call_priv *p = priv(c);
    c->finished = 1;
    if (!p->responded) {
        p->responded = 1;
        c->host_ops->finish(c, c->status, c->message);
    }
    for (size_t i = 0; i < n_observers; i++)
        observers[i](c);
}

static void finish(struct call *c)
{
    struct call_priv *p = priv(c);
    if (c->finished || p->pending == PENDING_RECORDING)
        return;
    if (p->aborted) {
        /* What the peer was told is the call's outcome. */
        c->status = p->abort_status;
        memcpy(c->message, p->abort_message, sizeof(c->message));
    }
    if (recorder != NULL && !p->recorded) {
        p->recorded = 1;
        if (recorder(c) == CALL_PENDING) {
            p->pending = PENDING_RECORDING;
            call_ref(c); /* dropped by the host after the resumed call continues */
            return;
        }
    }
    complete(c);
}

void call_continue(struct call *c)
{
    struct call_priv *p = priv(c);

    if (c->finished)
        return;
    if (p->pending == PENDING_RECORDING) {
        p->pending = PENDING_NONE;
        complete(c);
        return;
    }
    if (p->pending == PENDING_RUNNING) {
        p->pending = PENDING_NONE;
        if (p->resume_result == CALL_DONE || c->status != BST_OK || atomic_load(&c->cancelled)) {
            finish(c);
            return;
        }
        c->next_stage++;
    }
    while (c->next_stage < c->n_stages) {
        enum call_next r;
        if (atomic_load(&c->cancelled))
            break;
        r = c->stages[c->next_stage].run(c);
        if (r == CALL_PENDING) {
            p->pending = PENDING_RUNNING;
            call_ref(c); /* dropped by the host after the resumed call continues */
            return;
        }
        if (r == CALL_DONE || c->status != BST_OK)
            break;
        c->next_stage++;
    }
    finish(c);
}

void call_resume(struct call *c, enum call_next r)
{
    priv(c)->resume_result = r;
    c->host_ops->post(c);
}

void call_abort(struct call *c, enum bst_status status, const char *message)
{
    struct call_priv *p = priv(c);
    if (c->finished || p->pending == PENDING_RECORDING)
        return; /* the outcome is being recorded; the answer follows it */
    atomic_store(&c->cancelled, 1);
    p->aborted = 1;
    p->abort_status = status;
    snprintf(p->abort_message, sizeof(p->abort_message), "%s", message);
    if (p->pending == PENDING_RUNNING) {
        /* A stage is still running elsewhere and owns the call's fields: answer the peer now;
         * observers run when the stage resumes, so the call is still recorded exactly once,
         * when it truly ends. */
        if (!p->responded) {
            p->responded = 1;
            c->host_ops->finish(c, status, p->abort_message);
        }
        return;
    }
    finish(c);
}
