/* The compiled policy's layout, shared by the loader (policy.c), the decision path (decide.c)
 * and explain/lint (explain.c). Nothing here is public: callers see struct rbac_policy only as
 * an opaque handle. Everything a policy owns lives in its arena and is freed at once. */
#ifndef BASTION_RBAC_INTERNAL_H
#define BASTION_RBAC_INTERNAL_H

#include "rbac.h"

#include <stddef.h>
#include <stdint.h>

/* ---- Arena --------------------------------------------------------------------------------- */

struct rbac_arena_block;

struct rbac_arena {
    struct rbac_arena_block *head;
};

/* Returns size zeroed bytes aligned for any scalar, or NULL when out of memory. */
void *rbac_arena_alloc(struct rbac_arena *a, size_t size);
char *rbac_arena_strndup(struct rbac_arena *a, const char *s, size_t len);
void rbac_arena_free(struct rbac_arena *a);

/* ---- Matching primitives (match.c) --------------------------------------------------------- */

enum rbac_pat_kind { RBAC_PAT_EXACT = 1, RBAC_PAT_PREFIX, RBAC_PAT_ANY };

/* A compiled namespace pattern: EXACT text, PREFIX text followed by "*", or ANY ("*"). */
struct rbac_pat {
    unsigned char kind;
    unsigned char len; /* of text, at most 63 */
    char text[64];     /* NUL-terminated; the source spelling is text plus "*" for PREFIX */
};

/* Compiles pattern into *out. Returns 1, or 0 if it is not a valid pattern. */
int rbac_pat_compile(const char *pattern, size_t len, struct rbac_pat *out);

/* Matches a namespace that the caller has already validated as a DNS-1123 label. */
int rbac_pat_match(const struct rbac_pat *p, const char *ns, size_t nslen);

/* Returns 1 if some DNS-1123 label matches both patterns (conservative: when in doubt, 1). */
int rbac_pat_overlap(const struct rbac_pat *a, const struct rbac_pat *b);

/* Writes the pattern's source spelling into buf. */
void rbac_pat_text(const struct rbac_pat *p, char *buf, size_t size);

/* Length of the valid namespace ns, or 0 if ns is not a DNS-1123 label. */
size_t rbac_ns_len(const char *ns);

/* ---- Policy -------------------------------------------------------------------------------- */

enum rbac_subject_kind {
    RBAC_SUBJ_USER = 1, /* principal->name */
    RBAC_SUBJ_GROUP,    /* any of principal->groups */
    RBAC_SUBJ_CERT,     /* principal->cert_identity */
    RBAC_SUBJ_APIKEY,   /* principal->credential_id when the mechanism is an API key */
    RBAC_SUBJ_TENANT,   /* index key only: a tenant's name, for principal->tenant */
};

struct rbac_subject {
    unsigned char kind;
    const char *value;
    size_t len;
};

/* A list of namespace patterns. restricted == 0 means the key was absent: every namespace and
 * cluster scope. A present list is never empty (an empty list is a load error). */
struct rbac_patset {
    int restricted;
    const struct rbac_pat *v;
    size_t n;
};

/* A permission entry as written, for lint. */
struct rbac_permref {
    const char *text;
    int line, col;
};

struct rbac_role {
    const char *name;
    const char *description;
    const uint64_t *perms; /* bitset over the sorted known list */
    struct rbac_patset ns;
    const struct rbac_permref *src;
    size_t n_src;
    int line, col;
};

struct rbac_binding {
    const char *name;
    const uint32_t *roles; /* indices into roles, in the order written */
    size_t n_roles;
    struct rbac_patset ns; /* optional narrowing */
    const struct rbac_subject *subjects;
    size_t n_subjects;
    int line, col;
};

struct rbac_deny {
    const char *name;
    const char *description;
    const uint64_t *perms;
    struct rbac_patset ns;               /* unrestricted = everywhere */
    const struct rbac_subject *subjects; /* none = everyone */
    size_t n_subjects;
    const struct rbac_permref *src;
    size_t n_src;
    int line, col;
};

struct rbac_tenant {
    const char *name;
    const char *description;
    struct rbac_patset ns; /* always restricted */
    const struct rbac_subject *members;
    size_t n_members;
    int line, col;
};

/* The index: one entry per distinct (kind, value) named anywhere in the policy, listing what
 * names it in ascending order. Decisions look up the principal's few identities here. */
struct rbac_entry {
    unsigned char kind; /* 0 = empty slot */
    const char *key;
    size_t len;
    uint64_t hash;
    const uint32_t *bindings;
    size_t n_bindings;
    const uint32_t *denies;
    size_t n_denies;
    const uint32_t *tenants; /* tenants whose members include this subject */
    size_t n_tenants;
    int32_t tenant_def; /* RBAC_SUBJ_TENANT: index of the tenant of that name */
};

struct rbac_policy {
    struct rbac_arena arena;
    const char *name;
    const char **known; /* sorted */
    size_t n_known;
    size_t words; /* uint64_t words per permission bitset */

    const struct rbac_role *roles;
    size_t n_roles;
    const struct rbac_binding *bindings;
    size_t n_bindings;
    const struct rbac_deny *denies;
    size_t n_denies;
    const struct rbac_tenant *tenants;
    size_t n_tenants;

    const struct rbac_entry *table; /* open addressing, size a power of two */
    size_t table_size;
    /* Per known permission: the deny rules without subjects that cover it, ascending. */
    const uint32_t *const *global_denies;
    const size_t *n_global_denies;
};

static inline int rbac_bit(const uint64_t *set, size_t i)
{
    return (int)((set[i / 64] >> (i % 64)) & 1u);
}

uint64_t rbac_hash(unsigned kind, const char *s, size_t len);
const struct rbac_entry *rbac_lookup(const struct rbac_policy *p, unsigned kind, const char *s);

/* Index of permission in the known list, or -1. */
long rbac_perm_index(const struct rbac_policy *p, const char *permission);

/* ---- Decision helpers shared by decide.c and explain.c -------------------------------------- */

/* Whether a role's or binding's namespace list admits ns (NULL = cluster scope). */
int rbac_patset_admits(const struct rbac_patset *s, const char *ns, size_t nslen);
/* Whether a deny rule's list covers ns: NULL (all namespaces) is covered by any list. */
int rbac_patset_covers(const struct rbac_patset *s, const char *ns, size_t nslen);
/* Whether a tenant admits ns: never cluster scope. */
int rbac_tenant_admits(const struct rbac_tenant *t, const char *ns, size_t nslen);

/* Fill out with the verdict, rule and reason of each kind of outcome. ns may be NULL. */
void rbac_out_invalid_request(struct bst_decision *out, const char *what);
void rbac_out_invalid_ns(struct bst_decision *out, const char *ns);
void rbac_out_unknown_perm(struct bst_decision *out, const char *perm);
void rbac_out_too_many_groups(struct bst_decision *out);
void rbac_out_tenant_undefined(struct bst_decision *out, const char *tenant);
void rbac_out_tenant(struct bst_decision *out, const struct rbac_tenant *t, const char *ns);
void rbac_out_deny(struct bst_decision *out, const struct rbac_deny *d, const char *perm,
                   const char *ns);
void rbac_out_role(struct bst_decision *out, const struct rbac_role *r,
                   const struct rbac_binding *b, const char *perm, const char *ns);
void rbac_out_carried(struct bst_decision *out, const char *pattern, enum bst_perm_source src,
                      const char *perm, const char *ns);
void rbac_out_default(struct bst_decision *out, const char *perm, const char *ns);

/* Writes a patset as "a, b-*" into buf (truncated with "..."). */
void rbac_patset_text(const struct rbac_patset *s, char *buf, size_t size);

/* Returns 1 if a subject names the principal. */
int rbac_subject_matches(const struct rbac_subject *s, const struct bst_principal *who);

/* Returns "user", "group", "cert", "apikey". */
const char *rbac_subject_kind_name(unsigned kind);

/* The un-indexed reference decision explain prints: a linear walk over the whole policy that
 * must agree with rbac_decide(). out_file may be NULL (then it only decides). */
enum bst_verdict rbac_walk(const struct rbac_policy *p, const struct bst_principal *who,
                           const char *permission, const char *ns, FILE *out_file,
                           struct bst_decision *out);

#endif
