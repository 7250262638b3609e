/* Tests for common/text.c: strict UTF-8 validation, the offset of the first bad byte, and
 * sanitising text that is echoed to peers, logs and terminals. */
#include "text.h"

#include <check.h>
#include <stdint.h>
#include <string.h>

START_TEST(test_utf8_valid_accepts_every_boundary_of_the_encoding)
{
    static const char *const ok[] = {
        "",
        "plain ascii",
        "\xC2\x80",         /* U+0080 */
        "\xDF\xBF",         /* U+07FF */
        "\xE0\xA0\x80",     /* U+0800 */
        "\xED\x9F\xBF",     /* U+D7FF, last before the surrogates */
        "\xEE\x80\x80",     /* U+E000, first after them */
        "\xEF\xBF\xBF",     /* U+FFFF */
        "\xF0\x90\x80\x80", /* U+10000 */
        "\xF4\x8F\xBF\xBF", /* U+10FFFF */
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        ck_assert_msg(bst_utf8_valid(ok[i], strlen(ok[i])), "case %zu refused", i);
    /* NUL is valid UTF-8; only a protobuf string field refuses it. */
    ck_assert_int_eq(bst_utf8_valid("a\0b", 3), 1);
}
END_TEST

START_TEST(test_utf8_valid_refuses_overlongs_surrogates_and_truncation)
{
    static const char *const bad[] = {
        "\x80",
        "\xBF",
        "\xC0\x80",
        "\xC1\xBF",
        "\xE0\x9F\xBF",
        "\xED\xA0\x80",
        "\xED\xBF\xBF",
        "\xF0\x8F\xBF\xBF",
        "\xF4\x90\x80\x80",
        "\xF5\x80\x80\x80",
        "\xFE",
        "\xFF",
        "\xC2",
        "\xE2\x82",
        "\xF0\x9F\xA4",
        "\xC2\x41",
        "\xE2\x28\xA1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!bst_utf8_valid(bad[i], strlen(bad[i])), "case %zu accepted", i);
    /* The length bounds the check: a valid prefix of an invalid buffer is valid. */
    ck_assert_int_eq(bst_utf8_valid("ok\xFF", 2), 1);
    ck_assert_int_eq(bst_utf8_valid("\xE2\x82\xAC", 2), 0);
}
END_TEST

static void expect_sanitized(const char *src, size_t srclen, size_t dstlen, const char *want)
{
    char dst[64];
    size_t n;

    ck_assert_uint_le(dstlen, sizeof(dst));
    memset(dst, 'X', sizeof(dst));
    n = bst_text_sanitize(dst, dstlen, src, srclen);
    ck_assert_str_eq(dst, want);
    ck_assert_uint_eq(n, strlen(want));
    if (dstlen < sizeof(dst))
        ck_assert_int_eq(dst[dstlen], 'X'); /* nothing written past dstlen */
}

START_TEST(test_text_sanitize_replaces_controls_with_question_marks)
{
    expect_sanitized("a\tb\nc\rd", 7, 64, "a?b?c?d");
    expect_sanitized("nul\0here", 8, 64, "nul?here");
    expect_sanitized("\x1b[31mred\x1b[0m", 12, 64, "?[31mred?[0m");
    expect_sanitized("\x1b]0;title\x07", 10, 64, "?]0;title?");
    expect_sanitized("del\x7f", 4, 64, "del?");
    /* C1 controls, encoded as UTF-8: NEL and CSI (a terminal treats CSI as ESC [). */
    expect_sanitized("x\xC2\x85y\xC2\x9B"
                     "2J",
                     8, 64, "x?y?2J");
    /* U+00A0, just past the C1 range, is printable. */
    expect_sanitized("\xC2\xA0", 2, 64, "\xC2\xA0");
    expect_sanitized("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\xA4\x96", 14, 64,
                     "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\xA4\x96");
}
END_TEST

START_TEST(test_text_sanitize_replaces_invalid_utf8_with_replacement_character)
{
    expect_sanitized("a\xFF"
                     "b",
                     3, 64,
                     "a\xEF\xBF\xBD"
                     "b");
    /* A truncated sequence is one replacement; the byte that cut it is kept. */
    expect_sanitized("\xE2\x82"
                     "A",
                     3, 64,
                     "\xEF\xBF\xBD"
                     "A");
    /* An overlong and a surrogate: each byte that cannot start a valid prefix is one U+FFFD. */
    expect_sanitized("\xC0\xAF", 2, 64, "\xEF\xBF\xBD\xEF\xBF\xBD");
    expect_sanitized("\xED\xA0\x80", 3, 64, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    /* Truncated at the very end of the input. */
    expect_sanitized("ok\xF0\x9F\xA4", 5, 64, "ok\xEF\xBF\xBD");
}
END_TEST

START_TEST(test_text_sanitize_never_cuts_a_character_at_the_end)
{
    /* "ab€": € is 3 bytes. With dstlen 5 there is room for 4 bytes: "ab" and not half a €. */
    expect_sanitized("ab\xE2\x82\xAC", 5, 5, "ab");
    expect_sanitized("ab\xE2\x82\xAC", 5, 6, "ab\xE2\x82\xAC");
    /* The replacement character is not cut either. */
    expect_sanitized("a\xFF", 2, 4, "a");
    expect_sanitized("a\xFF", 2, 5, "a\xEF\xBF\xBD");
    expect_sanitized("abc", 3, 1, "");
    expect_sanitized("abc", 3, 3, "ab");
    expect_sanitized(NULL, 0, 8, "");
}
END_TEST

START_TEST(test_text_sanitize_with_no_room_writes_nothing)
{
    char dst[1] = {'X'};
    ck_assert_uint_eq(bst_text_sanitize(dst, 0, "abc", 3), 0);
    ck_assert_int_eq(dst[0], 'X');
}
END_TEST

START_TEST(test_text_sanitize_output_is_always_printable_utf8)
{
    /* Every byte value, alone and after a lead byte of each length. */
    char src[3], dst[16];
    for (unsigned lead = 0; lead < 4; lead++) {
        static const unsigned char leads[] = {0x00, 0xC3, 0xE2, 0xF0};
        for (unsigned b = 0; b < 256; b++) {
            size_t n = 0, out;
            if (lead != 0)
                src[n++] = (char)leads[lead];
            src[n++] = (char)b;
            out = bst_text_sanitize(dst, sizeof(dst), src, n);
            ck_assert(bst_utf8_valid(dst, out));
            for (size_t i = 0; i < out; i++) {
                unsigned char c = (unsigned char)dst[i];
                ck_assert(c >= 0x20 && c != 0x7f);
                if (c == 0xC2 && i + 1 < out)
                    ck_assert_uint_ge((unsigned char)dst[i + 1], 0xA0);
            }
        }
    }
}
END_TEST

START_TEST(test_utf8_bad_offset_points_at_the_first_bad_byte)
{
    ck_assert_uint_eq(bst_utf8_bad_offset("abc", 3), 3);
    ck_assert_uint_eq(bst_utf8_bad_offset("ab\xff", 3), 2);
    ck_assert_uint_eq(bst_utf8_bad_offset("caf\xc3\xa9!\xc0\xaf", 8), 6); /* overlong '/' */
    ck_assert_uint_eq(bst_utf8_bad_offset("x\xed\xa0\x80", 4), 1);        /* surrogate */
    ck_assert_uint_eq(bst_utf8_bad_offset("\xe2\x82", 2), 0);             /* truncated */
    ck_assert_uint_eq(bst_utf8_bad_offset("\xf4\x90\x80\x80", 4), 0);     /* > U+10FFFF */
}
END_TEST

START_TEST(test_hex_round_trip_and_refusals)
{
    const unsigned char in[4] = {0x00, 0x9f, 0xa0, 0xff};
    unsigned char out[4];
    char hex[9];
    bst_hex_encode(hex, in, sizeof(in));
    ck_assert_str_eq(hex, "009fa0ff");
    ck_assert_int_eq(bst_hex_decode("009FA0ff", out, 4), 0);
    ck_assert_mem_eq(out, in, 4);
    ck_assert_int_eq(bst_hex_decode("009fa0fg", out, 4), -1);
    ck_assert_int_eq(bst_hex_decode("0x9fa0ff", out, 4), -1);
    ck_assert_int_eq(bst_hex_value(' '), -1);
    ck_assert_int_eq(bst_hex_value('F'), 15);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("text");
    TCase *tc = tcase_create("text");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_utf8_valid_accepts_every_boundary_of_the_encoding);
    tcase_add_test(tc, test_utf8_valid_refuses_overlongs_surrogates_and_truncation);
    tcase_add_test(tc, test_text_sanitize_replaces_controls_with_question_marks);
    tcase_add_test(tc, test_text_sanitize_replaces_invalid_utf8_with_replacement_character);
    tcase_add_test(tc, test_text_sanitize_never_cuts_a_character_at_the_end);
    tcase_add_test(tc, test_text_sanitize_with_no_room_writes_nothing);
    tcase_add_test(tc, test_text_sanitize_output_is_always_printable_utf8);
    tcase_add_test(tc, test_utf8_bad_offset_points_at_the_first_bad_byte);
    tcase_add_test(tc, test_hex_round_trip_and_refusals);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
