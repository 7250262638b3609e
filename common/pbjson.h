/* The one generic mapping between protobuf-c messages and JSON, driven by descriptors only.
 *
 * Conventions are those of the protobuf JSON mapping, with the .proto field names (never
 * lowerCamel): int64/uint64 (and fixed/sfixed/sint 64) are JSON strings, bytes are standard
 * base64, enums are their value names, absent optional fields are omitted, repeated fields are
 * arrays, messages are objects. Decoding is strict, because its input comes from peers (the
 * MCP bridge, the JSON routes) and from users (`bastion call`): unknown fields, wrong JSON
 * types, out-of-range numbers, unknown enum names, bad base64, strings with NUL bytes or
 * invalid UTF-8 and two members of one oneof are refused with the JSON path named
 * ("list_pods.namespce: unknown field"). Error messages never contain values, only paths and
 * types, so a secret given in the wrong place is not echoed.
 *
 * What descriptors cannot carry (required, bounds, sensitivity, descriptions) comes from a
 * caller-supplied lookup: the server's catalogue answers it from its per-field table. The same
 * lookup drives JSON Schema generation, redaction and bst_pbjson_check(). */
#ifndef BASTION_COMMON_PBJSON_H
#define BASTION_COMMON_PBJSON_H

#include "status.h"

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* What the per-field table says about one field. Every member may be left 0/NULL. */
struct bst_pbjson_field_info {
    int required;        /* must be present; a string must also be non-empty */
    int sensitive;       /* never echoed: omitted by BST_PBJSON_REDACT, writeOnly in schemas */
    int has_bounds;      /* integers: the value lies within [min, max] */
    int64_t min, max;    /* inclusive, when has_bounds */
    size_t max_len;      /* strings and bytes: at most this many bytes; 0 = no limit */
    size_t max_items;    /* repeated fields: at most this many elements; 0 = no limit */
    const char *pattern; /* strings: ECMA-262 regex shown in schemas; NULL = none */
    int (*valid)(const char *s); /* strings: the syntax check the pattern describes; NULL = none */
    const char *syntax;          /* what valid() accepts, for errors: "a DNS-1123 label" */
    const char *default_json;    /* JSON text of the value assumed when absent (schemas only) */
    const char *description;     /* one or two sentences, written for an LLM */
};

/* Returns the table entry for field of message type msg, or NULL when it has none. Called often
 * (once per field visited); must be fast and thread-safe. */
typedef const struct bst_pbjson_field_info *(*bst_pbjson_lookup_fn)(
    const ProtobufCMessageDescriptor *msg, const ProtobufCFieldDescriptor *field, void *arg);

/* Flags for bst_pbjson_encode. */
#define BST_PBJSON_REDACT (1u << 0) /* omit fields the lookup marks sensitive */

/* Nesting and size limits shared by every direction. */
#define BST_PBJSON_MAX_DEPTH 16    /* messages within messages */
#define BST_PBJSON_MAX_ITEMS 10000 /* elements of one repeated field */
#define BST_PBJSON_MAX_KV_KEY 256  /* bytes of one dotted key in bst_pbjson_decode_kv */

/* Encodes m as a JSON object. lookup may be NULL (then nothing is sensitive). Returns a new
 * reference owned by the caller (json_decref), or NULL when out of memory or when m is not a
 * protobuf-c message nested at most BST_PBJSON_MAX_DEPTH deep. */
json_t *bst_pbjson_encode(const ProtobufCMessage *m, bst_pbjson_lookup_fn lookup, void *arg,
                          unsigned flags);

/* Decodes the JSON object in into a new message of type d, allocated through alloc (NULL: the
 * system allocator). Integers are accepted as JSON integers, integral reals or decimal strings,
 * within the range of their type; floats as numbers or decimal strings ("NaN", "Infinity",
 * "-Infinity" included); bools only as true/false; enums only by name; bytes as base64
 * (standard or URL-safe alphabet, padding optional); null as "absent". On success *out is
 * owned by the caller: protobuf_c_message_free_unpacked(*out, alloc). Returns BST_OK,
 * BST_INVALID_ARGUMENT with the path in err, or BST_RESOURCE_EXHAUSTED when alloc refused. */
enum bst_status bst_pbjson_decode(const ProtobufCMessageDescriptor *d, const json_t *in,
                                  ProtobufCAllocator *alloc, ProtobufCMessage **out,
                                  struct bst_err *err);

/* Decodes n `key=value` strings into a new message of type d, like bst_pbjson_decode (same
 * ownership and errors). Keys are field names, dotted for nested messages ("a.b=1"); a repeated
 * scalar field takes one pair per element, in order ("groups=a groups=b"); a field of message
 * type, or an element of a repeated message field, takes a JSON object as its value
 * ('labels={"key":"app","value":"web"}'). Values are typed by the descriptor: text for strings,
 * decimal for numbers, true/false for bools, the value name for enums, base64 for bytes. A
 * non-repeated key given twice, a pair without '=', or an empty key is INVALID_ARGUMENT. */
enum bst_status bst_pbjson_decode_kv(const ProtobufCMessageDescriptor *d, char *const *kv, size_t n,
                                     ProtobufCAllocator *alloc, ProtobufCMessage **out,
                                     struct bst_err *err);

/* Returns the JSON Schema (draft 2020-12) of message type d: "type":"object", its properties
 * with JSON types, integer ranges (narrowed by the lookup's bounds), enums, string lengths and
 * patterns, base64 bytes, arrays with maxItems, nested messages inline, "required",
 * descriptions, defaults, writeOnly for sensitive fields, "additionalProperties": false, and
 * for each oneof a rule that at most one member is present. lookup may be NULL. Returns a new
 * reference (json_decref), or NULL when out of memory or nested deeper than the limit. */
json_t *bst_pbjson_schema(const ProtobufCMessageDescriptor *d, bst_pbjson_lookup_fn lookup,
                          void *arg);

/* Checks m against the lookup's rules, recursively: required fields present (strings
 * non-empty), integers within bounds, strings and bytes within max_len, strings accepted by
 * valid(), repeated fields within max_items. Returns BST_OK or BST_INVALID_ARGUMENT naming the
 * field path and the rule ("scale_deployment.replicas: must be between 0 and 100"), never the
 * value. */
enum bst_status bst_pbjson_check(const ProtobufCMessage *m, bst_pbjson_lookup_fn lookup, void *arg,
                                 struct bst_err *err);

#endif
