/* Tests for kube/render.c: kubectl's AGE format, RFC 3339 parsing, and renderings that keep
 * their table shape and never pass control characters through. */
#include "render.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static void *plain_alloc(void *arg, size_t n)
{
    (void)arg;
    return calloc(1, n); /* each test frees the one text it renders */
}

static struct kube_ctx ctx = {NULL, 0, plain_alloc, NULL};

START_TEST(test_render_age_matches_kubectl)
{
    static const struct {
        int64_t s;
        const char *want;
    } cases[] = {{0, "0s"},
                 {59, "59s"},
                 {119, "119s"},
                 {120, "2m"},
                 {192, "3m12s"},
                 {600, "10m"},
                 {3 * 3600 - 1, "179m"},
                 {3 * 3600, "3h"},
                 {7 * 3600 + 1800, "7h30m"},
                 {26 * 3600, "26h"},
                 {2 * 86400, "2d"},
                 {3 * 86400 + 4 * 3600, "3d4h"},
                 {62 * 86400, "62d"},
                 {800 * 86400, "2y70d"},
                 {-5, "0s"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[32];
        kube_human_age(cases[i].s, buf, sizeof(buf));
        ck_assert_msg(strcmp(buf, cases[i].want) == 0, "%lld: %s, want %s", (long long)cases[i].s,
                      buf, cases[i].want);
    }
}
END_TEST

START_TEST(test_render_parses_rfc3339_utc_only)
{
    ck_assert_int_eq(kube_parse_time("1970-01-01T00:01:00Z"), 60);
    ck_assert_int_eq(kube_parse_time("2026-01-01T00:00:00Z"), 1767225600);
    ck_assert_int_eq(kube_parse_time("2026-01-01T00:00:00+01:00"), -1);
    ck_assert_int_eq(kube_parse_time("yesterday"), -1);
    ck_assert_int_eq(kube_parse_time(NULL), -1);
}
END_TEST

START_TEST(test_render_pods_table_escapes_control_characters)
{
    Bastion__V1__ListPodsArgs a = BASTION__V1__LIST_PODS_ARGS__INIT;
    Bastion__V1__ListPodsResult r = BASTION__V1__LIST_PODS_RESULT__INIT;
    Bastion__V1__Pod p = BASTION__V1__POD__INIT, *ps[] = {&p};
    char *text;

    a.namespace_ = "default";
    p.name = "evil\x1b[31m\nname";
    p.status = "Running";
    p.creation_timestamp = "2026-01-01T00:00:00Z";
    p.ready_containers = 1;
    p.total_containers = 1;
    r.pods = ps;
    r.n_pods = 1;
    text = kube_render_list_pods(&a.base, &r.base, 1767225600 + 3600, &ctx);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_null(strchr(text, '\x1b'));
    ck_assert_ptr_nonnull(strstr(text, "evil?[31m?name"));
    ck_assert_ptr_nonnull(strstr(text, "60m"));
    ck_assert_int_eq(strncmp(text, "NAME ", 5), 0);
    free(text);
    r.n_pods = 0;
    text = kube_render_list_pods(&a.base, &r.base, 0, &ctx);
    ck_assert_str_eq(text, "No resources found in default namespace.\n");
    free(text);
}
END_TEST

START_TEST(test_render_log_text_keeps_lines_and_neutralises_other_controls)
{
    char *t = kube_sanitize_text("a\tb\nc\x1b[2Jd\x7f\xff\n", &ctx);
    ck_assert_str_eq(t, "a\tb\nc?[2Jd??\n");
    free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("render");
    TCase *tc = tcase_create("render");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_render_age_matches_kubectl);
    tcase_add_test(tc, test_render_parses_rfc3339_utc_only);
    tcase_add_test(tc, test_render_pods_table_escapes_control_characters);
    tcase_add_test(tc, test_render_log_text_keeps_lines_and_neutralises_other_controls);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
