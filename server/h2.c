/* HTTP/2 connections over TLS and the gRPC protocol on their streams.
 *
 * One struct conn per accepted connection (a bufferevent over OpenSSL plus an nghttp2 server
 * session), one struct stream per request stream. nghttp2 1.52 leaves several defences to the
 * application, all of which live here:
 *   - decoded header bytes and fields are counted in the header callback and the stream reset
 *     past the limit (nghttp2 does not enforce its own SETTINGS_MAX_HEADER_LIST_SIZE);
 *   - streams beyond max_concurrent_streams are refused even before our SETTINGS are acked;
 *   - a fatal error from nghttp2_session_mem_recv (e.g. a CONTINUATION flood) closes the
 *     connection at once;
 *   - a per-connection budget of "glitches" (frames without payload, excess WINDOW_UPDATE,
 *     server-side stream resets) ends the connection with GOAWAY ENHANCE_YOUR_CALM;
 *   - request bodies count against per-connection and server-wide byte budgets;
 *   - output is produced only while the socket buffer is below a cap, a write timeout cuts a
 *     peer that stops reading, and a stream whose response cannot be sent is reset;
 *   - handshake, header and idle timeouts, and a connection cap.
 */
#include "auditlog.h"
#include "grpc.h"
#include "log.h"
#include "server.h"
#include "services.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"

#define TICK_MS 200
#define MAX_MD_ENTRIES 128

struct md_entry {
    char *name;
    char *value;
    size_t value_len;
};

struct stream {
    struct conn *conn;
    int32_t id;
    struct stream *prev, *next;
    int64_t opened_ns;
    size_t hdr_bytes, hdr_fields;
    int headers_done;
    int remote_closed;

    /* Captured request headers. */
    char *path;
    size_t path_len;
    int is_post;
    int ct_seen, ct_grpc, ct_ok;
    int64_t timeout_ns; /* 0 = none */
    int bad_timeout;
    int bad_encoding;
    struct md_entry md[MAX_MD_ENTRIES];
    size_t n_md;

    struct grpc_reader reader;
    size_t reserved; /* bytes counted against the connection and server budgets */
    int body_failed; /* the request was answered early; further DATA is discarded */

    struct call *call; /* one reference, dropped when the stream closes */
    struct event *deadline_ev;

    /* Response. */
    int responded;
    int rst_after_response; /* a complete response went out before the request ended */
    int64_t responded_ns;
    unsigned char *out;
    size_t out_len, out_off;
    int trailers_sent;
    char grpc_status[8];
    char grpc_message[3 * GRPC_MAX_MESSAGE_MESSAGE + 1];
};

struct conn {
    struct worker *w;
    struct conn *prev, *next;
    struct bufferevent *bev;
    SSL *ssl;
    nghttp2_session *session;
    char peer[64];
    X509 *peer_cert;
    struct event *tick_ev;
    struct event *flush_ev; /* deferred output: never produce output inside nghttp2 callbacks */
    int64_t created_ns, last_active_ns;
    int handshake_done;
    int closing; /* GOAWAY sent: close once output is flushed and streams are done */
    struct stream *streams;
    size_t n_streams;
    size_t buffered;
    /* Glitch budget: a token bucket. */
    double glitch_tokens;
    int64_t glitch_last_ns;
    uint64_t data_frames_sent, window_updates_recv;
};

static void conn_free(struct conn *c);
static void conn_flush(struct conn *c);
static void stream_respond(struct stream *s, enum bst_status status, const char *message,
                           const ProtobufCMessage *response, const char *request_id);

static const struct config *cfg_of(const struct conn *c)
{
    return &c->w->srv->cfg;
}

/* ---- budgets ------------------------------------------------------------------------------- */

/* Spends one glitch; returns -1 (and sends GOAWAY ENHANCE_YOUR_CALM) when the budget is gone. */
static int glitch(struct conn *c, const char *what)
{
    const struct config *cfg = cfg_of(c);
    int64_t now = bst_mono_ns();
    double refill = (double)(now - c->glitch_last_ns) / 1e9 * (double)cfg->glitch_rate;

    c->glitch_last_ns = now;
    c->glitch_tokens += refill;
    if (c->glitch_tokens > (double)cfg->glitch_burst)
        c->glitch_tokens = (double)cfg->glitch_burst;
    c->glitch_tokens -= 1.0;
    if (c->glitch_tokens >= 0 || c->closing)
        return 0;
    bst_log(BST_LOG_WARN, "h2_flood", "peer", c->peer, "frames", what, "action",
            "GOAWAY ENHANCE_YOUR_CALM", NULL);
    nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(c->session),
                          NGHTTP2_ENHANCE_YOUR_CALM, NULL, 0);
    c->closing = 1;
    return -1;
}

static void release_body(struct stream *s)
{
    if (s->reserved > 0) {
        s->conn->buffered -= s->reserved;
        atomic_fetch_sub(&s->conn->w->srv->buffered_bytes, (long long)s->reserved);
        s->reserved = 0;
    }
    grpc_reader_dispose(&s->reader);
}

/* ---- streams ------------------------------------------------------------------------------- */

static struct stream *stream_find(struct conn *c, int32_t id)
{
    return nghttp2_session_get_stream_user_data(c->session, id);
}

static void stream_free(struct stream *s)
{
    struct conn *c = s->conn;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        c->streams = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    c->n_streams--;
    if (s->deadline_ev != NULL)
        event_free(s->deadline_ev);
    release_body(s);
    for (size_t i = 0; i < s->n_md; i++) {
        free(s->md[i].name);
        free(s->md[i].value);
    }
    free(s->path);
    free(s->out);
    if (s->call != NULL) {
        struct call *call = s->call;
        s->call = NULL;
        call->host = NULL;
        if (!call->finished)
            call_abort(call, BST_CANCELLED, "the stream was closed before the call completed");
        call_unref(call);
    }
    free(s);
}

static void reset_stream(struct stream *s, uint32_t code)
{
    nghttp2_submit_rst_stream(s->conn->session, NGHTTP2_FLAG_NONE, s->id, code);
}

/* ---- responses ----------------------------------------------------------------------------- */

static ssize_t body_read(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    struct stream *s = source->ptr;
    size_t n = s->out_len - s->out_off;
    (void)user_data;
    if (n > length)
        n = length;
    memcpy(buf, s->out + s->out_off, n);
    s->out_off += n;
    if (s->out_off == s->out_len) {
        nghttp2_nv trailers[] = {
            {(uint8_t *)"grpc-status", (uint8_t *)s->grpc_status, 11, strlen(s->grpc_status),
             NGHTTP2_NV_FLAG_NONE},
        };
        *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        if (nghttp2_submit_trailer(session, id, trailers, 1) == 0)
            s->trailers_sent = 1;
    }
    return (ssize_t)n;
}

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE             \
    }

/* Sends a plain HTTP error (not gRPC: wrong content type or method). */
static void stream_http_error(struct stream *s, const char *status)
{
    nghttp2_nv nva[] = {NV(":status", status), NV("content-length", "0")};
    s->responded = 1;
    s->responded_ns = bst_mono_ns();
    nghttp2_submit_response(s->conn->session, s->id, nva, 2, NULL);
    s->rst_after_response = 1;
}

static void stream_respond(struct stream *s, enum bst_status status, const char *message,
                           const ProtobufCMessage *response, const char *request_id)
{
    struct conn *c = s->conn;
    if (s->responded)
        return;
    s->responded = 1;
    s->responded_ns = bst_mono_ns();
    snprintf(s->grpc_status, sizeof(s->grpc_status), "%d", (int)status);
    if (status == BST_OK && response != NULL) {
        size_t len = protobuf_c_message_get_packed_size(response);
        nghttp2_nv nva[] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                            NV("x-request-id", request_id)};
        nghttp2_data_provider prd;
        if (len > UINT32_MAX || (s->out = malloc(GRPC_PREFIX_LEN + len)) == NULL) {
            s->responded = 0;
            stream_respond(s, BST_RESOURCE_EXHAUSTED, "response too large", NULL, request_id);
            return;
        }
        grpc_prefix_write(s->out, (uint32_t)len);
        protobuf_c_message_pack(response, s->out + GRPC_PREFIX_LEN);
        s->out_len = GRPC_PREFIX_LEN + len;
        prd.source.ptr = s;
        prd.read_callback = body_read;
        nghttp2_submit_response(c->session, s->id, nva, 3, &prd);
    } else {
        /* Trailers-only response: one HEADERS frame with END_STREAM. */
        nghttp2_nv nva[] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                            NV("grpc-status", s->grpc_status), NV("grpc-message", s->grpc_message),
                            NV("x-request-id", "")};
        size_t n = 5;
        if (request_id == NULL)
            request_id = "";
        nva[4].value = (uint8_t *)request_id;
        nva[4].valuelen = strlen(request_id);
        grpc_message_encode(s->grpc_message, sizeof(s->grpc_message),
                            message != NULL ? message : "");
        nva[3].valuelen = strlen(s->grpc_message);
        if (s->grpc_message[0] == '\0') {
            nva[3] = nva[4];
            n = 4;
        }
        if (request_id == NULL || request_id[0] == '\0')
            n--;
        nghttp2_submit_response(c->session, s->id, nva, n, NULL);
        s->trailers_sent = 1;
        s->rst_after_response = 1; /* see on_frame_send */
    }
}

/* An unknown :path is peer text that may carry a credential (`?api_key=...`, a key pasted as a
 * segment), and it goes to the log and the audit record: keep what precedes a query or fragment,
 * at most 128 bytes, mask anything from a "bst_" key prefix on, and say how much was dropped. */
static const char *redacted_path(struct call *call, const char *p, size_t n)
{
    char buf[128 + 48];
    size_t keep = 0;

    while (keep < n && keep < 128 && p[keep] != '?' && p[keep] != '#')
        keep++;
    for (size_t i = 0; i + 4 <= keep; i++) {
        if (memcmp(p + i, "bst_", 4) == 0) {
            keep = i;
            break;
        }
    }
    snprintf(buf, sizeof(buf), "%.*s", (int)keep, p);
    if (keep < n)
        snprintf(buf + keep, sizeof(buf) - keep, "[%zu bytes redacted]", n - keep);
    return call_strdup(call, buf);
}

/* Schedules conn_flush on the loop. Responses are submitted from nghttp2 callbacks, timers and
 * other threads' completions; sending (and possibly freeing the connection) happens only here,
 * outside every callback. */
static void conn_want_flush(struct conn *c)
{
    event_active(c->flush_ev, EV_TIMEOUT, 1);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_flush(arg);
}

/* Host operations for calls: the worker's loop is the call's loop. */
static void host_finish(struct call *call, enum bst_status status, const char *message)
{
    struct stream *s = call->host;
    if (s == NULL)
        return;
    stream_respond(s, status, message, status == BST_OK ? call->response : NULL, call->id.hex);
    conn_want_flush(s->conn);
}

static void host_post(struct call *call)
{
    struct worker *w = call->loop;
    pthread_mutex_lock(&w->qlock);
    call->next_ready = NULL;
    if (w->q_tail != NULL)
        w->q_tail->next_ready = call;
    else
        w->q_head = call;
    w->q_tail = call;
    pthread_mutex_unlock(&w->qlock);
    event_active(w->wake_ev, EV_READ, 0);
}

const struct call_host_ops h2_call_host = {host_post, host_finish};

/* ---- request handling ---------------------------------------------------------------------- */

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct stream *s = arg;
    struct conn *c = s->conn;
    (void)fd;
    (void)what;
    if (s->call != NULL && !s->call->finished)
        call_abort(s->call, BST_DEADLINE_EXCEEDED, "deadline exceeded");
    conn_want_flush(c);
}

/* Finishes the call early with an error (before or instead of the chain). */
static void stream_fail(struct stream *s, enum bst_status status, const char *message)
{
    s->body_failed = 1;
    release_body(s);
    if (s->call != NULL && !s->call->finished)
        call_abort(s->call, status, message);
    else
        stream_respond(s, status, message, NULL, NULL);
}

/* All request headers are in: decide whether this is a gRPC call we serve and create it. */
static int on_request_headers(struct conn *c, struct stream *s)
{
    const struct config *cfg = cfg_of(c);
    const struct call_method *m;
    struct call *call;
    enum bst_status rv;

    s->headers_done = 1;
    if (!s->ct_grpc) {
        /* Not gRPC. The JSON routes for curl (/mcp/..., /auth/token) plug in here later. */
        stream_http_error(s, s->is_post ? "415" : "405");
        return 0;
    }
    m = s->path != NULL ? services_find(s->path, s->path_len) : NULL;
    rv = call_new(&call, m, &h2_call_host, s, (size_t)cfg->max_message_bytes * 8 + 65536);
    if (rv != BST_OK) {
        stream_respond(s, rv, "cannot start the call", NULL, NULL);
        return 0;
    }
    s->call = call;
    call->loop = c->w;
    call->path = s->path == NULL ? ""
                 : m != NULL   ? call_strndup(call, s->path, s->path_len)
                               : redacted_path(call, s->path, s->path_len);
    snprintf(call->peer, sizeof(call->peer), "%s", c->peer);
    if (c->peer_cert != NULL) {
        X509_up_ref(c->peer_cert);
        call->peer_cert = c->peer_cert;
    }
    /* Metadata moves into the call's arena. */
    call->md = call_alloc(call, (s->n_md ? s->n_md : 1) * sizeof(*call->md));
    for (size_t i = 0; call->md != NULL && i < s->n_md; i++) {
        call->md[i].name = call_strdup(call, s->md[i].name);
        call->md[i].value = call_strndup(call, s->md[i].value, s->md[i].value_len);
        call->md[i].value_len = s->md[i].value_len;
        if (call->md[i].name == NULL || call->md[i].value == NULL)
            break;
        call->n_md = i + 1;
    }
    if (s->timeout_ns > 0) {
        struct timeval tv;
        int64_t t = s->timeout_ns;
        call->deadline_mono_ns = call->start_mono_ns + (t > INT64_MAX / 2 ? INT64_MAX / 2 : t);
        /* Deadlines beyond a year never fire in practice; no timer for them. */
        if (t < INT64_C(366) * 86400 * BST_NS_PER_S) {
            tv.tv_sec = (time_t)(t / BST_NS_PER_S);
            tv.tv_usec = (suseconds_t)((t % BST_NS_PER_S) / 1000);
            s->deadline_ev = evtimer_new(c->w->base, deadline_cb, s);
            if (s->deadline_ev == NULL || evtimer_add(s->deadline_ev, &tv) != 0) {
                call_abort(call, BST_RESOURCE_EXHAUSTED, "cannot arm the deadline");
                s->body_failed = 1;
                return 0;
            }
        }
    }
    if (m == NULL) {
        call_abort(call, BST_UNIMPLEMENTED, "unknown method");
    } else if (!s->is_post) {
        call_abort(call, BST_UNIMPLEMENTED, "gRPC requires POST");
    } else if (!s->ct_ok) {
        call_abort(call, BST_UNIMPLEMENTED, "unsupported gRPC content-type; use application/grpc");
    } else if (s->bad_timeout) {
        call_abort(call, BST_INTERNAL, "malformed grpc-timeout");
    } else if (s->bad_encoding) {
        call_abort(call, BST_UNIMPLEMENTED, "unsupported grpc-encoding; only identity is accepted");
    } else if (call->md == NULL || call->n_md != s->n_md) {
        call_abort(call, BST_RESOURCE_EXHAUSTED, "request metadata too large");
    }
    /* Answered already (or being recorded before the answer): the body is not wanted. */
    if (call->finished || atomic_load(&call->cancelled))
        s->body_failed = 1;
    grpc_reader_init(&s->reader, (size_t)cfg->max_message_bytes);
    return 0;
}

/* The request is complete (END_STREAM): unpack it and run the chain. */
static void on_request_end(struct conn *c, struct stream *s)
{
    struct bst_err err = {BST_OK, ""};
    struct call *call = s->call;
    (void)c;
    if (call == NULL || call->finished || atomic_load(&call->cancelled) || s->body_failed)
        return;
    /* A deadline that passed before the request was complete (grpc-timeout 1n, or a body that
     * trickled in) ends the call here: its timer may not have had a turn of the loop yet. */
    if (call->deadline_mono_ns != 0 && bst_mono_ns() >= call->deadline_mono_ns) {
        stream_fail(s, BST_DEADLINE_EXCEEDED, "deadline exceeded");
        return;
    }
    if (grpc_reader_finish(&s->reader, &err) != BST_OK) {
        stream_fail(s, err.code, err.msg);
        return;
    }
    if (call_set_request(call, s->reader.msg, s->reader.msg_len) != BST_OK) {
        enum bst_status st = call->status;
        char msg[sizeof(call->message)];
        memcpy(msg, call->message, sizeof(msg));
        release_body(s);
        call_abort(call, st, msg);
        return;
    }
    release_body(s); /* the unpacked message owns copies of everything it needs */
    call_continue(call);
}

/* ---- nghttp2 callbacks --------------------------------------------------------------------- */

static ssize_t send_cb(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                       void *user_data)
{
    struct conn *c = user_data;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    (void)session;
    (void)flags;
    if (evbuffer_get_length(out) >= (size_t)cfg_of(c)->output_buffer_bytes)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (evbuffer_add(out, data, length) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)length;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct conn *c = user_data;
    struct stream *s;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if (c->closing || c->w->draining || c->n_streams >= (size_t)cfg_of(c)->max_concurrent_streams) {
        /* Before our SETTINGS are acknowledged nghttp2 accepts any number of streams. */
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_REFUSED_STREAM);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_INTERNAL_ERROR);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    s->conn = c;
    s->id = frame->hd.stream_id;
    s->opened_ns = bst_mono_ns();
    grpc_reader_init(&s->reader, 0);
    s->next = c->streams;
    if (c->streams != NULL)
        c->streams->prev = s;
    c->streams = s;
    c->n_streams++;
    nghttp2_session_set_stream_user_data(session, s->id, s);
    return 0;
}

static int header_is(const uint8_t *name, size_t namelen, const char *lit)
{
    return namelen == strlen(lit) && memcmp(name, lit, namelen) == 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    struct conn *c = user_data;
    const struct config *cfg = cfg_of(c);
    struct stream *s;
    (void)flags;

    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    s = stream_find(c, frame->hd.stream_id);
    if (s == NULL)
        return 0;
    if (s->headers_done) {
        /* Request trailers: counted like headers, otherwise ignored (unary calls). */
    }
    /* RFC 9113 §6.5.2 accounting: name + value + 32 per field. nghttp2 1.52 does not enforce
     * SETTINGS_MAX_HEADER_LIST_SIZE; a 16 KB frame can decode to 64 MB. */
    s->hdr_bytes += namelen + valuelen + 32;
    s->hdr_fields++;
    if (s->hdr_bytes > (size_t)cfg->max_header_list_bytes ||
        s->hdr_fields > (size_t)cfg->max_header_fields) {
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_ENHANCE_YOUR_CALM);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (s->headers_done)
        return 0;
    if (namelen > 0 && name[0] == ':') {
        if (header_is(name, namelen, ":path")) {
            free(s->path);
            s->path = strndup((const char *)value, valuelen);
            s->path_len = s->path != NULL ? strlen(s->path) : 0;
            if (s->path != NULL && s->path_len != valuelen) {
                free(s->path); /* an embedded NUL: never a method we serve */
                s->path = NULL;
            }
        } else if (header_is(name, namelen, ":method")) {
            s->is_post = valuelen == 4 && memcmp(value, "POST", 4) == 0;
        }
        return 0;
    }
    if (header_is(name, namelen, "content-type")) {
        s->ct_seen = 1;
        s->ct_grpc = grpc_content_type_is_grpc((const char *)value, valuelen);
        s->ct_ok = grpc_content_type_ok((const char *)value, valuelen);
        return 0;
    }
    if (header_is(name, namelen, "grpc-timeout")) {
        if (grpc_timeout_parse((const char *)value, valuelen, &s->timeout_ns) != 0)
            s->bad_timeout = 1;
        else if (s->timeout_ns == 0)
            s->timeout_ns = 1; /* "0n": already expired */
        return 0;
    }
    if (header_is(name, namelen, "grpc-encoding")) {
        if (!(valuelen == 8 && memcmp(value, "identity", 8) == 0))
            s->bad_encoding = 1;
        return 0;
    }
    if (header_is(name, namelen, "te") || header_is(name, namelen, "grpc-accept-encoding"))
        return 0;
    if (s->n_md < MAX_MD_ENTRIES) {
        struct md_entry *e = &s->md[s->n_md];
        e->name = strndup((const char *)name, namelen);
        e->value = malloc(valuelen + 1);
        if (e->name == NULL || e->value == NULL) {
            free(e->name);
            free(e->value);
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        memcpy(e->value, value, valuelen);
        e->value[valuelen] = '\0';
        e->value_len = valuelen;
        s->n_md++;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user_data)
{
    struct conn *c = user_data;
    const struct config *cfg = cfg_of(c);
    struct stream *s = stream_find(c, stream_id);
    struct bst_err err = {BST_OK, ""};
    size_t before;
    (void)session;
    (void)flags;

    if (s == NULL || s->body_failed || s->call == NULL || s->call->finished ||
        atomic_load(&s->call->cancelled))
        return 0;
    before = s->reader.msg_len;
    if (grpc_reader_feed(&s->reader, data, len, &err) != BST_OK) {
        stream_fail(s, err.code, err.msg);
        return 0;
    }
    /* Count a message's buffer against the budgets when its prefix arrives. */
    if (s->reader.msg_len > 0 && s->reserved == 0 && before == 0) {
        struct server *srv = c->w->srv;
        size_t n = s->reader.msg_len;
        long long total = atomic_fetch_add(&srv->buffered_bytes, (long long)n) + (long long)n;
        s->reserved = n;
        c->buffered += n;
        if (c->buffered > (size_t)cfg->connection_buffer_bytes ||
            total > (long long)cfg->server_buffer_bytes) {
            stream_fail(s, BST_RESOURCE_EXHAUSTED, "server busy: too much request data in flight");
            return 0;
        }
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct conn *c = user_data;
    struct stream *s;
    (void)session;

    c->last_active_ns = bst_mono_ns();
    switch (frame->hd.type) {
    case NGHTTP2_DATA:
        if (frame->hd.length == 0 && !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            glitch(c, "empty DATA");
        break;
    case NGHTTP2_PRIORITY:
        glitch(c, "PRIORITY");
        break;
    case NGHTTP2_PING:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK))
            glitch(c, "PING");
        break;
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK))
            glitch(c, "SETTINGS");
        break;
    case NGHTTP2_WINDOW_UPDATE:
        /* Legitimate peers send a few per DATA frame they receive from us. */
        if (++c->window_updates_recv > 10 * c->data_frames_sent + 100)
            glitch(c, "WINDOW_UPDATE");
        break;
    case NGHTTP2_HEADERS:
        s = stream_find(c, frame->hd.stream_id);
        if (s != NULL && frame->headers.cat == NGHTTP2_HCAT_REQUEST &&
            (frame->hd.flags & NGHTTP2_FLAG_END_HEADERS) && !s->headers_done)
            on_request_headers(c, s);
        break;
    default:
        break;
    }
    if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        s = stream_find(c, frame->hd.stream_id);
        if (s != NULL && s->headers_done) {
            s->remote_closed = 1;
            on_request_end(c, s);
        }
    }
    return 0;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct conn *c = user_data;
    if (frame->hd.type == NGHTTP2_DATA)
        c->data_frames_sent++;
    if (frame->hd.type == NGHTTP2_RST_STREAM && frame->rst_stream.error_code != NGHTTP2_NO_ERROR)
        glitch(c, "server-side stream resets");
    if (frame->hd.type == NGHTTP2_HEADERS && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        struct stream *s = stream_find(c, frame->hd.stream_id);
        /* A complete response went out while the client may still be sending: ask it to stop,
         * without error (RFC 9113 §8.1). Only now, after the response: a RST_STREAM queued
         * beside it marks the stream closing, and nghttp2 then drops the response HEADERS, so
         * the client would see a bare RST_STREAM(NO_ERROR) instead of the status. */
        if (s != NULL && s->rst_after_response &&
            nghttp2_session_get_stream_remote_close(session, s->id) == 0)
            reset_stream(s, NGHTTP2_NO_ERROR);
    }
    return 0;
}

static int on_invalid_frame(nghttp2_session *session, const nghttp2_frame *frame, int lib_error,
                            void *user_data)
{
    (void)session;
    (void)frame;
    (void)lib_error;
    glitch(user_data, "invalid frames");
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    struct conn *c = user_data;
    struct stream *s = stream_find(c, stream_id);
    (void)error_code;
    if (s == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    stream_free(s);
    return 0;
}

/* ---- connection I/O ------------------------------------------------------------------------ */

/* Produces output while the socket buffer has room; closes the connection when done. */
static void conn_flush(struct conn *c)
{
    struct evbuffer *out;
    if (c->session == NULL)
        return;
    if (nghttp2_session_send(c->session) != 0) {
        conn_free(c);
        return;
    }
    out = bufferevent_get_output(c->bev);
    if (evbuffer_get_length(out) > 0)
        return; /* the write callback calls us again */
    if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session)) {
        conn_free(c);
        return;
    }
    if ((c->closing || c->w->draining) && c->n_streams == 0) {
        conn_free(c);
        return;
    }
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    while (evbuffer_get_length(in) > 0) {
        size_t n;
        unsigned char *data;
        ssize_t rv;
        if (c->closing) {
            /* After GOAWAY for a flood, stop parsing what the peer keeps sending. */
            evbuffer_drain(in, evbuffer_get_length(in));
            break;
        }
        n = evbuffer_get_contiguous_space(in);
        data = evbuffer_pullup(in, (ssize_t)n);
        rv = nghttp2_session_mem_recv(c->session, data, n);
        if (rv < 0) {
            /* Fatal (bad preface, CONTINUATION flood, flooded output queue...): nghttp2
             * may have queued a GOAWAY; send what fits and close without reading more. */
            bst_log(BST_LOG_INFO, "h2_fatal", "peer", c->peer, "error", nghttp2_strerror((int)rv),
                    NULL);
            nghttp2_session_send(c->session);
            conn_free(c);
            return;
        }
        evbuffer_drain(in, (size_t)rv);
    }
    conn_flush(c);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_flush(arg);
}

static int session_start(struct conn *c)
{
    const struct config *cfg = cfg_of(c);
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)cfg->max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (uint32_t)cfg->stream_window_bytes},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)cfg->max_header_list_bytes},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    int rv;

    if (nghttp2_session_callbacks_new(&cb) != 0)
        return -1;
    nghttp2_session_callbacks_set_send_callback(cb, send_cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        return -1;
    }
    nghttp2_option_set_stream_reset_rate_limit(opt, (uint64_t)cfg->reset_burst,
                                               (uint64_t)cfg->reset_rate);
    nghttp2_option_set_max_continuations(opt, 8);
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    nghttp2_option_set_no_closed_streams(opt, 1);
    rv = nghttp2_session_server_new2(&c->session, cb, c, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rv != 0)
        return -1;
    if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) !=
            0 ||
        nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)cfg->connection_window_bytes) != 0)
        return -1;
    return 0;
}

static void log_tls_failure(struct conn *c, const char *why)
{
    char buf[256] = "";
    unsigned long e = bufferevent_get_openssl_error(c->bev);
    long vr = c->ssl != NULL ? SSL_get_verify_result(c->ssl) : X509_V_OK;
    if (e != 0)
        ERR_error_string_n(e, buf, sizeof(buf));
    const char *verify = vr != X509_V_OK ? X509_verify_cert_error_string(vr) : NULL;
    bst_log(BST_LOG_INFO, "tls_refused", "peer", c->peer, "reason", why, "tls_error",
            buf[0] ? buf : NULL, "verify", verify, NULL);
    /* A refused handshake has no call: it is one connection record. */
    auditlog_connection(c->peer, why, verify != NULL ? verify : buf);
}

/* The transport is up (TLS handshake done, or a plain transport in the fuzz harness): start
 * HTTP/2. Frees c on failure. */
static void conn_start(struct conn *c)
{
    c->handshake_done = 1;
    c->last_active_ns = bst_mono_ns();
    if (session_start(c) != 0) {
        conn_free(c);
        return;
    }
    conn_flush(c);
}

static void event_cb(struct bufferevent *bev, short events, void *arg)
{
    struct conn *c = arg;
    (void)bev;
    if (events & BEV_EVENT_CONNECTED) {
        const unsigned char *alpn = NULL;
        unsigned int alpnlen = 0;
        SSL_get0_alpn_selected(c->ssl, &alpn, &alpnlen);
        if (alpn == NULL || alpnlen != 2 || memcmp(alpn, "h2", 2) != 0) {
            log_tls_failure(c, "client did not negotiate ALPN h2");
            conn_free(c);
            return;
        }
        c->peer_cert = SSL_get1_peer_certificate(c->ssl);
        if (c->peer_cert != NULL && SSL_get_verify_result(c->ssl) != X509_V_OK) {
            X509_free(c->peer_cert); /* never trust an unverified certificate */
            c->peer_cert = NULL;
        }
        conn_start(c);
        return;
    }
    if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        if (!c->handshake_done)
            log_tls_failure(c, (events & BEV_EVENT_TIMEOUT) ? "handshake timeout"
                                                            : "handshake failed");
        else if (events & BEV_EVENT_TIMEOUT)
            bst_log(BST_LOG_INFO, "write_timeout", "peer", c->peer, NULL);
        conn_free(c);
    }
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    const struct config *cfg = cfg_of(c);
    int64_t now = bst_mono_ns();
    struct stream *s, *next;
    (void)fd;
    (void)what;

    if (!c->handshake_done) {
        if (now - c->created_ns > cfg->handshake_timeout_ms * BST_NS_PER_MS) {
            log_tls_failure(c, "handshake timeout");
            conn_free(c);
        }
        return;
    }
    for (s = c->streams; s != NULL; s = next) {
        next = s->next;
        if (!s->remote_closed && !s->responded && !s->headers_done &&
            now - s->opened_ns > cfg->header_timeout_ms * BST_NS_PER_MS) {
            /* The header block itself never completed (slowloris). Until it does, nghttp2
             * parses no other frame of this connection, so the whole connection is stuck:
             * reset the stream and end the connection. Nothing else answers this stream;
             * marking it responded puts the reset under the write timeout below. */
            s->responded = 1;
            s->responded_ns = now;
            reset_stream(s, NGHTTP2_CANCEL);
            if (!c->closing) {
                bst_log(BST_LOG_INFO, "header_timeout", "peer", c->peer, NULL);
                nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                                      nghttp2_session_get_last_proc_stream_id(c->session),
                                      NGHTTP2_NO_ERROR, (const uint8_t *)"header timeout", 14);
                c->closing = 1;
            }
        } else if (!s->remote_closed && !s->responded &&
                   now - s->opened_ns > cfg->header_timeout_ms * BST_NS_PER_MS) {
            /* The body never completed (slow body). */
            stream_fail(s, BST_DEADLINE_EXCEEDED, "request not received in time");
        } else if (s->responded && now - s->responded_ns > cfg->write_timeout_ms * BST_NS_PER_MS) {
            /* The peer does not open its flow-control window for our response. */
            reset_stream(s, NGHTTP2_CANCEL);
        }
    }
    if (c->n_streams == 0 && !c->closing &&
        now - c->last_active_ns > cfg->idle_timeout_ms * BST_NS_PER_MS) {
        nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(c->session), NGHTTP2_NO_ERROR,
                              (const uint8_t *)"idle", 4);
        c->closing = 1;
    }
    conn_flush(c);
}

static void conn_free(struct conn *c)
{
    struct worker *w = c->w;
    if (c->session != NULL) {
        nghttp2_session *session = c->session;
        /* Deleting the session closes every stream through on_stream_close. */
        while (c->streams != NULL) {
            struct stream *s = c->streams;
            nghttp2_session_set_stream_user_data(session, s->id, NULL);
            stream_free(s);
        }
        c->session = NULL;
        nghttp2_session_del(session);
    }
    if (c->tick_ev != NULL)
        event_free(c->tick_ev);
    if (c->flush_ev != NULL)
        event_free(c->flush_ev);
    if (c->bev != NULL)
        bufferevent_free(c->bev); /* frees the SSL and closes the socket */
    if (c->peer_cert != NULL)
        X509_free(c->peer_cert);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    w->n_conns--;
    atomic_fetch_sub(&w->srv->n_connections, 1);
    free(c);
    if (w->draining && w->n_conns == 0)
        event_base_loopexit(w->base, NULL);
}

static void format_peer(char *buf, size_t len, const struct sockaddr *sa)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
        snprintf(buf, len, "%s:%d", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
        snprintf(buf, len, "[%s]:%d", host, port);
    } else {
        snprintf(buf, len, "unknown");
    }
}

/* Counts and links a new connection; NULL (and nothing counted) when refused or out of
 * memory. The caller attaches a bufferevent and calls conn_attach. */
static struct conn *conn_new(struct worker *w, const char *peer)
{
    struct server *srv = w->srv;
    const struct config *cfg = &srv->cfg;
    struct conn *c;

    if (w->draining || atomic_fetch_add(&srv->n_connections, 1) >= (int)cfg->max_connections) {
        if (!w->draining)
            atomic_fetch_sub(&srv->n_connections, 1);
        bst_log(BST_LOG_WARN, "connection_refused", "peer", peer, "reason",
                w->draining ? "draining" : "connection limit reached", NULL);
        auditlog_connection(peer, w->draining ? "draining" : "connection limit reached", "");
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        atomic_fetch_sub(&srv->n_connections, 1);
        return NULL;
    }
    c->w = w;
    c->created_ns = c->last_active_ns = c->glitch_last_ns = bst_mono_ns();
    c->glitch_tokens = (double)cfg->glitch_burst;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->n_conns++;
    return c;
}

/* Wires c->bev and the connection's timers. Returns 0, or -1 after freeing c. */
static int conn_attach(struct conn *c)
{
    const struct config *cfg = cfg_of(c);
    struct timeval tick = {0, TICK_MS * 1000};
    struct timeval wto = {(time_t)(cfg->write_timeout_ms / 1000),
                          (suseconds_t)((cfg->write_timeout_ms % 1000) * 1000)};

    bufferevent_set_timeouts(c->bev, NULL, &wto);
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->tick_ev = event_new(c->w->base, -1, EV_PERSIST, tick_cb, c);
    c->flush_ev = event_new(c->w->base, -1, 0, flush_cb, c);
    if (c->tick_ev == NULL || c->flush_ev == NULL || event_add(c->tick_ev, &tick) != 0) {
        conn_free(c);
        return -1;
    }
    return 0;
}

void h2_accept(struct worker *w, int fd, const struct sockaddr *addr, int addrlen)
{
    char peer[64];
    struct conn *c;
    (void)addrlen;

    format_peer(peer, sizeof(peer), addr);
    c = conn_new(w, peer);
    if (c == NULL) {
        close(fd);
        return;
    }
    c->ssl = tls_ssl_new(w->srv->tls);
    if (c->ssl != NULL)
        c->bev = bufferevent_openssl_socket_new(w->base, fd, c->ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (c->bev == NULL) {
        if (c->ssl != NULL)
            SSL_free(c->ssl);
        close(fd);
        conn_free(c);
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    conn_attach(c);
}

void h2_serve_transport(struct worker *w, struct bufferevent *bev, const char *peer,
                        X509 *peer_cert)
{
    struct conn *c = conn_new(w, peer);
    if (c == NULL) {
        bufferevent_free(bev);
        return;
    }
    c->bev = bev;
    if (peer_cert != NULL && X509_up_ref(peer_cert) == 1)
        c->peer_cert = peer_cert;
    if (conn_attach(c) == 0)
        conn_start(c);
}

void h2_drain(struct worker *w)
{
    struct conn *c, *next;
    for (c = w->conns; c != NULL; c = next) {
        next = c->next;
        if (c->session == NULL) {
            conn_free(c); /* still in the handshake */
            continue;
        }
        nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(c->session), NGHTTP2_NO_ERROR,
                              (const uint8_t *)"shutting down", 13);
        conn_flush(c);
    }
}

void h2_close_all(struct worker *w)
{
    while (w->conns != NULL)
        conn_free(w->conns);
}
