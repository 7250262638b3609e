/* The running server: configuration, the shared TLS holder, worker threads with their event
 * loops and listeners, and the HTTP/2 connections each worker owns. */
#ifndef BASTION_SERVER_SERVER_H
#define BASTION_SERVER_SERVER_H

#include "call.h"
#include "config.h"
#include "tls.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <pthread.h>
#include <stdatomic.h>

struct conn;

struct worker {
    struct server *srv;
    int index;
    pthread_t thread;
    struct event_base *base;
    int listen_fd;
    struct evconnlistener *listener;
    struct event *wake_ev;  /* calls resumed from other threads */
    struct event *drain_ev; /* SIGTERM seen by the main thread */
    struct event *drain_deadline_ev;
    pthread_mutex_t qlock;
    struct call *q_head, *q_tail;
    struct conn *conns; /* doubly linked through conn->prev/next */
    size_t n_conns;
    int draining;
};

struct server {
    struct config cfg;
    struct tls_holder *tls;
    struct worker *workers;
    size_t n_workers;
    int port; /* the bound port (useful with port 0) */
    atomic_int n_connections;
    atomic_llong buffered_bytes; /* request bodies held across all connections */
    atomic_int draining;
};

/* Accepts a connection on w (called by the listener). Takes ownership of fd. */
void h2_accept(struct worker *w, int fd, const struct sockaddr *addr, int addrlen);

/* Serves HTTP/2 on an already established transport bev (owned from now on): no TLS, peer_cert
 * (not owned; may be NULL) stands for a verified client certificate. For the socket-free fuzz
 * harness and tests; real connections arrive through h2_accept. */
void h2_serve_transport(struct worker *w, struct bufferevent *bev, const char *peer,
                        X509 *peer_cert);

/* Sends GOAWAY on every connection of w and closes those without open streams. */
void h2_drain(struct worker *w);

/* Closes every connection of w now. */
void h2_close_all(struct worker *w);

/* The host operations of calls carried by HTTP/2 streams. */
extern const struct call_host_ops h2_call_host;

#endif
