/* The authenticator: owns the reloadable snapshots (API keys, users, JWT issuers and signing
 * key, jti denylist, certificate mapping), the failure counters and the scrypt pool; picks the
 * mechanism from a call's credential headers and builds its principal; runs password logins
 * on the pool. */
#include "authn_internal.h"
#include "clock.h"
#include "log.h"
#include "reload.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Peer-safe messages: one per class of failure, never saying which check failed. */
#define MSG_BAD_KEY "invalid API key"
#define MSG_BAD_TOKEN "invalid or expired token"
#define MSG_PS_TOKEN                                                                               \
    "unsupported token algorithm: PS* is not available (libjwt 1.10.2); use ES*, RS* or HS*"
#define MSG_CONFLICT "send exactly one credential: one authorization header or one x-api-key header"
#define MSG_SCHEME "unsupported authorization header: use 'Bearer <token>' or 'ApiKey <key>'"
#define MSG_NEED_CERT "a client certificate is required"
#define MSG_NEED_TOKEN "an API key or a token is required"
#define MSG_TOO_MANY "too many invalid credentials from this address; try again later"
#define MSG_LOGIN "invalid username or password"
#define MSG_LOCKED "too many failed logins; try again later"

#define LIMITER_CAPACITY 8192
#define ADDR_LEN 64

struct authn {
    struct authn_config cfg; /* a private deep copy (paths and settings for reloads) */
    struct bst_snap *keys, *users, *jwt, *deny, *certmap;
    struct limiter *user_lim, *addr_lim, *cred_lim;
    struct pool *pool;
};

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

static int set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static int64_t now_s(void)
{
    int64_t ns = bst_wall_ns();
    return ns >= 0 ? ns / 1000000000 : -((-ns + 999999999) / 1000000000);
}

/* ---- snapshots and reload ------------------------------------------------------------------ */

static void destroy_keys(void *o)
{
    apikey_set_free(o);
}
static void destroy_users(void *o)
{
    user_set_free(o);
}
static void destroy_jwt(void *o)
{
    jwt_set_free(o);
}
static void destroy_deny(void *o)
{
    jti_denylist_free(o);
}
static void destroy_certmap(void *o)
{
    certmap_free(o);
}

static enum bst_status reload_keys(void *ctx, struct bst_err *err)
{
    struct authn *a = ctx;
    struct apikey_set *s;
    enum bst_status rv = apikey_set_load(a->cfg.api_keys, &s, err);
    if (rv == BST_OK)
        bst_snap_swap(a->keys, s);
    return rv;
}

static enum bst_status reload_users(void *ctx, struct bst_err *err)
{
    struct authn *a = ctx;
    struct user_set *s;
    enum bst_status rv =
        user_set_load(a->cfg.users, (uint64_t)a->cfg.login.scrypt_max_memory, &s, err);
    if (rv == BST_OK)
        bst_snap_swap(a->users, s);
    return rv;
}

static enum bst_status reload_jwt(void *ctx, struct bst_err *err)
{
    struct authn *a = ctx;
    struct jwt_set *s;
    enum bst_status rv = jwt_set_load(&a->cfg, &s, err);
    if (rv == BST_OK)
        bst_snap_swap(a->jwt, s);
    return rv;
}

static enum bst_status reload_deny(void *ctx, struct bst_err *err)
{
    struct authn *a = ctx;
    struct jti_denylist *s;
    enum bst_status rv = jti_denylist_load(a->cfg.jti_denylist, &s, err);
    if (rv == BST_OK)
        bst_snap_swap(a->deny, s);
    return rv;
}

static enum bst_status reload_certmap(void *ctx, struct bst_err *err)
{
    struct authn *a = ctx;
    struct certmap *s;
    enum bst_status rv = certmap_load(a->cfg.certificate_identities, &s, err);
    if (rv == BST_OK)
        bst_snap_swap(a->certmap, s);
    return rv;
}

/* ---- lifetime ------------------------------------------------------------------------------ */

static int copy_str(char **dst, const char *src)
{
    *dst = strdup(src != NULL ? src : "");
    return *dst == NULL ? -1 : 0;
}

static int copy_config(struct authn_config *d, const struct authn_config *s)
{
    *d = *s;
    d->api_keys = d->users = d->jwt_issuers = d->jti_denylist = d->certificate_identities = NULL;
    d->token.issuer = d->token.audience = d->token.signing_key = d->token.kid = NULL;
    d->token.verify_jwks = NULL;
    return copy_str(&d->api_keys, s->api_keys) | copy_str(&d->users, s->users) |
           copy_str(&d->jwt_issuers, s->jwt_issuers) | copy_str(&d->jti_denylist, s->jti_denylist) |
           copy_str(&d->certificate_identities, s->certificate_identities) |
           copy_str(&d->token.issuer, s->token.issuer) |
           copy_str(&d->token.audience, s->token.audience) |
           copy_str(&d->token.signing_key, s->token.signing_key) |
           copy_str(&d->token.kid, s->token.kid) |
           copy_str(&d->token.verify_jwks, s->token.verify_jwks);
}

/* Wraps a freshly loaded object in a snapshot holder; frees it when that fails. */
static enum bst_status hold(struct bst_snap **out, void *obj, void (*destroy)(void *),
                            struct bst_err *err)
{
    *out = bst_snap_new(obj, destroy);
    if (*out == NULL) {
        destroy(obj);
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    }
    return BST_OK;
}

enum bst_status authn_new(struct authn **out, const struct authn_config *cfg, struct bst_err *err)
{
    struct authn *a = calloc(1, sizeof(*a));
    const struct authn_login_config *lc = &cfg->login;
    struct apikey_set *keys = NULL;
    struct user_set *users = NULL;
    struct jwt_set *jwt = NULL;
    struct jti_denylist *deny = NULL;
    struct certmap *map = NULL;
    enum bst_status rv;

    *out = NULL;
    if (a == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    if (copy_config(&a->cfg, cfg) != 0) {
        rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    if ((rv = authn_config_check(&a->cfg, err)) != BST_OK)
        goto fail;
    if ((rv = apikey_set_load(a->cfg.api_keys, &keys, err)) != BST_OK ||
        (rv = hold(&a->keys, keys, destroy_keys, err)) != BST_OK)
        goto fail;
    if ((rv = user_set_load(a->cfg.users, (uint64_t)lc->scrypt_max_memory, &users, err)) !=
            BST_OK ||
        (rv = hold(&a->users, users, destroy_users, err)) != BST_OK)
        goto fail;
    if ((rv = jwt_set_load(&a->cfg, &jwt, err)) != BST_OK ||
        (rv = hold(&a->jwt, jwt, destroy_jwt, err)) != BST_OK)
        goto fail;
    if ((rv = jti_denylist_load(a->cfg.jti_denylist, &deny, err)) != BST_OK ||
        (rv = hold(&a->deny, deny, destroy_deny, err)) != BST_OK)
        goto fail;
    if ((rv = certmap_load(a->cfg.certificate_identities, &map, err)) != BST_OK ||
        (rv = hold(&a->certmap, map, destroy_certmap, err)) != BST_OK)
        goto fail;
    if (limiter_new(&a->user_lim, LIMITER_CAPACITY, lc->max_failures_per_user,
                    lc->failure_window_ms * BST_NS_PER_MS, lc->lockout_ms * BST_NS_PER_MS) ||
        limiter_new(&a->addr_lim, LIMITER_CAPACITY, lc->max_failures_per_address,
                    lc->failure_window_ms * BST_NS_PER_MS, lc->lockout_ms * BST_NS_PER_MS) ||
        (cfg->failed_credentials_per_address > 0 &&
         limiter_new(&a->cred_lim, LIMITER_CAPACITY, cfg->failed_credentials_per_address,
                     lc->failure_window_ms * BST_NS_PER_MS, lc->lockout_ms * BST_NS_PER_MS))) {
        rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    if (set(a->cfg.users) &&
        (rv = pool_new(&a->pool, (size_t)lc->scrypt_threads, (size_t)lc->scrypt_queue)) != BST_OK) {
        bst_errf(err, rv, "cannot start the scrypt pool");
        goto fail;
    }
    if ((set(a->cfg.api_keys) && bst_reload_register("auth.api_keys", reload_keys, a)) ||
        (set(a->cfg.users) && bst_reload_register("auth.users", reload_users, a)) ||
        ((set(a->cfg.jwt_issuers) || set(a->cfg.token.signing_key)) &&
         bst_reload_register("auth.jwt", reload_jwt, a)) ||
        (set(a->cfg.jti_denylist) && bst_reload_register("auth.jti_denylist", reload_deny, a)) ||
        (set(a->cfg.certificate_identities) &&
         bst_reload_register("auth.certificate_identities", reload_certmap, a))) {
        rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "the reload registry is full");
        goto fail;
    }
    {
        char n_keys[24], n_users[24], n_issuers[24];
        snprintf(n_keys, sizeof(n_keys), "%zu", keys->n);
        snprintf(n_users, sizeof(n_users), "%zu", users->n);
        snprintf(n_issuers, sizeof(n_issuers), "%zu", jwt->n_issuers);
        bst_log(BST_LOG_INFO, "auth_loaded", "api_keys", n_keys, "users", n_users, "jwt_issuers",
                n_issuers, "signing_kid", jwt->sign_key != NULL ? jwt->sign_kid : NULL, NULL);
    }
    *out = a;
    return BST_OK;
fail:
    authn_free(a);
    return rv;
}

void authn_free(struct authn *a)
{
    if (a == NULL)
        return;
    pool_free(a->pool); /* first: queued logins still reference everything below */
    bst_snap_free(a->keys);
    bst_snap_free(a->users);
    bst_snap_free(a->jwt);
    bst_snap_free(a->deny);
    bst_snap_free(a->certmap);
    limiter_free(a->user_lim);
    limiter_free(a->addr_lim);
    limiter_free(a->cred_lim);
    bst_yaml_decoded_free(authn_config_fields, &a->cfg);
    free(a);
}

/* ---- authentication ------------------------------------------------------------------------ */

enum cred_kind { CRED_NONE, CRED_API_KEY, CRED_BEARER };

static enum bst_status fail(struct bst_principal *out, struct bst_err *err, enum bst_status st,
                            const char *msg)
{
    bst_principal_dispose(out);
    bst_principal_init(out);
    return bst_errf(err, st, "%s", msg);
}

/* Splits "Scheme credentials" (scheme case-insensitive, one or more spaces, no spaces inside or
 * after the credentials). Returns the kind, or CRED_NONE for an unusable header. */
static enum cred_kind parse_authorization(const char *v, const char **cred, char *reason,
                                          size_t rlen)
{
    enum cred_kind kind;
    const char *p;

    if (strncasecmp(v, "Bearer ", 7) == 0) {
        kind = CRED_BEARER;
        p = v + 7;
    } else if (strncasecmp(v, "ApiKey ", 7) == 0) {
        kind = CRED_API_KEY;
        p = v + 7;
    } else {
        reasonf(reason, rlen, "authorization scheme is neither Bearer nor ApiKey");
        return CRED_NONE;
    }
    while (*p == ' ')
        p++;
    if (*p == '\0') {
        reasonf(reason, rlen, "authorization header has no credentials");
        return CRED_NONE;
    }
    for (const char *q = p; *q != '\0'; q++) {
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f) {
            reasonf(reason, rlen,
                    "authorization credentials contain a space or a control or "
                    "non-ASCII character");
            return CRED_NONE;
        }
    }
    *cred = p;
    return kind;
}

static int apikey_format_ok(const char *k, size_t len)
{
    if (len < 24 || len > 256 || strncmp(k, "bst_", 4) != 0)
        return 0;
    for (size_t i = 4; i < len; i++) {
        char c = k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

static enum bst_status add_all(struct bst_principal *p, char *const *v, size_t n,
                               enum bst_status (*add)(struct bst_principal *, const char *))
{
    for (size_t i = 0; i < n; i++)
        if (add(p, v[i]) != BST_OK)
            return BST_RESOURCE_EXHAUSTED;
    return BST_OK;
}

/* Verifies an API key and fills out. Returns BST_OK, BST_UNAUTHENTICATED (reason set) or
 * BST_RESOURCE_EXHAUSTED. */
static enum bst_status check_apikey(struct authn *a, const char *key, struct bst_principal *out,
                                    char *reason, size_t rlen)
{
    struct apikey_set *set;
    const struct apikey *k;
    int64_t now = now_s();
    enum bst_status rv = BST_UNAUTHENTICATED;

    if (!apikey_format_ok(key, strlen(key))) {
        reasonf(reason, rlen, "API key is not 'bst_' followed by 20-252 base64url characters");
        return BST_UNAUTHENTICATED;
    }
    set = bst_snap_get(a->keys);
    k = apikey_find(set, key, strlen(key));
    if (k == NULL) {
        reasonf(reason, rlen, "unknown API key");
    } else if (!k->enabled) {
        reasonf(reason, rlen, "API key '%s' is disabled", k->id);
    } else if (k->not_before != 0 && now < k->not_before) {
        reasonf(reason, rlen, "API key '%s' is not valid before %lld", k->id,
                (long long)k->not_before);
    } else if (k->expires_at != 0 && now >= k->expires_at) {
        reasonf(reason, rlen, "API key '%s' expired at %lld", k->id, (long long)k->expires_at);
    } else {
        rv = BST_RESOURCE_EXHAUSTED;
        if (bst_principal_set_name(out, k->identity, BST_MECH_API_KEY) != BST_OK ||
            add_all(out, k->groups, k->n_groups, bst_principal_add_group) != BST_OK ||
            (k->tenant != NULL && bst_principal_set_tenant(out, k->tenant) != BST_OK) ||
            add_all(out, k->permissions, k->n_permissions, bst_principal_add_permission) != BST_OK)
            goto done;
        if (k->n_permissions > 0) {
            out->permissions_source = BST_PERMS_API_KEY_FILE;
            if ((out->permissions_issuer = strdup(set->source)) == NULL)
                goto done;
        }
        snprintf(out->credential_id, sizeof(out->credential_id), "%s", k->id);
        out->expires_at_ns = k->expires_at * BST_NS_PER_S;
        rv = BST_OK;
    }
done:
    bst_snap_put(a->keys, set);
    return rv;
}

static enum bst_status check_jwt(struct authn *a, const char *tok, struct bst_principal *out,
                                 char *reason, size_t rlen)
{
    struct jwt_set *set = bst_snap_get(a->jwt);
    struct jti_denylist *deny = bst_snap_get(a->deny);
    unsigned char d[32];
    size_t len = strlen(tok);
    enum bst_status rv;

    rv = jwt_verify(set, deny, tok, len, now_s(), out, reason, rlen);
    bst_snap_put(a->deny, deny);
    bst_snap_put(a->jwt, set);
    if (rv == BST_OK) {
        SHA256((const unsigned char *)tok, len, d);
        memcpy(out->credential_id, "jwt:", 4);
        bst_hex_encode(out->credential_id + 4, d, 8);
    }
    return rv;
}

/* Copies the certificate principal's workload identity into out. */
static enum bst_status keep_certificate(const struct bst_principal *c, struct bst_principal *out)
{
    const char *id = c->cert_identity != NULL ? c->cert_identity : c->name;
    if (id != NULL && (out->cert_identity = strdup(id)) == NULL)
        return BST_RESOURCE_EXHAUSTED;
    memcpy(out->fingerprint, c->fingerprint, sizeof(out->fingerprint));
    out->fingerprint[sizeof(out->fingerprint) - 1] = '\0';
    return BST_OK;
}

static enum bst_status certificate_principal(struct authn *a, const struct bst_principal *c,
                                             struct bst_principal *out)
{
    struct certmap *map = bst_snap_get(a->certmap);
    const struct certmap_entry *e = certmap_find(map, out->cert_identity);
    enum bst_status rv = BST_RESOURCE_EXHAUSTED;

    if (bst_principal_set_name(out, e != NULL ? e->name : out->cert_identity, BST_MECH_MTLS) !=
        BST_OK)
        goto done;
    if (e != NULL && (add_all(out, e->groups, e->n_groups, bst_principal_add_group) != BST_OK ||
                      (e->tenant != NULL && bst_principal_set_tenant(out, e->tenant) != BST_OK)))
        goto done;
    out->expires_at_ns = c->expires_at_ns;
    rv = BST_OK;
done:
    bst_snap_put(a->certmap, map);
    return rv;
}

enum bst_status authn_authenticate(struct authn *a, const struct authn_request *in,
                                   struct bst_principal *out, char *reason, size_t reason_len,
                                   struct bst_err *err)
{
    char rbuf[256], addr[ADDR_LEN];
    const char *cred = NULL;
    enum cred_kind kind = CRED_NONE;
    size_t n = in->n_authorization + in->n_api_key;
    int64_t retry = 0, mono;
    const struct bst_principal *cert = in->certificate;
    enum bst_status rv;

    if (reason == NULL || reason_len == 0) {
        reason = rbuf;
        reason_len = sizeof(rbuf);
    }
    reason[0] = '\0';
    /* A principal without a certificate identity (the identity stage saw no certificate) is no
     * certificate. */
    if (cert != NULL && cert->cert_identity == NULL && cert->name == NULL)
        cert = NULL;
    auth_peer_address(in->peer, addr, sizeof(addr));
    if (cert == NULL && a->cfg.require_client_certificate) {
        reasonf(reason, reason_len, "no client certificate, and auth requires one");
        return fail(out, err, BST_UNAUTHENTICATED, MSG_NEED_CERT);
    }
    if (cert != NULL && keep_certificate(cert, out) != BST_OK)
        return fail(out, err, BST_RESOURCE_EXHAUSTED, "out of memory");
    if (n > 1) {
        reasonf(reason, reason_len, "%zu authorization and %zu x-api-key headers",
                in->n_authorization, in->n_api_key);
        return fail(out, err, BST_UNAUTHENTICATED, MSG_CONFLICT);
    }
    if (n == 0) {
        if (a->cfg.require_token && !in->token_optional) {
            reasonf(reason, reason_len, "no API key or token, and auth requires one");
            return fail(out, err, BST_UNAUTHENTICATED, MSG_NEED_TOKEN);
        }
        if (cert == NULL) {
            reasonf(reason, reason_len, "anonymous: no credentials presented");
            return BST_OK; /* anonymous: the chain decides whether the method allows it */
        }
        if (certificate_principal(a, cert, out) != BST_OK)
            return fail(out, err, BST_RESOURCE_EXHAUSTED, "out of memory");
        reasonf(reason, reason_len, "client certificate");
        return BST_OK;
    }
    if (in->n_api_key == 1) {
        kind = CRED_API_KEY;
        cred = in->api_key[0];
    } else {
        const char *v = in->authorization[0];
        if (strlen(v) > AUTHN_MAX_TOKEN_BYTES + 16) {
            reasonf(reason, reason_len, "authorization header over %d bytes",
                    AUTHN_MAX_TOKEN_BYTES);
            return fail(out, err, BST_UNAUTHENTICATED, MSG_BAD_TOKEN);
        }
        kind = parse_authorization(v, &cred, reason, reason_len);
        if (kind == CRED_NONE)
            return fail(out, err, BST_UNAUTHENTICATED, MSG_SCHEME);
        if (kind == CRED_BEARER && strncmp(cred, "bst_", 4) == 0)
            kind = CRED_API_KEY;
    }
    if (strlen(cred) > AUTHN_MAX_TOKEN_BYTES) {
        reasonf(reason, reason_len, "credential over %d bytes", AUTHN_MAX_TOKEN_BYTES);
        return fail(out, err, BST_UNAUTHENTICATED,
                    kind == CRED_API_KEY ? MSG_BAD_KEY : MSG_BAD_TOKEN);
    }
    mono = bst_mono_ns();
    if (a->cred_lim != NULL && addr[0] != '\0' &&
        !limiter_admit(a->cred_lim, addr, NULL, mono, &retry)) {
        reasonf(reason, reason_len,
                "address %s sent too many invalid credentials; refused for "
                "%lld s more",
                addr, (long long)retry);
        return fail(out, err, BST_RESOURCE_EXHAUSTED, MSG_TOO_MANY);
    }
    rv = kind == CRED_API_KEY ? check_apikey(a, cred, out, reason, reason_len)
                              : check_jwt(a, cred, out, reason, reason_len);
    if (a->cred_lim != NULL && addr[0] != '\0') {
        if (rv == BST_OK || rv == BST_RESOURCE_EXHAUSTED)
            limiter_cancel(a->cred_lim, addr); /* a valid credential forgives nothing either */
        else
            limiter_finish(a->cred_lim, addr, NULL, 0, 0, bst_mono_ns());
    }
    if (rv == BST_OK)
        return BST_OK;
    if (rv == BST_RESOURCE_EXHAUSTED)
        return fail(out, err, BST_RESOURCE_EXHAUSTED, "out of memory");
    if (rv == BST_UNIMPLEMENTED)
        return fail(out, err, BST_UNAUTHENTICATED, MSG_PS_TOKEN);
    return fail(out, err, BST_UNAUTHENTICATED, kind == CRED_API_KEY ? MSG_BAD_KEY : MSG_BAD_TOKEN);
}

/* ---- password login ------------------------------------------------------------------------ */

struct login_job {
    struct pool_job job;
    struct authn *a;
    char *username;
    char *password;
    size_t password_len;
    char addr[ADDR_LEN];
    int64_t ttl_s;
    authn_login_done_fn done;
    void *arg;
};

static void job_free(struct login_job *j)
{
    if (j->password != NULL) {
        OPENSSL_cleanse(j->password, j->password_len);
        free(j->password);
    }
    free(j->username);
    free(j);
}

static void login_run(struct pool_job *pj)
{
    struct login_job *j = (struct login_job *)pj;
    struct authn *a = j->a;
    struct user_set *users = bst_snap_get(a->users);
    const struct user *u = user_find(users, j->username);
    const struct user *target = u != NULL ? u : &users->dummy;
    unsigned char derived[64];
    char reason[sizeof(((struct bst_err *)0)->msg)], *token = NULL;
    int64_t exp = 0;
    int ok = 0;
    struct bst_err err = {BST_OK, ""};
    enum bst_status st = BST_UNAUTHENTICATED;
    const char *msg = MSG_LOGIN;

    if (auth_scrypt(j->password, j->password_len, target->salt, target->salt_len, &target->sp,
                    (uint64_t)a->cfg.login.scrypt_max_memory, derived, target->hash_len) != 0) {
        st = BST_INTERNAL;
        msg = "login failed";
        snprintf(reason, sizeof(reason), "scrypt failed");
    } else {
        int match = CRYPTO_memcmp(derived, target->hash, target->hash_len) == 0;
        if (u == NULL)
            snprintf(reason, sizeof(reason), "unknown user");
        else if (!match)
            snprintf(reason, sizeof(reason), "wrong password");
        else if (!u->enabled)
            snprintf(reason, sizeof(reason), "user is disabled");
        else
            ok = 1;
    }
    OPENSSL_cleanse(derived, sizeof(derived));
    if (ok) {
        struct jwt_set *js = bst_snap_get(a->jwt);
        st = jwt_sign(js, u->name, u->groups, u->n_groups, u->tenant, now_s(), j->ttl_s, &token,
                      &exp, &err);
        bst_snap_put(a->jwt, js);
        if (st == BST_OK) {
            snprintf(reason, sizeof(reason), "password verified; token issued");
            msg = "";
        } else {
            msg = "login failed";
            snprintf(reason, sizeof(reason), "%s", err.msg);
        }
    }
    bst_snap_put(a->users, users);
    /* Only a wrong password or an unknown name counts as a failure: a signing problem is ours. */
    limiter_finish(a->user_lim, j->username, j->addr, ok, ok && st == BST_OK, bst_mono_ns());
    /* A success ends the attempt but forgives nothing: the address's failures expire with the
     * window, so an attacker's own account cannot reset a password spray. */
    if (!ok && st != BST_INTERNAL)
        limiter_finish(a->addr_lim, j->addr, NULL, 0, 0, bst_mono_ns());
    else
        limiter_cancel(a->addr_lim, j->addr);
    j->done(j->arg, st, token, exp, msg, reason);
    if (token != NULL) {
        OPENSSL_cleanse(token, strlen(token));
        free(token);
    }
    job_free(j);
}

static void login_cancel(struct pool_job *pj)
{
    struct login_job *j = (struct login_job *)pj;
    limiter_cancel(j->a->user_lim, j->username);
    limiter_cancel(j->a->addr_lim, j->addr);
    j->done(j->arg, BST_UNAVAILABLE, NULL, 0, "the server is shutting down",
            "login cancelled at shutdown");
    job_free(j);
}

enum bst_status authn_login_start(struct authn *a, const char *username, const char *password,
                                  const char *peer, uint32_t ttl_seconds, authn_login_done_fn done,
                                  void *arg, struct bst_err *err)
{
    struct login_job *j;
    size_t ul, pl;
    int64_t retry = 0, mono = bst_mono_ns();
    int64_t ttl_ms;
    enum bst_status rv;

    if (a->pool == NULL)
        return bst_errf(err, BST_FAILED_PRECONDITION, "password login is not configured");
    if (username == NULL || password == NULL || (ul = strlen(username)) == 0 ||
        (pl = strlen(password)) == 0 || !auth_printable(username, ul, AUTH_MAX_USERNAME) ||
        pl > AUTH_MAX_PASSWORD)
        return bst_errf(err, BST_INVALID_ARGUMENT,
                        "username (1-%d printable characters) and password (1-%d bytes) are "
                        "required",
                        AUTH_MAX_USERNAME, AUTH_MAX_PASSWORD);
    j = calloc(1, sizeof(*j));
    if (j == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    j->a = a;
    j->done = done;
    j->arg = arg;
    j->job.run = login_run;
    j->job.cancel = login_cancel;
    j->password_len = pl;
    auth_peer_address(peer, j->addr, sizeof(j->addr));
    if (j->addr[0] == '\0')
        snprintf(j->addr, sizeof(j->addr), "unknown");
    ttl_ms = ttl_seconds == 0 ? a->cfg.token.ttl_ms : (int64_t)ttl_seconds * 1000;
    if (ttl_ms > a->cfg.token.max_ttl_ms)
        ttl_ms = a->cfg.token.max_ttl_ms;
    if (ttl_ms < 60000)
        ttl_ms = 60000;
    j->ttl_s = ttl_ms / 1000;
    if ((j->username = strdup(username)) == NULL || (j->password = malloc(pl + 1)) == NULL) {
        job_free(j);
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    }
    memcpy(j->password, password, pl + 1);
    /* The rate check comes before any scrypt work: per address, then per username. */
    if (!limiter_admit(a->addr_lim, j->addr, NULL, mono, &retry)) {
        job_free(j);
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "%s (in %lld s)", MSG_LOCKED,
                        (long long)retry);
    }
    if (!limiter_admit(a->user_lim, j->username, j->addr, mono, &retry)) {
        limiter_cancel(a->addr_lim, j->addr);
        job_free(j);
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "%s (in %lld s)", MSG_LOCKED,
                        (long long)retry);
    }
    rv = pool_submit(a->pool, &j->job);
    if (rv != BST_OK) {
        limiter_cancel(a->user_lim, j->username);
        limiter_cancel(a->addr_lim, j->addr);
        job_free(j);
        return bst_errf(err, rv, "%s",
                        rv == BST_RESOURCE_EXHAUSTED
                            ? "too many logins in progress; try again shortly"
                            : "the server is shutting down");
    }
    return BST_OK;
}
