/* Tests for kube/selector.c and kube/names.c: label selectors parse exactly as Kubernetes parses
 * them (equality and set-based requirements, strict refusals with positions) and match with
 * Kubernetes' semantics (!= and notin match objects without the key). */
#include "names.h"
#include "selector.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct kube_kv web[] = {{"app", "web"}, {"tier", "frontend"}, {"env", "prod"}, {"rev", "7"}};
static struct kube_kv db[] = {{"app", "db"}, {"tier", "db"}, {"canary", ""}};

static int matches(const char *sel, struct kube_kv *labels, size_t n)
{
    struct kube_selector *s;
    struct bst_err err = {BST_OK, ""};
    int m;
    ck_assert_msg(kube_selector_parse(sel, &s, &err) == BST_OK, "'%s': %s", sel, err.msg);
    m = kube_selector_matches(s, labels, n);
    kube_selector_free(s);
    return m;
}

#define WEB(sel) matches(sel, web, 4)
#define DB(sel) matches(sel, db, 3)

START_TEST(test_selector_equality_and_inequality)
{
    ck_assert(WEB("app=web"));
    ck_assert(WEB("app==web"));
    ck_assert(WEB(" app = web , tier != db "));
    ck_assert(!DB("app=web,tier!=db"));
    ck_assert(WEB("app=web,tier!=db"));
    ck_assert(!WEB("app=db"));
    /* != matches objects without the key at all, as in Kubernetes. */
    ck_assert(WEB("missing!=x"));
    ck_assert(DB("canary="));
    ck_assert(!WEB("canary="));
}
END_TEST

START_TEST(test_selector_set_based_and_existence)
{
    ck_assert(WEB("env in (prod,staging)"));
    ck_assert(!DB("env in (prod,staging)"));
    ck_assert(DB("env notin (prod)")); /* no env label: notin matches */
    ck_assert(!WEB("env notin (prod)"));
    ck_assert(DB("canary"));
    ck_assert(!WEB("canary"));
    ck_assert(WEB("!canary"));
    ck_assert(!DB("!canary"));
    ck_assert(WEB("rev>5,rev<8"));
    ck_assert(!WEB("rev>7"));
    ck_assert(!DB("rev<100")); /* no key: no match */
    ck_assert(WEB(""));
    ck_assert(WEB("   "));
    ck_assert(WEB("app.kubernetes.io/name notin (x), app in (web)"));
}
END_TEST

START_TEST(test_selector_malformed_is_invalid_argument_with_position)
{
    static const char *const bad[] = {
        "app=web,",
        ",app=web",
        "app=web,,tier=x",
        "app in ()",
        "app in (a,b",
        "app in a,b",
        "=web",
        "app=web=x",
        "app!",
        "!app=web",
        "app = we b",
        "Bad Key=x",
        "app=-web",
        "app="
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "rev>x",
        "rev>1.5",
        "app (x)",
        "app in (a) b",
        "app notin",
        "app=web tier=x",
        "app==",
        "app=(x)",
        "!",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct kube_selector *s = (struct kube_selector *)1;
        struct bst_err err = {BST_OK, ""};
        enum bst_status rv = kube_selector_parse(bad[i], &s, &err);
        if (strcmp(bad[i], "app==") == 0) {
            /* "app==" is app equal to the empty value, which Kubernetes accepts. */
            ck_assert_int_eq(rv, BST_OK);
            kube_selector_free(s);
            continue;
        }
        ck_assert_msg(rv == BST_INVALID_ARGUMENT, "'%s' accepted", bad[i]);
        ck_assert_ptr_null(s);
        ck_assert_msg(strstr(err.msg, "label selector") != NULL, "%s: %s", bad[i], err.msg);
        ck_assert_msg(!kube_selector_ok(bad[i]), "'%s'", bad[i]);
    }
}
END_TEST

START_TEST(test_selector_limits_are_refused)
{
    char big[KUBE_SELECTOR_MAX_BYTES + 8], many[4096] = "";
    struct kube_selector *s;
    struct bst_err err;
    size_t o = 0;
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(kube_selector_parse(big, &s, &err), BST_INVALID_ARGUMENT);
    for (int i = 0; i <= KUBE_SELECTOR_MAX_REQUIREMENTS; i++)
        o += (size_t)snprintf(many + o, sizeof(many) - o, "%sk%d", i ? "," : "", i);
    ck_assert_int_eq(kube_selector_parse(many, &s, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "too many"));
}
END_TEST

START_TEST(test_selector_format_of_match_labels)
{
    char buf[64];
    ck_assert_int_eq(kube_selector_format(web, 2, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "app=web,tier=frontend");
    ck_assert_int_eq(kube_selector_format(web, 2, buf, 8), -1);
}
END_TEST

START_TEST(test_names_follow_kubernetes_rules)
{
    ck_assert(kube_dns1123_label_ok("feature-login"));
    ck_assert(!kube_dns1123_label_ok("feature-x/../prod"));
    ck_assert(!kube_dns1123_label_ok("Prod"));
    ck_assert(!kube_dns1123_label_ok(""));
    ck_assert(!kube_dns1123_label_ok("a-"));
    ck_assert(kube_dns1123_subdomain_ok("kube-root-ca.crt"));
    ck_assert(!kube_dns1123_subdomain_ok("a..b"));
    ck_assert(!kube_dns1123_subdomain_ok(".a"));
    ck_assert(kube_dns1035_label_ok("web"));
    ck_assert(!kube_dns1035_label_ok("1web"));
    ck_assert(kube_label_key_ok("app.kubernetes.io/name"));
    ck_assert(kube_label_key_ok("App_Name"));
    ck_assert(!kube_label_key_ok("a/b/c"));
    ck_assert(!kube_label_key_ok("/name"));
    ck_assert(kube_label_value_ok(""));
    ck_assert(!kube_label_value_ok("-x"));
    ck_assert(kube_config_key_ok(".dockerconfigjson"));
    ck_assert(!kube_config_key_ok(".."));
    ck_assert(!kube_config_key_ok("a/b"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("selector");
    TCase *tc = tcase_create("selector");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_selector_equality_and_inequality);
    tcase_add_test(tc, test_selector_set_based_and_existence);
    tcase_add_test(tc, test_selector_malformed_is_invalid_argument_with_position);
    tcase_add_test(tc, test_selector_limits_are_refused);
    tcase_add_test(tc, test_selector_format_of_match_labels);
    tcase_add_test(tc, test_names_follow_kubernetes_rules);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
