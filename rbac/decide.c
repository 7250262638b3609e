/* The decision path: validate, confine by tenant, apply deny rules, then look for an allow among
 * what the index says is bound to the principal, then carried permissions, else deny. Nothing
 * here allocates or writes outside *out; the policy is read-only, so any number of threads may
 * decide at once. The same outcome formatting is used by the reference walk in explain.c, whose
 * verdicts and rules must equal these (the unit tests and the fuzz target check it). */
#include "rbac_internal.h"

#include "text.h"

#include <stdarg.h>
#include <string.h>

/* ---- Outcomes ------------------------------------------------------------------------------ */

/* Request text echoed into a reason: sanitised and short. */
static const char *echo(const char *s, char *buf, size_t size)
{
    size_t n;

    if (s == NULL)
        return "(none)";
    n = strnlen(s, size);
    if (n >= size - 4) {
        bst_text_sanitize(buf, size - 3, s, n);
        memcpy(buf + strlen(buf), "...", 4);
    } else {
        bst_text_sanitize(buf, size, s, n);
    }
    return buf;
}

/* " in namespace X" or " across all namespaces or at cluster scope". ns is a validated label. */
static const char *where(const char *ns, char *buf, size_t size)
{
    if (ns == NULL)
        return " across all namespaces or at cluster scope";
    snprintf(buf, size, " in namespace %s", ns);
    return buf;
}

static void set(struct bst_decision *out, enum bst_verdict v, const char *rule, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));

static void set(struct bst_decision *out, enum bst_verdict v, const char *rule, const char *fmt,
                ...)
{
    va_list ap;

    out->verdict = v;
    snprintf(out->rule, sizeof(out->rule), "%s", rule);
    va_start(ap, fmt);
    vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
    va_end(ap);
}

void rbac_out_invalid_request(struct bst_decision *out, const char *what)
{
    set(out, BST_VERDICT_DENY, "invalid request", "The request has no %s.", what);
}

void rbac_out_invalid_ns(struct bst_decision *out, const char *ns)
{
    char b[72];
    set(out, BST_VERDICT_DENY, "invalid namespace",
        "Namespace '%s' is not a DNS-1123 label (1 to 63 of a-z 0-9 -, alphanumeric at both "
        "ends); an empty namespace never means all namespaces.",
        echo(ns, b, sizeof(b)));
}

void rbac_out_unknown_perm(struct bst_decision *out, const char *perm)
{
    char b[72];
    set(out, BST_VERDICT_DENY, "unknown permission",
        "Permission '%s' is not one any tool uses, so nothing can grant it.",
        echo(perm, b, sizeof(b)));
}

void rbac_out_too_many_groups(struct bst_decision *out)
{
    set(out, BST_VERDICT_DENY, "invalid principal", "The principal carries more than %d groups.",
        BST_PRINCIPAL_MAX_GROUPS);
}

void rbac_out_tenant_undefined(struct bst_decision *out, const char *tenant)
{
    char b[72], rule[160];
    echo(tenant, b, sizeof(b));
    snprintf(rule, sizeof(rule), "tenant:%s undefined", b);
    set(out, BST_VERDICT_DENY, rule,
        "The principal belongs to tenant '%s', which the policy does not define, so it may act "
        "nowhere.",
        b);
}

void rbac_patset_text(const struct rbac_patset *s, char *buf, size_t size)
{
    size_t used = 0;

    if (size == 0)
        return;
    buf[0] = '\0';
    if (!s->restricted) {
        snprintf(buf, size, "every namespace");
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        char t[72];
        int w;
        rbac_pat_text(&s->v[i], t, sizeof(t));
        w = snprintf(buf + used, size - used, "%s%s", i > 0 ? "," : "", t);
        if (w < 0 || (size_t)w >= size - used) {
            /* Truncated: end with "..." where it fits. */
            if (size > 4)
                memcpy(buf + size - 4, "...", 4);
            return;
        }
        used += (size_t)w;
    }
}

void rbac_out_tenant(struct bst_decision *out, const struct rbac_tenant *t, const char *ns)
{
    char pats[100], rule[160];

    rbac_patset_text(&t->ns, pats, sizeof(pats));
    snprintf(rule, sizeof(rule), "tenant:%s confines to %s", t->name, pats);
    if (ns == NULL)
        set(out, BST_VERDICT_DENY, rule,
            "Tenant %s confines the principal to namespaces %s; requests across all namespaces "
            "or at cluster scope are outside every tenant.",
            t->name, pats);
    else
        set(out, BST_VERDICT_DENY, rule,
            "Tenant %s confines the principal to namespaces %s; namespace %s is outside it.",
            t->name, pats, ns);
}

void rbac_out_deny(struct bst_decision *out, const struct rbac_deny *d, const char *perm,
                   const char *ns)
{
    char rule[160], w[96];
    snprintf(rule, sizeof(rule), "deny:%s", d->name);
    set(out, BST_VERDICT_DENY, rule, "Deny rule %s forbids %s%s, whatever the roles allow.",
        d->name, perm, where(ns, w, sizeof(w)));
}

void rbac_out_role(struct bst_decision *out, const struct rbac_role *r,
                   const struct rbac_binding *b, const char *perm, const char *ns)
{
    char rule[160], w[96];
    snprintf(rule, sizeof(rule), "role:%s via binding:%s", r->name, b->name);
    set(out, BST_VERDICT_ALLOW, rule, "Role %s, bound by %s, grants %s%s.", r->name, b->name, perm,
        where(ns, w, sizeof(w)));
}

static const char *source_name(enum bst_perm_source src)
{
    switch (src) {
    case BST_PERMS_API_KEY_FILE:
        return "api_key";
    case BST_PERMS_JWT_ISSUER:
        return "jwt";
    case BST_PERMS_NONE:
        break;
    }
    return "none";
}

void rbac_out_carried(struct bst_decision *out, const char *pattern, enum bst_perm_source src,
                      const char *perm, const char *ns)
{
    char rule[160], w[96];
    /* pattern passed rbac_permission_grants, so it is grammar-clean and short. */
    snprintf(rule, sizeof(rule), "carried:%s via %s", pattern, source_name(src));
    set(out, BST_VERDICT_ALLOW, rule,
        "The principal's own permission %s (from its %s) grants %s%s.", pattern,
        src == BST_PERMS_API_KEY_FILE ? "API key" : "token issuer", perm, where(ns, w, sizeof(w)));
}

void rbac_out_default(struct bst_decision *out, const char *perm, const char *ns)
{
    char w[96];
    set(out, BST_VERDICT_DENY, "no rule matched", "No role bound to the principal grants %s%s.",
        perm, where(ns, w, sizeof(w)));
}

/* ---- Namespace sets ------------------------------------------------------------------------ */

static int any_match(const struct rbac_patset *s, const char *ns, size_t nslen)
{
    for (size_t i = 0; i < s->n; i++)
        if (rbac_pat_match(&s->v[i], ns, nslen))
            return 1;
    return 0;
}

int rbac_patset_admits(const struct rbac_patset *s, const char *ns, size_t nslen)
{
    if (!s->restricted)
        return 1;
    /* A restricted grant never reaches across all namespaces or cluster-scoped objects. */
    return ns != NULL && any_match(s, ns, nslen);
}

int rbac_patset_covers(const struct rbac_patset *s, const char *ns, size_t nslen)
{
    /* "All namespaces" includes the ones a deny rule names. */
    if (!s->restricted || ns == NULL)
        return 1;
    return any_match(s, ns, nslen);
}

int rbac_tenant_admits(const struct rbac_tenant *t, const char *ns, size_t nslen)
{
    return ns != NULL && any_match(&t->ns, ns, nslen);
}

int rbac_subject_matches(const struct rbac_subject *s, const struct bst_principal *who)
{
    switch (s->kind) {
    case RBAC_SUBJ_USER:
        return who->name != NULL && strcmp(who->name, s->value) == 0;
    case RBAC_SUBJ_GROUP:
        for (size_t i = 0; i < who->n_groups; i++)
            if (who->groups[i] != NULL && strcmp(who->groups[i], s->value) == 0)
                return 1;
        return 0;
    case RBAC_SUBJ_CERT:
        /* A `cert:` binding is the workload's own right: it applies only when the certificate
         * is what authenticated the call. With a token or key the caller acts as that identity
         * alone, so a token can neither borrow the workload's roles nor shed its tenant. */
        return who->mechanism == BST_MECH_MTLS && who->cert_identity != NULL &&
               strcmp(who->cert_identity, s->value) == 0;
    case RBAC_SUBJ_APIKEY:
        return who->mechanism == BST_MECH_API_KEY && who->credential_id[0] != '\0' &&
               strnlen(who->credential_id, sizeof(who->credential_id)) <
                   sizeof(who->credential_id) &&
               strcmp(who->credential_id, s->value) == 0;
    default:
        return 0;
    }
}

const char *rbac_subject_kind_name(unsigned kind)
{
    switch (kind) {
    case RBAC_SUBJ_USER:
        return "user";
    case RBAC_SUBJ_GROUP:
        return "group";
    case RBAC_SUBJ_CERT:
        return "cert";
    case RBAC_SUBJ_APIKEY:
        return "apikey";
    default:
        return "tenant";
    }
}

/* ---- Decide -------------------------------------------------------------------------------- */

#define MAX_ENTRIES (3 + BST_PRINCIPAL_MAX_GROUPS)

/* Collects the index entries naming the principal: its user name, certificate identity, API
 * key id and groups. Returns the count, or -1 for a principal with too many groups. */
static int principal_entries(const struct rbac_policy *p, const struct bst_principal *who,
                             const struct rbac_entry **v)
{
    int n = 0;
    const struct rbac_entry *e;

    if (who->n_groups > BST_PRINCIPAL_MAX_GROUPS)
        return -1;
    if (who->name != NULL && (e = rbac_lookup(p, RBAC_SUBJ_USER, who->name)) != NULL)
        v[n++] = e;
    if (who->mechanism == BST_MECH_MTLS && who->cert_identity != NULL &&
        (e = rbac_lookup(p, RBAC_SUBJ_CERT, who->cert_identity)) != NULL)
        v[n++] = e;
    if (who->mechanism == BST_MECH_API_KEY && who->credential_id[0] != '\0' &&
        strnlen(who->credential_id, sizeof(who->credential_id)) < sizeof(who->credential_id) &&
        (e = rbac_lookup(p, RBAC_SUBJ_APIKEY, who->credential_id)) != NULL)
        v[n++] = e;
    for (size_t i = 0; i < who->n_groups; i++)
        if (who->groups[i] != NULL && (e = rbac_lookup(p, RBAC_SUBJ_GROUP, who->groups[i])) != NULL)
            v[n++] = e;
    return n;
}

enum bst_verdict rbac_decide(const struct rbac_policy *p, const struct bst_principal *who,
                             const char *permission, const char *namespace_,
                             struct bst_decision *out)
{
    const struct rbac_entry *ents[MAX_ENTRIES];
    const char *ns = namespace_;
    size_t nslen = 0;
    uint32_t best, best_role = 0;
    long pi;
    int n;

    memset(out, 0, sizeof(*out));
    if (p == NULL || who == NULL || permission == NULL) {
        rbac_out_invalid_request(out, p == NULL     ? "policy"
                                      : who == NULL ? "principal"
                                                    : "permission");
        return out->verdict;
    }
    if (ns != NULL && (nslen = rbac_ns_len(ns)) == 0) {
        rbac_out_invalid_ns(out, ns);
        return out->verdict;
    }
    if ((pi = rbac_perm_index(p, permission)) < 0) {
        rbac_out_unknown_perm(out, permission);
        return out->verdict;
    }
    if ((n = principal_entries(p, who, ents)) < 0) {
        rbac_out_too_many_groups(out);
        return out->verdict;
    }

    /* 1. Tenants confine before anything can allow: the principal's own tenant, then every
     * tenant whose members name it (the first in file order that refuses decides). */
    if (who->tenant != NULL) {
        const struct rbac_entry *t = rbac_lookup(p, RBAC_SUBJ_TENANT, who->tenant);
        if (t == NULL || t->tenant_def < 0) {
            rbac_out_tenant_undefined(out, who->tenant);
            return out->verdict;
        }
        if (!rbac_tenant_admits(&p->tenants[t->tenant_def], ns, nslen)) {
            rbac_out_tenant(out, &p->tenants[t->tenant_def], ns);
            return out->verdict;
        }
    }
    best = UINT32_MAX;
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < ents[i]->n_tenants && ents[i]->tenants[k] < best; k++)
            if (!rbac_tenant_admits(&p->tenants[ents[i]->tenants[k]], ns, nslen))
                best = ents[i]->tenants[k];
    if (best != UINT32_MAX) {
        rbac_out_tenant(out, &p->tenants[best], ns);
        return out->verdict;
    }

    /* 2. Deny rules beat every allow: those for everyone (indexed by permission), then those
     * naming the principal. The first in file order decides. */
    best = UINT32_MAX;
    for (size_t k = 0; k < p->n_global_denies[pi]; k++) {
        uint32_t d = p->global_denies[pi][k];
        if (rbac_patset_covers(&p->denies[d].ns, ns, nslen)) {
            best = d;
            break;
        }
    }
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < ents[i]->n_denies && ents[i]->denies[k] < best; k++) {
            const struct rbac_deny *d = &p->denies[ents[i]->denies[k]];
            if (rbac_bit(d->perms, (size_t)pi) && rbac_patset_covers(&d->ns, ns, nslen))
                best = ents[i]->denies[k];
        }
    if (best != UINT32_MAX) {
        rbac_out_deny(out, &p->denies[best], permission, ns);
        return out->verdict;
    }

    /* 3. Roles bound to the principal: the first binding in file order that allows, and within
     * it the first role in the order written. */
    best = UINT32_MAX;
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < ents[i]->n_bindings && ents[i]->bindings[k] < best; k++) {
            const struct rbac_binding *b = &p->bindings[ents[i]->bindings[k]];
            if (!rbac_patset_admits(&b->ns, ns, nslen))
                continue;
            for (size_t r = 0; r < b->n_roles; r++) {
                const struct rbac_role *role = &p->roles[b->roles[r]];
                if (rbac_bit(role->perms, (size_t)pi) && rbac_patset_admits(&role->ns, ns, nslen)) {
                    best = ents[i]->bindings[k];
                    best_role = b->roles[r];
                    break;
                }
            }
        }
    if (best != UINT32_MAX) {
        rbac_out_role(out, &p->roles[best_role], &p->bindings[best], permission, ns);
        return out->verdict;
    }

    /* 4. Carried permissions: an implicit role with no namespace restriction, bound to this
     * principal only, honoured only when authentication trusted their source. */
    if (who->permissions_source != BST_PERMS_NONE)
        for (size_t i = 0; i < who->n_permissions; i++)
            if (rbac_permission_grants(who->permissions[i], permission)) {
                rbac_out_carried(out, who->permissions[i], who->permissions_source, permission, ns);
                return out->verdict;
            }

    /* 5. Default deny. */
    rbac_out_default(out, permission, ns);
    return out->verdict;
}
