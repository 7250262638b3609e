/* The reloadable policy holder: the current compiled policy in a refcounted snapshot (common/
 * reload.h), rebuilt from the same file and known list on every reload. A reload that fails
 * leaves the old policy in force; readers holding a policy across a swap keep using it safely
 * until they release it. */
#include "rbac_internal.h"

#include "reload.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct rbac {
    struct bst_snap *snap; /* struct rbac_policy * */
    char *path;
    char **known;
    size_t n_known;
    pthread_mutex_t lock; /* serialises reloads of this holder */
};

static void policy_destroy(void *obj)
{
    rbac_policy_free(obj);
}

static enum bst_status registry_reload(void *ctx, struct bst_err *err)
{
    return rbac_reload(ctx, err);
}

enum bst_status rbac_reload(struct rbac *r, struct bst_err *err)
{
    struct rbac_policy *p = NULL;
    enum bst_status rv;

    pthread_mutex_lock(&r->lock);
    rv = rbac_policy_load(r->path, (const char *const *)r->known, r->n_known, &p, err);
    if (rv == BST_OK)
        bst_snap_swap(r->snap, p);
    pthread_mutex_unlock(&r->lock);
    return rv;
}

enum bst_status rbac_new(struct rbac **out, const char *path, const char *const *known,
                         size_t n_known, struct bst_err *err)
{
    struct rbac *r = calloc(1, sizeof(*r));
    struct rbac_policy *p = NULL;
    enum bst_status rv;

    *out = NULL;
    if (r == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    pthread_mutex_init(&r->lock, NULL);
    if (n_known > RBAC_MAX_KNOWN || (n_known > 0 && known == NULL)) {
        rv = bst_errf(err, BST_INVALID_ARGUMENT, "known permission list: bad size");
        goto fail;
    }
    r->path = strdup(path != NULL ? path : "");
    r->known = calloc(n_known > 0 ? n_known : 1, sizeof(*r->known));
    if (r->path == NULL || r->known == NULL) {
        rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    for (; r->n_known < n_known; r->n_known++) {
        /* A NULL entry is refused by the loader below; keep it NULL here. */
        if (known[r->n_known] != NULL &&
            (r->known[r->n_known] = strdup(known[r->n_known])) == NULL) {
            rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
            goto fail;
        }
    }
    rv = rbac_policy_load(r->path, (const char *const *)r->known, r->n_known, &p, err);
    if (rv != BST_OK)
        goto fail;
    r->snap = bst_snap_new(p, policy_destroy);
    if (r->snap == NULL) {
        rbac_policy_free(p);
        rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    rv = bst_reload_register("rbac", registry_reload, r);
    if (rv != BST_OK) {
        bst_errf(err, rv, "reload registry full");
        goto fail;
    }
    *out = r;
    return BST_OK;
fail:
    rbac_free(r);
    return rv;
}

const struct rbac_policy *rbac_acquire(struct rbac *r)
{
    return bst_snap_get(r->snap);
}

void rbac_release(struct rbac *r, const struct rbac_policy *p)
{
    /* The snapshot API is untyped; the policy is not modified through this pointer. */
    bst_snap_put(r->snap, (void *)(uintptr_t)p);
}

void rbac_free(struct rbac *r)
{
    if (r == NULL)
        return;
    bst_snap_free(r->snap);
    for (size_t i = 0; i < r->n_known; i++)
        free(r->known[i]);
    free(r->known);
    free(r->path);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
