/* Authentication: API keys, JWT (libjwt, hardened), password login with scrypt, issued tokens,
 * and the optional mapping of certificate identities. A library that knows nothing of HTTP/2:
 * the server hands it the credential headers of a call and the certificate principal that
 * auth/identity.c made, and gets back the principal of the call.
 *
 * Everything that can change at run time (API keys, users, JWT issuers and keys, the signing
 * key, the jti denylist, the certificate mapping) is an immutable snapshot registered with the
 * reload registry (common/reload.h): SIGHUP rebuilds it, a broken file is refused and the old
 * snapshot kept. Calls in flight keep the snapshot they started with.
 *
 * Threads: authn_authenticate and authn_login_start may be called from any number of threads
 * at once. scrypt runs only on the authenticator's own small pool, never on the caller's
 * thread. Failed-login counters are shared by all callers of one struct authn. */
#ifndef BASTION_AUTH_AUTHN_H
#define BASTION_AUTH_AUTHN_H

#include "principal.h"
#include "status.h"
#include "strict_yaml.h"

#include <stddef.h>
#include <stdint.h>

/* Largest credential header value looked at (a JWT above it is refused before decoding). */
#define AUTHN_MAX_TOKEN_BYTES 8192

/* Signing algorithms our own tokens may use (index = the value of authn_token_config.alg). */
enum authn_alg {
    AUTHN_ALG_ES256 = 0,
    AUTHN_ALG_ES384,
    AUTHN_ALG_ES512,
    AUTHN_ALG_RS256,
    AUTHN_ALG_RS384,
    AUTHN_ALG_RS512,
    AUTHN_ALG_HS256,
    AUTHN_ALG_HS384,
    AUTHN_ALG_HS512,
};

/* Tokens we issue (Auth.IssueToken) and verify as our own issuer. */
struct authn_token_config {
    char *issuer;       /* `iss` of our tokens; also the name of our issuer when verifying */
    char *audience;     /* `aud` of our tokens; the only audience accepted for them */
    char *signing_key;  /* PATH, secret file: PEM private key (ES*, RS*) or base64url (HS*);
                         * "" = IssueToken disabled */
    char *kid;          /* `kid` header of our tokens; "" = derived from the key (RFC 7638
                         * thumbprint), so a new key file brings a new kid on reload */
    int alg;            /* enum authn_alg */
    char *verify_jwks;  /* PATH, optional JWKS of previous public keys still accepted for our
                         * issuer during a rotation; "" = none */
    int64_t ttl_ms;     /* default lifetime of an issued token */
    int64_t max_ttl_ms; /* longest lifetime a caller may ask for */
};

/* Password login: rate limits and the scrypt pool. */
struct authn_login_config {
    int64_t max_failures_per_user;    /* failures (and attempts in flight) per username ... */
    int64_t max_failures_per_address; /* ... and per source address, within the window */
    int64_t failure_window_ms;
    int64_t lockout_ms;        /* a lock lasts this long, and is never extended */
    int64_t scrypt_threads;    /* pool size */
    int64_t scrypt_queue;      /* logins waiting for a pool thread; beyond: RESOURCE_EXHAUSTED */
    int64_t scrypt_max_memory; /* bytes one scrypt may use; users file entries above: refused */
};

/* The `auth:` section of bastion.yaml (decoded by authn_config_fields). Members marked PATH are
 * file paths; authn_config_resolve_paths() makes relative ones relative to the config file.
 * "" means "not configured" for every PATH. Strings are owned by the struct and freed with
 * bst_yaml_decoded_free(authn_config_fields, cfg) (or through the enclosing table). */
struct authn_config {
    char *api_keys;               /* PATH, secret file: API key entries (configs/api-keys.yaml) */
    char *users;                  /* PATH, secret file: users for password login */
    char *jwt_issuers;            /* PATH: external JWT issuers and their keys */
    char *jti_denylist;           /* PATH: revoked token ids, one per line */
    char *certificate_identities; /* PATH: certificate identity -> name, groups, tenant */
    int require_client_certificate;
    int require_token;           /* an API key or a JWT on every call that needs a caller */
    int64_t jwt_leeway_ms;       /* clock skew allowed on exp/nbf/iat; at most 120 s */
    int64_t jwt_max_lifetime_ms; /* exp - iat (or nbf) above it: refused */
    int64_t failed_credentials_per_address; /* bad API keys/tokens per address per window */
    struct authn_token_config token;
    struct authn_login_config login;
};

/* The field table of struct authn_config (terminated by a {NULL} entry), for a BST_F_SECTION
 * row of the server's table: {"auth", BST_F_SECTION, offsetof(struct config, auth), ...,
 * authn_config_fields, ...}. Every key has a default: an absent `auth:` section gives mTLS
 * only (no API keys, no users, no issuers, IssueToken disabled). */
extern const struct bst_field authn_config_fields[];

/* Makes every relative PATH member of cfg relative to the directory of config_path (the path
 * of the file it was read from). Absolute paths and "" are left alone. Returns BST_OK or
 * BST_RESOURCE_EXHAUSTED. */
enum bst_status authn_config_resolve_paths(struct authn_config *cfg, const char *config_path);

/* Checks what the table cannot: the signing key settings are complete when a key is given, and
 * token.ttl <= token.max_ttl. Returns BST_OK or BST_INVALID_ARGUMENT with the key in err. */
enum bst_status authn_config_check(const struct authn_config *cfg, struct bst_err *err);

struct authn;

/* Builds an authenticator from cfg (not kept: everything needed is copied): loads every
 * configured file (secret files through bst_secret_read), registers each reloadable part with
 * the reload registry under "auth.api_keys", "auth.users", "auth.jwt" (issuers, their keys, our
 * signing key), "auth.jti_denylist" and "auth.certificate_identities", and starts the scrypt
 * pool. On success *out is owned by the caller (authn_free). Returns BST_OK,
 * BST_INVALID_ARGUMENT / BST_PERMISSION_DENIED / BST_NOT_FOUND for a bad file (err names it and
 * says where), BST_RESOURCE_EXHAUSTED, BST_INTERNAL. */
enum bst_status authn_new(struct authn **out, const struct authn_config *cfg, struct bst_err *err);

/* Stops the scrypt pool (logins still queued get BST_UNAVAILABLE through their callback,
 * running ones finish and report), then frees everything. The reload registry keeps no
 * reference that outlives this only if the caller clears it first: call bst_reload_clear()
 * before authn_free() (the registry has no per-component removal). NULL is a no-op. */
void authn_free(struct authn *a);

/* The credential-bearing parts of one call. Values are the raw header values (no copies are
 * kept). `certificate` is the identity stage's principal (auth/identity.c), or NULL when the
 * connection has no client certificate. */
struct authn_request {
    const char *const *authorization; /* every `authorization` header value */
    size_t n_authorization;
    const char *const *api_key; /* every `x-api-key` header value */
    size_t n_api_key;
    const char *peer;                        /* "ip:port" / "[v6]:port": failure counting */
    const struct bst_principal *certificate; /* or NULL */
    int token_optional; /* set for methods that mint tokens (Auth.IssueToken) and Health, so
                         * require_token does not lock the caller out of getting one */
};

/* Authenticates one call. On BST_OK, out (initialised by the caller with bst_principal_init,
 * owned by the caller) holds: the token identity when an API key or JWT was presented
 * (mechanism BST_MECH_API_KEY / BST_MECH_JWT), else the certificate identity mapped through
 * certificate_identities (BST_MECH_MTLS), else an anonymous principal (name NULL,
 * BST_MECH_NONE) when nothing was presented and nothing is required; the certificate identity
 * and fingerprint always copied to cert_identity/fingerprint; groups and tenant from the
 * credential's source; carried permissions only from an API key entry or from an issuer the
 * config trusts (permissions_source and permissions_issuer say which); credential_id = the API
 * key id, or "jwt:" + 16 hex digits of SHA-256 of the token; expires_at_ns = the credential's
 * expiry. Returns BST_UNAUTHENTICATED (or BST_RESOURCE_EXHAUSTED when this address has sent too
 * many bad credentials) with one generic peer-safe message per class of failure in err
 * (identical for unknown, disabled, expired and not-yet-valid API keys; identical for every
 * invalid JWT) and the precise reason in `reason` (for logs and audit; never a secret); out
 * is then left empty. reason may be NULL. Never blocks: no I/O, no scrypt. */
enum bst_status authn_authenticate(struct authn *a, const struct authn_request *in,
                                   struct bst_principal *out, char *reason, size_t reason_len,
                                   struct bst_err *err);

/* Called exactly once for every login that authn_login_start accepted: on a pool thread, or,
 * for a login still queued when authn_free runs, on the thread calling authn_free (with
 * BST_UNAVAILABLE). The server's callback should only hand the result to its loop.
 * token (NULL unless BST_OK) and the strings are valid only during the call: copy them.
 * message is peer-safe (identical for an unknown user, a wrong password and a disabled user);
 * reason is the precise cause for logs and audit. */
typedef void (*authn_login_done_fn)(void *arg, enum bst_status st, const char *token,
                                    int64_t expires_at_unix, const char *message,
                                    const char *reason);

/* Starts a password login. Checks the input and the failure counters (per username and per
 * source address, shared across threads) BEFORE any scrypt work, then queues the scrypt
 * verification on the pool. Returns BST_OK when queued: `done` will be called exactly once
 * (see authn_login_done_fn), with BST_OK and a signed token (active signing key and kid; lifetime
 * ttl_seconds, 0 = the configured default, capped at token.max_ttl), or BST_UNAUTHENTICATED.
 * Any other return means `done` will NOT be called, and err holds a peer-safe message:
 * BST_INVALID_ARGUMENT (empty or oversized username/password), BST_RESOURCE_EXHAUSTED (too
 * many failures: locked for a while; or the pool's queue is full), BST_FAILED_PRECONDITION
 * (no users file or no signing key configured), BST_UNAVAILABLE (shutting down). The
 * strings are copied (the password is wiped after use). */
enum bst_status authn_login_start(struct authn *a, const char *username, const char *password,
                                  const char *peer, uint32_t ttl_seconds, authn_login_done_fn done,
                                  void *arg, struct bst_err *err);

/* Writes the public half of the configured signing key (ES*, RS*) as a JWKS document with its
 * kid, alg and use, for `bastion keys jwks`: during a rotation the previous key's JWKS goes into
 * token.verify_jwks. Returns BST_OK, BST_FAILED_PRECONDITION (no key, or an HS* secret),
 * BST_OUT_OF_RANGE (out too small: 4 KiB suffice), or the key file's error. */
enum bst_status authn_signing_jwks(const struct authn_config *cfg, char *out, size_t out_len,
                                   struct bst_err *err);

/* Length of the key authn_apikey_generate writes: "bst_" + 43 base64url characters. */
#define AUTHN_APIKEY_LEN 47

/* Makes a new random API key (32 bytes from the CSPRNG, prefix "bst_" so secret scanners find
 * it) into key_out (at least AUTHN_APIKEY_LEN + 1 bytes) and the YAML entry to paste into the
 * API keys file (id, sha256 of the key, placeholders for identity and groups) into
 * yaml_entry_out. id must be 1-32 characters of [A-Za-z0-9._-]. Returns BST_OK,
 * BST_INVALID_ARGUMENT (id), BST_OUT_OF_RANGE (a buffer too small), BST_INTERNAL (no
 * randomness). The key is printed once by the caller and never stored. */
enum bst_status authn_apikey_generate(char *key_out, size_t key_len, char *yaml_entry_out,
                                      size_t yaml_len, const char *id);

/* Hashes password with scrypt (OpenSSL EVP_KDF "SCRYPT", N=2^15, r=8, p=1, 16-byte random
 * salt, 32-byte output) into out as "$scrypt$ln=15,r=8,p=1$<salt>$<hash>" (base64url, no
 * padding), the format of the users file. Takes about 0.1 s: not for an event loop.
 * Returns BST_OK, BST_INVALID_ARGUMENT (empty or over 1024 bytes), BST_OUT_OF_RANGE (out too
 * small: 128 bytes always suffice), BST_INTERNAL. */
enum bst_status authn_password_hash(const char *password, char *out, size_t out_len);

#endif
