/* Reading and verifying an audit directory: the iterator behind `bastion-audit cat`, `tail -f`
 * and `stats`, and the verifier behind `bastion-audit verify`. Both treat the files as hostile:
 * every length is bounded before allocation and every message is unpacked through a capped
 * allocator.
 *
 * The verifier walks every segment in sequence order and checks the chain across segments
 * (each header links to the previous segment's last chain hash), the sequence numbers (gaps,
 * reordering, replays), truncation (a segment that ends inside a frame; an anchor past the
 * end), replaced or renamed segments, missing segments that no retention removed, checkpoints
 * (they must name the record before them) and their Ed25519 signatures. It stops at the first
 * fault and names the segment file, the sequence where the chain breaks and the byte offset. */
#ifndef BASTION_AUDIT_READER_H
#define BASTION_AUDIT_READER_H

#include "format.h"
#include "pbcheck.h"
#include "sign.h"
#include "status.h"

#include "bastion/v1/audit.pb-c.h"
#include "bastion/v1/audit_log.pb-c.h"

#include <stdint.h>
#include <stdio.h>

/* Budget for unpacking one frame's message (protobuf-c keeps unknown fields at ~42x). */
#define AUDIT_UNPACK_BUDGET (64u * 1024 * 1024)

/* ---- Iterating ----------------------------------------------------------------------------- */

struct audit_reader;

/* One frame, valid until the next call on the reader. */
struct audit_item {
    enum audit_frame_kind kind;
    const char *segment; /* file name (no directory) */
    uint64_t offset;     /* of the frame in the segment */
    uint64_t sequence;   /* RECORD: its sequence; CHECKPOINT: the one it covers; HEADER: first */
    unsigned char chain_hash[AUDIT_HASH_LEN]; /* as stored in the envelope */
    const unsigned char *payload;
    size_t payload_len;
    /* The unpacked message of the kind, or NULL when the payload does not parse. */
    const Bastion__V1__AuditRecord *record;
    const Bastion__V1__AuditCheckpoint *checkpoint;
    const Bastion__V1__AuditSegmentHeader *header;
};

/* Opens dir for iteration over its segment files in sequence order. follow: at the end, wait
 * for more (tail -f) instead of ending. On success *out is owned by the caller. Returns BST_OK
 * or BST_NOT_FOUND (no such directory). */
enum bst_status audit_reader_open(struct audit_reader **out, const char *dir, int follow,
                                  struct bst_err *err);

/* Starts at the last segment instead of the first (tail -f shows only what comes next when
 * skip is set: the reader then skips to the end of that segment). */
void audit_reader_start_at_end(struct audit_reader *r, int skip);

/* Returns BST_OK with the next frame in *item; BST_OUT_OF_RANGE at the end (not following);
 * BST_UNAVAILABLE when following and nothing new is complete yet (call again later);
 * BST_DATA_LOSS for a frame that cannot be read (err names the segment and offset; the reader
 * moves on to the next segment); BST_INTERNAL for I/O errors. */
enum bst_status audit_reader_next(struct audit_reader *r, struct audit_item *item,
                                  struct bst_err *err);

/* NULL is a no-op. */
void audit_reader_free(struct audit_reader *r);

/* ---- One segment --------------------------------------------------------------------------- */

enum audit_walk_stop {
    AUDIT_WALK_END = 0, /* clean end of the segment */
    AUDIT_WALK_TORN,    /* the file ends inside a frame (or inside the magic) */
    AUDIT_WALK_FAULT,   /* anything else: why says what */
};

/* State and results of walking one segment. Set the inputs, zero the rest. */
struct audit_walk {
    /* In: the chain head and next sequence the segment must continue from; have_prev = 0 takes
     * both from the segment's header (the first segment seen, or recovery). */
    int have_prev;
    unsigned char prev_hash[AUDIT_HASH_LEN];
    uint64_t next_seq;
    /* In: optional callback for each frame that passed the checks; returning non-zero stops
     * the walk with AUDIT_WALK_FAULT and the message it put in why. */
    int (*on_frame)(void *ctx, const struct audit_item *item, char *why, size_t why_size);
    void *ctx;

    /* Out. */
    int has_header;
    uint64_t header_first_seq;
    uint64_t header_floor; /* retained_from_sequence, 0 when absent */
    unsigned char header_prev[AUDIT_HASH_LEN];
    uint64_t valid_len;    /* bytes of the valid prefix (magic and good frames) */
    uint64_t frames_after; /* complete frames after the valid prefix (0: only a torn one) */
    uint64_t records;      /* records in the valid prefix */
    uint64_t checkpoints;
    unsigned last_kind; /* kind of the last good frame */
    enum audit_walk_stop stop;
    uint64_t fault_offset; /* where the walk stopped */
    uint64_t fault_seq;    /* the sequence expected there */
    char why[400];
    int link_fault; /* the fault is in how the header links to the previous segment */
    /* next_seq and prev_hash are updated as the walk goes: after it, the chain head. */
};

/* Walks the segment open in f (positioned at its start) named name. Returns the stop reason
 * (also in w->stop). */
enum audit_walk_stop audit_walk_segment(FILE *f, const char *name, struct audit_walk *w);

/* ---- Verifying ----------------------------------------------------------------------------- */

struct audit_anchor {
    uint64_t sequence;
    unsigned char hash[AUDIT_HASH_LEN];
};

struct audit_verify_opts {
    const char *dir;
    const struct audit_pubkeys *keys; /* NULL: signatures are not checked */
    const struct audit_anchor *anchors;
    size_t n_anchors;
    int allow_torn_tail; /* a torn end of the last segment (a crash) is a warning, not a fault */
};

struct audit_verify_result {
    int ok;
    /* The first fault (when !ok). */
    char segment[AUDIT_SEGMENT_NAME_LEN + 1];
    uint64_t sequence;
    uint64_t offset;
    char message[512];
    /* Summary. */
    size_t segments;
    uint64_t records;
    uint64_t first_sequence, last_sequence;
    unsigned char head_hash[AUDIT_HASH_LEN]; /* chain hash of the last record */
    uint64_t checkpoints, signed_checkpoints, verified_checkpoints;
    uint64_t last_verified_sequence; /* covered by the last verified signature */
    int torn_tail;                   /* the last segment ends inside a frame */
    uint64_t anchors_checked;
    int genesis;            /* the log starts at sequence 1 with a zero previous hash */
    uint64_t retained_from; /* highest retention floor any header declares */
    char notes[512];        /* warnings that are not faults */
};

/* Verifies opts->dir. Returns BST_OK when the verification ran (res->ok says whether the log is
 * intact), BST_NOT_FOUND for a missing directory, BST_INTERNAL for I/O errors. */
enum bst_status audit_verify(const struct audit_verify_opts *opts, struct audit_verify_result *res,
                             struct bst_err *err);

/* Lists the segment files of dir sorted by first sequence: *names (each malloc'd) and *n. The
 * caller frees each name and the array. Returns BST_OK, BST_NOT_FOUND, BST_RESOURCE_EXHAUSTED. */
enum bst_status audit_list_segments(const char *dir, char ***names, size_t *n, struct bst_err *err);

#endif
