/* The RPCs bastiond serves (bastion.v1.Mcp, bastion.v1.Auth, grpc.health.v1.Health): one table
 * of methods with their message types and handlers. */
#ifndef BASTION_SERVER_SERVICES_H
#define BASTION_SERVER_SERVICES_H

#include "call.h"

#include <stddef.h>

extern const struct call_method services_methods[];
extern const size_t services_n_methods;

/* Returns the method whose path equals path[0..len) byte for byte, or NULL. */
const struct call_method *services_find(const char *path, size_t len);

/* Health: 1 while serving, 0 once draining (Check then answers NOT_SERVING). */
void services_set_serving(int serving);

/* The MCP protocol revisions Initialize accepts, newest first. */
extern const char *const services_protocol_versions[];

#endif
