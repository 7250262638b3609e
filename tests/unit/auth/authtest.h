/* Helpers shared by the authentication tests: a private temporary directory, files written
 * with a chosen mode, injectable clocks, config defaults from the real field table, and an
 * independent JWT signer built on OpenSSL EVP and EVP_EncodeBlock (not libjwt, not the code
 * under test), so a bug in our base64url or our use of libjwt cannot hide itself. */
#ifndef BASTION_TESTS_AUTHTEST_H
#define BASTION_TESTS_AUTHTEST_H

#include "authn.h"
#include "clock.h"
#include "reload.h"
#include "strict_yaml.h"

#include <check.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- files --------------------------------------------------------------------------------- */

static char at_dir[256];

static __attribute__((unused)) void at_make_dir(void)
{
    snprintf(at_dir, sizeof(at_dir), "/tmp/bastion-authtest-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(at_dir));
}

static __attribute__((unused)) void at_remove_dir(void)
{
    char cmd[300];
    if (at_dir[0] == '\0')
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", at_dir);
    ck_assert_int_eq(system(cmd), 0);
    at_dir[0] = '\0';
}

/* Returns a malloc'd path at_dir/name. */
static __attribute__((unused)) char *at_path(const char *name)
{
    char *p = malloc(strlen(at_dir) + strlen(name) + 2);
    ck_assert_ptr_nonnull(p);
    snprintf(p, strlen(at_dir) + strlen(name) + 2, "%s/%s", at_dir, name);
    return p;
}

/* Writes data to at_dir/name with mode (replacing the file atomically, as an operator's
 * deploy tool would) and returns the malloc'd path. */
static __attribute__((unused)) char *at_write(const char *name, const void *data, size_t len,
                                              mode_t mode)
{
    char *p = at_path(name);
    char tmp[512];
    int fd;

    snprintf(tmp, sizeof(tmp), "%s.tmp", p);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fchmod(fd, mode), 0);
    ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
    ck_assert_int_eq(rename(tmp, p), 0);
    return p;
}

static __attribute__((unused)) char *at_write_str(const char *name, const char *s, mode_t mode)
{
    return at_write(name, s, strlen(s), mode);
}

/* ---- clocks -------------------------------------------------------------------------------- */

#define AT_NOW INT64_C(1800000000) /* 2027-01-15, seconds */

static _Atomic int64_t at_wall_ns = AT_NOW * BST_NS_PER_S;
static _Atomic int64_t at_mono_ns = 1000 * BST_NS_PER_S;

static __attribute__((unused)) int64_t at_wall(void)
{
    return atomic_load(&at_wall_ns);
}

static __attribute__((unused)) int64_t at_mono(void)
{
    return atomic_load(&at_mono_ns);
}

static __attribute__((unused)) void at_use_fake_clocks(void)
{
    atomic_store(&at_wall_ns, AT_NOW * BST_NS_PER_S);
    atomic_store(&at_mono_ns, 1000 * BST_NS_PER_S);
    bst_clock_set_wall(at_wall);
    bst_clock_set_mono(at_mono);
}

/* ---- config -------------------------------------------------------------------------------- */

/* Fills cfg with the table's defaults (what an absent `auth:` section gives). */
static __attribute__((unused)) void at_config_defaults(struct authn_config *cfg)
{
    struct bst_err err;
    memset(cfg, 0, sizeof(*cfg));
    ck_assert_int_eq(bst_yaml_decode(NULL, NULL, authn_config_fields, cfg, &err), BST_OK);
}

/* Replaces a string member of cfg (strings are owned by the struct). */
static __attribute__((unused)) void at_set(char **member, const char *value)
{
    free(*member);
    *member = strdup(value);
    ck_assert_ptr_nonnull(*member);
}

/* ---- independent signer -------------------------------------------------------------------- */

/* Base64url of data, without padding, through OpenSSL's standard base64. malloc'd. */
static __attribute__((unused)) char *at_b64url(const void *data, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    int n;
    ck_assert_ptr_nonnull(out);
    n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (int i = 0; i < n; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    return out;
}

/* Keys, made once per process. */
static EVP_PKEY *at_rsa, *at_ec256, *at_ec384, *at_ec521;
static unsigned char at_hs_secret[64];

static __attribute__((unused)) void at_keys(void)
{
    if (at_rsa != NULL)
        return;
    at_rsa = EVP_RSA_gen(2048);
    at_ec256 = EVP_EC_gen("P-256");
    at_ec384 = EVP_EC_gen("P-384");
    at_ec521 = EVP_EC_gen("P-521");
    ck_assert_ptr_nonnull(at_rsa);
    ck_assert_ptr_nonnull(at_ec521);
    for (size_t i = 0; i < sizeof(at_hs_secret); i++)
        at_hs_secret[i] = (unsigned char)(i * 37 + 11);
}

/* PEM of a key's public or private half. malloc'd, NUL-terminated. */
static __attribute__((unused)) char *at_pem(EVP_PKEY *k, int private_key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *out;
    long n;
    ck_assert_int_eq(private_key ? PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL)
                                 : PEM_write_bio_PUBKEY(bio, k),
                     1);
    n = BIO_get_mem_data(bio, &data);
    out = malloc((size_t)n + 1);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    BIO_free(bio);
    return out;
}

enum at_signer {
    AT_HS256,
    AT_HS384,
    AT_HS512,
    AT_RS256,
    AT_RS384,
    AT_RS512,
    AT_ES256,
    AT_ES384,
    AT_ES512,
    AT_PS256,
    AT_HS256_RSA_PEM, /* HMAC keyed with the RSA public key PEM: the classic confusion */
    AT_HS256_EMPTY,   /* HMAC with an empty key */
    AT_NO_SIG,        /* no signature at all (alg none) */
    AT_JUNK_SIG,      /* a few bytes that are no signature */
};

static __attribute__((unused)) const EVP_MD *at_md(enum at_signer s)
{
    switch (s) {
    case AT_HS384:
    case AT_RS384:
    case AT_ES384:
        return EVP_sha384();
    case AT_HS512:
    case AT_RS512:
    case AT_ES512:
        return EVP_sha512();
    default:
        return EVP_sha256();
    }
}

/* Signs input with signer; returns the raw JWS signature in *sig (malloc'd). */
static __attribute__((unused)) size_t at_sign_raw(enum at_signer s, const char *input,
                                                  unsigned char **sig)
{
    size_t len = 0;
    unsigned char *out = NULL;

    switch (s) {
    case AT_HS256:
    case AT_HS384:
    case AT_HS512:
    case AT_HS256_RSA_PEM:
    case AT_HS256_EMPTY: {
        char *pem = s == AT_HS256_RSA_PEM ? at_pem(at_rsa, 0) : NULL;
        const void *key = pem != NULL           ? (const void *)pem
                          : s == AT_HS256_EMPTY ? (const void *)""
                                                : (const void *)at_hs_secret;
        int klen = pem != NULL           ? (int)strlen(pem)
                   : s == AT_HS256_EMPTY ? 0
                   : s == AT_HS256       ? 32
                   : s == AT_HS384       ? 48
                                         : 64;
        unsigned int ml = 0;
        out = malloc(EVP_MAX_MD_SIZE);
        ck_assert_ptr_nonnull(
            HMAC(at_md(s), key, klen, (const unsigned char *)input, strlen(input), out, &ml));
        len = ml;
        free(pem);
        break;
    }
    case AT_RS256:
    case AT_RS384:
    case AT_RS512:
    case AT_PS256:
    case AT_ES256:
    case AT_ES384:
    case AT_ES512: {
        EVP_PKEY *k = s == AT_ES256   ? at_ec256
                      : s == AT_ES384 ? at_ec384
                      : s == AT_ES512 ? at_ec521
                                      : at_rsa;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        unsigned char der[1024];
        size_t dl = sizeof(der);
        ck_assert_int_eq(EVP_DigestSignInit(ctx, &pctx, at_md(s), NULL, k), 1);
        if (s == AT_PS256) {
            EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
        }
        ck_assert_int_eq(EVP_DigestSign(ctx, der, &dl, (const unsigned char *)input, strlen(input)),
                         1);
        EVP_MD_CTX_free(ctx);
        if (s >= AT_ES256 && s <= AT_ES512) {
            /* JWS wants r || s, each the size of the curve; OpenSSL gives DER. */
            const unsigned char *p = der;
            ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)dl);
            int coord = s == AT_ES256 ? 32 : s == AT_ES384 ? 48 : 66;
            ck_assert_ptr_nonnull(es);
            out = malloc((size_t)(2 * coord));
            BN_bn2binpad(ECDSA_SIG_get0_r(es), out, coord);
            BN_bn2binpad(ECDSA_SIG_get0_s(es), out + coord, coord);
            ECDSA_SIG_free(es);
            len = (size_t)(2 * coord);
        } else {
            out = malloc(dl);
            memcpy(out, der, dl);
            len = dl;
        }
        break;
    }
    case AT_NO_SIG:
        out = malloc(1);
        len = 0;
        break;
    case AT_JUNK_SIG:
        out = malloc(3);
        memcpy(out, "\x01\x02\x03", 3);
        len = 3;
        break;
    }
    *sig = out;
    return len;
}

/* Builds header.payload.signature from raw JSON texts (which may be anything, e.g. carry
 * duplicate members). malloc'd. */
static __attribute__((unused)) char *at_token(const char *header_json, const char *payload_json,
                                              enum at_signer s)
{
    char *h = at_b64url(header_json, strlen(header_json));
    char *p = at_b64url(payload_json, strlen(payload_json));
    size_t il = strlen(h) + 1 + strlen(p);
    char *input = malloc(il + 1), *sig64, *tok;
    unsigned char *sig;
    size_t sl;

    snprintf(input, il + 1, "%s.%s", h, p);
    sl = at_sign_raw(s, input, &sig);
    sig64 = at_b64url(sig, sl);
    tok = malloc(il + 1 + strlen(sig64) + 1);
    snprintf(tok, il + 1 + strlen(sig64) + 1, "%s.%s", input, sig64);
    free(h);
    free(p);
    free(input);
    free(sig);
    free(sig64);
    return tok;
}

/* ---- calling authn_authenticate ------------------------------------------------------------ */

/* A certificate principal like the identity stage makes. */
static __attribute__((unused)) void at_cert_principal(struct bst_principal *p, const char *identity)
{
    bst_principal_init(p);
    ck_assert_int_eq(bst_principal_set_name(p, identity, BST_MECH_MTLS), BST_OK);
    p->cert_identity = strdup(identity);
    memset(p->fingerprint, 'a', 64);
    p->fingerprint[64] = '\0';
    p->expires_at_ns = (AT_NOW + 86400) * BST_NS_PER_S;
}

/* Authenticates with one `authorization` header (or none when NULL). */
static __attribute__((unused)) enum bst_status
at_auth_header(struct authn *a, const char *authorization, const struct bst_principal *cert,
               struct bst_principal *out, char *reason, size_t rlen, struct bst_err *err)
{
    const char *h[1] = {authorization};
    struct authn_request rq = {
        .authorization = h,
        .n_authorization = authorization != NULL ? 1 : 0,
        .peer = "127.0.0.1:5555",
        .certificate = cert,
    };
    bst_principal_init(out);
    return authn_authenticate(a, &rq, out, reason, rlen, err);
}

static __attribute__((unused)) enum bst_status
at_auth_bearer(struct authn *a, const char *tok, const struct bst_principal *cert,
               struct bst_principal *out, char *reason, size_t rlen, struct bst_err *err)
{
    size_t n = strlen(tok) + 8;
    char *h = malloc(n);
    enum bst_status rv;
    snprintf(h, n, "Bearer %s", tok);
    rv = at_auth_header(a, h, cert, out, reason, rlen, err);
    free(h);
    return rv;
}

#endif
