/* The client side of the gRPC wire rules, as pure functions of bytes: the response state machine
 * (headers, length-prefixed message, trailers), grpc-status and grpc-message parsing, grpc-timeout
 * encoding and metadata checks. No I/O here, so every rule is unit-tested and fuzzed without
 * sockets (tests/unit/client/check_wire.c, tests/fuzz/fuzz_client_resp.c).
 * Everything a server sends is hostile input: sizes are bounded, malformed input is an error
 * with a sentence, and text that reaches the caller is sanitised (bst_text_sanitize). */
#ifndef BASTION_CLIENT_WIRE_H
#define BASTION_CLIENT_WIRE_H

#include <bastion/bastion.h>

#include <stddef.h>
#include <stdint.h>

#define BCL_PREFIX_LEN 5
/* Header-list budget of one response (headers plus trailers), counted as HTTP/2 does: name +
 * value + 32 per field. nghttp2 1.52 enforces no SETTINGS_MAX_HEADER_LIST_SIZE of its own. */
#define BCL_MAX_HEADER_LIST_BYTES (16 * 1024)
#define BCL_MAX_HEADER_FIELDS 100
/* Response headers kept for bastion_call_header(). */
#define BCL_MAX_KEPT_HEADERS 32
#define BCL_MAX_KEPT_VALUE 512
/* Bytes of message text kept for the caller (after decoding and sanitising). */
#define BCL_MESSAGE_MAX 512

/* Which header block a field belongs to. */
enum bcl_block {
    BCL_BLOCK_HEADERS = 0,  /* the response's first HEADERS (may be trailers-only) */
    BCL_BLOCK_TRAILERS = 1, /* a later HEADERS frame */
};

struct bcl_kept_header {
    char *name;
    char *value;
};

/* One unary response as it arrives. */
struct bcl_resp {
    size_t max_msg;  /* largest message accepted */
    int http_status; /* 0 until :status */
    int seen_headers, seen_trailers;
    int content_type_grpc; /* 1: application/grpc[+...][;...] */
    int content_type_seen;
    int grpc_status; /* -1 until grpc-status */
    char message[BCL_MESSAGE_MAX];
    int message_seen;
    size_t hdr_bytes, hdr_fields;
    struct bcl_kept_header kept[BCL_MAX_KEPT_HEADERS];
    size_t n_kept;
    /* Message framing. */
    unsigned char prefix[BCL_PREFIX_LEN];
    size_t prefix_got;
    uint32_t msg_len;
    unsigned char *msg; /* malloc'd, msg_len bytes once the prefix is in (NULL when 0) */
    size_t msg_got;
    int n_messages; /* complete messages */
    /* The first violation: the stream is then reset and the call fails with it. */
    bastion_status error;
    char error_msg[256];
};

/* Prepares r for a response whose messages may be at most max_msg bytes. */
void bcl_resp_init(struct bcl_resp *r, size_t max_msg);

/* Frees what r holds (message buffer, kept headers). r can be initialised again. */
void bcl_resp_dispose(struct bcl_resp *r);

/* One header field of block `block`. Returns 0, or -1 once the response is malformed (r->error
 * and r->error_msg say why; the caller resets the stream). */
int bcl_resp_header(struct bcl_resp *r, enum bcl_block block, const uint8_t *name, size_t namelen,
                    const uint8_t *value, size_t valuelen);

/* The end of a header block (after its last field): checks what the block must contain.
 * end_stream: the block carried END_STREAM. Returns 0 or -1 as above. */
int bcl_resp_block_end(struct bcl_resp *r, enum bcl_block block, int end_stream);

/* Response body bytes (DATA payload). Returns 0 or -1 as above; the declared length is checked
 * against max_msg before any allocation. */
int bcl_resp_data(struct bcl_resp *r, const uint8_t *data, size_t len);

/* The stream is over: ended = 1 when it ended normally (END_STREAM seen), 0 when it was reset
 * with HTTP/2 error code rst_code (or the connection went). Returns the call's status and writes
 * its message (NUL-terminated, sanitised) to msg. On BASTION_OK the response message is
 * r->msg[0..r->msg_len). */
bastion_status bcl_resp_finish(struct bcl_resp *r, int ended, uint32_t rst_code, char *msg,
                               size_t msglen);

/* Returns the value of a kept header, or NULL. */
const char *bcl_resp_find(const struct bcl_resp *r, const char *name);

/* Parses a grpc-status value: 1 to 3 ASCII digits. Codes above 16 become UNKNOWN, as the gRPC
 * spec asks. Returns 0, or -1 for anything malformed. */
int bcl_grpc_status_parse(const uint8_t *v, size_t len, int *out);

/* Decodes a grpc-message value: percent-decoding (a '%' not followed by two hex digits is kept
 * literally, per the spec), then bst_text_sanitize (invalid UTF-8 → U+FFFD, control characters →
 * '?'), truncated on a character boundary to fit dst. Returns the length written. */
size_t bcl_grpc_message_decode(char *dst, size_t dstlen, const uint8_t *v, size_t len);

/* Maps an HTTP status of a response without grpc-status to a gRPC code (gRPC's
 * http-grpc-status-mapping.md): 400 INTERNAL, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED,
 * 404 UNIMPLEMENTED, 429 502 503 504 UNAVAILABLE, anything else UNKNOWN. */
bastion_status bcl_http_status_to_grpc(int http_status);

/* Maps the HTTP/2 error code of a RST_STREAM to a gRPC code (gRPC's PROTOCOL-HTTP2.md). */
bastion_status bcl_rst_to_grpc(uint32_t code);

/* Writes a grpc-timeout value for ns nanoseconds (rounded up, at most 8 digits, the finest unit
 * that fits; at least "1n") into out (at least 10 bytes). */
void bcl_timeout_encode(int64_t ns, char *out, size_t outlen);

/* Returns 1 if name is a metadata key a caller may set (lower-case [a-z0-9._-], not grpc-*, not
 * reserved, not -bin), else 0. */
int bcl_md_name_ok(const char *name);

/* Returns 1 if value is printable ASCII (0x20..0x7e) and at most max bytes, else 0. */
int bcl_md_value_ok(const char *value, size_t max);

#endif
