/* Example: calling Bastion from C with the installed libbastion.
 *
 * Build against an installed library only:
 *     cc -std=c11 ping.c -o ping $(pkg-config --cflags --libs bastion)
 * Run:
 *     ./ping localhost:8443 certs/dev/ca.crt certs/dev/admin.crt certs/dev/admin.key
 *
 * It shows the three ways to call: protoc-c's generated stub through the service adapter
 * (Mcp.Ping), the blocking call API with a deadline (Auth.WhoAmI), and an asynchronous call
 * with a completion callback (Mcp.ListTools). */
#include <bastion/bastion.h>
#include <bastion/v1/auth.pb-c.h>
#include <bastion/v1/mcp.pb-c.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* Closures of generated stubs get the response (borrowed) or NULL on any failure. */
static void on_pong(const Bastion__V1__PingResponse *resp, void *data)
{
    *(int *)data = resp != NULL;
}

/* Async completion: runs on the channel's I/O thread; it must not block. */
struct tools_result {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    int done;
    size_t n_tools;
    bastion_status status;
};

static void on_tools(bastion_call *call, bastion_status status, const char *message,
                     ProtobufCMessage *response, void *user)
{
    struct tools_result *r = user;
    (void)call;
    (void)message;
    pthread_mutex_lock(&r->lock);
    r->status = status;
    if (status == BASTION_OK)
        r->n_tools = ((Bastion__V1__ListToolsResponse *)response)->n_tools;
    r->done = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->lock);
    bastion_response_free(response); /* the callback owns the response */
}

int main(int argc, char **argv)
{
    bastion_options *opts = NULL;
    bastion_channel *ch = NULL;
    bastion_call_options *co = NULL;
    ProtobufCService *mcp = NULL;
    Bastion__V1__PingRequest ping = BASTION__V1__PING_REQUEST__INIT;
    Bastion__V1__WhoAmIRequest who = BASTION__V1__WHO_AM_IREQUEST__INIT;
    Bastion__V1__ListToolsRequest list = BASTION__V1__LIST_TOOLS_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    struct tools_result tools = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};
    char err[512], request_id[33];
    int pong = 0, rc = 1;
    bastion_status st;

    if (argc != 5) {
        fprintf(stderr, "usage: %s HOST:PORT CA_FILE CERT_FILE KEY_FILE\n", argv[0]);
        return 2;
    }
    if (bastion_version_num() != BASTION_VERSION_NUM)
        fprintf(stderr, "note: built with libbastion %s, running with %s\n", BASTION_VERSION,
                bastion_version());

    /* Options are copied by the channel and can be freed right away. */
    if (bastion_options_new(&opts) != BASTION_OK ||
        bastion_options_set_target(opts, argv[1]) != BASTION_OK ||
        bastion_options_set_ca_file(opts, argv[2]) != BASTION_OK ||
        bastion_options_set_client_cert(opts, argv[3], argv[4]) != BASTION_OK ||
        bastion_options_set_default_deadline_ms(opts, 10000) != BASTION_OK) {
        fprintf(stderr, "invalid options\n");
        goto out;
    }
    st = bastion_channel_new(&ch, opts, err, sizeof(err));
    if (st != BASTION_OK) {
        fprintf(stderr, "%s: %s\n", bastion_status_name(st), err);
        goto out;
    }

    /* 1. A generated stub over the adapter (blocking: the closure runs before it returns). */
    if (bastion_service_new(&mcp, ch, &bastion__v1__mcp__descriptor, NULL,
                            BASTION_SERVICE_BLOCKING) != BASTION_OK)
        goto out;
    bastion__v1__mcp__ping(mcp, &ping, on_pong, &pong);
    if (!pong) {
        fprintf(stderr, "ping failed (the stub carries no status; see the calls below)\n");
        goto out;
    }
    printf("pong\n");

    /* 2. The blocking call API: status, message and the server's request id. */
    if (bastion_call_options_new(&co) != BASTION_OK ||
        bastion_call_options_set_deadline_ms(co, 2000) != BASTION_OK)
        goto out;
    st = bastion_call_blocking(ch, &bastion__v1__auth__descriptor, "WhoAmI", &who.base, co, &resp,
                               err, sizeof(err), request_id);
    if (st != BASTION_OK) {
        fprintf(stderr, "%s: %s\n", bastion_status_name(st), err);
        goto out;
    }
    {
        const Bastion__V1__Principal *p = ((Bastion__V1__WhoAmIResponse *)resp)->principal;
        printf("principal %s (request %s)\n", p != NULL && p->name != NULL ? p->name : "-",
               request_id);
    }
    bastion_response_free(resp);

    /* 3. An asynchronous call: the callback runs on the channel's I/O thread. */
    st = bastion_call_start(ch, &bastion__v1__mcp__descriptor, "ListTools", &list.base, NULL,
                            on_tools, &tools, NULL);
    if (st != BASTION_OK)
        goto out;
    pthread_mutex_lock(&tools.lock);
    while (!tools.done)
        pthread_cond_wait(&tools.cv, &tools.lock);
    pthread_mutex_unlock(&tools.lock);
    if (tools.status != BASTION_OK) {
        fprintf(stderr, "ListTools: %s\n", bastion_strerror(tools.status));
        goto out;
    }
    printf("%zu tools\n", tools.n_tools);
    rc = 0;
out:
    bastion_service_free(mcp);
    bastion_call_options_free(co);
    bastion_channel_free(ch);
    bastion_options_free(opts);
    return rc;
}
