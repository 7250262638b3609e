/* Socket-free fuzz target for the HTTP/2 and gRPC layer of bastiond (server/h2.c and everything
 * a request reaches: framing, metadata, protobuf decoding, the call chain, the services). The
 * input follows the HTTP/2 client preface on a libevent bufferevent pair standing in for the
 * TLS transport, as nghttp2's own oss-fuzz target feeds bytes to a server session; a fixed
 * client certificate identity stands for a verified peer. */
#include "accesslog.h"
#include "catalogue.h"
#include "config.h"
#include "log.h"
#include "server.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct server srv;
static struct worker w;
static X509 *peer_cert;

static X509 *make_peer_cert(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"fuzzer", -1, -1,
                               0);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, n);
    X509_set_pubkey(x, k);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_sign(x, k, EVP_sha256());
    X509_NAME_free(n);
    EVP_PKEY_free(k);
    return x;
}

static void init(void)
{
    static const char yaml[] = "tls:\n  cert: /nonexistent.crt\n  key: /nonexistent.key\n"
                               "limits:\n  max_message_bytes: 64KiB\n";
    char path[] = "/tmp/fuzz-h2-XXXXXX";
    int fd = mkstemp(path);
    struct bst_err err;
    struct kube_backend *kube;

    if (fd < 0 || write(fd, yaml, sizeof(yaml) - 1) != (ssize_t)(sizeof(yaml) - 1))
        abort();
    close(fd);
    if (config_load(path, &srv.cfg, &err) != BST_OK) {
        fprintf(stderr, "fuzz_h2: %s\n", err.msg);
        abort();
    }
    unlink(path);
    /* FUZZ_H2_LOG=1 shows the access log, to check that seeds reach the services. */
    bst_log_set_level(getenv("FUZZ_H2_LOG") != NULL ? BST_LOG_INFO : BST_LOG_ERROR);
    if (kube_sim_new(&kube, NULL, &err) != BST_OK)
        abort();
    catalogue_set_backend(kube);
    accesslog_install();
    w.srv = &srv;
    w.base = event_base_new();
    pthread_mutex_init(&w.qlock, NULL);
    peer_cert = make_peer_cert();
    if (w.base == NULL || peer_cert == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    static int ready;
    struct bufferevent *pair[2];

    if (!ready) {
        init();
        ready = 1;
    }
    if (bufferevent_pair_new(w.base, BEV_OPT_CLOSE_ON_FREE, pair) != 0)
        abort();
    bufferevent_enable(pair[1], EV_READ | EV_WRITE);
    h2_serve_transport(&w, pair[0], "fuzz:1", peer_cert);
    bufferevent_write(pair[1], preface, sizeof(preface) - 1);
    bufferevent_write(pair[1], data, size);
    for (int i = 0; i < 16; i++) {
        struct evbuffer *in = bufferevent_get_input(pair[1]);
        evbuffer_drain(in, evbuffer_get_length(in));
        event_base_loop(w.base, EVLOOP_NONBLOCK);
    }
    h2_close_all(&w);
    bufferevent_free(pair[1]);
    event_base_loop(w.base, EVLOOP_NONBLOCK);
    if (w.n_conns != 0 || atomic_load(&srv.n_connections) != 0 ||
        atomic_load(&srv.buffered_bytes) != 0)
        abort(); /* every connection, stream and body budget must be released */
    return 0;
}
