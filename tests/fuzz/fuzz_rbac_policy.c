/* libFuzzer target for the RBAC policy loader and decision path. Every input is parsed as a
 * policy; refusals must carry a clean positioned message. An accepted policy is then asked many
 * questions by principals built from its own subjects (so bindings, denies and tenants really
 * match), and each answer is checked: the indexed decision equals the linear reference walk,
 * invalid namespaces are always denied, a tenant-confined principal is never allowed outside its
 * tenant or at cluster scope, and explain/lint run to completion. Any violation aborts. */
#include "rbac.h"
#include "rbac_internal.h"

#include <stdint.h>
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

static void check_text(const char *s, size_t cap)
{
    if (memchr(s, '\0', cap) == NULL)
        abort();
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            abort();
}

/* Adds the subject to the principal so that it matches. */
static void give(struct bst_principal *who, const struct rbac_subject *s)
{
    switch (s->kind) {
    case RBAC_SUBJ_USER:
        bst_principal_set_name(who, s->value, who->mechanism);
        break;
    case RBAC_SUBJ_GROUP:
        bst_principal_add_group(who, s->value);
        break;
    case RBAC_SUBJ_CERT:
        free(who->cert_identity);
        who->cert_identity = strdup(s->value);
        break;
    case RBAC_SUBJ_APIKEY:
        who->mechanism = BST_MECH_API_KEY;
        memcpy(who->credential_id, s->value, s->len + 1); /* at most 32, checked at load */
        break;
    default:
        break;
    }
}

/* Whether any tenant confines who, and whether ns is inside all of them. */
static int confined(const struct rbac_policy *p, const struct bst_principal *who, const char *ns,
                    int *inside)
{
    int any = 0, own_defined = 0;
    size_t nslen = ns != NULL ? strlen(ns) : 0;

    *inside = 1;
    for (size_t t = 0; t < p->n_tenants; t++) {
        int member = who->tenant != NULL && strcmp(who->tenant, p->tenants[t].name) == 0;
        own_defined |= member;
        for (size_t m = 0; m < p->tenants[t].n_members && !member; m++)
            member = rbac_subject_matches(&p->tenants[t].members[m], who);
        if (member) {
            any = 1;
            if (!rbac_tenant_admits(&p->tenants[t], ns, nslen))
                *inside = 0;
        }
    }
    if (who->tenant != NULL && !own_defined)
        *inside = 0; /* an undefined tenant admits nothing */
    return any || who->tenant != NULL;
}

static FILE *sink;

static void ask(const struct rbac_policy *p, const struct bst_principal *who, const char *ns)
{
    for (size_t k = 0; k <= N_KNOWN; k++) {
        const char *perm = k < N_KNOWN ? known[k] : "k8s:nodes:list";
        struct bst_decision d, w;
        enum bst_verdict v = rbac_decide(p, who, perm, ns, &d);
        int inside;

        rbac_walk(p, who, perm, ns, NULL, &w);
        if (v != d.verdict || (v != BST_VERDICT_ALLOW && v != BST_VERDICT_DENY))
            abort();
        if (w.verdict != d.verdict || strcmp(w.rule, d.rule) != 0 ||
            strcmp(w.reason, d.reason) != 0)
            abort();
        check_text(d.rule, sizeof(d.rule));
        check_text(d.reason, sizeof(d.reason));
        if (v == BST_VERDICT_ALLOW) {
            if (ns != NULL && !rbac_namespace_valid(ns))
                abort();
            if (k == N_KNOWN)
                abort();
            if (confined(p, who, ns, &inside) && !inside)
                abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rbac_policy *p = NULL;
    struct bst_err err;
    const char *ns_pool[24];
    char derived[8][80];
    size_t n_ns = 0, n_derived = 0;

    if (sink == NULL && (sink = fopen("/dev/null", "w")) == NULL)
        abort();
    memset(&err, 0, sizeof(err));
    if (rbac_policy_parse("fuzz.yaml", (const char *)data, size, known, N_KNOWN, &p, &err) !=
        BST_OK) {
        if (p != NULL || strncmp(err.msg, "fuzz.yaml", 9) != 0)
            abort();
        check_text(err.msg, sizeof(err.msg));
        return 0;
    }

    /* Namespaces: fixed traps and labels, plus ones derived from the policy's own patterns. */
    static const char *const fixed[] = {
        NULL,        "default",     "prod", "kube-system", "feature-x", "", "feature-x/../prod",
        "FEATURE-x", "feature-x\n", "a*",   "team-a-1"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        ns_pool[n_ns++] = fixed[i];
    for (size_t r = 0; r < p->n_roles && n_derived < 4; r++)
        for (size_t k = 0; k < p->roles[r].ns.n && n_derived < 4; k++) {
            const struct rbac_pat *pat = &p->roles[r].ns.v[k];
            snprintf(derived[n_derived], sizeof(derived[0]), "%s%s", pat->text,
                     pat->kind == RBAC_PAT_PREFIX ? "z" : "");
            ns_pool[n_ns++] = derived[n_derived++];
        }
    for (size_t t = 0; t < p->n_tenants && n_derived < 8; t++) {
        const struct rbac_pat *pat = &p->tenants[t].ns.v[0];
        snprintf(derived[n_derived], sizeof(derived[0]), "%s%s", pat->text,
                 pat->kind == RBAC_PAT_PREFIX ? "q" : "");
        ns_pool[n_ns++] = derived[n_derived++];
    }

    /* Principals: one per binding (its first subject), one per deny rule and tenant member,
     * one carrying a tenant name and permissions, and a stranger. */
    for (size_t i = 0; i < p->n_bindings + p->n_denies + p->n_tenants + 2 && i < 24; i++) {
        struct bst_principal who;
        bst_principal_init(&who);
        who.mechanism = BST_MECH_MTLS;
        if (i < p->n_bindings) {
            give(&who, &p->bindings[i].subjects[0]);
            if (i + 1 < p->n_bindings)
                give(&who, &p->bindings[i + 1].subjects[p->bindings[i + 1].n_subjects - 1]);
        } else if (i < p->n_bindings + p->n_denies) {
            const struct rbac_deny *d = &p->denies[i - p->n_bindings];
            if (d->n_subjects > 0)
                give(&who, &d->subjects[0]);
            if (p->n_bindings > 0)
                give(&who, &p->bindings[0].subjects[0]);
        } else if (i < p->n_bindings + p->n_denies + p->n_tenants) {
            const struct rbac_tenant *t = &p->tenants[i - p->n_bindings - p->n_denies];
            if (t->n_members > 0)
                give(&who, &t->members[0]);
            else
                bst_principal_set_tenant(&who, t->name);
            for (size_t b = 0; b < p->n_bindings && b < 4; b++)
                give(&who, &p->bindings[b].subjects[0]);
            bst_principal_add_permission(&who, "k8s:*");
            who.permissions_source = BST_PERMS_JWT_ISSUER;
        } else if (i == p->n_bindings + p->n_denies + p->n_tenants) {
            bst_principal_set_tenant(&who, p->n_tenants > 0 ? p->tenants[0].name : "nowhere");
            bst_principal_add_permission(&who, "k8s:pods:*");
            bst_principal_add_permission(&who, "k8s:po*");
            who.permissions_source = BST_PERMS_API_KEY_FILE;
            who.mechanism = BST_MECH_API_KEY;
        } else {
            bst_principal_set_name(&who, "stranger", BST_MECH_MTLS);
        }
        for (size_t n = 0; n < n_ns; n++)
            ask(p, &who, ns_pool[n]);
        rbac_explain(p, &who, "k8s:pods:delete", ns_pool[(i * 7) % n_ns], sink);
        bst_principal_dispose(&who);
    }
    rbac_lint(p, known, N_KNOWN, sink);
    rbac_lint(p, known, 3, sink);
    rbac_policy_free(p);
    return 0;
}
