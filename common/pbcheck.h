/* Hostile-input rules for protobuf messages, applied generically from protobuf-c descriptors.
 *
 * protobuf-c 1.4.1 keeps unknown fields at about 42x their wire size, checks no UTF-8 in
 * `string` fields, no enum ranges and no recursion depth. So every message a peer sends is
 * unpacked through a per-call allocator with a byte budget (exceeding it is
 * RESOURCE_EXHAUSTED, never an out-of-memory process), then walked: unknown fields, invalid
 * UTF-8, enum values outside the enum, and repeated fields longer than a cap are
 * INVALID_ARGUMENT with the field path named ("client_info.name: invalid UTF-8"). */
#ifndef BASTION_COMMON_PBCHECK_H
#define BASTION_COMMON_PBCHECK_H

#include "status.h"
#include "text.h"

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* Maximum elements in one repeated field of a message from a peer. */
#define BST_PB_MAX_REPEATED 10000
/* Maximum nesting of sub-messages walked (our protos are not recursive; a test proves it). */
#define BST_PB_MAX_DEPTH 16

/* A ProtobufCAllocator that fails allocations once `used` would pass `cap`. Embed it in the
 * call; it must outlive every message unpacked through it. Not thread-safe (one per call). */
struct bst_pballoc {
    ProtobufCAllocator base; /* pass &a->base to protobuf-c */
    size_t used;             /* bytes currently allocated, including bookkeeping */
    size_t peak;
    size_t cap;
    int exhausted; /* set once an allocation was refused */
};

/* Initialises a with a budget of cap bytes. */
void bst_pballoc_init(struct bst_pballoc *a, size_t cap);

/* Unpacks data[0..len) as message type d through a and validates it with bst_pb_validate().
 * It also refuses a string with an embedded NUL byte, which only the allocator's record of the
 * wire length can show (an unpacked C string has none). On success *out is owned by the caller
 * and freed with bst_pb_free(*out, a). Returns BST_OK; BST_RESOURCE_EXHAUSTED when the
 * allocator budget ran out; BST_INVALID_ARGUMENT for malformed wire data or a failed validation
 * (err says which field). */
enum bst_status bst_pb_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len,
                              struct bst_pballoc *a, ProtobufCMessage **out, struct bst_err *err);

/* Frees a message unpacked by bst_pb_unpack through the same allocator. NULL is a no-op. */
void bst_pb_free(ProtobufCMessage *m, struct bst_pballoc *a);

/* Walks m recursively: no unknown fields, valid UTF-8 in every string, enum values declared by
 * their enum, at most BST_PB_MAX_REPEATED elements per repeated field, depth at most
 * BST_PB_MAX_DEPTH. Returns BST_OK or BST_INVALID_ARGUMENT naming the field path. */
enum bst_status bst_pb_validate(const ProtobufCMessage *m, struct bst_err *err);

/* Returns 1 if the message type d, or any message type reachable from it, contains itself
 * (a recursive schema). Used by a test that walks every descriptor we serve. */
int bst_pb_is_recursive(const ProtobufCMessageDescriptor *d);

#endif
