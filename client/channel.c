/* Channels and calls: the I/O thread, connections (resolve, TCP, TLS, HTTP/2), streams and their
 * completion.
 *
 * Threads. Each channel owns one I/O thread running a libevent loop; everything below marked
 * "I/O thread" runs only there, so nghttp2 sessions, OpenSSL objects and call state need no
 * locks. Other threads talk to the loop through queues under ch->lock plus event_active(): a
 * started call, a cancellation, a resolved host name, the channel's closing. Completion
 * callbacks run on the I/O thread from a deferred event, never inside nghttp2 or libevent
 * callbacks, so a callback may start or cancel calls freely. Waiters sleep on ch->cv.
 *
 * Connections. ch->active is the connection new calls go to: resolving, connecting, in the TLS
 * handshake, waiting for the server's SETTINGS, or ready. Calls wait in ch->waiting until it is
 * ready; if it fails first they fail with its error (E_CONNECT, E_TLS, UNAVAILABLE), so a call
 * never waits longer than the connect timeout for a server that is down. A connection that
 * received GOAWAY leaves ch->active and drains (its calls finish, then it closes); the next call
 * opens a new one. Streams the server refused (REFUSED_STREAM, or above a GOAWAY's last stream
 * id) were never processed and are retried once on a fresh connection. A connection that breaks
 * fails its calls with UNAVAILABLE. Host names are resolved on a short-lived detached thread so
 * that a slow resolver never stalls the loop's timers.
 *
 * Lifetime. Calls and channels are refcounted: a call holds its channel; the I/O thread holds a
 * call from its start to the end of its completion; the caller holds one if it asked for a
 * handle. bastion_channel_free() fails every call with E_CLOSED, joins the thread and drops the
 * caller's reference; the memory goes with the last call. */
#include "internal.h"
#include "tls.h"
#include "wire.h"

#include "clock.h"
#include "text.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define OUTPUT_CAP (1024 * 1024)
#define STREAM_WINDOW (1024 * 1024)
#define CONNECTION_WINDOW (16 * 1024 * 1024)
#define MAX_RETRIES 1
#define USER_AGENT "bastion-c/" BASTION_VERSION

int64_t bcl_test_deadline_slack_ns;
struct bufferevent *(*bcl_test_transport)(struct event_base *base);

enum call_state { CS_NEW = 0, CS_WAITING, CS_ACTIVE, CS_DONE };

enum conn_state {
    C_RESOLVING = 0,
    C_CONNECTING,
    C_HANDSHAKE,
    C_SETTINGS, /* h2 preface sent, waiting for the server's SETTINGS */
    C_READY,
    C_DRAINING, /* GOAWAY received or being closed: no new streams */
};

struct bcl_conn;
struct resolve_job;

struct bastion_call {
    atomic_int refs;
    bastion_channel *ch;
    /* Immutable after the start. */
    char *path;
    uint8_t *body; /* 5-byte prefix + packed request; wiped on free */
    size_t body_len;
    struct bcl_md *md;
    size_t n_md;
    int64_t deadline_ns; /* absolute, monotonic; 0 = none */
    int64_t deadline_ms; /* as given, for messages */
    const ProtobufCMessageDescriptor *output;
    bastion_done_fn done;
    void *user;
    atomic_int cancel_requested;
    /* Under ch->lock. */
    struct bastion_call *qnext;       /* ch->start_q */
    struct bastion_call *cancel_next; /* ch->cancel_q */
    int in_cancel_q;
    int completed; /* the callback (if any) has returned */
    /* I/O thread. */
    enum call_state state;
    struct bcl_conn *conn;
    int32_t stream_id;
    size_t body_off;
    struct bastion_call *prev, *next; /* ch->waiting or conn->calls */
    struct bastion_call *done_next;   /* ch->completed */
    struct event *deadline_ev;
    struct bcl_resp resp;
    int remote_ended;
    int stream_closed; /* nghttp2 closed the stream (no reset needed, no more body reads) */
    int retries;
    /* Result: written on the I/O thread before `completed`, read after it. */
    bastion_status status;
    char message[BCL_MESSAGE_MAX];
    ProtobufCMessage *response;
};

struct bcl_conn {
    bastion_channel *ch;
    enum conn_state state;
    struct bcl_conn *next; /* ch->draining */
    struct resolve_job *job;
    struct addrinfo *ai, *ai_cur;
    evutil_socket_t fd;
    struct event *connect_ev;
    struct event *timeout_ev;    /* connect timeout */
    struct event *ka_ev;         /* keepalive interval */
    struct event *ka_timeout_ev; /* PING answer */
    struct event *flush_ev;
    struct bufferevent *bev;
    nghttp2_session *session;
    struct bastion_call *calls;
    size_t n_calls;
    int ping_pending;
    char peer[BCL_MAX_HOST + 10];        /* the address connected to (the target until then) */
    char last_error[BCL_MAX_HOST + 100]; /* the last failed address, for E_CONNECT */
    char proto_error[200]; /* why nghttp2 ended the session, if the server broke HTTP/2 */
};

struct resolve_job {
    atomic_int refs; /* the resolver thread (then the queue) and the connection */
    bastion_channel *ch;
    struct bcl_conn *conn; /* I/O thread: NULL once the connection gave up */
    char host[BCL_MAX_HOST + 1];
    char port[8];
    struct addrinfo *res;
    int gai_err;
    struct resolve_job *next;
};

struct bastion_channel {
    atomic_int refs;
    struct bastion_options opts;
    SSL_CTX *ssl_ctx;
    char authority[BCL_MAX_HOST + 10];
    const char *verify_name;
    struct event_base *base;
    struct event *wake_ev;
    struct event *done_ev;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cv;
    /* Under lock. */
    int accepting; /* 0 once bastion_channel_free() began: no more wake-ups */
    int closing;
    int free_on_exit;
    struct bastion_call *start_head, *start_tail;
    struct bastion_call *cancel_q;
    struct resolve_job *resolved;
    /* I/O thread. */
    struct bastion_call *waiting, *waiting_tail; /* FIFO: calls go out in the order started */
    struct bcl_conn *active;
    struct bcl_conn *draining;
    struct bastion_call *completed_head, *completed_tail;
};

static void conn_free(struct bcl_conn *c);
static void conn_flush(struct bcl_conn *c);
static void conn_broken(struct bcl_conn *c, bastion_status st, const char *msg);
static void dispatch(bastion_channel *ch);

/* ---- references ------------------------------------------------------------------------------ */

static void channel_unref(bastion_channel *ch)
{
    if (atomic_fetch_sub(&ch->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&ch->lock);
    pthread_cond_destroy(&ch->cv);
    SSL_CTX_free(ch->ssl_ctx);
    bcl_options_dispose(&ch->opts);
    free(ch);
}

static void call_unref(struct bastion_call *c)
{
    if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    if (c->body != NULL) {
        OPENSSL_cleanse(c->body, c->body_len); /* requests may carry passwords */
        free(c->body);
    }
    for (size_t i = 0; i < c->n_md; i++) {
        if (c->md[i].secret)
            bcl_free_secret(c->md[i].value);
        else
            free(c->md[i].value);
        free(c->md[i].name);
    }
    free(c->md);
    free(c->path);
    bcl_resp_dispose(&c->resp);
    bastion_response_free(c->response);
    if (c->ch != NULL)
        channel_unref(c->ch);
    free(c);
}

static int on_io_thread(const bastion_channel *ch)
{
    return pthread_equal(pthread_self(), ch->thread);
}

/* Wakes the loop; the caller holds ch->lock and has checked ch->accepting. */
static void wake_locked(bastion_channel *ch)
{
    event_active(ch->wake_ev, EV_READ, 0);
}

/* ---- completion (I/O thread) ---------------------------------------------------------------- */

static void unlink_call(struct bastion_call *c)
{
    struct bastion_call **head = NULL, **tail = NULL;
    if (c->state == CS_WAITING) {
        head = &c->ch->waiting;
        tail = &c->ch->waiting_tail;
    } else if (c->state == CS_ACTIVE && c->conn != NULL) {
        head = &c->conn->calls;
    }
    if (head == NULL)
        return;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else if (tail != NULL)
        *tail = c->prev;
    c->prev = c->next = NULL;
    if (c->state == CS_ACTIVE && c->conn != NULL)
        c->conn->n_calls--;
}

/* Pushes c on the front of a list (tail may be NULL for lists without one). */
static void push_front(struct bastion_call **head, struct bastion_call **tail,
                       struct bastion_call *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head != NULL)
        (*head)->prev = c;
    else if (tail != NULL)
        *tail = c;
    *head = c;
}

static void push_back(struct bastion_call **head, struct bastion_call **tail,
                      struct bastion_call *c)
{
    c->next = NULL;
    c->prev = *tail;
    if (*tail != NULL)
        (*tail)->next = c;
    else
        *head = c;
    *tail = c;
}

/* Ends the call with a result. The callback runs later, from ch->done_ev. */
static void finish(struct bastion_call *c, bastion_status st, const char *msg,
                   ProtobufCMessage *response)
{
    bastion_channel *ch = c->ch;
    struct bcl_conn *conn = c->conn;

    if (c->state == CS_DONE) {
        bastion_response_free(response);
        return;
    }
    unlink_call(c);
    if (c->state == CS_ACTIVE && conn != NULL && conn->session != NULL && c->stream_id > 0) {
        /* Stop the server's work and forget the stream; its frames are ignored from now on. */
        nghttp2_session_set_stream_user_data(conn->session, c->stream_id, NULL);
        /* The reset also stops nghttp2 from reading the request body (this call's memory)
         * again: RST_STREAM leaves before any DATA and closes the stream. */
        if (!c->stream_closed)
            nghttp2_submit_rst_stream(conn->session, NGHTTP2_FLAG_NONE, c->stream_id,
                                      NGHTTP2_CANCEL);
        event_active(conn->flush_ev, EV_TIMEOUT, 0);
    }
    c->state = CS_DONE;
    c->conn = NULL;
    if (c->deadline_ev != NULL) {
        event_free(c->deadline_ev);
        c->deadline_ev = NULL;
    }
    c->status = st;
    if (st != BASTION_OK && (msg == NULL || msg[0] == '\0'))
        msg = bastion_strerror(st);
    bst_text_sanitize(c->message, sizeof(c->message), msg != NULL ? msg : "",
                      msg != NULL ? strlen(msg) : 0);
    c->response = response;
    c->done_next = NULL;
    if (ch->completed_tail != NULL)
        ch->completed_tail->done_next = c;
    else
        ch->completed_head = c;
    ch->completed_tail = c;
    event_active(ch->done_ev, EV_TIMEOUT, 0);
}

static void finishf(struct bastion_call *c, bastion_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void finishf(struct bastion_call *c, bastion_status st, const char *fmt, ...)
{
    char msg[2 * BCL_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    finish(c, st, msg, NULL);
}

/* Runs completion callbacks, then releases waiters. */
static void run_completions(bastion_channel *ch)
{
    struct bastion_call *c;
    while ((c = ch->completed_head) != NULL) {
        ch->completed_head = c->done_next;
        if (ch->completed_head == NULL)
            ch->completed_tail = NULL;
        if (c->done != NULL) {
            ProtobufCMessage *r = c->response;
            c->response = NULL; /* the callback owns it now */
            c->done(c, c->status, c->message, r, c->user);
        }
        pthread_mutex_lock(&ch->lock);
        c->completed = 1;
        pthread_cond_broadcast(&ch->cv);
        pthread_mutex_unlock(&ch->lock);
        call_unref(c); /* the I/O thread's reference */
    }
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run_completions(arg);
}

/* ---- responses (I/O thread) ------------------------------------------------------------------ */

/* protobuf-c keeps unknown fields at ~40x their wire size, so a hostile server could turn a
 * 4 MiB response into 160 MiB. Responses are unpacked through an allocator that counts the bytes
 * it hands out; memory comes from malloc, so bastion_response_free() (protobuf-c's default
 * allocator) can free it later. Legitimate responses need a few times their wire size. */
struct counting_alloc {
    ProtobufCAllocator base;
    size_t used, cap;
    int exhausted;
};

static void *counting_alloc(void *data, size_t size)
{
    struct counting_alloc *a = data;
    if (size > a->cap - a->used) {
        a->exhausted = 1;
        return NULL;
    }
    a->used += size;
    return malloc(size);
}

static void counting_free(void *data, void *p)
{
    (void)data;
    free(p);
}

static void complete_stream(struct bastion_call *c, int ended, uint32_t rst)
{
    char msg[BCL_MESSAGE_MAX];
    bastion_status st = bcl_resp_finish(&c->resp, ended, rst, msg, sizeof(msg));
    struct counting_alloc a;
    ProtobufCMessage *m;

    if (st != BASTION_OK) {
        finish(c, st, msg, NULL);
        return;
    }
    a.base.alloc = counting_alloc;
    a.base.free = counting_free;
    a.base.allocator_data = &a;
    a.used = 0;
    a.exhausted = 0;
    a.cap = (size_t)c->resp.msg_len * 16 + 65536;
    m = protobuf_c_message_unpack(c->output, &a.base, c->resp.msg_len, c->resp.msg);
    if (m == NULL) {
        if (a.exhausted)
            finishf(c, BASTION_RESOURCE_EXHAUSTED,
                    "the %u-byte response needs more than %zu bytes of memory to decode",
                    c->resp.msg_len, a.cap);
        else
            finishf(c, BASTION_E_PROTOCOL, "the response is not a valid %s", c->output->name);
        return;
    }
    finish(c, BASTION_OK, "", m);
}

/* ---- nghttp2 callbacks (I/O thread) ---------------------------------------------------------- */

static struct bastion_call *stream_call(nghttp2_session *s, int32_t id)
{
    return id > 0 ? nghttp2_session_get_stream_user_data(s, id) : NULL;
}

static ssize_t send_cb(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                       void *user_data)
{
    struct bcl_conn *c = user_data;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    (void)session;
    (void)flags;
    if (evbuffer_get_length(out) >= OUTPUT_CAP)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (evbuffer_add(out, data, length) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)length;
}

static ssize_t body_read(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    struct bastion_call *c = source->ptr;
    size_t n;
    (void)session;
    (void)id;
    (void)user_data;
    n = c->body_len - c->body_off;
    if (n > length)
        n = length;
    memcpy(buf, c->body + c->body_off, n);
    c->body_off += n;
    if (c->body_off == c->body_len)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    struct bastion_call *c;
    (void)flags;
    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    c = stream_call(session, frame->hd.stream_id);
    if (c == NULL)
        return 0;
    if (bcl_resp_header(&c->resp,
                        frame->headers.cat == NGHTTP2_HCAT_RESPONSE ? BCL_BLOCK_HEADERS
                                                                    : BCL_BLOCK_TRAILERS,
                        name, namelen, value, valuelen) != 0)
        complete_stream(c, 0, 0);
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user_data)
{
    struct bastion_call *c = stream_call(session, stream_id);
    (void)flags;
    (void)user_data;
    if (c != NULL && bcl_resp_data(&c->resp, data, len) != 0)
        complete_stream(c, 0, 0);
    return 0;
}

static void conn_ready(struct bcl_conn *c);
static void conn_goaway(struct bcl_conn *c);

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct bcl_conn *conn = user_data;
    struct bastion_call *c;

    switch (frame->hd.type) {
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) && conn->state == C_SETTINGS)
            conn_ready(conn);
        break;
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
            conn->ping_pending = 0;
            if (conn->ka_timeout_ev != NULL)
                event_del(conn->ka_timeout_ev);
        }
        break;
    case NGHTTP2_GOAWAY:
        conn_goaway(conn);
        break;
    case NGHTTP2_HEADERS:
        c = stream_call(session, frame->hd.stream_id);
        if (c == NULL)
            break;
        if (bcl_resp_block_end(&c->resp,
                               frame->headers.cat == NGHTTP2_HCAT_RESPONSE ? BCL_BLOCK_HEADERS
                                                                           : BCL_BLOCK_TRAILERS,
                               (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) != 0) {
            complete_stream(c, 0, 0);
            break;
        }
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
            c->remote_ended = 1;
        break;
    case NGHTTP2_DATA:
        c = stream_call(session, frame->hd.stream_id);
        if (c != NULL && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            c->remote_ended = 1;
        break;
    default:
        break;
    }
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    struct bastion_call *c = stream_call(session, stream_id);
    (void)user_data;
    if (c == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    c->stream_closed = 1;
    if (error_code == NGHTTP2_REFUSED_STREAM && !c->resp.seen_headers && c->retries < MAX_RETRIES) {
        /* Never processed by the server (RFC 9113 §8.7): safe to send again. */
        unlink_call(c);
        c->retries++;
        c->conn = NULL;
        c->stream_id = 0;
        c->stream_closed = 0;
        c->remote_ended = 0;
        c->body_off = 0;
        bcl_resp_dispose(&c->resp);
        bcl_resp_init(&c->resp, c->ch->opts.max_message_bytes);
        c->state = CS_WAITING;
        push_front(&c->ch->waiting, &c->ch->waiting_tail, c); /* it was first in line */
        event_active(c->ch->wake_ev, EV_READ, 0); /* dispatch from the loop, not from here */
        return 0;
    }
    complete_stream(c, c->remote_ended && error_code == NGHTTP2_NO_ERROR, error_code);
    return 0;
}

/* nghttp2 ends a session itself (a GOAWAY it sends) when the server breaks HTTP/2; keep why. */
static int on_error(nghttp2_session *session, int lib_error_code, const char *msg, size_t len,
                    void *user_data)
{
    struct bcl_conn *c = user_data;
    (void)session;
    (void)lib_error_code;
    if (c->proto_error[0] == '\0')
        bst_text_sanitize(c->proto_error, sizeof(c->proto_error), msg, len);
    return 0;
}

/* A GOAWAY we send with an error code means the server broke HTTP/2 (nghttp2 reports some of
 * these, such as a bad HPACK block, through no error callback). */
static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct bcl_conn *c = user_data;
    (void)session;
    if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR &&
        c->proto_error[0] == '\0')
        snprintf(c->proto_error, sizeof(c->proto_error), "connection error %s",
                 nghttp2_http2_strerror(frame->goaway.error_code));
    return 0;
}

/* ---- connections (I/O thread) ---------------------------------------------------------------- */

static void conn_unlink(struct bcl_conn *c)
{
    bastion_channel *ch = c->ch;
    if (ch->active == c) {
        ch->active = NULL;
        return;
    }
    for (struct bcl_conn **p = &ch->draining; *p != NULL; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            return;
        }
    }
}

static void job_unref(struct resolve_job *j)
{
    if (j == NULL || atomic_fetch_sub(&j->refs, 1) != 1)
        return;
    if (j->res != NULL)
        freeaddrinfo(j->res);
    channel_unref(j->ch);
    free(j);
}

static void conn_free(struct bcl_conn *c)
{
    conn_unlink(c);
    /* Calls still on the connection were failed by the caller; detach any leftovers. */
    while (c->calls != NULL)
        finish(c->calls, BASTION_UNAVAILABLE, "the connection was closed", NULL);
    if (c->job != NULL) {
        c->job->conn = NULL;
        job_unref(c->job);
    }
    if (c->session != NULL)
        nghttp2_session_del(c->session);
    if (c->bev != NULL)
        bufferevent_free(c->bev); /* frees the SSL and closes the socket */
    else if (c->fd >= 0)
        close(c->fd);
    if (c->connect_ev != NULL)
        event_free(c->connect_ev);
    if (c->timeout_ev != NULL)
        event_free(c->timeout_ev);
    if (c->ka_ev != NULL)
        event_free(c->ka_ev);
    if (c->ka_timeout_ev != NULL)
        event_free(c->ka_timeout_ev);
    if (c->flush_ev != NULL)
        event_free(c->flush_ev);
    if (c->ai != NULL)
        freeaddrinfo(c->ai);
    free(c);
}

/* The connection could not be established: the calls waiting for it fail with its error. */
static void conn_fail(struct bcl_conn *c, bastion_status st, const char *msg)
{
    bastion_channel *ch = c->ch;
    int was_active = ch->active == c;
    conn_free(c);
    if (!was_active)
        return;
    while (ch->waiting != NULL)
        finish(ch->waiting, st, msg, NULL);
}

/* The established connection is gone: its calls fail. */
static void conn_broken(struct bcl_conn *c, bastion_status st, const char *msg)
{
    bastion_channel *ch = c->ch;
    if (c->state < C_READY) {
        conn_fail(c, st, msg);
        return;
    }
    while (c->calls != NULL)
        finish(c->calls, st, msg, NULL);
    conn_free(c);
    dispatch(ch); /* calls that arrived meanwhile get a new connection */
}

static void conn_goaway(struct bcl_conn *c)
{
    bastion_channel *ch = c->ch;
    if (c->state == C_DRAINING)
        return;
    if (ch->active == c) {
        ch->active = NULL;
        c->next = ch->draining;
        ch->draining = c;
    }
    if (c->state < C_READY && ch->draining == c) {
        /* Refused before it ever became usable: fail the waiting calls rather than reconnect
         * to a server that may refuse every connection the same way. */
        char msg[2 * BCL_MESSAGE_MAX];
        snprintf(msg, sizeof(msg), "%s sent GOAWAY before accepting any request", c->peer);
        while (ch->waiting != NULL)
            finish(ch->waiting, BASTION_UNAVAILABLE, msg, NULL);
    }
    c->state = C_DRAINING;
    /* Calls still waiting go to a new connection from the loop. */
    event_active(ch->wake_ev, EV_READ, 0);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_flush(arg);
}

/* Sends what nghttp2 has queued; closes a connection that is finished. Top level only (never
 * from inside nghttp2 callbacks), because it may free c. */
static void conn_flush(struct bcl_conn *c)
{
    if (c->session == NULL)
        return;
    if (nghttp2_session_send(c->session) != 0) {
        conn_broken(c, BASTION_UNAVAILABLE, "HTTP/2 send failed");
        return;
    }
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
        return; /* the write callback flushes again */
    if (c->state == C_DRAINING && c->n_calls == 0) {
        conn_free(c);
        return;
    }
    if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session)) {
        char msg[2 * BCL_MESSAGE_MAX];
        if (c->proto_error[0] != '\0') {
            snprintf(msg, sizeof(msg), "HTTP/2 protocol error from %s: %s", c->peer,
                     c->proto_error);
            conn_broken(c, BASTION_E_PROTOCOL, msg);
        } else {
            snprintf(msg, sizeof(msg), "the HTTP/2 session with %s ended", c->peer);
            conn_broken(c, BASTION_UNAVAILABLE, msg);
        }
    }
}

static void submit_call(struct bcl_conn *conn, struct bastion_call *c)
{
    bastion_channel *ch = conn->ch;
    nghttp2_nv nva[8 + BCL_MAX_METADATA + 2];
    size_t n = 0;
    char timeout[16];
    nghttp2_data_provider prd;
    int32_t id;

#define NV(nm, val, fl)                                                                            \
    do {                                                                                           \
        nva[n].name = (uint8_t *)(nm);                                                             \
        nva[n].namelen = strlen(nm);                                                               \
        nva[n].value = (uint8_t *)(val);                                                           \
        nva[n].valuelen = strlen(val);                                                             \
        nva[n].flags = (fl);                                                                       \
        n++;                                                                                       \
    } while (0)

    if (c->deadline_ns != 0) {
        int64_t left = c->deadline_ns - bst_mono_ns();
        if (left <= 0 && bcl_test_deadline_slack_ns == 0) {
            finishf(c, BASTION_DEADLINE_EXCEEDED,
                    "the deadline of %lld ms expired before the "
                    "request was sent",
                    (long long)c->deadline_ms);
            return;
        }
        bcl_timeout_encode(left, timeout, sizeof(timeout));
    }
    NV(":method", "POST", NGHTTP2_NV_FLAG_NONE);
    NV(":scheme", "https", NGHTTP2_NV_FLAG_NONE);
    NV(":path", c->path, NGHTTP2_NV_FLAG_NONE);
    NV(":authority", ch->authority, NGHTTP2_NV_FLAG_NONE);
    NV("content-type", "application/grpc", NGHTTP2_NV_FLAG_NONE);
    NV("te", "trailers", NGHTTP2_NV_FLAG_NONE);
    NV("user-agent", USER_AGENT, NGHTTP2_NV_FLAG_NONE);
    if (c->deadline_ns != 0)
        NV("grpc-timeout", timeout, NGHTTP2_NV_FLAG_NONE);
    for (size_t i = 0; i < c->n_md; i++) {
        /* Credentials are never entered into the HPACK table (no compression side channel). */
        NV(c->md[i].name, c->md[i].value,
           c->md[i].secret ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE);
    }
#undef NV
    prd.source.ptr = c;
    prd.read_callback = body_read;
    c->body_off = 0;
    id = nghttp2_submit_request(conn->session, NULL, nva, n, &prd, c);
    if (id < 0) {
        if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
            /* 2^30 streams used: this connection is spent; the call goes to a new one. */
            conn_goaway(conn);
            push_front(&ch->waiting, &ch->waiting_tail, c);
            c->state = CS_WAITING;
            return;
        }
        finishf(c, BASTION_INTERNAL, "cannot submit the request: %s", nghttp2_strerror(id));
        return;
    }
    c->stream_id = id;
    c->conn = conn;
    c->state = CS_ACTIVE;
    push_front(&conn->calls, NULL, c);
    conn->n_calls++;
}

/* Sends every waiting call on the ready connection, or starts one. */
static void conn_start(bastion_channel *ch);

static void dispatch(bastion_channel *ch)
{
    struct bcl_conn *conn = ch->active;
    if (ch->waiting == NULL)
        return;
    if (conn == NULL) {
        conn_start(ch);
        return;
    }
    if (conn->state != C_READY)
        return;
    while (ch->waiting != NULL) {
        struct bastion_call *c = ch->waiting;
        unlink_call(c);
        c->state = CS_NEW;
        submit_call(conn, c);
        if (ch->active != conn)
            break; /* the connection ran out of stream ids */
    }
    event_active(conn->flush_ev, EV_TIMEOUT, 0);
}

static void ka_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct bcl_conn *c = arg;
    char msg[BCL_MESSAGE_MAX];
    (void)fd;
    (void)what;
    snprintf(msg, sizeof(msg), "keepalive: %s did not answer a PING within %lld ms", c->peer,
             (long long)c->ch->opts.keepalive_timeout_ms);
    conn_broken(c, BASTION_UNAVAILABLE, msg);
}

static void ka_cb(evutil_socket_t fd, short what, void *arg)
{
    struct bcl_conn *c = arg;
    int64_t t = c->ch->opts.keepalive_timeout_ms;
    struct timeval tv = {(time_t)(t / 1000), (suseconds_t)((t % 1000) * 1000)};
    (void)fd;
    (void)what;
    if (c->ping_pending || c->session == NULL)
        return;
    if (nghttp2_submit_ping(c->session, NGHTTP2_FLAG_NONE, NULL) != 0)
        return;
    c->ping_pending = 1;
    evtimer_add(c->ka_timeout_ev, &tv);
    conn_flush(c);
}

static void conn_ready(struct bcl_conn *c)
{
    bastion_channel *ch = c->ch;
    int64_t iv = ch->opts.keepalive_interval_ms;
    c->state = C_READY;
    event_del(c->timeout_ev);
    if (iv > 0) {
        struct timeval tv = {(time_t)(iv / 1000), (suseconds_t)((iv % 1000) * 1000)};
        c->ka_ev = event_new(ch->base, -1, EV_PERSIST, ka_cb, c);
        c->ka_timeout_ev = evtimer_new(ch->base, ka_timeout_cb, c);
        if (c->ka_ev != NULL)
            event_add(c->ka_ev, &tv);
    }
    if (ch->active == c)
        dispatch(ch);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct bcl_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    while (evbuffer_get_length(in) > 0) {
        size_t n = evbuffer_get_contiguous_space(in);
        unsigned char *data = evbuffer_pullup(in, (ssize_t)n);
        ssize_t rv = nghttp2_session_mem_recv(c->session, data, n);
        if (rv < 0) {
            char msg[BCL_MESSAGE_MAX];
            snprintf(msg, sizeof(msg), "HTTP/2 protocol error from %s: %s", c->peer,
                     nghttp2_strerror((int)rv));
            nghttp2_session_send(c->session); /* a GOAWAY, if nghttp2 queued one */
            conn_broken(c, BASTION_E_PROTOCOL, msg);
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

static int session_start(struct bcl_conn *c)
{
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 0}, /* the server opens no streams */
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, BCL_MAX_HEADER_LIST_BYTES},
    };
    int rv;

    if (nghttp2_session_callbacks_new(&cb) != 0)
        return -1;
    nghttp2_session_callbacks_set_send_callback(cb, send_cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_error_callback2(cb, on_error);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        return -1;
    }
    /* The same bounds the server applies to its peers: a hostile server gets no more. */
    nghttp2_option_set_max_continuations(opt, 8);
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    nghttp2_option_set_no_closed_streams(opt, 1);
    rv = nghttp2_session_client_new2(&c->session, cb, c, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rv != 0)
        return -1;
    if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) !=
            0 ||
        nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0,
                                              CONNECTION_WINDOW) != 0)
        return -1;
    return 0;
}

static void event_cb(struct bufferevent *bev, short events, void *arg)
{
    struct bcl_conn *c = arg;
    char msg[2 * BCL_MESSAGE_MAX], why[BCL_MESSAGE_MAX];
    unsigned long oerr;

    if (events & BEV_EVENT_CONNECTED) {
        const unsigned char *alpn = NULL;
        unsigned int alpnlen = 0;
        SSL_get0_alpn_selected(bufferevent_openssl_get_ssl(bev), &alpn, &alpnlen);
        if (alpn == NULL || alpnlen != 2 || memcmp(alpn, "h2", 2) != 0) {
            snprintf(msg, sizeof(msg), "%s did not negotiate HTTP/2 (ALPN h2)", c->peer);
            conn_fail(c, BASTION_E_TLS, msg);
            return;
        }
        if (session_start(c) != 0) {
            conn_fail(c, BASTION_E_NOMEM, "cannot start the HTTP/2 session");
            return;
        }
        c->state = C_SETTINGS;
        conn_flush(c);
        return;
    }
    if (!(events & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)))
        return;
    oerr = bufferevent_get_openssl_error(bev);
    if (c->state == C_HANDSHAKE || c->state == C_SETTINGS) {
        /* The server speaks HTTP/2 only after verifying our certificate, so a connection that
         * dies before its SETTINGS was refused at the TLS layer. TLS 1.3 sends that alert after
         * our Finished, and a reset socket may lose the alert itself. */
        bcl_tls_describe(bufferevent_openssl_get_ssl(bev), oerr, c->ch->verify_name, why,
                         sizeof(why));
        snprintf(msg, sizeof(msg), "%s: %s", c->peer, why);
        ERR_clear_error();
        conn_fail(c, BASTION_E_TLS, msg);
        return;
    }
    if (oerr != 0)
        snprintf(msg, sizeof(msg), "connection to %s lost: %s", c->peer,
                 bcl_tls_error_string(oerr, why, sizeof(why)));
    else if (events & BEV_EVENT_EOF)
        snprintf(msg, sizeof(msg), "connection to %s lost: closed by the server", c->peer);
    else
        snprintf(msg, sizeof(msg), "connection to %s lost: %s", c->peer,
                 strerror(EVUTIL_SOCKET_ERROR()));
    ERR_clear_error();
    conn_broken(c, BASTION_UNAVAILABLE, msg);
}

static void format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%d", host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(buf, len, "[%s]:%d", host, ntohs(in6->sin6_port));
    } else {
        snprintf(buf, len, "?");
    }
}

static void start_tls(struct bcl_conn *c)
{
    bastion_channel *ch = c->ch;
    SSL *ssl = bcl_tls_ssl_new(ch->ssl_ctx, ch->verify_name);
    int one = 1;

    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (ssl != NULL)
        c->bev = bufferevent_openssl_socket_new(ch->base, c->fd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (c->bev == NULL) {
        SSL_free(ssl);
        conn_fail(c, BASTION_E_NOMEM, "cannot start TLS");
        return;
    }
    c->fd = -1; /* the bufferevent owns it */
    c->flush_ev = event_new(ch->base, -1, 0, flush_cb, c);
    if (c->flush_ev == NULL) {
        conn_fail(c, BASTION_E_NOMEM, "cannot start TLS");
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->state = C_HANDSHAKE;
}

static void try_next_address(struct bcl_conn *c);

static void connect_cb(evutil_socket_t fd, short what, void *arg)
{
    struct bcl_conn *c = arg;
    int err = 0;
    socklen_t len = sizeof(err);
    (void)what;
    event_free(c->connect_ev);
    c->connect_ev = NULL;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err != 0) {
        snprintf(c->last_error, sizeof(c->last_error), "%s: %s", c->peer, strerror(err));
        close(c->fd);
        c->fd = -1;
        c->ai_cur = c->ai_cur->ai_next;
        try_next_address(c);
        return;
    }
    start_tls(c);
}

/* Connects to the next resolved address (in resolver order), or fails with E_CONNECT. */
static void try_next_address(struct bcl_conn *c)
{
    bastion_channel *ch = c->ch;
    for (; c->ai_cur != NULL; c->ai_cur = c->ai_cur->ai_next) {
        struct addrinfo *a = c->ai_cur;
        format_addr(a->ai_addr, c->peer, sizeof(c->peer));
        c->fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0) {
            snprintf(c->last_error, sizeof(c->last_error), "%s: %s", c->peer, strerror(errno));
            continue;
        }
        if (connect(c->fd, a->ai_addr, a->ai_addrlen) == 0 || errno == EINPROGRESS) {
            c->connect_ev = event_new(ch->base, c->fd, EV_WRITE, connect_cb, c);
            if (c->connect_ev == NULL || event_add(c->connect_ev, NULL) != 0) {
                conn_fail(c, BASTION_E_NOMEM, "cannot wait for the connection");
                return;
            }
            c->state = C_CONNECTING;
            return;
        }
        snprintf(c->last_error, sizeof(c->last_error), "%s: %s", c->peer, strerror(errno));
        close(c->fd);
        c->fd = -1;
    }
    {
        char msg[2 * BCL_MESSAGE_MAX];
        snprintf(msg, sizeof(msg), "cannot connect to %s (%s)", ch->authority,
                 c->last_error[0] ? c->last_error : "no usable address");
        conn_fail(c, BASTION_E_CONNECT, msg);
    }
}

static void resolved(struct bcl_conn *c, struct resolve_job *j)
{
    char msg[2 * BCL_MESSAGE_MAX];
    c->job = NULL;
    j->conn = NULL;
    if (j->gai_err != 0 || j->res == NULL) {
        snprintf(msg, sizeof(msg), "cannot resolve %s: %s", j->host,
                 j->gai_err != 0 ? gai_strerror(j->gai_err) : "no address");
        job_unref(j); /* the connection's reference */
        conn_fail(c, BASTION_E_CONNECT, msg);
        return;
    }
    c->ai = j->res;
    j->res = NULL;
    c->ai_cur = c->ai;
    job_unref(j);
    try_next_address(c);
}

static void *resolve_main(void *arg)
{
    struct resolve_job *j = arg;
    bastion_channel *ch = j->ch;
    struct addrinfo hints;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
    j->gai_err = getaddrinfo(j->host, j->port, &hints, &j->res);
    pthread_mutex_lock(&ch->lock);
    if (ch->accepting) {
        j->next = ch->resolved; /* the thread's reference passes to the queue */
        ch->resolved = j;
        wake_locked(ch);
        j = NULL;
    }
    pthread_mutex_unlock(&ch->lock);
    job_unref(j);
    return NULL;
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct bcl_conn *c = arg;
    static const char *const phase[] = {"resolving the name", "connecting", "the TLS handshake",
                                        "waiting for HTTP/2 SETTINGS"};
    char msg[2 * BCL_MESSAGE_MAX];
    (void)fd;
    (void)what;
    if (c->state >= C_READY)
        return;
    snprintf(msg, sizeof(msg), "connection to %s timed out after %lld ms (%s)", c->ch->authority,
             (long long)c->ch->opts.connect_timeout_ms, phase[c->state]);
    conn_fail(c, c->state <= C_CONNECTING ? BASTION_E_CONNECT : BASTION_E_TLS, msg);
}

/* HTTP/2 straight over the transport the test hook supplies (no TCP, no TLS). */
static void conn_test_transport(struct bcl_conn *c)
{
    c->bev = bcl_test_transport(c->ch->base);
    c->flush_ev = event_new(c->ch->base, -1, 0, flush_cb, c);
    if (c->bev == NULL || c->flush_ev == NULL || session_start(c) != 0) {
        conn_fail(c, BASTION_E_CONNECT, "the test transport failed");
        return;
    }
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->state = C_SETTINGS;
    conn_flush(c);
}

static void conn_start(bastion_channel *ch)
{
    struct bcl_conn *c = calloc(1, sizeof(*c));
    int64_t t = ch->opts.connect_timeout_ms;
    struct timeval tv = {(time_t)(t / 1000), (suseconds_t)((t % 1000) * 1000)};
    struct resolve_job *j;
    pthread_t th;
    pthread_attr_t attr;

    if (c == NULL) {
        while (ch->waiting != NULL)
            finish(ch->waiting, BASTION_E_NOMEM, "out of memory for a connection", NULL);
        return;
    }
    c->ch = ch;
    c->fd = -1;
    c->state = C_RESOLVING;
    ch->active = c;
    snprintf(c->peer, sizeof(c->peer), "%s", ch->authority);
    c->timeout_ev = evtimer_new(ch->base, timeout_cb, c);
    if (c->timeout_ev == NULL || evtimer_add(c->timeout_ev, &tv) != 0) {
        conn_fail(c, BASTION_E_NOMEM, "out of memory for a connection");
        return;
    }
    if (bcl_test_transport != NULL) {
        conn_test_transport(c);
        return;
    }
    if (bcl_is_ip_literal(ch->opts.host) || strcasecmp(ch->opts.host, "localhost") == 0) {
        /* No resolver needed; AI_NUMERICHOST never blocks. "localhost" is the loopback address
         * without asking any resolver (RFC 6761 §6.3): it never depends on /etc/hosts or DNS,
         * and no answer can send it elsewhere. The certificate is still checked for the name
         * the caller gave. */
        struct addrinfo hints, *res = NULL;
        const char *addr = bcl_is_ip_literal(ch->opts.host) ? ch->opts.host : "127.0.0.1";
        char port[8];
        memset(&hints, 0, sizeof(hints));
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
        snprintf(port, sizeof(port), "%d", ch->opts.port);
        if (getaddrinfo(addr, port, &hints, &res) != 0 || res == NULL) {
            conn_fail(c, BASTION_E_CONNECT, "cannot parse the server address");
            return;
        }
        c->ai = c->ai_cur = res;
        try_next_address(c);
        return;
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL) {
        conn_fail(c, BASTION_E_NOMEM, "out of memory for a connection");
        return;
    }
    atomic_init(&j->refs, 2);
    j->ch = ch;
    atomic_fetch_add(&ch->refs, 1);
    j->conn = c;
    snprintf(j->host, sizeof(j->host), "%s", ch->opts.host);
    snprintf(j->port, sizeof(j->port), "%d", ch->opts.port);
    c->job = j;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, resolve_main, j) != 0) {
        pthread_attr_destroy(&attr);
        job_unref(j); /* the thread's reference */
        conn_fail(c, BASTION_E_NOMEM, "cannot start the resolver thread");
        return;
    }
    pthread_attr_destroy(&attr);
}

/* ---- the loop's inbox (I/O thread) ------------------------------------------------------------
 */

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct bastion_call *c = arg;
    (void)fd;
    (void)what;
    finishf(c, BASTION_DEADLINE_EXCEEDED, "the deadline of %lld ms expired",
            (long long)c->deadline_ms);
}

static void accept_call(bastion_channel *ch, struct bastion_call *c)
{
    if (atomic_load(&c->cancel_requested)) {
        finish(c, BASTION_CANCELLED, "cancelled by the caller", NULL);
        return;
    }
    if (c->deadline_ns != 0) {
        int64_t left = c->deadline_ns + bcl_test_deadline_slack_ns - bst_mono_ns();
        struct timeval tv;
        if (left <= 0) {
            finishf(c, BASTION_DEADLINE_EXCEEDED,
                    "the deadline of %lld ms expired before the "
                    "request was sent",
                    (long long)c->deadline_ms);
            return;
        }
        tv.tv_sec = (time_t)(left / BST_NS_PER_S);
        tv.tv_usec = (suseconds_t)((left % BST_NS_PER_S) / 1000);
        c->deadline_ev = evtimer_new(ch->base, deadline_cb, c);
        if (c->deadline_ev == NULL || evtimer_add(c->deadline_ev, &tv) != 0) {
            finish(c, BASTION_E_NOMEM, "cannot arm the deadline timer", NULL);
            return;
        }
    }
    c->state = CS_WAITING;
    push_back(&ch->waiting, &ch->waiting_tail, c);
}

static void shutdown_all(bastion_channel *ch, struct bastion_call *starts)
{
    static const char closed[] = "the channel was closed";
    while (starts != NULL) {
        struct bastion_call *c = starts;
        starts = c->qnext;
        finish(c, BASTION_E_CLOSED, closed, NULL);
    }
    while (ch->waiting != NULL)
        finish(ch->waiting, BASTION_E_CLOSED, closed, NULL);
    while (ch->draining != NULL) {
        struct bcl_conn *c = ch->draining;
        while (c->calls != NULL)
            finish(c->calls, BASTION_E_CLOSED, closed, NULL);
        conn_free(c);
    }
    if (ch->active != NULL) {
        struct bcl_conn *c = ch->active;
        while (c->calls != NULL)
            finish(c->calls, BASTION_E_CLOSED, closed, NULL);
        if (c->session != NULL) {
            /* A polite goodbye if the socket takes it; nothing waits for it. */
            nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
            nghttp2_session_send(c->session);
        }
        conn_free(c);
    }
    run_completions(ch);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    bastion_channel *ch = arg;
    struct bastion_call *starts, *cancels;
    struct resolve_job *jobs;
    int closing;
    (void)fd;
    (void)what;

    pthread_mutex_lock(&ch->lock);
    starts = ch->start_head;
    ch->start_head = ch->start_tail = NULL;
    cancels = ch->cancel_q;
    ch->cancel_q = NULL;
    for (struct bastion_call *c = cancels; c != NULL; c = c->cancel_next)
        c->in_cancel_q = 0;
    jobs = ch->resolved;
    ch->resolved = NULL;
    closing = ch->closing;
    pthread_mutex_unlock(&ch->lock);

    while (jobs != NULL) {
        struct resolve_job *j = jobs;
        jobs = j->next;
        if (j->conn != NULL && !closing)
            resolved(j->conn, j);
        job_unref(j); /* the queue's reference */
    }
    while (cancels != NULL) {
        struct bastion_call *c = cancels;
        cancels = c->cancel_next;
        finish(c, BASTION_CANCELLED, "cancelled by the caller", NULL);
        call_unref(c); /* the queue's reference */
    }
    if (closing) {
        shutdown_all(ch, starts);
        event_base_loopbreak(ch->base);
        return;
    }
    while (starts != NULL) {
        struct bastion_call *c = starts;
        starts = c->qnext;
        accept_call(ch, c);
    }
    dispatch(ch);
}

static void free_loop(bastion_channel *ch)
{
    if (ch->wake_ev != NULL)
        event_free(ch->wake_ev);
    if (ch->done_ev != NULL)
        event_free(ch->done_ev);
    /* bufferevent_free() with BEV_OPT_DEFER_CALLBACKS finishes in a deferred callback: run the
     * loop once more so those finalizers free the connection's SSL and buffers. */
    if (ch->base != NULL)
        event_base_loop(ch->base, EVLOOP_NONBLOCK);
    if (ch->base != NULL)
        event_base_free(ch->base);
    ch->wake_ev = ch->done_ev = NULL;
    ch->base = NULL;
}

static void *io_main(void *arg)
{
    bastion_channel *ch = arg;
    int detached;
    event_base_loop(ch->base, EVLOOP_NO_EXIT_ON_EMPTY);
    pthread_mutex_lock(&ch->lock);
    detached = ch->free_on_exit;
    pthread_mutex_unlock(&ch->lock);
    if (detached) {
        /* bastion_channel_free() was called from a callback on this thread: finish it here. */
        free_loop(ch);
        channel_unref(ch);
    }
    return NULL;
}

/* ---- public API ------------------------------------------------------------------------------ */

static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;

static void evthread_init(void)
{
    evthread_use_pthreads();
}

bastion_status bastion_channel_new(bastion_channel **out, const bastion_options *opts, char *errbuf,
                                   size_t errlen)
{
    bastion_channel *ch;
    bastion_status rv;
    sigset_t all, old;
    int started;

    bcl_errbuf(errbuf, errlen, "%s", "");
    if (out == NULL || opts == NULL) {
        bcl_errbuf(errbuf, errlen, "out and opts must not be NULL");
        return BASTION_E_ARGUMENT;
    }
    *out = NULL;
    pthread_once(&evthread_once, evthread_init);
    ch = calloc(1, sizeof(*ch));
    if (ch == NULL)
        return BASTION_E_NOMEM;
    atomic_init(&ch->refs, 1);
    pthread_mutex_init(&ch->lock, NULL);
    pthread_cond_init(&ch->cv, NULL);
    if (bcl_options_copy(&ch->opts, opts) != BASTION_OK) {
        channel_unref(ch);
        return BASTION_E_NOMEM;
    }
    ch->verify_name = ch->opts.server_name != NULL ? ch->opts.server_name : ch->opts.host;
    if (strchr(ch->opts.host, ':') != NULL)
        snprintf(ch->authority, sizeof(ch->authority), "[%s]:%d", ch->opts.host, ch->opts.port);
    else
        snprintf(ch->authority, sizeof(ch->authority), "%s:%d", ch->opts.host, ch->opts.port);
    /* The fuzzing transport needs no TLS (and an SSL_CTX costs milliseconds). */
    rv = bcl_test_transport != NULL ? BASTION_OK
                                    : bcl_tls_ctx_new(&ch->ssl_ctx, &ch->opts, errbuf, errlen);
    if (rv != BASTION_OK) {
        channel_unref(ch);
        return rv;
    }
    ch->base = event_base_new();
    if (ch->base != NULL) {
        ch->wake_ev = event_new(ch->base, -1, 0, wake_cb, ch);
        ch->done_ev = event_new(ch->base, -1, 0, done_cb, ch);
    }
    if (ch->base == NULL || ch->wake_ev == NULL || ch->done_ev == NULL) {
        free_loop(ch);
        channel_unref(ch);
        return BASTION_E_NOMEM;
    }
    ch->accepting = 1;
    /* The I/O thread takes no signals: SIGPIPE from a write to a closed socket stays pending on
     * it (the write fails with EPIPE), and the application's handlers run on its own threads. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    started = pthread_create(&ch->thread, NULL, io_main, ch) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!started) {
        free_loop(ch);
        channel_unref(ch);
        bcl_errbuf(errbuf, errlen, "cannot start the I/O thread");
        return BASTION_E_NOMEM;
    }
    *out = ch;
    return BASTION_OK;
}

void bastion_channel_free(bastion_channel *ch)
{
    int self;
    if (ch == NULL)
        return;
    self = on_io_thread(ch);
    pthread_mutex_lock(&ch->lock);
    if (ch->closing) {
        pthread_mutex_unlock(&ch->lock);
        return;
    }
    ch->closing = 1;
    ch->free_on_exit = self;
    wake_locked(ch);
    ch->accepting = 0;
    pthread_mutex_unlock(&ch->lock);
    if (self) {
        pthread_detach(ch->thread);
        return; /* io_main finishes after the loop */
    }
    pthread_join(ch->thread, NULL);
    free_loop(ch);
    channel_unref(ch);
}

static bastion_status copy_md(struct bastion_call *c, const bastion_channel *ch,
                              const bastion_call_options *co)
{
    const char *token =
        co != NULL && (co->token != NULL || co->api_key != NULL) ? co->token : ch->opts.token;
    const char *key =
        co != NULL && (co->token != NULL || co->api_key != NULL) ? co->api_key : ch->opts.api_key;
    size_t n = (co != NULL ? co->n_md : 0) + 2;

    c->md = calloc(n, sizeof(*c->md));
    if (c->md == NULL)
        return BASTION_E_NOMEM;
    if (token != NULL) {
        size_t len = strlen(token) + sizeof("Bearer ");
        struct bcl_md *m = &c->md[c->n_md++];
        m->secret = 1;
        m->name = strdup("authorization");
        m->value = malloc(len);
        if (m->name == NULL || m->value == NULL)
            return BASTION_E_NOMEM;
        snprintf(m->value, len, "Bearer %s", token);
    }
    if (key != NULL) {
        struct bcl_md *m = &c->md[c->n_md++];
        m->secret = 1;
        m->name = strdup("x-api-key");
        m->value = strdup(key);
        if (m->name == NULL || m->value == NULL)
            return BASTION_E_NOMEM;
    }
    for (size_t i = 0; co != NULL && i < co->n_md; i++) {
        struct bcl_md *m = &c->md[c->n_md++];
        m->name = strdup(co->md[i].name);
        m->value = strdup(co->md[i].value);
        if (m->name == NULL || m->value == NULL)
            return BASTION_E_NOMEM;
    }
    return BASTION_OK;
}

bastion_status bastion_call_start(bastion_channel *ch, const ProtobufCServiceDescriptor *service,
                                  const char *method, const ProtobufCMessage *request,
                                  const bastion_call_options *opts, bastion_done_fn done,
                                  void *user, bastion_call **out)
{
    const ProtobufCMethodDescriptor *md;
    struct bastion_call *c;
    size_t packed, plen;
    int64_t deadline_ms;
    bastion_status rv;

    if (out != NULL)
        *out = NULL;
    if (ch == NULL || service == NULL || method == NULL || request == NULL ||
        (done == NULL && out == NULL))
        return BASTION_E_ARGUMENT;
    md = protobuf_c_service_descriptor_get_method_by_name(service, method);
    if (md == NULL || request->descriptor != md->input)
        return BASTION_E_ARGUMENT;
    packed = protobuf_c_message_get_packed_size(request);
    if (packed > ch->opts.max_message_bytes)
        return BASTION_RESOURCE_EXHAUSTED;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return BASTION_E_NOMEM;
    atomic_init(&c->refs, 1);
    atomic_init(&c->cancel_requested, 0);
    bcl_resp_init(&c->resp, ch->opts.max_message_bytes);
    plen = strlen(service->name) + strlen(md->name) + 3;
    c->path = malloc(plen);
    c->body_len = BCL_PREFIX_LEN + packed;
    c->body = malloc(c->body_len);
    if (c->path == NULL || c->body == NULL) {
        rv = BASTION_E_NOMEM;
        goto fail;
    }
    snprintf(c->path, plen, "/%s/%s", service->name, md->name);
    c->body[0] = 0;
    c->body[1] = (uint8_t)(packed >> 24);
    c->body[2] = (uint8_t)(packed >> 16);
    c->body[3] = (uint8_t)(packed >> 8);
    c->body[4] = (uint8_t)packed;
    protobuf_c_message_pack(request, c->body + BCL_PREFIX_LEN);
    if ((rv = copy_md(c, ch, opts)) != BASTION_OK)
        goto fail;
    deadline_ms =
        opts != NULL && opts->deadline_ms > 0 ? opts->deadline_ms : ch->opts.default_deadline_ms;
    if (deadline_ms > 0) {
        c->deadline_ms = deadline_ms;
        c->deadline_ns = bst_mono_ns() + deadline_ms * BST_NS_PER_MS;
    }
    c->output = md->output;
    c->done = done;
    c->user = user;

    pthread_mutex_lock(&ch->lock);
    if (!ch->accepting) {
        pthread_mutex_unlock(&ch->lock);
        rv = BASTION_E_CLOSED;
        goto fail;
    }
    atomic_fetch_add(&ch->refs, 1);
    c->ch = ch;
    if (out != NULL) {
        atomic_fetch_add(&c->refs, 1);
        *out = c;
    }
    if (ch->start_tail != NULL)
        ch->start_tail->qnext = c;
    else
        ch->start_head = c;
    ch->start_tail = c;
    wake_locked(ch);
    pthread_mutex_unlock(&ch->lock);
    return BASTION_OK;
fail:
    call_unref(c);
    return rv;
}

void bastion_call_cancel(bastion_call *call)
{
    bastion_channel *ch;
    if (call == NULL || call->ch == NULL)
        return;
    ch = call->ch;
    atomic_store(&call->cancel_requested, 1);
    pthread_mutex_lock(&ch->lock);
    if (ch->accepting && !call->completed && !call->in_cancel_q) {
        call->in_cancel_q = 1;
        atomic_fetch_add(&call->refs, 1);
        call->cancel_next = ch->cancel_q;
        ch->cancel_q = call;
        wake_locked(ch);
    }
    pthread_mutex_unlock(&ch->lock);
}

bastion_status bastion_call_wait(bastion_call *call)
{
    bastion_channel *ch;
    if (call == NULL || call->ch == NULL)
        return BASTION_E_ARGUMENT;
    ch = call->ch;
    pthread_mutex_lock(&ch->lock);
    if (!call->completed && on_io_thread(ch)) {
        pthread_mutex_unlock(&ch->lock);
        return BASTION_E_ARGUMENT; /* waiting on the loop that completes it: a deadlock */
    }
    while (!call->completed)
        pthread_cond_wait(&ch->cv, &ch->lock);
    pthread_mutex_unlock(&ch->lock);
    return call->status;
}

static int completed(const bastion_call *call)
{
    int done;
    if (call == NULL || call->ch == NULL)
        return 0;
    pthread_mutex_lock(&call->ch->lock);
    done = call->completed;
    pthread_mutex_unlock(&call->ch->lock);
    /* Inside the callback the result is already final. */
    return done || (on_io_thread(call->ch) && call->state == CS_DONE);
}

bastion_status bastion_call_status(const bastion_call *call)
{
    return completed(call) ? call->status : BASTION_E_ARGUMENT;
}

const char *bastion_call_message(const bastion_call *call)
{
    return completed(call) ? call->message : "";
}

ProtobufCMessage *bastion_call_take_response(bastion_call *call)
{
    ProtobufCMessage *r;
    if (!completed(call))
        return NULL;
    r = call->response;
    call->response = NULL;
    return r;
}

const char *bastion_call_header(const bastion_call *call, const char *name)
{
    if (name == NULL || !completed(call))
        return NULL;
    return bcl_resp_find(&call->resp, name);
}

void bastion_call_release(bastion_call *call)
{
    call_unref(call);
}

bastion_status bastion_call_blocking(bastion_channel *ch, const ProtobufCServiceDescriptor *service,
                                     const char *method, const ProtobufCMessage *request,
                                     const bastion_call_options *opts, ProtobufCMessage **response,
                                     char *errbuf, size_t errlen, char *request_id)
{
    bastion_call *call = NULL;
    bastion_status rv;

    if (response != NULL)
        *response = NULL;
    if (request_id != NULL)
        request_id[0] = '\0';
    bcl_errbuf(errbuf, errlen, "%s", "");
    if (response == NULL) {
        bcl_errbuf(errbuf, errlen, "response must not be NULL");
        return BASTION_E_ARGUMENT;
    }
    if (ch != NULL && on_io_thread(ch)) {
        bcl_errbuf(errbuf, errlen, "blocking call from a completion callback would deadlock");
        return BASTION_E_ARGUMENT;
    }
    rv = bastion_call_start(ch, service, method, request, opts, NULL, NULL, &call);
    if (rv != BASTION_OK) {
        bcl_errbuf(errbuf, errlen, "%s", bastion_strerror(rv));
        return rv;
    }
    rv = bastion_call_wait(call);
    if (rv == BASTION_OK)
        *response = bastion_call_take_response(call);
    else
        bcl_errbuf(errbuf, errlen, "%s", call->message);
    if (request_id != NULL) {
        const char *id = bastion_call_header(call, "x-request-id");
        snprintf(request_id, 33, "%s", id != NULL ? id : "");
    }
    bastion_call_release(call);
    return rv;
}

void bastion_response_free(ProtobufCMessage *response)
{
    if (response != NULL)
        protobuf_c_message_free_unpacked(response, NULL);
}
