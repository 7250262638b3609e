/* The call: one gRPC request from arrival to its single response, and the fixed chain of
 * stages it passes through.
 *
 *   identity ─▶ authn ─▶ validate ─▶ [authz] ─▶ handler ─▶ record (audit) ─▶ respond ─▶ observe
 *
 * Each stage reads and writes named fields of struct call and returns one of:
 *   CALL_NEXT     go on to the next stage;
 *   CALL_DONE     stop here: the stage set c->status (an error, or OK with a response);
 *   CALL_PENDING  the stage continues elsewhere (another thread: scrypt, a blocking audit
 *                 write, a REST call) and will call call_resume() exactly once, from any thread.
 * call_resume() hands the call back to its worker's loop through the host's post() function,
 * and the chain continues there. A call is refcounted: the stream that carries it may be reset
 * or its connection closed while a stage runs elsewhere; the call then completes normally,
 * its response is dropped, and finish still runs exactly once.
 *
 * Reserved slots, filled by later work: `limits` (per-principal rate limits) between authn and
 * validate; `authz` (RBAC and tenant isolation) after validate. */
#ifndef BASTION_SERVER_CALL_H
#define BASTION_SERVER_CALL_H

#include "decision.h"
#include "pbcheck.h"
#include "principal.h"
#include "reqid.h"
#include "status.h"

#include <openssl/x509.h>
#include <protobuf-c/protobuf-c.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct call;
struct tool;

enum call_next { CALL_NEXT = 0, CALL_DONE, CALL_PENDING };

struct call_stage {
    const char *name;
    enum call_next (*run)(struct call *c);
};

/* A request metadata entry (a non-pseudo HTTP/2 header), copied into the call's arena. */
struct call_md {
    const char *name; /* lower case, as HTTP/2 requires */
    const char *value;
    size_t value_len;
};

/* One RPC the server serves. The table lives in server/services.c. A call whose :path names
 * no method has method == NULL and is finished with UNIMPLEMENTED before any stage runs. */
struct call_method {
    const char *path; /* exact :path, e.g. "/bastion.v1.Mcp/CallTool"; never normalised */
    const ProtobufCMessageDescriptor *input;
    const ProtobufCMessageDescriptor *output;
    int requires_principal; /* 0 only for grpc.health.v1.Health/Check */
    /* Optional: validates the request beyond protobuf rules and binds the tool, namespace and
     * permission the authz stage will check. Returns BST_OK or an error with c->message set. */
    enum bst_status (*bind)(struct call *c);
    /* The handler stage: sets c->response (arena memory) and returns CALL_NEXT, or sets an
     * error status and returns CALL_DONE, or returns CALL_PENDING and resumes later. */
    enum call_next (*handle)(struct call *c);
    /* 1 for methods a caller must reach without a token even when tokens are required
     * (Auth.IssueToken mints them; Health is for load balancers). */
    int token_optional;
};

/* What carries the call: the HTTP/2 stream, or a test double. Both functions are required. */
struct call_host_ops {
    /* Thread-safe: schedule call_continue(c) on the call's loop. Takes a reference. */
    void (*post)(struct call *c);
    /* On the loop thread, once: send status and message to the peer, with c->response when
     * status is BST_OK (if the stream is still there). The host drops its own reference when
     * the stream goes. */
    void (*finish)(struct call *c, enum bst_status status, const char *message);
};

/* Observers of finished calls (the access log now; audit and metrics later). */
typedef void (*call_observer_fn)(const struct call *c);

struct call_arena_block;

struct call {
    atomic_int refs;
    struct bst_reqid id;
    const struct call_method *method;
    char peer[64]; /* "ip:port" of the TCP peer */
    int64_t start_mono_ns;
    int64_t start_wall_ns;
    int64_t deadline_mono_ns; /* 0 = none */

    struct call_md *md; /* request metadata, n_md entries */
    size_t n_md;

    X509 *peer_cert; /* verified client certificate (a reference), or NULL */
    struct bst_principal principal;

    /* Whether authentication ran and how it ended (audit's authentication events). */
    enum { CALL_AUTHN_NOT_RUN = 0, CALL_AUTHN_OK, CALL_AUTHN_FAILED } authn_outcome;

    /* Bound by method->bind: what authz checks and audit records. */
    const struct tool *tool;
    const char *namespace_; /* arena string or NULL (cluster scope) */
    const char *permission; /* from the tool table, never from the request */
    struct bst_decision decision;

    /* Messages. The request is unpacked through alloc; the response lives in the arena. */
    struct bst_pballoc alloc;
    ProtobufCMessage *request;
    ProtobufCMessage *response;

    enum bst_status status;
    char message[256]; /* for the caller: safe, no internals; "" for OK */
    char detail[256];  /* for logs and audit only, never sent: e.g. why authentication failed */

    /* Chain state. */
    const struct call_stage *stages;
    size_t n_stages;
    size_t next_stage;
    atomic_bool cancelled; /* deadline passed or stream reset: stop work, drop the response */
    int finished;

    /* Host link: owned by the host's thread. */
    const struct call_host_ops *host_ops;
    void *host;              /* the stream, or NULL once it is gone */
    void *loop;              /* the worker whose loop runs the call (outlives the stream) */
    const char *path;        /* the request's :path (arena), also for unknown methods */
    struct call *next_ready; /* the host's queue of calls to continue */

    /* Arena for the response and bound strings; capped. */
    struct call_arena_block *arena;
    size_t arena_used;
};

/* Creates a call for method with a fresh request id, one reference owned by the caller, and
 * the default stage chain. Returns BST_OK, BST_INTERNAL (RNG failure) or
 * BST_RESOURCE_EXHAUSTED. */
enum bst_status call_new(struct call **out, const struct call_method *method,
                         const struct call_host_ops *host_ops, void *host, size_t alloc_cap);

void call_ref(struct call *c);
/* Drops a reference; the last one frees the call. NULL is a no-op. */
void call_unref(struct call *c);

/* Unpacks and validates the request message into c->request. On failure sets c->status and
 * c->message and returns the status. */
enum bst_status call_set_request(struct call *c, const unsigned char *data, size_t len);

/* Runs stages from c->next_stage until one is pending or the chain ends, then finishes. On
 * the call's loop thread only. */
void call_continue(struct call *c);

/* Finishes a pending stage from any thread: r is what the stage would have returned. While a
 * stage is pending the chain holds a reference to the call, dropped after it continues, so
 * stages never manage references themselves. */
void call_resume(struct call *c, enum call_next r);

/* Ends the call with an error now (deadline, reset): marks it cancelled; if no stage is
 * running elsewhere, finishes it. On the loop thread. */
void call_abort(struct call *c, enum bst_status status, const char *message);

/* Sets c->status and a printf-style c->message; returns CALL_DONE for use in stages. */
enum call_next call_fail(struct call *c, enum bst_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Arena allocation, freed with the call. Returns NULL past the cap (the caller reports
 * RESOURCE_EXHAUSTED). Memory is zeroed. */
void *call_alloc(struct call *c, size_t n);
char *call_strdup(struct call *c, const char *s);
char *call_strndup(struct call *c, const char *s, size_t n);

/* Returns the first metadata value for name (lower case), or NULL. */
const struct call_md *call_md_get(const struct call *c, const char *name);

/* Replaces the default stage chain (tests). */
void call_set_stages(struct call *c, const struct call_stage *stages, size_t n);

/* Sets the recorder (audit): run once per call, on the loop thread, when the outcome is known
 * and before the response is sent, including calls that failed authentication, were denied, or
 * were aborted. It may change c->status (fail closed when the record cannot be made durable).
 * It returns CALL_NEXT, or CALL_PENDING and calls call_resume() once from any thread when the
 * record is durable; the response waits for it. A call aborted while a stage was pending has
 * been answered already; its record is still made once, when the stage ends. */
void call_set_recorder(enum call_next (*fn)(struct call *c));

/* Registers an observer run after the response, in order, on the loop thread. At most 8. */
void call_add_observer(call_observer_fn fn);

/* The default chain. */
extern const struct call_stage call_default_stages[];
extern const size_t call_default_n_stages;

/* Arena cap per call. */
#define CALL_ARENA_CAP (16u * 1024 * 1024)

#endif
