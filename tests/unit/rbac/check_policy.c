/* Tests for rbac/policy.c: loading the example policy, and refusing every hostile or malformed
 * policy quickly with file:line:column (aliases, cycles, duplicate keys, depth bombs, typos,
 * wrong types, unknown or malformed permissions, bad namespace patterns, overlapping tenants). */
#include "rbac.h"

#include "clock.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const known[] = {
    "k8s:namespaces:list",     "k8s:pods:list",     "k8s:pods:get",         "k8s:pods:logs",
    "k8s:pods:delete",         "k8s:pods:restart",  "k8s:deployments:list", "k8s:deployments:scale",
    "k8s:deployments:restart", "k8s:services:list", "k8s:events:list",      "k8s:secrets:manage",
    "k8s:resources:create",
};
#define N_KNOWN (sizeof(known) / sizeof(known[0]))

/* Hostile input must be refused in milliseconds; the bound is loose for sanitizer builds. */
#define REFUSE_BUDGET_NS (250 * BST_NS_PER_MS)

static enum bst_status parse_len(const char *yaml, size_t len, struct rbac_policy **p,
                                 struct bst_err *err)
{
    memset(err, 0, sizeof(*err));
    return rbac_policy_parse("policy.yaml", yaml, len, known, N_KNOWN, p, err);
}

static enum bst_status parse(const char *yaml, struct rbac_policy **p, struct bst_err *err)
{
    return parse_len(yaml, strlen(yaml), p, err);
}

struct bad {
    const char *what;
    const char *yaml;
    const char *where; /* expected message prefix, "policy.yaml:LINE:COL: " */
    const char *says;  /* a substring of the message */
};

static const struct bad bad_policies[] = {
    {"anchor", "roles: &r []\nbindings: *r\n", "policy.yaml:1:8: ", "anchor"},
    {"cycle", "roles: &a [*a]\n", "policy.yaml:1:8: ", "anchor"},
    {"alias in a permission list (unquoted *:pods:list)",
     "roles:\n  - name: r\n    permissions: [*:pods:list]\n", "policy.yaml:3:20: ", "alias"},
    {"duplicate key", "roles: []\nroles: []\n", "policy.yaml:2:1: ", "duplicate"},
    {"duplicate key in a role",
     "roles:\n  - name: a\n    name: b\n    permissions: [k8s:pods:list]\n",
     "policy.yaml:3:5: ", "duplicate"},
    {"namespace instead of namespaces",
     "roles:\n  - name: viewer\n    permissions: [k8s:pods:list]\n    namespace: [default]\n",
     "policy.yaml:4:5: ", "unknown key 'namespace' in a role"},
    {"scalar where a list belongs",
     "roles:\n  - name: viewer\n    permissions: [k8s:pods:list]\n    namespaces: default\n",
     "policy.yaml:4:17: ", "must be a list, got a scalar"},
    {"scalar permissions", "roles:\n  - name: viewer\n    permissions: k8s:pods:list\n",
     "policy.yaml:3:18: ", "must be a list"},
    {"scalar roles", "roles: viewer\n", "policy.yaml:1:8: ", "must be a list"},
    {"unknown permission", "roles:\n  - name: r\n    permissions: [k8s:pods:lst]\n",
     "policy.yaml:3:19: ", "unknown permission 'k8s:pods:lst'"},
    {"partial wildcard", "roles:\n  - name: r\n    permissions: [k8s:po*]\n",
     "policy.yaml:3:19: ", "whole last segment"},
    {"leading wildcard, quoted", "roles:\n  - name: r\n    permissions: [\"*:pods:list\"]\n",
     "policy.yaml:3:19: ", "whole last segment"},
    {"middle wildcard", "roles:\n  - name: r\n    permissions: [\"k8s:*:list\"]\n",
     "policy.yaml:3:19: ", "whole last segment"},
    {"wildcard matching nothing", "roles:\n  - name: r\n    permissions: [\"k8s:nodes:*\"]\n",
     "policy.yaml:3:19: ", "matches no permission"},
    {"no k8s prefix", "roles:\n  - name: r\n    permissions: [pods:list]\n",
     "policy.yaml:3:19: ", "k8s:<resource>:<verb>"},
    {"upper-case permission", "roles:\n  - name: r\n    permissions: [K8S:pods:list]\n",
     "policy.yaml:3:19: ", "not a permission"},
    {"deny with unknown permission", "deny:\n  - name: d\n    permissions: [k8s:pods:nuke]\n",
     "policy.yaml:3:19: ", "unknown permission"},
    {"binding to an unknown role",
     "roles: []\nbindings:\n  - name: b\n    subjects: [{user: alice}]\n    roles: [ghost]\n",
     "policy.yaml:5:13: ", "no role named 'ghost'"},
    {"empty namespaces list",
     "roles:\n  - name: r\n    permissions: [k8s:pods:list]\n    namespaces: []\n",
     "policy.yaml:4:17: ", "empty list"},
    {"namespace with a path",
     "roles:\n  - name: r\n    permissions: [k8s:pods:list]\n"
     "    namespaces: [\"feature-x/../prod\"]\n",
     "policy.yaml:4:18: ", "not a namespace pattern"},
    {"upper-case namespace pattern",
     "roles:\n  - name: r\n    permissions: [k8s:pods:list]\n    namespaces: [FEATURE-*]\n",
     "policy.yaml:4:18: ", "not a namespace pattern"},
    {"empty namespace",
     "roles:\n  - name: r\n    permissions: [k8s:pods:list]\n    namespaces: [\"\"]\n",
     "policy.yaml:4:18: ", "non-empty"},
    {"inner wildcard namespace",
     "roles:\n  - name: r\n    permissions: [k8s:pods:list]\n    namespaces: [fe*ture]\n",
     "policy.yaml:4:18: ", "not a namespace pattern"},
    {"tenant holding every namespace", "tenants:\n  - name: t\n    namespaces: [\"*\"]\n",
     "policy.yaml:3:18: ", "every namespace"},
    {"tenant without namespaces", "tenants:\n  - name: t\n",
     "policy.yaml:2:5: ", "no 'namespaces' list"},
    {"overlapping tenants",
     "tenants:\n  - name: a\n    namespaces: [team-*]\n  - name: b\n    namespaces: [team-b-*]\n",
     "policy.yaml:5:18: ", "tenants 'a' and 'b' overlap"},
    {"tenants sharing a namespace",
     "tenants:\n  - name: a\n    namespaces: [shared, a-*]\n  - name: b\n"
     "    namespaces: [b-*, shared]\n",
     "policy.yaml:5:23: ", "overlap"},
    {"YAML 1.1 boolean as a name", "roles:\n  - name: on\n    permissions: [k8s:pods:list]\n",
     "policy.yaml:2:11: ", "boolean"},
    {"tag", "roles: !!seq []\n", "policy.yaml:1:8: ", "tag"},
    {"two documents", "roles: []\n---\nroles: []\n", "policy.yaml:2:1: ", "document"},
    {"root is a list", "- roles: []\n", "policy.yaml:1:1: ", "must be a mapping"},
    {"unknown top-level key", "role: []\n", "policy.yaml:1:1: ", "unknown key 'role'"},
    {"role without permissions", "roles:\n  - name: r\n",
     "policy.yaml:2:5: ", "no 'permissions' list"},
    {"role without a name", "roles:\n  - permissions: [k8s:pods:list]\n",
     "policy.yaml:2:5: ", "no 'name'"},
    {"role name with a space", "roles:\n  - name: \"a b\"\n    permissions: [k8s:pods:list]\n",
     "policy.yaml:2:11: ", "name 'a b'"},
    {"duplicate role names",
     "roles:\n  - name: r\n    permissions: [k8s:pods:list]\n"
     "  - name: r\n    permissions: [k8s:pods:get]\n",
     "policy.yaml:4:11: ", "defined twice"},
    {"subject with two kinds",
     "roles: []\nbindings:\n  - name: b\n    subjects: [{user: a, group: b}]\n    roles: []\n",
     "policy.yaml:4:16: ", "exactly one"},
    {"unknown subject kind",
     "roles: []\nbindings:\n  - name: b\n    subjects: [{serviceaccount: a}]\n",
     "policy.yaml:4:17: ", "unknown key 'serviceaccount'"},
    {"subject as a string", "roles: []\nbindings:\n  - name: b\n    subjects: [\"user:alice\"]\n",
     "policy.yaml:4:16: ", "a subject is a mapping"},
    {"API key id longer than any id",
     "roles: []\nbindings:\n  - name: b\n    subjects: [{apikey: "
     "\"0123456789abcdef0123456789abcdef0\"}]\n",
     "policy.yaml:4:25: ", "at most 32"},
    {"binding without roles", "roles: []\nbindings:\n  - name: b\n    subjects: [{user: a}]\n",
     "policy.yaml:3:5: ", "no 'roles' list"},
    {"binding roles holding a mapping",
     "roles: []\nbindings:\n  - name: b\n    subjects: [{user: a}]\n    roles: [{name: r}]\n",
     "policy.yaml:5:13: ", "string"},
    {"deny rule with typo in namespaces",
     "deny:\n  - name: d\n    permissions: [k8s:pods:delete]\n    namespace: [prod]\n",
     "policy.yaml:4:5: ", "unknown key 'namespace' in a deny rule"},
    {"deny rule with empty subjects",
     "deny:\n  - name: d\n    subjects: []\n    permissions: [k8s:pods:delete]\n",
     "policy.yaml:3:15: ", "empty list"},
};

START_TEST(test_rbac_policy_refuses_hostile_and_malformed_yaml_with_positions)
{
    const struct bad *b = &bad_policies[_i];
    struct rbac_policy *p = (struct rbac_policy *)1;
    struct bst_err err;
    int64_t t0 = bst_mono_ns(), dt;
    enum bst_status rv = parse(b->yaml, &p, &err);

    dt = bst_mono_ns() - t0;
    ck_assert_msg(rv != BST_OK, "%s: accepted", b->what);
    ck_assert_ptr_null(p);
    ck_assert_msg(strncmp(err.msg, b->where, strlen(b->where)) == 0, "%s: got '%s', want '%s...'",
                  b->what, err.msg, b->where);
    ck_assert_msg(strstr(err.msg, b->says) != NULL, "%s: '%s' does not say '%s'", b->what, err.msg,
                  b->says);
    ck_assert_msg(dt < REFUSE_BUDGET_NS, "%s: took %lld ns", b->what, (long long)dt);
}
END_TEST

/* Builds a string of n copies of unit after head, then tail. */
static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *s = malloc(hl + ul * n + tl + 1), *w = s;
    ck_assert_ptr_nonnull(s);
    memcpy(w, head, hl);
    w += hl;
    for (size_t i = 0; i < n; i++, w += ul)
        memcpy(w, unit, ul);
    memcpy(w, tail, tl + 1);
    return s;
}

static void expect_fast_refusal(const char *what, const char *yaml, size_t len,
                                enum bst_status want, const char *where)
{
    struct rbac_policy *p = NULL;
    struct bst_err err;
    int64_t t0 = bst_mono_ns(), dt;
    enum bst_status rv = parse_len(yaml, len, &p, &err);

    dt = bst_mono_ns() - t0;
    ck_assert_msg(rv == want, "%s: status %d (%s)", what, rv, err.msg);
    ck_assert_ptr_null(p);
    ck_assert_msg(strncmp(err.msg, where, strlen(where)) == 0, "%s: '%s'", what, err.msg);
    ck_assert_msg(dt < REFUSE_BUDGET_NS, "%s: took %lld ns", what, (long long)dt);
}

START_TEST(test_rbac_policy_refuses_bombs_in_milliseconds)
{
    char *s;

    /* 100 000 nested flow sequences: refused at the depth limit while streaming. */
    s = repeat("roles: ", "[", 100000, "\n");
    expect_fast_refusal("flow depth bomb", s, strlen(s), BST_RESOURCE_EXHAUSTED, "policy.yaml:1:");
    free(s);
    /* Block-style nesting. */
    s = repeat("roles:\n", "- ", 5000, "x\n");
    expect_fast_refusal("block depth bomb", s, strlen(s), BST_RESOURCE_EXHAUSTED, "policy.yaml:2:");
    free(s);
    /* Billion laughs: refused at the first anchor, nothing expanded. */
    s = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
        "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
        "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\nroles: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n";
    expect_fast_refusal("billion laughs", s, strlen(s), BST_INVALID_ARGUMENT, "policy.yaml:1:4: ");
    /* 2 MiB: refused before parsing. */
    s = repeat("roles: [] #", "x", 2 * 1024 * 1024, "\n");
    expect_fast_refusal("oversized", s, strlen(s), BST_RESOURCE_EXHAUSTED, "policy.yaml:1:1: ");
    free(s);
    /* NUL and invalid UTF-8, with their positions. */
    expect_fast_refusal("NUL byte", "roles: []\n# a\0b\n", 16, BST_INVALID_ARGUMENT,
                        "policy.yaml:2:4: ");
    s = "roles:\n  - name: \"caf\xff\"\n";
    expect_fast_refusal("invalid UTF-8", s, strlen(s), BST_INVALID_ARGUMENT, "policy.yaml:2:15: ");
    expect_fast_refusal("empty file", "", 0, BST_INVALID_ARGUMENT, "policy.yaml");
}
END_TEST

START_TEST(test_rbac_policy_refuses_many_overlapping_tenants_quickly)
{
    /* 2 000 tenants sharing nested prefixes: the overlap check stays O(n log n). */
    size_t cap = 2000 * 64 + 64, used = 0;
    char *s = malloc(cap);
    struct rbac_policy *p = NULL;
    struct bst_err err;
    int64_t t0;
    enum bst_status rv;

    ck_assert_ptr_nonnull(s);
    used += (size_t)snprintf(s + used, cap - used, "tenants:\n");
    for (int i = 0; i < 900; i++)
        used +=
            (size_t)snprintf(s + used, cap - used, "  - {name: t%d, namespaces: [x%d-*]}\n", i, i);
    used += (size_t)snprintf(s + used, cap - used, "  - {name: last, namespaces: [x1*]}\n");
    t0 = bst_mono_ns();
    rv = parse_len(s, used, &p, &err);
    ck_assert_int_eq(rv, BST_INVALID_ARGUMENT);
    ck_assert_msg(strstr(err.msg, "overlap") != NULL, "%s", err.msg);
    ck_assert_int_lt(bst_mono_ns() - t0, REFUSE_BUDGET_NS);
    free(s);
}
END_TEST

static char *example_path(void)
{
    const char *src = getenv("BASTION_SRC");
    char *path = malloc(4096);
    ck_assert_ptr_nonnull(src);
    ck_assert_ptr_nonnull(path);
    snprintf(path, 4096, "%s/configs/rbac-policies.yaml", src);
    return path;
}

START_TEST(test_rbac_policy_loads_the_example_policy)
{
    char *path = example_path();
    struct rbac_policy *p = NULL;
    struct bst_err err = {BST_OK, ""};
    size_t roles, bindings, denies, tenants;

    ck_assert_msg(rbac_policy_load(path, known, N_KNOWN, &p, &err) == BST_OK, "%s", err.msg);
    rbac_policy_stats(p, &roles, &bindings, &denies, &tenants);
    ck_assert_uint_eq(roles, 5);
    ck_assert_uint_eq(bindings, 5);
    ck_assert_uint_eq(denies, 1);
    ck_assert_uint_eq(tenants, 1);
    rbac_policy_free(p);
    free(path);
}
END_TEST

START_TEST(test_rbac_policy_refuses_the_example_without_a_tool_it_names)
{
    /* The policy names k8s:resources:create (via deny); a server without that tool refuses
     * it, with the position of the first entry naming it. */
    char *path = example_path();
    struct rbac_policy *p = NULL;
    struct bst_err err = {BST_OK, ""};

    ck_assert_int_eq(rbac_policy_load(path, known, N_KNOWN - 1, &p, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(err.msg, "rbac-policies.yaml:") != NULL &&
                      strstr(err.msg, "unknown permission 'k8s:resources:create'") != NULL,
                  "%s", err.msg);
    free(path);
}
END_TEST

START_TEST(test_rbac_policy_load_reports_a_missing_file)
{
    struct rbac_policy *p = NULL;
    struct bst_err err = {BST_OK, ""};
    ck_assert_int_eq(rbac_policy_load("/nonexistent/rbac.yaml", known, N_KNOWN, &p, &err),
                     BST_NOT_FOUND);
    ck_assert_ptr_null(p);
}
END_TEST

START_TEST(test_rbac_policy_refuses_a_bad_known_list_and_accepts_repeats)
{
    static const char *const wild[] = {"k8s:pods:list", "k8s:pods:*"};
    static const char *const dup[] = {"k8s:pods:list", "k8s:pods:get", "k8s:pods:list"};
    static const char *const nul[] = {"k8s:pods:list", NULL};
    struct rbac_policy *p = NULL;
    struct bst_err err;

    ck_assert_int_eq(rbac_policy_parse("p", "roles: []\n", 10, wild, 2, &p, &err),
                     BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "known permission list"));
    /* Repeats (tools sharing a permission) are fine. */
    ck_assert_int_eq(rbac_policy_parse("p", "roles: [{name: r, permissions: [k8s:pods:list]}]\n",
                                       49, dup, 3, &p, &err),
                     BST_OK);
    rbac_policy_free(p);
    p = NULL;
    ck_assert_int_eq(rbac_policy_parse("p", "roles: []\n", 10, nul, 2, &p, &err),
                     BST_INVALID_ARGUMENT);
    ck_assert_int_eq(rbac_policy_parse("p", "roles: []\n", 10, NULL, 3, &p, &err),
                     BST_INVALID_ARGUMENT);
    ck_assert_ptr_null(p);
}
END_TEST

START_TEST(test_rbac_policy_empty_mapping_loads_and_denies_everything)
{
    struct rbac_policy *p = NULL;
    struct bst_err err;
    struct bst_principal who;
    struct bst_decision d;

    ck_assert_int_eq(parse("{}\n", &p, &err), BST_OK);
    bst_principal_init(&who);
    ck_assert_int_eq(bst_principal_set_name(&who, "alice", BST_MECH_MTLS), BST_OK);
    ck_assert_int_eq(rbac_decide(p, &who, "k8s:pods:list", "default", &d), BST_VERDICT_DENY);
    ck_assert_str_eq(d.rule, "no rule matched");
    bst_principal_dispose(&who);
    rbac_policy_free(p);
    rbac_policy_free(NULL);
}
END_TEST

START_TEST(test_rbac_policy_flow_style_and_quoting_load_the_same)
{
    const char *block = "roles:\n  - name: r\n    permissions:\n      - k8s:pods:*\n"
                        "    namespaces:\n      - feature-*\n"
                        "bindings:\n  - name: b\n    subjects:\n      - user: alice\n"
                        "    roles:\n      - r\n";
    const char *flow = "{roles: [{name: r, permissions: [\"k8s:pods:*\"], namespaces: "
                       "['feature-*']}], bindings: [{name: b, subjects: [{user: \"alice\"}], "
                       "roles: [r]}]}\n";
    const char *docs[] = {block, flow};
    for (int i = 0; i < 2; i++) {
        struct rbac_policy *p = NULL;
        struct bst_err err;
        struct bst_principal who;
        struct bst_decision d;

        ck_assert_msg(parse(docs[i], &p, &err) == BST_OK, "%s", err.msg);
        bst_principal_init(&who);
        ck_assert_int_eq(bst_principal_set_name(&who, "alice", BST_MECH_JWT), BST_OK);
        ck_assert_int_eq(rbac_decide(p, &who, "k8s:pods:delete", "feature-a", &d),
                         BST_VERDICT_ALLOW);
        ck_assert_str_eq(d.rule, "role:r via binding:b");
        ck_assert_int_eq(rbac_decide(p, &who, "k8s:deployments:list", "feature-a", &d),
                         BST_VERDICT_DENY);
        bst_principal_dispose(&who);
        rbac_policy_free(p);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rbac_policy");
    TCase *tc = tcase_create("policy");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_rbac_policy_refuses_hostile_and_malformed_yaml_with_positions, 0,
                        (int)(sizeof(bad_policies) / sizeof(bad_policies[0])));
    tcase_add_test(tc, test_rbac_policy_refuses_bombs_in_milliseconds);
    tcase_add_test(tc, test_rbac_policy_refuses_many_overlapping_tenants_quickly);
    tcase_add_test(tc, test_rbac_policy_loads_the_example_policy);
    tcase_add_test(tc, test_rbac_policy_refuses_the_example_without_a_tool_it_names);
    tcase_add_test(tc, test_rbac_policy_load_reports_a_missing_file);
    tcase_add_test(tc, test_rbac_policy_refuses_a_bad_known_list_and_accepts_repeats);
    tcase_add_test(tc, test_rbac_policy_empty_mapping_loads_and_denies_everything);
    tcase_add_test(tc, test_rbac_policy_flow_style_and_quoting_load_the_same);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
