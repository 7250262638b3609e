/* Tests for client/channel.c, client/tls.c and client/service.c that need no Bastion server:
 * credential loading errors, connection failures (a closed port, a peer that never speaks TLS),
 * deadlines, cancellation, closing a channel with calls pending, argument checks, re-entrancy
 * from completion callbacks and the protoc-c service adapter's failure path. Calls against the
 * real bastiond are in tests/integration/test_client.py. */
#include "internal.h"

#include "bastion/v1/mcp.pb-c.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char pki[256];

static char *pki_file(const char *name)
{
    static char buf[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", pki, name);
    return buf[i];
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A loopback port nobody listens on. */
static int closed_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* A listener that never accepts: the kernel completes the TCP handshake, TLS never starts. */
static int silent_listener(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(fd, 64), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static bastion_channel *channel_to(int port, int64_t connect_timeout_ms)
{
    bastion_options *o;
    bastion_channel *ch = NULL;
    char target[64], err[256];
    ck_assert_int_eq(bastion_options_new(&o), BASTION_OK);
    snprintf(target, sizeof(target), "127.0.0.1:%d", port);
    ck_assert_int_eq(bastion_options_set_target(o, target), BASTION_OK);
    ck_assert_int_eq(bastion_options_set_ca_file(o, pki_file("ca.crt")), BASTION_OK);
    ck_assert_int_eq(
        bastion_options_set_client_cert(o, pki_file("admin.crt"), pki_file("admin.key")),
        BASTION_OK);
    if (connect_timeout_ms > 0)
        ck_assert_int_eq(bastion_options_set_connect_timeout_ms(o, connect_timeout_ms), BASTION_OK);
    ck_assert_msg(bastion_channel_new(&ch, o, err, sizeof(err)) == BASTION_OK, "%s", err);
    bastion_options_free(o);
    return ch;
}

static bastion_status ping(bastion_channel *ch, int64_t deadline_ms, char *msg, size_t msglen)
{
    Bastion__V1__PingRequest req = BASTION__V1__PING_REQUEST__INIT;
    bastion_call_options *co = NULL;
    ProtobufCMessage *resp = NULL;
    bastion_status st;
    ck_assert_int_eq(bastion_call_options_new(&co), BASTION_OK);
    if (deadline_ms > 0)
        ck_assert_int_eq(bastion_call_options_set_deadline_ms(co, deadline_ms), BASTION_OK);
    st = bastion_call_blocking(ch, &bastion__v1__mcp__descriptor, "Ping", &req.base, co, &resp, msg,
                               msglen, NULL);
    ck_assert_ptr_null(resp);
    bastion_call_options_free(co);
    return st;
}

static bastion_status new_channel_err(const char *ca, const char *cert, const char *key, char *err,
                                      size_t errlen)
{
    bastion_options *o;
    bastion_channel *ch = NULL;
    bastion_status st;
    ck_assert_int_eq(bastion_options_new(&o), BASTION_OK);
    ck_assert_int_eq(bastion_options_set_ca_file(o, ca), BASTION_OK);
    if (cert != NULL)
        ck_assert_int_eq(bastion_options_set_client_cert(o, cert, key), BASTION_OK);
    st = bastion_channel_new(&ch, o, err, errlen);
    bastion_options_free(o);
    if (st == BASTION_OK)
        bastion_channel_free(ch);
    else
        ck_assert_ptr_null(ch);
    return st;
}

START_TEST(test_channel_new_names_an_unreadable_ca_file)
{
    char err[512];
    ck_assert_int_eq(new_channel_err("/nonexistent/ca.crt", NULL, NULL, err, sizeof(err)),
                     BASTION_E_CREDENTIALS);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/ca.crt"));
    /* A file without a certificate is refused too. */
    ck_assert_int_eq(new_channel_err(pki_file("admin.key"), NULL, NULL, err, sizeof(err)),
                     BASTION_E_CREDENTIALS);
}
END_TEST

START_TEST(test_channel_new_refuses_a_private_key_readable_by_others)
{
    char err[512], path[512], cmd[1200];
    snprintf(path, sizeof(path), "%s/loose.key", pki);
    snprintf(cmd, sizeof(cmd), "cp %s %s && chmod 0644 %s", pki_file("admin.key"), path, path);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(
        new_channel_err(pki_file("ca.crt"), pki_file("admin.crt"), path, err, sizeof(err)),
        BASTION_E_CREDENTIALS);
    ck_assert_msg(strstr(err, "private key") != NULL && strstr(err, "loose.key") != NULL, "%s",
                  err);
    unlink(path);
}
END_TEST

START_TEST(test_channel_new_refuses_a_key_that_does_not_match_the_certificate)
{
    char err[512];
    ck_assert_int_eq(new_channel_err(pki_file("ca.crt"), pki_file("admin.crt"),
                                     pki_file("viewer.key"), err, sizeof(err)),
                     BASTION_E_CREDENTIALS);
    ck_assert_msg(strstr(err, "does not match") != NULL, "%s", err);
    ck_assert_int_eq(new_channel_err(pki_file("ca.crt"), pki_file("admin.crt"),
                                     pki_file("admin.key"), err, sizeof(err)),
                     BASTION_OK);
}
END_TEST

START_TEST(test_call_to_a_closed_port_fails_fast_with_e_connect)
{
    bastion_channel *ch = channel_to(closed_port(), 0);
    char msg[512];
    int64_t t0 = now_ms();
    ck_assert_int_eq(ping(ch, 0, msg, sizeof(msg)), BASTION_E_CONNECT);
    ck_assert_msg(strstr(msg, "cannot connect") && strstr(msg, "refused"), "%s", msg);
    ck_assert_int_lt(now_ms() - t0, 2000);
    /* Every call tries again: the channel is not stuck in a failed state. */
    ck_assert_int_eq(ping(ch, 0, msg, sizeof(msg)), BASTION_E_CONNECT);
    bastion_channel_free(ch);
}
END_TEST

START_TEST(test_silent_peer_fails_at_the_connect_timeout_with_e_tls)
{
    int port, fd = silent_listener(&port);
    bastion_channel *ch = channel_to(port, 300);
    char msg[512];
    int64_t t0 = now_ms(), dt;
    ck_assert_int_eq(ping(ch, 0, msg, sizeof(msg)), BASTION_E_TLS);
    dt = now_ms() - t0;
    ck_assert_msg(strstr(msg, "timed out after 300 ms") && strstr(msg, "TLS handshake"), "%s", msg);
    ck_assert_int_ge(dt, 250);
    ck_assert_int_lt(dt, 3000);
    bastion_channel_free(ch);
    close(fd);
}
END_TEST

START_TEST(test_deadline_shorter_than_the_call_is_deadline_exceeded)
{
    int port, fd = silent_listener(&port);
    bastion_channel *ch = channel_to(port, 10000);
    char msg[512];
    int64_t t0 = now_ms(), dt;
    ck_assert_int_eq(ping(ch, 200, msg, sizeof(msg)), BASTION_DEADLINE_EXCEEDED);
    dt = now_ms() - t0;
    ck_assert_msg(strstr(msg, "200 ms") != NULL, "%s", msg);
    ck_assert_int_ge(dt, 190);
    ck_assert_int_lt(dt, 3000);
    bastion_channel_free(ch);
    close(fd);
}
END_TEST

struct result {
    pthread_mutex_t lock;
    int n;
    bastion_status last;
    bastion_status nested; /* what a blocking call from inside the callback returned */
    char message[512];
};

static void record(bastion_call *call, bastion_status st, const char *message,
                   ProtobufCMessage *response, void *user)
{
    struct result *r = user;
    (void)call;
    bastion_response_free(response);
    pthread_mutex_lock(&r->lock);
    r->n++;
    r->last = st;
    snprintf(r->message, sizeof(r->message), "%s", message);
    pthread_mutex_unlock(&r->lock);
}

START_TEST(test_cancel_while_connecting_completes_with_cancelled)
{
    int port, fd = silent_listener(&port);
    bastion_channel *ch = channel_to(port, 10000);
    Bastion__V1__PingRequest req = BASTION__V1__PING_REQUEST__INIT;
    struct result r = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, ""};
    bastion_call *call = NULL;
    int64_t t0 = now_ms();

    ck_assert_int_eq(bastion_call_start(ch, &bastion__v1__mcp__descriptor, "Ping", &req.base, NULL,
                                        record, &r, &call),
                     BASTION_OK);
    usleep(50000);
    bastion_call_cancel(call);
    ck_assert_int_eq(bastion_call_wait(call), BASTION_CANCELLED);
    ck_assert_int_lt(now_ms() - t0, 2000);
    ck_assert_int_eq(r.n, 1);
    ck_assert_int_eq(r.last, BASTION_CANCELLED);
    /* Cancelling again, or after completion, changes nothing. */
    bastion_call_cancel(call);
    ck_assert_int_eq(bastion_call_status(call), BASTION_CANCELLED);
    ck_assert_ptr_null(bastion_call_take_response(call));
    bastion_call_release(call);
    bastion_channel_free(ch);
    ck_assert_int_eq(r.n, 1);
    close(fd);
}
END_TEST

START_TEST(test_channel_free_completes_pending_calls_with_e_closed)
{
    int port, fd = silent_listener(&port);
    bastion_channel *ch = channel_to(port, 10000);
    Bastion__V1__PingRequest req = BASTION__V1__PING_REQUEST__INIT;
    struct result r = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, ""};
    bastion_call *held = NULL;

    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(bastion_call_start(ch, &bastion__v1__mcp__descriptor, "Ping", &req.base,
                                            NULL, record, &r, i == 0 ? &held : NULL),
                         BASTION_OK);
    usleep(50000);
    bastion_channel_free(ch);
    ck_assert_int_eq(r.n, 20);
    ck_assert_int_eq(r.last, BASTION_E_CLOSED);
    /* A handle outlives its channel. */
    ck_assert_int_eq(bastion_call_wait(held), BASTION_E_CLOSED);
    bastion_call_cancel(held);
    bastion_call_release(held);
    close(fd);
}
END_TEST

START_TEST(test_call_start_checks_method_request_type_and_size)
{
    bastion_options *o;
    bastion_channel *ch = NULL;
    Bastion__V1__PingRequest ping_req = BASTION__V1__PING_REQUEST__INIT;
    Bastion__V1__ReadResourceRequest read_req = BASTION__V1__READ_RESOURCE_REQUEST__INIT;
    struct result r = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, ""};
    char big[2048];
    bastion_call *call = (bastion_call *)&r;

    ck_assert_int_eq(bastion_options_new(&o), BASTION_OK);
    ck_assert_int_eq(bastion_options_set_ca_file(o, pki_file("ca.crt")), BASTION_OK);
    ck_assert_int_eq(bastion_options_set_max_message_bytes(o, 1024), BASTION_OK);
    ck_assert_int_eq(bastion_channel_new(&ch, o, NULL, 0), BASTION_OK);
    bastion_options_free(o);

    ck_assert_int_eq(bastion_call_start(ch, &bastion__v1__mcp__descriptor, "Nope", &ping_req.base,
                                        NULL, record, &r, &call),
                     BASTION_E_ARGUMENT);
    ck_assert_ptr_null(call);
    ck_assert_int_eq(bastion_call_start(ch, &bastion__v1__mcp__descriptor, "ReadResource",
                                        &ping_req.base, NULL, record, &r, NULL),
                     BASTION_E_ARGUMENT);
    ck_assert_int_eq(bastion_call_start(ch, &bastion__v1__mcp__descriptor, "Ping", &ping_req.base,
                                        NULL, NULL, NULL, NULL),
                     BASTION_E_ARGUMENT);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    read_req.uri = big;
    ck_assert_int_eq(bastion_call_start(ch, &bastion__v1__mcp__descriptor, "ReadResource",
                                        &read_req.base, NULL, record, &r, NULL),
                     BASTION_RESOURCE_EXHAUSTED);
    bastion_channel_free(ch);
    ck_assert_int_eq(r.n, 0); /* nothing started, nothing completed */
}
END_TEST

struct nested {
    struct result r;
    bastion_channel *ch;
    int free_channel;
};

static void nested_blocking(bastion_call *call, bastion_status st, const char *message,
                            ProtobufCMessage *response, void *user)
{
    struct nested *n = user;
    Bastion__V1__PingRequest req = BASTION__V1__PING_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    char err[128];
    n->r.nested = bastion_call_blocking(n->ch, &bastion__v1__mcp__descriptor, "Ping", &req.base,
                                        NULL, &resp, err, sizeof(err), NULL);
    ck_assert_int_eq(bastion_call_wait(call), BASTION_E_ARGUMENT);
    record(call, st, message, response, &n->r);
    if (n->free_channel)
        bastion_channel_free(n->ch); /* from the I/O thread itself */
}

START_TEST(test_blocking_call_from_a_callback_is_refused_not_deadlocked)
{
    struct nested n = {{PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, ""}, NULL, 0};
    Bastion__V1__PingRequest req = BASTION__V1__PING_REQUEST__INIT;
    bastion_call *call = NULL;
    n.ch = channel_to(closed_port(), 0);
    ck_assert_int_eq(bastion_call_start(n.ch, &bastion__v1__mcp__descriptor, "Ping", &req.base,
                                        NULL, nested_blocking, &n, &call),
                     BASTION_OK);
    ck_assert_int_eq(bastion_call_wait(call), BASTION_E_CONNECT);
    ck_assert_int_eq(n.r.nested, BASTION_E_ARGUMENT);
    bastion_call_release(call);
    bastion_channel_free(n.ch);
}
END_TEST

START_TEST(test_channel_free_from_a_callback_finishes_cleanly)
{
    struct nested n = {{PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, ""}, NULL, 1};
    Bastion__V1__PingRequest req = BASTION__V1__PING_REQUEST__INIT;
    bastion_call *call = NULL;
    n.ch = channel_to(closed_port(), 0);
    ck_assert_int_eq(bastion_call_start(n.ch, &bastion__v1__mcp__descriptor, "Ping", &req.base,
                                        NULL, nested_blocking, &n, &call),
                     BASTION_OK);
    ck_assert_int_eq(bastion_call_wait(call), BASTION_E_CONNECT);
    bastion_call_release(call);
    /* The I/O thread exits on its own; give it a moment so the leak checker sees it done. */
    usleep(200000);
    ck_assert_int_eq(n.r.n, 1);
}
END_TEST

static void on_pong(const Bastion__V1__PingResponse *resp, void *data)
{
    int *seen = data;
    *seen = resp == NULL ? 1 : 2;
}

START_TEST(test_service_adapter_gives_the_closure_null_on_failure)
{
    bastion_channel *ch = channel_to(closed_port(), 0);
    ProtobufCService *svc = NULL;
    Bastion__V1__PingRequest req = BASTION__V1__PING_REQUEST__INIT;
    int seen = 0;
    ck_assert_int_eq(bastion_service_new(&svc, ch, &bastion__v1__mcp__descriptor, NULL,
                                         BASTION_SERVICE_BLOCKING),
                     BASTION_OK);
    bastion__v1__mcp__ping(svc, &req, on_pong, &seen);
    ck_assert_int_eq(seen, 1);
    bastion_service_free(svc);
    ck_assert_int_eq(bastion_service_new(&svc, ch, &bastion__v1__mcp__descriptor, NULL, 0x80),
                     BASTION_E_ARGUMENT);
    bastion_channel_free(ch);
}
END_TEST

START_TEST(test_many_calls_fail_fast_when_the_server_is_down)
{
    bastion_channel *ch = channel_to(closed_port(), 0);
    Bastion__V1__PingRequest req = BASTION__V1__PING_REQUEST__INIT;
    bastion_call *calls[50];
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(bastion_call_start(ch, &bastion__v1__mcp__descriptor, "Ping", &req.base,
                                            NULL, NULL, NULL, &calls[i]),
                         BASTION_OK);
    for (int i = 0; i < 50; i++) {
        ck_assert_int_eq(bastion_call_wait(calls[i]), BASTION_E_CONNECT);
        bastion_call_release(calls[i]);
    }
    bastion_channel_free(ch);
}
END_TEST

int main(void)
{
    const char *src = getenv("BASTION_SRC");
    char cmd[1024];
    Suite *s = suite_create("client_channel");
    TCase *tc = tcase_create("channel");
    SRunner *sr;
    int failed;

    snprintf(pki, sizeof(pki), "/tmp/bastion-check-channel-%d", (int)getpid());
    snprintf(cmd, sizeof(cmd), "%s/certs/gen-dev-certs.sh %s >/dev/null",
             src != NULL ? src : "../..", pki);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot generate certificates (%s)\n", cmd);
        return 1;
    }
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_channel_new_names_an_unreadable_ca_file);
    tcase_add_test(tc, test_channel_new_refuses_a_private_key_readable_by_others);
    tcase_add_test(tc, test_channel_new_refuses_a_key_that_does_not_match_the_certificate);
    tcase_add_test(tc, test_call_to_a_closed_port_fails_fast_with_e_connect);
    tcase_add_test(tc, test_silent_peer_fails_at_the_connect_timeout_with_e_tls);
    tcase_add_test(tc, test_deadline_shorter_than_the_call_is_deadline_exceeded);
    tcase_add_test(tc, test_cancel_while_connecting_completes_with_cancelled);
    tcase_add_test(tc, test_channel_free_completes_pending_calls_with_e_closed);
    tcase_add_test(tc, test_call_start_checks_method_request_type_and_size);
    tcase_add_test(tc, test_blocking_call_from_a_callback_is_refused_not_deadlocked);
    tcase_add_test(tc, test_channel_free_from_a_callback_finishes_cleanly);
    tcase_add_test(tc, test_service_adapter_gives_the_closure_null_on_failure);
    tcase_add_test(tc, test_many_calls_fail_fast_when_the_server_is_down);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", pki);
    if (system(cmd) != 0)
        failed++;
    return failed == 0 ? 0 : 1;
}
