/* Explain and lint: the human side of the policy.
 *
 * rbac_walk() is a second, deliberately naive implementation of the decision: it ignores the
 * index and walks every tenant, deny rule and binding in file order, printing why each one
 * applies or not. Its verdict and rule must equal rbac_decide()'s for every input, which makes
 * it the oracle the unit tests and the fuzz target hold the indexed path to. */
#include "rbac_internal.h"

#include "text.h"

#include <stdarg.h>
#include <string.h>

/* Writes s sanitised (no control characters) and capped, for terminal output. */
static const char *clean(const char *s, char *buf, size_t size)
{
    if (s == NULL)
        return "(none)";
    bst_text_sanitize(buf, size, s, strnlen(s, size - 1));
    return buf;
}

static void say(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(FILE *f, const char *fmt, ...)
{
    va_list ap;
    if (f == NULL)
        return;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
}

/* The first subject of the list that names the principal, or NULL. */
static const struct rbac_subject *first_match(const struct rbac_subject *v, size_t n,
                                              const struct bst_principal *who)
{
    for (size_t i = 0; i < n; i++)
        if (rbac_subject_matches(&v[i], who))
            return &v[i];
    return NULL;
}

static const char *subject_text(const struct rbac_subject *s, char *buf, size_t size)
{
    char v[200];
    /* Long subjects (URIs) are cut for display; the decision never uses this text. */
    if (snprintf(buf, size, "%s:%s", rbac_subject_kind_name(s->kind),
                 clean(s->value, v, sizeof(v))) < 0)
        buf[0] = '\0';
    return buf;
}

static const char *ns_text(const char *ns)
{
    return ns != NULL ? ns : "(all namespaces / cluster scope)";
}

static void print_principal(FILE *f, const struct bst_principal *who)
{
    char b[200];

    if (f == NULL)
        return;
    say(f, "principal:\n");
    say(f, "  user:    %s\n", clean(who->name, b, sizeof(b)));
    say(f, "  cert:    %s\n", clean(who->cert_identity, b, sizeof(b)));
    if (who->mechanism == BST_MECH_API_KEY)
        say(f, "  apikey:  %s\n", clean(who->credential_id, b, sizeof(b)));
    for (size_t i = 0; i < who->n_groups && i < BST_PRINCIPAL_MAX_GROUPS; i++)
        say(f, "  group:   %s\n", clean(who->groups[i], b, sizeof(b)));
    say(f, "  tenant:  %s\n", clean(who->tenant, b, sizeof(b)));
    if (who->permissions_source != BST_PERMS_NONE)
        for (size_t i = 0; i < who->n_permissions; i++)
            say(f, "  carries: %s\n", clean(who->permissions[i], b, sizeof(b)));
}

enum bst_verdict rbac_walk(const struct rbac_policy *p, const struct bst_principal *who,
                           const char *permission, const char *ns, FILE *f,
                           struct bst_decision *out)
{
    struct bst_decision tmp;
    int decided = 0;
    size_t nslen = 0;
    long pi;
    char b[200], b2[200];

    memset(out, 0, sizeof(*out));
    if (p == NULL || who == NULL || permission == NULL) {
        rbac_out_invalid_request(out, p == NULL     ? "policy"
                                      : who == NULL ? "principal"
                                                    : "permission");
        say(f, "decision: DENY by %s: %s\n", out->rule, out->reason);
        return out->verdict;
    }
    if (ns != NULL)
        say(f, "request: %s in namespace %s\n", clean(permission, b, sizeof(b)),
            clean(ns, b2, sizeof(b2)));
    else
        say(f, "request: %s across all namespaces or at cluster scope\n",
            clean(permission, b, sizeof(b)));
    print_principal(f, who);

    if (ns != NULL && (nslen = rbac_ns_len(ns)) == 0) {
        rbac_out_invalid_ns(out, ns);
        say(f, "namespace: not a DNS-1123 label: refused before any rule\n");
        decided = 1;
    } else if ((pi = rbac_perm_index(p, permission)) < 0) {
        rbac_out_unknown_perm(out, permission);
        say(f, "permission: not one any tool uses: refused before any rule\n");
        decided = 1;
    } else if (who->n_groups > BST_PRINCIPAL_MAX_GROUPS) {
        rbac_out_too_many_groups(out);
        decided = 1;
    }
    if (decided) {
        say(f, "decision: DENY by %s: %s\n", out->rule, out->reason);
        return out->verdict;
    }
    pi = rbac_perm_index(p, permission);

    /* 1. Tenants. */
    say(f, "tenants (confine before any role):\n");
    if (who->tenant != NULL) {
        const struct rbac_tenant *t = NULL;
        for (size_t i = 0; i < p->n_tenants && t == NULL; i++)
            if (strcmp(p->tenants[i].name, who->tenant) == 0)
                t = &p->tenants[i];
        if (t == NULL) {
            rbac_out_tenant_undefined(out, who->tenant);
            decided = 1;
            say(f, "  the principal's tenant '%s' is not defined: DENY\n",
                clean(who->tenant, b, sizeof(b)));
        } else {
            rbac_patset_text(&t->ns, b, sizeof(b));
            if (rbac_tenant_admits(t, ns, nslen)) {
                say(f, "  tenant %s (the principal's own, line %d) admits %s (%s)\n", t->name,
                    t->line, ns_text(ns), b);
            } else {
                rbac_out_tenant(out, t, ns);
                decided = 1;
                say(f,
                    "  tenant %s (the principal's own, line %d) confines to %s: %s is outside: "
                    "DENY\n",
                    t->name, t->line, b, ns_text(ns));
            }
        }
    }
    for (size_t i = 0; i < p->n_tenants; i++) {
        const struct rbac_tenant *t = &p->tenants[i];
        const struct rbac_subject *s = first_match(t->members, t->n_members, who);
        if (s == NULL) {
            say(f, "  tenant %s (line %d): the principal is not a member\n", t->name, t->line);
            continue;
        }
        rbac_patset_text(&t->ns, b, sizeof(b));
        if (rbac_tenant_admits(t, ns, nslen)) {
            say(f, "  tenant %s (line %d): member as %s; admits %s\n", t->name, t->line,
                subject_text(s, b2, sizeof(b2)), ns_text(ns));
        } else {
            say(f, "  tenant %s (line %d): member as %s; confines to %s: %s is outside%s\n",
                t->name, t->line, subject_text(s, b2, sizeof(b2)), b, ns_text(ns),
                decided ? "" : ": DENY");
            if (!decided)
                rbac_out_tenant(out, t, ns);
            decided = 1;
        }
    }
    if (p->n_tenants == 0 && who->tenant == NULL)
        say(f, "  none\n");

    /* 2. Deny rules. */
    say(f, "deny rules (beat every allow):\n");
    for (size_t i = 0; i < p->n_denies; i++) {
        const struct rbac_deny *d = &p->denies[i];
        const struct rbac_subject *s = first_match(d->subjects, d->n_subjects, who);
        if (d->n_subjects > 0 && s == NULL) {
            say(f, "  deny %s (line %d): names other subjects\n", d->name, d->line);
            continue;
        }
        if (!rbac_bit(d->perms, (size_t)pi)) {
            say(f, "  deny %s (line %d): does not cover %s\n", d->name, d->line, permission);
            continue;
        }
        if (!rbac_patset_covers(&d->ns, ns, nslen)) {
            rbac_patset_text(&d->ns, b, sizeof(b));
            say(f, "  deny %s (line %d): only in %s\n", d->name, d->line, b);
            continue;
        }
        say(f, "  deny %s (line %d): applies to %s%s\n", d->name, d->line,
            s != NULL ? subject_text(s, b2, sizeof(b2)) : "everyone", decided ? "" : ": DENY");
        if (!decided)
            rbac_out_deny(out, d, permission, ns);
        decided = 1;
    }
    if (p->n_denies == 0)
        say(f, "  none\n");

    /* 3. Bindings and their roles. */
    say(f, "bindings:\n");
    for (size_t i = 0; i < p->n_bindings; i++) {
        const struct rbac_binding *bd = &p->bindings[i];
        const struct rbac_subject *s = first_match(bd->subjects, bd->n_subjects, who);
        if (s == NULL) {
            say(f, "  binding %s (line %d): no subject names the principal\n", bd->name, bd->line);
            continue;
        }
        say(f, "  binding %s (line %d): names the principal as %s\n", bd->name, bd->line,
            subject_text(s, b2, sizeof(b2)));
        if (!rbac_patset_admits(&bd->ns, ns, nslen)) {
            rbac_patset_text(&bd->ns, b, sizeof(b));
            say(f, "    narrowed to %s: %s is outside\n", b, ns_text(ns));
            continue;
        }
        for (size_t r = 0; r < bd->n_roles; r++) {
            const struct rbac_role *role = &p->roles[bd->roles[r]];
            if (!rbac_bit(role->perms, (size_t)pi)) {
                say(f, "    role %s: does not grant %s\n", role->name, permission);
            } else if (!rbac_patset_admits(&role->ns, ns, nslen)) {
                rbac_patset_text(&role->ns, b, sizeof(b));
                say(f, "    role %s: grants %s only in %s\n", role->name, permission, b);
            } else {
                say(f, "    role %s: grants %s in %s%s\n", role->name, permission, ns_text(ns),
                    decided ? "" : ": ALLOW");
                if (!decided)
                    rbac_out_role(out, role, bd, permission, ns);
                decided = 1;
            }
        }
    }
    if (p->n_bindings == 0)
        say(f, "  none\n");

    /* 4. Carried permissions. */
    say(f, "carried permissions:\n");
    if (who->permissions_source == BST_PERMS_NONE) {
        say(f, "  none honoured (authentication did not trust a source)\n");
    } else {
        for (size_t i = 0; i < who->n_permissions; i++) {
            const char *c = who->permissions[i];
            if (!rbac_permission_grants(c, permission)) {
                say(f, "  %s: does not grant %s\n", clean(c, b, sizeof(b)), permission);
                continue;
            }
            say(f, "  %s: grants %s everywhere the tenant allows%s\n", c, permission,
                decided ? "" : ": ALLOW");
            if (!decided)
                rbac_out_carried(out, c, who->permissions_source, permission, ns);
            decided = 1;
        }
        if (who->n_permissions == 0)
            say(f, "  none\n");
    }

    if (!decided)
        rbac_out_default(out, permission, ns);
    memcpy(&tmp, out, sizeof(tmp));
    say(f, "decision: %s by %s: %s\n", tmp.verdict == BST_VERDICT_ALLOW ? "ALLOW" : "DENY",
        tmp.rule, tmp.reason);
    return out->verdict;
}

enum bst_verdict rbac_explain(const struct rbac_policy *p, const struct bst_principal *who,
                              const char *permission, const char *namespace_, FILE *out)
{
    struct bst_decision walked, decided;

    rbac_walk(p, who, permission, namespace_, out, &walked);
    rbac_decide(p, who, permission, namespace_, &decided);
    /* The indexed decision is what the server enforces; a disagreement is our bug. */
    if (walked.verdict != decided.verdict || strcmp(walked.rule, decided.rule) != 0)
        fprintf(out, "internal error: the enforced decision is %s by %s\n",
                decided.verdict == BST_VERDICT_ALLOW ? "ALLOW" : "DENY", decided.rule);
    return decided.verdict;
}

/* ---- Lint ---------------------------------------------------------------------------------- */

static int subjects_overlap(const struct rbac_deny *a, const struct rbac_deny *b)
{
    if (a->n_subjects == 0 || b->n_subjects == 0)
        return 1;
    for (size_t i = 0; i < a->n_subjects; i++)
        for (size_t j = 0; j < b->n_subjects; j++)
            if (a->subjects[i].kind == b->subjects[j].kind &&
                a->subjects[i].len == b->subjects[j].len &&
                memcmp(a->subjects[i].value, b->subjects[j].value, a->subjects[i].len) == 0)
                return 1;
    return 0;
}

static int patsets_overlap(const struct rbac_patset *a, const struct rbac_patset *b)
{
    if (!a->restricted || !b->restricted)
        return 1;
    for (size_t i = 0; i < a->n; i++)
        for (size_t j = 0; j < b->n; j++)
            if (rbac_pat_overlap(&a->v[i], &b->v[j]))
                return 1;
    return 0;
}

static int perm_used(const char *entry, const char *const *known, size_t n_known)
{
    for (size_t k = 0; k < n_known; k++)
        if (rbac_permission_grants(entry, known[k]))
            return 1;
    return 0;
}

int rbac_lint(const struct rbac_policy *p, const char *const *known, size_t n_known, FILE *out)
{
    int findings = 0;
    char b[200], b2[200];

    for (size_t r = 0; r < p->n_roles; r++) {
        int used = 0;
        for (size_t i = 0; i < p->n_bindings && !used; i++)
            for (size_t k = 0; k < p->bindings[i].n_roles && !used; k++)
                used = p->bindings[i].roles[k] == r;
        if (!used) {
            fprintf(out, "%s:%d:%d: warning: role '%s' is bound by no binding\n", p->name,
                    p->roles[r].line, p->roles[r].col, p->roles[r].name);
            findings++;
        }
    }
    for (size_t r = 0; r < p->n_roles; r++)
        for (size_t k = 0; k < p->roles[r].n_src; k++)
            if (!perm_used(p->roles[r].src[k].text, known, n_known)) {
                fprintf(out, "%s:%d:%d: warning: role '%s': no tool uses '%s'\n", p->name,
                        p->roles[r].src[k].line, p->roles[r].src[k].col, p->roles[r].name,
                        p->roles[r].src[k].text);
                findings++;
            }
    for (size_t d = 0; d < p->n_denies; d++)
        for (size_t k = 0; k < p->denies[d].n_src; k++)
            if (!perm_used(p->denies[d].src[k].text, known, n_known)) {
                fprintf(out, "%s:%d:%d: warning: deny rule '%s': no tool uses '%s'\n", p->name,
                        p->denies[d].src[k].line, p->denies[d].src[k].col, p->denies[d].name,
                        p->denies[d].src[k].text);
                findings++;
            }
    for (size_t i = 0; i < p->n_denies; i++)
        for (size_t j = i + 1; j < p->n_denies; j++) {
            const struct rbac_deny *a = &p->denies[i], *c = &p->denies[j];
            long common = -1;
            for (size_t w = 0; w < p->words && common < 0; w++) {
                uint64_t x = a->perms[w] & c->perms[w];
                if (x != 0)
                    common = (long)(w * 64 + (size_t)__builtin_ctzll(x));
            }
            if (common < 0 || !subjects_overlap(a, c) || !patsets_overlap(&a->ns, &c->ns))
                continue;
            fprintf(out,
                    "%s:%d:%d: warning: deny rule '%s' overlaps deny rule '%s' (line %d), e.g. "
                    "on %s\n",
                    p->name, c->line, c->col, c->name, a->name, a->line, p->known[common]);
            findings++;
        }
    for (size_t i = 0; i < p->n_bindings; i++) {
        const struct rbac_binding *bd = &p->bindings[i];
        for (size_t k = 0; k < bd->n_roles; k++) {
            const struct rbac_role *role = &p->roles[bd->roles[k]];
            if (patsets_overlap(&bd->ns, &role->ns))
                continue;
            rbac_patset_text(&bd->ns, b, sizeof(b));
            rbac_patset_text(&role->ns, b2, sizeof(b2));
            fprintf(out,
                    "%s:%d:%d: warning: binding '%s' narrows role '%s' to %s, where the role "
                    "grants nothing (it holds %s)\n",
                    p->name, bd->line, bd->col, bd->name, role->name, b, b2);
            findings++;
        }
    }
    for (size_t k = 0; k < n_known; k++) {
        long pi = rbac_perm_index(p, known[k]);
        int granted = 0;
        for (size_t r = 0; pi >= 0 && r < p->n_roles && !granted; r++)
            granted = rbac_bit(p->roles[r].perms, (size_t)pi);
        if (!granted)
            fprintf(out, "%s: note: no role grants %s\n", p->name, clean(known[k], b, sizeof(b)));
    }
    return findings;
}
