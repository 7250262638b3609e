/* The audit stage: one AuditRecord per call that reached the server (request events, plus the
 * authentication and authorization events the audit config asks for), submitted as the call's
 * recorder so that in blocking mode the response waits until the record is durable, and one
 * connection record per refused TLS handshake. */
#ifndef BASTION_SERVER_AUDITLOG_H
#define BASTION_SERVER_AUDITLOG_H

#include "call.h"

struct audit;

/* Installs the audit writer (not owned) as the calls' recorder; NULL uninstalls it. */
void auditlog_install(struct audit *a);

/* The recorder (see call_set_recorder): submits the call's records and waits for the writer. */
enum call_next auditlog_record(struct call *c);

/* Records a refused connection (no call exists): TLS handshake failures, ALPN, limits. */
void auditlog_connection(const char *peer, const char *reason, const char *detail);

#endif
