/* Worker threads: each runs its own event loop with its own SO_REUSEPORT listener, owns the
 * connections it accepted, and continues calls that other threads resumed. */
#include "log.h"
#include "server.h"
#include "worker.h"

#include <errno.h>
#include <event2/thread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct call *q;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&w->qlock);
    q = w->q_head;
    w->q_head = w->q_tail = NULL;
    pthread_mutex_unlock(&w->qlock);
    while (q != NULL) {
        struct call *next = q->next_ready;
        q->next_ready = NULL;
        call_continue(q);
        call_unref(q); /* the reference the chain took when the stage went pending */
        q = next;
    }
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr, int len,
                      void *arg)
{
    int one = 1;
    (void)l;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    h2_accept(arg, fd, addr, len);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    int e = EVUTIL_SOCKET_ERROR();
    (void)l;
    (void)arg;
    /* EMFILE and friends: keep serving the connections we have. */
    bst_log(BST_LOG_WARN, "accept_failed", "error", evutil_socket_error_to_string(e), NULL);
}

static void drain_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    if (w->n_conns > 0)
        bst_log(BST_LOG_WARN, "drain_deadline", "detail",
                "closing connections with calls still in flight", NULL);
    h2_close_all(w);
    event_base_loopexit(w->base, NULL);
}

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    int64_t ms = w->srv->cfg.drain_timeout_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    (void)fd;
    (void)what;
    if (w->draining)
        return;
    w->draining = 1;
    if (w->listener != NULL) {
        evconnlistener_free(w->listener); /* closes our listening socket */
        w->listener = NULL;
    }
    h2_drain(w);
    if (w->n_conns == 0) {
        event_base_loopexit(w->base, NULL);
        return;
    }
    w->drain_deadline_ev = evtimer_new(w->base, drain_deadline_cb, w);
    if (w->drain_deadline_ev != NULL)
        evtimer_add(w->drain_deadline_ev, &tv);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    /* The loop ends only through event_base_loopexit (drain), never for lack of events:
     * wake_ev and drain_ev are activated from other threads without being added. */
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* Opens a listening socket with SO_REUSEPORT on addr; returns the fd or -1. */
static int listen_socket(const struct addrinfo *ai, struct bst_err *err)
{
    int one = 1;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        bst_errf(err, BST_UNAVAILABLE, "socket: %s", strerror(errno));
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 512) != 0) {
        bst_errf(err, BST_UNAVAILABLE, "cannot listen: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Splits "host:port" or "[v6]:port". */
static enum bst_status split_listen(const char *listen, char *host, size_t hl, char *port,
                                    size_t pl, struct bst_err *err)
{
    const char *colon;
    if (listen[0] == '[') {
        const char *close_br = strchr(listen, ']');
        if (close_br == NULL || close_br[1] != ':')
            goto bad;
        if ((size_t)(close_br - listen - 1) >= hl)
            goto bad;
        memcpy(host, listen + 1, (size_t)(close_br - listen - 1));
        host[close_br - listen - 1] = '\0';
        colon = close_br + 1;
    } else {
        colon = strrchr(listen, ':');
        if (colon == NULL || (size_t)(colon - listen) >= hl)
            goto bad;
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = '\0';
    }
    if (strlen(colon + 1) == 0 || strlen(colon + 1) >= pl)
        goto bad;
    snprintf(port, pl, "%s", colon + 1);
    return BST_OK;
bad:
    return bst_errf(err, BST_INVALID_ARGUMENT,
                    "listen: '%s' is not host:port (IPv6 as [addr]:port)", listen);
}

enum bst_status workers_start(struct server *srv, struct bst_err *err)
{
    struct addrinfo hints, *ai = NULL;
    char host[256], port[16];
    size_t n = (size_t)srv->cfg.workers;
    int rc;

    if (n == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (size_t)cores : 1;
    }
    if (split_listen(srv->cfg.listen, host, sizeof(host), port, sizeof(port), err) != BST_OK)
        return err->code;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0)
        return bst_errf(err, BST_INVALID_ARGUMENT, "listen: '%s': %s", srv->cfg.listen,
                        gai_strerror(rc));
    evthread_use_pthreads();
    srv->workers = calloc(n, sizeof(*srv->workers));
    if (srv->workers == NULL) {
        freeaddrinfo(ai);
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    }
    srv->n_workers = n;
    for (size_t i = 0; i < n; i++) {
        struct worker *w = &srv->workers[i];
        w->srv = srv;
        w->index = (int)i;
        w->listen_fd = -1;
        pthread_mutex_init(&w->qlock, NULL);
    }
    /* The first socket decides the port (port 0 picks one); the others bind to the same. */
    for (size_t i = 0; i < n; i++) {
        struct worker *w = &srv->workers[i];
        if (i == 1) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof(ss);
            getsockname(srv->workers[0].listen_fd, (struct sockaddr *)&ss, &sl);
            srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                       : ((struct sockaddr_in *)&ss)->sin_port);
            if (ai->ai_family == AF_INET6)
                ((struct sockaddr_in6 *)ai->ai_addr)->sin6_port = htons((uint16_t)srv->port);
            else
                ((struct sockaddr_in *)ai->ai_addr)->sin_port = htons((uint16_t)srv->port);
        }
        w->listen_fd = listen_socket(ai, err);
        if (w->listen_fd < 0) {
            freeaddrinfo(ai);
            return err->code;
        }
    }
    if (n == 1) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        getsockname(srv->workers[0].listen_fd, (struct sockaddr *)&ss, &sl);
        srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
    }
    freeaddrinfo(ai);
    for (size_t i = 0; i < n; i++) {
        struct worker *w = &srv->workers[i];
        w->base = event_base_new();
        if (w->base == NULL)
            return bst_errf(err, BST_INTERNAL, "cannot create an event loop");
        w->listener = evconnlistener_new(
            w->base, accept_cb, w, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, w->listen_fd);
        w->wake_ev = event_new(w->base, -1, EV_PERSIST, wake_cb, w);
        w->drain_ev = event_new(w->base, -1, 0, drain_cb, w);
        if (w->listener == NULL || w->wake_ev == NULL || w->drain_ev == NULL)
            return bst_errf(err, BST_INTERNAL, "cannot set up worker %zu", i);
        w->listen_fd = -1; /* owned by the listener now */
        evconnlistener_set_error_cb(w->listener, accept_error_cb);
    }
    for (size_t i = 0; i < n; i++) {
        sigset_t all, old;
        sigfillset(&all);
        /* Workers never handle signals; the main thread does. */
        pthread_sigmask(SIG_BLOCK, &all, &old);
        rc = pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc != 0)
            return bst_errf(err, BST_INTERNAL, "cannot start worker %zu: %s", i, strerror(rc));
    }
    return BST_OK;
}

void workers_drain(struct server *srv)
{
    for (size_t i = 0; i < srv->n_workers; i++)
        event_active(srv->workers[i].drain_ev, EV_TIMEOUT, 1);
}

void workers_join(struct server *srv)
{
    for (size_t i = 0; i < srv->n_workers; i++)
        pthread_join(srv->workers[i].thread, NULL);
}

void workers_finish_resumed(struct server *srv)
{
    for (size_t i = 0; i < srv->n_workers; i++) {
        struct worker *w = &srv->workers[i];
        h2_close_all(w);
        if (w->wake_ev != NULL)
            wake_cb(-1, 0, w);
    }
}

void workers_free(struct server *srv)
{
    for (size_t i = 0; i < srv->n_workers; i++) {
        struct worker *w = &srv->workers[i];
        h2_close_all(w);
        if (w->wake_ev != NULL)
            wake_cb(-1, 0, w);
        if (w->listener != NULL)
            evconnlistener_free(w->listener);
        if (w->listen_fd >= 0)
            close(w->listen_fd);
        if (w->wake_ev != NULL)
            event_free(w->wake_ev);
        if (w->drain_ev != NULL)
            event_free(w->drain_ev);
        if (w->drain_deadline_ev != NULL)
            event_free(w->drain_deadline_ev);
        if (w->base != NULL)
            event_base_free(w->base);
        pthread_mutex_destroy(&w->qlock);
    }
    free(srv->workers);
    srv->workers = NULL;
    srv->n_workers = 0;
}
