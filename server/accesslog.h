/* The access log observer of finished calls. */
#ifndef BASTION_SERVER_ACCESSLOG_H
#define BASTION_SERVER_ACCESSLOG_H

#include "call.h"
#include "catalogue.h"

/* Registers the access-log observer (once, at startup). */
void accesslog_install(void);

#endif
