/* Unit tests of the gRPC framing and header helpers (server/grpc.c). */
#include "grpc.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static enum bst_status feed_all(struct grpc_reader *r, const unsigned char *d, size_t n,
                                size_t chunk, struct bst_err *err)
{
    for (size_t o = 0; o < n; o += chunk) {
        size_t k = n - o < chunk ? n - o : chunk;
        enum bst_status rv = grpc_reader_feed(r, d + o, k, err);
        if (rv != BST_OK)
            return rv;
    }
    return BST_OK;
}

START_TEST(test_grpc_reader_one_message_in_any_chunking)
{
    unsigned char buf[5 + 300];
    struct bst_err err;
    size_t chunks[] = {1, 2, 5, 7, 64, 305};
    grpc_prefix_write(buf, 300);
    for (int i = 0; i < 300; i++)
        buf[5 + i] = (unsigned char)i;
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        struct grpc_reader r;
        grpc_reader_init(&r, 4096);
        ck_assert_int_eq(feed_all(&r, buf, sizeof(buf), chunks[c], &err), BST_OK);
        ck_assert_int_eq(grpc_reader_finish(&r, &err), BST_OK);
        ck_assert_uint_eq(r.msg_len, 300);
        ck_assert_mem_eq(r.msg, buf + 5, 300);
        grpc_reader_dispose(&r);
    }
}
END_TEST

START_TEST(test_grpc_reader_empty_message_is_one_message)
{
    unsigned char buf[5] = {0, 0, 0, 0, 0};
    struct grpc_reader r;
    struct bst_err err;
    grpc_reader_init(&r, 16);
    ck_assert_int_eq(grpc_reader_feed(&r, buf, 5, &err), BST_OK);
    ck_assert_int_eq(grpc_reader_finish(&r, &err), BST_OK);
    ck_assert_uint_eq(r.msg_len, 0);
    grpc_reader_dispose(&r);
}
END_TEST

START_TEST(test_grpc_reader_oversized_prefix_refused_before_allocation)
{
    unsigned char hdr[5];
    struct grpc_reader r;
    struct bst_err err;
    grpc_prefix_write(hdr, 0xffffffffu);
    grpc_reader_init(&r, 4 * 1024 * 1024);
    ck_assert_int_eq(grpc_reader_feed(&r, hdr, 5, &err), BST_RESOURCE_EXHAUSTED);
    ck_assert_ptr_null(r.msg);
    ck_assert_ptr_nonnull(strstr(err.msg, "exceeds"));
    /* Further input is ignored and finish reports failure. */
    ck_assert_int_eq(grpc_reader_feed(&r, hdr, 5, &err), BST_OK);
    ck_assert_int_ne(grpc_reader_finish(&r, &err), BST_OK);
    grpc_reader_dispose(&r);
}
END_TEST

START_TEST(test_grpc_reader_compressed_flag_without_encoding_is_internal)
{
    unsigned char m[6] = {1, 0, 0, 0, 1, 'x'};
    struct grpc_reader r;
    struct bst_err err;
    grpc_reader_init(&r, 16);
    ck_assert_int_eq(grpc_reader_feed(&r, m, 6, &err), BST_INTERNAL);
    grpc_reader_dispose(&r);
}
END_TEST

START_TEST(test_grpc_reader_flag_other_than_0_or_1_is_internal)
{
    unsigned char m[5] = {2, 0, 0, 0, 0};
    struct grpc_reader r;
    struct bst_err err;
    grpc_reader_init(&r, 16);
    ck_assert_int_eq(grpc_reader_feed(&r, m, 5, &err), BST_INTERNAL);
    grpc_reader_dispose(&r);
}
END_TEST

START_TEST(test_grpc_reader_two_messages_in_unary_call_is_internal)
{
    unsigned char m[12] = {0, 0, 0, 0, 1, 'a', 0, 0, 0, 0, 1, 'b'};
    struct grpc_reader r;
    struct bst_err err;
    grpc_reader_init(&r, 16);
    ck_assert_int_eq(grpc_reader_feed(&r, m, 12, &err), BST_INTERNAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "more than one"));
    grpc_reader_dispose(&r);
}
END_TEST

START_TEST(test_grpc_reader_no_message_or_truncated_is_internal)
{
    unsigned char m[7] = {0, 0, 0, 0, 9, 'a', 'b'};
    struct grpc_reader r;
    struct bst_err err;
    grpc_reader_init(&r, 16);
    ck_assert_int_eq(grpc_reader_finish(&r, &err), BST_INTERNAL);
    grpc_reader_dispose(&r);
    grpc_reader_init(&r, 16);
    ck_assert_int_eq(grpc_reader_feed(&r, m, 7, &err), BST_OK);
    ck_assert_int_eq(grpc_reader_finish(&r, &err), BST_INTERNAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "truncated"));
    grpc_reader_dispose(&r);
    grpc_reader_init(&r, 16);
    ck_assert_int_eq(grpc_reader_feed(&r, m, 3, &err), BST_OK); /* half a prefix */
    ck_assert_int_eq(grpc_reader_finish(&r, &err), BST_INTERNAL);
    grpc_reader_dispose(&r);
}
END_TEST

static int64_t timeout_of(const char *s)
{
    int64_t ns = -7;
    if (grpc_timeout_parse(s, strlen(s), &ns) != 0)
        return -1;
    return ns;
}

START_TEST(test_grpc_timeout_units)
{
    ck_assert_int_eq(timeout_of("1n"), 1);
    ck_assert_int_eq(timeout_of("5u"), 5000);
    ck_assert_int_eq(timeout_of("250m"), 250000000);
    ck_assert_int_eq(timeout_of("10S"), INT64_C(10000000000));
    ck_assert_int_eq(timeout_of("2M"), INT64_C(120000000000));
    ck_assert_int_eq(timeout_of("1H"), INT64_C(3600000000000));
    ck_assert_int_eq(timeout_of("0m"), 0);
    ck_assert_int_eq(timeout_of("99999999n"), 99999999);
}
END_TEST

START_TEST(test_grpc_timeout_malformed_refused)
{
    const char *bad[] = {"",     "S",   "1",   "123456789S", "10x",   "-1S",
                         "1.5S", " 1S", "1S ", "1s",         "0x10S", "1SS"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(timeout_of(bad[i]) == -1, "'%s' accepted", bad[i]);
}
END_TEST

START_TEST(test_grpc_timeout_largest_value_does_not_overflow)
{
    int64_t ns = timeout_of("99999999H");
    ck_assert_int_gt(ns, 0);
    ck_assert_int_eq(ns, INT64_MAX);
}
END_TEST

START_TEST(test_grpc_message_percent_encoded_and_controls_escaped)
{
    char out[3 * GRPC_MAX_MESSAGE_MESSAGE + 1];
    grpc_message_encode(out, sizeof(out), "50% done\r\n\x1b[31mred");
    ck_assert_str_eq(out, "50%25 done???[31mred");
    grpc_message_encode(out, sizeof(out), "caf\xc3\xa9");
    ck_assert_str_eq(out, "caf%C3%A9");
    grpc_message_encode(out, sizeof(out), "bad \xff byte");
    ck_assert_str_eq(out, "bad %EF%BF%BD byte"); /* U+FFFD */
    for (const char *p = out; *p; p++)
        ck_assert(*p >= 0x20 && *p <= 0x7e);
}
END_TEST

START_TEST(test_grpc_message_truncated_to_limit)
{
    char in[2000], out[3 * GRPC_MAX_MESSAGE_MESSAGE + 1];
    memset(in, 'a', sizeof(in) - 1);
    in[sizeof(in) - 1] = '\0';
    grpc_message_encode(out, sizeof(out), in);
    ck_assert_uint_le(strlen(out), GRPC_MAX_MESSAGE_MESSAGE);
    /* A small output buffer never overflows and never splits an escape. */
    grpc_message_encode(out, 5, "\x01\x02\x03");
    ck_assert_str_eq(out, "???");
    grpc_message_encode(out, 5, "%%%");
    ck_assert_str_eq(out, "%25");
}
END_TEST

START_TEST(test_grpc_content_type_rules)
{
#define CT(s) grpc_content_type_ok(s, strlen(s))
#define IS(s) grpc_content_type_is_grpc(s, strlen(s))
    ck_assert(CT("application/grpc"));
    ck_assert(CT("application/grpc+proto"));
    ck_assert(CT("application/grpc;charset=utf-8"));
    ck_assert(!CT("application/grpc+json"));
    ck_assert(IS("application/grpc+json"));
    ck_assert(!CT("application/grpcx"));
    ck_assert(!IS("application/grpcx"));
    ck_assert(!IS("application/json"));
    ck_assert(!IS("application/grp"));
    ck_assert(!CT("application/grpc+protobuf"));
#undef CT
#undef IS
}
END_TEST

int main(void)
{
    Suite *s = suite_create("grpc");
    TCase *tc = tcase_create("grpc");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_grpc_reader_one_message_in_any_chunking);
    tcase_add_test(tc, test_grpc_reader_empty_message_is_one_message);
    tcase_add_test(tc, test_grpc_reader_oversized_prefix_refused_before_allocation);
    tcase_add_test(tc, test_grpc_reader_compressed_flag_without_encoding_is_internal);
    tcase_add_test(tc, test_grpc_reader_flag_other_than_0_or_1_is_internal);
    tcase_add_test(tc, test_grpc_reader_two_messages_in_unary_call_is_internal);
    tcase_add_test(tc, test_grpc_reader_no_message_or_truncated_is_internal);
    tcase_add_test(tc, test_grpc_timeout_units);
    tcase_add_test(tc, test_grpc_timeout_malformed_refused);
    tcase_add_test(tc, test_grpc_timeout_largest_value_does_not_overflow);
    tcase_add_test(tc, test_grpc_message_percent_encoded_and_controls_escaped);
    tcase_add_test(tc, test_grpc_message_truncated_to_limit);
    tcase_add_test(tc, test_grpc_content_type_rules);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
