/* The optional certificate identity mapping: a certificate identity (the single SAN URI, else
 * the CN, as auth/identity.c extracts it) maps to a principal name, groups and tenant. An
 * identity that is not in the file keeps its certificate identity as its name, with no groups
 * and no tenant. */
#include "authn_internal.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ENTRIES 100000

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct certmap_entry *)a)->identity,
                  ((const struct certmap_entry *)b)->identity);
}

void certmap_free(struct certmap *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->entries[i].identity);
        free(m->entries[i].name);
        auth_free_list(m->entries[i].groups, m->entries[i].n_groups);
        free(m->entries[i].tenant);
    }
    free(m->entries);
    free(m);
}

const struct certmap_entry *certmap_find(const struct certmap *m, const char *identity)
{
    struct certmap_entry key;
    if (m == NULL || m->n == 0 || identity == NULL)
        return NULL;
    key.identity = (char *)identity;
    return bsearch(&key, m->entries, m->n, sizeof(*m->entries), cmp_entry);
}

static enum bst_status decode_entry(const struct bst_yaml_doc *doc, const struct bst_yaml_node *m,
                                    struct certmap_entry *e, struct bst_err *err)
{
    static const char *const names[] = {"certificate", "name", "groups", "tenant", NULL};
    const struct bst_yaml_node *v;
    enum bst_status rv;

    if ((rv = auth_yaml_only_keys(doc, m, names, err)) != BST_OK)
        return rv;
    if ((v = bst_yaml_get(m, "certificate")) == NULL)
        return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, m,
                             "each entry needs certificate (the SAN URI or CN)");
    if ((rv = auth_yaml_strdup(doc, v, "certificate", 1024, 0, &e->identity, err)) != BST_OK)
        return rv;
    v = bst_yaml_get(m, "name");
    rv = v != NULL ? auth_yaml_strdup(doc, v, "name", AUTH_MAX_CLAIM, 0, &e->name, err)
                   : ((e->name = strdup(e->identity)) == NULL ? BST_RESOURCE_EXHAUSTED : BST_OK);
    if (rv != BST_OK)
        return rv;
    if ((v = bst_yaml_get(m, "groups")) != NULL &&
        (rv = auth_yaml_str_list(doc, v, "groups", 0, BST_PRINCIPAL_MAX_GROUPS, AUTH_MAX_CLAIM,
                                 &e->groups, &e->n_groups, err)) != BST_OK)
        return rv;
    if ((v = bst_yaml_get(m, "tenant")) != NULL &&
        (rv = auth_yaml_strdup(doc, v, "tenant", AUTH_MAX_CLAIM, 0, &e->tenant, err)) != BST_OK)
        return rv;
    return BST_OK;
}

enum bst_status certmap_load(const char *path, struct certmap **out, struct bst_err *err)
{
    struct certmap *m = calloc(1, sizeof(*m));
    struct bst_yaml_doc *doc = NULL;
    const struct bst_yaml_node *list;
    enum bst_status rv = BST_OK;

    *out = NULL;
    if (m == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    if (path == NULL || path[0] == '\0') {
        *out = m;
        return BST_OK;
    }
    rv = bst_yaml_load_file(path, NULL, &doc, err);
    if (rv != BST_OK)
        goto fail;
    if ((rv = auth_yaml_only_keys(doc, doc->root, (const char *const[]){"identities", NULL},
                                  err)) != BST_OK)
        goto fail;
    list = bst_yaml_get(doc->root, "identities");
    if (list == NULL || list->kind != BST_YAML_SEQ || list->n > MAX_ENTRIES) {
        rv = bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, list ? list : doc->root,
                           "key 'identities': expected a list");
        goto fail;
    }
    m->entries = calloc(list->n + 1, sizeof(*m->entries));
    if (m->entries == NULL) {
        rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < list->n; i++) {
        m->n = i + 1;
        if ((rv = decode_entry(doc, list->items[i], &m->entries[i], err)) != BST_OK)
            goto fail;
    }
    qsort(m->entries, m->n, sizeof(*m->entries), cmp_entry);
    for (size_t i = 1; i < m->n; i++) {
        if (strcmp(m->entries[i - 1].identity, m->entries[i].identity) == 0) {
            rv = bst_errf(err, BST_INVALID_ARGUMENT, "%s: certificate '%s' appears twice", path,
                          m->entries[i].identity);
            goto fail;
        }
    }
    bst_yaml_free(doc);
    *out = m;
    return BST_OK;
fail:
    bst_yaml_free(doc);
    certmap_free(m);
    return rv;
}
