/* Tests for client/wire.c: the response state machine a hostile server talks to (headers,
 * trailers, length-prefixed message, resets), grpc-status and grpc-message parsing, grpc-timeout
 * encoding and metadata rules. */
#include "wire.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#define U(s) ((const uint8_t *)(s))

static void hdr(struct bcl_resp *r, enum bcl_block b, const char *n, const char *v, int want)
{
    ck_assert_int_eq(bcl_resp_header(r, b, U(n), strlen(n), U(v), strlen(v)), want);
}

/* A normal 200 response header block. */
static void ok_headers(struct bcl_resp *r)
{
    hdr(r, BCL_BLOCK_HEADERS, ":status", "200", 0);
    hdr(r, BCL_BLOCK_HEADERS, "content-type", "application/grpc", 0);
    hdr(r, BCL_BLOCK_HEADERS, "x-request-id", "abc123", 0);
    ck_assert_int_eq(bcl_resp_block_end(r, BCL_BLOCK_HEADERS, 0), 0);
}

static void ok_trailers(struct bcl_resp *r, const char *status, const char *message)
{
    hdr(r, BCL_BLOCK_TRAILERS, "grpc-status", status, 0);
    if (message != NULL)
        hdr(r, BCL_BLOCK_TRAILERS, "grpc-message", message, 0);
    ck_assert_int_eq(bcl_resp_block_end(r, BCL_BLOCK_TRAILERS, 1), 0);
}

START_TEST(test_resp_complete_unary_response_is_ok_with_its_message)
{
    struct bcl_resp r;
    char msg[256];
    const uint8_t body[] = {0, 0, 0, 0, 3, 'a', 'b', 'c'};
    bcl_resp_init(&r, 1024);
    ok_headers(&r);
    /* Delivered in awkward pieces: the prefix split, then the payload. */
    ck_assert_int_eq(bcl_resp_data(&r, body, 2), 0);
    ck_assert_int_eq(bcl_resp_data(&r, body + 2, 4), 0);
    ck_assert_int_eq(bcl_resp_data(&r, body + 6, 2), 0);
    ok_trailers(&r, "0", NULL);
    ck_assert_int_eq(bcl_resp_finish(&r, 1, 0, msg, sizeof(msg)), BASTION_OK);
    ck_assert_uint_eq(r.msg_len, 3);
    ck_assert_int_eq(memcmp(r.msg, "abc", 3), 0);
    ck_assert_str_eq(bcl_resp_find(&r, "x-request-id"), "abc123");
    ck_assert_ptr_null(bcl_resp_find(&r, "grpc-status"));
    bcl_resp_dispose(&r);
}
END_TEST

START_TEST(test_resp_empty_message_is_a_message)
{
    struct bcl_resp r;
    char msg[256];
    const uint8_t body[] = {0, 0, 0, 0, 0};
    bcl_resp_init(&r, 1024);
    ok_headers(&r);
    ck_assert_int_eq(bcl_resp_data(&r, body, 5), 0);
    ok_trailers(&r, "0", NULL);
    ck_assert_int_eq(bcl_resp_finish(&r, 1, 0, msg, sizeof(msg)), BASTION_OK);
    ck_assert_uint_eq(r.msg_len, 0);
    bcl_resp_dispose(&r);
}
END_TEST

START_TEST(test_resp_trailers_only_error_carries_status_and_decoded_message)
{
    struct bcl_resp r;
    char msg[256];
    bcl_resp_init(&r, 1024);
    hdr(&r, BCL_BLOCK_HEADERS, ":status", "200", 0);
    hdr(&r, BCL_BLOCK_HEADERS, "content-type", "application/grpc", 0);
    hdr(&r, BCL_BLOCK_HEADERS, "grpc-status", "7", 0);
    hdr(&r, BCL_BLOCK_HEADERS, "grpc-message", "no%20rule%20matched%3A%20deny", 0);
    ck_assert_int_eq(bcl_resp_block_end(&r, BCL_BLOCK_HEADERS, 1), 0);
    ck_assert_int_eq(bcl_resp_finish(&r, 1, 0, msg, sizeof(msg)), BASTION_PERMISSION_DENIED);
    ck_assert_str_eq(msg, "no rule matched: deny");
    bcl_resp_dispose(&r);
}
END_TEST

START_TEST(test_resp_grpc_status_in_headers_of_a_continuing_stream_is_refused)
{
    struct bcl_resp r;
    char msg[256];
    bcl_resp_init(&r, 1024);
    hdr(&r, BCL_BLOCK_HEADERS, ":status", "200", 0);
    hdr(&r, BCL_BLOCK_HEADERS, "content-type", "application/grpc", 0);
    hdr(&r, BCL_BLOCK_HEADERS, "grpc-status", "0", 0);
    ck_assert_int_eq(bcl_resp_block_end(&r, BCL_BLOCK_HEADERS, 0), -1);
    ck_assert_int_eq(bcl_resp_finish(&r, 1, 0, msg, sizeof(msg)), BASTION_E_PROTOCOL);
    bcl_resp_dispose(&r);
}
END_TEST

START_TEST(test_resp_missing_grpc_status_is_a_protocol_error)
{
    struct bcl_resp r;
    char msg[256];
    const uint8_t body[] = {0, 0, 0, 0, 0};
    bcl_resp_init(&r, 1024);
    ok_headers(&r);
    ck_assert_int_eq(bcl_resp_data(&r, body, 5), 0);
    ck_assert_int_eq(bcl_resp_block_end(&r, BCL_BLOCK_TRAILERS, 1), 0);
    ck_assert_int_eq(bcl_resp_finish(&r, 1, 0, msg, sizeof(msg)), BASTION_E_PROTOCOL);
    ck_assert_ptr_nonnull(strstr(msg, "without grpc-status"));
    bcl_resp_dispose(&r);
}
END_TEST

START_TEST(test_resp_malformed_or_duplicate_grpc_status_is_refused)
{
    static const char *const bad[] = {"", "x", "-1", "1a", "0000", " 0", "0 "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct bcl_resp r;
        bcl_resp_init(&r, 1024);
        ok_headers(&r);
        ck_assert_msg(bcl_resp_header(&r, BCL_BLOCK_TRAILERS, U("grpc-status"), 11, U(bad[i]),
                                      strlen(bad[i])) == -1,
                      "grpc-status '%s' accepted", bad[i]);
        ck_assert_int_eq(r.error, BASTION_E_PROTOCOL);
        bcl_resp_dispose(&r);
    }
    {
        struct bcl_resp r;
        bcl_resp_init(&r, 1024);
        ok_headers(&r);
        hdr(&r, BCL_BLOCK_TRAILERS, "grpc-status", "0", 0);
        hdr(&r, BCL_BLOCK_TRAILERS, "grpc-status", "0", -1);
        bcl_resp_dispose(&r);
    }
}
END_TEST

START_TEST(test_resp_unknown_grpc_code_becomes_unknown)
{
    struct bcl_resp r;
    char msg[256];
    bcl_resp_init(&r, 1024);
    ok_headers(&r);
    ok_trailers(&r, "99", "odd");
    ck_assert_int_eq(bcl_resp_finish(&r, 1, 0, msg, sizeof(msg)), BASTION_UNKNOWN);
    bcl_resp_dispose(&r);
}
END_TEST

START_TEST(test_resp_oversized_message_is_refused_from_its_prefix_before_allocating)
{
    struct bcl_resp r;
    char msg[256];
    const uint8_t prefix[] = {0, 0xff, 0xff, 0xff, 0xff}; /* 4 GiB declared */
    bcl_resp_init(&r, 4096);
    ok_headers(&r);
    ck_assert_int_eq(bcl_resp_data(&r, prefix, 5), -1);
    ck_assert_ptr_null(r.msg);
    ck_assert_int_eq(bcl_resp_finish(&r, 0, 8, msg, sizeof(msg)), BASTION_RESOURCE_EXHAUSTED);
    ck_assert_ptr_nonnull(strstr(msg, "exceeds the limit of 4096 bytes"));
    bcl_resp_dispose(&r);
}
END_TEST

START_TEST(test_resp_message_at_the_limit_is_accepted)
{
    struct bcl_resp r;
    char msg[256];
    uint8_t *body = calloc(1, 5 + 4096);
    body[3] = 0x10; /* 4096 */
    bcl_resp_init(&r, 4096);
    ok_headers(&r);
    ck_assert_int_eq(bcl_resp_data(&r, body, 5 + 4096), 0);
    ok_trailers(&r, "0", NULL);
    ck_assert_int_eq(bcl_resp_finish(&r, 1, 0, msg, sizeof(msg)), BASTION_OK);
    bcl_resp_dispose(&r);
    free(body);
}
END_TEST

START_TEST(test_resp_compressed_flag_and_second_message_are_refused)
{
    struct bcl_resp r;
    const uint8_t compressed[] = {1, 0, 0, 0, 0};
    const uint8_t flag2[] = {2, 0, 0, 0, 0};
    const uint8_t two[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    bcl_resp_init(&r, 1024);
    ok_headers(&r);
    ck_assert_int_eq(bcl_resp_data(&r, compressed, 5), -1);
    ck_assert_ptr_nonnull(strstr(r.error_msg, "compress"));
    bcl_resp_dispose(&r);

    bcl_resp_init(&r, 1024);
    ok_headers(&r);
    ck_assert_int_eq(bcl_resp_data(&r, flag2, 5), -1);
    bcl_resp_dispose(&r);

    bcl_resp_init(&r, 1024);
    ok_headers(&r);
    ck_assert_int_eq(bcl_resp_data(&r, two, 10), -1);
    ck_assert_ptr_nonnull(strstr(r.error_msg, "more than one response message"));
    bcl_resp_dispose(&r);
}
END_TEST

START_TEST(test_resp_truncated_message_and_ok_without_message_are_protocol_errors)
{
    struct bcl_resp r;
    char msg[256];
    const uint8_t part[] = {0, 0, 0, 0, 9, 'a', 'b'};
    bcl_resp_init(&r, 1024);
    ok_headers(&r);
    ck_assert_int_eq(bcl_resp_data(&r, part, sizeof(part)), 0);
    ok_trailers(&r, "0", NULL);
    ck_assert_int_eq(bcl_resp_finish(&r, 1, 0, msg, sizeof(msg)), BASTION_E_PROTOCOL);
    ck_assert_ptr_nonnull(strstr(msg, "truncated"));
    bcl_resp_dispose(&r);

    bcl_resp_init(&r, 1024);
    ok_headers(&r);
    ok_trailers(&r, "0", NULL);
    ck_assert_int_eq(bcl_resp_finish(&r, 1, 0, msg, sizeof(msg)), BASTION_E_PROTOCOL);
    ck_assert_ptr_nonnull(strstr(msg, "without a response message"));
    bcl_resp_dispose(&r);
}
END_TEST

START_TEST(test_resp_non_grpc_200_is_refused)
{
    struct bcl_resp r;
    bcl_resp_init(&r, 1024);
    hdr(&r, BCL_BLOCK_HEADERS, ":status", "200", 0);
    hdr(&r, BCL_BLOCK_HEADERS, "content-type", "text/html", 0);
    ck_assert_int_eq(bcl_resp_block_end(&r, BCL_BLOCK_HEADERS, 0), -1);
    bcl_resp_dispose(&r);

    bcl_resp_init(&r, 1024);
    hdr(&r, BCL_BLOCK_HEADERS, ":status", "200", 0);
    ck_assert_int_eq(bcl_resp_block_end(&r, BCL_BLOCK_HEADERS, 0), -1);
    ck_assert_ptr_nonnull(strstr(r.error_msg, "missing"));
    bcl_resp_dispose(&r);

    /* application/grpc+proto and parameters are gRPC. */
    bcl_resp_init(&r, 1024);
    hdr(&r, BCL_BLOCK_HEADERS, ":status", "200", 0);
    hdr(&r, BCL_BLOCK_HEADERS, "content-type", "application/grpc+proto; charset=x", 0);
    ck_assert_int_eq(bcl_resp_block_end(&r, BCL_BLOCK_HEADERS, 0), 0);
    bcl_resp_dispose(&r);
}
END_TEST

START_TEST(test_resp_http_error_without_grpc_status_maps_the_http_status)
{
    static const struct {
        const char *status;
        bastion_status want;
    } cases[] = {
        {"400", BASTION_INTERNAL},          {"401", BASTION_UNAUTHENTICATED},
        {"403", BASTION_PERMISSION_DENIED}, {"404", BASTION_UNIMPLEMENTED},
        {"429", BASTION_UNAVAILABLE},       {"503", BASTION_UNAVAILABLE},
        {"500", BASTION_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct bcl_resp r;
        char msg[256];
        const uint8_t page[] = "<html>not grpc</html>";
        bcl_resp_init(&r, 1024);
        hdr(&r, BCL_BLOCK_HEADERS, ":status", cases[i].status, 0);
        hdr(&r, BCL_BLOCK_HEADERS, "content-type", "text/html", 0);
        ck_assert_int_eq(bcl_resp_block_end(&r, BCL_BLOCK_HEADERS, 0), 0);
        ck_assert_int_eq(bcl_resp_data(&r, page, sizeof(page)), 0); /* ignored, not parsed */
        ck_assert_int_eq(bcl_resp_finish(&r, 1, 0, msg, sizeof(msg)), cases[i].want);
        ck_assert_ptr_nonnull(strstr(msg, cases[i].status));
        bcl_resp_dispose(&r);
    }
}
END_TEST

START_TEST(test_resp_pseudo_headers_and_bad_status_are_refused)
{
    struct bcl_resp r;
    static const char *const bad_status[] = {"20", "2000", "abc", "099", "100"};
    for (size_t i = 0; i < sizeof(bad_status) / sizeof(bad_status[0]); i++) {
        bcl_resp_init(&r, 1024);
        hdr(&r, BCL_BLOCK_HEADERS, ":status", bad_status[i], -1);
        bcl_resp_dispose(&r);
    }
    bcl_resp_init(&r, 1024);
    hdr(&r, BCL_BLOCK_HEADERS, ":path", "/x", -1);
    bcl_resp_dispose(&r);

    bcl_resp_init(&r, 1024);
    ok_headers(&r);
    hdr(&r, BCL_BLOCK_TRAILERS, ":status", "200", -1);
    bcl_resp_dispose(&r);

    bcl_resp_init(&r, 1024);
    hdr(&r, BCL_BLOCK_HEADERS, "content-type", "application/grpc", -1); /* before :status */
    bcl_resp_dispose(&r);

    bcl_resp_init(&r, 1024);
    hdr(&r, BCL_BLOCK_TRAILERS, "grpc-status", "0", -1); /* trailers before headers */
    bcl_resp_dispose(&r);
}
END_TEST

START_TEST(test_resp_header_list_is_bounded)
{
    struct bcl_resp r;
    char big[BCL_MAX_HEADER_LIST_BYTES];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    bcl_resp_init(&r, 1024);
    hdr(&r, BCL_BLOCK_HEADERS, ":status", "200", 0);
    hdr(&r, BCL_BLOCK_HEADERS, "x-big", big, -1);
    ck_assert_int_eq(r.error, BASTION_RESOURCE_EXHAUSTED);
    bcl_resp_dispose(&r);

    bcl_resp_init(&r, 1024);
    hdr(&r, BCL_BLOCK_HEADERS, ":status", "200", 0);
    for (int i = 1; i < BCL_MAX_HEADER_FIELDS; i++)
        hdr(&r, BCL_BLOCK_HEADERS, "x-f", "v", 0);
    hdr(&r, BCL_BLOCK_HEADERS, "x-f", "v", -1);
    ck_assert_int_eq(r.error, BASTION_RESOURCE_EXHAUSTED);
    ck_assert_uint_le(r.n_kept, BCL_MAX_KEPT_HEADERS);
    bcl_resp_dispose(&r);
}
END_TEST

START_TEST(test_resp_kept_header_values_are_sanitised)
{
    struct bcl_resp r;
    bcl_resp_init(&r, 1024);
    hdr(&r, BCL_BLOCK_HEADERS, ":status", "200", 0);
    hdr(&r, BCL_BLOCK_HEADERS, "x-evil", "a\x1b[31mb\x7f", 0);
    ck_assert_str_eq(bcl_resp_find(&r, "x-evil"), "a?[31mb?");
    bcl_resp_dispose(&r);
}
END_TEST

START_TEST(test_resp_reset_maps_the_http2_error_code)
{
    static const struct {
        uint32_t code;
        bastion_status want;
    } cases[] = {
        {0x7, BASTION_UNAVAILABLE},        {0x8, BASTION_CANCELLED},
        {0xb, BASTION_RESOURCE_EXHAUSTED}, {0xc, BASTION_PERMISSION_DENIED},
        {0x2, BASTION_INTERNAL},           {0x1, BASTION_INTERNAL},
        {0x1234, BASTION_INTERNAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct bcl_resp r;
        char msg[256];
        bcl_resp_init(&r, 1024);
        ok_headers(&r);
        ck_assert_int_eq(bcl_resp_finish(&r, 0, cases[i].code, msg, sizeof(msg)), cases[i].want);
        ck_assert_ptr_nonnull(strstr(msg, "reset"));
        bcl_resp_dispose(&r);
    }
}
END_TEST

START_TEST(test_resp_status_wins_over_a_reset_after_the_trailers)
{
    struct bcl_resp r;
    char msg[256];
    bcl_resp_init(&r, 1024);
    hdr(&r, BCL_BLOCK_HEADERS, ":status", "200", 0);
    hdr(&r, BCL_BLOCK_HEADERS, "content-type", "application/grpc", 0);
    hdr(&r, BCL_BLOCK_HEADERS, "grpc-status", "8", 0);
    ck_assert_int_eq(bcl_resp_block_end(&r, BCL_BLOCK_HEADERS, 1), 0);
    ck_assert_int_eq(bcl_resp_finish(&r, 0, 0, msg, sizeof(msg)), BASTION_RESOURCE_EXHAUSTED);
    bcl_resp_dispose(&r);
}
END_TEST

START_TEST(test_grpc_message_decode_keeps_bad_escapes_and_sanitises_controls)
{
    char out[64];
    const char *in;
    in = "100%25 sure";
    bcl_grpc_message_decode(out, sizeof(out), U(in), strlen(in));
    ck_assert_str_eq(out, "100% sure");
    in = "bad %zz and %4";
    bcl_grpc_message_decode(out, sizeof(out), U(in), strlen(in));
    ck_assert_str_eq(out, "bad %zz and %4");
    in = "%1B[31mred%0Aline%00nul";
    bcl_grpc_message_decode(out, sizeof(out), U(in), strlen(in));
    ck_assert_str_eq(out, "?[31mred?line?nul");
    in = "caf%C3%A9 %FF";
    bcl_grpc_message_decode(out, sizeof(out), U(in), strlen(in));
    ck_assert_str_eq(out, "caf\xC3\xA9 \xEF\xBF\xBD");
    /* Truncation keeps a NUL-terminated, whole-character string. */
    in = "%C3%A9%C3%A9%C3%A9";
    bcl_grpc_message_decode(out, 4, U(in), strlen(in));
    ck_assert_str_eq(out, "\xC3\xA9");
}
END_TEST

START_TEST(test_grpc_message_decode_bounds_long_input)
{
    size_t n = 100000;
    uint8_t *in = malloc(n);
    char out[BCL_MESSAGE_MAX];
    memset(in, 'x', n);
    ck_assert_uint_lt(bcl_grpc_message_decode(out, sizeof(out), in, n), sizeof(out));
    ck_assert_uint_eq(strlen(out), sizeof(out) - 1);
    free(in);
}
END_TEST

START_TEST(test_timeout_encode_rounds_up_in_the_finest_unit_that_fits)
{
    char b[16];
    bcl_timeout_encode(1, b, sizeof(b));
    ck_assert_str_eq(b, "1n");
    bcl_timeout_encode(0, b, sizeof(b));
    ck_assert_str_eq(b, "1n");
    bcl_timeout_encode(-5, b, sizeof(b));
    ck_assert_str_eq(b, "1n");
    bcl_timeout_encode(99999999, b, sizeof(b));
    ck_assert_str_eq(b, "99999999n");
    bcl_timeout_encode(100000000, b, sizeof(b));
    ck_assert_str_eq(b, "100000u");
    bcl_timeout_encode(100000001, b, sizeof(b));
    ck_assert_str_eq(b, "100001u");
    bcl_timeout_encode(INT64_C(30) * 1000000000, b, sizeof(b));
    ck_assert_str_eq(b, "30000000u");
    bcl_timeout_encode(INT64_C(1000) * 1000000000, b, sizeof(b));
    ck_assert_str_eq(b, "1000000m");
    bcl_timeout_encode(INT64_MAX, b, sizeof(b));
    ck_assert_str_eq(b, "2562048H");
}
END_TEST

START_TEST(test_md_names_and_values_follow_grpc_rules)
{
    ck_assert(bcl_md_name_ok("x-tenant"));
    ck_assert(bcl_md_name_ok("trace_id.v2"));
    ck_assert(!bcl_md_name_ok(""));
    ck_assert(!bcl_md_name_ok("X-Upper"));
    ck_assert(!bcl_md_name_ok("grpc-timeout"));
    ck_assert(!bcl_md_name_ok(":path"));
    ck_assert(!bcl_md_name_ok("te"));
    ck_assert(!bcl_md_name_ok("content-type"));
    ck_assert(!bcl_md_name_ok("authorization"));
    ck_assert(!bcl_md_name_ok("x-api-key"));
    ck_assert(!bcl_md_name_ok("trace-bin"));
    ck_assert(!bcl_md_name_ok("a b"));
    ck_assert(bcl_md_value_ok("Bearer abc.def", 100));
    ck_assert(!bcl_md_value_ok("a\r\nb: c", 100));
    ck_assert(!bcl_md_value_ok("caf\xC3\xA9", 100));
    ck_assert(!bcl_md_value_ok("toolong", 3));
}
END_TEST

START_TEST(test_grpc_status_parse_bounds)
{
    int v = -1;
    ck_assert_int_eq(bcl_grpc_status_parse(U("16"), 2, &v), 0);
    ck_assert_int_eq(v, 16);
    ck_assert_int_eq(bcl_grpc_status_parse(U("17"), 2, &v), 0);
    ck_assert_int_eq(v, BASTION_UNKNOWN);
    ck_assert_int_eq(bcl_grpc_status_parse(U("1000"), 4, &v), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_wire");
    TCase *tc = tcase_create("wire");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_resp_complete_unary_response_is_ok_with_its_message);
    tcase_add_test(tc, test_resp_empty_message_is_a_message);
    tcase_add_test(tc, test_resp_trailers_only_error_carries_status_and_decoded_message);
    tcase_add_test(tc, test_resp_grpc_status_in_headers_of_a_continuing_stream_is_refused);
    tcase_add_test(tc, test_resp_missing_grpc_status_is_a_protocol_error);
    tcase_add_test(tc, test_resp_malformed_or_duplicate_grpc_status_is_refused);
    tcase_add_test(tc, test_resp_unknown_grpc_code_becomes_unknown);
    tcase_add_test(tc, test_resp_oversized_message_is_refused_from_its_prefix_before_allocating);
    tcase_add_test(tc, test_resp_message_at_the_limit_is_accepted);
    tcase_add_test(tc, test_resp_compressed_flag_and_second_message_are_refused);
    tcase_add_test(tc, test_resp_truncated_message_and_ok_without_message_are_protocol_errors);
    tcase_add_test(tc, test_resp_non_grpc_200_is_refused);
    tcase_add_test(tc, test_resp_http_error_without_grpc_status_maps_the_http_status);
    tcase_add_test(tc, test_resp_pseudo_headers_and_bad_status_are_refused);
    tcase_add_test(tc, test_resp_header_list_is_bounded);
    tcase_add_test(tc, test_resp_kept_header_values_are_sanitised);
    tcase_add_test(tc, test_resp_reset_maps_the_http2_error_code);
    tcase_add_test(tc, test_resp_status_wins_over_a_reset_after_the_trailers);
    tcase_add_test(tc, test_grpc_message_decode_keeps_bad_escapes_and_sanitises_controls);
    tcase_add_test(tc, test_grpc_message_decode_bounds_long_input);
    tcase_add_test(tc, test_timeout_encode_rounds_up_in_the_finest_unit_that_fits);
    tcase_add_test(tc, test_md_names_and_values_follow_grpc_rules);
    tcase_add_test(tc, test_grpc_status_parse_bounds);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
