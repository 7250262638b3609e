/* One status enum shared by every module. Values equal the gRPC status codes, so converting a
 * status to the wire is the identity; bst_status_name() gives the canonical gRPC name and
 * bst_status_str() a sentence for humans. Functions that can fail return an enum bst_status and,
 * where detail helps, fill a caller-provided error buffer (struct bst_err). */
#ifndef BASTION_COMMON_STATUS_H
#define BASTION_COMMON_STATUS_H

#include <stddef.h>

enum bst_status {
    BST_OK = 0,
    BST_CANCELLED = 1,
    BST_UNKNOWN = 2,
    BST_INVALID_ARGUMENT = 3,
    BST_DEADLINE_EXCEEDED = 4,
    BST_NOT_FOUND = 5,
    BST_ALREADY_EXISTS = 6,
    BST_PERMISSION_DENIED = 7,
    BST_RESOURCE_EXHAUSTED = 8,
    BST_FAILED_PRECONDITION = 9,
    BST_ABORTED = 10,
    BST_OUT_OF_RANGE = 11,
    BST_UNIMPLEMENTED = 12,
    BST_INTERNAL = 13,
    BST_UNAVAILABLE = 14,
    BST_DATA_LOSS = 15,
    BST_UNAUTHENTICATED = 16,
};

#define BST_STATUS_MAX BST_UNAUTHENTICATED

/* Detail for a failed operation: the status and a message safe to show to the operator. The
 * message is always NUL-terminated and truncated to fit. */
struct bst_err {
    enum bst_status code;
    char msg[512];
};

/* Returns the canonical gRPC name ("PERMISSION_DENIED"); never NULL. */
const char *bst_status_name(enum bst_status s);

/* Returns a short human sentence for the status; never NULL. */
const char *bst_status_str(enum bst_status s);

/* Sets err (which may be NULL) to code and a printf-style message, and returns code so that
 * callers can write `return bst_errf(err, BST_INVALID_ARGUMENT, "...")`. */
enum bst_status bst_errf(struct bst_err *err, enum bst_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to err->msg (used to add a file name or a field path on the way up). */
void bst_err_prefix(struct bst_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
