/* Matching primitives: DNS-1123 namespace labels, namespace patterns and the permission
 * grammar. Hand-written rather than fnmatch(3): with default flags fnmatch lets "feature-*"
 * match "feature-x/../prod" and "feature-x\n", and nothing here may match outside the label
 * alphabet [a-z0-9-]. */
#include "rbac_internal.h"

#include <string.h>

static int is_alnum_lower(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_label_char(unsigned char c)
{
    return is_alnum_lower(c) || c == '-';
}

size_t rbac_ns_len(const char *ns)
{
    size_t n;

    if (ns == NULL)
        return 0;
    /* strnlen bounds the scan: a 64th byte already disqualifies the label. */
    n = strnlen(ns, 64);
    if (n == 0 || n > 63)
        return 0;
    if (!is_alnum_lower((unsigned char)ns[0]) || !is_alnum_lower((unsigned char)ns[n - 1]))
        return 0;
    for (size_t i = 1; i + 1 < n; i++)
        if (!is_label_char((unsigned char)ns[i]))
            return 0;
    return n;
}

int rbac_namespace_valid(const char *ns)
{
    return rbac_ns_len(ns) > 0;
}

int rbac_pat_compile(const char *pattern, size_t len, struct rbac_pat *out)
{
    memset(out, 0, sizeof(*out));
    if (pattern == NULL || len == 0 || memchr(pattern, '\0', len) != NULL)
        return 0;
    if (len == 1 && pattern[0] == '*') {
        out->kind = RBAC_PAT_ANY;
        return 1;
    }
    if (pattern[len - 1] == '*') {
        /* "<prefix>*": the prefix is the start of a label, so it starts alphanumeric and may
         * end with '-'; it leaves room for at least one more character. */
        size_t plen = len - 1;
        if (plen > 62 || !is_alnum_lower((unsigned char)pattern[0]))
            return 0;
        for (size_t i = 0; i < plen; i++)
            if (!is_label_char((unsigned char)pattern[i]))
                return 0;
        out->kind = RBAC_PAT_PREFIX;
        out->len = (unsigned char)plen;
        memcpy(out->text, pattern, plen);
        return 1;
    }
    if (len > 63)
        return 0;
    {
        char tmp[64];
        memcpy(tmp, pattern, len);
        tmp[len] = '\0';
        if (rbac_ns_len(tmp) != len)
            return 0;
    }
    out->kind = RBAC_PAT_EXACT;
    out->len = (unsigned char)len;
    memcpy(out->text, pattern, len);
    return 1;
}

int rbac_pat_match(const struct rbac_pat *p, const char *ns, size_t nslen)
{
    switch (p->kind) {
    case RBAC_PAT_ANY:
        return 1;
    case RBAC_PAT_EXACT:
        return nslen == p->len && memcmp(ns, p->text, nslen) == 0;
    case RBAC_PAT_PREFIX:
        /* ns is a validated label, so whatever follows the prefix is in the label alphabet. */
        return nslen >= p->len && memcmp(ns, p->text, p->len) == 0;
    default:
        return 0;
    }
}

int rbac_pat_overlap(const struct rbac_pat *a, const struct rbac_pat *b)
{
    size_t n;

    if (a->kind == RBAC_PAT_ANY || b->kind == RBAC_PAT_ANY)
        return 1;
    if (a->kind == RBAC_PAT_EXACT && b->kind == RBAC_PAT_EXACT)
        return a->len == b->len && memcmp(a->text, b->text, a->len) == 0;
    if (a->kind == RBAC_PAT_EXACT)
        return rbac_pat_match(b, a->text, a->len);
    if (b->kind == RBAC_PAT_EXACT)
        return rbac_pat_match(a, b->text, b->len);
    /* Two prefixes: some label starts with both exactly when one prefix starts the other. */
    n = a->len < b->len ? a->len : b->len;
    return memcmp(a->text, b->text, n) == 0;
}

void rbac_pat_text(const struct rbac_pat *p, char *buf, size_t size)
{
    if (size == 0)
        return;
    switch (p->kind) {
    case RBAC_PAT_ANY:
        snprintf(buf, size, "*");
        break;
    case RBAC_PAT_PREFIX:
        snprintf(buf, size, "%s*", p->text);
        break;
    default:
        snprintf(buf, size, "%s", p->text);
        break;
    }
}

int rbac_ns_pattern_valid(const char *pattern)
{
    struct rbac_pat p;
    return pattern != NULL && rbac_pat_compile(pattern, strnlen(pattern, 128), &p);
}

int rbac_ns_pattern_match(const char *pattern, const char *ns)
{
    struct rbac_pat p;
    size_t nslen = rbac_ns_len(ns);

    if (pattern == NULL || nslen == 0 || !rbac_pat_compile(pattern, strnlen(pattern, 128), &p))
        return 0;
    return rbac_pat_match(&p, ns, nslen);
}

/* ---- Permissions --------------------------------------------------------------------------- */

/* Length of a segment [a-z][a-z0-9-]* at s, stopping at ':' or the end; 0 if malformed. */
static size_t segment_len(const char *s)
{
    size_t n = 0;

    if (!(s[0] >= 'a' && s[0] <= 'z'))
        return 0;
    while (s[n] != '\0' && s[n] != ':') {
        if (!is_label_char((unsigned char)s[n]) || n >= 63)
            return 0;
        n++;
    }
    return n;
}

int rbac_permission_valid(const char *perm, int allow_wildcard)
{
    size_t n;

    if (perm == NULL || strnlen(perm, RBAC_MAX_PERMISSION + 1) > RBAC_MAX_PERMISSION)
        return 0;
    if (strncmp(perm, "k8s:", 4) != 0)
        return 0;
    perm += 4;
    if (strcmp(perm, "*") == 0)
        return allow_wildcard;
    n = segment_len(perm);
    if (n == 0 || perm[n] != ':')
        return 0;
    perm += n + 1;
    if (strcmp(perm, "*") == 0)
        return allow_wildcard;
    n = segment_len(perm);
    return n > 0 && perm[n] == '\0';
}

int rbac_permission_grants(const char *pattern, const char *permission)
{
    size_t plen;

    if (!rbac_permission_valid(pattern, 1) || !rbac_permission_valid(permission, 0))
        return 0;
    if (strcmp(pattern, "k8s:*") == 0)
        return 1;
    plen = strlen(pattern);
    if (pattern[plen - 1] == '*')
        /* "k8s:<resource>:*": the same resource, then any verb (valid by the check above). */
        return strncmp(pattern, permission, plen - 1) == 0;
    return strcmp(pattern, permission) == 0;
}
