/* The audit log's byte format, shared by the writer, the reader/verifier and the fuzz target.
 *
 *   segment    = magic "BSTAUDIT" frame*      (the first frame is a segment header)
 *   frame      = kind:u8 length:u32be payload[length] chain_hash[32]
 *   chain_hash = SHA-256(previous chain_hash || kind || length || payload)
 *
 * The first frame's previous chain hash is the header's previous_hash: the last chain hash of the
 * previous segment, or 32 zero bytes for the first segment ever. Payloads are protobuf messages
 * from proto/bastion/v1/audit_log.proto (header, checkpoint) and audit.proto (record). Segment
 * files are named audit-<first sequence, 20 digits>.seg so that name order is chain order. */
#ifndef BASTION_AUDIT_FORMAT_H
#define BASTION_AUDIT_FORMAT_H

#include "status.h"
#include "text.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define AUDIT_MAGIC "BSTAUDIT"
#define AUDIT_MAGIC_LEN 8
#define AUDIT_FORMAT_VERSION 1
#define AUDIT_FRAME_HEAD 5 /* kind + length */
#define AUDIT_HASH_LEN 32
#define AUDIT_FRAME_OVERHEAD (AUDIT_FRAME_HEAD + AUDIT_HASH_LEN)
/* Largest payload any reader accepts: checked before anything is allocated. */
#define AUDIT_MAX_PAYLOAD (1024 * 1024)
/* "audit-" 20 digits ".seg" */
#define AUDIT_SEGMENT_NAME_LEN 30

enum audit_frame_kind {
    AUDIT_FRAME_HEADER = 1,
    AUDIT_FRAME_RECORD = 2,
    AUDIT_FRAME_CHECKPOINT = 3,
};

/* chain = SHA-256(prev || kind || be32(len) || payload). */
void audit_chain_hash(const unsigned char prev[AUDIT_HASH_LEN], unsigned kind,
                      const unsigned char *payload, size_t len, unsigned char out[AUDIT_HASH_LEN]);

/* Writes the frame for payload into dst (room for len + AUDIT_FRAME_OVERHEAD bytes) chained
 * after prev, stores its chain hash in out, and returns the frame's length. */
size_t audit_frame_encode(unsigned char *dst, unsigned kind, const unsigned char *payload,
                          size_t len, const unsigned char prev[AUDIT_HASH_LEN],
                          unsigned char out[AUDIT_HASH_LEN]);

/* One frame as read from a file. payload points into the reader's buffer. */
struct audit_frame {
    unsigned kind;
    uint64_t offset; /* of the frame's first byte in the file */
    const unsigned char *payload;
    size_t len;
    unsigned char hash[AUDIT_HASH_LEN]; /* as stored in the envelope */
};

enum audit_frame_rc {
    AUDIT_FRAME_OK = 0,
    AUDIT_FRAME_END,       /* clean end of file: no byte after the last frame */
    AUDIT_FRAME_TORN,      /* the file ends inside a frame */
    AUDIT_FRAME_MALFORMED, /* unknown kind or a length above AUDIT_MAX_PAYLOAD */
    AUDIT_FRAME_IO,        /* read error (errno set) */
};

/* A growable buffer the frame reader reuses; zero-initialise, release with audit_buf_free. */
struct audit_buf {
    unsigned char *data;
    size_t len, cap;
};

/* Appends n bytes; returns 0 or -1 when out of memory. */
int audit_buf_put(struct audit_buf *b, const void *p, size_t n);
int audit_buf_putc(struct audit_buf *b, unsigned char c);
int audit_buf_puts(struct audit_buf *b, const char *s);
int audit_buf_printf(struct audit_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void audit_buf_free(struct audit_buf *b);

/* Reads the magic at the start of f. Returns AUDIT_FRAME_OK, AUDIT_FRAME_TORN (short file),
 * AUDIT_FRAME_MALFORMED (other bytes) or AUDIT_FRAME_IO. */
enum audit_frame_rc audit_magic_read(FILE *f);

/* Reads the frame starting at the current position of f, whose file offset is *off; on
 * AUDIT_FRAME_OK advances *off past it. Never allocates more than the frame's declared length,
 * which is bounded by AUDIT_MAX_PAYLOAD. On AUDIT_FRAME_TORN the stream position is left at the
 * end of what could be read; the caller seeks back to *off to retry (tail -f). */
enum audit_frame_rc audit_frame_read(FILE *f, uint64_t *off, struct audit_buf *buf,
                                     struct audit_frame *fr);

/* Segment file names. */
void audit_segment_name(char out[AUDIT_SEGMENT_NAME_LEN + 1], uint64_t first_sequence);
/* Returns 1 and the sequence if name is exactly a segment file name, else 0. */
int audit_segment_name_parse(const char *name, uint64_t *first_sequence);

/* The bytes an Ed25519 checkpoint signature covers (see audit_log.proto). key_id is at most
 * 255 bytes. Returns the length written to out (room for AUDIT_TBS_MAX bytes). */
#define AUDIT_TBS_PREFIX "bastion-audit-checkpoint-v1"
#define AUDIT_TBS_MAX (sizeof(AUDIT_TBS_PREFIX) + 8 + AUDIT_HASH_LEN + 1 + 255)
size_t audit_checkpoint_tbs(unsigned char *out, uint64_t sequence,
                            const unsigned char hash[AUDIT_HASH_LEN], const char *key_id);

/* Parses "SEQ:HASH" (HASH as 64 hex digits or standard base64 of 32 bytes). Returns BST_OK or
 * BST_INVALID_ARGUMENT. */
enum bst_status audit_anchor_parse(const char *text, uint64_t *sequence,
                                   unsigned char hash[AUDIT_HASH_LEN], struct bst_err *err);

#endif
