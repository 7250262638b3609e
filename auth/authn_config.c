/* The `auth:` configuration table (decoded by the strict YAML reader into struct authn_config),
 * path resolution against the config file, and the checks the table cannot express. */
#include "authn.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_MS 60000
#define H_MS 3600000LL
#define D_MS (24 * H_MS)

static const char *const alg_names[] = {"ES256", "ES384", "ES512", "RS256", "RS384",
                                        "RS512", "HS256", "HS384", "HS512", NULL};

#define T(n_, ty_, m_, lo_, hi_, def_, doc_)                                                       \
    {                                                                                              \
        .name = n_, .type = ty_, .offset = offsetof(struct authn_token_config, m_), .min = lo_,    \
        .max = hi_, .def = def_, .doc = doc_                                                       \
    }
#define L(n_, ty_, m_, lo_, hi_, def_, doc_)                                                       \
    {                                                                                              \
        .name = n_, .type = ty_, .offset = offsetof(struct authn_login_config, m_), .min = lo_,    \
        .max = hi_, .def = def_, .doc = doc_                                                       \
    }
#define A(n_, ty_, m_, lo_, hi_, def_, doc_)                                                       \
    {                                                                                              \
        .name = n_, .type = ty_, .offset = offsetof(struct authn_config, m_), .min = lo_,          \
        .max = hi_, .def = def_, .doc = doc_                                                       \
    }

static const struct bst_field token_fields[] = {
    T("issuer", BST_F_STRING, issuer, 0, 0, "bastion",
      "`iss` of the tokens Auth.IssueToken signs, and the name of our own issuer."),
    T("audience", BST_F_STRING, audience, 0, 0, "bastion",
      "`aud` of our tokens; the only audience accepted on them."),
    T("signing_key", BST_F_STRING, signing_key, 0, 0, "",
      "Secret file with the signing key: an unencrypted PEM private key for ES*/RS*, or the "
      "key in base64url for HS*. Empty: IssueToken is disabled. Reloaded on SIGHUP."),
    T("kid", BST_F_STRING, kid, 0, 0, "",
      "`kid` header of our tokens. Empty: derived from the key (RFC 7638 thumbprint), so a new "
      "key file brings a new kid on reload."),
    {.name = "alg",
     .type = BST_F_ENUM,
     .offset = offsetof(struct authn_token_config, alg),
     .def = "ES256",
     .enum_names = alg_names,
     .doc = "Signing algorithm of our tokens (libjwt 1.10.2 has no PS*)."},
    T("verify_jwks", BST_F_STRING, verify_jwks, 0, 0, "",
      "Optional JWKS file of previous public signing keys still accepted for our issuer "
      "during a rotation."),
    T("ttl", BST_F_DURATION_MS, ttl_ms, MIN_MS, D_MS, "15m",
      "Lifetime of an issued token when the caller asks for none."),
    T("max_ttl", BST_F_DURATION_MS, max_ttl_ms, MIN_MS, 7 * D_MS, "1h",
      "Longest lifetime a caller may ask for (longer requests are capped)."),
    {.name = NULL},
};

static const struct bst_field login_fields[] = {
    L("max_failures_per_user", BST_F_INT, max_failures_per_user, 1, 1000, "5",
      "Failed logins (attempts in flight count too) per username within the window before the "
      "username is locked. An address that logged in as that user before is exempt."),
    L("max_failures_per_address", BST_F_INT, max_failures_per_address, 1, 100000, "20",
      "Failed logins per source address within the window before the address is locked."),
    L("failure_window", BST_F_DURATION_MS, failure_window_ms, 1000, D_MS, "15m",
      "Window over which failures are counted."),
    L("lockout", BST_F_DURATION_MS, lockout_ms, 1000, D_MS, "5m",
      "How long a lock lasts; attempts during a lock are refused without being counted, so a "
      "lock is never extended."),
    L("scrypt_threads", BST_F_INT, scrypt_threads, 1, 16, "2",
      "Threads of the scrypt pool (each scrypt holds up to scrypt_max_memory)."),
    L("scrypt_queue", BST_F_INT, scrypt_queue, 1, 4096, "32",
      "Logins waiting for a pool thread; beyond it IssueToken answers RESOURCE_EXHAUSTED."),
    L("scrypt_max_memory", BST_F_SIZE, scrypt_max_memory, 1024 * 1024, 1024LL * 1024 * 1024,
      "64MiB", "Memory one scrypt may use; users whose hash parameters need more are refused."),
    {.name = NULL},
};

const struct bst_field authn_config_fields[] = {
    A("api_keys", BST_F_STRING, api_keys, 0, 0, "",
      "Secret file of API keys (SHA-256 digests, identities, groups). Empty: no API keys."),
    A("users", BST_F_STRING, users, 0, 0, "",
      "Secret file of users with scrypt password hashes, for Auth.IssueToken."),
    A("jwt_issuers", BST_F_STRING, jwt_issuers, 0, 0, "",
      "File of external JWT issuers: issuer, audiences, keys by kid (PEM files, JWKS), claim "
      "names, trusted_permissions."),
    A("jti_denylist", BST_F_STRING, jti_denylist, 0, 0, "",
      "File of revoked token ids (jti), one per line."),
    A("certificate_identities", BST_F_STRING, certificate_identities, 0, 0, "",
      "Optional file mapping certificate identities to names, groups and tenants."),
    A("require_client_certificate", BST_F_BOOL, require_client_certificate, 0, 0, "true",
      "Every call that needs a caller must come with a verified client certificate."),
    A("require_token", BST_F_BOOL, require_token, 0, 0, "false",
      "Every call that needs a caller must also carry an API key or a JWT (IssueToken and "
      "Health excepted)."),
    A("jwt_leeway", BST_F_DURATION_MS, jwt_leeway_ms, 0, 120000, "30s",
      "Clock skew allowed on exp, nbf and iat (at most 2 minutes)."),
    A("jwt_max_lifetime", BST_F_DURATION_MS, jwt_max_lifetime_ms, MIN_MS, 7 * D_MS, "24h",
      "Longest lifetime (exp - iat) accepted on external tokens."),
    A("failed_credentials_per_address", BST_F_INT, failed_credentials_per_address, 0, 1000000,
      "100",
      "Invalid API keys or tokens from one address within login.failure_window before the "
      "address is refused for login.lockout (0 = no limit)."),
    {.name = "token",
     .type = BST_F_SECTION,
     .offset = offsetof(struct authn_config, token),
     .section = token_fields,
     .doc = "Tokens issued by Auth.IssueToken."},
    {.name = "login",
     .type = BST_F_SECTION,
     .offset = offsetof(struct authn_config, login),
     .section = login_fields,
     .doc = "Password login: rate limits and the scrypt pool."},
    {.name = NULL},
};

/* Resolves every PATH member against the configuration file (bst_yaml_resolve_path). */
enum bst_status authn_config_resolve_paths(struct authn_config *cfg, const char *config_path)
{
    char **paths[] = {&cfg->api_keys,
                      &cfg->users,
                      &cfg->jwt_issuers,
                      &cfg->jti_denylist,
                      &cfg->certificate_identities,
                      &cfg->token.signing_key,
                      &cfg->token.verify_jwks};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        if (bst_yaml_resolve_path(paths[i], config_path) != 0)
            return BST_RESOURCE_EXHAUSTED;
    return BST_OK;
}

enum bst_status authn_config_check(const struct authn_config *cfg, struct bst_err *err)
{
    const struct authn_token_config *t = &cfg->token;

    if (t->ttl_ms > t->max_ttl_ms)
        return bst_errf(err, BST_INVALID_ARGUMENT, "auth.token.ttl is longer than max_ttl");
    if (t->signing_key != NULL && t->signing_key[0] != '\0') {
        if (t->issuer == NULL || t->issuer[0] == '\0' || t->audience == NULL ||
            t->audience[0] == '\0')
            return bst_errf(err, BST_INVALID_ARGUMENT,
                            "auth.token: a signing key needs issuer and audience");
    }
    if (cfg->users != NULL && cfg->users[0] != '\0' &&
        (t->signing_key == NULL || t->signing_key[0] == '\0'))
        return bst_errf(err, BST_INVALID_ARGUMENT,
                        "auth.users is set but auth.token.signing_key is not: logins could not "
                        "issue tokens");
    return BST_OK;
}
