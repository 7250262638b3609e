/* JWT verification and signing around Debian's libjwt 1.10.2, which on its own trusts the
 * token's `alg` (HS256 signed with an RSA public key PEM verifies), accepts `alg:none` with an
 * empty key, checks neither exp nor nbf and lets duplicate claims override. So this file parses
 * header and payload itself with jansson's JSON_REJECT_DUPLICATES, refuses every header
 * parameter but alg/kid/typ, finds the issuer by exact `iss` and the key by exact `kid` in
 * memory, calls libjwt only when the header's alg equals the key's pinned alg (never with an
 * empty key), re-checks jwt_get_alg() afterwards, and validates every claim from its own parse.
 * libjwt does one thing here: the signature. */
#include "authn_internal.h"
#include "secretfile.h"
#include "text.h"

#include <errno.h>
#include <stdarg.h>
#include <strings.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PEM_BYTES (64 * 1024)
#define MAX_JWKS_BYTES (1024 * 1024)
#define MAX_KEYS_PER_ISSUER 64
#define MAX_ISSUERS 32
#define MAX_CLAIM_TIME (INT64_C(1) << 40) /* beyond year 30000: refused, and no overflow */

static const char *const alg_names[] = {"ES256", "ES384", "ES512", "RS256", "RS384",
                                        "RS512", "HS256", "HS384", "HS512", NULL};
static const jwt_alg_t alg_libjwt[] = {JWT_ALG_ES256, JWT_ALG_ES384, JWT_ALG_ES512,
                                       JWT_ALG_RS256, JWT_ALG_RS384, JWT_ALG_RS512,
                                       JWT_ALG_HS256, JWT_ALG_HS384, JWT_ALG_HS512};

const char *auth_alg_name(int alg)
{
    if (alg < 0 || alg > AUTHN_ALG_HS512)
        return "?";
    return alg_names[alg];
}

static int alg_from_name(const char *s)
{
    for (int i = 0; alg_names[i] != NULL; i++)
        if (strcmp(alg_names[i], s) == 0)
            return i;
    return -1;
}

static int alg_is_hs(int alg)
{
    return alg >= AUTHN_ALG_HS256;
}

static size_t hs_min_len(int alg)
{
    return alg == AUTHN_ALG_HS256 ? 32 : alg == AUTHN_ALG_HS384 ? 48 : 64;
}

static void reasonf(char *reason, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reasonf(char *reason, size_t len, const char *fmt, ...)
{
    va_list ap;
    if (reason == NULL || len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(reason, len, fmt, ap);
    va_end(ap);
}

/* ---- keys ---------------------------------------------------------------------------------- */

static void key_dispose(struct jwt_key *k)
{
    free(k->kid);
    if (k->material != NULL) {
        OPENSSL_cleanse(k->material, k->len);
        free(k->material);
    }
    memset(k, 0, sizeof(*k));
}

/* Checks that pk suits alg: RSA of at least 2048 bits for RS*, the matching curve for ES*. */
static enum bst_status check_pkey(EVP_PKEY *pk, int alg, struct bst_err *err)
{
    char group[64] = "";
    const char *want;

    if (alg >= AUTHN_ALG_RS256 && alg <= AUTHN_ALG_RS512) {
        if (!EVP_PKEY_is_a(pk, "RSA"))
            return bst_errf(err, BST_INVALID_ARGUMENT, "%s needs an RSA key", auth_alg_name(alg));
        if (EVP_PKEY_get_bits(pk) < 2048)
            return bst_errf(err, BST_INVALID_ARGUMENT, "RSA keys must have at least 2048 bits");
        return BST_OK;
    }
    want = alg == AUTHN_ALG_ES256   ? "prime256v1"
           : alg == AUTHN_ALG_ES384 ? "secp384r1"
                                    : "secp521r1";
    if (!EVP_PKEY_is_a(pk, "EC") ||
        EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       NULL) != 1 ||
        strcmp(group, want) != 0)
        return bst_errf(err, BST_INVALID_ARGUMENT, "%s needs an EC key on curve %s",
                        auth_alg_name(alg), want);
    return BST_OK;
}

/* Stores pk's public key as PEM (the form libjwt 1.10.2 verifies with) in k. */
static enum bst_status key_set_public(struct jwt_key *k, EVP_PKEY *pk, struct bst_err *err)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    long n;

    if (bio == NULL || PEM_write_bio_PUBKEY(bio, pk) != 1) {
        BIO_free(bio);
        return bst_errf(err, BST_INTERNAL, "cannot encode a public key");
    }
    n = BIO_get_mem_data(bio, &data);
    k->material = malloc((size_t)n + 1);
    if (k->material == NULL) {
        BIO_free(bio);
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    }
    memcpy(k->material, data, (size_t)n);
    k->material[n] = '\0';
    k->len = (size_t)n;
    BIO_free(bio);
    return BST_OK;
}

static enum bst_status key_start(struct jwt_key *k, const char *kid, int alg, struct bst_err *err)
{
    memset(k, 0, sizeof(*k));
    if (kid == NULL || !auth_printable(kid, strlen(kid), AUTH_MAX_KID))
        return bst_errf(err, BST_INVALID_ARGUMENT, "kid must be 1-%d printable characters",
                        AUTH_MAX_KID);
    if (alg < 0 || alg > AUTHN_ALG_HS512)
        return bst_errf(err, BST_INVALID_ARGUMENT, "unknown algorithm");
    k->kid = strdup(kid);
    if (k->kid == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    k->alg = alg;
    return BST_OK;
}

enum bst_status jwt_key_from_pem(struct jwt_key *k, const char *kid, int alg, const char *pem,
                                 size_t len, struct bst_err *err)
{
    BIO *bio;
    EVP_PKEY *pk;
    enum bst_status rv = key_start(k, kid, alg, err);

    if (rv != BST_OK)
        goto fail;
    if (alg_is_hs(alg)) {
        rv = bst_errf(err, BST_INVALID_ARGUMENT, "%s takes a secret, not a PEM key",
                      auth_alg_name(alg));
        goto fail;
    }
    bio = BIO_new_mem_buf(pem, (int)len);
    pk = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (pk == NULL) {
        rv = bst_errf(err, BST_INVALID_ARGUMENT, "not a PEM public key (BEGIN PUBLIC KEY)");
        goto fail;
    }
    rv = check_pkey(pk, alg, err);
    if (rv == BST_OK)
        rv = key_set_public(k, pk, err);
    EVP_PKEY_free(pk);
    if (rv != BST_OK)
        goto fail;
    return BST_OK;
fail:
    key_dispose(k);
    return rv;
}

enum bst_status jwt_key_from_secret(struct jwt_key *k, const char *kid, int alg,
                                    const unsigned char *secret, size_t len, struct bst_err *err)
{
    enum bst_status rv = key_start(k, kid, alg, err);

    if (rv != BST_OK)
        goto fail;
    if (!alg_is_hs(alg)) {
        rv = bst_errf(err, BST_INVALID_ARGUMENT, "%s takes a PEM key, not a secret",
                      auth_alg_name(alg));
        goto fail;
    }
    /* RFC 7518 3.2: a key at least as long as the hash. This also rules out an empty key, the
     * one libjwt would verify `alg:none` and empty-secret HS256 tokens with. */
    if (len < hs_min_len(alg)) {
        rv = bst_errf(err, BST_INVALID_ARGUMENT, "%s secrets need at least %zu bytes",
                      auth_alg_name(alg), hs_min_len(alg));
        goto fail;
    }
    k->material = malloc(len + 1);
    if (k->material == NULL) {
        rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    memcpy(k->material, secret, len);
    k->material[len] = '\0';
    k->len = len;
    return BST_OK;
fail:
    key_dispose(k);
    return rv;
}

/* Decodes a base64url secret (surrounding whitespace ignored) into a key. */
static enum bst_status key_from_b64_secret(struct jwt_key *k, const char *kid, int alg,
                                           const char *text, size_t len, struct bst_err *err)
{
    unsigned char buf[512];
    size_t n = 0;
    enum bst_status rv;

    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    while (len > 0 && (text[0] == ' ' || text[0] == '\n')) {
        text++;
        len--;
    }
    if (auth_b64url_decode(text, len, buf, sizeof(buf), &n) != 0) {
        memset(k, 0, sizeof(*k));
        return bst_errf(err, BST_INVALID_ARGUMENT,
                        "an HS secret file holds the key in base64url (at most 512 bytes)");
    }
    rv = jwt_key_from_secret(k, kid, alg, buf, n, err);
    OPENSSL_cleanse(buf, sizeof(buf));
    return rv;
}

/* ---- JWKS ---------------------------------------------------------------------------------- */

static BIGNUM *jwk_bn(json_t *o, const char *name)
{
    const char *s = json_string_value(json_object_get(o, name));
    unsigned char buf[1024];
    size_t n;

    if (s == NULL || auth_b64url_decode(s, strlen(s), buf, sizeof(buf), &n) != 0 || n == 0)
        return NULL;
    return BN_bin2bn(buf, (int)n, NULL);
}

static EVP_PKEY *jwk_to_pkey(json_t *o, int alg, const char **why)
{
    const char *kty = json_string_value(json_object_get(o, "kty"));
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pk = NULL;
    BIGNUM *n = NULL, *e = NULL;
    unsigned char point[1 + 2 * 66], x[80], y[80];
    size_t xl, yl, coord;

    *why = "unusable key";
    if (bld == NULL || kty == NULL)
        goto done;
    if (alg >= AUTHN_ALG_RS256 && alg <= AUTHN_ALG_RS512) {
        if (strcmp(kty, "RSA") != 0) {
            *why = "alg RS* needs kty RSA";
            goto done;
        }
        n = jwk_bn(o, "n");
        e = jwk_bn(o, "e");
        if (n == NULL || e == NULL || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e)) {
            *why = "RSA key needs base64url n and e";
            goto done;
        }
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    } else if (alg <= AUTHN_ALG_ES512) {
        const char *crv = json_string_value(json_object_get(o, "crv"));
        const char *want = alg == AUTHN_ALG_ES256   ? "P-256"
                           : alg == AUTHN_ALG_ES384 ? "P-384"
                                                    : "P-521";
        const char *group = alg == AUTHN_ALG_ES256   ? "prime256v1"
                            : alg == AUTHN_ALG_ES384 ? "secp384r1"
                                                     : "secp521r1";
        const char *xs = json_string_value(json_object_get(o, "x"));
        const char *ys = json_string_value(json_object_get(o, "y"));
        coord = alg == AUTHN_ALG_ES256 ? 32 : alg == AUTHN_ALG_ES384 ? 48 : 66;
        if (strcmp(kty, "EC") != 0 || crv == NULL || strcmp(crv, want) != 0) {
            *why = "alg ES* needs kty EC and the matching crv";
            goto done;
        }
        if (xs == NULL || ys == NULL || auth_b64url_decode(xs, strlen(xs), x, sizeof(x), &xl) ||
            auth_b64url_decode(ys, strlen(ys), y, sizeof(y), &yl) || xl != coord || yl != coord) {
            *why = "EC key needs base64url x and y of the curve's size";
            goto done;
        }
        point[0] = 4;
        memcpy(point + 1, x, coord);
        memcpy(point + 1 + coord, y, coord);
        if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
            !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * coord))
            goto done;
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    } else {
        *why = "symmetric (oct) keys belong in a secret key file, not a JWKS";
        goto done;
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    if (ctx == NULL || params == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        *why = "the key parameters do not form a valid public key";
        pk = NULL;
    }
done:
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    BN_free(n);
    BN_free(e);
    return pk;
}

/* Appends the keys of a JWKS file to *keys. Every key needs kid and alg (keys pin their
 * algorithm); `use`, when present, must be "sig". */
static enum bst_status jwks_load(const char *path, struct jwt_key **keys, size_t *n_keys,
                                 struct bst_err *err)
{
    static const char *const allowed[] = {"kty", "kid", "alg", "use",     "n", "e",
                                          "crv", "x",   "y",   "key_ops", NULL};
    char *buf = NULL;
    size_t len = 0;
    json_error_t je;
    json_t *root = NULL, *arr;
    enum bst_status rv = bst_file_read(path, MAX_JWKS_BYTES, &buf, &len, err);

    if (rv != BST_OK)
        return rv;
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    free(buf);
    if (root == NULL) {
        rv = bst_errf(err, BST_INVALID_ARGUMENT, "%s:%d:%d: %s", path, je.line, je.column, je.text);
        goto done;
    }
    arr = json_object_get(root, "keys");
    if (!json_is_object(root) || !json_is_array(arr) || json_object_size(root) != 1) {
        rv = bst_errf(err, BST_INVALID_ARGUMENT, "%s: expected {\"keys\": [...]}", path);
        goto done;
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *o = json_array_get(arr, i);
        const char *kid = json_string_value(json_object_get(o, "kid"));
        const char *algs = json_string_value(json_object_get(o, "alg"));
        const char *use = json_string_value(json_object_get(o, "use"));
        const char *why = NULL, *key;
        json_t *v;
        int alg = algs != NULL ? alg_from_name(algs) : -1;
        EVP_PKEY *pk;
        struct jwt_key *grown;

        if (!json_is_object(o)) {
            rv = bst_errf(err, BST_INVALID_ARGUMENT, "%s: keys[%zu] is not an object", path, i);
            goto done;
        }
        json_object_foreach(o, key, v)
        {
            int ok = 0;
            for (const char *const *a = allowed; *a != NULL; a++)
                ok |= strcmp(*a, key) == 0;
            if (!ok) {
                char shown[64];
                auth_excerpt(shown, sizeof(shown), key, strlen(key));
                rv = bst_errf(err, BST_INVALID_ARGUMENT,
                              "%s: keys[%zu]: member '%s' is not accepted (private keys and "
                              "certificate chains do not belong here)",
                              path, i, shown);
                goto done;
            }
        }
        if (kid == NULL || alg < 0 || (use != NULL && strcmp(use, "sig") != 0)) {
            rv = bst_errf(err, BST_INVALID_ARGUMENT,
                          "%s: keys[%zu] needs kid, an alg among ES/RS/HS 256/384/512, and use "
                          "\"sig\" if use is given",
                          path, i);
            goto done;
        }
        if (*n_keys >= MAX_KEYS_PER_ISSUER) {
            rv = bst_errf(err, BST_INVALID_ARGUMENT, "%s: more than %d keys", path,
                          MAX_KEYS_PER_ISSUER);
            goto done;
        }
        pk = jwk_to_pkey(o, alg, &why);
        if (pk == NULL) {
            rv = bst_errf(err, BST_INVALID_ARGUMENT, "%s: keys[%zu]: %s", path, i, why);
            goto done;
        }
        grown = realloc(*keys, (*n_keys + 1) * sizeof(**keys));
        if (grown == NULL) {
            EVP_PKEY_free(pk);
            rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
            goto done;
        }
        *keys = grown;
        rv = key_start(&grown[*n_keys], kid, alg, err);
        if (rv == BST_OK)
            rv = check_pkey(pk, alg, err);
        if (rv == BST_OK)
            rv = key_set_public(&grown[*n_keys], pk, err);
        EVP_PKEY_free(pk);
        if (rv != BST_OK) {
            key_dispose(&grown[*n_keys]);
            bst_err_prefix(err, "%s: keys[%zu]", path, i);
            goto done;
        }
        (*n_keys)++;
    }
done:
    json_decref(root);
    return rv;
}

/* ---- verified-token cache ------------------------------------------------------------------ */

#define CACHE_SLOTS 1024
#define CACHE_MAX_TOKEN 4096 /* larger tokens are verified every time (bounds the memory) */

struct cache_entry {
    int used;
    unsigned char digest[32];
    int64_t exp_s;
    int64_t leeway_s;
    char jti[AUTH_MAX_KID + 1]; /* "" = none */
    struct bst_principal p;     /* only the fields a token sets */
};

struct jwt_cache {
    pthread_mutex_t lock;
    struct cache_entry e[CACHE_SLOTS];
};

static struct jwt_cache *cache_new(void)
{
    struct jwt_cache *c = calloc(1, sizeof(*c));
    if (c != NULL)
        pthread_mutex_init(&c->lock, NULL);
    return c;
}

static void cache_free(struct jwt_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        bst_principal_dispose(&c->e[i].p);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* Copies what a verified token contributes to a principal (not the certificate fields). */
static enum bst_status copy_token_fields(struct bst_principal *dst, const struct bst_principal *src)
{
    if (bst_principal_set_name(dst, src->name, src->mechanism) != BST_OK ||
        bst_principal_set_tenant(dst, src->tenant) != BST_OK)
        return BST_RESOURCE_EXHAUSTED;
    for (size_t i = 0; i < src->n_groups; i++)
        if (bst_principal_add_group(dst, src->groups[i]) != BST_OK)
            return BST_RESOURCE_EXHAUSTED;
    for (size_t i = 0; i < src->n_permissions; i++)
        if (bst_principal_add_permission(dst, src->permissions[i]) != BST_OK)
            return BST_RESOURCE_EXHAUSTED;
    dst->permissions_source = src->permissions_source;
    free(dst->permissions_issuer);
    dst->permissions_issuer = NULL;
    if (src->permissions_issuer != NULL &&
        (dst->permissions_issuer = strdup(src->permissions_issuer)) == NULL)
        return BST_RESOURCE_EXHAUSTED;
    dst->expires_at_ns = src->expires_at_ns;
    return BST_OK;
}

static size_t cache_slot(const unsigned char d[32])
{
    return ((size_t)d[0] << 8 | d[1]) & (CACHE_SLOTS - 1);
}

/* Returns 1 and fills out when digest was verified by this set and is still valid now. */
static int cache_hit(struct jwt_cache *c, const unsigned char d[32],
                     const struct jti_denylist *deny, int64_t now_s, struct bst_principal *out)
{
    struct cache_entry *e = &c->e[cache_slot(d)];
    int hit = 0;

    pthread_mutex_lock(&c->lock);
    if (e->used && CRYPTO_memcmp(e->digest, d, 32) == 0 && now_s < e->exp_s + e->leeway_s &&
        (e->jti[0] == '\0' || !jti_denylist_has(deny, e->jti)))
        hit = copy_token_fields(out, &e->p) == BST_OK;
    pthread_mutex_unlock(&c->lock);
    return hit;
}

static void cache_put(struct jwt_cache *c, const unsigned char d[32], int64_t exp_s,
                      int64_t leeway_s, const char *jti, const struct bst_principal *p)
{
    struct cache_entry *e = &c->e[cache_slot(d)];

    pthread_mutex_lock(&c->lock);
    bst_principal_dispose(&e->p);
    e->used = 0;
    if (copy_token_fields(&e->p, p) == BST_OK) {
        memcpy(e->digest, d, 32);
        e->exp_s = exp_s;
        e->leeway_s = leeway_s;
        snprintf(e->jti, sizeof(e->jti), "%s", jti != NULL ? jti : "");
        e->used = 1;
    } else {
        bst_principal_dispose(&e->p);
    }
    pthread_mutex_unlock(&c->lock);
}

/* ---- issuer set ---------------------------------------------------------------------------- */

static void issuer_dispose(struct jwt_issuer *is)
{
    free(is->name);
    auth_free_list(is->audiences, is->n_audiences);
    for (size_t i = 0; i < is->n_keys; i++)
        key_dispose(&is->keys[i]);
    free(is->keys);
    free(is->identity_claim);
    free(is->identity_prefix);
    free(is->groups_claim);
    free(is->tenant_claim);
    free(is->permissions_claim);
    memset(is, 0, sizeof(*is));
}

void jwt_set_free(struct jwt_set *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_issuers; i++)
        issuer_dispose(&s->issuers[i]);
    free(s->issuers);
    if (s->sign_key != NULL) {
        OPENSSL_cleanse(s->sign_key, s->sign_len);
        free(s->sign_key);
    }
    free(s->sign_kid);
    free(s->own_issuer);
    free(s->own_audience);
    cache_free(s->cache);
    free(s);
}

/* Makes a path in a file relative to that file's directory. */
static char *relative_to(const char *file, const char *path)
{
    const char *slash = strrchr(file, '/');
    size_t dl;
    char *out;

    if (path[0] == '/' || slash == NULL)
        return strdup(path);
    dl = (size_t)(slash - file);
    out = malloc(dl + 1 + strlen(path) + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, file, dl);
    out[dl] = '/';
    memcpy(out + dl + 1, path, strlen(path) + 1);
    return out;
}

static enum bst_status key_from_file(struct jwt_key *k, const char *kid, int alg, const char *path,
                                     struct bst_err *err)
{
    enum bst_status rv;

    if (alg_is_hs(alg)) {
        struct bst_secret sec = {NULL, 0};
        rv = bst_secret_read(path, &sec, err);
        if (rv == BST_OK)
            rv = key_from_b64_secret(k, kid, alg, (const char *)sec.data, sec.len, err);
        bst_secret_free(&sec);
    } else {
        char *buf = NULL;
        size_t len = 0;
        rv = bst_file_read(path, MAX_PEM_BYTES, &buf, &len, err);
        if (rv == BST_OK)
            rv = jwt_key_from_pem(k, kid, alg, buf, len, err);
        free(buf);
    }
    if (rv != BST_OK)
        bst_err_prefix(err, "%s", path);
    return rv;
}

static enum bst_status dup_or_default(char **out, const char *v)
{
    *out = strdup(v);
    return *out == NULL ? BST_RESOURCE_EXHAUSTED : BST_OK;
}

static enum bst_status decode_issuer(const struct bst_yaml_doc *doc, const struct bst_yaml_node *m,
                                     const char *file, const struct authn_config *cfg,
                                     struct jwt_issuer *is, struct bst_err *err)
{
    static const char *const keys[] = {"issuer",
                                       "audiences",
                                       "keys",
                                       "jwks",
                                       "trusted_permissions",
                                       "identity_claim",
                                       "identity_prefix",
                                       "groups_claim",
                                       "tenant_claim",
                                       "permissions_claim",
                                       "leeway_seconds",
                                       "max_lifetime_seconds",
                                       NULL};
    static const char *const key_keys[] = {"kid", "alg", "file", NULL};
    const struct bst_yaml_node *v;
    enum bst_status rv;
    int64_t iv;

    memset(is, 0, sizeof(*is));
    is->leeway_s = cfg->jwt_leeway_ms / 1000;
    is->max_lifetime_s = cfg->jwt_max_lifetime_ms / 1000;
    rv = auth_yaml_only_keys(doc, m, keys, err);
    if (rv != BST_OK)
        return rv;
    if ((v = bst_yaml_get(m, "issuer")) == NULL)
        return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, m, "missing required key 'issuer'");
    if ((rv = auth_yaml_strdup(doc, v, "issuer", AUTH_MAX_CLAIM, 0, &is->name, err)) != BST_OK)
        return rv;
    if ((v = bst_yaml_get(m, "audiences")) == NULL)
        return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, m,
                             "missing required key 'audiences' (tokens must name us)");
    rv = auth_yaml_str_list(doc, v, "audiences", 1, AUTH_MAX_AUDIENCES, AUTH_MAX_CLAIM,
                            &is->audiences, &is->n_audiences, err);
    if (rv != BST_OK)
        return rv;
    if (is->n_audiences == 0)
        return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, v, "key 'audiences': empty");
    if ((v = bst_yaml_get(m, "trusted_permissions")) != NULL &&
        (rv = bst_yaml_bool(doc, v, &is->trusted_permissions, err)) != BST_OK)
        return rv;
    {
        static const char *const names[] = {"identity_claim", "identity_prefix", "groups_claim",
                                            "tenant_claim", "permissions_claim"};
        static const char *const defs[] = {"sub", "", "groups", "tenant", "permissions"};
        char **slots[] = {&is->identity_claim, &is->identity_prefix, &is->groups_claim,
                          &is->tenant_claim, &is->permissions_claim};
        for (size_t i = 0; i < 5; i++) {
            v = bst_yaml_get(m, names[i]);
            rv = v != NULL ? auth_yaml_strdup(doc, v, names[i], 128, i == 1, slots[i], err)
                           : dup_or_default(slots[i], defs[i]);
            if (rv != BST_OK)
                return rv;
        }
    }
    if ((v = bst_yaml_get(m, "leeway_seconds")) != NULL) {
        if ((rv = bst_yaml_int(doc, v, 0, 120, &iv, err)) != BST_OK)
            return rv;
        is->leeway_s = iv;
    }
    if ((v = bst_yaml_get(m, "max_lifetime_seconds")) != NULL) {
        if ((rv = bst_yaml_int(doc, v, 60, 7 * 86400, &iv, err)) != BST_OK)
            return rv;
        is->max_lifetime_s = iv;
    }
    if ((v = bst_yaml_get(m, "keys")) != NULL) {
        if (v->kind != BST_YAML_SEQ || v->n > MAX_KEYS_PER_ISSUER)
            return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, v,
                                 "key 'keys': expected a list of at most %d keys",
                                 MAX_KEYS_PER_ISSUER);
        is->keys = calloc(v->n + 1, sizeof(*is->keys));
        if (is->keys == NULL)
            return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        for (size_t i = 0; i < v->n; i++) {
            const struct bst_yaml_node *km = v->items[i], *kid, *alg, *kf;
            const char *kids, *algs, *files;
            char *path;
            int a;

            if ((rv = auth_yaml_only_keys(doc, km, key_keys, err)) != BST_OK)
                return rv;
            kid = bst_yaml_get(km, "kid");
            alg = bst_yaml_get(km, "alg");
            kf = bst_yaml_get(km, "file");
            if (kid == NULL || alg == NULL || kf == NULL)
                return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, km,
                                     "each key needs kid, alg and file");
            if ((rv = bst_yaml_str(doc, kid, 0, &kids, err)) != BST_OK ||
                (rv = bst_yaml_str(doc, alg, 0, &algs, err)) != BST_OK ||
                (rv = bst_yaml_str(doc, kf, 0, &files, err)) != BST_OK)
                return rv;
            if ((a = alg_from_name(algs)) < 0)
                return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, alg,
                                     "key 'alg': one of ES256, ES384, ES512, RS256, RS384, RS512, "
                                     "HS256, HS384, HS512 (libjwt 1.10.2 has no PS*)");
            if ((path = relative_to(file, files)) == NULL)
                return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
            rv = key_from_file(&is->keys[i], kids, a, path, err);
            free(path);
            if (rv != BST_OK)
                return rv;
            is->n_keys = i + 1;
        }
    }
    if ((v = bst_yaml_get(m, "jwks")) != NULL) {
        const char *js;
        char *path;
        if ((rv = bst_yaml_str(doc, v, 0, &js, err)) != BST_OK)
            return rv;
        if ((path = relative_to(file, js)) == NULL)
            return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        rv = jwks_load(path, &is->keys, &is->n_keys, err);
        free(path);
        if (rv != BST_OK)
            return rv;
    }
    if (is->n_keys == 0)
        return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, m,
                             "issuer has no keys (give keys, jwks, or both)");
    for (size_t i = 0; i < is->n_keys; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(is->keys[i].kid, is->keys[j].kid) == 0)
                return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, m,
                                     "two keys share the kid '%s'", is->keys[i].kid);
    return BST_OK;
}

/* The public members of a key as a JWK (RFC 7517), the members RFC 7638 hashes for the
 * thumbprint: EC {crv, kty, x, y}, RSA {e, kty, n}. NULL on failure. */
static json_t *pkey_jwk(EVP_PKEY *pk)
{
    unsigned char buf[1024];
    char b64[1400];
    BIGNUM *a = NULL, *b = NULL;
    json_t *j = NULL;
    int n;

    if (EVP_PKEY_is_a(pk, "RSA")) {
        if (EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &a) != 1 ||
            EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &b) != 1 ||
            BN_num_bytes(a) > (int)sizeof(buf) || BN_num_bytes(b) > (int)sizeof(buf))
            goto done;
        j = json_object();
        n = BN_bn2bin(b, buf);
        auth_b64url_encode(b64, sizeof(b64), buf, (size_t)n);
        json_object_set_new(j, "e", json_string(b64));
        json_object_set_new(j, "kty", json_string("RSA"));
        n = BN_bn2bin(a, buf);
        auth_b64url_encode(b64, sizeof(b64), buf, (size_t)n);
        json_object_set_new(j, "n", json_string(b64));
    } else if (EVP_PKEY_is_a(pk, "EC")) {
        char group[64] = "";
        const char *crv;
        int coord;
        if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                           NULL) != 1)
            goto done;
        crv = strcmp(group, "prime256v1") == 0  ? "P-256"
              : strcmp(group, "secp384r1") == 0 ? "P-384"
              : strcmp(group, "secp521r1") == 0 ? "P-521"
                                                : NULL;
        coord = crv == NULL ? 0 : crv[2] == '2' ? 32 : crv[2] == '3' ? 48 : 66;
        if (crv == NULL || EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, &a) != 1 ||
            EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, &b) != 1)
            goto done;
        j = json_object();
        json_object_set_new(j, "crv", json_string(crv));
        json_object_set_new(j, "kty", json_string("EC"));
        BN_bn2binpad(a, buf, coord);
        auth_b64url_encode(b64, sizeof(b64), buf, (size_t)coord);
        json_object_set_new(j, "x", json_string(b64));
        BN_bn2binpad(b, buf, coord);
        auth_b64url_encode(b64, sizeof(b64), buf, (size_t)coord);
        json_object_set_new(j, "y", json_string(b64));
    }
done:
    BN_free(a);
    BN_free(b);
    return j;
}

/* RFC 7638 thumbprint: base64url(SHA-256(the required members, sorted, no whitespace)). */
static int jwk_thumbprint(json_t *jwk, char out[44])
{
    unsigned char d[32];
    char *text = json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL)
        return -1;
    SHA256((const unsigned char *)text, strlen(text), d);
    free(text);
    auth_b64url_encode(out, 44, d, sizeof(d));
    return 0;
}

/* Reads the signing key file: *pk for ES/RS (NULL for HS), the raw secret for HS. */
static enum bst_status read_signing_key(const struct authn_token_config *t, EVP_PKEY **pk,
                                        struct bst_secret *sec, struct bst_err *err)
{
    enum bst_status rv = bst_secret_read(t->signing_key, sec, err);
    BIO *bio;

    *pk = NULL;
    if (rv != BST_OK || alg_is_hs(t->alg))
        return rv;
    bio = BIO_new_mem_buf(sec->data, (int)sec->len);
    *pk = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (*pk == NULL)
        return bst_errf(err, BST_INVALID_ARGUMENT, "%s: not an unencrypted PEM private key",
                        t->signing_key);
    rv = check_pkey(*pk, t->alg, err);
    if (rv != BST_OK)
        bst_err_prefix(err, "%s", t->signing_key);
    return rv;
}

enum bst_status authn_signing_jwks(const struct authn_config *cfg, char *out, size_t out_len,
                                   struct bst_err *err)
{
    const struct authn_token_config *t = &cfg->token;
    struct bst_secret sec = {NULL, 0};
    EVP_PKEY *pk = NULL;
    json_t *jwk = NULL, *doc = NULL;
    char thumb[44], *text = NULL;
    enum bst_status rv;

    if (t->signing_key == NULL || t->signing_key[0] == '\0')
        return bst_errf(err, BST_FAILED_PRECONDITION, "auth.token.signing_key is not set");
    if (alg_is_hs(t->alg))
        return bst_errf(err, BST_FAILED_PRECONDITION,
                        "an HS* signing key is a secret: it has no public JWK to publish");
    rv = read_signing_key(t, &pk, &sec, err);
    if (rv != BST_OK)
        goto done;
    rv = bst_errf(err, BST_INTERNAL, "cannot encode the public key");
    if ((jwk = pkey_jwk(pk)) == NULL || jwk_thumbprint(jwk, thumb) != 0)
        goto done;
    json_object_set_new(jwk, "kid", json_string(t->kid != NULL && t->kid[0] ? t->kid : thumb));
    json_object_set_new(jwk, "alg", json_string(auth_alg_name(t->alg)));
    json_object_set_new(jwk, "use", json_string("sig"));
    doc = json_pack("{s:[O]}", "keys", jwk);
    text = doc != NULL ? json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    if (text == NULL)
        goto done;
    if (strlen(text) + 1 > out_len) {
        rv = bst_errf(err, BST_OUT_OF_RANGE, "output buffer too small");
        goto done;
    }
    memcpy(out, text, strlen(text) + 1);
    rv = BST_OK;
done:
    free(text);
    json_decref(doc);
    json_decref(jwk);
    EVP_PKEY_free(pk);
    bst_secret_free(&sec);
    return rv;
}

/* Our own issuer: the public half of the signing key (and the previous keys of a rotation).
 * Without a configured kid, the kid is derived from the key (RFC 7638 thumbprint for ES/RS, a
 * hash of the secret for HS), so replacing the key file and reloading also changes the kid. */
static enum bst_status load_own(const struct authn_config *cfg, struct jwt_set *s,
                                struct bst_err *err)
{
    const struct authn_token_config *t = &cfg->token;
    struct jwt_issuer *is = &s->issuers[0];
    struct bst_secret sec = {NULL, 0};
    EVP_PKEY *pk = NULL;
    char kid[AUTH_MAX_KID + 1];
    enum bst_status rv;

    memset(is, 0, sizeof(*is));
    s->n_issuers = 1;
    is->leeway_s = cfg->jwt_leeway_ms / 1000;
    is->max_lifetime_s = t->max_ttl_ms / 1000;
    is->n_audiences = 1;
    is->audiences = calloc(1, sizeof(char *));
    is->keys = calloc(1, sizeof(*is->keys));
    if (is->audiences == NULL || is->keys == NULL ||
        (is->audiences[0] = strdup(t->audience)) == NULL ||
        (is->name = strdup(t->issuer)) == NULL || (s->own_issuer = strdup(t->issuer)) == NULL ||
        (s->own_audience = strdup(t->audience)) == NULL ||
        dup_or_default(&is->identity_claim, "sub") || dup_or_default(&is->identity_prefix, "") ||
        dup_or_default(&is->groups_claim, "groups") ||
        dup_or_default(&is->tenant_claim, "tenant") ||
        dup_or_default(&is->permissions_claim, "permissions"))
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    s->sign_alg = t->alg;
    rv = read_signing_key(t, &pk, &sec, err);
    if (rv != BST_OK)
        goto done;
    if (alg_is_hs(t->alg)) {
        rv = key_from_b64_secret(&is->keys[0], "pending", t->alg, (const char *)sec.data, sec.len,
                                 err);
        if (rv != BST_OK) {
            bst_err_prefix(err, "%s", t->signing_key);
            goto done;
        }
        if (t->kid != NULL && t->kid[0] != '\0') {
            snprintf(kid, sizeof(kid), "%s", t->kid);
        } else {
            unsigned char d[32];
            SHA256(is->keys[0].material, is->keys[0].len, d);
            memcpy(kid, "hs-", 3);
            bst_hex_encode(kid + 3, d, 8);
        }
        s->sign_key = malloc(is->keys[0].len);
        if (s->sign_key == NULL) {
            rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
            goto done;
        }
        memcpy(s->sign_key, is->keys[0].material, is->keys[0].len);
        s->sign_len = is->keys[0].len;
    } else {
        json_t *jwk = pkey_jwk(pk);
        char thumb[44];
        int ok = jwk != NULL && jwk_thumbprint(jwk, thumb) == 0;
        json_decref(jwk);
        if (!ok) {
            rv = bst_errf(err, BST_INTERNAL, "cannot compute the key's thumbprint");
            goto done;
        }
        snprintf(kid, sizeof(kid), "%s", t->kid != NULL && t->kid[0] != '\0' ? t->kid : thumb);
        if ((rv = key_start(&is->keys[0], "pending", t->alg, err)) != BST_OK ||
            (rv = key_set_public(&is->keys[0], pk, err)) != BST_OK)
            goto done;
        s->sign_key = malloc(sec.len + 1);
        if (s->sign_key == NULL) {
            rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
            goto done;
        }
        memcpy(s->sign_key, sec.data, sec.len);
        s->sign_key[sec.len] = '\0';
        s->sign_len = sec.len;
    }
    is->n_keys = 1;
    free(is->keys[0].kid);
    if ((is->keys[0].kid = strdup(kid)) == NULL || (s->sign_kid = strdup(kid)) == NULL) {
        rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    if (t->verify_jwks != NULL && t->verify_jwks[0] != '\0') {
        rv = jwks_load(t->verify_jwks, &is->keys, &is->n_keys, err);
        if (rv != BST_OK)
            goto done;
        for (size_t i = 1; i < is->n_keys; i++) {
            if (strcmp(is->keys[i].kid, kid) == 0) {
                rv = bst_errf(err, BST_INVALID_ARGUMENT,
                              "%s: kid '%s' is the active signing key's kid", t->verify_jwks, kid);
                goto done;
            }
        }
    }
done:
    EVP_PKEY_free(pk);
    bst_secret_free(&sec);
    return rv;
}

enum bst_status jwt_set_load(const struct authn_config *cfg, struct jwt_set **out,
                             struct bst_err *err)
{
    struct jwt_set *s = calloc(1, sizeof(*s));
    struct bst_yaml_doc *doc = NULL;
    const struct bst_yaml_node *list = NULL;
    size_t cap = 1;
    enum bst_status rv = BST_OK;

    *out = NULL;
    if (s == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    if (cfg->jwt_issuers != NULL && cfg->jwt_issuers[0] != '\0') {
        rv = bst_yaml_load_file(cfg->jwt_issuers, NULL, &doc, err);
        if (rv != BST_OK)
            goto fail;
        if ((rv = auth_yaml_only_keys(doc, doc->root, (const char *const[]){"issuers", NULL},
                                      err)) != BST_OK)
            goto fail;
        list = bst_yaml_get(doc->root, "issuers");
        if (list == NULL || list->kind != BST_YAML_SEQ || list->n > MAX_ISSUERS) {
            rv = bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, list ? list : doc->root,
                               "key 'issuers': expected a list of at most %d issuers", MAX_ISSUERS);
            goto fail;
        }
        cap += list->n;
    }
    s->issuers = calloc(cap, sizeof(*s->issuers));
    s->cache = cache_new();
    if (s->issuers == NULL || s->cache == NULL) {
        rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    if (cfg->token.signing_key != NULL && cfg->token.signing_key[0] != '\0') {
        rv = load_own(cfg, s, err);
        if (rv != BST_OK)
            goto fail;
    }
    for (size_t i = 0; list != NULL && i < list->n; i++) {
        struct jwt_issuer *is = &s->issuers[s->n_issuers];
        rv = decode_issuer(doc, list->items[i], cfg->jwt_issuers, cfg, is, err);
        s->n_issuers++; /* disposed with the set even when half built */
        if (rv != BST_OK)
            goto fail;
        for (size_t j = 0; j + 1 < s->n_issuers; j++) {
            if (strcmp(s->issuers[j].name, is->name) == 0) {
                rv = bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, list->items[i],
                                   "issuer '%s' is defined twice (or is our own issuer)", is->name);
                goto fail;
            }
        }
    }
    bst_yaml_free(doc);
    *out = s;
    return BST_OK;
fail:
    bst_yaml_free(doc);
    jwt_set_free(s);
    return rv;
}

/* ---- jti denylist -------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void jti_denylist_free(struct jti_denylist *d)
{
    if (d == NULL)
        return;
    auth_free_list(d->ids, d->n);
    free(d);
}

enum bst_status jti_denylist_load(const char *path, struct jti_denylist **out, struct bst_err *err)
{
    struct jti_denylist *d = calloc(1, sizeof(*d));
    char *buf = NULL, *line, *next;
    size_t len = 0, cap = 0;
    int lineno = 0;
    enum bst_status rv;

    *out = NULL;
    if (d == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    if (path == NULL || path[0] == '\0') {
        *out = d;
        return BST_OK;
    }
    rv = bst_file_read(path, 16 * 1024 * 1024, &buf, &len, err);
    if (rv != BST_OK)
        goto fail;
    if (memchr(buf, '\0', len) != NULL) {
        rv = bst_errf(err, BST_INVALID_ARGUMENT, "%s: contains a NUL byte", path);
        goto fail;
    }
    for (line = buf; line != NULL && *line != '\0'; line = next) {
        size_t n;
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        lineno++;
        n = strlen(line);
        while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
            line[--n] = '\0';
        while (*line == ' ' || *line == '\t') {
            line++;
            n--;
        }
        if (n == 0 || line[0] == '#')
            continue;
        if (!auth_printable(line, n, AUTH_MAX_KID)) {
            rv = bst_errf(err, BST_INVALID_ARGUMENT,
                          "%s:%d: a jti must be 1-%d printable characters", path, lineno,
                          AUTH_MAX_KID);
            goto fail;
        }
        if (d->n == cap) {
            size_t nc = cap ? 2 * cap : 64;
            char **g = realloc(d->ids, nc * sizeof(*g));
            if (g == NULL) {
                rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
                goto fail;
            }
            d->ids = g;
            cap = nc;
        }
        if ((d->ids[d->n] = strdup(line)) == NULL) {
            rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
            goto fail;
        }
        d->n++;
    }
    if (d->n > 0)
        qsort(d->ids, d->n, sizeof(*d->ids), cmp_str);
    free(buf);
    *out = d;
    return BST_OK;
fail:
    free(buf);
    jti_denylist_free(d);
    return rv;
}

int jti_denylist_has(const struct jti_denylist *d, const char *jti)
{
    if (d == NULL || d->n == 0 || jti == NULL)
        return 0;
    return bsearch(&jti, d->ids, d->n, sizeof(*d->ids), cmp_str) != NULL;
}

/* ---- verification -------------------------------------------------------------------------- */

static int b64url_value(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                   c == '_'
               ? 1
               : -1;
}

struct segments {
    const char *p[3];
    size_t n[3];
};

/* Splits into exactly three segments of base64url characters. */
static int split(const char *tok, size_t len, struct segments *sg, char *reason, size_t rlen)
{
    size_t start = 0, k = 0;

    for (size_t i = 0; i <= len; i++) {
        if (i == len || tok[i] == '.') {
            if (k == 3) {
                reasonf(reason, rlen, "token has more than three segments");
                return -1;
            }
            sg->p[k] = tok + start;
            sg->n[k] = i - start;
            k++;
            start = i + 1;
        } else if (b64url_value((unsigned char)tok[i]) < 0) {
            reasonf(reason, rlen, "token has a character outside base64url at offset %zu", i);
            return -1;
        }
    }
    if (k != 3) {
        reasonf(reason, rlen, "token has %zu segments; a JWS has three", k);
        return -1;
    }
    return 0;
}

/* Decodes a segment into a JSON object, refusing duplicate members. */
static json_t *segment_json(const char *p, size_t n, char *buf, size_t cap)
{
    size_t len;
    json_t *j;

    if (n == 0 || auth_b64url_decode(p, n, (unsigned char *)buf, cap, &len) != 0)
        return NULL;
    j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

int jwt_looks_like(const char *tok, size_t len)
{
    struct segments sg;
    char buf[AUTHN_MAX_TOKEN_BYTES];
    json_t *h;

    if (len > AUTHN_MAX_TOKEN_BYTES || split(tok, len, &sg, NULL, 0) != 0)
        return 0;
    h = segment_json(sg.p[0], sg.n[0], buf, sizeof(buf));
    if (h == NULL)
        return 0;
    json_decref(h);
    return 1;
}

/* Reads an integer NumericDate claim. Returns 1 present and valid, 0 absent, -1 malformed. */
static int time_claim(json_t *payload, const char *name, int64_t *out)
{
    json_t *v = json_object_get(payload, name);
    json_int_t i;

    if (v == NULL)
        return 0;
    if (!json_is_integer(v))
        return -1;
    i = json_integer_value(v);
    if (i < 0 || i >= MAX_CLAIM_TIME)
        return -1;
    *out = (int64_t)i;
    return 1;
}

/* Adds a string or an array of strings claim to the principal through add(). */
static int list_claim(json_t *v, size_t max, struct bst_principal *p,
                      enum bst_status (*add)(struct bst_principal *, const char *))
{
    size_t i;
    json_t *e;

    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (!auth_printable(s, json_string_length(v), AUTH_MAX_CLAIM))
            return -1;
        return add(p, s) == BST_OK ? 0 : -1;
    }
    if (!json_is_array(v) || json_array_size(v) > max)
        return -1;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e) ||
            !auth_printable(json_string_value(e), json_string_length(e), AUTH_MAX_CLAIM))
            return -1;
        if (add(p, json_string_value(e)) != BST_OK)
            return -1;
    }
    return 0;
}

static int audience_ok(json_t *aud, const struct jwt_issuer *is)
{
    size_t i;
    json_t *e;

    if (json_is_string(aud)) {
        for (size_t k = 0; k < is->n_audiences; k++)
            if (strcmp(json_string_value(aud), is->audiences[k]) == 0 &&
                json_string_length(aud) == strlen(is->audiences[k]))
                return 1;
        return 0;
    }
    if (!json_is_array(aud) || json_array_size(aud) == 0 ||
        json_array_size(aud) > AUTH_MAX_AUDIENCES)
        return 0;
    /* Every member must be a string; one of them must be ours. */
    int found = 0;
    json_array_foreach(aud, i, e)
    {
        if (!json_is_string(e))
            return 0;
        for (size_t k = 0; k < is->n_audiences; k++)
            if (strcmp(json_string_value(e), is->audiences[k]) == 0 &&
                json_string_length(e) == strlen(is->audiences[k]))
                found = 1;
    }
    return found;
}

static int starts_ci(const char *s, const char *prefix)
{
    for (; *prefix != '\0'; s++, prefix++)
        if ((*s | 0x20) != (*prefix | 0x20))
            return 0;
    return 1;
}

static enum bst_status verify_full(const struct jwt_set *set, const struct jti_denylist *deny,
                                   const char *tok, size_t len, int64_t now_s,
                                   struct bst_principal *out, char *reason, size_t rlen,
                                   int64_t *exp_out, int64_t *leeway_out, char *jti_out)
{
    struct segments sg;
    char *buf = NULL, *copy = NULL, shown[64];
    json_t *hdr = NULL, *pl = NULL, *v;
    const char *alg_s, *kid, *iss, *key_name;
    const struct jwt_issuer *is = NULL;
    const struct jwt_key *key = NULL;
    int alg;
    int64_t exp = 0, nbf = 0, iat = 0, start;
    int has_nbf, has_iat, r;
    jwt_t *jwt = NULL;
    enum bst_status rv = BST_UNAUTHENTICATED;

    if (len == 0 || len > AUTHN_MAX_TOKEN_BYTES) {
        reasonf(reason, rlen, "token length %zu is outside 1..%d bytes", len,
                AUTHN_MAX_TOKEN_BYTES);
        return BST_UNAUTHENTICATED;
    }
    if (split(tok, len, &sg, reason, rlen) != 0)
        return BST_UNAUTHENTICATED;
    if (sg.n[2] == 0) {
        reasonf(reason, rlen, "token has an empty signature");
        return BST_UNAUTHENTICATED;
    }
    buf = malloc(len + 1);
    if (buf == NULL) {
        reasonf(reason, rlen, "out of memory");
        return BST_RESOURCE_EXHAUSTED;
    }
    /* libjwt decodes the signature leniently; insisting on the one canonical encoding keeps a
     * token from having several spellings (and several credential ids). */
    {
        size_t sl;
        if (auth_b64url_decode(sg.p[2], sg.n[2], (unsigned char *)buf, len, &sl) != 0) {
            reasonf(reason, rlen, "token signature is not canonical base64url");
            goto done;
        }
    }
    hdr = segment_json(sg.p[0], sg.n[0], buf, len);
    if (hdr == NULL) {
        reasonf(reason, rlen,
                "token header is not base64url of a JSON object without "
                "duplicate members");
        goto done;
    }
    json_object_foreach(hdr, key_name, v)
    {
        if (strcmp(key_name, "alg") != 0 && strcmp(key_name, "kid") != 0 &&
            strcmp(key_name, "typ") != 0) {
            auth_excerpt(shown, sizeof(shown), key_name, strlen(key_name));
            reasonf(reason, rlen,
                    "token header parameter '%s' is not accepted (keys are never fetched or "
                    "taken from a token)",
                    shown);
            goto done;
        }
    }
    alg_s = json_string_value(json_object_get(hdr, "alg"));
    if (alg_s == NULL) {
        reasonf(reason, rlen, "token header has no string alg");
        goto done;
    }
    if (starts_ci(alg_s, "none") && strlen(alg_s) == 4) {
        reasonf(reason, rlen, "alg none is never accepted");
        goto done;
    }
    alg = alg_from_name(alg_s);
    if (alg < 0) {
        auth_excerpt(shown, sizeof(shown), alg_s, strlen(alg_s));
        if (strlen(alg_s) == 5 && strncmp(alg_s, "PS", 2) == 0) {
            reasonf(reason, rlen,
                    "alg %s is not supported: libjwt 1.10.2 has no PS* algorithms (use RS*, ES* "
                    "or HS*)",
                    shown);
            rv = BST_UNIMPLEMENTED;
        } else {
            reasonf(reason, rlen, "alg '%s' is not supported", shown);
        }
        goto done;
    }
    v = json_object_get(hdr, "typ");
    if (v != NULL && (!json_is_string(v) || (strcasecmp(json_string_value(v), "JWT") != 0 &&
                                             strcasecmp(json_string_value(v), "at+jwt") != 0))) {
        reasonf(reason, rlen, "token typ must be JWT or at+jwt");
        goto done;
    }
    v = json_object_get(hdr, "kid");
    if (v == NULL) {
        reasonf(reason, rlen, "token header has no kid");
        goto done;
    }
    kid = json_string_value(v);
    if (kid == NULL || !auth_printable(kid, json_string_length(v), AUTH_MAX_KID)) {
        reasonf(reason, rlen, "token kid is not 1-%d printable characters", AUTH_MAX_KID);
        goto done;
    }
    pl = segment_json(sg.p[1], sg.n[1], buf, len);
    if (pl == NULL) {
        reasonf(reason, rlen,
                "token payload is not base64url of a JSON object without "
                "duplicate members");
        goto done;
    }
    v = json_object_get(pl, "iss");
    iss = json_string_value(v);
    if (iss == NULL) {
        reasonf(reason, rlen, "token has no string iss");
        goto done;
    }
    for (size_t i = 0; set != NULL && i < set->n_issuers; i++) {
        if (strcmp(set->issuers[i].name, iss) == 0 &&
            strlen(set->issuers[i].name) == json_string_length(v)) {
            is = &set->issuers[i];
            break;
        }
    }
    if (is == NULL) {
        auth_excerpt(shown, sizeof(shown), iss, json_string_length(v));
        reasonf(reason, rlen, "unknown issuer '%s'", shown);
        goto done;
    }
    for (size_t i = 0; i < is->n_keys; i++) {
        if (strcmp(is->keys[i].kid, kid) == 0) {
            key = &is->keys[i];
            break;
        }
    }
    if (key == NULL) {
        auth_excerpt(shown, sizeof(shown), kid, strlen(kid));
        reasonf(reason, rlen, "issuer has no key with kid '%s'", shown);
        goto done;
    }
    if (key->alg != alg) {
        reasonf(reason, rlen, "kid pins %s but the token says %s", auth_alg_name(key->alg),
                auth_alg_name(alg));
        goto done;
    }
    if (key->material == NULL || key->len == 0) {
        reasonf(reason, rlen, "key has no material"); /* never reached: loaders refuse it */
        goto done;
    }
    copy = strndup(tok, len);
    if (copy == NULL) {
        reasonf(reason, rlen, "out of memory");
        rv = BST_RESOURCE_EXHAUSTED;
        goto done;
    }
    r = jwt_decode(&jwt, copy, key->material, (int)key->len);
    if (r != 0 || jwt == NULL) {
        reasonf(reason, rlen, "signature does not verify (libjwt: %s)", strerror(r));
        goto done;
    }
    if (jwt_get_alg(jwt) != alg_libjwt[alg]) {
        reasonf(reason, rlen, "libjwt verified with another algorithm than the pinned one");
        goto done;
    }
    /* Claims, from our own parse of the payload. */
    r = time_claim(pl, "exp", &exp);
    if (r <= 0) {
        reasonf(reason, rlen, r == 0 ? "token has no exp" : "token exp is not an integer date");
        goto done;
    }
    has_nbf = time_claim(pl, "nbf", &nbf);
    has_iat = time_claim(pl, "iat", &iat);
    if (has_nbf < 0 || has_iat < 0) {
        reasonf(reason, rlen, "token nbf or iat is not an integer date");
        goto done;
    }
    if (now_s >= exp + is->leeway_s) {
        reasonf(reason, rlen, "token expired %lld s ago (leeway %lld s)", (long long)(now_s - exp),
                (long long)is->leeway_s);
        goto done;
    }
    if (has_nbf && nbf > now_s + is->leeway_s) {
        reasonf(reason, rlen, "token is not valid for another %lld s (nbf)",
                (long long)(nbf - now_s));
        goto done;
    }
    if (has_iat && iat > now_s + is->leeway_s) {
        reasonf(reason, rlen, "token issued %lld s in the future (iat)", (long long)(iat - now_s));
        goto done;
    }
    start = has_iat ? iat : has_nbf ? nbf : now_s;
    if (exp - start > is->max_lifetime_s) {
        reasonf(reason, rlen, "token lifetime %lld s exceeds the maximum %lld s",
                (long long)(exp - start), (long long)is->max_lifetime_s);
        goto done;
    }
    v = json_object_get(pl, "aud");
    if (v == NULL || !audience_ok(v, is)) {
        reasonf(reason, rlen, "token audience is missing or not ours");
        goto done;
    }
    v = json_object_get(pl, "jti");
    if (v != NULL) {
        if (!json_is_string(v) ||
            !auth_printable(json_string_value(v), json_string_length(v), AUTH_MAX_KID)) {
            reasonf(reason, rlen, "token jti is not 1-%d printable characters", AUTH_MAX_KID);
            goto done;
        }
        if (jti_denylist_has(deny, json_string_value(v))) {
            reasonf(reason, rlen, "token jti is on the denylist (revoked)");
            goto done;
        }
        snprintf(jti_out, AUTH_MAX_KID + 1, "%s", json_string_value(v));
    }
    v = json_object_get(pl, is->identity_claim);
    if (!json_is_string(v) ||
        !auth_printable(json_string_value(v), json_string_length(v), AUTH_MAX_CLAIM)) {
        reasonf(reason, rlen, "token identity claim '%s' is missing or not printable",
                is->identity_claim);
        goto done;
    }
    {
        size_t pl_len = strlen(is->identity_prefix), il = json_string_length(v);
        char *name = malloc(pl_len + il + 1);
        if (name == NULL) {
            rv = BST_RESOURCE_EXHAUSTED;
            goto done;
        }
        memcpy(name, is->identity_prefix, pl_len);
        memcpy(name + pl_len, json_string_value(v), il + 1);
        r = bst_principal_set_name(out, name, BST_MECH_JWT) == BST_OK ? 0 : -1;
        free(name);
        if (r != 0) {
            rv = BST_RESOURCE_EXHAUSTED;
            goto done;
        }
    }
    v = json_object_get(pl, is->groups_claim);
    if (v != NULL && list_claim(v, BST_PRINCIPAL_MAX_GROUPS, out, bst_principal_add_group) != 0) {
        reasonf(reason, rlen, "token groups claim '%s' is not a list of printable strings",
                is->groups_claim);
        goto done;
    }
    v = json_object_get(pl, is->tenant_claim);
    if (v != NULL) {
        if (!json_is_string(v) ||
            !auth_printable(json_string_value(v), json_string_length(v), AUTH_MAX_CLAIM)) {
            reasonf(reason, rlen, "token tenant claim '%s' is not a printable string",
                    is->tenant_claim);
            goto done;
        }
        if (bst_principal_set_tenant(out, json_string_value(v)) != BST_OK) {
            rv = BST_RESOURCE_EXHAUSTED;
            goto done;
        }
    }
    v = json_object_get(pl, is->permissions_claim);
    if (v != NULL && is->trusted_permissions) {
        if (list_claim(v, BST_PRINCIPAL_MAX_PERMS, out, bst_principal_add_permission) != 0) {
            reasonf(reason, rlen, "token permissions claim is not a list of printable strings");
            goto done;
        }
        out->permissions_source = BST_PERMS_JWT_ISSUER;
        free(out->permissions_issuer);
        out->permissions_issuer = strdup(is->name);
        if (out->permissions_issuer == NULL) {
            rv = BST_RESOURCE_EXHAUSTED;
            goto done;
        }
    }
    out->expires_at_ns = exp * INT64_C(1000000000);
    *exp_out = exp;
    *leeway_out = is->leeway_s;
    rv = BST_OK;
done:
    if (jwt != NULL)
        jwt_free(jwt);
    json_decref(hdr);
    json_decref(pl);
    if (copy != NULL) {
        OPENSSL_cleanse(copy, len);
        free(copy);
    }
    if (buf != NULL) {
        OPENSSL_cleanse(buf, len + 1);
        free(buf);
    }
    return rv;
}

enum bst_status jwt_verify(const struct jwt_set *set, const struct jti_denylist *deny,
                           const char *tok, size_t len, int64_t now_s, struct bst_principal *out,
                           char *reason, size_t rlen)
{
    unsigned char d[32];
    char jti[AUTH_MAX_KID + 1] = "";
    int64_t exp = 0, leeway = 0;
    int cacheable = set != NULL && set->cache != NULL && len > 0 && len <= CACHE_MAX_TOKEN;
    enum bst_status rv;

    if (cacheable) {
        SHA256((const unsigned char *)tok, len, d);
        if (cache_hit(set->cache, d, deny, now_s, out)) {
            reasonf(reason, rlen, "token verified (cached)");
            return BST_OK;
        }
    }
    rv = verify_full(set, deny, tok, len, now_s, out, reason, rlen, &exp, &leeway, jti);
    if (rv == BST_OK && cacheable)
        cache_put(set->cache, d, exp, leeway, jti, out);
    return rv;
}

/* ---- signing ------------------------------------------------------------------------------- */

enum bst_status jwt_sign(const struct jwt_set *set, const char *sub, char *const *groups,
                         size_t n_groups, const char *tenant, int64_t now_s, int64_t ttl_s,
                         char **token_out, int64_t *exp_out, struct bst_err *err)
{
    unsigned char rnd[16];
    char jti[33];
    json_t *claims = NULL, *garr = NULL;
    char *json = NULL, *tok = NULL;
    jwt_t *jwt = NULL;
    enum bst_status rv = BST_INTERNAL;

    *token_out = NULL;
    if (set == NULL || set->sign_key == NULL)
        return bst_errf(err, BST_FAILED_PRECONDITION, "no signing key is configured");
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return bst_errf(err, BST_INTERNAL, "no randomness for the token id");
    bst_hex_encode(jti, rnd, sizeof(rnd));
    garr = json_array();
    for (size_t i = 0; garr != NULL && i < n_groups; i++)
        json_array_append_new(garr, json_string(groups[i]));
    claims = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "iss", set->own_issuer, "sub", sub,
                       "aud", set->own_audience, "iat", (json_int_t)now_s, "nbf", (json_int_t)now_s,
                       "exp", (json_int_t)(now_s + ttl_s), "jti", jti);
    if (claims == NULL || garr == NULL)
        goto fail;
    if (n_groups > 0)
        json_object_set(claims, "groups", garr);
    if (tenant != NULL && tenant[0] != '\0')
        json_object_set_new(claims, "tenant", json_string(tenant));
    json = json_dumps(claims, JSON_COMPACT);
    if (json == NULL || jwt_new(&jwt) != 0 || jwt_add_grants_json(jwt, json) != 0 ||
        jwt_add_header(jwt, "kid", set->sign_kid) != 0 ||
        jwt_set_alg(jwt, alg_libjwt[set->sign_alg], set->sign_key, (int)set->sign_len) != 0)
        goto fail;
    tok = jwt_encode_str(jwt);
    if (tok == NULL)
        goto fail;
    *token_out = tok;
    *exp_out = now_s + ttl_s;
    rv = BST_OK;
fail:
    if (rv != BST_OK)
        bst_errf(err, rv, "cannot sign the token");
    if (jwt != NULL)
        jwt_free(jwt);
    free(json);
    json_decref(claims);
    json_decref(garr);
    return rv;
}
