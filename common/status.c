/* Status names and the error-buffer helpers. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

static const char *const texts[] = {
    "success",
    "the operation was cancelled",
    "unknown error",
    "the request is invalid",
    "the deadline expired before the operation completed",
    "the requested entity was not found",
    "the entity already exists",
    "the caller is not allowed to do this",
    "a resource limit was exceeded",
    "the system is not in a state required for the operation",
    "the operation was aborted",
    "a value is out of range",
    "the operation is not implemented",
    "internal error",
    "the service is unavailable",
    "unrecoverable data loss",
    "the caller could not be authenticated",
};

const char *bst_status_name(enum bst_status s)
{
    if ((unsigned)s > BST_STATUS_MAX)
        return "UNKNOWN";
    return names[s];
}

const char *bst_status_str(enum bst_status s)
{
    if ((unsigned)s > BST_STATUS_MAX)
        return texts[BST_UNKNOWN];
    return texts[s];
}

enum bst_status bst_errf(struct bst_err *err, enum bst_status code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

void bst_err_prefix(struct bst_err *err, const char *fmt, ...)
{
    char prefix[256];
    char old[sizeof(err->msg)];
    va_list ap;

    if (err == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    /* Truncation is intended: the message is cut to the buffer, never overflowed. */
    if (snprintf(err->msg, sizeof(err->msg), "%s: ", prefix) < (int)sizeof(err->msg)) {
        size_t used = strlen(err->msg);
        snprintf(err->msg + used, sizeof(err->msg) - used, "%.*s",
                 (int)(sizeof(err->msg) - used - 1), old);
    }
}
