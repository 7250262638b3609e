/* Tests for common/pbcheck.c: the capped allocator, unpacking hostile wire bytes, the generic
 * validation walk (UTF-8 in strings included), and the schema recursion check. Wire bytes are
 * built by hand so that each test says exactly what a peer sent. */
#include "pbcheck.h"

#include "bastion/v1/audit.pb-c.h"
#include "bastion/v1/auth.pb-c.h"
#include "bastion/v1/mcp.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"

#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB (1024u * 1024u)

/* ---- Wire builder --------------------------------------------------------------------------- */

enum { WT_VARINT = 0, WT_64BIT = 1, WT_LEN = 2, WT_32BIT = 5 };

struct wire {
    uint8_t *buf;
    size_t len;
    size_t cap;
};

static void w_raw(struct wire *w, const void *p, size_t n)
{
    if (w->len + n > w->cap) {
        size_t cap = w->cap == 0 ? 64 : w->cap;
        while (cap < w->len + n)
            cap *= 2;
        w->buf = realloc(w->buf, cap);
        ck_assert_ptr_nonnull(w->buf);
        w->cap = cap;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void w_varint(struct wire *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    do {
        b[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v != 0)
            b[n] |= 0x80;
        n++;
    } while (v != 0);
    w_raw(w, b, n);
}

static void w_tag(struct wire *w, uint32_t field, unsigned wire_type)
{
    w_varint(w, ((uint64_t)field << 3) | wire_type);
}

static void w_uint(struct wire *w, uint32_t field, uint64_t v)
{
    w_tag(w, field, WT_VARINT);
    w_varint(w, v);
}

static void w_len(struct wire *w, uint32_t field, const void *p, size_t n)
{
    w_tag(w, field, WT_LEN);
    w_varint(w, n);
    w_raw(w, p, n);
}

static void w_str(struct wire *w, uint32_t field, const char *s)
{
    w_len(w, field, s, strlen(s));
}

/* Appends inner as a length-delimited sub-message and frees it. */
static void w_sub(struct wire *w, uint32_t field, struct wire *inner)
{
    w_len(w, field, inner->buf, inner->len);
    free(inner->buf);
    memset(inner, 0, sizeof(*inner));
}

static void w_free(struct wire *w)
{
    free(w->buf);
    memset(w, 0, sizeof(*w));
}

/* ---- Helpers -------------------------------------------------------------------------------- */

static enum bst_status unpack(const ProtobufCMessageDescriptor *d, const struct wire *w,
                              struct bst_pballoc *a, ProtobufCMessage **m, struct bst_err *err)
{
    memset(err, 0, sizeof(*err));
    return bst_pb_unpack(d, w->buf, w->len, a, m, err);
}

/* Unpacks w as d through a fresh 1 MiB allocator, expects the refusal `code` with message
 * `msg`, and checks that every byte went back to the allocator. */
static void expect_refused(const ProtobufCMessageDescriptor *d, const struct wire *w,
                           enum bst_status code, const char *msg)
{
    struct bst_pballoc a;
    struct bst_err err;
    ProtobufCMessage *m = (ProtobufCMessage *)&a; /* must be reset to NULL */

    bst_pballoc_init(&a, MiB);
    ck_assert_int_eq(unpack(d, w, &a, &m, &err), code);
    ck_assert_int_eq(err.code, code);
    ck_assert_str_eq(err.msg, msg);
    ck_assert_ptr_null(m);
    ck_assert_uint_eq(a.used, 0);
}

/* An error message must be plain printable ASCII: it never echoes the bytes a peer sent. */
static void assert_printable_ascii(const char *s)
{
    for (; *s != '\0'; s++)
        ck_assert_msg(*s >= 0x20 && *s < 0x7f, "byte 0x%02x in error message",
                      (unsigned)(unsigned char)*s);
}

/* InitializeRequest{protocol_version: "2025-06-18", client_info: {name: <name>}} */
static void initialize_with_client_name(struct wire *w, const char *name, size_t name_len)
{
    struct wire info = {0};
    w_len(&info, 1, name, name_len);
    w_str(w, 1, "2025-06-18");
    w_sub(w, 2, &info);
}

/* ---- Hand-built descriptors ----------------------------------------------------------------- */

/* message TwoOf { oneof v { string a = 1; Implementation b = 2; } } — our own protos have only
 * one-member oneofs, and "last member on the wire wins" needs two. */
struct two_of {
    ProtobufCMessage base;
    uint32_t v_case;
    union {
        char *a;
        Bastion__V1__Implementation *b;
    } v;
};

static const ProtobufCFieldDescriptor two_of_fields[] = {
    {"a", 1, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_STRING, offsetof(struct two_of, v_case),
     offsetof(struct two_of, v.a), NULL, NULL, PROTOBUF_C_FIELD_FLAG_ONEOF, 0, NULL, NULL},
    {"b", 2, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_MESSAGE, offsetof(struct two_of, v_case),
     offsetof(struct two_of, v.b), &bastion__v1__implementation__descriptor, NULL,
     PROTOBUF_C_FIELD_FLAG_ONEOF, 0, NULL, NULL},
};
static const unsigned two_fields_by_name[] = {0, 1};
static const ProtobufCIntRange two_field_ranges[] = {{1, 0}, {0, 2}};

/* Every hand-built type here has exactly two fields, numbered 1 and 2. */
#define TEST_DESCRIPTOR(cname, type, field_array)                                                  \
    {                                                                                              \
        .magic = PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, .name = "test." cname, .short_name = cname, \
        .c_name = cname, .package_name = "test", .sizeof_message = sizeof(type), .n_fields = 2,    \
        .fields = field_array, .fields_sorted_by_name = two_fields_by_name, .n_field_ranges = 1,   \
        .field_ranges = two_field_ranges,                                                          \
    }

static const ProtobufCMessageDescriptor two_of_descriptor =
    TEST_DESCRIPTOR("TwoOf", struct two_of, two_of_fields);

/* Graph-only types for bst_pb_is_recursive: every one has two message fields x = 1 and y = 2. */
struct two_ptrs {
    ProtobufCMessage base;
    void *x;
    void *y;
};

#define GRAPH_FIELDS(var, x_desc, y_desc)                                                          \
    static const ProtobufCFieldDescriptor var[] = {                                                \
        {"x", 1, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_MESSAGE, 0,                            \
         offsetof(struct two_ptrs, x), x_desc, NULL, 0, 0, NULL, NULL},                            \
        {"y", 2, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_MESSAGE, 0,                            \
         offsetof(struct two_ptrs, y), y_desc, NULL, 0, 0, NULL, NULL},                            \
    }
#define GRAPH_DESCRIPTOR(var, name, fields)                                                        \
    static const ProtobufCMessageDescriptor var = TEST_DESCRIPTOR(name, struct two_ptrs, fields)

/* Self: x is Self (the simplest recursive schema). */
static const ProtobufCMessageDescriptor self_descriptor;
GRAPH_FIELDS(self_fields, &self_descriptor, &bastion__v1__implementation__descriptor);
GRAPH_DESCRIPTOR(self_descriptor, "Self", self_fields);

/* Ping.x is Pong, Pong.y is Ping: recursive through another type. */
static const ProtobufCMessageDescriptor ping_descriptor;
static const ProtobufCMessageDescriptor pong_descriptor;
GRAPH_FIELDS(ping_fields, &pong_descriptor, &bastion__v1__label__descriptor);
GRAPH_FIELDS(pong_fields, &bastion__v1__label__descriptor, &ping_descriptor);
GRAPH_DESCRIPTOR(ping_descriptor, "Ping", ping_fields);
GRAPH_DESCRIPTOR(pong_descriptor, "Pong", pong_fields);

/* Holder is not in a cycle itself but reaches one (Ping). */
GRAPH_FIELDS(holder_fields, &bastion__v1__label__descriptor, &ping_descriptor);
GRAPH_DESCRIPTOR(holder_descriptor, "Holder", holder_fields);

/* A diamond: Top.x = Leaf, Top.y = Mid, Mid.x = Leaf. Shared, not recursive. */
GRAPH_FIELDS(mid_fields, &bastion__v1__label__descriptor, &bastion__v1__tool__descriptor);
GRAPH_DESCRIPTOR(mid_descriptor, "Mid", mid_fields);
GRAPH_FIELDS(top_fields, &bastion__v1__label__descriptor, &mid_descriptor);
GRAPH_DESCRIPTOR(top_descriptor, "Top", top_fields);

/* message Node { optional Node child = 1; optional string name = 2; } for depth tests. */
struct node {
    ProtobufCMessage base;
    struct node *child;
    char *name;
};

static const ProtobufCMessageDescriptor node_descriptor;
static const ProtobufCFieldDescriptor node_fields[] = {
    {"child", 1, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_MESSAGE, 0,
     offsetof(struct node, child), &node_descriptor, NULL, 0, 0, NULL, NULL},
    {"name", 2, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_STRING, 0, offsetof(struct node, name),
     NULL, NULL, 0, 0, NULL, NULL},
};
static const ProtobufCMessageDescriptor node_descriptor =
    TEST_DESCRIPTOR("Node", struct node, node_fields);

/* Node{child: Node{child: ...}} nested `levels` deep counting the outermost. */
static void nested_nodes(struct wire *w, int levels)
{
    struct wire inner = {0};
    if (levels > 1) {
        nested_nodes(&inner, levels - 1);
        w_sub(w, 1, &inner);
    }
    w_str(w, 2, "n");
}

/* ---- Allocator ------------------------------------------------------------------------------ */

START_TEST(test_pballoc_counts_used_and_peak_and_returns_to_zero)
{
    struct bst_pballoc a;
    void *p, *q;

    bst_pballoc_init(&a, MiB);
    p = a.base.alloc(a.base.allocator_data, 100);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_gt(a.used, 100); /* the header counts too */
    q = a.base.alloc(a.base.allocator_data, 1000);
    ck_assert_ptr_nonnull(q);
    memset(p, 0xAB, 100);
    memset(q, 0xCD, 1000);
    size_t both = a.used;
    ck_assert_uint_eq(a.peak, both);
    a.base.free(a.base.allocator_data, q);
    ck_assert_uint_lt(a.used, both);
    ck_assert_uint_eq(a.peak, both);
    a.base.free(a.base.allocator_data, p);
    a.base.free(a.base.allocator_data, NULL);
    ck_assert_uint_eq(a.used, 0);
    ck_assert_int_eq(a.exhausted, 0);
}
END_TEST

START_TEST(test_pballoc_returns_aligned_blocks)
{
    struct bst_pballoc a;
    bst_pballoc_init(&a, MiB);
    for (size_t n = 0; n < 40; n++) {
        void *p = a.base.alloc(a.base.allocator_data, n);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p % _Alignof(max_align_t), 0);
        a.base.free(a.base.allocator_data, p);
    }
    ck_assert_uint_eq(a.used, 0);
}
END_TEST

START_TEST(test_pballoc_refuses_past_cap_and_sets_exhausted)
{
    struct bst_pballoc a;
    void *p;

    bst_pballoc_init(&a, 4096);
    ck_assert_ptr_null(a.base.alloc(a.base.allocator_data, 4096)); /* header does not fit */
    ck_assert_int_eq(a.exhausted, 1);
    ck_assert_uint_eq(a.used, 0);
    p = a.base.alloc(a.base.allocator_data, 2048);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_null(a.base.alloc(a.base.allocator_data, 2048));
    ck_assert_uint_le(a.peak, a.cap);
    a.base.free(a.base.allocator_data, p);
    ck_assert_uint_eq(a.used, 0);
}
END_TEST

START_TEST(test_pballoc_huge_sizes_do_not_wrap)
{
    struct bst_pballoc a;
    void *p;

    bst_pballoc_init(&a, SIZE_MAX);
    p = a.base.alloc(a.base.allocator_data, 64);
    ck_assert_ptr_nonnull(p);
    /* used + header + size would wrap past SIZE_MAX: refused by the budget (malloc never sees
     * a wrapped small size). */
    ck_assert_ptr_null(a.base.alloc(a.base.allocator_data, SIZE_MAX));
    ck_assert_ptr_null(a.base.alloc(a.base.allocator_data, SIZE_MAX - 8));
    ck_assert_ptr_null(a.base.alloc(a.base.allocator_data, SIZE_MAX - a.used));
    ck_assert_int_eq(a.exhausted, 1);
    a.base.free(a.base.allocator_data, p);
    ck_assert_uint_eq(a.used, 0);
}
END_TEST

/* ---- Unpacking ------------------------------------------------------------------------------ */

START_TEST(test_pb_valid_initialize_request_round_trips)
{
    Bastion__V1__Implementation info = BASTION__V1__IMPLEMENTATION__INIT;
    Bastion__V1__InitializeRequest req = BASTION__V1__INITIALIZE_REQUEST__INIT;
    Bastion__V1__InitializeRequest *got;
    struct bst_pballoc a;
    struct bst_err err;
    ProtobufCMessage *m = NULL;
    uint8_t buf[256];
    size_t n;

    info.name = "agent \xE2\x9C\x93 \xF0\x9F\xA4\x96"; /* check mark and robot face */
    info.version = "1.2.3";
    req.protocol_version = "2025-06-18";
    req.client_info = &info;
    n = bastion__v1__initialize_request__get_packed_size(&req);
    ck_assert_uint_le(n, sizeof(buf));
    bastion__v1__initialize_request__pack(&req, buf);

    bst_pballoc_init(&a, MiB);
    ck_assert_int_eq(
        bst_pb_unpack(&bastion__v1__initialize_request__descriptor, buf, n, &a, &m, &err), BST_OK);
    got = (Bastion__V1__InitializeRequest *)m;
    ck_assert_str_eq(got->protocol_version, "2025-06-18");
    ck_assert_ptr_nonnull(got->client_info);
    ck_assert_str_eq(got->client_info->name, info.name);
    ck_assert_str_eq(got->client_info->version, "1.2.3");
    ck_assert_ptr_null(got->client_info->title);
    ck_assert_int_eq(bst_pb_validate(m, &err), BST_OK);
    ck_assert_uint_eq(bastion__v1__initialize_request__get_packed_size(got), n);
    ck_assert_uint_gt(a.used, 0);
    bst_pb_free(m, &a);
    bst_pb_free(NULL, &a);
    ck_assert_uint_eq(a.used, 0);
    ck_assert_uint_gt(a.peak, 0);
}
END_TEST

START_TEST(test_pb_empty_input_is_an_empty_message)
{
    struct bst_pballoc a;
    struct bst_err err;
    ProtobufCMessage *m = NULL;

    bst_pballoc_init(&a, MiB);
    ck_assert_int_eq(
        bst_pb_unpack(&grpc__health__v1__health_check_request__descriptor, NULL, 0, &a, &m, &err),
        BST_OK);
    ck_assert_ptr_null(((Grpc__Health__V1__HealthCheckRequest *)m)->service);
    bst_pb_free(m, &a);
    ck_assert_uint_eq(a.used, 0);
}
END_TEST

START_TEST(test_pb_unknown_field_is_refused_with_its_number)
{
    struct wire w = {0};
    w_str(&w, 1, "grpc.health.v1.Health");
    w_uint(&w, 99, 1);
    expect_refused(&grpc__health__v1__health_check_request__descriptor, &w, BST_INVALID_ARGUMENT,
                   "unknown field number 99");
    w_free(&w);
}
END_TEST

START_TEST(test_pb_unknown_field_in_sub_message_is_refused_with_its_path)
{
    struct wire w = {0}, info = {0};
    w_str(&info, 1, "agent");
    w_tag(&info, 7, WT_32BIT);
    w_raw(&info, "\x01\x02\x03\x04", 4);
    w_str(&w, 1, "2025-06-18");
    w_sub(&w, 2, &info);
    expect_refused(&bastion__v1__initialize_request__descriptor, &w, BST_INVALID_ARGUMENT,
                   "client_info: unknown field number 7");
    w_free(&w);
}
END_TEST

START_TEST(test_pb_unknown_field_in_oneof_member_is_refused_with_its_path)
{
    struct wire w = {0}, args = {0};
    w_str(&args, 1, "default");
    w_str(&args, 5, "x");
    w_str(&w, 1, "list_pods");
    w_sub(&w, 10, &args);
    expect_refused(&bastion__v1__call_tool_request__descriptor, &w, BST_INVALID_ARGUMENT,
                   "list_pods: unknown field number 5");
    w_free(&w);
}
END_TEST

START_TEST(test_pb_invalid_utf8_is_refused_with_its_path)
{
    static const struct {
        const char *what;
        const char *bytes;
    } cases[] = {
        {"overlong slash", "a\xC0\xAF"},
        {"overlong 3-byte NUL", "\xE0\x80\x80z"},
        {"overlong 4-byte", "\xF0\x8F\xBF\xBF"},
        {"high surrogate", "x\xED\xA0\x80"},
        {"low surrogate", "\xED\xBF\xBFx"},
        {"truncated 3-byte", "ok\xE2\x82"},
        {"truncated 4-byte at end", "\xF0\x9F\xA4"},
        {"0xFF byte", "\xFF"},
        {"lone continuation", "\x80"},
        {"above U+10FFFF", "\xF4\x90\x80\x80"},
        {"F5 lead byte", "\xF5\x80\x80\x80"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct wire w = {0};
        struct bst_pballoc a;
        struct bst_err err;
        ProtobufCMessage *m = NULL;

        initialize_with_client_name(&w, cases[i].bytes, strlen(cases[i].bytes));
        bst_pballoc_init(&a, MiB);
        ck_assert_msg(unpack(&bastion__v1__initialize_request__descriptor, &w, &a, &m, &err) ==
                          BST_INVALID_ARGUMENT,
                      "%s accepted", cases[i].what);
        ck_assert_str_eq(err.msg, "client_info.name: invalid UTF-8");
        assert_printable_ascii(err.msg);
        ck_assert_ptr_null(m);
        ck_assert_uint_eq(a.used, 0);
        w_free(&w);
    }
}
END_TEST

START_TEST(test_pb_invalid_utf8_in_top_level_and_oneof_fields_names_them)
{
    struct wire w = {0}, args = {0};

    w_str(&w, 1, "list\xC3");
    expect_refused(&bastion__v1__call_tool_request__descriptor, &w, BST_INVALID_ARGUMENT,
                   "name: invalid UTF-8");
    w_free(&w);

    w_str(&args, 1, "kube-\xED\xB0\x80system");
    w_str(&w, 1, "list_pods");
    w_sub(&w, 10, &args);
    expect_refused(&bastion__v1__call_tool_request__descriptor, &w, BST_INVALID_ARGUMENT,
                   "list_pods.namespace: invalid UTF-8");
    w_free(&w);
}
END_TEST

START_TEST(test_pb_invalid_utf8_in_repeated_element_names_its_index)
{
    struct wire w = {0};
    for (int i = 0; i < 5; i++) {
        struct wire tool = {0};
        w_str(&tool, 1, i == 3 ? "bad\xFE" : "list_pods");
        w_sub(&w, 1, &tool);
    }
    expect_refused(&bastion__v1__list_tools_response__descriptor, &w, BST_INVALID_ARGUMENT,
                   "tools[3].name: invalid UTF-8");
    w_free(&w);

    w_str(&w, 3, "ops");
    w_str(&w, 3, "\xC0\x80");
    expect_refused(&bastion__v1__principal__descriptor, &w, BST_INVALID_ARGUMENT,
                   "groups[1]: invalid UTF-8");
    w_free(&w);
}
END_TEST

START_TEST(test_pb_embedded_nul_in_string_is_refused)
{
    struct wire w = {0};

    initialize_with_client_name(&w, "admin\0evil", 10);
    expect_refused(&bastion__v1__initialize_request__descriptor, &w, BST_INVALID_ARGUMENT,
                   "client_info.name: embedded NUL byte in string");
    w_free(&w);

    w_str(&w, 3, "ops");
    w_len(&w, 3, "\0", 1);
    expect_refused(&bastion__v1__principal__descriptor, &w, BST_INVALID_ARGUMENT,
                   "groups[1]: embedded NUL byte in string");
    w_free(&w);
}
END_TEST

START_TEST(test_pb_empty_string_is_accepted)
{
    struct wire w = {0};
    struct bst_pballoc a;
    struct bst_err err;
    ProtobufCMessage *m = NULL;

    initialize_with_client_name(&w, "", 0);
    bst_pballoc_init(&a, MiB);
    ck_assert_int_eq(unpack(&bastion__v1__initialize_request__descriptor, &w, &a, &m, &err),
                     BST_OK);
    ck_assert_str_eq(((Bastion__V1__InitializeRequest *)m)->client_info->name, "");
    bst_pb_free(m, &a);
    ck_assert_uint_eq(a.used, 0);
    w_free(&w);
}
END_TEST

START_TEST(test_pb_undeclared_enum_value_is_refused)
{
    struct wire w = {0}, principal = {0};

    /* WhoAmIResponse{principal: Principal{mechanism: 99}} = 0a 02 10 63 */
    w_uint(&principal, 2, 99);
    w_sub(&w, 1, &principal);
    ck_assert_uint_eq(w.len, 4);
    ck_assert_mem_eq(w.buf, "\x0a\x02\x10\x63", 4);
    expect_refused(&bastion__v1__who_am_iresponse__descriptor, &w, BST_INVALID_ARGUMENT,
                   "principal.mechanism: value 99 is not declared by enum "
                   "bastion.v1.AuthMechanism");
    w_free(&w);

    /* -1 as a ten-byte varint. */
    w_uint(&principal, 2, UINT64_MAX);
    w_sub(&w, 1, &principal);
    expect_refused(&bastion__v1__who_am_iresponse__descriptor, &w, BST_INVALID_ARGUMENT,
                   "principal.mechanism: value -1 is not declared by enum "
                   "bastion.v1.AuthMechanism");
    w_free(&w);

    w_uint(&w, 1, 4);
    expect_refused(&grpc__health__v1__health_check_response__descriptor, &w, BST_INVALID_ARGUMENT,
                   "status: value 4 is not declared by enum "
                   "grpc.health.v1.HealthCheckResponse.ServingStatus");
    w_free(&w);
}
END_TEST

START_TEST(test_pb_declared_enum_values_are_accepted)
{
    for (uint64_t v = 0; v <= 3; v++) {
        struct wire w = {0}, principal = {0};
        struct bst_pballoc a;
        struct bst_err err;
        ProtobufCMessage *m = NULL;

        w_uint(&principal, 2, v);
        w_sub(&w, 1, &principal);
        bst_pballoc_init(&a, MiB);
        ck_assert_int_eq(unpack(&bastion__v1__who_am_iresponse__descriptor, &w, &a, &m, &err),
                         BST_OK);
        ck_assert_int_eq(((Bastion__V1__WhoAmIResponse *)m)->principal->mechanism, (int)v);
        bst_pb_free(m, &a);
        w_free(&w);
    }
}
END_TEST

START_TEST(test_pb_wrong_wire_type_is_refused)
{
    struct wire w = {0};

    w_uint(&w, 1, 7); /* protocol_version is a string */
    expect_refused(&bastion__v1__initialize_request__descriptor, &w, BST_INVALID_ARGUMENT,
                   "malformed protobuf message");
    w_free(&w);

    w_tag(&w, 2, WT_32BIT); /* client_info is a message */
    w_raw(&w, "abcd", 4);
    expect_refused(&bastion__v1__initialize_request__descriptor, &w, BST_INVALID_ARGUMENT,
                   "malformed protobuf message");
    w_free(&w);

    w_tag(&w, 1, 7); /* wire type 7 does not exist */
    expect_refused(&bastion__v1__initialize_request__descriptor, &w, BST_INVALID_ARGUMENT,
                   "malformed protobuf message");
    w_free(&w);
}
END_TEST

START_TEST(test_pb_eleven_byte_varint_is_refused)
{
    static const uint8_t ten[] = {0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    static const uint8_t eleven[] = {0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                     0xFF, 0xFF, 0xFF, 0xFF, 0x80, 0x01};
    struct wire w = {0};
    struct bst_pballoc a;
    struct bst_err err;
    ProtobufCMessage *m = NULL;

    /* Ten bytes is the longest legal varint: accepted (ttl_seconds keeps the low 32 bits). */
    bst_pballoc_init(&a, MiB);
    ck_assert_int_eq(bst_pb_unpack(&bastion__v1__issue_token_request__descriptor, ten, sizeof(ten),
                                   &a, &m, &err),
                     BST_OK);
    ck_assert_uint_eq(((Bastion__V1__IssueTokenRequest *)m)->ttl_seconds, UINT32_MAX);
    bst_pb_free(m, &a);

    w_raw(&w, eleven, sizeof(eleven));
    expect_refused(&bastion__v1__issue_token_request__descriptor, &w, BST_INVALID_ARGUMENT,
                   "malformed protobuf message");
    w_free(&w);
}
END_TEST

START_TEST(test_pb_length_past_end_of_buffer_is_refused)
{
    struct wire w = {0};

    w_tag(&w, 1, WT_LEN);
    w_varint(&w, 10);
    w_raw(&w, "abc", 3);
    expect_refused(&bastion__v1__initialize_request__descriptor, &w, BST_INVALID_ARGUMENT,
                   "malformed protobuf message");
    w_free(&w);

    w_tag(&w, 2, WT_LEN);
    w_varint(&w, UINT32_MAX);
    w_raw(&w, "abc", 3);
    expect_refused(&bastion__v1__initialize_request__descriptor, &w, BST_INVALID_ARGUMENT,
                   "malformed protobuf message");
    w_free(&w);

    /* A sub-message whose own string runs past the sub-message's end. */
    w_tag(&w, 2, WT_LEN);
    w_varint(&w, 3);
    w_raw(&w, "\x0a\x05x", 3);
    w_raw(&w, "yyyy", 4);
    expect_refused(&bastion__v1__initialize_request__descriptor, &w, BST_INVALID_ARGUMENT,
                   "malformed protobuf message");
    w_free(&w);

    /* A length-prefixed field cut inside its length. */
    w_raw(&w, "\x0a\xff", 2);
    expect_refused(&bastion__v1__initialize_request__descriptor, &w, BST_INVALID_ARGUMENT,
                   "malformed protobuf message");
    w_free(&w);
}
END_TEST

/* 2-byte unknown fields: tag 15 varint, value 0. protobuf-c keeps each as a ScannedMember, a
 * ProtobufCMessageUnknownField and a separately allocated copy of its one data byte. */
static void fill_unknown_fields(uint8_t *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i += 2) {
        buf[i] = (15 << 3) | WT_VARINT;
        buf[i + 1] = 0;
    }
}

START_TEST(test_pb_unknown_field_amplification_is_unpacked_at_full_cost_without_a_cap)
{
    /* The baseline the next test relies on: 64 KiB of unknown fields cost protobuf-c more than
     * 20 times their size (they are refused only after unpacking). */
    const size_t len = 64 * 1024;
    uint8_t *buf = malloc(len);
    struct bst_pballoc a;
    struct bst_err err;
    ProtobufCMessage *m = NULL;

    ck_assert_ptr_nonnull(buf);
    fill_unknown_fields(buf, len);
    bst_pballoc_init(&a, SIZE_MAX);
    ck_assert_int_eq(
        bst_pb_unpack(&bastion__v1__initialize_request__descriptor, buf, len, &a, &m, &err),
        BST_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "unknown field number 15");
    ck_assert_uint_gt(a.peak, 20 * len);
    ck_assert_uint_eq(a.used, 0);
    free(buf);
}
END_TEST

static long vm_kib(const char *key)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, key, strlen(key)) == 0)
            v = strtol(line + strlen(key), NULL, 10);
    fclose(f);
    return v;
}

START_TEST(test_pb_unknown_field_amplification_stops_at_the_budget)
{
    const size_t len = 4 * MiB, cap = 16 * MiB;
    uint8_t *buf = malloc(len);
    struct bst_pballoc a;
    struct bst_err err;
    ProtobufCMessage *m = NULL;
    long rss_before, hwm_after;

    ck_assert_ptr_nonnull(buf);
    fill_unknown_fields(buf, len);
    rss_before = vm_kib("VmRSS:");
    bst_pballoc_init(&a, cap);
    ck_assert_int_eq(
        bst_pb_unpack(&bastion__v1__initialize_request__descriptor, buf, len, &a, &m, &err),
        BST_RESOURCE_EXHAUSTED);
    hwm_after = vm_kib("VmHWM:");
    ck_assert_int_eq(err.code, BST_RESOURCE_EXHAUSTED);
    ck_assert_ptr_null(m);
    ck_assert_int_eq(a.exhausted, 1);
    ck_assert_uint_le(a.peak, cap);
    ck_assert_uint_eq(a.used, 0);
    /* Unbounded, the 4 MiB would take over 80 MiB (see the test above); the process grew by
     * about the budget (plus sanitizer shadow memory where enabled). */
    if (rss_before > 0 && hwm_after > 0)
        ck_assert_int_lt(hwm_after - rss_before, 48 * 1024);
    free(buf);
}
END_TEST

START_TEST(test_pb_budget_refusal_is_not_confused_with_an_earlier_one)
{
    struct wire w = {0};
    struct bst_pballoc a;
    struct bst_err err;
    ProtobufCMessage *m = NULL;

    bst_pballoc_init(&a, 128); /* room for the top message, not for its client_info too */
    initialize_with_client_name(&w, "a name that is long enough to pass a small budget......", 55);
    ck_assert_int_eq(unpack(&bastion__v1__initialize_request__descriptor, &w, &a, &m, &err),
                     BST_RESOURCE_EXHAUSTED);
    ck_assert_int_eq(a.exhausted, 1);
    w_free(&w);
    w_uint(&w, 1, 7); /* malformed, and small */
    ck_assert_int_eq(unpack(&bastion__v1__initialize_request__descriptor, &w, &a, &m, &err),
                     BST_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "malformed protobuf message");
    ck_assert_int_eq(a.exhausted, 1); /* still records the earlier refusal */
    ck_assert_uint_eq(a.used, 0);
    w_free(&w);
}
END_TEST

static void repeated_tools(struct wire *w, int n)
{
    for (int i = 0; i < n; i++)
        w_raw(w, "\x0a\x00", 2); /* tools: an empty Tool */
}

START_TEST(test_pb_repeated_field_over_the_limit_is_refused)
{
    struct wire w = {0};
    struct bst_pballoc a;
    struct bst_err err;
    ProtobufCMessage *m = NULL;

    repeated_tools(&w, 20000);
    bst_pballoc_init(&a, 64 * MiB);
    ck_assert_int_eq(unpack(&bastion__v1__list_tools_response__descriptor, &w, &a, &m, &err),
                     BST_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "tools: 20000 elements, more than the 10000 allowed");
    ck_assert_uint_eq(a.used, 0);
    w_free(&w);

    for (int i = 0; i < BST_PB_MAX_REPEATED + 1; i++)
        w_raw(&w, "\x1a\x01g", 3); /* groups: "g" */
    ck_assert_int_eq(unpack(&bastion__v1__principal__descriptor, &w, &a, &m, &err),
                     BST_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "groups: 10001 elements, more than the 10000 allowed");
    ck_assert_uint_eq(a.used, 0);
    w_free(&w);
}
END_TEST

START_TEST(test_pb_repeated_field_at_the_limit_is_accepted)
{
    struct wire w = {0};
    struct bst_pballoc a;
    struct bst_err err;
    ProtobufCMessage *m = NULL;

    repeated_tools(&w, BST_PB_MAX_REPEATED);
    bst_pballoc_init(&a, 64 * MiB);
    ck_assert_int_eq(unpack(&bastion__v1__list_tools_response__descriptor, &w, &a, &m, &err),
                     BST_OK);
    ck_assert_uint_eq(((Bastion__V1__ListToolsResponse *)m)->n_tools, BST_PB_MAX_REPEATED);
    bst_pb_free(m, &a);
    ck_assert_uint_eq(a.used, 0);
    w_free(&w);
}
END_TEST

START_TEST(test_pb_oneof_last_member_on_the_wire_wins)
{
    struct wire w = {0}, impl = {0};
    struct bst_pballoc a;
    struct bst_err err;
    ProtobufCMessage *m = NULL;
    struct two_of *t;

    bst_pballoc_init(&a, MiB);

    /* a, then b: b is set, and the string a was freed (a.used returns to zero below). */
    w_str(&w, 1, "first");
    w_str(&impl, 1, "second");
    w_sub(&w, 2, &impl);
    ck_assert_int_eq(unpack(&two_of_descriptor, &w, &a, &m, &err), BST_OK);
    t = (struct two_of *)m;
    ck_assert_uint_eq(t->v_case, 2);
    ck_assert_str_eq(t->v.b->name, "second");
    bst_pb_free(m, &a);
    ck_assert_uint_eq(a.used, 0);
    w_free(&w);

    /* b, then a: a is set. */
    w_str(&impl, 1, "first");
    w_sub(&w, 2, &impl);
    w_str(&w, 1, "second");
    ck_assert_int_eq(unpack(&two_of_descriptor, &w, &a, &m, &err), BST_OK);
    t = (struct two_of *)m;
    ck_assert_uint_eq(t->v_case, 1);
    ck_assert_str_eq(t->v.a, "second");
    bst_pb_free(m, &a);
    ck_assert_uint_eq(a.used, 0);
    w_free(&w);

    /* Validation follows the case: invalid UTF-8 in the overwritten member is gone with it,
     * invalid UTF-8 in the member that won is refused under that member's name. */
    w_str(&w, 1, "\xFF");
    w_str(&impl, 1, "fine");
    w_sub(&w, 2, &impl);
    ck_assert_int_eq(unpack(&two_of_descriptor, &w, &a, &m, &err), BST_OK);
    bst_pb_free(m, &a);
    w_free(&w);
    w_str(&impl, 1, "fine");
    w_sub(&w, 2, &impl);
    w_str(&w, 1, "\xFF");
    expect_refused(&two_of_descriptor, &w, BST_INVALID_ARGUMENT, "a: invalid UTF-8");
    w_free(&w);
}
END_TEST

START_TEST(test_pb_nesting_deeper_than_the_limit_is_refused)
{
    struct wire w = {0};
    struct bst_pballoc a;
    struct bst_err err;
    ProtobufCMessage *m = NULL;
    char want[256];
    size_t off = 0;

    bst_pballoc_init(&a, MiB);
    nested_nodes(&w, BST_PB_MAX_DEPTH);
    ck_assert_int_eq(unpack(&node_descriptor, &w, &a, &m, &err), BST_OK);
    bst_pb_free(m, &a);
    w_free(&w);

    nested_nodes(&w, BST_PB_MAX_DEPTH + 1);
    for (int i = 0; i < BST_PB_MAX_DEPTH; i++)
        off += (size_t)snprintf(want + off, sizeof(want) - off, "%s", i == 0 ? "child" : ".child");
    snprintf(want + off, sizeof(want) - off, ": messages nested deeper than 16");
    expect_refused(&node_descriptor, &w, BST_INVALID_ARGUMENT, want);
    w_free(&w);
    ck_assert_uint_eq(a.used, 0);
}
END_TEST

/* ---- Validating messages built in code ------------------------------------------------------- */

START_TEST(test_pb_validate_checks_messages_built_in_code)
{
    Bastion__V1__Principal p = BASTION__V1__PRINCIPAL__INIT;
    Bastion__V1__AuditRecord rec = BASTION__V1__AUDIT_RECORD__INIT;
    Bastion__V1__AuditArgument arg0 = BASTION__V1__AUDIT_ARGUMENT__INIT;
    Bastion__V1__AuditArgument arg1 = BASTION__V1__AUDIT_ARGUMENT__INIT;
    Bastion__V1__AuditArgument *args[] = {&arg0, &arg1};
    char *groups[] = {"ops", "dev"};
    struct bst_err err;

    p.name = "alice";
    p.n_groups = 2;
    p.groups = groups;
    p.has_mechanism = 1;
    p.mechanism = BASTION__V1__AUTH_MECHANISM__AUTH_MECHANISM_JWT;
    ck_assert_int_eq(bst_pb_validate(&p.base, &err), BST_OK);

    /* An enum value is checked only when its has_ flag says it is present. */
    p.mechanism = (Bastion__V1__AuthMechanism)42;
    ck_assert_int_eq(bst_pb_validate(&p.base, &err), BST_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "mechanism: value 42 is not declared by enum "
                              "bastion.v1.AuthMechanism");
    p.has_mechanism = 0;
    ck_assert_int_eq(bst_pb_validate(&p.base, &err), BST_OK);

    groups[1] = "d\xE9v"; /* Latin-1, not UTF-8 */
    ck_assert_int_eq(bst_pb_validate(&p.base, &err), BST_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "groups[1]: invalid UTF-8");

    arg0.name = "namespace";
    arg1.name = "label\x7f";
    arg1.value = "\xE2\x28\xA1";
    rec.n_arguments = 2;
    rec.arguments = args;
    ck_assert_int_eq(bst_pb_validate(&rec.base, &err), BST_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "arguments[1].value: invalid UTF-8");

    ck_assert_int_eq(bst_pb_validate(NULL, &err), BST_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_pb_validate_refuses_nesting_built_in_code)
{
    struct node nodes[BST_PB_MAX_DEPTH + 1];
    struct bst_err err;

    for (int i = 0; i <= BST_PB_MAX_DEPTH; i++) {
        nodes[i].base = (ProtobufCMessage)PROTOBUF_C_MESSAGE_INIT(&node_descriptor);
        nodes[i].child = i < BST_PB_MAX_DEPTH ? &nodes[i + 1] : NULL;
        nodes[i].name = NULL;
    }
    ck_assert_int_eq(bst_pb_validate(&nodes[1].base, &err), BST_OK);
    ck_assert_int_eq(bst_pb_validate(&nodes[0].base, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "nested deeper than 16"));
}
END_TEST

/* ---- Schema recursion ----------------------------------------------------------------------- */

START_TEST(test_pb_no_message_type_we_serve_is_recursive)
{
    static const ProtobufCMessageDescriptor *const all[] = {
        /* mcp.proto */
        &bastion__v1__implementation__descriptor,
        &bastion__v1__initialize_request__descriptor,
        &bastion__v1__server_capabilities__descriptor,
        &bastion__v1__initialize_response__descriptor,
        &bastion__v1__tool_annotations__descriptor,
        &bastion__v1__tool__descriptor,
        &bastion__v1__list_tools_request__descriptor,
        &bastion__v1__list_tools_response__descriptor,
        &bastion__v1__list_pods_args__descriptor,
        &bastion__v1__label__descriptor,
        &bastion__v1__pod__descriptor,
        &bastion__v1__list_pods_result__descriptor,
        &bastion__v1__call_tool_request__descriptor,
        &bastion__v1__call_tool_response__descriptor,
        &bastion__v1__resource__descriptor,
        &bastion__v1__list_resources_request__descriptor,
        &bastion__v1__list_resources_response__descriptor,
        &bastion__v1__read_resource_request__descriptor,
        &bastion__v1__resource_contents__descriptor,
        &bastion__v1__read_resource_response__descriptor,
        &bastion__v1__ping_request__descriptor,
        &bastion__v1__ping_response__descriptor,
        /* auth.proto */
        &bastion__v1__principal__descriptor,
        &bastion__v1__issue_token_request__descriptor,
        &bastion__v1__issue_token_response__descriptor,
        &bastion__v1__who_am_irequest__descriptor,
        &bastion__v1__who_am_iresponse__descriptor,
        &bastion__v1__can_irequest__descriptor,
        &bastion__v1__can_iresponse__descriptor,
        /* audit.proto */
        &bastion__v1__audit_principal__descriptor,
        &bastion__v1__audit_argument__descriptor,
        &bastion__v1__audit_record__descriptor,
        /* grpc/health/v1/health.proto */
        &grpc__health__v1__health_check_request__descriptor,
        &grpc__health__v1__health_check_response__descriptor,
    };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        ck_assert_msg(bst_pb_is_recursive(all[i]) == 0, "%s is recursive", all[i]->name);
}
END_TEST

START_TEST(test_pb_recursive_schemas_are_detected)
{
    ck_assert_int_eq(bst_pb_is_recursive(&self_descriptor), 1);
    ck_assert_int_eq(bst_pb_is_recursive(&node_descriptor), 1);
    ck_assert_int_eq(bst_pb_is_recursive(&ping_descriptor), 1);
    ck_assert_int_eq(bst_pb_is_recursive(&pong_descriptor), 1);
    ck_assert_int_eq(bst_pb_is_recursive(&holder_descriptor), 1);
    /* Reaching one type twice by two paths is sharing, not recursion. */
    ck_assert_int_eq(bst_pb_is_recursive(&top_descriptor), 0);
    ck_assert_int_eq(bst_pb_is_recursive(&two_of_descriptor), 0);
}
END_TEST

static Suite *pbcheck_suite(void)
{
    Suite *s = suite_create("pbcheck");
    TCase *tc = tcase_create("allocator");
    tcase_add_test(tc, test_pballoc_counts_used_and_peak_and_returns_to_zero);
    tcase_add_test(tc, test_pballoc_returns_aligned_blocks);
    tcase_add_test(tc, test_pballoc_refuses_past_cap_and_sets_exhausted);
    tcase_add_test(tc, test_pballoc_huge_sizes_do_not_wrap);
    suite_add_tcase(s, tc);

    tc = tcase_create("unpack");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_pb_valid_initialize_request_round_trips);
    tcase_add_test(tc, test_pb_empty_input_is_an_empty_message);
    tcase_add_test(tc, test_pb_unknown_field_is_refused_with_its_number);
    tcase_add_test(tc, test_pb_unknown_field_in_sub_message_is_refused_with_its_path);
    tcase_add_test(tc, test_pb_unknown_field_in_oneof_member_is_refused_with_its_path);
    tcase_add_test(tc, test_pb_invalid_utf8_is_refused_with_its_path);
    tcase_add_test(tc, test_pb_invalid_utf8_in_top_level_and_oneof_fields_names_them);
    tcase_add_test(tc, test_pb_invalid_utf8_in_repeated_element_names_its_index);
    tcase_add_test(tc, test_pb_embedded_nul_in_string_is_refused);
    tcase_add_test(tc, test_pb_empty_string_is_accepted);
    tcase_add_test(tc, test_pb_undeclared_enum_value_is_refused);
    tcase_add_test(tc, test_pb_declared_enum_values_are_accepted);
    tcase_add_test(tc, test_pb_wrong_wire_type_is_refused);
    tcase_add_test(tc, test_pb_eleven_byte_varint_is_refused);
    tcase_add_test(tc, test_pb_length_past_end_of_buffer_is_refused);
    tcase_add_test(tc, test_pb_unknown_field_amplification_is_unpacked_at_full_cost_without_a_cap);
    tcase_add_test(tc, test_pb_unknown_field_amplification_stops_at_the_budget);
    tcase_add_test(tc, test_pb_budget_refusal_is_not_confused_with_an_earlier_one);
    tcase_add_test(tc, test_pb_repeated_field_over_the_limit_is_refused);
    tcase_add_test(tc, test_pb_repeated_field_at_the_limit_is_accepted);
    tcase_add_test(tc, test_pb_oneof_last_member_on_the_wire_wins);
    tcase_add_test(tc, test_pb_nesting_deeper_than_the_limit_is_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("validate");
    tcase_add_test(tc, test_pb_validate_checks_messages_built_in_code);
    tcase_add_test(tc, test_pb_validate_refuses_nesting_built_in_code);
    tcase_add_test(tc, test_pb_no_message_type_we_serve_is_recursive);
    tcase_add_test(tc, test_pb_recursive_schemas_are_detected);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(pbcheck_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
