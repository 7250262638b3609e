/* Fuzz target for the client's HTTP/2 and gRPC handling as a whole (client/channel.c on top of
 * nghttp2 and client/wire.c): the input is everything a hostile server sends on one connection,
 * from its SETTINGS on, while three calls are in flight. No sockets to a server and no TLS: the
 * library's test hook runs the connection over a socketpair whose other end is fed the input
 * and then shut down, so every input ends (EOF) and every call completes.
 *
 * Checked: no crash, leak or hang (each call has a 2 s deadline, far above the time an input
 * takes); every call completes exactly once with a status from the enum and a NUL-terminated
 * message; the library refuses nothing a valid exchange contains (the seeds include one). */
#include <bastion/bastion.h>

#include "bastion/v1/auth.pb-c.h"
#include "bastion/v1/mcp.pb-c.h"
#include "internal.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 8

static const uint8_t *input;
static size_t input_len;
static int server_fds[MAX_CONNS];
static int n_server_fds;

/* Runs on the channel's I/O thread, once per connection the channel opens. */
static struct bufferevent *transport(struct event_base *base)
{
    int sv[2];
    struct bufferevent *bev;
    if (n_server_fds >= MAX_CONNS || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return NULL;
    /* An AF_UNIX socket buffers far more than -max_len, so this never blocks. */
    if (input_len > 0 && send(sv[1], input, input_len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        close(sv[0]);
        close(sv[1]);
        return NULL;
    }
    shutdown(sv[1], SHUT_WR); /* EOF after the input */
    server_fds[n_server_fds++] = sv[1];
    evutil_make_socket_nonblocking(sv[0]);
    bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL)
        close(sv[0]);
    return bev;
}

static void check_done(bastion_call *call)
{
    bastion_status st = bastion_call_wait(call);
    const char *msg = bastion_call_message(call);
    ProtobufCMessage *r = bastion_call_take_response(call);
    if (!((unsigned)st <= BASTION_UNAUTHENTICATED ||
          (st >= BASTION_E_ARGUMENT && st <= BASTION_E_CLOSED)))
        abort();
    if (strlen(msg) >= 512 || (st == BASTION_OK) != (r != NULL))
        abort();
    bastion_response_free(r);
    bastion_call_release(call);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bastion_options *opts;
    static bastion_call_options *co;
    bastion_channel *ch = NULL;
    Bastion__V1__PingRequest ping = BASTION__V1__PING_REQUEST__INIT;
    Bastion__V1__WhoAmIRequest who = BASTION__V1__WHO_AM_IREQUEST__INIT;
    Bastion__V1__ListToolsRequest tools = BASTION__V1__LIST_TOOLS_REQUEST__INIT;
    bastion_call *calls[3] = {NULL, NULL, NULL};

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
    if (bastion_channel_new(&ch, opts, NULL, 0) != BASTION_OK)
        abort();
    /* Three streams (ids 1, 3, 5), as a real client would have in flight. */
    if (bastion_call_start(ch, &bastion__v1__mcp__descriptor, "Ping", &ping.base, co, NULL, NULL,
                           &calls[0]) != BASTION_OK ||
        bastion_call_start(ch, &bastion__v1__auth__descriptor, "WhoAmI", &who.base, co, NULL,
                           NULL, &calls[1]) != BASTION_OK ||
        bastion_call_start(ch, &bastion__v1__mcp__descriptor, "ListTools", &tools.base, co, NULL,
                           NULL, &calls[2]) != BASTION_OK)
        abort();
    for (int i = 0; i < 3; i++)
        check_done(calls[i]);
    bastion_channel_free(ch);
    for (int i = 0; i < n_server_fds; i++)
        close(server_fds[i]);
    return 0;
}
