/* 128-bit random request ids. Every call gets one at its start; it goes back to the caller in
 * the `x-request-id` response header, into every log line and into the audit record. */
#ifndef BASTION_COMMON_REQID_H
#define BASTION_COMMON_REQID_H

#include "status.h"

#define BST_REQID_BYTES 16
#define BST_REQID_HEX_LEN (2 * BST_REQID_BYTES)

struct bst_reqid {
    unsigned char bytes[BST_REQID_BYTES];
    char hex[BST_REQID_HEX_LEN + 1]; /* lower-case hex, NUL-terminated */
};

/* Fills id from the OpenSSL CSPRNG. Returns BST_OK, or BST_INTERNAL if the RNG fails (the
 * caller must then refuse the call rather than use a predictable id). */
enum bst_status bst_reqid_new(struct bst_reqid *id);

#endif
