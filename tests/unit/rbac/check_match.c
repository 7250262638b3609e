/* Tests for rbac/match.c: DNS-1123 namespace labels, namespace globs (the fnmatch traps from the
 * security anchors), pattern overlap, and the permission grammar with its wildcards. */
#include "rbac.h"
#include "rbac_internal.h"

#include <check.h>
#include <fnmatch.h>
#include <string.h>

START_TEST(test_rbac_namespace_accepts_dns1123_labels)
{
    static const char *const ok[] = {
        "a", "0", "default", "kube-system", "feature-x-2", "a-b", "123",
        /* 63 characters */
        "abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefgh"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        ck_assert_msg(rbac_namespace_valid(ok[i]), "'%s' refused", ok[i]);
    ck_assert_int_eq(strlen(ok[7]), 63);
}
END_TEST

START_TEST(test_rbac_namespace_refuses_everything_else)
{
    static const char *const bad[] = {
        "", ".", "..", "/", "%2F", "a/b", "feature-x/../prod", "feature-x\n", "FEATURE-x",
        "Default", " default", "default ", "-a", "a-", "a_b", "a.b", "a\tb", "caf\xc3\xa9",
        "feature-x\r", "*", "a*",
        /* 64 characters */
        "abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghi"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!rbac_namespace_valid(bad[i]), "case %zu accepted", i);
    ck_assert_int_eq(rbac_namespace_valid(NULL), 0);
}
END_TEST

START_TEST(test_rbac_namespace_glob_does_not_cross_slash_newline_or_case)
{
    /* What fnmatch(3) with default flags gets wrong: these are the anchors' cases. */
    ck_assert_int_eq(fnmatch("feature-*", "feature-x/../prod", 0), 0);
    ck_assert_int_eq(fnmatch("feature-*", "feature-x\n", 0), 0);

    ck_assert_int_eq(rbac_ns_pattern_match("feature-*", "feature-x/../prod"), 0);
    ck_assert_int_eq(rbac_ns_pattern_match("feature-*", "feature-x\n"), 0);
    ck_assert_int_eq(rbac_ns_pattern_match("feature-*", "FEATURE-x"), 0);
    ck_assert_int_eq(rbac_ns_pattern_match("feature-*", "Feature-x"), 0);
    ck_assert_int_eq(rbac_ns_pattern_match("feature-*", ""), 0);
    ck_assert_int_eq(rbac_ns_pattern_match("feature-*", NULL), 0);
    ck_assert_int_eq(rbac_ns_pattern_match("feature-*", "feature-"), 0);
    ck_assert_int_eq(rbac_ns_pattern_match("feature-*", "feature"), 0);
    ck_assert_int_eq(rbac_ns_pattern_match("feature-*", "xfeature-a"), 0);
    ck_assert_int_eq(rbac_ns_pattern_match("feature-*", "feature-a b"), 0);
    ck_assert_int_eq(rbac_ns_pattern_match("*", ""), 0);
    ck_assert_int_eq(rbac_ns_pattern_match("*", "a/b"), 0);
    ck_assert_int_eq(rbac_ns_pattern_match("*", "prod\n"), 0);

    ck_assert_int_eq(rbac_ns_pattern_match("feature-*", "feature-x"), 1);
    ck_assert_int_eq(rbac_ns_pattern_match("feature-*", "feature-login-2"), 1);
    ck_assert_int_eq(rbac_ns_pattern_match("team-a*", "team-a"), 1); /* '*' may match nothing */
    ck_assert_int_eq(rbac_ns_pattern_match("*", "prod"), 1);
    ck_assert_int_eq(rbac_ns_pattern_match("default", "default"), 1);
    ck_assert_int_eq(rbac_ns_pattern_match("default", "default2"), 0);
    ck_assert_int_eq(rbac_ns_pattern_match("default", "defaul"), 0);
}
END_TEST

START_TEST(test_rbac_namespace_pattern_grammar)
{
    static const char *const ok[] = {"*", "default", "feature-*", "a*", "team-a-*", "0*"};
    static const char *const bad[] = {"", "**", "*-x", "fe*ture", "feature-**", "?", "[a-z]*",
                                      "Feature-*", "-a*", "a/b*", "a b", "a\n", "feature-x/../prod",
                                      "a.b", "*a*",
                                      /* 63-character prefix plus '*' leaves no room */
                                      "abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghij-"
                                      "abcdefgh*"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        ck_assert_msg(rbac_ns_pattern_valid(ok[i]), "'%s' refused", ok[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!rbac_ns_pattern_valid(bad[i]), "case %zu accepted", i);
    /* An invalid pattern matches nothing, not even what it spells. */
    ck_assert_int_eq(rbac_ns_pattern_match("Default", "default"), 0);
}
END_TEST

static int overlap(const char *a, const char *b)
{
    struct rbac_pat pa, pb;
    ck_assert(rbac_pat_compile(a, strlen(a), &pa));
    ck_assert(rbac_pat_compile(b, strlen(b), &pb));
    ck_assert_int_eq(rbac_pat_overlap(&pa, &pb), rbac_pat_overlap(&pb, &pa));
    return rbac_pat_overlap(&pa, &pb);
}

START_TEST(test_rbac_pattern_overlap_is_exact_for_prefixes_and_names)
{
    ck_assert_int_eq(overlap("team-a-*", "team-b-*"), 0);
    ck_assert_int_eq(overlap("team-a*", "team-ab-*"), 1);
    ck_assert_int_eq(overlap("team-a-*", "team-a-x"), 1);
    ck_assert_int_eq(overlap("team-a-*", "team-b-x"), 0);
    ck_assert_int_eq(overlap("a", "a"), 1);
    ck_assert_int_eq(overlap("a", "b"), 0);
    ck_assert_int_eq(overlap("*", "b"), 1);
    ck_assert_int_eq(overlap("a*", "a"), 1);
    ck_assert_int_eq(overlap("ab*", "a"), 0);
}
END_TEST

START_TEST(test_rbac_permission_grammar)
{
    static const char *const exact[] = {"k8s:pods:list", "k8s:namespaces:list",
                                        "k8s:secrets:manage", "k8s:a1-b:c-2"};
    static const char *const wild[] = {"k8s:pods:*", "k8s:*"};
    static const char *const bad[] = {"",
                                      "k8s",
                                      "k8s:",
                                      "k8s:pods",
                                      "k8s:pods:",
                                      "k8s:po*",
                                      "k8s:pods:li*",
                                      "*:pods:list",
                                      "*",
                                      "k8s:*:list",
                                      "k8s:**",
                                      "K8S:pods:list",
                                      "k8s:Pods:list",
                                      "k8s:pods:list:x",
                                      "k9s:pods:list",
                                      "k8s::list",
                                      "k8s:pods:*x",
                                      "k8s:1pods:list",
                                      " k8s:pods:list",
                                      "k8s:pods:list\n",
                                      "k8s:pods/x:list"};
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++) {
        ck_assert_msg(rbac_permission_valid(exact[i], 0), "'%s' refused", exact[i]);
        ck_assert(rbac_permission_valid(exact[i], 1));
    }
    for (size_t i = 0; i < sizeof(wild) / sizeof(wild[0]); i++) {
        ck_assert_msg(!rbac_permission_valid(wild[i], 0), "'%s' accepted as exact", wild[i]);
        ck_assert_msg(rbac_permission_valid(wild[i], 1), "'%s' refused", wild[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!rbac_permission_valid(bad[i], 1), "case %zu ('%s') accepted", i, bad[i]);
    ck_assert_int_eq(rbac_permission_valid(NULL, 1), 0);
}
END_TEST

START_TEST(test_rbac_permission_wildcards_grant_whole_segments_only)
{
    ck_assert_int_eq(rbac_permission_grants("k8s:*", "k8s:secrets:manage"), 1);
    ck_assert_int_eq(rbac_permission_grants("k8s:pods:*", "k8s:pods:delete"), 1);
    ck_assert_int_eq(rbac_permission_grants("k8s:pods:*", "k8s:podsx:delete"), 0);
    ck_assert_int_eq(rbac_permission_grants("k8s:pods:*", "k8s:deployments:list"), 0);
    ck_assert_int_eq(rbac_permission_grants("k8s:pods:list", "k8s:pods:list"), 1);
    ck_assert_int_eq(rbac_permission_grants("k8s:pods:list", "k8s:pods:logs"), 0);
    /* Malformed patterns grant nothing, whatever they look like to a prefix match. */
    ck_assert_int_eq(rbac_permission_grants("k8s:po*", "k8s:pods:list"), 0);
    ck_assert_int_eq(rbac_permission_grants("*", "k8s:pods:list"), 0);
    ck_assert_int_eq(rbac_permission_grants("k8s:pods:", "k8s:pods:list"), 0);
    ck_assert_int_eq(rbac_permission_grants("*:pods:list", "k8s:pods:list"), 0);
    /* A wildcard is never a permission being asked for. */
    ck_assert_int_eq(rbac_permission_grants("k8s:*", "k8s:pods:*"), 0);
    ck_assert_int_eq(rbac_permission_grants(NULL, "k8s:pods:list"), 0);
    ck_assert_int_eq(rbac_permission_grants("k8s:*", NULL), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rbac_match");
    TCase *tc = tcase_create("match");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_rbac_namespace_accepts_dns1123_labels);
    tcase_add_test(tc, test_rbac_namespace_refuses_everything_else);
    tcase_add_test(tc, test_rbac_namespace_glob_does_not_cross_slash_newline_or_case);
    tcase_add_test(tc, test_rbac_namespace_pattern_grammar);
    tcase_add_test(tc, test_rbac_pattern_overlap_is_exact_for_prefixes_and_names);
    tcase_add_test(tc, test_rbac_permission_grammar);
    tcase_add_test(tc, test_rbac_permission_wildcards_grant_whole_segments_only);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
