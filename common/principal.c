/* Principal lifetime and setters. */
#include "principal.h"

#include <stdlib.h>
#include <string.h>

void bst_principal_init(struct bst_principal *p)
{
    memset(p, 0, sizeof(*p));
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void bst_principal_dispose(struct bst_principal *p)
{
    free(p->name);
    free(p->tenant);
    free_list(p->groups, p->n_groups);
    free_list(p->permissions, p->n_permissions);
    free(p->permissions_issuer);
    free(p->cert_identity);
    memset(p, 0, sizeof(*p));
}

static enum bst_status replace(char **slot, const char *v)
{
    char *copy = NULL;
    if (v != NULL && (copy = strdup(v)) == NULL)
        return BST_RESOURCE_EXHAUSTED;
    free(*slot);
    *slot = copy;
    return BST_OK;
}

static enum bst_status append(char ***v, size_t *n, size_t cap, const char *s)
{
    char **grown;
    char *copy;
    if (*n >= cap)
        return BST_RESOURCE_EXHAUSTED;
    copy = strdup(s);
    grown = copy != NULL ? realloc(*v, (*n + 1) * sizeof(**v)) : NULL;
    if (grown == NULL) {
        free(copy);
        return BST_RESOURCE_EXHAUSTED;
    }
    grown[*n] = copy;
    *v = grown;
    (*n)++;
    return BST_OK;
}

enum bst_status bst_principal_set_name(struct bst_principal *p, const char *name,
                                       enum bst_mechanism mech)
{
    enum bst_status rv = replace(&p->name, name);
    if (rv == BST_OK)
        p->mechanism = mech;
    return rv;
}

enum bst_status bst_principal_set_tenant(struct bst_principal *p, const char *tenant)
{
    return replace(&p->tenant, tenant);
}

enum bst_status bst_principal_add_group(struct bst_principal *p, const char *group)
{
    return append(&p->groups, &p->n_groups, BST_PRINCIPAL_MAX_GROUPS, group);
}

enum bst_status bst_principal_add_permission(struct bst_principal *p, const char *perm)
{
    return append(&p->permissions, &p->n_permissions, BST_PRINCIPAL_MAX_PERMS, perm);
}

const char *bst_mechanism_name(enum bst_mechanism m)
{
    switch (m) {
    case BST_MECH_MTLS:
        return "mtls";
    case BST_MECH_API_KEY:
        return "api_key";
    case BST_MECH_JWT:
        return "jwt";
    case BST_MECH_NONE:
        break;
    }
    return "none";
}
