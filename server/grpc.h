/* gRPC over HTTP/2, the parts that are pure functions of bytes: the 5-byte length-prefixed
 * message reader, grpc-timeout parsing, grpc-message encoding and content-type checks. No I/O
 * here, so every rule is unit-tested and fuzzed without sockets. See
 * https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md */
#ifndef BASTION_SERVER_GRPC_H
#define BASTION_SERVER_GRPC_H

#include "status.h"

#include <stddef.h>
#include <stdint.h>

#define GRPC_PREFIX_LEN 5
#define GRPC_MAX_MESSAGE_MESSAGE 256 /* bytes of grpc-message text before encoding */

/* Incremental reader of a unary request body: exactly one length-prefixed message. The prefix
 * is checked before any allocation, so a huge declared length costs nothing. */
struct grpc_reader {
    size_t max_len;    /* largest message accepted */
    int identity_only; /* 1: no grpc-encoding was negotiated, so the flag must be 0 */
    unsigned char hdr[GRPC_PREFIX_LEN];
    size_t hdr_got;
    uint32_t msg_len;
    unsigned char *msg; /* malloc'd, msg_len bytes (NULL for an empty message) */
    size_t msg_got;
    int n_messages; /* complete messages seen */
    int failed;     /* a previous feed failed; further input is ignored */
};

/* Prepares r for one request with the given maximum message size. */
void grpc_reader_init(struct grpc_reader *r, size_t max_len);

/* Frees the message buffer. */
void grpc_reader_dispose(struct grpc_reader *r);

/* Feeds body bytes. Returns BST_OK; BST_RESOURCE_EXHAUSTED when the declared length exceeds
 * max_len (detected from the prefix alone); BST_INTERNAL for a compressed flag without an
 * encoding, a flag other than 0 or 1, or bytes after the first message of a unary call
 * (err says which). */
enum bst_status grpc_reader_feed(struct grpc_reader *r, const unsigned char *data, size_t len,
                                 struct bst_err *err);

/* Called at END_STREAM. Returns BST_OK when exactly one complete message arrived; BST_INTERNAL
 * for none or a truncated one. On success the message is r->msg[0..r->msg_len). */
enum bst_status grpc_reader_finish(struct grpc_reader *r, struct bst_err *err);

/* Parses a grpc-timeout value (1 to 8 ASCII digits and a unit H, M, S, m, u or n) into
 * nanoseconds. Returns 0, or -1 for anything malformed. Never overflows. */
int grpc_timeout_parse(const char *v, size_t len, int64_t *ns);

/* Encodes msg for the grpc-message trailer: truncated to GRPC_MAX_MESSAGE_MESSAGE bytes on a
 * character boundary, invalid UTF-8 replaced, control characters replaced with '?', then
 * percent-encoded (every byte outside 0x20..0x7e, and '%'). Writes a NUL-terminated string of
 * at most dstlen-1 bytes; dstlen >= 3 * GRPC_MAX_MESSAGE_MESSAGE + 1 never truncates. */
void grpc_message_encode(char *dst, size_t dstlen, const char *msg);

/* Returns 1 if a content-type names gRPC with protobuf: "application/grpc" or
 * "application/grpc+proto", optionally followed by ";parameters". */
int grpc_content_type_ok(const char *v, size_t len);

/* Returns 1 if a content-type is any gRPC content type (application/grpc[+...]) — a gRPC
 * request with a codec we do not speak gets a gRPC error rather than HTTP 415. */
int grpc_content_type_is_grpc(const char *v, size_t len);

/* Writes the 5-byte prefix for an uncompressed message of len bytes. */
void grpc_prefix_write(unsigned char out[GRPC_PREFIX_LEN], uint32_t len);

#endif
