/* Internals of the authentication library shared by its source files, the unit tests, the
 * fuzz target and the benchmark. Not part of the interface the server uses (that is authn.h). */
#ifndef BASTION_AUTH_AUTHN_INTERNAL_H
#define BASTION_AUTH_AUTHN_INTERNAL_H

#include "authn.h"
#include "principal.h"
#include "text.h"
#include "status.h"
#include "strict_yaml.h"

#include <stddef.h>
#include <stdint.h>

/* ---- util.c: encodings, YAML helpers, small checks ----------------------------------------- */

/* Base64url without padding. encode returns the length written (out NUL-terminated), or 0 when
 * out is too small. decode is strict: only [A-Za-z0-9_-], no padding, no length that cannot
 * come from whole bytes, unused trailing bits zero; returns 0 and the length, or -1. */
size_t auth_b64url_encode(char *out, size_t out_len, const unsigned char *in, size_t n);
int auth_b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *len);

/* Parses exactly 64 hex digits (either case) into 32 bytes. Returns 0 or -1. */
int auth_unhex32(const char *s, unsigned char out[32]);

/* 1 if s[0..len) is non-empty, at most max bytes, valid UTF-8 and free of control characters. */
int auth_printable(const char *s, size_t len, size_t max);

/* Parses "YYYY-MM-DDTHH:MM:SSZ" (UTC only) into Unix seconds. Returns 0 or -1. */
int auth_parse_time(const char *s, int64_t *out);

/* The address part of a peer "ip:port" / "[v6]:port" / "ip" into out (NUL-terminated). */
void auth_peer_address(const char *peer, char *out, size_t out_len);

/* Copies a short, sanitised excerpt of untrusted text (for reasons: at most 48 bytes). */
void auth_excerpt(char *out, size_t out_len, const char *s, size_t len);

/* Frees a list of n strings and the array. */
void auth_free_list(char **v, size_t n);

/* A sequence of printable strings (or, when allow_scalar, one scalar taken as a list of one):
 * at most max_items items of at most max_len bytes each. *out is malloc'd (auth_free_list). */
enum bst_status auth_yaml_str_list(const struct bst_yaml_doc *doc, const struct bst_yaml_node *n,
                                   const char *key, int allow_scalar, size_t max_items,
                                   size_t max_len, char ***out, size_t *n_out, struct bst_err *err);

/* Copies a string scalar (printable, 1..max_len bytes; allow_empty admits ""). */
enum bst_status auth_yaml_strdup(const struct bst_yaml_doc *doc, const struct bst_yaml_node *n,
                                 const char *key, size_t max_len, int allow_empty, char **out,
                                 struct bst_err *err);

/* Refuses any key of map that is not in names (NULL-terminated), naming the allowed ones. */
enum bst_status auth_yaml_only_keys(const struct bst_yaml_doc *doc, const struct bst_yaml_node *map,
                                    const char *const *names, struct bst_err *err);

/* ---- scrypt.c ------------------------------------------------------------------------------ */

struct scrypt_params {
    uint64_t n; /* CPU/memory cost, a power of two */
    uint32_t r;
    uint32_t p;
};

#define AUTH_SCRYPT_DEFAULT_LN 15
#define AUTH_SCRYPT_SALT_LEN 16
#define AUTH_SCRYPT_HASH_LEN 32
#define AUTH_MAX_PASSWORD 1024
#define AUTH_MAX_USERNAME 128

/* Bytes scrypt needs for these parameters (what OpenSSL's maxmem must exceed). */
uint64_t auth_scrypt_memory(const struct scrypt_params *sp);

/* Derives outlen bytes. Returns 0 or -1. maxmem caps the memory OpenSSL may use. */
int auth_scrypt(const char *pw, size_t pwlen, const unsigned char *salt, size_t saltlen,
                const struct scrypt_params *sp, uint64_t maxmem, unsigned char *out, size_t outlen);

/* Parses "$scrypt$ln=L,r=R,p=P$salt$hash". Returns 0 or -1 (why says what is wrong). */
int auth_scrypt_parse(const char *s, struct scrypt_params *sp, unsigned char *salt,
                      size_t *salt_len, unsigned char *hash, size_t *hash_len, const char **why);

/* ---- jwt.c: issuers, keys, verification, signing ------------------------------------------- */

#define AUTH_MAX_KID 128
#define AUTH_MAX_CLAIM 256
#define AUTH_MAX_AUDIENCES 16

struct jwt_key {
    char *kid;
    int alg;                 /* enum authn_alg */
    unsigned char *material; /* HS: the secret; RS/ES: public key PEM (NUL-terminated) */
    size_t len;              /* never 0 */
};

struct jwt_issuer {
    char *name;
    char **audiences;
    size_t n_audiences;
    struct jwt_key *keys;
    size_t n_keys;
    int trusted_permissions;
    char *identity_claim;
    char *identity_prefix;
    char *groups_claim;
    char *tenant_claim;
    char *permissions_claim;
    int64_t leeway_s;
    int64_t max_lifetime_s;
};

/* The "auth.jwt" snapshot: every issuer (ours first when a signing key is configured) and our
 * signing key. Immutable once built. */
struct jwt_set {
    struct jwt_issuer *issuers;
    size_t n_issuers;
    unsigned char *sign_key; /* PEM private key (ES/RS) or the HS secret; NULL = no signing */
    size_t sign_len;
    int sign_alg;
    char *sign_kid;
    char *own_issuer; /* NULL without a signing key */
    char *own_audience;
    /* Tokens this snapshot has verified (by SHA-256 of the whole token), so an agent that
     * sends the same token on every call pays for one signature check: libjwt 1.10.2 parses the
     * PEM key again on every verification (~300 us for P-256). A reload builds a new set with an
     * empty cache; expiry and the denylist are checked again on every hit. NULL = no cache. */
    struct jwt_cache *cache;
};

/* The "auth.jti_denylist" snapshot: sorted revoked token ids. */
struct jti_denylist {
    char **ids;
    size_t n;
};

/* Builds the issuer set from the config (our own issuer and signing key, the issuers file).
 * Returns BST_OK or an error naming the file. */
enum bst_status jwt_set_load(const struct authn_config *cfg, struct jwt_set **out,
                             struct bst_err *err);
void jwt_set_free(struct jwt_set *s);

/* Adds one verification key (tests and the fuzz target build sets by hand with these). */
enum bst_status jwt_key_from_pem(struct jwt_key *k, const char *kid, int alg, const char *pem,
                                 size_t len, struct bst_err *err);
enum bst_status jwt_key_from_secret(struct jwt_key *k, const char *kid, int alg,
                                    const unsigned char *secret, size_t len, struct bst_err *err);

enum bst_status jti_denylist_load(const char *path, struct jti_denylist **out, struct bst_err *err);
void jti_denylist_free(struct jti_denylist *d);
int jti_denylist_has(const struct jti_denylist *d, const char *jti);

/* 1 if tok looks like a JWT: three base64url segments and a header that decodes to a JSON
 * object. Cheap enough for choosing the mechanism. */
int jwt_looks_like(const char *tok, size_t len);

/* Verifies tok against set (deny may be NULL) at wall time now_s and fills out's name, groups,
 * tenant, permissions and expiry. Returns BST_OK; BST_UNAUTHENTICATED with the reason; or
 * BST_UNIMPLEMENTED for a well-formed token using an algorithm libjwt 1.10.2 lacks (PS*). */
enum bst_status jwt_verify(const struct jwt_set *set, const struct jti_denylist *deny,
                           const char *tok, size_t len, int64_t now_s, struct bst_principal *out,
                           char *reason, size_t reason_len);

/* Signs a token for sub with set's signing key. *token_out is malloc'd (caller frees). */
enum bst_status jwt_sign(const struct jwt_set *set, const char *sub, char *const *groups,
                         size_t n_groups, const char *tenant, int64_t now_s, int64_t ttl_s,
                         char **token_out, int64_t *exp_out, struct bst_err *err);

const char *auth_alg_name(int alg);

/* ---- apikeys.c ----------------------------------------------------------------------------- */

struct apikey {
    char *id;
    unsigned char digest[32]; /* SHA-256 of the whole key string */
    char *identity;
    char **groups;
    size_t n_groups;
    char *tenant;
    char **permissions;
    size_t n_permissions;
    int enabled;
    int64_t not_before; /* Unix seconds; 0 = none */
    int64_t expires_at; /* Unix seconds; 0 = none */
};

struct apikey_set {
    struct apikey *keys;
    size_t n;
    uint32_t *slots; /* open addressing by digest: index + 1, 0 = empty */
    size_t n_slots;  /* a power of two, at least twice n */
    char *source;    /* the file, for permissions_issuer */
};

enum bst_status apikey_set_load(const char *path, struct apikey_set **out, struct bst_err *err);
/* Parses an API keys document already in memory (tests, fuzzing). */
enum bst_status apikey_set_parse(const char *name, const char *buf, size_t len,
                                 struct apikey_set **out, struct bst_err *err);
void apikey_set_free(struct apikey_set *s);

/* Finds the entry whose digest is SHA-256(key): O(1) by digest, final compare CRYPTO_memcmp.
 * Returns NULL when there is none. */
const struct apikey *apikey_find(const struct apikey_set *s, const char *key, size_t len);

/* ---- users.c ------------------------------------------------------------------------------- */

struct user {
    char *name;
    struct scrypt_params sp;
    unsigned char salt[64];
    size_t salt_len;
    unsigned char hash[64];
    size_t hash_len;
    char **groups;
    size_t n_groups;
    char *tenant;
    int enabled;
};

struct user_set {
    struct user *users; /* sorted by name */
    size_t n;
    struct user dummy; /* hashed for unknown users, so timing does not tell them apart */
};

enum bst_status user_set_load(const char *path, uint64_t max_memory, struct user_set **out,
                              struct bst_err *err);
void user_set_free(struct user_set *s);
const struct user *user_find(const struct user_set *s, const char *name);

/* ---- certmap.c ----------------------------------------------------------------------------- */

struct certmap_entry {
    char *identity; /* the certificate identity (SAN URI or CN) */
    char *name;
    char **groups;
    size_t n_groups;
    char *tenant;
};

struct certmap {
    struct certmap_entry *entries; /* sorted by identity */
    size_t n;
};

enum bst_status certmap_load(const char *path, struct certmap **out, struct bst_err *err);
void certmap_free(struct certmap *m);
const struct certmap_entry *certmap_find(const struct certmap *m, const char *identity);

/* ---- limiter.c: failure counters shared by every thread ------------------------------------ */

struct limiter;

/* max failures (counting attempts in flight) within window_ns lock the key for lockout_ns.
 * capacity bounds the memory: when full, the entry idle longest is forgotten. */
enum bst_status limiter_new(struct limiter **out, size_t capacity, int64_t max, int64_t window_ns,
                            int64_t lockout_ns);
void limiter_free(struct limiter *l);

/* Admits one attempt for key (counted as in flight) unless key is locked or its failures plus
 * attempts in flight reached the maximum. `via` (may be NULL) is an address that logged in as
 * key before: a lock does not apply to it, so an attacker cannot lock the owner out. Returns 1
 * when admitted, 0 when refused; *retry_s gets the seconds until the lock ends. */
int limiter_admit(struct limiter *l, const char *key, const char *via, int64_t now_ns,
                  int64_t *retry_s);

/* Ends an admitted attempt: a failure counts (and may lock the key); a success remembers `via`
 * as a known address of key (when remember is set) and clears key's failures. */
void limiter_finish(struct limiter *l, const char *key, const char *via, int success, int remember,
                    int64_t now_ns);

/* Ends an admitted attempt that never ran (refused by another limiter, or cancelled): it
 * counts neither as a failure nor as a success. */
void limiter_cancel(struct limiter *l, const char *key);

/* ---- pool.c: the bounded scrypt pool ------------------------------------------------------- */

struct pool_job {
    void (*run)(struct pool_job *job);    /* on a pool thread; frees the job */
    void (*cancel)(struct pool_job *job); /* at shutdown instead of run; frees the job */
    struct pool_job *next;
};

struct pool;

enum bst_status pool_new(struct pool **out, size_t threads, size_t queue_cap);
/* Queues job. Returns BST_OK, BST_RESOURCE_EXHAUSTED (queue full) or BST_UNAVAILABLE
 * (stopping); on failure the job is not taken. */
enum bst_status pool_submit(struct pool *p, struct pool_job *job);
/* Cancels queued jobs, waits for running ones, joins the threads. */
void pool_free(struct pool *p);

#endif
