/* The access log: one JSON line per finished call, as a call observer. Never logs request
 * bodies or credentials; the message is the one the caller saw. */
#include "accesslog.h"
#include "clock.h"
#include "log.h"

#include <stdio.h>

static void log_call(const struct call *c)
{
    char dur[24], code[8];
    enum bst_log_level level = c->status == BST_OK ? BST_LOG_INFO : BST_LOG_WARN;
    if (!bst_log_enabled(level))
        return;
    snprintf(dur, sizeof(dur), "%lld", (long long)((bst_mono_ns() - c->start_mono_ns) / 1000));
    snprintf(code, sizeof(code), "%d", (int)c->status);
    bst_log(level, "call", "request_id", c->id.hex, "method", c->path, "peer", c->peer, "principal",
            c->principal.name, "mechanism",
            c->principal.name != NULL ? bst_mechanism_name(c->principal.mechanism) : NULL, "tool",
            c->tool != NULL ? c->tool->name : NULL, "namespace", c->namespace_, "permission",
            c->permission, "status", bst_status_name(c->status), "code", code, "message",
            c->message[0] ? c->message : NULL, "duration_us", dur, NULL);
}

void accesslog_install(void)
{
    call_add_observer(log_call);
}
