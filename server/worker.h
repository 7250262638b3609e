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

/* After the loops have stopped: closes what connections remain and continues the calls other
 * threads resumed since (their streams are gone, so this records and releases them). Call it
 * after stopping each component that can resume calls. */
void workers_finish_resumed(struct server *srv);

/* Frees what workers_start created (threads must have been joined). */
void workers_free(struct server *srv);

#endif
