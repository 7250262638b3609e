/* Tests for common/status.c: status names equal the gRPC code names, and the error-buffer
 * helpers format, prefix and truncate without overflowing. */
#include "status.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* The gRPC status codes, from grpc/grpc doc/statuscodes.md (and google.rpc.Code). Written out
 * here rather than taken from status.c so that a slip in either shows up. */
static const struct {
    int code;
    const char *name;
} grpc_codes[] = {
    {0, "OK"},
    {1, "CANCELLED"},
    {2, "UNKNOWN"},
    {3, "INVALID_ARGUMENT"},
    {4, "DEADLINE_EXCEEDED"},
    {5, "NOT_FOUND"},
    {6, "ALREADY_EXISTS"},
    {7, "PERMISSION_DENIED"},
    {8, "RESOURCE_EXHAUSTED"},
    {9, "FAILED_PRECONDITION"},
    {10, "ABORTED"},
    {11, "OUT_OF_RANGE"},
    {12, "UNIMPLEMENTED"},
    {13, "INTERNAL"},
    {14, "UNAVAILABLE"},
    {15, "DATA_LOSS"},
    {16, "UNAUTHENTICATED"},
};

#define N_CODES (sizeof(grpc_codes) / sizeof(grpc_codes[0]))

START_TEST(test_status_names_equal_grpc_names_for_every_code)
{
    ck_assert_int_eq(BST_STATUS_MAX + 1, (int)N_CODES);
    for (size_t i = 0; i < N_CODES; i++)
        ck_assert_str_eq(bst_status_name((enum bst_status)grpc_codes[i].code), grpc_codes[i].name);
}
END_TEST

START_TEST(test_status_enum_values_equal_grpc_codes)
{
    /* Converting a status to the wire is the identity. */
    ck_assert_int_eq(BST_OK, 0);
    ck_assert_int_eq(BST_INVALID_ARGUMENT, 3);
    ck_assert_int_eq(BST_NOT_FOUND, 5);
    ck_assert_int_eq(BST_PERMISSION_DENIED, 7);
    ck_assert_int_eq(BST_RESOURCE_EXHAUSTED, 8);
    ck_assert_int_eq(BST_FAILED_PRECONDITION, 9);
    ck_assert_int_eq(BST_UNIMPLEMENTED, 12);
    ck_assert_int_eq(BST_INTERNAL, 13);
    ck_assert_int_eq(BST_UNAVAILABLE, 14);
    ck_assert_int_eq(BST_UNAUTHENTICATED, 16);
}
END_TEST

START_TEST(test_status_out_of_range_is_unknown)
{
    static const int bad[] = {17, 99, 1000, -1, -17};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_str_eq(bst_status_name((enum bst_status)bad[i]), "UNKNOWN");
        ck_assert_str_eq(bst_status_str((enum bst_status)bad[i]), bst_status_str(BST_UNKNOWN));
    }
}
END_TEST

START_TEST(test_status_str_is_a_distinct_sentence_for_every_code)
{
    for (size_t i = 0; i < N_CODES; i++) {
        const char *s = bst_status_str((enum bst_status)i);
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_gt(strlen(s), 0);
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(s, bst_status_str((enum bst_status)j));
    }
}
END_TEST

START_TEST(test_errf_formats_and_returns_the_code)
{
    struct bst_err err = {BST_OK, ""};

    ck_assert_int_eq(bst_errf(&err, BST_NOT_FOUND, "%s: no such file (%d)", "/etc/x", 2),
                     BST_NOT_FOUND);
    ck_assert_int_eq(err.code, BST_NOT_FOUND);
    ck_assert_str_eq(err.msg, "/etc/x: no such file (2)");
    /* A NULL buffer is allowed: only the code comes back. */
    ck_assert_int_eq(bst_errf(NULL, BST_INTERNAL, "%s", "ignored"), BST_INTERNAL);
}
END_TEST

START_TEST(test_errf_truncates_a_long_message_to_the_buffer)
{
    struct bst_err err;
    char long_text[600];

    memset(&err, 'Z', sizeof(err));
    memset(long_text, 'a', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    ck_assert_int_eq(bst_errf(&err, BST_INVALID_ARGUMENT, "%s", long_text), BST_INVALID_ARGUMENT);
    ck_assert_uint_eq(strlen(err.msg), sizeof(err.msg) - 1);
    ck_assert_int_eq(err.msg[sizeof(err.msg) - 1], '\0');
}
END_TEST

START_TEST(test_err_prefix_prepends_with_a_colon)
{
    struct bst_err err;

    bst_errf(&err, BST_INVALID_ARGUMENT, "unknown key \"tls_cert\"");
    bst_err_prefix(&err, "%s:%d:%d", "bastion.yaml", 12, 3);
    ck_assert_str_eq(err.msg, "bastion.yaml:12:3: unknown key \"tls_cert\"");
    ck_assert_int_eq(err.code, BST_INVALID_ARGUMENT); /* the code is kept */
    bst_err_prefix(&err, "listeners[0]");
    ck_assert_str_eq(err.msg, "listeners[0]: bastion.yaml:12:3: unknown key \"tls_cert\"");
    bst_err_prefix(NULL, "ignored");
}
END_TEST

START_TEST(test_err_prefix_truncates_a_600_byte_message_safely)
{
    struct bst_err err;
    char text[600], prefix[600];

    memset(text, 'm', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    bst_errf(&err, BST_INTERNAL, "%s", text); /* cut to 511 bytes */

    bst_err_prefix(&err, "file.pem");
    ck_assert_uint_eq(strlen(err.msg), sizeof(err.msg) - 1);
    ck_assert_int_eq(strncmp(err.msg, "file.pem: mmm", 13), 0);
    ck_assert_uint_eq(strspn(err.msg + 10, "m"), sizeof(err.msg) - 1 - 10);

    /* A prefix longer than the whole buffer is cut too and never overflows. */
    memset(prefix, 'p', sizeof(prefix) - 1);
    prefix[sizeof(prefix) - 1] = '\0';
    bst_err_prefix(&err, "%s", prefix);
    ck_assert_uint_le(strlen(err.msg), sizeof(err.msg) - 1);
    ck_assert_int_eq(err.msg[0], 'p');
    ck_assert_int_eq(err.code, BST_INTERNAL);
}
END_TEST

static Suite *status_suite(void)
{
    Suite *s = suite_create("status");
    TCase *tc = tcase_create("names");
    tcase_add_test(tc, test_status_names_equal_grpc_names_for_every_code);
    tcase_add_test(tc, test_status_enum_values_equal_grpc_codes);
    tcase_add_test(tc, test_status_out_of_range_is_unknown);
    tcase_add_test(tc, test_status_str_is_a_distinct_sentence_for_every_code);
    suite_add_tcase(s, tc);

    tc = tcase_create("err");
    tcase_add_test(tc, test_errf_formats_and_returns_the_code);
    tcase_add_test(tc, test_errf_truncates_a_long_message_to_the_buffer);
    tcase_add_test(tc, test_err_prefix_prepends_with_a_colon);
    tcase_add_test(tc, test_err_prefix_truncates_a_600_byte_message_safely);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(status_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
