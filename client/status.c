/* Status names and sentences, the gRPC mapping of library-local codes, and the version. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

static const struct {
    bastion_status code;
    const char *name;
    const char *text;
} statuses[] = {
    {BASTION_OK, "OK", "success"},
    {BASTION_CANCELLED, "CANCELLED", "the call was cancelled"},
    {BASTION_UNKNOWN, "UNKNOWN", "unknown error"},
    {BASTION_INVALID_ARGUMENT, "INVALID_ARGUMENT", "the server refused the request as invalid"},
    {BASTION_DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED",
     "the deadline expired before the call completed"},
    {BASTION_NOT_FOUND, "NOT_FOUND", "the requested entity was not found"},
    {BASTION_ALREADY_EXISTS, "ALREADY_EXISTS", "the entity already exists"},
    {BASTION_PERMISSION_DENIED, "PERMISSION_DENIED", "the caller is not allowed to do this"},
    {BASTION_RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED", "a resource limit was exceeded"},
    {BASTION_FAILED_PRECONDITION, "FAILED_PRECONDITION",
     "the system is not in a state required for the operation"},
    {BASTION_ABORTED, "ABORTED", "the operation was aborted"},
    {BASTION_OUT_OF_RANGE, "OUT_OF_RANGE", "a value is out of range"},
    {BASTION_UNIMPLEMENTED, "UNIMPLEMENTED", "the server does not implement this method"},
    {BASTION_INTERNAL, "INTERNAL", "internal error"},
    {BASTION_UNAVAILABLE, "UNAVAILABLE", "the service is unavailable"},
    {BASTION_DATA_LOSS, "DATA_LOSS", "unrecoverable data loss"},
    {BASTION_UNAUTHENTICATED, "UNAUTHENTICATED", "the caller could not be authenticated"},
    {BASTION_E_ARGUMENT, "E_ARGUMENT", "invalid argument passed to the library"},
    {BASTION_E_NOMEM, "E_NOMEM", "out of memory"},
    {BASTION_E_CONNECT, "E_CONNECT", "cannot connect to the server"},
    {BASTION_E_TLS, "E_TLS", "TLS handshake or server certificate verification failed"},
    {BASTION_E_PROTOCOL, "E_PROTOCOL", "the server broke the HTTP/2 or gRPC protocol"},
    {BASTION_E_CREDENTIALS, "E_CREDENTIALS", "a CA, certificate or key file could not be loaded"},
    {BASTION_E_CLOSED, "E_CLOSED", "the channel was closed"},
};

#define N_STATUSES (sizeof(statuses) / sizeof(statuses[0]))

const char *bastion_status_name(bastion_status s)
{
    for (size_t i = 0; i < N_STATUSES; i++) {
        if (statuses[i].code == s)
            return statuses[i].name;
    }
    return "UNKNOWN_STATUS";
}

const char *bastion_strerror(bastion_status s)
{
    for (size_t i = 0; i < N_STATUSES; i++) {
        if (statuses[i].code == s)
            return statuses[i].text;
    }
    return "unknown status code";
}

bastion_status bastion_status_grpc(bastion_status s)
{
    switch (s) {
    case BASTION_E_CONNECT:
    case BASTION_E_TLS:
        return BASTION_UNAVAILABLE;
    case BASTION_E_PROTOCOL:
        return BASTION_INTERNAL;
    case BASTION_E_ARGUMENT:
    case BASTION_E_CREDENTIALS:
        return BASTION_INVALID_ARGUMENT;
    case BASTION_E_NOMEM:
        return BASTION_RESOURCE_EXHAUSTED;
    case BASTION_E_CLOSED:
        return BASTION_CANCELLED;
    default:
        return (unsigned)s <= BASTION_UNAUTHENTICATED ? s : BASTION_UNKNOWN;
    }
}

const char *bastion_version(void)
{
    return BASTION_VERSION;
}

unsigned int bastion_version_num(void)
{
    return BASTION_VERSION_NUM;
}

void bcl_errbuf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    if (buf == NULL || len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}
