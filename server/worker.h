/* Starting, draining and stopping the worker threads. */
#ifndef BASTION_SERVER_WORKER_H
#define BASTION_SERVER_WORKER_H

#include "server.h"

/* Binds one SO_REUSEPORT listener per worker (the first decides the port when it is 0, the
 * others reuse it), creates the loops and starts the threads. srv->port is set. On failure
 * the caller still calls workers_free(). */
enum bst_status workers_start(struct server *srv, struct bst_err *err);

/* Asks every worker to drain (thread-safe): stop accepting, GOAWAY, finish in-flight calls
 * within cfg.drain_timeout, then leave the loop. */
void workers_drain(struct server *srv);

/* Waits for every worker thread to leave its loop. */
void workers_join(struct server *srv);

/* Frees what workers_start created (threads must have been joined). */
void workers_free(struct server *srv);

#endif
