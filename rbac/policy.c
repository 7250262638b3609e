/* Loading and compiling a policy: the strict YAML reader gives a positioned tree; this file
 * checks it against the policy schema (unknown keys, wrong types, unknown permissions and
 * roles, bad namespace patterns, overlapping tenants are all errors with file:line:column) and
 * compiles it into the immutable layout of internal.h: permission bitsets over the caller's
 * known list, compiled namespace patterns, and an index from each subject to what names it, so
 * that a decision touches only what is bound to the principal. */
#include "rbac_internal.h"

#include "strict_yaml.h"

#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- Arena --------------------------------------------------------------------------------- */

#define ARENA_BLOCK (64 * 1024)

struct rbac_arena_block {
    struct rbac_arena_block *next;
    size_t used;
    size_t cap;
    max_align_t data[];
};

void *rbac_arena_alloc(struct rbac_arena *a, size_t size)
{
    struct rbac_arena_block *b = a->head;
    const size_t align = alignof(max_align_t);
    void *mem;

    if (size > SIZE_MAX / 2)
        return NULL;
    size = (size + align - 1) & ~(align - 1);
    if (size == 0)
        size = align;
    if (b == NULL || b->cap - b->used < size) {
        size_t cap = size > ARENA_BLOCK ? size : ARENA_BLOCK;
        b = malloc(sizeof(*b) + cap);
        if (b == NULL)
            return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    mem = (unsigned char *)b->data + b->used;
    b->used += size;
    memset(mem, 0, size);
    return mem;
}

char *rbac_arena_strndup(struct rbac_arena *a, const char *s, size_t len)
{
    char *d = rbac_arena_alloc(a, len + 1);
    if (d != NULL)
        memcpy(d, s, len);
    return d;
}

void rbac_arena_free(struct rbac_arena *a)
{
    while (a->head != NULL) {
        struct rbac_arena_block *b = a->head;
        a->head = b->next;
        free(b);
    }
}

/* ---- Index --------------------------------------------------------------------------------- */

uint64_t rbac_hash(unsigned kind, const char *s, size_t len)
{
    /* FNV-1a. Keys come from the operator's policy; lookups from authenticated principals. */
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    h = (h ^ (unsigned char)kind) * UINT64_C(0x100000001b3);
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * UINT64_C(0x100000001b3);
    return h;
}

const struct rbac_entry *rbac_lookup(const struct rbac_policy *p, unsigned kind, const char *s)
{
    size_t len, mask, i;
    uint64_t h;

    if (s == NULL || p->table_size == 0)
        return NULL;
    len = strlen(s);
    h = rbac_hash(kind, s, len);
    mask = p->table_size - 1;
    for (i = (size_t)h & mask;; i = (i + 1) & mask) {
        const struct rbac_entry *e = &p->table[i];
        if (e->kind == 0)
            return NULL;
        if (e->hash == h && e->kind == kind && e->len == len && memcmp(e->key, s, len) == 0)
            return e;
    }
}

static int strp_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

long rbac_perm_index(const struct rbac_policy *p, const char *permission)
{
    const char **hit;

    if (permission == NULL || p->n_known == 0)
        return -1;
    hit = bsearch(&permission, p->known, p->n_known, sizeof(*p->known), strp_cmp);
    return hit != NULL ? (long)(hit - p->known) : -1;
}

/* ---- Loader -------------------------------------------------------------------------------- */

struct named {
    const char *name;
    uint32_t idx;
    const struct bst_yaml_node *node;
};

struct loader {
    const struct bst_yaml_doc *doc;
    struct rbac_policy *p;
    struct bst_err *err;
    struct named *role_names; /* sorted by name, for bindings */
    size_t n_role_names;
};

static enum bst_status errat(struct loader *ld, enum bst_status code, const struct bst_yaml_node *n,
                             const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum bst_status errat(struct loader *ld, enum bst_status code, const struct bst_yaml_node *n,
                             const char *fmt, ...)
{
    char msg[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return bst_yaml_errf(ld->err, code, ld->doc, n, "%s", msg);
}

static enum bst_status oom(struct loader *ld)
{
    return bst_errf(ld->err, BST_RESOURCE_EXHAUSTED, "%s: out of memory", ld->doc->name);
}

/* Copies policy text into buf for a message: printable ASCII only, at most 64 bytes. */
static const char *show(const char *s, size_t len, char buf[72])
{
    size_t n = len < 64 ? len : 64;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (len > 64) {
        memcpy(buf + 64, "...", 4);
        return buf;
    }
    buf[n] = '\0';
    return buf;
}

static const char *kind_word(const struct bst_yaml_node *n)
{
    switch (n->kind) {
    case BST_YAML_MAP:
        return "a mapping";
    case BST_YAML_SEQ:
        return "a list";
    default:
        return "a scalar";
    }
}

static enum bst_status need_map(struct loader *ld, const struct bst_yaml_node *n, const char *what)
{
    if (n->kind != BST_YAML_MAP)
        return errat(ld, BST_INVALID_ARGUMENT, n, "%s must be a mapping, got %s", what,
                     kind_word(n));
    return BST_OK;
}

/* Refuses any key of map not in allowed (NULL-terminated), at the key's position. */
static enum bst_status check_keys(struct loader *ld, const struct bst_yaml_node *map,
                                  const char *const *allowed, const char *what)
{
    for (size_t i = 0; i < map->n; i++) {
        const struct bst_yaml_node *k = map->keys[i];
        char list[160] = "", buf[72];
        size_t used = 0;
        int ok = 0;

        for (size_t j = 0; allowed[j] != NULL; j++)
            if (strcmp(k->value, allowed[j]) == 0)
                ok = 1;
        if (ok)
            continue;
        for (size_t j = 0; allowed[j] != NULL && used < sizeof(list); j++) {
            int w =
                snprintf(list + used, sizeof(list) - used, "%s%s", j > 0 ? ", " : "", allowed[j]);
            if (w < 0)
                break;
            used += (size_t)w;
        }
        return errat(ld, BST_INVALID_ARGUMENT, k, "unknown key '%s' in %s (expected one of: %s)",
                     show(k->value, k->len, buf), what, list);
    }
    return BST_OK;
}

/* Finds key in map and checks it is a non-empty list of at most max entries. *out is NULL
 * when the key is absent (an error if required). */
static enum bst_status get_list(struct loader *ld, const struct bst_yaml_node *map, const char *key,
                                const char *what, int required, size_t max,
                                const struct bst_yaml_node **out)
{
    const struct bst_yaml_node *n = bst_yaml_get(map, key);

    *out = NULL;
    if (n == NULL) {
        if (required)
            return errat(ld, BST_INVALID_ARGUMENT, map, "%s has no '%s' list", what, key);
        return BST_OK;
    }
    if (n->kind != BST_YAML_SEQ)
        return errat(ld, BST_INVALID_ARGUMENT, n, "'%s' of %s must be a list, got %s", key, what,
                     kind_word(n));
    if (n->n == 0)
        return errat(ld, BST_INVALID_ARGUMENT, n,
                     "'%s' of %s is an empty list; list at least one entry%s", key, what,
                     strcmp(key, "namespaces") == 0 ? " (omit the key for no namespace restriction)"
                                                    : "");
    if (n->n > max)
        return errat(ld, BST_RESOURCE_EXHAUSTED, n, "'%s' of %s has %zu entries (at most %zu)", key,
                     what, n->n, max);
    *out = n;
    return BST_OK;
}

static int name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

/* Reads the required `name` of an entry: 1 to 63 of [A-Za-z0-9._-], starting alphanumeric, so
 * it can appear in rule strings and logs as it is. */
static enum bst_status get_name(struct loader *ld, const struct bst_yaml_node *map,
                                const char *what, const char **out)
{
    const struct bst_yaml_node *n = bst_yaml_get(map, "name");
    const char *s;
    char buf[72];
    enum bst_status rv;

    if (n == NULL)
        return errat(ld, BST_INVALID_ARGUMENT, map, "%s has no 'name'", what);
    rv = bst_yaml_str(ld->doc, n, 0, &s, ld->err);
    if (rv != BST_OK)
        return rv;
    if (n->len > RBAC_MAX_NAME || !name_char((unsigned char)s[0]) || s[0] == '-' || s[0] == '_' ||
        s[0] == '.')
        goto bad;
    for (size_t i = 0; i < n->len; i++)
        if (!name_char((unsigned char)s[i]))
            goto bad;
    *out = rbac_arena_strndup(&ld->p->arena, s, n->len);
    return *out != NULL ? BST_OK : oom(ld);
bad:
    return errat(ld, BST_INVALID_ARGUMENT, n,
                 "%s name '%s' must be 1 to %d of A-Z a-z 0-9 . _ -, starting with a letter or "
                 "digit",
                 what, show(s, n->len, buf), RBAC_MAX_NAME);
}

static enum bst_status get_description(struct loader *ld, const struct bst_yaml_node *map,
                                       const char **out)
{
    const struct bst_yaml_node *n = bst_yaml_get(map, "description");
    const char *s;
    enum bst_status rv;

    *out = "";
    if (n == NULL)
        return BST_OK;
    rv = bst_yaml_str(ld->doc, n, 1, &s, ld->err);
    if (rv != BST_OK)
        return rv;
    if (n->len > 1024)
        return errat(ld, BST_INVALID_ARGUMENT, n, "description longer than 1024 bytes");
    *out = rbac_arena_strndup(&ld->p->arena, s, n->len);
    return *out != NULL ? BST_OK : oom(ld);
}

/* Explains why a permission entry is malformed, or returns NULL if it follows the grammar. */
static const char *perm_grammar_error(const char *s)
{
    const char *star = strchr(s, '*');

    if (rbac_permission_valid(s, 1))
        return NULL;
    if (star != NULL)
        return "'*' may stand only as a whole last segment (k8s:pods:*, k8s:*)";
    if (strncmp(s, "k8s:", 4) != 0)
        return "a permission has the form k8s:<resource>:<verb>";
    return "a permission has the form k8s:<resource>:<verb>, each segment of a-z 0-9 -, "
           "starting with a letter";
}

/* Compiles a list of permission entries into a bitset over the known list. */
static enum bst_status get_perms(struct loader *ld, const struct bst_yaml_node *seq,
                                 const char *what, const uint64_t **bits_out,
                                 const struct rbac_permref **src_out, size_t *n_src_out)
{
    struct rbac_policy *p = ld->p;
    uint64_t *bits = rbac_arena_alloc(&p->arena, (p->words > 0 ? p->words : 1) * sizeof(*bits));
    struct rbac_permref *src = rbac_arena_alloc(&p->arena, seq->n * sizeof(*src));
    char buf[72];

    if (bits == NULL || src == NULL)
        return oom(ld);
    for (size_t i = 0; i < seq->n; i++) {
        const struct bst_yaml_node *n = seq->items[i];
        const char *s, *why;
        enum bst_status rv = bst_yaml_str(ld->doc, n, 0, &s, ld->err);
        size_t len;
        long idx;
        int hits = 0;

        if (rv != BST_OK)
            return rv;
        if ((why = perm_grammar_error(s)) != NULL)
            return errat(ld, BST_INVALID_ARGUMENT, n, "%s: '%s' is not a permission: %s", what,
                         show(s, n->len, buf), why);
        len = n->len;
        if (strcmp(s, "k8s:*") == 0) {
            for (size_t k = 0; k < p->n_known; k++)
                bits[k / 64] |= UINT64_C(1) << (k % 64);
        } else if (s[len - 1] == '*') {
            for (size_t k = 0; k < p->n_known; k++)
                if (strncmp(p->known[k], s, len - 1) == 0) {
                    bits[k / 64] |= UINT64_C(1) << (k % 64);
                    hits++;
                }
            if (hits == 0)
                return errat(ld, BST_INVALID_ARGUMENT, n,
                             "%s: '%s' matches no permission any tool uses", what,
                             show(s, len, buf));
        } else {
            idx = rbac_perm_index(p, s);
            if (idx < 0)
                return errat(ld, BST_INVALID_ARGUMENT, n,
                             "%s: unknown permission '%s' (no tool uses it)", what,
                             show(s, len, buf));
            bits[idx / 64] |= UINT64_C(1) << (idx % 64);
        }
        src[i].text = rbac_arena_strndup(&p->arena, s, len);
        if (src[i].text == NULL)
            return oom(ld);
        src[i].line = n->line;
        src[i].col = n->col;
    }
    *bits_out = bits;
    *src_out = src;
    *n_src_out = seq->n;
    return BST_OK;
}

/* Reads an optional list of namespace patterns. Tenants must name their namespaces: "*" would
 * make a tenant confine nothing and overlap every other tenant. */
static enum bst_status get_patset(struct loader *ld, const struct bst_yaml_node *map,
                                  const char *what, int required, int tenant,
                                  struct rbac_patset *out)
{
    const struct bst_yaml_node *seq;
    struct rbac_pat *v;
    enum bst_status rv;
    char buf[72];

    memset(out, 0, sizeof(*out));
    rv = get_list(ld, map, "namespaces", what, required, RBAC_MAX_LIST, &seq);
    if (rv != BST_OK || seq == NULL)
        return rv;
    v = rbac_arena_alloc(&ld->p->arena, seq->n * sizeof(*v));
    if (v == NULL)
        return oom(ld);
    for (size_t i = 0; i < seq->n; i++) {
        const struct bst_yaml_node *n = seq->items[i];
        const char *s;

        rv = bst_yaml_str(ld->doc, n, 0, &s, ld->err);
        if (rv != BST_OK)
            return rv;
        if (!rbac_pat_compile(s, n->len, &v[i]))
            return errat(ld, BST_INVALID_ARGUMENT, n,
                         "%s: '%s' is not a namespace pattern: use a DNS-1123 label (a-z 0-9 -, "
                         "at most 63, alphanumeric at both ends), '*', or a prefix followed by "
                         "'*' (feature-*)",
                         what, show(s, n->len, buf));
        if (tenant && v[i].kind == RBAC_PAT_ANY)
            return errat(ld, BST_INVALID_ARGUMENT, n,
                         "a tenant cannot hold every namespace ('*'); name its namespaces or a "
                         "prefix");
    }
    out->restricted = 1;
    out->v = v;
    out->n = seq->n;
    return BST_OK;
}

static const char *const subject_keys[] = {"user", "group", "cert", "apikey", NULL};

/* Reads a list of subjects, each a mapping with exactly one of user, group, cert, apikey. */
static enum bst_status get_subjects(struct loader *ld, const struct bst_yaml_node *seq,
                                    const char *what, const struct rbac_subject **out,
                                    size_t *n_out)
{
    struct rbac_subject *v = rbac_arena_alloc(&ld->p->arena, seq->n * sizeof(*v));

    if (v == NULL)
        return oom(ld);
    for (size_t i = 0; i < seq->n; i++) {
        const struct bst_yaml_node *m = seq->items[i], *val;
        const char *s;
        enum bst_status rv;
        unsigned kind = 0;

        if (m->kind != BST_YAML_MAP || m->n != 1)
            return errat(ld, BST_INVALID_ARGUMENT, m,
                         "%s: a subject is a mapping with exactly one of user, group, cert, "
                         "apikey (e.g. {cert: \"spiffe://example/user/a\"})",
                         what);
        rv = check_keys(ld, m, subject_keys, "a subject");
        if (rv != BST_OK)
            return rv;
        for (unsigned k = 0; subject_keys[k] != NULL; k++)
            if (strcmp(m->keys[0]->value, subject_keys[k]) == 0)
                kind = RBAC_SUBJ_USER + k;
        val = m->items[0];
        rv = bst_yaml_str(ld->doc, val, 0, &s, ld->err);
        if (rv != BST_OK)
            return rv;
        if (val->len > RBAC_MAX_SUBJECT)
            return errat(ld, BST_INVALID_ARGUMENT, val, "%s: subject longer than %d bytes", what,
                         RBAC_MAX_SUBJECT);
        /* An API key's id is at most 32 characters (struct bst_principal): a longer one could
         * never match, which would be a binding that silently grants nothing. */
        if (kind == RBAC_SUBJ_APIKEY && val->len > 32)
            return errat(ld, BST_INVALID_ARGUMENT, val,
                         "%s: an API key id is at most 32 characters", what);
        for (size_t c = 0; c < val->len; c++)
            if ((unsigned char)s[c] < 0x20 || s[c] == 0x7f)
                return errat(ld, BST_INVALID_ARGUMENT, val, "%s: control character in a subject",
                             what);
        v[i].kind = (unsigned char)kind;
        v[i].len = val->len;
        v[i].value = rbac_arena_strndup(&ld->p->arena, s, val->len);
        if (v[i].value == NULL)
            return oom(ld);
    }
    *out = v;
    *n_out = seq->n;
    return BST_OK;
}

static int named_cmp(const void *a, const void *b)
{
    const struct named *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Sorts names and refuses the second of any two equal ones, at its position. */
static enum bst_status check_unique(struct loader *ld, struct named *v, size_t n, const char *what)
{
    qsort(v, n, sizeof(*v), named_cmp);
    for (size_t i = 1; i < n; i++)
        if (strcmp(v[i - 1].name, v[i].name) == 0)
            return errat(ld, BST_INVALID_ARGUMENT, v[i].node,
                         "%s '%s' is defined twice (first at line %d)", what, v[i].name,
                         v[i - 1].node->line);
    return BST_OK;
}

/* Finds the top-level list key, which may be absent (an empty list). */
static enum bst_status top_list(struct loader *ld, const char *key, size_t max,
                                const struct bst_yaml_node **out)
{
    const struct bst_yaml_node *n = bst_yaml_get(ld->doc->root, key);

    *out = NULL;
    if (n == NULL)
        return BST_OK;
    if (n->kind != BST_YAML_SEQ)
        return errat(ld, BST_INVALID_ARGUMENT, n, "'%s' must be a list, got %s", key, kind_word(n));
    if (n->n > max)
        return errat(ld, BST_RESOURCE_EXHAUSTED, n, "'%s' has %zu entries (at most %zu)", key, n->n,
                     max);
    *out = n;
    return BST_OK;
}

static const char *const role_keys[] = {"name", "description", "permissions", "namespaces", NULL};

static enum bst_status load_roles(struct loader *ld)
{
    struct rbac_policy *p = ld->p;
    const struct bst_yaml_node *seq, *perms;
    struct rbac_role *roles;
    enum bst_status rv = top_list(ld, "roles", RBAC_MAX_ROLES, &seq);

    if (rv != BST_OK || seq == NULL)
        return rv;
    roles = rbac_arena_alloc(&p->arena, seq->n * sizeof(*roles));
    ld->role_names = calloc(seq->n, sizeof(*ld->role_names));
    if (roles == NULL || ld->role_names == NULL)
        return oom(ld);
    for (size_t i = 0; i < seq->n; i++) {
        const struct bst_yaml_node *m = seq->items[i];
        struct rbac_role *r = &roles[i];

        if ((rv = need_map(ld, m, "a role")) != BST_OK ||
            (rv = check_keys(ld, m, role_keys, "a role")) != BST_OK ||
            (rv = get_name(ld, m, "a role", &r->name)) != BST_OK ||
            (rv = get_description(ld, m, &r->description)) != BST_OK ||
            (rv = get_list(ld, m, "permissions", "a role", 1, RBAC_MAX_LIST, &perms)) != BST_OK ||
            (rv = get_perms(ld, perms, "a role", &r->perms, &r->src, &r->n_src)) != BST_OK ||
            (rv = get_patset(ld, m, "a role", 0, 0, &r->ns)) != BST_OK)
            return rv;
        r->line = m->line;
        r->col = m->col;
        ld->role_names[i].name = r->name;
        ld->role_names[i].idx = (uint32_t)i;
        ld->role_names[i].node = bst_yaml_get(m, "name");
    }
    p->roles = roles;
    p->n_roles = seq->n;
    ld->n_role_names = seq->n;
    return check_unique(ld, ld->role_names, ld->n_role_names, "role");
}

static const char *const binding_keys[] = {"name", "subjects", "roles", "namespaces", NULL};

static enum bst_status load_bindings(struct loader *ld)
{
    struct rbac_policy *p = ld->p;
    const struct bst_yaml_node *seq, *subj, *rl;
    struct rbac_binding *bindings;
    struct named *names = NULL;
    enum bst_status rv = top_list(ld, "bindings", RBAC_MAX_ROLES, &seq);

    if (rv != BST_OK || seq == NULL)
        return rv;
    bindings = rbac_arena_alloc(&p->arena, seq->n * sizeof(*bindings));
    names = calloc(seq->n, sizeof(*names));
    if (bindings == NULL || names == NULL) {
        free(names);
        return oom(ld);
    }
    for (size_t i = 0; i < seq->n; i++) {
        const struct bst_yaml_node *m = seq->items[i];
        struct rbac_binding *b = &bindings[i];
        uint32_t *idx;

        if ((rv = need_map(ld, m, "a binding")) != BST_OK ||
            (rv = check_keys(ld, m, binding_keys, "a binding")) != BST_OK ||
            (rv = get_name(ld, m, "a binding", &b->name)) != BST_OK ||
            (rv = get_list(ld, m, "subjects", "a binding", 1, RBAC_MAX_LIST, &subj)) != BST_OK ||
            (rv = get_subjects(ld, subj, "a binding", &b->subjects, &b->n_subjects)) != BST_OK ||
            (rv = get_list(ld, m, "roles", "a binding", 1, RBAC_MAX_LIST, &rl)) != BST_OK ||
            (rv = get_patset(ld, m, "a binding", 0, 0, &b->ns)) != BST_OK)
            goto out;
        idx = rbac_arena_alloc(&p->arena, rl->n * sizeof(*idx));
        if (idx == NULL) {
            rv = oom(ld);
            goto out;
        }
        for (size_t k = 0; k < rl->n; k++) {
            const struct bst_yaml_node *n = rl->items[k];
            struct named key = {.idx = 0}, *hit;
            char buf[72];

            if ((rv = bst_yaml_str(ld->doc, n, 0, &key.name, ld->err)) != BST_OK)
                goto out;
            /* Any idx sorts after equal names with a smaller one; search by name only. */
            hit = NULL;
            {
                size_t lo = 0, hi = ld->n_role_names;
                while (lo < hi) {
                    size_t mid = lo + (hi - lo) / 2;
                    int c = strcmp(key.name, ld->role_names[mid].name);
                    if (c == 0) {
                        hit = &ld->role_names[mid];
                        break;
                    }
                    if (c < 0)
                        hi = mid;
                    else
                        lo = mid + 1;
                }
            }
            if (hit == NULL) {
                rv = errat(ld, BST_INVALID_ARGUMENT, n, "binding '%s': no role named '%s'", b->name,
                           show(key.name, n->len, buf));
                goto out;
            }
            idx[k] = hit->idx;
        }
        b->roles = idx;
        b->n_roles = rl->n;
        b->line = m->line;
        b->col = m->col;
        names[i].name = b->name;
        names[i].idx = (uint32_t)i;
        names[i].node = bst_yaml_get(m, "name");
    }
    p->bindings = bindings;
    p->n_bindings = seq->n;
    rv = check_unique(ld, names, seq->n, "binding");
out:
    free(names);
    return rv;
}

static const char *const deny_keys[] = {"name",        "description", "subjects",
                                        "permissions", "namespaces",  NULL};

static enum bst_status load_denies(struct loader *ld)
{
    struct rbac_policy *p = ld->p;
    const struct bst_yaml_node *seq, *subj, *perms;
    struct rbac_deny *denies;
    struct named *names;
    enum bst_status rv = top_list(ld, "deny", RBAC_MAX_RULES, &seq);

    if (rv != BST_OK || seq == NULL)
        return rv;
    denies = rbac_arena_alloc(&p->arena, seq->n * sizeof(*denies));
    names = calloc(seq->n, sizeof(*names));
    if (denies == NULL || names == NULL) {
        free(names);
        return oom(ld);
    }
    for (size_t i = 0; i < seq->n; i++) {
        const struct bst_yaml_node *m = seq->items[i];
        struct rbac_deny *d = &denies[i];

        if ((rv = need_map(ld, m, "a deny rule")) != BST_OK ||
            (rv = check_keys(ld, m, deny_keys, "a deny rule")) != BST_OK ||
            (rv = get_name(ld, m, "a deny rule", &d->name)) != BST_OK ||
            (rv = get_description(ld, m, &d->description)) != BST_OK ||
            (rv = get_list(ld, m, "subjects", "a deny rule", 0, RBAC_MAX_LIST, &subj)) != BST_OK ||
            (subj != NULL && (rv = get_subjects(ld, subj, "a deny rule", &d->subjects,
                                                &d->n_subjects)) != BST_OK) ||
            (rv = get_list(ld, m, "permissions", "a deny rule", 1, RBAC_MAX_LIST, &perms)) !=
                BST_OK ||
            (rv = get_perms(ld, perms, "a deny rule", &d->perms, &d->src, &d->n_src)) != BST_OK ||
            (rv = get_patset(ld, m, "a deny rule", 0, 0, &d->ns)) != BST_OK)
            goto out;
        d->line = m->line;
        d->col = m->col;
        names[i].name = d->name;
        names[i].idx = (uint32_t)i;
        names[i].node = bst_yaml_get(m, "name");
    }
    p->denies = denies;
    p->n_denies = seq->n;
    rv = check_unique(ld, names, seq->n, "deny rule");
out:
    free(names);
    return rv;
}

static const char *const tenant_keys[] = {"name", "description", "namespaces", "members", NULL};

/* A tenant pattern with its owner, for the overlap check. */
struct tpat {
    const struct rbac_pat *pat;
    uint32_t tenant;
    const struct bst_yaml_node *node;
};

static int tpat_cmp(const void *a, const void *b)
{
    const struct tpat *x = a, *y = b;
    int c = strcmp(x->pat->text, y->pat->text);
    if (c != 0)
        return c;
    /* A prefix sorts before the exact name it equals, so its forward scan sees it. */
    if (x->pat->kind != y->pat->kind)
        return x->pat->kind == RBAC_PAT_PREFIX ? -1 : 1;
    return x->tenant < y->tenant ? -1 : x->tenant > y->tenant;
}

/* Refuses two tenants that share a namespace: isolation means a namespace belongs to at most
 * one tenant. Sorted, every name a prefix pattern covers follows it contiguously, and after
 * removing exact repeats each name sits under at most 62 shorter prefixes, so this is
 * O(n log n) whatever the input. */
static enum bst_status check_tenant_overlap(struct loader *ld)
{
    const struct rbac_policy *p = ld->p;
    struct tpat *v;
    size_t n = 0, m = 0;
    enum bst_status rv = BST_OK;
    const struct bst_yaml_node *seq = bst_yaml_get(ld->doc->root, "tenants");

    for (size_t t = 0; t < p->n_tenants; t++)
        n += p->tenants[t].ns.n;
    if (n == 0)
        return BST_OK;
    v = calloc(n, sizeof(*v));
    if (v == NULL)
        return oom(ld);
    for (size_t t = 0; t < p->n_tenants; t++) {
        const struct bst_yaml_node *list = bst_yaml_get(seq->items[t], "namespaces");
        for (size_t k = 0; k < p->tenants[t].ns.n; k++) {
            v[m].pat = &p->tenants[t].ns.v[k];
            v[m].tenant = (uint32_t)t;
            v[m].node = list->items[k];
            m++;
        }
    }
    qsort(v, n, sizeof(*v), tpat_cmp);
    /* Drop exact repeats within one tenant. */
    m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || v[m - 1].tenant != v[i].tenant || v[m - 1].pat->kind != v[i].pat->kind ||
            strcmp(v[m - 1].pat->text, v[i].pat->text) != 0)
            v[m++] = v[i];
    for (size_t i = 0; i < m && rv == BST_OK; i++) {
        const struct rbac_pat *a = v[i].pat;
        for (size_t j = i + 1; j < m; j++) {
            const struct rbac_pat *b = v[j].pat;
            int same = a->kind == RBAC_PAT_EXACT
                           ? b->kind == RBAC_PAT_EXACT && strcmp(a->text, b->text) == 0
                           : strncmp(a->text, b->text, a->len) == 0;
            char ta[72], tb[72];
            if (!same)
                break;
            if (v[j].tenant == v[i].tenant)
                continue;
            rbac_pat_text(a, ta, sizeof(ta));
            rbac_pat_text(b, tb, sizeof(tb));
            rv = errat(ld, BST_INVALID_ARGUMENT, v[j].node,
                       "tenants '%s' and '%s' overlap ('%s' and '%s'): a namespace may belong "
                       "to one tenant only",
                       p->tenants[v[i].tenant].name, p->tenants[v[j].tenant].name, ta, tb);
            break;
        }
    }
    free(v);
    return rv;
}

static enum bst_status load_tenants(struct loader *ld)
{
    struct rbac_policy *p = ld->p;
    const struct bst_yaml_node *seq, *mem;
    struct rbac_tenant *tenants;
    struct named *names;
    enum bst_status rv = top_list(ld, "tenants", RBAC_MAX_RULES, &seq);

    if (rv != BST_OK || seq == NULL)
        return rv;
    tenants = rbac_arena_alloc(&p->arena, seq->n * sizeof(*tenants));
    names = calloc(seq->n, sizeof(*names));
    if (tenants == NULL || names == NULL) {
        free(names);
        return oom(ld);
    }
    for (size_t i = 0; i < seq->n; i++) {
        const struct bst_yaml_node *m = seq->items[i];
        struct rbac_tenant *t = &tenants[i];

        if ((rv = need_map(ld, m, "a tenant")) != BST_OK ||
            (rv = check_keys(ld, m, tenant_keys, "a tenant")) != BST_OK ||
            (rv = get_name(ld, m, "a tenant", &t->name)) != BST_OK ||
            (rv = get_description(ld, m, &t->description)) != BST_OK ||
            (rv = get_patset(ld, m, "a tenant", 1, 1, &t->ns)) != BST_OK ||
            (rv = get_list(ld, m, "members", "a tenant", 0, RBAC_MAX_LIST, &mem)) != BST_OK ||
            (mem != NULL &&
             (rv = get_subjects(ld, mem, "a tenant", &t->members, &t->n_members)) != BST_OK))
            goto out;
        t->line = m->line;
        t->col = m->col;
        names[i].name = t->name;
        names[i].idx = (uint32_t)i;
        names[i].node = bst_yaml_get(m, "name");
    }
    p->tenants = tenants;
    p->n_tenants = seq->n;
    rv = check_unique(ld, names, seq->n, "tenant");
    if (rv == BST_OK)
        rv = check_tenant_overlap(ld);
out:
    free(names);
    return rv;
}

/* ---- Index build --------------------------------------------------------------------------- */

enum { REF_BINDING, REF_DENY, REF_MEMBER, REF_TENANT };

struct ref {
    unsigned char kind;
    unsigned char what;
    uint32_t idx;
    const char *value;
    size_t len;
};

static int ref_key_cmp(const struct ref *x, const struct ref *y)
{
    int c;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    c = memcmp(x->value, y->value, x->len);
    return c;
}

static int ref_cmp(const void *a, const void *b)
{
    const struct ref *x = a, *y = b;
    int c = ref_key_cmp(x, y);
    if (c != 0)
        return c;
    if (x->what != y->what)
        return x->what < y->what ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static void add_refs(struct ref *v, size_t *n, const struct rbac_subject *s, size_t ns,
                     unsigned what, size_t idx)
{
    for (size_t i = 0; i < ns; i++) {
        v[*n].kind = s[i].kind;
        v[*n].what = (unsigned char)what;
        v[*n].idx = (uint32_t)idx;
        v[*n].value = s[i].value;
        v[*n].len = s[i].len;
        (*n)++;
    }
}

static enum bst_status build_index(struct loader *ld)
{
    struct rbac_policy *p = ld->p;
    struct rbac_entry *table;
    struct ref *v;
    size_t n = 0, cap = p->n_tenants, distinct = 0, size = 16;
    uint32_t **gd;
    size_t *ngd;

    for (size_t i = 0; i < p->n_bindings; i++)
        cap += p->bindings[i].n_subjects;
    for (size_t i = 0; i < p->n_denies; i++)
        cap += p->denies[i].n_subjects;
    for (size_t i = 0; i < p->n_tenants; i++)
        cap += p->tenants[i].n_members;
    v = calloc(cap > 0 ? cap : 1, sizeof(*v));
    if (v == NULL)
        return oom(ld);
    for (size_t i = 0; i < p->n_bindings; i++)
        add_refs(v, &n, p->bindings[i].subjects, p->bindings[i].n_subjects, REF_BINDING, i);
    for (size_t i = 0; i < p->n_denies; i++)
        add_refs(v, &n, p->denies[i].subjects, p->denies[i].n_subjects, REF_DENY, i);
    for (size_t i = 0; i < p->n_tenants; i++) {
        struct rbac_subject self = {RBAC_SUBJ_TENANT, p->tenants[i].name,
                                    strlen(p->tenants[i].name)};
        add_refs(v, &n, p->tenants[i].members, p->tenants[i].n_members, REF_MEMBER, i);
        add_refs(v, &n, &self, 1, REF_TENANT, i);
    }
    qsort(v, n, sizeof(*v), ref_cmp);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || ref_key_cmp(&v[i - 1], &v[i]) != 0)
            distinct++;
    while (size < 2 * distinct)
        size *= 2;
    table = rbac_arena_alloc(&p->arena, size * sizeof(*table));
    if (table == NULL)
        goto nomem;
    for (size_t i = 0; i < n;) {
        size_t j = i, counts[4] = {0, 0, 0, 0}, slot;
        uint32_t *lists[3];
        struct rbac_entry e;

        while (j < n && ref_key_cmp(&v[i], &v[j]) == 0)
            counts[v[j++].what]++;
        memset(&e, 0, sizeof(e));
        e.kind = v[i].kind;
        e.key = v[i].value;
        e.len = v[i].len;
        e.hash = rbac_hash(e.kind, e.key, e.len);
        e.tenant_def = -1;
        for (int w = 0; w < 3; w++) {
            lists[w] =
                counts[w] > 0 ? rbac_arena_alloc(&p->arena, counts[w] * sizeof(uint32_t)) : NULL;
            if (counts[w] > 0 && lists[w] == NULL)
                goto nomem;
            counts[w] = 0;
        }
        for (size_t k = i; k < j; k++) {
            if (v[k].what == REF_TENANT)
                e.tenant_def = (int32_t)v[k].idx;
            else
                lists[v[k].what][counts[v[k].what]++] = v[k].idx;
        }
        e.bindings = lists[REF_BINDING];
        e.n_bindings = counts[REF_BINDING];
        e.denies = lists[REF_DENY];
        e.n_denies = counts[REF_DENY];
        e.tenants = lists[REF_MEMBER];
        e.n_tenants = counts[REF_MEMBER];
        for (slot = (size_t)e.hash & (size - 1); table[slot].kind != 0;
             slot = (slot + 1) & (size - 1))
            ;
        table[slot] = e;
        i = j;
    }
    p->table = table;
    p->table_size = size;
    free(v);

    /* Deny rules without subjects apply to everyone: index them by permission instead. */
    gd = rbac_arena_alloc(&p->arena, (p->n_known > 0 ? p->n_known : 1) * sizeof(*gd));
    ngd = rbac_arena_alloc(&p->arena, (p->n_known > 0 ? p->n_known : 1) * sizeof(*ngd));
    if (gd == NULL || ngd == NULL)
        return oom(ld);
    for (size_t k = 0; k < p->n_known; k++) {
        size_t c = 0;
        for (size_t d = 0; d < p->n_denies; d++)
            if (p->denies[d].n_subjects == 0 && rbac_bit(p->denies[d].perms, k))
                c++;
        if (c == 0)
            continue;
        gd[k] = rbac_arena_alloc(&p->arena, c * sizeof(**gd));
        if (gd[k] == NULL)
            return oom(ld);
        for (size_t d = 0; d < p->n_denies; d++)
            if (p->denies[d].n_subjects == 0 && rbac_bit(p->denies[d].perms, k))
                gd[k][ngd[k]++] = (uint32_t)d;
    }
    p->global_denies = (const uint32_t *const *)gd;
    p->n_global_denies = ngd;
    return BST_OK;
nomem:
    free(v);
    return oom(ld);
}

/* ---- Entry points -------------------------------------------------------------------------- */

static enum bst_status set_known(struct rbac_policy *p, const char *const *known, size_t n,
                                 struct bst_err *err)
{
    const char **v;
    size_t m = 0;

    if (n > RBAC_MAX_KNOWN)
        return bst_errf(err, BST_INVALID_ARGUMENT,
                        "known permission list: %zu entries (at most %d)", n, RBAC_MAX_KNOWN);
    if (n > 0 && known == NULL)
        return bst_errf(err, BST_INVALID_ARGUMENT, "known permission list: NULL");
    v = rbac_arena_alloc(&p->arena, (n > 0 ? n : 1) * sizeof(*v));
    if (v == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char buf[72];
        if (!rbac_permission_valid(known[i], 0))
            return bst_errf(
                err, BST_INVALID_ARGUMENT,
                "known permission list: entry %zu ('%s') is not k8s:<resource>:<verb>", i,
                known[i] != NULL ? show(known[i], strnlen(known[i], 65), buf) : "(null)");
        v[i] = rbac_arena_strndup(&p->arena, known[i], strlen(known[i]));
        if (v[i] == NULL)
            return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    }
    /* Several tools share a permission (list/create/delete_secret): repeats are dropped. */
    qsort(v, n, sizeof(*v), strp_cmp);
    for (size_t i = 0; i < n; i++)
        if (m == 0 || strcmp(v[m - 1], v[i]) != 0)
            v[m++] = v[i];
    n = m;
    p->known = v;
    p->n_known = n;
    p->words = (n + 63) / 64;
    return BST_OK;
}

static const char *const top_keys[] = {"roles", "bindings", "tenants", "deny", NULL};

static enum bst_status compile(const struct bst_yaml_doc *doc, const char *const *known,
                               size_t n_known, struct rbac_policy **out, struct bst_err *err)
{
    struct rbac_policy *p = calloc(1, sizeof(*p));
    struct loader ld = {.doc = doc, .p = p, .err = err};
    enum bst_status rv;

    if (p == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    p->name = rbac_arena_strndup(&p->arena, doc->name, strlen(doc->name));
    if (p->name == NULL) {
        rv = oom(&ld);
        goto fail;
    }
    if ((rv = set_known(p, known, n_known, err)) != BST_OK)
        goto fail;
    if ((rv = need_map(&ld, doc->root, "the policy")) != BST_OK ||
        (rv = check_keys(&ld, doc->root, top_keys, "the policy")) != BST_OK ||
        (rv = load_roles(&ld)) != BST_OK || (rv = load_bindings(&ld)) != BST_OK ||
        (rv = load_denies(&ld)) != BST_OK || (rv = load_tenants(&ld)) != BST_OK ||
        (rv = build_index(&ld)) != BST_OK)
        goto fail;
    free(ld.role_names);
    *out = p;
    return BST_OK;
fail:
    free(ld.role_names);
    rbac_policy_free(p);
    return rv;
}

enum bst_status rbac_policy_parse(const char *name, const char *buf, size_t len,
                                  const char *const *known, size_t n_known,
                                  struct rbac_policy **out, struct bst_err *err)
{
    struct bst_yaml_doc *doc = NULL;
    enum bst_status rv;

    *out = NULL;
    rv = bst_yaml_parse(name, buf, len, NULL, &doc, err);
    if (rv != BST_OK)
        return rv;
    rv = compile(doc, known, n_known, out, err);
    bst_yaml_free(doc);
    return rv;
}

enum bst_status rbac_policy_load(const char *path, const char *const *known, size_t n_known,
                                 struct rbac_policy **out, struct bst_err *err)
{
    struct bst_yaml_doc *doc = NULL;
    enum bst_status rv;

    *out = NULL;
    rv = bst_yaml_load_file(path, NULL, &doc, err);
    if (rv != BST_OK)
        return rv;
    rv = compile(doc, known, n_known, out, err);
    bst_yaml_free(doc);
    return rv;
}

void rbac_policy_free(struct rbac_policy *p)
{
    if (p == NULL)
        return;
    rbac_arena_free(&p->arena);
    free(p);
}

void rbac_policy_stats(const struct rbac_policy *p, size_t *roles, size_t *bindings, size_t *denies,
                       size_t *tenants)
{
    if (roles != NULL)
        *roles = p->n_roles;
    if (bindings != NULL)
        *bindings = p->n_bindings;
    if (denies != NULL)
        *denies = p->n_denies;
    if (tenants != NULL)
        *tenants = p->n_tenants;
}
