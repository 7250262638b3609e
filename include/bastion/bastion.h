/* libbastion: the C client library of Bastion, the hardened gRPC gateway through which AI
 * agents and services operate Kubernetes.
 *
 * A channel is one mutually authenticated TLS 1.2+ connection (ALPN h2, server name checked)
 * carrying any number of concurrent unary gRPC calls, reconnected on demand. Each channel owns
 * one I/O thread running a libevent loop: calls may be started, waited for and cancelled from
 * any thread; completion callbacks run on that I/O thread and must not block. A blocking
 * convenience waits on a condition variable. protoc-c's generated service stubs work over a
 * channel through bastion_service_new().
 *
 * Memory rules, stated on every prototype: strings passed in are copied before the function
 * returns unless said otherwise; objects returned through an out-pointer belong to the caller
 * and have a matching _free or _release; a response message handed to the caller is freed with
 * bastion_response_free(). Every x_free(NULL) is a no-op.
 *
 * Status codes: values 0..16 are the gRPC status codes (what the server or the transport said);
 * values from 100 up are this library's own (BASTION_E_*), for failures that happen before or
 * outside a gRPC exchange. The enum is append-only: values never change meaning. */
#ifndef BASTION_BASTION_H
#define BASTION_BASTION_H

#include <bastion/version.h>

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define BASTION_API __attribute__((visibility("default")))
#else
#define BASTION_API
#endif

/* ---- Status ---------------------------------------------------------------------------------- */

typedef enum bastion_status {
    BASTION_OK = 0,
    BASTION_CANCELLED = 1,
    BASTION_UNKNOWN = 2,
    BASTION_INVALID_ARGUMENT = 3,
    BASTION_DEADLINE_EXCEEDED = 4,
    BASTION_NOT_FOUND = 5,
    BASTION_ALREADY_EXISTS = 6,
    BASTION_PERMISSION_DENIED = 7,
    BASTION_RESOURCE_EXHAUSTED = 8,
    BASTION_FAILED_PRECONDITION = 9,
    BASTION_ABORTED = 10,
    BASTION_OUT_OF_RANGE = 11,
    BASTION_UNIMPLEMENTED = 12,
    BASTION_INTERNAL = 13,
    BASTION_UNAVAILABLE = 14,
    BASTION_DATA_LOSS = 15,
    BASTION_UNAUTHENTICATED = 16,

    /* Library-local codes (never sent by a server). */
    BASTION_E_ARGUMENT = 100,    /* the caller passed something unusable (NULL, a bad value) */
    BASTION_E_NOMEM = 101,       /* out of memory */
    BASTION_E_CONNECT = 102,     /* name resolution or the TCP connection failed */
    BASTION_E_TLS = 103,         /* TLS handshake, certificate verification, name or ALPN */
    BASTION_E_PROTOCOL = 104,    /* the server broke HTTP/2 or gRPC rules (malformed reply) */
    BASTION_E_CREDENTIALS = 105, /* a CA, certificate or key file could not be loaded */
    BASTION_E_CLOSED = 106,      /* the channel is being freed */
} bastion_status;

/* Returns the name of a status, e.g. "UNAVAILABLE" or "E_TLS" (the enum name without
 * "BASTION_"); "UNKNOWN_STATUS" for a value this version does not know. Never NULL; static. */
BASTION_API const char *bastion_status_name(bastion_status s);

/* Returns one sentence describing a status for humans. Never NULL; static storage. */
BASTION_API const char *bastion_strerror(bastion_status s);

/* Maps a library-local code to the gRPC code a gRPC library would have reported (E_CONNECT and
 * E_TLS: UNAVAILABLE; E_PROTOCOL: INTERNAL; E_ARGUMENT and E_CREDENTIALS: INVALID_ARGUMENT;
 * E_NOMEM: RESOURCE_EXHAUSTED; E_CLOSED: CANCELLED). gRPC codes are returned unchanged. */
BASTION_API bastion_status bastion_status_grpc(bastion_status s);

/* Returns the library's version string, e.g. "0.1.0" (static storage). */
BASTION_API const char *bastion_version(void);

/* Returns the library's BASTION_VERSION_NUM (for comparing against the headers'). */
BASTION_API unsigned int bastion_version_num(void);

/* ---- Channel options --------------------------------------------------------------------------
 * An opaque, typed set of settings for bastion_channel_new(). Setters copy their arguments and
 * return BASTION_OK, BASTION_E_ARGUMENT for a NULL object or an out-of-range value, or
 * BASTION_E_NOMEM. Options are not thread-safe; a channel copies what it needs, so they may be
 * freed as soon as bastion_channel_new() returns. */

typedef struct bastion_options bastion_options;

/* Creates options with the defaults: target "localhost:8443", the system CA store, no client
 * certificate, no default deadline, connect timeout 10 s, keepalive PING every 30 s answered
 * within 10 s, max message 4 MiB. *out is owned by the caller (bastion_options_free). */
BASTION_API bastion_status bastion_options_new(bastion_options **out);

/* Frees options, wiping any token or API key they hold. NULL is a no-op. */
BASTION_API void bastion_options_free(bastion_options *opts);

/* The server as "host:port", "[v6addr]:port" or "host" (port 8443). Hosts are DNS names or IP
 * literals; E_ARGUMENT for anything else. */
BASTION_API bastion_status bastion_options_set_target(bastion_options *opts, const char *target);

/* PEM file of the CA certificate(s) that must have issued the server certificate. Without it the
 * system's default CA store is used. The file is read by bastion_channel_new(). */
BASTION_API bastion_status bastion_options_set_ca_file(bastion_options *opts, const char *path);

/* PEM client certificate (chain) and private key for mutual TLS. The key file must be a regular
 * file owned by the caller (or root) with no group or other permission bits, like ssh keys; it is
 * read by bastion_channel_new() and wiped from memory after use. Pass NULL, NULL to clear. */
BASTION_API bastion_status bastion_options_set_client_cert(bastion_options *opts,
                                                           const char *cert_file,
                                                           const char *key_file);

/* The name the server certificate must carry, instead of the target's host: a DNS name (checked
 * against the certificate's DNS SANs and sent as SNI) or an IP literal (checked against its IP
 * SANs). NULL restores the default. */
BASTION_API bastion_status bastion_options_set_server_name(bastion_options *opts, const char *name);

/* Deadline applied to calls whose call options set none, in milliseconds; 0 = no deadline.
 * Range 0..(100 days). */
BASTION_API bastion_status bastion_options_set_default_deadline_ms(bastion_options *opts,
                                                                   int64_t ms);

/* Time allowed for resolving, connecting, the TLS handshake and the server's HTTP/2 SETTINGS,
 * in milliseconds (1..10 min). Calls waiting for that connection fail when it passes. */
BASTION_API bastion_status bastion_options_set_connect_timeout_ms(bastion_options *opts,
                                                                  int64_t ms);

/* HTTP/2 PING every interval_ms while connected (0 = never; else 1 s..1 day); a PING not answered
 * within timeout_ms (1 ms..10 min) closes the connection and fails its calls with UNAVAILABLE. */
BASTION_API bastion_status bastion_options_set_keepalive(bastion_options *opts, int64_t interval_ms,
                                                         int64_t timeout_ms);

/* Largest request or response message, in bytes (1 KiB..64 MiB). A larger response fails the
 * call with RESOURCE_EXHAUSTED, detected from its length prefix before any allocation. */
BASTION_API bastion_status bastion_options_set_max_message_bytes(bastion_options *opts,
                                                                 size_t bytes);

/* Channel credentials sent with every call whose call options set none: a bearer token
 * ("authorization: Bearer <token>") or an API key ("x-api-key: <key>"). Printable ASCII only,
 * at most 8 KiB. Sent as never-indexed HPACK fields. NULL clears. */
BASTION_API bastion_status bastion_options_set_bearer_token(bastion_options *opts,
                                                            const char *token);
BASTION_API bastion_status bastion_options_set_api_key(bastion_options *opts, const char *key);

/* ---- Channels -------------------------------------------------------------------------------- */

typedef struct bastion_channel bastion_channel;

/* Creates a channel: loads the CA, certificate and key files now (so file problems show at once)
 * and starts the channel's I/O thread. It does not connect: the first call does, and every call
 * after a broken connection reconnects. On failure errbuf (if not NULL) receives a sentence.
 * *out is owned by the caller (bastion_channel_free). Returns BASTION_OK, E_ARGUMENT,
 * E_CREDENTIALS (errbuf names the file and the reason) or E_NOMEM. */
BASTION_API bastion_status bastion_channel_new(bastion_channel **out, const bastion_options *opts,
                                               char *errbuf, size_t errlen);

/* Closes the channel: every unfinished call completes with BASTION_E_CLOSED (callbacks run, on
 * the I/O thread), the connection is closed and the I/O thread joined. Call handles the caller
 * still holds stay valid until released. May be called from a completion callback (the thread
 * then finishes on its own). NULL is a no-op. */
BASTION_API void bastion_channel_free(bastion_channel *ch);

/* ---- Per-call options -------------------------------------------------------------------------
 * Opaque and typed like channel options; copied by bastion_call_start(), so one object may serve
 * many calls and be freed any time after the start returns. Not thread-safe. */

typedef struct bastion_call_options bastion_call_options;

/* Creates empty call options (the channel's defaults apply). Caller owns *out. */
BASTION_API bastion_status bastion_call_options_new(bastion_call_options **out);

/* Frees call options, wiping credentials. NULL is a no-op. */
BASTION_API void bastion_call_options_free(bastion_call_options *co);

/* Deadline relative to the call's start, in milliseconds (1..100 days); 0 = the channel default.
 * The deadline is sent as grpc-timeout and enforced locally: DEADLINE_EXCEEDED. */
BASTION_API bastion_status bastion_call_options_set_deadline_ms(bastion_call_options *co,
                                                                int64_t ms);

/* Per-call credentials, replacing the channel's: bearer token or API key (see
 * bastion_options_set_bearer_token). NULL clears. */
BASTION_API bastion_status bastion_call_options_set_bearer_token(bastion_call_options *co,
                                                                 const char *token);
BASTION_API bastion_status bastion_call_options_set_api_key(bastion_call_options *co,
                                                            const char *key);

/* Adds one metadata entry (an HTTP/2 header). name: lower-case [a-z0-9._-], not "grpc-*", not a
 * reserved HTTP header, not "*-bin" (binary metadata is not supported); value: printable ASCII.
 * At most 64 entries and 8 KiB in total. E_ARGUMENT otherwise. */
BASTION_API bastion_status bastion_call_options_add_metadata(bastion_call_options *co,
                                                             const char *name, const char *value);

/* ---- Calls ----------------------------------------------------------------------------------- */

typedef struct bastion_call bastion_call;

/* Called exactly once per started call, on the channel's I/O thread, when the call completes.
 * status: BASTION_OK, a gRPC status from the server or the transport, or a BASTION_E_* code.
 * message: "" on success, else a sanitised sentence (the server's grpc-message, or the
 * library's detail); valid until the callback returns. response: NULL unless status is OK; the
 * callback owns it and frees it with bastion_response_free() (it may keep or pass it on).
 * call: the call, readable with bastion_call_header() during the callback.
 * The callback must not block (every other call of the channel waits for it) and must not call
 * bastion_call_blocking() or bastion_call_wait() (they refuse with E_ARGUMENT). */
typedef void (*bastion_done_fn)(bastion_call *call, bastion_status status, const char *message,
                                ProtobufCMessage *response, void *user);

/* Starts the unary call `method` (e.g. "Ping") of `service` (protoc-c's service descriptor, e.g.
 * &bastion__v1__mcp__descriptor) with `request`, which must be of the method's input type. The
 * request is serialised before this returns: the caller keeps ownership and may free it at once.
 * opts may be NULL. done may be NULL when out is not: wait with bastion_call_wait() and take the
 * response with bastion_call_take_response(). If out is not NULL, *out is a reference the caller
 * owns and must drop with bastion_call_release(). Thread-safe.
 * Returns BASTION_OK (done will be called exactly once), or, with nothing started and done never
 * called: E_ARGUMENT (no such method, wrong request type, NULL arguments), RESOURCE_EXHAUSTED
 * (request larger than the max message size), E_NOMEM, E_CLOSED. */
BASTION_API bastion_status bastion_call_start(bastion_channel *ch,
                                              const ProtobufCServiceDescriptor *service,
                                              const char *method, const ProtobufCMessage *request,
                                              const bastion_call_options *opts,
                                              bastion_done_fn done, void *user, bastion_call **out);

/* Asks for the call to end with CANCELLED (the stream is reset, the server stops working on it).
 * A call that already completed is not affected. Thread-safe; returns without waiting. */
BASTION_API void bastion_call_cancel(bastion_call *call);

/* Blocks until the call has completed (and its callback, if any, has returned); returns its
 * status. E_ARGUMENT if called on the channel's I/O thread (it would wait forever). */
BASTION_API bastion_status bastion_call_wait(bastion_call *call);

/* After completion: the status (BASTION_E_ARGUMENT before), the message ("" on success; valid
 * while the call is held), and the response. take_response transfers the response to the caller
 * (free with bastion_response_free); it returns NULL if the status is not OK, the call has not
 * completed, the callback received the response, or it was already taken. */
BASTION_API bastion_status bastion_call_status(const bastion_call *call);
BASTION_API const char *bastion_call_message(const bastion_call *call);
BASTION_API ProtobufCMessage *bastion_call_take_response(bastion_call *call);

/* After completion (or inside the callback): the value of a response header or trailer, e.g.
 * "x-request-id", sanitised to printable text; NULL if absent or not completed. The string
 * belongs to the call. Names are matched exactly (lower case). */
BASTION_API const char *bastion_call_header(const bastion_call *call, const char *name);

/* Drops the caller's reference from bastion_call_start(). It does not cancel the call. NULL is
 * a no-op. */
BASTION_API void bastion_call_release(bastion_call *call);

/* The blocking convenience: starts the call, waits, and returns its status. On BASTION_OK
 * *response is the caller's (bastion_response_free); otherwise *response is NULL and errbuf (if
 * not NULL) holds the message. request_id (if not NULL, at least 33 bytes) receives the
 * server's x-request-id or "". Same arguments and codes as bastion_call_start; E_ARGUMENT on
 * the I/O thread. Thread-safe. */
BASTION_API bastion_status bastion_call_blocking(
    bastion_channel *ch, const ProtobufCServiceDescriptor *service, const char *method,
    const ProtobufCMessage *request, const bastion_call_options *opts, ProtobufCMessage **response,
    char *errbuf, size_t errlen, char *request_id);

/* Frees a response message handed over by the library. NULL is a no-op. */
BASTION_API void bastion_response_free(ProtobufCMessage *response);

/* ---- protoc-c service adapter ------------------------------------------------------------------
 * A ProtobufCService whose invoke() runs calls over a channel, so generated stubs work:
 *     bastion__v1__mcp__ping(svc, &req, on_pong, &state);
 * The closure receives the response, or NULL on any failure: protoc-c's closures carry no status,
 * so use bastion_call_start() when the status or message matters. The response passed to the
 * closure is borrowed: it is freed when the closure returns.
 * With BASTION_SERVICE_BLOCKING, invoke() waits for the call and runs the closure on the calling
 * thread before returning; without it, invoke() returns at once and the closure runs on the
 * channel's I/O thread (and must not block). */

#define BASTION_SERVICE_BLOCKING 0x1

/* Creates the adapter for `service` over ch (which must outlive it), with call options applied
 * to every call (copied; may be NULL). *out is the caller's; free it with
 * bastion_service_free() or protobuf_c_service_destroy(). Returns BASTION_OK, E_ARGUMENT or
 * E_NOMEM. */
BASTION_API bastion_status bastion_service_new(ProtobufCService **out, bastion_channel *ch,
                                               const ProtobufCServiceDescriptor *service,
                                               const bastion_call_options *opts, int flags);

/* Frees an adapter made by bastion_service_new(). Async calls already started complete
 * normally. NULL is a no-op. */
BASTION_API void bastion_service_free(ProtobufCService *svc);

#ifdef __cplusplus
}
#endif

#endif
