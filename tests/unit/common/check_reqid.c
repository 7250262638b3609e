/* Tests for common/reqid.c: request ids are unique, 32 lower-case hex characters, and the hex
 * spells the bytes. */
#include "reqid.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#define N_IDS 10000

static int cmp_ids(const void *a, const void *b)
{
    return memcmp(a, b, BST_REQID_HEX_LEN + 1);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* upper case included: the format is lower case only */
}

START_TEST(test_reqid_ten_thousand_ids_are_unique_lowercase_hex_of_their_bytes)
{
    char(*hex)[BST_REQID_HEX_LEN + 1] = calloc(N_IDS, sizeof(*hex));

    ck_assert_ptr_nonnull(hex);
    for (int i = 0; i < N_IDS; i++) {
        struct bst_reqid id;
        memset(&id, 'X', sizeof(id));
        ck_assert_int_eq(bst_reqid_new(&id), BST_OK);
        ck_assert_uint_eq(strlen(id.hex), BST_REQID_HEX_LEN);
        for (int j = 0; j < BST_REQID_BYTES; j++) {
            int hi = hex_value(id.hex[2 * j]), lo = hex_value(id.hex[2 * j + 1]);
            ck_assert_msg(hi >= 0 && lo >= 0, "not lower-case hex: %s", id.hex);
            ck_assert_int_eq(hi * 16 + lo, id.bytes[j]);
        }
        memcpy(hex[i], id.hex, sizeof(hex[i]));
    }
    qsort(hex, N_IDS, sizeof(*hex), cmp_ids);
    for (int i = 1; i < N_IDS; i++)
        ck_assert_msg(strcmp(hex[i - 1], hex[i]) != 0, "duplicate id %s", hex[i]);
    free(hex);
}
END_TEST

START_TEST(test_reqid_bytes_are_not_constant)
{
    /* Uniqueness alone would also pass for a counter: every byte position must vary. */
    struct bst_reqid first, id;
    int differs[BST_REQID_BYTES] = {0};

    ck_assert_int_eq(bst_reqid_new(&first), BST_OK);
    for (int i = 0; i < 64; i++) {
        ck_assert_int_eq(bst_reqid_new(&id), BST_OK);
        for (int j = 0; j < BST_REQID_BYTES; j++)
            differs[j] |= id.bytes[j] != first.bytes[j];
    }
    for (int j = 0; j < BST_REQID_BYTES; j++)
        ck_assert_msg(differs[j], "byte %d never changed in 64 ids", j);
}
END_TEST

static Suite *reqid_suite(void)
{
    Suite *s = suite_create("reqid");
    TCase *tc = tcase_create("reqid");
    tcase_add_test(tc, test_reqid_ten_thousand_ids_are_unique_lowercase_hex_of_their_bytes);
    tcase_add_test(tc, test_reqid_bytes_are_not_constant);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(reqid_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
