/* Tests for common/pbjson.c: the protobuf JSON mapping in both directions, key=value decoding,
 * JSON Schemas and rule checks, on a test-only proto that has every protobuf type
 * (tests/unit/common/pbjson_test.proto). */
#include "pbcheck.h"
#include "pbjson.h"

#include "pbjson_test.pb-c.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define D_EVERY (&bastion__test__everything__descriptor)

/* ---- helpers -------------------------------------------------------------------------------- */

static char *dump(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    ck_assert_ptr_nonnull(s);
    return s;
}

static void assert_json_eq(const json_t *j, const char *want)
{
    json_error_t e;
    json_t *w = json_loads(want, JSON_DECODE_ANY, &e);
    char *a, *b;
    ck_assert_msg(w != NULL, "bad expected JSON: %s", e.text);
    a = dump(j);
    b = dump(w);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    json_decref(w);
}

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
    ck_assert_msg(j != NULL, "bad test JSON %s: %s", text, e.text);
    return j;
}

/* Decodes text as an Everything; returns the status and leaves the message in *out. */
static enum bst_status decode(const char *text, ProtobufCMessage **out, struct bst_err *err)
{
    json_t *j = parse(text);
    enum bst_status rv = bst_pbjson_decode(D_EVERY, j, NULL, out, err);
    json_decref(j);
    return rv;
}

/* Asserts that decoding text fails with INVALID_ARGUMENT and a message containing want. */
static void refused(const char *text, const char *want)
{
    ProtobufCMessage *m = (ProtobufCMessage *)1;
    struct bst_err err = {BST_OK, ""};
    ck_assert_msg(decode(text, &m, &err) == BST_INVALID_ARGUMENT, "%s was accepted", text);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err.msg, want) != NULL, "%s: '%s' not in '%s'", text, want, err.msg);
}

/* Decodes text (which must succeed), re-encodes it and compares with want (NULL: text). */
static void round_trip(const char *text, const char *want)
{
    ProtobufCMessage *m = NULL;
    struct bst_err err = {BST_OK, ""};
    json_t *j;
    ck_assert_msg(decode(text, &m, &err) == BST_OK, "%s: %s", text, err.msg);
    j = bst_pbjson_encode(m, NULL, NULL, 0);
    ck_assert_ptr_nonnull(j);
    assert_json_eq(j, want != NULL ? want : text);
    json_decref(j);
    protobuf_c_message_free_unpacked(m, NULL);
}

static const struct bst_pbjson_field_info info_secret = {.sensitive = 1,
                                                         .description = "A secret."};
static int lower_only(const char *s)
{
    for (; *s; s++)
        if (*s < 'a' || *s > 'z')
            return 0;
    return 1;
}
static const struct bst_pbjson_field_info info_i32 = {
    .required = 1, .has_bounds = 1, .min = 0, .max = 100, .description = "A count."};
static const struct bst_pbjson_field_info info_key = {.required = 1,
                                                      .max_len = 8,
                                                      .pattern = "^[a-z]+$",
                                                      .valid = lower_only,
                                                      .syntax = "lower-case letters",
                                                      .default_json = "\"abc\""};
static const struct bst_pbjson_field_info info_tags = {.max_items = 2};
static const struct bst_pbjson_field_info info_i64 = {.has_bounds = 1, .min = -5, .max = 5};

static const struct bst_pbjson_field_info *lookup(const ProtobufCMessageDescriptor *msg,
                                                  const ProtobufCFieldDescriptor *f, void *arg)
{
    (void)arg;
    if (msg == D_EVERY && strcmp(f->name, "s") == 0)
        return &info_secret;
    if (msg == D_EVERY && strcmp(f->name, "i32") == 0)
        return &info_i32;
    if (msg == D_EVERY && strcmp(f->name, "tags") == 0)
        return &info_tags;
    if (msg == D_EVERY && strcmp(f->name, "i64") == 0)
        return &info_i64;
    if (msg == &bastion__test__inner__descriptor && strcmp(f->name, "key") == 0)
        return &info_key;
    return NULL;
}

/* ---- encode --------------------------------------------------------------------------------- */

START_TEST(test_pbjson_encode_follows_the_proto_json_mapping_with_proto_field_names)
{
    Bastion__Test__Everything m = BASTION__TEST__EVERYTHING__INIT;
    Bastion__Test__Inner inner = BASTION__TEST__INNER__INIT, it0 = BASTION__TEST__INNER__INIT;
    Bastion__Test__Inner *items[] = {&it0};
    char *tags[] = {"a", "b"};
    int64_t nums[] = {INT64_MIN, 7};
    uint8_t raw[] = {'h', 'i', 0xff};
    json_t *j;

    m.has_i32 = 1, m.i32 = -3;
    m.has_u32 = 1, m.u32 = 4000000000u;
    m.has_i64 = 1, m.i64 = INT64_MAX;
    m.has_u64 = 1, m.u64 = UINT64_MAX;
    m.has_b = 1, m.b = 0; /* present even though false */
    m.has_db = 1, m.db = 1.5;
    m.s = "héllo \"q\"";
    m.has_by = 1, m.by.data = raw, m.by.len = sizeof(raw);
    m.has_color = 1, m.color = BASTION__TEST__COLOR__COLOR_BLUE;
    inner.key = "k";
    m.inner = &inner;
    m.n_tags = 2, m.tags = tags;
    it0.has_n = 1, it0.n = 9;
    m.n_items = 1, m.items = items;
    m.n_nums = 2, m.nums = nums;
    m.choice_case = BASTION__TEST__EVERYTHING__CHOICE_NUMBER, m.number = 0;
    j = bst_pbjson_encode(&m.base, NULL, NULL, 0);
    ck_assert_ptr_nonnull(j);
    assert_json_eq(j, "{\"i32\":-3,\"u32\":4000000000,\"i64\":\"9223372036854775807\","
                      "\"u64\":\"18446744073709551615\",\"b\":false,\"db\":1.5,"
                      "\"s\":\"héllo \\\"q\\\"\",\"by\":\"aGn/\",\"color\":\"COLOR_BLUE\","
                      "\"inner\":{\"key\":\"k\"},\"tags\":[\"a\",\"b\"],\"items\":[{\"n\":9}],"
                      "\"nums\":[\"-9223372036854775808\",\"7\"],\"number\":0}");
    json_decref(j);
}
END_TEST

START_TEST(test_pbjson_encode_omits_absent_fields_and_unset_defaults)
{
    Bastion__Test__Everything m = BASTION__TEST__EVERYTHING__INIT;
    json_t *j = bst_pbjson_encode(&m.base, NULL, NULL, 0);
    ck_assert_ptr_nonnull(j);
    /* with_default points at its default ("dflt") and counts as absent, like protobuf-c's packer.
     */
    assert_json_eq(j, "{}");
    json_decref(j);
    m.with_default = "set";
    j = bst_pbjson_encode(&m.base, NULL, NULL, 0);
    assert_json_eq(j, "{\"with_default\":\"set\"}");
    json_decref(j);
}
END_TEST

START_TEST(test_pbjson_encode_redact_omits_sensitive_fields_only_when_asked)
{
    Bastion__Test__Everything m = BASTION__TEST__EVERYTHING__INIT;
    json_t *j;
    char *s;
    m.s = "hunter2-canary";
    m.has_i32 = 1, m.i32 = 1;
    j = bst_pbjson_encode(&m.base, lookup, NULL, BST_PBJSON_REDACT);
    s = dump(j);
    ck_assert_ptr_null(strstr(s, "canary"));
    ck_assert_str_eq(s, "{\"i32\":1}");
    free(s);
    json_decref(j);
    j = bst_pbjson_encode(&m.base, lookup, NULL, 0);
    assert_json_eq(j, "{\"i32\":1,\"s\":\"hunter2-canary\"}");
    json_decref(j);
}
END_TEST

static const struct bst_pbjson_field_info *tags_secret(const ProtobufCMessageDescriptor *msg,
                                                       const ProtobufCFieldDescriptor *f, void *arg)
{
    (void)arg;
    return msg == D_EVERY && strcmp(f->name, "tags") == 0 ? &info_secret : NULL;
}

START_TEST(test_pbjson_encode_redact_omits_sensitive_repeated_fields)
{
    Bastion__Test__Everything m = BASTION__TEST__EVERYTHING__INIT;
    char *tags[] = {"CANARY-1", "CANARY-2"};
    json_t *j;
    m.n_tags = 2, m.tags = tags;
    m.has_b = 1, m.b = 1;
    j = bst_pbjson_encode(&m.base, tags_secret, NULL, BST_PBJSON_REDACT);
    assert_json_eq(j, "{\"b\":true}");
    json_decref(j);
}
END_TEST

START_TEST(test_pbjson_encode_writes_non_finite_floats_as_strings)
{
    Bastion__Test__Everything m = BASTION__TEST__EVERYTHING__INIT;
    double reals[] = {NAN, INFINITY, -INFINITY, 0.25};
    json_t *j;
    m.n_reals = 4, m.reals = reals;
    j = bst_pbjson_encode(&m.base, NULL, NULL, 0);
    assert_json_eq(j, "{\"reals\":[\"NaN\",\"Infinity\",\"-Infinity\",0.25]}");
    json_decref(j);
    round_trip("{\"reals\":[\"NaN\",\"Infinity\",\"-Infinity\",0.25,\"1e2\"]}",
               "{\"reals\":[\"NaN\",\"Infinity\",\"-Infinity\",0.25,100.0]}");
}
END_TEST

START_TEST(test_pbjson_encode_refuses_invalid_utf8_in_a_built_message)
{
    Bastion__Test__Everything m = BASTION__TEST__EVERYTHING__INIT;
    m.s = "bad\xff";
    ck_assert_ptr_null(bst_pbjson_encode(&m.base, NULL, NULL, 0));
}
END_TEST

/* ---- decode --------------------------------------------------------------------------------- */

START_TEST(test_pbjson_decode_round_trips_every_type)
{
    round_trip("{\"i32\":-2147483648,\"s32\":-5,\"sf32\":2147483647,\"u32\":4294967295,"
               "\"f32\":1,\"i64\":\"-9223372036854775808\",\"s64\":\"-1\",\"sf64\":\"2\","
               "\"u64\":\"18446744073709551615\",\"f64\":\"3\",\"fl\":0.5,\"db\":-2.25,"
               "\"b\":true,\"s\":\"ünïcödé ☃\",\"by\":\"AAEC/w==\",\"color\":\"COLOR_RED\","
               "\"inner\":{\"key\":\"x\",\"n\":1},\"tags\":[\"\",\"t\"],"
               "\"items\":[{},{\"key\":\"y\"}],\"nums\":[\"1\",\"-1\"],\"blobs\":[\"\",\"YQ==\"],"
               "\"colors\":[\"COLOR_BLUE\",\"COLOR_UNSPECIFIED\"],\"flags\":[false,true],"
               "\"reals\":[1.5],\"small\":[0,4294967295],\"thing\":{\"n\":3},"
               "\"with_default\":\"dflt\"}",
               NULL);
    round_trip("{}", NULL);
    round_trip("{\"name\":\"\"}", NULL); /* a oneof member set to its zero value is present */
}
END_TEST

START_TEST(test_pbjson_decode_refuses_unknown_fields_naming_the_json_path)
{
    refused("{\"nope\":1}", "nope: unknown field");
    refused("{\"inner\":{\"kee\":\"x\"}}", "inner.kee: unknown field");
    refused("{\"items\":[{},{\"bad\":1}]}", "items[1].bad: unknown field");
    /* lowerCamel names are not the proto names. */
    refused("{\"withDefault\":\"x\"}", "withDefault: unknown field");
}
END_TEST

START_TEST(test_pbjson_decode_refuses_type_mismatches)
{
    refused("{\"i32\":\"abc\"}", "i32: expected an integer");
    refused("{\"i32\":true}", "i32: expected an integer");
    refused("{\"i32\":1.5}", "i32: expected an integer");
    refused("{\"s\":1}", "s: expected a string");
    refused("{\"b\":\"true\"}", "b: expected true or false");
    refused("{\"b\":1}", "b: expected true or false");
    refused("{\"inner\":\"x\"}", "inner: expected an object");
    refused("{\"inner\":[]}", "inner: expected an object");
    refused("{\"tags\":\"a\"}", "tags: expected an array");
    refused("{\"tags\":[\"a\",null]}", "tags[1]: null is not allowed");
    refused("{\"tags\":[\"a\",1]}", "tags[1]: expected a string");
    refused("{\"db\":\"1.0x\"}", "db: expected a number");
    refused("{\"db\":\"0x10\"}", "db: expected a number");
    refused("{\"db\":\" 1\"}", "db: expected a number");
    refused("{\"db\":\"1e999\"}", "db: out of range for double");
    refused("{\"fl\":1e39}", "fl: out of range for float");
    refused("{\"db\":\"nan\"}", "db: expected a number");
    refused("[]", "expected an object");
}
END_TEST

START_TEST(test_pbjson_decode_integers_from_strings_or_numbers_within_range)
{
    round_trip("{\"i64\":9007199254740993}", "{\"i64\":\"9007199254740993\"}");
    round_trip("{\"i64\":\"9223372036854775807\"}", NULL);
    round_trip("{\"u64\":\"0\"}", NULL);
    round_trip("{\"i32\":\"-7\",\"u32\":3.0}", "{\"i32\":-7,\"u32\":3}");
    round_trip("{\"i32\":\"-0\"}", "{\"i32\":0}");
    refused("{\"i64\":\"9223372036854775808\"}", "i64: out of range for int64");
    refused("{\"i64\":\"-9223372036854775809\"}", "i64: out of range for int64");
    refused("{\"u64\":\"18446744073709551616\"}", "u64: out of range for uint64");
    refused("{\"u64\":\"-1\"}", "u64: out of range for uint64");
    refused("{\"u64\":-1}", "u64: out of range for uint64");
    refused("{\"i32\":2147483648}", "i32: out of range for int32");
    refused("{\"i32\":-2147483649}", "i32: out of range for int32");
    refused("{\"u32\":4294967296}", "u32: out of range for uint32");
    refused("{\"small\":[1,-1]}", "small[1]: out of range for uint32");
    refused("{\"i64\":\"007\"}", "i64: expected an integer");
    refused("{\"i64\":\"+1\"}", "i64: expected an integer");
    refused("{\"i64\":\" 1\"}", "i64: expected an integer");
    refused("{\"i64\":\"1e3\"}", "i64: expected an integer");
    refused("{\"i64\":\"\"}", "i64: expected an integer");
    refused("{\"i64\":\"-\"}", "i64: expected an integer");
    refused("{\"i64\":1e300}", "i64: expected an integer");
    refused("{\"i64\":99999999999999999999.0}", "i64: expected an integer");
}
END_TEST

START_TEST(test_pbjson_decode_enums_by_name_only)
{
    round_trip("{\"color\":\"COLOR_BLUE\"}", NULL);
    refused("{\"color\":1}", "color: expected the name of a bastion.test.Color value");
    refused("{\"color\":\"blue\"}", "color: not a value of enum bastion.test.Color");
    refused("{\"colors\":[\"COLOR_RED\",\"COLOR_GREEN\"]}", "colors[1]: not a value");
}
END_TEST

START_TEST(test_pbjson_decode_bytes_as_standard_or_url_safe_base64)
{
    round_trip("{\"by\":\"aGVsbG8\"}", "{\"by\":\"aGVsbG8=\"}");
    round_trip("{\"by\":\"-_-_\"}", "{\"by\":\"+/+/\"}");
    round_trip("{\"by\":\"\"}", NULL);
    refused("{\"by\":\"a\"}", "by: not base64");
    refused("{\"by\":\"aGk=x\"}", "by: not base64");
    refused("{\"by\":\"aGk===\"}", "by: not base64");
    refused("{\"by\":\"aG k\"}", "by: not base64");
    refused("{\"by\":\"aGk\\n\"}", "by: not base64");
    refused("{\"by\":1}", "by: expected a base64 string");
}
END_TEST

START_TEST(test_pbjson_decode_refuses_two_members_of_one_oneof)
{
    refused("{\"name\":\"a\",\"number\":1}", "name and number are members of one oneof");
    refused("{\"thing\":{},\"name\":\"a\"}", "thing and name are members of one oneof");
    /* null is absent, so it does not count as a member. */
    round_trip("{\"name\":\"a\",\"number\":null}", "{\"name\":\"a\"}");
}
END_TEST

START_TEST(test_pbjson_decode_refuses_nul_characters_in_strings)
{
    refused("{\"s\":\"a\\u0000b\"}", "s: NUL character");
    refused("{\"color\":\"COLOR_RED\\u0000x\"}", "color: not a value");
}
END_TEST

START_TEST(test_pbjson_decode_refuses_nesting_past_the_limit)
{
    const ProtobufCMessageDescriptor *d = &bastion__test__node__descriptor;
    char text[2048] = "";
    size_t o = 0;
    ProtobufCMessage *m = NULL;
    struct bst_err err = {BST_OK, ""};
    json_t *j;
    int depth;

    for (depth = 0; depth < BST_PBJSON_MAX_DEPTH; depth++)
        o += (size_t)snprintf(text + o, sizeof(text) - o, "{\"child\":");
    o += (size_t)snprintf(text + o, sizeof(text) - o, "{}");
    for (depth = 0; depth < BST_PBJSON_MAX_DEPTH; depth++)
        o += (size_t)snprintf(text + o, sizeof(text) - o, "}");
    j = parse(text);
    ck_assert_int_eq(bst_pbjson_decode(d, j, NULL, &m, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "nested deeper than"));
    json_decref(j);
    /* One level less is fine, and encodes back. */
    text[o - 1] = '\0';
    j = parse(text + strlen("{\"child\":"));
    ck_assert_int_eq(bst_pbjson_decode(d, j, NULL, &m, &err), BST_OK);
    json_decref(j);
    j = bst_pbjson_encode(m, NULL, NULL, 0);
    ck_assert_ptr_nonnull(j);
    json_decref(j);
    protobuf_c_message_free_unpacked(m, NULL);
    /* The schema of a recursive type cannot be written out: NULL, not a crash. */
    ck_assert_ptr_null(bst_pbjson_schema(d, NULL, NULL));
}
END_TEST

START_TEST(test_pbjson_decode_uses_the_given_allocator_and_returns_every_byte)
{
    const char *text = "{\"s\":\"abc\",\"by\":\"aGVsbG8=\",\"inner\":{\"key\":\"k\"},"
                       "\"tags\":[\"a\",\"b\",\"c\"],\"items\":[{\"key\":\"x\"},{}],"
                       "\"blobs\":[\"YQ==\"],\"thing\":{\"key\":\"t\"}}";
    json_t *j = parse(text);
    struct bst_pballoc a;
    ProtobufCMessage *m = NULL;
    struct bst_err err = {BST_OK, ""};
    size_t full;

    bst_pballoc_init(&a, 1 << 20);
    ck_assert_int_eq(bst_pbjson_decode(D_EVERY, j, &a.base, &m, &err), BST_OK);
    full = a.used;
    ck_assert_uint_gt(full, 0);
    protobuf_c_message_free_unpacked(m, &a.base);
    ck_assert_uint_eq(a.used, 0);
    /* Every smaller budget fails cleanly part-way, and leaves nothing allocated. */
    for (size_t cap = 0; cap < full; cap += 8) {
        bst_pballoc_init(&a, cap);
        m = (ProtobufCMessage *)1;
        ck_assert_int_eq(bst_pbjson_decode(D_EVERY, j, &a.base, &m, &err), BST_RESOURCE_EXHAUSTED);
        ck_assert_ptr_null(m);
        ck_assert_uint_eq(a.used, 0);
    }
    /* A failure part-way through a oneof member or an array frees what was built. */
    json_decref(j);
    j = parse("{\"thing\":{\"key\":\"t\"},\"items\":[{\"key\":\"x\"},{\"key\":1}]}");
    bst_pballoc_init(&a, 1 << 20);
    ck_assert_int_eq(bst_pbjson_decode(D_EVERY, j, &a.base, &m, &err), BST_INVALID_ARGUMENT);
    ck_assert_uint_eq(a.used, 0);
    json_decref(j);
}
END_TEST

START_TEST(test_pbjson_errors_never_echo_values)
{
    ProtobufCMessage *m = NULL;
    struct bst_err err = {BST_OK, ""};
    const char *cases[] = {"{\"i32\":\"CANARY\"}", "{\"color\":\"CANARY\"}", "{\"by\":\"CANARY!\"}",
                           "{\"b\":\"CANARY\"}", "{\"db\":\"CANARY\"}"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_int_eq(decode(cases[i], &m, &err), BST_INVALID_ARGUMENT);
        ck_assert_msg(strstr(err.msg, "CANARY") == NULL, "%s echoed: %s", cases[i], err.msg);
    }
}
END_TEST

/* ---- key=value ------------------------------------------------------------------------------ */

static enum bst_status kv(char **pairs, size_t n, ProtobufCMessage **m, struct bst_err *err)
{
    return bst_pbjson_decode_kv(D_EVERY, pairs, n, NULL, m, err);
}

START_TEST(test_pbjson_decode_kv_types_values_by_the_descriptor)
{
    char *pairs[] = {"i32=5",
                     "b=true",
                     "color=COLOR_BLUE",
                     "inner.key=x=y",
                     "inner.n=3",
                     "tags=a",
                     "tags=",
                     "items={\"key\":\"k\"}",
                     "items={}",
                     "i64=-5",
                     "by=aGk=",
                     "db=2.5",
                     "s=42",
                     "thing={\"n\":1}"};
    ProtobufCMessage *m = NULL;
    struct bst_err err = {BST_OK, ""};
    json_t *j;

    ck_assert_msg(kv(pairs, sizeof(pairs) / sizeof(pairs[0]), &m, &err) == BST_OK, "%s", err.msg);
    j = bst_pbjson_encode(m, NULL, NULL, 0);
    assert_json_eq(j,
                   "{\"i32\":5,\"b\":true,\"color\":\"COLOR_BLUE\",\"inner\":{\"key\":\"x=y\","
                   "\"n\":3},\"tags\":[\"a\",\"\"],\"items\":[{\"key\":\"k\"},{}],"
                   "\"i64\":\"-5\",\"by\":\"aGk=\",\"db\":2.5,\"s\":\"42\",\"thing\":{\"n\":1}}");
    json_decref(j);
    protobuf_c_message_free_unpacked(m, NULL);
    ck_assert_int_eq(kv(NULL, 0, &m, &err), BST_OK);
    protobuf_c_message_free_unpacked(m, NULL);
}
END_TEST

static void kv_refused(char *a, char *b, const char *want)
{
    char *pairs[2] = {a, b};
    ProtobufCMessage *m = (ProtobufCMessage *)1;
    struct bst_err err = {BST_OK, ""};
    ck_assert_msg(kv(pairs, b != NULL ? 2 : 1, &m, &err) == BST_INVALID_ARGUMENT, "%s %s accepted",
                  a, b != NULL ? b : "");
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err.msg, want) != NULL, "'%s' not in '%s'", want, err.msg);
    ck_assert_msg(strstr(err.msg, "CANARY") == NULL, "value echoed: %s", err.msg);
}

START_TEST(test_pbjson_decode_kv_refusals_name_the_key_never_the_value)
{
    kv_refused("CANARY", NULL, "argument 1: expected key=value");
    kv_refused("=CANARY", NULL, "argument 1: the key must be");
    kv_refused("nope=CANARY", NULL, "nope: unknown field");
    kv_refused("inner.nope=CANARY", NULL, "inner.nope: unknown field");
    kv_refused("i32=1", "i32=2", "i32: given twice");
    kv_refused("i32=CANARY", NULL, "i32: expected an integer");
    kv_refused("b=yes", NULL, "b: expected true or false");
    kv_refused("items.key=CANARY", NULL, "items: a repeated message field");
    kv_refused("s.x=CANARY", NULL, "s: not a message");
    kv_refused("inner..key=CANARY", NULL, "empty key segment");
    kv_refused("inner={\"key\":\"a\"}", "inner.n=1", "inner: given both");
    kv_refused("inner.n=1", "inner={\"key\":\"a\"}", "inner: given twice");
    kv_refused("inner=CANARY", NULL, "inner: a message field takes a JSON object");
    kv_refused("items=[1]", NULL, "items: a message field takes a JSON object");
    kv_refused("name=CANARY", "number=1", "name and number are members of one oneof");
    kv_refused("color=CANARY", NULL, "color: not a value of enum");
}
END_TEST

/* ---- schema --------------------------------------------------------------------------------- */

/* Follows a '/'-separated path of object keys and array indexes. */
static json_t *at(json_t *root, const char *path)
{
    json_t *j = root;
    const char *p = path;
    while (j != NULL && *p != '\0') {
        const char *slash = strchr(p, '/');
        size_t n = slash != NULL ? (size_t)(slash - p) : strlen(p);
        char seg[128];
        ck_assert_uint_lt(n, sizeof(seg));
        memcpy(seg, p, n);
        seg[n] = '\0';
        j = json_is_array(j) ? json_array_get(j, (size_t)strtoul(seg, NULL, 10))
                             : json_object_get(j, seg);
        p += n + (slash != NULL);
    }
    ck_assert_msg(j != NULL, "no %s", path);
    return j;
}

static void expect_at(json_t *root, const char *path, const char *want)
{
    assert_json_eq(at(root, path), want);
}

START_TEST(test_pbjson_schema_describes_types_bounds_required_and_oneofs)
{
    json_t *s = bst_pbjson_schema(D_EVERY, lookup, NULL);
    ck_assert_ptr_nonnull(s);
    expect_at(s, "$schema", "\"https://json-schema.org/draft/2020-12/schema\"");
    expect_at(s, "type", "\"object\"");
    expect_at(s, "additionalProperties", "false");
    expect_at(s, "required", "[\"i32\"]");
    expect_at(s, "properties/i32",
              "{\"type\":\"integer\",\"minimum\":0,\"maximum\":100,\"description\":\"A count.\"}");
    expect_at(s, "properties/u32", "{\"type\":\"integer\",\"minimum\":0,\"maximum\":4294967295}");
    expect_at(s, "properties/sf32",
              "{\"type\":\"integer\",\"minimum\":-2147483648,\"maximum\":2147483647}");
    expect_at(s, "properties/u64",
              "{\"type\":[\"integer\",\"string\"],\"format\":\"uint64\",\"pattern\":\"^[0-9]+$\"}");
    expect_at(s, "properties/i64",
              "{\"type\":[\"integer\",\"string\"],\"format\":\"int64\","
              "\"pattern\":\"^-?[0-9]+$\",\"minimum\":-5,\"maximum\":5}");
    expect_at(s, "properties/db", "{\"type\":\"number\"}");
    expect_at(s, "properties/b", "{\"type\":\"boolean\"}");
    expect_at(s, "properties/s",
              "{\"type\":\"string\",\"description\":\"A secret.\",\"writeOnly\":true}");
    expect_at(s, "properties/by", "{\"type\":\"string\",\"contentEncoding\":\"base64\"}");
    expect_at(
        s, "properties/color",
        "{\"type\":\"string\",\"enum\":[\"COLOR_UNSPECIFIED\",\"COLOR_RED\",\"COLOR_BLUE\"]}");
    expect_at(s, "properties/tags",
              "{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":2}");
    expect_at(s, "properties/inner/properties/key",
              "{\"type\":\"string\",\"maxLength\":8,\"pattern\":\"^[a-z]+$\",\"default\":\"abc\"}");
    expect_at(s, "properties/inner/required", "[\"key\"]");
    expect_at(s, "properties/inner/additionalProperties", "false");
    expect_at(s, "properties/items/items/type", "\"object\"");
    expect_at(s, "properties/items/maxItems", "10000");
    expect_at(
        s, "not",
        "{\"anyOf\":[{\"required\":[\"name\",\"thing\"]},{\"required\":[\"name\",\"number\"]},"
        "{\"required\":[\"thing\",\"number\"]}]}");
    json_decref(s);
    /* A proto2 `required` field is required without the table. */
    s = bst_pbjson_schema(&bastion__test__strict__descriptor, NULL, NULL);
    expect_at(s, "required", "[\"id\"]");
    json_decref(s);
}
END_TEST

/* ---- check ---------------------------------------------------------------------------------- */

static enum bst_status check_text(const char *text, struct bst_err *err)
{
    ProtobufCMessage *m = NULL;
    enum bst_status rv;
    ck_assert_msg(decode(text, &m, err) == BST_OK, "%s: %s", text, err->msg);
    rv = bst_pbjson_check(m, lookup, NULL, err);
    protobuf_c_message_free_unpacked(m, NULL);
    return rv;
}

static void check_refused(const char *text, const char *want)
{
    struct bst_err err = {BST_OK, ""};
    ck_assert_msg(check_text(text, &err) == BST_INVALID_ARGUMENT, "%s passed", text);
    ck_assert_msg(strstr(err.msg, want) != NULL, "%s: '%s' not in '%s'", text, want, err.msg);
    ck_assert_msg(strstr(err.msg, "CANARY") == NULL, "value echoed: %s", err.msg);
}

START_TEST(test_pbjson_check_applies_required_bounds_lengths_items_and_syntax)
{
    struct bst_err err = {BST_OK, ""};
    ck_assert_msg(check_text("{\"i32\":0,\"i64\":\"-5\",\"inner\":{\"key\":\"abcdefgh\"},"
                             "\"tags\":[\"a\",\"b\"],\"items\":[{\"key\":\"z\"}]}",
                             &err) == BST_OK,
                  "%s", err.msg);
    ck_assert_int_eq(check_text("{\"i32\":100}", &err), BST_OK);
    check_refused("{}", "i32: required");
    check_refused("{\"i32\":101}", "i32: must be between 0 and 100");
    check_refused("{\"i32\":-1}", "i32: must be between 0 and 100");
    check_refused("{\"i32\":1,\"i64\":\"6\"}", "i64: must be between -5 and 5");
    check_refused("{\"i32\":1,\"tags\":[\"a\",\"b\",\"c\"]}", "tags: at most 2 elements");
    check_refused("{\"i32\":1,\"inner\":{}}", "inner.key: required");
    check_refused("{\"i32\":1,\"inner\":{\"key\":\"\"}}", "inner.key: required");
    check_refused("{\"i32\":1,\"inner\":{\"key\":\"abcdefghi\"}}", "inner.key: longer than 8");
    check_refused("{\"i32\":1,\"inner\":{\"key\":\"CANARY\"}}",
                  "inner.key: must be lower-case letters");
    check_refused("{\"i32\":1,\"items\":[{\"key\":\"a\"},{\"key\":\"CANARY\"}]}",
                  "items[1].key: must be lower-case letters");
    /* A oneof member that is not selected is absent, not missing. */
    check_refused("{\"i32\":1,\"thing\":{}}", "thing.key: required");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pbjson");
    TCase *tc = tcase_create("pbjson");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_pbjson_encode_follows_the_proto_json_mapping_with_proto_field_names);
    tcase_add_test(tc, test_pbjson_encode_omits_absent_fields_and_unset_defaults);
    tcase_add_test(tc, test_pbjson_encode_redact_omits_sensitive_fields_only_when_asked);
    tcase_add_test(tc, test_pbjson_encode_redact_omits_sensitive_repeated_fields);
    tcase_add_test(tc, test_pbjson_encode_writes_non_finite_floats_as_strings);
    tcase_add_test(tc, test_pbjson_encode_refuses_invalid_utf8_in_a_built_message);
    tcase_add_test(tc, test_pbjson_decode_round_trips_every_type);
    tcase_add_test(tc, test_pbjson_decode_refuses_unknown_fields_naming_the_json_path);
    tcase_add_test(tc, test_pbjson_decode_refuses_type_mismatches);
    tcase_add_test(tc, test_pbjson_decode_integers_from_strings_or_numbers_within_range);
    tcase_add_test(tc, test_pbjson_decode_enums_by_name_only);
    tcase_add_test(tc, test_pbjson_decode_bytes_as_standard_or_url_safe_base64);
    tcase_add_test(tc, test_pbjson_decode_refuses_two_members_of_one_oneof);
    tcase_add_test(tc, test_pbjson_decode_refuses_nul_characters_in_strings);
    tcase_add_test(tc, test_pbjson_decode_refuses_nesting_past_the_limit);
    tcase_add_test(tc, test_pbjson_decode_uses_the_given_allocator_and_returns_every_byte);
    tcase_add_test(tc, test_pbjson_errors_never_echo_values);
    tcase_add_test(tc, test_pbjson_decode_kv_types_values_by_the_descriptor);
    tcase_add_test(tc, test_pbjson_decode_kv_refusals_name_the_key_never_the_value);
    tcase_add_test(tc, test_pbjson_schema_describes_types_bounds_required_and_oneofs);
    tcase_add_test(tc, test_pbjson_check_applies_required_bounds_lengths_items_and_syntax);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
