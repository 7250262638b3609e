/* Test driver for libbastion against the real bastiond: one channel, driven by commands on
 * stdin (one per line), one answer line per command on stdout. tests/integration/test_client.py
 * starts the server, stops, restarts and freezes it between commands, which is how restarts,
 * broken connections, cancellation and deadlines are exercised on a single channel.
 *
 * Usage: client_driver --server HOST:PORT --ca FILE [--cert FILE --key FILE] [--server-name N]
 *                      [--keepalive MS,TIMEOUT_MS] [--connect-timeout MS] [--token T]
 *                      [--api-key K]
 * Commands (answers: "OK <json>" or "ERR <STATUS_NAME> <request-id or -> <message>"):
 *   call [--deadline MS] [--token T] [--api-key K] [--md NAME=VALUE] SERVICE METHOD JSON
 *   concurrent N               N WhoAmI calls at once; "OK {"n":N,"ok":K,"ids":[...]}"
 *   start ID DEADLINE_MS       an async Ping (0: no deadline)
 *   cancel ID / wait ID        cancel it / wait for it and answer with its result
 *   server_deadline            proves the server enforces the grpc-timeout the client sends
 *   stub_blocking / stub_async Ping through protoc-c's generated stub and the adapter
 *   quit */
#include <bastion/bastion.h>

#include "bastion/v1/auth.pb-c.h"
#include "bastion/v1/mcp.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "internal.h"
#include "pbjson.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_PENDING 16

static bastion_channel *ch;

static struct {
    char id[32];
    bastion_call *call;
} pending[MAX_PENDING];

static const ProtobufCServiceDescriptor *service_by_name(const char *name)
{
    static const ProtobufCServiceDescriptor *const all[] = {
        &bastion__v1__mcp__descriptor,
        &bastion__v1__auth__descriptor,
        &grpc__health__v1__health__descriptor,
    };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(all[i]->name, name) == 0)
            return all[i];
    }
    return NULL;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void answer_error(bastion_status st, const char *rid, const char *msg)
{
    printf("ERR %s %s %s\n", bastion_status_name(st), rid != NULL && rid[0] ? rid : "-", msg);
}

static void answer_message(const ProtobufCMessage *m)
{
    json_t *j = bst_pbjson_encode(m, NULL, NULL, 0);
    char *s = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    printf("OK %s\n", s != NULL ? s : "null");
    free(s);
    json_decref(j);
}

static void answer_call(bastion_call *call)
{
    bastion_status st = bastion_call_status(call);
    if (st == BASTION_OK) {
        ProtobufCMessage *m = bastion_call_take_response(call);
        answer_message(m);
        bastion_response_free(m);
    } else {
        answer_error(st, bastion_call_header(call, "x-request-id"), bastion_call_message(call));
    }
}

static void cmd_call(char **tok, int n)
{
    bastion_call_options *co = NULL;
    const ProtobufCServiceDescriptor *svc;
    const ProtobufCMethodDescriptor *md;
    ProtobufCMessage *req = NULL, *resp = NULL;
    struct bst_err err = {0, ""};
    json_error_t je;
    json_t *j;
    char msg[512], rid[40];
    bastion_status st;
    int i = 1;

    bastion_call_options_new(&co);
    for (; i + 1 < n && strncmp(tok[i], "--", 2) == 0; i += 2) {
        if (strcmp(tok[i], "--deadline") == 0) {
            st = bastion_call_options_set_deadline_ms(co, strtoll(tok[i + 1], NULL, 10));
        } else if (strcmp(tok[i], "--token") == 0) {
            st = bastion_call_options_set_bearer_token(co, tok[i + 1]);
        } else if (strcmp(tok[i], "--api-key") == 0) {
            st = bastion_call_options_set_api_key(co, tok[i + 1]);
        } else if (strcmp(tok[i], "--md") == 0) {
            char *eq = strchr(tok[i + 1], '=');
            if (eq == NULL) {
                st = BASTION_E_ARGUMENT;
            } else {
                *eq = '\0';
                st = bastion_call_options_add_metadata(co, tok[i + 1], eq + 1);
            }
        } else {
            st = BASTION_E_ARGUMENT;
        }
        if (st != BASTION_OK) {
            answer_error(st, NULL, "bad call option");
            goto out;
        }
    }
    if (n - i != 3) {
        answer_error(BASTION_E_ARGUMENT, NULL, "usage: call [opts] SERVICE METHOD JSON");
        goto out;
    }
    svc = service_by_name(tok[i]);
    md = svc != NULL ? protobuf_c_service_descriptor_get_method_by_name(svc, tok[i + 1]) : NULL;
    if (md == NULL) {
        answer_error(BASTION_E_ARGUMENT, NULL, "unknown service or method");
        goto out;
    }
    j = json_loads(tok[i + 2], 0, &je);
    if (j == NULL || bst_pbjson_decode(md->input, j, NULL, &req, &err) != BST_OK) {
        json_decref(j);
        answer_error(BASTION_E_ARGUMENT, NULL, err.msg[0] ? err.msg : je.text);
        goto out;
    }
    json_decref(j);
    st = bastion_call_blocking(ch, svc, md->name, req, co, &resp, msg, sizeof(msg), rid);
    if (st == BASTION_OK)
        answer_message(resp);
    else
        answer_error(st, rid, msg);
out:
    bastion_response_free(resp);
    protobuf_c_message_free_unpacked(req, NULL);
    bastion_call_options_free(co);
}

static void cmd_concurrent(int n)
{
    Bastion__V1__WhoAmIRequest req = BASTION__V1__WHO_AM_IREQUEST__INIT;
    bastion_call **calls = calloc((size_t)n, sizeof(*calls));
    json_t *ids = json_array(), *j;
    int ok = 0;
    char *s;

    for (int i = 0; i < n; i++) {
        if (bastion_call_start(ch, &bastion__v1__auth__descriptor, "WhoAmI", &req.base, NULL, NULL,
                               NULL, &calls[i]) != BASTION_OK) {
            calls[i] = NULL;
        }
    }
    for (int i = 0; i < n; i++) {
        ProtobufCMessage *m;
        if (calls[i] == NULL || bastion_call_wait(calls[i]) != BASTION_OK) {
            if (calls[i] != NULL)
                fprintf(stderr, "call %d: %s %s\n", i,
                        bastion_status_name(bastion_call_status(calls[i])),
                        bastion_call_message(calls[i]));
            bastion_call_release(calls[i]);
            continue;
        }
        m = bastion_call_take_response(calls[i]);
        ok++;
        json_array_append_new(ids, json_string(((Bastion__V1__WhoAmIResponse *)m)->request_id));
        bastion_response_free(m);
        bastion_call_release(calls[i]);
    }
    j = json_pack("{s:i,s:i,s:o}", "n", n, "ok", ok, "ids", ids);
    s = json_dumps(j, JSON_COMPACT);
    printf("OK %s\n", s);
    free(s);
    json_decref(j);
    free(calls);
}

static int slot(const char *id, int create)
{
    for (int i = 0; i < MAX_PENDING; i++) {
        if (pending[i].call != NULL && strcmp(pending[i].id, id) == 0)
            return i;
    }
    if (!create)
        return -1;
    for (int i = 0; i < MAX_PENDING; i++) {
        if (pending[i].call == NULL) {
            snprintf(pending[i].id, sizeof(pending[i].id), "%s", id);
            return i;
        }
    }
    return -1;
}

static void cmd_start(const char *id, int64_t deadline_ms)
{
    Bastion__V1__PingRequest req = BASTION__V1__PING_REQUEST__INIT;
    bastion_call_options *co = NULL;
    int i = slot(id, 1);
    bastion_status st;
    if (i < 0) {
        answer_error(BASTION_E_ARGUMENT, NULL, "no free slot");
        return;
    }
    bastion_call_options_new(&co);
    bastion_call_options_set_deadline_ms(co, deadline_ms);
    st = bastion_call_start(ch, &bastion__v1__mcp__descriptor, "Ping", &req.base, co, NULL, NULL,
                            &pending[i].call);
    bastion_call_options_free(co);
    if (st != BASTION_OK)
        answer_error(st, NULL, "start failed");
    else
        printf("OK {}\n");
}

/* Holds the I/O thread inside a completion callback, so the next call reaches the wire only
 * after its deadline has passed. */
static pthread_mutex_t hold = PTHREAD_MUTEX_INITIALIZER;
static int held; /* the callback is running (atomic) */

static void held_done(bastion_call *call, bastion_status st, const char *message,
                      ProtobufCMessage *response, void *user)
{
    (void)call;
    (void)st;
    (void)message;
    (void)user;
    bastion_response_free(response);
    __atomic_store_n(&held, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&hold);
    pthread_mutex_unlock(&hold);
}

static void cmd_server_deadline(void)
{
    Bastion__V1__PingRequest req = BASTION__V1__PING_REQUEST__INIT;
    bastion_call_options *co = NULL;
    bastion_call *blocker = NULL, *call = NULL;
    int64_t t0;

    /* The local timer would fire first; give the server 10 s to answer on its own. */
    bcl_test_deadline_slack_ns = INT64_C(10000000000);
    bastion_call_options_new(&co);
    bastion_call_options_set_deadline_ms(co, 1);
    pthread_mutex_lock(&hold);
    bastion_call_start(ch, &bastion__v1__mcp__descriptor, "Ping", &req.base, NULL, held_done, NULL,
                       &blocker);
    for (int i = 0; i < 3000 && !__atomic_load_n(&held, __ATOMIC_SEQ_CST); i++)
        usleep(1000); /* until the blocker's callback waits on `hold` */
    __atomic_store_n(&held, 0, __ATOMIC_SEQ_CST);
    t0 = now_ms();
    bastion_call_start(ch, &bastion__v1__mcp__descriptor, "Ping", &req.base, co, NULL, NULL, &call);
    usleep(20000); /* the 1 ms deadline passes while the I/O thread is held */
    pthread_mutex_unlock(&hold);
    bastion_call_wait(blocker);
    bastion_call_wait(call);
    bcl_test_deadline_slack_ns = 0;
    if (bastion_call_status(call) == BASTION_OK) {
        answer_call(call);
    } else {
        char msg[600];
        snprintf(msg, sizeof(msg), "%s (after %lld ms)", bastion_call_message(call),
                 (long long)(now_ms() - t0));
        answer_error(bastion_call_status(call), bastion_call_header(call, "x-request-id"), msg);
    }
    bastion_call_release(blocker);
    bastion_call_release(call);
    bastion_call_options_free(co);
}

static void stub_done(const Bastion__V1__PingResponse *resp, void *data)
{
    int *state = data;
    __atomic_store_n(state, resp != NULL ? 2 : 1, __ATOMIC_SEQ_CST);
}

static void cmd_stub(int blocking)
{
    ProtobufCService *svc = NULL;
    Bastion__V1__PingRequest req = BASTION__V1__PING_REQUEST__INIT;
    int state = 0;
    if (bastion_service_new(&svc, ch, &bastion__v1__mcp__descriptor, NULL,
                            blocking ? BASTION_SERVICE_BLOCKING : 0) != BASTION_OK) {
        answer_error(BASTION_E_NOMEM, NULL, "adapter");
        return;
    }
    bastion__v1__mcp__ping(svc, &req, stub_done, &state);
    if (!blocking) {
        for (int i = 0; i < 1000 && __atomic_load_n(&state, __ATOMIC_SEQ_CST) == 0; i++)
            usleep(10000);
    }
    if (state == 2)
        printf("OK {\"closure\":\"response\"}\n");
    else
        answer_error(BASTION_UNKNOWN, NULL, state == 1 ? "closure got NULL" : "no closure");
    protobuf_c_service_destroy(svc);
}

int main(int argc, char **argv)
{
    bastion_options *o = NULL;
    const char *cert = NULL, *key = NULL;
    char line[65536], err[512];

    setvbuf(stdout, NULL, _IOLBF, 0);
    bastion_options_new(&o);
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        bastion_status st = BASTION_OK;
        if (strcmp(a, "--server") == 0)
            st = bastion_options_set_target(o, v);
        else if (strcmp(a, "--ca") == 0)
            st = bastion_options_set_ca_file(o, v);
        else if (strcmp(a, "--cert") == 0)
            cert = v;
        else if (strcmp(a, "--key") == 0)
            key = v;
        else if (strcmp(a, "--token") == 0)
            st = bastion_options_set_bearer_token(o, v);
        else if (strcmp(a, "--api-key") == 0)
            st = bastion_options_set_api_key(o, v);
        else if (strcmp(a, "--server-name") == 0)
            st = bastion_options_set_server_name(o, v);
        else if (strcmp(a, "--connect-timeout") == 0)
            st = bastion_options_set_connect_timeout_ms(o, strtoll(v, NULL, 10));
        else if (strcmp(a, "--keepalive") == 0)
            st = bastion_options_set_keepalive(
                o, strtoll(v, NULL, 10),
                strtoll(strchr(v, ',') ? strchr(v, ',') + 1 : v, NULL, 10));
        else
            st = BASTION_E_ARGUMENT;
        if (st != BASTION_OK) {
            fprintf(stderr, "client_driver: bad option %s %s\n", a, v);
            return 2;
        }
    }
    if (cert != NULL && bastion_options_set_client_cert(o, cert, key) != BASTION_OK)
        return 2;
    if (bastion_channel_new(&ch, o, err, sizeof(err)) != BASTION_OK) {
        fprintf(stderr, "client_driver: %s\n", err);
        return 2;
    }
    bastion_options_free(o);
    printf("READY\n");

    while (fgets(line, sizeof(line), stdin) != NULL) {
        char *tok[16];
        int n = 0;
        char *p = line;
        line[strcspn(line, "\n")] = '\0';
        /* Split on spaces; the last token of `call` (JSON) keeps its spaces. */
        while (*p != '\0' && n < 16) {
            while (*p == ' ')
                p++;
            if (*p == '\0')
                break;
            tok[n++] = p;
            if (*p == '{' || *p == '[')
                break;
            p += strcspn(p, " ");
            if (*p == ' ')
                *p++ = '\0';
        }
        if (n == 0)
            continue;
        if (strcmp(tok[0], "quit") == 0)
            break;
        if (strcmp(tok[0], "call") == 0) {
            cmd_call(tok, n);
        } else if (strcmp(tok[0], "concurrent") == 0 && n == 2) {
            long v = strtol(tok[1], NULL, 10);
            cmd_concurrent(v > 0 && v <= 10000 ? (int)v : 1);
        } else if (strcmp(tok[0], "start") == 0 && n == 3) {
            cmd_start(tok[1], strtoll(tok[2], NULL, 10));
        } else if ((strcmp(tok[0], "cancel") == 0 || strcmp(tok[0], "wait") == 0) && n == 2) {
            int i = slot(tok[1], 0);
            if (i < 0) {
                answer_error(BASTION_E_ARGUMENT, NULL, "no such call");
            } else if (tok[0][0] == 'c') {
                bastion_call_cancel(pending[i].call);
                printf("OK {}\n");
            } else {
                bastion_call_wait(pending[i].call);
                answer_call(pending[i].call);
                bastion_call_release(pending[i].call);
                pending[i].call = NULL;
            }
        } else if (strcmp(tok[0], "server_deadline") == 0) {
            cmd_server_deadline();
        } else if (strcmp(tok[0], "stub_blocking") == 0) {
            cmd_stub(1);
        } else if (strcmp(tok[0], "stub_async") == 0) {
            cmd_stub(0);
        } else {
            answer_error(BASTION_E_ARGUMENT, NULL, "unknown command");
        }
    }
    for (int i = 0; i < MAX_PENDING; i++)
        bastion_call_release(pending[i].call);
    bastion_channel_free(ch);
    return 0;
}
