/* Tests for rbac/decide.c: the example policy's roles x permissions x namespaces against an
 * independent model written out here, glob edge cases through real decisions, deny precedence,
 * tenant isolation (randomised: a tenant-A principal never acts outside tenant A whatever its
 * roles or carried permissions), carried permissions, subject kinds, and the indexed decision
 * agreeing with the linear reference walk on every request. */
#include "rbac.h"
#include "rbac_internal.h"

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
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

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

static struct rbac_policy *load_text(const char *yaml)
{
    struct rbac_policy *p = NULL;
    struct bst_err err = {BST_OK, ""};
    ck_assert_msg(rbac_policy_parse("test.yaml", yaml, strlen(yaml), known, N_KNOWN, &p, &err) ==
                      BST_OK,
                  "%s", err.msg);
    return p;
}

/* Decides, and checks that the reference walk agrees and the output is well-formed. */
static enum bst_verdict decide(const struct rbac_policy *p, const struct bst_principal *who,
                               const char *perm, const char *ns, struct bst_decision *d)
{
    struct bst_decision w;
    enum bst_verdict v = rbac_decide(p, who, perm, ns, d);

    ck_assert(v == BST_VERDICT_ALLOW || v == BST_VERDICT_DENY);
    ck_assert_int_eq(v, d->verdict);
    ck_assert(d->rule[0] != '\0' && d->reason[0] != '\0');
    for (const char *c = d->reason; *c != '\0'; c++)
        ck_assert_msg((unsigned char)*c >= 0x20 && *c != 0x7f, "control character in reason");
    rbac_walk(p, who, perm, ns, NULL, &w);
    ck_assert_msg(w.verdict == d->verdict && strcmp(w.rule, d->rule) == 0 &&
                      strcmp(w.reason, d->reason) == 0,
                  "walk says %d '%s', decide says %d '%s'", w.verdict, w.rule, d->verdict, d->rule);
    return v;
}

static void cert_principal(struct bst_principal *p, const char *who)
{
    char id[128];
    snprintf(id, sizeof(id), "spiffe://bastion.local/user/%s", who);
    bst_principal_init(p);
    ck_assert_int_eq(bst_principal_set_name(p, id, BST_MECH_MTLS), BST_OK);
    p->cert_identity = strdup(id);
    ck_assert_ptr_nonnull(p->cert_identity);
}

/* ---- The example policy against a model ----------------------------------------------------- */

/* The four roles of the original design as configs/rbac-policies.yaml ships them, spelled out
 * with wildcards expanded by hand, so the model shares no code with the library. */
struct role_model {
    const char *name;
    const char *binding;
    const char *perms[14];
    const char *ns[4]; /* NULL-terminated; none = unrestricted */
};

static const struct role_model roles[] = {
    {"viewer",
     "viewers",
     {"k8s:pods:list", "k8s:pods:get", "k8s:services:list", "k8s:deployments:list", "k8s:pods:logs",
      "k8s:events:list"},
     {"default", "development"}},
    {"operator",
     "operators",
     {"k8s:pods:list", "k8s:pods:get", "k8s:pods:logs", "k8s:pods:delete", "k8s:pods:restart",
      "k8s:services:list", "k8s:deployments:list", "k8s:deployments:scale",
      "k8s:deployments:restart", "k8s:events:list"},
     {"default", "development", "staging"}},
    {"admin",
     "admins",
     {"k8s:namespaces:list", "k8s:pods:list", "k8s:pods:get", "k8s:pods:logs", "k8s:pods:delete",
      "k8s:pods:restart", "k8s:deployments:list", "k8s:deployments:scale",
      "k8s:deployments:restart", "k8s:services:list", "k8s:events:list", "k8s:secrets:manage",
      "k8s:resources:create"},
     {NULL}},
    {"developer",
     "developers",
     {"k8s:pods:list", "k8s:pods:get", "k8s:pods:logs", "k8s:deployments:list",
      "k8s:deployments:scale", "k8s:events:list"},
     {"development", "feature-*"}},
};

static const char *const protected_perms[] = {"k8s:pods:delete", "k8s:secrets:manage",
                                              "k8s:resources:create"};

static const char *const valid_ns[] = {
    "default",     "development", "staging",  "production", "kube-system", "feature-login",
    "feature-x-2", "feature",     "acme-web", "prod",       NULL /* all namespaces / cluster */};

static const char *const invalid_ns[] = {
    "",        "feature-x/../prod", "FEATURE-x",  "feature-x\n",    "..", ".", "/", "%2F",
    "Default", " default",          "feature-x ", "feature-\x1b[2J"};

static int in_list(const char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n && v[i] != NULL; i++)
        if (strcmp(v[i], s) == 0)
            return 1;
    return 0;
}

static int model_ns_ok(const struct role_model *r, const char *ns)
{
    if (r->ns[0] == NULL)
        return 1;
    if (ns == NULL)
        return 0;
    for (int i = 0; r->ns[i] != NULL; i++) {
        if (strcmp(r->ns[i], "feature-*") == 0 && strncmp(ns, "feature-", 8) == 0)
            return 1;
        if (strcmp(r->ns[i], ns) == 0)
            return 1;
    }
    return 0;
}

START_TEST(test_rbac_example_roles_by_permissions_by_namespaces_match_the_model)
{
    struct rbac_policy *p = load_example();
    int allows = 0, denies = 0;

    for (size_t r = 0; r < COUNT(roles); r++) {
        struct bst_principal who;
        cert_principal(&who, roles[r].name);
        for (size_t k = 0; k < N_KNOWN; k++) {
            for (size_t n = 0; n < COUNT(valid_ns); n++) {
                const char *ns = valid_ns[n];
                struct bst_decision d;
                char want[160];
                int grant = in_list(roles[r].perms, COUNT(roles[r].perms), known[k]) &&
                            model_ns_ok(&roles[r], ns);
                int denied = in_list(protected_perms, COUNT(protected_perms), known[k]) &&
                             (ns == NULL || strcmp(ns, "kube-system") == 0);
                enum bst_verdict v = decide(p, &who, known[k], ns, &d);

                if (denied) {
                    ck_assert_msg(
                        v == BST_VERDICT_DENY && strcmp(d.rule, "deny:protect-kube-system") == 0,
                        "%s %s %s: %s", roles[r].name, known[k], ns ? ns : "(all)", d.rule);
                } else if (grant) {
                    snprintf(want, sizeof(want), "role:%s via binding:%s", roles[r].name,
                             roles[r].binding);
                    ck_assert_msg(v == BST_VERDICT_ALLOW && strcmp(d.rule, want) == 0,
                                  "%s %s %s: %s", roles[r].name, known[k], ns ? ns : "(all)",
                                  d.rule);
                } else {
                    ck_assert_msg(v == BST_VERDICT_DENY && strcmp(d.rule, "no rule matched") == 0,
                                  "%s %s %s: %s", roles[r].name, known[k], ns ? ns : "(all)",
                                  d.rule);
                }
                if (v == BST_VERDICT_ALLOW)
                    allows++;
                else
                    denies++;
            }
            for (size_t n = 0; n < COUNT(invalid_ns); n++) {
                struct bst_decision d;
                ck_assert_int_eq(decide(p, &who, known[k], invalid_ns[n], &d), BST_VERDICT_DENY);
                ck_assert_str_eq(d.rule, "invalid namespace");
            }
        }
        bst_principal_dispose(&who);
    }
    /* The matrix is not vacuous either way. */
    ck_assert_int_gt(allows, 100);
    ck_assert_int_gt(denies, 100);
    rbac_policy_free(p);
}
END_TEST

/* Spot rows written out by hand, reasons included. */
struct row {
    const char *who; /* dev certificate user, or NULL for a stranger */
    const char *perm;
    const char *ns;
    enum bst_verdict v;
    const char *rule;
    const char *reason; /* substring */
};

static const struct row rows[] = {
    {"developer", "k8s:pods:delete", "production", BST_VERDICT_DENY, "no rule matched",
     "No role bound to the principal grants k8s:pods:delete in namespace production."},
    {"developer", "k8s:deployments:scale", "feature-login", BST_VERDICT_ALLOW,
     "role:developer via binding:developers", "grants k8s:deployments:scale in namespace"},
    {"developer", "k8s:pods:list", "feature-x/../prod", BST_VERDICT_DENY, "invalid namespace",
     "'feature-x/../prod' is not a DNS-1123 label"},
    {"developer", "k8s:pods:list", "", BST_VERDICT_DENY, "invalid namespace",
     "an empty namespace never means all namespaces"},
    {"developer", "k8s:pods:list", NULL, BST_VERDICT_DENY, "no rule matched",
     "across all namespaces or at cluster scope"},
    {"viewer", "k8s:pods:list", "default", BST_VERDICT_ALLOW, "role:viewer via binding:viewers",
     "Role viewer, bound by viewers, grants k8s:pods:list in namespace default."},
    {"viewer", "k8s:namespaces:list", NULL, BST_VERDICT_DENY, "no rule matched", ""},
    {"operator", "k8s:pods:restart", "staging", BST_VERDICT_ALLOW,
     "role:operator via binding:operators", ""},
    {"operator", "k8s:secrets:manage", "default", BST_VERDICT_DENY, "no rule matched", ""},
    {"admin", "k8s:namespaces:list", NULL, BST_VERDICT_ALLOW, "role:admin via binding:admins",
     "across all namespaces or at cluster scope"},
    {"admin", "k8s:secrets:manage", "production", BST_VERDICT_ALLOW,
     "role:admin via binding:admins", ""},
    {"admin", "k8s:pods:delete", "kube-system", BST_VERDICT_DENY, "deny:protect-kube-system",
     "Deny rule protect-kube-system forbids k8s:pods:delete in namespace kube-system"},
    {"admin", "k8s:pods:delete", NULL, BST_VERDICT_DENY, "deny:protect-kube-system", ""},
    {"admin", "k8s:pods:list", "kube-system", BST_VERDICT_ALLOW, "role:admin via binding:admins",
     ""},
    {"admin", "k8s:nodes:list", "default", BST_VERDICT_DENY, "unknown permission",
     "'k8s:nodes:list' is not one any tool uses"},
    {"admin", "k8s:pods:*", "default", BST_VERDICT_DENY, "unknown permission", ""},
    {"admin", "k8s:pods:list\n", "default", BST_VERDICT_DENY, "unknown permission", "list?"},
    {NULL, "k8s:pods:list", "default", BST_VERDICT_DENY, "no rule matched", ""},
};

START_TEST(test_rbac_example_spot_rows)
{
    struct rbac_policy *p = load_example();

    for (size_t i = 0; i < COUNT(rows); i++) {
        struct bst_principal who;
        struct bst_decision d;
        cert_principal(&who, rows[i].who != NULL ? rows[i].who : "stranger");
        ck_assert_msg(decide(p, &who, rows[i].perm, rows[i].ns, &d) == rows[i].v, "row %zu", i);
        ck_assert_msg(strcmp(d.rule, rows[i].rule) == 0, "row %zu: rule '%s'", i, d.rule);
        ck_assert_msg(strstr(d.reason, rows[i].reason) != NULL, "row %zu: reason '%s'", i,
                      d.reason);
        bst_principal_dispose(&who);
    }
    rbac_policy_free(p);
}
END_TEST

START_TEST(test_rbac_glob_edge_cases_through_decisions)
{
    /* A role on feature-* for alice, and a "*" role for bob. */
    struct rbac_policy *p = load_text("roles:\n"
                                      "  - {name: feat, permissions: [k8s:pods:list], "
                                      "namespaces: [feature-*]}\n"
                                      "  - {name: any, permissions: [k8s:pods:list], "
                                      "namespaces: [\"*\"]}\n"
                                      "bindings:\n"
                                      "  - {name: a, subjects: [{user: alice}], roles: [feat]}\n"
                                      "  - {name: b, subjects: [{user: bob}], roles: [any]}\n");
    static const char *const alice_no[] = {
        "feature-x/../prod", "feature-x\n",    "FEATURE-x",       "",
        "feature-",          "feature",        "xfeature-a",      "prod",
        "feature-x/",        "feature-x%2F..", "feature-\xc3\xa9"};
    static const char *const bob_no[] = {"", ".", "..", "/", "%2F", "PROD", "prod\n", "a b"};
    struct bst_principal alice, bob;
    struct bst_decision d;

    bst_principal_init(&alice);
    bst_principal_init(&bob);
    ck_assert_int_eq(bst_principal_set_name(&alice, "alice", BST_MECH_JWT), BST_OK);
    ck_assert_int_eq(bst_principal_set_name(&bob, "bob", BST_MECH_JWT), BST_OK);
    for (size_t i = 0; i < COUNT(alice_no); i++)
        ck_assert_msg(decide(p, &alice, "k8s:pods:list", alice_no[i], &d) == BST_VERDICT_DENY,
                      "alice case %zu allowed", i);
    ck_assert_int_eq(decide(p, &alice, "k8s:pods:list", "feature-x", &d), BST_VERDICT_ALLOW);
    ck_assert_int_eq(decide(p, &alice, "k8s:pods:list", NULL, &d), BST_VERDICT_DENY);
    for (size_t i = 0; i < COUNT(bob_no); i++)
        ck_assert_msg(decide(p, &bob, "k8s:pods:list", bob_no[i], &d) == BST_VERDICT_DENY,
                      "bob case %zu allowed", i);
    ck_assert_int_eq(decide(p, &bob, "k8s:pods:list", "prod", &d), BST_VERDICT_ALLOW);
    /* "*" is any one namespace, never all of them at once. */
    ck_assert_int_eq(decide(p, &bob, "k8s:pods:list", NULL, &d), BST_VERDICT_DENY);
    ck_assert_str_eq(d.rule, "no rule matched");
    bst_principal_dispose(&alice);
    bst_principal_dispose(&bob);
    rbac_policy_free(p);
}
END_TEST

/* ---- Deny precedence ------------------------------------------------------------------------ */

static const char *const deny_policy =
    "roles:\n"
    "  - {name: all, permissions: [\"k8s:*\"]}\n"
    "bindings:\n"
    "  - {name: staff, subjects: [{group: staff}], roles: [all]}\n"
    "deny:\n"
    "  - name: no-prod-deletes\n"
    "    permissions: [k8s:pods:delete]\n"
    "    namespaces: [prod]\n"
    "  - name: alice-no-secrets\n"
    "    subjects: [{user: alice}]\n"
    "    permissions: [k8s:secrets:manage]\n"
    "  - name: no-prod-pods\n"
    "    permissions: [\"k8s:pods:*\"]\n"
    "    namespaces: [prod]\n"
    "  - name: ci-key-no-scale\n"
    "    subjects: [{apikey: ci}]\n"
    "    permissions: [k8s:deployments:scale]\n";

START_TEST(test_rbac_deny_rules_beat_every_allow_and_the_first_in_file_order_decides)
{
    struct rbac_policy *p = load_text(deny_policy);
    struct bst_principal bob, alice, carol;
    struct bst_decision d;

    bst_principal_init(&bob);
    bst_principal_init(&alice);
    bst_principal_init(&carol);
    ck_assert_int_eq(bst_principal_set_name(&bob, "bob", BST_MECH_JWT), BST_OK);
    ck_assert_int_eq(bst_principal_add_group(&bob, "staff"), BST_OK);
    ck_assert_int_eq(bst_principal_set_name(&alice, "alice", BST_MECH_JWT), BST_OK);
    ck_assert_int_eq(bst_principal_add_group(&alice, "staff"), BST_OK);

    ck_assert_int_eq(decide(p, &bob, "k8s:pods:delete", "prod", &d), BST_VERDICT_DENY);
    ck_assert_str_eq(d.rule, "deny:no-prod-deletes");
    ck_assert_int_eq(decide(p, &bob, "k8s:pods:list", "prod", &d), BST_VERDICT_DENY);
    ck_assert_str_eq(d.rule, "deny:no-prod-pods");
    ck_assert_int_eq(decide(p, &bob, "k8s:pods:delete", "staging", &d), BST_VERDICT_ALLOW);
    ck_assert_str_eq(d.rule, "role:all via binding:staff");
    /* All namespaces include prod: the namespaced deny applies to the cluster-wide form. */
    ck_assert_int_eq(decide(p, &bob, "k8s:pods:delete", NULL, &d), BST_VERDICT_DENY);
    ck_assert_str_eq(d.rule, "deny:no-prod-deletes");
    ck_assert_int_eq(decide(p, &bob, "k8s:deployments:list", NULL, &d), BST_VERDICT_ALLOW);

    /* A deny naming a subject applies to it only, everywhere. */
    ck_assert_int_eq(decide(p, &alice, "k8s:secrets:manage", "staging", &d), BST_VERDICT_DENY);
    ck_assert_str_eq(d.rule, "deny:alice-no-secrets");
    ck_assert_int_eq(decide(p, &alice, "k8s:secrets:manage", NULL, &d), BST_VERDICT_DENY);
    ck_assert_int_eq(decide(p, &bob, "k8s:secrets:manage", "staging", &d), BST_VERDICT_ALLOW);
    /* The earlier global rule beats the later one naming alice, and vice versa by order. */
    ck_assert_int_eq(decide(p, &alice, "k8s:pods:delete", "prod", &d), BST_VERDICT_DENY);
    ck_assert_str_eq(d.rule, "deny:no-prod-deletes");

    /* Carried permissions lose to deny rules too. */
    ck_assert_int_eq(bst_principal_set_name(&carol, "carol", BST_MECH_API_KEY), BST_OK);
    memcpy(carol.credential_id, "ci", 3);
    ck_assert_int_eq(bst_principal_add_permission(&carol, "k8s:*"), BST_OK);
    carol.permissions_source = BST_PERMS_API_KEY_FILE;
    ck_assert_int_eq(decide(p, &carol, "k8s:pods:delete", "prod", &d), BST_VERDICT_DENY);
    ck_assert_str_eq(d.rule, "deny:no-prod-deletes");
    ck_assert_int_eq(decide(p, &carol, "k8s:deployments:scale", "staging", &d), BST_VERDICT_DENY);
    ck_assert_str_eq(d.rule, "deny:ci-key-no-scale");
    ck_assert_int_eq(decide(p, &carol, "k8s:deployments:restart", "staging", &d),
                     BST_VERDICT_ALLOW);
    ck_assert_str_eq(d.rule, "carried:k8s:* via api_key");
    /* The same id through another mechanism is not that API key. */
    carol.mechanism = BST_MECH_JWT;
    carol.permissions_source = BST_PERMS_JWT_ISSUER;
    ck_assert_int_eq(decide(p, &carol, "k8s:deployments:scale", "staging", &d), BST_VERDICT_ALLOW);
    ck_assert_str_eq(d.rule, "carried:k8s:* via jwt");

    bst_principal_dispose(&bob);
    bst_principal_dispose(&alice);
    bst_principal_dispose(&carol);
    rbac_policy_free(p);
}
END_TEST

/* ---- Tenants -------------------------------------------------------------------------------- */

static const char *const tenant_policy =
    "roles:\n"
    "  - {name: god, permissions: [\"k8s:*\"]}\n"
    "  - {name: any-ns, permissions: [\"k8s:*\"], namespaces: [\"*\"]}\n"
    "  - {name: b-only, permissions: [\"k8s:*\"], namespaces: [team-b-*]}\n"
    "bindings:\n"
    "  - {name: g1-god, subjects: [{group: g1}], roles: [god]}\n"
    "  - {name: g2-any, subjects: [{group: g2}], roles: [any-ns]}\n"
    "  - {name: g3-b, subjects: [{group: g3}], roles: [b-only]}\n"
    "  - {name: mallory-god, subjects: [{user: mallory}], roles: [god]}\n"
    "tenants:\n"
    "  - name: a\n"
    "    namespaces: [team-a-*, shared-a]\n"
    "    members: [{group: tenant-a}]\n"
    "  - name: b\n"
    "    namespaces: [team-b-*]\n"
    "    members: [{apikey: key-b}]\n";

static unsigned rnd(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 16) & 0x7fff;
}

static int in_tenant_a(const char *ns)
{
    return ns != NULL && (strncmp(ns, "team-a-", 7) == 0 || strcmp(ns, "shared-a") == 0);
}

START_TEST(test_rbac_tenant_a_principal_never_acts_outside_tenant_a)
{
    static const char *const ns_pool[] = {"team-a-web", "team-a-x",  "shared-a",    "team-b-web",
                                          "team-b-a",   "default",   "kube-system", "team-a",
                                          "shared-ab",  "team-ab-x", NULL};
    static const char *const groups[] = {"g1", "g2", "g3", "tenant-a", "other"};
    static const char *const carried[] = {"k8s:*", "k8s:pods:*", "k8s:pods:list",
                                          "k8s:secrets:manage"};
    struct rbac_policy *p = load_text(tenant_policy);
    unsigned seed = 12345;
    int allowed_inside = 0, refused_outside = 0;

    for (int iter = 0; iter < 4000; iter++) {
        struct bst_principal who;
        struct bst_decision d;
        const char *ns, *perm;
        int via_membership;

        bst_principal_init(&who);
        ck_assert_int_eq(bst_principal_set_name(&who, rnd(&seed) % 2 ? "mallory" : "someone",
                                                rnd(&seed) % 2 ? BST_MECH_JWT : BST_MECH_API_KEY),
                         BST_OK);
        memcpy(who.credential_id, rnd(&seed) % 2 ? "key-a" : "key-c", 6);
        via_membership = rnd(&seed) % 2;
        if (via_membership)
            ck_assert_int_eq(bst_principal_add_group(&who, "tenant-a"), BST_OK);
        else
            ck_assert_int_eq(bst_principal_set_tenant(&who, "a"), BST_OK);
        for (unsigned g = rnd(&seed) % 4; g > 0; g--)
            ck_assert_int_eq(bst_principal_add_group(&who, groups[rnd(&seed) % COUNT(groups)]),
                             BST_OK);
        for (unsigned c = rnd(&seed) % 3; c > 0; c--)
            ck_assert_int_eq(
                bst_principal_add_permission(&who, carried[rnd(&seed) % COUNT(carried)]), BST_OK);
        who.permissions_source = (enum bst_perm_source)(rnd(&seed) % 3);
        ns = ns_pool[rnd(&seed) % COUNT(ns_pool)];
        perm = known[rnd(&seed) % N_KNOWN];

        if (decide(p, &who, perm, ns, &d) == BST_VERDICT_ALLOW) {
            ck_assert_msg(in_tenant_a(ns), "tenant-a principal allowed %s in %s by %s", perm,
                          ns ? ns : "(all)", d.rule);
            allowed_inside++;
        } else if (!in_tenant_a(ns)) {
            ck_assert_msg(strncmp(d.rule, "tenant:a confines to ", 21) == 0, "%s", d.rule);
            refused_outside++;
        }
        bst_principal_dispose(&who);
    }
    ck_assert_int_gt(allowed_inside, 200);
    ck_assert_int_gt(refused_outside, 1000);
    rbac_policy_free(p);
}
END_TEST

START_TEST(test_rbac_tenant_membership_by_api_key_and_undefined_tenants)
{
    struct rbac_policy *p = load_text(tenant_policy);
    struct bst_principal who;
    struct bst_decision d;

    /* key-b is confined to tenant b only when it really is an API key. */
    bst_principal_init(&who);
    ck_assert_int_eq(bst_principal_set_name(&who, "mallory", BST_MECH_API_KEY), BST_OK);
    memcpy(who.credential_id, "key-b", 6);
    ck_assert_int_eq(decide(p, &who, "k8s:pods:delete", "team-a-web", &d), BST_VERDICT_DENY);
    ck_assert_str_eq(d.rule, "tenant:b confines to team-b-*");
    ck_assert_int_eq(decide(p, &who, "k8s:pods:delete", "team-b-web", &d), BST_VERDICT_ALLOW);
    ck_assert_int_eq(decide(p, &who, "k8s:namespaces:list", NULL, &d), BST_VERDICT_DENY);
    ck_assert_ptr_nonnull(strstr(d.reason, "outside every tenant"));
    who.mechanism = BST_MECH_JWT;
    ck_assert_int_eq(decide(p, &who, "k8s:pods:delete", "team-a-web", &d), BST_VERDICT_ALLOW);

    /* Member of a and named tenant b: confined by both, so nowhere. */
    who.mechanism = BST_MECH_API_KEY;
    ck_assert_int_eq(bst_principal_add_group(&who, "tenant-a"), BST_OK);
    ck_assert_int_eq(decide(p, &who, "k8s:pods:list", "team-a-web", &d), BST_VERDICT_DENY);
    ck_assert_str_eq(d.rule, "tenant:b confines to team-b-*");
    ck_assert_int_eq(decide(p, &who, "k8s:pods:list", "team-b-web", &d), BST_VERDICT_DENY);
    ck_assert_str_eq(d.rule, "tenant:a confines to team-a-*,shared-a");

    /* A tenant the policy does not define confines to nothing. */
    ck_assert_int_eq(bst_principal_set_tenant(&who, "zeta"), BST_OK);
    ck_assert_int_eq(decide(p, &who, "k8s:pods:list", "team-b-web", &d), BST_VERDICT_DENY);
    ck_assert_str_eq(d.rule, "tenant:zeta undefined");
    bst_principal_dispose(&who);
    rbac_policy_free(p);
}
END_TEST

/* ---- Carried permissions, subjects, bindings ------------------------------------------------ */

START_TEST(test_rbac_carried_permissions_need_a_trusted_source)
{
    struct rbac_policy *p = load_example();
    struct bst_principal who;
    struct bst_decision d;

    bst_principal_init(&who);
    ck_assert_int_eq(bst_principal_set_name(&who, "robot", BST_MECH_API_KEY), BST_OK);
    ck_assert_int_eq(bst_principal_add_permission(&who, "k8s:po*"), BST_OK);
    ck_assert_int_eq(bst_principal_add_permission(&who, "k8s:pods:*"), BST_OK);
    /* Untrusted source: ignored. */
    ck_assert_int_eq(decide(p, &who, "k8s:pods:list", "default", &d), BST_VERDICT_DENY);
    ck_assert_str_eq(d.rule, "no rule matched");
    who.permissions_source = BST_PERMS_API_KEY_FILE;
    ck_assert_int_eq(decide(p, &who, "k8s:pods:list", "default", &d), BST_VERDICT_ALLOW);
    /* The malformed "k8s:po*" granted nothing; the wildcard did. */
    ck_assert_str_eq(d.rule, "carried:k8s:pods:* via api_key");
    /* An implicit role with no namespace restriction: cluster scope too. */
    ck_assert_int_eq(decide(p, &who, "k8s:pods:list", NULL, &d), BST_VERDICT_ALLOW);
    ck_assert_int_eq(decide(p, &who, "k8s:deployments:list", "default", &d), BST_VERDICT_DENY);
    /* Still refused by deny rules and by namespace validation. */
    ck_assert_int_eq(decide(p, &who, "k8s:pods:delete", "kube-system", &d), BST_VERDICT_DENY);
    ck_assert_str_eq(d.rule, "deny:protect-kube-system");
    ck_assert_int_eq(decide(p, &who, "k8s:pods:delete", "a/b", &d), BST_VERDICT_DENY);
    bst_principal_dispose(&who);
    rbac_policy_free(p);
}
END_TEST

START_TEST(test_rbac_subjects_match_their_own_field_only)
{
    struct rbac_policy *p = load_example();
    struct bst_principal who;
    struct bst_decision d;

    /* A token whose user name spells the admin certificate's identity is not that
     * certificate: cert subjects match cert_identity only. */
    bst_principal_init(&who);
    ck_assert_int_eq(
        bst_principal_set_name(&who, "spiffe://bastion.local/user/admin", BST_MECH_JWT), BST_OK);
    ck_assert_int_eq(decide(p, &who, "k8s:pods:list", "default", &d), BST_VERDICT_DENY);
    /* A certificate binding applies only when the certificate authenticated the call: a token
     * presented over the viewer's certificate neither borrows nor sheds the workload's rights. */
    who.cert_identity = strdup("spiffe://bastion.local/user/viewer");
    ck_assert_int_eq(decide(p, &who, "k8s:pods:list", "default", &d), BST_VERDICT_DENY);
    who.mechanism = BST_MECH_MTLS;
    ck_assert_int_eq(decide(p, &who, "k8s:pods:list", "default", &d), BST_VERDICT_ALLOW);
    ck_assert_str_eq(d.rule, "role:viewer via binding:viewers");
    ck_assert_int_eq(decide(p, &who, "k8s:pods:delete", "default", &d), BST_VERDICT_DENY);
    /* Case and trailing bytes matter. */
    free(who.cert_identity);
    who.cert_identity = strdup("spiffe://bastion.local/user/Viewer");
    ck_assert_int_eq(decide(p, &who, "k8s:pods:list", "default", &d), BST_VERDICT_DENY);
    free(who.cert_identity);
    who.cert_identity = strdup("spiffe://bastion.local/user/viewer/");
    ck_assert_int_eq(decide(p, &who, "k8s:pods:list", "default", &d), BST_VERDICT_DENY);
    /* Groups from the principal. */
    ck_assert_int_eq(bst_principal_add_group(&who, "acme-ops"), BST_OK);
    ck_assert_int_eq(decide(p, &who, "k8s:pods:delete", "acme-web", &d), BST_VERDICT_ALLOW);
    ck_assert_str_eq(d.rule, "role:tenant-operator via binding:acme-operators");
    ck_assert_int_eq(decide(p, &who, "k8s:pods:list", "default", &d), BST_VERDICT_DENY);
    ck_assert_str_eq(d.rule, "tenant:acme confines to acme-*");
    bst_principal_dispose(&who);
    rbac_policy_free(p);
}
END_TEST

START_TEST(test_rbac_binding_namespaces_narrow_a_role)
{
    struct rbac_policy *p = load_text(
        "roles:\n"
        "  - {name: admin, permissions: [\"k8s:*\"]}\n"
        "  - {name: reader, permissions: [k8s:pods:list], namespaces: [default, dev-*]}\n"
        "bindings:\n"
        "  - {name: dev-admin, subjects: [{user: dana}], roles: [admin], namespaces: [dev-*]}\n"
        "  - {name: narrow, subjects: [{user: erin}], roles: [reader], namespaces: [dev-a]}\n");
    struct bst_principal dana, erin;
    struct bst_decision d;

    bst_principal_init(&dana);
    bst_principal_init(&erin);
    ck_assert_int_eq(bst_principal_set_name(&dana, "dana", BST_MECH_JWT), BST_OK);
    ck_assert_int_eq(bst_principal_set_name(&erin, "erin", BST_MECH_JWT), BST_OK);
    ck_assert_int_eq(decide(p, &dana, "k8s:pods:delete", "dev-x", &d), BST_VERDICT_ALLOW);
    ck_assert_str_eq(d.rule, "role:admin via binding:dev-admin");
    ck_assert_int_eq(decide(p, &dana, "k8s:pods:delete", "prod", &d), BST_VERDICT_DENY);
    ck_assert_int_eq(decide(p, &dana, "k8s:namespaces:list", NULL, &d), BST_VERDICT_DENY);
    /* Both lists must admit the namespace. */
    ck_assert_int_eq(decide(p, &erin, "k8s:pods:list", "dev-a", &d), BST_VERDICT_ALLOW);
    ck_assert_int_eq(decide(p, &erin, "k8s:pods:list", "dev-b", &d), BST_VERDICT_DENY);
    ck_assert_int_eq(decide(p, &erin, "k8s:pods:list", "default", &d), BST_VERDICT_DENY);
    bst_principal_dispose(&dana);
    bst_principal_dispose(&erin);
    rbac_policy_free(p);
}
END_TEST

START_TEST(test_rbac_every_binding_naming_a_subject_is_considered_and_the_first_allowing_decides)
{
    /* staff is named by three bindings; only the later ones can allow, and for some requests
     * only the last. Also: a principal reaching bindings through user and group at once. */
    struct rbac_policy *p = load_text(
        "roles:\n"
        "  - {name: reader, permissions: [k8s:pods:list], namespaces: [a]}\n"
        "  - {name: lister, permissions: [k8s:pods:list, k8s:services:list]}\n"
        "  - {name: deleter, permissions: [k8s:pods:delete], namespaces: [b]}\n"
        "bindings:\n"
        "  - {name: first, subjects: [{group: staff}], roles: [reader]}\n"
        "  - {name: second, subjects: [{user: zed}, {group: staff}], roles: [reader, lister]}\n"
        "  - {name: third, subjects: [{group: staff}], roles: [deleter]}\n"
        "  - {name: fourth, subjects: [{user: zed}], roles: [deleter]}\n");
    struct bst_principal who;
    struct bst_decision d;

    bst_principal_init(&who);
    ck_assert_int_eq(bst_principal_set_name(&who, "zed", BST_MECH_JWT), BST_OK);
    ck_assert_int_eq(bst_principal_add_group(&who, "other"), BST_OK);
    ck_assert_int_eq(bst_principal_add_group(&who, "staff"), BST_OK);
    ck_assert_int_eq(decide(p, &who, "k8s:pods:list", "a", &d), BST_VERDICT_ALLOW);
    ck_assert_str_eq(d.rule, "role:reader via binding:first");
    ck_assert_int_eq(decide(p, &who, "k8s:pods:list", "c", &d), BST_VERDICT_ALLOW);
    ck_assert_str_eq(d.rule, "role:lister via binding:second");
    ck_assert_int_eq(decide(p, &who, "k8s:pods:delete", "b", &d), BST_VERDICT_ALLOW);
    ck_assert_str_eq(d.rule, "role:deleter via binding:third");
    ck_assert_int_eq(decide(p, &who, "k8s:pods:delete", "c", &d), BST_VERDICT_DENY);
    /* Without the group, only the user's bindings remain. */
    bst_principal_dispose(&who);
    bst_principal_init(&who);
    ck_assert_int_eq(bst_principal_set_name(&who, "zed", BST_MECH_JWT), BST_OK);
    ck_assert_int_eq(decide(p, &who, "k8s:pods:delete", "b", &d), BST_VERDICT_ALLOW);
    ck_assert_str_eq(d.rule, "role:deleter via binding:fourth");
    bst_principal_dispose(&who);
    rbac_policy_free(p);
}
END_TEST

START_TEST(test_rbac_bad_requests_are_denied_with_clean_reasons)
{
    struct rbac_policy *p = load_example();
    struct bst_principal who;
    struct bst_decision d;
    char *huge = malloc(10000);

    cert_principal(&who, "admin");
    ck_assert_int_eq(rbac_decide(NULL, &who, "k8s:pods:list", "default", &d), BST_VERDICT_DENY);
    ck_assert_int_eq(rbac_decide(p, NULL, "k8s:pods:list", "default", &d), BST_VERDICT_DENY);
    ck_assert_int_eq(rbac_decide(p, &who, NULL, "default", &d), BST_VERDICT_DENY);
    ck_assert_str_eq(d.rule, "invalid request");
    /* Escape sequences and huge values are sanitised and cut in the reason. */
    ck_assert_int_eq(decide(p, &who, "k8s:pods:list", "a\x1b[31mb\r\n", &d), BST_VERDICT_DENY);
    ck_assert_ptr_null(strchr(d.reason, '\x1b'));
    ck_assert_ptr_nonnull(huge);
    memset(huge, 'a', 9999);
    huge[9999] = '\0';
    ck_assert_int_eq(decide(p, &who, "k8s:pods:list", huge, &d), BST_VERDICT_DENY);
    ck_assert_str_eq(d.rule, "invalid namespace");
    ck_assert_ptr_nonnull(strstr(d.reason, "..."));
    ck_assert_int_eq(decide(p, &who, huge, "default", &d), BST_VERDICT_DENY);
    ck_assert_str_eq(d.rule, "unknown permission");
    /* More groups than a principal may carry: refused, not truncated. */
    who.n_groups = BST_PRINCIPAL_MAX_GROUPS + 1;
    ck_assert_int_eq(decide(p, &who, "k8s:pods:list", "default", &d), BST_VERDICT_DENY);
    ck_assert_str_eq(d.rule, "invalid principal");
    who.n_groups = 0;
    free(huge);
    bst_principal_dispose(&who);
    rbac_policy_free(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rbac_decide");
    TCase *tc = tcase_create("decide");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_rbac_example_roles_by_permissions_by_namespaces_match_the_model);
    tcase_add_test(tc, test_rbac_example_spot_rows);
    tcase_add_test(tc, test_rbac_glob_edge_cases_through_decisions);
    tcase_add_test(tc, test_rbac_deny_rules_beat_every_allow_and_the_first_in_file_order_decides);
    tcase_add_test(tc, test_rbac_tenant_a_principal_never_acts_outside_tenant_a);
    tcase_add_test(tc, test_rbac_tenant_membership_by_api_key_and_undefined_tenants);
    tcase_add_test(tc, test_rbac_carried_permissions_need_a_trusted_source);
    tcase_add_test(tc, test_rbac_subjects_match_their_own_field_only);
    tcase_add_test(tc, test_rbac_binding_namespaces_narrow_a_role);
    tcase_add_test(
        tc, test_rbac_every_binding_naming_a_subject_is_considered_and_the_first_allowing_decides);
    tcase_add_test(tc, test_rbac_bad_requests_are_denied_with_clean_reasons);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
