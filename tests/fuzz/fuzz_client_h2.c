/* Fuzz target for the client's HTTP/2 and gRPC handling as a whole (client/channel.c on top of
 * nghttp2 and client/wire.c): the input is everything a hostile server sends on a connection
 * while three calls are in flight. No server and no TLS: the library's test hook runs each
 * connection over a socketpair, and this harness plays the server end like a real one would:
 * it sends the input's first frame (normally the server's SETTINGS), reads the client's
 * requests (until three HEADERS frames, the client closing, or a short silence), then sends the
 * rest of the input and shuts its side down, so every input ends and every call completes.
 * Connections the client opens again (a retried refused stream, after GOAWAY) get the same
 * input.
 *
 * Checked: no crash, leak or hang (each call has a 2 s deadline, far above what an input takes);
 * every call completes exactly once, with a status from the enum, a message shorter than the
 * message buffer, and a response exactly when the status is OK. The seeds include a valid
 * exchange in which all three calls succeed (FUZZ_CLIENT_VERBOSE=1 prints each result). */
#include <bastion/bastion.h>

#include "bastion/v1/auth.pb-c.h"
#include "bastion/v1/mcp.pb-c.h"
#include "internal.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define N_CALLS 3
#define MAX_CONNS 8
#define SILENCE_MS 5

static const uint8_t *input;
static size_t input_len;

/* Shared between the channel's I/O thread and the fuzzing thread. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int server_fds[MAX_CONNS];
static int n_server_fds;
static int n_completed;

/* Runs on the channel's I/O thread, once per connection the channel opens. */
static struct bufferevent *transport(struct event_base *base)
{
    int sv[2];
    struct bufferevent *bev;
    pthread_mutex_lock(&lock);
    if (n_server_fds >= MAX_CONNS || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        pthread_mutex_unlock(&lock);
        return NULL;
    }
    server_fds[n_server_fds++] = sv[1];
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&lock);
    evutil_make_socket_nonblocking(sv[0]);
    bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL)
        close(sv[0]);
    return bev;
}

static void on_done(bastion_call *call, bastion_status st, const char *msg, ProtobufCMessage *r,
                    void *user)
{
    (void)call;
    (void)user;
    if (!((unsigned)st <= BASTION_UNAUTHENTICATED ||
          (st >= BASTION_E_ARGUMENT && st <= BASTION_E_CLOSED)))
        abort();
    if (strlen(msg) >= 512 || (st == BASTION_OK) != (r != NULL))
        abort();
    if (getenv("FUZZ_CLIENT_VERBOSE") != NULL)
        fprintf(stderr, "%s: %s\n", bastion_status_name(st), msg);
    bastion_response_free(r);
    pthread_mutex_lock(&lock);
    n_completed++;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&lock);
}

/* Reads what the client sends until it has sent n HEADERS frames, closed, or gone quiet. */
static void read_requests(int fd, int n)
{
    uint8_t buf[16384];
    size_t have = 0, off = 24; /* the client connection preface comes first */
    while (n > 0) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t got;
        if (poll(&p, 1, SILENCE_MS) <= 0)
            return;
        got = recv(fd, buf + have, sizeof(buf) - have, MSG_DONTWAIT);
        if (got <= 0)
            return;
        have += (size_t)got;
        /* Walk whole frames; keep a partial one for the next read. */
        while (off + 9 <= have) {
            size_t len = (size_t)buf[off] << 16 | (size_t)buf[off + 1] << 8 | buf[off + 2];
            if (off + 9 + len > have)
                break;
            if (buf[off + 3] == 0x1)
                n--;
            off += 9 + len;
        }
        if (off >= sizeof(buf) / 2) {
            memmove(buf, buf + off, have - off);
            have -= off;
            off = 0;
        } else if (have == sizeof(buf)) {
            return; /* a frame larger than we keep: the client has surely sent its requests */
        }
    }
}

/* Plays the server on one connection. */
static void serve(int fd)
{
    size_t first = input_len;
    if (input_len >= 9) {
        size_t len = (size_t)input[0] << 16 | (size_t)input[1] << 8 | input[2];
        first = 9 + len < input_len ? 9 + len : input_len;
    }
    if (send(fd, input, first, MSG_NOSIGNAL) < 0)
        return;
    read_requests(fd, N_CALLS);
    if (first < input_len)
        send(fd, input + first, input_len - first, MSG_NOSIGNAL);
    shutdown(fd, SHUT_WR);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bastion_options *opts;
    static bastion_call_options *co;
    bastion_channel *ch = NULL;
    Bastion__V1__PingRequest ping = BASTION__V1__PING_REQUEST__INIT;
    Bastion__V1__WhoAmIRequest who = BASTION__V1__WHO_AM_IREQUEST__INIT;
    Bastion__V1__ListToolsRequest tools = BASTION__V1__LIST_TOOLS_REQUEST__INIT;
    int served = 0;

    /* An AF_UNIX socket buffers far more than this, so writes never block. */
    if (size > 65536)
        return 0;
    if (opts == NULL) {
        bcl_test_transport = transport;
        if (bastion_options_new(&opts) != BASTION_OK ||
            bastion_options_set_target(opts, "127.0.0.1:1") != BASTION_OK ||
            bastion_options_set_keepalive(opts, 0, 1000) != BASTION_OK ||
            bastion_options_set_max_message_bytes(opts, 65536) != BASTION_OK ||
            bastion_call_options_new(&co) != BASTION_OK ||
            bastion_call_options_set_deadline_ms(co, 2000) != BASTION_OK)
            abort();
    }
    input = data;
    input_len = size;
    n_server_fds = 0;
    n_completed = 0;
    if (bastion_channel_new(&ch, opts, NULL, 0) != BASTION_OK)
        abort();
    /* Three streams (ids 1, 3, 5, in this order), as a real client would have in flight. */
    if (bastion_call_start(ch, &bastion__v1__mcp__descriptor, "Ping", &ping.base, co, on_done, NULL,
                           NULL) != BASTION_OK ||
        bastion_call_start(ch, &bastion__v1__auth__descriptor, "WhoAmI", &who.base, co, on_done,
                           NULL, NULL) != BASTION_OK ||
        bastion_call_start(ch, &bastion__v1__mcp__descriptor, "ListTools", &tools.base, co, on_done,
                           NULL, NULL) != BASTION_OK)
        abort();
    pthread_mutex_lock(&lock);
    for (;;) {
        if (served < n_server_fds) {
            int fd = server_fds[served++];
            pthread_mutex_unlock(&lock);
            serve(fd);
            pthread_mutex_lock(&lock);
        } else if (n_completed == N_CALLS) {
            break;
        } else {
            pthread_cond_wait(&cv, &lock);
        }
    }
    pthread_mutex_unlock(&lock);
    bastion_channel_free(ch);
    for (int i = 0; i < n_server_fds; i++)
        close(server_fds[i]);
    return 0;
}
