/* API keys: the keys file (a secret file holding SHA-256 digests, never keys), O(1) lookup by
 * the digest of the presented key with a constant-time final comparison, and the generator
 * behind `bastion keys generate`. Hashing first means the work done for a wrong key does not
 * depend on how many of its leading characters match a real key. */
#include "authn_internal.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEYS 100000
#define MAX_ID 32

static int id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > MAX_ID)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static void key_dispose(struct apikey *k)
{
    free(k->id);
    free(k->identity);
    auth_free_list(k->groups, k->n_groups);
    free(k->tenant);
    auth_free_list(k->permissions, k->n_permissions);
}

void apikey_set_free(struct apikey_set *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        key_dispose(&s->keys[i]);
    free(s->keys);
    free(s->slots);
    free(s->source);
    free(s);
}

static size_t slot_of(const unsigned char d[32], size_t n_slots)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | d[i];
    return (size_t)(v & (n_slots - 1));
}

static enum bst_status decode_time(const struct bst_yaml_doc *doc, const struct bst_yaml_node *n,
                                   const char *key, int64_t *out, struct bst_err *err)
{
    const char *s;
    enum bst_status rv = bst_yaml_str(doc, n, 0, &s, err);
    if (rv != BST_OK)
        return rv;
    if (auth_parse_time(s, out) != 0)
        return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, n,
                             "key '%s': expected a UTC time like \"2026-01-31T00:00:00Z\"", key);
    return BST_OK;
}

static enum bst_status decode_key(const struct bst_yaml_doc *doc, const struct bst_yaml_node *m,
                                  struct apikey *k, struct bst_err *err)
{
    static const char *const names[] = {"id",         "sha256",      "identity", "groups",
                                        "tenant",     "permissions", "enabled",  "not_before",
                                        "expires_at", "description", NULL};
    const struct bst_yaml_node *v;
    const char *s;
    enum bst_status rv;

    k->enabled = 1;
    if ((rv = auth_yaml_only_keys(doc, m, names, err)) != BST_OK)
        return rv;
    if (bst_yaml_get(m, "id") == NULL || bst_yaml_get(m, "sha256") == NULL ||
        bst_yaml_get(m, "identity") == NULL)
        return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, m,
                             "each key needs id, sha256 and identity");
    v = bst_yaml_get(m, "id");
    if ((rv = auth_yaml_strdup(doc, v, "id", MAX_ID, 0, &k->id, err)) != BST_OK)
        return rv;
    if (!id_ok(k->id))
        return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, v,
                             "key 'id': 1-%d characters of [A-Za-z0-9._-]", MAX_ID);
    v = bst_yaml_get(m, "sha256");
    if ((rv = bst_yaml_str(doc, v, 0, &s, err)) != BST_OK)
        return rv;
    if (auth_unhex32(s, k->digest) != 0)
        return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, v,
                             "key 'sha256': 64 hex digits (the SHA-256 of the key, never the key)");
    v = bst_yaml_get(m, "identity");
    if ((rv = auth_yaml_strdup(doc, v, "identity", AUTH_MAX_CLAIM, 0, &k->identity, err)) != BST_OK)
        return rv;
    if ((v = bst_yaml_get(m, "groups")) != NULL &&
        (rv = auth_yaml_str_list(doc, v, "groups", 0, BST_PRINCIPAL_MAX_GROUPS, AUTH_MAX_CLAIM,
                                 &k->groups, &k->n_groups, err)) != BST_OK)
        return rv;
    if ((v = bst_yaml_get(m, "permissions")) != NULL &&
        (rv = auth_yaml_str_list(doc, v, "permissions", 0, BST_PRINCIPAL_MAX_PERMS, AUTH_MAX_CLAIM,
                                 &k->permissions, &k->n_permissions, err)) != BST_OK)
        return rv;
    if ((v = bst_yaml_get(m, "tenant")) != NULL &&
        (rv = auth_yaml_strdup(doc, v, "tenant", AUTH_MAX_CLAIM, 0, &k->tenant, err)) != BST_OK)
        return rv;
    if ((v = bst_yaml_get(m, "enabled")) != NULL &&
        (rv = bst_yaml_bool(doc, v, &k->enabled, err)) != BST_OK)
        return rv;
    if ((v = bst_yaml_get(m, "not_before")) != NULL &&
        (rv = decode_time(doc, v, "not_before", &k->not_before, err)) != BST_OK)
        return rv;
    if ((v = bst_yaml_get(m, "expires_at")) != NULL &&
        (rv = decode_time(doc, v, "expires_at", &k->expires_at, err)) != BST_OK)
        return rv;
    if ((v = bst_yaml_get(m, "description")) != NULL &&
        (rv = bst_yaml_str(doc, v, 1, &s, err)) != BST_OK)
        return rv;
    if (k->not_before != 0 && k->expires_at != 0 && k->expires_at <= k->not_before)
        return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, m,
                             "expires_at must be after not_before");
    return BST_OK;
}

static enum bst_status build(const struct bst_yaml_doc *doc, const char *name,
                             struct apikey_set **out, struct bst_err *err)
{
    struct apikey_set *s = calloc(1, sizeof(*s));
    const struct bst_yaml_node *list;
    enum bst_status rv;

    if (s == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    if ((rv = auth_yaml_only_keys(doc, doc->root, (const char *const[]){"keys", NULL}, err)) !=
        BST_OK)
        goto fail;
    list = bst_yaml_get(doc->root, "keys");
    if (list == NULL || list->kind != BST_YAML_SEQ || list->n > MAX_KEYS) {
        rv = bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, list ? list : doc->root,
                           "key 'keys': expected a list (possibly empty: keys: [])");
        goto fail;
    }
    s->n_slots = 16;
    while (s->n_slots < 2 * list->n)
        s->n_slots *= 2;
    s->keys = calloc(list->n + 1, sizeof(*s->keys));
    s->slots = calloc(s->n_slots, sizeof(*s->slots));
    s->source = strdup(name);
    if (s->keys == NULL || s->slots == NULL || s->source == NULL) {
        rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < list->n; i++) {
        struct apikey *k = &s->keys[i];
        size_t slot;

        s->n = i + 1;
        rv = decode_key(doc, list->items[i], k, err);
        if (rv != BST_OK)
            goto fail;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s->keys[j].id, k->id) == 0) {
                rv = bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, list->items[i],
                                   "id '%s' appears twice", k->id);
                goto fail;
            }
        }
        for (slot = slot_of(k->digest, s->n_slots); s->slots[slot] != 0;
             slot = (slot + 1) & (s->n_slots - 1)) {
            if (memcmp(s->keys[s->slots[slot] - 1].digest, k->digest, 32) == 0) {
                rv = bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, list->items[i],
                                   "key '%s' has the same sha256 as '%s'", k->id,
                                   s->keys[s->slots[slot] - 1].id);
                goto fail;
            }
        }
        s->slots[slot] = (uint32_t)(i + 1);
    }
    *out = s;
    return BST_OK;
fail:
    apikey_set_free(s);
    return rv;
}

enum bst_status apikey_set_parse(const char *name, const char *buf, size_t len,
                                 struct apikey_set **out, struct bst_err *err)
{
    struct bst_yaml_doc *doc = NULL;
    enum bst_status rv = bst_yaml_parse(name, buf, len, NULL, &doc, err);
    *out = NULL;
    if (rv == BST_OK)
        rv = build(doc, name, out, err);
    bst_yaml_free(doc);
    return rv;
}

enum bst_status apikey_set_load(const char *path, struct apikey_set **out, struct bst_err *err)
{
    struct bst_yaml_doc *doc = NULL;
    enum bst_status rv;

    *out = NULL;
    if (path == NULL || path[0] == '\0') {
        *out = calloc(1, sizeof(**out));
        if (*out == NULL)
            return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        return BST_OK;
    }
    rv = bst_yaml_load_secret(path, NULL, &doc, err);
    if (rv == BST_OK)
        rv = build(doc, path, out, err);
    bst_yaml_free(doc);
    return rv;
}

const struct apikey *apikey_find(const struct apikey_set *s, const char *key, size_t len)
{
    unsigned char d[32];
    const struct apikey *found = NULL;

    SHA256((const unsigned char *)key, len, d);
    if (s == NULL || s->n_slots == 0)
        return NULL;
    for (size_t slot = slot_of(d, s->n_slots); s->slots[slot] != 0;
         slot = (slot + 1) & (s->n_slots - 1)) {
        const struct apikey *k = &s->keys[s->slots[slot] - 1];
        if (CRYPTO_memcmp(k->digest, d, 32) == 0) {
            found = k;
            break;
        }
    }
    OPENSSL_cleanse(d, sizeof(d));
    return found;
}

enum bst_status authn_apikey_generate(char *key_out, size_t key_len, char *yaml_entry_out,
                                      size_t yaml_len, const char *id)
{
    unsigned char rnd[32], d[32];
    char hex[65];
    int w;

    if (id == NULL || !id_ok(id))
        return BST_INVALID_ARGUMENT;
    if (key_len < AUTHN_APIKEY_LEN + 1)
        return BST_OUT_OF_RANGE;
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return BST_INTERNAL;
    memcpy(key_out, "bst_", 4);
    auth_b64url_encode(key_out + 4, key_len - 4, rnd, sizeof(rnd));
    OPENSSL_cleanse(rnd, sizeof(rnd));
    SHA256((const unsigned char *)key_out, AUTHN_APIKEY_LEN, d);
    bst_hex_encode(hex, d, sizeof(d));
    w = snprintf(yaml_entry_out, yaml_len,
                 "  - id: %s\n"
                 "    sha256: \"%s\"\n"
                 "    identity: \"CHANGE-ME\"  # who this key authenticates as\n"
                 "    groups: []\n"
                 "    enabled: true\n",
                 id, hex);
    if (w < 0 || (size_t)w >= yaml_len) {
        OPENSSL_cleanse(key_out, key_len);
        return BST_OUT_OF_RANGE;
    }
    return BST_OK;
}
