/* The users file for password login (a secret file): username, scrypt hash string, groups,
 * tenant, enabled. Also the dummy entry that unknown usernames are hashed against, so a login
 * for a name that does not exist costs the same scrypt as one that does. */
#include "authn_internal.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#define MAX_USERS 100000

static void user_dispose(struct user *u)
{
    free(u->name);
    auth_free_list(u->groups, u->n_groups);
    free(u->tenant);
    OPENSSL_cleanse(u->hash, sizeof(u->hash));
    OPENSSL_cleanse(u->salt, sizeof(u->salt));
}

void user_set_free(struct user_set *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        user_dispose(&s->users[i]);
    free(s->users);
    free(s);
}

static int cmp_user(const void *a, const void *b)
{
    return strcmp(((const struct user *)a)->name, ((const struct user *)b)->name);
}

const struct user *user_find(const struct user_set *s, const char *name)
{
    struct user key;
    if (s == NULL || s->n == 0)
        return NULL;
    key.name = (char *)name;
    return bsearch(&key, s->users, s->n, sizeof(*s->users), cmp_user);
}

static enum bst_status decode_user(const struct bst_yaml_doc *doc, const struct bst_yaml_node *m,
                                   uint64_t max_memory, struct user *u, struct bst_err *err)
{
    static const char *const names[] = {"username", "password_hash", "groups",
                                        "tenant",   "enabled",       NULL};
    const struct bst_yaml_node *v;
    const char *s, *why = "";
    enum bst_status rv;

    u->enabled = 1;
    if ((rv = auth_yaml_only_keys(doc, m, names, err)) != BST_OK)
        return rv;
    if ((v = bst_yaml_get(m, "username")) == NULL || bst_yaml_get(m, "password_hash") == NULL)
        return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, m,
                             "each user needs username and password_hash");
    if ((rv = auth_yaml_strdup(doc, v, "username", AUTH_MAX_USERNAME, 0, &u->name, err)) != BST_OK)
        return rv;
    v = bst_yaml_get(m, "password_hash");
    if ((rv = bst_yaml_str(doc, v, 0, &s, err)) != BST_OK)
        return rv;
    if (auth_scrypt_parse(s, &u->sp, u->salt, &u->salt_len, u->hash, &u->hash_len, &why) != 0)
        return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, v, "key 'password_hash': %s", why);
    if (auth_scrypt_memory(&u->sp) > max_memory)
        return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, v,
                             "key 'password_hash': these scrypt parameters need %llu bytes, "
                             "above auth.login.scrypt_max_memory",
                             (unsigned long long)auth_scrypt_memory(&u->sp));
    if ((v = bst_yaml_get(m, "groups")) != NULL &&
        (rv = auth_yaml_str_list(doc, v, "groups", 0, BST_PRINCIPAL_MAX_GROUPS, AUTH_MAX_CLAIM,
                                 &u->groups, &u->n_groups, err)) != BST_OK)
        return rv;
    if ((v = bst_yaml_get(m, "tenant")) != NULL &&
        (rv = auth_yaml_strdup(doc, v, "tenant", AUTH_MAX_CLAIM, 0, &u->tenant, err)) != BST_OK)
        return rv;
    if ((v = bst_yaml_get(m, "enabled")) != NULL &&
        (rv = bst_yaml_bool(doc, v, &u->enabled, err)) != BST_OK)
        return rv;
    return BST_OK;
}

enum bst_status user_set_load(const char *path, uint64_t max_memory, struct user_set **out,
                              struct bst_err *err)
{
    struct user_set *s = calloc(1, sizeof(*s));
    struct bst_yaml_doc *doc = NULL;
    const struct bst_yaml_node *list;
    enum bst_status rv = BST_OK;

    *out = NULL;
    if (s == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    if (path != NULL && path[0] != '\0') {
        rv = bst_yaml_load_secret(path, NULL, &doc, err);
        if (rv != BST_OK)
            goto fail;
        if ((rv = auth_yaml_only_keys(doc, doc->root, (const char *const[]){"users", NULL}, err)) !=
            BST_OK)
            goto fail;
        list = bst_yaml_get(doc->root, "users");
        if (list == NULL || list->kind != BST_YAML_SEQ || list->n > MAX_USERS) {
            rv = bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, list ? list : doc->root,
                               "key 'users': expected a list (possibly empty: users: [])");
            goto fail;
        }
        s->users = calloc(list->n + 1, sizeof(*s->users));
        if (s->users == NULL) {
            rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < list->n; i++) {
            s->n = i + 1;
            rv = decode_user(doc, list->items[i], max_memory, &s->users[i], err);
            if (rv != BST_OK)
                goto fail;
        }
        qsort(s->users, s->n, sizeof(*s->users), cmp_user);
        for (size_t i = 1; i < s->n; i++) {
            if (strcmp(s->users[i - 1].name, s->users[i].name) == 0) {
                rv = bst_errf(err, BST_INVALID_ARGUMENT, "%s: user '%s' appears twice", path,
                              s->users[i].name);
                goto fail;
            }
        }
    }
    /* The dummy costs what a real user costs: the first user's parameters (keep every user on
     * the same parameters; `bastion users hash` always writes the defaults). */
    if (s->n > 0) {
        s->dummy.sp = s->users[0].sp;
    } else {
        s->dummy.sp.n = 1ULL << AUTH_SCRYPT_DEFAULT_LN;
        s->dummy.sp.r = 8;
        s->dummy.sp.p = 1;
        while (auth_scrypt_memory(&s->dummy.sp) > max_memory && s->dummy.sp.n > 1024)
            s->dummy.sp.n >>= 1;
    }
    s->dummy.salt_len = AUTH_SCRYPT_SALT_LEN;
    s->dummy.hash_len = AUTH_SCRYPT_HASH_LEN;
    if (RAND_bytes(s->dummy.salt, (int)s->dummy.salt_len) != 1 ||
        RAND_bytes(s->dummy.hash, (int)s->dummy.hash_len) != 1) {
        rv = bst_errf(err, BST_INTERNAL, "no randomness");
        goto fail;
    }
    bst_yaml_free(doc);
    *out = s;
    return BST_OK;
fail:
    bst_yaml_free(doc);
    user_set_free(s);
    return rv;
}
