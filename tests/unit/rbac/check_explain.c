/* Tests for rbac/explain.c: explain lists every tenant, deny rule, binding and role considered
 * with why it applied or not, and ends with the decision rbac_decide() makes; lint reports
 * unused roles, permissions no tool uses, overlapping denies and bindings that narrow a role
 * to nothing, with file:line:column. */
#include "rbac.h"

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

static struct rbac_policy *load_example(void)
{
    const char *src = getenv("BASTION_SRC");
    char path[4096];
    struct rbac_policy *p = NULL;
    struct bst_err err = {BST_OK, ""};

    ck_assert_ptr_nonnull(src);
    snprintf(path, sizeof(path), "%s/configs/rbac-policies.yaml", src);
    ck_assert_msg(rbac_policy_load(path, known, N_KNOWN, &p, &err) == BST_OK, "%s", err.msg);
    return p;
}

static void cert_principal(struct bst_principal *p, const char *who)
{
    char id[128];
    snprintf(id, sizeof(id), "spiffe://bastion.local/user/%s", who);
    bst_principal_init(p);
    ck_assert_int_eq(bst_principal_set_name(p, id, BST_MECH_MTLS), BST_OK);
    p->cert_identity = strdup(id);
}

/* Runs explain into a string the caller frees. */
static char *explain(const struct rbac_policy *p, const struct bst_principal *who, const char *perm,
                     const char *ns, enum bst_verdict *v)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    ck_assert_ptr_nonnull(f);
    *v = rbac_explain(p, who, perm, ns, f);
    ck_assert_int_eq(fclose(f), 0);
    return buf;
}

static void expect_has(const char *text, const char *want)
{
    ck_assert_msg(strstr(text, want) != NULL, "missing '%s' in:\n%s", want, text);
}

START_TEST(test_rbac_explain_lists_each_binding_and_role_and_why)
{
    struct rbac_policy *p = load_example();
    struct bst_principal who;
    enum bst_verdict v;
    char *out;

    cert_principal(&who, "viewer");
    out = explain(p, &who, "k8s:pods:delete", "default", &v);
    ck_assert_int_eq(v, BST_VERDICT_DENY);
    expect_has(out, "request: k8s:pods:delete in namespace default\n");
    expect_has(out, "tenant acme (line ");
    expect_has(out, "the principal is not a member");
    expect_has(out, "deny protect-kube-system (line ");
    expect_has(out, "only in kube-system");
    expect_has(out, "binding admins (line ");
    expect_has(out, "no subject names the principal");
    expect_has(out, "binding viewers (line ");
    expect_has(out, "names the principal as cert:spiffe://bastion.local/user/viewer");
    expect_has(out, "role viewer: does not grant k8s:pods:delete");
    expect_has(out, "decision: DENY by no rule matched: ");
    ck_assert_ptr_null(strstr(out, "internal error"));
    free(out);

    out = explain(p, &who, "k8s:pods:list", "production", &v);
    ck_assert_int_eq(v, BST_VERDICT_DENY);
    expect_has(out, "role viewer: grants k8s:pods:list only in default,development");
    free(out);
    bst_principal_dispose(&who);

    /* A deny decides; the roles that would have allowed are still listed, without ALLOW. */
    cert_principal(&who, "admin");
    out = explain(p, &who, "k8s:pods:delete", "kube-system", &v);
    ck_assert_int_eq(v, BST_VERDICT_DENY);
    expect_has(out, "deny protect-kube-system (line ");
    expect_has(out, "applies to everyone: DENY");
    expect_has(out, "role admin: grants k8s:pods:delete in kube-system\n");
    expect_has(out, "decision: DENY by deny:protect-kube-system: ");
    free(out);
    out = explain(p, &who, "k8s:pods:delete", "default", &v);
    ck_assert_int_eq(v, BST_VERDICT_ALLOW);
    expect_has(out, "role admin: grants k8s:pods:delete in default: ALLOW");
    expect_has(out, "decision: ALLOW by role:admin via binding:admins: ");
    free(out);
    bst_principal_dispose(&who);

    /* Tenants, by membership and carried permissions. */
    cert_principal(&who, "nobody");
    ck_assert_int_eq(bst_principal_add_group(&who, "acme-ops"), BST_OK);
    ck_assert_int_eq(bst_principal_add_permission(&who, "k8s:*"), BST_OK);
    who.permissions_source = BST_PERMS_JWT_ISSUER;
    out = explain(p, &who, "k8s:secrets:manage", "default", &v);
    ck_assert_int_eq(v, BST_VERDICT_DENY);
    expect_has(out, "member as group:acme-ops; confines to acme-*: default is outside: DENY");
    expect_has(out, "k8s:*: grants k8s:secrets:manage everywhere the tenant allows\n");
    expect_has(out, "decision: DENY by tenant:acme confines to acme-*: ");
    free(out);
    out = explain(p, &who, "k8s:secrets:manage", "acme-web", &v);
    ck_assert_int_eq(v, BST_VERDICT_ALLOW);
    expect_has(out, "decision: ALLOW by carried:k8s:* via jwt: ");
    free(out);
    /* Invalid namespaces stop before any rule. */
    out = explain(p, &who, "k8s:pods:list", "feature-x/../prod", &v);
    ck_assert_int_eq(v, BST_VERDICT_DENY);
    expect_has(out, "not a DNS-1123 label: refused before any rule");
    free(out);
    bst_principal_dispose(&who);
    rbac_policy_free(p);
}
END_TEST

START_TEST(test_rbac_explain_agrees_with_decide_for_every_role_permission_namespace)
{
    static const char *const users[] = {"admin", "operator", "viewer", "developer", "x"};
    static const char *const nss[] = {"default", "kube-system", "feature-a", "acme-a",
                                      "",        "A",           NULL};
    struct rbac_policy *p = load_example();

    for (size_t u = 0; u < 5; u++)
        for (size_t k = 0; k < N_KNOWN; k++)
            for (size_t n = 0; n < 7; n++) {
                struct bst_principal who;
                struct bst_decision d;
                enum bst_verdict v;
                char *out, want[600];

                cert_principal(&who, users[u]);
                if (u == 4)
                    ck_assert_int_eq(bst_principal_add_group(&who, "acme-ops"), BST_OK);
                out = explain(p, &who, known[k], nss[n], &v);
                ck_assert_int_eq(v, rbac_decide(p, &who, known[k], nss[n], &d));
                snprintf(want, sizeof(want), "decision: %s by %s: %s\n",
                         v == BST_VERDICT_ALLOW ? "ALLOW" : "DENY", d.rule, d.reason);
                expect_has(out, want);
                ck_assert_ptr_null(strstr(out, "internal error"));
                free(out);
                bst_principal_dispose(&who);
            }
    rbac_policy_free(p);
}
END_TEST

static struct rbac_policy *load_text(const char *yaml)
{
    struct rbac_policy *p = NULL;
    struct bst_err err = {BST_OK, ""};
    ck_assert_msg(rbac_policy_parse("lint.yaml", yaml, strlen(yaml), known, N_KNOWN, &p, &err) ==
                      BST_OK,
                  "%s", err.msg);
    return p;
}

static char *lint(const struct rbac_policy *p, const char *const *k, size_t n, int *findings)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    *findings = rbac_lint(p, k, n, f);
    ck_assert_int_eq(fclose(f), 0);
    return buf;
}

START_TEST(test_rbac_lint_is_clean_on_the_example_policy)
{
    struct rbac_policy *p = load_example();
    int findings;
    char *out = lint(p, known, N_KNOWN, &findings);

    ck_assert_msg(findings == 0, "%s", out);
    free(out);
    rbac_policy_free(p);
}
END_TEST

START_TEST(test_rbac_lint_reports_unused_roles_overlaps_narrowing_and_unused_permissions)
{
    struct rbac_policy *p = load_text(
        "roles:\n"
        "  - {name: used, permissions: [k8s:pods:list], namespaces: [default]}\n"
        "  - {name: orphan, permissions: [k8s:pods:get]}\n"
        "  - {name: secrets, permissions: [k8s:secrets:manage]}\n"
        "bindings:\n"
        "  - {name: b, subjects: [{user: a}], roles: [used, secrets], namespaces: [prod]}\n"
        "deny:\n"
        "  - {name: d1, permissions: [\"k8s:pods:*\"], namespaces: [prod-*]}\n"
        "  - {name: d2, subjects: [{user: a}], permissions: [k8s:pods:delete]}\n"
        "  - {name: d3, permissions: [k8s:pods:delete], namespaces: [dev]}\n");
    static const char *const narrow[] = {"k8s:pods:list", "k8s:pods:get", "k8s:pods:delete"};
    int findings;
    char *out = lint(p, known, N_KNOWN, &findings);

    expect_has(out, "lint.yaml:3:5: warning: role 'orphan' is bound by no binding\n");
    expect_has(out, "lint.yaml:9:5: warning: deny rule 'd2' overlaps deny rule 'd1' (line 8), "
                    "e.g. on k8s:pods:delete\n");
    expect_has(out, "lint.yaml:10:5: warning: deny rule 'd3' overlaps deny rule 'd2' (line 9)");
    expect_has(out, "lint.yaml:6:5: warning: binding 'b' narrows role 'used' to prod, where the "
                    "role grants nothing (it holds default)\n");
    /* d1 (prod-*) and d3 (dev) do not overlap. */
    ck_assert_ptr_null(strstr(out, "'d3' overlaps deny rule 'd1'"));
    expect_has(out, "note: no role grants k8s:namespaces:list\n");
    ck_assert_int_eq(findings, 4);
    free(out);

    /* Against a narrower tool list, entries no tool uses are findings too. */
    out = lint(p, narrow, 3, &findings);
    expect_has(out, "lint.yaml:4:35: warning: role 'secrets': no tool uses 'k8s:secrets:manage'\n");
    ck_assert_int_eq(findings, 5);
    free(out);
    rbac_policy_free(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rbac_explain");
    TCase *tc = tcase_create("explain");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_rbac_explain_lists_each_binding_and_role_and_why);
    tcase_add_test(tc, test_rbac_explain_agrees_with_decide_for_every_role_permission_namespace);
    tcase_add_test(tc, test_rbac_lint_is_clean_on_the_example_policy);
    tcase_add_test(tc,
                   test_rbac_lint_reports_unused_roles_overlaps_narrowing_and_unused_permissions);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
